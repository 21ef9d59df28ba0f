"""lnfl.coursework: student versions, the exercise check and the Colab cell, on synthetic notebooks and on the
real chapters as they exist when the tests run."""

import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from lnfl import coursework as cw

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
URL = "https://github.com/example/label-noise-book"


def ex(label, body="Do something.", fence="```"):
    return f"{fence}{{exercise}}\n:label: {label}\n\n{body}\n{fence}"


def sol_start(label, fence="```"):
    return f"{fence}{{solution-start}} {label}\n:class: dropdown\n{fence}"


def sol_end(fence="```"):
    return f"{fence}{{solution-end}}\n{fence}"


def code(src, output=True):
    cell = new_code_cell(src)
    if output:
        cell["outputs"] = [nbformat.v4.new_output("stream", name="stdout", text="out\n")]
        cell["execution_count"] = 3
    return cell


def notebook(*cells):
    nb = new_notebook(cells=list(cells))
    nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return nb


def sources(nb):
    return [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]


def simple():
    return notebook(
        new_markdown_cell("# Title"),
        code("x = 1"),
        new_markdown_cell(ex("ex-a")),
        new_markdown_cell(sol_start("ex-a") + "\n\nThe answer is 2."),
        code("assert x + 1 == 2"),
        new_markdown_cell("More solution prose."),
        code("print('solution')"),
        new_markdown_cell(sol_end()),
        new_markdown_cell("## Summary"),
    )


# ------------------------------------------------------------------------------------------------------------
# synthetic notebooks
# ------------------------------------------------------------------------------------------------------------


def test_student_removes_solutions_and_adds_scratch():
    nb = simple()
    before = json.dumps(nb, sort_keys=True)
    st = cw.student_notebook(nb)
    assert json.dumps(nb, sort_keys=True) == before, "the source notebook object must not change"
    assert sources(st) == [
        ("markdown", "# Title"),
        ("code", "x = 1"),
        ("markdown", ex("ex-a")),
        ("code", cw.SCRATCH),
        ("markdown", "## Summary"),
    ]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in st["cells"] if c["cell_type"] == "code")
    assert st["metadata"]["lnfl_student"]["exercises"] == ["ex-a"]
    ids = [c["id"] for c in st["cells"]]
    assert len(set(ids)) == len(ids) and ids[0] == nb["cells"][0]["id"], "ids unique, original ids kept"
    nbformat.validate(nbformat.from_dict(st))


def test_student_splits_cells_that_mix_solution_fences_and_other_text():
    nb = notebook(
        new_markdown_cell("Intro.\n\n" + ex("ex-1") + "\n\n" + sol_start("ex-1") + "\n\nhidden prose"),
        code("assert True"),
        new_markdown_cell(sol_end() + "\n\n" + ex("ex-2", fence="````") + "\n\nText after the exercise."),
        new_markdown_cell(sol_start("ex-2", fence=":::")),
        code("y = 2\nassert y == 2"),
        new_markdown_cell(sol_end(fence=":::") + "\n\nKept after the end."),
    )
    st = cw.student_notebook(nb)
    assert sources(st) == [
        ("markdown", "Intro.\n\n" + ex("ex-1")),
        ("code", cw.SCRATCH),
        ("markdown", ex("ex-2", fence="````")),
        ("code", cw.SCRATCH),
        ("markdown", "Text after the exercise."),
        ("markdown", "Kept after the end."),
    ]
    text = json.dumps(st)
    assert "hidden prose" not in text and "solution-start" not in text and "solution-end" not in text
    assert st["metadata"]["lnfl_student"]["exercises"] == ["ex-1", "ex-2"]


def test_student_keeps_code_blocks_inside_exercises_and_drops_plain_solutions():
    body = "Run\n\n```python\nprint(1)\n```\n\nand explain."
    nb = notebook(
        new_markdown_cell(ex("ex-c", body=body, fence="````")),
        new_markdown_cell("```{solution} ex-c\nA plain solution.\n```\n\nAfter."),
        new_markdown_cell(ex("ex-d")),
        new_markdown_cell(sol_start("ex-d")),
        code("assert 1"),
        new_markdown_cell(sol_end()),
    )
    st = cw.student_notebook(nb)
    assert sources(st) == [
        ("markdown", ex("ex-c", body=body, fence="````")),
        ("code", cw.SCRATCH),
        ("markdown", "After."),
        ("markdown", ex("ex-d")),
        ("code", cw.SCRATCH),
    ]
    with pytest.raises(cw.MarkerError, match="second solution for ex-d"):
        cw.student_notebook(notebook(*nb["cells"], new_markdown_cell("```{solution} ex-d\nAgain.\n```")))


def test_student_handles_gated_exercises():
    nb = notebook(
        new_markdown_cell("```{exercise-start}\n:label: ex-g\n```\n\nUse this code:"),
        code("z = 3", output=False),
        new_markdown_cell("```{exercise-end}\n```"),
        new_markdown_cell(sol_start("ex-g")),
        code("assert z == 3"),
        new_markdown_cell(sol_end()),
    )
    st = cw.student_notebook(nb)
    assert [s for _, s in sources(st)] == [
        "```{exercise-start}\n:label: ex-g\n```\n\nUse this code:",
        "z = 3",
        "```{exercise-end}\n```",
        cw.SCRATCH,
    ]
    assert st["metadata"]["lnfl_student"]["exercises"] == ["ex-g"]
    assert cw.check_notebook(nb, "g.ipynb") == []


def test_check_accepts_a_good_notebook():
    assert cw.check_notebook(simple(), "good.ipynb") == []


