r"""Correction with fewer ReLUs than features: clipped units that read groups of features.

The per-feature denoiser (:class:`~superposition.FeatureDenoiser`) spends two ReLUs on every
feature. The construction the paper's heuristic points to (a reconstruction) spends two on every
*group*: :math:`n_u` units, unit :math:`i` reading the features of its group :math:`S_i` on the
random embedding :math:`\Phi`,

.. math::
    z_i = \sum_{k \in S_i} \varphi_k\cdot a,\qquad
    u_i = \mathrm{clip}\Big(\frac{z_i - \ell}{h - \ell}, 0, 1\Big) \quad(\text{two ReLUs}),

each feature in :math:`c` groups (``blocks``), one of each of :math:`c` *parallel classes* (each
class a partition of the :math:`m` features into ``groups_per_class`` groups of size
:math:`G \approx m/g`), and two features in at most one common group (:func:`group_design`).
A feature's value is the mean of its :math:`c` units, :math:`v_k = \frac1c\sum_{i \ni k} u_i`.

Where the units write (``write``):

``"phi"`` (the issue's design)
    Back through :math:`\Phi`: :math:`a' = \Phi v = \frac1c \Phi B u` with the 0/1 incidence
    :math:`B` ``(m, n_u)``. Every later read of a feature goes through :math:`\Phi` again.
``"units"`` (the research report's design)
    Into an orthonormal unit basis: :math:`a' = E u` with :math:`E` the first :math:`n_u`
    standard basis vectors (any orthonormal :math:`E` computes the same function; this one makes
    the write a copy), so :math:`n_u \le d`. The next layer reads feature :math:`k` as
    :math:`\psi_k\cdot a'` with :math:`\psi_k = \frac1c\sum_{i\ni k} e_i`: exactly
    :math:`v_k`, with no crosstalk. Gate layers still write through :math:`\Phi`, so the state
    alternates between :math:`\Phi` (after a gate layer) and the unit basis (after a correction).

Why the parameters are constrained
----------------------------------
With pairwise overlap at most one, an inactive feature shares a unit with at most :math:`s`
active ones, so its value is at most :math:`t_k/c \le s/c` (*junk*); an active feature whose
units all hold only it reads 1, and one wrong unit costs it :math:`1/c`. A copy gate carries
a junk value onto an unrelated feature, whose :math:`c` units then all read it, so the next
correction must clip it: :math:`\ell > s/c`; and a surviving active value (at least
:math:`1 - 1/c`) must pass: :math:`h < 1 - 1/c`. Both need :math:`c > 2s`
(:func:`check_grouped`). The unit noise after a copy layer is measured to follow
:math:`G|v|^2(2/d + m/d^2)` (``"phi"``) and :math:`G|v|^2/d` (``"units"``), with
:math:`|v|^2 \approx s(1 + (G-1)/c)`; at :math:`n_u = d` units this gives
:math:`m \propto d^{4/3}` and :math:`m \propto d^{3/2}` respectively.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from ._validate import as_generator, check_choice, check_clip, check_int, check_sparsity
from .backend import namespace
from .correction import clipped_unit, clipped_unit_weights
from .embedding import Embedding, indicator
from .kernels import CSR, sparse_matmul

__all__ = [
    "GROUPED_CLIP",
    "WRITES",
    "GroupedCorrection",
    "check_grouped",
    "group_design",
    "group_incidence",
]

WRITES = ("units", "phi")
"""Where a grouped correction writes: an orthonormal unit basis, or back through Φ."""
GROUPED_CLIP = (0.6, 0.7)
"""Default clip thresholds of the grouped units: above the junk ``s/c = 3/7`` with margin and
below the weakest surviving active value ``1 - 1/c = 6/7`` (c = 7, s = 3). Measured (research
for issue 17, copy circuit, d = 2048 and 4096): (0.6, 0.7) kept the most features of the pairs
tried, (0.45, 0.6) less than half as many."""


def check_grouped(blocks: int, sparsity: int, lo: float, hi: float) -> None:
    r"""``ValueError`` unless :math:`c > 2s`, :math:`\ell > s/c` and :math:`h < 1 - 1/c`.

    The junk of an inactive feature is at most :math:`s/c` and must stay below the lower clip
    threshold; an active feature with one wrong unit reads :math:`1 - 1/c`, which must clear the
    upper one (see the module docstring).
    """
    c = check_int("blocks", blocks, low=1)
    s = check_int("sparsity", sparsity, low=1)
    check_clip(lo, hi)
    if not c > 2 * s:
        raise ValueError(f"blocks must be > 2 * sparsity = {2 * s} (junk s/c < 1/2), got {c}")
    if not lo > s / c:
        raise ValueError(
            f"lo must be > sparsity / blocks = {s / c:.4g} (the largest junk), got {lo}"
        )
    if not hi < 1 - 1 / c:
        raise ValueError(
            f"hi must be < 1 - 1/blocks = {1 - 1 / c:.4g} (an active value with one wrong unit), "
            f"got {hi}"
        )


def group_design(
    n_features: int, groups_per_class: int, blocks: int, seed: object = 0
) -> np.ndarray:
    r"""Groups of features: each feature in one group of each of ``blocks`` parallel classes,
    two features in at most one common group.

    Parameters
    ----------
    n_features : int
        :math:`m`.
    groups_per_class : int
        :math:`g`: groups of one class (sizes :math:`\lfloor m/g\rfloor` or
        :math:`\lceil m/g \rceil`, one more where the placement needed it).
    blocks : int
        :math:`c`: classes, so groups (units) per feature; :math:`n_u = cg` units in all.
    seed : int, SeedSequence or Generator

    Returns
    -------
    groups : int64 array ``(m, c)``
        ``groups[k, j]`` is feature :math:`k`'s unit in class :math:`j`, numbered
        :math:`jg + \gamma` (:math:`\gamma` its group in the class).

    Raises
    ------
    ValueError
        When a feature cannot be placed without sharing two groups with another (about
        :math:`cG \gtrsim g`: too many features for the groups).

    Notes
    -----
    Every class starts as a random balanced partition; in classes after the first, one feature
    of every pair that would share two groups is taken out and placed again, in random order,
    into a random one of the least loaded groups whose members share no earlier group with it. The result is checked (:func:`group_incidence`'s Gram matrix has off-diagonal entries
    at most 1).
    """
    m = check_int("n_features", n_features, low=1)
    g = check_int("groups_per_class", groups_per_class, low=1, high=m)
    c = check_int("blocks", blocks, low=1)
    rng = as_generator(seed)
    groups = np.empty((m, c), dtype=np.int64)
    groups[:, 0] = rng.permutation(m) % g
    for j in range(1, c):
        # a random balanced partition, then the features that would share two groups with
        # another (one of each such pair) are taken out and placed one by one
        groups[:, j] = rng.permutation(m) % g
        bad = np.zeros(m, dtype=bool)
        for i in range(j):
            key = groups[:, j] * g + groups[:, i]
            order = np.argsort(key, kind="stable")
            same = key[order][1:] == key[order][:-1]
            bad[order[1:][same]] = True
        # used[i, w, γ]: group γ of class j holds a feature whose class-i group is w
        used = np.zeros((j, g, g), dtype=bool)
        earlier = np.arange(j)
        kept = np.flatnonzero(~bad)
        for i in range(j):
            used[i, groups[kept, i], groups[kept, j]] = True
        load = np.bincount(groups[kept, j], minlength=g)
        for k in rng.permutation(np.flatnonzero(bad)):
            ok = ~used[earlier, groups[k, :j]].any(axis=0)
            if not ok.any():
                raise ValueError(
                    f"cannot place feature {k} in class {j}: {m} features in {g} groups per "
                    f"class with {c} classes share two groups (use more groups_per_class)"
                )
            pick = np.flatnonzero(ok & (load == load[ok].min()))
            gamma = int(pick[rng.integers(pick.size)])
            groups[k, j] = gamma
            load[gamma] += 1
            used[earlier, groups[k, :j], gamma] = True
    groups += np.arange(c, dtype=np.int64) * g
    gram = group_incidence(groups, c * g)
    gram = (gram @ gram.T).tocoo()
    off = gram.row != gram.col
    if off.any() and gram.data[off].max() > 1:  # pragma: no cover - the placement prevents it
        raise AssertionError("two features share two groups")
    return groups


def group_incidence(groups: np.ndarray, n_units: int) -> sp.csr_array:
    """The 0/1 incidence :math:`B` ``(m, n_units)`` of ``groups`` ``(m, c)`` (float64, CSR)."""
    grp = np.asarray(groups)
    if grp.ndim != 2 or not np.issubdtype(grp.dtype, np.integer):
        raise ValueError(
            f"groups must be an integer array (n_features, blocks), got {grp.dtype} {grp.shape}"
        )
    n = check_int("n_units", n_units, low=1)
    if grp.size and (grp.min() < 0 or grp.max() >= n):
        raise ValueError(f"groups must hold units between 0 and {n - 1}")
    m, c = grp.shape
    rows = np.repeat(np.arange(m), c)
    return sp.csr_array((np.ones(m * c), (rows, grp.ravel())), shape=(m, n))


@dataclass(frozen=True, eq=False)
class GroupedCorrection:
    r"""A correction layer of :math:`n_u` clipped units reading groups of features (:math:`2n_u` neurons).

    Parameters
    ----------
    embedding : Embedding
        :math:`\Phi` ``(d, m)``: what the units read (and, for ``write="phi"``, write).
    groups : int array ``(m, c)``
        :func:`group_design`'s output.
    sparsity : int
        :math:`s` the layer is built for (checked: :func:`check_grouped`).
    lo, hi : float
        Clip thresholds (default :data:`GROUPED_CLIP`).
    write : {"units", "phi"}
        See the module docstring.

    Notes
    -----
    **Guarantee.** If every unit's read is inside its margin (:math:`z_i < \ell` for a unit with
    no active feature, :math:`> h` for one with an active feature), every unit is exactly 0 or 1:
    the output's feature values are exactly :math:`v_k = t_k/c` with :math:`t_k` the units of
    :math:`k` holding an active feature, so 1 for an active feature and at most :math:`s/c < \ell`
    for an inactive one, whatever the input noise was.
    """

    embedding: Embedding
    groups: np.ndarray
    sparsity: int
    lo: float = GROUPED_CLIP[0]
    hi: float = GROUPED_CLIP[1]
    write: str = "units"

    def __post_init__(self) -> None:
        if not isinstance(self.embedding, Embedding):
            raise ValueError(f"embedding must be an Embedding, got {type(self.embedding).__name__}")
        grp = np.asarray(self.groups)
        if grp.ndim != 2 or grp.shape[0] != self.embedding.n_features:
            raise ValueError(
                f"groups must have shape ({self.embedding.n_features}, blocks), got {grp.shape}"
            )
        check_choice("write", self.write, WRITES)
        check_sparsity(self.sparsity, self.n_features)
        check_grouped(self.blocks, self.sparsity, self.lo, self.hi)
        if self.write == "units" and self.n_units > self.embed_dim:
            raise ValueError(
                f"write='units' needs n_units <= embed_dim = {self.embed_dim}, got {self.n_units}"
            )

    @property
    def n_features(self) -> int:
        return self.embedding.n_features

    @property
    def embed_dim(self) -> int:
        return self.embedding.embed_dim

    @property
    def blocks(self) -> int:
        """:math:`c`: units per feature."""
        return int(np.asarray(self.groups).shape[1])

    @property
    def n_units(self) -> int:
        return int(np.asarray(self.groups).max()) + 1

    @property
    def neurons(self) -> int:
        return 2 * self.n_units

    @property
    def reads_own_output(self) -> bool:
        return self.write == "phi"

    @cached_property
    def incidence(self) -> sp.csr_array:
        """:math:`B` ``(m, n_u)``."""
        return group_incidence(np.asarray(self.groups), self.n_units)

    @cached_property
    def _read(self) -> CSR:
        return CSR.from_scipy(self.incidence)

    @cached_property
    def _mean(self) -> CSR:
        return CSR.from_scipy(sp.csr_array(self.incidence.T / self.blocks))

    def encode(self, active: Any) -> Any:
        r"""Clean input :math:`\Phi x`, float64 ``(n_samples, embed_dim)``."""
        a = self.embedding.embed(active)
        xp = namespace(a)
        return xp.astype(a, xp.float64, copy=False)

    def unit_reads(self, a: Any) -> Any:
        r""":math:`z = (\Phi^\top a)^\top B`, ``(n_samples, n_u)``, for a state ``a`` written through :math:`\Phi`."""
        r = self.embedding.readout(a)
        return sparse_matmul(r, self._read)

    def step(self, a: Any) -> Any:
        """The layer on a batch ``a (n_samples, embed_dim)`` → ``(n_samples, embed_dim)``, float64."""
        u = clipped_unit(self.unit_reads(a), self.lo, self.hi)
        xp = namespace(u)
        if self.write == "units":
            pad = xp.zeros((u.shape[0], self.embed_dim - self.n_units), dtype=u.dtype)
            return xp.concat([u, pad], axis=1)
        values = sparse_matmul(u, self._mean)  # (K, m): v = B u / c
        out = xp.zeros((u.shape[0], self.embed_dim), dtype=values.dtype)
        for start, blk in self.embedding.blocks(xp):
            part = values[:, start : start + blk.shape[1]]
            out = out + part @ xp.matrix_transpose(xp.astype(blk, values.dtype))
        return out

    def readout_blocks(self, a: Any, side: str = "out") -> Any:
        r"""Yield ``(0, readouts)``: :math:`\Phi^\top a` (``side="in"``) or the output's feature values."""
        if side not in ("in", "out"):
            raise ValueError(f"side must be one of 'in', 'out'; got {side!r}")
        if side == "in" or self.write == "phi":
            yield 0, self.embedding.readout(a)
            return
        yield 0, sparse_matmul(a[:, : self.n_units], self._mean)

    def weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Plain arrays ``W_in (2n_u, d)``, ``b (2n_u,)``, ``W_out (d, 2n_u)`` (materialised)."""
        phi = self.embedding.matrix().astype(np.float64)
        read = np.asarray(self.incidence.T @ phi.T)  # (n_u, d): unit i reads sum of its φ_k
        if self.write == "units":
            write = np.eye(self.embed_dim, self.n_units)
        else:
            write = np.asarray(self.incidence.T @ phi.T).T / self.blocks  # Φ B / c
        return clipped_unit_weights(read, write, self.lo, self.hi)

    def values(self, active: Any) -> Any:
        r"""Steady-state feature values :math:`t_k/c` of inputs ``active`` ``(K, s)``: ``(K, m)``.

        What the layer outputs when every unit is inside its margin.
        """
        on = indicator(active, self.n_features, np.float64)
        hit = (on @ self.incidence) > 0
        return (hit.astype(np.float64) @ self.incidence.T) / self.blocks
