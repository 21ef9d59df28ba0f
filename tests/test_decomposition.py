import pytest
import torch

from lnfl.decomposition import decompose, rho_bar, rho_under
from lnfl.training import setup


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
