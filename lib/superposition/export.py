r"""Ground-truth networks on disk: safetensors weights plus a JSON sidecar that says what they compute.

:func:`export_network` writes any supported network as two files,

``NAME.safetensors``
    Every weight as a named tensor (safetensors: a JSON header and raw little-endian
    buffers; loading it never executes code, unlike pickle).
``NAME.json``
    The ground truth: the kind of network, its sizes and seed, how it was built, the forward
    pass as a formula, the feature embedding :math:`\Phi` (or ``identity`` for basis-aligned
    inputs), the readout of every named output (a tensor, or for very many outputs the rule
    that computes each row from the weights), the circuit it emulates, the list of tensors
    with their shapes and dtypes, and the SHA-256 of the weights file.

:func:`load_network` reads both back as plain NumPy arrays (:class:`LoadedNetwork`); it
checks the format, the checksum and every tensor against the sidecar, and raises a
``ValueError`` that names the file and the problem when anything is off. The forward pass of
a loaded network is plain NumPy (:meth:`LoadedNetwork.forward`); :func:`to_torch` rebuilds it
as ``torch.nn`` layers when PyTorch is installed (it is optional and imported only there).

Network kinds are a registry (:data:`NETWORK_KINDS`): each kind converts an in-memory network to
tensors and metadata, and runs the forward pass of the loaded arrays. Supported:

``"uand"``
    :class:`superposition.UAnd` (Bernoulli, Rademacher, Gaussian) with its analytic readout.
``"trained_uand"``
    :class:`superposition.training.TrainedUAnd` (a trained network; readout learned).
``"superposed"``
    :class:`superposition.superposed.SuperposedUAnd` (a U-AND layer reading :math:`\Phi x`):
    the wiring :math:`W` as the construction stores it (CSR for Bernoulli, dense otherwise),
    the bias, the readout, and :math:`\Phi` (a tensor up to :data:`EXPLICIT_EMBEDDING_ENTRIES`
    entries, always with the rule that regenerates it and a SHA-256 that checks it); with
    :class:`WithOutputEmbedding`, also the embedding :math:`\Psi` the outputs are written into.
``"circuit"``
    :class:`superposition.CompiledCircuit`: every layer's ``W_in, b, W_out, W_skip``, every
    embedding :math:`\Phi_\ell`, and the circuit's wiring and gate truth tables.
``"deep"``
    :class:`superposition.deep.DeepNetwork` (gate layers alternating with correction layers):
    every gate layer's sparse factors (wiring, product readout, linear terms) as the network
    applies them, the embeddings :math:`\Phi_\ell` (tensors, or their rule when large) or the
    code's units and codes, the circuit, and, up to :data:`PLAIN_LAYER_ENTRIES` entries, every
    layer as plain ``W_in, b, W_out (, W_skip)`` (:meth:`LoadedNetwork.layer_arrays` computes
    them otherwise). The loaded forward pass is :func:`superposition.deep.run_deep`'s, bit for bit.

Further kinds register with :func:`register_network_kind`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import Any

import numpy as np

from ._validate import check_bits, check_choice, check_int
from .backend import to_numpy
from .kernels import Wiring

FORMAT = "superposition-network"
FORMAT_VERSION = 2
"""2: the vocabulary of superposition 0.2 (``network_kind``, ``neurons``, ``embed_dim``, …)."""
EXPLICIT_READOUT_ENTRIES = 2**22
"""Readouts with at most this many entries (outputs × neurons) are stored as a tensor;
larger ones as the rule that computes them (``readout="auto"``)."""
EXPLICIT_EMBEDDING_ENTRIES = 2**22
r"""Random embeddings (:math:`\Phi`, :math:`\Psi`) with at most this many entries are stored as
a tensor; larger ones only as the rule that regenerates them (with a SHA-256 that checks the
regenerated bits)."""
NAMED_OUTPUTS = 4096
"""Up to this many outputs, the sidecar lists every output's name."""
_READOUT_MODES = ("auto", "explicit", "rule")
_PROGRESS: ContextVar[bool | None] = ContextVar("export_progress", default=False)


# ------------------------------------------------------------------ registry


@dataclass(frozen=True)
class NetworkKind:
    """How one kind of network is exported and run.

    Attributes
    ----------
    name : str
    matches : callable ``(obj) -> bool``
        Whether an in-memory object is of this kind.
    to_arrays : callable ``(obj, readout) -> (tensors, meta)``
        Named tensors (plain NumPy arrays) and JSON-able metadata.
    forward : callable ``(net, x) -> array``
        The forward pass of a :class:`LoadedNetwork` on a 0/1 batch ``x``.
    torch_module : callable ``(net, torch) -> torch.nn.Module``, optional
    """

    name: str
    matches: Callable[[Any], bool]
    to_arrays: Callable[[Any, str], tuple[dict[str, np.ndarray], dict[str, Any]]]
    forward: Callable[[LoadedNetwork, np.ndarray], np.ndarray]
    torch_module: Callable[[LoadedNetwork, Any], Any] | None = None


NETWORK_KINDS: dict[str, NetworkKind] = {}
"""Registered kinds, by name."""


def register_network_kind(network_kind: NetworkKind) -> NetworkKind:
    """Add (or replace) a network kind in :data:`NETWORK_KINDS`; returns it."""
    NETWORK_KINDS[network_kind.name] = network_kind
    return network_kind


def network_kind_of(obj: Any) -> str:
    """The registered kind of an in-memory network (``ValueError`` if none matches)."""
    for kind in NETWORK_KINDS.values():
        if kind.matches(obj):
            return kind.name
    raise ValueError(
        f"network must be one of the registered kinds ({', '.join(NETWORK_KINDS)}), "
        f"got {type(obj).__name__}"
    )


# ------------------------------------------------------------------ loaded networks


