"""The dictionary-learning benchmark: ground truth per layer, planted dictionaries, bad input, CLI."""

from __future__ import annotations

import json
from math import comb

import numpy as np
import pytest
import scipy.sparse as sps
from safetensors.numpy import save_file

import superposition as sp
from superposition.cli import main

# Normalised dot products of O(1)-sized float64 vectors of at most a few hundred entries are
# exact to a few ulps; 1e-12 is far above that rounding and far below any effect tested.
ROUNDING = 1e-12


def _truth(directions: np.ndarray, kind: str = "and") -> sp.GroundTruth:
    n, dim = directions.shape
    names = tuple(f"f{i}" for i in range(n))
    members = np.arange(n, dtype=np.int64)[:, None]
    return sp.GroundTruth("test", kind, directions, names, members, (), dim)


def _export(net, path, **kw) -> sp.export.LoadedNetwork:
    sp.export_network(net, path, **kw)
    return sp.load_network(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("nets")
    nets = {
        "bernoulli": sp.build_uand(12, 48, 3, weights="bernoulli", seed=1),
        "rademacher": sp.build_uand(10, 32, 3, weights="rademacher", seed=2),
        "trained": sp.train_uand(8, 16, 3, steps=20, seed=3),
        "superposed": sp.build_superposed_uand(24, 48, 3, 12, seed=4),
        "circuit": sp.compile_circuit(sp.random_circuit(60, 2, seed=5), 80, seed=6),
    }
    out = {}
    for name, net in nets.items():
        out[name] = d / f"{name}.safetensors"
        sp.export_network(net, out[name])
    out["deep"] = d / "deep.safetensors"
    sp.export_network(sp.deep_network(32, 128, 2, 3, seed=7), out["deep"], extra={"sparsity": 2})
    return out


@pytest.fixture(scope="module")
def loaded(files) -> dict:
    return {k: sp.load_network(v) for k, v in files.items()}


# ------------------------------------------------------------------ planted dictionaries


def test_true_directions_score_one(rng) -> None:
    T = rng.standard_normal((40, 30))
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    truth = _truth(T)
    perm = rng.permutation(40)
    scale = rng.uniform(0.1, 10.0, size=(40, 1))
    s = sp.score_dictionary(T[perm] * scale, truth)
    np.testing.assert_allclose(s.best_cosine, 1.0, atol=ROUNDING)
    assert s.recovered == 1.0 and s.recovered_count == 40
    assert np.array_equal(s.best_atom, np.argsort(perm))
    assert s.dead == 0 and s.duplicates == 0
    assert s.atoms_matched == 40 and s.atoms_on_features == 1.0
    assert np.all(s.curve[s.thresholds <= 0.99] == 1.0)


def test_basis_is_exact_and_sign_is_ignored_unless_signed() -> None:
    truth = _truth(np.eye(8), kind="input")
    s = sp.score_dictionary(-np.eye(8), truth)
    assert np.array_equal(s.best_cosine, np.ones(8)) and np.all(s.curve == 1.0)
    signed = sp.score_dictionary(-np.eye(8), truth, signed=True)
    assert np.array_equal(signed.best_cosine, np.zeros(8)) and signed.recovered == 0.0


def test_hadamard_rotation_of_the_span_has_cosine_one_over_root_n() -> None:
    """An orthogonal rotation of span(e_0..e_15) by H/4: every |cos| with every feature is 1/4."""
    from scipy.linalg import hadamard

    n, dim = 16, 40
    truth = _truth(np.eye(dim)[:n])
    D = np.zeros((n, dim))
    D[:, :n] = hadamard(n) / 4.0
    s = sp.score_dictionary(D, truth)
    np.testing.assert_allclose(s.best_cosine, 0.25, atol=ROUNDING)
    assert s.recovered == 0.0 and s.duplicates == 0
    np.testing.assert_array_equal(s.curve, (s.thresholds <= 0.25).astype(float))  # 0.25 is exact


@pytest.mark.parametrize("degrees", [10.0, 30.0, 45.0])
def test_plane_rotation(degrees: float) -> None:
    t = np.deg2rad(degrees)
    D = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    s = sp.score_dictionary(D, _truth(np.eye(2)), threshold=0.85)
    expect = max(abs(np.cos(t)), abs(np.sin(t)))
    np.testing.assert_allclose(s.best_cosine, expect, atol=ROUNDING)
    assert s.recovered == float(expect >= 0.85)


def test_noised_copies_at_known_angles_give_the_exact_curve() -> None:
    """Atom k = cos(a_k) e_k + sin(a_k) e_(n+k): its cosine with feature k is cos(a_k), with the
    others 0, so the recovery curve is the empirical distribution of the cos(a_k)."""
    n, dim = 20, 64
    cosines = np.linspace(0.5, 1.0, n)
    D = np.zeros((n, dim))
    D[np.arange(n), np.arange(n)] = cosines
    D[np.arange(n), n + np.arange(n)] = np.sqrt(1 - cosines**2)
    s = sp.score_dictionary(D, _truth(np.eye(dim)[:n]))
    np.testing.assert_allclose(s.best_cosine, cosines, atol=ROUNDING)
    assert s.recovered_count == int(np.sum(cosines >= 0.9 - 1e-12))
    for t, c in zip(s.thresholds, s.curve, strict=True):
        assert c == pytest.approx(np.mean(cosines >= t - 1e-12), abs=1 / n)


def test_random_directions_in_high_dimension_stay_below_the_sphere_bound(rng) -> None:
    """For u uniform on the sphere S^(D-1) and a fixed unit t, P(|u.t| >= e) <= 2 exp(-D e^2 / 2)
    (concentration on the sphere, e.g. Ball 1997, Lemma 2.2). A union bound over the
    n_atoms * n_features pairs puts every best cosine below e = sqrt(2 ln(2 n_a n_f / delta) / D)
    except with probability delta = 1e-6; this fixed seed is one draw of that event."""
    dim, n_f, n_a, delta = 2000, 100, 300, 1e-6
    T = rng.standard_normal((n_f, dim))
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    s = sp.score_dictionary(rng.standard_normal((n_a, dim)), _truth(T))
    bound = np.sqrt(2 * np.log(2 * n_a * n_f / delta) / dim)
    assert bound < 0.2
    assert s.best_cosine.max() < bound and s.recovered == 0.0
    # and the other side: the largest of n_a near-Gaussian cosines is not tiny
    assert s.best_cosine.min() > 1.0 / np.sqrt(dim)


def test_dead_atoms_zero_or_unused_are_never_matched() -> None:
    truth = _truth(np.eye(6))
    D = np.vstack([np.eye(6)[:3], np.zeros((2, 6)), np.eye(6)[3:]])
    s = sp.score_dictionary(D, truth)
    assert s.dead == 2 and s.recovered == 1.0
    assert not np.isin(s.best_atom, [3, 4]).any()
    usage = np.array([1, 1, 0, 1, 1, 1, 1, 1.0])
    u = sp.score_dictionary(D, truth, usage=usage)
    assert u.dead == 3 and u.recovered == pytest.approx(5 / 6)
    assert u.best_cosine[2] == 0.0 and u.atom_best_cosine[2] == 0.0
    none = sp.score_dictionary(np.zeros((4, 6)), truth)
    assert none.dead == 4 and none.recovered == 0.0 and np.all(none.best_atom == -1)


def test_duplicates_are_live_atoms_near_an_earlier_one(rng) -> None:
    T = np.eye(10)
    truth = _truth(T)
    s = sp.score_dictionary(np.vstack([T, -2 * T, T + 1e-3 * rng.standard_normal(T.shape)]), truth)
    assert s.duplicates == 20 and s.recovered == 1.0
    # two atoms at 60 degrees: duplicates at a 0.5 threshold, not at 0.9
    D = np.array([[1.0, 0.0], [0.5, np.sqrt(0.75)]])
    assert sp.score_dictionary(D, _truth(np.eye(2)), duplicate_threshold=0.5).duplicates == 1
    assert sp.score_dictionary(D, _truth(np.eye(2))).duplicates == 0


def test_recovered_among_and_summary() -> None:
    D = np.zeros((4, 8))
    D[:2, :2] = np.eye(2)
    s = sp.score_dictionary(D, _truth(np.eye(8)[:4]))
    assert s.recovered == 0.5
    assert s.recovered_among(np.array([True, True, False, False])) == 1.0
    assert s.recovered_among(np.array([False, False, True, True])) == 0.0
    assert np.isnan(s.recovered_among(np.zeros(4, dtype=bool)))
    out = json.loads(json.dumps(s.summary(per_feature=True)))
    assert out["recovered"] == 0.5 and out["dead"] == 2 and len(out["features"]) == 4
    assert len(out["curve"]["thresholds"]) == len(out["curve"]["recovered"]) == 101


@pytest.mark.parametrize(
    ("dictionary", "needle"),
    [
        (np.ones(8), "shape (n_atoms >= 1, 8)"),
        (np.ones((8, 5)), "shape (n_atoms >= 1, 8)"),
        (np.ones((0, 8)), "shape (n_atoms >= 1, 8)"),
        (np.ones((2, 8, 1)), "shape (n_atoms >= 1, 8)"),
        (np.array([[np.nan] * 8, [1.0] * 8]), "finite: 1 atom"),
        (np.array([[np.inf] * 8]), "finite"),
        (np.ones((2, 8)) * 1j, "real numbers"),
        (np.array([["a"] * 8]), "real numbers"),
    ],
)
def test_bad_dictionaries_name_the_argument(dictionary, needle) -> None:
    with pytest.raises(ValueError, match="dictionary") as exc:
        sp.score_dictionary(dictionary, _truth(np.eye(8)))
    assert needle in str(exc.value)


def test_transposed_dictionary_gets_a_hint() -> None:
    with pytest.raises(ValueError, match="transposed"):
        sp.score_dictionary(np.ones((8, 3)), _truth(np.eye(8)))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"duplicate_threshold": -1}, "duplicate_threshold"),
        ({"usage": np.ones(3)}, "usage"),
        ({"usage": -np.ones(4)}, "usage"),
        ({"usage": np.array([np.nan, 1, 1, 1])}, "usage"),
        ({"thresholds": np.array([0.5, 2.0])}, "thresholds"),
    ],
)
def test_bad_options_name_the_argument(kwargs, name) -> None:
    with pytest.raises(ValueError, match=name):
        sp.score_dictionary(np.eye(4), _truth(np.eye(4)), **kwargs)


