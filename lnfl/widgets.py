"""Interactive explorers (ipywidgets) for the data model, the γ–ρ̄ race and log 2 sample selection.

Each explorer is a plain callback that returns ``(figure, summary)`` plus a thin widget around it:

- :func:`data_model_figure` (τ₊, τ₋, n·SNR², d): label flips per class, signal patch ‖μ‖ against the noise
  patches ‖ξ_i‖, and the Stage I growth ratio Δγ/Δρ̄ ≈ (1 − 2τ)·n·SNR²/2 (Chapter 2);
- :func:`race_figure` (τ, n·SNR², η, m): signal learning γ against memorisation ρ̄ of clean and noisy samples
  over time, the Stage I window and what the network fits (Theorems 4.1 and 4.2 of Han et al. 2025);
- :func:`selection_figure` (threshold, t): per-sample losses ℓ_i at step t, and precision/recall over time of
  the selection ℓ_i < threshold; at threshold log 2 it is perfect exactly in the Stage I state
  (Proposition 4.3).

The callbacks never raise on a bad combination of parameters: they return ``(None, message)`` where the message
says what went wrong and what to change (a ``ValueError``/``TypeError`` from ``lnfl``'s argument checks, or a
:class:`~lnfl.training.TrainingDivergedError`).

**Why a slider answers at once.**  A callback builds a new figure; an :class:`Explorer` instead keeps one
figure with its artists and, on a slider move, only updates what changed: line data, bar heights, titles.
When the axes' limits are the same as in the last full drawing (limits are rounded to a 1–2–5 grid so that
they often are), the unchanged background is restored from a saved bitmap and only the changed artists are
drawn on it (blitting); otherwise the figure is drawn once more with its layout frozen.  The resulting PNG is
cached by the slider settings, so going back to a setting costs nothing.  The race explorer needs a training
run per setting (n = 100, d = 200, 600 steps, about 0.1 s on one core): its runs are cached by setting as
compact curves, and after each move a background thread trains the settings one slider step away (the
direction just moved first), so the next move usually finds its run ready.  ``python -m lnfl.bench`` measures
the latency of a slider move as the reader sees it (callback plus redraw).  A batched call
(:func:`~lnfl.training.train_batch`) does not help here: at this size a batch of K runs costs K single runs.

The widgets (:func:`data_model_explorer`, :func:`race_explorer`, :func:`selection_explorer`) need
``ipywidgets``; the callbacks need only matplotlib.  Every slider carries a description and a tooltip, and the
image carries alt text describing what it shows; :data:`SLIDER_LABELS_HTML` gives the slider handles of a
built page an accessible name.
"""

from __future__ import annotations

import atexit
import base64
import html
import io
import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch
from matplotlib.artist import Artist
from matplotlib.figure import Figure

from ._validate import check_int, check_positive, check_real, check_seed, check_tau
from .data import Dataset, SignalNoiseModel
from .plotting import COLORS
from .selection import LOG2, perfect_separation, precision_recall
from .stages import own_memorisation, stage_one_window, stitch
from .theory import growth_ratio
from .training import History, TrainingDivergedError, setup

__all__ = [
    "DATA_MODEL_DEFAULTS",
    "RACE_DEFAULTS",
    "SELECTION_DEFAULTS",
    "SLIDER_LABELS_HTML",
    "SMALL",
    "Explorer",
    "data_model_figure",
    "race_figure",
    "selection_figure",
    "race_run",
    "data_model_explorer",
    "race_explorer",
    "selection_explorer",
]

#: The fixed, small problem every explorer runs on (fast enough to answer a slider within 0.2 s).
SMALL: dict[str, int] = {"n": 100, "d": 200, "steps": 600, "seed": 0, "n_test": 500, "early_steps": 20}
#: Slider defaults of :func:`data_model_explorer` (the state the static figure shows).
DATA_MODEL_DEFAULTS: dict[str, float | int] = {"tau_plus": 0.2, "tau_minus": 0.2, "n_snr2": 16.0, "d": 200}
#: Slider defaults of :func:`race_explorer`.  η = 0.5 so that 600 steps reach the end of Stage II.
RACE_DEFAULTS: dict[str, float | int] = {"tau": 0.2, "n_snr2": 16.0, "eta": 0.5, "m": 20}
#: Slider defaults of :func:`selection_explorer`: the log 2 threshold, inside the Stage I window.
SELECTION_DEFAULTS: dict[str, float | int] = {"threshold": LOG2, "t": 10}

_ERRORS = (ValueError, TypeError, TrainingDivergedError, FloatingPointError)
_DPI = 90  # the explorers' image resolution (the static figures use the book's)

#: An HTML snippet (a script) for the page that shows explorers: ipywidgets' sliders render a handle with
#: ``role="slider"`` but no accessible name (their description is a separate label element), so the script
#: names each handle after its slider's tooltip or description, also for sliders rendered later.
SLIDER_LABELS_HTML: str = """<script>
(function () {
  function nameHandles(root) {
    root.querySelectorAll(".widget-slider, .jupyter-widget-slider").forEach(function (box) {
      var label = box.querySelector(".widget-label");
      var name = label ? (label.title || label.textContent || "").trim() : "";
      box.querySelectorAll('[role="slider"]').forEach(function (h) {
        if (name && !h.getAttribute("aria-label")) h.setAttribute("aria-label", name);
      });
    });
  }
  function start() {
    nameHandles(document);
    new MutationObserver(function () { nameHandles(document); })
      .observe(document.body, {childList: true, subtree: true});
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
</script>"""


def _message(err: Exception) -> str:
    """What the reader sees instead of a traceback."""
    return f"⚠ These settings cannot be shown: {err}"


