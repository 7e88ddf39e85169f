"""The results kept in the repository (book/sweeps/store) are what the code computes today.

The U-AND-in-superposition chapter reads its costlier width searches from that store. Their keys
name the experiment's algorithm version, not the library's source digest, so nothing else would
notice a change to the samplers, the layer, the evaluators or the search that was not followed by
a version bump. These tests read every stored record and recompute the cheapest few bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from superposition.experiments import EXPERIMENTS
from superposition.store import Store, function_name, result_key, result_version

STORE = Path(__file__).resolve().parents[1] / "book" / "sweeps" / "store"
RECOMPUTED = 3  # the cheapest records, recomputed on every run (a few seconds each)


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
    fn = EXPERIMENTS["width"]
    version = result_version(fn)
    for rec in records:
        assert rec["function"] == function_name(fn)
        assert rec["version"] == version, (
            f"{rec['key']}: computed by {rec['version']!r}, the experiment is now {version!r}; "
            "recompute the store (superposition sweep book/sweeps/uand_superposed_large.yaml)"
        )
        assert rec["key"] == result_key(rec["function"], rec["params"], rec["seed"], version)


def test_the_cheapest_stored_records_are_recomputed_bit_for_bit() -> None:
    records = sorted(stored(), key=lambda r: r["cpu_time"])[:RECOMPUTED]
    if not records:
        pytest.skip("no results kept in book/sweeps/store")
    fn = EXPERIMENTS["width"]
    from superposition.sweep import run_sweep

    for rec in records:
        table = run_sweep(fn, [rec["params"]], seeds=[rec["seed"]], store=None, progress=False)
        (fresh,) = list(table)
        assert fresh["metrics"] == rec["metrics"], (
            f"{rec['key']} ({rec['params']}, seed {rec['seed']}): the code now computes other "
            "numbers than the stored ones; bump superposed_width.algorithm_version and recompute"
        )
