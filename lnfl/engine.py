"""The numerical core of :func:`lnfl.training.train`: gradient descent seen through the projections.

Every input x_i has two patches, y_i μ and ξ_i, so all the patches of the training set are the rows of

    Z = [μ; −μ; ξ_1; …; ξ_n]  ∈ ℝ^{(n+2)×d},

and the network sees its weights only through the projections P = W Zᵀ (2m × (n+2)).  Its gradient is Λ Z
for a coefficient matrix Λ (:func:`coefficients`; Chapter 9); since every update lies in span{μ, ξ_i} (Chapter 4),

    W^(t) = W^(0) + A^(t) Z,   A^(t+1) = A^(t) − ηΛ^(t),   γ_{j,r} = j (A_{j,r,μ} − A_{j,r,−μ}) ‖μ‖²,   ρ_{j,r,i} = A_{j,r,ξ_i} ‖ξ_i‖².

Two interchangeable ways to hold the state, for K configurations with the same n, m, d at once:

- :class:`WeightSpace` keeps W: per step P = W Zᵀ and W ← W − ηΛ Z, two batched products of 2·K·2m(n+2)d flops.
- :class:`CoefSpace` keeps P only: P ← P − ηΛ G with the Gram matrix G = Z Zᵀ, one product of 2·K·2m(n+2)²
  flops, **whatever d is**.  The cost in d is paid once (G, W⁽⁰⁾Zᵀ, W⁽⁰⁾W⁽⁰⁾ᵀ: about 2(n+2)(n+2+2m)d flops),
  and the final W is rebuilt once as W⁽⁰⁾ + A Z.

Test accuracy needs no weights either: on a test set with patches X = [μ; −μ; ξ'_1; …],
W Xᵀ = W⁽⁰⁾Xᵀ + A (Z Xᵀ) from the cross-Gram matrix Z Xᵀ; on the model's whole distribution,
(⟨w_{j,r}, ξ⟩)_{j,r} for a fresh ξ ~ N(0, σ_ξ² I) is a 2m-dimensional Gaussian with covariance σ_ξ² W Wᵀ, and
W Wᵀ = W⁽⁰⁾W⁽⁰⁾ᵀ + W⁽⁰⁾Zᵀ Aᵀ + A Z W⁽⁰⁾ᵀ + A G Aᵀ is built from Gram matrices alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ._validate import (
    check_dataset,
    check_dtype,
    check_int,
    check_positive,
    check_recording,
    check_sequence,
    check_tensor,
    describe,
    input_scale_cause,
    step_size_cause,
)
from .data import Dataset, SignalNoiseModel
from .model import _check_pair, _dloss, _logistic_loss

__all__ = ["GAUSSIAN_TEST_DRAWS", "WeightSpace", "CoefSpace", "outputs", "coefficients", "run_gd", "Diverged"]

#: Fixed draws of the Gaussian of test projections used when the test set is a SignalNoiseModel
#: (Monte Carlo error of an accuracy p: √(p(1 − p)/draws) ≤ 0.004).
GAUSSIAN_TEST_DRAWS = 16384

TestSpec = Dataset | SignalNoiseModel | None


class Diverged(FloatingPointError):
    """A run became non-finite (lnfl.training re-raises it as TrainingDivergedError).

    ``args`` are (step, configuration, eta); ``cause`` says why in words: the inputs do not fit the dtype
    (step 0: no step size can help) or the step size is too large for the inputs' scale.
    """

    def __init__(self, step: int, k: int, eta: float, cause: str = "") -> None:
        super().__init__(step, k, eta)
        self.cause = cause


def _check_space(W0: object, Z: object, X: object) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """W⁽⁰⁾ (K, 2m, d), patches Z (K, n+2, d), test patches X (K, p, d) or None: one dtype and device."""
    W0 = check_tensor("W0", W0, shape=("K", "2m", "d"))
    K, _, d = W0.shape
    Z = check_tensor("Z", Z, shape=(K, "n+2", d), context=f"K = {K}, d = {d} from W0", like=("W0", W0))
    if X is not None:
        X = check_tensor("X", X, shape=(K, "p", d), context=f"K = {K}, d = {d} from W0", like=("W0", W0))
    return W0, Z, X


class WeightSpace:
    """W^(t) kept explicitly: per step P = W Zᵀ and W ← W − ηΛ Z.  ``X``: test inputs (K, p, d) or None."""

    def __init__(self, W0: torch.Tensor, Z: torch.Tensor, X: torch.Tensor | None) -> None:
        self._init(*_check_space(W0, Z, X))

    def _init(self, W0: torch.Tensor, Z: torch.Tensor, X: torch.Tensor | None) -> None:
        self.W, self.Z, self.X = W0.clone(), Z, X
        self.P = torch.bmm(self.W, Z.transpose(1, 2))

    def step(self, eta_C: torch.Tensor) -> None:
        """W ← W − (ηΛ) Z, then P = W Zᵀ."""
        self.W.baddbmm_(eta_C, self.Z, alpha=-1.0)
        self.P = torch.bmm(self.W, self.Z.transpose(1, 2))

    def test_projections(self, A: torch.Tensor) -> torch.Tensor:
        """W Xᵀ, shape (K, 2m, p)."""
        return torch.bmm(self.W, self.X.transpose(1, 2))

    def weight_gram(self, A: torch.Tensor) -> torch.Tensor:
        """W Wᵀ, shape (K, 2m, 2m)."""
        return torch.bmm(self.W, self.W.transpose(1, 2))

    def weights(self, A: torch.Tensor) -> torch.Tensor:
        return self.W


class CoefSpace:
    """The state as projections P (K, 2m, n+2) and Gram matrices; per-step cost O(K m n²), free of d."""

    def __init__(self, W0: torch.Tensor, Z: torch.Tensor, X: torch.Tensor | None) -> None:
        self._init(*_check_space(W0, Z, X))

    def _init(self, W0: torch.Tensor, Z: torch.Tensor, X: torch.Tensor | None) -> None:
        Zt = Z.transpose(1, 2)
        self.W0, self.Z = W0, Z
        self.G = torch.bmm(Z, Zt)  # G = Z Zᵀ, (K, n+2, n+2)
        self.P0 = torch.bmm(W0, Zt)  # W⁽⁰⁾ Zᵀ, (K, 2m, n+2)
        self.P = self.P0.clone()
        self.W0W0 = torch.bmm(W0, W0.transpose(1, 2))  # W⁽⁰⁾ W⁽⁰⁾ᵀ, (K, 2m, 2m)
        if X is not None:
            self.H = torch.bmm(Z, X.transpose(1, 2))  # cross-Gram Z Xᵀ, (K, n+2, p)
            self.Q0 = torch.bmm(W0, X.transpose(1, 2))  # W⁽⁰⁾ Xᵀ, (K, 2m, p)

    def step(self, eta_C: torch.Tensor) -> None:
        """P ← P − (ηΛ) G: the GD step seen through the projections."""
        self.P.baddbmm_(eta_C, self.G, alpha=-1.0)

    def test_projections(self, A: torch.Tensor) -> torch.Tensor:
        """W Xᵀ = W⁽⁰⁾ Xᵀ + A (Z Xᵀ)."""
        return torch.baddbmm(self.Q0, A, self.H)

    def weight_gram(self, A: torch.Tensor) -> torch.Tensor:
        """W Wᵀ = W⁽⁰⁾W⁽⁰⁾ᵀ + W⁽⁰⁾Zᵀ Aᵀ + A Z W⁽⁰⁾ᵀ + A G Aᵀ."""
        cross = torch.bmm(self.P0, A.transpose(1, 2))
        return self.W0W0 + cross + cross.transpose(1, 2) + torch.bmm(torch.bmm(A, self.G), A.transpose(1, 2))

    def weights(self, A: torch.Tensor) -> torch.Tensor:
        """W = W⁽⁰⁾ + A Z (one product, cost n·d, at the end)."""
        return torch.baddbmm(self.W0, A, self.Z)


def _signs(m: int, like: torch.Tensor) -> torch.Tensor:
    """j for the 2m filters in the flattened order (j = +1: r = 1..m, then j = −1: r = 1..m)."""
    return torch.cat([torch.ones(m), -torch.ones(m)]).to(dtype=like.dtype, device=like.device)


def _inputs(data: Dataset) -> torch.Tensor:
    """Z = [μ; −μ; ξ_1; …; ξ_n], shape (n + 2, d): every patch any sample has (its signal patch y_i μ is ±μ)."""
    return torch.cat([data.mu[None, :], -data.mu[None, :], data.xi], dim=0)


def _signal_row(y: torch.Tensor) -> torch.Tensor:
    """c_i, the row of Z holding sample i's signal patch: 0 (μ) when y_i = +1, 1 (−μ) when y_i = −1; (K, n)."""
    return (y < 0).long()


