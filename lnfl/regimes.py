"""Regimes and scaling (Chapter 9): sweeps that run many configurations through the batched, d-independent engine.

Two clocks run in Stage I (Chapters 5 and 9):

- T₁, the end of Stage I: the last recorded step of the Stage I window (:func:`lnfl.stages.stage_one_window`),
  of order nm/(η σ_ξ² d) by Theorem 4.1 (:func:`lnfl.theory.t1_order`);
- the clean-fit time (:meth:`lnfl.training.History.t_clean_fit`), the first step with every clean sample fitted:
  an initialisation clock of order σ₀ n √m/(η σ_ξ √d) (:func:`clean_fit_order`).

:func:`stage_one_clocks` reads both off one recorded run; :func:`t1_sweep` and :func:`clean_fit_sweep` measure
them against one of n, m, η, d, σ₀ over seeds, and :func:`slope_interval` fits their log-log slopes with a
bootstrap interval over seeds.  :func:`phase_diagram`: over n·SNR² × τ, whether the Stage I state holds at all
and for how long, how close a draw without it comes, and the clean test error after memorisation.
:func:`memorisation_vs_d`: benign versus harmful memorisation as d/n grows, with the clean test error at T₁, at
the validation stopping time and after memorisation; :func:`curve_discrepancy` says whether such curves for
several n collapse onto one another in a given variable.

Every run uses ``engine="coef"`` (per-step cost free of d) and one batched call per shape (n, m, d).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from ._validate import (
    check_bool,
    check_choice,
    check_dtype,
    check_instance,
    check_int,
    check_keys,
    check_positive,
    check_real,
    check_recording,
    check_seed,
    check_sequence,
    check_tau,
    positive_result,
)
from .data import Dataset
from .engine import _record_bytes
from .selection import early_stopping_index, weights_at
from .stages import stage_one_window
from .theory import t1_order
from .training import REFERENCE, History, Setup, setup, train_batch

__all__ = [
    "SWEPT",
    "loglog_slope",
    "t_gamma",
    "clean_fit_order",
    "Clocks",
    "stage_one_clocks",
    "best_noisy_true",
    "t1_sweep",
    "clean_fit_sweep",
    "SlopeFit",
    "slope_interval",
    "phase_diagram",
    "clean_error_at",
    "memorisation_vs_d",
    "curve_discrepancy",
    "Collapse",
    "collapse",
]


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope b of log y = a + b log x (the exponent of a power law y ∝ x^b).

    ``x`` and ``y``: sequences (or 1-d tensors) of the same length ≥ 2, every value positive and finite, and
    ``x`` not constant (a slope needs two distinct x).
    """
    need = "loglog_slope needs two or more matching positive x and y values"
    try:
        xs = check_sequence("x", x, check_positive, min_len=2)
        ys = check_sequence("y", y, check_positive, min_len=2)
    except ValueError as err:
        raise ValueError(f"{need}: {err}") from None
    if len(xs) != len(ys):
        raise ValueError(f"{need}: x has {len(xs)} values, y has {len(ys)}")
    lx = torch.log(torch.tensor(xs, dtype=torch.float64))
    ly = torch.log(torch.tensor(ys, dtype=torch.float64))
    lx, ly = lx - lx.mean(), ly - ly.mean()
    if float((lx * lx).sum()) == 0.0:
        raise ValueError(f"{need}: x must hold at least two distinct values, got {xs[0]!r} throughout")
    return float((lx * ly).sum() / (lx * lx).sum())


def t_gamma(hist: History, level: float = 0.5) -> int | None:
    """T_γ: the first recorded step at which the mean of γ_{j,r} over all filters reaches ``level``, or None."""
    check_instance("hist", hist, History, "an lnfl.training.History")
    level = check_positive("level", level)
    hits = (hist.gamma.mean(dim=(1, 2)) >= level).nonzero()
    return int(hist.t[hits[0, 0]]) if hits.numel() else None


#: The parameters a sweep can vary, one at a time (keys of :data:`lnfl.training.REFERENCE`).
SWEPT = ("n", "m", "eta", "d", "sigma0")


