"""Full-batch gradient descent on L_S with the γ/ρ recursion of Chapter 4 kept alongside.

w_{j,r}^{(t+1)} = w_{j,r}^{(t)} − η ∇_{w_{j,r}} L_S(W^{(t)})
γ^{(t+1)}_{j,r}   = γ^{(t)}_{j,r}   − (η‖μ‖²/(nm)) Σ_i ℓ'_i ỹ_i y_i σ'(⟨w_{j,r}^{(t)}, y_i μ⟩)
ρ^{(t+1)}_{j,r,i} = ρ^{(t)}_{j,r,i} − (η/(nm)) ℓ'_i · j ỹ_i · σ'(⟨w_{j,r}^{(t)}, ξ_i⟩) ‖ξ_i‖²

How it is computed (:mod:`lnfl.engine`).  The network sees W only through its projections on the patches
[μ; −μ; ξ_1; …; ξ_n], and W − W⁽⁰⁾ stays in their span, so GD runs either on W (two matrix products of
O(m n d) per step) or on the projections alone with the Gram matrix of the patches (O(m n²) per step, free
of d); γ and ρ are read off the accumulated coefficients.  :func:`train_batch` runs K configurations with
the same n, m and d as batched products.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from . import engine as _engine
from ._validate import (
    MAX_SEED,
    check_choice,
    check_dataset,
    check_dtype,
    check_instance,
    check_int,
    check_keys,
    check_positive,
)
from .data import Dataset, SignalNoiseModel
from .model import _check_pair, init_weights, logistic_loss

__all__ = ["REFERENCE", "History", "Setup", "TrainingDivergedError", "setup", "train", "train_batch"]


class TrainingDivergedError(FloatingPointError):
    """Raised when a run stops being finite; the message names the step and the cause.

    ℓ' is bounded, so gradient descent on the logistic loss can only turn non-finite by overflowing its dtype:
    either the inputs (with W⁽⁰⁾) are too large for it from step 0, where no step size helps, or the step size
    is so large for the inputs' scale that one step overflows, and the message suggests one that fits.  The
    same message comes from both engines, :func:`lnfl.race.gamma_race`, :func:`lnfl.beyond.train_sgd` and
    :func:`lnfl.beyond.train_multiclass`.
    """


@dataclass
class History:
    """What :func:`train` recorded, at steps ``t`` (step 0, every ``record_every`` steps, and the last step).

    Arrays have a leading time axis of length T = len(t).  Accuracies are fractions in [0, 1]; those about
    the test set are NaN when no test set was given, those about noisy samples are NaN when there are none.
    """

    t: torch.Tensor
    """Recorded steps, shape (T,)."""
    loss: torch.Tensor
    """Training loss L_S(W^{(t)}), shape (T,)."""
    gamma: torch.Tensor
    """γ_{j,r}^{(t)}: signal learning by filter (j, r), shape (T, 2, m)."""
    rho: torch.Tensor
    """ρ_{j,r,i}^{(t)}: memorisation of ξ_i by filter (j, r), shape (T, 2, m, n); ρ̄ = ρ⁺, ρ̲ = ρ⁻."""
    margin: torch.Tensor
    """ỹ_i f(W^{(t)}, x_i) for every training sample, shape (T, n); the sample is fitted when > 0."""
    train_acc: torch.Tensor
    """Fraction of all training samples with ỹ_i f > 0 (vs observed labels)."""
    train_acc_clean: torch.Tensor
    """Fraction of clean samples (i ∈ S_t) fitted, ỹ_i f > 0."""
    train_acc_noisy: torch.Tensor
    """Fraction of noisy samples (i ∈ S_f) fitted to their *observed* (wrong) label: memorisation."""
    noisy_true_acc: torch.Tensor
    """Fraction of noisy samples classified by their *true* label, y_i f > 0."""
    test_acc: torch.Tensor
    """Test accuracy against the true labels y (clean test labels)."""
    test_acc_noisy_labels: torch.Tensor
    """Test accuracy against the test set's observed labels ỹ (noisy test labels)."""
    mean_abs_dloss_clean: torch.Tensor
    """Mean |ℓ'_i| over clean samples: how much the clean samples still push the gradient."""
    mean_abs_dloss_noisy: torch.Tensor
    """Mean |ℓ'_i| over noisy samples."""
    W: torch.Tensor
    """Final weights W^{(steps)}, shape (2, m, d)."""
    W0: torch.Tensor
    """Initial weights W^{(0)}."""
    eta: float
    """Step size η."""

    @property
    def sample_loss(self) -> torch.Tensor:
        """ℓ(ỹ_i f(W^{(t)}, x_i)) per recorded step and sample, shape (T, n)."""
        return logistic_loss(self.margin)

    @property
    def rho_bar(self) -> torch.Tensor:
        """ρ̄ = ρ·1(ρ ≥ 0), shape (T, 2, m, n)."""
        return self.rho.clamp(min=0)

    @property
    def rho_under(self) -> torch.Tensor:
        """ρ̲ = ρ·1(ρ ≤ 0), shape (T, 2, m, n)."""
        return self.rho.clamp(max=0)

    def t_clean_fit(self) -> int | None:
        """The clean-fit time: the first recorded step at which every clean sample is fitted (ỹ_i f > 0, i ∈ S_t).

        This is *not* the end of Stage I.  With a small initialisation it comes after a handful of steps, while
        γ and ρ̄ are still far below Θ(1): it is an initialisation clock, of order σ₀ n√m/(η σ_ξ √d) (Chapter 9).
        The end of Stage I, T₁, is the last step of :func:`lnfl.stages.stage_one_window`.  Returns ``None`` if
        not every clean sample is fitted within the recorded steps.
        """
        hits = (self.train_acc_clean >= 1.0).nonzero()
        return int(self.t[hits[0, 0]]) if hits.numel() else None

    def at(self, step: int) -> int:
        """Index into the time axis of the recorded step ``step`` (which must have been recorded)."""
        step = check_int("step", step, minimum=0)
        hits = (self.t == step).nonzero()
        if hits.numel() == 0:
            raise ValueError(f"step {step} was not recorded; recorded steps run from 0 to {int(self.t[-1])}")
        return int(hits[0, 0])


