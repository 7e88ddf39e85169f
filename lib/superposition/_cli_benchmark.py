"""``superposition benchmark``: score a dictionary against an exported network's ground truth.

``benchmark layers NETWORK``
    The layers that carry a ground truth, with their true features.
``benchmark activations NETWORK --samples N --out ACTS.npy``
    Activations of a layer on the network's own input distribution, for an outside tool.
``benchmark score NETWORK DICTIONARY``
    Best cosine of every true feature with the dictionary's atoms, the fraction recovered, dead
    and duplicate atoms.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .cli import nonneg_int, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="score a dictionary (learned directions) against an exported network's ground truth",
        description="A ground-truth benchmark for dictionary learning on networks exported with "
        "'superposition export': which stored features (inputs) and computed features (ANDs, "
        "circuit values) a set of learned directions recovers.",
    )
    acts = p.add_subparsers(
        dest="action", metavar="ACTION", parser_class=type(p), help="what to do (see ACTION --help)"
    )
    acts.required = True

    ly = acts.add_parser(
        "layers",
        help="list the layers with a ground truth and their features",
        description="List the layers of an exported network whose features are known, with the "
        "number and the kind of their true features.",
    )
    ly.add_argument("network", help="NETWORK.safetensors (with its .json sidecar)")
    ly.add_argument("--json", action="store_true", help="print one JSON object")
    ly.set_defaults(run=_run_layers)

    ac = acts.add_parser(
        "activations",
        help="write a layer's activations on the network's own inputs (.npy) for an outside tool",
        description="Draw inputs from the network's own distribution (s-sparse, uniform) and "
        "write one layer's activations as a .npy file, to train an outside tool on.",
    )
    ac.add_argument("network", help="NETWORK.safetensors (with its .json sidecar)")
    _layer_argument(ac)
    ac.add_argument("--samples", type=positive_int, required=True, help="inputs drawn (K)")
    ac.add_argument(
        "--sparsity", type=positive_int, default=None, help="active inputs (default: the sidecar's)"
    )
    ac.add_argument(
        "--seed", type=nonneg_int, default=0, help="seed of the inputs (same seed, same bits)"
    )
    ac.add_argument("--out", required=True, help="ACTS.npy, shape (samples, dim)")
    ac.add_argument(
        "--inputs-out", default=None, help="also write the 0/1 inputs, (samples, n_features) int8"
    )
    ac.add_argument("--json", action="store_true", help="print one JSON object")
    ac.set_defaults(run=_run_activations)

    sc = acts.add_parser(
        "score",
        help="score a dictionary (.npy or .safetensors, atoms as rows)",
        description="Score a dictionary of learned directions against a layer's true features: "
        "the best cosine of each feature, the fraction recovered, dead and duplicate atoms.",
    )
    sc.add_argument("network", help="NETWORK.safetensors (with its .json sidecar)")
    sc.add_argument("dictionary", help="DICTIONARY.npy or .safetensors, shape (n_atoms, dim)")
    _layer_argument(sc)
    sc.add_argument("--tensor", default=None, help="tensor name in a safetensors dictionary")
    sc.add_argument(
        "--usage",
        default=None,
        help="USAGE.npy (n_atoms,): how often your tool used each atom; 0 marks it dead",
    )
    sc.add_argument("--threshold", type=float, default=0.9, help="cosine that counts (0.9)")
    sc.add_argument(
        "--duplicate-threshold", type=float, default=0.9, help="cosine of duplicate atoms (0.9)"
    )
    sc.add_argument("--signed", action="store_true", help="signed cosines (default: absolute)")
    sc.add_argument(
        "--per-feature", action="store_true", help="JSON: every feature's best cosine and atom"
    )
    sc.add_argument("--json", action="store_true", help="print one JSON object")
    sc.set_defaults(run=_run_score)


def _layer_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--layer",
        default=None,
        help="input, hidden (U-AND kinds; default hidden), residual.L or gate.L (circuits); "
        "'superposition benchmark layers NETWORK' lists them",
    )


def _load(path: str):  # noqa: ANN202 - LoadedNetwork, imported lazily
    from .export import load_network

    return load_network(path)


def _layer(net, layer: str | None) -> str:  # noqa: ANN001
    from .benchmark import ground_truth_layers

    if layer is not None:
        return layer
    allowed = ground_truth_layers(net)
    if "hidden" in allowed:
        return "hidden"
    raise ValueError(
        f"--layer is required for a {net.network_kind} network: one of {', '.join(allowed)}"
    )


def _npy_out(path: str, flag: str) -> Path:
    p = Path(path)
    if p.suffix != ".npy":
        raise ValueError(f"{flag} must end in .npy, got {path!r}")
    if not p.parent.is_dir():
        raise ValueError(f"{flag}: no folder {str(p.parent)!r}")
    return p


def _run_layers(args: argparse.Namespace) -> int:
    from .benchmark import ground_truth, ground_truth_layers

    net = _load(args.network)
    rows = []
    for name in ground_truth_layers(net):
        t = ground_truth(net, name)
        rows.append(
            {
                "layer": name,
                "feature_kind": t.feature_kind,
                "n_features": t.n_features,
                "missing": len(t.missing),
                "dim": t.dim,
            }
        )
    if args.json:
        print(json.dumps({"network_kind": net.network_kind, "layers": rows}))
    else:
        for r in rows:
            print(
                f"{r['layer']:>12}  {r['n_features']:>7} {r['feature_kind']} features "
                f"(+{r['missing']} not computed) in {r['dim']} dimensions"
            )
    return 0


def _run_activations(args: argparse.Namespace) -> int:
    from .benchmark import sample_layer

    out = _npy_out(args.out, "--out")
    inputs_out = None if args.inputs_out is None else _npy_out(args.inputs_out, "--inputs-out")
    net = _load(args.network)
    layer = _layer(net, args.layer)
    sample = sample_layer(net, layer, args.samples, sparsity=args.sparsity, seed=args.seed)
    np.save(out, sample.activations)
    if inputs_out is not None:
        np.save(inputs_out, sample.inputs)
    info = {
        "layer": layer,
        "out": str(out),
        "shape": list(sample.activations.shape),
        "dtype": sample.activations.dtype.name,
        "sparsity": sample.sparsity,
        "seed": sample.seed,
        "inputs_out": None if inputs_out is None else str(inputs_out),
    }
    if args.json:
        print(json.dumps(info))
    else:
        print(f"wrote {out}: {info['shape'][0]} x {info['shape'][1]} activations of layer {layer}")
    return 0


def _run_score(args: argparse.Namespace) -> int:
    from .benchmark import ground_truth, load_dictionary, score_dictionary

    net = _load(args.network)
    layer = _layer(net, args.layer)
    truth = ground_truth(net, layer)
    D = load_dictionary(args.dictionary, tensor=args.tensor)
    usage = None
    if args.usage is not None:
        p = Path(args.usage)
        if p.suffix != ".npy" or not p.is_file():
            raise ValueError(f"--usage must be an existing .npy file, got {args.usage!r}")
        try:
            usage = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ValueError(f"--usage: {p}: not a readable .npy array ({exc})") from None
        if not np.issubdtype(usage.dtype, np.number):
            raise ValueError(f"--usage: {p} holds {usage.dtype} values, not numbers")
    score = score_dictionary(
        D,
        truth,
        threshold=args.threshold,
        duplicate_threshold=args.duplicate_threshold,
        usage=usage,
        signed=args.signed,
    )
    out = score.summary(per_feature=args.per_feature)
    out["missing"] = len(truth.missing)
    if args.json:
        print(json.dumps(out))
        return 0
    print(
        f"layer {layer}: {score.n_features} {truth.feature_kind} features "
        f"(+{len(truth.missing)} not computed), {score.n_atoms} atoms "
        f"({score.dead} dead, {score.duplicates} duplicates)"
    )
    print(
        f"recovered at |cos| >= {score.threshold:g}: {score.recovered:.3f} "
        f"({score.recovered_count} of {score.n_features}); mean best cosine "
        f"{score.mean_best_cosine:.3f}"
    )
    return 0
