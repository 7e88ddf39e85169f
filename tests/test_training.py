"""Trained U-AND networks: hand-written gradients, Adam, determinism, exact evaluation."""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
import pytest

import superposition as sp
from superposition.training import (
    DenseReadout,
    TrainedUAnd,
    loss_and_gradients,
    train_uand,
)
from superposition.uand import tuple_unrank

# Central differences with step h have truncation error O(h^2 |f'''|) and rounding error
# O(eps |f| / h); with h = 1e-6 and O(1) losses both are below 1e-8.
FD_STEP = 1e-6
FD_TOL = 1e-6


def _numeric_grad(f, P: np.ndarray) -> np.ndarray:
    out = np.zeros_like(P)
    for idx in np.ndindex(P.shape):
        old = P[idx]
        P[idx] = old + FD_STEP
        up = f()
        P[idx] = old - FD_STEP
        down = f()
        P[idx] = old
        out[idx] = (up - down) / (2 * FD_STEP)
    return out


@pytest.mark.parametrize("columns", [None, np.array([0, 3, 4, 10, 20, 33])])
@pytest.mark.parametrize("weight", [0.0, 2.5])
@pytest.mark.parametrize("arity", [2, 3])
def test_gradients_match_finite_differences(rng, columns, weight, arity) -> None:
    m, d, s = 7, 5, 4
    n_out = comb(m, arity)
    W = rng.standard_normal((d, m))
    b = 0.3 * rng.standard_normal(d)
    R = rng.standard_normal((n_out, d))
    active = sp.sample_sparse(m, s, 6, seed=1)
    cols = None if columns is None else columns[columns < n_out]

    def loss() -> float:
        return loss_and_gradients(W, b, R, active, m, arity, columns=cols, positive_weight=weight)[
            0
        ]

    _, dW, db, dR = loss_and_gradients(
        W, b, R, active, m, arity, columns=cols, positive_weight=weight
    )
    for P, G in ((W, dW), (b, db), (R, dR)):
        np.testing.assert_allclose(G, _numeric_grad(loss, P), atol=FD_TOL, rtol=0)


def test_loss_is_the_stated_formula(rng) -> None:
    """Loss = mean over all outputs of (ŷ - y)² + w · mean over the all-active outputs, by brute force."""
    m, d, s, n = 6, 4, 3, 2
    W, b = rng.standard_normal((d, m)), rng.standard_normal(d)
    R = rng.standard_normal((comb(m, n), d))
    active = sp.sample_sparse(m, s, 5, seed=2)
    x = sp.to_dense(active, m)
    a = np.maximum(x @ W.T + b, 0)
    tup = tuple_unrank(np.arange(comb(m, n)), m, n)
    y = x[:, tup[:, 0]] * x[:, tup[:, 1]]
    yhat = a @ R.T
    want = np.mean((yhat - y) ** 2) + 0.7 * np.mean((yhat - 1)[y == 1] ** 2)
    got = loss_and_gradients(W, b, R, active, m, n, positive_weight=0.7)[0]
    assert got == pytest.approx(want, rel=1e-12)


def test_sampled_loss_is_unbiased(rng) -> None:
    """The mean of the sampled first term over every K-subset of outputs is the full first term."""
    m, d, n, k = 4, 3, 2, 2
    W, b = rng.standard_normal((d, m)), rng.standard_normal(d)
    R = rng.standard_normal((comb(m, n), d))
    active = sp.sample_sparse(m, 2, 3, seed=3)
    full = loss_and_gradients(W, b, R, active, m, n, positive_weight=0.0)
    subsets = [np.array(c) for c in combinations(range(comb(m, n)), k)]
    parts = [
        loss_and_gradients(W, b, R, active, m, n, columns=c, positive_weight=0.0) for c in subsets
    ]
    assert np.mean([p[0] for p in parts]) == pytest.approx(full[0], rel=1e-12)
    for j in (1, 2):  # dW, db: the same average (dR is rescaled by N/K on the sampled rows)
        np.testing.assert_allclose(np.mean([p[j] for p in parts], axis=0), full[j], atol=1e-12)


