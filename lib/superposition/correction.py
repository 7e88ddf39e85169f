r"""Error-correction layers (the paper's Lemma 7) and measurements of what they survive.

A correction layer is one ReLU MLP layer :math:`\mathbb{R}^d \to \mathbb{R}^d`,

.. math:: a' = W_{\text{out}}\,\mathrm{ReLU}(W_{\text{in}}\, a + b),

that takes a superposed s-sparse boolean vector with per-feature readout error
:math:`\varepsilon_{\text{in}}` and writes the same boolean vector back with a smaller error.
Both designs here are built from *clipped units*, two ReLUs with the same input,

.. math:: u(z) = \frac{\mathrm{ReLU}(z - \ell) - \mathrm{ReLU}(z - h)}{h - \ell}
          = \mathrm{clip}\Big(\frac{z-\ell}{h-\ell}, 0, 1\Big),

which are exactly 0 for :math:`z \le \ell` and exactly 1 for :math:`z \ge h`. Inside those margins
the input noise does not reach the output at all: the output is a fixed function of the bits,
so errors cannot compound over depth.

* :class:`FeatureDenoiser` (the baseline): one unit per feature reading :math:`z_k=\varphi_k\cdot a`,
  written back as :math:`\sum_k u_k \varphi'_k`; :math:`2m` neurons.
* :class:`CodeCorrection`: one unit per *code position* of a Reed–Solomon superimposed code; a
  feature is the sum of its :math:`c` unit directions. It needs :math:`2cq` neurons for up to
  :math:`q^{r+1}` features, so far fewer neurons than features, but it fixes the embedding: the
  features' directions are :math:`\psi_k = c^{-1/2}\sum_{i \in \text{code}(k)} e_i` (see its notes).

Measurements: :func:`chain` (depth, with fresh noise per layer, memory independent of depth),
:func:`noise_tolerance` (:math:`\varepsilon_{\text{out}}` against :math:`\varepsilon_{\text{in}}`),
:func:`capacity` (largest number of features kept exact, by
:func:`superposition.search.largest_passing`).

Layers and measurements run in the namespace of their input, or of ``$SUPERPOSITION_BACKEND`` for
NumPy input (:func:`~superposition.backend.evaluation_namespace`): unit directions and
embeddings are drawn with NumPy and moved once per namespace, noise is drawn with NumPy from
the seed and moved, so the same seed gives the same noise on every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from math import ceil, isqrt, sqrt
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sparse

from ._validate import as_generator, check_active, check_clip, check_int, check_real, check_sparsity
from .backend import asarray, evaluation_namespace, name_of, namespace
from .embedding import BLOCK, Embedding, indicator, sample_sparse
from .search import largest_passing

__all__ = [
    "CapacityResult",
    "ChainResult",
    "CLIP",
    "CodeCorrection",
    "CorrectionLayer",
    "FeatureDenoiser",
    "ToleranceResult",
    "capacity",
    "clipped_unit",
    "clipped_unit_weights",
    "chain",
    "code_design",
    "code_step",
    "code_for_budget",
    "correction_step",
    "denoiser_for_budget",
    "fresh_denoisers",
    "next_prime",
    "noise_tolerance",
    "reed_solomon_codes",
]

CLIP = (0.45, 0.55)
"""Default clip thresholds ``(lo, hi)`` of every correction unit. Narrow margins: a readout
that lands between them leaves a partial value, which the next gate layer of a circuit copies
and adds noise to; a steep unit resolves it within a layer. Measured in a corrected circuit
(s = 3, 50 layers, 50 inputs): the per-feature denoiser's capacity at d = 1000 and 1400 went
from 291 and 1069 features with (0.35, 0.65) to 583 and 2332 with (0.45, 0.55)."""

_FEATURE_CHUNK = 8192
"""Features per chunk when readouts are reduced block by block (bounds memory, not results)."""


# --------------------------------------------------------------------------------------------
# the layer interface


@runtime_checkable
class CorrectionLayer(Protocol):
    """What :func:`chain`, :func:`noise_tolerance` and :func:`capacity` need from a layer."""

    @property
    def n_features(self) -> int: ...  # m

    @property
    def embed_dim(self) -> int: ...  # d

    @property
    def neurons(self) -> int: ...

    @property
    def reads_own_output(self) -> bool: ...

    def encode(self, active: Any) -> Any: ...

    def step(self, a: Any) -> Any: ...

    def readout_blocks(self, a: Any, side: str) -> Iterator[tuple[int, Any]]: ...

    def weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def correction_step(layer: CorrectionLayer, a: Any) -> Any:
    r"""One correction layer on a batch, :math:`a' = W_{\text{out}}\mathrm{ReLU}(W_{\text{in}}a+b)`.

    Parameters
    ----------
    layer : CorrectionLayer
    a : array, shape ``(n_samples, embed_dim)``

    Returns
    -------
    array, shape ``(n_samples, embed_dim)``, in the evaluation namespace of ``a``.
    """
    return layer.step(a)


def _check_state(a: Any, embed_dim: int) -> tuple[Any, ModuleType]:
    """``a`` as float64 ``(n_samples, embed_dim)`` in its evaluation namespace, and the namespace."""
    xp = evaluation_namespace(a)
    arr = xp.astype(asarray(a, xp), xp.float64, copy=False)
    if len(arr.shape) != 2 or arr.shape[1] != embed_dim:
        raise ValueError(f"a must have shape (n_samples, {embed_dim}), got {tuple(arr.shape)}")
    return arr, xp


def clipped_unit(z: Any, lo: float, hi: float) -> Any:
    r"""The clipped unit :math:`(\mathrm{ReLU}(z-\ell) - \mathrm{ReLU}(z-h))/(h-\ell)`, elementwise.

    Computed as the two ReLUs it is made of, in that order (same rounding as the MLP layer), in
    the namespace of ``z``.
    """
    xp = namespace(z)
    scale = 1.0 / (hi - lo)
    return xp.maximum(z * scale - lo * scale, 0.0) - xp.maximum(z * scale - hi * scale, 0.0)


def code_step(a: Any, units: Any, blocks: int, lo: float, hi: float) -> Any:
    r"""The code correction layer on plain arrays: :math:`c^{-1/2}\sum_i u_i e_i`, float64.

    .. math:: z = \sqrt c\, E^\top a,\qquad u = \mathrm{clip}\Big(\frac{z-\ell}{h-\ell},0,1\Big),
        \qquad a' = c^{-1/2} E u .

    Parameters
    ----------
    a : array ``(n_samples, embed_dim)``
        Cast to float64.
    units : float64 array ``(embed_dim, n_units)``
        The unit directions :math:`E` (same namespace as ``a``).
    blocks : int
        Code length :math:`c`.
    lo, hi : float
        Clip thresholds.

    Returns
    -------
    float64 array ``(n_samples, embed_dim)``

    See Also
    --------
    CodeCorrection.step : the same layer, its units drawn from its seed.
    """
    xp = namespace(a, units)
    root_c = sqrt(check_int("blocks", blocks, low=1))
    u = clipped_unit((xp.astype(a, xp.float64, copy=False) @ units) * root_c, lo, hi)
    return u @ xp.matrix_transpose(units) / root_c


def clipped_unit_weights(
    read: np.ndarray, write: np.ndarray, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain MLP weights of clipped units reading rows ``read (u, d)`` and writing columns ``write (d, u)``.

    Returns ``W_in (2u, d)``, ``b (2u,)``, ``W_out (d, 2u)``: neurons ``0..u-1`` are the
    ``lo``-ReLUs and ``u..2u-1`` the ``hi``-ReLUs of units ``0..u-1``.
    """
    scale = 1.0 / (hi - lo)
    w_in = np.concatenate([read * scale, read * scale], axis=0)
    n_units = read.shape[0]
    b = np.concatenate([np.full(n_units, -lo * scale), np.full(n_units, -hi * scale)])
    w_out = np.concatenate([write, -write], axis=1)
    return w_in, b, w_out


