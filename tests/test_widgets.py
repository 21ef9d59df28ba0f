"""The explorers of lnfl.widgets: callbacks driven directly, over every slider's extremes, and the widgets."""

import itertools
import math
import time

import pytest
import torch
from matplotlib.figure import Figure

import lnfl.widgets as wd
from lnfl.selection import LOG2, log2_selection, perfect_separation, precision_recall
from lnfl.stages import stage_one_window
from lnfl.theory import growth_ratio
from lnfl.training import TrainingDivergedError

ipywidgets = pytest.importorskip("ipywidgets")

EXPLORERS = {
    "data_model": (wd.data_model_explorer, wd.data_model_figure, wd.DATA_MODEL_DEFAULTS),
    "race": (wd.race_explorer, wd.race_figure, wd.RACE_DEFAULTS),
    "selection": (wd.selection_explorer, wd.selection_figure, wd.SELECTION_DEFAULTS),
}


def _slider_range(control):
    """(min, max) of a slider in the units the callback receives."""
    if isinstance(control, ipywidgets.FloatLogSlider):
        return control.base**control.min, control.base**control.max
    return control.min, control.max


def _assert_labelled(fig):
    assert isinstance(fig, Figure)
    axes = fig.get_axes()
    assert len(axes) == 2, f"expected two panels, got {len(axes)}"
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel(), f"unlabelled axis in panel {ax.get_title()!r}"
        assert ax.get_legend() is not None, f"no legend in panel {ax.get_title()!r}"


@pytest.fixture(scope="module")
def explorers():
    return {name: make() for name, (make, _, _) in EXPLORERS.items()}


@pytest.mark.parametrize("name", EXPLORERS)
def test_explorer_starts_at_the_callback_defaults(explorers, name):
    _, callback, defaults = EXPLORERS[name]
    ex = explorers[name]
    assert ex.values() == defaults, f"{name}: sliders start at {ex.values()}, defaults are {defaults}"
    fig, summary = callback(**defaults)
    _assert_labelled(fig)
    assert ex.last[1] == summary, "the explorer shows something else than the callback at its defaults"
    assert ex.last[0] is not None and len(ex._image.value) > 1000, "no figure shown"


@pytest.mark.parametrize("name", EXPLORERS)
def test_every_slider_extreme_gives_a_figure_or_message(explorers, name):
    _, callback, _ = EXPLORERS[name]
    controls = explorers[name].controls
    ranges = {k: _slider_range(c) for k, c in controls.items()}
    for combo in itertools.product(*ranges.values()):
        kwargs = dict(zip(ranges, combo, strict=True))
        fig, summary = callback(**kwargs)  # must not raise
        assert summary.strip(), f"empty summary for {kwargs}"
        # every value a slider can take is valid, so each extreme must draw a figure
        assert fig is not None, f"{name} at {kwargs} gave only a message: {summary}"
        _assert_labelled(fig)
        for ax in fig.get_axes():
            for line in ax.get_lines():
                y = torch.as_tensor(line.get_ydata(), dtype=torch.float64)
                assert not bool(torch.isinf(y).any()), f"infinite values plotted for {kwargs}"


@pytest.mark.parametrize(
    ("callback", "kwargs", "word"),
    [
        (wd.data_model_figure, {"tau_plus": 0.5}, "tau_plus"),
        (wd.data_model_figure, {"tau_minus": -0.1}, "tau_minus"),
        (wd.data_model_figure, {"n_snr2": 0.0}, "n_snr2"),
        (wd.data_model_figure, {"d": 0}, "d must"),
        (wd.race_figure, {"m": 0}, "m must"),
        (wd.race_figure, {"m": 2.5}, "m must"),
        (wd.race_figure, {"eta": -0.1}, "eta"),
        (wd.race_figure, {"tau": 0.5}, "tau"),
        (wd.race_figure, {"n_snr2": float("nan")}, "n_snr2"),
        (wd.selection_figure, {"threshold": 0.0}, "threshold"),
        (wd.selection_figure, {"t": 601}, "t must"),
        (wd.selection_figure, {"t": -1}, "t must"),
        (wd.selection_figure, {"m": 0}, "m must"),
    ],
)
def test_invalid_values_give_a_message_not_a_traceback(callback, kwargs, word):
    fig, message = callback(**kwargs)
    assert fig is None
    assert message.startswith("⚠") and word in message, message


def test_diverged_run_gives_a_message(monkeypatch):
    def diverge(*args):
        raise TrainingDivergedError("training diverged at step 7 with eta=9; try a smaller step size, e.g. eta=0.9")

    monkeypatch.setattr(wd, "_cached_run", diverge)
    for callback in (wd.race_figure, wd.selection_figure):
        fig, message = callback()
        assert fig is None and "diverged at step 7" in message and "smaller step size" in message


