"""Benchmark of the engines and of what a reader feels: ``python -m lnfl.bench [--quick] [--json] [--markdown]``.

What a reader feels (targets printed beside the figures, :data:`TARGETS`):

- **Slider moves** (:func:`bench_explorers`): each explorer of :mod:`lnfl.widgets` is moved through a fixed list
  of slider moves (single steps and one jump); the cost of a move is the CPU time from setting the slider to the
  new picture and summary in the widget (callback, redraw, PNG), median and worst; target ≤ 0.2 s.
- **Notebooks on one core** (:func:`bench_chapters`): each chapter and appendix notebook is executed in a fresh
  process with ``OMP_NUM_THREADS=MKL_NUM_THREADS=1`` and, where ``taskset`` exists, pinned to CPU 0; the figures
  are the CPU seconds (user + system) and the maximum resident memory of its kernel; targets ≤ 30 s and
  ≤ 1.5 GB (Binder's one core and 2 GB).  CPU time, not wall time: on a shared machine wall time measures the
  neighbours.  Skipped by ``--quick``; ``--notebook PATH`` times chosen notebooks only.

``--markdown`` prints the README's table, ``--update-readme`` writes it between the README's
``<!-- lnfl.bench:start -->`` and ``<!-- lnfl.bench:end -->`` markers (one command to refresh it), and
``--from-json FILE`` formats a saved ``--json`` result instead of measuring; ``--only PART`` runs one part.

The engines: three measurements, each a ratio taken in one process with interleaved repetitions and medians
(absolute times on a shared machine move with its load; ratios much less):

1. **Single run.** :func:`lnfl.training.train` (default engine, which at n < d runs on the projections;
   γ/ρ bookkeeping recorded every step) against a plain PyTorch
   loop (:class:`PlainCNN`, an ``nn.Module`` computing f on the patches, ``loss.backward()``,
   ``torch.optim.SGD``) on the reference configuration, float64; the final weights must agree to 1e-10.
2. **Batched runs.** :func:`lnfl.training.train_batch` (``engine="weights"``) on K configurations (different seeds, τ, n·SNR², η;
   the reference n, m, d).  Flops are counted as the two batched products of each step,
   4·K·2m·(n+2)·d (P = W Zᵀ and W ← W − ηΛ Z), ignoring the O(K m n) elementwise work, and compared with the
   GFLOP/s of a square float64 GEMM (``torch.mm``, N = 1024, 2N³ flops) timed in the same process.
3. **d-independent engine.** ``train(engine="coef")`` (:mod:`lnfl.engine`) against ``train(engine="weights")`` at
   n = 100, m = 20, d = 100,000: per-step cost (T(s steps) − T(0 steps))/s, so the one-off Gram cost is
   reported apart; agreement = max |difference| of γ, ρ and the outputs ỹ_i f over the compared steps.

By default torch runs one thread (``--threads`` to change it): on a machine shared with other jobs, a
multi-threaded GEMM waits for its slowest thread and timings swing by an order of magnitude.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import statistics
import time
from pathlib import Path

import torch

from ._validate import (
    check_bool,
    check_choice,
    check_dtype,
    check_instance,
    check_int,
    check_positive,
    check_sequence,
    check_tensor,
)
from .data import Dataset
from .model import _check_pair
from .training import REFERENCE, setup, train, train_batch

__all__ = [
    "PlainCNN",
    "TARGETS",
    "autograd_gd",
    "gemm_gflops",
    "bench_single",
    "bench_batched",
    "bench_engine",
    "bench_explorers",
    "bench_notebook",
    "bench_chapters",
    "notebooks",
    "markdown",
    "update_readme",
    "main",
]


class PlainCNN(torch.nn.Module):
    """The network of Chapter 3 written the obvious way: f(W, x) = F_{+1} − F_{−1} on the (n, 2, d) patches."""

    def __init__(self, W0: torch.Tensor) -> None:
        super().__init__()
        self.W = torch.nn.Parameter(check_tensor("W0", W0, shape=(2, "m", "d")).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.einsum("jrd,npd->njrp", self.W, x)  # ⟨w_{j,r}, x⁽ᵖ⁾_i⟩
        F = torch.relu(pre).sum(dim=(2, 3)) / self.W.shape[1]
        return F[:, 0] - F[:, 1]


def autograd_gd(W0: torch.Tensor, data: Dataset, eta: float, steps: int) -> torch.Tensor:
    """The baseline: ``steps`` steps of full-batch GD by autograd and ``torch.optim.SGD``; returns W."""
    W0 = _check_pair(W0, data, "W0")
    eta, steps = check_positive("eta", eta), check_int("steps", steps, minimum=0)
    net = PlainCNN(W0)
    opt = torch.optim.SGD(net.parameters(), lr=eta)
    x = data.patches()
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.softplus(-data.y_obs * net(x)).mean()
        loss.backward()
        opt.step()
    return net.W.detach()


def _timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def gemm_gflops(N: int = 1024, dtype: torch.dtype = torch.float64) -> float:
    """GFLOP/s of one N×N by N×N product (2N³ flops) in this process."""
    N, dtype = check_int("N", N), check_dtype("dtype", dtype)
    a, b = torch.randn(N, N, dtype=dtype), torch.randn(N, N, dtype=dtype)
    torch.mm(a, b)
    t, _ = _timed(lambda: torch.mm(a, b))
    return 2 * N**3 / t / 1e9


def bench_single(steps: int, reps: int, engine: str = "auto") -> dict:
    """train() against the autograd loop on the reference configuration (float64)."""
    steps, reps = check_int("steps", steps), check_int("reps", reps)
    check_choice("engine", engine, ("auto", "weights", "coef"))
    s = setup(seed=0)
    t_fast, t_plain = [], []
    for _ in range(reps):
        t, h = _timed(lambda: train(s.W0, s.data, eta=s.eta, steps=steps, record_every=1, engine=engine))
        t_fast.append(t)
        t, W = _timed(lambda: autograd_gd(s.W0, s.data, s.eta, steps))
        t_plain.append(t)
    return {
        "config": {**REFERENCE, "steps": steps, "record_every": 1, "dtype": "float64", "engine": engine},
        "train_s": statistics.median(t_fast),
        "autograd_s": statistics.median(t_plain),
        "speedup_vs_autograd": statistics.median(p / f for p, f in zip(t_plain, t_fast, strict=True)),
        "max_abs_weight_diff": float((h.W - W).abs().max()),
    }


def bench_batched(K: int, steps: int, reps: int) -> dict:
    """train_batch() on K configurations against a same-dtype GEMM, and against K separate runs."""
    K, steps, reps = check_int("K", K), check_int("steps", steps), check_int("reps", reps)
    setups = [
        setup(seed=k, n_test=200, tau_plus=0.1 + 0.2 * (k % 2), n_snr2=8.0 + 4 * (k % 3), eta=0.05 + 0.05 * (k % 2))
        for k in range(K)
    ]
    n, m, d = REFERENCE["n"], REFERENCE["m"], REFERENCE["d"]
    flops = 4 * K * 2 * m * (n + 2) * d * steps
    t_batch, gemm = [], []
    for _ in range(reps):
        gemm.append(gemm_gflops())
        t, hists = _timed(lambda: train_batch(setups, steps=steps, record_every=10, test="none", engine="weights"))
        t_batch.append(t)
    batch_gflops = flops / statistics.median(t_batch) / 1e9
    separate = [train(s.W0, s.data, eta=s.eta, steps=steps, record_every=10, engine="weights") for s in setups[:2]]
    diff = max(
        float((getattr(a, f) - getattr(b, f)).abs().max())
        for a, b in zip(separate, hists, strict=False)
        for f in ("W", "gamma", "rho", "margin")
    )
    return {
        "config": {"K": K, "n": n, "m": m, "d": d, "steps": steps, "record_every": 10, "dtype": "float64"},
        "flops_counted": "4*K*2m*(n+2)*d per step (P = W Z^T and W -= eta Lambda Z)",
        "batched_s": statistics.median(t_batch),
        "batched_gflops": batch_gflops,
        "gemm_gflops": statistics.median(gemm),
        "gemm_fraction": batch_gflops / statistics.median(gemm),
        "batched_max_abs_diff_vs_separate": diff,
    }


def bench_engine(weight_steps: int, coef_steps: int, reps: int, d: int = 100_000) -> dict:
    """The coefficient engine against the weight-space one at n = 100, m = 20, d: per-step time and agreement."""
    weight_steps, coef_steps = check_int("weight_steps", weight_steps), check_int("coef_steps", coef_steps)
    reps, d = check_int("reps", reps), check_int("d", d)
    s = setup(seed=0, n=100, m=20, d=d, n_test=20)
    args = {"eta": s.eta, "record_every": 1, "test": s.test}
    w_step, c_step, one_off = [], [], []
    for _ in range(reps):
        t0, _ = _timed(lambda: train(s.W0, s.data, steps=0, engine="weights", **args))
        t1, hw = _timed(lambda: train(s.W0, s.data, steps=weight_steps, engine="weights", **args))
        w_step.append((t1 - t0) / weight_steps)
        t0, _ = _timed(lambda: train(s.W0, s.data, steps=0, engine="coef", **args))
        t1, hc = _timed(lambda: train(s.W0, s.data, steps=coef_steps, engine="coef", **args))
        c_step.append((t1 - t0) / coef_steps)
        one_off.append(t0)
    k = len(hw.t)
    err = max(
        float((hw.gamma - hc.gamma[:k]).abs().max()),
        float((hw.rho - hc.rho[:k]).abs().max()),
        float((hw.margin - hc.margin[:k]).abs().max()),
    )
    return {
        "config": {"n": 100, "m": 20, "d": d, "eta": s.eta, "weight_steps": weight_steps, "coef_steps": coef_steps},
        "weight_step_s": statistics.median(w_step),
        "coef_step_s": statistics.median(c_step),
        "coef_one_off_s": statistics.median(one_off),
        "coef_engine_speedup": statistics.median(w / c for w, c in zip(w_step, c_step, strict=True)),
        "coef_engine_max_abs_err": err,
        "compared_steps": weight_steps,
        "test_acc_max_abs_diff": float((hw.test_acc - hc.test_acc[:k]).abs().max()),
    }


# ---------------------------------------------------------------------------------------------------------
# What a reader feels: slider moves of the explorers, and each notebook's one-core run
# ---------------------------------------------------------------------------------------------------------

#: What the book promises a reader: a slider move answers within 0.2 s, a notebook runs within 30 s of one
#: CPU core and 1.5 GB (mybinder.org gives one core and 2 GB).
TARGETS: dict[str, float] = {"slider_move_s": 0.2, "chapter_cpu_s": 30.0, "chapter_peak_gb": 1.5}

#: A reader's slider moves, as (slider, number of slider steps): single steps along each slider and back,
#: and one jump that nothing prepared.
_MOVES: dict[str, list[tuple[str, int]]] = {
    "data_model": [("tau_plus", 1), ("tau_plus", 1), ("tau_minus", -1), ("n_snr2", -1), ("n_snr2", -1),
                   ("d", 1), ("d", 1), ("tau_plus", -1), ("d", 40)],
    "race": [("tau", 1), ("tau", 1), ("tau", -1), ("eta", -1), ("eta", -1), ("n_snr2", 1), ("m", -1),
             ("m", -1), ("tau", -1), ("m", 20)],
    "selection": [("t", 10), ("t", 40), ("threshold", -10), ("threshold", 50), ("t", -45), ("t", 300),
                  ("threshold", -40)],
}  # fmt: skip


def _moved(control: object, steps: int) -> float:
    """The slider's value ``steps`` grid steps from where it is (clipped to its range)."""
    import ipywidgets as w

    log = isinstance(control, w.FloatLogSlider)
    x = math.log(control.value, control.base) if log else float(control.value)
    k = round((x - control.min) / control.step) + steps
    y = min(max(control.min + k * control.step, control.min), control.max)
    if log:
        return control.base ** round(y, 10)
    return int(round(y)) if isinstance(control, w.IntSlider) else round(y, 10)


