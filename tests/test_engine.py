import json
import math

import pytest
import torch

from lnfl import bench
from lnfl.engine import CoefSpace, _inputs
from lnfl.model import gradient
from lnfl.training import TrainingDivergedError, setup, train, train_batch

FIELDS = (
    "gamma",
    "rho",
    "margin",
    "W",
    "loss",
    "train_acc_clean",
    "noisy_true_acc",
    "test_acc",
    "mean_abs_dloss_noisy",
)


def _maxdiff(a, b, fields=FIELDS):
    return max(float((getattr(a, f) - getattr(b, f)).abs().nan_to_num().max()) for f in fields)


def test_coefficient_engine_equals_weight_space(small):
    # 300 steps on the asymmetric noisy problem: many ReLUs switch, every noisy sample gets memorised
    hw = train(small.W0, small.data, eta=0.5, steps=300, record_every=7, test=small.test, engine="weights")
    hc = train(small.W0, small.data, eta=0.5, steps=300, record_every=7, test=small.test, engine="coef")
    assert float(hw.train_acc_noisy[-1]) > 0.5  # the run reaches Stage II
    assert _maxdiff(hw, hc) < 1e-10
    assert torch.equal(hw.t, hc.t)


def test_engines_equal_explicit_gradient_loop(small):
    W = small.W0.clone()
    for _ in range(25):
        W = W - 0.3 * gradient(W, small.data)
    for engine in ("weights", "coef"):
        h = train(small.W0, small.data, eta=0.3, steps=25, record_every=25, engine=engine)
        assert float((h.W - W).abs().max()) < 1e-12, engine


def test_coefficient_engine_at_large_d_agrees_to_1e_8():
    s = setup(seed=1, n=40, m=5, d=30_000, n_test=30)
    kw = {"eta": s.eta, "steps": 20, "record_every": 1, "test": s.test}
    hw, hc = train(s.W0, s.data, engine="weights", **kw), train(s.W0, s.data, engine="coef", **kw)
    assert float(hw.rho.abs().max()) > 1.0  # the dynamics moved far from W0
    assert _maxdiff(hw, hc) < 1e-8


def test_auto_engine_is_coef_when_n_below_d_and_weights_otherwise(small):
    h = train(small.W0, small.data, steps=5)
    assert _maxdiff(h, train(small.W0, small.data, steps=5, engine="coef"), ("W", "rho")) == 0.0
    s = setup(seed=0, n=30, d=20, m=3, n_test=5)  # n > d: the weights are the smaller state
    h = train(s.W0, s.data, steps=5)
    assert _maxdiff(h, train(s.W0, s.data, steps=5, engine="weights"), ("W", "rho")) == 0.0


@pytest.mark.parametrize("engine", ["weights", "coef"])
def test_batch_equals_separate_runs(engine):
    setups = [
        setup(
            seed=k, n_test=40, d=80, n=30, m=4, tau_plus=0.1 * k, tau_minus=0.05, n_snr2=6.0 + 4 * k, eta=0.2 + 0.1 * k
        )
        for k in range(3)
    ]
    hb = train_batch(setups, steps=60, record_every=6, engine=engine)
    assert len(hb) == 3
    for s, h in zip(setups, hb, strict=True):
        one = train(s.W0, s.data, eta=s.eta, steps=60, record_every=6, test=s.test, engine=engine)
        assert _maxdiff(one, h) < 1e-12
        assert h.eta == s.eta and torch.equal(h.W0, s.W0)


def test_coef_space_weight_gram_equals_w_wt(small):
    h = train(small.W0, small.data, eta=0.5, steps=40, record_every=40)
    K = 1
    Z = _inputs(small.data)[None]
    space = CoefSpace(small.W0.reshape(K, -1, small.data.d), Z, None)
    # A from the recorded γ, ρ: the μ row carries j γ/‖μ‖², the −μ row nothing, ξ_i rows ρ_i/‖ξ_i‖²
    m = small.W0.shape[1]
    j = torch.tensor([1.0] * m + [-1.0] * m)
    A = torch.zeros(1, 2 * m, small.data.n + 2)
    A[0, :, 0] = j * h.gamma[-1].reshape(-1) / small.data.mu.dot(small.data.mu)
    A[0, :, 2:] = h.rho[-1].reshape(2 * m, -1) / (small.data.xi**2).sum(1)
    W = h.W.reshape(2 * m, -1)
    assert torch.allclose(space.weights(A)[0], W, atol=1e-12)
    assert torch.allclose(space.weight_gram(A)[0], W @ W.T, atol=1e-10)