def clean_fit_order(n: int, m: int, eta: float, sigma_xi: float, d: int, sigma0: float) -> float:
    """σ₀ n √m/(η σ_ξ √d): the order, without its constant, of the clean-fit time
    (:meth:`lnfl.training.History.t_clean_fit`; Chapter 9).

    The initial output f(W⁽⁰⁾, x_i), an average of m ReLUs of projections of size σ₀σ_ξ√d, is of order
    σ₀σ_ξ√(d/m); in Stage I a margin grows by about η σ_ξ² d/(nm) per step; the order is their ratio.  It is an
    initialisation clock: it grows with σ₀, which the end of Stage I (:func:`lnfl.theory.t1_order`) does not.
    """
    n, m, d = check_int("n", n), check_int("m", m), check_int("d", d)
    eta, sigma_xi = check_positive("eta", eta), check_positive("sigma_xi", sigma_xi)
    sigma0 = check_positive("sigma0", sigma0)
    log = math.log(sigma0) + math.log(n) + 0.5 * math.log(m) - math.log(eta) - math.log(sigma_xi) - 0.5 * math.log(d)
    given = f"sigma0={sigma0:g}, n={n}, m={m}, eta={eta:g}, sigma_xi={sigma_xi:g}, d={d}"
    return positive_result(
        "the clean-fit order σ₀n√m/(ησ_ξ√d)",
        log,
        given,
        lambda: sigma0 * n * math.sqrt(m) / (eta * sigma_xi * math.sqrt(d)),
    )


class Clocks(NamedTuple):
    """The two clocks of Stage I on one recorded run, in recorded steps (``None``: never within the run)."""

    start: int | None
    """First recorded step of the Stage I window (:func:`lnfl.stages.stage_one_window`)."""
    t1: int | None
    """T₁, the end of Stage I: the last recorded step of the window."""
    censored: bool
    """The Stage I state still holds at the last recorded step: T₁ is then only a lower bound."""
    t_clean_fit: int | None
    """The clean-fit time (:meth:`lnfl.training.History.t_clean_fit`), an initialisation clock."""


def stage_one_clocks(hist: History, data: Dataset) -> Clocks:
    """Both clocks of a run: the Stage I window, its end T₁ (flagged ``censored`` when the state still holds at
    the last recorded step) and the clean-fit time.  ``data`` is the training set ``hist`` was recorded on."""
    window = stage_one_window(hist, data)
    if window is None:
        return Clocks(None, None, False, hist.t_clean_fit())
    return Clocks(window[0], window[1], window[1] == int(hist.t[-1]), hist.t_clean_fit())


def best_noisy_true(hist: History) -> float:
    """The largest fraction of noisy samples classified by their true label (y_i f > 0) at a recorded step at which
    every clean sample is fitted: 1.0 exactly when the Stage I state holds at some step, less when it never does
    (how far the run falls short of a Stage I); NaN if the clean samples are never all fitted."""
    check_instance("hist", hist, History, "an lnfl.training.History")
    all_clean = hist.train_acc_clean >= 1.0
    return float(hist.noisy_true_acc[all_clean].max()) if bool(all_clean.any()) else float("nan")


@functools.lru_cache(maxsize=256)
def _clocks(config: tuple, seeds: tuple[int, ...], steps: int, dtype: torch.dtype) -> tuple[Clocks, ...]:
    """:func:`stage_one_clocks` of each seed's run of one configuration (a sorted tuple of its settings): one batch,
    ``engine="coef"``, recorded at every step, no test set.  Cached, so that sweeps share their common point."""
    cfg = {k: int(v) if k in ("n", "m", "d") else v for k, v in config}
    setups = [setup(seed=s, n_test=1, dtype=dtype, **cfg) for s in seeds]
    hists = train_batch(setups, steps=steps, test="none", engine="coef")
    return tuple(stage_one_clocks(h, s.data) for s, h in zip(setups, hists, strict=True))


def _nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def _sweep(
    name: str, param: str, values: object, seeds: object, horizon: float, dtype: object, overrides: dict
) -> tuple[list, tuple[int, ...], list[dict], float, torch.dtype]:
    """Checked arguments of a sweep: values, seeds, one configuration per value, horizon and dtype."""
    check_choice("param", param, SWEPT)
    values = check_sequence("values", values, check_positive if param in ("eta", "sigma0") else check_int)
    seeds = tuple(check_sequence("seeds", seeds, check_seed))
    horizon = check_positive("horizon", horizon)
    dtype = check_dtype("dtype", dtype)
    check_keys("overrides", overrides, REFERENCE)
    if param in overrides:
        raise TypeError(f"{name} varies {param} itself: do not also pass {param}={overrides[param]!r}")
    return values, seeds, [{**REFERENCE, **overrides, param: v} for v in values], horizon, dtype


