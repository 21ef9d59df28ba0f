import math

import pytest
import torch

from lnfl.regimes import (
    Clocks,
    best_noisy_true,
    clean_error_at,
    clean_fit_order,
    clean_fit_sweep,
    curve_discrepancy,
    loglog_slope,
    memorisation_vs_d,
    phase_diagram,
    slope_interval,
    stage_one_clocks,
    t1_sweep,
    t_gamma,
)
from lnfl.selection import early_stopping_index
from lnfl.stages import stage_one_window
from lnfl.theory import t1_order
from lnfl.training import setup, train, train_batch


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


def test_t_gamma_by_hand_is_the_mean_over_filters(hand_history):
    """T_γ on a hand-made run: at step 10 one filter's γ is above the level but the mean over (j, r) is not."""
    from dataclasses import replace

    h = hand_history([[1, 1, -1, -1]] * 3, t=[0, 10, 20])
    gamma = torch.tensor([[[0.0, 0.0], [0.0, 0.0]], [[0.9, 0.1], [0.1, 0.1]], [[0.6, 0.5], [0.5, 0.6]]])
    h = replace(h, gamma=gamma)
    assert t_gamma(h, 0.5) == 20, "the mean of γ_{j,r} reaches 0.5 at step 20 (0.3 at step 10)"
    assert t_gamma(h, 0.25) == 10 and t_gamma(h, 0.56) is None


def test_clean_fit_order_by_hand_at_non_unit_scales():
    # σ₀ n √m/(η σ_ξ √d): σ_ξ enters to the first power (σ_ξ² would give 0.75 here), d under a square root
    assert clean_fit_order(n=50, m=16, eta=0.2, sigma_xi=2.0, d=100, sigma0=0.03) == pytest.approx(
        0.03 * 50 * 4 / (0.2 * 2.0 * 10)
    )
    ratio = clean_fit_order(100, 10, 0.1, 1.0, 400, 0.01) / clean_fit_order(100, 10, 0.1, 1.0, 1600, 0.01)
    assert ratio == pytest.approx(2.0)
    with pytest.raises(ValueError, match="sigma0"):
        clean_fit_order(100, 10, 0.1, 1.0, 400, 0.0)


def test_stage_one_clocks_on_hand_made_histories(four, hand_history):
    ok, clean_only, noisy_fit, unfit = [1, 1, -1, -1], [1, 1, 1, -1], [1, 1, 2, 3], [-1, 1, -1, -1]
    assert stage_one_clocks(hand_history([unfit, clean_only, noisy_fit]), four) == Clocks(None, None, False, 1)
    assert stage_one_clocks(hand_history([unfit, unfit]), four) == Clocks(None, None, False, None)
    # the clocks are recorded steps, T₁ is the *last* step of the state, the clean-fit time the first fitted step
    h = hand_history([unfit, clean_only, ok, clean_only, ok, noisy_fit], t=[0, 5, 10, 15, 20, 25])
    assert stage_one_clocks(h, four) == Clocks(10, 20, False, 5)
    # the state still holds at the last record: T₁ is only a lower bound
    assert stage_one_clocks(hand_history([unfit, ok, ok]), four) == Clocks(1, 2, True, 1)


def test_best_noisy_true_only_counts_steps_with_every_clean_sample_fitted(four, hand_history):
    h = hand_history([[-1, 1, -1, -1], [1, 1, 1, -1], [1, 1, -1, 1], [1, -1, -1, -1]])
    h.noisy_true_acc = torch.tensor([1.0, 0.5, 0.5, 1.0], dtype=torch.float64)  # y_i f > 0 on both noisy ones at 0, 3
    assert best_noisy_true(h) == 0.5, "steps 0 and 3 do not count: a clean sample is unfitted there"
    h.noisy_true_acc = torch.tensor([0.0, 0.5, 1.0, 0.0], dtype=torch.float64)
    assert best_noisy_true(h) == 1.0
    h.train_acc_clean = torch.full((4,), 0.5, dtype=torch.float64)
    assert math.isnan(best_noisy_true(h))


def test_stage_one_clocks_on_a_real_run(small):
    h = small.train(steps=120, record_every=1)
    c = stage_one_clocks(h, small.data)
    assert (c.start, c.t1) == stage_one_window(h, small.data) and c.t_clean_fit == h.t_clean_fit()
    assert c.t1 is not None and c.t_clean_fit <= c.start <= c.t1 < 120 and not c.censored


SMALL = {"n": 30, "m": 5, "d": 60, "tau_plus": 0.3, "tau_minus": 0.1}


