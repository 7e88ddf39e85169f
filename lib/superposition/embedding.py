r"""Random near-orthogonal feature directions and sparse boolean inputs in superposition.

A boolean feature vector :math:`x \in \{0,1\}^m` is stored in :math:`d_0 < m` dimensions as
:math:`a = \Phi x = \sum_i x_i \varphi_i`, with unit columns :math:`\varphi_i` of
:math:`\Phi \in \mathbb{R}^{d_0 \times m}`. It is read back by :math:`\hat x = \Phi^\top a`;
feature :math:`k` reads :math:`x_k + \sum_{j \ne k} x_j\, \varphi_k\cdot\varphi_j`, so the error is a
sum of :math:`s` overlaps, each of size about :math:`d_0^{-1/2}`.

The columns are generated in fixed blocks of :data:`BLOCK` features, block ``b`` from the
seed ``(seed, b)``, so a column never has to be stored to be reproduced: very wide
embeddings are streamed block by block, with the same bits as the materialised matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ._validate import as_generator, check_active, check_choice, check_int, check_sparsity
from .backend import asarray, evaluation_namespace, is_numpy, name_of, namespace, to_numpy

EMBEDDING_KINDS = ("gaussian", "sign")
"""Kinds of random embedding columns: unit Gaussian directions or random signs."""
BLOCK = 256
"""Features per seeded block of columns (part of the definition of an embedding's bits)."""
READOUT_CHUNK = 32
"""Blocks per matrix product in :meth:`Embedding.readout` (bounds memory, not results)."""
ERROR_CHUNK = 1 << 22
"""Readout entries (inputs × features) :func:`readout_errors` holds at once (32 MiB of float64)."""
CACHE_BYTES = 1 << 29
"""Memory an :class:`Embedding` may use to keep generated blocks (512 MiB)."""


@dataclass(frozen=True)
class Embedding:
    r"""A random embedding :math:`\Phi` of ``n_features`` unit vectors in ``embed_dim`` dimensions.

    Parameters
    ----------
    n_features : int
        Number of features :math:`m \ge 1`.
    embed_dim : int
        Dimension :math:`d_0 \ge 1` of the space they share.
    embedding_kind : {"gaussian", "sign"}
        ``"gaussian"``: i.i.d. normal columns normalised to unit length.
        ``"sign"``: i.i.d. :math:`\pm 1/\sqrt{d_0}` entries (unit length by construction).
    seed : int
        Non-negative seed; column block ``b`` is drawn from ``default_rng((seed, b))``.
    dtype : numpy dtype
        ``float64`` (default) or ``float32``.

    Notes
    -----
    Columns are never stored: :meth:`block` regenerates them (with a small cache), so memory
    is :math:`O(d_0 \cdot \text{BLOCK})` however large :math:`m` is, unless :meth:`matrix` is called.
    """

    n_features: int
    embed_dim: int
    embedding_kind: str = "gaussian"
    seed: int = 0
    dtype: type = np.float64

    def __post_init__(self) -> None:
        check_int("n_features", self.n_features, low=1)
        check_int("embed_dim", self.embed_dim, low=1)
        check_choice("embedding_kind", self.embedding_kind, EMBEDDING_KINDS)
        check_int("seed", self.seed, low=0)
        if np.dtype(self.dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {np.dtype(self.dtype)}")

    @property
    def n_blocks(self) -> int:
        return -(-self.n_features // BLOCK)

    def block(self, b: int, xp: ModuleType | None = None) -> Any:
        r"""Columns ``b*BLOCK : (b+1)*BLOCK`` of :math:`\Phi`, shape ``(embed_dim, ≤ BLOCK)``, read-only.

        Drawn with NumPy from the block's seed, then moved to namespace ``xp`` (default NumPy).
        Blocks are kept in a per-embedding cache (one per namespace) while it holds at most
        :data:`CACHE_BYTES`; beyond that they are regenerated from their seeds on every use.
        """
        check_int("b", b, low=0, high=self.n_blocks - 1)
        name = "numpy" if xp is None or is_numpy(xp) else name_of(xp)
        cache = self.__dict__.setdefault("_cache", {}).setdefault(name, {})
        blk = cache.get(b)
        if blk is None:
            blk = self.__dict__["_cache"].get("numpy", {}).get(b)
            if blk is None:
                blk = _block(
                    self.n_features,
                    self.embed_dim,
                    self.embedding_kind,
                    self.seed,
                    np.dtype(self.dtype).str,
                    b,
                )
            if name != "numpy":
                blk = asarray(blk, xp)
            if (len(cache) + 1) * self.embed_dim * BLOCK * np.dtype(self.dtype).itemsize <= (
                CACHE_BYTES
            ):
                cache[b] = blk
        return blk

    def blocks(self, xp: ModuleType | None = None) -> Iterator[tuple[int, Any]]:
        """Yield ``(first_feature, columns)`` for every block, in order (namespace ``xp``)."""
        for b in range(self.n_blocks):
            yield b * BLOCK, self.block(b, xp)

    def matrix(self, xp: ModuleType | None = None) -> Any:
        r""":math:`\Phi`, shape ``(embed_dim, n_features)`` (materialised; mind the memory)."""
        if xp is None or is_numpy(xp):
            return np.concatenate([blk for _, blk in self.blocks()], axis=1)
        return xp.concat([blk for _, blk in self.blocks(xp)], axis=1)

    def _xp_dtype(self, xp: ModuleType) -> Any:
        return xp.float32 if np.dtype(self.dtype) == np.float32 else xp.float64

    def columns(self, features: Any) -> Any:
        """Columns for an integer array of feature indices, shape ``(embed_dim, *features.shape)``.

        In the namespace of ``features`` (NumPy indices: the configured backend).
        """
        xp = evaluation_namespace(features)
        idx = to_numpy(features).astype(np.int64, copy=False)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_features):
            raise ValueError(f"features must be in [0, {self.n_features - 1}]")
        flat = idx.reshape(-1)
        shape = (self.embed_dim, *idx.shape)
        if flat.size == 0:
            return xp.zeros(shape, dtype=self._xp_dtype(xp))
        # gather block by block in block order, then put the columns back in the asked order
        order = np.argsort(flat // BLOCK, kind="stable")
        blocks, starts = np.unique(flat[order] // BLOCK, return_index=True)
        ends = np.append(starts[1:], flat.size)
        parts = [
            xp.take(self.block(int(bk), xp), asarray(flat[order[s0:s1]] - bk * BLOCK, xp), axis=1)
            for bk, s0, s1 in zip(blocks, starts, ends, strict=True)
        ]
        gathered = parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)
        inverse = np.empty_like(order)
        inverse[order] = np.arange(order.size)
        return xp.reshape(xp.take(gathered, asarray(inverse, xp), axis=1), shape)

    def embed(self, active: Any) -> Any:
        r""":math:`a = \Phi x` for a batch of sparse inputs.

        Parameters
        ----------
        active : int array, shape ``(n_samples, s)``
            Indices of the active features of each input (see :func:`sample_sparse`).

        Returns
        -------
        a : array, shape ``(n_samples, embed_dim)``, in the evaluation namespace
            (:func:`superposition.backend.evaluation_namespace` of ``active``).
        """
        active = check_active(active, self.n_features)
        xp = evaluation_namespace(active)
        return xp.matrix_transpose(xp.sum(self.columns(asarray(active, xp)), axis=2))

    def readout(self, a: Any) -> Any:
        r""":math:`\hat x = \Phi^\top a`, shape ``(n_samples, n_features)``, computed block by block.

        In the namespace of ``a`` (NumPy input: the configured backend).
        """
        xp = evaluation_namespace(a)
        a = xp.astype(asarray(a, xp), self._xp_dtype(xp))
        if len(a.shape) != 2 or a.shape[1] != self.embed_dim:
            raise ValueError(
                f"a must have shape (n_samples, {self.embed_dim}), got {tuple(a.shape)}"
            )
        out = xp.empty((a.shape[0], self.n_features), dtype=self._xp_dtype(xp))
        # BLAS is efficient on wide products: multiply by chunks of READOUT_CHUNK blocks at a time
        for first in range(0, self.n_blocks, READOUT_CHUNK):
            chunk = xp.concat(
                [
                    self.block(b, xp)
                    for b in range(first, min(first + READOUT_CHUNK, self.n_blocks))
                ],
                axis=1,
            )
            start = first * BLOCK
            out[:, start : start + chunk.shape[1]] = a @ chunk
        return out


def _block(m: int, d0: int, embedding_kind: str, seed: int, dtype: str, b: int) -> np.ndarray:
    n_cols = min(BLOCK, m - b * BLOCK)
    rng = np.random.default_rng((seed, b))
    if embedding_kind == "gaussian":
        cols = rng.standard_normal((d0, n_cols))
        cols /= np.linalg.norm(cols, axis=0, keepdims=True)
    else:
        cols = (rng.integers(0, 2, size=(d0, n_cols)) * 2.0 - 1.0) / np.sqrt(d0)
    cols = cols.astype(dtype, copy=False)
    cols.setflags(write=False)
    return cols


def sample_sparse(n_features: int, sparsity: int, n_samples: int, seed: object = 0) -> np.ndarray:
    """Random inputs with exactly ``sparsity`` active features each, chosen uniformly.

    Returns
    -------
    active : int64 array, shape ``(n_samples, sparsity)``
        Sorted, distinct feature indices per row.
    """
    m = check_int("n_features", n_features, low=1)
    s = check_sparsity(sparsity, m)
    k = check_int("n_samples", n_samples, low=1)
    rng = as_generator(seed)
    if s * 4 <= m:
        # rejection of rows with repeats: cheap when s << m
        out = rng.integers(0, m, size=(k, s))
        out.sort(axis=1)
        bad = (np.diff(out, axis=1) == 0).any(axis=1) if s > 1 else np.zeros(k, bool)
        while bad.any():
            redo = rng.integers(0, m, size=(int(bad.sum()), s))
            redo.sort(axis=1)
            out[bad] = redo
            bad = (np.diff(out, axis=1) == 0).any(axis=1)
        return out.astype(np.int64)
    keys = rng.random((k, m))
    return np.sort(np.argpartition(keys, s - 1, axis=1)[:, :s], axis=1).astype(np.int64)


def sample_feature_readouts(
    n_features: int,
    embed_dim: int,
    active: Any,
    seed: object = 0,
) -> Any:
    r"""The feature readouts :math:`z = \Phi^\top\Phi x` of a batch, drawn exactly in distribution, without :math:`\Phi`.

    For the ``"gaussian"`` embedding (i.i.d. uniform unit columns :math:`\varphi_k`) this draws
    the joint law of :math:`z_t = \Phi^\top\Phi x_t` for all inputs :math:`t` of the batch at
    once, as if from one random :math:`\Phi`, in :math:`O(mr + d_0 r^2)` time for the
    :math:`r \le Ks` features active in some input, where an :class:`Embedding` draws
    :math:`d_0 m` normals (:math:`6\cdot10^9` at :math:`m = 10^5, d_0 = 6\cdot10^4`). The
    result is **exact in distribution, not the bits of a seeded** :class:`Embedding`: the same
    law, other numbers. (The ``"sign"`` embedding is not rotation invariant; it has no such
    sampler.)

    Why it is exact. Let :math:`U` be the active features, :math:`q = \min(r, d_0)`, and
    :math:`\varphi_U = QR` (:math:`Q` ``(d0, q)`` orthonormal, :math:`R` ``(q, r)``). Every
    :math:`\Phi x_t = \sum_{j\in A_t}\varphi_j = Q R c_t` lies in the span of :math:`Q`, so
    :math:`z_{t,k} = (Q^\top\varphi_k)\cdot(Rc_t)`. For :math:`k \in U`,
    :math:`Q^\top\varphi_k = R_{:,k}`. For :math:`k \notin U`, :math:`\varphi_k` is uniform
    on the sphere and independent of :math:`\varphi_U`, so by rotation invariance
    :math:`Q^\top\varphi_k` is distributed as the first :math:`q` coordinates of a uniform
    unit vector of :math:`\mathbb R^{d_0}`: :math:`g/\sqrt{\|g\|^2 + \chi^2_{d_0-q}}` with
    :math:`g \sim N(0, I_q)`, independently for every :math:`k`. The test
    ``tests/test_embedding.py`` compares the law with :class:`Embedding`'s.

    Parameters
    ----------
    n_features, embed_dim : int
        :math:`m` and :math:`d_0`.
    active : int array of shape ``(K, s)``, or a list of such arrays
        Active features of each input (distinct). A list holds groups of inputs with different
        numbers of active features, all read through the same :math:`\Phi`.
    seed : int, SeedSequence or Generator

    Returns
    -------
    z : float64 NumPy array of shape ``(K, n_features)``, or a list of them (one per group)
        Move it with :func:`superposition.backend.asarray`.
    """
    m = check_int("n_features", n_features, low=1)
    d0 = check_int("embed_dim", embed_dim, low=1)
    groups = active if isinstance(active, list) else [active]
    acts = [to_numpy(check_active(g, m)) for g in groups]
    rng = as_generator(seed)
    flat = np.concatenate([g.reshape(-1) for g in acts]) if acts else np.zeros(0, np.int64)
    used, inverse = np.unique(flat, return_inverse=True)
    r = used.size
    out = [np.zeros((g.shape[0], m)) for g in acts]
    if r:
        cols = rng.standard_normal((d0, r))
        cols /= np.linalg.norm(cols, axis=0, keepdims=True)  # φ_U, as Embedding draws them
        q = min(r, d0)
        R = np.linalg.qr(cols, mode="r")[:q]  # (q, r): φ_U = Q R
        g = rng.standard_normal((m, q))
        rest = rng.chisquare(d0 - q, size=m) if d0 > q else np.zeros(m)
        proj = g / np.sqrt((g * g).sum(axis=1) + rest)[:, None]  # (m, q): Qᵀφ_k, k not in U
        proj[used] = R.T
        start = 0
        for j, grp in enumerate(acts):
            k_g, s_g = grp.shape
            inputs = np.zeros((r, k_g))  # c_t: the used features input t holds
            idx = inverse[start : start + k_g * s_g].reshape(k_g, s_g)
            np.add.at(inputs, (idx, np.arange(k_g)[:, None]), 1.0)
            out[j] = np.ascontiguousarray((proj @ (R @ inputs)).T)
            start += k_g * s_g
    return out if isinstance(active, list) else out[0]


def to_dense(active: np.ndarray, n_features: int) -> np.ndarray:
    """Boolean-valued float matrix ``x`` of shape ``(n_samples, n_features)`` from active indices."""
    active = check_active(active, n_features)
    x = np.zeros((active.shape[0], n_features))
    np.put_along_axis(x, active, 1.0, axis=1)
    return x


def coherence(phi: Embedding | Any) -> float:
    r"""Mutual coherence :math:`\mu = \max_{i \ne j} |\varphi_i \cdot \varphi_j|`.

    Computed block by block (memory ``O(BLOCK²)``, nothing of size ``m²`` is stored), in the
    evaluation namespace.
    """
    if _n(phi) < 2:
        return 0.0
    blocks, xp = _blocks_of(phi)
    best = 0.0
    for i, (_, b1) in enumerate(blocks):
        for _, b2 in blocks[i:]:
            g = xp.abs(xp.matrix_transpose(b1) @ b2)
            if b1 is b2:
                n = g.shape[0]
                g = xp.where(xp.eye(n, dtype=xp.bool), xp.zeros_like(g), g)
            best = max(best, float(xp.max(g)))
    return best


def overlaps(phi: Embedding | Any, max_pairs: int | None = None, seed: object = 0) -> Any:
    r"""The off-diagonal overlaps :math:`\varphi_i\cdot\varphi_j`, :math:`i<j`.

    All :math:`\binom m2` of them, or, when ``max_pairs`` is smaller, a uniform sample of
    ``max_pairs`` distinct pairs (drawn with NumPy from ``seed``), in the evaluation namespace.
    """
    m = _n(phi)
    n_pairs = m * (m - 1) // 2
    if max_pairs is not None and check_int("max_pairs", max_pairs, low=1) < n_pairs:
        rng = as_generator(seed)
        flat = np.sort(rng.choice(n_pairs, size=max_pairs, replace=False))
        i, j = _pair_from_flat(flat, m)
        if isinstance(phi, Embedding):
            ci, cj = phi.columns(i), phi.columns(j)
        else:
            xp = evaluation_namespace(phi)
            mat = asarray(phi, xp)
            ci, cj = xp.take(mat, asarray(i, xp), axis=1), xp.take(mat, asarray(j, xp), axis=1)
        return namespace(ci).sum(ci * cj, axis=0)
    blocks, xp = _blocks_of(phi)
    parts = []
    for i, (s1, b1) in enumerate(blocks):
        for s2, b2 in blocks[i:]:
            g = xp.matrix_transpose(b1) @ b2
            if s1 == s2:
                n = g.shape[0]
                upper = xp.arange(n)[None, :] > xp.arange(n)[:, None]
                parts.append(g[upper])
            else:
                parts.append(xp.reshape(g, (-1,)))
    return xp.concat(parts) if parts else xp.zeros(0)


def max_readout_error(phi: Embedding | Any, active: Any) -> float:
    """The worst readout error over a batch: ``readout_errors(phi, active).max()``."""
    err = readout_errors(phi, active)
    return float(namespace(err).max(err))


def readout_errors(phi: Embedding | Any, active: Any) -> Any:
    r"""Per-input worst readout error :math:`\max_k |(\Phi^\top \Phi x)_k - x_k|`.

    Parameters
    ----------
    phi : Embedding or array ``(d0, m)``
    active : int array ``(n_samples, s)``

    Returns
    -------
    err : array ``(n_samples,)``, in the evaluation namespace
        Computed for at most :data:`ERROR_CHUNK` elements of :math:`\hat x` at a time, so the
        memory does not grow with ``n_samples``. For an :class:`Embedding` the columns of
        :math:`\Phi` are the outer loop (:data:`READOUT_CHUNK` blocks at a time, each generated
        once for all inputs, however many features).
    """
    m = _n(phi)
    active = check_active(active, m)
    if isinstance(phi, Embedding):
        return _embedding_readout_errors(phi, active)
    xp = evaluation_namespace(phi, active)
    mat = asarray(phi, xp)
    act_all = asarray(active, xp)
    k = act_all.shape[0]
    step = max(1, ERROR_CHUNK // max(m, 1))
    parts = []
    for k0 in range(0, k, step):
        act = act_all[k0 : min(k0 + step, k), :]
        flat = xp.reshape(act, (-1,))
        cols = xp.reshape(xp.take(mat, flat, axis=1), (mat.shape[0], *act.shape))
        xhat = xp.matrix_transpose(xp.sum(cols, axis=2)) @ mat
        parts.append(xp.max(xp.abs(xhat - indicator(act, m, xhat.dtype)), axis=1))
    return parts[0] if len(parts) == 1 else xp.concat(parts)


def _embedding_readout_errors(phi: Embedding, active: Any) -> Any:
    """:func:`readout_errors` of an :class:`Embedding`: chunks of its blocks outside, inputs inside."""
    m = phi.n_features
    xp = evaluation_namespace(active)
    act_all = asarray(active, xp)
    a_all = phi.embed(act_all)  # (K, d0): only the active columns
    dtype = phi._xp_dtype(xp)
    a_all = xp.astype(a_all, dtype)
    k = act_all.shape[0]
    # the groups of inputs of the dense case (ERROR_CHUNK // m), so every product, and every
    # error, is the one Embedding.readout of that group computes
    step = max(1, ERROR_CHUNK // max(m, 1))
    worst = xp.zeros(k, dtype=dtype)
    for first in range(0, phi.n_blocks, READOUT_CHUNK):
        last = min(first + READOUT_CHUNK, phi.n_blocks)
        chunk = xp.concat([phi.block(b, xp) for b in range(first, last)], axis=1)
        f0, f1 = first * BLOCK, min(last * BLOCK, m)
        parts = []
        for k0 in range(0, k, step):
            k1 = min(k0 + step, k)
            xhat = a_all[k0:k1, :] @ chunk
            local = act_all[k0:k1, :] - f0  # active features inside [f0, f1) as local columns
            inside = (local >= 0) & (local < f1 - f0)
            x = indicator(xp.where(inside, local, -1), f1 - f0, dtype)
            parts.append(xp.max(xp.abs(xhat - x), axis=1))
        worst = xp.maximum(worst, parts[0] if len(parts) == 1 else xp.concat(parts))
    return worst


def indicator(active: Any, n_features: int, dtype: Any = None) -> Any:
    """The 0/1 matrix ``x`` ``(n_samples, n_features)`` of active indices, in their namespace."""
    xp = namespace(active)
    dtype = xp.float64 if dtype is None else dtype
    x = xp.zeros((active.shape[0], n_features), dtype=dtype)
    cols = xp.arange(n_features)[None, :]
    for j in range(active.shape[1]):
        x = x + xp.astype(cols == active[:, j : j + 1], dtype)
    return x


def _blocks_of(phi: Embedding | Any) -> tuple[list[tuple[int, Any]], ModuleType]:
    if isinstance(phi, Embedding):
        xp = evaluation_namespace()
        return list(phi.blocks(xp)), xp
    xp = evaluation_namespace(phi)
    mat = asarray(phi, xp)
    n = mat.shape[1]
    return [(s, mat[:, s : min(s + BLOCK, n)]) for s in range(0, n, BLOCK)], xp


def _n(phi: Embedding | Any) -> int:
    return phi.n_features if isinstance(phi, Embedding) else int(phi.shape[1])


def _pair_from_flat(flat: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Map flat indices of the strict upper triangle (row-major) to ``(i, j)``."""
    # row i starts at i*m - i*(i+1)/2
    i = (m - 2 - np.floor(np.sqrt(-8 * flat + 4 * m * (m - 1) - 7) / 2.0 - 0.5)).astype(np.int64)
    start = i * m - i * (i + 1) // 2
    j = flat - start + i + 1
    return i, j.astype(np.int64)


def readout_error_matrix(phi: Any, x: Any) -> Any:
    r"""Element-wise readout error :math:`|\Phi^\top\Phi x - x|` for dense inputs, any backend.

    Runs through the array API: ``phi`` and ``x`` may be NumPy, CuPy or any other compliant
    arrays (of the same namespace), and the result is of that namespace.

    Parameters
    ----------
    phi : array ``(d0, m)``
    x : array ``(n_samples, m)``, boolean-valued floats

    Returns
    -------
    err : array ``(n_samples, m)``
    """
    xp = namespace(phi, x)
    if phi.ndim != 2 or x.ndim != 2 or x.shape[1] != phi.shape[1]:
        raise ValueError(f"x must have shape (n_samples, {phi.shape[-1]}), got {tuple(x.shape)}")
    return xp.abs(xp.matmul(xp.matmul(x, xp.permute_dims(phi, (1, 0))), phi) - x)
