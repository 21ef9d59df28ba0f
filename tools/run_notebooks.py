"""Execute the book's notebooks once, into the cache the book build reads: ``make notebooks``.

    python tools/run_notebooks.py chapters/*.ipynb appendix/*.ipynb            # into _build/.jupyter_cache
    python tools/run_notebooks.py --jobs 1 --cache /tmp/x/_build/.jupyter_cache chapters/05_stage_one.ipynb

Each notebook runs top to bottom in a fresh kernel in its own folder, exactly as the book build runs it
(myst-nb's ``execute_notebooks: cache``: jupyter-cache's ``single_nb_execution``, errors not allowed, the
timeout of ``_config.yml``), and its executed copy is stored in the jupyter-cache the build reads
(``_build/.jupyter_cache`` for ``jupyter-book build .``).  The build then finds every notebook executed and
runs none again; a notebook whose code changed since is executed again here (or by the build).

The checks are the notebooks' own: a cell that raises, an ``assert`` of a check cell above all, fails that
notebook; the run prints its traceback and exits 1 after trying the others.  A notebook already in the cache
with the same code is not run again (``--force`` runs it anyway).  Several notebooks run at once
(``--jobs``, default: the number of CPUs, at most 4), each kernel on one thread (``OMP_NUM_THREADS=1``).
The last line reads ``N passed, M failed``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import pathlib
import sys
import time

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _timeout() -> int:
    """``execute.timeout`` of _config.yml (per cell, seconds), else 300."""
    try:
        import yaml

        return int(yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["execute"]["timeout"])
    except (OSError, KeyError, TypeError, ValueError, ImportError):
        return 300


def _execute(path: str, timeout: int) -> tuple[str, str | None, float, str]:
    """(In a worker process.)  Run one notebook; return (path, executed notebook as JSON or None, seconds,
    traceback or "")."""
    from jupyter_cache.executors.utils import single_nb_execution

    nb = nbformat.read(path, as_version=4)
    result = single_nb_execution(
        nb, cwd=str(pathlib.Path(path).parent), allow_errors=False, timeout=timeout, meta_override=True
    )
    if result.err is not None:
        return path, None, result.time, result.exc_string or repr(result.err)
    return path, nbformat.writes(nb), result.time, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=pathlib.Path)
    parser.add_argument("--cache", type=pathlib.Path, default=ROOT / "_build" / ".jupyter_cache")
    parser.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 4))
    parser.add_argument("--timeout", type=int, default=None, help="per cell, seconds (default: _config.yml's)")
    parser.add_argument("--force", action="store_true", help="run notebooks already in the cache too")
    args = parser.parse_args(argv)

    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    timeout = args.timeout or _timeout()
    cache = get_cache(str(args.cache))
    todo, cached = [], []
    for path in (p.resolve() for p in args.notebooks):
        nb = nbformat.read(path, as_version=4)
        try:
            record = None if args.force else cache.match_cache_notebook(nb)
        except KeyError:
            record = None
        (cached if record is not None else todo).append(path)
    for path in cached:
        print(f"cached  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the kernels: several notebooks share the CPUs
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    failed: dict[str, str] = {}
    start = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(_execute, str(p), timeout) for p in todo]
        for future in concurrent.futures.as_completed(futures):
            path, executed, seconds, trace = future.result()
            name = pathlib.Path(path).relative_to(ROOT) if pathlib.Path(path).is_relative_to(ROOT) else path
            if executed is None:
                failed[str(name)] = trace
                print(f"FAILED  {name} ({seconds:.0f} s)", flush=True)
                continue
            nb = nbformat.reads(executed, as_version=4)
            cache.cache_notebook_bundle(
                CacheBundleIn(nb, path, data={"execution_seconds": seconds}), check_validity=False, overwrite=True
            )
            print(f"passed  {name} ({seconds:.0f} s)", flush=True)
    for name, trace in failed.items():
        print(f"\n===== {name} =====\n{trace}", file=sys.stderr)
    print(f"\nexecuted {len(todo)} notebook(s) in {time.perf_counter() - start:.0f} s into {args.cache}")
    print(f"{len(todo) + len(cached) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
