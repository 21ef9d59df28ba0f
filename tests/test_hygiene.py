"""Repository hygiene, run by `make test`: lint, workflow, stripped notebooks, licences, citation, version.

Ruff runs on lnfl/, tests/, tools/, _ext/ and the chapter template here; the pre-commit hook also runs it on
chapters/*.ipynb.  (The chapters are being written now; add them to ``LINTED`` once they are lint-clean.)
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