@dataclass(frozen=True, eq=False)
class LoadedNetwork:
    """A network read back from disk: plain arrays and the sidecar's ground truth.

    Attributes
    ----------
    network_kind : str
    tensors : dict of str to numpy.ndarray
        Every tensor of the weights file, read-only.
    meta : dict
        The sidecar (JSON).
    """

    network_kind: str
    tensors: dict[str, np.ndarray] = field(repr=False)
    meta: dict[str, Any] = field(repr=False)

    @property
    def sizes(self) -> dict[str, int]:
        return dict(self.meta["sizes"])

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The network's output on a 0/1 batch ``x`` ``(K, n_features)`` (see the kind's rule)."""
        return NETWORK_KINDS[self.network_kind].forward(self, x)

    # ---- U-AND kinds (basis-aligned, trained, superposed)
    def first_layer(self) -> Any:
        r"""The wiring :math:`W` ``(neurons, n_features)``: a dense array, or a ``scipy.sparse``
        CSR array when it was stored in CSR form (superposed Bernoulli layers)."""
        self._need(*_UAND_KINDS)
        if "layer.weight" in self.tensors:
            return self.tensors["layer.weight"]
        cache = self.__dict__.setdefault("_cache", {})
        if "W" not in cache:
            import scipy.sparse as sps

            t = self.tensors
            cache["W"] = sps.csr_array(
                (t["layer.weight.data"], t["layer.weight.indices"], t["layer.weight.indptr"]),
                shape=(self.sizes["neurons"], self.sizes["n_features"]),
            )
        return cache["W"]

    def embed(self, x: np.ndarray) -> np.ndarray:
        r"""The network's input :math:`a_0 = \Phi x` for a 0/1 batch ``x`` → ``(K, embed_dim)``.

        Basis-aligned kinds (:math:`\Phi = I`): ``x`` itself, as float64.
        """
        self._need(*_UAND_KINDS)
        x = check_bits(x, self.sizes["n_features"])
        if self.meta["embedding"]["storage"] == "identity":
            return x.astype(np.float64)
        return _embed_bits(self._phi().columns, x, self.sizes["embed_dim"], self._phi().dtype)

    def hidden_from(self, a0: np.ndarray) -> np.ndarray:
        r""":math:`a = \mathrm{ReLU}(W\Phi^\top a_0 + b)` for an embedded input ``a0`` ``(K, embed_dim)``.

        :math:`W\Phi^\top` is not formed: :math:`\Phi^\top a_0` is read first (superposed kind).
        """
        self._need("superposed")
        a0 = np.asarray(a0)
        d0 = self.sizes["embed_dim"]
        if a0.ndim != 2 or a0.shape[1] != d0:
            raise ValueError(f"a0 must have shape (n_samples, {d0}), got {a0.shape}")
        z = a0 if self.meta["embedding"]["storage"] == "identity" else self._phi().readout(a0)
        h = np.asarray(self.first_layer() @ z.T).T + self.tensors["layer.bias"]
        return np.maximum(h, 0.0)

    def hidden(self, x: np.ndarray) -> np.ndarray:
        r""":math:`a = \mathrm{ReLU}(W\Phi^\top\Phi x + b)` for a 0/1 batch ``x`` → ``(K, neurons)``.

        :math:`\Phi = I` for the basis-aligned kinds: :math:`\mathrm{ReLU}(x W^\top + b)`.
        """
        self._need(*_UAND_KINDS)
        if self.network_kind == "superposed":
            return self.hidden_from(self.embed(x))
        x = check_bits(x, self.sizes["n_features"])
        return _uand_hidden(self.tensors, x)

    def embedding_matrix(self) -> np.ndarray:
        r""":math:`\Phi` ``(embed_dim, n_features)``: the stored tensor, or regenerated by the
        sidecar's rule and checked against the recorded SHA-256 (superposed kind)."""
        self._need("superposed")
        emb = self.meta["embedding"]
        if emb["storage"] == "identity":
            return np.eye(self.sizes["n_features"])
        if "tensor" in emb:
            return self.tensors[emb["tensor"]]
        return self._phi().matrix()

    def readout_rows(self, tuples: np.ndarray) -> np.ndarray:
        r"""Rows :math:`R_T` of the readout for output tuples ``(t, arity)`` → ``(t, neurons)``.

        From the readout tensor, or computed by the sidecar's rule (``mean_over_gamma`` or
        ``sign``) from the first-layer weights.
        """
        self._need(*_UAND_KINDS)
        from .uand import tuple_rank

        m, n = self.sizes["n_features"], self.sizes["arity"]
        t = _check_tuples(tuples, m, n)
        rule = self.meta["readout"]
        if "tensor" in rule:
            return self.tensors[rule["tensor"]][tuple_rank(t, m)]
        W = self.first_layer()
        if not isinstance(W, np.ndarray):
            W = W.tocsc()  # columns of a sparse W
        if rule["rule"] == "mean_over_gamma":
            both = np.ones((t.shape[0], W.shape[0]), dtype=bool)
            for j in range(n):
                both &= _dense_columns(W, t[:, j]).T != 0
            size = both.sum(axis=1, keepdims=True)
            return np.divide(both, size, out=np.zeros(both.shape), where=size > 0)
        if rule["rule"] == "sign":
            left = np.sign(_dense_columns(W, t[:, 0]))
            right = np.sign(_dense_columns(W, t[:, 1]))
            rows = float(rule["scale"]) * (left * right).T
            if "neuron_scale" in rule:
                rows = rows * self.tensors[rule["neuron_scale"]]
            return rows
        raise ValueError(f"unknown readout rule {rule['rule']!r} in the sidecar")

    def outputs(self, x: np.ndarray, tuples: np.ndarray | None = None) -> np.ndarray:
        r""":math:`\hat y_T = R_T \cdot a` for the given output tuples (default: all, in rank order)."""
        return self.outputs_from_hidden(self.hidden(x), tuples)

    def outputs_from_hidden(self, a: np.ndarray, tuples: np.ndarray | None = None) -> np.ndarray:
        r""":math:`\hat y_T = R_T \cdot a` for activations ``a`` ``(K, neurons)``."""
        self._need(*_UAND_KINDS)
        a = np.asarray(a)
        if tuples is None:
            rule = self.meta["readout"]
            if "tensor" in rule:
                return a @ self.tensors[rule["tensor"]].T
            from .uand import tuple_unrank

            m, n = self.sizes["n_features"], self.sizes["arity"]
            tuples = tuple_unrank(np.arange(comb(m, n)), m, n)
        return a @ self.readout_rows(tuples).T

    def embed_outputs(self, y: np.ndarray) -> np.ndarray:
        r""":math:`o = \Psi\hat y`: all outputs ``(K, n_outputs)`` written into the ``out_dim``
        dimensions of the output embedding → ``(K, out_dim)`` (float32, block by block)."""
        psi = self._psi()
        y = np.asarray(y, dtype=psi.dtype)
        if y.ndim != 2 or y.shape[1] != psi.n_features:
            raise ValueError(f"y must have shape (n_samples, {psi.n_features}), got {y.shape}")
        o = np.zeros((y.shape[0], psi.embed_dim), dtype=psi.dtype)
        for first, blk in psi.blocks():
            o += y[:, first : first + blk.shape[1]] @ blk.T
        return o

    def read_outputs(self, o: np.ndarray) -> np.ndarray:
        r""":math:`\Psi^\top o`: every output read back from the output embedding → ``(K, n_outputs)``."""
        return self._psi().readout(o)

    def _phi(self) -> Any:
        return self._random_embedding("embedding")

    def _psi(self) -> Any:
        self._need("superposed")
        if self.meta.get("output_embedding") is None:
            raise ValueError("this network has no output embedding (export WithOutputEmbedding)")
        return self._random_embedding("output_embedding")

    def _random_embedding(self, key: str) -> Any:
        """The :class:`~superposition.embedding.Embedding` of ``meta[key]`` (cached).

        From the stored tensor when there is one (blocks of its columns), else regenerated by
        the rule; the bits are checked against the recorded SHA-256 either way.
        """
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cache[key] = _embedding_from_meta(self.meta[key], self.tensors, key)
        return cache[key]

    # ---- circuit kinds (compiled circuit, deep corrected circuit)
    def residuals(self, x: np.ndarray, *, corrected: bool = True) -> Iterator[np.ndarray]:
        r"""Yield the residual stream on a 0/1 batch ``x``.

        Circuit kind: :math:`a^{(0)} = \Phi_0 x, a^{(1)}, \dots, a^{(L)}`. Deep kind:
        :math:`a^{(0)}`, then the state after gate layer 1, correction layer 1, gate layer 2, …
        (:math:`2L + 1` states); ``corrected=False`` skips the correction layers (:math:`L + 1`).
        """
        self._need("circuit", "deep")
        x = check_bits(x, self.sizes["n_features"])
        if self.network_kind == "deep":
            yield from self._deep_residuals(x, corrected)
            return
        a = _encode(self.tensors["embedding.0"], x)
        yield a
        for ell in range(self.sizes["depth"]):
            a = _residual_layer(self.tensors, ell, a)
            yield a

    def decode(self, a: np.ndarray, layer: int) -> np.ndarray:
        r""":math:`\hat x^{(\ell)} = \Phi_\ell^\top a`: the readout of every named value of layer :math:`\ell`."""
        self._need("circuit", "deep")
        ell = check_int("layer", layer, low=0, high=self.sizes["depth"])
        if self.network_kind == "deep":
            return np.asarray(a) @ self._deep_rows(ell).T
        return np.asarray(a) @ self.tensors[f"embedding.{ell}"]

    def ground_truth(self, x: np.ndarray) -> list[np.ndarray]:
        r"""The exact circuit values :math:`x^{(0)}, \dots, x^{(L)}` from the stored wiring and truth tables."""
        self._need("circuit", "deep")
        vals = [check_bits(x, self.sizes["n_features"]).astype(np.int8)]
        for ell in range(self.sizes["depth"]):
            u = self.tensors[f"circuit.{ell}.left"]
            v = self.tensors[f"circuit.{ell}.right"]
            code = self.tensors[f"circuit.{ell}.code"].astype(np.int64)
            prev = vals[-1].astype(np.int64)
            bit = 2 * prev[:, u] + prev[:, v]
            vals.append(((code[None, :] >> bit) & 1).astype(np.int8))
        return vals

    def layer_arrays(self, layer: int) -> dict[str, np.ndarray]:
        r"""Plain MLP arrays of network layer ``layer`` :math:`= k \in [0, 2L)` (deep kind).

        :math:`a' = W_{\mathrm{skip}} a + W_{\mathrm{out}}\mathrm{ReLU}(W_{\mathrm{in}} a + b)`:
        even :math:`k` is gate layer :math:`k/2 + 1` (``W_in, b, W_out, W_skip``), odd
        :math:`k` its correction layer (``W_in, b, W_out``; no skip). Stored tensors when the
        file has them, else materialised from the stored factors (in the network's dtype).
        """
        self._need("deep")
        from .correction import clipped_unit_weights

        L = self.sizes["depth"]
        k = check_int("layer", layer, low=0, high=2 * L - 1)
        names = ("W_in", "b", "W_out", "W_skip")
        stored = {
            n: self.tensors[f"layer.{k}.{n}"] for n in names if f"layer.{k}.{n}" in self.tensors
        }
        if stored:
            return stored
        con = self.meta["construction"]
        dtype = np.dtype(con["dtype"])
        ell = k // 2 + 1
        out_phi = self._deep_phi(ell).astype(np.float64)
        if k % 2 == 0:
            theta = float(con["and_bias"])
            f = self._deep_factors(ell)
            wt, pt, lt = f.wiring_t.to_scipy(), f.product_t.to_scipy(), f.linear_t.to_scipy()
            in_phi = self._deep_phi(ell - 1).astype(np.float64)
            arrays = {
                "W_in": np.asarray(in_phi @ wt.astype(np.float64)).T,
                "b": np.full(self.sizes["gate_neurons"], -theta),
                "W_out": np.asarray(out_phi @ pt.T.astype(np.float64)) / (2.0 - theta),
                "W_skip": out_phi @ np.asarray(in_phi @ lt.astype(np.float64)).T,
            }
        else:
            lo, hi = float(con["lo"]), float(con["hi"])
            if con["design"] == "code":
                units = self.tensors["correction.units"]
                root_c = np.sqrt(self.tensors["correction.codes"].shape[1])
                w_in, b, w_out = clipped_unit_weights(units.T * root_c, units / root_c, lo, hi)
            else:
                w_in, b, w_out = clipped_unit_weights(out_phi.T, out_phi, lo, hi)
            arrays = {"W_in": w_in, "b": b, "W_out": w_out}
        return {n: np.ascontiguousarray(v, dtype=dtype) for n, v in arrays.items()}

    def _deep_phi(self, ell: int) -> np.ndarray:
        r""":math:`\Phi_\ell` ``(embed_dim, n_features)`` of value layer ``ell`` (deep kind)."""
        emb = self.meta["embedding"]
        i = ell if emb["scheme"] == "fresh" else 0
        pm = emb["phi"][i]
        if "tensor" in pm:
            return self.tensors[pm["tensor"]]
        if pm["storage"] == "code":
            import scipy.sparse as sps

            units = self.tensors["correction.units"]
            codes = self.tensors["correction.codes"]
            m, c = codes.shape
            inc = sps.csr_array(
                (np.ones(m * c), (np.repeat(np.arange(m), c), codes.reshape(-1))),
                shape=(m, units.shape[1]),
            )
            psi = np.asarray(inc @ units.T).T / np.sqrt(c)
            return psi.astype(np.dtype(pm["dtype"]))
        return _embedding_from_meta(pm, self.tensors, f"embedding.phi[{i}]").matrix()

    def _deep_rows(self, ell: int) -> np.ndarray:
        """:math:`\\Phi_\\ell^\\top` as C-contiguous rows ``(n_features, embed_dim)`` (a few cached)."""
        emb = self.meta["embedding"]
        i = ell if emb["scheme"] == "fresh" else 0
        cache = self.__dict__.setdefault("_rows", {})
        if i not in cache:
            for old in sorted(cache)[:-2]:
                del cache[old]
            cache[i] = np.ascontiguousarray(self._deep_phi(ell).T)
        return cache[i]

    def _deep_factors(self, ell: int) -> Any:
        """The stored factors of gate layer ``ell`` as :class:`superposition.deep.GateFactors`."""
        from .deep import GateFactors

        m, n = self.sizes["n_features"], self.sizes["gate_neurons"]
        shapes = {"wiring_t": (m, n), "product_t": (n, m), "linear_t": (m, m)}
        return GateFactors(
            **{f: _csr_from(self.tensors, f"gate.{ell}.{f}", shapes[f]) for f in _GATE_FACTORS}
        )

    def _deep_residuals(self, x: np.ndarray, corrected: bool) -> Iterator[np.ndarray]:
        """The states of :func:`superposition.deep.run_deep`: its own step, on the stored tensors."""
        from .deep import CorrectionArrays, deep_step

        con = self.meta["construction"]
        dtype = np.dtype(con["dtype"])
        theta, lo, hi = float(con["and_bias"]), float(con["lo"]), float(con["hi"])
        correction = None
        if corrected:
            correction = CorrectionArrays(lo, hi)
            if con["design"] == "code":
                units = self.tensors["correction.units"]
                blocks = int(self.tensors["correction.codes"].shape[1])
                correction = CorrectionArrays(lo, hi, units=units, blocks=blocks)
        rows = self._deep_rows(0)
        a = x.astype(dtype) @ rows
        r = a @ rows.T
        yield a
        for ell in range(1, self.sizes["depth"] + 1):
            step = deep_step(
                r,
                self._deep_factors(ell),
                self._deep_rows(ell),
                and_bias=theta,
                correction=correction,
            )
            yield step.gate
            if corrected:
                yield step.state
            r = step.readout

    def _need(self, *kinds: str) -> None:
        if self.network_kind not in kinds:
            raise ValueError(f"this method applies to kinds {kinds}, not {self.network_kind!r}")


