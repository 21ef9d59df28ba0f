"""Strip what running a notebook leaves behind, so chapters are committed without outputs.

Usage::

    python tools/strip_outputs.py chapters/*.ipynb           # strip in place (rewrites only changed files)
    python tools/strip_outputs.py --check chapters/*.ipynb   # report, change nothing; exit 1 if any has outputs
    python tools/strip_outputs.py nb.ipynb -o clean.ipynb    # write the stripped copy elsewhere

What is cleared: every code cell's ``outputs`` and ``execution_count``, the per-cell metadata that records
a run (``execution`` timings, ``ExecuteTime``, ``collapsed``, ``scrolled``) and the notebook's saved widget
state (``metadata.widgets``).  Sources, tags, cell ids and all other metadata are never touched, and a
notebook that is already clean is not rewritten, so the script is idempotent.  Only the standard library
is used, so it runs as a pre-commit hook with nothing extra installed.
"""

from __future__ import annotations

import argparse
import copy
import json
import pathlib
import sys

#: Cell metadata keys written by running or viewing a notebook, not by its author.
TRANSIENT_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")
#: Notebook metadata keys holding run-time state.
TRANSIENT_NOTEBOOK_METADATA = ("widgets",)


def strip(nb: dict) -> dict:
    """Return a stripped deep copy of the notebook ``nb`` (a dict as read by ``json.load``)."""
    out = copy.deepcopy(nb)
    for cell in out.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        meta = cell.get("metadata", {})
        for key in TRANSIENT_CELL_METADATA:
            meta.pop(key, None)
    for key in TRANSIENT_NOTEBOOK_METADATA:
        out.get("metadata", {}).pop(key, None)
    sources_before = [c.get("source") for c in nb.get("cells", [])]
    sources_after = [c.get("source") for c in out.get("cells", [])]
    assert sources_before == sources_after, "strip() must never change a cell's source"
    return out


def problems(nb: dict) -> list[str]:
    """What in ``nb`` would be stripped, one line each (empty when the notebook is clean)."""
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "code":
            if cell.get("outputs"):
                found.append(f"cell {i}: {len(cell['outputs'])} output(s)")
            if cell.get("execution_count") is not None:
                found.append(f"cell {i}: execution_count {cell['execution_count']}")
        keys = [k for k in TRANSIENT_CELL_METADATA if k in cell.get("metadata", {})]
        if keys:
            found.append(f"cell {i}: transient metadata {keys}")
    keys = [k for k in TRANSIENT_NOTEBOOK_METADATA if k in nb.get("metadata", {})]
    if keys:
        found.append(f"notebook metadata {keys}")
    return found


def dumps(nb: dict) -> str:
    """Serialise as Jupyter and nbformat do (one-space indent, sorted keys, UTF-8, final newline)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path, help=".ipynb files")
    parser.add_argument("--check", action="store_true", help="only report notebooks with outputs; exit 1 if any")
    parser.add_argument("-o", "--output", type=pathlib.Path, help="write the stripped notebook here (one input only)")
    args = parser.parse_args(argv)
    if args.output is not None and len(args.notebooks) != 1:
        parser.error("--output takes exactly one input notebook")
    if args.output is not None and args.check:
        parser.error("--output and --check exclude each other")

    dirty = 0
    for path in args.notebooks:
        text = path.read_text(encoding="utf-8")
        nb = json.loads(text)
        found = problems(nb)
        if args.check:
            if found:
                dirty += 1
                print(f"{path}: not stripped: " + "; ".join(found[:5]) + (" ..." if len(found) > 5 else ""))
            continue
        if args.output is not None:
            args.output.write_text(dumps(strip(nb)), encoding="utf-8")
        elif found:
            path.write_text(dumps(strip(nb)), encoding="utf-8")
            print(f"stripped {path}")
    return 1 if dirty else 0


if __name__ == "__main__":
    sys.exit(main())
