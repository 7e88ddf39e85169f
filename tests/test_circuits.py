"""Tests for superposition.circuits and the ``circuit`` sub-command."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from superposition import Embedding, coherence, sample_sparse, to_dense
from superposition.circuits import (
    DEFAULT_GATES,
    GATE_NAMES,
    Circuit,
    CircuitLayer,
    CompiledCircuit,
    active_counts,
    compile_circuit,
    compile_layer,
    emulate,
    fraction_sparse,
    gate_polynomial,
    gate_table,
    predicted_noise,
    random_circuit,
    readout_stats,
)
from superposition.cli import main

BITS = list(itertools.product((0, 1), repeat=2))
ROUNDING = 1e-12  # float64 rounding of a few sums of O(1) terms in d <= 64 dimensions


def all_sparse_inputs(m: int, s: int) -> np.ndarray:
    """Every input with at most ``s`` ones, bool ``(n, m)`` (exhaustive)."""
    rows = [c for k in range(s + 1) for c in itertools.combinations(range(m), k)]
    x = np.zeros((len(rows), m), dtype=bool)
    for i, c in enumerate(rows):
        x[i, list(c)] = True
    return x


def orthonormal(d: int, m: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q[:, :m]


# --------------------------------------------------------------------------- gates


def test_all_16_polynomials_are_exact() -> None:
    table = gate_table()
    assert [r["code"] for r in table] == list(range(16))
    assert len({r["name"] for r in table}) == 16
    for row in table:
        c0, c1, c2, c3 = gate_polynomial(row["name"])
        assert (c0, c1, c2, c3) == (row["c0"], row["c1"], row["c2"], row["c3"])
        assert all(isinstance(c, int) for c in (c0, c1, c2, c3))
        for x, y in BITS:
            f = (row["code"] >> (2 * x + y)) & 1
            assert row["truth"][2 * x + y] == f
            assert c0 + c1 * x + c2 * y + c3 * x * y == f, (row["name"], x, y)
        assert row["sparse"] == (row["truth"][0] == 0)
        assert gate_polynomial(row["code"]) == (c0, c1, c2, c3)
        assert gate_polynomial(tuple(row["truth"])) == (c0, c1, c2, c3)
    assert sum(r["sparse"] for r in table) == 8


def test_named_gates_and_formulas() -> None:
    by = {r["name"]: r for r in gate_table()}
    assert by["and"]["truth"] == (0, 0, 0, 1)
    assert by["or"]["truth"] == (0, 1, 1, 1)
    assert by["xor"]["truth"] == (0, 1, 1, 0)
    assert by["andnot"]["truth"] == (0, 0, 1, 0)  # x and not y
    assert by["yandnot"]["truth"] == (0, 1, 0, 0)  # y and not x
    assert by["xor"]["formula"] == "x + y - 2xy"
    assert by["or"]["formula"] == "x + y - xy"
    assert by["andnot"]["formula"] == "x - xy"
    assert by["nand"]["formula"] == "1 - xy"
    assert by["false"]["formula"] == "0"
    assert gate_polynomial("copy") == (0, 1, 0, 0)
    assert gate_polynomial("not") == (1, -1, 0, 0)
    assert gate_polynomial((0, 1)) == (0, 1, 0, 0)


@pytest.mark.parametrize("bad", ["nope", 16, -1, (0, 1, 1), (0, 2, 1, 0), 2.0])
def test_bad_gate_specs(bad: object) -> None:
    with pytest.raises(ValueError, match="gate"):
        gate_polynomial(bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- circuit model


def test_layer_evaluate_matches_truth_tables() -> None:
    sparse_codes = [c for c in range(16) if not c & 1]
    rng = np.random.default_rng(0)
    m, n = 7, 40
    layer = CircuitLayer(
        m,
        rng.integers(0, m, n),
        rng.integers(0, m, n),
        rng.choice(sparse_codes, n).astype(np.uint8),
    )
    x = rng.integers(0, 2, (64, m)).astype(bool)
    y = layer.evaluate(x)
    assert y.dtype == bool and y.shape == (64, n)
    for k in range(64):
        for g in range(n):
            u, v, c = layer.left[g], layer.right[g], int(layer.code[g])
            assert y[k, g] == bool((c >> (2 * int(x[k, u]) + int(x[k, v]))) & 1)
    assert_array_equal(layer.evaluate(x.astype(np.int64)), y)


def test_from_gates_and_describe() -> None:
    layer = CircuitLayer.from_gates(
        3,
        [("xor", 0, 1), ("and", 0, 1), ("copy", 2), ((0, 0, 1, 0), 2, 0), (14, 1, 2), ((0, 1), 1)],
    )
    assert layer.describe() == [
        "y0 = xor(x0, x1)",
        "y1 = and(x0, x1)",
        "y2 = copy(x2)",
        "y3 = andnot(x2, x0)",
        "y4 = or(x1, x2)",
        "y5 = copy(x1)",
    ]
    x = all_sparse_inputs(3, 3)
    want = np.stack(
        [
            x[:, 0] ^ x[:, 1],
            x[:, 0] & x[:, 1],
            x[:, 2],
            x[:, 2] & ~x[:, 0],
            x[:, 1] | x[:, 2],
            x[:, 1],
        ],
        axis=1,
    )
    assert_array_equal(layer.evaluate(x), want)
    # one-input gates fold into c1 (both inputs are the same value)
    assert_array_equal(layer.coefficients[2], [0, 1, 0, 0])
    same = CircuitLayer.from_gates(2, [("and", 1, 1), ("xor", 0, 0), ("or", 1, 1)])
    assert_array_equal(same.coefficients, [[0, 1, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]])


@pytest.mark.parametrize(
    ("gates", "match"),
    [
        ([("and", 0)], "takes 2 inputs, got 1"),
        ([("copy", 0, 1)], "takes 1 input, got 2"),
        ([("xor", 0, 1, 2)], "takes 2 inputs, got 3"),
        ([("and", 0, 3)], r"input index of gate 0 must be between 0 and 2, got 3"),
        ([("and", -1, 0)], "between 0 and 2, got -1"),
        ([("nand", 0, 1)], r"gate 0 \(nand\) has f\(0,0\) = 1 and breaks sparsity"),
        ([("and", 0, 1), ("not", 2)], r"gate 1 \(notx\) has f\(0,0\) = 1"),
        ([((1, 0, 0, 0), 0, 1)], "breaks sparsity"),
        ([("bogus", 0, 1)], "gate must be one of"),
        ([("and",)], r"must be \(gate, u\) or \(gate, u, v\)"),
    ],
)
def test_invalid_layers(gates: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CircuitLayer.from_gates(3, gates)


def test_invalid_arrays_and_circuits() -> None:
    z = np.zeros(2, np.int64)
    with pytest.raises(
        ValueError, match=r"right\[1\] \(input of gate 1\) must be between 0 and 3, got 4"
    ):
        CircuitLayer(4, z, np.array([0, 4]), np.array([8, 8]))
    with pytest.raises(ValueError, match=r"code\[0\] must be between 0 and 15, got 16"):
        CircuitLayer(4, z, z, np.array([16, 8]))
    with pytest.raises(ValueError, match="same length"):
        CircuitLayer(4, z, z, np.array([8]))
    with pytest.raises(ValueError, match="at least one gate"):
        CircuitLayer(4, z[:0], z[:0], z[:0])
    a = CircuitLayer.from_gates(3, [("and", 0, 1), ("or", 1, 2)])
    with pytest.raises(
        ValueError, match=r"layers\[1\] reads 3 values but the previous layer has 2"
    ):
        Circuit(3, (a, a))
    with pytest.raises(ValueError, match="depth >= 1"):
        Circuit(3, ())
    with pytest.raises(ValueError, match=r"x must have shape \(n_samples, 3\)"):
        a.evaluate(np.zeros((2, 4), bool))
    with pytest.raises(ValueError, match="only 0 and 1"):
        a.evaluate(np.full((2, 3), 2))


@pytest.mark.parametrize(
    ("gates", "match"),
    [
        (("or",), r"gates \['or'\] have no partner"),
        (("or", "xor"), r"gates \['or', 'xor'\] have no partner"),
        (("and", "nand"), "'nand' has f\\(0,0\\) = 1 and breaks sparsity"),
        (("and", "not"), "'not' has f\\(0,0\\) = 1"),
        (("false",), "constant"),
        ("and", "non-empty sequence"),
        ((), "non-empty sequence"),
    ],
)
def test_random_circuit_rejects_gate_sets(gates: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        random_circuit(10, 2, gates)


def _blocks_of(layer: CircuitLayer) -> list[set[int]]:
    """Inputs of each two-gate block of a ``paired`` layer (gates 2i, 2i+1)."""
    n = layer.n_gates // 2
    return [
        {
            int(layer.left[2 * i]),
            int(layer.right[2 * i]),
            int(layer.left[2 * i + 1]),
            int(layer.right[2 * i + 1]),
        }
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("m", "gates"),
    [
        (10, DEFAULT_GATES),
        (11, DEFAULT_GATES),
        (10, ("xor", "and", "copy")),
        (10, ("andnot", "copy")),
    ],
)
def test_paired_wiring_keeps_every_input_sparse(m: int, gates: tuple) -> None:
    """Exhaustive over all inputs with <= 3 ones: the count of ones never grows, and it drops
    only when both inputs of some block are active (conservative blocks)."""
    circuit = random_circuit(m, 6, gates, seed=4)
    x = all_sparse_inputs(m, 3)
    counts = active_counts(circuit, x)
    assert_array_equal(counts[:, 0], x.sum(axis=1))
    assert np.all(np.diff(counts, axis=1) <= 0)
    assert_array_equal(fraction_sparse(circuit, x, 3), np.ones(7))
    xs = circuit.evaluate(x)
    for ell, layer in enumerate(circuit.layers):
        blocks = _blocks_of(layer)
        assert all(len(b) == 2 for b in blocks)  # disjoint pairs, every input used once
        used = set().union(*blocks)
        assert len(used) == 2 * (m // 2)
        both = np.zeros(len(x), bool)
        for b in blocks:
            u, v = sorted(b)
            both |= xs[ell][:, u] & xs[ell][:, v]
        assert_array_equal(counts[~both, ell + 1], counts[~both, ell])
        if ell == 0:
            assert both.any()  # the exhaustive set does reach the lossy case


def test_gate_set_without_conservative_partner_loses_ones() -> None:
    """With gates=("and",) every block is {and, and}: it outputs two ones exactly when both
    of its inputs are 1, so ones are lost (an input with one active value dies at once)."""
    circuit = random_circuit(12, 3, ("and",), seed=0)
    x = all_sparse_inputs(12, 3)
    counts = active_counts(circuit, x)
    xs = circuit.evaluate(x)
    for ell, layer in enumerate(circuit.layers):
        n_both = sum(xs[ell][:, min(b)] & xs[ell][:, max(b)] for b in _blocks_of(layer))
        assert_array_equal(counts[:, ell + 1], 2 * n_both)
    assert np.all(np.diff(counts, axis=1) <= 0)
    assert counts[x.sum(axis=1) == 1, 1].max() == 0


def test_random_wiring_breaks_sparsity_and_fraction_is_measured() -> None:
    m, s = 100, 3
    circuit = random_circuit(m, 6, wiring="random", seed=0)
    x = to_dense(sample_sparse(m, s, 400, seed=1), m)
    frac = fraction_sparse(circuit, x, s)
    counts = active_counts(circuit, x)
    assert frac[0] == 1.0
    assert np.all(np.diff(frac) <= 0)
    want = np.logical_and.accumulate(counts <= s, axis=1).mean(axis=0)
    assert_array_equal(frac, want)
    # an active value feeds two gates on average, so or/xor outputs multiply the ones
    assert frac[-1] < 0.5


def test_random_circuit_is_deterministic() -> None:
    a = random_circuit(50, 3, seed=7)
    b = random_circuit(50, 3, seed=7)
    c = random_circuit(50, 3, seed=8)
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert_array_equal(la.left, lb.left)
        assert_array_equal(la.code, lb.code)
    assert any(
        not np.array_equal(la.left, lc.left) for la, lc in zip(a.layers, c.layers, strict=True)
    )


# --------------------------------------------------------------------------- compiler


@pytest.mark.parametrize("wiring", ["targeted", "bernoulli"])
def test_weights_match_their_definition(wiring: str) -> None:
    m, d, n = 30, 20, 25
    layer = random_circuit(m, 1, seed=1).layers[0]
    phi_in, phi_out = Embedding(m, d, seed=2), Embedding(m, d, embedding_kind="sign", seed=3)
    kw = {"pairs_per_neuron": 2} if wiring == "targeted" else {"p": 0.3}
    cl = compile_layer(layer, phi_in, phi_out, neurons=n, neuron_wiring=wiring, seed=4, **kw)
    W = cl.wiring.toarray()
    assert set(np.unique(W)) <= {0.0, 1.0}
    F, G = phi_in.matrix(), phi_out.matrix()
    assert_allclose(cl.W_in, W @ F.T, atol=ROUNDING)
    assert_array_equal(cl.b, -np.ones(n))
    c = layer.coefficients
    lin = np.zeros((m, m))
    for g in range(m):
        lin[g, layer.left[g]] += c[g, 1]
        lin[g, layer.right[g]] += c[g, 2]
    assert_allclose(cl.W_skip, G @ lin @ F.T, atol=ROUNDING)
    M = np.zeros((m, n))
    for g in np.flatnonzero(c[:, 3]):
        u, v = sorted((layer.left[g], layer.right[g]))
        gamma = W[:, u] * W[:, v]
        if gamma.sum():
            M[g] = c[g, 3] * gamma / gamma.sum()
    assert_allclose(cl.W_out, G @ M, atol=ROUNDING)
    assert cl.embed_dim == d and cl.neurons == n
    if wiring == "bernoulli":
        assert (cl.readout_sizes == 0).any()  # p^2 n = 2.25: some products have no neuron
    else:
        assert (cl.readout_sizes >= 1).all()


def test_targeted_wiring_is_balanced() -> None:
    m, d = 40, 16
    layer = random_circuit(m, 1, seed=0).layers[0]
    cl = compile_layer(layer, Embedding(m, d, seed=1), Embedding(m, d, seed=2), neurons=50, seed=3)
    P = cl.pairs.shape[0]
    assert P == m // 2  # default gates: every block needs its product
    assert set(cl.readout_sizes) <= {50 // P, -(-50 // P)}
    assert_array_equal(cl.wiring.sum(axis=1), np.full(50, 2.0))  # q = 1: one pair per neuron


def test_bernoulli_wiring_density() -> None:
    m, d, n, p = 200, 10, 300, 0.2
    layer = random_circuit(m, 1, seed=0).layers[0]
    cl = compile_layer(
        layer,
        Embedding(m, d, seed=1),
        Embedding(m, d, seed=2),
        neurons=n,
        neuron_wiring="bernoulli",
        p=p,
    )
    frac = cl.wiring.sum() / (n * m)
    # 60,000 Bernoulli(0.2) entries: sd of the mean 0.0016; 5 sd
    assert abs(frac - p) < 5 * np.sqrt(p * (1 - p) / (n * m))


@pytest.mark.parametrize("m", [8, 9])
def test_orthonormal_embedding_is_exact_on_every_sparse_input(m: int) -> None:
    """With orthonormal Φ every readout is exact, and with one pair per neuron (q = 1) every
    U-AND neuron sees exactly x_u + x_v - 1, so every layer decodes exactly (to rounding)."""
    d, L, s = 12, 4, 3
    circuit = random_circuit(m, L, (*DEFAULT_GATES, "copy"), seed=m)
    embs = [orthonormal(d, m, seed=10 + i) for i in range(L + 1)]
    cc = compile_circuit(circuit, d, embeddings=embs, seed=0)
    assert all(layer.wiring.sum(axis=1).max() == 2 for layer in cc.layers)
    x = all_sparse_inputs(m, s)
    exact = circuit.evaluate(x)
    for ell, a in enumerate(cc.residuals(x)):
        assert_allclose(cc.decode(a, ell), exact[ell], atol=ROUNDING)
    report = emulate(cc, x)
    assert report.bit_accuracy == (1.0,) * (L + 1)
    assert report.input_accuracy == (1.0,) * (L + 1)
    assert max(report.max_abs_error) < ROUNDING


def test_random_embedding_error_is_within_the_worst_case_bound() -> None:
    r"""Exhaustive over all inputs with <= s ones, Gaussian Φ, q = 1.

    If every readout of the layer input is within ε of its bit, a U-AND neuron of pair (u, v)
    is within 2ε of x_u x_v (ReLU is 1-Lipschitz), so gate g is within β ε,
    β = max |c1| + |c2| + 2|c3|; writing back with Φ' of coherence μ' adds at most
    μ' Σ_g |ŷ_g| <= μ'(s + m β ε). With ε_0 = s μ_0: ε' = β ε + μ'(s + m β ε)."""
    m, d, s, L = 10, 48, 2, 3
    circuit = random_circuit(m, L, seed=3)
    cc = compile_circuit(circuit, d, seed=5)
    x = all_sparse_inputs(m, s)
    report = emulate(cc, x)
    mu = [coherence(e) for e in cc.embeddings]
    eps = s * mu[0]
    assert report.max_abs_error[0] <= eps + ROUNDING
    for ell, layer in enumerate(circuit.layers, start=1):
        c = np.abs(layer.coefficients)
        beta = float((c[:, 1] + c[:, 2] + 2 * c[:, 3]).max())
        eps = beta * eps + mu[ell] * (s + m * beta * eps)
        assert 0 < report.max_abs_error[ell] <= eps + ROUNDING


def test_exported_arrays_reproduce_the_library_with_plain_numpy() -> None:
    m, d, n, s, L = 60, 32, 40, 2, 3
    circuit = random_circuit(m, L, seed=0)
    cc = compile_circuit(circuit, d, neurons=n, seed=1)
    x = to_dense(sample_sparse(m, s, 50, seed=2), m).astype(bool)
    arrays = cc.arrays()
    assert len(arrays["embeddings"]) == L + 1 and len(arrays["layers"]) == L
    assert all(type(v) is np.ndarray for lay in arrays["layers"] for v in lay.values())
    assert all(type(e) is np.ndarray for e in arrays["embeddings"])
    lib = list(cc.residuals(x))
    # plain NumPy, no library: encode, apply every layer, decode
    a = x.astype(np.float64) @ arrays["embeddings"][0].T
    assert_allclose(a, lib[0], rtol=0, atol=ROUNDING)
    a = lib[0]
    for ell, w in enumerate(arrays["layers"], start=1):
        a = a @ w["W_skip"].T + np.maximum(a @ w["W_in"].T + w["b"], 0.0) @ w["W_out"].T
        assert_array_equal(a, lib[ell])
        xhat = a @ arrays["embeddings"][ell]
        assert_allclose(xhat, cc.decode(lib[ell], ell), rtol=0, atol=ROUNDING)
    assert w["W_in"].shape == (n, d) and w["W_out"].shape == (d, n) and w["W_skip"].shape == (d, d)


def test_compile_is_deterministic_and_seeded() -> None:
    circuit = random_circuit(40, 2, seed=0)
    a = compile_circuit(circuit, 16, seed=3)
    b = compile_circuit(circuit, 16, seed=3)
    c = compile_circuit(circuit, 16, seed=4)
    for la, lb in zip(a.layers, b.layers, strict=True):
        for k, v in la.arrays().items():
            assert_array_equal(v, lb.arrays()[k])
    assert not np.array_equal(a.layers[0].W_in, c.layers[0].W_in)
    assert isinstance(a, CompiledCircuit) and a.embed_dim == 16 and a.neurons == 16


def test_deeper_network_extends_the_shallower_one() -> None:
    deep = random_circuit(40, 4, seed=0)
    shallow = Circuit(40, deep.layers[:2])
    a, b = compile_circuit(deep, 16, seed=3), compile_circuit(shallow, 16, seed=3)
    for la, lb in zip(a.layers[:2], b.layers, strict=True):
        for k, v in la.arrays().items():
            assert_array_equal(v, lb.arrays()[k])
    assert_array_equal(random_circuit(40, 2, seed=0).layers[1].left, deep.layers[1].left)


def test_compile_rejects_bad_arguments() -> None:
    circuit = random_circuit(10, 2, seed=0)
    layer = circuit.layers[0]
    e10 = Embedding(10, 8)
    with pytest.raises(ValueError, match="embed_dim must be >= 1, got 0"):
        compile_circuit(circuit, 0)
    with pytest.raises(ValueError, match="neurons must be >= 1, got 0"):
        compile_circuit(circuit, 8, neurons=0)
    with pytest.raises(ValueError, match="neuron_wiring must be one of"):
        compile_circuit(circuit, 8, neuron_wiring="dense")
    with pytest.raises(ValueError, match="p applies to neuron_wiring='bernoulli' only"):
        compile_circuit(circuit, 8, p=0.5)
    with pytest.raises(ValueError, match=r"p must be in \(0.0, 1.0\], got 0.0"):
        compile_circuit(circuit, 8, neuron_wiring="bernoulli", p=0.0)
    with pytest.raises(ValueError, match="phi_in must have 10 columns"):
        compile_layer(layer, Embedding(9, 8), e10)
    with pytest.raises(ValueError, match="phi_out must have 8 rows like phi_in"):
        compile_layer(layer, e10, Embedding(10, 7))
    with pytest.raises(ValueError, match=r"embeddings must have depth \+ 1 = 3 entries"):
        compile_circuit(circuit, 8, embeddings=[e10, e10])
    with pytest.raises(ValueError, match=r"embeddings\[1\] must have shape \(8, 10\)"):
        compile_circuit(circuit, 8, embeddings=[e10, Embedding(10, 9), e10])
    cc = compile_circuit(circuit, 8)
    with pytest.raises(ValueError, match=r"a must have shape \(n_samples, 8\)"):
        cc.layers[0](np.zeros((2, 9)))
    with pytest.raises(ValueError, match="layer must be between 0 and 2, got 3"):
        cc.decode(np.zeros((1, 8)), 3)


# --------------------------------------------------------------------------- emulation


def test_readout_stats_definitions() -> None:
    x = np.array([[1, 0, 0], [0, 1, 0]], dtype=bool)
    xhat = np.array([[0.9, 0.2, -0.1], [0.6, 0.4, 0.0]])
    st = readout_stats(xhat, x)
    assert st["max_abs_error"] == pytest.approx(0.6)
    assert st["mean_abs_error"] == pytest.approx((0.1 + 0.2 + 0.1 + 0.6 + 0.6 + 0.0) / 6)
    assert st["bit_accuracy"] == pytest.approx(4 / 6)
    assert st["input_accuracy"] == 0.5
    with pytest.raises(ValueError, match="xhat must have the shape of x"):
        readout_stats(xhat[:, :2], x)


def test_emulation_is_bit_exact_at_depth_1_and_degrades_with_depth(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A size the chapter names (m = 1500 > d = 1000, s = 2; measured, fixed seed): depth 1
    decodes every bit of every sampled input; without correction the error grows with depth."""
    argv = [
        "circuit",
        "--features",
        "1500",
        "--embed-dim",
        "1000",
        "--sparsity",
        "2",
        "--depth",
        "3",
    ]
    assert main([*argv, "--samples", "300", "--seed", "0", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["layers"]
    assert rows[1]["bit_accuracy"] == 1.0 and rows[1]["input_accuracy"] == 1.0
    assert rows[1]["max_abs_error"] < 0.5
    mean = [r["mean_abs_error"] for r in rows]
    assert np.all(np.diff(mean) > 0)
    assert rows[3]["bit_accuracy"] < 1.0


def test_true_ands_are_the_products_that_are_one() -> None:
    """A gate's AND term is 1 when c3 != 0 and both of its two inputs are 1: and, xor, or,
    andnot count; a copy (c3 = 0) and a one-input gate do not."""
    layer = CircuitLayer.from_gates(
        4,
        [("and", 0, 1), ("xor", 0, 1), ("or", 0, 2), ("andnot", 1, 0), ("x", 0, 1), ("and", 3, 3)],
    )
    x = np.array([[1, 1, 0, 1], [1, 0, 1, 0], [0, 0, 0, 1]], dtype=bool)
    assert_array_equal(
        layer.true_ands(x),
        [[1, 1, 0, 1, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0]],
    )
    cc = compile_circuit(Circuit(4, (layer,)), 3, seed=0)
    assert emulate(cc, x).inputs_with_and == (0.0, 2 / 3)


def test_emulation_report_fields() -> None:
    m, d, s, L = 80, 40, 2, 2
    cc = compile_circuit(random_circuit(m, L, seed=0), d, seed=1)
    x = to_dense(sample_sparse(m, s, 30, seed=2), m).astype(bool)
    r = emulate(cc, x)
    assert r.depth == L and len(r.bit_accuracy) == L + 1
    assert r.max_active[0] == s and max(r.max_active) <= s
    xs = cc.circuit.evaluate(x)
    for ell, a in enumerate(cc.residuals(x)):
        want = readout_stats(cc.decode(a, ell), xs[ell])
        got = r.layer(ell)
        assert got.pop("noise_energy") >= 0.0
        with_and = got.pop("inputs_with_and")
        if ell == 0:
            assert with_and == 0.0
        else:  # brute force: an input counts when some gate with c3 != 0 has both inputs 1
            lay, c3 = cc.circuit.layers[ell - 1], {r["code"]: r["c3"] for r in gate_table()}
            hit = [any(c3[int(lay.code[g])] != 0 and lay.left[g] != lay.right[g]
                       and xs[ell - 1][k, lay.left[g]] and xs[ell - 1][k, lay.right[g]]
                       for g in range(lay.n_gates)) for k in range(x.shape[0])]  # fmt: skip
            assert with_and == np.mean(hit)
        assert got == {"layer": ell, **want, "max_active": int(xs[ell].sum(axis=1).max())}
    d1 = r.to_dict()
    assert d1["final"] == d1["layers"][L] and d1["final"]["layer"] == L


def test_predicted_noise_formula() -> None:
    """Copy gates only: K = m, so E_1 = m s/d and sigma_1^2 = s/d + E_1 (1/m + 1/d)."""
    m, d, s = 10, 5, 2
    circuit = random_circuit(m, 2, ("copy",), seed=0)
    energy, sd = predicted_noise(circuit, d, s)
    e1 = m * s / d
    v1 = s / d + e1 * (1 / m + 1 / d)
    assert_allclose(energy, [0.0, e1, m * v1])
    assert_allclose(sd[:2], np.sqrt([s / d, v1]))


def test_predicted_noise_matches_measurement_while_noise_is_small() -> None:
    """E_1 is a sum of m = 600 squared readout errors per input, averaged over 300 inputs:
    its relative sampling error is a few per cent, so 10 % is a safe bound; the first-layer
    mean |error| of a Gaussian readout is sqrt(2/pi) sigma_0."""
    m, d, s = 600, 300, 2
    circuit = random_circuit(m, 2, seed=0)
    cc = compile_circuit(circuit, d, seed=1)
    x = to_dense(sample_sparse(m, s, 300, seed=2), m).astype(bool)
    r = emulate(cc, x)
    energy, sd = predicted_noise(circuit, d, s)
    assert r.noise_energy[0] < ROUNDING
    assert_allclose(r.noise_energy[1], energy[1], rtol=0.1)
    assert_allclose(r.mean_abs_error[0], np.sqrt(2 / np.pi) * sd[0], rtol=0.1)
    assert r.noise_energy[2] > r.noise_energy[1]


def test_stepping_one_layer_at_a_time_matches_residuals() -> None:
    """The step-able API: apply compiled layers to a residual batch by hand."""
    m, d = 50, 24
    circuit = random_circuit(m, 3, seed=0)
    cc = compile_circuit(circuit, d, seed=1)
    x = to_dense(sample_sparse(m, 2, 20, seed=2), m)
    a = cc.encode(x)
    for layer, want in zip(cc.layers, list(cc.residuals(x))[1:], strict=True):
        a = layer(a)
        assert_array_equal(a, want)


# --------------------------------------------------------------------------- CLI


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["circuit", "--features", "200", "--embed-dim", "120", "--sparsity", "2", "--depth", "3"]
    assert main([*argv, "--samples", "50", "--seed", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_features"] == 200 and out["embed_dim"] == 120 and out["neurons"] == 120
    assert out["gates"] == list(DEFAULT_GATES)
    assert [row["layer"] for row in out["layers"]] == [0, 1, 2, 3]
    for row in out["layers"]:
        assert {"max_abs_error", "mean_abs_error", "bit_accuracy", "input_accuracy"} <= set(row)
        assert 0.0 <= row["bit_accuracy"] <= 1.0
    assert out["final"] == out["layers"][-1]
    assert main([*argv, "--samples", "50", "--seed", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == out  # same seed, same numbers
    assert (
        main([*argv, "--neurons", "64", "--gates", "xor,and,copy", "--json", "--samples", "20"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["neurons"] == 64 and out["gates"] == ["xor", "and", "copy"]


def test_cli_table(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "circuit",
        "--features",
        "100",
        "--embed-dim",
        "80",
        "--sparsity",
        "2",
        "--depth",
        "2",
        "--samples",
        "30",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "bit_accuracy" in text and "max_abs_error" in text
    assert "final layer 2:" in text
    assert len([ln for ln in text.splitlines() if ln.strip()[:1].isdigit()]) == 3


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--sparsity", "11"], "sparsity must be between 1 and features=10, got 11"),
        (["--sparsity", "2", "--gates", "and,nand"], "'nand' has f(0,0) = 1"),
        (["--sparsity", "2", "--gates", "or"], "have no partner"),
        (["--sparsity", "2", "--gates", "xand"], "gate must be one of"),
    ],
)
def test_cli_bad_arguments_exit_2(
    extra: list[str], match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["circuit", "--features", "10", "--embed-dim", "8", "--depth", "2", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err and err.startswith("superposition circuit: error:")


def test_cli_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["circuit", "--features", "10", "--embed-dim", "0", "--sparsity", "2", "--depth", "1"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_gate_names_constant() -> None:
    assert len(GATE_NAMES) == 16 and GATE_NAMES[8] == "and" and GATE_NAMES[6] == "xor"
    assert isinstance(sp.csr_array((1, 1)), sp.sparray)
