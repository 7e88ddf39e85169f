"""Sweeps: threshold searches, and cached, resumable experiment grids on any executor.

Searches
    :func:`largest_passing` and :func:`smallest_passing` find the size at which a monotone test
    flips, by geometric bracketing then bisection on a log grid; :func:`fraction_passing` turns a
    per-seed test into "at least 90% of seeds pass".

Sweeps
    :func:`sweep` evaluates an experiment ``fn(**params, seed=seed)`` at every point of a grid
    for every seed and returns a :class:`Table` with one record per (point, seed)::

        {"key": ..., "function": "superposition.sweep.uand_error",
         "params": {"n_features": 64, "width": 128, ...}, "seed": 0,
         "metrics": {"max_abs_error": 0.41, ...}, "version": "0.1.0", "wall_time": 0.012}

    :func:`threshold_sweep` runs the width bisection instead: for every grid point, the smallest
    (or largest) value of one integer parameter at which at least a ``fraction`` of the seeds
    pass. :func:`run_grid` is the older list-of-points form of :func:`sweep`.

Results store (:class:`Store`)
    One JSON file per point, ``<key>.json``, where the key is the SHA-256 of the function's
    qualified name, the parameters, the seed and the library version (:func:`result_key`).
    Files are written atomically (a temporary file in the same directory, ``fsync``, then
    ``os.replace``), so an interrupted sweep (Ctrl-C, ``kill -9``, a lost worker) loses only the
    points in flight and the next run resumes where it stopped. Each record carries a SHA-256
    checksum of its own canonical JSON; a file that does not parse, fails its checksum or does
    not belong under its name (truncated, corrupted, copied) is recomputed, never read as a
    result. Results are written by the process that runs the sweep, so workers need no shared
    file system. A new library version gives new keys: old results are not reused.

Executors (:func:`open_executor`)
    ``"local"`` (in this process), ``"processes"`` (a spawned process pool, all cores by
    default) and ``"dask"``: a ``dask.distributed`` client of an existing scheduler
    (``scheduler="tcp://host:8786"`` or the environment variable ``SUPERPOSITION_SCHEDULER``)
    or of a fresh ``LocalCluster``. Any object with ``submit`` returning futures (a
    ``concurrent.futures`` executor, a ``distributed.Client``) also works.

Same bits on every executor
    A point's result depends only on its parameters and seed. Metrics are stored and returned
    as their JSON round trip (floats round-trip exactly), so a fresh result and a stored one are
    identical. Every point is evaluated with **one BLAS thread** (:data:`BLAS_THREADS`): OpenBLAS
    splits long dot products across threads and the rounding depends on the split, so without
    this a point computed in a 2-thread process and on a 1-thread Dask worker could differ in the
    last bit. Parallelism comes from running points side by side. (The thread count is set
    through OpenBLAS's own ``openblas_set_num_threads``, found in the loaded libraries on Linux;
    elsewhere set ``OPENBLAS_NUM_THREADS=1`` yourself.)

Progress
    A tqdm bar with ETA on stderr; ``progress=None`` shows it only on a terminal.

Experiments known by name (:data:`EXPERIMENTS`, used by ``superposition sweep``)
    ``"uand"`` (:func:`uand_error`), ``"embed"`` (:func:`embedding_readout_error`) and
    ``"circuit"`` (:func:`circuit_emulation`).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import inspect
import itertools
import json
import os
import pickle
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._validate import check_choice, check_int, check_real

FORMAT = 1
"""Version of the on-disk record layout."""
EXECUTORS = ("local", "processes", "dask")
"""Executor names understood by :func:`open_executor`."""
SCHEDULER_ENV = "SUPERPOSITION_SCHEDULER"
"""Environment variable holding a Dask scheduler address for ``executor="dask"``."""
BLAS_THREADS = 1
"""BLAS threads used while evaluating a point (see the module docstring)."""


# ------------------------------------------------------------------ monotone searches


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


def fraction_passing(
    passes: Callable[[int, int], bool], size: int, seeds: Sequence[int], fraction: float = 0.9
) -> bool:
    """True if ``passes(size, seed)`` holds for at least ``fraction`` of ``seeds``.

    Stops early once the outcome is decided either way.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    fraction = check_real("fraction", fraction, low=0.0, high=1.0, low_open=True)
    need = _needed(fraction, len(seeds))
    ok = bad = 0
    for seed in seeds:
        if passes(size, seed):
            ok += 1
        else:
            bad += 1
        if ok >= need:
            return True
        if bad > len(seeds) - need:
            return False
    return ok >= need


