"""`make pdf`: the whole book as one PDF (single-page HTML printed by headless chromium).

Builds _build/singlehtml (reusing the notebooks executed by the HTML build), prints it to
_build/pdf/book.pdf and reads the PDF back with ``pdftotext`` (poppler-utils): it must have many pages,
every chapter's title, theorem and exercise boxes, and mathematics typeset by MathJax (Greek letters and
operators as characters, no TeX delimiters).  Skipped, saying why, only where chromium or pdftotext is
missing.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
PDF = ROOT / "_build" / "pdf" / "book.pdf"

sys.path.insert(0, str(ROOT / "tools"))
from chromium_cdp import find_chromium  # noqa: E402

pytestmark = pytest.mark.build


def _title(nb: pathlib.Path) -> str:
    """The chapter's title: the first '# ' heading of its markdown cells."""
    for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise AssertionError(f"{nb.name} has no '# ' title")


@pytest.fixture(scope="module")
def pdf_text(request) -> str:
    if find_chromium() is None:
        pytest.skip("SKIPPED ONLY BECAUSE no chromium executable was found (Debian package `chromium`): no PDF made")
    if shutil.which("pdftotext") is None:
        pytest.skip("SKIPPED ONLY BECAUSE pdftotext is missing (Debian package `poppler-utils`): PDF not checked")
    request.getfixturevalue("book_build")  # the HTML build executes and caches the notebooks first
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_pdf.py")], cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, f"make_pdf failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
    assert "images that did not load" not in proc.stderr, proc.stderr[-2000:]
    return subprocess.run(["pdftotext", "-layout", str(PDF), "-"], capture_output=True, text=True, check=True).stdout


def test_pdf_has_pages(pdf_text):
    assert PDF.stat().st_size > 200_000, f"{PDF} is only {PDF.stat().st_size} bytes"
    pages = pdf_text.count("\f")
    assert pages >= 10 * max(1, len(CHAPTERS)) // 2, f"only {pages} pages for {len(CHAPTERS)} chapters"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_pdf_has_chapter(pdf_text, nb):
    flat = " ".join(pdf_text.split())
    title = " ".join(_title(nb).split())
    assert title in flat, f"chapter title {title!r} not found in the PDF text"


def test_pdf_has_boxes_and_typeset_math(pdf_text):
    assert any(w in pdf_text for w in ("Theorem", "Proposition", "Definition")), "no theorem box in the PDF"
    for word in ("Exercise", "Solution to"):
        assert word in pdf_text, f"no {word!r} box in the PDF"
    typeset = {ch: pdf_text.count(ch) for ch in "γρξμσ∑"}
    assert sum(v > 0 for v in typeset.values()) >= 4, f"too few typeset math symbols in the PDF: {typeset}"
    for raw in ("\\(", "\\[", "$$"):
        assert raw not in pdf_text, f"raw TeX delimiter {raw!r} left in the PDF"
