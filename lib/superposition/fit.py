r"""Fits of measured scaling laws, with bootstrap intervals: the one fit module every chapter uses.

:func:`fit_power_law` fits :math:`y = A x^\alpha` by least squares on log–log axes. It takes
either one value per :math:`x` (the bootstrap resamples the :math:`(x, y)` pairs) or a row of
replicate values per :math:`x` — typically one per seed — (each row is summarised by a statistic
and the bootstrap resamples within every row, so the interval is a seed-level interval).

:func:`fit_crossover` fits a law that is flat at small :math:`x` and grows as a power beyond a
crossover, :math:`y = (A^k + (B\,g(x)^\alpha)^k)^{1/k}` with :math:`g(x) = x` or
:math:`x\ln x`, the exponent free, with the same seed-level bootstrap; it reports where the
crossover lies and how many decades of data lie past it. :func:`local_exponent` is the slope a
power-law fit would find for a given curve over given points (the "local slope" of
:math:`\sqrt{x\ln x}`, for instance).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validate import as_generator, check_choice, check_int, check_real

__all__ = [
    "CROSSOVER_EXPONENTS",
    "GROWTHS",
    "STATISTICS",
    "CrossoverFit",
    "PowerLawFit",
    "fit_crossover",
    "fit_power_law",
    "local_exponent",
    "quantile",
]

STATISTICS = ("geomean", "quantile")
"""How a row of replicates is summarised before the fit (:func:`fit_power_law`)."""

CROSSOVER_EXPONENTS = (0.0, 3.0)
"""The range :func:`fit_crossover` searches the exponent in: an interval that reaches an end
says the data do not bound the exponent on that side."""


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


def _fit_arguments(
    x: Any,
    y: Any,
    n_boot: Any,
    level: Any,
    statistic: Any,
    seed: object,
    *,
    low_x: float = 0.0,
    need: int = 2,
) -> tuple[np.ndarray, list[np.ndarray] | None, int, float, str, np.random.Generator]:
    """The checked arguments every fit shares: ``(x, rows or None, n_boot, level, statistic, rng)``."""
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim != 1 or not np.all(np.isfinite(xa)) or not np.all(xa > low_x):
        raise ValueError(f"x must be a 1-D array of finite numbers > {low_x:g}, got {x!r}")
    if np.unique(xa).size < need:
        raise ValueError(f"x must hold at least {need} distinct values for this fit")
    rows = _rows(y)
    if len(rows if rows is not None else np.ravel(y)) != xa.size:
        raise ValueError(f"y must have one value or one row per x ({xa.size}), got {len(y)}")
    nb = check_int("n_boot", n_boot, low=0)
    lev = check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    stat = check_choice("statistic", statistic, STATISTICS)
    return xa, rows, nb, lev, stat, as_generator(seed)


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
    xa, rows, nb, lev, stat, rng = _fit_arguments(x, y, n_boot, level, statistic, seed)
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


# ---------------------------------------------------------------- a flat start, then a power


GROWTHS = ("power", "x_ln_x")
r"""The growing term of :func:`fit_crossover`: :math:`B x^\alpha` or :math:`B (x\ln x)^\alpha`."""


def _growth(x: np.ndarray, growth: str) -> np.ndarray:
    return np.log(x) if growth == "power" else np.log(x * np.log(x))


def _inverse_growth(g: float, growth: str) -> float:
    """The ``x`` with ``g(x) = g`` (``g = x`` or ``x ln x``, increasing for ``x > 1``)."""
    if growth == "power":
        return float(g)
    from scipy.special import lambertw

    if g <= 0:
        return 1.0
    return float(g / lambertw(g).real)  # x ln x = g  <=>  x = g / W(g)


@dataclass(frozen=True)
class CrossoverFit:
    r"""A flat start and a power-law growth, :math:`y = \bigl(A^k + (B\,g(x)^\alpha)^k\bigr)^{1/k}`.

    Attributes
    ----------
    exponent : float
        :math:`\alpha`, the exponent of the growing term (of :math:`x`, or of :math:`x\ln x`
        with ``growth="x_ln_x"``).
    flat : float
        :math:`A`, the level at small :math:`x`.
    scale : float
        :math:`B`.
    sharpness : float
        :math:`k`: how sharply the two regimes meet (fixed or fitted).
    crossover : float
        :math:`x_c`, where the two terms are equal: :math:`B\,g(x_c)^\alpha = A`.
    growth : {"power", "x_ln_x"}
    interval : tuple of float, or None
        Percentile bootstrap interval of :math:`\alpha` at ``level`` (``None`` without bootstrap).
    crossover_interval : tuple of float, or None
        The same for :math:`x_c`.
    level : float
    rss : float
        Residual sum of squares of :math:`\log y` at the fit.
    samples : float array, shape ``(n_boot, 2)``
        Bootstrap :math:`(\alpha, x_c)`.
    """

    exponent: float
    flat: float
    scale: float
    sharpness: float
    crossover: float
    growth: str
    interval: tuple[float, float] | None
    crossover_interval: tuple[float, float] | None
    level: float
    rss: float
    samples: np.ndarray = field(repr=False)

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        """The fitted law at ``x`` (> 1 for ``growth="x_ln_x"``)."""
        g = np.exp(_growth(np.asarray(x, dtype=np.float64), self.growth))
        k = self.sharpness
        return (self.flat**k + (self.scale * g**self.exponent) ** k) ** (1 / k)

    def excludes(self, value: float) -> bool:
        """Whether ``value`` lies outside the bootstrap interval of the exponent."""
        if self.interval is None:
            raise ValueError("this fit has no interval (n_boot=0)")
        return not self.interval[0] <= value <= self.interval[1]

    def decades_past(self, x: float) -> float:
        r""":math:`\log_{10}(x / x_c)`: how far ``x`` lies past the fitted crossover."""
        x = check_real("x", x, low=0.0, low_open=True)
        with np.errstate(divide="ignore"):  # a crossover of 0 or inf: infinitely many decades
            return float(np.log10(x) - np.log10(self.crossover))

    def decades_past_interval(self, x: float) -> tuple[float, float] | None:
        """:meth:`decades_past` at the ends of the crossover's bootstrap interval (low, high).

        A bootstrap replicate may put the crossover at 0 (no flat part) or at infinity (no
        growth): the ends are then ``inf`` or ``-inf``.
        """
        if self.crossover_interval is None:
            return None
        x = check_real("x", x, low=0.0, low_open=True)
        lo, hi = self.crossover_interval
        with np.errstate(divide="ignore"):
            return float(np.log10(x) - np.log10(hi)), float(np.log10(x) - np.log10(lo))


def fit_crossover(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | Sequence[Sequence[float]] | np.ndarray,
    *,
    sharpness: float | None = 2.0,
    growth: str = "power",
    statistic: str = "geomean",
    fraction: float = 0.9,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: object = 0,
) -> CrossoverFit:
    r"""Fit :math:`y = (A^k + (B\,g(x)^\alpha)^k)^{1/k}` with the exponent free, and bootstrap it.

    A law that is flat (:math:`y \approx A`) up to a crossover :math:`x_c` and grows like
    :math:`B\,g(x)^\alpha` beyond it; :math:`k` sets how sharp the bend is (:math:`k = 2`
    by default; ``sharpness=None`` fits it too, in :math:`[0.5, 20]`). Least squares on
    :math:`\log y` (``scipy.optimize.least_squares``, from several starting exponents,
    the best kept), with :math:`\alpha \in [0, 3]`. A pure power-law fit over a window that
    still holds part of the bend underestimates the final slope; this fit models the bend.

    Parameters
    ----------
    x : 1-D array of numbers > 0 (> 1 for ``growth="x_ln_x"``)
        At least 4 distinct values (5 with ``sharpness=None``).
    y : 1-D array, or a sequence of rows of replicates (one per ``x``)
        As in :func:`fit_power_law`: rows are summarised by ``statistic``, and the bootstrap
        resamples each row (a seed-level interval); one value per ``x`` resamples the points.
    sharpness : float > 0 or None
    growth : {"power", "x_ln_x"}
        :math:`g(x) = x`, or :math:`x\ln x` (then :math:`\alpha = \tfrac12` is
        :math:`\sqrt{x\ln x}` growth).
    statistic, fraction, n_boot, level, seed
        As in :func:`fit_power_law`.

    Returns
    -------
    CrossoverFit
    """
    from scipy.optimize import least_squares

    g = check_choice("growth", growth, GROWTHS)
    free_k = sharpness is None
    need = 5 if free_k else 4
    xa, rows, nb, lev, stat, rng = _fit_arguments(
        x, y, n_boot, level, statistic, seed,
        low_x=1.0 if g == "x_ln_x" else 0.0, need=need,
    )  # fmt: skip
    k_fixed = None if free_k else check_real("sharpness", sharpness, low=0.0, low_open=True)
    lg = _growth(xa, g)

    def model(th: np.ndarray, at: np.ndarray) -> np.ndarray:
        la, lb, al = th[:3]
        kk = np.exp(np.clip(th[3], -10.0, 10.0)) if free_k else k_fixed
        return np.logaddexp(kk * la, kk * (lb + al * at)) / kk

    def jac(th: np.ndarray, at: np.ndarray) -> np.ndarray:
        la, lb, al = th[:3]
        kk = np.exp(np.clip(th[3], -10.0, 10.0)) if free_k else k_fixed
        b = lb + al * at
        w = 1.0 / (1.0 + np.exp(np.clip(kk * (la - b), -700, 700)))  # weight of the growing term
        cols = [1.0 - w, w, w * at]
        if free_k:  # d/d(log k) of (1/k) logaddexp(k a, k b)
            lse = np.logaddexp(kk * la, kk * b)
            cols.append(-lse / kk + (1.0 - w) * la + w * b)
        return np.stack(cols, axis=1)

    lo_b = [-np.inf, -np.inf, CROSSOVER_EXPONENTS[0]] + ([np.log(0.5)] if free_k else [])
    hi_b = [np.inf, np.inf, CROSSOVER_EXPONENTS[1]] + ([np.log(20.0)] if free_k else [])

    def solve(ly: np.ndarray, at: np.ndarray, start: np.ndarray | None) -> np.ndarray:
        """Least squares from ``start`` (a bootstrap replicate: from the point estimate), or
        from several starting exponents (the point estimate itself)."""
        starts = [start] if start is not None else []
        if start is None:
            order = np.argsort(at)
            slope = np.polyfit(at[order][-3:], ly[order][-3:], 1)[0]
            for a0 in (max(0.05, min(2.5, slope)), 0.5, 0.8):
                th = [ly.min(), ly.max() - a0 * at.max(), a0]
                starts.append(np.array(th + ([np.log(2.0)] if free_k else [])))
        best = None
        for th0 in starts:
            th0 = np.clip(th0, np.array(lo_b) + 1e-9, np.array(hi_b) - 1e-9)
            # Levenberg-Marquardt (fast); the bounded solver only if it leaves the bounds
            r = least_squares(
                lambda th: model(th, at) - ly, th0, jac=lambda th: jac(th, at), method="lm"
            )
            if not (np.all(r.x >= lo_b) and np.all(r.x <= hi_b)):
                r = least_squares(
                    lambda th: model(th, at) - ly,
                    th0,
                    jac=lambda th: jac(th, at),
                    bounds=(lo_b, hi_b),
                )
            if best is None or r.cost < best.cost:
                best = r
        return best.x

    def summary(r: np.ndarray) -> float:
        if stat == "geomean":
            return float(np.exp(np.log(r).mean()))
        return quantile(r, fraction)

    if rows is None:
        ya = np.asarray(y, dtype=np.float64)
        if not np.all(np.isfinite(ya)) or not np.all(ya > 0):
            raise ValueError("y must hold finite numbers > 0")
        ly = np.log(ya)
    else:
        ly = np.log([summary(r) for r in rows])
    th = solve(ly, lg, None)

    def crossing(t: np.ndarray) -> float:
        la, lb, al = t[:3]
        log_g = (la - lb) / al if al > 0 else np.inf
        if log_g > 700:  # beyond float64: no crossover within reach
            return float("inf")
        return _inverse_growth(float(np.exp(log_g)), g)

    boots = np.empty((nb, 2))
    for b in range(nb):
        if rows is None:
            while True:
                idx = rng.integers(0, xa.size, xa.size)
                if np.unique(idx).size >= need:
                    break
            tb = solve(ly[idx], lg[idx], th)
        else:
            lyb = np.log([summary(rng.choice(r, size=r.size, replace=True)) for r in rows])
            tb = solve(lyb, lg, th)
        boots[b] = tb[2], crossing(tb)
    interval = cross_iv = None
    if nb:
        q = [(1 - lev) / 2, (1 + lev) / 2]
        interval = tuple(float(v) for v in np.quantile(boots[:, 0], q))
        # infinite crossovers (a flat replicate): quantiles without interpolation, never inf - inf
        how = "linear" if np.isfinite(boots[:, 1]).all() else "inverted_cdf"
        cross_iv = tuple(float(v) for v in np.quantile(boots[:, 1], q, method=how))
    la, lb, al = th[:3]
    return CrossoverFit(
        exponent=float(al),
        flat=float(np.exp(la)),
        scale=float(np.exp(lb)),
        sharpness=float(np.exp(th[3]) if free_k else k_fixed),
        crossover=crossing(th),
        growth=g,
        interval=interval,  # type: ignore[arg-type]
        crossover_interval=cross_iv,  # type: ignore[arg-type]
        level=lev,
        rss=float(np.sum((model(th, lg) - ly) ** 2)),
        samples=boots,
    )


def local_exponent(
    fn: Callable[[np.ndarray], np.ndarray], x: Sequence[float] | np.ndarray
) -> float:
    r"""The least-squares slope of :math:`\log f(x)` against :math:`\log x` over the points ``x``.

    What :func:`fit_power_law` would report for data lying exactly on ``fn``: e.g. the local
    slope of :math:`\sqrt{x\ln x}` over :math:`x = 10^2 \ldots 10^5` is about 0.56, not
    :math:`\tfrac12`.
    """
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim != 1 or np.unique(xa).size < 2 or not np.all(xa > 0):
        raise ValueError(f"x must hold at least 2 distinct numbers > 0, got {x!r}")
    return fit_power_law(xa, np.asarray(fn(xa), dtype=np.float64), n_boot=0).exponent
