"""Beyond the theorems: small tools for Chapter 11's studies (the limits Han et al. 2025 state).

The theorems of Han et al. assume full-batch GD, class-conditional label noise, two classes and the exact
signal-plus-noise model.  This module relaxes one assumption at a time, keeping everything else of
:mod:`lnfl.data`, :mod:`lnfl.model` and :mod:`lnfl.training`:

- :func:`train_sgd` — mini-batch SGD on the two-layer CNN, recorded as a :class:`~lnfl.training.History`
  (γ and ρ by projection, :func:`lnfl.decomposition.decompose`), with the time axis in **epochs**;
- :func:`instance_dependent_flips` — flip probabilities that depend on the noise patch ξ_i, with the same
  mean flip rate τ as class-conditional noise;
- :func:`sample_multiclass`, :func:`train_multiclass` — K classes with orthogonal signals μ_k = ‖μ‖·e_k, K
  groups of m filters and the softmax cross-entropy (for K = 2 this is exactly the paper's logistic loss of
  F₊₁ − F₋₁);
- :func:`class_accuracy` — test accuracy of each class separately (for unequal flip rates τ₊ ≠ τ₋).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._validate import (
    check_classes,
    check_dataset,
    check_dtype,
    check_instance,
    check_int,
    check_positive,
    check_real,
    check_recording,
    check_seed,
    check_tau,
    check_tensor,
    describe,
    input_scale_cause,
    step_size_cause,
)
from .data import Dataset, LabelNoise
from .decomposition import _basis, decompose
from .engine import _scale_cause
from .model import _check_pair, _dloss, _gd_coefficients, _logistic_loss, _output, _projections, network_output
from .training import History, TrainingDivergedError

__all__ = [
    "MultiClassData",
    "MultiClassHistory",
    "class_accuracy",
    "instance_dependent_flips",
    "multiclass_output",
    "sample_multiclass",
    "train_multiclass",
    "train_sgd",
]


def _mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return values[mask].to(torch.float64).mean() if bool(mask.any()) else torch.tensor(float("nan"))


@dataclass(frozen=True)
class _Batch:
    """The samples ``idx`` of a validated Dataset, unchecked (made once per SGD step)."""

    mu: torch.Tensor
    xi: torch.Tensor
    y: torch.Tensor
    y_obs: torch.Tensor

    @property
    def n(self) -> int:
        return self.xi.shape[0]


def _check_test(test: object, data: Dataset, name: str = "test") -> None:
    """``test`` is None or a Dataset with the training data's d, dtype and device."""
    if test is None:
        return
    check_dataset(name, test)
    if test.d != data.d:
        raise ValueError(f"{name} must have the training data's d = {data.d}, got {test!r}")
    check_tensor(f"{name}.xi", test.xi, like=("data.xi", data.xi), finite=False)


