"""Tests for superposition.fit: the one power-law fit, per point and per seed."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from superposition.fit import fit_power_law, quantile


def test_one_value_per_x() -> None:
    x = np.array([100.0, 200, 400, 800, 1600])
    fit = fit_power_law(x, 3 * x**1.5, n_boot=200)
    assert_allclose([fit.exponent, fit.prefactor], [1.5, 3.0], rtol=1e-10)
    assert_allclose(fit.interval, 1.5, rtol=1e-10)
    assert_allclose(fit(x), 3 * x**1.5, rtol=1e-10)
    # multiplicative noise of 5% on 8 points spanning 2.1 decades (std of ln x = 1.6): slope
    # std ~ 0.05 / (sqrt(8) * 1.6) = 0.011, so a 95% interval ~0.05 wide; we ask < 0.3 and that
    # it contains the truth (fixed seed).
    x = np.geomspace(10, 1300, 8)
    y = 2 * x**2 * np.exp(0.05 * np.random.default_rng(1).standard_normal(8))
    fit = fit_power_law(x, y, n_boot=500, seed=2)
    lo, hi = fit.interval
    assert lo < 2.0 < hi and hi - lo < 0.3
    assert not fit.excludes(2.0) and fit.excludes(2.5)


def test_no_bootstrap_is_the_plain_slope() -> None:
    x = np.array([3.0, 7, 20, 55])
    y = np.array([1.0, 2.5, 4.0, 9.0])
    fit = fit_power_law(x, y, n_boot=0)
    assert fit.interval is None and fit.samples.size == 0
    assert fit.exponent == pytest.approx(np.polyfit(np.log(x), np.log(y), 1)[0], rel=1e-12)
    with pytest.raises(ValueError, match="n_boot=0"):
        fit.excludes(1.0)


def test_rows_of_seeds(rng: np.random.Generator) -> None:
    ms = np.array([100, 200, 400, 800, 1600])
    exact = fit_power_law(ms, [[round(7 * m ** (2 / 3))] * 4 for m in ms], n_boot=50)
    assert exact.exponent == pytest.approx(2 / 3, abs=2e-3)
    assert exact.interval[0] == pytest.approx(exact.interval[1], abs=1e-12)
    # coverage of the bootstrap interval over 40 synthetic studies (true exponent 1/2, 8 seeds
    # per m, log-normal spread 0.05): nominal 95%; a percentile bootstrap of 8 samples covers
    # somewhat less, and below 80% (32 of 40) it would be badly miscalibrated
    hits = 0
    for _ in range(40):
        noisy = [np.round(5 * m**0.5 * np.exp(rng.normal(0, 0.05, 8))) for m in ms]
        fit = fit_power_law(ms, noisy, n_boot=200, seed=rng)
        hits += fit.interval[0] <= 0.5 <= fit.interval[1]
        assert fit.interval[1] - fit.interval[0] < 0.15
    assert hits >= 32
    # the 90% quantile of 8 seeds (their maximum) grows with the same exponent, from higher up
    q = fit_power_law(ms, noisy, statistic="quantile", n_boot=200, seed=1)
    assert q.prefactor > fit.prefactor
    assert abs(q.exponent - 0.5) < 0.08


def test_quantile() -> None:
    assert quantile([5, 1, 3, 2, 4]) == 5  # 90% of 5 = all 5
    assert quantile(list(range(1, 11))) == 9
    assert quantile([3, 1], fraction=0.5) == 1


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: fit_power_law([1, 2], [1, 2]), "length >= 3"),
        (lambda: fit_power_law([1, 2, 3], [1, -2, 3]), "> 0"),
        (lambda: fit_power_law([10, 10], [[1], [2]]), "distinct"),
        (lambda: fit_power_law([10, 20], [[1]]), "one value or one row"),
        (lambda: fit_power_law([10, 20], [[1], [0]]), "> 0"),
        (lambda: fit_power_law([10, 20], [[1], [2]], statistic="max"), "statistic"),
        (lambda: fit_power_law([10, 20], [[1], []]), "empty"),
        (lambda: fit_power_law([0, 20, 30], [1, 2, 3]), "x must"),
        (lambda: quantile([]), "empty"),
    ],
)
def test_bad_arguments(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]
