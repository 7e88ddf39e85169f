r"""Sparse boolean circuits and their emulation by MLP layers in superposition (Theorem 6).

A circuit of depth :math:`L` maps :math:`x^{(0)} \in \{0,1\}^{m_0}` through layers of gates,
:math:`x^{(\ell)}_g = f_g\big(x^{(\ell-1)}_{u_g},\, x^{(\ell-1)}_{v_g}\big)`, each gate a boolean
function of one or two values of the previous layer. Every such function is a polynomial
with integer coefficients in one AND,

.. math:: f(x, y) = c_0 + c_1 x + c_2 y + c_3\, xy, \qquad
    c_0 = f_{00},\; c_1 = f_{10} - f_{00},\; c_2 = f_{01} - f_{00},\;
    c_3 = f_{11} - f_{10} - f_{01} + f_{00},

(``xor = x + y - 2xy``, ``or = x + y - xy``, ``andnot = x - xy``), which is what lets one MLP
layer emulate one circuit layer on a residual stream :math:`a = \Phi x` in superposition:
U-AND neurons compute the products :math:`xy`, the linear terms are read off the residual
linearly, and the gate values are written back with the next layer's embedding.

Truth tables
------------
A two-input gate is stored as a 4-bit code: bit :math:`2x + y` holds :math:`f(x, y)`, so the
4-entry table :math:`(f_{00}, f_{01}, f_{10}, f_{11})` has code
:math:`f_{00} + 2f_{01} + 4f_{10} + 8f_{11}` (``and`` = 8, ``or`` = 14, ``xor`` = 6). A one-input
gate :math:`g` is stored as the two-input gate :math:`f(x, y) = g(x)` with both inputs wired to
the same value.

Sparsity
--------
Gates with :math:`f(0,0) = 1` (``not``, ``nand``, ``nor``, ``xnor``, ``implies``, ...) turn an
all-zero input into ones, so a layer of them is dense and cannot be held in superposition.
They are **rejected** by :class:`CircuitLayer` with a ``ValueError``; :func:`gate_table` still
lists all 16 functions and their polynomials. :func:`random_circuit` builds circuits that
stay :math:`s`-sparse on every :math:`s`-sparse input (its ``"paired"`` wiring).

Emulation
---------
:func:`compile_circuit` turns each layer into plain arrays (:class:`CompiledLayer`:
``W_in``, ``b``, ``W_out``, ``W_skip`` and the embeddings), :func:`emulate` runs them and
compares every decoded layer with the exact circuit, and a :class:`CompiledLayer` is callable
on a residual batch, so layers can be stepped one at a time (e.g. interleaved with
error-correction layers). Without correction the readout noise of *every* feature, active or
not, is copied by the linear terms and written back, so it compounds by about
:math:`\kappa(1 + m/d)` per layer (:func:`predicted_noise`).

The weights are built with NumPy and SciPy; the emulation (a layer's call, ``encode``,
``decode``, ``residuals``, :func:`emulate`, :func:`readout_stats`) runs in the namespace of its
input, or of ``$SUPERPOSITION_BACKEND`` for NumPy input
(:func:`~superposition.backend.evaluation_namespace`), with the weights moved there once. Only
the exact circuit it is compared with is evaluated in NumPy.

Examples
--------
>>> from superposition import random_circuit, compile_circuit, emulate, sample_sparse, to_dense
>>> circuit = random_circuit(1500, 3, seed=0)
>>> net = compile_circuit(circuit, embed_dim=1000, seed=1)
>>> x = to_dense(sample_sparse(1500, 2, 100, seed=2), 1500)
>>> report = emulate(net, x)
>>> report.bit_accuracy[1]
1.0
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._validate import as_generator, check_bits, check_choice, check_int, check_real
from .backend import asarray, evaluation_namespace, name_of, namespace, to_numpy
from .embedding import BLOCK, EMBEDDING_KINDS, Embedding
from .kernels import CSR, sample_wiring, sparse_matmul

__all__ = [
    "DEFAULT_GATES",
    "GATE_NAMES",
    "Circuit",
    "CircuitLayer",
    "CompiledCircuit",
    "CompiledLayer",
    "EmulationReport",
    "active_counts",
    "compile_circuit",
    "compile_layer",
    "emulate",
    "fraction_sparse",
    "gate_polynomial",
    "gate_table",
    "predicted_noise",
    "random_circuit",
    "readout_stats",
]

GATE_NAMES: tuple[str, ...] = (
    "false",
    "nor",
    "yandnot",
    "notx",
    "andnot",
    "noty",
    "xor",
    "nand",
    "and",
    "xnor",
    "y",
    "implies",
    "x",
    "implied_by",
    "or",
    "true",
)
"""Names of the 16 two-input boolean functions, indexed by truth-table code.

