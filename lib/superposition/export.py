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

Network kinds are a registry (:data:`KINDS`): each kind converts an in-memory network to
tensors and metadata, and runs the forward pass of the loaded arrays. Supported:

``"uand"``
    :class:`superposition.UAnd` (Bernoulli, Rademacher, Gaussian) with its analytic readout.
``"trained_uand"``
    :class:`superposition.training.TrainedUAnd` (a trained network; readout learned).
``"circuit"``
    :class:`superposition.CompiledCircuit`: every layer's ``W_in, b, W_out, W_skip``, every
    embedding :math:`\Phi_\ell`, and the circuit's wiring and gate truth tables.

Further kinds register with :func:`register_kind`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from math import comb
from pathlib import Path
from typing import Any

import numpy as np

from ._validate import check_choice, check_int

FORMAT = "superposition-network"
FORMAT_VERSION = 1
EXPLICIT_READOUT_ENTRIES = 2**22
"""Readouts with at most this many entries (outputs × neurons) are stored as a tensor;
larger ones as the rule that computes them (``readout="auto"``)."""
NAMED_OUTPUTS = 4096
"""Up to this many outputs, the sidecar lists every output's name."""
_READOUT_MODES = ("auto", "explicit", "rule")


# ------------------------------------------------------------------ registry


@dataclass(frozen=True)
class Kind:
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


KINDS: dict[str, Kind] = {}
"""Registered kinds, by name."""


def register_kind(kind: Kind) -> Kind:
    """Add (or replace) a kind in :data:`KINDS`; returns it."""
    KINDS[kind.name] = kind
    return kind


def kind_of(obj: Any) -> str:
    """The registered kind of an in-memory network (``ValueError`` if none matches)."""
    for kind in KINDS.values():
        if kind.matches(obj):
            return kind.name
    raise ValueError(
        f"network must be one of the registered kinds ({', '.join(KINDS)}), "
        f"got {type(obj).__name__}"
    )


# ------------------------------------------------------------------ loaded networks