#: The book's reference configuration (Chapter 2) (n·SNR² = 16, so ‖μ‖ = √32).
REFERENCE: dict[str, float | int] = {
    "d": 400,
    "n": 200,
    "m": 20,
    "n_snr2": 16.0,
    "sigma_xi": 1.0,
    "sigma0": 0.01,
    "tau_plus": 0.2,
    "tau_minus": 0.2,
    "eta": 0.1,
}


@dataclass
class Setup:
    """Everything a run needs: the data model, training and test data, W⁽⁰⁾ and η."""

    model: SignalNoiseModel
    data: Dataset
    test: Dataset
    W0: torch.Tensor
    eta: float

    def __post_init__(self) -> None:
        """Validate each field (a model, two Datasets of its d, W⁽⁰⁾ for the data, η > 0); W0 comes detached."""
        check_instance("model", self.model, SignalNoiseModel, "an lnfl.data.SignalNoiseModel")
        check_dataset("test", self.test)
        self.W0 = _check_pair(self.W0, self.data, "W0", "data")
        if self.model.d != self.data.d or self.test.d != self.data.d:
            raise ValueError(f"model, data and test must share d, got {self.model.d}, {self.data.d}, {self.test.d}")
        self.eta = check_positive("eta", self.eta)

    def train(self, steps: int = 3000, record_every: int = 1) -> History:
        """:func:`train` on this setup, with its test set."""
        return train(self.W0, self.data, eta=self.eta, steps=steps, record_every=record_every, test=self.test)


def setup(seed: int = 0, n_test: int = 2000, dtype: torch.dtype = torch.float64, **overrides: float) -> Setup:
    """The reference configuration (:data:`REFERENCE`, Chapter 2), with any of its keys overridden.

    ``seed`` seeds the training data and W⁽⁰⁾; the test set (``n_test`` samples from the same model,
    labels flipped at the same rates) uses seed 10_000 + ``seed``.

    >>> s = setup(seed=0, tau_plus=0.0, tau_minus=0.0)   # the noiseless twin of the reference run
    >>> hist = s.train(steps=3000, record_every=10)
    """
    check_keys("overrides", overrides, REFERENCE)
    seed = check_int("seed", seed, minimum=0, maximum=MAX_SEED - 10_000)  # the test set uses 10_000 + seed
    n_test = check_int("n_test", n_test)
    check_dtype("dtype", dtype)
    cfg = {**REFERENCE, **overrides}
    model = SignalNoiseModel.from_n_snr2(
        d=cfg["d"],
        n=cfg["n"],
        n_snr2=cfg["n_snr2"],
        sigma_xi=cfg["sigma_xi"],
        tau_plus=cfg["tau_plus"],
        tau_minus=cfg["tau_minus"],
        dtype=dtype,
    )
    data = model.sample(cfg["n"], seed=seed)
    test = model.sample(n_test, seed=10_000 + seed)
    W0 = init_weights(cfg["m"], cfg["d"], cfg["sigma0"], seed=seed, dtype=dtype)
    return Setup(model, data, test, W0, check_positive("eta", cfg["eta"]))