def test_truth_must_be_a_ground_truth() -> None:
    with pytest.raises(ValueError, match="truth must be a GroundTruth"):
        sp.score_dictionary(np.eye(4), np.eye(4))


# ------------------------------------------------------------------ ground truth of each kind


def test_layers_of_each_kind(loaded) -> None:
    for name in ("bernoulli", "rademacher", "trained", "superposed"):
        assert sp.ground_truth_layers(loaded[name]) == ("input", "hidden")
    assert sp.ground_truth_layers(loaded["circuit"]) == ("residual.0", "residual.1", "residual.2")
    assert sp.ground_truth_layers(loaded["deep"]) == (
        *(f"residual.{i}" for i in range(4)),
        *(f"gate.{i}" for i in range(1, 4)),
    )


def test_bernoulli_and_directions_are_normalised_gamma_indicators(loaded) -> None:
    net = loaded["bernoulli"]
    W = np.asarray(net.tensors["layer.weight"])
    truth = sp.ground_truth(net, "hidden")
    pairs = sp.tuple_unrank(np.arange(comb(12, 2)), 12, 2)
    gamma = (W[:, pairs[:, 0]] * W[:, pairs[:, 1]]).T  # (pairs, d) 0/1
    size = gamma.sum(axis=1)
    assert truth.n_features + len(truth.missing) == comb(12, 2)
    assert truth.missing == tuple(f"and({a},{b})" for a, b in pairs[size == 0])
    expect = gamma[size > 0] / np.sqrt(size[size > 0])[:, None]
    np.testing.assert_allclose(truth.directions, expect, atol=ROUNDING)
    assert np.array_equal(truth.members, pairs[size > 0]) and truth.dim == 48


