import math

import pytest
import torch

from lnfl.model import dloss
from lnfl.stages import (
    abs_dloss,
    markdown_table,
    memorised,
    noisy_gradient_share,
    own_memorisation,
    run_seeds,
    signal_beats_memorisation,
    spread,
    stage_one_summary,
    stage_two_summary,
    stitch,
    sweep_d,
    t_all_noisy_fitted,
    t_separation,
    true_class_signal,
)
from lnfl.theory import t1_order
from lnfl.training import setup


def test_abs_dloss_is_minus_the_loss_derivative(small):
    h = small.train(steps=30, record_every=10)
    a = abs_dloss(h)
    assert torch.allclose(a, -dloss(h.margin), atol=1e-15)
    assert bool(((a > 0) & (a < 1)).all())
    # the recorded group means are means of the same quantity
    assert torch.allclose(a[:, small.data.clean].mean(dim=1), h.mean_abs_dloss_clean, atol=1e-12)


def test_noisy_gradient_share_by_hand(small):
    h = small.train(steps=30, record_every=10)
    share = noisy_gradient_share(h, small.data)
    k = -1
    w = 1 / (1 + torch.exp(h.margin[k]))
    by_hand = w[small.data.noisy].sum() / w.sum()
    assert float(share[k]) == pytest.approx(float(by_hand), rel=1e-12)
    assert bool(((share >= 0) & (share <= 1)).all())


def test_per_sample_signal_and_memorisation_by_loop(small):
    h = small.train(steps=40, record_every=20)
    d = small.data
    g_mean, g_min = true_class_signal(h, d), true_class_signal(h, d, "min")
    r_mean, r_max = own_memorisation(h, d), own_memorisation(h, d, "max")
    k = -1
    for i in range(d.n):
        jt = 0 if d.y[i] > 0 else 1  # true class index
        jo = 0 if d.y_obs[i] > 0 else 1  # observed class index
        assert float(g_mean[k, i]) == pytest.approx(float(h.gamma[k, jt].mean()))
        assert float(g_min[k, i]) == pytest.approx(float(h.gamma[k, jt].min()))
        rb = h.rho[k, jo, :, i].clamp(min=0)
        assert float(r_mean[k, i]) == pytest.approx(float(rb.mean()))
        assert float(r_max[k, i]) == pytest.approx(float(rb.max()))
    # memorisation by the observed class is ρ̄ ≥ 0 and it grows in this run
    assert bool((r_mean >= 0).all()) and float(r_mean[-1].sum()) > 0


def test_strict_comparison_implies_mean_comparison(small):
    h = small.train(steps=200, record_every=10)
    strict = signal_beats_memorisation(h, small.data, strict=True)
    loose = signal_beats_memorisation(h, small.data)
    assert bool((~strict | loose).all()), "min γ > max ρ̄ must imply mean γ > mean ρ̄"
    assert torch.equal(memorised(h, small.data), own_memorisation(h, small.data) > true_class_signal(h, small.data))


def test_stage_one_on_reference_runs(reference_runs):
    """Theorem 4.1 on seeds 0-2 of the reference configuration (theory.md §6)."""
    for seed in range(3):
        h = reference_runs[("early", seed)]
        data = setup(seed=seed, n_test=1).data
        s1 = stage_one_summary(h, data, sigma_xi=1.0)
        assert s1.t1_hat == h.t1_hat() and 1 <= s1.t1_hat <= 10, s1
        assert s1.t1_order == pytest.approx(t1_order(200, 20, 0.1, 1.0, 400))
        assert s1.clean_fitted == 1.0
        assert s1.noisy_true_frac >= 0.85, s1
        assert s1.signal_wins == 1.0 and s1.signal_wins_strict >= 0.9, s1
        assert s1.gamma_mean > s1.rho_bar_noisy_max > 0, s1
        assert s1.min_abs_dloss > 0.3, "all |ℓ'_i| stay near 1/2 during Stage I"
        assert s1.t_separation is not None and s1.t_separation <= 50, s1
        assert t_separation(h) == s1.t_separation


def test_stage_two_on_reference_runs(reference_runs):
    """Theorem 4.2 on seeds 0-2 of the reference configuration: memorisation, signal kept, both error conventions."""
    for seed in range(3):
        h = reference_runs[("noisy", seed)]
        data = setup(seed=seed, n_test=1).data
        s2 = stage_two_summary(h, data, 0.2, 0.2)
        assert s2.clean_fitted_end == 1.0 and s2.noisy_fitted_end == 1.0, s2
        assert s2.n_memorised == s2.n_noisy > 0, s2
        fitted = h.margin[-1, data.noisy] > 0
        assert bool(fitted.all()) and bool(memorised(h, data)[-1, data.noisy].all())
        assert s2.t_all_noisy_fitted is not None and 300 <= s2.t_all_noisy_fitted <= 3000, s2
        assert t_all_noisy_fitted(h) == s2.t_all_noisy_fitted
        assert s2.gamma_min > 0, "the signal is never forgotten"
        assert s2.noisy_share_end > 1.5 * s2.n_noisy / data.n, s2
        assert s2.error_bound == pytest.approx(0.1)
        assert s2.test_error_noisy_labels >= s2.error_bound, s2
        assert 0 <= s2.test_error_clean < s2.test_error_noisy_labels, s2