class _Figure(Figure):
    """A matplotlib Figure that shows itself as PNG in Jupyter and in ``glue`` whatever the backend (no pyplot)."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png")
        return buf.getvalue()


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run small tensor work on one thread: on a busy machine this is many times faster than several."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _nice_ceil(x: float) -> float:
    """The smallest number of the form {1, 2, 2.5, 5}·10^k at least ``x`` (> 0): axis limits that repeat."""
    if not math.isfinite(x) or x <= 0:
        return 1.0
    k = math.floor(math.log10(x))
    for f in (1.0, 2.0, 2.5, 5.0, 10.0):
        if f * 10**k >= x * (1 - 1e-12):
            return f * 10**k
    return 10.0 ** (k + 1)  # pragma: no cover


def _finite(x: torch.Tensor) -> torch.Tensor:
    return x[torch.isfinite(x)]


class _View:
    """A figure with persistent artists.  ``show(**settings)`` updates them and returns the summary (it raises
    ``_ERRORS`` on bad settings); ``dynamic`` lists, in drawing order, the artists that may change while the
    axes' limits stay, and ``alt`` describes what the figure shows now."""

    figure: _Figure
    args: tuple
    dynamic: list[Artist]
    alt: str = ""
    #: artists drawn over the changing ones from a saved bitmap (legends: they must stay on top)
    overlays: list[Artist] = []
    #: y-limits (by axes index) under which the layout is computed once: the widest tick labels expected
    layout_ylim: dict[int, tuple[float, float]] = {}

    def show(self, **settings: Any) -> str:  # pragma: no cover - every view overrides it
        raise NotImplementedError

    def warm(self, **settings: Any) -> None:
        """Compute and cache what :meth:`show` needs for these settings (no drawing); called in the background."""

    def twin(self) -> _View:
        """A new view of the same kind and configuration, with its own figure."""
        return type(self)(*self.args)


# ----------------------------------------------------------------------------------------------------------
# 1. The data model
# ----------------------------------------------------------------------------------------------------------


class _DataModelView(_View):
    BINS = 20

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = n, seed
        self.args = (n, seed)
        fig = self.figure = _Figure(figsize=(9.0, 3.6), layout="constrained")
        ax1, ax2 = self.axes = fig.subplots(1, 2)
        x = [0, 1]
        self.clean_bars = ax1.bar(x, [0, 0], color=COLORS["clean"], label="clean: ỹ = y")
        self.noisy_bars = ax1.bar(x, [0, 0], color=COLORS["noisy"], label="flipped: ỹ = −y")
        ax1.set_xticks(x, ["y = +1", "y = −1"])
        ax1.set_xlabel("true label y")
        ax1.set_ylabel("number of training samples")
        self.legend1 = ax1.legend(loc="lower center")
        self.hist = ax2.stairs([0.0] * self.BINS, range(self.BINS + 1), fill=True, color=COLORS["other"],
                               label="noise patches ‖ξ_i‖")  # fmt: skip
        self.signal = ax2.axvline(1.0, color=COLORS["signal"], linewidth=2.5, label="signal patch ‖μ‖")
        ax2.set_xlabel("patch norm")
        ax2.set_ylabel("number of samples")
        self.legend2 = ax2.legend(loc="upper left")
        self.dynamic = [*self.clean_bars, *self.noisy_bars, ax1.title, self.hist, self.signal, ax2.title]
        self.overlays = [self.legend1, self.legend2]
        self.layout_ylim = {1: (0.0, 100.0)}

    def show(self, tau_plus: float = 0.2, tau_minus: float = 0.2, n_snr2: float = 16.0, d: int = 200) -> str:
        tau_plus = check_tau("tau_plus", tau_plus)
        tau_minus = check_tau("tau_minus", tau_minus)
        n_snr2 = check_positive("n_snr2", n_snr2)
        d = check_int("d", d)
        n = check_int("n", self.n)
        seed = check_seed("seed", self.seed)
        model = SignalNoiseModel.from_n_snr2(d=d, n=n, n_snr2=n_snr2, tau_plus=tau_plus, tau_minus=tau_minus)
        data = model.sample(n, seed=seed)
        ratio = growth_ratio(n_snr2, tau_plus=tau_plus, tau_minus=tau_minus)

        pos, neg = data.y > 0, data.y < 0
        counts = {
            "clean": [int((pos & data.clean).sum()), int((neg & data.clean).sum())],
            "noisy": [int((pos & data.noisy).sum()), int((neg & data.noisy).sum())],
        }
        xi_norm = data.xi.norm(dim=1)
        ax1, ax2 = self.axes
        for bar_c, bar_n, c, f in zip(self.clean_bars, self.noisy_bars, counts["clean"], counts["noisy"], strict=True):
            bar_c.set_height(c)
            bar_n.set_y(c)
            bar_n.set_height(f)
        ax1.set_ylim(0, _nice_ceil(1.05 * max(c + f for c, f in zip(counts["clean"], counts["noisy"], strict=True))))
        ax1.set_title(f"label flips, τ₊ = {tau_plus:.2f}, τ₋ = {tau_minus:.2f}")

        right = _nice_ceil(1.08 * max(float(xi_norm.max()), model.mu_norm))
        lo, hi = float(xi_norm.min()), float(xi_norm.max())
        counts_xi = torch.histc(xi_norm.to(torch.float64), bins=self.BINS, min=lo, max=hi)
        self.hist.set_data(counts_xi.numpy(), torch.linspace(lo, hi, self.BINS + 1, dtype=torch.float64).numpy())
        self.signal.set_xdata([model.mu_norm, model.mu_norm])
        ax2.set_xlim(0, right)
        ax2.set_ylim(0, _nice_ceil(1.05 * float(counts_xi.max())))
        ax2.set_title(f"signal vs noise, n·SNR² = {n_snr2:.3g}, d = {d}")

        verdict = (
            "above 1: the signal γ grows faster than any single sample's memorisation ρ̄, so expect a Stage I"
            if ratio > 1
            else "at most 1: memorisation keeps pace with the signal from the start, so expect no clean Stage I"
        )
        lines = [
            f"n = {n} samples, d = {d}: ‖μ‖ = {model.mu_norm:.3g}, mean ‖ξ_i‖ = {float(xi_norm.mean()):.3g}, "
            f"SNR = ‖μ‖/(σ_ξ√d) = {model.snr:.3g}, n·SNR² = {model.n_snr2(n):.3g}.",
            f"Flipped labels: {sum(counts['noisy'])} of {n} "
            f"({counts['noisy'][0]} of {sum(x[0] for x in counts.values())} with y = +1, "
            f"{counts['noisy'][1]} of {sum(x[1] for x in counts.values())} with y = −1).",
            f"Stage I growth ratio Δγ/Δρ̄ ≈ (1 − 2τ)·n·SNR²/2 = {ratio:.3g}: {verdict}.",
        ]
        if d < n + 1:
            lines.append(
                f"Note: d = {d} < n + 1 = {n + 1}, so the signal–noise decomposition is not unique (n ≪ d fails)."
            )
        self.alt = (
            f"Data-model explorer at τ₊ = {tau_plus:.2f}, τ₋ = {tau_minus:.2f}, n·SNR² = {n_snr2:.3g}, d = {d}. "
            f"Left: stacked bars of clean and flipped labels per true class, {counts['noisy'][0]} and "
            f"{counts['noisy'][1]} flipped. Right: a histogram of the noise-patch norms around "
            f"{float(xi_norm.mean()):.3g} and a vertical line at the signal-patch norm {model.mu_norm:.3g}."
        )
        return "\n".join(lines)


