"""Every benchmark in one run, one table: our kernels against baselines and the machine's peak.

For each kernel and size the table gives our time, the time of (a) a dense NumPy
implementation of the same computation and (b) a per-output loop in the style of the
published Julia reference for U-AND (Busch 2025, ``readoff`` per AND gate), with the ratios;
for GEMM-shaped kernels the achieved GFLOP/s as a fraction of the float32 / float64
matrix-product peak measured at the start of the same run; and the peak resident memory of
each, every measurement in a fresh subprocess (``VmHWM``, so it includes the interpreter
and the imported libraries: the "import only" row). A baseline that would not finish, or not
fit, is timed on part of the work and extrapolated: the table marks it ``~`` and says how.

Results also go to ``_build/bench/results.json`` (and a copy named by time and commit) for
comparison across commits. Usage::

    python bench/run_all.py            # everything (the m = 10^5 U-AND case takes minutes)
    python bench/run_all.py --only uand_1e4 --only sign_readout
    python bench/run_all.py --strict   # exit 1 if a target is missed
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from math import comb
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "_build" / "bench"

Result = dict[str, object]


# ---------------------------------------------------------------- measuring


def _best(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _rss_mib() -> float:
    """Peak resident memory of this process (MiB).

    ``VmHWM`` of this process image: ``ru_maxrss`` would include the parent's peak, which a
    child inherits across fork and exec on Linux.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_peaks() -> dict[str, float]:
    """Float32/float64 matrix-product peak (GFLOP/s, 2048² products) and copy bandwidth (GB/s)."""
    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    n = 2048
    for name, dtype in (("float32", np.float32), ("float64", np.float64)):
        a = rng.standard_normal((n, n)).astype(dtype)
        b = rng.standard_normal((n, n)).astype(dtype)
        a @ b  # warm up the BLAS threads
        out[f"{name}_gflops"] = 2 * n**3 / _best(lambda a=a, b=b: a @ b, repeat=5) / 1e9
    src = np.ones(50_000_000)
    dst = np.empty_like(src)
    out["copy_gbps"] = 2 * src.nbytes / _best(lambda: np.copyto(dst, src)) / 1e9
    return out


# ---------------------------------------------------------------- the cases
# Each case function runs one variant ("ours", "dense", "loop") inside its own subprocess and
# returns {"seconds", "flops"?, "extrapolated"?, "how"?, "info"?}.


def _uand_inputs(m: int, d: int, k: int):
    import superposition as sp

    t0 = time.perf_counter()
    net = sp.build_uand(m, d, 3, seed=0)
    active = sp.sample_sparse(m, 3, k, seed=1)
    return net, active, time.perf_counter() - t0


def sp_to_numpy(x):
    from superposition.backend import to_numpy

    return to_numpy(x)


def _bernoulli_loop(net, active, n_pairs: int = 20_000) -> tuple[float, str]:
    """Per-output readout loop (Julia ``readoff``): Γ = W[:,k] .& W[:,l]; y = a·Γ/|Γ|, per pair."""
    m = net.n_features
    w = net.W  # neuron lists per feature: build Wᵀ as bool directly (8x smaller than float64)
    WT = np.zeros((m, net.neurons), dtype=bool)  # column k of W contiguous, as in Julia
    WT[np.repeat(np.arange(m), np.diff(w.host_indptr)), sp_to_numpy(w.indices)] = True
    a = net.activations(active[:1])[0]
    rng = np.random.default_rng(0)
    pairs = np.sort(rng.choice(m, size=(n_pairs, 2)), axis=1)
    pairs = pairs[pairs[:, 0] < pairs[:, 1]]
    t0 = time.perf_counter()
    for k, j in pairs:
        r = WT[k] & WT[j]
        c = r.sum()
        _ = (a @ r) / c if c else 0.0
    per = (time.perf_counter() - t0) / len(pairs)
    total = per * active.shape[0] * comb(m, 2)
    return (
        total,
        f"{len(pairs)} pairs of 1 input timed, x {active.shape[0] * comb(m, 2):.3g} outputs",
    )


