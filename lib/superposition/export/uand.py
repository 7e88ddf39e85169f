r"""Network kinds ``"uand"`` and ``"trained_uand"``: one U-AND layer :math:`a = \mathrm{ReLU}(Wx + b)` and its readout.

``"uand"`` is a :class:`~superposition.UAnd` (Bernoulli, Rademacher or Gaussian weights) with its
analytic readout, stored as a tensor or as the rule that computes each row from :math:`W`;
``"trained_uand"`` a :class:`~superposition.TrainedUAnd` (readout learned, always a tensor).

Loaded, both are a :class:`LoadedUAnd`: it rebuilds the construction from the stored arrays
and computes with the construction's own methods (:meth:`~superposition.UAnd.activations`,
the library's readouts :class:`~superposition.MeanReadout`, :class:`~superposition.SignReadout`,
:class:`~superposition.training.DenseReadout`), so a loaded layer and the library's cannot
compute different things. The superposed kind (``superposition.export.superposed``) extends it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from itertools import combinations
from math import comb
from typing import Any

import numpy as np

from .._validate import check_bits
from ..backend import to_numpy
from ..kernels import Wiring
from ..training import DenseReadout, TrainedUAnd
from ..uand import MeanReadout, Readout, SignReadout, UAnd, tuple_rank, tuple_unrank
from .core import NAMED_OUTPUTS, LoadedNetwork, NetworkKind, register_network_kind

EXPLICIT_READOUT_ENTRIES = 2**22
"""Readouts with at most this many entries (outputs × neurons) are stored as a tensor;
larger ones as the rule that computes them (``readout="auto"``)."""


# ------------------------------------------------------------------ the loaded network


class LoadedUAnd(LoadedNetwork):
    r"""A loaded U-AND layer (kinds ``"uand"``, ``"trained_uand"``): :math:`\hat y = R\,\mathrm{ReLU}(Wx + b)`.

    Inputs are 0/1 batches ``x`` ``(K, n_features)``; their rows may have different numbers of
    active features (the layer runs once per count, on the active indices, as the library does).
    Every result is a NumPy array.
    """

    @cached_property
    def network(self) -> Any:
        """The construction rebuilt from the stored arrays (:class:`~superposition.UAnd` or
        :class:`~superposition.TrainedUAnd`): what :meth:`hidden` runs."""
        t, sizes, con = self.tensors, self.sizes, self.meta["construction"]
        if self.network_kind == "trained_uand":
            return TrainedUAnd(
                sizes["n_features"],
                sizes["neurons"],
                sizes["sparsity"],
                sizes["arity"],
                W=t["layer.weight"],
                b=t["layer.bias"],
                R=t["readout.weight"],
                losses=np.zeros(0),
                config=dict(con["training"]),
            )
        return self._uand_layer()

    def _uand_layer(self) -> UAnd:
        """The first layer as a :class:`~superposition.UAnd`: the stored wiring (a
        :class:`~superposition.kernels.Wiring` for Bernoulli weights), bias, sizes and ``p``."""
        sizes, con = self.sizes, self.meta["construction"]
        m, d, s, n = sizes["n_features"], sizes["neurons"], sizes["sparsity"], sizes["arity"]
        weights = con["weights"]
        W = self.wiring if weights == "bernoulli" else self.tensors["layer.weight"]
        return UAnd(m, d, s, n, weights, float(con["p"]), W, float(con["bias"]))

    @cached_property
    def wiring(self) -> Wiring:
        """The 0/1 first layer as a :class:`~superposition.kernels.Wiring` (Bernoulli weights)."""
        import scipy.sparse as sps

        W = self.first_layer()
        return Wiring.from_sparse(W if sps.issparse(W) else sps.csr_array(W))

    @cached_property
    def readout(self) -> Readout:
        """The readout as the library's :class:`~superposition.uand.Readout`: the stored tensor
        (:class:`~superposition.training.DenseReadout`), or the sidecar's rule
        (:class:`~superposition.MeanReadout` on the wiring, :class:`~superposition.SignReadout`
        with the recorded scale)."""
        m, n = self.sizes["n_features"], self.sizes["arity"]
        rule = self.meta["readout"]
        if "tensor" in rule:
            return DenseReadout(self.tensors[rule["tensor"]], m, n)
        if rule["rule"] == "mean_over_gamma":
            return MeanReadout(self.wiring, n)
        if rule["rule"] == "sign":
            return SignReadout(np.sign(np.asarray(self.first_layer())), scale=float(rule["scale"]))
        raise ValueError(f"unknown readout rule {rule['rule']!r} in the sidecar")

    def first_layer(self) -> Any:
        r"""The wiring :math:`W` ``(neurons, n_features)``: a dense array, or a ``scipy.sparse``
        CSR array when it was stored in CSR form (superposed Bernoulli layers)."""
        if "layer.weight" in self.tensors:
            return self.tensors["layer.weight"]
        return self._csr_weight

    @cached_property
    def _csr_weight(self) -> Any:
        import scipy.sparse as sps

        t = self.tensors
        return sps.csr_array(
            (t["layer.weight.data"], t["layer.weight.indices"], t["layer.weight.indptr"]),
            shape=(self.sizes["neurons"], self.sizes["n_features"]),
        )

    def embed(self, x: np.ndarray) -> np.ndarray:
        r"""The layer's input for a 0/1 batch ``x``: ``x`` itself as float64 (:math:`\Phi = I`)."""
        return check_bits(x, self.sizes["n_features"]).astype(np.float64)

    def hidden(self, x: np.ndarray) -> np.ndarray:
        r""":math:`a = \mathrm{ReLU}(Wx + b)` for a 0/1 batch ``x`` → ``(K, neurons)``.

        The rebuilt construction's ``activations`` on the active indices of ``x``.
        """
        x = check_bits(x, self.sizes["n_features"])
        return by_active_count(x, self.network.activations)

    def readout_rows(self, tuples: np.ndarray) -> np.ndarray:
        r"""Rows :math:`R_T` of the readout for output tuples ``(t, arity)`` → ``(t, neurons)``.

        From the readout tensor, or computed by the sidecar's rule from the first layer (the
        readout applied to the unit activations, as the exporter computes the tensor).
        """
        m, n = self.sizes["n_features"], self.sizes["arity"]
        t = check_tuples(tuples, m, n)
        rule = self.meta["readout"]
        if "tensor" in rule:
            return self.tensors[rule["tensor"]][tuple_rank(t, m)]
        unit = self.readout.prepare(np.eye(self.sizes["neurons"]))
        return np.ascontiguousarray(to_numpy(self.readout.outputs(unit, t)).T)

    def outputs(self, x: np.ndarray, tuples: np.ndarray | None = None) -> np.ndarray:
        r""":math:`\hat y_T = R_T \cdot a` for the given output tuples (default: all, in rank order)."""
        return self.outputs_from_hidden(self.hidden(x), tuples)

    def outputs_from_hidden(self, a: np.ndarray, tuples: np.ndarray | None = None) -> np.ndarray:
        r""":math:`\hat y_T = R_T \cdot a` for activations ``a`` ``(K, neurons)`` → ``(K, t)`` float64.

        The library's readout (:attr:`readout`) on ``a``, as :func:`~superposition.uand_outputs`.
        """
        m, n = self.sizes["n_features"], self.sizes["arity"]
        a = np.asarray(a)
        d = self.sizes["neurons"]
        if a.ndim != 2 or a.shape[1] != d:
            raise ValueError(f"a must have shape (n_samples, {d}), got {a.shape}")
        if tuples is None:
            t = tuple_unrank(np.arange(comb(m, n)), m, n)
        else:
            t = check_tuples(tuples, m, n)
        return to_numpy(self.readout.outputs(self.readout.prepare(a), t))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Every output :math:`\\hat y_T` ``(K, C(m, n))``, in rank order (:meth:`outputs`)."""
        return self.outputs(x)

    def torch_module(self, torch: Any) -> Any:
        """``Linear → ReLU → Linear`` in the weights' dtype (needs the readout tensor)."""
        rule = self.meta["readout"]
        if "tensor" not in rule:
            raise ValueError("to_torch needs an explicit readout: export with readout='explicit'")
        W = self.tensors["layer.weight"]
        R = self.tensors[rule["tensor"]]
        dtype = torch.float64 if W.dtype == np.float64 else torch.float32
        first = torch.nn.Linear(W.shape[1], W.shape[0], dtype=dtype)
        last = torch.nn.Linear(R.shape[1], R.shape[0], bias=False, dtype=dtype)
        with torch.no_grad():
            first.weight.copy_(torch.from_numpy(np.array(W)))
            first.bias.copy_(torch.from_numpy(np.array(self.tensors["layer.bias"])))
            last.weight.copy_(torch.from_numpy(np.array(R)))

        class _UAnd(torch.nn.Sequential):
            """``Linear → ReLU → Linear``; the 0/1 input is cast to the weights' dtype."""

            def forward(self, x: Any) -> Any:
                return super().forward(x.to(dtype))

        return _UAnd(first, torch.nn.ReLU(), last)


