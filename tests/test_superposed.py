"""U-AND on superposed inputs (paper §2): dense brute-force oracles, the basis-aligned limit,
noise theory, the neurons search, CLI."""

from __future__ import annotations

import itertools
import json
from math import comb

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from superposition import superposed as S
from superposition import theory
from superposition import uand as U
from superposition.cli import main
from superposition.embedding import Embedding, coherence, sample_sparse, to_dense
from superposition.fit import quantile

FLOAT_TOL = 1e-10  # float64 rounding of sums of at most a few thousand terms of size <= 10
F32_TOL = 2e-5  # float32 products (max_errors): sums of <= 1000 terms of size <= 5, rel 6e-8 each


# ---------------------------------------------------------------- the oracle


def brute(snet: S.SuperposedUAnd, active: np.ndarray) -> dict[str, np.ndarray]:
    """Materialise Φ and W_in = W Φᵀ densely; loop over inputs, outputs and neurons in Python."""
    W = snet.net.W.toarray() if snet.weights == "bernoulli" else np.asarray(snet.net.W)
    d, m = W.shape
    if snet.embedding is None:
        phi = np.eye(m)
    else:
        phi = np.stack([snet.embedding.columns(np.array([k]))[:, 0] for k in range(m)], axis=1)
    w_in = W @ phi.T  # (d, d0): the first layer as a network would store it
    c = None
    if snet.weights != "bernoulli":
        c = S.superposed_sign_constant(snet.sparsity, snet.weights, snet.noise_var)
    per_input, errs = [], {0: [], 1: [], 2: []}
    for act in active:
        x = np.zeros(m)
        x[list(act)] = 1.0
        a = np.maximum(w_in @ (phi @ x) + snet.net.bias, 0.0)
        worst = np.zeros(3)
        for k, k2 in itertools.combinations(range(m), 2):
            if c is None:
                gamma = [i for i in range(d) if W[i, k] == 1 and W[i, k2] == 1]
                y = sum(a[i] for i in gamma) / len(gamma) if gamma else 0.0
            else:
                y = sum(np.sign(W[i, k] * W[i, k2]) * a[i] for i in range(d)) / (d * c)
            j = int(x[k] + x[k2])
            e = y - (1.0 if j == 2 else 0.0)
            errs[j].append(e)
            worst[j] = max(worst[j], abs(e))
        per_input.append(worst)
    return {"per_input": np.array(per_input), **{f"e{j}": np.array(v) for j, v in errs.items()}}


CASES = [
    ("bernoulli", 9, 40, 3, 6),
    ("bernoulli", 10, 60, 2, 30),
    ("rademacher", 9, 30, 3, 5),
    ("gaussian", 8, 25, 2, 7),
]


@pytest.mark.parametrize(("weights", "m", "d", "s", "d0"), CASES)
def test_against_dense_oracle(weights: str, m: int, d: int, s: int, d0: int) -> None:
    snet = S.build_superposed_uand(m, d, s, d0, weights=weights, seed=3)
    active = sample_sparse(m, s, 6, seed=4)
    ref = brute(snet, active)
    res = S.evaluate_superposed(snet, active)
    for j in range(3):
        e = ref[f"e{j}"]
        st = res.pattern(j)
        assert st["count"] == e.size
        assert_allclose(st["mean"], e.mean(), atol=FLOAT_TOL)
        assert_allclose(st["max_abs"], np.abs(e).max(), atol=FLOAT_TOL)
    assert_allclose(res.input_max_abs, ref["per_input"].max(axis=1), atol=FLOAT_TOL)
    fast = S.max_errors(snet, active)
    assert_allclose(fast.per_input, ref["per_input"], atol=F32_TOL)
    for j in range(3):
        e = ref[f"e{j}"]
        st = fast.pattern(j)
        assert st["count"] == e.size
        assert_allclose(st["mean"], e.mean(), atol=F32_TOL)
        assert_allclose(st["mean_abs"], np.abs(e).mean(), atol=F32_TOL)
    assert_allclose(fast.mean_abs_error, res.mean_abs_error, atol=F32_TOL)


def test_input_weights_is_W_phi_transpose() -> None:
    snet = S.build_superposed_uand(30, 50, 3, 12, seed=1)
    phi = snet.embedding.matrix()
    w_in = snet.input_weights()
    assert w_in.shape == (50, 12)
    assert_allclose(w_in, snet.net.W.toarray() @ phi.T, atol=FLOAT_TOL)
    active = sample_sparse(30, 3, 5, seed=2)
    assert_allclose(
        snet.preactivations(active), snet.embedded(active) @ w_in.T + snet.net.bias, atol=1e-12
    )


def test_outputs_in_lexicographic_order() -> None:
    snet = S.build_superposed_uand(12, 80, 3, 8, weights="rademacher", seed=0)
    active = sample_sparse(12, 3, 3, seed=1)
    _, outs = S.max_errors(snet, active, outputs=True)
    tuples = U.tuple_unrank(np.arange(comb(12, 2)), 12, 2)
    ref = snet.readout.outputs(snet.activations(active), tuples)
    assert_allclose(np.stack(outs), ref, atol=F32_TOL)


