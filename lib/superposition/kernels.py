r"""Structured kernels for the hot paths, written once against the array API standard.

Every kernel takes arrays of any array-API namespace (NumPy, CuPy, ``array_api_strict``) and
returns arrays of the same namespace; the slow, obvious computation it replaces is kept as its
test oracle (``tests/test_kernels.py``).

:class:`Wiring`, :func:`sample_wiring`
    A 0/1 first layer (Bernoulli U-AND) stored as neuron lists per feature: ``int32`` indices
    and ``int64`` offsets, nothing else. At :math:`m = 10^6, d = 10^4, p = 0.01` that is
    0.4 GB where a dense ``W`` would take 80 GB.
:func:`wiring_preactivations`, :func:`gather_preactivations`
    Sparse-input forward :math:`h = Wx + b`: gather the columns of the active features,
    :math:`O(K s p d)` (wiring) or :math:`O(K s d)` (dense ``W``), never the dense
    :math:`O(K m d)` product.
:func:`pair_counts`
    A tile of :math:`|\Gamma(k, l)| = (W^\top W)_{kl}`, the neurons shared by two features, as a
    float32 matrix product of dense 0/1 blocks (exact: integer sums below :math:`2^{24}`).
:func:`sign_pair_errors`
    Exact errors of all :math:`\binom m2` outputs of the analytic sign-symmetric readout
    :math:`\hat y_{kl} = \text{scale}\sum_i \mathrm{sgn}(W_{ik}W_{il})\,a_i`. Per input only the
    firing neurons :math:`F = \{i : a_i > 0\}` contribute:
    :math:`\hat Y = \text{scale}\,B^\top \sigma_F` with :math:`\sigma = \mathrm{sgn}(W)` and
    :math:`B = \mathrm{diag}(a_F)\,\sigma_F`, computed in float32 row tiles (GEMM-shaped, about
    half the flops of the dense readout, memory :math:`O(\text{rows}\cdot m)`).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from math import comb
from types import ModuleType
from typing import Any

import numpy as np

from ._validate import (
    as_generator,
    check_active,
    check_choice,
    check_int,
    check_probability,
    check_real,
)
from .backend import asarray, bincount, is_numpy, name_of, namespace, ranges, to_numpy
from .errors import ErrorAccumulator, UAndErrors
from .memory import GiB, available_bytes, pair_table_bytes

F32_UNIT_ROUNDOFF = 2.0**-24
"""Unit roundoff :math:`u` of float32."""

PAIR_TABLE_SHARE = 0.75
r"""The share of the memory available (:func:`superposition.memory.available_bytes`) that the
:math:`m \times m` pair table of :func:`bernoulli_worst_errors` may take
(:func:`superposition.memory.pair_table_bytes`: 1.2 GB at :math:`m = 10^4`, 10 GiB at
:math:`3 \cdot 10^4`). Where it does not fit, or the available memory is unknown, pattern 0 is
walked neuron by neuron: the same numbers, more time. A check made once per call, not a
reservation: processes that start together see the same free memory, so a sweep of such sizes
runs one worker per table that fits."""

PAIR_TABLE_AFTER = 2
"""With ``route="auto"``, the neurons :func:`bernoulli_worst_errors` walks one by one on an
input before it builds that input's pair table (once the counts exist, the table costs about
as much as a few neurons of the walk, and most inputs stop before)."""

ROUTES = ("auto", "walk", "table")
"""How :func:`bernoulli_worst_errors` reads pattern 0 (every route gives the same worst error
per input, bit for bit)."""

WALK_SLICES = (0.0625, 0.1875, 0.5, 1.0)
r"""Where the walk of :func:`bernoulli_worst_errors` (NumPy, no ``acc``) pauses while it counts
a neuron's pairs: after the quiet neurons (:math:`a_j = 0`) below each of these fractions of
:math:`d` (rounded down to a multiple of 64), then all of them. At each pause only the pairs
whose output can still exceed the input's worst error so far go on (the mean over the neuron,
its other holders above that worst error and the quiet holders counted so far bounds it:
holders at or below it cannot lift a mean above it), and the next slice counts them alone
from packed 64-neuron words where :data:`BIT_COUNT_COST` says that is cheaper than counting
every pair. Measured at
:math:`m = 10^5`, :math:`\kappa = 2`, :math:`d = 46{,}341` (six walked neurons of one input,
floor 0.34, one thread, two searches on the machine): 7.6 s with these four slices, 8.3 to
9.3 s with (1/16, 1/4, 1), 8.3 s with (1/8, 1/2, 1), 11.9 s with (1/8, 1), against 15.4 to
23.1 s for the walk before (half the neurons counted for every pair, then the pairs left
recounted from a byte matrix); at :math:`\kappa = 1.41`, eight neurons: 4.2 s against 5.8 s."""

BIT_COUNT_COST = 0.2
"""What counting one pair over 64 neurons costs in the walk's slices (:data:`WALK_SLICES`:
two packed rows ANDed, their bits counted), in entries of the sparse count (NumPy, one
thread, m = 10^5: about 3 ns against 17 ns an entry, whose scatter into a table of every pair
misses the cache)."""

SPARSE_COUNT_COST = 350.0
r"""On NumPy, what one entry of the sparse count costs in multiply-adds of the float32 GEMM
(measured on two CPU cores, one thread each, for the ``scipy.sparse`` product
:math:`W_S^\top W_S`: about 4 ns against 0.012 ns; the sparse count that replaced it costs
less, so this errs towards the GEMM). Where the walk of :func:`bernoulli_worst_errors`
counts every pair of a neuron's support (with ``acc``), it counts them sparsely
(:math:`\sum_j |S_j\cap S|^2` entries: the pairs each neuron :math:`j` holds inside
:math:`S`, counted by ``np.bincount``) where that is cheaper than the dense GEMM
(:math:`d\,|S|^2` multiply-adds), which is where :math:`p` is small: the counts are the same
integers either way. Without ``acc`` the walk always counts sparsely, in slices
(:data:`WALK_SLICES`), and this prices its work for the pair table's pay-off."""

TRIU_CACHE_BYTES = 256 * 2**20
"""Bytes of triangle indices the kernels keep cached, in each of two caches: ``np.triu_indices``
of a support's size (least recently used first out), and the largest ``np.tril_indices`` asked
for (its prefixes serve every smaller size)."""


def sign_readout_tolerance(n_firing: int, scale: float, activation_sum: float) -> float:
    r"""Rigorous bound on :math:`|\hat y^{\,32}_{kl} - \hat y_{kl}|` for :func:`sign_pair_errors` in float32.

    Each output is :math:`\text{scale}` times a float32 sum of :math:`n = |F|` terms
    :math:`\pm\mathrm{fl}(a_i)`. Rounding :math:`a_i` to float32 costs at most :math:`u`
    relative per term, a float32 sum of :math:`n` terms (in any order, with or without FMA) at
    most :math:`\gamma_n = nu/(1-nu)` times the sum of their absolute values (Higham, *Accuracy
    and Stability of Numerical Algorithms*, §3.1), and the final scaling in float64 less than
    another :math:`u`, so

    .. math::
        |\hat y^{\,32}_{kl} - \hat y_{kl}| \le (n + 2)\,u\,(1 + 2nu)\;\text{scale}\sum_{i} a_i ,
        \qquad u = 2^{-24}.

    At :math:`d = 1000` with about half the neurons firing this is :math:`\approx 3\cdot
    10^{-5}\cdot \text{scale}\sum_i a_i`, i.e. about :math:`10^{-4}` on outputs of order 1:
    far below the U-AND errors being measured (order :math:`10^{-1}`), which is why float32 is
    accurate enough here. Integer activations (Rademacher weights) are summed exactly: there
    the float32 result equals the float64 one.
    """
    n = check_int("n_firing", n_firing, low=0)
    u = F32_UNIT_ROUNDOFF
    return (n + 2) * u * (1 + 2 * n * u) * abs(scale) * activation_sum


# ---------------------------------------------------------------- sparse wiring


@dataclass(frozen=True, eq=False)
class Wiring:
    r"""A 0/1 matrix :math:`W \in \{0,1\}^{d \times m}` stored as neuron lists per feature.

    The neurons wired to feature ``k`` are ``indices[indptr[k]:indptr[k + 1]]``, increasing
    (compressed sparse columns without values).

    Attributes
    ----------
    n_features : int
        :math:`m`.
    neurons : int
        :math:`d`.
    indptr : int64 array, shape ``(m + 1,)``
    indices : int32 array, shape ``(nnz,)``
        Arrays of one array-API namespace (:meth:`to` moves them).
    """

    n_features: int
    neurons: int
    indptr: Any
    indices: Any

    @property
    def nnz(self) -> int:
        """Number of ones."""
        return int(self.indices.shape[0])

    @property
    def nbytes(self) -> int:
        """Memory held by the two index arrays."""
        return int(self.indptr.shape[0]) * 8 + self.nnz * 4

    def to(self, xp: ModuleType) -> Wiring:
        """The same wiring with its arrays in namespace ``xp`` (cached; itself if already there)."""
        if namespace(self.indptr) is xp:
            return self
        cache = self.__dict__.setdefault("_to", {})
        key = name_of(xp)
        if key not in cache:
            cache[key] = Wiring(
                self.n_features,
                self.neurons,
                asarray(to_numpy(self.indptr), xp, dtype=xp.int64),
                asarray(to_numpy(self.indices), xp, dtype=xp.int32),
            )
        return cache[key]

    @property
    def host_indptr(self) -> np.ndarray:
        """``indptr`` as a NumPy array (cached): slice bounds for loops run on the host."""
        cache = self.__dict__.setdefault("_host", {})
        if "indptr" not in cache:
            cache["indptr"] = to_numpy(self.indptr).astype(np.int64, copy=False)
        return cache["indptr"]

    def supports(self) -> Wiring:
        """The transpose: the features wired to each neuron, as a :class:`Wiring` whose
        "features" are the neurons (``supports().indices[indptr[i]:indptr[i+1]]`` are the
        features of neuron ``i``, increasing). Computed once, in NumPy, then cached."""
        cache = self.__dict__.setdefault("_host", {})
        if "supports" not in cache:
            import scipy.sparse as sps

            # compressed columns to compressed rows: scipy's counting sort, which keeps the
            # features of each neuron increasing (the same arrays as a stable sort by neuron,
            # in O(nnz) time and without int64 temporaries)
            ptr = self.host_indptr
            idx = to_numpy(self.indices)
            ones = np.ones(idx.shape[0], dtype=np.int8)
            csr = sps.csc_array((ones, idx, ptr), shape=(self.neurons, self.n_features)).tocsr()
            dtype = np.int32 if self.n_features < 2**31 else np.int64
            cache["supports"] = Wiring(
                self.neurons,
                self.n_features,
                csr.indptr.astype(np.int64),
                csr.indices.astype(dtype, copy=False),
            )
        return cache["supports"].to(namespace(self.indptr))

    def columns(self, features: Any, dtype: Any = None) -> Any:
        """Columns ``features`` (int array ``(t,)``) as a dense 0/1 matrix ``(d, t)``."""
        xp = namespace(self.indptr)
        dtype = xp.float64 if dtype is None else dtype
        f = xp.astype(asarray(features, xp), xp.int64)
        starts = xp.take(self.indptr, f)
        lengths = xp.take(self.indptr, f + 1) - starts
        rows = xp.astype(xp.take(self.indices, ranges(starts, lengths)), xp.int64)
        cols = xp.repeat(xp.arange(f.shape[0], dtype=xp.int64), lengths)
        dense = bincount(rows * f.shape[0] + cols, self.neurons * f.shape[0])
        return xp.reshape(xp.astype(dense, dtype), (self.neurons, f.shape[0]))

    def transposed_csr(self) -> CSR:
        r""":math:`W^\top` ``(m, d)`` as a :class:`CSR` of ones: row ``k`` holds feature ``k``'s
        neurons (the wiring's own arrays, no copy)."""
        cache = self.__dict__.setdefault("_host", {})
        if "csr_t" not in cache:
            xp = namespace(self.indptr)
            ones = xp.ones(self.nnz, dtype=xp.float64)
            cache["csr_t"] = CSR(self.indptr, self.indices, ones, (self.n_features, self.neurons))
        return cache["csr_t"]

    def product(self, z: Any, bias: float = 0.0) -> Any:
        r""":math:`h = z W^\top + b`: every neuron sums the values ``z`` ``(K, m)`` of its features.

        Returns ``(K, d)`` in the namespace of ``z``: :func:`sparse_matmul` with
        :meth:`transposed_csr`, never the dense :math:`O(Kmd)` product.
        """
        if len(z.shape) != 2 or z.shape[1] != self.n_features:
            raise ValueError(
                f"z must have shape (n_samples, {self.n_features}), got {tuple(z.shape)}"
            )
        h = sparse_matmul(z, self.transposed_csr())
        return h + bias if bias else h

    @classmethod
    def from_sparse(cls, W: Any) -> Wiring:
        """From a scipy.sparse matrix of shape ``(d, m)`` whose stored entries are the ones."""
        import scipy.sparse as sps

        csc = sps.csc_array(W)
        csc.sort_indices()
        d, m = csc.shape
        return cls(m, d, csc.indptr.astype(np.int64), csc.indices.astype(np.int32))

    def toarray(self) -> Any:
        """The dense float64 ``(d, m)`` matrix, in the wiring's namespace (for small cases)."""
        xp = namespace(self.indptr, self.indices)
        lengths = self.indptr[1:] - self.indptr[:-1]
        cols = xp.repeat(xp.arange(self.n_features, dtype=xp.int64), lengths)
        flat = xp.astype(self.indices, xp.int64) * self.n_features + cols
        dense = bincount(flat, self.neurons * self.n_features)
        return xp.reshape(xp.astype(dense, xp.float64), (self.neurons, self.n_features))