def data_model_figure(
    tau_plus: float = 0.2,
    tau_minus: float = 0.2,
    n_snr2: float = 16.0,
    d: int = 200,
    *,
    n: int = SMALL["n"],
    seed: int = SMALL["seed"],
) -> tuple[Figure | None, str]:
    """The data model (Chapter 2) for n samples: label flips at rates τ₊, τ₋, and signal against noise.

    Left: per true class y, how many labels were kept (clean, S_t) and flipped (noisy, S_f).  Right: the norms
    of the noise patches ‖ξ_i‖ ≈ σ_ξ√d next to the signal patch ‖μ‖ = σ_ξ√(n·SNR²·d/n).  The summary gives SNR,
    the counts, and the Stage I growth ratio (1 − 2τ)·n·SNR²/2 with τ = (τ₊ + τ₋)/2.

    Returns ``(figure, summary)``, or ``(None, message)`` when the parameters are invalid.
    """
    try:
        view = _DataModelView(check_int("n", n), check_seed("seed", seed))
        summary = view.show(tau_plus, tau_minus, n_snr2, d)
    except _ERRORS as err:
        return None, _message(err)
    return view.figure, summary


# ----------------------------------------------------------------------------------------------------------
# 2. The race between γ and ρ̄
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    data: Dataset
    hist: History


@lru_cache(maxsize=4)  # a History with m = 50 holds ~10 MB of ρ: the explorer keeps compact curves instead
def _cached_run(tau: float, n_snr2: float, eta: float, m: int, n: int, d: int, steps: int, seed: int) -> _Run:
    with _one_thread():
        s = setup(seed=seed, n_test=SMALL["n_test"], d=d, n=n, m=m, n_snr2=n_snr2, tau_plus=tau, tau_minus=tau, eta=eta)
        early = s.train(steps=min(SMALL["early_steps"], steps), record_every=1)
        late = s.train(steps=steps, record_every=5)
        return _Run(s.data, stitch(early, late))


def _race_args(
    tau: float, n_snr2: float, eta: float, m: int, n: int, d: int, steps: int, seed: int
) -> tuple[float, float, float, int, int, int, int, int]:
    return (
        check_tau("tau", tau),
        check_positive("n_snr2", n_snr2),
        check_positive("eta", eta),
        check_int("m", m),
        check_int("n", n),
        check_int("d", d),
        check_int("steps", steps),
        check_seed("seed", seed),
    )


def race_run(
    tau: float = 0.2,
    n_snr2: float = 16.0,
    eta: float = 0.5,
    m: int = 20,
    *,
    n: int = SMALL["n"],
    d: int = SMALL["d"],
    steps: int = SMALL["steps"],
    seed: int = SMALL["seed"],
) -> tuple[Dataset, History]:
    """The (cached) run behind :func:`race_figure` and :func:`selection_figure`: the reference configuration
    shrunk to n = 100, d = 200, with τ₊ = τ₋ = τ, recorded at every step up to 20 and every 5th step after.

    Raises ``ValueError``/``TypeError`` for invalid arguments and
    :class:`~lnfl.training.TrainingDivergedError` if the loss stops being finite.
    """
    run = _cached_run(*_race_args(tau, n_snr2, eta, m, n, d, steps, seed))
    return run.data, run.hist


@dataclass(frozen=True)
class _RaceCurves:
    """What the race figure and summary need from a run: a few curves over the recorded steps (~15 kB)."""

    t: torch.Tensor
    gamma: torch.Tensor
    rho_clean: torch.Tensor
    rho_noisy: torch.Tensor
    fit_clean: torch.Tensor
    memorised: torch.Tensor
    noisy_true: torch.Tensor
    test_acc: torch.Tensor
    window: tuple[int, int] | None
    t_clean_fit: int | None
    has_noisy: bool

    @classmethod
    def of(cls, data: Dataset, hist: History) -> _RaceCurves:
        rho_own = own_memorisation(hist, data)  # (T, n)
        nan = torch.full_like(hist.t, float("nan"), dtype=torch.float64)
        return cls(
            t=hist.t.clone(),
            gamma=hist.gamma.mean(dim=(1, 2)),
            rho_clean=rho_own[:, data.clean].mean(dim=1) if bool(data.clean.any()) else nan,
            rho_noisy=rho_own[:, data.noisy].mean(dim=1) if bool(data.noisy.any()) else nan,
            fit_clean=hist.train_acc_clean.clone(),
            memorised=hist.train_acc_noisy.clone(),
            noisy_true=hist.noisy_true_acc.clone(),
            test_acc=hist.test_acc.clone(),
            window=stage_one_window(hist, data),
            t_clean_fit=hist.t_clean_fit(),
            has_noisy=bool(data.noisy.any()),
        )

    def at(self, step: int) -> int:
        return int((self.t == step).nonzero()[0, 0])