def test_gaussian_test_accuracy_matches_a_large_test_set():
    s = setup(seed=2, n=60, d=200, m=5, n_test=20_000, tau_plus=0.2, tau_minus=0.2)
    hs = train(s.W0, s.data, eta=0.2, steps=400, record_every=100, test=s.test)
    hg = train(s.W0, s.data, eta=0.2, steps=400, record_every=100, test=s.model)
    hgw = train(s.W0, s.data, eta=0.2, steps=400, record_every=100, test=s.model, engine="weights")
    # sampling error of 20,000 test points plus Monte Carlo error of 16,384 draws: about 0.005 at 3 sigma
    assert float((hs.test_acc - hg.test_acc).abs().max()) < 0.01
    assert float((hs.test_acc_noisy_labels - hg.test_acc_noisy_labels).abs().max()) < 0.015
    assert float((hg.test_acc - hgw.test_acc).abs().max()) < 1e-12
    assert float(hg.test_acc[-1]) < float(hg.test_acc.max())  # memorisation costs clean accuracy here


def test_rho_float32_storage(small):
    h64 = train(small.W0, small.data, eta=0.5, steps=50, record_every=5)
    h32 = train(small.W0, small.data, eta=0.5, steps=50, record_every=5, rho_dtype=torch.float32)
    assert h32.rho.dtype == torch.float32 and h32.gamma.dtype == torch.float64
    assert torch.allclose(h32.rho.double(), h64.rho, rtol=1e-6, atol=1e-7)
    assert torch.equal(h32.W, h64.W)


def test_engine_argument_errors(small):
    with pytest.raises(ValueError, match="engine must be 'auto', 'weights' or 'coef', got 'fast'"):
        train(small.W0, small.data, engine="fast")
    with pytest.raises(TypeError, match="rho_dtype must be torch.float64 or torch.float32"):
        train(small.W0, small.data, rho_dtype=torch.int32)
    with pytest.raises(TypeError, match="setups must be a non-empty list"):
        train_batch([])
    with pytest.raises(ValueError, match="test must be 'sample', 'gaussian' or 'none'"):
        train_batch([small], test="all")
    other = setup(seed=0, n_test=50, d=60, n=31, m=5)
    with pytest.raises(ValueError, match="configuration 1 differs from configuration 0"):
        train_batch([small, other], steps=2)
    with pytest.raises(ValueError, match="test model must have the training data's d"):
        train(small.W0, small.data, test=setup(seed=0, d=61, n=30, m=5, n_test=2).model)


def test_batch_divergence_names_configuration():
    s = [setup(seed=3 * k, n_test=5, d=60, n=30, m=5, dtype=torch.float32, eta=[0.1, 1e38][k]) for k in range(2)]
    with pytest.raises(TrainingDivergedError, match=r"diverged at step 1 \(configuration 1\).*eta=1e\+38"):
        train_batch(s, steps=5)


def test_autograd_baseline_equals_train(small):
    W = bench.autograd_gd(small.W0, small.data, eta=0.3, steps=30)
    h = train(small.W0, small.data, eta=0.3, steps=30, record_every=30)
    assert float((W - h.W).abs().max()) < 1e-10


def test_bench_pieces_report_what_the_issue_asks(capsys):
    single = bench.bench_single(steps=5, reps=1)
    batched = bench.bench_batched(K=2, steps=5, reps=1)
    engine = bench.bench_engine(weight_steps=2, coef_steps=5, reps=1, d=3000)
    # timings of a few steps are noise: check the agreements, and only that the ratios are numbers
    assert single["max_abs_weight_diff"] < 1e-10 and math.isfinite(single["speedup_vs_autograd"])
    assert batched["batched_max_abs_diff_vs_separate"] < 1e-12 and math.isfinite(batched["gemm_fraction"])
    assert engine["coef_engine_max_abs_err"] < 1e-8 and math.isfinite(engine["coef_engine_speedup"])
    r = {
        "speedup_vs_autograd": 1.0,
        "gemm_fraction": 0.5,
        "coef_engine_speedup": 2.0,
        "coef_engine_max_abs_err": 0.0,
        "single": single,
        "batched": batched,
        "engine": engine,
        "machine": {"processor": "x", "cpu_count": 2, "torch_threads": 1, "torch": "t"},
        "date_utc": "now",
        "wall_s": 1.0,
    }
    text = bench.table(r)
    assert "speedup" in text and "GEMM" in text and "flops counted" in text
    json.dumps(r)  # everything in the report is JSON-serialisable
