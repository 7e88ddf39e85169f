"""Constructions and measurements from *Mathematical Models of Computation in Superposition*.

Hänni, Mendel, Vaintrob and Chan (2024), arXiv:2408.05451.

The package is layered; each layer imports only the ones above it:

backend, kernels
    Arrays of any array-API namespace (NumPy, CuPy, ``array_api_strict``) and the structured
    kernels every evaluator runs on.
embedding
    Random feature directions :math:`\\Phi` and sparse boolean inputs.
uand, superposed, circuits, correction, deep, training, theory
    The constructions and their theory.
search, fit
    Measurements shared by every chapter: threshold searches and scaling fits.
store, executors, sweep, experiments, export
    Stored, resumable sweeps on any executor, and ground-truth networks on disk.
cli
    The ``superposition`` command.
"""

from ._blas import BLAS_CORETYPE as _BLAS_CORETYPE  # noqa: F401, I001  (first: pins OpenBLAS)
from ._version import __version__ as __version__
from .backend import asarray, backend_name, get_backend, gpu_available, namespace, to_numpy
from .benchmark import (
    DictionaryScore,
    GroundTruth,
    LayerSample,
    contrast_directions,
    contrast_truth,
    feature_values,
    ground_truth,
    ground_truth_layers,
    layer_activations,
    load_dictionary,
    sample_layer,
    score_dictionary,
)
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
from .correction import (
    CLIP,
    CodeCorrection,
    FeatureDenoiser,
    capacity,
    chain,
    code_design,
    code_for_budget,
    correction_step,
    denoiser_for_budget,
    fresh_denoisers,
    noise_tolerance,
    reed_solomon_codes,
)
from .collisions import OnesTrace, colliding_inputs, sample_inputs, track_ones
from .deep import (
    DeepNetwork,
    DeepResult,
    DeepTrace,
    capacity_search,
    deep_capacity,
    deep_network,
    run_deep,
)
from .dictionary import (
    BaselineRun,
    LearnedDictionary,
    fit_probes,
    learn_dictionary,
    normalise_activations,
    run_baseline,
    run_baselines,
    train_sae,
)
from .embedding import (
    Embedding,
    coherence,
    max_readout_error,
    overlaps,
    readout_error_matrix,
    readout_errors,
    sample_feature_readouts,
    sample_sparse,
    to_dense,
)
from .executors import open_executor
from .experiments import EXPERIMENTS, register_experiment
from .export import (
    export_network,
    load_network,
    network_arrays,
    register_network_kind,
    to_torch,
)
from .fit import (
    CrossoverFit,
    PowerLawFit,
    fit_crossover,
    fit_power_law,
    local_exponent,
    quantile,
)
from .grouped import GroupedCorrection, group_design
from .search import fraction_passing, largest_passing, smallest_passing
from .store import Store, default_store
from .superposed import (
    SuperposedUAnd,
    adler_shavit_neurons,
    build_superposed_uand,
    evaluate_superposed,
    best_p_scale,
    worse_than_best,
    minimal_width,
    seed_width,
    seed_widths,
    superposed_p,
    superposed_sign_constant,
)
from .sweep import Table, run_grid, threshold_sweep
from .theory import (
    SignCalibration,
    balanced_p,
    bernoulli_error_moments,
    bernoulli_exceed_probability,
    capacity_scale,
    coherence_scale,
    count_free_design,
    empty_gamma_probability,
    expected_gamma_size,
    heuristic_error_mean,
    heuristic_error_var,
    linear_readout_floor,
    max_readout_error_scale,
    misread_probability,
    paper_min_neurons,
    paper_p,
    readout_error_scale,
    relu_second_moment,
    sign_calibration,
    sign_error_moments,
    sign_readout_constant,
    worst_case_p,
)
from .training import TrainedUAnd, train_uand
from .uand import (
    all_active_readings,
    FittedReadout,
    MeanReadout,
    SignReadout,
    TouchedCounts,
    UAnd,
    UAndErrors,
    build_uand,
    connection_probability,
    evaluate_uand,
    fit_uand_readout,
    group_sizes,
    input_counts,
    minimal_neurons,
    relu_layer,
    sample_counts,
    sample_touched_counts,
    touched_counts,
    touched_errors,
    tuple_rank,
    tuple_unrank,
    uand_outputs,
    worst_case_uand,
)

__all__ = sorted(  # every name imported above (not the submodules, reached as attributes)
    name
    for name, value in dict(globals()).items()
    if not name.startswith("_") and type(value).__name__ != "module"
)