@pytest.mark.parametrize(
    ("cells", "label", "phrase"),
    [
        ([new_markdown_cell(ex("ex-x"))], "ex-x", "no gated solution"),
        (
            [new_markdown_cell(ex("ex-x")), new_markdown_cell(sol_start("ex-x")), new_markdown_cell(sol_end())],
            "ex-x",
            "no code cell",
        ),
        (
            [
                new_markdown_cell(ex("ex-x")),
                new_markdown_cell(sol_start("ex-x")),
                code("   \n"),
                new_markdown_cell(sol_end()),
            ],
            "ex-x",
            "no code cell",
        ),
        ([new_markdown_cell("```{exercise}\nNo label.\n```")], "#1", "no :label:"),
        (
            [new_markdown_cell(ex("ex-x")), new_markdown_cell(sol_start("ex-x")), code("1")],
            "cell 1",
            "no {solution-end}",
        ),
        (
            [
                new_markdown_cell(ex("ex-x")),
                new_markdown_cell(sol_start("ex-y")),
                code("1"),
                new_markdown_cell(sol_end()),
            ],
            "cell 1",
            "not an exercise label",
        ),
    ],
)
def test_check_names_notebook_and_label(cells, label, phrase):
    problems = cw.check_notebook(notebook(*cells), "bad.ipynb")
    assert problems, "a problem must be found"
    text = "\n".join(map(str, problems))
    where = label if label.startswith("cell") else f"exercise {label}"
    assert f"bad.ipynb: {where}" in text and phrase in text, text


def _write(folder, name, nb):
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.from_dict(nb), folder / name)


