"""The sweep runner: one file per point, resumable after SIGKILL, damaged files recomputed,
the same bits on every executor (in-process, process pool, Dask), and the ``sweep`` command."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from superposition import executors as EX
from superposition import experiments as X
from superposition import store as ST
from superposition import sweep as S
from superposition.cli import main

REPO = Path(__file__).resolve().parents[1]


def _dot(n: int, seed: int) -> dict:
    """A long dot product: OpenBLAS splits it across threads, so its last bits depend on the
    thread count (the reason every point runs with one BLAS thread)."""
    rng = np.random.default_rng([n, seed])
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    return {"dot": float(a @ b), "norm": float(np.linalg.norm(a)), "head": a[:3]}


GRID = {"n": [200_000, 300_000]}


def _metrics(table: list) -> list:
    return [(r["key"], r["params"], r["seed"], r["metrics"]) for r in table]


# ---------------------------------------------------------------- executors


def test_local_and_process_pool_agree_bit_for_bit(tmp_path) -> None:
    local = S.sweep(_dot, GRID, seeds=2, progress=False)
    assert len(local) == 4 and local.info["computed"] == 4
    assert [r["seed"] for r in local] == [0, 1, 0, 1]
    assert local[0]["metrics"]["head"] == _dot(200_000, 0)["head"].tolist()
    procs = S.sweep(_dot, GRID, seeds=2, executor="processes", workers=2, progress=False)
    assert _metrics(procs) == _metrics(local)
    # a caller's own pool, and the library experiments (same numbers as the uand command)
    grid = {"n_features": [24], "neurons": [16, 32]}
    with ProcessPoolExecutor(max_workers=2) as pool:
        pooled = S.sweep(
            X.uand_error, grid, 2, params={"sparsity": 3, "n_samples": 20}, executor=pool
        )
    here = S.sweep(X.uand_error, grid, 2, params={"sparsity": 3, "n_samples": 20}, progress=False)
    assert _metrics(pooled) == _metrics(here)


def test_one_blas_thread_per_point() -> None:
    from threadpoolctl import threadpool_info

    from superposition.backend import blas_threads

    def blas() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas()
    assert before, "numpy's BLAS was not found"
    with blas_threads(S.BLAS_THREADS):
        assert blas() == [S.BLAS_THREADS] * len(before)
    assert blas() == before
    # the in-process result equals a fresh interpreter forced to one thread
    code = "import json, test_sweep_store as t; print(json.dumps(t._dot(300_000, 1)['dot']))"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    ref = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert ref.returncode == 0, ref.stderr
    here = S.sweep(_dot, {"n": [300_000]}, seeds=[1], progress=False)
    assert here[0]["metrics"]["dot"] == json.loads(ref.stdout)


def test_dask_local_cluster_same_bits(tmp_path, monkeypatch, capsys) -> None:
    distributed = pytest.importorskip("distributed")
    local = S.sweep(_dot, GRID, seeds=2, progress=False)
    uand = ["sweep", "--experiment", "uand", "--grid", "n_features=20", "--grid", "neurons=8,16"]
    uand += ["--param", "sparsity=2", "--param", "n_samples=10", "--seeds", "2", "--json"]
    assert main([*uand, "--no-store"]) == 0
    uand_local = json.loads(capsys.readouterr().out)["records"]
    start = time.perf_counter()
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        on_dask = S.sweep(_dot, GRID, seeds=2, executor=client, progress=False)
        grid = S.run_grid(_point, POINTS, executor=client, progress=False)
        # an existing scheduler, named by the environment or on the command line
        monkeypatch.setenv(EX.SCHEDULER_ENV, cluster.scheduler_address)
        by_env = S.sweep(_dot, GRID, seeds=2, executor="dask", store=tmp_path, progress=False)
        monkeypatch.delenv(EX.SCHEDULER_ENV)
        assert main([*uand, "--scheduler", cluster.scheduler_address, "--no-store"]) == 0
        uand_dask = json.loads(capsys.readouterr().out)
    print(f"Dask LocalCluster test: {time.perf_counter() - start:.1f} s")
    assert _metrics(on_dask) == _metrics(local) == _metrics(by_env)
    assert by_env.info["computed"] == 4 and len(ST.Store(tmp_path).keys()) == 4
    assert grid == S.run_grid(_point, POINTS, progress=False)
    assert uand_dask["executor"] == "dask"
    assert _metrics(uand_dask["records"]) == _metrics(uand_local)


def _point(m: int, seed: int) -> dict:
    return {"value": float(np.random.default_rng(seed).standard_normal(m).sum())}


POINTS = [{"m": m, "seed": s} for m in (3, 5) for s in (0, 1)]


# ---------------------------------------------------------------- the store


def test_one_file_per_point_keyed_by_function_params_seed_version(tmp_path) -> None:
    table = S.sweep(_dot, {"n": [1000, 2000]}, seeds=[3, 4], store=tmp_path, progress=False)
    store = ST.Store(tmp_path)
    assert store.keys() == sorted(r["key"] for r in table)
    name = "test_sweep_store._dot"
    for rec in table:
        assert rec["function"].endswith(name) and rec["version"] == ST.library_version()
        assert rec["key"] == ST.result_key(
            rec["function"], rec["params"], rec["seed"], rec["version"]
        )
        assert rec["wall_time"] > 0
        status, stored = store.read(rec["key"])
        assert status == "ok"
        assert {k: v for k, v in stored.items() if k not in ("format", "checksum")} == rec
    # any change of function, parameters, seed or version changes the key
    base = ST.result_key(name, {"n": 1000}, 3, "0.1.0")
    others = {
        ST.result_key(name + "x", {"n": 1000}, 3, "0.1.0"),
        ST.result_key(name, {"n": 1001}, 3, "0.1.0"),
        ST.result_key(name, {"n": 1000}, 4, "0.1.0"),
        ST.result_key(name, {"n": 1000}, 3, "0.1.1"),
    }
    assert base not in others and len(others) == 4
    assert not list(tmp_path.glob(".*.tmp"))
    # the columns of the table
    assert table.column("n") == [1000, 1000, 2000, 2000]
    assert table.column("seed") == [3, 4, 3, 4]
    cols = table.to_columns()
    assert cols["dot"] == table.column("dot") and "wall_time" in cols and "version" in cols
    with pytest.raises(ValueError, match="column 'nope'"):
        table.column("nope")


def test_damaged_result_files_are_recomputed_never_read(tmp_path) -> None:
    calls: list[dict] = []

    def counted(n: int, seed: int) -> dict:
        calls.append({"n": n, "seed": seed})
        return _dot(n, seed)

    grid = {"n": [1000, 2000, 3000]}
    first = S.sweep(counted, grid, seeds=2, store=tmp_path, progress=False)
    assert len(calls) == 6
    store = ST.Store(tmp_path)
    k = [r["key"] for r in first]
    # truncated mid-file (as a crash of a non-atomic writer would leave it)
    text = store.path(k[0]).read_text()
    store.path(k[0]).write_text(text[: len(text) // 2])
    # valid JSON with one digit of a metric changed: the checksum catches it
    rec = json.loads(store.path(k[1]).read_text())
    rec["metrics"]["dot"] += 1.0
    store.path(k[1]).write_text(json.dumps(rec))
    # a whole, valid record copied under another point's name
    store.path(k[2]).write_text(store.path(k[3]).read_text())
    # empty file
    store.path(k[4]).write_text("")
    calls.clear()
    again = S.sweep(counted, grid, seeds=2, store=tmp_path, progress=False)
    assert sorted((c["n"], c["seed"]) for c in calls) == [
        (1000, 0),
        (1000, 1),
        (2000, 0),
        (3000, 0),
    ]
    assert again.info["corrupt"] == 4 and again.info["cached"] == 2
    assert _metrics(again) == _metrics(first)
    assert all(store.read(key)[0] == "ok" for key in k)


def test_interrupted_in_process_sweep_keeps_finished_points(tmp_path) -> None:
    seen: list[int] = []

    def flaky(n: int, seed: int) -> dict:
        if len(seen) == 3:
            raise KeyboardInterrupt
        seen.append(seed)
        return _dot(n, seed)

    with pytest.raises(KeyboardInterrupt):
        S.sweep(flaky, {"n": [1000]}, seeds=6, store=tmp_path, progress=False)
    assert len(ST.Store(tmp_path).keys()) == 3


def _stepped(n: int, seed: int, checkpoint=None) -> dict:
    """Four steps, each a long dot product; ``STEPS`` logs the steps computed and ``STOP_AT``
    interrupts the run before that many have been (a session that ends mid-point)."""

    def compute(i: int) -> dict:
        if len(STEPS) == STOP_AT[0]:
            raise KeyboardInterrupt
        STEPS.append((n, seed, i))
        return _dot(n + i, seed)

    run = (lambda step, f: f()) if checkpoint is None else checkpoint.step
    values = [run({"i": i}, lambda i=i: compute(i)) for i in range(4)]
    return {"dots": [v["dot"] for v in values], "head": values[-1]["head"]}


STEPS: list = []
STOP_AT = [-1]


def test_an_interrupted_point_resumes_at_its_last_finished_step(tmp_path) -> None:
    plain = S.sweep(_stepped, {"n": [1000]}, seeds=[2], progress=False)
    STEPS.clear()
    STOP_AT[0] = 3
    with pytest.raises(KeyboardInterrupt):
        S.sweep(_stepped, {"n": [1000]}, seeds=[2], store=tmp_path, progress=False)
    (key,) = [r["key"] for r in plain]
    partial = tmp_path / ST.PARTIAL / key
    assert len(list(partial.glob("*.json"))) == 3 and not ST.Store(tmp_path).keys()
    (busy,) = S.partial_points(_stepped, {"n": [1000]}, seeds=[1, 2], store=tmp_path)
    assert (busy["params"], busy["seed"]) == ({"n": 1000}, 2)
    assert [v["dot"] for v in busy["steps"]] == plain[0]["metrics"]["dots"][:3]  # in order
    assert busy["cpu_time"] > 0
    STEPS.clear()
    STOP_AT[0] = -1
    resumed = S.sweep(_stepped, {"n": [1000]}, seeds=[2], store=tmp_path, progress=False)
    assert STEPS == [(1000, 2, 3)]  # only the step not finished before
    assert _metrics(resumed) == _metrics(plain)  # the same bits as straight through
    (rec,) = list(resumed)
    assert rec["resumed_steps"] == 3 and rec["cpu_time"] > 0
    assert not partial.exists()  # removed once the point's record is written
    assert S.partial_points(_stepped, {"n": [1000]}, seeds=[1, 2], store=tmp_path) == []
    # steps left by a run killed between its record and their removal go on the next run
    ST.Checkpoint(partial, rec["function"], {"n": 1000}, 2, rec["version"]).step({"i": 0}, dict)
    S.sweep(_stepped, {"n": [1000]}, seeds=[2], store=tmp_path, progress=False)
    assert not partial.exists()
    status, stored = ST.Store(tmp_path).read(key)
    assert status == "ok" and stored["metrics"] == rec["metrics"]


def test_the_progress_bar_counts_the_steps_of_points_in_progress(
    tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(S, "STEP_POLL_SECONDS", 0.02)

    def slow(n: int, seed: int, checkpoint=None) -> dict:
        for i in range(3):
            checkpoint.step({"i": i}, lambda i=i: time.sleep(0.1) or {"i": i})
        return {"n": n}

    S.sweep(slow, {"n": [1]}, seeds=[0], store=tmp_path, progress=True)
    err = capsys.readouterr().err
    assert any(f"in progress: 1, steps kept: {k}" in err for k in (1, 2))  # while it ran


def test_checkpoint_steps_are_keyed_by_point_and_checked(tmp_path) -> None:
    calls = []

    def value() -> dict:
        calls.append(1)
        return {"x": np.float64(0.1) * 3, "v": np.arange(2)}

    point = ("f", {"n": 3}, 0, "algorithm 1")
    a = ST.Checkpoint(tmp_path / "a", *point).step({"d": 8}, value)
    assert a == {"x": 0.1 * 3, "v": [0, 1]} and type(a["x"]) is float  # a JSON round trip
    ck = ST.Checkpoint(tmp_path / "a", *point)
    assert ck.step({"d": 8}, value) == a and len(calls) == 1 and ck.replayed == 1
    ck.step({"d": 9}, value)  # another step is computed
    assert len(calls) == 2
    other = ST.Checkpoint(tmp_path / "a", "f", {"n": 4}, 0, "algorithm 1")
    other.step({"d": 8}, value)  # the same step of another point is not read
    assert len(calls) == 3 and other.replayed == 0
    (f,) = [p for p in (tmp_path / "a").glob("*.json") if json.loads(p.read_text())["params"]
            == {"point": {"n": 3}, "step": {"d": 8}}]  # fmt: skip
    f.write_text(f.read_text().replace("0.3", "0.4"))  # damaged: recomputed, never read
    assert ST.Checkpoint(tmp_path / "a", *point).step({"d": 8}, value) == a and len(calls) == 4
    with pytest.raises(ValueError, match="must return a mapping"):
        ST.Checkpoint(tmp_path / "b", *point).step({"d": 1}, lambda: 3)
    with pytest.raises(ValueError, match="checkpoint is given by the sweep"):
        S.sweep(_stepped, {"n": [10], "checkpoint": [None]}, seeds=[0], progress=False)


def test_checkpoints_count_cost_once_survive_removal_and_are_pruned(tmp_path) -> None:
    """A step asked twice in one run is not "resumed"; a step written after another sweep
    removed the directory is kept; prune drops the steps of finished points and of other
    versions; a worker of another library refuses a checkpointed point before any work;
    partial_points only reads."""
    point = ("f", {"n": 3}, 0, ST.library_version())
    ck = ST.Checkpoint(tmp_path / "store" / ST.PARTIAL / "k1", *point)
    ck.step({"d": 1}, lambda: {"x": 1})
    ck.step({"d": 1}, lambda: {"x": 2})  # the search asks again: read back, not resumed
    assert ck.replayed == 0 and ck.replayed_cpu == 0.0
    shutil.rmtree(ck.store.root)
    assert ck.step({"d": 2}, lambda: {"x": 3}) == {"x": 3}  # written again
    assert len(list(ck.store.root.glob("*.json"))) == 1
    old = ST.Checkpoint(tmp_path / "store" / ST.PARTIAL / "k2", "f", {"n": 3}, 0, "0.0.0+src.x")
    old.step({"d": 1}, lambda: {"x": 1})
    store = ST.Store(tmp_path / "store")
    done = {"key": "k3", "function": "f", "params": {}, "seed": 0, "metrics": {},
            "version": ST.library_version()}  # fmt: skip
    done["key"] = ST.result_key("f", {}, 0, ST.library_version())
    store.write(done)
    left = ST.Checkpoint(tmp_path / "store" / ST.PARTIAL / done["key"], *point)
    left.step({"d": 1}, lambda: {"x": 1})
    assert store.prune() == 2  # another version's steps, a finished point's leftovers
    assert sorted(p.name for p in (tmp_path / "store" / ST.PARTIAL).iterdir()) == ["k1"]
    with pytest.raises(ValueError, match="a worker runs superposition"):
        S._evaluate(_stepped, {"n": 10}, 0, (str(tmp_path / "w"), "f", "v", "0.0.0"))
    assert not (tmp_path / "w").exists()  # refused before anything was written
    assert S.partial_points(_stepped, {"n": [1]}, store=tmp_path / "none") == []
    assert not (tmp_path / "none").exists()  # read only


def test_a_checkpointed_point_on_a_process_pool(tmp_path) -> None:
    """The checkpoint's directory reaches the workers; the record is the in-process one."""
    grid = {"n_features": [40], "sparsity": [2], "target_error": [0.5], "n_samples": [2]}
    fn = X.EXPERIMENTS["width"]
    here = S.sweep(fn, grid, seeds=[1], store=tmp_path / "a", progress=False)
    pool = S.sweep(fn, grid, seeds=[1], store=tmp_path / "b", executor="processes",
                   workers=1, progress=False)  # fmt: skip
    assert _metrics(here) == _metrics(pool)
    for d in "ab":  # the steps were kept (the directory was made) and removed at the end
        assert (tmp_path / d / ST.PARTIAL).is_dir()
        assert not list((tmp_path / d / ST.PARTIAL).iterdir())


