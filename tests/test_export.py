"""Ground-truth networks on disk: round trips, ground truth, corrupted files, CLI, torch."""

from __future__ import annotations

import json
import pickle
from math import comb

import numpy as np
import pytest

import superposition as sp
from superposition.cli import main
from superposition.export import (
    KINDS,
    LoadedNetwork,
    as_loaded,
    export_network,
    load_network,
    network_arrays,
    sidecar_path,
    to_torch,
)
from superposition.training import train_uand
from superposition.uand import tuple_unrank

# A readout row summed over d neurons in another order differs by at most ~d ulps of the
# largest term; outputs here are O(1) with d <= 64, so 1e-12 is far above rounding.
ROUNDING = 1e-12


def _uand_cases():
    yield "bernoulli", sp.build_uand(20, 40, 3, weights="bernoulli", seed=1)
    yield "rademacher", sp.build_uand(20, 40, 3, weights="rademacher", seed=2)
    yield "gaussian", sp.build_uand(20, 40, 3, weights="gaussian", seed=3)


@pytest.fixture(scope="module")
def trained():
    return train_uand(20, 16, 3, steps=30, seed=4)


@pytest.fixture(scope="module")
def compiled():
    return sp.compile_circuit(sp.random_circuit(200, 3, seed=5), 120, seed=6)


def _x(m: int, s: int, k: int = 25, seed: int = 7) -> np.ndarray:
    return sp.to_dense(sp.sample_sparse(m, s, k, seed=seed), m)


@pytest.mark.parametrize("readout", ["explicit", "rule"])
@pytest.mark.parametrize(("name", "net"), list(_uand_cases()))
def test_uand_round_trip_exact(tmp_path, name, net, readout) -> None:
    path = tmp_path / f"{name}.safetensors"
    export_network(net, path, readout=readout, seed=1)
    loaded = load_network(path)
    mem = as_loaded(net, readout=readout)
    x = _x(20, 3)
    assert np.array_equal(loaded.forward(x), mem.forward(x))  # bit for bit
    for k, v in mem.tensors.items():
        assert loaded.tensors[k].dtype == v.dtype and np.array_equal(loaded.tensors[k], v)
    assert loaded.meta["seed"] == 1 and loaded.kind == "uand"
    assert loaded.meta["construction"]["weights"] == name


@pytest.mark.parametrize(("name", "net"), list(_uand_cases()))
def test_uand_export_is_the_library_network(tmp_path, name, net) -> None:
    """The loaded forward pass computes what the library computes, with either readout form."""
    active = sp.sample_sparse(20, 3, 25, seed=7)
    x = sp.to_dense(active, 20)
    tup = tuple_unrank(np.arange(comb(20, 2)), 20, 2)
    want = sp.uand_outputs(net, active, tup)
    for readout in ("explicit", "rule"):
        export_network(net, tmp_path / "n.safetensors", readout=readout)
        got = load_network(tmp_path / "n.safetensors")
        np.testing.assert_allclose(got.forward(x), want, atol=ROUNDING, rtol=0)
        assert np.array_equal(got.hidden(x), net.activations(active))
        rows = got.readout_rows(tup[[0, 7, 100]])
        np.testing.assert_allclose(got.hidden(x) @ rows.T, want[:, [0, 7, 100]], atol=ROUNDING)


def test_rule_and_explicit_readouts_agree() -> None:
    for _, net in _uand_cases():
        a, b = as_loaded(net, readout="explicit"), as_loaded(net, readout="rule")
        tup = tuple_unrank(np.arange(comb(20, 2)), 20, 2)
        np.testing.assert_allclose(a.readout_rows(tup), b.readout_rows(tup), atol=ROUNDING)
        assert "tensor" in a.meta["readout"] and "rule" in b.meta["readout"]


def test_trained_round_trip(tmp_path, trained) -> None:
    path = tmp_path / "t.safetensors"
    export_network(trained, path)
    loaded = load_network(path)
    active = sp.sample_sparse(20, 3, 25, seed=8)
    x = sp.to_dense(active, 20)
    assert np.array_equal(loaded.forward(x), as_loaded(trained).forward(x))
    assert np.array_equal(loaded.forward(x), trained.outputs(active))
    assert loaded.meta["construction"]["training"]["steps"] == 30
    assert loaded.meta["outputs"]["names"][1] == "and(0,2)"
    with pytest.raises(ValueError, match="no rule"):
        export_network(trained, path, readout="rule")


