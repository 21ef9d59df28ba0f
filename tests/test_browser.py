"""The built book as a reader's browser shows it: Debian's headless ``chromium`` loads every page.

For every chapter page: the mathematics is typeset by MathJax (every math element holds MathJax output,
no MathJax error, no raw TeX left in the text), every image has loaded (naturalWidth > 0), no error
output or traceback is shown, the theorem/definition and exercise/solution boxes are there (as many as
the notebook's directives) with their titles, widget outputs are rendered, every internal link leads to
an existing page and anchor, the page asks for nothing from another host and raises no JavaScript
error.  The appendix pages and the front page get the same generic checks.  Every page is also audited
by axe-core (``tools/vendor/axe/``, injected here and never shipped with the book) against the WCAG 2.1
A and AA rules: zero violations.  A full-page screenshot of each page, in the theme's light and dark
modes, is written to ``_build/screenshots/`` for people to look at (``chapters_05_stage_one.png`` and
``chapters_05_stage_one-dark.png``, and so on).

Runs on the BUILT book (``book_build`` fixture in conftest.py), in Debian's chromium driven by Selenium
through Debian's chromedriver (tools/chromium_cdp.py), and only where both exist: elsewhere every test
here is skipped with a message that says so.  Two static checks need no browser and always run: no page
references a remote script or stylesheet, and every figure image is opaque (readable in dark mode) and at
least 500 px wide.  One more check opens a chapter in this environment's JupyterLab (the README's way to run
the chapters) and asserts that jupyterlab-myst renders its theorem box instead of raw MyST.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
OTHER_PAGES = ["intro"] + sorted(
    f"appendix/{p.stem}" for p in (ROOT / "appendix").glob("*.*") if p.suffix in (".md", ".ipynb")
)

sys.path.insert(0, str(ROOT / "tools"))
from chromium_cdp import Chromium, missing, serve  # noqa: E402

pytestmark = pytest.mark.build
MISSING = missing()
SKIP_REASON = f"SKIPPED ONLY BECAUSE {MISSING}: the browser checks of the built book did not run"
AXE = ROOT / "tools" / "vendor" / "axe" / "axe.min.js"
# axe-core's tags for the rules of WCAG 2.0 and 2.1, levels A and AA
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

# Console messages that are known, harmless and not ours: sphinx-thebe 0.3.1 writes its inline config
# script twice on every page (the second copy throws), and browsers ask for /favicon.ico by themselves.
KNOWN_CONSOLE_NOISE = ("Identifier 'THEBE_JS_URL' has already been declared", "favicon.ico")

# Runs in the page after its load event: waits for MathJax, images and widgets, then reports.
INSPECT_JS = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  for (const img of document.images) img.loading = "eager";
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  await Promise.all([...document.images].map(img => img.complete ? null :
      new Promise(r => { img.addEventListener("load", r); img.addEventListener("error", r); setTimeout(r, 10000); })));
  const views = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length;
  for (let k = 0; k < 50 && document.querySelectorAll(".jupyter-widgets").length < views; k++) await sleep(200);
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;

  const main = document.querySelector("main") || document.body;
  // code is shown as written: listings, inline code, cell sources and API signatures (default values)
  const SKIP = "pre, code, script, style, textarea, mjx-container, .highlight, .cell_input, .sig";
  const TEX = /\\\(|\\\[|\$\$|\$[^$\s][^$]*\$|\\(frac|gamma|rho|mathrm|mathbb|sigma|xi|mu|tau|eta|ell|sum|langle|begin|left|right)(?![a-z])/;
  const rawTex = [];
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (node.parentElement && node.parentElement.closest(SKIP)) continue;
    if (TEX.test(node.textContent)) rawTex.push(node.textContent.trim().slice(0, 160));
  }
  const boxes = sel => [...main.querySelectorAll(sel)].map(el => ({
      id: el.id,
      // a {prf:proof} box has no title bar: sphinx-proof opens its first paragraph with "Proof."
      title: ((el.querySelector(".admonition-title") || {}).textContent
              || (el.id.startsWith("proof") && /^Proof\./.test(el.innerText.trim()) ? "Proof." : "")).trim(),
      height: el.getBoundingClientRect().height}));
  const errorSel = ".output.traceback, .output.error, .output.stderr, .system-message, .problematic";
  return {
    title: document.title,
    mathElements: main.querySelectorAll(".math").length,
    mathUntypeset: [...main.querySelectorAll(".math")].filter(el => !el.querySelector("mjx-container"))
        .map(el => el.textContent.trim().slice(0, 160)),
    mjx: main.querySelectorAll("mjx-container").length,
    mathjaxErrors: [...main.querySelectorAll("mjx-merror")].map(el => el.getAttribute("data-mjx-error") || el.textContent),
    rawTex: rawTex,
    images: [...main.querySelectorAll("img")].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0,
        described: !!(i.alt.trim() || (i.closest("figure") && i.closest("figure").querySelector("figcaption"))
                      || i.closest(".jupyter-widgets"))})),
    errorOutputs: [...main.querySelectorAll(errorSel)].map(el => el.className + ": " + el.textContent.trim().slice(0, 300)),
    traceback: main.innerText.includes("Traceback (most recent call last)"),
    proofs: boxes("div.proof"),
    exercises: boxes("div.exercise"),
    solutions: boxes("div.solution"),
    widgetViews: views,
    widgetsRendered: document.querySelectorAll(".jupyter-widgets").length,
    widgetErrors: main.innerText.includes("Error displaying widget"),
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
  };
})()
"""

