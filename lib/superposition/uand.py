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
    (:func:`superposition.theory.sign_readout_constant`); arity 2 only. It is calibrated on
    inputs with exactly :math:`s` active features; with ``bias="count_free"`` (or a list of
    group biases) the neurons come in groups of different bias and the readout is unbiased on
    every input with at most :math:`s` (:func:`superposition.theory.count_free_design`).

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import combinations
from math import comb
from typing import Any, Protocol

import numpy as np
import scipy.linalg
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
from .backend import asarray, evaluation_namespace, is_numpy, namespace, ranges, to_numpy
from .embedding import indicator, sample_sparse
from .errors import ErrorAccumulator, UAndErrors
from .kernels import (
    Wiring,
    bernoulli_pair_errors,
    gather_preactivations,
    relu,
    sample_wiring,
    wiring_preactivations,
)
from .search import fraction_passing, smallest_passing

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
    p: float | str | None, n_features: int, neurons: int, sparsity: int, arity: int = 2
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
    n_features, neurons, sparsity, arity : int
        :math:`m, d, s, n`.

    Returns
    -------
    float in (0, 1]
    """
    m = check_int("n_features", n_features, low=1)
    d = check_int("neurons", neurons, low=1)
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
                f"p='paper' is ln(m)^2/sqrt(d) = {value:.3g} > 1 for n_features={m}, neurons={d}; "
                f"it needs neurons > ln(m)^4 = {theory.paper_min_neurons(m):.0f}"
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
    neurons : int
        :math:`d`.
    sparsity : int
        :math:`s`, the number of active inputs the construction is designed for (it fixes
        :math:`c_D(s)` and the default :math:`p`).
    arity : int
        :math:`n`: the outputs are the :math:`\binom mn` ANDs of ``arity`` inputs.
    weights : {"bernoulli", "rademacher", "gaussian"}
    p : float
        Connection probability (1 for the dense sign-symmetric layers).
    W : Wiring or numpy.ndarray, shape ``(neurons, n_features)``
        Bernoulli: a :class:`superposition.kernels.Wiring` (the neuron lists of each feature;
        never dense). Sign-symmetric: a dense float64 array.
    bias : float or numpy.ndarray
        :math:`b`: one float for every neuron (:math:`-(n-1)` for Bernoulli, :math:`\beta`
        for sign-symmetric layers, 0 by default), or a float64 array ``(neurons,)`` when the
        neurons come in groups of different bias.
    groups : tuple of float
        The group biases :math:`\beta_g` of a grouped layer, in neuron order (contiguous
        groups of :func:`group_sizes`); empty when every neuron has the same bias.
    counts : tuple of int
        The active counts :math:`n` on which the analytic sign readout is unbiased:
        ``(sparsity,)`` for the paper's :math:`1/(d\,c_D(s))` (inputs with exactly :math:`s`
        active features), :math:`(2, \dots, s)` for a grouped layer (every input with at most
        :math:`s`; :class:`superposition.theory.SignCalibration`). Empty for Bernoulli layers,
        whose mean readout needs no calibration.
    """

    n_features: int
    neurons: int
    sparsity: int
    arity: int
    weights: str
    p: float
    W: Any = field(repr=False)
    bias: Any
    groups: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()

    @cached_property
    def readout(self) -> Readout:
        """The analytic readout: :class:`MeanReadout` (Bernoulli) or :class:`SignReadout`."""
        if self.weights == "bernoulli":
            return MeanReadout(self.W, self.arity)
        return self.sign_readout()

    def sign_calibration(
        self, noise_var: Callable[[int], float] | None = None
    ) -> theory.SignCalibration:
        r"""The calibration of the analytic sign readout (:func:`superposition.theory.sign_calibration`).

        Parameters
        ----------
        noise_var : callable, optional
            :math:`n \mapsto \tau^2(n)`, the variance of the noise each neuron's
            pre-activation carries on inputs with :math:`n` active features (superposed
            inputs); default 0.
        """
        if self.weights == "bernoulli":
            raise ValueError("sign_calibration applies to sign-symmetric weights only")
        counts = self.counts or (self.sparsity,)
        groups = self.groups or (float(self.bias),)
        sizes = group_sizes(self.neurons, len(groups))
        tau2 = None if noise_var is None else [float(noise_var(n)) for n in counts]
        return theory.sign_calibration(
            self.weights, groups, counts, fractions=sizes / self.neurons, noise_vars=tau2
        )

    def sign_readout(self, noise_var: Callable[[int], float] | None = None) -> SignReadout:
        r"""The analytic sign readout, calibrated by :meth:`sign_calibration`.

        One group: :math:`\text{scale} = 1/(d\,c_\beta(s))` (:math:`\alpha/d` with
        :math:`\alpha = 1/c` when calibrated on several counts). Grouped: per-neuron
        coefficients :math:`\alpha_g/d_g`.
        """
        cal = self.sign_calibration(noise_var)
        signs = np.sign(self.W)
        if len(cal.alpha) == 1:
            if len(cal.counts) == 1:
                return SignReadout(signs, scale=1.0 / (self.neurons * cal.constants[0][0]))
            return SignReadout(signs, scale=cal.alpha[0] / self.neurons)
        sizes = group_sizes(self.neurons, len(cal.alpha))
        coef = np.repeat(np.array(cal.alpha) / sizes, sizes)
        return SignReadout(signs, scale=1.0, coef=coef)

    def bias_in(self, xp: Any) -> Any:
        """``bias`` as a float, or (grouped) as a ``(neurons,)`` float64 array of namespace ``xp`` (cached)."""
        if np.ndim(self.bias) == 0:
            return float(self.bias)
        cache = self.__dict__.setdefault("_bias", {})
        key = getattr(xp, "__name__", str(xp))
        if key not in cache:
            cache[key] = asarray(np.asarray(self.bias, dtype=np.float64), xp)
        return cache[key]

    def dense(self) -> np.ndarray:
        """``W`` as a dense float64 NumPy array ``(neurons, n_features)`` (small networks)."""
        if isinstance(self.W, Wiring):
            return to_numpy(self.W.toarray())
        return np.asarray(self.W)

    def columns_by_feature(self, xp: Any) -> Any:
        """``W`` transposed, ``(n_features, neurons)``, in namespace ``xp`` (dense weights; cached)."""
        cache = self.__dict__.setdefault("_wt", {})
        key = getattr(xp, "__name__", str(xp))
        if key not in cache:
            cache[key] = asarray(np.ascontiguousarray(np.asarray(self.W).T), xp)
        return cache[key]

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
        h : float64 array, shape ``(K, neurons)``, in the evaluation namespace
            (:func:`superposition.backend.evaluation_namespace` of ``active``): the neuron lists
            of the active features gathered (Bernoulli) or their weight columns summed, never
            the dense :math:`O(Kmd)` product.
        """
        active = check_active(active, self.n_features)
        xp = evaluation_namespace(active)
        act = asarray(active, xp)
        if isinstance(self.W, Wiring):
            return wiring_preactivations(self.W.to(xp), act, self.bias)
        return gather_preactivations(self.columns_by_feature(xp), act, self.bias_in(xp))

    def activations(self, active: np.ndarray) -> Any:
        r""":math:`a = \mathrm{ReLU}(Wx + b)`, float64 array of shape ``(K, neurons)``."""
        return relu(self.preactivations(active))


def build_uand(
    n_features: int,
    neurons: int,
    sparsity: int,
    *,
    weights: str = "bernoulli",
    arity: int = 2,
    p: float | str | None = None,
    bias: float | Sequence[float] | str | None = None,
    seed: object = 0,
) -> UAnd:
    r"""A random U-AND layer computing all :math:`\binom mn` ANDs of ``arity`` inputs.

    Parameters
    ----------
    n_features : int
        :math:`m \ge` ``arity``.
    neurons : int
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
    bias : float, sequence of float, "count_free" or None
        Sign-symmetric weights only (Bernoulli layers have bias :math:`-(n-1)`).
        ``None`` or a float :math:`\beta`: every neuron has bias :math:`\beta` (default 0, the
        paper's layer) and the readout is :math:`1/(d\,c_\beta(s))`, unbiased on inputs with
        exactly :math:`s` active features. A sequence :math:`(\beta_1, \dots, \beta_G)`: the
        neurons are split into :math:`G` contiguous groups (:func:`group_sizes`) of these biases
        and the readout weights solve :math:`\sum_g\alpha_g c_{\beta_g}(n) = 1` for every
        :math:`n = 2, \dots, s` (:func:`superposition.theory.sign_calibration`; its residual
        is 0 when the groups can meet every count). ``"count_free"``: the groups of
        :func:`superposition.theory.count_free_design`, unbiased on every input with at most
        :math:`s` active features (Rademacher, :math:`s = 3`: the single bias :math:`-1`).
    seed : int, SeedSequence or Generator
        The only source of randomness.

    Returns
    -------
    UAnd
    """
    m = check_int("n_features", n_features, low=1)
    d = check_int("neurons", neurons, low=1)
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
        if bias is not None and (isinstance(bias, str) or np.ndim(bias) != 0 or bias != -(n - 1)):
            raise ValueError(
                f"bias applies to sign-symmetric weights only; the Bernoulli layer's bias is "
                f"-(arity - 1) = {-(n - 1)}, got {bias!r}"
            )
        prob = connection_probability(p, m, d, s, n)
        return UAnd(m, d, s, n, w, prob, sample_wiring(m, d, prob, seed=rng), -(n - 1.0))
    groups = _group_biases(bias, s, w)
    if len(groups) > d:
        raise ValueError(f"neurons must be at least the {len(groups)} bias groups, got {d}")
    if w == "rademacher":
        W = rng.integers(0, 2, size=(d, m), dtype=np.int8).astype(np.float64) * 2.0 - 1.0
    else:
        W = rng.standard_normal((d, m))
    if bias is None or (not isinstance(bias, str) and np.ndim(bias) == 0):
        return UAnd(m, d, s, n, w, 1.0, W, groups[0], counts=(s,))
    b = groups[0] if len(groups) == 1 else np.repeat(groups, group_sizes(d, len(groups)))
    return UAnd(m, d, s, n, w, 1.0, W, b, groups=groups, counts=tuple(range(2, s + 1)))


def _group_biases(bias: object, sparsity: int, weights: str) -> tuple[float, ...]:
    """The group biases of a sign-symmetric layer from ``build_uand``'s ``bias``."""
    if bias is None:
        return (0.0,)
    if isinstance(bias, str):
        check_choice("bias", bias, ("count_free",))
        return theory.count_free_design(sparsity, weights).biases
    if isinstance(bias, Sequence) or isinstance(bias, np.ndarray):
        groups = tuple(check_real("bias", b) for b in bias)
        if not groups:
            raise ValueError("bias must hold at least one group bias")
        return groups
    return (check_real("bias", bias),)


def group_sizes(neurons: int, n_groups: int) -> np.ndarray:
    """Neurons per group: ``neurons`` split into ``n_groups`` contiguous groups as equal as possible.

    Returns
    -------
    sizes : int64 array, shape ``(n_groups,)``; the first ``neurons % n_groups`` are one larger.
    """
    d = check_int("neurons", neurons, low=1)
    g = check_int("n_groups", n_groups, low=1, high=d)
    return np.array([d // g + (1 if i < d % g else 0) for i in range(g)], dtype=np.int64)


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
    wiring : Wiring, shape ``(d, m)``
        The 0/1 first layer.
    arity : int
    """

    wiring: Wiring = field(repr=False)
    arity: int

    def prepare(self, activations: Any) -> Any:
        xp = namespace(activations)
        return xp.astype(activations, xp.float64)

    def outputs(self, prepared: Any, tuples: Any) -> Any:
        """``(K, t)`` outputs: the tuple's columns of :math:`W` multiplied densely ``(d, t)``."""
        xp = namespace(prepared)
        w = self.wiring.to(xp)
        tup = asarray(tuples, xp)
        P = w.columns(tup[:, 0])
        for j in range(1, tup.shape[1]):
            P = P * w.columns(tup[:, j])
        gamma = xp.sum(P, axis=0)
        num = prepared @ P
        return xp.where(gamma > 0, num / xp.where(gamma > 0, gamma, 1.0), xp.zeros_like(num))


@dataclass(frozen=True, eq=False)
class SignReadout:
    r"""Analytic sign-symmetric readout :math:`\hat y_{kl} = \text{scale}\cdot\sum_i \rho_i\,\mathrm{sgn}(W_{ik}W_{il})\,a_i`.

    Attributes
    ----------
    signs : float array, shape ``(d, m)``
        :math:`\mathrm{sgn}(W)` (NumPy; moved to the namespace of the activations, cached).
    scale : float
        :math:`1/(d\,c_D(s))` for the paper's readout.
    coef : float array, shape ``(d,)``, or None
        Per-neuron weights :math:`\rho_i` (a grouped layer: :math:`\alpha_g/d_g`, with
        ``scale`` 1); ``None``: every :math:`\rho_i = 1`.
    """

    signs: np.ndarray = field(repr=False)
    scale: float
    arity: int = 2
    coef: np.ndarray | None = field(default=None, repr=False)

    def prepare(self, activations: Any) -> Any:
        xp = namespace(activations)
        a = xp.astype(activations, xp.float64)
        if self.coef is None:
            return a
        return a * self._cached("_coef_in", self.coef, xp)

    def outputs(self, prepared: Any, tuples: Any) -> Any:
        xp = namespace(prepared)
        signs = self._signs(xp)
        tup = asarray(tuples, xp)
        P = xp.take(signs, tup[:, 0], axis=1) * xp.take(signs, tup[:, 1], axis=1)
        return (prepared @ P) * self.scale

    def _signs(self, xp: Any) -> Any:
        return self._cached("_signs_in", self.signs, xp)

    def _cached(self, name: str, host: np.ndarray, xp: Any) -> Any:
        if is_numpy(xp):
            return host
        cache = self.__dict__.setdefault(name, {})
        key = getattr(xp, "__name__", str(xp))
        if key not in cache:
            cache[key] = asarray(host, xp)
        return cache[key]


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

    def prepare(self, activations: Any) -> Any:
        xp = namespace(activations)
        return xp.astype(activations, xp.float64) @ xp.matrix_transpose(asarray(self.coef, xp))

    def outputs(self, prepared: Any, tuples: Any) -> Any:
        """``(K, t)``: for each tuple, the sum of the prepared columns of its training inputs."""
        xp = namespace(prepared)
        r = tuple_rank(to_numpy(tuples), self.n_features)
        lo = np.searchsorted(self.ranks, r, side="left")
        hi = np.searchsorted(self.ranks, r, side="right")
        counts = hi - lo
        total = int(counts.sum())
        k = prepared.shape[0]
        if total == 0:
            return xp.zeros((k, r.size), dtype=xp.float64)
        cols = asarray(self.owners[_ranges(lo, counts)], xp)
        gathered = xp.take(prepared, cols, axis=1)  # (K, total), tuple by tuple
        csum = xp.concat(
            [xp.zeros((k, 1), dtype=xp.float64), xp.cumulative_sum(gathered, axis=1)], axis=1
        )
        ends = asarray(np.cumsum(counts), xp)
        return xp.take(csum, ends, axis=1) - xp.take(csum, ends - asarray(counts, xp), axis=1)


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
    A = to_numpy(net.activations(active))  # fitting is construction: NumPy and SciPy
    gram = A.T @ A
    scale = max(float(np.trace(gram)) / net.neurons, 1e-300)
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


def all_active_readings(
    net: UAnd,
    active: np.ndarray,
    *,
    readout: Readout | None = None,
    activations: Any = None,
) -> np.ndarray:
    r"""The readings :math:`\hat y_T(x)` of the ANDs that are 1: every tuple of active features of each input.

    What an AND reads when it is true, input by input: its mean over inputs with :math:`n`
    active features is what calibrating the readout on :math:`n` fixes
    (:func:`superposition.theory.sign_readout_constant`).

    Parameters
    ----------
    net : UAnd
    active : int array, shape ``(K, n)``
        ``n >= arity`` active features per input.
    readout : Readout, optional
        Defaults to ``net.readout``.
    activations : array, shape ``(K, neurons)``, optional
        Use these instead of ``net.activations(active)`` (inputs in superposition).

    Returns
    -------
    float64 NumPy array, shape ``(K, C(n, arity))``
        Row :math:`i`: the tuples of ``sorted(active[i])`` in lexicographic order.
    """
    readout = net.readout if readout is None else readout
    active = check_active(active, net.n_features)
    k, n = active.shape
    if n < net.arity:
        raise ValueError(
            f"active must hold at least arity = {net.arity} features per input, got {n}"
        )
    acts = net.activations(active) if activations is None else activations
    if tuple(acts.shape) != (k, net.neurons):
        raise ValueError(
            f"activations must have shape (n_samples, neurons) = {(k, net.neurons)}, "
            f"got {tuple(acts.shape)}"
        )
    prepared = readout.prepare(acts)
    local = np.array(list(combinations(range(n), net.arity)), dtype=np.int64)
    rows = []
    for i, row in enumerate(to_numpy(active)):  # rows of check_active are sorted
        rows.append(to_numpy(readout.outputs(prepared[i : i + 1, :], row[local]))[0])
    return np.asarray(rows, dtype=np.float64).reshape(k, len(local))


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
    s, m, d = act.size, net.n_features, net.neurons
    if s > 16:
        raise ValueError(f"active must have at most 16 features, got {s}")
    w = net.W
    ptr, idx = w.host_indptr, to_numpy(w.indices).astype(np.int64)
    types = np.zeros(d, dtype=np.int64)  # bit u set: the neuron is wired to active feature u
    for u, k in enumerate(act):
        types[idx[ptr[k] : ptr[k + 1]]] |= 1 << u
    n_type = np.bincount(types, minlength=2**s)
    feature = np.repeat(np.arange(m, dtype=np.int64), np.diff(ptr))  # of every one of W
    per = np.bincount(types[idx] * m + feature, minlength=2**s * m).reshape(2**s, m)
    inactive = np.setdiff1d(np.arange(m), act)
    wired = per[:, inactive].astype(np.int64)
    wired[0] = 0
    return TouchedCounts(s, n_type.astype(np.int64), wired)


def sample_touched_counts(
    n_features: int, neurons: int, sparsity: int, p: float | str | None = None, *, seed: object = 0
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
    n_features, neurons, sparsity : int
        :math:`m, d, s` (:math:`2 \le s \le 16`).
    p : float, "balanced", "worst_case", "paper" or None
        As in :func:`build_uand` (arity 2).
    seed : int, SeedSequence or Generator
    """
    m = check_int("n_features", n_features, low=2)
    d = check_int("neurons", neurons, low=1)
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


def minimal_neurons(
    n_features: int,
    sparsity: int,
    target_error: float,
    p: float | str | None = "worst_case",
    *,
    p_scale: float = 1.0,
    n_draws: int = 40,
    success: float = 0.9,
    first_draw: int = 0,
    resolution: float = 0.03,
    high: int = 10**8,
    seed: int = 0,
) -> int:
    r"""The smallest width :math:`d^*` at which a Bernoulli layer computes U-AND on a random input.

    :math:`d^*` is the smallest :math:`d` at which at least ``success`` of ``n_draws`` random
    (network, input) draws have every output with an active member within ``target_error``
    (:func:`sample_touched_counts` then :func:`touched_errors`: exact, without building
    :math:`W`); outputs with no active member are not covered (bound them with
    :func:`superposition.theory.bernoulli_exceed_probability`). The search is
    :func:`superposition.search.smallest_passing` over :math:`d` with
    :func:`superposition.search.fraction_passing` over the draws; draw :math:`j` at width
    :math:`d` uses ``SeedSequence([seed, n_features, d, j])`` for :math:`j` = ``first_draw``,
    ..., ``first_draw + n_draws - 1``, so every width sees fresh, reproducible draws and
    disjoint ranges of ``j`` give independent replicates of the search.

    Parameters
    ----------
    n_features, sparsity : int
        :math:`m, s` (:math:`2 \le s \le 16`).
    target_error : float
        :math:`\varepsilon > 0`.
    p : float, "balanced", "worst_case", "paper" or None
        As in :func:`connection_probability`, resolved at every width. ``"paper"``
        (:math:`\ln^2 m/\sqrt d`) starts the search at the first width where it is a
        probability, :math:`\lfloor\ln^4 m\rfloor + 1`.
    p_scale : float
        :math:`\kappa > 0`: the layer uses :math:`\min(1, \kappa\,p(d))` (a scan over
        :math:`\kappa` finds the best :math:`p` of a rule's family).
    n_draws, success, first_draw, resolution, high
        Draws per width, the fraction that must pass, the index of the first draw, the
        search's relative resolution and its upper end.
    seed : int

    Returns
    -------
    int
        :math:`d^*`; ``high + 1`` when even ``high`` neurons do not pass.
    """
    m = check_int("n_features", n_features, low=2)
    s = check_sparsity(sparsity, m)
    eps = check_real("target_error", target_error, low=0.0, low_open=True)
    kappa = check_real("p_scale", p_scale, low=0.0, low_open=True)
    first = check_int("first_draw", first_draw, low=0)
    draws = range(first, first + check_int("n_draws", n_draws, low=1))
    root = check_int("seed", seed, low=0)
    low = 2
    if isinstance(p, str) and p == "paper":
        low = int(np.floor(theory.paper_min_neurons(m))) + 1
    high = check_int("high", high, low=low)

    def ok(d: int, draw: int) -> bool:
        prob = min(1.0, kappa * connection_probability(p, m, d, s))
        counts = sample_touched_counts(
            m, d, s, prob, seed=np.random.SeedSequence([root, m, d, draw])
        )
        return touched_errors(counts)["max_abs_error"] <= eps

    return smallest_passing(
        lambda d: fraction_passing(ok, d, draws, success), low, high, resolution=resolution
    )


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
        ``"sparse"`` (Bernoulli mean readout, arity 2): only outputs whose :math:`\Gamma` holds
        a firing neuron can be nonzero, so they are enumerated from the neuron lists
        (:func:`superposition.kernels.bernoulli_pair_errors`): time :math:`O(m^2 d)` for the
        Gram tiles plus :math:`O(K f (pm)^2)` with :math:`f` firing neurons per input; nothing
        of size :math:`m^2` is held. Fast while outputs are sparse (small :math:`p`).
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
        read the inputs differently, e.g. from superposition).

    Returns
    -------
    UAndErrors
        Computed in the evaluation namespace
        (:func:`superposition.backend.evaluation_namespace` of ``active`` and ``activations``);
        its ``backend`` names it.
    """
    readout = net.readout if readout is None else readout
    check_choice("method", method, METHODS)
    active = check_active(active, net.n_features)
    xp = evaluation_namespace(active, activations)
    if tile is not None:
        check_int("tile", tile, low=1)
    if bins is not None:
        bins = np.asarray(bins, dtype=np.float64)
        if bins.ndim != 1 or bins.size < 2 or (np.diff(bins) <= 0).any():
            raise ValueError("bins must be a strictly increasing 1-d array of >= 2 edges")
    if readout.arity != net.arity:
        raise ValueError(f"readout arity {readout.arity} does not match the network's {net.arity}")
    if activations is not None:
        activations = xp.astype(asarray(activations, xp), xp.float64)
        if tuple(activations.shape) != (active.shape[0], net.neurons):
            raise ValueError(
                "activations must have shape (n_samples, neurons) = "
                f"{(active.shape[0], net.neurons)}, got {tuple(activations.shape)}"
            )
    sparse_ok = net.arity == 2 and isinstance(readout, MeanReadout) and readout.wiring is net.W
    if method == "sparse" and not sparse_ok:
        raise ValueError(
            "method='sparse' needs weights='bernoulli', arity=2 and the analytic (mean) readout"
        )
    use_sparse = method == "sparse" or (
        method == "auto" and sparse_ok and _sparse_cost(net, active) < _tiles_cost(net, active)
    )
    acc = ErrorAccumulator(net.arity, active.shape[0], bins, xp)
    acc.add_counts(net.n_features, active.shape[1], active.shape[0])
    act = asarray(active, xp)
    if use_sparse:
        acts = net.activations(act) if activations is None else activations
        bernoulli_pair_errors(
            net.W, acts, act, acc, tile_bytes=TILE_BYTES, tile_entries=tile, progress=progress
        )
    else:
        _evaluate_tiles(net, readout, act, activations, acc, tile, progress)
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


INPUTS_KINDS = ("uniform", "at_most")
"""Which s-sparse inputs a measurement draws: exactly ``s`` active features, or every count ``0..s``."""


def sample_counts(
    n_features: int, counts: Sequence[int], n_samples: int, *, seed: object = 0
) -> dict[int, np.ndarray]:
    r"""``n_samples`` random inputs with exactly :math:`n` active features, for every :math:`n` in ``counts``.

    Count :math:`n` is drawn from its own stream (``SeedSequence`` spawned from ``seed``, one
    child per position in ``counts``), so adding a count leaves the others' inputs unchanged.

    Returns
    -------
    dict
        :math:`n \mapsto` int64 array ``(n_samples, n)`` (:func:`superposition.sample_sparse`;
        shape ``(n_samples, 0)`` for :math:`n = 0`).
    """
    m = check_int("n_features", n_features, low=1)
    k = check_int("n_samples", n_samples, low=1)
    ns = [check_int("count", n, low=0, high=m) for n in counts]
    if len(set(ns)) != len(ns):
        raise ValueError(f"counts must be distinct, got {list(counts)}")
    ss = seed if isinstance(seed, np.random.SeedSequence) else None
    if ss is None:
        ss = np.random.SeedSequence(int(as_generator(seed).integers(0, 2**63)))
    out = {}
    for n, child in zip(ns, ss.spawn(len(ns)), strict=True):
        if n == 0:
            out[n] = np.zeros((k, 0), dtype=np.int64)
        else:
            out[n] = sample_sparse(m, n, k, seed=np.random.default_rng(child))
    return out


def input_counts(sparsity: int, inputs_kind: str = "uniform") -> tuple[int, ...]:
    """The active counts an ``inputs_kind`` covers: ``(s,)`` (``"uniform"``) or ``(0, 1, ..., s)`` (``"at_most"``)."""
    s = check_int("sparsity", sparsity, low=0)
    kind = check_choice("inputs_kind", inputs_kind, INPUTS_KINDS)
    return (s,) if kind == "uniform" else tuple(range(s + 1))


def _evaluate_tiles(
    net: UAnd,
    readout: Readout,
    active: Any,
    activations: Any,
    acc: ErrorAccumulator,
    tile: int | None,
    progress: bool | None,
) -> None:
    """Dense tiles over the lexicographic order of outputs (any construction and readout)."""
    xp = acc.xp
    m, n, d = net.n_features, net.arity, net.neurons
    n_out = comb(m, n)
    k_all = active.shape[0]
    chunk = max(1, min(k_all, TILE_BYTES // (64 * max(d, 1))))  # inputs per pass
    bar = tqdm(total=k_all * n_out, disable=_disable(progress), unit="out", unit_scale=True)
    for k0 in range(0, k_all, chunk):
        act = active[k0 : k0 + chunk, :]
        kk = act.shape[0]
        t = tile or max(1, TILE_BYTES // (8 * (d + 6 * kk)))
        x = indicator(act, m, xp.int8)
        acts = net.activations(act) if activations is None else activations[k0 : k0 + chunk, :]
        prepared = readout.prepare(acts)
        for f0 in range(0, n_out, t):
            tup_host = tuple_unrank(np.arange(f0, min(f0 + t, n_out)), m, n)
            tup = asarray(tup_host, xp)
            yhat = readout.outputs(prepared, tup_host)
            J = xp.take(x, tup[:, 0], axis=1)
            for j in range(1, n):
                J = J + xp.take(x, tup[:, j], axis=1)
            acc.add_tile(yhat, J, k0)
            bar.update(kk * tup_host.shape[0])
    bar.close()


def _sparse_cost(net: UAnd, active: np.ndarray) -> float:
    """Rough seconds for the sparse pair algorithm (constants measured on a 2-core x86 machine)."""
    m, d, p = net.n_features, net.neurons, net.p
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
    """Rough seconds for dense output tiles (a dense ``(d, t)`` product per tile)."""
    k = active.shape[0]
    return k * net.n_outputs * (4e-8 + 2e-11 * net.neurons)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + l) for s, l in zip(starts, lengths)])`` (host indices)."""
    return to_numpy(ranges(np.asarray(starts, np.int64), np.asarray(lengths, np.int64)))


def _disable(progress: bool | None) -> bool | None:
    return None if progress is None else not progress
