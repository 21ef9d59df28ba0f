import math
from dataclasses import replace

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
    stage_one_breakers,
    stage_one_state,
    stage_one_summary,
    stage_one_window,
    stage_two_summary,
    stitch,
    sweep_d,
    t_all_noisy_fitted,
    true_class_signal,
    true_margin,
)
from lnfl.theory import t1_order
from lnfl.training import History, setup


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


def test_stage_one_window_on_hand_made_histories(four, hand_history):
    ok, clean_only, noisy_fit, zero = [1, 1, -1, -1], [1, 1, 1, -1], [1, 1, 2, 3], [1, 0, -1, -1]
    assert stage_one_window(hand_history([clean_only, noisy_fit, clean_only]), four) is None  # never holds
    assert stage_one_window(hand_history([clean_only, ok, noisy_fit]), four) == (1, 1)  # holds once
    flicker = hand_history([clean_only, ok, clean_only, ok, noisy_fit, noisy_fit])
    assert stage_one_window(flicker, four) == (1, 3), "a window spans the steps where the state flickers"
    assert stage_one_state(flicker, four).tolist() == [False, True, False, True, False, False]
    assert stage_one_window(hand_history([clean_only, ok, ok]), four) == (1, 2)  # holds to the end of the recording
    assert stage_one_window(hand_history([ok, zero, ok], t=[0, 10, 20]), four) == (0, 20), "recorded steps, not indices"
    for z in (zero, [1, 1, 0, -1]):
        assert not bool(stage_one_state(hand_history([z]), four)[0]), "a zero output is neither fitted nor classified"
    # the clean-fit time only looks at the clean samples, and comes first
    h = hand_history([[-1, 1, 1, 1], clean_only, ok, noisy_fit], t=[0, 5, 10, 15])
    assert h.t_clean_fit() == 5 and stage_one_window(h, four) == (10, 10)
    assert hand_history([[-1, 1, -1, -1], [1, -1, -1, -1]]).t_clean_fit() is None


def test_stage_one_breakers_on_hand_made_histories(four, hand_history):
    """The noisy samples misclassified (y_i f ≤ 0) at the first record after T₁; samples 2 and 3 are noisy."""
    ok, clean_only = [1, 1, -1, -1], [1, 1, 1, -1]
    assert stage_one_breakers(hand_history([ok, ok, clean_only]), four).tolist() == [2]
    assert stage_one_breakers(hand_history([ok, [1, 1, 1, 0], [1, 1, 1, 1]]), four).tolist() == [2, 3]
    assert stage_one_breakers(hand_history([ok, ok, [-1, 1, -1, -1]]), four).tolist() == []  # a clean sample lost
    assert stage_one_breakers(hand_history([clean_only, clean_only]), four).tolist() == []  # no window
    assert stage_one_breakers(hand_history([clean_only, ok, ok]), four).tolist() == []  # T₁ is the last record
    # the step after T₁ in the records, not T₁ + 1 in steps, and only the first such record counts
    h = hand_history([ok, ok, [1, 1, -1, 1], [1, 1, 1, 1]], t=[0, 10, 20, 30])
    assert stage_one_breakers(h, four).tolist() == [3]


def test_stage_one_window_equals_a_loop_over_the_records(reference_runs):
    h, data = reference_runs[("early", 0)], setup(seed=0, n_test=1).data
    holds = [
        all(float(h.margin[k, i]) > 0 for i in range(data.n) if data.clean[i])
        and all(float(data.y[i] * data.y_obs[i] * h.margin[k, i]) > 0 for i in range(data.n) if data.noisy[i])
        for k in range(0, len(h.t), 7)
    ]
    assert stage_one_state(h, data)[::7].tolist() == holds


