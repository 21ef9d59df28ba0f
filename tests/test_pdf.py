"""`make pdf`: the whole book as one PDF typeset by LaTeX (tools/make_pdf.py), checked as a reader would.

The PDF is made once per session (``book_pdf``), after the HTML build (``book_build``), whose executed
notebooks it reuses.  Then, on the produced file, with poppler's ``pdfinfo``, ``pdffonts``,
``pdftotext``, ``pdfimages`` and ``pdftoppm`` and on the LaTeX log:

* it is a book: A4, a title page, a table of contents whose every chapter has a page number, each
  chapter starting on a new page at the page the contents give, chapters of the appendix part lettered;
* nothing runs off the page or into the margin: no overfull line wider than 6 pt in the LaTeX log (each
  reported with its chapter), and no ink in the outer 7 mm of any page image;
* no box split into an empty fragment: no page begins or ends with a piece of a framed box that holds no
  text (page images at 72 dpi against the text lines' positions from ``pdftotext -bbox-layout``);
* theorem, exercise and solution boxes are there with their titles; mathematics is typeset (a math font is
  embedded, no TeX delimiters left, no character missing from a font);
* figures are at a readable size: every figure image at least 60% of the text width.

Skipped, saying why, only where TeX Live or poppler-utils is missing (.ci/run installs both).
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
PDF = BUILD / "pdf" / "book.pdf"
LATEX = BUILD / "latex"
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
POPPLER = ("pdfinfo", "pdffonts", "pdftotext", "pdfimages", "pdftoppm")
OVERFULL_PT = 6.0  # an overfull line narrower than this is invisible on paper
MARGIN_MM = 7.0  # nothing may be printed this close to a page's left or right edge

sys.path.insert(0, str(ROOT / "tools"))
from make_pdf import missing_tex  # noqa: E402

pytestmark = pytest.mark.build


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600).stdout


def _words(text: str) -> str:
    """Upper-case letters and digits only: compares titles across fonts, case changes and line breaks."""
    return re.sub(r"[^0-9A-Z]+", "", text.upper())


def _title(nb: pathlib.Path) -> str:
    """The chapter's title: the first '# ' heading of its markdown cells."""
    for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise AssertionError(f"{nb.name} has no '# ' title")


@pytest.fixture(scope="session")
def book_pdf(request) -> pathlib.Path:
    """_build/pdf/book.pdf, made once by tools/make_pdf.py after the HTML build."""
    why = missing_tex()
    if why is None and not all(shutil.which(t) for t in POPPLER):
        why = "poppler-utils is missing (Debian package `poppler-utils`)"
    if why:
        pytest.skip(f"SKIPPED ONLY BECAUSE {why}: no PDF made")
    request.getfixturevalue("book_build")  # the HTML build executes and caches the notebooks first
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_pdf.py")], cwd=ROOT, capture_output=True, text=True, timeout=1200
    )
    assert proc.returncode == 0, f"make_pdf failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
    return PDF


@pytest.fixture(scope="session")
def pages(book_pdf) -> list[str]:
    """The text of every page (pdftotext -layout), in order."""
    return _run("pdftotext", "-layout", str(book_pdf), "-").split("\f")[:-1]


@pytest.fixture(scope="session")
def latex_log(book_pdf) -> str:
    return (LATEX / "book.log").read_text(encoding="utf-8", errors="replace")


def test_pdf_is_an_a4_book(book_pdf, pages):
    info = _run("pdfinfo", str(book_pdf))
    assert "595.28 x 841.89 pts (A4)" in info, info
    assert len(pages) >= 10 * len(CHAPTERS), f"only {len(pages)} pages for {len(CHAPTERS)} chapters"
    assert "Label Noise and Feature Learning" in pages[0], "no title page"


def _toc(pages: list[str]) -> dict[str, int]:
    """Chapter title (as _words) -> page number printed in the table of contents."""
    start = next(k for k, p in enumerate(pages[:6]) if "CONTENTS" in p.upper())
    toc = {}
    for page in pages[start : start + 8]:
        for line in page.splitlines():
            m = re.match(r"^\s*(?:\d+|[A-Z])\s+(\S.*?)\s+(\d+)\s*$", line)
            if m and ". ." not in line:
                toc[_words(m.group(1))] = int(m.group(2))
    return toc


