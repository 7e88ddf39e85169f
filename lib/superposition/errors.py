r"""Exact error statistics of every output of a U-AND layer, accumulated on any array namespace.

:class:`UAndErrors` holds the statistics (host NumPy numbers); :class:`ErrorAccumulator` adds
values computed in any array-API namespace to them: each addition is reduced where the values
live (sums, maxima, counts, histograms) and only the resulting numbers cross to the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from types import ModuleType
from typing import Any

import numpy as np

from .backend import bincount, name_of, to_numpy

__all__ = ["ErrorAccumulator", "UAndErrors"]


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
    backend : str
        The array namespace that computed the statistics (:func:`superposition.backend.name_of`).
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
    backend: str = "numpy"

    @property
    def n_samples(self) -> int:
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
        """The headline numbers: ``n_outputs, max_abs_error, mean_abs_error``, per pattern ``{mean, max}`` (of |err|), and the ``backend``."""
        both, rest = self.all_active, self.not_all_active
        return {
            "n_outputs": self.n_outputs,
            "max_abs_error": self.max_abs_error,
            "mean_abs_error": self.mean_abs_error,
            "error_all_active": {"mean": both["mean_abs"], "max": both["max_abs"]},
            "error_not_all_active": {"mean": rest["mean_abs"], "max": rest["max_abs"]},
            "backend": self.backend,
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
            first.backend,
        )


class ErrorAccumulator:
    """Running sums for :class:`UAndErrors` in namespace ``xp``; values may carry multiplicities.

    Parameters
    ----------
    arity : int
    n_samples : int
        Inputs of the batch (for the per-input worst error).
    bins : float array or None
        Histogram edges of the signed error.
    xp : namespace
        Where the values come from.
    """

    def __init__(self, arity: int, n_samples: int, bins: np.ndarray | None, xp: ModuleType):
        n1 = arity + 1
        self.arity = arity
        self.xp = xp
        self.count = np.zeros(n1, dtype=np.int64)
        self.nonzero = np.zeros(n1)
        self.enumerated = np.zeros(n1)
        self.sum = np.zeros(n1)
        self.sum_abs = np.zeros(n1)
        self.sum_sq = np.zeros(n1)
        self.max_abs = np.zeros(n1)
        self.input_max = np.zeros(n_samples)
        self.bins = bins
        self._edges = None if bins is None else xp.asarray(bins, dtype=xp.float64)
        self.hist = None if bins is None else np.zeros((n1, len(bins) - 1))

    def add_counts(self, n_features: int, sparsity: int, n_samples: int) -> None:
        """Count the outputs of each pattern of ``n_samples`` inputs with ``sparsity`` active."""
        n = self.arity
        for j in range(n + 1):
            self.count[j] += n_samples * comb(sparsity, j) * comb(n_features - sparsity, n - j)

    def histogram(self, err: Any, weight: Any = None) -> np.ndarray:
        """``numpy.histogram(err, bins, weights=weight)[0]`` computed in ``xp``."""
        xp, edges = self.xp, self._edges
        nb = edges.shape[0] - 1
        idx = xp.searchsorted(edges, err, side="right") - 1
        last = err == edges[nb]  # the last bin is closed on the right, as numpy's
        idx = xp.where(last, xp.full_like(idx, nb - 1), idx)
        inside = (idx >= 0) & (idx < nb)
        w = xp.astype(inside, xp.float64)
        if weight is not None:
            w = w * xp.astype(weight, xp.float64)
        safe = xp.where(inside, idx, xp.zeros_like(idx))
        return np.asarray(_host(bincount(xp.astype(safe, xp.int64), nb, weights=w)))

    def add(
        self,
        j: int,
        err: Any,
        weight: Any = None,
        nonzero: float | None = None,
        inputs: int | None = None,
    ) -> None:
        """Values ``err`` (1-D, in ``xp``) of pattern ``j``; ``weight``: multiplicity of each."""
        xp = self.xp
        if err.shape[0] == 0:
            return
        # plain reductions, not BLAS dot products: waking BLAS threads costs milliseconds
        ab = xp.abs(err)
        sq = err * err
        if weight is None:
            self.sum[j] += float(xp.sum(err))
            self.sum_abs[j] += float(xp.sum(ab))
            self.sum_sq[j] += float(xp.sum(sq))
            self.enumerated[j] += err.shape[0]
        else:
            self.sum[j] += float(xp.sum(weight * err))
            self.sum_abs[j] += float(xp.sum(weight * ab))
            self.sum_sq[j] += float(xp.sum(weight * sq))
            self.enumerated[j] += float(xp.sum(weight))
        if nonzero is not None:
            self.nonzero[j] += nonzero
        top = float(xp.max(ab))
        self.max_abs[j] = max(self.max_abs[j], top)
        if isinstance(inputs, int):
            self.input_max[inputs] = max(self.input_max[inputs], top)
        if self.hist is not None:
            self.hist[j] += self.histogram(err, weight)

    def add_tile(self, yhat: Any, J: Any, k0: int) -> None:
        """Add a ``(K, t)`` tile of outputs with patterns ``J`` (inputs ``k0 ...``).

        Most outputs have pattern 0 (target 0, error = output): those are summed in bulk with
        the others masked out; each other pattern is reduced under its own mask.
        """
        xp, n = self.xp, self.arity
        kk, t = yhat.shape
        zero = xp.zeros_like(yhat)
        others = J > 0
        n_others = int(xp.count_nonzero(others))
        y0 = xp.where(others, zero, yhat)
        ab0 = xp.abs(y0)
        self.sum[0] += float(xp.sum(y0))
        self.sum_abs[0] += float(xp.sum(ab0))
        self.sum_sq[0] += float(xp.sum(y0 * y0))
        self.max_abs[0] = max(self.max_abs[0], float(xp.max(ab0)) if kk * t else 0.0)
        self.nonzero[0] += int(xp.count_nonzero(y0))
        self.enumerated[0] += kk * t - n_others
        top = xp.max(ab0, axis=1) if t else xp.zeros(kk, dtype=yhat.dtype)
        if self.hist is not None:
            h = self.histogram(xp.reshape(y0, (-1,)))
            b = int(np.searchsorted(self.bins, 0.0, side="right")) - 1
            if 0 <= b < h.size:
                h[b] -= n_others  # the masked entries of other patterns
            self.hist[0] += h
        if n_others:
            err = xp.where(others, yhat - xp.astype(J == n, yhat.dtype), zero)
            eab = xp.abs(err)
            top = xp.maximum(top, xp.max(eab, axis=1))
            for j in range(1, n + 1):
                mask = J == j
                cnt = int(xp.count_nonzero(mask))
                if cnt == 0:
                    continue
                e = xp.where(mask, err, zero)
                a = xp.where(mask, eab, zero)
                self.sum[j] += float(xp.sum(e))
                self.sum_abs[j] += float(xp.sum(a))
                self.sum_sq[j] += float(xp.sum(e * e))
                self.nonzero[j] += int(xp.count_nonzero(mask & (yhat != 0)))
                self.enumerated[j] += cnt
                self.max_abs[j] = max(self.max_abs[j], float(xp.max(a)))
                if self.hist is not None:
                    self.hist[j] += self.histogram(err[mask])
        top_host = _host(top)
        self.input_max[k0 : k0 + kk] = np.maximum(self.input_max[k0 : k0 + kk], top_host)

    def finish(self, n_features: int) -> UAndErrors:
        """The statistics; outputs never enumerated read exactly 0."""
        hist = None
        if self.hist is not None:
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
            name_of(self.xp),
        )


def _host(x: Any) -> np.ndarray:
    return to_numpy(x)
