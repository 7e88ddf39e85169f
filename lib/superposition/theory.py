r"""The paper's bounds and heuristic scales, as functions to overlay on measurements.

Every formula here is the theory's prediction, never a fit to our data.
"""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np

from ._validate import check_choice, check_int, check_probability


def coherence_scale(n_features: int, embed_dim: int) -> float:
    r"""Typical coherence of ``m`` random unit vectors in ``d0`` dimensions, :math:`\sqrt{2\ln(m^2)/d_0}`.

    Each overlap is approximately :math:`N(0, 1/d_0)`; the maximum of :math:`\binom m2 \approx m^2/2`
    such |values| is about :math:`\sqrt{2 \ln(m^2)/d_0}` (the Gaussian-maximum scale).
    """
    m = check_int("n_features", n_features, low=2)
    d0 = check_int("embed_dim", embed_dim, low=1)
    return float(np.sqrt(2.0 * np.log(float(m) ** 2) / d0))


def readout_error_scale(sparsity: int, embed_dim: int) -> float:
    r"""Typical readout error of one feature from :math:`a=\Phi x`: :math:`\sqrt{s/d_0}`.

    A feature's readout picks up one overlap (variance :math:`1/d_0`) per active feature other
    than itself, so its error has standard deviation :math:`\sqrt{s'/d_0}` with :math:`s' \le s`.
    """
    s = check_int("sparsity", sparsity, low=1)
    d0 = check_int("embed_dim", embed_dim, low=1)
    return float(np.sqrt(s / d0))


def max_readout_error_scale(
    n_features: int, sparsity: int, embed_dim: int, n_samples: int = 1
) -> float:
    r"""Heuristic size of the worst readout error over ``n_samples`` inputs and all ``m`` features.

    Each of the :math:`mK` readouts is roughly :math:`N(0, s/d_0)`; the largest of :math:`N`
    such |values| is about :math:`\sigma\sqrt{2\ln N}`, so
    :math:`\varepsilon_{\max} \approx \sqrt{2 s \ln(mK) / d_0}`.
    """
    m = check_int("n_features", n_features, low=2)
    k = check_int("n_samples", n_samples, low=1)
    return readout_error_scale(sparsity, embed_dim) * float(np.sqrt(2.0 * np.log(float(m) * k)))


def capacity_scale(embed_dim: int, sparsity: int, error: float, n_samples: int = 1) -> float:
    r"""Heuristic number of features that fit in ``d0`` dimensions at worst readout error ``ε``.

    Inverting :func:`max_readout_error_scale`: :math:`m_{\max} \approx e^{\varepsilon^2 d_0/(2s)} / K`.
    Exponential in :math:`d_0`: this is the Johnson–Lindenstrauss economy of representation.
    """
    d0 = check_int("embed_dim", embed_dim, low=1)
    s = check_int("sparsity", sparsity, low=1)
    k = check_int("n_samples", n_samples, low=1)
    if not error > 0:
        raise ValueError(f"error must be > 0, got {error}")
    return float(np.exp(error**2 * d0 / (2.0 * s)) / k)


# ---------------------------------------------------------------- U-AND (paper §1 and §3)
# Bernoulli construction: W_ij ~ Bernoulli(p), bias -(n-1), readout = mean over Γ(T), the neurons
# wired to every member of the n-tuple T.  Sign-symmetric construction: W_ij = ±1 or N(0, 1),
# bias 0, readout sgn(W_ik W_il) / (d c_D(s)).

SIGN_WEIGHTS = ("rademacher", "gaussian")


def paper_p(n_features: int, neurons: int) -> float:
    r"""The paper's connection probability :math:`p = \ln^2 m / \sqrt d` (may exceed 1).

    It is a probability only once :math:`d > \ln^4 m` (see :func:`paper_min_neurons`); the
    construction refuses larger values, this function just reports the formula.
    """
    m = check_int("n_features", n_features, low=2)
    d = check_int("neurons", neurons, low=1)
    return float(np.log(m) ** 2 / np.sqrt(d))