def test_t1_sweep_measures_the_end_of_the_window_of_each_run():
    r = t1_sweep("eta", [0.05, 0.1], seeds=(1, 4), **SMALL)
    assert r["t1"].shape == r["start"].shape == r["t_clean_fit"].shape == r["censored"].shape == (2, 2)
    assert float(r["order"][0]) == pytest.approx(t1_order(30, 5, 0.05, 1.0, 60))
    assert float(r["clean_fit_order"][1]) == pytest.approx(clean_fit_order(30, 5, 0.1, 1.0, 60, 0.01))
    assert r["steps"].tolist() == [math.ceil(4 * float(o)) for o in r["order"]]
    for k, eta in enumerate((0.05, 0.1)):
        for j, seed in enumerate((1, 4)):
            s = setup(seed=seed, n_test=1, eta=eta, dtype=torch.float32, **SMALL)
            h = train(s.W0, s.data, eta=eta, steps=int(r["steps"][k]), engine="coef")
            window = stage_one_window(h, s.data)
            assert window is not None
            assert (r["start"][k, j], r["t1"][k, j]) == window, "T₁ is the last step of the Stage I window"
            assert float(r["t_clean_fit"][k, j]) == h.t_clean_fit()
    # T₁ ∝ 1/η: halving the step size doubles the end of Stage I (to within a step)
    assert torch.allclose(r["t1"][0], 2 * r["t1"][1], atol=2)


def test_t1_sweep_flags_a_window_still_open_at_the_end():
    rest = {k: v for k, v in SMALL.items() if k != "d"}
    short = t1_sweep("d", [60], seeds=(1,), horizon=1.0, eta=0.1, **rest)  # 25 steps; the window ends at 33
    long = t1_sweep("d", [60], seeds=(1,), eta=0.1, **rest)
    assert not bool(long["censored"].any()) and float(long["t1"][0, 0]) > 25
    assert bool(short["censored"][0, 0]) and float(short["t1"][0, 0]) == float(short["steps"][0]) == 25
    with pytest.raises(TypeError, match="varies d itself"):
        t1_sweep("d", [60], seeds=(2,), **SMALL)
    with pytest.raises(ValueError, match="param must be"):
        t1_sweep("tau", [0.1])


def test_t1_does_not_move_with_sigma0_while_the_clean_fit_time_does():
    base = {"n": 60, "m": 8, "d": 240, "eta": 0.05}
    seeds = tuple(range(6))
    t1 = t1_sweep("sigma0", [0.002, 0.02], seeds, **base)["t1"]
    fit = clean_fit_sweep("sigma0", [0.002, 0.02], seeds, **{**base, "eta": 0.005})["t_clean_fit"]
    gm = lambda x: torch.exp(torch.nanmean(torch.log(x), dim=1))  # noqa: E731
    assert float(gm(t1)[1] / gm(t1)[0]) < 2.0, "a 10× larger σ₀ should move T₁ by less than 2×"
    assert float(gm(fit)[1] / gm(fit)[0]) > 3.0, "a 10× larger σ₀ should move the clean-fit time by more than 3×"


def test_clean_fit_sweep_equals_direct_runs():
    r = clean_fit_sweep("n", [30, 40], seeds=(2,), eta=0.01, **{k: v for k, v in SMALL.items() if k != "n"})
    for k, n in enumerate((30, 40)):
        assert int(r["steps"][k]) == math.ceil(3 * clean_fit_order(n, 5, 0.01, 1.0, 60, 0.01))
        s = setup(seed=2, n_test=1, dtype=torch.float32, eta=0.01, **{**SMALL, "n": n})
        h = train(s.W0, s.data, eta=0.01, steps=int(r["steps"][k]), engine="coef")
        assert float(r["t_clean_fit"][k, 0]) == h.t_clean_fit()


def test_slope_interval_geometric_means_and_seeds_kept_together():
    v = [1.0, 2.0, 4.0]
    # each seed follows t = c_s v^1.5: resampling whole seeds keeps the slope exactly
    times = torch.tensor([[c * x**1.5 for c in (1.0, 3.0, 10.0)] for x in v])
    fit = slope_interval(v, times, n_boot=200)
    assert fit.slope == pytest.approx(1.5) and fit.low == pytest.approx(1.5) and fit.high == pytest.approx(1.5)
    # geometric, not arithmetic, means over seeds: rows [1, 4] and [4, 4] have geometric means 2 and 4
    assert slope_interval([1.0, 2.0], torch.tensor([[1.0, 4.0], [4.0, 4.0]]), n_boot=50).slope == pytest.approx(1.0)
    # NaN (event not seen) is skipped
    times[0, 1] = float("nan")
    assert slope_interval(v, times, n_boot=50).slope == pytest.approx(1.5, abs=0.2)
    # with scatter the interval has width and contains the estimate
    g = torch.Generator().manual_seed(0)
    noisy = torch.tensor(v)[:, None] * torch.exp(0.3 * torch.randn(3, 20, generator=g, dtype=torch.float64))
    f = slope_interval(v, noisy)
    assert f.low < f.slope < f.high and f.high - f.low > 0.05
    with pytest.raises(ValueError, match="every value needs at least one observed time"):
        slope_interval([1.0, 2.0], torch.tensor([[1.0, 2.0], [float("nan")] * 2]))
    with pytest.raises(ValueError, match="positive"):
        slope_interval([1.0, 2.0], torch.tensor([[1.0], [-2.0]]))


