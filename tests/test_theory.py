"""The theory module's U-AND formulas: exact constants against enumeration, quadrature and
Monte Carlo; exact moments against brute-force enumeration of the model they describe."""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import comb

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import integrate, optimize, stats

from superposition import theory as T

EXACT = 1e-12  # float64 rounding of a finite sum


def _relu(x: float) -> float:
    return max(x, 0.0)


@pytest.mark.parametrize("s", range(2, 11))
def test_rademacher_constant_equals_enumeration_of_all_sign_patterns(s: int) -> None:
    """c_D(s) = E[sgn(w1 w2) ReLU(w1 + ... + ws)] over all 2^s equally likely sign patterns."""
    total = sum(
        Fraction(w[0] * w[1] * max(sum(w), 0)) for w in itertools.product((-1, 1), repeat=s)
    )
    assert T.sign_readout_constant(s, "rademacher") == pytest.approx(float(total / 2**s), abs=EXACT)
    second = sum(Fraction(max(sum(w), 0) ** 2) for w in itertools.product((-1, 1), repeat=s))
    assert T.relu_second_moment(s, "rademacher") == pytest.approx(float(second / 2**s), abs=EXACT)


@pytest.mark.parametrize("s", [2, 3, 4, 6, 10, 50])
def test_gaussian_constant_closed_form_equals_quadrature(s: int) -> None:
    """The closed form against PAPER.md's reconstruction E[sgn(w1 w2) h(w1 + w2)],
    h(μ) = E ReLU(μ + Z) = μΦ(μ/σ) + σφ(μ/σ), σ = sqrt(s - 2), by 1-d quadrature: with
    r = w1 + w2 and t = w1 - w2 independent N(0, 2), sgn(w1 w2) = sgn(|r| - |t|), so
    c = E_r[h(r) (2 P(|t| < |r|) - 1)] = ∫ h(r) (4Φ(|r|/√2) - 3) φ(r/√2)/√2 dr."""
    sz = np.sqrt(s - 2)

    def h(mu: float) -> float:
        return _relu(mu) if sz == 0 else mu * stats.norm.cdf(mu / sz) + sz * stats.norm.pdf(mu / sz)

    def f(r: float) -> float:
        w = 4 * stats.norm.cdf(abs(r) / np.sqrt(2)) - 3
        return h(r) * w * stats.norm.pdf(r / np.sqrt(2)) / np.sqrt(2)

    quad = sum(
        integrate.quad(f, a, b, epsabs=1e-13, epsrel=1e-12)[0] for a, b in ((-40, 0), (0, 40))
    )
    assert T.sign_readout_constant(s, "gaussian") == pytest.approx(quad, abs=1e-10)


@pytest.mark.parametrize("weights", ["rademacher", "gaussian"])
def test_constants_against_a_large_monte_carlo(weights: str) -> None:
    """An independent check of the whole definition: 4·10^6 draws, tolerance 5 standard errors
    of the sample mean (its own sample std / sqrt(N))."""
    rng = np.random.default_rng(1)
    n = 4_000_000
    for s in (3, 5):
        w = (
            rng.standard_normal((n, s))
            if weights == "gaussian"
            else rng.choice([-1.0, 1.0], (n, s))
        )
        term = np.sign(w[:, 0] * w[:, 1]) * np.maximum(w.sum(axis=1), 0.0)
        se = term.std() / np.sqrt(n)
        assert abs(term.mean() - T.sign_readout_constant(s, weights)) < 5 * se
        sq = np.maximum(w.sum(axis=1), 0.0) ** 2
        assert abs(sq.mean() - T.relu_second_moment(s, weights)) < 5 * sq.std() / np.sqrt(n)


def test_odd_arity_constant_vanishes() -> None:
    """Why sign-symmetric layers support only even arity: E[sgn(w1 w2 w3) ReLU(S)] = 0 exactly
    (flip every sign: the product is odd, |S| even, and ReLU(S) = (S + |S|)/2)."""
    for s in range(3, 9):
        total = sum(
            Fraction(w[0] * w[1] * w[2] * max(sum(w), 0))
            for w in itertools.product((-1, 1), repeat=s)
        )
        assert total == 0