_CURVES: OrderedDict[tuple, _RaceCurves] = OrderedDict()
_CURVES_MAX = 4096  # ~60 MB at most
_CURVES_LOCK = threading.Lock()  # one run at a time: the background thread and a slider never train twice


def _key(x: float) -> float:
    """A setting as a cache key: sliders compute values in the browser, so equal settings may differ in the
    last bits (2**3.5 in JavaScript and in Python); 10 significant digits identify a slider position."""
    return float(f"{x:.10g}")


def _race_curves(tau: float, n_snr2: float, eta: float, m: int, n: int, d: int, steps: int, seed: int) -> _RaceCurves:
    args = _race_args(tau, n_snr2, eta, m, n, d, steps, seed)
    key = (_key(args[0]), _key(args[1]), _key(args[2]), *args[3:])
    with _CURVES_LOCK:
        if key in _CURVES:
            _CURVES.move_to_end(key)
            return _CURVES[key]
        run = _cached_run(*args)
        curves = _RaceCurves.of(run.data, run.hist)
        _CURVES[key] = curves
        while len(_CURVES) > _CURVES_MAX:
            _CURVES.popitem(last=False)
        return curves


def _clear_race_cache() -> None:
    """Forget every cached run (for tests and the benchmark)."""
    with _CURVES_LOCK:
        _CURVES.clear()
        _cached_run.cache_clear()


class _RaceView(_View):
    def __init__(self, n: int, d: int, steps: int, seed: int) -> None:
        self.n, self.d, self.steps, self.seed = n, d, steps, seed
        self.args = (n, d, steps, seed)
        fig = self.figure = _Figure(figsize=(9.5, 3.8), layout="constrained")
        ax1, ax2 = self.axes = fig.subplots(1, 2)
        self.spans = [ax.axvspan(1, 2, color=COLORS["boundary"], alpha=0.15, linewidth=0,
                                 label="Stage I window") for ax in (ax1, ax2)]  # fmt: skip
        self.t1_lines = [ax.axvline(1, color=COLORS["boundary"], linestyle="--", linewidth=1.5,
                                    label="end of Stage I, $T_1$") for ax in (ax1, ax2)]  # fmt: skip
        self.gamma = ax1.plot([], [], color=COLORS["signal"], linewidth=2.5, label="γ (signal learning)")[0]
        self.rho_clean = ax1.plot([], [], color=COLORS["clean"], label="ρ̄ of clean samples")[0]
        self.rho_noisy = ax1.plot([], [], color=COLORS["noisy"], label="ρ̄ of noisy samples")[0]
        ax1.set_xscale("log")
        ax1.set_xlabel("iteration t (log scale)")
        ax1.set_ylabel("coefficient (mean over filters)")
        ax1.set_title("the race: signal γ vs memorisation ρ̄")
        self.fit = ax2.plot([], [], color=COLORS["clean"], label="clean samples fitted")[0]
        self.memo = ax2.plot([], [], color=COLORS["noisy"], label="noisy samples memorised (ỹ f > 0)")[0]
        self.true = ax2.plot([], [], color=COLORS["true"], linestyle=":", label="noisy samples: y f > 0")[0]
        self.test = ax2.plot([], [], color=COLORS["test"], linewidth=2, label="test accuracy (true labels)")[0]
        ax2.set_xscale("log")
        ax2.set_ylim(-0.03, 1.03)
        ax2.set_xlabel("iteration t (log scale)")
        ax2.set_ylabel("fraction")
        for ax in (ax1, ax2):
            ax.set_xlim(0.8, steps * 1.25)
        legend1 = ax1.legend(loc="upper left", fontsize=8)
        legend2 = ax2.legend(loc="lower left", fontsize=8)
        self.layout_ylim = {0: (0.0, 0.025)}
        self.dynamic = [
            *self.spans,
            *self.t1_lines,
            self.gamma,
            self.rho_clean,
            self.rho_noisy,
            self.fit,
            self.memo,
            self.true,
            self.test,
            ax2.title,
        ]
        self.overlays = [legend1, legend2]

    def warm(self, tau: float = 0.2, n_snr2: float = 16.0, eta: float = 0.5, m: int = 20) -> None:
        _race_curves(tau, n_snr2, eta, m, self.n, self.d, self.steps, self.seed)

    def show(self, tau: float = 0.2, n_snr2: float = 16.0, eta: float = 0.5, m: int = 20) -> str:
        c = _race_curves(tau, n_snr2, eta, m, self.n, self.d, self.steps, self.seed)
        ratio = growth_ratio(n_snr2, tau)
        ax1, ax2 = self.axes
        keep = slice(1, None) if len(c.t) > 1 else slice(0, None)  # steps t ≥ 1 on the logarithmic axis
        t = c.t[keep].to(torch.float64).clamp(min=1).numpy()
        for line, y in ((self.gamma, c.gamma), (self.rho_clean, c.rho_clean), (self.rho_noisy, c.rho_noisy),
                        (self.fit, c.fit_clean), (self.memo, c.memorised), (self.true, c.noisy_true),
                        (self.test, c.test_acc)):  # fmt: skip
            line.set_data(t, y[keep].numpy())
        values = _finite(torch.cat([c.gamma[keep], c.rho_clean[keep], c.rho_noisy[keep]]))
        top = _nice_ceil(1.05 * float(values.max())) if values.numel() else 1.0
        low = float(values.min()) if values.numel() else 0.0
        ax1.set_ylim(-_nice_ceil(-1.05 * low) if low < 0 else 0.0, top)
        ax2.set_title(f"τ = {tau:.2f}, n·SNR² = {n_snr2:.3g}, η = {eta:.3g}, m = {m}")
        for span, line in zip(self.spans, self.t1_lines, strict=True):
            span.set_visible(c.window is not None)
            line.set_visible(c.window is not None)
            if c.window is not None:
                start, end = max(c.window[0], 1), max(c.window[1], 1)
                span.set_x(start)
                span.set_width(end - start)
                line.set_xdata([end, end])

        best = int(torch.nan_to_num(c.test_acc, nan=-1.0).argmax())
        lines = [f"Predicted Stage I growth ratio (1 − 2τ)·n·SNR²/2 = {ratio:.3g}."]
        if c.window is None:
            lines.append(
                f"The Stage I state (every clean sample fitted, every noisy one classified by its true label) never "
                f"holds within {self.steps} steps: no Stage I (try a smaller τ, a larger n·SNR² or a larger η)."
            )
        elif not c.has_noisy:
            lines.append(
                f"Every clean sample is fitted from t = {c.window[0]} (the clean-fit time) to t = {c.window[1]}; "
                "with no flipped label there is no Stage II."
            )
        else:
            k = c.at(c.window[1])
            lines.append(
                f"Stage I window: t = {c.window[0]} to T₁ = {c.window[1]}. At T₁ {float(c.noisy_true[k]):.0%} of noisy "
                f"samples are classified by their true label and test accuracy is {float(c.test_acc[k]):.3f}."
            )
        memo = f"{float(c.memorised[-1]):.0%} of noisy samples memorised, " if c.has_noisy else ""
        lines.append(
            f"At t = {int(c.t[-1])}: {memo}"
            f"test accuracy {float(c.test_acc[-1]):.3f} (best {float(c.test_acc[best]):.3f} at t = {int(c.t[best])})."
        )
        if not c.has_noisy:
            lines.append("No label was flipped (τ = 0 or a lucky draw): there is nothing to memorise.")
        window = (
            "no Stage I window" if c.window is None else f"the Stage I window, steps {c.window[0]} to {c.window[1]}"
        )
        self.alt = (
            f"Race explorer at τ = {tau:.2f}, n·SNR² = {n_snr2:.3g}, η = {eta:.3g}, m = {m}, log time axis, "
            f"{window} shaded. Left: mean signal γ and mean memorisation ρ̄ of clean and noisy samples, "
            f"at the last step {float(c.gamma[-1]):.3g}, {float(c.rho_clean[-1]):.3g} and {float(c.rho_noisy[-1]):.3g}. "
            f"Right: fractions of clean samples fitted, noisy samples memorised and test accuracy, "
            f"the last ending at {float(c.test_acc[-1]):.3f}."
        )
        return "\n".join(lines)