# Loads axe-core into the page (hiding RequireJS's AMD `define`, which would otherwise capture it) and
# audits the whole document against WCAG 2.1 A/AA: every violation with the elements it names.
AXE_JS = r"""
(async () => {
  if (!window.axe) {
    (function (define, module, exports) { %s
    }).call(window, undefined, undefined, undefined);
  }
  const result = await window.axe.run(document, {runOnly: {type: "tag", values: %s}, resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map(n => ({target: n.target.join(" "), html: n.html.slice(0, 200),
                                            summary: (n.failureSummary || "").slice(0, 300)})),
      count: v.nodes.length}));
})()
"""

DARK_JS = r"""
(() => {
  document.documentElement.dataset.theme = "dark";
  document.documentElement.dataset.mode = "dark";
  return document.documentElement.dataset.theme;
})()
"""


def _directive_counts(nb: pathlib.Path) -> dict[str, int]:
    """How many prf boxes, exercises and solutions a notebook's markdown asks for."""
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    fence = r"^\s*(?:`{3,}|:{3,})"
    return {
        "proofs": len(re.findall(fence + r"\{prf:[a-z]+\}", text, re.M)),
        "exercises": len(re.findall(fence + r"\{exercise\}", text, re.M)),
        "solutions": len(re.findall(fence + r"\{solution(?:-start)?\}", text, re.M)),
    }


