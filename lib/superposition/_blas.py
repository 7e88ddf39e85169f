"""The OpenBLAS kernels every result is computed with, pinned before NumPy loads them.

OpenBLAS chooses its kernels by processor (``DYNAMIC_ARCH``), and its AVX-512 kernels round
some float64 products differently from its AVX2 ones: on a processor with AVX-512 the same seed
would give other bits than the stored results (``book/sweeps/store``), which were computed
with the AVX2 kernels. :func:`pin_kernels` asks OpenBLAS for those (``OPENBLAS_CORETYPE``) on
every x86-64 processor that has AVX2, unless the variable is already set. It takes effect only
if it runs before NumPy is imported: importing this module calls it, and ``import superposition``
imports this module first. :func:`blas_architecture` reports what OpenBLAS loaded.
"""

from __future__ import annotations

import os
import sys

BLAS_CORETYPE = "Haswell"
"""The OpenBLAS kernels asked for (AVX2; OpenBLAS's ``Zen`` uses the same ones)."""


def pin_kernels() -> bool:
    """Set ``OPENBLAS_CORETYPE`` to :data:`BLAS_CORETYPE` where it is unset, NumPy not yet
    imported and the processor has AVX2. Returns whether it set it."""
    if "OPENBLAS_CORETYPE" in os.environ or "numpy" in sys.modules or not _has_avx2():
        return False
    os.environ["OPENBLAS_CORETYPE"] = BLAS_CORETYPE
    return True


def _has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "avx2" in line.split(":", 1)[1].split()
    except OSError:
        pass
    return False


def blas_architecture() -> str | None:
    """The kernels the loaded OpenBLAS uses (``threadpoolctl``), ``None`` without OpenBLAS."""
    from threadpoolctl import threadpool_info

    for info in threadpool_info():
        if info.get("internal_api") == "openblas":
            return str(info.get("architecture"))
    return None


pin_kernels()