def _run_clocks(cfg: dict, seeds: tuple[int, ...], steps: int, dtype: torch.dtype) -> tuple[Clocks, ...]:
    """:func:`_clocks` of a full configuration (every key of REFERENCE), the same key however it was reached."""
    per_record = _record_bytes(len(seeds), cfg["n"], cfg["m"], dtype, dtype)
    check_recording("steps", steps, 1, per_record)
    config = tuple(sorted((k, float(v)) for k, v in cfg.items()))
    return _clocks(config, seeds, steps, dtype)


def t1_sweep(
    param: str,
    values: Sequence[float],
    seeds: Sequence[int] = (0, 1, 2),
    horizon: float = 4.0,
    dtype: torch.dtype = torch.float32,
    **overrides: float,
) -> dict[str, torch.Tensor]:
    """Both Stage I clocks for each value of ``param`` (one of n, m, eta, d, sigma0) and seed, the other
    parameters from :data:`~lnfl.training.REFERENCE` with ``overrides``.

    Each value runs its seeds as one batch for ⌈horizon · nm/(η σ_ξ² d)⌉ steps, recorded at every step, in
    ``dtype`` (float32 by default: the clocks are signs of margins).  Returns, with shape (V,): ``values``,
    ``order`` (nm/(η σ_ξ² d), Theorem 4.1), ``clean_fit_order`` (:func:`clean_fit_order`), ``steps``; with shape
    (V, S): ``t1`` (T₁, the end of the Stage I window), ``start`` (its first step), ``t_clean_fit``, NaN where the
    event does not happen within the run, and ``censored`` (bool: the state still holds at the last step, so T₁
    is a lower bound; raise ``horizon``).  The clean-fit time comes after a few steps here, so it is resolved
    only coarsely: :func:`clean_fit_sweep` measures it on its own scale.
    """
    values, seeds, cfgs, horizon, dtype = _sweep("t1_sweep", param, values, seeds, horizon, dtype, overrides)
    out: dict[str, list] = {"order": [], "clean_fit_order": [], "steps": [], "t1": [], "start": [], "t_clean_fit": []}
    out["censored"] = []
    for cfg in cfgs:
        order = t1_order(cfg["n"], cfg["m"], cfg["eta"], cfg["sigma_xi"], cfg["d"])
        steps = math.ceil(horizon * order)
        clocks = _run_clocks(cfg, seeds, steps, dtype)
        out["order"].append(order)
        out["clean_fit_order"].append(
            clean_fit_order(cfg["n"], cfg["m"], cfg["eta"], cfg["sigma_xi"], cfg["d"], cfg["sigma0"])
        )
        out["steps"].append(steps)
        out["t1"].append([_nan(c.t1) for c in clocks])
        out["start"].append([_nan(c.start) for c in clocks])
        out["t_clean_fit"].append([_nan(c.t_clean_fit) for c in clocks])
        out["censored"].append([c.censored for c in clocks])
    result = {"values": torch.tensor(values, dtype=torch.float64)}
    result.update({k: torch.tensor(v, dtype=torch.float64) for k, v in out.items() if k not in ("steps", "censored")})
    result["steps"] = torch.tensor(out["steps"])
    result["censored"] = torch.tensor(out["censored"], dtype=torch.bool)
    return result