def test_circuit_round_trip_and_ground_truth(tmp_path, compiled) -> None:
    path = tmp_path / "c.safetensors"
    export_network(compiled, path, seed=6)
    loaded = load_network(path)
    x = _x(200, 2, k=30)
    got = list(loaded.residuals(x))
    mem = list(as_loaded(compiled).residuals(x))
    lib = list(compiled.residuals(x))
    for g, m_, ref in zip(got, mem, lib, strict=True):
        assert np.array_equal(g, m_)
        np.testing.assert_allclose(g, ref, atol=ROUNDING, rtol=0)
    assert np.array_equal(loaded.forward(x), got[-1])
    truth = loaded.ground_truth(x)
    for t, ref in zip(truth, compiled.circuit.evaluate(x.astype(np.int8)), strict=True):
        assert np.array_equal(t, ref)
    # the stored readout (embedding columns) decodes the last layer like the library
    np.testing.assert_allclose(
        loaded.decode(got[-1], 3), compiled.decode(lib[-1], 3), atol=ROUNDING, rtol=0
    )


def test_sidecar_holds_the_ground_truth(tmp_path) -> None:
    net = sp.build_uand(12, 10, 3, seed=0)
    _, side = export_network(net, tmp_path / "u.safetensors", seed=0)
    meta = json.loads(side.read_text())
    assert meta["sizes"] == {
        "n_features": 12,
        "width": 10,
        "sparsity": 3,
        "arity": 2,
        "n_outputs": 66,
    }
    assert meta["embedding"]["kind"] == "identity" and meta["seed"] == 0
    assert len(meta["outputs"]["names"]) == 66 and meta["outputs"]["names"][0] == "and(0,1)"
    assert meta["tensors"]["layer.weight"] == {"shape": [10, 12], "dtype": "float64"}
    assert meta["tensors_file"] == "u.safetensors" and len(meta["sha256"]) == 64


def test_auto_readout_switches_to_rule_for_large_outputs(monkeypatch) -> None:
    import superposition.export as ex

    net = sp.build_uand(30, 20, 3, seed=0)
    assert "tensor" in network_arrays(net)[2]["readout"]
    monkeypatch.setattr(ex, "EXPLICIT_READOUT_ENTRIES", 100)
    kind, tensors, meta = network_arrays(net)
    assert meta["readout"]["rule"] == "mean_over_gamma" and "readout.weight" not in tensors


# ------------------------------------------------------------------ bad files


@pytest.fixture
def written(tmp_path):
    path = tmp_path / "u.safetensors"
    export_network(sp.build_uand(12, 10, 3, seed=0), path)
    return path


def test_corrupted_weights_file(written) -> None:
    raw = bytearray(written.read_bytes())
    raw[-3] ^= 0xFF
    written.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="SHA-256 .* does not match"):
        load_network(written)


def test_corrupted_header_with_matching_checksum(written) -> None:
    """A broken safetensors header is reported as unreadable, even if the checksum was updated."""
    import hashlib

    written.write_bytes(b"\xff" * 8 + b"not a header")
    side = sidecar_path(written)
    meta = json.loads(side.read_text())
    meta["sha256"] = hashlib.sha256(written.read_bytes()).hexdigest()
    side.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unreadable safetensors"):
        load_network(written)


def test_mismatched_pair(tmp_path, written) -> None:
    other = tmp_path / "v.safetensors"
    export_network(sp.build_uand(12, 11, 3, seed=0), other)
    sidecar_path(written).write_text(sidecar_path(other).read_text())
    with pytest.raises(ValueError, match="not the pair"):
        load_network(written)


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda m: m.update(format="other"), "not a superposition-network sidecar"),
        (lambda m: m.update(format_version=99), "format_version 99"),
        (lambda m: m.update(kind="spaceship"), "unknown kind 'spaceship'"),
        (lambda m: m["tensors"]["layer.weight"].update(shape=[3, 3]), "tensor 'layer.weight'"),
        (lambda m: m["tensors"].pop("layer.bias"), "unexpected \\['layer.bias'\\]"),
    ],
)
def test_sidecar_mismatch(written, edit, needle) -> None:
    side = sidecar_path(written)
    meta = json.loads(side.read_text())
    edit(meta)
    side.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=needle):
        load_network(written)


def test_missing_files_and_bad_paths(tmp_path, written) -> None:
    with pytest.raises(ValueError, match="no such file"):
        load_network(tmp_path / "absent.safetensors")
    sidecar_path(written).unlink()
    with pytest.raises(ValueError, match="u.json: no such file"):
        load_network(written)
    with pytest.raises(ValueError, match="must end in .safetensors"):
        export_network(sp.build_uand(12, 10, 3, seed=0), tmp_path / "u.pt")
    with pytest.raises(ValueError, match="registered kinds"):
        export_network(object(), tmp_path / "o.safetensors")


