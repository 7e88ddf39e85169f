"""The file format of exported networks: safetensors weights, a JSON sidecar, the kind registry.

Everything here is common to every network kind: writing and checking the two files
(:func:`export_network`, :func:`load_network`), the registry of kinds (:data:`NETWORK_KINDS`,
:func:`register_network_kind`) and the base of every loaded network (:class:`LoadedNetwork`).
What a kind stores and how its loaded network computes lives in the kind's adapter module.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import check_choice, check_int

FORMAT = "superposition-network"
FORMAT_VERSION = 2
"""2: the vocabulary of superposition 0.2 (``network_kind``, ``neurons``, ``embed_dim``, …)."""
NAMED_OUTPUTS = 4096
"""Up to this many outputs, the sidecar lists every output's name."""
READOUT_MODES = ("auto", "explicit", "rule")
"""How a U-AND readout is stored: a tensor, its rule, or a tensor when it is small."""
TORCH_INSTALL = "pip install torch"
"""The line that installs PyTorch, which :func:`to_torch` needs (the library does not)."""


# ------------------------------------------------------------------ loaded networks


@dataclass(frozen=True, eq=False)
class LoadedNetwork:
    """A network read back from disk: plain arrays and the sidecar's ground truth.

    The base of every kind's loaded network; :func:`load_network` returns the class the kind
    registered (:class:`~superposition.export.LoadedUAnd`, …), which adds the kind's own
    methods.

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
        """The sidecar's ``sizes`` (``n_features``, ``neurons``, ``embed_dim``, ``depth``, …)."""
        return dict(self.meta["sizes"])

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The network's output on a 0/1 batch ``x`` ``(K, n_features)`` (see the kind's class)."""
        raise NotImplementedError(f"network kind {self.network_kind!r} has no forward pass")

    def torch_module(self, torch: Any) -> Any:
        """A ``torch.nn.Module`` computing :meth:`forward` (``torch`` is the imported module)."""
        raise ValueError(f"no torch builder for network kind {self.network_kind!r}")


# ------------------------------------------------------------------ registry


@dataclass(frozen=True)
class NetworkKind:
    """How one kind of network is exported and loaded.

    Attributes
    ----------
    name : str
    matches : callable ``(obj) -> bool``
        Whether an in-memory object is of this kind.
    to_arrays : callable ``(obj, readout, progress) -> (tensors, meta)``
        Named tensors (plain NumPy arrays) and JSON-able metadata; ``readout`` is one of
        :data:`READOUT_MODES`, ``progress`` as in :func:`network_arrays`.
    loaded : callable ``(network_kind, tensors, meta) -> LoadedNetwork``
        The loaded network: a subclass of :class:`LoadedNetwork` with the kind's forward pass.
    """

    name: str
    matches: Callable[[Any], bool]
    to_arrays: Callable[[Any, str, bool | None], tuple[dict[str, np.ndarray], dict[str, Any]]]
    loaded: Callable[[str, dict[str, np.ndarray], dict[str, Any]], LoadedNetwork]


NETWORK_KINDS: dict[str, NetworkKind] = {}
"""Registered kinds, by name."""


def register_network_kind(network_kind: NetworkKind) -> NetworkKind:
    """Add (or replace) a network kind in :data:`NETWORK_KINDS`; returns it."""
    if not isinstance(network_kind, NetworkKind):
        raise ValueError(f"network_kind must be a NetworkKind, got {type(network_kind).__name__}")
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
        constructions only), or a tensor up to
        :data:`~superposition.export.uand.EXPLICIT_READOUT_ENTRIES` entries (``"auto"``).
    progress : bool or None
        A ``tqdm`` bar on stderr over the layers of a deep network (``None``: only on a
        terminal).
    """
    mode = check_choice("readout", readout, READOUT_MODES)
    kind = network_kind_of(network)
    tensors, meta = NETWORK_KINDS[kind].to_arrays(network, mode, progress)
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    return kind, tensors, meta


def as_loaded(network: Any, *, readout: str = "auto") -> LoadedNetwork:
    """The loaded network an export of ``network`` would load as, without writing it."""
    kind, tensors, meta = network_arrays(network, readout=readout)
    meta = _sidecar(kind, tensors, meta, sha256="", tensors_file="")
    for v in tensors.values():
        v.setflags(write=False)
    return NETWORK_KINDS[kind].loaded(kind, tensors, meta)


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

    Returns
    -------
    LoadedNetwork
        Of the class its kind registered (:data:`NETWORK_KINDS`).

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
    return NETWORK_KINDS[kind].loaded(kind, tensors, meta)


def to_torch(network: LoadedNetwork | Any) -> Any:
    """A ``torch.nn.Module`` with the same forward pass as the loaded network's ``forward``.

    Needs PyTorch (imported here only; :data:`TORCH_INSTALL`). Tensors keep their dtype (the
    superposed kind runs in float64). U-AND kinds need an explicit readout tensor (export with
    ``readout="explicit"``).

    Raises
    ------
    ImportError
        PyTorch is not installed (the message gives the line that installs it).
    ValueError
        A kind without a torch builder, or a U-AND readout stored as a rule.
    """
    try:
        import torch
    except ModuleNotFoundError as exc:
        raise ImportError(
            f"to_torch needs PyTorch, which is not installed: {TORCH_INSTALL}", name="torch"
        ) from exc
    net = network if isinstance(network, LoadedNetwork) else as_loaded(network)
    return net.torch_module(torch)


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
    from .._version import __version__

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