def bench_explorers(quick: bool = False) -> dict:
    """Median and worst cost of a slider move of each explorer, as the reader sees it: from the new value to
    the new picture and summary in the widget (callback, redraw, PNG).  CPU time of the thread that answers
    (the machine is shared); the reader pauses between moves, so the explorer's background runs for the next
    step finish first (their cost is reported apart, as ``prefetch_cpu_s`` of the whole process)."""
    check_bool("quick", quick)
    from . import widgets as wd

    makers = {"data_model": wd.data_model_explorer, "race": wd.race_explorer, "selection": wd.selection_explorer}
    out = {}
    for name, make in makers.items():
        wd._clear_race_cache()
        start = time.thread_time()
        ex = make()
        first = time.thread_time() - start
        ex.wait_prefetch()
        moves = _MOVES[name][: 5 if quick else None]
        costs, walls, background = [], [], 0.0
        for key, steps in moves:
            before = time.process_time()
            ex.wait_prefetch()
            background += time.process_time() - before
            control = ex.controls[key]
            value = _moved(control, steps)
            t0, w0 = time.thread_time(), time.perf_counter()
            control.value = value
            costs.append(time.thread_time() - t0)
            walls.append(time.perf_counter() - w0)
            if ex.last[0] is None:
                raise RuntimeError(f"explorer {name} gave a message at {ex.values()}: {ex.last[1]}")
        before = time.process_time()
        ex.wait_prefetch()
        background += time.process_time() - before
        out[name] = {
            "median_s": statistics.median(costs),
            "worst_s": max(costs),
            "moves": len(costs),
            "wall_median_s": statistics.median(walls),
            "first_draw_s": first,
            "prefetch_cpu_s": background,
            "full_redraws": ex._blitter.full_draws if ex._blitter is not None else len(costs),
        }
    return out


