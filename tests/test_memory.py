"""Peak-memory estimates and the check against the machine's available memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import superposition as sp
from superposition import memory


def test_available_bytes_reads_the_machine(monkeypatch, tmp_path) -> None:
    avail = memory.available_bytes()
    assert avail is None or 2**20 < avail < 2**50
    fake = tmp_path / "meminfo"
    fake.write_text("MemTotal:       1000 kB\nMemAvailable:    2048 kB\n")
    monkeypatch.setattr(memory, "MEMINFO", str(fake))
    assert memory.available_bytes() == 2048 * 1024
    # no /proc/meminfo: the free pages from sysconf (or None where there is no such thing)
    monkeypatch.setattr(memory, "MEMINFO", str(tmp_path / "absent"))
    pages = memory.available_bytes()
    assert pages is None or pages > 0


def test_check_fits_names_estimate_and_available() -> None:
    memory.check_fits(100, "a small thing", available=1000)
    with pytest.raises(ValueError, match=r"^a big thing needs about 1 GiB of memory, more than"):
        memory.check_fits(2**30, "a big thing", available=2**29)


def test_estimates_validate_their_arguments() -> None:
    with pytest.raises(ValueError, match="n_features"):
        memory.uand_bytes(0, 10, 1)
    with pytest.raises(ValueError, match="p must be"):
        memory.uand_bytes(10, 10, 1, p=0.0)
    with pytest.raises(ValueError, match="weights"):
        memory.uand_bytes(10, 10, 1, weights="uniform")


def _traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_bernoulli_layer_estimate_matches_what_is_built() -> None:
    """The layer term (the Wiring and the sampler's temporaries) against tracemalloc's count of
    what building the layer and its readout really holds (NumPy reports its buffers to
    tracemalloc)."""
    m, d, s = 5_000, 1_000, 3
    p = sp.connection_probability(None, m, d, s)

    def build() -> None:
        net = sp.build_uand(m, d, s, seed=0)
        net.readout  # noqa: B018 - the readout holds the wiring itself

    peak = _traced_peak(build)
    layer = memory._bernoulli_layer(m, d, p)
    assert 0.8 * peak <= layer <= 1.25 * peak, (layer / 2**20, peak / 2**20)


@pytest.mark.parametrize("weights", ["bernoulli", "gaussian"])
def test_uand_estimate_bounds_the_measured_peak(weights) -> None:
    """Building and exactly evaluating a layer allocates no more than the estimate."""
    m, d, s, k = 400, 300, 3, 4

    def run() -> None:
        net = sp.build_uand(m, d, s, weights=weights, seed=0)
        sp.evaluate_uand(net, sp.sample_sparse(m, s, k, seed=1))

    p = sp.connection_probability(None, m, d, s) if weights == "bernoulli" else 1.0
    peak = _traced_peak(run)
    est = memory.uand_bytes(m, d, k, weights=weights, p=p)
    assert peak <= est, f"measured {peak / 2**20:.0f} MiB > estimate {est / 2**20:.0f} MiB"


def test_embed_estimate_bounds_the_measured_peak() -> None:
    m, d0, k = 50_000, 64, 200

    def run() -> None:
        emb = sp.Embedding(m, d0, seed=0)
        sp.readout_errors(emb, sp.sample_sparse(m, 3, k, seed=1))

    peak = _traced_peak(run)
    est = memory.embed_bytes(m, d0, k)
    assert peak <= est <= 4 * peak


def test_the_issue_request_is_terabytes() -> None:
    """10^8 features, 10^5 neurons, s = 3: p = (4 * 10^5)^(-1/3), 1.4e11 ones of 16 bytes, twice."""
    p = sp.connection_probability(None, 10**8, 10**5, 3)
    est = memory.uand_bytes(10**8, 10**5, 1, p=p)
    assert est == pytest.approx(2 * 16 * 10**13 * p, rel=0.01)
    assert est > 2**40
    assert np.isfinite(est)
