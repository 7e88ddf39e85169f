"""Sweeps: searches over a size parameter, and resumable grids of experiments.

:func:`largest_passing` and :func:`smallest_passing` find the threshold size at which a test
flips; :func:`fraction_passing` turns a per-seed test into "at least 90% of seeds pass";
:func:`run_grid` evaluates an experiment over a grid of points, here or on an executor (a
Dask cluster for sizes that outgrow one machine), writing finished points atomically so an
interrupted sweep resumes.

Both searches assume the test is monotone in the size (passing below a threshold, failing
above it, or the reverse) and locate the threshold by geometric bracketing followed by
bisection on a log grid, to a relative resolution chosen by the caller.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._validate import check_int, check_real


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
    need = int(np.ceil(fraction * len(seeds) - 1e-12))
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


# ------------------------------------------------------------------ resumable grids


def point_key(point: Mapping[str, Any]) -> str:
    """A canonical string for a grid point (sorted JSON), used as its key on disk."""
    return json.dumps(dict(point), sort_keys=True, separators=(",", ":"), default=_jsonable)


def run_grid(
    fn: Callable[..., Mapping[str, Any]],
    points: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str] | None = None,
    executor: Any = None,
    progress: bool | None = None,
    desc: str = "grid",
) -> list[dict[str, Any]]:
    """Evaluate ``fn(**point)`` at every grid point, saving as it goes and resuming if interrupted.

    Parameters
    ----------
    fn : callable
        Takes a point's entries as keyword arguments and returns a JSON-serialisable mapping.
        It must be deterministic given the point (put the seed in the point), so the result does
        not depend on where or in which order points run.
    points : sequence of mappings
    path : path, optional
        A JSON file of finished results. It is rewritten atomically (write to a temporary
        file, then ``os.replace``) after every finished point; points already in it are not
        run again, so an interrupted sweep resumes where it stopped.
    executor : optional
        Anything with ``submit(fn, *args, **kwargs)`` returning futures with ``result()``:
        a ``concurrent.futures`` executor or a ``dask.distributed.Client`` (for sizes that
        outgrow one machine). ``None`` runs the points here, one after another.
    progress : bool or None
        Show a tqdm progress bar on stderr (``None``: only on a terminal).

    Returns
    -------
    list of dict
        One per point, in the order of ``points``: the point's entries and ``fn``'s result.
    """
    from tqdm.auto import tqdm

    keys = [point_key(p) for p in points]
    done: dict[str, dict[str, Any]] = _load(path) if path is not None else {}
    todo = [(k, p) for k, p in zip(keys, points, strict=True) if k not in done]
    bar = tqdm(total=len(keys), initial=len(keys) - len(todo), desc=desc, disable=_no_bar(progress))
    try:
        if executor is None:
            for k, p in todo:
                done[k] = {**p, **fn(**p)}
                _save(path, done)
                bar.update()
        else:
            futures = {executor.submit(fn, **p): (k, p) for k, p in todo}
            for fut in _as_completed(futures):
                k, p = futures[fut]
                done[k] = {**p, **fut.result()}
                _save(path, done)
                bar.update()
    finally:
        bar.close()
    return [done[k] for k in keys]


def _as_completed(futures: Mapping[Any, Any]):
    first = next(iter(futures), None)
    if first is None:
        return iter(())
    if type(first).__module__.startswith("distributed"):
        from distributed import as_completed

        return as_completed(list(futures))
    from concurrent.futures import as_completed

    return as_completed(list(futures))


def _no_bar(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def _load(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        return {}
    with p.open() as fh:
        return json.load(fh)["results"]


def _save(path: str | os.PathLike[str] | None, done: Mapping[str, Any]) -> None:
    if path is None:
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=p.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump({"results": done}, fh, default=_jsonable)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