PHASE = {"n": 30, "m": 5, "d": 60, "eta": 0.1}


def test_phase_diagram_equals_direct_runs():
    out = phase_diagram(
        [2.0, 32.0], [0.05, 0.3], seeds=(0, 1), late_seeds=(1,), steps=150, dtype=torch.float64, **PHASE
    )
    assert out["has_window"].shape == (2, 2, 2) and out["final_test_error"].shape == (2, 2, 1)
    early_steps = math.ceil(4 * float(out["order"]))
    for a, n_snr2 in enumerate((2.0, 32.0)):
        for b, tau in enumerate((0.05, 0.3)):
            cfg = {**PHASE, "n_snr2": n_snr2, "tau_plus": tau, "tau_minus": tau}
            s = setup(seed=1, n_test=1, **cfg)
            h = train(s.W0, s.data, eta=s.eta, steps=early_steps, engine="coef")
            window = stage_one_window(h, s.data)
            assert float(out["has_window"][a, b, 1]) == float(window is not None)
            if window is not None:
                assert float(out["t1"][a, b, 1]) == window[1] and float(out["best_noisy_true"][a, b, 1]) == 1.0
            else:
                fitted = h.train_acc_clean >= 1
                best = float(h.noisy_true_acc[fitted].max()) if bool(fitted.any()) else float("nan")
                assert float(out["best_noisy_true"][a, b, 1]) == pytest.approx(best, nan_ok=True)
                assert best < 1.0
            late = train(s.W0, s.data, eta=s.eta, steps=150, record_every=150, test=s.model, engine="coef")
            assert float(out["final_test_error"][a, b, 0]) == pytest.approx(1 - float(late.test_acc[-1]), abs=1e-9)
            assert float(out["final_noisy_fit"][a, b, 0]) == float(late.train_acc_noisy[-1])
    # a strong signal with little noise has a Stage I on both seeds, a weak one with much noise on neither
    assert float(out["has_window"][1, 0].mean()) == 1.0 and float(out["has_window"][0, 1].mean()) == 0.0


def test_clean_error_at_scores_clean_labels_at_the_given_step():
    setups = [setup(seed=s, n_test=1, **SMALL) for s in (3, 4)]
    hists = train_batch(setups, steps=40, test="none")
    s, h = setups[0], hists[0]
    steps = list(range(0, 41, 2))
    err = clean_error_at([s] * len(steps), [h] * len(steps), steps)
    direct = train(s.W0, s.data, eta=s.eta, steps=40, record_every=2, test=s.model)  # records exactly `steps`
    assert torch.allclose(err, 1 - direct.test_acc, atol=1e-12), "clean labels, at each requested step"
    assert len(set(err.tolist())) > 3, "the error moves over these steps, so a wrong step would show"
    assert not torch.allclose(err, 1 - direct.test_acc_noisy_labels, atol=1e-3)
    assert math.isnan(float(clean_error_at(setups, hists, [10, None])[1]))