def paper_min_neurons(n_features: int) -> float:
    r"""The number of neurons below which :func:`paper_p` exceeds 1: :math:`d = \ln^4 m`."""
    m = check_int("n_features", n_features, low=2)
    return float(np.log(m) ** 4)


def balanced_p(neurons: int, sparsity: int, arity: int = 2) -> float:
    r"""Connection probability that minimises the heuristic mean-square readout error.

    The worst output pattern has :math:`n-1` of its :math:`n` inputs active; a neuron of
    :math:`\Gamma(T)` then reads :math:`N \sim \mathrm{Bin}(s', p)` other active features,
    :math:`s' = \max(s-n+1, 1)`, and the readout averages :math:`|\Gamma| \approx dp^n` of them:

    .. math:: \mathbb E[\text{err}^2] \approx s'^2 p^2 + \frac{s'}{d\,p^{\,n-1}},

    bias squared (grows with :math:`p`) plus variance (shrinks with :math:`p`). Setting the
    derivative to zero gives

    .. math:: p^\star = \Bigl(\frac{n-1}{2 s' d}\Bigr)^{1/(n+1)}, \qquad
              p^\star = (2 (s-1) d)^{-1/3} \text{ for } n = 2.

    The variance term is the paper's heuristic :math:`s'(1-p)/(dp)` for :math:`n = 2`. At
    :math:`p^\star` the bias is :math:`\sqrt{2/(n-1)}` times the standard deviation, so neither
    dominates, and :math:`|\Gamma| = d p^{\star n}` grows like :math:`d^{1/(n+1)}`. This is the
    best :math:`p` for the *typical* output; the worst output over many is set by the rare ones
    read from very few neurons, which :func:`worst_case_p` targets.
    """
    d = check_int("neurons", neurons, low=1)
    n = check_int("arity", arity, low=2)
    s = check_int("sparsity", sparsity, low=1)
    s_other = max(s - n + 1, 1)
    return float(min(1.0, ((n - 1) / (2.0 * s_other * d)) ** (1.0 / (n + 1))))


def worst_case_p(neurons: int, sparsity: int, arity: int = 2) -> float:
    r"""Connection probability aimed at the worst output rather than the typical one.

    Equates the bias of the worst pattern, :math:`s'p` (:math:`s' = \max(s-n+1, 1)`), with the
    scale :math:`1/\sqrt{|\Gamma|} = 1/\sqrt{dp^n}` of the fluctuations of a mean over
    :math:`|\Gamma|` neurons with :math:`O(1)` activations:

    .. math:: p = (s'^2 d)^{-1/(n+2)}, \qquad p = ((s-1)^2 d)^{-1/4} \text{ for } n = 2.

    It keeps :math:`|\Gamma| = dp^n` larger than :func:`balanced_p` does (here
    :math:`\sqrt d / s'` for :math:`n=2`), so outputs read from very few neurons, which set the
    maximum error, are rarer. The price: a larger mean error, and most outputs nonzero, which
    makes exact evaluation at large :math:`m` much more expensive.
    """
    d = check_int("neurons", neurons, low=1)
    n = check_int("arity", arity, low=2)
    s = check_int("sparsity", sparsity, low=1)
    s_other = max(s - n + 1, 1)
    return float(min(1.0, (s_other**2 * d) ** (-1.0 / (n + 2))))


def expected_gamma_size(neurons: int, p: float, arity: int = 2) -> float:
    r""":math:`\mathbb E|\Gamma(T)| = d p^n`: neurons wired to all ``arity`` members of a tuple."""
    d = check_int("neurons", neurons, low=1)
    p = check_probability("p", p)
    n = check_int("arity", arity, low=1)
    return float(d * p**n)


