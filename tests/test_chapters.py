"""Static checks of the chapter notebooks: the book's conventions (CONTRIBUTING.md), without executing anything."""

import json
import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        for ch in part.get("chapters", []):
            files.append(ch["file"])
            files += [s["file"] for s in ch.get("sections", [])]
    return files


def test_there_are_chapters():
    assert CHAPTERS, "no chapter notebooks found under chapters/"


def test_toc_lists_exactly_the_existing_pages():
    listed = _toc_files()
    for f in listed:
        assert any((ROOT / f"{f}{ext}").exists() for ext in (".md", ".ipynb")), f"_toc.yml lists missing page {f}"
    for nb in CHAPTERS:
        assert f"chapters/{nb.stem}" in listed, f"{nb.name} is not in _toc.yml"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_conventions(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    md = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    src = lambda c: "".join(c["source"])  # noqa: E731
    # committed without outputs
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "strip outputs"
    # first cell: imports, hidden
    assert "remove-cell" in cells[0].get("metadata", {}).get("tags", []), "first cell must be tagged remove-cell"
    assert re.search(r"(?im)^#{1,3} .*learning objectives|^\*\*learning objectives", md), "learning objectives"
    # results in prf boxes, checked by asserts
    assert re.search(r"\{prf:(theorem|proposition|definition|lemma)\}", md), "no prf box"
    assert any(re.search(r"^\s*assert ", src(c), re.M) for c in code), "no check cell asserts anything"
    # exercises with executable gated solutions
    exercises = re.findall(r"\{exercise\}", md)
    assert len(exercises) >= 2, "at least two exercises"
    starts = re.findall(r"\{solution-start\}", md)
    ends = re.findall(r"\{solution-end\}", md)
    assert len(starts) == len(ends) >= 1, "gated solutions must be balanced"
    # numbers from code: glue used
    assert "{glue:" in md, "numbers in prose should come from glue"
    assert "summary" in md.lower(), "a summary closes the chapter"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_headings_numbered_as_the_page_shows(path):
    """The toc numbers the chapter title; its sections carry their own numbers "N.k", which must follow the
    chapter's position in the book and run 1, 2, 3, ... in the order they appear (a reader follows "§2.6"),
    and the title carries no number of its own."""
    cells = json.loads(path.read_text())["cells"]
    md = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    titles = re.findall(r"(?m)^# (.+)$", md)
    assert len(titles) == 1 and not re.match(r"\d", titles[0]), f"one unnumbered chapter title, got {titles}"
    chapter = [f for f in _toc_files() if f.startswith("chapters/")].index(f"chapters/{path.stem}") + 1
    numbers = re.findall(r"(?m)^## (\d+)\.(\d+) ", md)
    assert numbers, "sections are numbered N.k"
    assert {int(n) for n, _ in numbers} == {chapter}, f"sections must be numbered {chapter}.k, got {numbers}"
    assert [int(k) for _, k in numbers] == list(range(1, len(numbers) + 1)), f"out of order: {numbers}"
