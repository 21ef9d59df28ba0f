"""What a reader feels: the benchmark's explorer and notebook timings, and the digits CNN's fast training path."""

import json

import pytest
import torch

import lnfl.bench as bench
import lnfl.realdata as rd
from lnfl.training import TrainingDivergedError

nbformat = pytest.importorskip("nbformat")


@pytest.fixture(scope="module")
def digits():
    full = rd.load_digits_pair(classes=(4, 9), tau_plus=0.2, seed=0)
    return rd.split_validation(full, fraction=0.2, seed=0)


def _generic(monkeypatch, fn, *args, **kwargs):
    """Run ``fn`` with the SmallCNN fast path switched off: the autograd loop of train_classifier."""
    with monkeypatch.context() as m:
        m.setattr(rd, "_fast_ok", lambda *a: False)
        return fn(*args, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epochs": 40, "record_every": 3},  # full-batch GD, last epoch off the recording grid
        {"epochs": 4, "batch_size": 32, "record_every": 2, "seed": 1},  # SGD, same shuffling
        {"epochs": 0},
    ],
)
def test_fast_small_cnn_path_is_the_same_training(monkeypatch, digits, kwargs):
    """The hand-written gradient of SmallCNN trains like autograd: same recorded epochs, same accuracies,
    weights and margins equal up to float32 rounding (short runs: rounding grows over thousands of epochs)."""
    pair, val = digits
    net = rd.small_cnn(pair.image_shape, channels=8, seed=0)
    assert rd._fast_ok(net, pair, val)
    fast = rd.train_classifier(net, pair, lr=0.05, val=val, **kwargs)
    slow = _generic(monkeypatch, rd.train_classifier, net, pair, lr=0.05, val=val, **kwargs)
    assert torch.equal(fast.epoch, slow.epoch)
    assert torch.allclose(fast.margin, slow.margin, atol=2e-5), float((fast.margin - slow.margin).abs().max())
    for p, q in zip(fast.net.parameters(), slow.net.parameters(), strict=True):
        assert torch.allclose(p, q, atol=2e-6), float((p - q).abs().max())
    for name in ("train_acc_clean", "train_acc_noisy", "noisy_true_acc", "test_acc", "val_acc"):
        assert torch.equal(getattr(fast, name), getattr(slow, name)), name
    assert torch.allclose(fast.loss, slow.loss, atol=1e-6)
    assert fast.batch_size == slow.batch_size and fast.lr == slow.lr and fast.data is pair
    with torch.no_grad():  # the returned network is the trained one
        assert torch.allclose(fast.net(pair.train.x) * pair.train.y_obs, fast.margin[-1], atol=1e-5)
    assert fast.net is not net and torch.equal(net.conv.weight, rd.small_cnn(pair.image_shape, 8, seed=0).conv.weight)
    assert kwargs["epochs"] == 0 or not torch.equal(net.conv.weight, fast.net.conv.weight), "a copy was trained"


def test_fast_path_divergence_is_reported_like_the_loop(monkeypatch, digits):
    pair, _ = digits
    net = rd.small_cnn(pair.image_shape, channels=8, seed=0)
    with pytest.raises(TrainingDivergedError) as fast:
        rd.train_classifier(net, pair, lr=1e30, epochs=50)
    with pytest.raises(TrainingDivergedError) as slow:
        _generic(monkeypatch, rd.train_classifier, net, pair, lr=1e30, epochs=50)
    assert str(fast.value) == str(slow.value)


def test_fast_path_only_for_a_plain_small_cnn(digits):
    pair, val = digits
    net = rd.small_cnn(pair.image_shape, channels=8, seed=0)
    net.readout.bias.requires_grad_(False)
    assert not rd._fast_ok(net, pair, val), "a frozen parameter needs the general loop"

    class Wider(rd.SmallCNN):
        pass

    assert not rd._fast_ok(Wider(pair.image_shape), pair, val), "a subclass may compute something else"


