"""Experiments known by name: the functions ``superposition sweep`` runs (:data:`EXPERIMENTS`).

An experiment takes named parameters and ``seed`` and returns a JSON-serialisable mapping of
metrics; it must be deterministic given its arguments. ``"uand"`` (:func:`uand_error`),
``"embed"`` (:func:`embedding_readout_error`), ``"circuit"`` (:func:`circuit_emulation`) and
``"width"`` (:func:`superposed_width`, one seed's minimal width) and ``"capacity"``
(:func:`correction_capacity`, one seed's capacity search of a correction design).
:func:`register_experiment` adds one.

Each built-in experiment also has a memory estimate (:func:`experiment_bytes`, from
:mod:`superposition.memory`), so ``superposition sweep`` refuses a grid whose largest point
would not fit before it runs any point; :func:`register_experiment` takes one for a new
experiment (``memory=``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import embedding as E
from ._validate import check_int
from .circuits import DEFAULT_GATES, compile_circuit, emulate, random_circuit
from .deep import capacity_search
from .memory import circuit_bytes, deep_bytes, embed_bytes, uand_bytes, width_search_bytes
from .store import Checkpoint
from .superposed import seed_width, superposed_p
from .theory import coherence_scale, readout_error_scale
from .uand import build_uand, connection_probability, evaluate_uand

__all__ = [
    "EXPERIMENTS",
    "circuit_emulation",
    "correction_capacity",
    "embedding_readout_error",
    "experiment_bytes",
    "register_experiment",
    "superposed_width",
    "uand_error",
    "width_guess",
]


def uand_error(
    n_features: int,
    neurons: int,
    sparsity: int,
    *,
    weights: str = "bernoulli",
    arity: int = 2,
    p: float | str | None = None,
    n_samples: int = 100,
    seed: int = 0,
) -> dict[str, Any]:
    """Exact errors of all ANDs of a random U-AND layer on ``n_samples`` random inputs.

    The same numbers as ``superposition uand ... --seed SEED``: network and inputs from
    ``SeedSequence(seed).spawn(2)``. Metrics: :meth:`~superposition.UAndErrors.summary` and
    ``p``.
    """
    net_seed, input_seed = np.random.SeedSequence(check_int("seed", seed, low=0)).spawn(2)
    net = build_uand(
        n_features, neurons, sparsity, weights=weights, arity=arity, p=p, seed=net_seed
    )
    active = E.sample_sparse(n_features, sparsity, n_samples, seed=input_seed)
    return {"p": net.p, **evaluate_uand(net, active).summary()}


def embedding_readout_error(
    n_features: int,
    embed_dim: int,
    sparsity: int = 3,
    *,
    embedding_kind: str = "gaussian",
    n_samples: int = 1000,
    coherence: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    r"""Worst and mean readout error :math:`\max_k|(\Phi^\top\Phi x)_k - x_k|` of a random embedding.

    The same numbers as ``superposition embed ... --seed SEED`` (embedding seed ``seed``,
    inputs ``seed + 1``), with the theory's scales; the mutual coherence only if asked
    (:math:`O(m^2 d_0)`).
    """
    seed = check_int("seed", seed, low=0)
    emb = E.Embedding(n_features, embed_dim, embedding_kind=embedding_kind, seed=seed)
    err = E.readout_errors(emb, E.sample_sparse(n_features, sparsity, n_samples, seed=seed + 1))
    out = {
        "max_readout_error": float(err.max()),
        "mean_readout_error": float(err.mean()),
        "readout_error_scale": readout_error_scale(sparsity, embed_dim),
        "coherence_scale": coherence_scale(n_features, embed_dim),
    }
    if coherence:
        out["coherence"] = E.coherence(emb)
    return out


def circuit_emulation(
    n_features: int,
    embed_dim: int,
    sparsity: int,
    depth: int,
    *,
    neurons: int | None = None,
    gates: Sequence[str] | None = None,
    neuron_wiring: str = "targeted",
    embedding_kind: str = "gaussian",
    n_samples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """A random sparse circuit emulated by MLP layers in superposition, compared layer by layer.

    The same numbers as ``superposition circuit ... --seed SEED`` (circuit, compiled network
    and inputs from ``SeedSequence(seed).spawn(3)``). Metrics: the final layer's figures at the
    top level, every layer's under ``layers``.
    """
    circuit_ss, compile_ss, input_ss = np.random.SeedSequence(check_int("seed", seed, low=0)).spawn(
        3
    )
    gate_set = tuple(DEFAULT_GATES if gates is None else gates)
    circuit = random_circuit(n_features, depth, gate_set, seed=circuit_ss)
    compiled = compile_circuit(
        circuit,
        embed_dim,
        neurons=neurons,
        neuron_wiring=neuron_wiring,
        embedding_kind=embedding_kind,
        seed=compile_ss,
    )
    x = E.to_dense(E.sample_sparse(n_features, sparsity, n_samples, seed=input_ss), n_features)
    report = emulate(compiled, x.astype(bool)).to_dict()
    return {"neurons": compiled.neurons, **report["final"], "layers": report["layers"]}


def superposed_width(
    n_features: int,
    sparsity: int,
    target_error: float,
    *,
    weights: str = "bernoulli",
    embed_dim: int | str | None = "tied",
    n_samples: int = 16,
    low: int | str = 16,
    high: int = 2**15,
    resolution: float = 0.05,
    p: float | str | None = None,
    p_scale: float = 1.0,
    phi: str = "seeded",
    inputs_kind: str = "uniform",
    seed: int = 0,
    checkpoint: Checkpoint | None = None,
) -> dict[str, Any]:
    """One seed's minimal width for U-AND on superposed inputs (one point of a width sweep).

    The smallest width at which the network of seed ``seed`` keeps every output of its
    ``n_samples`` sampled inputs within ``target_error``, searched from ``low`` up to ``high``
    (:func:`superposition.superposed.seed_width`). ``low="auto"``: :func:`width_guess`.
    ``p_scale`` multiplies the connection probability rule (Bernoulli weights), so a grid
    over ``p_scale`` with the same seeds finds the best :math:`p`
    (:func:`superposition.superposed.best_p_scale`). Metrics: ``neurons`` (``high + 1`` when no
    width up to ``high`` passed), ``bracket``, ``p`` (at ``neurons``) and the search's
    ``trials`` (``neurons``, ``p``, ``max_abs_error``, ``passed``, ``inputs`` evaluated).
    ``checkpoint`` (given by the sweep, not part of the result): the search's finished trials
    and the finished inputs of the trial in progress, so a search that runs for hours resumes
    at its last finished input.
    """
    m = check_int("n_features", n_features, low=2)
    start = width_guess(m) if low == "auto" else check_int("low", low, low=1)
    r = seed_width(
        m, sparsity, target_error, seed=check_int("seed", seed, low=0), weights=weights,
        embed_dim=embed_dim, n_samples=n_samples, low=start, high=max(high, start),
        resolution=resolution, p=p, p_scale=p_scale, phi=phi, inputs_kind=inputs_kind,
        checkpoint=checkpoint,
    )  # fmt: skip
    trials = [{k: v for k, v in tr.items() if k not in ("seed", "seconds")} for tr in r.trials]
    at = [tr["p"] for tr in trials if tr["neurons"] == r.neurons]
    return {
        "neurons": int(r.neurons),
        "bracket": list(r.bracket),
        "p": at[0] if at else None,
        "trials": trials,
    }


# The width searches of the U-AND-in-superposition chapter cost up to CPU hours each at large m,
# so their results are kept in the repository (book/sweeps/store) and keyed by this version
# instead of the library's source digest: they survive commits that do not touch them. Bump it
# whenever anything the numbers depend on changes (the samplers of W, Φ and the inputs, the
# layer, the exact evaluators, the search); tests/test_stored_results.py recomputes the cheapest
# stored points bit for bit and fails on a change that was not bumped.
superposed_width.algorithm_version = "1"  # type: ignore[attr-defined]


def correction_capacity(
    design: str,
    embed_dim: int,
    *,
    budget: int | str | None = "2d",
    sparsity: int = 3,
    depth: int = 50,
    n_samples: int = 100,
    blocks: int | None = None,
    write: str = "units",
    low: int | None = None,
    high: int | None = None,
    resolution: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    r"""One seed's capacity search of a correction design (one point of a capacity sweep).

    The largest :math:`m` whose corrected copy circuit keeps every bit of ``n_samples`` inputs
    right after each of ``depth`` layers at residual dimension ``embed_dim``
    (:func:`superposition.capacity_search`, the same numbers as ``superposition capacity``).
    ``budget``: ReLUs per correction layer, an integer, ``"2d"`` (:math:`2d`: :math:`d`
    clipped units of two ReLUs, twice the paper's width-:math:`d` layer; the default) or ``None`` (no budget). Metrics: ``m_max`` (``low - 1``
    when nothing passed), ``relus`` (the budget, ``None`` without one) and the search's
    ``trials`` (``[m, passed]`` in the order run).
    """
    d = check_int("embed_dim", embed_dim, low=1)
    relus = _relus(budget, d)
    r = capacity_search(
        design, d, sparsity=sparsity, depth=depth, n_samples=n_samples, seed=seed,
        budget=relus, blocks=blocks, write=write, low=low, high=high, resolution=resolution,
    )  # fmt: skip
    return {
        "m_max": int(r.m_max),
        "relus": relus,
        "trials": [[int(m), bool(ok)] for m, ok in r.trials],
    }


# Capacity searches at d = 8192 cost about an hour each on one core, so the correction chapter
# keeps them in the repository (book/sweeps/store, sweep book/sweeps/correction_capacity.yaml).
# Bump this whenever anything the numbers depend on changes (the circuit, embeddings, groups,
# code, clip thresholds, the deep step, the input sampler, the search);
# tests/test_stored_results.py recomputes the cheapest stored records bit for bit.
correction_capacity.algorithm_version = "1"  # type: ignore[attr-defined]


def _relus(budget: int | str | None, embed_dim: int) -> int | None:
    """ReLUs per correction layer of a capacity point: ``"2d"`` is ``2 * embed_dim``."""
    if budget is None:
        return None
    if budget == "2d":
        return 2 * embed_dim
    if isinstance(budget, str):
        raise ValueError(f"budget must be an integer, '2d' or None, got {budget!r}")
    return check_int("budget", budget, low=2)


def width_guess(n_features: int) -> int:
    r"""Where a width search starts by default: :math:`2^{\lfloor\log_2(32\sqrt m)\rfloor}`.

    Below the minimal widths measured for :math:`\varepsilon = \tfrac12` (a search that
    starts too high restarts lower, so a guess costs trials, never correctness).
    """
    m = check_int("n_features", n_features, low=1)
    return int(2 ** np.floor(np.log2(32 * np.sqrt(m))))


# ---------------------------------------------------------------- memory estimates
# Each takes the experiment's arguments (defaults applied) and returns its peak bytes.


def _uand_error_bytes(a: Mapping[str, Any]) -> float:
    p = 1.0
    if a["weights"] == "bernoulli":
        p = connection_probability(a["p"], a["n_features"], a["neurons"], a["sparsity"], a["arity"])
    return uand_bytes(
        a["n_features"], a["neurons"], a["n_samples"], weights=a["weights"], p=p, arity=a["arity"]
    )


def _embedding_bytes(a: Mapping[str, Any]) -> float:
    return embed_bytes(a["n_features"], a["embed_dim"], a["n_samples"])


def _circuit_bytes(a: Mapping[str, Any]) -> float:
    return circuit_bytes(
        a["n_features"], a["embed_dim"], a["depth"], a["n_samples"], neurons=a["neurons"]
    )


def _width_bytes(a: Mapping[str, Any]) -> float:
    """The first trial of the search, at its lowest width (as ``superposition width`` checks)."""
    m, s = a["n_features"], a["sparsity"]
    low = width_guess(m) if a["low"] == "auto" else a["low"]
    d0 = a["embed_dim"] if isinstance(a["embed_dim"], int) else low
    p = None
    if a["weights"] == "bernoulli":
        if isinstance(a["p"], (int, float)):
            p = float(a["p"])
        else:
            p = min(1.0, a["p_scale"] * superposed_p(m, low, s, d0))
    return width_search_bytes(m, low, d0, a["n_samples"], p=p)


def _capacity_bytes(a: Mapping[str, Any]) -> float:
    r"""The largest trial the search can make: ``high`` (default :math:`64d`), or the budget's
    :math:`m = \text{budget}/2` for the denoiser (every larger trial is refused unbuilt)."""
    d = check_int("embed_dim", a["embed_dim"], low=1)
    top = 64 * d if a["high"] is None else a["high"]
    relus = _relus(a["budget"], d)
    if a["design"] == "denoiser" and relus is not None:
        top = min(top, relus // 2)
    return deep_bytes(max(top, 2), d, a["depth"], a["n_samples"], gate_neurons=1)


EXPERIMENTS: dict[str, Callable[..., dict[str, Any]]] = {
    "uand": uand_error,
    "embed": embedding_readout_error,
    "circuit": circuit_emulation,
    "width": superposed_width,
    "capacity": correction_capacity,
}
"""Experiments ``superposition sweep`` knows by name."""

_MEMORY: dict[Callable[..., Any], Callable[[Mapping[str, Any]], float]] = {
    uand_error: _uand_error_bytes,
    embedding_readout_error: _embedding_bytes,
    circuit_emulation: _circuit_bytes,
    superposed_width: _width_bytes,
    correction_capacity: _capacity_bytes,
}


def register_experiment(
    name: str,
    fn: Callable[..., dict[str, Any]],
    *,
    memory: Callable[[Mapping[str, Any]], float] | None = None,
) -> Callable[..., dict[str, Any]]:
    """Add ``fn`` to :data:`EXPERIMENTS` under ``name`` (so configs can name it); returns ``fn``.

    ``memory``, optional: a function of ``fn``'s arguments (a mapping, defaults applied) that
    returns the peak bytes of one call, which ``superposition sweep`` checks before running.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    if name in EXPERIMENTS and EXPERIMENTS[name] is not fn:
        raise ValueError(f"an experiment named {name!r} is already registered")
    if memory is not None and not callable(memory):
        raise ValueError(f"memory must be callable, got {type(memory).__name__}")
    EXPERIMENTS[name] = fn
    if memory is not None:
        _MEMORY[fn] = memory
    return fn


def experiment_bytes(fn: Callable[..., Any], params: Mapping[str, Any]) -> float | None:
    """Estimated peak memory (bytes) of ``fn(**params)``, or ``None`` when ``fn`` has no estimate.

    Raises
    ------
    ValueError
        ``params`` do not fit ``fn``'s signature, or a value is out of range.
    """
    estimate = _MEMORY.get(fn)
    if estimate is None:
        return None
    try:
        bound = inspect.signature(fn).bind(**params)
    except TypeError as exc:
        raise ValueError(f"parameters {sorted(params)} do not fit {fn.__name__}: {exc}") from None
    bound.apply_defaults()
    return float(estimate(bound.arguments))
