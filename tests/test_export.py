"""Ground-truth networks on disk: round trips, ground truth, corrupted files, CLI, torch."""

from __future__ import annotations

import json
import pickle
from math import comb
from pathlib import Path

import numpy as np
import pytest

import superposition as sp
from superposition.cli import main
from superposition.deep import deep_network, run_deep
from superposition.export import (
    NETWORK_KINDS,
    TORCH_INSTALL,
    LoadedCircuit,
    LoadedDeep,
    LoadedNetwork,
    LoadedSuperposed,
    LoadedUAnd,
    WithOutputEmbedding,
    as_loaded,
    export_network,
    load_network,
    network_arrays,
    sidecar_path,
    to_torch,
)
from superposition.superposed import (
    build_superposed_uand,
    output_embedding_errors,
    superposed_sign_constant,
)
from superposition.training import train_uand
from superposition.uand import tuple_rank, tuple_unrank

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
    assert loaded.meta["seed"] == 1 and loaded.network_kind == "uand"
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
        if readout == "rule":  # the library's readout on the library's activations
            assert np.array_equal(got.forward(x), want)
        assert np.array_equal(got.hidden(x), net.activations(active))
        rows = got.readout_rows(tup[[0, 7, 100]])
        np.testing.assert_allclose(got.hidden(x) @ rows.T, want[:, [0, 7, 100]], atol=ROUNDING)


def test_rows_with_different_numbers_of_active_features() -> None:
    """A batch mixing 0, 1, 2 and 3 active features: the library's layer on each count's rows.

    (A batch of one row may round differently from a batch of two in BLAS; the loaded layer
    runs the library on the same batches the library would be given: the rows of one count.)
    """
    x = np.zeros((5, 20), dtype=np.int8)
    x[1, 4] = 1
    x[2, [2, 9]] = 1
    x[3, [0, 5, 17]] = 1
    x[4, [3, 11]] = 1
    snet = build_superposed_uand(20, 30, 3, 12, seed=1)
    for net in (
        sp.build_uand(20, 40, 3, seed=1),
        sp.build_uand(20, 40, 3, weights="gaussian"),
        snet,
    ):
        loaded = as_loaded(net)
        got = loaded.hidden(x)
        counts = x.sum(axis=1)
        for c in np.unique(counts):  # the library's layer on the rows with c ones, as a batch
            rows = np.flatnonzero(counts == c)
            active = np.array([np.flatnonzero(x[i]) for i in rows]).reshape(rows.size, c)
            assert np.array_equal(got[rows], net.activations(active))
    emb = as_loaded(snet).embed(x)
    assert emb.shape == (5, 12) and not emb[0].any()
    assert np.array_equal(emb[3], snet.embedded(np.array([[0, 5, 17]]))[0])


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
    tup = tuple_unrank(np.arange(comb(20, 2)), 20, 2)
    assert np.array_equal(loaded.hidden(x), trained.activations(active))
    assert np.array_equal(loaded.forward(x), sp.uand_outputs(trained, active, tup))
    # the network's own float32 forward: the same outputs to float32 rounding
    np.testing.assert_allclose(loaded.forward(x), trained.outputs(active), rtol=1e-5, atol=1e-6)
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
        assert np.array_equal(g, m_) and np.array_equal(g, ref)  # the library's own steps
    assert np.array_equal(loaded.forward(x), got[-1])
    truth = loaded.ground_truth(x)
    for t, ref in zip(truth, compiled.circuit.evaluate(x.astype(np.int8)), strict=True):
        assert np.array_equal(t, ref)
    # the stored readout (embedding columns) decodes the last layer like the library
    assert np.array_equal(loaded.decode(got[-1], 3), compiled.decode(lib[-1], 3))


def test_sidecar_holds_the_ground_truth(tmp_path) -> None:
    net = sp.build_uand(12, 10, 3, seed=0)
    _, side = export_network(net, tmp_path / "u.safetensors", seed=0)
    meta = json.loads(side.read_text())
    assert meta["sizes"] == {
        "n_features": 12,
        "neurons": 10,
        "sparsity": 3,
        "arity": 2,
        "n_outputs": 66,
    }
    assert meta["embedding"]["storage"] == "identity" and meta["seed"] == 0
    assert len(meta["outputs"]["names"]) == 66 and meta["outputs"]["names"][0] == "and(0,1)"
    assert meta["tensors"]["layer.weight"] == {"shape": [10, 12], "dtype": "float64"}
    assert meta["tensors_file"] == "u.safetensors" and len(meta["sha256"]) == 64
    # both files get the permissions of any new file (safetensors alone makes it owner-only)
    weights = tmp_path / "u.safetensors"
    assert weights.stat().st_mode == side.stat().st_mode


