"""Full-batch gradient descent on L_S with the γ/ρ recursion of theory.md §4 kept alongside.

w_{j,r}^{(t+1)} = w_{j,r}^{(t)} − η ∇_{w_{j,r}} L_S(W^{(t)})
γ^{(t+1)}_{j,r}   = γ^{(t)}_{j,r}   − (η‖μ‖²/(nm)) Σ_i ℓ'_i ỹ_i y_i σ'(⟨w_{j,r}^{(t)}, y_i μ⟩)
ρ^{(t+1)}_{j,r,i} = ρ^{(t)}_{j,r,i} − (η/(nm)) ℓ'_i · j ỹ_i · σ'(⟨w_{j,r}^{(t)}, ξ_i⟩) ‖ξ_i‖²
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._validate import check_int, check_positive
from .data import Dataset, SignalNoiseModel
from .model import (
    _check_pair,
    _gd_coefficients,
    _output,
    _projections,
    _sign_j,
    dloss,
    init_weights,
    logistic_loss,
)

__all__ = ["REFERENCE", "History", "Setup", "TrainingDivergedError", "setup", "train"]


class TrainingDivergedError(FloatingPointError):
    """Raised when the training loss stops being finite; the message names the step and suggests a smaller η."""


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

    def t1_hat(self) -> int | None:
        """T̂₁, the empirical end of Stage I: the first recorded step at which every clean sample is fitted.

        Returns ``None`` if that never happens within the recorded steps.
        """
        hits = (self.train_acc_clean >= 1.0).nonzero()
        return int(self.t[hits[0, 0]]) if hits.numel() else None

    def at(self, step: int) -> int:
        """Index into the time axis of the recorded step ``step`` (which must have been recorded)."""
        hits = (self.t == step).nonzero()
        if hits.numel() == 0:
            raise ValueError(f"step {step} was not recorded; recorded steps run from 0 to {int(self.t[-1])}")
        return int(hits[0, 0])


#: theory.md §6, the book's reference configuration (n·SNR² = 16, so ‖μ‖ = √32).
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

    def train(self, steps: int = 3000, record_every: int = 1) -> History:
        """:func:`train` on this setup, with its test set."""
        return train(self.W0, self.data, eta=self.eta, steps=steps, record_every=record_every, test=self.test)


def setup(seed: int = 0, n_test: int = 2000, dtype: torch.dtype = torch.float64, **overrides: float) -> Setup:
    """The reference configuration (:data:`REFERENCE`, theory.md §6), with any of its keys overridden.

    ``seed`` seeds the training data and W⁽⁰⁾; the test set (``n_test`` samples from the same model,
    labels flipped at the same rates) uses seed 10_000 + ``seed``.

    >>> s = setup(seed=0, tau_plus=0.0, tau_minus=0.0)   # the noiseless twin of the reference run
    >>> hist = s.train(steps=3000, record_every=10)
    """
    unknown = set(overrides) - set(REFERENCE)
    if unknown:
        raise TypeError(f"unknown configuration key(s) {sorted(unknown)}; valid keys are {sorted(REFERENCE)}")
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
    test = model.sample(check_int("n_test", n_test), seed=10_000 + seed)
    W0 = init_weights(cfg["m"], cfg["d"], cfg["sigma0"], seed=seed, dtype=dtype)
    return Setup(model, data, test, W0, check_positive("eta", cfg["eta"]))


def train(
    W0: torch.Tensor,
    data: Dataset,
    eta: float = 0.1,
    steps: int = 3000,
    record_every: int = 1,
    test: Dataset | None = None,
) -> History:
    """Run ``steps`` steps of full-batch GD from W⁽⁰⁾ on ``data`` with step size η = ``eta``.

    Records, at step 0, every ``record_every`` steps and at the last step, the loss, the decomposition
    coefficients γ and ρ (by the exact recursion, theory.md §4), the margins ỹ_i f and the accuracies listed
    in :class:`History`.  If ``test`` is given, test accuracy is measured against its true labels y and
    against its observed labels ỹ.  Raises :class:`TrainingDivergedError` if the loss becomes non-finite.
    """
    W0 = _check_pair(W0, data)
    eta = check_positive("eta", eta)
    steps = check_int("steps", steps, minimum=0)
    record_every = check_int("record_every", record_every)
    if test is not None:
        if not isinstance(test, Dataset):
            raise TypeError(f"test must be an lnfl.data.Dataset or None, got {type(test).__name__}")
        _check_pair(W0, test)

    m = W0.shape[1]
    n = data.n
    j = _sign_j(W0)
    mu_sq = data.mu.dot(data.mu)
    xi_sq = (data.xi * data.xi).sum(dim=1)  # ‖ξ_i‖², (n,)
    clean, noisy = data.clean, data.noisy

    W = W0.clone()
    gamma = torch.zeros(2, m, dtype=W0.dtype, device=W0.device)
    rho = torch.zeros(2, m, n, dtype=W0.dtype, device=W0.device)
    rec: dict[str, list] = {k: [] for k in ("t", "loss", "gamma", "rho", "margin", "scalars")}
    # group sums over S_t and S_f, divided afterwards so "all fitted" is exactly 1.0 (NaN for an empty set)
    n_clean, n_noisy = int(clean.sum()), int(noisy.sum())
    clean_f, noisy_f = clean.to(W0.dtype), noisy.to(W0.dtype)
    inv_clean = 1.0 / n_clean if n_clean else float("nan")
    inv_noisy = 1.0 / n_noisy if n_noisy else float("nan")
    nan2 = torch.full((2,), float("nan"), dtype=W0.dtype, device=W0.device)

    for t in range(steps + 1):
        w_mu, w_xi = _projections(W, data)
        margin, a, b = _gd_coefficients(w_mu, w_xi, data)
        if not bool(torch.isfinite(margin).all()):
            raise TrainingDivergedError(
                f"training diverged at step {t}: the network output became non-finite with eta={eta:g}; "
                f"try a smaller step size, e.g. eta={eta / 10:g}"
            )
        if t % record_every == 0 or t == steps:
            fitted = (margin > 0).to(W.dtype)
            true_ok = (data.y * data.y_obs * margin > 0).to(W.dtype)  # y_i f > 0
            abs_dl = -dloss(margin)
            if test is not None:
                f_test = _output(*_projections(W, test), test.y)
                test_stats = torch.stack(
                    [(f_test * test.y > 0).to(W.dtype).mean(), (f_test * test.y_obs > 0).to(W.dtype).mean()]
                )
            else:
                test_stats = nan2
            rec["t"].append(t)
            rec["loss"].append(logistic_loss(margin).mean())
            rec["gamma"].append(gamma)
            rec["rho"].append(rho)
            rec["margin"].append(margin)
            rec["scalars"].append(
                torch.cat(
                    [
                        torch.stack(
                            [
                                fitted.sum() / n,
                                (fitted @ clean_f) * inv_clean,
                                (fitted @ noisy_f) * inv_noisy,
                                (true_ok @ noisy_f) * inv_noisy,
                            ]
                        ),
                        test_stats,
                        torch.stack([(abs_dl @ clean_f) * inv_clean, (abs_dl @ noisy_f) * inv_noisy]),
                    ]
                )
            )
        if t == steps:
            break
        W = W - eta * (a[:, :, None] * data.mu + b @ data.xi)
        gamma = gamma - eta * mu_sq * j * a
        rho = rho - eta * xi_sq * b

    sc = torch.stack(rec["scalars"]).to(torch.float64)
    return History(
        t=torch.tensor(rec["t"]),
        loss=torch.stack(rec["loss"]),
        gamma=torch.stack(rec["gamma"]),
        rho=torch.stack(rec["rho"]),
        margin=torch.stack(rec["margin"]),
        train_acc=sc[:, 0],
        train_acc_clean=sc[:, 1],
        train_acc_noisy=sc[:, 2],
        noisy_true_acc=sc[:, 3],
        test_acc=sc[:, 4],
        test_acc_noisy_labels=sc[:, 5],
        mean_abs_dloss_clean=sc[:, 6],
        mean_abs_dloss_noisy=sc[:, 7],
        W=W,
        W0=W0,
        eta=eta,
    )
