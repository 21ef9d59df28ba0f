"""The signal–noise data model of Han et al. (2025), Section 3 (Chapter 2).

Each input has two patches, x = [x⁽¹⁾, x⁽²⁾]: the *signal patch* x⁽¹⁾ = y·μ, built from the true label
y ∈ {−1, +1}, and the *noise patch* x⁽²⁾ = ξ ~ N(0, σ_ξ² I_d), independent of y.  Training sees only the
observed label ỹ, obtained by class-conditional flips τ₊ = P(ỹ = −1 | y = +1), τ₋ = P(ỹ = +1 | y = −1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ._validate import (
    check_dtype,
    check_int,
    check_labels,
    check_positive,
    check_seed,
    check_tau,
    check_tensor,
)

__all__ = ["Dataset", "LabelNoise", "SignalNoiseModel"]


class LabelNoise:
    """The clean/noisy split S_t, S_f of any data set with true labels ``y`` and observed labels ``y_obs``."""

    y: torch.Tensor
    y_obs: torch.Tensor

    @property
    def noisy(self) -> torch.Tensor:
        """Boolean mask of S_f = {i : ỹ_i ≠ y_i}, the samples whose label was flipped."""
        return self.y_obs != self.y

    @property
    def clean(self) -> torch.Tensor:
        """Boolean mask of S_t = {i : ỹ_i = y_i}."""
        return self.y_obs == self.y


class Dataset(LabelNoise):
    """n samples of the signal–noise model: μ, the noise patches ξ_i, true labels y_i, observed labels ỹ_i.

    Labels are stored as ±1 in the dtype of ``xi`` so they enter the equations directly.

    >>> data = Dataset(mu, xi, y, y_obs)       # validated: shapes, finiteness, labels in {−1, +1}
    >>> data.noisy                            # S_f = {i : ỹ_i ≠ y_i} as a boolean mask
    """

    def __init__(self, mu: torch.Tensor, xi: torch.Tensor, y: torch.Tensor, y_obs: torch.Tensor) -> None:
        xi = check_tensor("xi", xi, ndim=2)
        mu = check_tensor("mu", mu, ndim=1)
        n, d = xi.shape
        if n < 1 or d < 1:
            raise ValueError(f"xi must have shape (n, d) with n >= 1 and d >= 1, got {tuple(xi.shape)}")
        if mu.shape[0] != d:
            raise ValueError(f"mu must have shape ({d},) to match xi's d = {d}, got {tuple(mu.shape)}")
        if mu.dtype != xi.dtype or mu.device != xi.device:
            raise ValueError(
                f"mu and xi must share dtype and device, got mu {mu.dtype} on {mu.device}, xi {xi.dtype} on {xi.device}"
            )
        check_labels("y", y, n)
        check_labels("y_obs", y_obs, n)
        self.mu: torch.Tensor = mu
        """μ ∈ ℝ^d, the signal vector."""
        self.xi: torch.Tensor = xi
        """ξ_i ∈ ℝ^d stacked as an (n, d) tensor: the noise patches."""
        self.y: torch.Tensor = y.to(dtype=xi.dtype, device=xi.device)
        """True labels y_i ∈ {−1, +1}, shape (n,)."""
        self.y_obs: torch.Tensor = y_obs.to(dtype=xi.dtype, device=xi.device)
        """Observed (possibly flipped) labels ỹ_i ∈ {−1, +1}, shape (n,)."""

    @property
    def n(self) -> int:
        """Number of samples n."""
        return self.xi.shape[0]

    @property
    def d(self) -> int:
        """Patch dimension d."""
        return self.xi.shape[1]

    @property
    def tau_hat(self) -> tuple[float, float]:
        """The realised flip rates of this draw, (τ̂₊, τ̂₋): the fraction of samples with y_i = +1, and of those
        with y_i = −1, whose observed label ỹ_i was flipped (0.0 for a class with no sample).

        Flips are Bernoulli draws, so a draw can land far from the model's τ₊, τ₋ (seed 0 of the reference
        configuration flips 55 of 200 labels, τ̂ = 0.275 against τ = 0.2); predictions for one draw use these.
        """
        rates = []
        for cls in (1.0, -1.0):
            members = self.y == cls
            k = int(members.sum())
            rates.append(float(self.noisy[members].sum()) / k if k else 0.0)
        return rates[0], rates[1]

    def patches(self) -> torch.Tensor:
        """The inputs as an (n, 2, d) tensor: [x⁽¹⁾, x⁽²⁾] = [y_i·μ, ξ_i]."""
        return torch.stack([self.y[:, None] * self.mu[None, :], self.xi], dim=1)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Dataset:
        """A copy on another device and/or dtype."""
        kw = {"device": device, "dtype": dtype}
        return Dataset(self.mu.to(**kw), self.xi.to(**kw), self.y.to(**kw), self.y_obs.to(**kw))

    def __repr__(self) -> str:
        return (
            f"Dataset(n={self.n}, d={self.d}, noisy={int(self.noisy.sum())}, "
            f"‖μ‖={float(self.mu.norm()):.4g}, dtype={self.xi.dtype})"
        )


@dataclass(frozen=True)
class SignalNoiseModel:
    """The distribution of the data model (Han et al. 2025; Chapter 2).

    Parameters
    ----------
    d : patch dimension d ≥ 1.
    mu_norm : ‖μ‖ > 0; the signal vector is μ = ‖μ‖·e₁.
    sigma_xi : σ_ξ > 0, standard deviation of each noise coordinate.
    tau_plus, tau_minus : flip rates τ₊ = P(ỹ = −1 | y = +1), τ₋ = P(ỹ = +1 | y = −1), each in [0, 1/2).
    dtype, device : where sampled tensors live (float64 by default).
    """

    d: int
    mu_norm: float
    sigma_xi: float = 1.0
    tau_plus: float = 0.0
    tau_minus: float = 0.0
    dtype: torch.dtype = torch.float64
    device: torch.device | str | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "d", check_int("d", self.d))
        object.__setattr__(self, "mu_norm", check_positive("mu_norm", self.mu_norm))
        object.__setattr__(self, "sigma_xi", check_positive("sigma_xi", self.sigma_xi))
        object.__setattr__(self, "tau_plus", check_tau("tau_plus", self.tau_plus))
        object.__setattr__(self, "tau_minus", check_tau("tau_minus", self.tau_minus))
        check_dtype("dtype", self.dtype)

    @classmethod
    def from_n_snr2(
        cls,
        d: int,
        n: int,
        n_snr2: float,
        sigma_xi: float = 1.0,
        tau_plus: float = 0.0,
        tau_minus: float = 0.0,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> SignalNoiseModel:
        """The model whose ‖μ‖ gives the regime constant n·SNR² for n samples.

        n·SNR² = n‖μ‖²/(σ_ξ² d), hence ‖μ‖ = σ_ξ·√(n·SNR²·d/n).
        """
        d = check_int("d", d)
        n = check_int("n", n)
        n_snr2 = check_positive("n_snr2", n_snr2)
        sigma_xi = check_positive("sigma_xi", sigma_xi)
        mu_norm = sigma_xi * math.sqrt(n_snr2 * d / n)
        return cls(d, mu_norm, sigma_xi, tau_plus, tau_minus, dtype, device)

    @property
    def snr(self) -> float:
        """SNR = ‖μ‖/(σ_ξ √d)."""
        return self.mu_norm / (self.sigma_xi * math.sqrt(self.d))

    def n_snr2(self, n: int) -> float:
        """The regime constant n·SNR² for a training set of n samples."""
        return check_int("n", n) * self.snr**2

    @property
    def mu(self) -> torch.Tensor:
        """μ = ‖μ‖·e₁ as a (d,) tensor."""
        mu = torch.zeros(self.d, dtype=self.dtype, device=self.device)
        mu[0] = self.mu_norm
        return mu

    def sample(self, n: int, seed: int = 0) -> Dataset:
        """Draw n i.i.d. samples (y, ξ, ỹ) with a seeded generator; the same seed gives the same data.

        Sampling happens on the CPU in float64 and is then moved to ``device``/``dtype``, so a seed gives
        the same data on every device.
        """
        n = check_int("n", n)
        seed = check_seed("seed", seed)
        g = torch.Generator().manual_seed(seed)
        y = torch.where(torch.rand(n, generator=g, dtype=torch.float64) < 0.5, 1.0, -1.0).to(torch.float64)
        xi = self.sigma_xi * torch.randn(n, self.d, generator=g, dtype=torch.float64)
        u = torch.rand(n, generator=g, dtype=torch.float64)
        flip_prob = torch.where(y > 0, self.tau_plus, self.tau_minus)
        y_obs = torch.where(u < flip_prob, -y, y)
        kw = {"dtype": self.dtype, "device": self.device}
        return Dataset(self.mu, xi.to(**kw), y.to(**kw), y_obs.to(**kw))
