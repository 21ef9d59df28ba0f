"""Real images with flipped labels: the two stages outside the synthetic model (theory.md §7).

The paper's real-data experiment trains a CNN on two CIFAR-10 classes with 20% of the training labels
flipped.  Its offline stand-in here is scikit-learn's bundled 8×8 digits (no
download): a pair of digit classes, a seeded stratified train/test split, and *class-conditional*
flips τ₊ = P(ỹ = −1 | y = +1), τ₋ = P(ỹ = +1 | y = −1) applied to the training labels only, with an
exact count: round(τ₊·n₊) training images of the class labelled +1 and round(τ₋·n₋) of the class labelled
−1 are drawn uniformly at random and flipped.  The test labels stay clean.

>>> pair = load_digits_pair(classes=(4, 9), tau_plus=0.2, seed=0)
>>> net = small_cnn(pair.image_shape, channels=8, seed=0)
>>> hist = train_classifier(net, pair, lr=0.05, epochs=5000)     # full-batch GD
>>> hist.test_acc.max(), hist.test_acc[-1]                         # learn first, memorise later

:func:`train_classifier` also runs mini-batch SGD (``batch_size=…``).  Any loader that returns an
:class:`ImagePair` (for example a later CIFAR-10 loader with images of shape (3, 32, 32)) works with
:func:`small_cnn` and :func:`train_classifier` unchanged.
"""

from __future__ import annotations

import copy
import numbers
from dataclasses import dataclass

import torch

from ._validate import check_dtype, check_int, check_positive, check_real, check_seed, check_tau
from .model import logistic_loss
from .training import TrainingDivergedError

__all__ = [
    "DIGITS_REFERENCE",
    "ImageData",
    "ImagePair",
    "RealHistory",
    "SmallCNN",
    "load_digits_pair",
    "run_digits",
    "small_cnn",
    "train_classifier",
]


@dataclass(frozen=True)
class ImageData:
    """Images with their true labels y ∈ {−1, +1} and observed labels ỹ (equal to y on a clean set)."""

    x: torch.Tensor
    """Images, shape (N, C, H, W), floating point."""
    y: torch.Tensor
    """True labels y_i ∈ {−1, +1}, shape (N,), same dtype as ``x``."""
    y_obs: torch.Tensor
    """Observed labels ỹ_i ∈ {−1, +1}, shape (N,); training sees only these."""

    @property
    def n(self) -> int:
        """Number of images N."""
        return self.x.shape[0]

    @property
    def noisy(self) -> torch.Tensor:
        """Boolean mask of S_f = {i : ỹ_i ≠ y_i}, the flipped samples."""
        return self.y_obs != self.y

    @property
    def clean(self) -> torch.Tensor:
        """Boolean mask of S_t = {i : ỹ_i = y_i}."""
        return self.y_obs == self.y


@dataclass(frozen=True)
class ImagePair:
    """A binary image problem: noisy training set, clean test set, and how they were made."""

    train: ImageData
    test: ImageData
    classes: tuple[int, int]
    """Original class ids; ``classes[0]`` is labelled y = +1 and ``classes[1]`` is labelled y = −1."""
    tau_plus: float
    """τ₊: fraction of training images of ``classes[0]`` whose label was flipped (before rounding)."""
    tau_minus: float
    """τ₋: fraction of training images of ``classes[1]`` whose label was flipped (before rounding)."""
    seed: int
    name: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]


def _check_classes(classes: object, n_classes: int) -> tuple[int, int]:
    ok = (
        isinstance(classes, (tuple, list))
        and len(classes) == 2
        and all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in classes)
    )
    if not ok:
        raise TypeError(f"classes must be a pair of two integers in 0..{n_classes - 1}, got {classes!r}")
    a, b = int(classes[0]), int(classes[1])  # type: ignore[index]
    for c in (a, b):
        if not 0 <= c < n_classes:
            raise ValueError(f"classes must be two distinct integers in 0..{n_classes - 1}, got {classes!r}")
    if a == b:
        raise ValueError(f"classes must be two distinct integers in 0..{n_classes - 1}, got {classes!r}")
    return a, b


def _flip_exact(y: torch.Tensor, tau_plus: float, tau_minus: float, g: torch.Generator) -> torch.Tensor:
    """ỹ: flip exactly round(τ₊·n₊) labels of class +1 and round(τ₋·n₋) of class −1, chosen at random."""
    y_obs = y.clone()
    for label, tau in ((1.0, tau_plus), (-1.0, tau_minus)):
        idx = (y == label).nonzero().squeeze(1)
        k = round(tau * idx.numel())
        chosen = idx[torch.randperm(idx.numel(), generator=g)[:k]]
        y_obs[chosen] = -label
    return y_obs


