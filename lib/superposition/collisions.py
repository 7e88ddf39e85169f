r"""Circuits whose ANDs fire: exact sparse tracking of the ones, and inputs whose ones collide.

In a random sparse circuit (:func:`~superposition.random_circuit`, ``"paired"`` wiring) two
active values rarely meet at a gate: with :math:`s` ones among :math:`m` values a block holds
both of a layer's ones with probability about :math:`\binom s2/(m-1)`, so over :math:`L` layers a
uniform input sees about :math:`L s^2/(2m)` products equal to 1. A run on such inputs mostly
routes single ones. This module counts what the circuit actually computes and draws inputs on
which the products do fire.

Counting
--------
A gate :math:`f = c_1x + c_2y + c_3xy` with :math:`c_3 \ne 0` on two distinct values
:math:`(u, v)` needs the product :math:`x_u x_v` (one U-AND product per pair, however many gates
share it). ``and_fires`` counts, per input and layer, the distinct products equal to 1: the
pairs whose two values are both active. :func:`layer_and_fires` counts them on dense bits;
:func:`track_ones` follows only the ones (a layer costs :math:`O(\text{ones}\cdot\text{fan-out})`,
nothing of size :math:`K \times m`), so counts are exact at any :math:`m` and depth.

Colliding inputs
----------------
A *lone* one (no other active value in its gate's inputs) moves deterministically: through an
``{and, or}`` block to the OR output from either input, through a copy block to its own output.
The lone-one map is therefore 2-to-1 onto OR outputs (AND outputs have no lone preimage), not a
bijection, and the layer-0 positions whose lone one reaches a slot at layer :math:`\ell` (its
*preimages*) form a critical Galton–Watson tree: mean offspring 1, survival over :math:`n` layers
about :math:`2/(p n)` for a fraction :math:`p` of ``{and, or}`` blocks.
:func:`colliding_inputs` places the first one at random; the :math:`j`-th one is aimed at a
meeting: it lists every (layer, partner value) where one of the ones placed so far enters a
product gate whose other input is empty (after the previous planned meeting), traces a partner
back to layer 0 through its lone preimages, and starts there. So :math:`s - 1` meetings are
planned per input (the counts are measured, not assumed: an aimed one may meet another earlier).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validate import (
    as_generator,
    check_active,
    check_bits,
    check_choice,
    check_int,
    check_sparsity,
)
from .backend import ranges
from .circuits import Circuit, CircuitLayer
from .embedding import sample_sparse

__all__ = [
    "INPUTS_KINDS",
    "OnesTrace",
    "colliding_inputs",
    "layer_and_fires",
    "layer_products",
    "sample_inputs",
    "track_ones",
]

INPUTS_KINDS = ("uniform", "colliding")
"""How a deep run's inputs are drawn: uniformly random s-sparse, or aimed at meetings."""

_AIMS = 200
"""Meetings tried per placed one before giving up on it (each costs one backward trace)."""


def layer_products(layer: CircuitLayer) -> np.ndarray:
    r"""The distinct products :math:`(u, v)`, :math:`u < v`, a layer's gates need: ``(P, 2)`` int64.

    A gate needs :math:`x_u x_v` when its polynomial has :math:`c_3 \ne 0` and its two inputs are
    distinct values (one-input gates fold :math:`c_3` into the linear term).
    """
    if not isinstance(layer, CircuitLayer):
        raise ValueError(f"layer must be a CircuitLayer, got {type(layer).__name__}")
    prod = np.flatnonzero(layer.coefficients[:, 3])
    uv = np.sort(np.stack([layer.left[prod], layer.right[prod]], axis=1), axis=1)
    return np.unique(uv, axis=0).reshape(-1, 2)


def layer_and_fires(layer: CircuitLayer, x: np.ndarray) -> np.ndarray:
    """Products equal to 1 in ``layer`` for each input of the batch ``x`` ``(K, n_features)``: ``(K,)`` int64."""
    bits = check_bits(x, layer.n_features, "x")
    pairs = layer_products(layer)
    if not pairs.shape[0]:
        return np.zeros(bits.shape[0], dtype=np.int64)
    return (bits[:, pairs[:, 0]] & bits[:, pairs[:, 1]]).sum(axis=1).astype(np.int64)


