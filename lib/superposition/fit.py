r"""Fits of measured scaling laws, with bootstrap intervals: the one fit every chapter uses.

:func:`fit_power_law` fits :math:`y = A x^\alpha` by least squares on log–log axes. It takes
either one value per :math:`x` (the bootstrap resamples the :math:`(x, y)` pairs) or a row of
replicate values per :math:`x` — typically one per seed — (each row is summarised by a statistic
and the bootstrap resamples within every row, so the interval is a seed-level interval).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ._validate import as_generator, check_choice, check_int, check_real

__all__ = ["STATISTICS", "PowerLawFit", "fit_power_law", "quantile"]

STATISTICS = ("geomean", "quantile")
"""How a row of replicates is summarised before the fit (:func:`fit_power_law`)."""


@dataclass(frozen=True)
class PowerLawFit:
    r"""A power law :math:`y = A x^\alpha` fitted on log–log axes.

    Attributes
    ----------
    exponent : float
        :math:`\alpha`, the least-squares slope of :math:`\log y` on :math:`\log x`.
    prefactor : float
        :math:`A`.
    interval : tuple of float, or None
        Percentile bootstrap interval of :math:`\alpha` at ``level`` (``None`` when no bootstrap
        was asked for, ``n_boot=0``).
    level : float
    samples : float array
        The bootstrap exponents (empty without bootstrap).
    """

    exponent: float
    prefactor: float
    interval: tuple[float, float] | None
    level: float
    samples: np.ndarray = field(repr=False)

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        r""":math:`A x^\alpha`."""
        return self.prefactor * np.asarray(x, dtype=np.float64) ** self.exponent

    def excludes(self, value: float) -> bool:
        """Whether ``value`` lies outside the bootstrap interval."""
        if self.interval is None:
            raise ValueError("this fit has no interval (n_boot=0)")
        return not self.interval[0] <= value <= self.interval[1]


def quantile(values: Sequence[float] | np.ndarray, fraction: float = 0.9) -> float:
    """The smallest value that at least ``fraction`` of ``values`` do not exceed."""
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if v.size == 0:
        raise ValueError("values must not be empty")
    fraction = check_real("fraction", fraction, low=0.0, high=1.0, low_open=True)
    return float(v[int(np.ceil(fraction * v.size - 1e-12)) - 1])


def fit_power_law(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
    *,
    statistic: str = "geomean",
    fraction: float = 0.9,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: object = 0,
) -> PowerLawFit:
    r"""Fit :math:`y = A x^\alpha` on log–log axes, with a percentile bootstrap interval for :math:`\alpha`.

    Parameters
    ----------
    x : 1-D array of positive numbers
        At least two distinct values.
    y : 1-D array of positive numbers, or a sequence of rows of positive numbers
        One value per ``x`` (at least 3 points: the bootstrap resamples the :math:`(x, y)` pairs,
        redrawing resamples with fewer than two distinct ``x``), or one row of replicates per
        ``x`` (rows may differ in length): each row is summarised by ``statistic`` and the
        bootstrap resamples every row with replacement.
    statistic : {"geomean", "quantile"}
        Row summary: the geometric mean (the default, and the one to bootstrap: a resampled
        maximum never exceeds the observed one, so the bootstrap of a high quantile of few
        replicates is biased downwards) or the ``fraction`` quantile (:func:`quantile`). Both
        grow with the same exponent when the spread of :math:`\log y` within a row does not
        change with :math:`x`.
    fraction : float
        For ``statistic="quantile"``.
    n_boot : int
        Bootstrap replicates (0: no interval).
    level : float
        Coverage of the percentile interval, in (0, 1).
    seed : int or Generator

    Returns
    -------
    PowerLawFit
    """
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim != 1 or not np.all(np.isfinite(xa)) or not np.all(xa > 0):
        raise ValueError(f"x must be a 1-D array of finite numbers > 0, got {x!r}")
    if np.unique(xa).size < 2:
        raise ValueError("x must hold at least 2 distinct values")
    rows = _rows(y)
    if len(rows if rows is not None else np.ravel(y)) != xa.size:
        raise ValueError(f"y must have one value or one row per x ({xa.size}), got {len(y)}")
    nb = check_int("n_boot", n_boot, low=0)
    lev = check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    stat = check_choice("statistic", statistic, STATISTICS)
    rng = as_generator(seed)
    lx = np.log(xa)

    def line(ly: np.ndarray, sel: np.ndarray | slice = slice(None)) -> tuple[float, float]:
        slope, icpt = np.polyfit(lx[sel], ly, 1)
        return float(slope), float(icpt)

    boots = np.empty(nb)
    if rows is None:
        ya = np.asarray(y, dtype=np.float64)
        if not np.all(np.isfinite(ya)) or not np.all(ya > 0):
            raise ValueError("y must hold finite numbers > 0")
        if nb and xa.size < 3:
            raise ValueError(f"x and y need length >= 3 for a bootstrap, got {xa.size}")
        ly = np.log(ya)
        alpha, icpt = line(ly)
        for b in range(nb):
            while True:
                idx = rng.integers(0, xa.size, xa.size)
                if np.unique(lx[idx]).size >= 2:
                    break
            boots[b] = line(ly[idx], idx)[0]
    else:

        def summary(r: np.ndarray) -> float:
            if stat == "geomean":
                return float(np.exp(np.log(r).mean()))
            return quantile(r, fraction)

        alpha, icpt = line(np.log([summary(r) for r in rows]))
        for b in range(nb):
            ly = np.log([summary(rng.choice(r, size=r.size, replace=True)) for r in rows])
            boots[b] = line(ly)[0]
    interval = None
    if nb:
        lo, hi = np.quantile(boots, [(1 - lev) / 2, (1 + lev) / 2])
        interval = (float(lo), float(hi))
    return PowerLawFit(alpha, float(np.exp(icpt)), interval, lev, boots)


def _rows(y: object) -> list[np.ndarray] | None:
    """The rows of ``y`` if it is a sequence of sequences (checked positive), else ``None``."""
    if isinstance(y, np.ndarray):
        if y.ndim == 1:
            return None
        if y.ndim != 2:
            raise ValueError(f"y must be 1-D or a sequence of rows, got shape {y.shape}")
        items = list(y)
    else:
        items = list(y)  # type: ignore[call-overload]
        if not items or np.ndim(items[0]) == 0:
            return None
    rows = [np.asarray(r, dtype=np.float64).ravel() for r in items]
    if any(r.size == 0 or not np.all(np.isfinite(r)) or np.any(r <= 0) for r in rows):
        raise ValueError("y must be rows of finite numbers > 0, none of them empty")
    return rows