SLOW_MODULE = """
import os, time
import numpy as np

def slow(m, seed):
    time.sleep(0.1)
    value = float(np.random.default_rng([m, seed]).standard_normal(m).sum())
    with open(os.environ["SWEEP_LOG"], "a") as fh:
        fh.write(f"{m} {seed}\\n")
    return {"value": value}
"""

RUNNER = """
import sys
import slowexp
from superposition.sweep import sweep

if __name__ == "__main__":
    t = sweep(slowexp.slow, {"m": list(range(1, 16))}, seeds=2, store=sys.argv[1],
              executor="processes", workers=2, progress=False)
    print(t.info["computed"], t.info["cached"])
"""


def test_sigkill_mid_sweep_then_resume_every_point_exactly_once(tmp_path) -> None:
    (tmp_path / "slowexp.py").write_text(textwrap.dedent(SLOW_MODULE))
    (tmp_path / "runner.py").write_text(textwrap.dedent(RUNNER))
    store_dir, log = tmp_path / "store", tmp_path / "log"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "SWEEP_LOG": str(log)}
    cmd = [sys.executable, str(tmp_path / "runner.py"), str(store_dir)]
    n_points = 30
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(list(store_dir.glob("*.json"))) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 of the sweep, not of its workers
        proc.wait()
        deadline = time.monotonic() + 10  # the orphaned workers notice and exit
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        orphans = _group_alive(proc.pid)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not orphans, "worker processes outlived the killed sweep"
    saved = {p.name: p.read_bytes() for p in store_dir.glob("*.json")}
    assert 6 <= len(saved) < n_points, "the kill must land mid-run"
    store = ST.Store(store_dir)  # also removes the killed writers' temporary files
    assert all(store.read(Path(name).stem)[0] == "ok" for name in saved)  # atomic writes
    assert not list(store_dir.glob(".*.tmp"))

    log.write_text("")
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    computed, cached = map(int, res.stdout.split())
    assert (computed, cached) == (n_points - len(saved), len(saved))
    recomputed = log.read_text().split("\n")[:-1]
    assert len(recomputed) == len(set(recomputed)) == n_points - len(saved)  # each once
    files = {p.name: p.read_bytes() for p in store_dir.glob("*.json")}
    assert len(files) == n_points
    assert all(files[name] == data for name, data in saved.items())  # untouched
    sys.path.insert(0, str(tmp_path))
    try:
        import slowexp

        name = ST.function_name(slowexp.slow)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("slowexp", None)
    expected = {
        ST.result_key(name, {"m": m}, s, ST.library_version()) + ".json"
        for m in range(1, 16)
        for s in (0, 1)
    }
    assert set(files) == expected
    for key in expected:
        status, rec = store.read(key[:-5])
        assert status == "ok"
        m, s = rec["params"]["m"], rec["seed"]
        assert (f"{m} {s}" in recomputed) == (key not in saved)  # computed again iff lost
        assert rec["metrics"]["value"] == float(
            np.random.default_rng([m, s]).standard_normal(m).sum()
        )
    print(f"kill/resume test: {time.perf_counter() - start:.1f} s")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# ---------------------------------------------------------------- threshold search


