"""Structured kernels against their slow oracles, on NumPy and under ``array_api_strict``.

``array_api_strict`` rejects NumPy-only idioms, so a kernel that passes here runs unchanged on
any array-API namespace (CuPy on a GPU included); the GPU tests at the end run where a device is.
"""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
import scipy.sparse as sps
from numpy.testing import assert_allclose, assert_array_equal

import superposition as sp
from superposition import kernels as K
from superposition import theory
from superposition import uand as U
from superposition.backend import get_backend, gpu_available, to_numpy
from superposition.errors import ErrorAccumulator

FLOAT_TOL = 1e-10  # float64 rounding of sums over ~10^5 outputs of values of order 1

XPS = ["numpy", "array_api_strict"]


def _xp(name: str):
    return get_backend(name)


# ---------------------------------------------------------------- wiring


def test_sample_wiring_is_deterministic_sorted_and_bernoulli() -> None:
    m, d, p = 3000, 400, 0.02
    w = K.sample_wiring(m, d, p, seed=3)
    again = K.sample_wiring(m, d, p, seed=3)
    assert_array_equal(w.indptr, again.indptr)
    assert_array_equal(w.indices, again.indices)
    assert w.indices.dtype == np.int32 and w.indptr.shape == (m + 1,)
    assert w.nbytes == (m + 1) * 8 + w.nnz * 4
    for k in range(0, m, 97):  # strictly increasing neurons in [0, d) per feature
        col = w.indices[w.indptr[k] : w.indptr[k + 1]]
        assert (np.diff(col) > 0).all() and (col.min(initial=0) >= 0) and col.max(initial=0) < d
    # the number of ones is Binomial(md, p): within 5 standard deviations
    mean, sd = p * m * d, np.sqrt(p * (1 - p) * m * d)
    assert abs(w.nnz - mean) < 5 * sd
    # column degrees are Binomial(d, p): their sample variance within 10% of d p (1 - p)
    deg = np.diff(w.indptr)
    assert abs(deg.var() / (d * p * (1 - p)) - 1) < 0.1
    # every neuron equally likely: chi-square of the neuron histogram (400 bins), 5 sd
    hist = np.bincount(w.indices, minlength=d)
    chi2 = ((hist - w.nnz / d) ** 2 / (w.nnz / d)).sum()
    assert abs(chi2 - (d - 1)) < 5 * np.sqrt(2 * (d - 1))


def test_sample_wiring_small_blocks_and_edge_cases() -> None:
    w = K.sample_wiring(500, 50, 0.1, seed=0, block_nnz=7)  # many blocks, one column each
    assert abs(w.nnz - 2500) < 5 * np.sqrt(2500 * 0.9)
    dense = to_numpy(w.toarray())
    assert dense.shape == (50, 500) and set(np.unique(dense)) <= {0.0, 1.0}
    assert dense.sum() == w.nnz
    full = K.sample_wiring(7, 5, 1.0, seed=1)
    assert_array_equal(to_numpy(full.toarray()), np.ones((5, 7)))
    with pytest.raises(ValueError, match="p must be"):
        K.sample_wiring(10, 10, 0.0)
    with pytest.raises(ValueError, match="neurons"):
        K.sample_wiring(10, 0, 0.5)


@pytest.mark.parametrize("backend", XPS)
def test_wiring_forward_matches_the_scipy_product(backend: str) -> None:
    xp = _xp(backend)
    net = sp.build_uand(400, 120, 3, p=0.1, seed=2)
    w = net.W
    dense = to_numpy(w.toarray())
    assert_array_equal(to_numpy(K.Wiring.from_sparse(dense).toarray()), dense)
    for s in (0, 1, 3, 5):
        active = sp.sample_sparse(400, s, 17, seed=s) if s else np.zeros((17, 0), np.int64)
        ref = sp.to_dense(active, 400) @ dense.T + net.bias  # the dense O(K m d) product: oracle
        got = K.wiring_preactivations(w.to(xp), xp.asarray(active), bias=net.bias)
        assert sp.namespace(got) is sp.namespace(xp.asarray(active))
        assert_array_equal(to_numpy(got), ref)
    got32 = K.wiring_preactivations(w.to(xp), xp.asarray(active), -1.0, dtype=xp.float32)
    assert got32.dtype == xp.float32
    with pytest.raises(ValueError, match="active feature indices"):
        K.wiring_preactivations(w.to(xp), xp.asarray(np.array([[0, 400]])))


@pytest.mark.parametrize("backend", XPS)
def test_gather_forward_matches_the_dense_product(backend: str) -> None:
    xp = _xp(backend)
    net = sp.build_uand(300, 64, 3, weights="gaussian", seed=1)
    active = sp.sample_sparse(300, 3, 25, seed=4)
    x = sp.to_dense(active, 300)
    ref = x @ net.W.T + 0.5  # the dense O(K m d) product
    got = K.gather_preactivations(xp.asarray(net.W.T.copy()), xp.asarray(active), bias=0.5)
    assert_allclose(to_numpy(got), ref, rtol=0, atol=1e-12)
    assert_allclose(to_numpy(K.relu(got)), np.maximum(ref, 0), rtol=0, atol=1e-12)
    bern = sp.build_uand(300, 64, 3, seed=1)
    wa = K.wiring_activations(bern.W.to(xp), xp.asarray(active))
    assert_array_equal(to_numpy(wa), np.maximum(x @ bern.dense().T - 1.0, 0.0))
    assert_allclose(net.activations(active), np.maximum(x @ net.W.T, 0), atol=1e-12)


