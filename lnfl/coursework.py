"""Coursework: student versions, plain notebooks, otter-grader assignments and the exercise check.

Command line (run from the repository root)::

    python -m lnfl.coursework check [SRC_DIR] [--grading]          (default: chapters)
    python -m lnfl.coursework student SRC_DIR OUT_DIR [--force] [--colab] [--myst]
    python -m lnfl.coursework plain SRC_DIR OUT_DIR [--force]
    python -m lnfl.coursework assign SRC_DIR OUT_DIR [--force] [--check] [--only NAME ...]
    python -m lnfl.coursework grade AUTOGRADER_ZIP NOTEBOOK
    python -m lnfl.coursework guide [SRC_DIR]
    python -m lnfl.coursework add-colab-cell NOTEBOOK... [--url URL]

The exercises are written once, in the chapters (MyST-NB notebooks): an ``{exercise}`` with a ``:label:``,
then a gated solution, ``{solution-start} label`` … ``{solution-end}``.  Inside the solution, code cells tagged
``otter-test`` are the grading tests of a coding exercise (``otter-hidden`` as well: hidden from students), and
a paragraph starting ``**Rubric.**`` is the marking scheme of a written one.

``student``
    For every notebook ``*.ipynb`` in SRC_DIR, a notebook of the same name in OUT_DIR without the solutions
    (from the ``{solution-start}`` directive through ``{solution-end}``, markdown and code alike), with a
    scratch code cell (``# Your solution here``) after each exercise and no outputs.  The Markdown is plain
    (:mod:`lnfl.plain`: boxes as formatted Markdown, glued numbers as values, cross-references as links to
    the book), so it reads well in any Jupyter and on Colab; ``--myst`` keeps the MyST source instead.
``plain``
    The chapters themselves as plain notebooks (solutions kept): what the Colab launch button opens.
``assign``
    For every chapter, otter-grader's master notebook, then ``otter assign`` into ``OUT_DIR/<chapter>/``:
    ``autograder/<chapter>.ipynb`` (solutions), ``autograder/<chapter>-autograder_*.zip`` (for ``otter run``
    and Gradescope) and ``student/<chapter>.ipynb``.  See :func:`master_notebook` for the points rule.
    ``--check`` then grades the solution notebook (full marks required) and the untouched student notebook
    (zero on every coding question required) with ``otter run``.
``check``
    Every ``{exercise}`` has a ``:label:`` and a gated solution holding at least one non-empty code cell, and
    the markers are well formed; ``--grading`` also asks each exercise to be gradable (a public and a hidden
    test, or a rubric).  One line per problem, naming the notebook, the cell or exercise, and what is wrong;
    exit status 1 if there is any.

Nothing is ever lost: every notebook is converted in memory first; a malformed marker (a start without an
end, a nested start, a marker quoted in a code block, ...) or a broken notebook stops the run with a one-line
message before anything is written; output goes to temporary files moved into place only when every notebook
is done; and no output is written into SRC_DIR, through a symbolic link, onto a file with other hard links, or
onto a file that is one of the sources (compared by resolved path and by inode), ``--force`` included.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import nbformat

__all__ = [
    "COLAB_CELL",
    "COLAB_MARKER",
    "SCRATCH",
    "TEST_TAG",
    "HIDDEN_TAG",
    "NotebookError",
    "MarkerError",
    "UnsafeOutputError",
    "POINTS_RULE",
    "DEFAULT_WRITTEN_POINTS",
    "Block",
    "Piece",
    "Solution",
    "Exercise",
    "Problem",
    "Parsed",
    "Question",
    "read_notebook",
    "scan",
    "parse",
    "rubric_points",
    "questions",
    "master_notebook",
    "assign_chapter",
    "write_assignments",
    "grade",
    "check_assignment",
    "exercise_table",
    "exercises",
    "check_notebook",
    "check_dir",
    "student_notebook",
    "write_notebooks",
    "write_student_versions",
    "repository_url",
    "colab_cell",
    "add_colab_cell",
    "main",
]

#: Source of the scratch cell put after each exercise in a student notebook.
SCRATCH = "# Your solution here\n"

#: Tag of a grading test cell (inside a solution); with ``otter-hidden`` too the test is hidden from students.
TEST_TAG = "otter-test"
HIDDEN_TAG = "otter-hidden"

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

    packages = [
        "git+{{url}}",
        "myst-nb",
    ]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", *packages], check=True
    )"""

_WATCHED = ("exercise", "exercise-start", "exercise-end", "solution", "solution-start", "solution-end")
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
_DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[A-Za-z][\w:.+-]*)\}(?P<arg>.*)$")
_MARKER_LINE = re.compile(r"^\s*(`{3,}|~{3,}|:{3,})\s*\{(" + "|".join(_WATCHED) + r")\}")


# ----------------------------------------------------------------------------------------------------------
# Errors and reading notebooks
# ----------------------------------------------------------------------------------------------------------


class NotebookError(ValueError):
    """A notebook that cannot be used (unreadable, not JSON, not a notebook); the message is one line."""


class MarkerError(NotebookError):
    """A malformed or ambiguous exercise/solution marker: names the notebook, the cell and what is wrong."""

    def __init__(self, notebook: str, cell: int | None, message: str):
        self.notebook, self.cell, self.message = notebook, cell, message
        where = f"{notebook}: cell {cell}" if cell is not None else notebook
        super().__init__(f"{where}: {message}")


class UnsafeOutputError(ValueError):
    """An output path that could overwrite a source (a symlink, a hard link, a path inside the sources)."""


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _shape_problem(nb: object) -> str | None:
    """What makes ``nb`` (parsed JSON) unusable as a v4 notebook, or None."""
    if not isinstance(nb, dict):
        return f"the JSON is {type(nb).__name__ if nb is not None else 'null'}, not an object"
    if "cells" not in nb:
        return "no 'cells' list"
    if not isinstance(nb["cells"], list):
        return "'cells' is not a list"
    if not isinstance(nb.get("metadata", {}), dict):
        return "'metadata' is not an object"
    if nb.get("nbformat", 4) != 4:
        return f"nbformat {nb.get('nbformat')!r} (only version 4 is supported)"
    for k, cell in enumerate(nb["cells"]):
        if not isinstance(cell, dict):
            return f"cell {k} is not an object"
        if cell.get("cell_type") not in ("markdown", "code", "raw"):
            what = "has no cell_type" if "cell_type" not in cell else f"has cell_type {cell['cell_type']!r}"
            return f"cell {k} {what}"
        src = cell.get("source", "")
        if not (isinstance(src, str) or (isinstance(src, list) and all(isinstance(s, str) for s in src))):
            return f"cell {k}: 'source' is neither a string nor a list of strings"
        if not isinstance(cell.get("metadata", {}), dict):
            return f"cell {k}: 'metadata' is not an object"
        if cell["cell_type"] == "code" and not isinstance(cell.get("outputs", []), list):
            return f"cell {k}: 'outputs' is not a list"
    return None


def read_notebook(path: str | os.PathLike) -> dict:
    """The notebook at ``path`` as a dict, checked to have the shape of an nbformat-4 notebook.

    Raises :class:`NotebookError` with a one-line message (naming the file) for a file that cannot be read,
    is not JSON, or is JSON but not a notebook (``[]``, ``{}``, ``42``, a cell without ``cell_type``, ...)."""
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise NotebookError(f"{path}: cannot be read: {reason}") from None
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as err:
        raise NotebookError(f"{path}: not a notebook: invalid JSON ({err.msg}, line {err.lineno})") from None
    problem = _shape_problem(nb)
    if problem:
        raise NotebookError(f"{path}: not a notebook: {problem}")
    nb.setdefault("metadata", {})
    nb.setdefault("nbformat", 4)
    nb.setdefault("nbformat_minor", 5)
    for cell in nb["cells"]:
        cell.setdefault("metadata", {})
        cell["source"] = _source(cell)  # one string, as nbformat and nbclient expect in memory
        if cell["cell_type"] == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    return nb


