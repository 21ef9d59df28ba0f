"""The two stages of training, read off a recorded run (Theorems 4.1 and 4.2 of Han et al.; Chapters 5 and 6).

Stage I is a *state*, not an event: every clean sample fitted and every noisy sample classified by its true
label.  :func:`stage_one_window` finds the first and last recorded steps at which it holds; the last one is
T₁, the end of Stage I.  (The first step at which every clean sample is fitted,
:meth:`~lnfl.training.History.t_clean_fit`, comes much earlier and is an initialisation clock.)

Everything here is a function of a :class:`~lnfl.training.History` and the training
:class:`~lnfl.data.Dataset` it was recorded on; nothing trains except :func:`run_seeds` and :func:`sweep_d`.

The theorems compare the signal γ_{j,r} with the memorisation ρ̄_{ỹ_i,r,i} of a noisy sample's noise patch by
the filters of its *observed* class.  For a noisy sample (ỹ_i = −y_i) the margin is approximately

    ỹ_i f(W, x_i) ≈ (1/m) Σ_r ρ̄_{ỹ_i,r,i} − (1/m) Σ_r γ_{y_i,r},

so the book's default comparison uses those two means over r: the signal of the sample's *true* class
against the memorisation by the filters of its *observed* class (Chapter 4).  A stricter, filter-by-filter
reading, min_{j,r} γ_{j,r} > max_r ρ̄_{ỹ_i,r,i}, is available with ``strict=True``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch

from ._validate import (
    check_choice,
    check_dataset,
    check_instance,
    check_int,
    check_keys,
    check_positive,
    check_real,
    check_seed,
    check_sequence,
    check_tau,
    check_tensor,
)
from .data import Dataset
from .theory import stage2_error_lower_bound, t1_order
from .training import REFERENCE, History, Setup, setup, train_batch

__all__ = [
    "abs_dloss",
    "true_margin",
    "noisy_gradient_share",
    "signal_pull",
    "true_class_signal",
    "own_memorisation",
    "signal_beats_memorisation",
    "memorised",
    "t_all_noisy_fitted",
    "stage_one_state",
    "stage_one_window",
    "stage_one_breakers",
    "StageOneSummary",
    "stage_one_summary",
    "StageTwoSummary",
    "stage_two_summary",
    "run_seeds",
    "run_batch",
    "model_test_errors",
    "level_crossing",
    "spread",
    "stitch",
    "sweep_d",
    "markdown_table",
]


def _check(hist: object, data: object) -> tuple[History, Dataset]:
    check_instance("hist", hist, History, "an lnfl.training.History")
    check_dataset("data", data)
    if hist.margin.shape[1] != data.n:
        raise ValueError(
            f"hist was recorded on {hist.margin.shape[1]} samples but data has n = {data.n}; "
            "pass the training Dataset the run used"
        )
    return hist, data


def _reduce(x: torch.Tensor, reduce: str, allowed: tuple[str, ...]) -> torch.Tensor:
    """Reduce over the filter axis r (dim 1 of a (T, m, n) tensor)."""
    check_choice("reduce", reduce, allowed)
    if reduce == "mean":
        return x.mean(dim=1)
    if reduce == "max":
        return x.amax(dim=1)
    return x.amin(dim=1)


def abs_dloss(hist: History) -> torch.Tensor:
    """|ℓ'_i^{(t)}| = 1/(1 + e^{ỹ_i f(W^{(t)}, x_i)}) per recorded step and sample, shape (T, n).

    The weight with which sample i enters the gradient (Chapter 3): 1/2 at a zero margin, → 0 once fitted.
    """
    check_instance("hist", hist, History, "an lnfl.training.History")
    return torch.sigmoid(-hist.margin)


def true_margin(hist: History, data: Dataset) -> torch.Tensor:
    """y_i f(W^{(t)}, x_i) per recorded step and sample, shape (T, n): the margin against the *true* label.

    Positive when sample i is classified by its true label.  It equals the recorded margin ỹ_i f on clean
    samples and its negative on noisy ones (Chapters 5 and 7).
    """
    hist, data = _check(hist, data)
    return hist.margin * (data.y_obs * data.y)


def noisy_gradient_share(hist: History, data: Dataset) -> torch.Tensor:
    """Share of the total gradient weight carried by the noisy samples, Σ_{i∈S_f}|ℓ'_i| / Σ_i |ℓ'_i|, shape (T,).

    At t = 0 every |ℓ'_i| ≈ 1/2, so the share is about |S_f|/n; it grows once clean samples are fitted.
    """
    hist, data = _check(hist, data)
    a = abs_dloss(hist)
    return a[:, data.noisy].sum(dim=1) / a.sum(dim=1)


def signal_pull(hist: History, data: Dataset) -> torch.Tensor:
    """The net pull on the signal: the per-step growth of γ̄ = mean_{j,r} γ_{j,r} that the loss derivatives
    predict, (η‖μ‖²/(2nm)) Σ_i |ℓ'_i| ỹ_i y_i, shape (T,) (Chapter 6).

    From the recursion of Chapter 4, when each filter of class j sees the signal patches of class j only
    (γ above the initialisation): clean samples (ỹ_i y_i = +1) pull γ up, noisy ones (−1) pull it down, each
    with its weight |ℓ'_i|.  The pull is (η‖μ‖²/(2nm)) · Σ_i|ℓ'_i| · (1 − 2·share), share =
    :func:`noisy_gradient_share`: it vanishes as the share nears ½.  With every |ℓ'_i| = ½ it is
    η‖μ‖²(1 − 2τ̂)/(4m), :func:`lnfl.theory.signal_step` at the draw's realised flip fraction τ̂.
    """
    hist, data = _check(hist, data)
    n, m = data.n, hist.W0.shape[1]
    scale = hist.eta * float(data.mu.dot(data.mu)) / (2 * n * m)
    return scale * (abs_dloss(hist) * (data.y_obs * data.y).to(hist.margin.dtype)).sum(dim=1)


def true_class_signal(hist: History, data: Dataset, reduce: str = "mean") -> torch.Tensor:
    """γ_{y_i,r} reduced over r (``"mean"`` or ``"min"``): the signal learned by the filters of sample i's
    *true* class, the term that pushes f(W, x_i) towards y_i.  Shape (T, n)."""
    hist, data = _check(hist, data)
    g = hist.gamma  # (T, 2, m); index 0 is j = +1
    per_sample = torch.where(data.y[None, None, :] > 0, g[:, 0, :, None], g[:, 1, :, None])  # (T, m, n)
    return _reduce(per_sample, reduce, ("mean", "min"))


def own_memorisation(hist: History, data: Dataset, reduce: str = "mean") -> torch.Tensor:
    """ρ̄_{ỹ_i,r,i} reduced over r (``"mean"`` or ``"max"``): memorisation of ξ_i by the filters of sample i's
    *observed* class ỹ_i, the term that pushes f(W, x_i) towards ỹ_i.  Shape (T, n)."""
    hist, data = _check(hist, data)
    rb = hist.rho_bar  # (T, 2, m, n)
    per_sample = torch.where(data.y_obs[None, None, :] > 0, rb[:, 0], rb[:, 1])  # (T, m, n)
    return _reduce(per_sample, reduce, ("mean", "max"))


def signal_beats_memorisation(hist: History, data: Dataset, strict: bool = False) -> torch.Tensor:
    """Whether γ > ρ̄ for each recorded step and sample, shape (T, n) boolean (Theorem 4.1).

    Default: (1/m) Σ_r γ_{y_i,r} > (1/m) Σ_r ρ̄_{ỹ_i,r,i}, the comparison that decides the sign of a noisy
    sample's margin.  ``strict=True``: min_{j,r} γ_{j,r} > max_r ρ̄_{ỹ_i,r,i}, every filter's signal above
    every filter's memorisation.
    """
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be True or False, got {strict!r}")
    if strict:
        hist, data = _check(hist, data)
        return hist.gamma.flatten(1).amin(dim=1)[:, None] > own_memorisation(hist, data, "max")
    return true_class_signal(hist, data) > own_memorisation(hist, data)


def memorised(hist: History, data: Dataset) -> torch.Tensor:
    """ρ̄ > γ in the mean-over-r sense of :func:`signal_beats_memorisation`, shape (T, n) boolean (Theorem 4.2).

    For a noisy sample this is (approximately) the condition for being fitted to its wrong label ỹ_i.
    """
    return own_memorisation(hist, data) > true_class_signal(hist, data)


def _first(hist: History, condition: torch.Tensor) -> int | None:
    hits = condition.nonzero()
    return int(hist.t[hits[0, 0]]) if hits.numel() else None


def t_all_noisy_fitted(hist: History) -> int | None:
    """First recorded step at which every noisy sample is fitted to its observed label (ỹ_i f > 0).

    ``None`` if it never happens within the recorded steps (or there are no noisy samples).
    """
    check_instance("hist", hist, History, "an lnfl.training.History")
    return _first(hist, hist.train_acc_noisy >= 1.0)


def stage_one_state(hist: History, data: Dataset) -> torch.Tensor:
    """Whether the Stage I state of Theorem 4.1 holds at each recorded step, shape (T,) boolean: every clean
    sample fitted (ỹ_i f > 0 for i ∈ S_t) and every noisy sample classified by its true label (y_i f > 0 for
    i ∈ S_f).  A zero output counts as neither.
    """
    hist, data = _check(hist, data)
    margin = hist.margin  # ỹ_i f(W^{(t)}, x_i); for a noisy sample y_i f = −ỹ_i f
    clean_ok = (margin[:, data.clean] > 0).all(dim=1)
    noisy_ok = (margin[:, data.noisy] < 0).all(dim=1)
    return clean_ok & noisy_ok


def stage_one_window(hist: History, data: Dataset) -> tuple[int, int] | None:
    """The Stage I window (start, end): the first and the last recorded step at which the state of Theorem 4.1
    holds (:func:`stage_one_state`: every clean sample fitted, every noisy sample classified by its true label).

    ``end`` is T₁, the end of Stage I; after it some noisy sample is fitted to its wrong label for good (or the
    recording stops).  ``None`` if the state never holds within the recorded steps.  The state may fail at some
    recorded steps inside the window (it "flickers"); the window spans them.  Without noisy samples the state is
    "every clean sample fitted", so the window then runs from the clean-fit time to the last fitted step.
    """
    hits = stage_one_state(hist, data).nonzero()
    if hits.numel() == 0:
        return None
    return int(hist.t[hits[0, 0]]), int(hist.t[hits[-1, 0]])


def stage_one_breakers(hist: History, data: Dataset) -> torch.Tensor:
    """The noisy samples that end Stage I: those classified against their true label (y_i f ≤ 0) at the first
    recorded step after T₁ (:func:`stage_one_window`), as a tensor of sample indices.

    Empty when the state never holds, when T₁ is the last recorded step, or when the state failed after T₁
    only on clean samples.  With every step recorded these are the first noisy samples the network memorises
    for good (Chapter 2 compares them under isotropic and orthogonal noise).
    """
    hist, data = _check(hist, data)
    window = stage_one_window(hist, data)
    empty = torch.zeros(0, dtype=torch.long)
    if window is None or window[1] == int(hist.t[-1]):
        return empty
    after = hist.at(window[1]) + 1
    lost = data.noisy & (hist.margin[after] >= 0)  # y_i f = −ỹ_i f ≤ 0 for a noisy sample
    return lost.nonzero().flatten().cpu()


@dataclass(frozen=True)
class StageOneSummary:
    """A run at the end of Stage I, T₁ (the last step of :func:`stage_one_window`), next to Theorem 4.1's claims."""

    window: tuple[int, int]
    """(first, last) recorded step of the Stage I state; T₁ = last."""
    t1: int
    """T₁, the end of Stage I: the last recorded step at which the Stage I state holds."""
    t_clean_fit: int
    """The clean-fit time (:meth:`~lnfl.training.History.t_clean_fit`), an initialisation clock, ≤ window[0]."""
    t1_order: float
    """nm/(η σ_ξ² d), the order of T₁ in Theorem 4.1 (no constant)."""
    signal_wins: float
    """Fraction of noisy samples with mean_r γ_{y_i,r} > mean_r ρ̄_{ỹ_i,r,i} at T₁."""
    signal_wins_strict: float
    """Fraction of noisy samples with min_{j,r} γ_{j,r} > max_r ρ̄_{ỹ_i,r,i} at T₁."""
    signal_wins_window: float
    """The smallest, over recorded steps of the window, fraction of noisy samples with γ > ρ̄ (mean sense)."""
    gamma_mean: float
    """Mean of γ_{j,r} over j, r at T₁."""
    rho_bar_noisy_mean: float
    """Mean over noisy i of mean_r ρ̄_{ỹ_i,r,i} at T₁."""
    rho_bar_noisy_max: float
    """Largest ρ̄_{ỹ_i,r,i} over noisy i and r at T₁."""
    min_abs_dloss: float
    """min over recorded t ≤ T₁ and all i of |ℓ'_i^{(t)}|: the balance of Stage I."""

    @property
    def t1_ratio(self) -> float:
        """T₁ / (nm/(η σ_ξ² d)): the constant hidden in T₁ = Θ(·), as measured."""
        return self.t1 / self.t1_order


