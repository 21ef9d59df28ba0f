import pytest
import torch

from lnfl.decomposition import decompose, noise_cross_talk, rho_bar, rho_under
from lnfl.model import gradient
from lnfl.training import setup, train


def test_decompose_recovers_known_coefficients():
    s = setup(seed=2, n_test=5, d=80, n=30, m=4)
    d = s.data
    g = torch.randn(2, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    r = torch.randn(2, 4, 30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    j = torch.tensor([1.0, -1.0])[:, None, None]
    W = s.W0 + j * g[:, :, None] * d.mu / d.mu.dot(d.mu) + r @ (d.xi / (d.xi**2).sum(1, keepdim=True))
    gamma, rho = decompose(W, s.W0, d)
    assert torch.allclose(gamma, g, atol=1e-10) and torch.allclose(rho, r, atol=1e-10)


def test_decompose_equals_recursion_with_noisy_asymmetric_labels(small):
    h = small.train(steps=200, record_every=200)
    gamma, rho = decompose(h.W, small.W0, small.data)
    assert float((gamma - h.gamma[-1]).abs().max()) < 1e-9
    assert float((rho - h.rho[-1]).abs().max()) < 1e-9


def test_parts_of_rho():
    rho = torch.tensor([-2.0, 0.0, 3.0])
    assert torch.equal(rho_bar(rho), torch.tensor([0.0, 0.0, 3.0]))
    assert torch.equal(rho_under(rho), torch.tensor([-2.0, 0.0, 0.0]))
    assert torch.equal(rho_bar(rho) + rho_under(rho), rho)


def test_decompose_errors(small):
    with pytest.raises(ValueError, match="W and W0 must have the same shape"):
        decompose(small.W0, small.W0[:, :2], small.data)
    s = setup(seed=0, n_test=5, d=10, n=12, m=2)
    with pytest.raises(ValueError, match="n \\+ 1 <= d .* n = 12, d = 10"):
        decompose(s.W0, s.W0, s.data)


def _recursion_transcribed(W0, data, eta, steps):
    """γ⁽ᵗ⁾, ρ⁽ᵗ⁾ and the margins ỹ_i f for t = 0..steps, by the recursion of Chapter 4 written out from the
    equations and sharing no code with lnfl: the weights come from the decomposition formula, and the network,
    ℓ' and σ' are computed here from them.  The independent implementation the paper map points to."""
    n, m = data.n, W0.shape[1]
    mu, xi, y, y_obs = data.mu, data.xi, data.y, data.y_obs
    j = torch.tensor([1.0, -1.0], dtype=W0.dtype)[:, None, None]  # second-layer signs, (2, 1, 1)
    mu_sq, xi_sq = (mu * mu).sum(), (xi * xi).sum(1)
    gamma, rho = torch.zeros(2, m, dtype=W0.dtype), torch.zeros(2, m, n, dtype=W0.dtype)
    gammas, rhos, margins = [], [], []
    for t in range(steps + 1):
        # w_{j,r} = w⁽⁰⁾_{j,r} + j γ_{j,r} μ/‖μ‖² + Σ_i ρ_{j,r,i} ξ_i/‖ξ_i‖²
        W = W0 + j * gamma[:, :, None] * mu / mu_sq + torch.einsum("jri,id->jrd", rho, xi / xi_sq[:, None])
        pre_mu = torch.einsum("jrd,d->jr", W, mu)[:, :, None] * y  # ⟨w_{j,r}, y_i μ⟩, (2, m, n)
        pre_xi = torch.einsum("jrd,id->jri", W, xi)  # ⟨w_{j,r}, ξ_i⟩, (2, m, n)
        F = (torch.clamp(pre_mu, min=0) + torch.clamp(pre_xi, min=0)).sum(1) / m  # F_j(W_j, x_i), (2, n)
        margin = y_obs * (F[0] - F[1])
        gammas.append(gamma)
        rhos.append(rho)
        margins.append(margin)
        if t == steps:
            break
        dl = -1.0 / (1.0 + torch.exp(margin))  # ℓ'_i
        gamma = gamma - eta * mu_sq / (n * m) * (dl * y_obs * y * (pre_mu > 0)).sum(-1)
        rho = rho - eta / (n * m) * dl * j * y_obs * (pre_xi > 0) * xi_sq
    return torch.stack(gammas), torch.stack(rhos), torch.stack(margins)


@pytest.mark.parametrize("engine", ["weights", "coef"])
def test_training_equals_an_independent_transcription_of_the_recursion(small, engine):
    """lnfl.training.train (both engines) against the recursion written out from the equations, at every step,
    on γ, ρ and the margins, with asymmetric flip rates."""
    steps = 60
    h = train(small.W0, small.data, eta=0.5, steps=steps, record_every=1, engine=engine)
    gamma, rho, margin = _recursion_transcribed(small.W0, small.data, 0.5, steps)
    assert small.data.noisy.any() and float(rho.abs().max()) > 0.1 and float(gamma.abs().max()) > 0.05
    assert float((h.gamma - gamma).abs().max()) < 1e-10
    assert float((h.rho - rho).abs().max()) < 1e-10
    assert float((h.margin - margin).abs().max()) < 1e-10


def test_weight_space_gd_projected_equals_the_transcribed_recursion(small):
    """Plain GD on W with lnfl.model.gradient, projected by decompose, against the transcription."""
    eta, steps = 0.5, 40
    W = small.W0.clone()
    for _ in range(steps):
        W = W - eta * gradient(W, small.data)
    g, r = decompose(W, small.W0, small.data)
    gamma, rho, _ = _recursion_transcribed(small.W0, small.data, eta, steps)
    assert float((g - gamma[-1]).abs().max()) < 1e-10
    assert float((r - rho[-1]).abs().max()) < 1e-10


def test_noise_cross_talk_is_what_the_other_samples_add_to_the_noise_projection(small):
    """⟨Σ_k ρ_k ξ_k/‖ξ_k‖², ξ_i⟩ = ρ_i + Σ_{k≠i} ρ_k ⟨ξ_k, ξ_i⟩/‖ξ_k‖², with ρ of mixed signs."""
    data = small.data
    rho = torch.randn(2, 5, data.n, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    W_noise = rho @ (data.xi / (data.xi**2).sum(1, keepdim=True))  # (2, m, d)
    projection = W_noise @ data.xi.T  # ⟨w, ξ_i⟩, (2, m, n)
    cross = noise_cross_talk(rho, data)
    assert cross.shape == rho.shape
    assert float((projection - rho - cross).abs().max()) < 1e-12
    # one sample memorised alone: nothing of it on its own noise patch, exactly ρ_k c_{k i} on the others
    one = torch.zeros(data.n, dtype=torch.float64)
    one[3] = 2.0
    c = noise_cross_talk(one, data)
    assert float(c[3]) == 0.0
    expected = 2.0 * (data.xi[3] @ data.xi.T) / (data.xi[3] @ data.xi[3])
    assert torch.allclose(c[torch.arange(data.n) != 3], expected[torch.arange(data.n) != 3], atol=1e-14)
    # a leading time axis is carried through
    stacked = noise_cross_talk(torch.stack([rho, 2 * rho]), data)
    assert torch.allclose(stacked[1], 2 * cross, atol=1e-12)


def test_noise_cross_talk_scale_is_rho_times_sqrt_n_over_d():
    """With every ρ equal to 1 the cross talk has mean square (n − 1)/d (Chapter 2): RMS ≈ 0.7 at d = 2n.
    One draw's mean square varies by about 12% (sd over 60 seeds), so ten draws are averaged (sd ≈ 4%)."""
    ratios = []
    for seed in range(10):
        data = setup(seed=seed, n_test=1).data  # the reference shape, n = 200, d = 400
        ms = float(noise_cross_talk(torch.ones(data.n, dtype=torch.float64), data).pow(2).mean())
        ratios.append(ms / ((data.n - 1) / data.d))
    assert sum(ratios) / len(ratios) == pytest.approx(1.0, abs=0.12)


def test_noise_cross_talk_errors(small):
    with pytest.raises(ValueError, match="last axis"):
        noise_cross_talk(torch.zeros(2, 5, small.data.n + 1, dtype=torch.float64), small.data)
    with pytest.raises(ValueError, match="dtype"):
        noise_cross_talk(torch.zeros(2, 5, small.data.n, dtype=torch.float32), small.data)
    with pytest.raises(TypeError, match="data"):
        noise_cross_talk(torch.zeros(small.data.n, dtype=torch.float64), "data")
