r"""Trained U-AND networks: one ReLU layer and a linear readout fitted jointly by gradient descent.

The network has the same form as the constructions of :mod:`superposition.uand`,

.. math::
    a = \mathrm{ReLU}(W x + b) \in \mathbb R^d, \qquad \hat y_T = R_T \cdot a
    \quad\text{for every } T \in \tbinom{[m]}{n},

but :math:`W \in \mathbb R^{d\times m}`, :math:`b \in \mathbb R^d` and
:math:`R \in \mathbb R^{\binom mn \times d}` are all learned. On batches of random inputs
with exactly :math:`s` active features, Adam minimises the mean squared error over **every**
output plus :math:`w` times the mean squared error of the :math:`\binom sn` outputs that are 1
(:func:`loss_and_gradients`),

.. math:: L = \frac{1}{B\binom mn}\sum_{x}\sum_T \big(\hat y_T(x) - y_T(x)\big)^2
    + \frac{w}{B\binom sn}\sum_x\sum_{T\subseteq \mathrm{active}(x)}\big(\hat y_T(x) - 1\big)^2 .

The gradients are written by hand (no automatic differentiation). For the first term, with
:math:`E = \hat Y - Y` of shape ``(B, C(m,n))`` and :math:`G = 2E/(B\binom mn)`
(the second term adds the same expressions over the rows of the all-ones outputs),

.. math::
    \partial_R L = G^\top A, \qquad \partial_A L = G R, \qquad
    \partial_H L = \partial_A L \odot [H > 0], \qquad
    \partial_W L = (\partial_H L)^\top X, \qquad \partial_b L = \mathbf 1^\top \partial_H L,

a step costs :math:`O(B d \binom mn)`. Training is deterministic: one seed fixes the
initialisation and every batch, the products run on one BLAS thread (as in
:mod:`superposition.sweep`), and the same seed gives the same bits.

A :class:`TrainedUAnd` has the attributes :func:`superposition.evaluate_uand` reads
(``n_features``, ``width``, ``arity``, ``weights``, ``readout``, ``activations``), so trained and
constructed networks are scored by the same exact evaluator over all :math:`\binom mn` outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from math import comb

import numpy as np
from tqdm import tqdm

from ._validate import as_generator, check_active, check_int, check_real, check_sparsity
from .backend import blas_threads
from .embedding import sample_sparse
from .uand import tuple_rank

MAX_OUTPUT_PARAMETERS = 2**26
"""Largest readout :math:`\\binom mn \\times d` :func:`train_uand` will allocate (64 Mi entries)."""


@dataclass(frozen=True, eq=False)
class DenseReadout:
    r"""An explicit readout matrix: :math:`\hat y_T = R_T\cdot a`, rows in lexicographic order of :math:`T`.

    Attributes
    ----------
    R : float array, shape ``(C(m, n), d)``
        Row :func:`superposition.tuple_rank` ``(T)`` reads output :math:`T`.
    n_features : int
    arity : int
    """

    R: np.ndarray = field(repr=False)
    n_features: int
    arity: int

    def prepare(self, activations: np.ndarray) -> np.ndarray:
        return np.asarray(activations, dtype=np.float64)

    def outputs(self, prepared: np.ndarray, tuples: np.ndarray) -> np.ndarray:
        rows = tuple_rank(tuples, self.n_features)
        if rows.size and rows[-1] - rows[0] == rows.size - 1 and np.all(np.diff(rows) == 1):
            block = self.R[rows[0] : rows[-1] + 1]  # a lexicographic tile: a view, no copy
        else:
            block = self.R[rows]
        return prepared @ block.T


@dataclass(frozen=True, eq=False)
class TrainedUAnd:
    r"""A trained one-hidden-layer U-AND network :math:`\hat y = R\,\mathrm{ReLU}(Wx + b)`.

    Attributes
    ----------
    n_features, width, sparsity, arity : int
        :math:`m, d, s, n` (``sparsity``: the number of active inputs it was trained on).
    W : float array, shape ``(width, n_features)``
    b : float array, shape ``(width,)``
    R : float array, shape ``(C(m, n), width)``
        Readout, rows in lexicographic order of the output tuples.
    losses : float64 array, shape ``(steps,)``
        Training loss (:func:`loss_and_gradients`) of every step's batch.
    config : dict
        The training arguments (steps, batch, learning rate, seed, ...).
    """

    n_features: int
    width: int
    sparsity: int
    arity: int
    W: np.ndarray = field(repr=False)
    b: np.ndarray = field(repr=False)
    R: np.ndarray = field(repr=False)
    losses: np.ndarray = field(repr=False)
    config: dict = field(default_factory=dict)
    weights: str = "trained"

    @property
    def n_outputs(self) -> int:
        return comb(self.n_features, self.arity)

    @property
    def readout(self) -> DenseReadout:
        """The trained readout as a :class:`DenseReadout`."""
        return DenseReadout(self.R, self.n_features, self.arity)

    def preactivations(self, active: np.ndarray) -> np.ndarray:
        """:math:`Wx + b` for a batch of sparse inputs ``active`` ``(K, s')`` → ``(K, width)``."""
        active = check_active(active, self.n_features)
        return _preact(self.W, self.b, active)

    def activations(self, active: np.ndarray) -> np.ndarray:
        r""":math:`a = \mathrm{ReLU}(Wx + b)`, shape ``(K, width)``."""
        return np.maximum(self.preactivations(active), 0.0)

    def outputs(self, active: np.ndarray) -> np.ndarray:
        r"""Every output :math:`\hat y_T`, shape ``(K, C(m, n))`` (columns in lexicographic order)."""
        return self.activations(active) @ self.R.T


def _preact(W: np.ndarray, b: np.ndarray, active: np.ndarray) -> np.ndarray:
    """``x Wᵀ + b`` from active indices: the sum of the active columns, in index order."""
    h = np.broadcast_to(b, (active.shape[0], b.size)).copy()
    for j in range(active.shape[1]):
        h += W[:, active[:, j]].T
    return h


def _positive_ranks(active: np.ndarray, n_features: int, arity: int) -> np.ndarray:
    """Ranks of the outputs whose AND is 1, shape ``(B, C(s, n))`` (``(B, 0)`` if ``s < n``)."""
    k, s = active.shape
    if s < arity:
        return np.zeros((k, 0), dtype=np.int64)
    sub = np.array(list(combinations(range(s), arity)), dtype=np.int64)
    return tuple_rank(active[:, sub].reshape(-1, arity), n_features).reshape(k, len(sub))


def loss_and_gradients(
    W: np.ndarray,
    b: np.ndarray,
    R: np.ndarray,
    active: np.ndarray,
    n_features: int,
    arity: int,
    *,
    columns: np.ndarray | None = None,
    positive_weight: float = 1.0,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    r"""The training loss and its exact gradients with respect to ``W``, ``b`` and ``R``.

    .. math::
        L = \frac{1}{B|K|}\sum_{x}\sum_{T\in K}\big(\hat y_T(x) - y_T(x)\big)^2
          + \frac{w}{B\binom sn}\sum_{x}\sum_{T \subseteq \mathrm{active}(x)}\big(\hat y_T(x) - 1\big)^2,

    the mean squared error over the outputs :math:`K` (all of them, or a uniform sample) plus
    :math:`w` times the mean squared error over the :math:`\binom sn` outputs of each input
    whose AND is 1. Without the second term, the :math:`\binom sn` ones among
    :math:`\binom mn` outputs count for so little that for large :math:`m` the minimiser
    reads 0 everywhere.

    Parameters
    ----------
    W : array ``(d, m)``
    b : array ``(d,)``
    R : array ``(C(m, n), d)``
    active : int array ``(B, s)``
        Sorted active features of each input of the batch (``s >= arity``).
    n_features, arity : int
    columns : int array, optional
        Sorted distinct output ranks :math:`K` of the first term (default: every output, and
        then :math:`L` is exact, not an estimate).
    positive_weight : float
        :math:`w \ge 0`.

    Returns
    -------
    loss : float
    dW, db, dR : arrays of the shapes of ``W, b, R``
    """
    bsz, s = active.shape
    H = _preact(W, b, active)
    A = np.maximum(H, 0.0)
    # first term: every output in K, targets 1 where the output's AND is 1
    RK = R if columns is None else R[columns]
    k_out = RK.shape[0]
    E = A @ RK.T  # (B, |K|)
    pos_ranks = _positive_ranks(active, n_features, arity)  # (B, C(s, n))
    if columns is None:
        E[np.arange(bsz)[:, None], pos_ranks] -= 1.0
    else:
        where = np.searchsorted(columns, pos_ranks).clip(max=k_out - 1)
        hit = columns[where] == pos_ranks
        E[np.nonzero(hit)[0], where[hit]] -= 1.0
    loss = float(np.einsum("ij,ij->", E, E)) / (bsz * k_out)
    E *= 2.0 / (bsz * k_out)
    dA = E @ RK
    dRK = E.T @ A
    if columns is None:
        dR = dRK
    else:
        dR = np.zeros_like(R)
        dR[columns] = dRK
    # second term: the outputs whose AND is 1
    if positive_weight > 0 and pos_ranks.shape[1]:
        c = pos_ranks.shape[1]
        RP = R[pos_ranks]  # (B, c, d)
        EP = np.einsum("bcd,bd->bc", RP, A) - 1.0
        loss += positive_weight * float(np.einsum("bc,bc->", EP, EP)) / (bsz * c)
        EP *= 2.0 * positive_weight / (bsz * c)
        dA += np.einsum("bc,bcd->bd", EP, RP)
        np.add.at(dR, pos_ranks.ravel(), (EP[:, :, None] * A[:, None, :]).reshape(-1, A.shape[1]))
    dH = dA * (H > 0)
    db = dH.sum(axis=0)
    dW = np.zeros_like(W)
    for j in range(s):  # (dL/dH)^T X with X the 0/1 input matrix
        np.add.at(dW.T, active[:, j], dH)
    return loss, dW, db, dR


class _Adam:
    """Adam (Kingma & Ba 2015) with bias correction, in place on a list of arrays."""

    def __init__(self, params: list[np.ndarray], beta1: float, beta2: float, eps: float) -> None:
        self.params = params
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0

    def step(self, grads: list[np.ndarray], lr: float) -> None:
        self.t += 1
        c1 = 1.0 - self.beta1**self.t
        c2 = 1.0 - self.beta2**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * (g * g)
            p -= (lr / c1) * m / (np.sqrt(v / c2) + self.eps)


def train_uand(
    n_features: int,
    width: int,
    sparsity: int,
    *,
    arity: int = 2,
    steps: int = 2000,
    batch: int = 64,
    lr: float = 1e-2,
    final_lr: float = 1e-4,
    init_scale: float = 1.0,
    positive_weight: float = 1.0,
    sampled_outputs: int | None = None,
    dtype: type = np.float32,
    seed: object = 0,
    progress: bool | None = False,
) -> TrainedUAnd:
    r"""Train :math:`W, b, R` jointly with Adam on random inputs with exactly ``sparsity`` active features.

    Parameters
    ----------
    n_features, width, sparsity : int
        :math:`m, d, s`; ``sparsity >= arity``.
    arity : int
        :math:`n \ge 2`: the outputs are all :math:`\binom mn` ANDs of ``arity`` inputs.
    steps : int
        Adam steps :math:`\ge 1`; each draws a fresh batch of ``batch`` inputs.
    batch : int
        Inputs per step :math:`B`.
    lr, final_lr : float
        The learning rate decays geometrically from ``lr`` to ``final_lr`` over the steps.
    init_scale : float
        :math:`W_{ik} \sim N(0, \text{init\_scale}^2 / s)` (pre-activations of order
        ``init_scale``), :math:`b = 0`, :math:`R = 0` (every output starts at 0).
    positive_weight : float
        :math:`w \ge 0` of :func:`loss_and_gradients`: the loss is the mean squared error over
        all outputs plus :math:`w` times the mean squared error of the outputs whose AND is 1.
        :math:`w = 0` is the plain mean squared error.
    sampled_outputs : int, optional
        :math:`|K|`: the first term of the loss is estimated, without bias, on this many
        outputs drawn uniformly at each step (default: all :math:`\binom mn`, exact).
        A step then costs :math:`O(B d (|K| + \binom sn))` plus the Adam update of :math:`R`.
    dtype : float32 or float64
        Of the parameters and the arithmetic (float32 halves the time).
    seed : int, SeedSequence or Generator
        Fixes the initialisation and every batch: same seed, same bits.
    progress : bool or None
        tqdm bar on stderr (``None``: only on a terminal).

    Returns
    -------
    TrainedUAnd
    """
    m = check_int("n_features", n_features, low=2)
    d = check_int("width", width, low=1)
    s = check_sparsity(sparsity, m)
    n = check_int("arity", arity, low=2, high=m)
    if s < n:
        raise ValueError(f"sparsity must be >= arity={n} (and <= n_features={m}), got {s}")
    steps = check_int("steps", steps, low=1)
    bsz = check_int("batch", batch, low=1)
    lr = check_real("lr", lr, low=0.0, low_open=True)
    final_lr = check_real("final_lr", final_lr, low=0.0, high=lr, low_open=True)
    init_scale = check_real("init_scale", init_scale, low=0.0, low_open=True)
    positive_weight = check_real("positive_weight", positive_weight, low=0.0)
    n_out = comb(m, n)
    k_out = (
        n_out
        if sampled_outputs is None
        else check_int("sampled_outputs", sampled_outputs, low=1, high=n_out)
    )
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
    if n_out * d > MAX_OUTPUT_PARAMETERS:
        raise ValueError(
            f"the readout would have C({m},{n}) x {d} = {n_out * d} entries; the limit is "
            f"MAX_OUTPUT_PARAMETERS = {MAX_OUTPUT_PARAMETERS}: reduce n_features or width"
        )
    init_rng, data_rng = as_generator(seed).spawn(2)
    W = (init_rng.standard_normal((d, m)) * (init_scale / np.sqrt(s))).astype(dtype)
    b = np.zeros(d, dtype=dtype)
    R = np.zeros((n_out, d), dtype=dtype)
    opt = _Adam([W, b, R], beta1=0.9, beta2=0.999, eps=1e-8)
    decay = (final_lr / lr) ** (1.0 / max(steps - 1, 1))
    losses = np.empty(steps)
    bar = tqdm(range(steps), disable=None if progress is None else not progress, unit="step")
    with blas_threads(1):  # small products: one thread is faster, and the bits are fixed
        for t in bar:
            active = sample_sparse(m, s, bsz, seed=data_rng)
            cols = None
            if k_out < n_out:
                cols = np.sort(data_rng.choice(n_out, size=k_out, replace=False))
            loss, dW, db, dR = loss_and_gradients(
                W, b, R, active, m, n, columns=cols, positive_weight=positive_weight
            )
            opt.step([dW, db, dR], lr * decay**t)
            losses[t] = loss
    bar.close()
    config = {
        "steps": steps,
        "batch": bsz,
        "lr": lr,
        "final_lr": final_lr,
        "init_scale": init_scale,
        "positive_weight": positive_weight,
        "sampled_outputs": sampled_outputs,
        "dtype": np.dtype(dtype).name,
        "seed": seed if isinstance(seed, int) else None,
    }
    for arr in (W, b, R):
        arr.setflags(write=False)
    return TrainedUAnd(m, d, s, n, W, b, R, losses, config)