class _Boom:
    def __reduce__(self):
        return (open, ("/nonexistent-dir-for-test/pwned", "w"))


def test_loading_never_unpickles(tmp_path) -> None:
    """A pickle saved under the weights name is rejected; its payload never runs."""
    path = tmp_path / "p.safetensors"
    export_network(sp.build_uand(12, 10, 3, seed=0), path)
    payload = pickle.dumps(_Boom())
    path.write_bytes(payload)
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    import hashlib

    meta["sha256"] = hashlib.sha256(payload).hexdigest()
    side.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unreadable safetensors"):
        load_network(path)  # had it unpickled, open() on a missing folder would raise OSError


def test_loaded_network_checks_inputs(written) -> None:
    net = load_network(written)
    with pytest.raises(ValueError, match="shape"):
        net.forward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        net.forward(np.full((2, 12), 0.5))
    with pytest.raises(ValueError, match="strictly increasing"):
        net.readout_rows(np.array([[3, 3]]))
    with pytest.raises(ValueError, match="applies to kinds"):
        next(net.residuals(np.zeros((1, 12))))
    assert isinstance(net, LoadedNetwork) and set(KINDS) >= {"uand", "trained_uand", "circuit"}


# ------------------------------------------------------------------ CLI


@pytest.mark.parametrize(
    "argv",
    [
        ["uand", "--features", "15", "--width", "12", "--sparsity", "3", "--weights", "gaussian"],
        ["trained", "--features", "10", "--width", "6", "--sparsity", "3", "--steps", "5"],
        ["circuit", "--features", "60", "--width", "40", "--depth", "2"],
    ],
)
def test_cli_export_writes_loadable_files(tmp_path, capsys, argv) -> None:
    out = tmp_path / "net.safetensors"
    assert main(["export", *argv, "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    loaded = load_network(out)
    assert info["sha256"] == loaded.meta["sha256"] and info["kind"] == loaded.kind
    m = loaded.sizes.get("n_features", loaded.sizes.get("n_inputs"))
    y = loaded.forward(_x(m, 2, k=3))
    assert y.shape[0] == 3 and np.isfinite(y).all()


def test_cli_export_same_seed_same_bytes(tmp_path) -> None:
    for name in ("a", "b"):
        argv = ["export", "uand", "--features", "15", "--width", "12", "--sparsity", "3"]
        assert main([*argv, "--seed", "3", "--out", str(tmp_path / f"{name}.safetensors")]) == 0
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["export"], "KIND"),
        (["export", "bogus"], "invalid choice"),
        (
            ["export", "uand", "--features", "10", "--width", "5", "--out", "x.safetensors"],
            "--sparsity",
        ),
        (["export", "uand", "--features", "10", "--width", "5", "--sparsity", "3"], "--out"),
        (
            [
                "export",
                "uand",
                "--features",
                "10",
                "--width",
                "5",
                "--sparsity",
                "3",
                "--out",
                "x.bin",
            ],
            ".safetensors",
        ),
        (
            [
                "export",
                "uand",
                "--features",
                "3",
                "--width",
                "5",
                "--sparsity",
                "9",
                "--out",
                "x.safetensors",
            ],
            "sparsity",
        ),
        (
            [
                "export",
                "circuit",
                "--features",
                "0",
                "--width",
                "5",
                "--depth",
                "1",
                "--out",
                "x.safetensors",
            ],
            "--features",
        ),
    ],
)
def test_cli_bad_arguments_one_line_exit_2(tmp_path, monkeypatch, capsys, argv, needle) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written


# ------------------------------------------------------------------ torch


def test_torch_module_matches_numpy(trained, compiled) -> None:
    torch = pytest.importorskip("torch")
    for net, x in (
        (sp.build_uand(20, 40, 3, weights="rademacher", seed=2), _x(20, 3)),
        (trained, _x(20, 3)),
        (compiled, _x(200, 2)),
    ):
        loaded = as_loaded(net, readout="explicit")
        module = to_torch(loaded)
        with torch.no_grad():
            got = module(torch.from_numpy(x)).double().numpy()
        want = loaded.forward(x)
        # float32 (trained) weights: BLAS may sum in another order, ~1e-7 relative per term
        single = any(v.dtype == np.float32 for v in loaded.tensors.values())
        tol = 1e-5 if single else 1e-10
        np.testing.assert_allclose(got, want, atol=tol, rtol=tol)


def test_to_torch_without_torch_is_a_clear_error() -> None:
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        with pytest.raises(ValueError, match="PyTorch"):
            to_torch(sp.build_uand(12, 10, 3, seed=0))
    else:
        pytest.skip("torch is installed: the builder itself is tested above")