def _chapter_starts(pages: list[str]) -> dict[str, int]:
    """Chapter title (as _words) -> index of the page that opens with it (a 'CHAPTER'/'APPENDIX' heading)."""
    starts = {}
    for k, page in enumerate(pages):
        head = [line.strip() for line in page.splitlines() if line.strip()][:6]
        if head and head[0] in ("CHAPTER", "APPENDIX"):
            starts[_words(" ".join(head[2:]))] = k
    return starts


def test_contents_give_every_chapter_and_its_page(pages):
    toc, starts = _toc(pages), _chapter_starts(pages)
    offsets = set()
    for nb in CHAPTERS:
        title = _words(_title(nb))
        listed = [n for t, n in toc.items() if t.startswith(title[:30])]
        assert listed, f"{nb.stem}: chapter title {_title(nb)!r} not in the table of contents"
        opened = [k for t, k in starts.items() if t.startswith(title[:20])]
        assert opened, f"{nb.stem}: no page opens with the chapter heading of {_title(nb)!r}"
        offsets.add(opened[0] - listed[0])
    assert len(offsets) == 1, f"the contents' page numbers do not match where chapters start: offsets {offsets}"
    assert any("APPENDIX" in p.upper()[:400] for p in pages), "the appendix chapters are not lettered"


def _overfull(latex_log: str) -> list[str]:
    """Overfull lines wider than OVERFULL_PT, each with the chapter (from book.tex) it is in."""
    tex = (LATEX / "book.tex").read_text(encoding="utf-8").splitlines()
    chapters = [(k + 1, m.group(1)) for k, line in enumerate(tex) if (m := re.match(r"\\chapter\{(.*)\}", line))]
    found = []
    pattern = r"Overfull \\hbox \(([\d.]+)pt too wide\) (?:in paragraph at lines (\d+)|detected at line (\d+)|in alignment at lines (\d+))"
    for m in re.finditer(pattern, latex_log):
        width, line = float(m.group(1)), int(m.group(2) or m.group(3) or m.group(4))
        if width > OVERFULL_PT:
            chapter = next((t for k, t in reversed(chapters) if k <= line), "front matter")
            what = tex[line - 1].strip()[:70] if line <= len(tex) else ""
            found.append(f"{chapter}: {width:.0f} pt into the margin (book.tex line {line}: {what})")
    return found


def test_nothing_runs_into_the_margin(latex_log):
    found = _overfull(latex_log)
    assert not found, f"{len(found)} lines wider than the text (display equations, tables, code):\n" + "\n".join(found)


def _page_images(book_pdf: pathlib.Path, tmp: pathlib.Path, dpi: int) -> list[pathlib.Path]:
    _run("pdftoppm", "-r", str(dpi), "-gray", str(book_pdf), str(tmp / "p"))
    return sorted(tmp.glob("p-*.pgm"))


@pytest.fixture(scope="session")
def page_images(book_pdf, tmp_path_factory) -> list[pathlib.Path]:
    """Every page as a grey image (PGM) at 72 dpi, so that 1 pixel is 1 pt."""
    return _page_images(book_pdf, tmp_path_factory.mktemp("pages"), 72)


def _grey(path: pathlib.Path):
    """A page image as a numpy array of grey levels 0 (black) to 255 (white)."""
    from matplotlib.image import imread

    img = imread(path)
    return img * 255 if img.max() <= 1 else img


def test_nothing_printed_at_the_page_edges(page_images):
    bad = []
    for k, img in enumerate(map(_grey, page_images), 1):
        strip = max(1, round(img.shape[1] * MARGIN_MM / 210))
        ink = (img[:, :strip] < 200).sum() + (img[:, -strip:] < 200).sum()
        if ink:
            bad.append(k)
    assert not bad, f"pages with ink within {MARGIN_MM} mm of the left or right edge (clipped content): {bad}"


