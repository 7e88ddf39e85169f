"""Executors a sweep runs its points on: this process, a process pool, or a Dask cluster.

``"local"`` (in this process), ``"processes"`` (a spawned process pool, all cores by default)
and ``"dask"``: a ``dask.distributed`` client of an existing scheduler
(``scheduler="tcp://host:8786"`` or the environment variable ``SUPERPOSITION_SCHEDULER``) or of a
fresh ``LocalCluster``. Any object with ``submit`` returning futures (a ``concurrent.futures``
executor, a ``distributed.Client``) also works.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from ._validate import check_choice, check_int

__all__ = ["EXECUTORS", "SCHEDULER_ENV", "check_executor", "is_dask", "open_executor"]

EXECUTORS = ("local", "processes", "dask")
"""Executor names understood by :func:`open_executor`."""
SCHEDULER_ENV = "SUPERPOSITION_SCHEDULER"
"""Environment variable holding a Dask scheduler address for ``executor="dask"``."""


def is_dask(executor: Any) -> bool:
    """Whether ``executor`` is a ``dask.distributed`` client."""
    return type(executor).__module__.split(".")[0] == "distributed"


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
    kind, n = check_executor(executor, workers, scheduler)
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


def check_executor(
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
