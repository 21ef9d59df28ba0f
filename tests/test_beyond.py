import math

import pytest
import torch

from lnfl.beyond import (
    MultiClassData,
    class_accuracy,
    instance_dependent_flips,
    multiclass_output,
    sample_multiclass,
    train_multiclass,
    train_sgd,
)
from lnfl.data import SignalNoiseModel
from lnfl.model import gradient, init_weights, network_output
from lnfl.training import setup, train


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
    assert torch.allclose(mc.mu @ mc.mu.T, 4.0 * torch.eye(3, dtype=torch.float64))
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
    h = train_multiclass(W0, mc, eta=0.1, steps=1500, record_every=10, test=test)
    assert h.gamma.shape == (len(h.t), K, 10) and h.t[-1] == 1500
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