def _needed(fraction: float, n: int) -> int:
    return int(np.ceil(fraction * n - 1e-12))


# ------------------------------------------------------------------ keys and records


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def _canonical(obj: Any) -> str:
    """Sorted, compact JSON: the one serialisation keys and checksums are computed from."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_jsonable)


def _normalize(obj: Any, name: str) -> Any:
    try:
        return json.loads(_canonical(obj))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be JSON-serialisable: {exc}") from None


def point_key(point: Mapping[str, Any]) -> str:
    """A canonical string for a grid point (sorted JSON)."""
    return _canonical(dict(point))


def function_name(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of ``fn``: the function's part of a result key."""
    target = fn.func if hasattr(fn, "func") and hasattr(fn, "keywords") else fn  # partial
    module = getattr(target, "__module__", None) or type(target).__module__
    qual = getattr(target, "__qualname__", None) or type(target).__qualname__
    name = f"{module}.{qual}"
    if target is not fn:
        name += _canonical({"args": list(fn.args), "keywords": fn.keywords})
    return name


def library_version() -> str:
    """The library's version and a digest of its source, ``"0.1.0+src.<12 hex>"``.

    Part of every result key, so a change to any module of the package (not only a release)
    starts fresh results instead of reusing ones an older code computed; workers whose code
    differs are refused.
    """
    from . import __version__

    return f"{__version__}+src.{_source_digest()}"