@dataclass(frozen=True, eq=False)
class LoadedNetwork:
    """A network read back from disk: plain arrays and the sidecar's ground truth.

    Attributes
    ----------
    kind : str
    tensors : dict of str to numpy.ndarray
        Every tensor of the weights file, read-only.
    meta : dict
        The sidecar (JSON).
    """

    kind: str
    tensors: dict[str, np.ndarray] = field(repr=False)
    meta: dict[str, Any] = field(repr=False)

    @property
    def sizes(self) -> dict[str, int]:
        return dict(self.meta["sizes"])

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The network's output on a 0/1 batch ``x`` ``(K, n_inputs)`` (see the kind's rule)."""
        return KINDS[self.kind].forward(self, x)

    # ---- U-AND kinds
    def hidden(self, x: np.ndarray) -> np.ndarray:
        r""":math:`a = \mathrm{ReLU}(x W^\top + b)`, ``(K, width)`` (U-AND kinds)."""
        self._need("uand", "trained_uand")
        x = _check_bits(x, self.sizes["n_features"])
        return _uand_hidden(self.tensors, x)

    def readout_rows(self, tuples: np.ndarray) -> np.ndarray:
        r"""Rows :math:`R_T` of the readout for output tuples ``(t, arity)`` → ``(t, width)``.

        From the readout tensor, or computed by the sidecar's rule (``mean_over_gamma`` or
        ``sign``) from the first-layer weights.
        """
        self._need("uand", "trained_uand")
        from .uand import tuple_rank

        m, n = self.sizes["n_features"], self.sizes["arity"]
        t = _check_tuples(tuples, m, n)
        rule = self.meta["readout"]
        if "tensor" in rule:
            return self.tensors[rule["tensor"]][tuple_rank(t, m)]
        W = self.tensors["layer.weight"]
        if rule["rule"] == "mean_over_gamma":
            both = np.ones((t.shape[0], W.shape[0]), dtype=bool)
            for j in range(n):
                both &= W[:, t[:, j]].T != 0
            size = both.sum(axis=1, keepdims=True)
            return np.divide(both, size, out=np.zeros(both.shape), where=size > 0)
        if rule["rule"] == "sign":
            sg = np.sign(W)
            return float(rule["scale"]) * (sg[:, t[:, 0]] * sg[:, t[:, 1]]).T
        raise ValueError(f"unknown readout rule {rule['rule']!r} in the sidecar")

    def outputs(self, x: np.ndarray, tuples: np.ndarray | None = None) -> np.ndarray:
        r""":math:`\hat y_T = R_T \cdot a` for the given output tuples (default: all, in rank order)."""
        a = self.hidden(x)
        if tuples is None:
            rule = self.meta["readout"]
            if "tensor" in rule:
                return a @ self.tensors[rule["tensor"]].T
            from .uand import tuple_unrank

            m, n = self.sizes["n_features"], self.sizes["arity"]
            tuples = tuple_unrank(np.arange(comb(m, n)), m, n)
        return a @ self.readout_rows(tuples).T

    # ---- circuit kinds
    def residuals(self, x: np.ndarray) -> Iterator[np.ndarray]:
        r"""Yield :math:`a^{(0)} = \Phi_0 x, a^{(1)}, \dots, a^{(L)}` (circuit kinds)."""
        self._need("circuit")
        x = _check_bits(x, self.sizes["n_inputs"])
        a = _encode(self.tensors["embedding.0"], x)
        yield a
        for ell in range(self.sizes["depth"]):
            a = _residual_layer(self.tensors, ell, a)
            yield a

    def decode(self, a: np.ndarray, layer: int) -> np.ndarray:
        r""":math:`\hat x^{(\ell)} = \Phi_\ell^\top a`: the readout of every named value of layer :math:`\ell`."""
        self._need("circuit")
        ell = check_int("layer", layer, low=0, high=self.sizes["depth"])
        return np.asarray(a) @ self.tensors[f"embedding.{ell}"]

    def ground_truth(self, x: np.ndarray) -> list[np.ndarray]:
        r"""The exact circuit values :math:`x^{(0)}, \dots, x^{(L)}` from the stored wiring and truth tables."""
        self._need("circuit")
        vals = [_check_bits(x, self.sizes["n_inputs"]).astype(np.int8)]
        for ell in range(self.sizes["depth"]):
            u = self.tensors[f"circuit.{ell}.left"]
            v = self.tensors[f"circuit.{ell}.right"]
            code = self.tensors[f"circuit.{ell}.code"].astype(np.int64)
            prev = vals[-1].astype(np.int64)
            bit = 2 * prev[:, u] + prev[:, v]
            vals.append(((code[None, :] >> bit) & 1).astype(np.int8))
        return vals

    def _need(self, *kinds: str) -> None:
        if self.kind not in kinds:
            raise ValueError(f"this method applies to kinds {kinds}, not {self.kind!r}")


# ------------------------------------------------------------------ export / load


def network_arrays(
    network: Any, *, readout: str = "auto"
) -> tuple[str, dict[str, np.ndarray], dict[str, Any]]:
    """The kind, named tensors and metadata of an in-memory network (nothing written).

    Parameters
    ----------
    network : a registered kind (see :data:`KINDS`)
    readout : {"auto", "explicit", "rule"}
        U-AND kinds: store the readout as a tensor (``"explicit"``), as its rule (``"rule"``,
        constructions only), or a tensor up to :data:`EXPLICIT_READOUT_ENTRIES` entries
        (``"auto"``).
    """
    mode = check_choice("readout", readout, _READOUT_MODES)
    kind = kind_of(network)
    tensors, meta = KINDS[kind].to_arrays(network, mode)
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
) -> tuple[Path, Path]:
    """Write ``network`` as ``path`` (safetensors) and its JSON sidecar next to it.

    Parameters
    ----------
    network : a registered kind
    path : str or PathLike
        Must end in ``.safetensors``; the sidecar is the same name with ``.json``.
    readout : {"auto", "explicit", "rule"}
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
    kind, tensors, meta = network_arrays(network, readout=readout)
    if seed is not None:
        meta["seed"] = check_int("seed", seed, low=0)
    if extra is not None:
        meta["extra"] = json.loads(json.dumps(extra))
    wpath.parent.mkdir(parents=True, exist_ok=True)
    tmp = wpath.with_name(wpath.name + ".tmp")
    # one metadata key: safetensors writes its metadata map in hash order, and the bytes of a
    # file must not depend on it (same network, same bytes)
    tag = json.dumps(
        {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind}, sort_keys=True
    )
    save_file(tensors, str(tmp), metadata={"superposition": tag})
    digest = _sha256(tmp)
    side = _sidecar(kind, tensors, meta, sha256=digest, tensors_file=wpath.name)
    spath = sidecar_path(wpath)
    stmp = spath.with_name(spath.name + ".tmp")
    stmp.write_text(json.dumps(side, indent=1, sort_keys=True) + "\n")
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
    kind = meta.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{spath}: unknown kind {kind!r}; known: {', '.join(KINDS)}")
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

    Needs PyTorch (imported here only). Tensors keep their dtype. U-AND kinds need an explicit
    readout tensor (export with ``readout="explicit"``).
    """
    try:
        import torch
    except ModuleNotFoundError:
        raise ValueError("to_torch needs PyTorch, which is not installed") from None
    net = network if isinstance(network, LoadedNetwork) else as_loaded(network)
    build = KINDS[net.kind].torch_module
    if build is None:
        raise ValueError(f"no torch builder for kind {net.kind!r}")
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
    from . import __version__

    out = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
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


def _check_bits(x: np.ndarray, m: int) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != m:
        raise ValueError(f"x must have shape (n_inputs, {m}), got {x.shape}")
    if x.size and not np.isin(x, (0, 1)).all():
        raise ValueError("x must hold only 0 and 1")
    return x


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


def _uand_to_arrays(net: Any, mode: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    import scipy.sparse as sps

    from .uand import MeanReadout, tuple_unrank

    m, d, n = net.n_features, net.width, net.arity
    W = net.W.toarray() if sps.issparse(net.W) else np.asarray(net.W)
    tensors = {"layer.weight": W, "layer.bias": np.full(d, net.bias, dtype=W.dtype)}
    store = _uand_readout_mode(mode, net.n_outputs, d)
    if store == "explicit":
        if net.n_outputs * d > 4 * EXPLICIT_READOUT_ENTRIES:
            raise ValueError(
                f"readout='explicit' would store {net.n_outputs} x {d} entries; use 'rule' or 'auto'"
            )
        tup = tuple_unrank(np.arange(net.n_outputs), m, n)
        eye = np.eye(d)
        tensors["readout.weight"] = net.readout.outputs(net.readout.prepare(eye), tup).T.copy()
        readout = {"tensor": "readout.weight", "shape": "(n_outputs, width)"}
    elif isinstance(net.readout, MeanReadout):
        readout = {
            "rule": "mean_over_gamma",
            "formula": "R[T, i] = [W[i, k] = 1 for all k in T] / |Gamma(T)|, "
            "Gamma(T) = {i : W[i, k] = 1 for all k in T}; the row is 0 when Gamma(T) is empty",
        }
    else:
        readout = {
            "rule": "sign",
            "scale": float(net.readout.scale),
            "formula": "R[(k, l), i] = scale * sign(W[i, k]) * sign(W[i, l]), scale = 1/(d c_D(s))",
        }
    meta = {
        "sizes": {
            "n_features": m,
            "width": d,
            "sparsity": net.sparsity,
            "arity": n,
            "n_outputs": net.n_outputs,
        },
        "construction": {"weights": net.weights, "p": float(net.p), "bias": float(net.bias)},
        "embedding": {"kind": "identity", "note": "basis-aligned: the layer reads x itself"},
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


register_kind(Kind("uand", _uand_matches, _uand_to_arrays, _uand_forward, _uand_torch))


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
            "width": net.width,
            "sparsity": net.sparsity,
            "arity": net.arity,
            "n_outputs": net.n_outputs,
        },
        "construction": {"weights": "trained", "training": dict(net.config)},
        "seed": net.config.get("seed"),
        "embedding": {"kind": "identity", "note": "basis-aligned: the layer reads x itself"},
        "forward": "a = relu(x @ layer.weight.T + layer.bias); y = a @ readout.weight.T",
        "outputs": _output_meta(net.n_features, net.arity),
        "readout": {"tensor": "readout.weight", "shape": "(n_outputs, width)"},
    }
    return tensors, meta


register_kind(
    Kind("trained_uand", _trained_matches, _trained_to_arrays, _uand_forward, _uand_torch)
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
            "n_inputs": circuit.n_inputs,
            "depth": circuit.depth,
            "widths": list(circuit.widths),
            "width": net.width,
            "neurons": net.neurons,
        },
        "embedding": {
            "kind": "tensor",
            "tensors": [f"embedding.{ell}" for ell in range(circuit.depth + 1)],
            "note": "a^(0) = embedding.0 @ x; embedding.l is Phi_l, shape (width, m_l)",
        },
        "forward": "a^(l+1) = a^(l) @ W_skip.T + relu(a^(l) @ W_in.T + b) @ W_out.T "
        "(tensors layer.l.*); forward(x) returns a^(L)",
        "outputs": {
            "count": int(sum(circuit.widths)),
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
            "n_inputs": circuit.n_inputs,
            "depth": circuit.depth,
            "layers": [layer.describe() for layer in circuit.layers]
            if sum(circuit.widths[1:]) <= NAMED_OUTPUTS
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


register_kind(
    Kind("circuit", _circuit_matches, _circuit_to_arrays, _circuit_forward, _circuit_torch)
)