def empty_gamma_probability(neurons: int, p: float, arity: int = 2) -> float:
    r""":math:`P(\Gamma(T) = \emptyset) = (1 - p^n)^d`; such an output reads 0 (error 1 if all active)."""
    d = check_int("neurons", neurons, low=1)
    p = check_probability("p", p)
    n = check_int("arity", arity, low=1)
    return float(np.exp(d * np.log1p(-(p**n)))) if p < 1 else 0.0


def heuristic_error_mean(other_active: int, p: float) -> float:
    r"""The paper's heuristic mean error of a Bernoulli U-AND output, :math:`s' p`.

    ``other_active`` is :math:`s'`, the active features outside the output's tuple.
    """
    s1 = check_int("other_active", other_active, low=0)
    p = check_probability("p", p)
    return float(s1 * p)


def heuristic_error_var(other_active: int, p: float, neurons: int) -> float:
    r"""The heuristic variance bound (Busch 2025): :math:`s'^2(1-p^2)/d + s'(1-p)/(dp)`."""
    s1 = check_int("other_active", other_active, low=0)
    p = check_probability("p", p)
    d = check_int("neurons", neurons, low=1)
    return float(s1**2 * (1 - p**2) / d + s1 * (1 - p) / (d * p))


def bernoulli_error_moments(
    neurons: int, p: float, sparsity: int, n_active: int, arity: int = 2
) -> dict[str, float]:
    r"""Exact moments of one Bernoulli U-AND output's error, over the random weights.

    The output's tuple :math:`T` (``arity`` = :math:`n` features) has ``n_active`` = :math:`j`
    active members; the input has ``sparsity`` = :math:`s` active features in all. A neuron of
    :math:`\Gamma(T)` has activation :math:`a = \mathrm{ReLU}(j-n+1+N)`,
    :math:`N\sim\mathrm{Bin}(s-j,p)` (its wiring to the other active features is independent of
    its membership in :math:`\Gamma(T)`), independently across neurons; :math:`|\Gamma(T)| = g
    \sim \mathrm{Bin}(d, p^n)`; the output is the mean of :math:`g` copies of :math:`a`, or 0
    when :math:`g = 0`; the target is :math:`y = [j = n]`. Hence, with :math:`q = P(g=0)`,

    .. math::
        \mathbb E[\text{err}] = (1-q)\,\mathbb E a - y, \qquad
        \mathbb E[\text{err}^2] = \sum_{g\ge1} P(g)\Bigl(\frac{\mathrm{Var}\,a}{g}
            + (\mathbb E a - y)^2\Bigr) + q y^2,

    and :math:`\mathbb E|\text{err}| = \mathbb E[\text{err}] + 2qy` since the error is
    :math:`\ge 0` unless :math:`g=0`.

    Returns
    -------
    dict with ``mean``, ``mean_abs``, ``mean_sq``, ``std`` (of the error), and ``p_empty`` (:math:`q`).
    """
    from scipy import stats

    d = check_int("neurons", neurons, low=1)
    p = check_probability("p", p)
    n = check_int("arity", arity, low=1)
    s = check_int("sparsity", sparsity, low=0)
    j = check_int("n_active", n_active, low=0, high=min(n, s))
    y = 1.0 if j == n else 0.0
    k = np.arange(s - j + 1)
    pk = stats.binom.pmf(k, s - j, p)
    a = np.maximum(j - n + 1 + k, 0).astype(float)
    ea = float(pk @ a)
    var_a = float(pk @ a**2) - ea**2
    g = np.arange(1, d + 1)
    pg = stats.binom.pmf(g, d, p**n)
    q = empty_gamma_probability(d, p, n)
    mean = (1 - q) * ea - y
    mean_sq = float(pg @ (var_a / g)) + (1 - q) * (ea - y) ** 2 + q * y**2
    return {
        "mean": float(mean),
        "mean_abs": float(mean + 2 * q * y),
        "mean_sq": float(mean_sq),
        "std": float(np.sqrt(max(mean_sq - mean**2, 0.0))),
        "p_empty": float(q),
    }