def test_threshold_sweep_matches_a_brute_force_oracle(tmp_path) -> None:
    def need(m: int, seed: int) -> int:  # a seed passes from this width on
        return 3 * m + 7 * seed

    def exp(m: int, width: int, seed: int) -> dict:
        return {"margin": width - need(m, seed)}

    seeds, fraction = [0, 1, 2, 3, 4], 0.6
    table = S.threshold_sweep(
        exp,
        {"m": [5, 40, 300]},
        seeds,
        param="width",
        low=1,
        high=1000,
        passes=lambda mt: mt["margin"] >= 0,
        fraction=fraction,
        resolution=0,
        store=tmp_path,
        progress=False,
    )
    for rec in table:
        m = rec["params"]["m"]
        oracle = next(
            w for w in range(1, 1001) if sum(w >= need(m, s) for s in seeds) >= 3
        )  # ceil(0.6 * 5) = 3 seeds
        assert rec["threshold"] == oracle
        assert rec["passing"][str(oracle)] >= 3
    again = S.threshold_sweep(
        exp,
        {"m": [5, 40, 300]},
        seeds,
        param="width",
        low=1,
        high=1000,
        passes=lambda mt: mt["margin"] >= 0,
        fraction=fraction,
        resolution=0,
        store=tmp_path,
        progress=False,
    )
    assert again.info["computed"] == 0 and again.column("threshold") == table.column("threshold")
    with pytest.raises(ValueError, match="param 'm' is searched"):
        S.threshold_sweep(exp, {"m": [5]}, 2, param="m", low=1, high=9, passes=bool)


