"""Real images with flipped labels: the two stages outside the synthetic model (Chapter 10).

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

CIFAR-10 (the paper's experiment).  :func:`load_cifar10_pair` reads the CIFAR-10 *python* archive
(``cifar-10-python.tar.gz``, or its extracted folder) from a local path, the environment variable
``LNFL_CIFAR10`` or the default cache :func:`default_cifar10_path`; it never downloads.  Downloading is
an explicit call, :func:`download_cifar10` (official URL, MD5 checked).  :func:`vgg_small` is a small
VGG-style network for 3×32×32 images, and :func:`run_cifar10` trains it with mini-batch SGD
(on a GPU when one is available):

>>> path = download_cifar10()                       # once, online (about 163 MB)
>>> hist = run_cifar10(seed=0, device="cuda")       # airplane vs automobile, 20% flips

:func:`split_validation` carves a *noisy* validation set out of the training set (its labels keep their
flips), and ``train_classifier(..., val=…)`` records the accuracy on it against those observed labels:
the quantity a practitioner can use for early stopping.
"""

from __future__ import annotations

import copy
import hashlib
import numbers
import os
import pickle
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ._validate import (
    check_bool,
    check_device,
    check_dtype,
    check_instance,
    check_int,
    check_keys,
    check_labels,
    check_positive,
    check_real,
    check_recording,
    check_seed,
    check_tau,
    check_tensor,
    describe,
    input_scale_cause,
)
from .data import LabelNoise
from .model import _logistic_loss, logistic_loss
from .training import TrainingDivergedError

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_MD5",
    "CIFAR10_REFERENCE",
    "CIFAR10_URL",
    "DIGITS_REFERENCE",
    "VGGSmall",
    "cifar10_available",
    "default_cifar10_path",
    "download_cifar10",
    "find_cifar10",
    "load_cifar10_pair",
    "run_cifar10",
    "split_validation",
    "validation_ceiling",
    "vgg_small",
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
class ImageData(LabelNoise):
    """Images with their true labels y ∈ {−1, +1} and observed labels ỹ (equal to y on a clean set)."""

    x: torch.Tensor
    """Images, shape (N, C, H, W), floating point."""
    y: torch.Tensor
    """True labels y_i ∈ {−1, +1}, shape (N,), same dtype as ``x``."""
    y_obs: torch.Tensor
    """Observed labels ỹ_i ∈ {−1, +1}, shape (N,); training sees only these."""

    def __post_init__(self) -> None:
        """Validate each field: x a finite float32/float64 (N, C, H, W) tensor, N ≥ 1; labels ±1 of shape (N,),
        stored in x's dtype and device."""
        x = check_tensor("x", self.x, shape=("N", "C", "H", "W"))
        object.__setattr__(self, "x", x)
        for name in ("y", "y_obs"):
            labels = check_labels(name, getattr(self, name), x.shape[0])
            object.__setattr__(self, name, labels.to(dtype=x.dtype, device=x.device))

    @property
    def n(self) -> int:
        """Number of images N."""
        return self.x.shape[0]


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

    def __post_init__(self) -> None:
        """Validate each field: two :class:`ImageData` with the same image shape and dtype, the class pair,
        rates in [0, 1/2), a seed, a name."""
        check_instance("train", self.train, ImageData, "an lnfl.realdata.ImageData")
        check_instance("test", self.test, ImageData, "an lnfl.realdata.ImageData")
        tr, te = self.train.x, self.test.x
        if tr.shape[1:] != te.shape[1:] or tr.dtype != te.dtype or tr.device != te.device:
            raise ValueError(
                f"train and test must hold images of one shape, dtype and device, got train.x {describe(tr)} "
                f"and test.x {describe(te)}"
            )
        ok = isinstance(self.classes, (tuple, list)) and len(self.classes) == 2
        if not ok or any(isinstance(c, bool) or not isinstance(c, numbers.Integral) for c in self.classes):
            raise TypeError(f"classes must be a pair of two integers (the original class ids), got {self.classes!r}")
        object.__setattr__(self, "classes", (int(self.classes[0]), int(self.classes[1])))
        check_tau("tau_plus", self.tau_plus)
        check_tau("tau_minus", self.tau_minus)
        check_seed("seed", self.seed)
        check_instance("name", self.name, str, "a string")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]


def _check_image_shape(image_shape: object) -> tuple[int, int, int]:
    if not (
        isinstance(image_shape, (tuple, list))
        and len(image_shape) == 3
        and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in image_shape)
    ):
        raise ValueError(f"image_shape must be (C, H, W) with three positive integers, got {image_shape!r}")
    return tuple(int(s) for s in image_shape)  # type: ignore[return-value]


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


