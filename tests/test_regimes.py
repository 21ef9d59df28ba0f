import math

import pytest
import torch

from lnfl.regimes import loglog_slope, memorisation_vs_d, phase_diagram, t1_sweep, t_gamma
from lnfl.training import setup


def test_loglog_slope_recovers_power_laws():
    x = [1.0, 2.0, 4.0, 8.0]
    assert loglog_slope(x, [3 * v**1.5 for v in x]) == pytest.approx(1.5)
    assert loglog_slope(x, [2 / v for v in x]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="two or more matching positive"):
        loglog_slope([1.0], [1.0])
    with pytest.raises(ValueError, match="two or more matching positive"):
        loglog_slope([1.0, 2.0], [1.0, 0.0])


def test_t_gamma_is_first_recorded_step_reaching_level(small):
    h = small.train(steps=200, record_every=1)
    t = t_gamma(h, 0.2)
    mean = h.gamma.mean(dim=(1, 2))
    assert t is not None and float(mean[h.at(t)]) >= 0.2 and float(mean[h.at(t) - 1]) < 0.2
    assert t_gamma(h, 1e6) is None
    with pytest.raises(ValueError, match="level must be in"):
        t_gamma(h, 0.0)


def test_t1_sweep_shapes_and_eta_scaling():
    r = t1_sweep("eta", [0.02, 0.04], seeds=(0, 1), n=40, m=4, d=200)
    assert r["t1"].shape == (2, 2) and r["t_gamma"].shape == (2, 2) and r["order"].shape == (2,)
    assert float(r["order"][0]) == pytest.approx(40 * 4 / (0.02 * 200))
    # doubling η halves both clocks (to within one recorded step)
    assert torch.allclose(r["t_gamma"][0], 2 * r["t_gamma"][1], atol=2)
    with pytest.raises(ValueError, match="param must be one of"):
        t1_sweep("tau", [0.1])


def test_phase_diagram_shapes_and_extremes():
    out = phase_diagram([1.0, 32.0], [0.05, 0.4], seeds=(0,), early_steps=60, steps=300, n=40, m=4, d=200, eta=0.05)
    assert all(v.shape == (2, 2, 1) for v in out.values())
    s1 = out["noisy_true_at_t1"][:, :, 0]
    assert float(s1[1, 0]) > float(s1[0, 0])  # a strong signal with little noise has a Stage I, a weak one not


def test_memorisation_vs_d_scales_eta_and_sigma0():
    out = memorisation_vs_d([100, 3000], seeds=(0,), early_steps=20, steps=200, n=20, m=4, eta=0.02)
    assert out["final_test_error"].shape == (2, 1)
    assert not math.isnan(float(out["t1"][1, 0]))
    s = setup(seed=0, n=20, m=4, d=3000, n_test=1, eta=0.02 * 400 / 3000, sigma0=0.01 * math.sqrt(400 / 3000))
    proj = (s.W0.reshape(8, -1) @ s.data.xi.T).std()
    assert float(proj) == pytest.approx(0.01 * math.sqrt(400), rel=0.15)  # σ₀σ_ξ√d kept at its d = 400 value
