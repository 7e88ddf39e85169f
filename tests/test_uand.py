"""U-AND (paper §1, §3): brute-force oracles, exhaustive truth checks, theory-scale statistics, CLI."""

from __future__ import annotations

import itertools
import json
from math import comb

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import superposition as sp
from superposition import theory
from superposition import uand as U
from superposition.cli import main

FLOAT_TOL = 1e-10  # float64 rounding of sums over ~10^5 outputs of values <= s


# ---------------------------------------------------------------- the oracle


def brute_errors(net: U.UAnd, active: np.ndarray) -> dict[int, np.ndarray]:
    """Per-sample, per-output Python loops on an explicit dense W (the naive algorithm).

    Returns, for each pattern j, the errors as a (K, outputs with pattern j) ragged list flattened,
    and ``max_per_input``.
    """
    W = net.W.toarray() if net.weights == "bernoulli" else np.asarray(net.W)
    d, m = W.shape
    n = net.arity
    c = (
        None
        if net.weights == "bernoulli"
        else theory.sign_readout_constant(net.sparsity, net.weights)
    )
    errs: dict[int, list[float]] = {j: [] for j in range(n + 1)}
    per_input = []
    for act in active:
        x = np.zeros(m)
        x[list(act)] = 1.0
        a = np.maximum(W @ x + net.bias, 0.0)
        worst = 0.0
        for T in itertools.combinations(range(m), n):
            if c is None:
                gamma = [i for i in range(d) if all(W[i, k] == 1 for k in T)]
                y = sum(a[i] for i in gamma) / len(gamma) if gamma else 0.0
            else:
                y = sum(np.sign(W[i, T[0]] * W[i, T[1]]) * a[i] for i in range(d)) / (d * c)
            j = int(sum(x[k] for k in T))
            e = y - (1.0 if j == n else 0.0)
            errs[j].append(e)
            worst = max(worst, abs(e))
        per_input.append(worst)
    out = {j: np.array(v) for j, v in errs.items()}
    out["input_max"] = np.array(per_input)  # type: ignore[index]
    return out


def assert_matches_brute(res: U.UAndErrors, brute: dict, bins: np.ndarray | None = None) -> None:
    for j in range(res.arity + 1):
        e = brute[j]
        assert res.count[j] == e.size
        assert res.nonzero[j] == np.count_nonzero(e + (j == res.arity))
        assert_allclose(res.sum[j], e.sum(), atol=FLOAT_TOL)
        assert_allclose(res.sum_abs[j], np.abs(e).sum(), atol=FLOAT_TOL)
        assert_allclose(res.sum_sq[j], (e**2).sum(), atol=FLOAT_TOL)
        assert_allclose(res.max_abs[j], np.abs(e).max(initial=0.0), atol=FLOAT_TOL)
        if bins is not None:
            assert_array_equal(res.histogram[j], np.histogram(e, bins)[0])
    assert_allclose(res.input_max_abs, brute["input_max"], atol=FLOAT_TOL)


CASES = [  # weights, arity, m, d, s, p: small enough for the Python-loop oracle
    ("bernoulli", 2, 18, 120, 3, 0.3),  # dense overlaps: the co-membership route for shared pairs
    ("bernoulli", 2, 40, 200, 3, 0.08),  # sparse overlaps: the pairwise-intersection route
    ("bernoulli", 3, 12, 80, 4, 0.4),
    ("rademacher", 2, 14, 40, 3, None),
    ("gaussian", 2, 14, 40, 4, None),
]


@pytest.mark.parametrize(("weights", "arity", "m", "d", "s", "p"), CASES)
def test_fast_evaluation_matches_brute_force(weights, arity, m, d, s, p) -> None:
    net = U.build_uand(m, d, s, weights=weights, arity=arity, p=p, seed=1)
    act = sp.sample_sparse(m, s, 6, seed=2)
    brute = brute_errors(net, act)
    bins = np.linspace(-1.5, 2.5, 9)
    methods = ["tiles", "sparse"] if weights == "bernoulli" and arity == 2 else ["tiles"]
    for method in methods:
        for tile in (None, 7, 10**6):  # one row of the Gram / 7 outputs per tile; one tile
            res = U.evaluate_uand(net, act, method=method, tile=tile, bins=bins)
            assert_matches_brute(res, brute, bins)
            assert res.n_samples == 6 and res.n_outputs == comb(m, arity)


def test_sparse_path_wide_counts_and_fewer_active_inputs() -> None:
    # |Γ| up to ~d p^2 = 270 > 255: the Gram tile is stored as uint16; inputs with 0..3 actives
    net = U.build_uand(16, 300, 3, p=0.95, seed=3)
    for s in range(4):
        act = sp.sample_sparse(16, s, 3, seed=s) if s else np.zeros((2, 0), np.int64)
        assert_matches_brute(U.evaluate_uand(net, act, method="sparse"), brute_errors(net, act))


def test_auto_method_uses_the_sparse_path_for_sparse_outputs_at_large_m() -> None:
    net = U.build_uand(1500, 400, 3, seed=0)  # p = 0.086: few firing neurons
    act = sp.sample_sparse(1500, 3, 4, seed=1)
    assert U._sparse_cost(net, act) < U._tiles_cost(net, act)
    a, b = U.evaluate_uand(net, act), U.evaluate_uand(net, act, method="tiles")
    for f in ("count", "nonzero", "max_abs", "input_max_abs"):
        assert_allclose(getattr(a, f), getattr(b, f), atol=FLOAT_TOL)
    for f in ("sum", "sum_abs", "sum_sq"):
        assert_allclose(getattr(a, f), getattr(b, f), rtol=1e-9)


