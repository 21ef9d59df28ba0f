"""The paper's quantities as functions: SNR, n·SNR², the order of T₁, the Stage I growth ratio, the bounds
of Han et al. (2025), and a report of which conditions a configuration meets.

The paper states its results up to unspecified constants (its Condition 4.1 could not be recovered with
exact constants), so the bounds take the constant C as an argument, and :func:`check_conditions` checks
order-of-magnitude proxies that it names, not the paper's exact inequalities.

Products of powers are computed in logarithms: an input as extreme as ‖μ‖ = 10²⁰⁰ gives either a finite
result or a ``ValueError`` stating the representable range, never an ``OverflowError``, ``inf`` or ``NaN``;
an error bound exp(−x) whose exponent is beyond the float range is exactly 0.0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

from ._validate import check_int, check_positive, check_real, check_tau, positive_result

__all__ = [
    "snr",
    "n_snr2",
    "t1_order",
    "growth_ratio",
    "signal_step",
    "memorisation_step",
    "early_stopping_error_bound",
    "noiseless_error_bound",
    "stage2_error_lower_bound",
    "memorisation_spread",
    "clean_error_estimate",
    "harmful_d_over_n",
    "Condition",
    "check_conditions",
]


def _given(**values: float) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in values.items())


def _log_snr(mu_norm: float, sigma_xi: float, d: int) -> float:
    """log SNR = log ‖μ‖ − log σ_ξ − ½ log d."""
    mu_norm, sigma_xi = check_positive("mu_norm", mu_norm), check_positive("sigma_xi", sigma_xi)
    return math.log(mu_norm) - math.log(sigma_xi) - 0.5 * math.log(check_int("d", d))


def snr(mu_norm: float, sigma_xi: float, d: int) -> float:
    """SNR = ‖μ‖/(σ_ξ √d)."""
    log = _log_snr(mu_norm, sigma_xi, d)
    return positive_result(
        "SNR = ‖μ‖/(σ_ξ√d)",
        log,
        _given(mu_norm=mu_norm, sigma_xi=sigma_xi, d=d),
        lambda: mu_norm / (sigma_xi * math.sqrt(d)),
    )


def n_snr2(n: int, mu_norm: float, sigma_xi: float, d: int) -> float:
    """The regime constant n·SNR² = n‖μ‖²/(σ_ξ² d); the theory needs it to be Θ(1)."""
    log = math.log(check_int("n", n)) + 2 * _log_snr(mu_norm, sigma_xi, d)
    return positive_result(
        "n·SNR² = n‖μ‖²/(σ_ξ²d)",
        log,
        _given(n=n, mu_norm=mu_norm, sigma_xi=sigma_xi, d=d),
        lambda: n * snr(mu_norm, sigma_xi, d) ** 2,
    )


def t1_order(n: int, m: int, eta: float, sigma_xi: float, d: int) -> float:
    """The order of the end of Stage I, T₁ = Θ(η⁻¹ n m σ_ξ⁻² d⁻¹) (Theorem 4.1), without its constant."""
    n = check_int("n", n)
    m = check_int("m", m)
    eta = check_positive("eta", eta)
    sigma_xi = check_positive("sigma_xi", sigma_xi)
    d = check_int("d", d)
    log = math.log(n) + math.log(m) - math.log(eta) - 2 * math.log(sigma_xi) - math.log(d)
    return positive_result(
        "T₁'s order nm/(ησ_ξ²d)",
        log,
        _given(n=n, m=m, eta=eta, sigma_xi=sigma_xi, d=d),
        lambda: n * m / (eta * sigma_xi**2 * d),
    )


def _tau(tau: float | None, tau_plus: float | None, tau_minus: float | None) -> float:
    if tau is not None:
        if tau_plus is not None or tau_minus is not None:
            raise TypeError("give either tau, or tau_plus and tau_minus, not both")
        return check_tau("tau", tau)
    if tau_plus is None or tau_minus is None:
        raise ValueError("give either tau, or both tau_plus and tau_minus (each in [0, 0.5))")
    return (check_tau("tau_plus", tau_plus) + check_tau("tau_minus", tau_minus)) / 2


def growth_ratio(
    n_snr2: float, tau: float | None = None, *, tau_plus: float | None = None, tau_minus: float | None = None
) -> float:
    """Stage I growth ratio Δγ/Δρ̄ ≈ (1 − 2τ)·n·SNR²/2 (Chapter 4, §4.6).

    With class-conditional rates τ₊, τ₋ and balanced classes the overall flip rate is τ = (τ₊ + τ₋)/2.
    Above 1 the signal γ grows faster than any single sample's memorisation ρ̄.
    """
    n_snr2 = check_positive("n_snr2", n_snr2)
    return (1 - 2 * _tau(tau, tau_plus, tau_minus)) * n_snr2 / 2


def signal_step(eta: float, mu_norm: float, m: int, tau: float) -> float:
    """Per-step Stage I growth of γ with |ℓ'| ≈ 1/2: Δγ ≈ η‖μ‖²(1 − 2τ)/(4m)."""
    eta = check_positive("eta", eta)
    mu_norm = check_positive("mu_norm", mu_norm)
    m = check_int("m", m)
    tau = check_tau("tau", tau)
    log = math.log(eta) + 2 * math.log(mu_norm) + math.log(1 - 2 * tau) - math.log(4 * m)
    return positive_result(
        "Δγ ≈ η‖μ‖²(1 − 2τ)/(4m)",
        log,
        _given(eta=eta, mu_norm=mu_norm, m=m, tau=tau),
        lambda: eta * mu_norm**2 * (1 - 2 * tau) / (4 * m),
    )


