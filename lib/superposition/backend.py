"""Array backend: NumPy by default, CuPy on a GPU, one code path for both.

Library functions take and return arrays of whatever namespace they are given, found with
:func:`namespace` (``array_api_compat.array_namespace``). Random numbers are always drawn
with NumPy from an explicit seed and moved to the target namespace with :func:`asarray`,
so the same seed gives the same bits on every backend.

The CuPy path is exercised on machines without a GPU through ``array_api_strict``, which
rejects everything that is NumPy-only (list indexing, mixing namespaces, implicit copies).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from ._validate import check_choice

BACKENDS = ("numpy", "cupy", "array_api_strict")


def namespace(*arrays: Any) -> ModuleType:
    """The array-API namespace of ``arrays`` (NumPy's for plain Python numbers)."""
    return array_api_compat.array_namespace(*arrays)


def get_backend(name: str = "numpy") -> ModuleType:
    """The array-API namespace called ``name`` (one of :data:`BACKENDS`).

    Raises ``ValueError`` if ``name`` is unknown and ``RuntimeError`` if it is not usable here
    (CuPy without a GPU, say).
    """
    check_choice("backend", name, BACKENDS)
    if name == "numpy":
        return array_api_compat.array_namespace(np.empty(0))
    if name == "array_api_strict":
        import array_api_strict

        return array_api_strict
    try:
        import cupy
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError(
            "backend 'cupy' needs the package cupy (pip install cupy-cuda12x)"
        ) from exc
    if not cupy.is_available():  # pragma: no cover - depends on the machine
        raise RuntimeError("backend 'cupy' needs a CUDA GPU; none is available on this machine")
    return array_api_compat.array_namespace(cupy.empty(0))  # pragma: no cover


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
    """A NumPy copy of any array (device arrays are copied to the host)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get"):  # CuPy
        return x.get()
    return np.asarray(x)  # array-API arrays on the CPU support the buffer/array protocol
