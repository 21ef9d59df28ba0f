import pytest
import torch

from lnfl.data import SignalNoiseModel
from lnfl.model import autograd_gradient, dloss, gradient, init_weights, logistic_loss, network_output, sample_losses
from lnfl.training import setup


def _rel(a, b):
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("tau_plus, tau_minus", [(0.0, 0.0), (0.2, 0.2), (0.35, 0.05)])
def test_gradient_equals_autograd(tau_plus, tau_minus):
    s = setup(seed=1, n_test=10, d=120, n=60, m=6, tau_plus=tau_plus, tau_minus=tau_minus)
    assert int(s.data.noisy.sum()) > 0 or tau_plus == 0.0
    W = s.W0
    for _ in range(4):  # at W0 and after a few GD steps, where many ReLUs have switched
        g, a = gradient(W, s.data), autograd_gradient(W, s.data)
        assert _rel(g, a) < 1e-10
        W = W - 0.5 * g


def test_gradient_equals_autograd_reference_configuration(reference_runs):
    s = setup(seed=0)
    W = reference_runs[("noisy", 0)].W
    assert _rel(gradient(W, s.data), autograd_gradient(W, s.data)) < 1e-10


def test_network_output_matches_definition(small):
    W, data = small.W0 * 50, small.data
    m = W.shape[1]
    f = torch.zeros(data.n, dtype=W.dtype)
    for i in range(data.n):
        for j, sign in ((0, 1.0), (1, -1.0)):
            for r in range(m):
                f[i] += sign / m * (torch.relu(W[j, r] @ (data.y[i] * data.mu)) + torch.relu(W[j, r] @ data.xi[i]))
    assert torch.allclose(network_output(W, data), f, rtol=0, atol=1e-12)
    assert torch.allclose(sample_losses(W, data), torch.log1p(torch.exp(-data.y_obs * f)), atol=1e-12)


def test_loss_and_derivative_are_stable():
    z = torch.tensor([-800.0, -1.0, 0.0, 1.0, 800.0])
    assert torch.isfinite(logistic_loss(z)).all()
    assert float(logistic_loss(torch.tensor(0.0))) == pytest.approx(0.6931471805599453)
    assert torch.allclose(dloss(z), -1 / (1 + torch.exp(z)))
    mid = dloss(z[1:4])  # strictly inside (-1, 0) away from floating-point saturation
    assert bool(((mid > -1) & (mid < 0)).all())
    assert float(dloss(torch.tensor(0.0))) == -0.5


def test_init_weights_seeded_and_scaled():
    a, b = init_weights(20, 400, 0.01, seed=7), init_weights(20, 400, 0.01, seed=7)
    assert torch.equal(a, b) and a.shape == (2, 20, 400)
    assert float(a.std()) == pytest.approx(0.01, rel=0.02)
    assert init_weights(2, 3, dtype=torch.float32).dtype == torch.float32


def test_float32_works(small):
    data32 = small.data.to(dtype=torch.float32)
    W32 = small.W0.float()
    g = gradient(W32, data32)
    assert g.dtype == torch.float32
    assert _rel(g.double(), gradient(small.W0, small.data)) < 1e-4


def test_model_argument_errors(small):
    with pytest.raises(ValueError, match="m must be an integer >= 1, got 0"):
        init_weights(0, 3)
    with pytest.raises(ValueError, match=r"sigma0 must be in \(0, inf\)"):
        init_weights(2, 3, sigma0=0.0)
    with pytest.raises(ValueError, match=r"W must have shape \(2, m, 60\)"):
        gradient(torch.zeros(2, 3, 59, dtype=torch.float64), small.data)
    with pytest.raises(ValueError, match="W must contain only finite values"):
        network_output(torch.full((2, 3, 60), float("nan")), small.data)
    with pytest.raises(TypeError, match="data must be an lnfl.data.Dataset"):
        gradient(small.W0, "data")
    with pytest.raises(ValueError, match="share dtype"):
        gradient(small.W0.float(), small.data)
    other = SignalNoiseModel(d=60, mu_norm=1.0).sample(4)
    assert network_output(small.W0, other).shape == (4,)


def test_network_output_and_losses_stay_differentiable():
    """Validation must not cut autograd: L_S through sample_losses differentiates to the analytic gradient."""
    s = setup(seed=1, n_test=1, d=30, n=12, m=3, tau_plus=0.2, tau_minus=0.2)
    W = s.W0.clone().requires_grad_(True)
    sample_losses(W, s.data).mean().backward()
    assert W.grad is not None and torch.allclose(W.grad, gradient(s.W0, s.data), atol=1e-14)
    assert network_output(W, s.data).requires_grad
