"""Early stopping and small-loss sample selection (Proposition 4.3 of Han et al. 2025; Chapter 8).

At the end of Stage I (step T₁) every clean sample has loss ℓ_i < log 2 and every noisy sample has
ℓ_i > log 2, so the threshold log 2 separates S_t from S_f perfectly.  Since ℓ(z) = log(1 + e^{−z}) is
strictly decreasing with ℓ(0) = log 2,

    ℓ(ỹ_i f(W, x_i)) < log 2  ⟺  ỹ_i f(W, x_i) > 0,

i.e. a sample is selected exactly when the network agrees with its *observed* label ỹ_i.  This module
implements that rule, the fixed-fraction small-loss rule (the fraction 1 − τ that Co-teaching keeps once its
schedule has ramped down), precision and recall of a selection against the clean set S_t, early stopping on a
noisy validation set and where it lands relative to the Stage I window (:func:`stopping_vs_window`), and
select-then-retrain.  Co-teaching itself (Han et al. 2018) selects within every mini-batch, ramps the kept
fraction down from 1 to 1 − τ and trains two networks that select for each other; selecting once on a
full-batch run and then retraining is a different, simpler scheme, and Proposition 4.3 says nothing about it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from ._validate import (
    _check_float,
    check_choice,
    check_dataset,
    check_instance,
    check_int,
    check_positive,
    check_real,
    describe,
)
from .data import Dataset
from .decomposition import _basis
from .model import _check_pair
from .stages import stage_one_window
from .training import History, train

__all__ = [
    "LOG2",
    "log2_selection",
    "small_loss_selection",
    "precision_recall",
    "perfect_separation",
    "weights_at",
    "outputs_over_time",
    "accuracy_over_time",
    "early_stopping_index",
    "subset",
    "select_then_retrain",
    "StoppingReport",
    "stopping_vs_window",
]

#: ℓ(0) = log 2, the loss of a sample on the decision boundary ỹ f = 0.
LOG2: float = math.log(2.0)


def _check_losses(losses: object) -> torch.Tensor:
    """Per-sample losses ℓ_i as a float32/float64 tensor of shape (n,) or (T, n), n ≥ 1, finite and ≥ 0."""
    if not isinstance(losses, torch.Tensor):
        raise TypeError(f"losses must be a torch.Tensor of shape (n,) or (T, n), got {describe(losses)}")
    if losses.ndim not in (1, 2) or losses.shape[-1] < 1 or losses.shape[0] < 1:
        raise ValueError(f"losses must have shape (n,) or (T, n) with n >= 1, got {tuple(losses.shape)}")
    _check_float("losses", losses.dtype)
    bad = ~torch.isfinite(losses) | (losses < 0)
    if bool(bad.any()):
        raise ValueError(
            f"losses must be logistic losses: non-negative and not NaN (and finite), found {losses[bad][0].item()}"
        )
    return losses.detach()


def _check_mask(name: str, mask: object, n: int, source: str = "") -> torch.Tensor:
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = f"dtype {mask.dtype}" if isinstance(mask, torch.Tensor) else describe(mask)
        raise TypeError(f"{name} must be a boolean torch.Tensor, got {got}")
    src = f" (the length of {source})" if source else ""
    if mask.ndim < 1 or mask.shape[-1] != n:
        raise ValueError(f"{name} must have last dimension n = {n}{src}, got shape {tuple(mask.shape)}")
    return mask


def _check_clean(clean: object) -> torch.Tensor:
    """The mask of S_t: a 1-d boolean tensor."""
    if not isinstance(clean, torch.Tensor) or clean.dtype != torch.bool or clean.ndim != 1:
        got = (
            f"{clean.dtype} of shape {tuple(clean.shape)}" if isinstance(clean, torch.Tensor) else type(clean).__name__
        )
        raise TypeError(f"clean must be a 1-d boolean torch.Tensor (data.clean), got {got}")
    return clean


def log2_selection(losses: torch.Tensor) -> torch.Tensor:
    """Select sample i when ℓ_i < log 2, i.e. when ỹ_i f(W, x_i) > 0 (the network agrees with ỹ_i).

    ``losses`` has shape (n,) or (T, n) (e.g. ``hist.sample_loss``); returns a boolean mask of the same shape.
    """
    return _check_losses(losses) < LOG2


def small_loss_selection(losses: torch.Tensor, keep_fraction: float) -> torch.Tensor:
    """Co-teaching's fixed-fraction rule: keep the ⌊keep_fraction·n + ½⌋ samples with the smallest loss.

    With a known flip rate τ the usual choice is ``keep_fraction = 1 − τ``.  Applied row by row when
    ``losses`` has shape (T, n); ties are broken by sample index.  Returns a boolean mask of the same shape.
    """
    losses = _check_losses(losses)
    keep_fraction = check_real("keep_fraction", keep_fraction, low=0.0, high=1.0, low_open=True)
    n = losses.shape[-1]
    k = max(1, int(math.floor(keep_fraction * n + 0.5)))
    order = torch.argsort(losses, dim=-1, stable=True)
    keep = torch.zeros_like(losses, dtype=torch.bool)
    keep.scatter_(-1, order[..., :k], True)
    return keep


def precision_recall(selected: torch.Tensor, clean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Precision |sel ∩ S_t|/|sel| and recall |sel ∩ S_t|/|S_t| of a selection of CLEAN samples.

    ``selected`` is a boolean mask of shape (n,) or (T, n), ``clean`` the mask of S_t (``data.clean``).
    Returns two tensors of shape () or (T,); precision is NaN where nothing is selected, recall is NaN
    when there is no clean sample.
    """
    clean = _check_clean(clean)
    selected = _check_mask("selected", selected, clean.shape[0], "clean")
    if selected.ndim not in (1, 2):
        raise ValueError(f"selected must have shape (n,) or (T, n), got {tuple(selected.shape)}")
    hits = (selected & clean).sum(-1).to(torch.float64)
    n_sel = selected.sum(-1).to(torch.float64)
    n_clean = clean.sum().to(torch.float64)
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    precision = torch.where(n_sel > 0, hits / n_sel.clamp(min=1), nan)
    recall = torch.where(n_clean > 0, hits / n_clean.clamp(min=1), nan)
    return precision, recall