# ------------------------------------------------------------------ export / load


def network_arrays(
    network: Any, *, readout: str = "auto", progress: bool | None = False
) -> tuple[str, dict[str, np.ndarray], dict[str, Any]]:
    """The kind, named tensors and metadata of an in-memory network (nothing written).

    Parameters
    ----------
    network : a registered kind (see :data:`NETWORK_KINDS`)
    readout : {"auto", "explicit", "rule"}
        U-AND kinds: store the readout as a tensor (``"explicit"``), as its rule (``"rule"``,
        constructions only), or a tensor up to :data:`EXPLICIT_READOUT_ENTRIES` entries
        (``"auto"``).
    progress : bool or None
        A ``tqdm`` bar on stderr over the layers of a deep network (``None``: only on a
        terminal).
    """
    mode = check_choice("readout", readout, _READOUT_MODES)
    kind = network_kind_of(network)
    token = _PROGRESS.set(progress)
    try:
        tensors, meta = NETWORK_KINDS[kind].to_arrays(network, mode)
    finally:
        _PROGRESS.reset(token)
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    return kind, tensors, meta


def as_loaded(network: Any, *, readout: str = "auto") -> LoadedNetwork:
    """The :class:`LoadedNetwork` an export of ``network`` would load as, without writing it."""
    kind, tensors, meta = network_arrays(network, readout=readout)
    meta = _sidecar(kind, tensors, meta, sha256="", tensors_file="")
    for v in tensors.values():
        v.setflags(write=False)
    return LoadedNetwork(kind, tensors, meta)


