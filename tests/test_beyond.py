import math

import pytest
import torch

from lnfl.beyond import (
    MultiClassData,
    MultiClassHistory,
    class_accuracy,
    instance_dependent_flips,
    memorisation_time,
    multiclass_output,
    multiclass_stage_one_window,
    sample_multiclass,
    stage_clocks,
    train_multiclass,
    train_multiclass_batch,
    train_sgd,
    train_sgd_batch,
)
from lnfl.data import Dataset, SignalNoiseModel
from lnfl.model import gradient, init_weights, network_output
from lnfl.stages import stage_one_window
from lnfl.training import setup, train, train_batch


@pytest.fixture(scope="module")
def small():
    return setup(seed=0, n_test=200, d=120, n=40, m=6)


def test_sgd_with_full_batch_is_gd(small):
    s = small
    h_sgd = train_sgd(s.W0, s.data, eta=0.1, epochs=30, batch_size=s.data.n, record_every=5, test=s.test)
    h_gd = train(s.W0, s.data, eta=0.1, steps=30, record_every=5, test=s.test)
    assert h_sgd.t.tolist() == h_gd.t.tolist()
    assert torch.allclose(h_sgd.margin, h_gd.margin, atol=1e-9)
    assert torch.allclose(h_sgd.gamma, h_gd.gamma, atol=1e-7)
    assert torch.allclose(h_sgd.rho, h_gd.rho, atol=1e-7)
    assert torch.allclose(h_sgd.test_acc, h_gd.test_acc)
    assert torch.allclose(h_sgd.W, h_gd.W, atol=1e-10)


def test_sgd_minibatches_are_seeded_and_make_n_over_b_steps(small):
    s = small
    a = train_sgd(s.W0, s.data, eta=0.1, epochs=3, batch_size=8, seed=1)
    b = train_sgd(s.W0, s.data, eta=0.1, epochs=3, batch_size=8, seed=1)
    c = train_sgd(s.W0, s.data, eta=0.1, epochs=3, batch_size=8, seed=2)
    assert torch.equal(a.W, b.W) and not torch.allclose(a.W, c.W)
    assert a.t.tolist() == [0, 1, 2, 3] and a.gamma.shape == (4, 2, 6) and a.rho.shape == (4, 2, 6, 40)
    # one epoch of batch size 1 in a known order equals 40 explicit single-sample steps
    one = train_sgd(s.W0, s.data, eta=0.05, epochs=1, batch_size=1, seed=3)
    order = torch.randperm(40, generator=torch.Generator().manual_seed(3))
    W = s.W0.clone()

    for i in order.tolist():
        sub = type(s.data)(s.data.mu, s.data.xi[i : i + 1], s.data.y[i : i + 1], s.data.y_obs[i : i + 1])
        W = W - 0.05 * gradient(W, sub)
    assert torch.allclose(one.W, W, atol=1e-12)
    # γ, ρ reconstruct the final margins' weights: W − W0 lies in span{μ, ξ_i}
    assert torch.isfinite(one.rho).all() and float(one.loss[-1]) < float(one.loss[0])


def test_sgd_bad_arguments(small):
    with pytest.raises(ValueError, match="batch_size"):
        train_sgd(small.W0, small.data, batch_size=41)
    with pytest.raises(ValueError, match="eta"):
        train_sgd(small.W0, small.data, eta=-1.0)
    with pytest.raises(TypeError, match="data"):
        train_sgd(small.W0, "data")