def perfect_separation(losses: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Whether log 2 separates S_t from S_f: every clean ℓ_i < log 2 and every noisy ℓ_i > log 2.

    Proposition 4.3 says this holds at T₁.  Returns a boolean of shape () or (T,).
    """
    losses = _check_losses(losses)
    clean = _check_mask("clean", _check_clean(clean), losses.shape[-1], "losses")
    below = losses < LOG2
    return (below | ~clean).all(-1) & ((losses > LOG2) | clean).all(-1)


def _check_history(hist: object, data: object) -> tuple[History, Dataset]:
    check_instance("hist", hist, History, "an lnfl.training.History")
    check_instance("data", data, Dataset, "the lnfl.data.Dataset hist was trained on")
    check_dataset("data", data)
    if hist.rho.shape[-1] != data.n or hist.W0.shape[-1] != data.d:
        raise ValueError(
            f"data (n={data.n}, d={data.d}) does not match hist (n={hist.rho.shape[-1]}, d={hist.W0.shape[-1]})"
        )
    return hist, data


def weights_at(hist: History, data: Dataset, index: int) -> torch.Tensor:
    """W^{(t)} at the recorded step t = ``hist.t[index]``, rebuilt from the decomposition (Chapter 4):

        w_{j,r}^{(t)} = w_{j,r}^{(0)} + j·γ_{j,r}^{(t)}·μ/‖μ‖² + Σ_i ρ_{j,r,i}^{(t)}·ξ_i/‖ξ_i‖².

    ``data`` must be the training set ``hist`` was recorded on.  Exact up to rounding, because γ and ρ
    follow the GD recursion exactly.
    """
    hist, data = _check_history(hist, data)
    T = len(hist.t)
    if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not -T <= index < T:
        raise ValueError(f"index must be an integer in [-{T}, {T - 1}] (a position on hist's time axis), got {index!r}")
    j = torch.tensor([1.0, -1.0], dtype=hist.W0.dtype, device=hist.W0.device)[:, None, None]
    basis = _basis(data, "data")  # μ/‖μ‖², ξ_i/‖ξ_i‖² as columns (refuses a zero norm)
    mu_dir, xi_dir = basis[:, 0], basis[:, 1:].T
    return hist.W0 + j * hist.gamma[int(index)][:, :, None] * mu_dir + hist.rho[int(index)] @ xi_dir


def outputs_over_time(hist: History, data: Dataset, other: Dataset, chunk: int = 64) -> torch.Tensor:
    """f(W^{(t)}, x'_k) for every recorded step t and every sample x'_k of ``other``, shape (T, n').

    Uses the decomposition of :func:`weights_at` without forming W^{(t)}: with ξ'_k the noise patches of
    ``other``,

        ⟨w_{j,r}^{(t)}, μ⟩    = ⟨w_{j,r}^{(0)}, μ⟩ + j·γ_{j,r}^{(t)} + Σ_i ρ_{j,r,i}^{(t)} ⟨ξ_i, μ⟩/‖ξ_i‖²,
        ⟨w_{j,r}^{(t)}, ξ'_k⟩ = ⟨w_{j,r}^{(0)}, ξ'_k⟩ + j·γ_{j,r}^{(t)} ⟨μ, ξ'_k⟩/‖μ‖² + Σ_i ρ_{j,r,i}^{(t)} ⟨ξ_i, ξ'_k⟩/‖ξ_i‖²,

    so each step costs one (2m × n)·(n × n') product.  ``chunk`` recorded steps are processed at a time.
    """
    hist, data = _check_history(hist, data)
    check_dataset("other", other)
    if other.d != data.d or other.xi.dtype != data.xi.dtype or other.xi.device != data.xi.device:
        raise ValueError(
            f"other must match data's d = {data.d}, dtype and device, got d = {other.d}, {other.xi.dtype} on {other.xi.device}"
        )
    chunk = check_int("chunk", chunk)
    m = hist.W0.shape[1]
    j = torch.tensor([1.0, -1.0], dtype=hist.W0.dtype, device=hist.W0.device)[:, None]  # (2, 1)
    xi_dir = _basis(data, "data")[:, 1:].T  # ξ_i/‖ξ_i‖², (n, d); refuses a zero norm
    mu_sq = data.mu.dot(data.mu)
    w0_mu, w0_xi = hist.W0 @ data.mu, hist.W0 @ other.xi.T  # (2, m), (2, m, n')
    xi_mu = xi_dir @ data.mu  # ⟨ξ_i, μ⟩/‖ξ_i‖², (n,)
    mu_xi = (other.xi @ data.mu) / mu_sq  # ⟨μ, ξ'_k⟩/‖μ‖², (n',)
    G = xi_dir @ other.xi.T  # ⟨ξ_i, ξ'_k⟩/‖ξ_i‖², (n, n')
    out = []
    for a in range(0, len(hist.t), chunk):
        g, rho = hist.gamma[a : a + chunk], hist.rho[a : a + chunk]  # (c, 2, m), (c, 2, m, n)
        w_mu = w0_mu + j * g + rho @ xi_mu  # (c, 2, m)
        w_xi = w0_xi + (j * g)[..., None] * mu_xi + rho @ G  # (c, 2, m, n')
        signal = torch.relu(w_mu[..., None] * other.y)  # σ(⟨w, y'_k μ⟩)
        F = (signal + torch.relu(w_xi)).sum(dim=2) / m  # (c, 2, n')
        out.append(F[:, 0] - F[:, 1])
    return torch.cat(out)


def accuracy_over_time(hist: History, data: Dataset, other: Dataset, labels: str = "observed") -> torch.Tensor:
    """Accuracy of W^{(t)} on another data set ``other`` at every recorded step, shape (T,).

    ``labels="observed"`` compares sign f with ``other.y_obs`` (what a practitioner can measure on a noisy
    validation set); ``labels="true"`` with ``other.y`` (clean labels, only known in simulation).
    ``data`` is the training set of ``hist`` (needed to rebuild W^{(t)}, see :func:`outputs_over_time`).
    """
    check_choice("labels", labels, ("observed", "true"))
    f = outputs_over_time(hist, data, other)
    target = other.y_obs if labels == "observed" else other.y
    return (target * f > 0).to(torch.float64).mean(dim=1)


def early_stopping_index(val_acc: torch.Tensor, tolerance: float = 0.0) -> int:
    """Early stopping: the index of the earliest recorded step whose validation accuracy is within
    ``tolerance`` of the best one, i.e. the first k with val_acc[k] ≥ max(val_acc) − tolerance.

    ``tolerance = 0`` picks the best step (the earliest among ties).  A tolerance of about one standard
    error, √(p(1 − p)/n_val), is the "one-standard-error rule": it prefers an early step over a later one
    that is better only by sampling noise of the validation set.
    """
    if not isinstance(val_acc, torch.Tensor):
        raise TypeError(
            f"val_acc must be a 1-d torch.Tensor of accuracies (one per recorded step), got {describe(val_acc)}"
        )
    if val_acc.ndim != 1 or val_acc.numel() < 1:
        raise ValueError(
            f"val_acc must be a 1-d torch.Tensor with at least one entry (one per recorded step), got {describe(val_acc)}"
        )
    _check_float("val_acc", val_acc.dtype)
    if bool(torch.isnan(val_acc).any()):
        raise ValueError("val_acc must not contain NaN (was a validation set given?)")
    if bool(((val_acc < 0) | (val_acc > 1)).any()):
        raise ValueError(
            f"val_acc must hold accuracies in [0, 1], found {val_acc[(val_acc < 0) | (val_acc > 1)][0].item()}"
        )
    tolerance = check_real("tolerance", tolerance, low=0.0, high=1.0)
    return int((val_acc >= val_acc.max() - tolerance).nonzero()[0, 0])


def subset(data: Dataset, keep: torch.Tensor) -> Dataset:
    """The samples of ``data`` where the boolean mask ``keep`` (shape (n,)) is True, as a new Dataset."""
    check_dataset("data", data)
    keep = _check_mask("keep", keep, data.n, "data")
    if keep.ndim != 1:
        raise ValueError(f"keep must have shape ({data.n},), got {tuple(keep.shape)}")
    if not bool(keep.any()):
        raise ValueError("keep selects no sample; at least one is needed to train")
    return Dataset(data.mu, data.xi[keep], data.y[keep], data.y_obs[keep])


def select_then_retrain(
    W0: torch.Tensor,
    data: Dataset,
    keep: torch.Tensor,
    eta: float = 0.1,
    steps: int = 3000,
    record_every: int = 1,
    test: Dataset | None = None,
) -> tuple[Dataset, History]:
    """Train again from W⁽⁰⁾ on the selected samples only; returns (the subset, its History).

    Select once with :func:`log2_selection` (or :func:`small_loss_selection`) at an early-stopping step, then
    run full-batch GD on what was kept.  This "select, then retrain" scheme is the book's (Chapter 8): it is not
    Co-teaching, which selects anew in every mini-batch with two peer networks, and Proposition 4.3 promises
    nothing about it.
    """
    _check_pair(W0, data, "W0")
    sub = subset(data, keep)
    eta = check_positive("eta", eta)
    steps = check_int("steps", steps, minimum=0)
    return sub, train(W0, sub, eta=eta, steps=steps, record_every=record_every, test=test)


@dataclass(frozen=True)
class StoppingReport:
    """Where early stopping on a noisy validation set lands relative to the Stage I window (Chapter 8)."""

    window: tuple[int, int] | None
    """The Stage I window (start, T₁) of :func:`lnfl.stages.stage_one_window`, or None."""
    t_es: int
    """t_ES: the recorded step picked by :func:`early_stopping_index` on the validation accuracy."""
    position: str
    """``"before"``, ``"inside"`` or ``"after"`` the window (ends included), or ``"no window"``."""
    steps_outside: int | None
    """0 inside, start − t_ES before, t_ES − T₁ after; None without a window."""
    separated_at_t1: bool | None
    """Whether log 2 separates S_t from S_f at T₁ (:func:`perfect_separation` on the losses); None without a window."""
    separated_in_window: float | None
    """Fraction of the recorded steps of [start, T₁] at which log 2 separates perfectly; None without a window."""


def stopping_vs_window(hist: History, data: Dataset, val_acc: torch.Tensor, tolerance: float = 0.0) -> StoppingReport:
    """Compare the early-stopping step t_ES (:func:`early_stopping_index` of ``val_acc``, one validation accuracy
    per recorded step of ``hist``) with the Stage I window of ``hist`` on its training set ``data``, and check
    Proposition 4.3's separation by log 2 at T₁ and across the window, from the per-sample losses."""
    hist, data = _check_history(hist, data)
    if not isinstance(val_acc, torch.Tensor) or val_acc.shape != hist.t.shape:
        raise ValueError(
            f"val_acc must hold one accuracy per recorded step of hist, shape {tuple(hist.t.shape)}, "
            f"got {describe(val_acc)}"
        )
    t_es = int(hist.t[early_stopping_index(val_acc, tolerance)])
    window = stage_one_window(hist, data)
    if window is None:
        return StoppingReport(None, t_es, "no window", None, None, None)
    start, t1 = window
    sep = perfect_separation(hist.sample_loss, data.clean)
    inside = (hist.t >= start) & (hist.t <= t1)
    if t_es < start:
        position, outside = "before", start - t_es
    elif t_es > t1:
        position, outside = "after", t_es - t1
    else:
        position, outside = "inside", 0
    return StoppingReport(
        window=window,
        t_es=t_es,
        position=position,
        steps_outside=outside,
        separated_at_t1=bool(sep[hist.at(t1)]),
        separated_in_window=float(sep[inside].double().mean()),
    )