@pytest.mark.parametrize("backend", XPS)
def test_pair_counts_are_the_gram_matrix(backend: str) -> None:
    xp = _xp(backend)
    w = K.sample_wiring(250, 90, 0.15, seed=5)
    dense = to_numpy(w.toarray())
    gram = dense.T @ dense
    wx = w.to(xp)
    for rows, cols in (((0, 250), (0, 250)), ((10, 60), (40, 250)), ((100, 100), (0, 5))):
        got = to_numpy(K.pair_counts(wx, rows, cols))
        assert got.dtype == np.float32
        assert_array_equal(got, gram[rows[0] : rows[1], cols[0] : cols[1]])
    with pytest.raises(ValueError, match="start <= stop"):
        K.pair_counts(wx, (5, 2), (0, 1))
    with pytest.raises(ValueError, match="rows"):
        K.pair_counts(wx, (0, 251), (0, 1))


# ---------------------------------------------------------------- sign-symmetric readout errors


def _sign_case(weights: str, m: int = 60, d: int = 150, s: int = 3, k: int = 12, seed: int = 0):
    net = sp.build_uand(m, d, s, weights=weights, seed=seed)
    active = sp.sample_sparse(m, s, k, seed=seed + 1)
    c = theory.sign_readout_constant(s, weights)
    return net, active, 1.0 / (d * c)


def _assert_errors_close(
    got: U.UAndErrors, ref: U.UAndErrors, tol: float, count_tol: int, sum_rel: float = 0.0
) -> None:
    """``tol``: bound per output; ``sum_rel``: relative rounding of the sums (float32 rows)."""
    assert_array_equal(got.count, ref.count)
    total = ref.count.sum()
    assert_allclose(got.max_abs, ref.max_abs, rtol=0, atol=tol)
    assert_allclose(got.input_max_abs, ref.input_max_abs, rtol=0, atol=tol)
    # the sums of the computed outputs are within tol * total of the exact ones, and summing them
    # adds at most sum_rel times the sum of their absolute values (<= sum_abs + tol * total)
    abs_sum = ref.sum_abs.sum() + tol * total
    assert_allclose(got.sum, ref.sum, rtol=0, atol=tol * total + sum_rel * abs_sum)
    assert_allclose(got.sum_abs, ref.sum_abs, rtol=0, atol=tol * total + sum_rel * abs_sum)
    # |e'^2 - e^2| <= tol (2|e| + tol) per output, |e| <= max_abs
    sq_tol = tol * (2 * ref.max_abs.max() + tol) * total
    assert_allclose(
        got.sum_sq, ref.sum_sq, rtol=0, atol=sq_tol + sum_rel * (ref.sum_sq.sum() + sq_tol)
    )
    assert np.abs(got.nonzero - ref.nonzero).max() <= count_tol


@pytest.mark.parametrize("weights", ["rademacher", "gaussian"])
@pytest.mark.parametrize("backend", XPS)
def test_sign_pair_errors_float64_equal_the_dense_tiles(weights: str, backend: str) -> None:
    xp = _xp(backend)
    net, active, scale = _sign_case(weights)
    assert scale == pytest.approx(net.readout.scale, rel=1e-15)
    ref = sp.evaluate_uand(net, active, method="tiles")  # dense float64 readout: the oracle
    acts = net.activations(active)
    signs = np.sign(net.W)
    for rows in (None, 7, 1):  # tiles of every shape give the same statistics
        got = K.sign_pair_errors(
            xp.asarray(signs), xp.asarray(acts), xp.asarray(active), scale, rows=rows
        )
        _assert_errors_close(got, ref, FLOAT_TOL, 0)
    assert got.n_outputs == comb(60, 2)


@pytest.mark.parametrize("weights", ["rademacher", "gaussian"])
@pytest.mark.parametrize("backend", XPS)
def test_sign_pair_errors_float32_within_the_stated_tolerance(weights: str, backend: str) -> None:
    xp = _xp(backend)
    net, active, scale = _sign_case(weights, m=80, d=400, k=10, seed=3)
    ref = sp.evaluate_uand(net, active, method="tiles")
    acts = net.activations(active)
    n_firing = int((acts > 0).sum(axis=1).max())
    tol = K.sign_readout_tolerance(n_firing, scale, float(acts.sum(axis=1).max()))
    assert 1e-7 < tol < 1e-3  # small against errors of order 0.1, and not vacuously zero
    signs32 = xp.asarray(np.sign(net.W).astype(np.float32))
    got = K.sign_pair_errors(signs32, xp.asarray(acts), xp.asarray(active), scale, rows=13)
    # nonzero counts agree: Rademacher activations are integers, summed exactly in float32 (zeros
    # stay zeros); Gaussian outputs are never exactly 0
    n = net.W.shape[1] + 1  # a tile row holds at most m values; squares add one rounding each
    gamma = n * K.F32_UNIT_ROUNDOFF / (1 - n * K.F32_UNIT_ROUNDOFF)
    _assert_errors_close(got, ref, tol, 0, sum_rel=gamma)
    assert ref.max_abs_error > 100 * tol


