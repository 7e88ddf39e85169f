r"""The paper's bounds and heuristic scales, as functions to overlay on measurements.

Every formula here is the theory's prediction, never a fit to our data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from math import comb

import numpy as np

from ._validate import check_choice, check_int, check_probability, check_real


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


def _gauss_relu_moments(mu: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\mathbb E\,\mathrm{ReLU}(\mu+\tau Y)` and :math:`\mathbb E\,\mathrm{ReLU}(\mu+\tau Y)^2`, :math:`Y\sim N(0,1)`.

    With :math:`z = \mu/\tau`: :math:`\mu\Phi(z) + \tau\varphi(z)` and
    :math:`(\mu^2+\tau^2)\Phi(z) + \mu\tau\varphi(z)`; at :math:`\tau = 0` the ReLU itself.
    """
    from scipy import special

    mu = np.asarray(mu, dtype=np.float64)
    if tau == 0:
        r = np.maximum(mu, 0.0)
        return r, r * r
    z = mu / tau
    cdf = special.ndtr(z)
    pdf = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    return mu * cdf + tau * pdf, (mu * mu + tau * tau) * cdf + mu * tau * pdf


def _tent(x: Fraction) -> Fraction:
    """:math:`T(x) = \\max(0, 2-|x|) = \\mathrm{ReLU}(x+2) - 2\\,\\mathrm{ReLU}(x) + \\mathrm{ReLU}(x-2)`."""
    return max(Fraction(0), 2 - abs(x))


