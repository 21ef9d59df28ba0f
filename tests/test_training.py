import pytest
import torch

from lnfl.decomposition import decompose
from lnfl.model import gradient, network_output
from lnfl.training import REFERENCE, TrainingDivergedError, setup, train


def test_history_records_step_zero_every_k_and_last(small):
    h = small.train(steps=23, record_every=5)
    assert h.t.tolist() == [0, 5, 10, 15, 20, 23]
    T, m, n = len(h.t), small.W0.shape[1], small.data.n
    assert h.gamma.shape == (T, 2, m) and h.rho.shape == (T, 2, m, n) and h.margin.shape == (T, n)
    for name in (
        "loss",
        "train_acc",
        "train_acc_clean",
        "train_acc_noisy",
        "noisy_true_acc",
        "test_acc",
        "test_acc_noisy_labels",
        "mean_abs_dloss_clean",
        "mean_abs_dloss_noisy",
    ):
        assert getattr(h, name).shape == (T,), name
    assert torch.equal(h.gamma[0], torch.zeros(2, m)) and torch.equal(h.rho[0], torch.zeros(2, m, n))


def test_training_equals_explicit_gd_loop(small):
    h = small.train(steps=15, record_every=15)
    W = small.W0.clone()
    for _ in range(15):
        W = W - small.eta * gradient(W, small.data)
    assert torch.allclose(h.W, W, rtol=0, atol=1e-13)
    margin = small.data.y_obs * network_output(W, small.data)
    assert torch.allclose(h.margin[-1], margin, atol=1e-12)
    assert float(h.loss[-1]) == pytest.approx(float(torch.nn.functional.softplus(-margin).mean()), abs=1e-12)


def test_accuracies_match_definitions(small):
    h = small.train(steps=40, record_every=40)
    d, f = small.data, network_output(h.W, small.data)
    fitted = d.y_obs * f > 0
    assert float(h.train_acc_clean[-1]) == pytest.approx(float(fitted[d.clean].double().mean()))
    assert float(h.train_acc_noisy[-1]) == pytest.approx(float(fitted[d.noisy].double().mean()))
    assert float(h.noisy_true_acc[-1]) == pytest.approx(float((d.y * f > 0)[d.noisy].double().mean()))
    ft = network_output(h.W, small.test)
    assert float(h.test_acc[-1]) == pytest.approx(float((small.test.y * ft > 0).double().mean()))
    assert float(h.test_acc_noisy_labels[-1]) == pytest.approx(float((small.test.y_obs * ft > 0).double().mean()))
    dl = 1 / (1 + torch.exp(d.y_obs * f))
    assert float(h.mean_abs_dloss_noisy[-1]) == pytest.approx(float(dl[d.noisy].mean()))


def test_no_test_set_and_no_noisy_samples_give_nan():
    s = setup(seed=0, n_test=10, d=40, n=20, m=3, tau_plus=0.0, tau_minus=0.0)
    h = train(s.W0, s.data, eta=0.1, steps=3)
    assert torch.isnan(h.test_acc).all() and torch.isnan(h.train_acc_noisy).all()
    assert torch.isnan(h.mean_abs_dloss_noisy).all()
    assert not torch.isnan(h.train_acc_clean).any()


def test_seeds_give_bit_identical_runs():
    a = setup(seed=4, n_test=20, d=50, n=20, m=4).train(steps=30, record_every=3)
    b = setup(seed=4, n_test=20, d=50, n=20, m=4).train(steps=30, record_every=3)
    assert torch.equal(a.W, b.W) and torch.equal(a.rho, b.rho) and torch.equal(a.test_acc, b.test_acc)


def test_float32_training_tracks_float64(small):
    h64 = small.train(steps=50, record_every=50)
    h32 = train(
        small.W0.float(),
        small.data.to(dtype=torch.float32),
        eta=small.eta,
        steps=50,
        test=small.test.to(dtype=torch.float32),
    )
    assert h32.W.dtype == torch.float32
    assert float((h32.W.double() - h64.W).abs().max()) < 1e-4