def _repo_root() -> Path | None:
    root = Path(__file__).resolve().parents[1]
    return root if (root / "chapters").is_dir() else None


def notebooks() -> list[Path]:
    """The book's notebooks: chapters/*.ipynb and appendix/*.ipynb (empty outside a source checkout)."""
    root = _repo_root()
    if root is None:
        return []
    return sorted((root / "chapters").glob("*.ipynb")) + sorted((root / "appendix").glob("*.ipynb"))


def _kernel_usage(path: str) -> None:
    """(In a child process.)  Execute the notebook with nbclient and print, as JSON, what its kernel used:
    CPU seconds (user + system) and maximum resident memory, from getrusage of the waited-for kernel."""
    import resource

    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(Path(path).parent)}}
    )
    start, error = time.perf_counter(), None
    try:
        client.execute()
    except Exception as err:  # noqa: BLE001 - reported, not raised: the other notebooks still get timed
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()  # no terminal colours in the report
        error = f"{type(err).__name__}: {text.splitlines()[-1] if text else ''}"[:300]
    wall = time.perf_counter() - start
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernel, reaped when nbclient shut it down
    usage = {"cpu_s": ru.ru_utime + ru.ru_stime, "peak_mb": ru.ru_maxrss / 1024, "wall_s": wall, "error": error}
    usage["slowest_cells"] = _slowest_cells(nb)
    print(json.dumps(usage))