def test_stage_one_summary_reads_each_field_at_t1(four):
    """Every field of the summary on a hand-made run whose window is steps 1-2 (T₁ = 2), with values chosen so
    that reading a field at the window's start, at the last step, over the wrong range of steps, or with the
    mean where the max is meant gives another number.  Samples 2, 3 are noisy: 2 has y = +1, ỹ = −1 (signal
    γ_{+1,r}, memorisation ρ_{−1,r,2}), 3 has y = −1, ỹ = +1 (γ_{−1,r}, ρ_{+1,r,3}); m = 2 filters per class."""
    margin = torch.tensor([[1.0, 1, 1, 1], [1, 1, -1, -1], [2, 2, -1, -1], [3, 3, 1, -1]])
    gamma = torch.tensor([0.0, 1.0, 1.0, 5.0])[:, None, None].expand(4, 2, 2).clone()
    rho = torch.zeros(4, 2, 2, 4)
    rho[1, 1, :, 2], rho[1, 0, :, 3] = torch.tensor([0.2, 0.4]), torch.tensor([0.1, 0.1])  # both noisy: γ wins
    rho[2, 1, :, 2], rho[2, 0, :, 3] = torch.tensor([0.5, 2.5]), torch.tensor([0.8, -0.6])  # sample 2: ρ̄ wins
    rho[2, 0, :, 2] = -3.0  # the other class's filters: not sample 2's memorisation
    rho[3] = 9.0
    zeros = torch.zeros(4, dtype=torch.float64)
    h = History(
        t=torch.arange(4), loss=zeros, gamma=gamma, rho=rho, margin=margin, train_acc=zeros,
        train_acc_clean=(margin[:, :2] > 0).double().mean(dim=1), train_acc_noisy=zeros, noisy_true_acc=zeros,
        test_acc=zeros, test_acc_noisy_labels=zeros, mean_abs_dloss_clean=zeros, mean_abs_dloss_noisy=zeros,
        W=torch.zeros(2, 2, 3), W0=torch.zeros(2, 2, 3), eta=0.1,
    )  # fmt: skip
    s1 = stage_one_summary(h, four, sigma_xi=2.0)
    assert s1.window == (1, 2) and s1.t1 == 2 and s1.t_clean_fit == 0
    assert s1.t1_order == pytest.approx(4 * 2 / (0.1 * 2.0**2 * 3)) and s1.t1_ratio == pytest.approx(2 / s1.t1_order)
    assert s1.signal_wins == 0.5, "at T₁ sample 2's mean ρ̄ (1.5) exceeds γ (1.0); at the window's start it did not"
    assert s1.signal_wins_window == 0.5, "the smallest over the window's steps 1, 2"
    assert s1.signal_wins_strict == 0.5, "min γ = 1 beats sample 3's max ρ̄ (0.8), not sample 2's (2.5)"
    assert s1.gamma_mean == 1.0, "γ at T₁, not at the last step (5.0)"
    assert s1.rho_bar_noisy_mean == pytest.approx((1.5 + 0.4) / 2), "ρ̄ = max(ρ, 0) of the observed class's filters"
    assert s1.rho_bar_noisy_max == 2.5, "the largest single ρ̄, not the largest mean over r (1.5)"
    assert s1.min_abs_dloss == pytest.approx(1 / (1 + math.exp(2.0))), "min |ℓ'| over steps 0..T₁: margin 2 at T₁"


def test_stage_one_on_reference_runs(reference_runs):
    """Theorem 4.1 at T₁, the end of the Stage I window, on seeds 0-2 of the reference configuration."""
    order = t1_order(200, 20, 0.1, 1.0, 400)
    for seed in range(3):
        h = reference_runs[("early", seed)]
        data = setup(seed=seed, n_test=1).data
        s1 = stage_one_summary(h, data, sigma_xi=1.0)
        start, end = stage_one_window(h, data)
        assert s1.window == (start, end) and s1.t1 == end and s1.t1_order == pytest.approx(order)
        assert 1 <= s1.t_clean_fit == h.t_clean_fit() <= start <= 15 < 60 <= end <= 200, s1
        assert 0.4 <= s1.t1_ratio <= 2.4, "T₁ is of the order nm/(ησ²d)"
        k = h.at(end)
        assert float(h.train_acc_clean[k]) == 1.0 and float(h.noisy_true_acc[k]) == 1.0
        assert float(h.noisy_true_acc[k + 1]) < 1.0 or float(h.train_acc_clean[k + 1]) < 1.0, "T₁ is the last step"
        assert s1.signal_wins == 1.0 and s1.signal_wins_window == 1.0 and s1.signal_wins_strict >= 0.8, s1
        assert s1.gamma_mean > 0.5 and s1.rho_bar_noisy_mean > 0.1, "both Θ(1) at T₁, not at the clean-fit time"
        assert s1.gamma_mean > s1.rho_bar_noisy_max > s1.rho_bar_noisy_mean > 0, s1
        assert s1.min_abs_dloss > 0.05, "all |ℓ'_i| stay bounded below during Stage I"
        k_fit = h.at(s1.t_clean_fit)
        assert float(h.gamma[k_fit].mean()) < 0.2, "at the clean-fit time γ is still far from Θ(1)"