def test_sign_and_directions(loaded) -> None:
    net = loaded["rademacher"]
    W = np.asarray(net.tensors["layer.weight"])
    truth = sp.ground_truth(net, "hidden")
    expect = (np.sign(W[:, truth.members[:, 0]]) * np.sign(W[:, truth.members[:, 1]])).T
    np.testing.assert_allclose(truth.directions, expect / np.sqrt(32), atol=ROUNDING)


def test_trained_and_directions_are_its_readout_rows(loaded) -> None:
    net = loaded["trained"]
    R = np.asarray(net.tensors["readout.weight"], dtype=np.float64)
    truth = sp.ground_truth(net, "hidden")
    np.testing.assert_allclose(
        truth.directions, R / np.linalg.norm(R, axis=1, keepdims=True), atol=1e-6
    )


def test_input_directions_are_the_embedding(loaded) -> None:
    net = loaded["superposed"]
    phi = np.asarray(net.embedding_matrix(), dtype=np.float64)
    truth = sp.ground_truth(net, "input")
    np.testing.assert_allclose(
        truth.directions, (phi / np.linalg.norm(phi, axis=0)).T, atol=ROUNDING
    )
    assert truth.dim == 12 and truth.feature_kind == "input"
    basis = sp.ground_truth(loaded["bernoulli"], "input")
    assert np.array_equal(basis.directions, np.eye(12))