def sign_readout_constant(
    sparsity: int, weights: str = "rademacher", *, bias: float = 0.0, noise_var: float = 0.0
) -> float:
    r"""The analytic readout's normalisation :math:`c_{D,\beta}(n) = \mathbb E[\mathrm{sgn}(w_1 w_2)\,
    \mathrm{ReLU}(w_1 + w_2 + Z + \beta + \eta)]`, exactly.

    :math:`w_1, w_2` are a neuron's weights from the two inputs of an AND, :math:`Z` the sum of
    its weights from the other :math:`n-2` active features (``sparsity`` = :math:`n`, the
    number of active features of the input), all i.i.d. from :math:`D`; :math:`\beta` is the
    neuron's bias and :math:`\eta\sim N(0,\tau^2)` independent noise (``noise_var`` =
    :math:`\tau^2`: the superposition noise :math:`W_i\cdot e` of
    :func:`superposition.superposed.embedding_noise_var`, 0 for basis-aligned inputs). Then
    :math:`\mathbb E[\mathrm{sgn}(W_{ik}W_{il})\,a_i] = c` when :math:`k, l` are both active
    and 0 otherwise (an inactive input's weight sign is independent of :math:`a_i`), so
    :math:`r_{kl,i} = \mathrm{sgn}(W_{ik}W_{il})/(d\,c)` is unbiased *on inputs with exactly*
    :math:`n` *active features*. :math:`c` is even in :math:`\beta` (``ReLU(x) = x + ReLU(-x)``
    and :math:`(w, Z) \to (-w, -Z)`).

    * ``"rademacher"`` (:math:`\pm1`): averaging over the signs of :math:`w_1, w_2`,
      :math:`c = \tfrac14\,\mathbb E\,T(Z + \beta + \eta)` with the tent
      :math:`T(x) = \mathrm{ReLU}(x+2) - 2\,\mathrm{ReLU}(x) + \mathrm{ReLU}(x-2) = \max(0, 2-|x|)`,
      :math:`Z = 2K-(n-2)`, :math:`K\sim\mathrm{Bin}(n-2,\tfrac12)`: a finite binomial sum in
      exact rational arithmetic (``noise_var = 0``), or a finite mixture of Gaussian ReLU means.
      With :math:`\beta = 0`: :math:`c(2) = \tfrac12`, :math:`c(3) = c(4) = \tfrac14`; with
      :math:`\beta = -1`: :math:`c(2) = c(3) = \tfrac14`.
    * ``"gaussian"`` (:math:`N(0,1)`), :math:`\beta = 0`: with :math:`S \sim N(0, n')`,
      :math:`n' = n + \tau^2`, the closed form

      .. math:: c = \frac{2}{\pi\sqrt{2\pi}}\Bigl(2\arcsin\frac1{\sqrt{n'-1}}
                   - \sqrt{n'}\,\arcsin\frac1{n'-1}\Bigr),

      from :math:`\mathrm{ReLU}(S) = (S+|S|)/2`, :math:`\mathbb E[\mathrm{sgn}\,w_1\,
      \mathrm{sgn}\,w_2\, S] = 0` and the orthant moments of a trivariate normal (Tallis 1961).
      :math:`\beta \ne 0`: with :math:`u = (w_1+w_2)/\sqrt2` and :math:`v = (w_1-w_2)/\sqrt2`
      independent, :math:`\mathrm{sgn}(w_1w_2) = \mathrm{sgn}(u^2 - v^2)` averages to
      :math:`4\Phi(|u|) - 3` over :math:`v`, so

      .. math:: c = \int_0^\infty \varphi(u)\,\bigl(4\Phi(u) - 3\bigr)\,
                   \bigl[g(\beta + \sqrt2 u) + g(\beta - \sqrt2 u)\bigr]\,du,
                   \qquad g(\mu) = \mathbb E\,\mathrm{ReLU}(\mu + \sigma Y),

      :math:`\sigma^2 = n-2+\tau^2`: one smooth integral, evaluated by adaptive quadrature to
      :math:`10^{-12}`. Scale-free: weights :math:`N(0,\sigma_w^2)` with bias
      :math:`\sigma_w\beta` multiply :math:`a` and :math:`c` by :math:`\sigma_w`.

    Requires :math:`n \ge 2` (an AND needs both inputs active).
    """
    s = check_int("sparsity", sparsity, low=2)
    w = check_choice("weights", weights, SIGN_WEIGHTS)
    beta = check_real("bias", bias)
    t2 = check_real("noise_var", noise_var, low=0.0)
    r = s - 2
    if w == "rademacher":
        if t2 == 0:
            b = Fraction(beta)
            total = sum(comb(r, k) * _tent(2 * k - r + b) for k in range(r + 1))
            return float(total / (4 * 2**r))
        k = np.arange(r + 1)
        pk = np.array([comb(r, int(i)) for i in k], dtype=np.float64) / 2.0**r
        tau = float(np.sqrt(t2))

        def h(mu: float) -> float:  # E ReLU(mu + Z + beta + eta)
            return float(pk @ _gauss_relu_moments(mu + beta + 2 * k - r, tau)[0])

        return 0.25 * (h(2.0) - 2.0 * h(0.0) + h(-2.0))
    se = s + t2
    if beta == 0:
        if se == 2:
            return float((2.0 - np.sqrt(2.0)) / np.sqrt(2.0 * np.pi))
        c = 2 * np.arcsin(1 / np.sqrt(se - 1)) - np.sqrt(se) * np.arcsin(1 / (se - 1))
        return float(2.0 / (np.pi * np.sqrt(2.0 * np.pi)) * c)
    return _gaussian_sign_integral(beta, float(np.sqrt(se - 2)))


def _gaussian_sign_integral(beta: float, sigma: float) -> float:
    """The quadrature of :func:`sign_readout_constant` for Gaussian weights and bias ``beta``."""
    from scipy import integrate, special

    def f(u: float) -> float:
        g = _gauss_relu_moments(np.array([beta + np.sqrt(2.0) * u, beta - np.sqrt(2.0) * u]), sigma)
        pdf = np.exp(-0.5 * u * u) / np.sqrt(2.0 * np.pi)
        return float(pdf * (4.0 * special.ndtr(u) - 3.0) * g[0].sum())

    # the kink of ReLU (sigma = 0) at u = |beta|/sqrt(2); phi(u) < 1e-40 beyond u = 14
    points = [abs(beta) / np.sqrt(2.0)] if sigma == 0 and abs(beta) < 14 else None
    val, _ = integrate.quad(f, 0.0, 14.0, points=points, epsabs=1e-13, epsrel=1e-12, limit=200)
    return float(val)


