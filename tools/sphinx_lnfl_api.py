"""Sphinx extension for the API reference (appendix/api.md): read lnfl's docstrings as they are written.

Registered in ``_config.yml`` as a local extension (``sphinx: local_extensions: {sphinx_lnfl_api: tools}``).

lnfl's docstrings are written for people reading the code, in the paper's notation, not in strict reST:

* ``|ℓ'_i|`` and ``|S_f|`` mean an absolute value and a set size, but reST reads ``|...|`` as a
  substitution reference (an error).  :func:`escape_bars` escapes every ``|`` outside inline literals and
  doctest lines before autodoc parses the docstring.
* a NumPy-style section (``Parameters`` over a line of dashes, then ``name : text`` entries with
  indented continuation lines) is not reST either; :func:`numpy_sections` turns it into a rubric and a
  bullet list (the entries' text stays text: "two distinct digits in 0..9" is not a type to link).
* a cross-reference written inside a module to a class of another module (``:meth:`History.t_clean_fit``` in
  ``lnfl.stages``) does not resolve in Sphinx, which searches only the current module.
  :func:`resolve_short_names` resolves such a reference when exactly one documented ``lnfl`` object has
  that dotted name as its suffix, and leaves it unresolved (a nitpicky warning) otherwise.
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

_LITERAL = re.compile(r"(``.*?``|`[^`]*`)")  # inline literals and roles/interpreted text: left untouched


def escape_bars(line: str) -> str:
    """``line`` with each ``|`` outside backquotes escaped as ``\\|`` (doctest lines are left as they are)."""
    stripped = line.lstrip()
    if stripped.startswith((">>>", "... ")) or "|" not in line:
        return line
    parts = _LITERAL.split(line)
    return "".join(p if i % 2 else re.sub(r"(?<!\\)\|", r"\\|", p) for i, p in enumerate(parts))


_SECTIONS = ("Parameters", "Returns", "Yields", "Raises", "Attributes", "Notes", "Examples", "See Also")


def numpy_sections(lines: list[str]) -> list[str]:
    """``lines`` with each NumPy-style section turned into ``.. rubric::`` and, for entry sections, a bullet list."""
    out: list[str] = []
    k = 0
    while k < len(lines):
        line = lines[k]
        title = line.strip()
        underline = lines[k + 1].strip() if k + 1 < len(lines) else ""
        if title in _SECTIONS and underline and set(underline) == {"-"} and len(underline) >= len(title):
            base = len(line) - len(line.lstrip())
            out += [" " * base + f".. rubric:: {title}", ""]
            k += 2
            if title in ("Notes", "Examples", "See Also"):
                continue
            while k < len(lines) and lines[k].strip():
                entry = lines[k]
                indent = len(entry) - len(entry.lstrip())
                if indent <= base:
                    name, sep, text = entry.strip().partition(" : ")
                    item = f"**{name}** — {text}" if sep else entry.strip()
                    out.append(" " * base + "* " + item)
                else:
                    out.append(" " * (base + 2) + entry.strip())
                k += 1
            out.append("")
            continue
        out.append(line)
        k += 1
    return out


def _process_docstring(app: Sphinx, what: str, name: str, obj: object, options: object, lines: list[str]) -> None:
    if not name.startswith("lnfl"):
        return
    lines[:] = numpy_sections(lines)
    in_literal_block = False
    literal_indent = 0
    for k, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if in_literal_block and line.strip() and indent <= literal_indent:
            in_literal_block = False
        if not in_literal_block:
            lines[k] = escape_bars(line)
        if line.rstrip().endswith("::"):
            in_literal_block, literal_indent = True, indent


def resolve_short_names(
    app: Sphinx, env: BuildEnvironment, node: nodes.Element, contnode: nodes.Element
) -> nodes.Element | None:
    """Resolve an unresolved ``py`` reference by a unique suffix match among the documented lnfl objects."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip(".~")
    if not target or target.startswith("lnfl."):
        return None
    domain = env.get_domain("py")
    matches = [name for name in domain.objects if name.startswith("lnfl.") and name.endswith("." + target)]
    if len(matches) != 1:
        return None
    node["reftarget"] = matches[0]
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], matches[0], node, contnode)


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("autodoc-process-docstring", _process_docstring)
    app.connect("missing-reference", resolve_short_names)
    return {"version": "0.1.0", "parallel_read_safe": True, "parallel_write_safe": True}
