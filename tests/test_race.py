import pytest
import torch

from lnfl.model import network_output
from lnfl.race import Race, gamma_race, observed_class_mask, stage_one_growth
from lnfl.theory import growth_ratio
from lnfl.training import setup, train


def test_race_parts_add_up_to_the_recorded_gamma(small):
    h = small.train(steps=40, record_every=4)
    race = gamma_race(small.W0, small.data, eta=small.eta, steps=40, record_every=4)
    assert isinstance(race, Race)
    assert race.t.tolist() == h.t.tolist()
    assert torch.allclose(race.gamma, h.gamma, rtol=0, atol=1e-12)


def test_clean_samples_push_gamma_up_and_noisy_samples_push_it_down(small):
    race = gamma_race(small.W0, small.data, eta=small.eta, steps=60, record_every=1)
    assert bool((race.clean >= 0).all()) and bool((race.noisy <= 0).all())
    assert bool((race.clean[1:] >= race.clean[:-1]).all()), "the clean part can only grow"
    assert bool((race.noisy[1:] <= race.noisy[:-1]).all()), "the noisy part can only shrink"
    assert float(race.clean[-1].sum()) > 0 and float(race.noisy[-1].sum()) < 0


def test_without_label_noise_the_noisy_part_is_zero():
    s = setup(seed=1, n_test=5, d=50, n=20, m=4, tau_plus=0.0, tau_minus=0.0)
    race = gamma_race(s.W0, s.data, eta=s.eta, steps=20, record_every=5)
    assert torch.equal(race.noisy, torch.zeros_like(race.noisy))
    assert torch.allclose(race.clean, s.train(steps=20, record_every=5).gamma, rtol=0, atol=1e-12)


def test_first_step_of_the_race_matches_the_formula(small):
    d, W0 = small.data, small.W0
    n, m = d.n, W0.shape[1]
    race = gamma_race(W0, d, eta=small.eta, steps=1)
    abs_dl = 1 / (1 + torch.exp(d.y_obs * network_output(W0, d)))
    act = ((W0 @ d.mu)[:, :, None] * d.y > 0).double()
    scale = small.eta * float(d.mu.dot(d.mu)) / (n * m)
    expected_clean = scale * (act * (abs_dl * d.clean)).sum(-1)
    expected_noisy = -scale * (act * (abs_dl * d.noisy)).sum(-1)
    assert torch.allclose(race.clean[1], expected_clean, atol=1e-14)
    assert torch.allclose(race.noisy[1], expected_noisy, atol=1e-14)


def test_observed_class_mask_marks_j_equal_to_observed_label(small):
    d = small.data
    mask = observed_class_mask(d, 5)
    assert mask.shape == (2, 5, d.n) and mask.dtype == torch.bool
    assert torch.equal(mask[0, 0], d.y_obs == 1) and torch.equal(mask[1, 3], d.y_obs == -1)
    h = small.train(steps=30, record_every=3)
    assert bool((h.rho[:, mask] >= 0).all()) and bool((h.rho[:, ~mask] <= 0).all())


def test_stage_one_growth_first_step_equals_hand_computation(small):
    d, W0 = small.data, small.W0
    n, m = d.n, W0.shape[1]
    h = small.train(steps=3, record_every=1)
    g = stage_one_growth(h, d, k=1)
    own = observed_class_mask(d, m)
    active = own & (W0 @ d.xi.T > 0)
    abs_dl = 1 / (1 + torch.exp(d.y_obs * network_output(W0, d)))
    step = small.eta * abs_dl * (d.xi * d.xi).sum(1) / (n * m)  # Δρ̄ of an active pair, (n,)
    assert g.k == 1
    assert g.active_fraction == pytest.approx(float(active.sum()) / (m * n))
    assert g.memorisation_step == pytest.approx(float(step.expand(2, m, n)[active].mean()), rel=1e-12)
    assert g.signal_step == pytest.approx(float(h.gamma[1].mean()), rel=1e-12)
    assert g.ratio == pytest.approx(g.signal_step / g.memorisation_step)


def test_stage_one_growth_matches_theory_on_the_reference_run():
    s = setup(seed=3, n_test=5)
    h = s.train(steps=5, record_every=1)
    g = stage_one_growth(h, s.data, k=5)
    tau_hat = float(s.data.noisy.double().mean())
    assert g.ratio == pytest.approx(growth_ratio(16.0, tau_hat), rel=0.1)
    assert 0.4 < g.active_fraction < 0.6  # about half the filters start active on a given ξ_i


def test_stage_one_growth_argument_errors(small):
    h = small.train(steps=10, record_every=2)
    with pytest.raises(ValueError, match="record every step 0..k=4"):
        stage_one_growth(h, small.data, k=4)
    h1 = small.train(steps=3, record_every=1)
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 3\].*got 4"):
        stage_one_growth(h1, small.data, k=4)
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        stage_one_growth(h1, small.data, k=0)
    with pytest.raises(TypeError, match="hist must be an lnfl.training.History"):
        stage_one_growth("hist", small.data, k=1)
    other = setup(seed=0, n_test=5, d=60, n=20, m=5).data
    with pytest.raises(ValueError, match="recorded on 30 samples but data has n = 20"):
        stage_one_growth(h1, other, k=1)


def test_race_and_mask_argument_errors(small):
    with pytest.raises(ValueError, match="steps must be an integer >= 0, got -1"):
        gamma_race(small.W0, small.data, steps=-1)
    with pytest.raises(ValueError, match=r"eta must be in \(0, inf\), got 0"):
        gamma_race(small.W0, small.data, eta=0)
    with pytest.raises(TypeError, match="data must be an lnfl.data.Dataset"):
        observed_class_mask("data", 3)
    with pytest.raises(ValueError, match="m must be an integer >= 1, got 0"):
        observed_class_mask(small.data, 0)


def test_race_runs_the_same_steps_as_train(small):
    race = gamma_race(small.W0, small.data, eta=0.05, steps=25, record_every=25)
    h = train(small.W0, small.data, eta=0.05, steps=25, record_every=25)
    assert torch.allclose(race.gamma[-1], h.gamma[-1], rtol=0, atol=1e-12)