def load_digits_pair(
    classes: tuple[int, int] = (4, 9),
    tau_plus: float = 0.2,
    tau_minus: float | None = None,
    test_fraction: float = 0.3,
    seed: int = 0,
    standardize: bool = True,
    dtype: torch.dtype = torch.float32,
) -> ImagePair:
    """Two classes of scikit-learn's bundled 8×8 digits as an :class:`ImagePair` (no download).

    Parameters
    ----------
    classes : two distinct digits in 0..9; the first gets y = +1, the second y = −1.
    tau_plus, tau_minus : class-conditional flip rates τ₊, τ₋ in [0, 1/2) for the *training* labels;
        ``tau_minus=None`` means τ₋ = τ₊ (symmetric flips).  Exactly round(τ·n_class) labels per class
        are flipped, so the realised rates equal τ₊, τ₋ up to rounding.
    test_fraction : fraction of each class held out as the clean test set, in (0, 1).
    seed : seeds the stratified split and the choice of flipped samples.
    standardize : subtract the training pixels' mean and divide by their standard deviation (one scalar
        each, computed on the training images only); otherwise pixels are scaled to [0, 1].
    dtype : torch.float32 (default) or torch.float64.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - scikit-learn is in requirements.txt
        raise ImportError("load_digits_pair needs scikit-learn: pip install 'lnfl[realdata]'") from err

    a, b = _check_classes(classes, 10)
    tau_plus = check_tau("tau_plus", tau_plus)
    tau_minus = tau_plus if tau_minus is None else check_tau("tau_minus", tau_minus)
    test_fraction = check_real("test_fraction", test_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
    seed = check_seed("seed", seed)
    if not isinstance(standardize, bool):
        raise TypeError(f"standardize must be True or False, got {standardize!r}")
    check_dtype("dtype", dtype)

    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float64) / 16.0  # (1797, 8, 8), pixels in [0, 1]
    target = torch.as_tensor(digits.target)
    g = torch.Generator().manual_seed(seed)
    tr_idx, te_idx = [], []
    for c in (a, b):  # stratified split: each class contributes the same test fraction
        idx = (target == c).nonzero().squeeze(1)
        idx = idx[torch.randperm(idx.numel(), generator=g)]
        k = round(test_fraction * idx.numel())
        if k == 0 or k == idx.numel():
            raise ValueError(
                f"test_fraction={test_fraction} leaves no training or no test image of class {c} "
                f"({idx.numel()} images); choose a value in (0, 1) further from the ends"
            )
        te_idx.append(idx[:k])
        tr_idx.append(idx[k:])
    tr, te = torch.cat(tr_idx), torch.cat(te_idx)
    tr = tr[torch.randperm(tr.numel(), generator=g)]  # mix the two classes
    x_tr, x_te = images[tr, None], images[te, None]
    if standardize:
        mean, std = x_tr.mean(), x_tr.std()
        x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
    y_tr = torch.where(target[tr] == a, 1.0, -1.0).to(torch.float64)
    y_te = torch.where(target[te] == a, 1.0, -1.0).to(torch.float64)
    y_obs = _flip_exact(y_tr, tau_plus, tau_minus, g)
    train = ImageData(x_tr.to(dtype), y_tr.to(dtype), y_obs.to(dtype))
    test = ImageData(x_te.to(dtype), y_te.to(dtype), y_te.to(dtype))
    return ImagePair(train, test, (a, b), tau_plus, tau_minus, seed, f"digits {a} vs {b}")


class SmallCNN(torch.nn.Module):
    """f(x) = ⟨v, ReLU(conv₃ₓ₃(x))⟩ + b: one 3×3 convolution with ``channels`` filters (zero padding, so
    every pixel's neighbourhood is a patch), ReLU, and a linear read-out to one logit.

    Like the paper's network, the same filters are applied to every patch of the input; unlike it, the
    second layer is trained (a fixed ±1/m second layer cannot memorise 8×8 images at this size).
    """

    def __init__(self, image_shape: tuple[int, int, int], channels: int = 8, dtype: torch.dtype = torch.float32):
        super().__init__()
        c, h, w = image_shape
        self.conv = torch.nn.Conv2d(c, channels, kernel_size=3, padding=1, dtype=dtype)
        self.readout = torch.nn.Linear(channels * h * w, 1, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f(x_i) for a batch of images, shape (N,)."""
        return self.readout(torch.relu(self.conv(x)).flatten(1)).squeeze(1)


def small_cnn(
    image_shape: tuple[int, int, int], channels: int = 8, seed: int = 0, dtype: torch.dtype = torch.float32
) -> SmallCNN:
    """A :class:`SmallCNN` with PyTorch's default initialisation drawn under ``seed`` (global RNG untouched)."""
    if not (
        isinstance(image_shape, (tuple, list))
        and len(image_shape) == 3
        and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in image_shape)
    ):
        raise ValueError(f"image_shape must be (C, H, W) with three positive integers, got {image_shape!r}")
    channels = check_int("channels", channels)
    seed = check_seed("seed", seed)
    check_dtype("dtype", dtype)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SmallCNN(tuple(int(s) for s in image_shape), channels, dtype)  # type: ignore[arg-type]


