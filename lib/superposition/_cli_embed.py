"""``superposition embed``: coherence and readout error of a random embedding."""

from __future__ import annotations

import argparse
import json

from .cli import add_renamed, nonneg_int, positive_int, require_memory
from .embedding import EMBEDDING_KINDS, Embedding, coherence, readout_errors, sample_sparse
from .memory import embed_bytes
from .theory import coherence_scale, readout_error_scale


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "embed",
        help="coherence and readout error of m features in d0 dimensions",
        description="Embed m features as random unit vectors in d0 dimensions (a = Phi x) and "
        "measure the embedding's coherence (largest |phi_i . phi_j|) and the worst readout "
        "error |Phi^T Phi x - x| over K random inputs with s active features, next to the "
        "theory's scales.",
    )
    p.add_argument("--features", type=positive_int, required=True, help="number of features m")
    p.add_argument("--embed-dim", type=positive_int, required=True, help="dimension d0")
    p.add_argument("--sparsity", type=positive_int, default=3, help="active features per input s")
    add_renamed(
        p,
        "--embedding-kind",
        "--kind",
        choices=EMBEDDING_KINDS,
        default="gaussian",
        help="columns of Phi: normalised Gaussian or random signs / sqrt(d0)",
    )
    add_renamed(p, "--samples", "--inputs", type=positive_int, default=1000, help="random inputs K")
    p.add_argument(
        "--seed",
        type=nonneg_int,
        default=0,
        help="seed of every random draw (same seed, same bits)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.sparsity > args.features:
        raise ValueError(
            f"sparsity must be between 1 and features={args.features}, got {args.sparsity}"
        )
    require_memory(
        embed_bytes(args.features, args.embed_dim, args.samples),
        f"embed with {args.features} features",
    )
    emb = Embedding(
        args.features, args.embed_dim, embedding_kind=args.embedding_kind, seed=args.seed
    )
    active = sample_sparse(args.features, args.sparsity, args.samples, seed=args.seed + 1)
    err = readout_errors(emb, active)
    out = {
        "n_features": args.features,
        "embed_dim": args.embed_dim,
        "sparsity": args.sparsity,
        "embedding_kind": args.embedding_kind,
        "n_samples": args.samples,
        "coherence": coherence(emb) if args.features <= 20_000 else None,
        "coherence_scale": coherence_scale(args.features, args.embed_dim),
        "max_readout_error": float(err.max()),
        "mean_readout_error": float(err.mean()),
        "readout_error_scale": readout_error_scale(args.sparsity, args.embed_dim),
    }
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>22}  {v:.4g}" if isinstance(v, float) else f"{k:>22}  {v}")
    return 0