def sidecar_path(path: str | os.PathLike) -> Path:
    """``NAME.json`` for ``NAME.safetensors``."""
    return _weights_path(path).with_suffix(".json")


def export_network(
    network: Any,
    path: str | os.PathLike,
    *,
    readout: str = "auto",
    seed: int | None = None,
    extra: dict[str, Any] | None = None,
    progress: bool | None = False,
) -> tuple[Path, Path]:
    """Write ``network`` as ``path`` (safetensors) and its JSON sidecar next to it.

    Parameters
    ----------
    network : a registered kind
    path : str or PathLike
        Must end in ``.safetensors``; the sidecar is the same name with ``.json``.
    readout : {"auto", "explicit", "rule"}
        See :func:`network_arrays`.
    progress : bool or None
        See :func:`network_arrays`.
    seed : int, optional
        The seed the network was built from (recorded in the sidecar).
    extra : dict, optional
        More JSON-able metadata, stored under ``"extra"``.

    Returns
    -------
    (weights_path, sidecar_path)
    """
    from safetensors.numpy import save_file

    wpath = _weights_path(path)
    kind, tensors, meta = network_arrays(network, readout=readout, progress=progress)
    if seed is not None:
        meta["seed"] = check_int("seed", seed, low=0)
    if extra is not None:
        meta["extra"] = json.loads(json.dumps(extra))
    wpath.parent.mkdir(parents=True, exist_ok=True)
    tmp = wpath.with_name(wpath.name + ".tmp")
    # one metadata key: safetensors writes its metadata map in hash order, and the bytes of a
    # file must not depend on it (same network, same bytes)
    tag = json.dumps(
        {"format": FORMAT, "format_version": FORMAT_VERSION, "network_kind": kind}, sort_keys=True
    )
    save_file(tensors, str(tmp), metadata={"superposition": tag})
    digest = _sha256(tmp)
    side = _sidecar(kind, tensors, meta, sha256=digest, tensors_file=wpath.name)
    spath = sidecar_path(wpath)
    stmp = spath.with_name(spath.name + ".tmp")
    stmp.write_text(json.dumps(side, indent=1, sort_keys=True) + "\n")
    # safetensors creates its file owner-only; give it the permissions of any new file (umask)
    shutil.copymode(stmp, tmp)
    os.replace(tmp, wpath)
    os.replace(stmp, spath)
    return wpath, spath


def load_network(path: str | os.PathLike) -> LoadedNetwork:
    """Read a network written by :func:`export_network`: plain arrays, no code executed.

    Parameters
    ----------
    path : str or PathLike
        The ``.safetensors`` file (or its ``.json`` sidecar).

    Raises
    ------
    ValueError
        A missing file, an unreadable or corrupted weights file, a sidecar of another format
        or version, a checksum that does not match (the two files are not a pair), or a
        tensor whose name, shape or dtype differs from the sidecar.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    p = Path(path)
    wpath = p.with_suffix(".safetensors") if p.suffix == ".json" else _weights_path(p)
    spath = sidecar_path(wpath)
    for f in (wpath, spath):
        if not f.is_file():
            raise ValueError(f"{f}: no such file")
    try:
        meta = json.loads(spath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{spath}: not a JSON sidecar ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{spath}: not a {FORMAT} sidecar")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{spath}: format_version {meta.get('format_version')!r}, this library reads "
            f"{FORMAT_VERSION}"
        )
    kind = meta.get("network_kind")
    if kind not in NETWORK_KINDS:
        raise ValueError(f"{spath}: unknown kind {kind!r}; known: {', '.join(NETWORK_KINDS)}")
    digest = _sha256(wpath)
    if digest != meta.get("sha256"):
        raise ValueError(
            f"{wpath}: SHA-256 {digest[:16]}… does not match the sidecar's "
            f"{str(meta.get('sha256'))[:16]}… (corrupted, or not the pair of {spath.name})"
        )
    try:
        tensors = load_file(str(wpath))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{wpath}: unreadable safetensors file ({exc})") from None
    manifest = meta.get("tensors", {})
    if set(manifest) != set(tensors):
        missing = sorted(set(manifest) - set(tensors))
        unexpected = sorted(set(tensors) - set(manifest))
        raise ValueError(
            f"{wpath}: tensors do not match the sidecar (missing {missing}, unexpected {unexpected})"
        )
    for name, arr in tensors.items():
        want = manifest[name]
        if list(arr.shape) != list(want["shape"]) or arr.dtype.name != want["dtype"]:
            raise ValueError(
                f"{wpath}: tensor {name!r} is {arr.dtype.name}{list(arr.shape)}, the sidecar "
                f"says {want['dtype']}{list(want['shape'])}"
            )
        arr.setflags(write=False)
    return LoadedNetwork(kind, tensors, meta)


def to_torch(network: LoadedNetwork | Any) -> Any:
    """A ``torch.nn.Module`` with the same forward pass as :meth:`LoadedNetwork.forward`.

    Needs PyTorch (imported here only). Tensors keep their dtype (the superposed kind runs in
    float64). U-AND kinds need an explicit readout tensor (export with ``readout="explicit"``).
    """
    try:
        import torch
    except ModuleNotFoundError:
        raise ValueError("to_torch needs PyTorch, which is not installed") from None
    net = network if isinstance(network, LoadedNetwork) else as_loaded(network)
    build = NETWORK_KINDS[net.network_kind].torch_module
    if build is None:
        raise ValueError(f"no torch builder for network kind {net.network_kind!r}")
    return build(net, torch)


# ------------------------------------------------------------------ helpers


def _weights_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.suffix != ".safetensors":
        raise ValueError(f"path must end in .safetensors, got {str(p)!r}")
    return p


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sidecar(
    kind: str,
    tensors: dict[str, np.ndarray],
    meta: dict[str, Any],
    *,
    sha256: str,
    tensors_file: str,
) -> dict[str, Any]:
    from ._version import __version__

    out = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "network_kind": kind,
        "library": f"superposition {__version__}",
        "tensors_file": tensors_file,
        "sha256": sha256,
        "tensors": {
            k: {"shape": list(v.shape), "dtype": v.dtype.name} for k, v in sorted(tensors.items())
        },
        "seed": None,
    }
    out.update(meta)
    return out


def _check_tuples(tuples: np.ndarray, m: int, n: int) -> np.ndarray:
    t = np.asarray(tuples)
    if t.ndim != 2 or t.shape[1] != n or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"tuples must be an integer array of shape (t, {n}), got {t.shape}")
    if t.size and (t.min() < 0 or t.max() >= m or (np.diff(t, axis=1) <= 0).any()):
        raise ValueError(f"tuples must be strictly increasing indices in [0, {m - 1}]")
    return t.astype(np.int64)


def _gather_sum(M: np.ndarray, x: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``x Mᵀ (+ bias)`` for a 0/1 ``x``: the active columns of ``M`` added in index order.

    Sums are formed column by column from 0 (or the bias), so the bits do not depend on BLAS.
    """
    k = x.shape[0]
    out = np.zeros((k, M.shape[0]), dtype=M.dtype)
    if bias is not None:
        out += bias
    rows, cols = np.nonzero(x)
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    # the j-th active feature of every input, for j = 0, 1, ...
    counts = np.bincount(rows, minlength=k)
    rank = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    for j in range(int(counts.max(initial=0))):
        sel = rank == j
        out[rows[sel]] += M[:, cols[sel]].T
    return out


_UAND_KINDS = ("uand", "trained_uand", "superposed")


def _dense_columns(W: Any, cols: np.ndarray) -> np.ndarray:
    """Columns ``cols`` of a dense or ``scipy.sparse`` matrix, as a dense ``(rows, len(cols))``."""
    if isinstance(W, np.ndarray):
        return W[:, cols]
    return W[:, cols].toarray()