def stage_one_summary(hist: History, data: Dataset, sigma_xi: float) -> StageOneSummary:
    """Summarise a run at T₁, the end of Stage I, against Theorem 4.1; ``sigma_xi`` (σ_ξ) enters only the order
    nm/(η σ_ξ² d).

    Raises ``ValueError`` if the data have no noisy sample, or if the Stage I state never holds within the
    recorded steps (:func:`stage_one_window` is ``None``: train longer, or this draw has no Stage I).
    """
    hist, data = _check(hist, data)
    sigma_xi = check_positive("sigma_xi", sigma_xi)
    noisy = data.noisy
    if not bool(noisy.any()):
        raise ValueError("data has no noisy sample (tau_plus = tau_minus = 0?); Theorem 4.1 is about label noise")
    window = stage_one_window(hist, data)
    if window is None:
        raise ValueError(
            f"the Stage I state (every clean sample fitted, every noisy sample classified by its true label) never "
            f"holds within the recorded steps 0..{int(hist.t[-1])}; train longer, or this draw has no Stage I"
        )
    k0, k = hist.at(window[0]), hist.at(window[1])
    wins = signal_beats_memorisation(hist, data)[:, noisy].double().mean(dim=1)
    mem = own_memorisation(hist, data)[k, noisy]
    rb_max = own_memorisation(hist, data, "max")[k, noisy]
    t_fit = hist.t_clean_fit()
    assert t_fit is not None  # the Stage I state includes every clean sample fitted
    return StageOneSummary(
        window=window,
        t1=window[1],
        t_clean_fit=t_fit,
        t1_order=t1_order(data.n, hist.W0.shape[1], hist.eta, sigma_xi, data.d),
        signal_wins=float(wins[k]),
        signal_wins_strict=float(signal_beats_memorisation(hist, data, strict=True)[k, noisy].double().mean()),
        signal_wins_window=float(wins[k0 : k + 1].min()),
        gamma_mean=float(hist.gamma[k].mean()),
        rho_bar_noisy_mean=float(mem.mean()),
        rho_bar_noisy_max=float(rb_max.max()),
        min_abs_dloss=float(abs_dloss(hist)[: k + 1].min()),
    )


