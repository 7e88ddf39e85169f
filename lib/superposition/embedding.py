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
from typing import Any

import numpy as np

from ._validate import as_generator, check_active, check_choice, check_int, check_sparsity
from .backend import namespace

KINDS = ("gaussian", "sign")
BLOCK = 256
"""Features per seeded block of columns (part of the definition of an embedding's bits)."""
READOUT_CHUNK = 32
"""Blocks per matrix product in :meth:`Embedding.readout` (bounds memory, not results)."""
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
    kind : {"gaussian", "sign"}
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
    kind: str = "gaussian"
    seed: int = 0
    dtype: type = np.float64

    def __post_init__(self) -> None:
        check_int("n_features", self.n_features, low=1)
        check_int("embed_dim", self.embed_dim, low=1)
        check_choice("kind", self.kind, KINDS)
        check_int("seed", self.seed, low=0)
        if np.dtype(self.dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {np.dtype(self.dtype)}")

    @property
    def n_blocks(self) -> int:
        return -(-self.n_features // BLOCK)

    def block(self, b: int) -> np.ndarray:
        r"""Columns ``b*BLOCK : (b+1)*BLOCK`` of :math:`\Phi`, shape ``(embed_dim, ≤ BLOCK)``, read-only.

        Blocks are kept in a per-embedding cache while it holds at most :data:`CACHE_BYTES`;
        beyond that they are regenerated from their seeds on every use.
        """
        check_int("b", b, low=0, high=self.n_blocks - 1)
        cache = self.__dict__.setdefault("_cache", {})
        blk = cache.get(b)
        if blk is None:
            blk = _block(
                self.n_features, self.embed_dim, self.kind, self.seed, np.dtype(self.dtype).str, b
            )
            if (len(cache) + 1) * blk.nbytes <= CACHE_BYTES:
                cache[b] = blk
        return blk

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_feature, columns)`` for every block, in order."""
        for b in range(self.n_blocks):
            yield b * BLOCK, self.block(b)

    def matrix(self) -> np.ndarray:
        r""":math:`\Phi`, shape ``(embed_dim, n_features)`` (materialised; mind the memory)."""
        return np.concatenate([blk for _, blk in self.blocks()], axis=1)

    def columns(self, features: np.ndarray) -> np.ndarray:
        """Columns for an integer array of feature indices, shape ``(embed_dim, *features.shape)``."""
        f = np.asarray(features)
        if f.size and (f.min() < 0 or f.max() >= self.n_features):
            raise ValueError(f"features must be in [0, {self.n_features - 1}]")
        flat = f.reshape(-1)
        out = np.empty((self.embed_dim, flat.size), dtype=self.dtype)
        blocks_needed, where = np.unique(flat // BLOCK, return_inverse=True)
        for i, b in enumerate(blocks_needed):
            sel = where == i
            out[:, sel] = self.block(int(b))[:, flat[sel] - b * BLOCK]
        return out.reshape((self.embed_dim, *f.shape))

    def embed(self, active: np.ndarray) -> np.ndarray:
        r""":math:`a = \Phi x` for a batch of sparse inputs.

        Parameters
        ----------
        active : int array, shape ``(n_inputs, s)``
            Indices of the active features of each input (see :func:`sample_sparse`).

        Returns
        -------
        a : array, shape ``(n_inputs, embed_dim)``
        """
        active = check_active(active, self.n_features)
        return self.columns(active).sum(axis=2).T.copy()

    def readout(self, a: np.ndarray) -> np.ndarray:
        r""":math:`\hat x = \Phi^\top a`, shape ``(n_inputs, n_features)``, computed block by block."""
        a = np.asarray(a, dtype=self.dtype)
        if a.ndim != 2 or a.shape[1] != self.embed_dim:
            raise ValueError(f"a must have shape (n_inputs, {self.embed_dim}), got {a.shape}")
        out = np.empty((a.shape[0], self.n_features), dtype=self.dtype)
        # BLAS is efficient on wide products: multiply by chunks of READOUT_CHUNK blocks at a time
        for first in range(0, self.n_blocks, READOUT_CHUNK):
            chunk = np.concatenate(
                [self.block(b) for b in range(first, min(first + READOUT_CHUNK, self.n_blocks))],
                axis=1,
            )
            start = first * BLOCK
            out[:, start : start + chunk.shape[1]] = a @ chunk
        return out


def _block(m: int, d0: int, kind: str, seed: int, dtype: str, b: int) -> np.ndarray:
    width = min(BLOCK, m - b * BLOCK)
    rng = np.random.default_rng((seed, b))
    if kind == "gaussian":
        cols = rng.standard_normal((d0, width))
        cols /= np.linalg.norm(cols, axis=0, keepdims=True)
    else:
        cols = (rng.integers(0, 2, size=(d0, width)) * 2.0 - 1.0) / np.sqrt(d0)
    cols = cols.astype(dtype, copy=False)
    cols.setflags(write=False)
    return cols


def sample_sparse(n_features: int, sparsity: int, n_inputs: int, seed: object = 0) -> np.ndarray:
    """Random inputs with exactly ``sparsity`` active features each, chosen uniformly.

    Returns
    -------
    active : int64 array, shape ``(n_inputs, sparsity)``
        Sorted, distinct feature indices per row.
    """
    m = check_int("n_features", n_features, low=1)
    s = check_sparsity(sparsity, m)
    k = check_int("n_inputs", n_inputs, low=1)
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


def to_dense(active: np.ndarray, n_features: int) -> np.ndarray:
    """Boolean-valued float matrix ``x`` of shape ``(n_inputs, n_features)`` from active indices."""
    active = check_active(active, n_features)
    x = np.zeros((active.shape[0], n_features))
    np.put_along_axis(x, active, 1.0, axis=1)
    return x


def coherence(phi: Embedding | np.ndarray) -> float:
    r"""Mutual coherence :math:`\mu = \max_{i \ne j} |\varphi_i \cdot \varphi_j|`.

    Computed block by block (memory ``O(BLOCK²)``, nothing of size ``m²`` is stored).
    """
    emb = phi if isinstance(phi, Embedding) else None
    if _n(phi) < 2:
        return 0.0
    if emb is None:
        mat = np.asarray(phi)
        blocks = [(s, mat[:, s : s + BLOCK]) for s in range(0, mat.shape[1], BLOCK)]
    else:
        blocks = list(emb.blocks())
    best = 0.0
    for i, (_, b1) in enumerate(blocks):
        for _, b2 in blocks[i:]:
            g = np.abs(b1.T @ b2)
            if b1 is b2:
                np.fill_diagonal(g, 0.0)
            best = max(best, float(g.max()))
    return best


def overlaps(
    phi: Embedding | np.ndarray, max_pairs: int | None = None, seed: object = 0
) -> np.ndarray:
    r"""The off-diagonal overlaps :math:`\varphi_i\cdot\varphi_j`, :math:`i<j`.

    All :math:`\binom m2` of them, or, when ``max_pairs`` is smaller, a uniform sample of
    ``max_pairs`` distinct pairs.
    """
    m = _n(phi)
    n_pairs = m * (m - 1) // 2
    if max_pairs is not None and check_int("max_pairs", max_pairs, low=1) < n_pairs:
        rng = as_generator(seed)
        flat = np.sort(rng.choice(n_pairs, size=max_pairs, replace=False))
        i, j = _pair_from_flat(flat, m)
        cols = phi.columns if isinstance(phi, Embedding) else (lambda f: phi[:, f])
        return np.einsum("dk,dk->k", cols(i), cols(j))
    if isinstance(phi, Embedding):
        parts = []
        for s1, b1 in phi.blocks():
            for s2, b2 in phi.blocks():
                if s2 < s1:
                    continue
                g = b1.T @ b2
                if s1 == s2:
                    parts.append(g[np.triu_indices(g.shape[0], 1)])
                else:
                    parts.append(g.ravel())
        return np.concatenate(parts) if parts else np.empty(0)
    g = np.asarray(phi).T @ np.asarray(phi)
    return g[np.triu_indices(m, 1)]


def max_readout_error(phi: Embedding | np.ndarray, active: np.ndarray) -> float:
    """The worst readout error over a batch: ``readout_errors(phi, active).max()``."""
    return float(readout_errors(phi, active).max())


def readout_errors(phi: Embedding | np.ndarray, active: np.ndarray) -> np.ndarray:
    r"""Per-input worst readout error :math:`\max_k |(\Phi^\top \Phi x)_k - x_k|`.

    Parameters
    ----------
    phi : Embedding or array ``(d0, m)``
    active : int array ``(n_inputs, s)``

    Returns
    -------
    err : array ``(n_inputs,)``
    """
    emb = phi if isinstance(phi, Embedding) else None
    m = _n(phi)
    active = check_active(active, m)
    if emb is None:
        mat = np.asarray(phi)
        a = mat[:, active].sum(axis=2).T
        xhat = a @ mat
    else:
        xhat = emb.readout(emb.embed(active))
    rows = np.arange(active.shape[0])[:, None]
    xhat[rows, active] -= 1.0
    return np.abs(xhat).max(axis=1)


def _n(phi: Embedding | np.ndarray) -> int:
    return phi.n_features if isinstance(phi, Embedding) else int(np.asarray(phi).shape[1])


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
    x : array ``(n_inputs, m)``, boolean-valued floats

    Returns
    -------
    err : array ``(n_inputs, m)``
    """
    xp = namespace(phi, x)
    if phi.ndim != 2 or x.ndim != 2 or x.shape[1] != phi.shape[1]:
        raise ValueError(f"x must have shape (n_inputs, {phi.shape[-1]}), got {tuple(x.shape)}")
    return xp.abs(xp.matmul(xp.matmul(x, xp.permute_dims(phi, (1, 0))), phi) - x)
