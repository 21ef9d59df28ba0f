"""Sphinx extension: the book's HTML pages pass axe-core's WCAG 2.1 A/AA audit (tests/test_browser.py).

Registered in ``_config.yml`` as a local extension (``sphinx: local_extensions: {accessible_pages: _ext}``).
What it changes, each for a violation axe-core found on the built pages:

- **Header buttons** (``label-content-name-mismatch``, every page): the theme's search field and
  colour-mode button had accessible names that left out their visible text.  ``_ext/templates/``
  overrides the two theme components (``search-button-field.html``, ``theme-switcher.html``).
- **Bibliography** (``aria-required-children``, ``aria-deprecated-role``): docutils writes citations as
  ``<div role="list">`` holding ``role="doc-biblioentry"`` entries, a role ARIA 1.2 deprecates and that is
  no list item.  The entries get ``role="listitem"``.
- **Hidden code cells** (``label-content-name-mismatch``): myst-nb names the toggle of a ``hide-input``
  cell "Toggle hidden content" while it shows "Show code cell source"; the ``<summary>`` is named by what
  it shows.
- **Links in tinted boxes** (``color-contrast``): the theme's link blue on an exercise or theorem box's
  tinted background reached only 4.3:1; ``book-assets/accessible-pages.css`` darkens links inside
  admonitions (light mode) to above 4.5:1.
- **Colour mode**: the theme's ``default_mode`` is empty, so a first visit logs "Got invalid theme mode"
  to the console; it is set to ``auto`` (follow the reader's system setting) unless _config.yml sets one.
"""

from __future__ import annotations

import pathlib

from sphinx.application import Sphinx
from sphinx.config import Config

HERE = pathlib.Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
CSS = "accessible-pages.css"  # in book-assets/, copied to _static/ by html_static_path


def _configure(app: Sphinx, config: Config) -> None:
    if str(TEMPLATES) not in config.templates_path:
        config.templates_path.insert(0, str(TEMPLATES))
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "auto")  # read by the theme's layout.html, not a theme option
    config.html_context = context


#: (what docutils / myst-nb write, what the page gets instead)
BODY_FIXES = (
    ('role="doc-biblioentry"', 'role="listitem"'),  # citations: items of their role="list" container
    ('<summary aria-label="Toggle hidden content">', "<summary>"),  # hide-input toggles: named by their text
)


def accessible_body(body: str) -> str:
    """A page body with :data:`BODY_FIXES` applied."""
    for old, new in BODY_FIXES:
        body = body.replace(old, new)
    return body


def _page(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    if "body" in context:
        context["body"] = accessible_body(context["body"])


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("config-inited", _configure)
    app.connect("html-page-context", _page)
    app.add_css_file(CSS)
    return {"version": "0.1.0", "parallel_read_safe": True, "parallel_write_safe": True}