def test_auto_readout_switches_to_rule_for_large_outputs(monkeypatch) -> None:
    import superposition.export.uand as ex

    net = sp.build_uand(30, 20, 3, seed=0)
    assert "tensor" in network_arrays(net)[2]["readout"]
    monkeypatch.setattr(ex, "EXPLICIT_READOUT_ENTRIES", 100)
    kind, tensors, meta = network_arrays(net)
    assert meta["readout"]["rule"] == "mean_over_gamma" and "readout.weight" not in tensors


# ------------------------------------------------------------------ files written before


FIXTURES = Path(__file__).resolve().parent / "data" / "export_v2"
# SHA-256 of the weights files written by the export module before it was split into one
# adapter per network kind (tests/data/export_v2/make_fixtures.py, superposition 0.1.0)
FIXTURE_SHA256 = {
    "uand": "f1f6edfa1cef4a9a6d8dd308b9bae298773d9cdbcc2559ba568231df2d0936a2",
    "uand_rule": "15237b730bd080d75d6c980abd1303cb5068380bfecbc69a900e29f7e20cbeae",
    "trained": "31f5998831231b994dff1d87e984deb0cd8a3860874dfb62d5df942e78c6885b",
    "superposed": "84243d687d9437954e9039371c2fee271f46f2f734afa77c149167afd9dd6c07",
    "circuit": "250ac85ad2af9269e405a08819b21a8049fa3ce24011abfcc68efb941fa3e95a",
    "deep": "0d44f509839e0ebc6657f644c3476d8397dd761953da81fb682cbfe7bba87040",
    "deep_code": "bbcd8e4cb839d9c0ab268c0f8a37f4f9e0772d14004b147775756ec9524bdb53",
}


def _fixture_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(FIXTURE_SHA256))
def test_files_written_before_load_bit_for_bit(tmp_path, name) -> None:
    """A format-2 file written by the old export module loads, and today's writer writes the
    same bytes for the same network (the trained network is loaded only: it is not rebuilt)."""
    import hashlib

    weights = FIXTURES / f"{name}.safetensors"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == FIXTURE_SHA256[name]
    old = load_network(weights)
    assert old.meta["format_version"] == 2 and old.meta["sha256"] == FIXTURE_SHA256[name]
    make = _fixture_module()
    recorded = np.load(FIXTURES / "outputs.npz")
    x, y_then = recorded[f"{name}.x"], recorded[f"{name}.y"]
    y_now = old.forward(x)
    assert y_now.shape == y_then.shape
    if name == "trained":
        # the old loader read out in float32 (a @ R.T); the library's readout reads in float64
        np.testing.assert_allclose(y_now, y_then, rtol=1e-6, atol=1e-7)
        return
    net, readout = make.networks()[name]
    path = tmp_path / f"{name}.safetensors"
    export_network(net, path, readout=readout, seed=0)
    assert path.read_bytes() == weights.read_bytes()  # same network, same bytes
    new_meta = json.loads(sidecar_path(path).read_text())
    old_meta = json.loads(sidecar_path(weights).read_text())
    assert new_meta == old_meta
    # the loaded forward pass is the in-memory network's (same arrays, same steps)
    assert np.array_equal(y_now, as_loaded(net, readout=readout).forward(x))
    # and what the old loader computed: the same, or (circuits, whose input the old loader
    # encoded with its own sums) the same to rounding
    if name == "circuit":
        np.testing.assert_allclose(y_now, y_then, atol=ROUNDING, rtol=0)
    else:
        assert np.array_equal(y_now, y_then)


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
        (lambda m: m.update(network_kind="spaceship"), "unknown kind 'spaceship'"),
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
    with pytest.raises(ValueError, match="a must have shape"):
        net.outputs_from_hidden(np.zeros((2, 3)))
    assert isinstance(net, LoadedNetwork) and set(NETWORK_KINDS) >= {
        "uand",
        "trained_uand",
        "circuit",
    }