def test_sign_pair_errors_edge_cases() -> None:
    net, active, scale = _sign_case("rademacher", m=20, d=40, k=3)
    acts = net.activations(active)
    signs = np.sign(net.W)
    none = np.zeros((2, 0), dtype=np.int64)  # no active feature: every output has pattern 0
    got = K.sign_pair_errors(signs, net.activations(none), none, scale)
    ref = sp.evaluate_uand(net, none, method="tiles")
    _assert_errors_close(got, ref, FLOAT_TOL, 0)
    with pytest.raises(ValueError, match="activations must have shape"):
        K.sign_pair_errors(signs, acts[:, :5], active, scale)
    with pytest.raises(ValueError, match="scale"):
        K.sign_pair_errors(signs, acts, active, -1.0)


def test_sign_readout_tolerance_formula() -> None:
    u = 2.0**-24
    assert K.sign_readout_tolerance(0, 2.0, 3.0) == pytest.approx(2 * u * 6.0)
    assert K.sign_readout_tolerance(1000, 1.0, 1.0) > 1002 * u
    with pytest.raises(ValueError, match="n_firing"):
        K.sign_readout_tolerance(-1, 1.0, 1.0)


# ---------------------------------------------------------------- GPU (skipped only without a device)


@pytest.fixture
def cupy_xp():
    if not gpu_available():
        pytest.skip("no CUDA GPU on this machine")
    return get_backend("cupy")  # pragma: no cover - GPU only


@pytest.mark.gpu
def test_kernels_on_gpu(cupy_xp) -> None:  # pragma: no cover - GPU only
    xp = cupy_xp
    net = sp.build_uand(400, 120, 3, p=0.1, seed=2)
    w = net.W
    active = sp.sample_sparse(400, 3, 17, seed=1)
    got = K.wiring_preactivations(w.to(xp), xp.asarray(active), bias=net.bias)
    assert_array_equal(to_numpy(got), net.preactivations(active))
    dense = net.dense()
    assert_array_equal(to_numpy(K.pair_counts(w.to(xp), (0, 400), (0, 400))), dense.T @ dense)
    snet, sact, scale = _sign_case("rademacher")
    ref = sp.evaluate_uand(snet, sact, method="tiles")
    got_err = K.sign_pair_errors(
        xp.asarray(np.sign(snet.W)), xp.asarray(snet.activations(sact)), xp.asarray(sact), scale
    )
    _assert_errors_close(got_err, ref, FLOAT_TOL, 0)


# ---------------------------------------------------------------- Gram tiles of the exact Bernoulli evaluation


def test_exact_bernoulli_errors_for_any_gram_tiling() -> None:
    """Row tiles of all rows (two 16 MB column blocks), 300 rows and 40 rows: the sparse pair
    algorithm gives the dense tile method's statistics for each."""
    net = sp.build_uand(2500, 200, 3, p=0.08, seed=7)
    active = sp.sample_sparse(2500, 3, 3, seed=8)
    ref = sp.evaluate_uand(net, active, method="tiles")
    for tile in (2500 * 2500, 2500 * 300, 2500 * 40):
        got = sp.evaluate_uand(net, active, method="sparse", tile=tile)
        _assert_errors_close(got, ref, FLOAT_TOL, 0)
    assert int(np.diff(net.W.host_indptr).max()) < 2**8  # so the Gram tiles hold uint8 counts


# ---------------------------------------------------------------- Bernoulli worst errors without the Gram


def _dense_mean_outputs(W: np.ndarray, acts: np.ndarray, active: np.ndarray):
    """The obvious oracle: every output of every input, each a left-to-right float64 sum over
    Γ(k, l) in increasing neuron order (zeros of silent neurons included), then one division.

    Returns ``(y, pattern)``: ``y`` of shape ``(K, C(m, 2))`` in lexicographic pair order and the
    pattern (active features among the two) of each output, ``(K, C(m, 2))``."""
    d, m = W.shape
    Wb = W.astype(bool)
    iu, ju = np.triu_indices(m, 1)
    gam = Wb[:, iu] & Wb[:, ju]  # (d, pairs)
    size = gam.sum(axis=0)
    ys, pats = [], []
    for t in range(acts.shape[0]):
        num = np.cumsum(np.where(gam, acts[t][:, None], 0.0), axis=0)[-1]  # sequential sums
        ys.append(np.where(size > 0, num / np.maximum(size, 1), 0.0))
        on = np.zeros(m, dtype=bool)
        on[active[t]] = True
        pats.append(on[iu].astype(int) + on[ju])
    return np.array(ys), np.array(pats)