@dataclass(frozen=True)
class OnesTrace:
    """The ones of a batch through a circuit, counted exactly (:func:`track_ones`).

    Attributes
    ----------
    ones_per_layer : int array ``(K, depth + 1)``
        Ones of every value layer (column 0: the input).
    and_fires : int array ``(K, depth + 1)``
        Products equal to 1 in circuit layer :math:`\\ell` (column 0 is 0: the input computes
        nothing).
    final : int array ``(K, s_L)`` or None
        Active positions of the last layer when every input has the same number of ones.
    """

    ones_per_layer: np.ndarray
    and_fires: np.ndarray
    final: np.ndarray | None

    @property
    def total_and_fires(self) -> int:
        """Products equal to 1 over every layer and input."""
        return int(self.and_fires.sum())


class _Layer:
    """A circuit layer's arrays for sparse tracking: gates by input, and lone-one preimages."""

    def __init__(self, layer: CircuitLayer) -> None:
        self.m_in, self.m_out = layer.n_features, layer.n_gates
        self.left, self.right = layer.left, layer.right
        self.code = layer.code.astype(np.int64)
        self.product = (layer.coefficients[:, 3] != 0) & (self.left != self.right)
        gates = np.arange(self.m_out)
        two = self.left != self.right
        idx = np.concatenate([self.left, self.right[two]])
        self.by_input = np.concatenate([gates, gates[two]])[np.argsort(idx, kind="stable")]
        self.starts = np.searchsorted(np.sort(idx), np.arange(self.m_in + 1))

    def gates_of(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(which, gate)``: every gate reading ``pos[which]`` (ragged gather)."""
        lo, hi = self.starts[pos], self.starts[pos + 1]
        counts = hi - lo
        which = np.repeat(np.arange(pos.size), counts)
        return which, self.by_input[ranges(lo, counts)]

    def step(
        self, rows: np.ndarray, pos: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ones ``(rows, pos)`` (sorted by row, then position) → the next layer's ones and the
        products equal to 1 per row ``(k,)``."""
        keys = rows * self.m_in + pos
        which, gate = self.gates_of(pos)
        cand = np.unique(rows[which] * self.m_out + gate)
        r, g = cand // self.m_out, cand % self.m_out
        xu = np.isin(r * self.m_in + self.left[g], keys).astype(np.int64)
        xv = np.isin(r * self.m_in + self.right[g], keys).astype(np.int64)
        on = ((self.code[g] >> (2 * xu + xv)) & 1).astype(bool)
        both = self.product[g] & (xu == 1) & (xv == 1)
        fired = np.zeros(k, dtype=np.int64)
        if both.any():
            lo = np.minimum(self.left[g[both]], self.right[g[both]])
            hi = np.maximum(self.left[g[both]], self.right[g[both]])
            pairs = np.unique((r[both] * self.m_in + lo) * self.m_in + hi)
            fired = np.bincount(pairs // (self.m_in * self.m_in), minlength=k).astype(np.int64)
        return r[on], g[on], fired

    def preimages(self, slots: np.ndarray) -> np.ndarray:
        """Input positions whose lone one lands on one of ``slots`` (sorted, distinct)."""
        left, right, code = self.left[slots], self.right[slots], self.code[slots]
        same = left == right
        f01, f10, f11 = (code >> 1) & 1, (code >> 2) & 1, (code >> 3) & 1
        take_l = (~same & (f10 == 1)) | (same & (f11 == 1))
        take_r = ~same & (f01 == 1)
        return np.unique(np.concatenate([left[take_l], right[take_r]]))


def _layers(circuit: Circuit) -> list[_Layer]:
    if not isinstance(circuit, Circuit):
        raise ValueError(f"circuit must be a Circuit, got {type(circuit).__name__}")
    return [_Layer(layer) for layer in circuit.layers]


def _run(
    layers: list[_Layer], active: np.ndarray
) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Every layer's ones ``(rows, pos)`` and the products equal to 1 ``(K, L + 1)``."""
    k, s = active.shape
    rows, pos = np.repeat(np.arange(k), s), active.ravel()
    trace = [(rows, pos)]
    fires = np.zeros((k, len(layers) + 1), dtype=np.int64)
    for ell, lay in enumerate(layers, start=1):
        rows, pos, fires[:, ell] = lay.step(rows, pos, k)
        trace.append((rows, pos))
    return trace, fires


def track_ones(circuit: Circuit, active: np.ndarray) -> OnesTrace:
    r"""Follow the ones of a batch through every layer of ``circuit``, exactly and sparsely.

    Parameters
    ----------
    circuit : Circuit
    active : int array ``(K, s)``
        Active input positions of each input (:func:`~superposition.sample_sparse` or
        :func:`colliding_inputs`).

    Returns
    -------
    OnesTrace
        Equal to evaluating the circuit densely and counting (the tests check it); memory is that
        of the ones, not of :math:`K \times m`.
    """
    layers = _layers(circuit)
    act = np.asarray(check_active(active, circuit.n_features))
    trace, fires = _run(layers, act)
    k = act.shape[0]
    ones = np.stack([np.bincount(rows, minlength=k) for rows, _ in trace], axis=1)
    rows, pos = trace[-1]
    final = None
    if ones[:, -1].size and np.all(ones[:, -1] == ones[0, -1]):
        final = pos.reshape(k, int(ones[0, -1])).astype(np.int64)
    return OnesTrace(ones_per_layer=ones.astype(np.int64), and_fires=fires, final=final)


def _aim(
    layers: list[_Layer], ones: np.ndarray, last: int, stop: int, rng: np.random.Generator
) -> tuple[int, np.ndarray] | None:
    """``ones`` plus a one whose lone path meets one of them at a product gate of a layer
    in ``[last, stop)`` (0-based), and that layer; ``None`` if no aim adds a product equal to 1.

    Each aim is checked by exact tracking: the new input must fire more products than ``ones``
    alone (a one may meet another earlier than planned and change both paths)."""
    trace, fires = _run(layers, ones[None, :])
    before = int(fires.sum())
    cands: list[tuple[int, int]] = []
    for ell in range(last, stop):
        lay = layers[ell]
        occ = trace[ell][1]
        _, gate = lay.gates_of(occ)
        gate = np.unique(gate[lay.product[gate]])
        u, v = lay.left[gate], lay.right[gate]
        partner = np.where(np.isin(u, occ), v, u)
        for p in partner[~np.isin(partner, occ)]:
            cands.append((ell, int(p)))
    cands = list(dict.fromkeys(cands))
    order = rng.permutation(len(cands))
    for i in order[:_AIMS]:
        ell, partner = cands[int(i)]
        pre = np.array([partner], dtype=np.int64)
        for back in range(ell - 1, -1, -1):
            pre = layers[back].preimages(pre)
            if not pre.size:
                break
        pre = np.setdiff1d(pre, ones)
        if pre.size:
            new = np.sort(np.append(ones, int(rng.choice(pre))))
            if int(_run(layers, new[None, :])[1].sum()) > before:
                return ell, new
    return None


def colliding_inputs(
    circuit: Circuit, sparsity: int, n_samples: int, seed: object = 0
) -> np.ndarray:
    r"""s-sparse inputs whose ones are aimed at meetings: ``(n_samples, sparsity)`` sorted int64.

    The first one of each input is uniform; each further one starts at a lone preimage of an
    empty partner of an earlier one's product gate (module docstring), at a layer after the
    previous planned meeting and within an even share of the remaining depth (so that the later
    ones have room), so an input plans :math:`s - 1` products equal to 1 over the depth.
    When no meeting can be aimed (a shallow circuit, or a one that leaves no trace), the
    remaining ones are uniform. Count what fired with :func:`track_ones`.

    Parameters
    ----------
    circuit : Circuit
    sparsity : int
        Ones per input :math:`s`.
    n_samples : int
        Inputs :math:`K`.
    seed : int, SeedSequence or Generator
    """
    layers = _layers(circuit)
    m = circuit.n_features
    s = check_sparsity(sparsity, m)
    k = check_int("n_samples", n_samples, low=1)
    rng = as_generator(seed)
    out = np.empty((k, s), dtype=np.int64)
    for i in range(k):
        ones = np.array([rng.integers(m)], dtype=np.int64)
        last = 0
        while ones.size < s:
            # leave room for the meetings still to plan: split the remaining depth evenly
            depth = len(layers)
            stop = last + -(-(depth - last) // (s - ones.size))
            hit = _aim(layers, ones, last, stop, rng) if last < depth else None
            if hit is None and stop < depth:
                hit = _aim(layers, ones, last, depth, rng)
            if hit is None:
                break
            last, ones = hit[0] + 1, hit[1]
        while ones.size < s:
            ones = np.unique(np.append(ones, rng.integers(m)))
        out[i] = ones
    return out


def sample_inputs(
    circuit: Circuit,
    sparsity: int,
    n_samples: int,
    *,
    inputs_kind: str = "uniform",
    seed: object = 0,
) -> np.ndarray:
    """Active positions ``(n_samples, sparsity)`` of ``inputs_kind`` (:data:`INPUTS_KINDS`) inputs."""
    check_choice("inputs_kind", inputs_kind, INPUTS_KINDS)
    if inputs_kind == "colliding":
        return colliding_inputs(circuit, sparsity, n_samples, seed)
    return sample_sparse(circuit.n_features, sparsity, n_samples, seed=seed)