def test_seed_four_has_no_stage_one():
    """Seed 4 of the reference: one noisy sample is never classified by its true label."""
    s = setup(seed=4, n_test=1)
    h = s.train(steps=400)
    assert stage_one_window(h, s.data) is None and h.t_clean_fit() is not None
    assert float(h.noisy_true_acc.max()) < 1.0
    with pytest.raises(ValueError, match="never holds"):
        stage_one_summary(h, s.data, 1.0)


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
        assert s2.gamma_dip < 0.01 and s2.gamma_end == s2.gamma_peak, "no filter's signal falls in Stage II"
        assert s2.t1 is not None and s2.clean_fitted_after_t1 == 1.0, "claim 1, from T₁ (to within 25 steps) on"
        assert s2.t_all_noisy_fitted <= s2.t_noisy_fitted_to_end <= 3000, s2
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
    assert torch.equal(h.W, late.W) and h.t_clean_fit() == dense.t_clean_fit()
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


def test_stage_one_summary_needs_the_stage_one_state(small):
    h = small.train(steps=0)
    assert h.t_clean_fit() is None, "W⁽⁰⁾ of this setup does not fit every clean sample"
    with pytest.raises(ValueError, match="train longer"):
        stage_one_summary(h, small.data, 1.0)


def test_true_margin_is_the_margin_against_the_true_label(small):
    """y_i f: equal to ỹ_i f on clean samples, its negative on noisy ones; positive exactly where the sample is
    classified by its true label (the recorded noisy_true_acc and train_acc_clean)."""
    h = small.train(steps=200, record_every=20)
    data = small.data
    tm = true_margin(h, data)
    assert tm.shape == h.margin.shape and bool(data.noisy.any())
    assert torch.equal(tm[:, data.clean], h.margin[:, data.clean])
    assert torch.equal(tm[:, data.noisy], -h.margin[:, data.noisy])
    assert torch.allclose((tm[:, data.noisy] > 0).double().mean(1), h.noisy_true_acc.double())
    assert torch.allclose((tm[:, data.clean] > 0).double().mean(1), h.train_acc_clean.double())
    with pytest.raises(ValueError, match="samples"):
        true_margin(h, setup(seed=0, n_test=1, d=60, n=31, m=5).data)


def test_signal_pull_is_the_growth_of_the_mean_signal(four, hand_history):
    """Zero margins (every |ℓ'_i| = 1/2): the pull is theory.signal_step at the draw's realised flip fraction.
    On a real run, once each filter sees its own class's signal patches, it is the recorded growth of γ̄."""
    from lnfl.data import Dataset
    from lnfl.stages import signal_pull
    from lnfl.theory import signal_step

    one_noisy = Dataset(  # samples 0-2 clean, sample 3 flipped: τ̂ = 1/4
        torch.tensor([2.0, 0, 0]), torch.eye(4, 3), torch.tensor([1.0, -1, 1, -1]), torch.tensor([1.0, -1, 1, 1])
    )
    h = hand_history([[0.0, 0.0, 0.0, 0.0]] * 2)  # m = 1, η = 0.1
    assert float(signal_pull(h, one_noisy)[0]) == pytest.approx(signal_step(0.1, 2.0, 1, 0.25), rel=1e-12)
    assert float(signal_pull(h, four)[0]) == pytest.approx(0.0, abs=1e-15), "τ̂ = 1/2: the pulls cancel"
    uneven = hand_history([[0.0, 0.0, 0.0, 10.0]])  # the second noisy sample is fitted: its weight ≈ 0
    w = 1 / (1 + math.exp(10.0))
    assert float(signal_pull(uneven, four)[0]) == pytest.approx(0.1 * 1.0 / (2 * 4 * 1) * (0.5 + 0.5 - 0.5 - w))
    s = setup(seed=0, n_test=1)  # the reference configuration, seed 0
    h, data = s.train(steps=250), s.data
    pull = signal_pull(h, data)
    growth = h.gamma.mean(dim=(1, 2)).diff()
    n_f = int(data.noisy.sum())
    assert float(pull[0]) == pytest.approx(signal_step(0.1, float(data.mu.norm()), 20, n_f / data.n), rel=0.02)
    assert torch.allclose(pull[10:-1], growth[10:], rtol=1e-6), "the pull is the recursion of γ̄ (Chapter 4)"
    assert float(pull[-1]) < 0.1 * float(pull[0]), "by t = 250 the pull has all but cancelled"


