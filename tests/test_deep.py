"""Tests for superposition.deep: deep circuits with alternating gate and correction layers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from superposition.circuits import predicted_noise
from superposition.cli import main
from superposition.correction import CodeCorrection
from superposition.deep import CorrectionArrays, DeepNetwork, deep_network, deep_step, run_deep
from superposition.embedding import sample_sparse, to_dense

# Products and clipped units of float64 arrays of a few thousand terms of size <= 1: rounding
# stays below 1e-12 relative to the values (which are O(1)).
EXACT = 1e-12


def inputs(m: int, s: int, k: int, seed: int = 1) -> np.ndarray:
    return to_dense(sample_sparse(m, s, k, seed=seed), m).astype(bool)


def orthonormal_network(m: int, depth: int, seed: int = 0) -> DeepNetwork:
    """Code design with c = 1 block and degree 0: feature k is the unit e_k, so Ψ is orthonormal."""
    base = deep_network(m, 64, 2, depth, design="denoiser", seed=seed)
    code = CodeCorrection(m, 64, field=61, blocks=1, degree=0, seed=seed)
    return DeepNetwork(base.circuit, 64, 64, design="code", code=code, dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# exact cases


def test_orthonormal_embedding_is_exact_through_many_layers() -> None:
    # Ψ orthonormal (m = 40 <= d = 64): every readout is exactly 0 or 1, every U-AND neuron of a
    # targeted pair computes ReLU(x_u + x_v - 1) = x_u x_v exactly, so with or without correction
    # every layer decodes exactly, at any depth.
    net = orthonormal_network(40, 200)
    assert_allclose(
        net.code.embedding_matrix().T @ net.code.embedding_matrix(), np.eye(40), atol=EXACT
    )
    res = run_deep(net, inputs(40, 2, 30), record_every=1)
    for trace in (res.corrected, res.uncorrected):
        assert trace.depth_survived == 200 and trace.diverged_at is None
        assert np.all(trace.bit_accuracy == 1.0) and np.all(trace.input_accuracy == 1.0)
        assert trace.max_error.max() < 1e-12
    assert_array_equal(res.corrected.layers, np.arange(201))


def test_denoiser_resets_the_state_to_the_clean_encoding() -> None:
    # m = 100, d = 1000, s = 2: a gate output's readout error has std about
    # sqrt(2s/d + s m / d^2) = 0.064, so leaving the 0.35 margin is a 5.5-sigma event; union
    # bound over L * K * m = 30 * 20 * 100 readouts: 6e4 * 4e-8 < 3e-3. Inside the margins the
    # denoiser's output is exactly Φ_l x^(l), whatever the gate noise was.
    net = deep_network(100, 1000, 2, 30, dtype=np.float64, seed=3)
    x = inputs(100, 2, 20, seed=4)
    r = net.readout(net.encode(x), 0)
    for ell in range(1, 31):
        x = net.circuit.layers[ell - 1].evaluate(x)
        a = net.gate_step(ell, r)
        r = net.readout(a, ell)
        clean = net.encode(x, ell)
        assert np.abs(a - clean).max() > 1e-3  # the gate layer is noisy ...
        a = net.correct(a, r, ell)
        assert_allclose(a, clean, atol=EXACT)  # ... the correction layer removes all of it
        r = net.readout(a, ell)


# ---------------------------------------------------------------------------------------------
# the factored step is the compiled network


@pytest.mark.parametrize("design", ["denoiser", "code"])
def test_factored_gate_layer_equals_the_compiled_layer(design: str) -> None:
    net = deep_network(120, 300, 2, 3, design=design, blocks=5, dtype=np.float64, seed=5)
    x = inputs(120, 2, 10)
    rng = np.random.default_rng(0)
    a = net.encode(x) + 0.05 * rng.standard_normal((10, 300))
    for ell in (1, 2, 3):
        compiled = net.gate_layer(ell)
        assert compiled.neurons == net.gate_neurons == 300
        mine = net.gate_step(ell, net.readout(a, ell - 1))
        assert_allclose(mine, compiled(a), rtol=1e-10, atol=EXACT)
        a = mine


def test_correct_is_the_correction_layer() -> None:
    for design in ("denoiser", "code"):
        net = deep_network(121, 400, 3, 2, design=design, blocks=8, dtype=np.float64, seed=2)
        x = inputs(121, 3, 15)
        a = net.encode(x, 1) + 0.2 * np.random.default_rng(1).standard_normal((15, 400))
        layer = net.correction(1)
        assert layer.neurons == net.correction_neurons
        out = net.correct(a, net.readout(a, 1), 1)
        assert_allclose(out, layer.step(a), atol=EXACT)
    assert net.correction_neurons == 2 * 8 * 11  # 2cq with q = 11 (q >= c, q^2 >= 121)


@pytest.mark.parametrize("design", ["denoiser", "code"])
def test_deep_step_is_the_gate_and_correction_layers(design: str) -> None:
    # deep_step on the network's own arrays (what run_deep and an exported network call) is
    # gate_step, readout and correct, in the same arithmetic: equal bit for bit.
    net = deep_network(121, 400, 3, 2, design=design, blocks=8, seed=2)
    x = inputs(121, 3, 15)
    r = net.readout(net.encode(x), 0)
    emb = net.embedding(1)
    rows = np.ascontiguousarray((emb if isinstance(emb, np.ndarray) else emb.matrix()).T)
    step = deep_step(r, net.gate_factors(1), rows, correction=net.correction_arrays())
    gate = net.gate_step(1, r)
    assert_array_equal(step.gate, gate)
    assert_array_equal(step.gate_readout, net.readout(gate, 1))
    assert_array_equal(step.state, net.correct(gate, net.readout(gate, 1), 1))
    assert_array_equal(step.readout, net.readout(step.state, 1))
    assert step.state.dtype == np.float32  # the network's dtype, as every state
    plain = deep_step(r, net.gate_factors(1), rows)
    assert plain.state is plain.gate and plain.readout is plain.gate_readout


def test_deep_step_rejects_bad_arguments() -> None:
    net = deep_network(60, 100, 2, 1, seed=0)
    f, r = net.gate_factors(1), np.zeros((3, 60), np.float32)
    rows = np.zeros((60, 100), np.float32)
    with pytest.raises(ValueError, match="readout must have shape"):
        deep_step(r[:, :50], f, rows)
    with pytest.raises(ValueError, match="rows must have shape"):
        deep_step(r, f, rows[:50])
    with pytest.raises(ValueError, match="and_bias"):
        deep_step(r, f, rows, and_bias=2.0)
    with pytest.raises(ValueError, match="factors"):
        deep_step(r, "f", rows)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="correction"):
        deep_step(r, f, rows, correction=(0.4, 0.6))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hi"):
        CorrectionArrays(0.6, 0.4)
    with pytest.raises(ValueError, match="ell"):
        net.gate_factors(2)


def _plain_network(net: DeepNetwork) -> list[tuple[dict[str, np.ndarray], tuple[np.ndarray, ...]]]:
    """Every layer of ``net`` as plain NumPy arrays: (gate layer arrays, correction weights)."""
    layers = []
    for ell in range(1, net.depth + 1):
        gate = net.gate_layer(ell).arrays()
        layers.append((gate, net.correction(ell).weights()))
    return layers


def _phi(net: DeepNetwork, ell: int) -> np.ndarray:
    emb = net.embedding(ell)
    return np.asarray(emb if isinstance(emb, np.ndarray) else emb.matrix(), dtype=np.float64)


@pytest.mark.parametrize(
    ("design", "m", "d", "code"),
    [("denoiser", 90, 400, {}), ("code", 30, 204, {"blocks": 12, "field": 17})],
)
def test_plain_numpy_mlp_gives_the_same_records(design: str, m: int, d: int, code: dict) -> None:
    # The 2L-layer network written out as dense matrices and run with nothing but matrix
    # products and ReLUs: a <- W_skip a + W_out ReLU(W_in a + b) (gate layer), then
    # a <- W_out' ReLU(W_in' a + b') (correction layer). run_deep's factored, sparse, cached
    # evaluation must record the same errors and the same bits, with and without correction.
    # The sizes make the uncorrected network lose bits within the depth (checked below), so
    # the comparison covers both regimes.
    s, depth, k = 2, 6, 12
    net = deep_network(m, d, s, depth, design=design, dtype=np.float64, seed=4, **code)
    x = inputs(m, s, k, seed=5)
    res = run_deep(net, x, record_every=1)
    plain = _plain_network(net)
    for name, corrected in (("corrected", True), ("uncorrected", False)):
        trace = getattr(res, name)
        xl = x.astype(np.float64)
        a = xl @ _phi(net, 0).T
        r = a @ _phi(net, 0)
        max_err, bits = [np.abs(r - xl).max()], [float(((r > 0.5) == xl).mean())]
        for ell, (g, (c_in, c_b, c_out)) in enumerate(plain, start=1):
            xl = net.circuit.layers[ell - 1].evaluate(xl.astype(bool)).astype(np.float64)
            a = a @ g["W_skip"].T + np.maximum(a @ g["W_in"].T + g["b"], 0.0) @ g["W_out"].T
            if corrected:
                a = np.maximum(a @ c_in.T + c_b, 0.0) @ c_out.T
            r = a @ _phi(net, ell)
            max_err.append(np.abs(r - xl).max())
            bits.append(float(((r > 0.5) == xl).mean()))
        assert_allclose(trace.max_error, max_err, rtol=1e-9, atol=1e-9)
        assert_array_equal(trace.bit_accuracy, bits)
    assert res.corrected.depth_survived == depth
    assert res.uncorrected.depth_survived < depth


def test_wrong_bits_in_the_encoded_input_mean_nothing_survived() -> None:
    # 400 features in 20 dimensions: the encoded input already reads wrong (crosstalk std
    # sqrt(3/20) = 0.39 over 400 features), so no layer counts as survived.
    net = deep_network(400, 20, 3, 3, seed=0)
    res = run_deep(net, inputs(400, 3, 10), uncorrected=False)
    assert res.corrected.input_accuracy[0] < 1.0
    assert res.corrected.depth_survived == 0


# ---------------------------------------------------------------------------------------------
# determinism and records


def test_same_seed_same_bits_and_records() -> None:
    x = inputs(300, 3, 20)
    runs = [run_deep(deep_network(300, 500, 3, 12, seed=7), x, record_every=5) for _ in range(2)]
    for name in ("corrected", "uncorrected"):
        a, b = getattr(runs[0], name), getattr(runs[1], name)
        for field in ("max_error", "mean_error", "bit_accuracy", "gate_error"):
            assert_array_equal(getattr(a, field), getattr(b, field))
        assert_array_equal(a.layers, [0, 5, 10, 12])
    other = deep_network(300, 500, 3, 12, seed=8)
    assert not np.array_equal(
        other.circuit.layers[0].left, deep_network(300, 500, 3, 12, seed=7).circuit.layers[0].left
    )
    # a deeper network extends the shallower one: same first layers, same records
    deeper = run_deep(deep_network(300, 500, 3, 20, seed=7), x, record_every=5)
    assert_array_equal(deeper.corrected.max_error[:3], runs[0].corrected.max_error[:3])


def test_float32_decodes_the_same_bits() -> None:
    x = inputs(200, 2, 20)
    r32 = run_deep(deep_network(200, 800, 2, 15, seed=1), x).corrected
    r64 = run_deep(deep_network(200, 800, 2, 15, seed=1, dtype=np.float64), x).corrected
    assert_array_equal(r32.bit_accuracy, r64.bit_accuracy)
    # float32 rounding (~1e-7 relative) of readouts of size <= ~1.5
    assert_allclose(r32.max_error, r64.max_error, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# with and without correction


def test_correction_keeps_every_bit_where_the_uncorrected_network_fails() -> None:
    m, d, s, depth, k = 600, 1000, 2, 40, 40
    net = deep_network(m, d, s, depth, seed=11)
    # Uncorrected: noise energy grows by about (1 + m/d) = 1.6 per layer; the predicted readout
    # std passes 1 (every bit a coin flip) well before layer 40.
    _, sd = predicted_noise(net.circuit, d, s)
    assert sd[-1] > 1.0
    # Corrected: every gate output is read with std about sqrt(2s/d + s m/d^2) = 0.072; a bit
    # flips only past 0.5 = 6.9 std. Union bound over L * K * m = 40 * 40 * 600 readouts:
    # 1e6 * 2 * P(N > 6.9) < 1e-5.
    res = run_deep(net, inputs(m, s, k, seed=12), record_every=1)
    assert res.corrected.depth_survived == depth
    assert np.all(res.corrected.bit_accuracy == 1.0)
    assert res.corrected.max_error.max() < 0.5
    unc = res.uncorrected
    assert unc.depth_survived < depth // 2
    assert np.nanmin(unc.bit_accuracy) < 0.99
    # the corrected run's gate outputs are noisy, its states are not noisier than the encoding
    assert np.all(res.corrected.gate_error[1:] > res.corrected.max_error[0])


def test_uncorrected_run_stops_when_it_diverges() -> None:
    net = deep_network(600, 300, 3, 60, seed=2)  # growth (1 + m/d) = 3 per layer
    res = run_deep(net, inputs(600, 3, 10), corrected=False, blowup=1e3, record_every=10)
    unc = res.uncorrected
    assert res.corrected is None and unc.diverged_at is not None and unc.diverged_at < 60
    after = unc.layers >= unc.diverged_at
    assert np.all(np.isnan(unc.max_error[after])) and np.all(np.isfinite(unc.max_error[~after]))
    assert unc.layers[-1] == 60


def test_code_design_fails_when_junk_is_copied() -> None:
    # Default field: q^2 >= m, so every unit belongs to about m/q codes; the gate layer copies
    # every inactive feature's junk (mean s/q) and each unit collects about s m / q^2 = 2.2 of
    # it (m = 1000, q = 37, s = 3): beyond the 0.35 margin, the first correction saturates.
    net = deep_network(1000, 600, 3, 3, design="code", seed=0)
    assert (net.code.field, net.code.blocks) == (37, 16)
    res = run_deep(net, inputs(1000, 3, 10), uncorrected=False)
    assert res.corrected.gate_error[1] > 1.0 and res.corrected.depth_survived == 0


# ---------------------------------------------------------------------------------------------
# arguments


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: deep_network(1, 10, 1, 1), "n_features"),
        (lambda: deep_network(10, 10, 11, 1), "sparsity"),
        (lambda: deep_network(10, 10, 2, 0), "depth"),
        (lambda: deep_network(10, 10, 2, 1, design="bogus"), "design"),
        (lambda: deep_network(100, 400, 3, 1, design="code", blocks=6), "blocks"),
        (lambda: deep_network(100, 100, 3, 1, design="code"), "embed_dim"),
        (lambda: deep_network(100, 400, 3, 1, design="code", field=18), "prime"),
        (lambda: deep_network(10, 10, 2, 1, dtype=np.int32), "dtype"),
        (lambda: deep_network(10, 10, 2, 1, and_bias=2.0), "and_bias"),
        (lambda: DeepNetwork(deep_network(10, 10, 2, 1).circuit, 10, 10, design="code"), "code"),
    ],
)
def test_bad_arguments(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


def test_bad_run_arguments() -> None:
    net = deep_network(10, 20, 2, 2)
    x = inputs(10, 2, 3)
    with pytest.raises(ValueError, match="at least one"):
        run_deep(net, x, corrected=False, uncorrected=False)
    with pytest.raises(ValueError, match="shape"):
        run_deep(net, x[:, :5])
    with pytest.raises(ValueError, match="record_every"):
        run_deep(net, x, record_every=0)
    with pytest.raises(ValueError, match="network"):
        run_deep("net", x)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# command line


def test_cli_json_with_and_without_correction(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["deep", "--features", "600", "--embed-dim", "1000", "--sparsity", "2", "--depth", "30"]
    argv += ["--samples", "30", "--json"]
    assert main(argv) == 0
    on = json.loads(capsys.readouterr().out)
    assert main([*argv, "--no-correction"]) == 0
    off = json.loads(capsys.readouterr().out)
    assert on["correction"] and not off["correction"]
    assert on["correction_neurons"] == 1200 and on["gate_neurons"] == 1000
    # same circuit, same inputs: the encoded input (layer 0) reads identically
    assert on["layers"][0] == off["layers"][0]
    # justified as in test_correction_keeps_every_bit_where_the_uncorrected_network_fails
    assert on["final_bit_accuracy"] == 1.0 and on["depth_survived"] == 30
    assert off["depth_survived"] < 15
    assert off["final_bit_accuracy"] is None or off["final_bit_accuracy"] < 1.0
    assert [row["layer"] for row in on["layers"]] == list(range(31))


def test_cli_prints_the_library_run(capsys: pytest.CaptureFixture[str]) -> None:
    # The command uses deep_network(seed) and inputs drawn with seed + 1, as the book does, so
    # its records are the library's (the chapter quotes the same command for its figure).
    argv = ["deep", "--features", "150", "--embed-dim", "300", "--sparsity", "2", "--depth", "12"]
    assert main([*argv, "--samples", "8", "--seed", "3", "--every", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    net = deep_network(150, 300, 2, 12, seed=3)
    x = to_dense(sample_sparse(150, 2, 8, seed=4), 150).astype(bool)
    trace = run_deep(net, x, uncorrected=False, record_every=4).corrected
    assert [row["layer"] for row in out["layers"]] == [0, 4, 8, 12]
    assert_array_equal([row["max_error"] for row in out["layers"]], trace.max_error)
    assert_array_equal([row["bit_accuracy"] for row in out["layers"]], trace.bit_accuracy)
    assert out["depth_survived"] == trace.depth_survived


def test_cli_table(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["deep", "--features", "100", "--embed-dim", "300", "--sparsity", "2", "--depth", "250"]
    assert main([*argv, "--samples", "5", "--design", "code", "--blocks", "5"]) == 0
    out = capsys.readouterr().out
    assert "code (q, c, r)" in out and "final layer 250" in out
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 1 + 125  # layer 0, then every 2nd layer (250 // 100 = 2)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--sparsity", "200"], "sparsity"),
        (["--sparsity", "2", "--design", "code", "--blocks", "4"], "blocks"),
        (["--sparsity", "2", "--design", "code", "--field", "1009"], "embed_dim"),
        (["--sparsity", "2", "--design", "bogus"], "--design"),
        (["--sparsity", "0"], "--sparsity"),
        (["--sparsity", "2", "--every", "0"], "--every"),
    ],
)
def test_cli_bad_arguments_exit_2(
    extra: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["deep", "--features", "100", "--embed-dim", "300", "--depth", "2", *extra]
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# circuits whose ANDs fire, gate layers in superposition, grouped correction (issue 17)


def test_run_reports_the_ones_and_the_and_firings_of_the_exact_circuit() -> None:
    from superposition.collisions import colliding_inputs, track_ones

    net = deep_network(400, 600, 3, 12, gates=("and", "or"), dtype=np.float64, seed=2)
    active = colliding_inputs(net.circuit, 3, 10, seed=3)
    res = run_deep(net, to_dense(active, 400).astype(bool), record_every=4)
    trace = track_ones(net.circuit, active)
    assert_array_equal(res.ones_per_layer, trace.ones_per_layer)
    assert_array_equal(res.and_fires, trace.and_fires)
    assert np.all(res.ones_per_layer == 3)
    assert res.total_and_fires == trace.total_and_fires > 0
    counts = res.counts()
    assert counts["gates_per_layer"] == 400 and counts["gate_neurons"] == 600
    assert counts["correction_neurons"] == 800
    assert counts["ones_per_layer"]["min"] == [3] * 13
    assert sum(counts["and_fires"]["per_layer"]) == counts["and_fires"]["total"]


@pytest.mark.parametrize(("q", "r"), [(3, None), (None, 4)])
def test_targeted_gate_layers_hold_q_pairs_per_neuron_and_r_neurons_per_product(q, r) -> None:
    # m = 200 values in {and, or} blocks: P = 100 products per layer on n = 50 neurons.
    net = deep_network(
        200, 300, 2, 2, gates=("and", "or"), gate_neurons=50, pairs_per_neuron=q,
        neurons_per_product=r, seed=0,
    )  # fmt: skip
    layer = net.gate_layer(1)
    per_product = layer.readout_sizes
    want_r = 3 * 50 // 100 if r is None else r  # nq/P, dealt evenly (q = rP/n = 8 for r = 4)
    assert per_product.min() >= want_r - 1 and per_product.max() <= want_r + 1
    assert abs(per_product.mean() - want_r) <= 1


def test_bernoulli_gate_wiring_runs_and_is_the_compiled_layer() -> None:
    net = deep_network(60, 400, 2, 3, gate_wiring="bernoulli", p=0.3, dtype=np.float64, seed=1)
    layer = net.gate_layer(2)
    assert layer.wiring.nnz > 0.2 * 60 * 400
    x = inputs(60, 2, 5)
    a = net.encode(x)
    r = net.readout(a, 1)
    assert_allclose(net.gate_step(2, r), layer(a), atol=1e-9)


@pytest.mark.parametrize("write", ["units", "phi"])
def test_grouped_design_step_is_its_correction_layer(write: str) -> None:
    # deep_step's grouped correction (sparse, from the readout) is GroupedCorrection.step, and
    # the readout it passes on is what the next layer reads (ψ_k·a' for the unit write).
    net = deep_network(
        300, 420, 3, 3, design="grouped", groups_per_class=60, write=write, dtype=np.float64,
        seed=1,
    )  # fmt: skip
    assert net.correction_neurons == 2 * 420
    x = inputs(300, 3, 8)
    r = net.readout(net.encode(x), 0)
    step = deep_step(r, net.gate_factors(1), net._rows(1), correction=net.correction_arrays())
    layer = net.correction(1)
    assert_allclose(step.state, layer.step(step.gate), atol=1e-9)
    assert_allclose(step.readout, next(layer.readout_blocks(step.state, "out"))[1], atol=1e-9)


def test_grouped_design_keeps_a_copy_circuit_exact_with_fewer_relus_than_2m() -> None:
    # Copy circuit, m = 600 features, d = 2048, n_u = 2044 units (c = 7, groups of G = 2):
    # research for issue 17 measured a capacity of 1538-1673 features at this width, so 600
    # must pass every layer.
    net = deep_network(600, 2048, 3, 20, design="grouped", gates=("copy",), seed=0)
    res = run_deep(net, inputs(600, 3, 20))
    assert res.corrected.depth_survived == 20
    assert res.total_and_fires == 0  # copies compute no product


def test_capacity_search_in_the_copy_circuit() -> None:
    from superposition.deep import capacity_search

    # d = 1000: the denoiser keeps about 600 features exact (research for issue 17: 575 and 740
    # over 50 layers); a budget of 1000 ReLUs caps it at m = 500, which the search must find.
    res = capacity_search(
        "denoiser", 1000, depth=5, n_samples=20, budget=1000, low=100, resolution=0.05
    )
    assert 470 <= res.m_max <= 500
    assert all(ok for m, ok in res.trials if m <= 500)
    assert not any(ok for m, ok in res.trials if m > 500)


def test_capacity_search_checks_its_arguments_and_keeps_the_budget() -> None:
    """Bad arguments are errors, not a design that "does not fit" (which would read as a
    capacity); the code design, whose length grows with m, stays within the budget."""
    from superposition.deep import capacity_search

    with pytest.raises(ValueError, match="hi must be in"):
        capacity_search("denoiser", 64, lo=0.9, hi=0.1, depth=2, n_samples=2)
    with pytest.raises(ValueError, match="write"):
        capacity_search("grouped", 64, write="basis", depth=2, n_samples=2)
    from superposition.deep import CAPACITY_GATES

    kw = dict(depth=2, n_samples=4, low=16, high=400, resolution=0.2)
    free = capacity_search("code", 512, **kw)  # m_max = 32 here, with 544 correction ReLUs
    net = deep_network(free.m_max, 512, 3, 2, gate_neurons=1, design="code",
                       gates=CAPACITY_GATES, blocks=16, seed=0)  # fmt: skip
    need = net.correction_neurons
    assert capacity_search("code", 512, budget=need, **kw).m_max == free.m_max
    tight = capacity_search("code", 512, budget=need - 1, **kw)
    assert tight.m_max < free.m_max and not any(ok for m, ok in tight.trials if m >= free.m_max)


def test_deep_network_rejects_bad_grouped_and_wiring_arguments() -> None:
    with pytest.raises(ValueError, match="blocks must be > 2"):
        deep_network(300, 420, 3, 2, design="grouped", blocks=6)
    with pytest.raises(ValueError, match="lo must be >"):
        deep_network(300, 420, 3, 2, design="grouped", lo=0.4, hi=0.7)
    with pytest.raises(ValueError, match="groups_per_class must be <="):
        deep_network(300, 420, 3, 2, design="grouped", groups_per_class=61)
    with pytest.raises(ValueError, match="not both"):
        deep_network(60, 100, 2, 2, pairs_per_neuron=2, neurons_per_product=2)
    with pytest.raises(ValueError, match="targeted"):
        deep_network(60, 100, 2, 2, gate_wiring="bernoulli", pairs_per_neuron=2)
    with pytest.raises(ValueError, match="gate_wiring"):
        deep_network(60, 100, 2, 2, gate_wiring="random")


def test_cli_colliding_inputs_report_and_firings_and_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # {and, or} blocks conserve the ones: every layer of every input has exactly s = 3, and
    # colliding inputs fire at least s - 1 = 2 products each (test_collisions); the JSON is the
    # library's run on the same network and inputs.
    from superposition.collisions import colliding_inputs

    argv = ["deep", "--features", "400", "--embed-dim", "600", "--sparsity", "3", "--depth", "20"]
    argv += ["--gates", "and,or", "--inputs-kind", "colliding", "--samples", "6", "--json"]
    argv += ["--gate-neurons", "100", "--neurons-per-product", "2", "--and-bias", "1.3"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["gates_per_layer"] == 400 and out["gate_neurons"] == 100
    assert out["correction_neurons"] == 800 and out["inputs_kind"] == "colliding"
    assert out["ones_per_layer"]["min"] == [3] * 21 == out["ones_per_layer"]["max"]
    assert out["and_fires"]["per_input_min"] >= 2
    net = deep_network(
        400, 600, 3, 20, gates=("and", "or"), gate_neurons=100, neurons_per_product=2,
        and_bias=1.3, seed=0,
    )  # fmt: skip
    x = to_dense(colliding_inputs(net.circuit, 3, 6, seed=1), 400).astype(bool)
    res = run_deep(net, x, uncorrected=False)
    assert out["and_fires"]["total"] == res.total_and_fires
    assert out["depth_survived"] == res.corrected.depth_survived
    assert [row["and_fires"] for row in out["layers"]] == list(res.and_fires.sum(axis=0))


def test_cli_grouped_design(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["deep", "--features", "300", "--embed-dim", "1024", "--sparsity", "3", "--depth", "5"]
    argv += ["--design", "grouped", "--gates", "copy", "--samples", "5", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["design"] == "grouped" and out["blocks"] == 7 and out["write"] == "units"
    assert out["correction_neurons"] == 2 * 7 * (1024 // 7)
    assert out["and_fires"]["total"] == 0


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["deep", "--design", "grouped", "--blocks", "6"], "blocks"),
        (["deep", "--design", "grouped", "--lo", "0.3"], "lo"),
        (["deep", "--gate-wiring", "random"], "--gate-wiring"),
        (["deep", "--inputs-kind", "aimed"], "--inputs-kind"),
        (["deep", "--gates", "and,nand"], "nand"),
        (["deep", "--pairs-per-neuron", "2", "--neurons-per-product", "2"], "not both"),
        (["deep", "--features", "10000000", "--embed-dim", "100000"], "GiB"),
        (["capacity", "--design", "grouped", "--embed-dim", "1000", "--blocks", "5"], "blocks"),
        (["capacity", "--design", "denoiser", "--embed-dim", "100000000"], "GiB"),
        (["capacity", "--design", "bogus", "--embed-dim", "100"], "--design"),
        (
            [
                "capacity",
                "--design",
                "denoiser",
                "--embed-dim",
                "100",
                "--low",
                "50",
                "--high",
                "20",
            ],
            "high",
        ),
    ],
)
def test_cli_issue17_bad_arguments_exit_2(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if argv[0] == "deep":
        base = ["--features", "300", "--embed-dim", "1024", "--sparsity", "3", "--depth", "2"]
        argv = [argv[0], *base, *argv[1:]]
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err and "Traceback" not in err


def test_cli_capacity_json(capsys: pytest.CaptureFixture[str]) -> None:
    # Same search as test_capacity_search_in_the_copy_circuit, through the command line.
    argv = ["capacity", "--design", "denoiser", "--embed-dim", "1000", "--depth", "5"]
    argv += ["--samples", "20", "--budget", "1000", "--low", "100", "--seeds", "0", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["design"] == "denoiser" and out["embed_dim"] == 1000
    assert 470 <= out["m_max"][0] <= 500
    assert out["seeds"][0]["trials"][0] == [100, True]


@pytest.mark.parametrize("write", ["units", "phi"])
def test_grouped_unit_noise_after_a_copy_layer_follows_the_derivation(write: str) -> None:
    # Steady state: feature values v_k = t_k / c exactly (every unit 0 or 1). One copy layer
    # reads them, permutes and writes them through Φ; a unit then reads its G copied values
    # plus noise of variance G |v|^2 / d (the crosstalk of Φy; the unit-basis read is exact)
    # or G |v|^2 (2/d + m/d^2) (write="phi": the read of v through Φ adds |v|^2/d per feature,
    # copied onto every feature and written again). Research for issue 17 measured both within
    # 2 %; here K * n_u = 60 * 980 reads of a Gaussian-like noise: the sample variance is
    # within 10 % of the prediction (its relative standard error is about sqrt(2 / 6e4) plus
    # the spread of |v|^2 over inputs, both far below 10 %).
    from superposition.embedding import sample_sparse as draw
    from superposition.kernels import sparse_matmul

    m, d, c, g, s = 1000, 1000, 7, 140, 3
    net = deep_network(
        m, d, s, 1, design="grouped", gates=("copy",), blocks=c, groups_per_class=g,
        write=write, dtype=np.float64, seed=3,
    )  # fmt: skip
    layer = net.correction(1)
    active = draw(m, s, 60, seed=4)
    v = layer.values(active)  # (K, m), exact t_k / c
    fix = net.correction_arrays()
    rows = net._rows(0)
    if write == "units":
        x = to_dense(active, m)
        u = (sparse_matmul(x, fix.incidence) > 0).astype(np.float64)  # units holding an active
        readout = sparse_matmul(u, fix.mean)
        assert_allclose(readout, v, atol=EXACT)
    else:
        readout = (v @ rows) @ rows.T  # Φᵀ Φ v
    factors = net.gate_factors(1)
    step = deep_step(readout, factors, rows)
    z = sparse_matmul(step.gate_readout, fix.incidence)
    direct = sparse_matmul(sparse_matmul(v, factors.linear_t), fix.incidence)
    noise = z - direct
    norm2 = (v**2).sum(axis=1).mean()
    G = m / g
    want = G * norm2 * (1 / d if write == "units" else 2 / d + m / d**2)
    assert_allclose(noise.var(), want, rtol=0.1)