def _incidence(y: torch.Tensor) -> torch.Tensor:
    """Eᵀ (K, n, n + 2): E_{z,i} = 1 when row z of Z is one of sample i's two patches (c_i and 2 + i)."""
    K, n = y.shape
    E_T = torch.zeros(K, n, n + 2, dtype=y.dtype, device=y.device)
    E_T.scatter_(2, _signal_row(y)[:, :, None], 1.0)
    E_T[:, torch.arange(n), 2 + torch.arange(n)] = 1.0
    return E_T


def _check_kernel(S: object, j: object) -> tuple[torch.Tensor, torch.Tensor]:
    """S = σ(P) (K, 2m, n + 2), finite and ≥ 0; j (2m,) of signs ±1 in S's dtype."""
    S = check_tensor("S", S, shape=("K", "2m", "n+2"), context="activations σ(P) on the rows of Z")
    if S.shape[1] % 2 or S.shape[2] < 3:
        raise ValueError(f"S must have shape (K, 2m, n + 2) with an even 2m and n >= 1, got {describe(S)}")
    if bool((S < 0).any()):
        raise ValueError("S must hold activations σ(P) = max(P, 0) >= 0, found a negative entry")
    j = check_tensor("j", j, shape=(S.shape[1],), context="one sign per filter, 2m from S", like=("S", S))
    if not bool(((j == 1) | (j == -1)).all()):
        raise ValueError("j must hold the second-layer signs +1 and -1 only")
    return S, j