class _Collect(ErrorAccumulator):
    """An accumulator that also keeps every value it is given (with its multiplicity)."""

    def __init__(self, n_samples: int) -> None:
        super().__init__(2, n_samples, None, np)
        self.values: dict[tuple[int, int], list[np.ndarray]] = {}

    def add(self, j, err, weight=None, nonzero=None, inputs=None) -> None:
        super().add(j, err, weight=weight, nonzero=nonzero, inputs=inputs)
        vals = np.asarray(err, dtype=np.float64)
        if weight is not None:
            vals = np.repeat(vals, np.asarray(weight).astype(np.int64))
        self.values.setdefault((inputs, j), []).append(vals)


BERNOULLI_CASES = [  # (m, d, s, p, embed_dim): superposed (neurons fire on noise) and not
    (40, 150, 2, 0.25, 150),
    (60, 300, 2, None, 300),
    (60, 300, 3, None, 300),
    (80, 200, 2, 0.3, 120),
    (50, 400, 3, 0.2, 60),
    (90, 120, 2, 0.4, 90),
    (30, 60, 1, 0.3, 30),
    (40, 200, 4, 0.2, 200),
    (60, 250, 3, 0.15, None),
]


@pytest.mark.parametrize(("m", "d", "s", "p", "d0"), BERNOULLI_CASES)
def test_bernoulli_worst_errors_bit_for_bit(m: int, d: int, s: int, p, d0) -> None:
    """Every nonzero output, per input and pattern, equals the dense oracle's bit for bit; the
    exact worst error per input and the ε decision too (float64)."""
    from superposition import superposed as SP

    for seed in range(2):
        snet = SP.build_superposed_uand(m, d, s, d0, p=p, seed=seed)
        active = sp.sample_sparse(m, s, 4, seed=100 + seed)
        acts = snet.activations(active)
        y, pat = _dense_mean_outputs(snet.net.dense(), acts, active)
        err = np.abs(y - (pat == 2))
        want = np.array(
            [[err[t][pat[t] == j].max(initial=0.0) for j in range(3)] for t in range(4)]
        )
        # exact worst error per input (the walk stops early): bit for bit, by every route, and
        # the routes walk the same neurons and report the same bits; the walk's pair counts by
        # the sparse product or by the dense GEMM too
        walk = K.bernoulli_worst_errors(snet.net.W, acts, active, route="walk")
        for cost in (0.0, float("inf")):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(K, "SPARSE_COUNT_COST", cost)
                other = K.bernoulli_worst_errors(snet.net.W, acts, active, route="walk")
            assert_array_equal(other.per_input, walk.per_input)
            assert_array_equal(other.processed, walk.processed)
        for route in K.ROUTES:
            got = K.bernoulli_worst_errors(snet.net.W, acts, active, route=route)
            assert_array_equal(got.input_max_abs, want.max(axis=1))
            assert_array_equal(got.per_input[:, 1:], want[:, 1:])
            assert (got.per_input[:, 0] <= want[:, 0]).all()
            assert got.firing.tolist() == (acts > 0).sum(axis=1).tolist() and not got.stopped
            assert_array_equal(got.processed, walk.processed)
            assert_array_equal(got.per_input, walk.per_input)
        # with statistics: every output, every pattern maximum, and the sums
        acc = _Collect(4)
        acc.add_counts(m, s, 4)
        full = K.bernoulli_worst_errors(snet.net.W, acts, active, acc=acc)
        assert_array_equal(full.per_input, want)
        for t in range(4):
            for j in range(3):
                sel = pat[t] == j
                ref = y[t][sel] - (j == 2)
                ref = ref[(ref != 0) | (j == 2)]  # the evaluator lists the nonzero outputs
                mine = np.concatenate(acc.values.get((t, j), [np.zeros(0)]))
                mine = mine[(mine != 0) | (j == 2)]
                assert_array_equal(np.sort(mine), np.sort(ref))
        res = acc.finish(m)
        assert_array_equal(res.count, [(pat == j).sum() for j in range(3)])
        assert_array_equal(res.nonzero, [((y != 0) & (pat == j)).sum() for j in range(3)])
        for j in range(3):
            e = (y - (pat == 2))[pat == j]
            assert res.sum[j] == pytest.approx(e.sum(), rel=1e-12, abs=1e-12)
            assert res.sum_sq[j] == pytest.approx((e * e).sum(), rel=1e-12, abs=1e-12)
        # the ε decision, and stopping at the first input above it
        for eps in (0.5, float(want.max()), float(want.max()) * 0.999):
            dec = K.bernoulli_worst_errors(snet.net.W, acts, active, stop_above=eps)
            assert (dec.max_abs_error > eps) == (want.max() > eps)
            assert (dec.per_input <= want[: dec.per_input.shape[0]]).all()  # lower bounds
            first = np.flatnonzero(want.max(axis=1) > eps)
            assert dec.per_input.shape[0] == (first[0] + 1 if first.size else 4)
            assert dec.stopped == bool(first.size and first[0] < 3)
            for route in ("walk", "table"):  # the lower bounds below eps too
                other = K.bernoulli_worst_errors(
                    snet.net.W, acts, active, stop_above=eps, route=route
                )
                assert_array_equal(other.per_input, dec.per_input)
                assert_array_equal(other.processed, dec.processed)


