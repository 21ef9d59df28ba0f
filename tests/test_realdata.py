import pytest
import torch
from sklearn.datasets import load_digits

from lnfl.realdata import (
    DIGITS_REFERENCE,
    ImageData,
    ImagePair,
    load_digits_pair,
    run_digits,
    small_cnn,
    train_classifier,
    validation_ceiling,
)
from lnfl.training import TrainingDivergedError

N_DIGITS = {c: int((load_digits().target == c).sum()) for c in range(10)}


@pytest.fixture(scope="module")
def pair():
    return load_digits_pair(classes=(4, 9), tau_plus=0.2, seed=0)


@pytest.fixture(scope="module")
def reference_run():
    """The tuned digits experiment of Chapter 10 (a few seconds on one core)."""
    return run_digits(seed=0, record_every=10)


def test_pair_shapes_labels_and_split(pair):
    tr, te = pair.train, pair.test
    assert tr.x.shape[1:] == (1, 8, 8) and te.x.shape[1:] == (1, 8, 8) and pair.image_shape == (1, 8, 8)
    assert tr.x.dtype == torch.float32 and tr.y.dtype == torch.float32
    assert tr.n + te.n == N_DIGITS[4] + N_DIGITS[9]
    # classes[0] = 4 is labelled +1 in both sets together
    assert int((tr.y > 0).sum() + (te.y > 0).sum()) == N_DIGITS[4]
    for s in (tr, te):
        assert set(s.y.tolist()) <= {-1.0, 1.0} and set(s.y_obs.tolist()) <= {-1.0, 1.0}
    # stratified: each class contributes round(0.3 * n_c) test images
    assert int((te.y > 0).sum()) == round(0.3 * N_DIGITS[4]) and int((te.y < 0).sum()) == round(0.3 * N_DIGITS[9])
    assert not bool(te.noisy.any()), "test labels must stay clean"
    assert torch.equal(tr.noisy, tr.y != tr.y_obs) and torch.equal(tr.clean, ~tr.noisy)


def test_standardisation_uses_training_pixels(pair):
    assert float(pair.train.x.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(pair.train.x.double().std()) == pytest.approx(1.0, abs=1e-4)
    raw = load_digits_pair(seed=0, standardize=False)
    assert float(raw.train.x.min()) == 0.0 and float(raw.train.x.max()) == 1.0


@pytest.mark.parametrize("tau_plus, tau_minus", [(0.2, None), (0.3, 0.1), (0.0, 0.0)])
def test_flips_are_exact_class_conditional_counts(tau_plus, tau_minus):
    p = load_digits_pair(classes=(3, 8), tau_plus=tau_plus, tau_minus=tau_minus, seed=2)
    tm = tau_plus if tau_minus is None else tau_minus
    pos, neg = p.train.y > 0, p.train.y < 0
    assert int(p.train.noisy[pos].sum()) == round(tau_plus * int(pos.sum()))
    assert int(p.train.noisy[neg].sum()) == round(tm * int(neg.sum()))
    assert (p.tau_plus, p.tau_minus, p.classes) == (tau_plus, tm, (3, 8))


def test_seed_reproduces_and_changes_the_split():
    a, b, c = load_digits_pair(seed=7), load_digits_pair(seed=7), load_digits_pair(seed=8)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.train.y_obs, b.train.y_obs)
    assert not torch.equal(a.train.y_obs, c.train.y_obs)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"classes": (4, 4)}, ValueError, "two distinct integers in 0..9"),
        ({"classes": (4, 10)}, ValueError, r"in 0..9, got \(4, 10\)"),
        ({"classes": (4,)}, TypeError, "pair of two integers"),
        ({"classes": (4.0, 9)}, TypeError, "pair of two integers"),
        ({"tau_plus": 0.5}, ValueError, r"tau_plus must be in \[0, 0.5\), got 0.5"),
        ({"tau_minus": -0.1}, ValueError, "tau_minus"),
        ({"test_fraction": 1.0}, ValueError, "test_fraction must be in"),
        ({"test_fraction": 0.001}, ValueError, "leaves no training or no test image"),
        ({"seed": -1}, ValueError, "seed must be an integer >= 0"),
        ({"standardize": 1}, TypeError, "standardize"),
        ({"dtype": torch.int64}, TypeError, "dtype"),
    ],
)
def test_loader_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        load_digits_pair(**kwargs)