def test_stitch_equals_dense_recording(small):
    dense = small.train(steps=60, record_every=1)
    early, late = small.train(steps=20, record_every=1), small.train(steps=60, record_every=7)
    h = stitch(early, late)
    assert h.t.tolist() == list(range(21)) + [21, 28, 35, 42, 49, 56, 60]
    idx = [dense.at(int(t)) for t in h.t]
    for name in ("loss", "gamma", "rho", "margin", "train_acc_noisy", "test_acc"):
        assert torch.allclose(getattr(h, name), getattr(dense, name)[idx], atol=1e-12), name
    assert torch.equal(h.W, late.W) and h.t1_hat() == dense.t1_hat()
    other = setup(seed=4, n_test=50, d=60, n=30, m=5, tau_plus=0.3, tau_minus=0.1).train(steps=60, record_every=7)
    with pytest.raises(ValueError, match="same run"):
        stitch(early, other)
    with pytest.raises(TypeError, match="early"):
        stitch("not a history", late)


def test_run_seeds_spread_and_sweep():
    runs = run_seeds([0, 1], steps=5, record_every=5, n_test=10, d=60, n=30, m=5)
    assert [s.data.d for s, _ in runs] == [60, 60] and all(h.t.tolist() == [0, 5] for _, h in runs)
    mean, lo, hi = spread([h.loss for _, h in runs])
    assert torch.allclose(mean, (runs[0][1].loss + runs[1][1].loss) / 2)
    assert bool((lo <= mean).all() and (mean <= hi).all())
    rows = sweep_d([40, 80], [0], horizon=2.0, n_test=20, n=30, m=5)
    assert [r["d"] for r in rows] == [40, 80]
    assert rows[0]["steps"] == math.ceil(2.0 * t1_order(30, 5, 0.1, 1.0, 40))
    assert rows[1]["steps"] < rows[0]["steps"], "a larger d means a shorter time scale nm/(ησ²d)"
    for r in rows:
        assert 0 <= r["test_error_clean"] <= 1 and 0 <= r["test_error_noisy_labels"] <= 1
        assert r["d_over_n"] == pytest.approx(r["d"] / 30)


def test_bad_arguments_are_named(small):
    h = small.train(steps=5, record_every=5)
    with pytest.raises(TypeError, match="hist"):
        noisy_gradient_share("x", small.data)
    with pytest.raises(TypeError, match="data"):
        memorised(h, "x")
    other = setup(seed=0, n_test=5, d=60, n=31, m=5).data
    with pytest.raises(ValueError, match="n = 31"):
        memorised(h, other)
    with pytest.raises(ValueError, match="reduce"):
        own_memorisation(h, small.data, reduce="min")
    with pytest.raises(ValueError, match="reduce"):
        true_class_signal(h, small.data, reduce="max")
    with pytest.raises(TypeError, match="strict"):
        signal_beats_memorisation(h, small.data, strict=1)
    with pytest.raises(ValueError, match="sigma_xi"):
        stage_one_summary(h, small.data, sigma_xi=0.0)
    with pytest.raises(ValueError, match="tau_plus"):
        stage_two_summary(h, small.data, 0.5, 0.1)
    with pytest.raises(ValueError, match="train"):
        stage_two_summary(small.train(steps=0), small.data, 0.3, 0.1)
    noiseless = setup(seed=3, n_test=5, d=60, n=30, m=5, tau_plus=0.0, tau_minus=0.0)
    with pytest.raises(ValueError, match="no noisy"):
        stage_one_summary(noiseless.train(steps=5), noiseless.data, 1.0)
    with pytest.raises(ValueError, match="seeds"):
        run_seeds([], steps=1)
    with pytest.raises(ValueError, match="horizon"):
        sweep_d([40], [0], horizon=-1.0)
    with pytest.raises(ValueError, match="entries"):
        markdown_table(["a", "b"], [[1]])
    assert markdown_table(["a", "b"], [[None, 0.25]], digits=2).splitlines()[-1] == "| — | 0.25 |"


def test_stage_one_summary_needs_clean_samples_fitted(small):
    h = small.train(steps=0)
    assert h.t1_hat() is None, "W⁽⁰⁾ of this setup does not fit every clean sample"
    with pytest.raises(ValueError, match="train longer"):
        stage_one_summary(h, small.data, 1.0)