def clean_fit_sweep(
    param: str,
    values: Sequence[float],
    seeds: Sequence[int] = (0, 1, 2),
    horizon: float = 3.0,
    dtype: torch.dtype = torch.float32,
    **overrides: float,
) -> dict[str, torch.Tensor]:
    """The clean-fit time (:meth:`~lnfl.training.History.t_clean_fit`) for each value of ``param`` (one of n, m,
    eta, d, sigma0) and seed, on its own scale: each value runs for ⌈horizon · σ₀ n √m/(η σ_ξ √d)⌉ steps
    (:func:`clean_fit_order`), recorded at every step (pass a small η to resolve the clock to a few percent).

    Returns ``values``, ``order`` (the clean-fit order), ``steps`` (V,) and ``t_clean_fit`` (V, S), NaN where
    not every clean sample is fitted within the run.
    """
    values, seeds, cfgs, horizon, dtype = _sweep("clean_fit_sweep", param, values, seeds, horizon, dtype, overrides)
    order, steps, t_fit = [], [], []
    for cfg in cfgs:
        o = clean_fit_order(cfg["n"], cfg["m"], cfg["eta"], cfg["sigma_xi"], cfg["d"], cfg["sigma0"])
        k = math.ceil(horizon * o)
        clocks = _run_clocks(cfg, seeds, k, dtype)
        order.append(o)
        steps.append(k)
        t_fit.append([_nan(c.t_clean_fit) for c in clocks])
    return {
        "values": torch.tensor(values, dtype=torch.float64),
        "order": torch.tensor(order, dtype=torch.float64),
        "steps": torch.tensor(steps),
        "t_clean_fit": torch.tensor(t_fit, dtype=torch.float64),
    }


class SlopeFit(NamedTuple):
    """A fitted log-log slope and its bootstrap interval over seeds (:func:`slope_interval`)."""

    slope: float
    low: float
    high: float


def slope_interval(
    values: Sequence[float], times: torch.Tensor, level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> SlopeFit:
    """The exponent b of times ∝ values^b, with a bootstrap interval over seeds.

    ``times`` has shape (V, S): one row per value, one column per seed, NaN where the event was not observed.
    The slope is :func:`loglog_slope` of the geometric means over seeds of the rows (NaN ignored); the interval
    is the central ``level`` range of the same slope over ``n_boot`` resamplings of the seeds (columns drawn
    with replacement, the same columns for every row, so that a seed's runs stay together).
    """
    xs = check_sequence("values", values, check_positive, min_len=2)
    level = check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    n_boot = check_int("n_boot", n_boot)
    seed = check_seed("seed", seed)
    if not isinstance(times, torch.Tensor) or times.ndim != 2 or times.shape[0] != len(xs) or times.shape[1] < 1:
        raise ValueError(f"times must be a tensor of shape ({len(xs)}, seeds), one row per value, got {times!r}")
    T = times.to(torch.float64)
    seen = ~torch.isnan(T)
    if bool((T[seen] <= 0).any()) or not bool(torch.isfinite(T[seen]).all()):
        raise ValueError("times must be positive and finite (NaN where the event was not observed)")
    if not bool(seen.any(dim=1).all()):
        raise ValueError("every value needs at least one observed time (a row of times is all NaN)")
    x = torch.log(torch.tensor(xs, dtype=torch.float64))
    xc = x - x.mean()
    if float((xc * xc).sum()) == 0.0:
        raise ValueError("values must hold at least two distinct values")
    logT = torch.where(seen, T.clamp(min=1e-300).log(), torch.nan)

    def slopes(L: torch.Tensor) -> torch.Tensor:  # L (V, B): mean log time per value, B fits at once
        return (xc[:, None] * (L - L.mean(dim=0))).sum(dim=0) / (xc * xc).sum()

    centre = float(slopes(torch.nanmean(logT, dim=1, keepdim=True))[0])
    g = torch.Generator().manual_seed(seed)
    cols = torch.randint(T.shape[1], (n_boot, T.shape[1]), generator=g)
    boot = slopes(torch.nanmean(logT[:, cols], dim=2))  # (n_boot,): NaN where a row drew only NaN
    boot = boot[~torch.isnan(boot)]
    q = torch.quantile(boot, torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64))
    return SlopeFit(centre, float(q[0]), float(q[1]))


