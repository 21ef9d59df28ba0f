"""Print the whole book to one PDF: the single-page HTML build, typeset by MathJax, printed by headless chromium.

    python tools/make_pdf.py                 # build _build/singlehtml, then write _build/pdf/book.pdf
    python tools/make_pdf.py --no-build      # print an existing _build/singlehtml

``make pdf`` runs the first form.  The single-page build reuses the executed notebooks cached by the
HTML build (jupyter-cache), so after ``make book`` it takes about a minute.  Solutions, which are
collapsed dropdowns on the web, are opened, since a reader of paper cannot click them.  Needs Debian's
``chromium`` (see tools/chromium_cdp.py); exits with status 2 and a message when it is missing.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from chromium_cdp import Chromium, find_chromium, serve  # noqa: E402

SINGLE = ROOT / "_build" / "singlehtml"
PDF = ROOT / "_build" / "pdf" / "book.pdf"

# Runs in the page before printing: open the dropdowns, wait for MathJax and every image.
PREPARE_JS = r"""
(async () => {
  for (const img of document.images) img.loading = "eager";
  document.querySelectorAll(".toggle-hidden").forEach(el => el.classList.remove("toggle-hidden"));
  document.querySelectorAll("details").forEach(el => { el.open = true; });
  document.querySelectorAll(".dropdown").forEach(el => el.classList.remove("dropdown"));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  await Promise.all([...document.images].map(img => img.complete ? null :
      new Promise(r => { img.addEventListener("load", r); img.addEventListener("error", r); setTimeout(r, 20000); })));
  const style = document.createElement("style");
  style.textContent = `
    @page { size: A4; margin: 15mm 14mm; }
    .bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-footer, .prev-next-area, .header-article,
    .bd-header-article, .toggle-button, .copybtn, .headerlink { display: none !important; }
    .bd-main .bd-content .bd-article-container { max-width: 100% !important; }
    img { max-width: 100% !important; break-inside: avoid; }
    pre { white-space: pre-wrap !important; overflow-wrap: anywhere; }   /* long code lines wrap, not clip */
    figure, .proof, .exercise, .solution, .cell_output { break-inside: avoid; }
    .bd-container, .bd-container__inner, .bd-main, .bd-content, .bd-article-container, .bd-article,
    .bd-page-width { display: block !important; }
    span[id^="document-"] + section { break-before: page; }   /* each chapter starts a new page */
  `;
  document.head.appendChild(style);
  return {mjx: document.querySelectorAll("mjx-container").length,
          images: document.images.length,
          broken: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)};
})()
"""


def build_singlehtml() -> None:
    jb = pathlib.Path(sys.executable).parent / "jupyter-book"
    subprocess.run([str(jb), "build", ".", "--builder", "singlehtml"], cwd=ROOT, check=True)


def root_page(html_dir: pathlib.Path) -> pathlib.Path:
    """The single page that holds the whole book: the root document of the book's table of contents."""
    toc = html_dir.parents[1] / "_toc.yml"
    match = re.search(r"^root:\s*(\S+)", toc.read_text(encoding="utf-8"), re.M) if toc.exists() else None
    page = html_dir / f"{match.group(1) if match else 'index'}.html"
    if not page.exists():
        raise FileNotFoundError(f"{page} does not exist: build the single-page HTML first")
    return page


def print_pdf(html_dir: pathlib.Path = SINGLE, out: pathlib.Path = PDF) -> dict:
    """Print the single-page book in ``html_dir`` to ``out``; returns what the page reported before printing."""
    page_file = root_page(html_dir)
    with serve(html_dir) as base, Chromium(timeout=300) as browser:
        page = browser.new_page(width=1000, height=1400)
        page.goto(base + page_file.name, timeout=300)
        info = page.evaluate(PREPARE_JS, timeout=600)
        page.pdf(out)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-build", action="store_true", help="print the existing _build/singlehtml")
    parser.add_argument("--out", type=pathlib.Path, default=PDF, help=f"PDF to write (default {PDF})")
    args = parser.parse_args(argv)
    if find_chromium() is None:
        print("make pdf needs chromium: apt-get install chromium (Debian)", file=sys.stderr)
        return 2
    start = time.monotonic()
    if not args.no_build:
        build_singlehtml()
    info = print_pdf(SINGLE, args.out)
    if info["broken"]:
        print(f"warning: images that did not load: {info['broken']}", file=sys.stderr)
    size = args.out.stat().st_size
    print(
        f"wrote {args.out} ({size / 1e6:.1f} MB; {info['mjx']} formulas, {info['images']} images) "
        f"in {time.monotonic() - start:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
