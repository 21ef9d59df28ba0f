import math

import pytest

from lnfl import theory


def test_reference_numbers():
    assert theory.snr(math.sqrt(32), 1.0, 400) == pytest.approx(math.sqrt(32) / 20)
    assert theory.n_snr2(200, math.sqrt(32), 1.0, 400) == pytest.approx(16.0)
    assert theory.t1_order(200, 20, 0.1, 1.0, 400) == pytest.approx(100.0)
    assert theory.growth_ratio(16.0, 0.2) == pytest.approx(0.6 * 16 / 2)
    assert theory.growth_ratio(16.0, tau_plus=0.1, tau_minus=0.3) == pytest.approx(theory.growth_ratio(16.0, 0.2))
    # the growth ratio is the ratio of the two per-step increments
    ratio = theory.signal_step(0.1, math.sqrt(32), 20, 0.2) / theory.memorisation_step(0.1, 1.0, 400, 200, 20)
    assert ratio == pytest.approx(theory.growth_ratio(16.0, 0.2))


def test_bounds():
    assert theory.early_stopping_error_bound(400, 200) == pytest.approx(math.exp(-2))
    assert theory.noiseless_error_bound(200, math.sqrt(32), 1.0, 400, C=2.0) == pytest.approx(
        math.exp(-200 * 32**2 / 800)
    )
    assert theory.stage2_error_lower_bound(0.2, 0.1) == pytest.approx(0.05)
    assert theory.early_stopping_error_bound(4000, 200) < theory.early_stopping_error_bound(400, 200)


def test_check_conditions_reference_and_violations():
    ok = theory.check_conditions(200, 400, 20, math.sqrt(32), 1.0, 0.01, 0.1, 0.2, 0.2)
    assert all(c.satisfied for c in ok), [c for c in ok if not c.satisfied]
    bad = {c.name: c for c in theory.check_conditions(200, 150, 20, 0.1, 1.0, 0.5, 50.0, 0.2, 0.2)}
    assert not bad["n·SNR²"].satisfied and not bad["d/(n+1)"].satisfied
    assert not bad["σ₀σ_ξ√d"].satisfied and not bad["η σ_ξ² d/(nm)"].satisfied


def test_theory_argument_errors():
    with pytest.raises(ValueError, match=r"tau must be in \[0, 0.5\), got 0.7"):
        theory.growth_ratio(16.0, 0.7)
    with pytest.raises(ValueError, match="give either tau, or both tau_plus and tau_minus"):
        theory.growth_ratio(16.0)
    with pytest.raises(ValueError, match=r"eta must be in \(0, inf\), got -1"):
        theory.t1_order(10, 2, -1, 1.0, 10)
    with pytest.raises(TypeError, match="n must be an integer"):
        theory.n_snr2(2.5, 1.0, 1.0, 10)