def phase_diagram(
    n_snr2s: Sequence[float],
    taus: Sequence[float],
    seeds: Sequence[int] = (0, 1),
    late_seeds: Sequence[int] | None = None,
    horizon: float = 4.0,
    steps: int = 800,
    dtype: torch.dtype = torch.float32,
    **overrides: float,
) -> dict[str, torch.Tensor]:
    """Stage I and its cost over an n·SNR² × τ grid (τ₊ = τ₋ = τ), every configuration in one batch per stage.

    Early runs, every seed of ``seeds``: ⌈horizon · nm/(η σ_ξ² d)⌉ steps recorded at every step.  Shape
    (len(n_snr2s), len(taus), len(seeds)):

    - ``has_window``: 1.0 where the Stage I state (every clean sample fitted, every noisy sample classified by its
      true label) holds at some recorded step, else 0.0; its mean over seeds is the rate of a Stage I;
    - ``start``, ``t1``: the Stage I window (NaN without one); ``censored`` (bool): the state holds at the end;
    - ``best_noisy_true``: the largest fraction of noisy samples classified by their true label at a recorded
      step with every clean sample fitted (1.0 exactly where there is a window; NaN if the clean samples are never
      all fitted): how far a draw without a Stage I falls short of one.

    Late runs, ``late_seeds`` (default: ``seeds``), ``steps`` steps, shape (…, len(late_seeds)):
    ``final_test_error`` (clean labels, on the whole distribution via the Gaussian of the projections) and
    ``final_noisy_fit`` (fraction of noisy samples fitted to their wrong label).  Also ``order`` (0-d),
    nm/(η σ_ξ² d).
    """
    n_snr2s = check_sequence("n_snr2s", n_snr2s, check_positive)
    taus = check_sequence("taus", taus, check_tau)
    seeds = check_sequence("seeds", seeds, check_seed)
    late_seeds = seeds if late_seeds is None else check_sequence("late_seeds", late_seeds, check_seed)
    horizon = check_positive("horizon", horizon)
    steps = check_int("steps", steps)
    dtype = check_dtype("dtype", dtype)
    check_keys("overrides", overrides, REFERENCE)
    swept = sorted({"n_snr2", "tau_plus", "tau_minus"} & set(overrides))
    if swept:
        raise TypeError(f"overrides must not set {swept}: phase_diagram sweeps n·SNR² and τ₊ = τ₋ = τ itself")
    cfg = {**REFERENCE, **overrides}
    order = t1_order(cfg["n"], cfg["m"], cfg["eta"], cfg["sigma_xi"], cfg["d"])

    def setups(seed_list: list[int]) -> list[Setup]:
        grid = [(a, tau, s) for a in n_snr2s for tau in taus for s in seed_list]
        return [
            setup(seed=s, n_test=1, dtype=dtype, **{**overrides, "n_snr2": a, "tau_plus": t, "tau_minus": t})
            for a, t, s in grid
        ]

    early_setups = setups(seeds)
    early = train_batch(early_setups, steps=math.ceil(horizon * order), test="none", engine="coef")
    clocks = [stage_one_clocks(h, s.data) for s, h in zip(early_setups, early, strict=True)]
    best = [best_noisy_true(h) for h in early]
    late = train_batch(setups(late_seeds), steps=steps, record_every=steps, test="gaussian", engine="coef")
    shape, late_shape = (len(n_snr2s), len(taus), len(seeds)), (len(n_snr2s), len(taus), len(late_seeds))

    def grid(v: list, shp: tuple[int, ...], dt: torch.dtype = torch.float64) -> torch.Tensor:
        return torch.tensor(v, dtype=dt).reshape(shp)

    return {
        "has_window": grid([float(c.t1 is not None) for c in clocks], shape),
        "start": grid([_nan(c.start) for c in clocks], shape),
        "t1": grid([_nan(c.t1) for c in clocks], shape),
        "censored": grid([c.censored for c in clocks], shape, torch.bool),
        "best_noisy_true": grid(best, shape),
        "final_test_error": grid([1 - float(h.test_acc[-1]) for h in late], late_shape),
        "final_noisy_fit": grid([float(h.train_acc_noisy[-1]) for h in late], late_shape),
        "order": torch.tensor(order, dtype=torch.float64),
    }


def _step_or_none(name: str, t: object) -> float | None:
    """A recorded step (a number ≥ 0), or None / NaN for "no such step"."""
    if t is None or (isinstance(t, float) and math.isnan(t)):
        return None
    return check_real(name, t, low=0.0)