@dataclass(frozen=True)
class StageTwoSummary:
    """A run at its last recorded step, next to Theorem 4.2's claims."""

    t_end: int
    """Last recorded step."""
    loss_end: float
    """Training loss L_S at the last step."""
    t_all_noisy_fitted: int | None
    """:func:`t_all_noisy_fitted`: first step with every noisy sample fitted to its observed label."""
    clean_fitted_end: float
    """Fraction of clean samples fitted at the end."""
    noisy_fitted_end: float
    """Fraction of noisy samples fitted to their (wrong) observed label at the end."""
    n_noisy: int
    """|S_f|."""
    n_memorised: int
    """Number of noisy samples with mean_r ρ̄_{ỹ_i,r,i} > mean_r γ_{y_i,r} at the end (:func:`memorised`)."""
    gamma_min: float
    """min over recorded t > 0 and all (j, r) of γ_{j,r}^{(t)}: positive means the signal is never forgotten."""
    gamma_peak: float
    """Largest mean_{j,r} γ_{j,r} over recorded steps."""
    gamma_end: float
    """mean_{j,r} γ_{j,r} at the end."""
    noisy_share_end: float
    """:func:`noisy_gradient_share` at the end."""
    t1: int | None
    """T₁, the end of the Stage I window (:func:`stage_one_window`); ``None`` if the Stage I state never holds."""
    clean_fitted_after_t1: float
    """min over recorded t ≥ T₁ of the fraction of clean samples fitted (claim 1); NaN without a window."""
    t_noisy_fitted_to_end: int | None
    """First recorded step from which every noisy sample stays fitted to its observed label at every later
    record; ``None`` if they are not all fitted at the end (or there are none)."""
    gamma_dip: float
    """Largest relative dip of any γ_{j,r} below its running maximum, 1 − γ_{j,r}^{(t)}/max_{s≤t} γ_{j,r}^{(s)},
    over recorded t ≥ T₁ (t > 0 without a window): 0 when no filter's signal ever decreases in Stage II."""
    test_error_clean: float
    """1 − test accuracy against the test set's true labels y (``hist.test_acc``)."""
    test_error_noisy_labels: float
    """1 − test accuracy against the test set's observed labels ỹ (``hist.test_acc_noisy_labels``)."""
    error_bound: float
    """0.5·min{τ₊, τ₋}, Theorem 4.2's lower bound on the test error."""