def train_sgd(
    W0: torch.Tensor,
    data: Dataset,
    eta: float = 0.1,
    epochs: int = 100,
    batch_size: int = 10,
    record_every: int = 1,
    test: Dataset | None = None,
    seed: int = 0,
) -> History:
    """Mini-batch SGD on L_S: each epoch visits the n samples once, in random batches of ``batch_size``,

        W ← W − η ∇_W L_B(W),   L_B = (1/|B|) Σ_{i∈B} ℓ(ỹ_i f(W, x_i)).

    ``batch_size = n`` is full-batch GD (one step per epoch).  Returns a :class:`~lnfl.training.History`
    whose ``t`` counts **epochs** (recorded at 0, every ``record_every`` epochs and the last); γ and ρ are
    the projections of W − W⁽⁰⁾ (SGD, like GD, keeps W − W⁽⁰⁾ in span{μ, ξ_i}).  The batches are drawn by
    a generator seeded by ``seed``.  Raises :class:`~lnfl.training.TrainingDivergedError`, naming the
    update and the cause as :func:`lnfl.training.train` does, if the run becomes non-finite.  γ and ρ by
    projection need n + 1 ≤ d.
    """
    W0 = _check_pair(W0, data, "W0")
    _check_test(test, data)
    eta = check_positive("eta", eta)
    epochs = check_int("epochs", epochs, minimum=0)
    batch_size = check_int("batch_size", batch_size)
    if batch_size > data.n:
        raise ValueError(f"batch_size must be in 1..{data.n} (the training set size n), got {batch_size}")
    record_every = check_int("record_every", record_every)
    g = torch.Generator().manual_seed(check_seed("seed", seed))
    if data.n + 1 > data.d:
        raise ValueError(
            f"train_sgd reads γ and ρ off W by projection (lnfl.decomposition.decompose), which needs n + 1 <= d; "
            f"data has n = {data.n}, d = {data.d}"
        )
    m = W0.shape[1]
    check_recording("epochs", epochs, record_every, W0.element_size() * (2 * m * (data.n + 1) + data.n) + 300)
    if (cause := _scale_cause(data, "data")) is not None:
        raise TrainingDivergedError(f"training diverged at update 0: {cause}")
    _basis(data, "data")  # ‖μ‖ > 0 and every ‖ξ_i‖ > 0, or a clear error now rather than NaN later
    W = W0.clone()
    rec: dict[str, list] = {k: [] for k in ("t", "gamma", "rho", "margin", "test", "test_noisy")}
    mu_sq, xi_sq = float(data.mu.dot(data.mu)), float((data.xi * data.xi).sum(1).max())

    def diverged(update: int, where: str) -> TrainingDivergedError:
        if update == 0:
            cause = input_scale_cause("the initial output f(W⁽⁰⁾, x_i) of W0 on data", W0.dtype)
        else:
            cause = step_size_cause("eta", eta, W0.dtype, mu_sq, xi_sq, batch_size, m)
        return TrainingDivergedError(f"training diverged at update {update} ({where}): {cause}")

    def record(epoch: int, update: int) -> None:
        margin = data.y_obs * _output(*_projections(W, data), data.y)
        if not bool(torch.isfinite(margin).all()):
            raise diverged(update, f"epoch {epoch}")
        gamma, rho = decompose(W, W0, data)
        rec["t"].append(epoch)
        rec["gamma"].append(gamma)
        rec["rho"].append(rho)
        rec["margin"].append(margin)
        f_test = network_output(W, test) if test is not None else None
        nan = torch.tensor(float("nan"), dtype=torch.float64)
        rec["test"].append((f_test * test.y > 0).double().mean() if test is not None else nan)
        rec["test_noisy"].append((f_test * test.y_obs > 0).double().mean() if test is not None else nan)

    update = 0
    for epoch in range(epochs + 1):
        if epoch % record_every == 0 or epoch == epochs:
            record(epoch, update)
        if epoch == epochs:
            break
        for i, idx in enumerate(torch.randperm(data.n, generator=g).split(batch_size)):
            idx = idx.to(data.xi.device)
            batch = _Batch(data.mu, data.xi[idx], data.y[idx], data.y_obs[idx])
            margin, a, b = _gd_coefficients(*_projections(W, batch), batch)
            if not bool(torch.isfinite(margin).all()):
                raise diverged(update, f"epoch {epoch}, batch {i}")
            W = W - eta * (a[:, :, None] * batch.mu + b @ batch.xi)
            update += 1

    margin = torch.stack(rec["margin"])
    fitted = margin > 0
    true_fit = (margin * data.y_obs * data.y) > 0  # y_i f > 0
    abs_d = _dloss(margin).abs()
    clean, noisy = data.clean, data.noisy
    return History(
        t=torch.tensor(rec["t"]),
        loss=_logistic_loss(margin).mean(dim=1),
        gamma=torch.stack(rec["gamma"]),
        rho=torch.stack(rec["rho"]),
        margin=margin,
        train_acc=fitted.double().mean(dim=1),
        train_acc_clean=torch.stack([_mean(r, clean) for r in fitted]),
        train_acc_noisy=torch.stack([_mean(r, noisy) for r in fitted]),
        noisy_true_acc=torch.stack([_mean(r, noisy) for r in true_fit]),
        test_acc=torch.stack(rec["test"]),
        test_acc_noisy_labels=torch.stack(rec["test_noisy"]),
        mean_abs_dloss_clean=torch.stack([_mean(r, clean) for r in abs_d]),
        mean_abs_dloss_noisy=torch.stack([_mean(r, noisy) for r in abs_d]),
        W=W,
        W0=W0,
        eta=eta,
    )


_FLIP_SEED_OFFSET = 1_000_003