def relu_second_moment(
    sparsity: int, weights: str = "rademacher", *, bias: float = 0.0, noise_var: float = 0.0
) -> float:
    r""":math:`\mathbb E[\mathrm{ReLU}(S+\beta+\eta)^2]`, :math:`S` the sum of ``sparsity`` i.i.d. weights from :math:`D`.

    :math:`\beta` = ``bias``, :math:`\eta\sim N(0,\tau^2)` with :math:`\tau^2` = ``noise_var``.
    Gaussian :math:`N(0,1)`: :math:`S+\beta+\eta\sim N(\beta, n+\tau^2)` and
    :math:`\mathbb E\,\mathrm{ReLU}(\mu+\sigma Y)^2 = (\mu^2+\sigma^2)\Phi(\mu/\sigma)
    + \mu\sigma\varphi(\mu/\sigma)` (:math:`n/2` at :math:`\beta = \tau = 0`). Rademacher:
    :math:`2^{-n}\sum_k \binom nk \max(2k-n+\beta,0)^2` (exact), or the same mixture of
    Gaussian moments with noise.
    """
    s = check_int("sparsity", sparsity, low=1)
    w = check_choice("weights", weights, SIGN_WEIGHTS)
    beta = check_real("bias", bias)
    t2 = check_real("noise_var", noise_var, low=0.0)
    if w == "gaussian":
        if beta == 0 and t2 == 0:
            return s / 2.0
        return float(_gauss_relu_moments(np.array(beta), float(np.sqrt(s + t2)))[1])
    if t2 == 0:
        b = Fraction(beta)
        total = sum(comb(s, k) * max(Fraction(0), 2 * k - s + b) ** 2 for k in range(s + 1))
        return float(total / 2**s)
    k = np.arange(s + 1)
    pk = np.array([comb(s, int(i)) for i in k], dtype=np.float64) / 2.0**s
    return float(pk @ _gauss_relu_moments(2 * k - s + beta, float(np.sqrt(t2)))[1])


@dataclass(frozen=True)
class SignCalibration:
    r"""The analytic readout of a sign-symmetric layer whose neurons come in groups of different bias.

    Group :math:`g` holds a fraction :math:`f_g` of the :math:`d` neurons, all with bias
    :math:`\beta_g`; the readout of the pair :math:`(k, l)` is

    .. math:: \hat y_{kl} = \sum_g \frac{\alpha_g}{f_g d}\sum_{i\in g}
              \mathrm{sgn}(W_{ik}W_{il})\,a_i,
              \qquad \mathbb E\,\hat y_{kl} = x_kx_l\sum_g \alpha_g\, c_{\beta_g}(n)

    on an input with :math:`n` active features (:func:`sign_readout_constant`). The weights
    :math:`\alpha` solve :math:`\sum_g \alpha_g c_{\beta_g}(n) = 1` for every :math:`n` in
    ``counts`` (:func:`sign_calibration`).

    Attributes
    ----------
    weights : {"rademacher", "gaussian"}
    biases, fractions, alpha : tuples of float, one per group
    counts : tuple of int
        The active counts :math:`n` the readout is calibrated on.
    noise_vars : tuple of float
        :math:`\tau^2(n)` per count (0: basis-aligned).
    constants : tuple of tuples of float
        ``constants[j][g]`` = :math:`c_{\beta_g}(n_j)`.
    residual : float
        :math:`\max_n |\sum_g\alpha_g c_{\beta_g}(n) - 1|`: the readout's bias on the ANDs
        (0 when the counts can all be met).
    noise : float
        :math:`\max_n \bigl(\sum_g \alpha_g^2\, \mathbb E[a^2]_g / f_g\bigr)^{1/2}`
        (:func:`relu_second_moment`): :math:`\sqrt d` times the standard deviation of an
        output with no active member, over the random weights, at the worst count.
    """

    weights: str
    biases: tuple[float, ...]
    fractions: tuple[float, ...]
    counts: tuple[int, ...]
    noise_vars: tuple[float, ...]
    alpha: tuple[float, ...]
    constants: tuple[tuple[float, ...], ...]
    residual: float
    noise: float

    def mean_and(self, count: int) -> float:
        r""":math:`\sum_g \alpha_g c_{\beta_g}(n)`: the mean reading of an AND that is 1, at a calibrated count."""
        j = self.counts.index(check_int("count", count, low=2))
        return float(np.dot(self.alpha, self.constants[j]))