def clean_error_at(setups: Sequence[Setup], hists: Sequence[History], steps: Sequence[int | None]) -> torch.Tensor:
    """Clean test error, on the model's whole distribution, of W^(t) of each run at one of its recorded steps.

    ``hists[k]`` was trained from ``setups[k]`` (all with the same n, m, d); W at the recorded step ``steps[k]`` is
    rebuilt from the decomposition (:func:`lnfl.selection.weights_at`) and scored against the clean labels y by
    the Gaussian of the projections ⟨w_{j,r}, ξ⟩, as ``train(..., test=model)`` does.  NaN where ``steps[k]`` is
    ``None`` or NaN.  Shape (K,).
    """
    setups = check_sequence("setups", setups, lambda name, s: check_instance(name, s, Setup, "an lnfl.training.Setup"))
    hists = check_sequence("hists", hists, lambda name, h: check_instance(name, h, History, "an lnfl.training.History"))
    steps = check_sequence("steps", steps, _step_or_none)
    if len(setups) != len(hists) or len(hists) != len(steps):
        sizes = f"{len(setups)}, {len(hists)}, {len(steps)}"
        raise ValueError(f"setups, hists and steps must have one entry per run each, got {sizes}")
    err = torch.full((len(hists),), float("nan"), dtype=torch.float64)
    todo = [k for k, t in enumerate(steps) if t is not None and not math.isnan(float(t))]
    if not todo:
        return err
    scored = []
    for k in todo:
        s, h = setups[k], hists[k]
        scored.append(Setup(s.model, s.data, s.test, weights_at(h, s.data, h.at(int(steps[k]))), s.eta))
    for k, h in zip(todo, train_batch(scored, steps=0, test="gaussian", engine="coef"), strict=True):
        err[k] = 1.0 - float(h.test_acc[0])
    return err


