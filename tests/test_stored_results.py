"""The results kept in the repository (book/sweeps/store) are what the code computes today.

The U-AND-in-superposition chapter reads its costlier width searches from that store, the
correction chapter its costlier capacity searches. Their keys name the experiment's algorithm
version, not the library's source digest, so nothing else would notice a change to the samplers,
the layers, the evaluators or the searches that was not followed by a version bump. These tests
read every stored record and recompute the cheapest few of each experiment bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from superposition._blas import BLAS_CORETYPE, _has_avx2, blas_architecture, pin_kernels
from superposition.experiments import EXPERIMENTS
from superposition.store import Store, function_name, result_key, result_version

STORE = Path(__file__).resolve().parents[1] / "book" / "sweeps" / "store"
RECOMPUTED = 3  # the cheapest records of each experiment, recomputed on every run (seconds each)
# the experiments whose results the book keeps in the store, and the sweep that computes them
KEPT = {
    "width": "book/sweeps/uand_superposed_large.yaml",
    "capacity": "book/sweeps/correction_capacity.yaml",
}
BY_NAME = {function_name(EXPERIMENTS[name]): name for name in KEPT}


def stored() -> list[dict]:
    store = Store(STORE)
    records = []
    for key in store.keys():
        status, rec = store.read(key)
        assert status == "ok", f"{store.path(key)}: {status} (checksum or name does not match)"
        records.append(rec)
    return records


def test_every_stored_record_is_valid_and_current() -> None:
    records = stored()
    if not records:
        pytest.skip("no results kept in book/sweeps/store")
    for rec in records:
        assert rec["function"] in BY_NAME, (
            f"{rec['key']}: {rec['function']} is not a kept experiment"
        )
        name = BY_NAME[rec["function"]]
        version = result_version(EXPERIMENTS[name])
        assert rec["version"] == version, (
            f"{rec['key']}: computed by {rec['version']!r}, the experiment is now {version!r}; "
            f"recompute the store (superposition sweep {KEPT[name]})"
        )
        assert rec["key"] == result_key(rec["function"], rec["params"], rec["seed"], version)


@pytest.mark.parametrize("name", sorted(KEPT))
def test_the_cheapest_stored_records_are_recomputed_bit_for_bit(name: str) -> None:
    fn = EXPERIMENTS[name]
    mine = [r for r in stored() if r["function"] == function_name(fn)]
    records = sorted(mine, key=lambda r: r["cpu_time"])[:RECOMPUTED]
    if not records:
        pytest.skip(f"no {name} results kept in book/sweeps/store")
    from superposition.sweep import sweep as run_sweep

    for rec in records:
        table = run_sweep(fn, [rec["params"]], seeds=[rec["seed"]], store=None, progress=False)
        (fresh,) = list(table)
        assert fresh["metrics"] == rec["metrics"], (
            f"{rec['key']} ({rec['params']}, seed {rec['seed']}): the code now computes other "
            f"numbers than the stored ones; bump {fn.__name__}.algorithm_version and recompute "
            f"(OpenBLAS kernels here: {blas_architecture()}, stored with "
            f"{rec['machine'].get('blas', 'unrecorded')})"
        )


def test_a_capacity_record_recomputes_to_what_the_cli_prints() -> None:
    """The stored capacity metrics are the ``superposition capacity`` search's (the same
    function), checked here on a point small enough for every run (no store needed)."""
    from superposition.deep import capacity_search

    fn = EXPERIMENTS["capacity"]
    got = fn("grouped", 256, depth=5, n_samples=10, seed=1)
    ref = capacity_search("grouped", 256, depth=5, n_samples=10, seed=1, budget=512)
    assert got["m_max"] == ref.m_max
    assert got["relus"] == 512
    assert [tuple(t) for t in got["trials"]] == [tuple(t) for t in ref.trials]
    assert fn("denoiser", 256, budget=None, depth=5, n_samples=10)["relus"] is None
    with pytest.raises(ValueError, match="budget"):
        fn("grouped", 256, budget="3d", depth=5, n_samples=10)


def test_kept_steps_of_points_in_progress_belong_to_a_kept_sweep() -> None:
    """The finished trials of searches still in progress (``book/sweeps/store/partial``, kept so
    that a search of hours resumes in another session): each directory is a point of a kept
    sweep with no record yet, and each of its steps is a valid record of that point."""
    import yaml

    from superposition.store import PARTIAL, normalize
    from superposition.sweep import grid_points

    partial = STORE / PARTIAL
    dirs = sorted(p for p in partial.iterdir() if p.is_dir()) if partial.is_dir() else []
    if not dirs:
        pytest.skip("no searches in progress kept in book/sweeps/store/partial")
    points = {}
    for name, config in KEPT.items():
        cfg = yaml.safe_load((STORE.parents[2] / config).read_text())
        fn = EXPERIMENTS[name]
        seeds = range(cfg["seeds"]) if isinstance(cfg["seeds"], int) else cfg["seeds"]
        for grid in cfg["grids"]:
            for point in grid_points(grid, cfg["params"]):
                params = normalize(point, "params")
                for seed in seeds:
                    key = result_key(function_name(fn), params, seed, result_version(fn))
                    points[key] = (params, seed)
    for where in dirs:
        assert where.name in points, f"{where}: not a point of {sorted(KEPT.values())}"
        assert Store(STORE).read(where.name)[0] == "missing", (
            f"{where}: the point is finished, its steps should have been removed"
        )
        params, seed = points[where.name]
        steps = Store(where)
        assert steps.keys(), f"{where}: empty"
        for key in steps.keys():
            status, rec = steps.read(key)
            assert status == "ok", f"{steps.path(key)}: {status}"
            assert rec["params"]["point"] == params and rec["seed"] == seed


@pytest.mark.skipif(not _has_avx2(), reason="no AVX2 on this processor: OpenBLAS's own choice")
def test_import_pins_the_kernels_the_store_was_computed_with() -> None:
    """``import superposition`` before NumPy asks OpenBLAS for the AVX2 kernels (the AVX-512
    ones round some float64 products differently), and this process runs on them too."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    code = (
        "import os, superposition; from superposition._blas import blas_architecture; "
        "print(os.environ['OPENBLAS_CORETYPE'], blas_architecture())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [BLAS_CORETYPE, BLAS_CORETYPE]
    assert blas_architecture() == BLAS_CORETYPE  # the recomputations above ran on them
    assert not pin_kernels()  # NumPy is loaded here: too late to ask, and nothing is changed