# ----------------------------------------------------------------------------------------------------------
# Markdown: fenced blocks (directives and code blocks)
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A fenced block at the top level of a markdown text: a MyST directive (``name`` set) or a code block
    (``name`` None).  ``start``/``end`` is its line span [start, end) with the fences; ``body`` is the text
    between the options and the closing fence."""

    name: str | None
    arg: str
    options: dict[str, str]
    start: int
    end: int
    body: str
    fence: str
    closed: bool
    info: str = ""


def _closes(line: str, fence: str) -> bool:
    s = line.strip()
    return bool(s) and len(line) - len(line.lstrip(" ")) <= 3 and set(s) == {fence[0]} and len(s) >= len(fence)


def _options(lines: list[str]) -> tuple[dict[str, str], int]:
    """Directive options at the top of a body (``:key: value`` lines or a ``---`` YAML block) and the number
    of lines they take."""
    if lines and lines[0].strip() == "---":
        for k in range(1, len(lines)):
            if lines[k].strip() == "---":
                import yaml

                try:
                    data = yaml.safe_load("\n".join(lines[1:k])) or {}
                except yaml.YAMLError:
                    data = {}
                opts = {str(a): "" if b is None else str(b) for a, b in data.items()} if isinstance(data, dict) else {}
                return opts, k + 1
        return {}, 0
    opts: dict[str, str] = {}
    k = 0
    while k < len(lines):
        m = re.match(r"^\s*:([\w-]+):\s*(.*)$", lines[k])
        if not m:
            break
        opts[m[1]] = m[2].strip()
        k += 1
    return opts, k


def scan(text: str) -> list[Block]:
    """The fenced blocks at the top level of a markdown text, in order (CommonMark fences, MyST directives
    with backtick or colon fences).  An unclosed fence runs to the end of the text (``closed`` False)."""
    lines = text.split("\n")
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m or (m["fence"][0] == "`" and "`" in m["info"]):
            i += 1
            continue
        fence, info = m["fence"], m["info"].strip()
        d = _DIRECTIVE_INFO.match(info)
        if fence[0] == ":" and not d:  # a colon fence is only a directive
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not _closes(lines[j], fence):
            j += 1
        closed = j < len(lines)
        inner = lines[i + 1 : j]
        if d:
            opts, k = _options(inner)
            body = "\n".join(inner[k:])
            out.append(Block(d["name"], d["arg"].strip(), opts, i, j + 1 if closed else j, body, fence, closed, info))
        else:
            out.append(Block(None, "", {}, i, j + 1 if closed else j, "\n".join(inner), fence, closed, info))
        i = j + 1
    return out


def _check_no_nested_markers(block: Block, where: Callable[[str], MarkerError]) -> None:
    """Raise if a watched marker sits inside ``block`` (quoted in a code block, or nested in a directive)."""
    if block.name is None:
        for line in block.body.split("\n"):
            m = _MARKER_LINE.match(line)
            if m:
                raise where(
                    f"a {{{m[2]}}} marker quoted inside a code block; it is ambiguous whether it is a marker "
                    "(move it out of the code block, or write it without the leading fence)"
                )
        return
    for inner in scan(block.body):
        if inner.name in _WATCHED:
            raise where(
                f"a {{{inner.name}}} marker nested inside a {{{block.name}}} directive; exercise and solution "
                "markers must stand at the top level of a markdown cell"
            )
        _check_no_nested_markers(inner, where)


# ----------------------------------------------------------------------------------------------------------
# The structure of a notebook: pieces, exercises, solutions
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Piece:
    """One piece of a notebook in order: a stretch of markdown text (``kind`` "text"), a watched directive
    (``kind`` "marker"), or a whole code or raw cell."""

    kind: str
    cell: int
    text: str = ""
    block: Block | None = None
    solution: str | None = None
    """Label of the solution this piece belongs to (markers included), or None."""


@dataclass
class Solution:
    """A gated solution: its pieces, its code cells (indices), its grading tests and its rubric."""

    label: str
    start_cell: int
    end_cell: int = -1
    pieces: list[int] = field(default_factory=list)
    code: list[int] = field(default_factory=list)
    """Indices of the non-empty code cells that are not tests."""
    tests: list[tuple[int, bool]] = field(default_factory=list)
    """(cell index, hidden) for every ``otter-test`` cell."""
    rubric: str | None = None
    gated: bool = True


@dataclass
class Exercise:
    """An exercise of a notebook and what :func:`parse` found about its solution."""

    label: str | None
    cell: int
    """Index of the markdown cell holding the exercise."""
    solutions: list[int] = field(default_factory=list)
    """Per solution for this label: the number of non-empty code cells inside it (tests not counted)."""
    number: int = 0
    """Position among the notebook's exercises (1, 2, ...): the book shows "Exercise <chapter>.<number>"."""
    title: str = ""
    solution: Solution | None = None

    @property
    def kind(self) -> str:
        """ "coding" (has grading tests), "written" (has a rubric), "coding+written" (both), or "ungraded"."""
        sol = self.solution
        if sol is None:
            return "ungraded"
        coding, written = bool(sol.tests), sol.rubric is not None
        return "coding+written" if coding and written else "coding" if coding else "written" if written else "ungraded"


@dataclass
class Parsed:
    """A notebook read by :func:`parse`."""

    name: str
    nb: dict
    pieces: list[Piece]
    exercises: list[Exercise]


def _tags(cell: dict) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


_RUBRIC = re.compile(r"(?:^|\n)\s*\*\*Rubric\.?\*\*")


