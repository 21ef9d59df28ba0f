"""Coursework: student versions of the chapters, a check that every exercise has a solution, and the Colab cell.

Command line (run from the repository root)::

    python -m lnfl.coursework student SRC_DIR OUT_DIR [--force] [--colab]
    python -m lnfl.coursework check [SRC_DIR]                 (default: chapters)
    python -m lnfl.coursework add-colab-cell NOTEBOOK... [--url URL]

``student`` writes, for every notebook ``*.ipynb`` in SRC_DIR, a notebook of the same name in OUT_DIR with every
gated solution removed — from the ``{solution-start}`` directive through the ``{solution-end}`` directive,
markdown and code cells alike — a scratch code cell (``# Your solution here``) right after each exercise, every
other cell kept in order, and no outputs.  A markdown cell that holds a solution fence *and* other text (the
end of one solution and the next exercise, say) keeps the other text.  It never writes into SRC_DIR (or below
it), never overwrites a file unless ``--force`` is given, and never changes its sources.  ``--colab`` also
puts :data:`COLAB_CELL` first, so the student notebooks run on Google Colab.

``check`` verifies that every ``{exercise}`` has a ``:label:`` and a gated solution for that label holding at
least one non-empty code cell; it prints one line per problem, naming the notebook and the exercise label, and
exits with status 1 if there is any.
"""

from __future__ import annotations

import argparse
import copy
import pathlib
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import nbformat

__all__ = [
    "COLAB_CELL",
    "COLAB_MARKER",
    "SCRATCH",
    "Exercise",
    "Problem",
    "exercises",
    "check_notebook",
    "check_dir",
    "student_notebook",
    "write_student_versions",
    "repository_url",
    "colab_cell",
    "add_colab_cell",
    "main",
]

#: Source of the scratch cell put after each exercise in a student notebook.
SCRATCH = "# Your solution here\n"

#: First line of the Colab cell; :func:`add_colab_cell` uses it to recognise a cell it already added.
COLAB_MARKER = "# Colab / fresh environments: install lnfl if it is missing"

#: The first cell that makes a chapter run on Google Colab (or any Python without lnfl): it installs lnfl from
#: the book's repository, plus myst-nb (the chapters glue numbers into their prose), *only* when ``import lnfl``
#: fails, and does nothing where lnfl is installed (a local checkout, Binder, the book's own build).
#: ``{url}`` is the repository URL, filled in by :func:`colab_cell` from ``_config.yml``'s ``repository.url``.
COLAB_CELL = f"""{COLAB_MARKER} (does nothing elsewhere).
try:
    import lnfl  # noqa: F401
except ImportError:
    import subprocess
    import sys

    packages = ["git+{{url}}", "myst-nb"]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *packages], check=True)"""

_DIRECTIVE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|:{3,})\{(?P<name>[a-z-]+)\}(?P<arg>.*)$")
_WATCHED = ("exercise", "exercise-start", "exercise-end", "solution", "solution-start", "solution-end")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


@dataclass(frozen=True)
class _Block:
    """A watched directive inside a markdown cell: its name, argument, options and line span [start, end)."""

    name: str
    arg: str
    options: dict[str, str]
    start: int
    end: int


def _blocks(text: str) -> list[_Block]:
    """The exercise/solution directives of a markdown text, with the lines they span (fences included)."""
    lines = text.split("\n")
    out: list[_Block] = []
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if not m:
            i += 1
            continue
        fence = m["fence"]
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                break
            j += 1
        end = min(j + 1, len(lines))
        if m["name"] in _WATCHED:
            options = {}
            for line in lines[i + 1 : j]:
                opt = re.match(r"^\s*:([a-z-]+):\s*(.*)$", line)
                if not opt:
                    break
                options[opt[1]] = opt[2].strip()
            out.append(_Block(m["name"], m["arg"].strip(), options, i, end))
        i = end
    return out


@dataclass
class Exercise:
    """An exercise of a notebook and what :func:`check_notebook` found about its solution."""

    label: str | None
    cell: int
    """Index of the markdown cell holding the exercise."""
    solutions: list[int] = field(default_factory=list)
    """Per gated solution for this label: the number of non-empty code cells inside it."""


@dataclass(frozen=True)
class Problem:
    """A problem found by :func:`check_notebook`."""

    notebook: str
    label: str
    message: str

    def __str__(self) -> str:
        return f"{self.notebook}: exercise {self.label}: {self.message}"


