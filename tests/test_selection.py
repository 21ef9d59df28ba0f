import math

import pytest
import torch

from lnfl.model import logistic_loss, network_output, sample_losses
from lnfl.selection import (
    LOG2,
    accuracy_over_time,
    early_stopping_index,
    log2_selection,
    outputs_over_time,
    perfect_separation,
    precision_recall,
    select_then_retrain,
    small_loss_selection,
    subset,
    weights_at,
)
from lnfl.training import setup


def test_log2_threshold_is_agreement_with_observed_label(small):
    # ℓ(z) < log 2 ⟺ z > 0, on the margins of a real run and on hand-picked values around 0
    z = torch.tensor([-3.0, -1e-9, 0.0, 1e-9, 2.0])
    assert log2_selection(logistic_loss(z)).tolist() == [False, False, False, True, True]
    h = small.train(steps=30, record_every=3)
    assert torch.equal(log2_selection(h.sample_loss), h.margin > 0)
    assert LOG2 == pytest.approx(float(logistic_loss(torch.tensor(0.0))))


def test_small_loss_selection_keeps_the_smallest_fraction():
    losses = torch.tensor([[0.5, 0.1, 2.0, 0.3, 0.9], [5.0, 4.0, 3.0, 2.0, 1.0]])
    keep = small_loss_selection(losses, 0.6)  # 3 of 5 per row
    assert keep.tolist() == [[True, True, False, True, False], [False, False, True, True, True]]
    assert small_loss_selection(losses[0], 0.01).sum() == 1  # at least one sample is kept
    assert small_loss_selection(losses[0], 0.5).tolist() == [True, True, False, True, False], "⌊2.5 + ½⌋ = 3 kept"
    assert small_loss_selection(losses[0], 1.0).all()
    ties = small_loss_selection(torch.ones(4), 0.5)
    assert ties.tolist() == [True, True, False, False]  # ties broken by index


def test_precision_recall_by_hand():
    clean = torch.tensor([True, True, True, False, False])
    sel = torch.tensor([[True, False, False, True, False], [True, True, True, False, False], [False] * 5])
    p, r = precision_recall(sel, clean)
    assert p[:2].tolist() == [0.5, 1.0] and math.isnan(float(p[2]))
    assert r.tolist() == pytest.approx([1 / 3, 1.0, 0.0])
    p1, r1 = precision_recall(sel[1], clean)
    assert p1.shape == () and float(p1) == 1.0 and float(r1) == 1.0


def test_perfect_separation_by_hand():
    clean = torch.tensor([True, True, False])
    losses = torch.tensor([[0.1, 0.5, 1.0], [0.1, 0.8, 1.0], [0.1, 0.5, 0.6], [0.1, 0.5, LOG2]])
    assert perfect_separation(losses, clean).tolist() == [True, False, False, False]


def test_weights_at_rebuilds_gd_weights(small):
    h = small.train(steps=40, record_every=10)
    assert torch.allclose(weights_at(h, small.data, -1), h.W, rtol=0, atol=1e-12)
    assert torch.allclose(weights_at(h, small.data, 0), small.W0, rtol=0, atol=0)
    mid = small.train(steps=20, record_every=20).W
    assert torch.allclose(weights_at(h, small.data, h.at(20)), mid, rtol=0, atol=1e-12)


def test_outputs_over_time_equal_network_on_rebuilt_weights(small):
    h = small.train(steps=30, record_every=3)
    f = outputs_over_time(h, small.data, small.test, chunk=4)
    assert f.shape == (len(h.t), small.test.n)
    for k in (0, 5, len(h.t) - 1):
        assert torch.allclose(f[k], network_output(weights_at(h, small.data, k), small.test), rtol=0, atol=1e-12)
    assert torch.allclose(f[-1], network_output(h.W, small.test), rtol=0, atol=1e-12)


