"""Benchmark: exact errors of all C(m, 2) U-AND outputs, m = 10,000, d = 2,000, s = 3, 100 inputs.

Targets (issue 3): at most 15 s and 2 GiB peak memory on the project's 2-core machine.
Reports the time against
  (a) the naive algorithm (per input, per pair: find Γ(k, l), average its activations; the
      readout loop of Busch's thesis), timed on a subset of pairs and extrapolated, and
  (b) the machine measured in the same run: float32 matrix-product peak (the Gram matrix WᵀW
      is the one dense computation) and memory-copy bandwidth (what writing every output once
      as float64 would cost).
Exits non-zero if a target is missed.
"""

from __future__ import annotations

import sys
import time
from math import comb
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # bench/_machine.py, a sibling script

from _machine import copy_gbps, matmul_gflops, peak_rss_mib, report  # noqa: E402

import superposition as sp  # noqa: E402

M, D, S, K = 10_000, 2_000, 3, 100
TARGET_S, TARGET_MIB = 15.0, 2048.0
NAIVE_PAIRS = 20_000


def naive_seconds_per_output(net: sp.UAnd, active: np.ndarray) -> float:
    """The per-input, per-pair loop on a dense boolean W, timed on NAIVE_PAIRS pairs of one input."""
    dense = net.W.toarray().astype(bool)
    a = net.activations(active[:1])[0]
    rng = np.random.default_rng(0)
    pairs = np.sort(rng.choice(M, size=(NAIVE_PAIRS, 2), replace=True), axis=1)
    pairs = pairs[pairs[:, 0] < pairs[:, 1]]
    t0 = time.perf_counter()
    for k, j in pairs:
        gamma = dense[:, k] & dense[:, j]
        _ = a[gamma].mean() if gamma.any() else 0.0
    return (time.perf_counter() - t0) / len(pairs)


def main() -> int:
    print(f"U-AND exact evaluation: m={M}, d={D}, s={S}, K={K} inputs, all C(m,2) outputs each")
    t0 = time.perf_counter()
    net = sp.build_uand(M, D, S, seed=0)
    active = sp.sample_sparse(M, S, K, seed=1)
    t_build = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = sp.evaluate_uand(net, active)
    t_eval = time.perf_counter() - t1
    total = t_build + t_eval
    rss = peak_rss_mib()  # before the machine measurements, which allocate large arrays
    outputs = K * comb(M, 2)
    report("connection probability p (default)", net.p, "")
    report("outputs evaluated (K * C(m,2))", outputs, "")
    report("  of which nonzero", int(res.nonzero.sum()), "")
    report("max |error| / mean |error|", res.max_abs_error, "", f"/ {res.mean_abs_error:.3g}")
    report("build network + sample inputs", t_build, "s")
    report("exact evaluation", t_eval, "s")
    report("total", total, "s", f"(target <= {TARGET_S:g})")
    report("peak RSS", rss, "MiB", f"(target <= {TARGET_MIB:g})")

    naive = naive_seconds_per_output(net, active) * outputs
    report("naive per-pair loop, extrapolated", naive, "s", f"(timed on {NAIVE_PAIRS} pairs)")
    report("  speed-up over naive", naive / t_eval, "x")

    sgemm = matmul_gflops(dtype=np.float32)
    bw = copy_gbps()
    gram_flops = 2 * M * M * D / 2  # the upper half of WᵀW: the one dense product
    report("machine float32 matmul peak", sgemm, "GFLOP/s")
    report("machine copy bandwidth", bw, "GB/s")
    report("  Gram WᵀW at peak / evaluation time", gram_flops / (sgemm * 1e9) / t_eval, "ratio")
    write_all = outputs * 8 / (bw / 2 * 1e9)  # copy_gbps counts read + write
    report("  writing every output once / evaluation", write_all / t_eval, "ratio")
    ok = total <= TARGET_S and rss <= TARGET_MIB
    print("PASS" if ok else "FAIL: a target was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
