"""Machine peaks measured in the same run as a benchmark, so results are ratios, not seconds.

The machine is shared and noisy: a benchmark reports its own throughput against the peak the
machine delivered a moment earlier (float64/float32 matrix product and memory copy).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable

import numpy as np


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_gflops(n: int = 2048, dtype: type = np.float64) -> float:
    """Peak dense matrix-product throughput (GFLOP/s) on an ``n × n`` product."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    return 2 * n**3 / best_time(lambda: a @ b) / 1e9


def copy_gbps(n_bytes: int = 400_000_000) -> float:
    """Memory bandwidth (GB/s, read + write) of a large array copy."""
    src = np.ones(n_bytes // 8)
    dst = np.empty_like(src)
    return 2 * n_bytes / best_time(lambda: np.copyto(dst, src)) / 1e9


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(name: str, value: float, unit: str, target: str = "") -> None:
    print(f"  {name:<44} {value:>10.3g} {unit:<10} {target}")
