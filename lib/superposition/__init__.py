"""Constructions and measurements from *Mathematical Models of Computation in Superposition*.

Hänni, Mendel, Vaintrob and Chan (2024), arXiv:2408.05451.
"""

from .backend import asarray, get_backend, gpu_available, namespace, to_numpy
from .circuits import (
    Circuit,
    CircuitLayer,
    CompiledCircuit,
    CompiledLayer,
    EmulationReport,
    active_counts,
    compile_circuit,
    compile_layer,
    emulate,
    fraction_sparse,
    gate_polynomial,
    gate_table,
    random_circuit,
    readout_stats,
)
from .embedding import (
    Embedding,
    coherence,
    max_readout_error,
    overlaps,
    readout_error_matrix,
    readout_errors,
    sample_sparse,
    to_dense,
)
from .sweep import fraction_passing, largest_passing, run_grid, smallest_passing
from .theory import (
    capacity_scale,
    coherence_scale,
    max_readout_error_scale,
    readout_error_scale,
)

__version__ = "0.1.0"

__all__ = [
    "Circuit",
    "CircuitLayer",
    "CompiledCircuit",
    "CompiledLayer",
    "EmulationReport",
    "active_counts",
    "compile_circuit",
    "compile_layer",
    "emulate",
    "fraction_sparse",
    "gate_polynomial",
    "gate_table",
    "random_circuit",
    "readout_stats",
    "Embedding",
    "asarray",
    "capacity_scale",
    "coherence",
    "coherence_scale",
    "fraction_passing",
    "get_backend",
    "largest_passing",
    "max_readout_error",
    "max_readout_error_scale",
    "gpu_available",
    "namespace",
    "overlaps",
    "readout_error_scale",
    "readout_error_matrix",
    "readout_errors",
    "run_grid",
    "sample_sparse",
    "smallest_passing",
    "to_dense",
    "to_numpy",
]