def test_each_kind_loads_as_its_own_class(trained, compiled) -> None:
    """A loaded network has the methods of its kind and only those (no method of another kind)."""
    snet = build_superposed_uand(20, 30, 3, 12, seed=1)
    cases = {
        "uand": (sp.build_uand(12, 10, 3, seed=0), LoadedUAnd),
        "trained_uand": (trained, LoadedUAnd),
        "superposed": (snet, LoadedSuperposed),
        "circuit": (compiled, LoadedCircuit),
        "deep": (deep_network(20, 60, 2, 2, seed=1), LoadedDeep),
    }
    for kind, (net, cls) in cases.items():
        loaded = as_loaded(net)
        assert loaded.network_kind == kind and type(loaded) is cls
        assert NETWORK_KINDS[kind].loaded is cls
    uand, circuit = as_loaded(cases["uand"][0]), as_loaded(compiled)
    assert not hasattr(uand, "residuals") and not hasattr(uand, "hidden_from")
    assert not hasattr(circuit, "hidden") and not hasattr(circuit, "layer_arrays")
    assert not hasattr(as_loaded(cases["deep"][0]), "readout_rows")


# ------------------------------------------------------------------ CLI


@pytest.mark.parametrize(
    "argv",
    [
        ["uand", "--features", "15", "--neurons", "12", "--sparsity", "3", "--weights", "gaussian"],
        ["trained", "--features", "10", "--neurons", "6", "--sparsity", "3", "--steps", "5"],
        ["circuit", "--features", "60", "--embed-dim", "40", "--depth", "2"],
        ["deep", "--features", "40", "--embed-dim", "120", "--sparsity", "2", "--depth", "2"],
        [
            "deep",
            "--features",
            "40",
            "--embed-dim",
            "160",
            "--sparsity",
            "2",
            "--depth",
            "2",
            "--design",
            "code",
            "--blocks",
            "7",
        ],
    ],
)
def test_cli_export_writes_loadable_files(tmp_path, capsys, argv) -> None:
    out = tmp_path / "net.safetensors"
    assert main(["export", *argv, "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    loaded = load_network(out)
    assert info["sha256"] == loaded.meta["sha256"] and info["network_kind"] == loaded.network_kind
    m = loaded.sizes["n_features"]
    y = loaded.forward(_x(m, 2, k=3))
    assert y.shape[0] == 3 and np.isfinite(y).all()


def test_cli_export_same_seed_same_bytes(tmp_path) -> None:
    for name in ("a", "b"):
        argv = ["export", "uand", "--features", "15", "--neurons", "12", "--sparsity", "3"]
        assert main([*argv, "--seed", "3", "--out", str(tmp_path / f"{name}.safetensors")]) == 0
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()


def test_cli_superposed_is_the_library_network(tmp_path) -> None:
    out = tmp_path / "s.safetensors"
    argv = ["export", "superposed", "--features", "30", "--neurons", "40", "--embed-dim", "12"]
    argv += ["--sparsity", "3", "--embedding-kind", "sign", "--seed", "4", "--out", str(out)]
    assert main(argv) == 0
    loaded = load_network(out)
    snet = build_superposed_uand(30, 40, 3, 12, embedding_kind="sign", seed=4)
    active = sp.sample_sparse(30, 3, 10, seed=2)
    assert np.array_equal(loaded.hidden(sp.to_dense(active, 30)), snet.activations(active))
    assert loaded.meta["seed"] == 4 and loaded.meta["embedding"]["rule"]["embedding_kind"] == "sign"
    assert loaded.meta["output_embedding"] is None


def test_cli_deep_is_the_library_network(tmp_path) -> None:
    out = tmp_path / "d.safetensors"
    argv = ["export", "deep", "--features", "40", "--embed-dim", "120", "--sparsity", "2"]
    argv += ["--depth", "3", "--embedding-scheme", "fresh", "--gate-neurons", "90", "--seed", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    loaded = load_network(out)
    net = deep_network(40, 120, 2, 3, gate_neurons=90, embedding_scheme="fresh", seed=2)
    x = sp.to_dense(sp.sample_sparse(40, 2, 10, seed=3), 40).astype(bool)
    assert np.array_equal(loaded.forward(x), _library_states(net, x)[-1])
    assert loaded.meta["extra"] == {"sparsity": 2} and loaded.meta["seed"] == 2
    assert loaded.sizes["gate_neurons"] == 90 and loaded.meta["embedding"]["scheme"] == "fresh"


def _deep_argv(*extra: str) -> list[str]:
    base = ["export", "deep", "--features", "40", "--embed-dim", "120", "--sparsity", "2"]
    return [*base, *extra]


def _sup(*extra: str) -> list[str]:
    base = ["export", "superposed", "--features", "30", "--neurons", "40", "--sparsity", "3"]
    return [*base, *extra]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["export"], "KIND"),
        (["export", "bogus"], "invalid choice"),
        (
            ["export", "uand", "--features", "10", "--neurons", "5", "--out", "x.safetensors"],
            "--sparsity",
        ),
        (["export", "uand", "--features", "10", "--neurons", "5", "--sparsity", "3"], "--out"),
        (
            [
                "export",
                "uand",
                "--features",
                "10",
                "--neurons",
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
                "--neurons",
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
                "--embed-dim",
                "5",
                "--depth",
                "1",
                "--out",
                "x.safetensors",
            ],
            "--features",
        ),
        (_sup("--out", "x.safetensors"), "--embed-dim"),
        (_sup("--embed-dim", "0", "--out", "x.safetensors"), "--embed-dim"),
        (_sup("--embed-dim", "wide", "--out", "x.safetensors"), "'tied'"),
        (_sup("--embed-dim", "10", "--out-dim", "0", "--out", "x.safetensors"), "--out-dim"),
        (
            _sup(
                "--embed-dim",
                "10",
                "--weights",
                "gaussian",
                "--arity",
                "3",
                "--out",
                "x.safetensors",
            ),
            "arity must be 2",
        ),
        (_sup("--embed-dim", "10", "--out", "x.npz"), ".safetensors"),
        (_deep_argv("--out", "x.safetensors"), "--depth"),
        (_deep_argv("--depth", "0", "--out", "x.safetensors"), "--depth"),
        (_deep_argv("--depth", "2", "--design", "rs", "--out", "x.safetensors"), "--design"),
        (
            _deep_argv(
                "--depth", "2", "--design", "code", "--blocks", "4", "--out", "x.safetensors"
            ),
            "blocks must be > 2 * sparsity",
        ),
        (
            [
                "export",
                "deep",
                "--features",
                "1",
                "--embed-dim",
                "9",
                "--sparsity",
                "1",
                "--depth",
                "1",
            ]
            + ["--out", "x.safetensors"],
            "features must be >= 2",
        ),
        (_deep_argv("--depth", "2", "--sparsity", "50", "--out", "x.safetensors"), "sparsity"),
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
        (dict(_superposed_cases())["bernoulli"], _x(40, 3)),
        (dict(_superposed_cases())["gaussian"], _x(40, 3)),
        (dict(_deep_cases())["float64"], _deep_x()),
        (dict(_deep_cases())["code"], _deep_x()),
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


def test_to_torch_without_torch_is_an_import_error_with_the_install_line(monkeypatch) -> None:
    """Whether or not torch is installed here: an import that fails is an ImportError."""
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    with pytest.raises(ImportError, match="to_torch needs PyTorch") as exc:
        to_torch(sp.build_uand(12, 10, 3, seed=0))
    assert TORCH_INSTALL in str(exc.value) and TORCH_INSTALL == "pip install torch"
    assert exc.value.name == "torch"


# ------------------------------------------------------------------ superposed U-AND


def _superposed_cases():
    yield "bernoulli", build_superposed_uand(40, 60, 3, 24, weights="bernoulli", seed=11)
    yield "rademacher", build_superposed_uand(40, 60, 3, 24, weights="rademacher", seed=12)
    yield (
        "gaussian",
        build_superposed_uand(40, 60, 3, 24, weights="gaussian", embedding_kind="sign", seed=13),
    )


def _library_outputs(snet, active):
    tup = tuple_unrank(np.arange(comb(snet.n_features, snet.arity)), snet.n_features, snet.arity)
    return snet.readout.outputs(snet.readout.prepare(snet.activations(active)), tup)


@pytest.mark.parametrize("readout", ["explicit", "rule"])
@pytest.mark.parametrize(("name", "snet"), list(_superposed_cases()))
def test_superposed_round_trip_exact(tmp_path, name, snet, readout) -> None:
    path = tmp_path / f"{name}.safetensors"
    export_network(snet, path, readout=readout, seed=11)
    loaded = load_network(path)
    mem = as_loaded(snet, readout=readout)
    active = sp.sample_sparse(40, 3, 25, seed=7)
    x = sp.to_dense(active, 40)
    assert loaded.network_kind == "superposed" and loaded.meta["construction"]["weights"] == name
    assert np.array_equal(loaded.forward(x), mem.forward(x))  # bit for bit
    for k, v in mem.tensors.items():
        assert loaded.tensors[k].dtype == v.dtype and np.array_equal(loaded.tensors[k], v)
    # the loaded layer is the library's layer, bit for bit: same sums in the same order
    assert np.array_equal(loaded.embed(x), snet.embedded(active))
    assert np.array_equal(loaded.hidden(x), snet.activations(active))
    assert np.array_equal(loaded.embedding_matrix(), snet.embedding.matrix())
    np.testing.assert_allclose(
        loaded.forward(x), _library_outputs(snet, active), atol=ROUNDING, rtol=0
    )
    # the stored W is the construction's, in its own format (CSR for Bernoulli)
    W = loaded.first_layer()
    dense = W.toarray() if name == "bernoulli" else W
    ref = snet.net.W.toarray() if name == "bernoulli" else snet.net.W
    assert np.array_equal(dense, ref)
    assert ("layer.weight.indptr" in loaded.tensors) == (name == "bernoulli")
    sizes = loaded.sizes
    assert (sizes["n_features"], sizes["neurons"], sizes["embed_dim"]) == (40, 60, 24)


def test_superposed_readout_rules_agree_with_tensor() -> None:
    tup = tuple_unrank(np.arange(comb(40, 2)), 40, 2)
    for _, snet in _superposed_cases():
        a, b = as_loaded(snet, readout="explicit"), as_loaded(snet, readout="rule")
        np.testing.assert_allclose(a.readout_rows(tup), b.readout_rows(tup), atol=ROUNDING)
    # the sign rule carries the noise-recalibrated scale, not the basis-aligned one
    snet = dict(_superposed_cases())["rademacher"]
    rule = as_loaded(snet, readout="rule").meta["readout"]
    c = superposed_sign_constant(3, "rademacher", snet.noise_var)
    assert rule["scale"] == 1.0 / (60 * c) and snet.noise_var > 0
    assert rule["scale"] != 1.0 / (60 * sp.sign_readout_constant(3, "rademacher"))


def test_superposed_phi_by_rule_regenerates_the_same_bits(tmp_path, monkeypatch) -> None:
    """A Phi too large to store is regenerated from its rule: the same network, bit for bit."""
    import superposition.export.embeddings as ex

    snet = dict(_superposed_cases())["bernoulli"]
    full = tmp_path / "full.safetensors"
    export_network(snet, full)
    monkeypatch.setattr(ex, "EXPLICIT_EMBEDDING_ENTRIES", 100)
    small = tmp_path / "small.safetensors"
    export_network(snet, small)
    a, b = load_network(full), load_network(small)
    assert "embedding.phi" in a.tensors and "embedding.phi" not in b.tensors
    assert (
        "tensor" not in b.meta["embedding"]
        and b.meta["embedding"]["rule"]["embedding_kind"] == "gaussian"
    )
    x = _x(40, 3)
    assert np.array_equal(a.forward(x), b.forward(x))
    assert np.array_equal(b.embedding_matrix(), a.tensors["embedding.phi"])
    # the recorded rule reproduces the stored tensor (its parameters are the right ones)
    rule, shape = a.meta["embedding"]["rule"], a.meta["embedding"]["shape"]
    regen = sp.Embedding(
        shape[1], shape[0], embedding_kind=rule["embedding_kind"], seed=rule["seed"]
    ).matrix()
    assert np.array_equal(regen, a.tensors["embedding.phi"])


def test_superposed_wide_embedding_is_exact_across_readout_chunks() -> None:
    """More features than one readout chunk (32 x 256): still the library's bits."""
    m = 9000
    snet = build_superposed_uand(m, 24, 3, 16, seed=5)
    loaded = as_loaded(snet)
    assert loaded.tensors["embedding.phi"].shape == (16, m)
    active = sp.sample_sparse(m, 3, 6, seed=1)
    x = sp.to_dense(active, m)
    assert np.array_equal(loaded.hidden(x), snet.activations(active))


def test_superposed_rule_with_other_bits_is_refused(tmp_path, monkeypatch) -> None:
    import superposition.export.embeddings as ex

    monkeypatch.setattr(ex, "EXPLICIT_EMBEDDING_ENTRIES", 100)
    path = tmp_path / "s.safetensors"
    export_network(dict(_superposed_cases())["rademacher"], path)
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    meta["embedding"]["rule"]["seed"] += 1  # a sidecar describing another Phi
    side.write_text(json.dumps(meta))
    net = load_network(path)
    with pytest.raises(ValueError, match="embedding: regenerated by its rule, it has other bits"):
        net.forward(_x(40, 3))
    meta["embedding"]["rule"]["seed"] -= 1
    meta["embedding"]["rule"]["block"] = 128
    side.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="blocks of 128 columns"):
        load_network(path).hidden(_x(40, 3))


def test_superposed_basis_aligned_is_the_uand_network() -> None:
    """embed_dim=None (Phi = I): the superposed export computes what the U-AND export computes."""
    snet = build_superposed_uand(30, 50, 3, None, seed=2)
    a, b = as_loaded(snet), as_loaded(snet.net)
    assert a.meta["embedding"]["storage"] == "identity" and "embedding.phi" not in a.tensors
    x = _x(30, 3)
    assert np.array_equal(a.embed(x), x)
    assert np.array_equal(a.hidden(x), b.hidden(x))
    assert np.array_equal(a.forward(x), b.forward(x))


def test_superposed_output_embedding(tmp_path, monkeypatch) -> None:
    import superposition.export.embeddings as ex

    snet = dict(_superposed_cases())["bernoulli"]
    with_psi = WithOutputEmbedding(snet, out_dim=48)
    path = tmp_path / "o.safetensors"
    export_network(with_psi, path)
    loaded = load_network(path)
    assert loaded.sizes["out_dim"] == 48
    psi = sp.Embedding(comb(40, 2), 48, seed=1, dtype=np.float32)
    assert np.array_equal(loaded.tensors["output_embedding.psi"], psi.matrix())
    # the outputs, written into Psi and read back there, as output_embedding_errors measures
    active = sp.sample_sparse(40, 3, 12, seed=3)
    x = sp.to_dense(active, 40)
    back = loaded.read_outputs(loaded.embed_outputs(loaded.forward(x)))
    target = np.zeros_like(back)
    for t, act in enumerate(active):
        pairs = np.array([(u, v) for i, u in enumerate(act) for v in act[i + 1 :]])
        target[t, tuple_rank(pairs, 40)] = 1.0
    ref = output_embedding_errors(snet, active, out_dim=48, seed=1)
    # the library sums in float32 in another order (ssyrk): agreement to float32 rounding
    assert abs(np.abs(back - target).max() - ref["max_abs_error"]) < 1e-4
    assert abs(np.abs(back - target).mean() - ref["mean_abs_error"]) < 1e-5
    # Psi by its rule: the same bits
    monkeypatch.setattr(ex, "EXPLICIT_EMBEDDING_ENTRIES", 100)
    small = as_loaded(with_psi)
    assert "output_embedding.psi" not in small.tensors
    y = loaded.forward(x)
    assert np.array_equal(small.embed_outputs(y), loaded.embed_outputs(y))
    with pytest.raises(ValueError, match="no output embedding"):
        as_loaded(snet).embed_outputs(y)


def test_with_output_embedding_checks_arguments() -> None:
    snet = dict(_superposed_cases())["bernoulli"]
    with pytest.raises(ValueError, match="network must be a SuperposedUAnd"):
        WithOutputEmbedding(sp.build_uand(10, 5, 2))
    with pytest.raises(ValueError, match="out_dim"):
        WithOutputEmbedding(snet, out_dim=0)
    with pytest.raises(ValueError, match="embedding_kind"):
        WithOutputEmbedding(snet, embedding_kind="cauchy")
    net = as_loaded(snet)
    with pytest.raises(ValueError, match="a0 must have shape"):
        net.hidden_from(np.zeros((2, 5)))
    assert not hasattr(as_loaded(sp.build_uand(10, 5, 2)), "hidden_from")


# ------------------------------------------------------------------ deep corrected circuits


def _deep_cases():
    yield "denoiser", deep_network(60, 200, 2, 4, seed=3)
    yield (
        "fresh",
        deep_network(60, 200, 2, 3, embedding_scheme="fresh", embedding_kind="sign", seed=4),
    )
    yield "code", deep_network(60, 200, 2, 3, design="code", blocks=7, seed=5)
    yield "float64", deep_network(60, 200, 2, 3, dtype=np.float64, and_bias=1.2, seed=6)


def _library_states(net, x, corrected=True):
    """The states run_deep passes through, from the network's own public steps."""
    a = net.encode(x)
    r = net.readout(a, 0)
    out = [a]
    for ell in range(1, net.depth + 1):
        a = net.gate_step(ell, r)
        r = net.readout(a, ell)
        out.append(a)
        if corrected:
            a = net.correct(a, r, ell)
            r = net.readout(a, ell)
            out.append(a)
    return out


def _deep_x(k=20, seed=1):
    return sp.to_dense(sp.sample_sparse(60, 2, k, seed=seed), 60).astype(bool)


@pytest.mark.parametrize(("name", "net"), list(_deep_cases()))
def test_deep_round_trip_exact(tmp_path, name, net) -> None:
    path = tmp_path / f"{name}.safetensors"
    export_network(net, path)
    loaded = load_network(path)
    x = _deep_x()
    got = list(loaded.residuals(x))
    mem = list(as_loaded(net).residuals(x))
    lib = _library_states(net, x)
    assert len(got) == 2 * net.depth + 1
    for g, m_, ref in zip(got, mem, lib, strict=True):
        assert np.array_equal(g, m_) and np.array_equal(g, ref)  # bit for bit
        assert g.dtype == np.dtype(net.dtype)
    assert np.array_equal(loaded.forward(x), lib[-1])
    truth = loaded.ground_truth(x)
    for t, ref in zip(truth, net.circuit.evaluate(x), strict=True):
        assert np.array_equal(t.astype(bool), ref)
    # run_deep's per-layer errors are those of the loaded network's decoded states
    trace = run_deep(net, x, uncorrected=False).corrected
    for ell in range(net.depth + 1):
        err = np.abs(loaded.decode(got[2 * ell], ell) - truth[ell]).max()
        assert err == trace.max_error[ell]
    assert loaded.meta["seed"] == net.seed and loaded.network_kind == "deep"
    assert loaded.meta["construction"]["design"] == net.design
    assert loaded.sizes["network_layers"] == 2 * net.depth


@pytest.mark.parametrize(("name", "net"), list(_deep_cases())[:3])
def test_deep_uncorrected_path(name, net) -> None:
    loaded = as_loaded(net)
    x = _deep_x()
    got = list(loaded.residuals(x, corrected=False))
    lib = _library_states(net, x, corrected=False)
    assert len(got) == net.depth + 1
    assert all(np.array_equal(g, r) for g, r in zip(got, lib, strict=True))
    trace = run_deep(net, x, corrected=False, blowup=1e30).uncorrected
    truth = loaded.ground_truth(x)
    for ell in range(net.depth + 1):
        assert np.abs(loaded.decode(got[ell], ell) - truth[ell]).max() == trace.max_error[ell]


@pytest.mark.parametrize(("name", "net"), list(_deep_cases()))
def test_deep_plain_layers_are_the_network(name, net, monkeypatch) -> None:
    """Every layer as plain W_in, b, W_out (W_skip): the library's layers, and the same forward."""
    import superposition.export.deep as ex

    loaded = as_loaded(net)
    assert loaded.meta["plain"]["stored"] and "layer.0.W_skip" in loaded.tensors
    x = _deep_x()
    a = x.astype(np.float64) @ loaded.decode(np.eye(200), 0).T  # Phi_0 x
    for k in range(2 * net.depth):
        t = {n: v.astype(np.float64) for n, v in loaded.layer_arrays(k).items()}
        out = np.maximum(a @ t["W_in"].T + t["b"], 0.0) @ t["W_out"].T
        a = out + a @ t["W_skip"].T if k % 2 == 0 else out
        assert ("W_skip" in t) == (k % 2 == 0)
    # float32 networks: the factored and the plain products round differently
    tol = 1e-9 if net.dtype == np.float64 else 1e-4
    np.testing.assert_allclose(a, loaded.forward(x), atol=tol, rtol=0)
    # the library's own materialised layers (compiler's bias, and_bias = 1)
    if net.and_bias == 1.0:
        for ell in (1, net.depth):
            lib = net.gate_layer(ell)
            mine = loaded.layer_arrays(2 * ell - 2)
            for key in ("W_in", "b", "W_out", "W_skip"):
                np.testing.assert_allclose(mine[key], getattr(lib, key), atol=1e-5, rtol=0)
    w_in, b, w_out = net.correction(1).weights()
    mine = loaded.layer_arrays(1)
    np.testing.assert_allclose(mine["W_in"], w_in, atol=1e-5, rtol=1e-6)
    np.testing.assert_allclose(mine["b"], b, atol=1e-6, rtol=0)
    np.testing.assert_allclose(mine["W_out"], w_out, atol=1e-6, rtol=0)
    # without the stored plain arrays: computed from the factors, the same bits
    monkeypatch.setattr(ex, "PLAIN_LAYER_ENTRIES", 0)
    bare = as_loaded(net)
    assert not bare.meta["plain"]["stored"] and "layer.0.W_in" not in bare.tensors
    for k in (0, 1, 2 * net.depth - 1):
        for key, v in loaded.layer_arrays(k).items():
            assert np.array_equal(bare.layer_arrays(k)[key], v)


@pytest.mark.parametrize("name", ["denoiser", "fresh", "code"])
def test_deep_embeddings_by_rule(name, monkeypatch) -> None:
    import superposition.export.embeddings as ex

    net = dict(_deep_cases())[name]
    full = as_loaded(net)
    monkeypatch.setattr(ex, "EXPLICIT_EMBEDDING_ENTRIES", 100)
    small = as_loaded(net)
    assert not any(k.startswith("embedding.") for k in small.tensors)
    assert sum(k.startswith("embedding.") for k in full.tensors) == (4 if name == "fresh" else 1)
    x = _deep_x()
    assert np.array_equal(small.forward(x), full.forward(x))
    for ell in range(net.depth + 1):
        assert np.array_equal(small.embedding_matrix(ell), full.embedding_matrix(ell))


def test_deep_rejects_bad_and_mismatched_files(tmp_path, monkeypatch) -> None:
    import superposition.export.embeddings as ex

    net = dict(_deep_cases())["fresh"]
    path = tmp_path / "d.safetensors"
    export_network(net, path)
    side = sidecar_path(path)
    good = side.read_text()
    meta = json.loads(good)
    meta["tensors"]["gate.1.wiring_t.data"]["shape"] = [1]
    side.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="tensor 'gate.1.wiring_t.data'"):
        load_network(path)
    side.write_text(good)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="SHA-256 .* does not match"):
        load_network(path)
    # an embedding stored as its rule, with a sidecar that describes another one
    monkeypatch.setattr(ex, "EXPLICIT_EMBEDDING_ENTRIES", 100)
    export_network(net, path)
    meta = json.loads(side.read_text())
    meta["embedding"]["phi"][2]["rule"]["seed"] += 1
    side.write_text(json.dumps(meta))
    loaded = load_network(path)
    states = loaded.residuals(_deep_x())
    next(states), next(states), next(states)  # layers 0 and 1 use Phi_0, Phi_1: fine
    with pytest.raises(ValueError, match=r"embedding.phi\[2\]: regenerated by its rule"):
        next(states)
    assert not hasattr(loaded, "hidden")
    with pytest.raises(ValueError, match="layer"):
        loaded.layer_arrays(6)