def memorisation_step(eta: float, sigma_xi: float, d: int, n: int, m: int) -> float:
    """Per-step Stage I growth of an active ρ̄ with |ℓ'| ≈ 1/2: Δρ̄ ≈ η σ_ξ² d/(2nm)."""
    eta = check_positive("eta", eta)
    sigma_xi = check_positive("sigma_xi", sigma_xi)
    d, n, m = check_int("d", d), check_int("n", n), check_int("m", m)
    log = math.log(eta) + 2 * math.log(sigma_xi) + math.log(d) - math.log(2 * n * m)
    return positive_result(
        "Δρ̄ ≈ ησ_ξ²d/(2nm)",
        log,
        _given(eta=eta, sigma_xi=sigma_xi, d=d, n=n, m=m),
        lambda: eta * sigma_xi**2 * d / (2 * n * m),
    )


def _exp_minus(log_x: float, direct: Callable[[], float]) -> float:
    """exp(−x) for x = e^{log_x} > 0 given as ``direct()``; exactly 0.0 where x is so large that exp(−x)
    underflows (x > 800), which also covers an x beyond the float range (no OverflowError)."""
    return 0.0 if log_x > math.log(800.0) else math.exp(-direct())


def early_stopping_error_bound(d: int, n: int, C: float = 1.0) -> float:
    """Proposition 4.3: test error at T₁ is at most exp(−d/(C n)); C is the paper's unspecified constant."""
    d, n, C = check_int("d", d), check_int("n", n), check_positive("C", C)
    return _exp_minus(math.log(d) - math.log(C) - math.log(n), lambda: d / (C * n))


def noiseless_error_bound(n: int, mu_norm: float, sigma_xi: float, d: int, C: float = 1.0) -> float:
    """Theorem 4.4: without label noise the test error stays ≤ exp(−n‖μ‖⁴/(C σ_ξ⁴ d))."""
    n = check_int("n", n)
    mu_norm = check_positive("mu_norm", mu_norm)
    sigma_xi = check_positive("sigma_xi", sigma_xi)
    d = check_int("d", d)
    C = check_positive("C", C)
    log_x = math.log(n) + 4 * math.log(mu_norm) - math.log(C) - 4 * math.log(sigma_xi) - math.log(d)
    return _exp_minus(log_x, lambda: math.exp(log_x) if log_x > 700 else n * mu_norm**4 / (C * sigma_xi**4 * d))