def memorisation_vs_d(
    ds: Sequence[int],
    seeds: Sequence[int] = (0, 1, 2),
    steps: int = 400,
    order: float | None = None,
    early_order: float = 25.0,
    horizon: float = 4.0,
    n_val: int = 400,
    init_scale: float | None = None,
    early: bool = True,
    dtype: torch.dtype = torch.float32,
    **overrides: float,
) -> dict[str, torch.Tensor]:
    """Benign or harmful memorisation as d grows, the other parameters from :data:`~lnfl.training.REFERENCE`
    with ``overrides``.

    Each d runs with η = nm/(order · σ_ξ² d), so that the order nm/(η σ_ξ² d) of T₁ is ``order`` at every d
    (default: that of the base configuration, i.e. η ∝ 1/d), and with σ₀ = init_scale/(σ_ξ √d), so that the initial
    projections ⟨w⁽⁰⁾, ξ_i⟩ keep the size ``init_scale`` (default: the base σ₀σ_ξ√d).  For each d the seeds run as
    one batch (``engine="coef"``), twice:

    - early, with η set by ``early_order`` instead (finer steps), ⌈horizon · early_order⌉ steps recorded at every
      step, each seed's test set of ``n_val`` samples used as a *noisy validation set* (same model, labels flipped
      at the same rates): the Stage I window (``start``, ``t1``, ``censored``), the validation stopping time
      ``t_es`` (earliest step of best accuracy against the noisy validation labels,
      :func:`lnfl.selection.early_stopping_index`; NaN if ``n_val`` = 0), and the clean test error, on the whole
      distribution, at T₁ (``test_error_t1``) and at t_ES (``test_error_es``); times in steps of this run;
    - late, ``steps`` steps: ``final_test_error`` (clean labels, whole distribution) and ``final_noisy_fit``.

    ``early=False`` skips the early runs (their entries are then NaN, ``censored`` False).  Returns (len(ds), len(seeds)) tensors, and ``d``, ``eta``, ``early_eta`` of shape (len(ds),).
    """
    ds = check_sequence("ds", ds, check_int)
    seeds = check_sequence("seeds", seeds, check_seed)
    steps = check_int("steps", steps)
    early_order = check_positive("early_order", early_order)
    horizon = check_positive("horizon", horizon)
    n_val = check_int("n_val", n_val, minimum=0)
    early = check_bool("early", early)
    dtype = check_dtype("dtype", dtype)
    check_keys("overrides", overrides, REFERENCE)
    if {"d", "eta", "sigma0"} & set(overrides):
        raise TypeError("memorisation_vs_d sets d, eta and sigma0 itself: pass order= and init_scale= instead")
    base = {**REFERENCE, **overrides}
    n, m, s_xi = base["n"], base["m"], base["sigma_xi"]
    order = t1_order(n, m, base["eta"], s_xi, base["d"]) if order is None else check_positive("order", order)
    if init_scale is None:
        init_scale = base["sigma0"] * s_xi * math.sqrt(base["d"])
    init_scale = check_positive("init_scale", init_scale)
    keys = ("start", "t1", "censored", "t_es", "test_error_t1", "test_error_es", "final_test_error", "final_noisy_fit")
    out: dict[str, list] = {k: [] for k in keys}
    etas, early_etas = [], []
    for d in ds:
        if d <= n:
            raise ValueError(f"ds must exceed n = {n} (the decomposition needs d >= n + 1), got d = {d}")
        sigma0 = init_scale / (s_xi * math.sqrt(d))
        eta, early_eta = n * m / (order * s_xi**2 * d), n * m / (early_order * s_xi**2 * d)
        kw = {**overrides, "d": d, "sigma0": sigma0}
        if early:
            early_setups = [setup(seed=s, n_test=max(n_val, 1), dtype=dtype, eta=early_eta, **kw) for s in seeds]
            test = "sample" if n_val else "none"
            hists = train_batch(early_setups, steps=math.ceil(horizon * early_order), test=test, engine="coef")
            clocks = [stage_one_clocks(h, s.data) for s, h in zip(early_setups, hists, strict=True)]
            t_es = [int(h.t[early_stopping_index(h.test_acc_noisy_labels)]) if n_val else None for h in hists]
            both = clean_error_at(early_setups * 2, hists * 2, [c.t1 for c in clocks] + t_es).tolist()
            err_t1, err_es = both[: len(seeds)], both[len(seeds) :]
            del early_setups, hists
        else:
            clocks, t_es = [Clocks(None, None, False, None)] * len(seeds), [None] * len(seeds)
            err_t1 = err_es = [float("nan")] * len(seeds)
        out["start"].append([_nan(c.start) for c in clocks])
        out["t1"].append([_nan(c.t1) for c in clocks])
        out["censored"].append([c.censored for c in clocks])
        out["t_es"].append([_nan(t) for t in t_es])
        out["test_error_t1"].append(err_t1)
        out["test_error_es"].append(err_es)
        late_setups = [setup(seed=s, n_test=1, dtype=dtype, eta=eta, **kw) for s in seeds]
        late = train_batch(late_setups, steps=steps, record_every=steps, test="gaussian", engine="coef")
        out["final_test_error"].append([1 - float(h.test_acc[-1]) for h in late])
        out["final_noisy_fit"].append([float(h.train_acc_noisy[-1]) for h in late])
        etas.append(eta)
        early_etas.append(early_eta)
        del late_setups, late
    result = {k: torch.tensor(v, dtype=torch.bool if k == "censored" else torch.float64) for k, v in out.items()}
    result["d"] = torch.tensor(ds, dtype=torch.float64)
    result["eta"] = torch.tensor(etas, dtype=torch.float64)
    result["early_eta"] = torch.tensor(early_etas, dtype=torch.float64)
    return result


