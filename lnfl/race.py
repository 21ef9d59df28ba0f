"""The race between clean and noisy samples on γ, and the Stage I growth ratio measured on a run.

From the recursion of Chapter 4,

    γ^{(t+1)}_{j,r} − γ^{(t)}_{j,r} = −(η‖μ‖²/(nm)) Σ_i ℓ'_i ỹ_i y_i σ'(⟨w_{j,r}^{(t)}, y_i μ⟩),

and ỹ_i y_i = +1 on the clean set S_t, −1 on the noisy set S_f.  Since ℓ'_i < 0, every clean sample pushes
γ up and every noisy sample pushes it down.  :func:`gamma_race` runs gradient descent and keeps the two
sums apart; :func:`stage_one_growth` measures the per-step growth of γ and of the active ρ̄ over the first
steps of a recorded run, to compare with :func:`lnfl.theory.growth_ratio`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._validate import (
    check_dataset,
    check_instance,
    check_int,
    check_positive,
    check_recording,
    input_scale_cause,
    step_size_cause,
)
from .data import Dataset
from .engine import _scale_cause
from .model import _check_pair, _gd_coefficients, _projections
from .training import History, TrainingDivergedError

__all__ = ["Race", "gamma_race", "observed_class_mask", "Growth", "stage_one_growth"]


@dataclass
class Race:
    """Cumulative contributions of the clean and the noisy samples to γ_{j,r}, recorded at steps ``t``.

    ``clean + noisy`` equals γ exactly (up to rounding): nothing else moves γ.
    """

    t: torch.Tensor
    """Recorded steps, shape (T,)."""
    clean: torch.Tensor
    """Σ_{s<t} of the clean samples' part of Δγ_{j,r}: (η‖μ‖²/(nm)) Σ_{i∈S_t} |ℓ'_i| σ'(⟨w_{j,r}, y_i μ⟩) ≥ 0, (T, 2, m)."""
    noisy: torch.Tensor
    """Σ_{s<t} of the noisy samples' part of Δγ_{j,r}: −(η‖μ‖²/(nm)) Σ_{i∈S_f} |ℓ'_i| σ'(⟨w_{j,r}, y_i μ⟩) ≤ 0, (T, 2, m)."""

    @property
    def gamma(self) -> torch.Tensor:
        """γ_{j,r}^{(t)} = clean + noisy, shape (T, 2, m)."""
        return self.clean + self.noisy


def gamma_race(W0: torch.Tensor, data: Dataset, eta: float = 0.1, steps: int = 3000, record_every: int = 1) -> Race:
    """Full-batch GD from W⁽⁰⁾ (the same steps as :func:`lnfl.training.train`), splitting every Δγ_{j,r}
    into the part due to clean samples (i ∈ S_t, pushes γ up) and the part due to noisy ones (i ∈ S_f,
    pushes γ down).  Records step 0, every ``record_every`` steps and the last step.

    Raises :class:`~lnfl.training.TrainingDivergedError` naming the step and the cause, as
    :func:`lnfl.training.train` does, if the run becomes non-finite.
    """
    W0 = _check_pair(W0, data, "W0")
    eta = check_positive("eta", eta)
    steps = check_int("steps", steps, minimum=0)
    record_every = check_int("record_every", record_every)
    m, n = W0.shape[1], data.n
    check_recording("steps", steps, record_every, 2 * 2 * m * W0.element_size() + 200)
    if (cause := _scale_cause(data, "data")) is not None:
        raise TrainingDivergedError(f"training diverged at step 0: {cause}")
    mu_sq = data.mu.dot(data.mu)
    clean_f = data.clean.to(W0.dtype)
    W = W0.clone()
    clean = torch.zeros(2, m, dtype=W0.dtype, device=W0.device)
    noisy = torch.zeros_like(clean)
    ts, rec_clean, rec_noisy = [], [], []
    for t in range(steps + 1):
        w_mu, w_xi = _projections(W, data)
        margin, a, b = _gd_coefficients(w_mu, w_xi, data)
        if not bool(torch.isfinite(margin).all()):
            raise TrainingDivergedError(f"training diverged at step {t}: {_cause(t, W0, data, eta)}")
        if t % record_every == 0 or t == steps:
            ts.append(t)
            rec_clean.append(clean)
            rec_noisy.append(noisy)
        if t == steps:
            break
        # per-sample Δγ_{j,r}: −(η‖μ‖²/(nm)) ℓ'_i ỹ_i y_i σ'(⟨w_{j,r}, y_i μ⟩) = (η‖μ‖²/(nm)) |ℓ'_i| ỹ_i y_i σ'
        abs_dl = torch.sigmoid(-margin)  # |ℓ'_i|
        active = (w_mu[:, :, None] * data.y > 0).to(W.dtype)  # σ'(⟨w_{j,r}, y_i μ⟩), (2, m, n)
        push = eta * mu_sq / (n * m) * abs_dl * data.y_obs * data.y  # (n,)
        clean = clean + active @ (push * clean_f)
        noisy = noisy + active @ (push * (1 - clean_f))
        W = W - eta * (a[:, :, None] * data.mu + b @ data.xi)
    race = Race(torch.tensor(ts), torch.stack(rec_clean), torch.stack(rec_noisy))
    if not bool(torch.isfinite(race.clean).all() and torch.isfinite(race.noisy).all()):
        cause = input_scale_cause("the accumulated η‖μ‖²-sized pushes on γ of data", W0.dtype)
        raise TrainingDivergedError(f"training diverged by step {steps}: {cause}")
    return race


