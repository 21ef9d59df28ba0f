"""Repository hygiene, run by `make test`: lint, workflow, stripped notebooks, licences, citation, version,
and a project that stands alone (it names no file it does not contain).

Ruff runs on lnfl/, tests/, tools/, _ext/ and the chapter template at the project's width (120), and on every
chapter notebook at the width a page shows, 88 columns with E501 on (chapters/ruff.toml says the same, so
`ruff format chapters/NN_x.ipynb` and the pre-commit hook agree with this test).
"""

import json
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
STRIP = ROOT / "tools" / "strip_outputs.py"
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"
LINTED = ["lnfl", "tests", "tools", "_ext", "templates"]
CHAPTERS = sorted(ROOT.glob("chapters/[0-9][0-9]_*.ipynb"))
NOTEBOOK_WIDTH = 88  # columns of code a page shows without cutting (issue: code cut at the right edge)
NOTEBOOKS = sorted(ROOT.glob("chapters/*.ipynb")) + sorted(ROOT.glob("appendix/*.ipynb"))


def _tool(name: str) -> str | None:
    """The venv's copy of a command-line tool (beside sys.executable), else the one on PATH."""
    exe = BIN / name
    return str(exe) if exe.exists() else shutil.which(name)


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


# --- lint ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [("check",), ("format", "--check")], ids=["ruff-check", "ruff-format"])
def test_ruff(args):
    ruff = _tool("ruff")
    assert ruff, "ruff is pinned in requirements.txt but is not installed (run `make install`)"
    paths = [p for p in LINTED if (ROOT / p).exists()]
    proc = _run(ruff, *args, *paths)
    assert proc.returncode == 0, f"`ruff {' '.join(args)} {' '.join(paths)}` failed:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize(
    "args", [("check", "--extend-select", "E501"), ("format", "--check")], ids=["ruff-check", "ruff-format"]
)
@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_ruff_chapter_notebook(args, nb):
    """Each chapter's code is lint-clean and formatted at 88 columns, the width of a page."""
    ruff = _tool("ruff")
    assert ruff, "ruff is pinned in requirements.txt but is not installed (run `make install`)"
    rel = str(nb.relative_to(ROOT))
    proc = _run(ruff, *args, "--line-length", str(NOTEBOOK_WIDTH), rel)
    assert proc.returncode == 0, (
        f"`ruff {' '.join(args)} --line-length {NOTEBOOK_WIDTH} {rel}` failed "
        f"(fix: `ruff format {rel}`, then shorten what the formatter cannot break):\n{proc.stdout[-4000:]}{proc.stderr}"
    )


def test_chapter_ruff_config_is_88_columns():
    """chapters/ruff.toml makes every plain `ruff` call on a chapter use 88 columns and E501, as the test does."""
    ruff = _tool("ruff")
    assert ruff, "ruff is not installed (run `make install`)"
    for nb in CHAPTERS[:1]:
        settings = _run(ruff, "check", "--show-settings", str(nb.relative_to(ROOT))).stdout
        assert re.search(rf"^linter\.line_length = {NOTEBOOK_WIDTH}$", settings, re.M), (
            "chapters/ruff.toml not in effect"
        )
        assert re.search(r"E501", settings.split("linter.rules.should_fix")[0]), "E501 is not enabled for chapters"


def test_workflow_passes_actionlint():
    actionlint = _tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (requirements.txt pins it; run `make install`)")
    proc = _run(actionlint, "-no-color", str(WORKFLOW.relative_to(ROOT)))
    assert proc.returncode == 0, f"actionlint found problems:\n{proc.stdout}{proc.stderr}"