def sign_readout_constant(sparsity: int, weights: str = "rademacher") -> float:
    r"""The analytic readout's normalisation :math:`c_D(s) = \mathbb E[\mathrm{sgn}(w_1 w_2)\,
    \mathrm{ReLU}(w_1 + w_2 + Z)]`, exactly.

    :math:`w_1, w_2` are the weights from the two inputs of an AND, :math:`Z` the sum of the
    weights from the other :math:`s-2` active features, all i.i.d. from :math:`D`; then
    :math:`\mathbb E[\mathrm{sgn}(W_{ik}W_{il})\,a_i] = c_D(s)` when both are active and 0
    otherwise, so :math:`r_{kl,i} = \mathrm{sgn}(W_{ik}W_{il})/(d\,c_D(s))` is unbiased.

    * ``"rademacher"`` (:math:`\pm1`): with :math:`h(\mu) = \mathbb E\,\mathrm{ReLU}(\mu+Z)`,
      :math:`Z = 2K-(s-2)`, :math:`K\sim\mathrm{Bin}(s-2,\tfrac12)`,
      :math:`c = \tfrac14(h(2) - 2h(0) + h(-2))`, a finite binomial sum evaluated in exact
      rational arithmetic.
    * ``"gaussian"`` (:math:`N(0,1)`): with :math:`S = w_1+w_2+Z \sim N(0, s)` the closed form

      .. math:: c = \frac{2}{\pi\sqrt{2\pi}}\Bigl(2\arcsin\frac1{\sqrt{s-1}}
                   - \sqrt s\,\arcsin\frac1{s-1}\Bigr),

      from :math:`\mathrm{ReLU}(S) = (S+|S|)/2`, :math:`\mathbb E[\mathrm{sgn}\,w_1\,
      \mathrm{sgn}\,w_2\, S] = 0` and the orthant moments :math:`\mathbb E[S\,;\,S,w_1,w_2>0]`
      of a trivariate normal (Tallis 1961). Scale-free: weights :math:`N(0,\sigma^2)` multiply
      both :math:`a` and :math:`c` by :math:`\sigma`.

    Requires :math:`s \ge 2` (an AND needs both inputs active).
    """
    s = check_int("sparsity", sparsity, low=2)
    w = check_choice("weights", weights, SIGN_WEIGHTS)
    if w == "gaussian":
        if s == 2:
            return float((2.0 - np.sqrt(2.0)) / np.sqrt(2.0 * np.pi))
        c = 2 * np.arcsin(1 / np.sqrt(s - 1)) - np.sqrt(s) * np.arcsin(1 / (s - 1))
        return float(2.0 / (np.pi * np.sqrt(2.0 * np.pi)) * c)
    r = s - 2

    def h(mu: int) -> int:  # 2**r * E ReLU(mu + Z), an integer
        return sum(comb(r, k) * max(mu + 2 * k - r, 0) for k in range(r + 1))

    return float(Fraction(h(2) - 2 * h(0) + h(-2), 4 * 2**r))


def relu_second_moment(sparsity: int, weights: str = "rademacher") -> float:
    r""":math:`\mathbb E[\mathrm{ReLU}(S)^2]`, :math:`S` the sum of ``sparsity`` i.i.d. weights from :math:`D`.

    Gaussian :math:`N(0,1)`: :math:`s/2`. Rademacher: :math:`2^{-s}\sum_k \binom sk \max(2k-s,0)^2`.
    """
    s = check_int("sparsity", sparsity, low=1)
    w = check_choice("weights", weights, SIGN_WEIGHTS)
    if w == "gaussian":
        return s / 2.0
    return float(Fraction(sum(comb(s, k) * max(2 * k - s, 0) ** 2 for k in range(s + 1)), 2**s))


