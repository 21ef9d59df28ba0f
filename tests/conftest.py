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


@pytest.fixture
def hand_history():
    """A builder of hand-made Histories whose only meaningful records are the margins ỹ_i f, one row per
    recorded step (samples 0, 1 clean and 2, 3 noisy, as in :func:`four`): ``hand_history(margins, t=None)``."""
    from lnfl.training import History

    def build(margin: list[list[float]], t: list[int] | None = None) -> History:
        m = torch.tensor(margin, dtype=torch.float64)
        T, n = m.shape
        steps = torch.tensor(t if t is not None else list(range(T)))
        zeros = torch.zeros(T, dtype=torch.float64)
        return History(
            t=steps, loss=zeros, gamma=torch.zeros(T, 2, 1), rho=torch.zeros(T, 2, 1, n), margin=m,
            train_acc=zeros, train_acc_clean=(m[:, :2] > 0).double().mean(dim=1), train_acc_noisy=zeros,
            noisy_true_acc=zeros, test_acc=zeros, test_acc_noisy_labels=zeros, mean_abs_dloss_clean=zeros,
            mean_abs_dloss_noisy=zeros, W=torch.zeros(2, 1, 3), W0=torch.zeros(2, 1, 3), eta=0.1,
        )  # fmt: skip

    return build


@pytest.fixture
def four():
    """Samples 0, 1 clean and 2, 3 noisy: the Stage I state is margins (+, +, −, −)."""
    from lnfl.data import Dataset

    y, y_obs = torch.tensor([1.0, -1.0, 1.0, -1.0]), torch.tensor([1.0, -1.0, -1.0, 1.0])
    return Dataset(torch.tensor([1.0, 0, 0]), torch.eye(4, 3), y, y_obs)