# ---------------------------------------------------------------- library API checks


def test_bad_sweep_arguments() -> None:
    with pytest.raises(ValueError, match="executor must be one of"):
        S.sweep(_dot, GRID, executor="gpu")
    with pytest.raises(ValueError, match="scheduler applies to executor='dask' only"):
        S.sweep(_dot, GRID, executor="processes", scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="do not fit"):
        S.sweep(_dot, {"n": [10], "m": [1]})
    with pytest.raises(ValueError, match="grid\\['n'\\] must be a non-empty list"):
        S.sweep(_dot, {"n": []})
    with pytest.raises(ValueError, match="seeds must be distinct"):
        S.sweep(_dot, GRID, seeds=[1, 1])
    with pytest.raises(ValueError, match="seed must be given by seeds"):
        S.sweep(_dot, GRID, params={"seed": 3})
    with pytest.raises(ValueError, match="both in the grid and in params"):
        S.sweep(_dot, GRID, params={"n": 3})
    with pytest.raises(ValueError, match="must return a mapping"):
        S.sweep(lambda n, seed: 3.0, GRID, progress=False)


def test_a_fully_stored_sweep_opens_no_executor(tmp_path) -> None:
    first = S.sweep(_dot, GRID, 2, store=tmp_path, progress=False)
    # no scheduler listens there: opening the executor would fail
    again = S.sweep(
        _dot,
        GRID,
        2,
        store=tmp_path,
        executor="dask",
        scheduler="tcp://127.0.0.1:9",
        progress=False,
    )
    assert again.info["cached"] == 4 and _metrics(again) == _metrics(first)


