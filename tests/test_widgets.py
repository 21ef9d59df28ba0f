"""The explorers of lnfl.widgets: callbacks driven directly, over every slider's extremes, and the widgets."""

import io
import itertools
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
    return {name: make(prefetch=False) for name, (make, _, _) in EXPLORERS.items()}


@pytest.mark.parametrize("name", EXPLORERS)
def test_explorer_starts_at_the_callback_defaults(explorers, name):
    _, callback, defaults = EXPLORERS[name]
    ex = explorers[name]
    assert ex.values() == defaults, f"{name}: sliders start at {ex.values()}, defaults are {defaults}"
    fig, summary = callback(**defaults)
    _assert_labelled(fig)
    assert ex.last[1] == summary, "the explorer shows something else than the callback at its defaults"
    assert ex.last[0] is not None and len(ex._image.value) > 1000, "no figure shown"
    assert ex.png[:8] == b"\x89PNG\r\n\x1a\n", "the widget shows a PNG"


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
    monkeypatch.setattr(wd, "_CURVES", type(wd._CURVES)())  # no cached curves either
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


def _line(fig, label):
    (line,) = [ln for ax in fig.get_axes() for ln in ax.get_lines() if ln.get_label() == label]
    return torch.as_tensor(line.get_ydata(), dtype=torch.float64)


def test_race_summary_reports_the_run():
    data, hist = wd.race_run(**wd.RACE_DEFAULTS)
    fig, summary = wd.race_figure(**wd.RACE_DEFAULTS)
    window = stage_one_window(hist, data)
    assert window is not None and f"Stage I window: t = {window[0]} to T₁ = {window[1]}." in summary
    k = hist.at(window[1])
    assert f"test accuracy is {float(hist.test_acc[k]):.3f}" in summary
    assert f"test accuracy {float(hist.test_acc[-1]):.3f}" in summary
    # the stitched recording is dense early and reaches the last step
    assert int(hist.t[-1]) == wd.SMALL["steps"] and torch.equal(hist.t[:21], torch.arange(21))
    gamma = _line(fig, "γ (signal learning)")
    assert torch.allclose(gamma, hist.gamma.mean(dim=(1, 2))[1:]), "the plotted γ must be the run's mean γ"
    (t1_line,) = [ln for ln in fig.get_axes()[0].get_lines() if ln.get_label() == "end of Stage I, $T_1$"]
    assert t1_line.get_visible() and list(t1_line.get_xdata()) == [window[1]] * 2, "T₁ is marked at the window's end"
    _, clean = wd.race_figure(tau=0.0)
    assert "nothing to memorise" in clean and "nan" not in clean
    _, none = wd.race_figure(tau=0.45)
    assert "never holds" in none, "a run without the Stage I state must say so"


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
    assert ex._image.value == "" and "&lt;is&gt;" in ex._summary.value, "message must be shown, escaped"


def _decode(png):
    from matplotlib.image import imread

    return torch.as_tensor(imread(io.BytesIO(png), format="png")[..., :3])


@pytest.mark.parametrize(
    ("name", "moves"),
    [
        ("data_model", [("tau_plus", 0.3), ("d", 1000), ("n_snr2", 2.0), ("tau_minus", 0.0)]),
        ("race", [("tau", 0.25), ("eta", 0.1), ("m", 5), ("n_snr2", 64.0), ("tau", 0.0)]),
        ("selection", [("t", 400), ("threshold", 0.05), ("t", 3), ("threshold", 2.5)]),
    ],
)
def test_redrawing_only_what_changed_draws_the_same_picture(name, moves):
    """After moves drawn by blitting or a frozen layout, the picture equals a fresh drawing of that state."""
    make, _, defaults = EXPLORERS[name]
    ex = make(prefetch=False)
    for key, value in moves:
        ex.controls[key].value = value
        twin = ex.view.twin()  # a new figure of the same kind, laid out at the defaults like the explorer's,
        drawer = wd._Blitter(twin)  # then drawn whole at the current settings
        twin.show(**defaults)
        drawer.png()
        twin.show(**ex.values())
        drawer.frame = "a full redraw"
        fresh = drawer.png()
        a, b = _decode(ex.png), _decode(fresh)
        assert a.shape == b.shape, f"{name} after {key}={value}: image sizes differ"
        differ = float(((a - b).abs().amax(dim=2) > 0.1).double().mean())
        assert differ < 0.002, f"{name} after {key}={value}: {differ:.2%} of the pixels differ from a full redraw"