def _embed_bits(
    columns: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dim: int, dtype: Any
) -> np.ndarray:
    r""":math:`\Phi x` for a 0/1 ``x``: the active columns added in index order, from 0.

    The same sums, in the same order, as :meth:`superposition.embedding.Embedding.embed`.
    """
    k = x.shape[0]
    out = np.zeros((k, dim), dtype=dtype)
    rows, cols = np.nonzero(x)
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    counts = np.bincount(rows, minlength=k)
    rank = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    for j in range(int(counts.max(initial=0))):
        sel = rank == j
        out[rows[sel]] += columns(cols[sel]).T
    return out


class _StoredEmbedding:
    r"""A stored :math:`\Phi` ``(dim, n)`` with the interface and the arithmetic of
    :class:`superposition.embedding.Embedding` (same blocks, same chunked readout)."""

    def __init__(self, matrix: np.ndarray) -> None:
        self._m = matrix
        self.embed_dim, self.n_features = matrix.shape
        self.dtype = matrix.dtype

    def columns(self, features: np.ndarray) -> np.ndarray:
        return self._m[:, np.asarray(features)]

    def blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        from .embedding import BLOCK

        for first in range(0, self.n_features, BLOCK):
            yield first, self._m[:, first : first + BLOCK]

    def matrix(self) -> np.ndarray:
        return self._m

    def readout(self, a: np.ndarray) -> np.ndarray:
        from .embedding import BLOCK, READOUT_CHUNK

        a = np.asarray(a, dtype=self.dtype)
        if a.ndim != 2 or a.shape[1] != self.embed_dim:
            raise ValueError(f"a must have shape (n_samples, {self.embed_dim}), got {a.shape}")
        out = np.empty((a.shape[0], self.n_features), dtype=self.dtype)
        step = READOUT_CHUNK * BLOCK
        for start in range(0, self.n_features, step):
            chunk = np.ascontiguousarray(self._m[:, start : start + step])
            out[:, start : start + chunk.shape[1]] = a @ chunk
        return out


def _blocks_sha256(emb: Any) -> str:
    """SHA-256 of the first and the last column block of an embedding (C-order bytes).

    Enough to tell another random stream from the exporter's, at the cost of two blocks
    (hashing every block would cost as much as generating a huge rule-only embedding).
    """
    h = hashlib.sha256()
    for b in sorted({0, emb.n_blocks - 1}):
        h.update(np.ascontiguousarray(emb.block(b)).tobytes())
    return h.hexdigest()


_EMBEDDING_RULE = (
    "column block b (features b*block ... b*block + block - 1, fewer in the last) is drawn "
    "from numpy.random.default_rng((seed, b)): embedding_kind 'gaussian': standard_normal((dim, w)), "
    "each column divided by its Euclidean norm; embedding_kind 'sign': (integers(0, 2, size=(dim, w)) "
    "* 2.0 - 1.0) / sqrt(dim); computed in float64, then cast to dtype "
    "(superposition.embedding.Embedding(n, dim, embedding_kind=embedding_kind, seed=seed, dtype=dtype))"
)


