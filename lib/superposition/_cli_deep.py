"""``superposition deep``: a deep random circuit emulated with (or without) correction layers."""

from __future__ import annotations

import argparse
import json
import math

from .circuits import DEFAULT_GATES, NEURON_WIRINGS
from .cli import add_renamed, nonneg_int, positive_int, require_memory
from .collisions import INPUTS_KINDS, sample_inputs
from .deep import DESIGNS, deep_network, run_deep
from .embedding import to_dense
from .grouped import WRITES
from .memory import deep_bytes


def add_design_arguments(p: argparse.ArgumentParser, designs: tuple[str, ...] = DESIGNS) -> None:
    """``--design``, ``--blocks`` and ``--field``: the correction layers' design and its code."""
    grouped = (
        "grouped units (2 n_u neurons reading groups of features on the random embedding), "
        if "grouped" in designs
        else ""
    )
    p.add_argument(
        "--design",
        choices=designs,
        default="denoiser",
        help="correction design: per-feature denoiser (2m neurons, random embeddings), "
        f"{grouped}or Reed-Solomon code (2cq neurons, its own embedding)",
    )
    p.add_argument(
        "--blocks",
        type=positive_int,
        default=None,
        help="units per feature c: code length of the code design (default 16), classes of the "
        "grouped design (default 7)",
    )
    p.add_argument(
        "--field",
        type=positive_int,
        default=None,
        help="prime q of the code design (default: smallest prime >= c with q^2 >= m)",
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deep",
        help="per-layer readout error and bit accuracy of a deep random circuit, gate layers "
        "alternating with error-correction layers",
        description="Draw a random sparse circuit of width m and depth L that stays s-sparse, "
        "emulate it with gate layers of U-AND neurons alternating with error-correction layers "
        "(depth 2L), and report the readout error and bit accuracy layer by layer on K random "
        "inputs; --no-correction runs the same circuit, weights and inputs without correction.",
    )
    p.add_argument(
        "--features", type=positive_int, required=True, help="circuit width m (features per layer)"
    )
    add_renamed(
        p, "--embed-dim", "--width", type=positive_int, required=True, help="residual dimension d"
    )
    add_renamed(
        p,
        "--gate-neurons",
        "--neurons",
        type=positive_int,
        default=None,
        help="U-AND neurons per gate layer (default: d)",
    )
    p.add_argument(
        "--gate-wiring",
        choices=NEURON_WIRINGS,
        default="targeted",
        help="U-AND wiring of the gate layers: only the products needed (targeted) or the "
        "paper's universal Bernoulli wiring",
    )
    p.add_argument(
        "--pairs-per-neuron",
        type=positive_int,
        default=None,
        help="targeted wiring: products q per gate neuron (default: the fewest that give every "
        "product a neuron)",
    )
    p.add_argument(
        "--neurons-per-product",
        type=positive_int,
        default=None,
        help="targeted wiring: gate neurons r per product (q = ceil(rP/n))",
    )
    p.add_argument(
        "--p", type=float, default=None, help="Bernoulli wiring's connection probability"
    )
    p.add_argument(
        "--and-bias",
        type=float,
        default=1.0,
        help="bias theta of the U-AND neurons, relu(x_u + x_v - theta) / (2 - theta)",
    )
    p.add_argument(
        "--gates",
        default=",".join(DEFAULT_GATES),
        help="gate set of the random circuit, comma separated (e.g. and,or: every block "
        "conserves its ones; copy: permuted copies)",
    )
    p.add_argument(
        "--sticky",
        type=float,
        default=0.0,
        help="probability that a block's two outputs are paired again in the next layer",
    )
    p.add_argument(
        "--inputs-kind",
        choices=INPUTS_KINDS,
        default="uniform",
        help="uniformly random s-sparse inputs, or colliding ones (each further one aimed at "
        "a meeting with an earlier one at a product gate)",
    )
    p.add_argument("--sparsity", type=positive_int, required=True, help="active input features s")
    p.add_argument("--depth", type=positive_int, required=True, help="circuit depth L")
    p.add_argument(
        "--no-correction",
        action="store_true",
        help="run the same circuit, weights and inputs without the correction layers",
    )
    add_design_arguments(p)
    _add_grouped_arguments(p)
    add_renamed(
        p, "--samples", "--inputs", type=positive_int, default=200, help="random s-sparse inputs K"
    )
    p.add_argument(
        "--every",
        type=positive_int,
        default=None,
        help="print every k-th layer (default: all layers up to L = 100, else about 100 rows)",
    )
    p.add_argument(
        "--seed",
        type=nonneg_int,
        default=0,
        help="seed of the circuit and the weights; the inputs use seed + 1",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def _num(v: float) -> float | None:
    return None if not math.isfinite(v) else float(v)


def run(args: argparse.Namespace) -> int:
    m = args.features
    if m < 2:
        raise ValueError(f"features must be >= 2, got {m}")
    if args.sparsity > m:
        raise ValueError(f"sparsity must be between 1 and features={m}, got {args.sparsity}")
    require_memory(
        deep_bytes(
            m,
            args.embed_dim,
            args.depth,
            args.samples,
            gate_neurons=args.gate_neurons,
            neurons_per_product=args.neurons_per_product,
        ),
        f"deep with {m} features, embed_dim {args.embed_dim} and depth {args.depth}",
    )
    gates = tuple(g.strip() for g in args.gates.split(",") if g.strip())
    every = args.every if args.every is not None else max(1, args.depth // 100)
    net = deep_network(
        m,
        args.embed_dim,
        args.sparsity,
        args.depth,
        gate_neurons=args.gate_neurons,
        design=args.design,
        gates=gates,
        sticky=args.sticky,
        blocks=args.blocks,
        field=args.field,
        groups_per_class=args.groups_per_class,
        write=args.write,
        and_bias=args.and_bias,
        gate_wiring=args.gate_wiring,
        pairs_per_neuron=args.pairs_per_neuron,
        neurons_per_product=args.neurons_per_product,
        p=args.p,
        lo=args.lo,
        hi=args.hi,
        seed=args.seed,
    )
    # inputs from seed + 1, as in the book: the same command prints the chapter's runs
    active = sample_inputs(
        net.circuit, args.sparsity, args.samples, inputs_kind=args.inputs_kind, seed=args.seed + 1
    )
    x = to_dense(active, m).astype(bool)
    corrected = not args.no_correction
    res = run_deep(
        net,
        x,
        corrected=corrected,
        uncorrected=not corrected,
        record_every=every,
        progress=None,
    )
    trace = res.corrected if corrected else res.uncorrected
    assert trace is not None
    rows = [
        {
            "layer": int(trace.layers[i]),
            "max_error": _num(trace.max_error[i]),
            "gate_error": _num(trace.gate_error[i]),
            "mean_error": _num(trace.mean_error[i]),
            "bit_accuracy": _num(trace.bit_accuracy[i]),
            "input_accuracy": _num(trace.input_accuracy[i]),
        }
        for i in range(trace.layers.size)
    ]
    counts = res.counts()
    ones = counts["ones_per_layer"]
    fires = counts["and_fires"]["per_layer"]
    for row in rows:
        ell = row["layer"]
        if ell < len(fires):
            row["and_fires"] = fires[ell]
            row["ones_min"], row["ones_max"] = ones["min"][ell], ones["max"][ell]
    out = {
        "n_features": m,
        "embed_dim": args.embed_dim,
        "gate_neurons": net.gate_neurons,
        "gates_per_layer": net.gates_per_layer,
        "gate_wiring": args.gate_wiring,
        "pairs_per_neuron": args.pairs_per_neuron,
        "neurons_per_product": args.neurons_per_product,
        "and_bias": args.and_bias,
        "gates": list(gates),
        "sticky": args.sticky,
        "inputs_kind": args.inputs_kind,
        "correction": corrected,
        "design": args.design,
        "correction_neurons": net.correction_neurons,
        "write": args.write if args.design == "grouped" else None,
        "blocks": None
        if args.design == "denoiser"
        else (net.code.blocks if net.code is not None else int(net.groups.shape[1])),
        "and_fires": counts["and_fires"],
        "ones_per_layer": ones,
        "code": None
        if net.code is None
        else {"field": net.code.field, "blocks": net.code.blocks, "degree": net.code.degree},
        "sparsity": args.sparsity,
        "depth": args.depth,
        "n_samples": args.samples,
        "seed": args.seed,
        "every": every,
        "seconds": res.seconds,
        "depth_survived": trace.depth_survived,
        "diverged_at": trace.diverged_at,
        "final_bit_accuracy": rows[-1]["bit_accuracy"],
        "final": rows[-1],
        "layers": rows,
    }
    if args.json:
        print(json.dumps(out))
        return 0
    for k in (
        "n_features",
        "embed_dim",
        "gate_neurons",
        "gates_per_layer",
        "correction",
        "design",
        "correction_neurons",
        "inputs_kind",
    ):
        print(f"{k:>18}  {out[k]}")
    if net.code is not None:
        print(f"{'code (q, c, r)':>18}  ({net.code.field}, {net.code.blocks}, {net.code.degree})")
    for k in ("sparsity", "depth", "n_samples", "seed", "every"):
        print(f"{k:>18}  {out[k]}")
    f = out["and_fires"]
    print(
        f"{'and_fires':>18}  {f['total']} (per input: mean {f['per_input_mean']:.3g}, "
        f"min {f['per_input_min']})"
    )
    print(f"{'ones_per_layer':>18}  {min(ones['min'])} to {max(ones['max'])}")
    print()
    print(
        f"{'layer':>6}  {'max_error':>10}  {'gate_error':>10}  {'bit_accuracy':>12}  "
        f"{'input_accuracy':>14}"
    )

    def fmt(v: float | None, spec: str) -> str:
        return "nan" if v is None else format(v, spec)

    for row in rows:
        print(
            f"{row['layer']:>6}  {fmt(row['max_error'], '10.4g'):>10}  "
            f"{fmt(row['gate_error'], '10.4g'):>10}  {fmt(row['bit_accuracy'], '12.6f'):>12}  "
            f"{fmt(row['input_accuracy'], '14.4f'):>14}"
        )
    print()
    if trace.diverged_at is not None:
        print(
            f"diverged at layer {trace.diverged_at}: readouts beyond 1e6, every bit is noise "
            "from there on (not computed further)"
        )
    final = out["final_bit_accuracy"]
    accuracy = "none (diverged)" if final is None else format(final, ".6f")
    survived = trace.depth_survived
    print(
        f"final layer {args.depth}: bit accuracy {accuracy}; "
        + (
            f"every bit of every input right at every layer ({res.seconds:.1f} s)"
            if survived == args.depth
            else f"first wrong bit at layer {survived + 1} ({res.seconds:.1f} s)"
            if trace.input_accuracy[0] == 1.0
            else f"wrong bits already in the encoded input, layer 0 ({res.seconds:.1f} s)"
        )
    )
    return 0


def _add_grouped_arguments(p: argparse.ArgumentParser) -> None:
    """``--write``, ``--groups-per-class``, ``--lo`` and ``--hi``: the grouped design's units."""
    p.add_argument(
        "--write",
        choices=WRITES,
        default="units",
        help="grouped design: its units write into a unit basis or back through the embedding",
    )
    p.add_argument(
        "--groups-per-class",
        type=positive_int,
        default=None,
        help="grouped design: groups g of each class (default: d // c, so n_u <= d units)",
    )
    p.add_argument(
        "--lo", type=float, default=None, help="lower clip threshold of the correction units"
    )
    p.add_argument(
        "--hi", type=float, default=None, help="upper clip threshold of the correction units"
    )
