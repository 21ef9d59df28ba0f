import math

import pytest
import torch

from lnfl.data import Dataset, SignalNoiseModel, orthogonal_noise


def test_from_n_snr2_gives_requested_regime_constant():
    model = SignalNoiseModel.from_n_snr2(d=400, n=200, n_snr2=16.0)
    assert model.mu_norm == pytest.approx(math.sqrt(32))
    assert model.snr == pytest.approx(math.sqrt(32) / 20)
    assert model.n_snr2(200) == pytest.approx(16.0)
    assert torch.equal(model.mu, torch.tensor([math.sqrt(32)] + [0.0] * 399, dtype=torch.float64))


def test_sample_shapes_labels_and_patches():
    data = SignalNoiseModel(d=50, mu_norm=2.0, tau_plus=0.3, tau_minus=0.1).sample(n=40, seed=1)
    assert (data.n, data.d) == (40, 50)
    assert set(data.y.tolist()) <= {-1.0, 1.0} and set(data.y_obs.tolist()) <= {-1.0, 1.0}
    assert torch.equal(data.noisy, data.y != data.y_obs) and torch.equal(data.clean, ~data.noisy)
    x = data.patches()
    assert x.shape == (40, 2, 50)
    assert torch.equal(x[:, 0], data.y[:, None] * data.mu) and torch.equal(x[:, 1], data.xi)


def test_seed_gives_identical_data_and_different_seeds_differ():
    model = SignalNoiseModel(d=30, mu_norm=1.0, tau_plus=0.2, tau_minus=0.2)
    a, b, c = model.sample(20, seed=5), model.sample(20, seed=5), model.sample(20, seed=6)
    assert torch.equal(a.xi, b.xi) and torch.equal(a.y_obs, b.y_obs)
    assert not torch.equal(a.xi, c.xi)


def test_flip_rates_are_class_conditional():
    data = SignalNoiseModel(d=2, mu_norm=1.0, tau_plus=0.3, tau_minus=0.05).sample(n=40_000, seed=0)
    pos, neg = data.y > 0, data.y < 0
    rate_plus = float(data.noisy[pos].double().mean())
    rate_minus = float(data.noisy[neg].double().mean())
    # 5 binomial standard deviations
    assert abs(rate_plus - 0.3) < 5 * math.sqrt(0.3 * 0.7 / int(pos.sum()))
    assert abs(rate_minus - 0.05) < 5 * math.sqrt(0.05 * 0.95 / int(neg.sum()))
    assert abs(float(pos.double().mean()) - 0.5) < 0.02
    assert data.tau_hat == pytest.approx((rate_plus, rate_minus), abs=0, rel=1e-15), "(τ̂₊, τ̂₋) in that order"


def test_tau_hat_by_hand():
    """τ̂₊ = flipped among y = +1, τ̂₋ = flipped among y = −1; 0.0 for a class without samples."""
    y = torch.tensor([1.0, 1.0, 1.0, 1.0, -1.0, -1.0])
    y_obs = torch.tensor([-1.0, 1.0, 1.0, 1.0, -1.0, 1.0])  # one of four positives, one of two negatives flipped
    assert Dataset(torch.ones(3), torch.eye(6, 3), y, y_obs).tau_hat == (0.25, 0.5)
    only_pos = Dataset(torch.ones(3), torch.eye(2, 3), torch.ones(2), torch.tensor([1.0, -1.0]))
    assert only_pos.tau_hat == (0.5, 0.0)


def test_noise_norm_concentrates():
    data = SignalNoiseModel(d=1000, mu_norm=1.0, sigma_xi=2.0).sample(n=100, seed=0)
    sq = (data.xi**2).sum(1) / (4.0 * 1000)
    assert float((sq - 1).abs().max()) < 6 * math.sqrt(2 / 1000)