def test_circuit_values_are_embedding_columns(loaded) -> None:
    net = loaded["circuit"]
    for ell in range(3):
        phi = np.asarray(net.tensors[f"embedding.{ell}"], dtype=np.float64)
        truth = sp.ground_truth(net, f"residual.{ell}")
        np.testing.assert_allclose(
            truth.directions, (phi / np.linalg.norm(phi, axis=0)).T, atol=ROUNDING
        )
        assert truth.names[0] == f"x{ell}[0]"


def test_deep_products_are_the_wired_pairs(loaded) -> None:
    net = loaded["deep"]
    m, n = 32, net.sizes["gate_neurons"]
    for ell in (1, 3):
        truth = sp.ground_truth(net, f"gate.{ell}")
        t = net.tensors
        wiring = sps.csr_array(
            (
                t[f"gate.{ell}.wiring_t.data"],
                t[f"gate.{ell}.wiring_t.indices"],
                t[f"gate.{ell}.wiring_t.indptr"],
            ),
            shape=(m, n),
        ).toarray()
        u, v = truth.members[:, 0], truth.members[:, 1]
        gamma = (wiring[u] != 0) & (wiring[v] != 0)
        expect = gamma / np.sqrt(gamma.sum(axis=1, keepdims=True))
        np.testing.assert_allclose(truth.directions, expect, atol=1e-6)
        # every pair the circuit multiplies (a gate with a product term) is there once
        left, right = t[f"circuit.{ell - 1}.left"], t[f"circuit.{ell - 1}.right"]
        code = t[f"circuit.{ell - 1}.code"]
        c3 = ((code >> 3) & 1) - ((code >> 2) & 1) - ((code >> 1) & 1) + (code & 1)
        want = {
            (min(u_, v_), max(u_, v_))
            for u_, v_, c in zip(left, right, c3, strict=True)
            if c != 0 and u_ != v_
        }
        assert set(map(tuple, truth.members.tolist())) == want and not truth.missing
        assert len(set(map(tuple, truth.members))) == truth.n_features


@pytest.mark.parametrize(
    "name", ["bernoulli", "rademacher", "trained", "superposed", "circuit", "deep"]
)
def test_every_layer_recovers_its_own_truth(loaded, name) -> None:
    net = loaded[name]
    for layer in sp.ground_truth_layers(net):
        truth = sp.ground_truth(net, layer)
        s = sp.score_dictionary(truth.directions, truth)
        assert s.recovered == 1.0, layer


def test_unknown_layer_lists_the_layers(loaded) -> None:
    with pytest.raises(ValueError, match="layer must be one of input, hidden"):
        sp.ground_truth(loaded["bernoulli"], "gate.1")
    with pytest.raises(ValueError, match=r"residual.0 \.\.\. residual.3, gate.1 \.\.\. gate.3"):
        sp.ground_truth(loaded["deep"], "residual.9")
    with pytest.raises(ValueError, match="LoadedNetwork"):
        sp.ground_truth(sp.build_uand(4, 4, 2, seed=0), "hidden")


