"""What a reader sees of the code, read from the executed chapters of the strict build.

The build (``book_build`` in conftest.py) keeps every executed notebook in its jupyter-cache
(``_build/.jupyter_cache``, ``execute_notebooks: cache``): the test reads the cached outputs that match the
chapter's source, which are what the page shows.  (``_build/jupyter_execute/`` is not enough: myst-nb 1.4
writes the unexecuted notebook there when it takes the outputs from the cache.)
On a page, a code cell's source is shown unless it carries one of the tags ``hide-input``,
``remove-input``, ``remove-cell`` or ``hide-cell``; its outputs are shown unless it carries
``remove-output`` or ``remove-cell``.  The page shows about 88 columns of code and output, so:

* no visible code line and no shown printed line (stdout/stderr streams, ``text/plain`` results, error
  tracebacks) is longer than 88 characters (nothing cut off at the right edge);
* a visible code cell computes or checks: it contains no ``glue(``, ``display(``, ``Markdown(``,
  ``markdown_table(`` and no plotting (``new_figure(``, ``plt.``, ``ax.``, ``axes``, ``fig.``), outside
  comments and strings.  A cell that only draws, formats a table or glues numbers is tagged ``hide-input``
  (its figure or table is still shown) or ``remove-input``/``remove-cell``.
"""

from __future__ import annotations

import io
import json
import pathlib
import re
import tokenize

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "jupyter_execute" / "chapters"
CACHE = ROOT / "_build" / ".jupyter_cache"
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
WIDTH = 88

HIDDEN_INPUT = {"hide-input", "remove-input", "remove-cell", "hide-cell"}
HIDDEN_OUTPUT = {"remove-output", "remove-cell"}
PRESENTATION = re.compile(r"\b(?:glue|display|Markdown|markdown_table|new_figure)\s*\(|\b(?:plt|ax|fig)\s*\.|\baxes\b")
# mime types myst-nb prefers to text/plain on an HTML page: when one is there, the text is not shown
RICHER = ("text/html", "text/markdown", "text/latex", "image/", "application/vnd.jupyter.widget-view+json")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def code_without_comments_and_strings(source: str) -> str:
    """The cell's code with comments and string literals blanked (IPython magics are kept as text)."""
    lines = [("" if line.lstrip().startswith(("%", "!")) else line) for line in source.splitlines(keepends=True)]
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO("".join(lines)).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return re.sub(r"#.*", "", source)
    drop = {tokenize.COMMENT, tokenize.STRING}
    drop |= {getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n)}
    return " ".join(tok.string for tok in tokens if tok.type not in drop)


def shown_output_lines(output: dict) -> list[str]:
    """The lines of text an output puts on the page (streams, plain-text results, tracebacks)."""
    kind = output.get("output_type")
    if kind == "stream":
        text = output.get("text", "")
    elif kind in ("execute_result", "display_data"):
        data = output.get("data", {})
        if any(m.startswith(RICHER) for m in data) or "text/plain" not in data:
            return []
        text = data["text/plain"]
    elif kind == "error":
        text = output.get("traceback", [])
    else:
        return []
    text = "\n".join(text) if isinstance(text, list) and kind == "error" else text
    text = "".join(text) if isinstance(text, list) else text
    return [line for raw in ANSI.sub("", text).split("\n") for line in raw.split("\r")]


def reader_problems(nb: dict) -> list[str]:
    """Every line too long and every visible presentation cell of one executed notebook, as messages."""
    problems = []
    for k, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        tags, where = _tags(cell), f"cell {k} (id {cell.get('id', '?')})"
        source = _source(cell)
        if not tags & HIDDEN_INPUT:
            for n, line in enumerate(source.splitlines(), 1):
                if len(line) > WIDTH:
                    problems.append(f"{where}: code line {n} has {len(line)} > {WIDTH} characters: {line[:60]}…")
            found = sorted(
                {re.sub(r"\s+", "", m) for m in PRESENTATION.findall(code_without_comments_and_strings(source))}
            )
            if found:
                problems.append(
                    f"{where}: visible cell draws, formats or glues ({', '.join(found)}): "
                    "tag it hide-input (or split the check from the presentation)"
                )
        if not tags & HIDDEN_OUTPUT:
            for output in cell.get("outputs", []):
                for line in shown_output_lines(output):
                    if len(line) > WIDTH:
                        problems.append(
                            f"{where}: {output['output_type']} output line has {len(line)} > {WIDTH} "
                            f"characters: {line[:60]}…"
                        )
    return problems


def executed(chapter: pathlib.Path) -> dict:
    """The chapter as the build executed it: the cached outputs matched to its source, else jupyter_execute/."""
    import nbformat
    from jupyter_cache import get_cache

    if CACHE.exists():
        try:
            _, nb = get_cache(str(CACHE)).merge_match_into_notebook(nbformat.read(chapter, as_version=4))
            return json.loads(nbformat.writes(nb))
        except KeyError:  # no cached execution matches this source
            pass
    path = EXECUTED / chapter.name
    assert path.exists(), f"{chapter.name}: no executed version in {CACHE} or {EXECUTED} (is it in _toc.yml?)"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.build
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_executed_chapter_reads_well(book_build, chapter):
    nb = executed(chapter)
    assert any(c.get("outputs") for c in nb["cells"] if c.get("cell_type") == "code"), f"{chapter.name}: no outputs"
    problems = reader_problems(nb)
    assert not problems, f"{chapter.name}: {len(problems)} problems for a reader:\n" + "\n".join(problems)


def test_the_rules_fire_on_a_made_up_notebook():
    """The rules above on a small notebook: each kind of problem is found, and hidden cells are left alone."""

    def code(source: str, tags=(), outputs=()) -> dict:
        return {
            "cell_type": "code",
            "id": "x",
            "metadata": {"tags": list(tags)},
            "source": source,
            "outputs": list(outputs),
        }

    long = "x = " + "1 + " * 30 + "1"
    nb = {
        "cells": [
            code("fig, ax = new_figure()\nax.plot([1, 2])"),  # visible plotting
            code('glue("a", 1, display=False)'),  # visible glue
            code(long),  # visible long line
            code("print(1)", outputs=[{"output_type": "stream", "name": "stdout", "text": "y" * 100 + "\n"}]),
            code("1", outputs=[{"output_type": "execute_result", "data": {"text/plain": "z" * 90}}]),
            code("fig, ax = new_figure()\n" + long, tags=["hide-input"]),  # hidden: fine
            code("print(2)", tags=["remove-output"], outputs=[{"output_type": "stream", "text": "w" * 100}]),
            code("1", outputs=[{"output_type": "display_data", "data": {"image/png": "", "text/plain": "v" * 99}}]),
            code("# we draw on the axes later\nrelax = max(1, 2)  # ax.plot in a comment\ns = 'fig.'"),
        ]
    }
    problems = reader_problems(nb)
    assert [p.split(":")[0] for p in problems] == ["cell 0 (id x)", "cell 1 (id x)", "cell 2 (id x)"] + [
        "cell 3 (id x)",
        "cell 4 (id x)",
    ], problems
    assert "ax." in problems[0] and "new_figure(" in problems[0] and "glue(" in problems[1]