def test_evaluation_from_given_activations() -> None:
    """The hook for first layers that read inputs differently (superposition, issue 4)."""
    net = U.build_uand(40, 100, 3, p=0.2, seed=0)
    act = sp.sample_sparse(40, 3, 5, seed=1)
    own = U.evaluate_uand(net, act, method="tiles")
    given = U.evaluate_uand(net, act, activations=net.activations(act))
    for f in ("count", "nonzero", "sum", "sum_abs", "sum_sq", "max_abs", "input_max_abs"):
        assert_array_equal(getattr(given, f), getattr(own, f))
    silent = U.evaluate_uand(net, act, activations=np.zeros((5, 100)))  # every output reads 0
    assert silent.max_abs_error == 1.0 and silent.nonzero.sum() == 0
    assert silent.mean_abs_error == pytest.approx(comb(3, 2) / comb(40, 2))


def test_outputs_of_chosen_tuples_match_brute_force() -> None:
    net = U.build_uand(10, 50, 3, arity=3, p=0.5, seed=4)
    act = np.array([[0, 3, 7], [1, 2, 9]])
    tup = np.array(list(itertools.combinations(range(10), 3)))
    y = U.uand_outputs(net, act, tup)
    W = net.W.toarray()
    for t, A in enumerate(act):
        a = np.maximum(W[:, A].sum(axis=1) - 2.0, 0.0)
        for q, T in enumerate(tup):
            g = W[:, T].prod(axis=1) == 1
            assert y[t, q] == pytest.approx(a[g].mean() if g.any() else 0.0, abs=FLOAT_TOL)


def test_fitted_readout_is_the_least_squares_solution() -> None:
    """The stored form (C, training tuples) equals R = Yᵀ A (AᵀA + λI)⁻¹ built explicitly."""
    m, d, k = 9, 30, 400
    net = U.build_uand(m, d, 3, weights="gaussian", seed=0)
    fr = U.fit_uand_readout(net, k, ridge=1e-3, seed=1)
    train = sp.sample_sparse(m, 3, k, seed=1)
    A = net.activations(train)
    tup = np.array(list(itertools.combinations(range(m), 2)))
    x = sp.to_dense(train, m)
    Y = x[:, tup[:, 0]] * x[:, tup[:, 1]]
    gram = A.T @ A
    lam = 1e-3 * np.trace(gram) / d
    R = np.linalg.solve(gram + lam * np.eye(d), A.T @ Y).T
    test = sp.sample_sparse(m, 3, 20, seed=9)
    assert_allclose(
        U.uand_outputs(net, test, tup, readout=fr), net.activations(test) @ R.T, atol=1e-9
    )
    res = U.evaluate_uand(net, test, readout=fr)
    assert_matches_brute(res, _errors_from_outputs(net.activations(test) @ R.T, test, tup, 2))


def _errors_from_outputs(y: np.ndarray, active: np.ndarray, tup: np.ndarray, n: int) -> dict:
    x = sp.to_dense(active, tup.max() + 1)
    J = sum(x[:, tup[:, i]] for i in range(n)).astype(int)
    err = y - (J == n)
    out = {j: err[J == j] for j in range(n + 1)}
    out["input_max"] = np.abs(err).max(axis=1)
    return out


def test_fitted_readout_without_ridge_falls_back_to_least_squares() -> None:
    """With ridge 0 and neurons that never fire, AᵀA is singular: the fit uses lstsq, whose
    solution still satisfies the normal equations AᵀA X = Aᵀ."""
    net = U.build_uand(12, 60, 3, p=0.1, seed=2)
    train = sp.sample_sparse(12, 3, 300, seed=3)
    A = net.activations(train)
    assert (A.max(axis=0) == 0).any()  # dead neurons: a singular Gram matrix
    fr = U.fit_uand_readout(net, 300, ridge=0.0, seed=3)
    assert_allclose(A.T @ A @ fr.coef.T, A.T, atol=1e-8)


@pytest.mark.parametrize("weights", U.WEIGHTS)
def test_fitted_readout_beats_or_matches_the_analytic_one(weights: str) -> None:
    """LS minimises the training squared error over all linear readouts, the analytic one
    included; with 10^4 training inputs for d = 200 weights per output the generalisation gap
    (~ d / K_train = 2% of the error) is far smaller than the observed margin (the fitted
    RMS error is ~10x smaller), so on fresh inputs it is at most the analytic one."""
    net = U.build_uand(16, 200, 3, weights=weights, p=0.3 if weights == "bernoulli" else None)
    fr = U.fit_uand_readout(net, 10_000, seed=5)
    test = sp.sample_sparse(16, 3, 500, seed=6)
    assert U.evaluate_uand(net, test, readout=fr).rms_error <= U.evaluate_uand(net, test).rms_error


# ---------------------------------------------------------------- exhaustive truth checks


def test_tuple_rank_and_unrank_enumerate_all_combinations() -> None:
    for m, n in [(1, 1), (7, 1), (9, 2), (11, 3), (10, 4), (6, 6)]:
        combos = np.array(list(itertools.combinations(range(m), n)))
        assert_array_equal(U.tuple_unrank(np.arange(comb(m, n)), m, n), combos)
        assert_array_equal(U.tuple_rank(combos, m), np.arange(comb(m, n)))
    big = np.array([[0, 1], [49_998, 49_999], [123, 40_000]])
    assert_array_equal(U.tuple_unrank(U.tuple_rank(big, 50_000), 50_000, 2), big)