@dataclass
class RealHistory:
    """What :func:`train_classifier` recorded at epochs ``epoch`` (0, every ``record_every``, and the last).

    Accuracies are fractions in [0, 1]; those about flipped samples are NaN when there are none.
    """

    epoch: torch.Tensor
    """Recorded epochs, shape (T,); epoch 0 is the untrained network."""
    loss: torch.Tensor
    """Training loss (1/N) Σ_i ℓ(ỹ_i f(x_i)), shape (T,)."""
    margin: torch.Tensor
    """ỹ_i f(x_i) for every training sample, shape (T, N); sample i is fitted when > 0."""
    train_acc_clean: torch.Tensor
    """Fraction of clean training samples (S_t) fitted, ỹ_i f > 0."""
    train_acc_noisy: torch.Tensor
    """Fraction of flipped samples (S_f) fitted to their *observed* (wrong) label: the memorisation rate."""
    noisy_true_acc: torch.Tensor
    """Fraction of flipped samples classified by their *true* label, y_i f > 0."""
    test_acc: torch.Tensor
    """Accuracy on the clean test set."""
    net: torch.nn.Module
    """The trained network (a copy; the network passed in is left untouched)."""
    data: ImagePair
    """The data it was trained and tested on; ``data.train.noisy`` is S_f."""
    lr: float
    batch_size: int | None
    """None for full-batch gradient descent."""

    @property
    def sample_loss(self) -> torch.Tensor:
        """Per-sample training losses ℓ(ỹ_i f(x_i)), shape (T, N)."""
        return logistic_loss(self.margin)

    def peak_epoch(self) -> int:
        """The first recorded epoch at which the clean test accuracy is highest (the early-stopping point)."""
        return int(self.epoch[int(torch.argmax(self.test_acc))])

    def at(self, epoch: int) -> int:
        """Index into the time axis of the recorded epoch ``epoch``."""
        hits = (self.epoch == epoch).nonzero()
        if hits.numel() == 0:
            raise ValueError(f"epoch {epoch} was not recorded; recorded epochs run from 0 to {int(self.epoch[-1])}")
        return int(hits[0, 0])


def _group_mean(values: torch.Tensor, mask: torch.Tensor) -> float:
    return float(values[mask].double().mean()) if bool(mask.any()) else float("nan")


