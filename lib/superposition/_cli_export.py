"""``superposition export KIND … --out FILE``: a ground-truth network as safetensors + JSON sidecar."""

from __future__ import annotations

import argparse
import json

import numpy as np

from ._cli_deep import add_design_arguments
from ._cli_width import embed_dim_value
from .cli import add_renamed, check_output_path, nonneg_int, positive_int, require_memory
from .deep import EMBEDDING_SCHEMES
from .export import export_network, sidecar_path
from .memory import circuit_bytes, deep_bytes, superposed_bytes, trained_bytes, uand_bytes
from .superposed import EMBED_TIED, superposed_p
from .uand import connection_probability

READOUTS = ("auto", "explicit", "rule")
READOUT_HELP = (
    "how the readout is stored: 'explicit' (a tensor), 'rule' (the construction's rule, from "
    "which a loader rebuilds it) or 'auto' (a tensor while it is small, else the rule)"
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a network as FILE.safetensors plus FILE.json (its ground truth)",
        description="Build a network and write its weights (safetensors, no pickle) and a JSON "
        "sidecar with the ground truth: sizes, seed, embedding, readout of every output, circuit.",
    )
    kinds = p.add_subparsers(
        dest="kind",
        metavar="KIND",
        parser_class=type(p),
        help="`superposition export KIND --help` describes each",
    )
    kinds.required = True

    u = kinds.add_parser(
        "uand",
        help="a random U-AND layer (Bernoulli, Rademacher, Gaussian)",
        description="Export a random U-AND layer computing all C(m, n) ANDs of basis-aligned "
        "inputs: W, b and the readout of every output.",
    )
    _common(u, "--neurons", sparsity=True)
    u.add_argument(
        "--weights",
        choices=("bernoulli", "rademacher", "gaussian"),
        default="bernoulli",
        help="first-layer weights: Bernoulli(p) or sign-symmetric",
    )
    u.add_argument("--arity", type=positive_int, default=2, help="inputs per AND n")
    u.add_argument("--readout", choices=READOUTS, default="auto", help=READOUT_HELP)
    u.set_defaults(run=_run_uand)

    t = kinds.add_parser(
        "trained",
        help="a U-AND network trained with Adam (W, b, R jointly)",
        description="Train a U-AND network with Adam on random s-sparse inputs (W, b and the "
        "readout R jointly, deterministic) and export it.",
    )
    _common(t, "--neurons", sparsity=True)
    t.add_argument("--steps", type=positive_int, default=2000, help="Adam steps")
    t.add_argument("--batch", type=positive_int, default=64, help="random inputs per step")
    t.set_defaults(run=_run_trained)

    sp_ = kinds.add_parser(
        "superposed",
        help="a random U-AND layer reading its inputs from superposition (a0 = Phi x)",
        description="Export a random U-AND layer whose inputs are embedded as a0 = Phi x: W, "
        "the embedding Phi, the readout, and optionally an output embedding Psi.",
    )
    _common(sp_, "--neurons", sparsity=True)
    sp_.add_argument(
        "--embed-dim",
        type=embed_dim_value,
        required=True,
        help="dimension d0 of the input embedding Phi, or 'tied' (d0 = neurons)",
    )
    sp_.add_argument(
        "--weights",
        choices=("bernoulli", "rademacher", "gaussian"),
        default="bernoulli",
        help="first-layer weights: Bernoulli(p) or sign-symmetric",
    )
    sp_.add_argument("--arity", type=positive_int, default=2, help="inputs per AND n")
    sp_.add_argument(
        "--embedding-kind",
        choices=("gaussian", "sign"),
        default="gaussian",
        help="columns of Phi: normalised Gaussian or random signs",
    )
    sp_.add_argument("--readout", choices=READOUTS, default="auto", help=READOUT_HELP)
    sp_.add_argument(
        "--out-dim",
        type=positive_int,
        default=None,
        help="also write the outputs into superposition: dimension of Psi (default: none)",
    )
    sp_.add_argument("--out-seed", type=nonneg_int, default=1, help="seed of Psi")
    sp_.set_defaults(run=_run_superposed)

    c = kinds.add_parser(
        "circuit",
        help="a random sparse circuit compiled to MLP layers",
        description="Draw a random sparse boolean circuit and export its compilation to MLP "
        "layers on a residual stream in superposition, with the circuit as ground truth.",
    )
    _common(c, "--embed-dim", sparsity=False)
    c.add_argument("--depth", type=positive_int, required=True, help="circuit layers L")
    c.add_argument("--neurons", type=positive_int, default=None, help="MLP neurons per layer")
    c.set_defaults(run=_run_circuit)

    dp = kinds.add_parser(
        "deep",
        help="a deep random circuit: gate layers alternating with error-correction layers",
        description="Export a deep random circuit emulated by gate layers alternating with "
        "error-correction layers: gate factors, embeddings or code units, and the circuit.",
    )
    _common(dp, "--embed-dim", sparsity=True)
    dp.add_argument("--depth", type=positive_int, required=True, help="circuit depth L")
    add_renamed(
        dp,
        "--gate-neurons",
        "--neurons",
        type=positive_int,
        default=None,
        help="U-AND neurons per gate layer (default: d)",
    )
    add_design_arguments(dp, designs=("denoiser", "code"))
    add_renamed(
        dp,
        "--embedding-scheme",
        "--embeddings",
        choices=EMBEDDING_SCHEMES,
        default="fixed",
        help="denoiser design: one random embedding for every layer, or a fresh one per layer",
    )
    dp.set_defaults(run=_run_deep)