# ---------------------------------------------------------------- the basis-aligned limit


@pytest.mark.parametrize("weights", ["bernoulli", "rademacher", "gaussian"])
def test_identity_embedding_is_basis_aligned(weights: str) -> None:
    m, d, s = 14, 120, 3
    snet = S.build_superposed_uand(m, d, s, None, weights=weights, seed=5)
    net = snet.net
    active = sample_sparse(m, s, 20, seed=6)
    assert_array_equal(snet.activations(active), net.activations(active))
    a = S.evaluate_superposed(snet, active)
    b = U.evaluate_uand(net, active, method="tiles")
    for field in ("count", "nonzero", "max_abs", "input_max_abs"):
        assert_array_equal(getattr(a, field), getattr(b, field))
    assert_allclose(a.sum, b.sum, atol=FLOAT_TOL)
    assert_allclose(S.max_errors(snet, active).per_input.max(axis=1), b.input_max_abs, atol=F32_TOL)
    if weights == "bernoulli":  # d0 = ∞: the rule is the basis-aligned worst-case rule exactly
        assert net.p == theory.worst_case_p(d, s)
    else:
        assert snet.readout.scale == 1 / (d * theory.sign_readout_constant(s, weights))


def test_large_embedding_approaches_basis_aligned() -> None:
    """|W_i·e| <= ||W_i||_1 · max_k |e_k| <= ||W_i||_1 · (s-1+[k inactive]) · μ(Φ), exactly."""
    m, d, s = 40, 200, 3
    active = sample_sparse(m, s, 10, seed=1)
    gaps = []
    for d0 in (64, 1024, 16384):
        snet = S.build_superposed_uand(m, d, s, d0, weights="rademacher", seed=2)
        base = snet.net.activations(active)
        diff = np.abs(snet.preactivations(active) - snet.net.preactivations(active))
        bound = np.abs(snet.net.W).sum(axis=1) * s * coherence(snet.embedding)
        assert (diff <= bound[None, :] + 1e-12).all()
        gaps.append(np.abs(snet.activations(active) - base).max())
    # the bound shrinks like 1/sqrt(d0) (a factor 16 from 64 to 16384); the gap must fall with it
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < gaps[0] / 4


# ---------------------------------------------------------------- noise theory


def test_noise_var_matches_embedding() -> None:
    """E||Φᵀ Φ x - x||² = s(m-1)/d0; 400 inputs × 5 embeddings, relative SE ≈ 2%, bound 4 SE."""
    m, s, d0 = 300, 3, 50
    vals = []
    for seed in range(5):
        emb = Embedding(m, d0, seed=seed)
        active = sample_sparse(m, s, 400, seed=seed + 10)
        x = np.zeros((400, m))
        np.put_along_axis(x, active, 1.0, axis=1)
        vals.append(((emb.readout(emb.embed(active)) - x) ** 2).sum(axis=1))
    v = np.concatenate(vals)
    pred = S.embedding_noise_var(m, s, d0)
    assert abs(v.mean() - pred) < 4 * v.std() / np.sqrt(v.size) + 0.02 * pred


@pytest.mark.parametrize("s", [2, 3, 4, 6])
@pytest.mark.parametrize("weights", ["rademacher", "gaussian"])
def test_sign_constant_reduces_to_basis_aligned(s: int, weights: str) -> None:
    assert_allclose(
        S.superposed_sign_constant(s, weights, 0.0),
        theory.sign_readout_constant(s, weights),
        rtol=1e-12,
    )


@pytest.mark.parametrize("weights", ["rademacher", "gaussian"])
def test_sign_constant_monte_carlo(weights: str, rng: np.random.Generator) -> None:
    """E[sgn(w1 w2) ReLU(w1 + w2 + Z + η)] from 2·10⁶ draws; |term| has std <= 3, so SE <= 2.1e-3."""
    s, tau2, n = 4, 2.5, 2_000_000
    if weights == "rademacher":
        w = rng.integers(0, 2, size=(n, s)) * 2.0 - 1.0
    else:
        w = rng.standard_normal((n, s))
    eta = rng.standard_normal(n) * np.sqrt(tau2)
    terms = np.sign(w[:, 0] * w[:, 1]) * np.maximum(w.sum(axis=1) + eta, 0.0)
    se = terms.std() / np.sqrt(n)
    assert abs(terms.mean() - S.superposed_sign_constant(s, weights, tau2)) < 5 * se


