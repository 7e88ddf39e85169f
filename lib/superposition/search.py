"""Threshold searches: the size at which a monotone test flips.

:func:`largest_passing` and :func:`smallest_passing` bracket geometrically, then bisect on a log
grid to a relative resolution (``resolution=0`` bisects to the exact integer);
:func:`fraction_passing` turns a per-seed test into "at least a fraction of the seeds pass".
Every search of the library (minimal widths, capacities) is one of these two, so every search
answers the same way when nothing passes: :func:`largest_passing` returns ``low - 1`` and
:func:`smallest_passing` returns ``high + 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ._validate import check_int, check_real

__all__ = ["fraction_passing", "largest_passing", "seeds_needed", "smallest_passing"]


def largest_passing(
    passes: Callable[[int], bool], low: int, high: int, resolution: float = 0.02
) -> int:
    """Largest integer ``n`` in ``[low, high]`` with ``passes(n)`` true.

    Parameters
    ----------
    passes : callable ``int -> bool``
        Monotone: true up to some threshold, false above it.
    low, high : int
        Search range, ``1 <= low <= high``. If ``passes(low)`` is false, returns ``low - 1``;
        if ``passes(high)`` is true, returns ``high``.
    resolution : float
        Stop once the bracket ``[lo, hi)`` satisfies ``hi - lo <= max(1, resolution * lo)``;
        the value returned is always one that passed (or ``low - 1``).

    Returns
    -------
    int
    """
    low = check_int("low", low, low=1)
    high = check_int("high", high, low=low)
    resolution = check_real("resolution", resolution, low=0.0)
    if not passes(low):
        return low - 1
    lo = low
    hi = None
    step = lo
    while hi is None:  # geometric bracketing: lo passes, hi fails
        nxt = min(high, max(lo + 1, 2 * step))
        if passes(nxt):
            lo = step = nxt
            if nxt == high:
                return high
        else:
            hi = nxt
    while hi - lo > max(1, resolution * lo):
        mid = int(round(np.sqrt(lo * hi)))
        mid = min(max(mid, lo + 1), hi - 1)
        if passes(mid):
            lo = mid
        else:
            hi = mid
    return lo


def smallest_passing(
    passes: Callable[[int], bool], low: int, high: int, resolution: float = 0.02
) -> int:
    """Smallest integer ``n`` in ``[low, high]`` with ``passes(n)`` true.

    ``passes`` is monotone: false below a threshold, true from it on. Returns ``high + 1`` if
    even ``passes(high)`` is false. Same bracketing, bisection and ``resolution`` as
    :func:`largest_passing`; the value returned always passed.
    """
    low = check_int("low", low, low=1)
    high = check_int("high", high, low=low)
    resolution = check_real("resolution", resolution, low=0.0)
    if passes(low):
        return low
    lo = low  # fails
    hi = None
    while hi is None:
        nxt = min(high, max(lo + 1, 2 * lo))
        if passes(nxt):
            hi = nxt
        elif nxt == high:
            return high + 1
        else:
            lo = nxt
    while hi - lo > max(1, resolution * lo):
        mid = int(round(np.sqrt(lo * hi)))
        mid = min(max(mid, lo + 1), hi - 1)
        if passes(mid):
            hi = mid
        else:
            lo = mid
    return hi


def fraction_passing(
    passes: Callable[[int, int], bool], size: int, seeds: Sequence[int], fraction: float = 0.9
) -> bool:
    """True if ``passes(size, seed)`` holds for at least ``fraction`` of ``seeds``.

    Stops early once the outcome is decided either way.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    fraction = check_real("fraction", fraction, low=0.0, high=1.0, low_open=True)
    need = seeds_needed(fraction, len(seeds))
    ok = bad = 0
    for seed in seeds:
        if passes(size, seed):
            ok += 1
        else:
            bad += 1
        if ok >= need:
            return True
        if bad > len(seeds) - need:
            return False
    return ok >= need


def seeds_needed(fraction: float, n_seeds: int) -> int:
    """How many of ``n_seeds`` must pass for "at least ``fraction`` pass": ``ceil(fraction * n)``."""
    return int(np.ceil(fraction * n_seeds - 1e-12))