def _embedding_arrays(
    emb: Any, name: str, *, note: str, store: bool | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A random :class:`~superposition.embedding.Embedding` as a tensor and its rule.

    ``store``: keep the tensor; ``None``: when it has at most :data:`EXPLICIT_EMBEDDING_ENTRIES`.
    """
    from .embedding import BLOCK

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
            "formula": _EMBEDDING_RULE,
        },
        "sha256": _blocks_sha256(emb),
        "sha256_of": "the bytes (C order, little-endian) of column block 0, then of the last "
        "column block if there is more than one",
    }
    if store is None:
        store = d0 * n <= EXPLICIT_EMBEDDING_ENTRIES
    if not store:
        return {}, meta
    meta["tensor"] = name
    return {name: emb.matrix()}, meta


def _embedding_from_meta(meta: dict[str, Any], tensors: dict[str, np.ndarray], key: str) -> Any:
    """The stored tensor as an embedding, or the embedding regenerated by the rule (checked)."""
    from .embedding import BLOCK, Embedding

    if "tensor" in meta:
        return _StoredEmbedding(tensors[meta["tensor"]])
    rule = meta["rule"]
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
        dtype=np.dtype(meta["dtype"]),
    )
    if _blocks_sha256(emb) != meta["sha256"]:
        raise ValueError(
            f"{key}: regenerated by its rule, it has other bits than the exported one (SHA-256 "
            f"{meta['sha256'][:16]}…); this NumPy {np.__version__} draws another random stream "
            "than the exporter's: export with the tensor stored (a smaller network) or use the "
            "exporter's NumPy"
        )
    return emb


def _uand_hidden(tensors: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return np.maximum(_gather_sum(tensors["layer.weight"], x, tensors["layer.bias"]), 0)


def _encode(phi: np.ndarray, x: np.ndarray) -> np.ndarray:
    return _gather_sum(phi, x, None)


def _residual_layer(tensors: dict[str, np.ndarray], ell: int, a: np.ndarray) -> np.ndarray:
    t = {k: tensors[f"layer.{ell}.{k}"] for k in ("W_in", "b", "W_out", "W_skip")}
    return a @ t["W_skip"].T + np.maximum(a @ t["W_in"].T + t["b"], 0.0) @ t["W_out"].T


# ------------------------------------------------------------------ kind: U-AND


def _uand_matches(obj: Any) -> bool:
    from .uand import UAnd

    return isinstance(obj, UAnd)


def _uand_readout_mode(mode: str, n_out: int, d: int) -> str:
    if mode == "auto":
        return "explicit" if n_out * d <= EXPLICIT_READOUT_ENTRIES else "rule"
    return mode


def _output_meta(m: int, n: int) -> dict[str, Any]:
    from itertools import combinations

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


def _readout_arrays(
    readout: Any, m: int, d: int, n: int, mode: str, *, sign_scale: str
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The analytic readout of a U-AND construction as a tensor, or as its rule."""
    from .uand import MeanReadout, tuple_unrank

    n_out = comb(m, n)
    store = _uand_readout_mode(mode, n_out, d)
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
    if readout.coef is not None:  # a layer with bias groups: one weight per neuron
        return {"readout.neuron_scale": np.asarray(readout.coef, dtype=np.float64)}, {
            "rule": "sign",
            "scale": float(readout.scale),
            "neuron_scale": "readout.neuron_scale",
            "formula": "R[(k, l), i] = scale * neuron_scale[i] * sign(W[i, k]) * sign(W[i, l]), "
            "neuron_scale[i] = alpha_g / d_g for the bias group g of neuron i "
            "(superposition.theory.sign_calibration)",
        }
    return {}, {
        "rule": "sign",
        "scale": float(readout.scale),
        "formula": f"R[(k, l), i] = scale * sign(W[i, k]) * sign(W[i, l]), {sign_scale}",
    }


def _bias_meta(net: Any) -> dict[str, Any]:
    """The construction's bias: one number, or (bias groups) where to find it."""
    if np.ndim(net.bias) == 0 and not net.groups:
        return {"bias": float(net.bias)}
    return {
        "bias": "per neuron: layer.bias",
        "bias_groups": [float(b) for b in net.groups],
        "calibrated_counts": [int(c) for c in net.counts],
    }


def _uand_to_arrays(net: Any, mode: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    m, d, n = net.n_features, net.neurons, net.arity
    W = net.dense()
    tensors = {"layer.weight": W, "layer.bias": np.full(d, net.bias, dtype=W.dtype)}
    readout_tensors, readout = _readout_arrays(
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
        "construction": {"weights": net.weights, "p": float(net.p), **_bias_meta(net)},
        "embedding": {"storage": "identity", "note": "basis-aligned: the layer reads x itself"},
        "forward": "a = relu(x @ layer.weight.T + layer.bias); y = a @ R.T",
        "outputs": _output_meta(m, n),
        "readout": readout,
    }
    return tensors, meta


def _uand_forward(net: LoadedNetwork, x: np.ndarray) -> np.ndarray:
    return net.outputs(x)


def _uand_torch(net: LoadedNetwork, torch: Any) -> Any:
    rule = net.meta["readout"]
    if "tensor" not in rule:
        raise ValueError("to_torch needs an explicit readout: export with readout='explicit'")
    W = net.tensors["layer.weight"]
    R = net.tensors[rule["tensor"]]
    dtype = _torch_dtype(torch, W)
    first = torch.nn.Linear(W.shape[1], W.shape[0], dtype=dtype)
    last = torch.nn.Linear(R.shape[1], R.shape[0], bias=False, dtype=dtype)
    with torch.no_grad():
        first.weight.copy_(torch.from_numpy(np.array(W)))
        first.bias.copy_(torch.from_numpy(np.array(net.tensors["layer.bias"])))
        last.weight.copy_(torch.from_numpy(np.array(R)))

    class _UAnd(torch.nn.Sequential):
        """``Linear → ReLU → Linear``; the 0/1 input is cast to the weights' dtype."""

        def forward(self, x: Any) -> Any:
            return super().forward(x.to(dtype))

    return _UAnd(first, torch.nn.ReLU(), last)


def _torch_dtype(torch: Any, arr: np.ndarray) -> Any:
    return torch.float64 if arr.dtype == np.float64 else torch.float32


register_network_kind(
    NetworkKind("uand", _uand_matches, _uand_to_arrays, _uand_forward, _uand_torch)
)


# ------------------------------------------------------------------ kind: trained U-AND


def _trained_matches(obj: Any) -> bool:
    from .training import TrainedUAnd

    return isinstance(obj, TrainedUAnd)


def _trained_to_arrays(net: Any, mode: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
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
        "outputs": _output_meta(net.n_features, net.arity),
        "readout": {"tensor": "readout.weight", "shape": "(n_outputs, neurons)"},
    }
    return tensors, meta


register_network_kind(
    NetworkKind("trained_uand", _trained_matches, _trained_to_arrays, _uand_forward, _uand_torch)
)


# ------------------------------------------------------------------ kind: superposed U-AND


@dataclass(frozen=True, eq=False)
class WithOutputEmbedding:
    r"""A superposed U-AND layer whose outputs are written into superposition by :math:`\Psi`.

    Exports as kind ``"superposed"`` with the output embedding
    :math:`\Psi` ``(out_dim, n_outputs)`` (float32) of
    :func:`superposition.superposed.output_embedding_errors`: the next layer receives
    :math:`o = \Psi\hat y` and reads output :math:`T` as :math:`\psi_T\cdot o`
    (:meth:`LoadedNetwork.embed_outputs`, :meth:`LoadedNetwork.read_outputs`).

    Attributes
    ----------
    network : SuperposedUAnd
    out_dim : int, optional
        Dimension of the output space (default: the layer's number of neurons).
    embedding_kind : {"gaussian", "sign"}
    seed : int
        Seed of :math:`\Psi` (1, as in :func:`~superposition.superposed.output_embedding_errors`).
    """

    network: Any
    out_dim: int | None = None
    embedding_kind: str = "gaussian"
    seed: int = 1

    def __post_init__(self) -> None:
        from .embedding import EMBEDDING_KINDS
        from .superposed import SuperposedUAnd

        if not isinstance(self.network, SuperposedUAnd):
            raise ValueError(f"network must be a SuperposedUAnd, got {type(self.network).__name__}")
        if self.out_dim is not None:
            check_int("out_dim", self.out_dim, low=1)
        check_choice("embedding_kind", self.embedding_kind, EMBEDDING_KINDS)
        check_int("seed", self.seed, low=0)

    def psi(self) -> Any:
        r""":math:`\Psi` as an :class:`~superposition.embedding.Embedding` (float32)."""
        from .embedding import Embedding

        net = self.network
        dout = net.neurons if self.out_dim is None else self.out_dim
        return Embedding(
            comb(net.n_features, net.arity),
            dout,
            embedding_kind=self.embedding_kind,
            seed=self.seed,
            dtype=np.float32,
        )


def _superposed_matches(obj: Any) -> bool:
    from .superposed import SuperposedUAnd

    return isinstance(obj, SuperposedUAnd | WithOutputEmbedding)


def _superposed_to_arrays(obj: Any, mode: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:

    from .superposed import superposed_sign_constant

    snet = obj.network if isinstance(obj, WithOutputEmbedding) else obj
    net = snet.net
    m, d, n = net.n_features, net.neurons, net.arity
    tensors: dict[str, np.ndarray] = {}
    if isinstance(net.W, Wiring):
        rows = net.W.supports()  # the features of each neuron: W in compressed rows
        tensors["layer.weight.indptr"] = np.asarray(rows.host_indptr, dtype=np.int64)
        tensors["layer.weight.indices"] = to_numpy(rows.indices).astype(np.int32)
        tensors["layer.weight.data"] = np.ones(rows.nnz)
        first = {
            "format": "csr",
            "shape": "(neurons, n_features)",
            "tensors": ["layer.weight.indptr", "layer.weight.indices", "layer.weight.data"],
            "note": "row i of W holds data[indptr[i]:indptr[i+1]] in the columns "
            "indices[indptr[i]:indptr[i+1]] (scipy.sparse.csr_array((data, indices, indptr)))",
        }
    else:
        tensors["layer.weight"] = np.asarray(net.W)
        first = {"format": "dense", "shape": "(neurons, n_features)", "tensors": ["layer.weight"]}
    tensors["layer.bias"] = np.full(d, net.bias, dtype=np.float64)
    construction: dict[str, Any] = {
        "weights": net.weights,
        "p": float(net.p),
        **_bias_meta(net),
        "first_layer": first,
        "noise_var": snet.noise_var,
    }
    sign_scale = "scale = 1/(d c), c = superposed_sign_constant(s, weights, noise_var)"
    if net.weights != "bernoulli" and not net.groups:
        construction["sign_constant"] = superposed_sign_constant(
            snet.sparsity, net.weights, snet.noise_var, bias=float(net.bias)
        )
    readout_tensors, readout = _readout_arrays(snet.readout, m, d, n, mode, sign_scale=sign_scale)
    tensors.update(readout_tensors)
    if snet.embedding is None:
        embedding: dict[str, Any] = {
            "storage": "identity",
            "note": "basis-aligned: the layer reads x itself",
        }
        d0 = m
    else:
        emb_tensors, embedding = _embedding_arrays(
            snet.embedding,
            "embedding.phi",
            note="the network's input is a0 = Phi x (shape (embed_dim,)); column k of Phi is "
            "feature k's direction",
        )
        tensors.update(emb_tensors)
        d0 = snet.embedding.embed_dim
    sizes = {
        "n_features": m,
        "neurons": d,
        "embed_dim": d0,
        "sparsity": net.sparsity,
        "arity": n,
        "n_outputs": net.n_outputs,
    }
    output_embedding = None
    if isinstance(obj, WithOutputEmbedding):
        psi = obj.psi()
        psi_tensors, output_embedding = _embedding_arrays(
            psi,
            "output_embedding.psi",
            note="o = Psi y_hat (shape (out_dim,)) is what the next layer receives; output T is "
            "read back as Psi[:, T] . o",
        )
        tensors.update(psi_tensors)
        sizes["out_dim"] = psi.embed_dim
    meta = {
        "sizes": sizes,
        "construction": construction,
        "embedding": embedding,
        "forward": "a0 = x @ Phi.T; z = a0 @ Phi (every feature read back, x + noise); "
        "a = relu(z @ W.T + layer.bias); y = a @ R.T"
        + ("; o = y @ Psi.T" if output_embedding is not None else ""),
        "outputs": _output_meta(m, n),
        "readout": readout,
        "output_embedding": output_embedding,
    }
    return tensors, meta


def _superposed_torch(net: LoadedNetwork, torch: Any) -> Any:
    import scipy.sparse as sps

    rule = net.meta["readout"]
    if "tensor" not in rule:
        raise ValueError("to_torch needs an explicit readout: export with readout='explicit'")
    W = net.first_layer()
    W = W.toarray() if sps.issparse(W) else np.array(W)
    phi = np.array(net.embedding_matrix())
    R = np.array(net.tensors[rule["tensor"]])
    d0, m = phi.shape

    def linear(weight: np.ndarray, bias: np.ndarray | None = None) -> Any:
        lin = torch.nn.Linear(
            weight.shape[1], weight.shape[0], bias=bias is not None, dtype=torch.float64
        )
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(weight.astype(np.float64)))
            if bias is not None:
                lin.bias.copy_(torch.from_numpy(np.array(bias, dtype=np.float64)))
        return lin

    class _Superposed(torch.nn.Sequential):
        r"""``x → Φx → Φᵀ(·) → ReLU(W · + b) → R ·`` (float64); ``self[1:]`` reads :math:`a_0`."""

        def forward(self, x: Any) -> Any:
            return super().forward(x.to(torch.float64))

    return _Superposed(
        linear(phi),
        linear(np.ascontiguousarray(phi.T)),
        linear(W, net.tensors["layer.bias"]),
        torch.nn.ReLU(),
        linear(R),
    )


register_network_kind(
    NetworkKind(
        "superposed", _superposed_matches, _superposed_to_arrays, _uand_forward, _superposed_torch
    )
)


# ------------------------------------------------------------------ kind: compiled circuit


def _circuit_matches(obj: Any) -> bool:
    from .circuits import CompiledCircuit

    return isinstance(obj, CompiledCircuit)


def _circuit_to_arrays(net: Any, mode: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays = net.arrays()
    circuit = net.circuit
    tensors: dict[str, np.ndarray] = {}
    for ell, phi in enumerate(arrays["embeddings"]):
        tensors[f"embedding.{ell}"] = phi
    for ell, layer in enumerate(arrays["layers"]):
        for k, v in layer.items():
            tensors[f"layer.{ell}.{k}"] = np.asarray(v)
    for ell, layer in enumerate(circuit.layers):
        tensors[f"circuit.{ell}.left"] = np.asarray(layer.left, dtype=np.int64)
        tensors[f"circuit.{ell}.right"] = np.asarray(layer.right, dtype=np.int64)
        tensors[f"circuit.{ell}.code"] = np.asarray(layer.code, dtype=np.int64)
    meta = {
        "sizes": {
            "n_features": circuit.n_features,
            "depth": circuit.depth,
            "n_features_per_layer": list(circuit.n_features_per_layer),
            "embed_dim": net.embed_dim,
            "neurons": net.neurons,
        },
        "embedding": {
            "storage": "tensor",
            "tensors": [f"embedding.{ell}" for ell in range(circuit.depth + 1)],
            "note": "a^(0) = embedding.0 @ x; embedding.l is Phi_l, shape (embed_dim, m_l)",
        },
        "forward": "a^(l+1) = a^(l) @ W_skip.T + relu(a^(l) @ W_in.T + b) @ W_out.T "
        "(tensors layer.l.*); forward(x) returns a^(L)",
        "outputs": {
            "count": int(sum(circuit.n_features_per_layer)),
            "name": "x^(l)_g: gate g of layer l (l = 0: the inputs)",
            "target": "x^(l)_g = f_g(x^(l-1)_left[g], x^(l-1)_right[g]), f_g(x, y) = "
            "(code[g] >> (2x + y)) & 1 (tensors circuit.l.left/right/code)",
        },
        "readout": {
            "rule": "embedding",
            "formula": "value of x^(l)_g read from a^(l) as embedding.l[:, g] . a^(l); "
            "the bit is this value thresholded at 1/2",
        },
        "circuit": {
            "n_features": circuit.n_features,
            "depth": circuit.depth,
            "layers": [layer.describe() for layer in circuit.layers]
            if sum(circuit.n_features_per_layer[1:]) <= NAMED_OUTPUTS
            else "see tensors circuit.l.left/right/code",
        },
    }
    return tensors, meta


def _circuit_forward(net: LoadedNetwork, x: np.ndarray) -> np.ndarray:
    a = None
    for a in net.residuals(x):  # noqa: B007 - keep the last
        pass
    return a


def _circuit_torch(net: LoadedNetwork, torch: Any) -> Any:
    class _Residual(torch.nn.Module):
        def __init__(self, t: dict[str, np.ndarray]) -> None:
            super().__init__()
            for k, v in t.items():
                self.register_buffer(k, torch.from_numpy(np.array(v)))

        def forward(self, a: Any) -> Any:
            return a @ self.W_skip.T + torch.relu(a @ self.W_in.T + self.b) @ self.W_out.T

    class _Circuit(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer(
                "embedding", torch.from_numpy(np.array(net.tensors["embedding.0"]))
            )
            self.layers = torch.nn.ModuleList(
                _Residual(
                    {k: net.tensors[f"layer.{ell}.{k}"] for k in ("W_in", "b", "W_out", "W_skip")}
                )
                for ell in range(net.sizes["depth"])
            )

        def forward(self, x: Any) -> Any:
            a = x.to(self.embedding.dtype) @ self.embedding.T
            for layer in self.layers:
                a = layer(a)
            return a

    return _Circuit()


register_network_kind(
    NetworkKind("circuit", _circuit_matches, _circuit_to_arrays, _circuit_forward, _circuit_torch)
)


# ------------------------------------------------------------------ kind: deep corrected circuit

PLAIN_LAYER_ENTRIES = 2**22
"""Deep networks whose plain MLP arrays (every layer materialised) have at most this many
entries in all also store them; larger ones store only the factors they are computed from."""
_GATE_FACTORS = ("wiring_t", "product_t", "linear_t")


def _deep_matches(obj: Any) -> bool:
    from .deep import DeepNetwork

    return isinstance(obj, DeepNetwork)


def _csr_tensors(name: str, M: Any) -> dict[str, np.ndarray]:
    return {f"{name}.indptr": M.indptr, f"{name}.indices": M.indices, f"{name}.data": M.data}


def _csr_from(tensors: dict[str, np.ndarray], name: str, shape: tuple[int, int]) -> Any:
    from .kernels import CSR

    return CSR(
        tensors[f"{name}.indptr"], tensors[f"{name}.indices"], tensors[f"{name}.data"], shape
    )


def _deep_plain_entries(L: int, d: int, n: int, c: int) -> int:
    """Entries of the materialised MLP arrays of every layer (gate and correction)."""
    return L * (2 * n * d + n + d * d + 2 * c * d + c)


def _deep_to_arrays(net: Any, mode: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    circuit = net.circuit
    L, m, d, n = net.depth, net.n_features, net.embed_dim, net.gate_neurons
    dtype = np.dtype(net.dtype)
    tensors: dict[str, np.ndarray] = {}
    # value-layer embeddings
    if net.design == "code":
        code = net.code
        tensors["correction.units"] = np.asarray(code.units, dtype=np.float64)
        tensors["correction.codes"] = np.asarray(code.codes, dtype=np.int64)
        psi: dict[str, Any] = {
            "storage": "code",
            "shape": [d, m],
            "dtype": dtype.name,
            "rule": "Psi = (S @ correction.units.T).T / sqrt(blocks), cast to dtype, with S the "
            "0/1 (n_features, n_units) incidence S[k, correction.codes[k, j]] = 1 (a sparse "
            "product: psi_k is the sum of its code's unit directions over sqrt(c))",
        }
        if d * m <= EXPLICIT_EMBEDDING_ENTRIES:
            tensors["embedding.0"] = np.asarray(code.embedding_matrix(), dtype=dtype)
            psi["tensor"] = "embedding.0"
        phis = [psi]
        scheme = "code"
        which = "every value layer is read and written through phi[0], the code's Psi"
    else:
        idx = list(range(L + 1)) if net.embedding_scheme == "fresh" else [0]
        store = len(idx) * d * m <= EXPLICIT_EMBEDDING_ENTRIES
        phis = []
        for i in idx:
            t, meta_i = _embedding_arrays(
                net.embedding(i),
                f"embedding.{i}",
                note="column k is feature k's direction in the residual stream",
                store=store,
            )
            tensors.update(t)
            phis.append(meta_i)
        scheme = net.embedding_scheme
        which = (
            "value layer l is read and written through phi[l]"
            if scheme == "fresh"
            else "every value layer is read and written through phi[0]"
        )
    # gate layers, in the factored form the network applies
    from tqdm import tqdm

    progress = _PROGRESS.get()
    layers = tqdm(
        range(1, L + 1),
        desc="export deep",
        unit="layer",
        disable=None if progress is None else not progress,
        leave=False,
    )
    for ell in layers:
        f = net.gate_factors(ell)
        for name in _GATE_FACTORS:
            tensors.update(_csr_tensors(f"gate.{ell}.{name}", getattr(f, name)))
    for i, layer in enumerate(circuit.layers):
        tensors[f"circuit.{i}.left"] = np.asarray(layer.left, dtype=np.int64)
        tensors[f"circuit.{i}.right"] = np.asarray(layer.right, dtype=np.int64)
        tensors[f"circuit.{i}.code"] = np.asarray(layer.code, dtype=np.int64)
    theta = float(net.and_bias)
    code_meta = None
    if net.code is not None:
        code_meta = {
            "field": net.code.field,
            "blocks": net.code.blocks,
            "degree": net.code.degree,
            "seed": net.code.seed,
            "n_units": net.code.n_units,
        }
    lo, hi = (net.code.lo, net.code.hi) if net.code is not None else (net.lo, net.hi)
    meta: dict[str, Any] = {
        "sizes": {
            "n_features": m,
            "depth": L,
            "embed_dim": d,
            "gate_neurons": n,
            "correction_neurons": net.correction_neurons,
            "network_layers": 2 * L,
        },
        "construction": {
            "design": net.design,
            "embedding_scheme": net.embedding_scheme,
            "embedding_kind": net.embedding_kind,
            "dtype": dtype.name,
            "and_bias": theta,
            "lo": float(lo),
            "hi": float(hi),
            "code": code_meta,
        },
        "seed": int(net.seed),
        "embedding": {"scheme": scheme, "phi": phis, "layers": which},
        "forward": "a = x @ Phi_0.T; then for l = 1..L: gate layer l, then correction layer l; "
        "forward(x) returns the state after correction layer L (see 'gate', 'correction')",
        "gate": {
            "tensors": "gate.l.wiring_t (n_features, gate_neurons), gate.l.product_t (gate_neurons, "
            "n_features), gate.l.linear_t (n_features, n_features); CSR: .indptr .indices .data",
            "formula": "r = a @ Phi_(l-1); h = relu(r @ wiring_t - and_bias); "
            "v = r @ linear_t + (h @ product_t) * (1 / (2 - and_bias)); a' = v @ Phi_l.T "
            "(products with the sparse factors; a' cast to dtype)",
        },
        "correction": {
            "design": net.design,
            "formula": "g(z) = relu(z/(hi-lo) - lo/(hi-lo)) - relu(z/(hi-lo) - hi/(hi-lo)); "
            + (
                "a' = g(a @ Phi_l) @ Phi_l.T (2 n_features neurons)"
                if net.code is None
                else "u = g(sqrt(c) * a @ correction.units); a' = u @ correction.units.T / "
                "sqrt(c) (2 n_units neurons; computed in float64, cast to dtype)"
            ),
        },
        "outputs": {
            "count": m * (L + 1),
            "name": "x^(l)_g: gate g of circuit layer l (l = 0: the inputs)",
            "target": "x^(l)_g = f_g(x^(l-1)_left[g], x^(l-1)_right[g]), f_g(x, y) = "
            "(code[g] >> (2x + y)) & 1 (tensors circuit.(l-1).left/right/code)",
        },
        "readout": {
            "rule": "embedding",
            "formula": "x^(l) is read from the state after correction layer l (l = 0: "
            "a = x @ Phi_0.T) as a @ Phi_l; the bit is this value thresholded at 1/2",
        },
        "circuit": {
            "n_features": m,
            "depth": L,
            "layers": [layer.describe() for layer in circuit.layers]
            if m * L <= NAMED_OUTPUTS
            else "see tensors circuit.l.left/right/code",
        },
        "plain": {
            "stored": False,
            "formula": "network layer k = 0..2L-1: a' = a @ W_skip.T + relu(a @ W_in.T + b) @ "
            "W_out.T (tensors layer.k.*; no W_skip, i.e. 0, for the correction layers k odd); "
            "gate l = k/2 + 1: W_in = (Phi_(l-1) @ wiring_t).T, b = -and_bias, W_out = Phi_l @ "
            "product_t.T / (2 - and_bias), W_skip = Phi_l @ linear_t.T @ Phi_(l-1).T; "
            "correction l = (k+1)/2, with s = 1/(hi-lo): "
            + (
                "W_in = [Phi_l.T; Phi_l.T] * s, b = [-lo*s] * m + [-hi*s] * m, "
                "W_out = [Phi_l, -Phi_l]"
                if net.code is None
                else "U = correction.units, c = blocks: W_in = [U.T; U.T] * sqrt(c) * s, "
                "b = [-lo*s] * n_units + [-hi*s] * n_units, W_out = [U, -U] / sqrt(c)"
            ),
        },
    }
    plain = _deep_plain_entries(L, d, n, net.correction_neurons)
    if plain <= PLAIN_LAYER_ENTRIES:
        probe = LoadedNetwork("deep", tensors, meta)
        for k in range(2 * L):
            for name, arr in probe.layer_arrays(k).items():
                tensors[f"layer.{k}.{name}"] = arr
        meta["plain"]["stored"] = True
    return tensors, meta


def _deep_forward(net: LoadedNetwork, x: np.ndarray) -> np.ndarray:
    a = None
    for a in net.residuals(x):  # noqa: B007 - keep the last
        pass
    return a


def _deep_torch(net: LoadedNetwork, torch: Any) -> Any:
    dtype = torch.float64 if net.meta["construction"]["dtype"] == "float64" else torch.float32

    class _Layer(torch.nn.Module):
        def __init__(self, t: dict[str, np.ndarray]) -> None:
            super().__init__()
            self.skip = "W_skip" in t
            for k, v in t.items():
                self.register_buffer(k, torch.from_numpy(np.array(v)))

        def forward(self, a: Any) -> Any:
            out = torch.relu(a @ self.W_in.T + self.b) @ self.W_out.T
            return out + a @ self.W_skip.T if self.skip else out

    class _Deep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("embedding", torch.from_numpy(np.array(net._deep_rows(0))))
            self.layers = torch.nn.ModuleList(
                _Layer(net.layer_arrays(k)) for k in range(net.sizes["network_layers"])
            )

        def forward(self, x: Any) -> Any:
            a = x.to(dtype) @ self.embedding
            for layer in self.layers:
                a = layer(a)
            return a

    return _Deep()


register_network_kind(
    NetworkKind("deep", _deep_matches, _deep_to_arrays, _deep_forward, _deep_torch)
)
