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


@pytest.mark.gpu
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


# ---------------------------------------------------------------- choosing the backend


def test_backend_from_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from superposition import backend as B

    monkeypatch.delenv(B.ENV_VAR, raising=False)
    assert B.backend_name() == "numpy"
    assert B.get_backend().__name__.endswith("numpy")
    monkeypatch.setenv(B.ENV_VAR, "array_api_strict")
    assert B.backend_name() == "array_api_strict"
    assert B.get_backend().__name__ == "array_api_strict"
    assert B.get_backend("numpy").__name__.endswith("numpy")  # the argument wins
    monkeypatch.setenv(B.ENV_VAR, "torch")
    with pytest.raises(ValueError, match="SUPERPOSITION_BACKEND must be one of"):
        B.get_backend()


def test_cupy_requested_but_unusable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from superposition import backend as B

    monkeypatch.setitem(sys.modules, "cupy", None)  # not installed
    monkeypatch.setenv(B.ENV_VAR, "cupy")
    with pytest.raises(RuntimeError, match="cupy is not installed"):
        B.get_backend()
    assert not B.gpu_available()
    fake = types.ModuleType("cupy")
    fake.is_available = lambda: False  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cupy", fake)  # installed, no device
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        B.get_backend("cupy")


def test_cupy_backend_on_this_machine() -> None:
    """Whatever this machine has: a working CuPy namespace, or the RuntimeError."""
    if sp.gpu_available():  # pragma: no cover - GPU only
        xp = sp.get_backend("cupy")
        assert sp.namespace(xp.asarray([1.0])) is xp
    else:
        with pytest.raises(RuntimeError, match="backend 'cupy' needs"):
            sp.get_backend("cupy")


# ---------------------------------------------------------------- primitives the standard lacks


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_bincount_and_ranges_match_numpy(backend: str, rng: np.random.Generator) -> None:
    from superposition.backend import bincount, ranges

    xp = sp.get_backend(backend)
    x = rng.integers(0, 50, size=1000)
    got = bincount(xp.asarray(x), 60)
    assert got.dtype == xp.int64 and got.shape == (60,)
    assert_allclose(sp.to_numpy(got), np.bincount(x, minlength=60))
    assert_allclose(sp.to_numpy(bincount(xp.asarray(x[:0]), 3)), [0, 0, 0])
    starts = rng.integers(0, 100, size=20)
    lengths = rng.integers(0, 5, size=20)
    ref = np.concatenate([np.arange(a, a + n) for a, n in zip(starts, lengths, strict=True)])
    got = ranges(xp.asarray(starts), xp.asarray(lengths))
    assert_allclose(sp.to_numpy(got), ref)
    assert ranges(xp.asarray(starts[:0]), xp.asarray(lengths[:0])).shape == (0,)
    with pytest.raises(ValueError, match="minlength"):
        bincount(xp.asarray(x), -1)


@pytest.mark.gpu
def test_primitives_on_gpu() -> None:
    if not sp.gpu_available():
        pytest.skip("no CUDA GPU on this machine")
    from superposition.backend import bincount, ranges  # pragma: no cover - GPU only

    xp = sp.get_backend("cupy")
    x = np.array([3, 1, 1, 0])
    assert_allclose(sp.to_numpy(bincount(xp.asarray(x), 5)), [1, 2, 0, 1, 0])
    assert_allclose(sp.to_numpy(ranges(xp.asarray([5, 0]), xp.asarray([2, 1]))), [5, 6, 0])
