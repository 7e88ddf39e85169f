"""``superposition circuit``: emulate a random sparse boolean circuit in superposition."""

from __future__ import annotations

import argparse
import json

import numpy as np

from .circuits import (
    DEFAULT_GATES,
    NEURON_WIRINGS,
    compile_circuit,
    emulate,
    random_circuit,
)
from .cli import add_renamed, nonneg_int, positive_int, require_memory
from .embedding import EMBEDDING_KINDS, sample_sparse, to_dense
from .memory import circuit_bytes


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "circuit",
        help="per-layer readout error of a random sparse circuit emulated by MLP layers in superposition",
        description="Draw a random sparse boolean circuit of width m and depth L, compile every "
        "layer to one MLP layer acting on the residual stream in superposition (d dimensions), "
        "and report the readout error and bit accuracy after each layer on K random inputs.",
    )
    p.add_argument(
        "--features", type=positive_int, required=True, help="circuit width m (features per layer)"
    )
    add_renamed(
        p, "--embed-dim", "--width", type=positive_int, required=True, help="residual dimension d"
    )
    p.add_argument(
        "--neurons", type=positive_int, default=None, help="MLP neurons per layer (default: d)"
    )
    p.add_argument("--sparsity", type=positive_int, required=True, help="active input features s")
    p.add_argument("--depth", type=positive_int, required=True, help="circuit depth L")
    p.add_argument(
        "--gates",
        default=",".join(DEFAULT_GATES),
        help=f"comma-separated gate set (default {','.join(DEFAULT_GATES)}; 'copy' allowed)",
    )
    p.add_argument(
        "--wiring", choices=NEURON_WIRINGS, default="targeted", help="U-AND neuron wiring"
    )
    add_renamed(
        p,
        "--embedding-kind",
        "--kind",
        choices=EMBEDDING_KINDS,
        default="gaussian",
        help="columns of the random embeddings: unit Gaussian or random signs",
    )
    add_renamed(
        p, "--samples", "--inputs", type=positive_int, default=1000, help="random s-sparse inputs K"
    )
    p.add_argument(
        "--seed",
        type=nonneg_int,
        default=0,
        help="seed of every random draw (same seed, same bits)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    m = args.features
    if m < 2:
        raise ValueError(f"features must be >= 2, got {m}")
    if args.sparsity > m:
        raise ValueError(f"sparsity must be between 1 and features={m}, got {args.sparsity}")
    require_memory(
        circuit_bytes(m, args.embed_dim, args.depth, args.samples, neurons=args.neurons),
        f"circuit with {m} features, embed_dim {args.embed_dim} and depth {args.depth}",
    )
    gates = tuple(g.strip() for g in args.gates.split(",") if g.strip())
    circuit_ss, compile_ss, input_ss = np.random.SeedSequence(args.seed).spawn(3)
    circuit = random_circuit(m, args.depth, gates, seed=circuit_ss)
    compiled = compile_circuit(
        circuit,
        args.embed_dim,
        neurons=args.neurons,
        neuron_wiring=args.wiring,
        embedding_kind=args.embedding_kind,
        seed=compile_ss,
    )
    x = to_dense(sample_sparse(m, args.sparsity, args.samples, seed=input_ss), m).astype(bool)
    report = emulate(compiled, x).to_dict()
    out = {
        "n_features": m,
        "embed_dim": args.embed_dim,
        "neurons": compiled.neurons,
        "sparsity": args.sparsity,
        "depth": args.depth,
        "gates": list(gates),
        "wiring": args.wiring,
        "embedding_kind": args.embedding_kind,
        "n_samples": args.samples,
        "seed": args.seed,
        **report,
    }
    if args.json:
        print(json.dumps(out))
        return 0
    for k in (
        "n_features",
        "embed_dim",
        "neurons",
        "sparsity",
        "depth",
        "gates",
        "wiring",
        "embedding_kind",
        "n_samples",
        "seed",
    ):
        v = ",".join(out[k]) if k == "gates" else out[k]
        print(f"{k:>14}  {v}")
    print()
    print(
        f"{'layer':>5}  {'max_abs_error':>13}  {'mean_abs_error':>14}  {'bit_accuracy':>12}  {'input_accuracy':>14}"
    )
    for row in out["layers"]:
        print(
            f"{row['layer']:>5}  {row['max_abs_error']:>13.4g}  {row['mean_abs_error']:>14.4g}  "
            f"{row['bit_accuracy']:>12.6f}  {row['input_accuracy']:>14.4f}"
        )
    f = out["final"]
    print(
        f"\nfinal layer {f['layer']}: max_abs_error {f['max_abs_error']:.4g}, "
        f"mean_abs_error {f['mean_abs_error']:.4g}, bit_accuracy {f['bit_accuracy']:.6f}"
    )
    return 0
