r"""Network kind ``"deep"``: a deep corrected circuit, gate layers alternating with correction layers.

Exports a :class:`~superposition.deep.DeepNetwork`: every gate layer's sparse factors (wiring,
product readout, linear terms) as the network applies them, the embeddings :math:`\Phi_\ell`
(tensors, or their rule when large; ``superposition.export.embeddings``) or the code's units
and codes, the circuit, and, up to :data:`PLAIN_LAYER_ENTRIES` entries, every layer as plain
``W_in, b, W_out (, W_skip)`` (:meth:`LoadedDeep.layer_arrays` computes them otherwise).

Loaded, it is a :class:`LoadedDeep`, whose forward pass is
:func:`superposition.deep.deep_step` on the stored arrays: the step
:func:`superposition.deep.run_deep` takes, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .._validate import check_bits, check_int
from ..correction import clipped_unit_weights, code_embedding
from ..deep import CorrectionArrays, DeepNetwork, GateFactors, deep_step
from ..kernels import CSR
from .circuit import circuit_meta, circuit_tensors, stored_circuit
from .core import LoadedNetwork, NetworkKind, register_network_kind
from .embeddings import embedding_arrays, embedding_from_meta, stores_tensor

PLAIN_LAYER_ENTRIES = 2**22
"""Deep networks whose plain MLP arrays (every layer materialised) have at most this many
entries in all also store them; larger ones store only the factors they are computed from."""
GATE_FACTORS = ("wiring_t", "product_t", "linear_t")
"""The sparse factors ``gate.l.NAME`` of a gate layer (CSR: ``.indptr``, ``.indices``, ``.data``)."""


class LoadedDeep(LoadedNetwork):
    r"""A loaded deep corrected circuit (kind ``"deep"``): :math:`a = \Phi_0 x`, then gate layer 1,
    correction layer 1, gate layer 2, … (:math:`2L` layers)."""

    def residuals(self, x: np.ndarray, *, corrected: bool = True) -> Iterator[np.ndarray]:
        r"""Yield the residual stream on a 0/1 batch ``x``: the states of :func:`~superposition.run_deep`.

        :math:`a^{(0)} = \Phi_0 x`, then the state after gate layer 1, correction layer 1, gate
        layer 2, … (:math:`2L + 1` states); ``corrected=False`` skips the correction layers
        (:math:`L + 1`). Each layer is :func:`~superposition.deep.deep_step` on the stored arrays.
        """
        x = check_bits(x, self.sizes["n_features"])
        dtype = np.dtype(self.meta["construction"]["dtype"])
        correction = self.correction_arrays() if corrected else None
        rows = self._rows(0)
        a = x.astype(dtype) @ rows
        r = a @ rows.T
        yield a
        for ell in range(1, self.sizes["depth"] + 1):
            step = deep_step(
                r,
                self.gate_factors(ell),
                self._rows(ell),
                and_bias=float(self.meta["construction"]["and_bias"]),
                correction=correction,
            )
            yield step.gate
            if corrected:
                yield step.state
            r = step.readout

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The state after correction layer :math:`L` (:meth:`residuals`)."""
        a = None
        for a in self.residuals(x):  # noqa: B007 - keep the last
            pass
        return a

    def decode(self, a: np.ndarray, layer: int) -> np.ndarray:
        r""":math:`\hat x^{(\ell)} = \Phi_\ell^\top a`: the readout of every value of circuit layer :math:`\ell`."""
        ell = check_int("layer", layer, low=0, high=self.sizes["depth"])
        return np.asarray(a) @ self._rows(ell).T

    def ground_truth(self, x: np.ndarray) -> list[np.ndarray]:
        r"""The exact circuit values :math:`x^{(0)}, \dots, x^{(L)}` (bool) of the stored circuit."""
        return stored_circuit(self.tensors, self.sizes["n_features"], self.sizes["depth"]).evaluate(
            x
        )

    def gate_factors(self, ell: int) -> GateFactors:
        """The stored factors of gate layer ``ell`` :math:`\\ge 1` (as :meth:`DeepNetwork.gate_factors
        <superposition.DeepNetwork.gate_factors>` gives them)."""
        ell = check_int("ell", ell, low=1, high=self.sizes["depth"])
        m, n = self.sizes["n_features"], self.sizes["gate_neurons"]
        shapes = {"wiring_t": (m, n), "product_t": (n, m), "linear_t": (m, m)}
        t = self.tensors
        return GateFactors(
            **{
                f: CSR(
                    t[f"gate.{ell}.{f}.indptr"],
                    t[f"gate.{ell}.{f}.indices"],
                    t[f"gate.{ell}.{f}.data"],
                    shapes[f],
                )
                for f in GATE_FACTORS
            }
        )

    def correction_arrays(self) -> CorrectionArrays:
        """Every correction layer as the arrays :func:`~superposition.deep.deep_step` applies."""
        con = self.meta["construction"]
        lo, hi = float(con["lo"]), float(con["hi"])
        if con["design"] != "code":
            return CorrectionArrays(lo, hi)
        units = self.tensors["correction.units"]
        blocks = int(self.tensors["correction.codes"].shape[1])
        return CorrectionArrays(lo, hi, units=units, blocks=blocks)

    def embedding_matrix(self, ell: int) -> np.ndarray:
        r""":math:`\Phi_\ell` ``(embed_dim, n_features)`` of value layer ``ell`` (0 = circuit input).

        The stored tensor, the code's :math:`\Psi` (:func:`~superposition.correction.code_embedding`
        of the stored units and codes), or regenerated by the sidecar's rule and checked.
        """
        ell = check_int("ell", ell, low=0, high=self.sizes["depth"])
        emb = self.meta["embedding"]
        i = ell if emb["scheme"] == "fresh" else 0
        pm = emb["phi"][i]
        if "tensor" in pm:
            return self.tensors[pm["tensor"]]
        if pm["storage"] == "code":
            psi = code_embedding(self.tensors["correction.units"], self.tensors["correction.codes"])
            return psi.astype(np.dtype(pm["dtype"]))
        return embedding_from_meta(pm, self.tensors, f"embedding.phi[{i}]").matrix()

    def _rows(self, ell: int) -> np.ndarray:
        r""":math:`\Phi_\ell^\top` as C-contiguous rows ``(n_features, embed_dim)`` (a few cached)."""
        emb = self.meta["embedding"]
        i = ell if emb["scheme"] == "fresh" else 0
        cache = self.__dict__.setdefault("_rows_cache", {})
        if i not in cache:
            for old in sorted(cache)[:-2]:
                del cache[old]
            cache[i] = np.ascontiguousarray(self.embedding_matrix(ell).T)
        return cache[i]

    def layer_arrays(self, layer: int) -> dict[str, np.ndarray]:
        r"""Plain MLP arrays of network layer ``layer`` :math:`= k \in [0, 2L)`.

        :math:`a' = W_{\mathrm{skip}} a + W_{\mathrm{out}}\mathrm{ReLU}(W_{\mathrm{in}} a + b)`:
        even :math:`k` is gate layer :math:`k/2 + 1` (``W_in, b, W_out, W_skip``), odd
        :math:`k` its correction layer (``W_in, b, W_out``; no skip). Stored tensors when the
        file has them, else materialised from the stored factors (in the network's dtype).
        """
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
        out_phi = self.embedding_matrix(ell).astype(np.float64)
        if k % 2 == 0:
            theta = float(con["and_bias"])
            f = self.gate_factors(ell)
            wt, pt, lt = f.wiring_t.to_scipy(), f.product_t.to_scipy(), f.linear_t.to_scipy()
            in_phi = self.embedding_matrix(ell - 1).astype(np.float64)
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

    def torch_module(self, torch: Any) -> Any:
        """The :math:`2L` plain layers (:meth:`layer_arrays`) as ``torch.nn`` modules."""
        net = self
        dtype = torch.float64 if self.meta["construction"]["dtype"] == "float64" else torch.float32

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
                self.register_buffer("embedding", torch.from_numpy(np.array(net._rows(0))))
                self.layers = torch.nn.ModuleList(
                    _Layer(net.layer_arrays(k)) for k in range(net.sizes["network_layers"])
                )

            def forward(self, x: Any) -> Any:
                a = x.to(dtype) @ self.embedding
                for layer in self.layers:
                    a = layer(a)
                return a

        return _Deep()


