"""Argument checks shared by every public function of :mod:`lnfl`: the library's contract.

A public function checks its arguments once, on entry, and a mistake raises

- ``TypeError`` when the value is of the wrong kind (a string where a tensor belongs, an integer or
  half-precision tensor where real data belongs, ``2.5`` for a size), or
- ``ValueError`` when it is of the right kind but outside the valid range (a negative step size, a
  tensor of the wrong shape, a NaN entry, a device this machine does not have),

with a message that names the argument as the caller wrote it (``W0``, ``test``, ``setups[2].eta``,
``ds[0]``), shows the value received (a tensor abridged to its shape and dtype) and states what is valid.
Each check returns the value in the form the computation uses (``eta = check_positive("eta", eta)``);
a tensor that requires grad comes back detached, so no autograd graph is dragged through a run.  Loops
call unchecked private helpers, so the checks cost nothing per step.

Formulas of the theory that multiply powers of their inputs are computed in logarithms
(:func:`positive_result`), so an extreme but valid input gives either a finite number or a ``ValueError``
that states the representable range, never an ``OverflowError``, ``inf`` or ``NaN``.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterable, Sequence

import torch

FLOAT_DTYPES = (torch.float64, torch.float32)
#: Seeds are integers in [0, MAX_SEED] (a torch generator takes 64 bits; the library adds small offsets).
MAX_SEED = 2**63 - 1
#: A run refuses up front to record a history larger than this (or than half the machine's memory).
MAX_RECORD_BYTES = 16 * 2**30

_LOG_MAX = math.log(1.7976931348623157e308)  # log of the largest float
_LOG_TINY = math.log(2.2250738585072014e-308)  # log of the smallest normal float


def describe(value: object) -> str:
    """``value`` as an error message shows it: a tensor or an array by its shape and dtype (never its
    entries), anything else by its ``repr`` (cut at 60 characters) and its type."""
    if isinstance(value, torch.Tensor):
        where = "" if value.device.type == "cpu" else f" on {value.device}"
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}{where}"
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if isinstance(shape, tuple) and dtype is not None:  # a numpy array and the like
        return f"a {type(value).__name__} of shape {shape} and dtype {dtype}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


# ----------------------------------------------------------------------------------------- numbers


def check_int(name: str, value: object, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` in [``minimum``, ``maximum``] or raise naming ``name``."""
    bounds = f">= {minimum}" + ("" if maximum is None else f" and <= {maximum}")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer {bounds}, got {describe(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an integer {bounds}, got {value}")
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
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    rng = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in {rng}, got {describe(value)}")
    try:
        v = float(value)
    except OverflowError:  # an int beyond the float range
        raise ValueError(f"{name} must be finite and in {rng}, got an integer of {len(str(value))} digits") from None
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
    """A seed: an integer in [0, 2⁶³ − 1]."""
    return check_int(name, value, minimum=0, maximum=MAX_SEED)


def check_bool(name: str, value: object) -> bool:
    """``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {describe(value)}")
    return value


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """One of the strings ``choices``."""
    if len(choices) > 3:
        options = "one of " + ", ".join(repr(c) for c in choices)
    else:
        options = ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
    if not isinstance(value, str):
        raise TypeError(f"{name} must be {options}, got {describe(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be {options}, got {value!r}")
    return value


def check_instance(name: str, value: object, cls: type | tuple[type, ...], what: str) -> object:
    """``value`` if it is an instance of ``cls`` (``what`` names it in words), else a ``TypeError``."""
    if not isinstance(value, cls):
        raise TypeError(f"{name} must be {what}, got {describe(value)}")
    return value


def check_sequence(name: str, value: object, check_item: Callable[[str, object], object], min_len: int = 1) -> list:
    """A list, tuple, range or 1-d array/tensor of at least ``min_len`` items, each passed through
    ``check_item(f"{name}[{i}]", item)``; returns the checked items as a list."""
    if hasattr(value, "tolist") and getattr(value, "ndim", None) == 1:
        value = value.tolist()  # a 1-d tensor or array: its entries as Python numbers
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, range)):
        raise TypeError(f"{name} must be a list or tuple (at least {min_len} item(s)), got {describe(value)}")
    if len(value) < min_len:
        raise ValueError(f"{name} must hold at least {min_len} item(s), got {describe(value)}")
    return [check_item(f"{name}[{i}]", item) for i, item in enumerate(value)]


def check_keys(name: str, keys: Iterable[str], valid: Iterable[str]) -> None:
    """Every key of a configuration override (``**overrides``) must be one of ``valid``."""
    unknown = set(keys) - set(valid)
    if unknown:
        raise TypeError(f"unknown configuration key(s) {sorted(unknown)} in {name}; valid keys are {sorted(valid)}")


def positive_result(quantity: str, log_value: float, given: str, direct: Callable[[], float] | None = None) -> float:
    """A positive ``quantity`` whose logarithm is ``log_value``: refused with a ``ValueError`` stating the
    representable range when it overflows a float or underflows below its smallest normal number (``given``
    lists the inputs, for the message); otherwise ``direct()`` (the formula as written, so in-range results
    keep their exact rounding), or exp(``log_value``) where the formula's intermediate powers overflow."""
    if log_value > _LOG_MAX or log_value < _LOG_TINY:
        side = "overflows" if log_value > 0 else "underflows"
        raise ValueError(
            f"{quantity} = 10^{log_value / math.log(10):.1f} {side} a float (representable: 2.2e-308 to "
            f"1.8e+308) with {given}; choose inputs that keep it in that range"
        )
    if direct is not None:
        try:
            value = direct()
        except (OverflowError, ZeroDivisionError):
            value = math.nan
        if math.isfinite(value) and value > 0:
            return value
    return math.exp(log_value)


# ----------------------------------------------------------------------------------------- tensors

_HALF = (torch.float16, torch.bfloat16)
_WHY_HALF = (
    "half precision is refused: an 8- to 11-bit mantissa rounds the margins and the γ/ρ bookkeeping, "
    "so a run silently ends somewhere else; convert with .float() or .double()"
)


def check_dtype(name: str, value: object) -> torch.dtype:
    """torch.float64 or torch.float32 (half precision and integer dtypes are refused, saying why)."""
    if isinstance(value, torch.dtype) and value in FLOAT_DTYPES:
        return value
    why = f": {_WHY_HALF}" if isinstance(value, torch.dtype) and value in _HALF else ""
    raise TypeError(f"{name} must be torch.float64 or torch.float32, got {describe(value)}{why}")


def _check_float(name: str, dtype: torch.dtype) -> None:
    if dtype in FLOAT_DTYPES:
        return
    if dtype in _HALF:
        why = _WHY_HALF
    elif dtype.is_complex:
        why = "the model is real-valued"
    else:
        why = "an integer or boolean tensor would truncate the model's real values; convert with .double()"
    raise TypeError(f"{name} must be a float32 or float64 tensor, got dtype {dtype}: {why}")


def check_device(name: str, value: object) -> torch.device | None:
    """``None``, or a device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``) that exists on this
    machine: ``"cuda"`` without CUDA is refused here rather than failing later, deep inside a run."""
    if value is None:
        return None
    if not isinstance(value, (str, torch.device)):
        raise TypeError(
            f"{name} must be None, a string such as 'cpu' or 'cuda', or a torch.device, got {describe(value)}"
        )
    try:
        device = torch.device(value)
    except RuntimeError:
        raise ValueError(f"{name} must name a device such as 'cpu', 'cuda' or 'cuda:0', got {value!r}") from None
    if device.type != "cpu":
        try:
            torch.empty(0, device=device)
        except (RuntimeError, AssertionError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(f"{name}={value!r} is not available on this machine ({reason}); use 'cpu'") from None
    return device


def _shape_text(shape: Sequence[int | str | None]) -> str:
    items = ["*" if s is None else str(s) for s in shape]
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def check_tensor(
    name: str,
    value: object,
    ndim: int | None = None,
    *,
    shape: Sequence[int | str | None] | None = None,
    context: str = "",
    like: tuple[str, torch.Tensor] | None = None,
    finite: bool = True,
) -> torch.Tensor:
    """A float32 or float64 tensor, detached from any autograd graph, with finite entries.

    ``shape`` spells out the expected shape: an int is an exact size, a string a named size ≥ 1 (``"m"``),
    ``None`` any size; ``context`` says where the sizes come from (e.g. ``"d = 60 from data"``).
    ``like = (other_name, other)``: the tensor must share ``other``'s dtype and device.
    """
    if not isinstance(value, torch.Tensor):
        expected = f" of shape {_shape_text(shape)}" if shape is not None else ""
        hint = "; convert with torch.as_tensor(...)" if hasattr(value, "__array__") else ""
        raise TypeError(f"{name} must be a torch.Tensor{expected}, got {describe(value)}{hint}")
    _check_float(name, value.dtype)
    if shape is not None:
        ok = value.ndim == len(shape) and all(
            s is None or (value.shape[i] == s if isinstance(s, int) else value.shape[i] >= 1)
            for i, s in enumerate(shape)
        )
        if not ok:
            why = f" ({context})" if context else ""
            raise ValueError(f"{name} must have shape {_shape_text(shape)}{why}, got {describe(value)}")
    elif ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got {describe(value)}")
    if like is not None:
        other_name, other = like
        if value.dtype != other.dtype or value.device != other.device:
            raise ValueError(
                f"{name} and {other_name} must share dtype and device, got {name} {value.dtype} on {value.device}, "
                f"{other_name} {other.dtype} on {other.device}"
            )
    if finite and not bool(torch.isfinite(value.sum())):  # one fast pass: a finite sum has only finite terms
        bad = ~torch.isfinite(value)
        if bool(bad.any()):
            raise ValueError(
                f"{name} must contain only finite values, found {int(bad.sum())} NaN or inf entries in {describe(value)}"
            )
    return value.detach() if value.requires_grad else value


def check_labels(name: str, value: object, n: int) -> torch.Tensor:
    """A tensor of n labels, each −1 or +1 (any real or integer dtype)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of labels in {{-1, +1}}, got {describe(value)}")
    if value.dtype == torch.bool or value.dtype.is_complex:
        raise TypeError(f"{name} must hold labels -1 and +1 as numbers, got dtype {value.dtype}")
    if value.ndim != 1 or value.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {tuple(value.shape)}")
    bad = ~((value == 1) | (value == -1))
    if bool(bad.any()):
        first = value[bad][0].item()
        raise ValueError(f"{name} must contain only labels -1 and +1, found {first!r}")
    return value.detach()


def check_classes(name: str, value: object, n: int, K: int) -> torch.Tensor:  # noqa: N803 - the paper's symbol
    """A tensor of n class indices in 0..K−1, integer dtype (as ``cross_entropy`` needs)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class indices in 0..{K - 1}, got {describe(value)}")
    if value.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(
            f"{name} must be an integer tensor (int64) of class indices in 0..{K - 1}, got dtype {value.dtype}"
        )
    if value.ndim != 1 or value.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {tuple(value.shape)}")
    bad = (value < 0) | (value >= K)
    if bool(bad.any()):
        raise ValueError(f"{name} must contain only classes 0..{K - 1}, found {value[bad][0].item()}")
    return value.to(torch.int64)


# ------------------------------------------------------------------------------------- the data set


def check_signal_noise(
    prefix: str, mu: object, xi: object, y: object, y_obs: object
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The four fields of a :class:`~lnfl.data.Dataset` (names prefixed, e.g. ``"data."``): ξ of shape (n, d)
    with n, d ≥ 1, μ of shape (d,) with the same dtype and device, labels in {−1, +1}; all finite."""
    xi = check_tensor(f"{prefix}xi", xi, shape=("n", "d"))
    n, d = xi.shape
    mu = check_tensor(f"{prefix}mu", mu, shape=(d,), context=f"d = {d} from {prefix}xi", like=(f"{prefix}xi", xi))
    return mu, xi, check_labels(f"{prefix}y", y, n), check_labels(f"{prefix}y_obs", y_obs, n)


def check_dataset(name: str, value: object) -> object:
    """An :class:`lnfl.data.Dataset` whose fields are (still) valid; errors name them ``{name}.xi`` etc."""
    from .data import Dataset  # data imports this module

    check_instance(name, value, Dataset, "an lnfl.data.Dataset")
    check_signal_noise(f"{name}.", value.mu, value.xi, value.y, value.y_obs)  # type: ignore[attr-defined]
    return value


# --------------------------------------------------------------------------------- runs and records


def _bytes(k: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if k < 1000 or unit == "PB":
            return f"{k:.3g} {unit}"
        k /= 1000
    return ""  # pragma: no cover


def _memory_limit(cap: int | None = MAX_RECORD_BYTES) -> int:
    """Half the machine's physical memory, and at most ``cap``."""
    try:
        half = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        half = MAX_RECORD_BYTES
    return half if cap is None else min(cap, half)


def check_recording(steps_name: str, steps: int, record_every: int, bytes_per_record: int) -> int:
    """The number of records T of a run (step 0, every ``record_every`` steps, and the last), refused up front
    when keeping them would need more than :data:`MAX_RECORD_BYTES` (or half the machine's memory)."""
    count = steps // record_every + 1 + (1 if steps % record_every else 0)
    need = count * (bytes_per_record + 48)  # + the recorded step itself, as a Python int and a tensor entry
    limit = _memory_limit()
    if need > limit:
        every = 10 ** math.ceil(math.log10(max(1.0, steps * (bytes_per_record + 48) / (limit / 16))))
        raise ValueError(
            f"{steps_name}={steps} with record_every={record_every} would record {count:,} steps, "
            f"{_bytes(need)} of history (limit {_bytes(limit)}); record less often, e.g. record_every={every}"
        )
    return count


def check_memory(what: str, nbytes: int) -> None:
    """Refuse up front to allocate ``nbytes`` for ``what`` when that exceeds half the machine's memory."""
    limit = _memory_limit(cap=None)
    if nbytes > limit:
        raise ValueError(
            f"{what} would need {_bytes(nbytes)} of memory (limit {_bytes(limit)}, half of this machine's)"
        )


def step_size_cause(eta_name: str, eta: float, dtype: torch.dtype, mu_sq: float, xi_sq: float, n: int, m: int) -> str:
    """Why a run that started finite stopped being finite, with a step size that fits the inputs' scale.

    ℓ' is bounded, so gradient descent on the logistic loss grows the weights at most linearly: a run turns
    non-finite only when one step, which moves a projection ⟨w_{j,r}, z⟩ by up to about
    η·max(‖μ‖²/m, ‖ξ_i‖²/(nm)), overflows the dtype.  The suggestion keeps that move below 1 (a power of 10);
    when η is already there, the inputs are the cause (``mu_sq``, ``xi_sq``: the largest ‖μ‖², ‖ξ_i‖²).
    """
    per_eta = max(mu_sq / m, xi_sq / (n * m))
    suggest = 10.0 ** math.floor(math.log10(1 / per_eta)) if per_eta > 0 else eta / 10
    if suggest >= eta:
        return input_scale_cause(
            f"the data (‖μ‖² = {mu_sq:.3g}, max‖ξ_i‖² = {xi_sq:.3g}) with {eta_name}={eta:g}", dtype
        )
    return (
        f"the network output overflowed {dtype} with {eta_name}={eta:g}, where one step moves a projection ⟨w, z⟩ "
        f"by up to {eta_name}·max(‖μ‖²/m, ‖ξ_i‖²/(nm)) = {eta * per_eta:.3g}; try a smaller step size, "
        f"e.g. {eta_name}={suggest:g}"
    )


def input_scale_cause(what: str, dtype: torch.dtype) -> str:
    """Why a run is non-finite from the start: the inputs themselves do not fit the dtype."""
    return (
        f"{what} is too large for {dtype} (largest value {torch.finfo(dtype).max:.3g}); a smaller step size "
        "cannot help: rescale the inputs (e.g. a smaller mu_norm or sigma_xi)"
        + ("" if dtype == torch.float64 else " or use torch.float64")
    )