def _run(
    engine: str,
    W0s: Sequence[torch.Tensor],
    datas: Sequence[Dataset],
    etas: Sequence[float],
    steps: int,
    record_every: int,
    tests: Sequence[Dataset | SignalNoiseModel | None],
    rho_dtype: torch.dtype | None,
    name: _engine.Names,
) -> list[History]:
    """Pick the engine ("auto": projections when n < d, where they are the cheaper state) and run it;
    ``name(k, field)`` names configuration k's arguments in errors as the caller wrote them."""
    check_choice("engine", engine, ("auto", "weights", "coef"))
    if engine == "auto":
        engine = "coef" if datas and isinstance(datas[0], Dataset) and datas[0].n < datas[0].d else "weights"
    space = _engine.CoefSpace if engine == "coef" else _engine.WeightSpace
    try:
        runs = _engine._run_gd(space, W0s, datas, etas, steps, record_every, tests, rho_dtype, name)
    except _engine.Diverged as e:
        t, k, _ = e.args
        where = f" (configuration {k})" if len(datas) > 1 else ""
        raise TrainingDivergedError(f"training diverged at step {t}{where}: {e.cause}") from None
    return [History(**fields) for fields in runs]


def train(
    W0: torch.Tensor,
    data: Dataset,
    eta: float = 0.1,
    steps: int = 3000,
    record_every: int = 1,
    test: Dataset | SignalNoiseModel | None = None,
    rho_dtype: torch.dtype | None = None,
    engine: str = "auto",
) -> History:
    """Run ``steps`` steps of full-batch GD from W⁽⁰⁾ on ``data`` with step size η = ``eta``.

    Records, at step 0, every ``record_every`` steps and at the last step, the loss, the decomposition
    coefficients γ and ρ (by the exact recursion, Chapter 4), the margins ỹ_i f and the accuracies listed
    in :class:`History`.

    - ``test``: a :class:`~lnfl.data.Dataset` (accuracy on it, against its true labels y and its observed labels
      ỹ), a :class:`~lnfl.data.SignalNoiseModel` (accuracy on the model's whole distribution, from the Gaussian
      of the projections ⟨w_{j,r}, ξ⟩, :data:`lnfl.engine.GAUSSIAN_TEST_DRAWS` fixed draws) or ``None``.
    - ``rho_dtype=torch.float32`` stores ρ in half the memory where exactness is not at stake (training itself
      stays in W's dtype).  Long runs stay small with ``record_every``.
    - ``engine``: ``"weights"`` keeps W and costs O(m n d) per step; ``"coef"`` keeps only the projections
      (:mod:`lnfl.engine`) and costs O(m n²) per step whatever d; ``"auto"`` (default) takes ``"coef"`` when
      n < d.  Both give the same History up to rounding.

    Every argument is checked before the first step; a history too large to keep (huge ``steps`` recorded
    every step) is refused with the memory it would need.  Raises :class:`TrainingDivergedError`, naming the
    step and the cause, if the run becomes non-finite.
    """
    return _run(engine, [W0], [data], [eta], steps, record_every, [test], rho_dtype, lambda k, f: f)[0]


def train_batch(
    setups: Sequence[Setup],
    steps: int = 3000,
    record_every: int = 1,
    test: str = "sample",
    rho_dtype: torch.dtype | None = None,
    engine: str = "auto",
) -> list[History]:
    """:func:`train` on K setups at once (same n, m and d; any seeds, τ, n·SNR², η): one History per setup,
    equal to K separate runs up to rounding, computed with batched matrix products.

    ``test`` is ``"sample"`` (each setup's test set), ``"gaussian"`` (each setup's model: the whole
    distribution, see :func:`train`) or ``"none"``.

    >>> hists = train_batch([setup(seed=s, tau_plus=0.1, tau_minus=0.1) for s in range(4)], steps=1000)
    """
    if not isinstance(setups, Sequence) or not setups or not all(isinstance(s, Setup) for s in setups):
        raise TypeError("setups must be a non-empty list of lnfl.training.Setup (from lnfl.training.setup)")
    check_choice("test", test, ("sample", "gaussian", "none"))
    tests = [{"sample": s.test, "gaussian": s.model, "none": None}[test] for s in setups]
    W0s, datas, etas = [s.W0 for s in setups], [s.data for s in setups], [s.eta for s in setups]
    fields = {"W0": "W0", "data": "data", "eta": "eta", "test": "model" if test == "gaussian" else "test"}
    return _run(
        engine, W0s, datas, etas, steps, record_every, tests, rho_dtype, lambda k, f: f"setups[{k}].{fields[f]}"
    )