def test_workers_with_another_library_version_are_refused(tmp_path) -> None:
    from concurrent.futures import Future

    class OldWorkers:  # an executor whose workers run another superposition
        def submit(self, fn, *args):
            out = fn(*args)
            fut: Future = Future()
            fut.set_result((out[0], out[1], "0.0.0"))
            return fut

    with pytest.raises(ValueError, match="a worker runs superposition 0.0.0"):
        S.sweep(_dot, GRID, executor=OldWorkers(), store=tmp_path, progress=False)
    assert ST.Store(tmp_path).keys() == []  # nothing stored under this version's keys


def test_store_must_be_a_directory(tmp_path) -> None:
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(ValueError, match="store must be a directory"):
        S.sweep(_dot, GRID, store=tmp_path / "results.json", progress=False)


# ---------------------------------------------------------------- command line


def test_cli_matches_the_uand_command_and_resumes(tmp_path, capsys) -> None:
    argv = ["sweep", "--experiment", "uand", "--grid", "n_features=24", "--grid", "neurons=16,32"]
    argv += ["--param", "sparsity=3", "--param", "n_samples=30", "--seeds", "2"]
    argv += ["--store", str(tmp_path), "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["info"]["computed"] == 4 and len(out["records"]) == 4
    rec = out["records"][3]
    assert (rec["params"]["neurons"], rec["seed"]) == (32, 1)
    assert main(["uand", "--features", "24", "--neurons", "32", "--sparsity", "3"]
                + ["--samples", "30", "--seed", "1", "--json"]) == 0  # fmt: skip
    direct = json.loads(capsys.readouterr().out)
    for key in ("max_abs_error", "mean_abs_error", "p", "n_outputs"):
        assert rec["metrics"][key] == direct[key]
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["info"]["computed"] == 0 and again["records"] == out["records"]


def test_example_configs_run(tmp_path, capsys) -> None:
    tiny = ["--grid", "n_features=24,32", "--grid", "neurons=16", "--seeds", "2"]
    assert (
        main(["sweep", str(REPO / "examples/sweep_uand.yaml"), *tiny, "--store", str(tmp_path)])
        == 0
    )
    text = capsys.readouterr().out
    assert "4 points: 4 computed" in text and "n_features" in text
    tiny = ["--grid", "n_features=50", "--seeds", "3", "--param", "n_samples=50"]
    cfg = REPO / "examples/embed_min_dim.yaml"
    assert main(["sweep", str(cfg), *tiny, "--no-store", "--json"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)["records"]
    d0 = rec["threshold"]
    assert rec["param"] == "embed_dim" and 4 < d0 <= 2048
    assert rec["passing"][str(d0)] == 3  # 90% of 3 seeds: all three pass at the threshold


def test_cli_list(capsys) -> None:
    assert main(["sweep", "--list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert set(rows) == set(X.EXPERIMENTS) and "neurons" in rows["uand"]["params"]


def _cfg(tmp_path: Path, text: str) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["sweep"], "CONFIG.yaml or --experiment"),
        (["sweep", "--experiment", "nope"], "experiment must be one of"),
        (["sweep", "--experiment", "nosuchmodule_xyz:f"], "needs --allow-import"),
        (["sweep", "--experiment", "nosuchmodule_xyz:f", "--allow-import"], "cannot import"),
        (["sweep", "--experiment", "uand", "--grid", "neurons"], "--grid expects NAME=VALUE"),
        (["sweep", "--experiment", "uand", "--grid", "neurons=1,,2"], "expected V1,V2"),
        (["sweep", "--experiment", "uand", "--seeds", "x"], "--seeds expects"),
        (["sweep", "--experiment", "uand", "--seeds", "0"], "--seeds must be >= 1"),
        (["sweep", "--experiment", "uand", "--executor", "gpu"], "invalid choice"),
        (["sweep", "--experiment", "uand", "--workers", "0"], "--workers"),
        (["sweep", "--experiment", "uand", "--store", "a", "--no-store"], "exclude each other"),
        (
            [
                "sweep",
                "--experiment",
                "uand",
                "--executor",
                "processes",
                "--scheduler",
                "tcp://x:1",
            ],
            "scheduler applies to executor='dask' only",
        ),
        (["sweep", "--experiment", "uand", "--grid", "widht=4", "--no-store"], "do not fit"),
        (
            ["sweep", "--experiment", "uand", "--grid", "n_features=8", "--param", "neurons=4"]
            + ["--param", "sparsity=9", "--no-store"],
            "sparsity must be between 1 and 8",
        ),
        (["sweep", "/nonexistent/cfg.yaml"], "No such file"),
        ("experiment: uand\nbogus: 1\n", "unknown key 'bogus'"),
        ("experiment: uand\ngrid: {neurons: 3}\n", "grid 'neurons' must be a non-empty list"),
        ("experiment: uand\ngrid: {neurons: [3\n", "invalid YAML"),
        ("- 1\n- 2\n", "expected a mapping"),
        ("experiment: uand\nseeds: -1\n", "seeds must be an integer >= 1"),
        ("experiment: uand\nthreshold: {param: neurons, low: 1}\n", "threshold needs 'high'"),
        (
            "experiment: uand\nthreshold: {param: neurons, low: 1, high: 9, metric: x}\n",
            "exactly one of 'at_most' and 'at_least'",
        ),
        ("params: {neurons: 3}\n", "'experiment' is required"),
    ],
)
def test_bad_arguments_one_line_exit_2(argv, needle, tmp_path, capsys) -> None:
    if isinstance(argv, str):
        argv = ["sweep", _cfg(tmp_path, argv), "--no-store"]
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err and "Traceback" not in err, err


def test_library_version_names_the_source() -> None:
    """Result keys change with the code, not only with a release."""
    from superposition import __version__

    version = ST.library_version()
    assert version.startswith(__version__ + "+src.")
    assert len(version.split("+src.")[1]) == 12
    assert version == ST.library_version()  # stable within a process


def test_configs_are_code_imports_need_a_flag(tmp_path, capsys) -> None:
    """Only registered experiments run by default; an importable function needs --allow-import."""
    argv = ["sweep", "--experiment", "superposition.experiments:embedding_readout_error"]
    argv += ["--param", "n_features=40", "--param", "embed_dim=16", "--param", "n_samples=5"]
    argv += ["--no-store", "--json"]
    assert main(argv) == 2
    assert "--allow-import" in capsys.readouterr().err
    assert main([*argv, "--allow-import"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["function"] == "superposition.experiments.embedding_readout_error"


def test_prune_removes_other_versions(tmp_path, capsys) -> None:
    S.sweep(_dot, {"n": [1000]}, seeds=[0, 1], store=tmp_path, progress=False)
    store = ST.Store(tmp_path)
    key = store.keys()[0]
    status, rec = store.read(key)
    assert status == "ok"
    old = {**rec, "version": "0.0.1+src.000000000000"}
    old["key"] = ST.result_key(old["function"], old["params"], old["seed"], old["version"])
    store.write(old)
    (tmp_path / "junk.json").write_text("{not json")
    assert len(store.keys()) == 4
    assert main(["sweep", "--prune", "--store", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == 2
    assert sorted(store.keys()) == sorted(k for k in store.keys() if k != old["key"])
    assert len(store.keys()) == 2 and all(store.read(k)[0] == "ok" for k in store.keys())


# ---------------------------------------------------------------- grids, read-only, versions


def _versioned(n: int, seed: int) -> dict:
    return {"n": n + seed}


def test_result_version_read_only_and_machine(tmp_path) -> None:
    """An experiment that declares an algorithm version is keyed by it (not by the library's
    source); a read-only sweep refuses to compute a missing point; every record names the
    machine that computed it."""
    assert ST.result_version(_dot) == ST.library_version()
    _versioned.algorithm_version = "v1"  # type: ignore[attr-defined]
    try:
        assert ST.result_version(_versioned) == "algorithm v1"
        with pytest.raises(ValueError, match="read_only: 2 of 2 points"):
            S.sweep(_versioned, {"n": [1]}, seeds=2, store=tmp_path, read_only=True)
        table = S.sweep(_versioned, {"n": [1]}, seeds=2, store=tmp_path, progress=False)
        assert [r["metrics"]["n"] for r in table] == [1, 2]
        assert table[0]["version"] == "algorithm v1"
        assert table[0]["library_version"] == ST.library_version()
        assert table[0]["machine"]["cores"] == os.cpu_count() and table[0]["cpu_time"] >= 0
        again = S.sweep(_versioned, {"n": [1]}, seeds=2, store=tmp_path, read_only=True)
        assert again.info["computed"] == 0 and [r["key"] for r in again] == [
            r["key"] for r in table
        ]
        assert ST.Store(tmp_path).prune() == 0  # algorithm-keyed records survive a prune
        _versioned.algorithm_version = ""  # type: ignore[attr-defined]
        with pytest.raises(ValueError, match="algorithm_version"):
            ST.result_version(_versioned)
    finally:
        del _versioned.algorithm_version  # type: ignore[attr-defined]


def test_config_grids_run_their_union(tmp_path, capsys) -> None:
    cfg = _cfg(
        tmp_path,
        """
        experiment: uand
        params: {sparsity: 2, n_samples: 10}
        grids:
          - {n_features: [20], neurons: [16, 32]}
          - {n_features: [30], neurons: [24]}
        """,
    )
    assert main(["sweep", cfg, "--store", str(tmp_path / "s"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    got = [(r["params"]["n_features"], r["params"]["neurons"]) for r in out["records"]]
    assert got == [(20, 16), (20, 32), (30, 24)]
    both = _cfg(
        tmp_path,
        """
        experiment: uand
        grid: {n_features: [20]}
        grids: [{neurons: [16]}]
        """,
    )
    assert main(["sweep", both]) == 2
    assert "not both" in capsys.readouterr().err


def test_nested_checkpoint_steps_count_their_cost_once(tmp_path) -> None:
    """A step that reads back inner steps an interrupted run kept records their cost with its
    own and removes them once written; a step read back twice in one run counts once."""
    point = ("f", {"n": 3}, 0, "algorithm 1")

    def busy() -> float:
        t, x = time.process_time(), 0.0
        while time.process_time() - t < 0.05:
            x += 1.0
        return x

    def outer(ck, stop):
        ck.step({"i": 0}, lambda: {"x": busy()})
        if stop:
            raise KeyboardInterrupt
        return {"y": ck.step({"i": 1}, lambda: {"x": busy()})["x"]}

    first = ST.Checkpoint(tmp_path, *point)
    with pytest.raises(KeyboardInterrupt):
        first.step({"d": 8}, lambda: outer(first, True))
    inner = json.loads(next(tmp_path.glob("*.json")).read_text())["cpu_time"]
    assert inner >= 0.05
    ck = ST.Checkpoint(tmp_path, *point)
    ck.step({"d": 8}, lambda: outer(ck, False))
    ck.finished({"i": 0})  # asked again in the same run
    assert ck.replayed == 1 and ck.replayed_cpu == inner
    recs = [json.loads(f.read_text()) for f in tmp_path.glob("*.json")]
    assert [r["params"]["step"] for r in recs] == [{"d": 8}]  # its inner steps removed
    d8 = recs[0]
    assert d8["cpu_time"] >= inner + 0.05  # its own inner step and the one read back
    later = ST.Checkpoint(tmp_path, *point)
    later.step({"d": 8}, lambda: pytest.fail("finished: read back"))
    assert later.replayed == 1 and later.replayed_cpu == d8["cpu_time"]
