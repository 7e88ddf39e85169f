"""The results store: one atomically written, checksummed JSON file per point of a sweep.

One JSON file per point, ``<key>.json``, where the key is the SHA-256 of the function's
qualified name, the parameters, the seed and the library version (:func:`result_key`).
Files are written atomically (a temporary file in the same directory, ``fsync``, then
``os.replace``), so an interrupted sweep (Ctrl-C, ``kill -9``, a lost worker) loses only the
points in flight and the next run resumes where it stopped. Each record carries a SHA-256
checksum of its own canonical JSON; a file that does not parse, fails its checksum or does
not belong under its name (truncated, corrupted, copied) is recomputed, never read as a
result. A new library version (or any change to its source) gives new keys: old results are
not reused (:meth:`Store.prune` removes them).

Where the store lives: ``$SUPERPOSITION_STORE`` if set, else ``_build/sweeps`` under the
current directory (:func:`default_store`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__

__all__ = [
    "FORMAT",
    "PARTIAL",
    "STORE_ENV",
    "Checkpoint",
    "Store",
    "canonical_json",
    "default_store",
    "function_name",
    "library_version",
    "machine",
    "normalize",
    "point_key",
    "result_key",
    "result_version",
]

FORMAT = 1
"""Version of the on-disk record layout."""
STORE_ENV = "SUPERPOSITION_STORE"
"""Environment variable naming the default results store."""
PARTIAL = "partial"
"""Subdirectory of a store holding the finished steps of points in progress (:class:`Checkpoint`)."""


def default_store() -> Path:
    """``$SUPERPOSITION_STORE``, or ``_build/sweeps`` under the current directory."""
    env = os.environ.get(STORE_ENV, "").strip()
    return Path(env) if env else Path("_build") / "sweeps"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def canonical_json(obj: Any) -> str:
    """Sorted, compact JSON: the one serialisation keys and checksums are computed from."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_jsonable)


def normalize(obj: Any, name: str) -> Any:
    """``obj`` after a JSON round trip (tuples become lists); a ``ValueError`` naming ``name``
    if it is not JSON-serialisable."""
    try:
        return json.loads(canonical_json(obj))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be JSON-serialisable: {exc}") from None


def point_key(point: Mapping[str, Any]) -> str:
    """A canonical string for a grid point (sorted JSON)."""
    return canonical_json(dict(point))


def function_name(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of ``fn``: the function's part of a result key."""
    target = fn.func if hasattr(fn, "func") and hasattr(fn, "keywords") else fn  # partial
    module = getattr(target, "__module__", None) or type(target).__module__
    qual = getattr(target, "__qualname__", None) or type(target).__qualname__
    name = f"{module}.{qual}"
    if target is not fn:
        name += canonical_json({"args": list(fn.args), "keywords": fn.keywords})
    return name


def library_version() -> str:
    """The library's version and a digest of its source, ``"0.1.0+src.<12 hex>"``.

    Part of every result key, so a change to any module of the package (not only a release)
    starts fresh results instead of reusing ones an older code computed; workers whose code
    differs are refused.
    """
    return f"{__version__}+src.{_source_digest()}"


@functools.cache
def _source_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


ALGORITHM_PREFIX = "algorithm "
"""How :func:`result_version` marks the version an experiment declares itself."""


def result_version(fn: Callable[..., Any]) -> str:
    """The version part of ``fn``'s result keys.

    :func:`library_version` (any change to the package's source starts fresh results), unless
    ``fn`` declares an ``algorithm_version`` attribute: then ``"algorithm <that version>"``, so
    its results stay valid across commits until the experiment bumps its version. An
    experiment declares one only when every piece of code its numbers depend on is covered by
    that version (its maintainer bumps it, and a test recomputes stored results to catch a
    change that did not): results computed once at great cost, e.g. kept in the repository,
    then survive unrelated edits.
    """
    target = fn.func if hasattr(fn, "func") and hasattr(fn, "keywords") else fn
    declared = getattr(target, "algorithm_version", None)
    if declared is None:
        return library_version()
    if not isinstance(declared, str) or not declared:
        raise ValueError(f"algorithm_version must be a non-empty string, got {declared!r}")
    return ALGORITHM_PREFIX + declared


def machine() -> dict[str, Any]:
    """What computed a result: host name, processor, cores, operating system, Python and the
    OpenBLAS kernels (``blas``: what ``threadpoolctl`` reports, e.g. ``"Haswell"``)."""
    from ._blas import blas_architecture

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "system": platform.platform(terse=True),
        "python": platform.python_version(),
        "blas": blas_architecture(),
    }