def _slowest_cells(nb: object, k: int = 3) -> list[dict]:
    """The ``k`` code cells that took longest (wall seconds, from nbclient's execution timestamps), with their
    index and id: where a chapter's time goes."""
    cells = []
    for i, cell in enumerate(nb.cells):  # type: ignore[attr-defined]
        stamps = cell.get("metadata", {}).get("execution", {})
        begin, end = stamps.get("iopub.execute_input"), stamps.get("shell.execute_reply")
        if cell.cell_type == "code" and begin and end:
            seconds = (datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(begin)).total_seconds()
            cells.append({"index": i, "id": cell.get("id", ""), "wall_s": round(seconds, 2)})
    return sorted(cells, key=lambda c: -c["wall_s"])[:k]


def bench_notebook(path: Path | str, timeout: float = 1200.0) -> dict:
    """One notebook on one core: a fresh process executes it (``OMP_NUM_THREADS=MKL_NUM_THREADS=1``, pinned
    to CPU 0 with ``taskset`` where it exists) and reports its kernel's CPU seconds and peak memory."""
    path = _check_notebook("path", path)
    timeout = check_positive("timeout", timeout)
    import shutil
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "lnfl.bench", "--kernel-usage", str(path)]
    pinned = shutil.which("taskset") is not None
    if pinned:
        cmd = ["taskset", "-c", "0", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"cpu_s": float("nan"), "peak_mb": float("nan"), "wall_s": float("nan"), "pinned": pinned,
                "error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]}  # fmt: skip
    return {**json.loads(lines[-1]), "pinned": pinned}


def _check_notebook(name: str, path: object) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not Path(path).is_file() or Path(path).suffix != ".ipynb":
        raise ValueError(f"{name} must be the path of an existing .ipynb notebook, got {path!r}")
    return Path(path)


def bench_chapters(paths: list[Path] | None = None) -> dict:
    """:func:`bench_notebook` for each notebook (default: all of :func:`notebooks`), one after the other."""
    if paths is not None:
        paths = check_sequence("paths", paths, _check_notebook)
    root = _repo_root()
    out = {}
    for path in notebooks() if paths is None else paths:
        p = Path(path).resolve()
        name = str(p.relative_to(root)) if root is not None and p.is_relative_to(root) else str(path)
        out[name] = bench_notebook(p)
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(quick: bool = False, parts: tuple[str, ...] | None = None, paths: list[Path] | None = None) -> dict:
    """The measurements named in ``parts`` ("engines", "explorers", "chapters"; default all three, and without
    chapters when ``quick``, which keeps the whole under about a minute on two busy cores)."""
    if parts is None:
        parts = ("engines", "explorers") if quick else PARTS
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"parts must be among {PARTS}, got {sorted(unknown)}")
    start = time.perf_counter()
    r: dict = {"quick": quick, "parts": list(parts), "targets": TARGETS, "dtype": "float64"}
    if "engines" in parts:
        single = bench_single(steps=200 if quick else 1000, reps=3 if quick else 5)
        batched = bench_batched(K=16, steps=100 if quick else 400, reps=3 if quick else 5)
        engine = bench_engine(
            weight_steps=3 if quick else 10, coef_steps=200 if quick else 1000, reps=2 if quick else 3
        )
        r.update(
            speedup_vs_autograd=single["speedup_vs_autograd"],
            gemm_fraction=batched["gemm_fraction"],
            coef_engine_speedup=engine["coef_engine_speedup"],
            coef_engine_max_abs_err=engine["coef_engine_max_abs_err"],
            single=single,
            batched=batched,
            engine=engine,
        )
    if "explorers" in parts:
        r["explorers"] = bench_explorers(quick)
        r["slider_move_median_s"] = max(e["median_s"] for e in r["explorers"].values())
        r["slider_move_worst_s"] = max(e["worst_s"] for e in r["explorers"].values())
    if "chapters" in parts:
        r["chapters"] = bench_chapters(paths)
        done = [c for c in r["chapters"].values() if c["cpu_s"] == c["cpu_s"]]
        r["chapter_cpu_max_s"] = max((c["cpu_s"] for c in done), default=float("nan"))
        r["chapter_peak_max_mb"] = max((c["peak_mb"] for c in done), default=float("nan"))
    r["machine"] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    r["date_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    r["wall_s"] = time.perf_counter() - start
    return r


PARTS = ("engines", "explorers", "chapters")


def _mark(ok: bool) -> str:
    return "ok" if ok else "OVER"


def _rows(r: dict, markdown_rows: bool = False) -> list[tuple[str, str, str]]:
    """(measurement, value, target) for every part that was run (for a notebook over its targets, also its
    slowest cells, except in the Markdown table)."""
    t = r.get("targets", TARGETS)
    rows: list[tuple[str, str, str]] = []
    if "single" in r:
        s, b, e = r["single"], r["batched"], r["engine"]
        rows += [
            ("train() vs autograd loop, speedup", f"{s['speedup_vs_autograd']:.1f}×", "≥ 3×"),
            ("  train / autograd (median s)", f"{s['train_s']:.2f} / {s['autograd_s']:.2f}", ""),
            ("  max |W_train − W_autograd|", f"{s['max_abs_weight_diff']:.1e}", "≤ 1e-10"),
            ("batched K = 16, GFLOP/s", f"{b['batched_gflops']:.1f}", ""),
            ("  same-dtype GEMM, GFLOP/s", f"{b['gemm_gflops']:.1f}", ""),
            ("  fraction of GEMM throughput", f"{b['gemm_fraction']:.0%}", "≥ 40%"),
            ("  max |batched − separate|", f"{b['batched_max_abs_diff_vs_separate']:.1e}", ""),
            ("coefficient engine, per-step speedup", f"{e['coef_engine_speedup']:.0f}×", "≥ 50×"),
            ("  per step: weights / coefficients",
             f"{e['weight_step_s'] * 1e3:.1f} ms / {e['coef_step_s'] * 1e3:.2f} ms", ""),
            ("  one-off Gram cost (s)", f"{e['coef_one_off_s']:.2f}", ""),
            ("  max |Δγ|, |Δρ|, |Δ ỹf|", f"{e['coef_engine_max_abs_err']:.1e}", "≤ 1e-8"),
        ]  # fmt: skip
    for name, x in r.get("explorers", {}).items():
        ok = x["median_s"] <= t["slider_move_s"]
        rows.append(
            (f"explorer {name}: slider move, median / worst ({x['moves']} moves, CPU)",
             f"{x['median_s']:.3f} / {x['worst_s']:.3f} s", f"≤ {t['slider_move_s']} s {_mark(ok)}")
        )  # fmt: skip
    for name, c in r.get("chapters", {}).items():
        if c.get("error") or c["cpu_s"] != c["cpu_s"]:
            error = re.sub(r"\x1b\[[0-9;]*m", "", str(c.get("error")))
            rows.append((f"{name}: one core", f"did not finish: {error[:70]}", ""))
            continue
        ok = c["cpu_s"] <= t["chapter_cpu_s"] and c["peak_mb"] / 1024 <= t["chapter_peak_gb"]
        rows.append(
            (f"{name}: one-core CPU, peak memory", f"{c['cpu_s']:.1f} s, {c['peak_mb'] / 1024:.2f} GB",
             f"≤ {t['chapter_cpu_s']:.0f} s, ≤ {t['chapter_peak_gb']} GB {_mark(ok)}")
        )  # fmt: skip
        if not ok and c.get("slowest_cells") and not markdown_rows:
            slow = ", ".join(f"cell {x['index']} ({x['id']}) {x['wall_s']:.0f} s" for x in c["slowest_cells"])
            rows.append(("    slowest cells (wall)", slow, ""))
    return rows


def _machine_line(r: dict) -> str:
    m = r.get("machine", {})
    return (
        f"{m.get('cpu_model', m.get('processor', '?'))}, {m.get('cpu_count', '?')} CPUs, "
        f"{m.get('torch_threads', '?')} torch thread(s), torch {m.get('torch', '?')}, {m.get('platform', '?')}; "
        f"{r.get('date_utc', '?')}; {r.get('wall_s', float('nan')):.0f} s"
    )


def table(r: dict) -> str:
    """The results as a readable table, targets beside the figures."""
    rows = _rows(r)
    w = max(len(a) for a, _, _ in rows)
    lines = [f"{'measurement':<{w}}  {'value':>22}  target", "-" * (w + 40)]
    lines += [f"{a:<{w}}  {v:>22}  {t}" for a, v, t in rows]
    lines.append(_machine_line(r))
    if "batched" in r:
        lines.append("flops counted: " + r["batched"]["flops_counted"])
    if "chapters" in r:
        lines.append("chapters: CPU seconds and max RSS of the kernel, OMP/MKL_NUM_THREADS=1, taskset -c 0")
    return "\n".join(lines)


README_START, README_END = "<!-- lnfl.bench:start -->", "<!-- lnfl.bench:end -->"


def markdown(r: dict) -> str:
    """The results as the README's Markdown table (what, measured, target), with the date and the machine."""
    check_instance("r", r, dict, "the dict that run() or main() returns")
    if "date_utc" not in r:
        raise ValueError(f"r must be a benchmark result (from run() or main()), got a dict with keys {sorted(r)[:8]}")
    lines = [
        f"Measured by `python -m lnfl.bench{' --quick' if r.get('quick') else ''} --markdown` on {r['date_utc'][:10]}, "
        f"{r['date_utc'][11:16]} UTC: {_machine_line(r).rsplit(';', 2)[0]}. Slider moves: CPU time from the new "
        "value to the new picture; notebooks: CPU time and peak memory of the kernel on one core "
        "(`OMP_NUM_THREADS=1`, `taskset -c 0`).",
        "",
        "| what | measured | target |",
        "|---|---|---|",
    ]
    for a, v, t in _rows(r, markdown_rows=True):
        a, v, t = (x.strip().replace("|", "\\|") for x in (a, v, t.replace(" ok", "").replace(" OVER", " (over)")))
        lines.append(f"| {a} | {v} | {t} |")
    return "\n".join(lines)


def update_readme(r: dict, path: Path | str | None = None) -> Path:
    """Replace the block between the ``README_START`` and ``README_END`` markers in the README with :func:`markdown`."""
    markdown(r)  # checks r before the README is read
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a path to the README or None, got {path!r}")
    root = _repo_root()
    readme = Path(path) if path is not None else (root / "README.md" if root is not None else Path("README.md"))
    text = readme.read_text(encoding="utf-8")
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_START} … {README_END} block to replace")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{markdown(r)}\n{README_END}{tail}", encoding="utf-8")
    return readme


