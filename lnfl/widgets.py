"""Interactive explorers (ipywidgets) for the data model, the γ–ρ̄ race and log 2 sample selection.

Each explorer is a plain callback that returns ``(figure, summary)`` plus a thin widget around it:

- :func:`data_model_figure` (τ₊, τ₋, n·SNR², d): label flips per class, signal patch ‖μ‖ against the noise
  patches ‖ξ_i‖, and the Stage I growth ratio Δγ/Δρ̄ ≈ (1 − 2τ)·n·SNR²/2 (Chapters 2 and 4);
- :func:`race_figure` (τ, n·SNR², η, m): signal learning γ against memorisation ρ̄ of clean and noisy samples
  over time, and what the network fits (Theorems 4.1 and 4.2);
- :func:`selection_figure` (threshold, t): per-sample losses ℓ_i at step t, and precision/recall over time of
  the selection ℓ_i < threshold; at threshold log 2 and t near T₁ it is perfect (Proposition 4.3).

The callbacks never raise on a bad combination of parameters: they return ``(None, message)`` where the message
says what went wrong and what to change (a ``ValueError``/``TypeError`` from ``lnfl``'s argument checks, or a
:class:`~lnfl.training.TrainingDivergedError`).  Runs are small (n = 100, d = 200, 600 steps) and cached, so a
slider responds in well under a second.  The widgets (:func:`data_model_explorer`, :func:`race_explorer`,
:func:`selection_explorer`) need ``ipywidgets``; the callbacks need only matplotlib.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch
from matplotlib.figure import Figure

from ._validate import check_int, check_positive, check_real, check_seed, check_tau
from .data import Dataset, SignalNoiseModel
from .plotting import COLORS, mark_stage_one
from .selection import LOG2, perfect_separation, precision_recall
from .stages import own_memorisation, stage_one_window, stitch
from .theory import growth_ratio
from .training import History, TrainingDivergedError, setup

__all__ = [
    "DATA_MODEL_DEFAULTS",
    "RACE_DEFAULTS",
    "SELECTION_DEFAULTS",
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

#: The fixed, small problem every explorer runs on (fast enough to redraw within about a second).
SMALL: dict[str, int] = {"n": 100, "d": 200, "steps": 600, "seed": 0, "n_test": 500, "early_steps": 20}
#: Slider defaults of :func:`data_model_explorer` (the state the static figure shows).
DATA_MODEL_DEFAULTS: dict[str, float | int] = {"tau_plus": 0.2, "tau_minus": 0.2, "n_snr2": 16.0, "d": 200}
#: Slider defaults of :func:`race_explorer`.  η = 0.5 so that 600 steps reach the end of Stage II.
RACE_DEFAULTS: dict[str, float | int] = {"tau": 0.2, "n_snr2": 16.0, "eta": 0.5, "m": 20}
#: Slider defaults of :func:`selection_explorer`: the log 2 threshold, early in training.
SELECTION_DEFAULTS: dict[str, float | int] = {"threshold": LOG2, "t": 10}

_ERRORS = (ValueError, TypeError, TrainingDivergedError, FloatingPointError)


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


# ----------------------------------------------------------------------------------------------------------
# 1. The data model
# ----------------------------------------------------------------------------------------------------------


def data_model_figure(
    tau_plus: float = 0.2,
    tau_minus: float = 0.2,
    n_snr2: float = 16.0,
    d: int = 200,
    *,
    n: int = SMALL["n"],
    seed: int = SMALL["seed"],
) -> tuple[Figure | None, str]:
    """The data model of Chapter 2 for n samples: label flips at rates τ₊, τ₋, and signal against noise.

    Left: per true class y, how many labels were kept (clean, S_t) and flipped (noisy, S_f).  Right: the norms
    of the noise patches ‖ξ_i‖ ≈ σ_ξ√d next to the signal patch ‖μ‖ = σ_ξ√(n·SNR²·d/n).  The summary gives SNR,
    the counts, and the Stage I growth ratio (1 − 2τ)·n·SNR²/2 with τ = (τ₊ + τ₋)/2.

    Returns ``(figure, summary)``, or ``(None, message)`` when the parameters are invalid.
    """
    try:
        tau_plus = check_tau("tau_plus", tau_plus)
        tau_minus = check_tau("tau_minus", tau_minus)
        n_snr2 = check_positive("n_snr2", n_snr2)
        d = check_int("d", d)
        n = check_int("n", n)
        seed = check_seed("seed", seed)
        model = SignalNoiseModel.from_n_snr2(d=d, n=n, n_snr2=n_snr2, tau_plus=tau_plus, tau_minus=tau_minus)
        data = model.sample(n, seed=seed)
        ratio = growth_ratio(n_snr2, tau_plus=tau_plus, tau_minus=tau_minus)
    except _ERRORS as err:
        return None, _message(err)

    pos, neg = data.y > 0, data.y < 0
    counts = {
        "clean": [int((pos & data.clean).sum()), int((neg & data.clean).sum())],
        "noisy": [int((pos & data.noisy).sum()), int((neg & data.noisy).sum())],
    }
    xi_norm = data.xi.norm(dim=1)

    fig = _Figure(figsize=(9.0, 3.6), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    x = [0, 1]
    ax1.bar(x, counts["clean"], color=COLORS["clean"], label="clean: ỹ = y")
    ax1.bar(x, counts["noisy"], bottom=counts["clean"], color=COLORS["noisy"], label="flipped: ỹ = −y")
    ax1.set_xticks(x, ["y = +1", "y = −1"])
    ax1.set_xlabel("true label y")
    ax1.set_ylabel("number of training samples")
    ax1.set_title(f"label flips, τ₊ = {tau_plus:.2f}, τ₋ = {tau_minus:.2f}")
    ax1.legend(loc="lower center")

    ax2.hist(xi_norm.numpy(), bins=20, color=COLORS["other"], label="noise patches ‖ξ_i‖")
    ax2.axvline(model.mu_norm, color=COLORS["signal"], linewidth=2.5, label="signal patch ‖μ‖")
    ax2.set_xlim(left=0)
    ax2.set_xlabel("patch norm")
    ax2.set_ylabel("number of samples")
    ax2.set_title(f"signal vs noise, n·SNR² = {n_snr2:.3g}, d = {d}")
    ax2.legend(loc="upper left")

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
        lines.append(f"Note: d = {d} < n + 1 = {n + 1}, so the signal–noise decomposition is not unique (n ≪ d fails).")
    return fig, "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# 2. The race between γ and ρ̄
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    data: Dataset
    hist: History


@lru_cache(maxsize=16)  # a History with m = 50 holds ~10 MB of ρ: keep the cache small
def _cached_run(tau: float, n_snr2: float, eta: float, m: int, n: int, d: int, steps: int, seed: int) -> _Run:
    with _one_thread():
        s = setup(seed=seed, n_test=SMALL["n_test"], d=d, n=n, m=m, n_snr2=n_snr2, tau_plus=tau, tau_minus=tau, eta=eta)
        early = s.train(steps=min(SMALL["early_steps"], steps), record_every=1)
        late = s.train(steps=steps, record_every=5)
        return _Run(s.data, stitch(early, late))


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
    args = (
        check_tau("tau", tau),
        check_positive("n_snr2", n_snr2),
        check_positive("eta", eta),
        check_int("m", m),
        check_int("n", n),
        check_int("d", d),
        check_int("steps", steps),
        check_seed("seed", seed),
    )
    run = _cached_run(*args)
    return run.data, run.hist


def _log_time(hist: History) -> tuple[torch.Tensor, slice]:
    """Steps t ≥ 1 for a logarithmic time axis, and the slice selecting them."""
    keep = slice(1, None) if len(hist.t) > 1 else slice(0, None)
    return hist.t[keep].to(torch.float64).clamp(min=1), keep


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
    """Signal learning γ against memorisation ρ̄ over time (Chapters 4–6).

    Left: mean γ_{j,r} over all filters, and the mean own-class memorisation ρ̄_{ỹ_i,r,i} of clean and of noisy
    samples.  Right: fraction of clean samples fitted, of noisy samples fitted to their wrong label ỹ
    (memorised), of noisy samples classified by their true label y, and clean test accuracy.  The shaded band is
    the Stage I window (:func:`lnfl.stages.stage_one_window`) and the dashed grey line its end, T₁.

    Returns ``(figure, summary)``, or ``(None, message)`` for invalid parameters or a diverging run.
    """
    try:
        data, hist = race_run(tau, n_snr2, eta, m, n=n, d=d, steps=steps, seed=seed)
        ratio = growth_ratio(n_snr2, tau)
    except _ERRORS as err:
        return None, _message(err)

    t, keep = _log_time(hist)
    gamma = hist.gamma.mean(dim=(1, 2))
    rho_own = own_memorisation(hist, data)  # (T, n)
    window = stage_one_window(hist, data)

    fig = _Figure(figsize=(9.5, 3.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(t, gamma[keep], color=COLORS["signal"], linewidth=2.5, label="γ (signal learning)")
    if bool(data.clean.any()):
        ax1.plot(t, rho_own[keep][:, data.clean].mean(dim=1), color=COLORS["clean"], label="ρ̄ of clean samples")
    if bool(data.noisy.any()):
        ax1.plot(t, rho_own[keep][:, data.noisy].mean(dim=1), color=COLORS["noisy"], label="ρ̄ of noisy samples")
    ax1.set_xscale("log")
    ax1.set_xlabel("iteration t (log scale)")
    ax1.set_ylabel("coefficient (mean over filters)")
    ax1.set_title("the race: signal γ vs memorisation ρ̄")

    ax2.plot(t, hist.train_acc_clean[keep], color=COLORS["clean"], label="clean samples fitted")
    ax2.plot(t, hist.train_acc_noisy[keep], color=COLORS["noisy"], label="noisy samples memorised (ỹ f > 0)")
    ax2.plot(t, hist.noisy_true_acc[keep], color=COLORS["true"], linestyle=":", label="noisy samples: y f > 0")
    ax2.plot(t, hist.test_acc[keep], color=COLORS["test"], linewidth=2, label="test accuracy (true labels)")
    ax2.set_xscale("log")
    ax2.set_ylim(-0.03, 1.03)
    ax2.set_xlabel("iteration t (log scale)")
    ax2.set_ylabel("fraction")
    ax2.set_title(f"τ = {tau:.2f}, n·SNR² = {n_snr2:.3g}, η = {eta:.3g}, m = {m}")
    if window is not None:
        for ax in (ax1, ax2):
            mark_stage_one(ax, max(window[0], 1), max(window[1], 1))
    ax1.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="lower left", fontsize=8)

    best = int(torch.nan_to_num(hist.test_acc, nan=-1.0).argmax())
    lines = [f"Predicted Stage I growth ratio (1 − 2τ)·n·SNR²/2 = {ratio:.3g}."]
    if window is None:
        lines.append(
            f"The Stage I state (every clean sample fitted, every noisy sample classified by its true label) never "
            f"holds within {steps} steps: no Stage I (try a larger n·SNR² or a smaller τ)."
        )
    else:
        k = hist.at(window[1])
        lines.append(
            f"Stage I holds from t = {window[0]} to T₁ = {window[1]}; at T₁ the test accuracy is "
            f"{float(hist.test_acc[k]):.3f}."
        )
    memo = f"{float(hist.train_acc_noisy[-1]):.0%} of noisy samples memorised, " if bool(data.noisy.any()) else ""
    lines.append(
        f"At t = {int(hist.t[-1])}: {memo}"
        f"test accuracy {float(hist.test_acc[-1]):.3f} (best {float(hist.test_acc[best]):.3f} at t = {int(hist.t[best])})."
    )
    if not bool(data.noisy.any()):
        lines.append("No label was flipped (τ = 0 or a lucky draw): there is nothing to memorise.")
    return fig, "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# 3. log 2 selection
# ----------------------------------------------------------------------------------------------------------


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
        threshold = check_positive("threshold", threshold)
        data, hist = race_run(tau, n_snr2, eta, m, n=n, d=d, steps=steps, seed=seed)
        t = check_real("t", t, low=0.0, high=float(hist.t[-1]))
    except _ERRORS as err:
        return None, _message(err)

    k = int((hist.t.to(torch.float64) - t).abs().argmin())
    step = int(hist.t[k])
    losses = hist.sample_loss  # (T, n)
    selected = losses < threshold
    precision, recall = precision_recall(selected, data.clean)
    clean, noisy = data.clean, data.noisy

    fig = _Figure(figsize=(9.5, 3.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    gen = torch.Generator().manual_seed(0)
    for x0, mask, name in ((0, clean, "clean"), (1, noisy, "noisy")):
        if bool(mask.any()):
            jitter = x0 + 0.25 * (torch.rand(int(mask.sum()), generator=gen, dtype=torch.float64) - 0.5)
            ax1.scatter(jitter, losses[k, mask], s=12, color=COLORS[name], alpha=0.8, label=f"{name} samples")
    ax1.axhline(threshold, color=COLORS["neutral"], linewidth=1.5, label=f"threshold = {threshold:.3g}")
    if not math.isclose(threshold, LOG2, rel_tol=1e-3):
        ax1.axhline(LOG2, color=COLORS["boundary"], linestyle=":", label="log 2")
    ax1.set_yscale("log")
    ax1.set_xticks([0, 1], ["clean (ỹ = y)", "noisy (ỹ = −y)"])
    ax1.set_xlim(-0.5, 1.5)
    ax1.set_xlabel("training samples, clean S_t and noisy S_f")
    ax1.set_ylabel("per-sample loss ℓ_i (log scale)")
    ax1.set_title(f"losses at t = {step}")
    ax1.legend(loc="best", fontsize=8)

    tt, keep = _log_time(hist)
    ax2.plot(tt, precision[keep], color=COLORS["clean"], linewidth=2, label="precision")
    ax2.plot(tt, recall[keep], color=COLORS["signal"], linestyle="--", linewidth=2, label="recall")
    ax2.axvline(max(step, 1), color=COLORS["neutral"], linewidth=1, label=f"t = {step}")
    ax2.set_xscale("log")
    ax2.set_ylim(-0.03, 1.03)
    ax2.set_xlabel("iteration t (log scale)")
    ax2.set_ylabel("precision / recall of the selection")
    ax2.set_title(f"keep ℓ_i < {threshold:.3g}")
    ax2.legend(loc="lower left", fontsize=8)

    n_sel = int(selected[k].sum())
    lines = [f"At t = {step}: {n_sel} of {data.n} samples have ℓ_i < {threshold:.4g} and are kept."]
    if n_sel == 0:
        lines.append("Nothing is selected at this threshold, so precision is undefined: raise the threshold.")
    else:
        lines.append(
            f"precision {float(precision[k]):.3f} (share of kept samples that are clean), "
            f"recall {float(recall[k]):.3f} (share of clean samples kept)."
        )
    separated = bool(perfect_separation(losses[k], clean))
    lines.append(
        "log 2 separates clean from noisy samples perfectly at this step (every clean ℓ_i < log 2 < every noisy ℓ_i)."
        if separated
        else "log 2 does not separate clean from noisy samples perfectly at this step."
    )
    return fig, "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# Widgets
# ----------------------------------------------------------------------------------------------------------


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


@dataclass
class Explorer:
    """A callback with its sliders: moving a slider calls ``callback(**values())`` and shows the result.

    ``last`` holds the latest ``(figure, summary)`` the explorer shows (the figure is ``None`` when the settings
    gave a message instead).  Displaying an Explorer displays its widget.
    """

    callback: Callable[..., tuple[Figure | None, str]]
    controls: dict[str, Any]
    widget: Any = field(init=False)
    last: tuple[Figure | None, str] = field(init=False)

    def __post_init__(self) -> None:
        import ipywidgets as w

        self._summary = w.HTML()
        self._image = w.Image(format="png", layout=w.Layout(max_width="100%"))
        for c in self.controls.values():
            c.observe(self.update, names="value")
        self.widget = w.VBox([w.HBox(list(self.controls.values()), layout=w.Layout(flex_flow="row wrap")),
                              self._summary, self._image])  # fmt: skip
        self.update()

    def values(self) -> dict[str, Any]:
        """The current slider values, as keyword arguments of the callback."""
        return {name: c.value for name, c in self.controls.items()}

    def update(self, change: object = None) -> None:
        """Call the callback with the current values and show its figure and summary."""
        fig, summary = self.callback(**self.values())
        self.last = (fig, summary)
        text = "<br>".join(html.escape(line) for line in summary.splitlines())
        self._summary.value = f"<div style='font-size:0.9em'>{text}</div>"
        self._image.value = _png(fig) if fig is not None else b""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _style() -> dict[str, Any]:
    import ipywidgets as w

    return {"style": {"description_width": "initial"}, "continuous_update": False, "layout": w.Layout(width="300px")}


def data_model_explorer() -> Explorer:
    """Sliders for τ₊, τ₋, n·SNR² and d around :func:`data_model_figure`, starting at :data:`DATA_MODEL_DEFAULTS`."""
    import ipywidgets as w

    v, s = DATA_MODEL_DEFAULTS, _style()
    controls = {
        "tau_plus": w.FloatSlider(value=v["tau_plus"], min=0.0, max=0.45, step=0.05, description="τ₊", **s),
        "tau_minus": w.FloatSlider(value=v["tau_minus"], min=0.0, max=0.45, step=0.05, description="τ₋", **s),
        "n_snr2": w.FloatLogSlider(value=v["n_snr2"], base=2, min=-3, max=7, step=0.5, description="n·SNR²", **s),
        "d": w.IntSlider(value=v["d"], min=20, max=2000, step=20, description="d", **s),
    }
    return Explorer(data_model_figure, controls)


def race_explorer() -> Explorer:
    """Sliders for τ, n·SNR², η and m around :func:`race_figure`, starting at :data:`RACE_DEFAULTS`."""
    import ipywidgets as w

    v, s = RACE_DEFAULTS, _style()
    controls = {
        "tau": w.FloatSlider(value=v["tau"], min=0.0, max=0.45, step=0.05, description="τ = τ₊ = τ₋", **s),
        "n_snr2": w.FloatLogSlider(value=v["n_snr2"], base=2, min=-3, max=7, step=0.5, description="n·SNR²", **s),
        "eta": w.FloatLogSlider(value=v["eta"], base=10, min=-2, max=1, step=0.1, description="η", **s),
        "m": w.IntSlider(value=v["m"], min=1, max=50, step=1, description="m (filters per class)", **s),
    }
    return Explorer(race_figure, controls)


def selection_explorer() -> Explorer:
    """Threshold and time sliders around :func:`selection_figure`, starting at :data:`SELECTION_DEFAULTS`."""
    import ipywidgets as w

    v, s = SELECTION_DEFAULTS, _style()
    controls = {
        "threshold": w.FloatSlider(
            value=v["threshold"], min=0.01, max=3.0, step=0.01, readout_format=".3f", description="threshold", **s
        ),
        "t": w.IntSlider(value=v["t"], min=0, max=SMALL["steps"], step=1, description="iteration t", **s),
    }
    return Explorer(selection_figure, controls)