def sample_wiring(
    n_features: int, neurons: int, p: float, *, seed: object = 0, block_nnz: int = 2**22
) -> Wiring:
    r"""Bernoulli(``p``) wiring :math:`W_{ik}` i.i.d., sampled sparsely in bounded memory.

    The ones of :math:`W` in column-major order are a Bernoulli process over :math:`md`
    positions; the gaps between successive ones are i.i.d. geometric with parameter :math:`p`
    (memoryless, so the process restarts exactly at every block of columns). Time
    :math:`O(pmd)`, memory :math:`4pmd` bytes plus a block of ``block_nnz`` draws.

    Parameters
    ----------
    n_features, neurons : int
        :math:`m, d \ge 1`.
    p : float in (0, 1]
    seed : int, SeedSequence or Generator
    block_nnz : int
        Expected ones per block of columns (memory of the temporaries, about 32 bytes each).

    Returns
    -------
    Wiring
        NumPy arrays (move them with :meth:`Wiring.to`).
    """
    m = check_int("n_features", n_features, low=1)
    d = check_int("neurons", neurons, low=1)
    p = check_probability("p", p)
    if p == 0:
        raise ValueError("p must be in (0, 1], got 0")
    block_nnz = check_int("block_nnz", block_nnz, low=1)
    if d >= 2**31:
        raise ValueError(f"neurons must be below 2**31 for int32 neuron indices, got {d}")
    rng = as_generator(seed)
    cols_per_block = max(1, min(m, int(block_nnz / (p * d))))
    indptr = np.zeros(m + 1, dtype=np.int64)
    total = p * m * d  # the ones go straight into an array of (almost surely) enough capacity
    indices = np.empty(int(total + 10 * np.sqrt(total) + 64), dtype=np.int32)
    nnz = 0
    for c0 in range(0, m, cols_per_block):
        c1 = min(c0 + cols_per_block, m)
        length = (c1 - c0) * d
        pos = np.zeros(0, dtype=np.int64)
        last = -1
        while last < length:  # draw gaps until the block is passed (one round, almost always)
            rest = p * (length - last - 1)
            more = last + np.cumsum(rng.geometric(p, size=int(rest + 6 * np.sqrt(rest) + 16)))
            pos = np.concatenate((pos, more)) if pos.size else more
            last = int(more[-1])
        pos = pos[: np.searchsorted(pos, length)]
        col = pos // d
        indptr[c0 + 1 : c1 + 1] = nnz + np.searchsorted(col, np.arange(1, c1 - c0 + 1))
        if nnz + pos.size > indices.size:  # more than 10 standard deviations above the mean
            indices = np.concatenate((indices, np.empty(pos.size, dtype=np.int32)))
        np.subtract(pos, col * d, out=pos)
        indices[nnz : nnz + pos.size] = pos
        nnz += pos.size
    indices = indices[:nnz]
    return Wiring(m, d, indptr, indices)


# ---------------------------------------------------------------- sparse-input forward


def _flat_active(active: Any, n_features: int) -> tuple[Any, int, int]:
    if len(active.shape) != 2:
        raise ValueError(f"active must have shape (n_samples, s), got {tuple(active.shape)}")
    k, s = active.shape
    xp = namespace(active)
    if k * s and (int(xp.min(active)) < 0 or int(xp.max(active)) >= n_features):
        raise ValueError(f"active feature indices must be in [0, {n_features - 1}]")
    return xp.reshape(xp.astype(active, xp.int64), (-1,)), k, s