def curve_discrepancy(xs: Sequence[Sequence[float]], ys: Sequence[Sequence[float]], floor: float = 1e-3) -> float:
    """How far apart curves y(x) lie on log–log axes, in decades (does a family of curves collapse in x?).

    The mean, over ordered pairs (a, b) of distinct curves and over the points of curve a whose x lies within
    curve b's range, of |log₁₀(y_a + floor) − log₁₀(y_b(x_a) + floor)|, with curve b interpolated linearly in
    log x.  0 when the curves coincide.  ``floor`` keeps zero values finite and sets the size below which
    differences do not count.  ``xs[k]``, ``ys[k]``: curve k, x positive and increasing, y ≥ 0.  Raises
    ``ValueError`` when no point of any curve lies within another's range (nothing to compare).
    """
    floor = check_positive("floor", floor)
    xs = check_sequence("xs", xs, lambda name, x: check_sequence(name, x, check_positive, min_len=2), min_len=2)
    ys = check_sequence("ys", ys, lambda name, y: check_sequence(name, y, lambda n_, v: check_real(n_, v, low=0.0)))
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError(f"xs and ys must hold the same number (≥ 2) of curves, got {len(xs)} and {len(ys)}")
    curves = []
    for k, (x, y) in enumerate(zip(xs, ys, strict=True)):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if x.ndim != 1 or x.shape != y.shape or x.size < 2:
            raise ValueError(f"xs[{k}] and ys[{k}] must be 1-d of the same length ≥ 2, got {x.shape} and {y.shape}")
        if not (np.isfinite(x).all() and np.isfinite(y).all()) or (x <= 0).any() or (y < 0).any():
            raise ValueError(f"xs[{k}] must be positive, ys[{k}] non-negative, both finite")
        if (np.diff(x) <= 0).any():
            raise ValueError(f"xs[{k}] must be increasing (curve {k})")
        curves.append((np.log(x), np.log10(y + floor)))
    gaps = []
    for a, (xa, ya) in enumerate(curves):
        for b, (xb, yb) in enumerate(curves):
            inside = (xa >= xb[0]) & (xa <= xb[-1])
            if a != b and inside.any():
                gaps.extend(np.abs(ya[inside] - np.interp(xa[inside], xb, yb)).tolist())
    if not gaps:
        raise ValueError("no point of any curve lies within another curve's x range: nothing to compare")
    return float(np.mean(gaps))


class Collapse(NamedTuple):
    """How far apart a family of curves measured over seeds lies in one variable (:func:`collapse`), in decades."""

    discrepancy: float
    """:func:`curve_discrepancy` of the curves of seed means."""
    low: float
    high: float
    """Bootstrap interval of the discrepancy over seeds (each curve's seeds resampled with replacement)."""
    noise: float
    """Seed noise alone: the discrepancy between the means of the even- and the odd-numbered seeds of one curve
    (largest over the curves); curves that collapse differ by about this much."""


def collapse(
    xs: Sequence[Sequence[float]],
    samples: Sequence[object],
    floor: float = 1e-3,
    level: float = 0.95,
    n_boot: int = 400,
    seed: int = 0,
) -> Collapse:
    """Do curves y(x), each measured over seeds, fall onto one another when drawn against x?

    ``xs[k]``: the x of curve k (positive, increasing); ``samples[k]``: its values, an array of shape
    (len(xs[k]), seeds_k) with one column per seed (≥ 2 seeds).  Returns the :func:`curve_discrepancy` of the
    seed means, its bootstrap interval over seeds (``level``, ``n_boot`` resamplings) and the discrepancy due to
    seed noise alone (even against odd seeds of the same curve), all in decades.
    """
    level = check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    n_boot = check_int("n_boot", n_boot)
    seed = check_seed("seed", seed)
    xs = check_sequence("xs", xs, lambda name, x: check_sequence(name, x, check_positive, min_len=2), min_len=2)
    ys = []
    for k, v in enumerate(check_sequence("samples", samples, lambda name, v: v, min_len=2)):
        try:
            ys.append(np.asarray(v.cpu() if isinstance(v, torch.Tensor) else v, dtype=float))
        except (TypeError, ValueError):
            raise TypeError(
                f"samples[{k}] must be an array of numbers of shape (len(xs[{k}]), seeds), got {v!r}"
            ) from None
    if len(ys) != len(xs):
        raise ValueError(f"xs and samples must hold the same number of curves, got {len(xs)} and {len(ys)}")
    for k, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if y.ndim != 2 or y.shape[0] != len(x) or y.shape[1] < 2:
            raise ValueError(
                f"samples[{k}] must have shape ({len(x)}, seeds) with at least 2 seeds, got {tuple(y.shape)}"
            )
    centre = curve_discrepancy(xs, [y.mean(axis=1) for y in ys], floor)
    rng = np.random.default_rng(seed)
    boot = [
        curve_discrepancy(xs, [y[:, rng.integers(y.shape[1], size=y.shape[1])].mean(axis=1) for y in ys], floor)
        for _ in range(n_boot)
    ]
    low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    halves = [
        curve_discrepancy([x, x], [y[:, ::2].mean(axis=1), y[:, 1::2].mean(axis=1)], floor)
        for x, y in zip(xs, ys, strict=True)
    ]
    noise = max(halves)
    return Collapse(centre, float(low), float(high), noise)