def _events(nb: dict) -> list[tuple[int, _Block | None]]:
    """(cell index, directive) for every watched directive, and (cell index, None) for every code cell, in order."""
    ev: list[tuple[int, _Block | None]] = []
    for idx, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            ev += [(idx, b) for b in _blocks(_source(cell))]
        elif cell["cell_type"] == "code":
            ev.append((idx, None))
    return ev


def exercises(nb: dict, name: str = "notebook") -> tuple[list[Exercise], list[Problem]]:
    """The exercises of a notebook (a dict as read by ``nbformat``/``json``) and the structural problems found:
    unlabelled exercises, solutions without an end (or ends without a start), solutions for unknown labels."""
    found: list[Exercise] = []
    problems: list[Problem] = []
    by_label: dict[str, Exercise] = {}
    open_solution: tuple[str, int] | None = None  # (label, number of code cells so far)
    for idx, block in _events(nb):
        if block is None:
            if open_solution is not None and _source(nb["cells"][idx]).strip():
                open_solution = (open_solution[0], open_solution[1] + 1)
            continue
        if block.name in ("exercise", "exercise-start"):
            label = block.options.get("label")
            ex = Exercise(label, idx)
            found.append(ex)
            if label is None:
                problems.append(Problem(name, f"#{len(found)} (cell {idx})", "has no :label: option"))
            elif label in by_label:
                problems.append(Problem(name, label, "the label is used by two exercises"))
            else:
                by_label[label] = ex
        elif block.name == "solution-start":
            if open_solution is not None:
                problems.append(Problem(name, open_solution[0], "solution-start before the previous solution-end"))
            open_solution = (block.arg, 0)
        elif block.name == "solution-end":
            if open_solution is None:
                problems.append(Problem(name, "?", f"solution-end without a solution-start (cell {idx})"))
                continue
            label, n_code = open_solution
            if label in by_label:
                by_label[label].solutions.append(n_code)
            else:
                problems.append(
                    Problem(name, label or "?", "a solution refers to an exercise label that does not exist")
                )
            open_solution = None
    if open_solution is not None:
        problems.append(Problem(name, open_solution[0], "the solution-start has no solution-end"))
    return found, problems


def check_notebook(nb: dict, name: str = "notebook") -> list[Problem]:
    """Problems with the exercises of one notebook: each exercise needs a ``:label:`` and a gated solution
    (``{solution-start} label`` … ``{solution-end}``) holding at least one non-empty code cell."""
    found, problems = exercises(nb, name)
    for ex in found:
        if ex.label is None:
            continue
        if not ex.solutions:
            problems.append(Problem(name, ex.label, "has no gated solution ({solution-start} … {solution-end})"))
        elif max(ex.solutions) == 0:
            problems.append(Problem(name, ex.label, "its solution holds no code cell, so nothing checks it runs"))
    return problems


def _notebooks(src: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in src.glob("*.ipynb") if p.is_file())


def check_dir(src: str | pathlib.Path) -> list[Problem]:
    """:func:`check_notebook` on every ``*.ipynb`` in ``src``; raises ``ValueError`` if there is none."""
    src = pathlib.Path(src)
    if not src.is_dir():
        raise ValueError(f"SRC_DIR must be a directory of notebooks, got {str(src)!r}")
    paths = _notebooks(src)
    if not paths:
        raise ValueError(f"no notebook (*.ipynb) found in {str(src)!r}")
    problems: list[Problem] = []
    for p in paths:
        problems += check_notebook(nbformat.read(p, as_version=4), p.name)
    return problems


# ----------------------------------------------------------------------------------------------------------
# Student versions
# ----------------------------------------------------------------------------------------------------------


def _clean_code(cell: dict) -> dict:
    cell = copy.deepcopy(cell)
    cell["outputs"] = []
    cell["execution_count"] = None
    for key in ("execution", "ExecuteTime", "collapsed", "scrolled"):
        cell.get("metadata", {}).pop(key, None)
    return cell


