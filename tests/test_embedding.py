"""The embedding module: exact identities, brute-force oracles, and theory-scale checks."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import superposition as sp
from superposition import embedding as E

FLOAT_TOL = 1e-12  # float64 rounding of sums of a few hundred products


@pytest.mark.parametrize("kind", E.EMBEDDING_KINDS)
def test_columns_are_unit_vectors(kind: str) -> None:
    phi = sp.Embedding(700, 37, embedding_kind=kind, seed=3).matrix()
    assert phi.shape == (37, 700)
    assert_allclose(np.linalg.norm(phi, axis=0), 1.0, atol=FLOAT_TOL)
    if kind == "sign":
        assert_allclose(np.abs(phi), 1 / np.sqrt(37), atol=FLOAT_TOL)


def test_same_seed_same_bits_and_blocks_agree_with_matrix() -> None:
    a = sp.Embedding(1000, 20, seed=5)
    b = sp.Embedding(1000, 20, seed=5)
    assert_array_equal(a.matrix(), b.matrix())
    assert not np.array_equal(a.matrix(), sp.Embedding(1000, 20, seed=6).matrix())
    idx = np.array([[0, 255, 256], [999, 511, 3]])
    assert_array_equal(a.columns(idx), a.matrix()[:, idx])


def test_embed_and_readout_match_dense_algebra() -> None:
    emb = sp.Embedding(300, 16, seed=1)
    phi = emb.matrix()
    act = sp.sample_sparse(300, 4, 25, seed=2)
    x = sp.to_dense(act, 300)
    assert_allclose(emb.embed(act), x @ phi.T, atol=FLOAT_TOL)
    assert_allclose(emb.readout(emb.embed(act)), x @ phi.T @ phi, atol=FLOAT_TOL)


def test_coherence_and_overlaps_match_brute_force() -> None:
    phi = sp.Embedding(40, 8, seed=0).matrix()
    pairs = [float(phi[:, i] @ phi[:, j]) for i, j in itertools.combinations(range(40), 2)]
    assert_allclose(E.overlaps(phi), pairs, atol=FLOAT_TOL)
    assert_allclose(E.overlaps(sp.Embedding(40, 8, seed=0)), pairs, atol=FLOAT_TOL)
    assert sp.coherence(phi) == pytest.approx(max(abs(p) for p in pairs), abs=FLOAT_TOL)
    # across block boundaries
    emb = sp.Embedding(600, 8, seed=0)
    g = emb.matrix().T @ emb.matrix()
    np.fill_diagonal(g, 0)
    assert sp.coherence(emb) == pytest.approx(np.abs(g).max(), abs=FLOAT_TOL)


def test_sampled_overlaps_are_the_right_pairs() -> None:
    phi = sp.Embedding(50, 6, seed=1).matrix()
    all_pairs = E.overlaps(phi)
    sample = E.overlaps(phi, max_pairs=30, seed=4)
    assert sample.shape == (30,)
    assert np.isin(np.round(sample, 12), np.round(all_pairs, 12)).all()


def test_pair_index_inverse_is_exhaustive() -> None:
    m = 23
    i, j = E._pair_from_flat(np.arange(m * (m - 1) // 2), m)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == list(
        itertools.combinations(range(m), 2)
    )


def test_sample_sparse_rows_are_distinct_sorted_and_uniform() -> None:
    act = sp.sample_sparse(10, 3, 30_000, seed=7)
    assert act.shape == (30_000, 3)
    assert (np.diff(act, axis=1) > 0).all()
    # each feature is active with probability s/m = 0.3; std of a frequency over 30k rows
    # is sqrt(0.3*0.7/30000) = 0.0026, so 0.015 is more than 5 sigma
    freq = np.bincount(act.ravel(), minlength=10) / 30_000
    assert_allclose(freq, 0.3, atol=0.015)
    dense_path = sp.sample_sparse(5, 4, 1000, seed=1)  # s*4 > m: the argpartition path
    assert (np.diff(dense_path, axis=1) > 0).all() and dense_path.max() < 5


def test_readout_errors_match_brute_force() -> None:
    emb = sp.Embedding(120, 10, seed=2)
    phi = emb.matrix()
    act = sp.sample_sparse(120, 3, 15, seed=3)
    want = [np.abs(phi.T @ phi @ x - x).max() for x in sp.to_dense(act, 120)]
    assert_allclose(sp.readout_errors(emb, act), want, atol=FLOAT_TOL)
    assert_allclose(sp.readout_errors(phi, act), want, atol=FLOAT_TOL)
    assert sp.max_readout_error(emb, act) == pytest.approx(max(want))


def test_readout_errors_of_an_embedding_are_its_readouts_bit_for_bit() -> None:
    """Φ's blocks outside, inputs inside: each error is the one the input's group gets from
    Embedding.readout(embed), bit for bit, also when the inputs come in several groups
    (ERROR_CHUNK // m per group) and Φ spans several READOUT_CHUNK chunks."""
    from superposition.embedding import BLOCK, ERROR_CHUNK, READOUT_CHUNK

    m = 2 * READOUT_CHUNK * BLOCK + 300  # three chunks of columns
    step = ERROR_CHUNK // m
    for kind in ("gaussian", "sign"):
        emb = sp.Embedding(m, 16, embedding_kind=kind, seed=5)
        act = sp.sample_sparse(m, 3, 2 * step + 7, seed=6)  # three groups of inputs
        want = np.concatenate(
            [
                np.abs(emb.readout(emb.embed(g)) - sp.to_dense(g, m)).max(axis=1)
                for g in (act[:step], act[step : 2 * step], act[2 * step :])
            ]
        )
        np.testing.assert_array_equal(sp.readout_errors(emb, act), want)


def test_orthonormal_embedding_reads_back_exactly() -> None:
    q = np.linalg.qr(np.random.default_rng(0).standard_normal((30, 30)))[0]
    act = sp.sample_sparse(30, 5, 10, seed=1)
    assert sp.max_readout_error(q, act) < 1e-12


def test_readout_error_follows_theory_scale() -> None:
    # per-feature readout error of an inactive feature is a sum of s overlaps ~ N(0, s/d0);
    # over 200 inputs x 2000 features the sample std is within 2% of sqrt(s/d0) with room
    m, d0, s = 2000, 256, 3
    emb = sp.Embedding(m, d0, seed=11)
    act = sp.sample_sparse(m, s, 200, seed=12)
    err = emb.readout(emb.embed(act)) - sp.to_dense(act, m)
    inactive = sp.to_dense(act, m) == 0
    assert err[inactive].std() == pytest.approx(sp.readout_error_scale(s, d0), rel=0.05)


def test_coherence_follows_theory_scale() -> None:
    # the max of ~m²/2 |N(0,1/d0)| is close to sqrt(2 ln(m²)/d0) (leading order); the
    # ratio is below 1 by the next-order term and above 0.7 at these sizes
    ratio = sp.coherence(sp.Embedding(2000, 256, seed=1)) / sp.coherence_scale(2000, 256)
    assert 0.7 < ratio < 1.05


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sp.Embedding(0, 5), "n_features must be >= 1, got 0"),
        (lambda: sp.Embedding(5, 0), "embed_dim must be >= 1, got 0"),
        (lambda: sp.Embedding(5, 2.0), "embed_dim must be an integer"),
        (lambda: sp.Embedding(5, 2, embedding_kind="uniform"), "embedding_kind must be one of"),
        (lambda: sp.Embedding(5, 2, seed=-1), "seed must be >= 0"),
        (lambda: sp.Embedding(5, 2, dtype=np.int64), "dtype must be float32 or float64"),
        (lambda: sp.sample_sparse(5, 6, 1), "sparsity must be between 1 and 5, got 6"),
        (lambda: sp.sample_sparse(5, 0, 1), "sparsity must be between 1 and 5, got 0"),
        (lambda: sp.sample_sparse(5, 2, 0), "n_samples must be >= 1"),
        (lambda: sp.sample_sparse(True, 1, 1), "n_features must be an integer"),
        (lambda: sp.to_dense(np.array([[0, 7]]), 5), "active feature indices must be in"),
        (lambda: sp.to_dense(np.array([0.0, 1.0]), 5), "active must be an integer array"),
        (lambda: sp.Embedding(5, 2).columns(np.array([5])), "features must be in"),
        (lambda: sp.Embedding(5, 2).readout(np.zeros((1, 3))), "a must have shape"),
        (lambda: sp.coherence_scale(1, 5), "n_features must be >= 2"),
        (lambda: sp.capacity_scale(10, 2, 0.0), "error must be > 0"),
    ],
)
def test_bad_arguments_raise_value_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call()