def test_divergence_names_step_and_suggests_smaller_eta():
    # the logistic loss never blows up by itself; a step so large that float32 overflows does
    s = setup(seed=3, n_test=5, d=60, n=30, m=5, dtype=torch.float32)
    with pytest.raises(
        TrainingDivergedError, match=r"diverged at step 1: .* eta=1e\+38, .*; try a smaller step size, e.g. eta=0\.1$"
    ):
        train(s.W0, s.data, eta=1e38, steps=20)


def test_train_argument_errors(small):
    with pytest.raises(ValueError, match=r"eta must be in \(0, inf\), got 0"):
        train(small.W0, small.data, eta=0)
    with pytest.raises(ValueError, match="record_every must be an integer >= 1, got 0"):
        train(small.W0, small.data, record_every=0)
    with pytest.raises(ValueError, match="steps must be an integer >= 0, got -1"):
        train(small.W0, small.data, steps=-1)
    with pytest.raises(TypeError, match="test must be an lnfl.data.Dataset"):
        train(small.W0, small.data, test=[1, 2])
    with pytest.raises(TypeError, match="unknown configuration key"):
        setup(seed=0, tau=0.1)
    with pytest.raises(ValueError, match="step 7 was not recorded"):
        small.train(steps=10, record_every=5).at(7)


# --- the reference configuration (Chapter 2) -----------------------------------------------------------


def test_decomposition_equals_recursion_after_500_steps(reference_runs):
    s = setup(seed=0)
    h = s.train(steps=500, record_every=500)
    gamma, rho = decompose(h.W, s.W0, s.data)
    assert float((gamma - h.gamma[-1]).abs().max()) < 1e-9
    assert float((rho - h.rho[-1]).abs().max()) < 1e-9
    # sign structure: ρ ≥ 0 exactly where j = ỹ_i, ≤ 0 where j = −ỹ_i (exact in the recursion; the
    # projection agrees up to its 1e-9 accuracy), and it holds at every recorded step
    j = torch.tensor([1.0, -1.0])[:, None, None]
    same = (j == s.data.y_obs[None, None, :]).expand_as(rho)
    for r in (h.rho[-1], rho):
        tol = 0.0 if r is h.rho[-1] else 1e-9
        assert bool((r[same] >= -tol).all()) and bool((r[~same] <= tol).all())
    assert float(rho[same].max()) > 0.1  # memorisation has started


def test_reference_stage_one(reference_runs):
    for seed in range(3):
        h = reference_runs[("early", seed)]
        early = (h.t <= 50) & (h.train_acc_clean == 1.0) & (h.noisy_true_acc >= 0.95)
        assert bool(early.any()), f"seed {seed}: no step t <= 50 with all clean fitted and >= 95% noisy by true label"
        assert float(h.test_acc[h.t <= 50].max()) >= 0.97


def test_reference_stage_two_memorises_every_noisy_sample(reference_runs):
    for seed in range(3):
        h = reference_runs[("noisy", seed)]
        assert float(h.train_acc_noisy[-1]) == 1.0, f"seed {seed}: not every noisy sample fitted by 3000 steps"
        assert float(h.train_acc_clean[-1]) == 1.0
        assert float(h.test_acc[-1]) < float(h.test_acc.max())  # generalisation degrades
        assert bool((h.gamma[-1] > 0).any())


def test_reference_noiseless_run_keeps_high_test_accuracy(reference_runs):
    h = reference_runs[("clean", 0)]
    assert float(h.test_acc[1:].min()) >= 0.99
    assert float(h.train_acc[-1]) == 1.0


def test_reference_matches_table():
    assert REFERENCE == {
        "d": 400,
        "n": 200,
        "m": 20,
        "n_snr2": 16.0,
        "sigma_xi": 1.0,
        "sigma0": 0.01,
        "tau_plus": 0.2,
        "tau_minus": 0.2,
        "eta": 0.1,
    }