def test_small_cnn_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = small_cnn((1, 8, 8), channels=4, seed=1)
    after = torch.rand(3)
    b, c = small_cnn((1, 8, 8), channels=4, seed=1), small_cnn((1, 8, 8), channels=4, seed=2)
    assert torch.equal(before, after), "small_cnn must not consume the global RNG"
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.conv.weight, c.conv.weight)
    assert a(torch.zeros(5, 1, 8, 8, dtype=torch.float32)).shape == (5,)
    # room for colour images (CIFAR-10 later)
    assert small_cnn((3, 32, 32), channels=2)(torch.zeros(2, 3, 32, 32, dtype=torch.float32)).shape == (2,)
    with pytest.raises(ValueError, match="image_shape must be"):
        small_cnn((8, 8))
    with pytest.raises(ValueError, match="channels must be an integer >= 1, got 0"):
        small_cnn((1, 8, 8), channels=0)


def test_full_batch_training_is_gradient_descent(pair):
    net = small_cnn(pair.image_shape, channels=4, seed=0)
    h = train_classifier(net, pair, lr=0.1, epochs=5, record_every=2)
    assert h.epoch.tolist() == [0, 2, 4, 5]
    T, n = 4, pair.train.n
    assert h.margin.shape == (T, n) and h.sample_loss.shape == (T, n)
    for name in ("loss", "train_acc_clean", "train_acc_noisy", "noisy_true_acc", "test_acc"):
        assert getattr(h, name).shape == (T,), name
    # an explicit GD loop gives the same weights and final margins
    ref = small_cnn(pair.image_shape, channels=4, seed=0)
    for _ in range(5):
        loss = torch.nn.functional.softplus(-pair.train.y_obs * ref(pair.train.x)).mean()
        grads = torch.autograd.grad(loss, list(ref.parameters()))
        with torch.no_grad():
            for p, g in zip(ref.parameters(), grads, strict=True):
                p -= 0.1 * g
    for p, q in zip(h.net.parameters(), ref.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(h.margin[-1], pair.train.y_obs * ref(pair.train.x), atol=1e-5)
    assert torch.allclose(h.sample_loss, torch.nn.functional.softplus(-h.margin))
    assert torch.allclose(h.loss, h.sample_loss.double().mean(1))
    # the network passed in is not modified
    assert all(
        torch.equal(p, q) for p, q in zip(net.parameters(), small_cnn((1, 8, 8), 4, 0).parameters(), strict=True)
    )
    # accuracies agree with the margins and the masks
    fitted = h.margin[-1] > 0
    assert float(h.train_acc_clean[-1]) == pytest.approx(float(fitted[pair.train.clean].double().mean()))
    assert float(h.train_acc_noisy[-1]) == pytest.approx(float(fitted[pair.train.noisy].double().mean()))
    assert float(h.noisy_true_acc[-1]) == pytest.approx(1 - float(h.train_acc_noisy[-1]))


def test_runs_are_identical_for_equal_seeds_full_batch_and_sgd(pair):
    net = small_cnn(pair.image_shape, channels=4, seed=3)
    for bs in (None, 32):
        a = train_classifier(net, pair, lr=0.1, epochs=4, batch_size=bs, seed=1)
        b = train_classifier(net, pair, lr=0.1, epochs=4, batch_size=bs, seed=1)
        assert torch.equal(a.margin, b.margin) and torch.equal(a.test_acc, b.test_acc)
    c = train_classifier(net, pair, lr=0.1, epochs=4, batch_size=32, seed=2)
    assert not torch.equal(a.margin, c.margin), "a different shuffling seed should change an SGD run"
    assert a.batch_size == 32 and a.epoch.tolist() == [0, 1, 2, 3, 4]


def test_a_run_continued_from_its_network_is_the_longer_run(pair):
    """Chapter 1 continues short runs to full length: full-batch GD from the returned network is the same run."""
    net = small_cnn(pair.image_shape, channels=4, seed=0)
    whole = train_classifier(net, pair, lr=0.1, epochs=40, record_every=40)
    first = train_classifier(net, pair, lr=0.1, epochs=15, record_every=15)
    rest = train_classifier(first.net, pair, lr=0.1, epochs=25, record_every=25)
    assert torch.equal(whole.margin[-1], rest.margin[-1])
    assert torch.equal(first.margin[0], whole.margin[0]) and not torch.equal(first.margin[-1], whole.margin[-1])


def test_threads_setting_is_restored(pair):
    before = torch.get_num_threads()
    train_classifier(small_cnn((1, 8, 8), 2), pair, epochs=1, threads=1)
    assert torch.get_num_threads() == before


def test_trainer_rejects_bad_arguments_and_reports_divergence(pair):
    net = small_cnn(pair.image_shape, channels=2)
    with pytest.raises(ValueError, match=r"lr must be in \(0, inf\), got 0"):
        train_classifier(net, pair, lr=0)
    with pytest.raises(ValueError, match=rf"batch_size must be in 1..{pair.train.n}"):
        train_classifier(net, pair, batch_size=10_000)
    with pytest.raises(TypeError, match="data must be an lnfl.realdata.ImagePair"):
        train_classifier(net, pair.train)
    with pytest.raises(TypeError, match="net must be a torch.nn.Module"):
        train_classifier("cnn", pair)
    with pytest.raises(ValueError, match="epoch 99 was not recorded"):
        train_classifier(net, pair, epochs=2).at(99)
    with pytest.raises(TrainingDivergedError, match="diverged in epoch .* try a smaller step size"):
        train_classifier(net, pair, lr=1e30, epochs=5)
    with pytest.raises(TypeError, match="unknown configuration key"):
        run_digits(width=3)


def test_reference_digits_run_learns_first_and_memorises_later(reference_run):
    h = reference_run
    assert isinstance(h.data, ImagePair) and h.lr == DIGITS_REFERENCE["lr"]
    peak = h.at(h.peak_epoch())
    assert float(h.test_acc[peak]) >= 0.95, "Stage I should reach high clean test accuracy"
    # 0.88: the mean minus three standard deviations over 20 seeds (Chapter 1, §1.3)
    assert float(h.noisy_true_acc[peak]) >= 0.88, "at the peak the flipped samples follow their true label"
    assert float(h.train_acc_noisy[-1]) >= 0.95, "by the end the flipped labels are memorised"
    assert float(h.test_acc[-1]) <= float(h.test_acc[peak]) - 0.1, "memorisation costs test accuracy"
    assert h.peak_epoch() < 0.1 * int(h.epoch[-1]), "the peak comes early"


def _val_set(n: int, n_flipped: int) -> ImageData:
    """A validation set of n blank images of class +1, the first n_flipped labelled −1."""
    y = torch.ones(n)
    y_obs = y.clone()
    y_obs[:n_flipped] = -1.0
    return ImageData(torch.zeros(n, 1, 2, 2), y, y_obs)


def test_validation_ceiling_exact_binomial_quantiles():
    # 10 images, 3 flipped, ε = 0.1: P(X > 0) = 0.271, P(X > 1) = 0.028, P(X > 2) = 0.001
    v = _val_set(10, 3)
    assert validation_ceiling(v, 0.1, alpha=0.05) == pytest.approx(0.8)  # q = 1
    assert validation_ceiling(v, 0.1, alpha=0.01) == pytest.approx(0.9)  # q = 2
    assert validation_ceiling(v, 0.1, alpha=0.0005) == pytest.approx(1.0)  # q = 3 = |S_f|
    # a maximum over 5 networks: level 0.05 / 5 = 0.01 for each (union bound)
    assert validation_ceiling(v, 0.1, alpha=0.05, looks=5) == pytest.approx(0.9)
    # ε = 0: the score of the true labels, |S_t|/n; ε = 1: every flipped label matched
    assert validation_ceiling(v, 0.0) == pytest.approx(0.7)
    assert validation_ceiling(v, 1.0) == pytest.approx(1.0)
    # no flipped image: nothing to agree with by mistake
    assert validation_ceiling(_val_set(10, 0), 0.3) == pytest.approx(1.0)


def test_validation_ceiling_counts_flipped_images_of_the_validation_set():
    """Simulated networks with clean error rate ε: the noisy accuracy exceeds the ceiling at rate ≤ α."""
    n, n_flipped, eps, alpha = 51, 10, 0.05, 0.01
    v = _val_set(n, n_flipped)
    ceiling = validation_ceiling(v, eps, alpha=alpha)
    g = torch.Generator().manual_seed(0)
    wrong = torch.rand(20000, n, generator=g) < eps  # errors against the true labels
    agree_obs = wrong == v.noisy  # right against ỹ: correct and clean, or wrong and flipped
    acc_noisy = agree_obs.double().mean(1)
    assert float((acc_noisy > ceiling + 1e-12).double().mean()) <= alpha
    # q is the smallest such count: the flipped images matched by mistake exceed q − 1 more often
    q = round(ceiling * n) - (n - n_flipped)
    matched = (wrong & v.noisy).sum(1)
    assert float((matched > q).double().mean()) <= alpha < float((matched > q - 1).double().mean())
    assert 0 < q < n_flipped


def test_validation_ceiling_rejects_bad_arguments():
    v = _val_set(10, 3)
    with pytest.raises(ValueError, match="error"):
        validation_ceiling(v, 1.5)
    with pytest.raises(ValueError, match="alpha"):
        validation_ceiling(v, 0.1, alpha=0.0)
    with pytest.raises(ValueError, match="looks"):
        validation_ceiling(v, 0.1, looks=0)
    with pytest.raises(TypeError, match="val must be an lnfl.realdata.ImageData"):
        validation_ceiling(torch.zeros(3), 0.1)