def test_a_sidecar_without_the_ground_truth_is_refused(files, tmp_path) -> None:
    src = files["bernoulli"]
    for key, layer, needle in (
        ("readout", "hidden", "readout"),
        ("embedding", "input", "embedding"),
    ):
        dst = tmp_path / f"no_{key}.safetensors"
        dst.write_bytes(src.read_bytes())
        meta = json.loads(src.with_suffix(".json").read_text())
        del meta[key]
        dst.with_suffix(".json").write_text(json.dumps(meta))
        net = sp.load_network(dst)
        with pytest.raises(ValueError, match=needle):
            sp.ground_truth(net, layer)


# ------------------------------------------------------------------ activations and values


def test_sample_layer_is_the_network_on_its_own_inputs(loaded) -> None:
    net = loaded["superposed"]
    a = sp.sample_layer(net, "hidden", 50, seed=3)
    b = sp.sample_layer(net, "hidden", 50, seed=3)
    assert np.array_equal(a.activations, b.activations) and a.sparsity == 3
    assert np.all(a.inputs.sum(axis=1) == 3) and a.inputs.dtype == np.int8
    assert np.array_equal(a.activations, net.hidden(a.inputs))
    assert np.array_equal(
        sp.sample_layer(net, "input", 50, seed=3).activations, net.embed(a.inputs)
    )
    other = sp.sample_layer(net, "hidden", 50, seed=4)
    assert not np.array_equal(a.inputs, other.inputs)


def test_circuit_layers_need_a_sparsity_and_match_the_residuals(loaded) -> None:
    net = loaded["circuit"]
    with pytest.raises(ValueError, match="sparsity"):
        sp.sample_layer(net, "residual.1", 10)
    s = sp.sample_layer(net, "residual.1", 10, sparsity=2, seed=1)
    assert np.array_equal(s.activations, list(net.residuals(s.inputs))[1])


def test_deep_layers(loaded) -> None:
    net = loaded["deep"]
    s = sp.sample_layer(net, "residual.2", 40, seed=2)
    states = list(net.residuals(s.inputs))
    assert np.array_equal(s.activations, states[4])  # after correction layer 2
    g = sp.sample_layer(net, "gate.2", 40, seed=2)
    # the gate layer's hidden neurons, as the network applies them: relu(Phi_1^T a @ wiring_t - 1)
    t = net.tensors
    wiring = sps.csr_array(
        (t["gate.2.wiring_t.data"], t["gate.2.wiring_t.indices"], t["gate.2.wiring_t.indptr"]),
        shape=(32, net.sizes["gate_neurons"]),
    )
    expect = np.maximum(np.asarray(net.decode(states[2], 1) @ wiring) - 1.0, 0.0)
    np.testing.assert_allclose(g.activations, expect, atol=1e-5)  # float32 network


def test_feature_values(loaded) -> None:
    net = loaded["deep"]
    x = sp.sample_layer(net, "residual.0", 30, seed=5).inputs
    vals = net.ground_truth(x)
    v = sp.feature_values(net, sp.ground_truth(net, "residual.2"), x)
    assert np.array_equal(v, vals[2])
    t = sp.ground_truth(net, "gate.2")
    p = sp.feature_values(net, t, x)
    assert np.array_equal(p, vals[1][:, t.members[:, 0]] * vals[1][:, t.members[:, 1]])
    u = loaded["bernoulli"]
    t = sp.ground_truth(u, "hidden")
    xb = sp.sample_layer(u, "hidden", 30, seed=5).inputs
    assert np.array_equal(
        sp.feature_values(u, t, xb), xb[:, t.members[:, 0]] * xb[:, t.members[:, 1]]
    )


def test_contrast_of_the_input_layer_is_the_embedding(loaded) -> None:
    net = loaded["superposed"]
    truth = sp.ground_truth(net, "input")
    delta = sp.contrast_directions(net, truth, n_contexts=4, seed=1)
    np.testing.assert_allclose(delta, np.asarray(net.embedding_matrix()).T, atol=ROUNDING)