def instance_dependent_flips(
    data: Dataset, tau: float, score: str | torch.Tensor = "norm", sharpness: float = 3.0, seed: int = 0
) -> Dataset:
    """The same (y, ξ) as ``data`` with new observed labels: exactly k = round(τ·n) samples are flipped,
    drawn without replacement with probabilities proportional to

        w_i = Φ(β·z_i),   z_i = standardised score of sample i,   β = ``sharpness``,

    so samples with a high score are more likely to be mislabelled, while the number of flips matches
    class-independent noise of rate τ.  ``score``:

    - ``"norm"``: z_i from ‖ξ_i‖² (the largest noise patches, which are memorised fastest, since the
      ρ-step is proportional to ‖ξ_i‖²);
    - ``"margin"``: z_i from −y_i⟨ξ_i, μ⟩ (the noise patch points against the sample's own signal: "hard" samples);
    - a tensor of shape (n,) of any scores (standardised here).

    ``sharpness = 0`` flips k samples chosen uniformly at random (independently of class and of ξ).
    ``seed`` seeds the draw (offset internally, so that reusing the data's seed number is harmless).
    """
    check_dataset("data", data)
    tau = check_tau("tau", tau)
    sharpness = check_real("sharpness", sharpness, low=0.0)
    bad = f"score must be 'norm', 'margin' or a tensor of shape ({data.n},), got {describe(score)}"
    if isinstance(score, str):
        if score not in ("norm", "margin"):
            raise ValueError(bad)
        s = (data.xi * data.xi).sum(dim=1) if score == "norm" else -data.y * (data.xi @ data.mu)
    elif isinstance(score, torch.Tensor) and tuple(score.shape) == (data.n,):
        s = check_tensor("score", score)
    else:
        raise ValueError(bad)
    s = s.detach().to(torch.float64).cpu()
    z = (s - s.mean()) / s.std().clamp(min=1e-12) if data.n > 1 else torch.zeros_like(s)
    if not bool(torch.isfinite(z).all()):
        raise ValueError(
            f"score {score if isinstance(score, str) else 'tensor'} cannot be standardised in {data.xi.dtype}: "
            "its values overflow (data or score too large for the dtype)"
        )
    w = 0.5 * (1 + torch.erf(sharpness * z / math.sqrt(2)))
    k = round(tau * data.n)
    # offset: the same seed number as the data's must not replay the data's random stream (y_i came from it)
    g = torch.Generator().manual_seed(check_seed("seed", seed) + _FLIP_SEED_OFFSET)
    flip = torch.zeros(data.n, dtype=torch.bool)
    if k > 0:
        flip[torch.multinomial(w.clamp(min=1e-300), k, replacement=False, generator=g)] = True
    flip = flip.to(data.y.device)
    return Dataset(data.mu, data.xi, data.y, torch.where(flip, -data.y, data.y))


def class_accuracy(W: torch.Tensor, data: Dataset) -> tuple[float, float]:
    """Accuracy against the true labels on each class: (on {y = +1}, on {y = −1}); NaN for an empty class."""
    f = network_output(W, data)  # checks W against data
    right = f * data.y > 0
    return float(_mean(right, data.y > 0)), float(_mean(right, data.y < 0))


# ------------------------------------------------------------------------------------------ K classes


@dataclass(frozen=True)
class MultiClassData(LabelNoise):
    """K-class signal-plus-noise data: x_i = [μ_{y_i}, ξ_i] with μ_k = ‖μ‖·e_k, labels in 0..K−1."""

    mu: torch.Tensor
    """Signal vectors μ_k as rows, shape (K, d)."""
    xi: torch.Tensor
    """Noise patches ξ_i, shape (n, d)."""
    y: torch.Tensor
    """True classes y_i, shape (n,), int64."""
    y_obs: torch.Tensor
    """Observed classes ỹ_i, shape (n,), int64."""

    def __post_init__(self) -> None:
        """Validate each field: μ (K, d) with K ≥ 2, ξ (n, d) of μ's dtype and device, both finite
        float32/float64; classes of shape (n,) in 0..K−1 (stored as int64)."""
        mu = check_tensor("mu", self.mu, shape=("K", "d"))
        K, d = mu.shape
        if K < 2:
            raise ValueError(f"mu must have K >= 2 rows (one signal per class), got {describe(mu)}")
        xi = check_tensor("xi", self.xi, shape=("n", d), context=f"d = {d} from mu", like=("mu", mu))
        object.__setattr__(self, "mu", mu)
        object.__setattr__(self, "xi", xi)
        for name in ("y", "y_obs"):
            object.__setattr__(self, name, check_classes(name, getattr(self, name), xi.shape[0], K))

    @property
    def n(self) -> int:
        """Number of samples n."""
        return self.xi.shape[0]

    @property
    def K(self) -> int:  # noqa: N802 - the paper's symbol
        """Number of classes K."""
        return self.mu.shape[0]


