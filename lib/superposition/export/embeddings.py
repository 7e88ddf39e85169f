r"""Random embeddings on disk: :math:`\Phi` or :math:`\Psi` as a tensor, as the rule that draws it, or both.

Shared by the kinds whose networks read or write through random embeddings (superposed U-AND,
deep corrected circuits). The sidecar always records the rule (generator, kind, seed, block
size) and a SHA-256 of the bits; the tensor is stored too up to
:data:`EXPLICIT_EMBEDDING_ENTRIES` entries. Read back, either form is an
:class:`~superposition.embedding.Embedding` with the construction's own arithmetic:
:class:`StoredEmbedding` for the tensor, the regenerated embedding (checked) for the rule.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .._validate import check_int
from ..backend import asarray, is_numpy, name_of
from ..embedding import BLOCK, Embedding

EXPLICIT_EMBEDDING_ENTRIES = 2**22
r"""Random embeddings (:math:`\Phi`, :math:`\Psi`) with at most this many entries are stored as
a tensor; larger ones only as the rule that regenerates them (with a SHA-256 that checks the
regenerated bits)."""

EMBEDDING_RULE = (
    "column block b (features b*block ... b*block + block - 1, fewer in the last) is drawn "
    "from numpy.random.default_rng((seed, b)): embedding_kind 'gaussian': standard_normal((dim, w)), "
    "each column divided by its Euclidean norm; embedding_kind 'sign': (integers(0, 2, size=(dim, w)) "
    "* 2.0 - 1.0) / sqrt(dim); computed in float64, then cast to dtype "
    "(superposition.embedding.Embedding(n, dim, embedding_kind=embedding_kind, seed=seed, dtype=dtype))"
)
"""The rule the sidecar records for a random embedding (in words)."""


@dataclass(frozen=True, eq=False)
class StoredEmbedding(Embedding):
    r"""An :class:`~superposition.embedding.Embedding` read from a file.

    Its column blocks are slices of the stored matrix instead of draws from the seed; embed,
    readout, columns and blocks are :class:`~superposition.embedding.Embedding`'s own, so a
    loaded network computes with a stored :math:`\Phi` exactly what the construction computes
    with the drawn one. ``embedding_kind`` and ``seed`` are those the sidecar records.

    Attributes
    ----------
    values : float array ``(embed_dim, n_features)``
        The stored matrix (float32 or float64, as ``dtype``).
    """

    values: np.ndarray = field(default=None, repr=False, kw_only=True)  # type: ignore[assignment]

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __post_init__(self) -> None:
        super().__post_init__()
        v = self.values
        shape = (self.embed_dim, self.n_features)
        if not isinstance(v, np.ndarray) or v.shape != shape or v.dtype != np.dtype(self.dtype):
            got = f"{v.dtype} {v.shape}" if isinstance(v, np.ndarray) else type(v).__name__
            raise ValueError(f"values must be a {np.dtype(self.dtype)} array {shape}, got {got}")

    @classmethod
    def from_matrix(
        cls, matrix: np.ndarray, *, embedding_kind: str = "gaussian", seed: int = 0
    ) -> StoredEmbedding:
        """The embedding whose columns are those of ``matrix`` ``(embed_dim, n_features)``."""
        m = np.asarray(matrix)
        return cls(
            m.shape[1],
            m.shape[0],
            embedding_kind=embedding_kind,
            seed=seed,
            dtype=m.dtype.type,
            values=m,
        )

    def block(self, b: int, xp: ModuleType | None = None) -> Any:
        """Columns ``b*BLOCK : (b+1)*BLOCK`` of the stored matrix (moved to ``xp`` once, cached)."""
        check_int("b", b, low=0, high=self.n_blocks - 1)
        blk = self.values[:, b * BLOCK : (b + 1) * BLOCK]
        if xp is None or is_numpy(xp):
            return blk
        cache = self.__dict__.setdefault("_moved", {})
        key = (name_of(xp), b)
        if key not in cache:
            cache[key] = asarray(blk, xp)
        return cache[key]


def blocks_sha256(emb: Embedding) -> str:
    """SHA-256 of the first and the last column block of an embedding (C-order bytes).

    Enough to tell another random stream from the exporter's, at the cost of two blocks
    (hashing every block would cost as much as generating a huge rule-only embedding).
    """
    h = hashlib.sha256()
    for b in sorted({0, emb.n_blocks - 1}):
        h.update(np.ascontiguousarray(emb.block(b)).tobytes())
    return h.hexdigest()


def stores_tensor(entries: int) -> bool:
    """Whether embeddings of ``entries`` entries in all are stored as tensors (:data:`EXPLICIT_EMBEDDING_ENTRIES`)."""
    return entries <= EXPLICIT_EMBEDDING_ENTRIES


def embedding_arrays(
    emb: Embedding, name: str, *, note: str, store: bool | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A random embedding as its sidecar entry (the rule, the SHA-256) and, if stored, its tensor.

    ``store``: keep the tensor (named ``name``); ``None``: when it has at most
    :data:`EXPLICIT_EMBEDDING_ENTRIES` entries.
    """
    d0, n = emb.embed_dim, emb.n_features
    meta: dict[str, Any] = {
        "storage": "random",
        "shape": [d0, n],
        "dtype": np.dtype(emb.dtype).name,
        "note": note,
        "rule": {
            "generator": "superposition.embedding.Embedding",
            "embedding_kind": emb.embedding_kind,
            "seed": int(emb.seed),
            "block": BLOCK,
            "formula": EMBEDDING_RULE,
        },
        "sha256": blocks_sha256(emb),
        "sha256_of": "the bytes (C order, little-endian) of column block 0, then of the last "
        "column block if there is more than one",
    }
    if store is None:
        store = stores_tensor(d0 * n)
    if not store:
        return {}, meta
    meta["tensor"] = name
    return {name: emb.matrix()}, meta


def embedding_from_meta(
    meta: dict[str, Any], tensors: dict[str, np.ndarray], key: str
) -> Embedding:
    """The embedding a sidecar entry describes: its stored tensor, or regenerated by its rule.

    Raises ``ValueError`` (naming ``key``) when the rule draws blocks of another size than this
    library, or regenerates other bits than the recorded SHA-256.
    """
    rule = meta["rule"]
    if "tensor" in meta:
        return StoredEmbedding.from_matrix(
            tensors[meta["tensor"]], embedding_kind=rule["embedding_kind"], seed=rule["seed"]
        )
    if rule.get("block") != BLOCK:
        raise ValueError(
            f"{key}: rule with blocks of {rule.get('block')} columns; this library draws {BLOCK}"
        )
    d0, n = meta["shape"]
    emb = Embedding(
        n,
        d0,
        embedding_kind=rule["embedding_kind"],
        seed=rule["seed"],
        dtype=np.dtype(meta["dtype"]).type,
    )
    if blocks_sha256(emb) != meta["sha256"]:
        raise ValueError(
            f"{key}: regenerated by its rule, it has other bits than the exported one (SHA-256 "
            f"{meta['sha256'][:16]}…); this NumPy {np.__version__} draws another random stream "
            "than the exporter's: export with the tensor stored (a smaller network) or use the "
            "exporter's NumPy"
        )
    return emb
