"""``superposition width``: the minimal width d* of a U-AND layer on inputs in superposition."""

from __future__ import annotations

import argparse
import json

from .cli import add_renamed, positive_int, require_memory
from .memory import width_search_bytes
from .superposed import (
    EMBED_TIED,
    INPUTS_KINDS,
    P_MODES,
    P_SCALES,
    PHI,
    minimal_width,
    superposed_p,
)
from .uand import WEIGHTS


def embed_dim_value(text: str) -> int | str:
    """argparse type for ``--embed-dim``: an integer >= 1 or ``tied``."""
    if text == EMBED_TIED:
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 1 or 'tied', got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or 'tied', got {value}")
    return value


def positive_real(text: str) -> float:
    """argparse type: a finite real number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def p_value(text: str) -> float | str:
    """argparse type for ``--p``: ``best``, ``superposed``, ``paper`` or a number in (0, 1]."""
    if text in P_MODES:
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(P_MODES)} or a number in (0, 1], got {text!r}"
        ) from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "width",
        help="minimal width d* of a U-AND layer reading its inputs from superposition",
        description="Smallest width d at which at least 90% of seeds give a U-AND layer whose "
        "worst error over all C(m, 2) ANDs of K random inputs is <= E, found by bracketing "
        "and bisection on a log grid.",
    )
    p.add_argument("--features", type=positive_int, required=True, help="number of features m")
    p.add_argument("--sparsity", type=positive_int, required=True, help="active features s")
    p.add_argument("--target-error", type=positive_real, required=True, help="target max error E")
    p.add_argument(
        "--weights",
        choices=WEIGHTS,
        default="bernoulli",
        help="first-layer weights: Bernoulli(p) or sign-symmetric",
    )
    p.add_argument(
        "--embed-dim",
        type=embed_dim_value,
        default=EMBED_TIED,
        help="residual dimension d0 of the input embedding, or 'tied' (d0 = d, the default)",
    )
    p.add_argument(
        "--seeds", type=positive_int, default=5, help="networks per width K (seeds 0..K-1)"
    )
    add_renamed(
        p, "--samples", "--inputs", type=positive_int, default=16, help="random inputs per network"
    )
    p.add_argument("--low", type=positive_int, default=16, help="smallest width tried")
    p.add_argument("--high", type=positive_int, default=2**15, help="largest width tried")
    p.add_argument(
        "--resolution", type=positive_real, default=0.05, help="relative width of the final bracket"
    )
    p.add_argument(
        "--p",
        type=p_value,
        default=None,
        help="Bernoulli connection probability: 'best' (the multiple of the rule whose per-seed "
        "thresholds have the smallest geometric mean, as the book chooses, then the search at it), "
        "'superposed' (the rule, the default), 'paper' (ln(m)^2/sqrt(d)) or a number",
    )
    p.add_argument(
        "--inputs-kind",
        choices=INPUTS_KINDS,
        default="uniform",
        help="inputs with exactly s active features, or with s, s-1, ..., 1 in turn",
    )
    p.add_argument(
        "--phi",
        choices=PHI,
        default="seeded",
        help="read the inputs through the seeded embedding, or draw the readouts from their "
        "exact law without materialising it (Gaussian embedding; for large m)",
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON object (with the search trace)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    d0 = args.low if args.embed_dim == EMBED_TIED else args.embed_dim
    prob = None
    if args.weights == "bernoulli":  # the densest wiring the first trial may draw
        prob = args.p if isinstance(args.p, float) else 1.0
        if args.p in (None, "superposed", "best"):
            most = max(P_SCALES) if args.p == "best" else 1.0
            prob = min(1.0, most * superposed_p(args.features, args.low, args.sparsity, d0))
    require_memory(
        width_search_bytes(args.features, args.low, d0, args.samples, p=prob),
        f"width with {args.features} features (first trial at width {args.low})",
    )
    res = minimal_width(
        args.features,
        args.sparsity,
        args.target_error,
        weights=args.weights,
        embed_dim=args.embed_dim,
        seeds=range(args.seeds),
        n_samples=args.samples,
        low=args.low,
        high=args.high,
        resolution=args.resolution,
        p=args.p,
        inputs_kind=args.inputs_kind,
        phi=args.phi,
    )
    found = res.neurons <= args.high
    out = {
        "n_features": args.features,
        "sparsity": args.sparsity,
        "target_error": args.target_error,
        "weights": args.weights,
        "embed_dim": args.embed_dim,
        "seeds": args.seeds,
        "n_samples": args.samples,
        "neurons": res.neurons if found else None,
        "bracket": list(res.bracket),
        "p": args.p,
        "p_scale": res.p_scale,
        "inputs_kind": args.inputs_kind,
        "phi": args.phi,
        "networks_evaluated": len(res.trials),
    }
    if args.json:
        print(json.dumps({**out, "trials": res.trials}))
        return 0
    lo, hi = res.bracket
    if found:
        below = f"{lo} fails" if lo is not None else f"{args.low} is the lowest width tried"
        print(f"d* = {res.neurons}  (bracket: {below}, {hi} passes)")
    else:
        print(f"d* > {args.high}: no width up to --high passed")
    print(
        f"m = {args.features}, s = {args.sparsity}, target max error {args.target_error}, "
        f"weights {args.weights}, d0 = {args.embed_dim}; {len(res.trials)} networks evaluated"
    )
    if args.p == "best":
        print(f"best p: {res.p_scale} x the rule superposed_p")
    return 0
