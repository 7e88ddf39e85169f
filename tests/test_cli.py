"""The command-line frame and the ``embed`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


# ---------------------------------------------------------------- memory, paths, pipes, help


def _one_line_exit_2(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert captured.out == ""
    return err


def test_oversize_uand_refused_before_allocating(capsys) -> None:
    """The request of issue 18 (10^8 features, 10^5 neurons: ~1.6 TB of wiring) is refused in one
    line naming the estimate and the available memory, and nothing large is allocated."""
    import tracemalloc

    argv = ["uand", "--features", "100000000", "--neurons", "100000", "--sparsity", "3"]
    tracemalloc.start()
    try:
        err = _one_line_exit_2([*argv, "--samples", "1"], capsys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.startswith("superposition uand: error: ")
    assert "GiB of memory" in err and "GiB available" in err
    estimate = float(err.split("needs about ")[1].split(" GiB")[0])
    assert estimate > 1000  # TiB-scale: 1e13 * p ones of 16 bytes, twice
    assert peak < 16 * 2**20, f"{peak / 2**20:.1f} MiB allocated before refusing"


@pytest.mark.parametrize(
    "argv",
    [
        ["embed", "--features", "100", "--embed-dim", "10", "--samples", "5"],
        ["uand", "--features", "50", "--neurons", "40", "--sparsity", "2", "--samples", "3"],
        ["uand", "--features", "50", "--neurons", "40", "--sparsity", "2", "--embed-dim", "30"],
        ["uand", "--features", "50", "--neurons", "40", "--sparsity", "2", "--weights", "gaussian"],
        ["width", "--features", "50", "--sparsity", "2", "--target-error", "0.5"],
        ["circuit", "--features", "50", "--embed-dim", "40", "--sparsity", "2", "--depth", "2"],
        ["deep", "--features", "50", "--embed-dim", "40", "--sparsity", "2", "--depth", "2"],
        ["export", "uand", "--features", "20", "--neurons", "10", "--sparsity", "2"],
        ["export", "trained", "--features", "20", "--neurons", "10", "--sparsity", "2"],
        ["export", "superposed", "--features", "20", "--neurons", "10", "--sparsity", "2",
         "--embed-dim", "8"],
        ["export", "circuit", "--features", "20", "--embed-dim", "10", "--depth", "2"],
        ["export", "deep", "--features", "20", "--embed-dim", "10", "--sparsity", "2", "--depth", "2"],
        ["capacity", "--design", "denoiser", "--embed-dim", "40", "--depth", "2", "--samples", "2"],
        ["sweep", "--experiment", "uand", "--grid", "n_features=20,40", "--param", "neurons=30",
         "--param", "sparsity=2"],
        ["sweep", "--experiment", "embed", "--grid", "n_features=20", "--param", "embed_dim=10"],
        ["sweep", "--experiment", "circuit", "--grid", "n_features=20", "--param", "embed_dim=10",
         "--param", "sparsity=2", "--param", "depth=2"],
        ["sweep", "--experiment", "width", "--grid", "n_features=20", "--param", "sparsity=2",
         "--param", "target_error=0.5"],
    ],
)  # fmt: skip
def test_every_command_checks_memory_first(argv, capsys, monkeypatch, tmp_path) -> None:
    """With (pretend) 1 KiB available every command refuses before building anything."""
    import superposition.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 1024)
    if argv[0] == "export":
        argv = [*argv, "--out", str(tmp_path / "net.safetensors")]
    if argv[0] == "sweep":  # refused before any point runs: the store stays empty
        argv = [*argv, "--store", str(tmp_path / "store")]
        tmp_path = tmp_path / "store"
        tmp_path.mkdir()
    err = _one_line_exit_2(argv, capsys)
    assert "GiB of memory, more than the 9.54e-07 GiB available" in err
    assert list(tmp_path.iterdir()) == []


def test_sweep_memory_check_names_the_largest_point(capsys, monkeypatch) -> None:
    """The refusal names the grid point that needs the most, and a threshold search is checked
    at its first trial; a sweep that fits runs."""
    import superposition.memory as memory
    from superposition.experiments import experiment_bytes, uand_error

    small = experiment_bytes(uand_error, {"n_features": 20, "neurons": 30, "sparsity": 2})
    big = experiment_bytes(uand_error, {"n_features": 4000, "neurons": 30, "sparsity": 2})
    assert small is not None and big is not None and big > small
    monkeypatch.setattr(memory, "available_bytes", lambda: int((small + big) / 2))
    base = ["sweep", "--experiment", "uand", "--param", "neurons=30", "--param", "sparsity=2"]
    err = _one_line_exit_2([*base, "--grid", "n_features=20,4000", "--no-store"], capsys)
    assert "at neurons=30, sparsity=2, n_features=4000 needs about" in err
    assert main([*base, "--grid", "n_features=20", "--no-store", "--json"]) == 0


def test_experiment_bytes_and_registered_estimates() -> None:
    from superposition.experiments import (
        EXPERIMENTS,
        embedding_readout_error,
        experiment_bytes,
        register_experiment,
    )
    from superposition.memory import embed_bytes

    assert experiment_bytes(embedding_readout_error, {"n_features": 50, "embed_dim": 8}) == (
        embed_bytes(50, 8, 1000)  # the experiment's default n_samples
    )
    with pytest.raises(ValueError, match="do not fit embedding_readout_error"):
        experiment_bytes(embedding_readout_error, {"n_features": 50, "embed_dimension": 8})

    def mine(n_features: int, seed: int = 0) -> dict:
        return {"n": n_features}

    try:
        assert experiment_bytes(mine, {"n_features": 3}) is None  # no estimate: not checked
        register_experiment("mine-memory", mine, memory=lambda a: 8.0 * a["n_features"])
        assert experiment_bytes(mine, {"n_features": 3}) == 24.0
        with pytest.raises(ValueError, match="memory must be callable"):
            register_experiment("mine-memory-2", mine, memory=3)  # type: ignore[arg-type]
    finally:
        EXPERIMENTS.pop("mine-memory", None)
        EXPERIMENTS.pop("mine-memory-2", None)


def _export_argv(out: str) -> list[str]:
    return [
        "export",
        "uand",
        "--features",
        "12",
        "--neurons",
        "20",
        "--sparsity",
        "2",
        "--out",
        out,
    ]


def test_export_impossible_paths_one_line(tmp_path, capsys) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    (tmp_path / "folder.safetensors").mkdir()
    (tmp_path / "side.json").mkdir()
    cases = {
        "/dev/null/x.safetensors": "/dev/null is not a folder",
        str(a_file / "x.safetensors"): "is not a folder",
        str(tmp_path / "missing" / "x.safetensors"): "does not exist",
        str(tmp_path / "folder.safetensors"): "is a folder",
        str(tmp_path / "side.safetensors"): "is a folder",  # the sidecar's name is taken
    }
    if Path("/proc/self").is_dir():  # Linux: no file can be created there, even by root
        cases["/proc/net.safetensors"] = "cannot write in the folder /proc"
    for out, needle in cases.items():
        err = _one_line_exit_2(_export_argv(out), capsys)
        assert needle in err, (out, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "file",
        "folder.safetensors",
        "side.json",
    ]  # nothing half-written, no probe file left


def test_export_writable_path_still_works(tmp_path, capsys) -> None:
    assert main([*_export_argv(str(tmp_path / "net.safetensors")), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert Path(out["weights"]).stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json", "net.safetensors"]


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["uand", "--features", "40", "--neurons", "30", "--sparsity", "2", "--json"], 141),
        (["uand", "--features", "40", "--neurons", "30", "--sparsity", "2"], 141),
        # argparse itself ignores a failed write of the help text, and exits 0
        (["uand", "--help"], 0),
    ],
)
def test_closed_stdout_quiet_exit(argv, code) -> None:
    """``superposition … | head -c 0``: no traceback, exit code 141 (128 + SIGPIPE)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "superposition.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before the command writes anything
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == code
    assert err == ""


