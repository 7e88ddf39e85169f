r"""Circuits of any depth: gate layers alternating with error-correction layers (Theorem 8).

A depth-:math:`L` sparse boolean circuit (:mod:`superposition.circuits`) is emulated by
:math:`2L` MLP layers on a residual stream of embed_dim :math:`d`: gate layer :math:`\ell` maps
:math:`a \approx \Phi_{\ell-1} x^{(\ell-1)}` to :math:`\approx \Phi_\ell x^{(\ell)}`
(:func:`~superposition.compile_layer`), and correction layer :math:`\ell`
(:mod:`superposition.correction`) re-encodes that boolean vector with a bounded error before the
next gate layer reads it. Without the correction layers the readout noise of every feature is
copied forward by the gates' linear terms and grows geometrically with depth
(:func:`~superposition.predicted_noise`); with them it is reset at every layer.

Three correction designs:

``"denoiser"`` (the baseline)
    Random embeddings (:class:`~superposition.Embedding`): one :math:`\Phi` for the whole
    residual stream (``embedding_scheme="fixed"``, the default) or a fresh :math:`\Phi_\ell` for every
    value layer (``"fresh"``, seed derived from ``seed`` and :math:`\ell`; drawing it costs about
    as much as one gate layer). Correction layer :math:`\ell` is
    :class:`~superposition.FeatureDenoiser` (:math:`2m` neurons) reading and writing
    :math:`\Phi_\ell`.
``"grouped"``
    :class:`~superposition.GroupedCorrection` (:math:`2n_u` neurons, :math:`n_u` units that each
    read a group of features on the random :math:`\Phi_\ell`, each feature in :math:`c` groups),
    writing into a unit basis (the next gate layer reads feature :math:`k` as
    :math:`\frac1c\sum_{i\ni k}u_i` exactly) or back through :math:`\Phi_\ell`
    (:mod:`superposition.grouped`). Gate layers still read and write :math:`\Phi_\ell`.
``"code"``
    Every layer reads and writes the features through the code's own embedding :math:`\Psi`
    (:class:`~superposition.CodeCorrection`, :math:`2cq` neurons); the same correction layer
    follows every gate layer.

How the layers are applied
--------------------------
A gate layer's weights are :math:`W_{\mathrm{in}} = W\Phi_{\mathrm{in}}^\top`,
:math:`W_{\mathrm{out}} = \Phi_{\mathrm{out}} M` and
:math:`W_{\mathrm{skip}} = \Phi_{\mathrm{out}} C_{\mathrm{lin}} \Phi_{\mathrm{in}}^\top` with sparse
:math:`W` (wiring), :math:`M` (product readout) and :math:`C_{\mathrm{lin}}` (linear terms)
(see :class:`~superposition.CompiledLayer`). :func:`run_deep` applies the layer in this factored
form, reading :math:`r = \Phi_{\mathrm{in}}^\top a` once:

.. math::
    a' = \Phi_{\mathrm{out}}\Big(C_{\mathrm{lin}}\, r + \tfrac{1}{2-\theta}\,
          M\,\mathrm{ReLU}(W r - \theta)\Big),

which is the same function as the materialised :class:`~superposition.CompiledLayer` (for the
default :math:`\theta = 1`; the test suite checks it to rounding), without building the
:math:`d \times d` matrix :math:`W_{\mathrm{skip}}` at every depth step. That matters: compiling a
fresh layer costs seconds at large :math:`m, d`, while the factored step costs two products of
shape :math:`(K, d) \times (d, m)`. :meth:`DeepNetwork.gate_layer` still returns the materialised
layer for inspection. Memory is that of two embeddings and a few ``(K, m)`` arrays, independent of
the depth, so :math:`L = 1000` is practical.

One step is one function on plain arrays, :func:`deep_step` (the gate layer's sparse factors
:class:`GateFactors`, the next embedding as rows, the correction as :class:`CorrectionArrays`):
:func:`run_deep` calls it with the network's arrays and an exported network loaded from its file
calls it with the stored ones, so the two cannot drift apart. It runs in the namespace of the
batch (NumPy, CuPy, any array-API namespace; :func:`~superposition.backend.evaluation_namespace`):
the weights are drawn with NumPy from their seeds and moved once per namespace, the sparse
products go through :func:`~superposition.kernels.sparse_matmul`, and only the exact circuit
the emulation is compared with runs in NumPy.

Bits are decoded at every layer as :math:`\hat x^{(\ell)} = \Phi_\ell^\top a > \tfrac12` and
compared with the exact circuit on the same inputs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from ._validate import check_bits, check_choice, check_clip, check_int, check_real, check_sparsity
from .backend import asarray, evaluation_namespace, name_of, namespace, to_numpy
from .circuits import (
    DEFAULT_GATES,
    NEURON_WIRINGS,
    Circuit,
    CircuitLayer,
    CompiledLayer,
    compile_layer,
    random_circuit,
)
from .collisions import INPUTS_KINDS, layer_and_fires, layer_products, sample_inputs
from .correction import (
    CLIP,
    CapacityResult,
    CodeCorrection,
    FeatureDenoiser,
    clipped_unit,
    code_step,
    next_prime,
)
from .embedding import EMBEDDING_KINDS, Embedding, to_dense
from .grouped import (
    GROUPED_CLIP,
    WRITES,
    GroupedCorrection,
    check_grouped,
    group_design,
    group_incidence,
)
from .kernels import CSR, sparse_matmul
from .search import largest_passing

__all__ = [
    "CAPACITY_GATES",
    "DESIGNS",
    "EMBEDDING_SCHEMES",
    "CorrectionArrays",
    "DeepNetwork",
    "DeepResult",
    "DeepTrace",
    "GateFactors",
    "StepStates",
    "capacity_search",
    "deep_capacity",
    "deep_network",
    "deep_step",
    "run_deep",
]

DESIGNS = ("denoiser", "grouped", "code")
"""Correction designs: per-feature denoiser, grouped units (:mod:`superposition.grouped`), or
the code design."""
EMBEDDING_SCHEMES = ("fixed", "fresh")
"""Random embeddings of the denoiser design: one for every layer, or a new one per layer."""

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _layer_seed(seed: int, stream: int, ell: int) -> int:
    """A non-negative int seed for stream ``stream`` of layer ``ell`` (independent of depth)."""
    ss = np.random.SeedSequence(seed, spawn_key=(stream, ell))
    return int(ss.generate_state(1, dtype=np.uint32)[0])


@dataclass(frozen=True, eq=False)
class GateFactors:
    r"""Sparse factors of one gate layer, transposed to multiply row batches from the right.

    Attributes
    ----------
    wiring_t : CSR, shape ``(m_in, gate_neurons)``
        :math:`W^\top`, the 0/1 U-AND wiring.
    product_t : CSR, shape ``(gate_neurons, m_out)``
        :math:`M^\top`, the product readout :math:`M = C_3 R`.
    linear_t : CSR, shape ``(m_in, m_out)``
        :math:`C_{\mathrm{lin}}^\top`, the gates' linear terms.

    Arrays of any namespace (:func:`~superposition.kernels.sparse_matmul` moves them to the
    batch's, once).
    """

    wiring_t: CSR
    product_t: CSR
    linear_t: CSR


def _gate_factors(
    layer: CircuitLayer,
    gate_neurons: int,
    seed: int,
    dtype: np.dtype,
    wiring: dict[str, Any] | None = None,
) -> GateFactors:
    r"""Wiring :math:`W`, product readout :math:`M = C_3 R` and linear terms of one layer.

    The wiring is drawn by :func:`~superposition.compile_layer` itself (on a one-row probe
    embedding, so nothing of size :math:`d` is built): the same ``seed`` gives the same wiring as
    compiling with the real embeddings.
    """
    m_in, m_out = layer.n_features, layer.n_gates
    probe = compile_layer(
        layer,
        np.ones((1, m_in)),
        np.ones((1, m_out)),
        neurons=gate_neurons,
        seed=seed,
        **(wiring or {}),
    )
    w = sp.csc_array(probe.wiring)
    coef = layer.coefficients
    pairs, sizes = probe.pairs, probe.readout_sizes
    n_pairs = pairs.shape[0]
    prod = np.flatnonzero(coef[:, 3])
    if n_pairs:
        gamma = sp.csc_array(w[:, pairs[:, 0]] * w[:, pairs[:, 1]])  # (n, P)
        scale = np.divide(1.0, sizes, out=np.zeros(n_pairs), where=sizes > 0)
        readout = sp.csr_array(gamma @ sp.diags_array(scale)).T  # (P, n)
        uv = np.sort(np.stack([layer.left[prod], layer.right[prod]], axis=1), axis=1)
        key = pairs[:, 0] * m_in + pairs[:, 1]
        which = np.searchsorted(key, uv[:, 0] * m_in + uv[:, 1])
        c3 = sp.csr_array((coef[prod, 3].astype(np.float64), (prod, which)), shape=(m_out, n_pairs))
        product = sp.csr_array(c3 @ readout)  # (m_out, n)
    else:
        product = sp.csr_array((m_out, gate_neurons))
    g = np.arange(m_out)
    lin = sp.csr_array(
        (
            np.concatenate([coef[:, 1], coef[:, 2]]).astype(np.float64),
            (np.concatenate([g, g]), np.concatenate([layer.left, layer.right])),
        ),
        shape=(m_out, m_in),
    )
    lin.sum_duplicates()
    lin.eliminate_zeros()
    return GateFactors(
        wiring_t=CSR.from_scipy(sp.csr_array(w.T, dtype=dtype)),
        product_t=CSR.from_scipy(sp.csr_array(product.T, dtype=dtype)),
        linear_t=CSR.from_scipy(sp.csr_array(lin.T, dtype=dtype)),
    )


@dataclass(frozen=True, eq=False)
class CorrectionArrays:
    r"""A deep network's correction layer as plain arrays: what :func:`deep_step` applies.

    Attributes
    ----------
    lo, hi : float
        Clip thresholds of the clipped units (:func:`~superposition.correction.clipped_unit`).
    units : array ``(embed_dim, n_units)`` or None
        ``None``: the per-feature denoiser, :math:`a' = \sum_k g(\varphi_k\cdot a)\,\varphi_k`
        on the value layer's own embedding. Otherwise the code design's unit directions
        :math:`e_i` (float64), :math:`a' = c^{-1/2}\sum_i g(\sqrt c\, e_i\cdot a)\, e_i`
        (:func:`~superposition.correction.code_step`).
    blocks : int
        Code length :math:`c` (code design; ignored by the denoiser).
    incidence : CSR ``(n_features, n_units)`` or None
        The grouped design (:mod:`superposition.grouped`): the 0/1 incidence :math:`B`; unit
        :math:`i` reads :math:`z_i = \sum_{k\in S_i}\varphi_k\cdot a` from the readout.
        ``units`` is then ``None``.
    write : {"units", "phi"}
        Where the grouped units write: the unit basis (the state is :math:`u` padded to
        ``embed_dim``, its readout :math:`Bu/c`) or back through :math:`\Phi` (:math:`a' = \Phi Bu/c`).
    """

    lo: float
    hi: float
    units: Any = None
    blocks: int = 1
    incidence: Any = None
    write: str = "phi"

    def __post_init__(self) -> None:
        check_clip(self.lo, self.hi)
        check_int("blocks", self.blocks, low=1)
        check_choice("write", self.write, WRITES)
        if self.incidence is not None:
            if not isinstance(self.incidence, CSR):
                raise ValueError(f"incidence must be a CSR, got {type(self.incidence).__name__}")
            if self.units is not None:
                raise ValueError(
                    "incidence (grouped design) and units (code design) exclude each other"
                )

    @cached_property
    def mean(self) -> CSR:
        r""":math:`B^\top / c` ``(n_units, n_features)``: a feature's value from its units."""
        b = self.incidence
        inc = sp.csr_array(
            (to_numpy(b.data), to_numpy(b.indices), to_numpy(b.indptr)), shape=b.shape
        )
        return CSR.from_scipy(sp.csr_array(inc.T / self.blocks))

    def units_in(self, xp: ModuleType) -> Any:
        """``units`` in namespace ``xp`` (moved once, cached)."""
        cache = self.__dict__.setdefault("_units", {})
        key = name_of(xp)
        if key not in cache:
            cache[key] = asarray(to_numpy(self.units), xp)
        return cache[key]


class StepStates(NamedTuple):
    """The states of one :func:`deep_step`: after the gate layer and after its correction.

    Without correction ``state`` and ``readout`` are ``gate`` and ``gate_readout``.
    """

    gate: Any
    """State after the gate layer, ``(K, embed_dim)``."""
    gate_readout: Any
    r"""Its readout :math:`\Phi_\ell^\top a`, ``(K, n_features)``."""
    state: Any
    """State after the correction layer, ``(K, embed_dim)``."""
    readout: Any
    """Its readout, ``(K, n_features)``: what the next gate layer reads."""


def deep_step(
    readout: Any,
    factors: GateFactors,
    rows: Any,
    *,
    and_bias: float = 1.0,
    correction: CorrectionArrays | None = None,
) -> StepStates:
    r"""Gate layer :math:`\ell` and (optionally) correction layer :math:`\ell` on plain arrays.

    The one forward step of a deep network: :func:`run_deep` and an exported, loaded deep
    network (:mod:`superposition.export`) both call it, so they compute the same function in
    the same arithmetic.

    .. math::
        a = \Big(C_{\mathrm{lin}} r + \tfrac{1}{2-\theta} M\,\mathrm{ReLU}(W r - \theta)\Big)
            \Phi_\ell^\top \text{ (as rows)},\qquad r' = \Phi_\ell^\top a,

    then the correction layer on :math:`(a, r')` and its readout.

    Parameters
    ----------
    readout : array ``(K, n_features)``
        :math:`r = \Phi_{\ell-1}^\top a` of the state the gate layer reads.
    factors : GateFactors
        The gate layer's sparse factors.
    rows : array ``(n_features, embed_dim)``
        :math:`\Phi_\ell` as rows (feature :math:`k`'s direction is row :math:`k`), in the
        namespace of ``readout``; its dtype is the residual stream's (every state is cast to it).
    and_bias : float
        :math:`\theta` of the U-AND neurons.
    correction : CorrectionArrays or None
        The correction layer; ``None``: the gate layer only.

    Returns
    -------
    StepStates

    Raises
    ------
    ValueError
        ``readout`` or ``rows`` of a shape the factors do not fit, ``and_bias`` outside
        :math:`[0, 2)`, or ``factors``/``correction`` of the wrong type.
    """
    if not isinstance(factors, GateFactors):
        raise ValueError(f"factors must be GateFactors, got {type(factors).__name__}")
    if correction is not None and not isinstance(correction, CorrectionArrays):
        raise ValueError(f"correction must be CorrectionArrays, got {type(correction).__name__}")
    theta = check_real("and_bias", and_bias, low=0.0, high=2.0, high_open=True)
    m_in, m_out = factors.linear_t.shape
    if len(readout.shape) != 2 or readout.shape[1] != m_in:
        raise ValueError(f"readout must have shape (K, {m_in}), got {tuple(readout.shape)}")
    if len(rows.shape) != 2 or rows.shape[0] != m_out:
        raise ValueError(f"rows must have shape ({m_out}, embed_dim), got {tuple(rows.shape)}")
    xp = namespace(readout)
    gate = _gate_output(readout, factors, rows, theta)
    gate_readout = gate @ xp.matrix_transpose(rows)
    if correction is None:
        return StepStates(gate, gate_readout, gate, gate_readout)
    state, readout = _correct(gate, gate_readout, rows, correction)
    return StepStates(gate, gate_readout, state, readout)


def _gate_output(readout: Any, factors: GateFactors, rows: Any, theta: float) -> Any:
    """The gate layer's output state ``(K, d)`` from the readout of its input ``(K, m)``."""
    xp = namespace(readout)
    hidden = xp.maximum(sparse_matmul(readout, factors.wiring_t) - theta, 0.0)
    values = sparse_matmul(readout, factors.linear_t) + sparse_matmul(hidden, factors.product_t) * (
        1.0 / (2.0 - theta)
    )
    return xp.astype(values @ rows, rows.dtype, copy=False)


def _correct(a: Any, readout: Any, rows: Any, correction: CorrectionArrays) -> tuple[Any, Any]:
    """The correction layer on ``a`` ``(K, d)`` whose readout is ``readout`` ``(K, m)``: the new
    state and its readout (what the next gate layer reads)."""
    xp = namespace(a)
    T = xp.matrix_transpose
    if correction.units is not None:
        out = code_step(a, correction.units_in(xp), correction.blocks, correction.lo, correction.hi)
        state = xp.astype(out, rows.dtype, copy=False)
        return state, state @ T(rows)
    if correction.incidence is not None:
        u = clipped_unit(sparse_matmul(readout, correction.incidence), correction.lo, correction.hi)
        u = xp.astype(u, rows.dtype, copy=False)
        values = xp.astype(sparse_matmul(u, correction.mean), rows.dtype, copy=False)
        if correction.write == "units":
            # a' = E u with E the first n_u standard basis vectors; ψ_k·a' = (B u / c)_k exactly
            pad = xp.zeros((u.shape[0], rows.shape[1] - u.shape[1]), dtype=rows.dtype)
            return xp.concat([u, pad], axis=1), values
        state = _write(values, rows)
        return state, state @ T(rows)
    g = xp.astype(clipped_unit(readout, correction.lo, correction.hi), rows.dtype, copy=False)
    state = _write(g, rows)
    return state, state @ T(rows)


def _write(values: Any, rows: Any) -> Any:
    """``values (K, m) @ rows (m, d)``, as a sparse product when most values are exactly 0."""
    xp = namespace(values)
    if int(xp.count_nonzero(values)) * 4 < values.shape[0] * values.shape[1]:
        # inside the margins the values are exactly the sparse bits (or junk): a sparse product
        return xp.astype(sparse_matmul(CSR.from_dense(values), rows), rows.dtype, copy=False)
    return values @ rows


@dataclass(frozen=True, eq=False)
class DeepNetwork:
    r"""A depth-:math:`L` circuit, its gate layers and its correction layers (depth :math:`2L`).

    Build it with :func:`deep_network`; run it with :func:`run_deep`. Layers are generated on
    demand from seeds, so nothing of size proportional to :math:`L \cdot d` is stored.

    Attributes
    ----------
    circuit : Circuit
        Width :math:`m` at every layer (``circuit.n_features_per_layer`` constant).
    embed_dim : int
        Residual dimension :math:`d`.
    gate_neurons : int
        U-AND neurons of every gate layer :math:`n` (targeted wiring).
    design : {"denoiser", "code"}
    code : CodeCorrection or None
        The correction layer of the ``"code"`` design (its :math:`\Psi` is every layer's embedding).
    embedding_kind : {"gaussian", "sign"}
        Kind of the random embeddings of the ``"denoiser"`` design.
    embedding_scheme : {"fixed", "fresh"}
        ``"fixed"``: :math:`\Phi_\ell = \Phi_0` for every :math:`\ell` (one embedding for the
        residual stream); ``"fresh"``: an independent :math:`\Phi_\ell` per value layer.
    dtype : float32 or float64
        Of the embeddings and the residual stream.
    seed : int
        Layer :math:`\ell`'s embedding and wiring depend only on ``seed`` and :math:`\ell`.
    and_bias : float
        :math:`\theta` of the U-AND neurons, :math:`\mathrm{ReLU}(\hat x_u + \hat x_v - \theta)`,
        products read as the mean over :math:`\Gamma(u,v)` divided by :math:`2 - \theta`
        (default 1, the compiler's; a larger :math:`\theta` ignores "active + junk").
    lo, hi : float
        Clip thresholds of the denoiser and the grouped units (the code design carries its own),
        default :data:`~superposition.correction.CLIP` (see there why the margins are narrow).
    gate_wiring : {"targeted", "bernoulli"}
        U-AND wiring of the gate layers (:func:`~superposition.compile_layer`).
    pairs_per_neuron, neurons_per_product : int or None
        Targeted wiring: :math:`q` products per gate neuron, or :math:`r` neurons per product
        (then :math:`q = \lceil rP/n \rceil` for a layer of :math:`P` products); at most one.
    p : float or None
        Bernoulli wiring's connection probability.
    groups : int array ``(m, c)`` or None
        The grouped design's groups (:func:`~superposition.group_design`).
    write : {"units", "phi"}
        Where the grouped units write.
    """

    circuit: Circuit
    embed_dim: int
    gate_neurons: int
    design: str = "denoiser"
    code: CodeCorrection | None = None
    embedding_kind: str = "gaussian"
    embedding_scheme: str = "fixed"
    dtype: type = np.float32
    seed: int = 0
    and_bias: float = 1.0
    lo: float = CLIP[0]
    hi: float = CLIP[1]
    gate_wiring: str = "targeted"
    pairs_per_neuron: int | None = None
    neurons_per_product: int | None = None
    p: float | None = None
    groups: np.ndarray | None = None
    write: str = "units"

    def __post_init__(self) -> None:
        if not isinstance(self.circuit, Circuit):
            raise ValueError(f"circuit must be a Circuit, got {type(self.circuit).__name__}")
        widths = set(self.circuit.n_features_per_layer)
        if len(widths) != 1:
            raise ValueError(f"circuit must have the same embed_dim at every layer, got {widths}")
        check_int("embed_dim", self.embed_dim, low=1)
        check_int("gate_neurons", self.gate_neurons, low=1)
        check_choice("design", self.design, DESIGNS)
        check_choice("embedding_kind", self.embedding_kind, EMBEDDING_KINDS)
        check_choice("embedding_scheme", self.embedding_scheme, EMBEDDING_SCHEMES)
        check_int("seed", self.seed, low=0)
        check_real("and_bias", self.and_bias, low=0.0, high=2.0, high_open=True)
        if np.dtype(self.dtype) not in _DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {np.dtype(self.dtype)}")
        if self.design == "code":
            if not isinstance(self.code, CodeCorrection):
                raise ValueError("design 'code' needs code=CodeCorrection(...)")
            if (self.code.n_features, self.code.embed_dim) != (self.n_features, self.embed_dim):
                raise ValueError(
                    f"code must have n_features, embed_dim = {self.n_features}, {self.embed_dim}; "
                    f"got {self.code.n_features}, {self.code.embed_dim}"
                )
        elif self.code is not None:
            raise ValueError("code applies to design='code' only")
        check_clip(self.lo, self.hi)
        check_choice("gate_wiring", self.gate_wiring, NEURON_WIRINGS)
        if self.pairs_per_neuron is not None and self.neurons_per_product is not None:
            raise ValueError("give pairs_per_neuron or neurons_per_product, not both")
        if self.gate_wiring == "bernoulli" and (
            self.pairs_per_neuron is not None or self.neurons_per_product is not None
        ):
            raise ValueError(
                "pairs_per_neuron and neurons_per_product apply to gate_wiring='targeted' only"
            )
        if self.gate_wiring == "targeted" and self.p is not None:
            raise ValueError("p applies to gate_wiring='bernoulli' only")
        for name in ("pairs_per_neuron", "neurons_per_product"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), low=1)
        if self.p is not None:
            check_real("p", self.p, low=0.0, high=1.0, low_open=True)
        check_choice("write", self.write, WRITES)
        if self.design == "grouped":
            grp = np.asarray(self.groups) if self.groups is not None else None
            if grp is None or grp.ndim != 2 or grp.shape[0] != self.n_features:
                raise ValueError(
                    f"design 'grouped' needs groups of shape ({self.n_features}, blocks) "
                    "(superposition.grouped.group_design)"
                )
            if self.write == "units" and int(grp.max()) + 1 > self.embed_dim:
                raise ValueError(
                    f"write='units' needs n_units <= embed_dim = {self.embed_dim}, "
                    f"got {int(grp.max()) + 1}"
                )
        elif self.groups is not None:
            raise ValueError("groups applies to design='grouped' only")

    @property
    def n_features(self) -> int:
        """Circuit embed_dim :math:`m`."""
        return self.circuit.n_features

    @property
    def depth(self) -> int:
        """Circuit depth :math:`L` (the network has :math:`2L` layers)."""
        return self.circuit.depth

    @property
    def correction_neurons(self) -> int:
        """Neurons of one correction layer: :math:`2m` (denoiser), :math:`2n_u` (grouped) or :math:`2cq` (code)."""
        if self.code is not None:
            return self.code.neurons
        if self.groups is not None:
            return 2 * (int(np.asarray(self.groups).max()) + 1)
        return 2 * self.n_features

    @property
    def gates_per_layer(self) -> int:
        """Gates of one circuit layer (:math:`m`)."""
        return self.circuit.layers[0].n_gates

    def _wiring(self, ell: int) -> dict[str, Any]:
        """The wiring arguments of gate layer ``ell`` for :func:`~superposition.compile_layer`."""
        if self.gate_wiring == "bernoulli":
            return {"neuron_wiring": "bernoulli", "p": self.p}
        q = self.pairs_per_neuron
        if self.neurons_per_product is not None:
            products = layer_products(self.circuit.layers[ell - 1]).shape[0]
            q = max(1, -(-self.neurons_per_product * products // self.gate_neurons))
        return {"neuron_wiring": "targeted", "pairs_per_neuron": q}

    @cached_property
    def _code_rows(self) -> np.ndarray:
        assert self.code is not None
        return np.ascontiguousarray(self.code.embedding_matrix().T, dtype=self.dtype)

    def embedding(self, ell: int) -> Embedding | np.ndarray:
        r"""Embedding of value layer :math:`\ell` (0 = circuit input): :math:`\Phi_\ell` or :math:`\Psi`, ``(d, m)``."""
        ell = check_int("ell", ell, low=0, high=self.depth)
        if self.design == "code":
            return self._code_rows.T
        return Embedding(
            self.n_features,
            self.embed_dim,
            embedding_kind=self.embedding_kind,
            seed=_layer_seed(self.seed, 1, ell if self.embedding_scheme == "fresh" else 0),
            dtype=self.dtype,
        )

    def _rows(self, ell: int, xp: ModuleType | None = None) -> Any:
        """Embedding of value layer ``ell`` as C-contiguous rows ``(m, d)`` in namespace ``xp``.

        Drawn with NumPy, moved once per namespace; the rows of the last two layers are kept.
        """
        name = "numpy" if xp is None else name_of(xp)
        if self.design == "code":
            ell = -1
        elif self.embedding_scheme == "fixed":
            ell = 0
        cache = self.__dict__.setdefault("_rows_cache", {})
        rows = cache.get((name, ell))
        if rows is None:
            rows = cache.get(("numpy", ell))
            if rows is None:
                if ell == -1:
                    rows = self._code_rows
                else:
                    emb = self.embedding(ell)
                    assert isinstance(emb, Embedding)
                    # block by block: never the (d, m) matrix and its transpose at once
                    rows = np.empty((emb.n_features, emb.embed_dim), dtype=np.dtype(emb.dtype))
                    for start, blk in emb.blocks():
                        rows[start : start + blk.shape[1]] = blk.T
            if name != "numpy":
                rows = asarray(rows, xp)
            for old in [k for k in cache if k[1] < ell - 1]:
                del cache[old]
            cache[(name, ell)] = rows
        return rows

    def correction(self, ell: int) -> FeatureDenoiser | GroupedCorrection | CodeCorrection:
        r"""Correction layer :math:`\ell \ge 1` (after gate layer :math:`\ell`)."""
        ell = check_int("ell", ell, low=1, high=self.depth)
        if self.code is not None:
            return self.code
        emb = self.embedding(ell)
        assert isinstance(emb, Embedding)
        if self.groups is not None:
            # sparsity 1: the weakest check; deep_network checked the network's own s
            return GroupedCorrection(emb, self.groups, 1, self.lo, self.hi, self.write)
        return FeatureDenoiser(emb, lo=self.lo, hi=self.hi)

    def _wiring_seed(self, ell: int) -> int:
        return _layer_seed(self.seed, 2, ell)

    def gate_layer(self, ell: int) -> CompiledLayer:
        r"""Gate layer :math:`\ell \ge 1` materialised (reads :math:`\Phi_{\ell-1}`, writes :math:`\Phi_\ell`).

        Only for the default ``and_bias`` = 1 (the compiler's bias); :func:`run_deep` applies
        the same function in factored form.
        """
        ell = check_int("ell", ell, low=1, high=self.depth)
        if self.and_bias != 1.0:
            raise ValueError(f"gate_layer needs and_bias = 1 (the compiler's), got {self.and_bias}")
        return compile_layer(
            self.circuit.layers[ell - 1],
            self.embedding(ell - 1),
            self.embedding(ell),
            neurons=self.gate_neurons,
            seed=self._wiring_seed(ell),
            **self._wiring(ell),
        )

    def gate_factors(self, ell: int) -> GateFactors:
        r"""The sparse factors of gate layer :math:`\ell \ge 1` (drawn from its seed; NumPy arrays)."""
        ell = check_int("ell", ell, low=1, high=self.depth)
        return _gate_factors(
            self.circuit.layers[ell - 1],
            self.gate_neurons,
            self._wiring_seed(ell),
            np.dtype(self.dtype),
            self._wiring(ell),
        )

    def correction_arrays(self) -> CorrectionArrays:
        """Every correction layer as the plain arrays :func:`deep_step` applies (cached)."""
        arrays = self.__dict__.get("_correction_arrays")
        if arrays is None:
            if self.groups is not None:
                grp = np.asarray(self.groups)
                inc = group_incidence(grp, int(grp.max()) + 1).astype(np.dtype(self.dtype))
                arrays = CorrectionArrays(
                    self.lo,
                    self.hi,
                    blocks=grp.shape[1],
                    incidence=CSR.from_scipy(sp.csr_array(inc)),
                    write=self.write,
                )
            elif self.code is None:
                arrays = CorrectionArrays(self.lo, self.hi)
            else:
                code = self.code
                arrays = CorrectionArrays(code.lo, code.hi, units=code.units, blocks=code.blocks)
            self.__dict__["_correction_arrays"] = arrays
        return arrays

    def _xp_dtype(self, xp: ModuleType) -> Any:
        return xp.float32 if np.dtype(self.dtype) == np.float32 else xp.float64

    def encode(self, x: Any, ell: int = 0) -> Any:
        r"""Clean state :math:`\Phi_\ell x` of value layer :math:`\ell` for a 0/1 batch ``x`` ``(K, m)`` → ``(K, d)``.

        In the evaluation namespace of ``x`` (:func:`~superposition.backend.evaluation_namespace`).
        """
        xp = evaluation_namespace(x)
        bits = check_bits(to_numpy(x), self.n_features, "x")
        ell = check_int("ell", ell, low=0, high=self.depth)
        return xp.astype(asarray(bits, xp), self._xp_dtype(xp)) @ self._rows(ell, xp)

    def gate_step(self, ell: int, readout: Any) -> Any:
        r"""Gate layer :math:`\ell` on a batch, given :math:`r = \Phi_{\ell-1}^\top a` ``(K, m)`` → ``(K, d)``."""
        xp = namespace(readout)
        return _gate_output(readout, self.gate_factors(ell), self._rows(ell, xp), self.and_bias)

    def readout(self, a: Any, ell: int) -> Any:
        r""":math:`\hat x^{(\ell)} = \Phi_\ell^\top a`, ``(K, m)``, in the namespace of ``a``."""
        xp = namespace(a)
        return a @ xp.matrix_transpose(self._rows(ell, xp))

    def correct(self, a: Any, readout: Any, ell: int) -> Any:
        r"""Correction layer :math:`\ell` on ``a`` whose readout :math:`\Phi_\ell^\top a` is ``readout``.

        The denoiser's output :math:`\sum_k g(\varphi_k\cdot a)\,\varphi_k` is computed from the
        readout it shares with the measurement (same function as
        :meth:`~superposition.FeatureDenoiser.step`); the code layer is stepped as is
        (:func:`~superposition.correction.code_step`, as
        :meth:`~superposition.CodeCorrection.step`).
        """
        xp = namespace(a)
        return _correct(a, readout, self._rows(ell, xp), self.correction_arrays())[0]


def deep_network(
    n_features: int,
    embed_dim: int,
    sparsity: int,
    depth: int,
    *,
    gate_neurons: int | None = None,
    design: str = "denoiser",
    gates: tuple[str, ...] = DEFAULT_GATES,
    sticky: float = 0.0,
    blocks: int | None = None,
    field: int | None = None,
    groups_per_class: int | None = None,
    write: str = "units",
    embedding_kind: str = "gaussian",
    embedding_scheme: str = "fixed",
    dtype: type = np.float32,
    and_bias: float = 1.0,
    gate_wiring: str = "targeted",
    pairs_per_neuron: int | None = None,
    neurons_per_product: int | None = None,
    p: float | None = None,
    lo: float | None = None,
    hi: float | None = None,
    seed: int = 0,
) -> DeepNetwork:
    r"""A random depth-:math:`L` sparse circuit of :math:`m` values per layer and its corrected emulation.

    Parameters
    ----------
    n_features : int
        Features :math:`m \ge 2` of the circuit (values of every layer).
    embed_dim : int
        Residual dimension :math:`d`.
    sparsity : int
        :math:`s`: the inputs the network is built for (the code and grouped designs need
        :math:`s < c/2`).
    depth : int
        Circuit depth :math:`L \ge 1`.
    gate_neurons : int, optional
        U-AND neurons per gate layer (default :math:`d`).
    design : {"denoiser", "grouped", "code"}
        See the module docstring.
    gates : tuple of str
        Gate set of :func:`~superposition.random_circuit` (``"paired"`` wiring: every layer stays
        :math:`s`-sparse on every :math:`s`-sparse input). ``("and", "or")``: every block
        conserves its ones, meetings included; ``("copy",)``: permuted copies (the capacity
        test bed of :func:`capacity_search`).
    sticky : float
        :func:`~superposition.random_circuit`'s probability that a block's outputs stay paired.
    blocks : int, optional
        :math:`c`: code length of the code design (default 16: junk :math:`s/c = 3/16` at
        :math:`s = 3`, degree :math:`r = 1`), or units per feature of the grouped design
        (default 7).
    field : int, optional
        Prime :math:`q` of the code design, :math:`cq \le d` (default: the smallest prime
        :math:`q \ge c` with :math:`q^2 \ge m`).
    groups_per_class : int, optional
        Grouped design: groups per class :math:`g` (default :math:`\lfloor d/c \rfloor`, so
        :math:`n_u = cg \le d` units, :math:`2d` ReLUs or fewer).
    write : {"units", "phi"}
        Grouped design: where its units write (:mod:`superposition.grouped`).
    embedding_kind : {"gaussian", "sign"}
        Random embeddings of the denoiser and grouped designs.
    embedding_scheme : {"fixed", "fresh"}
        One random embedding for every layer, or a new one per layer.
    dtype : float32 or float64
        Of the embeddings and residual stream (float32: twice as fast; the corrected outputs
        are then exact to about :math:`10^{-6}`, far inside the margins).
    and_bias : float
        :math:`\theta` of the U-AND neurons (see :class:`DeepNetwork`).
    gate_wiring : {"targeted", "bernoulli"}
        The gate layers' U-AND wiring (:func:`~superposition.compile_layer`'s ``neuron_wiring``).
    pairs_per_neuron : int, optional
        Targeted wiring: :math:`q` products per gate neuron (default: the fewest that give every
        product a neuron).
    neurons_per_product : int, optional
        Targeted wiring: :math:`r` neurons per product instead; each layer then uses
        :math:`q = \lceil rP/n \rceil` for its :math:`P` products. A product is misread when
        about half of its :math:`r` neurons also hold another active feature (probability
        :math:`\approx 2qs/m` per neuron).
    p : float, optional
        Bernoulli wiring's connection probability (default :math:`\min(1, 3/\sqrt n)`).
    lo, hi : float, optional
        Clip thresholds of the correction units (default :data:`~superposition.correction.CLIP`,
        :data:`~superposition.grouped.GROUPED_CLIP` for the grouped design).
    seed : int
        Seeds the circuit, the embeddings (or the code's unit directions), the groups and the
        wirings.

    Returns
    -------
    DeepNetwork
    """
    m = check_int("n_features", n_features, low=2)
    d = check_int("embed_dim", embed_dim, low=1)
    s = check_sparsity(sparsity, m)
    check_int("depth", depth, low=1)
    check_choice("design", design, DESIGNS)
    s0 = check_int("seed", seed, low=0)
    n = d if gate_neurons is None else check_int("gate_neurons", gate_neurons, low=1)
    default = GROUPED_CLIP if design == "grouped" else CLIP
    lo = default[0] if lo is None else lo
    hi = default[1] if hi is None else hi
    circuit = random_circuit(
        m, depth, gates, sticky=sticky, seed=np.random.SeedSequence(s0, spawn_key=(0,))
    )
    code = groups = None
    if design == "code":
        c = check_int("blocks", 16 if blocks is None else blocks, low=1)
        if not 2 * s < c:
            raise ValueError(f"blocks must be > 2 * sparsity = {2 * s} (junk s/c < 1/2), got {c}")
        if field is None:
            root = int(np.ceil(np.sqrt(m)))
            while root * root < m:
                root += 1
            q = next_prime(max(c, root))
        else:
            q = check_int("field", field, low=c)
        if c * q > d:
            raise ValueError(
                f"embed_dim must be >= blocks * field = {c * q} (orthonormal code units), got {d}"
            )
        code = CodeCorrection(m, d, q, c, 1, _layer_seed(s0, 3, 0), lo=lo, hi=hi)
    elif design == "grouped":
        c = check_int("blocks", 7 if blocks is None else blocks, low=1)
        check_grouped(c, s, lo, hi)
        g = max(1, d // c) if groups_per_class is None else groups_per_class
        g = check_int("groups_per_class", g, low=1, high=m)
        check_choice("write", write, WRITES)
        if write == "units" and c * g > d:
            raise ValueError(
                f"groups_per_class must be <= embed_dim / blocks = {d // c} for write='units' "
                f"(n_units <= embed_dim), got {g}"
            )
        groups = group_design(m, g, c, seed=_layer_seed(s0, 4, 0))
    return DeepNetwork(
        circuit,
        d,
        n,
        design=design,
        code=code,
        embedding_kind=embedding_kind,
        embedding_scheme=embedding_scheme,
        dtype=dtype,
        seed=s0,
        and_bias=and_bias,
        lo=lo,
        hi=hi,
        gate_wiring=gate_wiring,
        pairs_per_neuron=pairs_per_neuron,
        neurons_per_product=neurons_per_product,
        p=p,
        groups=groups,
        write=write,
    )


@dataclass(frozen=True)
class DeepTrace:
    r"""Per-layer record of one run (with or without correction); arrays of length ``len(layers)``.

    Attributes
    ----------
    layers : int array
        Recorded circuit layers: 0 (the encoded input), every ``record_every``-th, and :math:`L`.
    max_error : array
        :math:`\max |\hat x^{(\ell)} - x^{(\ell)}|` over inputs and features of the state that
        layer :math:`\ell` passes on (after its correction layer, if any); ``nan`` once diverged.
    mean_error : array
        Mean of :math:`|\hat x - x|` over the ``K × m`` readouts.
    bit_accuracy : array
        Fraction of the ``K × m`` bits decoded right (:math:`\hat x > \tfrac12`).
    input_accuracy : array
        Fraction of inputs with every bit right.
    gate_error : array
        ``max_error`` of the gate layer's output before correction (the correction layer's
        :math:`\varepsilon_{\mathrm{in}}`); equal to ``max_error`` without correction.
    depth_survived : int
        Leading layers :math:`1, 2, \dots` with every bit of every input right (checked at every
        layer; 0 if the encoded input itself already had a wrong bit).
    diverged_at : int or None
        First layer whose readouts exceeded ``blowup``; the run stopped there (records ``nan``).
    """

    layers: np.ndarray
    max_error: np.ndarray
    mean_error: np.ndarray
    bit_accuracy: np.ndarray
    input_accuracy: np.ndarray
    gate_error: np.ndarray
    depth_survived: int
    diverged_at: int | None

    def to_dict(self) -> dict:
        """Plain lists and numbers (``nan`` → ``None``), for JSON."""

        def clean(v: np.ndarray) -> list:
            return [None if not np.isfinite(x) else float(x) for x in v]

        return {
            "layers": [int(v) for v in self.layers],
            "max_error": clean(self.max_error),
            "mean_error": clean(self.mean_error),
            "bit_accuracy": clean(self.bit_accuracy),
            "input_accuracy": clean(self.input_accuracy),
            "gate_error": clean(self.gate_error),
            "depth_survived": self.depth_survived,
            "diverged_at": self.diverged_at,
        }


@dataclass(frozen=True)
class DeepResult:
    """:func:`run_deep`'s output: the same circuit and inputs with and without correction.

    Attributes
    ----------
    corrected, uncorrected : DeepTrace or None
        ``None`` for a run not asked for.
    depth : int
    seconds : float
        Wall time of the run (both traces).
    ones_per_layer : int array ``(K, layers run + 1)``
        Ones of every value layer of the exact circuit, per input (column 0: the input).
    and_fires : int array ``(K, layers run + 1)``
        Products equal to 1 in every circuit layer, per input
        (:func:`~superposition.collisions.layer_and_fires`; column 0 is 0).
    gate_neurons, gates_per_layer, correction_neurons : int
        The network's neurons per gate layer, gates per circuit layer and neurons per
        correction layer.
    """

    corrected: DeepTrace | None
    uncorrected: DeepTrace | None
    depth: int
    seconds: float
    ones_per_layer: np.ndarray
    and_fires: np.ndarray
    gate_neurons: int
    gates_per_layer: int
    correction_neurons: int

    @property
    def total_and_fires(self) -> int:
        """Products equal to 1 over every layer and input."""
        return int(self.and_fires.sum())

    def counts(self) -> dict[str, Any]:
        """Plain numbers for JSON: the sizes and the ones and AND firings, per layer and total."""
        fires = self.and_fires
        per_input = fires.sum(axis=1)
        ones = self.ones_per_layer
        return {
            "gate_neurons": self.gate_neurons,
            "gates_per_layer": self.gates_per_layer,
            "correction_neurons": self.correction_neurons,
            "and_fires": {
                "total": int(fires.sum()),
                "per_input_mean": float(per_input.mean()) if per_input.size else 0.0,
                "per_input_min": int(per_input.min()) if per_input.size else 0,
                "per_layer": [int(v) for v in fires.sum(axis=0)],
            },
            "ones_per_layer": {
                "min": [int(v) for v in ones.min(axis=0)],
                "max": [int(v) for v in ones.max(axis=0)],
            },
        }


class _Recorder:
    def __init__(self) -> None:
        self.rows: list[tuple[float, ...]] = []
        self.layers: list[int] = []
        self.survived = 0
        self.alive = True
        self.diverged_at: int | None = None

    def check(self, readout: Any, x: Any) -> tuple[float, float, float, float]:
        """Max and mean error, bit and input accuracy of ``readout`` against bits ``x`` (same namespace)."""
        xp = namespace(readout, x)
        err = xp.abs(readout - xp.astype(x, readout.dtype))
        right = (readout > 0.5) == x
        return (
            float(xp.max(err)),
            float(xp.mean(err)),
            float(xp.mean(xp.astype(right, xp.float64))),
            float(xp.mean(xp.astype(xp.all(right, axis=1), xp.float64))),
        )

    def update(self, ell: int, stats: tuple[float, ...], gate: float, keep: bool) -> None:
        if self.alive and stats[3] == 1.0:
            self.survived += 1 if ell else 0
        else:  # a wrong bit (or nan), the encoded input's included, ends the leading run
            self.alive = False
        if keep:
            self.layers.append(ell)
            self.rows.append((*stats, gate))

    def drop_last(self) -> None:
        self.layers.pop()
        self.rows.pop()

    def trace(self) -> DeepTrace:
        arr = np.asarray(self.rows, dtype=np.float64).reshape(-1, 5)
        return DeepTrace(
            layers=np.asarray(self.layers, dtype=np.int64),
            max_error=arr[:, 0],
            mean_error=arr[:, 1],
            bit_accuracy=arr[:, 2],
            input_accuracy=arr[:, 3],
            gate_error=arr[:, 4],
            depth_survived=self.survived,
            diverged_at=self.diverged_at,
        )


def run_deep(
    network: DeepNetwork,
    x: np.ndarray,
    *,
    corrected: bool = True,
    uncorrected: bool = True,
    record_every: int = 1,
    blowup: float = 1e6,
    stop_early: bool = False,
    progress: bool | None = False,
) -> DeepResult:
    r"""Emulate the network's circuit on a batch, layer by layer, with and without correction.

    Both runs use the same gate layers and the same inputs; the corrected one applies correction
    layer :math:`\ell` after gate layer :math:`\ell`. After every layer the state is decoded
    (:math:`\hat x^{(\ell)} = \Phi_\ell^\top a`) and compared with the exact circuit.

    Parameters
    ----------
    network : DeepNetwork
    x : bool or 0/1 array ``(K, m)``
        Circuit inputs, e.g. ``to_dense(sample_sparse(m, s, K, seed), m)``. The network runs in
        the evaluation namespace of ``x`` (its own if not NumPy, else ``$SUPERPOSITION_BACKEND``,
        else NumPy); the records are the same to rounding on every backend.
    corrected, uncorrected : bool
        Which runs to make (at least one).
    record_every : int
        Record layers ``0, k, 2k, ...`` and :math:`L` (every layer still counts for
        ``depth_survived``).
    blowup : float
        An uncorrected run whose readouts exceed this in magnitude has diverged (every bit is
        noise); it stops there and records ``nan`` for later layers, which saves the work and
        avoids overflow.
    stop_early : bool
        Stop after the first layer at which every run has had a wrong bit (or diverged); that
        layer is the last record.
    progress : bool or None
        Show a ``tqdm`` bar on stderr (``None``: only on a terminal).

    Returns
    -------
    DeepResult
    """
    from tqdm import tqdm

    if not isinstance(network, DeepNetwork):
        raise ValueError(f"network must be a DeepNetwork, got {type(network).__name__}")
    if not (corrected or uncorrected):
        raise ValueError("at least one of corrected, uncorrected must be True")
    every = check_int("record_every", record_every, low=1)
    limit = check_real("blowup", blowup, low=0.0, low_open=True)
    xp = evaluation_namespace(x)
    xl = check_bits(to_numpy(x), network.n_features, "x")  # the exact circuit runs in NumPy
    L = network.depth
    t0 = time.perf_counter()
    r0 = network.readout(network.encode(asarray(xl, xp)), 0)
    fix = network.correction_arrays()
    runs: dict[str, dict] = {}
    for name, on in (("corrected", corrected), ("uncorrected", uncorrected)):
        if on:
            rec = _Recorder()
            stats = rec.check(r0, asarray(xl, xp))
            rec.update(0, stats, stats[0], True)
            runs[name] = {"rec": rec, "readout": r0, "live": True}
    ones = [xl.sum(axis=1)]
    fires = [np.zeros(xl.shape[0], dtype=np.int64)]
    bar = tqdm(
        range(1, L + 1),
        desc=f"deep {network.design}",
        unit="layer",
        disable=None if progress is None else not progress,
        leave=False,
    )
    for ell in bar:
        layer = network.circuit.layers[ell - 1]
        fires.append(layer_and_fires(layer, xl))
        xl = layer.evaluate(xl)
        ones.append(xl.sum(axis=1))
        bits = asarray(xl, xp)
        if any(run["live"] for run in runs.values()):  # a diverged run needs no weights
            factors = network.gate_factors(ell)
            rows = network._rows(ell, xp)
        keep = ell % every == 0 or ell == L
        for name, run in runs.items():
            rec = run["rec"]
            if not run["live"]:
                rec.update(ell, (np.nan,) * 4, np.nan, keep or stop_early)
                continue
            on = name == "corrected"
            step = deep_step(
                run["readout"],
                factors,
                rows,
                and_bias=network.and_bias,
                correction=fix if on else None,
            )
            r = step.readout
            gate_stats = rec.check(step.gate_readout, bits)
            stats = gate_stats
            if on:
                stats = rec.check(r, bits)
            elif not bool(xp.all(xp.isfinite(r))) or float(xp.max(xp.abs(r))) > limit:
                run["live"] = False
                rec.diverged_at = ell
                stats, gate_stats = (np.nan,) * 4, (np.nan,)
            rec.update(ell, stats, gate_stats[0], keep or stop_early)
            run["readout"] = r
        if stop_early and not any(run["rec"].alive for run in runs.values()):
            break
        if stop_early and not keep:  # keep only the regular records (and the last one)
            for run in runs.values():
                run["rec"].drop_last()
    bar.close()
    traces = {k: v["rec"].trace() for k, v in runs.items()}
    return DeepResult(
        corrected=traces.get("corrected"),
        uncorrected=traces.get("uncorrected"),
        depth=L,
        seconds=time.perf_counter() - t0,
        ones_per_layer=np.stack(ones, axis=1).astype(np.int64),
        and_fires=np.stack(fires, axis=1).astype(np.int64),
        gate_neurons=network.gate_neurons,
        gates_per_layer=network.gates_per_layer,
        correction_neurons=network.correction_neurons,
    )


def deep_capacity(
    make_network: Callable[[int], DeepNetwork | None],
    *,
    sparsity: int,
    n_samples: int,
    low: int,
    high: int,
    seed: int = 0,
    resolution: float = 0.05,
    inputs_kind: str = "uniform",
) -> CapacityResult:
    r"""Largest number of features :math:`m` whose corrected emulation keeps every bit over its depth.

    A trial at :math:`m` builds ``make_network(m)`` (``None``: the design does not fit its
    budget, a failure), draws ``n_samples`` s-sparse inputs (seed ``seed``) and runs
    :func:`run_deep` with correction only, stopping at the first wrong bit; it passes when every
    bit of every input is right at every layer. The search (:func:`~superposition.largest_passing`)
    doubles :math:`m` from ``low`` and bisects geometrically to a relative ``resolution``; it
    assumes failures are monotone in :math:`m`.

    Returns
    -------
    CapacityResult
        ``m_max`` (``low - 1`` if even ``low`` failed) and every ``(m, passed)`` trial.
    """
    s = check_int("sparsity", sparsity, low=1)
    k = check_int("n_samples", n_samples, low=1)
    s0 = check_int("seed", seed, low=0)
    check_choice("inputs_kind", inputs_kind, INPUTS_KINDS)
    trials: list[tuple[int, bool]] = []

    def passes(m: int) -> bool:
        net = make_network(m)
        ok = False
        if net is not None:
            act = sample_inputs(net.circuit, s, k, inputs_kind=inputs_kind, seed=s0)
            x = to_dense(act, m).astype(bool)
            res = run_deep(net, x, uncorrected=False, stop_early=True, record_every=net.depth)
            assert res.corrected is not None
            ok = res.corrected.depth_survived == net.depth
        trials.append((m, ok))
        return ok

    m_max = largest_passing(passes, low, high, resolution=resolution)
    return CapacityResult(m_max, tuple(trials))


CAPACITY_GATES = ("copy",)
"""The capacity test bed's gate set: every layer copies its values under a fresh random pairing
(a permutation), read linearly and written back through :math:`\\Phi`, so every junk value of a
correction is carried onto an unrelated feature, as OR and COPY gates do in a circuit."""


def capacity_search(
    design: str,
    embed_dim: int,
    *,
    sparsity: int = 3,
    depth: int = 50,
    n_samples: int = 100,
    seed: int = 0,
    budget: int | None = None,
    blocks: int | None = None,
    write: str = "units",
    lo: float | None = None,
    hi: float | None = None,
    low: int | None = None,
    high: int | None = None,
    resolution: float = 0.05,
) -> CapacityResult:
    r"""Largest :math:`m` a correction design keeps exact in the copy-circuit test bed at residual dimension :math:`d`.

    A trial at :math:`m` builds :func:`deep_network` with gates :data:`CAPACITY_GATES`
    (permuted copies, no products, so the gate layers are not the bottleneck), ``depth``
    layers and the given correction ``design``, and passes when every bit of ``n_samples``
    uniform s-sparse inputs is right after every correction layer (:func:`deep_capacity`, one
    search of :func:`~superposition.largest_passing`).

    Parameters
    ----------
    design : {"denoiser", "grouped", "code"}
    embed_dim : int
        Residual dimension :math:`d`.
    sparsity, depth, n_samples, seed
        :math:`s`, :math:`L`, :math:`K` and the seed of the networks and inputs.
    budget : int, optional
        ReLUs allowed per correction layer (e.g. :math:`2d`, the paper's width-:math:`d` MLP):
        the denoiser then fails above :math:`m = \text{budget}/2`, and the grouped design uses
        :math:`n_u = \text{budget}/2` units (:math:`\lfloor \text{budget}/2c\rfloor` groups per
        class). Default: none (the grouped design uses :math:`n_u \le d` units).
    blocks, write, lo, hi
        Of the grouped (and code) design (:func:`deep_network`).
    low, high : int, optional
        Search range of :math:`m` (default :math:`d/8` to :math:`64d`).
    resolution : float
        Relative resolution of the search.

    Returns
    -------
    CapacityResult
    """
    check_choice("design", design, DESIGNS)
    d = check_int("embed_dim", embed_dim, low=1)
    s = check_int("sparsity", sparsity, low=1)
    L = check_int("depth", depth, low=1)
    cap = None if budget is None else check_int("budget", budget, low=2)
    c = (7 if design == "grouped" else 16) if blocks is None else check_int("blocks", blocks, low=1)
    check_choice("write", write, WRITES)
    if lo is not None or hi is not None:  # every argument is checked here: a trial's ValueError
        check_clip(CLIP[0] if lo is None else lo, CLIP[1] if hi is None else hi)  # means no fit
    if design in ("grouped", "code"):
        if not 2 * s < c:
            raise ValueError(f"blocks must be > 2 * sparsity = {2 * s} (junk s/c < 1/2), got {c}")
    if design == "grouped":
        default = GROUPED_CLIP
        check_grouped(c, s, default[0] if lo is None else lo, default[1] if hi is None else hi)
        units = d if cap is None else cap // 2
        if write == "units":
            units = min(units, d)
        if units // c < 1:
            raise ValueError(f"budget must allow at least blocks = {c} units, got {cap}")
    lo_m = max(s + 1, d // 8) if low is None else check_int("low", low, low=2)
    hi_m = max(lo_m, 64 * d) if high is None else check_int("high", high, low=lo_m)

    def make(m: int) -> DeepNetwork | None:
        extra: dict[str, Any] = {}
        if design == "denoiser" and cap is not None and 2 * m > cap:
            return None
        if design == "grouped":
            extra = {"groups_per_class": min(m, units // c), "write": write}
        try:
            net = deep_network(
                m,
                d,
                s,
                L,
                gate_neurons=1,
                design=design,
                gates=CAPACITY_GATES,
                blocks=c,
                lo=lo,
                hi=hi,
                seed=seed,
                **extra,
            )
        except ValueError:  # the design does not fit (groups cannot be placed, code too long)
            return None
        if cap is not None and net.correction_neurons > cap:  # the code design's length grows
            return None
        return net

    return deep_capacity(
        make,
        sparsity=s,
        n_samples=n_samples,
        low=lo_m,
        high=hi_m,
        seed=seed,
        resolution=resolution,
    )
