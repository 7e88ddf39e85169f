r"""Dictionary-learning baselines for the ground-truth benchmark (:mod:`superposition.benchmark`).

Three ways to get a set of directions ``(n_atoms, dim)`` from activations ``(K, dim)``:

:func:`train_sae`
    A plain ReLU sparse autoencoder, NumPy with hand-written gradients and Adam (as
    :func:`superposition.train_uand`):

    .. math::
        f = \mathrm{ReLU}\big(W_e (x - b_d) + b_e\big), \qquad
        \hat x = W_d f + b_d, \qquad
        L = \frac1B\sum_x \|\hat x - x\|^2 + \lambda\,\frac1B\sum_x \|f\|_1 ,

    with the columns of the decoder :math:`W_d` ``(dim, n_atoms)`` kept at unit norm (renormalised
    after every step, so the L1 penalty cannot be dodged by shrinking :math:`f`). The atoms are
    the decoder columns. With :math:`E = \hat X - X` of a batch of :math:`B` rows and
    :math:`G = 2E/B`,

    .. math::
        \partial_{W_d} L = G^\top F,\quad
        \partial_F L = G W_d + \lambda/B,\quad
        \partial_P L = \partial_F L \odot [P > 0],\quad
        \partial_{W_e} L = (\partial_P L)^\top (X - b_d),\quad
        \partial_{b_e} L = \mathbf 1^\top\partial_P L,\quad
        \partial_{b_d} L = \mathbf 1^\top (G - \partial_P L\, W_e),

    (:math:`P` the pre-activations; :func:`sae_loss_and_gradients`, checked against central
    differences in the tests).
:func:`learn_dictionary`
    scikit-learn's :class:`~sklearn.decomposition.MiniBatchDictionaryLearning`: online
    dictionary learning (Mairal et al. 2009) minimising
    :math:`\tfrac12\|x - c D\|^2 + \alpha\|c\|_1` with unit-norm atoms, the codes :math:`c` found
    by coordinate descent (non-negative by default, like an SAE's ReLU codes).
:func:`fit_probes`
    Least-squares linear probes, one per target (supervised): the reference the
    interpretability chapter uses, scored here as a dictionary of their weight vectors.

Both learners first scale the activations by one number so that :math:`\mathbb E\|x\|^2 = \dim`
(:func:`normalise_activations`): the penalties :math:`\lambda` and :math:`\alpha` then mean the same on every
layer. A scale changes no direction. Both run on one BLAS thread (``threadpoolctl``), and a seed
fixes everything random: same seed, same bits.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_EVAL_SAMPLES = 20_000
"""Activations on which usage, L0 and the unexplained variance of a learned dictionary are measured."""


@dataclass(frozen=True, eq=False)
class LearnedDictionary:
    r"""Directions learned from activations, with how the learner used them.

    Attributes
    ----------
    atoms : float64 array, shape ``(n_atoms, dim)``
        Unit rows (a zero row for an atom the learner left at zero).
    usage : float64 array, shape ``(n_atoms,)``
        Fraction of the evaluation activations on which the atom's code is nonzero.
    l0 : float
        Mean number of nonzero codes per activation.
    unexplained : float
        Fraction of the variance of the evaluation activations not reconstructed,
        :math:`\sum\|\hat x - x\|^2 / \sum\|x - \bar x\|^2`.
    method : {"sae", "sklearn"}
    config : dict
        Every hyper-parameter and the seed.
    seconds : float
        Wall time of the fit.
    losses : float64 array
        Training loss per step (SAE) or per mini-batch (scikit-learn; empty if not recorded).
    """

    atoms: np.ndarray = field(repr=False)
    usage: np.ndarray = field(repr=False)
    l0: float
    unexplained: float
    method: str
    config: dict = field(default_factory=dict)
    seconds: float = 0.0
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def n_atoms(self) -> int:
        return int(self.atoms.shape[0])


def normalise_activations(activations: np.ndarray) -> tuple[np.ndarray, float]:
    r"""Scale activations so that :math:`\mathbb E\|x\|^2 = \dim`; returns ``(scaled, scale)``.

    Parameters
    ----------
    activations : array, shape ``(K, dim)``, finite, not all zero

    Returns
    -------
    scaled : float64 array, shape ``(K, dim)``
        ``activations / scale``.
    scale : float
        :math:`\sqrt{\mathbb E\|x\|^2/\dim}`.
    """
    X = _check_activations(activations)
    scale = float(np.sqrt(np.mean(np.einsum("ij,ij->i", X, X)) / X.shape[1]))
    if scale == 0.0:
        raise ValueError("activations must not be all zero")
    return X / scale, scale


# ------------------------------------------------------------------ sparse autoencoder


def sae_loss_and_gradients(
    x: np.ndarray,
    W_enc: np.ndarray,
    b_enc: np.ndarray,
    W_dec: np.ndarray,
    b_dec: np.ndarray,
    l1: float,
) -> tuple[float, dict[str, np.ndarray]]:
    r"""The SAE loss of a batch and its exact gradients (see the module docstring).

    Parameters
    ----------
    x : array, shape ``(B, dim)``
    W_enc : array, shape ``(n_atoms, dim)``
    b_enc : array, shape ``(n_atoms,)``
    W_dec : array, shape ``(dim, n_atoms)``
    b_dec : array, shape ``(dim,)``
    l1 : float
        :math:`\lambda \ge 0`.

    Returns
    -------
    loss : float
        :math:`\frac1B\sum\|\hat x - x\|^2 + \lambda\frac1B\sum\|f\|_1`.
    grads : dict
        ``W_enc, b_enc, W_dec, b_dec`` with the shapes of the parameters.
    """
    bsz = x.shape[0]
    xc = x - b_dec
    pre = xc @ W_enc.T + b_enc
    f = np.maximum(pre, 0)
    err = f @ W_dec.T + b_dec - x
    loss = (float(np.einsum("ij,ij->", err, err)) + l1 * float(f.sum())) / bsz
    g = err * (2.0 / bsz)
    d_wdec = g.T @ f
    df = g @ W_dec + l1 / bsz
    dpre = df * (pre > 0)
    d_wenc = dpre.T @ xc
    d_benc = dpre.sum(axis=0)
    d_bdec = g.sum(axis=0) - dpre.sum(axis=0) @ W_enc
    return loss, {"W_enc": d_wenc, "b_enc": d_benc, "W_dec": d_wdec, "b_dec": d_bdec}


class _Adam:
    """Adam with bias correction, in place on a list of arrays."""

    def __init__(self, params: list[np.ndarray]) -> None:
        self.params = params
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray], lr: float) -> None:
        self.t += 1
        c1 = 1.0 - 0.9**self.t
        c2 = 1.0 - 0.999**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * (g * g)
            p -= (lr / c1) * m / (np.sqrt(v / c2) + 1e-8)


def train_sae(
    activations: np.ndarray,
    n_atoms: int,
    *,
    l1: float = 1.0,
    steps: int = 2000,
    batch: int = 256,
    lr: float = 1e-2,
    final_lr: float = 1e-3,
    seed: int = 0,
) -> LearnedDictionary:
    r"""Train a ReLU sparse autoencoder on ``activations`` and return its decoder directions.

    Parameters
    ----------
    activations : array, shape ``(K, dim)``
        Scaled by :func:`normalise_activations` first.
    n_atoms : int
        Latents :math:`n \ge 1` (the dictionary size).
    l1 : float
        :math:`\lambda \ge 0`, the L1 coefficient.
    steps, batch : int
        Adam steps, each on ``batch`` rows drawn with replacement.
    lr, final_lr : float
        The learning rate decays geometrically from ``lr`` to ``final_lr``.
    seed : int
        Fixes the initialisation (decoder columns: normalised Gaussians; encoder: the decoder's
        transpose; :math:`b_e = 0`; :math:`b_d` the data mean) and every batch.

    Returns
    -------
    LearnedDictionary
        ``method="sae"``; usage, L0 and unexplained variance on up to
        :data:`MAX_EVAL_SAMPLES` of the training activations.
    """
    X, scale = normalise_activations(activations)
    n = _check_int("n_atoms", n_atoms, low=1)
    l1 = _check_real("l1", l1, low=0.0)
    steps = _check_int("steps", steps, low=1)
    bsz = _check_int("batch", batch, low=1)
    lr = _check_real("lr", lr, low=0.0, open_low=True)
    final_lr = _check_real("final_lr", final_lr, low=0.0, high=lr, open_low=True)
    seed = _check_int("seed", seed, low=0)
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    init_rng, data_rng = np.random.default_rng(seed).spawn(2)
    dim = X.shape[1]
    Xf = X.astype(np.float32)
    W_dec = init_rng.standard_normal((dim, n)).astype(np.float32)
    W_dec /= np.linalg.norm(W_dec, axis=0)
    W_enc = np.ascontiguousarray(W_dec.T)
    b_enc = np.zeros(n, dtype=np.float32)
    b_dec = Xf.mean(axis=0)
    params = [W_enc, b_enc, W_dec, b_dec]
    opt = _Adam(params)
    decay = (final_lr / lr) ** (1.0 / max(steps - 1, 1))
    losses = np.empty(steps)
    with threadpool_limits(1, user_api="blas"):
        for t in range(steps):
            xb = Xf[data_rng.integers(0, Xf.shape[0], size=bsz)]
            loss, g = sae_loss_and_gradients(xb, W_enc, b_enc, W_dec, b_dec, l1)
            opt.step([g["W_enc"], g["b_enc"], g["W_dec"], g["b_dec"]], lr * decay**t)
            W_dec /= np.maximum(np.linalg.norm(W_dec, axis=0), 1e-12)
            losses[t] = loss
        Xe = Xf[:MAX_EVAL_SAMPLES]
        f = np.maximum((Xe - b_dec) @ W_enc.T + b_enc, 0)
        recon = f @ W_dec.T + b_dec
    config = {
        "n_atoms": n,
        "l1": l1,
        "steps": steps,
        "batch": bsz,
        "lr": lr,
        "final_lr": final_lr,
        "seed": seed,
        "scale": scale,
    }
    return LearnedDictionary(
        atoms=_unit(W_dec.T.astype(np.float64)),
        usage=(f > 0).mean(axis=0).astype(np.float64),
        l0=float((f > 0).sum(axis=1).mean()),
        unexplained=_unexplained(Xe, recon),
        method="sae",
        config=config,
        seconds=time.perf_counter() - t0,
        losses=losses,
    )


# ------------------------------------------------------------------ scikit-learn


def learn_dictionary(
    activations: np.ndarray,
    n_atoms: int,
    *,
    alpha: float = 1.0,
    epochs: int = 2,
    batch: int = 256,
    positive: bool = True,
    max_lasso_iter: int = 100,
    seed: int = 0,
) -> LearnedDictionary:
    r"""Online dictionary learning with scikit-learn's ``MiniBatchDictionaryLearning``.

    Parameters
    ----------
    activations : array, shape ``(K, dim)``
        Scaled by :func:`normalise_activations` first.
    n_atoms : int
        ``n_components`` (the dictionary size).
    alpha : float
        :math:`\alpha > 0`, the L1 coefficient of the codes (used to fit and to encode).
    epochs : int
        Passes over the activations (``max_iter``; no early stopping).
    batch : int
        ``batch_size``.
    positive : bool
        Non-negative codes (``positive_code``), like an SAE's ReLU.
    max_lasso_iter : int
        Coordinate-descent iterations per sparse coding (``transform_max_iter``): a bound on the
        time. Codings stopped by it are counted in ``config["not_converged"]`` (scikit-learn's
        ``ConvergenceWarning``, recorded instead of shown).
    seed : int
        ``random_state`` (initialisation and the order of the mini-batches).

    Returns
    -------
    LearnedDictionary
        ``method="sklearn"``; usage, L0 and unexplained variance from the codes of up to
        :data:`MAX_EVAL_SAMPLES` activations.
    """
    X, scale = normalise_activations(activations)
    n = _check_int("n_atoms", n_atoms, low=1)
    alpha = _check_real("alpha", alpha, low=0.0, open_low=True)
    epochs = _check_int("epochs", epochs, low=1)
    bsz = _check_int("batch", batch, low=1)
    max_lasso_iter = _check_int("max_lasso_iter", max_lasso_iter, low=1)
    seed = _check_int("seed", seed, low=0)
    from sklearn.decomposition import MiniBatchDictionaryLearning
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    t0 = time.perf_counter()
    model = MiniBatchDictionaryLearning(
        n_components=n,
        alpha=alpha,
        max_iter=epochs,
        fit_algorithm="cd",
        batch_size=bsz,
        shuffle=True,
        positive_code=bool(positive),
        transform_algorithm="lasso_cd",
        transform_alpha=alpha,
        transform_max_iter=max_lasso_iter,
        random_state=seed,
        tol=0.0,
        max_no_improvement=None,
    )
    with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(X)
        Xe = X[:MAX_EVAL_SAMPLES]
        codes = model.transform(Xe)
    not_converged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    for w in caught:  # anything else is not ours to hide
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    atoms = np.asarray(model.components_, dtype=np.float64)
    config = {
        "n_atoms": n,
        "alpha": alpha,
        "epochs": epochs,
        "batch": bsz,
        "positive": bool(positive),
        "max_lasso_iter": max_lasso_iter,
        "seed": seed,
        "scale": scale,
        "steps": int(model.n_steps_),
        "not_converged": int(not_converged),
    }
    return LearnedDictionary(
        atoms=_unit(atoms),
        usage=(codes != 0).mean(axis=0).astype(np.float64),
        l0=float((codes != 0).sum(axis=1).mean()),
        unexplained=_unexplained(Xe, codes @ atoms),
        method="sklearn",
        config=config,
        seconds=time.perf_counter() - t0,
    )


# ------------------------------------------------------------------ probes


def fit_probes(activations: np.ndarray, targets: np.ndarray, *, ridge: float = 1e-8) -> np.ndarray:
    r"""Least-squares linear probes from activations (plus a constant) to each target.

    Minimises :math:`\|[A\ \mathbf 1]\,w - y\|^2 + \rho\,\mathrm{tr}(G)/n\,\|w\|^2` per target
    (:math:`G` the Gram matrix of :math:`[A\ \mathbf 1]`, :math:`n` its size), as the
    interpretability chapter's probe.

    Parameters
    ----------
    activations : array, shape ``(K, dim)``
    targets : array, shape ``(K, n_targets)``
    ridge : float
        :math:`\rho \ge 0`.

    Returns
    -------
    float64 array, shape ``(n_targets, dim)``
        Each probe's weights on the activations (the constant dropped): its direction.
    """
    A = _check_activations(activations)
    Y = np.asarray(targets, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[0] != A.shape[0]:
        raise ValueError(f"targets must have shape ({A.shape[0]}, n_targets), got {Y.shape}")
    ridge = _check_real("ridge", ridge, low=0.0)
    A1 = np.hstack([A, np.ones((A.shape[0], 1))])
    G = A1.T @ A1
    G[np.diag_indices_from(G)] += ridge * np.trace(G) / G.shape[0]
    coef = np.linalg.solve(G, A1.T @ Y)
    return np.ascontiguousarray(coef[:-1].T)


# ------------------------------------------------------------------ helpers


def _check_activations(activations: Any) -> np.ndarray:
    X = np.asarray(activations)
    if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise ValueError(f"activations must hold real numbers, got dtype {X.dtype}")
    X = X.astype(np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"activations must have shape (n_samples >= 1, dim >= 1), got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("activations must be finite (no NaN or inf)")
    return X


def _check_int(name: str, value: Any, *, low: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if low is not None and int(value) < low:
        raise ValueError(f"{name} must be >= {low}, got {int(value)}")
    return int(value)


def _check_real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    bad = not np.isfinite(v)
    bad |= low is not None and (v < low or (open_low and v == low))
    bad |= high is not None and v > high
    if bad:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(
            f"{name} must be finite and in {'(' if open_low else '['}{lo}, {hi}], got {v}"
        )
    return v


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def _unexplained(X: np.ndarray, recon: np.ndarray) -> float:
    X = np.asarray(X, dtype=np.float64)
    resid = float(np.sum((np.asarray(recon, dtype=np.float64) - X) ** 2))
    total = float(np.sum((X - X.mean(axis=0)) ** 2))
    return resid / total if total > 0 else 0.0


# ------------------------------------------------------------------ one benchmark run

METHODS = ("sae", "sklearn")
"""The baselines :func:`run_baseline` runs."""


@dataclass(frozen=True, eq=False)
class BaselineRun:
    """A baseline trained on one layer of an exported network and scored against its ground truth.

    Attributes
    ----------
    network : str
        The weights file.
    layer : str
    method : {"sae", "sklearn"}
    score : DictionaryScore
    learned : LearnedDictionary
    frequency : float64 array, shape ``(n_features,)``
        Fraction of the training inputs on which each true feature is 1.
    n_samples : int
        Activations the dictionary was trained on.
    """

    network: str
    layer: str
    method: str
    score: Any = field(repr=False)
    learned: LearnedDictionary = field(repr=False)
    frequency: np.ndarray = field(repr=False)
    n_samples: int


def run_baseline(
    network: str | os.PathLike,
    layer: str,
    method: str,
    *,
    atoms_per_feature: float = 1.0,
    n_atoms: int | None = None,
    n_samples: int = 4000,
    sparsity: int | None = None,
    seed: int = 0,
    **params: Any,
) -> BaselineRun:
    r"""Learn a dictionary for ``layer`` of the network in ``network`` and score it.

    The activations are :func:`superposition.benchmark.sample_layer` ``(net, layer, n_samples,
    seed=seed)``; the learner is :func:`train_sae` (``method="sae"``) or :func:`learn_dictionary`
    (``"sklearn"``) with ``params`` and ``seed``; the score is
    :func:`superposition.benchmark.score_dictionary` with the learner's usage (atoms it never
    used are dead). A module-level function of a file path, so it runs in a process pool.

    Parameters
    ----------
    network : str or PathLike
        An exported network (``.safetensors`` with its sidecar).
    layer : str
    method : {"sae", "sklearn"}
    atoms_per_feature : float
        Dictionary size as a multiple of the layer's true features (rounded, at least 1).
    n_atoms : int, optional
        The dictionary size itself (overrides ``atoms_per_feature``).
    n_samples : int
    sparsity : int, optional
        Of the inputs (default: the sidecar's).
    seed : int
    **params
        Hyper-parameters of the learner (``l1``, ``steps``, ... or ``alpha``, ``epochs``, ...).

    Returns
    -------
    BaselineRun
    """
    from . import benchmark as bm
    from .export import load_network

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    net = load_network(network)
    truth = bm.ground_truth(net, layer)
    if n_atoms is None:
        apf = _check_real("atoms_per_feature", atoms_per_feature, low=0.0, open_low=True)
        n_atoms = max(1, int(round(apf * truth.n_features)))
    sample = bm.sample_layer(net, layer, n_samples, sparsity=sparsity, seed=seed)
    learn = train_sae if method == "sae" else learn_dictionary
    learned = learn(sample.activations, n_atoms, seed=seed, **params)
    score = bm.score_dictionary(learned.atoms, truth, usage=learned.usage)
    freq = bm.feature_values(net, truth, sample.inputs).mean(axis=0)
    return BaselineRun(str(network), layer, method, score, learned, freq, int(n_samples))


def run_baselines(
    jobs: list[dict[str, Any]], *, executor: str | None = None, workers: int | None = None
) -> list[BaselineRun]:
    """:func:`run_baseline` ``(**job)`` for every job, in order; in this process or a pool.

    Parameters
    ----------
    jobs : list of dict
        Keyword arguments of :func:`run_baseline`, one dict per run.
    executor : {None, "local", "processes"}
        ``None``/``"local"``: one after the other here; ``"processes"``: a pool of ``workers``
        processes (:func:`superposition.open_executor`). Every run is seeded on its own, so the
        results are the same bits either way.
    workers : int, optional
        Processes of the pool (default: all cores).

    Returns
    -------
    list of BaselineRun
    """
    from .sweep import open_executor

    if executor not in (None, "local", "processes"):
        raise ValueError(f"executor must be None, 'local' or 'processes'; got {executor!r}")
    with open_executor(executor, workers) as pool:
        if pool is None:
            return [run_baseline(**job) for job in jobs]
        futures = [pool.submit(run_baseline, **job) for job in jobs]
        return [f.result() for f in futures]