def result_key(function: str, params: Mapping[str, Any], seed: int | None, version: str) -> str:
    """SHA-256 (hex) of ``(function, params, seed, version)``: the name of a point's file."""
    blob = canonical_json(
        {"function": function, "params": dict(params), "seed": seed, "version": version}
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _checksum(record: Mapping[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "checksum"}
    return "sha256:" + hashlib.sha256(canonical_json(body).encode()).hexdigest()


class Store:
    """A directory of results, one JSON file per point, named ``<key>.json``.

    Parameters
    ----------
    root : path
        The directory (created if missing). Temporary files left by processes of this host that
        no longer run (a sweep killed mid-write) are removed when a store is opened.
    writable : bool
        ``False``: only read (nothing created or removed; a missing directory holds no keys).
    """

    def __init__(self, root: str | os.PathLike[str], *, writable: bool = True) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(
                f"store must be a directory (one file per point), but {str(self.root)!r} is a file"
            )
        if writable:
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
                fh.write(canonical_json(rec))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.root)
        return final

    def prune(self, keep_version: str | None = None) -> int:
        """Delete the records of other library versions (and unreadable files); returns how many.

        Records keyed by an experiment's own algorithm version (:func:`result_version`) stay.
        The kept steps of a point in progress (:class:`Checkpoint`, ``partial/<key>/``) go with
        their version, and once their point has its record (a run killed in between).

        Parameters
        ----------
        keep_version : str, optional
            The version whose records stay (default: :func:`library_version`, this code's).
        """
        keep = library_version() if keep_version is None else str(keep_version)
        removed = 0
        for key in self.keys():
            status, rec = self.read(key)
            if status == "ok" and rec is not None and rec["version"].startswith(ALGORITHM_PREFIX):
                continue  # keyed by an experiment's own algorithm version: not the library's
            if status != "ok" or rec is None or rec["version"] != keep:
                self.path(key).unlink(missing_ok=True)
                removed += 1
        # the steps of points in progress (Checkpoint): gone with their point's version, or
        # left over once the point was written
        partial = self.root / PARTIAL
        for where in sorted(partial.iterdir()) if partial.is_dir() else []:
            steps = Store(where, writable=False)
            versions = {rec["version"] for st, rec in map(steps.read, steps.keys()) if st == "ok"}
            current = {v for v in versions if v == keep or v.startswith(ALGORITHM_PREFIX)}
            if self.read(where.name)[0] == "ok" or not current:
                shutil.rmtree(where, ignore_errors=True)
                removed += 1
        return removed

    def _remove_stale_temporaries(self) -> None:
        for tmp in self.root.glob(".*.tmp"):
            parts = tmp.name[1:].split(".")
            if len(parts) < 4 or not parts[1].isdigit():
                continue
            pid, host = int(parts[1]), ".".join(parts[2:-2])
            if host == _host() and not _alive(pid):
                tmp.unlink(missing_ok=True)


class Checkpoint:
    """The finished steps of one point in progress, so a point that runs for hours resumes mid-way.

    An experiment that takes a ``checkpoint`` argument receives one from the sweep
    (:func:`superposition.sweep.sweep`) when the sweep has a store: the steps of the point
    ``(function, params, seed, version)`` live in ``<store>/partial/<the point's key>/``, one
    atomically written, checksummed record per step (a :class:`Store`), and are removed when the
    point's own record is written. A step is anything the experiment can name by a
    JSON-serialisable mapping (a width search names its trials by their width) whose value is a
    JSON-serialisable mapping that depends only on the point and the step: so a resumed point
    gives the same bits as one run straight through.

    Parameters
    ----------
    root : path
        The point's directory of steps (created if missing).
    function, params, seed, version
        The point, as in :func:`result_key`: each step's record is keyed by the point and the
        step, so a step file copied under another point is never read.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        function: str,
        params: Mapping[str, Any],
        seed: int | None,
        version: str,
    ) -> None:
        self.store = Store(root)
        self.function = str(function)
        self.params = normalize(dict(params), "params")
        self.seed = seed
        self.version = str(version)
        self.replayed = 0
        """Steps read back instead of computed, finished by an earlier run."""
        self._mine: set[str] = set()  # the steps this run computed (a search may ask twice)
        self._open: list[list[str]] = []  # the inner steps of each step being computed
        self.replayed_cpu = 0.0
        """CPU seconds the replayed steps cost when they were computed."""
        self.replayed_wall = 0.0
        """Wall seconds the replayed steps cost when they were computed."""

    def step(self, step: Mapping[str, Any], compute: Callable[[], Mapping[str, Any]]) -> dict:
        """The value of ``step``: read back if a run before this one finished it, else
        ``compute()``, written atomically before it is returned. Either way the value after a
        JSON round trip (the same bits fresh or resumed).

        Steps nest: those finished or read back while ``compute()`` runs (a width trial keeps
        each of its inputs) are its inner steps. Its record's cost includes theirs, and once it
        is written they are removed: the finished steps kept are those of the outermost
        finished steps and of the steps in progress, each cost counted once.
        """
        value = self.finished(step)
        if value is not None:
            return value
        wall, cpu = time.perf_counter(), time.process_time()
        inner_wall, inner_cpu = self.replayed_wall, self.replayed_cpu
        self._open.append([])
        try:
            value = compute()
        finally:
            inner = self._open.pop()
        if not isinstance(value, Mapping):
            raise ValueError(
                f"a checkpointed step must return a mapping, got {type(value).__name__}"
            )
        out = self.record(
            step,
            value,
            wall_time=time.perf_counter() - wall + self.replayed_wall - inner_wall,
            cpu_time=time.process_time() - cpu + self.replayed_cpu - inner_cpu,
        )
        for key in inner:
            self.store.path(key).unlink(missing_ok=True)
        return out

    def finished(self, step: Mapping[str, Any]) -> dict | None:
        """The value of ``step`` if a run finished it (its cost counted as replayed once, when
        an earlier run wrote it), else ``None``."""
        key = self._key(step)
        status, rec = self.store.read(key)
        if status != "ok" or rec is None:
            return None
        if key not in self._mine:  # finished before this run: its cost counts once
            self._mine.add(key)
            self.replayed += 1
            self.replayed_cpu += float(rec.get("cpu_time", 0.0))
            self.replayed_wall += float(rec.get("wall_time", 0.0))
        if self._open:
            self._open[-1].append(key)
        return rec["metrics"]

    def record(
        self,
        step: Mapping[str, Any],
        value: Mapping[str, Any],
        *,
        wall_time: float,
        cpu_time: float,
    ) -> dict:
        """Write ``step``'s ``value`` (computed in ``wall_time`` / ``cpu_time`` seconds)
        atomically; returns the value after a JSON round trip."""
        key = self._key(step)
        record = {
            "key": key,
            "function": self.function,
            "params": {"point": self.params, "step": normalize(dict(step), "step")},
            "seed": self.seed,
            "metrics": normalize(dict(value), "a checkpointed step's value"),
            "version": self.version,
            "wall_time": float(wall_time),
            "cpu_time": float(cpu_time),
            "finished": time.time(),  # UNIX seconds: the order the steps finished in
        }
        try:
            self.store.write(record)
        except FileNotFoundError:  # another sweep finished this point and removed its steps
            self.store.root.mkdir(parents=True, exist_ok=True)
            self.store.write(record)
        self._mine.add(key)
        if self._open:
            self._open[-1].append(key)
        return record["metrics"]

    def _key(self, step: Mapping[str, Any]) -> str:
        params = {"point": self.params, "step": normalize(dict(step), "step")}
        return result_key(self.function, params, self.seed, self.version)


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