def test_calibrated_sign_readout_is_unbiased() -> None:
    """Outputs whose AND is 1 average to 1 with the recalibrated c, not with the basis-aligned c.

    m = 400, d0 = 100, s = 3: noise_var = 11.97, c = 0.1197 against 0.25 basis-aligned, so the
    uncalibrated readout reads about 0.48. 300 inputs × 3 ANDs of a d = 3000 layer: each output
    has std ~ 0.3, the mean over 900 of them ~0.01 (plus a shared network term of the same order).
    """
    m, d, s, d0 = 400, 3000, 3, 100
    snet = S.build_superposed_uand(m, d, s, d0, weights="rademacher", seed=0)
    active = sample_sparse(m, s, 300, seed=1)
    pairs = active[:, [[0, 1], [0, 2], [1, 2]]].reshape(-1, 2)
    acts = np.repeat(snet.activations(active), 3, axis=0)
    y = np.einsum(
        "ki,ik,ik->k", acts, snet.readout.signs[:, pairs[:, 0]], snet.readout.signs[:, pairs[:, 1]]
    )
    y *= snet.readout.scale
    assert abs(y.mean() - 1.0) < 0.05
    uncal = y.mean() * S.superposed_sign_constant(s, "rademacher", snet.noise_var) / 0.25
    assert uncal < 0.6


def test_superposed_p_limits() -> None:
    d, s = 2000, 3
    assert S.superposed_p(500, d, s, None) == pytest.approx(theory.worst_case_p(d, s), rel=1e-12)
    # the defining equation holds at the root
    m, d0 = 3000, 2000
    p = S.superposed_p(m, d, s, d0)
    assert_allclose((s - 1) * p + np.sqrt(p * m * s / d0), 1 / (p * np.sqrt(d)), rtol=1e-9)
    # more noise (smaller d0) asks for sparser wiring; tied and large m: p -> (ms)^(-1/3)
    assert S.superposed_p(m, d, s, 500) < p < S.superposed_p(m, d, s, 10**6)
    big = 10**8
    assert S.superposed_p(big, 10**7, s, 10**7) == pytest.approx((big * s) ** (-1 / 3), rel=0.05)
    assert S.superposed_p(10, 1, 1, None) == 1.0


# ---------------------------------------------------------------- outputs back into superposition


def test_output_embedding_against_dense() -> None:
    m, d, s = 15, 60, 3
    snet = S.build_superposed_uand(m, d, s, 10, seed=2)
    active = sample_sparse(m, s, 4, seed=3)
    got = S.output_embedding_errors(snet, active, out_dim=40, seed=7)
    psi = Embedding(comb(m, 2), 40, seed=7, dtype=np.float32).matrix().astype(np.float64)
    tuples = U.tuple_unrank(np.arange(comb(m, 2)), m, 2)
    yhat = snet.readout.outputs(snet.activations(active), tuples)
    target = np.array([[float(k in a and k2 in a) for k, k2 in tuples] for a in active])
    back = (yhat @ psi.T) @ psi
    ideal = (target @ psi.T) @ psi
    assert got["out_dim"] == 40
    assert_allclose(got["max_abs_error"], np.abs(back - target).max(), atol=1e-4)
    assert_allclose(got["mean_abs_error"], np.abs(back - target).mean(), atol=1e-5)
    assert_allclose(got["ideal_max_abs_error"], np.abs(ideal - target).max(), atol=1e-4)
    assert got["ideal_max_abs_error"] > 0  # crosstalk of the C(s,2) true ANDs in 40 dimensions


# ---------------------------------------------------------------- neurons search


@pytest.mark.parametrize(
    ("weights", "phi", "inputs_kind"),
    [("bernoulli", "sampled", "uniform"), ("bernoulli", "seeded", "at_most"),
     ("rademacher", "sampled", "uniform"), ("gaussian", "seeded", "uniform")],
)  # fmt: skip
def test_trial_layer_is_what_width_trial_evaluates(
    weights: str, phi: str, inputs_kind: str
) -> None:
    """The public trial layer (for benchmarks and figures) is the trial's own: the same
    network, inputs and activations, so evaluating it gives the trial's numbers bit for bit."""
    from superposition import kernels as K

    kw = dict(embed_dim="tied", weights=weights, n_samples=6, seed=3, phi=phi)
    kw["inputs_kind"] = inputs_kind
    trial = S.width_trial(60, 300, 3, **kw)
    layer = S.trial_layer(60, 300, 3, **kw)
    assert (layer.neurons, layer.embed_dim, layer.p, layer.n_samples) == (
        trial.neurons, trial.embed_dim, trial.p, trial.n_samples,
    )  # fmt: skip
    rows = []
    for g, a in zip(layer.groups, layer.activations(), strict=True):
        if weights == "bernoulli":
            rows.append(K.bernoulli_worst_errors(layer.net.W, a, g).per_input)
        else:
            signs = np.sign(np.asarray(layer.net.W)).astype(np.float32)
            rows += [
                K.sign_pair_errors(signs, a[t : t + 1], g[t : t + 1], layer.scale).max_abs
                for t in range(g.shape[0])
            ]
    got = np.vstack(rows)
    assert_array_equal(got.max(axis=1), trial.per_input.max(axis=1))


