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


def test_formulas_whose_intermediate_powers_overflow():
    """Where the formula as written overflows on the way (σ_ξ² at σ_ξ = 1e200, η·σ_ξ at 1e-400) but the result is a
    float, each function returns exp(log value): its log formula is pinned here against the same quantity
    written as a sum of logarithms, so a wrong power in the log path cannot hide behind the direct path."""
    from lnfl.regimes import clean_fit_order

    def close(value, log_expected):
        return value == pytest.approx(math.exp(log_expected), rel=1e-9)

    L = math.log
    assert close(theory.snr(1e300, 1e308, 100), L(1e300) - L(1e308) - 0.5 * L(100))
    assert close(theory.t1_order(100, 10, 1e-300, 1e200, 10), L(1000) - L(1e-300) - 2 * L(1e200) - L(10))
    assert close(theory.memorisation_step(1e-300, 1e200, 50, 10, 4), L(1e-300) + 2 * L(1e200) + L(50) - L(80))
    assert close(theory.signal_step(1e-300, 1e200, 4, 0.25), L(1e-300) + 2 * L(1e200) + L(0.5) - L(16))
    order = clean_fit_order(10, 4, 1e-200, 1e-200, 100, 1e-200)
    assert close(order, L(1e-200) + L(10) + 0.5 * L(4) - L(1e-200) - L(1e-200) - 0.5 * L(100))


def test_bounds():
    assert theory.early_stopping_error_bound(400, 200) == pytest.approx(math.exp(-2))
    assert theory.noiseless_error_bound(200, math.sqrt(32), 1.0, 400, C=2.0) == pytest.approx(
        math.exp(-200 * 32**2 / 800)
    )
    # ‖μ‖ < 1: exp(−100) is a float, and the shortcut to 0.0 for exponents beyond 800 must not be taken
    expected = math.exp(-10 * 0.1**4 / (0.01**4 * 1000))
    assert theory.noiseless_error_bound(10, 0.1, 0.01, 1000) == pytest.approx(expected, rel=1e-9, abs=0)
    assert theory.noiseless_error_bound(10, 1.0, 0.01, 1000) == 0.0, "exp(−10⁶) underflows to 0.0"
    assert theory.stage2_error_lower_bound(0.2, 0.1) == pytest.approx(0.05)
    assert theory.early_stopping_error_bound(4000, 200) < theory.early_stopping_error_bound(400, 200)


def test_check_conditions_reference_and_violations():
    ok = theory.check_conditions(200, 400, 20, math.sqrt(32), 1.0, 0.01, 0.1, 0.2, 0.2)
    assert all(c.satisfied for c in ok), [c for c in ok if not c.satisfied]
    bad = {c.name: c for c in theory.check_conditions(200, 150, 20, 0.1, 1.0, 0.5, 50.0, 0.2, 0.2)}
    assert not bad["n·SNR²"].satisfied and not bad["d/(n+1)"].satisfied
    assert not bad["σ₀σ_ξ√d"].satisfied and not bad["η σ_ξ² d/(nm)"].satisfied
    # unique γ, ρ need n + 1 independent patches in d dimensions: d = n fails, d = n + 1 passes
    edge = [
        {c.name: c.satisfied for c in theory.check_conditions(200, d, 20, 4.0, 1.0, 0.01, 0.1, 0.2, 0.2)}
        for d in (200, 201)
    ]
    assert not edge[0]["d/(n+1)"] and edge[1]["d/(n+1)"]


def test_theory_argument_errors():
    with pytest.raises(ValueError, match=r"tau must be in \[0, 0.5\), got 0.7"):
        theory.growth_ratio(16.0, 0.7)
    with pytest.raises(ValueError, match="give either tau, or both tau_plus and tau_minus"):
        theory.growth_ratio(16.0)
    with pytest.raises(ValueError, match=r"eta must be in \(0, inf\), got -1"):
        theory.t1_order(10, 2, -1, 1.0, 10)
    with pytest.raises(TypeError, match="n must be an integer"):
        theory.n_snr2(2.5, 1.0, 1.0, 10)


