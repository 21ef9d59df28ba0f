"""The signal–noise decomposition of Chapter 4, computed by projection.

    w_{j,r}^{(t)} = w_{j,r}^{(0)} + j·γ_{j,r}^{(t)}·μ/‖μ‖² + Σ_i ρ_{j,r,i}^{(t)}·ξ_i/‖ξ_i‖²

γ_{j,r} measures signal learning; ρ_{j,r,i} memorisation of sample i's noise.  The coefficients are
unique (almost surely) when n + 1 ≤ d, because μ, ξ_1, …, ξ_n are then linearly independent.
"""

from __future__ import annotations

import torch

from ._validate import check_dataset, check_tensor
from .data import Dataset
from .model import _check_pair, _sign_j

__all__ = ["decompose", "rho_bar", "rho_under", "noise_cross_talk"]


def decompose(W: torch.Tensor, W0: torch.Tensor, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """(γ, ρ) of W − W⁽⁰⁾ in the basis [μ/‖μ‖², ξ_1/‖ξ_1‖², …, ξ_n/‖ξ_n‖²].

    Returns γ of shape (2, m) and ρ of shape (2, m, n).  Solved by least squares (QR), so it also returns
    the best approximation when W − W⁽⁰⁾ has a component outside span{μ, ξ_i} (it never does under GD).
    Raises ``ValueError`` when n + 1 > d, where the coefficients are not unique, when ‖μ‖ = 0 or some
    ξ_i = 0 (no direction to project on), and when μ, ξ_1, …, ξ_n are linearly dependent.
    """
    W = _check_pair(W, data, "W")
    W0 = _check_pair(W0, data, "W0")
    if W.shape != W0.shape:
        raise ValueError(f"W and W0 must have the same shape, got {tuple(W.shape)} and {tuple(W0.shape)}")
    if data.n + 1 > data.d:
        raise ValueError(f"decompose needs n + 1 <= d for unique coefficients, got n = {data.n}, d = {data.d}")
    basis = _basis(data, "data")  # (d, n+1)
    m = W.shape[1]
    delta = (W - W0).reshape(2 * m, data.d).T  # (d, 2m)
    Q, R = torch.linalg.qr(basis)
    diag = R.diagonal().abs()
    if not bool((diag > diag.max() * torch.finfo(R.dtype).eps * (data.n + 1)).all()):
        raise ValueError(
            "data's μ, ξ_1, …, ξ_n are linearly dependent (to rounding), so γ and ρ are not unique; "
            "decompose needs n + 1 independent patches"
        )
    coef = torch.linalg.solve_triangular(R, Q.T @ delta, upper=True).T.reshape(2, m, data.n + 1)
    if not bool(torch.isfinite(coef).all()):
        raise ValueError(
            f"γ and ρ of W − W0 overflow {W.dtype}: W − W0 is too large against data's patches "
            "(|γ| ~ ‖W − W0‖‖μ‖, |ρ_i| ~ ‖W − W0‖‖ξ_i‖)"
        )
    gamma = _sign_j(W) * coef[:, :, 0]
    return gamma, coef[:, :, 1:]


def _basis(data: Dataset, name: str) -> torch.Tensor:
    """[μ/‖μ‖², ξ_1/‖ξ_1‖², …] as the columns of a (d, n + 1) tensor; refuses a zero (or overflowing) norm."""
    mu_sq, xi_sq = data.mu.dot(data.mu), (data.xi * data.xi).sum(1)
    for what, sq in (("‖μ‖²", mu_sq[None]), ("‖ξ_i‖²", xi_sq)):
        bad = ~torch.isfinite(sq) | (sq <= torch.finfo(sq.dtype).tiny)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            which = "" if what == "‖μ‖²" else f" for i = {i}"
            raise ValueError(
                f"{name} has {what} = {float(sq[i]):.3g}{which}: the decomposition divides by it, so it must be "
                f"positive and finite in {sq.dtype}"
            )
    return torch.cat([(data.mu / mu_sq)[:, None], (data.xi / xi_sq[:, None]).T], dim=1)


def rho_bar(rho: torch.Tensor) -> torch.Tensor:
    """ρ̄ = ρ·1(ρ ≥ 0): memorisation by the filters of the observed class (ρ: any shape, finite)."""
    return check_tensor("rho", rho).clamp(min=0)


def rho_under(rho: torch.Tensor) -> torch.Tensor:
    """ρ̲ = ρ·1(ρ ≤ 0): the small negative part, on the filters of the other class (ρ: any shape, finite)."""
    return check_tensor("rho", rho).clamp(max=0)


def noise_cross_talk(rho: torch.Tensor, data: Dataset) -> torch.Tensor:
    """What the *other* samples' memorisation adds to ⟨w_{j,r}, ξ_i⟩, shape (…, n) like ``rho``:

        Σ_{k≠i} ρ_{j,r,k} ⟨ξ_k, ξ_i⟩/‖ξ_k‖².

    In the decomposition ⟨w_{j,r} − w⁽⁰⁾_{j,r}, ξ_i⟩ = ρ_{j,r,i} + (this) + j γ_{j,r} ⟨μ, ξ_i⟩/‖μ‖², so a
    sample's own memorisation ρ_{j,r,i} reaches its noise patch exactly, and the others' through the
    cross terms.  Each cross term ⟨ξ_k, ξ_i⟩/‖ξ_k‖² is of order 1/√d; their sum over k has standard deviation
    about √(Σ_{k≠i} ρ_{j,r,k}²/d), which is ρ̄√((n − 1)/d) when every ρ equals ρ̄ (Chapter 2).
    ``rho`` has the samples on its last axis, e.g. (2, m, n) or (T, 2, m, n).
    """
    check_dataset("data", data)
    rho = check_tensor("rho", rho)
    if rho.ndim < 1 or rho.shape[-1] != data.n:
        raise ValueError(
            f"rho must have the n = {data.n} samples of data on its last axis, got shape {tuple(rho.shape)}"
        )
    if rho.dtype != data.xi.dtype or rho.device != data.xi.device:
        raise ValueError(
            f"rho and data must share dtype and device, got {rho.dtype} on {rho.device} and "
            f"{data.xi.dtype} on {data.xi.device}"
        )
    xi_sq = (data.xi * data.xi).sum(1)
    coupling = (data.xi @ data.xi.T) / xi_sq[:, None]  # [k, i] = ⟨ξ_k, ξ_i⟩/‖ξ_k‖², diagonal 1
    coupling.fill_diagonal_(0.0)
    return rho @ coupling