def _history_with(build, margin: list[list[float]], gamma: list[list[float]], t: list[int]) -> History:
    """A hand-made History (``build``: the ``hand_history`` fixture) with margins (T, n) on `four` and γ (T, 2·m)
    given per filter."""
    h = build(margin, t)
    g = torch.tensor(gamma, dtype=torch.float64)
    noisy_fit = (h.margin[:, 2:] > 0).double().mean(dim=1)  # samples 2, 3 of `four` are the noisy ones
    gamma = g.reshape(len(t), 2, -1)
    return replace(h, gamma=gamma, rho=torch.zeros(len(t), 2, g.shape[1] // 2, 4), train_acc_noisy=noisy_fit)


def test_stage_two_summary_fields_on_hand_made_histories(four, hand_history):
    ok, noisy_fit, one_noisy = [1, 1, -1, -1], [1, 1, 2, 3], [1, 1, 2, -1]
    t = [0, 10, 20, 30, 40]
    # the window is [10, 10]; the clean samples stay fitted; the noisy ones are fitted from t = 30 on for good
    h = _history_with(
        hand_history,
        [[1, -1, -1, -1], ok, one_noisy, noisy_fit, noisy_fit],
        [[0, 0], [1.0, 2.0], [2.0, 1.5], [1.8, 3.0], [2.5, 3.2]],  # filter 1 dips to 1.5 (25%), filter 0 to 1.8
        t,
    )
    s2 = stage_two_summary(h, four, 0.2, 0.2)
    assert s2.t1 == 10 and s2.clean_fitted_after_t1 == 1.0 and s2.t_noisy_fitted_to_end == 30
    assert s2.gamma_dip == pytest.approx(0.25), "1 − 1.5/2.0 for filter 1 at t = 20"
    assert s2.gamma_min == 1.0, "min over recorded t > 0 (γ⁽⁰⁾ = 0 by definition) and every filter"
    assert s2.gamma_peak == pytest.approx(2.85) and s2.gamma_end == pytest.approx(2.85), "the mean over filters"
    # a noisy sample that is fitted, lost again and refitted is fitted for good only from its last refit
    flick = _history_with(hand_history, [ok, noisy_fit, one_noisy, noisy_fit, noisy_fit], [[0, 0]] + [[1, 1]] * 4, t)
    s2 = stage_two_summary(flick, four, 0.2, 0.2)
    assert s2.t1 == 0 and s2.t_noisy_fitted_to_end == 30 and s2.t_all_noisy_fitted == 10 and s2.gamma_dip == 0.0
    # a clean sample lost after T₁ shows in clean_fitted_after_t1; the dip counts only from T₁ on
    lost = _history_with(
        hand_history, [ok, [1, -1, 2, 3], noisy_fit, noisy_fit, noisy_fit], [[0, 0], [3, 3], [1, 3], [1, 3], [1, 3]], t
    )
    s2 = stage_two_summary(lost, four, 0.2, 0.2)
    assert s2.t1 == 0 and s2.clean_fitted_after_t1 == 0.5 and s2.gamma_dip == pytest.approx(2 / 3)
    late = _history_with(
        hand_history, [[1, -1, -1, -1], ok, ok, ok, [1, 1, 2, -1]], [[0, 0], [3, 3], [1, 3], [1, 3], [1, 3]], t
    )
    s2 = stage_two_summary(late, four, 0.2, 0.2)
    assert s2.t1 == 30 and s2.gamma_dip == pytest.approx(2 / 3) and s2.t_noisy_fitted_to_end is None
    # a dip before T₁ that recovers by T₁ does not count: the reading is about Stage II
    early_dip = _history_with(
        hand_history, [[1, -1, -1, -1], ok, ok, ok, noisy_fit], [[0, 0], [3, 3], [1, 3], [3.5, 3], [4, 3]], t
    )
    s2 = stage_two_summary(early_dip, four, 0.2, 0.2)
    assert s2.t1 == 30 and s2.gamma_dip == 0.0
    never = _history_with(hand_history, [[1, -1, 1, 1]] * 5, [[0, 0], [3, 3], [1, 3], [1, 3], [1, 3]], t)
    s2 = stage_two_summary(never, four, 0.2, 0.2)
    assert s2.t1 is None and math.isnan(s2.clean_fitted_after_t1) and s2.gamma_dip == pytest.approx(2 / 3)


def test_level_crossing():
    from lnfl.stages import level_crossing

    x, y = [0.5, 1.0, 2.0, 4.0], [0.4, 0.2, 0.05, 0.01]
    assert level_crossing(x, y, 0.2) == pytest.approx(1.0)
    assert level_crossing(x, y, 0.1) == pytest.approx(2 ** (math.log(2) / math.log(4)))  # log-log interpolation
    assert level_crossing(x, y, 0.5) is None, "starts below the level"
    assert level_crossing(x, y, 0.005) is None, "never falls below"
    assert level_crossing(x, [0.4, 0.05, 0.3, 0.0], 0.1) < 1.0, "the first fall below the level counts"
    assert level_crossing([1.0, 2.0], [0.3, 0.0], 0.1) == 2.0, "a zero counts as below"
    with pytest.raises(ValueError, match="increasing"):
        level_crossing([1.0, 1.0], [0.3, 0.2], 0.1)
    with pytest.raises(ValueError, match="same length"):
        level_crossing([1.0, 2.0], [0.3, 0.2, 0.1], 0.1)


def test_run_batch_and_model_test_errors():
    from lnfl.stages import model_test_errors, run_batch

    kw = {"d": 60, "n": 30, "m": 5, "tau_plus": 0.3, "tau_minus": 0.1}
    batch = run_batch([3, 4], steps=40, record_every=20, test="sample", n_test=20000, **kw)
    single = run_seeds([3, 4], steps=40, record_every=20, n_test=20000, **kw)
    for (sb, hb), (ss, hs) in zip(batch, single, strict=True):
        assert torch.equal(sb.data.y_obs, ss.data.y_obs) and torch.allclose(hb.margin, hs.margin, atol=1e-10)
    err = model_test_errors(batch)  # whole distribution, against clean and against noisy labels
    sample = torch.tensor([[1 - float(h.test_acc[-1]), 1 - float(h.test_acc_noisy_labels[-1])] for _, h in batch])
    assert torch.allclose(err, sample, atol=0.015), (err, sample)  # 20,000 test points and 16,384 draws
    # asymmetric flips: against noisy labels the model's own τ₊ = 0.3, τ₋ = 0.1 enter, not their mean
    assert bool((err[:, 1] > 0.15).all()) and bool((err[:, 0] < err[:, 1]).all())
    f32 = run_batch([3], steps=5, dtype=torch.float32, rho_dtype=torch.float32, **kw)
    assert f32[0][1].rho.dtype == torch.float32 and f32[0][0].W0.dtype == torch.float32
    with pytest.raises(ValueError, match="test must be"):
        run_batch([0], steps=1, test="all")
    with pytest.raises(TypeError, match=r"runs\[0\]"):
        model_test_errors([("a", "b")])