def test_memorisation_spread_is_the_spread_on_a_fresh_input_at_any_noise_scale():
    """The memorised part of ⟨w_{j,r}, ξ⟩ on a fresh ξ ~ N(0, σ_ξ² I), for filters that memorise half of their
    class's τn/2 noisy samples with 2ρ̄ each (the picture of Chapter 6), has spread ρ̄√(τn/d): no σ_ξ in it."""
    import torch

    g = torch.Generator().manual_seed(0)
    n, d, m, tau, rho_bar = 200, 3000, 20, 0.2, 1.7
    k = int(tau * n / 2)  # noisy samples observed as this filter class
    for sigma_xi in (0.5, 3.0):
        xi = sigma_xi * torch.randn(k, d, generator=g, dtype=torch.float64)
        active = torch.rand(m, k, generator=g) < 0.5  # each sample is memorised by about half of the filters
        coef = 2 * rho_bar * active.double() / (xi * xi).sum(1)  # ρ_{j,r,i}/‖ξ_i‖², ρ = 2ρ̄ where active
        w = coef @ xi  # (m, d): the memorised part of each filter
        fresh = sigma_xi * torch.randn(4000, d, generator=g, dtype=torch.float64)
        measured = float((fresh @ w.T).std(dim=0).pow(2).mean().sqrt())  # RMS over filters of the spread
        predicted = theory.memorisation_spread(rho_bar, tau, n, d)
        # active fractions fluctuate around 1/2 (m·k = 400 coins): a few per cent
        assert measured == pytest.approx(predicted, rel=0.06), (sigma_xi, measured, predicted)
    assert theory.memorisation_spread(0.0, 0.2, 200, 400) == 0.0
    assert theory.memorisation_spread(2.0, 0.2, 200, 800) == pytest.approx(2.0 * math.sqrt(0.05))


def test_clean_error_estimate_and_the_harmful_crossover_agree():
    gamma, rho_bar, tau, n = 2.0, 4.0, 0.2, 200
    # γ equal to the spread: Φ(−1)
    d = round(tau * n * (rho_bar / gamma) ** 2)  # = 160: s = ρ̄√(τn/d) = γ
    assert theory.clean_error_estimate(gamma, rho_bar, tau, n, d) == pytest.approx(0.158655253931457)
    # the crossover is where the estimate equals the level, and it is a d/n
    for level in (0.1, 0.05, 0.01):
        x = theory.harmful_d_over_n(gamma, rho_bar, tau, level)
        z = {0.1: 1.2815515655446004, 0.05: 1.6448536269514722, 0.01: 2.3263478740408408}[level]
        assert x == pytest.approx(tau * (z * rho_bar / gamma) ** 2)
        for scale in (1, 7):  # the same d/n at another n gives the same estimate
            err = theory.clean_error_estimate(gamma, rho_bar, tau, scale * 1000, round(scale * 1000 * x))
            assert err == pytest.approx(level, rel=2e-3)
    errs = [theory.clean_error_estimate(gamma, rho_bar, tau, n, d) for d in (200, 400, 800, 1600)]
    assert errs == sorted(errs, reverse=True) and errs[-1] < 0.01 < errs[0], "damage fades as d/n grows"
    assert theory.clean_error_estimate(gamma, 0.0, tau, n, 400) == 0.0, "nothing memorised, no damage"
    assert theory.harmful_d_over_n(gamma, rho_bar, 0.0, 0.1) == 0.0, "no label noise, never harmful"


def test_mechanism_argument_errors():
    with pytest.raises(ValueError, match=r"rho_bar must be in \[0, inf\)"):
        theory.memorisation_spread(-1.0, 0.2, 200, 400)
    with pytest.raises(ValueError, match="tau"):
        theory.clean_error_estimate(1.0, 1.0, 0.6, 200, 400)
    with pytest.raises(ValueError, match="gamma"):
        theory.clean_error_estimate(0.0, 1.0, 0.2, 200, 400)
    with pytest.raises(ValueError, match=r"level must be in \(0, 0.5\)"):
        theory.harmful_d_over_n(1.0, 1.0, 0.2, 0.5)
    with pytest.raises(TypeError, match="d must be an integer"):
        theory.memorisation_spread(1.0, 0.2, 200, 400.5)
