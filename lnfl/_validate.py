"""Argument checks shared by every public function.

Each check raises ``ValueError`` or ``TypeError`` naming the argument, the value received and the
valid range, so that a reader who mistypes a parameter learns at once what to change.
"""

from __future__ import annotations

import math
import numbers

import torch

FLOAT_DTYPES = (torch.float64, torch.float32)


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` as an ``int`` ≥ ``minimum`` or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite ``float`` inside the stated interval or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    v = float(value)
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    rng = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite and in {rng}, got {value}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be in {rng}, got {value}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name} must be in {rng}, got {value}")
    return v


def check_positive(name: str, value: object) -> float:
    """A finite real number > 0."""
    return check_real(name, value, low=0.0, low_open=True)


def check_tau(name: str, value: object) -> float:
    """A flip rate τ in [0, 1/2)."""
    return check_real(name, value, low=0.0, high=0.5, high_open=True)


def check_seed(name: str, value: object) -> int:
    """A seed: an integer ≥ 0."""
    return check_int(name, value, minimum=0)


def check_dtype(name: str, value: object) -> torch.dtype:
    """torch.float64 or torch.float32."""
    if value not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be torch.float64 or torch.float32, got {value!r}")
    return value  # type: ignore[return-value]


def check_tensor(name: str, value: object, ndim: int) -> torch.Tensor:
    """A floating torch tensor with ``ndim`` dimensions and finite entries."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {tuple(value.shape)}")
    if not torch.is_floating_point(value):
        raise TypeError(f"{name} must be a floating tensor (float32 or float64), got dtype {value.dtype}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
    return value


def check_labels(name: str, value: object, n: int) -> torch.Tensor:
    """A tensor of n labels, each −1 or +1."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of labels in {{-1, +1}}, got {type(value).__name__}")
    if value.ndim != 1 or value.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {tuple(value.shape)}")
    bad = ~((value == 1) | (value == -1))
    if bool(bad.any()):
        first = value[bad][0].item()
        raise ValueError(f"{name} must contain only labels -1 and +1, found {first!r}")
    return value
