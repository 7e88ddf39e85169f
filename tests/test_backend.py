"""The array backend: one code path for NumPy, CuPy and any array-API namespace.

No GPU is available to this project, so the CuPy path is proved on the CPU with
``array_api_strict``, which rejects NumPy-only idioms; a real GPU run happens only where CuPy
sees a device.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

import superposition as sp


def test_numpy_and_strict_namespaces() -> None:
    assert sp.get_backend("numpy").__name__.endswith("numpy")
    xps = sp.get_backend("array_api_strict")
    assert sp.namespace(xps.asarray([1.0])) is xps
    with pytest.raises(ValueError, match="backend must be one of"):
        sp.get_backend("jax")


def test_readout_error_matrix_is_backend_independent() -> None:
    xps = sp.get_backend("array_api_strict")
    emb = sp.Embedding(200, 32, seed=4)
    phi = emb.matrix()
    act = sp.sample_sparse(200, 3, 10, seed=5)
    x = sp.to_dense(act, 200)
    ref = sp.readout_error_matrix(phi, x)
    got = sp.readout_error_matrix(sp.asarray(phi, xps), sp.asarray(x, xps))
    assert sp.namespace(got) is xps
    assert_allclose(sp.to_numpy(got), ref, rtol=0, atol=1e-12)
    assert_allclose(ref.max(axis=1), sp.readout_errors(emb, act), atol=1e-12)
    with pytest.raises(ValueError, match="x must have shape"):
        sp.readout_error_matrix(phi, x[:, :5])


def test_cupy_on_gpu_when_present() -> None:
    cupy = pytest.importorskip("cupy")
    if not sp.gpu_available():
        pytest.skip("CuPy is installed but no CUDA device is available")
    phi = sp.Embedding(100, 16, seed=0).matrix()  # pragma: no cover - GPU only
    x = sp.to_dense(sp.sample_sparse(100, 2, 4, seed=1), 100)
    got = sp.readout_error_matrix(cupy.asarray(phi), cupy.asarray(x))
    assert_allclose(sp.to_numpy(got), sp.readout_error_matrix(phi, x), atol=1e-12)


def test_to_numpy_roundtrip() -> None:
    a = np.arange(4.0)
    assert sp.to_numpy(a) is a
    xps = sp.get_backend("array_api_strict")
    assert_allclose(sp.to_numpy(xps.asarray(a)), a)
