"""Benchmark of the training engines: ``python -m lnfl.bench [--quick] [--json]``.

Three measurements, each a ratio taken in one process with interleaved repetitions and medians (absolute times
on a shared machine move with its load; ratios much less):

1. **Single run.** :func:`lnfl.training.train` (default engine, which at n < d runs on the projections;
   γ/ρ bookkeeping recorded every step) against a plain PyTorch
   loop (:class:`PlainCNN`, an ``nn.Module`` computing f on the patches, ``loss.backward()``,
   ``torch.optim.SGD``) on the reference configuration, float64; the final weights must agree to 1e-10.
2. **Batched runs.** :func:`lnfl.training.train_batch` (``engine="weights"``) on K configurations (different seeds, τ, n·SNR², η;
   the reference n, m, d).  Flops are counted as the two batched products of each step,
   4·K·2m·(n+2)·d (P = W Zᵀ and W ← W − ηC Z), ignoring the O(K m n) elementwise work, and compared with the
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
import os
import platform
import statistics
import time

import torch

from .data import Dataset
from .training import REFERENCE, setup, train, train_batch

__all__ = ["PlainCNN", "autograd_gd", "gemm_gflops", "bench_single", "bench_batched", "bench_engine", "main"]


class PlainCNN(torch.nn.Module):
    """The network of Chapter 3 written the obvious way: f(W, x) = F_{+1} − F_{−1} on the (n, 2, d) patches."""

    def __init__(self, W0: torch.Tensor) -> None:
        super().__init__()
        self.W = torch.nn.Parameter(W0.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.einsum("jrd,npd->njrp", self.W, x)  # ⟨w_{j,r}, x⁽ᵖ⁾_i⟩
        F = torch.relu(pre).sum(dim=(2, 3)) / self.W.shape[1]
        return F[:, 0] - F[:, 1]


def autograd_gd(W0: torch.Tensor, data: Dataset, eta: float, steps: int) -> torch.Tensor:
    """The baseline: ``steps`` steps of full-batch GD by autograd and ``torch.optim.SGD``; returns W."""
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
    a, b = torch.randn(N, N, dtype=dtype), torch.randn(N, N, dtype=dtype)
    torch.mm(a, b)
    t, _ = _timed(lambda: torch.mm(a, b))
    return 2 * N**3 / t / 1e9


def bench_single(steps: int, reps: int, engine: str = "auto") -> dict:
    """train() against the autograd loop on the reference configuration (float64)."""
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
        "flops_counted": "4*K*2m*(n+2)*d per step (P = W Z^T and W -= eta C Z)",
        "batched_s": statistics.median(t_batch),
        "batched_gflops": batch_gflops,
        "gemm_gflops": statistics.median(gemm),
        "gemm_fraction": batch_gflops / statistics.median(gemm),
        "batched_max_abs_diff_vs_separate": diff,
    }


def bench_engine(weight_steps: int, coef_steps: int, reps: int, d: int = 100_000) -> dict:
    """The coefficient engine against the weight-space one at n = 100, m = 20, d: per-step time and agreement."""
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


def run(quick: bool = False) -> dict:
    """All three measurements; ``quick`` keeps the whole under about 50 s on two busy cores."""
    start = time.perf_counter()
    single = bench_single(steps=200 if quick else 1000, reps=3 if quick else 5)
    batched = bench_batched(K=16, steps=100 if quick else 400, reps=3 if quick else 5)
    engine = bench_engine(weight_steps=3 if quick else 10, coef_steps=200 if quick else 1000, reps=2 if quick else 3)
    return {
        "speedup_vs_autograd": single["speedup_vs_autograd"],
        "gemm_fraction": batched["gemm_fraction"],
        "coef_engine_speedup": engine["coef_engine_speedup"],
        "coef_engine_max_abs_err": engine["coef_engine_max_abs_err"],
        "single": single,
        "batched": batched,
        "engine": engine,
        "dtype": "float64",
        "quick": quick,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "wall_s": time.perf_counter() - start,
    }


def table(r: dict) -> str:
    """The results as a readable table."""
    s, b, e = r["single"], r["batched"], r["engine"]
    rows = [
        ("train() vs autograd loop, speedup", f"{s['speedup_vs_autograd']:.1f}×", "≥ 3×"),
        ("  train / autograd (median s)", f"{s['train_s']:.2f} / {s['autograd_s']:.2f}", ""),
        ("  max |W_train − W_autograd|", f"{s['max_abs_weight_diff']:.1e}", "≤ 1e-10"),
        ("batched K = 16, GFLOP/s", f"{b['batched_gflops']:.1f}", ""),
        ("  same-dtype GEMM, GFLOP/s", f"{b['gemm_gflops']:.1f}", ""),
        ("  fraction of GEMM throughput", f"{b['gemm_fraction']:.0%}", "≥ 40%"),
        ("  max |batched − separate|", f"{b['batched_max_abs_diff_vs_separate']:.1e}", ""),
        ("coefficient engine, per-step speedup", f"{e['coef_engine_speedup']:.0f}×", "≥ 50×"),
        (
            "  per step: weights / coefficients",
            f"{e['weight_step_s'] * 1e3:.1f} ms / {e['coef_step_s'] * 1e3:.2f} ms",
            "",
        ),
        ("  one-off Gram cost (s)", f"{e['coef_one_off_s']:.2f}", ""),
        ("  max |Δγ|, |Δρ|, |Δ ỹf|", f"{e['coef_engine_max_abs_err']:.1e}", "≤ 1e-8"),
    ]
    w = max(len(a) for a, _, _ in rows)
    lines = [f"{'measurement':<{w}}  {'value':>22}  target", "-" * (w + 34)]
    lines += [f"{a:<{w}}  {v:>22}  {t}" for a, v, t in rows]
    m = r["machine"]
    lines.append(
        f"float64; {m['processor']}, {m['cpu_count']} CPUs, {m['torch_threads']} torch threads, torch {m['torch']}; "
        f"{r['date_utc']}; {r['wall_s']:.0f} s"
    )
    lines.append("flops counted: " + b["flops_counted"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m lnfl.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and repetitions (under 50 s)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: steadier on a shared machine)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    r = run(quick=args.quick)
    print(json.dumps(r) if args.json else table(r))
    return r


if __name__ == "__main__":
    main()