def test_contrast_of_a_bernoulli_and_without_context_is_its_gamma(tmp_path) -> None:
    """At s = 2 there is no context: a(k,l) - a(k) - a(l) + a() = 1_Gamma(k,l) exactly (bias -1)."""
    net = _export(sp.build_uand(10, 40, 2, seed=8), tmp_path / "u.safetensors")
    truth = sp.ground_truth(net, "hidden")
    delta = sp.contrast_directions(net, truth, n_contexts=3, seed=0)
    gamma = delta / np.linalg.norm(delta, axis=1, keepdims=True)
    np.testing.assert_allclose(gamma, truth.directions, atol=ROUNDING)
    assert set(np.unique(delta)) <= {0.0, 1.0}


def test_contrast_truth_keeps_the_features(loaded) -> None:
    net = loaded["superposed"]
    truth = sp.ground_truth(net, "input")
    alt = sp.contrast_truth(net, truth, n_contexts=2, seed=1)
    np.testing.assert_allclose(alt.directions, truth.directions, atol=ROUNDING)
    assert alt.names == truth.names and alt.missing == ()
    hidden = sp.ground_truth(loaded["bernoulli"], "hidden")
    alt = sp.contrast_truth(loaded["bernoulli"], hidden, n_contexts=8, seed=1)
    assert alt.n_features + len(alt.missing) == comb(12, 2)
    assert set(hidden.missing) <= set(alt.missing)


def test_input_contrast_on_the_hidden_layer_of_a_bernoulli_layer(tmp_path) -> None:
    """At s = 2 the context is one other input o: a(o,k) - a(o) = 1_Gamma(k,o), so the input
    contrast on the hidden layer is the mean over contexts of the Gamma indicators of k."""
    net = _export(sp.build_uand(6, 30, 2, seed=9), tmp_path / "u.safetensors")
    inputs = sp.ground_truth(net, "input")
    alt = sp.contrast_truth(net, inputs, layer="hidden", n_contexts=200, seed=0)
    assert alt.layer == "hidden" and alt.dim == 30 and alt.feature_kind == "input"
    W = np.asarray(net.tensors["layer.weight"])
    for k, name in zip(alt.members[:, 0], alt.names, strict=True):
        assert name == f"x[{k}]"
        on = alt.directions[list(alt.names).index(name)] > 0
        # only neurons wired to k (and to some other input) can light up
        assert np.all(W[on, k] == 1) and np.all(W[on].sum(axis=1) >= 2)


def test_contrast_is_for_uand_kinds(loaded) -> None:
    with pytest.raises(ValueError, match="contrast_directions applies"):
        sp.contrast_directions(loaded["deep"], sp.ground_truth(loaded["deep"], "gate.1"))


# ------------------------------------------------------------------ dictionary files


def test_load_dictionary(tmp_path) -> None:
    D = np.arange(12.0).reshape(3, 4)
    np.save(tmp_path / "d.npy", D)
    assert np.array_equal(sp.load_dictionary(tmp_path / "d.npy"), D)
    save_file({"decoder": D.astype(np.float32)}, str(tmp_path / "one.safetensors"))
    assert np.array_equal(sp.load_dictionary(tmp_path / "one.safetensors"), D)
    save_file({"a": D, "b": D}, str(tmp_path / "two.safetensors"))
    with pytest.raises(ValueError, match="choose one with tensor"):
        sp.load_dictionary(tmp_path / "two.safetensors")
    assert np.array_equal(sp.load_dictionary(tmp_path / "two.safetensors", tensor="b"), D)
    with pytest.raises(ValueError, match="tensor must be one of"):
        sp.load_dictionary(tmp_path / "two.safetensors", tensor="c")
    np.save(tmp_path / "obj.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a readable .npy"):
        sp.load_dictionary(tmp_path / "obj.npy")
    with pytest.raises(ValueError, match="no such file"):
        sp.load_dictionary(tmp_path / "missing.npy")
    (tmp_path / "d.txt").write_text("1 2 3")
    with pytest.raises(ValueError, match=".npy or .safetensors"):
        sp.load_dictionary(tmp_path / "d.txt")