def test_theorem1_literally_every_and_of_every_sparse_input_decodes() -> None:
    """A Bernoulli layer whose worst error over ALL <= 2-sparse inputs is below 1/2 decodes
    every one of the C(20,2) ANDs of every such input by thresholding at 1/2."""
    m, s = 20, 2
    net = U.build_uand(m, 2000, s, p="worst_case", seed=0)
    worst = U.worst_case_uand(net)
    assert worst.n_samples == 1 + m + comb(m, 2)
    assert worst.count.sum() == worst.n_samples * comb(m, 2)
    assert worst.max_abs_error < 0.5
    tup = np.array(list(itertools.combinations(range(m), 2)))
    for size in range(s + 1):
        act = U.tuple_unrank(np.arange(comb(m, size)), m, size)
        y = U.uand_outputs(net, act, tup)
        x = sp.to_dense(act, m) if size else np.zeros((1, m))
        assert_array_equal(y > 0.5, (x[:, tup[:, 0]] * x[:, tup[:, 1]]) == 1)


def test_bernoulli_worst_case_is_attained_at_exactly_s_active() -> None:
    """Bernoulli outputs never decrease when a feature outside the tuple turns on (ReLU of a
    non-negative combination, non-negative readout), so the worst case over <= s active
    features equals the worst case over exactly s (for m >= s + n)."""
    net = U.build_uand(14, 150, 3, p=0.3, seed=2)
    a, b = U.worst_case_uand(net, at_most=True), U.worst_case_uand(net, at_most=False)
    assert a.max_abs_error == b.max_abs_error > 0
    assert a.n_samples == sum(comb(14, j) for j in range(4)) and b.n_samples == comb(14, 3)


def test_sign_readout_is_calibrated_to_exactly_s() -> None:
    """c_D(s) is exact only for s active inputs: with 2 of 3 (Rademacher), an all-active pair
    reads c_D(2)/c_D(3) = 2 on average, so allowing fewer active inputs makes the worst case worse."""
    assert theory.sign_readout_constant(2) / theory.sign_readout_constant(3) == 2.0
    net = U.build_uand(10, 400, 3, weights="rademacher", seed=0)
    assert (
        U.worst_case_uand(net, at_most=True).max_abs_error
        > U.worst_case_uand(net, at_most=False).max_abs_error
    )


# ---------------------------------------------------------------- statistics against theory


def _pattern_outputs(net: U.UAnd, act: np.ndarray, j: int) -> list[np.ndarray]:
    """Per input, the outputs of every pair with ``j`` of its 2 features active."""
    out = []
    for A in act:
        rest = np.setdiff1d(np.arange(net.n_features), A)
        if j == 2:
            tup = np.array(list(itertools.combinations(A, 2)))
        else:
            tup = np.sort(np.array([(k, r) for k in A for r in rest]), axis=1)
        out.append(U.uand_outputs(net, A[None, :], tup)[0])
    return out


def _within(values: np.ndarray, expected: float, sigmas: float = 4.0) -> None:
    """Mean of independent per-input statistics within ``sigmas`` standard errors."""
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - expected) <= sigmas * se, (values.mean(), expected, se)


# Statistical units must be independent. A Bernoulli output with j >= 1 active features
# depends on the columns of W of the active features (fresh for each input: two random
# 3-sparse inputs of m = 300 rarely share a feature) and, for j = 1, on the inactive column l,
# which all inputs share; but the error is a mean of N_i ~ Bin(s-1, p) over Γ(k, l), and N_i
# (the wiring to the other active features) is independent of Γ, so the shared columns only
# reweight terms of equal expectation: per-input means are independent units to first order.
# A 4-standard-error band then fails with probability ~1e-4 when the theory is right. Outputs
# with j = 0 are left out: their average over pairs is dominated by the shared columns.


def test_bernoulli_mean_error_per_pattern_matches_exact_moments() -> None:
    """The exact expectations of ``theory.bernoulli_error_moments``: (1 - q) s' p for one active
    feature (the paper's s'p heuristic with s' = s - 1, made exact), and the mean over Γ of
    the s - 2 others for both active. Using s' = s instead would sit ~35 standard errors away."""
    m, d, s, k = 300, 2000, 3, 300
    net = U.build_uand(m, d, s, seed=11)
    act = sp.sample_sparse(m, s, k, seed=12)
    for j in (1, 2):
        exact = theory.bernoulli_error_moments(d, net.p, s, j)
        errs = [y - (j == 2) for y in _pattern_outputs(net, act, j)]
        _within(np.array([e.mean() for e in errs]), exact["mean"])
        _within(np.array([(e**2).mean() for e in errs]), exact["mean_sq"])
    exact1 = theory.bernoulli_error_moments(d, net.p, s, 1)
    assert exact1["mean"] == pytest.approx(
        (1 - exact1["p_empty"]) * theory.heuristic_error_mean(s - 1, net.p), rel=1e-12
    )


def test_gamma_sizes_match_d_p_squared() -> None:
    """Σ_{k<l} |Γ(k,l)| = Σ_i C(|S_i|, 2) with |S_i| ~ Bin(m, p) i.i.d. over neurons: its mean
    is d C(m,2) p² and its variance d Var C(X,2), computed exactly; 4 sigma."""
    from scipy import stats

    m, d, p = 400, 500, 0.06
    net = U.build_uand(m, d, 3, p=p, seed=5)
    sizes = np.diff(net.W.supports().indptr)  # features per neuron
    total = float((sizes * (sizes - 1) / 2).sum())
    x = np.arange(m + 1)
    pmf = stats.binom.pmf(x, m, p)
    c2 = x * (x - 1) / 2
    var = d * (pmf @ c2**2 - (pmf @ c2) ** 2)
    mean = comb(m, 2) * theory.expected_gamma_size(d, p)
    assert abs(total - mean) <= 4 * np.sqrt(var)