@pytest.fixture(scope="module")
def pages(request) -> dict[str, dict]:
    """Every chapter, appendix page and the front page, loaded in chromium once: what INSPECT_JS saw."""
    if MISSING:
        pytest.skip(SKIP_REASON)
    request.getfixturevalue("book_build")
    seen: dict[str, dict] = {}
    names = [f"chapters/{nb.stem}" for nb in CHAPTERS] + OTHER_PAGES
    axe_js = AXE_JS % (AXE.read_text(encoding="utf-8"), json.dumps(WCAG_TAGS))
    with serve(HTML) as base, Chromium(timeout=120) as browser:
        page = browser.new_page(width=1280, height=900)
        for name in names:
            if not (HTML / f"{name}.html").exists():
                continue  # reported by test_chapter_loads / not in the table of contents
            page.send("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "light"}]})
            page.goto(base + f"{name}.html")
            info = page.evaluate(INSPECT_JS, timeout=120)
            info["base"] = base
            info["requests"] = page.requested_urls()
            info["console"] = [e for e in page.console_errors() if not any(k in e for k in KNOWN_CONSOLE_NOISE)]
            info["axe"] = page.evaluate(axe_js, timeout=120)
            stem = name.replace("/", "_")
            info["screenshot"] = str(page.screenshot(SHOTS / f"{stem}.png"))
            info["top_light"] = _top_brightness(page)
            page.send("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
            page.evaluate(DARK_JS)
            info["screenshot_dark"] = str(page.screenshot(SHOTS / f"{stem}-dark.png"))
            info["top_dark"] = _top_brightness(page)
            seen[name] = info
    return seen


def _top_brightness(page) -> float:
    """Mean pixel (0 black .. 1 white) of the first screen of the page, as a reader first sees it."""
    import base64
    import io

    from matplotlib.image import imread

    data = page.send("Page.captureScreenshot", {"format": "png"})["data"]
    return float(imread(io.BytesIO(base64.b64decode(data)))[:, :, :3].mean())


def _check_generic(name: str, info: dict) -> None:
    """The checks every page gets: math, images, errors, remote requests, console errors."""
    assert not info["mathUntypeset"], f"{name}: math left untypeset by MathJax: {info['mathUntypeset'][:3]}"
    assert not info["mathjaxErrors"], f"{name}: MathJax could not typeset: {info['mathjaxErrors'][:3]}"
    assert not info["rawTex"], f"{name}: raw TeX visible in the text: {info['rawTex'][:3]}"
    broken = [img["src"] for img in info["images"] if not img["ok"]]
    assert not broken, f"{name}: images that did not load: {broken}"
    mute = [img["src"] for img in info["images"] if not img["described"]]
    assert not mute, f"{name}: figures with neither alt text nor a caption: {mute}"
    assert not info["errorOutputs"], f"{name}: error/stderr output or docutils error shown: {info['errorOutputs'][:2]}"
    assert not info["traceback"], f"{name}: a Python traceback is shown on the page"
    remote = [u for u in info["requests"] if not u.startswith((info["base"], "data:", "blob:", "about:"))]
    assert not remote, f"{name}: the page loaded resources from another host: {remote}"
    assert not info["console"], f"{name}: JavaScript errors in the browser console: {info['console'][:3]}"
    if info["widgetViews"]:
        assert info["widgetsRendered"] >= info["widgetViews"], (
            f"{name}: {info['widgetViews']} widget outputs but only {info['widgetsRendered']} rendered"
        )
        assert not info["widgetErrors"], f"{name}: 'Error displaying widget' shown"


_ids_cache: dict[pathlib.Path, set[str]] = {}


def _ids(path: pathlib.Path) -> set[str]:
    if path not in _ids_cache:
        _ids_cache[path] = set(
            re.findall(r'\b(?:id|name)="([^"]+)"', path.read_text(encoding="utf-8", errors="replace"))
        )
    return _ids_cache[path]


def _broken_links(info: dict) -> list[str]:
    """Internal links (to the served book) whose page does not exist or has no element with the anchor."""
    broken = []
    for url in info["links"]:
        if not url.startswith(info["base"]):
            continue
        parsed = urllib.parse.urlsplit(url)
        rel = urllib.parse.unquote(parsed.path[len(urllib.parse.urlsplit(info["base"]).path) :])
        target = HTML / (rel or "index.html")
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            broken.append(url)
        elif parsed.fragment and target.suffix == ".html":
            if urllib.parse.unquote(parsed.fragment) not in _ids(target):
                broken.append(url)
    return broken


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_in_browser(pages, nb):
    name = f"chapters/{nb.stem}"
    assert name in pages, f"{name}.html was not built (is the chapter in _toc.yml?)"
    info = pages[name]
    _check_generic(name, info)
    assert info["mathElements"] > 0 and info["mjx"] >= info["mathElements"], (
        f"{name}: {info['mathElements']} math elements but {info['mjx']} typeset by MathJax"
    )
    assert info["images"], f"{name}: no figure on the page"
    expected = _directive_counts(nb)
    for kind in ("proofs", "exercises", "solutions"):
        got = info[kind]
        assert len(got) == expected[kind], f"{name}: {expected[kind]} {kind} in the notebook, {len(got)} boxes rendered"
        untitled = [b["id"] for b in got if not b["title"]]
        assert not untitled, f"{name}: {kind} boxes without a title: {untitled}"
        if kind != "solutions":  # solutions are collapsed dropdowns; the others must take up space
            empty = [b["id"] for b in got if b["height"] <= 0]
            assert not empty, f"{name}: {kind} boxes with zero height: {empty}"
    assert expected["exercises"] >= 2, f"{name}: fewer than two exercises"
    broken = _broken_links(info)
    assert not broken, f"{name}: internal links to missing pages or anchors: {broken[:5]}"
    for shot in (info["screenshot"], info["screenshot_dark"]):
        assert pathlib.Path(shot).stat().st_size > 10_000, f"{name}: screenshot {shot} is (nearly) empty"


@pytest.mark.parametrize("name", OTHER_PAGES)
def test_other_page_in_browser(pages, name):
    if name not in pages:
        pytest.skip(f"{name} is not in the built book (not in _toc.yml)")
    info = pages[name]
    _check_generic(name, info)
    broken = _broken_links(info)
    assert not broken, f"{name}: internal links to missing pages or anchors: {broken[:5]}"


@pytest.mark.parametrize("name", [f"chapters/{nb.stem}" for nb in CHAPTERS] + OTHER_PAGES)
def test_page_passes_axe_wcag21_aa(pages, name):
    """axe-core finds no violation of the WCAG 2.1 A/AA rules on the page (light mode, as first loaded)."""
    if name not in pages:
        pytest.skip(f"{name} is not in the built book (not in _toc.yml)")
    violations = pages[name]["axe"]
    lines = [
        f"{v['id']} ({v['impact']}, {v['count']} elements): {v['help']}\n"
        + "\n".join(f"    {n['target']}: {n['html']}\n      {n['summary']}" for n in v["nodes"])
        for v in violations
    ]
    assert not violations, f"{name}: {len(violations)} axe-core WCAG 2.1 A/AA violations:\n" + "\n".join(lines)


def test_dark_mode_switches_theme(pages):
    """The two themes: the first screen of every page is darker in dark mode than in light mode."""
    for name, info in pages.items():
        light, dark = info["top_light"], info["top_dark"]
        assert light > 0.7, f"{name}: the light-mode screenshot is not light (mean pixel {light:.2f})"
        assert dark < light - 0.2, f"{name}: dark-mode screenshot is not darker (mean {dark:.2f} vs light {light:.2f})"


REMOTE_TAG = re.compile(
    r"<script\b[^>]*\bsrc=\"(?:https?:)?//[^\"]+\"|<link\b(?=[^>]*\brel=\"(?:stylesheet|preload|modulepreload)\")"
    r"[^>]*\bhref=\"(?:https?:)?//[^\"]+\"|@import\s+url\(['\"]?(?:https?:)?//",
    re.I,
)


def test_no_page_loads_remote_scripts_or_styles(book_build):
    """Static check (no browser needed): no built page names a script, stylesheet or import on another host."""
    pages = sorted(HTML.rglob("*.html"))
    assert pages, "no HTML pages were built"
    bad = {str(p.relative_to(HTML)): REMOTE_TAG.findall(p.read_text(encoding="utf-8")) for p in pages}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"pages that load from another host: {dict(list(bad.items())[:5])}"


def test_figures_are_opaque_and_legible(book_build):
    """Every figure image of the built book has an opaque background (readable in the theme's dark mode,
    where a transparent PNG would put dark text on a dark page) and is at least 500 px wide."""
    from matplotlib.image import imread

    images = sorted((HTML / "_images").glob("*.png"))
    assert images, "the built book has no figures"
    problems = []
    for path in images:
        img = imread(path)
        if img.ndim == 3 and img.shape[2] == 4 and float(img[..., 3].min()) < 1.0:
            problems.append(f"{path.name}: transparent pixels (min alpha {float(img[..., 3].min()):.2f})")
        if img.shape[1] < 500:
            problems.append(f"{path.name}: only {img.shape[1]} px wide")
    assert not problems, problems[:10]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(MISSING is not None, reason=SKIP_REASON)
def test_jupyterlab_renders_the_myst_of_a_chapter(tmp_path):
    """The README's `jupyter lab chapters/`: a chapter opened in this environment's JupyterLab shows its theorem
    box and exercises rendered by jupyterlab-myst, not raw ```{prf:theorem} fences (as it does when the extension
    is missing or disabled: seen failing with it disabled in the page config)."""
    import os
    import shutil
    import subprocess
    import time
    import urllib.request

    work = tmp_path / "lab"
    work.mkdir()
    shutil.copy(ROOT / "chapters" / "05_stage_one.ipynb", work)  # JupyterLab never writes next to the sources
    port = _free_port()
    env = os.environ | {"JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt")}
    env |= {"JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws")}
    jupyter = pathlib.Path(sys.executable).parent / "jupyter"
    server = subprocess.Popen(
        [str(jupyter), "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root", f"--ServerApp.root_dir={work}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        with Chromium() as browser:
            page = browser.new_page(1400, 1200)
            page.goto(f"{base}/lab/tree/05_stage_one.ipynb", timeout=120)
            rendered = ""
            for _ in range(120):  # JupyterLab loads its extensions and renders the cells after the load event
                rendered = page.evaluate(
                    "Array.from(document.querySelectorAll('.jp-MarkdownCell'))"  # the editor is hidden: innerText
                    ".map(e => e.innerText).join('\\n')"  # is what the reader sees
                )
                if "5.1 The theorem" in rendered and "Theorem (4.1" in rendered:
                    break
                time.sleep(0.5)
            page.screenshot(ROOT / "_build" / "screenshots" / "jupyterlab_05_stage_one.png", full_page=False)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "5.1 The theorem" in rendered, f"JupyterLab showed no rendered Markdown of the chapter: {rendered[:300]!r}"
    raw = [s for s in ("```{", "{prf:", "{exercise", "{numref", ":label:") if s in rendered]
    assert not raw, f"JupyterLab shows raw MyST ({raw}): is jupyterlab-myst loaded? (jupyter labextension list)"
    assert re.search(r"Theorem \(4\.1", rendered), f"no rendered Theorem 4.1 box: {rendered[:500]!r}"