def stage2_error_lower_bound(tau_plus: float, tau_minus: float) -> float:
    """Theorem 4.2: after convergence the test error is at least 0.5·min{τ₊, τ₋}.

    Which test labels this refers to could not be confirmed (Chapter 6, §6.4): against noisy test labels it
    holds for every classifier, against clean labels it holds only where d/n is small (:func:`harmful_d_over_n`).
    The book measures both.
    """
    return 0.5 * min(check_tau("tau_plus", tau_plus), check_tau("tau_minus", tau_minus))


def memorisation_spread(rho_bar: float, tau: float, n: int, d: int) -> float:
    """s = ρ̄·√(τn/d): the spread of the memorised noise in the output f(W, x) on a *fresh* input (Chapter 6).

    A fresh noise patch ξ ~ N(0, σ_ξ² I) meets a memorised direction ξ_i/‖ξ_i‖² only by chance:
    ⟨ξ_i, ξ⟩/‖ξ_i‖² has standard deviation σ_ξ/‖ξ_i‖ ≈ 1/√d whatever σ_ξ, so the memorised part of
    ⟨w_{j,r}, ξ⟩ = Σ_i ρ_{j,r,i}⟨ξ_i, ξ⟩/‖ξ_i‖² has spread √(Σ_i ρ²_{j,r,i}/d).  A filter of class j memorises
    the ≈ τn/2 noisy samples observed as j, about half of them (those it is active on) with ≈ 2ρ̄ each, where
    ``rho_bar`` ρ̄ is the mean over noisy i of (1/m) Σ_r ρ̄_{ỹ_i,r,i}; hence Σ_i ρ² ≈ τnρ̄² and s = ρ̄√(τn/d).
    ``tau``: the draw's realised flip fraction τ̂.  Clean samples' memorisation, which stops growing after
    Stage I, is left out.
    """
    rho_bar = check_real("rho_bar", rho_bar, low=0.0)
    tau = check_tau("tau", tau)
    return rho_bar * math.sqrt(tau * check_int("n", n) / check_int("d", d))


