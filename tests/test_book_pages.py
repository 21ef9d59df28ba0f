"""Fast checks (no build) of what the rendered book relies on: the vendored MathJax and widget manager, the
configuration that points at them, and the cross-references of the appendix pages.

The build-marked tests (test_browser.py, test_pdf.py) check the rendered result; these catch a missing
asset, an API page that forgot a module, or an appendix link to a label a chapter no longer has, in
seconds and without chromium.
"""

from __future__ import annotations

import importlib
import json
import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
ASSETS = ROOT / "book-assets"
APPENDIX = ROOT / "appendix"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
SPHINX = CONFIG["sphinx"]["config"]


def test_no_root_static_folder():
    """jupyter-book 1.x injects every .js/.css under a root _static/ (and every html_static_path) into every
    page: a _static/ folder would load MathJax and the widget manager twice on every page."""
    assert not (ROOT / "_static").exists(), "use book-assets/ (html_static_path), not _static/"


def test_mathjax_is_served_from_the_book():
    path = SPHINX["mathjax_path"]
    assert "://" not in path and not path.startswith("//"), f"mathjax_path {path!r} points at another host"
    assert (ASSETS / path).is_file(), f"mathjax_path {path!r} is not a file under book-assets/"
    fonts = list((ASSETS / path).parent.glob("output/chtml/fonts/woff-v2/MathJax_*.woff"))
    assert len(fonts) >= 20, f"MathJax's CommonHTML fonts are missing beside {path} ({len(fonts)} found)"
    assert (ASSETS / path).parent.joinpath("LICENSE").is_file(), "MathJax's licence must ship with it"


def test_widget_manager_is_served_from_the_book():
    scripts = list(SPHINX["nb_ipywidgets_js"])
    assert scripts, "nb_ipywidgets_js is empty: widget outputs would not render"
    for src in scripts:
        assert "://" not in src and not src.startswith("//"), f"widget script {src!r} points at another host"
        assert (ASSETS / src).is_file(), f"widget script {src!r} is not a file under book-assets/"
    names = [pathlib.PurePosixPath(s).name for s in scripts]
    assert names.index("require.js") < names.index("embed-amd.js"), "RequireJS must load before the manager"
    widgets = ASSETS / "offline" / "widgets"
    assert list(widgets.glob("*.woff2")), "the manager's icon fonts are missing"
    for lic in ("LICENSE", "LICENSE.requirejs", "embed.js.LICENSE.txt"):
        assert (widgets / lic).is_file(), f"licence file {lic} missing in {widgets}"


def test_vendored_files_match_their_checksums():
    """book-assets/offline/SOURCES.txt lists the npm packages and a sha256 per file (tools/vendor_assets.sh)."""
    import hashlib

    sources = (ASSETS / "offline" / "SOURCES.txt").read_text(encoding="utf-8")
    sums = re.findall(r"^([0-9a-f]{64})  \./(.+)$", sources, re.M)
    assert len(sums) >= 25, "SOURCES.txt lists too few files"
    for digest, rel in sums:
        data = (ASSETS / "offline" / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, f"{rel} differs from the vendored version"


def test_api_page_documents_every_module():
    text = (APPENDIX / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\.\. automodule:: (lnfl(?:\.\w+)?)\s*$", text, re.M))
    modules = {f"lnfl.{p.stem}" for p in (ROOT / "lnfl").glob("*.py") if not p.stem.startswith("_")}
    missing = sorted(modules - documented)
    assert not missing, f"appendix/api.md has no automodule for {missing}"
    stale = sorted(documented - modules - {"lnfl"})
    assert not stale, f"appendix/api.md documents modules that do not exist: {stale}"


def _chapter_labels() -> set[str]:
    labels: set[str] = set()
    for nb in (ROOT / "chapters").glob("*.ipynb"):
        for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "markdown":
                labels |= set(re.findall(r"^:(?:label|name): (\S+)", "".join(cell["source"]), re.M))
    return labels


APPENDIX_PAGES = sorted(APPENDIX.glob("*.md"))


@pytest.mark.parametrize("page", APPENDIX_PAGES, ids=lambda p: p.stem)
def test_appendix_cross_references_resolve(page):
    """Every {doc}, {prf:ref}, {ref}, {numref} and {py:...} target of an appendix page exists."""
    text = page.read_text(encoding="utf-8")
    labels = _chapter_labels()
    for role, target in re.findall(r"\{(doc|prf:ref|ref|numref|py:\w+)\}`([^`]+)`", text):
        target = re.sub(r"^.*<(.+)>$", r"\1", target).strip().lstrip("~")
        if role == "doc":
            base = ROOT if target.startswith("/") else page.parent
            stem = (base / target.lstrip("/")).resolve()
            assert any(stem.with_suffix(s).exists() for s in (".md", ".ipynb")), f"{page.name}: no document {target}"
        elif role.startswith("py:"):
            assert _py_target_exists(target), f"{page.name}: {role} target {target} does not exist in lnfl"
        else:
            assert target in labels, f"{page.name}: {role} target {target!r} is not a label of any chapter"


def _py_target_exists(target: str) -> bool:
    """Whether a dotted lnfl name exists: a module, a module attribute, a class member, a dataclass field or
    an instance attribute that the class's ``__init__`` assigns (``self.name = ...``)."""
    import dataclasses
    import inspect

    parts = target.split(".")
    for k in range(len(parts), 0, -1):  # longest importable module prefix
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        rest = parts[k:]
        break
    else:
        return False
    for i, name in enumerate(rest):
        if hasattr(obj, name):
            obj = getattr(obj, name)
            continue
        if i == len(rest) - 1 and inspect.isclass(obj):
            fields = {f.name for f in dataclasses.fields(obj)} if dataclasses.is_dataclass(obj) else set()
            return name in fields or f"self.{name}" in inspect.getsource(obj)
        return False
    return True