def test_sign_error_moments() -> None:
    c = T.sign_readout_constant(4, "gaussian")
    for j, mu in ((0, 0.0), (1, 0.0), (2, c)):
        mom = T.sign_error_moments(100, 4, "gaussian", j)
        assert mom["mean"] == 0.0
        assert mom["std"] ** 2 == pytest.approx((4 / 2 - mu**2) / (100 * c**2), rel=EXACT)
        assert mom["mean_abs"] == pytest.approx(np.sqrt(2 / np.pi) * mom["std"], rel=EXACT)


def _enumerate_bernoulli(d: int, p: float, s: int, j: int, n: int) -> tuple[float, float, float]:
    """E err, E|err|, E err² by enumerating every neuron's (in Γ?, N) state: the model itself."""
    k = np.arange(s - j + 1)
    states = [(False, 0, 1 - p**n)] + [
        (True, int(x), p**n * stats.binom.pmf(x, s - j, p)) for x in k
    ]
    y = 1.0 if j == n else 0.0
    e1 = ea = e2 = 0.0
    for combo in itertools.product(states, repeat=d):
        prob = float(np.prod([c[2] for c in combo]))
        acts = [_relu(j - n + 1 + c[1]) for c in combo if c[0]]
        err = (sum(acts) / len(acts) if acts else 0.0) - y
        e1, ea, e2 = e1 + prob * err, ea + prob * abs(err), e2 + prob * err**2
    return e1, ea, e2


@pytest.mark.parametrize(
    ("d", "p", "s", "j", "n"),
    [(3, 0.4, 3, 1, 2), (3, 0.7, 4, 2, 2), (4, 0.5, 3, 0, 2), (2, 0.6, 5, 3, 3), (3, 0.5, 4, 2, 3)],
)
def test_bernoulli_moments_equal_enumeration_of_the_model(d, p, s, j, n) -> None:
    mom = T.bernoulli_error_moments(d, p, s, j, arity=n)
    e1, ea, e2 = _enumerate_bernoulli(d, p, s, j, n)
    assert_allclose([mom["mean"], mom["mean_abs"], mom["mean_sq"]], [e1, ea, e2], atol=EXACT)
    assert mom["p_empty"] == pytest.approx(T.empty_gamma_probability(d, p, n), rel=EXACT)
    assert mom["std"] == pytest.approx(np.sqrt(e2 - e1**2), abs=1e-9)


def test_heuristic_moments_against_the_exact_ones() -> None:
    """The paper's heuristic mean is s'p; the exact mean for one active input is (1 - q) s'p.
    The heuristic variance is *not* an upper bound: the exact variance is
    Var(a) E[1/|Γ| ; Γ ≠ ∅] + ..., and Jensen puts E[1/|Γ|] above 1/E|Γ| (at d = 2000,
    p = 0.05, E|Γ| = 5, the exact variance is 16% above the heuristic). It stays within that
    Jensen factor 1 + 1/E|Γ| and above half the heuristic."""
    d, s = 2000, 3
    for p in (0.03, 0.05, 0.1, 0.3):
        mom = T.bernoulli_error_moments(d, p, s, 1)
        assert mom["mean"] == pytest.approx(
            (1 - mom["p_empty"]) * T.heuristic_error_mean(s - 1, p), rel=EXACT
        )
        heur = T.heuristic_error_var(s - 1, p, d)
        assert heur / 2 <= mom["std"] ** 2 <= heur * (1 + 1 / T.expected_gamma_size(d, p))
    assert T.bernoulli_error_moments(d, 0.05, s, 1)["std"] ** 2 > T.heuristic_error_var(2, 0.05, d)
    assert T.heuristic_error_var(2, 0.5, 100) == pytest.approx(4 * 0.75 / 100 + 2 * 0.5 / 50)


def test_connection_probability_rules() -> None:
    for d, s, n in [(2000, 3, 2), (500, 5, 2), (10_000, 4, 3)]:
        s1 = max(s - n + 1, 1)
        best = optimize.minimize_scalar(
            lambda p, d=d, s1=s1, n=n: s1**2 * p**2 + s1 / (d * p ** (n - 1)),
            bounds=(1e-6, 1),
            method="bounded",
            options={"xatol": 1e-12},
        ).x
        assert T.balanced_p(d, s, n) == pytest.approx(best, rel=1e-6)
        pw = T.worst_case_p(d, s, n)
        assert s1 * pw == pytest.approx(1 / np.sqrt(d * pw**n), rel=EXACT)
    assert T.balanced_p(2000, 3) == pytest.approx(0.05)
    assert T.balanced_p(1, 1, 4) == 1.0  # (3/2)^(1/5) > 1: clipped to a probability
    m = 10_000
    wmin = T.paper_min_neurons(m)
    assert T.paper_p(m, int(np.ceil(wmin))) <= 1 < T.paper_p(m, int(np.floor(wmin)))
    assert T.paper_p(m, 2000) == pytest.approx(np.log(m) ** 2 / np.sqrt(2000))