def wiring_preactivations(wiring: Wiring, active: Any, bias: float = 0.0, dtype: Any = None) -> Any:
    r""":math:`h = Wx + b` for a batch of sparse inputs and a sparse 0/1 wiring.

    Gathers the neuron lists of the active features and counts them per input: time
    :math:`O(K s p d + K d)` (the second term writes the dense result).

    Parameters
    ----------
    wiring : Wiring
    active : int array, shape ``(K, s)``
        Active feature indices per input (distinct), same namespace as the wiring.
    bias : float
    dtype : floating dtype of the namespace, optional (default float64)

    Returns
    -------
    h : array, shape ``(K, d)``
    """
    xp = namespace(wiring.indptr, active)
    dtype = xp.float64 if dtype is None else dtype
    bias = check_real("bias", bias)
    flat, k, s = _flat_active(active, wiring.n_features)
    d = wiring.neurons
    starts = xp.take(wiring.indptr, flat)
    lengths = xp.take(wiring.indptr, flat + 1) - starts
    neurons = xp.astype(xp.take(wiring.indices, ranges(starts, lengths)), xp.int64)
    rows = xp.repeat(xp.arange(k * s, dtype=xp.int64) // max(s, 1), lengths)
    h = xp.reshape(xp.astype(bincount(rows * d + neurons, k * d), dtype), (k, d))
    if bias:
        h += bias
    return h


def wiring_activations(wiring: Wiring, active: Any, bias: float = -1.0, dtype: Any = None) -> Any:
    r""":math:`a = \mathrm{ReLU}(Wx + b)` for a sparse 0/1 wiring (:func:`wiring_preactivations`).

    The default bias :math:`-1` is the U-AND layer's for pairwise ANDs.
    """
    return relu(wiring_preactivations(wiring, active, bias, dtype))


def gather_preactivations(WT: Any, active: Any, bias: Any = 0.0) -> Any:
    r""":math:`h = Wx + b` for sparse inputs and a dense first layer given as :math:`W^\top`.

    :math:`h_k = \sum_{j \in A_k} W_{:, j} + b`: the :math:`s` active columns of :math:`W`
    (rows of ``WT``, contiguous) gathered and summed, :math:`O(K s d)` instead of the dense
    :math:`O(K m d)` product.

    Parameters
    ----------
    WT : array, shape ``(m, d)``
        :math:`W^\top`: the weights of each feature contiguous (pass ``W.T`` copied once).
    active : int array, shape ``(K, s)``
    bias : float, or array of shape ``(d,)`` in the namespace of ``WT`` (one per neuron)
        The sums start from it, then add the active columns in order.

    Returns
    -------
    h : array, shape ``(K, d)``, dtype of ``WT``.
    """
    xp = namespace(WT, active)
    if isinstance(bias, numbers.Real):
        bias = check_real("bias", bias)
    elif tuple(bias.shape) != (WT.shape[1],):
        raise ValueError(f"bias must be a number or have shape ({WT.shape[1]},), got {bias.shape}")
    _, k, s = _flat_active(active, WT.shape[0])
    h = xp.zeros((k, WT.shape[1]), dtype=WT.dtype) + bias
    for j in range(s):
        h += xp.take(WT, xp.astype(active[:, j], xp.int64), axis=0)
    return h


def relu(h: Any) -> Any:
    """Elementwise :math:`\\max(h, 0)` in the namespace of ``h``."""
    return namespace(h).maximum(h, 0.0)


# ---------------------------------------------------------------- pair counts


def dense_columns(wiring: Wiring, c0: int, c1: int, dtype: Any = None) -> Any:
    """Columns ``c0`` to ``c1 - 1`` of the wiring as a dense 0/1 matrix of shape ``(d, c1 - c0)``."""
    xp = namespace(wiring.indptr)
    dtype = xp.float32 if dtype is None else dtype
    ptr = wiring.host_indptr
    lo, hi = int(ptr[c0]), int(ptr[c1])
    if is_numpy(xp):  # set the ones in place: no scatter-add needed
        out = np.zeros((wiring.neurons, c1 - c0), dtype=dtype)
        out[wiring.indices[lo:hi], np.repeat(np.arange(c1 - c0), np.diff(ptr[c0 : c1 + 1]))] = 1
        return out
    lengths = wiring.indptr[c0 + 1 : c1 + 1] - wiring.indptr[c0:c1]
    cols = xp.repeat(xp.arange(c1 - c0, dtype=xp.int64), lengths)
    flat = xp.astype(wiring.indices[lo:hi], xp.int64) * (c1 - c0) + cols
    dense = bincount(flat, wiring.neurons * (c1 - c0))
    return xp.reshape(xp.astype(dense, dtype), (wiring.neurons, c1 - c0))


def pair_counts(wiring: Wiring, rows: tuple[int, int], cols: tuple[int, int]) -> Any:
    r"""A tile of :math:`|\Gamma(k, l)| = \#\{i : W_{ik} = W_{il} = 1\} = (W^\top W)_{kl}`.

    Parameters
    ----------
    wiring : Wiring
    rows, cols : (start, stop)
        Feature ranges :math:`k \in [r_0, r_1)`, :math:`l \in [c_0, c_1)`.

    Returns
    -------
    float32 array, shape ``(r1 - r0, c1 - c0)``
        Integer counts, exact (float32 products of 0/1 blocks summed over :math:`d < 2^{24}`
        neurons). One GEMM of :math:`2 d\,(r_1-r_0)(c_1-c_0)` flops.
    """
    m = wiring.n_features
    r0, r1 = (check_int("rows[0]", rows[0], low=0, high=m), check_int("rows[1]", rows[1], high=m))
    c0, c1 = (check_int("cols[0]", cols[0], low=0, high=m), check_int("cols[1]", cols[1], high=m))
    if r1 < r0 or c1 < c0:
        raise ValueError(
            f"rows and cols must be (start, stop) with start <= stop, got {rows}, {cols}"
        )
    if wiring.neurons >= 2**24:
        raise ValueError(
            f"pair_counts is exact in float32 only for neurons < 2**24, got {wiring.neurons}"
        )
    xp = namespace(wiring.indptr)
    left = dense_columns(wiring, r0, r1)
    right = left if (c0, c1) == (r0, r1) else dense_columns(wiring, c0, c1)
    return xp.matrix_transpose(left) @ right


# ---------------------------------------------------------------- sign-symmetric readout errors


def sign_tile_rows(n_features: int) -> int:
    """Default rows per tile of :func:`sign_pair_errors`: 512, fewer when a tile would pass 32 MB."""
    m = check_int("n_features", n_features, low=1)
    return max(1, min(m, 512, 2**23 // m))


def sign_pair_errors(
    signs: Any,
    activations: Any,
    active: Any,
    scale: float,
    *,
    dtype: Any = None,
    rows: int | None = None,
) -> Any:
    r"""Exact errors of all :math:`\binom m2` outputs of the sign readout, GEMM-shaped.

    :math:`\hat y_{kl}(x) = \text{scale}\sum_i \sigma_{ik}\sigma_{il} a_i(x)` with
    :math:`\sigma = \mathrm{sgn}(W)`, target :math:`x_k x_l`. With :math:`F` the firing
    neurons of input :math:`x` and :math:`B = \mathrm{diag}(a_F)\,\sigma_F` (shape
    :math:`|F| \times m`), :math:`\hat Y = \text{scale}\,B^\top \sigma_F`. Pairs without an
    active feature (pattern 0, almost all) come from row tiles of the upper triangle of
    :math:`B_0^\top \sigma_{F,0}` (active columns zeroed), reduced in bulk; pairs with an active
    feature come from the :math:`s \times m` product :math:`\sigma_{F,A}^\top B`. Cost per input
    about :math:`|F|\,m^2` flops (the dense readout costs :math:`d\,m^2`; :math:`|F| \approx
    d/2` for bias 0, and only the upper triangle is computed); memory
    :math:`O(\text{rows}\cdot m)`.

    Parameters
    ----------
    signs : array, shape ``(d, m)``
        :math:`\sigma`, entries :math:`\pm 1` (0 allowed), in the computation dtype
        (float32 for speed; see :func:`sign_readout_tolerance`).
    activations : array, shape ``(K, d)``
        :math:`a(x) \ge 0`, any floating dtype.
    active : int array, shape ``(K, s)``
        Active features of each input (distinct).
    scale : float
        :math:`1/(d\,c_D(s)) > 0`.
    dtype : floating dtype, optional
        Defaults to the dtype of ``signs``.
    rows : int, optional
        Rows per tile (default :func:`sign_tile_rows`).

    Returns
    -------
    superposition.uand.UAndErrors
        Without histogram. Each tile row is reduced in the computation dtype (matrix-vector
        products, one pass over the tile per statistic) and the row sums are added in float64.
        In float32 this adds at most :math:`\gamma_{m+1} = (m+1)u/(1-(m+1)u)` times the sum of
        the absolute errors to the sums, and that fraction of itself to the sum of squares
        (Higham §3.1), on top of the per-output bound of :func:`sign_readout_tolerance`.
    """
    xp = namespace(signs, activations, active)
    dtype = signs.dtype if dtype is None else dtype
    d, m = signs.shape
    scale = check_real("scale", scale, low=0.0)
    if activations.shape[1] != d or activations.shape[0] != active.shape[0]:
        raise ValueError(
            f"activations must have shape (n_samples, neurons) = ({active.shape[0]}, {d}), "
            f"got {tuple(activations.shape)}"
        )
    _flat_active(active, m)
    k_all, s = active.shape
    rows = check_int("rows", rows, low=1) if rows is not None else sign_tile_rows(m)
    rows = max(1, min(rows, m))
    sig = xp.astype(signs, dtype)
    n = 2
    count = np.array([comb(m - s, 2), s * (m - s), comb(s, 2)], dtype=np.int64) * k_all
    nonzero = np.zeros(n + 1)
    tot, tot_abs, tot_sq, top = (np.zeros(n + 1) for _ in range(4))
    input_max = np.zeros(k_all)
    upper = xp.arange(rows)[None, :] > xp.arange(rows)[:, None]  # strict upper triangle
    ones = xp.ones(m, dtype=dtype)
    for t in range(k_all):
        a = xp.astype(activations[t, :], xp.float64)
        fire = xp.nonzero(a > 0)[0]
        aF = xp.astype(xp.take(a, fire), dtype)
        S = xp.take(sig, fire, axis=0)  # (|F|, m)
        act = xp.astype(active[t, :], xp.int64)
        keep = xp.ones(m, dtype=dtype)
        if s:
            mask = xp.sum(xp.astype(xp.arange(m)[:, None] == act[None, :], dtype), axis=1)
            keep = keep - mask
        S0 = S * keep[None, :]
        # a transposed view: matmul reads it as it is (no copy)
        B0T = xp.matrix_transpose(S0 * aF[:, None])  # (m, |F|)
        worst = 0.0
        sums = np.zeros(3)  # unscaled sum, sum of |.|, sum of squares of this input's pattern 0
        for k0 in range(0, m - 1, rows):
            k1 = min(k0 + rows, m)
            r = k1 - k0
            Y = B0T[k0:k1, :] @ S0[:, k0:]  # (r, m - k0), unscaled
            # pairs k >= l of the diagonal block are set to 0, which no statistic below counts
            Y[:, :r] = xp.where(upper[:r, :r], Y[:, :r], xp.zeros_like(Y[:, :r]))
            ab = xp.abs(Y)
            # one pass each: row sums as matrix-vector products, rows added in float64
            for j, row_sums in enumerate((Y @ ones[k0:], ab @ ones[k0:], xp.vecdot(ab, ab))):
                sums[j] += float(xp.sum(xp.astype(row_sums, xp.float64)))
            worst = max(worst, scale * float(xp.max(ab)))
            nonzero[0] += int(xp.count_nonzero(ab > 0))
        tot[0] += scale * sums[0]
        tot_abs[0] += scale * sums[1]
        tot_sq[0] += scale**2 * sums[2]
        top[0] = max(top[0], worst)
        if s:
            BA = xp.take(S, act, axis=1) * aF[:, None]  # (|F|, s)
            YA = xp.matrix_transpose(BA) @ S  # (s, m), unscaled
            YA = xp.astype(YA, xp.float64) * scale
            inactive = xp.nonzero(keep > 0)[0]
            y1 = xp.take(YA, inactive, axis=1)  # pattern 1: one active feature, target 0
            col_rank = xp.sum(xp.astype(act[None, :] < act[:, None], xp.int64), axis=1)
            y2 = xp.take(YA, act, axis=1)  # pattern 2 where the column's rank exceeds the row's
            pair = col_rank[None, :] > col_rank[:, None]
            e2 = y2[pair] - 1.0
            for j, e in ((1, xp.reshape(y1, (-1,))), (2, e2)):
                if e.shape[0] == 0:
                    continue
                ab = xp.abs(e)
                tot[j] += float(xp.sum(e))
                tot_abs[j] += float(xp.sum(ab))
                tot_sq[j] += float(xp.sum(e * e))
                mx = float(xp.max(ab))
                top[j] = max(top[j], mx)
                worst = max(worst, mx)
                nonzero[j] += int(xp.count_nonzero(e + float(j == 2)))
        input_max[t] = worst
    return UAndErrors(
        n,
        m,
        count,
        np.round(nonzero).astype(np.int64),
        tot,
        tot_abs,
        tot_sq,
        top,
        input_max,
        backend=name_of(xp),
    )


# ---------------------------------------------------------------- Bernoulli mean readout errors


def bernoulli_pair_errors(
    wiring: Wiring,
    activations: Any,
    active: Any,
    acc: ErrorAccumulator,
    *,
    tile_bytes: int = 2**27,
    tile_entries: int | None = None,
    progress: bool | None = False,
) -> None:
    r"""Exact errors of all :math:`\binom m2` outputs of the Bernoulli mean readout, added to ``acc``.

    :math:`\hat y_{kl} = \frac{1}{|\Gamma(k,l)|}\sum_{i\in\Gamma(k,l)} a_i` (0 when
    :math:`\Gamma(k,l) = \{i : W_{ik} = W_{il} = 1\}` is empty) for any activations
    :math:`a \ge 0` (basis-aligned, or read from superposition). Only an output whose
    :math:`\Gamma` holds a firing neuron (:math:`a_i > 0`) can be nonzero:

    * pattern 2 (both features active): the mean of :math:`a` over the intersection of the two
      neuron lists;
    * pattern 1 (one active feature :math:`u`): one row of outputs, from the supports of the
      neurons wired to :math:`u` (counts and activation sums by scatter-add);
    * pattern 0 (neither active): a firing neuron :math:`i` reaches the pairs inside
      :math:`S_i \setminus A` (its support minus the active features). A pair reached by one
      firing neuron reads :math:`a_i/|\Gamma(k,l)|`, so each such neuron needs only the
      histogram of the integer :math:`|\Gamma(k,l)|` over its pairs, gathered from row tiles
      of the Gram matrix :math:`W^\top W` (float32 products of 0/1 blocks: exact integers
      below :math:`2^{24}`). Pairs reached by several firing neurons (inside the overlap of
      two supports: few) are corrected exactly: their single-neuron values enter with weight
      :math:`-1` and the true :math:`\sum_i a_i/|\Gamma|` with weight :math:`+1`.

    Time :math:`O(m^2 d)` for the Gram tiles plus :math:`O(K f (pm)^2)` with :math:`f` firing
    neurons per input; nothing of size :math:`m^2` is held.

    Parameters
    ----------
    wiring : Wiring
        :math:`W`, in the namespace of ``activations``.
    activations : float array, shape ``(K, d)``
    active : int array, shape ``(K, s)``
        Active features of each input (distinct, sorted), any namespace.
    acc : superposition.errors.ErrorAccumulator
        Arity 2; receives the statistics of every output (its pattern counts are not touched).
    tile_bytes : int
        Memory budget of a Gram tile and of the supports held at once.
    tile_entries : int, optional
        Gram entries per row tile (default: the byte budget, at most :math:`m/8` rows).
    progress : bool or None
        tqdm bar over the inputs.
    """
    from tqdm import tqdm

    xp = namespace(activations)
    w = wiring.to(xp)
    sup_w = w.supports()
    m = w.n_features
    act_host = to_numpy(active).astype(np.int64)
    k_all, s = act_host.shape
    cptr, sptr = w.host_indptr, sup_w.host_indptr
    count_dtype, count_np = _count_dtype(w, xp)
    per_tile = tile_entries or tile_bytes // np.dtype(count_np).itemsize
    rows = max(1, min(m, per_tile // max(m, 1)))
    if tile_entries is None:  # a tile of r rows also computes r²/2 lower-triangle entries
        rows = min(rows, -(-m // 8))
    done = 0
    bar = tqdm(total=k_all, disable=None if progress is None else not progress, unit="input")
    while done < k_all:  # groups of inputs whose firing neurons' supports fit the budget
        insts: list[tuple[int, float, Any, int, int]] = []  # (input, a_i, support \ A, lo, hi)
        multi: list[tuple[int, list[Any], tuple[str, Any], Any]] = []
        budget = tile_bytes
        k0 = done
        while done < k_all and budget > 0:
            t = done
            A = act_host[t]
            a = xp.astype(activations[t, :], xp.float64)
            nbrs = [w.indices[int(cptr[k]) : int(cptr[k + 1])] for k in A]
            for u in range(s):  # pattern 2
                for v in range(u + 1, s):
                    gam = nbrs[u][_contains(nbrs[v], nbrs[u])]
                    y = (
                        float(xp.mean(xp.take(a, xp.astype(gam, xp.int64))))
                        if gam.shape[0]
                        else 0.0
                    )
                    acc.add(
                        2, xp.asarray([y - 1.0], dtype=xp.float64), nonzero=float(y != 0), inputs=t
                    )
            keep_host = np.ones(m, dtype=bool)
            keep_host[A] = False
            keep = asarray(keep_host, xp)
            inactive = asarray(np.flatnonzero(keep_host), xp)
            for u in range(s):  # pattern 1: one row of outputs per active feature
                own = xp.astype(nbrs[u], xp.int64)
                starts = xp.take(sup_w.indptr, own)
                lengths = xp.take(sup_w.indptr, own + 1) - starts
                cols = xp.astype(xp.take(sup_w.indices, ranges(starts, lengths)), xp.int64)
                owner_a = xp.repeat(xp.take(a, own), lengths)
                gamma = bincount(cols, m)
                num = bincount(cols, m, weights=owner_a)
                y = xp.where(
                    gamma > 0, num / xp.astype(xp.where(gamma > 0, gamma, 1), xp.float64), 0.0
                )
                y = xp.take(y, inactive)
                acc.add(1, y, nonzero=float(xp.count_nonzero(y)), inputs=t)
            firing = to_numpy(xp.nonzero(a > 0)[0])  # pattern 0
            a_host = to_numpy(xp.take(a, asarray(firing, xp))) if firing.size else np.zeros(0)
            supports = []
            for i, a_i in zip(firing, a_host, strict=True):
                sup = sup_w.indices[int(sptr[i]) : int(sptr[i + 1])]
                sup = sup[xp.take(keep, xp.astype(sup, xp.int64))]
                supports.append(sup)
                if sup.shape[0] >= 2:
                    insts.append(
                        (t, float(a_i), xp.astype(sup, xp.int64), int(sup[0]), int(sup[-2]))
                    )
                budget -= sup.shape[0] * 4
            plan = _overlap_plan(supports, m, xp)
            if plan is not None:
                multi.append((t, supports, plan, asarray(a_host, xp)))
                budget -= _plan_nbytes(plan)
            done += 1
        _pattern0(w, insts, multi, acc, rows, count_dtype, xp)
        bar.update(done - k0)
    bar.close()


def _count_dtype(w: Wiring, xp: ModuleType) -> tuple[Any, Any]:
    """Smallest unsigned integer type holding every pair count ``|Γ(k, l)| <= max column degree``."""
    top = int(np.diff(w.host_indptr).max(initial=0))
    if top < 2**8:
        return xp.uint8, np.uint8
    if top < 2**16:
        return xp.uint16, np.uint16
    return xp.uint32, np.uint32


def _contains(sorted_set: Any, x: Any) -> Any:
    """Boolean mask: which entries of ``x`` are in the sorted array ``sorted_set``."""
    xp = namespace(x)
    if sorted_set.shape[0] == 0:
        return xp.zeros(x.shape, dtype=xp.bool)
    if is_numpy(xp):  # called once per tile and feature: the wrappers' checks would dominate
        pos = np.searchsorted(sorted_set, x)
        np.minimum(pos, sorted_set.shape[0] - 1, out=pos)
        return sorted_set[pos] == x
    pos = xp.clip(xp.searchsorted(sorted_set, x), max=sorted_set.shape[0] - 1)
    return xp.take(sorted_set, pos) == x


def _overlap_plan(supports: list[Any], m: int, xp: ModuleType) -> tuple[str, Any] | None:
    """Where the pairs inside at least two ``supports`` lie, for each Gram row tile to read.

    Few supports: the codes ``k * m + l`` (``k < l``) of the pairs inside their pairwise
    intersections, distinct and sorted (``("few", codes)``: a tile's pairs are one slice); many:
    the features in at least two supports and the 0/1 membership of each
    (``("many", (shared, member))``). ``None`` when no pair is shared.
    """
    f = len(supports)
    if f * (f - 1) // 2 <= 512:
        codes = []
        for u in range(f):
            for v in range(u + 1, f):
                both = xp.astype(supports[u][_contains(supports[v], supports[u])], xp.int64)
                if both.shape[0] >= 2:
                    r, c = _triu(int(both.shape[0]), xp)
                    codes.append(xp.take(both, r) * m + xp.take(both, c))
        if not codes:
            return None
        return "few", _distinct(xp.concat(codes))
    sizes = [int(sup.shape[0]) for sup in supports]
    flat = xp.concat([xp.astype(sup, xp.int64) for sup in supports])
    owner = xp.repeat(xp.arange(f, dtype=xp.int64), asarray(np.array(sizes, np.int64), xp))
    member = xp.reshape(bincount(owner * m + flat, f * m), (f, m)) > 0
    shared = xp.nonzero(xp.sum(xp.astype(member, xp.int64), axis=0) >= 2)[0]
    if shared.shape[0] < 2:
        return None
    return "many", (shared, xp.astype(xp.take(member, shared, axis=1), xp.float32))


def _plan_nbytes(plan: tuple[str, Any]) -> int:
    kind, data = plan
    if kind == "few":
        return int(data.shape[0]) * 8
    return int(data[0].shape[0]) * 8 + int(data[1].shape[0] * data[1].shape[1]) * 4


def _triu(n: int, xp: ModuleType) -> tuple[Any, Any]:
    """``np.triu_indices(n, 1)`` as int64 arrays of ``xp``.

    Cached per namespace, least recently used first out, up to :data:`TRIU_CACHE_BYTES`
    (a support of a few thousand features makes a triangle of tens of MB).
    """
    key = (n, name_of(xp))
    hit = _TRIU_CACHE.get(key)
    if hit is not None:
        _TRIU_CACHE[key] = _TRIU_CACHE.pop(key)  # most recently used last
        return hit
    r, c = np.triu_indices(n, 1)
    hit = asarray(r.astype(np.int64), xp), asarray(c.astype(np.int64), xp)
    _TRIU_CACHE[key] = hit
    _TRIU_BYTES[0] += r.shape[0] * 16
    while _TRIU_BYTES[0] > TRIU_CACHE_BYTES and len(_TRIU_CACHE) > 1:
        old = _TRIU_CACHE.pop(next(iter(_TRIU_CACHE)))
        _TRIU_BYTES[0] -= int(old[0].shape[0]) * 16
    return hit


_TRIU_CACHE: dict[tuple[int, str], tuple[Any, Any]] = {}
_TRIU_BYTES = [0]


def _lower_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs ``x < y`` of ``range(n)`` as ``(y, x)``, int64 NumPy, ordered by ``y`` then ``x``
    (``np.tril_indices(n, -1)``), for uses that do not depend on the order (:func:`_triu` gives
    the order of the triangle codes).

    The pairs of ``range(j)`` are the first ``j (j - 1) / 2`` of ``range(n)``'s, so one array, the
    largest asked for, serves every smaller size: kept while within :data:`TRIU_CACHE_BYTES`.
    """
    k = n * (n - 1) // 2
    if _LOWER[0].shape[0] >= k:
        return _LOWER[0][:k], _LOWER[1][:k]
    y, x = (r.astype(np.int64) for r in np.tril_indices(n, -1))
    if 16 * k <= TRIU_CACHE_BYTES:
        _LOWER[:] = [y, x]
    return y, x


_LOWER = [np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)]


def _shared_pairs(
    plan: tuple[str, Any], m: int, k0: int, k1: int, xp: ModuleType
) -> tuple[Any, Any]:
    """Pairs ``k < l`` with ``k0 <= k < k1`` inside at least two supports, sorted."""
    kind, data = plan
    empty = xp.zeros(0, dtype=xp.int64)
    if kind == "few":
        bounds = xp.asarray([k0 * m, k1 * m], dtype=xp.int64)
        lo, hi = (int(v) for v in xp.searchsorted(data, bounds))
        return data[lo:hi] // m, data[lo:hi] % m
    shared, mq = data
    q0, q1 = (int(v) for v in xp.searchsorted(shared, xp.asarray([k0, k1], dtype=shared.dtype)))
    mk, ml = [empty], [empty]
    step = max(1, 2**22 // max(shared.shape[0] - q0, 1))
    for a0 in range(q0, q1, step):
        a1 = min(a0 + step, q1)
        co = xp.matrix_transpose(mq[:, a0:a1]) @ mq[:, a0:]
        r, c = xp.nonzero(co >= 2)
        up = c > r
        mk.append(xp.take(shared, a0 + r[up]))
        ml.append(xp.take(shared, a0 + c[up]))
    return xp.concat(mk), xp.concat(ml)


def _pattern0(
    w: Wiring,
    insts: list[tuple[int, float, Any, int, int]],
    multi: list[tuple[int, list[Any], tuple[str, Any], Any]],
    acc: ErrorAccumulator,
    rows: int,
    count_dtype: Any,
    xp: ModuleType,
) -> None:
    """Pattern-0 statistics from row tiles ``[k0, k1)`` of the Gram matrix ``|Γ(k, l)| = (WᵀW)_kl``."""
    if not insts:
        return
    m = w.n_features
    lo = np.array([v[3] for v in insts])
    hi = np.array([v[4] for v in insts])  # a row feature needs a later column
    for k0 in range(0, m, rows):
        k1 = min(k0 + rows, m)
        live = np.flatnonzero((lo < k1) & (hi >= k0))
        if live.size == 0:
            continue
        r = k1 - k0
        left = dense_columns(w, k0, k1)
        gram = xp.empty((r, m - k0), dtype=count_dtype)
        step = max(1, 2**22 // r)  # float32 blocks of 16 MB
        bounds = xp.asarray([k0, k1], dtype=xp.int64)
        for c0 in range(k0, m, step):
            c1 = min(c0 + step, m)
            right = left if (c0, c1) == (k0, k1) else dense_columns(w, c0, c1)
            part = xp.matrix_transpose(left) @ right
            # exact integers: NumPy casts them on assignment, other namespaces explicitly
            gram[:, c0 - k0 : c1 - k0] = part if is_numpy(xp) else xp.astype(part, count_dtype)
        if is_numpy(xp):
            np.fill_diagonal(gram[:, :r], 0)  # |N(k)| is not a pair
        else:
            eye = xp.arange(r)[:, None] == xp.arange(r)[None, :]
            gram[:, :r] = xp.where(eye, xp.zeros_like(gram[:, :r]), gram[:, :r])
        flat_gram = xp.reshape(gram, (-1,))
        top = int(xp.max(gram))
        for q in live:
            t, a_i, s64, _, _ = insts[q]
            u0, u1 = (int(v) for v in xp.searchsorted(s64, bounds))
            nr = u1 - u0
            if nr == 0 or u0 + 1 >= s64.shape[0]:
                continue
            flat = (s64[u0:u1, None] - k0) * (m - k0) + (s64[None, u0:] - k0)
            block = xp.reshape(xp.take(flat_gram, xp.reshape(flat, (-1,))), flat.shape)
            # the leading (nr, nr) square is symmetric with a zero diagonal: halve its counts
            hist = bincount(xp.reshape(block, (-1,)), top + 1)
            hist = hist - bincount(xp.reshape(block[:, :nr], (-1,)), top + 1) // 2
            g = xp.nonzero(hist[1:])[0] + 1
            wts = xp.astype(xp.take(hist, g), xp.float64)
            acc.add(
                0, a_i / xp.astype(g, xp.float64), weight=wts, nonzero=float(xp.sum(wts)), inputs=t
            )
        for t, supports, plan, aF in multi:
            mk, ml = _shared_pairs(plan, m, k0, k1, xp)
            if mk.shape[0] == 0:
                continue
            gam = xp.astype(xp.take(flat_gram, (mk - k0) * (m - k0) + (ml - k0)), xp.float64)
            cov = xp.stack(
                [_contains(sup, mk) & _contains(sup, ml) for sup in supports], axis=0
            )  # (firing neurons, pairs)
            true = (aF @ xp.astype(cov, xp.float64)) / gam  # the pair's output, counted once
            single = (aF[:, None] / gam[None, :])[cov]  # what the single-neuron pass counted
            vals = xp.concat([true, single])
            wts = xp.concat(
                [
                    xp.ones(true.shape[0], dtype=xp.float64),
                    -xp.ones(single.shape[0], dtype=xp.float64),
                ]
            )
            acc.add(0, vals, weight=wts, nonzero=float(xp.sum(wts)), inputs=t)


# ---------------------------------------------------------------- Bernoulli worst errors, no Gram


@dataclass(frozen=True, eq=False)
class WorstErrors:
    r"""Per-input worst errors of a Bernoulli U-AND layer, from :func:`bernoulli_worst_errors`.

    Attributes
    ----------
    per_input : float64 array, shape ``(K', 3)``
        Column ``j``: the worst :math:`|\hat y_{kl} - x_kx_l|` over the outputs with ``j`` of
        their two features active, for the ``K'`` inputs evaluated (``K' < n_samples`` when an
        input exceeded ``stop_above`` and the batch stopped there). Columns 1 and 2 are exact.
        Column 0 is exact with statistics; without them it is exact where it exceeds the other
        two columns and a lower bound of the pattern's worst below that, and with ``stop_above``
        a lower bound (see :func:`bernoulli_worst_errors`).
    firing : int64 array, shape ``(K',)``
        Firing neurons (:math:`a_i > 0`) of each input.
    processed : int64 array, shape ``(K',)``
        Firing neurons whose support pairs were counted (pattern 0) for each input.
    n_samples : int
        Inputs given.
    backend : str
        The namespace that computed the errors.
    """

    per_input: np.ndarray
    firing: np.ndarray
    processed: np.ndarray
    n_samples: int
    backend: str = "numpy"

    @property
    def max_abs_error(self) -> float:
        """Worst error over every output of the inputs evaluated."""
        return float(self.per_input.max(initial=0.0))

    @property
    def input_max_abs(self) -> np.ndarray:
        """Worst error of each input evaluated, shape ``(K',)``."""
        return self.per_input.max(axis=1, initial=0.0)

    @property
    def stopped(self) -> bool:
        """Whether the batch stopped early (an input exceeded ``stop_above``)."""
        return int(self.per_input.shape[0]) < self.n_samples


def bernoulli_worst_errors(
    wiring: Wiring,
    activations: Any,
    active: Any,
    *,
    stop_above: float | None = None,
    acc: ErrorAccumulator | None = None,
    route: str = "auto",
    on_input: Callable[[int, WorstErrors], None] | None = None,
) -> WorstErrors:
    r"""Exact worst error of every :math:`\binom m2` output of a Bernoulli layer, without the Gram matrix.

    The mean readout :math:`\hat y_{kl} = \frac1{|\Gamma(k,l)|}\sum_{i\in\Gamma(k,l)} a_i`
    (0 when :math:`\Gamma(k,l) = \{i: W_{ik} = W_{il} = 1\}` is empty) for any activations
    :math:`a \ge 0` (basis-aligned, or read from superposition, where neurons fire on noise
    alone). Only an output whose :math:`\Gamma` holds a firing neuron can be nonzero:

    * pattern 2 (both features active): the mean over the intersection of two neuron lists;
    * pattern 1 (one active feature :math:`u`): a row of outputs from the supports of the
      neurons wired to :math:`u`, counted by scatter-add;
    * pattern 0 (neither active): an output is a mean over its firing neurons and zeros, so it
      is at most the largest activation among them. Firing neurons are taken in decreasing
      order of :math:`a_i`; for neuron :math:`i` only the pairs inside its support
      :math:`S_i` minus the active features are reached, and their :math:`|\Gamma(k,l)|` come
      from one GEMM of the 0/1 columns of :math:`S_i` (:math:`2d\,|S_i|^2 \approx 2d\,(pm)^2`
      flops, exact integers in float32; nothing of size :math:`m^2`). A pair held by :math:`i`
      alone among the firing neurons reads :math:`a_i/|\Gamma|`; a pair also held by another
      firing neuron (found from the pair codes of the firing neurons only) is summed exactly.
      The walk stops at the first neuron with :math:`a_i` at most the worst error found so
      far (every pair not yet reached reads at most that :math:`a_i`): the input's worst error
      is then exact. A neuron's pattern-0 outputs count only where they exceed the input's
      worst error so far, so the pattern-0 column is exact where pattern 0 is the input's
      worst, and otherwise a lower bound (0 where it never led) — the same by every route.

    Where many neurons must be walked, one input's pattern-0 outputs are cheaper as a table:
    on NumPy, where the :math:`m \times m` table fits in :data:`PAIR_TABLE_SHARE` of the memory
    then available, the numerators of every pair are accumulated over the firing neurons in
    increasing order (``np.add.at``, the same additions in the same order) and divided by the
    counts :math:`|\Gamma(k,l)|` of the whole wiring (float32 ``ssyrk``, cached on the wiring,
    built only once the walk's work over the batch would exceed theirs); the walk then reads
    each neuron's pairs from the table. The walk, its stopping rule and every reported number
    are unchanged.

    A neuron's pair counts come from the dense GEMM above or, on NumPy where it is cheaper
    (small :math:`p`, :data:`SPARSE_COUNT_COST`), from the pairs each neuron holds inside
    :math:`S` (their codes counted by ``np.bincount``): the same integers. Without ``acc``, on
    NumPy, they are always counted sparsely, slice by slice (:data:`WALK_SLICES`), and after
    each slice only the pairs it cannot yet rule out (their output, bounded by the mean over
    the holders known so far, above the worst error so far) go on, counted alone from packed
    64-neuron words where that is cheaper: the same outputs where they count.

    Every numerator is summed left to right over :math:`\Gamma` in increasing neuron order,
    then divided once, so on NumPy each output is bit for bit the obvious dense loop's
    (``tests/test_kernels.py``), by either route. Other namespaces differ only in the order of
    additions of the pattern-1 scatter-add (:func:`superposition.backend.bincount`).

    Parameters
    ----------
    wiring : Wiring
        :math:`W`, shape ``(d, m)``.
    activations : float array, shape ``(K, d)``
        :math:`a \ge 0`.
    active : int array, shape ``(K, s)``
        Active features of each input (distinct), any namespace.
    stop_above : float, optional
        Decide "worst error :math:`\le` ``stop_above``" only: neurons with
        :math:`a_i \le` ``stop_above`` are skipped (their pairs cannot exceed it), an input's
        walk stops at the first neuron that lifts its worst error above ``stop_above``, and the
        batch stops after that input. Every value reported is then a lower bound of its
        column's worst (the error of an output that exists), and the decision is exact: an
        input reported above ``stop_above`` exceeds it, one reported at or below it does not.
    acc : superposition.errors.ErrorAccumulator, optional
        Full statistics: every firing neuron is processed (in increasing index; a pair held by
        several is counted at the first) and every nonzero output is added to ``acc`` (its
        pattern counts are not touched: :meth:`~superposition.errors.ErrorAccumulator.add_counts`).
        The per-pattern maxima are then all exact. Costs :math:`|F|` neurons per input instead
        of the few above the worst error. Not with ``stop_above``.
    route : {"auto", "walk", "table"}
        Pattern 0 neuron by neuron with every pair counted (``"walk"``), from the pair table
        (``"table"``: NumPy, not with ``acc``, the table within :data:`PAIR_TABLE_SHARE` of the
        available memory), or (``"auto"``) the table for an input once the walk has taken
        :data:`PAIR_TABLE_AFTER` neurons, where the table is allowed and its pair counts exist
        or pay for themselves over the batch (the walk's work so far, projected over the
        inputs, reaches theirs), else the walk. The walk and the table give the same numbers.
    on_input : callable, optional
        Called as ``on_input(t, row)`` once input ``t`` of the batch is finished, ``row`` its
        own :class:`WorstErrors` (one input): so a caller can keep each input as it finishes (a
        width trial's checkpoint) and hand the rest to a later call, with the same numbers.

    Returns
    -------
    WorstErrors
    """
    xp = namespace(activations)
    w = wiring.to(xp)
    sup_w = w.supports()
    m, d = w.n_features, w.neurons
    if len(activations.shape) != 2 or activations.shape[1] != d:
        raise ValueError(
            f"activations must have shape (n_samples, neurons={d}), got {tuple(activations.shape)}"
        )
    act_host = to_numpy(check_active(to_numpy(active), m))
    if act_host.shape[0] != activations.shape[0]:
        raise ValueError(
            f"active must have shape ({activations.shape[0]}, s), got {tuple(act_host.shape)}"
        )
    if bool(xp.any(activations < 0)):  # the early stop orders pairs by a_i >= 0
        raise ValueError("activations must be >= 0 (the outputs of a ReLU layer)")
    if stop_above is not None:
        stop_above = check_real("stop_above", stop_above, low=0.0)
        if acc is not None:
            raise ValueError("stop_above and acc exclude each other (statistics need every input)")
    route = check_choice("route", route, ROUTES)
    need, avail = _pair_table_need(w), available_bytes()
    fits = avail is not None and need <= PAIR_TABLE_SHARE * avail
    table_ok = is_numpy(xp) and acc is None and fits
    if route == "table" and not table_ok:
        room = "unknown" if avail is None else f"{PAIR_TABLE_SHARE * avail / GiB:.3g} GiB"
        raise ValueError(
            f"route='table' needs NumPy arrays, no acc and the pair table of n_features={m} "
            f"({need / GiB:.3g} GiB) within {PAIR_TABLE_SHARE:g} of the available memory "
            f"({room}); got namespace {name_of(xp)!r}, acc {'given' if acc is not None else 'None'}"
        )
    table_after = {"table": 0, "auto": PAIR_TABLE_AFTER if table_ok else None}.get(route)
    walk_work = 0.0  # of this call, in GEMM multiply-adds (_pair_counts_pay_off)
    k_all, s = act_host.shape
    cptr, sptr = w.host_indptr, sup_w.host_indptr
    per = np.zeros((k_all, 3))
    firing_n = np.zeros(k_all, dtype=np.int64)
    processed = np.zeros(k_all, dtype=np.int64)
    done = 0
    for t in range(k_all):
        A = np.sort(act_host[t])
        a = xp.astype(activations[t, :], xp.float64)
        nbrs = [w.indices[int(cptr[k]) : int(cptr[k + 1])] for k in A]
        # pattern 2: the mean over the neurons wired to both features
        for u in range(s):
            for v in range(u + 1, s):
                gam = xp.astype(nbrs[u][_contains(nbrs[v], nbrs[u])], xp.int64)
                y = _sequential_sum(xp.take(a, gam)) / gam.shape[0] if gam.shape[0] else 0.0
                per[t, 2] = max(per[t, 2], abs(y - 1.0))
                if acc is not None:
                    acc.add(
                        2, xp.asarray([y - 1.0], dtype=xp.float64), nonzero=float(y != 0), inputs=t
                    )
        keep_host = np.ones(m, dtype=bool)
        keep_host[A] = False
        keep = asarray(keep_host, xp)
        # pattern 1: one row of outputs per active feature
        for u in range(s):
            own = xp.astype(nbrs[u], xp.int64)
            starts = xp.take(sup_w.indptr, own)
            lengths = xp.take(sup_w.indptr, own + 1) - starts
            cols = xp.astype(xp.take(sup_w.indices, ranges(starts, lengths)), xp.int64)
            gamma = bincount(cols, m)
            num = bincount(cols, m, weights=xp.repeat(xp.take(a, own), lengths))
            hit = (gamma > 0) & keep
            y = xp.where(hit, num / xp.astype(xp.where(hit, gamma, 1), xp.float64), 0.0)
            if m:
                per[t, 1] = max(per[t, 1], float(xp.max(y)))
            if acc is not None:
                yk = y[keep]
                acc.add(1, yk, nonzero=float(xp.count_nonzero(yk)), inputs=t)
        # pattern 0: the pairs inside the supports of firing neurons
        fire = xp.nonzero(a > 0)[0]
        firing_n[t] = int(fire.shape[0])
        a_fire = to_numpy(xp.take(a, fire)) if fire.shape[0] else np.zeros(0)
        fire_host = to_numpy(fire).astype(np.int64)
        if acc is not None:
            order = np.arange(fire_host.size)  # increasing neuron index: a pair counts once
        else:
            order = np.argsort(-a_fire, kind="stable")  # decreasing activation
        firing_mask = asarray(_mask(fire_host, d), xp)
        worst = float(per[t].max())
        table = None
        for q in order:
            a_i = float(a_fire[q])
            if acc is None and a_i <= (worst if stop_above is None else stop_above):
                break  # every pair not reached reads at most a_i
            i = int(fire_host[q])
            sup = sup_w.indices[int(sptr[i]) : int(sptr[i + 1])]
            sup = xp.astype(sup[xp.take(keep, xp.astype(sup, xp.int64))], xp.int64)
            if sup.shape[0] < 2:
                continue
            if (
                table is None
                and table_after is not None
                and processed[t] >= table_after
                and (
                    route == "table"
                    or _pair_counts_cached(w)
                    or _pair_counts_pay_off(walk_work, t + 1, k_all, m, d)
                )
            ):
                table = _pattern0_table(w, to_numpy(a), fire_host, keep_host)
            processed[t] += 1
            if table is None and acc is None and is_numpy(xp):
                top, work = _neuron_top(w, i, a_i, sup, a, firing_mask, worst)
                walk_work += work
            elif table is None:
                top = _neuron_pairs(w, i, a_i, sup, a, firing_mask, acc, t)
            else:
                top = float(np.max(table[_table_codes(sup, m)]))
            if acc is not None or top > worst:  # else the input's worst stands (see above)
                per[t, 0] = max(per[t, 0], top)
            worst = max(worst, top)
            if stop_above is not None and worst > stop_above:
                break
        done = t + 1
        if on_input is not None:
            one = slice(t, done)
            row = (per[one].copy(), firing_n[one].copy(), processed[one].copy())
            on_input(t, WorstErrors(*row, 1, name_of(xp)))
        if stop_above is not None and worst > stop_above:
            break
    return WorstErrors(per[:done], firing_n[:done], processed[:done], k_all, name_of(xp))


def _mask(index: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[index] = True
    return out


def _pair_table_need(w: Wiring) -> float:
    """Bytes the pair table of ``w`` still needs: all of it, or one input's outputs once the
    counts are cached on ``w``."""
    m = w.n_features
    if _pair_counts_cached(w):
        return 8.0 * m * m
    return pair_table_bytes(m)


def _pair_counts_cached(w: Wiring) -> bool:
    """Whether :func:`_pair_count_table` has counted ``w``'s pairs (cached on ``w``)."""
    return "pair_table" in w.__dict__.get("_host", {})


def _pair_counts_pay_off(walk_work: float, started: int, n_inputs: int, m: int, d: int) -> bool:
    r"""Whether ``route="auto"`` builds the pair counts :math:`|\Gamma(k,l)|` of a wiring now.

    The counts cost :math:`d\,m(m+1)/2` multiply-adds of ``ssyrk``, once per wiring; the walk
    of :func:`bernoulli_worst_errors` has so far cost ``walk_work`` in the same units (each
    neuron's pair count as a GEMM, :math:`d\,|S|^2`, or as :data:`SPARSE_COUNT_COST` times its
    sparse entries, an upper bound) over the ``started`` inputs of a batch of ``n_inputs``.
    The counts are built once the walk's work, projected over the batch at its mean per input
    so far, reaches their cost: a batch of few cheap inputs is walked to the end (one input at
    :math:`m = 3\cdot10^4`, ``bench/run_all.py``'s ``superposed_bern_3e4``), a batch of many
    that walk far pays for the counts once and reads the rest from the table. Within one
    input this is the rent-or-buy rule: the walk spends at most the counts' cost before it
    buys them. The walk's work is an upper bound, so the rule errs towards the counts.
    """
    return walk_work * n_inputs / started >= d * m * (m + 1) / 2


def _pair_count_table(w: Wiring) -> np.ndarray:
    r""":math:`|\Gamma(k, l)|` of every pair :math:`k < l` at ``k + l * m``: float32 NumPy ``(m * m,)`` (cached).

    :math:`W^\top W` accumulated over blocks of neurons by BLAS ``ssyrk`` (upper triangle only,
    in place, in column-major order) from the 0/1 rows of each block: exact integers below
    :math:`2^{24}` neurons. Entries with :math:`k \ge l` are not used.
    """
    cache = w.__dict__.setdefault("_host", {})
    if "pair_table" not in cache:
        from scipy.linalg.blas import ssyrk

        sup = w.supports().to(np)
        m, d = w.n_features, w.neurons
        if d >= 2**24:
            raise ValueError(f"the pair table is exact only for neurons < 2**24, got {d}")
        counts = np.zeros((m, m), dtype=np.float32, order="F")
        block = max(256, 2**23 // max(m, 1))
        for i0 in range(0, d, block):
            i1 = min(d, i0 + block)
            lo, hi = int(sup.indptr[i0]), int(sup.indptr[i1])
            rows = np.zeros((i1 - i0, m), dtype=np.float32)
            owner = np.repeat(np.arange(i1 - i0), np.diff(sup.indptr[i0 : i1 + 1]))
            rows[owner, sup.indices[lo:hi]] = 1
            # counts += rows^T rows, upper triangle; rows.T is a Fortran-ordered view (no copy)
            counts = ssyrk(1.0, rows.T, beta=1.0, c=counts, trans=0, lower=0, overwrite_c=1)
        cache["pair_table"] = counts.ravel(order="F")
    return cache["pair_table"]


def _pattern0_table(w: Wiring, a: np.ndarray, fire: np.ndarray, keep: np.ndarray) -> np.ndarray:
    r"""Every pattern-0 output of one input, flat ``(m * m,)`` at ``k + l * m`` (``k < l``; 0 elsewhere).

    The numerator of pair :math:`(k, l)` is :math:`a_i` added over its firing neurons in
    increasing order (one ``np.add.at`` a neuron, starting from 0: each pair of its support
    once), so each output is bit for bit the walk's: the same sums, divided once by
    :math:`|\Gamma(k, l)|` (float32 integers, exact in float64). ``fire``: the firing neurons,
    increasing; ``keep``: the features not active in the input.
    """
    m = w.n_features
    sup = w.supports().to(np)
    num = np.zeros(m * m)
    for i in fire.tolist():
        f = sup.indices[int(sup.indptr[i]) : int(sup.indptr[i + 1])]
        f = f[keep[f]].astype(np.int64)
        if f.shape[0] >= 2:
            np.add.at(num, _table_codes(f, m), a[i])
    return np.divide(num, _pair_count_table(w), out=num, where=num > 0)


def _table_codes(f: np.ndarray, m: int) -> np.ndarray:
    """Where the pair table holds each pair ``f[x] < f[y]`` of the increasing features ``f``:
    ``f[x] + f[y] * m``, every pair once (:func:`_lower_pairs`' order)."""
    y, x = _lower_pairs(int(f.shape[0]))
    return f[x] + (f * m)[y]


def _sequential_sum(x: Any) -> float:
    """``((0 + x[0]) + x[1]) + …`` left to right: the running sum's last value."""
    xp = namespace(x)
    if x.shape[0] == 0:
        return 0.0
    return float(xp.cumulative_sum(x)[-1])


def _run_blocks(neuron: Any, pos: Any, n_pos: int) -> Iterator[tuple[Any, Any, Any]]:
    """The runs of equal neurons, grouped by length, for their pairs' triangle codes.

    ``neuron`` is sorted, and ``pos`` increasing within each run of equal neurons: a run of
    ``c`` entries holds ``c(c-1)/2`` pairs, the pair of entries ``x < y`` coded
    ``off[block[x]] + block[y]`` (:func:`_triangle_offsets`). Yields, for each run length
    ``c >= 2`` in increasing order, ``(off[block], block, first)``: the offsets and positions of
    the runs of length ``c``, shape ``(runs, c)`` (one row a run), and the runs' first entries.
    """
    xp = namespace(neuron)
    n = neuron.shape[0]
    if n < 2:
        return
    starts = xp.nonzero(xp.concat([xp.ones(1, dtype=xp.bool), neuron[1:] != neuron[:-1]]))[0]
    runs = xp.concat([starts[1:], xp.asarray([n], dtype=starts.dtype)]) - starts
    off = _triangle_offsets(n_pos, xp)
    for c in to_numpy(xp.unique_values(runs[runs >= 2])).tolist():
        st = starts[runs == c]
        flat = xp.take(pos, xp.reshape(st[:, None] + xp.arange(c)[None, :], (-1,)))
        shape = (st.shape[0], c)
        yield xp.reshape(xp.take(off, flat), shape), xp.reshape(flat, shape), st


def _triangle_offsets(n_pos: int, xp: ModuleType) -> Any:
    """``off`` with ``off[u] + v`` the index of the pair ``u < v`` in ``np.triu_indices(n_pos, 1)``
    (its *triangle code*), int64."""
    u = xp.arange(n_pos, dtype=xp.int64)
    return u * (2 * n_pos - u - 1) // 2 - u - 1


def _pair_codes(neuron: Any, pos: Any, n_pos: int) -> tuple[Any, Any]:
    """Triangle codes of the position pairs held by each neuron (``neuron`` sorted, ``pos``
    increasing within each neuron), and that neuron: one gather per run length
    (:func:`_run_blocks`)."""
    xp = namespace(neuron)
    codes, owners = [], []
    for lo, block, st in _run_blocks(neuron, pos, n_pos):
        x, y = _triu(int(block.shape[1]), xp)
        codes.append(xp.reshape(xp.take(lo, x, axis=1) + xp.take(block, y, axis=1), (-1,)))
        owners.append(xp.repeat(xp.take(neuron, st), x.shape[0]))
    if not codes:
        empty = xp.zeros(0, dtype=xp.int64)
        return empty, empty
    return xp.concat(codes), xp.concat(owners)


def _run_pair_counts(neuron: np.ndarray, pos: np.ndarray, n_pos: int) -> np.ndarray:
    r"""How many runs (neurons) hold each position pair: int64 ``(n_pos (n_pos - 1) / 2,)``,
    the pairs :math:`u < v` in the order of ``np.triu_indices(n_pos, 1)``; ``neuron``, ``pos``
    as :func:`_pair_codes`.

    The codes of the pairs ``k`` apart in the runs of one length are one slice each (no gather
    per pair), counted by ``np.bincount`` a few million at a time: time linear in the pairs
    held, :math:`\sum_j |S_j \cap S|^2 / 2`, into a table half the size of :math:`n_{pos}^2`."""
    out = np.zeros(n_pos * (n_pos - 1) // 2, dtype=np.int64)
    chunk, size = [], 0
    for lo, block, _ in _run_blocks(neuron, pos, n_pos):
        c = block.shape[1]
        for k in range(1, c):
            chunk.append((lo[:, : c - k] + block[:, k:]).ravel())
            size += chunk[-1].size
        if size >= 2**22:
            out += np.bincount(np.concatenate(chunk), minlength=out.shape[0])
            chunk, size = [], 0
    if chunk:
        out += np.bincount(np.concatenate(chunk), minlength=out.shape[0])
    return out


def _distinct(x: Any) -> Any:
    """The distinct values of an integer array, sorted."""
    xp = namespace(x)
    if x.shape[0] == 0:
        return x
    x = xp.sort(x)
    return x[xp.concat([xp.ones(1, dtype=xp.bool), x[1:] != x[:-1]])]


def _neuron_pairs(
    w: Wiring,
    i: int,
    a_i: float,
    sup: Any,
    a: Any,
    firing_mask: Any,
    acc: ErrorAccumulator | None,
    t: int,
) -> float:
    r"""Worst output over the pairs inside ``sup`` (sorted features of firing neuron ``i``).

    Neuron ``i`` holds every pair, so :math:`|\Gamma| = 1 + c` with ``c`` the other neurons
    holding the pair. The counts of all pairs come from :math:`W_S^\top W_S`, the 0/1 columns of
    ``sup`` (:func:`_support_pair_counts`: a dense GEMM or a sparse count, exact integers); the pairs
    also held by another *firing* neuron (whose numerators need more than :math:`a_i`) come
    from the pair codes of the firing neurons only. With ``acc``: adds the outputs of the pairs
    whose first firing neuron is ``i``.
    """
    xp = namespace(sup)
    n_pos = sup.shape[0]
    starts = xp.take(w.indptr, sup)
    lengths = xp.take(w.indptr, sup + 1) - starts
    neuron = xp.astype(xp.take(w.indices, ranges(starts, lengths)), xp.int64)
    pos = xp.repeat(xp.arange(n_pos, dtype=xp.int64), lengths)
    # every pair's count: (W_S^T W_S)_uv - 1 (neuron i holds them all), by triangle code
    count = _support_pair_counts(w, neuron, pos, lengths, n_pos) - 1
    top = int(xp.max(count)) if count.shape[0] else 0
    hist = bincount(count, top + 1)  # pairs by the number of other neurons holding them
    shared, num, first, allo = _shared_sums(w, i, neuron, pos, n_pos, a, firing_mask)
    best = 0.0
    if shared.shape[0]:
        c_shared = xp.take(count, shared)
        hist = hist - bincount(c_shared, top + 1)
        y = num / xp.astype(c_shared + 1, xp.float64)
        best = float(xp.max(y))
        if acc is not None:
            y_own = y[xp.take(allo, first) == i]  # i is the pair's first firing holder
            acc.add(0, y_own, nonzero=float(y_own.shape[0]), inputs=t)
    # the pairs held by i alone among the firing neurons read a_i / (1 + c)
    c = xp.nonzero(hist > 0)[0]
    if c.shape[0] == 0:
        return best
    vals = a_i / xp.astype(c + 1, xp.float64)
    if acc is not None:
        wts = xp.astype(xp.take(hist, c), xp.float64)
        acc.add(0, vals, weight=wts, nonzero=float(xp.sum(wts)), inputs=t)
    return max(best, float(xp.max(vals)))


def _neuron_top(
    w: Wiring, i: int, a_i: float, sup: np.ndarray, a: np.ndarray, fire: np.ndarray, floor: float
) -> tuple[float, float]:
    r"""Worst output over the pairs inside ``sup`` (firing neuron ``i``), where it exceeds ``floor``,
    and what counting the pairs cost (:func:`_count_work`).

    NumPy. Returns the same bits as :func:`_neuron_pairs` when that exceeds ``floor``, else a
    value at most ``floor``. A pair's output is the mean of its holders' activations; a holder
    with :math:`a_j \le` ``floor`` cannot lift a mean above the floor, so a pair can exceed it
    only if the mean over ``i``, its other holders above the floor (summed from their pair
    codes, rounded up) and any of its quiet holders (:math:`a_j = 0`) does. The quiet holders
    are counted over the neurons below each fraction of :data:`WALK_SLICES` in turn, and after
    each slice only the pairs that still pass go on: counted for every pair (the sparse count)
    or for those pairs alone (their 64-neuron words of the slice, :func:`_bit_pair_counts`),
    whichever :data:`BIT_COUNT_COST` says is cheaper. The pairs left after the last slice get
    their exact outputs, computed as :func:`_neuron_pairs` computes them.

    Whatever :math:`p`: measured against :func:`_neuron_pairs` with its dense GEMM (which also
    builds the pair codes of every firing neuron) on walked neurons at floor 0.3, one thread,
    from :math:`m = 1000` to :math:`3\cdot10^4` and :math:`p = 0.07` to :math:`0.38`, this
    took 4.4 to 8.8 times less time; at floor 0.05, where few pairs are ruled out, 0.85 to
    1.4 times.
    """
    n_pos, d = int(sup.shape[0]), w.neurons
    starts = w.indptr[sup]
    lengths = w.indptr[sup + 1] - starts
    neuron = w.indices[ranges(starts, lengths)].astype(np.int64)
    pos = np.repeat(np.arange(n_pos, dtype=np.int64), lengths)
    per_neuron = np.bincount(neuron, minlength=d)
    work = _count_work(per_neuron, n_pos)
    n_pairs = n_pos * (n_pos - 1) // 2
    # i and its other holders above the floor: a float sum of their activations (h <= d terms
    # >= 0, each sum within (h - 1) unit roundoffs: rounded up) over their number
    hc, ho = _other_holders(i, neuron, pos, n_pos, fire & (a > floor))
    up = 1.0 + 8.0 * (d + 2) * 2.0**-53
    num = (a_i + np.bincount(hc, weights=a[ho], minlength=n_pairs)) * up
    # a pair passes while its quiet holders counted so far number less than num / floor - 1 - h
    # (h holders above the floor). Widened: the computed mean may exceed the real one by
    # (d + 2) roundoffs, and the holders at or below the floor, left out, may then lift it by
    # as many roundoffs each (at most d of them): the pairs that pass include every pair whose
    # computed output exceeds the floor
    limit = num / floor if floor > 0 else np.full(n_pairs, np.inf)
    limit *= 1.0 + 2.0 * (d + 2) ** 2 * 2.0**-53
    limit -= 1.0 + np.bincount(hc, minlength=n_pairs)
    n_quiet = np.zeros(n_pairs, dtype=np.int64)
    quiet = ~fire[neuron]  # the quiet holders, counted slice by slice
    qn, qp = neuron[quiet], pos[quiet]
    q_pairs = np.where(fire, 0, per_neuron * (per_neuron - 1) // 2)
    left = np.append(np.cumsum(q_pairs[::-1])[::-1], 0)  # quiet pairs from neuron j on
    cand = None  # every pair
    lo = 0
    for frac in (*(f for f in WALK_SLICES if f < 1.0), 1.0):  # the last slice ends at d
        hi = d if frac >= 1.0 else min(d, max(lo + 64, int(frac * d) // 64 * 64))
        sel = (qn >= lo) & (qn < hi)
        words = (hi - lo + 63) // 64
        if cand is None or float(left[lo] - left[hi]) <= BIT_COUNT_COST * cand.shape[0] * words:
            counted = _sparse_pair_counts(qn[sel], qp[sel], n_pos, d)
            n_quiet += counted if cand is None else counted[cand]
        else:
            u, v = _triangle_pairs(cand, n_pos)
            n_quiet += _bit_pair_counts(qn[sel] - lo, qp[sel], n_pos, hi - lo, u, v)
        lo = hi
        keep = n_quiet < limit
        cand = np.flatnonzero(keep) if cand is None else cand[keep]
        limit, n_quiet = limit[keep], n_quiet[keep]
        if not cand.shape[0] or hi == d:
            break
    if not cand.shape[0]:
        return 0.0, work
    # the pairs left, counted in full: their other firing holders (a gather of the codes of
    # every firing neuron) and their exact outputs
    mc, mo = _other_holders(i, neuron, pos, n_pos, fire)
    s = _mask(cand, n_pairs)[mc]
    mc, mo = mc[s], mo[s]
    n_fire = np.bincount(np.searchsorted(cand, mc), minlength=cand.shape[0])
    c = n_quiet + n_fire  # the other neurons holding each pair
    shared = n_fire > 0
    best = 0.0
    if not shared.all():
        best = float(np.max(a_i / (c[~shared] + 1).astype(np.float64)))
    if shared.any():
        num_sh, _, _ = _holder_sums(mc, mo, cand[shared], i, a, d)
        best = max(best, float(np.max(num_sh / (c[shared] + 1).astype(np.float64))))
    return best, work


def _triangle_pairs(codes: np.ndarray, n_pos: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs ``(u, v)``, ``u < v``, of triangle codes (:func:`_triangle_offsets`)."""
    off = _triangle_offsets(n_pos, np)
    u = np.searchsorted(off + np.arange(1, n_pos + 1), codes, side="right") - 1
    return u, codes - off[u]


def _bit_pair_counts(
    neuron: np.ndarray, pos: np.ndarray, n_pos: int, width: int, u: np.ndarray, v: np.ndarray
) -> np.ndarray:
    """How many of the neurons ``0 <= neuron < width`` hold both positions of each pair
    ``(u[q], v[q])``, int64: each position's neurons packed into 64-bit words (``pos``
    non-decreasing, neurons increasing within a position), then a pair's two rows ANDed and
    their bits counted (``np.bitwise_count``), a few hundred thousand words at a time."""
    words = (width + 63) // 64
    rows = np.zeros(n_pos * words, dtype=np.uint64)
    if neuron.shape[0]:
        key = pos * words + (neuron >> 6)  # non-decreasing: one run per word
        bit = np.left_shift(np.uint64(1), (neuron & 63).astype(np.uint64))
        first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        rows[key[first]] = np.bitwise_or.reduceat(bit, first)
    rows = rows.reshape(n_pos, words)
    out = np.zeros(u.shape[0], dtype=np.int64)
    step = max(1, 2**17 // max(words, 1))
    for q0 in range(0, u.shape[0], step):
        both = rows[u[q0 : q0 + step]]
        both &= rows[v[q0 : q0 + step]]
        out[q0 : q0 + step] = np.bitwise_count(both).sum(axis=1, dtype=np.int64)
    return out


def _sparse_count_cheaper(per_neuron: np.ndarray, n_pos: int) -> bool:
    """Whether counting the pairs each neuron holds (``per_neuron[j]`` positions of ``S`` on
    neuron ``j``) costs less than the GEMM over every neuron (:data:`SPARSE_COUNT_COST`)."""
    return _count_work(per_neuron, n_pos) < per_neuron.shape[0] * float(n_pos) ** 2


def _count_work(per_neuron: np.ndarray, n_pos: int) -> float:
    r"""What counting the pairs of ``S`` costs in multiply-adds of the float32 GEMM: the dense
    GEMM's :math:`d\,|S|^2`, or the sparse count's entries times :data:`SPARSE_COUNT_COST`
    where that is less (an upper bound: the walk may stop counting early)."""
    held = per_neuron.astype(np.float64)
    return min(float(held @ held) * SPARSE_COUNT_COST, per_neuron.shape[0] * float(n_pos) ** 2)


def _sparse_pair_counts(neuron: np.ndarray, pos: np.ndarray, n_pos: int, d: int) -> np.ndarray:
    """:func:`_run_pair_counts` of entries given column by column (neurons increasing within a
    position): regrouped by neuron first (``scipy.sparse``, a counting sort)."""
    import scipy.sparse as sps

    lengths = np.bincount(pos, minlength=n_pos)
    indptr = np.concatenate(([0], np.cumsum(lengths)))
    ones = np.ones(neuron.shape[0], dtype=np.int8)
    cols = sps.csc_array((ones, neuron.astype(np.int32), indptr), shape=(d, n_pos))
    rows = cols.tocsr()  # by neuron, positions increasing within each (counting sort)
    rows.sort_indices()
    owner = np.repeat(np.arange(d, dtype=np.int64), np.diff(rows.indptr))
    return _run_pair_counts(owner, rows.indices.astype(np.int64), n_pos)


def _support_pair_counts(w: Wiring, neuron: Any, pos: Any, lengths: Any, n_pos: int) -> Any:
    r"""The upper triangle of :math:`W_S^\top W_S`, int64 ``(n_pos (n_pos - 1) / 2,)`` in the
    order of ``np.triu_indices(n_pos, 1)``: how many neurons hold each pair of ``S``.

    ``neuron``, ``pos``: the ones of the 0/1 columns :math:`W_S` (column by column, neurons
    increasing), ``lengths`` their number per column. A dense float32 GEMM (exact integers below
    :math:`2^{24}` neurons), or on NumPy where :data:`SPARSE_COUNT_COST` says it is cheaper
    the pairs each neuron holds inside ``S`` counted (:func:`_run_pair_counts`, time linear
    in those pairs); the same integers either way.
    """
    xp = namespace(neuron)
    d = w.neurons
    if is_numpy(xp):
        if _sparse_count_cheaper(np.bincount(neuron, minlength=d), n_pos):
            return _sparse_pair_counts(neuron, pos, n_pos, d)
        cols = np.zeros((d, n_pos), dtype=np.float32 if d < 2**24 else np.float64)
        cols[neuron, pos] = 1  # set the ones in place: no scatter-add needed
        gram = (cols.T @ cols).astype(np.int64)
    else:
        exact = xp.float32 if d < 2**24 else xp.float64  # counts are at most d
        cols = xp.reshape(xp.astype(bincount(neuron * n_pos + pos, d * n_pos), exact), (d, n_pos))
        gram = xp.astype(xp.matrix_transpose(cols) @ cols, xp.int64)
    x, y = _triu(n_pos, xp)
    return xp.take(xp.reshape(gram, (-1,)), x * n_pos + y)


def _other_holders(i: int, neuron: Any, pos: Any, n_pos: int, firing_mask: Any) -> tuple[Any, Any]:
    """The pairs of neuron ``i``'s support held by another firing neuron, one entry per holder.

    ``neuron``, ``pos``: the neurons wired to each position of the support. Returns
    ``(codes, owners)``: the triangle code of each pair (:func:`_triangle_offsets`) and the
    firing neuron holding it, in increasing neuron order (a code repeats once per holder).
    """
    xp = namespace(neuron)
    other = xp.take(firing_mask, neuron) & (neuron != i)
    neuron, pos = neuron[other], pos[other]
    order = xp.argsort(neuron * n_pos + pos)  # positions stay increasing within a neuron
    return _pair_codes(xp.take(neuron, order), xp.take(pos, order), n_pos)


def _holder_sums(
    codes: Any, owners: Any, shared: Any, i: int, a: Any, d: int
) -> tuple[Any, Any, Any]:
    """Numerators of the pairs ``shared`` (distinct triangle codes): the activations of their
    firing holders, ``i`` and the ``owners`` of their ``codes`` (every code in ``shared``),
    added left to right in increasing neuron order.

    Returns ``(numerators, first, owners)``: one sum per code of ``shared``, and every holder
    sorted by (pair, neuron) with the index of each pair's first entry.
    """
    xp = namespace(codes)
    allc = xp.concat([codes, shared])
    allo = xp.concat([owners, xp.full(shared.shape[0], i, dtype=xp.int64)])
    key = xp.argsort(allc * d + allo)
    allc, allo = xp.take(allc, key), xp.take(allo, key)
    first = xp.nonzero(xp.concat([xp.ones(1, dtype=xp.bool), allc[1:] != allc[:-1]]))[0]
    size = xp.concat([first[1:], xp.asarray([allc.shape[0]], dtype=first.dtype)]) - first
    return _run_sums(xp.take(a, allo), first, size), first, allo


def _shared_sums(
    w: Wiring, i: int, neuron: Any, pos: Any, n_pos: int, a: Any, firing_mask: Any
) -> tuple[Any, Any, Any, Any]:
    """The pairs of neuron ``i``'s support also held by another firing neuron.

    Returns ``(codes, numerators, first, owners)``: the distinct triangle codes of the pairs
    (:func:`_triangle_offsets`) and, from :func:`_holder_sums`, the sum of the activations of
    their firing holders (``i`` included), the index of each pair's first entry in ``owners``
    and ``owners`` (its firing holders, sorted by pair then neuron).
    """
    xp = namespace(neuron)
    mc, mo = _other_holders(i, neuron, pos, n_pos, firing_mask)
    if mc.shape[0] == 0:
        empty = xp.zeros(0, dtype=xp.int64)
        return empty, xp.zeros(0, dtype=xp.float64), empty, empty
    shared = _distinct(mc)
    num, first, allo = _holder_sums(mc, mo, shared, i, a, w.neurons)
    return shared, num, first, allo


def _run_sums(vals: Any, first: Any, size: Any) -> Any:
    """Float64 sum of each run ``vals[first[q] : first[q] + size[q]]`` (every ``size >= 1``),
    added left to right (``((0 + v0) + v1) + …``), all runs at once."""
    xp = namespace(vals)
    num = xp.zeros(first.shape[0], dtype=xp.float64)
    for r in range(int(xp.max(size))):
        alive = size > r
        num = xp.where(alive, num + xp.take(vals, xp.where(alive, first + r, first)), num)
    return num


# ---------------------------------------------------------------- sparse matrices: CSR and X @ S


@dataclass(frozen=True, eq=False)
class CSR:
    r"""A sparse matrix in compressed sparse rows, its arrays in any array-API namespace.

    Row ``i`` holds the values ``data[indptr[i]:indptr[i + 1]]`` in the columns
    ``indices[indptr[i]:indptr[i + 1]]`` (scipy's ``csr_array`` layout, so a scipy matrix is
    wrapped without a copy and stored or loaded as its three arrays).

    Attributes
    ----------
    indptr : integer array, shape ``(rows + 1,)``
        Non-decreasing, from 0 to ``nnz``.
    indices : integer array, shape ``(nnz,)``
        Column of each stored value, in ``[0, cols)``.
    data : float array, shape ``(nnz,)``
        The stored values (their dtype is the matrix's).
    shape : tuple of int
        ``(rows, cols)``.

    Notes
    -----
    The three arrays share one namespace; :meth:`to` moves them to another (cached per
    namespace, so fixed factors cross to a device once). :func:`sparse_matmul` multiplies.
    """

    indptr: Any
    indices: Any
    data: Any
    shape: tuple[int, int]

    def __post_init__(self) -> None:
        if len(self.shape) != 2:
            raise ValueError(f"shape must be (rows, cols), got {self.shape!r}")
        rows = check_int("shape[0]", self.shape[0], low=0)
        cols = check_int("shape[1]", self.shape[1], low=0)
        object.__setattr__(self, "shape", (rows, cols))
        if tuple(self.indptr.shape) != (rows + 1,):
            raise ValueError(
                f"indptr must have shape ({rows + 1},) for {rows} rows, got {tuple(self.indptr.shape)}"
            )
        if len(self.indices.shape) != 1 or tuple(self.data.shape) != tuple(self.indices.shape):
            raise ValueError(
                "indices and data must be 1-d of the same length, got "
                f"{tuple(self.indices.shape)} and {tuple(self.data.shape)}"
            )

    @property
    def nnz(self) -> int:
        """Number of stored values."""
        return int(self.data.shape[0])

    @property
    def dtype(self) -> Any:
        """The dtype of the stored values."""
        return self.data.dtype

    @classmethod
    def from_scipy(cls, matrix: Any) -> CSR:
        """Wrap a scipy.sparse matrix (converted to ``csr_array`` if needed; its arrays, no copy).

        The scipy matrix itself is kept for the NumPy path of :func:`sparse_matmul`.
        """
        import scipy.sparse as sps

        if not sps.issparse(matrix):
            raise ValueError(f"matrix must be a scipy.sparse matrix, got {type(matrix).__name__}")
        csr = sps.csr_array(matrix)
        out = cls(csr.indptr, csr.indices, csr.data, csr.shape)
        out.__dict__["_scipy"] = csr
        return out

    @classmethod
    def from_dense(cls, x: Any) -> CSR:
        """The nonzero entries of a dense 2-d array ``x``, in its namespace (row-major order)."""
        from .backend import is_numpy

        xp = namespace(x)
        if len(x.shape) != 2:
            raise ValueError(f"x must be a 2-d array, got shape {tuple(x.shape)}")
        if is_numpy(xp):
            import scipy.sparse as sps

            return cls.from_scipy(sps.csr_array(x))
        rows, cols = xp.nonzero(x)
        rows, cols = xp.astype(rows, xp.int64), xp.astype(cols, xp.int64)
        data = xp.take(xp.reshape(x, (-1,)), rows * x.shape[1] + cols)
        indptr = xp.searchsorted(rows, xp.arange(x.shape[0] + 1, dtype=xp.int64), side="left")
        return cls(xp.astype(indptr, xp.int64), cols, data, tuple(x.shape))

    def to(self, xp: ModuleType) -> CSR:
        """This matrix with its arrays in namespace ``xp`` (itself when already there; cached)."""
        from .backend import name_of

        if name_of(namespace(self.data)) == name_of(xp):
            return self
        cache = self.__dict__.setdefault("_moved", {})
        key = name_of(xp)
        if key not in cache:
            cache[key] = CSR(
                asarray(to_numpy(self.indptr), xp),
                asarray(to_numpy(self.indices), xp),
                asarray(to_numpy(self.data), xp),
                self.shape,
            )
        return cache[key]

    def to_scipy(self) -> Any:
        """The matrix as a ``scipy.sparse.csr_array`` (arrays copied to NumPy if need be)."""
        import scipy.sparse as sps

        csr = self.__dict__.get("_scipy")
        if csr is None:
            csr = sps.csr_array(
                (to_numpy(self.data), to_numpy(self.indices), to_numpy(self.indptr)),
                shape=self.shape,
            )
            self.__dict__["_scipy"] = csr
        return csr

    def toarray(self) -> Any:
        """The dense ``(rows, cols)`` matrix in the matrix's namespace (for small cases)."""
        xp = namespace(self.data)
        return sparse_matmul(self, xp.eye(self.shape[1], dtype=self.data.dtype))


def sparse_matmul(a: Any, b: Any) -> Any:
    r"""The product ``a @ b`` of a dense matrix and a :class:`CSR` matrix (either order).

    Parameters
    ----------
    a, b : one dense 2-d array and one :class:`CSR`
        ``X @ S`` with ``X`` ``(K, r)`` dense and ``S`` ``(r, c)`` sparse gives ``(K, c)``;
        ``S @ X`` with ``S`` ``(K, r)`` sparse and ``X`` ``(r, c)`` dense gives ``(K, c)``.
        The sparse matrix is moved to the dense one's namespace (:meth:`CSR.to`, cached).

    Returns
    -------
    array, shape ``(K, c)``, in the dense operand's namespace, of the promoted dtype of the
    dense operand and ``S.data``.

    Notes
    -----
    NumPy multiplies with ``scipy.sparse`` (each output a sequential sum over the stored
    entries, in column order), CuPy with ``cupyx.scipy.sparse`` when it imports. Any other
    namespace runs the array-API path: the entries of each output column of ``X @ S`` (row of
    ``S @ X``) are gathered into a dense ``(K, outputs, w)`` block, times their values, and
    summed over ``w`` by the namespace's ``sum``. Outputs are grouped by ``w``, their number of
    entries rounded up to a power of two and padded with exact zeros (a zero column of ``X``
    times a zero value, so an infinite ``X`` entry elsewhere cannot leak in), so the work and
    memory are at most :math:`2\,K \cdot \text{nnz}` products plus the output.

    Rounding: each output is a sum of its own :math:`w` products in the dtype of the result,
    only in another order of addition than scipy's, so
    :math:`|\text{error}| \le \gamma_w \sum |\text{products}|` (:math:`\gamma_w = wu/(1-wu)`,
    :math:`u` the unit roundoff; Higham §3.1) on every path, with :math:`w` the entries of that
    output alone (no prefix sums, no cancellation between outputs). The paths agree to that
    rounding, not bit for bit.
    """
    if isinstance(b, CSR) and not isinstance(a, CSR):
        dense, sparse, sparse_right = a, b, True
    elif isinstance(a, CSR) and not isinstance(b, CSR):
        dense, sparse, sparse_right = b, a, False
    else:
        raise ValueError(
            "sparse_matmul multiplies one dense array and one CSR matrix, got "
            f"{type(a).__name__} and {type(b).__name__}"
        )
    from .backend import is_numpy

    xp = namespace(dense)
    if len(dense.shape) != 2:
        raise ValueError(f"the dense operand must be 2-d, got shape {tuple(dense.shape)}")
    inner = sparse.shape[0] if sparse_right else sparse.shape[1]
    k = 1 if sparse_right else 0
    if dense.shape[k] != inner:
        name = "a" if sparse_right else "b"
        raise ValueError(
            f"{name} must have {inner} {'columns' if sparse_right else 'rows'} to multiply a "
            f"sparse matrix of shape {sparse.shape}, got shape {tuple(dense.shape)}"
        )
    sparse = sparse.to(xp)
    if is_numpy(xp):
        csr = sparse.to_scipy()
        return dense @ csr if sparse_right else csr @ dense
    fast = _cupy_matmul(dense, sparse, sparse_right, xp)
    if fast is not None:  # pragma: no cover - GPU only
        return fast
    plan = _gather_plan(sparse, by_column=sparse_right)
    dtype = xp.result_type(dense.dtype, sparse.data.dtype)
    n_out = sparse.shape[1] if sparse_right else sparse.shape[0]
    if sparse_right:  # X (K, r) @ S (r, c): output column j gathers X[:, i] of S's column j
        rows = dense.shape[0]
        src = xp.concat([xp.astype(dense, dtype), xp.zeros((rows, 1), dtype=dtype)], axis=1)
        parts = [xp.zeros((rows, plan.n_empty), dtype=dtype)] if plan.n_empty else []
        for idx, vals, n, w in plan.groups:
            gathered = xp.reshape(xp.take(src, idx, axis=1), (rows, n, w))
            parts.append(xp.sum(gathered * xp.astype(vals, dtype), axis=2))
        axis = 1
        empty_shape = (rows, n_out)
    else:  # S (K, r) @ X (r, c): output row i gathers X[j, :] of S's row i
        cols = dense.shape[1]
        src = xp.concat([xp.astype(dense, dtype), xp.zeros((1, cols), dtype=dtype)], axis=0)
        parts = [xp.zeros((plan.n_empty, cols), dtype=dtype)] if plan.n_empty else []
        for idx, vals, n, w in plan.groups:
            gathered = xp.reshape(xp.take(src, idx, axis=0), (n, w, cols))
            parts.append(xp.sum(gathered * xp.astype(vals, dtype)[:, :, None], axis=1))
        axis = 0
        empty_shape = (n_out, cols)
    if not parts:
        return xp.zeros(empty_shape, dtype=dtype)
    out = parts[0] if len(parts) == 1 else xp.concat(parts, axis=axis)
    return out if plan.inverse is None else xp.take(out, plan.inverse, axis=axis)


@dataclass(frozen=True, eq=False)
class _GatherPlan:
    """How :func:`sparse_matmul` gathers the entries of each output, grouped by padded count.

    ``groups``: ``(flat source indices, values (n, w), n, w)`` per width ``w`` (ascending); the
    outputs with no entry come first (``n_empty``), then the groups, and ``inverse`` (or
    ``None`` for the identity) puts them back in output order.
    """

    groups: tuple[tuple[Any, Any, int, int], ...]
    n_empty: int
    inverse: Any


def _gather_plan(sparse: CSR, *, by_column: bool) -> _GatherPlan:
    """The plan of ``X @ S`` (``by_column``) or ``S @ X``, built once per matrix with NumPy."""
    key = "_plan_columns" if by_column else "_plan_rows"
    plan = sparse.__dict__.get(key)
    if plan is not None:
        return plan
    xp = namespace(sparse.data)
    n_rows, n_cols = sparse.shape
    indptr = to_numpy(sparse.indptr).astype(np.int64)
    indices = to_numpy(sparse.indices).astype(np.int64)
    nnz = indices.size
    row_of = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(indptr))
    # seg: the output an entry adds to; src: the slice of X it reads (n_src: the zero slice)
    seg, src, n_seg, n_src = (
        (indices, row_of, n_cols, n_rows) if by_column else (row_of, indices, n_rows, n_cols)
    )
    order = np.argsort(seg, kind="stable")
    counts = np.bincount(seg, minlength=n_seg).astype(np.int64)
    starts = np.cumsum(counts) - counts
    width = np.zeros(n_seg, dtype=np.int64)
    nonempty = counts > 0
    width[nonempty] = 1 << np.ceil(np.log2(counts[nonempty])).astype(np.int64)
    perm = np.argsort(width, kind="stable")
    data = xp.concat([sparse.data, xp.zeros(1, dtype=sparse.data.dtype)])
    groups = []
    n_empty = int(np.count_nonzero(~nonempty))
    for w in np.unique(width[nonempty]):
        segs = perm[width[perm] == w]
        j = np.arange(w, dtype=np.int64)[None, :]
        valid = j < counts[segs][:, None]
        entry = np.where(valid, order[np.where(valid, starts[segs][:, None] + j, 0)], nnz)
        src_idx = np.append(src, n_src)[entry]
        vals = xp.reshape(xp.take(data, asarray(entry.reshape(-1), xp)), (segs.size, int(w)))
        groups.append((asarray(src_idx.reshape(-1), xp), vals, int(segs.size), int(w)))
    inverse = None
    if np.any(perm != np.arange(n_seg)):
        inv = np.empty(n_seg, dtype=np.int64)
        inv[perm] = np.arange(n_seg, dtype=np.int64)
        inverse = asarray(inv, xp)
    plan = _GatherPlan(tuple(groups), n_empty, inverse)
    sparse.__dict__[key] = plan
    return plan


def _cupy_matmul(dense: Any, sparse: CSR, sparse_right: bool, xp: ModuleType) -> Any:
    """``X @ S`` or ``S @ X`` through ``cupyx.scipy.sparse`` on CuPy arrays, else ``None``."""
    import array_api_compat

    if not array_api_compat.is_cupy_namespace(xp):
        return None
    return _cupyx_matmul(dense, sparse, sparse_right)


def _cupyx_matmul(dense: Any, sparse: CSR, sparse_right: bool) -> Any:  # pragma: no cover
    """The CuPy path of :func:`sparse_matmul` (GPU only; ``None`` without ``cupyx``)."""
    try:
        import cupyx.scipy.sparse as cps
    except ImportError:
        return None
    mat = sparse.__dict__.get("_cupyx")
    if mat is None:
        mat = cps.csr_matrix((sparse.data, sparse.indices, sparse.indptr), shape=sparse.shape)
        sparse.__dict__["_cupyx"] = mat
    if sparse_right:
        return (mat.T @ dense.T).T  # csc @ dense: the layout cuSPARSE multiplies
    return mat @ dense