@pytest.mark.parametrize("cost", [0.0, float("inf")])
def test_support_pair_counts_count_every_pair(cost: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upper triangle of W_S^T W_S by the sparse count (cost 0) and by the dense GEMM
    (cost inf): the number of neurons holding each pair of the support, against the dense 0/1
    matrix."""
    monkeypatch.setattr(K, "SPARSE_COUNT_COST", cost)
    w = K.sample_wiring(300, 500, 0.05, seed=4)
    dense = w.toarray().astype(np.int64)
    sup_w = w.supports()
    for i in (0, 7, 499):
        S = sup_w.indices[sup_w.indptr[i] : sup_w.indptr[i + 1]].astype(np.int64)
        starts = w.indptr[S]
        lengths = w.indptr[S + 1] - starts
        neuron = np.concatenate(
            [w.indices[a : a + n] for a, n in zip(starts, lengths, strict=True)]
        )
        pos = np.repeat(np.arange(S.size), lengths)
        got = K._support_pair_counts(w, neuron.astype(np.int64), pos, lengths, S.size)
        assert got.dtype == np.int64
        r, c = np.triu_indices(S.size, 1)
        assert_array_equal(got, (dense[:, S].T @ dense[:, S])[r, c])


@pytest.mark.parametrize("slices", [(1.0,), (0.1, 0.3, 1.0), (0.25, 0.5, 0.75, 1.0)])
def test_neuron_top_bounds_the_pairs_and_keeps_the_bits(
    slices: tuple[float, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk's partial counts: for every firing neuron and floors below, at and above its
    worst output, the worst output bit for bit where it exceeds the floor (else at most the
    floor), against the full count of every pair; the exact recount of the pairs left is used."""
    from superposition import superposed as SP

    monkeypatch.setattr(K, "SPARSE_COUNT_COST", 0.0)  # the oracle counts sparsely too
    monkeypatch.setattr(K, "WALK_SLICES", slices)
    recounts = []
    bit_counts = K._bit_pair_counts
    monkeypatch.setattr(
        K, "_bit_pair_counts", lambda *args: recounts.append(1) or bit_counts(*args)
    )
    snet = SP.build_superposed_uand(120, 400, 2, 60, p=0.15, seed=3)
    active = sp.sample_sparse(120, 2, 3, seed=7)
    acts = snet.activations(active)
    w, sup_w = snet.net.W, snet.net.W.supports()
    checked = 0
    for t in range(3):
        a = acts[t].astype(np.float64)
        fire = a > 0
        keep = np.ones(120, dtype=bool)
        keep[active[t]] = False
        for i in np.flatnonzero(fire)[:25]:
            sup = sup_w.indices[sup_w.indptr[i] : sup_w.indptr[i + 1]].astype(np.int64)
            sup = sup[keep[sup]]
            if sup.size < 2:
                continue
            ref = K._neuron_pairs(w, int(i), float(a[i]), sup, a, fire, None, 0)
            for floor in (0.0, 0.5 * ref, np.nextafter(ref, 0.0), ref, 1.5 * ref):
                got, work = K._neuron_top(w, int(i), float(a[i]), sup, a, fire, float(floor))
                assert 0 <= work <= w.neurons * sup.size**2  # at most the dense GEMM's
                if ref > floor:
                    assert got == ref
                else:
                    assert got <= floor
                checked += 1
    assert checked > 100
    if len(slices) > 1:
        assert recounts  # some pairs were counted from their packed rows


def test_triangle_codes_and_pair_recount_by_brute_force() -> None:
    rng = np.random.default_rng(5)
    n_pos = 9
    r, c = np.triu_indices(n_pos, 1)
    u, v = K._triangle_pairs(np.arange(r.size), n_pos)
    assert_array_equal(u, r)
    assert_array_equal(v, c)
    off = K._triangle_offsets(n_pos, np)
    assert_array_equal(off[r] + c, np.arange(r.size))
    for d in (30, 64, 200):  # less than a word, one word, words and a part
        holds = rng.random((n_pos, d)) < 0.4
        neuron = np.concatenate([np.flatnonzero(row) for row in holds]).astype(np.int64)
        pos = np.repeat(np.arange(n_pos), holds.sum(axis=1))
        pick = rng.permutation(r.size)[:20]
        got = K._bit_pair_counts(neuron, pos, n_pos, d, r[pick], c[pick])
        assert_array_equal(got, (holds[r[pick]] & holds[c[pick]]).sum(axis=1))


def test_triu_cache_is_bounded_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(K, "TRIU_CACHE_BYTES", 50 * 49 // 2 * 16 * 3)
    monkeypatch.setattr(K, "_TRIU_CACHE", {})
    monkeypatch.setattr(K, "_TRIU_BYTES", [0])
    for n in (50, 10, 50, 40, 50, 30, 20):
        r, c = K._triu(n, np)
        want_r, want_c = np.triu_indices(n, 1)
        assert_array_equal(r, want_r)
        assert_array_equal(c, want_c)
        held = sum(v[0].shape[0] * 16 for v in K._TRIU_CACHE.values())
        assert held == K._TRIU_BYTES[0] <= K.TRIU_CACHE_BYTES
    assert (50, "numpy") in K._TRIU_CACHE  # the most recently used stays


def test_lower_pairs_share_one_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every size reads the first j (j - 1) / 2 pairs of the largest kept; a size beyond
    TRIU_CACHE_BYTES is returned and not kept."""
    monkeypatch.setattr(K, "TRIU_CACHE_BYTES", 60 * 59 // 2 * 16)
    monkeypatch.setattr(K, "_LOWER", [np.zeros(0, dtype=np.int64)] * 2)
    kept = 0
    for n in (40, 7, 60, 2, 1, 33, 61, 9):
        y, x = K._lower_pairs(n)
        want_y, want_x = np.tril_indices(n, -1)
        assert_array_equal(y, want_y)
        assert_array_equal(x, want_x)
        kept = max(kept, n) if n <= 60 else kept
        assert K._LOWER[0].shape[0] == kept * (kept - 1) // 2


def test_pattern0_table_is_the_dense_mean() -> None:
    """Each pattern-0 output (both features inactive) is the sum of a_i over its firing
    neurons, left to right in increasing neuron order, over |Γ(k, l)|: bit for bit."""
    m, d = 40, 90
    w = K.sample_wiring(m, d, 0.3, seed=3)
    W = w.toarray().astype(bool)
    a = np.where(np.random.default_rng(4).random(d) < 0.4, np.random.default_rng(5).random(d), 0.0)
    keep = np.ones(m, dtype=bool)
    keep[[3, 17]] = False
    got = K._pattern0_table(w, a, np.flatnonzero(a > 0), keep).reshape(m, m, order="F")
    for u in range(m):
        for v in range(u + 1, m):
            gam = np.flatnonzero(W[:, u] & W[:, v])
            num = 0.0
            for i in gam:
                num += a[i]
            want = num / gam.size if (keep[u] and keep[v] and num > 0) else 0.0
            assert got[u, v] == want, (u, v)


def test_bernoulli_worst_errors_edge_cases() -> None:
    w = K.sample_wiring(30, 50, 0.3, seed=1)
    acts = np.zeros((2, 50))
    r = K.bernoulli_worst_errors(w, acts, np.array([[0, 1], [2, 3]]))
    assert_array_equal(r.per_input, [[0, 0, 1.0], [0, 0, 1.0]])  # silent: every true AND reads 0
    empty = K.bernoulli_worst_errors(w, acts, np.zeros((2, 0), dtype=np.int64))
    assert empty.max_abs_error == 0.0 and empty.processed.tolist() == [0, 0]
    with pytest.raises(ValueError, match="activations must have shape"):
        K.bernoulli_worst_errors(w, np.zeros((2, 49)), np.array([[0, 1], [2, 3]]))
    with pytest.raises(ValueError, match="stop_above and acc"):
        acc = ErrorAccumulator(2, 2, None, np)
        K.bernoulli_worst_errors(w, acts, np.array([[0, 1], [2, 3]]), stop_above=0.5, acc=acc)
    with pytest.raises(ValueError, match=r"feature indices must be in \[0, 29\]"):
        K.bernoulli_worst_errors(w, acts, np.array([[-1, 3], [2, 3]]))
    with pytest.raises(ValueError, match="distinct"):
        K.bernoulli_worst_errors(w, acts, np.array([[3, 3], [2, 3]]))
    with pytest.raises(ValueError, match="activations must be >= 0"):
        K.bernoulli_worst_errors(w, acts - 1.0, np.array([[0, 1], [2, 3]]))
    with pytest.raises(ValueError, match="route must be one of"):
        K.bernoulli_worst_errors(w, acts, np.array([[0, 1], [2, 3]]), route="dense")
    with pytest.raises(ValueError, match="route='table' needs NumPy arrays, no acc"):
        acc = ErrorAccumulator(2, 2, None, np)
        K.bernoulli_worst_errors(w, acts, np.array([[0, 1], [2, 3]]), acc=acc, route="table")
    big = K.sample_wiring(10**6, 8, 1e-6, seed=1)  # a table of 11 TiB fits nowhere
    with pytest.raises(ValueError, match=r"n_features=1000000 \(1.12e\+04 GiB\) within 0.75"):
        K.bernoulli_worst_errors(big, np.zeros((1, 8)), np.array([[0, 1]]), route="table")


def _table_case():
    """A superposed layer (m = 120, d = 300, p = 0.3) and 4 inputs whose walks reach the pair
    table: the network, the active features and the activations."""
    from superposition import superposed as SP

    snet = SP.build_superposed_uand(120, 300, 2, 90, p=0.3, seed=0)
    active = sp.sample_sparse(120, 2, 4, seed=7)
    return snet, active, snet.activations(active)


def test_bernoulli_pair_table_only_where_it_fits(monkeypatch) -> None:
    """The pair table is built only within PAIR_TABLE_SHARE of the memory available (never when
    that is unknown); otherwise "auto" walks, with the same numbers, and "table" refuses."""
    from superposition import memory

    snet, active, acts = _table_case()
    walk = K.bernoulli_worst_errors(snet.net.W, acts, active, route="walk")
    assert walk.processed.max() > K.PAIR_TABLE_AFTER  # "auto" reaches the table where allowed
    need = memory.pair_table_bytes(120)
    built = []
    table = K._pattern0_table
    monkeypatch.setattr(K, "_pattern0_table", lambda *a: built.append(1) or table(*a))
    for avail, allowed in [
        (None, False),
        (int(need / K.PAIR_TABLE_SHARE) - 1, False),
        (int(need / K.PAIR_TABLE_SHARE) + 1, True),
    ]:
        monkeypatch.setattr(K, "available_bytes", lambda a=avail: a)
        w = K.Wiring.from_sparse(sps.csr_array(snet.net.W.toarray()))  # no counts cached
        built.clear()
        got = K.bernoulli_worst_errors(w, acts, active, route="auto")
        assert_array_equal(got.per_input, walk.per_input)
        assert_array_equal(got.processed, walk.processed)
        assert bool(built) is allowed
        assert K._pair_counts_cached(w) is allowed
        if not allowed:
            with pytest.raises(ValueError, match="within 0.75 of the available memory"):
                K.bernoulli_worst_errors(w, acts, active, route="table")


def test_bernoulli_pair_counts_only_where_they_pay_off(monkeypatch) -> None:
    """With "auto", a wiring's pairs are counted only once the walk's work, projected over the
    batch, reaches the counts' cost: never where they are dear (the walk takes every neuron),
    early where they are cheap, and once counted the table serves later calls without asking;
    the numbers are the walk's either way."""
    snet, active, acts = _table_case()
    monkeypatch.setattr(K, "available_bytes", lambda: 2**40)
    walk = K.bernoulli_worst_errors(snet.net.W, acts, active, route="walk")
    # the rule: the walk's work so far, at its mean per started input, against d m (m + 1) / 2
    cost = 300 * 120 * 121 / 2
    assert not K._pair_counts_pay_off(cost / 4 - 1, 1, 4, 120, 300)
    assert K._pair_counts_pay_off(cost / 4, 1, 4, 120, 300)
    assert K._pair_counts_pay_off(cost, 1, 1, 120, 300)
    assert not K._pair_counts_pay_off(cost / 2, 2, 3, 120, 300)
    rule = K._pair_counts_pay_off
    for n_inputs, dear in [(1, 1e6), (4, 1e6), (1, 1e-6), (4, 1.0)]:
        # the counts made dear or cheap (their cost scaled through d)
        monkeypatch.setattr(
            K, "_pair_counts_pay_off", lambda w, s, n, m, d, f=dear: rule(w, s, n, m, d * f)
        )
        w = K.Wiring.from_sparse(sps.csr_array(snet.net.W.toarray()))  # nothing cached
        got = K.bernoulli_worst_errors(w, acts[:n_inputs], active[:n_inputs], route="auto")
        assert_array_equal(got.per_input, walk.per_input[:n_inputs])
        assert_array_equal(got.processed, walk.processed[:n_inputs])
        assert K._pair_counts_cached(w) is (dear <= 1.0)
    asked, built = [], []
    table = K._pattern0_table
    monkeypatch.setattr(K, "_pattern0_table", lambda *a: built.append(1) or table(*a))
    monkeypatch.setattr(K, "_pair_counts_pay_off", lambda *x: asked.append(x) or False)
    got = K.bernoulli_worst_errors(w, acts, active, route="auto")
    assert_array_equal(got.per_input, walk.per_input)
    assert built and not asked  # counted already: the table, after PAIR_TABLE_AFTER neurons


# ---------------------------------------------------------------- sparse matrices: CSR and X @ S

U64 = 2.0**-53  # unit roundoff of float64


def _gamma(n: int, u: float = U64) -> float:
    return n * u / (1 - n * u)


def _sparse_case(rows: int, cols: int, seed: int) -> sps.csr_array:
    """A random sparse matrix with empty rows and columns and one heavy column (skewed widths)."""
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((rows, cols)) * (rng.random((rows, cols)) < 0.15)
    if rows and cols > 3:
        dense[:, 0] = rng.standard_normal(rows)  # every row reads column 0
        dense[:, 1] = 0.0  # an empty column
    if rows > 2:
        dense[1, :] = 0.0  # an empty row
    return sps.csr_array(dense)


@pytest.mark.parametrize("backend", XPS)
@pytest.mark.parametrize(("rows", "cols", "batch"), [(37, 23, 9), (5, 64, 3), (0, 4, 2), (6, 0, 3)])
def test_sparse_matmul_is_the_dense_product(backend: str, rows: int, cols: int, batch: int) -> None:
    xp = _xp(backend)
    S = _sparse_case(rows, cols, seed=rows + cols)
    A = K.CSR.from_scipy(S)
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((batch, rows)), rng.standard_normal((cols, batch))
    dense = S.toarray()
    for got, ref, bound in (
        (K.sparse_matmul(xp.asarray(X), A), X @ dense, np.abs(X) @ np.abs(dense)),
        (K.sparse_matmul(A, xp.asarray(Y)), dense @ Y, np.abs(dense) @ np.abs(Y)),
    ):
        got = to_numpy(got)
        assert got.shape == ref.shape and got.dtype == np.float64
        # Both sides add the same products in some order: each output is within
        # gamma_n * sum |products| of the exact value, n <= rows (cols) terms (Higham, 3.1).
        n = max(rows, cols, 1)
        assert np.all(np.abs(got - ref) <= 2 * _gamma(n) * bound)
        if backend == "numpy":  # the NumPy path is scipy's product itself
            assert_array_equal(got, X @ S if ref.shape == (batch, cols) else S @ Y)


@pytest.mark.parametrize("backend", XPS)
def test_csr_from_dense_moves_and_round_trips(backend: str) -> None:
    xp = _xp(backend)
    S = _sparse_case(12, 9, seed=3)
    A = K.CSR.from_dense(xp.asarray(S.toarray()))
    assert (A.shape, A.nnz) == (S.shape, S.nnz)
    assert_array_equal(to_numpy(A.indptr), S.indptr)
    assert_array_equal(to_numpy(A.indices), S.indices)
    assert_array_equal(to_numpy(A.data), S.data)
    assert_array_equal(to_numpy(A.toarray()), S.toarray())
    assert_array_equal(A.to_scipy().toarray(), S.toarray())
    wrapped = K.CSR.from_scipy(S)
    moved = wrapped.to(xp)
    assert moved is wrapped.to(xp)  # moved once, then cached (NumPy: the matrix itself)
    assert (moved is wrapped) == (backend == "numpy")
    assert_array_equal(to_numpy(moved.toarray()), S.toarray())


@pytest.mark.parametrize("backend", XPS)
def test_sparse_matmul_keeps_float32_and_ignores_unread_infinities(backend: str) -> None:
    xp = _xp(backend)
    S = sps.csr_array(np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]], dtype=np.float32))
    X = np.array([[1.0, 2.0, np.inf]], dtype=np.float32)  # column 2 is read by no output
    got = to_numpy(K.sparse_matmul(xp.asarray(X), K.CSR.from_scipy(S)))
    assert got.dtype == np.float32
    assert_array_equal(got, [[1.0, 4.0]])  # padding adds exact zeros, never 0 * inf


