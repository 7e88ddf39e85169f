"""Searches over a size parameter: the largest size that passes a test, the smallest that does.

Both searches assume the test is monotone in the size (passing below a threshold, failing
above it, or the reverse) and locate the threshold by geometric bracketing followed by
bisection on a log grid, to a relative resolution chosen by the caller.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._validate import check_int, check_real


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