def test_same_seed_same_bits() -> None:
    a = train_uand(12, 10, 3, steps=40, seed=5)
    b = train_uand(12, 10, 3, steps=40, seed=5)
    c = train_uand(12, 10, 3, steps=40, seed=6)
    for name in ("W", "b", "R", "losses"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.W, c.W)


def test_training_learns_every_and_exhaustively() -> None:
    """m = 6, s = 2, d = 15 = C(6, 2): enough neurons for one per AND.

    After training, the worst error over *all* 15 inputs with exactly 2 active features
    (the training distribution) is below 0.05, ten times inside the decoding margin 1/2;
    the untrained network (R = 0, one step of size 1e-2) reads about 0 everywhere and
    misses every AND by about 1.
    """
    trained = train_uand(6, 15, 2, steps=3000, batch=32, lr=1e-2, final_lr=1e-4, seed=0)
    worst = sp.worst_case_uand(trained, sparsity=2, at_most=False)
    assert worst.max_abs_error < 0.05
    assert trained.losses[-100:].mean() < 0.01 * trained.losses[:10].mean()
    untrained = train_uand(6, 15, 2, steps=1, seed=0)
    assert sp.worst_case_uand(untrained, sparsity=2, at_most=False).max_abs_error > 0.9


def test_exact_evaluation_matches_brute_force() -> None:
    net = train_uand(10, 8, 3, steps=50, seed=1)
    active = sp.sample_sparse(10, 4, 30, seed=2)
    res = sp.evaluate_uand(net, active)
    tup = tuple_unrank(np.arange(net.n_outputs), 10, 2)
    x = sp.to_dense(active, 10)
    # the evaluator reads float32 activations and readout in float64
    yhat = net.activations(active).astype(np.float64) @ net.R.astype(np.float64).T
    err = yhat - x[:, tup[:, 0]] * x[:, tup[:, 1]]
    assert res.max_abs_error == pytest.approx(np.abs(err).max(), rel=1e-12)
    assert res.mean_abs_error == pytest.approx(np.abs(err).mean(), rel=1e-12)
    np.testing.assert_allclose(res.input_max_abs, np.abs(err).max(axis=1), rtol=1e-12)


def test_dense_readout_any_tuples(rng) -> None:
    R = rng.standard_normal((comb(7, 2), 3))
    ro = DenseReadout(R, 7, 2)
    a = rng.standard_normal((4, 3))
    tup = np.array([[0, 6], [1, 2], [5, 6]])
    rows = [list(combinations(range(7), 2)).index(tuple(t)) for t in tup]
    np.testing.assert_allclose(ro.outputs(a, tup), a @ R[rows].T)


def test_trained_network_is_a_trained_uand() -> None:
    net = train_uand(8, 4, 3, steps=3, dtype=np.float64, seed=0)
    assert isinstance(net, TrainedUAnd) and net.W.dtype == np.float64
    assert net.losses.shape == (3,) and net.n_outputs == 28 and net.weights == "trained"
    assert not net.W.flags.writeable


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"n_features": 1}, "n_features"),
        ({"neurons": 0}, "neurons"),
        ({"sparsity": 1}, "sparsity"),
        ({"steps": 0}, "steps"),
        ({"lr": -1.0}, "lr"),
        ({"final_lr": 1.0}, "final_lr"),
        ({"positive_weight": -1.0}, "positive_weight"),
        ({"sampled_outputs": 10_000}, "sampled_outputs"),
        ({"dtype": np.int32}, "dtype"),
        ({"n_features": 2000, "neurons": 100}, "MAX_OUTPUT_PARAMETERS"),
    ],
)
def test_bad_arguments(kwargs, needle) -> None:
    args = {"n_features": 8, "neurons": 4, "sparsity": 3, "steps": 2} | kwargs
    with pytest.raises(ValueError, match=needle):
        train_uand(**args)