def outputs(S: torch.Tensor, c: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """f(W, x_i) = (1/m) Σ_{j,r} j [σ(⟨w_{j,r}, y_i μ⟩) + σ(⟨w_{j,r}, ξ_i⟩)], shape (K, n).

    S = σ(P) (K, 2m, n + 2): the activations on the rows of Z = [μ; −μ; ξ_1; …]; c_i (K, n) is the row of sample i's signal patch (0 for μ when y_i = +1, 1 for −μ).
    """
    S, j = _check_kernel(S, j)
    K, n = S.shape[0], S.shape[2] - 2
    if not isinstance(c, torch.Tensor) or c.dtype != torch.int64 or tuple(c.shape) != (K, n):
        raise TypeError(f"c must be an int64 tensor of shape ({K}, {n}) (K, n from S), got {describe(c)}")
    if not bool(((c == 0) | (c == 1)).all()):
        raise ValueError("c must hold signal rows 0 (μ, y_i = +1) and 1 (−μ, y_i = −1) only")
    return _outputs(S, c.to(S.device), j)


def _outputs(S: torch.Tensor, c: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    F = j @ S  # Σ_{j,r} j σ(⟨w_{j,r}, z⟩) for every row z of Z, (K, n + 2)
    return (F.gather(1, c) + F[:, 2:]) / (S.shape[1] // 2)


def coefficients(S: torch.Tensor, q: torch.Tensor, E_T: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """Λ, with ∇_{w_{j,r}} L_S = Σ_z Λ_{j,r,z} z over the rows z of Z, given S = σ(P) and q_i = ℓ'_i ỹ_i/(nm).

    ∇_{w_{j,r}} L_S = Σ_i q_i j Σ_{patches z of x_i} σ'(⟨w_{j,r}, z⟩) z, so Λ_{j,r,z} = j σ'(⟨w_{j,r}, z⟩) (q Eᵀ)_z:
    (q Eᵀ)_μ = Σ_{y_i=+1} q_i, (q Eᵀ)_{−μ} = Σ_{y_i=−1} q_i, (q Eᵀ)_{ξ_i} = q_i.  σ'(z) = 1(z > 0) as in PyTorch,
    computed as sign(σ(z)).  Shape (K, 2m, n + 2).
    """
    S, j = _check_kernel(S, j)
    K, n = S.shape[0], S.shape[2] - 2
    q = check_tensor("q", q, shape=(K, n), context=f"K = {K}, n = {n} from S", like=("S", S))
    E_T = check_tensor("E_T", E_T, shape=(K, n, n + 2), context=f"K = {K}, n = {n} from S", like=("S", S))
    return _coefficients(S, q, E_T, j)


def _coefficients(S: torch.Tensor, q: torch.Tensor, E_T: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    return torch.sign(S) * (j[:, None] * torch.bmm(q[:, None, :], E_T))


def _gaussian_test(space, A: torch.Tensor, P_mu: torch.Tensor, models, j: torch.Tensor, u: torch.Tensor):
    """Test accuracy against true and observed labels on the models' distributions, shape (K, 2).

    g = L u with L Lᵀ = σ_ξ² W Wᵀ and fixed standard normal draws u; f = s_y + (1/m) Σ j σ(g) where
    s_y = (1/m) Σ j σ(y⟨w, μ⟩).  Labels are balanced and the observed test label flips at τ₊ (y = +1) or τ₋
    (y = −1).  A prediction is right when ỹ f > 0, as on a sample: an output f = 0 (every ReLU off) is wrong
    against either label, so P(f < 0 | y = +1) is counted on its own, not as 1 − P(f > 0 | y = +1).
    """
    m, dt = P_mu.shape[1] // 2, A.dtype
    sigma2 = torch.tensor([mo.sigma_xi**2 for mo in models], dtype=dt, device=A.device)
    evals, evecs = torch.linalg.eigh(sigma2[:, None, None] * space.weight_gram(A))
    L = evecs * evals.clamp(min=0).sqrt()[:, None, :]
    h = (torch.relu(u @ L.transpose(1, 2)) @ j) / m  # the noise part of f, (K, draws)
    f_pos = (torch.relu(P_mu) @ j / m)[:, None] + h  # f on the draws, given y = +1
    f_neg = (torch.relu(-P_mu) @ j / m)[:, None] + h  # ... given y = −1
    p_pos, q_pos = (f_pos > 0).to(dt).mean(1), (f_pos < 0).to(dt).mean(1)  # P(f > 0 | +1), P(f < 0 | +1)
    p_neg, q_neg = (f_neg < 0).to(dt).mean(1), (f_neg > 0).to(dt).mean(1)  # P(f < 0 | −1), P(f > 0 | −1)
    tp, tm = (
        torch.tensor([getattr(mo, k) for mo in models], dtype=dt, device=A.device) for k in ("tau_plus", "tau_minus")
    )
    noisy = ((1 - tp) * p_pos + tp * q_pos + (1 - tm) * p_neg + tm * q_neg) / 2
    return torch.stack([(p_pos + p_neg) / 2, noisy], dim=1)


Names = Callable[[int, str], str]


def _scale_cause(data: Dataset, data_name: str) -> str | None:
    """Why ``data`` cannot be trained on in its dtype, or None: a squared patch norm ‖μ‖² or ‖ξ_i‖² that is
    not finite (γ = A_μ‖μ‖², ρ = A_i‖ξ_i‖² and the Gram matrix need them)."""
    for field, rows in (("mu", data.mu[None, :]), ("xi", data.xi)):
        if not bool(torch.isfinite((rows * rows).sum(-1)).all()):
            big = float(rows.abs().max())
            what = "‖μ‖²" if field == "mu" else "‖ξ_i‖²"
            return input_scale_cause(f"{data_name}.{field} (entries up to {big:.3g}, so {what} overflows)", rows.dtype)
    return None


def _check_configs(
    W0s: object, datas: object, etas: object, tests: object, name: Names
) -> tuple[list[torch.Tensor], list[Dataset], list[float], list[TestSpec]]:
    """Validate K configurations (W⁽⁰⁾, data, η, test) that run as one batch; ``name(k, field)`` is how the
    caller wrote argument ``field`` of configuration k (``"W0"``, ``"setups[2].W0"``, ``"W0s[2]"``)."""
    lists = [
        check_sequence(f"{f}s", v, lambda _, x: x)
        for f, v in zip(("W0", "data", "eta", "test"), (W0s, datas, etas, tests), strict=True)
    ]
    W0s, datas, etas, tests = lists
    if not len(W0s) == len(datas) == len(etas) == len(tests):
        raise ValueError(
            f"a batch needs as many W0s, datas, etas and tests, got {len(W0s)}, {len(datas)}, {len(etas)}, {len(tests)}"
        )
    for k in range(len(datas)):
        data_name, data = name(k, "data"), datas[k]
        W0s[k] = _check_pair(W0s[k], data, name(k, "W0"), data_name)  # checks data first
        etas[k] = check_positive(name(k, "eta"), etas[k])
        test, test_name = tests[k], name(k, "test")
        if isinstance(test, Dataset):
            check_dataset(test_name, test)
            if test.d != data.d:
                raise ValueError(f"{test_name} must have the training data's d = {data.d}, got {test!r}")
            check_tensor(f"{test_name}.xi", test.xi, like=(f"{data_name}.xi", data.xi), finite=False)
            if (cause := _scale_cause(test, test_name)) is not None:
                raise ValueError(cause)
        elif isinstance(test, SignalNoiseModel):
            limit = torch.finfo(data.xi.dtype).max ** 0.5
            if test.sigma_xi > limit:
                raise ValueError(
                    f"{test_name}.sigma_xi = {test.sigma_xi:g} is too large for {data.xi.dtype}: σ_ξ² overflows "
                    f"(σ_ξ must stay below {limit:.3g})"
                )
            if test.d != data.d or not torch.allclose(test.mu.to(data.mu), data.mu):
                raise ValueError(
                    f"{test_name} model must have the training data's d = {data.d} and μ, got d = {test.d}"
                )
        elif test is not None:
            raise TypeError(
                f"{test_name} must be an lnfl.data.Dataset, an lnfl.data.SignalNoiseModel or None, got {describe(test)}"
            )
        first = (W0s[0].shape, datas[0].n, datas[0].xi.dtype, datas[0].xi.device, type(tests[0]))
        if (W0s[k].shape, data.n, data.xi.dtype, data.xi.device, type(test)) != first:
            raise ValueError(
                f"configuration {k} differs from configuration 0 in m, d, n, dtype, device or kind of test; "
                "a batch needs the same n, m and d everywhere"
            )
        if isinstance(test, Dataset) and test.n != tests[0].n:
            raise ValueError(f"test sets must have the same size, got {tests[0].n} and {test.n} (configuration {k})")
    return W0s, datas, etas, tests


def _record_bytes(K: int, n: int, m: int, dtype: torch.dtype, rho_dtype: torch.dtype) -> int:
    """Memory per recorded step of a batch of K runs: ρ, the margins and γ, and the arrays built from
    them at the end (loss, accuracies, |ℓ'|)."""
    isz, rsz = torch.finfo(dtype).bits // 8, torch.finfo(rho_dtype).bits // 8
    return K * (8 * n * isz + 8 * m * isz + 2 * m * n * rsz)


class _Records:
    """The records of K runs (step 0, every ``record_every`` steps and the last one), written in place into
    buffers sized once, so a long history never exists twice in memory; :meth:`fields` turns them into the
    fields of one :class:`lnfl.training.History` per run.  Shared by :func:`run_gd` and
    :func:`lnfl.beyond.train_sgd_batch`."""

    def __init__(self, K: int, n: int, m: int, steps: int, record_every: int, dt: torch.dtype, dev, rho_dtype) -> None:
        self.steps, self.every = steps, record_every
        self.ts = [*range(0, steps + 1, record_every)] + ([steps] if steps % record_every else [])
        T = len(self.ts)
        self.M = torch.empty(K, T, n, dtype=dt, device=dev)  # margins ỹ_i f
        self.A_mu = torch.empty(K, T, 2 * m, dtype=dt, device=dev)  # the coefficient of μ (rows μ and −μ of Z)
        self.rho = torch.empty(K, T, 2 * m, n, dtype=rho_dtype or dt, device=dev)
        self.tst = torch.full((K, T, 2), float("nan"), dtype=dt, device=dev)  # test accuracy: y and ỹ
        self.rec = 0

    def due(self, t: int) -> bool:
        """Whether step ``t`` is recorded."""
        return t % self.every == 0 or t == self.steps

    def write(self, margin: torch.Tensor, A: torch.Tensor, test_acc: torch.Tensor | None = None) -> None:
        """Record the margins, the coefficients A and (K, 2) test accuracies of the current step."""
        self.M[:, self.rec] = margin
        self.A_mu[:, self.rec] = A[:, :, 0] - A[:, :, 1]
        self.rho[:, self.rec] = A[:, :, 2:]
        if test_acc is not None:
            self.tst[:, self.rec] = test_acc
        self.rec += 1

    def fields(self, W, y, y_obs, mu_sq, xi_sq, j, W0s, etas, overflow) -> list[dict[str, object]]:
        """γ = j A_μ‖μ‖², ρ_i = A_i‖ξ_i‖² (in place) and everything computed once from the margins: loss,
        accuracies, mean |ℓ'|.  ``overflow(k, what, dtype)`` is raised (it returns the exception) when γ, ρ or
        the final W of run k does not fit its dtype."""
        K, T, n = self.M.shape
        m = W.shape[2]
        gamma = j * self.A_mu * mu_sq[:, None, None]  # (K, T, 2m)
        rho = self.rho.mul_(xi_sq[:, None, None, :].to(self.rho.dtype))
        for k in range(K):  # once, at the end: the bookkeeping itself must fit its dtype
            for what, v in (("γ = A_μ‖μ‖²", gamma[k]), ("ρ = A_i‖ξ_i‖²", rho[k]), ("the final W", W[k])):
                if not bool(torch.isfinite(v).all()):
                    raise overflow(k, what, v.dtype)
        M, dt = self.M, self.M.dtype
        clean = (y_obs == y).to(dt)[:, None, :]
        noisy = 1 - clean

        def over(v: torch.Tensor, S: torch.Tensor) -> torch.Tensor:  # mean over the set S (NaN when S is empty)
            return (v * S).sum(-1) / S.sum(-1)

        fitted = (M > 0).to(dt)
        true_ok = (y[:, None, :] * y_obs[:, None, :] * M > 0).to(dt)  # y_i f > 0
        abs_dl = -_dloss(M)
        return [
            {
                "t": torch.tensor(self.ts),
                "loss": _logistic_loss(M[k]).mean(-1),
                "gamma": gamma[k].reshape(T, 2, m),
                "rho": rho[k].reshape(T, 2, m, n),
                "margin": M[k],
                "train_acc": fitted[k].mean(-1),
                "train_acc_clean": over(fitted[k], clean[k]),
                "train_acc_noisy": over(fitted[k], noisy[k]),
                "noisy_true_acc": over(true_ok[k], noisy[k]),
                "test_acc": self.tst[k, :, 0].to(torch.float64),
                "test_acc_noisy_labels": self.tst[k, :, 1].to(torch.float64),
                "mean_abs_dloss_clean": over(abs_dl[k], clean[k]),
                "mean_abs_dloss_noisy": over(abs_dl[k], noisy[k]),
                "W": W[k],
                "W0": W0s[k],
                "eta": float(etas[k]),
            }
            for k in range(K)
        ]


def run_gd(
    space_type: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], WeightSpace | CoefSpace],
    W0s: Sequence[torch.Tensor],
    datas: Sequence[Dataset],
    etas: Sequence[float],
    steps: int,
    record_every: int,
    tests: Sequence[TestSpec],
    rho_dtype: torch.dtype | None = None,
) -> list[dict[str, object]]:
    """``steps`` GD steps on K configurations at once; one dict of :class:`lnfl.training.History` fields each.

    Per step only P, A and the margins ỹ_i f are touched; at the recorded steps the margins, A and the test
    statistics are kept, and everything else (loss, accuracies, mean |ℓ'|) is computed once at the end.
    All arguments are checked once, before the first step (a history too large to keep is refused with the
    memory it would need).  Raises :class:`Diverged` if a run becomes non-finite, saying why (``cause``).
    """
    return _run_gd(space_type, W0s, datas, etas, steps, record_every, tests, rho_dtype, lambda k, f: f"{f}s[{k}]")


def _run_gd(
    space_type: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], WeightSpace | CoefSpace],
    W0s: Sequence[torch.Tensor],
    datas: Sequence[Dataset],
    etas: Sequence[float],
    steps: int,
    record_every: int,
    tests: Sequence[TestSpec],
    rho_dtype: torch.dtype | None,
    name: Names,
) -> list[dict[str, object]]:
    """:func:`run_gd`, with ``name(k, field)`` naming the arguments in errors as the caller wrote them."""
    if space_type not in (WeightSpace, CoefSpace):
        raise TypeError(
            f"space_type must be lnfl.engine.WeightSpace or lnfl.engine.CoefSpace, got {describe(space_type)}"
        )
    steps = check_int("steps", steps, minimum=0)
    record_every = check_int("record_every", record_every)
    if rho_dtype is not None:
        check_dtype("rho_dtype", rho_dtype)
    W0s, datas, etas, tests = _check_configs(W0s, datas, etas, tests, name)
    K, (_, m, d), n = len(datas), W0s[0].shape, datas[0].n
    dt, dev = W0s[0].dtype, W0s[0].device
    check_recording("steps", steps, record_every, _record_bytes(K, n, m, dt, rho_dtype or dt))
    mu_sq = torch.stack([x.mu.dot(x.mu) for x in datas])  # ‖μ‖²
    xi_sq = torch.stack([(x.xi * x.xi).sum(1) for x in datas])  # ‖ξ_i‖²
    for k, data in enumerate(datas):  # γ = A_μ‖μ‖², ρ = A_i‖ξ_i‖² and the Gram matrix need them finite
        if not bool(torch.isfinite(mu_sq[k]) and torch.isfinite(xi_sq[k]).all()):
            cause = _scale_cause(data, name(k, "data")) or input_scale_cause(f"{name(k, 'data')}", dt)
            raise Diverged(0, k, etas[k], cause)
    W0 = torch.stack(W0s).reshape(K, 2 * m, d)
    y, y_obs = torch.stack([x.y for x in datas]), torch.stack([x.y_obs for x in datas])
    eta = torch.tensor([float(e) for e in etas], dtype=dt, device=dev)
    eta_q = (eta / (n * m))[:, None] * y_obs  # η q_i / ℓ'_i, so that ηC = coefficients(P, ℓ' · eta_q, …)
    c, E_T, j = _signal_row(y), _incidence(y), _signs(m, W0)
    X = torch.stack([_inputs(x) for x in tests]) if isinstance(tests[0], Dataset) else None
    if X is not None:
        yt, yt_obs = torch.stack([x.y for x in tests]), torch.stack([x.y_obs for x in tests])
        ct = _signal_row(yt)
    space = space_type.__new__(space_type)  # the arguments are checked: skip the constructor's checks
    space._init(W0, torch.stack([_inputs(x) for x in datas]), X)
    if isinstance(tests[0], SignalNoiseModel):
        u = torch.randn(GAUSSIAN_TEST_DRAWS, 2 * m, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        u = u.to(dtype=dt, device=dev)

    def diverged(t: int, k: int) -> Diverged:
        """Step 0: the inputs with W⁽⁰⁾ overflow; later: the step size is too large for the inputs' scale."""
        if t == 0:
            what = f"the initial output f(W⁽⁰⁾, x_i) of {name(k, 'W0')} on {name(k, 'data')}"
            return Diverged(0, k, float(etas[k]), input_scale_cause(what, dt))
        scale = (float(mu_sq[k]), float(xi_sq[k].max()), n, m)
        return Diverged(t, k, float(etas[k]), step_size_cause(name(k, "eta"), float(etas[k]), dt, *scale))

    A = torch.zeros(K, 2 * m, n + 2, dtype=dt, device=dev)
    rec = _Records(K, n, m, steps, record_every, dt, dev, rho_dtype)
    for t in range(steps + 1):
        S = torch.relu(space.P)  # σ(⟨w_{j,r}, z⟩) for every patch z
        margin = y_obs * _outputs(S, c, j)
        if not bool(torch.isfinite(margin).all()):
            raise diverged(t, int((~torch.isfinite(margin)).any(1).nonzero()[0, 0]))
        if rec.due(t):
            test_acc = None
            if X is not None:
                ft = _outputs(torch.relu(space.test_projections(A)), ct, j)
                test_acc = torch.stack([(ft * yt > 0).to(dt).mean(1), (ft * yt_obs > 0).to(dt).mean(1)], 1)
            elif tests[0] is not None:
                test_acc = _gaussian_test(space, A, space.P[:, :, 0], tests, j, u)
            rec.write(margin, A, test_acc)
        if t == steps:
            break
        eta_C = _coefficients(S, _dloss(margin) * eta_q, E_T, j)
        A.sub_(eta_C)
        space.step(eta_C)

    def overflow(k: int, what: str, dtype: torch.dtype) -> Diverged:
        return Diverged(steps, k, float(etas[k]), input_scale_cause(f"{what} of {name(k, 'data')}", dtype))

    W = space.weights(A).reshape(K, 2, m, d)
    return rec.fields(W, y, y_obs, mu_sq, xi_sq, j, W0s, etas, overflow)