def _common(p: argparse.ArgumentParser, size: str, *, sparsity: bool) -> None:
    """The flags every kind has; ``size`` is ``--neurons`` (U-AND kinds: neurons d) or
    ``--embed-dim`` (circuits: residual dimension d), each also accepted as ``--width``."""
    p.add_argument("--features", type=positive_int, required=True, help="number of features m")
    help_ = "neurons d" if size == "--neurons" else "residual dimension d"
    add_renamed(p, size, "--width", type=positive_int, required=True, help=help_)
    if sparsity:
        p.add_argument("--sparsity", type=positive_int, required=True, help="active features s")
    p.add_argument(
        "--seed",
        type=nonneg_int,
        default=0,
        help="seed of every random draw (same seed, same bits)",
    )
    p.add_argument("--out", required=True, help="output FILE.safetensors (sidecar FILE.json)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _prepare(args: argparse.Namespace, nbytes: float) -> None:
    """Fail before any work: a bad or unwritable ``--out``, or a network too large for memory.

    The estimate is the construction's (:mod:`superposition.memory`) twice over: the arrays
    handed to safetensors are written from a second copy.
    """
    weights = sidecar_path(args.out).with_suffix(".safetensors")
    check_output_path(str(weights))
    check_output_path(str(sidecar_path(weights)))
    require_memory(2 * nbytes, f"export {args.kind} with {args.features} features")


def _uand_p(args: argparse.Namespace) -> float:
    if args.weights != "bernoulli":
        return 1.0
    return connection_probability(None, args.features, args.neurons, args.sparsity, args.arity)


def _run_uand(args: argparse.Namespace) -> int:
    m, d = args.features, args.neurons
    p = _uand_p(args)
    _prepare(args, uand_bytes(m, d, 1, weights=args.weights, p=p, arity=args.arity))
    from .uand import build_uand

    net = build_uand(
        args.features,
        args.neurons,
        args.sparsity,
        weights=args.weights,
        arity=args.arity,
        seed=args.seed,
    )
    return _write(args, net, readout=args.readout)


def _run_trained(args: argparse.Namespace) -> int:
    _prepare(args, trained_bytes(args.features, args.neurons, args.batch))
    from .training import train_uand

    net = train_uand(
        args.features,
        args.neurons,
        args.sparsity,
        steps=args.steps,
        batch=args.batch,
        seed=args.seed,
        progress=None if not args.json else False,
    )
    return _write(args, net, readout="explicit")


def _run_superposed(args: argparse.Namespace) -> int:
    d0 = args.neurons if args.embed_dim == EMBED_TIED else args.embed_dim
    m, d, s, n = args.features, args.neurons, args.sparsity, args.arity
    p = 1.0
    if args.weights == "bernoulli":
        p = superposed_p(m, d, s, d0) if n == 2 and m >= 2 else _uand_p(args)
    _prepare(args, superposed_bytes(m, d, d0, 1, weights=args.weights, p=p, arity=n))
    from .export import WithOutputEmbedding
    from .superposed import build_superposed_uand

    d0 = args.neurons if args.embed_dim == EMBED_TIED else args.embed_dim
    net = build_superposed_uand(
        args.features,
        args.neurons,
        args.sparsity,
        d0,
        weights=args.weights,
        arity=args.arity,
        embedding_kind=args.embedding_kind,
        seed=args.seed,
    )
    if args.out_dim is not None:
        net = WithOutputEmbedding(net, out_dim=args.out_dim, seed=args.out_seed)
    return _write(args, net, readout=args.readout)


def _run_circuit(args: argparse.Namespace) -> int:
    nbytes = circuit_bytes(args.features, args.embed_dim, args.depth, 1, neurons=args.neurons)
    _prepare(args, nbytes)
    from .circuits import compile_circuit, random_circuit

    circ_seed, net_seed = np.random.SeedSequence(args.seed).spawn(2)
    circuit = random_circuit(args.features, args.depth, seed=np.random.default_rng(circ_seed))
    net = compile_circuit(
        circuit, args.embed_dim, neurons=args.neurons, seed=np.random.default_rng(net_seed)
    )
    return _write(args, net, readout="auto")


def _run_deep(args: argparse.Namespace) -> int:
    _prepare(
        args,
        deep_bytes(args.features, args.embed_dim, args.depth, 1, gate_neurons=args.gate_neurons),
    )
    from .deep import deep_network

    m = args.features
    if m < 2:
        raise ValueError(f"features must be >= 2, got {m}")
    if args.sparsity > m:
        raise ValueError(f"sparsity must be between 1 and features={m}, got {args.sparsity}")
    net = deep_network(
        m,
        args.embed_dim,
        args.sparsity,
        args.depth,
        gate_neurons=args.gate_neurons,
        design=args.design,
        blocks=args.blocks,
        field=args.field,
        embedding_scheme=args.embedding_scheme,
        seed=args.seed,
    )
    return _write(args, net, readout="auto", extra={"sparsity": args.sparsity})


def _write(
    args: argparse.Namespace, net: object, *, readout: str, extra: dict | None = None
) -> int:
    wpath, spath = export_network(
        net,
        args.out,
        readout=readout,
        seed=args.seed,
        extra=extra,
        progress=None if not args.json else False,
    )
    meta = json.loads(spath.read_text())
    out = {
        "network_kind": meta["network_kind"],
        "weights": str(wpath),
        "sidecar": str(spath),
        "sha256": meta["sha256"],
        "sizes": meta["sizes"],
        "tensors": len(meta["tensors"]),
    }
    if args.json:
        print(json.dumps(out))
    else:
        for key, val in out.items():
            print(f"{key:>12}  {val}")
    return 0
