"""Build the whole book strictly (-W -n) and check the HTML a reader gets."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))

pytestmark = pytest.mark.build


@pytest.fixture(scope="module")
def built(book_build):
    """The log of the one strict build of the whole book (tests/conftest.py)."""
    return book_build


def test_build_has_no_warnings(built):
    # -W already turns Sphinx warnings into a failed build; this also catches ones printed by extensions.
    # The kernel's own start-up notice ("[IPKernelApp] WARNING | ... TCP without encryption") is not about the book.
    warnings = [line for line in built.splitlines() if "WARNING" in line and "IPKernelApp" not in line]
    assert not warnings, warnings[:10]


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_page(built, nb):
    page = HTML / "chapters" / f"{nb.stem}.html"
    assert page.exists(), f"{page} was not built"
    html = page.read_text()
    assert "Traceback" not in html and 'class="output traceback' not in html, "an error output is shown"
    assert "output stderr" not in html, "stderr output shown on the page"
    for raw in ("{prf:", "{exercise}", "{solution-start}", "{glue:", "```{"):
        assert raw not in html, f"raw directive text {raw!r} left on the page"
    assert 'class="proof' in html or "prf:" in html or 'class="admonition' in html, "no theorem box rendered"
    assert "exercise" in html, "no exercise rendered"
    imgs = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert imgs, "no figure on the page"
    for src in imgs:
        if src.startswith(("http:", "https:", "data:")):
            continue
        assert (page.parent / src).resolve().exists(), f"missing image {src}"


def test_index_exists(built):
    assert (HTML / "index.html").exists() and (HTML / "intro.html").exists()
