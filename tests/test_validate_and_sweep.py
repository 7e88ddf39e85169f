"""Argument checks and the monotone searches."""

from __future__ import annotations

import numpy as np
import pytest
from superposition import _validate as V
from superposition import largest_passing, smallest_passing


def test_checks_accept_and_reject() -> None:
    assert V.check_int("n", np.int64(3), low=1) == 3
    with pytest.raises(ValueError, match="n must be an integer"):
        V.check_int("n", 3.0)
    with pytest.raises(ValueError, match="n must be between 1 and 4, got 5"):
        V.check_int("n", 5, low=1, high=4)
    assert V.check_probability("p", 1.0) == 1.0
    with pytest.raises(ValueError, match=r"p must be in \(0.0, 1.0\], got 0.0"):
        V.check_probability("p", 0.0)
    with pytest.raises(ValueError, match="p must be finite"):
        V.check_real("p", float("nan"))
    with pytest.raises(ValueError, match="p must be a real number"):
        V.check_real("p", "0.5")
    assert isinstance(V.as_generator(1), np.random.Generator)
    g = np.random.default_rng(0)
    assert V.as_generator(g) is g


@pytest.mark.parametrize("threshold", [1, 2, 3, 10, 99, 1000, 4096])
def test_searches_find_exact_threshold(threshold: int) -> None:
    calls: list[int] = []

    def below(n: int) -> bool:
        calls.append(n)
        return n <= threshold

    assert largest_passing(below, 1, 10_000, resolution=0) == threshold
    assert len(calls) <= 2 * np.log2(10_000) + 3  # bracketing + bisection, logarithmic
    assert smallest_passing(lambda n: n >= threshold, 1, 10_000, resolution=0) == threshold


def test_searches_edges_and_resolution() -> None:
    assert largest_passing(lambda n: False, 5, 10) == 4
    assert largest_passing(lambda n: True, 5, 10) == 10
    assert smallest_passing(lambda n: False, 5, 10) == 11
    assert smallest_passing(lambda n: True, 5, 10) == 5
    found = largest_passing(lambda n: n <= 123_456, 1, 10**7, resolution=0.05)
    assert found <= 123_456 and found >= 123_456 / 1.05
    with pytest.raises(ValueError, match="high must be >= 5"):
        largest_passing(lambda n: True, 5, 4)