def sign_calibration(
    weights: str,
    biases: Sequence[float],
    counts: Sequence[int],
    *,
    fractions: Sequence[float] | None = None,
    noise_vars: Sequence[float] | None = None,
) -> SignCalibration:
    r"""The readout weights :math:`\alpha_g` of a grouped sign-symmetric layer (:class:`SignCalibration`).

    Solves :math:`\sum_g \alpha_g c_{\beta_g}(n) = 1` for :math:`n \in` ``counts``: exactly
    when it can be met; by least squares when there are fewer groups than counts (the
    ``residual`` says how far); and, when there are more, with the smallest noise
    :math:`\sum_g \alpha_g^2 v_g/f_g` (:math:`v_g` the groups' :math:`\mathbb E[a^2]` at the
    largest count), i.e. the minimum-norm solution in :math:`u_g = \alpha_g\sqrt{v_g/f_g}`.
    One group and one count :math:`n` give the paper's :math:`\alpha = 1/c_\beta(n)`.

    Parameters
    ----------
    weights : {"rademacher", "gaussian"}
    biases : sequence of float
        :math:`\beta_g`, one per group.
    counts : sequence of int
        Active counts :math:`n \ge 2` to calibrate on.
    fractions : sequence of float, optional
        :math:`f_g > 0`, summing to 1; default equal groups.
    noise_vars : sequence of float, optional
        :math:`\tau^2(n)` for each count (default 0).

    Returns
    -------
    SignCalibration
    """
    w = check_choice("weights", weights, SIGN_WEIGHTS)
    betas = tuple(check_real("bias", b) for b in biases)
    if not betas:
        raise ValueError("biases must hold at least one group bias")
    ns = tuple(check_int("count", n, low=2) for n in counts)
    if not ns:
        raise ValueError("counts must hold at least one active count >= 2")
    g = len(betas)
    if fractions is None:
        f = np.full(g, 1.0 / g)
    else:
        f = np.array([check_real("fraction", x, low=0.0, low_open=True) for x in fractions])
        if f.size != g or abs(f.sum() - 1.0) > 1e-9:
            raise ValueError(
                f"fractions must be {g} positive numbers summing to 1, got {fractions}"
            )
    if noise_vars is None:
        tau2 = (0.0,) * len(ns)
    else:
        tau2 = tuple(check_real("noise_var", t, low=0.0) for t in noise_vars)
        if len(tau2) != len(ns):
            raise ValueError(
                f"noise_vars must have one value per count ({len(ns)}), got {len(tau2)}"
            )
    C, V = _constant_tables(w, betas, ns, tau2)
    return _calibrate(w, betas, f, ns, tau2, C, V)


