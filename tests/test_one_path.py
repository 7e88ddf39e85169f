"""One code path: every evaluator runs under ``array_api_strict`` and agrees with its NumPy run.

``array_api_strict`` rejects NumPy-only idioms (list indexing, mixing namespaces, 2-d ``take``
without ``axis``, fancy setitem), so an evaluator that runs here runs unchanged on CuPy. The
``strict`` fixture also makes every implicit conversion of a strict array to NumPy an error
(``np.asarray``, a NumPy ufunc, the buffer protocol): only the explicit
:func:`superposition.backend.to_numpy` (DLPack) may cross, so an evaluator cannot silently
compute on the host. Inputs go in either as strict arrays or through
``SUPERPOSITION_BACKEND=array_api_strict``; the results are compared with the NumPy run:
bit accuracies, counts and booleans exactly, real numbers to a stated tolerance.

Where the two runs differ at all, it is in the order of addition: the strict run sums a sparse
product's entries per output (:func:`superposition.kernels.sparse_matmul`) where NumPy calls
scipy, and the same float products are added in another order. Each such sum of :math:`n`
terms moves by at most :math:`\\gamma_n \\sum|\\text{terms}|` (Higham §3.1); the tolerances below
bound that for the sizes used, and for the layers through which it is carried.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from superposition import backend as B
from superposition.circuits import (
    compile_circuit,
    decode_values,
    emulate,
    encode_values,
    random_circuit,
    readout_stats,
    residual_step,
)
from superposition.correction import (
    CodeCorrection,
    FeatureDenoiser,
    capacity,
    chain,
    denoiser_for_budget,
    fresh_denoisers,
    noise_tolerance,
)
from superposition.deep import deep_network, deep_step, run_deep
from superposition.embedding import Embedding, sample_sparse, to_dense

xps = pytest.importorskip("array_api_strict")

# float64 evaluators: sums of at most a few hundred products of values of size <= ~3, in
# another order: gamma_300 * 300 * 3 ~ 3e-11 per sum; every state passes through at most a few
# such sums before it is compared.
F64 = 1e-10
# float32 deep networks: u = 6e-8; a gate layer's outputs are sums of at most a few hundred
# products of size <= ~2 in float32 (gamma_300 * 600 ~ 1e-2 as a worst case, about 1e-5 for
# rounding errors of random sign), carried through at most a few layers before a correction
# layer resets the state inside its margins. The uncorrected run is compared only where no
# layer amplifies it (depths below).
F32 = 1e-4


class ImplicitNumPy(RuntimeError):
    """An array_api_strict array was converted to NumPy implicitly."""


@pytest.fixture
def strict(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``array_api_strict`` with every implicit conversion to NumPy made an error."""
    cls = type(xps.asarray(0.0))

    def refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise ImplicitNumPy("an evaluator converted an array_api_strict array to NumPy")

    monkeypatch.setattr(cls, "__array__", refuse)
    if hasattr(cls, "__buffer__"):
        monkeypatch.setattr(cls, "__buffer__", refuse)
    return xps


def _is_strict(x: Any) -> bool:
    return B.name_of(B.namespace(x)) == "array_api_strict"


def _np(x: Any) -> np.ndarray:
    assert _is_strict(x), f"expected an array_api_strict array, got {type(x).__name__}"
    return B.to_numpy(x)


def test_the_guard_catches_implicit_conversions(strict: Any) -> None:
    a = strict.asarray([1.0, -2.0])
    with pytest.raises(ImplicitNumPy):
        np.asarray(a)
    with pytest.raises(ImplicitNumPy):
        np.maximum(a, 0.0)
    assert_array_equal(B.to_numpy(a), [1.0, -2.0])  # DLPack is the one way across