def test_gamma_formulas() -> None:
    assert T.expected_gamma_size(2000, 0.05) == pytest.approx(5.0)
    assert T.expected_gamma_size(100, 0.5, 3) == pytest.approx(12.5)
    assert T.empty_gamma_probability(10, 0.5) == pytest.approx(0.75**10)
    assert T.empty_gamma_probability(10, 1.0) == 0.0
    assert comb(5, 2) == 10  # (documentation of the C(m, n) output count used throughout)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: T.paper_p(1, 10), "n_features"),
        (lambda: T.paper_p(10, 0), "neurons"),
        (lambda: T.paper_min_neurons(1), "n_features"),
        (lambda: T.balanced_p(0, 3), "neurons"),
        (lambda: T.balanced_p(10, 3, 1), "arity"),
        (lambda: T.worst_case_p(10, 0), "sparsity"),
        (lambda: T.expected_gamma_size(10, 1.5), "p"),
        (lambda: T.empty_gamma_probability(10, 0.0), "p"),
        (lambda: T.heuristic_error_mean(-1, 0.1), "other_active"),
        (lambda: T.heuristic_error_var(1, 0.1, 0), "neurons"),
        (lambda: T.bernoulli_error_moments(10, 0.1, 3, 3), "n_active"),
        (lambda: T.bernoulli_error_moments(10, 0.1, 1, 2), "n_active"),
        (lambda: T.sign_readout_constant(1), "sparsity"),
        (lambda: T.sign_readout_constant(3, "bernoulli"), "weights"),
        (lambda: T.relu_second_moment(0), "sparsity"),
        (lambda: T.sign_error_moments(10, 3, "gaussian", 3), "n_active"),
    ],
)
def test_theory_rejects_bad_arguments(call, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        call()


def _enumerate_exceed(d: int, p: float, s: int, j: int, n: int, eps: float) -> float:
    """P(|err| > eps) by enumerating every neuron's (in Γ?, N) state: the model itself."""
    k = np.arange(s - j + 1)
    states = [(False, 0, 1 - p**n)] + [
        (True, int(x), p**n * stats.binom.pmf(x, s - j, p)) for x in k
    ]
    y = 1.0 if j == n else 0.0
    total = 0.0
    for combo in itertools.product(states, repeat=d):
        acts = [_relu(j - n + 1 + c[1]) for c in combo if c[0]]
        err = (sum(acts) / len(acts) if acts else 0.0) - y
        if abs(err) > eps + 1e-12:
            total += float(np.prod([c[2] for c in combo]))
    return total


@pytest.mark.parametrize(
    ("d", "p", "s", "j", "n", "eps"),
    [
        (4, 0.5, 3, 1, 2, 0.25),  # one active: fails when over a quarter of Γ fires
        (4, 0.6, 3, 2, 2, 0.25),  # both active: an empty Γ (error 1) or a neuron reading 2
        (3, 0.7, 4, 0, 2, 0.3),
        (3, 0.6, 4, 2, 3, 0.2),
        (4, 0.5, 3, 1, 2, 0.5),  # a boundary: exactly half firing is not above 1/2
    ],
)
def test_exceed_probability_equals_enumeration_of_the_model(d, p, s, j, n, eps) -> None:
    got = T.bernoulli_exceed_probability(d, p, s, j, eps, arity=n)
    assert got == pytest.approx(_enumerate_exceed(d, p, s, j, n, eps), abs=EXACT)


def test_exceed_probability_limits_and_rejects() -> None:
    assert T.bernoulli_exceed_probability(500, 0.1, 3, 1, 2.0) == 0.0  # errors are at most s - 1
    # both active, error bound 0: fails unless every neuron of Γ reads exactly 1 (and Γ ≠ ∅)
    d, p, s = 50, 0.2, 3
    q = p**2
    ok = sum(stats.binom.pmf(g, d, q) * (1 - p) ** g for g in range(1, d + 1))
    assert T.bernoulli_exceed_probability(d, p, s, 2, 0.0) == pytest.approx(1 - ok, rel=1e-10)
    with pytest.raises(ValueError, match="error"):
        T.bernoulli_exceed_probability(10, 0.1, 3, 1, -0.1)
    with pytest.raises(ValueError, match="n_active"):
        T.bernoulli_exceed_probability(10, 0.1, 3, 3, 0.1)


# ---------------------------------------------------------------- Theorem 3 on every sparse input


BIASES = [0.0, -1.0, -0.5, -1.5, -2.0, 0.75, -3.25]


@pytest.mark.parametrize("n", range(2, 9))
def test_biased_rademacher_constants_equal_enumeration_of_all_sign_patterns(n: int) -> None:
    """c_β(n) and E ReLU(S + β)² with a bias, over all 2^n sign patterns (exact rationals)."""
    for beta in BIASES:
        b = Fraction(beta)
        pats = list(itertools.product((-1, 1), repeat=n))
        c = sum(Fraction(w[0] * w[1]) * max(sum(w) + b, 0) for w in pats) / 2**n
        v = sum(max(sum(w) + b, 0) ** 2 for w in pats) / Fraction(2**n)
        assert T.sign_readout_constant(n, "rademacher", bias=beta) == pytest.approx(
            float(c), abs=EXACT
        )
        assert T.relu_second_moment(n, "rademacher", bias=beta) == pytest.approx(
            float(v), abs=EXACT
        )


def test_the_count_free_values_of_the_rademacher_constant() -> None:
    """The facts the chapter rests on: bias 0 reads c(2)/c(3) = 2; bias -1 gives c(2) = c(3) =
    1/4 (so 1/(d c) is count-free for s <= 3) but c(4) = 3/16; c is even in the bias."""
    c0 = [T.sign_readout_constant(n) for n in (2, 3, 4)]
    c1 = [T.sign_readout_constant(n, bias=-1.0) for n in (2, 3, 4)]
    assert c0 == [0.5, 0.25, 0.25] and c1 == [0.25, 0.25, 0.1875]
    for w in ("rademacher", "gaussian"):
        for n, beta, t2 in ((2, 0.7, 0.0), (3, 1.5, 0.0), (4, 1.0, 0.4), (5, 2.25, 1.3)):
            assert T.sign_readout_constant(n, w, bias=beta, noise_var=t2) == pytest.approx(
                T.sign_readout_constant(n, w, bias=-beta, noise_var=t2), abs=1e-11
            )


@pytest.mark.parametrize("n", [2, 3, 5, 12])
def test_gaussian_quadrature_meets_the_closed_form_at_bias_zero(n: int) -> None:
    """The bias ≠ 0 path (quadrature) is continuous onto the closed form at β = 0: at
    |β| = 1e-9 the constant moves by at most |β| (|∂c/∂β| <= E|sgn| · P(S > 0) <= 1)."""
    for t2 in (0.0, 0.6):
        closed = T.sign_readout_constant(n, "gaussian", noise_var=t2)
        for beta in (1e-9, -1e-9):
            quad = T.sign_readout_constant(n, "gaussian", bias=beta, noise_var=t2)
            assert abs(quad - closed) <= 2e-9


@pytest.mark.parametrize("weights", ["rademacher", "gaussian"])
def test_biased_and_noisy_constants_against_a_large_monte_carlo(weights: str) -> None:
    """The whole definition with bias and noise, 2·10^6 draws, 5 standard errors."""
    rng = np.random.default_rng(7)
    n_draws = 2_000_000
    for n, beta, t2 in ((2, -0.7, 0.0), (3, -1.0, 0.3), (4, -1.5, 0.0), (5, -2.5, 1.2)):
        w = (
            rng.standard_normal((n_draws, n))
            if weights == "gaussian"
            else rng.choice([-1.0, 1.0], (n_draws, n))
        )
        a = np.maximum(w.sum(axis=1) + beta + np.sqrt(t2) * rng.standard_normal(n_draws), 0.0)
        term = np.sign(w[:, 0] * w[:, 1]) * a
        c = T.sign_readout_constant(n, weights, bias=beta, noise_var=t2)
        assert abs(term.mean() - c) < 5 * term.std() / np.sqrt(n_draws)
        v = T.relu_second_moment(n, weights, bias=beta, noise_var=t2)
        assert abs((a**2).mean() - v) < 5 * (a**2).std() / np.sqrt(n_draws)


def test_calibration_of_one_group_is_the_papers_readout() -> None:
    for w in ("rademacher", "gaussian"):
        for s in (2, 3, 5):
            cal = T.sign_calibration(w, [0.0], [s])
            assert cal.alpha[0] == pytest.approx(1 / T.sign_readout_constant(s, w), rel=EXACT)
            assert cal.residual < EXACT and cal.mean_and(s) == pytest.approx(1.0, abs=EXACT)
            v = T.relu_second_moment(s, w)
            assert cal.noise == pytest.approx(np.sqrt(v) / T.sign_readout_constant(s, w), rel=1e-12)


def test_calibration_over_counts() -> None:
    """One bias-0 group cannot meet counts 2 and 3 (least squares leaves a residual); bias -1
    meets them with α = 4; two groups meet any two counts, and the minimum-noise solution of
    an under-determined system beats any other solution of it."""
    ls = T.sign_calibration("rademacher", [0.0], [2, 3])
    assert ls.alpha[0] == pytest.approx((0.5 + 0.25) / (0.5**2 + 0.25**2), rel=EXACT)
    worst = max(abs(0.5 * ls.alpha[0] - 1), abs(0.25 * ls.alpha[0] - 1))  # reads 1.2 and 0.6
    assert ls.residual == pytest.approx(worst, rel=1e-12) and ls.residual > 0.3
    one = T.sign_calibration("rademacher", [-1.0], [2, 3])
    assert one.alpha[0] == pytest.approx(4.0, rel=EXACT) and one.residual < EXACT
    two = T.sign_calibration("gaussian", [0.0, -1.5], [2, 3])
    assert two.residual < 1e-12
    assert [two.mean_and(n) for n in (2, 3)] == pytest.approx([1.0, 1.0], abs=1e-12)
    under = T.sign_calibration("gaussian", [0.0, -1.0, -2.0], [3])
    c = np.array(under.constants[0])
    v = np.array([T.relu_second_moment(3, "gaussian", bias=b) for b in (0.0, -1.0, -2.0)])
    alpha = np.array(under.alpha)
    assert c @ alpha == pytest.approx(1.0, abs=1e-12)
    null = np.cross(c, [1.0, 0.0, 0.0])  # c · null = 0: another solution alpha + t null
    for t in (-0.3, 0.1, 0.5):
        other = alpha + t * null
        assert np.sum(alpha**2 * v * 3) < np.sum(other**2 * v * 3)
    assert under.noise == pytest.approx(np.sqrt(np.sum(alpha**2 * v * 3)), rel=1e-12)
    noisy = T.sign_calibration("rademacher", [-1.0], [2, 3], noise_vars=[0.13, 0.2])
    assert noisy.residual > 0.01  # noise smooths the lattice: one group no longer meets both


@pytest.mark.parametrize("weights", ["rademacher", "gaussian"])
@pytest.mark.parametrize("s", [2, 3, 4, 5])
def test_count_free_design_meets_every_count_with_less_noise(weights: str, s: int) -> None:
    """Unbiased at every count 2..s (residual 0), all biases <= 0, and (a measured property
    of these designs) quieter than the paper's bias-0 readout is at exactly s."""
    cal = T.count_free_design(s, weights)
    assert cal.residual <= 1e-9 and cal.counts == tuple(range(2, s + 1))
    assert all(b <= 0 for b in cal.biases) and len(cal.biases) <= max(s - 1, 1)
    for n in cal.counts:
        assert cal.mean_and(n) == pytest.approx(1.0, abs=1e-9)
    paper = np.sqrt(T.relu_second_moment(s, weights)) / T.sign_readout_constant(s, weights)
    assert cal.noise <= paper * (1 + 1e-12)
    if weights == "rademacher" and s == 3:
        assert cal.biases == (-1.0,) and cal.alpha[0] == pytest.approx(4.0, rel=EXACT)
    tau2 = [0.07 * n for n in range(2, s + 1)]
    noisy = T.count_free_design(s, weights, noise_vars=tau2)
    assert noisy.residual <= 1e-9 and noisy.noise_vars == tuple(tau2)


def test_the_rademacher_identity_behind_the_floor() -> None:
    """2 ReLU(a + b + c) = ReLU(a + b) + ReLU(a + c) + ReLU(b + c) for every a, b, c = ±1, and
    the readout of any neuron population obeys the same linear relation between the inputs
    {k,l,j}, {k,l}, {k,j}, {l,j}, whose targets for the AND of (k, l) combine to 2 - 1 = 1."""
    for a, b, c in itertools.product((-1, 1), repeat=3):
        assert 2 * _relu(a + b + c) == _relu(a + b) + _relu(a + c) + _relu(b + c)
    assert any(  # not with a bias of -1, nor with Gaussian weights
        2 * _relu(a + b + c - 1) != _relu(a + b - 1) + _relu(a + c - 1) + _relu(b + c - 1)
        for a, b, c in itertools.product((-1, 1), repeat=3)
    )


@pytest.mark.parametrize("s", [3, 4, 5])
def test_linear_readout_floor(s: int) -> None:
    """Exact LP over every Rademacher neuron type: 1/6 with a constant, 1/5 without (the
    identity's certificate: errors ±1/6 on {}, {k,l}, {k,j}, {l,j}, {k,l,j}, or ±1/5 without
    the empty input); 0 on inputs with exactly s active, 0 with bias -1 (s <= 3 count-free
    layers exist), 0 for a population of Gaussian types."""
    assert T.linear_readout_floor(s) == pytest.approx(1 / 6, abs=1e-9)
    assert T.linear_readout_floor(s, affine=False) == pytest.approx(1 / 5, abs=1e-9)
    assert T.linear_readout_floor(s, n_features=s + 1) == pytest.approx(1 / 6, abs=1e-9)
    assert T.linear_readout_floor(s, counts=[s]) == pytest.approx(0.0, abs=1e-9)
    assert T.linear_readout_floor(s, bias=-1.0) == pytest.approx(0.0, abs=1e-9)
    assert T.linear_readout_floor(s, "gaussian", n_types=500) == pytest.approx(0.0, abs=1e-9)
    # counts {2, 3} alone, without the empty input's constant
    assert T.linear_readout_floor(3, counts=[2, 3], affine=False) == pytest.approx(0.2, abs=1e-9)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: T.sign_readout_constant(3, bias=float("nan")), "bias"),
        (lambda: T.sign_readout_constant(3, noise_var=-0.1), "noise_var"),
        (lambda: T.sign_calibration("rademacher", [], [2]), "biases"),
        (lambda: T.sign_calibration("rademacher", [0.0], []), "counts"),
        (lambda: T.sign_calibration("rademacher", [0.0], [1]), "count"),
        (lambda: T.sign_calibration("rademacher", [0.0, -1.0], [2], fractions=[0.5]), "fractions"),
        (lambda: T.sign_calibration("rademacher", [0.0], [2, 3], noise_vars=[0.1]), "noise_vars"),
        (lambda: T.sign_calibration("rademacher", [-9.0], [2]), "never fires"),
        (lambda: T.count_free_design(3, grid=[0.5]), "bias"),
        (lambda: T.count_free_design(4, grid=[0.0]), "no biases"),
        (lambda: T.linear_readout_floor(3, n_features=11), "n_features"),
        (lambda: T.linear_readout_floor(3, counts=[4]), "count"),
    ],
)
def test_count_free_theory_rejects_bad_arguments(call, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        call()


def test_misread_probability_is_the_binomial_tail() -> None:
    from math import comb

    from superposition.theory import misread_probability

    # r = 1: misread exactly when the one neuron holds another active feature, p1 = 2q(s-1)/m
    assert misread_probability(1000, 3, 5, 1) == pytest.approx(2 * 5 * 2 / 1000, rel=1e-12)
    # r = 3: two or three of the three neurons
    p1 = 2 * 10 * 2 / 1000
    want = 3 * p1**2 * (1 - p1) + p1**3
    assert misread_probability(1000, 3, 10, 3) == pytest.approx(want, rel=1e-12)
    # r = 15 at the deep chapter's size: eight or more of fifteen
    p1 = 2 * 75 * 2 / 30000
    want = sum(comb(15, j) * p1**j * (1 - p1) ** (15 - j) for j in range(8, 16))
    assert misread_probability(30000, 3, 75, 15) == pytest.approx(want, rel=1e-12)
    assert misread_probability(100, 1, 10, 5) == 0.0  # no other active feature
    assert misread_probability(10, 3, 100, 2) == 1.0  # p1 capped at 1
    with pytest.raises(ValueError, match="neurons_per_product"):
        misread_probability(100, 3, 1, 0)