@lru_cache(maxsize=256)
def _constant_tables(
    w: str, betas: tuple[float, ...], ns: tuple[int, ...], tau2: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """``C[j, g]`` = c_beta_g(n_j) and ``V[j, g]`` = E[a^2] of group g at count n_j."""
    C = np.array([[sign_readout_constant(n, w, bias=b, noise_var=t) for b in betas]
                  for n, t in zip(ns, tau2, strict=True)])  # fmt: skip
    V = np.array([[relu_second_moment(n, w, bias=b, noise_var=t) for b in betas]
                  for n, t in zip(ns, tau2, strict=True)])  # fmt: skip
    return C, V


def _calibrate(
    w: str,
    betas: tuple[float, ...],
    f: np.ndarray,
    ns: tuple[int, ...],
    tau2: tuple[float, ...],
    C: np.ndarray,
    V: np.ndarray,
) -> SignCalibration:
    """The minimum-noise (least-squares when over-determined) solution of ``C alpha = 1``."""
    if (V[int(np.argmax(ns))] <= 0).any() or not (np.abs(C) > 0).any(axis=0).all():
        raise ValueError(f"a group with bias in {betas} never fires usefully at counts {ns}")
    scale = np.sqrt(V[int(np.argmax(ns))] / f)  # alpha = u / scale
    u = np.linalg.lstsq(C / scale, np.ones(len(ns)), rcond=None)[0]
    alpha = u / scale
    residual = float(np.abs(C @ alpha - 1.0).max())
    noise = float(np.sqrt((V * (alpha**2 / f)).sum(axis=1).max()))
    return SignCalibration(
        w, betas, tuple(float(x) for x in f), ns, tau2, tuple(float(a) for a in alpha),
        tuple(tuple(float(x) for x in row) for row in C), residual, noise,
    )  # fmt: skip


COUNT_FREE_GRID = tuple(0.0 - 0.25 * i for i in range(17))  # 0.0, not -0.0, first
"""Candidate group biases of :func:`count_free_design`: 0, -0.25, ..., -4."""


def count_free_design(
    sparsity: int,
    weights: str = "rademacher",
    *,
    noise_vars: Sequence[float] | None = None,
    grid: Sequence[float] = COUNT_FREE_GRID,
    tolerance: float = 1e-9,
) -> SignCalibration:
    r"""Group biases whose readout is unbiased on **every** input with at most ``sparsity`` active features.

    Searches every set of at most :math:`s-1` biases from ``grid`` (equal groups) for a
    calibration over the counts :math:`n = 2, \dots, s` (:func:`sign_calibration`) with
    ``residual`` :math:`\le` ``tolerance``, and returns the one with the smallest ``noise``.
    :math:`s-1` groups generally meet the :math:`s-1` counts; fewer can when the constants
    line up, e.g. Rademacher weights with the single bias :math:`-1` for :math:`s = 3`
    (:math:`c_{-1}(2) = c_{-1}(3) = \tfrac14`); at :math:`s = 2` one count is calibrated and
    the least noisy bias wins (0 for Rademacher weights). Only biases :math:`\le 0` are searched: since
    :math:`c_\beta = c_{-\beta}`, a positive bias gains nothing on the ANDs and makes neurons
    fire on the empty input.

    Parameters
    ----------
    sparsity : int
        :math:`s \ge 2`.
    weights : {"rademacher", "gaussian"}
    noise_vars : sequence of float, optional
        :math:`\tau^2(n)` for :math:`n = 2, \dots, s` (superposed inputs); default 0.
    grid : sequence of float
        Candidate biases (:data:`COUNT_FREE_GRID`).
    tolerance : float
        Largest residual accepted as unbiased.

    Returns
    -------
    SignCalibration
        ``ValueError`` when no set of biases from the grid meets every count.
    """
    from itertools import combinations

    s = check_int("sparsity", sparsity, low=2)
    w = check_choice("weights", weights, SIGN_WEIGHTS)
    tol = check_real("tolerance", tolerance, low=0.0)
    cand = sorted({check_real("bias", b, high=0.0) for b in grid}, reverse=True)
    counts = tuple(range(2, s + 1))
    if noise_vars is None:
        tau2 = (0.0,) * len(counts)
    else:
        tau2 = tuple(check_real("noise_var", t, low=0.0) for t in noise_vars)
        if len(tau2) != len(counts):
            raise ValueError(f"noise_vars must have one value per count 2..{s}, got {len(tau2)}")
    c_all, v_all = _constant_tables(w, tuple(cand), counts, tau2)
    best: SignCalibration | None = None
    for g in range(1, len(counts) + 1):
        f = np.full(g, 1.0 / g)
        for idx in combinations(range(len(cand)), g):
            cols = list(idx)
            try:
                cal = _calibrate(
                    w, tuple(cand[i] for i in idx), f, counts, tau2, c_all[:, cols], v_all[:, cols]
                )
            except ValueError:
                continue
            if cal.residual <= tol and (best is None or cal.noise < best.noise - 1e-12):
                best = cal
    if best is None:
        raise ValueError(f"no biases from the grid meet every count 2..{s} for weights={w!r}")
    return best


def linear_readout_floor(
    sparsity: int,
    weights: str = "rademacher",
    *,
    bias: float = 0.0,
    counts: Sequence[int] | None = None,
    affine: bool = True,
    n_features: int | None = None,
    n_types: int = 2000,
    seed: int = 0,
) -> float:
    r"""The smallest worst-case error of one AND output that **any** linear readout of **any** width reaches.

    Take the output :math:`(k, l)` and :math:`q-2` more features (``n_features`` = :math:`q`,
    default :math:`s`), and every input :math:`A \subseteq [q]` with :math:`|A|` in
    ``counts`` (default :math:`0, 1, \dots, s`; the empty input is always included). A
    neuron of the layer restricted to these inputs is a *type*: its weights on the
    :math:`q` features (the other features are inactive). Any readout of any population of
    neurons is :math:`\hat y_A = \sum_t R_t\,\mathrm{ReLU}(w_t\cdot 1_A + \beta) + b` with
    arbitrary real :math:`R_t` (``affine``: also a constant :math:`b`; otherwise
    :math:`b = 0`, the paper's linear readout), so the best worst case is the linear program

    .. math:: \min_{R, b, \varepsilon} \varepsilon \quad\text{s.t.}\quad
              |\hat y_A - [k,l\in A]| \le \varepsilon \ \ \forall A,

    solved with HiGHS (``scipy.optimize.linprog``). Rademacher: the :math:`2^q` sign
    patterns are all the types, so the value bounds every Rademacher layer of any width
    from below. Gaussian: ``n_types`` sampled types (a finite population), an upper
    estimate of the infinite-width value.

    Returns
    -------
    float
        The floor :math:`\varepsilon^*`.
    """
    from itertools import combinations, product

    from scipy.optimize import linprog

    s = check_int("sparsity", sparsity, low=2)
    w = check_choice("weights", weights, SIGN_WEIGHTS)
    beta = check_real("bias", bias)
    q = s if n_features is None else check_int("n_features", n_features, low=s)
    if q > 10:
        raise ValueError(f"n_features must be at most 10 here (2^q types), got {q}")
    ns = sorted({0, *(range(s + 1) if counts is None else counts)})
    for n in ns:
        check_int("count", n, low=0, high=s)
    inputs = [A for n in ns for A in combinations(range(q), n)]
    y = np.array([1.0 if {0, 1} <= set(A) else 0.0 for A in inputs])
    ind = np.zeros((len(inputs), q))
    for i, A in enumerate(inputs):
        ind[i, list(A)] = 1.0
    if w == "rademacher":
        types = np.array(list(product((-1.0, 1.0), repeat=q)))
    else:
        types = np.random.default_rng(check_int("seed", seed, low=0)).standard_normal(
            (check_int("n_types", n_types, low=1), q)
        )
    act = np.maximum(ind @ types.T + beta, 0.0)  # (inputs, types)
    n_in, n_t = act.shape
    const = np.ones((n_in, 1)) if affine else np.zeros((n_in, 1))
    # variables [R (n_t), b, eps]:  (act R + b) - eps <= y  and  -(act R + b) - eps <= -y
    a_ub = np.block([[act, const, -np.ones((n_in, 1))], [-act, -const, -np.ones((n_in, 1))]])
    b_ub = np.concatenate([y, -y])
    cost = np.zeros(n_t + 2)
    cost[-1] = 1.0
    bounds = [(None, None)] * (n_t + 1) + [(0, None)]
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if res.status != 0:  # pragma: no cover - the program is always feasible and bounded
        raise RuntimeError(f"linprog failed: {res.message}")
    return float(res.fun)


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


def misread_probability(
    n_features: int, sparsity: int, pairs_per_neuron: int, neurons_per_product: int
) -> float:
    r"""Chance that a product of a targeted gate layer is misread on one input (a heuristic).

    A targeted U-AND neuron holds :math:`q` products, :math:`2q` features, so it also holds one
    of the :math:`s - 1` other active features with probability
    :math:`p_1 = \min(1, 2q(s-1)/m)` (about :math:`2qs/m`); such a neuron fires and adds
    :math:`1/r` to every product it holds. A product held by :math:`r` neurons is misread when
    more than half of them fire that way, :math:`P[\mathrm{Bin}(r, p_1) > r/2]`, computed
    exactly here:

    .. math:: \sum_{j > r/2} \binom{r}{j} p_1^j (1 - p_1)^{r-j}.

    Multiplied by the products with an active input in a run, it is the expected number of
    misread products per run: at most :math:`sLK` when every value feeds one product (the
    paired ``{and, or}`` blocks of :func:`~superposition.random_circuit`: a block's AND and OR
    share one product), at most :math:`2sLK` when a value can feed two.
    """
    m = check_int("n_features", n_features, low=2)
    s = check_int("sparsity", sparsity, low=1, high=m)
    q = check_int("pairs_per_neuron", pairs_per_neuron, low=1)
    r = check_int("neurons_per_product", neurons_per_product, low=1)
    p1 = min(1.0, 2 * q * (s - 1) / m)
    return float(sum(comb(r, j) * p1**j * (1 - p1) ** (r - j) for j in range(r // 2 + 1, r + 1)))