def race_figure(
    tau: float = 0.2,
    n_snr2: float = 16.0,
    eta: float = 0.5,
    m: int = 20,
    *,
    n: int = SMALL["n"],
    d: int = SMALL["d"],
    steps: int = SMALL["steps"],
    seed: int = SMALL["seed"],
) -> tuple[Figure | None, str]:
    """Signal learning γ against memorisation ρ̄ over time (Chapters 4 to 6).

    Left: mean γ_{j,r} over all filters, and the mean own-class memorisation ρ̄_{ỹ_i,r,i} of clean and of noisy
    samples.  Right: fraction of clean samples fitted, of noisy samples fitted to their wrong label ỹ
    (memorised), of noisy samples classified by their true label y, and clean test accuracy.  The grey band is
    the Stage I window (:func:`lnfl.stages.stage_one_window`) and the dashed grey line its end, T₁.

    Returns ``(figure, summary)``, or ``(None, message)`` for invalid parameters or a diverging run.
    """
    try:
        view = _RaceView(n, d, steps, seed)
        summary = view.show(tau, n_snr2, eta, m)
    except _ERRORS as err:
        return None, _message(err)
    return view.figure, summary


# ----------------------------------------------------------------------------------------------------------
# 3. log 2 selection
# ----------------------------------------------------------------------------------------------------------