def stage_two_summary(hist: History, data: Dataset, tau_plus: float, tau_minus: float) -> StageTwoSummary:
    """Summarise a run at its last recorded step against Theorem 4.2 (τ₊, τ₋ give the bound 0.5·min{τ₊, τ₋}).

    Test errors are NaN if the run had no test set.
    """
    hist, data = _check(hist, data)
    bound = stage2_error_lower_bound(check_tau("tau_plus", tau_plus), check_tau("tau_minus", tau_minus))
    later = hist.t > 0
    if not bool(later.any()):
        raise ValueError("hist records only step 0; train for at least one step")
    g_mean = hist.gamma.mean(dim=(1, 2))
    window = stage_one_window(hist, data)
    t1 = None if window is None else window[1]
    after = hist.t >= t1 if t1 is not None else later
    g = hist.gamma.flatten(1)  # (T, 2m)
    peak = g.cummax(dim=0).values
    ok = after[:, None] & (peak > 0)
    dips = torch.where(ok, 1.0 - g / peak.clamp(min=torch.finfo(g.dtype).tiny), torch.zeros_like(g))
    all_fitted = (hist.margin[:, data.noisy] > 0).all(dim=1)
    misfit = (~all_fitted).nonzero()
    if not bool(data.noisy.any()) or not bool(all_fitted[-1]):
        t_to_end = None
    else:
        t_to_end = int(hist.t[0]) if misfit.numel() == 0 else int(hist.t[misfit[-1, 0] + 1])
    return StageTwoSummary(
        t_end=int(hist.t[-1]),
        loss_end=float(hist.loss[-1]),
        t_all_noisy_fitted=t_all_noisy_fitted(hist),
        clean_fitted_end=float(hist.train_acc_clean[-1]),
        noisy_fitted_end=float(hist.train_acc_noisy[-1]),
        n_noisy=int(data.noisy.sum()),
        n_memorised=int(memorised(hist, data)[-1, data.noisy].sum()),
        gamma_min=float(hist.gamma[later].min()),
        gamma_peak=float(g_mean.max()),
        gamma_end=float(g_mean[-1]),
        noisy_share_end=float(noisy_gradient_share(hist, data)[-1]),
        t1=t1,
        clean_fitted_after_t1=float("nan") if t1 is None else float(hist.train_acc_clean[after].min()),
        t_noisy_fitted_to_end=t_to_end,
        gamma_dip=float(dips.max().clamp(min=0.0)),
        test_error_clean=1.0 - float(hist.test_acc[-1]),
        test_error_noisy_labels=1.0 - float(hist.test_acc_noisy_labels[-1]),
        error_bound=bound,
    )


