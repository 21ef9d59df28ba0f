"""The signal–noise data model of Han et al. (2025), Section 3 (Chapter 2).

Each input has two patches, x = [x⁽¹⁾, x⁽²⁾]: the *signal patch* x⁽¹⁾ = y·μ, built from the true label
y ∈ {−1, +1}, and the *noise patch* x⁽²⁾ = ξ ~ N(0, σ_ξ² I_d), independent of y.  Training sees only the
observed label ỹ, obtained by class-conditional flips τ₊ = P(ỹ = −1 | y = +1), τ₋ = P(ỹ = +1 | y = −1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from . import theory as _theory
from ._validate import (
    check_device,
    check_dtype,
    check_int,
    check_memory,
    check_positive,
    check_seed,
    check_signal_noise,
    check_tau,
)

__all__ = ["Dataset", "LabelNoise", "SignalNoiseModel", "orthogonal_noise"]


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
        # each field: float32/float64, finite, shapes (d,) and (n, d), one dtype and device, labels ±1
        mu, xi, y, y_obs = check_signal_noise("", mu, xi, y, y_obs)
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
        """A copy on another device and/or dtype (float32 or float64; the device must exist here)."""
        kw = {"device": check_device("device", device), "dtype": None if dtype is None else check_dtype("dtype", dtype)}
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
        big = torch.finfo(check_dtype("dtype", self.dtype)).max
        for name, value, limit in (("mu_norm", self.mu_norm, big), ("sigma_xi", self.sigma_xi, big / 10)):
            if value > limit:  # σ_ξ: noise entries reach about 6σ_ξ
                raise ValueError(f"{name}={value:g} is too large for {self.dtype} (entries must stay below {big:.3g})")
        check_device("device", self.device)

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
        if not math.isfinite(mu_norm):
            raise ValueError(
                f"n_snr2={n_snr2:g} with d={d}, n={n}, sigma_xi={sigma_xi:g} puts ‖μ‖ beyond the float range"
            )
        return cls(d, mu_norm, sigma_xi, tau_plus, tau_minus, dtype, device)

    @property
    def snr(self) -> float:
        """SNR = ‖μ‖/(σ_ξ √d) (:func:`lnfl.theory.snr`: a ``ValueError``, not ``inf``, beyond the float range)."""
        return _theory.snr(self.mu_norm, self.sigma_xi, self.d)

    def n_snr2(self, n: int) -> float:
        """The regime constant n·SNR² for a training set of n samples (:func:`lnfl.theory.n_snr2`)."""
        return _theory.n_snr2(n, self.mu_norm, self.sigma_xi, self.d)

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
        check_memory(f"sample(n={n}) with d={self.d}", 2 * 8 * n * self.d)  # ξ in float64, then in dtype
        g = torch.Generator().manual_seed(seed)
        y = torch.where(torch.rand(n, generator=g, dtype=torch.float64) < 0.5, 1.0, -1.0).to(torch.float64)
        xi = self.sigma_xi * torch.randn(n, self.d, generator=g, dtype=torch.float64)
        u = torch.rand(n, generator=g, dtype=torch.float64)
        flip_prob = torch.where(y > 0, self.tau_plus, self.tau_minus)
        y_obs = torch.where(u < flip_prob, -y, y)
        kw = {"dtype": self.dtype, "device": self.device}
        return Dataset(self.mu, xi.to(**kw), y.to(**kw), y_obs.to(**kw))


def orthogonal_noise(data: Dataset) -> Dataset:
    """The orthogonal-noise variant of Cao et al. (2022) and Kou et al. (2023) on the same draw (Chapter 2):
    every noise patch with its component along μ removed, ξ_i − (⟨ξ_i, μ⟩/‖μ‖²) μ; μ and both labels unchanged.

    Under isotropic noise that component is N(0, σ_ξ²) along μ/‖μ‖: of order σ_ξ, small against ‖ξ_i‖ ≈ σ_ξ√d
    but not against ‖μ‖ (their ratio is 1/(SNR·√d)).
    """
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be an lnfl.data.Dataset, got {type(data).__name__}")
    mu_sq = data.mu.dot(data.mu)
    if not float(mu_sq) > 0:
        raise ValueError("data.mu is zero: there is no signal direction to remove from the noise patches")
    xi = data.xi - (data.xi @ data.mu / mu_sq)[:, None] * data.mu
    return Dataset(data.mu, xi, data.y, data.y_obs)