# ------------------------------------------------------------------ writing


def _csr_tensors(name: str, M: CSR) -> dict[str, np.ndarray]:
    return {f"{name}.indptr": M.indptr, f"{name}.indices": M.indices, f"{name}.data": M.data}


def _plain_entries(L: int, d: int, n: int, c: int) -> int:
    """Entries of the materialised MLP arrays of every layer (gate and correction)."""
    return L * (2 * n * d + n + d * d + 2 * c * d + c)


def _deep_to_arrays(
    net: DeepNetwork, mode: str, progress: bool | None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if net.design == "grouped":
        raise ValueError("export supports the denoiser and code designs, not 'grouped' (yet)")
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
        if stores_tensor(d * m):
            tensors["embedding.0"] = np.asarray(code.embedding_matrix(), dtype=dtype)
            psi["tensor"] = "embedding.0"
        phis = [psi]
        scheme = "code"
        which = "every value layer is read and written through phi[0], the code's Psi"
    else:
        idx = list(range(L + 1)) if net.embedding_scheme == "fresh" else [0]
        store = stores_tensor(len(idx) * d * m)
        phis = []
        for i in idx:
            t, meta_i = embedding_arrays(
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

    layers = tqdm(
        range(1, L + 1),
        desc="export deep",
        unit="layer",
        disable=None if progress is None else not progress,
        leave=False,
    )
    for ell in layers:
        f = net.gate_factors(ell)
        for name in GATE_FACTORS:
            tensors.update(_csr_tensors(f"gate.{ell}.{name}", getattr(f, name)))
    tensors.update(circuit_tensors(circuit))
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
        "circuit": circuit_meta(circuit),
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
    if _plain_entries(L, d, n, net.correction_neurons) <= PLAIN_LAYER_ENTRIES:
        probe = LoadedDeep("deep", tensors, meta)
        for k in range(2 * L):
            for name, arr in probe.layer_arrays(k).items():
                tensors[f"layer.{k}.{name}"] = arr
        meta["plain"]["stored"] = True
    return tensors, meta


register_network_kind(
    NetworkKind("deep", lambda obj: isinstance(obj, DeepNetwork), _deep_to_arrays, LoadedDeep)
)