def sign_error_moments(
    neurons: int, sparsity: int, weights: str, n_active: int
) -> dict[str, float]:
    r"""Exact mean and variance of one sign-symmetric U-AND output's error (analytic readout).

    :math:`\hat y_{kl} = \frac1{d c}\sum_i \mathrm{sgn}(W_{ik}W_{il})\,a_i`, a mean of :math:`d`
    i.i.d. terms (one per neuron). Each term has second moment :math:`\mathbb E[a^2] =
    \mathbb E\,\mathrm{ReLU}(S_s)^2` (:func:`relu_second_moment`) and mean :math:`c` if both
    inputs are active (``n_active`` = 2), else 0 (the sign of an inactive input's weight is
    independent of :math:`a`). So the error has mean 0 and

    .. math:: \mathrm{Var} = \frac{\mathbb E[\mathrm{ReLU}(S_s)^2] - c^2\,[j=2]}{d\,c^2};

    by the central limit theorem :math:`\mathbb E|\text{err}| \approx \sqrt{2/\pi}\,\mathrm{std}`.

    Returns
    -------
    dict with ``mean`` (0), ``std``, ``mean_abs`` (Gaussian approximation).
    """
    d = check_int("neurons", neurons, low=1)
    s = check_int("sparsity", sparsity, low=2)
    j = check_int("n_active", n_active, low=0, high=2)
    c = sign_readout_constant(s, weights)
    var = (relu_second_moment(s, weights) - (c**2 if j == 2 else 0.0)) / (d * c**2)
    std = float(np.sqrt(var))
    return {"mean": 0.0, "std": std, "mean_abs": float(np.sqrt(2.0 / np.pi) * std)}


def bernoulli_exceed_probability(
    neurons: int, p: float, sparsity: int, n_active: int, error: float, arity: int = 2
) -> float:
    r"""Exact probability that one Bernoulli U-AND output's error exceeds ``error``.

    Same model as :func:`bernoulli_error_moments`: the output's tuple has ``n_active`` =
    :math:`j` active members, :math:`|\Gamma| = g \sim \mathrm{Bin}(d, p^n)`, and each neuron
    of :math:`\Gamma` has activation :math:`a = \mathrm{ReLU}(j-n+1+N)`,
    :math:`N \sim \mathrm{Bin}(s-j, p)`, independently. With :math:`S_g` the sum of :math:`g`
    such activations and :math:`y = [j = n]`,

    .. math::
        P(|\text{err}| > \varepsilon) = q\,[y > \varepsilon]
            + \sum_{g \ge 1} P(g)\, P\bigl(|S_g/g - y| > \varepsilon\bigr),

    the distribution of the integer :math:`S_g` computed by repeated convolution (exact up to
    float rounding; the sum over :math:`g` stops where the binomial tail is below
    :math:`10^{-300}`). Multiplied by the number of outputs with this pattern it is the
    expected number of outputs above ``error`` — a union bound on the chance that any is.
    """
    from scipy import stats

    d = check_int("neurons", neurons, low=1)
    p = check_probability("p", p)
    n = check_int("arity", arity, low=1)
    s = check_int("sparsity", sparsity, low=0)
    j = check_int("n_active", n_active, low=0, high=min(n, s))
    eps = float(error)
    if not eps >= 0:
        raise ValueError(f"error must be >= 0, got {error}")
    y = 1 if j == n else 0
    k = np.arange(s - j + 1)
    a = np.maximum(j - n + 1 + k, 0)
    pa = np.bincount(a, weights=stats.binom.pmf(k, s - j, p))
    q = float(p**n)
    lam = d * q
    g_max = int(min(d, np.ceil(lam + 40.0 * np.sqrt(lam + 1.0) + 40.0)))
    pg = stats.binom.pmf(np.arange(g_max + 1), d, q)
    total = float(pg[0]) if y > eps else 0.0
    dist = np.array([1.0])
    tol = 1e-12
    for g in range(1, g_max + 1):
        dist = np.convolve(dist, pa)
        sums = np.arange(dist.size)
        bad = np.abs(sums - y * g) > (eps + tol) * g
        total += float(pg[g]) * float(dist[bad].sum())
    return float(min(total, 1.0))
