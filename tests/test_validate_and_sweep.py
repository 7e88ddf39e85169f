"""Argument checks and the monotone searches."""

from __future__ import annotations

import numpy as np
import pytest

from superposition import _validate as V
from superposition import fraction_passing, largest_passing, run_grid, smallest_passing


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


def test_fraction_passing_counts_and_stops_early() -> None:
    calls: list[int] = []

    def passes(size: int, seed: int) -> bool:
        calls.append(seed)
        return seed % 10 != 0  # seeds 0, 10, 20, ... fail

    assert fraction_passing(passes, 5, range(1, 10), fraction=0.9)  # all 9 pass
    calls.clear()
    assert not fraction_passing(passes, 5, range(0, 10), fraction=1.0)
    assert calls == [0]  # decided by the first failure
    assert fraction_passing(passes, 5, range(0, 10), fraction=0.9)  # 9 of 10
    assert not fraction_passing(passes, 5, [0, 10, 1, 2], fraction=0.9)
    with pytest.raises(ValueError, match="seeds must not be empty"):
        fraction_passing(passes, 5, [])
    with pytest.raises(ValueError, match="fraction must be in"):
        fraction_passing(passes, 5, [1], fraction=0.0)


def _experiment(m: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"value": float(rng.standard_normal(m).sum()), "count": m}


POINTS = [{"m": m, "seed": s} for m in (3, 5, 8) for s in (0, 1)]


def test_run_grid_saves_atomically_and_resumes(tmp_path) -> None:
    store = tmp_path / "sweep"
    full = run_grid(_experiment, POINTS, path=store, progress=False)
    assert [r["m"] for r in full] == [p["m"] for p in POINTS]
    assert [r["seed"] for r in full] == [p["seed"] for p in POINTS]
    assert full[0] == {"m": 3, "seed": 0, **_experiment(3, 0)}
    assert len(list(store.glob("*.json"))) == len(POINTS)  # one file per point
    assert not list(store.glob(".*.tmp"))  # no temporary file left behind

    # interrupt a fresh sweep after 3 points: the finished ones are on disk
    store2 = tmp_path / "interrupted"
    calls: list[dict] = []
    interrupt = [True]

    def experiment(**p):  # the same function (same result keys) in both runs
        if interrupt[0] and len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(p)
        return _experiment(**p)

    with pytest.raises(KeyboardInterrupt):
        run_grid(experiment, POINTS, path=store2, progress=False)
    assert len(list(store2.glob("*.json"))) == 3

    # resuming runs only the missing points and gives the same bits as the full run
    interrupt[0] = False
    calls.clear()
    resumed = run_grid(experiment, POINTS, path=store2, progress=False, desc="resumed")
    assert len(calls) == len(POINTS) - 3
    assert resumed == full


def test_run_grid_same_bits_on_a_process_pool() -> None:
    from concurrent.futures import ProcessPoolExecutor

    serial = run_grid(_experiment, POINTS, progress=False)
    with ProcessPoolExecutor(max_workers=2) as pool:
        assert run_grid(_experiment, POINTS, executor=pool, progress=False) == serial
    assert run_grid(_experiment, POINTS, executor="processes", progress=False) == serial