def test_instance_dependent_flips_count_and_direction():
    model = SignalNoiseModel(d=50, mu_norm=5.0)
    data = model.sample(600, seed=0)
    k = round(0.2 * 600)
    uniform = instance_dependent_flips(data, 0.2, score="norm", sharpness=0.0, seed=0)
    by_norm = instance_dependent_flips(data, 0.2, score="norm", sharpness=5.0, seed=0)
    by_margin = instance_dependent_flips(data, 0.2, score="margin", sharpness=5.0, seed=0)
    for d in (uniform, by_norm, by_margin):
        assert int(d.noisy.sum()) == k and torch.equal(d.y, data.y) and torch.equal(d.xi, data.xi)
    norms = (data.xi**2).sum(1)
    assert norms[by_norm.noisy].mean() > norms.mean() + 0.5 * norms.std(), "norm flips pick large ‖ξ‖"
    assert abs(float(norms[uniform.noisy].mean() - norms.mean())) < 0.3 * float(norms.std())
    align = data.y * (data.xi @ data.mu)
    assert align[by_margin.noisy].mean() < align.mean() - 0.5 * align.std(), "margin flips pick hard samples"
    custom = instance_dependent_flips(data, 0.1, score=torch.arange(600.0), sharpness=8.0, seed=0)
    assert custom.noisy.nonzero().float().mean() > 400, "high custom scores are flipped"
    assert int(instance_dependent_flips(data, 0.0).noisy.sum()) == 0
    with pytest.raises(ValueError, match="score"):
        instance_dependent_flips(data, 0.2, score="size")
    with pytest.raises(ValueError, match="tau"):
        instance_dependent_flips(data, 0.6)


def test_sample_multiclass():
    mc = sample_multiclass(K=3, n=3000, d=10, mu_norm=2.0, tau=0.3, seed=0)
    assert isinstance(mc, MultiClassData) and mc.K == 3 and mc.n == 3000 and mc.xi.shape == (3000, 10)
    # a regular simplex centred at 0: ‖μ_k‖² = 4, ⟨μ_k, μ_l⟩ = −4/(K − 1)
    simplex = 4.0 * (1.5 * torch.eye(3, dtype=torch.float64) - 0.5)
    assert torch.allclose(mc.mu @ mc.mu.T, simplex) and torch.allclose(
        mc.mu.sum(0), torch.zeros(10, dtype=torch.float64)
    )
    assert bool((mc.mu[:, 2:] == 0).all()), "K signals in span{e_1, ..., e_(K-1)}"
    # K = 2 is the paper's ±μ with μ = ‖μ‖e_1
    two = sample_multiclass(K=2, n=5, d=10, mu_norm=3.0).mu
    assert torch.allclose(two, torch.tensor([[3.0] + [0.0] * 9, [-3.0] + [0.0] * 9], dtype=torch.float64))
    assert set(mc.y.tolist()) == {0, 1, 2} and set(mc.y_obs.tolist()) == {0, 1, 2}
    rate = float(mc.noisy.double().mean())
    assert abs(rate - 0.3) < 3 * math.sqrt(0.3 * 0.7 / 3000)
    # a flipped label goes to each of the K − 1 other classes about equally often
    shift = (mc.y_obs - mc.y) % 3
    assert abs(int((shift == 1).sum()) - int((shift == 2).sum())) < 0.15 * int(mc.noisy.sum())
    again = sample_multiclass(K=3, n=3000, d=10, mu_norm=2.0, tau=0.3, seed=0)
    assert torch.equal(again.xi, mc.xi) and torch.equal(again.y_obs, mc.y_obs)
    with pytest.raises(ValueError, match="K"):
        sample_multiclass(K=11, n=5, d=10, mu_norm=1.0)
    with pytest.raises(ValueError, match="tau"):
        sample_multiclass(K=3, n=5, d=10, mu_norm=1.0, tau=0.7)