class _SelectionView(_View):
    def __init__(self, run: dict[str, Any]) -> None:
        self.run = run
        self.args = (run,)
        data, hist = race_run(**run)
        self.data, self.hist = data, hist
        losses = self.losses = hist.sample_loss  # (T, n)
        fig = self.figure = _Figure(figsize=(9.5, 3.8), layout="constrained")
        ax1, ax2 = self.axes = fig.subplots(1, 2)
        gen = torch.Generator().manual_seed(0)
        self.points = {}
        for x0, mask, name in ((0, data.clean, "clean"), (1, data.noisy, "noisy")):
            if bool(mask.any()):
                jitter = x0 + 0.25 * (torch.rand(int(mask.sum()), generator=gen, dtype=torch.float64) - 0.5)
                self.points[name] = (mask, ax1.scatter(jitter, losses[0, mask], s=12, color=COLORS[name], alpha=0.8,
                                                       label=f"{name} samples"))  # fmt: skip
        self.threshold = ax1.axhline(LOG2, color=COLORS["neutral"], linewidth=1.5, label="threshold (title)")
        ax1.axhline(LOG2, color=COLORS["boundary"], linestyle=":", label="log 2")
        ax1.set_yscale("log")
        positive = _finite(losses[losses > 0])
        low = min(float(positive.min()) if positive.numel() else 1e-3, 0.01)
        high = max(float(positive.max()) if positive.numel() else 1.0, 3.0)
        ax1.set_ylim(low / 2, high * 2)
        ax1.set_xticks([0, 1], ["clean (ỹ = y)", "noisy (ỹ = −y)"])
        ax1.set_xlim(-0.5, 1.5)
        ax1.set_xlabel("training samples, clean S_t and noisy S_f")
        ax1.set_ylabel("per-sample loss ℓ_i (log scale)")
        self.legend1 = ax1.legend(loc="upper right", fontsize=8)

        keep = self.keep = slice(1, None) if len(hist.t) > 1 else slice(0, None)
        tt = hist.t[keep].to(torch.float64).clamp(min=1).numpy()
        self.precision = ax2.plot(tt, tt * 0, color=COLORS["clean"], linewidth=2, label="precision")[0]
        self.recall = ax2.plot(tt, tt * 0, color=COLORS["signal"], linestyle="--", linewidth=2, label="recall")[0]
        self.now = ax2.axvline(1, color=COLORS["neutral"], linewidth=1, label="step t of the left panel")
        ax2.set_xscale("log")
        ax2.set_xlim(0.8, float(hist.t[-1]) * 1.25)
        ax2.set_ylim(-0.03, 1.03)
        ax2.set_xlabel("iteration t (log scale)")
        ax2.set_ylabel("precision / recall of the selection")
        self.legend2 = ax2.legend(loc="lower left", fontsize=8)
        self.dynamic = [
            *(p for _, p in self.points.values()),
            self.threshold,
            ax1.title,
            self.precision,
            self.recall,
            self.now,
            ax2.title,
        ]
        self.overlays = [self.legend1, self.legend2]

    def show(self, threshold: float = LOG2, t: int = 10) -> str:
        threshold = check_positive("threshold", threshold)
        hist, data, losses = self.hist, self.data, self.losses
        t = check_real("t", t, low=0.0, high=float(hist.t[-1]))
        k = int((hist.t.to(torch.float64) - t).abs().argmin())
        step = int(hist.t[k])
        selected = losses < threshold
        precision, recall = precision_recall(selected, data.clean)
        ax1, ax2 = self.axes

        for mask, points in self.points.values():
            offsets = points.get_offsets()
            offsets[:, 1] = losses[k, mask].numpy()
            points.set_offsets(offsets)
        self.threshold.set_ydata([threshold, threshold])
        ax1.set_title(f"losses at t = {step}, threshold {threshold:.3g}")
        self.precision.set_ydata(precision[self.keep].numpy())
        self.recall.set_ydata(recall[self.keep].numpy())
        self.now.set_xdata([max(step, 1), max(step, 1)])
        ax2.set_title(f"keep ℓ_i < {threshold:.3g}")

        n_sel = int(selected[k].sum())
        lines = [f"At t = {step}: {n_sel} of {data.n} samples have ℓ_i < {threshold:.4g} and are kept."]
        if n_sel == 0:
            lines.append("Nothing is selected at this threshold, so precision is undefined: raise the threshold.")
        else:
            lines.append(
                f"precision {float(precision[k]):.3f} (share of kept samples that are clean), "
                f"recall {float(recall[k]):.3f} (share of clean samples kept)."
            )
        separated = bool(perfect_separation(losses[k], data.clean))
        lines.append(
            "log 2 separates clean from noisy samples perfectly at this step (every clean ℓ_i < log 2 < every noisy ℓ_i)."
            if separated
            else "log 2 does not separate clean from noisy samples perfectly at this step."
        )
        self.alt = (
            f"Selection explorer at threshold {threshold:.3g} and step {step}. Left: per-sample losses of clean and "
            f"noisy samples on a log scale with the threshold line; {n_sel} of {data.n} are below it. Right: "
            "precision and recall of the selection over time on a log time axis, with a vertical line at the step."
        )
        return "\n".join(lines)


def selection_figure(
    threshold: float = LOG2,
    t: int = 10,
    *,
    tau: float = 0.2,
    n_snr2: float = 16.0,
    eta: float = 0.5,
    m: int = 20,
    n: int = SMALL["n"],
    d: int = SMALL["d"],
    steps: int = SMALL["steps"],
    seed: int = SMALL["seed"],
) -> tuple[Figure | None, str]:
    """Small-loss selection "keep sample i when ℓ_i < threshold" on the run of :func:`race_figure`.

    Left: every per-sample loss ℓ_i = ℓ(ỹ_i f(W^{(t)}, x_i)) at the recorded step nearest to ``t``, clean and
    noisy apart, with the threshold (black) and log 2 (grey).  Right: precision (the fraction of selected
    samples that are clean) and recall (the fraction of clean samples selected) at every recorded step.
    With threshold = log 2 the rule keeps exactly the samples with ỹ_i f > 0 (Proposition 4.3).

    Returns ``(figure, summary)``, or ``(None, message)`` for invalid parameters.
    """
    try:
        view = _SelectionView({"tau": tau, "n_snr2": n_snr2, "eta": eta, "m": m, "n": n, "d": d, "steps": steps,
                               "seed": seed})  # fmt: skip
        summary = view.show(threshold, t)
    except _ERRORS as err:
        return None, _message(err)
    return view.figure, summary


# ----------------------------------------------------------------------------------------------------------
# Drawing only what changed
# ----------------------------------------------------------------------------------------------------------


