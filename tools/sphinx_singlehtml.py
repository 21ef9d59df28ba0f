"""Sphinx extension: let the ``singlehtml`` builder (used by ``make pdf``) render every node the ``html`` builder can.

Registered in ``_config.yml`` as a local extension (``sphinx: local_extensions: {sphinx_singlehtml: tools}``).

Sphinx looks up node visitors by builder name first and falls back to the output format only when no
extension registered any visitor under that name.  sphinx-exercise registers visitors for ``singlehtml``,
so the ``html`` visitors of sphinx-proof, myst-nb and others are never consulted there, and the
single-page build stops with "unknown node type: definition_node".  When the builder is ``singlehtml``,
this adds every ``html`` visitor that has no ``singlehtml`` counterpart.
"""

from __future__ import annotations

from sphinx.application import Sphinx


def _merge_html_visitors(app: Sphinx) -> None:
    if app.builder.name != "singlehtml":
        return
    handlers = app.registry.translation_handlers
    handlers["singlehtml"] = {**handlers.get("html", {}), **handlers.get("singlehtml", {})}


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("builder-inited", _merge_html_visitors)
    return {"version": "0.1.0", "parallel_read_safe": True, "parallel_write_safe": True}
