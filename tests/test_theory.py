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