def _normal_tail(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def clean_error_estimate(gamma: float, rho_bar: float, tau: float, n: int, d: int) -> float:
    """Φ(−γ/s), s = :func:`memorisation_spread`: the mechanism's estimate of the clean-label test error once
    the noisy samples are memorised (Chapter 6).

    On a fresh input (y, ξ) the signal part of y·f(W, x) is ≈ γ (``gamma``: the mean of γ_{j,r}), and the
    memorised noise adds a term of spread s; treating that term as a centred Gaussian, y f ≤ 0 with
    probability Φ(−γ/s).  A heuristic: it drops the initialisation, the cross terms ⟨ξ_i, ξ_k⟩ and the
    averaging of the ReLUs over filters, and is checked against measured errors in Chapter 6.
    """
    gamma = check_positive("gamma", gamma)
    s = memorisation_spread(rho_bar, tau, n, d)
    return 0.0 if s == 0.0 else _normal_tail(gamma / s)


def harmful_d_over_n(gamma: float, rho_bar: float, tau: float, level: float) -> float:
    """The d/n below which :func:`clean_error_estimate` is at least ``level``: τ·(z ρ̄/γ)², z = Φ⁻¹(1 − level).

    Where memorisation turns harmful on clean test data (Chapter 6): with ``level`` = 0.5·min{τ₊, τ₋}, the
    clean-label reading of Theorem 4.2's bound can hold only for d/n below this value.  At a fixed training time
    (in units of nm/(ησ_ξ²d)) γ and ρ̄ hardly depend on d/n, so the crossover is set by their ratio; ρ̄ grows
    only logarithmically in Stage II, and so does the crossover.  ``level`` in (0, 0.5).
    """
    gamma = check_positive("gamma", gamma)
    rho_bar = check_real("rho_bar", rho_bar, low=0.0)
    tau = check_tau("tau", tau)
    level = check_real("level", level, low=0.0, high=0.5, low_open=True, high_open=True)
    z = NormalDist().inv_cdf(1.0 - level)
    return tau * (z * rho_bar / gamma) ** 2


@dataclass(frozen=True)
class Condition:
    """One checked condition: its name, the measured value, the requirement in words, whether it holds."""

    name: str
    value: float
    requirement: str
    satisfied: bool


def check_conditions(
    n: int,
    d: int,
    m: int,
    mu_norm: float,
    sigma_xi: float,
    sigma0: float,
    eta: float,
    tau_plus: float,
    tau_minus: float,
    n_snr2_range: tuple[float, float] = (1.0, 100.0),
) -> list[Condition]:
    """Which of the paper's Condition 4.1 requirements a configuration meets, as order-of-magnitude proxies.

    The exact constants were not recovered, so each requirement is stated as the proxy checked:
    n·SNR² = Θ(1) (inside ``n_snr2_range``), τ± < 1/2, d ≥ n + 1 (decomposition unique) and d ≥ n
    (over-parameterised), m ≥ log n and n ≥ log m (both at least logarithmic), σ₀σ_ξ√d ≤ 0.5 (small
    initialisation: initial projections below the Θ(1) scale), and η small enough that one step moves a
    noise coefficient by less than 1 (η σ_ξ² d/(nm) < 1).
    """
    n = check_int("n", n)
    d = check_int("d", d)
    m = check_int("m", m)
    mu_norm = check_positive("mu_norm", mu_norm)
    sigma_xi = check_positive("sigma_xi", sigma_xi)
    sigma0 = check_positive("sigma0", sigma0)
    eta = check_positive("eta", eta)
    tau_plus = check_tau("tau_plus", tau_plus)
    tau_minus = check_tau("tau_minus", tau_minus)
    if not isinstance(n_snr2_range, (tuple, list)) or len(n_snr2_range) != 2:
        raise TypeError(f"n_snr2_range must be a pair (low, high) with 0 < low <= high, got {n_snr2_range!r}")
    lo, hi = (
        check_real("n_snr2_range[0]", n_snr2_range[0], low=0.0, low_open=True),
        check_real("n_snr2_range[1]", n_snr2_range[1], low=0.0, low_open=True),
    )
    if lo > hi:
        raise ValueError(f"n_snr2_range must be a pair (low, high) with low <= high, got {n_snr2_range!r}")
    k = n_snr2(n, mu_norm, sigma_xi, d)
    init_scale = positive_result(
        "σ₀σ_ξ√d",
        math.log(sigma0) + math.log(sigma_xi) + 0.5 * math.log(d),
        _given(sigma0=sigma0, sigma_xi=sigma_xi, d=d),
        lambda: sigma0 * sigma_xi * math.sqrt(d),
    )
    step = positive_result(
        "ησ_ξ²d/(nm)",
        math.log(eta) + 2 * math.log(sigma_xi) + math.log(d) - math.log(n * m),
        _given(eta=eta, sigma_xi=sigma_xi, d=d, n=n, m=m),
        lambda: eta * sigma_xi**2 * d / (n * m),
    )
    return [
        Condition("n·SNR²", k, f"Θ(1): between {lo:g} and {hi:g}", lo <= k <= hi),
        Condition("max(τ₊, τ₋)", max(tau_plus, tau_minus), "< 1/2", max(tau_plus, tau_minus) < 0.5),
        Condition("d/(n+1)", d / (n + 1), "≥ 1 (γ, ρ unique; over-parameterised)", d >= n + 1),
        Condition("m/log n", m / math.log(max(n, 2)), "≥ 1 (width at least logarithmic)", m >= math.log(max(n, 2))),
        Condition(
            "n/log m", n / math.log(max(m, 2)), "≥ 1 (sample size at least logarithmic)", n >= math.log(max(m, 2))
        ),
        Condition("σ₀σ_ξ√d", init_scale, "≤ 0.5 (initial ⟨w, ξ⟩ small against Θ(1))", init_scale <= 0.5),
        Condition("η σ_ξ² d/(nm)", step, "< 1 (one step moves ρ by less than 1)", step < 1),
    ]
