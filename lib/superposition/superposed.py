r"""Universal AND with inputs in superposition (the paper's Theorem 2), and the minimal width.

The network no longer reads the boolean vector :math:`x \in \{0,1\}^m` itself but its
embedding :math:`a_0 = \Phi x \in \mathbb R^{d_0}` (:class:`superposition.embedding.Embedding`,
:math:`d_0 < m`). The first layer is :math:`W_{\text{in}} = W\Phi^\top` with :math:`W` any
U-AND wiring of :mod:`superposition.uand`:

.. math::
    a = \mathrm{ReLU}\bigl(W\,\Phi^\top \Phi x + b\bigr)
      = \mathrm{ReLU}\bigl(W x + W e + b\bigr), \qquad e = \Phi^\top\Phi x - x,

so each neuron sees its basis-aligned pre-activation plus the noise :math:`W_i\cdot e`, the sum
of the embedding readout errors of the features it is wired to. :math:`W_{\text{in}}`
(shape ``(d, d0)``) is never formed: :math:`\Phi^\top a_0` is a block-by-block readout
(:meth:`Embedding.readout`) and :math:`W` is applied to it (sparse for Bernoulli weights).

* :func:`build_superposed_uand` builds a layer; :class:`SuperposedUAnd` computes its activations.
* Bernoulli weights use :func:`superposed_p` by default, the connection probability that
  balances the paper's two constraints (noise :math:`\sqrt{pms/d_0}` small, :math:`dp^2` large).
* Sign-symmetric weights keep the analytic readout :math:`\mathrm{sgn}(W_{ik}W_{il})/(d\,c)`
  with :math:`c` recalibrated for the noise (:func:`superposed_sign_constant`).
* :func:`evaluate_superposed` gives exact statistics of all :math:`\binom mn` outputs (any
  arity, any readout); :func:`max_errors` gives the per-input worst error per output pattern
  (arity 2, analytic readouts) with dense float32 products, fast enough for width searches.
* :func:`output_embedding_errors` writes the outputs back into superposition with a fresh
  random embedding :math:`\Psi` of the :math:`\binom m2` ANDs and measures the readout there.
* :func:`minimal_width` is the search for :math:`d^*(m;\varepsilon,s)`; :func:`seed_widths`
  gives per-seed thresholds, to which :func:`superposition.fit.fit_power_law` fits the growth
  exponent with a seed-level bootstrap interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from math import comb
from typing import Any

import numpy as np
import scipy.linalg.blas as blas

from . import theory
from ._validate import (
    check_active,
    check_choice,
    check_int,
    check_probability,
    check_real,
    check_sparsity,
)
from .backend import asarray, evaluation_namespace, is_numpy, name_of, namespace, to_numpy
from .embedding import (
    EMBEDDING_KINDS,
    Embedding,
    indicator,
    sample_feature_readouts,
    sample_sparse,
)
from .kernels import (
    Wiring,
    bernoulli_worst_errors,
    relu,
    sign_pair_errors,
    sign_readout_tolerance,
)
from .search import fraction_passing, smallest_passing
from .store import Checkpoint
from .uand import (
    WEIGHTS,
    MeanReadout,
    Readout,
    SignReadout,
    UAnd,
    UAndErrors,
    build_uand,
    evaluate_uand,
    tuple_rank,
)

EMBED_TIED = "tied"
"""``embed_dim="tied"`` in :func:`minimal_width`: the embedding dimension equals the number of neurons."""
MAX_DENSE_ELEMENTS = 2**27
"""Largest ``neurons * n_features`` (or ``n_features**2``) :func:`max_errors` holds densely
(float32: 512 MiB)."""


# ---------------------------------------------------------------- theory of the noise


def embedding_noise_var(n_features: int, sparsity: int, embed_dim: int) -> float:
    r"""Expected :math:`\|e\|^2` for :math:`e = \Phi^\top\Phi x - x`: :math:`s(m-1)/d_0`.

    Each of the :math:`m-s` inactive features reads :math:`s` overlaps and each active one
    :math:`s-1`, every overlap of variance :math:`1/d_0` (exactly, for both embedding kinds).
    A neuron with weights :math:`W_i` sees noise :math:`W_i \cdot e`: variance
    :math:`\|e\|^2` for :math:`\pm1` weights, about :math:`p\|e\|^2` for Bernoulli(:math:`p`).
    """
    m = check_int("n_features", n_features, low=1)
    s = check_sparsity(sparsity, m)
    d0 = check_int("embed_dim", embed_dim, low=1)
    return s * (m - 1) / d0


def superposed_p(n_features: int, neurons: int, sparsity: int, embed_dim: int | None) -> float:
    r"""Bernoulli connection probability for superposed inputs (arity 2).

    The worst output of a Bernoulli layer is biased by the other active features,
    :math:`s'p` (:math:`s' = \max(s-1,1)`), and by the rectified superposition noise, whose
    scale is :math:`\sigma(p) = \sqrt{p\,m\,s/d_0}` (a neuron sums the readout errors of its
    :math:`\approx pm` features); it fluctuates on the scale :math:`1/\sqrt{dp^2}` of a mean
    over :math:`|\Gamma| \approx dp^2` neurons. The rule equates the two:

    .. math:: s'p + \sqrt{p\,m\,s/d_0} = \frac{1}{p\sqrt d}.

    The left side increases and the right side decreases with :math:`p`, so the root is
    unique (found by bisection; capped at 1). With :math:`d_0 = \infty` (``embed_dim=None``)
    it is :func:`superposition.theory.worst_case_p`, :math:`(s'^2d)^{-1/4}`. With
    :math:`d_0 = d` and large :math:`m` the noise term wins:
    :math:`p \approx (ms)^{-1/3}`, :math:`dp^2 \approx d\,(ms)^{-2/3}`: the number of neurons must grow
    like :math:`(ms)^{2/3}`, the paper's argument.
    """
    m = check_int("n_features", n_features, low=2)
    d = check_int("neurons", neurons, low=1)
    s = check_sparsity(sparsity, m)
    if embed_dim is None:
        return theory.worst_case_p(d, s)
    noise = m * s / check_int("embed_dim", embed_dim, low=1)
    s1 = max(s - 1, 1)

    def gap(p: float) -> float:
        return s1 * p + np.sqrt(p * noise) - 1.0 / (p * np.sqrt(d))

    if gap(1.0) <= 0:
        return 1.0
    lo, hi = 1e-12, 1.0
    for _ in range(200):  # bisection in log p, far below float resolution
        mid = np.sqrt(lo * hi)
        if gap(mid) > 0:
            hi = mid
        else:
            lo = mid
        if hi / lo < 1 + 1e-13:
            break
    return float(hi)


def superposed_sign_constant(
    sparsity: int, weights: str, noise_var: float, *, bias: float = 0.0
) -> float:
    r""":math:`c = \mathbb E[\mathrm{sgn}(w_1w_2)\,\mathrm{ReLU}(w_1 + w_2 + Z + \beta + \eta)]` with noise.

    As :func:`superposition.theory.sign_readout_constant` (:math:`Z` the sum of the other
    :math:`s-2` active weights, :math:`\beta` = ``bias``), plus an independent
    :math:`\eta \sim N(0, \tau^2)`, :math:`\tau^2` = ``noise_var``: the superposition noise
    :math:`W_i\cdot e` of a neuron with :math:`\pm1` or :math:`N(0,1)` weights
    (:func:`embedding_noise_var`). Dividing by this :math:`c` keeps the analytic readout
    unbiased for inputs in superposition with exactly ``sparsity`` active features.

    * ``"gaussian"``, :math:`\beta = 0`: :math:`Z + \eta \sim N(0, s-2+\tau^2)`, so :math:`c`
      is the closed form of the basis-aligned case at the real "sparsity" :math:`s + \tau^2`.
    * ``"rademacher"``: :math:`c = \frac14(h(2) - 2h(0) + h(-2))`,
      :math:`h(\mu) = \mathbb E\,\mathrm{ReLU}(\mu + \beta + 2K - (s-2) + \eta)`,
      :math:`K\sim\mathrm{Bin}(s-2,\frac12)`: a finite mixture of Gaussian ReLU means.

    At ``noise_var = 0`` both equal the basis-aligned constant. The noise grows with the
    number of active features (:func:`embedding_noise_var`), so on inputs with fewer active
    features the readout needs the constant at their own count and noise
    (:meth:`superposition.uand.UAnd.sign_calibration`).
    """
    return theory.sign_readout_constant(sparsity, weights, bias=bias, noise_var=noise_var)


# ---------------------------------------------------------------- the layer


@dataclass(frozen=True, eq=False)
class SuperposedUAnd:
    r"""A U-AND layer reading its inputs from superposition: :math:`a = \mathrm{ReLU}(W\Phi^\top\Phi x + b)`.

    Build with :func:`build_superposed_uand`.

    Attributes
    ----------
    net : UAnd
        The wiring :math:`W` (``(neurons, n_features)``) and bias; ``net.activations`` is the
        basis-aligned layer.
    embedding : Embedding or None
        :math:`\Phi` (``(embed_dim, n_features)``); ``None`` reads :math:`x` itself
        (:math:`\Phi = I`, the basis-aligned limit).
    """

    net: UAnd
    embedding: Embedding | None = field(repr=False)

    @property
    def n_features(self) -> int:
        return self.net.n_features

    @property
    def neurons(self) -> int:
        return self.net.neurons

    @property
    def sparsity(self) -> int:
        return self.net.sparsity

    @property
    def arity(self) -> int:
        return self.net.arity

    @property
    def weights(self) -> str:
        return self.net.weights

    @property
    def p(self) -> float:
        return self.net.p

    @property
    def embed_dim(self) -> int | None:
        """:math:`d_0`, or ``None`` for basis-aligned inputs."""
        return None if self.embedding is None else self.embedding.embed_dim

    @property
    def noise_var(self) -> float:
        """:func:`embedding_noise_var` (0 for basis-aligned inputs)."""
        if self.embedding is None:
            return 0.0
        return embedding_noise_var(self.n_features, self.sparsity, self.embedding.embed_dim)

    @cached_property
    def readout(self) -> Readout:
        r"""The analytic readout: the Bernoulli mean over :math:`\Gamma`, or the sign readout
        recalibrated for the noise (:meth:`superposition.uand.UAnd.sign_readout` with
        :math:`\tau^2(n)` = :func:`embedding_noise_var` at each calibrated count :math:`n`):
        :math:`1/(d\,c)` with :math:`c` = :func:`superposed_sign_constant` at
        :math:`n = s` for the paper's layer."""
        if self.weights == "bernoulli":
            return MeanReadout(self.net.W, self.arity)
        if self.embedding is None:
            return self.net.readout
        m, d0 = self.n_features, self.embedding.embed_dim
        return self.net.sign_readout(noise_var=lambda n: embedding_noise_var(m, n, d0))

    def embedded(self, active: Any) -> Any:
        r"""The network's input :math:`\Phi x`, shape ``(K, embed_dim)`` (``(K, m)``: :math:`x`).

        In the evaluation namespace (:func:`superposition.backend.evaluation_namespace`).
        """
        active = check_active(active, self.n_features)
        xp = evaluation_namespace(active)
        act = asarray(active, xp)
        if self.embedding is None:
            return indicator(act, self.n_features)
        return self.embedding.embed(act)

    def feature_readout(self, active: Any) -> Any:
        r""":math:`\Phi^\top\Phi x = x + e`, shape ``(K, n_features)``, block by block."""
        a0 = self.embedded(active)
        return a0 if self.embedding is None else self.embedding.readout(a0)

    def preactivations(self, active: Any) -> Any:
        r""":math:`W\,(\Phi^\top\Phi x) + b`, float64 array of shape ``(K, neurons)``.

        Computed as :math:`W` times the feature readout: memory :math:`O(K(m + d))` beyond
        :math:`W`, and :math:`W\Phi^\top` is never formed (a sparse product for Bernoulli
        wiring, a dense one for sign-symmetric weights). :meth:`preactivations_from` on
        :meth:`embedded`.
        """
        return self.preactivations_from(self.embedded(active))

    def preactivations_from(self, a0: Any) -> Any:
        r""":math:`W\,(\Phi^\top a_0) + b` for embedded inputs ``a0`` ``(K, embed_dim)`` → ``(K, neurons)``.

        The layer itself, on any input it may receive (:math:`\Phi x` plus noise, say); with
        :math:`\Phi = I` (``embed_dim`` None), ``a0`` is ``(K, n_features)``. In the namespace
        of ``a0``.
        """
        dim = self.n_features if self.embedding is None else self.embedding.embed_dim
        if len(a0.shape) != 2 or a0.shape[1] != dim:
            raise ValueError(f"a0 must have shape (n_samples, {dim}), got {tuple(a0.shape)}")
        z = a0 if self.embedding is None else self.embedding.readout(a0)
        xp = namespace(z)
        z = xp.astype(z, xp.float64)
        if isinstance(self.net.W, Wiring):
            return self.net.W.product(z, self.net.bias)
        W = self.net.W
        if not is_numpy(xp):
            key = f"_W_{name_of(xp)}"
            if key not in self.__dict__:
                self.__dict__[key] = asarray(self.net.W, xp)
            W = self.__dict__[key]
        return xp.matrix_transpose(W @ xp.matrix_transpose(z)) + self.net.bias_in(xp)

    def activations(self, active: Any) -> Any:
        r""":math:`a = \mathrm{ReLU}(W\Phi^\top\Phi x + b)`, shape ``(K, neurons)``."""
        return self.activations_from(self.embedded(active))

    def activations_from(self, a0: Any) -> Any:
        r""":math:`a = \mathrm{ReLU}(W\Phi^\top a_0 + b)` for embedded inputs ``a0`` (see :meth:`preactivations_from`)."""
        h = self.preactivations_from(a0)
        return namespace(h).maximum(h, 0.0)

    def input_weights(self) -> np.ndarray:
        r"""The dense first layer :math:`W_{\text{in}} = W\Phi^\top`, shape ``(neurons, embed_dim)``.

        Materialised: for checks at small sizes only (the layer itself never forms it).
        """
        if self.embedding is None:
            raise ValueError("input_weights needs an embedding (embed_dim is None)")
        return self.net.dense() @ self.embedding.matrix().T