def train_classifier(
    net: torch.nn.Module,
    data: ImagePair,
    lr: float = 0.05,
    epochs: int = 5000,
    batch_size: int | None = None,
    record_every: int = 1,
    seed: int = 0,
    threads: int | None = 1,
) -> RealHistory:
    """Train a copy of ``net`` on ``data.train`` (observed labels ỹ) with the logistic loss ℓ(ỹ f).

    ``batch_size=None`` runs full-batch gradient descent with step size η = ``lr`` (one step per epoch);
    an integer runs mini-batch SGD, reshuffling the training set each epoch with a generator seeded by
    ``seed``.  At epoch 0, every ``record_every`` epochs and at the last epoch it records the margins, the
    loss and the accuracies of :class:`RealHistory`.  The same arguments give identical runs.

    ``threads`` sets PyTorch's CPU thread count during the run (restored afterwards): problems this small
    run fastest on one thread, and on a busy machine several threads can be many times slower.  ``None``
    keeps the current setting (worth it for large images).  Raises
    :class:`lnfl.training.TrainingDivergedError` if the loss becomes non-finite.
    """
    if not isinstance(net, torch.nn.Module):
        raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    if not isinstance(data, ImagePair):
        raise TypeError(f"data must be an lnfl.realdata.ImagePair, got {type(data).__name__}")
    lr = check_positive("lr", lr)
    epochs = check_int("epochs", epochs, minimum=0)
    n = data.train.n
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size)
        if batch_size > n:
            raise ValueError(f"batch_size must be in 1..{n} (the training set size), got {batch_size}")
    record_every = check_int("record_every", record_every)
    seed = check_seed("seed", seed)
    if threads is not None:
        threads = check_int("threads", threads)
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train(net, data, lr, epochs, batch_size, record_every, seed)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    net: torch.nn.Module,
    data: ImagePair,
    lr: float,
    epochs: int,
    batch_size: int | None,
    record_every: int,
    seed: int,
) -> RealHistory:
    net = copy.deepcopy(net)
    params = [p for p in net.parameters() if p.requires_grad]
    x, y, y_obs = data.train.x, data.train.y, data.train.y_obs
    clean, noisy = data.train.clean, data.train.noisy
    g = torch.Generator().manual_seed(seed)
    rec: dict[str, list] = {k: [] for k in ("epoch", "margin", "scalars")}

    def record(epoch: int, out: torch.Tensor) -> None:
        with torch.no_grad():
            f_test = net(data.test.x)
        margin = (y_obs * out).detach()
        rec["epoch"].append(epoch)
        rec["margin"].append(margin)
        rec["scalars"].append(
            [
                _group_mean(margin > 0, clean),
                _group_mean(margin > 0, noisy),
                _group_mean(y * out > 0, noisy),
                float((f_test * data.test.y > 0).double().mean()),
            ]
        )

    def diverged(epoch: int) -> TrainingDivergedError:
        return TrainingDivergedError(
            f"training diverged in epoch {epoch}: the loss became non-finite with lr={lr:g}; "
            f"try a smaller step size, e.g. lr={lr / 10:g}"
        )

    def step(epoch: int, idx: torch.Tensor | None, due: bool = False) -> None:
        out = net(x) if idx is None else net(x[idx])
        if due:  # full batch: this forward pass is the network at this epoch, before its update
            record(epoch, out)
        target = y_obs if idx is None else y_obs[idx]
        loss = logistic_loss(target * out).mean()
        if not bool(torch.isfinite(loss)):
            raise diverged(epoch)
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad

    for epoch in range(epochs + 1):
        due = epoch % record_every == 0 or epoch == epochs
        if batch_size is None and epoch < epochs:
            step(epoch, None, due)
            continue
        if due:
            with torch.no_grad():
                record(epoch, net(x))
        if epoch == epochs:
            break
        for idx in torch.randperm(data.train.n, generator=g).split(batch_size):  # type: ignore[arg-type]
            step(epoch, idx)
    if not bool(torch.isfinite(rec["margin"][-1]).all()):
        raise diverged(epochs)

    sc = torch.tensor(rec["scalars"], dtype=torch.float64)
    margin = torch.stack(rec["margin"])
    return RealHistory(
        epoch=torch.tensor(rec["epoch"]),
        loss=logistic_loss(margin).double().mean(dim=1),
        margin=margin,
        train_acc_clean=sc[:, 0],
        train_acc_noisy=sc[:, 1],
        noisy_true_acc=sc[:, 2],
        test_acc=sc[:, 3],
        net=net,
        data=data,
        lr=lr,
        batch_size=batch_size,
    )


#: The digits experiment of theory.md §7, tuned to show both stages in a few seconds on a CPU:
#: 4 vs 9, 20% symmetric class-conditional flips, an 8-channel :class:`SmallCNN`, full-batch GD.
DIGITS_REFERENCE: dict[str, object] = {
    "classes": (4, 9),
    "tau_plus": 0.2,
    "tau_minus": 0.2,
    "test_fraction": 0.3,
    "channels": 8,
    "lr": 0.05,
    "epochs": 5000,
}


def run_digits(seed: int = 0, record_every: int = 1, batch_size: int | None = None, **overrides: object) -> RealHistory:
    """The digits experiment (:data:`DIGITS_REFERENCE`, any key overridden), data and network seeded by ``seed``.

    >>> hist = run_digits(seed=0)                  # 4 vs 9, 20% flips, full-batch GD, 5000 epochs
    >>> hist = run_digits(seed=0, batch_size=32)   # the same with mini-batch SGD
    """
    unknown = set(overrides) - set(DIGITS_REFERENCE)
    if unknown:
        raise TypeError(f"unknown configuration key(s) {sorted(unknown)}; valid keys are {sorted(DIGITS_REFERENCE)}")
    cfg = {**DIGITS_REFERENCE, **overrides}
    pair = load_digits_pair(
        classes=cfg["classes"],  # type: ignore[arg-type]
        tau_plus=cfg["tau_plus"],  # type: ignore[arg-type]
        tau_minus=cfg["tau_minus"],  # type: ignore[arg-type]
        test_fraction=cfg["test_fraction"],  # type: ignore[arg-type]
        seed=seed,
    )
    net = small_cnn(pair.image_shape, channels=cfg["channels"], seed=seed)  # type: ignore[arg-type]
    return train_classifier(
        net,
        pair,
        lr=cfg["lr"],  # type: ignore[arg-type]
        epochs=cfg["epochs"],  # type: ignore[arg-type]
        batch_size=batch_size,
        record_every=record_every,
        seed=seed,
    )
