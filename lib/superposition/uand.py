r"""Universal AND: one ReLU layer whose activations linearly encode every AND of ``arity`` inputs.

Basis-aligned inputs :math:`x \in \{0,1\}^m` with exactly :math:`s` active features (the paper's
Theorems 1 and 3). A network is a first layer and a readout:

.. math::
    a = \mathrm{ReLU}(W x + b) \in \mathbb R^d, \qquad
    \hat y_T = \sum_i R_{T,i}\, a_i \quad\text{for every } T \in \tbinom{[m]}{n},

and it computes U-AND to accuracy :math:`\varepsilon` if
:math:`|\hat y_T - \prod_{k\in T} x_k| \le \varepsilon` for every output :math:`T` and input
:math:`x`. Constructions (:func:`build_uand`):

``"bernoulli"`` (Theorem 1)
    :math:`W_{ik} \sim \mathrm{Bernoulli}(p)` i.i.d., bias :math:`-(n-1)`, readout
    :math:`R_{T,i} = [i \in \Gamma(T)] / |\Gamma(T)|` with
    :math:`\Gamma(T) = \{i : W_{ik} = 1\ \forall k \in T\}` (0 when :math:`\Gamma(T)=\emptyset`).
``"rademacher"``, ``"gaussian"`` (Theorem 3)
    :math:`W_{ik} = \pm 1` or :math:`N(0,1)` i.i.d., bias 0, and the analytic readout
    :math:`R_{kl,i} = \mathrm{sgn}(W_{ik}W_{il}) / (d\, c_D(s))`
    (:func:`superposition.theory.sign_readout_constant`); arity 2 only.

Any construction can instead be read by a least-squares readout fitted on sampled inputs
(:func:`fit_uand_readout`): only the readout is learned.

The first layer (:class:`UAnd`) and the readouts (:class:`MeanReadout`, :class:`SignReadout`,
:class:`FittedReadout`) are separate objects: a readout maps activations ``(K, d)`` to outputs
``(K, t)`` for any tile of ``t`` output tuples, whatever produced the activations.

:func:`evaluate_uand` computes every one of the :math:`\binom mn` outputs of every input exactly
(no sampling of outputs), in tiles of bounded memory, and returns :class:`UAndErrors`;
:func:`worst_case_uand` runs it over *all* s-sparse inputs of a small network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import combinations
from math import comb
from typing import Any, Protocol

import numpy as np
import scipy.linalg
import scipy.sparse as sps
from tqdm import tqdm

from . import theory
from ._validate import (
    as_generator,
    check_active,
    check_choice,
    check_int,
    check_probability,
    check_real,
    check_sparsity,
)
from .backend import namespace
from .embedding import sample_sparse

WEIGHTS = ("bernoulli", "rademacher", "gaussian")
"""First-layer weight distributions."""
P_RULES = ("balanced", "worst_case", "paper")
"""Named connection probabilities: :func:`superposition.theory.balanced_p` (the default),
:func:`superposition.theory.worst_case_p` and :func:`superposition.theory.paper_p`."""
METHODS = ("auto", "tiles", "sparse")
"""Evaluation algorithms: dense tiles over outputs, or the sparse Bernoulli pair algorithm."""
TILE_BYTES = 2**27
"""Default memory budget (bytes) for the temporaries of one tile of outputs."""
MAX_EXHAUSTIVE_INPUTS = 2_000_000
"""Largest number of inputs :func:`worst_case_uand` will enumerate."""


# ---------------------------------------------------------------- construction


def connection_probability(
    p: float | str | None, n_features: int, width: int, sparsity: int, arity: int = 2
) -> float:
    r"""Resolve the Bernoulli connection probability ``p``.

    Parameters
    ----------
    p : float in (0, 1], "balanced", "worst_case", "paper" or None
        ``None`` (the default) or ``"balanced"``: :func:`superposition.theory.balanced_p`,
        :math:`p = ((n-1)/(2 s' d))^{1/(n+1)}` with :math:`s' = \max(s-n+1,1)`, which minimises
        the paper's heuristic mean-square error :math:`s'^2p^2 + s'(1-p)/(dp^{n-1})` (the bias
        of the worst pattern against the fluctuation of a mean over :math:`|\Gamma| = dp^n`
        neurons). For :math:`n = 2`: :math:`p = (2(s-1)d)^{-1/3}`, 0.05 at
        :math:`d = 2000, s = 3`. Best for the typical output, and it keeps the outputs sparse
        (few neurons fire, each reaching few pairs), so exact evaluation stays cheap.
        ``"worst_case"``: :func:`superposition.theory.worst_case_p`,
        :math:`(s'^2 d)^{-1/(n+2)}` (0.106 at :math:`d=2000, s=3`): a smaller worst-case error
        at a larger mean error.
        ``"paper"``: :math:`\ln^2 m/\sqrt d`; a ``ValueError`` when it exceeds 1, i.e. when
        :math:`d \le \ln^4 m` (with 2,000 neurons, for every :math:`m \ge 803`).
    n_features, width, sparsity, arity : int
        :math:`m, d, s, n`.

    Returns
    -------
    float in (0, 1]
    """
    m = check_int("n_features", n_features, low=1)
    d = check_int("width", width, low=1)
    s = check_sparsity(sparsity, m)
    n = check_int("arity", arity, low=2)
    if p is None:
        return theory.balanced_p(d, s, n)
    if isinstance(p, str):
        rule = check_choice("p", p, P_RULES)
        if rule == "balanced":
            return theory.balanced_p(d, s, n)
        if rule == "worst_case":
            return theory.worst_case_p(d, s, n)
        if m < 2:
            raise ValueError(f"p='paper' needs n_features >= 2, got {m}")
        value = theory.paper_p(m, d)
        if value > 1:
            raise ValueError(
                f"p='paper' is ln(m)^2/sqrt(d) = {value:.3g} > 1 for n_features={m}, width={d}; "
                f"it needs width > ln(m)^4 = {theory.paper_min_width(m):.0f}"
            )
        return value
    return check_probability("p", p)


@dataclass(frozen=True, eq=False)
class UAnd:
    r"""The first layer of a U-AND network, :math:`a = \mathrm{ReLU}(Wx + b)`, and its analytic readout.

    Build with :func:`build_uand`. Attributes mirror the paper's symbols.

    Attributes
    ----------
    n_features : int
        :math:`m`.
    width : int
        :math:`d`.
    sparsity : int
        :math:`s`, the number of active inputs the construction is designed for (it fixes
        :math:`c_D(s)` and the default :math:`p`).
    arity : int
        :math:`n`: the outputs are the :math:`\binom mn` ANDs of ``arity`` inputs.
    weights : {"bernoulli", "rademacher", "gaussian"}
    p : float
        Connection probability (1 for the dense sign-symmetric layers).
    W : scipy.sparse.csr_array or numpy.ndarray, shape ``(width, n_features)``
        Bernoulli: a CSR matrix of ones (never dense). Sign-symmetric: a dense float64 array.
    bias : float
        :math:`b`, the same for every neuron: :math:`-(n-1)` (Bernoulli) or 0.
    """

    n_features: int
    width: int
    sparsity: int
    arity: int
    weights: str
    p: float
    W: Any = field(repr=False)
    bias: float

    @cached_property
    def csc(self) -> sps.csc_array:
        """``W`` in compressed sparse columns (Bernoulli): neuron lists per feature."""
        return sps.csc_array(self.W)

    @cached_property
    def readout(self) -> Readout:
        """The analytic readout: :class:`MeanReadout` (Bernoulli) or :class:`SignReadout`."""
        if self.weights == "bernoulli":
            return MeanReadout(self.csc, self.arity)
        c = theory.sign_readout_constant(self.sparsity, self.weights)
        return SignReadout(np.sign(self.W), scale=1.0 / (self.width * c))

    @property
    def n_outputs(self) -> int:
        r""":math:`\binom mn`."""
        return comb(self.n_features, self.arity)

    def preactivations(self, active: np.ndarray) -> np.ndarray:
        """:math:`Wx + b` for a batch of sparse inputs.

        Parameters
        ----------
        active : int array, shape ``(K, s')``
            Active feature indices per input (:func:`superposition.sample_sparse`); ``s'`` may
            differ from ``sparsity`` and may be 0.

        Returns
        -------
        h : float64 array, shape ``(K, width)``
        """
        x = _indicator(check_active(active, self.n_features), self.n_features)
        h = x @ self.W.T
        h = h.toarray() if sps.issparse(h) else np.asarray(h)
        return h + self.bias

    def activations(self, active: np.ndarray) -> np.ndarray:
        r""":math:`a = \mathrm{ReLU}(Wx + b)`, float64 array of shape ``(K, width)``."""
        return np.maximum(self.preactivations(active), 0.0)


def build_uand(
    n_features: int,
    width: int,
    sparsity: int,
    *,
    weights: str = "bernoulli",
    arity: int = 2,
    p: float | str | None = None,
    seed: object = 0,
) -> UAnd:
    r"""A random U-AND layer computing all :math:`\binom mn` ANDs of ``arity`` inputs.

    Parameters
    ----------
    n_features : int
        :math:`m \ge` ``arity``.
    width : int
        :math:`d \ge 1` neurons.
    sparsity : int
        :math:`s`, active inputs per input, ``1 <= s <= m`` (``>= 2`` for sign-symmetric weights).
    weights : {"bernoulli", "rademacher", "gaussian"}
        See the module docstring.
    arity : int
        :math:`n \ge 2`. Sign-symmetric layers support only :math:`n = 2`: with bias 0 and
        :math:`w \to -w` symmetric weights, :math:`c_D = \frac12\mathbb E[\prod_{k\in T}
        \mathrm{sgn}\,w_k\,|S|]` (as :math:`\mathrm{ReLU}(S) = (S+|S|)/2`), which vanishes for
        odd :math:`n` because :math:`|S|` is even in :math:`w` and the sign product odd.
    p : float, "balanced", "paper" or None
        Bernoulli connection probability (:func:`connection_probability`; default balanced).
        Must be ``None`` (or 1) for sign-symmetric weights, whose layers are dense.
    seed : int, SeedSequence or Generator
        The only source of randomness.

    Returns
    -------
    UAnd
    """
    m = check_int("n_features", n_features, low=1)
    d = check_int("width", width, low=1)
    s = check_sparsity(sparsity, m)
    w = check_choice("weights", weights, WEIGHTS)
    n = check_int("arity", arity, low=2)
    if n > m:
        raise ValueError(f"arity must be between 2 and n_features={m}, got {n}")
    if w != "bernoulli":
        if n != 2:
            raise ValueError(
                f"arity must be 2 for weights={w!r}, got {n}: a sign-symmetric layer with bias 0 "
                "has c_D = 0 for odd arity (w -> -w symmetry); use weights='bernoulli'"
            )
        if s < 2:
            raise ValueError(
                f"sparsity must be >= 2 for weights={w!r} (c_D(s) is calibrated on inputs with "
                f"both AND inputs active), got {s}"
            )
        if p is not None and (isinstance(p, str) or check_probability("p", p) != 1.0):
            raise ValueError(
                f"p applies to weights='bernoulli' only; {w} layers are dense (p = 1), got {p!r}"
            )
    rng = as_generator(seed)
    if w == "bernoulli":
        prob = connection_probability(p, m, d, s, n)
        counts = rng.binomial(m, prob, size=d)
        indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        indices = np.empty(indptr[-1], dtype=np.int32 if m < 2**31 else np.int64)
        for i, k in enumerate(counts):
            indices[indptr[i] : indptr[i + 1]] = np.sort(rng.choice(m, size=int(k), replace=False))
        W = sps.csr_array((np.ones(indptr[-1]), indices, indptr), shape=(d, m))
        return UAnd(m, d, s, n, w, prob, W, -(n - 1.0))
    if w == "rademacher":
        W = rng.integers(0, 2, size=(d, m), dtype=np.int8).astype(np.float64) * 2.0 - 1.0
    else:
        W = rng.standard_normal((d, m))
    return UAnd(m, d, s, n, w, 1.0, W, 0.0)


def relu_layer(W: Any, x: Any, bias: float = 0.0) -> Any:
    r""":math:`\mathrm{ReLU}(x W^\top + b)` for dense arrays of any array-API namespace.

    Parameters
    ----------
    W : array, shape ``(d, m)``
    x : array, shape ``(K, m)``
    bias : float

    Returns
    -------
    a : array, shape ``(K, d)``, in the namespace of ``W`` and ``x``.
    """
    xp = namespace(W, x)
    h = x @ xp.matrix_transpose(W) + bias
    return xp.where(h > 0, h, xp.zeros_like(h))


# ---------------------------------------------------------------- readouts


class Readout(Protocol):
    """A linear map from activations ``(K, d)`` to the outputs of any tile of output tuples."""

    arity: int

    def prepare(self, activations: np.ndarray) -> Any:
        """Whatever per-batch state :meth:`outputs` needs (computed once per batch)."""

    def outputs(self, prepared: Any, tuples: np.ndarray) -> np.ndarray:
        """Outputs, shape ``(K, t)``, for ``tuples`` of shape ``(t, arity)``."""


@dataclass(frozen=True, eq=False)
class MeanReadout:
    r"""Bernoulli readout :math:`\hat y_T = \frac{1}{|\Gamma(T)|}\sum_{i\in\Gamma(T)} a_i`, 0 if :math:`\Gamma(T) = \emptyset`.

    Attributes
    ----------
    W : scipy.sparse.csc_array, shape ``(d, m)``
        The 0/1 first layer.
    arity : int
    """

    W: sps.csc_array = field(repr=False)
    arity: int

    def prepare(self, activations: np.ndarray) -> np.ndarray:
        return np.asarray(activations, dtype=np.float64)

    def outputs(self, prepared: np.ndarray, tuples: np.ndarray) -> np.ndarray:
        P = self.W[:, tuples[:, 0]]
        for j in range(1, tuples.shape[1]):
            P = P.multiply(self.W[:, tuples[:, j]])
        P = sps.csc_array(P)
        gamma = np.asarray(P.sum(axis=0)).ravel()
        num = prepared @ P
        return np.divide(num, gamma, out=np.zeros_like(num), where=gamma > 0)


@dataclass(frozen=True, eq=False)
class SignReadout:
    r"""Analytic sign-symmetric readout :math:`\hat y_{kl} = \text{scale}\cdot\sum_i \mathrm{sgn}(W_{ik}W_{il})\,a_i`.

    Attributes
    ----------
    signs : float array, shape ``(d, m)``
        :math:`\mathrm{sgn}(W)`.
    scale : float
        :math:`1/(d\,c_D(s))`.
    """

    signs: np.ndarray = field(repr=False)
    scale: float
    arity: int = 2

    def prepare(self, activations: np.ndarray) -> np.ndarray:
        return np.asarray(activations, dtype=np.float64)

    def outputs(self, prepared: np.ndarray, tuples: np.ndarray) -> np.ndarray:
        P = self.signs[:, tuples[:, 0]] * self.signs[:, tuples[:, 1]]
        out = prepared @ P
        out *= self.scale
        return out


@dataclass(frozen=True, eq=False)
class FittedReadout:
    r"""Least-squares readout :math:`R = Y^\top A (A^\top A + \lambda I)^{-1}` (see :func:`fit_uand_readout`).

    :math:`A` ``(K_train, d)`` are training activations and :math:`Y` ``(K_train, C(m,n))`` the
    0/1 targets, so row :math:`T` of :math:`R` is :math:`\sum_{t : T \subseteq A_t} c_t` with
    :math:`c_t` the rows of :math:`C = A(A^\top A+\lambda I)^{-1}`: an output never all-active in
    training reads 0. Stored as :math:`C` and the training tuples, never as the
    :math:`\binom mn \times d` matrix; a batch costs one ``(K, d) @ (d, K_train)`` product.

    Attributes
    ----------
    coef : float array, shape ``(K_train, d)``
        :math:`C`.
    ranks : int64 array, shape ``(K_train * C(s, n),)``
        Sorted lexicographic ranks of the training inputs' all-active tuples.
    owners : int64 array, same shape
        The training input of each rank.
    """

    n_features: int
    arity: int
    coef: np.ndarray = field(repr=False)
    ranks: np.ndarray = field(repr=False)
    owners: np.ndarray = field(repr=False)

    def prepare(self, activations: np.ndarray) -> np.ndarray:
        return np.asarray(activations, dtype=np.float64) @ self.coef.T

    def outputs(self, prepared: np.ndarray, tuples: np.ndarray) -> np.ndarray:
        r = tuple_rank(tuples, self.n_features)
        lo = np.searchsorted(self.ranks, r, side="left")
        hi = np.searchsorted(self.ranks, r, side="right")
        counts = hi - lo
        indptr = np.concatenate(([0], np.cumsum(counts)))
        cols = self.owners[_ranges(lo, counts)]
        Y = sps.csr_array(
            (np.ones(cols.size), cols, indptr), shape=(len(tuples), self.coef.shape[0])
        )
        return np.asarray(Y @ prepared.T).T


def fit_uand_readout(
    net: UAnd,
    n_train: int,
    *,
    sparsity: int | None = None,
    ridge: float = 1e-6,
    seed: object = 0,
) -> FittedReadout:
    r"""Fit the readout by least squares on ``n_train`` random inputs; the first layer stays fixed.

    Minimises :math:`\sum_x \|R\,a(x) - y(x)\|^2 + \lambda \|R\|_F^2` over all
    :math:`\binom mn` outputs at once, with :math:`\lambda` = ``ridge`` times the mean diagonal
    of :math:`A^\top A` (it only matters for neurons that never fire).

    Parameters
    ----------
    net : UAnd
    n_train : int
        Training inputs :math:`K_{\text{train}}`, each with exactly ``sparsity`` active features
        drawn uniformly. Every output must be all-active in some training input to be learned,
        so take :math:`K_{\text{train}} \gg \binom mn / \binom sn` (and :math:`\gg d`).
    sparsity : int, optional
        Defaults to ``net.sparsity``.
    ridge : float
        Relative ridge :math:`\ge 0`.
    seed : int, SeedSequence or Generator
        For the training inputs; evaluate on inputs drawn from another seed.

    Returns
    -------
    FittedReadout
        Memory :math:`O(K_{\text{train}} d)`; fitting costs :math:`O(K_{\text{train}} d^2 + d^3)`.
    """
    m, n = net.n_features, net.arity
    k = check_int("n_train", n_train, low=1)
    s = check_sparsity(net.sparsity if sparsity is None else sparsity, m)
    if s < n:
        raise ValueError(f"sparsity must be >= arity={n} to train an AND readout, got {s}")
    lam = check_real("ridge", ridge, low=0.0)
    active = sample_sparse(m, s, k, seed=as_generator(seed))
    A = net.activations(active)
    gram = A.T @ A
    scale = max(float(np.trace(gram)) / net.width, 1e-300)
    gram[np.diag_indices_from(gram)] += lam * scale if lam > 0 else 0.0
    try:
        factor = scipy.linalg.cho_factor(gram, lower=True, check_finite=False)
        coef = scipy.linalg.cho_solve(factor, A.T, check_finite=False).T
    except np.linalg.LinAlgError:
        coef = np.linalg.lstsq(gram, A.T, rcond=None)[0].T
    sub = np.array(list(combinations(range(s), n)), dtype=np.int64)  # (C(s,n), n)
    tuples = active[:, sub].reshape(-1, n)
    ranks = tuple_rank(tuples, m)
    owners = np.repeat(np.arange(k, dtype=np.int64), len(sub))
    order = np.argsort(ranks, kind="stable")
    return FittedReadout(m, n, np.ascontiguousarray(coef), ranks[order], owners[order])


def uand_outputs(
    net: UAnd, active: np.ndarray, tuples: np.ndarray, *, readout: Readout | None = None
) -> np.ndarray:
    r"""The outputs :math:`\hat y_T(x)` for chosen tuples, shape ``(K, t)``.

    Parameters
    ----------
    net : UAnd
    active : int array, shape ``(K, s')``
    tuples : int array, shape ``(t, arity)``
        Strictly increasing feature indices per row.
    readout : Readout, optional
        Defaults to ``net.readout``.
    """
    readout = net.readout if readout is None else readout
    tuples = np.asarray(tuples)
    if (
        tuples.ndim != 2
        or tuples.shape[1] != net.arity
        or not np.issubdtype(tuples.dtype, np.integer)
    ):
        raise ValueError(
            f"tuples must be an integer array of shape (t, {net.arity}), got {tuples.shape}"
        )
    if tuples.size and (
        tuples.min() < 0 or tuples.max() >= net.n_features or (np.diff(tuples, axis=1) <= 0).any()
    ):
        raise ValueError(f"tuples must be strictly increasing indices in [0, {net.n_features - 1}]")
    return readout.outputs(readout.prepare(net.activations(active)), tuples.astype(np.int64))


# ---------------------------------------------------------------- the part of a network one input touches


@dataclass(frozen=True, eq=False)
class TouchedCounts:
    r"""What one input's outputs with an active member read from a Bernoulli U-AND layer (arity 2).

    Label the input's :math:`s` active features :math:`u = 0, \dots, s-1` (sorted). A neuron's
    *type* is the bit mask :math:`T` of the active features it is wired to; it fires with
    :math:`a_T = \mathrm{ReLU}(|T| - 1)`. Every output with an active member depends on the
    network only through

    * ``n_type[T]`` = :math:`n_T`, the number of neurons of type :math:`T`, and
    * ``wired[T, l]`` = :math:`c_T(l)`, how many of them are wired to inactive feature :math:`l`:

    .. math::
        \hat y_{uv} = \frac{\sum_{T \ni u,v} n_T a_T}{\sum_{T \ni u,v} n_T}, \qquad
        \hat y_{ul} = \frac{\sum_{T \ni u} c_T(l)\, a_T}{\sum_{T \ni u} c_T(l)}

    (0 when the denominator is 0). Get them from a network (:func:`touched_counts`) or draw them
    from their exact distribution without building the network (:func:`sample_touched_counts`).

    Attributes
    ----------
    sparsity : int
        :math:`s`.
    n_type : int64 array, shape ``(2**s,)``
    wired : int64 array, shape ``(2**s, m - s)``
        Column :math:`l` is the :math:`l`-th inactive feature (row 0, type :math:`\emptyset`,
        is not needed and left 0).
    """

    sparsity: int
    n_type: np.ndarray
    wired: np.ndarray = field(repr=False)


def touched_counts(net: UAnd, active: np.ndarray) -> TouchedCounts:
    """The :class:`TouchedCounts` of one input ``active`` (``(s,)`` distinct indices) on ``net``."""
    if net.weights != "bernoulli" or net.arity != 2:
        raise ValueError("touched_counts needs weights='bernoulli' and arity=2")
    act = check_active(np.asarray(active).reshape(1, -1), net.n_features)[0]
    s, m = act.size, net.n_features
    if s > 16:
        raise ValueError(f"active must have at most 16 features, got {s}")
    sub = net.csc[:, act].toarray().astype(np.int64)  # (d, s)
    types = sub @ (1 << np.arange(s))  # (d,)
    n_type = np.bincount(types, minlength=2**s)
    inactive = np.setdiff1d(np.arange(m), act)
    onehot = sps.csr_array(
        (np.ones(net.width), types, np.arange(net.width + 1)), shape=(net.width, 2**s)
    )
    wired = np.asarray((onehot.T @ net.W[:, inactive]).toarray()).round().astype(np.int64)
    wired[0] = 0
    return TouchedCounts(s, n_type, wired)


def sample_touched_counts(
    n_features: int, width: int, sparsity: int, p: float | str | None = None, *, seed: object = 0
) -> TouchedCounts:
    r"""Draw :class:`TouchedCounts` of one input on a random Bernoulli layer, exactly, in :math:`O(2^s m)`.

    Every entry :math:`W_{ik}` is an independent Bernoulli(:math:`p`), so the types of the
    :math:`d` neurons are i.i.d. with :math:`P(T) = p^{|T|}(1-p)^{s-|T|}` (the counts
    :math:`n_T` are multinomial), and given the types the column of an inactive feature
    :math:`l` is independent of them: :math:`c_T(l) \sim \mathrm{Bin}(n_T, p)`, independently
    over :math:`T` and :math:`l`. This is the joint distribution of everything an input's
    outputs with an active member read, over the random network — without the :math:`dpm`
    nonzeros of :math:`W`, so widths and feature counts far beyond memory are reachable.
    Outputs with no active member are not covered (they depend on the rest of the network).

    Parameters
    ----------
    n_features, width, sparsity : int
        :math:`m, d, s` (:math:`2 \le s \le 16`).
    p : float, "balanced", "worst_case", "paper" or None
        As in :func:`build_uand` (arity 2).
    seed : int, SeedSequence or Generator
    """
    m = check_int("n_features", n_features, low=2)
    d = check_int("width", width, low=1)
    s = check_sparsity(sparsity, m)
    if not 2 <= s <= 16:
        raise ValueError(f"sparsity must be between 2 and 16 here, got {s}")
    prob = connection_probability(p, m, d, s, 2)
    rng = as_generator(seed)
    sizes = np.array([bin(t).count("1") for t in range(2**s)])
    n_type = rng.multinomial(d, prob**sizes * (1.0 - prob) ** (s - sizes))
    wired = np.zeros((2**s, m - s), dtype=np.int64)
    wired[1:] = rng.binomial(n_type[1:, None], prob, size=(2**s - 1, m - s))
    return TouchedCounts(s, n_type.astype(np.int64), wired)


def touched_errors(counts: TouchedCounts) -> dict[str, float]:
    r"""Exact errors of one input's outputs with an active member, from :class:`TouchedCounts`.

    Returns
    -------
    dict
        ``max_all_active`` / ``mean_all_active``: the :math:`\binom s2` outputs with both
        members active (target 1); ``max_one_active`` / ``mean_one_active``: the
        :math:`s(m-s)` outputs with one (target 0); ``max_abs_error``: the larger maximum.
    """
    s = counts.sparsity
    t = np.arange(2**s)
    size = np.array([bin(int(v)).count("1") for v in t])
    act = np.maximum(size - 1, 0).astype(np.float64)
    both, one = [], []
    for u in range(s):
        has_u = (t >> u) & 1 == 1
        for v in range(u + 1, s):
            sel = has_u & ((t >> v) & 1 == 1)
            g = counts.n_type[sel].sum()
            both.append((counts.n_type[sel] @ act[sel]) / g - 1.0 if g else -1.0)
        c = counts.wired[has_u]
        g = c.sum(axis=0)
        num = act[has_u] @ c
        one.append(np.divide(num, g, out=np.zeros(g.shape), where=g > 0))
    both_abs = np.abs(np.array(both))
    one_abs = np.concatenate(one)
    out = {
        "max_all_active": float(both_abs.max()),
        "mean_all_active": float(both_abs.mean()),
        "max_one_active": float(one_abs.max(initial=0.0)),
        "mean_one_active": float(one_abs.mean()) if one_abs.size else 0.0,
    }
    out["max_abs_error"] = max(out["max_all_active"], out["max_one_active"])
    return out


# ---------------------------------------------------------------- tuples (combinatorial number system)


@lru_cache(maxsize=32)
def _comb_table(m: int, n: int) -> tuple[np.ndarray, ...]:
    """``D[j][l] = C(m - l, n - j)`` for ``l = 0..m``, exact int64, one row per level ``j``."""
    if comb(m, n) >= 2**62:
        raise ValueError(f"C({m}, {n}) outputs do not fit in int64 ranks")
    out = []
    for j in range(n):
        r = n - j
        out.append(np.array([comb(m - i, r) for i in range(m + 1)], dtype=np.int64))
    return tuple(out)


def tuple_unrank(ranks: np.ndarray, n_features: int, arity: int) -> np.ndarray:
    """The ``arity``-subsets of ``range(n_features)`` with the given lexicographic ranks.

    Returns
    -------
    tuples : int64 array, shape ``(len(ranks), arity)``, increasing along each row.
    """
    m, n = n_features, arity
    r = np.asarray(ranks, dtype=np.int64).copy()
    out = np.empty((r.size, n), dtype=np.int64)
    D = _comb_table(m, n)
    prev = np.full(r.size, -1, dtype=np.int64)
    for j in range(n):
        base = D[j][prev + 1]  # C(m - prev - 1, n - j): tuples left with this prefix
        target = base - r
        # largest l with D[j][l] >= target; D[j] is non-increasing
        c = np.searchsorted(-D[j], -target, side="right") - 1
        r -= base - D[j][c]
        out[:, j] = c
        prev = c
    return out


def tuple_rank(tuples: np.ndarray, n_features: int) -> np.ndarray:
    """Lexicographic ranks of increasing tuples, the inverse of :func:`tuple_unrank`."""
    t = np.asarray(tuples, dtype=np.int64)
    n = t.shape[1]
    D = _comb_table(n_features, n)
    r = np.zeros(t.shape[0], dtype=np.int64)
    prev = np.full(t.shape[0], -1, dtype=np.int64)
    for j in range(n):
        r += D[j][prev + 1] - D[j][t[:, j]]
        prev = t[:, j]
    return r


# ---------------------------------------------------------------- error statistics


@dataclass(frozen=True, eq=False)
class UAndErrors:
    r"""Exact error statistics of all :math:`\binom mn` outputs over a batch of inputs.

    Outputs are split by *pattern* :math:`j` = how many of the tuple's :math:`n` features are
    active (:math:`j = n`: the AND is 1). Arrays indexed by pattern have shape ``(arity + 1,)``.

    Attributes
    ----------
    arity : int
    n_features : int
    count : int64 array
        Outputs (summed over inputs) with each pattern.
    nonzero : int64 array
        How many of them read :math:`\hat y \ne 0`.
    sum, sum_abs, sum_sq : float arrays
        :math:`\sum \text{err}`, :math:`\sum |\text{err}|`, :math:`\sum \text{err}^2`,
        :math:`\text{err} = \hat y_T - \prod_{k\in T} x_k`.
    max_abs : float array
        :math:`\max |\text{err}|` (0 where ``count`` is 0).
    input_max_abs : float array, shape ``(K,)``
        Worst error over all outputs of each input.
    bins : float array or None
        Histogram edges for the signed error, if requested.
    histogram : int64 array, shape ``(arity + 1, len(bins) - 1)``, or None
        Outputs per pattern and bin (values outside the edges are not counted).
    """

    arity: int
    n_features: int
    count: np.ndarray
    nonzero: np.ndarray
    sum: np.ndarray
    sum_abs: np.ndarray
    sum_sq: np.ndarray
    max_abs: np.ndarray
    input_max_abs: np.ndarray
    bins: np.ndarray | None = None
    histogram: np.ndarray | None = None

    @property
    def n_inputs(self) -> int:
        return int(self.input_max_abs.size)

    @property
    def n_outputs(self) -> int:
        r"""Outputs per input, :math:`\binom mn`."""
        return comb(self.n_features, self.arity)

    @property
    def max_abs_error(self) -> float:
        """Worst :math:`|\\text{err}|` over every output of every input."""
        return float(self.max_abs.max())

    @property
    def mean_abs_error(self) -> float:
        """Mean :math:`|\\text{err}|` over every output of every input."""
        return float(self.sum_abs.sum() / max(int(self.count.sum()), 1))

    @property
    def rms_error(self) -> float:
        return float(np.sqrt(self.sum_sq.sum() / max(int(self.count.sum()), 1)))

    def pattern(self, active: int | slice) -> dict[str, float | int | None]:
        """Statistics over the outputs with ``active`` (an int or a slice of patterns) active inputs.

        Returns ``count``, ``nonzero``, ``mean`` (signed), ``mean_abs``, ``std``, ``max_abs``;
        the means are ``None`` when ``count`` is 0.
        """
        sel = slice(active, active + 1) if isinstance(active, int) else active
        cnt = int(self.count[sel].sum())
        if cnt == 0:
            return {
                "count": 0,
                "nonzero": 0,
                "mean": None,
                "mean_abs": None,
                "std": None,
                "max_abs": None,
            }
        mean = float(self.sum[sel].sum() / cnt)
        var = max(float(self.sum_sq[sel].sum() / cnt) - mean**2, 0.0)
        return {
            "count": cnt,
            "nonzero": int(self.nonzero[sel].sum()),
            "mean": mean,
            "mean_abs": float(self.sum_abs[sel].sum() / cnt),
            "std": float(np.sqrt(var)),
            "max_abs": float(self.max_abs[sel].max()),
        }

    @property
    def all_active(self) -> dict[str, float | int | None]:
        """:meth:`pattern` over outputs whose AND is 1."""
        return self.pattern(self.arity)

    @property
    def not_all_active(self) -> dict[str, float | int | None]:
        """:meth:`pattern` over outputs whose AND is 0."""
        return self.pattern(slice(0, self.arity))

    def summary(self) -> dict[str, Any]:
        """The headline numbers: ``n_outputs, max_abs_error, mean_abs_error`` and per pattern ``{mean, max}`` (of |err|)."""
        both, rest = self.all_active, self.not_all_active
        return {
            "n_outputs": self.n_outputs,
            "max_abs_error": self.max_abs_error,
            "mean_abs_error": self.mean_abs_error,
            "error_all_active": {"mean": both["mean_abs"], "max": both["max_abs"]},
            "error_not_all_active": {"mean": rest["mean_abs"], "max": rest["max_abs"]},
        }

    @staticmethod
    def combine(parts: list[UAndErrors]) -> UAndErrors:
        """Statistics of the union of the inputs of ``parts`` (same network, same bins)."""
        first = parts[0]
        hist = None if first.histogram is None else sum(p.histogram for p in parts)
        return UAndErrors(
            first.arity,
            first.n_features,
            sum(p.count for p in parts),
            sum(p.nonzero for p in parts),
            sum(p.sum for p in parts),
            sum(p.sum_abs for p in parts),
            sum(p.sum_sq for p in parts),
            np.max([p.max_abs for p in parts], axis=0),
            np.concatenate([p.input_max_abs for p in parts]),
            first.bins,
            hist,
        )


class _Acc:
    """Running sums for :class:`UAndErrors`; values may carry multiplicity weights."""

    def __init__(self, arity: int, n_inputs: int, bins: np.ndarray | None) -> None:
        n1 = arity + 1
        self.arity = arity
        self.count = np.zeros(n1, dtype=np.int64)
        self.nonzero = np.zeros(n1)
        self.enumerated = np.zeros(n1)
        self.sum = np.zeros(n1)
        self.sum_abs = np.zeros(n1)
        self.sum_sq = np.zeros(n1)
        self.max_abs = np.zeros(n1)
        self.input_max = np.zeros(n_inputs)
        self.bins = bins
        self.hist = None if bins is None else np.zeros((n1, len(bins) - 1))

    def add(
        self,
        j: int,
        err: np.ndarray,
        weight: np.ndarray | None = None,
        nonzero: float | None = None,
        inputs: int | np.ndarray | None = None,
    ) -> None:
        """Values ``err`` of pattern ``j`` (``weight``: multiplicity of each, default 1)."""
        if err.size == 0:
            return
        # plain ufunc reductions, not BLAS dot products: waking BLAS threads costs milliseconds
        ab = np.abs(err)
        sq = err * err
        if weight is None:
            self.sum[j] += err.sum()
            self.sum_abs[j] += ab.sum()
            self.sum_sq[j] += sq.sum()
            self.enumerated[j] += err.size
        else:
            self.sum[j] += (weight * err).sum()
            self.sum_abs[j] += (weight * ab).sum()
            self.sum_sq[j] += (weight * sq).sum()
            self.enumerated[j] += weight.sum()
        if nonzero is not None:
            self.nonzero[j] += nonzero
        top = float(ab.max())
        self.max_abs[j] = max(self.max_abs[j], top)
        if isinstance(inputs, int):
            self.input_max[inputs] = max(self.input_max[inputs], top)
        if self.hist is not None:
            self.hist[j] += np.histogram(err, self.bins, weights=weight)[0]

    def finish(self, n_features: int) -> UAndErrors:
        hist = None
        if self.hist is not None:
            # outputs never enumerated read exactly 0 (error 0: only patterns j < n skip zeros)
            zeros = np.round(self.count - self.enumerated)
            b = np.searchsorted(self.bins, 0.0, side="right") - 1
            if 0 <= b < len(self.bins) - 1:
                self.hist[:, b] += zeros
            hist = np.round(self.hist).astype(np.int64)
        return UAndErrors(
            self.arity,
            n_features,
            self.count.copy(),
            np.round(self.nonzero).astype(np.int64),
            self.sum,
            self.sum_abs,
            self.sum_sq,
            self.max_abs,
            self.input_max,
            self.bins,
            hist,
        )


# ---------------------------------------------------------------- evaluation


def evaluate_uand(
    net: UAnd,
    active: np.ndarray,
    *,
    readout: Readout | None = None,
    method: str = "auto",
    tile: int | None = None,
    bins: np.ndarray | None = None,
    progress: bool | None = False,
    activations: np.ndarray | None = None,
) -> UAndErrors:
    r"""Exact errors of all :math:`\binom mn` outputs for every input of a batch.

    Parameters
    ----------
    net : UAnd
    active : int array, shape ``(K, s')``
        Active features per input (distinct; ``s'`` may differ from ``net.sparsity``).
    readout : Readout, optional
        Defaults to the analytic ``net.readout``.
    method : {"auto", "tiles", "sparse"}
        ``"tiles"``: outputs in lexicographic tiles of ``tile`` tuples,
        :math:`\hat Y = \text{readout}(A)` for each; time :math:`O(K d \binom mn)` (dense
        readouts) or :math:`O(K d p^n \binom mn)` (Bernoulli).
        ``"sparse"`` (Bernoulli, arity 2, analytic readout): only neurons with :math:`\ge 2`
        active inputs fire, so an output is nonzero only if a firing neuron is wired to both
        its features. Pairs with an active feature come straight from the neuron lists. A pair
        of inactive features reached by one firing neuron :math:`i` reads
        :math:`a_i/|\Gamma(k,l)|`, so each firing neuron needs only the histogram of the
        integers :math:`|\Gamma|` over the pairs of its support, gathered from row tiles of
        the Gram matrix :math:`W^\top W` (float32 products of 0/1 blocks: exact); the few pairs
        reached by several firing neurons are corrected exactly. Time :math:`O(m^2 d)` for the
        Gram plus :math:`O(K f (pm)^2)` with :math:`f \approx d\binom s2 p^2` firing neurons;
        nothing of size :math:`m^2` is held. Fast while outputs are sparse (small :math:`p`).
        ``"auto"``: whichever a rough cost model predicts to be faster.
    tile : int, optional
        Outputs per tile (default: a :data:`TILE_BYTES` budget); peak memory is
        :math:`O(\text{tile}\cdot(d + K))` beyond the network and the readout.
    bins : float array, optional
        Edges for a histogram of the signed error per pattern.
    progress : bool or None
        tqdm progress bar on stderr; ``None`` shows it only on a terminal.
    activations : float array, shape ``(K, d)``, optional
        Use these activations instead of ``net.activations(active)`` (for first layers that
        read the inputs differently, e.g. from superposition); forces ``method="tiles"``.

    Returns
    -------
    UAndErrors
    """
    readout = net.readout if readout is None else readout
    check_choice("method", method, METHODS)
    active = check_active(active, net.n_features)
    if tile is not None:
        check_int("tile", tile, low=1)
    if bins is not None:
        bins = np.asarray(bins, dtype=np.float64)
        if bins.ndim != 1 or bins.size < 2 or (np.diff(bins) <= 0).any():
            raise ValueError("bins must be a strictly increasing 1-d array of >= 2 edges")
    if readout.arity != net.arity:
        raise ValueError(f"readout arity {readout.arity} does not match the network's {net.arity}")
    if activations is not None:
        activations = np.asarray(activations, dtype=np.float64)
        if activations.shape != (active.shape[0], net.width):
            raise ValueError(
                f"activations must have shape (n_inputs, width) = {(active.shape[0], net.width)}, "
                f"got {activations.shape}"
            )
    sparse_ok = (
        net.weights == "bernoulli"
        and net.arity == 2
        and readout is net.readout
        and activations is None
    )
    if method == "sparse" and not sparse_ok:
        raise ValueError(
            "method='sparse' needs weights='bernoulli', arity=2, the analytic readout and the "
            "network's own activations"
        )
    use_sparse = method == "sparse" or (
        method == "auto" and sparse_ok and _sparse_cost(net, active) < _tiles_cost(net, active)
    )
    acc = _Acc(net.arity, active.shape[0], bins)
    _add_counts(acc, net.n_features, net.arity, active.shape[1], active.shape[0])
    if use_sparse:
        _evaluate_pairs_sparse(net, active, acc, tile, progress)
    else:
        _evaluate_tiles(net, readout, active, activations, acc, tile, progress)
    return acc.finish(net.n_features)


def worst_case_uand(
    net: UAnd,
    *,
    readout: Readout | None = None,
    sparsity: int | None = None,
    at_most: bool = True,
    method: str = "auto",
    tile: int | None = None,
) -> UAndErrors:
    r"""Errors of all outputs over **all** s-sparse inputs: Theorem 1's worst case, literally.

    Enumerates every input with :math:`|x| = s` (``at_most=False``) or :math:`|x| \le s`
    (``at_most=True``, the paper's definition), :math:`\sum_j \binom mj` inputs in all.
    ``input_max_abs`` follows that order (sizes ascending, then lexicographic).

    Raises ``ValueError`` beyond :data:`MAX_EXHAUSTIVE_INPUTS` inputs.
    """
    m = net.n_features
    s = check_sparsity(net.sparsity if sparsity is None else sparsity, m)
    sizes = range(0 if at_most else s, s + 1)
    total = sum(comb(m, j) for j in sizes)
    if total > MAX_EXHAUSTIVE_INPUTS:
        raise ValueError(
            f"worst_case would enumerate {total} inputs (n_features={m}, sparsity={s}); "
            f"the limit is {MAX_EXHAUSTIVE_INPUTS}"
        )
    parts = []
    for j in sizes:
        act = tuple_unrank(np.arange(comb(m, j)), m, j) if j else np.zeros((1, 0), np.int64)
        parts.append(evaluate_uand(net, act, readout=readout, method=method, tile=tile))
    return UAndErrors.combine(parts)


def _add_counts(acc: _Acc, m: int, n: int, s: int, k: int) -> None:
    for j in range(n + 1):
        acc.count[j] += k * comb(s, j) * comb(m - s, n - j)


def _evaluate_tiles(
    net: UAnd,
    readout: Readout,
    active: np.ndarray,
    activations: np.ndarray | None,
    acc: _Acc,
    tile: int | None,
    progress: bool | None,
) -> None:
    """Dense tiles over the lexicographic order of outputs (any construction and readout)."""
    m, n, d = net.n_features, net.arity, net.width
    n_out = comb(m, n)
    k_all = active.shape[0]
    chunk = max(1, min(k_all, TILE_BYTES // (64 * max(d, 1))))  # inputs per pass
    bar = tqdm(total=k_all * n_out, disable=_disable(progress), unit="out", unit_scale=True)
    for k0 in range(0, k_all, chunk):
        act = active[k0 : k0 + chunk]
        kk = act.shape[0]
        t = tile or max(1, TILE_BYTES // (8 * (d + 6 * kk)))
        x = _indicator(act, m).toarray().astype(np.int8)
        acts = net.activations(act) if activations is None else activations[k0 : k0 + chunk]
        prepared = readout.prepare(acts)
        for f0 in range(0, n_out, t):
            tup = tuple_unrank(np.arange(f0, min(f0 + t, n_out)), m, n)
            yhat = readout.outputs(prepared, tup)
            J = x[:, tup[:, 0]].copy()
            for j in range(1, n):
                J += x[:, tup[:, j]]
            _tile_stats(acc, yhat, J, k0)
            bar.update(kk * len(tup))
    bar.close()


def _sparse_cost(net: UAnd, active: np.ndarray) -> float:
    """Rough seconds for the sparse pair algorithm (constants measured on a 2-core x86 machine)."""
    m, d, p = net.n_features, net.width, net.p
    k, s = active.shape
    f = d * (1 - (1 - p) ** s - s * p * (1 - p) ** max(s - 1, 0))  # neurons with >= 2 active
    support = p * m
    shared = m * (1 - (1 - p) ** f - f * p * (1 - p) ** max(f - 1, 0))  # features in >= 2 supports
    q = p * p  # a pair is reached by >= 2 firing neurons with probability ~ P(Bin(f, p^2) >= 2)
    multi = comb(m - s, 2) * (1 - (1 - q) ** f - f * q * (1 - q) ** max(f - 1, 0))
    return (
        1.5e-11 * m * m * d  # Gram tiles (float32 matrix products)
        + 1.5e-8 * k * f * support**2 / 2  # one gathered block per firing neuron
        + 2e-5 * k * min(f * f / 2, 512)  # pairs in the overlap of two firing neurons ...
        + (2e-10 * k * f * shared**2 if f * f / 2 > 512 else 0.0)
        + 5e-9 * k * f * multi  # ... and their correction
        + 2e-3 * k
    )


def _tiles_cost(net: UAnd, active: np.ndarray) -> float:
    """Rough seconds for dense output tiles with the Bernoulli mean readout."""
    k = active.shape[0]
    return k * net.n_outputs * (4e-8 + 3e-9 * net.width * net.p**net.arity)


def _tile_stats(acc: _Acc, yhat: np.ndarray, J: np.ndarray, k0: int) -> None:
    """Add a ``(K, t)`` tile of outputs with patterns ``J`` (inputs ``k0 ...``) to ``acc``.

    Most outputs have pattern 0 (target 0, error = output): those are summed in bulk with the
    few others zeroed; the others (at most ``K · s · t · n / m``) are handled one by one.
    """
    n = acc.arity
    rows, cols = np.nonzero(J)
    jj = J[rows, cols].astype(np.intp)
    ys = yhat[rows, cols]
    yhat[rows, cols] = 0.0  # the tile is ours to modify
    ab = np.abs(yhat)
    acc.sum[0] += yhat.sum()
    acc.sum_abs[0] += ab.sum()
    acc.sum_sq[0] += np.einsum("ij,ij->", yhat, yhat)
    acc.max_abs[0] = max(acc.max_abs[0], float(ab.max(initial=0.0)))
    nz = np.count_nonzero(yhat)
    acc.nonzero[0] += nz
    acc.enumerated[0] += yhat.size - rows.size
    kk = yhat.shape[0]
    top = ab.max(axis=1, initial=0.0)
    if acc.hist is not None:
        h = np.histogram(yhat, acc.bins)[0].astype(np.float64)
        b = np.searchsorted(acc.bins, 0.0, side="right") - 1
        if 0 <= b < h.size:
            h[b] -= rows.size  # the zeroed entries of other patterns
        acc.hist[0] += h
    if rows.size:
        err = ys - (jj == n)
        eab = np.abs(err)
        np.maximum.at(top, rows, eab)
        acc.sum += np.bincount(jj, weights=err, minlength=n + 1)
        acc.sum_abs += np.bincount(jj, weights=eab, minlength=n + 1)
        acc.sum_sq += np.bincount(jj, weights=err * err, minlength=n + 1)
        acc.nonzero += np.bincount(jj[ys != 0], minlength=n + 1)
        acc.enumerated += np.bincount(jj, minlength=n + 1)
        for j in range(1, n + 1):
            sel = jj == j
            if sel.any():
                acc.max_abs[j] = max(acc.max_abs[j], float(eab[sel].max()))
                if acc.hist is not None:
                    acc.hist[j] += np.histogram(err[sel], acc.bins)[0]
    np.maximum(acc.input_max[k0 : k0 + kk], top, out=acc.input_max[k0 : k0 + kk])


def _evaluate_pairs_sparse(
    net: UAnd, active: np.ndarray, acc: _Acc, tile: int | None, progress: bool | None
) -> None:
    """Bernoulli, arity 2: only outputs that a firing neuron reaches can be nonzero.

    Pattern 2 (both features active) and pattern 1 (one active) come straight from the neuron
    lists of the active features. Pattern 0 (neither active): a firing neuron ``i`` reaches the
    pairs inside ``S_i \\ A`` (its support minus the active features). A pair reached by one
    firing neuron reads ``a_i / |Γ|``, so each neuron needs only the histogram of the integer
    ``|Γ(k, l)|`` over its pairs, read from row tiles of the Gram matrix ``WᵀW``. Pairs reached by
    several firing neurons (inside the overlap of two supports: few) are corrected exactly: their
    single-neuron values enter with weight -1 and the true value ``Σ a_i / |Γ|`` with weight +1.
    """
    m, d = net.n_features, net.width
    k_all, s = active.shape
    W, Wc = net.W, net.csc
    indptr, indices = W.indptr, W.indices
    cptr, cidx = Wc.indptr, Wc.indices
    gram_bytes = np.dtype(_count_dtype(net.csc)).itemsize  # per Gram entry
    rows_per_tile = max(1, min(m, (tile or TILE_BYTES // gram_bytes) // max(m, 1)))
    if tile is None:  # a tile of r rows also computes r²/2 lower-triangle entries: keep r <= m/8
        rows_per_tile = min(rows_per_tile, -(-m // 8))
    done = 0
    bar = tqdm(total=k_all, disable=_disable(progress), unit="input")
    while done < k_all:  # groups of inputs whose firing neurons' rows fit the budget
        insts: list[tuple[int, float, np.ndarray]] = []  # (input, a_i, support minus A)
        multi: list[tuple[int, list[np.ndarray], tuple[str, Any], np.ndarray]] = []
        budget = TILE_BYTES
        k0 = done
        while done < k_all and budget > 0:
            t = done
            A = active[t]
            nbrs = [cidx[cptr[k] : cptr[k + 1]] for k in A]
            h = np.bincount(np.concatenate(nbrs), minlength=d) if s else np.zeros(d, np.int64)
            a = np.maximum(h - 1.0, 0.0)
            for u in range(s):  # pattern 2
                for v in range(u + 1, s):
                    gam = np.intersect1d(nbrs[u], nbrs[v], assume_unique=True)
                    y = float(a[gam].mean()) if gam.size else 0.0
                    acc.add(2, np.array([y - 1.0]), nonzero=float(y != 0), inputs=t)
            keep = np.ones(m, bool)
            keep[A] = False
            for u in range(s):  # pattern 1: one row of outputs per active feature
                cols, owner = _gather_rows(indptr, indices, nbrs[u])
                gamma = np.bincount(cols, minlength=m)
                num = np.bincount(cols, weights=a[nbrs[u]][owner], minlength=m)
                y = np.divide(num, gamma, out=np.zeros(m), where=gamma > 0)[keep]
                acc.add(1, y, nonzero=float(np.count_nonzero(y)), inputs=t)
            F = np.flatnonzero(a)  # pattern 0
            supports = []
            for i in F:
                sup = indices[indptr[i] : indptr[i + 1]]
                supports.append(sup[keep[sup]])
                if supports[-1].size >= 2:
                    insts.append((t, float(a[i]), supports[-1]))
                budget -= supports[-1].nbytes
            plan = _overlap_plan(supports, m)  # where pairs reached by >= 2 firing neurons lie
            if plan is not None:
                multi.append((t, supports, plan, a[F]))
                budget -= _plan_nbytes(plan)
            done += 1
        _pattern0(net, insts, multi, acc, rows_per_tile)
        bar.update(done - k0)
    bar.close()


def _overlap_plan(supports: list[np.ndarray], m: int) -> tuple[str, Any] | None:
    """What :func:`_shared_pairs` needs to list the pairs inside >= 2 ``supports``, tile by tile.

    Few firing neurons: their pairwise support intersections (``("few", [both, ...])``); many:
    the features in at least two supports and their membership (``("many", (shared, mq))``).
    Small next to the pairs themselves, which are listed again for each row tile and never
    held for a whole input. ``None`` when no pair is shared.
    """
    f = len(supports)
    if f * (f - 1) // 2 <= 512:  # few firing neurons: intersect their supports pairwise
        inter = []
        for u in range(f):
            for v in range(u + 1, f):
                both = np.intersect1d(supports[u], supports[v], assume_unique=True)
                if both.size >= 2:
                    inter.append(both)
        return ("few", inter) if inter else None
    member = np.zeros((f, m), dtype=bool)
    for u, sup in enumerate(supports):
        member[u, sup] = True
    shared = np.flatnonzero(member.sum(axis=0) >= 2)
    if shared.size < 2:
        return None
    return "many", (shared, member[:, shared].astype(np.float32))


def _plan_nbytes(plan: tuple[str, Any]) -> int:
    kind, data = plan
    if kind == "few":
        return sum(b.nbytes for b in data)
    return data[0].nbytes + data[1].nbytes


def _shared_pairs(plan: tuple[str, Any], m: int, k0: int, k1: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``k < l`` with ``k0 <= k < k1`` inside at least two supports (see :func:`_overlap_plan`), sorted."""
    kind, data = plan
    if kind == "few":
        keys = []
        for both in data:
            i0, i1 = np.searchsorted(both, [k0, k1])
            if i0 >= i1:
                continue
            n = both.size
            r, c = _triu(n)  # row-major: the pairs of rows [i0, i1) are one slice
            lo, hi = i0 * n - i0 * (i0 + 1) // 2, i1 * n - i1 * (i1 + 1) // 2
            if hi > lo:
                keys.append(both[r[lo:hi]] * m + both[c[lo:hi]])
        if not keys:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        key = np.sort(np.concatenate(keys))
        key = key[np.concatenate(([True], key[1:] != key[:-1]))]
        return key // m, key % m
    # many: co-membership counts among the features that are in >= 2 supports
    shared, mq = data
    q0, q1 = np.searchsorted(shared, [k0, k1])
    mk, ml = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    step = max(1, 2**22 // max(shared.size - q0, 1))
    for a0 in range(q0, q1, step):
        a1 = min(a0 + step, q1)
        r, c = np.nonzero(mq[:, a0:a1].T @ mq[:, a0:] >= 2)
        up = c > r
        mk.append(shared[a0 + r[up]])
        ml.append(shared[a0 + c[up]])
    return np.concatenate(mk), np.concatenate(ml)


@lru_cache(maxsize=256)
def _triu(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.triu_indices(n, 1)`` as int64, cached (read-only)."""
    r, c = np.triu_indices(n, 1)
    r, c = r.astype(np.int64), c.astype(np.int64)
    r.setflags(write=False)
    c.setflags(write=False)
    return r, c


def _pattern0(
    net: UAnd,
    insts: list[tuple[int, float, np.ndarray]],
    multi: list[tuple[int, list[np.ndarray], tuple[str, Any], np.ndarray]],
    acc: _Acc,
    rows_per_tile: int,
) -> None:
    """Pattern-0 statistics from row tiles ``[k0, k1)`` of the Gram matrix ``|Γ(k, l)| = (WᵀW)_kl``."""
    if not insts:
        return
    m = net.n_features
    Wc = net.csc
    lo = np.array([sup[0] for _, _, sup in insts])
    hi = np.array([sup[-2] for _, _, sup in insts])  # a row feature needs a later column
    for k0 in range(0, m, rows_per_tile):
        k1 = min(k0 + rows_per_tile, m)
        live = np.flatnonzero((lo < k1) & (hi >= k0))
        if live.size == 0:
            continue
        # exact: 0/1 products summed in float32 are integers below 2**24; each float32 block
        # goes straight into the small-integer tile (|Γ| <= the largest column degree)
        left = _dense_columns(Wc, k0, k1)
        gram = np.empty((k1 - k0, m - k0), dtype=_count_dtype(Wc))
        step = max(1, 2**22 // (k1 - k0))  # float32 blocks of 16 MB
        for c0 in range(k0, m, step):
            c1 = min(c0 + step, m)
            right = left if (c0, c1) == (k0, k1) else _dense_columns(Wc, c0, c1)
            gram[:, c0 - k0 : c1 - k0] = left.T @ right
        np.fill_diagonal(gram, 0)  # |N(k)| is not a pair
        top = int(gram.max())
        for q in live:
            t, a_i, sup = insts[q]
            u0, u1 = np.searchsorted(sup, [k0, k1])
            r = u1 - u0
            if r == 0 or u0 + 1 >= sup.size:
                continue
            flat = (sup[u0:u1, None].astype(np.int64) - k0) * gram.shape[1] + (sup[u0:] - k0)
            block = np.take(gram.ravel(), flat)  # (r, L - u0): gram[rows][:, cols], one gather
            # the leading (r, r) square is symmetric with a zero diagonal: halve its counts
            hist = np.bincount(block.ravel(), minlength=top + 1)
            hist -= np.bincount(block[:, :r].ravel(), minlength=top + 1) // 2
            g = np.flatnonzero(hist[1:]) + 1
            w = hist[g].astype(np.float64)
            acc.add(0, a_i / g, weight=w, nonzero=float(w.sum()), inputs=t)
        for t, supports, plan, aF in multi:
            mk, ml = _shared_pairs(plan, m, k0, k1)
            if mk.size == 0:
                continue
            gam = gram[mk - k0, ml - k0].astype(np.float64)
            cov = np.empty((len(supports), mk.size), dtype=bool)  # (firing neurons, pairs)
            for u, sup in enumerate(supports):
                cov[u] = _contains(sup, mk) & _contains(sup, ml)
            true = (aF @ cov) / gam  # the pair's output, counted once
            single = (aF[:, None] / gam)[cov]  # what the single-neuron pass counted
            vals = np.concatenate([true, single])
            w = np.concatenate([np.ones(true.size), -np.ones(single.size)])
            acc.add(0, vals, weight=w, nonzero=float(w.sum()), inputs=t)


def _contains(sorted_set: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``np.isin(x, sorted_set)`` for a sorted ``sorted_set``, by binary search."""
    if sorted_set.size == 0:
        return np.zeros(x.shape, dtype=bool)
    pos = np.searchsorted(sorted_set, x)
    return sorted_set[np.minimum(pos, sorted_set.size - 1)] == x


def _count_dtype(Wc: sps.csc_array) -> type:
    """Smallest unsigned integer type holding every pair count ``|Γ(k, l)|`` of ``Wc``."""
    top = int(np.diff(Wc.indptr).max(initial=0))  # |Γ(k, l)| <= |N(k)|
    return np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.uint32


def _dense_columns(Wc: sps.csc_array, c0: int, c1: int) -> np.ndarray:
    """Columns ``c0 .. c1 - 1`` of the 0/1 matrix ``Wc`` as a dense float32 ``(d, c1 - c0)`` block."""
    out = np.zeros((Wc.shape[0], c1 - c0), dtype=np.float32)
    lo, hi = Wc.indptr[c0], Wc.indptr[c1]
    out[Wc.indices[lo:hi], np.repeat(np.arange(c1 - c0), np.diff(Wc.indptr[c0 : c1 + 1]))] = 1.0
    return out


def _gather_rows(
    indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of CSR ``rows`` concatenated, and the position in ``rows`` of each."""
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    owner = np.repeat(np.arange(rows.size), lengths)
    return indices[_ranges(starts, lengths)], owner


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + l) for s, l in zip(starts, lengths)])``, vectorised."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + (np.arange(total) - offsets)


def _indicator(active: np.ndarray, m: int) -> sps.csr_array:
    k, s = active.shape
    return sps.csr_array(
        (
            np.ones(k * s),
            active.ravel(),
            np.arange(0, k * s + 1, s) if s else np.zeros(k + 1, np.int64),
        ),
        shape=(k, m),
    )


def _disable(progress: bool | None) -> bool | None:
    return None if progress is None else not progress
