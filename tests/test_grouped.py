"""Tests for superposition.grouped: correction units that read groups of features."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from superposition.embedding import Embedding, sample_sparse
from superposition.grouped import GroupedCorrection, check_grouped, group_design, group_incidence

# Float64 products of a few hundred terms of size <= 1.
EXACT = 1e-12


@pytest.mark.parametrize(("m", "g", "c"), [(300, 60, 7), (1000, 100, 5), (50, 10, 3)])
def test_every_feature_in_one_group_per_class_and_pairs_share_at_most_one(m, g, c) -> None:
    groups = group_design(m, g, c, seed=1)
    assert groups.shape == (m, c)
    for j in range(c):  # class j holds units j*g .. j*g + g - 1
        assert groups[:, j].min() >= j * g and groups[:, j].max() < (j + 1) * g
    b = group_incidence(groups, c * g).toarray()
    gram = b @ b.T
    assert_array_equal(np.diag(gram), c)
    np.fill_diagonal(gram, 0)
    assert gram.max() <= 1
    sizes = b.sum(axis=0)
    assert sizes.max() - sizes.min() <= 2  # balanced up to the placement's extra member


def test_too_many_features_for_the_groups_is_refused() -> None:
    with pytest.raises(ValueError, match="groups_per_class"):
        group_design(400, 10, 5, seed=0)


@pytest.mark.parametrize("write", ["units", "phi"])
def test_step_is_the_plain_mlp(write: str) -> None:
    # step (sparse products) and the materialised weights compute the same function.
    groups = group_design(300, 60, 7, seed=1)
    layer = GroupedCorrection(Embedding(300, 420, seed=2), groups, 3, write=write)
    a = layer.encode(sample_sparse(300, 3, 20, seed=3))
    w_in, b, w_out = layer.weights()
    assert w_in.shape == (2 * layer.n_units, 420) and layer.neurons == 2 * 420
    assert_allclose(layer.step(a), np.maximum(a @ w_in.T + b, 0.0) @ w_out.T, atol=EXACT)


def test_inside_the_margins_the_output_is_the_junk_pattern() -> None:
    # m = 200 features in d = 4096 with groups of G = 200/40 = 5: a unit's crosstalk has std
    # about sqrt(G s / d) = 0.06; the inputs whose every unit read lands outside (lo, hi) (most
    # of them) must give exactly the steady state t_k / c.
    groups = group_design(200, 40, 7, seed=0)
    layer = GroupedCorrection(Embedding(200, 4096, seed=1), groups, 3, write="units")
    active = sample_sparse(200, 3, 20, seed=2)
    a = layer.encode(active)
    z = layer.unit_reads(a)
    inside = np.all((z < layer.lo) | (z > layer.hi), axis=1)
    assert inside.mean() > 0.5
    out = next(layer.readout_blocks(layer.step(a), "out"))[1]
    assert_allclose(out[inside], layer.values(active)[inside], atol=EXACT)
    # active features read 1, inactive ones at most s/c < lo
    vals = layer.values(active)
    rows = np.arange(20)[:, None]
    assert_allclose(vals[rows, active], 1.0)
    vals[rows, active] = 0.0
    assert vals.max() <= 3 / 7 + EXACT


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((6, 3, 0.6, 0.7), "blocks must be > 2 \\* sparsity"),
        ((7, 3, 0.4, 0.7), "lo must be > sparsity / blocks"),
        ((7, 3, 0.6, 0.9), "hi must be < 1 - 1/blocks"),
        ((7, 3, 0.7, 0.6), "lo"),
    ],
)
def test_parameters_are_checked(args, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_grouped(*args)


def test_unit_write_needs_units_within_the_residual() -> None:
    groups = group_design(300, 60, 7, seed=1)
    with pytest.raises(ValueError, match="n_units <= embed_dim"):
        GroupedCorrection(Embedding(300, 400, seed=2), groups, 3, write="units")
    with pytest.raises(ValueError, match="write"):
        GroupedCorrection(Embedding(300, 420, seed=2), groups, 3, write="basis")