def parse(nb: dict, name: str = "notebook") -> Parsed:
    """The pieces and exercises of a notebook (a dict as read by :func:`read_notebook`).

    Raises :class:`MarkerError` (naming the notebook, the cell and the problem) for every malformed or
    ambiguous marker: a solution-start without an end, a nested solution-start, a solution-end without a
    start, a start without a label or for an exercise not defined before it, a second solution for one
    exercise, an exercise inside a solution, an unclosed exercise/solution directive, a marker quoted inside a
    code block or nested inside a directive, a marker in a code cell, a test cell outside a solution, and an
    exercise label used twice."""
    problem = _shape_problem(nb)
    if problem:
        raise NotebookError(f"{name}: not a notebook: {problem}")
    pieces: list[Piece] = []
    for idx, cell in enumerate(nb["cells"]):
        src = _source(cell)
        if cell["cell_type"] != "markdown":
            if cell["cell_type"] == "code":
                for line in src.split("\n"):
                    m = _MARKER_LINE.match(line)
                    if m:
                        raise MarkerError(
                            name, idx, f"a {{{m[2]}}} marker in a code cell (markers go in markdown cells)"
                        )
            pieces.append(Piece(cell["cell_type"], idx))
            continue
        lines = src.split("\n")
        pos = 0
        for block in scan(src):

            def err(msg: str, _idx: int = idx) -> MarkerError:
                return MarkerError(name, _idx, msg)

            _check_no_nested_markers(block, err)
            if block.name not in _WATCHED:
                continue
            if not block.closed:
                raise err(f"the {{{block.name}}} directive opened on line {block.start + 1} is never closed")
            if block.start > pos:
                pieces.append(Piece("text", idx, "\n".join(lines[pos : block.start])))
            pieces.append(Piece("marker", idx, "\n".join(lines[block.start : block.end]), block))
            pos = block.end
        if pos < len(lines) or not pieces or pieces[-1].cell != idx:
            pieces.append(Piece("text", idx, "\n".join(lines[pos:])))

    found: list[Exercise] = []
    by_label: dict[str, Exercise] = {}
    sol: Solution | None = None
    gated_exercise: int | None = None  # cell of an open {exercise-start}
    for k, piece in enumerate(pieces):
        cell = nb["cells"][piece.cell]
        block = piece.block
        if piece.kind == "marker" and block is not None:
            bname = block.name
            if bname in ("exercise", "exercise-start"):
                if sol is not None:
                    raise MarkerError(name, piece.cell, f"an {{{bname}}} inside the solution of {sol.label}")
                if gated_exercise is not None:
                    raise MarkerError(
                        name,
                        piece.cell,
                        f"an {{{bname}}} before the {{exercise-end}} of the exercise-start in cell {gated_exercise}",
                    )
                label = block.options.get("label") or None
                if label is not None and label in by_label:
                    raise MarkerError(name, piece.cell, f"the exercise label {label} is used twice")
                ex = Exercise(label, piece.cell, number=len(found) + 1, title=block.arg)
                found.append(ex)
                if label is not None:
                    by_label[label] = ex
                if bname == "exercise-start":
                    gated_exercise = piece.cell
            elif bname == "exercise-end":
                if gated_exercise is None:
                    raise MarkerError(name, piece.cell, "an {exercise-end} without an {exercise-start}")
                gated_exercise = None
            elif bname in ("solution-start", "solution"):
                if sol is not None:
                    raise MarkerError(
                        name,
                        piece.cell,
                        f"a {{{bname}}} inside the solution of {sol.label} opened in cell {sol.start_cell} "
                        "(nested start, or that solution's {solution-end} is missing)",
                    )
                if gated_exercise is not None:
                    raise MarkerError(
                        name,
                        piece.cell,
                        f"a {{{bname}}} before the {{exercise-end}} of the exercise-start in cell {gated_exercise}",
                    )
                label = block.arg.split()[0] if block.arg.split() else ""
                if not label:
                    raise MarkerError(name, piece.cell, f"a {{{bname}}} without the label of its exercise")
                if label not in by_label:
                    raise MarkerError(
                        name, piece.cell, f"a {{{bname}}} for {label}, which is not an exercise label defined before it"
                    )
                if by_label[label].solution is not None:
                    raise MarkerError(name, piece.cell, f"a second solution for {label}")
                current = Solution(label, piece.cell, gated=bname == "solution-start")
                by_label[label].solution = current
                if bname == "solution-start":
                    sol = current
                else:  # a non-gated {solution} block: all of it in this piece
                    current.end_cell = piece.cell
                    current.pieces.append(k)
                    piece.solution = label
                    if _RUBRIC.search(block.body):
                        current.rubric = block.body[_RUBRIC.search(block.body).start() :].strip()
                    continue
            elif bname == "solution-end":
                if sol is None:
                    raise MarkerError(name, piece.cell, "a {solution-end} without a {solution-start}")
                piece.solution = sol.label
                sol.pieces.append(k)
                sol.end_cell = piece.cell
                sol = None
                continue
        tags = _tags(cell) if piece.kind == "code" else []
        if TEST_TAG in tags and sol is None:
            raise MarkerError(name, piece.cell, f"a code cell tagged {TEST_TAG} outside a solution")
        if sol is not None:
            piece.solution = sol.label
            sol.pieces.append(k)
            if piece.kind == "code":
                if TEST_TAG in tags:
                    sol.tests.append((piece.cell, HIDDEN_TAG in tags))
                elif _source(cell).strip():
                    sol.code.append(piece.cell)
            elif piece.kind == "text" and _RUBRIC.search(piece.text):
                m = _RUBRIC.search(piece.text)
                sol.rubric = piece.text[m.start() :].strip()
    if sol is not None:
        raise MarkerError(name, sol.start_cell, f"the {{solution-start}} of {sol.label} has no {{solution-end}}")
    if gated_exercise is not None:
        raise MarkerError(name, gated_exercise, "an {exercise-start} without an {exercise-end}")
    for ex in found:
        ex.solutions = [len(ex.solution.code)] if ex.solution is not None else []
    return Parsed(name, nb, pieces, found)


@dataclass(frozen=True)
class Problem:
    """A problem found by :func:`check_notebook`."""

    notebook: str
    label: str
    message: str

    def __str__(self) -> str:
        if self.label.startswith("cell "):
            return f"{self.notebook}: {self.label}: {self.message}"
        return f"{self.notebook}: exercise {self.label}: {self.message}"


def _as_problem(err: NotebookError, name: str) -> Problem:
    if isinstance(err, MarkerError):
        return Problem(err.notebook, f"cell {err.cell}" if err.cell is not None else "?", err.message)
    return Problem(name, "cell ?", str(err).split(": ", 1)[-1])


def exercises(nb: dict, name: str = "notebook") -> tuple[list[Exercise], list[Problem]]:
    """The exercises of a notebook and its structural problems (malformed markers become one problem)."""
    try:
        return parse(nb, name).exercises, []
    except NotebookError as err:
        return [], [_as_problem(err, name)]


def check_notebook(nb: dict, name: str = "notebook", grading: bool = False) -> list[Problem]:
    """Problems with the exercises of one notebook: well-formed markers, and for each exercise a ``:label:``
    and a gated solution (``{solution-start} label`` … ``{solution-end}``) holding at least one non-empty code
    cell.  With ``grading``, each exercise must also be gradable: a coding exercise needs at least one public
    and one hidden ``otter-test`` cell, a written one a ``**Rubric.**`` paragraph with points."""
    try:
        parsed = parse(nb, name)
    except NotebookError as err:
        return [_as_problem(err, name)]
    problems: list[Problem] = []
    for ex in parsed.exercises:
        if ex.label is None:
            problems.append(Problem(name, f"#{ex.number} (cell {ex.cell})", "has no :label: option"))
            continue
        if ex.solution is None:
            problems.append(Problem(name, ex.label, "has no gated solution ({solution-start} … {solution-end})"))
        elif not ex.solution.code:
            problems.append(Problem(name, ex.label, "its solution holds no code cell, so nothing checks it runs"))
        if grading and ex.solution is not None:
            sol = ex.solution
            if sol.tests and not any(not h for _, h in sol.tests):
                problems.append(
                    Problem(name, ex.label, f"has hidden tests but no public one (a cell tagged {TEST_TAG} only)")
                )
            if sol.tests and not any(h for _, h in sol.tests):
                problems.append(
                    Problem(name, ex.label, f"has public tests but no hidden one ({TEST_TAG} + {HIDDEN_TAG})")
                )
            if not sol.tests and sol.rubric is None:
                problems.append(
                    Problem(name, ex.label, f"is not gradable yet: no {TEST_TAG} cell and no **Rubric.** paragraph")
                )
            if sol.rubric is not None and rubric_points(sol.rubric) is None:
                problems.append(Problem(name, ex.label, "its **Rubric.** names no points (e.g. '(2 points)')"))
    return problems


def _notebooks(src: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in src.glob("*.ipynb") if p.is_file())


def _source_dir(src: str | os.PathLike) -> tuple[pathlib.Path, list[pathlib.Path]]:
    src_p = pathlib.Path(src)
    if not src_p.is_dir():
        raise ValueError(f"SRC_DIR must be a directory of notebooks, got {str(src)!r}")
    paths = _notebooks(src_p)
    if not paths:
        raise ValueError(f"no notebook (*.ipynb) found in {str(src)!r}")
    return src_p, paths


