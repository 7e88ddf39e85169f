r"""A ground-truth benchmark for dictionary learning: does a dictionary find the features a network computes?

An exported network (:func:`superposition.export.load_network`) says exactly which features each
of its layers holds. This module turns that into a score for any *dictionary*, a set of learned
directions ``(n_atoms, dim)`` for one layer, whatever tool produced it (a sparse autoencoder,
scikit-learn's dictionary learning, or a user's own method saved as ``.npy`` or safetensors).

Layers and their features
-------------------------
:func:`ground_truth_layers` lists the layers of a network; :func:`ground_truth` gives the true features of one:

U-AND kinds (``"uand"``, ``"trained_uand"``, ``"superposed"``)
    ``"input"``: the layer's input :math:`a_0 = \Phi x` (:math:`\Phi = I` for basis-aligned
    inputs). Its features are the **stored** inputs :math:`x_k`, direction :math:`\varphi_k`.
    ``"hidden"``: the activations :math:`a = \mathrm{ReLU}(W\Phi^\top a_0 + b)`. Its features are
    the **computed** ANDs :math:`y_T = \prod_{k\in T}x_k`, direction the readout row :math:`R_T`.
Compiled circuits (``"circuit"``)
    ``"residual.l"`` (:math:`\ell = 0 \dots L`): the residual stream :math:`a^{(\ell)}`, whose
    features are the circuit values :math:`x^{(\ell)}_g`, direction column :math:`g` of
    :math:`\Phi_\ell`. (The compiled layers fold their product readout into ``W_out``, so their
    hidden layers carry no stored AND readout and are not offered.)
Deep corrected circuits (``"deep"``)
    ``"residual.l"``: the residual stream after correction layer :math:`\ell` (:math:`\ell = 0`:
    :math:`\Phi_0 x`), features the circuit values of layer :math:`\ell` as above.
    ``"gate.l"`` (:math:`\ell = 1 \dots L`): the hidden neurons of gate layer :math:`\ell`, whose
    features are the products :math:`x^{(\ell-1)}_u x^{(\ell-1)}_v` the layer computes, one per
    distinct wired pair :math:`(u, v)` with a product term, direction the pair's row of the
    product readout :math:`M` (the sidecar's ``gate.l.product_t``).

Which direction is a feature's
------------------------------
Every true direction here is **the row of the linear map with which the network itself reads
the feature from that layer**: :math:`\Phi^\top` for stored inputs and circuit values, the
readout :math:`R` for ANDs, the product readout :math:`M` for gate products. One rule for
every layer and every kind, taken from the sidecar, exact (nothing estimated), and independent
of any input distribution. It is the direction an interpretability claim needs: an atom along
:math:`R_T` reads off the output the network computes.

A dictionary's atoms are *write* directions (:math:`a \approx \sum_j c_j D_j`), and the two
notions agree where the construction has write directions: :math:`\varphi_k` both writes and
reads :math:`x_k`, and in a Bernoulli U-AND layer a single active pair :math:`T` writes exactly
:math:`\mathbf 1_{\Gamma(T)}`, which is :math:`R_T` up to its scale :math:`1/|\Gamma(T)|`. For the
sign readout of Rademacher and Gaussian layers, and for trained readouts, the layer does not
write an AND along one direction; :func:`contrast_directions` estimates the part of the
activation that appears only when every input of :math:`T` is on (the inclusion–exclusion, or
Möbius, contrast :math:`\Delta_T`, a mean activation difference), so that the agreement of the
two notions can be measured and a dictionary scored against both.

Scores
------
:func:`score_dictionary` reports, for every true feature, the best absolute cosine with a live
atom, the fraction recovered at a threshold (0.9 by default) and over a grid of thresholds,
and, for the dictionary, its dead atoms (zero, or never used when a usage is given) and its
duplicates (an atom within the duplicate threshold of an earlier live one).
:func:`sample_layer` draws activations of a layer on the network's own input distribution
(exactly :math:`s` active inputs, chosen uniformly), to train a dictionary on, or to hand to an
outside tool (``superposition benchmark activations``).
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field
from itertools import combinations
from math import comb
from pathlib import Path
from typing import Any

import numpy as np

from .export import LoadedNetwork

THRESHOLD = 0.9
"""Default cosine above which a true feature counts as recovered."""
THRESHOLDS = np.linspace(0.0, 1.0, 101)
"""Default grid of thresholds for the recovery curve."""
MAX_FEATURES = 1 << 20
"""Most true features one :func:`ground_truth` call will hold."""
MAX_TRUTH_ENTRIES = 1 << 26
"""Most entries (features × dim) of one ground truth (512 MiB of float64)."""

_UAND = ("uand", "trained_uand", "superposed")
_CIRCUITS = ("circuit", "deep")
_BLOCK = 1024


# ------------------------------------------------------------------ ground truth


@dataclass(frozen=True, eq=False)
class GroundTruth:
    r"""The true features of one layer of a network and their unit directions.

    Attributes
    ----------
    layer : str
        The layer's name (see :func:`ground_truth_layers`).
    feature_kind : {"input", "and", "value", "product"}
        Stored inputs, computed ANDs, circuit values, or gate products.
    directions : float64 array, shape ``(n_features, dim)``
        Unit rows: the direction of each feature in the layer's activation space.
    names : tuple of str
        One name per row, e.g. ``"x[3]"``, ``"and(3,7)"``, ``"x2[5]"``.
    members : int64 array, shape ``(n_features, arity)``
        The inputs a feature is a function of: ``(k,)`` for input ``k``, the sorted tuple
        :math:`T` for an AND, ``(g,)`` for value ``g`` of the layer, ``(u, v)`` for a gate
        product (indices into the previous circuit layer).
    missing : tuple of str
        Features of the layer that the network does not compute (their readout row is zero, e.g.
        an AND whose :math:`\Gamma(T)` is empty); left out of ``directions``.
    dim : int
        Dimension of the layer's activations.
    """

    layer: str
    feature_kind: str
    directions: np.ndarray = field(repr=False)
    names: tuple[str, ...] = field(repr=False)
    members: np.ndarray = field(repr=False)
    missing: tuple[str, ...] = field(repr=False)
    dim: int

    @property
    def n_features(self) -> int:
        """Number of true features with a direction."""
        return int(self.directions.shape[0])


def ground_truth_layers(net: LoadedNetwork) -> tuple[str, ...]:
    """The names of the layers of ``net`` that carry a ground truth.

    ``("input", "hidden")`` for U-AND kinds; ``"residual.0"`` … ``"residual.L"`` for compiled
    circuits; and also ``"gate.1"`` … ``"gate.L"`` for deep corrected circuits.
    """
    _check_net(net)
    if net.network_kind in _UAND:
        return ("input", "hidden")
    depth = int(net.sizes["depth"])
    names = tuple(f"residual.{ell}" for ell in range(depth + 1))
    if net.network_kind == "deep":
        names += tuple(f"gate.{ell}" for ell in range(1, depth + 1))
    return names


def ground_truth(net: LoadedNetwork, layer: str) -> GroundTruth:
    r"""The true features of ``layer`` and their directions (see the module docstring).

    Parameters
    ----------
    net : LoadedNetwork
    layer : str
        One of :func:`ground_truth_layers` ``(net)``.

    Returns
    -------
    GroundTruth

    Raises
    ------
    ValueError
        ``layer`` is not a layer of ``net`` (the message lists them), or the sidecar lacks the
        ground truth the layer needs (no readout, no embedding, no circuit).
    """
    name, ell = _parse_layer(net, layer)
    if name == "input":
        return _input_truth(net)
    if name == "hidden":
        return _and_truth(net)
    if name == "residual":
        return _value_truth(net, ell)
    return _product_truth(net, ell)


def _input_truth(net: LoadedNetwork) -> GroundTruth:
    m = _n_features(net)
    emb = net.meta.get("embedding")
    if not isinstance(emb, dict) or "storage" not in emb:
        raise ValueError(
            "the network's sidecar has no 'embedding': the input layer has no ground truth"
        )
    if emb["storage"] == "identity":
        phi = np.eye(m)
    else:
        phi = np.asarray(net.embedding_matrix(), dtype=np.float64)  # (d0, m)
    dirs = _unit_rows(phi.T.copy(), "embedding column")
    names = tuple(f"x[{k}]" for k in range(m))
    members = np.arange(m, dtype=np.int64)[:, None]
    return GroundTruth("input", "input", dirs, names, members, (), int(phi.shape[0]))


def _and_truth(net: LoadedNetwork) -> GroundTruth:
    m = _n_features(net)
    n = int(net.sizes.get("arity", 2))
    rule = net.meta.get("readout")
    if not isinstance(rule, dict) or not ("tensor" in rule or "rule" in rule):
        raise ValueError(
            "the network's sidecar has no 'readout' (a tensor or a rule): the ANDs of the hidden "
            "layer have no ground truth"
        )
    n_out = comb(m, n)
    dim = _hidden_dim(net)
    if n_out > MAX_FEATURES or n_out * dim > MAX_TRUTH_ENTRIES:
        raise ValueError(
            f"the hidden layer has C({m},{n}) = {n_out} AND features of dimension {dim}; this "
            f"benchmark holds at most {MAX_FEATURES} features and {MAX_TRUTH_ENTRIES} entries"
        )
    tuples = np.array(list(combinations(range(m), n)), dtype=np.int64).reshape(-1, n)
    rows = np.asarray(net.readout_rows(tuples), dtype=np.float64)
    names = [f"and({','.join(map(str, t))})" for t in tuples]
    return _truth_from_rows("hidden", "and", rows, names, tuples)


def _value_truth(net: LoadedNetwork, ell: int) -> GroundTruth:
    dim = _residual_dim(net)
    phi = np.asarray(net.decode(np.eye(dim), ell), dtype=np.float64)  # (d, m_l)
    m_l = phi.shape[1]
    names = [f"x{ell}[{g}]" for g in range(m_l)]
    members = np.arange(m_l, dtype=np.int64)[:, None]
    return _truth_from_rows(f"residual.{ell}", "value", phi.T.copy(), names, members)


def _product_truth(net: LoadedNetwork, ell: int) -> GroundTruth:
    import scipy.sparse as sps

    prefix = f"gate.{ell}.product_t"
    need = [f"{prefix}.{p}" for p in ("indptr", "indices", "data")]
    need += [f"circuit.{ell - 1}.{p}" for p in ("left", "right")]
    absent = [t for t in need if t not in net.tensors]
    if absent:
        raise ValueError(
            f"the network has no tensors {absent}: gate layer {ell} has no ground truth"
        )
    t = net.tensors
    left = np.asarray(t[f"circuit.{ell - 1}.left"], dtype=np.int64)
    right = np.asarray(t[f"circuit.{ell - 1}.right"], dtype=np.int64)
    m_out = left.size
    indptr = np.asarray(t[f"{prefix}.indptr"])
    neurons = indptr.size - 1
    prod = sps.csr_array(
        (np.asarray(t[f"{prefix}.data"], dtype=np.float64), t[f"{prefix}.indices"], indptr),
        shape=(neurons, m_out),
    )
    cols = np.abs(prod.T.toarray())  # (m_out, neurons): |row g of M|
    has_product = cols.sum(axis=1) > 0
    pairs = np.sort(np.stack([left, right], axis=1), axis=1)
    # one feature per distinct pair with a product term (gates on the same pair share Γ)
    gates = np.flatnonzero(has_product & (pairs[:, 0] != pairs[:, 1]))
    _, first = np.unique(pairs[gates], axis=0, return_index=True)
    gates = gates[np.sort(first)]
    order = np.lexsort((pairs[gates, 1], pairs[gates, 0]))
    gates = gates[order]
    members = pairs[gates]
    prev = ell - 1
    names = [f"and(x{prev}[{u}],x{prev}[{v}])" for u, v in members]
    return _truth_from_rows(f"gate.{ell}", "product", cols[gates], names, members)


def _truth_from_rows(
    layer: str, kind: str, rows: np.ndarray, names: list[str], members: np.ndarray
) -> GroundTruth:
    norms = np.linalg.norm(rows, axis=1)
    live = norms > 0
    missing = tuple(nm for nm, ok in zip(names, live, strict=True) if not ok)
    dirs = rows[live] / norms[live, None]
    kept = tuple(nm for nm, ok in zip(names, live, strict=True) if ok)
    return GroundTruth(layer, kind, dirs, kept, members[live], missing, int(rows.shape[1]))


# ------------------------------------------------------------------ activations


@dataclass(frozen=True, eq=False)
class LayerSample:
    """Activations of one layer on inputs drawn from the network's own input distribution.

    Attributes
    ----------
    layer : str
    activations : float array, shape ``(n_samples, dim)``
    inputs : int8 array, shape ``(n_samples, n_features)``
        The 0/1 inputs (exactly ``sparsity`` ones each).
    sparsity : int
    seed : int
    """

    layer: str
    activations: np.ndarray = field(repr=False)
    inputs: np.ndarray = field(repr=False)
    sparsity: int
    seed: int


def sample_layer(
    net: LoadedNetwork,
    layer: str,
    n_samples: int,
    *,
    sparsity: int | None = None,
    seed: int = 0,
) -> LayerSample:
    r"""Activations of ``layer`` on ``n_samples`` random inputs with exactly ``sparsity`` ones.

    Parameters
    ----------
    net : LoadedNetwork
    layer : str
        One of :func:`ground_truth_layers` ``(net)``.
    n_samples : int
        :math:`K \ge 1`.
    sparsity : int, optional
        :math:`s`; default the sidecar's (``sizes.sparsity``, or ``extra.sparsity`` as written
        by ``superposition export deep``). Compiled circuits record none: pass it.
    seed : int
        The inputs are :func:`superposition.sample_sparse` ``(m, s, K, seed=seed)``.

    Returns
    -------
    LayerSample
        Activations ``(K, dim)``: float64 for U-AND kinds, the network's dtype for circuits.
    """
    name, ell = _parse_layer(net, layer)
    k = _check_int("n_samples", n_samples, low=1)
    seed = _check_int("seed", seed, low=0)
    m = _n_features(net)
    s = _sparsity(net, sparsity)
    from .embedding import sample_sparse, to_dense

    x = to_dense(sample_sparse(m, s, k, seed=seed), m).astype(np.int8)
    return LayerSample(layer, layer_activations(net, layer, x), x, s, seed)


def layer_activations(net: LoadedNetwork, layer: str, x: np.ndarray) -> np.ndarray:
    r"""Activations of ``layer`` on a given 0/1 batch ``x`` ``(K, n_features)`` → ``(K, dim)``."""
    name, ell = _parse_layer(net, layer)
    if name == "input":
        return np.asarray(net.embed(x))
    if name == "hidden":
        return np.asarray(net.hidden(x))
    if net.network_kind == "circuit":
        return np.asarray(next(s for i, s in enumerate(net.residuals(x)) if i == ell))
    # the states are a0, gate 1, correction 1, gate 2, ...: keep the one wanted
    want = 2 * ell if name == "residual" else 2 * (ell - 1)
    a = next(s for i, s in enumerate(net.residuals(x)) if i == want)
    if name == "residual":
        return np.asarray(a)
    arrays = net.layer_arrays(2 * (ell - 1))
    return np.maximum(a @ arrays["W_in"].T + arrays["b"], 0.0)


def feature_values(net: LoadedNetwork, truth: GroundTruth, x: np.ndarray) -> np.ndarray:
    """The exact 0/1 value of every true feature of ``truth`` on the inputs ``x`` → ``(K, n_features)``.

    Inputs and ANDs from ``x`` itself; circuit values and gate products from the circuit stored
    in the sidecar (:meth:`LoadedCircuit.ground_truth <superposition.export.LoadedCircuit.ground_truth>`).
    """
    x = np.asarray(x)
    if truth.feature_kind in ("input", "and"):
        base = x
    else:
        values = net.ground_truth(x)
        ell = int(truth.layer.split(".")[1])
        base = values[ell] if truth.feature_kind == "value" else values[ell - 1]
    out = np.ones((base.shape[0], truth.n_features), dtype=np.int8)
    for j in range(truth.members.shape[1]):
        out &= base[:, truth.members[:, j]].astype(np.int8)
    return out


def contrast_directions(
    net: LoadedNetwork,
    truth: GroundTruth,
    *,
    layer: str | None = None,
    n_contexts: int = 32,
    sparsity: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    r"""The inclusion–exclusion (Möbius) contrast of every feature: what it adds to the activation.

    For a feature on the inputs :math:`T` (one input, or an AND's tuple) and a random context
    :math:`O` of :math:`s - |T|` other active inputs,

    .. math:: \Delta_T = \mathbb E_O \sum_{S\subseteq T} (-1)^{|T|-|S|}\, a(O\cup S),

    the part of the activation that appears only when every input of :math:`T` is on:
    :math:`a(O\cup\{k\}) - a(O)` for an input, and
    :math:`a(O\cup\{k,l\}) - a(O\cup\{k\}) - a(O\cup\{l\}) + a(O)` for a pair. It is a mean
    activation difference over the network's own contexts. For a linear layer it is exactly the
    written direction (:math:`\varphi_k` for the input layer); for a Bernoulli U-AND layer it is
    :math:`\mathbf 1_{\Gamma(T)}` without the neurons also wired to the context.

    Parameters
    ----------
    net : LoadedNetwork
        A U-AND kind.
    truth : GroundTruth
        Of its ``"input"`` or ``"hidden"`` layer: the features (inputs or ANDs) contrasted.
    layer : {"input", "hidden"}, optional
        The layer whose activations are contrasted (default ``truth.layer``): the input features
        contrasted on the ``"hidden"`` layer give the directions in which that layer writes its
        stored inputs.
    n_contexts : int
        Contexts :math:`O` averaged per feature.
    sparsity : int, optional
        :math:`s` (default the sidecar's); contexts hold :math:`\max(s - |T|, 0)` inputs.
    seed : int

    Returns
    -------
    float64 array, shape ``(n_features, dim of layer)``
        Not normalised (a zero row: the feature adds nothing on these contexts).
    """
    layer = truth.layer if layer is None else layer
    if net.network_kind not in _UAND or truth.feature_kind not in ("input", "and"):
        raise ValueError(
            f"contrast_directions applies to the input and hidden layers of U-AND kinds "
            f"({', '.join(_UAND)}), not to layer {truth.layer!r} of kind {net.network_kind!r}"
        )
    _parse_layer(net, layer)
    c = _check_int("n_contexts", n_contexts, low=1)
    rng = np.random.default_rng(_check_int("seed", seed, low=0))
    m = _n_features(net)
    dim = layer_activations(net, layer, np.zeros((1, m), dtype=np.int8)).shape[1]
    s = _sparsity(net, sparsity)
    members = truth.members
    t = members.shape[1]
    n_ctx = max(s - t, 0)
    out = np.zeros((truth.n_features, dim))
    subsets = [sub for r in range(t + 1) for sub in combinations(range(t), r)]
    step = max(1, 4096 // (c * len(subsets)))
    for f0 in range(0, truth.n_features, step):
        block = members[f0 : f0 + step]
        nb = block.shape[0]
        # contexts: n_ctx distinct inputs outside the feature's own, for every (feature, context)
        keys = rng.random((nb, c, m))
        keys[np.arange(nb)[:, None], :, block] = np.inf  # never pick a member
        ctx = np.argsort(keys, axis=2)[:, :, :n_ctx]
        x0 = np.zeros((nb, c, m), dtype=np.int8)
        np.put_along_axis(x0, ctx, 1, axis=2)
        acc = np.zeros((nb, c, dim))
        for sub in subsets:
            x = x0.copy()
            for j in sub:
                x[np.arange(nb), :, block[:, j]] = 1
            sign = (-1.0) ** (t - len(sub))
            a = layer_activations(net, layer, x.reshape(nb * c, m))
            acc += sign * np.asarray(a, dtype=np.float64).reshape(nb, c, dim)
        out[f0 : f0 + nb] = acc.mean(axis=1)
    return out


def contrast_truth(
    net: LoadedNetwork,
    truth: GroundTruth,
    *,
    layer: str | None = None,
    n_contexts: int = 32,
    sparsity: int | None = None,
    seed: int = 0,
) -> GroundTruth:
    """The features of ``truth`` with their normalised :func:`contrast_directions` on ``layer``.

    The write-direction ground truth of the same features (``layer`` defaults to
    ``truth.layer``): score a dictionary against it to see whether a verdict depends on the
    choice of direction, or pass ``layer="hidden"`` with the input features to ask whether a
    hidden-layer dictionary found the stored inputs. Features whose contrast is zero on the
    contexts drawn move to ``missing``.
    """
    layer = truth.layer if layer is None else layer
    delta = contrast_directions(
        net, truth, layer=layer, n_contexts=n_contexts, sparsity=sparsity, seed=seed
    )
    out = _truth_from_rows(layer, truth.feature_kind, delta, list(truth.names), truth.members)
    return GroundTruth(
        out.layer,
        out.feature_kind,
        out.directions,
        out.names,
        out.members,
        truth.missing + out.missing,
        out.dim,
    )


# ------------------------------------------------------------------ dictionaries and scores


def load_dictionary(path: str | os.PathLike, *, tensor: str | None = None) -> np.ndarray:
    """Read a dictionary ``(n_atoms, dim)`` from a ``.npy`` file or a safetensors file.

    Parameters
    ----------
    path : str or PathLike
        ``.npy`` (a plain array; pickled objects are refused) or ``.safetensors``.
    tensor : str, optional
        The tensor to read from a safetensors file (default: its only tensor).

    Returns
    -------
    float64 array, shape ``(n_atoms, dim)`` (not yet checked against a layer; see
    :func:`score_dictionary`)
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"dictionary: {p}: no such file")
    if p.suffix == ".npy":
        if tensor is not None:
            raise ValueError("tensor applies to safetensors files, not to .npy")
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ValueError(f"dictionary: {p}: not a readable .npy array ({exc})") from None
    elif p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            tensors = load_file(str(p))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ValueError(f"dictionary: {p}: unreadable safetensors file ({exc})") from None
        if tensor is None:
            if len(tensors) != 1:
                raise ValueError(
                    f"dictionary: {p} holds tensors {sorted(tensors)}: choose one with tensor="
                )
            (arr,) = tensors.values()
        elif tensor not in tensors:
            raise ValueError(f"tensor must be one of {sorted(tensors)}; got {tensor!r}")
        else:
            arr = tensors[tensor]
    else:
        raise ValueError(f"dictionary must be a .npy or .safetensors file, got {str(p)!r}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"dictionary: {p} holds {arr.dtype} values, not real numbers")
    return np.asarray(arr, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class DictionaryScore:
    r"""How well a dictionary recovers the true features of one layer.

    Attributes
    ----------
    layer : str
    feature_kind : str
    names : tuple of str
        The true features, in the order of ``best_cosine``.
    best_cosine : float64 array, shape ``(n_features,)``
        :math:`\max_j |\cos(t_f, D_j)|` over the live atoms (signed cosine if ``signed``).
    best_atom : int64 array, shape ``(n_features,)``
        The atom achieving it (-1 when there is no live atom).
    atom_best_cosine : float64 array, shape ``(n_atoms,)``
        Each atom's best cosine with any true feature (0 for a dead atom).
    threshold : float
    thresholds, curve : float64 arrays, shape ``(n_thresholds,)``
        ``curve[i]`` is the fraction of true features with ``best_cosine >= thresholds[i]``.
    n_atoms, dead, duplicates : int
        Atoms; dead ones (zero, or with usage 0); live ones within ``duplicate_threshold`` of an
        earlier live atom.
    duplicate_threshold : float
    signed : bool
    """

    layer: str
    feature_kind: str
    names: tuple[str, ...] = field(repr=False)
    best_cosine: np.ndarray = field(repr=False)
    best_atom: np.ndarray = field(repr=False)
    atom_best_cosine: np.ndarray = field(repr=False)
    threshold: float
    thresholds: np.ndarray = field(repr=False)
    curve: np.ndarray = field(repr=False)
    n_atoms: int
    dead: int
    duplicates: int
    duplicate_threshold: float
    signed: bool

    @property
    def n_features(self) -> int:
        return int(self.best_cosine.size)

    @property
    def recovered(self) -> float:
        """Fraction of true features with ``best_cosine >= threshold`` (0 if there are none)."""
        return float(np.mean(self.best_cosine >= self.threshold)) if self.n_features else 0.0

    @property
    def recovered_count(self) -> int:
        return int(np.sum(self.best_cosine >= self.threshold))

    @property
    def mean_best_cosine(self) -> float:
        return float(self.best_cosine.mean()) if self.n_features else 0.0

    @property
    def atoms_matched(self) -> int:
        """Distinct atoms that are the best match of a recovered feature."""
        hit = self.best_cosine >= self.threshold
        return int(np.unique(self.best_atom[hit]).size)

    def recovered_among(self, mask: np.ndarray) -> float:
        """Fraction recovered among the features where ``mask`` ``(n_features,)`` is true
        (e.g. those that occur in the data); NaN if there are none."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.best_cosine.shape:
            raise ValueError(f"mask must have shape {self.best_cosine.shape}, got {mask.shape}")
        if not mask.any():
            return float("nan")
        return float(np.mean(self.best_cosine[mask] >= self.threshold))

    @property
    def atoms_on_features(self) -> float:
        """Fraction of the live atoms within ``threshold`` of some true feature."""
        live = self.n_atoms - self.dead
        if live == 0:
            return 0.0
        return float(np.sum(self.atom_best_cosine >= self.threshold)) / live

    def summary(self, *, per_feature: bool = False) -> dict[str, Any]:
        """JSON-able summary (``per_feature``: also every feature's best cosine and atom)."""
        out: dict[str, Any] = {
            "layer": self.layer,
            "feature_kind": self.feature_kind,
            "n_features": self.n_features,
            "n_atoms": self.n_atoms,
            "dead": self.dead,
            "duplicates": self.duplicates,
            "threshold": self.threshold,
            "recovered": self.recovered,
            "recovered_count": self.recovered_count,
            "mean_best_cosine": self.mean_best_cosine,
            "median_best_cosine": float(np.median(self.best_cosine)) if self.n_features else 0.0,
            "atoms_matched": self.atoms_matched,
            "atoms_on_features": self.atoms_on_features,
            "duplicate_threshold": self.duplicate_threshold,
            "signed": self.signed,
            "curve": {
                "thresholds": [round(float(t), 6) for t in self.thresholds],
                "recovered": [float(c) for c in self.curve],
            },
        }
        if per_feature:
            out["features"] = [
                {"name": nm, "best_cosine": float(c), "best_atom": int(a)}
                for nm, c, a in zip(self.names, self.best_cosine, self.best_atom, strict=True)
            ]
        return out


def score_dictionary(
    dictionary: np.ndarray,
    truth: GroundTruth,
    *,
    threshold: float = THRESHOLD,
    thresholds: np.ndarray | None = None,
    duplicate_threshold: float = THRESHOLD,
    usage: np.ndarray | None = None,
    signed: bool = False,
) -> DictionaryScore:
    r"""Score a dictionary against the true features of one layer.

    Parameters
    ----------
    dictionary : array, shape ``(n_atoms, dim)``
        Learned directions, one per row, any scale (each row is normalised here). Finite.
    truth : GroundTruth
        From :func:`ground_truth`; ``dim`` must match.
    threshold : float
        Cosine in ``(0, 1]`` at which a feature counts as recovered.
    thresholds : array, optional
        Grid in ``[0, 1]`` for the recovery curve (default :data:`THRESHOLDS`).
    duplicate_threshold : float
        Cosine in ``(0, 1]`` at which a live atom duplicates an earlier live one.
    usage : array, shape ``(n_atoms,)``, optional
        Fraction (or count) of samples on which the tool used each atom; atoms with usage 0 are
        dead, like zero atoms. Without it only zero atoms are dead.
    signed : bool
        Match with the signed cosine (an atom and its negative differ). Default: the absolute
        cosine, since a direction and its negative describe the same feature when codes may be
        negative.

    Returns
    -------
    DictionaryScore

    Raises
    ------
    ValueError
        A dictionary that is not 2-D, has no atoms, has the wrong ``dim``, or holds NaN or inf;
        a bad ``usage``, ``threshold`` or ``thresholds``.
    """
    if not isinstance(truth, GroundTruth):
        raise ValueError(f"truth must be a GroundTruth, got {type(truth).__name__}")
    D = _check_dictionary(dictionary, truth.dim)
    thr = _check_unit("threshold", threshold)
    dup = _check_unit("duplicate_threshold", duplicate_threshold)
    grid = THRESHOLDS if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0 or not np.all((grid >= 0) & (grid <= 1)):
        raise ValueError("thresholds must be a non-empty 1-D array of values in [0, 1]")
    n_atoms = D.shape[0]
    norms = np.linalg.norm(D, axis=1)
    live = norms > 0
    if usage is not None:
        u = np.asarray(usage, dtype=np.float64)
        if u.shape != (n_atoms,) or not np.all(np.isfinite(u)) or np.any(u < 0):
            raise ValueError(
                f"usage must be a finite non-negative array of shape ({n_atoms},), got shape {u.shape}"
            )
        live &= u > 0
    idx = np.flatnonzero(live)
    U = D[idx] / norms[idx, None]
    T = truth.directions
    best = np.zeros(truth.n_features)
    best_atom = np.full(truth.n_features, -1, dtype=np.int64)
    atom_best = np.zeros(n_atoms)
    if idx.size and truth.n_features:
        atom_live_best = np.full(idx.size, -np.inf)
        for f0 in range(0, truth.n_features, _BLOCK):
            C = T[f0 : f0 + _BLOCK] @ U.T
            if not signed:
                np.abs(C, out=C)
            j = np.argmax(C, axis=1)
            best[f0 : f0 + _BLOCK] = C[np.arange(C.shape[0]), j]
            best_atom[f0 : f0 + _BLOCK] = idx[j]
            np.maximum(atom_live_best, C.max(axis=0), out=atom_live_best)
        atom_best[idx] = atom_live_best
    np.clip(best, -1.0, 1.0, out=best)
    curve = np.array([np.mean(best >= t) if best.size else 0.0 for t in grid])
    return DictionaryScore(
        layer=truth.layer,
        feature_kind=truth.feature_kind,
        names=truth.names,
        best_cosine=best,
        best_atom=best_atom,
        atom_best_cosine=atom_best,
        threshold=thr,
        thresholds=grid.copy(),
        curve=curve,
        n_atoms=n_atoms,
        dead=int(n_atoms - idx.size),
        duplicates=_duplicates(U, dup),
        duplicate_threshold=dup,
        signed=bool(signed),
    )


def _duplicates(U: np.ndarray, thr: float) -> int:
    """Live atoms (unit rows ``U``) within ``thr`` (absolute cosine) of an earlier live atom."""
    n = U.shape[0]
    dup = np.zeros(n, dtype=bool)
    for j0 in range(0, n, _BLOCK):
        G = np.abs(U[j0 : j0 + _BLOCK] @ U[: j0 + _BLOCK].T)
        rows = np.arange(G.shape[0])
        G[rows[:, None] + j0 <= np.arange(G.shape[1])[None, :]] = 0.0  # only earlier atoms
        dup[j0 : j0 + _BLOCK] = (G >= thr - 1e-12).any(axis=1)
    return int(dup.sum())


def _check_dictionary(dictionary: Any, dim: int) -> np.ndarray:
    D = np.asarray(dictionary)
    if not np.issubdtype(D.dtype, np.number) or np.iscomplexobj(D):
        raise ValueError(f"dictionary must hold real numbers, got dtype {D.dtype}")
    D = D.astype(np.float64)
    if D.ndim != 2 or D.shape[1] != dim or D.shape[0] < 1:
        hint = " (transposed? atoms are rows)" if D.ndim == 2 and D.shape[0] == dim else ""
        raise ValueError(
            f"dictionary must have shape (n_atoms >= 1, {dim}) for this layer, got {D.shape}{hint}"
        )
    if not np.all(np.isfinite(D)):
        bad = int(np.sum(~np.isfinite(D).all(axis=1)))
        raise ValueError(f"dictionary must be finite: {bad} atom(s) hold NaN or inf")
    return D


# ------------------------------------------------------------------ helpers


def _check_net(net: Any) -> None:
    if not isinstance(net, LoadedNetwork):
        raise ValueError(
            f"net must be a LoadedNetwork (superposition.load_network), got {type(net).__name__}"
        )
    if net.network_kind not in _UAND + _CIRCUITS:
        raise ValueError(
            f"net must be of kind {', '.join(_UAND + _CIRCUITS)} to carry a ground truth, "
            f"got {net.network_kind!r}"
        )


def _parse_layer(net: LoadedNetwork, layer: Any) -> tuple[str, int]:
    allowed = ground_truth_layers(net)
    if not isinstance(layer, str) or layer not in allowed:
        shown = _show_layers(allowed)
        raise ValueError(
            f"layer must be one of {shown} for this {net.network_kind} network; got {layer!r}"
        )
    if "." in layer:
        name, ell = layer.split(".")
        return name, int(ell)
    return layer, 0


def _show_layers(allowed: tuple[str, ...]) -> str:
    if len(allowed) <= 6:
        return ", ".join(allowed)
    groups: dict[str, list[int]] = {}
    for nm in allowed:
        base, ell = nm.split(".")
        groups.setdefault(base, []).append(int(ell))
    return ", ".join(f"{b}.{min(v)} ... {b}.{max(v)}" for b, v in groups.items())


def _n_features(net: LoadedNetwork) -> int:
    sizes = net.sizes
    if "n_features" in sizes:
        return int(sizes["n_features"])
    raise ValueError("the network's sidecar records no n_features: it has no ground truth")


def _sparsity(net: LoadedNetwork, sparsity: int | None) -> int:
    m = _n_features(net)
    if sparsity is None:
        sparsity = net.sizes.get("sparsity")
        extra = net.meta.get("extra")
        if sparsity is None and isinstance(extra, dict):
            sparsity = extra.get("sparsity")
        if sparsity is None:
            raise ValueError(
                f"sparsity: this {net.network_kind} network's sidecar records no sparsity (its input "
                "distribution); pass sparsity"
            )
    return _check_int("sparsity", sparsity, low=1, high=m)


def _hidden_dim(net: LoadedNetwork) -> int:
    return int(net.first_layer().shape[0])


def _residual_dim(net: LoadedNetwork) -> int:
    x = np.zeros((1, _n_features(net)), dtype=np.int8)
    return int(next(iter(net.residuals(x))).shape[1])


def _unit_rows(rows: np.ndarray, what: str) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1)
    if np.any(norms == 0):
        raise ValueError(f"a zero {what} has no direction")
    return rows / norms[:, None]


def _check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {v}")
    return v


def _check_unit(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number in (0, 1], got {value!r}")
    v = float(value)
    if not (0.0 < v <= 1.0):
        raise ValueError(f"{name} must be in (0, 1], got {v}")
    return v
