"""``superposition uand``: exact errors of every AND output of a random U-AND layer."""

from __future__ import annotations

import argparse
import json

import numpy as np

from .cli import nonneg_int, positive_int
from .embedding import sample_sparse
from .uand import WEIGHTS, build_uand, evaluate_uand

PROGRESS_OUTPUTS = 10**8
"""Show a progress bar (on a terminal) once inputs × outputs reach this many."""


def p_value(text: str) -> float | str:
    """argparse type for ``--p``: a number in (0, 1] or the name of a rule."""
    if text in ("paper", "balanced", "worst_case"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number in (0, 1], 'balanced', 'worst_case' or 'paper', got {text!r}"
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
    p.add_argument("--width", type=positive_int, required=True, help="number of neurons d")
    p.add_argument("--sparsity", type=positive_int, required=True, help="active features s")
    p.add_argument("--arity", type=positive_int, default=2, help="inputs per AND n (default 2)")
    p.add_argument("--weights", choices=WEIGHTS, default="bernoulli")
    p.add_argument(
        "--p",
        type=p_value,
        default=None,
        help="Bernoulli connection probability: a number in (0, 1], or 'balanced' (default), "
        "'worst_case' or 'paper' (ln(m)^2/sqrt(d))",
    )
    p.add_argument("--inputs", type=positive_int, default=100, help="random inputs K")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    net_seed, input_seed = np.random.SeedSequence(args.seed).spawn(2)
    net = build_uand(
        args.features,
        args.width,
        args.sparsity,
        weights=args.weights,
        arity=args.arity,
        p=args.p,
        seed=net_seed,
    )
    active = sample_sparse(args.features, args.sparsity, args.inputs, seed=input_seed)
    large = args.inputs * net.n_outputs >= PROGRESS_OUTPUTS
    res = evaluate_uand(net, active, progress=None if large else False)
    out = {
        "features": args.features,
        "width": args.width,
        "sparsity": args.sparsity,
        "arity": args.arity,
        "weights": args.weights,
        "p": net.p,
        "inputs": args.inputs,
        **res.summary(),
    }
    if args.json:
        print(json.dumps(out))
        return 0
    for key in ("features", "width", "sparsity", "arity", "weights", "p", "inputs", "n_outputs"):
        print(f"{key:>16}  {_fmt(out[key])}")
    print(f"\n{'outputs':<22}{'count':>14}{'mean |err|':>12}{'max |err|':>12}")
    rows = [("all", res.pattern(slice(None)))]
    rows += [(f"{j} of {net.arity} active", res.pattern(j)) for j in range(net.arity, -1, -1)]
    for name, st in rows:
        print(f"{name:<22}{st['count']:>14}{_fmt(st['mean_abs']):>12}{_fmt(st['max_abs']):>12}")
    return 0


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)