def run_seeds(
    seeds: range | list[int], steps: int, record_every: int = 1, n_test: int = 2000, **overrides: float
) -> list[tuple[Setup, History]]:
    """:func:`lnfl.training.setup` and train once per seed; ``overrides`` change the reference configuration."""
    seeds = check_sequence("seeds", seeds, check_seed)
    steps = check_int("steps", steps, minimum=0)
    check_keys("overrides", overrides, REFERENCE)
    runs = []
    for seed in seeds:
        s = setup(seed=seed, n_test=n_test, **overrides)
        runs.append((s, s.train(steps=steps, record_every=record_every)))
    return runs


def run_batch(
    seeds: range | list[int],
    steps: int,
    record_every: int = 1,
    test: str = "none",
    n_test: int = 1,
    dtype: torch.dtype = torch.float64,
    rho_dtype: torch.dtype | None = None,
    **overrides: float,
) -> list[tuple[Setup, History]]:
    """:func:`run_seeds` as one batched call (:func:`lnfl.training.train_batch`): many seeds in seconds.

    ``test``: ``"none"``, ``"sample"`` (each seed's test set of ``n_test`` samples) or ``"gaussian"`` (the data
    model's whole distribution, :func:`lnfl.training.train`).  ``dtype=torch.float32`` trains in single
    precision and ``rho_dtype=torch.float32`` stores ρ in it, where exactness is not at stake.  Equal to
    :func:`run_seeds` up to rounding.
    """
    seeds = check_sequence("seeds", seeds, check_seed)
    test = check_choice("test", test, ("none", "sample", "gaussian"))
    n_test = check_int("n_test", n_test)
    setups = [setup(seed=seed, n_test=n_test, dtype=dtype, **overrides) for seed in seeds]
    hists = train_batch(setups, steps=steps, record_every=record_every, test=test, rho_dtype=rho_dtype)
    return list(zip(setups, hists, strict=True))