def test_minimal_width_bracket_is_honest() -> None:
    kw = dict(weights="rademacher", embed_dim="tied", n_samples=4, seed=0)
    res = S.minimal_width(30, 2, 0.5, seeds=range(3), n_samples=4, weights="rademacher", low=16)
    lo, hi = res.bracket
    assert hi == res.neurons and lo is not None and lo < hi
    assert hi - lo <= max(1, 0.05 * lo) or hi <= 2 * lo
    ok_hi = sum(
        S.width_trial(30, hi, 2, **{**kw, "seed": k}).max_abs_error <= 0.5 for k in range(3)
    )
    ok_lo = sum(
        S.width_trial(30, lo, 2, **{**kw, "seed": k}).max_abs_error <= 0.5 for k in range(3)
    )
    assert ok_hi == 3 and ok_lo < 3  # 90% of 3 seeds = all 3
    widths = S.seed_widths(30, 2, 0.5, weights="rademacher", seeds=range(3), n_samples=4, low=16)
    assert quantile(widths) <= 2 * res.neurons  # per-seed thresholds: the same scale


def test_seed_widths_restart_below_a_passing_low() -> None:
    kw = dict(weights="rademacher", seeds=[0], n_samples=4)
    a = S.seed_widths(30, 2, 0.5, low=16, **kw)
    b = S.seed_widths(30, 2, 0.5, low=4 * int(a[0]), **kw)
    assert b[0] <= 4 * a[0] // 2 + 1 and b[0] < 4 * a[0]


def test_an_interrupted_width_search_resumes_at_its_last_trial(tmp_path, monkeypatch) -> None:
    """With a checkpoint, a search stopped after two trials resumes with the third: the first
    two are read back, not run again, and the result is the uninterrupted search's."""
    from superposition.store import Checkpoint

    kw = dict(weights="bernoulli", n_samples=4, low=16, seed=3)
    plain = S.seed_width(60, 2, 0.5, **kw)
    assert len(plain.trials) >= 4
    real, ran = S.width_trial, []

    def counted(m, d, *args, **options):
        if len(ran) == 2 and options.get("stop_above") == 0.5 and stop[0]:
            raise KeyboardInterrupt  # the session ends
        ran.append(d)
        return real(m, d, *args, **options)

    monkeypatch.setattr(S, "width_trial", counted)
    point = ("superposition.experiments.superposed_width", {"n_features": 60}, 3, "algorithm 1")
    stop = [True]
    with pytest.raises(KeyboardInterrupt):
        S.seed_width(60, 2, 0.5, checkpoint=Checkpoint(tmp_path, *point), **kw)
    assert len(list(tmp_path.glob("*.json"))) == 2  # two finished trials kept (not their inputs)
    stop[0] = False
    ck = Checkpoint(tmp_path, *point)
    resumed = S.seed_width(60, 2, 0.5, checkpoint=ck, **kw)
    assert ck.replayed == 2 and ck.replayed_cpu > 0
    assert ran[2:] == [tr["neurons"] for tr in plain.trials[2:]]  # only the rest ran
    assert (resumed.neurons, resumed.bracket) == (plain.neurons, plain.bracket)
    drop = ("seconds",)
    assert [{k: v for k, v in t.items() if k not in drop} for t in resumed.trials] == [
        {k: v for k, v in t.items() if k not in drop} for t in plain.trials
    ]
    kept = [json.loads(f.read_text())["metrics"] for f in tmp_path.glob("*.json")]
    kept_seconds = {t["neurons"]: t["seconds"] for t in kept}
    assert [t["seconds"] for t in resumed.trials[:2]] == [
        kept_seconds[t["neurons"]] for t in resumed.trials[:2]
    ]  # read back as they were measured


