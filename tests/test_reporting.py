"""Pins for the code that *reports* numbers: each test has an exact answer that a bug in the reporting code
(wrong labels, wrong scale, wrong step, a swapped rate) would change.

- the Gaussian test-accuracy estimator (``train(..., test=SignalNoiseModel)``) on degenerate networks whose
  accuracy has a closed form, at σ_ξ ≠ 1 and τ₊ ≠ τ₋, in both engines;
- the analytic gradient at exactly-zero pre-activations (σ'(0) = 0, as in PyTorch);
- ``lnfl.theory``'s formulas at non-unit σ_ξ, against the formulas written out by hand.
"""

import math

import pytest
import torch

from lnfl import theory
from lnfl.data import Dataset, SignalNoiseModel
from lnfl.model import autograd_gradient, gradient, network_output
from lnfl.training import train


def _phi(x: float) -> float:
    """Standard normal CDF Φ(x)."""
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _noisy_label_accuracy(p_pos: float, p_neg: float, tau_plus: float, tau_minus: float) -> float:
    """Accuracy against noisy test labels for balanced classes: a prediction is right when it agrees with ỹ."""
    plus = (1 - tau_plus) * p_pos + tau_plus * (1 - p_pos)
    minus = (1 - tau_minus) * p_neg + tau_minus * (1 - p_neg)
    return (plus + minus) / 2


@pytest.mark.parametrize("engine", ["weights", "coef"])
@pytest.mark.parametrize("sigma_xi", [0.5, 2.0])
def test_gaussian_test_accuracy_of_a_linear_network(engine, sigma_xi):
    """m = 1, w_{+1} = c μ̂ and w_{−1} = −k c μ̂ (μ̂ = μ/‖μ‖).  With g = ⟨μ̂, ξ⟩ ~ N(0, σ_ξ²):

    y = +1: f = c‖μ‖ + σ(c g) − σ(−k c g) > 0  ⟺  g > −‖μ‖/k,   so P(f > 0 | y = +1) = Φ(‖μ‖/(k σ_ξ));
    y = −1: f = σ(c g) − k c‖μ‖ − σ(−k c g) < 0  ⟺  g < k‖μ‖,   so P(f < 0 | y = −1) = Φ(k‖μ‖/σ_ξ).

    The two classes are classified with different accuracies, so τ₊ ≠ τ₋ matters in the noisy-label accuracy.
    """
    d, mu_norm, k, c, tau_plus, tau_minus = 6, 1.0, 4.0, 0.7, 0.4, 0.1
    model = SignalNoiseModel(d, mu_norm, sigma_xi=sigma_xi, tau_plus=tau_plus, tau_minus=tau_minus)
    mu_hat = model.mu / mu_norm
    W0 = torch.stack([c * mu_hat, -k * c * mu_hat])[:, None, :]  # (2, m = 1, d)
    data = model.sample(4, seed=1)
    hist = train(W0, data, eta=0.1, steps=0, test=model, engine=engine)
    p_pos, p_neg = _phi(mu_norm / (k * sigma_xi)), _phi(k * mu_norm / sigma_xi)
    tol = 4 * math.sqrt(0.25 / 16384)  # four Monte Carlo standard errors of the fixed draws
    assert float(hist.test_acc[0]) == pytest.approx((p_pos + p_neg) / 2, abs=tol)
    expected_noisy = _noisy_label_accuracy(p_pos, p_neg, tau_plus, tau_minus)
    swapped = _noisy_label_accuracy(p_pos, p_neg, tau_minus, tau_plus)
    assert abs(expected_noisy - swapped) > 4 * tol, "the case must tell τ₊ from τ₋"
    assert float(hist.test_acc_noisy_labels[0]) == pytest.approx(expected_noisy, abs=tol)


def test_gaussian_test_accuracy_of_a_noise_only_network():
    """w_{+1} = a u₁, w_{−1} = a u₂ with u₁, u₂ orthonormal and orthogonal to μ: f = σ(a g₁) − σ(a g₂) for i.i.d.
    g₁, g₂, whatever y.  P(f > 0) = P(f < 0) = 3/8 and P(f = 0) = 1/4, at any σ_ξ: accuracy 3/8 against true
    labels, and also 3/8 against noisy labels (each class is right with probability 3/8 whatever its label),
    because an output f = 0 is wrong against either label, as it is when a test sample is counted."""
    d = 5
    model = SignalNoiseModel(d, 1.0, sigma_xi=3.0, tau_plus=0.3, tau_minus=0.1)
    e = torch.eye(d, dtype=torch.float64)
    W0 = torch.stack([0.5 * e[1], 0.5 * e[2]])[:, None, :]
    hist = train(W0, model.sample(4, seed=2), steps=0, test=model)
    tol = 4 * math.sqrt(0.25 / 16384)
    assert float(hist.test_acc[0]) == pytest.approx(3 / 8, abs=tol)
    assert float(hist.test_acc_noisy_labels[0]) == pytest.approx(3 / 8, abs=tol)