def _encode_png(canvas: Any) -> bytes:
    """The canvas's current pixels as PNG (opaque RGB, fast compression: the image is shown, not archived)."""
    from PIL import Image

    w, h = canvas.get_width_height(physical=True)
    img = Image.frombuffer("RGBA", (w, h), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class _Blitter:
    """Renders a :class:`_View`'s figure to PNG, drawing the static part only when the axes' limits change."""

    def __init__(self, view: _View) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        self.view = view
        self.figure = view.figure
        self.figure.set_dpi(_DPI)
        self.canvas = FigureCanvasAgg(self.figure)
        self.frame: Hashable = None
        self.background: Any = None
        self.overlays: list[Any] = []
        self.full_draws = 0

    def _frame(self) -> Hashable:
        return tuple((ax.get_xlim(), ax.get_ylim(), ax.get_xscale(), ax.get_yscale()) for ax in self.figure.axes)

    def png(self) -> bytes:
        frame = self._frame()
        if frame != self.frame:
            if self.frame is None:  # lay the figure out once, for the widest tick labels, then freeze it
                axes = self.figure.axes
                saved = {i: axes[i].get_ylim() for i in self.view.layout_ylim}
                for i, lim in self.view.layout_ylim.items():
                    axes[i].set_ylim(*lim)
                self.canvas.draw()
                self.figure.set_layout_engine("none")
                for i, lim in saved.items():
                    axes[i].set_ylim(*lim)
                frame = self._frame()
                for artist in self.view.dynamic:
                    artist.set_animated(True)
            self.canvas.draw()  # everything but the animated (dynamic) artists
            if self.frame is None:  # the legends never change: keep their pixels, never draw them again
                renderer = self.canvas.get_renderer()
                self.overlays = [self.canvas.copy_from_bbox(a.get_window_extent(renderer)) for a in self.view.overlays]
                for artist in self.view.overlays:
                    artist.set_animated(True)
                self.canvas.draw()
            self.background = self.canvas.copy_from_bbox(self.figure.bbox)
            self.frame = frame
            self.full_draws += 1
        else:
            self.canvas.restore_region(self.background)
        for artist in self.view.dynamic:
            if artist.get_visible():
                self.figure.draw_artist(artist)
        for overlay in self.overlays:
            self.canvas.restore_region(overlay)
        return _encode_png(self.canvas)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------------
# Widgets
# ----------------------------------------------------------------------------------------------------------


def _grid_neighbours(control: Any, value: float, reach: int = 1) -> list[float]:
    """The slider positions 1..``reach`` steps below and above ``value``, nearest first, below before above (a
    slider moves on the grid min + k·step, so from a value off the grid, such as η = 0.5 on a log slider, the
    next positions are the grid points)."""
    import ipywidgets as w

    log = isinstance(control, w.FloatLogSlider)
    x = math.log(value, control.base) if log else float(value)
    k = (x - control.min) / control.step
    out = []
    for r in range(reach):
        for j in (math.ceil(k - 1e-6) - 1 - r, math.floor(k + 1e-6) + 1 + r):
            y = control.min + j * control.step
            if control.min - 1e-9 <= y <= control.max + 1e-9:
                y = round(y, 10)
                out.append(control.base**y if log else int(round(y)) if isinstance(control, w.IntSlider) else y)
    return out


class _Prefetcher:
    """A background thread that calls ``warm(**settings)`` for settings a reader may ask for next; a new list
    replaces the pending one (the reader has moved on).  The thread ends when idle for 30 s, and at exit."""

    def __init__(self, warm: Callable[..., None]) -> None:
        self.warm = warm
        self.pending: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.busy = False
        self.stopped = False
        self.thread: threading.Thread | None = None
        _PREFETCHERS.add(self)

    def submit(self, settings: list[dict[str, Any]]) -> None:
        with self.cond:
            if self.stopped:
                return
            self.pending = list(settings)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="lnfl-explorer-prefetch", daemon=True)
                self.thread.start()
            self.cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self.cond:
                self.busy = False
                while not self.pending and not self.stopped:
                    self.cond.notify_all()
                    if not self.cond.wait(timeout=30.0) and not self.pending:
                        self.thread = None
                        return
                if self.stopped:
                    self.cond.notify_all()
                    return
                settings = self.pending.pop(0)
                self.busy = True
            try:
                self.warm(**settings)
            except _ERRORS:
                pass  # the reader gets the message if they go there

    def wait(self, timeout: float = 60.0) -> None:
        """Block until nothing is pending (the benchmark's reader pauses between moves)."""
        with self.cond:
            self.cond.wait_for(lambda: not self.pending and not self.busy, timeout=timeout)

    def stop(self) -> None:
        """Drop the pending work and let the thread end (it finishes the run in progress)."""
        with self.cond:
            self.stopped = True
            self.pending = []
            self.cond.notify_all()
            thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10.0)


_PREFETCHERS: weakref.WeakSet[_Prefetcher] = weakref.WeakSet()


@atexit.register
def _stop_prefetchers() -> None:
    """Stop background runs before the interpreter (and torch's thread pool) shuts down."""
    for p in list(_PREFETCHERS):
        p.stop()


@dataclass
class Explorer:
    """A callback with its sliders: moving a slider calls ``callback(**values())`` and shows the result.

    ``last`` holds the latest ``(figure, summary)`` the explorer shows (the figure is ``None`` when the settings
    gave a message instead).  Displaying an Explorer displays its widget.

    With a ``view`` (the explorers of this module) the figure is kept and only what changed is redrawn, PNGs are
    cached by settings (``cache`` entries), and, with ``prefetch``, the view's runs one slider step away are
    computed in the background after each move.  Without one, every move draws ``callback``'s new figure.
    """

    callback: Callable[..., tuple[Figure | None, str]]
    controls: dict[str, Any]
    view: _View | None = None
    prefetch: bool = True
    cache: int = 64
    widget: Any = field(init=False)
    last: tuple[Figure | None, str] = field(init=False)
    png: bytes = field(init=False, default=b"")

    def __post_init__(self) -> None:
        import ipywidgets as w

        self._summary = w.HTML()
        self._image = w.HTML(layout=w.Layout(max_width="100%"))
        self._blitter = _Blitter(self.view) if self.view is not None else None
        self._pngs: OrderedDict[tuple, tuple[bytes, str, str]] = OrderedDict()
        self._prefetcher = _Prefetcher(self.view.warm) if self.view is not None and _prefetch_ok(self.view) else None
        self._previous: dict[str, Any] | None = None
        for c in self.controls.values():
            c.observe(self.update, names="value")
        self.widget = w.VBox([w.HBox(list(self.controls.values()), layout=w.Layout(flex_flow="row wrap")),
                              self._summary, self._image])  # fmt: skip
        self.update()

    def values(self) -> dict[str, Any]:
        """The current slider values, as keyword arguments of the callback."""
        return {name: c.value for name, c in self.controls.items()}

    def _render(self, values: dict[str, Any]) -> tuple[Figure | None, str, bytes, str]:
        """(figure, summary, png, alt) for these settings."""
        if self.view is None:
            fig, summary = self.callback(**values)
            return fig, summary, (_png(fig) if fig is not None else b""), summary.splitlines()[0] if summary else ""
        key = tuple(_key(v) if isinstance(v, float) else v for v in values.values())
        if key in self._pngs:
            self._pngs.move_to_end(key)
            png, summary, alt = self._pngs[key]
            return self.view.figure, summary, png, alt
        try:
            summary = self.view.show(**values)
        except _ERRORS as err:
            return None, _message(err), b"", ""
        png = self._blitter.png()  # type: ignore[union-attr]
        self._pngs[key] = (png, summary, self.view.alt)
        while len(self._pngs) > self.cache:
            self._pngs.popitem(last=False)
        return self.view.figure, summary, png, self.view.alt

    def update(self, change: object = None) -> None:
        """Call the callback with the current values and show its figure and summary."""
        values = self.values()
        with _one_thread():
            fig, summary, png, alt = self._render(values)
        self.last = (fig, summary)
        self.png = png
        text = "<br>".join(html.escape(line) for line in summary.splitlines())
        self._summary.value = f"<div style='font-size:0.9em'>{text}</div>"
        self._image.value = (
            f"<img src='data:image/png;base64,{base64.b64encode(png).decode()}' alt='{html.escape(alt, quote=True)}' "
            "style='max-width:100%; height:auto'>"
            if png
            else ""
        )
        if self.prefetch and self._prefetcher is not None:  # the runs one step away, while the reader looks
            self._prefetcher.submit(self._next_settings(values))
        self._previous = values

    def _next_settings(self, values: dict[str, Any]) -> list[dict[str, Any]]:
        """Settings a reader may ask for next: along the slider just moved, the next three steps in the direction
        moved and one step back; then one step either way along every other slider."""
        prev = self._previous or values
        moved = [k for k in values if values[k] != prev.get(k)]
        out = []
        for name in moved + [k for k in self.controls if k not in moved]:
            if name in moved:
                up = values[name] > prev[name]
                near = _grid_neighbours(self.controls[name], values[name], reach=3)
                ahead = [v for v in near if (v > values[name]) == up]
                back = [v for v in near if (v > values[name]) != up][:1]
                near = ahead[:1] + back + ahead[1:]
            else:
                near = _grid_neighbours(self.controls[name], values[name])
            out += [{**values, name: v} for v in near]
        return out

    def wait_prefetch(self, timeout: float = 60.0) -> None:
        """Block until the background runs after the last move are done (for tests and the benchmark)."""
        if self._prefetcher is not None:
            self._prefetcher.wait(timeout)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _prefetch_ok(view: _View) -> bool:
    """Whether a view has background work worth doing (a view that overrides :meth:`_View.warm`)."""
    return type(view).warm is not _View.warm