def test_workflow_publishes_the_book():
    wf = yaml.safe_load(WORKFLOW.read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads the bare key `on` as True
    assert "pull_request" in on and on["push"]["branches"] == ["main"]
    jobs = wf["jobs"]
    assert any(s.get("run", "").strip() == "bash .ci/run" for s in jobs["test"]["steps"]), "PRs must run .ci/run"
    uses = [s.get("uses", "") for job in jobs.values() for s in job.get("steps", [])]
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    assert any(u.startswith("actions/deploy-pages@") for u in uses)
    assert jobs["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}


# --- notebooks are committed without outputs -------------------------------------------------------


def test_notebooks_have_no_outputs():
    proc = _run(sys.executable, str(STRIP), "--check", *map(str, NOTEBOOKS))
    assert proc.returncode == 0, f"notebooks with outputs (run `python tools/strip_outputs.py FILES`):\n{proc.stdout}"


def _executed_notebook() -> dict:
    return {
        "cells": [
            {"cell_type": "markdown", "id": "m1", "metadata": {}, "source": ["# Title\n", "Text."]},
            {
                "cell_type": "code",
                "id": "c1",
                "execution_count": 3,
                "metadata": {"tags": ["remove-cell"], "execution": {"iopub.execute_input": "2026-01-01"}},
                "outputs": [{"output_type": "stream", "name": "stdout", "text": ["1\n"]}],
                "source": "print(1)",
            },
            {"cell_type": "code", "id": "c2", "execution_count": None, "metadata": {}, "outputs": [], "source": ""},
        ],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "widgets": {},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_strip_script_on_a_temporary_notebook(tmp_path):
    original = tmp_path / "run.ipynb"
    original.write_text(json.dumps(_executed_notebook(), indent=1))
    before = original.read_bytes()

    # --check reports, and changes nothing
    proc = _run(sys.executable, str(STRIP), "--check", str(original))
    assert proc.returncode == 1 and "run.ipynb" in proc.stdout and "cell 1" in proc.stdout
    assert original.read_bytes() == before

    # writing elsewhere leaves the original untouched
    clean = tmp_path / "clean.ipynb"
    proc = _run(sys.executable, str(STRIP), str(original), "-o", str(clean))
    assert proc.returncode == 0, proc.stderr
    assert original.read_bytes() == before
    nb, ref = json.loads(clean.read_text()), _executed_notebook()
    code = nb["cells"][1]
    assert code["outputs"] == [] and code["execution_count"] is None
    assert code["metadata"] == {"tags": ["remove-cell"]}, "tags kept, execution timings dropped"
    assert "widgets" not in nb["metadata"] and nb["metadata"]["kernelspec"] == ref["metadata"]["kernelspec"]
    assert [c["source"] for c in nb["cells"]] == [c["source"] for c in ref["cells"]], "sources never change"
    assert [c["id"] for c in nb["cells"]] == ["m1", "c1", "c2"]
    assert _run(sys.executable, str(STRIP), "--check", str(clean)).returncode == 0

    # in place, then idempotent: a clean notebook is not rewritten
    assert _run(sys.executable, str(STRIP), str(original)).returncode == 0
    assert original.read_text() == clean.read_text()
    stripped, mtime = original.read_bytes(), original.stat().st_mtime_ns
    proc = _run(sys.executable, str(STRIP), str(original))
    assert proc.returncode == 0 and proc.stdout == ""
    assert original.read_bytes() == stripped and original.stat().st_mtime_ns == mtime


# --- licences, citation, version --------------------------------------------------------------------


def test_licence_files_exist():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    content = (ROOT / "LICENSE-CONTENT.md").read_text()
    assert "CC BY 4.0" in content and "creativecommons.org/licenses/by/4.0" in content


def _changelog_version() -> str:
    versions = re.findall(
        r"^## \[(\d+\.\d+\.\d+[^\]]*)\] - \d{4}-\d{2}-\d{2}\s*$", (ROOT / "CHANGELOG.md").read_text(), re.M
    )
    assert versions, "CHANGELOG.md has no '## [X.Y.Z] - YYYY-MM-DD' entry"
    return versions[0]


def test_citation_cff():
    import lnfl

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    for key in ("cff-version", "message", "title", "authors", "version", "license", "references"):
        assert key in cff, f"CITATION.cff lacks {key!r}"
    assert cff["cff-version"] == "1.2.0"
    assert cff["authors"] and all("name" in a or "family-names" in a for a in cff["authors"])
    assert str(cff["version"]) == lnfl.__version__, "CITATION.cff version differs from lnfl.__version__"
    paper = cff["references"][0]
    assert "Label Noise" in paper["title"] and paper["year"] == 2025
    assert (paper["start"], paper["end"]) == (21733, 21773)
    assert any("2505.18909" in i["value"] for i in paper["identifiers"])


def test_version_matches_changelog():
    import lnfl

    assert lnfl.__version__ == _changelog_version(), "bump lnfl.__version__ and CHANGELOG.md together"


def test_footer_extension_reports_the_version():
    sys.path.insert(0, str(ROOT / "_ext"))
    try:
        import version_footer
    finally:
        sys.path.remove(str(ROOT / "_ext"))
    import lnfl

    assert version_footer.lnfl_version(ROOT) == lnfl.__version__
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", version_footer.build_date())
    assert f"Version {lnfl.__version__}" in version_footer.footer_html(lnfl.__version__, "2026-01-01")


# --- the project stands alone ------------------------------------------------------------------------
#
# Readers get this repository and nothing else: no text in it may send them to a private specification
# (the developers' notes files), to a folder beside the repository, or to a file path the project does not
# contain.  The names are assembled here so that this file does not match its own rule.

PRIVATE = re.compile(
    r"\b(?:" + "|".join(("theory", "design", "style")) + r")(?:\.md\b|\s*§\s*\d)|\.\./shared\b|/work/" + "shared"
)  # also the same citation without the file suffix (a name, then a section sign and a number)
TEXT_SUFFIXES = {
    ".md",
    ".py",
    ".ipynb",
    ".yml",
    ".yaml",
    ".toml",
    ".cfg",
    ".cff",
    ".txt",
    ".sh",
    ".bib",
    ".js",
    ".css",
    ".html",
    "",
}
# a path-like word ending in a source/document suffix, not part of a longer path, URL or shell variable
PATH_WORD = re.compile(
    r"(?<![\w$./@:-])((?:\.{1,2}/)*[\w-][\w.-]*(?:/[\w.-]+)*\.(?:md|py|ipynb|ya?ml|toml|sh|bib|cff|txt))(?![\w/-])"
)
# where a text names a file: inside `code` or ``literal`` spans, and as a Markdown link target
NAMING_SPAN = re.compile(r"``([^`\n]+)``|`([^`\n]+)`|\]\(([^)\s]+)\)")
# names that are patterns, not files: chapters/NN_x.ipynb, X.Y.Z, globs, and paths inside build outputs
PLACEHOLDER = re.compile(r"NN|X\.Y|\*|^_build/|^\.venv/|^/")


def _tracked_texts() -> dict[str, str]:
    """Every tracked text file of the project (notebooks: their cells' sources), by repository path."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    texts = {}
    for rel in filter(None, files.stdout.split("\0")):
        path = ROOT / rel
        if path.suffix not in TEXT_SUFFIXES or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if path.suffix == ".ipynb":
            text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
        texts[rel] = text
    return texts


def _missing_paths(rel: str, text: str, tracked: set[str]) -> list[str]:
    """The relative paths that ``text`` (the file ``rel``) names in code spans or links but that do not exist."""
    names = {pathlib.PurePosixPath(t).name for t in tracked}
    here = (ROOT / rel).parent
    missing = []
    for span in NAMING_SPAN.finditer(text):
        inner = next(g for g in span.groups() if g is not None)
        if "://" in inner:
            continue
        for word in PATH_WORD.finditer(inner):
            name = word.group(1)
            if PLACEHOLDER.search(name):
                continue
            if "/" not in name and span.group(3) is None and name != inner.strip():
                continue  # a bare file name inside a command is an argument (`grade ZIP submission.ipynb`)
            if (here / name).exists() or (ROOT / name).exists() or ("/" not in name and name in names):
                continue
            line = text.count("\n", 0, span.start()) + 1
            missing.append(f"{rel}:{line}: {name}")
    return missing


def test_no_private_spec_is_mentioned():
    """Nothing in the project cites the developers' private notes or a folder beside the repository: cite Han et al. (2025), key
    han2025labelnoise in references.bib, and the book's own chapters instead."""
    hits = [
        f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
        for rel, text in _tracked_texts().items()
        for m in PRIVATE.finditer(text)
    ]
    assert not hits, "the project cites files readers do not have:\n" + "\n".join(hits[:40])


def test_mentioned_paths_exist():
    """Every relative path to a source or document file that the project names in a code span or a link exists."""
    texts = _tracked_texts()
    tracked = set(texts) | set(
        subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    )
    missing = [m for rel, text in texts.items() for m in _missing_paths(rel, text, tracked)]
    assert not missing, "the project names files it does not contain:\n" + "\n".join(missing[:40])


def test_the_path_rule_catches_what_it_should(tmp_path):
    """The two rules above fire on made-up text (so a regression in their patterns cannot pass silently)."""
    spec = "see " + "theory" + ".md §6, " + "../" + "shared/x, " + "design" + " §3"
    assert len(PRIVATE.findall(spec)) == 3
    assert not PRIVATE.findall("information theory, a design choice, §6 of Chapter 2")
    tracked = {"lnfl/data.py"}
    text = (  # '#' stands for '.' so that this file does not name the missing paths itself
        "Run `python tools/gone#py --fast`; see [the notes](docs/notes#md) and ``lnfl/data#py``; "
        "`chapters/NN_x#ipynb` is a pattern, `_build/html/index#html` an output, [home](https://x#org/a#md); "
        "`grade ZIP mine#ipynb` takes an argument, but `gone#md` names a file."
    ).replace("#", ".")
    missing = _missing_paths("README.md", text, tracked)
    assert [m.split(": ", 1)[1] for m in missing] == ["tools/gone.py", "docs/notes.md", "gone.md"], missing
