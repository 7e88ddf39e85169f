"""Shared fixtures: fixed seeds, so every statistical check is reproducible bit for bit."""

from __future__ import annotations  # noqa: I001

import superposition  # noqa: F401  (first: it pins the OpenBLAS kernels before NumPy loads them)

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240805)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gpu: needs a CUDA GPU through CuPy (skipped only where none is present)"
    )