``andnot`` is :math:`x \\wedge \\neg y`, ``yandnot`` is :math:`y \\wedge \\neg x`, ``implies`` is
:math:`\\neg x \\vee y`, ``implied_by`` is :math:`x \\vee \\neg y`; ``x``, ``y`` are projections."""

_ONE_INPUT: dict[str, int] = {"copy": 0b1100, "id": 0b1100, "not": 0b0011}
"""One-input gates by name, as the code of :math:`f(x, y) = g(x)`."""

DEFAULT_GATES: tuple[str, ...] = ("and", "or", "xor", "andnot")
NEURON_WIRINGS = ("targeted", "bernoulli")
CIRCUIT_WIRINGS = ("paired", "random")

GateSpec = str | int | tuple[int, ...]


# --------------------------------------------------------------------------- gates


def _truth(code: int) -> tuple[int, int, int, int]:
    """``(f00, f01, f10, f11)`` of a code."""
    return tuple((code >> i) & 1 for i in range(4))  # type: ignore[return-value]


def _code_of_table(table: Sequence[int]) -> int:
    return sum(int(b) << i for i, b in enumerate(table))


def _resolve(gate: GateSpec) -> tuple[int, int]:
    """``(code, arity)`` of a gate given by name, code 0..15, or truth table of 2 or 4 bits."""
    if isinstance(gate, str):
        if gate in _ONE_INPUT:
            return _ONE_INPUT[gate], 1
        if gate in GATE_NAMES:
            return GATE_NAMES.index(gate), 2
        raise ValueError(
            f"gate must be one of {', '.join(map(repr, GATE_NAMES + tuple(_ONE_INPUT)))}; got {gate!r}"
        )
    if isinstance(gate, tuple | list):
        if len(gate) not in (2, 4) or any(b not in (0, 1) or isinstance(b, bool) for b in gate):
            raise ValueError(
                "gate truth table must be 2 bits (g(0), g(1)) or 4 bits "
                f"(f(0,0), f(0,1), f(1,0), f(1,1)) of 0/1; got {gate!r}"
            )
        if len(gate) == 2:
            g0, g1 = gate
            return _code_of_table((g0, g0, g1, g1)), 1
        return _code_of_table(gate), 2
    code = check_int("gate", gate, low=0, high=15)
    return code, 2


def gate_polynomial(gate: GateSpec) -> tuple[int, int, int, int]:
    r"""Integer coefficients :math:`(c_0, c_1, c_2, c_3)` with :math:`f(x,y) = c_0 + c_1x + c_2y + c_3xy`.

    Parameters
    ----------
    gate : str, int or tuple
        A name from :data:`GATE_NAMES` (or ``"copy"``, ``"id"``, ``"not"``), a code ``0..15``, or
        a truth table ``(f00, f01, f10, f11)`` (two inputs) / ``(g0, g1)`` (one input, then
        :math:`c_2 = c_3 = 0`).

    Notes
    -----
    :math:`c_0 = f_{00}`, :math:`c_1 = f_{10} - f_{00}`, :math:`c_2 = f_{01} - f_{00}`,
    :math:`c_3 = f_{11} - f_{10} - f_{01} + f_{00}`: the unique multilinear interpolation of the
    table, so it agrees with :math:`f` on all four points of :math:`\{0,1\}^2`.
    """
    code, _ = _resolve(gate)
    return _poly(code)


def _poly(code: int) -> tuple[int, int, int, int]:
    f00, f01, f10, f11 = _truth(code)
    return f00, f10 - f00, f01 - f00, f11 - f10 - f01 + f00


def _poly_arrays(code: np.ndarray) -> np.ndarray:
    """Coefficients for an array of codes, shape ``(*code.shape, 4)``, int64."""
    table = np.array([_poly(c) for c in range(16)], dtype=np.int64)
    return table[np.asarray(code, dtype=np.int64)]


def _formula(c: Sequence[int]) -> str:
    terms = []
    for coef, mono in zip(c, ("1", "x", "y", "xy"), strict=True):
        if coef == 0:
            continue
        mag = abs(coef)
        body = mono if mono != "1" else str(mag)
        if mono != "1" and mag != 1:
            body = f"{mag}{mono}"
        terms.append(("-" if coef < 0 else "+", body))
    if not terms:
        return "0"
    sign, body = terms[0]
    out = ("-" if sign == "-" else "") + body
    for sign, body in terms[1:]:
        out += f" {sign} {body}"
    return out


def gate_table() -> list[dict[str, Any]]:
    r"""All 16 two-input boolean functions with their AND-polynomials.

    Returns
    -------
    rows : list of dict, one per code ``0..15``
        ``name``, ``code``, ``truth`` :math:`(f_{00}, f_{01}, f_{10}, f_{11})`, ``c0``..``c3``,
        ``formula`` (e.g. ``"x + y - 2xy"``) and ``sparse`` (``f(0,0) == 0``, i.e. whether the
        gate is allowed in a sparse circuit).
    """
    rows = []
    for code, name in enumerate(GATE_NAMES):
        c = _poly(code)
        rows.append(
            {
                "name": name,
                "code": code,
                "truth": _truth(code),
                "c0": c[0],
                "c1": c[1],
                "c2": c[2],
                "c3": c[3],
                "formula": _formula(c),
                "sparse": c[0] == 0,
            }
        )
    return rows


# --------------------------------------------------------------------------- circuits


@dataclass(frozen=True, eq=False)
class CircuitLayer:
    r"""One layer of gates, :math:`x'_g = f_g(x_{u_g}, x_{v_g})`, as flat arrays.

    Parameters
    ----------
    n_features : int
        Width :math:`m_{\mathrm{in}}` of the previous layer.
    left, right : int arrays, shape ``(n_gates,)``
        Input indices :math:`u_g, v_g \in [0, m_{\mathrm{in}})`; a one-input gate has ``right == left``.
    code : int array, shape ``(n_gates,)``
        Truth-table codes ``0..15`` (bit :math:`2x+y` is :math:`f(x,y)`).

    Raises
    ------
    ValueError
        On an index out of range, a code outside ``0..15``, mismatched shapes, or a gate with
        :math:`f(0,0)=1` (it breaks sparsity; such gates are not supported).

    See Also
    --------
    CircuitLayer.from_gates : build a layer from readable gate specs.
    """

    n_features: int
    left: np.ndarray
    right: np.ndarray
    code: np.ndarray

    def __post_init__(self) -> None:
        m = check_int("n_features", self.n_features, low=1)
        arrs = {}
        for name in ("left", "right", "code"):
            a = np.asarray(getattr(self, name))
            if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
                raise ValueError(f"{name} must be a 1-d integer array, got {a.dtype} {a.shape}")
            arrs[name] = a.astype(np.int64 if name != "code" else np.uint8)
        n = arrs["left"].size
        if n == 0:
            raise ValueError("a circuit layer must have at least one gate, got 0")
        if arrs["right"].size != n or arrs["code"].size != n:
            raise ValueError(
                f"left, right and code must have the same length, got "
                f"{n}, {arrs['right'].size}, {arrs['code'].size}"
            )
        for name in ("left", "right"):
            a = arrs[name]
            bad = np.flatnonzero((a < 0) | (a >= m))
            if bad.size:
                g = int(bad[0])
                raise ValueError(
                    f"{name}[{g}] (input of gate {g}) must be between 0 and {m - 1}, got {int(a[g])}"
                )
        c = np.asarray(self.code)
        bad = np.flatnonzero((c < 0) | (c > 15))
        if bad.size:
            g = int(bad[0])
            raise ValueError(f"code[{g}] must be between 0 and 15, got {int(c[g])}")
        dense = np.flatnonzero(arrs["code"] & 1)
        if dense.size:
            g = int(dense[0])
            raise ValueError(
                f"gate {g} ({GATE_NAMES[int(arrs['code'][g])]}) has f(0,0) = 1 and breaks sparsity; "
                "only gates with f(0,0) = 0 are supported"
            )
        for name, a in arrs.items():
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    @classmethod
    def from_gates(cls, n_features: int, gates: Sequence[Sequence[Any]]) -> CircuitLayer:
        """A layer from specs ``(gate, u)`` or ``(gate, u, v)``.

        ``gate`` is a name (``"and"``, ``"xor"``, ``"copy"``, ...), a code ``0..15`` or a truth
        table (4 bits for two inputs, 2 bits for one input). The number of indices must match
        the gate's arity, e.g. ``[("xor", 0, 1), ("and", 0, 1), ("copy", 2)]``.
        """
        check_int("n_features", n_features, low=1)
        left, right, code = [], [], []
        for g, spec in enumerate(gates):
            if isinstance(spec, str) or len(spec) < 2:
                raise ValueError(f"gate {g} must be (gate, u) or (gate, u, v), got {spec!r}")
            c, arity = _resolve(spec[0])
            idx = list(spec[1:])
            if len(idx) != arity:
                raise ValueError(
                    f"gate {g} ({spec[0]!r}) takes {arity} input{'s' * (arity > 1)}, got {len(idx)}: {spec!r}"
                )
            for i in idx:
                check_int(f"input index of gate {g}", i, low=0, high=n_features - 1)
            left.append(idx[0])
            right.append(idx[-1])
            code.append(c)
        return cls(
            n_features,
            np.array(left, np.int64),
            np.array(right, np.int64),
            np.array(code, np.uint8),
        )

    @property
    def n_gates(self) -> int:
        return int(self.left.size)

    @property
    def coefficients(self) -> np.ndarray:
        r"""Effective :math:`(c_0, c_1, c_2, c_3)` per gate, shape ``(n_gates, 4)``, int64.

        For a gate whose two inputs are the same value (one-input gates), :math:`f(x, x) =
        c_0 + (c_1 + c_2 + c_3)x` is folded into :math:`c_1` and :math:`c_2 = c_3 = 0`.
        """
        c = _poly_arrays(self.code)
        same = self.left == self.right
        c[same, 1] = c[same, 1:].sum(axis=1)
        c[same, 2:] = 0
        return c

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        """Exact gate values for a batch.

        Parameters
        ----------
        x : bool or 0/1 array, shape ``(n_samples, n_features)``

        Returns
        -------
        y : bool array, shape ``(n_samples, n_gates)``
        """
        x = check_bits(x, self.n_features, "x")
        idx = (x[:, self.left].view(np.uint8) << 1) | x[:, self.right].view(np.uint8)
        return ((self.code[None, :] >> idx) & 1).astype(bool)

    def true_ands(self, x: np.ndarray) -> np.ndarray:
        r"""Which gates' AND term is 1 on each input: :math:`c_3 \ne 0` and two distinct
        inputs, both 1 (the products the layer's U-AND neurons must compute as 1, rather than
        keep at 0).

        Parameters
        ----------
        x : bool or 0/1 array, shape ``(n_samples, n_features)``

        Returns
        -------
        bool array, shape ``(n_samples, n_gates)``
        """
        x = check_bits(x, self.n_features, "x")
        uses = (_poly_arrays(self.code)[:, 3] != 0) & (self.left != self.right)
        return x[:, self.left] & x[:, self.right] & uses[None, :]

    def describe(self, names: tuple[str, str] = ("x", "y")) -> list[str]:
        """One readable line per gate, e.g. ``"y3 = xor(x1, x5)"``."""
        out = []
        for g in range(self.n_gates):
            c, u, v = int(self.code[g]), int(self.left[g]), int(self.right[g])
            if u == v:
                one = {12: "copy", 0: "false"}.get(c)
                fn = one if one is not None else GATE_NAMES[c]
                args = f"{names[0]}{u}" if one is not None else f"{names[0]}{u}, {names[0]}{v}"
            else:
                fn, args = GATE_NAMES[c], f"{names[0]}{u}, {names[0]}{v}"
            out.append(f"{names[1]}{g} = {fn}({args})")
        return out


@dataclass(frozen=True, eq=False)
class Circuit:
    r"""A layered boolean circuit :math:`x^{(0)} \mapsto x^{(1)} \mapsto \dots \mapsto x^{(L)}`.

    Parameters
    ----------
    n_features : int
        Width :math:`m_0` of the input layer.
    layers : sequence of CircuitLayer
        Layer :math:`\ell` reads the ``n_gates`` values of layer :math:`\ell - 1`.
    """

    n_features: int
    layers: tuple[CircuitLayer, ...]

    def __post_init__(self) -> None:
        m = check_int("n_features", self.n_features, low=1)
        layers = tuple(self.layers)
        if not layers:
            raise ValueError("a circuit must have depth >= 1, got 0 layers")
        for i, layer in enumerate(layers):
            if not isinstance(layer, CircuitLayer):
                raise ValueError(f"layers[{i}] must be a CircuitLayer, got {type(layer).__name__}")
            if layer.n_features != m:
                raise ValueError(
                    f"layers[{i}] reads {layer.n_features} values but the previous layer has {m}"
                )
            m = layer.n_gates
        object.__setattr__(self, "layers", layers)

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def n_features_per_layer(self) -> tuple[int, ...]:
        """``(m_0, m_1, ..., m_L)``."""
        return (self.n_features, *(layer.n_gates for layer in self.layers))

    def evaluate(self, x: np.ndarray) -> list[np.ndarray]:
        """Exact values of every layer, ``[x0, x1, ..., xL]``, each bool ``(n_batch, m_l)``."""
        xs = [check_bits(x, self.n_features, "x")]
        for layer in self.layers:
            xs.append(layer.evaluate(xs[-1]))
        return xs


def random_circuit(
    n_features: int,
    depth: int,
    gates: Sequence[str] = DEFAULT_GATES,
    *,
    wiring: str = "paired",
    sticky: float = 0.0,
    seed: object = 0,
) -> Circuit:
    r"""A random circuit of width ``n_features`` (values per layer) and the given depth.

    Parameters
    ----------
    n_features : int
        Width :math:`m \ge 2` of every layer.
    depth : int
        Number of layers :math:`L \ge 1`.
    gates : sequence of str
        Gate names (two-input names of :data:`GATE_NAMES` with :math:`f(0,0)=0`, or ``"copy"``).
    wiring : {"paired", "random"}
        How gates are wired (below).
    sticky : float
        ``"paired"`` wiring only: the probability that a block's two outputs are paired again in
        the next layer (default 0, a fresh random pairing every layer). Two ones that met at a
        block then tend to meet again, so products fire more often on inputs whose ones meet.
    seed : int, SeedSequence or Generator

    Notes
    -----
    ``"paired"`` (default) keeps every layer :math:`s`-sparse for **every** :math:`s`-sparse
    input. Each layer draws a random permutation of the previous layer's :math:`m` values and
    cuts it into :math:`\lfloor m/2 \rfloor` disjoint pairs :math:`(u, v)`. Each pair feeds
    exactly two gates :math:`(g_1, g_2)` (a *block*), and nothing else, and those two gates fill
    two output positions. A block is drawn uniformly from the distinct blocks of the gate set
    (either input order) that are *conservative*:

    .. math:: g_1(1,0) + g_2(1,0) = 1, \qquad g_1(0,1) + g_2(0,1) = 1 .

    With :math:`f(0,0)=0` an inactive pair gives two zeros, a pair with one active input gives
    exactly one active output, and a pair with two active inputs at most two: the number of
    ones never grows, and it stays equal to :math:`s` unless both inputs of a block are active
    (probability about :math:`\binom s2 / (m-1)` per layer). For the default gate set the
    blocks are ``{and, or}``, ``{and, xor}`` (a half adder) and ``{andnot(u,v), andnot(v,u)}``.
    If a gate has no conservative partner in the set, blocks with
    :math:`g_1 + g_2 \le 1` on single activations are used instead (``{and, and}`` for
    ``gates=("and",)``: still sparse, but ones are lost); a set with neither (e.g. ``("or",)``)
    raises ``ValueError``. With odd :math:`m` the left-over value is copied.

    ``"random"``: every gate is drawn uniformly from the set and reads uniformly random distinct
    inputs. Nothing bounds the number of ones (an active value feeds two gates on average);
    :func:`fraction_sparse` measures how many inputs stay :math:`s`-sparse.
    """
    m = check_int("n_features", n_features, low=2)
    L = check_int("depth", depth, low=1)
    check_choice("wiring", wiring, CIRCUIT_WIRINGS)
    keep = check_real("sticky", sticky, low=0.0, high=1.0)
    if keep and wiring != "paired":
        raise ValueError("sticky applies to wiring='paired' only")
    resolved = _check_gate_set(gates)
    rng = as_generator(seed)
    if wiring == "random":
        layers = [_random_layer(m, resolved, rng) for _ in range(L)]
    else:
        blocks = _blocks(resolved)
        layers = [
            _paired_layer(m, blocks, rng, _sticky_pairing(m, keep, rng) if ell and keep else None)
            for ell in range(L)
        ]
    return Circuit(m, tuple(layers))


def _sticky_pairing(m: int, keep: float, rng: np.random.Generator) -> np.ndarray:
    """A pairing of the previous paired layer's outputs (block ``i`` wrote ``2i, 2i + 1``) that
    keeps each block's two outputs together with probability ``keep``, as a permutation whose
    consecutive entries are the pairs (an odd left-over value last)."""
    n_pairs = m // 2
    kept = rng.random(n_pairs) < keep
    first = 2 * np.flatnonzero(kept)
    rest = np.concatenate([2 * np.flatnonzero(~kept), 2 * np.flatnonzero(~kept) + 1])
    if m % 2:
        rest = np.append(rest, m - 1)
    rest = rng.permutation(rest)
    left_over = rest[2 * (rest.size // 2) :]
    pairs = np.concatenate(
        [np.stack([first, first + 1], axis=1), rest[: rest.size - left_over.size].reshape(-1, 2)]
    )
    pairs = pairs[rng.permutation(n_pairs)]
    flip = rng.random(n_pairs) < 0.5
    pairs[flip] = pairs[flip][:, ::-1]
    return np.concatenate([pairs.ravel(), left_over])


def _check_gate_set(gates: Sequence[str]) -> list[tuple[str, int, int]]:
    if isinstance(gates, str) or not len(gates):
        raise ValueError(f"gates must be a non-empty sequence of gate names, got {gates!r}")
    out = []
    for g in gates:
        if not isinstance(g, str):
            raise ValueError(f"gates must be names, got {g!r}")
        code, arity = _resolve(g)
        if code & 1:
            raise ValueError(
                f"gate {g!r} has f(0,0) = 1 and breaks sparsity; only gates with f(0,0) = 0 are supported"
            )
        if code == 0:
            raise ValueError("gate 'false' is constant; it is not allowed in random circuits")
        out.append((g, code, arity))
    return list(dict.fromkeys(out))


def _swap(code: int) -> int:
    """Code of ``f(y, x)``."""
    f00, f01, f10, f11 = _truth(code)
    return _code_of_table((f00, f10, f01, f11))


def _blocks(gates: list[tuple[str, int, int]]) -> list[tuple[tuple[int, bool, int], ...]]:
    """Distinct sparsity-preserving blocks of two gates on a pair ``(u, v)``.

    A gate option is ``(code, swapped, arity)``: it reads ``(v, u)`` instead of ``(u, v)`` when
    ``swapped`` (a one-input gate then reads ``v`` instead of ``u``). Options are identified by
    the function they compute on ``(u, v)``.
    """
    opts: dict[int, tuple[int, bool, int]] = {}
    for _, code, arity in gates:
        for swapped in (False, True):
            opts.setdefault(_swap(code) if swapped else code, (code, swapped, arity))

    def single(c: int) -> np.ndarray:
        t = _truth(c)
        return np.array([t[2], t[1]])  # (f(1,0), f(0,1)) on (u, v)

    effs = sorted(opts)
    pairs = list(itertools.combinations_with_replacement(effs, 2))
    conservative = [p for p in pairs if np.all(single(p[0]) + single(p[1]) == 1)]
    covered = {c for p in conservative for c in p}
    extra = [p for p in pairs if np.all(single(p[0]) + single(p[1]) <= 1) and not set(p) <= covered]
    chosen = conservative + extra
    used = {opts[c][0] for p in chosen for c in p}
    missing = sorted({g for g, code, _ in gates if code not in used})
    if missing:
        raise ValueError(
            f"gates {missing} have no partner in the gate set that keeps the circuit sparse "
            "(a partner must be 0 where they are 1 on a single active input); add 'and'"
        )
    return [(opts[a], opts[b]) for a, b in chosen]


def _paired_layer(
    m: int, blocks: list, rng: np.random.Generator, perm: np.ndarray | None = None
) -> CircuitLayer:
    perm = rng.permutation(m) if perm is None else perm
    n_pairs = m // 2
    u = np.repeat(perm[0 : 2 * n_pairs : 2], 2)
    v = np.repeat(perm[1 : 2 * n_pairs : 2], 2)
    which = rng.integers(0, len(blocks), size=n_pairs)
    flip = rng.integers(0, 2, size=n_pairs).astype(bool)  # which gate of the block comes first
    table = np.array([[g for opt in b for g in opt] for b in blocks], dtype=np.int64)  # (B, 6)
    chosen = table[which].reshape(n_pairs, 2, 3)
    chosen[flip] = chosen[flip][:, ::-1]
    code, swapped, arity = chosen.reshape(-1, 3).T
    left = np.where(swapped == 1, v, u)
    right = np.where(arity == 1, left, np.where(swapped == 1, u, v))
    if m % 2:
        left = np.append(left, perm[-1])
        right = np.append(right, perm[-1])
        code = np.append(code, _ONE_INPUT["copy"])
    return CircuitLayer(m, left, right, code.astype(np.uint8))


def _random_layer(
    m: int, gates: list[tuple[str, int, int]], rng: np.random.Generator
) -> CircuitLayer:
    which = rng.integers(0, len(gates), size=m)
    code = np.array([gates[i][1] for i in which], dtype=np.uint8)
    arity = np.array([gates[i][2] for i in which])
    left = rng.integers(0, m, size=m)
    right = (left + rng.integers(1, m, size=m)) % m  # distinct from left
    right = np.where(arity == 1, left, right)
    return CircuitLayer(m, left, right, code)


def active_counts(circuit: Circuit, x: np.ndarray) -> np.ndarray:
    """Number of ones in every layer, shape ``(n_batch, depth + 1)`` (column 0 is the input)."""
    return np.stack([xl.sum(axis=1) for xl in circuit.evaluate(x)], axis=1)


def fraction_sparse(circuit: Circuit, x: np.ndarray, sparsity: int) -> np.ndarray:
    r"""Fraction of inputs whose layers :math:`0..\ell` all have at most ``sparsity`` ones.

    Returns
    -------
    frac : float array, shape ``(depth + 1,)``, non-increasing in :math:`\ell`.
    """
    s = check_int("sparsity", sparsity, low=0)
    ok = np.logical_and.accumulate(active_counts(circuit, x) <= s, axis=1)
    return ok.mean(axis=0)


# --------------------------------------------------------------------------- compiler


class _MatrixPhi:
    """An explicit embedding matrix with the block interface of :class:`Embedding`.

    Like an :class:`Embedding`, its blocks are given in any namespace (moved once, cached).
    """

    def __init__(self, matrix: np.ndarray) -> None:
        mat = np.asarray(matrix)
        if (
            mat.ndim != 2
            or not np.issubdtype(mat.dtype, np.floating)
            or not np.all(np.isfinite(mat))
        ):
            raise ValueError(
                f"an embedding matrix must be a finite 2-d float array (d, m), got {mat.dtype} {mat.shape}"
            )
        self.mat = mat
        self.embed_dim, self.n_features = mat.shape
        self.dtype = mat.dtype.type
        self._moved: dict[str, Any] = {}

    def matrix(self, xp: ModuleType | None = None) -> Any:
        """The matrix ``(d, m)`` in namespace ``xp`` (default NumPy)."""
        if xp is None or name_of(xp) == "numpy":
            return self.mat
        key = name_of(xp)
        if key not in self._moved:
            self._moved[key] = asarray(self.mat, xp)
        return self._moved[key]

    def blocks(self, xp: ModuleType | None = None) -> Iterator[tuple[int, Any]]:
        mat = self.matrix(xp)
        for start in range(0, self.n_features, BLOCK):
            yield start, mat[:, start : min(start + BLOCK, self.n_features)]

    def readout(self, a: Any) -> Any:
        xp = evaluation_namespace(a)
        return asarray(a, xp) @ self.matrix(xp)


Phi = Embedding | np.ndarray


def _as_phi(phi: Phi | _MatrixPhi, name: str) -> Embedding | _MatrixPhi:
    if isinstance(phi, Embedding | _MatrixPhi):
        return phi
    if isinstance(phi, np.ndarray):
        return _MatrixPhi(phi)
    raise ValueError(f"{name} must be an Embedding or a (d, m) array, got {type(phi).__name__}")


def _phi_dtype(phi: Embedding | _MatrixPhi) -> np.dtype:
    return np.dtype(phi.dtype)


def _sparse_times_phiT(S: sp.sparray, phi: Embedding | _MatrixPhi) -> np.ndarray:
    r""":math:`S \Phi^\top` for a sparse ``S`` of shape ``(rows, m)``, block by block: ``(rows, d)``."""
    S = sp.csc_array(S)
    out = np.zeros((S.shape[0], phi.embed_dim), dtype=_phi_dtype(phi))
    for start, blk in phi.blocks():
        part = S[:, start : start + blk.shape[1]]
        if part.nnz:
            out += part @ np.ascontiguousarray(blk.T)
    return out


def _bits_times_phiT(x: Any, phi: Embedding | _MatrixPhi, xp: ModuleType) -> Any:
    r""":math:`x \Phi^\top` for a 0/1 batch ``x`` ``(rows, m)`` in namespace ``xp``: ``(rows, d)``.

    Block by block, each block's ones as a sparse matrix (:func:`~superposition.kernels.sparse_matmul`):
    a row of the result is the sum of its active columns, added in feature order within a block
    (float64, like the bits), then accumulated over blocks in the embedding's dtype.
    """
    dtype = xp.float32 if _phi_dtype(phi) == np.float32 else xp.float64
    bits = xp.astype(x, xp.float64)
    out = xp.zeros((x.shape[0], phi.embed_dim), dtype=dtype)
    for start, blk in phi.blocks(xp):
        part = CSR.from_dense(bits[:, start : start + blk.shape[1]])
        if part.nnz:
            out = xp.astype(out + sparse_matmul(part, xp.matrix_transpose(blk)), dtype)
    return out


def _phi_times_sparse(phi: Embedding | _MatrixPhi, S: sp.sparray) -> np.ndarray:
    r""":math:`\Phi S` for a sparse ``S`` of shape ``(m, cols)``, block by block: ``(d, cols)``."""
    S = sp.csr_array(S)
    out = np.zeros((S.shape[1], phi.embed_dim), dtype=_phi_dtype(phi))
    for start, blk in phi.blocks():
        part = S[start : start + blk.shape[1]]
        if part.nnz:
            out += part.T @ np.ascontiguousarray(blk.T)
    return np.ascontiguousarray(out.T)


def _skip_matrix(
    phi_out: Embedding | _MatrixPhi,
    coef: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    phi_in: Embedding | _MatrixPhi,
) -> np.ndarray:
    r""":math:`\sum_g \varphi'_g\,(c_{1g}\varphi_{u_g} + c_{2g}\varphi_{v_g})^\top`, ``(d, d)``.

    Computed over chunks of output features: the input columns of a chunk are gathered, so
    nothing of shape ``(d, m)`` is held at once.
    """
    d = phi_out.embed_dim
    out = np.zeros((d, phi_in.embed_dim), dtype=_phi_dtype(phi_out))
    per_chunk = max(1, (1 << 21) // (max(d, 1) * BLOCK))  # output blocks per chunk (~16 MB)
    blocks = list(phi_out.blocks())
    for i in range(0, len(blocks), per_chunk):
        group = blocks[i : i + per_chunk]
        lo = group[0][0]
        hi = group[-1][0] + group[-1][1].shape[1]
        c1 = coef[lo:hi, 1].astype(out.dtype)
        c2 = coef[lo:hi, 2].astype(out.dtype)
        g_in = _columns(phi_in, left[lo:hi]) * c1
        if np.any(c2):
            g_in += _columns(phi_in, right[lo:hi]) * c2
        out += np.concatenate([blk for _, blk in group], axis=1) @ g_in.T
    return out


def _columns(phi: Embedding | _MatrixPhi, idx: np.ndarray) -> np.ndarray:
    return phi.columns(idx) if isinstance(phi, Embedding) else phi.mat[:, idx]


def residual_step(a: Any, W_in: Any, b: Any, W_out: Any, W_skip: Any) -> Any:
    r"""One compiled layer on a batch of residuals: :math:`a' = a W_{\mathrm{skip}}^\top +
    \mathrm{ReLU}(a W_{\mathrm{in}}^\top + b)\, W_{\mathrm{out}}^\top`.

    The one forward step of a compiled circuit: :class:`CompiledLayer` and an exported, loaded
    circuit (:mod:`superposition.export`) both apply it.

    Parameters
    ----------
    a : array ``(n_batch, d)``
    W_in : array ``(neurons, d)``
    b : array ``(neurons,)``
    W_out : array ``(d, neurons)``
    W_skip : array ``(d, d)``
        All in the namespace of ``a``.

    Returns
    -------
    array ``(n_batch, d)``
    """
    xp = namespace(a)
    T = xp.matrix_transpose
    return a @ T(W_skip) + xp.maximum(a @ T(W_in) + b, 0.0) @ T(W_out)


def encode_values(x: Any, phi: Phi) -> Any:
    r""":math:`a = \Phi x` for a 0/1 batch ``x`` ``(n_batch, m)`` → ``(n_batch, d)``: a layer's
    values written into the residual stream.

    In the evaluation namespace of ``x``. Block by block, each block's ones a sparse matrix: a
    row is the sum of its active columns, added in feature order within a block, accumulated
    over blocks in the embedding's dtype. :meth:`CompiledCircuit.encode` is this with
    :math:`\Phi_0`.

    Parameters
    ----------
    x : bool or 0/1 array ``(n_batch, m)``
    phi : Embedding or array ``(d, m)``
    """
    f = _as_phi(phi, "phi")
    xp = evaluation_namespace(x)
    bits = check_bits(to_numpy(x), f.n_features, "x")
    return _bits_times_phiT(asarray(bits, xp), f, xp)


def decode_values(a: Any, phi: Phi) -> Any:
    r""":math:`\hat x = \Phi^\top a` ``(n_batch, m)``: every value read from residuals ``a`` ``(n_batch, d)``.

    In the evaluation namespace of ``a``. :meth:`CompiledCircuit.decode` is this with
    :math:`\Phi_\ell`.
    """
    return _as_phi(phi, "phi").readout(a)


@dataclass(frozen=True, eq=False)
class CompiledLayer:
    r"""One circuit layer compiled to an MLP layer on the residual stream.

    .. math:: a' = W_{\mathrm{skip}}\, a + W_{\mathrm{out}}\,\mathrm{ReLU}(W_{\mathrm{in}}\, a + b)

    with :math:`a = \Phi_{\mathrm{in}} x` of dimension :math:`d` and, for the exact gate values
    :math:`y`, :math:`a' \approx \Phi_{\mathrm{out}} y`. All arrays are plain NumPy (built with
    NumPy and SciPy); calling the layer on arrays of another namespace moves them there once
    (:meth:`weights_in`).

    Attributes
    ----------
    W_in : array ``(neurons, d)``
        :math:`W \Phi_{\mathrm{in}}^\top`: neuron :math:`i` reads
        :math:`\sum_{k \in S_i} \varphi_k \cdot a`, :math:`S_i` its wired features.
    b : array ``(neurons,)``
        :math:`-1` (the U-AND bias).
    W_out : array ``(d, neurons)``
        :math:`\Phi_{\mathrm{out}} C_3 R`: the product :math:`x_u x_v` is read as the mean of
        the neurons :math:`\Gamma(u,v)` wired to both, times :math:`c_3` of each gate using it.
    W_skip : array ``(d, d)``
        :math:`\Phi_{\mathrm{out}} C_{\mathrm{lin}} \Phi_{\mathrm{in}}^\top`, the linear terms
        :math:`c_1 x_u + c_2 x_v` read from the residual and written to the gate's direction.
    phi_in, phi_out : Embedding or array ``(d, m)``
        Embeddings of the layer's inputs and outputs (their columns are the readouts).
    wiring : scipy sparse array ``(neurons, n_features)``
        The 0/1 matrix :math:`W`.
    pairs : int array ``(P, 2)``
        The products :math:`(u, v)`, :math:`u < v`, that some gate needs.
    readout_sizes : int array ``(P,)``
        :math:`|\Gamma(u, v)|`; a product with none reads 0.
    """

    W_in: np.ndarray
    b: np.ndarray
    W_out: np.ndarray
    W_skip: np.ndarray
    phi_in: Phi
    phi_out: Phi
    wiring: sp.csr_array = field(repr=False)
    pairs: np.ndarray = field(repr=False)
    readout_sizes: np.ndarray = field(repr=False)

    @property
    def embed_dim(self) -> int:
        """Residual dimension :math:`d`."""
        return int(self.W_skip.shape[0])

    @property
    def neurons(self) -> int:
        return int(self.W_in.shape[0])

    def __call__(self, a: Any) -> Any:
        """Apply the layer to a batch of residuals ``a`` ``(n_batch, d)`` → ``(n_batch, d)``.

        In the evaluation namespace of ``a`` (the weights are moved there once and cached).
        """
        xp = evaluation_namespace(a)
        a = asarray(a, xp)
        if len(a.shape) != 2 or a.shape[1] != self.embed_dim:
            raise ValueError(
                f"a must have shape (n_samples, {self.embed_dim}), got {tuple(a.shape)}"
            )
        return residual_step(a, *self.weights_in(xp))

    def weights_in(self, xp: ModuleType) -> tuple[Any, Any, Any, Any]:
        """``(W_in, b, W_out, W_skip)`` in namespace ``xp`` (moved once per namespace, cached)."""
        key = name_of(xp)
        cache = self.__dict__.setdefault("_moved", {})
        if key not in cache:
            arrays = (self.W_in, self.b, self.W_out, self.W_skip)
            cache[key] = arrays if key == "numpy" else tuple(asarray(w, xp) for w in arrays)
        return cache[key]

    def arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays ``W_in, b, W_out, W_skip, phi_in, phi_out`` (embeddings materialised)."""
        return {
            "W_in": self.W_in,
            "b": self.b,
            "W_out": self.W_out,
            "W_skip": self.W_skip,
            "phi_in": _as_phi(self.phi_in, "phi_in").matrix(),
            "phi_out": _as_phi(self.phi_out, "phi_out").matrix(),
        }


