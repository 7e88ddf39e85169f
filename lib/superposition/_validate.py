"""Argument checks shared by every public function.

Each check raises :class:`ValueError` naming the parameter, the value received and the
allowed range, so that a caller (and the command-line tool) can report it in one line.
"""

from __future__ import annotations

import numbers
from typing import Any

import array_api_compat
import numpy as np


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as ``int`` if it is an integer in ``[low, high]``.

    Booleans and floats (even ``3.0``) are rejected: sizes must be integers.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    v = int(value)
    if low is not None and v < low:
        raise ValueError(f"{name} must be {_range(low, high)}, got {v}")
    if high is not None and v > high:
        raise ValueError(f"{name} must be {_range(low, high)}, got {v}")
    return v


def check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as ``float`` if it is a finite real number in the given interval."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    v = float(value)
    lo_s = "(" if low_open else "["
    hi_s = ")" if high_open else "]"
    interval = f"in {lo_s}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi_s}"
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite and {interval}, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be {interval}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name} must be {interval}, got {v}")
    return v


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return str(value)


def check_sparsity(sparsity: object, n_features: int) -> int:
    """``1 <= sparsity <= n_features``."""
    return check_int("sparsity", sparsity, low=1, high=n_features)


def check_probability(name: str, value: object) -> float:
    """A probability in ``(0, 1]``."""
    return check_real(name, value, low=0.0, high=1.0, low_open=True)


def check_active(active: Any, n_features: int, name: str = "active") -> Any:
    """Active feature indices per input, checked: an integer array of shape ``(n_samples, s)``
    with values in ``[0, n_features)``, distinct within each row.

    Returns the indices as int64, each row sorted, in the namespace they came in (a list or
    tuple becomes a NumPy array). ``s`` may be 0.
    """
    xp = _namespace_of(active)
    if xp is None:
        active = np.asarray(active)
        if active.size == 0 and active.ndim == 2:
            active = active.astype(np.int64)
        xp = array_api_compat.array_namespace(active)
    shape = tuple(active.shape)
    if len(shape) != 2 or not xp.isdtype(active.dtype, "integral"):
        raise ValueError(
            f"{name} must be an integer array of shape (n_samples, s), got {active.dtype} {shape}"
        )
    active = xp.sort(xp.astype(active, xp.int64), axis=1)
    if shape[0] * shape[1]:
        lo, hi = int(xp.min(active)), int(xp.max(active))
        if lo < 0 or hi >= n_features:
            raise ValueError(
                f"{name} feature indices must be in [0, {n_features - 1}], got [{lo}, {hi}]"
            )
        if shape[1] > 1 and bool(xp.any(active[:, 1:] == active[:, :-1])):
            raise ValueError(f"{name} features must be distinct within each input")
    return active


def check_bits(x: Any, n_features: int, name: str = "x") -> np.ndarray:
    """A 0/1 batch ``(n_samples, n_features)`` (bool, integer or float), returned as bool."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != n_features:
        raise ValueError(f"{name} must have shape (n_samples, {n_features}), got {x.shape}")
    if x.dtype == bool:
        return x
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"{name} must hold 0/1 values, got dtype {x.dtype}")
    if x.size and not np.all((x == 0) | (x == 1)):
        raise ValueError(f"{name} must hold only 0 and 1")
    return x.astype(bool)


def check_clip(lo: object, hi: object) -> tuple[float, float]:
    """Clip thresholds of a correction unit: ``0 < lo < hi < 1``."""
    lo_f = check_real("lo", lo, low=0.0, high=1.0, low_open=True, high_open=True)
    hi_f = check_real("hi", hi, low=0.0, high=1.0, low_open=True, high_open=True)
    if not lo_f < hi_f:
        raise ValueError(f"hi must be in ({lo_f}, 1) (greater than lo), got {hi_f}")
    return lo_f, hi_f


def as_generator(seed: object) -> np.random.Generator:
    """A :class:`numpy.random.Generator` from a seed (int ≥ 0), a ``SeedSequence`` or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    check_int("seed", seed, low=0)
    return np.random.default_rng(int(seed))


def _namespace_of(x: Any) -> Any:
    """The array-API namespace of an array, or ``None`` for lists, tuples and NumPy arrays."""
    if isinstance(x, (list, tuple, np.ndarray)):
        return None
    try:
        return array_api_compat.array_namespace(x)
    except TypeError:
        return None


def _range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"between {low} and {high}"
    if low is not None:
        return f">= {low}"
    return f"<= {high}"