def test_float32_and_device_options():
    data = SignalNoiseModel(d=10, mu_norm=1.0, dtype=torch.float32).sample(5, seed=0)
    assert data.xi.dtype == torch.float32 and data.y.dtype == torch.float32
    assert data.to(dtype=torch.float64).xi.dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"d": 0, "mu_norm": 1.0}, "d must be an integer >= 1, got 0"),
        ({"d": 5, "mu_norm": -1.0}, r"mu_norm must be in \(0, inf\), got -1.0"),
        ({"d": 5, "mu_norm": 1.0, "sigma_xi": 0.0}, "sigma_xi"),
        ({"d": 5, "mu_norm": 1.0, "tau_plus": 0.5}, r"tau_plus must be in \[0, 0.5\), got 0.5"),
        ({"d": 5, "mu_norm": 1.0, "tau_minus": -0.1}, "tau_minus"),
        ({"d": 5, "mu_norm": float("nan")}, "mu_norm must be finite"),
    ],
)
def test_model_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SignalNoiseModel(**kwargs)


def test_model_type_errors():
    with pytest.raises(TypeError, match="d must be an integer"):
        SignalNoiseModel(d=4.5, mu_norm=1.0)
    with pytest.raises(TypeError, match="dtype"):
        SignalNoiseModel(d=4, mu_norm=1.0, dtype=torch.int64)
    with pytest.raises(ValueError, match="n must be an integer >= 1, got 0"):
        SignalNoiseModel(d=4, mu_norm=1.0).sample(0)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        SignalNoiseModel(d=4, mu_norm=1.0).sample(3, seed=-1)
    with pytest.raises(ValueError, match="n_snr2"):
        SignalNoiseModel.from_n_snr2(d=4, n=2, n_snr2=0.0)


def test_dataset_validation():
    mu, xi = torch.ones(3), torch.zeros(2, 3)
    y = torch.tensor([1.0, -1.0])
    Dataset(mu, xi, y, y)  # valid
    with pytest.raises(ValueError, match="y_obs must contain only labels -1 and \\+1, found 0"):
        Dataset(mu, xi, y, torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"y must have shape \(2,\)"):
        Dataset(mu, xi, torch.ones(3), y)
    with pytest.raises(ValueError, match=r"mu must have shape \(3,\)"):
        Dataset(torch.ones(4), xi, y, y)
    with pytest.raises(ValueError, match="xi must contain only finite values"):
        Dataset(mu, torch.tensor([[0.0, float("inf"), 0.0], [0, 0, 0]]), y, y)
    with pytest.raises(TypeError, match="xi must be a torch.Tensor"):
        Dataset(mu, [[0.0]], y, y)
    with pytest.raises(ValueError, match="share dtype"):
        Dataset(mu.float(), xi, y, y)


def test_orthogonal_noise_removes_exactly_the_component_along_mu():
    """A μ not along e₁ (so projecting off e₁ would be wrong) and noisy labels kept as they are."""
    g = torch.Generator().manual_seed(0)
    mu = 3.0 * torch.randn(20, generator=g, dtype=torch.float64)
    xi = torch.randn(8, 20, generator=g, dtype=torch.float64)
    y = torch.tensor([1.0, -1.0] * 4, dtype=torch.float64)
    y_obs = y.clone()
    y_obs[:3] *= -1
    perp = orthogonal_noise(Dataset(mu, xi, y, y_obs))
    assert float((perp.xi @ mu).abs().max()) < 1e-12
    along = (xi @ mu / mu.dot(mu))[:, None] * mu  # the removed part is a multiple of μ
    assert torch.allclose(perp.xi + along, xi, atol=1e-14)
    assert torch.equal(perp.mu, mu) and torch.equal(perp.y, y) and torch.equal(perp.y_obs, y_obs)
    assert torch.equal(perp.noisy, y_obs != y)


def test_orthogonal_noise_on_the_model_and_its_errors():
    data = SignalNoiseModel(d=30, mu_norm=2.0, tau_plus=0.2, tau_minus=0.2).sample(n=10, seed=2)
    perp = orthogonal_noise(data)
    assert torch.equal(perp.xi[:, 1:], data.xi[:, 1:]) and float(perp.xi[:, 0].abs().max()) < 1e-15
    with pytest.raises(TypeError, match="Dataset"):
        orthogonal_noise(data.xi)