def test_sample_test_accuracy_uses_true_and_observed_labels():
    """On a test Dataset, test_acc counts y_i f > 0 and test_acc_noisy_labels counts ỹ_i f > 0."""
    model = SignalNoiseModel(30, 3.0, sigma_xi=1.5, tau_plus=0.4, tau_minus=0.1)
    data, test = model.sample(10, seed=0), model.sample(300, seed=1)
    W0 = torch.randn(2, 3, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    hist = train(W0, data, eta=0.05, steps=7, record_every=7, test=test)
    f = network_output(hist.W, test)
    assert float(hist.test_acc[-1]) == pytest.approx(float((test.y * f > 0).double().mean()), abs=1e-12)
    assert float(hist.test_acc_noisy_labels[-1]) == pytest.approx(
        float((test.y_obs * f > 0).double().mean()), abs=1e-12
    )
    assert float(hist.test_acc[-1]) != float(hist.test_acc_noisy_labels[-1]), "the case must tell the two apart"


def test_gradient_at_exactly_zero_pre_activations():
    """σ'(0) = 0 (as PyTorch's ReLU): a filter exactly orthogonal to a patch gets no gradient from it.

    ξ_0 = e₂ and ξ_1 = e₃; filter (+1, 1) = e₃ is exactly orthogonal to μ = e₁ and to ξ_0, so its only active
    patch is ξ_1; filter (−1, 1) = 0 has every pre-activation exactly zero and must get a zero gradient.
    """
    e = torch.eye(4, dtype=torch.float64)
    data = Dataset(e[0], torch.stack([e[1], e[2]]), torch.tensor([1.0, -1.0]), torch.tensor([1.0, 1.0]))
    W = torch.stack([e[2], torch.zeros(4, dtype=torch.float64)])[:, None, :]
    g = gradient(W, data)
    assert torch.allclose(g, autograd_gradient(W, data), atol=1e-15, rtol=0)
    assert torch.equal(g[1], torch.zeros_like(g[1])), "all pre-activations of filter (−1, 1) are exactly 0"
    # by hand: only sample 1's noise patch ξ_1 = e₃ is active for filter (+1, 1); its margin ỹ f = 1
    dl = -1 / (1 + math.exp(1.0))  # ℓ'(1)
    expected = torch.zeros(4, dtype=torch.float64)
    expected[2] = dl * 1.0 * 1.0 / (2 * 1)  # (1/(nm)) ℓ'_1 · j ỹ_1 · ξ_1 with n = 2, m = 1, j = ỹ_1 = +1
    assert torch.allclose(g[0, 0], expected, atol=1e-15)


def test_theory_at_non_unit_sigma_xi():
    """Each formula with σ_ξ = 2, written out by hand: a σ_ξ dropped or squared twice changes the value."""
    n, m, d, eta, mu, s = 50, 4, 300, 0.2, 3.0, 2.0
    assert theory.snr(mu, s, d) == pytest.approx(mu / (s * math.sqrt(d)))
    assert theory.n_snr2(n, mu, s, d) == pytest.approx(n * mu**2 / (s**2 * d))
    assert theory.t1_order(n, m, eta, s, d) == pytest.approx(n * m / (eta * s**2 * d))
    assert theory.memorisation_step(eta, s, d, n, m) == pytest.approx(eta * s**2 * d / (2 * n * m))
    assert theory.signal_step(eta, mu, m, 0.1) == pytest.approx(eta * mu**2 * 0.8 / (4 * m))
    assert theory.noiseless_error_bound(n, mu, s, d, C=3.0) == pytest.approx(math.exp(-n * mu**4 / (3.0 * s**4 * d)))
    # the growth ratio is the ratio of the two increments at any σ_ξ, with n·SNR² computed at that σ_ξ
    ratio = theory.signal_step(eta, mu, m, 0.1) / theory.memorisation_step(eta, s, d, n, m)
    assert ratio == pytest.approx(theory.growth_ratio(theory.n_snr2(n, mu, s, d), 0.1))


def test_phase_diagram_cells_equal_direct_runs():
    """Each cell of the phase diagram equals a direct run of its configuration, trained separately in the other
    engine (weights, not the batched coefficients): a shuffled grid, a swapped τ or the wrong late step would
    show."""
    from lnfl.regimes import phase_diagram
    from lnfl.stages import stage_one_window
    from lnfl.training import setup

    small = {"d": 80, "n": 20, "m": 4}
    n_snr2s, taus, steps = [4.0, 16.0], [0.1, 0.3], 120
    pd = phase_diagram(n_snr2s, taus, seeds=[2], horizon=4.0, steps=steps, dtype=torch.float64, **small)
    order = float(pd["order"])
    assert order == pytest.approx(theory.t1_order(20, 4, 0.1, 1.0, 80))
    for a_idx, a in enumerate(n_snr2s):
        for t_idx, tau in enumerate(taus):
            s = setup(seed=2, n_test=1, n_snr2=a, tau_plus=tau, tau_minus=tau, **small)
            early = train(s.W0, s.data, eta=s.eta, steps=math.ceil(4.0 * order), engine="weights")
            window = stage_one_window(early, s.data)
            assert float(pd["has_window"][a_idx, t_idx, 0]) == float(window is not None), (a, tau)
            if window is not None:
                assert float(pd["t1"][a_idx, t_idx, 0]) == window[1], (a, tau)
            late = train(s.W0, s.data, eta=s.eta, steps=steps, record_every=steps, test=s.model, engine="weights")
            err = float(pd["final_test_error"][a_idx, t_idx, 0])
            assert err == pytest.approx(1 - float(late.test_acc[-1]), abs=1e-9), (a, tau)
            fit = float(pd["final_noisy_fit"][a_idx, t_idx, 0])
            assert fit == pytest.approx(float(late.train_acc_noisy[-1]), abs=1e-12), (a, tau)
    assert float(pd["final_test_error"][0, 1, 0]) != float(pd["final_test_error"][1, 0, 0]), "cells must differ"
