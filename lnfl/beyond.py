"""Beyond the theorems: small tools for Chapter 11's studies (the limits Han et al. 2025 state).

The theorems of Han et al. assume full-batch GD, class-conditional label noise, two classes and the exact
signal-plus-noise model.  This module relaxes one assumption at a time, keeping everything else of
:mod:`lnfl.data`, :mod:`lnfl.model` and :mod:`lnfl.training`:

- :func:`train_sgd` — mini-batch SGD on the two-layer CNN, recorded as a :class:`~lnfl.training.History`
  (γ and ρ by projection, :func:`lnfl.decomposition.decompose`), with the time axis in **epochs**;
  :func:`train_sgd_batch` runs many seeds at once through the projections, as :mod:`lnfl.engine` runs GD;
- :func:`instance_dependent_flips` — flip probabilities that depend on the noise patch ξ_i, with the same
  mean flip rate τ as class-conditional noise;
- :func:`sample_multiclass`, :func:`train_multiclass` — K classes whose signals μ_k sit at the vertices of a
  regular simplex (for K = 2, μ₂ = −μ₁: the paper's ±μ), K groups of m filters and the softmax cross-entropy
  (for K = 2 exactly the paper's model and logistic loss of F₊₁ − F₋₁); :func:`train_multiclass_batch` runs
  many seeds at once, :func:`multiclass_stage_one_window` finds their Stage I window;
- :func:`memorisation_time`, :func:`stage_clocks` — T_{1/2}, when half the noisy samples are fitted to their
  wrong label after T₁, the end of the Stage I window (both clocks of a run at once);
- :func:`class_accuracy` — test accuracy of each class separately (for unequal flip rates τ₊ ≠ τ₋).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ._validate import (
    check_choice,
    check_classes,
    check_dataset,
    check_dtype,
    check_instance,
    check_int,
    check_positive,
    check_real,
    check_recording,
    check_seed,
    check_sequence,
    check_tau,
    check_tensor,
    describe,
    input_scale_cause,
    step_size_cause,
)
from .data import Dataset, LabelNoise
from .decomposition import _basis, decompose
from .engine import (
    CoefSpace,
    _check_configs,
    _inputs,
    _outputs,
    _record_bytes,
    _Records,
    _scale_cause,
    _signal_row,
    _signs,
)
from .model import _check_pair, _dloss, _gd_coefficients, _logistic_loss, _output, _projections, network_output
from .stages import stage_one_window
from .training import History, Setup, TrainingDivergedError

__all__ = [
    "MultiClassData",
    "MultiClassHistory",
    "class_accuracy",
    "instance_dependent_flips",
    "memorisation_time",
    "multiclass_output",
    "multiclass_stage_one_window",
    "sample_multiclass",
    "stage_clocks",
    "train_multiclass",
    "train_multiclass_batch",
    "train_sgd",
    "train_sgd_batch",
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


# ------------------------------------------------------------------------------------ SGD on many seeds


def train_sgd_batch(
    setups: Sequence[Setup],
    epochs: int = 100,
    batch_size: int = 10,
    record_every: int = 1,
    seeds: Sequence[int] | None = None,
    test: str = "sample",
    rho_dtype: torch.dtype | None = None,
) -> list[History]:
    """:func:`train_sgd` on K setups at once (same n, m and d; any data, W⁽⁰⁾ and η): one History per setup,
    equal up to rounding to ``train_sgd(s.W0, s.data, s.eta, epochs, batch_size, record_every, s.test, seed)``
    with the batch order of ``seed = seeds[k]`` (default: k).  ``t`` counts epochs.

    Computed through the projections, as :mod:`lnfl.engine` computes GD: the state is P = W Zᵀ on the
    patches Z = [μ; −μ; ξ_1; …; ξ_n], and a mini-batch B moves only the coefficients of the |B| + 2 patches
    it holds, so an update costs O(K m |B| n) whatever d is.  γ and ρ are the accumulated coefficients
    (γ_{j,r} = j A_{j,r,μ}‖μ‖², ρ_{j,r,i} = A_{j,r,i}‖ξ_i‖², Chapter 4), so no projection is needed.
    ``test``: ``"sample"`` (each setup's test set) or ``"none"``; ``rho_dtype=torch.float32`` stores ρ in
    half the memory.  Raises :class:`~lnfl.training.TrainingDivergedError`, naming the update, the setup
    and the cause, if a run becomes non-finite.
    """
    if not isinstance(setups, Sequence) or not setups or not all(isinstance(s, Setup) for s in setups):
        raise TypeError("setups must be a non-empty list of lnfl.training.Setup (from lnfl.training.setup)")
    epochs = check_int("epochs", epochs, minimum=0)
    batch_size = check_int("batch_size", batch_size)
    record_every = check_int("record_every", record_every)
    check_choice("test", test, ("sample", "none"))
    if rho_dtype is not None:
        check_dtype("rho_dtype", rho_dtype)
    seeds = list(range(len(setups))) if seeds is None else check_sequence("seeds", seeds, check_seed)
    if len(seeds) != len(setups):
        raise ValueError(f"seeds must hold one seed per setup ({len(setups)}), got {len(seeds)}")

    def name(k: int, field: str) -> str:
        return f"setups[{k}].{field}"

    W0s, datas, etas, tests = _check_configs(
        [s.W0 for s in setups],
        [s.data for s in setups],
        [s.eta for s in setups],
        [s.test if test == "sample" else None for s in setups],
        name,
    )
    K, (_, m, d), n = len(datas), W0s[0].shape, datas[0].n
    if batch_size > n:
        raise ValueError(f"batch_size must be in 1..{n} (the training set size n), got {batch_size}")
    dt, dev = W0s[0].dtype, W0s[0].device
    check_recording("epochs", epochs, record_every, _record_bytes(K, n, m, dt, rho_dtype or dt))
    for k, data in enumerate(datas):
        if (cause := _scale_cause(data, name(k, "data"))) is not None:
            raise TrainingDivergedError(f"training diverged at update 0 (configuration {k}): {cause}")
    W0 = torch.stack(W0s).reshape(K, 2 * m, d)
    y, y_obs = torch.stack([x.y for x in datas]), torch.stack([x.y_obs for x in datas])
    eta = torch.tensor([float(e) for e in etas], dtype=dt, device=dev)
    c, j = _signal_row(y), _signs(m, W0)
    X = torch.stack([_inputs(x) for x in tests]) if test == "sample" else None
    if X is not None:
        yt, yt_obs = torch.stack([x.y for x in tests]), torch.stack([x.y_obs for x in tests])
        ct = _signal_row(yt)
    space = CoefSpace(W0, torch.stack([_inputs(x) for x in datas]), X)
    mu_sq = torch.stack([x.mu.dot(x.mu) for x in datas])
    xi_sq = torch.stack([(x.xi * x.xi).sum(1) for x in datas])
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    A = torch.zeros(K, 2 * m, n + 2, dtype=dt, device=dev)
    rec = _Records(K, n, m, epochs, record_every, dt, dev, rho_dtype)
    sig_rows = torch.tensor([0, 1], device=dev).expand(K, 2)

    def diverged(update: int, where: str, k: int) -> TrainingDivergedError:
        if update == 0:
            cause = input_scale_cause(f"the initial output f(W⁽⁰⁾, x_i) of {name(k, 'W0')}", dt)
        else:
            scale = (float(mu_sq[k]), float(xi_sq[k].max()), batch_size, m)
            cause = step_size_cause(name(k, "eta"), float(etas[k]), dt, *scale)
        return TrainingDivergedError(f"training diverged at update {update} ({where}, configuration {k}): {cause}")

    update = 0
    for epoch in range(epochs + 1):
        if rec.due(epoch):
            margin = y_obs * _outputs(torch.relu(space.P), c, j)
            if not bool(torch.isfinite(margin).all()):
                raise diverged(update, f"epoch {epoch}", int((~torch.isfinite(margin)).any(1).nonzero()[0, 0]))
            test_acc = None
            if X is not None:
                ft = _outputs(torch.relu(space.test_projections(A)), ct, j)
                test_acc = torch.stack([(ft * yt > 0).to(dt).mean(1), (ft * yt_obs > 0).to(dt).mean(1)], 1)
            rec.write(margin, A, test_acc)
        if epoch == epochs:
            break
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(dev)  # (K, n), as train_sgd
        for i, idx in enumerate(perms.split(batch_size, dim=1)):
            b = idx.shape[1]
            P_xi = space.P.gather(2, (idx + 2)[:, None, :].expand(K, 2 * m, b))  # ⟨w, ξ_i⟩, i ∈ B
            S_sig, S_xi = torch.relu(space.P[:, :, :2]), torch.relu(P_xi)
            c_b = c.gather(1, idx)
            f = ((j @ S_sig).gather(1, c_b) + j @ S_xi) / m  # f(W, x_i), i ∈ B
            yo = y_obs.gather(1, idx)
            margin = yo * f
            if not bool(torch.isfinite(margin).all()):
                k = int((~torch.isfinite(margin)).any(1).nonzero()[0, 0])
                raise diverged(update, f"epoch {epoch}, batch {i}", k)
            q = _dloss(margin) * yo * (eta[:, None] / (b * m))  # η ℓ'_i ỹ_i/(|B| m)
            q_sig = torch.zeros(K, 2, dtype=dt, device=dev).scatter_add_(1, c_b, q)  # Σ over y_i = ±1
            eta_C = torch.cat([torch.sign(S_sig) * q_sig[:, None, :], torch.sign(S_xi) * q[:, None, :]], 2)
            eta_C = j[:, None] * eta_C  # (K, 2m, |B| + 2): coefficients of μ, −μ and the ξ_i of B
            rows = torch.cat([sig_rows, idx + 2], 1)
            A.scatter_add_(2, rows[:, None, :].expand(K, 2 * m, b + 2), -eta_C)
            space.P.baddbmm_(eta_C, space.G.gather(1, rows[:, :, None].expand(K, b + 2, n + 2)), alpha=-1.0)
            update += 1

    def overflow(k: int, what: str, dtype: torch.dtype) -> TrainingDivergedError:
        cause = input_scale_cause(f"{what} of {name(k, 'data')}", dtype)
        return TrainingDivergedError(f"training diverged at update {update} (configuration {k}): {cause}")

    W = space.weights(A).reshape(K, 2, m, d)
    return [History(**f) for f in rec.fields(W, y, y_obs, mu_sq, xi_sq, j, W0s, etas, overflow)]


def memorisation_time(hist: History | MultiClassHistory, after: int, level: float = 0.5) -> int | None:
    """T_{1/2} (for ``level`` = 1/2): the first recorded step t > ``after`` at which at least a fraction
    ``level`` of the noisy samples are fitted to their observed (wrong) label, ``hist.train_acc_noisy ≥
    level``.  ``after`` is normally T₁, the end of the Stage I window (:func:`lnfl.stages.stage_one_window`,
    :func:`multiclass_stage_one_window`), when no noisy sample is fitted yet.  ``None`` if it does not happen
    within the recorded steps.  Works on any History: ``t`` in steps, or in epochs for :func:`train_sgd`.
    """
    check_instance("hist", hist, (History, MultiClassHistory), "an lnfl History or MultiClassHistory")
    after = check_int("after", after, minimum=0)
    level = check_real("level", level, low=0.0, high=1.0, low_open=True)
    hits = ((hist.t > after) & (hist.train_acc_noisy >= level)).nonzero()
    return int(hist.t[hits[0, 0]]) if hits.numel() else None


def stage_clocks(
    hist: History | MultiClassHistory, data: Dataset | None = None, level: float = 0.5
) -> tuple[int | None, int | None]:
    """The two clocks of a run, (T₁, T_{1/2}): the end of its Stage I window (:func:`lnfl.stages.stage_one_window`
    for a :class:`~lnfl.training.History` on the training ``data``; :func:`multiclass_stage_one_window` for a
    :class:`MultiClassHistory`, with ``data=None``) and :func:`memorisation_time` after it.  ``(None, None)`` when
    the Stage I state never holds, ``(T₁, None)`` when the memorisation level is not reached in the record.
    Steps as recorded: epochs for :func:`train_sgd` and :func:`train_sgd_batch`.
    """
    if isinstance(hist, MultiClassHistory):
        if data is not None:
            raise ValueError(
                f"data must be None for a MultiClassHistory (its window needs no data), got {describe(data)}"
            )
        window = multiclass_stage_one_window(hist)
    else:
        check_instance("hist", hist, History, "an lnfl History or MultiClassHistory")
        window = stage_one_window(hist, data)
    level = check_real("level", level, low=0.0, high=1.0, low_open=True)
    if window is None:
        return None, None
    return window[1], memorisation_time(hist, window[1], level)


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
    """K-class signal-plus-noise data: x_i = [μ_{y_i}, ξ_i], labels in 0..K−1 (:func:`sample_multiclass` puts the
    μ_k at the vertices of a regular simplex; any K signals of one dimension d are accepted)."""

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
    """n samples of the K-class model: y uniform on 0..K−1, ξ ~ N(0, σ_ξ² I_d), and with probability τ the
    observed label ỹ is replaced by one of the K − 1 other classes, uniformly.

    The signals μ_1, …, μ_K are the vertices of a regular simplex centred at 0 in span{e_1, …, e_{K−1}}
    (K ≤ d): ‖μ_k‖ = ``mu_norm`` and ⟨μ_k, μ_l⟩ = −‖μ‖²/(K − 1) for k ≠ l, so Σ_k μ_k = 0.  For K = 2 they
    are μ₁ = ‖μ‖e_1 and μ₂ = −μ₁: the paper's signal patch y·μ with class 0 ↔ y = +1, class 1 ↔ y = −1.
    """
    K = check_int("K", K, minimum=2)
    n = check_int("n", n)
    d = check_int("d", d)
    check_dtype("dtype", dtype)
    if K > d:
        raise ValueError(f"K must be at most d = {d} (the K signals μ_k live in span{{e_1, …, e_K}}), got {K}")
    mu_norm = check_positive("mu_norm", mu_norm)
    sigma_xi = check_positive("sigma_xi", sigma_xi)
    tau = check_real("tau", tau, low=0.0, high=1.0 - 1.0 / K, high_open=True)
    g = torch.Generator().manual_seed(check_seed("seed", seed))
    y = torch.randint(0, K, (n,), generator=g)
    xi = sigma_xi * torch.randn(n, d, generator=g, dtype=torch.float64)
    flip = torch.rand(n, generator=g, dtype=torch.float64) < tau
    shift = torch.randint(1, K, (n,), generator=g)  # another class, uniformly
    y_obs = torch.where(flip, (y + shift) % K, y)
    return MultiClassData(_simplex(K, d, mu_norm).to(dtype), xi.to(dtype), y, y_obs)


def _simplex(K: int, d: int, norm: float) -> torch.Tensor:  # noqa: N803 - the paper's symbol
    """The K vertices of a regular simplex centred at 0, of norm ``norm``, as rows of a (K, d) tensor in the
    coordinates e_1, …, e_{K−1} (the Helmert basis of the vectors with zero sum): for K = 2, ±norm·e_1."""
    helmert = torch.zeros(K - 1, K, dtype=torch.float64)
    for k in range(1, K):
        helmert[k - 1, :k] = 1.0
        helmert[k - 1, k] = -float(k)
        helmert[k - 1] /= math.sqrt(k * (k + 1))
    centred = torch.eye(K, dtype=torch.float64) - 1.0 / K  # e_k − 𝟙/K, norm √((K − 1)/K)
    mu = torch.zeros(K, d, dtype=torch.float64)
    mu[:, : K - 1] = centred @ helmert.T * (norm / math.sqrt((K - 1) / K))
    return mu


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
    """γ_{k,r} = ⟨w_{k,r} − w⁽⁰⁾_{k,r}, μ_k⟩: signal learning of class k by its own filters, (T, K, m).  For
    K = 2 (μ₂ = −μ₁) this is the paper's γ_{j,r} plus the cross term Σ_i ρ_{j,r,i}⟨ξ_i, μ_k⟩/‖ξ_i‖², small
    because the noise patches are nearly orthogonal to μ (Chapter 4)."""
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
                gamma = ((W - W0) * data.mu[:, None, :]).sum(dim=2)  # ⟨w_{k,r} − w⁽⁰⁾_{k,r}, μ_k⟩
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


def multiclass_stage_one_window(hist: MultiClassHistory) -> tuple[int, int] | None:
    """The Stage I window of a K-class run, (start, end): the first and the last recorded step at which every
    clean sample is predicted as its class and every noisy sample as its *true* class (the state of Theorem
    4.1, with the arg-max prediction in place of the sign of f).  ``end`` is T₁.  ``None`` if the state never
    holds within the recorded steps; without noisy samples the state is "every clean sample fitted".
    """
    check_instance("hist", hist, MultiClassHistory, "an lnfl.beyond.MultiClassHistory")
    noisy_ok = (hist.noisy_true_acc >= 1.0) | torch.isnan(hist.noisy_true_acc)
    hits = ((hist.train_acc_clean >= 1.0) & noisy_ok).nonzero()
    if hits.numel() == 0:
        return None
    return int(hist.t[hits[0, 0]]), int(hist.t[hits[-1, 0]])


def train_multiclass_batch(
    W0s: Sequence[torch.Tensor],
    datas: Sequence[MultiClassData],
    eta: float = 0.1,
    steps: int = 1000,
    record_every: int = 1,
    tests: Sequence[MultiClassData] | None = None,
) -> list[MultiClassHistory]:
    """:func:`train_multiclass` on several runs at once (same K, m, n, d, dtype and device): one
    MultiClassHistory per run, equal to the single runs up to rounding.

    Computed through the projections P = W Zᵀ on the patches Z = [μ_1; …; μ_K; ξ_1; …; ξ_n], as
    :mod:`lnfl.engine` does for two classes: with g_{i,k} = (softmax(F(x_i))_k − 1(k = ỹ_i))/n, the gradient
    of filter (k, r) is (1/m) Σ_i g_{i,k} [σ'(⟨w_{k,r}, μ_{y_i}⟩) μ_{y_i} + σ'(⟨w_{k,r}, ξ_i⟩) ξ_i], a
    combination C Z of the patches, and a step is P ← P − ηC G with G = Z Zᵀ: O(K m (K + n)²) per step,
    whatever d is.  The gradient is written out (σ'(0) = 0, as autograd takes it); the test compares it
    with :func:`train_multiclass`, which uses autograd.  ``tests``: one MultiClassData per run, or None.
    """
    W0s = check_sequence("W0s", W0s, lambda _, x: x)
    datas = check_sequence("datas", datas, lambda _, x: x)
    if len(W0s) != len(datas):
        raise ValueError(f"W0s and datas must have the same length, got {len(W0s)} and {len(datas)}")
    W0s = [_check_multiclass(W0s[k], datas[k], f"W0s[{k}]", f"datas[{k}]") for k in range(len(datas))]
    first = (W0s[0].shape, datas[0].n, W0s[0].dtype, W0s[0].device)
    for k in range(1, len(datas)):
        if (W0s[k].shape, datas[k].n, W0s[k].dtype, W0s[k].device) != first:
            raise ValueError(
                f"run {k} differs from run 0 in K, m, d, n, dtype or device; a batch needs them equal everywhere"
            )
    eta = check_positive("eta", eta)
    steps = check_int("steps", steps, minimum=0)
    record_every = check_int("record_every", record_every)
    if tests is not None:
        tests = check_sequence("tests", tests, lambda _, x: x)
        if len(tests) != len(datas):
            raise ValueError(f"tests must hold one test set per run ({len(datas)}), got {len(tests)}")
        for k, t in enumerate(tests):
            check_instance(f"tests[{k}]", t, MultiClassData, "an lnfl.beyond.MultiClassData")
            t.__post_init__()
            if t.mu.shape != datas[0].mu.shape or t.xi.dtype != W0s[0].dtype or t.xi.device != W0s[0].device:
                raise ValueError(
                    f"tests[{k}] must have the training data's K, d = {tuple(datas[0].mu.shape)}, dtype and "
                    f"device, got tests[{k}].mu {describe(t.mu)}"
                )
            if t.n != tests[0].n:
                raise ValueError(f"test sets must have the same size, got {tests[0].n} and {t.n} (run {k})")
    C, (K, m, d), n = len(datas), W0s[0].shape, datas[0].n
    dt, dev = W0s[0].dtype, W0s[0].device
    check_recording("steps", steps, record_every, C * (W0s[0].element_size() * K * m + 400))
    for k, x in enumerate(datas):
        if (cause := _scale_cause(x, f"datas[{k}]")) is not None:
            raise TrainingDivergedError(f"training diverged at step 0 (run {k}): {cause}")
    Z = torch.stack([torch.cat([x.mu, x.xi]) for x in datas])  # (C, K + n, d)
    X = torch.stack([torch.cat([x.mu, x.xi]) for x in tests]) if tests is not None else None
    space = CoefSpace(torch.stack(W0s).reshape(C, K * m, d), Z, X)
    y, y_obs = torch.stack([x.y for x in datas]).to(dev), torch.stack([x.y_obs for x in datas]).to(dev)
    one_y = torch.nn.functional.one_hot(y, K).to(dt)  # (C, n, K)
    one_obs = torch.nn.functional.one_hot(y_obs, K).to(dt)
    clean = (y == y_obs).to(dt)
    noisy = 1 - clean
    if tests is not None:
        y_test = torch.stack([x.y for x in tests]).to(dev)
    diag = torch.arange(K, device=dev)
    mu_sq = [float((x.mu * x.mu).sum(1).max()) for x in datas]
    xi_sq = [float((x.xi * x.xi).sum(1).max()) for x in datas]

    def class_outputs(P: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """F_k(W, x_i) (C, n', K) from projections P (C, Km, K + n') on [μ_1; …; μ_K; ξ'_1; …]."""
        S = torch.relu(P).reshape(C, K, m, -1).sum(2) / m  # (C, K, K + n')
        signal = S[:, :, :K].gather(2, labels[:, None, :].expand(C, K, labels.shape[1]))
        return (signal + S[:, :, K:]).transpose(1, 2)

    def over(v: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
        return (v * S).sum(-1) / S.sum(-1)

    A = torch.zeros(C, K * m, K + n, dtype=dt, device=dev)
    rec: dict[str, list] = {k: [] for k in ("t", "loss", "gamma", "acc")}
    for step in range(steps + 1):
        F = class_outputs(space.P, y)
        logp = torch.log_softmax(F, dim=2)
        loss = -(logp * one_obs).sum(2).mean(1)  # (C,)
        if not bool(torch.isfinite(loss).all()):
            k = int((~torch.isfinite(loss)).nonzero()[0, 0])
            if step == 0:
                cause = input_scale_cause(f"the initial output F(W⁽⁰⁾, x_i) of W0s[{k}] on datas[{k}]", dt)
            else:
                cause = step_size_cause("eta", eta, dt, mu_sq[k], xi_sq[k], n, m)
            raise TrainingDivergedError(f"training diverged at step {step} (run {k}): {cause}")
        if step % record_every == 0 or step == steps:
            pred = F.argmax(dim=2)
            proj = (space.P - space.P0)[:, :, :K].reshape(C, K, m, K)  # ⟨w_{k,r} − w⁽⁰⁾_{k,r}, μ_c⟩
            if tests is not None:
                test_pred = class_outputs(space.test_projections(A), y_test).argmax(dim=2)
                test_acc = (test_pred == y_test).to(dt).mean(1)
            else:
                test_acc = torch.full((C,), float("nan"), dtype=dt, device=dev)
            rec["t"].append(step)
            rec["loss"].append(loss)
            rec["gamma"].append(proj[:, diag, :, diag].transpose(0, 1))  # c = k: (C, K, m)
            hit_obs, hit_true = (pred == y_obs).to(dt), (pred == y).to(dt)
            rec["acc"].append(
                torch.stack([over(hit_obs, clean), over(hit_obs, noisy), over(hit_true, noisy), test_acc], 1)
            )
        if step == steps:
            break
        g = (torch.exp(logp) - one_obs) / n  # ∂L/∂F_{i,k}, (C, n, K)
        g_signal = torch.bmm(g.transpose(1, 2), one_y)  # Σ_{i: y_i = c} g_{i,k}, (C, K, K)
        coef = torch.cat([g_signal, g.transpose(1, 2)], dim=2)  # (C, K, K + n)
        eta_C = (eta / m) * torch.sign(torch.relu(space.P)) * coef.repeat_interleave(m, dim=1)
        A.sub_(eta_C)
        space.step(eta_C)
    W = space.weights(A).reshape(C, K, m, d)
    acc = torch.stack(rec["acc"], 1).to(torch.float64)  # (C, T, 4)
    loss, gamma = torch.stack(rec["loss"], 1), torch.stack(rec["gamma"], 1)
    return [
        MultiClassHistory(
            t=torch.tensor(rec["t"]),
            loss=loss[k].to(torch.float64),
            gamma=gamma[k],
            train_acc_clean=acc[k, :, 0],
            train_acc_noisy=acc[k, :, 1],
            noisy_true_acc=acc[k, :, 2],
            test_acc=acc[k, :, 3],
            W=W[k],
            W0=W0s[k],
        )
        for k in range(C)
    ]