@pytest.mark.parametrize(
    ("weights", "inputs_kind"),
    [("bernoulli", "uniform"), ("bernoulli", "at_most"), ("rademacher", "uniform")],
)
def test_an_interrupted_width_trial_resumes_at_its_last_input(
    tmp_path, monkeypatch, weights, inputs_kind
) -> None:
    """With a checkpoint, a trial stopped after any number of finished inputs resumes at the
    next: the finished ones are read back, only the rest run, and the rows, firing counts and
    stop are the uninterrupted trial's, bit for bit (with and without stop_above, a stop inside
    a group and at a group's last input)."""
    from superposition.store import Checkpoint

    kw = dict(weights=weights, n_samples=7, seed=6, embed_dim=60, inputs_kind=inputs_kind)
    full = S.width_trial(40, 160, 3, **kw)
    assert full.per_input.shape[0] == 7
    input_max = full.per_input.max(axis=1)
    stops = [None] + [float(v) - 1e-9 for v in np.unique(input_max)]
    real, lengths, past = Checkpoint.record, set(), False
    written, limit = [], [0]  # the inputs kept; how many may be before the session ends

    def record(self, step, value, **times):
        if len(written) == limit[0]:
            raise KeyboardInterrupt  # the session ends before the next input is kept
        written.append(step["input"])
        return real(self, step, value, **times)

    monkeypatch.setattr(Checkpoint, "record", record)
    point = ("superposition.experiments.superposed_width", {"n": 40}, 4, "algorithm 1")
    for n, stop in enumerate(stops):
        plain = S.width_trial(40, 160, 3, stop_above=stop, **kw)
        lengths.add(plain.per_input.shape[0])
        if stop is not None:  # a group's last input above stop: the next group is evaluated
            past |= bool(np.any(plain.per_input[:-1].max(axis=1) > stop))
        for j in range(1, plain.per_input.shape[0]):
            root, limit[0] = tmp_path / f"{n}-{j}", j
            written.clear()
            with pytest.raises(KeyboardInterrupt):
                S.width_trial(
                    40, 160, 3, stop_above=stop, checkpoint=Checkpoint(root, *point), **kw
                )
            assert written == list(range(j))
            limit[0] = 99
            ck = Checkpoint(root, *point)
            resumed = S.width_trial(40, 160, 3, stop_above=stop, checkpoint=ck, **kw)
            assert ck.replayed == j and written == list(range(plain.per_input.shape[0]))
            assert_array_equal(resumed.per_input, plain.per_input)
            assert_array_equal(resumed.firing, plain.firing)
            again = S.width_trial(
                40, 160, 3, stop_above=stop, checkpoint=Checkpoint(root, *point), **kw
            )
            assert_array_equal(again.per_input, plain.per_input)  # all read back: nothing runs
            assert written == list(range(plain.per_input.shape[0]))
    assert {1, 7} <= lengths and len(lengths) >= 3  # stops first, later, and none
    assert past == (inputs_kind == "at_most")


def test_width_trial_is_deterministic() -> None:
    a = S.width_trial(50, 300, 3, embed_dim=40, seed=4).per_input
    b = S.width_trial(50, 300, 3, embed_dim=40, seed=4).per_input
    assert_array_equal(a, b)
    c = S.width_trial(50, 300, 3, embed_dim=40, seed=5).per_input
    assert not np.array_equal(a, c)


def test_width_trial_inputs_kinds() -> None:
    """ "at_most": input t has s - (t mod s) active features, one group per count, s down to 1;
    every input is evaluated (no stop), and "uniform" draws exactly s."""
    groups = S.trial_inputs(40, 3, 7, seed=2, inputs_kind="at_most")
    assert [g.shape for g in groups] == [(3, 3), (2, 2), (2, 1)]
    (exact,) = S.trial_inputs(40, 3, 7, seed=2)
    assert exact.shape == (7, 3)
    r = S.width_trial(40, 200, 3, embed_dim=60, n_samples=7, seed=2, inputs_kind="at_most")
    assert r.per_input.shape == (7, 3) and r.firing.shape == (7,) and r.n_samples == 7
    # an input with one active feature has no true AND: its pattern-2 column is 0
    assert_array_equal(r.per_input[5:, 2], 0.0)


def test_width_trial_bernoulli_is_the_exact_evaluator_on_the_seeded_network() -> None:
    """The Bernoulli trial's per-input worst errors are those of the dense float64 oracle on the
    network build_superposed_uand draws from the trial's seed (bit for bit; pattern 0 exact
    where it is the input's worst, a lower bound below)."""
    m, d, s, d0, seed = 50, 300, 2, 80, 3
    r = S.width_trial(m, d, s, embed_dim=d0, n_samples=5, seed=seed)
    snet = S.build_superposed_uand(m, d, s, d0, p=r.p, seed=np.random.SeedSequence([seed, d, d0]))
    (active,) = S.trial_inputs(m, s, 5, seed)
    acts = snet.activations(active)
    W = snet.net.dense().astype(bool)
    iu, ju = np.triu_indices(m, 1)
    gam = W[:, iu] & W[:, ju]
    size = gam.sum(axis=0)
    for t in range(5):
        num = np.cumsum(np.where(gam, acts[t][:, None], 0.0), axis=0)[-1]
        y = np.where(size > 0, num / np.maximum(size, 1), 0.0)
        on = np.isin(np.arange(m), active[t])
        pat = on[iu].astype(int) + on[ju]
        err = np.abs(y - (pat == 2))
        want = [err[pat == j].max(initial=0.0) for j in range(3)]
        assert r.per_input[t].max() == max(want)
        assert_array_equal(r.per_input[t, 1:], want[1:])
        assert r.per_input[t, 0] <= want[0]