def _bernoulli_dense_per_input(x: np.ndarray, a: np.ndarray, Wd, G, rows: int) -> None:
    """Dense: Ŷ = (Wᵀ diag(a) W) / Γ over all m² pairs (float32, exact here), errors on k < l.

    ``Wd``: the 0/1 rows of W (d' x m, float32) whose activations are ``a``; ``G``: Γ (m x m).
    """
    m = Wd.shape[1]
    Wa = Wd * a[:, None].astype(np.float32)
    for k0 in range(0, m, rows):
        k1 = min(k0 + rows, m)
        N = Wa[:, k0:k1].T @ Wd
        Y = np.divide(N, G[k0:k1], out=np.zeros_like(N), where=G[k0:k1] > 0)
        E = Y - np.outer(x[k0:k1], x).astype(np.float32)
        upper = np.arange(m)[None, :] > np.arange(k0, k1)[:, None]
        E = E[upper]
        np.abs(E).max(), np.abs(E).sum(dtype=np.float64), (E * E).sum(dtype=np.float64)


def case_uand(variant: str, m: int, d: int, k: int, dense_inputs: int = 2) -> Result:
    import superposition as sp

    net, active, t_build = _uand_inputs(m, d, k)
    if variant == "ours":
        t0 = time.perf_counter()
        res = sp.evaluate_uand(net, active)
        sec = time.perf_counter() - t0
        return {
            "seconds": sec,
            "info": {
                "build_seconds": t_build,
                "total_seconds": sec + t_build,
                "p": net.p,
                "outputs": k * comb(m, 2),
                "max_abs_error": res.max_abs_error,
                "mean_abs_error": res.mean_abs_error,
            },
        }
    if variant == "loop":
        sec, how = _bernoulli_loop(net, active)
        return {"seconds": sec, "extrapolated": True, "how": how}
    # dense: whole m x m matrices per input; at m = 10^5 they would need 40 GB each
    if m * m * 4 * 3 > 2.5 * 2**30:
        ref = 10_000, 2_000
        return {
            "seconds": None,
            "extrapolated": True,
            "how": f"needs {3 * m * m * 4 / 2**30:.0f} GB; scaled from m={ref[0]} by m^2 d",
            "scale_from": {"case": "uand_1e4", "factor": (m / ref[0]) ** 2 * d / ref[1] * k / 100},
        }
    Wd = net.W.toarray().astype(np.float32)
    X = sp.to_dense(active, m)
    A = net.activations(active)
    rows = max(1, min(m, 2**27 // (4 * m)))
    t0 = time.perf_counter()
    G = Wd.T @ Wd  # |Γ(k, l)| for all pairs, once
    t_gram = time.perf_counter() - t0
    t1 = time.perf_counter()
    for t in range(dense_inputs):
        _bernoulli_dense_per_input(X[t], A[t], Wd, G, rows)
    per = (time.perf_counter() - t1) / dense_inputs
    return {
        "seconds": t_gram + per * k,
        "extrapolated": True,
        "how": f"Γ = WᵀW once + {dense_inputs} of {k} inputs timed, x {k / dense_inputs:g}",
        "flops": 2 * m * m * d * (1 + k),
    }


def case_sign(variant: str, m: int = 3000, d: int = 1000, k: int = 100) -> Result:
    import superposition as sp
    from superposition import kernels as K

    net = sp.build_uand(m, d, 3, weights="rademacher", seed=0)
    active = sp.sample_sparse(m, 3, k, seed=1)
    acts = net.activations(active)
    scale = net.readout.scale
    if variant == "ours":
        signs = np.sign(net.W).astype(np.float32)
        t0 = time.perf_counter()
        res = K.sign_pair_errors(signs, acts, active, scale)
        sec = time.perf_counter() - t0
        rows = K.sign_tile_rows(m)
        cols = sum(min(rows, m - k0) * (m - k0) for k0 in range(0, m - 1, rows))
        firing = (acts > 0).sum(axis=1)
        flops = float(2 * firing.sum() * (cols + 3 * m))
        return {
            "seconds": sec,
            "flops": flops,
            "dtype": "float32",
            "info": {"max_abs_error": res.max_abs_error, "mean_firing": float(firing.mean())},
        }
    if variant == "dense":
        t0 = time.perf_counter()
        sp.evaluate_uand(net, active, method="tiles")
        return {"seconds": time.perf_counter() - t0, "flops": 2.0 * k * d * comb(m, 2)}
    signs = np.ascontiguousarray(np.sign(net.W).T)  # per-output readout vector sgn(W_k W_l)/(d c)
    a = acts[0]
    rng = np.random.default_rng(0)
    pairs = np.sort(rng.choice(m, size=(20_000, 2)), axis=1)
    pairs = pairs[pairs[:, 0] < pairs[:, 1]]
    t0 = time.perf_counter()
    for kk, ll in pairs:
        _ = (signs[kk] * signs[ll] * scale) @ a
    per = (time.perf_counter() - t0) / len(pairs)
    return {
        "seconds": per * k * comb(m, 2),
        "extrapolated": True,
        "how": f"{len(pairs)} pairs of 1 input timed, x {k * comb(m, 2):.3g} outputs",
    }


def case_pair_counts(variant: str, m: int = 10_000, d: int = 2_000) -> Result:
    import scipy.sparse as sps

    from superposition import kernels as K

    w = K.sample_wiring(m, d, 0.05, seed=0)
    if variant == "ours":  # upper row tiles of WᵀW, the Gram of the exact U-AND evaluation
        rows = 2048
        flops = 0.0
        t0 = time.perf_counter()
        for k0 in range(0, m, rows):
            k1 = min(k0 + rows, m)
            K.pair_counts(w, (k0, k1), (k0, m))
            flops += 2.0 * d * (k1 - k0) * (m - k0)
        return {"seconds": time.perf_counter() - t0, "flops": flops, "dtype": "float32"}
    csc = sps.csc_array(
        (np.ones(w.nnz, dtype=np.float32), w.indices, w.indptr), shape=(d, m), copy=False
    )
    if variant == "dense":
        Wd = csc.toarray().astype(np.float64)
        t0 = time.perf_counter()
        Wd.T @ Wd
        return {"seconds": time.perf_counter() - t0, "flops": 2.0 * d * m * m}
    t0 = time.perf_counter()  # "loop" column: scipy.sparse product WᵀW
    csc.T @ csc
    return {"seconds": time.perf_counter() - t0, "how": "scipy.sparse WᵀW (sparse x sparse)"}


def case_wiring(variant: str, m: int = 1_000_000, d: int = 10_000, p: float = 0.01) -> Result:
    from superposition import kernels as K

    if variant == "ours":
        t0 = time.perf_counter()
        w = K.sample_wiring(m, d, p, seed=0)
        sec = time.perf_counter() - t0
        return {"seconds": sec, "info": {"nnz": w.nnz, "wiring_mib": w.nbytes / 2**20}}
    if variant == "dense":
        return {
            "seconds": None,
            "how": f"dense W would take {m * d / 1e9:.0f} GB as bool, {8 * m * d / 1e9:.0f} GB float64",
        }
    import superposition as sp

    m0 = m // 10  # "loop" column: the row-by-row CSR sampler of build_uand, linear in m
    t0 = time.perf_counter()
    sp.build_uand(m0, d, 3, p=p, seed=0)
    return {
        "seconds": (time.perf_counter() - t0) * m / m0,
        "extrapolated": True,
        "how": f"build_uand (rows by rng.choice, CSR + float64 values) timed at m={m0}, x {m / m0:g};"
        f" its memory is at m={m0}",
    }


def case_forward(variant: str, m: int = 1_000_000, d: int = 10_000, p: float = 0.01) -> Result:
    import superposition as sp
    from superposition import kernels as K

    k, batch = 10_000, 250
    active = sp.sample_sparse(m, 3, k, seed=1)
    if variant == "dense":  # x @ Wᵀ with W dense: 40 GB in float32 at this size; scaled by K m
        m0, k0 = 10_000, 1_000
        import scipy.sparse as sps

        w0 = K.sample_wiring(m0, d, p, seed=0)
        ones = np.ones(w0.nnz, dtype=np.float32)
        Wd = sps.csr_array((ones, w0.indices, w0.indptr), shape=(m0, d)).toarray()  # Wᵀ
        x = sp.to_dense(sp.sample_sparse(m0, 3, k0, seed=1), m0).astype(np.float32)
        sec = _best(lambda: np.maximum(x @ Wd - 1.0, 0.0), repeat=2)
        return {
            "seconds": sec * (m / m0) * (k / k0),
            "extrapolated": True,
            "how": f"float32 x @ Wᵀ timed at m={m0}, K={k0}; x {(m / m0) * (k / k0):g} (flops)",
        }
    w = K.sample_wiring(m, d, p, seed=0)
    if variant == "ours":

        def run() -> None:
            for b0 in range(0, k, batch):
                K.wiring_activations(w, active[b0 : b0 + batch], -1.0, dtype=np.float32)

        sec = _best(run, repeat=2)
        return {
            "seconds": sec,
            "info": {"inputs_per_second": k / sec, "batch": batch, "dtype": "float32"},
        }
    import scipy.sparse as sps  # "loop" column: scipy.sparse indicator @ Wᵀ (UAnd.activations)

    Wt = sps.csr_array(
        (np.ones(w.nnz), w.indices, w.indptr), shape=(m, d), copy=False
    )  # Wᵀ: rows = features

    def run_sparse() -> None:
        for b0 in range(0, k, batch):
            act = active[b0 : b0 + batch]
            x = sps.csr_array(
                (np.ones(act.size), act.ravel(), np.arange(0, act.size + 1, 3)), shape=(len(act), m)
            )
            np.maximum((x @ Wt).toarray() - 1.0, 0.0)

    return {"seconds": _best(run_sparse, repeat=2), "how": "scipy.sparse x @ Wᵀ, then dense"}


def case_gather(variant: str, m: int = 10_000, d: int = 2_000) -> Result:
    import superposition as sp
    from superposition import kernels as K

    k, batch = 10_000, 2_000
    net = sp.build_uand(m, d, 3, weights="gaussian", seed=0)
    active = sp.sample_sparse(m, 3, k, seed=1)
    W = net.W
    if variant == "ours":
        WT = np.ascontiguousarray(W.T)  # kept once per network

        def run() -> None:
            for b0 in range(0, k, batch):
                K.relu(K.gather_preactivations(WT, active[b0 : b0 + batch]))

        sec = _best(run, repeat=2)
        return {"seconds": sec, "info": {"inputs_per_second": k / sec}}
    if variant == "dense":
        X = sp.to_dense(active, m)
        WT = np.ascontiguousarray(W.T)
        sec = _best(lambda: np.maximum(X @ WT, 0.0), repeat=2)
        return {"seconds": sec, "flops": 2.0 * k * m * d}
    sec = _best(lambda: net.activations(active), repeat=2)  # the scipy path of UAnd
    return {"seconds": sec, "how": "UAnd.activations: scipy.sparse indicator @ Wᵀ"}


def case_embedding(variant: str, m: int = 100_000, d0: int = 256, k: int = 200) -> Result:
    import superposition as sp

    emb = sp.Embedding(m, d0, seed=0)
    active = sp.sample_sparse(m, 3, k, seed=1)
    a = emb.embed(active)
    flops = 2.0 * k * d0 * m
    if variant == "ours":
        emb.readout(a)  # warm the block cache: this measures the readout, not the generation
        return {"seconds": _best(lambda: emb.readout(a)), "flops": flops, "dtype": "float64"}
    phi = emb.matrix()
    return {"seconds": _best(lambda: a @ phi), "flops": flops, "dtype": "float64"}


def case_deep(variant: str, m: int = 100_000, d: int = 8192, k: int = 100) -> Result:
    """One corrected deep layer pair (gate layer, then the denoiser) at m = 1e5, d = 8192.

    The gate layer is in superposition (m/10 neurons, 15 neurons per product, theta = 1.3, an
    {and, or} circuit); the time is one deep_step on K inputs after the layer's factors and the
    embedding's rows are built (their set-up is reported apart). Three GEMM-shaped products of
    (K, m) x (m, d) per step: the gate layer's write, its readout, the correction's readout.
    """
    import superposition as sp
    from superposition.deep import deep_step

    t0 = time.perf_counter()
    net = sp.deep_network(
        m, d, 3, 2, gates=("and", "or"), gate_neurons=m // 10, neurons_per_product=15,
        and_bias=1.3, seed=0,
    )  # fmt: skip
    x = sp.to_dense(sp.sample_sparse(m, 3, k, seed=1), m).astype(bool)
    r0 = net.readout(net.encode(x), 0)
    factors = net.gate_factors(1)
    rows = net._rows(1)  # the embedding as rows (m, d) float32, as run_deep holds it
    fix = net.correction_arrays()
    setup = time.perf_counter() - t0

    def step() -> None:
        deep_step(r0, factors, rows, and_bias=net.and_bias, correction=fix)

    sec = _best(step, repeat=2)
    return {
        "seconds": sec,
        "flops": 6.0 * k * m * d,
        "dtype": "float32",
        "info": {
            "per_input_per_layer_s": sec / k,
            "setup_seconds": setup,
            "n_samples": k,
            "gate_neurons": net.gate_neurons,
            "correction_neurons": net.correction_neurons,
        },
    }


def _superposed_layer(weights: str, m: int, d: int, kappa: float, k: int):
    """The width trial's layer on superposed inputs (s = 2, d0 = d, seed 0) and its activations."""
    from superposition.superposed import trial_layer

    layer = trial_layer(
        m, d, 2, embed_dim="tied", weights=weights, n_samples=k, seed=0,
        p_scale=kappa if weights == "bernoulli" else 1.0, phi="sampled",
    )  # fmt: skip
    (active,) = layer.groups  # exactly s active features: one group
    (acts,) = layer.activations()
    return layer.net, active, np.asarray(acts), layer.scale


DENSE_BYTES = 4 * 2**30  # a dense float32 W larger than this is timed on a block of features
BLOCK_FEATURES = 4096


def _bernoulli_dense_block(net, active, a: np.ndarray, k: int) -> Result:
    """The dense Gram route on the first ``BLOCK_FEATURES`` features, scaled by (m / c)².

    For sizes whose dense W (d x m, float32) does not fit: Γ = WᵀW and one input's numerator
    and errors are computed on the c x c block of outputs of features 0..c-1 (all d neurons),
    and the time is scaled by the number of such blocks in the m x m outputs.
    """
    m, d = net.n_features, net.neurons
    c = min(m, BLOCK_FEATURES)
    Wc = sp_to_numpy(net.W.columns(np.arange(c), dtype=np.float32))
    x = sp_to_numpy(active)
    X = np.zeros(c, dtype=np.float32)
    X[x[0][x[0] < c]] = 1
    fire = a > 0
    t0 = time.perf_counter()
    G = Wc.T @ Wc
    t_gram = time.perf_counter() - t0
    t1 = time.perf_counter()
    _bernoulli_dense_per_input(X, a[fire], Wc[fire], G, rows=c)
    per = time.perf_counter() - t1
    blocks = (m / c) ** 2
    return {
        "seconds": (t_gram / k + per) * blocks,
        "extrapolated": True,
        "how": (
            f"dense W would take {4 * d * m / 2**30:.1f} GiB: Γ and 1 input on a {c} x {c} block "
            f"of the m x m outputs timed, x {blocks:.3g} blocks"
        ),
        "flops": 2.0 * m * m * (d / k + fire.sum()),
    }


def case_superposed(
    variant: str, weights: str, m: int, d: int, kappa: float = 1.0, k: int = 2
) -> Result:
    """Exact worst error of every C(m, 2) output of a U-AND layer on superposed inputs, per input.

    s = 2 and d0 = d, the chapter's headline setting, with ``d`` near the measured d*(m) and the
    Bernoulli p at its best multiple ``kappa`` of the rule. Ours: the evaluator of the width
    searches (:func:`bernoulli_worst_errors`, exact, no early stop; :func:`sign_pair_errors` in
    float32 tiles). Loop (Bernoulli): the walk (``route="walk"``, what runs where the pair
    table does not fit) with every pair of a neuron's support counted by one dense GEMM over all d
    neurons, as before the sparse count (each walked neuron through ``_neuron_pairs``, with
    ``SPARSE_COUNT_COST`` set to infinity). Dense: the
    Gram route, Ŷ = (Wᵀ diag(a) W) / (WᵀW) for Bernoulli (Γ once, shared by the ``k``
    inputs, the numerator over the firing neurons per input) and
    Ŷ = σᵀ diag(a) σ over all d neurons for Rademacher (512 rows timed, scaled). Set-up (drawing
    W, Φ's readouts, the activations) is not timed.
    """
    from superposition import kernels as K

    net, active, acts, scale = _superposed_layer(weights, m, d, kappa, k)
    firing = float((acts > 0).sum(axis=1).mean())
    if variant in ("ours", "loop") and weights == "bernoulli":
        # loop: the walk that counts every pair of a neuron's support (one GEMM over d)
        route = "auto" if variant == "ours" else "walk"
        if variant == "loop":  # this subprocess only: every pair counted by the GEMM
            K.SPARSE_COUNT_COST = float("inf")

            def gemm_walk(w, i, a_i, sup, a, fire, floor):
                return K._neuron_pairs(w, i, a_i, sup, a, fire, None, 0), 0.0

            K._neuron_top = gemm_walk
        t0 = time.perf_counter()
        r = K.bernoulli_worst_errors(net.W, acts, active, route=route)
        sec = (time.perf_counter() - t0) / k
        return {"seconds": sec, "info": {"max_abs_error": float(r.per_input.max()),
                "mean_firing": firing, "p": net.p, "route": route,
                "neurons_walked": int(r.processed.sum())}}  # fmt: skip
    if variant == "ours":
        signs = np.sign(np.asarray(net.W)).astype(np.float32)
        t0 = time.perf_counter()
        r = K.sign_pair_errors(signs, acts, active, scale)
        sec = (time.perf_counter() - t0) / k
        return {
            "seconds": sec,
            "flops": firing * m * m,  # 2 |F| flops per output of the upper triangle
            "dtype": "float32",
            "info": {"max_abs_error": r.max_abs_error, "mean_firing": firing},
        }
    if weights == "bernoulli" and 4 * d * m > DENSE_BYTES:
        return _bernoulli_dense_block(net, active, acts[0], k)
    if weights == "bernoulli":
        Wd = net.W.toarray().astype(np.float32)
        x = sp_to_numpy(active)
        X = np.zeros(m, dtype=np.float32)
        X[x[0]] = 1
        a = acts[0]
        fire = a > 0
        rows = max(1, min(m, 2**27 // (4 * m)))
        t0 = time.perf_counter()
        G = Wd.T @ Wd
        t_gram = time.perf_counter() - t0
        t1 = time.perf_counter()
        _bernoulli_dense_per_input(X, a[fire], Wd[fire], G, rows)
        per = time.perf_counter() - t1
        return {
            "seconds": t_gram / k + per,
            "extrapolated": True,
            "how": f"Γ = WᵀW once (shared by the {k} inputs) + 1 input timed",
            "flops": 2.0 * m * m * (d / k + fire.sum()),
        }
    sig = np.sign(np.asarray(net.W)).astype(np.float32)
    a = acts[0].astype(np.float32)
    rows = min(512, m)
    t0 = time.perf_counter()
    Y = (sig[:, :rows] * a[:, None]).T @ sig
    np.abs(Y).max()
    sec = (time.perf_counter() - t0) * m / rows
    return {
        "seconds": sec,
        "extrapolated": True,
        "how": f"{rows} of {m} rows of Ŷ timed, x {m / rows:g}",
    }


def case_import(variant: str) -> Result:
    import superposition  # noqa: F401
    import superposition.kernels  # noqa: F401

    return {"seconds": 0.0}


CASES: dict[str, dict[str, object]] = {
    "import": {
        "fn": case_import,
        "label": "import only (memory floor)",
        "size": "",
        "variants": ["ours"],
    },
    "wiring": {
        "fn": case_wiring,
        "label": "Bernoulli wiring, sample",
        "size": "m=1e6 d=1e4 p=0.01",
        "variants": ["ours", "dense", "loop"],
    },
    "forward": {
        "fn": case_forward,
        "label": "forward, sparse wiring",
        "size": "m=1e6 d=1e4 p=0.01 K=1e4",
        "variants": ["ours", "dense", "loop"],
    },
    "gather": {
        "fn": case_gather,
        "label": "forward, dense W gather",
        "size": "m=1e4 d=2e3 K=1e4",
        "variants": ["ours", "dense", "loop"],
    },
    "pair_counts": {
        "fn": case_pair_counts,
        "label": "pair counts |Γ| = WᵀW (upper)",
        "size": "m=1e4 d=2e3 p=0.05",
        "variants": ["ours", "dense", "loop"],
    },
    "sign_readout": {
        "fn": case_sign,
        "label": "U-AND exact, sign readout",
        "size": "m=3e3 d=1e3 s=3 K=100",
        "variants": ["ours", "dense", "loop"],
    },
    "uand_1e4": {
        "fn": lambda v: case_uand(v, 10_000, 2_000, 100),
        "label": "U-AND exact, Bernoulli",
        "size": "m=1e4 d=2e3 s=3 K=100",
        "variants": ["ours", "dense", "loop"],
    },
    "uand_1e5": {
        "fn": lambda v: case_uand(v, 100_000, 4_000, 100),
        "label": "U-AND exact, Bernoulli",
        "size": "m=1e5 d=4e3 s=3 K=100",
        "variants": ["ours", "dense", "loop"],
    },
    "deep_pair": {
        "fn": case_deep,
        "label": "deep layer pair, corrected",
        "size": "m=1e5 d=8192 K=100",
        "variants": ["ours"],
    },
    "superposed_bern": {
        "fn": lambda v: case_superposed(v, "bernoulli", 10_000, 11_585, kappa=1.41),
        "label": "U-AND superposed, Bernoulli",
        "size": "m=1e4 d=d0=11585 s=2",
        "variants": ["ours", "dense"],
    },
    "superposed_bern_3e4": {
        "fn": lambda v: case_superposed(v, "bernoulli", 30_000, 23_170, kappa=1.41, k=1),
        "label": "U-AND superposed, Bernoulli",
        "size": "m=3e4 d=d0=23170 s=2",
        "variants": ["ours", "loop"],
    },
    "superposed_bern_1e5": {
        "fn": lambda v: case_superposed(v, "bernoulli", 100_000, 46_341, kappa=1.41, k=1),
        "label": "U-AND superposed, Bernoulli",
        "size": "m=1e5 d=d0=46341 s=2",
        "variants": ["ours", "dense"],
    },
    "superposed_rad": {
        "fn": lambda v: case_superposed(v, "rademacher", 10_000, 7_512),
        "label": "U-AND superposed, Rademacher",
        "size": "m=1e4 d=d0=7512 s=2",
        "variants": ["ours", "dense"],
    },
    "embedding": {
        "fn": case_embedding,
        "label": "embedding readout Φᵀa",
        "size": "m=1e5 d0=256 K=200",
        "variants": ["ours", "dense"],
    },
}

COLUMN = {"ours": "ours", "dense": "(a) dense NumPy", "loop": "(b) loop / library"}


# ---------------------------------------------------------------- running


def run_variant(case: str, variant: str, timeout: float) -> Result:
    """Run one variant in a fresh interpreter; its peak RSS is its own."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--case", case, "--variant", variant]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"seconds": None, "error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"seconds": None, "error": f"exit {proc.returncode}: {tail}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child(case: str, variant: str) -> int:
    os.environ.setdefault("TQDM_DISABLE", "1")
    res = CASES[case]["fn"](variant)  # type: ignore[operator]
    res["peak_mib"] = _rss_mib()
    print(json.dumps(res))
    return 0


def _fmt(x: object, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "lib", "bench"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def table(results: dict[str, dict[str, Result]], peaks: dict[str, float]) -> str:
    head = (
        f"{'kernel':<31} {'size':<25} {'ours s':>8} {'(a) dense s':>12} {'x':>7} "
        f"{'(b) loop/lib s':>14} {'x':>7} {'GFLOP/s':>8} {'%peak':>6} "
        f"{'MiB ours':>8} {'MiB (a)':>8} {'MiB (b)':>8}"
    )
    lines = [head, "-" * len(head)]
    notes: list[str] = []
    for name, res in results.items():
        spec = CASES[name]
        ours = res.get("ours", {})
        t = ours.get("seconds")
        cells = []
        for v in ("dense", "loop"):
            r = res.get(v)
            if r is None:
                cells += ["", ""]
                continue
            tv = r.get("seconds")
            mark = "~" if r.get("extrapolated") else ""
            cells += [
                (mark + _fmt(tv)) if tv is not None else ("n/a" if "error" not in r else "fail"),
                _fmt(tv / t, ".3g") if (tv and t) else "-",
            ]
            if r.get("how") or r.get("error"):
                notes.append(f"{name} {COLUMN[v]}: {r.get('how') or r.get('error')}")
        gf = pk = None
        if ours.get("flops") and t:
            gf = ours["flops"] / t / 1e9
            pk = 100 * gf / peaks[f"{ours.get('dtype', 'float64')}_gflops"]
        if "error" in ours:
            notes.append(f"{name} ours: {ours['error']}")
        mem = [res.get(v, {}).get("peak_mib") for v in ("ours", "dense", "loop")]
        lines.append(
            f"{spec['label']:<31} {spec['size']:<25} {_fmt(t):>8} {cells[0]:>12} {cells[1]:>7} "
            f"{cells[2]:>14} {cells[3]:>7} {_fmt(gf, '.1f'):>8} {_fmt(pk, '.0f'):>6} "
            f"{_fmt(mem[0], '.0f'):>8} {_fmt(mem[1], '.0f'):>8} {_fmt(mem[2], '.0f'):>8}"
        )
    lines.append("")
    lines.append("~ = extrapolated from part of the work (how, below); x = baseline time / ours;")
    lines.append("GFLOP/s and %peak only for GEMM-shaped kernels, against the peak of their dtype.")
    lines += [f"  {n}" for n in notes]
    return "\n".join(lines)


def targets(results: dict[str, dict[str, Result]]) -> list[dict[str, object]]:
    """The performance targets, each with the measured value and whether it is met."""
    out: list[dict[str, object]] = []

    def add(name: str, value: float | None, goal: str, ok: bool | None) -> None:
        out.append({"target": name, "value": value, "goal": goal, "met": ok})

    u4 = results.get("uand_1e4", {})
    if u4:
        total = u4.get("ours", {}).get("info", {}).get("total_seconds")
        add(
            "U-AND m=1e4: build + exact errors (s)",
            total,
            "<= 15",
            total is not None and total <= 15,
        )
        t, td = u4.get("ours", {}).get("seconds"), u4.get("dense", {}).get("seconds")
        ratio = td / t if (t and td) else None
        add("U-AND m=1e4: dense time / ours", ratio, ">= 20", ratio is not None and ratio >= 20)
    u5 = results.get("uand_1e5", {}).get("ours")
    if u5:
        done = u5.get("seconds") is not None
        add("U-AND m=1e5: completes (s)", u5.get("seconds"), "completes", done)
        mib = u5.get("peak_mib")
        add(
            "U-AND m=1e5: peak memory (MiB)",
            mib,
            "<= 2048",
            done and mib is not None and mib <= 2048,
        )
    fw = results.get("forward", {}).get("ours")
    if fw:
        ips = fw.get("info", {}).get("inputs_per_second")
        add("forward m=1e6 d=1e4: inputs/s", ips, ">= 1e4", ips is not None and ips >= 1e4)
    dp = results.get("deep_pair", {}).get("ours")
    if dp:
        per = dp.get("info", {}).get("per_input_per_layer_s")
        add("deep pair m=1e5 d=8192: s per input per layer", per, "reported", per is not None)
    for name in ("pair_counts", "sign_readout", "embedding"):
        r = results.get(name, {}).get("ours")
        if r and r.get("pct_peak") is not None:
            add(f"{name}: % of matmul peak", r["pct_peak"], ">= 50", r["pct_peak"] >= 50)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", choices=sorted(CASES), help="run only these cases")
    ap.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per measurement")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        return child(args.case, args.variant)

    names = args.only or list(CASES)
    started = dt.datetime.now(dt.UTC)
    load0 = os.getloadavg()
    print(f"bench: {len(names)} cases, {os.cpu_count()} cores, load {load0[0]:.2f}", flush=True)
    peaks = machine_peaks()
    print(
        f"machine: float32 {peaks['float32_gflops']:.0f} GFLOP/s, "
        f"float64 {peaks['float64_gflops']:.0f} GFLOP/s, copy {peaks['copy_gbps']:.1f} GB/s",
        flush=True,
    )
    results: dict[str, dict[str, Result]] = {}
    for name in names:
        results[name] = {}
        for v in CASES[name]["variants"]:  # type: ignore[union-attr]
            t0 = time.perf_counter()
            r = run_variant(name, v, args.timeout)
            r["wall_seconds"] = time.perf_counter() - t0
            results[name][v] = r
            print(
                f"  {name:<13} {v:<6} {_fmt(r.get('seconds')):>9} s  {r.get('error', '')}",
                flush=True,
            )
    for res in results.values():  # baselines scaled from another case's measurement
        for r in res.values():
            src = r.pop("scale_from", None)
            if src and results.get(src["case"], {}).get("dense", {}).get("seconds"):
                r["seconds"] = results[src["case"]]["dense"]["seconds"] * src["factor"]
            elif src:
                r["how"] = str(r.get("how", "")) + " (source case not run)"
        ours = res.get("ours", {})
        if ours.get("flops") and ours.get("seconds"):
            gf = ours["flops"] / ours["seconds"] / 1e9
            ours["gflops"] = gf
            ours["pct_peak"] = 100 * gf / peaks[f"{ours.get('dtype', 'float64')}_gflops"]
    load1 = os.getloadavg()
    print()
    print(table(results, peaks))
    tg = targets(results)
    print()
    print("targets:")
    for t in tg:
        status = "met" if t["met"] else "MISSED"
        print(f"  {t['target']:<42} {_fmt(t['value']):>9}  (goal {t['goal']})  {status}")
    print(
        f"load average at start {load0[0]:.2f}, at end {load1[0]:.2f} (2 cores; >2 means sharing)"
    )

    OUT.mkdir(parents=True, exist_ok=True)
    commit = _git_commit()
    doc = {
        "timestamp": started.isoformat(timespec="seconds"),
        "commit": commit,
        "load_average": {"start": load0, "end": load1},
        "machine": peaks,
        "results": results,
        "targets": tg,
    }
    text = json.dumps(doc, indent=1, default=float)
    (OUT / "results.json").write_text(text)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (OUT / f"results-{stamp}-{commit}.json").write_text(text)
    print(f"results: {OUT / 'results.json'}")
    missed = [t for t in tg if not t["met"]]
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
