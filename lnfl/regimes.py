"""Regimes and scaling (chapter 9): sweeps that run many configurations through the batched, d-independent engine.

- :func:`t1_sweep`: T̂₁ (:meth:`History.t_clean_fit`, the clean-fit time) and T_γ (mean γ reaches a level,
  the theory's "γ = Θ(1)") against one of n, m, η, d, over seeds, with the order nm/(η σ_ξ² d) of Theorem 4.1.
- :func:`phase_diagram`: over n·SNR² × τ, the fraction of noisy samples classified by their true label at T̂₁
  (is there a Stage I?) and the clean test error after training (what memorisation costs).
- :func:`memorisation_vs_d`: benign versus harmful memorisation as d/n grows, up to d ≫ n².

Every run uses ``engine="coef"`` (per-step cost free of d) and one batched call per shape (n, m, d).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._validate import check_positive
from .theory import t1_order
from .training import REFERENCE, History, setup, train_batch

__all__ = ["loglog_slope", "t_gamma", "t1_sweep", "phase_diagram", "memorisation_vs_d"]


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope b of log y = a + b log x (the exponent of a power law y ∝ x^b)."""
    lx = torch.log(torch.as_tensor(x, dtype=torch.float64))
    ly = torch.log(torch.as_tensor(y, dtype=torch.float64))
    if lx.numel() < 2 or lx.shape != ly.shape or not bool(torch.isfinite(ly).all()):
        raise ValueError("loglog_slope needs two or more matching positive x and y values")
    lx, ly = lx - lx.mean(), ly - ly.mean()
    return float((lx * ly).sum() / (lx * lx).sum())


def t_gamma(hist: History, level: float = 0.5) -> int | None:
    """T_γ: the first recorded step at which the mean of γ_{j,r} over all filters reaches ``level``, or None."""
    level = check_positive("level", level)
    hits = (hist.gamma.mean(dim=(1, 2)) >= level).nonzero()
    return int(hist.t[hits[0, 0]]) if hits.numel() else None


def t1_sweep(
    param: str,
    values: Sequence[float],
    seeds: Sequence[int] = (0, 1, 2),
    level: float = 0.5,
    horizon: float = 0.8,
    **overrides: float,
) -> dict[str, torch.Tensor]:
    """T̂₁ and T_γ for each value of ``param`` (one of n, m, eta, d) and seed, the rest from :data:`REFERENCE`
    with ``overrides``.  Each value runs its seeds as one batch for ⌈horizon · nm/(η σ_ξ² d)⌉ steps, recorded
    every step (ρ stored in float32).  Returns ``order`` (values,), ``t1`` and ``t_gamma`` (values, seeds),
    NaN where the event did not happen within the horizon.
    """
    if param not in ("n", "m", "eta", "d"):
        raise ValueError(f"param must be one of 'n', 'm', 'eta', 'd', got {param!r}")
    order, t1, tg = [], [], []
    for v in values:
        cfg = {**REFERENCE, **overrides, param: v}
        T = t1_order(cfg["n"], cfg["m"], cfg["eta"], cfg["sigma_xi"], cfg["d"])
        setups = [setup(seed=s, n_test=1, **{**overrides, param: v}) for s in seeds]
        hists = train_batch(setups, steps=math.ceil(horizon * T), test="none", engine="coef", rho_dtype=torch.float32)
        order.append(T)
        t1.append([float("nan") if (x := h.t_clean_fit()) is None else x for h in hists])
        tg.append([float("nan") if (x := t_gamma(h, level)) is None else x for h in hists])
    return {
        "values": torch.tensor(values, dtype=torch.float64),
        "order": torch.tensor(order, dtype=torch.float64),
        "t1": torch.tensor(t1, dtype=torch.float64),
        "t_gamma": torch.tensor(tg, dtype=torch.float64),
    }