def test_memorisation_vs_d_scales_eta_and_sigma0_and_measures_at_the_window():
    seeds, ds = (10, 11), (80, 240)
    out = memorisation_vs_d(ds, seeds=seeds, steps=200, order=10.0, n_val=100, dtype=torch.float64, n=30, m=5)
    assert out["final_test_error"].shape == out["t1"].shape == out["t_es"].shape == (2, 2)
    # η·d and σ₀√d fixed: nm/(η σ_ξ² d) = order, σ₀σ_ξ√d = the reference 0.01·√400 = 0.2
    assert torch.allclose(out["eta"] * out["d"], torch.full((2,), 30 * 5 / 10.0, dtype=torch.float64))
    assert torch.allclose(out["early_eta"] * out["d"], torch.full((2,), 30 * 5 / 25.0, dtype=torch.float64))
    differ = 0
    for a, d in enumerate(ds):
        cfg = {"n": 30, "m": 5, "d": d, "sigma0": 0.2 / d**0.5}
        early = [setup(seed=s, n_test=100, eta=30 * 5 / (25.0 * d), **cfg) for s in seeds]
        for b, (s, h) in enumerate(zip(early, train_batch(early, steps=100, test="sample"), strict=True)):
            window = stage_one_window(h, s.data)
            if window is None:
                assert math.isnan(float(out["t1"][a, b])) and math.isnan(float(out["test_error_t1"][a, b]))
            else:
                assert (float(out["start"][a, b]), float(out["t1"][a, b])) == window
                e1 = clean_error_at([s], [h], [window[1]])
                assert float(out["test_error_t1"][a, b]) == pytest.approx(float(e1[0]), abs=1e-12)
            t_es = int(h.t[early_stopping_index(h.test_acc_noisy_labels)])  # the practitioner's noisy labels
            assert float(out["t_es"][a, b]) == t_es
            differ += t_es != int(h.t[early_stopping_index(h.test_acc)])
            assert float(out["test_error_es"][a, b]) == pytest.approx(float(clean_error_at([s], [h], [t_es])[0]))
        late = [setup(seed=s, n_test=1, eta=30 * 5 / (10.0 * d), **cfg) for s in seeds]
        for b, h in enumerate(train_batch(late, steps=200, record_every=200, test="gaussian")):
            assert float(out["final_test_error"][a, b]) == pytest.approx(1 - float(h.test_acc[-1]), abs=1e-12)
    assert differ > 0, "these seeds stop elsewhere on clean labels, so the labels used are tested"
    skip = memorisation_vs_d([80], seeds=(2,), steps=20, early=False, n=30, m=5)
    assert math.isnan(float(skip["t1"][0, 0])) and not math.isnan(float(skip["final_test_error"][0, 0]))
    with pytest.raises(ValueError, match="must exceed n = 30"):
        memorisation_vs_d([30], seeds=(2,), steps=20, n=30, m=5)


def test_curve_discrepancy_in_decades():
    x = [1.0, 2.0, 4.0, 8.0]
    y = [0.1 / v for v in x]  # a power law: a straight line on log-log axes
    assert curve_discrepancy([x, x], [y, y]) == 0.0
    # a curve ten times higher is one decade away (the floor is negligible here)
    assert curve_discrepancy([x, x], [y, [10 * v for v in y]], floor=1e-9) == pytest.approx(1.0)
    # the same curve sampled at other x: interpolation in log x finds it again
    x2 = [1.5, 3.0, 6.0]
    assert curve_discrepancy([x, x2], [y, [0.1 / v for v in x2]], floor=1e-12) == pytest.approx(0.0, abs=1e-9)
    # shifting a falling curve along x separates it; the floor hides differences below it
    shifted = [2 * v for v in x]
    assert curve_discrepancy([x, shifted], [y, y], floor=1e-9) > 0.2
    assert curve_discrepancy([x, x], [[0.0] * 4, [1e-6] * 4], floor=1e-2) < 1e-3
    with pytest.raises(ValueError, match="nothing to compare"):
        curve_discrepancy([[1.0, 2.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="increasing"):
        curve_discrepancy([[2.0, 1.0], x], [[1.0, 1.0], y])


def test_collapse_bootstraps_over_seeds_and_measures_seed_noise():
    from lnfl.regimes import collapse

    x = [1.0, 2.0, 4.0]
    law = torch.tensor([0.1 / v for v in x], dtype=torch.float64)[:, None]
    g = torch.Generator().manual_seed(1)
    noisy = [law * torch.exp(0.2 * torch.randn(3, k, generator=g, dtype=torch.float64)) for k in (8, 16)]
    # the same law on two x-grids: the curves collapse up to seed noise
    same = collapse([x, x], noisy, floor=1e-9)
    assert same.low <= same.discrepancy <= same.high and same.noise > 0
    assert same.discrepancy < 0.2 and same.high < 0.3
    # one family drawn against a wrong variable (x doubled for the second curve) separates beyond the noise
    apart = collapse([x, [2 * v for v in x]], noisy, floor=1e-9)
    assert apart.low > same.high and apart.discrepancy > 2 * same.noise
    # exact curves: no spread at all
    exact = collapse([x, x], [law.repeat(1, 4), law.repeat(1, 6)], floor=1e-9)
    assert max(exact) < 1e-12
    # the noise term compares a curve's even and odd seeds
    two = torch.cat([law, 10 * law], dim=1)  # seed 0 on the law, seed 1 ten times higher
    assert collapse([x, x], [two, two], floor=1e-9).noise == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        collapse([x, x], [law, law])