# ---------------------------------------------------------------------------------------------
# circuits


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_circuit_runs_on_strict_arrays(strict: Any, dtype: type) -> None:
    m, d, s, k = 200, 90, 2, 12
    cc = compile_circuit(random_circuit(m, 3, seed=0), d, dtype=dtype, seed=1)
    x = to_dense(sample_sparse(m, s, k, seed=2), m).astype(bool)
    ref = list(cc.residuals(x))
    got = list(cc.residuals(strict.asarray(x)))
    tol = F64 if dtype == np.float64 else F32
    for ell, (g, r) in enumerate(zip(got, ref, strict=True)):
        assert_allclose(_np(g), r, atol=tol)
        assert_allclose(_np(cc.decode(g, ell)), cc.decode(r, ell), atol=tol)
    layer = cc.layers[0]
    assert_allclose(_np(layer(strict.asarray(ref[0]))), layer(ref[0]), atol=tol)
    # the public steps a loaded circuit shares with the compiled one, on strict arrays
    phi0 = cc.phi(0).matrix()
    assert_allclose(_np(encode_values(strict.asarray(x), phi0)), ref[0], atol=tol)
    weights = [strict.asarray(w) for w in (layer.W_in, layer.b, layer.W_out, layer.W_skip)]
    assert_allclose(_np(residual_step(strict.asarray(ref[0]), *weights)), ref[1], atol=tol)
    assert_allclose(
        _np(decode_values(strict.asarray(ref[0]), phi0)), cc.decode(ref[0], 0), atol=tol
    )
    want = emulate(cc, x)
    have = emulate(cc, strict.asarray(x))
    assert have.bit_accuracy == want.bit_accuracy
    assert have.input_accuracy == want.input_accuracy
    assert have.max_active == want.max_active
    for field in ("max_abs_error", "mean_abs_error", "noise_energy"):
        assert_allclose(getattr(have, field), getattr(want, field), rtol=tol, atol=tol)


