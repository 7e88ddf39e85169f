"""Write the format-2 fixtures of tests/test_export.py (run from the repository root).

    python tests/data/export_v2/make_fixtures.py

The files in this folder were written by this script with the export module as it was before it
was split into one adapter per network kind (one file of 1,567 lines). The test loads them with
the current code, checks their SHA-256, and checks that exporting the same networks today writes
the same bytes: a file written before a change loads after it, bit for bit. ``outputs.npz`` holds
the inputs and the forward pass the loader of that time computed on them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import superposition as sp
from superposition.deep import deep_network
from superposition.export import WithOutputEmbedding, export_network, load_network
from superposition.superposed import build_superposed_uand
from superposition.training import train_uand

HERE = Path(__file__).resolve().parent


def networks() -> dict[str, tuple[object, str]]:
    """The fixture networks, by file name: ``(network, readout)``."""
    return {
        "uand": (sp.build_uand(8, 6, 2, weights="rademacher", seed=1), "explicit"),
        "uand_rule": (sp.build_uand(8, 12, 2, seed=2), "rule"),
        "trained": (train_uand(6, 4, 2, steps=3, seed=3), "explicit"),
        "superposed": (
            WithOutputEmbedding(build_superposed_uand(10, 12, 2, 6, seed=4), out_dim=5),
            "auto",
        ),
        "circuit": (sp.compile_circuit(sp.random_circuit(12, 2, seed=5), 10, seed=6), "auto"),
        "deep": (deep_network(8, 16, 2, 2, seed=7), "auto"),
        "deep_code": (deep_network(8, 24, 1, 2, design="code", blocks=3, seed=8), "auto"),
    }


def inputs(m: int) -> np.ndarray:
    """Four 0/1 inputs ``(4, m)`` with 0, 1, 2 and 2 active features (rows of different counts)."""
    x = np.zeros((4, m), dtype=np.int8)
    x[1, 3] = 1
    x[2, [0, 5]] = 1
    x[3, [1, m - 1]] = 1
    return x


def main() -> None:
    outputs = {}
    for name, (net, readout) in networks().items():
        path = HERE / f"{name}.safetensors"
        export_network(net, path, readout=readout, seed=0)
        loaded = load_network(path)
        x = inputs(loaded.sizes["n_features"])
        outputs[f"{name}.x"] = x
        outputs[f"{name}.y"] = loaded.forward(x)
    np.savez(HERE / "outputs.npz", **outputs)


if __name__ == "__main__":
    main()
