"""The two-layer ReLU CNN of Han et al. (2025) (Chapter 3), its logistic loss and its analytic gradient.

    F_j(W_j, x) = (1/m) Σ_r [σ(⟨w_{j,r}, x⁽¹⁾⟩) + σ(⟨w_{j,r}, x⁽²⁾⟩)],   f(W, x) = F_{+1} − F_{−1},

with σ(z) = max(0, z), the same filter on both patches, and the second layer fixed at ±1/m.  Weights
are a (2, m, d) tensor W: index 0 of the first axis is j = +1, index 1 is j = −1.
"""

from __future__ import annotations

import torch

from ._validate import check_dataset, check_device, check_dtype, check_int, check_positive, check_seed, check_tensor
from .data import Dataset

__all__ = ["init_weights", "network_output", "sample_losses", "gradient", "autograd_gradient", "logistic_loss", "dloss"]


def _sign_j(W: torch.Tensor) -> torch.Tensor:
    """The second-layer signs j ∈ {+1, −1} as a (2, 1) tensor matching W's dtype and device."""
    return torch.tensor([[1.0], [-1.0]], dtype=W.dtype, device=W.device)


def init_weights(
    m: int,
    d: int,
    sigma0: float = 0.01,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """W⁽⁰⁾ with w_{j,r}⁽⁰⁾ ~ N(0, σ₀² I_d) i.i.d., shape (2, m, d).

    Drawn on the CPU in float64 from a seeded generator, then moved, so a seed means the same W⁽⁰⁾ everywhere.
    ``device`` must exist on this machine (``"cuda"`` without CUDA is refused at once).
    """
    m = check_int("m", m)
    d = check_int("d", d)
    sigma0 = check_positive("sigma0", sigma0)
    seed = check_seed("seed", seed)
    check_dtype("dtype", dtype)
    device = check_device("device", device)
    g = torch.Generator().manual_seed(seed)
    W = sigma0 * torch.randn(2, m, d, generator=g, dtype=torch.float64)
    if not bool(torch.isfinite(W).all()):
        raise ValueError(f"sigma0={sigma0:g} is too large: W⁽⁰⁾ = sigma0·N(0, 1) overflows a float")
    return W.to(dtype=dtype, device=device)


def _check_pair(W: object, data: object, name: str = "W", data_name: str = "data") -> torch.Tensor:
    """Validate a Dataset and weights for it: shape (2, m, d), its dtype and device, finite; returns W detached.
    ``name`` and ``data_name`` are the arguments' names as the caller wrote them."""
    check_dataset(data_name, data)
    return check_tensor(
        name,
        W,
        shape=(2, "m", data.d),
        context=f"2 classes j = ±1, m >= 1 filters, d = {data.d} from {data_name}",
        like=(data_name, data.xi),
    )


def _projections(W: torch.Tensor, data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """⟨w_{j,r}, μ⟩ as (2, m) and ⟨w_{j,r}, ξ_i⟩ as (2, m, n)."""
    w_mu = W @ data.mu
    w_xi = W @ data.xi.T
    return w_mu, w_xi


def _output(w_mu: torch.Tensor, w_xi: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """f(W, x_i) from the projections: (1/m) Σ_r [σ(y_i⟨w,μ⟩) + σ(⟨w,ξ_i⟩)], F_{+1} − F_{−1}."""
    m = w_mu.shape[1]
    signal = torch.relu(w_mu[:, :, None] * y[None, None, :])  # σ(⟨w_{j,r}, y_i μ⟩), (2, m, n)
    F = (signal + torch.relu(w_xi)).sum(dim=1) / m  # (2, n)
    return F[0] - F[1]


def network_output(W: torch.Tensor, data: Dataset) -> torch.Tensor:
    """f(W, x_i) = F_{+1}(W_{+1}, x_i) − F_{−1}(W_{−1}, x_i) for every sample, shape (n,); differentiable by
    autograd when W requires grad (Chapter 3 compares :func:`gradient` with it)."""
    _check_pair(W, data)  # validation only: W itself keeps its autograd graph
    return _output(*_projections(W, data), data.y)


def _logistic_loss(z: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.softplus(-z)


def _dloss(z: torch.Tensor) -> torch.Tensor:
    return -torch.sigmoid(-z)


def logistic_loss(z: torch.Tensor) -> torch.Tensor:
    """ℓ(z) = log(1 + e^{−z}), computed stably, for a float32/float64 tensor of finite margins z (any shape);
    differentiable by autograd."""
    check_tensor("z", z)
    return _logistic_loss(z)


def dloss(z: torch.Tensor) -> torch.Tensor:
    """ℓ'(z) = −1/(1 + e^{z}) ∈ (−1, 0), for a float32/float64 tensor of finite margins z (any shape)."""
    check_tensor("z", z)
    return _dloss(z)


def sample_losses(W: torch.Tensor, data: Dataset) -> torch.Tensor:
    """ℓ(ỹ_i f(W, x_i)) for every sample, shape (n,); their mean is L_S(W).  Differentiable by autograd."""
    _check_pair(W, data)  # validation only: W itself keeps its autograd graph
    return _logistic_loss(data.y_obs * _output(*_projections(W, data), data.y))


def _gd_coefficients(
    w_mu: torch.Tensor, w_xi: torch.Tensor, data: Dataset
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The gradient in the basis {μ, ξ_i}: ∇_{w_{j,r}} L_S = a_{j,r} μ + Σ_i b_{j,r,i} ξ_i.

    With q_i = ℓ'_i ỹ_i/(nm) and j ∈ {+1, −1},
        a_{j,r}   = j Σ_i q_i y_i σ'(⟨w_{j,r}, y_i μ⟩),
        b_{j,r,i} = j q_i σ'(⟨w_{j,r}, ξ_i⟩),
    where σ'(z) = 1(z > 0) as in PyTorch.  Returns (margins ỹ_i f, a of shape (2, m), b of shape (2, m, n)).
    The GD step moves γ_{j,r} by −η‖μ‖² j a_{j,r} and ρ_{j,r,i} by −η‖ξ_i‖² b_{j,r,i} (Chapter 4).
    """
    n = data.n
    m = w_mu.shape[1]
    margin = data.y_obs * _output(w_mu, w_xi, data.y)
    q = _dloss(margin) * data.y_obs / (n * m)  # (n,)
    j = _sign_j(w_mu)  # (2, 1)
    signal_active = (w_mu[:, :, None] * data.y[None, None, :] > 0).to(w_mu.dtype)  # σ'(⟨w, y_i μ⟩)
    a = j * (signal_active @ (q * data.y))  # (2, m)
    b = j[:, :, None] * (w_xi > 0).to(w_xi.dtype) * q  # (2, m, n)
    return margin, a, b


def gradient(W: torch.Tensor, data: Dataset) -> torch.Tensor:
    """∇_W L_S(W), analytic, shape (2, m, d) (Chapter 3):

    ∇_{w_{j,r}} L_S = (1/(nm)) Σ_i ℓ'_i · j ỹ_i · [σ'(⟨w_{j,r}, y_i μ⟩) y_i μ + σ'(⟨w_{j,r}, ξ_i⟩) ξ_i].
    Equal to autograd's gradient of the mean logistic loss (σ'(0) = 0, as in PyTorch).
    """
    W = _check_pair(W, data)
    _, a, b = _gd_coefficients(*_projections(W, data), data)
    return a[:, :, None] * data.mu + b @ data.xi


def autograd_gradient(W: torch.Tensor, data: Dataset) -> torch.Tensor:
    """∇_W L_S(W) computed by PyTorch autograd on the patches, an independent check of :func:`gradient`.

    Builds f from ``data.patches()`` exactly as written in Chapter 3 (no shared code with
    :func:`gradient` beyond the data) and differentiates the mean logistic loss.
    """
    W = _check_pair(W, data).detach().clone().requires_grad_(True)
    m = W.shape[1]
    x = data.patches()  # (n, 2, d)
    pre = torch.einsum("jrd,npd->njrp", W, x)  # ⟨w_{j,r}, x⁽ᵖ⁾_i⟩
    F = torch.relu(pre).sum(dim=(2, 3)) / m  # (n, 2)
    f = F[:, 0] - F[:, 1]
    loss = torch.nn.functional.softplus(-data.y_obs * f).mean()
    (g,) = torch.autograd.grad(loss, W)
    return g