# --------------------------------------------------------------------------------------------
# the baseline: one clipped unit per feature


@dataclass(frozen=True)
class FeatureDenoiser:
    r"""Per-feature denoiser: two ReLUs per feature, :math:`2m` neurons (the baseline).

    .. math::
        z_k = \varphi_k \cdot a,\qquad
        g_k = \frac{\mathrm{ReLU}(z_k-\ell)-\mathrm{ReLU}(z_k-h)}{h-\ell},\qquad
        a' = \sum_k g_k\, \varphi'_k .

    Parameters
    ----------
    embedding : Embedding
        Input embedding :math:`\Phi` (``embed_dim`` :math:`d`, ``n_features`` :math:`m`).
    out_embedding : Embedding, optional
        Output embedding :math:`\Phi'`; the same :math:`\Phi` when omitted. A fresh one needs a
        fresh layer to read it (see :func:`fresh_denoisers`).
    lo, hi : float
        Clip thresholds :math:`0 < \ell < h < 1` (default :data:`CLIP`).

    Notes
    -----
    **Guarantee.** If every readout of the input is within its margin, that is
    :math:`\varphi_k\cdot a < \ell` for every inactive :math:`k` and :math:`> h` for every active
    one, then :math:`a' = \Phi' x` exactly (up to float rounding), whatever the noise was. The
    output's own readout error is then only the crosstalk of :math:`\Phi' x`, about
    :math:`\sqrt{s/d}` per feature. Plain weights (:meth:`weights`): neurons :math:`0..m-1` are the
    :math:`\ell`-ReLUs and :math:`m..2m-1` the :math:`h`-ReLUs of features :math:`0..m-1`.
    """

    embedding: Embedding
    out_embedding: Embedding | None = None
    lo: float = CLIP[0]
    hi: float = CLIP[1]

    def __post_init__(self) -> None:
        if not isinstance(self.embedding, Embedding):
            raise ValueError(f"embedding must be an Embedding, got {type(self.embedding).__name__}")
        out = self.out_embedding
        if out is not None:
            if not isinstance(out, Embedding):
                raise ValueError(f"out_embedding must be an Embedding, got {type(out).__name__}")
            if (out.n_features, out.embed_dim) != (self.n_features, self.embed_dim):
                raise ValueError(
                    "out_embedding must have n_features, embed_dim = "
                    f"{self.n_features}, {self.embed_dim}; got {out.n_features}, {out.embed_dim}"
                )
        check_clip(self.lo, self.hi)

    @property
    def n_features(self) -> int:
        return self.embedding.n_features

    @property
    def embed_dim(self) -> int:
        return self.embedding.embed_dim

    @property
    def neurons(self) -> int:
        return 2 * self.n_features

    @property
    def output(self) -> Embedding:
        r"""The output embedding :math:`\Phi'`."""
        return self.embedding if self.out_embedding is None else self.out_embedding

    @property
    def reads_own_output(self) -> bool:
        return self.output == self.embedding

    def encode(self, active: Any) -> Any:
        r"""Clean input :math:`\Phi x`, float64 ``(n_samples, embed_dim)``, in the evaluation namespace of ``active``."""
        a = self.embedding.embed(active)
        xp = namespace(a)
        return xp.astype(a, xp.float64, copy=False)

    def step(self, a: Any) -> Any:
        """The layer on a batch ``a (n_samples, embed_dim)``, block by block over features.

        Float64, in the evaluation namespace of ``a``; only the features some input reads
        above ``lo`` are written back.
        """
        a, xp = _check_state(a, self.embed_dim)
        out = xp.zeros_like(a)
        emb_out = self.output
        for start, blk in self.embedding.blocks(xp):
            g = clipped_unit(a @ blk, self.lo, self.hi)
            cols = xp.nonzero(xp.any(g != 0, axis=0))[0]
            if cols.shape[0]:
                write = xp.take(emb_out.block(start // BLOCK, xp), cols, axis=1)
                out = out + xp.take(g, cols, axis=1) @ xp.matrix_transpose(write)
        return out

    def readout_blocks(self, a: Any, side: str = "out") -> Iterator[tuple[int, Any]]:
        r"""Yield ``(first_feature, readouts)``: :math:`\Phi^\top a` (``side="in"``) or :math:`\Phi'^\top a`.

        Float64, in the evaluation namespace of ``a``.
        """
        a, xp = _check_state(a, self.embed_dim)
        emb = self.embedding if _check_side(side) == "in" else self.output
        for start, blk in emb.blocks(xp):
            yield start, a @ blk

    def weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Plain arrays ``W_in (2m, d)``, ``b (2m,)``, ``W_out (d, 2m)`` (materialised)."""
        phi = self.embedding.matrix().astype(np.float64)
        phi_out = self.output.matrix().astype(np.float64)
        return clipped_unit_weights(phi.T, phi_out, self.lo, self.hi)


def _check_side(side: object) -> str:
    if side not in ("in", "out"):
        raise ValueError(f"side must be one of 'in', 'out'; got {side!r}")
    return str(side)


def fresh_denoisers(
    n_features: int,
    embed_dim: int,
    *,
    embedding_kind: str = "gaussian",
    seed: int = 0,
    lo: float = CLIP[0],
    hi: float = CLIP[1],
) -> Callable[[int], FeatureDenoiser]:
    r"""Layer factory for a chain that re-embeds with a fresh :math:`\Phi` at every layer.

    Layer :math:`l` reads ``Embedding(m, d, embedding_kind, seed + l)`` and writes
    ``Embedding(m, d, embedding_kind, seed + l + 1)``, which layer :math:`l+1` reads.
    """
    m = check_int("n_features", n_features, low=1)
    d = check_int("embed_dim", embed_dim, low=1)
    s0 = check_int("seed", seed, low=0)
    check_clip(lo, hi)

    def make(layer: int) -> FeatureDenoiser:
        return FeatureDenoiser(
            Embedding(m, d, embedding_kind, s0 + layer),
            Embedding(m, d, embedding_kind, s0 + layer + 1),
            lo,
            hi,
        )

    make(0)  # validate embedding_kind now
    return make


# --------------------------------------------------------------------------------------------
# fewer neurons than features: correction in the basis of a superimposed code


def _is_prime(q: int) -> bool:
    if q < 2:
        return False
    return all(q % p for p in range(2, isqrt(q) + 1))


def next_prime(n: int) -> int:
    """The smallest prime ``>= n``."""
    q = max(2, n)
    while not _is_prime(q):
        q += 1
    return q


def reed_solomon_codes(field: int, blocks: int, degree: int, n_features: int) -> np.ndarray:
    r"""Reed–Solomon superimposed code: the ``blocks`` unit indices of each feature.

    Feature :math:`k` is the polynomial :math:`p_k(t) = \sum_{j=0}^{r} a_j t^j` over
    :math:`\mathrm{GF}(q)` whose coefficients are the base-:math:`q` digits of :math:`k`
    (:math:`a_0` least significant). Its code has one unit in each block :math:`t = 0..c-1`:
    unit :math:`tq + p_k(t)`. Two distinct polynomials of degree :math:`\le r` agree on at most
    :math:`r` points, so **two features share at most r units** (Kautz and Singleton, 1964).

    Parameters
    ----------
    field : int
        Prime :math:`q`.
    blocks : int
        Code length :math:`c`, :math:`1 \le c \le q`.
    degree : int
        Polynomial degree :math:`r \ge 0`.
    n_features : int
        :math:`m \le q^{r+1}`; the first :math:`m` polynomials are used.

    Returns
    -------
    codes : int64 array, shape ``(n_features, blocks)``
        Values in ``[0, blocks * field)``; row ``k``, column ``t`` is feature k's unit in block t.
    """
    q, c, r = _check_code(field, blocks, degree)
    m = check_int("n_features", n_features, low=1, high=q ** (r + 1))
    k = np.arange(m, dtype=np.int64)
    t = np.arange(c, dtype=np.int64)
    values = np.zeros((m, c), dtype=np.int64)
    for j in range(r, -1, -1):  # Horner: p(t) = (...(a_r t + a_{r-1}) t + ...) t + a_0
        digit = (k // q**j) % q
        values = (values * t[None, :] + digit[:, None]) % q
    return t[None, :] * q + values


def _check_code(field: object, blocks: object, degree: object) -> tuple[int, int, int]:
    q = check_int("field", field, low=2)
    if not _is_prime(q):
        raise ValueError(f"field must be a prime number, got {q}")
    c = check_int("blocks", blocks, low=1, high=q)
    r = check_int("degree", degree, low=0)
    return q, c, r


@dataclass(frozen=True)
class CodeCorrection:
    r"""Correction in the basis of a Reed–Solomon superimposed code: :math:`2cq` neurons, up to :math:`q^{r+1}` features.

    Units :math:`i = 0..n_u-1` (:math:`n_u = cq`) have directions :math:`e_i \in \mathbb{R}^d`
    (columns of ``units``: orthonormal when :math:`n_u \le d`, else random unit vectors). Feature
    :math:`k` has the code :math:`C_k` of :func:`reed_solomon_codes` and the direction

    .. math:: \psi_k = c^{-1/2} \sum_{i \in C_k} e_i .

    The layer reads every unit, clips it, and writes the units back:

    .. math::
        z_i = \sqrt c\, e_i\cdot a,\qquad u_i = \mathrm{clip}\Big(\frac{z_i-\ell}{h-\ell},0,1\Big),
        \qquad a' = c^{-1/2}\sum_i u_i\, e_i .

    Feature readout is :math:`\hat x_k = \psi_k \cdot a`, the mean of its units' :math:`z_i`.

    Parameters
    ----------
    n_features : int
        :math:`m \le q^{r+1}`.
    embed_dim : int
        Residual dimension :math:`d`.
    field : int
        Prime :math:`q` (units per block).
    blocks : int
        Code length :math:`c \le q` (units per feature).
    degree : int
        :math:`r`: two features share at most :math:`r` units (default 1).
    seed : int
        Seed of the unit directions.
    lo, hi : float
        Clip thresholds (default :data:`CLIP`).

    Notes
    -----
    **Guarantee** (noise-free arithmetic, :math:`n_u \le d`). Let :math:`x` be s-sparse with
    :math:`rs < c/2`, and let the input be :math:`a = \sum_i n_i e_i/\sqrt c + \delta`, where
    :math:`n_i \ge 1` exactly for units in some active code and :math:`n_i = 0` otherwise (the
    linear encoding :math:`\Psi x`, whose :math:`n_i` counts active codes through unit i, and the
    layer's own output, :math:`n_i \in\{0,1\}`, are both of this form). If every unit error
    :math:`|\sqrt c\, e_i\cdot\delta| < \min(\ell, 1-h)` then the output is exactly
    :math:`c^{-1/2}\sum_i \mathrm{OR}_i(x)\, e_i`: active features read 1 and an inactive feature
    reads :math:`t_k/c \le rs/c`, :math:`t_k` the number of its units shared with active codes.
    So :math:`\varepsilon_{\text{out}} = \max_k t_k/c` for **every** such input, however large
    :math:`\varepsilon_{\text{in}}` was: the output error is a fixed property of :math:`x`, and
    bits stay exact over any depth while each layer's noise stays inside the margins.

    **Cost of the choice.** The embedding :math:`\Psi` is part of the design (coherence
    :math:`\max|\psi_k\cdot\psi_l| = r/c`); gate layers must read and write features through
    :math:`\psi_k`. Isotropic noise with per-feature readout std :math:`\sigma` reaches each unit
    with std :math:`\sqrt c\,\sigma`, so the tolerated noise is :math:`\sqrt c` smaller than the
    baseline's. With :math:`n_u > d` the units are themselves in superposition and each read picks
    up crosstalk of std about :math:`\sqrt{\#\text{active units}/d}`, and the guarantee is lost.
    """

    n_features: int
    embed_dim: int
    field: int
    blocks: int
    degree: int = 1
    seed: int = 0
    lo: float = CLIP[0]
    hi: float = CLIP[1]

    def __post_init__(self) -> None:
        q, _, r = _check_code(self.field, self.blocks, self.degree)
        check_int("n_features", self.n_features, low=1, high=q ** (r + 1))
        check_int("embed_dim", self.embed_dim, low=1)
        check_int("seed", self.seed, low=0)
        check_clip(self.lo, self.hi)

    @property
    def n_units(self) -> int:
        """Clipped units :math:`n_u = cq`."""
        return self.blocks * self.field

    @property
    def neurons(self) -> int:
        """ReLU neurons :math:`2cq`."""
        return 2 * self.n_units

    @property
    def reads_own_output(self) -> bool:
        return True

    @property
    def coherence(self) -> float:
        r"""Bound :math:`|\psi_k\cdot\psi_l| \le r/c` on the overlap of two features (orthonormal units)."""
        return min(self.degree, self.blocks) / self.blocks if self.n_features > 1 else 0.0

    def junk_bound(self, sparsity: int) -> float:
        r"""Worst inactive readout after correction, :math:`\min(rs, c)/c` (bits exact iff < ½)."""
        s = check_sparsity(sparsity, self.n_features)
        return min(self.degree * s, self.blocks) / self.blocks

    @cached_property
    def codes(self) -> np.ndarray:
        """``(n_features, blocks)`` unit indices (see :func:`reed_solomon_codes`)."""
        return reed_solomon_codes(self.field, self.blocks, self.degree, self.n_features)

    @property
    def units(self) -> np.ndarray:
        """Unit directions :math:`e_i` as columns, shape ``(embed_dim, n_units)`` (read-only).

        They depend only on ``(embed_dim, n_units, seed)`` and are shared between layers with the
        same three (a QR factorisation costs seconds at ``embed_dim`` in the thousands).
        """
        return _unit_directions(self.embed_dim, self.n_units, self.seed)

    def _in(self, what: str, xp: ModuleType) -> Any:
        """``units`` or ``codes`` in namespace ``xp`` (drawn with NumPy, moved once, cached)."""
        cache = self.__dict__.setdefault("_moved", {})
        key = (what, name_of(xp))
        if key not in cache:
            cache[key] = asarray(self.units if what == "units" else self.codes, xp)
        return cache[key]

    def embedding_matrix(self) -> np.ndarray:
        r""":math:`\Psi`, shape ``(embed_dim, n_features)`` (materialised: ``embed_dim * n_features`` floats).

        Computed as :math:`E S^\top / \sqrt c` with the sparse 0/1 incidence
        :math:`S` ``(n_features, n_units)`` of the codes, so no ``(embed_dim, m, c)`` array is built.
        """
        return code_embedding(self.units, self.codes)

    def encode(self, active: Any) -> Any:
        r"""Clean linear input :math:`\Psi x = \sum_{k\ \text{active}} \psi_k`, float64 ``(n_samples, embed_dim)``.

        In the evaluation namespace of ``active``: the units each input's codes pass through
        are counted (an :func:`~superposition.embedding.indicator` of the code units) and
        written with :math:`E/\sqrt c`.
        """
        xp = evaluation_namespace(active)
        active = asarray(check_active(active, self.n_features), xp)
        k, s = active.shape
        codes = xp.take(self._in("codes", xp), xp.reshape(active, (-1,)), axis=0)
        counts = indicator(xp.reshape(codes, (k, s * self.blocks)), self.n_units)
        return counts @ xp.matrix_transpose(self._in("units", xp)) / sqrt(self.blocks)

    def unit_reads(self, a: Any) -> Any:
        r""":math:`z = \sqrt c\, E^\top a`, float64 ``(n_samples, n_units)``, in the evaluation namespace of ``a``."""
        a, xp = _check_state(a, self.embed_dim)
        return (a @ self._in("units", xp)) * sqrt(self.blocks)

    def step(self, a: Any) -> Any:
        """The layer on a batch ``a (n_samples, embed_dim)`` (:func:`code_step` with these units)."""
        a, xp = _check_state(a, self.embed_dim)
        return code_step(a, self._in("units", xp), self.blocks, self.lo, self.hi)

    def readout_blocks(self, a: Any, side: str = "out") -> Iterator[tuple[int, Any]]:
        r"""Yield ``(first_feature, readouts)`` with readouts :math:`\psi_k\cdot a` (both sides).

        The mean of each feature's :math:`c` unit reads, in the evaluation namespace of ``a``.
        """
        _check_side(side)
        z = self.unit_reads(a)
        xp = namespace(z)
        reads = xp.matrix_transpose(z)  # (n_units, K): each unit's reads contiguous
        codes = self._in("codes", xp)
        for start in range(0, self.n_features, _FEATURE_CHUNK):
            chunk = codes[start : min(start + _FEATURE_CHUNK, self.n_features), :]
            w = chunk.shape[0]
            # gathered as (features, c, K) and viewed as (K, features, c): the mean adds the c
            # reads of a feature in the same order as NumPy's fancy indexing z[:, codes]
            gathered = xp.reshape(
                xp.take(reads, xp.reshape(chunk, (-1,)), axis=0), (w, -1, z.shape[0])
            )
            yield start, xp.mean(xp.permute_dims(gathered, (2, 0, 1)), axis=2)

    def weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Plain arrays ``W_in (2 n_u, d)``, ``b (2 n_u,)``, ``W_out (d, 2 n_u)``."""
        root_c = np.sqrt(self.blocks)
        return clipped_unit_weights(self.units.T * root_c, self.units / root_c, self.lo, self.hi)


def code_embedding(units: np.ndarray, codes: np.ndarray) -> np.ndarray:
    r"""The code design's embedding :math:`\Psi = E S^\top / \sqrt c`, ``(embed_dim, n_features)``.

    :math:`\psi_k = c^{-1/2} \sum_{i \in C_k} e_i`, computed with the sparse 0/1 incidence
    :math:`S` ``(n_features, n_units)`` of the codes, so no ``(embed_dim, m, c)`` array is built.

    Parameters
    ----------
    units : float array ``(embed_dim, n_units)``
        The unit directions :math:`e_i` as columns (:attr:`CodeCorrection.units`).
    codes : int array ``(n_features, blocks)``
        Feature :math:`k`'s units :math:`C_k` (:attr:`CodeCorrection.codes`).
    """
    units, codes = np.asarray(units), np.asarray(codes)
    m, c = codes.shape
    rows = np.repeat(np.arange(m), c)
    incidence = sparse.csr_array(
        (np.ones(m * c), (rows, codes.reshape(-1))), shape=(m, units.shape[1])
    )
    return np.asarray(incidence @ units.T).T / np.sqrt(c)


@lru_cache(maxsize=4)
def _unit_directions(embed_dim: int, n_units: int, seed: int) -> np.ndarray:
    """Orthonormal (``n_units <= embed_dim``) or random unit columns ``(embed_dim, n_units)``, read-only."""
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((embed_dim, n_units))
    if n_units <= embed_dim:
        qmat, rmat = np.linalg.qr(g)
        out = qmat * np.sign(np.diag(rmat))[None, :]
    else:
        out = g / np.linalg.norm(g, axis=0, keepdims=True)
    out.setflags(write=False)
    return out


def code_design(
    n_features: int, sparsity: int, *, max_junk: float = 0.375, max_degree: int = 6
) -> tuple[int, int, int]:
    r"""Fewest-neuron Reed–Solomon code for ``n_features`` with junk :math:`rs/c \le` ``max_junk``.

    For each degree :math:`r \ge 1`: :math:`c = \lceil rs/\text{max\_junk} \rceil`, :math:`q` the
    smallest prime with :math:`q \ge c` and :math:`q^{r+1} \ge m`; the design with the fewest
    neurons :math:`2cq` wins (ties: lower degree).

    Returns
    -------
    (field, blocks, degree) : tuple of int
    """
    m = check_int("n_features", n_features, low=1)
    s = check_sparsity(sparsity, m)
    junk = check_real("max_junk", max_junk, low=0.0, high=0.5, low_open=True, high_open=True)
    rmax = check_int("max_degree", max_degree, low=1)
    best: tuple[int, int, int, int] | None = None
    for r in range(1, rmax + 1):
        c = ceil(r * s / junk - 1e-12)
        q = next_prime(max(c, _iroot_ceil(m, r + 1)))
        cand = (2 * c * q, r, q, c)
        if best is None or cand[:2] < best[:2]:
            best = cand
    assert best is not None
    return best[2], best[3], best[1]


def _iroot_ceil(m: int, k: int) -> int:
    """Smallest integer x with x**k >= m."""
    x = max(1, int(round(m ** (1.0 / k))))
    while x**k < m:
        x += 1
    while x > 1 and (x - 1) ** k >= m:
        x -= 1
    return x


def code_for_budget(
    neurons: int,
    embed_dim: int,
    sparsity: int,
    *,
    max_junk: float = 0.375,
    max_degree: int = 6,
    seed: int = 0,
) -> Callable[[int], CodeCorrection | None]:
    """Factory ``m -> CodeCorrection`` from :func:`code_design`, or ``None`` if it needs more than ``neurons``."""
    n = check_int("neurons", neurons, low=2)
    d = check_int("embed_dim", embed_dim, low=1)
    s = check_int("sparsity", sparsity, low=1)
    check_int("seed", seed, low=0)

    def make(m: int) -> CodeCorrection | None:
        if m < s:
            return None
        q, c, r = code_design(m, s, max_junk=max_junk, max_degree=max_degree)
        if 2 * c * q > n:
            return None
        return CodeCorrection(m, d, q, c, r, seed)

    return make


def denoiser_for_budget(
    neurons: int, embed_dim: int, *, embedding_kind: str = "gaussian", seed: int = 0
) -> Callable[[int], FeatureDenoiser | None]:
    """Factory ``m -> FeatureDenoiser`` (random :math:`\\Phi`), or ``None`` when ``2m > neurons``."""
    n = check_int("neurons", neurons, low=2)
    d = check_int("embed_dim", embed_dim, low=1)
    Embedding(1, d, embedding_kind, seed)  # validates embedding_kind and seed

    def make(m: int) -> FeatureDenoiser | None:
        return FeatureDenoiser(Embedding(m, d, embedding_kind, seed)) if 2 * m <= n else None

    return make


# --------------------------------------------------------------------------------------------
# measurements


def _readout_stats(blocks: Iterator[tuple[int, Any]], active: Any) -> tuple[Any, Any]:
    """Per input: max |readout − x| over features, and whether every bit (readout > ½) is right.

    ``blocks`` yields ``(first_feature, readouts (n_samples, w))``; ``active`` ``(n_samples, s)``
    is in their namespace. Each block's bits are the :func:`~superposition.embedding.indicator`
    of the active features it holds, so the readout error is ``readouts - x`` exactly.
    """
    max_err = ok = None
    for start, r in blocks:
        xp = namespace(r, active)
        on = indicator(active - start, r.shape[1], r.dtype)  # 0/1: active features of the block
        dev = r - on
        err = xp.max(xp.abs(dev), axis=1)
        # wrong: an inactive feature reading above 1/2 or an active one at or below 1/2
        wrong = xp.any(((dev > 0.5) & (on == 0)) | ((dev <= -0.5) & (on == 1)), axis=1)
        max_err = err if max_err is None else xp.maximum(max_err, err)
        ok = ~wrong if ok is None else ok & ~wrong
    if max_err is None:
        xp = namespace(active)
        k = active.shape[0]
        return xp.zeros(k, dtype=xp.float64), xp.ones(k, dtype=xp.bool)
    return max_err, ok


def _max(x: Any) -> float:
    return float(namespace(x).max(x))


def _mean(x: Any) -> float:
    xp = namespace(x)
    return float(xp.mean(xp.astype(x, xp.float64)))


@dataclass(frozen=True)
class ChainResult:
    """Per-layer record of :func:`chain` (arrays of length ``len(layers)``).

    Attributes
    ----------
    layers : int array
        Layer indices recorded (0-based; layer l is the (l+1)-th correction).
    max_error : array
        Max over inputs and features of the readout error of the layer's output (before noise).
    bit_accuracy : array
        Fraction of inputs whose output bits (readout > ½) are all right.
    input_error : array
        Same as ``max_error`` for the noisy input the layer received (:math:`\\varepsilon_{in}`).
    input_bit_accuracy : array
        Same as ``bit_accuracy`` for that noisy input.
    depth_survived : int
        Number of leading layers whose outputs had bit accuracy 1.0.
    depth : int
        Number of layers asked for.
    """

    layers: np.ndarray
    max_error: np.ndarray
    bit_accuracy: np.ndarray
    input_error: np.ndarray
    input_bit_accuracy: np.ndarray
    depth_survived: int
    depth: int

    @property
    def exact(self) -> bool:
        """Whether every layer kept every bit of every input."""
        return self.depth_survived == self.depth


def _layer_source(
    layers: CorrectionLayer | Callable[[int], CorrectionLayer],
) -> Callable[[int], CorrectionLayer]:
    if isinstance(layers, CorrectionLayer):
        if not layers.reads_own_output:
            raise ValueError(
                "layers writes a different embedding from the one it reads; pass a factory "
                "l -> layer (e.g. fresh_denoisers) so that layer l+1 reads what layer l wrote"
            )
        return lambda _layer: layers
    if callable(layers):
        return layers
    raise ValueError(f"layers must be a CorrectionLayer or a callable, got {type(layers).__name__}")


def chain(
    layers: CorrectionLayer | Callable[[int], CorrectionLayer],
    active: np.ndarray,
    depth: int,
    *,
    noise_std: float = 0.0,
    seed: object = 0,
    record_every: int = 1,
    stop_early: bool = False,
) -> ChainResult:
    r"""Run ``depth`` correction layers, adding fresh Gaussian noise before each.

    .. math::
        a_0 = \text{encode}(x) + \delta_0,\qquad
        a_{l+1} = \text{layer}_l(a_l) + \delta_{l+1},\qquad \delta_l \sim N(0, \sigma^2 I_d),

    so every unit-norm readout vector sees noise of std :math:`\sigma` (``noise_std``) per layer.
    Memory is that of one state ``(n_samples, embed_dim)`` plus the records: ``depth`` = 1000 is fine.

    Parameters
    ----------
    layers : CorrectionLayer or callable ``int -> CorrectionLayer``
        One layer reused (it must read its own output) or a factory of layer ``l``.
    active : int array, shape ``(n_samples, s)``
        Active features of each input (:func:`~superposition.sample_sparse`).
    depth : int
        Number of layers :math:`L \ge 1`.
    noise_std : float
        :math:`\sigma \ge 0`.
    seed : int or Generator
        Seed of the noise.
    record_every : int
        Record layers ``0, k, 2k, ...`` and the last one (every layer is still checked for
        ``depth_survived``).
    stop_early : bool
        Stop at the first layer whose output has a wrong bit (records end there).

    Returns
    -------
    ChainResult
    """
    source = _layer_source(layers)
    L = check_int("depth", depth, low=1)
    sigma = check_real("noise_std", noise_std, low=0.0)
    every = check_int("record_every", record_every, low=1)
    rng = as_generator(seed)
    first = source(0)
    active = check_active(active, first.n_features)
    d = first.embed_dim

    def noisy(a: Any) -> Any:
        if sigma <= 0:
            return a
        return a + sigma * asarray(rng.standard_normal(tuple(a.shape)), namespace(a))

    rec: dict[str, list[float]] = {k: [] for k in ("l", "e", "b", "ei", "bi")}
    a = noisy(first.encode(active))
    active = asarray(active, namespace(a))
    survived = 0
    alive = True
    for layer_idx in range(L):
        layer = first if layer_idx == 0 else source(layer_idx)
        if layer.embed_dim != d:
            raise ValueError(f"layer {layer_idx} has embed_dim {layer.embed_dim}, expected {d}")
        e_in, ok_in = _readout_stats(layer.readout_blocks(a, "in"), active)
        out = layer.step(a)
        e_out, ok_out = _readout_stats(layer.readout_blocks(out, "out"), active)
        acc = _mean(ok_out)
        if alive and acc == 1.0:
            survived += 1
        else:
            alive = False
        last = layer_idx == L - 1 or (stop_early and not alive)
        if layer_idx % every == 0 or last:
            rec["l"].append(layer_idx)
            rec["e"].append(_max(e_out))
            rec["b"].append(acc)
            rec["ei"].append(_max(e_in))
            rec["bi"].append(_mean(ok_in))
        if stop_early and not alive:
            break
        a = noisy(out)
    return ChainResult(
        layers=np.asarray(rec["l"], dtype=np.int64),
        max_error=np.asarray(rec["e"]),
        bit_accuracy=np.asarray(rec["b"]),
        input_error=np.asarray(rec["ei"]),
        input_bit_accuracy=np.asarray(rec["bi"]),
        depth_survived=survived,
        depth=L,
    )


@dataclass(frozen=True)
class ToleranceResult:
    r"""One layer's :math:`\varepsilon_{out}` against :math:`\varepsilon_{in}` (see :func:`noise_tolerance`).

    Attributes
    ----------
    noise_std : array ``(n,)``
        The input noise levels :math:`\sigma`.
    input_error, output_error : arrays ``(n,)``
        Max over inputs and features of :math:`|\hat x_k - x_k|` before / after the layer.
    bit_accuracy : array ``(n,)``
        Fraction of inputs with every output bit right.
    clean_input_error, clean_output_error : float
        The same errors without noise (crosstalk and code junk: the floor).
    threshold_std : float
        Smallest tested :math:`\sigma` at which some output bit failed (``nan`` if none did).
    threshold_error : float
        Largest ``input_error`` among the levels below ``threshold_std`` (the tolerated
        :math:`\varepsilon_{in}`; ``nan`` if the smallest level already failed).
    """

    noise_std: np.ndarray
    input_error: np.ndarray
    output_error: np.ndarray
    bit_accuracy: np.ndarray
    clean_input_error: float
    clean_output_error: float
    threshold_std: float
    threshold_error: float


def noise_tolerance(
    layer: CorrectionLayer,
    active: np.ndarray,
    noise_stds: np.ndarray | list[float],
    *,
    seed: object = 0,
) -> ToleranceResult:
    r"""Input-noise tolerance of one layer: :math:`\varepsilon_{out}` against :math:`\varepsilon_{in}`.

    For each :math:`\sigma` the clean input ``layer.encode(x)`` gets isotropic noise
    :math:`N(0,\sigma^2 I_d)` (one draw per input; the same standard-normal draw scaled by each
    :math:`\sigma`, so the curve is monotone in the noise, not re-sampled), and
    :math:`\varepsilon = \max |\hat x_k - x_k|` is measured on both sides of the layer.

    Parameters
    ----------
    layer : CorrectionLayer
    active : int array, shape ``(n_samples, s)``
    noise_stds : 1-D array of non-negative floats, increasing
    seed : int or Generator

    Returns
    -------
    ToleranceResult
    """
    stds = np.asarray(noise_stds, dtype=np.float64)
    if stds.ndim != 1 or stds.size == 0 or not np.all(np.isfinite(stds)) or np.any(stds < 0):
        raise ValueError(
            f"noise_stds must be a non-empty 1-D array of floats >= 0, got {noise_stds!r}"
        )
    if np.any(np.diff(stds) <= 0):
        raise ValueError("noise_stds must be strictly increasing")
    active = check_active(active, layer.n_features)
    rng = as_generator(seed)
    clean = layer.encode(active)
    xp = namespace(clean)
    active = asarray(active, xp)
    z = asarray(rng.standard_normal(tuple(clean.shape)), xp)
    e0_in, _ = _readout_stats(layer.readout_blocks(clean, "in"), active)
    e0_out, _ = _readout_stats(layer.readout_blocks(layer.step(clean), "out"), active)
    e_in, e_out, acc = [], [], []
    for sigma in stds:
        a = clean + float(sigma) * z
        ei, _ = _readout_stats(layer.readout_blocks(a, "in"), active)
        eo, ok = _readout_stats(layer.readout_blocks(layer.step(a), "out"), active)
        e_in.append(_max(ei))
        e_out.append(_max(eo))
        acc.append(_mean(ok))
    acc_arr = np.asarray(acc)
    failed = np.flatnonzero(acc_arr < 1.0)
    thr = float(stds[failed[0]]) if failed.size else float("nan")
    below = np.asarray(e_in)[: failed[0]] if failed.size else np.asarray(e_in)
    return ToleranceResult(
        noise_std=stds,
        input_error=np.asarray(e_in),
        output_error=np.asarray(e_out),
        bit_accuracy=acc_arr,
        clean_input_error=_max(e0_in),
        clean_output_error=_max(e0_out),
        threshold_std=thr,
        threshold_error=float(below.max()) if below.size else float("nan"),
    )


@dataclass(frozen=True)
class CapacityResult:
    """Largest ``n_features`` kept exact (:func:`capacity`) and every trial made.

    Attributes
    ----------
    m_max : int
        Largest m that passed (``m_min - 1`` if even ``m_min`` failed).
    trials : tuple of (m, passed)
        In the order run; with a non-monotone predicate only these points are certain.
    """

    m_max: int
    trials: tuple[tuple[int, bool], ...]


def capacity(
    make_layer: Callable[[int], CorrectionLayer | None],
    *,
    sparsity: int,
    depth: int,
    n_samples: int,
    noise_std: float = 0.0,
    seed: int = 0,
    m_min: int | None = None,
    m_cap: int = 10**7,
    resolution: float = 0.0,
) -> CapacityResult:
    r"""Largest :math:`m` for which ``make_layer(m)`` keeps every bit exact over ``depth`` layers.

    A trial at :math:`m` builds the layer (``None`` means the design does not fit the budget:
    fail), draws ``n_samples`` s-sparse inputs (seed ``seed``), and runs :func:`chain` with
    ``noise_std``; it passes when every output bit of every layer is right. The search
    (:func:`superposition.search.largest_passing`) doubles :math:`m` from ``m_min`` (default:
    ``sparsity``) until a failure or ``m_cap``, then bisects between the last pass and the first
    failure to relative ``resolution`` (0: the exact integer). It assumes failures are monotone
    in :math:`m`; ``trials`` lists every point actually tested.
    """
    s = check_int("sparsity", sparsity, low=1)
    check_int("depth", depth, low=1)
    k = check_int("n_samples", n_samples, low=1)
    check_real("noise_std", noise_std, low=0.0)
    s0 = check_int("seed", seed, low=0)
    lo = check_int("m_min", s if m_min is None else m_min, low=s)
    cap = check_int("m_cap", m_cap, low=lo)
    trials: list[tuple[int, bool]] = []

    def passes(m: int) -> bool:
        layer = make_layer(m)
        ok = False
        if layer is not None:
            act = sample_sparse(m, s, k, seed=s0)
            res = chain(layer, act, depth, noise_std=noise_std, seed=s0 + 1, stop_early=True)
            ok = res.depth_survived == depth
        trials.append((m, ok))
        return ok

    m_max = largest_passing(passes, lo, cap, resolution=resolution)
    return CapacityResult(m_max, tuple(trials))