def _cell_id(base: str, suffix: str, used: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", f"{base}-{suffix}")[:60] or "cell"
    cid, k = stem, 1
    while cid in used:
        cid, k = f"{stem[:56]}-{k}", k + 1
    used.add(cid)
    return cid


def student_notebook(nb: dict) -> dict:
    """The student version of a notebook (not modified): solutions removed, a scratch code cell after each
    exercise, other cells in order, outputs cleared, the saved widget state dropped."""
    out = copy.deepcopy(nb)
    out["metadata"].pop("widgets", None)
    cells: list[dict] = []
    used: set[str] = set()
    labels: list[str] = []
    in_solution = False
    last_label: str | None = None

    def add(cell: dict, base: str, suffix: str | None) -> None:
        if out.get("nbformat", 4) >= 4 and out.get("nbformat_minor", 0) >= 5:
            cell["id"] = base if suffix is None and base not in used else _cell_id(base, suffix or "x", used)
            used.add(cell["id"])
        else:
            cell.pop("id", None)
        cells.append(cell)

    def scratch(label: str | None) -> None:
        labels.append(label or "?")
        cell = nbformat.v4.new_code_cell(SCRATCH)
        cell["metadata"] = {"tags": ["student-scratch"]}
        add(dict(cell), "scratch", label or str(len(labels)))

    for cell in nb["cells"]:
        base = cell.get("id") or "cell"
        if cell["cell_type"] != "markdown":
            if not in_solution:
                add(_clean_code(cell) if cell["cell_type"] == "code" else copy.deepcopy(cell), base, None)
            continue
        lines = _source(cell).split("\n")
        pieces: list[tuple[list[str], str | None]] = []  # (kept lines, label of an exercise ending the piece)
        keep: list[str] = []
        pos = 0
        for block in _blocks(_source(cell)):
            if not in_solution:
                keep += lines[pos : block.start]
            if block.name == "solution-start" and not in_solution:
                in_solution = True
            elif block.name == "solution-end" and in_solution:
                in_solution = False
            elif not in_solution and block.name in ("exercise", "exercise-end"):
                keep += lines[block.start : block.end]
                label = block.options.get("label") if block.name == "exercise" else last_label
                pieces.append((keep, label or "?"))
                keep = []
            elif not in_solution and block.name == "exercise-start":
                last_label = block.options.get("label")
                keep += lines[block.start : block.end]
            elif not in_solution and block.name != "solution":  # a non-gated {solution} block is dropped
                keep += lines[block.start : block.end]
            pos = block.end
        if not in_solution:
            keep += lines[pos:]
        pieces.append((keep, None))
        for k, (piece, ex_label) in enumerate(pieces):
            text = "\n".join(piece).strip("\n")
            if text.strip():
                md = copy.deepcopy(cell)
                md["source"] = text
                md.get("metadata", {}).pop("scrolled", None)
                add(md, base, None if k == 0 else f"part{k}")
            if ex_label is not None:
                scratch(None if ex_label == "?" else ex_label)
    out["cells"] = cells
    out["metadata"]["lnfl_student"] = {"exercises": labels, "generated_by": "python -m lnfl.coursework student"}
    return out


def _inside(path: pathlib.Path, parent: pathlib.Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


def write_student_versions(
    src: str | pathlib.Path, out: str | pathlib.Path, force: bool = False, colab: bool = False, url: str | None = None
) -> list[pathlib.Path]:
    """Write :func:`student_notebook` of every ``*.ipynb`` in ``src`` to ``out`` (created if needed); return the
    paths written.  Refuses (``ValueError``) to write into ``src`` or below it, and (``FileExistsError``) to
    overwrite an existing file unless ``force``; nothing is written if it refuses.  ``colab=True`` puts the
    Colab cell (:func:`colab_cell` with ``url``, default from ``_config.yml``) first in each notebook."""
    src_p, out_p = pathlib.Path(src), pathlib.Path(out)
    if not src_p.is_dir():
        raise ValueError(f"SRC_DIR must be a directory of notebooks, got {str(src)!r}")
    if _inside(out_p.resolve(), src_p.resolve()):
        raise ValueError(
            f"OUT_DIR {str(out)!r} is SRC_DIR {str(src)!r} or inside it; "
            "student versions must go elsewhere so the sources are never touched"
        )
    paths = _notebooks(src_p)
    if not paths:
        raise ValueError(f"no notebook (*.ipynb) found in {str(src)!r}")
    if out_p.exists() and not out_p.is_dir():
        raise ValueError(f"OUT_DIR {str(out)!r} exists and is not a directory")
    targets = [out_p / p.name for p in paths]
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        names = ", ".join(t.name for t in existing)
        raise FileExistsError(
            f"{len(existing)} file(s) already exist in {str(out)!r} ({names}); use --force to overwrite"
        )
    cell = colab_cell(url) if colab else None
    notebooks = []
    for p in paths:
        nb = student_notebook(nbformat.read(p, as_version=4))
        if cell is not None:
            nb = add_colab_cell(nb, cell=cell)
        notebooks.append(nb)
    out_p.mkdir(parents=True, exist_ok=True)
    for t, nb in zip(targets, notebooks, strict=True):
        nbformat.write(nbformat.from_dict(nb), t)
    return targets


# ----------------------------------------------------------------------------------------------------------
# Colab
# ----------------------------------------------------------------------------------------------------------


def repository_url(config: str | pathlib.Path = "_config.yml") -> str | None:
    """``repository.url`` from the book's ``_config.yml`` (the one place the repository URL lives), or None."""
    import yaml

    path = pathlib.Path(config)
    if not path.is_file():
        return None
    cfg = yaml.safe_load(path.read_text()) or {}
    url = (cfg.get("repository") or {}).get("url")
    return str(url) if url else None


def colab_cell(url: str | None = None, config: str | pathlib.Path = "_config.yml") -> str:
    """:data:`COLAB_CELL` with the repository URL filled in (``url``, else ``repository.url`` of ``config``)."""
    url = url if url is not None else repository_url(config)
    if not url or not re.match(r"^https://\S+$", url):
        raise ValueError(
            f"url must be the book's repository as an https:// URL (set repository.url in _config.yml), got {url!r}"
        )
    return COLAB_CELL.replace("{url}", url.rstrip("/"))


def add_colab_cell(nb: dict, url: str | None = None, cell: str | None = None) -> dict:
    """A copy of ``nb`` whose first cell is the Colab cell (tagged ``remove-cell``, so the book hides it).

    If the notebook already starts with a Colab cell (recognised by :data:`COLAB_MARKER`) that cell is replaced,
    so applying this twice gives one cell.  ``cell`` is the cell's text (default :func:`colab_cell` of ``url``).
    """
    text = cell if cell is not None else colab_cell(url)
    out = copy.deepcopy(nb)
    cells = [c for c in out["cells"] if not (c["cell_type"] == "code" and _source(c).startswith(COLAB_MARKER))]
    new = dict(nbformat.v4.new_code_cell(text))
    new["metadata"] = {"tags": ["remove-cell"]}
    if out.get("nbformat", 4) >= 4 and out.get("nbformat_minor", 0) >= 5:
        new["id"] = "colab-install"
    else:
        new.pop("id", None)
    out["cells"] = [new, *cells]
    return out


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m lnfl.coursework``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m lnfl.coursework", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    st = sub.add_parser("student", help="write student versions (solutions removed) of every notebook in SRC_DIR")
    st.add_argument("src")
    st.add_argument("out")
    st.add_argument("--force", action="store_true", help="overwrite existing files in OUT_DIR")
    st.add_argument("--colab", action="store_true", help="put the Colab install cell first")
    st.add_argument("--url", default=None, help="repository URL for --colab (default: repository.url of _config.yml)")
    ck = sub.add_parser("check", help="check that every exercise has a gated solution with code")
    ck.add_argument("src", nargs="?", default="chapters")
    co = sub.add_parser("add-colab-cell", help="put the Colab install cell first in the given notebooks (in place)")
    co.add_argument("notebooks", nargs="+")
    co.add_argument("--url", default=None, help="repository URL (default: repository.url of _config.yml)")
    args = parser.parse_args(argv)
    try:
        if args.command == "student":
            written = write_student_versions(args.src, args.out, force=args.force, colab=args.colab, url=args.url)
            for path in written:
                print(f"wrote {path}")
            return 0
        if args.command == "check":
            problems = check_dir(args.src)
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                print(f"{len(problems)} problem(s) found", file=sys.stderr)
                return 1
            print(f"every exercise in {args.src} has a gated solution with code")
            return 0
        text = colab_cell(args.url)
        for name in args.notebooks:
            nb = nbformat.read(name, as_version=4)
            nbformat.write(nbformat.from_dict(add_colab_cell(nb, cell=text)), name)
            print(f"added the Colab cell to {name}")
        return 0
    except (ValueError, FileExistsError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