def phase_diagram(
    n_snr2s: Sequence[float],
    taus: Sequence[float],
    seeds: Sequence[int] = (0, 1),
    early_steps: int = 100,
    steps: int = 1200,
    **overrides: float,
) -> dict[str, torch.Tensor]:
    """Stage I and its cost over an n·SNR² × τ grid (τ₊ = τ₋ = τ), all configurations in one batch.

    Returns, with shape (len(n_snr2s), len(taus), len(seeds)): ``t1`` (T̂₁, from a run of ``early_steps``
    recorded every step), ``noisy_true_at_t1`` (fraction of noisy samples classified by their true label at
    T̂₁), ``final_test_error`` (clean labels, on the whole distribution via the Gaussian of the projections,
    after ``steps``) and ``final_noisy_fit`` (fraction of noisy samples fitted to their wrong label then).
    """
    grid = [(a, tau, s) for a in n_snr2s for tau in taus for s in seeds]
    setups = [setup(seed=s, n_test=1, **{**overrides, "n_snr2": a, "tau_plus": t, "tau_minus": t}) for a, t, s in grid]
    early = train_batch(setups, steps=early_steps, test="none", engine="coef", rho_dtype=torch.float32)
    late = train_batch(setups, steps=steps, record_every=steps, test="gaussian", engine="coef", rho_dtype=torch.float32)
    t1 = [h.t_clean_fit() for h in early]
    out = {
        "t1": [float("nan") if t is None else t for t in t1],
        "noisy_true_at_t1": [
            float("nan") if t is None else float(h.noisy_true_acc[h.at(t)]) for h, t in zip(early, t1, strict=True)
        ],
        "final_test_error": [1 - float(h.test_acc[-1]) for h in late],
        "final_noisy_fit": [float(h.train_acc_noisy[-1]) for h in late],
    }
    shape = (len(n_snr2s), len(taus), len(seeds))
    return {k: torch.tensor(v, dtype=torch.float64).reshape(shape) for k, v in out.items()}


def memorisation_vs_d(
    ds: Sequence[int],
    seeds: Sequence[int] = (0, 1, 2),
    early_steps: int = 40,
    steps: int = 1000,
    **overrides: float,
) -> dict[str, torch.Tensor]:
    """Benign or harmful memorisation as d/n grows, with η ∝ 1/d (so that the order nm/(η σ_ξ² d) of T₁ stays
    that of ``overrides``) and σ₀ ∝ 1/√d (so that the initial projections ⟨w⁽⁰⁾, ξ_i⟩ ~ σ₀σ_ξ√d keep their size).

    For each d, the seeds run as one batch (``engine="coef"``: the d-dimensional vectors are touched only to form
    the Gram matrices).  Returns, with shape (len(ds), len(seeds)): ``t1``, ``test_error_t1`` (clean test error at
    T̂₁), ``final_test_error`` and ``final_noisy_fit`` after ``steps``; test errors on the whole distribution
    (Gaussian of the projections).
    """
    base = {**REFERENCE, **overrides}
    out: dict[str, list] = {"t1": [], "test_error_t1": [], "final_test_error": [], "final_noisy_fit": []}
    for d in ds:
        scaled = {"d": d, "eta": base["eta"] * base["d"] / d, "sigma0": base["sigma0"] * math.sqrt(base["d"] / d)}
        setups = [setup(seed=s, n_test=1, **{**overrides, **scaled}) for s in seeds]
        early = train_batch(setups, steps=early_steps, test="gaussian", engine="coef")
        late = train_batch(setups, steps=steps, record_every=steps, test="gaussian", engine="coef")
        t1 = [h.t_clean_fit() for h in early]
        out["t1"].append([float("nan") if t is None else t for t in t1])
        out["test_error_t1"].append(
            [float("nan") if t is None else 1 - float(h.test_acc[h.at(t)]) for h, t in zip(early, t1, strict=True)]
        )
        out["final_test_error"].append([1 - float(h.test_acc[-1]) for h in late])
        out["final_noisy_fit"].append([float(h.train_acc_noisy[-1]) for h in late])
        del setups, early, late
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in out.items()}