def check_dir(src: str | pathlib.Path, grading: bool = False) -> list[Problem]:
    """:func:`check_notebook` on every ``*.ipynb`` in ``src``; raises ``ValueError`` if there is none."""
    _, paths = _source_dir(src)
    problems: list[Problem] = []
    for p in paths:
        try:
            nb = read_notebook(p)
        except NotebookError as err:
            problems.append(Problem(p.name, "cell ?", str(err).split(": ", 1)[-1]))
            continue
        problems += check_notebook(nb, p.name, grading=grading)
    return problems


# ----------------------------------------------------------------------------------------------------------
# Points
# ----------------------------------------------------------------------------------------------------------

#: Points of a written exercise whose rubric names none (``check --grading`` reports it).
DEFAULT_WRITTEN_POINTS = 2

_POINTS = re.compile(r"(\d+(?:\.\d+)?)\s*(?:points?|pts?\b|marks?)", re.IGNORECASE)


def rubric_points(rubric: str) -> float | None:
    """The points a ``**Rubric.**`` paragraph names: a stated total ("4 points in total", "total: 4 points")
    if there is one, else the sum of every "N point(s)" it lists; None if it names none."""
    found = list(_POINTS.finditer(rubric))
    if not found:
        return None
    for m in found:
        before, after = rubric[max(0, m.start() - 20) : m.start()].lower(), rubric[m.end() : m.end() + 12].lower()
        if "total" in before or "in total" in after or "total" in after[:8]:
            return _num(m[1])
    return _num(sum(float(m[1]) for m in found))


def _num(x: float | str) -> float | int:
    x = float(x)
    return int(x) if x.is_integer() else x


# ----------------------------------------------------------------------------------------------------------
# Emitting notebooks: student versions, plain chapters, otter master notebooks share one walk
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


class _Emitter:
    """Collects output cells with unique ids (ids of the source kept where possible)."""

    def __init__(self, nb: dict):
        self.with_ids = nb.get("nbformat", 4) >= 4 and nb.get("nbformat_minor", 0) >= 5
        self.cells: list[dict] = []
        self.used: set[str] = set()

    def add(self, cell: dict, base: str = "cell", suffix: str | None = None) -> dict:
        if self.with_ids:
            cell["id"] = base if suffix is None and base not in self.used else _cell_id(base, suffix or "x", self.used)
            self.used.add(cell["id"])
        else:
            cell.pop("id", None)
        self.cells.append(cell)
        return cell

    def markdown(self, text: str, like: dict | None = None, base: str = "cell", suffix: str | None = None) -> None:
        if not text.strip():
            return
        md = (
            copy.deepcopy(like)
            if like is not None and like.get("cell_type") == "markdown"
            else dict(nbformat.v4.new_markdown_cell())
        )
        md["source"] = text
        md.pop("attachments", None)
        md.setdefault("metadata", {}).pop("scrolled", None)
        self.add(md, base, suffix)

    def code(self, source: str, tags: list[str] | None, base: str, suffix: str | None = None) -> None:
        cell = dict(nbformat.v4.new_code_cell(source))
        cell["metadata"] = {"tags": tags} if tags else {}
        self.add(cell, base, suffix)

    def raw(self, text: str, base: str, suffix: str | None = None) -> None:
        cell = dict(nbformat.v4.new_raw_cell(text))
        self.add(cell, base, suffix)


#: A renderer turns a markdown piece (MyST) into the Markdown to emit; ``None`` keeps the MyST source.
Renderer = Callable[[Piece], str]


def _walk(
    parsed: Parsed,
    render: Renderer | None,
    keep_solutions: bool,
    scratch: bool,
    drop_tests: bool = True,
    code_cell: Callable[[dict], dict] = _clean_code,
) -> _Emitter:
    """The shared walk: every piece in order, markdown pieces of one source cell joined into one cell (split
    where a scratch cell goes in), solutions kept or dropped."""
    nb = parsed.nb
    em = _Emitter(nb)
    buf: list[str] = []
    buf_cell: int | None = None
    part = 0

    def flush() -> None:
        nonlocal buf, part
        if buf_cell is not None:
            cell = nb["cells"][buf_cell]
            em.markdown(
                "\n".join(buf).strip("\n"), cell, cell.get("id") or "cell", None if part == 0 else f"part{part}"
            )
            part += 1
        buf = []

    for piece in parsed.pieces:
        cell = nb["cells"][piece.cell]
        if piece.cell != buf_cell:
            flush()
            buf_cell, part = (piece.cell, 0) if piece.kind in ("text", "marker") else (None, 0)
        if piece.solution is not None and not keep_solutions:
            continue
        if piece.kind in ("code", "raw"):
            if piece.kind == "code" and drop_tests and TEST_TAG in _tags(cell):
                continue
            em.add(code_cell(cell) if piece.kind == "code" else copy.deepcopy(cell), cell.get("id") or "cell")
            continue
        block = piece.block
        text = render(piece) if render is not None else piece.text
        if block is not None and block.name == "solution" and not keep_solutions:
            continue
        buf.append(text)
        ends_exercise = block is not None and (block.name == "exercise" or block.name == "exercise-end")
        if ends_exercise and scratch:
            flush()
            label = block.options.get("label") if block.name == "exercise" else None
            if block.name == "exercise-end":
                starts = [e for e in parsed.exercises if e.cell <= piece.cell]
                label = starts[-1].label if starts else None
            em.code(SCRATCH, ["student-scratch"], "scratch", label or str(len(em.cells)))
    flush()
    return em


def student_notebook(nb: dict, render: Renderer | None = None, name: str = "notebook") -> dict:
    """The student version of a notebook (not modified): solutions removed, a scratch code cell after each
    exercise, other cells in order, outputs cleared, the saved widget state dropped.  ``render`` converts each
    markdown piece (see :meth:`lnfl.plain.Converter.renderer`); by default the MyST source is kept.
    Raises :class:`MarkerError` for malformed markers (nothing is guessed)."""
    parsed = parse(nb, name)
    em = _walk(parsed, render, keep_solutions=False, scratch=True)
    out = copy.deepcopy({k: v for k, v in nb.items() if k != "cells"})
    out["metadata"].pop("widgets", None)
    out["cells"] = em.cells
    labels = [e.label or "?" for e in parsed.exercises]
    out["metadata"]["lnfl_student"] = {"exercises": labels, "generated_by": "python -m lnfl.coursework student"}
    return out


# ----------------------------------------------------------------------------------------------------------
# Writing without ever losing work
# ----------------------------------------------------------------------------------------------------------


