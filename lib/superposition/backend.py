"""Array backend: NumPy by default, CuPy on a GPU, one code path for both.

Library functions take and return arrays of whatever namespace they are given, found with
:func:`namespace` (``array_api_compat.array_namespace``). Random numbers are always drawn
with NumPy from an explicit seed and moved to the target namespace with :func:`asarray`,
so the same seed gives the same bits on every backend.

The backend is chosen by name (:func:`get_backend`), or by the environment variable
``SUPERPOSITION_BACKEND`` when no name is given. The CuPy path is exercised on machines without
a GPU through ``array_api_strict``, which rejects everything that is NumPy-only (list indexing,
mixing namespaces, implicit copies).

The array API standard has no scatter-add; :func:`bincount` supplies it, natively on NumPy and
CuPy and through sorting and ``searchsorted`` on any other namespace (same results, slower).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from ._validate import check_choice, check_int

BACKENDS = ("numpy", "cupy", "array_api_strict")
ENV_VAR = "SUPERPOSITION_BACKEND"
"""Environment variable naming the default backend (one of :data:`BACKENDS`)."""


def namespace(*arrays: Any) -> ModuleType:
    """The array-API namespace of ``arrays`` (NumPy's for plain Python numbers)."""
    if arrays and all(type(a) is np.ndarray for a in arrays):  # the hot paths call this often
        return _numpy_namespace()
    return array_api_compat.array_namespace(*arrays)


@functools.cache
def _numpy_namespace() -> ModuleType:
    return array_api_compat.array_namespace(np.empty(0))


def backend_name(name: str | None = None) -> str:
    """The backend name ``name`` resolves to: itself, else ``$SUPERPOSITION_BACKEND``, else numpy."""
    if name is not None:
        return check_choice("backend", name, BACKENDS)
    env = os.environ.get(ENV_VAR, "").strip()
    if not env:
        return "numpy"
    if env not in BACKENDS:
        raise ValueError(f"{ENV_VAR} must be one of {', '.join(BACKENDS)}, got {env!r}")
    return env


def get_backend(name: str | None = None) -> ModuleType:
    """The array-API namespace called ``name`` (one of :data:`BACKENDS`).

    Parameters
    ----------
    name : {"numpy", "cupy", "array_api_strict"} or None
        ``None``: the environment variable ``SUPERPOSITION_BACKEND``, or ``"numpy"`` when unset.

    Raises
    ------
    ValueError
        ``name`` (or the environment variable) is not one of :data:`BACKENDS`.
    RuntimeError
        The backend is not usable here: CuPy not installed, or no CUDA device.
    """
    name = backend_name(name)
    if name == "numpy":
        return array_api_compat.array_namespace(np.empty(0))
    if name == "array_api_strict":
        import array_api_strict

        return array_api_strict
    try:
        import cupy
    except ImportError as exc:
        raise RuntimeError(
            "backend 'cupy' needs the package cupy (pip install cupy-cuda12x) and a CUDA GPU; "
            "cupy is not installed"
        ) from exc
    if not gpu_available():
        raise RuntimeError("backend 'cupy' needs a CUDA GPU; none is available on this machine")
    return array_api_compat.array_namespace(cupy.empty(0))  # pragma: no cover - GPU only


def evaluation_namespace(*arrays: Any, backend: str | None = None) -> ModuleType:
    """The namespace an evaluator computes in.

    The namespace of the first argument that is an array of a namespace other than NumPy (an
    evaluator given CuPy or ``array_api_strict`` arrays stays there); otherwise the backend named
    by ``backend``, or ``$SUPERPOSITION_BACKEND``, or NumPy (:func:`get_backend`). Plain NumPy
    arrays, lists and numbers never choose: they are moved with :func:`asarray`.
    """
    for x in arrays:
        if x is None or isinstance(x, (np.ndarray, np.generic, list, tuple, int, float)):
            continue
        try:
            xp = array_api_compat.array_namespace(x)
        except TypeError:
            continue
        if not array_api_compat.is_numpy_namespace(xp):
            return xp
    return get_backend(backend)


def name_of(xp: ModuleType) -> str:
    """The backend name of namespace ``xp``: ``"numpy"``, ``"cupy"`` or ``"array_api_strict"``."""
    if array_api_compat.is_numpy_namespace(xp):
        return "numpy"
    if array_api_compat.is_cupy_namespace(xp):
        return "cupy"
    if array_api_compat.is_array_api_strict_namespace(xp):
        return "array_api_strict"
    return getattr(xp, "__name__", str(xp))


def is_numpy(xp: ModuleType) -> bool:
    """Whether ``xp`` is NumPy (where a kernel may call NumPy or SciPy directly)."""
    return array_api_compat.is_numpy_namespace(xp)


def gpu_available() -> bool:
    """True if CuPy imports and sees a CUDA device."""
    try:
        import cupy
    except ImportError:
        return False
    try:
        return bool(cupy.is_available())
    except Exception:  # pragma: no cover - driver errors
        return False


def asarray(x: Any, xp: ModuleType | None = None, dtype: Any = None) -> Any:
    """Move ``x`` (usually a NumPy array) into namespace ``xp`` (NumPy when ``None``)."""
    if xp is None:
        return np.asarray(x, dtype=dtype)
    return xp.asarray(x, dtype=dtype)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array of any array (device arrays are copied to the host; NumPy arrays as is).

    The one explicit way from another namespace to NumPy: through DLPack, so an implicit
    conversion (``np.asarray`` of a foreign array) is never needed.
    """
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (np.generic, int, float, bool, list, tuple)):
        return np.asarray(x)
    if hasattr(x, "get"):  # CuPy
        return x.get()
    return np.from_dlpack(x)


@contextlib.contextmanager
def blas_threads(threads: int = 1) -> Iterator[None]:
    """Run the block with ``threads`` BLAS threads (OpenBLAS, MKL or BLIS), then restore.

    Why it matters: a BLAS splits long dot products across its threads and the rounding depends
    on the split, so the same product can differ in the last bit between a 1-thread and a
    2-thread process. Sweeps evaluate every point with one thread (same bits on every
    executor); parallelism comes from running points side by side. Uses ``threadpoolctl``,
    which finds the BLAS libraries loaded in this process on Linux, macOS and Windows.
    """
    from threadpoolctl import threadpool_limits

    threads = check_int("threads", threads, low=1)
    with threadpool_limits(limits=threads, user_api="blas"):
        yield


# ---------------------------------------------------------------- primitives the standard lacks


def bincount(x: Any, minlength: int, weights: Any = None) -> Any:
    r"""How often each value of ``range(minlength)`` occurs in ``x``, or the sum of its ``weights``.

    A scatter-add, which the array API standard lacks.

    Parameters
    ----------
    x : integer array, shape ``(n,)``
        Values in ``[0, minlength)`` (not checked: the caller guarantees it).
    minlength : int
        Length of the result.
    weights : float array, shape ``(n,)``, optional
        Added instead of ones.

    Returns
    -------
    counts : int64 array (no weights) or float64 array (weights), shape ``(minlength,)``, in
        the namespace of ``x``. NumPy and CuPy use their native ``bincount``
        (:math:`O(n + \text{minlength})`; with weights, sums in float64 in index order). Any other
        namespace sorts ``x`` and differences ``searchsorted`` over the bin edges
        (:math:`O(n \log n)`); with weights it differences a float64 cumulative sum in sorted
        order, so a bin's sum is exact to about ``n u |total|`` (``u = 2**-53``) rather than
        ``len(bin) u |bin|``.
    """
    minlength = check_int("minlength", minlength, low=0)
    xp = namespace(x)
    if array_api_compat.is_numpy_namespace(xp):
        w = None if weights is None else np.asarray(weights, dtype=np.float64)
        counts = np.bincount(np.asarray(x, dtype=np.intp), weights=w, minlength=minlength)
        return counts if w is not None else counts.astype(np.int64, copy=False)
    if array_api_compat.is_cupy_namespace(xp):  # pragma: no cover - GPU only
        import cupy

        if weights is None:
            return cupy.bincount(x, minlength=minlength).astype(cupy.int64)
        return cupy.bincount(x, weights=weights.astype(cupy.float64), minlength=minlength)
    x = xp.astype(x, xp.int64)
    order = xp.argsort(x)
    xs = xp.take(x, order)
    edges = xp.searchsorted(xs, xp.arange(minlength + 1, dtype=xp.int64), side="left")
    if weights is None:
        return xp.astype(edges[1:] - edges[:-1], xp.int64)
    ws = xp.take(xp.astype(weights, xp.float64), order)
    csum = xp.concat([xp.zeros(1, dtype=xp.float64), xp.cumulative_sum(ws)])
    return xp.take(csum, edges[1:]) - xp.take(csum, edges[:-1])


def ranges(starts: Any, lengths: Any) -> Any:
    """``concat([arange(a, a + n) for a, n in zip(starts, lengths)])``, without a Python loop.

    Parameters
    ----------
    starts, lengths : int64 arrays, shape ``(r,)``, same namespace; ``lengths >= 0``.

    Returns
    -------
    int64 array, shape ``(sum(lengths),)``.
    """
    xp = namespace(starts, lengths)
    total = int(xp.sum(lengths)) if lengths.shape[0] else 0
    if total == 0:
        return xp.zeros(0, dtype=xp.int64)
    offsets = xp.cumulative_sum(lengths) - lengths  # where each range begins in the output
    shift = xp.repeat(starts - offsets, lengths)
    return shift + xp.arange(total, dtype=xp.int64)
