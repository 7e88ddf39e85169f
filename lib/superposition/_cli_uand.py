"""``superposition uand``: exact errors of every AND output of a random U-AND layer.

With ``--embed-dim D0`` the layer reads its inputs from superposition (``a0 = Φx`` in ``D0``
dimensions) and the outputs are also written into a ``d``-dimensional superposition and read
back there.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from .cli import add_renamed, nonneg_int, positive_int, require_memory
from .embedding import sample_sparse
from .memory import superposed_bytes, uand_bytes
from .superposed import (
    build_superposed_uand,
    evaluate_superposed,
    output_embedding_errors,
    superposed_p,
)
from .uand import WEIGHTS, build_uand, connection_probability, evaluate_uand

PROGRESS_OUTPUTS = 10**8
"""Show a progress bar (on a terminal) once inputs × outputs reach this many."""


def p_value(text: str) -> float | str:
    """argparse type for ``--p``: a number in (0, 1] or the name of a rule."""
    if text in ("paper", "balanced", "worst_case", "superposed"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected a number in (0, 1], 'balanced', 'worst_case', 'paper' or 'superposed', "
            f"got {text!r}"
        ) from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "uand",
        help="errors of all C(m, n) ANDs computed by one random ReLU layer",
        description="Build a random U-AND layer and evaluate every output exactly on K random "
        "inputs with exactly S active features each.",
    )
    p.add_argument("--features", type=positive_int, required=True, help="number of features m")
    add_renamed(p, "--neurons", "--width", type=positive_int, required=True, help="neurons d")
    p.add_argument("--sparsity", type=positive_int, required=True, help="active features s")
    p.add_argument("--arity", type=positive_int, default=2, help="inputs per AND n")
    p.add_argument(
        "--weights",
        choices=WEIGHTS,
        default="bernoulli",
        help="first-layer weights: Bernoulli(p) (Theorem 1) or sign-symmetric (Theorem 3)",
    )
    p.add_argument(
        "--p",
        type=p_value,
        default=None,
        help="Bernoulli connection probability: a number in (0, 1], or 'balanced' (default), "
        "'worst_case' or 'paper' (ln(m)^2/sqrt(d)); with --embed-dim also 'superposed' "
        "(the default there)",
    )
    p.add_argument(
        "--embed-dim",
        type=positive_int,
        default=None,
        help="read the inputs from superposition in D0 dimensions (default: basis-aligned)",
    )
    add_renamed(p, "--samples", "--inputs", type=positive_int, default=100, help="random inputs K")
    p.add_argument(
        "--seed",
        type=nonneg_int,
        default=0,
        help="seed of every random draw (same seed, same bits)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def estimate_bytes(args: argparse.Namespace) -> float:
    """Peak memory of this command (:mod:`superposition.memory`), before anything is built."""
    m, d, s, n = args.features, args.neurons, args.sparsity, args.arity
    p = 1.0
    if args.weights == "bernoulli":
        if args.embed_dim is not None and args.p in (None, "superposed") and n == 2 and m >= 2:
            p = superposed_p(m, d, s, args.embed_dim)
        else:
            rule = "balanced" if args.embed_dim is not None and args.p is None else args.p
            p = connection_probability(rule, m, d, s, n)
    if args.embed_dim is None:
        return uand_bytes(m, d, args.samples, weights=args.weights, p=p, arity=n)
    return superposed_bytes(m, d, args.embed_dim, args.samples, weights=args.weights, p=p, arity=n)


def run(args: argparse.Namespace) -> int:
    require_memory(
        estimate_bytes(args), f"uand with {args.features} features and {args.neurons} neurons"
    )
    net_seed, input_seed = np.random.SeedSequence(args.seed).spawn(2)
    extra: dict[str, object] = {}
    if args.embed_dim is None:
        net = build_uand(
            args.features,
            args.neurons,
            args.sparsity,
            weights=args.weights,
            arity=args.arity,
            p=args.p,
            seed=net_seed,
        )
        active = sample_sparse(args.features, args.sparsity, args.samples, seed=input_seed)
        large = args.samples * net.n_outputs >= PROGRESS_OUTPUTS
        res = evaluate_uand(net, active, progress=None if large else False)
    else:
        snet = build_superposed_uand(
            args.features,
            args.neurons,
            args.sparsity,
            args.embed_dim,
            weights=args.weights,
            arity=args.arity,
            p=args.p,
            seed=net_seed,
        )
        net = snet.net
        active = sample_sparse(args.features, args.sparsity, args.samples, seed=input_seed)
        large = args.samples * net.n_outputs >= PROGRESS_OUTPUTS
        res = evaluate_superposed(snet, active, progress=None if large and not args.json else False)
        extra["embed_dim"] = args.embed_dim
        extra["output_embedding"] = (
            output_embedding_errors(snet, active) if net.arity == 2 else None
        )
    out = {
        "n_features": args.features,
        "neurons": args.neurons,
        "sparsity": args.sparsity,
        "arity": args.arity,
        "weights": args.weights,
        "p": net.p,
        "n_samples": args.samples,
        **res.summary(),
        **extra,
    }
    if args.json:
        print(json.dumps(out))
        return 0
    keys = ["n_features", "neurons", "sparsity", "arity", "weights", "p", "n_samples", "n_outputs"]
    if "embed_dim" in extra:
        keys.insert(2, "embed_dim")
    for key in keys:
        print(f"{key:>16}  {_fmt(out[key])}")
    print(f"\n{'outputs':<22}{'count':>14}{'mean |err|':>12}{'max |err|':>12}")
    rows = [("all", res.pattern(slice(None)))]
    rows += [(f"{j} of {net.arity} active", res.pattern(j)) for j in range(net.arity, -1, -1)]
    for name, st in rows:
        print(f"{name:<22}{st['count']:>14}{_fmt(st['mean_abs']):>12}{_fmt(st['max_abs']):>12}")
    emb = extra.get("output_embedding")
    if isinstance(emb, dict):
        print(
            f"\nread back from a {emb['out_dim']}-dim output embedding: "
            f"mean |err| {_fmt(emb['mean_abs_error'])}, max |err| {_fmt(emb['max_abs_error'])} "
            f"(exact ANDs embedded: max |err| {_fmt(emb['ideal_max_abs_error'])})"
        )
    return 0


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)
