"""Argument checks shared by every public function.

Each check raises :class:`ValueError` naming the parameter, the value received and the
allowed range, so that a caller (and the command-line tool) can report it in one line.
"""

from __future__ import annotations

import numbers

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


def as_generator(seed: object) -> np.random.Generator:
    """A :class:`numpy.random.Generator` from a seed (int ≥ 0), a ``SeedSequence`` or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        return np.random.default_rng(seed)
    check_int("seed", seed, low=0)
    return np.random.default_rng(int(seed))


def _range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"between {low} and {high}"
    if low is not None:
        return f">= {low}"
    return f"<= {high}"
