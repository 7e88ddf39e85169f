"""The command-line frame and the ``embed`` command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import superposition as sp
from superposition.cli import main


def test_embed_json(capsys) -> None:
    assert (
        main(["embed", "--features", "500", "--embed-dim", "64", "--samples", "20", "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    emb = sp.Embedding(500, 64, seed=0)
    assert out["coherence"] == pytest.approx(sp.coherence(emb))
    act = sp.sample_sparse(500, 3, 20, seed=1)
    assert out["max_readout_error"] == pytest.approx(sp.max_readout_error(emb, act))


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["embed", "--features", "0", "--embed-dim", "4"], "--features"),
        (["embed", "--features", "x", "--embed-dim", "4"], "--features"),
        (["embed", "--features", "3", "--embed-dim", "4", "--sparsity", "5"], "sparsity"),
        (["embed", "--features", "3"], "--embed-dim"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_bad_arguments_one_line_exit_2(argv, needle, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        rc = main(argv)
        raise SystemExit(rc)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err and "Traceback" not in err


def test_console_script_runs() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "superposition.cli", "embed", "--features", "2", "--embed-dim", "0"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and res.stderr.count("\n") == 1