def compile_layer(
    layer: CircuitLayer,
    phi_in: Phi,
    phi_out: Phi,
    *,
    neurons: int | None = None,
    neuron_wiring: str = "targeted",
    pairs_per_neuron: int | None = None,
    p: float | None = None,
    seed: object = 0,
) -> CompiledLayer:
    r"""Compile one circuit layer into one MLP layer acting on :math:`a = \Phi_{\mathrm{in}} x`.

    Parameters
    ----------
    layer : CircuitLayer
    phi_in : Embedding or array ``(d, layer.n_features)``
    phi_out : Embedding or array ``(d, layer.n_gates)``
        Same :math:`d` as ``phi_in``.
    neurons : int, optional
        MLP neurons :math:`n` (default :math:`d`).
    neuron_wiring : {"targeted", "bernoulli"}
        How the 0/1 wiring :math:`W` (``(n, m_in)``) of the U-AND neurons is drawn:

        - ``"targeted"``: only the :math:`P` products the layer needs are wired. The
          :math:`nq` slots of :math:`n` neurons × ``pairs_per_neuron`` :math:`q` are dealt to the
          :math:`P` pairs as evenly as possible in random order, so every pair has
          :math:`\lfloor nq/P \rfloor` or :math:`\lceil nq/P \rceil` neurons; neuron :math:`i`
          is wired to both features of each of its :math:`q` pairs. Default
          :math:`q = \max(1, \lceil P/n \rceil)`, the fewest that give every product a neuron:
          with :math:`q = 1` no neuron reads two pairs, so no other active feature can leak into
          a product (measured: :math:`q = 1` beats larger :math:`q` at equal :math:`n`).
        - ``"bernoulli"``: the paper's universal U-AND, :math:`W_{ik} \sim` Bernoulli(:math:`p`)
          for every input feature, default :math:`p = \min(1, 3/\sqrt n)`
          (:math:`|\Gamma| \approx np^2 = 9`). A product with empty :math:`\Gamma` reads 0.
    pairs_per_neuron : int, optional
        :math:`q` for ``"targeted"``.
    p : float, optional
        Connection probability for ``"bernoulli"``.
    seed : int, SeedSequence or Generator
        Randomness of the wiring.

    Returns
    -------
    CompiledLayer

    Notes
    -----
    Gate :math:`g` with inputs :math:`(u, v)` and polynomial :math:`c_1x + c_2y + c_3xy`
    (:math:`c_0 = 0` for every supported gate) is emulated as

    .. math:: \hat y_g = c_1\, \varphi_u\cdot a + c_2\, \varphi_v\cdot a
        + c_3\, \frac1{|\Gamma(u,v)|}\sum_{i\in\Gamma(u,v)}
        \mathrm{ReLU}\Big(\sum_{k\in S_i}\varphi_k\cdot a - 1\Big),

    and written back as :math:`a' = \sum_g \hat y_g\, \varphi'_g`. A neuron in
    :math:`\Gamma(u,v)` has pre-activation :math:`x_u + x_v - 1` plus the other active
    features it is wired to plus superposition noise of variance about
    :math:`|S_i|\,\|a\|^2/d`, so the product is exact when :math:`\Phi` is orthonormal and no
    other active feature shares a neuron.
    """
    if not isinstance(layer, CircuitLayer):
        raise ValueError(f"layer must be a CircuitLayer, got {type(layer).__name__}")
    fin, fout = _as_phi(phi_in, "phi_in"), _as_phi(phi_out, "phi_out")
    if fin.n_features != layer.n_features:
        raise ValueError(
            f"phi_in must have {layer.n_features} columns (layer inputs), got {fin.n_features}"
        )
    if fout.n_features != layer.n_gates:
        raise ValueError(
            f"phi_out must have {layer.n_gates} columns (layer gates), got {fout.n_features}"
        )
    d = fin.embed_dim
    if fout.embed_dim != d:
        raise ValueError(f"phi_out must have {d} rows like phi_in, got {fout.embed_dim}")
    n = d if neurons is None else check_int("neurons", neurons, low=1)
    check_choice("neuron_wiring", neuron_wiring, NEURON_WIRINGS)
    rng = as_generator(seed)
    m_in, m_out = layer.n_features, layer.n_gates
    dtype = _phi_dtype(fin)

    coef = layer.coefficients
    prod = np.flatnonzero(coef[:, 3])
    uv = np.sort(np.stack([layer.left[prod], layer.right[prod]], axis=1), axis=1)
    pairs, pair_of = np.unique(uv, axis=0, return_inverse=True)
    pairs = pairs.reshape(-1, 2)
    P = pairs.shape[0]

    if neuron_wiring == "targeted":
        if p is not None:
            raise ValueError("p applies to neuron_wiring='bernoulli' only")
        q = (
            max(1, -(-P // n))
            if pairs_per_neuron is None
            else check_int("pairs_per_neuron", pairs_per_neuron, low=1)
        )
        if P:
            deal = rng.permutation(np.arange(n * q) % P).reshape(n, q)
            cols = pairs[deal].reshape(n, 2 * q)
            rows = np.repeat(np.arange(n), 2 * q)
            W = sp.csr_array((np.ones(rows.size), (rows, cols.ravel())), shape=(n, m_in))
            W.sum_duplicates()
            W.data[:] = 1.0
        else:
            W = sp.csr_array((n, m_in))
    else:
        if pairs_per_neuron is not None:
            raise ValueError("pairs_per_neuron applies to neuron_wiring='targeted' only")
        pp = (
            min(1.0, 3.0 / np.sqrt(n))
            if p is None
            else check_real("p", p, low=0.0, high=1.0, low_open=True)
        )
        wiring = sample_wiring(m_in, n, pp, seed=rng)  # the library's one Bernoulli sampler
        W = sp.csr_array(
            sp.csc_array((np.ones(wiring.nnz), wiring.indices, wiring.host_indptr), shape=(n, m_in))
        )

    # readout R: mean over Gamma(u, v) = neurons wired to both u and v
    Wc = sp.csc_array(W)
    gamma = sp.csc_array(Wc[:, pairs[:, 0]] * Wc[:, pairs[:, 1]]) if P else sp.csc_array((n, 0))
    sizes = np.asarray(gamma.sum(axis=0)).ravel().astype(np.int64)
    scale = np.divide(1.0, sizes, out=np.zeros(P), where=sizes > 0)
    R = sp.csr_array(gamma @ sp.diags_array(scale)).T if P else sp.csr_array((0, n))  # (P, n)
    C3 = sp.csr_array((coef[prod, 3].astype(np.float64), (prod, pair_of.ravel())), shape=(m_out, P))
    M = sp.csr_array(C3 @ R)  # (m_out, n)

    W_in = _sparse_times_phiT(W, fin)
    W_out = _phi_times_sparse(fout, M)
    W_skip = _skip_matrix(fout, coef, layer.left, layer.right, fin)
    b = -np.ones(n, dtype=dtype)
    for arr in (W_in, b, W_out, W_skip):
        arr.setflags(write=False)
    return CompiledLayer(
        W_in=W_in,
        b=b,
        W_out=W_out,
        W_skip=W_skip,
        phi_in=phi_in,
        phi_out=phi_out,
        wiring=sp.csr_array(W),
        pairs=pairs,
        readout_sizes=sizes,
    )


@dataclass(frozen=True, eq=False)
class CompiledCircuit:
    r"""A circuit compiled layer by layer; residual :math:`a^{(\ell)} \approx \Phi_\ell x^{(\ell)}`.

    Attributes
    ----------
    circuit : Circuit
    layers : tuple of CompiledLayer, length ``depth``
    embeddings : tuple of Embedding or array, length ``depth + 1``
        :math:`\Phi_0, \dots, \Phi_L`, each ``(d, m_\ell)``; layer :math:`\ell` reads with
        :math:`\Phi_{\ell-1}` and writes with :math:`\Phi_\ell`.
    """

    circuit: Circuit
    layers: tuple[CompiledLayer, ...]
    embeddings: tuple[Phi, ...]

    @property
    def embed_dim(self) -> int:
        """Residual dimension :math:`d`."""
        return self.layers[0].embed_dim

    @property
    def neurons(self) -> int:
        """MLP neurons per layer :math:`n`."""
        return self.layers[0].neurons

    def phi(self, ell: int) -> Embedding | _MatrixPhi:
        r"""Embedding :math:`\Phi_\ell` with its block interface (kept, so its moved blocks are)."""
        ell = check_int("layer", ell, low=0, high=self.circuit.depth)
        cache = self.__dict__.setdefault("_phis", {})
        if ell not in cache:
            cache[ell] = _as_phi(self.embeddings[ell], "phi")
        return cache[ell]

    def encode(self, x: Any) -> Any:
        r""":math:`a^{(0)} = \Phi_0 x` for a 0/1 batch ``x`` ``(n_batch, m_0)`` → ``(n_batch, d)``.

        In the evaluation namespace of ``x``.
        """
        return encode_values(x, self.phi(0))

    def decode(self, a: Any, layer: int) -> Any:
        r""":math:`\hat x^{(\ell)} = \Phi_\ell^\top a`, ``(n_batch, m_\ell)``, for ``layer`` :math:`\ell`.

        In the evaluation namespace of ``a``.
        """
        ell = check_int("layer", layer, low=0, high=self.circuit.depth)
        return decode_values(a, self.phi(ell))

    def residuals(self, x: Any) -> Iterator[Any]:
        r"""Yield :math:`a^{(0)}, a^{(1)}, \dots, a^{(L)}`, one layer at a time (namespace of ``x``)."""
        a = self.encode(x)
        yield a
        for layer in self.layers:
            a = layer(a)
            yield a

    def arrays(self) -> dict[str, Any]:
        """Plain arrays: ``{"embeddings": [Φ_0, ..., Φ_L], "layers": [layer.arrays() without Φ]}``."""
        drop = ("phi_in", "phi_out")
        return {
            "embeddings": [_as_phi(e, "phi").matrix() for e in self.embeddings],
            "layers": [
                {k: v for k, v in layer.arrays().items() if k not in drop} for layer in self.layers
            ],
        }


def compile_circuit(
    circuit: Circuit,
    embed_dim: int,
    *,
    neurons: int | None = None,
    neuron_wiring: str = "targeted",
    pairs_per_neuron: int | None = None,
    p: float | None = None,
    embedding_kind: str = "gaussian",
    embeddings: Sequence[Phi] | None = None,
    dtype: type = np.float64,
    seed: object = 0,
) -> CompiledCircuit:
    r"""Compile every layer of ``circuit`` for a residual stream of dimension :math:`d` = ``embed_dim``.

    Parameters
    ----------
    circuit : Circuit
    embed_dim : int
        Residual dimension :math:`d`.
    neurons : int, optional
        MLP neurons per layer (default ``embed_dim``).
    neuron_wiring, pairs_per_neuron, p
        See :func:`compile_layer`.
    embedding_kind : {"gaussian", "sign"}
        Kind of the random embeddings :math:`\Phi_\ell` (:class:`~superposition.Embedding`).
    embeddings : sequence of Embedding or array, optional
        :math:`\Phi_0, \dots, \Phi_L` to use instead of fresh random ones (each ``(d, m_\ell)``).
    dtype : float32 or float64
        Of the random embeddings (and so of the weights).
    seed : int, SeedSequence or Generator
        Draws the seeds of the embeddings (one per layer of values) and of each layer's wiring.
        Layer :math:`\ell` depends only on the seed and :math:`\ell`: compiling the first
        :math:`k` layers of a circuit gives the first :math:`k` layers of the deeper network.
    """
    if not isinstance(circuit, Circuit):
        raise ValueError(f"circuit must be a Circuit, got {type(circuit).__name__}")
    d = check_int("embed_dim", embed_dim, low=1)
    n = d if neurons is None else check_int("neurons", neurons, low=1)
    check_choice("embedding_kind", embedding_kind, EMBEDDING_KINDS)
    rng = as_generator(seed)
    L = circuit.depth
    # one child generator per layer of values: layer l's embedding seed and wiring depend on
    # l only, so a deeper circuit's network extends a shallower one's (same prefix, same bits)
    children = rng.spawn(L + 1)
    emb_seeds = [int(c.integers(0, 2**62)) for c in children]
    layer_rngs = children[1:]
    if embeddings is None:
        embs: tuple[Phi, ...] = tuple(
            Embedding(m, d, embedding_kind=embedding_kind, seed=int(s), dtype=dtype)
            for m, s in zip(circuit.n_features_per_layer, emb_seeds, strict=True)
        )
    else:
        embs = tuple(embeddings)
        if len(embs) != L + 1:
            raise ValueError(f"embeddings must have depth + 1 = {L + 1} entries, got {len(embs)}")
        for i, (e, m) in enumerate(zip(embs, circuit.n_features_per_layer, strict=True)):
            f = _as_phi(e, f"embeddings[{i}]")
            if f.embed_dim != d or f.n_features != m:
                raise ValueError(
                    f"embeddings[{i}] must have shape ({d}, {m}), got ({f.embed_dim}, {f.n_features})"
                )
    layers = tuple(
        compile_layer(
            layer,
            embs[i],
            embs[i + 1],
            neurons=n,
            neuron_wiring=neuron_wiring,
            pairs_per_neuron=pairs_per_neuron,
            p=p,
            seed=layer_rngs[i],
        )
        for i, layer in enumerate(circuit.layers)
    )
    return CompiledCircuit(circuit, layers, embs)


# --------------------------------------------------------------------------- emulation


def readout_stats(xhat: Any, x: Any, threshold: float = 0.5) -> dict[str, float]:
    r"""Readout error and bit accuracy of decoded values against exact bits.

    Parameters
    ----------
    xhat : float array ``(n_batch, m)``
        Decoded values, e.g. :math:`\Phi^\top a`; the statistics are computed in its
        evaluation namespace.
    x : bool array ``(n_batch, m)``
        Exact values.
    threshold : float
        A value decodes to 1 when :math:`\hat x > ` ``threshold``.

    Returns
    -------
    dict
        ``max_abs_error`` :math:`\max |\hat x - x|` and ``mean_abs_error`` (mean over all
        ``n_batch × m`` entries); ``bit_accuracy``: fraction of the ``n_batch × m`` entries with
        :math:`[\hat x > \tfrac12] = x`; ``input_accuracy``: fraction of inputs with every bit right.
    """
    xp = evaluation_namespace(xhat, x)
    xhat = asarray(xhat, xp)
    x_np = to_numpy(x)  # the exact bits are checked in NumPy, then moved
    if tuple(xhat.shape) != x_np.shape or x_np.ndim != 2:
        raise ValueError(
            f"xhat must have the shape of x {x_np.shape} (n_samples, m), got {tuple(xhat.shape)}"
        )
    bits = asarray(check_bits(x_np, x_np.shape[1], "x"), xp)
    t = check_real("threshold", threshold)
    if not x_np.size:
        return {
            "max_abs_error": 0.0,
            "mean_abs_error": 0.0,
            "bit_accuracy": 1.0,
            "input_accuracy": 1.0,
        }
    err = xp.abs(xhat - xp.astype(bits, xhat.dtype))
    right = (xhat > t) == bits
    return {
        "max_abs_error": float(xp.max(err)),
        "mean_abs_error": float(xp.mean(err)),
        "bit_accuracy": float(xp.mean(xp.astype(right, xp.float64))),
        "input_accuracy": float(xp.mean(xp.astype(xp.all(right, axis=1), xp.float64))),
    }


@dataclass(frozen=True)
class EmulationReport:
    r"""Per-layer comparison of a compiled network with its exact circuit.

    Every field is a tuple of length ``depth + 1``; entry 0 is the input :math:`\Phi_0 x`
    itself (pure superposition readout error), entry :math:`\ell` the output of layer
    :math:`\ell`. See :func:`readout_stats` for the definitions.
    """

    max_abs_error: tuple[float, ...]
    mean_abs_error: tuple[float, ...]
    bit_accuracy: tuple[float, ...]
    input_accuracy: tuple[float, ...]
    max_active: tuple[int, ...]
    """Largest number of ones in the exact layer over the batch."""
    noise_energy: tuple[float, ...] = ()
    r"""Mean over the batch of :math:`\|a^{(\ell)} - \Phi_\ell x^{(\ell)}\|^2` (compare
    :func:`predicted_noise`)."""
    inputs_with_and: tuple[float, ...] = ()
    r"""Fraction of the batch on which some gate of layer :math:`\ell` has its AND term equal
    to 1 (:meth:`CircuitLayer.true_ands`): the inputs that test a product computed as 1, not
    only the linear terms and products kept at 0. 0 at :math:`\ell = 0`."""

    @property
    def depth(self) -> int:
        return len(self.max_abs_error) - 1

    def layer(self, ell: int) -> dict[str, float]:
        """The figures of layer ``ell`` as a dict."""
        check_int("ell", ell, low=0, high=self.depth)
        return {
            "layer": ell,
            "max_abs_error": self.max_abs_error[ell],
            "mean_abs_error": self.mean_abs_error[ell],
            "bit_accuracy": self.bit_accuracy[ell],
            "input_accuracy": self.input_accuracy[ell],
            "max_active": self.max_active[ell],
            "noise_energy": self.noise_energy[ell],
            "inputs_with_and": self.inputs_with_and[ell],
        }

    def to_dict(self) -> dict[str, Any]:
        """``{"layers": [layer(0), ..., layer(L)], "final": layer(L)}``."""
        return {
            "layers": [self.layer(i) for i in range(self.depth + 1)],
            "final": self.layer(self.depth),
        }


def emulate(compiled: CompiledCircuit, x: np.ndarray, *, threshold: float = 0.5) -> EmulationReport:
    r"""Run the compiled network on a batch and compare every layer with the exact circuit.

    The network runs on its own outputs (errors compound); at each layer :math:`\ell` the
    residual is decoded with :math:`\hat x^{(\ell)} = \Phi_\ell^\top a^{(\ell)}` and compared
    with the exact :math:`x^{(\ell)}`. Memory is one layer at a time.

    Parameters
    ----------
    compiled : CompiledCircuit
    x : bool or 0/1 array ``(n_batch, m_0)``
        Inputs, e.g. ``to_dense(sample_sparse(m, s, K, seed), m)``.
    threshold : float
        Bit decision threshold (default ½).
    """
    if not isinstance(compiled, CompiledCircuit):
        raise ValueError(f"compiled must be a CompiledCircuit, got {type(compiled).__name__}")
    xp = evaluation_namespace(x)
    xl = check_bits(to_numpy(x), compiled.circuit.n_features, "x")  # the exact circuit: NumPy
    stats = []
    for ell, a in enumerate(compiled.residuals(asarray(xl, xp))):
        with_and = 0.0
        if ell:
            layer = compiled.circuit.layers[ell - 1]
            with_and = float(layer.true_ands(xl).any(axis=1).mean()) if xl.size else 0.0
            xl = layer.evaluate(xl)
        bits = asarray(xl, xp)
        st = readout_stats(compiled.decode(a, ell), bits, threshold)
        st["inputs_with_and"] = with_and
        st["max_active"] = int(xl.sum(axis=1).max()) if xl.size else 0
        clean = _bits_times_phiT(bits, compiled.phi(ell), xp)
        st["noise_energy"] = float(xp.mean(xp.sum((a - clean) ** 2, axis=1)))
        stats.append(st)
    keys = (
        "max_abs_error",
        "mean_abs_error",
        "bit_accuracy",
        "input_accuracy",
        "max_active",
        "noise_energy",
        "inputs_with_and",
    )
    return EmulationReport(*(tuple(s[k] for s in stats) for k in keys))


def predicted_noise(
    circuit: Circuit, embed_dim: int, sparsity: int
) -> tuple[np.ndarray, np.ndarray]:
    r"""Heuristic noise of the emulation without correction, layer by layer.

    Let :math:`E_\ell = \mathbb E\|a^{(\ell)} - \Phi_\ell x^{(\ell)}\|^2` (the noise energy
    of the residual) and :math:`\sigma_\ell^2` the variance of one feature's readout error
    :math:`\varphi_k\cdot a^{(\ell)} - x^{(\ell)}_k`. With random unit columns (overlaps of
    variance :math:`1/d`), :math:`s` active features and noise :math:`a - \Phi x = \Phi z`:

    .. math::
        \sigma_\ell^2 = \frac{s}{d} + E_\ell\Big(\frac1{m_\ell} + \frac1d\Big),
        \qquad
        E_{\ell+1} = K_{\ell+1}\, \sigma_\ell^2,
        \quad K_{\ell+1} = \sum_g (c_{1g}^2 + c_{2g}^2),
        \qquad E_0 = 0 .

    The first term of :math:`\sigma^2` is crosstalk from the active features, the second the
    noise :math:`z` carried along (its own coordinate, :math:`\|z\|^2/m`, plus crosstalk,
    :math:`\|z\|^2/d`). Every gate's linear terms copy the readout noise of its inputs, active
    or not, and write it back with :math:`\Phi_{\ell+1}`; products are ignored (a U-AND
    neuron clips the noise of inactive pairs). With :math:`K = \kappa m` the energy grows
    by a factor :math:`\kappa(1 + m/d)` per layer: geometrically for :math:`m \gtrsim d`
    (:math:`\kappa = 1` for the default gate set).

    Returns
    -------
    energy : array ``(depth + 1,)``
        :math:`E_\ell`.
    readout_sd : array ``(depth + 1,)``
        :math:`\sigma_\ell`; the mean absolute readout error is about
        :math:`\sqrt{2/\pi}\,\sigma_\ell` when the error is Gaussian.
    """
    if not isinstance(circuit, Circuit):
        raise ValueError(f"circuit must be a Circuit, got {type(circuit).__name__}")
    d = check_int("embed_dim", embed_dim, low=1)
    s = check_int("sparsity", sparsity, low=0)
    sizes = circuit.n_features_per_layer
    energy = np.zeros(circuit.depth + 1)
    var = np.zeros(circuit.depth + 1)
    var[0] = s / d
    for ell, layer in enumerate(circuit.layers, start=1):
        c = layer.coefficients
        energy[ell] = float((c[:, 1] ** 2 + c[:, 2] ** 2).sum()) * var[ell - 1]
        var[ell] = s / d + energy[ell] * (1.0 / sizes[ell] + 1.0 / d)
    return energy, np.sqrt(var)
