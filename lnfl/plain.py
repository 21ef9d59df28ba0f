"""Plain notebooks: the book's MyST-NB chapters as notebooks that read well in any Jupyter and on Colab.

A chapter is written in MyST: theorem and exercise boxes are directives (``{prf:theorem}``, ``{exercise}``),
numbers are glued in (``{glue:text}`` roles), figures are glued (``{glue:figure}``) and cross-references are
roles (``{numref}``, ``{prf:ref}``, ``{ref}``, ``{doc}``, ``{cite}``).  Outside the book all of that shows as
raw source.  :class:`Converter` turns it into what the book page shows:

- boxes become block quotes titled as on the page: "Exercise 5.2", "Theorem 4.1 (Stage I)" (prf boxes are
  ``:nonumber:`` and titled with ``proof_title_format``), "Solution to Exercise 5.2";
- glued numbers become their values, formatted as the page formats them (myst-nb's own formatter); glued
  figures become images attached to the cell, captioned "Figure 5.3. ..."; glued Markdown is inlined;
- cross-references become their text ("Figure 5.3", "Exercise 5.2", the explicit text of a ``{prf:ref}``, a
  page title, "[Han et al., 2025]") linked to the book page (``html.baseurl`` of ``_config.yml``, else the
  GitHub Pages address of ``repository.url``);
- MyST-only syntax disappears: ``(label)=`` targets, ``%`` comments, ``+++`` breaks; code cells tagged
  ``remove-cell``/``remove-input``/``hide-*`` keep their code (the notebook must still run) with the source
  collapsed (``metadata.jupyter.source_hidden``), ``remove-output``/``hide-output`` collapse the output, and
  markdown cells tagged ``remove-cell`` are dropped.

Numbers follow the book: chapters are numbered in the order of the ``numbered`` parts of ``_toc.yml``,
figures, tables and exercises per chapter in order of appearance.  Glued values come from the executed
chapter: the copy the book build leaves in ``_build/jupyter_execute/`` (used only if its code is the
chapter's code), else the build's execution cache, else the chapter is executed once and the result kept in
``_build/coursework/executed/``.

Why not QuantEcon's sphinx-tojupyter?  It is maintained and it is the right idea (notebooks written by a Sphinx
builder from the resolved document tree, so numbers and references come from Sphinx itself), but it does not
fit this book: it rebuilds cells from the document tree, so cell ids, cell tags (``otter-test``,
``remove-cell``) and the gated ``{solution-start}``/``{solution-end}`` structure are gone, and the student and
otter-grader versions could not be derived from its output; it has no support for sphinx-exercise's gated
solutions (only its own ``solution`` class on code blocks); and it would add a second full Sphinx build and
new dependencies (dask, nbdime) to the pinned stack.  The conversion needed here is small and line-based, and
an unknown directive or role is an error (never silently left in), so this module does it.
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import nbformat

from lnfl import coursework as cw

__all__ = [
    "ConversionError",
    "Target",
    "BookIndex",
    "Converter",
    "glue_values",
    "executed_notebook",
    "MYST_LEFTOVERS",
]

#: Patterns that must never appear in the Markdown of a plain notebook (the tests check every generated one).
MYST_LEFTOVERS = re.compile(
    r"(```+|~~~+|:::+)\s*\{[\w:.+-]+\}|\{glue|\{numref\}|\{prf:ref\}|\{(ref|doc|cite[\w:]*|eq|term)\}`"
)


class ConversionError(ValueError):
    """MyST that cannot be converted: an unknown directive or role, a missing label or glued value."""


@dataclass
class Target:
    """What a label points at: its page, kind, number on the page ("5.3") and title."""

    doc: str
    kind: str
    number: str | None
    title: str


@dataclass
class DocInfo:
    docname: str
    path: pathlib.Path
    title: str = ""
    chapter: int | None = None


_PRF_KINDS = (
    "theorem lemma definition proposition corollary remark example conjecture axiom criterion algorithm "
    "property observation assumption notation proof"
).split()
_ADMONITIONS = "note tip warning important hint caution attention danger error seealso admonition dropdown".split()
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_TARGET_LINE = re.compile(r"^\s*\(([\w.:-]+)\)=\s*$")


def _md_cells(path: pathlib.Path) -> list[str]:
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        return [cw._source(c) for c in nb.get("cells", []) if c.get("cell_type") == "markdown"]
    text = path.read_text(encoding="utf-8")
    if text.startswith("---"):  # front matter
        end = text.find("\n---", 3)
        text = text[end + 4 :] if end > 0 else text
    return [text]


def _base_url(cfg: dict) -> str:
    base = ((cfg.get("html") or {}).get("baseurl") or "").strip()
    if base:
        return base.rstrip("/") + "/"
    url = ((cfg.get("repository") or {}).get("url") or "").strip().rstrip("/")
    m = re.match(r"^https://github\.com/([^/]+)/([^/]+?)(?:\.git)?$", url)
    if m:
        return f"https://{m[1].lower()}.github.io/{m[2]}/"
    return ""


class BookIndex:
    """Every labelled thing of the book (figures, tables, exercises, prf boxes, section targets, equations),
    the page titles and chapter numbers, the bibliography, and the book's base URL: read from ``_toc.yml``,
    ``_config.yml``, the pages and ``references.bib`` of a book folder."""

    def __init__(self, root: str | os.PathLike, extra: list[str | os.PathLike] = ()):
        import yaml

        self.root = pathlib.Path(root).resolve()
        cfg_path = self.root / "_config.yml"
        self.config = yaml.safe_load(cfg_path.read_text()) if cfg_path.is_file() else {}
        self.config = self.config or {}
        sphinx_cfg = (self.config.get("sphinx") or {}).get("config") or {}
        self.proof_title_format = sphinx_cfg.get("proof_title_format", " (%t)")
        self.base_url = _base_url(self.config)
        self.docs: dict[str, DocInfo] = {}
        self.labels: dict[str, Target] = {}
        self.bib: dict[str, tuple[str, str]] = {}
        self.bib_doc: str | None = None
        self._read_toc()
        for path in extra:  # pages outside the toc (copies, synthetic notebooks): numbered by a leading "NN_"
            path = pathlib.Path(path)
            if self.doc_of(path) in self.docs:
                continue
            m = re.match(r"^(\d+)_", path.stem)
            self.docs[path.stem] = DocInfo(path.stem, path, chapter=int(m[1]) if m else None)
        for info in self.docs.values():
            self._index_doc(info)
        self._read_bib()

    # -- the table of contents ---------------------------------------------------------------------------
    def _read_toc(self) -> None:
        import yaml

        toc_path = self.root / "_toc.yml"
        toc = yaml.safe_load(toc_path.read_text()) if toc_path.is_file() else {}
        toc = toc or {}
        order: list[tuple[str, bool]] = []
        if toc.get("root"):
            order.append((str(toc["root"]), False))

        def visit(entries: list, numbered: bool) -> None:
            for entry in entries or []:
                if isinstance(entry, dict) and entry.get("file"):
                    order.append((str(entry["file"]), numbered))
                    visit(entry.get("sections") or [], numbered)

        for part in toc.get("parts") or []:
            visit(part.get("chapters") or [], bool(part.get("numbered")))
        visit(toc.get("chapters") or [], bool(toc.get("numbered")))
        if not order:  # no toc: every chapter notebook, numbered by its file name
            for p in sorted((self.root / "chapters").glob("*.ipynb")):
                order.append((f"chapters/{p.stem}", True))
        number = 0
        for docname, numbered in order:
            docname = re.sub(r"\.(ipynb|md)$", "", docname)
            path = next(
                (
                    self.root / f"{docname}{ext}"
                    for ext in (".ipynb", ".md")
                    if (self.root / f"{docname}{ext}").is_file()
                ),
                None,
            )
            if path is None:
                continue
            chapter = None
            if numbered:
                number += 1
                chapter = number
            self.docs[docname] = DocInfo(docname, path, chapter=chapter)

    def doc_of(self, path: str | os.PathLike) -> str:
        """The docname of a page of the book (or of a copy of one: matched by file name)."""
        path = pathlib.Path(path)
        try:
            rel = path.resolve().relative_to(self.root)
            docname = str(rel.with_suffix("")).replace(os.sep, "/")
            if docname in self.docs:
                return docname
        except ValueError:
            pass
        for docname in self.docs:
            if docname.split("/")[-1] == path.stem:
                return docname
        return path.stem

    def number(self, docname: str, k: int) -> str:
        ch = self.docs[docname].chapter if docname in self.docs else None
        return f"{ch}.{k}" if ch is not None else str(k)

    # -- labels ------------------------------------------------------------------------------------------
    def _index_doc(self, info: DocInfo) -> None:
        counts: dict[str, int] = {}
        pending_target: list[str] = []
        docname = info.docname

        def count(kind: str) -> str:
            counts[kind] = counts.get(kind, 0) + 1
            return self.number(docname, counts[kind])

        def add(label: str | None, kind: str, number: str | None, title: str) -> None:
            if label:
                self.labels.setdefault(label, Target(docname, kind, number, title))

        def walk(text: str) -> None:
            lines = text.split("\n")
            blocks = cw.scan(text)
            starts = {b.start: b for b in blocks}
            i = 0
            while i < len(lines):
                if i in starts:
                    b = starts[i]
                    directive(b)
                    i = b.end
                    continue
                line = lines[i]
                t = _TARGET_LINE.match(line)
                if t:
                    pending_target.append(t[1])
                h = _HEADING.match(line)
                if h:
                    title = _strip_inline(h[2])
                    if len(h[1]) == 1 and not info.title:
                        info.title = title
                    for label in pending_target:
                        add(label, "section", None, title)
                    pending_target.clear()
                for eq in re.finditer(r"\$\$\s*\(([\w.:-]+)\)\s*$", line):
                    add(eq[1], "equation", count("equation"), "")
                i += 1

        def directive(b: cw.Block) -> None:
            name = b.name or ""
            label = b.options.get("label") or b.options.get("name")
            if name in ("exercise", "exercise-start"):
                num = count("exercise") if "nonumber" not in b.options else None
                add(label, "exercise", num, b.arg)
            elif name.startswith("prf:") and name[4:] in _PRF_KINDS:
                kind = name[4:]
                num = count(f"prf-{kind}") if "nonumber" not in b.options and kind != "proof" else None
                add(label, "prf", num, self.prf_title(kind, b.arg, num))
            elif name in ("figure", "glue:figure"):
                num = count("figure") if b.body.strip() else None
                add(label, "figure", num, _strip_inline(b.body.strip().split("\n\n")[0]) if b.body.strip() else "")
            elif name in ("table", "list-table", "csv-table"):
                add(label, "table", count("table"), _strip_inline(b.arg))
            elif name == "math":
                add(label, "equation", count("equation") if label else None, "")
            elif name == "bibliography":
                self.bib_doc = self.bib_doc or docname
            elif name in ("solution", "solution-start"):
                pass
            elif b.name is not None:
                walk(b.body)

        for text in _md_cells(info.path):
            walk(text)
        for label in pending_target:
            add(label, "section", None, info.title)

    def prf_title(self, kind: str, title: str, number: str | None) -> str:
        head = kind.capitalize()
        if number is not None:
            head += f" {number}"
        if title:
            head += self.proof_title_format.replace("%t", title)
        return head

    # -- bibliography ------------------------------------------------------------------------------------
    def _read_bib(self) -> None:
        files = (self.config.get("bibtex_bibfiles")) or []
        for name in files:
            path = self.root / name
            if not path.is_file():
                continue
            try:
                from pybtex.database import parse_file

                data = parse_file(str(path))
            except Exception:  # pragma: no cover - a broken .bib fails the book build first
                continue
            for key, entry in data.entries.items():
                people = entry.persons.get("author") or entry.persons.get("editor") or []
                lasts = [" ".join(p.last_names) for p in people]
                if len(lasts) >= 3:
                    who = f"{lasts[0]} et al."
                elif len(lasts) == 2:
                    who = f"{lasts[0]} and {lasts[1]}"
                else:
                    who = lasts[0] if lasts else key
                self.bib[key] = (_strip_latex(who), entry.fields.get("year", "n.d."))

    # -- URLs --------------------------------------------------------------------------------------------
    def url(self, docname: str, anchor: str | None = None) -> str:
        page = f"{self.base_url}{docname}.html"
        return f"{page}#{_anchor(anchor)}" if anchor else page


def _anchor(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def _strip_latex(text: str) -> str:
    return re.sub(r"[{}\\]", "", text)


def _strip_inline(text: str) -> str:
    """Heading/caption text without role markup (for titles of references)."""
    text = re.sub(r"\{[\w:.+-]*\}`([^`<]*?)\s*(<[^`]*>)?`", r"\1", text)
    return text.strip()


# ----------------------------------------------------------------------------------------------------------
# Glued values and executed notebooks
# ----------------------------------------------------------------------------------------------------------


def glue_values(executed: dict) -> dict[str, dict]:
    """``{key: mime bundle}`` of every ``myst_nb.glue`` call recorded in an executed notebook's outputs."""
    out: dict[str, dict] = {}
    for cell in executed.get("cells", []):
        for o in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            meta = (o.get("metadata") or {}).get("scrapbook") or {}
            name = meta.get("name")
            if not name:
                continue
            prefix = meta.get("mime_prefix", "")
            data = {}
            for mime, value in (o.get("data") or {}).items():
                key = mime[len(prefix) :] if prefix and mime.startswith(prefix) else mime
                data[key] = "".join(value) if isinstance(value, list) else value
            out[name] = data
    return out


