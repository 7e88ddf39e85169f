"""Shared fixtures: fixed seeds, so every statistical check is reproducible bit for bit."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240805)
