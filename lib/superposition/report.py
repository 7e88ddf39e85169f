"""Reporting measurements in the book: the one glue helper, Markdown tables, interval verdicts.

Every chapter reports through these functions, so a number reaches the prose the same way
everywhere: :func:`glue` stores a value for MyST-NB's glue roles (NumPy scalars as plain numbers,
figures closed once stored), :func:`markdown_table` builds a table from rows, and
:func:`interval_verdict` turns a measured interval and the values it is compared with into a
sentence, so no verdict is typed by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["MIN_REPLICATES", "glue", "interval_verdict", "markdown_table", "table"]

MIN_REPLICATES = 3
"""Fewest seeds per point from which :func:`interval_verdict` lets an interval exclude a value."""


def glue(name: str, value: Any, display: bool = False) -> None:
    """Store ``value`` under ``name`` for the chapter's prose (MyST-NB's glue roles and directives).

    NumPy scalars become plain Python numbers (their repr does not format); a Matplotlib figure
    is closed once stored, so it is not drawn a second time at the end of the cell. Needs
    ``myst_nb`` (the book's environment), imported here only.
    """
    from myst_nb import glue as _glue

    if isinstance(value, np.generic):
        value = value.item()
    _glue(name, value, display=display)
    if type(value).__module__.startswith("matplotlib.figure"):
        import matplotlib.pyplot as plt

        plt.close(value)


def markdown_table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    formats: Sequence[str | Callable[[Any], str] | None] | None = None,
    align: str | Sequence[str] | None = None,
    bold: Sequence[Sequence[bool]] | None = None,
    missing: str = "—",
) -> str:
    """A Markdown table.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    rows : sequence of sequences
        One value per column each.
    formats : sequence, optional
        Per column: a format spec (``".3g"``), a function ``value -> str``, or ``None`` (``str``).
        ``None`` values print as ``missing`` whatever the format.
    align : str or sequence of str, optional
        ``"l"``, ``"r"`` or ``"c"`` per column (a sequence, or a string such as ``"lrr"``; one
        letter for all); default: numbers right, text left.
    bold : sequence of sequences of bool, optional
        The same shape as ``rows``: the cells printed in bold (``**…**``), for example the best
        value of each row.
    missing : str
        What a ``None`` value prints as: an em dash by default, ``""`` for an empty cell.

    Returns
    -------
    str
    """
    n = len(header)
    if any(len(r) != n for r in rows):
        raise ValueError(f"every row must have {n} values (one per header column)")
    fmts = list(formats) if formats is not None else [None] * n
    if len(fmts) != n:
        raise ValueError(f"formats must have {n} entries, got {len(fmts)}")
    if bold is not None and (len(bold) != len(rows) or any(len(b) != n for b in bold)):
        raise ValueError(f"bold must have the shape of rows ({len(rows)} rows of {n} flags)")

    def cell(v: Any, f: str | Callable[[Any], str] | None) -> str:
        if v is None:
            return missing
        if callable(f):
            return f(v)
        if f is not None:
            return format(v.item() if isinstance(v, np.generic) else v, f)
        return str(v)

    body = [[cell(v, f) for v, f in zip(r, fmts, strict=True)] for r in rows]
    if bold is not None:
        body = [
            [f"**{c}**" if b else c for c, b in zip(r, flags, strict=True)]
            for r, flags in zip(body, bold, strict=True)
        ]
    if align is None:
        numeric = [
            bool(rows) and all(isinstance(r[j], (int, float, np.number)) for r in rows)
            for j in range(n)
        ]
        marks = ["---:" if num else "---" for num in numeric]
    else:
        letters = [align] * n if isinstance(align, str) and len(align) == 1 else list(align)
        if len(letters) != n or any(a not in ("l", "r", "c") for a in letters):
            raise ValueError(f"align must be one of l, r, c per column ({n}), got {align!r}")
        marks = [{"l": "---", "r": "---:", "c": ":---:"}[a] for a in letters]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], **kwargs: Any) -> Any:
    """:func:`markdown_table` as an ``IPython.display.Markdown`` object (to show or glue)."""
    from IPython.display import Markdown

    return Markdown(markdown_table(header, rows, **kwargs))


def interval_verdict(
    interval: tuple[float, float],
    anchors: Mapping[str, float],
    *,
    fmt: str = ".3g",
    replicates: int | None = None,
) -> str:
    """Which of the ``anchors`` an interval excludes, as a clause generated from the numbers.

    Example: ``interval_verdict((0.49, 0.56), {"1/2": 0.5, "2/3": 2/3})`` gives
    ``"[0.49, 0.56] contains 1/2 (0.5) and excludes 2/3 (0.667)"``.

    ``replicates``: the seeds (replicates per point) the interval's bootstrap resampled. A
    bootstrap of fewer than :data:`MIN_REPLICATES` seeds per point can draw only a handful of
    distinct resamples (two seeds: three), and an interval of zero width is no interval: in
    both cases the clause states the interval and what it rests on, and claims no exclusion.
    """
    lo, hi = (float(v) for v in interval)
    if not lo <= hi:
        raise ValueError(f"interval must be (low, high) with low <= high, got {interval!r}")
    if replicates is not None and replicates < 1:
        raise ValueError(f"replicates must be >= 1, got {replicates}")
    text = f"[{format(lo, fmt)}, {format(hi, fmt)}]"
    few = replicates is not None and replicates < MIN_REPLICATES
    zero = float(format(lo, fmt)) == float(format(hi, fmt))  # zero width at the precision shown
    if few or zero:
        why = []
        if few:
            seeds = "seed" if replicates == 1 else "seeds"
            why.append(f"rests on {replicates} {seeds} per point")
        if zero:
            why.append("has zero width")
        return (
            f"{text} ({' and '.join(why)}: too degenerate to exclude "
            f"{'' if len(anchors) == 1 else 'any of '}{_names(list(anchors), anchors, fmt)})"
        )
    inside = [n for n, v in anchors.items() if lo <= v <= hi]
    outside = [n for n, v in anchors.items() if not lo <= v <= hi]
    if inside and outside:
        return f"{text} contains {_names(inside, anchors, fmt)} and excludes {_names(outside, anchors, fmt)}"
    if inside:
        return f"{text} contains {_names(inside, anchors, fmt)}"
    return f"{text} excludes {_names(outside, anchors, fmt)}"


def _names(ns: list[str], anchors: Mapping[str, float], fmt: str) -> str:
    parts = [f"{n} ({format(anchors[n], fmt)})" for n in ns]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