def _style(tooltip: str) -> dict[str, Any]:
    import ipywidgets as w

    return {
        "style": {"description_width": "initial"},
        "continuous_update": False,
        "layout": w.Layout(width="300px"),
        "tooltip": tooltip,
    }


def data_model_explorer(prefetch: bool = True) -> Explorer:
    """Sliders for τ₊, τ₋, n·SNR² and d around :func:`data_model_figure`, starting at :data:`DATA_MODEL_DEFAULTS`."""
    import ipywidgets as w

    v = DATA_MODEL_DEFAULTS
    controls = {
        "tau_plus": w.FloatSlider(value=v["tau_plus"], min=0.0, max=0.45, step=0.05, description="τ₊",
                                  **_style("flip rate τ₊ of true class +1")),
        "tau_minus": w.FloatSlider(value=v["tau_minus"], min=0.0, max=0.45, step=0.05, description="τ₋",
                                   **_style("flip rate τ₋ of true class −1")),
        "n_snr2": w.FloatLogSlider(value=v["n_snr2"], base=2, min=-3, max=7, step=0.5, description="n·SNR²",
                                   **_style("signal-to-noise constant n·SNR²")),
        "d": w.IntSlider(value=v["d"], min=20, max=2000, step=20, description="d",
                         **_style("dimension d of each patch")),
    }  # fmt: skip
    view = _DataModelView(SMALL["n"], SMALL["seed"])
    return Explorer(data_model_figure, controls, view=view, prefetch=prefetch)


def race_explorer(prefetch: bool = True) -> Explorer:
    """Sliders for τ, n·SNR², η and m around :func:`race_figure`, starting at :data:`RACE_DEFAULTS`.

    ``prefetch=False`` trains nothing in the background (each new setting is trained when the slider asks)."""
    import ipywidgets as w

    v = RACE_DEFAULTS
    controls = {
        "tau": w.FloatSlider(value=v["tau"], min=0.0, max=0.45, step=0.05, description="τ = τ₊ = τ₋",
                             **_style("flip rate τ of both classes")),
        "n_snr2": w.FloatLogSlider(value=v["n_snr2"], base=2, min=-3, max=7, step=0.5, description="n·SNR²",
                                   **_style("signal-to-noise constant n·SNR²")),
        "eta": w.FloatLogSlider(value=v["eta"], base=10, min=-2, max=1, step=0.1, description="η",
                                **_style("learning rate η")),
        "m": w.IntSlider(value=v["m"], min=1, max=50, step=1, description="m (filters per class)",
                         **_style("number of filters m per class")),
    }  # fmt: skip
    view = _RaceView(SMALL["n"], SMALL["d"], SMALL["steps"], SMALL["seed"])
    return Explorer(race_figure, controls, view=view, prefetch=prefetch)


def selection_explorer(prefetch: bool = True) -> Explorer:
    """Threshold and time sliders around :func:`selection_figure`, starting at :data:`SELECTION_DEFAULTS`."""
    import ipywidgets as w

    v = SELECTION_DEFAULTS
    controls = {
        "threshold": w.FloatSlider(value=v["threshold"], min=0.01, max=3.0, step=0.01, readout_format=".3f",
                                   description="threshold", **_style("loss threshold of the selection")),
        "t": w.IntSlider(value=v["t"], min=0, max=SMALL["steps"], step=1, description="iteration t",
                         **_style("training step t")),
    }  # fmt: skip
    run = {**RACE_DEFAULTS, "n": SMALL["n"], "d": SMALL["d"], "steps": SMALL["steps"], "seed": SMALL["seed"]}
    return Explorer(selection_figure, controls, view=_SelectionView(run), prefetch=prefetch)
