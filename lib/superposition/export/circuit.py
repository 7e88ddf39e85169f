r"""Network kind ``"circuit"``: a sparse boolean circuit compiled to MLP layers on a residual stream.

Exports a :class:`~superposition.CompiledCircuit`: every layer's ``W_in, b, W_out, W_skip``,
every embedding :math:`\Phi_\ell`, and the circuit's wiring and gate truth tables (the ground
truth). Loaded, it is a :class:`LoadedCircuit`, whose layers are the library's own step
(:func:`superposition.circuits.residual_step`) and whose input is written and read like the
library's (:func:`superposition.circuits.encode_values`,
:func:`superposition.circuits.decode_values`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .._validate import check_int
from ..backend import to_numpy
from ..circuits import (
    Circuit,
    CircuitLayer,
    CompiledCircuit,
    decode_values,
    encode_values,
    residual_step,
)
from .core import NAMED_OUTPUTS, LoadedNetwork, NetworkKind, register_network_kind

LAYER_TENSORS = ("W_in", "b", "W_out", "W_skip")
"""The tensors ``layer.l.NAME`` of a compiled layer."""


class LoadedCircuit(LoadedNetwork):
    r"""A loaded compiled circuit (kind ``"circuit"``): residual stream :math:`a^{(0)} = \Phi_0 x, \dots, a^{(L)}`."""

    def residuals(self, x: np.ndarray) -> Iterator[np.ndarray]:
        r"""Yield :math:`a^{(0)} = \Phi_0 x, a^{(1)}, \dots, a^{(L)}` on a 0/1 batch ``x``."""
        a = to_numpy(encode_values(x, self.tensors["embedding.0"]))
        yield a
        for ell in range(self.sizes["depth"]):
            a = residual_step(a, *(self.tensors[f"layer.{ell}.{k}"] for k in LAYER_TENSORS))
            yield a

    def forward(self, x: np.ndarray) -> np.ndarray:
        r""":math:`a^{(L)}`, the last residual (read it with :meth:`decode`)."""
        a = None
        for a in self.residuals(x):  # noqa: B007 - keep the last
            pass
        return a

    def decode(self, a: np.ndarray, layer: int) -> np.ndarray:
        r""":math:`\hat x^{(\ell)} = \Phi_\ell^\top a`: the readout of every named value of layer :math:`\ell`."""
        ell = check_int("layer", layer, low=0, high=self.sizes["depth"])
        return to_numpy(decode_values(np.asarray(a), self.tensors[f"embedding.{ell}"]))

    def ground_truth(self, x: np.ndarray) -> list[np.ndarray]:
        r"""The exact circuit values :math:`x^{(0)}, \dots, x^{(L)}` (bool) of the stored circuit."""
        return stored_circuit(self.tensors, self.sizes["n_features"], self.sizes["depth"]).evaluate(
            x
        )

    def torch_module(self, torch: Any) -> Any:
        """The residual stream as ``torch.nn`` modules (buffers in the stored dtype)."""
        net = self

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
                    _Residual({k: net.tensors[f"layer.{ell}.{k}"] for k in LAYER_TENSORS})
                    for ell in range(net.sizes["depth"])
                )

            def forward(self, x: Any) -> Any:
                a = x.to(self.embedding.dtype) @ self.embedding.T
                for layer in self.layers:
                    a = layer(a)
                return a

        return _Circuit()


# ------------------------------------------------------------------ the circuit itself


def circuit_tensors(circuit: Circuit) -> dict[str, np.ndarray]:
    """The circuit's wiring and truth tables: ``circuit.l.left``, ``.right``, ``.code`` (int64)."""
    tensors = {}
    for ell, layer in enumerate(circuit.layers):
        tensors[f"circuit.{ell}.left"] = np.asarray(layer.left, dtype=np.int64)
        tensors[f"circuit.{ell}.right"] = np.asarray(layer.right, dtype=np.int64)
        tensors[f"circuit.{ell}.code"] = np.asarray(layer.code, dtype=np.int64)
    return tensors


def stored_circuit(tensors: dict[str, np.ndarray], n_features: int, depth: int) -> Circuit:
    """The :class:`~superposition.Circuit` of the tensors :func:`circuit_tensors` wrote."""
    layers, m = [], n_features
    for ell in range(depth):
        left = tensors[f"circuit.{ell}.left"]
        layers.append(
            CircuitLayer(m, left, tensors[f"circuit.{ell}.right"], tensors[f"circuit.{ell}.code"])
        )
        m = left.size
    return Circuit(n_features, tuple(layers))


def circuit_meta(circuit: Circuit) -> dict[str, Any]:
    """The sidecar's ``circuit``: sizes, and every gate in words when there are few."""
    return {
        "n_features": circuit.n_features,
        "depth": circuit.depth,
        "layers": [layer.describe() for layer in circuit.layers]
        if sum(circuit.n_features_per_layer[1:]) <= NAMED_OUTPUTS
        else "see tensors circuit.l.left/right/code",
    }


# ------------------------------------------------------------------ writing


def _circuit_to_arrays(
    net: CompiledCircuit, mode: str, progress: bool | None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays = net.arrays()
    circuit = net.circuit
    tensors: dict[str, np.ndarray] = {}
    for ell, phi in enumerate(arrays["embeddings"]):
        tensors[f"embedding.{ell}"] = phi
    for ell, layer in enumerate(arrays["layers"]):
        for k, v in layer.items():
            tensors[f"layer.{ell}.{k}"] = np.asarray(v)
    tensors.update(circuit_tensors(circuit))
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
        "circuit": circuit_meta(circuit),
    }
    return tensors, meta


register_network_kind(
    NetworkKind(
        "circuit",
        lambda obj: isinstance(obj, CompiledCircuit),
        _circuit_to_arrays,
        LoadedCircuit,
    )
)