def _hashes(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_cli_check_exit_codes(tmp_path, capsys):
    _write(tmp_path / "good", "a.ipynb", simple())
    assert cw.main(["check", str(tmp_path / "good")]) == 0
    _write(tmp_path / "bad", "b.ipynb", notebook(new_markdown_cell(ex("ex-lonely"))))
    assert cw.main(["check", str(tmp_path / "bad")]) == 1
    err = capsys.readouterr().err
    assert "b.ipynb: exercise ex-lonely: has no gated solution" in err
    assert cw.main(["check", str(tmp_path / "nowhere")]) == 1
    assert "must be a directory" in capsys.readouterr().err


def test_cli_student_refuses_unsafe_targets_and_never_changes_sources(tmp_path, capsys):
    src = tmp_path / "src"
    _write(src, "a.ipynb", simple())
    _write(src, "b.ipynb", simple())
    before = _hashes(src)
    out = tmp_path / "out"

    assert cw.main(["student", str(src), str(src)]) == 1
    assert cw.main(["student", str(src), str(src / "sub")]) == 1
    assert "SRC_DIR" in capsys.readouterr().err
    assert not (src / "sub").exists()

    assert cw.main(["student", str(src), str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.ipynb", "b.ipynb"]
    written = _hashes(out)

    # an existing file blocks the whole run (nothing is rewritten) unless --force
    (out / "b.ipynb").write_text("{}")
    (out / "a.ipynb").unlink()
    assert cw.main(["student", str(src), str(out)]) == 1
    err = capsys.readouterr().err
    assert "already exist" in err and "b.ipynb" in err and "--force" in err
    assert not (out / "a.ipynb").exists() and (out / "b.ipynb").read_text() == "{}"
    assert cw.main(["student", str(src), str(out), "--force"]) == 0
    assert _hashes(out) == written
    assert _hashes(src) == before, "sources must never change"


def test_module_runs_as_a_script(tmp_path):
    _write(tmp_path / "src", "a.ipynb", simple())
    proc = subprocess.run(
        [sys.executable, "-m", "lnfl.coursework", "student", str(tmp_path / "src"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "a.ipynb").exists()


# ------------------------------------------------------------------------------------------------------------
# the real chapters
# ------------------------------------------------------------------------------------------------------------


def _solution_code_cells(nb):
    """Indices of code cells between a markdown cell mentioning {solution-start} and one mentioning {solution-end}
    (an independent, cell-level reading of the gating)."""
    inside, found = False, set()
    for i, c in enumerate(nb["cells"]):
        src = "".join(c["source"])
        if c["cell_type"] == "markdown":
            if "{solution-start}" in src:
                inside = True
            if "{solution-end}" in src:
                inside = "{solution-start}" in src.split("{solution-end}")[-1]
        elif inside:
            found.add(i)
    return found


@pytest.mark.skipif(not CHAPTERS, reason="no chapter notebooks yet")
def test_real_chapters_student_versions(tmp_path):
    before = _hashes(ROOT / "chapters")
    written = cw.write_student_versions(ROOT / "chapters", tmp_path / "student", myst=True)
    assert _hashes(ROOT / "chapters") == before, "sources must never change"
    assert [p.name for p in written] == [p.name for p in CHAPTERS]
    for src_path, out_path in zip(CHAPTERS, written, strict=True):
        src = json.loads(src_path.read_text())
        st = json.loads(out_path.read_text())
        nbformat.validate(nbformat.from_dict(st))
        text = json.dumps(st)
        for raw in ("{solution-start}", "{solution-end}"):
            assert raw not in text, f"{out_path.name}: {raw} left in the student version"
        found, _ = cw.exercises(src, src_path.name)
        labels = [e.label for e in found]
        assert st["metadata"]["lnfl_student"]["exercises"] == labels
        scratch = [c for c in st["cells"] if c["cell_type"] == "code" and "".join(c["source"]) == cw.SCRATCH]
        assert len(scratch) == len(labels) >= 2, f"{out_path.name}: one scratch cell per exercise"
        md = "\n".join("".join(c["source"]) for c in st["cells"] if c["cell_type"] == "markdown")
        for label in labels:
            assert f":label: {label}" in md, f"{out_path.name}: exercise {label} lost"
        # every code cell outside the solutions is kept, in order, without outputs
        hidden = _solution_code_cells(src)
        kept = [
            "".join(c["source"]) for i, c in enumerate(src["cells"]) if c["cell_type"] == "code" and i not in hidden
        ]
        st_code = [c for c in st["cells"] if c["cell_type"] == "code"]
        assert ["".join(c["source"]) for c in st_code if "".join(c["source"]) != cw.SCRATCH] == kept
        assert all(not c["outputs"] and c["execution_count"] is None for c in st_code)
        assert st["cells"][0]["metadata"] == src["cells"][0]["metadata"], "the first (hidden) cell stays first"


@pytest.mark.skipif(not CHAPTERS, reason="no chapter notebooks yet")
def test_real_chapters_pass_check():
    problems = cw.check_dir(ROOT / "chapters")
    assert problems == [], "\n".join(map(str, problems))


# ------------------------------------------------------------------------------------------------------------
# Colab
# ------------------------------------------------------------------------------------------------------------


def test_colab_cell_text_and_url_from_config(tmp_path):
    cfg = tmp_path / "_config.yml"
    cfg.write_text(f"title: x\nrepository:\n  url: {URL}/\n  branch: main\n")
    assert cw.repository_url(cfg) == URL + "/"
    text = cw.colab_cell(config=cfg)
    assert f"git+{URL}" in text and "{url}" not in text and text.startswith(cw.COLAB_MARKER)
    compile(text, "colab-cell", "exec")
    (tmp_path / "empty.yml").write_text("title: x\n")
    with pytest.raises(ValueError, match="repository.url"):
        cw.colab_cell(config=tmp_path / "empty.yml")
    with pytest.raises(ValueError, match="https://"):
        cw.colab_cell("ftp://example.org/repo")


def test_colab_cell_does_nothing_when_lnfl_imports(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    exec(cw.colab_cell(URL), {})
    assert calls == [], "where lnfl is installed the cell must not install anything"


def test_colab_cell_installs_when_lnfl_is_missing(monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setitem(sys.modules, "lnfl", None)  # makes `import lnfl` raise ImportError
    exec(cw.colab_cell(URL), {})
    assert len(calls) == 1
    (cmd,), kwargs = calls[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"] and f"git+{URL}" in cmd and "myst-nb" in cmd
    assert kwargs.get("check") is True


def test_add_colab_cell_is_idempotent_and_hidden():
    nb = simple()
    once = cw.add_colab_cell(nb, url=URL)
    twice = cw.add_colab_cell(once, url=URL)
    assert sources(twice) == sources(once) and len(once["cells"]) == len(nb["cells"]) + 1
    first = once["cells"][0]
    assert first["cell_type"] == "code" and "remove-cell" in first["metadata"]["tags"]
    assert "".join(first["source"]) == cw.colab_cell(URL)
    assert sources(once)[1:] == sources(nb) and nb["cells"][0]["source"] == "# Title", "input unchanged"
    nbformat.validate(nbformat.from_dict(twice))


def test_student_with_colab_puts_the_cell_first(tmp_path):
    _write(tmp_path / "src", "a.ipynb", simple())
    assert cw.main(["student", str(tmp_path / "src"), str(tmp_path / "out"), "--colab", "--url", URL]) == 0
    st = json.loads((tmp_path / "out" / "a.ipynb").read_text())
    assert "".join(st["cells"][0]["source"]).startswith(cw.COLAB_MARKER)
    assert "".join(st["cells"][1]["source"]) == "# Title"


# ------------------------------------------------------------------------------------------------------------
# Binder environment (binder/): what can be checked without building the image
# ------------------------------------------------------------------------------------------------------------


def _pins(path):
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            pins[name.lower()] = version
    return pins


def test_binder_environment_matches_the_book():
    binder = ROOT / "binder"
    req = (binder / "requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in req.splitlines()
    book, env = _pins(ROOT / "requirements.txt"), _pins(binder / "requirements.txt")
    assert env["torch"].split("+")[0] == book["torch"].split("+")[0] and env["torch"].endswith("+cpu")
    runtime_only = {
        k: v for k, v in book.items() if k not in {"pytest", "nbval", "ruff", "pre-commit", "torch", "selenium"}
    }
    runtime_only = {k: v for k, v in runtime_only.items() if not k.startswith("actionlint")}
    for name, version in runtime_only.items():
        assert env.get(name) == version, f"binder/requirements.txt pins {name}=={env.get(name)}, the book {version}"
    assert (binder / "runtime.txt").read_text().strip() == f"python-{sys.version_info.major}.{sys.version_info.minor}"
    post = binder / "postBuild"
    assert post.stat().st_mode & 0o111, "postBuild must be executable"
    assert post.read_text().startswith("#!") and "pip install" in post.read_text() and "-e ." in post.read_text()


def test_instructors_guide_lists_every_exercise():
    guide = (ROOT / "appendix" / "instructors.md").read_text()
    listed = set(re.findall(r"^\| \{numref\}`(ex-[\w-]+)` \|", guide, flags=re.M))
    labels = set()
    for path in CHAPTERS:
        found, _ = cw.exercises(json.loads(path.read_text()), path.name)
        labels |= {e.label for e in found if e.label}
    assert labels - listed == set(), f"exercises missing from appendix/instructors.md: {sorted(labels - listed)}"
    assert listed - labels == set(), (
        f"appendix/instructors.md lists exercises that do not exist: {sorted(listed - labels)}"
    )


def test_cli_add_colab_cell_in_place(tmp_path, capsys, monkeypatch):
    _write(tmp_path, "a.ipynb", simple())
    path = tmp_path / "a.ipynb"
    assert cw.main(["add-colab-cell", str(path), "--url", URL]) == 0
    assert cw.main(["add-colab-cell", str(path), "--url", URL]) == 0
    nb = json.loads(path.read_text())
    firsts = ["".join(c["source"]) for c in nb["cells"][:2]]
    assert firsts[0].startswith(cw.COLAB_MARKER) and firsts[1] == "# Title", "one Colab cell, first"
    monkeypatch.chdir(tmp_path)  # no _config.yml here: no repository URL to use
    assert cw.main(["add-colab-cell", str(path)]) == 1
    assert "repository.url" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------------
# The tool never loses work: links, hard links, sources, errors midway (each case failed before this version)
# ------------------------------------------------------------------------------------------------------------


def _two_sources(tmp_path):
    src = tmp_path / "src"
    _write(src, "a.ipynb", simple())
    _write(src, "b.ipynb", simple())
    return src, _hashes(src)


def _no_traceback(capsys):
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out
    return out.err


def test_force_never_writes_through_a_symlink_to_a_source(tmp_path, capsys):
    src, before = _two_sources(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.ipynb").symlink_to(src / "a.ipynb")
    assert cw.main(["student", str(src), str(out), "--force"]) == 1
    assert "symbolic link" in _no_traceback(capsys)
    assert _hashes(src) == before, "the chapter was replaced by its student version"
    assert (out / "a.ipynb").is_symlink() and not (out / "b.ipynb").exists(), "nothing written when it refuses"


def test_force_never_writes_onto_a_hard_link_of_a_source(tmp_path, capsys):
    src, before = _two_sources(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    os.link(src / "b.ipynb", out / "b.ipynb")
    assert cw.main(["student", str(src), str(out), "--force"]) == 1
    err = _no_traceback(capsys)
    assert "same inode" in err or "hard link" in err, err
    assert _hashes(src) == before
    assert not (out / "a.ipynb").exists()


def test_a_dangling_symlink_never_creates_a_file_in_the_sources(tmp_path, capsys):
    src, before = _two_sources(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.ipynb").symlink_to(src / "new.ipynb")  # dangling, pointing into the sources
    assert cw.main(["student", str(src), str(out)]) == 1
    assert cw.main(["student", str(src), str(out), "--force"]) == 1
    _no_traceback(capsys)
    assert not (src / "new.ipynb").exists() and _hashes(src) == before


def test_an_output_folder_that_resolves_into_the_sources_is_refused(tmp_path, capsys):
    src, before = _two_sources(tmp_path)
    (tmp_path / "alias").symlink_to(src)
    for target in (tmp_path / "alias", tmp_path / "alias" / "deeper"):
        assert cw.main(["student", str(src), str(target), "--force"]) == 1
    assert "SRC_DIR" in _no_traceback(capsys)
    assert _hashes(src) == before


def test_an_error_midway_leaves_every_file_as_it_was(tmp_path, capsys, monkeypatch):
    src, before = _two_sources(tmp_path)
    out = tmp_path / "out"
    assert cw.main(["student", str(src), str(out)]) == 0
    (out / "a.ipynb").write_text("old a")
    (out / "b.ipynb").unlink()
    (out / "b.ipynb").mkdir()  # cannot be replaced by a file
    assert cw.main(["student", str(src), str(out), "--force"]) == 1
    _no_traceback(capsys)
    assert (out / "a.ipynb").read_text() == "old a", "a was overwritten although b failed"
    (out / "b.ipynb").rmdir()
    (out / "b.ipynb").write_text("old b")

    real_replace, calls = os.replace, []

    def failing_replace(a, b):  # the second move into place fails: the first must be undone
        calls.append((a, b))
        if str(b).endswith("b.ipynb") and not str(a).endswith(".bak"):
            raise OSError(28, "No space left on device")
        return real_replace(a, b)

    monkeypatch.setattr(cw.os, "replace", failing_replace)
    assert cw.main(["student", str(src), str(out), "--force"]) == 1
    monkeypatch.undo()
    assert (out / "a.ipynb").read_text() == "old a" and (out / "b.ipynb").read_text() == "old b"
    assert sorted(p.name for p in out.iterdir()) == ["a.ipynb", "b.ipynb"], "temporary files left behind"
    assert _hashes(src) == before


def test_nothing_is_written_if_any_notebook_is_malformed(tmp_path, capsys):
    src, _ = _two_sources(tmp_path)
    _write(src, "c.ipynb", notebook(new_markdown_cell(ex("ex-c")), new_markdown_cell(sol_start("ex-c")), code("1")))
    out = tmp_path / "out"
    assert cw.main(["student", str(src), str(out)]) == 1
    assert "c.ipynb: cell 1" in _no_traceback(capsys)
    assert not out.exists(), "an error leaves no partial output"


MALFORMED = {
    "start without end": (
        [new_markdown_cell(ex("ex-a")), new_markdown_cell(sol_start("ex-a")), code("x = 1")],
        1,
        "has no {solution-end}",
    ),
    "nested start": (
        [
            new_markdown_cell(ex("ex-a")),
            new_markdown_cell(ex("ex-b")),
            new_markdown_cell(sol_start("ex-a")),
            new_markdown_cell(sol_start("ex-b")),
            new_markdown_cell(sol_end()),
            new_markdown_cell("Lecture text after."),
        ],
        3,
        "inside the solution of ex-a",
    ),
    "end without start": (
        [new_markdown_cell(ex("ex-a")), new_markdown_cell(sol_end())],
        1,
        "without a {solution-start}",
    ),
    "marker quoted inside a code block": (
        [
            new_markdown_cell(ex("ex-a")),
            new_markdown_cell(sol_start("ex-a")),
            code("x = 1"),
            new_markdown_cell("Write the end like this:\n\n````md\n```{solution-end}\n```\n````"),
            code("secret = 42"),
            new_markdown_cell(sol_end()),
        ],
        3,
        "quoted inside a code block",
    ),
    "marker nested in a directive": (
        [new_markdown_cell("````{note}\n" + sol_start("ex-a") + "\n````"), new_markdown_cell(ex("ex-a"))],
        0,
        "nested inside a {note}",
    ),
    "unclosed exercise": ([new_markdown_cell("```{exercise}\n:label: ex-a\n\nNo end.")], 0, "never closed"),
    "marker in a code cell": (
        [new_markdown_cell(ex("ex-a")), code("```{solution-start} ex-a\n```")],
        1,
        "in a code cell",
    ),
    "start for an unknown label": (
        [new_markdown_cell(ex("ex-a")), new_markdown_cell(sol_start("ex-z")), code("1"), new_markdown_cell(sol_end())],
        1,
        "not an exercise label",
    ),
    "start without a label": (
        [new_markdown_cell(ex("ex-a")), new_markdown_cell("```{solution-start}\n```"), new_markdown_cell(sol_end())],
        1,
        "without the label",
    ),
    "exercise inside a solution": (
        [
            new_markdown_cell(ex("ex-a")),
            new_markdown_cell(sol_start("ex-a")),
            new_markdown_cell(ex("ex-b")),
            new_markdown_cell(sol_end()),
        ],
        2,
        "inside the solution of ex-a",
    ),
    "a test cell outside a solution": (
        [new_markdown_cell(ex("ex-a")), new_code_cell("assert True", metadata={"tags": ["otter-test"]})],
        1,
        "outside a solution",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_markers_are_an_error_naming_notebook_and_cell(tmp_path, capsys, case):
    cells, cell, phrase = MALFORMED[case]
    src = tmp_path / "src"
    _write(src, "ok.ipynb", simple())
    _write(src, "bad.ipynb", notebook(*cells))
    before = _hashes(src)
    out = tmp_path / "out"
    assert cw.main(["student", str(src), str(out)]) == 1, f"{case}: exit status 0"
    err = _no_traceback(capsys)
    assert f"bad.ipynb: cell {cell}: " in err and phrase in err, err
    assert len(err.strip().splitlines()) == 1, "one line"
    assert not out.exists() and _hashes(src) == before
    assert cw.main(["check", str(src)]) == 1
    assert f"bad.ipynb: cell {cell}: " in capsys.readouterr().err


BROKEN = {"a list": "[]", "an empty object": "{}", "a number": "42", "invalid JSON": '{"cells": [', "null": "null"}


@pytest.mark.parametrize("case", [*BROKEN, "cell without cell_type", "cells not a list"])
def test_a_broken_notebook_is_a_one_line_message(tmp_path, capsys, case):
    src = tmp_path / "src"
    _write(src, "ok.ipynb", simple())
    if case in BROKEN:
        (src / "bad.ipynb").write_text(BROKEN[case])
    else:
        nb = json.loads(nbformat.writes(nbformat.from_dict(simple())))
        if case == "cells not a list":
            nb["cells"] = {"0": nb["cells"][0]}
        else:
            del nb["cells"][1]["cell_type"]
        (src / "bad.ipynb").write_text(json.dumps(nb))
    for argv in (["student", str(src), str(tmp_path / "out")], ["check", str(src)]):
        assert cw.main(argv) == 1
        err = _no_traceback(capsys)
        assert "bad.ipynb" in err and "not a notebook" in err, err
        if argv[0] == "student":
            assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_add_colab_cell_never_rewrites_through_a_link(tmp_path, capsys):
    _write(tmp_path / "src", "a.ipynb", simple())
    before = _hashes(tmp_path / "src")
    (tmp_path / "link.ipynb").symlink_to(tmp_path / "src" / "a.ipynb")
    assert cw.main(["add-colab-cell", str(tmp_path / "link.ipynb"), "--url", URL]) == 1
    assert "symbolic link" in _no_traceback(capsys)
    assert _hashes(tmp_path / "src") == before


# ------------------------------------------------------------------------------------------------------------
# Plain notebooks (lnfl.plain): a small synthetic book
# ------------------------------------------------------------------------------------------------------------

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def _book(tmp_path, chapter_cells, extra_chapter=None):
    """A two-chapter book: _toc.yml with numbered parts, _config.yml, references.bib, a bibliography page."""
    root = tmp_path / "book"
    (root / "chapters").mkdir(parents=True)
    (root / "appendix").mkdir()
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - caption: A\n    numbered: 1\n    chapters:\n"
        "      - file: chapters/01_first\n  - caption: B\n    numbered: 1\n    chapters:\n"
        "      - file: chapters/02_second\n  - caption: Appendices\n    chapters:\n      - file: appendix/bibliography\n"
    )
    (root / "_config.yml").write_text(
        f"title: t\nbibtex_bibfiles: [references.bib]\nrepository:\n  url: {URL}\n"
        "sphinx:\n  config:\n    proof_title_format: ' %t'\n"
    )
    (root / "references.bib").write_text(
        "@inproceedings{han2025labelnoise,\n  author = {Han, Andi and Huang, Wei and Cao, Yuan and Zou, Difan},\n"
        "  title = {On the Role of Label Noise},\n  year = {2025}\n}\n"
    )
    (root / "intro.md").write_text("# Intro\n")
    (root / "appendix" / "bibliography.md").write_text("# Bibliography\n\n```{bibliography}\n```\n")
    first = extra_chapter or notebook(
        new_markdown_cell("# The first chapter\n\n```{glue:figure} fig-one\n:name: fig-ch01-one\n\nA caption.\n```"),
        new_markdown_cell(ex("ex-ch01-1")),
        new_markdown_cell(sol_start("ex-ch01-1")),
        code("y = 1", output=False),
        new_markdown_cell(sol_end()),
    )
    _write(root / "chapters", "01_first.ipynb", first)
    _write(root / "chapters", "02_second.ipynb", notebook(*chapter_cells))
    return root


SECOND = [
    new_code_cell("import secret_setup", metadata={"tags": ["remove-cell"]}),
    new_markdown_cell(
        "# Stage I (Theorem 4.1)\n\n(sec-intro)=\n## 2.1 Intro\n\n% a MyST comment\nText {cite}`han2025labelnoise`."
    ),
    new_markdown_cell("Hidden note for the book only.", metadata={"tags": ["remove-cell"]}),
    new_markdown_cell(
        "```{prf:theorem} 4.1 (Stage I)\n:label: thm-stage1\n:nonumber:\n\nThe signal leads, by {glue:text}`lead:.2f`.\n```\n\n"
        "```{prf:definition} (Stage I window; this book)\n:label: def-window\n:nonumber:\n\nA window.\n```"
    ),
    new_markdown_cell("```{glue:figure} fig-two\n:name: fig-ch02-a\n:alt: first\n\nFirst figure.\n```"),
    new_markdown_cell(
        "```{glue:figure} fig-three\n:name: fig-ch02-b\n\nSecond figure, see {numref}`fig-ch01-one`.\n```"
    ),
    new_markdown_cell(
        "See {numref}`fig-ch02-b`, {numref}`Fig. %s <fig-ch02-a>`, {prf:ref}`Theorem 4.1 <thm-stage1>`, "
        "{prf:ref}`def-window`, {ref}`sec-intro`, {ref}`ex-ch02-2`, {doc}`01_first`, "
        "{doc}`the first <01_first>`, {cite:t}`han2025labelnoise`, {glue:}`count` runs and `{numref}` in code."
    ),
    new_markdown_cell("```{glue:md} table\n:format: myst\n```"),
    new_markdown_cell("## Exercises\n\n" + ex("ex-ch02-1", body="Store it in `answer`.")),
    new_markdown_cell(sol_start("ex-ch02-1") + "\n\nWe compute it."),
    code("answer = 42", output=False),
    new_code_cell("assert answer == 42", metadata={"tags": ["remove-cell", "otter-test"]}),
    new_code_cell("assert isinstance(answer, int)", metadata={"tags": ["remove-cell", "otter-test", "otter-hidden"]}),
    new_markdown_cell(sol_end()),
    new_markdown_cell(ex("ex-ch02-2", body="Explain why.")),
    new_markdown_cell(
        sol_start("ex-ch02-2") + "\n\nBecause.\n\n**Rubric.** The reason (2 points); an example (1 point)."
    ),
    code("z = 1", output=False),
    new_markdown_cell(sol_end()),
]

GLUE = {
    "chapters/01_first": {"fig-one": {"image/png": PNG}},
    "chapters/02_second": {
        "lead": {"text/plain": "2.3456"},
        "fig-two": {"image/png": PNG},
        "fig-three": {"image/png": PNG},
        "count": {"text/plain": "20"},
        "table": {"text/markdown": "| a | b |\n|---|---|\n| $x$ | {numref}`fig-ch02-a` |"},
    },
}


def _glue_of(root):
    return lambda path: GLUE["chapters/" + pathlib.Path(path).stem]


def _md(nb):
    return "\n\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")


def test_plain_notebook_shows_what_the_page_shows(tmp_path):
    from lnfl import plain

    root = _book(tmp_path, SECOND)
    conv = plain.Converter(plain.BookIndex(root), glue=_glue_of(root))
    nb = conv.plain_notebook(root / "chapters" / "02_second.ipynb")
    nbformat.validate(nbformat.from_dict(nb))
    md = _md(nb)
    base = "https://example.github.io/label-noise-book/"  # GitHub Pages address of repository.url
    assert md.startswith("# 2. Stage I (Theorem 4.1)"), "chapter number from the toc's numbered parts"
    assert "> **Theorem 4.1 (Stage I)**" in md and "> **Definition (Stage I window; this book)**" in md
    assert "by 2.35." in md, "glued number formatted as the page formats it"
    assert "**Figure 2.1.** First figure." in md and "**Figure 2.2.** Second figure, see [Figure 1.1](" in md
    assert f"[Figure 2.2]({base}chapters/02_second.html#fig-ch02-b)" in md
    assert f"[Fig. 2.1]({base}chapters/02_second.html#fig-ch02-a)" in md
    assert f"[Theorem 4.1]({base}chapters/02_second.html#thm-stage1)" in md
    assert "[Definition (Stage I window; this book)](" in md, "prf:ref without text shows the box title"
    assert "[2.1 Intro](" in md and "[Exercise 2.2](" in md
    assert f"[The first chapter]({base}chapters/01_first.html)" in md and "[the first](" in md
    assert f"[[Han et al., 2025]]({base}appendix/bibliography.html)" in md and "[Han et al. [2025]](" in md
    assert "20 runs" in md and "`{numref}` in code" in md, "inline code is left alone"
    assert "| $x$ | [Figure 2.1](" in md, "glued Markdown is converted too"
    assert "> **Exercise 2.1**" in md and "> **Exercise 2.2**" in md and "**Solution to Exercise 2.1**" in md
    assert "Hidden note" not in md and "(sec-intro)=" not in md and "MyST comment" not in md
    assert not plain.MYST_LEFTOVERS.search(md.replace("`{numref}` in code", "")), md
    figs = [c for c in nb["cells"] if c.get("attachments")]
    assert [list(c["attachments"]) for c in figs] == [["fig-two.png"], ["fig-three.png"]]
    assert figs[0]["attachments"]["fig-two.png"]["image/png"] == PNG and "![first](attachment:fig-two.png)" in _md(nb)
    setup = nb["cells"][0]
    assert "".join(setup["source"]) == "import secret_setup" and setup["metadata"]["jupyter"]["source_hidden"] is True
    assert not any("otter-test" in c["metadata"].get("tags", []) for c in nb["cells"]), "grading tests dropped"
    path = root / "chapters" / "02_second.ipynb"
    student = conv.finish(cw.student_notebook(cw.read_notebook(path), conv.renderer(path, None), path.name))
    smd = _md(student)
    assert "We compute it" not in smd and "Because." not in smd and "Rubric" not in smd and "Solution to" not in smd
    assert not plain.MYST_LEFTOVERS.search(smd.replace("`{numref}` in code", ""))


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("{numref}`fig-nowhere`", "unknown label"),
        ("{glue:text}`missing`", "no glued value"),
        ("{madeup}`x`", "role {madeup}"),
        ("```{madeup}\nx\n```", "directive {madeup}"),
        ("{cite}`nobody2020`", "unknown key"),
    ],
)
def test_plain_conversion_never_leaves_myst_silently(tmp_path, text, phrase):
    from lnfl import plain

    root = _book(tmp_path, [new_markdown_cell("# T"), new_markdown_cell(text)])
    conv = plain.Converter(plain.BookIndex(root), glue=_glue_of(root))
    with pytest.raises(plain.ConversionError, match=re.escape(phrase)) as err:
        conv.plain_notebook(root / "chapters" / "02_second.ipynb")
    assert "02_second.ipynb: cell 1" in str(err.value)


def _fake_glue(path):
    """Every glued key of the real chapters, with a value of each kind (the converter is tested, not the runs)."""

    class Any(dict):
        def __missing__(self, key):
            return {"text/plain": "0.5", "image/png": PNG, "text/markdown": "| a |\n|---|\n| 1 |"}

    return Any()


@pytest.mark.skipif(not CHAPTERS, reason="no chapter notebooks yet")
def test_no_myst_syntax_left_in_any_generated_notebook(tmp_path):
    """Every plain chapter, student version and otter master notebook of the real chapters, opened with
    nbformat: no directive fence, glue, numref or prf:ref (or other role) left in any Markdown cell."""
    from lnfl import plain

    conv = plain.Converter(plain.BookIndex(ROOT), glue=_fake_glue)
    leftovers = []
    for path in CHAPTERS:
        try:
            nb = cw.read_notebook(path)
            parsed = cw.parse(nb, path.name)
        except cw.NotebookError as err:  # a chapter being edited right now: reported by the check test
            pytest.skip(f"chapter not parseable right now: {err}")
        render = conv.renderer(path, nb)
        outputs = {
            "plain": conv.plain_notebook(path, nb),
            "student": conv.finish(cw.student_notebook(nb, render, path.name)),
            "master": cw.master_notebook(parsed, render, path.stem, finish=conv.finish),
        }
        for kind, out in outputs.items():
            node = nbformat.reads(nbformat.writes(nbformat.from_dict(out)), as_version=4)
            for k, cell in enumerate(node.cells):
                if cell.cell_type == "markdown":
                    for m in plain.MYST_LEFTOVERS.finditer(cell.source):
                        leftovers.append(f"{path.name} ({kind}) cell {k}: {m.group(0)!r}")
    assert leftovers == [], "\n".join(leftovers[:20])


# ------------------------------------------------------------------------------------------------------------
# otter-grader end to end on one small chapter: execute (for the glued values), master notebook, otter assign,
# otter run on the solution (full marks) and on the untouched student notebook (zero on coding questions)
# ------------------------------------------------------------------------------------------------------------

RUNNABLE = [
    new_code_cell(
        "from myst_nb import glue\n\nx0 = 20\nglue('count', x0, display=False)", metadata={"tags": ["remove-cell"]}
    ),
    new_markdown_cell("# A small chapter\n\nWe ran {glue:text}`count` steps."),
    new_markdown_cell("## Exercises\n\n" + ex("ex-ch02-1", body="Store twice `x0` in `answer`.")),
    new_markdown_cell(sol_start("ex-ch02-1") + "\n\nWe double it."),
    new_code_cell("answer = 2 * x0\nprint(answer)"),
    new_code_cell("assert answer == 40", metadata={"tags": ["remove-cell", "otter-test"]}),
    new_code_cell(
        "assert isinstance(answer, int)\nfor k in range(3):\n    assert answer > k",
        metadata={"tags": ["remove-cell", "otter-test", "otter-hidden"]},
    ),
    new_markdown_cell(sol_end()),
    new_markdown_cell(ex("ex-ch02-2", body="Why is `answer` even?")),
    new_markdown_cell(
        sol_start("ex-ch02-2") + "\n\nIt is twice an integer.\n\n**Rubric.** Says twice an integer (2 points)."
    ),
    new_markdown_cell(sol_end()),
    new_markdown_cell("## Summary\n\nDone."),
]


def test_otter_assign_and_run_end_to_end(tmp_path, capsys, monkeypatch):
    root = _book(tmp_path, RUNNABLE)
    monkeypatch.chdir(tmp_path)
    out = pathlib.Path("assignments")  # relative, as `make assignments` passes it (otter runs in another folder)
    assert cw.main(["check", str(root / "chapters"), "--grading"]) == 1  # ex-ch01-1 has neither tests nor rubric
    assert "ex-ch01-1: is not gradable yet" in capsys.readouterr().err
    summaries = cw.write_assignments(root / "chapters", out, check=True, only=["02_second"], root=root)
    (s,) = summaries
    qs = {q["name"]: q for q in s["questions"]}
    assert qs["ex-ch02-1"]["points"] == 2 and not qs["ex-ch02-1"]["manual"], "coding: one point per test"
    assert qs["ex-ch02-2"]["points"] == 2 and qs["ex-ch02-2"]["manual"], "written: the rubric's points"
    assert s["solution_scores"] == {"ex-ch02-1": (2.0, 2.0)}
    assert s["student_scores"] == {"ex-ch02-1": (0.0, 2.0)}
    chapter = out / "02_second"
    assert (chapter / "autograder" / "02_second.ipynb").is_file() and (
        chapter / "student" / "02_second.ipynb"
    ).is_file()
    assert len(list((chapter / "autograder").glob("02_second-autograder_*.zip"))) == 1
    student = nbformat.read(chapter / "student" / "02_second.ipynb", as_version=4)
    smd = _md(student)
    assert "We ran 20 steps." in smd and "> **Exercise 2.1**" in smd and "We double it" not in smd
    assert "It is twice an integer" not in smd and "Rubric" not in smd
    sources_ = [c.source for c in student.cells if c.cell_type == "code"]
    assert "answer = 2 * x0" not in "\n".join(sources_) and 'grader.check("ex-ch02-1")' in "\n".join(sources_)
    hidden = json.dumps(student.metadata["otter"]["tests"])
    assert "answer == 40" in hidden and "answer > k" not in hidden, "hidden tests never reach students"
    solution = _md(nbformat.read(chapter / "autograder" / "02_second.ipynb", as_version=4))
    assert "It is twice an integer" in solution and "Says twice an integer (2 points)" in solution
    for nb in (student, nbformat.read(chapter / "autograder" / "02_second.ipynb", as_version=4)):
        from lnfl import plain

        assert not any(plain.MYST_LEFTOVERS.search(c.source) for c in nb.cells if c.cell_type == "markdown")
    # a second run replaces the folder only with --force, and never through a link
    with pytest.raises(FileExistsError):
        cw.write_assignments(root / "chapters", out, only=["02_second"], root=root)
    assert (
        cw.main(
            [
                "grade",
                str(next((chapter / "autograder").glob("*.zip"))),
                str(chapter / "autograder" / "02_second.ipynb"),
            ]
        )
        == 0
    )
    assert "total: 2/2" in capsys.readouterr().out


def test_instructors_guide_course_paths_respect_prerequisites():
    """Every course path of the guide takes each chapter after the chapters its row in the table needs."""
    guide = (ROOT / "appendix" / "instructors.md").read_text()
    needs = {}
    for num, need in re.findall(r"^\| \{doc\}`(\d+)\. [^`]*` \| ([^|]+) \|", guide, flags=re.M):
        need = need.split("(")[0]
        needs[int(num)] = {int(x) for x in re.findall(r"\d+", need)}
    assert len(needs) == len(CHAPTERS) >= 11, needs
    paths = re.findall(
        r"^- \*\*(.+?)\*\*(.*(?:\n  .*)*)", guide.split("Three ways through the material")[1], flags=re.M
    )
    assert len(paths) == 3, paths
    for name, text in paths:
        seen: list[int] = []
        for num in re.findall(r"chapters? ((?:\d+(?:, | and |; then )?)+)", text):
            seen += [int(x) for x in re.findall(r"\d+", num)]
        assert seen, name
        for k, ch in enumerate(seen):
            missing = needs[ch] - set(seen[:k])
            assert not missing, f"{name}: chapter {ch} comes before chapters {sorted(missing)} it needs"


def test_instructors_guide_table_is_generated_from_the_chapters():
    guide = (ROOT / "appendix" / "instructors.md").read_text()
    assert 'exercise_table("../chapters")' in guide and "kernelspec" in guide.split("---")[1]
    table = cw.exercise_table(ROOT / "chapters")
    labels = set()
    for path in CHAPTERS:
        found, _ = cw.exercises(json.loads(path.read_text()), path.name)
        labels |= {e.label for e in found if e.label}
    rows = table.splitlines()[2:]
    assert {re.match(r"\| \{numref\}`([\w-]+)`", r)[1] for r in rows} == labels


def test_jupyterlab_myst_and_otter_are_installed():
    """The README's `jupyter lab` command and `make assignments` need them (requirements.txt)."""
    bindir = pathlib.Path(sys.executable).parent
    proc = subprocess.run([str(bindir / "jupyter"), "lab", "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr
    assert (bindir / "otter").is_file(), "otter-grader's command line (otter run) is missing"
    import importlib.util

    assert importlib.util.find_spec("jupyterlab_myst") is not None, "jupyterlab-myst renders MyST in JupyterLab"
    # and declared compatible by JupyterLab itself: jupyterlab-myst 2.7.0 was built against @jupyter/ydoc 3, and
    # JupyterLab 4.6 (ydoc 4) lists it with a red X as "not compatible" (test_browser.py checks it renders)
    listing = subprocess.run(
        [str(bindir / "jupyter"), "labextension", "list"], capture_output=True, text=True, check=False
    )
    text = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)
    assert re.search(r"jupyterlab-myst v[\d.]+ enabled OK", text), text
    assert "not compatible" not in text, text


@pytest.mark.build
def test_plain_numbers_match_the_built_page(tmp_path):
    """Build a small two-part book with Jupyter Book (numbered parts, sphinx-proof, sphinx-exercise, glue) and
    check that the plain notebook numbers chapters, exercises, figures and theorem boxes as the page does."""
    import html as html_lib

    from lnfl import plain

    extra = new_markdown_cell(
        "```{glue:figure} count\n:name: fig-ch02-x\n\nA glued number as a figure.\n```\n\n"
        "```{prf:theorem} 4.1 (Stage I)\n:label: thm-x\n:nonumber:\n\nBody.\n```\n\n"
        "See {numref}`ex-ch02-2` and {numref}`fig-ch02-x`."
    )
    root = _book(tmp_path, [*RUNNABLE, extra])
    cfg = (
        (root / "_config.yml")
        .read_text()
        .replace(
            "sphinx:\n  config:\n",
            "sphinx:\n  extra_extensions: [sphinx_proof, sphinx_exercise, sphinxcontrib.bibtex]\n  config:\n"
            "    numfig_format: {figure: 'Figure %s', table: 'Table %s'}\n    bibtex_reference_style: author_year\n",
        )
    )
    (root / "_config.yml").write_text(
        cfg + "execute:\n  execute_notebooks: force\nparse:\n  myst_enable_extensions: [colon_fence, dollarmath]\n"
    )
    jb = pathlib.Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run(
        [str(jb), "build", str(root), "--path-output", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    page = tmp_path / "out" / "_build" / "html" / "chapters" / "02_second.html"
    assert page.is_file(), (proc.stdout + proc.stderr)[-3000:]
    raw = page.read_text()

    def shown_after(label, pattern):
        i = raw.find(f'id="{label}"')
        assert i >= 0, label
        text = html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", raw[i : i + 2000])))
        return re.search(pattern, text)[0]

    index = plain.BookIndex(root)
    for label in ("ex-ch02-1", "ex-ch02-2"):
        assert shown_after(label, r"Exercise \d+\.\d+") == f"Exercise {index.labels[label].number}"
    assert shown_after("fig-ch02-x", r"Figure \d+\.\d+") == f"Figure {index.labels['fig-ch02-x'].number}"
    assert shown_after("thm-x", r"Theorem [^B]*?\)") == index.labels["thm-x"].title == "Theorem 4.1 (Stage I)"
    assert '<span class="section-number">2. </span>A small chapter' in raw
    conv = plain.Converter(index)  # glued values from executing the chapter
    md = _md(conv.plain_notebook(root / "chapters" / "02_second.ipynb"))
    assert md.startswith("# 2. A small chapter") and "> **Exercise 2.2**" in md and "[Figure 2.1](" in md


def test_assign_refuses_unsafe_output_before_any_work(tmp_path, capsys):
    src, before = _two_sources(tmp_path)
    assert cw.main(["assign", str(src), str(src / "assignments")]) == 1
    assert "SRC_DIR" in _no_traceback(capsys)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").symlink_to(src)  # a chapter folder that is a link into the sources
    assert cw.main(["assign", str(src), str(out), "--force"]) == 1
    assert "symbolic link" in _no_traceback(capsys)
    _write(src, "c.ipynb", notebook(new_markdown_cell(ex("ex-c")), new_markdown_cell(sol_end())))
    assert cw.main(["assign", str(src), str(tmp_path / "fresh")]) == 1
    assert "c.ipynb: cell 1" in _no_traceback(capsys)
    assert not (tmp_path / "fresh").exists() and _hashes(src) == {**before, "c.ipynb": _hashes(src)["c.ipynb"]}


def test_an_unexecuted_build_copy_is_not_taken_for_the_executed_chapter(tmp_path):
    """myst-nb leaves an *unexecuted* copy of a chapter in _build/jupyter_execute/ when it takes the outputs from
    its cache: same code, no outputs.  The converter must not read glued values from it."""
    from lnfl import plain

    root = _book(tmp_path, RUNNABLE)
    chapter = root / "chapters" / "02_second.ipynb"
    copy_ = root / "_build" / "jupyter_execute" / "chapters" / "02_second.ipynb"
    copy_.parent.mkdir(parents=True)
    copy_.write_text(chapter.read_text())  # the code, never run
    with pytest.raises(plain.ConversionError, match="no executed copy"):
        plain.executed_notebook(chapter, root, execute=False)
    nb = json.loads(chapter.read_text())
    for k, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        cell["execution_count"] = k + 1
    copy_.write_text(json.dumps(nb))
    assert plain.executed_notebook(chapter, root, execute=False)["cells"] == nb["cells"], "a run copy is used"