def test_theory_scales() -> None:
    assert sp.readout_error_scale(4, 100) == pytest.approx(0.2)
    assert sp.coherence_scale(10, 8) == pytest.approx(math.sqrt(2 * math.log(100) / 8))
    # capacity_scale inverts max_readout_error_scale
    d0, s, eps, k = 200, 3, 0.5, 10
    m = sp.capacity_scale(d0, s, eps, k)
    assert sp.max_readout_error_scale(int(round(m)), s, d0, k) == pytest.approx(eps, rel=1e-3)


# ---------------------------------------------------------------- readouts drawn without Φ


def test_sampled_readouts_have_the_exact_marginal_law() -> None:
    """One inactive feature against one active one reads t = φ_k·φ_0, whose law is exact:
    (t + 1)/2 ~ Beta((d0 - 1)/2, (d0 - 1)/2). The 20,000 inactive features of one draw are
    i.i.d. with that law. Fixed seed; the bound is the one-sample Kolmogorov-Smirnov critical
    value at level 1e-6, sqrt(ln(2/1e-6) / (2n)) = 0.019: a correct sampler exceeds it with
    probability 1e-6. It has power: the Gaussian approximation N(0, 1/d0) fails it."""
    from scipy import stats

    d0, n = 5, 20_000
    z = E.sample_feature_readouts(n + 1, d0, np.array([[0]]), seed=11)
    assert z.shape == (1, n + 1) and z[0, 0] == pytest.approx(1.0, abs=1e-12)
    t = z[0, 1:]
    crit = np.sqrt(np.log(2 / 1e-6) / (2 * n))
    exact = stats.beta((d0 - 1) / 2, (d0 - 1) / 2, loc=-1, scale=2)
    assert stats.kstest(t, exact.cdf).statistic < crit
    assert stats.kstest(t, stats.norm(scale=1 / np.sqrt(d0)).cdf).statistic > crit


