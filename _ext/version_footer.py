"""Sphinx extension: show the book's version and build date in every page's footer.

Registered in ``_config.yml`` as a local extension::

    sphinx:
      local_extensions:
        version_footer: _ext

It appends ``Version X.Y.Z · built YYYY-MM-DD (UTC)`` to the theme's ``extra_footer`` (keeping whatever
``html.extra_footer`` already says) and exposes ``lnfl_version`` and ``build_date`` to templates through
``html_context``.  The version is ``lnfl.__version__``, the same number as in ``CITATION.cff`` and the
latest ``CHANGELOG.md`` entry; the date honours ``SOURCE_DATE_EPOCH`` for reproducible builds.
"""

from __future__ import annotations

import datetime as _dt
import html
import os
import pathlib
import re

from sphinx.application import Sphinx
from sphinx.config import Config

__version__ = "0.1.0"


def lnfl_version(srcdir: str | os.PathLike | None = None) -> str:
    """``lnfl.__version__``; read from ``lnfl/__init__.py`` beside the book when lnfl is not importable."""
    try:
        import lnfl

        return lnfl.__version__
    except ImportError:
        init = pathlib.Path(srcdir or ".") / "lnfl" / "__init__.py"
        match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', init.read_text(encoding="utf-8"), re.M)
        if match is None:
            raise RuntimeError(f"no __version__ in {init}") from None
        return match.group(1)


def build_date() -> str:
    """Today's date in UTC (ISO format), or the date of ``SOURCE_DATE_EPOCH`` when that is set."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    now = _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc) if epoch else _dt.datetime.now(_dt.timezone.utc)
    return now.date().isoformat()


def footer_html(version: str, date: str) -> str:
    return (
        f'<p class="lnfl-version-footer">Version {html.escape(version)} · '
        f'built <time datetime="{html.escape(date)}">{html.escape(date)}</time> (UTC)</p>'
    )


def _on_config_inited(app: Sphinx, config: Config) -> None:
    version, date = lnfl_version(app.srcdir), build_date()
    options = dict(config.html_theme_options or {})
    existing = options.get("extra_footer") or ""
    options["extra_footer"] = f"{existing}\n{footer_html(version, date)}" if existing else footer_html(version, date)
    config.html_theme_options = options
    context = dict(config.html_context or {})
    context.update(lnfl_version=version, build_date=date)
    config.html_context = context
    if not config.version:
        config.version = version
    if not config.release:
        config.release = version


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _on_config_inited)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