@pytest.mark.parametrize("weights", ["rademacher", "gaussian"])
def test_sign_readout_is_unbiased_with_the_exact_variance(weights: str) -> None:
    """The reconstructed normalisation c_D(s): outputs whose AND is 1 average exactly 1 (a c_D
    wrong by a factor 2 would put the mean at 0.5 or 2, > 50 standard errors away); others
    average 0; and the mean squared error is the exact variance of
    ``theory.sign_error_moments`` (the output is a mean of d i.i.d. neuron terms).

    Here a one-active output's average over its inactive partner l is correlated with the
    shared column l (a_i and sgn W_ik are correlated), so each unit gets a fresh network:
    the units are exactly independent."""
    m, d, s, units = 60, 1000, 3, 300
    stats: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    for u in range(units):
        net = U.build_uand(m, d, s, weights=weights, seed=1000 + u)
        act = sp.sample_sparse(m, s, 1, seed=5000 + u)
        for j in (1, 2):
            e = _pattern_outputs(net, act, j)[0] - (j == 2)
            stats[j].append((e.mean(), (e**2).mean()))
    for j in (1, 2):
        std = theory.sign_error_moments(d, s, weights, j)["std"]
        mean, sq = np.array(stats[j]).T
        _within(mean, 0.0)
        _within(sq, std**2)


def test_batches_combine() -> None:
    net = U.build_uand(200, 300, 3, p=0.1, seed=0)
    act = sp.sample_sparse(200, 3, 10, seed=1)
    whole = U.evaluate_uand(net, act)
    parts = U.UAndErrors.combine([U.evaluate_uand(net, act[:4]), U.evaluate_uand(net, act[4:])])
    for f in ("count", "nonzero", "max_abs", "input_max_abs"):
        assert_array_equal(getattr(parts, f), getattr(whole, f))
    for f in ("sum", "sum_abs", "sum_sq"):
        assert_allclose(getattr(parts, f), getattr(whole, f), rtol=1e-12)


# ---------------------------------------------------------------- construction, determinism, API


def test_same_seed_same_bits() -> None:
    for w in U.WEIGHTS:
        a, b = (
            U.build_uand(50, 30, 3, weights=w, seed=7),
            U.build_uand(50, 30, 3, weights=w, seed=7),
        )
        c = U.build_uand(50, 30, 3, weights=w, seed=8)
        dense = (lambda n: n.W.toarray()) if w == "bernoulli" else (lambda n: n.W)
        assert_array_equal(dense(a), dense(b))
        assert not np.array_equal(dense(a), dense(c))
    f1 = U.fit_uand_readout(U.build_uand(8, 20, 3, weights="gaussian"), 50, seed=3)
    f2 = U.fit_uand_readout(U.build_uand(8, 20, 3, weights="gaussian"), 50, seed=3)
    assert_array_equal(f1.coef, f2.coef)


def test_construction_matches_its_definition() -> None:
    net = U.build_uand(500, 400, 3, seed=0)
    assert net.p == pytest.approx(theory.balanced_p(400, 3)) and net.bias == -1.0
    W = net.dense()
    assert set(np.unique(W)) == {0.0, 1.0} and W.shape == (400, 500)
    assert (np.diff(net.W.indices[net.W.indptr[0] : net.W.indptr[1]]) > 0).all()
    assert U.build_uand(500, 400, 4, arity=3, seed=0).bias == -2.0
    rad = U.build_uand(20, 30, 3, weights="rademacher", seed=0)
    assert set(np.unique(rad.W)) == {-1.0, 1.0} and rad.bias == 0.0 and rad.p == 1.0
    assert U.build_uand(20, 30, 3, weights="gaussian", p=1.0).p == 1.0
    assert U.build_uand(50, 400, 3, p="paper").p == pytest.approx(np.log(50) ** 2 / 20)
    assert U.build_uand(50, 100, 3, p="worst_case").p == pytest.approx((4 * 100) ** -0.25)


def test_activations_through_the_array_api() -> None:
    import array_api_strict as xps

    for w in U.WEIGHTS:
        net = U.build_uand(30, 20, 3, weights=w, p=0.3 if w == "bernoulli" else None, seed=1)
        act = sp.sample_sparse(30, 3, 5, seed=2)
        x = sp.to_dense(act, 30)
        W = net.W.toarray() if w == "bernoulli" else net.W
        ref = net.activations(act)
        assert_allclose(U.relu_layer(W, x, net.bias), ref, atol=FLOAT_TOL)
        strict = U.relu_layer(xps.asarray(W), xps.asarray(x), net.bias)
        assert_allclose(np.asarray(strict), ref, atol=FLOAT_TOL)


def test_summary_and_pattern_views() -> None:
    net = U.build_uand(30, 100, 1, p=0.2, seed=0)
    res = U.evaluate_uand(net, sp.sample_sparse(30, 1, 4, seed=0))
    assert res.all_active["count"] == 0 and res.all_active["mean_abs"] is None
    summ = res.summary()
    assert summ["error_all_active"] == {"mean": None, "max": None}
    assert summ["n_outputs"] == comb(30, 2) and summ["max_abs_error"] == 0.0  # 1 active: no firing


# ---------------------------------------------------------------- every ValueError


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"n_features": 0}, "n_features"),
        ({"neurons": 0}, "neurons"),
        ({"neurons": 2.5}, "neurons must be an integer"),
        ({"sparsity": 31}, "sparsity"),
        ({"weights": "uniform"}, "weights"),
        ({"arity": 1}, "arity"),
        ({"arity": 31}, "arity"),
        ({"weights": "gaussian", "arity": 3}, "odd arity"),
        ({"weights": "rademacher", "sparsity": 1}, "sparsity must be >= 2"),
        ({"weights": "rademacher", "p": 0.5}, "p applies"),
        ({"weights": "rademacher", "p": "paper"}, "p applies"),
        ({"p": 0.0}, r"p must be in \(0.0, 1.0\]"),
        ({"p": 1.5}, "p must be in"),
        ({"p": "often"}, "p must be one of"),
        ({"p": "paper"}, r"ln\(m\)\^2/sqrt\(d\) = .* > 1"),
        ({"seed": -1}, "seed"),
    ],
)
def test_build_rejects(kwargs: dict, needle: str) -> None:
    args = {"n_features": 30, "neurons": 50, "sparsity": 3, **kwargs}
    with pytest.raises(ValueError, match=needle):
        U.build_uand(args.pop("n_features"), args.pop("neurons"), args.pop("sparsity"), **args)


