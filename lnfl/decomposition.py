"""The signal–noise decomposition of Chapter 4, computed by projection.

    w_{j,r}^{(t)} = w_{j,r}^{(0)} + j·γ_{j,r}^{(t)}·μ/‖μ‖² + Σ_i ρ_{j,r,i}^{(t)}·ξ_i/‖ξ_i‖²

γ_{j,r} measures signal learning; ρ_{j,r,i} memorisation of sample i's noise.  The coefficients are
unique (almost surely) when n + 1 ≤ d, because μ, ξ_1, …, ξ_n are then linearly independent.
"""

from __future__ import annotations

import torch

from .data import Dataset
from .model import _check_pair, _sign_j

__all__ = ["decompose", "rho_bar", "rho_under"]


def decompose(W: torch.Tensor, W0: torch.Tensor, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """(γ, ρ) of W − W⁽⁰⁾ in the basis [μ/‖μ‖², ξ_1/‖ξ_1‖², …, ξ_n/‖ξ_n‖²].

    Returns γ of shape (2, m) and ρ of shape (2, m, n).  Solved by least squares (QR), so it also returns
    the best approximation when W − W⁽⁰⁾ has a component outside span{μ, ξ_i} (it never does under GD).
    Raises ``ValueError`` when n + 1 > d, where the coefficients are not unique.
    """
    W = _check_pair(W, data)
    W0 = _check_pair(W0, data)
    if W.shape != W0.shape:
        raise ValueError(f"W and W0 must have the same shape, got {tuple(W.shape)} and {tuple(W0.shape)}")
    if data.n + 1 > data.d:
        raise ValueError(f"decompose needs n + 1 <= d for unique coefficients, got n = {data.n}, d = {data.d}")
    basis = torch.cat(
        [(data.mu / data.mu.dot(data.mu))[:, None], (data.xi / (data.xi * data.xi).sum(1, keepdim=True)).T],
        dim=1,
    )  # (d, n+1)
    m = W.shape[1]
    delta = (W - W0).reshape(2 * m, data.d).T  # (d, 2m)
    Q, R = torch.linalg.qr(basis)
    coef = torch.linalg.solve_triangular(R, Q.T @ delta, upper=True).T.reshape(2, m, data.n + 1)
    gamma = _sign_j(W) * coef[:, :, 0]
    return gamma, coef[:, :, 1:]


def rho_bar(rho: torch.Tensor) -> torch.Tensor:
    """ρ̄ = ρ·1(ρ ≥ 0): memorisation by the filters of the observed class."""
    return rho.clamp(min=0)


def rho_under(rho: torch.Tensor) -> torch.Tensor:
    """ρ̲ = ρ·1(ρ ≤ 0): the small negative part, on the filters of the other class."""
    return rho.clamp(max=0)
