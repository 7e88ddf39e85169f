"""Tests for superposition.collisions: exact sparse tracking of ones, and colliding inputs."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from superposition.circuits import random_circuit
from superposition.collisions import (
    colliding_inputs,
    layer_and_fires,
    sample_inputs,
    track_ones,
)
from superposition.embedding import sample_sparse, to_dense


def dense_counts(circuit, active):
    """Ones and products equal to 1 per layer, by evaluating the circuit densely."""
    xs = circuit.evaluate(to_dense(active, circuit.n_features).astype(bool))
    ones = np.stack([x.sum(axis=1) for x in xs], axis=1)
    fires = [np.zeros(active.shape[0], dtype=np.int64)]
    fires += [layer_and_fires(layer, x) for layer, x in zip(circuit.layers, xs[:-1], strict=True)]
    return ones, np.stack(fires, axis=1)


@pytest.mark.parametrize(
    ("gates", "sticky", "m"),
    [
        (("and", "or"), 0.0, 200),
        (("and", "or", "copy"), 0.0, 201),
        (("and", "or"), 0.5, 200),
        (("and", "or", "xor", "andnot"), 0.0, 120),
    ],
)
def test_sparse_tracking_equals_dense_evaluation(gates, sticky, m) -> None:
    # The tracker follows only the ones; the dense circuit is the reference, exactly.
    circuit = random_circuit(m, 40, gates, sticky=sticky, seed=0)
    for active in (sample_sparse(m, 3, 30, seed=1), colliding_inputs(circuit, 3, 15, seed=2)):
        trace = track_ones(circuit, active)
        ones, fires = dense_counts(circuit, active)
        assert_array_equal(trace.ones_per_layer, ones)
        assert_array_equal(trace.and_fires, fires)


def test_and_or_blocks_conserve_the_ones_exactly() -> None:
    # {and, or}: (1,0) -> (0,1), (1,1) -> (1,1): s ones at every layer, meetings included.
    circuit = random_circuit(300, 60, ("and", "or"), seed=3)
    active = colliding_inputs(circuit, 3, 20, seed=4)
    trace = track_ones(circuit, active)
    assert np.all(trace.ones_per_layer == 3)
    assert trace.final is not None and trace.final.shape == (20, 3)


def test_colliding_inputs_fire_s_minus_one_products() -> None:
    # Each further one is aimed at a meeting and checked by exact tracking; with room in the
    # depth (even shares of it), every input of an {and, or} circuit fires at least s - 1.
    circuit = random_circuit(1000, 100, ("and", "or"), seed=0)
    for s in (2, 3):
        active = colliding_inputs(circuit, s, 30, seed=1)
        assert active.shape == (30, s)
        assert np.all(np.diff(active, axis=1) > 0)
        fires = track_ones(circuit, active).and_fires.sum(axis=1)
        assert fires.min() >= s - 1
    # uniform inputs: about L s^2 / (2m) = 0.45 meetings per input at s = 3
    uniform = track_ones(circuit, sample_sparse(1000, 3, 200, seed=2)).and_fires.sum(axis=1)
    assert uniform.mean() < 1.0


def test_sticky_pairs_make_ones_meet_again() -> None:
    # With probability 1/2 a block's outputs stay paired, so a meeting repeats: more firings.
    plain = random_circuit(1000, 100, ("and", "or"), seed=5)
    sticky = random_circuit(1000, 100, ("and", "or"), sticky=0.5, seed=5)
    f_plain = track_ones(plain, colliding_inputs(plain, 3, 30, seed=6)).total_and_fires
    f_sticky = track_ones(sticky, colliding_inputs(sticky, 3, 30, seed=6)).total_and_fires
    assert f_sticky > 1.3 * f_plain


def test_sticky_zero_is_the_plain_circuit() -> None:
    a = random_circuit(101, 5, ("and", "or"), seed=7)
    b = random_circuit(101, 5, ("and", "or"), sticky=0.0, seed=7)
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert_array_equal(la.left, lb.left)
        assert_array_equal(la.code, lb.code)


def test_same_seed_same_inputs() -> None:
    circuit = random_circuit(200, 20, ("and", "or"), seed=0)
    assert_array_equal(
        colliding_inputs(circuit, 3, 5, seed=1), colliding_inputs(circuit, 3, 5, seed=1)
    )
    assert_array_equal(
        sample_inputs(circuit, 3, 5, inputs_kind="uniform", seed=1),
        sample_sparse(200, 3, 5, seed=1),
    )


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: sample_inputs(c, 3, 5, inputs_kind="aimed"), "inputs_kind"),
        (lambda c: colliding_inputs(c, 0, 5), "sparsity"),
        (lambda c: colliding_inputs(c, 3, 0), "n_samples"),
        (lambda c: track_ones(c, np.array([[0, 0]])), "distinct"),
        (lambda c: track_ones("circuit", np.array([[0]])), "Circuit"),
        (lambda c: random_circuit(10, 2, ("and", "or"), sticky=1.5), "sticky"),
        (lambda c: random_circuit(10, 2, ("and", "or"), wiring="random", sticky=0.5), "sticky"),
    ],
)
def test_bad_arguments(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call(random_circuit(20, 3, ("and", "or"), seed=0))