def by_active_count(x: np.ndarray, f: Callable[[np.ndarray], Any]) -> np.ndarray:
    """``f(active)`` for a 0/1 batch ``x`` ``(K, m)``, the rows put back in order → NumPy ``(K, …)``.

    A library layer takes its inputs as active indices ``(K, s)`` with one ``s``; rows of ``x``
    may have different numbers of ones, so ``f`` runs once per number ``c``: on the rows with
    ``c`` ones and their indices ``(rows, c)``, increasing.
    """
    counts = np.count_nonzero(x, axis=1)
    if x.shape[0] == 0:
        return to_numpy(f(np.zeros((0, 0), dtype=np.int64)))
    out = None
    for c in np.unique(counts):
        rows = np.flatnonzero(counts == c)
        part = to_numpy(f(np.nonzero(x[rows])[1].reshape(rows.size, int(c))))
        if out is None:
            out = np.empty((x.shape[0], *part.shape[1:]), dtype=part.dtype)
        out[rows] = part
    return out


def check_tuples(tuples: np.ndarray, m: int, n: int) -> np.ndarray:
    """Output tuples ``(t, n)`` of strictly increasing feature indices in ``[0, m)``, as int64."""
    t = np.asarray(tuples)
    if t.ndim != 2 or t.shape[1] != n or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"tuples must be an integer array of shape (t, {n}), got {t.shape}")
    if t.size and (t.min() < 0 or t.max() >= m or (np.diff(t, axis=1) <= 0).any()):
        raise ValueError(f"tuples must be strictly increasing indices in [0, {m - 1}]")
    return t.astype(np.int64)


