"""Sweeps: cached, resumable experiment grids and threshold searches on any executor.

:func:`sweep` evaluates an experiment ``fn(**params, seed=seed)`` at every point of a grid for
every seed and returns a :class:`Table` with one record per (point, seed)::

    {"key": ..., "function": "superposition.experiments.uand_error",
     "params": {"n_features": 64, "neurons": 128, ...}, "seed": 0,
     "metrics": {"max_abs_error": 0.41, ..., "backend": "numpy"}, "version": "0.1.0+src.…",
     "wall_time": 0.012}

:func:`threshold_sweep` runs a search instead (:mod:`superposition.search`): for every grid
point, the smallest (or largest) value of one integer parameter at which at least a
``fraction`` of the seeds pass. :func:`run_grid` is the list-of-points form of :func:`sweep`.

Every finished point is one file of the results store (:class:`superposition.store.Store`),
written atomically, so an interrupted sweep resumes where it stopped. Points run on an
executor (:func:`superposition.executors.open_executor`): this process, a process pool or a
Dask cluster.

Points that run for hours
    An experiment with a ``checkpoint`` parameter receives a
    :class:`superposition.store.Checkpoint` (when the sweep has a store): its finished steps
    (a width search's trials) are kept in ``<store>/partial/<key>/`` as they finish, so an
    interrupted point resumes at its last finished step, not from its start, with the same
    bits; they are removed when the point's record is written, whose ``wall_time`` and
    ``cpu_time`` then count the replayed steps' original cost (``resumed_steps`` says how
    many). On a Dask cluster this needs the store's directory on a file system the workers
    share.

Same bits on every executor
    A point's result depends only on its parameters and seed. Metrics are stored and returned
    as their JSON round trip (floats round-trip exactly), so a fresh result and a stored one are
    identical. Every point is evaluated with **one BLAS thread** (:data:`BLAS_THREADS`,
    :func:`superposition.backend.blas_threads`): a BLAS splits long dot products across threads
    and the rounding depends on the split, so without this a point computed in a 2-thread
    process and on a 1-thread Dask worker could differ in the last bit. Parallelism comes from
    running points side by side.

Configs are code
    An experiment is a function the workers call. :func:`sweep` takes any callable; the
    command line (``superposition sweep``) runs only the registered experiments
    (:data:`superposition.experiments.EXPERIMENTS`) unless ``--allow-import`` lets a config
    name an importable ``package.module:function``.

Progress
    A tqdm bar with ETA on stderr; ``progress=None`` shows it only on a terminal.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import json
import os
import pickle
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cloudpickle
import numpy as np

from ._validate import check_choice, check_int, check_real
from .backend import blas_threads
from .executors import check_executor, is_dask, open_executor
from .search import largest_passing, seeds_needed, smallest_passing
from .store import (
    PARTIAL,
    Checkpoint,
    Store,
    canonical_json,
    function_name,
    library_version,
    machine,
    normalize,
    result_key,
    result_version,
)

__all__ = [
    "BLAS_THREADS",
    "Table",
    "grid_points",
    "partial_points",
    "run_grid",
    "sweep",
    "threshold_sweep",
]

BLAS_THREADS = 1
"""BLAS threads used while evaluating a point (see the module docstring)."""
STEP_POLL_SECONDS = 30.0
"""How often the progress bar counts the finished steps of points in progress."""


# ------------------------------------------------------------------ evaluation


@dataclass(frozen=True)
class _Task:
    key: str
    function: str
    fn: Callable[..., Mapping[str, Any]]
    params: dict[str, Any]
    seed: int | None


def _evaluate(
    fn: Any,
    params: Mapping[str, Any],
    seed: int | None,
    checkpoint: tuple[str, str, str, str] | None = None,
) -> tuple[str, float, str, dict[str, Any], float, int]:
    """Worker side: run one point with one BLAS thread; metrics as canonical JSON, wall-clock
    seconds, the worker's library version (checked against the sweep's), its :func:`machine`,
    the CPU seconds of the worker process (on a shared machine, the cost without the wait) and
    the steps read back from a checkpoint. ``checkpoint``: ``(directory, function, version,
    the sweep's library version)`` of the point's :class:`Checkpoint`, for an experiment that
    takes one; the seconds then include those its replayed steps cost when they were computed.
    A worker whose library differs from the sweep's refuses such a point before computing
    anything (its steps would be kept under the sweep's keys). A directory the worker cannot
    write (a Dask worker without the store's file system) runs the point without one."""
    if isinstance(fn, bytes):
        fn = pickle.loads(fn)
    kwargs = dict(params)
    if seed is not None:
        kwargs["seed"] = seed
    ck = None
    if checkpoint is not None:
        if library_version() != checkpoint[3]:
            raise ValueError(
                f"a worker runs superposition {library_version()}, this sweep {checkpoint[3]}: "
                "install the same version on every worker"
            )
        try:
            ck = Checkpoint(checkpoint[0], checkpoint[1], params, seed, checkpoint[2])
        except OSError as exc:
            warnings.warn(
                f"no checkpoint for this point ({exc}): it runs from its start, and an "
                "interruption loses it",
                RuntimeWarning,
                stacklevel=2,
            )
        kwargs["checkpoint"] = ck
    with blas_threads(BLAS_THREADS):
        start, cpu = time.perf_counter(), time.process_time()
        metrics = fn(**kwargs)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    replayed = 0
    if ck is not None:
        wall, cpu, replayed = wall + ck.replayed_wall, cpu + ck.replayed_cpu, ck.replayed
    if not isinstance(metrics, Mapping):
        raise ValueError(
            f"an experiment must return a mapping of metrics, {function_name(fn)} returned "
            f"{type(metrics).__name__}"
        )
    return _normalize_metrics(metrics), wall, library_version(), machine(), cpu, replayed


def _normalize_metrics(metrics: Mapping[str, Any]) -> str:
    try:
        return canonical_json(dict(metrics))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metrics must be JSON-serialisable: {exc}") from None


def _record(task: _Task, out: tuple[Any, ...], version: str) -> dict[str, Any]:
    rec = {
        "key": task.key,
        "function": task.function,
        "params": task.params,
        "seed": task.seed,
        "metrics": json.loads(out[0]),
        "version": version,
        "wall_time": out[1],
    }
    if version != out[2]:  # keyed by the experiment's algorithm version: say what computed it
        rec["library_version"] = out[2]
    if len(out) > 3:
        rec["machine"] = out[3]
    if len(out) > 4:
        rec["cpu_time"] = out[4]
    if len(out) > 5 and out[5]:
        rec["resumed_steps"] = out[5]  # finished in an earlier, interrupted run
    return rec


def _public(rec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in ("format", "checksum")}


def _ship(fn: Callable[..., Any], executor: Any) -> Any:
    """What to send to a worker: Dask pickles functions itself; others get cloudpickle bytes
    (so functions defined in a notebook or script also run in spawned processes)."""
    if is_dask(executor):
        return fn
    return cloudpickle.dumps(fn)


class _Runner:
    """Evaluates tasks through a store and an executor; counts what it did."""

    def __init__(
        self,
        store: Store | None,
        stack: contextlib.ExitStack,
        executor: tuple[Any, int | None, str | None],
        bar: Any,
        version: str,
        info: dict[str, Any],
    ) -> None:
        self.store = store
        self.stack = stack
        self.spec = executor
        self.opened = False
        self._executor: Any = None
        self.bar = bar
        self.version = version  # the version in the result keys (result_version)
        self.library = library_version()  # the code every worker must run
        self.read_only = False
        self.info = info
        self.lock = threading.Lock()
        self.shipped: dict[int, Any] = {}

    @property
    def executor(self) -> Any:
        """Opened on first use, so a sweep whose points are all stored starts no workers."""
        with self.lock:
            if not self.opened:
                self._executor = self.stack.enter_context(open_executor(*self.spec))
                self.opened = True
        return self._executor

    def _count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.info[what] = self.info.get(what, 0) + n

    def run(self, tasks: Sequence[_Task]) -> dict[str, dict[str, Any]]:
        unique = {t.key: t for t in tasks}
        done: dict[str, dict[str, Any]] = {}
        todo = []
        for key, task in unique.items():
            status, rec = self.store.read(key) if self.store is not None else ("missing", None)
            if status == "ok":
                done[key] = _public(rec)
                self._count("cached")
                if self.store is not None and not self.read_only:  # a run killed in between
                    shutil.rmtree(self.store.root / PARTIAL / key, ignore_errors=True)
            else:
                if status == "corrupt":
                    self._count("corrupt")
                todo.append(task)
        if done and self.bar is not None:
            self.bar.update(len(done))
        if not todo:
            return done
        if self.read_only:
            where = self.store.root if self.store is not None else "(no store)"
            raise ValueError(
                f"read_only: {len(todo)} of {len(unique)} points are not in the store {where} "
                f"(first: {todo[0].function} {canonical_json(todo[0].params)} seed {todo[0].seed})"
            )
        with self._watch_steps(todo, done):
            if self.executor is None:
                for task in todo:
                    out = _evaluate(task.fn, task.params, task.seed, self._checkpoint(task))
                    self._finish(task, out, done)
            else:
                self._run_futures(todo, done)
        return done

    @contextlib.contextmanager
    def _watch_steps(self, todo: Sequence[_Task], done: Mapping[str, Any]) -> Iterator[None]:
        """While points that keep steps run, the progress bar counts their finished steps
        (a point may take hours; its steps show it moving), looked up every
        :data:`STEP_POLL_SECONDS`."""
        dirs = {t.key: where[0] for t in todo if (where := self._checkpoint(t)) is not None}
        bar = self.bar
        if not dirs or bar is None or getattr(bar, "disable", True):
            yield
            return
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(STEP_POLL_SECONDS):
                started, steps = 0, 0
                for key, where in list(dirs.items()):
                    if key in done:
                        continue
                    try:  # a point's directory goes when its record is written
                        n = sum(name.endswith(".json") for name in os.listdir(where))
                    except OSError:
                        continue
                    started, steps = started + 1, steps + n
                bar.set_postfix_str(f"in progress: {started}, steps kept: {steps}")

        watcher = threading.Thread(target=poll, name="sweep-steps", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()

    def _checkpoint(self, task: _Task) -> tuple[str, str, str, str] | None:
        """Where the point's finished steps live (an absolute path, for workers elsewhere), for
        an experiment that takes a checkpoint."""
        if self.store is None or not _takes_checkpoint(task.fn):
            return None
        where = (self.store.root / PARTIAL / task.key).resolve()
        return str(where), task.function, self.version, self.library

    def _finish(self, task: _Task, out: tuple[Any, ...], done: dict[str, Any]) -> None:
        if out[2] != self.library:
            raise ValueError(
                f"a worker runs superposition {out[2]}, this sweep {self.library}: install the "
                "same version on every worker"
            )
        rec = _record(task, out, self.version)
        if self.store is not None:
            self.store.write(rec)
            shutil.rmtree(self.store.root / PARTIAL / task.key, ignore_errors=True)
        done[task.key] = rec
        self._count("computed")
        if self.bar is not None:
            self.bar.update()

    def _run_futures(self, todo: Sequence[_Task], done: dict[str, Any]) -> None:
        ex = self.executor
        futures = {}
        extra = {"pure": False} if is_dask(ex) else {}
        for task in todo:
            if id(task.fn) not in self.shipped:
                self.shipped[id(task.fn)] = _ship(task.fn, ex)
            fut = ex.submit(
                _evaluate,
                self.shipped[id(task.fn)],
                task.params,
                task.seed,
                self._checkpoint(task),
                **extra,
            )
            futures[fut] = task
        error: BaseException | None = None
        try:
            for fut in _as_completed(futures):
                task = futures[fut]
                try:
                    out = fut.result()
                except Exception as exc:  # keep collecting: finished points are saved
                    self._count("failed")
                    error = error or exc
                    continue
                self._finish(task, out, done)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
        if error is not None:
            raise error


def _takes_checkpoint(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` has a ``checkpoint`` parameter (:class:`Checkpoint`)."""
    try:
        return "checkpoint" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _as_completed(futures: Mapping[Any, Any]) -> Iterator[Any]:
    first = next(iter(futures), None)
    if first is None:
        return iter(())
    if type(first).__module__.split(".")[0] == "distributed":
        from distributed import as_completed

        return iter(as_completed(list(futures)))
    from concurrent.futures import as_completed

    return as_completed(list(futures))


def _bar(total: int | None, desc: str, progress: bool | None) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=None if progress is None else not progress)


# ------------------------------------------------------------------ tables


class Table(list):
    """Records of a sweep (a list of dicts), with column access and no pandas needed.

    ``info`` counts the points: ``computed`` here, ``cached`` (read from the store),
    ``corrupt`` (files found damaged and recomputed), and the sweep's ``wall_time``.
    """

    def __init__(self, records: Sequence[Mapping[str, Any]] = (), info: Mapping | None = None):
        super().__init__(records)
        self.info: dict[str, Any] = dict(info or {})

    def column(self, name: str) -> list[Any]:
        """Values of ``name`` per record: a top-level field (``seed``, ``wall_time``, ...), a
        parameter, or a metric (``a.b`` for nested metrics)."""
        return [_lookup(rec, name) for rec in self]

    def to_columns(self) -> dict[str, list[Any]]:
        """``{column: values}`` of the flattened records (parameters, seed, metrics, ...)."""
        rows = [_flatten(rec) for rec in self]
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        return {name: [row.get(name) for row in rows] for name in names}

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` of :meth:`to_columns` (needs pandas)."""
        import pandas

        return pandas.DataFrame(self.to_columns())


def _lookup(rec: Mapping[str, Any], name: str) -> Any:
    if name in rec and not isinstance(rec[name], dict):
        return rec[name]
    for part in ("params", "metrics"):
        value: Any = rec.get(part, {})
        for piece in name.split("."):
            if not isinstance(value, dict) or piece not in value:
                break
            value = value[piece]
        else:
            return value
    raise ValueError(f"column {name!r} is not a field, parameter or metric of the records")


def _flatten(rec: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def put(name: str, value: Any) -> None:
        if name in out:
            raise ValueError(f"column {name!r} is both a parameter and a metric")
        out[name] = value

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            put(prefix, value)

    for k, v in rec.items():
        walk("" if k in ("params", "metrics") else k, v)
    return out


# ------------------------------------------------------------------ sweeps


def grid_points(
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    params: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The points of ``grid`` with the fixed ``params`` added.

    ``grid`` is a mapping ``{name: values}`` (every combination, the first name varying
    slowest) or a sequence of point mappings.
    """
    fixed = dict(params or {})
    if isinstance(grid, Mapping):
        names = list(grid)
        for name in names:
            values = grid[name]
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                raise ValueError(
                    f"grid[{name!r}] must be a non-empty list of values, got {values!r}"
                )
        points = [
            dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())
        ]
    else:
        points = [dict(p) for p in grid]
        if not all(isinstance(p, dict) for p in points):
            raise ValueError("grid must be a mapping of value lists or a sequence of mappings")
    if not points:
        raise ValueError("grid must contain at least one point")
    out = []
    for p in points:
        both = set(p) & set(fixed)
        if both:
            raise ValueError(f"parameter {sorted(both)[0]!r} is both in the grid and in params")
        out.append({**fixed, **p})
    return out


def _seed_list(seeds: int | Sequence[int] | None) -> list[int | None]:
    if seeds is None:
        return [None]
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return list(range(check_int("seeds", seeds, low=1)))
    out = [check_int("seed", s, low=0) for s in seeds]
    if not out:
        raise ValueError("seeds must not be empty")
    if len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct, got {out}")
    return out


def _check_signature(fn: Callable[..., Any], params: Mapping[str, Any], seeded: bool) -> None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    kwargs = dict(params)
    if seeded:
        kwargs["seed"] = 0
    try:
        sig.bind(**kwargs)
    except TypeError as exc:
        names = [
            p.name
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]
        raise ValueError(
            f"parameters {sorted(kwargs)} do not fit {function_name(fn)}({', '.join(names)}): {exc}"
        ) from None


def _tasks(
    fn: Callable[..., Any],
    name: str,
    points: Sequence[Mapping[str, Any]],
    seeds: Sequence[int | None],
    version: str,
) -> list[_Task]:
    tasks = []
    checked: set[tuple[str, ...]] = set()
    for point in points:
        params = normalize(dict(point), "params")
        if "seed" in params and seeds[0] is not None:
            raise ValueError("seed must be given by seeds, not in grid or params")
        if "checkpoint" in params and _takes_checkpoint(fn):
            raise ValueError(
                "checkpoint is given by the sweep (the point's finished steps, kept in its "
                "store), not in grid or params"
            )
        names = tuple(sorted(params))
        if names not in checked:
            _check_signature(fn, params, seeds[0] is not None)
            checked.add(names)
        for seed in seeds:
            tasks.append(_Task(result_key(name, params, seed, version), name, fn, params, seed))
    return tasks


def sweep(
    fn: Callable[..., Mapping[str, Any]],
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    seeds: int | Sequence[int] | None = (0,),
    *,
    params: Mapping[str, Any] | None = None,
    store: str | os.PathLike[str] | Store | None = None,
    executor: Any = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool | None = None,
    desc: str | None = None,
    name: str | None = None,
    read_only: bool = False,
) -> Table:
    """Evaluate ``fn(**point, seed=seed)`` for every grid point and seed, cached and resumable.

    Parameters
    ----------
    fn : callable
        An experiment: named parameters (and ``seed``) in, a JSON-serialisable mapping of
        metrics out. It must be deterministic given its arguments; it receives the parameters
        after a JSON round trip (tuples become lists). Any importable function, or one defined
        in a notebook or script (shipped to workers with cloudpickle).
    grid : mapping of lists, or sequence of mappings
        See :func:`grid_points`.
    seeds : int, sequence of int, or None
        An int ``N`` means seeds ``0 .. N-1``; ``None`` calls ``fn`` without a seed.
    params : mapping, optional
        Fixed parameters added to every point.
    store : path or Store, optional
        Result directory (one file per point). ``None`` keeps nothing.
    executor, workers, scheduler
        See :func:`open_executor`.
    progress : bool or None
        tqdm bar with ETA on stderr; ``None``: only on a terminal.
    desc : str, optional
        Label of the progress bar.
    name : str, optional
        The function's name in the result keys (default :func:`function_name`).
    read_only : bool
        Only read the store: a ``ValueError`` (nothing computed) if any point is missing. For
        results computed elsewhere and kept, e.g. in the repository.

    Returns
    -------
    Table
        One record per (point, seed), points in grid order, seeds inner: ``key``,
        ``function``, ``params``, ``seed``, ``metrics``, ``version`` (the library version, or
        the experiment's own algorithm version: :func:`superposition.store.result_version`),
        ``wall_time`` (seconds spent in ``fn``), ``cpu_time`` (CPU seconds of the worker
        process), ``machine`` (:func:`superposition.store.machine`), when the version is an
        algorithm version ``library_version``, and for a point resumed from its checkpoint
        ``resumed_steps`` (the steps finished by an earlier, interrupted run; the two times
        then include what those steps cost when they ran).
    """
    check_executor(executor, workers, scheduler)
    fname = function_name(fn) if name is None else str(name)
    version = result_version(fn)
    tasks = _tasks(fn, fname, grid_points(grid, params), _seed_list(seeds), version)
    return _run_table(
        tasks, store, executor, workers, scheduler, progress, desc or fname, version, read_only
    )


def partial_points(
    fn: Callable[..., Mapping[str, Any]],
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    seeds: int | Sequence[int] | None = (0,),
    *,
    params: Mapping[str, Any] | None = None,
    store: str | os.PathLike[str] | Store,
    name: str | None = None,
) -> list[dict[str, Any]]:
    """The points of a sweep that are in progress: not finished, with finished steps kept.

    For an experiment with a ``checkpoint`` parameter (:class:`superposition.store.Checkpoint`),
    the points of ``grid`` × ``seeds`` that have no record in ``store`` but whose finished
    steps are kept there (an interrupted run's), in grid order, seeds inner: ``params``,
    ``seed``, ``steps`` (their values, in the order they finished) and ``cpu_time`` (what they
    cost so far, CPU seconds). Reads only.
    """
    fname = function_name(fn) if name is None else str(name)
    version = result_version(fn)
    st = store if isinstance(store, Store) else Store(store, writable=False)
    out = []
    for task in _tasks(fn, fname, grid_points(grid, params), _seed_list(seeds), version):
        if st.read(task.key)[0] == "ok":
            continue
        ck = Store(st.root / PARTIAL / task.key, writable=False)
        steps = [rec for rec in map(ck.read, ck.keys()) if rec[0] == "ok"]
        if not steps:
            continue
        recs = sorted((rec for _, rec in steps), key=lambda r: r.get("finished", 0.0))
        out.append({
            "params": task.params,
            "seed": task.seed,
            "steps": [r["metrics"] for r in recs],
            "cpu_time": sum(float(r.get("cpu_time", 0.0)) for r in recs),
        })  # fmt: skip
    return out


def _run_table(
    tasks: list[_Task],
    store: Any,
    executor: Any,
    workers: int | None,
    scheduler: str | None,
    progress: bool | None,
    desc: str,
    version: str,
    read_only: bool = False,
) -> Table:
    st = _open_store(store)
    info: dict[str, Any] = {"points": len(tasks), "computed": 0, "cached": 0, "corrupt": 0}
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(
            _bar(len({t.key for t in tasks}), desc.rsplit(".", 1)[-1], progress)
        )
        runner = _Runner(st, stack, (executor, workers, scheduler), bar, version, info)
        runner.read_only = read_only
        done = runner.run(tasks)
    info["wall_time"] = time.perf_counter() - start
    return Table([done[t.key] for t in tasks], info)


def _open_store(store: Any) -> Store | None:
    if store is None or isinstance(store, Store):
        return store
    return Store(store)


def threshold_sweep(
    fn: Callable[..., Mapping[str, Any]],
    grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    seeds: int | Sequence[int],
    *,
    param: str,
    low: int,
    high: int,
    passes: Callable[[Mapping[str, Any]], bool],
    find: str = "smallest",
    fraction: float = 0.9,
    resolution: float = 0.02,
    params: Mapping[str, Any] | None = None,
    store: str | os.PathLike[str] | Store | None = None,
    executor: Any = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool | None = None,
    name: str | None = None,
) -> Table:
    """For every grid point, the smallest (or largest) ``param`` at which ``fn`` passes.

    At a candidate value ``n`` every seed is evaluated (through the store, in parallel on the
    executor) and ``n`` passes if ``passes(metrics)`` holds for at least ``fraction`` of the
    seeds; :func:`smallest_passing` (or :func:`largest_passing`) drives the search between
    ``low`` and ``high`` to relative ``resolution``. Searches of different grid points run
    side by side on the executor. Every evaluated point is an ordinary stored result, shared
    with :func:`sweep`.

    Returns
    -------
    Table
        One record per grid point: ``function``, ``params``, ``param``, ``find``,
        ``threshold`` (``high + 1`` if none passes for ``"smallest"``, ``low - 1`` for
        ``"largest"``), ``low``, ``high``, ``fraction``, ``resolution``, ``seeds``,
        ``passing`` (``{value: seeds passing}`` for each value tried), ``version``,
        ``wall_time``.
    """
    check_executor(executor, workers, scheduler)
    search = {"smallest": smallest_passing, "largest": largest_passing}[
        check_choice("find", find, ("smallest", "largest"))
    ]
    low = check_int("low", low, low=1)
    high = check_int("high", high, low=low)
    fraction = check_real("fraction", fraction, low=0.0, high=1.0, low_open=True)
    resolution = check_real("resolution", resolution, low=0.0)
    seed_list = _seed_list(seeds)
    if seed_list == [None]:
        raise ValueError("seeds must not be None for a threshold search")
    points = grid_points(grid, params)
    for p in points:
        if param in p:
            raise ValueError(f"param {param!r} is searched, so it must not be in grid or params")
    fname = function_name(fn) if name is None else str(name)
    version = result_version(fn)
    for p in points:
        _check_signature(fn, {**normalize(p, "params"), param: low}, True)
    need = seeds_needed(fraction, len(seed_list))
    st = _open_store(store)
    info: dict[str, Any] = {"points": 0, "computed": 0, "cached": 0, "corrupt": 0}
    start = time.perf_counter()

    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(_bar(None, f"{param} search", progress))
        runner = _Runner(st, stack, (executor, workers, scheduler), bar, version, info)

        def one(point: dict[str, Any]) -> dict[str, Any]:
            passing: dict[str, int] = {}
            t0 = time.perf_counter()

            def ok(n: int) -> bool:
                tasks = _tasks(fn, fname, [{**point, param: n}], seed_list, version)
                runner._count("points", len(tasks))
                done = runner.run(tasks)
                passing[str(n)] = sum(bool(passes(done[t.key]["metrics"])) for t in tasks)
                return passing[str(n)] >= need

            found = search(ok, low, high, resolution)
            return {
                "function": fname,
                "params": normalize(point, "params"),
                "param": param,
                "find": find,
                "threshold": found,
                "low": low,
                "high": high,
                "fraction": fraction,
                "resolution": resolution,
                "seeds": seed_list,
                "passing": passing,
                "version": version,
                "wall_time": time.perf_counter() - t0,
            }

        if check_executor(executor, workers, scheduler)[0] == "local" or len(points) == 1:
            rows = [one(p) for p in points]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(len(points), 32)) as threads:
                rows = list(threads.map(one, points))
    info["wall_time"] = time.perf_counter() - start
    return Table(rows, info)


def run_grid(
    fn: Callable[..., Mapping[str, Any]],
    points: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str] | None = None,
    executor: Any = None,
    progress: bool | None = None,
    desc: str = "grid",
    *,
    workers: int | None = None,
    scheduler: str | None = None,
) -> list[dict[str, Any]]:
    """Evaluate ``fn(**point)`` at every point, saving as it goes and resuming if interrupted.

    The list-of-points form of :func:`sweep`: a point's integer ``seed`` entry, if any, is its
    seed (same keys, same stored results as :func:`sweep`).

    Parameters
    ----------
    fn : callable
        Takes a point's entries as keyword arguments and returns a JSON-serialisable mapping.
        Deterministic given the point.
    points : sequence of mappings
    path : path, optional
        The result store: a directory with one file per point (:class:`Store`); points already
        there are not run again. ``None`` keeps nothing.
    executor, workers, scheduler
        See :func:`open_executor`.
    progress : bool or None
        tqdm bar on stderr (``None``: only on a terminal).

    Returns
    -------
    list of dict
        One per point, in order: the point's entries and ``fn``'s metrics (after a JSON round
        trip, so a fresh and a resumed run give the same bits).
    """
    check_executor(executor, workers, scheduler)
    fname = function_name(fn)
    version = result_version(fn)
    tasks = []
    for point in points:
        p = dict(point)
        seed = p.get("seed")
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            p.pop("seed")
            seed = check_int("seed", seed, low=0)
        else:
            seed = None
        tasks += _tasks(fn, fname, [p], [seed], version)
    table = _run_table(tasks, path, executor, workers, scheduler, progress, desc, version)
    out = []
    for rec in table:
        seed = {} if rec["seed"] is None else {"seed": rec["seed"]}
        out.append({**rec["params"], **seed, **rec["metrics"]})
    return out