def build_superposed_uand(
    n_features: int,
    neurons: int,
    sparsity: int,
    embed_dim: int | None,
    *,
    weights: str = "bernoulli",
    arity: int = 2,
    p: float | str | None = None,
    embedding_kind: str = "gaussian",
    bias: float | Sequence[float] | str | None = None,
    seed: object = 0,
) -> SuperposedUAnd:
    r"""A random U-AND layer whose inputs are :math:`\Phi x` with a random :math:`\Phi`.

    Parameters
    ----------
    n_features, neurons, sparsity : int
        :math:`m, d, s` as in :func:`superposition.uand.build_uand`.
    embed_dim : int or None
        :math:`d_0 \ge 1`; ``None`` feeds :math:`x` itself (:math:`\Phi = I`).
    weights : {"bernoulli", "rademacher", "gaussian"}
    arity : int
    p : float, "superposed", "balanced", "worst_case", "paper" or None
        Bernoulli connection probability. ``None`` or ``"superposed"``: :func:`superposed_p`
        (arity 2; for other arities ``"balanced"``). Other values as in
        :func:`superposition.uand.connection_probability`. Must be ``None`` for sign-symmetric
        weights.
    embedding_kind : {"gaussian", "sign"}
        Columns of :math:`\Phi` (:class:`superposition.embedding.Embedding`).
    bias : float, sequence of float, "count_free" or None
        Sign-symmetric weights: as in :func:`superposition.uand.build_uand`; ``"count_free"``
        designs the groups for the noise of every count
        (:func:`superposition.theory.count_free_design` with :math:`\tau^2(n)` =
        :func:`embedding_noise_var`).
    seed : int, SeedSequence or Generator
        Split into independent streams for :math:`W` and :math:`\Phi`.

    Returns
    -------
    SuperposedUAnd
    """
    m = check_int("n_features", n_features, low=1)
    d = check_int("neurons", neurons, low=1)
    s = check_sparsity(sparsity, m)
    w = check_choice("weights", weights, WEIGHTS)
    n = check_int("arity", arity, low=2)
    if embed_dim is not None:
        check_int("embed_dim", embed_dim, low=1)
    kind = check_choice("embedding_kind", embedding_kind, EMBEDDING_KINDS)
    ss = _seed_sequence(seed)
    w_seed, phi_seed = ss.spawn(2)
    if w == "bernoulli" and (p is None or p == "superposed"):
        if n == 2 and m >= 2:
            p = superposed_p(m, d, s, embed_dim)
        else:
            p = "balanced"
    elif p == "superposed":
        raise ValueError(f"p='superposed' applies to weights='bernoulli' only, got weights={w!r}")
    if bias == "count_free" and w != "bernoulli" and embed_dim is not None:
        tau2 = [embedding_noise_var(m, c, embed_dim) for c in range(2, s + 1)]
        bias = list(theory.count_free_design(s, w, noise_vars=tau2).biases)
    net = build_uand(
        m, d, s, weights=w, arity=n, p=p, bias=bias, seed=np.random.default_rng(w_seed)
    )
    emb = None
    if embed_dim is not None:
        emb = Embedding(m, embed_dim, embedding_kind=kind, seed=int(phi_seed.generate_state(1)[0]))
    return SuperposedUAnd(net, emb)