def test_accuracy_over_time_matches_recorded_test_accuracy(small):
    h = small.train(steps=40, record_every=8)
    for labels, recorded in (("true", h.test_acc), ("observed", h.test_acc_noisy_labels)):
        acc = accuracy_over_time(h, small.data, small.test, labels=labels)
        assert acc.shape == (len(h.t),)
        assert torch.allclose(acc, recorded), labels


def test_early_stopping_index_earliest_best_and_tolerance():
    acc = torch.tensor([0.5, 0.79, 0.80, 0.80, 0.81, 0.7])
    assert early_stopping_index(acc) == 4
    assert early_stopping_index(acc, tolerance=0.015) == 2
    assert early_stopping_index(acc, tolerance=0.03) == 1
    assert early_stopping_index(torch.tensor([0.9, 0.9])) == 0


def test_subset_and_select_then_retrain(small):
    keep = small.data.clean
    sub = subset(small.data, keep)
    assert sub.n == int(keep.sum()) and not bool(sub.noisy.any())
    assert torch.equal(sub.xi, small.data.xi[keep]) and torch.equal(sub.y_obs, small.data.y_obs[keep])
    sub2, h = select_then_retrain(small.W0, small.data, keep, eta=small.eta, steps=25, record_every=25, test=small.test)
    assert sub2.n == sub.n and h.rho.shape[-1] == sub.n
    assert torch.allclose(sample_losses(h.W, sub2), logistic_loss(sub2.y_obs * network_output(h.W, sub2)))
    assert float(h.loss[-1]) < float(h.loss[0])


def test_reference_run_separates_at_the_end_of_stage_one():
    # Chapter 8: for the reference configuration some t ≤ 50 has every clean ℓ_i < log 2 and every noisy > log 2
    s = setup(seed=0, n_test=10)
    h = s.train(steps=50, record_every=1)
    sep = perfect_separation(h.sample_loss, s.data.clean)
    assert bool(sep.any())
    k = int(sep.nonzero()[0, 0])
    p, r = precision_recall(log2_selection(h.sample_loss[k]), s.data.clean)
    assert float(p) == 1.0 and float(r) == 1.0
    # at t = 0 the selection is close to a coin flip, far from perfect
    assert not bool(sep[0])


def test_argument_errors(small):
    losses = torch.rand(5)
    clean = torch.tensor([True, False, True, True, False])
    with pytest.raises(TypeError, match="losses must be a torch.Tensor"):
        log2_selection([0.1, 0.2])
    with pytest.raises(ValueError, match=r"losses must have shape \(n,\) or \(T, n\)"):
        log2_selection(torch.rand(2, 2, 2))
    with pytest.raises(ValueError, match="non-negative and not NaN"):
        log2_selection(torch.tensor([0.1, float("nan")]))
    with pytest.raises(ValueError, match=r"keep_fraction must be in \(0, 1\], got 0"):
        small_loss_selection(losses, 0)
    with pytest.raises(ValueError, match=r"keep_fraction must be in \(0, 1\], got 1.5"):
        small_loss_selection(losses, 1.5)
    with pytest.raises(TypeError, match="clean must be a 1-d boolean torch.Tensor"):
        precision_recall(losses < 0.5, clean.int())
    with pytest.raises(ValueError, match=r"selected must have last dimension n = 5"):
        precision_recall(torch.ones(4, dtype=torch.bool), clean)
    with pytest.raises(ValueError, match=r"clean must have last dimension n = 5"):
        perfect_separation(losses, torch.ones(3, dtype=torch.bool))
    h = small.train(steps=4, record_every=2)
    with pytest.raises(ValueError, match=r"index must be an integer in \[-3, 2\]"):
        weights_at(h, small.data, 3)
    with pytest.raises(ValueError, match="does not match hist"):
        weights_at(h, small.test, 0)
    with pytest.raises(TypeError, match="hist must be an lnfl.training.History"):
        accuracy_over_time(None, small.data, small.test)
    with pytest.raises(ValueError, match="other must match data's d = 60"):
        outputs_over_time(h, small.data, setup(seed=0, n_test=5, d=40, n=10, m=2).test)
    with pytest.raises(ValueError, match="chunk must be an integer >= 1, got 0"):
        outputs_over_time(h, small.data, small.test, chunk=0)
    with pytest.raises(ValueError, match="labels must be 'observed' or 'true', got 'clean'"):
        accuracy_over_time(h, small.data, small.test, labels="clean")
    with pytest.raises(ValueError, match="val_acc must be a 1-d"):
        early_stopping_index(torch.rand(2, 2))
    with pytest.raises(ValueError, match="must not contain NaN"):
        early_stopping_index(torch.tensor([0.5, float("nan")]))
    with pytest.raises(ValueError, match=r"tolerance must be in \[0, 1\], got -0.1"):
        early_stopping_index(torch.tensor([0.5]), tolerance=-0.1)
    with pytest.raises(ValueError, match="keep selects no sample"):
        subset(small.data, torch.zeros(small.data.n, dtype=torch.bool))
    with pytest.raises(TypeError, match="keep must be a boolean torch.Tensor"):
        subset(small.data, torch.ones(small.data.n))
    with pytest.raises(ValueError, match="steps must be an integer >= 0, got -1"):
        select_then_retrain(small.W0, small.data, small.data.clean, steps=-1)