def _cause(t: int, W0: torch.Tensor, data: Dataset, eta: float) -> str:
    """The cause of a non-finite step, in the words of :func:`lnfl.training.train`."""
    if t == 0:
        return input_scale_cause("the initial output f(W⁽⁰⁾, x_i) of W0 on data", W0.dtype)
    xi_sq = float((data.xi * data.xi).sum(1).max())
    return step_size_cause("eta", eta, W0.dtype, float(data.mu.dot(data.mu)), xi_sq, data.n, W0.shape[1])


def observed_class_mask(data: Dataset, m: int) -> torch.Tensor:
    """Boolean mask of shape (2, m, n), True where j = ỹ_i: the filters whose ρ_{j,r,i} is ρ̄ (≥ 0).

    Index 0 of the first axis is j = +1, index 1 is j = −1.  Where it is False (j = −ỹ_i), ρ is ρ̲ (≤ 0).
    """
    check_dataset("data", data)
    m = check_int("m", m)
    j = torch.tensor([1.0, -1.0], dtype=data.y_obs.dtype, device=data.y_obs.device)
    return (j[:, None] == data.y_obs[None, :])[:, None, :].expand(2, m, data.n)


@dataclass(frozen=True)
class Growth:
    """Measured per-step growth over the first k steps of a run (Chapter 4, Stage I).

    ``signal_step`` is the mean over all filters (j, r) of (γ_{j,r}^{(k)} − γ_{j,r}^{(0)})/k.
    ``memorisation_step`` is the mean of (ρ_{ỹ_i,r,i}^{(k)} − ρ_{ỹ_i,r,i}^{(0)})/k over the pairs (i, r)
    whose filter (ỹ_i, r) was active on ξ_i (⟨w_{ỹ_i,r}^{(s)}, ξ_i⟩ > 0) at every step s < k, read off from
    ρ having grown at every one of those steps.  ``ratio`` is their quotient, to compare with
    :func:`lnfl.theory.growth_ratio`.
    """

    k: int
    signal_step: float
    memorisation_step: float
    ratio: float
    active_fraction: float
    """Fraction of the n·m pairs (i, r) that were active at every step s < k."""


def stage_one_growth(hist: History, data: Dataset, k: int) -> Growth:
    """Measure Δγ per step, Δρ̄ per step on active pairs, and their ratio over steps 0…k of ``hist``.

    ``hist`` must have recorded every step from 0 to k (``record_every=1``) on ``data``.
    """
    check_instance("hist", hist, History, "an lnfl.training.History")
    check_dataset("data", data)
    k = check_int("k", k)
    last = int(hist.t[-1])
    if k > last:
        raise ValueError(f"k must be an integer in [1, {last}] (the run's last recorded step), got {k}")
    if hist.t.shape[0] <= k or not torch.equal(hist.t[: k + 1], torch.arange(k + 1)):
        raise ValueError(f"hist must record every step 0..k={k}; train with record_every=1")
    if hist.rho.shape[-1] != data.n:
        raise ValueError(f"hist was recorded on {hist.rho.shape[-1]} samples but data has n = {data.n}")
    m = hist.gamma.shape[-1]
    own = observed_class_mask(data, m)  # (2, m, n)
    rho = hist.rho[: k + 1]  # (k+1, 2, m, n)
    grew = (rho[1:] > rho[:-1]).all(dim=0) & own  # active at every step s < k
    n_active = int(grew.sum())
    if n_active == 0:
        raise ValueError(f"no pair (i, r) was active at every one of the first k={k} steps; choose a smaller k")
    d_gamma = float((hist.gamma[k] - hist.gamma[0]).mean()) / k
    d_rho = float((rho[k] - rho[0])[grew].mean()) / k
    return Growth(k, d_gamma, d_rho, d_gamma / d_rho, n_active / (m * data.n))