def _parsers():
    import argparse

    from superposition.cli import build_parser

    def walk(parser, name):
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, subparser in action.choices.items():
                    yield from walk(subparser, f"{name} {sub}")

    return list(walk(build_parser(), "superposition"))


def test_every_option_has_help_and_every_command_a_description() -> None:
    for name, parser in _parsers():
        if name != "superposition":
            assert parser.description, f"{name} has no description"
        for action in parser._actions:
            assert action.help, f"{name} {'/'.join(action.option_strings) or action.dest}"


def test_help_shows_defaults(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["uand", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "random inputs K (default: 100)" in text
    assert "(default: bernoulli)" in text and "(default: 0)" in text
    assert "(default: None)" not in text and "(default: False)" not in text
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    assert "(default: None)" not in capsys.readouterr().out


def test_width_help_percent_sign(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["width", "--help"])
    text = capsys.readouterr().out
    assert "90%" in text and "%%" not in text


def test_width_p_best_is_the_library_choice(capsys) -> None:
    """`--p best` prints the multiple best_p_scale picks and the search at it, as
    minimal_width(p="best") computes them."""
    argv = ["width", "--features", "30", "--sparsity", "2", "--target-error", "0.5",
            "--embed-dim", "tied", "--seeds", "2", "--samples", "4", "--low", "64", "--p", "best",
            "--json"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    ref = sp.minimal_width(30, 2, 0.5, embed_dim="tied", seeds=range(2), n_samples=4, low=64,
                           p="best")  # fmt: skip
    assert out["p_scale"] == ref.p_scale and out["neurons"] == ref.neurons
