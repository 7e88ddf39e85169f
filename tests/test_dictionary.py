"""Dictionary-learning baselines: SAE gradients, determinism, planted recovery, scikit-learn, probes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import superposition as sp
from superposition.dictionary import sae_loss_and_gradients


def _planted(rng: np.random.Generator, n: int = 12, dim: int = 24, k: int = 1000):
    """1-sparse data on orthonormal atoms: x = c u_j, c in [1, 2]. Its sparse dictionary is the
    atoms themselves, up to order and scale: a learner that does not find them is broken."""
    Q, _ = np.linalg.qr(rng.standard_normal((dim, n)))
    U = Q.T  # (n, dim) orthonormal rows
    j = rng.integers(0, n, size=k)
    X = U[j] * rng.uniform(1.0, 2.0, size=(k, 1))
    return X, U


def test_sae_gradients_match_central_differences(rng) -> None:
    B, dim, n = 7, 5, 6
    x = rng.standard_normal((B, dim))
    params = {
        "W_enc": rng.standard_normal((n, dim)),
        "b_enc": rng.standard_normal(n) * 0.3,
        "W_dec": rng.standard_normal((dim, n)),
        "b_dec": rng.standard_normal(dim) * 0.3,
    }
    l1 = 0.7

    def loss(p):
        return sae_loss_and_gradients(x, p["W_enc"], p["b_enc"], p["W_dec"], p["b_dec"], l1)[0]

    value, grads = sae_loss_and_gradients(x, *params.values(), l1)
    f = np.maximum((x - params["b_dec"]) @ params["W_enc"].T + params["b_enc"], 0)
    recon = f @ params["W_dec"].T + params["b_dec"]
    assert value == pytest.approx((((recon - x) ** 2).sum() + l1 * f.sum()) / B, rel=1e-12)
    eps = 1e-6
    for name, p in params.items():
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            up = {k: v.copy() for k, v in params.items()}
            dn = {k: v.copy() for k, v in params.items()}
            up[name][idx] += eps
            dn[name][idx] -= eps
            num[idx] = (loss(up) - loss(dn)) / (2 * eps)
        # central differences: O(eps^2) truncation on a piecewise quadratic loss, away from kinks
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-7, err_msg=name)


def test_normalise_activations(rng) -> None:
    X = rng.standard_normal((100, 8)) * 5
    Y, scale = sp.normalise_activations(X)
    assert np.mean((Y**2).sum(axis=1)) == pytest.approx(8.0, rel=1e-12)
    np.testing.assert_allclose(Y * scale, X, rtol=1e-12)
    with pytest.raises(ValueError, match="all zero"):
        sp.normalise_activations(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="finite"):
        sp.normalise_activations(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="shape"):
        sp.normalise_activations(np.ones(4))


def test_sae_recovers_a_planted_dictionary_and_is_deterministic(rng) -> None:
    X, U = _planted(rng)
    truth = sp.GroundTruth("t", "input", U, tuple(map(str, range(12))), np.zeros((12, 1)), (), 24)
    a = sp.train_sae(X, 12, l1=0.3, steps=1500, batch=64, seed=3)
    b = sp.train_sae(X, 12, l1=0.3, steps=1500, batch=64, seed=3)
    assert np.array_equal(a.atoms, b.atoms) and np.array_equal(a.losses, b.losses)
    c = sp.train_sae(X, 12, l1=0.3, steps=50, batch=64, seed=4)
    assert not np.array_equal(a.atoms[:, :3], c.atoms[:, :3])
    s = sp.score_dictionary(a.atoms, truth, usage=a.usage)
    assert s.recovered == 1.0, s.best_cosine
    assert a.losses[-100:].mean() < 0.2 * a.losses[:10].mean()
    assert a.method == "sae" and a.config["l1"] == 0.3 and a.n_atoms == 12
    assert 0 <= a.unexplained < 0.2 and a.l0 >= 1.0
    np.testing.assert_allclose(np.linalg.norm(a.atoms, axis=1), 1.0, rtol=1e-6)


def test_sklearn_recovers_a_planted_dictionary_and_is_deterministic(rng) -> None:
    X, U = _planted(rng)
    truth = sp.GroundTruth("t", "input", U, tuple(map(str, range(12))), np.zeros((12, 1)), (), 24)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ConvergenceWarning must be recorded, not shown
        a = sp.learn_dictionary(X, 12, alpha=0.1, epochs=3, max_lasso_iter=5, seed=1)
    b = sp.learn_dictionary(X, 12, alpha=0.1, epochs=3, max_lasso_iter=5, seed=1)
    assert np.array_equal(a.atoms, b.atoms)
    s = sp.score_dictionary(a.atoms, truth, usage=a.usage)
    assert s.recovered == 1.0, s.best_cosine
    assert a.method == "sklearn" and a.config["steps"] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dense = rng.standard_normal((200, 24))
        rushed = sp.learn_dictionary(dense, 24, alpha=0.01, epochs=1, max_lasso_iter=1, seed=1)
    # one coordinate sweep cannot solve a lasso on dense data with correlated atoms
    assert rushed.config["not_converged"] > 0
    assert np.all(a.usage >= 0) and a.l0 >= 1.0


def test_fit_probes_recover_a_linear_map(rng) -> None:
    A = rng.standard_normal((200, 6))
    W = rng.standard_normal((3, 6))
    Y = A @ W.T + np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(sp.fit_probes(A, Y, ridge=0.0), W, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="targets"):
        sp.fit_probes(A, Y[:10])


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda X: sp.train_sae(X, 0), "n_atoms"),
        (lambda X: sp.train_sae(X, 4, l1=-1.0), "l1"),
        (lambda X: sp.train_sae(X, 4, lr=1e-3, final_lr=1e-2), "final_lr"),
        (lambda X: sp.train_sae(X, 4, seed=-1), "seed"),
        (lambda X: sp.learn_dictionary(X, 4, alpha=0.0), "alpha"),
        (lambda X: sp.learn_dictionary(X, 4, epochs=0), "epochs"),
        (lambda X: sp.learn_dictionary(X.tolist() + [[np.nan] * 3], 4), "activations"),
    ],
)
def test_bad_arguments(rng, call, name) -> None:
    with pytest.raises(ValueError, match=name):
        call(rng.standard_normal((20, 3)))


def test_run_baseline_on_an_exported_network(tmp_path) -> None:
    path = tmp_path / "u.safetensors"
    sp.export_network(sp.build_uand(8, 32, 3, seed=2), path)
    runs = [
        sp.run_baseline(path, "hidden", "sae", n_samples=300, seed=1, l1=0.5, steps=40),
        sp.run_baseline(path, "hidden", "sae", n_samples=300, seed=1, l1=0.5, steps=40),
    ]
    assert np.array_equal(runs[0].score.best_cosine, runs[1].score.best_cosine)
    r = runs[0]
    truth = sp.ground_truth(sp.load_network(path), "hidden")
    assert r.learned.n_atoms == truth.n_features and r.score.n_features == truth.n_features
    assert r.frequency.shape == (truth.n_features,) and np.all(r.frequency <= 1)
    sk = sp.run_baseline(path, "input", "sklearn", atoms_per_feature=2.0, n_samples=300, epochs=1)
    assert sk.learned.n_atoms == 16 and sk.layer == "input"
    with pytest.raises(ValueError, match="method"):
        sp.run_baseline(path, "hidden", "pca")


def test_run_baselines_pool_gives_the_same_bits(tmp_path) -> None:
    path = tmp_path / "u.safetensors"
    sp.export_network(sp.build_uand(8, 24, 3, seed=5), path)
    jobs = [
        dict(network=str(path), layer="hidden", method="sae", n_samples=200, l1=v, steps=30)
        for v in (0.3, 1.0)
    ]
    here = sp.run_baselines(jobs)
    pooled = sp.run_baselines(jobs, executor="processes", workers=2)
    for a, b in zip(here, pooled, strict=True):
        assert np.array_equal(a.learned.atoms, b.learned.atoms)
        assert a.learned.config["l1"] == b.learned.config["l1"]
    assert not np.array_equal(here[0].learned.atoms, here[1].learned.atoms)
    with pytest.raises(ValueError, match="executor"):
        sp.run_baselines(jobs, executor="dask")