def _pair(
    x_tr: torch.Tensor,
    x_te: torch.Tensor,
    t_tr: torch.Tensor,
    t_te: torch.Tensor,
    classes: tuple[int, int],
    tau_plus: float,
    tau_minus: float,
    g: torch.Generator,
    seed: int,
    dtype: torch.dtype,
    name: str,
) -> ImagePair:
    """Class ``classes[0]`` → y = +1, the other → y = −1; flip the training labels (exact counts), keep the test
    labels clean, and package the two sets as an :class:`ImagePair`."""
    y_tr = torch.where(t_tr == classes[0], 1.0, -1.0).to(torch.float64)
    y_te = torch.where(t_te == classes[0], 1.0, -1.0).to(torch.float64)
    y_obs = _flip_exact(y_tr, tau_plus, tau_minus, g)
    train = ImageData(x_tr.to(dtype), y_tr.to(dtype), y_obs.to(dtype))
    test = ImageData(x_te.to(dtype), y_te.to(dtype), y_te.to(dtype))
    return ImagePair(train, test, classes, tau_plus, tau_minus, seed, name)


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
    check_bool("standardize", standardize)
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
    return _pair(x_tr, x_te, target[tr], target[te], (a, b), tau_plus, tau_minus, g, seed, dtype, f"digits {a} vs {b}")