def main(argv: list[str] | None = None) -> dict:
    if argv is not None and not (isinstance(argv, (list, tuple)) and all(isinstance(a, str) for a in argv)):
        raise TypeError(f"argv must be None or a list of strings such as ['--quick'], got {argv!r}")
    parser = argparse.ArgumentParser(prog="python -m lnfl.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and moves, no notebooks (about a minute)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    parser.add_argument("--markdown", action="store_true", help="print the README's Markdown table")
    parser.add_argument("--update-readme", action="store_true", help="write that table into README.md")
    parser.add_argument("--only", action="append", choices=PARTS, help="run only this part (repeatable)")
    parser.add_argument("--notebook", action="append", type=Path, help="time this notebook (repeatable)")
    parser.add_argument("--from-json", type=Path, help="format a saved --json result instead of measuring")
    parser.add_argument("--kernel-usage", help=argparse.SUPPRESS)  # the child process of bench_notebook
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: steadier on a shared machine)"
    )
    args = parser.parse_args(argv)
    if args.kernel_usage:
        _kernel_usage(args.kernel_usage)
        return {}
    torch.set_num_threads(check_int("--threads", args.threads))
    if args.from_json:
        r = json.loads(args.from_json.read_text(encoding="utf-8").strip().splitlines()[-1])
    else:
        parts = tuple(args.only) if args.only else ("chapters",) if args.notebook else None
        r = run(quick=args.quick, parts=parts, paths=args.notebook)
    if args.update_readme:
        print(f"updated {update_readme(r)}")
    print(json.dumps(r) if args.json else markdown(r) if args.markdown else table(r))
    return r


if __name__ == "__main__":
    main()