def _inside(path: pathlib.Path, parent: pathlib.Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


def _ident(path: pathlib.Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _guard_out_dir(src: pathlib.Path, out: pathlib.Path) -> None:
    """Refuse an output folder that is, or lies inside, the source folder (by resolved path or by inode)."""
    src_real, out_real = src.resolve(), out.resolve()
    if _inside(out_real, src_real):
        raise UnsafeOutputError(
            f"OUT_DIR {str(out)!r} is SRC_DIR {str(src)!r} or inside it (resolved: {out_real}); "
            "output must go elsewhere so the sources are never touched"
        )
    src_id = _ident(src)
    probe = out
    while True:  # the output folder or any existing ancestor being the source folder itself (a bind mount)
        if probe.exists() and _ident(probe) == src_id:
            raise UnsafeOutputError(f"OUT_DIR {str(out)!r} is the source folder {str(src)!r} under another name")
        if probe.parent == probe:
            break
        probe = probe.parent
    if out.exists() and not out.is_dir():
        raise UnsafeOutputError(f"OUT_DIR {str(out)!r} exists and is not a directory")


def _guard_target(target: pathlib.Path, src_real: pathlib.Path, source_ids: set, force: bool) -> bool:
    """Check one output file; return True if it exists (and may be replaced with ``force``)."""
    if target.is_symlink():
        raise UnsafeOutputError(
            f"{target} is a symbolic link (to {os.readlink(target)}); refusing to write through it, even with --force"
        )
    if _inside(target.resolve(), src_real):
        raise UnsafeOutputError(f"{target} resolves to {target.resolve()}, inside the sources")
    if not target.exists():
        return False
    if not target.is_file():
        raise UnsafeOutputError(f"{target} exists and is not a regular file")
    if _ident(target) in source_ids:
        raise UnsafeOutputError(f"{target} is one of the source notebooks (same inode); refusing, even with --force")
    if target.stat().st_nlink > 1:
        raise UnsafeOutputError(
            f"{target} has {target.stat().st_nlink} hard links (another name may be a source); refusing, even with --force"
        )
    return True


def write_notebooks(
    out: str | os.PathLike,
    notebooks: dict[str, dict],
    src: str | os.PathLike,
    force: bool = False,
) -> list[pathlib.Path]:
    """Write ``{file name: notebook}`` into the folder ``out``, safely: the targets are checked first (see
    the module docstring), each notebook is validated and written to a temporary file in ``out``, and the
    temporary files are moved into place only when all of them are written.  On any error nothing is
    replaced and no temporary file is left."""
    src_p, out_p = pathlib.Path(src), pathlib.Path(out)
    _guard_out_dir(src_p, out_p)
    src_real = src_p.resolve()
    source_ids = {_ident(p) for p in src_p.iterdir() if p.is_file()} | {_ident(src_p)}
    source_ids.discard(None)
    targets = {name: out_p / name for name in notebooks}
    existing = [t for t in targets.values() if _guard_target(t, src_real, source_ids, force)]
    if existing and not force:
        names = ", ".join(t.name for t in existing)
        raise FileExistsError(
            f"{len(existing)} file(s) already exist in {str(out)!r} ({names}); use --force to overwrite"
        )
    texts = {}
    for name, nb in notebooks.items():
        node = nbformat.from_dict(nb)
        try:
            nbformat.validate(node)
        except nbformat.ValidationError as err:
            raise NotebookError(f"{name}: the generated notebook is invalid: {str(err).splitlines()[0]}") from None
        texts[name] = nbformat.writes(node) + "\n"
    created = not out_p.exists()
    out_p.mkdir(parents=True, exist_ok=True)
    temps: dict[str, pathlib.Path] = {}
    backups: dict[str, pathlib.Path] = {}
    moved: list[str] = []
    try:
        for name, text in texts.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_p)
            temps[name] = pathlib.Path(tmp)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        for name in temps:  # the last checks, just before the moves
            _guard_target(targets[name], src_real, source_ids, force=True)
        for name, tmp in temps.items():  # move aside what is replaced, so that a failure can be undone
            if targets[name].exists():
                backups[name] = tmp.with_suffix(".bak")
                os.replace(targets[name], backups[name])
            os.replace(tmp, targets[name])
            moved.append(name)
    except BaseException:
        for name in reversed(moved):  # undo: put every replaced file back
            with contextlib.suppress(OSError):
                if name in backups:
                    os.replace(backups[name], targets[name])
                else:
                    targets[name].unlink()
        for name, bak in backups.items():
            if name not in moved and bak.exists():
                with contextlib.suppress(OSError):
                    os.replace(bak, targets[name])
        for tmp in temps.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        if created:
            with contextlib.suppress(OSError):
                out_p.rmdir()
        raise
    for bak in backups.values():
        with contextlib.suppress(OSError):
            bak.unlink()
    return list(targets.values())


def _read_all(paths: Iterable[pathlib.Path]) -> dict[pathlib.Path, dict]:
    return {p: read_notebook(p) for p in paths}


def write_student_versions(
    src: str | pathlib.Path,
    out: str | pathlib.Path,
    force: bool = False,
    colab: bool = False,
    url: str | None = None,
    myst: bool = False,
    glue: Callable[[pathlib.Path], dict] | None = None,
    root: str | pathlib.Path | None = None,
) -> list[pathlib.Path]:
    """Write :func:`student_notebook` of every ``*.ipynb`` in ``src`` to ``out`` (created if needed); return the
    paths written.  The Markdown is converted to plain Markdown (:mod:`lnfl.plain`; ``glue`` maps a chapter
    path to its glued values, default: from the executed chapter) unless ``myst``.  Refuses (``ValueError``)
    to write into ``src`` or below it, through a link, or (``FileExistsError``) over an existing file unless
    ``force``; nothing is written if it refuses or if any notebook fails.  ``colab=True`` puts the Colab cell
    (:func:`colab_cell` with ``url``, default from ``_config.yml``) first in each notebook."""
    src_p, paths = _source_dir(src)
    _guard_out_dir(src_p, pathlib.Path(out))
    sources = _read_all(paths)
    cell = colab_cell(url) if colab else None
    converter = None
    if not myst:
        from lnfl import plain

        root_p = pathlib.Path(root) if root is not None else src_p.resolve().parent
        converter = plain.Converter.for_book(root_p, glue=glue, extra=paths)
    notebooks = {}
    for p, nb in sources.items():
        render = converter.renderer(p, nb) if converter is not None else None
        st = student_notebook(nb, render=render, name=p.name)
        if converter is not None:
            st = converter.finish(st)
        if cell is not None:
            st = add_colab_cell(st, cell=cell)
        notebooks[p.name] = st
    return write_notebooks(out, notebooks, src_p, force=force)


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


def _replace_in_place(path: pathlib.Path, nb: dict) -> None:
    """Rewrite one notebook in place atomically (temporary file + rename), never through a link."""
    if path.is_symlink():
        raise UnsafeOutputError(f"{path} is a symbolic link; refusing to rewrite it in place")
    if path.stat().st_nlink > 1:
        raise UnsafeOutputError(f"{path} has other hard links; refusing to rewrite it in place")
    node = nbformat.from_dict(nb)
    nbformat.validate(node)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(nbformat.writes(node) + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------------------------------------
# otter-grader: master notebooks, otter assign, otter run
# ----------------------------------------------------------------------------------------------------------

#: Points rule (documented in the instructors' guide): a coding exercise is worth one point per grading test
#: cell (public and hidden alike); a written one the points its ``**Rubric.**`` names
#: (:func:`rubric_points`), :data:`DEFAULT_WRITTEN_POINTS` if it names none; an exercise with both is two
#: questions, ``<label>-written`` (manually graded) and ``<label>`` (autograded).
POINTS_RULE = (
    "coding: 1 point per grading test (public or hidden); written: the points its rubric names "
    f"(default {DEFAULT_WRITTEN_POINTS}); both: two questions, <label>-written and <label>"
)


@dataclass
class Question:
    """One otter question made from an exercise."""

    name: str
    label: str
    number: str
    manual: bool
    points: float
    public: int = 0
    hidden: int = 0
    rubric: str | None = None


def questions(parsed: Parsed, number: Callable[[Exercise], str] = lambda e: str(e.number)) -> list[Question]:
    """The otter questions of a parsed chapter, with their points (see :data:`POINTS_RULE`)."""
    out = []
    for ex in parsed.exercises:
        if ex.label is None or ex.solution is None:
            continue
        sol = ex.solution
        num = number(ex)
        public = sum(1 for _, h in sol.tests if not h)
        hidden = len(sol.tests) - public
        written_pts = rubric_points(sol.rubric) if sol.rubric is not None else None
        if sol.rubric is not None or not sol.tests:
            pts = written_pts if written_pts is not None else DEFAULT_WRITTEN_POINTS
            out.append(
                Question(f"{ex.label}-written" if sol.tests else ex.label, ex.label, num, True, pts, rubric=sol.rubric)
            )
        if sol.tests:
            out.append(Question(ex.label, ex.label, num, False, len(sol.tests), public, hidden))
    return out


def _wrap_solution(code: str) -> str:
    return f"# BEGIN SOLUTION\n{code.rstrip()}\n# END SOLUTION"


def _test_source(code: str, hidden: bool) -> str:
    head = (
        '""" # BEGIN TEST CONFIG\nhidden: true\npoints: 1\n""" # END TEST CONFIG\n'
        if hidden
        else '""" # BEGIN TEST CONFIG\npoints: 1\n""" # END TEST CONFIG\n'
    )
    return head + code.strip()


def master_notebook(
    parsed: Parsed,
    render: Renderer | None = None,
    name: str | None = None,
    finish: Callable[[dict], dict] | None = None,
) -> dict:
    """otter-grader's master notebook for one chapter (see otter's "Otter Assign" notebook format).

    Every cell of the chapter stays in order; each exercise becomes a question block: ``# BEGIN QUESTION``
    (name = the exercise label, points by :data:`POINTS_RULE`), the exercise as the prompt, the solution
    between ``# BEGIN SOLUTION``/``# END SOLUTION`` (solution code is wrapped so that students get ``...``),
    the ``otter-test`` cells between ``# BEGIN TESTS``/``# END TESTS`` (``otter-hidden`` ones hidden).  A
    written exercise is a manually graded question whose solution (with its rubric) only instructors see."""
    nb = parsed.nb
    stem = name or pathlib.Path(parsed.name).stem
    em = _Emitter(nb)
    config = {
        "name": stem,
        "requirements": "requirements.txt",
        "run_tests": False,
        "init_cell": True,
        "check_all_cell": True,
        "export_cell": {"pdf": False, "run_tests": True},
        "generate": {"pdf": False, "filtering": False, "show_stdout": True},
        "show_question_points": True,
        "solutions_pdf": False,
        "python_version": "3.11",
        "tests": {"files": False},
    }
    import yaml

    em.raw("# ASSIGNMENT CONFIG\n" + yaml.safe_dump(config, sort_keys=False).strip(), "assignment-config")
    text = (lambda p: render(p)) if render is not None else (lambda p: p.text)
    qs = {q.name: q for q in questions(parsed)}
    cells = nb["cells"]

    def md(piece: Piece, suffix: str | None = None) -> None:
        cell = cells[piece.cell]
        em.markdown(text(piece).strip("\n"), cell, cell.get("id") or "cell", suffix or f"p{parsed.pieces.index(piece)}")

    def code(piece: Piece, wrap: bool) -> None:
        cell = _clean_code(cells[piece.cell])
        if wrap and _source(cell).strip():
            cell["source"] = _wrap_solution(_source(cell))
        em.add(cell, cell.get("id") or "cell")

    def begin(q: Question) -> None:
        conf = {"name": q.name, "points": q.points}
        if q.manual:
            conf["manual"] = True
        em.raw("# BEGIN QUESTION\n" + yaml.safe_dump(conf, sort_keys=False).strip(), f"q-{q.name}")

    k = 0
    pieces = parsed.pieces
    while k < len(pieces):
        piece = pieces[k]
        block = piece.block
        if piece.kind == "marker" and block is not None and block.name in ("exercise", "exercise-start"):
            ex = next(
                (e for e in parsed.exercises if e.cell == piece.cell and (e.label == block.options.get("label"))), None
            )
            sol = ex.solution if ex is not None else None
            if ex is None or sol is None or not sol.gated:
                if piece.solution is None:
                    md(piece)
                k += 1
                continue
            # the prompt: the exercise and everything up to its solution
            prompt: list[Piece] = [piece]
            k += 1
            while k < len(pieces) and pieces[k].solution != ex.label:
                prompt.append(pieces[k])
                k += 1
            region: list[Piece] = []
            while k < len(pieces) and pieces[k].solution == ex.label:
                region.append(pieces[k])
                k += 1
            written = qs.get(f"{ex.label}-written") or (
                qs.get(ex.label) if qs.get(ex.label) and qs[ex.label].manual else None
            )
            coding = qs.get(ex.label) if qs.get(ex.label) is not None and not qs[ex.label].manual else None

            def emit_prompt(prompt: list[Piece] = prompt) -> None:
                for p in prompt:
                    if p.kind in ("text", "marker"):
                        md(p)
                    elif p.kind == "code":
                        code(p, wrap=False)
                    else:
                        em.add(copy.deepcopy(cells[p.cell]), cells[p.cell].get("id") or "cell")

            tests = [p for p in region if p.kind == "code" and TEST_TAG in _tags(cells[p.cell])]
            if written is not None:
                begin(written)
                emit_prompt()
                em.raw("# BEGIN SOLUTION", f"s-{written.name}")
                for p in region:
                    if p.kind in ("text", "marker"):
                        md(p)
                    elif p.kind == "code" and coding is None and p not in tests:
                        code(p, wrap=True)
                em.raw("# END SOLUTION", f"e-{written.name}")
                em.raw("# END QUESTION", f"eq-{written.name}")
            if coding is not None:
                begin(coding)
                if written is None:
                    emit_prompt()
                else:
                    em.markdown(
                        f"*{_exercise_word(ex, render)}, the code*: define the names the exercise asks for, "
                        f'then run `grader.check("{coding.name}")`.',
                        None,
                        f"code-prompt-{ex.label}",
                    )
                em.raw("# BEGIN SOLUTION", f"s-{coding.name}")
                for p in region:
                    if p.kind in ("text", "marker") and written is None:
                        md(p)
                    elif p.kind == "code" and p not in tests:
                        code(p, wrap=True)
                em.raw("# END SOLUTION", f"e-{coding.name}")
                em.raw("# BEGIN TESTS", f"t-{coding.name}")
                for p in tests:
                    cell = cells[p.cell]
                    test = dict(nbformat.v4.new_code_cell(_test_source(_source(cell), HIDDEN_TAG in _tags(cell))))
                    em.add(test, cell.get("id") or "test")
                em.raw("# END TESTS", f"et-{coding.name}")
                em.raw("# END QUESTION", f"eq-{coding.name}")
            continue
        if piece.solution is not None:  # a solution without its exercise right before it: instructors only
            k += 1
            continue
        if piece.kind in ("text", "marker"):
            md(piece)
        elif piece.kind == "code":
            if TEST_TAG not in _tags(cells[piece.cell]):
                code(piece, wrap=False)
        else:
            em.add(copy.deepcopy(cells[piece.cell]), cells[piece.cell].get("id") or "cell")
        k += 1
    out = copy.deepcopy({key: v for key, v in nb.items() if key != "cells"})
    out["metadata"].pop("widgets", None)
    out["metadata"].setdefault(
        "kernelspec", {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    )
    out["metadata"].setdefault("language_info", {"name": "python"})
    out["cells"] = em.cells
    return finish(out) if finish is not None else out


def _exercise_word(ex: Exercise, render: Renderer | None) -> str:
    """ "Exercise 5.2" as the page shows it (asked of the renderer through a solution-start marker)."""
    if render is None:
        return f"Exercise {ex.number}"
    fake = Piece("marker", ex.cell, "", Block("solution-start", ex.label or "", {}, 0, 2, "", "```", True))
    head = render(fake)
    m = re.search(r"Solution to (Exercise [\d.]+)", head)
    return m[1] if m else f"Exercise {ex.number}"


def _requirements(root: pathlib.Path) -> str:
    """The autograder's requirements: binder/requirements.txt (CPU torch and the book's pins) and lnfl."""
    lines = []
    binder = root / "binder" / "requirements.txt"
    if binder.is_file():
        lines += [ln for ln in binder.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    url = repository_url(root / "_config.yml")
    if url:
        lines.append(f"lnfl @ git+{url.rstrip('/')}")
    return "\n".join(lines) + "\n"


def _otter(*args: str, cwd: pathlib.Path | None = None, timeout: int = 3600) -> subprocess.CompletedProcess:
    exe = pathlib.Path(sys.executable).parent / "otter"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "otter"]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def _tail(proc: subprocess.CompletedProcess, n: int = 15) -> str:
    return "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-n:])


def assign_chapter(path: pathlib.Path, nb: dict, dest: pathlib.Path, converter, root: pathlib.Path) -> dict:
    """Write the master notebook of one chapter into ``dest/master/`` and run ``otter assign`` into ``dest``;
    return a summary (questions, points, paths)."""
    stem = path.stem
    parsed = parse(nb, path.name)
    render = converter.renderer(path, nb) if converter is not None else None
    finish = converter.finish if converter is not None else None
    master = master_notebook(parsed, render, stem, finish=finish)
    mdir = dest / "master"
    mdir.mkdir(parents=True)
    nbformat.write(nbformat.from_dict(master), mdir / f"{stem}.ipynb")
    (mdir / "requirements.txt").write_text(_requirements(root))
    # absolute paths: otter runs in the master's folder, and OUT_DIR may be relative (`make assignments`)
    proc = _otter("assign", "--no-pdfs", str((mdir / f"{stem}.ipynb").resolve()), str(dest.resolve()), cwd=mdir)
    if proc.returncode != 0:
        raise NotebookError(f"{path.name}: otter assign failed: {_tail(proc, 3)}")
    zips = sorted((dest / "autograder").glob(f"{stem}-autograder_*.zip"))
    for p in (dest / "autograder" / f"{stem}.ipynb", dest / "student" / f"{stem}.ipynb"):
        if not p.is_file():
            raise NotebookError(f"{path.name}: otter assign did not write {p.relative_to(dest)}")
    if not zips:
        raise NotebookError(f"{path.name}: otter assign wrote no autograder zip")
    number = (lambda e: converter.index.labels[e.label].number) if converter is not None else (lambda e: str(e.number))
    qs = questions(
        parsed,
        lambda e: number(e) if e.label in getattr(getattr(converter, "index", None), "labels", {}) else str(e.number),
    )
    return {"chapter": stem, "questions": [q.__dict__ for q in qs], "zip": zips[-1].name}


def grade(
    zip_path: str | os.PathLike, notebook: str | os.PathLike, timeout: int = 3600
) -> dict[str, tuple[float, float]]:
    """``otter run`` (no Docker, no network) of one submission against an autograder zip:
    ``{question: (score, max score)}`` for the autograded questions (empty if the zip has none)."""
    import zipfile

    with zipfile.ZipFile(zip_path) as zf:
        if not any(n.startswith("tests/") for n in zf.namelist()):
            return {}
    with tempfile.TemporaryDirectory(prefix="lnfl-otter-run-") as tmp:
        proc = _otter(
            "run",
            "--no-logo",
            "-a",
            str(pathlib.Path(zip_path).resolve()),
            "-o",
            tmp,
            str(pathlib.Path(notebook).resolve()),
            cwd=pathlib.Path(tmp),
            timeout=timeout,
        )
        results = pathlib.Path(tmp) / "results.json"
        if not results.is_file():
            raise NotebookError(f"{notebook}: otter run wrote no results: {_tail(proc, 5)}")
        data = json.loads(results.read_text())
    scores = {}
    for t in data.get("tests", []):
        if "max_score" in t and t.get("name") != "Public Tests":
            scores[t["name"]] = (float(t.get("score") or 0.0), float(t["max_score"]))
    return scores


def check_assignment(chapter_dir: pathlib.Path, summary: dict | None = None) -> list[str]:
    """Grade the solution notebook (every autograded question must get full marks) and the untouched student
    notebook (every coding question must get zero) of one ``otter assign`` output; return the problems."""
    stem = chapter_dir.name
    zips = sorted((chapter_dir / "autograder").glob(f"{stem}-autograder_*.zip"))
    if not zips:
        return [f"{stem}: no autograder zip"]
    problems = []
    import zipfile

    with zipfile.ZipFile(zips[-1]) as zf:
        if not any(n.startswith("tests/") for n in zf.namelist()):  # no autograded question: nothing to run
            if summary is not None:
                summary["solution_scores"], summary["student_scores"] = {}, {}
            return []
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:  # the two runs are independent processes
        sol_f = pool.submit(grade, zips[-1], chapter_dir / "autograder" / f"{stem}.ipynb")
        st_f = pool.submit(grade, zips[-1], chapter_dir / "student" / f"{stem}.ipynb")
        sol, st = sol_f.result(), st_f.result()
    for q, (score, most) in sol.items():
        if score < most:
            problems.append(f"{stem}: the solution notebook scores {score:g}/{most:g} on {q}")
    for q, (score, most) in st.items():
        if score > 0:
            problems.append(f"{stem}: the untouched student notebook scores {score:g}/{most:g} on {q}")
    if summary is not None:
        summary["solution_scores"] = sol
        summary["student_scores"] = st
    return problems


def write_assignments(
    src: str | os.PathLike,
    out: str | os.PathLike,
    force: bool = False,
    check: bool = False,
    only: Sequence[str] | None = None,
    glue: Callable[[pathlib.Path], dict] | None = None,
    root: str | os.PathLike | None = None,
    myst: bool = False,
    jobs: int = 1,
    log: Callable[[str], None] = lambda s: None,
) -> list[dict]:
    """``assign`` for every chapter in ``src`` (or those named in ``only``): build every chapter's folder in a
    temporary folder inside ``out``, optionally grade it (``check``), and move the folders into place only when
    all are done.  Existing chapter folders are replaced only with ``force``, never through a link."""
    src_p, paths = _source_dir(src)
    out_p = pathlib.Path(out)
    if only:
        wanted = {pathlib.Path(n).stem for n in only}
        paths = [p for p in paths if p.stem in wanted]
        missing = wanted - {p.stem for p in paths}
        if missing:
            raise ValueError(f"no chapter named {', '.join(sorted(missing))} in {str(src)!r}")
    _guard_out_dir(src_p, out_p)
    src_real = src_p.resolve()
    targets = {p.stem: out_p / p.stem for p in paths}
    for t in targets.values():
        if t.is_symlink():
            raise UnsafeOutputError(f"{t} is a symbolic link; refusing to replace it, even with --force")
        if _inside(t.resolve(), src_real):
            raise UnsafeOutputError(f"{t} resolves inside the sources")
    existing = [t for t in targets.values() if t.exists()]
    if existing and not force:
        raise FileExistsError(
            f"{len(existing)} folder(s) already exist in {str(out)!r} ({', '.join(t.name for t in existing)}); use --force"
        )
    sources = _read_all(paths)
    for p, nb in sources.items():  # every marker checked before any work
        parse(nb, p.name)
    root_p = pathlib.Path(root) if root is not None else src_p.resolve().parent
    converter = None
    if not myst:
        from lnfl import plain

        converter = plain.Converter(plain.BookIndex(root_p, extra=paths), glue=glue)
    created = not out_p.exists()
    out_p.mkdir(parents=True, exist_ok=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix=".assign-", dir=out_p))
    summaries: list[dict] = []
    try:
        for p, nb in sources.items():
            log(f"assign {p.name}")
            summaries.append(assign_chapter(p, nb, work / p.stem, converter, root_p))
        if check:
            from concurrent.futures import ThreadPoolExecutor

            def one(s: dict) -> list[str]:
                log(f"otter run {s['chapter']} (solution and student notebooks)")
                return check_assignment(work / s["chapter"], s)

            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                problems = [x for found in pool.map(one, summaries) for x in found]
            if problems:
                raise NotebookError("the otter run check failed: " + "; ".join(problems))
        for s in summaries:  # all done: move into place
            target = targets[s["chapter"]]
            if target.is_symlink():
                raise UnsafeOutputError(f"{target} became a symbolic link; refusing")
            old = None
            if target.exists():
                old = work / f".old-{s['chapter']}"
                os.replace(target, old)
            os.replace(work / s["chapter"], target)
            if old is not None:
                shutil.rmtree(old)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if created and not any(out_p.iterdir()):
            out_p.rmdir()
    return summaries


# ----------------------------------------------------------------------------------------------------------
# The instructors' table
# ----------------------------------------------------------------------------------------------------------


def exercise_table(src: str | os.PathLike = "chapters", myst_refs: bool = True) -> str:
    """A Markdown table of every exercise of the chapters in ``src``: the exercise (a ``{numref}``, so the
    page shows its number, e.g. Exercise 5.2), how it is graded, its points and its rubric line."""
    rows = [
        "| Exercise | Graded as | Points | Tests (public + hidden) | Rubric (written part) |",
        "| --- | --- | --- | --- | --- |",
    ]
    _, paths = _source_dir(src)
    for p in paths:
        parsed = parse(read_notebook(p), p.name)
        qs = questions(parsed)
        for ex in parsed.exercises:
            if ex.label is None:
                continue
            mine = [q for q in qs if q.label == ex.label]
            coding = next((q for q in mine if not q.manual), None)
            written = next((q for q in mine if q.manual), None)
            kind = {
                "coding": "autograded",
                "written": "written (manual)",
                "coding+written": "written + autograded",
            }.get(ex.kind, "manual (no rubric yet)")
            points = (
                " + ".join(f"{q.points:g}" for q in ([written] if written else []) + ([coding] if coding else []))
                or "–"
            )
            tests = f"{coding.public} + {coding.hidden}" if coding else "–"
            rubric = "–"
            if written is not None:
                rubric = written.rubric or "no rubric yet: the solution is the model answer"
                rubric = re.sub(r"^\s*\*\*Rubric\.?\*\*\s*", "", rubric)
                rubric = re.sub(r"\{glue:?[\w]*\}`[^`]*`", "(see the chapter)", rubric)
                rubric = " ".join(rubric.replace("|", "\\|").split())
            ref = f"{{numref}}`{ex.label}`" if myst_refs else f"`{ex.label}`"
            rows.append(f"| {ref} | {kind} | {points} | {tests} | {rubric} |")
    return "\n".join(rows)


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
    st.add_argument("--force", action="store_true", help="overwrite existing files in OUT_DIR (never links)")
    st.add_argument("--colab", action="store_true", help="put the Colab install cell first")
    st.add_argument("--myst", action="store_true", help="keep the MyST source (no plain conversion, no execution)")
    st.add_argument("--url", default=None, help="repository URL for --colab (default: repository.url of _config.yml)")
    pl = sub.add_parser("plain", help="write every notebook of SRC_DIR as a plain notebook (what Colab opens)")
    pl.add_argument("src")
    pl.add_argument("out")
    pl.add_argument("--force", action="store_true", help="overwrite existing files in OUT_DIR (never links)")
    asg = sub.add_parser("assign", help="otter-grader assignments of every chapter in SRC_DIR, into OUT_DIR/<chapter>/")
    asg.add_argument("src")
    asg.add_argument("out")
    asg.add_argument("--force", action="store_true", help="replace existing chapter folders in OUT_DIR")
    asg.add_argument(
        "--check", action="store_true", help="otter run: full marks on solutions, zero on students' coding"
    )
    asg.add_argument("--only", nargs="+", default=None, help="only these chapters (file names or stems)")
    asg.add_argument("--jobs", type=int, default=1, help="chapters graded at the same time by --check")
    gr = sub.add_parser("grade", help="otter run one submission against an autograder zip; print the scores")
    gr.add_argument("zip")
    gr.add_argument("notebook")
    ck = sub.add_parser("check", help="check that every exercise has a gated solution with code")
    ck.add_argument("src", nargs="?", default="chapters")
    ck.add_argument("--grading", action="store_true", help="also require tests or a rubric for every exercise")
    gd = sub.add_parser("guide", help="print the instructors' table of exercises (Markdown)")
    gd.add_argument("src", nargs="?", default="chapters")
    co = sub.add_parser("add-colab-cell", help="put the Colab install cell first in the given notebooks (in place)")
    co.add_argument("notebooks", nargs="+")
    co.add_argument("--url", default=None, help="repository URL (default: repository.url of _config.yml)")
    args = parser.parse_args(argv)
    try:
        if args.command == "student":
            written = write_student_versions(
                args.src, args.out, force=args.force, colab=args.colab, url=args.url, myst=args.myst
            )
            for path in written:
                print(f"wrote {path}")
            return 0
        if args.command == "plain":
            from lnfl import plain

            src_p, paths = _source_dir(args.src)
            _guard_out_dir(src_p, pathlib.Path(args.out))
            conv = plain.Converter.for_book(src_p.resolve().parent, extra=paths)
            notebooks = {p.name: conv.plain_notebook(p, nb) for p, nb in _read_all(paths).items()}
            for path in write_notebooks(args.out, notebooks, src_p, force=args.force):
                print(f"wrote {path}")
            return 0
        if args.command == "assign":
            summaries = write_assignments(
                args.src,
                args.out,
                force=args.force,
                check=args.check,
                only=args.only,
                jobs=args.jobs,
                log=lambda s: print(s, flush=True),
            )
            for s in summaries:
                pts = sum(q["points"] for q in s["questions"])
                auto = sum(q["points"] for q in s["questions"] if not q["manual"])
                line = f"{s['chapter']}: {len(s['questions'])} questions, {pts:g} points ({auto:g} autograded)"
                if "solution_scores" in s:
                    got = sum(a for a, _ in s["solution_scores"].values())
                    st_got = sum(a for a, _ in s["student_scores"].values())
                    line += f"; otter run: solution {got:g}/{auto:g}, untouched student {st_got:g}/{auto:g}"
                print(line)
            print(f"assignments written to {args.out}/<chapter>/ (autograder/, student/, master/)")
            return 0
        if args.command == "grade":
            scores = grade(args.zip, args.notebook)
            for q, (score, most) in scores.items():
                print(f"{q}: {score:g}/{most:g}")
            print(f"total: {sum(a for a, _ in scores.values()):g}/{sum(b for _, b in scores.values()):g}")
            return 0
        if args.command == "check":
            problems = check_dir(args.src, grading=args.grading)
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                print(f"{len(problems)} problem(s) found", file=sys.stderr)
                return 1
            print(f"every exercise in {args.src} has a gated solution with code")
            return 0
        if args.command == "guide":
            print(exercise_table(args.src))
            return 0
        text = colab_cell(args.url)
        nbs = {pathlib.Path(n): read_notebook(n) for n in args.notebooks}
        for path, nb in nbs.items():
            _replace_in_place(path, add_colab_cell(nb, cell=text))
            print(f"added the Colab cell to {path}")
        return 0
    except (ValueError, FileExistsError, OSError, subprocess.TimeoutExpired) as err:
        print(f"error: {err}".splitlines()[0], file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