def test_stopping_vs_window_on_hand_made_histories(four, hand_history):
    from lnfl.selection import stopping_vs_window

    ok, clean_only, noisy_fit, unfit = [1, 1, -1, -1], [1, 1, 1, -1], [1, 1, 2, 3], [-1, 1, -1, -1]
    h = hand_history([unfit, clean_only, ok, ok, noisy_fit, noisy_fit], t=[0, 10, 20, 30, 40, 50])

    def at(k: int) -> torch.Tensor:  # a validation curve whose (earliest) best is the k-th record
        acc = torch.full((6,), 0.5, dtype=torch.float64)
        acc[k] = 0.8
        return acc

    before, inside, after = (stopping_vs_window(h, four, at(k)) for k in (1, 3, 5))
    assert before.window == (20, 30) and before.t_es == 10 and (before.position, before.steps_outside) == ("before", 10)
    assert (inside.position, inside.steps_outside) == ("inside", 0)
    assert [stopping_vs_window(h, four, at(k)).position for k in (2, 3)] == ["inside"] * 2, "ends belong to it"
    assert (after.position, after.steps_outside, after.t_es) == ("after", 20, 50)
    assert inside.separated_at_t1 is True and inside.separated_in_window == 1.0
    # a window in which the state flickers: log 2 separates at two of its three records
    flicker = stopping_vs_window(hand_history([unfit, ok, clean_only, ok, noisy_fit]), four, torch.zeros(5))
    assert flicker.window == (1, 3) and flicker.separated_in_window == pytest.approx(2 / 3)
    assert flicker.t_es == 0 and flicker.position == "before"
    none = stopping_vs_window(hand_history([unfit, clean_only, noisy_fit]), four, torch.zeros(3))
    assert none.position == "no window" and none.steps_outside is None and none.separated_at_t1 is None
    with pytest.raises(ValueError, match="one accuracy per recorded step"):
        stopping_vs_window(h, four, torch.zeros(5))


def test_log2_separation_is_the_stage_one_state_on_a_real_run(small):
    # §8.1: ℓ_i < log 2 ⟺ ỹ_i f > 0, so perfect separation at a step is exactly the Stage I state there
    from lnfl.selection import stopping_vs_window
    from lnfl.stages import stage_one_state, stage_one_window

    h = small.train(steps=120, record_every=1)
    sep = perfect_separation(h.sample_loss, small.data.clean)
    assert torch.equal(sep, stage_one_state(h, small.data)) and bool(sep.any())
    val = accuracy_over_time(h, small.data, small.test)
    r = stopping_vs_window(h, small.data, val)
    start, t1 = stage_one_window(h, small.data)
    assert r.window == (start, t1) and r.t_es == int(h.t[early_stopping_index(val)])
    assert r.separated_at_t1 and r.separated_in_window == float(sep[start : t1 + 1].double().mean())