def test_sampled_phi_matches_the_seeded_embedding_in_law() -> None:
    """phi="sampled" draws the readouts from the Gaussian embedding's exact law (tested in
    test_embedding.py) for the same W: the worst errors of 60 seeds, seeded against sampled,
    agree in law. Two-sample Kolmogorov-Smirnov at level 1e-3, critical value
    sqrt(-ln(5e-4)/2) sqrt(2/60) = 0.50; a sampler that ignored the noise (basis-aligned
    readouts) fails it."""
    from scipy import stats

    kw = dict(embed_dim=30, n_samples=4, p=0.3)

    def worst(phi: str, seed: int) -> float:
        return S.width_trial(40, 150, 2, seed=seed, phi=phi, **kw).max_abs_error

    seeded = [worst("seeded", k) for k in range(60)]
    sampled = [worst("sampled", k) for k in range(60)]
    crit = np.sqrt(-np.log(5e-4) / 2) * np.sqrt(2 / 60)
    assert stats.ks_2samp(seeded, sampled).statistic < crit
    aligned = [
        S.width_trial(40, 150, 2, seed=k, embed_dim=None, n_samples=4, p=0.3).max_abs_error
        for k in range(60)
    ]
    assert stats.ks_2samp(seeded, aligned).statistic > crit
    with pytest.raises(ValueError, match="phi='sampled' needs an embed_dim"):
        S.width_trial(40, 150, 2, embed_dim=None, phi="sampled")


def test_resolve_p_and_p_scale() -> None:
    assert S.resolve_p(None, 100, 400, 2, 400) == S.superposed_p(100, 400, 2, 400)
    assert S.resolve_p("paper", 100, 10_000, 2, None) == theory.paper_p(100, 10_000)
    with pytest.raises(ValueError, match="needs neurons > ln"):
        S.resolve_p("paper", 100, 400, 2, None)  # ln(100)^4 = 450
    assert S.resolve_p(0.25, 100, 400, 2, None) == 0.25
    r = S.width_trial(30, 100, 2, embed_dim=40, p=0.2, p_scale=2.0, n_samples=2)
    assert r.p == pytest.approx(0.4)
    assert S.width_trial(30, 100, 2, embed_dim=40, p=0.8, p_scale=2.0, n_samples=2).p == 1.0
    with pytest.raises(ValueError, match="weights='bernoulli' only"):
        S.width_trial(30, 100, 2, weights="rademacher", p_scale=2.0)
    # the paper's p: the search starts above ln^4 m
    res = S.seed_width(30, 2, 0.5, p="paper", embed_dim=None, n_samples=2, low=4)
    assert min(tr["neurons"] for tr in res.trials) > theory.paper_min_neurons(30)
    with pytest.raises(ValueError, match="needs weights='bernoulli'"):
        S.width_trial(30, 100, 3, weights="rademacher", inputs_kind="at_most")
    with pytest.raises(ValueError, match="p='best' is a search over p"):
        S.seed_width(30, 2, 0.5, p="best")


def test_best_p_is_the_chapters_choice_then_the_search_at_it() -> None:
    """p="best": per-seed thresholds at every multiple, best_p_scale picks one (as the chapter
    and the sweep do), and d* is the ordinary search at that multiple."""
    kw = dict(embed_dim="tied", n_samples=4, low=64)
    scales = (0.35, 0.71, 1.41)
    best = S.minimal_width(30, 2, 0.5, p="best", p_scales=scales, seeds=range(3), **kw)
    thresholds = {k: S.seed_widths(30, 2, 0.5, seeds=range(3), p_scale=k, **kw) for k in scales}
    win = S.best_p_scale(thresholds)
    assert best.p_scale == win
    assert best.neurons == S.minimal_width(30, 2, 0.5, p_scale=win, seeds=range(3), **kw).neurons
    assert {tr["p_scale"] for tr in best.trials} == set(scales)
    assert best.to_dict()["p_scale"] == best.p_scale


def test_best_p_scale_and_its_selection_bias() -> None:
    th = {0.5: [100.0, 400.0], 1.0: [200.0, 250.0], 2.0: [300.0, 300.0]}
    assert S.best_p_scale(th) == 0.5  # geometric means 200, 224, 300
    assert S.best_p_scale({0.5: [2.0, 2.0], 1.0: [2.0, 2.0]}) == 0.5  # a tie: the smaller
    # leave seed 0 out: scale 1 wins on seed 1 (250 < 300 < 400) and seed 0 reads 200 there;
    # leave seed 1 out: scale 0.5 wins (100), seed 1 reads 400 there. Held out: sqrt(200*400);
    # in-sample winner 0.5: sqrt(100*400)
    assert S.best_p_cross_validated(th) == pytest.approx(np.sqrt(2.0))
    with pytest.raises(ValueError, match="thresholds must not be empty"):
        S.best_p_scale({})
    with pytest.raises(ValueError, match=">= 2"):
        S.best_p_cross_validated({1.0: [3.0]})