# ------------------------------------------------------------------ writing


def output_meta(m: int, n: int) -> dict[str, Any]:
    """The sidecar's ``outputs``: the ANDs of ``n`` of ``m`` inputs, their order and names."""
    n_out = comb(m, n)
    out: dict[str, Any] = {
        "count": n_out,
        "target": f"AND of {n} input features: y_T(x) = prod_{{k in T}} x_k",
        "order": "lexicographic: output r is the r-th increasing tuple T = (k_1 < ... < k_n) of "
        "range(n_features) in lexicographic order (superposition.tuple_unrank(r, m, n))",
        "name": "and(k_1,...,k_n)",
    }
    if n_out <= NAMED_OUTPUTS:
        out["names"] = [f"and({','.join(map(str, t))})" for t in combinations(range(m), n)]
    return out


def readout_arrays(
    readout: Any, m: int, d: int, n: int, mode: str, *, sign_scale: str
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The analytic readout of a U-AND construction as a tensor, or as its rule (``mode``)."""
    n_out = comb(m, n)
    store = mode
    if mode == "auto":
        store = "explicit" if n_out * d <= EXPLICIT_READOUT_ENTRIES else "rule"
    if store == "explicit":
        if n_out * d > 4 * EXPLICIT_READOUT_ENTRIES:
            raise ValueError(
                f"readout='explicit' would store {n_out} x {d} entries; use 'rule' or 'auto'"
            )
        tup = tuple_unrank(np.arange(n_out), m, n)
        R = readout.outputs(readout.prepare(np.eye(d)), tup).T.copy()
        return {"readout.weight": R}, {"tensor": "readout.weight", "shape": "(n_outputs, neurons)"}
    if isinstance(readout, MeanReadout):
        return {}, {
            "rule": "mean_over_gamma",
            "formula": "R[T, i] = [W[i, k] = 1 for all k in T] / |Gamma(T)|, "
            "Gamma(T) = {i : W[i, k] = 1 for all k in T}; the row is 0 when Gamma(T) is empty",
        }
    return {}, {
        "rule": "sign",
        "scale": float(readout.scale),
        "formula": f"R[(k, l), i] = scale * sign(W[i, k]) * sign(W[i, l]), {sign_scale}",
    }


def _uand_to_arrays(
    net: UAnd, mode: str, progress: bool | None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    m, d, n = net.n_features, net.neurons, net.arity
    W = net.dense()
    tensors = {"layer.weight": W, "layer.bias": np.full(d, net.bias, dtype=W.dtype)}
    readout_tensors, readout = readout_arrays(
        net.readout, m, d, n, mode, sign_scale="scale = 1/(d c_D(s))"
    )
    tensors.update(readout_tensors)
    meta = {
        "sizes": {
            "n_features": m,
            "neurons": d,
            "sparsity": net.sparsity,
            "arity": n,
            "n_outputs": net.n_outputs,
        },
        "construction": {"weights": net.weights, "p": float(net.p), "bias": float(net.bias)},
        "embedding": {"storage": "identity", "note": "basis-aligned: the layer reads x itself"},
        "forward": "a = relu(x @ layer.weight.T + layer.bias); y = a @ R.T",
        "outputs": output_meta(m, n),
        "readout": readout,
    }
    return tensors, meta


def _trained_to_arrays(
    net: TrainedUAnd, mode: str, progress: bool | None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if mode == "rule":
        raise ValueError("a trained readout has no rule: use readout='explicit' or 'auto'")
    tensors = {"layer.weight": net.W, "layer.bias": net.b, "readout.weight": net.R}
    meta = {
        "sizes": {
            "n_features": net.n_features,
            "neurons": net.neurons,
            "sparsity": net.sparsity,
            "arity": net.arity,
            "n_outputs": net.n_outputs,
        },
        "construction": {"weights": "trained", "training": dict(net.config)},
        "seed": net.config.get("seed"),
        "embedding": {"storage": "identity", "note": "basis-aligned: the layer reads x itself"},
        "forward": "a = relu(x @ layer.weight.T + layer.bias); y = a @ readout.weight.T",
        "outputs": output_meta(net.n_features, net.arity),
        "readout": {"tensor": "readout.weight", "shape": "(n_outputs, neurons)"},
    }
    return tensors, meta


register_network_kind(
    NetworkKind("uand", lambda obj: isinstance(obj, UAnd), _uand_to_arrays, LoadedUAnd)
)
register_network_kind(
    NetworkKind(
        "trained_uand", lambda obj: isinstance(obj, TrainedUAnd), _trained_to_arrays, LoadedUAnd
    )
)