def sample_multiclass(
    K: int,  # noqa: N803 - the paper's symbol
    n: int,
    d: int,
    mu_norm: float,
    sigma_xi: float = 1.0,
    tau: float = 0.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> MultiClassData:
    """n samples of the K-class model: y uniform on 0..K−1, ξ ~ N(0, σ_ξ² I_d), μ_k = ‖μ‖·e_k (K ≤ d), and
    with probability τ the observed label ỹ is replaced by one of the K − 1 other classes, uniformly.
    """
    K = check_int("K", K, minimum=2)
    n = check_int("n", n)
    d = check_int("d", d)
    check_dtype("dtype", dtype)
    if K > d:
        raise ValueError(f"K must be at most d = {d} (orthogonal signals μ_k = ‖μ‖e_k), got {K}")
    mu_norm = check_positive("mu_norm", mu_norm)
    sigma_xi = check_positive("sigma_xi", sigma_xi)
    tau = check_real("tau", tau, low=0.0, high=1.0 - 1.0 / K, high_open=True)
    g = torch.Generator().manual_seed(check_seed("seed", seed))
    y = torch.randint(0, K, (n,), generator=g)
    xi = sigma_xi * torch.randn(n, d, generator=g, dtype=torch.float64)
    flip = torch.rand(n, generator=g, dtype=torch.float64) < tau
    shift = torch.randint(1, K, (n,), generator=g)  # another class, uniformly
    y_obs = torch.where(flip, (y + shift) % K, y)
    mu = torch.zeros(K, d, dtype=torch.float64)
    mu[torch.arange(K), torch.arange(K)] = mu_norm
    return MultiClassData(mu.to(dtype), xi.to(dtype), y, y_obs)


def multiclass_output(W: torch.Tensor, data: MultiClassData) -> torch.Tensor:
    """F_k(W, x_i) = (1/m) Σ_r [σ(⟨w_{k,r}, μ_{y_i}⟩) + σ(⟨w_{k,r}, ξ_i⟩)] for every class k, shape (n, K)."""
    return _multiclass_output(_check_multiclass(W, data, "W", "data"), data)


def _check_multiclass(W: object, data: object, name: str, data_name: str) -> torch.Tensor:
    """``data`` a valid MultiClassData, W finite of shape (K, m, d) with its dtype and device; W detached."""
    check_instance(data_name, data, MultiClassData, "an lnfl.beyond.MultiClassData")
    data.__post_init__()  # the fields are still valid
    K, d = data.mu.shape
    ctx = f"K = {K}, d = {d} from {data_name}"
    return check_tensor(name, W, shape=(K, "m", d), context=ctx, like=(data_name, data.xi))


def _multiclass_output(W: torch.Tensor, data: MultiClassData) -> torch.Tensor:
    m = W.shape[1]
    signal = torch.relu(W @ data.mu.T)[:, :, data.y]  # σ(⟨w_{k,r}, μ_{y_i}⟩), (K, m, n)
    noise = torch.relu(W @ data.xi.T)  # (K, m, n)
    return ((signal + noise).sum(dim=1) / m).T


@dataclass
class MultiClassHistory:
    """What :func:`train_multiclass` recorded at steps ``t``; accuracies are fractions, NaN when undefined."""

    t: torch.Tensor
    loss: torch.Tensor
    """Cross-entropy of the observed labels, shape (T,)."""
    gamma: torch.Tensor
    """γ_{k,r} = ⟨w_{k,r} − w⁽⁰⁾_{k,r}, μ_k⟩/‖μ_k‖²: signal learning of class k by its own filters, (T, K, m)."""
    train_acc_clean: torch.Tensor
    """Fraction of clean samples predicted as their (observed = true) class."""
    train_acc_noisy: torch.Tensor
    """Fraction of noisy samples predicted as their *observed* class: memorisation."""
    noisy_true_acc: torch.Tensor
    """Fraction of noisy samples predicted as their *true* class."""
    test_acc: torch.Tensor
    """Accuracy on the test set against true classes (NaN without a test set)."""
    W: torch.Tensor
    W0: torch.Tensor

    def t_clean_fit(self) -> int | None:
        """The clean-fit time: first recorded step with every clean sample predicted correctly, or None."""
        hits = (self.train_acc_clean >= 1.0).nonzero()
        return int(self.t[hits[0, 0]]) if hits.numel() else None


def train_multiclass(
    W0: torch.Tensor,
    data: MultiClassData,
    eta: float = 0.1,
    steps: int = 1000,
    record_every: int = 1,
    test: MultiClassData | None = None,
) -> MultiClassHistory:
    """Full-batch GD on the softmax cross-entropy (1/n) Σ_i −log softmax(F(W, x_i))_{ỹ_i}, W of shape (K, m, d).

    Gradients by autograd.  For K = 2, F₁ − F₂ plays the role of f and the loss is the paper's ℓ(ỹ f).
    Raises :class:`~lnfl.training.TrainingDivergedError`, naming the step and the cause as
    :func:`lnfl.training.train` does, if the loss becomes non-finite.
    """
    W0 = _check_multiclass(W0, data, "W0", "data")
    eta = check_positive("eta", eta)
    steps = check_int("steps", steps, minimum=0)
    record_every = check_int("record_every", record_every)
    if test is not None:
        check_instance("test", test, MultiClassData, "an lnfl.beyond.MultiClassData or None")
        if test.mu.shape != data.mu.shape or test.xi.dtype != data.xi.dtype or test.xi.device != data.xi.device:
            raise ValueError(
                f"test must have the training data's K, d = {tuple(data.mu.shape)}, dtype and device, got "
                f"test.mu {describe(test.mu)}"
            )
    K, m = W0.shape[0], W0.shape[1]
    check_recording("steps", steps, record_every, W0.element_size() * K * m + 400)
    if (cause := _scale_cause(data, "data")) is not None:
        raise TrainingDivergedError(f"training diverged at step 0: {cause}")
    W = W0.clone().requires_grad_(True)
    mu_sq = (data.mu * data.mu).sum(dim=1)  # (K,)
    scale = (float(mu_sq.max()), float((data.xi * data.xi).sum(1).max()), data.n, m)
    rec: dict[str, list] = {k: [] for k in ("t", "loss", "gamma", "acc")}
    clean, noisy = data.clean, data.noisy
    for step in range(steps + 1):
        F = _multiclass_output(W, data)
        loss = torch.nn.functional.cross_entropy(F, data.y_obs)
        if not bool(torch.isfinite(loss)):
            if step == 0:
                cause = input_scale_cause("the initial output F(W⁽⁰⁾, x_i) of W0 on data", W0.dtype)
            else:
                cause = step_size_cause("eta", eta, W0.dtype, *scale)
            raise TrainingDivergedError(f"training diverged at step {step}: {cause}")
        if step % record_every == 0 or step == steps:
            with torch.no_grad():
                pred = F.argmax(dim=1)
                gamma = ((W - W0) * data.mu[:, None, :]).sum(dim=2) / mu_sq[:, None]
                test_acc = (
                    (_multiclass_output(W, test).argmax(dim=1) == test.y).double().mean()
                    if test is not None
                    else torch.tensor(float("nan"))
                )
                rec["t"].append(step)
                rec["loss"].append(loss.detach())
                rec["gamma"].append(gamma)
                rec["acc"].append(
                    torch.stack(
                        [
                            _mean(pred == data.y_obs, clean),
                            _mean(pred == data.y_obs, noisy),
                            _mean(pred == data.y, noisy),
                            test_acc.to(torch.float64),
                        ]
                    )
                )
        if step == steps:
            break
        (grad,) = torch.autograd.grad(loss, W)
        with torch.no_grad():
            W -= eta * grad
    acc = torch.stack(rec["acc"])
    return MultiClassHistory(
        t=torch.tensor(rec["t"]),
        loss=torch.stack(rec["loss"]).to(torch.float64),
        gamma=torch.stack(rec["gamma"]),
        train_acc_clean=acc[:, 0],
        train_acc_noisy=acc[:, 1],
        noisy_true_acc=acc[:, 2],
        test_acc=acc[:, 3],
        W=W.detach(),
        W0=W0,
    )