def _code_sources(nb: dict) -> list[str]:
    return [cw._source(c).strip() for c in nb.get("cells", []) if c.get("cell_type") == "code"]


def _was_executed(nb: dict) -> bool:
    """Whether every code cell of ``nb`` ran: myst-nb leaves an *unexecuted* copy in ``_build/jupyter_execute/``
    when it takes a chapter's outputs from its cache, so a copy with the right code is not enough."""
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    return bool(code) and all(c.get("execution_count") is not None for c in code)


def executed_notebook(path: str | os.PathLike, root: str | os.PathLike | None = None, execute: bool = True) -> dict:
    """The executed version of the chapter at ``path``: the book build's copy in ``_build/jupyter_execute/``
    or the copy kept by an earlier call in ``_build/coursework/executed/`` (each used only if its code is the
    chapter's code and every code cell ran), else a match in the build's execution cache
    (``_build/.jupyter_cache``, which ``make test`` and ``make book`` fill), else (with ``execute``) the chapter
    is executed in its folder and the result kept for next time."""
    path = pathlib.Path(path)
    root_p = pathlib.Path(root) if root is not None else _find_root(path)
    nb = cw.read_notebook(path)
    code = _code_sources(nb)
    try:
        rel = path.resolve().relative_to(root_p.resolve())
    except ValueError:
        rel = pathlib.Path(path.name)
    keep = root_p / "_build" / "coursework" / "executed" / rel
    for candidate in (root_p / "_build" / "jupyter_execute" / rel, keep):
        if candidate.is_file():
            try:
                done = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if _code_sources(done) == code and _was_executed(done):
                return done
    cache = root_p / "_build" / ".jupyter_cache"
    if cache.is_dir():
        try:
            from jupyter_cache import get_cache

            _, merged = get_cache(str(cache)).merge_match_into_notebook(nbformat.from_dict(nb))
            return dict(merged)
        except Exception:  # no match (KeyError) or an unreadable cache: fall through to executing
            pass
    if not execute:
        raise ConversionError(f"{path}: no executed copy found (run `make book` or let the tool execute it)")
    from nbclient import NotebookClient

    node = nbformat.from_dict(copy.deepcopy(nb))
    client = NotebookClient(
        node, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        client.execute()
    except Exception as err:  # a failing chapter: one line, naming it
        first = str(err).strip().splitlines()
        raise ConversionError(
            f"{path}: executing the chapter failed: {first[-1] if first else type(err).__name__}"
        ) from None
    keep.parent.mkdir(parents=True, exist_ok=True)
    tmp = keep.with_name(f".{keep.name}.tmp")
    tmp.write_text(nbformat.writes(node), encoding="utf-8")
    os.replace(tmp, keep)
    return json.loads(nbformat.writes(node))


def _find_root(path: pathlib.Path) -> pathlib.Path:
    for parent in [path.resolve().parent, *path.resolve().parents]:
        if (parent / "_toc.yml").is_file():
            return parent
    return pathlib.Path.cwd()


# ----------------------------------------------------------------------------------------------------------
# The converter
# ----------------------------------------------------------------------------------------------------------

_ROLE_OR_CODE = re.compile(
    r"(?P<role>\{(?P<name>[\w:.+-]*)\}`(?P<content>[^`]*)`)|(?P<code>(?P<ticks>`+)[^`].*?(?P=ticks))"
)
_EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
_PY_ROLES = re.compile(r"^(py:)?(func|class|meth|attr|mod|data|obj|exc|const|function|method|module|property)$")


def _quote(title: str, body: str) -> str:
    lines = [f"**{title}**", ""] + body.strip("\n").split("\n") if body.strip() else [f"**{title}**"]
    return "\n".join(f"> {line}" if line.strip() else ">" for line in lines)


class Converter:
    """MyST → plain Markdown for the pages of one book (see the module docstring)."""

    def __init__(self, index: BookIndex, glue: Callable[[pathlib.Path], Mapping[str, dict]] | None = None):
        self.index = index
        self._glue_source = glue
        self._glue: dict[str, Mapping[str, dict]] = {}
        self.attachments: dict[str, dict[str, str]] = {}

    @classmethod
    def for_book(
        cls, root: str | os.PathLike | None = None, glue: Callable | None = None, extra: list = ()
    ) -> Converter:
        """A converter for the book at ``root`` (default: the folder holding ``_toc.yml`` above the current one,
        or the current folder); ``extra`` pages outside the book's toc are indexed too."""
        root_p = pathlib.Path(root) if root is not None else _find_root(pathlib.Path.cwd() / "x")
        return cls(BookIndex(root_p, extra=extra), glue=glue)

    # -- glue --------------------------------------------------------------------------------------------
    def glue_for(self, docname: str) -> Mapping[str, dict]:
        if docname not in self._glue:
            info = self.index.docs.get(docname)
            path = info.path if info is not None else self.index.root / f"{docname}.ipynb"
            if self._glue_source is not None:
                self._glue[docname] = self._glue_source(path)
            else:
                self._glue[docname] = glue_values(executed_notebook(path, self.index.root))
        return self._glue[docname]

    def _glued(self, doc: str, key: str, where: str) -> dict:
        if "::" in key:
            other, key = key.split("::", 1)
            doc = str((pathlib.PurePosixPath(doc).parent / other).as_posix())
            doc = re.sub(r"\.(ipynb|md)$", "", os.path.normpath(doc))
        try:
            return self.glue_for(doc)[key]
        except KeyError:
            raise ConversionError(f"{where}: no glued value named {key!r} in the executed {doc}") from None

    # -- whole notebooks ---------------------------------------------------------------------------------
    def renderer(self, path: str | os.PathLike, nb: dict) -> Callable[[cw.Piece], str]:
        """A function rendering the pieces of notebook ``nb`` (the page ``path``) for :mod:`lnfl.coursework`."""
        doc = self.index.doc_of(path)
        name = pathlib.Path(path).name

        def render(piece: cw.Piece) -> str:
            where = f"{name}: cell {piece.cell}"
            if piece.kind == "marker" and piece.block is not None:
                return self.marker(piece.block, doc, where)
            return self.markdown(piece.text, doc, where)

        return render

    def marker(self, block: cw.Block, doc: str, where: str) -> str:
        name = block.name
        if name in ("exercise", "exercise-start"):
            return _quote(self.exercise_title(block, doc), self.markdown(block.body, doc, where))
        if name in ("solution-start", "solution"):
            label = block.arg.split()[0] if block.arg.split() else ""
            title = f"Solution to {self.exercise_title_of(label, doc)}"
            if name == "solution":
                return _quote(title, self.markdown(block.body, doc, where))
            return f"**{title}**" + ("\n\n" + self.markdown(block.body, doc, where) if block.body.strip() else "")
        return ""  # exercise-end, solution-end

    def exercise_title(self, block: cw.Block, doc: str) -> str:
        label = block.options.get("label")
        target = self.index.labels.get(label) if label else None
        number = target.number if target is not None else None
        head = f"Exercise {number}" if number else "Exercise"
        return f"{head} ({self.inline(block.arg, doc, 'title')})" if block.arg else head

    def exercise_title_of(self, label: str, doc: str) -> str:
        target = self.index.labels.get(label)
        return f"Exercise {target.number}" if target is not None and target.number else "Exercise"

    def plain_notebook(self, path: str | os.PathLike, nb: dict | None = None, keep_solutions: bool = True) -> dict:
        """The chapter at ``path`` as a plain notebook (solutions kept, shown after a "Solution to Exercise N.k"
        heading; grading test cells dropped; outputs cleared)."""
        path = pathlib.Path(path)
        nb = nb if nb is not None else cw.read_notebook(path)
        parsed = cw.parse(nb, path.name)
        em = cw._walk(parsed, self.renderer(path, nb), keep_solutions=keep_solutions, scratch=not keep_solutions)
        out = copy.deepcopy({k: v for k, v in nb.items() if k != "cells"})
        out["metadata"].pop("widgets", None)
        out["cells"] = em.cells
        return self.finish(out, nb)

    def finish(self, out: dict, source: dict | None = None) -> dict:
        """Apply what the MyST cell tags mean in plain Jupyter, attach glued figures, name the generator."""
        cells = []
        for cell in out["cells"]:
            tags = cw._tags(cell)
            if cell["cell_type"] == "markdown":
                if "remove-cell" in tags:
                    continue
                refs = re.findall(r"\(attachment:([^)\s]+)\)", cw._source(cell))
                if refs:
                    cell["attachments"] = {r: self.attachments[r] for r in refs if r in self.attachments}
            elif cell["cell_type"] == "code":
                meta = cell.setdefault("metadata", {})
                if {"remove-cell", "hide-cell", "remove-input", "hide-input"} & set(tags):
                    meta.setdefault("jupyter", {})["source_hidden"] = True
                if {"remove-output", "hide-output", "hide-cell"} & set(tags):
                    meta.setdefault("jupyter", {})["outputs_hidden"] = True
            cells.append(cell)
        out["cells"] = cells
        out.setdefault("metadata", {})["lnfl_plain"] = {
            "book": self.index.base_url,
            "generated_by": "lnfl.plain (python -m lnfl.coursework plain|student|assign)",
        }
        return out

    # -- Markdown ----------------------------------------------------------------------------------------
    def markdown(self, text: str, doc: str, where: str) -> str:
        """One markdown text (a cell or a directive body) converted."""
        lines = text.split("\n")
        blocks = {b.start: b for b in cw.scan(text)}
        out: list[str] = []
        i = 0
        while i < len(lines):
            if i in blocks:
                b = blocks[i]
                if b.name is None:
                    out.extend(lines[b.start : b.end])
                else:
                    out.append(self.directive(b, doc, where))
                i = b.end
                continue
            line = lines[i]
            i += 1
            if _TARGET_LINE.match(line) or re.match(r"^\s*%", line) or re.match(r"^\s*\+\+\+", line):
                continue
            m = re.match(r"^(?P<pre>.*)\$\$\s*\((?P<label>[\w.:-]+)\)\s*$", line)
            if m:
                target = self.index.labels.get(m["label"])
                tag = f"\\tag{{{target.number}}}" if target is not None and target.number else ""
                line = f"{m['pre']}{tag}$$"
            h = _HEADING.match(line)
            if h and len(h[1]) == 1:
                info = self.index.docs.get(doc)
                title = self.inline(h[2], doc, where)
                if info is not None and info.chapter is not None and not re.match(r"^\d+(\.\d+)*\.?\s", title):
                    title = f"{info.chapter}. {title}"
                out.append(f"# {title}")
                continue
            out.append(self.inline(line, doc, where))
        return "\n".join(out)

    def directive(self, b: cw.Block, doc: str, where: str) -> str:
        name = b.name or ""
        body = lambda: self.markdown(b.body, doc, where)  # noqa: E731
        if name in ("exercise", "exercise-start", "solution", "solution-start", "exercise-end", "solution-end"):
            return self.marker(b, doc, where)
        if name.startswith("prf:") and name[4:] in _PRF_KINDS:
            kind = name[4:]
            label = b.options.get("label")
            target = self.index.labels.get(label) if label else None
            title = target.title if target is not None else self.index.prf_title(kind, b.arg, None)
            title = self.inline(title, doc, where)
            if kind == "proof":
                return _quote("Proof.", body() + "\n\n$\\blacksquare$")
            return _quote(title, body())
        if name in _ADMONITIONS:
            title = self.inline(b.arg, doc, where) if b.arg else name.capitalize().replace("Seealso", "See also")
            return _quote(title, body())
        if name == "glue:figure":
            return self.figure(b, doc, where)
        if name == "figure":
            label = b.options.get("name")
            target = self.index.labels.get(label) if label else None
            caption = self.markdown(b.body, doc, where).strip()
            head = f"**Figure {target.number}.** " if target is not None and target.number else ""
            return f"![{b.options.get('alt', '')}]({b.arg})" + (f"\n\n{head}{caption}" if caption or head else "")
        if name in ("glue:md", "glue", "glue:any", "glue:"):
            return self.glue_block(b.arg, doc, where)
        if name == "glue:math":
            data = self._glued(doc, b.arg, where)
            return f"$$\n{data.get('text/latex', data.get('text/plain', '')).strip('$')}\n$$"
        if name == "math":
            label = b.options.get("label")
            target = self.index.labels.get(label) if label else None
            tag = f"\\tag{{{target.number}}}" if target is not None and target.number else ""
            return f"$$\n{b.body.strip()}\n{tag}$$" if tag else f"$$\n{b.body.strip()}\n$$"
        if name in ("code-block", "code", "sourcecode", "code-cell"):
            return f"```{b.arg.split()[0] if b.arg.split() else ''}\n{b.body}\n```"
        if name == "table":
            label = b.options.get("name")
            target = self.index.labels.get(label) if label else None
            head = f"**Table {target.number}.** " if target is not None and target.number else ""
            return f"{head}{self.inline(b.arg, doc, where)}\n\n{body()}"
        if name in ("margin", "sidebar", "epigraph", "div", "card", "container", "topic"):
            return _quote(self.inline(b.arg, doc, where), body()) if b.arg else body()
        if name in ("raw",):
            return b.body if b.arg.strip() == "html" else ""
        if name in ("bibliography", "toctree", "tableofcontents", "contents"):
            return ""
        raise ConversionError(f"{where}: the directive {{{name}}} has no plain-Markdown rendering")

    def figure(self, b: cw.Block, doc: str, where: str) -> str:
        key = b.arg.split()[0] if b.arg.split() else ""
        data = self._glued(doc, key, where)
        label = b.options.get("name") or key
        target = self.index.labels.get(label)
        caption = self.markdown(b.body, doc, where).strip()
        head = f"**Figure {target.number}.** " if target is not None and target.number else ""
        alt = b.options.get("alt", "").replace("]", ")").replace("[", "(")
        for mime, ext in (("image/png", "png"), ("image/jpeg", "jpg"), ("image/svg+xml", "svg")):
            if mime in data:
                fname = f"{re.sub(r'[^A-Za-z0-9_.-]', '-', key)}.{ext}"
                value = data[mime]
                self.attachments[fname] = {mime: value if isinstance(value, str) else "".join(value)}
                img = f"![{alt}](attachment:{fname})"
                break
        else:  # a glued figure of text (a number, a table): shown as the page shows it
            img = self.glue_block(key, doc, where)
        return f"{img}\n\n{head}{caption}".rstrip()

    def glue_block(self, key: str, doc: str, where: str) -> str:
        data = self._glued(doc, key.split()[0] if key.split() else "", where)
        if "text/markdown" in data:
            return self.markdown(data["text/markdown"], doc, where)
        if "text/latex" in data:
            return data["text/latex"]
        if "text/plain" in data:
            return data["text/plain"]
        raise ConversionError(f"{where}: the glued value {key!r} has no Markdown or text form")

    # -- inline roles ------------------------------------------------------------------------------------
    def inline(self, text: str, doc: str, where: str) -> str:
        def sub(m: re.Match) -> str:
            if m["code"] is not None:
                return m["code"]
            return self.role(m["name"], m["content"], doc, where)

        return _ROLE_OR_CODE.sub(sub, text)

    def _ref_link(self, target_label: str, text: str) -> str:
        target = self.index.labels[target_label]
        return f"[{text}]({self.index.url(target.doc, target_label)})"

    def role(self, name: str, content: str, doc: str, where: str) -> str:
        explicit = _EXPLICIT.match(content)
        text, target = (explicit["text"].strip(), explicit["target"].strip()) if explicit else (None, content.strip())
        if name in ("glue:text", "glue", "glue:", "glue:any", "glue:md"):
            return self.glue_inline(name, content, doc, where)
        if name in ("numref", "ref", "prf:ref", "eq"):
            label = target
            if label not in self.index.labels:
                raise ConversionError(f"{where}: {{{name}}}`{content}` points at an unknown label {label!r}")
            t = self.index.labels[label]
            if name == "numref":
                default = {"figure": "Figure %s", "table": "Table %s", "exercise": "Exercise %s", "equation": "Eq. %s"}
                fmt = text if text is not None else default.get(t.kind, "%s")
                shown = fmt.replace("%s", t.number or "").replace("{number}", t.number or "").replace("{name}", t.title)
            elif name == "eq":
                shown = f"({t.number})" if t.number else label
            elif text is not None:
                shown = text
            elif t.kind == "exercise":
                shown = f"Exercise {t.number}" if t.number else "Exercise"
            elif t.kind in ("figure", "table") and not t.title:
                shown = f"{t.kind.capitalize()} {t.number}"
            else:
                shown = t.title or label
            return self._ref_link(label, self.inline(shown, doc, where))
        if name == "doc":
            ref = target
            if ref.startswith("/"):
                docname = ref.lstrip("/")
            else:
                docname = os.path.normpath(str(pathlib.PurePosixPath(doc).parent / ref)).replace(os.sep, "/")
            docname = re.sub(r"\.(ipynb|md)$", "", docname)
            info = self.index.docs.get(docname)
            if info is None:
                raise ConversionError(f"{where}: {{doc}}`{content}` points at an unknown page {docname!r}")
            return f"[{self.inline(text if text is not None else info.title, doc, where)}]({self.index.url(docname)})"
        if name.startswith("cite"):
            keys = [k.strip() for k in target.split(",") if k.strip()]
            parts = []
            for key in keys:
                if key not in self.index.bib:
                    raise ConversionError(f"{where}: {{{name}}}`{content}` cites an unknown key {key!r}")
                who, year = self.index.bib[key]
                parts.append((who, year))
            url = self.index.url(self.index.bib_doc) if self.index.bib_doc else ""
            if name in ("cite:t", "cite:ts"):
                shown = "; ".join(f"{w} [{y}]" for w, y in parts)
            else:
                shown = "[" + "; ".join(f"{w}, {y}" for w, y in parts) + "]"
            return f"[{shown}]({url})" if url else shown
        if name == "math":
            return f"${content}$"
        if _PY_ROLES.match(name) or name in ("code", "literal", "samp", "file", "command", "kbd", "envvar"):
            shown = text if text is not None else target
            shown = shown.lstrip("~").split(".")[-1] if target.startswith("~") and text is None else shown
            return f"`{shown}`"
        if name in ("term", "abbr", "sub", "sup", "emphasis", "strong", "dfn", "index"):
            shown = text if text is not None else target
            return {
                "emphasis": f"*{shown}*",
                "strong": f"**{shown}**",
                "sub": f"<sub>{shown}</sub>",
                "sup": f"<sup>{shown}</sup>",
            }.get(name, shown)
        if name == "download":
            return text if text is not None else target
        raise ConversionError(f"{where}: the role {{{name}}} has no plain-Markdown rendering")

    def glue_inline(self, name: str, content: str, doc: str, where: str) -> str:
        from myst_nb.core.variables import format_plain_text

        if name == "glue:text":
            parts = content.rsplit(":", 1)  # as myst-nb reads it: key[:format]
            key, fmt = (parts[0], parts[1]) if len(parts) == 2 else (content, "s")
            data = self._glued(doc, key, where)
            if "text/plain" not in data:
                raise ConversionError(f"{where}: the glued value {key!r} has no text/plain form")
            try:
                return format_plain_text(data["text/plain"], fmt or "s")
            except (ValueError, TypeError) as err:
                raise ConversionError(f"{where}: cannot format {key!r} with {fmt!r}: {err}") from None
        data = self._glued(doc, content, where)
        if name == "glue:md" and "text/markdown" in data:
            return self.markdown(data["text/markdown"], doc, where).strip()
        if "text/markdown" in data and name != "glue:text":
            return self.markdown(data["text/markdown"], doc, where).strip()
        if "text/plain" in data:
            return format_plain_text(data["text/plain"], "")
        raise ConversionError(f"{where}: the glued value {content!r} has no text form")
