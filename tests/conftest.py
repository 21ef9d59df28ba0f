import pytest
import torch

from lnfl.training import setup


@pytest.fixture(scope="session")
def reference_runs():
    """The book's reference configuration (Chapter 2) on seeds 0-2: the first 300 steps recorded at every step
    ("early": the whole Stage I window), 3,000 steps recorded every 25 ("noisy"), and a noiseless run ("clean")."""
    runs = {}
    for seed in range(3):
        s = setup(seed=seed, n_test=1000)
        runs[("early", seed)] = s.train(steps=300, record_every=1)
        runs[("noisy", seed)] = s.train(steps=3000, record_every=25)
    runs[("clean", 0)] = setup(seed=0, n_test=1000, tau_plus=0.0, tau_minus=0.0).train(steps=3000, record_every=10)
    return runs


@pytest.fixture
def small():
    """A small noisy problem with asymmetric flip rates, fast enough for every unit test."""
    return setup(seed=3, n_test=50, d=60, n=30, m=5, tau_plus=0.3, tau_minus=0.1)


torch.set_default_dtype(torch.float64)


@pytest.fixture(scope="session")
def book_build():
    """Build the whole book once per test session, strictly (``jupyter-book build . -W -n --keep-going``), and
    return the build log (stdout + stderr).  Shared by every build-marked test (test_browser.py, test_pdf.py,
    and test_build.py's checks), so `pytest -m build tests` builds the book only once."""
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    jb = pathlib.Path(sys.executable).parent / "jupyter-book"
    proc = subprocess.run(
        [str(jb), "build", ".", "-W", "-n", "--keep-going"], cwd=root, capture_output=True, text=True, timeout=3000
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"jupyter-book build failed:\n{log[-6000:]}"
    return log