def test_worse_than_best_rules_out_only_when_every_finished_seed_lies_above_the_best() -> None:
    best = [100.0, 120.0, 110.0, 90.0, 105.0]
    # three seeds done, each above all five of the best: ruled out, chance 1 / C(8, 3) = 1/56
    assert S.worse_than_best(best, [130.0, 121.0, 150.0]) == (True, 56)
    # one seed equal to the best's largest is not above it
    assert S.worse_than_best(best, [130.0, 120.0, 150.0]) == (False, 56)
    # too few seeds done, whatever they are; the threshold is a parameter
    assert S.worse_than_best(best, [130.0, 150.0]) == (False, 21)
    assert S.worse_than_best(best, [130.0, 150.0], min_seeds=2) == (True, 21)
    assert S.worse_than_best(best, []) == (False, 1)
    # the chance, by exhaustive enumeration: of the C(8, 3) equally likely ways 8 exchangeable
    # thresholds split into 3 finished seeds and the best's 5, the verdict is "worse" in one
    values = np.arange(8.0)
    verdicts = []
    for c in itertools.combinations(range(8), 3):
        worse, odds = S.worse_than_best(np.delete(values, list(c)), values[list(c)])
        verdicts.append(worse)
        assert odds == comb(8, 3)
    assert sum(verdicts) == 1
    for bad, match in (({"best": []}, "best must hold"), ({"done": [[1.0]]}, "done must be"),
                       ({"min_seeds": 0}, "min_seeds must be")):  # fmt: skip
        kw = {"best": best, "done": [1.0], **bad}
        with pytest.raises(ValueError, match=match):
            S.worse_than_best(kw.pop("best"), kw.pop("done"), **kw)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: S.build_superposed_uand(10, 20, 2, 0), "embed_dim"),
        (lambda: S.build_superposed_uand(10, 20, 2, 5, weights="x"), "weights"),
        (lambda: S.build_superposed_uand(10, 20, 2, 5, embedding_kind="x"), "embedding_kind"),
        (lambda: S.build_superposed_uand(10, 20, 2, 5, weights="gaussian", p="superposed"), "p="),
        (lambda: S.build_superposed_uand(10, 20, 11, 5), "sparsity"),
        (
            lambda: S.max_errors(S.build_superposed_uand(10, 20, 3, 5, arity=3), [[0, 1, 2]]),
            "arity",
        ),
        (lambda: S.superposed_sign_constant(1, "gaussian", 0.0), "sparsity"),
        (lambda: S.superposed_sign_constant(3, "bernoulli", 0.0), "weights"),
        (lambda: S.superposed_sign_constant(3, "gaussian", -1.0), "noise_var"),
        (lambda: S.superposed_p(1, 10, 1, 5), "n_features"),
        (lambda: S.minimal_width(20, 2, 0.0), "target_error"),
        (lambda: S.minimal_width(20, 2, 0.5, embed_dim="wide"), "embed_dim"),
        (lambda: S.minimal_width(20, 2, 0.5, seeds=[]), "seeds"),
        (lambda: S.minimal_width(20, 1, 0.5, weights="rademacher"), "sparsity"),
        (lambda: S.minimal_width(20, 2, 0.5, low=10, high=5), "high"),
        (lambda: S.width_trial(20, 30, 2, embed_dim=0), "embed_dim"),
        (lambda: S.adler_shavit_neurons(1), "n_outputs"),
        (
            lambda: S.evaluate_superposed(S.build_superposed_uand(10, 20, 2, 5), [[0, 0]]),
            "distinct",
        ),
    ],
)
def test_value_errors(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------- command line


def test_cli_width_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["width", "--features", "30", "--sparsity", "2", "--target-error", "0.5"]
    argv += ["--weights", "rademacher", "--seeds", "2", "--samples", "4", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    res = S.minimal_width(30, 2, 0.5, weights="rademacher", seeds=range(2), n_samples=4)
    assert out["neurons"] == res.neurons and out["bracket"] == list(res.bracket)
    assert out["embed_dim"] == "tied"


def test_cli_width_p_and_inputs_kind(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["width", "--features", "30", "--sparsity", "2", "--target-error", "0.5"]
    argv += ["--seeds", "2", "--samples", "4", "--low", "64", "--json"]
    assert main([*argv, "--p", "0.3", "--inputs-kind", "at_most"]) == 0
    out = json.loads(capsys.readouterr().out)
    res = S.minimal_width(
        30, 2, 0.5, seeds=range(2), n_samples=4, low=64, p=0.3, inputs_kind="at_most"
    )
    assert out["neurons"] == res.neurons and out["p"] == 0.3 and out["inputs_kind"] == "at_most"
    drop = ("seconds",)  # the search trace, but for the time taken
    assert [{k: v for k, v in tr.items() if k not in drop} for tr in out["trials"]] == [
        {k: v for k, v in tr.items() if k not in drop} for tr in res.trials
    ]
    assert {tr["p"] for tr in out["trials"]} == {0.3}
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--p", "1.5"])
    assert exc.value.code == 2 and "--p" in capsys.readouterr().err


def test_cli_width_text_fixed_embedding(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["width", "--features", "30", "--sparsity", "2", "--target-error", "0.5"]
    assert main([*argv, "--embed-dim", "64", "--seeds", "1", "--samples", "4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("d* = ") and "d0 = 64" in out


def test_cli_uand_embed_dim(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["uand", "--features", "20", "--neurons", "200", "--sparsity", "3", "--embed-dim", "30"]
    assert main([*argv, "--samples", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["embed_dim"] == 30
    assert set(out["output_embedding"]) == {
        "out_dim",
        "max_abs_error",
        "mean_abs_error",
        "ideal_max_abs_error",
    }
    net_seed, input_seed = np.random.SeedSequence(0).spawn(2)
    snet = S.build_superposed_uand(20, 200, 3, 30, seed=net_seed)
    active = sample_sparse(20, 3, 10, seed=input_seed)
    assert out["max_abs_error"] == S.evaluate_superposed(snet, active).max_abs_error
    assert main([*argv, "--samples", "10"]) == 0
    assert "output embedding" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["width", "--features", "30", "--sparsity", "2", "--target-error", "-1"],
        ["width", "--features", "30", "--sparsity", "2", "--target-error", "nan"],
        [
            "width",
            "--features",
            "30",
            "--sparsity",
            "2",
            "--target-error",
            "0.5",
            "--embed-dim",
            "x",
        ],
        [
            "width",
            "--features",
            "30",
            "--sparsity",
            "2",
            "--target-error",
            "0.5",
            "--embed-dim",
            "0",
        ],
        ["width", "--features", "30", "--sparsity", "40", "--target-error", "0.5"],
        [
            "width",
            "--features",
            "30",
            "--sparsity",
            "2",
            "--target-error",
            "0.5",
            "--low",
            "9",
            "--high",
            "3",
        ],
        ["uand", "--features", "20", "--neurons", "50", "--sparsity", "2", "--embed-dim", "0"],
        ["uand", "--features", "20", "--neurons", "50", "--sparsity", "2", "--p", "superposed"],
    ],
)
def test_cli_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_max_errors_refuses_beyond_its_dense_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    snet = S.build_superposed_uand(30, 40, 2, 10, seed=0)
    monkeypatch.setattr(S, "MAX_DENSE_ELEMENTS", 30 * 40 - 1)
    with pytest.raises(ValueError, match="dense budget"):
        S.max_errors(snet, sample_sparse(30, 2, 2, seed=0))
    with pytest.raises(ValueError, match="embed_dim is None"):
        S.build_superposed_uand(10, 20, 2, None).input_weights()


# ---------------------------------------------------------------- every sparse input


def test_grouped_superposed_layer_against_a_dense_oracle() -> None:
    """``bias="count_free"`` in superposition: biases designed for the noise of every count,
    readout weights solved with τ²(n) at each count; every output of the exact evaluation
    against a dense computation from Φ, W, the per-neuron bias and the per-neuron weights."""
    m, d, s, d0 = 30, 80, 4, 40
    snet = S.build_superposed_uand(m, d, s, d0, weights="gaussian", bias="count_free", seed=2)
    tau2 = [S.embedding_noise_var(m, n, d0) for n in range(2, s + 1)]
    design = theory.count_free_design(s, "gaussian", noise_vars=tau2)
    assert snet.net.groups == design.biases and snet.net.counts == (2, 3, 4)
    cal = snet.net.sign_calibration(lambda n: S.embedding_noise_var(m, n, d0))
    assert_allclose(cal.alpha, design.alpha, rtol=1e-12)
    sizes = U.group_sizes(d, len(cal.alpha))
    coef = np.repeat(np.array(cal.alpha) / sizes, sizes)
    assert_allclose(snet.readout.coef * snet.readout.scale, coef, rtol=1e-12)
    W = np.asarray(snet.net.W)
    phi = snet.embedding.matrix()
    act = sample_sparse(m, 2, 3, seed=4)  # fewer active than s
    x = to_dense(act, m).astype(float)
    a = np.maximum(x @ phi.T @ phi @ W.T + snet.net.bias, 0.0)  # (K, d)
    sg = np.sign(W)
    tup = np.array(list(itertools.combinations(range(m), 2)))
    y = (a * coef) @ (sg[:, tup[:, 0]] * sg[:, tup[:, 1]])
    err = y - x[:, tup[:, 0]] * x[:, tup[:, 1]]
    res = S.evaluate_superposed(snet, act)
    assert res.max_abs_error == pytest.approx(np.abs(err).max(), abs=1e-10)
    assert_allclose(res.input_max_abs, np.abs(err).max(axis=1), atol=1e-10)
    with pytest.raises(ValueError, match="bias groups"):
        S.max_errors(snet, act)


def test_superposed_constant_with_a_bias_is_the_theory_constant() -> None:
    for w in ("rademacher", "gaussian"):
        assert S.superposed_sign_constant(3, w, 0.4, bias=-1.0) == theory.sign_readout_constant(
            3, w, bias=-1.0, noise_var=0.4
        )
    snet = S.build_superposed_uand(50, 100, 3, 60, weights="rademacher", bias=-1.0, seed=1)
    c = S.superposed_sign_constant(3, "rademacher", snet.noise_var, bias=-1.0)
    assert snet.readout.scale == 1.0 / (100 * c)  # one bias: the paper's readout at exactly s
    act = sample_sparse(50, 3, 5, seed=2)
    assert S.max_errors(snet, act).max_abs_error == pytest.approx(
        S.evaluate_superposed(snet, act).max_abs_error, abs=1e-4
    )
