r"""Peak-memory estimates of the constructions, and a check against the machine's free memory.

Every command of the ``superposition`` tool estimates the memory it will hold *before* it
allocates anything and refuses, with a one-line message, a request that would not fit
(:func:`check_fits`). The estimates are sums over the arrays each construction holds at its
peak, derived from their shapes (``W: (d, m)`` float64 is :math:`8dm` bytes); temporaries that
the library bounds by a budget (the output tiles of :func:`superposition.evaluate_uand`, the
block cache of :class:`superposition.Embedding`) count at that budget. They are estimates of
the order of magnitude, good to a small factor, meant to tell 2 GiB from 2 TiB before the
first allocation; they are not a guarantee that a run which passes the check fits.

All sizes are in bytes; :data:`GiB` converts.
"""

from __future__ import annotations

import os
from math import comb

from ._validate import check_choice, check_int, check_real
from .embedding import ERROR_CHUNK

__all__ = [
    "GiB",
    "available_bytes",
    "check_fits",
    "circuit_bytes",
    "deep_bytes",
    "embed_bytes",
    "pair_table_bytes",
    "superposed_bytes",
    "trained_bytes",
    "uand_bytes",
    "width_search_bytes",
]

GiB = 2**30
"""Bytes in a gibibyte."""

TILE_BUDGET = 3 * 2**27
"""Working set of one output tile of the exact evaluators: a few arrays of
:data:`superposition.uand.TILE_BYTES` (128 MiB) each."""

EMBEDDING_CACHE = 2**29
"""Blocks an :class:`~superposition.Embedding` may keep (``embedding.CACHE_BYTES``, 512 MiB)."""

_F64, _F32 = 8, 4


MEMINFO = "/proc/meminfo"
"""Where Linux reports ``MemAvailable``."""