def _seed_sequence(seed: object) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(0, 2**63)))
    check_int("seed", seed, low=0)
    return np.random.SeedSequence(int(seed))


# ---------------------------------------------------------------- evaluation


def evaluate_superposed(
    snet: SuperposedUAnd,
    active: np.ndarray,
    *,
    readout: Readout | None = None,
    tile: int | None = None,
    bins: np.ndarray | None = None,
    progress: bool | None = False,
) -> UAndErrors:
    r"""Exact errors of all :math:`\binom mn` outputs on superposed inputs (any arity, any readout).

    The activations are computed from :math:`\Phi x` and handed to
    :func:`superposition.uand.evaluate_uand`: the sparse pair algorithm for the Bernoulli mean
    readout of arity 2, dense output tiles otherwise. ``readout`` defaults to ``snet.readout``.
    """
    readout = snet.readout if readout is None else readout
    active = check_active(active, snet.n_features)
    return evaluate_uand(
        snet.net,
        active,
        readout=readout,
        method="auto",
        tile=tile,
        bins=bins,
        progress=progress,
        activations=snet.activations(active),
    )


@dataclass(frozen=True)
class PatternMax:
    r"""Worst error per input and output pattern, and error sums per pattern (arity 2).

    Attributes
    ----------
    per_input : float array, shape ``(K, 3)``
        Column ``j``: :math:`\max |\hat y_{kl} - x_kx_l|` over the outputs with ``j`` of their
        two features active (0 where an input has no such output).
    count : int64 array, shape ``(3,)``
        Outputs of each pattern, summed over the inputs evaluated.
    sum, sum_abs : float arrays, shape ``(3,)``
        :math:`\sum \text{err}` and :math:`\sum|\text{err}|` per pattern.
    """

    per_input: np.ndarray
    count: np.ndarray
    sum: np.ndarray
    sum_abs: np.ndarray

    @property
    def max_abs_error(self) -> float:
        """Worst error over every output of every input."""
        return float(self.per_input.max(initial=0.0))

    @property
    def mean_abs_error(self) -> float:
        r"""Mean :math:`|\text{err}|` over every output of every input."""
        return float(self.sum_abs.sum() / max(int(self.count.sum()), 1))

    def pattern(self, j: int) -> dict[str, float | int | None]:
        """``count``, ``mean`` (signed), ``mean_abs`` and ``max_abs`` over outputs of pattern ``j``."""
        j = check_int("j", j, low=0, high=2)
        cnt = int(self.count[j])
        if cnt == 0:
            return {"count": 0, "mean": None, "mean_abs": None, "max_abs": None}
        return {
            "count": cnt,
            "mean": float(self.sum[j] / cnt),
            "mean_abs": float(self.sum_abs[j] / cnt),
            "max_abs": float(self.per_input[:, j].max()),
        }

    @property
    def input_max_abs(self) -> np.ndarray:
        """Worst error of each input, shape ``(K,)``."""
        return self.per_input.max(axis=1)


def max_errors(
    snet: SuperposedUAnd,
    active: np.ndarray,
    *,
    stop_above: float | None = None,
    outputs: bool = False,
) -> PatternMax | tuple[PatternMax, list[np.ndarray]]:
    r"""Per-input worst error of every AND output, split by pattern (arity 2, analytic readout).

    For one input with activations :math:`a`, every output at once is
    :math:`\hat Y = Q \circ (B^\top B)` with :math:`B = \mathrm{diag}(\sqrt{a_F})\,W_F`, the rows
    of the firing neurons :math:`F = \{i : a_i > 0\}` (a symmetric rank-:math:`|F|` update,
    BLAS ``ssyrk``, float32), and :math:`Q_{kl} = 1/|\Gamma(k,l)|` from the Gram matrix
    :math:`W^\top W` (Bernoulli; 0 where :math:`\Gamma` is empty) or :math:`Q = 1/(d\,c)`
    (sign-symmetric). Time :math:`O(m^2(d + K|F|))`, memory :math:`O(m^2 + dm)` float32.
    float32 sums of at most :math:`d` terms of size :math:`O(1)`: relative error
    :math:`\lesssim 10^{-6}`.

    Parameters
    ----------
    snet : SuperposedUAnd
        Arity 2 (any embedding, or none).
    active : int array, shape ``(K, s')``
    stop_above : float, optional
        Stop after the first input whose worst error exceeds this (the remaining rows are 0
        and the sums cover the inputs evaluated): enough to decide "max error ≤ ε".
    outputs : bool
        Also return, per input, the :math:`\binom m2` outputs in lexicographic order (float32).

    Returns
    -------
    PatternMax, or ``(PatternMax, list of arrays)`` with ``outputs=True``.
    """
    if snet.arity != 2:
        raise ValueError(f"max_errors needs arity 2, got {snet.arity}; use evaluate_superposed")
    m, d = snet.n_features, snet.neurons
    if m * m > MAX_DENSE_ELEMENTS or m * d > MAX_DENSE_ELEMENTS:
        raise ValueError(
            f"n_features={m}, neurons={d} exceed the dense budget of max_errors "
            f"(m*m and m*d <= {MAX_DENSE_ELEMENTS})"
        )
    if stop_above is not None:
        stop_above = check_real("stop_above", stop_above, low=0.0)
    active = check_active(active, m)
    xp = evaluation_namespace(active)
    act_host = to_numpy(active)
    k_all = act_host.shape[0]
    A = snet.activations(asarray(active, xp))
    bern = snet.weights == "bernoulli"
    W = snet.net.W
    Wd = W.to(xp).toarray() if bern else asarray(np.sign(W), xp)  # (d, m)
    Wd = xp.astype(Wd, xp.float32)
    upper = xp.arange(m)[None, :] > xp.arange(m)[:, None]  # strict upper triangle
    if bern:
        gram = _gram_upper(Wd)  # (m, m): |Γ(k, l)| above the diagonal
        q = xp.where(upper & (gram > 0), 1.0 / xp.where(gram > 0, gram, 1.0), 0.0)
        del gram
    else:
        # the analytic readout's scale, without building its dense sign matrix
        readout = snet.readout
        if not isinstance(readout, SignReadout) or readout.coef is not None:
            raise ValueError(
                "max_errors needs one bias for every neuron; use evaluate_superposed for a "
                "layer with bias groups"
            )
        scale = readout.scale
        q = xp.where(upper, xp.asarray(scale, dtype=xp.float32), xp.asarray(0.0, dtype=xp.float32))
    q = xp.astype(q, xp.float32)
    per = np.zeros((k_all, 3))
    count = np.zeros(3, dtype=np.int64)
    tot = np.zeros(3)
    tot_abs = np.zeros(3)
    outs: list[Any] = []
    for t in range(k_all):
        F = xp.nonzero(A[t, :] > 0)[0]
        if F.shape[0]:
            B = (
                xp.take(Wd, F, axis=0)
                * xp.astype(xp.sqrt(xp.take(A[t, :], F)), xp.float32)[:, None]
            )
            Y = _gram_upper(B) * q
        else:
            Y = xp.zeros((m, m), dtype=xp.float32)
        if outputs:
            outs.append(Y[upper])
        s_ = act_host.shape[1]
        act = asarray(act_host[t], xp)
        # pattern 2: pairs of active features; pattern 1: their rows and columns; 0: the rest
        on = xp.sum(xp.astype(xp.arange(m)[:, None] == act[None, :], xp.float32), axis=1) > 0
        rows = xp.take(Y, act, axis=0)  # (s, m)
        cols = xp.take(Y, act, axis=1)  # (m, s)
        sub = xp.take(rows, act, axis=1)  # (s, s), upper triangle filled
        e2 = sub[xp.arange(s_)[None, :] > xp.arange(s_)[:, None]] - 1.0
        zero = xp.zeros_like(Y)
        Y0 = xp.where(on[:, None] | on[None, :], zero, Y)
        per[t, 0] = max(float(xp.max(Y0)), -float(xp.min(Y0))) if m else 0.0
        y0 = float(xp.sum(xp.astype(Y0, xp.float64)))
        tot[0] += y0
        tot_abs[0] += y0 if bern else float(xp.sum(xp.astype(xp.abs(Y0), xp.float64)))  # Y >= 0
        rows = xp.where(on[None, :], xp.zeros_like(rows), rows)
        cols = xp.where(on[:, None], xp.zeros_like(cols), cols)
        e1 = xp.astype(xp.concat([xp.reshape(rows, (-1,)), xp.reshape(cols, (-1,))]), xp.float64)
        e2 = xp.astype(e2, xp.float64)
        per[t, 1] = float(xp.max(xp.abs(e1))) if e1.shape[0] else 0.0
        per[t, 2] = float(xp.max(xp.abs(e2))) if e2.shape[0] else 0.0
        tot[1] += float(xp.sum(e1))
        tot_abs[1] += float(xp.sum(xp.abs(e1)))
        tot[2] += float(xp.sum(e2))
        tot_abs[2] += float(xp.sum(xp.abs(e2)))
        count += (comb(m - s_, 2), s_ * (m - s_), comb(s_, 2))
        if stop_above is not None and per[t].max() > stop_above:
            break
    res = PatternMax(per, count, tot, tot_abs)
    return (res, outs) if outputs else res


