"""Tests for superposition.report: Markdown tables and generated interval verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from superposition.report import interval_verdict, markdown_table


def test_markdown_table_formats_and_aligns() -> None:
    text = markdown_table(
        ["m", "d*", "note"],
        [[100, 1512.0, "a"], [np.int64(3000), None, "b"]],
        formats=[None, ",.0f", None],
    )
    assert text.splitlines() == [
        "| m | d* | note |",
        "| ---: | --- | --- |",
        "| 100 | 1,512 | a |",
        "| 3000 | — | b |",
    ]
    centred = markdown_table(["x"], [[1]], align="c")
    assert centred.splitlines()[1] == "| :---: |"
    assert markdown_table(["a", "b", "c"], [[1, 2, 3]], align="lcr").splitlines()[1] == (
        "| --- | :---: | ---: |"
    )


def test_markdown_table_bold_cells_and_missing_values() -> None:
    rows = [[30, 0.125, 0.5], [60, 0.25, 0.0625]]
    best = [[False, *(v == min(r[1:]) for v in r[1:])] for r in rows]
    text = markdown_table(["d", "a", "b"], rows, formats=[None, ".3g", ".3g"], bold=best)
    assert text.splitlines()[2:] == ["| 30 | **0.125** | 0.5 |", "| 60 | 0.25 | **0.0625** |"]
    blank = markdown_table(["layer", "x"], [["a", 1], [None, 2]], missing="", align="lr")
    assert blank.splitlines()[2:] == ["| a | 1 |", "|  | 2 |"]
    # a None cell prints as `missing` whatever its format
    assert markdown_table(["x"], [[None]], formats=[".0%"]).splitlines()[2] == "| — |"


def test_markdown_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError, match="every row"):
        markdown_table(["a", "b"], [[1]])
    with pytest.raises(ValueError, match="formats"):
        markdown_table(["a"], [[1]], formats=[None, None])
    with pytest.raises(ValueError, match="align"):
        markdown_table(["a"], [[1]], align="x")
    with pytest.raises(ValueError, match="align"):
        markdown_table(["a", "b"], [[1, 2]], align="lrc")
    with pytest.raises(ValueError, match="bold"):
        markdown_table(["a", "b"], [[1, 2]], bold=[[True]])
    with pytest.raises(ValueError, match="bold"):
        markdown_table(["a"], [[1], [2]], bold=[[True]])


def test_interval_verdict_is_generated_from_the_numbers() -> None:
    anchors = {"1/2": 0.5, "2/3": 2 / 3}
    assert interval_verdict((0.49, 0.56), anchors) == (
        "[0.49, 0.56] contains 1/2 (0.5) and excludes 2/3 (0.667)"
    )
    assert (
        interval_verdict((0.6, 0.7), anchors)
        == "[0.6, 0.7] contains 2/3 (0.667) and excludes 1/2 (0.5)"
    )
    assert interval_verdict((0.3, 0.4), anchors) == "[0.3, 0.4] excludes 1/2 (0.5) and 2/3 (0.667)"
    assert interval_verdict((0.4, 0.7), anchors) == "[0.4, 0.7] contains 1/2 (0.5) and 2/3 (0.667)"
    with pytest.raises(ValueError, match="low <= high"):
        interval_verdict((0.7, 0.4), anchors)


def test_interval_verdict_claims_no_exclusion_from_a_degenerate_interval() -> None:
    anchors = {"1/2": 0.5, "2/3": 2 / 3}
    # two seeds per point: a bootstrap draws at most three distinct resamples of each point
    two = interval_verdict((0.3, 0.4), anchors, replicates=2)
    assert two == (
        "[0.3, 0.4] (rests on 2 seeds per point: too degenerate to exclude any of "
        "1/2 (0.5) and 2/3 (0.667))"
    )
    assert "excludes" not in two
    # zero width at the precision shown (the capacity of a design that did not grow)
    flat = interval_verdict((-1e-4, 1e-4), {"1.5": 1.5}, fmt=".2f", replicates=5)
    assert flat == "[-0.00, 0.00] (has zero width: too degenerate to exclude 1.5 (1.50))"
    # enough seeds and a real interval: the ordinary clause
    assert interval_verdict((0.3, 0.4), anchors, replicates=3).startswith("[0.3, 0.4] excludes")
    with pytest.raises(ValueError, match="replicates"):
        interval_verdict((0.3, 0.4), anchors, replicates=0)
