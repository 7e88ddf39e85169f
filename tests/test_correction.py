"""Tests for superposition.correction: the correction layers and their measurements."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from superposition.correction import (
    CodeCorrection,
    FeatureDenoiser,
    capacity,
    chain,
    code_design,
    code_for_budget,
    correction_step,
    denoiser_for_budget,
    fresh_denoisers,
    noise_tolerance,
    reed_solomon_codes,
)
from superposition.embedding import Embedding, sample_sparse, to_dense

# Outputs of a saturated layer are sums of at most a few hundred unit-norm vectors with
# coefficients exactly 0 or ±1; float64 rounding of such sums is far below 1e-12.
EXACT = 1e-12
MARGIN = 0.35  # min(lo, 1 - hi) for the default lo = 0.35, hi = 0.65


def relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


def all_sparse(m: int, s: int) -> np.ndarray:
    return np.array(list(combinations(range(m), s)), dtype=np.int64)


def junk(layer: CodeCorrection, active: np.ndarray) -> np.ndarray:
    """Combinatorial prediction of each feature's readout after correction: t_k / c."""
    on = np.zeros((active.shape[0], layer.n_units), dtype=bool)
    for j in range(active.shape[1]):
        np.put_along_axis(on, layer.codes[active[:, j]], True, axis=1)
    return on[:, layer.codes].sum(axis=2) / layer.blocks


# ---------------------------------------------------------------------------------------------
# Reed–Solomon codes