def _gram_upper(B: Any) -> Any:
    r""":math:`B^\top B` in float32, at least its upper triangle (BLAS ``ssyrk`` on NumPy: half
    the flops; a full matrix product elsewhere)."""
    xp = namespace(B)
    if is_numpy(xp):
        return blas.ssyrk(1.0, np.asfortranarray(B, dtype=np.float32), trans=1)
    return xp.matrix_transpose(B) @ B


# ---------------------------------------------------------------- outputs back into superposition


def output_embedding_errors(
    snet: SuperposedUAnd,
    active: np.ndarray,
    *,
    out_dim: int | None = None,
    embedding_kind: str = "gaussian",
    seed: object = 1,
) -> dict[str, float]:
    r"""Write the :math:`\binom m2` AND outputs into superposition and read them back there.

    With a fresh random embedding :math:`\Psi` (``(out_dim, C(m, 2))``, seeded blocks) the
    next layer receives :math:`o = \Psi\hat y` and reads output :math:`T` as
    :math:`\psi_T\cdot o = \hat y_T + \sum_{T'\ne T}\hat y_{T'}\,\psi_T\cdot\psi_{T'}`.
    Every nonzero output, not only the :math:`\binom s2` true ANDs, adds crosstalk.

    Parameters
    ----------
    snet : SuperposedUAnd
        Arity 2.
    active : int array, shape ``(K, s)``
    out_dim : int, optional
        Dimension of the output space; defaults to ``snet.neurons`` (the layer writes a
        ``d``-dimensional output).
    embedding_kind : {"gaussian", "sign"}
    seed : int
        Seed of :math:`\Psi`.

    Returns
    -------
    dict
        ``out_dim``; ``max_abs_error`` and ``mean_abs_error`` of :math:`\psi_T\cdot o` against
        :math:`x_kx_l` over all outputs and inputs; ``ideal_max_abs_error``: the same for
        :math:`o = \Psi y` with the exact ANDs (embedding crosstalk alone).
    """
    m = snet.n_features
    if m < 2:
        raise ValueError("output_embedding_errors needs n_features >= 2")
    dout = snet.neurons if out_dim is None else check_int("out_dim", out_dim, low=1)
    check_int("seed", seed, low=0)
    active = check_active(active, m)
    n_out = comb(m, 2)
    psi = Embedding(n_out, dout, embedding_kind=embedding_kind, seed=int(seed), dtype=np.float32)
    _, outs = max_errors(snet, active, outputs=True)
    xp = namespace(outs[0])
    act_host = to_numpy(active)
    worst = ideal = 0.0
    total = 0.0
    # inputs in groups: both the network's and the exact outputs of a group go through one
    # block-wise product O = Ψ Y and one batched readout (GEMM-shaped, not one matvec per input)
    group = max(1, min(len(outs), (1 << 27) // (8 * n_out)))
    for start in range(0, len(outs), group):
        stop = min(len(outs), start + group)
        k = stop - start
        exact = np.zeros((k, n_out), dtype=np.float32)  # the true ANDs, set on the host
        for j, t in enumerate(range(start, stop)):
            a_t = act_host[t]
            pairs = np.array([(u, v) for i, u in enumerate(a_t) for v in a_t[i + 1 :]], np.int64)
            if pairs.size:
                exact[j, tuple_rank(pairs.reshape(-1, 2), m)] = 1.0
        y_exact = asarray(exact, xp)
        y = xp.concat([xp.stack(outs[start:stop], axis=0), y_exact], axis=0)  # (2k, n_out)
        o = xp.zeros((2 * k, dout), dtype=xp.float32)
        for first, blk in psi.blocks(xp):
            o = o + y[:, first : first + blk.shape[1]] @ xp.matrix_transpose(blk)
        back = xp.astype(psi.readout(o), xp.float64)  # (2k, n_out); targets y_exact
        err = xp.abs(back - xp.concat([y_exact, y_exact], axis=0))
        worst = max(worst, float(xp.max(err[:k, :])))
        total += float(xp.sum(err[:k, :]))
        ideal = max(ideal, float(xp.max(err[k:, :])))
    return {
        "out_dim": dout,
        "max_abs_error": worst,
        "mean_abs_error": total / (n_out * active.shape[0]),
        "ideal_max_abs_error": ideal,
    }


# ---------------------------------------------------------------- minimal width

PHI = ("seeded", "sampled")
r"""How a width trial reads :math:`\Phi`: ``"seeded"``, the library's :class:`Embedding` (its
seeded blocks, :math:`\Phi^\top\Phi x` computed); ``"sampled"``, the readouts
:math:`\Phi^\top\Phi x` drawn from their exact joint law without :math:`\Phi`
(:func:`superposition.embedding.sample_feature_readouts`; Gaussian embedding only)."""
INPUTS_KINDS = ("uniform", "at_most")
"""The inputs of a width trial: ``"uniform"``, every input with exactly ``sparsity`` active
features; ``"at_most"``, inputs with ``sparsity``, ``sparsity - 1``, …, 1 active features in
turn (the paper's s-sparse inputs have at most s)."""
P_SCALES = (0.71, 1.0, 1.41, 2.0, 2.83)
"""The multipliers :math:`\\kappa` of the rule :func:`superposed_p` that ``p="best"`` tries."""
P_MODES = ("best", "superposed", "paper")
"""Named connection probabilities of the width search: the best multiple of the rule,
the rule :func:`superposed_p` itself, the paper's :math:`\\ln^2 m/\\sqrt d`."""


@dataclass(frozen=True)
class WidthTrial:
    r"""The worst errors of one random network at one width (:func:`width_trial`).

    Attributes
    ----------
    neurons : int
        :math:`d`.
    embed_dim : int or None
        :math:`d_0` (``None``: basis-aligned inputs).
    p : float
        The connection probability used (1 for sign-symmetric weights).
    per_input : float64 array, shape ``(K', 3)``
        Worst error per input and output pattern, for the ``K'`` inputs evaluated
        (:class:`superposition.kernels.WorstErrors`; the sign path adds the rows of
        :func:`superposition.kernels.sign_pair_errors`).
    n_samples : int
        Inputs drawn (``K' < n_samples`` when the trial stopped at a failing input).
    firing : int64 array, shape ``(K',)``
        Firing neurons of each input evaluated.
    seconds : float
        Time taken.
    backend : str
    """

    neurons: int
    embed_dim: int | None
    p: float
    per_input: np.ndarray
    n_samples: int
    firing: np.ndarray
    seconds: float
    backend: str = "numpy"

    @property
    def max_abs_error(self) -> float:
        """Worst error over every output of the inputs evaluated."""
        return float(self.per_input.max(initial=0.0))


def trial_inputs(
    n_features: int, sparsity: int, n_samples: int, seed: int, inputs_kind: str = "uniform"
) -> list[np.ndarray]:
    r"""The inputs of every width trial of seed ``seed``, in groups by number of active features.

    Drawn from ``SeedSequence([seed, 1])``: the same inputs at every width. ``"uniform"``: one
    group ``(n_samples, sparsity)`` (:func:`superposition.embedding.sample_sparse`).
    ``"at_most"``: input ``t`` has ``sparsity - (t mod sparsity)`` active features; one group
    per count, from ``sparsity`` down to 1.
    """
    m = check_int("n_features", n_features, low=2)
    s = check_sparsity(sparsity, m)
    k = check_int("n_samples", n_samples, low=1)
    kind = check_choice("inputs_kind", inputs_kind, INPUTS_KINDS)
    rng = np.random.default_rng(np.random.SeedSequence([check_int("seed", seed, low=0), 1]))
    if kind == "uniform":
        return [sample_sparse(m, s, k, seed=rng)]
    counts = [s - (t % s) for t in range(k)]
    return [sample_sparse(m, j, counts.count(j), seed=rng) for j in range(s, 0, -1) if j in counts]


def resolve_p(
    p: float | str | None, n_features: int, neurons: int, sparsity: int, embed_dim: int | None
) -> float:
    r"""The connection probability a width trial uses (before a ``p_scale``).

    ``None`` or ``"superposed"``: :func:`superposed_p`; ``"paper"``:
    :func:`superposition.theory.paper_p`, a ``ValueError`` where it exceeds 1
    (``neurons`` :math:`\le \ln^4 m`); a float in (0, 1]: itself.
    """
    if p is None or p == "superposed":
        return superposed_p(n_features, neurons, sparsity, embed_dim)
    if isinstance(p, str):
        check_choice("p", p, ("superposed", "paper"))
        value = theory.paper_p(n_features, neurons)
        if value > 1:
            raise ValueError(
                f"p='paper' is ln(m)^2/sqrt(d) = {value:.3g} > 1 for n_features={n_features}, "
                f"neurons={neurons}; it needs neurons > ln(m)^4 = "
                f"{theory.paper_min_neurons(n_features):.0f}"
            )
        return value
    return check_probability("p", p)


def width_trial(
    n_features: int,
    neurons: int,
    sparsity: int,
    *,
    embed_dim: int | str | None = EMBED_TIED,
    weights: str = "bernoulli",
    n_samples: int = 16,
    seed: int = 0,
    stop_above: float | None = None,
    p: float | str | None = None,
    p_scale: float = 1.0,
    phi: str = "seeded",
    inputs_kind: str = "uniform",
    checkpoint: Checkpoint | None = None,
) -> WidthTrial:
    r"""Worst errors of one random network of ``neurons`` neurons (seed ``seed``) on ``n_samples`` inputs.

    The network is drawn from ``SeedSequence([seed, neurons, d0])`` (split as in
    :func:`build_superposed_uand`: :math:`W` then :math:`\Phi`) and the inputs from
    ``SeedSequence([seed, 1])`` (:func:`trial_inputs`): the same inputs at every number of
    neurons, a fresh network at each. Every output of every input is evaluated exactly:

    * Bernoulli weights: :func:`superposition.kernels.bernoulli_worst_errors` (float64, no
      Gram matrix, nothing of size :math:`m^2`);
    * sign-symmetric weights: :func:`superposition.kernels.sign_pair_errors` one input at a time
      in float32; an input whose worst error lies within the float32 rounding bound
      (:func:`superposition.kernels.sign_readout_tolerance`) of ``stop_above`` is evaluated
      again in float64, so the decision "at most ``stop_above``" is exact.

    Parameters
    ----------
    n_features, neurons, sparsity : int
    embed_dim : int, "tied" or None
        :math:`d_0`; ``"tied"``: :math:`d_0 = d`; ``None``: basis-aligned inputs.
    weights : {"bernoulli", "rademacher", "gaussian"}
    n_samples : int
    seed : int
    stop_above : float, optional
        Stop at the first input whose worst error exceeds it (enough to decide a pass).
    p : float, "superposed", "paper" or None
        Bernoulli connection probability before ``p_scale`` (:func:`resolve_p`).
    p_scale : float
        :math:`\kappa > 0`: the trial uses :math:`\min(1, \kappa p)`.
    phi : {"seeded", "sampled"}
        See :data:`PHI`. ``"sampled"`` needs an ``embed_dim``; it draws the same law as the
        Gaussian :class:`Embedding`, not its bits.
    inputs_kind : {"uniform", "at_most"}
        See :data:`INPUTS_KINDS`.
    checkpoint : superposition.store.Checkpoint, optional
        Keep each input's worst errors as it finishes (step ``{"neurons": d, "input": t}``)
        and read back those an interrupted run finished: a trial that takes hours resumes at
        its last finished input, with the same numbers (inputs are independent; the kernels'
        routes differ only in speed).

    Returns
    -------
    WidthTrial
    """
    start = time.perf_counter()
    if stop_above is not None:
        stop_above = check_real("stop_above", stop_above, low=0.0)
    layer = trial_layer(
        n_features, neurons, sparsity, embed_dim=embed_dim, weights=weights,
        n_samples=n_samples, seed=seed, p=p, p_scale=p_scale, phi=phi, inputs_kind=inputs_kind,
    )  # fmt: skip
    xp = layer.namespace
    net = layer.net
    rows, firing = _finished_inputs(checkpoint, layer.neurons, layer.n_samples)
    clock = [time.perf_counter(), time.process_time()]

    def keep(t: int, row: np.ndarray, n_fire: int) -> None:
        rows.append(np.asarray(row, dtype=np.float64).reshape(3))
        firing.append(int(n_fire))
        if checkpoint is not None:  # the input is kept before the next one starts
            now = [time.perf_counter(), time.process_time()]
            checkpoint.record(
                {"neurons": layer.neurons, "input": t},
                {"per_input": [float(v) for v in rows[-1]], "firing": firing[-1]},
                wall_time=now[0] - clock[0],
                cpu_time=now[1] - clock[1],
            )
            clock[:] = now

    if layer.scale is None:  # Bernoulli: the mean readout over Γ(k, l)
        wiring = net.W.to(xp)
    else:
        weights64 = asarray(net.W, xp)  # (d, m) float64
        signs64 = weights64 if layer.weights == "rademacher" else xp.sign(weights64)
        signs = xp.astype(signs64, xp.float32)
    first = 0  # index of the group's first input among all the trial's inputs
    for g, a in zip(layer.groups, layer.activations(), strict=True):
        k = int(g.shape[0])
        have = max(0, min(len(rows) - first, k))  # inputs of the group an earlier run kept
        if 0 < have < k and stop_above is not None and float(rows[-1].max()) > stop_above:
            break  # the earlier run stopped here
        if have < k:
            rest, offset = slice(have, None), first + have
            if layer.scale is None:
                bernoulli_worst_errors(
                    wiring, a[rest, :], asarray(g[rest], xp), stop_above=stop_above,
                    on_input=lambda t, w, o=offset: keep(o + t, w.per_input[0], w.firing[0]),
                )  # fmt: skip
            else:
                _sign_rows(
                    signs, signs64, a[rest, :], asarray(g[rest], xp), layer.scale, stop_above,
                    on_input=lambda t, row, n, o=offset: keep(o + t, row, n),
                )  # fmt: skip
        first += k
        if len(rows) < first:  # an input exceeded stop_above before the group's end
            break
    per = np.stack(rows) if rows else np.zeros((0, 3))
    return WidthTrial(
        layer.neurons,
        layer.embed_dim,
        layer.p,
        per,
        layer.n_samples,
        np.asarray(firing, dtype=np.int64),
        time.perf_counter() - start,
        name_of(xp),
    )


def _finished_inputs(
    checkpoint: Checkpoint | None, neurons: int, n_samples: int
) -> tuple[list[np.ndarray], list[int]]:
    """The inputs of a width trial that an interrupted run finished (a prefix: inputs are
    evaluated, and kept, in order)."""
    rows: list[np.ndarray] = []
    firing: list[int] = []
    if checkpoint is None:
        return rows, firing
    for t in range(n_samples):
        kept = checkpoint.finished({"neurons": neurons, "input": t})
        if kept is None:
            break
        rows.append(np.asarray(kept["per_input"], dtype=np.float64).reshape(3))
        firing.append(int(kept["firing"]))
    return rows, firing


@dataclass(frozen=True, eq=False)
class TrialLayer:
    r"""The network and inputs of one width trial (:func:`trial_layer`).

    Attributes
    ----------
    net : superposition.uand.UAnd
        The layer (:math:`W` and its bias).
    groups : list of int arrays, shape ``(k_g, s_g)``
        Active features of the inputs, in groups of equal count (:func:`trial_inputs`).
    readouts : list of arrays, shape ``(k_g, m)``
        What the neurons read of each input, :math:`\Phi^\top\Phi x` (:math:`x` itself for
        basis-aligned inputs), in the evaluation namespace.
    weights : str
    neurons, n_samples : int
    embed_dim : int or None
    p : float
        The connection probability used (1 for sign-symmetric weights).
    scale : float or None
        The sign readout's :math:`1/(d\,c)` (:func:`superposed_sign_constant`); ``None`` for
        Bernoulli weights (mean readout).
    namespace : module
        The array namespace of ``readouts`` (:func:`superposition.backend.evaluation_namespace`).
    """

    net: UAnd
    groups: list[np.ndarray]
    readouts: list[Any]
    weights: str
    neurons: int
    n_samples: int
    embed_dim: int | None
    p: float
    scale: float | None
    namespace: Any

    def activations(self) -> list[Any]:
        """The ReLU activations of each group, float64 ``(k_g, d)``, in :attr:`namespace`."""
        xp = self.namespace
        if self.scale is None:
            wiring = self.net.W.to(xp)
            return [
                relu(wiring.product(xp.astype(z, xp.float64), self.net.bias)) for z in self.readouts
            ]
        weights64 = asarray(self.net.W, xp)
        return [
            relu(xp.astype(z, xp.float64) @ xp.matrix_transpose(weights64)) for z in self.readouts
        ]


def trial_layer(
    n_features: int,
    neurons: int,
    sparsity: int,
    *,
    embed_dim: int | str | None = EMBED_TIED,
    weights: str = "bernoulli",
    n_samples: int = 16,
    seed: int = 0,
    p: float | str | None = None,
    p_scale: float = 1.0,
    phi: str = "seeded",
    inputs_kind: str = "uniform",
) -> TrialLayer:
    r"""The random network and inputs :func:`width_trial` evaluates (same arguments, same draws).

    For a benchmark or a figure that needs the trial's layer and activations without the
    search: the network from ``SeedSequence([seed, neurons, d0])``, the inputs from
    ``SeedSequence([seed, 1])``.
    """
    m = check_int("n_features", n_features, low=2)
    d = check_int("neurons", neurons, low=1)
    s = check_sparsity(sparsity, m)
    w = check_choice("weights", weights, WEIGHTS)
    d0 = _resolve_embed_dim(embed_dim, d)
    k = check_int("n_samples", n_samples, low=1)
    check_int("seed", seed, low=0)
    mode = check_choice("phi", phi, PHI)
    if mode == "sampled" and d0 is None:
        raise ValueError("phi='sampled' needs an embed_dim (basis-aligned inputs have no Φ)")
    scale = check_real("p_scale", p_scale, low=0.0, low_open=True)
    if w == "bernoulli":
        prob = min(1.0, scale * resolve_p(p, m, d, s, d0))
    elif p is not None or scale != 1.0:
        raise ValueError(f"p and p_scale apply to weights='bernoulli' only, got weights={w!r}")
    elif inputs_kind != "uniform":
        # the sign readout is calibrated on exactly s active features: on fewer an AND reads
        # about c(s')/c(s), an error near 1 at any width (the uand chapter's count-free layer)
        raise ValueError(
            f"inputs_kind={inputs_kind!r} needs weights='bernoulli': the sign readout of "
            f"weights={w!r} is calibrated on exactly sparsity={s} active features"
        )
    groups = trial_inputs(m, s, k, seed, inputs_kind)
    net_seed = np.random.SeedSequence([seed, d, 0 if d0 is None else d0])
    xp = evaluation_namespace()
    prob_arg = prob if w == "bernoulli" else None
    if mode == "seeded":
        snet = build_superposed_uand(m, d, s, d0, weights=w, p=prob_arg, seed=net_seed)
        net = snet.net
        readouts = [snet.feature_readout(asarray(g, xp)) for g in groups]
    else:  # the same W as build_superposed_uand draws; Φ only through its readouts' law
        w_seed, phi_seed = net_seed.spawn(2)
        net = build_uand(m, d, s, weights=w, p=prob_arg, seed=np.random.default_rng(w_seed))
        zs = sample_feature_readouts(m, d0, list(groups), seed=phi_seed)
        readouts = [asarray(z, xp) for z in zs]
    c = None
    if w != "bernoulli":
        const = superposed_sign_constant(s, w, 0.0 if d0 is None else embedding_noise_var(m, s, d0))
        c = 1.0 / (d * const)
    return TrialLayer(
        net, list(groups), readouts, w, d, k, d0, prob if w == "bernoulli" else 1.0, c, xp
    )


def _sign_rows(
    signs: Any,
    signs64: Any,
    a: Any,
    active: Any,
    scale: float,
    stop_above: float | None,
    on_input: Callable[[int, np.ndarray, int], None],
) -> None:
    """Per-input worst errors of the sign readout, one input at a time, float32 with a float64
    recheck of inputs within the rounding bound of ``stop_above``: ``on_input(t, row, firing)``
    for each input evaluated."""
    xp = namespace(a)
    for t in range(a.shape[0]):
        at, act = a[t : t + 1, :], active[t : t + 1, :]
        n_fire = int(xp.count_nonzero(at > 0))
        r = sign_pair_errors(signs, at, act, scale)
        if stop_above is not None:
            tol = sign_readout_tolerance(n_fire, scale, float(xp.sum(at)))
            if abs(r.max_abs_error - stop_above) <= tol:
                r = sign_pair_errors(signs64, at, act, scale)  # decide in float64
        on_input(t, np.asarray(r.max_abs, dtype=np.float64), n_fire)
        if stop_above is not None and r.max_abs_error > stop_above:
            return


def _resolve_embed_dim(embed_dim: int | str | None, neurons: int) -> int | None:
    if embed_dim is None:
        return None
    if isinstance(embed_dim, str):
        check_choice("embed_dim", embed_dim, (EMBED_TIED,))
        return neurons
    return check_int("embed_dim", embed_dim, low=1)


@dataclass(frozen=True)
class WidthSearch:
    r"""Result of a width search (:func:`seed_width`, :func:`minimal_width`).

    Attributes
    ----------
    neurons : int
        :math:`d^*`, the smallest number of neurons found to pass (``high + 1`` if none did).
    bracket : tuple of (int or None, int or None)
        ``(largest number of neurons tested that failed, d*)``; ``None`` where there was none.
    trials : list of dict
        Every network evaluated, in order: ``neurons``, ``seed``, ``p``, ``max_abs_error``
        (a lower bound where the trial stopped early), ``passed``, ``inputs`` (evaluated),
        ``seconds``.
    p_scale : float
        The multiplier :math:`\kappa` of the connection probability rule.
    """

    neurons: int
    bracket: tuple[int | None, int | None]
    trials: list[dict[str, Any]]
    p_scale: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``neurons``, ``bracket``, ``p_scale``, ``trials``."""
        return {
            "neurons": self.neurons,
            "bracket": list(self.bracket),
            "p_scale": self.p_scale,
            "trials": self.trials,
        }


def _search_options(
    n_features: int,
    sparsity: int,
    target_error: float,
    weights: str,
    embed_dim: int | str | None,
    p: float | str | None,
    low: int,
    high: int,
) -> tuple[int, int, int, float, int]:
    """Checked ``(m, s, eps, low, high)``; with ``p="paper"`` the search starts above ln⁴ m."""
    m = check_int("n_features", n_features, low=2)
    s = check_sparsity(sparsity, m)
    eps = check_real("target_error", target_error, low=0.0, low_open=True)
    w = check_choice("weights", weights, WEIGHTS)
    if w != "bernoulli" and s < 2:
        raise ValueError(f"sparsity must be >= 2 for weights={w!r}, got {s}")
    if w != "bernoulli" and p is not None:
        raise ValueError(f"p applies to weights='bernoulli' only, got weights={w!r}")
    if isinstance(embed_dim, str):
        check_choice("embed_dim", embed_dim, (EMBED_TIED,))
    elif embed_dim is not None:
        check_int("embed_dim", embed_dim, low=1)
    if isinstance(p, str):
        check_choice("p", p, P_MODES)
    low = check_int("low", low, low=1)
    high = check_int("high", high, low=low)
    if p == "paper":  # the paper's p is a probability only for d > ln⁴ m
        low = max(low, int(np.floor(theory.paper_min_neurons(m))) + 1)
        high = max(high, low)
    return m, s, eps, low, high


def seed_width(
    n_features: int,
    sparsity: int,
    target_error: float,
    *,
    seed: int = 0,
    weights: str = "bernoulli",
    embed_dim: int | str | None = EMBED_TIED,
    n_samples: int = 16,
    low: int = 16,
    high: int = 2**15,
    resolution: float = 0.05,
    p: float | str | None = None,
    p_scale: float = 1.0,
    phi: str = "seeded",
    inputs_kind: str = "uniform",
    checkpoint: Checkpoint | None = None,
) -> WidthSearch:
    r"""One seed's threshold: the smallest number of neurons at which that seed's network passes.

    :func:`superposition.search.smallest_passing` over :func:`width_trial` (stopped at the
    first input above ``target_error``), to relative ``resolution``; ``high + 1`` if none
    passed. When ``low`` already passes the search restarts from ``low // 2``, so ``low`` may be
    a guess. With ``p="paper"`` the search starts above :math:`\ln^4 m`, where the paper's
    :math:`p` is a probability. ``checkpoint``: each trial is a step of it
    (:class:`superposition.store.Checkpoint`, named by its width), and so is each input of a
    trial (:func:`width_trial`), so an interrupted search resumes at its last finished input
    with the same result.
    """
    if p == "best":  # a choice over several networks per seed, not one network's threshold
        raise ValueError(
            "p='best' is a search over p: use minimal_width(p='best') or best_p_scale; "
            "seed_width takes p=None, 'superposed', 'paper' or a float in (0, 1]"
        )
    m, s, eps, low, high = _search_options(
        n_features, sparsity, target_error, weights, embed_dim, p, low, high
    )
    seed = check_int("seed", seed, low=0)
    trials: list[dict[str, Any]] = []

    def trial(d: int) -> dict[str, Any]:
        r = width_trial(
            m, d, s, embed_dim=embed_dim, weights=weights, n_samples=n_samples, seed=seed,
            stop_above=eps, p=p, p_scale=p_scale, phi=phi, inputs_kind=inputs_kind,
            checkpoint=checkpoint,
        )  # fmt: skip
        return {
            "neurons": d,
            "seed": seed,
            "p": r.p,
            "max_abs_error": r.max_abs_error,
            "passed": bool(r.max_abs_error <= eps),
            "inputs": int(r.per_input.shape[0]),
            "seconds": r.seconds,
        }

    def passes(d: int) -> bool:
        tr = trial(d) if checkpoint is None else checkpoint.step({"neurons": d}, lambda: trial(d))
        trials.append(tr)
        return bool(tr["passed"])

    # the paper's p is a probability only above ln⁴ m: the search never goes below its start
    floor = low if p == "paper" else 1
    lo = low
    best = smallest_passing(passes, lo, high, resolution)
    while best == lo and lo > floor:
        lo = max(floor, lo // 2)  # the lowest width tried passed: look lower
        best = smallest_passing(passes, lo, high, resolution)
    failed = [tr["neurons"] for tr in trials if not tr["passed"] and tr["neurons"] < best]
    return WidthSearch(
        best, (max(failed) if failed else None, best if best <= high else None), trials, p_scale
    )


def seed_widths(
    n_features: int,
    sparsity: int,
    target_error: float,
    *,
    seeds: Sequence[int] = range(5),
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> np.ndarray:
    r"""Each seed's own threshold (:func:`seed_width`), as an int64 array in seed order.

    If each seed passes from its threshold on, :math:`d^*` of :func:`minimal_width` is the
    :math:`\lceil 0.9K\rceil`-th smallest of these (:func:`superposition.fit.quantile`);
    keeping them all lets :func:`superposition.fit.fit_power_law` resample seeds.
    ``options`` are those of :func:`seed_width`. ``progress``, if given, is called as
    ``progress(seed, neurons)`` after each search.
    """
    out = []
    for seed in seeds:
        r = seed_width(n_features, sparsity, target_error, seed=seed, **options)
        out.append(r.neurons)
        if progress is not None:
            progress(seed, r.neurons)
    return np.array(out, dtype=np.int64)


def minimal_width(
    n_features: int,
    sparsity: int,
    target_error: float,
    *,
    weights: str = "bernoulli",
    embed_dim: int | str | None = EMBED_TIED,
    seeds: Sequence[int] = range(5),
    n_samples: int = 16,
    fraction: float = 0.9,
    low: int = 16,
    high: int = 2**15,
    resolution: float = 0.05,
    p: float | str | None = None,
    p_scale: float = 1.0,
    p_scales: Sequence[float] = P_SCALES,
    phi: str = "seeded",
    inputs_kind: str = "uniform",
) -> WidthSearch:
    r"""The minimal width :math:`d^*(m;\varepsilon,s)` (fewest neurons) of a U-AND layer on superposed inputs.

    The smallest :math:`d` at which at least ``fraction`` of ``seeds`` give a network whose
    worst error over all :math:`\binom m2` outputs of ``n_samples`` random inputs is
    :math:`\le \varepsilon` (:func:`width_trial`), found by geometric bracketing and
    bisection on a log grid (:func:`superposition.search.smallest_passing` over
    :func:`superposition.search.fraction_passing`), to relative resolution ``resolution``.
    It assumes passing is monotone in :math:`d`, which holds for the ensemble but not for
    every draw: near :math:`d^*` the answer carries the noise of finitely many seeds.

    Parameters
    ----------
    n_features, sparsity : int
    target_error : float
        :math:`\varepsilon > 0`.
    weights : {"bernoulli", "rademacher", "gaussian"}
    embed_dim : int, "tied" or None
        :math:`d_0` fixed, :math:`d_0 = d` (the paper's count), or basis-aligned.
    seeds : sequence of int
    n_samples, fraction, low, high, resolution
        See above; ``1 <= low <= high``.
    p : float, "best", "superposed", "paper" or None
        Bernoulli connection probability (:func:`resolve_p`; default the rule
        :func:`superposed_p`). ``"best"``: each seed's threshold (:func:`seed_width`) at every
        multiplier :math:`\kappa` in ``p_scales`` of the rule, the multiplier whose thresholds
        have the smallest geometric mean (:func:`best_p_scale`, the chapter's choice; biased low
        by the noise of the seeds, :func:`best_p_cross_validated`), then this search at it.
    p_scale : float
        :math:`\kappa`: the search uses :math:`\min(1, \kappa p)`.
    p_scales : sequence of float
        The multipliers ``p="best"`` tries.
    phi, inputs_kind
        See :func:`width_trial`.

    Returns
    -------
    WidthSearch
        With ``p="best"``: the search at the winning multiplier (its ``p_scale`` says which),
        with the trials of every per-seed search before it (each with its ``p_scale``).
    """
    m, s, eps, low, high = _search_options(
        n_features, sparsity, target_error, weights, embed_dim, p, low, high
    )
    seeds = [check_int("seed", x, low=0) for x in seeds]
    if not seeds:
        raise ValueError("seeds must not be empty")
    check_int("n_samples", n_samples, low=1)
    fraction = check_real("fraction", fraction, low=0.0, high=1.0, low_open=True)
    if p == "best":
        scales = [check_real("p_scales", k, low=0.0, low_open=True) for k in p_scales]
        if not scales:
            raise ValueError("p_scales must not be empty")
        # the chapter's choice: each seed's own threshold at every multiple, the multiple with
        # the smallest geometric mean (best_p_scale), then this search at that multiple
        every: list[dict[str, Any]] = []
        thresholds = {}
        for k in scales:
            per_seed = [
                seed_width(
                    m, s, eps, seed=x, weights=weights, embed_dim=embed_dim, n_samples=n_samples,
                    low=low, high=high, resolution=resolution, p=None, p_scale=k, phi=phi,
                    inputs_kind=inputs_kind,
                )
                for x in seeds
            ]  # fmt: skip
            thresholds[k] = [r.neurons for r in per_seed]
            every += [{**tr, "p_scale": k} for r in per_seed for tr in r.trials]
        win = best_p_scale(thresholds)
        run = minimal_width(
            m, s, eps, weights=weights, embed_dim=embed_dim, seeds=seeds, n_samples=n_samples,
            fraction=fraction, low=low, high=high, resolution=resolution, p=None, p_scale=win,
            phi=phi, inputs_kind=inputs_kind,
        )  # fmt: skip
        return WidthSearch(run.neurons, run.bracket, every + run.trials, win)
    trials: list[dict[str, Any]] = []

    def one(d: int, seed: int) -> bool:
        r = width_trial(
            m, d, s, embed_dim=embed_dim, weights=weights, n_samples=n_samples, seed=seed,
            stop_above=eps, p=p, p_scale=p_scale, phi=phi, inputs_kind=inputs_kind,
        )  # fmt: skip
        err = r.max_abs_error
        trials.append(
            {
                "neurons": d,
                "seed": seed,
                "p": r.p,
                "p_scale": p_scale,
                "max_abs_error": err,
                "passed": err <= eps,
                "inputs": int(r.per_input.shape[0]),
                "seconds": r.seconds,
            }
        )
        return err <= eps

    def passes(d: int) -> bool:
        return fraction_passing(one, d, seeds, fraction)

    best = smallest_passing(passes, low, high, resolution)
    # a width failed if fewer than `fraction` of its seeds passed (fraction_passing may stop early)
    need = int(np.ceil(fraction * len(seeds) - 1e-12))
    tested = {tr["neurons"] for tr in trials}
    failed = [
        w_
        for w_ in tested
        if w_ < best and sum(tr["passed"] for tr in trials if tr["neurons"] == w_) < need
    ]
    lo = max(failed) if failed else None
    return WidthSearch(best, (lo, best if best <= high else None), trials, p_scale)


def best_p_scale(thresholds: Mapping[float, Sequence[float]]) -> float:
    r"""The multiplier :math:`\kappa` whose per-seed thresholds have the smallest geometric mean.

    ``thresholds`` maps each :math:`\kappa` to its seeds' thresholds (the same seeds for every
    :math:`\kappa`). Ties go to the smaller :math:`\kappa`. Choosing the minimum of noisy
    estimates biases the winning :math:`d^*` low; :func:`best_p_cross_validated` measures by how much.
    """
    if not thresholds:
        raise ValueError("thresholds must not be empty")
    return min(sorted(thresholds), key=lambda k: float(np.mean(np.log(thresholds[k]))))


def worse_than_best(
    best: Sequence[float], done: Sequence[float], *, min_seeds: int = 3
) -> tuple[bool, int]:
    r"""Whether a multiple of :math:`p` whose seeds are not all done is already worse than the best.

    ``best``: the thresholds of every seed of the best multiple (:func:`best_p_scale`);
    ``done``: the thresholds of the seeds done so far at another multiple. It is ruled out when
    at least ``min_seeds`` are done and each lies above every one of ``best``: if the two
    multiples had the same distribution of thresholds, all :math:`n` finished seeds would rank
    above all :math:`b` of ``best`` with probability :math:`1/\binom{n+b}{n}` (exchangeable
    seeds). Returns the verdict and :math:`\binom{n+b}{n}`.
    """
    b = np.asarray(best, dtype=np.float64)
    x = np.asarray(done, dtype=np.float64)
    if b.ndim != 1 or b.size < 1:
        raise ValueError(f"best must hold the thresholds of at least one seed, got shape {b.shape}")
    if x.ndim != 1:
        raise ValueError(f"done must be one-dimensional, got shape {x.shape}")
    if int(min_seeds) != min_seeds or min_seeds < 1:
        raise ValueError(f"min_seeds must be an integer >= 1, got {min_seeds!r}")
    n = int(x.size)
    return bool(n >= min_seeds and float(x.min()) > float(b.max())), comb(n + int(b.size), n)


def best_p_cross_validated(thresholds: Mapping[float, Sequence[float]]) -> float:
    r"""The selection bias of :func:`best_p_scale`, measured by leaving one seed out.

    For each seed: choose :math:`\kappa` on the other seeds, and read that seed's threshold at
    it. Returns the geometric mean of these held-out thresholds divided by the geometric mean
    of the in-sample winner's thresholds (:math:`\ge 1` typically: how much the minimum over
    :math:`\kappa` flatters :math:`d^*`).
    """
    keys = sorted(thresholds)
    rows = np.array([np.asarray(thresholds[k], dtype=np.float64) for k in keys])
    if rows.ndim != 2 or rows.shape[1] < 2:
        raise ValueError("thresholds must give the same number (>= 2) of seeds for every scale")
    n = rows.shape[1]
    held = []
    for j in range(n):
        rest = np.delete(np.log(rows), j, axis=1).mean(axis=1)
        held.append(np.log(rows[int(np.argmin(rest)), j]))
    win = keys.index(best_p_scale(thresholds))
    return float(np.exp(np.mean(held) - np.log(rows[win]).mean()))


# ---------------------------------------------------------------- reference curves


def adler_shavit_neurons(n_outputs: np.ndarray | float) -> np.ndarray:
    r"""The shape of the Adler–Shavit lower bound, :math:`\sqrt{m'\ln m'}` neurons for :math:`m'` outputs.

    The bound is :math:`\Omega(\sqrt{m'\log m'})` with an unstated constant; this returns
    the expression with constant 1.
    """
    mm = np.asarray(n_outputs, dtype=np.float64)
    if (mm < 2).any():
        raise ValueError("n_outputs must be >= 2")
    return np.sqrt(mm * np.log(mm))