def test_csr_and_sparse_matmul_reject_bad_arguments() -> None:
    A = K.CSR.from_scipy(sps.csr_array(np.eye(3)))
    with pytest.raises(ValueError, match="indptr"):
        K.CSR(np.zeros(3, np.int64), np.zeros(0, np.int64), np.zeros(0), (3, 3))
    with pytest.raises(ValueError, match="indices and data"):
        K.CSR(np.zeros(4, np.int64), np.zeros(1, np.int64), np.zeros(0), (3, 3))
    with pytest.raises(ValueError, match="shape"):
        K.CSR(np.zeros(4, np.int64), np.zeros(0, np.int64), np.zeros(0), (3, -1))
    with pytest.raises(ValueError, match="one dense array and one CSR"):
        K.sparse_matmul(A, A)
    with pytest.raises(ValueError, match="one dense array and one CSR"):
        K.sparse_matmul(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="a must have 3 columns"):
        K.sparse_matmul(np.ones((2, 4)), A)
    with pytest.raises(ValueError, match="b must have 3 rows"):
        K.sparse_matmul(A, np.ones((4, 2)))
    with pytest.raises(ValueError, match="2-d"):
        K.sparse_matmul(np.ones(3), A)
    with pytest.raises(ValueError, match="matrix must be a scipy.sparse"):
        K.CSR.from_scipy(np.eye(3))


@pytest.mark.gpu
def test_sparse_matmul_on_gpu(cupy_xp) -> None:  # pragma: no cover - GPU only
    xp = cupy_xp
    S = _sparse_case(40, 30, seed=2)
    A = K.CSR.from_scipy(S)
    X = np.random.default_rng(0).standard_normal((7, 40))
    assert_allclose(to_numpy(K.sparse_matmul(xp.asarray(X), A)), X @ S.toarray(), atol=1e-12)
    Y = np.random.default_rng(1).standard_normal((30, 5))
    assert_allclose(to_numpy(K.sparse_matmul(A, xp.asarray(Y))), S.toarray() @ Y, atol=1e-12)