def model_test_errors(runs: list[tuple[Setup, History]]) -> torch.Tensor:
    """Test error of each run's final weights W on its data model's whole distribution, shape (K, 2): against
    the clean labels y (column 0) and against labels flipped at the model's τ₊, τ₋ (column 1).

    Computed without a test sample, from the Gaussian of the projections ⟨w_{j,r}, ξ⟩ (:func:`lnfl.training.train`
    with ``test=model``), one batched call for runs of the same n, m, d.
    """
    runs = check_sequence("runs", runs, lambda name, r: r)
    for k, r in enumerate(runs):
        if not (isinstance(r, tuple) and len(r) == 2 and isinstance(r[0], Setup) and isinstance(r[1], History)):
            raise TypeError(f"runs[{k}] must be a (Setup, History) pair, as run_batch returns, got {type(r).__name__}")
    final = [Setup(s.model, s.data, s.test, h.W.to(s.W0.dtype), s.eta) for s, h in runs]
    hists = train_batch(final, steps=0, test="gaussian")
    return torch.stack([torch.stack([1 - h.test_acc[0], 1 - h.test_acc_noisy_labels[0]]) for h in hists])


def level_crossing(x: list[float], y: list[float], level: float) -> float | None:
    """Where a curve y(x) first falls below ``level`` going right: the x between the last point at or above it
    and the next point below, interpolated linearly in (log x, log y).  ``None`` if y starts below ``level`` or
    never falls below it.  x positive and increasing, y ≥ 0 (a point at 0 counts as below any level)."""
    xs = check_sequence("x", x, check_positive, min_len=2)
    ys = check_sequence("y", y, lambda name, v: check_real(name, v, low=0.0), min_len=2)
    level = check_positive("level", level)
    if len(xs) != len(ys):
        raise ValueError(f"x and y must have the same length, got {len(xs)} and {len(ys)}")
    if any(b <= a for a, b in zip(xs[:-1], xs[1:], strict=True)):
        raise ValueError(f"x must be increasing, got {xs}")
    if ys[0] < level:
        return None
    for k in range(len(xs) - 1):
        if ys[k] >= level > ys[k + 1]:
            if ys[k + 1] == 0.0:
                return xs[k + 1]
            lx0, lx1 = math.log(xs[k]), math.log(xs[k + 1])
            ly0, ly1 = math.log(ys[k]), math.log(ys[k + 1])
            return math.exp(lx0 + (math.log(level) - ly0) * (lx1 - lx0) / (ly1 - ly0))
    return None