def test_explicit_embedding_matrices_and_the_configured_backend(
    strict: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(5)
    embs = [rng.standard_normal((40, 60)) / np.sqrt(40) for _ in range(3)]
    cc = compile_circuit(random_circuit(60, 2, seed=3), 40, embeddings=embs, seed=4)
    x = to_dense(sample_sparse(60, 2, 10, seed=2), 60).astype(bool)
    ref = list(cc.residuals(x))
    want = emulate(cc, x)
    monkeypatch.setenv(B.ENV_VAR, "array_api_strict")  # NumPy inputs, strict evaluation
    got = list(cc.residuals(x))
    for g, r in zip(got, ref, strict=True):
        assert_allclose(_np(g), r, atol=F64)
    have = emulate(cc, x)
    assert have.bit_accuracy == want.bit_accuracy
    assert_allclose(have.noise_energy, want.noise_energy, rtol=F64, atol=F64)
    st = readout_stats(cc.decode(got[2], 2), cc.circuit.evaluate(x)[2])
    assert st == pytest.approx(readout_stats(cc.decode(ref[2], 2), cc.circuit.evaluate(x)[2]))


# ---------------------------------------------------------------------------------------------
# correction layers and their measurements


def _blocks(it: Iterator[tuple[int, Any]]) -> np.ndarray:
    return np.concatenate([_np(r) for _, r in it], axis=1)


def test_feature_denoiser_on_strict_arrays(strict: Any) -> None:
    layer = FeatureDenoiser(Embedding(700, 200, seed=3), Embedding(700, 200, seed=4))
    act = sample_sparse(700, 3, 30, seed=1)
    a = layer.encode(act) + 0.05 * np.random.default_rng(0).standard_normal((30, 200))
    assert_allclose(_np(layer.encode(strict.asarray(act))), layer.encode(act), atol=F64)
    sa = strict.asarray(a)
    assert_allclose(_np(layer.step(sa)), layer.step(a), atol=F64)
    for side in ("in", "out"):
        assert_allclose(
            _blocks(layer.readout_blocks(sa, side)),
            np.concatenate([r for _, r in layer.readout_blocks(a, side)], axis=1),
            atol=F64,
        )


@pytest.mark.parametrize("write", ["units", "phi"])
def test_grouped_correction_on_strict_arrays(strict: Any, write: str) -> None:
    from superposition.grouped import GroupedCorrection, group_design

    layer = GroupedCorrection(
        Embedding(300, 420, seed=2), group_design(300, 60, 7, 1), 3, write=write
    )
    act = sample_sparse(300, 3, 20, seed=1)
    a = layer.encode(act) + 0.02 * np.random.default_rng(0).standard_normal((20, 420))
    sa = strict.asarray(a)
    assert_allclose(_np(layer.unit_reads(sa)), layer.unit_reads(a), atol=F64)
    out = layer.step(a)
    assert_allclose(_np(layer.step(sa)), out, atol=F64)
    assert_allclose(
        _blocks(layer.readout_blocks(strict.asarray(out))),
        np.concatenate([r for _, r in layer.readout_blocks(out)], axis=1),
        atol=F64,
    )


def test_code_correction_on_strict_arrays(strict: Any) -> None:
    layer = CodeCorrection(700, 300, 29, 8, 1, seed=2)
    act = sample_sparse(700, 3, 30, seed=1)
    a = layer.encode(act) + 0.02 * np.random.default_rng(0).standard_normal((30, 300))
    sa = strict.asarray(a)
    assert_allclose(_np(layer.encode(strict.asarray(act))), layer.encode(act), atol=F64)
    assert_allclose(_np(layer.unit_reads(sa)), layer.unit_reads(a), atol=F64)
    assert_allclose(_np(layer.step(sa)), layer.step(a), atol=F64)
    assert_allclose(
        _blocks(layer.readout_blocks(sa)),
        np.concatenate([r for _, r in layer.readout_blocks(a)], axis=1),
        atol=F64,
    )


@pytest.mark.parametrize("design", ["denoiser", "code", "fresh"])
def test_chain_under_strict(strict: Any, design: str) -> None:
    layers = {
        "denoiser": FeatureDenoiser(Embedding(700, 200, seed=3)),
        "code": CodeCorrection(700, 300, 29, 8, 1, seed=2),
        "fresh": fresh_denoisers(700, 200, seed=1),
    }[design]
    act = sample_sparse(700, 3, 30, seed=1)
    # noise 0.08 per layer: some bits flip within 6 layers for the code design, none for the
    # denoiser, so both outcomes are compared
    want = chain(layers, act, 6, noise_std=0.08, seed=3)
    have = chain(layers, strict.asarray(act), 6, noise_std=0.08, seed=3)
    assert have.depth_survived == want.depth_survived
    assert_array_equal(have.layers, want.layers)
    assert_array_equal(have.bit_accuracy, want.bit_accuracy)
    assert_array_equal(have.input_bit_accuracy, want.input_bit_accuracy)
    assert_allclose(have.max_error, want.max_error, atol=F64)
    assert_allclose(have.input_error, want.input_error, atol=F64)


def test_noise_tolerance_and_capacity_under_the_configured_backend(
    strict: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = FeatureDenoiser(Embedding(500, 150, seed=3))
    act = sample_sparse(500, 3, 20, seed=1)
    levels = [0.0, 0.05, 0.1, 0.2, 0.4]
    want = noise_tolerance(layer, act, levels, seed=2)
    make = denoiser_for_budget(600, 120)
    cap_want = capacity(make, sparsity=2, depth=3, n_samples=20, noise_std=0.02)
    monkeypatch.setenv(B.ENV_VAR, "array_api_strict")
    assert _is_strict(layer.encode(act))  # the measurements below evaluate in strict arrays
    have = noise_tolerance(layer, act, levels, seed=2)
    assert_array_equal(have.bit_accuracy, want.bit_accuracy)
    assert_allclose(have.input_error, want.input_error, atol=F64)
    assert_allclose(have.output_error, want.output_error, atol=F64)
    assert_allclose(
        [have.threshold_std, have.clean_input_error, have.clean_output_error],
        [want.threshold_std, want.clean_input_error, want.clean_output_error],
        atol=F64,
    )
    assert capacity(make, sparsity=2, depth=3, n_samples=20, noise_std=0.02) == cap_want


# ---------------------------------------------------------------------------------------------
# deep networks


# Sizes at which the corrected run keeps every bit and the uncorrected one loses some within
# the depth (checked in the test), so the comparison covers both regimes.
DEEP = {
    "fixed float32": (dict(n_features=90, embed_dim=400, sparsity=2, depth=8, seed=4), F32),
    "fresh float64": (
        dict(
            n_features=90,
            embed_dim=400,
            sparsity=2,
            depth=6,
            embedding_scheme="fresh",
            dtype=np.float64,
            seed=4,
        ),
        F64,
    ),
    "code": (
        dict(
            n_features=30,
            embed_dim=204,
            sparsity=2,
            depth=5,
            design="code",
            blocks=12,
            field=17,
            seed=4,
        ),
        F32,
    ),
    "and_bias": (
        dict(n_features=90, embed_dim=400, sparsity=2, depth=6, and_bias=1.2, seed=4),
        F32,
    ),
    "grouped": (
        dict(
            n_features=150,
            embed_dim=400,
            sparsity=2,
            depth=8,
            gates=("and", "or"),
            design="grouped",
            blocks=5,
            seed=4,
        ),
        F32,
    ),
    "two pairs per gate neuron": (
        dict(
            n_features=150,
            embed_dim=400,
            sparsity=2,
            depth=6,
            gates=("and", "or"),
            gate_neurons=150,
            pairs_per_neuron=2,
            and_bias=1.3,
            seed=4,
        ),
        F32,
    ),
}


@pytest.mark.parametrize("case", list(DEEP))
def test_run_deep_on_strict_arrays(strict: Any, case: str) -> None:
    kwargs, tol = DEEP[case]
    net = deep_network(**kwargs)
    m = net.n_features
    x = to_dense(sample_sparse(m, 2, 15, seed=7), m).astype(bool)
    want = run_deep(net, x)
    have = run_deep(net, strict.asarray(x))
    for run in ("corrected", "uncorrected"):
        w, h = getattr(want, run), getattr(have, run)
        assert (h.depth_survived, h.diverged_at) == (w.depth_survived, w.diverged_at)
        assert_array_equal(h.layers, w.layers)
        assert_array_equal(h.bit_accuracy, w.bit_accuracy)
        assert_array_equal(h.input_accuracy, w.input_accuracy)
        for field in ("max_error", "mean_error", "gate_error"):
            assert_allclose(getattr(h, field), getattr(w, field), atol=tol)
    assert want.corrected.depth_survived == net.depth
    assert want.uncorrected.depth_survived < net.depth


def test_deep_steps_on_strict_arrays(strict: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    net = deep_network(150, 300, 2, 3, dtype=np.float64, seed=5)
    x = to_dense(sample_sparse(150, 2, 10, seed=1), 150).astype(bool)
    a, sa = net.encode(x), net.encode(strict.asarray(x))
    assert_allclose(_np(sa), a, atol=F64)
    r, sr = net.readout(a, 0), net.readout(sa, 0)
    for ell in range(1, 4):
        a, sa = net.gate_step(ell, r), net.gate_step(ell, sr)
        assert_allclose(_np(sa), a, atol=F64)
        r, sr = net.readout(a, ell), net.readout(sa, ell)
        assert_allclose(_np(sr), r, atol=F64)
        a, sa = net.correct(a, r, ell), net.correct(sa, sr, ell)
        assert_allclose(_np(sa), a, atol=F64)
        r, sr = net.readout(a, ell), net.readout(sa, ell)
    # the one step, on plain arrays: the network's own factors, rows and correction
    r0 = net.readout(net.encode(x), 0)
    rows = np.ascontiguousarray(net.embedding(1).matrix().T)
    ref = deep_step(r0, net.gate_factors(1), rows, correction=net.correction_arrays())
    got = deep_step(
        strict.asarray(r0),
        net.gate_factors(1),
        strict.asarray(rows),
        correction=net.correction_arrays(),
    )
    for g, w in zip(got, ref, strict=True):
        assert_allclose(_np(g), w, atol=F64)
    monkeypatch.setenv(B.ENV_VAR, "array_api_strict")
    assert _is_strict(net.encode(x))


# ---------------------------------------------------------------- U-AND, superposed U-AND, embeddings


def _same_errors(got: Any, ref: Any, tol: float = F64) -> None:
    """Two UAndErrors of the same network and inputs: counts exactly, sums and maxima to ``tol``."""
    assert got.backend == "array_api_strict" and ref.backend == "numpy"
    assert_array_equal(got.count, ref.count)
    assert_array_equal(got.nonzero, ref.nonzero)
    for name in ("sum", "sum_abs", "sum_sq", "max_abs", "input_max_abs"):
        assert_allclose(getattr(got, name), getattr(ref, name), rtol=tol, atol=tol)
    if ref.histogram is not None:
        assert_array_equal(got.histogram, ref.histogram)


@pytest.mark.parametrize(
    ("weights", "arity", "method"),
    [
        ("bernoulli", 2, "sparse"),
        ("bernoulli", 2, "tiles"),
        ("bernoulli", 3, "tiles"),
        ("rademacher", 2, "tiles"),
        ("gaussian", 2, "tiles"),
    ],
)
def test_evaluate_uand(strict: Any, weights: str, arity: int, method: str) -> None:
    import superposition as sp

    m, d, s = 40, 120, 4
    net = sp.build_uand(m, d, s, weights=weights, arity=arity, seed=3)
    act = sample_sparse(m, s, 5, seed=4)
    bins = np.linspace(-1.5, 2.5, 9)
    ref = sp.evaluate_uand(net, act, method=method, bins=bins)
    got = sp.evaluate_uand(net, strict.asarray(act), method=method, bins=bins)
    _same_errors(got, ref)
    a = net.activations(strict.asarray(act))
    assert_allclose(_np(a), net.activations(act), rtol=0, atol=F64)
    tup = np.array([[0, 1], [3, 17], [5, 39]]) if arity == 2 else np.array([[0, 1, 2], [4, 9, 30]])
    assert_allclose(
        _np(sp.uand_outputs(net, strict.asarray(act), tup)),
        sp.uand_outputs(net, act, tup),
        atol=F64,
    )


@pytest.mark.parametrize("weights", ["rademacher", "gaussian"])
def test_bias_groups(strict: Any, weights: str) -> None:
    """A layer with bias groups (per-neuron bias and readout weights) and its superposed twin."""
    import superposition as sp
    from superposition import superposed as S

    m, d, s = 30, 90, 4
    net = sp.build_uand(m, d, s, weights=weights, bias="count_free", seed=3)
    assert len(net.groups) > 1
    for n in (2, 4):
        act = sample_sparse(m, n, 5, seed=4)
        _same_errors(sp.evaluate_uand(net, strict.asarray(act)), sp.evaluate_uand(net, act))
        assert_allclose(_np(net.activations(strict.asarray(act))), net.activations(act), atol=F64)
    snet = S.build_superposed_uand(m, d, s, 40, weights=weights, bias="count_free", seed=6)
    act = sample_sparse(m, 3, 4, seed=7)
    sact = strict.asarray(act)
    assert_allclose(_np(snet.activations(sact)), snet.activations(act), rtol=0, atol=F64)
    _same_errors(S.evaluate_superposed(snet, sact), S.evaluate_superposed(snet, act))


def test_fitted_readout_and_worst_case(strict: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import superposition as sp

    net = sp.build_uand(12, 40, 3, weights="gaussian", seed=1)
    fitted = sp.fit_uand_readout(net, 300, seed=2)
    act = sample_sparse(12, 3, 4, seed=3)
    ref = sp.evaluate_uand(net, act, readout=fitted)
    _same_errors(sp.evaluate_uand(net, strict.asarray(act), readout=fitted), ref)
    small = sp.build_uand(9, 30, 2, p=0.4, seed=5)
    ref = sp.worst_case_uand(small)
    monkeypatch.setenv(B.ENV_VAR, "array_api_strict")
    _same_errors(sp.worst_case_uand(small), ref)


@pytest.mark.parametrize("weights", ["bernoulli", "rademacher"])
def test_superposed_evaluators(strict: Any, weights: str) -> None:
    from superposition import superposed as S

    m, d, s, d0 = 50, 150, 3, 60
    snet = S.build_superposed_uand(m, d, s, d0, weights=weights, seed=6)
    act = sample_sparse(m, s, 4, seed=7)
    sact = strict.asarray(act)
    assert_allclose(_np(snet.activations(sact)), snet.activations(act), rtol=0, atol=F64)
    a0 = snet.embedded(act)  # the layer on an embedded input, as a loaded network runs it
    assert_allclose(
        _np(snet.activations_from(strict.asarray(a0))), snet.activations(act), rtol=0, atol=F64
    )
    _same_errors(S.evaluate_superposed(snet, sact), S.evaluate_superposed(snet, act))
    # float32 products of at most d terms of size <= ~3 in another order
    got, ref = S.max_errors(snet, sact), S.max_errors(snet, act)
    assert_allclose(got.per_input, ref.per_input, rtol=0, atol=F32)
    assert_array_equal(got.count, ref.count)
    got_o = S.output_embedding_errors(snet, sact, out_dim=40)
    ref_o = S.output_embedding_errors(snet, act, out_dim=40)
    for key in ("max_abs_error", "mean_abs_error", "ideal_max_abs_error"):
        assert got_o[key] == pytest.approx(ref_o[key], abs=F32)


def test_embedding_evaluators(strict: Any) -> None:
    import superposition as sp

    emb = Embedding(700, 48, seed=2)
    act = sample_sparse(700, 3, 6, seed=3)
    sact = strict.asarray(act)
    assert_allclose(_np(emb.embed(sact)), emb.embed(act), rtol=0, atol=F64)
    a = emb.embed(act)
    assert_allclose(_np(emb.readout(strict.asarray(a))), emb.readout(a), rtol=0, atol=F64)
    assert_allclose(_np(sp.readout_errors(emb, sact)), sp.readout_errors(emb, act), atol=F64)
    phi = emb.matrix()
    got = sp.readout_errors(strict.asarray(phi), sact)
    assert_allclose(_np(got), sp.readout_errors(phi, act), atol=F64)
    small = Embedding(300, 24, seed=1)
    assert sp.coherence(strict.asarray(small.matrix())) == pytest.approx(
        sp.coherence(small), abs=F64
    )
    assert_allclose(_np(sp.overlaps(strict.asarray(small.matrix()))), sp.overlaps(small), atol=F64)


def test_cli_under_the_strict_backend(
    strict: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """``SUPERPOSITION_BACKEND=array_api_strict superposition uand …`` gives NumPy's numbers."""
    import json

    from superposition.cli import main

    argv = ["uand", "--features", "30", "--neurons", "90", "--sparsity", "3", "--json"]
    assert main(argv) == 0
    ref = json.loads(capsys.readouterr().out)
    monkeypatch.setenv(B.ENV_VAR, "array_api_strict")
    assert main(argv) == 0
    got = json.loads(capsys.readouterr().out)
    assert (ref["backend"], got["backend"]) == ("numpy", "array_api_strict")
    for key in ("max_abs_error", "mean_abs_error"):
        assert got[key] == pytest.approx(ref[key], abs=F64)
    assert main([*argv[:-1], "--embed-dim", "20", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["backend"] == "array_api_strict"


def test_trained_network(strict: Any) -> None:
    import superposition as sp

    net = sp.train_uand(10, 12, 3, steps=20, seed=1)
    act = sample_sparse(10, 3, 5, seed=2)
    assert_allclose(_np(net.activations(strict.asarray(act))), net.activations(act), atol=F64)
    assert_allclose(_np(net.outputs(strict.asarray(act))), net.outputs(act), atol=F64)
    ref = sp.evaluate_uand(net, act, readout=net.readout, activations=net.activations(act))
    got = sp.evaluate_uand(
        net, strict.asarray(act), readout=net.readout, activations=net.activations(act)
    )
    _same_errors(got, ref)


def test_all_active_readings(strict: Any) -> None:
    """The readings of the true ANDs, on strict arrays, equal the NumPy ones."""
    import superposition as sp

    for weights in ("bernoulli", "rademacher"):
        net = sp.build_uand(20, 60, 3, weights=weights, seed=1)
        act = sample_sparse(20, 3, 4, seed=2)
        got = sp.all_active_readings(net, strict.asarray(act))
        assert isinstance(got, np.ndarray)
        assert_allclose(got, sp.all_active_readings(net, act), rtol=0, atol=F64)


# ---------------------------------------------------------------------------------------------
# the width trial of the superposed U-AND search: the exact Bernoulli evaluator and the sign path


@pytest.mark.parametrize("weights", ["bernoulli", "rademacher"])
def test_width_trial_under_the_configured_backend(
    strict: Any, monkeypatch: pytest.MonkeyPatch, weights: str
) -> None:
    """The same worst errors per input and pattern. Bernoulli: the strict run adds the
    pattern-1 scatter-add in another order (sums of at most d/2 activations of size <= ~3:
    F64 holds); the sign path sums the same float32 products in the same GEMM-free order."""
    from superposition.superposed import width_trial

    kw = dict(embed_dim=60, n_samples=4, seed=2, weights=weights)
    want = width_trial(50, 240, 3, **kw)
    monkeypatch.setenv(B.ENV_VAR, "array_api_strict")
    have = width_trial(50, 240, 3, **kw)
    assert have.backend == "array_api_strict"
    tol = F32 if weights != "bernoulli" else F64
    if weights == "bernoulli":
        # pattern 0 is exact only where it is the input's worst, a lower bound below it (the
        # walk stops at the first neuron not above the worst so far: an ulp decides a tie)
        assert_allclose(have.per_input.max(axis=1), want.per_input.max(axis=1), rtol=tol)
        assert_allclose(have.per_input[:, 1:], want.per_input[:, 1:], rtol=tol)
    else:
        assert_allclose(have.per_input, want.per_input, rtol=tol)
    assert_array_equal(have.firing, want.firing)