def test_explorer_latencies_are_measured(monkeypatch):
    monkeypatch.setattr(bench, "_MOVES", {k: v[:2] for k, v in bench._MOVES.items()})
    out = bench.bench_explorers(quick=True)
    assert set(out) == {"data_model", "race", "selection"}
    for name, x in out.items():
        assert x["moves"] == 2 and 0 < x["median_s"] <= x["worst_s"] < 5, (name, x)


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_notebook_timing_reports_the_kernels_cpu_and_memory(tmp_path):
    busy = _notebook(
        tmp_path / "busy.ipynb", "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"
    )
    r = bench.bench_notebook(busy)
    assert r["error"] is None and r["cpu_s"] >= 0.5 and 10 < r["peak_mb"] < 2000, r
    broken = _notebook(tmp_path / "broken.ipynb", "assert 1 == 2, 'a check cell that fails'")
    r = bench.bench_notebook(broken)
    assert r["error"] and "a check cell that fails" in r["error"], r


def test_report_puts_targets_beside_the_figures(tmp_path):
    r = {
        "quick": False,
        "parts": ["explorers", "chapters"],
        "targets": bench.TARGETS,
        "explorers": {"race": {"median_s": 0.03, "worst_s": 0.25, "moves": 10}},
        "chapters": {
            "chapters/01_motivation.ipynb": {"cpu_s": 12.5, "peak_mb": 700.0, "error": None},
            "chapters/09_regimes.ipynb": {"cpu_s": 41.0, "peak_mb": 900.0, "error": None},
        },
        "machine": {"platform": "Linux", "processor": "x86_64", "cpu_model": "CPU", "cpu_count": 2,
                    "torch_threads": 1, "torch": "2"},
        "date_utc": "2026-12-01T12:00:00+00:00",
        "wall_s": 60.0,
    }  # fmt: skip
    text = bench.table(r)
    assert "0.030 / 0.250 s" in text and "≤ 0.2 s ok" in text
    assert "12.5 s, 0.68 GB" in text and "41.0 s, 0.88 GB  ≤ 30 s, ≤ 1.5 GB OVER" in text
    md = bench.markdown(r)
    assert "2026-12-01" in md and "| what | measured | target |" in md and "(over)" in md
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{bench.README_START}\nold\n{bench.README_END}\n\nafter\n")
    bench.update_readme(r, readme)
    text = readme.read_text()
    assert "old" not in text and "12.5 s" in text and text.endswith("\n\nafter\n")
    saved = tmp_path / "r.json"
    saved.write_text(json.dumps(r))
    again = bench.main(["--from-json", str(saved), "--json"])
    assert again["targets"] == {"slider_move_s": 0.2, "chapter_cpu_s": 30.0, "chapter_peak_gb": 1.5}


def test_make_notebooks_fails_on_a_failing_check_and_caches_what_passed(tmp_path):
    """tools/run_notebooks.py (make notebooks): a failing assert fails the run with its traceback; a notebook that
    passed is stored in the jupyter-cache the book build reads, and is not run again."""
    import subprocess
    import sys

    from jupyter_cache import get_cache

    tool = bench.Path(__file__).resolve().parents[1] / "tools" / "run_notebooks.py"
    good = _notebook(tmp_path / "good.ipynb", "x = 2 + 2", "assert x == 4, 'arithmetic'")
    bad = _notebook(tmp_path / "bad.ipynb", "x = 2 + 2", "assert x == 5, 'a check cell that fails'")
    cache = tmp_path / "_build" / ".jupyter_cache"

    def run(*paths):
        cmd = [sys.executable, str(tool), *map(str, paths), "--cache", str(cache), "--jobs", "2"]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600)

    proc = run(good, bad)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 passed, 1 failed" in proc.stdout and "a check cell that fails" in proc.stderr
    store = get_cache(str(cache))
    assert store.match_cache_notebook(nbformat.read(good, as_version=4)) is not None, "the build would re-execute it"
    with pytest.raises(KeyError):
        store.match_cache_notebook(nbformat.read(bad, as_version=4))
    again = run(good)
    assert again.returncode == 0 and "cached" in again.stdout, "a notebook in the cache is not run again"
