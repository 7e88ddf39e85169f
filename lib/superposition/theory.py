r"""The paper's bounds and heuristic scales, as functions to overlay on measurements.

Every formula here is the theory's prediction, never a fit to our data.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_int


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
    n_features: int, sparsity: int, embed_dim: int, n_inputs: int = 1
) -> float:
    r"""Heuristic size of the worst readout error over ``n_inputs`` inputs and all ``m`` features.

    Each of the :math:`mK` readouts is roughly :math:`N(0, s/d_0)`; the largest of :math:`N`
    such |values| is about :math:`\sigma\sqrt{2\ln N}`, so
    :math:`\varepsilon_{\max} \approx \sqrt{2 s \ln(mK) / d_0}`.
    """
    m = check_int("n_features", n_features, low=2)
    k = check_int("n_inputs", n_inputs, low=1)
    return readout_error_scale(sparsity, embed_dim) * float(np.sqrt(2.0 * np.log(float(m) * k)))


def capacity_scale(embed_dim: int, sparsity: int, error: float, n_inputs: int = 1) -> float:
    r"""Heuristic number of features that fit in ``d0`` dimensions at worst readout error ``ε``.

    Inverting :func:`max_readout_error_scale`: :math:`m_{\max} \approx e^{\varepsilon^2 d_0/(2s)} / K`.
    Exponential in :math:`d_0`: this is the Johnson–Lindenstrauss economy of representation.
    """
    d0 = check_int("embed_dim", embed_dim, low=1)
    s = check_int("sparsity", sparsity, low=1)
    k = check_int("n_inputs", n_inputs, low=1)
    if not error > 0:
        raise ValueError(f"error must be > 0, got {error}")
    return float(np.exp(error**2 * d0 / (2.0 * s)) / k)