def test_sparse_pairs_take_any_activations(rng: np.random.Generator) -> None:
    """The sparse pair algorithm reads any non-negative activations (a layer on superposed
    inputs fires neurons that no active feature reaches): it matches the dense tiles."""
    net = U.build_uand(150, 300, 3, p=0.12, seed=3)
    act = sp.sample_sparse(150, 3, 4, seed=4)
    a = np.maximum(rng.normal(0.0, 0.6, size=(4, 300)), 0.0)  # a third of the neurons fire
    got = U.evaluate_uand(net, act, activations=a, method="sparse")
    ref = U.evaluate_uand(net, act, activations=a, method="tiles")
    assert_array_equal(got.count, ref.count)
    assert_array_equal(got.nonzero, ref.nonzero)
    assert_allclose(got.sum_abs, ref.sum_abs, rtol=1e-12)
    assert_allclose(got.max_abs, ref.max_abs, rtol=1e-12)
    assert_allclose(got.input_max_abs, ref.input_max_abs, rtol=1e-12)


def test_evaluation_rejects_bad_arguments() -> None:
    net = U.build_uand(20, 30, 3, p=0.3)
    sign = U.build_uand(20, 30, 3, weights="rademacher")
    act = sp.sample_sparse(20, 3, 2, seed=0)
    bad = [
        (lambda: U.evaluate_uand(net, act, method="magic"), "method"),
        (lambda: U.evaluate_uand(sign, act, method="sparse"), "method='sparse' needs"),
        (lambda: U.evaluate_uand(net, act, readout=sign.readout, method="sparse"), "needs"),
        (lambda: U.evaluate_uand(net, act, tile=0), "tile"),
        (lambda: U.evaluate_uand(net, act, activations=np.zeros((2, 29))), "activations"),
        (lambda: U.evaluate_uand(net, act, bins=[1.0]), "bins"),
        (lambda: U.evaluate_uand(net, act, bins=[1.0, 0.0]), "bins"),
        (lambda: U.evaluate_uand(net, act.astype(float)), "integer array"),
        (lambda: U.evaluate_uand(net, act[0]), "shape"),
        (lambda: U.evaluate_uand(net, act + 20), r"\[0, 19\]"),
        (lambda: U.evaluate_uand(net, np.array([[1, 1, 2]])), "distinct"),
        (
            lambda: U.evaluate_uand(U.build_uand(20, 30, 4, arity=3), act, readout=net.readout),
            "arity",
        ),
        (lambda: U.worst_case_uand(U.build_uand(2000, 30, 3, p=0.1)), "enumerate"),
        (lambda: U.fit_uand_readout(net, 0), "n_train"),
        (lambda: U.fit_uand_readout(net, 10, sparsity=1), "sparsity must be >= arity"),
        (lambda: U.fit_uand_readout(net, 10, ridge=-1.0), "ridge"),
        (lambda: U.uand_outputs(net, act, np.array([[0, 1, 2]])), "shape"),
        (lambda: U.uand_outputs(net, act, np.array([[3, 1]])), "strictly increasing"),
        (lambda: U.uand_outputs(net, act, np.array([[3, 20]])), "strictly increasing"),
        (lambda: U.connection_probability("paper", 1, 10, 1, 2), "n_features >= 2"),
    ]
    for call, needle in bad:
        with pytest.raises(ValueError, match=needle):
            call()


# ---------------------------------------------------------------- command line


SMALL = ["uand", "--features", "12", "--neurons", "60", "--sparsity", "3", "--samples", "5"]


