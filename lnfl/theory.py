"""The paper's quantities as functions: SNR, n·SNR², the order of T₁, the Stage I growth ratio, the bounds
of Han et al. (2025), and a report of which conditions a configuration meets.

The paper states its results up to unspecified constants (its Condition 4.1 could not be recovered with
exact constants), so the bounds take the constant C as an argument, and :func:`check_conditions` checks
order-of-magnitude proxies that it names, not the paper's exact inequalities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._validate import check_int, check_positive, check_real, check_tau

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
    "Condition",
    "check_conditions",
]


def snr(mu_norm: float, sigma_xi: float, d: int) -> float:
    """SNR = ‖μ‖/(σ_ξ √d)."""
    mu_norm = check_positive("mu_norm", mu_norm)
    sigma_xi = check_positive("sigma_xi", sigma_xi)
    d = check_int("d", d)
    return mu_norm / (sigma_xi * math.sqrt(d))


def n_snr2(n: int, mu_norm: float, sigma_xi: float, d: int) -> float:
    """The regime constant n·SNR² = n‖μ‖²/(σ_ξ² d); the theory needs it to be Θ(1)."""
    return check_int("n", n) * snr(mu_norm, sigma_xi, d) ** 2


def t1_order(n: int, m: int, eta: float, sigma_xi: float, d: int) -> float:
    """The order of the end of Stage I, T₁ = Θ(η⁻¹ n m σ_ξ⁻² d⁻¹) (Theorem 4.1), without its constant."""
    n = check_int("n", n)
    m = check_int("m", m)
    eta = check_positive("eta", eta)
    sigma_xi = check_positive("sigma_xi", sigma_xi)
    d = check_int("d", d)
    return n * m / (eta * sigma_xi**2 * d)


def _tau(tau: float | None, tau_plus: float | None, tau_minus: float | None) -> float:
    if tau is not None:
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
    return eta * mu_norm**2 * (1 - 2 * check_tau("tau", tau)) / (4 * m)


def memorisation_step(eta: float, sigma_xi: float, d: int, n: int, m: int) -> float:
    """Per-step Stage I growth of an active ρ̄ with |ℓ'| ≈ 1/2: Δρ̄ ≈ η σ_ξ² d/(2nm)."""
    eta = check_positive("eta", eta)
    sigma_xi = check_positive("sigma_xi", sigma_xi)
    return eta * sigma_xi**2 * check_int("d", d) / (2 * check_int("n", n) * check_int("m", m))


def early_stopping_error_bound(d: int, n: int, C: float = 1.0) -> float:
    """Proposition 4.3: test error at T₁ is at most exp(−d/(C n)); C is the paper's unspecified constant."""
    return math.exp(-check_int("d", d) / (check_positive("C", C) * check_int("n", n)))


def noiseless_error_bound(n: int, mu_norm: float, sigma_xi: float, d: int, C: float = 1.0) -> float:
    """Theorem 4.4: without label noise the test error stays ≤ exp(−n‖μ‖⁴/(C σ_ξ⁴ d))."""
    n = check_int("n", n)
    mu_norm = check_positive("mu_norm", mu_norm)
    sigma_xi = check_positive("sigma_xi", sigma_xi)
    d = check_int("d", d)
    return math.exp(-n * mu_norm**4 / (check_positive("C", C) * sigma_xi**4 * d))


def stage2_error_lower_bound(tau_plus: float, tau_minus: float) -> float:
    """Theorem 4.2: after convergence the test error is at least 0.5·min{τ₊, τ₋}.

    Which test labels this refers to could not be confirmed (Chapter 6, §6.4): against noisy test labels it
    holds trivially, against clean labels its size depends on d/n.  The book measures both.
    """
    return 0.5 * min(check_tau("tau_plus", tau_plus), check_tau("tau_minus", tau_minus))


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
    lo, hi = (
        check_real("n_snr2_range[0]", n_snr2_range[0], low=0.0, low_open=True),
        check_real("n_snr2_range[1]", n_snr2_range[1], low=0.0, low_open=True),
    )
    k = n_snr2(n, mu_norm, sigma_xi, d)
    init_scale = sigma0 * sigma_xi * math.sqrt(d)
    step = eta * sigma_xi**2 * d / (n * m)
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
