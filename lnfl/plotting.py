"""One figure style for the whole book.

Colour-blind-safe Okabe–Ito palette; clean samples and noisy samples keep the same two colours in every
chapter; the Stage I/II boundary is always the same dashed grey line; backgrounds are opaque white so
figures stay readable in the theme's dark mode.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
from cycler import cycler

from ._validate import check_instance, check_int, check_positive, check_real, describe

__all__ = ["COLORS", "use_book_style", "mark_stage_boundary", "mark_stage_one", "new_figure"]

#: Okabe–Ito colours with the roles they play throughout the book.
COLORS: dict[str, str] = {
    "clean": "#0072B2",  # blue: clean samples, S_t
    "noisy": "#D55E00",  # vermillion: noisy (flipped) samples, S_f
    "signal": "#009E73",  # bluish green: γ, signal learning
    "test": "#CC79A7",  # reddish purple: test accuracy
    "true": "#E69F00",  # orange: noisy samples judged by their true label
    "other": "#56B4E9",  # sky blue
    "neutral": "#000000",  # black: totals, thresholds
    "boundary": "#7F7F7F",  # grey: the Stage I/II boundary
}

_CYCLE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def use_book_style() -> None:
    """Set matplotlib's rcParams to the book's style (call once, in a chapter's first cell)."""
    mpl.rcParams.update(
        {
            "figure.figsize": (7.0, 4.0),
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "figure.facecolor": "white",
            "axes.facecolor": "white",
            "savefig.facecolor": "white",
            "savefig.transparent": False,
            "axes.edgecolor": "#333333",
            "axes.labelcolor": "#111111",
            "text.color": "#111111",
            "xtick.color": "#333333",
            "ytick.color": "#333333",
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.prop_cycle": cycler(color=_CYCLE),
            "font.size": 11,
            "axes.titlesize": 12,
            "legend.frameon": True,
            "legend.framealpha": 0.9,
            "figure.constrained_layout.use": True,
        }
    )


def _check_ax(ax: object) -> None:
    hint = " (new_figure(ncols=2) returns an array: pass one of its axes)" if hasattr(ax, "shape") else ""
    check_instance("ax", ax, mpl.axes.Axes, f"a matplotlib Axes{hint}")


def _check_label(name: str, label: object) -> None:
    if label is not None and not isinstance(label, str):
        raise TypeError(f"{name} must be a string or None, got {describe(label)}")


def _step(name: str, value: object) -> float:
    """A finite step: a number, or a 0-d tensor or NumPy scalar such as ``hist.t[k]``."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    return check_real(name, value)


def mark_stage_boundary(ax: plt.Axes, t: float, label: str | None = "end of Stage I, $T_1$") -> None:
    """Draw the Stage I/II boundary T₁ at step ``t``: the book's dashed grey line."""
    _check_ax(ax)
    t = _step("t", t)
    _check_label("label", label)
    ax.axvline(t, color=COLORS["boundary"], linestyle="--", linewidth=1.5, label=label)


def mark_stage_one(
    ax: plt.Axes,
    start: float,
    end: float,
    label: str | None = "Stage I window",
    end_label: str | None = "end of Stage I, $T_1$",
) -> None:
    """Shade the Stage I window [start, end] (:func:`lnfl.stages.stage_one_window`) in light grey and draw its
    end, T₁, as the book's dashed grey Stage I/II boundary line.

    For several seeds pass a summary of their windows (e.g. the medians) and say so in the caption.
    """
    _check_ax(ax)
    start, end = _step("start", start), _step("end", end)
    _check_label("label", label)
    _check_label("end_label", end_label)
    if not start <= end:
        raise ValueError(f"the window must have start <= end, got start={start}, end={end}")
    ax.axvspan(start, end, color=COLORS["boundary"], alpha=0.15, linewidth=0, label=label)
    mark_stage_boundary(ax, end, label=end_label)


def new_figure(ncols: int = 1, nrows: int = 1, width: float | None = None, height: float | None = None, **kw):
    """``plt.subplots`` with the book's default size scaled to the grid."""
    ncols, nrows = check_int("ncols", ncols), check_int("nrows", nrows)
    width = None if width is None else check_positive("width", width)
    height = None if height is None else check_positive("height", height)
    w = width if width is not None else 7.0 if ncols == 1 else 4.2 * ncols
    h = height if height is not None else 4.0 if nrows == 1 else 3.3 * nrows
    return plt.subplots(nrows, ncols, figsize=(w, h), **kw)