class SmallCNN(torch.nn.Module):
    """f(x) = ⟨v, ReLU(conv₃ₓ₃(x))⟩ + b: one 3×3 convolution with ``channels`` filters (zero padding, so
    every pixel's neighbourhood is a patch), ReLU, and a linear read-out to one logit.

    Like the paper's network, the same filters are applied to every patch of the input; unlike it, the
    second layer is trained (a fixed ±1/m second layer cannot memorise 8×8 images at this size).
    """

    def __init__(self, image_shape: tuple[int, int, int], channels: int = 8, dtype: torch.dtype = torch.float32):
        super().__init__()
        c, h, w = _check_image_shape(image_shape)
        channels = check_int("channels", channels)
        check_dtype("dtype", dtype)
        self.conv = torch.nn.Conv2d(c, channels, kernel_size=3, padding=1, dtype=dtype)
        self.readout = torch.nn.Linear(channels * h * w, 1, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f(x_i) for a batch of images, shape (N,)."""
        return self.readout(torch.relu(self.conv(x)).flatten(1)).squeeze(1)


def small_cnn(
    image_shape: tuple[int, int, int], channels: int = 8, seed: int = 0, dtype: torch.dtype = torch.float32
) -> SmallCNN:
    """A :class:`SmallCNN` with PyTorch's default initialisation drawn under ``seed`` (global RNG untouched)."""
    image_shape = _check_image_shape(image_shape)
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
    val_acc: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.float64))
    """Accuracy on the validation set against its *observed* (noisy) labels ỹ, shape (T,); all NaN when
    ``train_classifier`` got no ``val``."""

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
    val: ImageData | None = None,
    device: str | torch.device | None = None,
    eval_batch: int = 2048,
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

    ``val`` (an :class:`ImageData`, e.g. from :func:`split_validation`) adds ``val_acc``: accuracy against
    its observed labels ỹ at every recorded epoch.  ``device`` (e.g. ``"cuda"``) trains there (default: the
    network's current device); the history is returned on the CPU.  Recording evaluates the network on
    ``eval_batch`` images at a time.
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
    if val is not None:
        check_instance("val", val, ImageData, "an lnfl.realdata.ImageData or None")
        if val.x.shape[1:] != data.train.x.shape[1:] or val.x.dtype != data.train.x.dtype:
            raise ValueError(
                f"val must hold images like data.train's {tuple(data.train.x.shape[1:])} {data.train.x.dtype}, "
                f"got val.x {describe(val.x)}"
            )
    eval_batch = check_int("eval_batch", eval_batch)
    device = check_device("device", device)
    first = next(iter(net.parameters()), None)
    if first is not None and first.dtype != data.train.x.dtype:
        raise ValueError(
            f"net and data must share dtype, got net's parameters {first.dtype}, data.train.x {data.train.x.dtype}; "
            "build the network with dtype=data.train.x.dtype"
        )
    check_recording("epochs", epochs, record_every, 4 * (data.train.n + 8))
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _train(net, data, lr, epochs, batch_size, record_every, seed, val, device, eval_batch)
    finally:
        torch.set_num_threads(previous_threads)


# ------------------------------------------------------------------------------- SmallCNN without autograd

_FAST_BYTES = 64 * 2**20  # the unfolded training images must fit in this much memory for the fast path


class _Diverged(Exception):
    """The fast path met a non-finite output: the general loop reruns the run and reports it."""


def _unfold(x: torch.Tensor) -> torch.Tensor:
    """The 3×3 neighbourhoods (zero padding) of every pixel of every image as columns, shape (C·9, H·W·N),
    pixel-major: what the convolution multiplies by its filters.  Fixed for fixed images: computed once."""
    n = x.shape[0]
    return (
        torch.nn.functional.unfold(x, kernel_size=3, padding=1)
        .permute(1, 2, 0)
        .reshape(-1, x.shape[2] * x.shape[3] * n)
    )


def _fast_ok(net: torch.nn.Module, data: ImagePair, val: ImageData | None) -> bool:
    """Whether :func:`_train_small_cnn` applies: exactly a :class:`SmallCNN` with every parameter trained,
    and unfolded images small enough."""
    if type(net) is not SmallCNN or not all(p.requires_grad for p in net.parameters()):
        return False
    n = data.train.n + data.test.n + (val.n if val is not None else 0)
    c, h, w = data.image_shape
    return n * h * w * c * 9 * data.train.x.element_size() <= _FAST_BYTES


def _train_small_cnn(
    net: SmallCNN,
    data: ImagePair,
    lr: float,
    epochs: int,
    batch_size: int | None,
    record_every: int,
    seed: int,
    val: ImageData | None,
    device: str | torch.device | None,
) -> RealHistory:
    """:func:`train_classifier` for a :class:`SmallCNN`, with the gradient written out instead of autograd.

    The same gradient descent (or SGD, same shuffling) up to floating-point rounding: the convolution is one
    product of the filters with the unfolded images (computed once), f = ⟨v, ReLU(·)⟩ + b, and
    ∂L/∂f_i = ℓ'(ỹ_i f_i) ỹ_i / N is propagated back by hand.  About ten tensor operations an epoch instead
    of autograd's graph, and the recorded margins and test outputs are kept as tensors and reduced to
    accuracies once at the end.  Raises :class:`_Diverged` on a non-finite output.
    """
    net = copy.deepcopy(net)
    if device is not None:
        net = net.to(device)
    conv, readout = net.conv, net.readout
    dev, dtype = conv.weight.device, conv.weight.dtype
    ch = conv.out_channels
    _, _, h, w = data.train.x.shape
    pixels = h * w
    with torch.no_grad():
        filt = conv.weight.detach().reshape(ch, -1).clone()  # (ch, C·9)
        bias = conv.bias.detach().reshape(ch, 1).clone()
        v = readout.weight.detach().reshape(ch * pixels).clone()  # read-out weight of channel c at pixel p: c·H·W + p
        b0 = readout.bias.detach().clone()  # (1,)
    x, y_obs = data.train.x.to(dev), data.train.y_obs.to(dev)
    n = x.shape[0]
    cols = _unfold(x)  # (C·9, H·W·N)
    cols_test = _unfold(data.test.x.to(dev))
    cols_val = _unfold(val.x.to(dev)) if val is not None else None

    def forward(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ReLU(conv) as (ch·H·W, N), f as (N,)) for unfolded images c."""
        act = torch.addmm(bias, filt, c).relu_().view(ch * pixels, -1)
        return act, (v @ act).add_(b0)

    def step(c: torch.Tensor, act: torch.Tensor, out: torch.Tensor, target: torch.Tensor) -> None:
        k = out.shape[0]
        g = torch.sigmoid(-target * out).mul_(-target / k)  # ∂L/∂f_i = ℓ'(ỹ_i f_i) ỹ_i / k
        grad_v = act @ g
        d_pre = torch.outer(v, g).mul_(act.sign()).view(ch, -1)  # back through the read-out and the ReLU
        grad_filt = d_pre @ c.t()
        grad_bias = d_pre.sum(1, keepdim=True)
        v.sub_(grad_v, alpha=lr)
        b0.sub_(g.sum(), alpha=lr)
        filt.sub_(grad_filt, alpha=lr)
        bias.sub_(grad_bias, alpha=lr)

    def sgd_step(idx: torch.Tensor) -> None:
        c = cols.view(cols.shape[0], pixels, n)[:, :, idx.to(dev)].reshape(cols.shape[0], -1)
        act_b, out_b = forward(c)
        if not bool(torch.isfinite(out_b).all()):
            raise _Diverged
        step(c, act_b, out_b, y_obs[idx.to(dev)])

    recorded = [e for e in range(0, epochs + 1, record_every)] + ([epochs] if epochs % record_every else [])
    margins = torch.empty(len(recorded), n, dtype=dtype, device=dev)
    f_test = torch.empty(len(recorded), data.test.n, dtype=dtype, device=dev)
    f_val = torch.empty(len(recorded), val.n, dtype=dtype, device=dev) if val is not None else None
    g = torch.Generator().manual_seed(seed)
    slot = 0
    with torch.no_grad():
        for epoch in range(epochs + 1):
            due = epoch % record_every == 0 or epoch == epochs
            if not (due or batch_size is None):  # SGD: the full-batch outputs are needed only when recorded
                for idx in torch.randperm(n, generator=g).split(batch_size):
                    sgd_step(idx)
                continue
            act, out = forward(cols)
            if due:
                margins[slot] = y_obs * out
                f_test[slot] = forward(cols_test)[1]
                if f_val is not None:
                    f_val[slot] = forward(cols_val)[1]
                slot += 1
            if not bool(torch.isfinite(out).all()):
                raise _Diverged
            if epoch == epochs:
                break
            if batch_size is None:
                step(cols, act, out, y_obs)
                continue
            for idx in torch.randperm(n, generator=g).split(batch_size):
                sgd_step(idx)
        conv.weight.copy_(filt.reshape(conv.weight.shape))
        conv.bias.copy_(bias.reshape(-1))
        readout.weight.copy_(v.reshape(readout.weight.shape))
        readout.bias.copy_(b0)

    def share(hit: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if not bool(mask.any()):
            return torch.full((hit.shape[0],), float("nan"), dtype=torch.float64)
        return hit[:, mask.to(dev)].double().mean(dim=1).cpu()

    clean, noisy = data.train.clean, data.train.noisy
    test_acc = (f_test * data.test.y.to(dev) > 0).double().mean(dim=1).cpu()
    val_acc = (
        (f_val * val.y_obs.to(dev) > 0).double().mean(dim=1).cpu()
        if f_val is not None
        else torch.full((len(recorded),), float("nan"), dtype=torch.float64)
    )
    margin = margins.cpu()
    return RealHistory(
        epoch=torch.tensor(recorded),
        loss=logistic_loss(margin).double().mean(dim=1),
        margin=margin,
        train_acc_clean=share(margins > 0, clean),
        train_acc_noisy=share(margins > 0, noisy),
        noisy_true_acc=share(margins < 0, noisy),  # y_i = −ỹ_i for a flipped sample: y_i f > 0 ⇔ ỹ_i f < 0
        test_acc=test_acc,
        net=net,
        data=data,
        lr=lr,
        batch_size=batch_size,
        val_acc=val_acc,
    )


def _train(
    net: torch.nn.Module,
    data: ImagePair,
    lr: float,
    epochs: int,
    batch_size: int | None,
    record_every: int,
    seed: int,
    val: ImageData | None = None,
    device: str | torch.device | None = None,
    eval_batch: int = 2048,
) -> RealHistory:
    if _fast_ok(net, data, val):
        try:
            return _train_small_cnn(net, data, lr, epochs, batch_size, record_every, seed, val, device)  # type: ignore[arg-type]
        except _Diverged:
            pass  # the general loop below reruns the run and says what went wrong
    net = copy.deepcopy(net)
    if device is not None:
        net = net.to(device)
    first = next(net.parameters(), None)
    dev = first.device if first is not None else torch.device("cpu")
    params = [p for p in net.parameters() if p.requires_grad]
    x, y, y_obs = data.train.x.to(dev), data.train.y.to(dev), data.train.y_obs.to(dev)
    clean, noisy = data.train.clean.to(dev), data.train.noisy.to(dev)
    x_test, y_test = data.test.x.to(dev), data.test.y.to(dev)
    x_val, y_val = (val.x.to(dev), val.y_obs.to(dev)) if val is not None else (None, None)
    g = torch.Generator().manual_seed(seed)
    rec: dict[str, list] = {k: [] for k in ("epoch", "margin", "scalars")}

    def forward(inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([net(chunk) for chunk in inputs.split(eval_batch)])

    def record(epoch: int, out: torch.Tensor) -> None:
        f_test = forward(x_test)
        margin = (y_obs * out).detach()
        val_acc = float((forward(x_val) * y_val > 0).double().mean()) if x_val is not None else float("nan")
        rec["epoch"].append(epoch)
        rec["margin"].append(margin.cpu())
        rec["scalars"].append(
            [
                _group_mean(margin > 0, clean),
                _group_mean(margin > 0, noisy),
                _group_mean(y * out > 0, noisy),
                float((f_test * y_test > 0).double().mean()),
                val_acc,
            ]
        )

    updated = [False]

    def diverged(epoch: int) -> TrainingDivergedError:
        if not updated[0]:  # the network as given already overflows on the data: no step size can help
            cause = input_scale_cause("the initial output of net on data.train.x", x.dtype)
            return TrainingDivergedError(f"training diverged in epoch {epoch}: {cause}")
        return TrainingDivergedError(
            f"training diverged in epoch {epoch}: the loss became non-finite with lr={lr:g}; "
            f"try a smaller step size, e.g. lr={lr / 10:g}"
        )

    def step(epoch: int, idx: torch.Tensor | None, due: bool = False) -> None:
        out = net(x) if idx is None else net(x[idx])
        if due:  # full batch: this forward pass is the network at this epoch, before its update
            record(epoch, out)
        target = y_obs if idx is None else y_obs[idx]
        loss = _logistic_loss(target * out).mean()
        if not bool(torch.isfinite(loss)):
            raise diverged(epoch)
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
        updated[0] = True

    for epoch in range(epochs + 1):
        due = epoch % record_every == 0 or epoch == epochs
        if batch_size is None and epoch < epochs:
            step(epoch, None, due)
            continue
        if due:
            record(epoch, forward(x))
        if epoch == epochs:
            break
        for idx in torch.randperm(data.train.n, generator=g).split(batch_size):  # type: ignore[arg-type]
            step(epoch, idx.to(dev))
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
        val_acc=sc[:, 4],
    )


#: The digits experiment of Chapter 10, tuned to show both stages in a few seconds on a CPU:
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
    check_keys("overrides", overrides, DIGITS_REFERENCE)
    cfg = {**DIGITS_REFERENCE, **overrides}
    record_every = check_int("record_every", record_every)
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


def split_validation(data: ImagePair, fraction: float = 0.2, seed: int = 0) -> tuple[ImagePair, ImageData]:
    """Carve a *noisy* validation set out of the training set: ``(smaller pair, validation images)``.

    A random ``fraction`` of the training images (at least one, and at least one left to train on) moves to
    the validation set with its observed labels ỹ unchanged, flips included: the realistic situation,
    where no clean labels exist.  The test set of the returned pair is ``data.test`` (still clean).
    """
    if not isinstance(data, ImagePair):
        raise TypeError(f"data must be an lnfl.realdata.ImagePair, got {type(data).__name__}")
    fraction = check_real("fraction", fraction, low=0.0, high=1.0, low_open=True, high_open=True)
    seed = check_seed("seed", seed)
    n = data.train.n
    k = round(fraction * n)
    if not 1 <= k <= n - 1:
        raise ValueError(f"fraction={fraction} moves {k} of {n} training images to validation; need 1..{n - 1}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    va, tr = perm[:k], perm[k:]
    t = data.train
    train = ImageData(t.x[tr], t.y[tr], t.y_obs[tr])
    val = ImageData(t.x[va], t.y[va], t.y_obs[va])
    pair = ImagePair(train, data.test, data.classes, data.tau_plus, data.tau_minus, data.seed, data.name)
    return pair, val


def validation_ceiling(val: ImageData, error: float, alpha: float = 1e-2, looks: int = 1) -> float:
    """acc_max: the highest accuracy against the *observed* labels ỹ that a network which never trained on
    ``val`` reaches there, except with probability at most ``alpha`` (Chapter 10, §10.4).

    Such a network agrees with the flipped label of a validation image only where it errs on the image's
    true class, which on unseen images happens at its clean error rate err_clean = ``error``.  The flipped
    images it "gets right" are then a Binomial(|S_f|, err_clean) count, so its noisy validation accuracy is at
    most (|S_t| + ν)/n_val with ν the smallest count such that ℙ(Binomial(|S_f|, err_clean) > ν) ≤
    ``alpha``/``looks``; |S_t| and |S_f| are the clean and flipped images of ``val``, n_val = |S_t| + |S_f|.
    ``looks`` is the number of networks a maximum was taken over (the recorded epochs of a run, when the
    early-stopping epoch is the one with the best accuracy on ``val``): by a union bound the ceiling then holds
    for all of them at once, with probability at least 1 − ``alpha``.  With err_clean = 0 the ceiling is
    |S_t|/n_val, the score of the true labels.
    """
    if not isinstance(val, ImageData):
        raise TypeError(f"val must be an lnfl.realdata.ImageData, got {type(val).__name__}")
    error = check_real("error", error, low=0.0, high=1.0)
    alpha = check_real("alpha", alpha, low=0.0, high=1.0, low_open=True, high_open=True)
    alpha = alpha / check_int("looks", looks)
    n_flipped = int(val.noisy.sum())
    counts = torch.arange(n_flipped + 1, dtype=torch.float64)
    binomial = torch.distributions.Binomial(n_flipped, probs=torch.tensor(error, dtype=torch.float64))
    tail = 1.0 - binomial.log_prob(counts).exp().cumsum(0)  # P(count > k), k = 0..|S_f|
    nu = int((tail > alpha).sum())  # ν: the first count whose tail is at most alpha (|S_f| at the latest)
    return (val.n - n_flipped + nu) / val.n


# ---------------------------------------------------------------------------------------------- CIFAR-10

#: The official CIFAR-10 python archive (Krizhevsky 2009) and its MD5 checksum.
CIFAR10_URL: str = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5: str = "c58f30108f718f92721af3b95e74349a"
#: Class names in CIFAR-10's label order 0..9.
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_TRAIN_MEMBERS = tuple(f"data_batch_{k}" for k in range(1, 6))
_TEST_MEMBER = "test_batch"
_ARCHIVE = "cifar-10-python.tar.gz"


def default_cifar10_path() -> Path:
    """Where the data are looked for: ``$LNFL_CIFAR10`` if set, else ``~/.cache/lnfl/cifar-10-python.tar.gz``."""
    env = os.environ.get("LNFL_CIFAR10")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "lnfl" / _ARCHIVE


def _source_ok(path: Path) -> bool:
    if path.is_file():
        return tarfile.is_tarfile(path)
    if path.is_dir():
        return (path / _TEST_MEMBER).is_file() or (path / "cifar-10-batches-py" / _TEST_MEMBER).is_file()
    return False


def _check_path(name: str, path: object) -> Path | None:
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)) or (isinstance(path, str) and not path):
        raise TypeError(f"{name} must be a non-empty path (a string or a pathlib.Path) or None, got {describe(path)}")
    return Path(path).expanduser()


def find_cifar10(path: str | os.PathLike | None = None) -> Path | None:
    """The local CIFAR-10 source to read, or None: ``path`` if given, else :func:`default_cifar10_path`.

    A source is the archive ``cifar-10-python.tar.gz`` (any file name), a folder holding it, the extracted
    folder ``cifar-10-batches-py`` or a folder containing that.  Nothing is downloaded.
    """
    p = _check_path("path", path) or default_cifar10_path()
    for candidate in (p, p / _ARCHIVE):
        if _source_ok(candidate):
            return candidate
    return None


def cifar10_available(path: str | os.PathLike | None = None) -> bool:
    """Whether :func:`find_cifar10` finds the data locally (never downloads)."""
    return find_cifar10(path) is not None


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_cifar10(
    dest: str | os.PathLike | None = None, url: str = CIFAR10_URL, md5: str | None = CIFAR10_MD5
) -> Path:
    """Download the CIFAR-10 python archive to ``dest`` (default :func:`default_cifar10_path`) and check its MD5.

    An explicit, opt-in call: no other function of the book downloads anything.  Returns the archive's
    path; if a file with the right checksum is already there, nothing is fetched (``md5=None``: any file
    already there is returned as it is).  It never replaces a file it did not write: the archive is
    downloaded to a temporary name in the destination folder, its checksum verified, and only then moved
    to ``dest``; if ``dest`` exists and is not the verified archive, it raises ``FileExistsError`` and
    leaves that file alone.
    """
    target = _check_path("dest", dest) or default_cifar10_path()
    if target.is_dir():
        target = target / _ARCHIVE
    if not isinstance(url, str) or not url:
        raise TypeError(f"url must be a non-empty string, got {describe(url)}")
    if md5 is not None and (not isinstance(md5, str) or len(md5) != 32):
        raise TypeError(f"md5 must be a 32-character hexadecimal MD5 string or None, got {describe(md5)}")

    def in_the_way(why: str) -> FileExistsError:
        return FileExistsError(
            f"dest {target} already exists and {why}; download_cifar10 never replaces a file it did not write: "
            "move that file away or pass another dest"
        )

    if os.path.lexists(target):
        if not target.is_file():
            raise in_the_way("is not a regular file")
        if md5 is None:
            return target
        if (got := _md5(target)) == md5:
            return target
        raise in_the_way(f"is not the CIFAR-10 archive (MD5 {got}, expected {md5})")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    try:
        urllib.request.urlretrieve(url, tmp)  # noqa: S310 - the URL is the official one unless overridden
        if md5 is not None and (got := _md5(Path(tmp))) != md5:
            raise OSError(f"checksum mismatch for {url}: MD5 {got}, expected {md5}; the download is corrupt")
        try:
            os.link(tmp, target)  # atomic, and fails rather than replace a file that appeared meanwhile
        except FileExistsError:
            raise in_the_way("appeared during the download") from None
        except OSError:  # a file system without hard links
            if os.path.lexists(target):
                raise in_the_way("appeared during the download") from None
            os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def _unpickle(raw: bytes) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 3, 32, 32), labels int64 (N,)) from one CIFAR-10 batch pickle."""
    batch = pickle.loads(raw, encoding="bytes")  # noqa: S301 - the CIFAR-10 format is a pickle
    data = torch.as_tensor(batch[b"data"], dtype=torch.uint8)
    labels = torch.as_tensor(list(batch[b"labels"]), dtype=torch.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise ValueError(f"not a CIFAR-10 batch: data of shape {tuple(data.shape)}, {labels.shape[0]} labels")
    return data.reshape(-1, 3, 32, 32), labels


def _read_cifar10(source: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The six batches {name: (images, labels)} from an archive or an extracted folder."""
    wanted = (*_TRAIN_MEMBERS, _TEST_MEMBER)
    raw: dict[str, bytes] = {}
    if source.is_file():
        with tarfile.open(source, "r:*") as tar:
            for member in tar.getmembers():
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in wanted:
                    raw[name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    else:
        folder = source if (source / _TEST_MEMBER).is_file() else source / "cifar-10-batches-py"
        for name in wanted:
            if (folder / name).is_file():
                raw[name] = (folder / name).read_bytes()
    missing = [w for w in wanted if w not in raw]
    if missing:
        raise ValueError(f"{source} is not a complete CIFAR-10 python archive: missing {missing}")
    return {name: _unpickle(raw[name]) for name in wanted}


def load_cifar10_pair(
    classes: tuple[int, int] = (0, 1),
    tau_plus: float = 0.2,
    tau_minus: float | None = None,
    path: str | os.PathLike | None = None,
    n_per_class: int | None = None,
    seed: int = 0,
    standardize: bool = True,
    dtype: torch.dtype = torch.float32,
) -> ImagePair:
    """Two CIFAR-10 classes as an :class:`ImagePair` (Han et al. 2025): airplane (0, y = +1) vs automobile (1, y = −1).

    Reads a local copy only (see :func:`find_cifar10`; raises ``FileNotFoundError`` saying how to get it).
    The training set is balanced: ``n_per_class`` images of each class (default: all, 5000 + 5000),
    drawn at random under ``seed`` when fewer are asked for, then shuffled.  Exactly round(τ₊·n₊) and
    round(τ₋·n₋) training labels are flipped, as in :func:`load_digits_pair`; the test set (all test
    images of the two classes) keeps its clean labels.  ``standardize`` subtracts each colour channel's
    training mean and divides by its standard deviation; otherwise pixels are scaled to [0, 1].
    """
    a, b = _check_classes(classes, 10)
    tau_plus = check_tau("tau_plus", tau_plus)
    tau_minus = tau_plus if tau_minus is None else check_tau("tau_minus", tau_minus)
    if n_per_class is not None:
        n_per_class = check_int("n_per_class", n_per_class)
    seed = check_seed("seed", seed)
    check_bool("standardize", standardize)
    check_dtype("dtype", dtype)
    source = find_cifar10(path)
    if source is None:
        where = default_cifar10_path() if path is None else Path(path)
        raise FileNotFoundError(
            f"CIFAR-10 not found at {where}. Get it once with lnfl.realdata.download_cifar10() (online, "
            f"about 163 MB, MD5-checked), or download {CIFAR10_URL} yourself and pass its path or set "
            "the environment variable LNFL_CIFAR10 to it."
        )
    batches = _read_cifar10(source)
    x_tr = torch.cat([batches[k][0] for k in _TRAIN_MEMBERS])
    t_tr = torch.cat([batches[k][1] for k in _TRAIN_MEMBERS])
    x_te, t_te = batches[_TEST_MEMBER]
    g = torch.Generator().manual_seed(seed)
    counts = [int((t_tr == c).sum()) for c in (a, b)]
    k = min(counts) if n_per_class is None else n_per_class
    if k > min(counts) or k == 0:
        raise ValueError(f"n_per_class must be in 1..{min(counts)} (images per class available), got {n_per_class}")
    tr = torch.cat(
        [
            (t_tr == c).nonzero().squeeze(1)[torch.randperm(n_c, generator=g)[:k]]
            for c, n_c in zip((a, b), counts, strict=True)
        ]
    )
    tr = tr[torch.randperm(tr.numel(), generator=g)]
    te = ((t_te == a) | (t_te == b)).nonzero().squeeze(1)
    xs_tr, xs_te = x_tr[tr].to(torch.float64) / 255.0, x_te[te].to(torch.float64) / 255.0
    if standardize:
        mean = xs_tr.mean(dim=(0, 2, 3), keepdim=True)
        std = xs_tr.std(dim=(0, 2, 3), keepdim=True).clamp(min=1e-12)
        xs_tr, xs_te = (xs_tr - mean) / std, (xs_te - mean) / std
    name = f"CIFAR-10 {CIFAR10_CLASSES[a]} vs {CIFAR10_CLASSES[b]}"
    return _pair(xs_tr, xs_te, t_tr[tr], t_te[te], (a, b), tau_plus, tau_minus, g, seed, dtype, name)


class VGGSmall(torch.nn.Module):
    """A small VGG-style network: blocks of ``convs_per_block`` 3×3 convolutions (zero padding) with ReLU,
    each block followed by 2×2 max pooling, widths doubling block by block, then a linear read-out to one
    logit f(x).  No batch normalisation, so the network is the same function in training and evaluation.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        widths: tuple[int, ...] = (32, 64, 128),
        convs_per_block: int = 2,
        dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        c, h, w = _check_image_shape(image_shape)
        if not isinstance(widths, (tuple, list)) or not widths:
            raise TypeError(f"widths must be a non-empty tuple of positive integers, got {widths!r}")
        widths = tuple(check_int(f"widths[{i}]", w_) for i, w_ in enumerate(widths))
        convs_per_block = check_int("convs_per_block", convs_per_block)
        check_dtype("dtype", dtype)
        if h % 2 ** len(widths) or w % 2 ** len(widths):
            raise ValueError(
                f"image_shape {(c, h, w)}: H and W must be divisible by 2^len(widths) = {2 ** len(widths)}"
            )
        layers: list[torch.nn.Module] = []
        for width in widths:
            for _ in range(convs_per_block):
                layers += [torch.nn.Conv2d(c, width, kernel_size=3, padding=1, dtype=dtype), torch.nn.ReLU()]
                c = width
            layers.append(torch.nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        self.features = torch.nn.Sequential(*layers)
        self.readout = torch.nn.Linear(c * h * w, 1, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f(x_i) for a batch of images, shape (N,)."""
        return self.readout(self.features(x).flatten(1)).squeeze(1)


def vgg_small(
    image_shape: tuple[int, int, int] = (3, 32, 32),
    widths: tuple[int, ...] = (32, 64, 128),
    convs_per_block: int = 2,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> VGGSmall:
    """A :class:`VGGSmall` with PyTorch's default initialisation drawn under ``seed`` (global RNG untouched).

    Each block halves the image, so H and W must be divisible by 2^len(widths).
    """
    image_shape = _check_image_shape(image_shape)
    if not isinstance(widths, (tuple, list)) or not widths:
        raise TypeError(f"widths must be a non-empty tuple of positive integers, got {widths!r}")
    widths = tuple(check_int(f"widths[{i}]", w) for i, w in enumerate(widths))
    convs_per_block = check_int("convs_per_block", convs_per_block)
    seed = check_seed("seed", seed)
    check_dtype("dtype", dtype)
    c, h, w = (int(s) for s in image_shape)
    scale = 2 ** len(widths)
    if h % scale or w % scale:
        raise ValueError(f"image_shape {tuple(image_shape)}: H and W must be divisible by 2^len(widths) = {scale}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VGGSmall((c, h, w), widths, convs_per_block, dtype)


#: The CIFAR-10 experiment of Han et al. (2025) (airplane vs automobile, 20% flips, mini-batch SGD).  Not run
#: in the book's tests: it needs the data (see :func:`download_cifar10`) and is meant for a GPU.
CIFAR10_REFERENCE: dict[str, object] = {
    "classes": (0, 1),
    "tau_plus": 0.2,
    "tau_minus": 0.2,
    "n_per_class": 5000,
    "widths": (32, 64, 128),
    "lr": 0.01,
    "batch_size": 128,
    "epochs": 100,
}


def run_cifar10(
    seed: int = 0,
    path: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    record_every: int = 1,
    val_fraction: float | None = None,
    **overrides: object,
) -> RealHistory:
    """The CIFAR-10 experiment (:data:`CIFAR10_REFERENCE`, any key overridden) on local data.

    ``device=None`` uses CUDA when available, else the CPU (slow: hours at the reference size).  With
    ``val_fraction`` a noisy validation split (:func:`split_validation`) is held out and recorded.
    """
    check_keys("overrides", overrides, CIFAR10_REFERENCE)
    cfg = {**CIFAR10_REFERENCE, **overrides}
    seed = check_seed("seed", seed)
    record_every = check_int("record_every", record_every)
    device = check_device("device", device)
    if val_fraction is not None:
        check_real("val_fraction", val_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
    check_positive("lr", cfg["lr"])  # the rest is checked where it is used, before the long part
    check_int("epochs", cfg["epochs"], minimum=0)
    check_int("batch_size", cfg["batch_size"])
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    pair = load_cifar10_pair(
        classes=cfg["classes"],  # type: ignore[arg-type]
        tau_plus=cfg["tau_plus"],  # type: ignore[arg-type]
        tau_minus=cfg["tau_minus"],  # type: ignore[arg-type]
        path=path,
        n_per_class=cfg["n_per_class"],  # type: ignore[arg-type]
        seed=seed,
    )
    val = None
    if val_fraction is not None:
        pair, val = split_validation(pair, val_fraction, seed=seed)
    net = vgg_small(pair.image_shape, widths=cfg["widths"], seed=seed)  # type: ignore[arg-type]
    return train_classifier(
        net,
        pair,
        lr=cfg["lr"],  # type: ignore[arg-type]
        epochs=cfg["epochs"],  # type: ignore[arg-type]
        batch_size=cfg["batch_size"],  # type: ignore[arg-type]
        record_every=record_every,
        seed=seed,
        threads=None,
        val=val,
        device=device,
    )
