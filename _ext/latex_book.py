r"""Sphinx extension: the LaTeX of ``make pdf`` (``jupyter-book build . --builder pdflatex``) reads like a book.

Registered in ``_config.yml`` as a local extension (``sphinx: local_extensions: {latex_book: _ext}``); it
changes nothing in the HTML build.  On top of sphinx-jupyterbook-latex (xelatex, the table of contents'
parts as LaTeX parts, each page a chapter), it sets:

- **Fonts** that hold every character the book prints: FreeSerif/FreeSans (Sphinx's default for xelatex)
  and FreeMono for code, upright only, since FreeMono's oblique lacks ⟨ ⟩ that comments use.  Mathematics
  is typeset by unicode-math in Latin Modern Math.
- **Numbering as on the web**: chapters are numbered by LaTeX (so figures read "Figure 5.3", as the HTML
  pages do) and sections keep the numbers written in their titles ("5.1 The theorem") with none added;
  the "Appendices" part starts LaTeX's appendix, so its chapters are lettered.
- **Tables** at ``\small``; a table long enough for ``longtable`` gets column widths in proportion to its
  content, so its text wraps instead of running into the margin.
- **No index** (the book has none: Sphinx would build one from the API page's entries) and a stand-in for
  the ``bbm`` package the document class loads but the book never uses (``tools/latex/bbm.sty``).
- **Boxes** never leave an empty fragment on a new page: framed.sty (Sphinx's breakable boxes) is patched
  to keep a remainder with no height (anchors, marks) with the part of the box it follows.
- Section titles with mathematics get readable PDF bookmarks (``\Vert`` as ‖).
"""

from __future__ import annotations

import pathlib

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.transforms.post_transforms import SphinxPostTransform

BBM = pathlib.Path(__file__).resolve().parents[1] / "tools" / "latex" / "bbm.sty"

FONTS = r"""
\setmainfont{FreeSerif}[Extension=.otf, UprightFont=*, ItalicFont=*Italic, BoldFont=*Bold,
  BoldItalicFont=*BoldItalic]
\setsansfont{FreeSans}[Extension=.otf, UprightFont=*, ItalicFont=*Oblique, BoldFont=*Bold,
  BoldItalicFont=*BoldOblique]
\setmonofont{FreeMono}[Extension=.otf, UprightFont=*, ItalicFont=*, SlantedFont=*, BoldFont=*Bold,
  BoldItalicFont=*Bold]
"""

PREAMBLE = r"""
% --- _ext/latex_book.py ---
\setcounter{secnumdepth}{0}% sections carry their numbers in their titles, as on the web pages
\setcounter{tocdepth}{1}% parts, chapters and sections in the table of contents
\makeatletter
\def\lnfl@appendices{Appendices}
\let\lnfl@part\part
\renewcommand{\part}[1]{\def\lnfl@title{#1}\ifx\lnfl@title\lnfl@appendices\appendix\fi\lnfl@part{#1}}
% framed (Sphinx's breakable boxes): when a box's content fills the page but for discardable bits (marks,
% anchors), keep them with the content instead of starting a new page with an empty fragment of the box
\patchcmd{\fb@put@frame}{\ifvoid\@tempboxa\setbox\@tempboxa\box\tw@}%
  {\ifdim\dimexpr\ht\@tempboxa+\dp\@tempboxa<2pt\relax\setbox\@tempboxa\vbox{\unvbox\tw@\unvbox\@tempboxa}}%
  {}{\PackageWarning{lnfl}{could not patch framed's box splitting}}
\makeatother
\AtBeginEnvironment{tabulary}{\small}
\AtBeginEnvironment{longtable}{\small}
\pdfstringdefDisableCommands{\def\Vert{‖}\def\lVert{‖}\def\rVert{‖}\def\|{‖}}
"""


def _configure(app: Sphinx, config: Config) -> None:
    elements = dict(config.latex_elements or {})
    elements.setdefault("papersize", "a4paper")
    elements.setdefault("pointsize", "10pt")
    elements.setdefault("extraclassoptions", "openany,oneside")
    elements.setdefault("fontpkg", FONTS)
    elements["preamble"] = elements.get("preamble", "") + PREAMBLE
    elements.setdefault("makeindex", "")
    elements.setdefault("printindex", "")
    config.latex_elements = elements
    files = list(config.latex_additional_files or [])
    if str(BBM) not in files:
        files.append(str(BBM))
    config.latex_additional_files = files
    config.latex_show_urls = "no"


class LongTableWidths(SphinxPostTransform):
    """Column widths for long tables (LaTeX only): in proportion to each column's longest cell, clipped."""

    default_priority = 450
    builders = ("latex",)

    def run(self, **kwargs: object) -> None:
        for table in self.document.findall(nodes.table):
            group = next(iter(table.findall(nodes.tgroup)), None)
            if group is None or "colwidths-given" in table.get("classes", []):
                continue
            rows = list(group.findall(nodes.row))
            if len(rows) <= 30:  # Sphinx uses longtable only past 30 rows
                continue
            specs = [c for c in group.children if isinstance(c, nodes.colspec)]
            text, word = [1] * len(specs), [1] * len(specs)
            for row in rows:
                for k, entry in enumerate(e for e in row.children if isinstance(e, nodes.entry)):
                    if k < len(specs):
                        content = entry.astext()
                        text[k] = max(text[k], min(len(content), 60))
                        word[k] = max(word[k], *(len(w) for w in content.split() or [""]))
            for spec, t, w in zip(specs, text, word, strict=True):
                # room for the longest unbreakable word (code is wider than text), then for the text
                spec["colwidth"] = max(t, round(1.6 * w) + 4)
            table["classes"] = [*table.get("classes", []), "colwidths-given"]


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("config-inited", _configure)
    app.add_post_transform(LongTableWidths)
    return {"version": "0.1.0", "parallel_read_safe": True, "parallel_write_safe": True}