# ------------------------------------------------------------------ CLI


def test_cli_layers_activations_and_score(files, loaded, tmp_path, capsys) -> None:
    net = str(files["bernoulli"])
    assert main(["benchmark", "layers", net, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["layer"] for r in out["layers"]] == ["input", "hidden"]
    acts = tmp_path / "a.npy"
    xin = tmp_path / "x.npy"
    argv = ["benchmark", "activations", net, "--samples", "40", "--seed", "2"]
    assert main([*argv, "--out", str(acts), "--inputs-out", str(xin), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layer"] == "hidden" and info["shape"] == [40, 48]
    s = sp.sample_layer(loaded["bernoulli"], "hidden", 40, seed=2)
    assert np.array_equal(np.load(acts), s.activations) and np.array_equal(np.load(xin), s.inputs)
    truth = sp.ground_truth(loaded["bernoulli"], "hidden")
    dpath = tmp_path / "truth.npy"
    np.save(dpath, np.vstack([truth.directions, np.zeros((2, 48))]))
    assert main(["benchmark", "score", net, str(dpath), "--json", "--per-feature"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["recovered"] == 1.0 and res["dead"] == 2 and res["missing"] == len(truth.missing)
    assert len(res["features"]) == truth.n_features
    usage = tmp_path / "usage.npy"
    np.save(usage, np.r_[np.zeros(truth.n_features), np.ones(2)])
    assert main(["benchmark", "score", net, str(dpath), "--usage", str(usage), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["recovered"] == 0.0 and res["dead"] == truth.n_features + 2
    assert main(["benchmark", "score", net, str(dpath)]) == 0
    assert "recovered at |cos| >= 0.9: 1.000" in capsys.readouterr().out


def test_cli_circuit_layers(files, tmp_path, capsys) -> None:
    net = str(files["deep"])
    out = tmp_path / "r.npy"
    argv = ["benchmark", "activations", net, "--layer", "residual.3", "--samples", "20"]
    assert main([*argv, "--out", str(out)]) == 0
    assert np.load(out).shape == (20, 128)
    capsys.readouterr()


def _bad_cases(files, tmp_path):
    net = str(files["bernoulli"])
    good = tmp_path / "good.npy"
    np.save(good, np.eye(48))
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.ones((5, 7)))
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((3, 48), np.nan))
    no_truth = tmp_path / "nogt.safetensors"
    no_truth.write_bytes(files["bernoulli"].read_bytes())
    meta = json.loads(files["bernoulli"].with_suffix(".json").read_text())
    del meta["readout"]
    no_truth.with_suffix(".json").write_text(json.dumps(meta))
    return [
        (["score", net, str(wrong)], "shape (n_atoms >= 1, 48)"),
        (["score", net, str(nan)], "finite"),
        (["score", net, str(good), "--layer", "deep"], "layer must be one of input, hidden"),
        (["score", str(no_truth), str(good)], "readout"),
        (["score", net, str(tmp_path / "missing.npy")], "no such file"),
        (["score", str(tmp_path / "missing.safetensors"), str(good)], "no such file"),
        (["score", net, str(good), "--threshold", "2"], "threshold"),
        (["score", net, str(good), "--usage", str(tmp_path / "u.txt")], "--usage"),
        (["activations", net, "--samples", "5", "--out", str(tmp_path / "a.txt")], "--out"),
        (["activations", net, "--samples", "0", "--out", str(good)], "--samples"),
        (["activations", str(files["circuit"]), "--samples", "5", "--out", str(good)], "--layer"),
        (
            [
                "activations",
                str(files["circuit"]),
                "--layer",
                "residual.1",
                "--samples",
                "5",
                "--out",
                str(good),
            ],
            "sparsity",
        ),  # fmt: skip
    ]


def test_cli_bad_input_one_line_exit_2(files, tmp_path, capsys) -> None:
    for argv, needle in _bad_cases(files, tmp_path):
        with pytest.raises(SystemExit) as exc:
            raise SystemExit(main(["benchmark", *argv]))
        assert exc.value.code == 2, argv
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and needle in err and "Traceback" not in err, (argv, err)