def test_cli_json_keys_and_agreement_with_the_brute_force_oracle(capsys) -> None:
    assert main([*SMALL, "--p", "0.3", "--seed", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == [
        "n_features",
        "neurons",
        "sparsity",
        "arity",
        "weights",
        "p",
        "n_samples",
        "n_outputs",
        "max_abs_error",
        "mean_abs_error",
        "error_all_active",
        "error_not_all_active",
        "backend",
    ]
    assert set(out["error_all_active"]) == {"mean", "max"} == set(out["error_not_all_active"])
    assert (out["n_features"], out["n_outputs"], out["p"]) == (12, 66, 0.3)
    # an independent implementation of the same construction, on the same seeds
    net_seed, input_seed = np.random.SeedSequence(4).spawn(2)
    net = U.build_uand(12, 60, 3, p=0.3, seed=net_seed)
    brute = brute_errors(net, sp.sample_sparse(12, 3, 5, seed=input_seed))
    every = np.abs(np.concatenate([brute[j] for j in range(3)]))
    assert out["mean_abs_error"] == pytest.approx(every.mean(), abs=FLOAT_TOL)
    assert out["max_abs_error"] == pytest.approx(every.max(), abs=FLOAT_TOL)
    assert out["error_all_active"]["mean"] == pytest.approx(np.abs(brute[2]).mean(), abs=FLOAT_TOL)
    rest = np.abs(np.concatenate([brute[0], brute[1]]))
    assert out["error_not_all_active"]["max"] == pytest.approx(rest.max(), abs=FLOAT_TOL)


def test_cli_old_flags_still_work_with_a_warning(capsys) -> None:
    """--width and --inputs are the 0.1 spellings of --neurons and --samples: one release of grace."""
    assert main([*SMALL, "--seed", "4", "--json"]) == 0
    new = capsys.readouterr()
    old = ["uand", "--features", "12", "--width", "60", "--sparsity", "3", "--inputs", "5"]
    assert main([*old, "--seed", "4", "--json"]) == 0
    got = capsys.readouterr()
    assert json.loads(got.out) == json.loads(new.out)
    lines = got.err.strip().splitlines()
    assert len(lines) == 2 and all("deprecated" in line for line in lines)
    assert "use --neurons" in lines[0] and "use --samples" in lines[1]
    assert new.err == ""
    # a required flag given under its old name satisfies the requirement; neither is an error
    assert main(["uand", "--features", "12", "--sparsity", "3"]) == 2
    assert "required: --neurons" in capsys.readouterr().err


def test_cli_table_and_other_constructions(capsys) -> None:
    assert main([*SMALL, "--weights", "gaussian"]) == 0
    text = capsys.readouterr().out
    assert "2 of 2 active" in text and "0 of 2 active" in text and "gaussian" in text
    assert main([*SMALL, "--arity", "3", "--sparsity", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_outputs"] == comb(12, 3) and out["p"] == pytest.approx(
        theory.balanced_p(60, 4, 3)
    )


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--sparsity", "13"], "sparsity"),
        (["--neurons", "0"], "--neurons"),
        (["--features", "2.5"], "--features"),
        (["--p", "1.5"], "--p"),
        (["--p", "0"], "--p"),
        (["--p", "sometimes"], "--p"),
        (["--p", "paper", "--features", "5000"], "p='paper'"),
        (["--weights", "uniform"], "--weights"),
        (["--weights", "rademacher", "--arity", "3"], "arity"),
        (["--weights", "rademacher", "--p", "0.5"], "p applies"),
        (["--seed", "-3"], "--seed"),
    ],
)
def test_cli_bad_arguments_one_line_exit_2(extra, needle, capsys) -> None:
    argv = [*SMALL, *extra]
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err and "Traceback" not in err


# ---------------------------------------------------------------- the part one input touches


@pytest.mark.parametrize(
    ("m", "d", "s", "p"), [(40, 300, 3, 0.15), (25, 120, 4, 0.3), (60, 500, 2, 0.1)]
)
def test_touched_errors_equal_the_exact_evaluation(m, d, s, p) -> None:
    """From a real network, the type counts reproduce every output with an active member."""
    net = U.build_uand(m, d, s, p=p, seed=21)
    act = sp.sample_sparse(m, s, 5, seed=22)
    for A in act:
        res = U.evaluate_uand(net, A[None, :])
        got = U.touched_errors(U.touched_counts(net, A))
        both, one = res.pattern(2), res.pattern(1)
        assert_allclose(got["max_all_active"], both["max_abs"], atol=FLOAT_TOL)
        assert_allclose(got["mean_all_active"], both["mean_abs"], atol=FLOAT_TOL)
        assert_allclose(got["max_one_active"], one["max_abs"], atol=FLOAT_TOL)
        assert_allclose(got["mean_one_active"], one["mean_abs"], atol=FLOAT_TOL)
        assert got["max_abs_error"] == max(both["max_abs"], one["max_abs"])


def test_sampled_touched_counts_have_the_networks_distribution() -> None:
    """Draws without a network against draws from real networks (and the exact theory).

    Each draw is one (network, input) pair, independent across draws. The mean |error| over an
    input's outputs with one active member has expectation E|err| of one such output
    (``bernoulli_error_moments``, exact): both sources within 4 standard errors of it. The
    fraction of draws whose worst output exceeds 0.6 is a proportion: the two sources agree
    within 4 standard errors of the difference (fails with probability ~1e-4 if equal)."""
    m, d, s, p, n = 30, 800, 3, 0.1, 400
    sampled, real = [], []
    for r in range(n):
        sampled.append(
            U.touched_errors(
                U.sample_touched_counts(m, d, s, p, seed=np.random.SeedSequence([31, r]))
            )
        )
        net = U.build_uand(m, d, s, p=p, seed=np.random.SeedSequence([32, r]))
        A = sp.sample_sparse(m, s, 1, seed=np.random.SeedSequence([33, r]))[0]
        real.append(U.touched_errors(U.touched_counts(net, A)))
    for key, j in (("mean_one_active", 1), ("mean_all_active", 2)):
        exact = theory.bernoulli_error_moments(d, p, s, j)["mean_abs"]
        _within(np.array([e[key] for e in sampled]), exact)
        _within(np.array([e[key] for e in real]), exact)
    f_s = np.mean([e["max_abs_error"] > 0.6 for e in sampled])
    f_r = np.mean([e["max_abs_error"] > 0.6 for e in real])
    pooled = (f_s + f_r) / 2
    assert 0.05 < pooled < 0.95  # the comparison is informative at these sizes
    assert abs(f_s - f_r) <= 4 * np.sqrt(2 * pooled * (1 - pooled) / n)


def test_sampled_counts_same_seed_same_bits_and_reject() -> None:
    a = U.sample_touched_counts(100, 1000, 3, "worst_case", seed=5)
    b = U.sample_touched_counts(100, 1000, 3, "worst_case", seed=5)
    assert_array_equal(a.wired, b.wired) and a.n_type.sum() == 1000
    assert_array_equal(a.n_type, b.n_type)
    with pytest.raises(ValueError, match="sparsity"):
        U.sample_touched_counts(100, 1000, 1)
    with pytest.raises(ValueError, match="bernoulli"):
        U.touched_counts(U.build_uand(10, 20, 3, weights="rademacher", seed=0), np.array([0, 1, 2]))


# ---------------------------------------------------------------- Theorem 3 on every sparse input


def test_bias_groups_are_built_as_documented() -> None:
    """Contiguous groups of sizes ``group_sizes``, pre-activations W x + b with the per-neuron
    bias (dense oracle), and the readout counts each construction is calibrated on."""
    assert U.group_sizes(10, 3).tolist() == [4, 3, 3] and U.group_sizes(9, 3).sum() == 9
    m, d, s = 20, 50, 4
    plain = U.build_uand(m, d, s, weights="gaussian", seed=1)
    assert plain.bias == 0.0 and plain.groups == () and plain.counts == (s,)
    same = U.build_uand(m, d, s, weights="gaussian", bias=-1.0, seed=1)
    assert same.bias == -1.0 and same.counts == (s,)
    grouped = U.build_uand(m, d, s, weights="gaussian", bias=[0.0, -1.0, -2.0], seed=1)
    assert grouped.groups == (0.0, -1.0, -2.0) and grouped.counts == (2, 3, 4)
    assert_array_equal(grouped.bias, np.repeat([0.0, -1.0, -2.0], [17, 17, 16]))
    assert_array_equal(grouped.W, plain.W)  # the same weights: only the biases differ
    act = sp.sample_sparse(m, s, 6, seed=2)
    x = sp.to_dense(act, m).astype(float)
    assert_allclose(grouped.preactivations(act), x @ grouped.W.T + grouped.bias, atol=FLOAT_TOL)
    free = U.build_uand(m, d, 3, weights="rademacher", bias="count_free", seed=1)
    assert free.groups == (-1.0,) and free.bias == -1.0 and free.counts == (2, 3)
    assert free.readout.scale == pytest.approx(4.0 / d, rel=1e-12) and free.readout.coef is None


def test_grouped_readout_equals_its_definition() -> None:
    """Every output of a grouped layer against y_kl = Σ_g α_g/d_g Σ_{i∈g} sgn(W_ik W_il) a_i,
    computed from the calibration by loops; and the exact evaluation against that oracle."""
    m, d, s = 12, 60, 4
    net = U.build_uand(m, d, s, weights="rademacher", bias="count_free", seed=3)
    cal = net.sign_calibration()
    assert len(net.groups) > 1 and cal.residual < 1e-9
    sizes = U.group_sizes(d, len(net.groups))
    coef = np.repeat(np.array(cal.alpha) / sizes, sizes)
    W = np.asarray(net.W)
    act = np.array([[0, 3, 5, 9], [1, 2, 7, 11]])
    tup = np.array(list(itertools.combinations(range(m), 2)))
    got = U.uand_outputs(net, act, tup)
    for t, A in enumerate(act):
        x = np.zeros(m)
        x[A] = 1.0
        a = np.maximum(W @ x + net.bias, 0.0)
        want = [sum(coef[i] * np.sign(W[i, k] * W[i, q]) * a[i] for i in range(d)) for k, q in tup]
        assert_allclose(got[t], want, atol=FLOAT_TOL)
    res = U.evaluate_uand(net, act)
    y = got - np.array([[float(k in A and q in A) for k, q in tup] for A in act])
    assert res.max_abs_error == pytest.approx(np.abs(y).max(), abs=FLOAT_TOL)


def test_any_linear_readout_of_a_rademacher_layer_obeys_the_identity() -> None:
    """2 ŷ(klj) = ŷ(kl) + ŷ(kj) + ŷ(lj) for every readout of a bias-0 ±1 layer (here a random
    one, per neuron): so no readout reads the AND of (k, l) within 1/5 on all four inputs."""
    net = U.build_uand(9, 200, 3, weights="rademacher", seed=4)
    rng = np.random.default_rng(5)
    R = rng.standard_normal(200)
    for k, q, j in itertools.combinations(range(9), 3):
        three = net.activations(np.array([[k, q, j]]))
        a = np.vstack([three, net.activations(np.array([[k, q], [k, j], [q, j]]))])
        y = a @ R
        assert 2 * y[0] == pytest.approx(y[1] + y[2] + y[3], abs=1e-9)


@pytest.mark.parametrize(
    ("weights", "bias", "expect"),
    [
        ("rademacher", None, {2: 2.0, 3: 1.0}),  # c(2)/c(3) = 2: the failure at fewer than s
        ("rademacher", -1.0, {2: 1.0, 3: 1.0}),  # c_{-1}(2) = c_{-1}(3): count-free, s = 3
        ("gaussian", None, {2: 0.23369497725510904 / 0.16861284742054233, 3: 1.0}),
        ("gaussian", "count_free", {2: 1.0, 3: 1.0}),
    ],
)
def test_mean_and_reading_by_count(weights: str, bias, expect: dict) -> None:
    """Averaged over networks, an AND that is 1 reads c(n)/c(s) with the paper's readout and 1
    at every count with the count-free one. Units: one fresh network each (independent); the
    per-network mean of its AND outputs has std at most the per-output std noise/√d
    (theory.SignCalibration.noise) even if fully correlated, so 10 networks give a standard
    error <= noise/√(10 d) ~ 0.03 here; the band is 5 of them (the alternative values differ
    by >= 0.38)."""
    m, d, s, nets = 40, 2000, 3, 10
    for n, want in expect.items():
        reads = []
        for u in range(nets):
            net = U.build_uand(m, d, s, weights=weights, bias=bias, seed=100 + u)
            act = U.sample_counts(m, [n], 50, seed=200 + u)[n]
            reads.append(1.0 + U.evaluate_uand(net, act).pattern(2)["mean"])
        noise = net.sign_calibration().noise
        assert abs(np.mean(reads) - want) < 5 * noise / np.sqrt(nets * d), (n, np.mean(reads))


def test_count_free_worst_case_over_every_sparse_input_beats_the_floor() -> None:
    """At m = 10, every input with at most 3 active: the paper's bias-0 Rademacher layer stays
    above the floor 1/5 at any width, the count-free one goes below it."""
    for d in (500, 4000):
        plain = U.build_uand(10, d, 3, weights="rademacher", seed=6)
        assert U.worst_case_uand(plain, at_most=True).max_abs_error >= 0.2
    free = U.build_uand(10, 4000, 3, weights="rademacher", bias="count_free", seed=6)
    assert U.worst_case_uand(free, at_most=True).max_abs_error < 0.2


def test_sample_counts() -> None:
    ins = U.sample_counts(30, [0, 2, 3], 8, seed=1)
    assert [a.shape for a in ins.values()] == [(8, 0), (8, 2), (8, 3)]
    for a in ins.values():
        assert all(len(set(row)) == row.size for row in a)
    again = U.sample_counts(30, [0, 2, 3], 8, seed=1)
    assert all(np.array_equal(ins[n], again[n]) for n in ins)
    more = U.sample_counts(30, [0, 2, 3, 4], 8, seed=1)
    assert all(np.array_equal(ins[n], more[n]) for n in ins)  # adding a count keeps the others
    assert U.input_counts(3) == (3,) and U.input_counts(3, "at_most") == (0, 1, 2, 3)
    with pytest.raises(ValueError, match="counts must be distinct"):
        U.sample_counts(30, [2, 2], 4)
    with pytest.raises(ValueError, match="count"):
        U.sample_counts(30, [31], 4)
    with pytest.raises(ValueError, match="inputs_kind"):
        U.input_counts(3, "fewer")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"bias": 0.0}, "bias applies to sign-symmetric weights only"),
        ({"bias": "count_free"}, "bias applies"),
        ({"weights": "rademacher", "bias": "free"}, "bias must be one of"),
        ({"weights": "rademacher", "bias": []}, "at least one group"),
        ({"weights": "rademacher", "bias": [0.0, float("inf")]}, "bias must be finite"),
        ({"weights": "rademacher", "neurons": 2, "bias": [0.0, -1.0, -2.0]}, "at least the 3"),
    ],
)
def test_bias_rejects(kwargs: dict, needle: str) -> None:
    args = {"n_features": 30, "neurons": 50, "sparsity": 3, **kwargs}
    with pytest.raises(ValueError, match=needle):
        U.build_uand(args.pop("n_features"), args.pop("neurons"), args.pop("sparsity"), **args)


