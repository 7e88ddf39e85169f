"""``superposition capacity``: the largest number of circuit features a correction design keeps exact."""

from __future__ import annotations

import argparse
import json

from .cli import nonneg_int, positive_int, require_memory
from .deep import DESIGNS, capacity_search
from .grouped import WRITES
from .memory import available_bytes, deep_bytes


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "capacity",
        help="largest number of features a correction design keeps exact over depth (copy "
        "circuit test bed)",
        description="Search the largest number of circuit features m whose corrected emulation keeps every "
        "bit of K random s-sparse inputs right after every one of L layers, for one correction "
        "design at residual dimension d. The circuit copies its values under a fresh random "
        "pairing every layer (read linearly, written back through the embedding), so the gate "
        "layers are not the bottleneck; the search doubles m, then bisects geometrically.",
    )
    p.add_argument("--design", choices=DESIGNS, required=True, help="correction design")
    p.add_argument("--embed-dim", type=positive_int, required=True, help="residual dimension d")
    p.add_argument("--depth", type=positive_int, default=50, help="layers L per trial")
    p.add_argument("--samples", type=positive_int, default=100, help="random inputs K per trial")
    p.add_argument("--sparsity", type=positive_int, default=3, help="active features s")
    p.add_argument("--seeds", type=nonneg_int, nargs="+", default=[0], help="one search per seed")
    p.add_argument(
        "--budget",
        type=positive_int,
        default=None,
        help="ReLUs allowed per correction layer (e.g. 2d); default: none",
    )
    p.add_argument(
        "--blocks",
        type=positive_int,
        default=None,
        help="units per feature c (grouped default 7, code default 16)",
    )
    p.add_argument(
        "--write", choices=WRITES, default="units", help="grouped design: where its units write"
    )
    p.add_argument("--lo", type=float, default=None, help="lower clip threshold")
    p.add_argument("--hi", type=float, default=None, help="upper clip threshold")
    p.add_argument(
        "--low", type=positive_int, default=None, help="smallest m tried (default d // 8)"
    )
    p.add_argument(
        "--high",
        type=positive_int,
        default=None,
        help="largest m tried (default 64 d, or the largest whose arrays fit in memory)",
    )
    p.add_argument(
        "--resolution", type=float, default=0.05, help="relative resolution of the search"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def _bytes(m: int, args: argparse.Namespace) -> float:
    return deep_bytes(m, args.embed_dim, args.depth, args.samples, gate_neurons=1)


def run(args: argparse.Namespace) -> int:
    d = args.embed_dim
    low = max(args.sparsity + 1, d // 8) if args.low is None else args.low
    require_memory(_bytes(low, args), f"capacity with {low} features and embed_dim {d}")
    high = 64 * d if args.high is None else args.high
    if high < low:
        raise ValueError(f"high must be >= low = {low}, got {high}")
    avail = available_bytes()
    if args.high is not None:
        require_memory(_bytes(high, args), f"capacity with {high} features and embed_dim {d}")
    elif avail is not None:
        while high > low and _bytes(high, args) > avail:  # stay where the arrays fit
            high = max(low, high * 3 // 4)
    rows = []
    for seed in args.seeds:
        res = capacity_search(
            args.design,
            d,
            sparsity=args.sparsity,
            depth=args.depth,
            n_samples=args.samples,
            seed=seed,
            budget=args.budget,
            blocks=args.blocks,
            write=args.write,
            lo=args.lo,
            hi=args.hi,
            low=low,
            high=high,
            resolution=args.resolution,
        )
        rows.append({"seed": seed, "m_max": res.m_max, "trials": [[m, ok] for m, ok in res.trials]})
    out = {
        "design": args.design,
        "embed_dim": d,
        "depth": args.depth,
        "n_samples": args.samples,
        "sparsity": args.sparsity,
        "budget": args.budget,
        "write": args.write if args.design == "grouped" else None,
        "low": low,
        "high": high,
        "m_max": [r["m_max"] for r in rows],
        "seeds": rows,
    }
    if args.json:
        print(json.dumps(out))
        return 0
    print(
        f"{args.design} at embed_dim {d}, depth {args.depth}, {args.samples} inputs, s = {args.sparsity}"
    )
    for r in rows:
        tried = ", ".join(f"{m}{'+' if ok else '-'}" for m, ok in r["trials"])
        print(f"seed {r['seed']}: m_max = {r['m_max']}   (trials: {tried})")
    return 0