def spread(curves: list[torch.Tensor] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, minimum and maximum over seeds (axis 0) of equally long curves: the band the book plots.

    ``curves``: a list of finite float tensors of one shape, or one tensor whose axis 0 runs over seeds."""
    if isinstance(curves, torch.Tensor):
        x = check_tensor("curves", curves)
    else:
        items = check_sequence("curves", curves, check_tensor)
        for k, c in enumerate(items):
            if c.shape != items[0].shape or c.dtype != items[0].dtype:
                raise ValueError(f"curves[{k}] must have the shape and dtype of curves[0], {tuple(items[0].shape)}")
        x = torch.stack(items)
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"curves must hold at least one curve, got shape {tuple(x.shape)}")
    return x.mean(dim=0), x.amin(dim=0), x.amax(dim=0)


def sweep_d(
    ds: list[int], seeds: range | list[int], horizon: float = 30.0, n_test: int = 1000, **overrides: float
) -> list[dict[str, float]]:
    """Train to convergence for each dimension d (other settings from the reference, or ``overrides``) and seed.

    Each run lasts ⌈horizon · nm/(η σ_ξ² d)⌉ steps, the same multiple of Theorem 4.1's time scale, so
    configurations with different d are compared at the same stage of training.  n·SNR² is kept at its
    reference (or overridden) value, so ‖μ‖ grows with d.  Returns one row per run with d, d/n, seed, steps,
    and the final clean- and noisy-label test errors, noisy-sample fit fraction and training loss.
    """
    horizon = check_positive("horizon", horizon)
    ds = check_sequence("ds", ds, check_int)
    seeds = check_sequence("seeds", seeds, check_seed)
    n_test = check_int("n_test", n_test)
    check_keys("overrides", overrides, REFERENCE)
    rows = []
    for d in ds:
        for seed in seeds:
            s = setup(seed=seed, n_test=n_test, d=d, **overrides)
            m, n = s.W0.shape[1], s.data.n
            steps = math.ceil(horizon * t1_order(n, m, s.eta, s.model.sigma_xi, d))
            h = s.train(steps=steps, record_every=max(1, steps // 10))
            rows.append(
                {
                    "d": d,
                    "d_over_n": d / n,
                    "seed": seed,
                    "steps": steps,
                    "test_error_clean": 1.0 - float(h.test_acc[-1]),
                    "test_error_noisy_labels": 1.0 - float(h.test_acc_noisy_labels[-1]),
                    "noisy_fitted": float(h.train_acc_noisy[-1]),
                    "loss": float(h.loss[-1]),
                }
            )
    return rows


_TIME_FIELDS = tuple(
    f.name for f in fields(History) if f.name not in ("W", "W0", "eta")
)  # every History field with a leading time axis


def stitch(early: History, late: History) -> History:
    """One History from two recordings of the *same* run: all of ``early`` (say every step up to 150), then the
    records of ``late`` (say every 10th step up to 3000) after early's last step.

    Dense where Stage I is fast, sparse where Stage II is slow: what a logarithmic time axis needs.  Raises
    ``ValueError`` if the two were not recorded from the same W⁽⁰⁾, η and data (their records disagree at a
    step both recorded).
    """
    for name, h in (("early", early), ("late", late)):
        check_instance(name, h, History, "an lnfl.training.History")
    if early.eta != late.eta or not torch.equal(early.W0, late.W0):
        raise ValueError("early and late must come from the same run: their η or W⁽⁰⁾ differ")
    if early.margin.shape[1] != late.margin.shape[1]:
        raise ValueError(
            f"early and late must come from the same run: they have {early.margin.shape[1]} and "
            f"{late.margin.shape[1]} samples"
        )
    common = [int(t) for t in early.t if bool((late.t == t).any())]
    for t in common:
        if not torch.allclose(early.margin[early.at(t)], late.margin[late.at(t)], rtol=1e-9, atol=1e-12):
            raise ValueError(f"early and late must come from the same run: their margins differ at step {t}")
    keep = late.t > early.t[-1]
    if not bool(keep.any()):
        return early
    merged = {name: torch.cat([getattr(early, name), getattr(late, name)[keep]]) for name in _TIME_FIELDS}
    return replace(late, **merged)


def markdown_table(header: list[str], rows: list[list[object]], digits: int = 3) -> str:
    """A Markdown table (for ``IPython.display.Markdown``); floats are rounded to ``digits`` decimals."""
    digits = check_int("digits", digits, minimum=0)
    header = check_sequence("header", header, lambda name, h: check_instance(name, h, str, "a string"))
    rows = check_sequence("rows", rows, lambda name, r: check_sequence(name, r, lambda _, v: v), min_len=0)
    for k, r in enumerate(rows):
        if len(r) != len(header):
            raise ValueError(f"rows[{k}] must have {len(header)} entries, like header = {header}; every row must")

    def cell(v: object) -> str:
        if v is None:
            return "—"
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