def _touched_pass_fraction(m, s, eps, p, d, draws, seed=0) -> float:
    """The criterion of minimal_neurons, brute force: every draw as its docstring defines it."""
    ok = []
    for j in draws:
        prob = U.connection_probability(p, m, d, s)
        counts = U.sample_touched_counts(
            m, d, s, prob, seed=np.random.SeedSequence([seed, m, d, j])
        )
        ok.append(U.touched_errors(counts)["max_abs_error"] <= eps)
    return float(np.mean(ok))


@pytest.mark.parametrize("p", ["worst_case", "paper"])
def test_minimal_neurons_is_where_the_criterion_flips(p: str) -> None:
    # resolution 0 bisects to the integer: the width returned passes and the one below fails
    m, s, eps, draws = 40, 3, 0.5, range(3, 11)
    d = U.minimal_neurons(m, s, eps, p, n_draws=8, first_draw=3, success=0.75, resolution=0)
    assert _touched_pass_fraction(m, s, eps, p, d, draws) >= 0.75
    low = int(np.floor(theory.paper_min_neurons(m))) + 1 if p == "paper" else 2
    if d > low:
        assert _touched_pass_fraction(m, s, eps, p, d - 1, draws) < 0.75
    else:
        assert d == low
    if p == "paper":  # the paper's p is a probability only above ln^4 m
        assert d > theory.paper_min_neurons(m)