def test_two_class_cross_entropy_is_the_logistic_loss():
    mc = sample_multiclass(K=2, n=50, d=20, mu_norm=3.0, tau=0.2, seed=1)
    W = 0.1 * torch.randn(2, 4, 20, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    F = multiclass_output(W, mc)
    ce = torch.nn.functional.cross_entropy(F, mc.y_obs)
    y_pm = 1.0 - 2.0 * mc.y_obs.double()  # class 0 -> +1, class 1 -> −1
    logistic = torch.nn.functional.softplus(-y_pm * (F[:, 0] - F[:, 1])).mean()
    assert torch.allclose(ce, logistic)
    with pytest.raises(ValueError, match="W must have shape"):
        multiclass_output(W[:, :, :10], mc)


def test_train_multiclass_learns_then_memorises():
    K, d = 3, 150
    mc = sample_multiclass(K, 60, d, mu_norm=32**0.5, tau=0.2, seed=0)
    test = sample_multiclass(K, 300, d, mu_norm=32**0.5, seed=1)
    W0 = 0.01 * torch.randn(K, 10, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h = train_multiclass_batch([W0], [mc], eta=0.1, steps=800, record_every=10, tests=[test])[0]
    assert h.gamma.shape == (len(h.t), K, 10) and h.t[-1] == 800
    assert multiclass_stage_one_window(h) is not None, "the Stage I state holds on this draw"
    assert float(h.loss[-1]) < float(h.loss[0])
    assert h.t_clean_fit() is not None and float(h.test_acc.max()) > 0.95
    assert float(h.noisy_true_acc.max()) >= 0.8, "flipped samples are first classified by their true class"
    assert float(h.train_acc_noisy[-1]) >= 0.9, "and memorised in the end"
    assert float(h.gamma[-1].mean()) > 0, "every class learns its own signal"


def test_class_accuracy(small):
    s = small
    W = init_weights(6, 120, 0.01, seed=1)
    acc_plus, acc_minus = class_accuracy(W, s.test)
    f = network_output(W, s.test)
    assert acc_plus == pytest.approx(float((f[s.test.y > 0] > 0).double().mean()))
    assert acc_minus == pytest.approx(float((f[s.test.y < 0] < 0).double().mean()))


def test_flips_are_independent_of_the_class_with_the_data_seed():
    """Regression: the flip draw must not replay the data's random stream when given the same seed."""
    base = setup(seed=0, n_test=10, d=200, n=100, tau_plus=0.0, tau_minus=0.0)
    noisy = instance_dependent_flips(base.data, 0.2, sharpness=0.0, seed=0).noisy
    n_plus = int((noisy & (base.data.y > 0)).sum())
    assert 3 <= n_plus <= 17, f"{n_plus} of 20 flips in class +1: the choice depends on the class"


# ------------------------------------------------------------------------- SGD and K classes on many seeds


def test_sgd_batch_equals_single_sgd_runs_and_gd():
    """train_sgd_batch (projections, many seeds) against train_sgd (weights, γ and ρ by projection), and with
    b = n against GD: W, margins, γ, ρ and test accuracies, seed by seed."""
    ss = [setup(seed=k, n_test=30, d=60, n=20, m=4) for k in range(3)]
    batch = train_sgd_batch(ss, epochs=7, batch_size=6, record_every=2, seeds=[5, 6, 7])
    for s, h, seed in zip(ss, batch, [5, 6, 7], strict=True):
        one = train_sgd(s.W0, s.data, eta=s.eta, epochs=7, batch_size=6, record_every=2, test=s.test, seed=seed)
        assert h.t.tolist() == one.t.tolist() == [0, 2, 4, 6, 7]
        for field in ("margin", "gamma", "rho", "W", "loss", "test_acc", "test_acc_noisy_labels"):
            assert torch.allclose(getattr(h, field), getattr(one, field), atol=1e-10), field
    # another batch order gives another run; b = n is full-batch GD
    other = train_sgd_batch(ss[:1], epochs=7, batch_size=6, record_every=2, seeds=[6])[0]
    assert not torch.allclose(other.W, batch[0].W)
    gd = train_batch(ss, steps=10, record_every=1)
    full = train_sgd_batch(ss, epochs=10, batch_size=20, test="none")
    for a, b in zip(gd, full, strict=True):
        assert torch.allclose(a.margin, b.margin, atol=1e-12) and torch.allclose(a.rho, b.rho, atol=1e-12)
        assert torch.allclose(a.gamma, b.gamma, atol=1e-12) and bool(b.test_acc.isnan().all())
    with pytest.raises(ValueError, match="batch_size"):
        train_sgd_batch(ss, batch_size=21)
    with pytest.raises(ValueError, match="seeds"):
        train_sgd_batch(ss, seeds=[1, 2])
    with pytest.raises(TypeError, match="setups"):
        train_sgd_batch([ss[0].data])


def _mc_runs(K, n=30, d=50, m=4, seeds=(0, 1), tau=0.2, mu_norm=4.0):
    datas = [sample_multiclass(K, n, d, mu_norm=mu_norm, tau=tau, seed=k) for k in seeds]
    tests = [sample_multiclass(K, 40, d, mu_norm=mu_norm, seed=10 + k) for k in seeds]
    W0s = [0.05 * torch.randn(K, m, d, generator=torch.Generator().manual_seed(k), dtype=torch.float64) for k in seeds]
    return W0s, datas, tests


def test_multiclass_batch_equals_autograd_runs():
    """The written-out gradient in projection space against autograd in weight space, K = 3, two seeds."""
    W0s, datas, tests = _mc_runs(3)
    batch = train_multiclass_batch(W0s, datas, eta=0.2, steps=60, record_every=7, tests=tests)
    for W0, data, test, h in zip(W0s, datas, tests, batch, strict=True):
        one = train_multiclass(W0, data, eta=0.2, steps=60, record_every=7, test=test)
        assert h.t.tolist() == one.t.tolist()
        for field in ("loss", "gamma", "W", "train_acc_clean", "train_acc_noisy", "noisy_true_acc", "test_acc"):
            assert torch.allclose(getattr(h, field), getattr(one, field), atol=1e-10), field
    with pytest.raises(ValueError, match="same length"):
        train_multiclass_batch(W0s, datas[:1])
    with pytest.raises(ValueError, match="tests"):
        train_multiclass_batch(W0s, datas, tests=tests[:1])


def test_two_classes_are_the_papers_model():
    """K = 2 (μ₂ = −μ₁) is the binary model: train_multiclass_batch equals lnfl.training.train on the same draw,
    and γ_{k,r} = ⟨w_{k,r} − w⁽⁰⁾, μ_k⟩ is the paper's γ_{j,r} plus the cross term Σ_i ρ_{j,r,i}⟨ξ_i, μ_k⟩/‖ξ_i‖²
    (at the paper's scale: dividing by ‖μ‖² would fail)."""
    W0s, datas, _ = _mc_runs(2, seeds=(3,))
    mc = datas[0]
    binary = Dataset(mc.mu[0], mc.xi, 1.0 - 2.0 * mc.y.double(), 1.0 - 2.0 * mc.y_obs.double())
    hb = train(W0s[0], binary, eta=0.2, steps=80, record_every=10)
    hm = train_multiclass_batch(W0s, datas, eta=0.2, steps=80, record_every=10)[0]
    assert torch.allclose(hm.W, hb.W, atol=1e-10) and torch.allclose(hm.loss, hb.loss, atol=1e-12)
    for field in ("train_acc_clean", "train_acc_noisy", "noisy_true_acc"):
        assert torch.equal(getattr(hm, field), getattr(hb, field)), field
    cross = hb.rho @ (mc.xi @ mc.mu[0] / (mc.xi * mc.xi).sum(1))  # Σ_i ρ_{j,r,i}⟨ξ_i, μ⟩/‖ξ_i‖², (T, 2, m)
    sign = torch.tensor([1.0, -1.0], dtype=torch.float64)[:, None]  # μ_k = ±μ for j = ±1
    assert torch.allclose(hm.gamma, hb.gamma + sign * cross, atol=1e-10)
    assert float(hm.gamma[-1].abs().max()) > 1.0, "γ at the paper's scale, not divided by ‖μ‖²"


def _mc_history(clean, noisy_true, noisy_obs=None, t=None):
    T = len(clean)
    t = torch.arange(T) * 10 if t is None else torch.tensor(t)
    f = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    noisy_obs = [0.0] * T if noisy_obs is None else noisy_obs
    z = torch.zeros(T, 2, 1, dtype=torch.float64)
    return MultiClassHistory(t, f([0.0] * T), z, f(clean), f(noisy_obs), f(noisy_true), f([0.5] * T), z[0], z[0])


def test_multiclass_stage_one_window_on_hand_made_histories():
    nan = float("nan")
    never = _mc_history([0.5, 1.0, 1.0], [1.0, 0.9, 0.9])
    once = _mc_history([0.5, 1.0, 0.9, 1.0], [1.0, 1.0, 1.0, 0.95])
    flicker = _mc_history([0.9, 1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.95, 1.0, 0.9, 0.8])
    to_end = _mc_history([0.9, 1.0, 1.0], [0.5, 1.0, 1.0])
    no_noise = _mc_history([0.5, 1.0, 1.0], [nan, nan, nan])
    assert multiclass_stage_one_window(never) is None
    assert multiclass_stage_one_window(once) == (10, 10), "clean fitted and noisy by true class at the same step"
    assert multiclass_stage_one_window(flicker) == (10, 30), "last step of the state, spanning the gap"
    assert multiclass_stage_one_window(to_end) == (10, 20)
    assert multiclass_stage_one_window(no_noise) == (10, 20), "without noisy samples: clean fitted"
    assert multiclass_stage_one_window(_mc_history([1.0, 1.0], [1.0, 1.0], t=[0, 7])) == (0, 7), "steps, not indices"
    with pytest.raises(TypeError, match="hist"):
        multiclass_stage_one_window(once.train_acc_clean)


def test_memorisation_time_and_stage_clocks_on_hand_made_histories():
    h = _mc_history([1.0] * 6, [1.0, 1.0, 1.0, 0.6, 0.4, 0.2], noisy_obs=[0.6, 0.0, 0.0, 0.4, 0.6, 0.8])
    assert memorisation_time(h, after=20) == 40, "the first record after T₁ at the level, not the t = 0 one"
    assert memorisation_time(h, after=0) == 40 and memorisation_time(h, after=20, level=0.8) == 50
    assert memorisation_time(h, after=50) is None and memorisation_time(h, after=20, level=0.9) is None
    assert stage_clocks(h) == (20, 40) and stage_clocks(h, level=0.3) == (20, 30)
    assert stage_clocks(_mc_history([0.9, 0.9], [1.0, 1.0])) == (None, None)
    with pytest.raises(ValueError, match="level"):
        memorisation_time(h, after=0, level=0.0)
    with pytest.raises(ValueError, match="data"):
        stage_clocks(h, data="d")


def test_stage_clocks_on_real_runs(small):
    s = small
    h = s.train(steps=600, record_every=5)
    window = stage_one_window(h, s.data)
    assert window is not None
    t1, t_half = stage_clocks(h, s.data)
    k = h.at(t_half)
    assert t1 == window[1] and t_half > t1 and float(h.train_acc_noisy[k]) >= 0.5 > float(h.train_acc_noisy[k - 1])
    # on an SGD history the clocks count epochs; multiclass runs have their own window
    hs = train_sgd_batch([s], epochs=120, batch_size=8, record_every=2, test="none")[0]
    assert stage_clocks(hs, s.data)[0] == stage_one_window(hs, s.data)[1]
    W0s, datas, _ = _mc_runs(2, n=40, d=120, m=6, seeds=(0,), mu_norm=48**0.5)  # n·SNR² = 16
    hm = train_multiclass_batch(W0s, datas, eta=0.1, steps=600, record_every=10)[0]
    w = multiclass_stage_one_window(hm)
    assert w is not None and stage_clocks(hm)[0] == w[1]
    k = int((hm.t == w[1]).nonzero()[0, 0])
    assert float(hm.train_acc_clean[k]) == 1.0 and float(hm.noisy_true_acc[k]) == 1.0
    assert float(hm.noisy_true_acc[k + 1]) < 1.0 or float(hm.train_acc_clean[k + 1]) < 1.0