@pytest.mark.parametrize(("q", "c", "r"), [(7, 5, 1), (7, 7, 2), (5, 3, 0)])
def test_rs_codes_share_at_most_degree_units(q: int, c: int, r: int) -> None:
    codes = reed_solomon_codes(q, c, r, q ** (r + 1))
    assert codes.shape == (q ** (r + 1), c)
    # one unit per block, inside the block
    assert np.all(codes // q == np.arange(c)[None, :])
    onehot = np.zeros((codes.shape[0], c * q))
    np.put_along_axis(onehot, codes, 1.0, axis=1)
    shared = onehot @ onehot.T
    np.fill_diagonal(shared, 0)
    assert shared.max() == min(r, c)  # the bound is attained, never exceeded
    assert len({tuple(row) for row in codes}) == codes.shape[0]  # distinct codes


def test_code_design_picks_fewest_neurons() -> None:
    assert code_design(961, 3) == (31, 8, 1)
    q, c, r = code_design(5000, 3)
    assert q ** (r + 1) >= 5000 and r * 3 / c <= 0.375 and c <= q
    assert 2 * c * q < 5000  # fewer neurons than features
    assert code_design(100, 3, max_degree=1) == (11, 8, 1)


# ---------------------------------------------------------------------------------------------
# exactness inside the margins


def test_code_correction_exhaustive_small() -> None:
    """All 1- and 2-sparse inputs of m = 25 (q = c = 5, r = 1, s = 2: junk ≤ 2/5 < 1/2)."""
    layer = CodeCorrection(25, 40, field=5, blocks=5, degree=1, seed=3)
    for s in (1, 2):
        act = all_sparse(25, s)
        x = to_dense(act, 25)
        out = layer.step(layer.encode(act))
        read = np.concatenate([r for _, r in layer.readout_blocks(out)], axis=1)
        predicted = junk(layer, act)
        assert_allclose(read, predicted, atol=EXACT)
        assert_allclose(read[x == 1], 1.0, atol=EXACT)
        assert predicted[x == 0].max() <= layer.junk_bound(s)
        assert np.array_equal(read > 0.5, x == 1)
        # its own output is a fixed point
        assert_allclose(layer.step(out), out, atol=EXACT)


def test_code_correction_exact_inside_margins_and_not_outside() -> None:
    layer = CodeCorrection(961, 300, field=31, blocks=8, degree=1, seed=1)
    act = sample_sparse(961, 3, 40, seed=2)
    clean = layer.step(layer.encode(act))
    rng = np.random.default_rng(5)
    # unit errors v_i, |v_i| < margin: with orthonormal units, sqrt(c) e_i . (E v / sqrt(c)) = v_i
    v = rng.uniform(-0.99 * MARGIN, 0.99 * MARGIN, size=(40, layer.n_units))
    delta = v @ layer.units.T / np.sqrt(layer.blocks)
    for start in (layer.encode(act), clean):
        assert_allclose(layer.unit_reads(start + delta) - layer.unit_reads(start), v, atol=1e-10)
        assert_allclose(layer.step(start + delta), clean, atol=EXACT)
    # one unit error just past the margin must change the output
    bad = np.zeros_like(v)
    off_unit = int(np.flatnonzero(layer.unit_reads(clean)[0] < 0.5)[0])
    bad[0, off_unit] = 1.05 * MARGIN
    moved = layer.step(clean + bad @ layer.units.T / np.sqrt(layer.blocks))
    leak = (1.05 * MARGIN - layer.lo) / (layer.hi - layer.lo) / np.sqrt(layer.blocks)
    assert_allclose(np.linalg.norm(moved - clean), leak, rtol=1e-9)


@pytest.mark.parametrize("fresh_out", [False, True])
def test_denoiser_exact_inside_margins(fresh_out: bool) -> None:
    m, d = 60, 400
    emb = Embedding(m, d, seed=11)
    out_emb = Embedding(m, d, seed=12) if fresh_out else None
    layer = FeatureDenoiser(emb, out_emb)
    act = sample_sparse(m, 3, 30, seed=4)
    x = to_dense(act, m)
    a = layer.encode(act) + 0.01 * np.random.default_rng(6).standard_normal((30, d))
    read = emb.readout(a)
    # precondition of the guarantee: every readout inside its margin
    assert np.all(np.where(x == 1, read > layer.hi, read < layer.lo))
    assert_allclose(correction_step(layer, a), layer.output.embed(act), atol=EXACT)


def test_plain_weights_reproduce_layers() -> None:
    layers = [
        FeatureDenoiser(Embedding(300, 64, seed=1), Embedding(300, 64, kind="sign", seed=2)),
        CodeCorrection(121, 100, field=11, blocks=8, degree=1, seed=2),
        CodeCorrection(121, 50, field=11, blocks=8, degree=1, seed=2),  # units in superposition
    ]
    rng = np.random.default_rng(0)
    for layer in layers:
        w_in, b, w_out = layer.weights()
        n, d = layer.n_neurons, layer.width
        assert w_in.shape == (n, d) and b.shape == (n,) and w_out.shape == (d, n)
        act = sample_sparse(layer.n_features, 3, 20, seed=1)
        a = layer.encode(act) + 0.1 * rng.standard_normal((20, d))
        assert_allclose(relu(a @ w_in.T + b) @ w_out.T, layer.step(a), atol=EXACT)


# ---------------------------------------------------------------------------------------------
# chains over depth (fixed seeds, bounds justified in comments)


def test_code_chain_keeps_bits_and_fails_under_large_noise() -> None:
    layer = CodeCorrection(121, 100, field=11, blocks=8, degree=1, seed=0)
    act = sample_sparse(121, 3, 50, seed=1)
    floor = junk(layer, act)[to_dense(act, 121) == 0].max()
    # sigma = 0.01: each unit read has noise N(0, c sigma^2), std 0.028; leaving the 0.35 margin
    # is a 12.4-sigma event. Union bound over L * n_u * K = 200 * 88 * 50 reads: < 1e-28.
    res = chain(layer, act, 200, noise_std=0.01, seed=2, record_every=10)
    assert res.exact and res.depth_survived == 200
    assert_allclose(res.max_error, floor, atol=EXACT)  # the output error is only the code junk
    assert np.all(res.input_error > floor)  # ... while the inputs it received were noisier
    # sigma = 0.15: unit noise std 0.42, each of the 88 * 50 reads leaves the margin with
    # probability 2 * P(N > 0.83) = 0.4, so the first layer fails with certainty.
    res = chain(layer, act, 20, noise_std=0.15, seed=2, stop_early=True)
    assert res.depth_survived == 0 and res.bit_accuracy[-1] < 1.0


def test_denoiser_chain_keeps_bits() -> None:
    m, d, k = 200, 1000, 50
    act = sample_sparse(m, 3, k, seed=3)
    # readout error = crosstalk (std <= sqrt(s/d) = 0.055, from up to 3 active features) plus
    # noise (0.01): total std <= 0.056, so the 0.35 margin is 6.2 sigma. Union bound over
    # L * m * K = 100 * 200 * 50 readouts: 1e6 * 2 * P(N > 6.2) < 1e-3.
    res = chain(FeatureDenoiser(Embedding(m, d, seed=4)), act, 100, noise_std=0.01, seed=5)
    assert res.exact
    clean_err = np.abs(Embedding(m, d, seed=4).readout(Embedding(m, d, seed=4).embed(act)))
    clean_err[np.arange(k)[:, None], act] -= 1.0
    assert_allclose(res.max_error, np.abs(clean_err).max(), atol=EXACT)
    fresh = chain(fresh_denoisers(m, d, seed=7), act, 10, noise_std=0.01, seed=5)
    assert fresh.exact


def test_noise_tolerance_threshold_is_where_theory_puts_it() -> None:
    layer = CodeCorrection(121, 100, field=11, blocks=8, degree=1, seed=0)
    act = sample_sparse(121, 3, 100, seed=1)
    stds = np.array([0.005, 0.01, 0.02, 0.04, 0.08, 0.16])
    tol = noise_tolerance(layer, act, stds, seed=3)
    assert np.all(np.diff(tol.input_error) > 0)
    assert_allclose(tol.clean_output_error, 3 / 8, atol=EXACT)  # max junk, s = r*3 shared units
    # no failure while the margin is >= 6 unit-noise stds (0.35 / (sqrt(8) * 0.02) = 6.2:
    # union bound 88 * 100 * 2 * P(N > 6.2) < 1e-5); certain failure at 0.16 (as above).
    assert np.all(tol.bit_accuracy[stds <= 0.02] == 1.0)
    assert 0.02 < tol.threshold_std <= 0.16
    assert np.all(tol.output_error[stds <= 0.02] == tol.clean_output_error)
    assert tol.threshold_error > tol.clean_input_error


# ---------------------------------------------------------------------------------------------
# capacity and fits


def test_capacity_finds_the_budget_edge() -> None:
    # with d = 1000 the baseline is limited only by its budget: m = n / 2
    res = capacity(denoiser_for_budget(74, 1000), sparsity=3, depth=3, n_inputs=10)
    assert res.m_max == 37
    assert all(ok == (m <= 37) for m, ok in res.trials)
    # the code design fits q^2 = 121 features in 2 * 8 * 11 = 176 neurons (r = 1 only)
    code = code_for_budget(176, 100, 3, max_degree=1)
    res = capacity(code, sparsity=3, depth=3, n_inputs=10, m_min=64)
    assert res.m_max == 121


# ---------------------------------------------------------------------------------------------
# argument checks


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: reed_solomon_codes(8, 3, 1, 10), "field"),
        (lambda: reed_solomon_codes(7, 8, 1, 10), "blocks"),
        (lambda: reed_solomon_codes(7, 3, -1, 10), "degree"),
        (lambda: reed_solomon_codes(7, 3, 1, 50), "n_features"),
        (lambda: CodeCorrection(10, 0, 7, 3), "width"),
        (lambda: CodeCorrection(10, 20, 7, 3, lo=0.6, hi=0.4), "hi"),
        (lambda: CodeCorrection(10, 20, 7, 3, lo=0.0), "lo"),
        (lambda: FeatureDenoiser(Embedding(10, 5), Embedding(11, 5)), "out_embedding"),
        (lambda: FeatureDenoiser(np.eye(3)), "embedding"),  # type: ignore[arg-type]
        (lambda: code_design(100, 3, max_junk=0.5), "max_junk"),
        (lambda: fresh_denoisers(10, 5, kind="bogus"), "kind"),
    ],
)
def test_bad_arguments(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()  # type: ignore[operator]


def test_bad_measurement_arguments() -> None:
    layer = CodeCorrection(121, 100, 11, 8)
    act = sample_sparse(121, 3, 4, seed=0)
    with pytest.raises(ValueError, match="depth"):
        chain(layer, act, 0)
    with pytest.raises(ValueError, match="noise_std"):
        chain(layer, act, 1, noise_std=-0.1)
    with pytest.raises(ValueError, match="active"):
        chain(layer, act + 200, 1)
    with pytest.raises(ValueError, match="factory"):
        chain(FeatureDenoiser(Embedding(20, 5), Embedding(20, 5, seed=1)), act % 20, 1)
    with pytest.raises(ValueError, match="shape"):
        layer.step(np.zeros((2, 99)))
    with pytest.raises(ValueError, match="side"):
        next(layer.readout_blocks(np.zeros((2, 100)), "both"))
    with pytest.raises(ValueError, match="increasing"):
        noise_tolerance(layer, act, [0.1, 0.05])
    with pytest.raises(ValueError, match="sparsity"):
        capacity(code_for_budget(100, 10, 3), sparsity=0, depth=1, n_inputs=1)
    with pytest.raises(ValueError, match="sparsity"):
        layer.junk_bound(0)
