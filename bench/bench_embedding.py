"""Benchmark: reading m features back from superposition, Φᵀa, block by block.

Reports throughput as a fraction of the machine's float64 matrix-product peak measured in the
same run, and against a baseline that materialises Φ first.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # bench/_machine.py, a sibling script

from _machine import best_time, matmul_gflops, peak_rss_mib, report  # noqa: E402

import superposition as sp  # noqa: E402

M, D0, S, K = 100_000, 256, 3, 200


def main() -> int:
    peak = matmul_gflops()
    print(f"embedding readout: m={M}, d0={D0}, s={S}, K={K}")
    report("machine float64 matmul peak", peak, "GFLOP/s")
    emb = sp.Embedding(M, D0, seed=0)
    active = sp.sample_sparse(M, S, K, seed=1)
    a = emb.embed(active)
    emb.readout(a)  # warm the block cache: this measures the readout, not the generation
    t_stream = best_time(lambda: emb.readout(a))
    flops = 2 * K * D0 * M
    report("streamed readout Φᵀa", t_stream, "s")
    report("  throughput / matmul peak", flops / t_stream / 1e9 / peak, "ratio")
    phi = emb.matrix()
    t_dense = best_time(lambda: a @ phi)
    report("baseline: dense a @ Φ (Φ materialised)", t_dense, "s")
    report("  streamed / dense time", t_stream / t_dense, "ratio", "(target <= 2)")
    t_gen = best_time(lambda: sp.Embedding(M, D0, seed=1).matrix(), repeat=1)
    report("generate Φ from seeds", t_gen, "s")
    report("peak RSS", peak_rss_mib(), "MiB")
    return 0 if t_stream / t_dense <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