def empty_box_fragments(book_pdf: pathlib.Path, page_images: list[pathlib.Path]) -> list[str]:
    """Pieces of a box (code, output, theorem, exercise) that open or close a page and hold no text.

    A box spans the text block: a row of a page (72 dpi, so 1 px = 1 pt) lies inside one when both its
    left and right frame columns are inked.  The first and the last such run of rows on a page (below the
    running head, above the foot) that touches no line of text there is an empty fragment.
    """
    import numpy as np

    xml = _run("pdftotext", "-bbox-layout", str(book_pdf), "-")
    lines = [
        [
            (float(a), float(b))
            for a, b in re.findall(r'<line xMin="[^"]+" yMin="([^"]+)" xMax="[^"]+" yMax="([^"]+)"', p)
        ]
        for p in re.split(r"<page ", xml)[1:]
    ]
    found = []
    for k, (path, page_lines) in enumerate(zip(page_images, lines, strict=True), 1):
        img = _grey(path)
        h = img.shape[0]
        y0, y1 = 62, h - 62  # below the running head, above the page number
        body = [(a, b) for a, b in page_lines if y0 < a < y1]
        cols = np.nonzero((img[y0:y1] < 250).any(axis=0))[0]
        if not body or len(cols) == 0:
            continue
        inside = (img[:, cols[0] + 1] < 250) & (img[:, cols[-1] - 1] < 250)
        runs, start = [], None
        for y in range(y0, y1 + 1):
            if inside[y] and start is None:
                start = y
            elif not inside[y] and start is not None:
                runs.append((start, y))
                start = None
        if start is not None:
            runs.append((start, y1))
        first, last = min(a for a, _ in body), max(b for _, b in body)
        for a, b in runs[:1] + runs[-1:]:
            if b - a >= 3 and (a <= first + 1 or b >= last - 1) and not any(la < b and lb > a for la, lb in page_lines):
                found.append(f"page {k}: an empty piece of a box, {b - a} pt tall, at y = {a} pt")
    return sorted(set(found))


def test_no_box_split_into_an_empty_fragment(book_pdf, latex_log, page_images):
    assert "could not patch framed" not in latex_log, "the framed.sty patch of _ext/latex_book.py no longer applies"
    found = empty_box_fragments(book_pdf, page_images)
    assert not found, "boxes split into an empty fragment:\n" + "\n".join(found)


def test_boxes_are_rendered_with_titles(pages):
    text = "\n".join(pages)
    for nb in CHAPTERS:
        n = int(nb.stem[:2])
        assert re.search(rf"Exercise {n}\.1\b", text), f"{nb.stem}: no 'Exercise {n}.1' box in the PDF"
        assert re.search(rf"Solution to Exercise {n}\.1\b", text), f"{nb.stem}: no solution box in the PDF"
    for result in ("Theorem 4.1", "Theorem 4.2", "Proposition 4.3", "Theorem 4.4"):
        assert result in text, f"no {result!r} box in the PDF"
    assert "Definition" in text, "no definition box in the PDF"


def test_mathematics_is_typeset(book_pdf, pages, latex_log):
    fonts = _run("pdffonts", str(book_pdf))
    assert re.search(r"LatinModernMath|LMMath", fonts), f"no math font embedded:\n{fonts}"
    rows = [line for line in fonts.splitlines()[2:] if line.strip()]
    not_embedded = [r for r in rows if " no " in r[50:]]
    assert not not_embedded, f"fonts not embedded: {not_embedded}"
    text = "\n".join(pages)
    for raw in ("\\(", "\\[", "$$"):
        assert raw not in text, f"raw TeX delimiter {raw!r} left in the PDF text"
    # unicode-math sets math letters as Mathematical Alphanumeric Symbols (U+1D400-U+1D7FF): 𝜇, 𝛾, 𝑛, ...
    math_letters = sum(1 for ch in text if 0x1D400 <= ord(ch) <= 0x1D7FF)
    assert math_letters > 1000 * len(CHAPTERS) // 11, f"only {math_letters} typeset math letters in the PDF"
    missing = sorted(set(re.findall(r"Missing character: There is no (.+?) in font (\S+)", latex_log)))
    assert not missing, f"characters no font could print: {missing[:10]}"
    errors = re.findall(r"^! .*$", latex_log, re.M)
    assert not errors, f"LaTeX errors: {errors[:5]}"


def test_figures_are_readable(book_pdf):
    """Every image is shown at least 60% of the text width (pdfimages: pixels / pixels per inch)."""
    rows = _run("pdfimages", "-list", str(book_pdf)).splitlines()[2:]
    assert len(rows) >= 2 * len(CHAPTERS), f"only {len(rows)} images in the PDF"
    text_width_in = 17.5 / 2.54 * 0.6
    small = []
    for row in rows:
        cols = row.split()
        page, kind, width, x_ppi = int(cols[0]), cols[2], int(cols[3]), float(cols[12])
        if kind == "image" and width / x_ppi < text_width_in:
            small.append(f"page {page}: {width / x_ppi * 2.54:.1f} cm wide")
    assert not small, f"figures printed smaller than 60% of the text width: {small[:10]}"