def available_bytes() -> int | None:
    """Memory available to a new allocation on this machine, in bytes, or ``None`` if unknown.

    Reads ``MemAvailable`` from ``/proc/meminfo`` (Linux: free memory plus reclaimable caches);
    elsewhere the free physical pages from ``os.sysconf`` (``SC_AVPHYS_PAGES`` times
    ``SC_PAGE_SIZE``). ``None`` when neither is available (then nothing is refused).
    """
    try:
        with open(MEMINFO, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None
    if pages <= 0 or size <= 0:
        return None
    return int(pages) * int(size)


def check_fits(nbytes: float, what: str, *, available: int | None = None) -> None:
    """Raise ``ValueError`` if ``nbytes`` exceed the available memory.

    Parameters
    ----------
    nbytes : float
        Estimated peak memory of the request.
    what : str
        What the memory is for, named in the message (e.g. ``"uand with features=10**8"``).
    available : int, optional
        Available bytes; defaults to :func:`available_bytes` (nothing is refused when unknown).

    Raises
    ------
    ValueError
        ``"<what> needs about X GiB of memory, more than the Y GiB available"``.
    """
    avail = available_bytes() if available is None else available
    if avail is not None and nbytes > avail:
        raise ValueError(
            f"{what} needs about {nbytes / GiB:.3g} GiB of memory, more than the "
            f"{avail / GiB:.3g} GiB available on this machine"
        )


# ---------------------------------------------------------------- per construction


def _bernoulli_layer(n_features: int, neurons: int, p: float) -> float:
    """Building a Bernoulli ``W: (d, m)``: its :class:`superposition.kernels.Wiring` (int32
    neuron lists per feature, int64 pointers) and, while :func:`superposition.kernels.sample_wiring`
    draws it, about three int64 temporaries per one of a block of at most ``2**22`` ones
    (the geometric gaps, their running sum, the column of each)."""
    p = check_real("p", p, low=0.0, high=1.0, low_open=True)
    nnz = float(neurons) * n_features * p
    return _F32 * nnz + _F64 * (n_features + 1) + 3 * _F64 * min(nnz, 2**22)


def _bernoulli_supports(n_features: int, neurons: int, p: float) -> float:
    """The transpose an exact evaluation builds once (the features of each neuron): int32
    indices and pointers kept, and three int64 temporaries per one while it is sorted."""
    nnz = float(neurons) * n_features * p
    return _F32 * nnz + _F64 * (neurons + 1) + 3 * _F64 * nnz


def uand_bytes(
    n_features: int,
    neurons: int,
    n_samples: int,
    *,
    weights: str = "bernoulli",
    p: float = 1.0,
    arity: int = 2,
) -> float:
    r"""Peak bytes of building a basis-aligned U-AND layer and evaluating it exactly.

    Bernoulli (``p`` the resolved connection probability): :math:`W` ``(d, m)`` with
    :math:`dmp` ones in CSR and CSC (16 bytes a one each), the evaluation's length-:math:`m`
    vectors per input (about six float64) and one output tile. Rademacher and Gaussian:
    dense float64 :math:`W` and :math:`\mathrm{sgn}(W)` ``(d, m)``, :math:`16dm`, plus the tile.
    In both the activations ``(K, d)`` float64, twice.
    """
    m = check_int("n_features", n_features, low=1)
    d = check_int("neurons", neurons, low=1)
    k = check_int("n_samples", n_samples, low=1)
    check_int("arity", arity, low=2)
    w = check_choice("weights", weights, ("bernoulli", "rademacher", "gaussian"))
    layer = (
        _bernoulli_layer(m, d, p) + _bernoulli_supports(m, d, p)
        if w == "bernoulli"
        else 2 * _F64 * d * m
    )
    return layer + 6 * _F64 * m + 2 * _F64 * k * d + TILE_BUDGET


def superposed_bytes(
    n_features: int,
    neurons: int,
    embed_dim: int,
    n_samples: int,
    *,
    weights: str = "bernoulli",
    p: float = 1.0,
    arity: int = 2,
    out_dim: int | None = None,
) -> float:
    r"""Peak bytes of a U-AND layer reading its inputs from superposition, evaluated exactly.

    The layer as in :func:`uand_bytes`, the readout :math:`\Phi^\top\Phi x` ``(K, m)`` float64
    (twice) and the embedding's block cache. With arity 2 the per-input worst errors and the
    output embedding are computed too (:func:`superposition.superposed.max_errors`): a dense
    float32 copy of :math:`W` ``(d, m)``, three float32 ``(m, m)`` matrices, every input's
    :math:`\binom m2` outputs in float32, and the output embedding's block cache
    (``out_dim`` defaults to ``neurons``).
    """
    m = check_int("n_features", n_features, low=1)
    d = check_int("neurons", neurons, low=1)
    d0 = check_int("embed_dim", embed_dim, low=1)
    k = check_int("n_samples", n_samples, low=1)
    n = check_int("arity", arity, low=2)
    total = uand_bytes(m, d, k, weights=weights, p=p, arity=n)
    total += 2 * _F64 * k * m + min(_F64 * d0 * m, EMBEDDING_CACHE)
    if n == 2:
        pairs = comb(m, 2)
        dout = d if out_dim is None else check_int("out_dim", out_dim, low=1)
        total += _F32 * d * m + 3 * _F32 * m * m + _F32 * k * pairs
        total += min(_F32 * dout * pairs, EMBEDDING_CACHE) + TILE_BUDGET
    return total


def width_search_bytes(
    n_features: int, neurons: int, embed_dim: int, n_samples: int, *, p: float | None = None
) -> float:
    r"""Peak bytes of one trial of the minimal-neurons search at ``neurons`` (the smallest tried).

    Sign-symmetric weights (``p=None``): :math:`W` as float64 and float32 ``(d, m)``, the Gram
    tiles of :func:`superposition.kernels.sign_pair_errors`, the readouts and the embedding
    cache. Bernoulli weights at connection probability ``p``: the wiring in compressed columns
    and rows (:math:`2pdm` int32 indices), the 0/1 columns of one neuron's support (float32
    :math:`d \times pm`, about twice for the GEMM that counts its pairs; the walk's packed
    rows take an eighth of a byte matrix of that shape), four 8-byte
    :math:`(pm)^2` arrays (its pair counts, by the GEMM or the sparse count, and their
    triangle indices), the readouts and the embedding cache. Not the :math:`m \times m` pair
    table (:func:`pair_table_bytes`): :func:`superposition.kernels.bernoulli_worst_errors`
    builds it only where it fits in the memory then available, and walks otherwise.
    """
    m = check_int("n_features", n_features, low=1)
    d = check_int("neurons", neurons, low=1)
    d0 = check_int("embed_dim", embed_dim, low=1)
    k = check_int("n_samples", n_samples, low=1)
    rest = 2 * _F64 * k * m + min(_F64 * d0 * m, EMBEDDING_CACHE)
    if p is None:
        return (_F64 + _F32) * d * m + TILE_BUDGET + rest
    q = check_real("p", p, low=0.0, high=1.0)
    support = q * m + 4 * (q * m * (1 - q)) ** 0.5 + 1  # a neuron's support, a few std above p m
    return (
        2 * 4 * q * d * m
        + 2 * _F64 * (d + m)
        + 2 * _F32 * d * support
        + 4 * _F64 * support**2
        + rest
    )


def pair_table_bytes(n_features: int) -> float:
    r"""Bytes of the pattern-0 pair table of a Bernoulli layer with ``n_features`` features.

    What :func:`superposition.kernels.bernoulli_worst_errors` holds when it reads pattern 0
    from a table: the pair counts :math:`|\Gamma(k, l)|` (float32 :math:`m \times m`), one
    input's outputs (float64 :math:`m \times m`) and a block of 0/1 rows of :math:`W` while the
    counts are built (float32, :math:`\max(256m, 2^{23})`). At :math:`m = 30{,}000`: 10.1 GiB.
    """
    m = check_int("n_features", n_features, low=1)
    return (_F64 + _F32) * m * m + _F32 * max(256 * m, 2**23)


def trained_bytes(n_features: int, neurons: int, batch: int, *, arity: int = 2) -> float:
    r"""Peak bytes of training a U-AND network with Adam (:func:`superposition.train_uand`).

    Parameters :math:`W` ``(d, m)`` and :math:`R` ``(C(m, n), d)`` in float64, with their
    gradients and two Adam moments (four copies), and the batch outputs ``(B, C(m, n))`` three
    times (outputs, errors, targets).
    """
    m = check_int("n_features", n_features, low=1)
    d = check_int("neurons", neurons, low=1)
    b = check_int("batch", batch, low=1)
    n = check_int("arity", arity, low=2)
    outs = comb(m, n)
    return 4 * _F64 * (outs * d + d * m) + 3 * _F64 * b * outs


def embed_bytes(n_features: int, embed_dim: int, n_samples: int) -> float:
    r"""Peak bytes of measuring a random embedding's readout error on ``n_samples`` inputs.

    The readout :math:`\Phi^\top\Phi x` of a group of inputs (at most
    :data:`superposition.embedding.ERROR_CHUNK` entries, and at least one input) float64 four
    times (the product, the indicator being built, the difference and its absolute value),
    :math:`\Phi x` ``(K, d_0)`` and the block cache.
    """
    m = check_int("n_features", n_features, low=1)
    d0 = check_int("embed_dim", embed_dim, low=1)
    k = check_int("n_samples", n_samples, low=1)
    group = min(k, max(1, ERROR_CHUNK // m)) * m
    return 4 * _F64 * group + _F64 * k * d0 + min(_F64 * d0 * m, EMBEDDING_CACHE)


def circuit_bytes(
    n_features: int, embed_dim: int, depth: int, n_samples: int, *, neurons: int | None = None
) -> float:
    r"""Peak bytes of compiling a random circuit to MLP layers and emulating it.

    Every layer's float64 ``W_in (n, d)``, ``W_out (d, n)`` and ``W_skip (d, d)``, the
    :math:`L + 1` embeddings ``(d, m)`` (block caches, and two materialised at a time), the
    circuit's gates (three integers a gate) and the emulation's states: the inputs
    ``(K, m)``, activations ``(K, n)`` and readouts ``(K, m)`` in float64.
    """
    m = check_int("n_features", n_features, low=1)
    d = check_int("embed_dim", embed_dim, low=1)
    L = check_int("depth", depth, low=1)
    k = check_int("n_samples", n_samples, low=1)
    n = d if neurons is None else check_int("neurons", neurons, low=1)
    layers = L * _F64 * (2 * n * d + d * d)
    embeddings = (L + 1) * min(_F64 * d * m, EMBEDDING_CACHE) + 2 * _F64 * d * m
    return layers + embeddings + 3 * _F64 * L * m + _F64 * k * (3 * m + 2 * n + 2 * d)


def deep_bytes(
    n_features: int,
    embed_dim: int,
    depth: int,
    n_samples: int,
    *,
    gate_neurons: int | None = None,
    neurons_per_product: int | None = None,
) -> float:
    r"""Peak bytes of a deep corrected circuit (:func:`superposition.deep_network`) and its run.

    Layers are generated on demand, so the network holds two embeddings' rows ``(m, d)`` in
    float32 (this layer's and the next), one gate layer's factors, the embedding cache and the
    circuit (three integers a gate); a run holds the states ``(K, d)``, readouts ``(K, m)`` and
    exact values ``(K, m)`` of the corrected and the uncorrected pass, in float64. With
    :math:`r` neurons per product a gate layer's wiring holds about :math:`rm` entries (two
    inputs each for :math:`m/2` products), built with 64-bit indices.
    """
    m = check_int("n_features", n_features, low=1)
    d = check_int("embed_dim", embed_dim, low=1)
    L = check_int("depth", depth, low=1)
    k = check_int("n_samples", n_samples, low=1)
    n = d if gate_neurons is None else check_int("gate_neurons", gate_neurons, low=1)
    network = 2 * _F32 * m * d + 2 * _F32 * n * d + min(_F32 * d * m, EMBEDDING_CACHE)
    if neurons_per_product is not None:
        network += 4 * _F64 * check_int("neurons_per_product", neurons_per_product, low=1) * m
    return network + 3 * _F64 * L * m + 2 * _F64 * k * (2 * m + d + n)