def test_minimal_neurons_limits_and_checks() -> None:
    # p = 1 wires every neuron to every feature: an output with one active member reads s - 1
    assert U.minimal_neurons(30, 3, 0.5, 1.0, high=500, n_draws=4) == 501
    assert U.minimal_neurons(30, 3, 0.5, 0.5, p_scale=2.0, high=500, n_draws=4) == 501
    d5 = U.minimal_neurons(30, 3, 0.5, n_draws=1, first_draw=5, resolution=0)
    assert _touched_pass_fraction(30, 3, 0.5, "worst_case", d5, [5]) == 1.0
    with pytest.raises(ValueError, match="target_error"):
        U.minimal_neurons(30, 3, 0.0)
    with pytest.raises(ValueError, match="p_scale"):
        U.minimal_neurons(30, 3, 0.5, p_scale=-1.0)
    with pytest.raises(ValueError, match="first_draw"):
        U.minimal_neurons(30, 3, 0.5, first_draw=-1)


@pytest.mark.parametrize(
    ("weights", "bias"), [("bernoulli", None), ("rademacher", None), ("gaussian", "count_free")]
)
def test_all_active_readings_are_the_true_ands_of_the_dense_evaluation(weights, bias) -> None:
    m, d, s = 14, 300, 4
    net = U.build_uand(m, d, s, weights=weights, bias=bias, seed=2)
    pairs = np.array(list(itertools.combinations(range(m), 2)))
    for n in (2, 3, 4):
        act = sp.sample_sparse(m, n, 6, seed=n)
        got = U.all_active_readings(net, act)
        everything = U.uand_outputs(net, act, pairs)  # (K, C(m, 2)), every output
        for i, row in enumerate(np.sort(act, axis=1)):
            want = [
                everything[i, U.tuple_rank(np.array([t]), m)[0]]
                for t in itertools.combinations(row, 2)
            ]
            assert_allclose(got[i], want, rtol=0, atol=1e-12)
    acts = net.activations(act)
    assert_allclose(U.all_active_readings(net, act, activations=acts), got, rtol=0, atol=0)
    with pytest.raises(ValueError, match="at least arity"):
        U.all_active_readings(net, act[:, :1])
    with pytest.raises(ValueError, match="activations must have shape"):
        U.all_active_readings(net, act, activations=acts[:, :5])