def test_slider_moves_answer_within_the_budget():
    """A move costs ≤ 0.2 s of CPU (callback plus redraw) when the run is cached or prefetched; the first
    visit of a race setting (a training run and a full redraw) ≤ 0.6 s.  CPU time: the machine is shared."""
    ex = wd.race_explorer()
    ex.wait_prefetch()
    costs = []
    for key, value in [("tau", 0.25), ("tau", 0.3), ("m", 21), ("n_snr2", 2**4.5), ("eta", 10**-0.4)]:
        ex.wait_prefetch()  # the reader looks at the figure while the next runs are prepared
        start = time.thread_time()
        ex.controls[key].value = value
        costs.append(time.thread_time() - start)
        assert ex.last[1].startswith("Predicted"), ex.last[1]
    assert max(costs) <= 0.2, f"slider moves took {[round(c, 3) for c in costs]} s of CPU"
    ex.prefetch = False
    start = time.thread_time()
    ex.controls["m"].value = 3  # a jump: nothing prepared
    cold = time.thread_time() - start
    assert cold <= 0.6, f"a cold race move took {cold:.2f} s of CPU"
    assert torch.get_num_threads() >= 1, "the thread count must be restored"


def test_prefetch_prepares_the_next_step_in_the_direction_moved():
    ex = wd.race_explorer()
    ex.controls["tau"].value = 0.3
    ex.wait_prefetch()
    key = (wd._key(0.35), wd._key(16.0), wd._key(0.5), 20, wd.SMALL["n"], wd.SMALL["d"], wd.SMALL["steps"], 0)
    assert key in wd._CURVES, "the next τ step up must be trained in the background"
    ex._previous = {**ex.values(), "tau": 0.25}  # as if the reader had just moved τ from 0.25 to 0.3
    nxt = ex._next_settings(ex.values())
    assert [x["tau"] for x in nxt[:4]] == pytest.approx([0.35, 0.25, 0.4, 0.45]), "ahead, one back, further ahead"
    assert all(x["tau"] == pytest.approx(0.3) for x in nxt[4:]) and len(nxt) == 4 + 6, "then ±1 on the others"
    assert wd._grid_neighbours(ex.controls["eta"], 0.5) == pytest.approx([10**-0.4, 10**-0.3]), "off-grid value"
    assert wd._grid_neighbours(ex.controls["m"], 1) == [2], "the slider's ends bound the neighbours"
    assert wd._grid_neighbours(ex.controls["m"], 20, reach=2) == [19, 21, 18, 22], "nearest first"


@pytest.mark.parametrize("name", EXPLORERS)
def test_every_control_and_image_is_labelled(explorers, name):
    """Screen readers: each slider has a description and a tooltip (its accessible name on the page, through
    SLIDER_LABELS_HTML), and the image has alt text saying what it shows at these settings."""
    ex = explorers[name]
    for key, c in ex.controls.items():
        assert c.description.strip() and c.tooltip and len(c.tooltip) > len(c.description), key
    assert " alt='" in ex._image.value and ex.view.alt.split()[0] in ex._image.value, "image without alt text"
    assert "aria-label" in wd.SLIDER_LABELS_HTML and 'role="slider"' in wd.SLIDER_LABELS_HTML


def test_figures_show_as_png_without_pyplot():
    """glue and Jupyter need image/png whatever the matplotlib backend: the figures carry their own PNG repr."""
    for callback in (wd.data_model_figure, wd.race_figure, wd.selection_figure):
        fig, _ = callback()
        png = fig._repr_png_()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