@functools.cache
def _source_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def result_key(function: str, params: Mapping[str, Any], seed: int | None, version: str) -> str:
    """SHA-256 (hex) of ``(function, params, seed, version)``: the name of a point's file."""
    blob = _canonical(
        {"function": function, "params": dict(params), "seed": seed, "version": version}
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _checksum(record: Mapping[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "checksum"}
    return "sha256:" + hashlib.sha256(_canonical(body).encode()).hexdigest()


# ------------------------------------------------------------------ the store


class Store:
    """A directory of results, one JSON file per point, named ``<key>.json``.

    Parameters
    ----------
    root : path
        The directory (created if missing). Temporary files left by processes of this host that
        no longer run (a sweep killed mid-write) are removed when a store is opened.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(
                f"store must be a directory (one file per point), but {str(self.root)!r} is a file"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def keys(self) -> list[str]:
        """Keys of the result files present (valid or not), sorted."""
        return sorted(p.stem for p in self.root.glob("*.json"))

    def read(self, key: str) -> tuple[str, dict[str, Any] | None]:
        """``("ok", record)``, ``("missing", None)`` or ``("corrupt", None)``.

        A record is ``"ok"`` only if the file parses, has this layout :data:`FORMAT`, its
        checksum matches, and its ``key`` is both its file name and the hash of its own
        function, parameters, seed and version.
        """
        try:
            text = self.path(key).read_text()
        except FileNotFoundError:
            return "missing", None
        except (OSError, UnicodeDecodeError):
            return "corrupt", None
        try:
            rec = json.loads(text)
        except ValueError:
            return "corrupt", None
        ok = (
            isinstance(rec, dict)
            and rec.get("format") == FORMAT
            and rec.get("key") == key
            and isinstance(rec.get("checksum"), str)
            and rec["checksum"] == _checksum(rec)
            and isinstance(rec.get("params"), dict)
            and isinstance(rec.get("metrics"), dict)
            and isinstance(rec.get("function"), str)
            and isinstance(rec.get("version"), str)
            and result_key(rec["function"], rec["params"], rec.get("seed"), rec["version"]) == key
        )
        return ("ok", rec) if ok else ("corrupt", None)

    def write(self, record: Mapping[str, Any]) -> Path:
        """Write one record atomically: temporary file, ``fsync``, ``os.replace``."""
        rec = {**record, "format": FORMAT}
        rec.pop("checksum", None)
        rec["checksum"] = _checksum(rec)
        final = self.path(rec["key"])
        fd, tmp = tempfile.mkstemp(
            dir=self.root, prefix=f".{rec['key']}.{os.getpid()}.{_host()}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(_canonical(rec))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.root)
        return final

    def _remove_stale_temporaries(self) -> None:
        for tmp in self.root.glob(".*.tmp"):
            parts = tmp.name[1:].split(".")
            if len(parts) < 4 or not parts[1].isdigit():
                continue
            pid, host = int(parts[1]), ".".join(parts[2:-2])
            if host == _host() and not _alive(pid):
                tmp.unlink(missing_ok=True)


def _host() -> str:
    return socket.gethostname().replace("/", "_")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ------------------------------------------------------------------ BLAS threads

_BLAS_GET = ("openblas_get_num_threads", "scipy_openblas_get_num_threads")
_BLAS_LIBS: dict[str, tuple[Any, Any] | None] = {}
_BLAS_LOCK = threading.Lock()


def _blas_controls() -> list[tuple[Any, Any]]:
    """``(get, set)`` ctypes functions of every OpenBLAS loaded in this process (Linux)."""
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split(None, 5)[-1].strip() for line in fh if "openblas" in line.lower()}
    except OSError:
        return []
    out = []
    with _BLAS_LOCK:
        for path in sorted(p for p in paths if "openblas" in os.path.basename(p).lower()):
            if path not in _BLAS_LIBS:
                _BLAS_LIBS[path] = _blas_functions(path)
            if _BLAS_LIBS[path] is not None:
                out.append(_BLAS_LIBS[path])
    return out


def _blas_functions(path: str) -> tuple[Any, Any] | None:
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for name in _BLAS_GET:
        for suffix in ("", "64_"):
            get = getattr(lib, name + suffix, None)
            put = getattr(lib, name.replace("get", "set") + suffix, None)
            if get is not None and put is not None:
                get.restype = ctypes.c_int
                put.argtypes = [ctypes.c_int]
                return get, put
    return None


def _limit_blas(threads: int = BLAS_THREADS) -> list[tuple[Any, int]]:
    """Set every loaded OpenBLAS to ``threads``; returns what to restore."""
    before = []
    for get, put in _blas_controls():
        n = int(get())
        if n != threads:
            put(threads)
        before.append((put, n))
    return before


@contextlib.contextmanager
def _blas_threads_here() -> Iterator[None]:
    before = _limit_blas()
    try:
        yield
    finally:
        for put, n in before:
            put(n)


# ------------------------------------------------------------------ evaluation


@dataclass(frozen=True)
class _Task:
    key: str
    function: str
    fn: Callable[..., Mapping[str, Any]]
    params: dict[str, Any]
    seed: int | None


def _evaluate(fn: Any, params: Mapping[str, Any], seed: int | None) -> tuple[str, float, str]:
    """Worker side: run one point with one BLAS thread; metrics as canonical JSON, seconds,
    and the worker's library version (checked against the sweep's)."""
    if isinstance(fn, bytes):
        fn = pickle.loads(fn)
    _limit_blas()
    kwargs = dict(params)
    if seed is not None:
        kwargs["seed"] = seed
    start = time.perf_counter()
    metrics = fn(**kwargs)
    wall = time.perf_counter() - start
    if not isinstance(metrics, Mapping):
        raise ValueError(
            f"an experiment must return a mapping of metrics, {function_name(fn)} returned "
            f"{type(metrics).__name__}"
        )
    return _normalize_metrics(metrics), wall, library_version()


def _normalize_metrics(metrics: Mapping[str, Any]) -> str:
    try:
        return _canonical(dict(metrics))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metrics must be JSON-serialisable: {exc}") from None


def _record(task: _Task, metrics_json: str, wall: float, version: str) -> dict[str, Any]:
    return {
        "key": task.key,
        "function": task.function,
        "params": task.params,
        "seed": task.seed,
        "metrics": json.loads(metrics_json),
        "version": version,
        "wall_time": wall,
    }


def _public(rec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in ("format", "checksum")}


def _is_dask(executor: Any) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed"


def _ship(fn: Callable[..., Any], executor: Any) -> Any:
    """What to send to a worker: Dask pickles functions itself; others get cloudpickle bytes
    (so functions defined in a notebook or script also run in spawned processes)."""
    if _is_dask(executor):
        return fn
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - cloudpickle comes with dask
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
        self.version = version
        self.info = info
        self.lock = threading.Lock()
        self.shipped: dict[int, Any] = {}

    @property
    def executor(self) -> Any:
        """Opened on first use, so a sweep whose points are all stored starts no workers."""
        with self.lock:
            if not self.opened:
                self._executor = self.stack.enter_context(open_executor(*self.spec))
                if self._executor is None:
                    self.stack.enter_context(_blas_threads_here())
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
            else:
                if status == "corrupt":
                    self._count("corrupt")
                todo.append(task)
        if done and self.bar is not None:
            self.bar.update(len(done))
        if not todo:
            return done
        if self.executor is None:
            for task in todo:
                self._finish(task, _evaluate(task.fn, task.params, task.seed), done)
        else:
            self._run_futures(todo, done)
        return done

    def _finish(self, task: _Task, out: tuple[str, float, str], done: dict[str, Any]) -> None:
        if out[2] != self.version:
            raise ValueError(
                f"a worker runs superposition {out[2]}, this sweep {self.version}: install the "
                "same version on every worker"
            )
        rec = _record(task, out[0], out[1], self.version)
        if self.store is not None:
            self.store.write(rec)
        done[task.key] = rec
        self._count("computed")
        if self.bar is not None:
            self.bar.update()

    def _run_futures(self, todo: Sequence[_Task], done: dict[str, Any]) -> None:
        ex = self.executor
        futures = {}
        extra = {"pure": False} if _is_dask(ex) else {}
        for task in todo:
            if id(task.fn) not in self.shipped:
                self.shipped[id(task.fn)] = _ship(task.fn, ex)
            fut = ex.submit(_evaluate, self.shipped[id(task.fn)], task.params, task.seed, **extra)
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


# ------------------------------------------------------------------ executors


@contextlib.contextmanager
def open_executor(
    executor: Any = None, workers: int | None = None, scheduler: str | None = None
) -> Iterator[Any]:
    """The executor a sweep runs on, closed (if opened here) on exit.

    Parameters
    ----------
    executor : {"local", "processes", "dask"}, None, or an executor object
        ``None``/``"local"``: this process (yields ``None``). ``"processes"``: a process pool
        (``spawn`` start method, workers ignore Ctrl-C; the sweep stops them). ``"dask"``: a
        ``distributed.Client`` of the scheduler at ``scheduler`` (or ``$SUPERPOSITION_SCHEDULER``),
        or of a new ``LocalCluster`` of ``workers`` one-thread processes. An object with
        ``submit`` is yielded as is and not closed.
    workers : int, optional
        Processes for ``"processes"`` and a local Dask cluster (default: all cores).
    scheduler : str, optional
        Dask scheduler address, e.g. ``"tcp://10.0.0.5:8786"``.
    """
    kind, n = _check_executor(executor, workers, scheduler)
    if kind is None:
        yield executor
    elif kind == "local":
        yield None
    elif kind == "processes":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(
            max_workers=n,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
            initargs=(os.getpid(),),
        )
        try:
            yield pool
        except BaseException:
            _terminate(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        with _dask_client(scheduler or os.environ.get(SCHEDULER_ENV) or None, n) as client:
            yield client


def _check_executor(
    executor: Any, workers: int | None, scheduler: str | None
) -> tuple[str | None, int]:
    """``(kind, workers)``; kind ``None`` for an executor object."""
    if executor is not None and not isinstance(executor, str):
        if not callable(getattr(executor, "submit", None)):
            raise ValueError(
                f"executor must be one of {', '.join(map(repr, EXECUTORS))} or an object with "
                f"submit(), got {type(executor).__name__}"
            )
        return None, 0
    kind = check_choice("executor", "local" if executor is None else executor, EXECUTORS)
    n = (os.cpu_count() or 1) if workers is None else check_int("workers", workers, low=1)
    if scheduler is not None and kind != "dask":
        raise ValueError(f"scheduler applies to executor='dask' only, got executor={kind!r}")
    return kind, n


def _worker_init(parent: int) -> None:
    """Process-pool worker set-up: leave Ctrl-C to the sweep, and exit once the sweep (process
    ``parent``) is gone: a ``kill -9`` of the sweep would otherwise leave its workers waiting."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="superposition-parent-watch", daemon=True).start()


def _terminate(pool: Any) -> None:
    stop = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if stop is not None:
        stop()
        return
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.terminate()


@contextlib.contextmanager
def _dask_client(address: str | None, workers: int) -> Iterator[Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError(
            "executor='dask' needs dask.distributed: pip install 'superposition[dask]'"
        ) from None
    if address is not None:
        try:
            client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"scheduler: cannot connect to {address!r}: {exc}") from None
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


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
        params = _normalize(dict(point), "params")
        if "seed" in params and seeds[0] is not None:
            raise ValueError("seed must be given by seeds, not in grid or params")
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

    Returns
    -------
    Table
        One record per (point, seed), points in grid order, seeds inner: ``key``,
        ``function``, ``params``, ``seed``, ``metrics``, ``version``, ``wall_time`` (seconds
        spent in ``fn``).
    """
    _check_executor(executor, workers, scheduler)
    fname = function_name(fn) if name is None else str(name)
    version = library_version()
    tasks = _tasks(fn, fname, grid_points(grid, params), _seed_list(seeds), version)
    return _run_table(tasks, store, executor, workers, scheduler, progress, desc or fname, version)


def _run_table(
    tasks: list[_Task],
    store: Any,
    executor: Any,
    workers: int | None,
    scheduler: str | None,
    progress: bool | None,
    desc: str,
    version: str,
) -> Table:
    st = _open_store(store)
    info: dict[str, Any] = {"points": len(tasks), "computed": 0, "cached": 0, "corrupt": 0}
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(
            _bar(len({t.key for t in tasks}), desc.rsplit(".", 1)[-1], progress)
        )
        done = _Runner(st, stack, (executor, workers, scheduler), bar, version, info).run(tasks)
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
    _check_executor(executor, workers, scheduler)
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
    version = library_version()
    for p in points:
        _check_signature(fn, {**_normalize(p, "params"), param: low}, True)
    need = _needed(fraction, len(seed_list))
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
                "params": _normalize(point, "params"),
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

        if _check_executor(executor, workers, scheduler)[0] == "local" or len(points) == 1:
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
    _check_executor(executor, workers, scheduler)
    fname = function_name(fn)
    version = library_version()
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


# ------------------------------------------------------------------ library experiments


def uand_error(
    n_features: int,
    width: int,
    sparsity: int,
    *,
    weights: str = "bernoulli",
    arity: int = 2,
    p: float | str | None = None,
    n_inputs: int = 100,
    seed: int = 0,
) -> dict[str, Any]:
    """Exact errors of all ANDs of a random U-AND layer on ``n_inputs`` random inputs.

    The same numbers as ``superposition uand ... --seed SEED``: network and inputs from
    ``SeedSequence(seed).spawn(2)``. Metrics: :meth:`~superposition.UAndErrors.summary` and
    ``p``.
    """
    from .embedding import sample_sparse
    from .uand import build_uand, evaluate_uand

    net_seed, input_seed = np.random.SeedSequence(check_int("seed", seed, low=0)).spawn(2)
    net = build_uand(n_features, width, sparsity, weights=weights, arity=arity, p=p, seed=net_seed)
    active = sample_sparse(n_features, sparsity, n_inputs, seed=input_seed)
    return {"p": net.p, **evaluate_uand(net, active).summary()}


def embedding_readout_error(
    n_features: int,
    embed_dim: int,
    sparsity: int = 3,
    *,
    kind: str = "gaussian",
    n_inputs: int = 1000,
    coherence: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    r"""Worst and mean readout error :math:`\max_k|(\Phi^\top\Phi x)_k - x_k|` of a random embedding.

    The same numbers as ``superposition embed ... --seed SEED`` (embedding seed ``seed``,
    inputs ``seed + 1``), with the theory's scales; the mutual coherence only if asked
    (:math:`O(m^2 d_0)`).
    """
    from . import embedding as E
    from .theory import coherence_scale, readout_error_scale

    seed = check_int("seed", seed, low=0)
    emb = E.Embedding(n_features, embed_dim, kind=kind, seed=seed)
    err = E.readout_errors(emb, E.sample_sparse(n_features, sparsity, n_inputs, seed=seed + 1))
    out = {
        "max_readout_error": float(err.max()),
        "mean_readout_error": float(err.mean()),
        "readout_error_scale": readout_error_scale(sparsity, embed_dim),
        "coherence_scale": coherence_scale(n_features, embed_dim),
    }
    if coherence:
        out["coherence"] = E.coherence(emb)
    return out


def circuit_emulation(
    n_features: int,
    width: int,
    sparsity: int,
    depth: int,
    *,
    neurons: int | None = None,
    gates: Sequence[str] | None = None,
    neuron_wiring: str = "targeted",
    kind: str = "gaussian",
    n_inputs: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """A random sparse circuit emulated by MLP layers in superposition, compared layer by layer.

    The same numbers as ``superposition circuit ... --seed SEED`` (circuit, compiled network
    and inputs from ``SeedSequence(seed).spawn(3)``). Metrics: the final layer's figures at the
    top level, every layer's under ``layers``.
    """
    from .circuits import DEFAULT_GATES, compile_circuit, emulate, random_circuit
    from .embedding import sample_sparse, to_dense

    circuit_ss, compile_ss, input_ss = np.random.SeedSequence(check_int("seed", seed, low=0)).spawn(
        3
    )
    gate_set = tuple(DEFAULT_GATES if gates is None else gates)
    circuit = random_circuit(n_features, depth, gate_set, seed=circuit_ss)
    compiled = compile_circuit(
        circuit, width, neurons=neurons, neuron_wiring=neuron_wiring, kind=kind, seed=compile_ss
    )
    x = to_dense(sample_sparse(n_features, sparsity, n_inputs, seed=input_ss), n_features)
    report = emulate(compiled, x.astype(bool)).to_dict()
    return {"neurons": compiled.neurons, **report["final"], "layers": report["layers"]}


def superposed_width(
    n_features: int,
    sparsity: int,
    target_error: float,
    *,
    weights: str = "bernoulli",
    embed_dim: int | str | None = "tied",
    n_inputs: int = 16,
    high: int = 2**15,
    resolution: float = 0.05,
    p: float | str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """One seed's minimal width for U-AND on superposed inputs (one point of a width sweep).

    The smallest width at which the network of seed ``seed`` keeps every output of its
    ``n_inputs`` sampled inputs within ``target_error``, searched from width 16 up to ``high``
    (:func:`superposition.superposed.seed_widths` with one seed). Metric ``width``:
    ``high + 1`` when no width up to ``high`` passed.
    """
    from .superposed import seed_widths

    w = seed_widths(
        n_features, sparsity, target_error, weights=weights, embed_dim=embed_dim,
        seeds=[check_int("seed", seed, low=0)], n_inputs=n_inputs, low=16, high=high,
        resolution=resolution, p=p,
    )  # fmt: skip
    return {"width": int(w[0])}


EXPERIMENTS: dict[str, Callable[..., dict[str, Any]]] = {
    "uand": uand_error,
    "embed": embedding_readout_error,
    "circuit": circuit_emulation,
    "width": superposed_width,
}
"""Experiments ``superposition sweep`` knows by name."""
