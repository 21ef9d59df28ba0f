"""`make pdf`: the whole book as one PDF typeset by LaTeX, the way the reference textbooks build theirs.

    python tools/make_pdf.py                         # writes _build/pdf/book.pdf (and keeps _build/latex/)
    python tools/make_pdf.py --path-output /tmp/x    # builds under /tmp/x/_build instead

As QuantEcon's lectures do, this runs ``jupyter-book build . --builder pdflatex``: Sphinx's LaTeX builder
with sphinx-jupyterbook-latex (xelatex; the table-of-contents parts become LaTeX parts, each page a
chapter), then latexmk.  The notebooks are not executed again: the build reads the outputs cached by the
HTML build (``execute_notebooks: cache``).  ``_config.yml`` (``latex:`` and the ``latex_*`` keys under
``sphinx: config:``) sets the paper, fonts and page layout.  The LaTeX log stays in
``_build/latex/book.log``; tests/test_pdf.py reads it and the PDF.

Needs TeX Live (Debian: texlive-xetex texlive-latex-extra texlive-fonts-recommended latexmk lmodern
fonts-freefont-otf; .ci/run installs them); exits with status 2 and a message when xelatex or latexmk is
missing.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEX_TOOLS = ("xelatex", "latexmk")
DEBIAN_PACKAGES = "texlive-xetex texlive-latex-extra texlive-fonts-recommended latexmk lmodern fonts-freefont-otf"


def missing_tex() -> str | None:
    """Why the PDF cannot be typeset here (what to install), or None."""
    absent = [t for t in TEX_TOOLS if shutil.which(t) is None]
    if absent:
        return f"{' and '.join(absent)} not found (Debian: apt-get install {DEBIAN_PACKAGES})"
    return None


def build_pdf(build: pathlib.Path) -> pathlib.Path:
    """Run the LaTeX build into ``build`` (a ``_build`` folder) and copy the PDF to ``build/pdf/book.pdf``."""
    jb = pathlib.Path(sys.executable).parent / "jupyter-book"
    cmd = [str(jb), "build", ".", "--builder", "pdflatex", "-n", "--keep-going"]
    if build != ROOT / "_build":
        cmd += ["--path-output", str(build.parent)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    latex = build / "latex"
    (latex).mkdir(parents=True, exist_ok=True)
    (latex / "jupyter-book.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    made = latex / "book.pdf"
    if proc.returncode != 0 or not made.exists():
        tail = (proc.stdout + proc.stderr)[-6000:]
        raise RuntimeError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{tail}")
    out = build / "pdf" / "book.pdf"
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(made, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--path-output", type=pathlib.Path, default=ROOT, help="folder that holds _build (default: the book)"
    )
    args = parser.parse_args(argv)
    why = missing_tex()
    if why:
        print(f"make pdf needs TeX Live: {why}", file=sys.stderr)
        return 2
    start = time.monotonic()
    try:
        out = build_pdf(args.path_output.resolve() / "_build")
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