def test_sampled_readouts_have_the_embeddings_joint_law() -> None:
    """3,000 draws of the sampler against 3,000 seeded Embeddings, on inputs that share
    features (so readouts of different inputs are correlated, and one group reads another's
    active feature): five statistics, each compared by a two-sample Kolmogorov-Smirnov test at
    level 1e-4 (Bonferroni: 5e-4 for the family), critical value
    sqrt(-ln(5e-5)/2) sqrt(2/n) = 0.057. Fixed seeds."""
    from scipy import stats

    m, d0, n = 12, 6, 3000
    act = np.array([[0, 1], [1, 2], [3, 4]])
    groups = [act[:1], act[1:]]
    x = sp.to_dense(act, m)

    def stats_of(z: np.ndarray) -> list[float]:
        return [
            z[0, 7],  # inactive everywhere
            z[0, 7] * z[1, 7],  # covariance 1/d0 through the shared feature 1
            z[0, 0],  # active
            z[2, 0],  # active in another input only
            float(((z[0] - x[0]) ** 2).sum()),
        ]

    drawn = np.array(
        [
            stats_of(np.concatenate(E.sample_feature_readouts(m, d0, groups, seed=s)))
            for s in range(n)
        ]
    )
    ref = []
    for s in range(n):
        emb = sp.Embedding(m, d0, seed=s)
        ref.append(stats_of(emb.readout(emb.embed(act))))
    ref = np.array(ref)
    crit = np.sqrt(-np.log(5e-5) / 2) * np.sqrt(2 / n)
    for j in range(drawn.shape[1]):
        assert stats.ks_2samp(drawn[:, j], ref[:, j]).statistic < crit, j
    assert np.mean(drawn[:, 1]) == pytest.approx(1 / d0, abs=0.03)  # 6 standard errors
    # the list form reads every group through one Φ: the same numbers as one batch
    one = E.sample_feature_readouts(m, d0, act[[1, 2]], seed=4)
    both = E.sample_feature_readouts(m, d0, [act[[1]], act[[2]]], seed=4)
    assert_allclose(np.concatenate(both), one, atol=FLOAT_TOL)


def test_sampled_readouts_more_active_features_than_dimensions() -> None:
    """r > d0 active features: Q spans the whole space, every readout is exact algebra of R."""
    z = E.sample_feature_readouts(50, 3, np.array([[0, 1, 2, 3], [4, 5, 6, 7]]), seed=1)
    assert z.shape == (2, 50) and np.isfinite(z).all()
    # z_k = φ_k·x with x = Σ_active φ_j: the active readouts sum to |x|² and, φ_k being a unit
    # vector, no readout exceeds |x| (Cauchy–Schwarz)
    for row, act in zip(z, ([0, 1, 2, 3], [4, 5, 6, 7]), strict=True):
        norm2 = row[act].sum()
        assert norm2 > 0
        assert (np.abs(row) <= np.sqrt(norm2) * (1 + 1e-9)).all()
    with pytest.raises(ValueError, match="n_features"):
        E.sample_feature_readouts(0, 3, np.array([[0]]))