def test_data_model_summary_matches_the_model():
    fig, summary = wd.data_model_figure(tau_plus=0.3, tau_minus=0.1, n_snr2=4.0, d=400)
    ratio = growth_ratio(4.0, tau_plus=0.3, tau_minus=0.1)
    assert f"= {ratio:.3g}" in summary and "above 1" in summary
    bars = fig.get_axes()[0].patches
    assert sum(p.get_height() for p in bars) == wd.SMALL["n"], "the bars must count every sample once"
    _, weak = wd.data_model_figure(tau_plus=0.4, tau_minus=0.4, n_snr2=2.0)
    assert "at most 1" in weak, "growth ratio (1 − 0.8)·2/2 = 0.2 must be reported as below 1"
    _, small_d = wd.data_model_figure(d=40)
    assert "not unique" in small_d, "d < n + 1 must be flagged"


def test_race_summary_reports_the_run():
    data, hist = wd.race_run(**wd.RACE_DEFAULTS)
    fig, summary = wd.race_figure(**wd.RACE_DEFAULTS)
    window = stage_one_window(hist, data)
    assert window is not None and f"Stage I holds from t = {window[0]} to T₁ = {window[1]};" in summary
    assert f"test accuracy {float(hist.test_acc[-1]):.3f}" in summary
    # the stitched recording is dense early and reaches the last step
    assert int(hist.t[-1]) == wd.SMALL["steps"] and torch.equal(hist.t[:21], torch.arange(21))
    gamma_line = fig.get_axes()[0].get_lines()[0]
    assert torch.allclose(
        torch.as_tensor(gamma_line.get_ydata(), dtype=torch.float64), hist.gamma.mean(dim=(1, 2))[1:]
    ), "the plotted γ must be the run's mean γ"
    _, clean = wd.race_figure(tau=0.0)
    assert "nothing to memorise" in clean and "nan" not in clean


def test_selection_summary_matches_lnfl_selection():
    data, hist = wd.race_run(**wd.RACE_DEFAULTS)
    for threshold, t in [(LOG2, 10), (LOG2, 600), (0.05, 300), (2.5, 3)]:
        _, summary = wd.selection_figure(threshold=threshold, t=t)
        k = hist.at(t)
        sel = hist.sample_loss[k] < threshold
        p, r = precision_recall(sel, data.clean)
        assert f"{int(sel.sum())} of {data.n} samples" in summary
        assert f"precision {float(p):.3f}" in summary and f"recall {float(r):.3f}" in summary
        separated = bool(perfect_separation(hist.sample_loss[k], data.clean))
        assert ("does not separate" not in summary) == separated
    # at log 2 the rule is exactly lnfl.selection.log2_selection
    k = hist.at(10)
    assert torch.equal(hist.sample_loss[k] < LOG2, log2_selection(hist.sample_loss[k]))


def test_selection_snaps_to_a_recorded_step_and_handles_empty_selection():
    _, summary = wd.selection_figure(t=302)  # recorded every 5th step after 20: 300 is nearest
    assert summary.startswith("At t = 300:")
    _, summary = wd.selection_figure(threshold=1e-9, t=0)
    assert "0 of 100" in summary and "precision is undefined" in summary


def test_moving_a_slider_redraws(explorers):
    ex = explorers["selection"]
    before = ex._image.value
    ex.controls["t"].value = 400
    try:
        assert ex.last[1].startswith("At t = 400:"), ex.last[1]
        assert ex._image.value != before
    finally:
        ex.controls["t"].value = wd.SELECTION_DEFAULTS["t"]
    assert ex.values() == wd.SELECTION_DEFAULTS


def test_explorer_shows_messages_instead_of_figures():
    slider = ipywidgets.IntSlider(value=1, min=0, max=2)
    ex = wd.Explorer(lambda x: (None, f"⚠ x = {x} <is> bad") if x == 0 else wd.data_model_figure(), {"x": slider})
    assert len(ex._image.value) > 1000
    slider.value = 0
    assert ex._image.value == b"" and "&lt;is&gt;" in ex._summary.value, "message must be shown, escaped"


def test_responds_quickly():
    """About a second on this busy two-core machine: a fresh run well under the bound, a cached one at once."""
    wd._cached_run.cache_clear()
    start = time.perf_counter()
    wd.race_figure(**wd.RACE_DEFAULTS)
    fresh = time.perf_counter() - start
    start = time.perf_counter()
    wd.selection_figure(threshold=0.5, t=50)
    cached = time.perf_counter() - start
    assert fresh < 6.0, f"a fresh race run took {fresh:.2f} s"
    assert cached < 2.0, f"a cached selection redraw took {cached:.2f} s"
    assert not math.isnan(fresh)
    assert torch.get_num_threads() >= 1, "the thread count must be restored"


def test_figures_show_as_png_without_pyplot():
    """glue and Jupyter need image/png whatever the matplotlib backend: the figures carry their own PNG repr."""
    for callback in (wd.data_model_figure, wd.race_figure, wd.selection_figure):
        fig, _ = callback()
        png = fig._repr_png_()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
