"""The library's vocabulary: one word per quantity, in every function, flag, JSON key and chapter.

:data:`WORDS` is the glossary (the book's glossary page shows the same table, and the tests
check that the public API, the command line and the chapters use these words and none of
:data:`RETIRED`).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["RETIRED", "WORDS", "Word"]


class Word(NamedTuple):
    """One entry of the glossary."""

    symbol: str
    meaning: str
    flag: str | None


WORDS: dict[str, Word] = {
    "n_features": Word("m", "boolean features; also the values of one circuit layer", "--features"),
    "neurons": Word(
        "d (U-AND), n (circuits)",
        "hidden width of one MLP layer: its number of ReLU neurons",
        "--neurons",
    ),
    "embed_dim": Word(
        "d0, d",
        "dimension of the space the features share in superposition: the input embedding of "
        "a U-AND layer, the residual stream of a circuit",
        "--embed-dim",
    ),
    "sparsity": Word("s", "active features per input", "--sparsity"),
    "n_samples": Word("K", "random inputs drawn for a measurement", "--samples"),
    "arity": Word("n", "inputs of one AND", "--arity"),
    "p": Word("p", "Bernoulli connection probability of a U-AND layer", "--p"),
    "weights": Word("", "first-layer weights: bernoulli, rademacher or gaussian", "--weights"),
    "depth": Word("L", "layers of a circuit", "--depth"),
    "embedding_kind": Word(
        "", "columns of a random embedding: unit gaussian or random sign", "--embedding-kind"
    ),
    "embedding_scheme": Word(
        "",
        "a deep circuit's embeddings: one for every layer (fixed) or a new one per layer (fresh)",
        "--embedding-scheme",
    ),
    "gate_neurons": Word("n", "neurons of one gate layer of a deep circuit", "--gate-neurons"),
    "correction_neurons": Word("", "neurons of one correction layer of a deep circuit", None),
    "gates_per_layer": Word("m", "gates of one layer of a deep circuit", None),
    "pairs_per_neuron": Word("q", "products a targeted U-AND neuron of a gate layer holds", None),
    "neurons_per_product": Word(
        "r", "targeted U-AND neurons of a gate layer that hold one product", None
    ),
    "and_bias": Word("θ", "bias of the U-AND neurons of a gate layer", None),
    "gate_wiring": Word("", "a gate layer's U-AND wiring: targeted or bernoulli", "--gate-wiring"),
    "and_fires": Word("", "products equal to 1 (both inputs of a product active)", None),
    "ones_per_layer": Word("", "ones of one value layer of the exact circuit", None),
    "inputs_kind": Word(
        "",
        "how inputs are drawn: uniform (exactly s active), at_most (each count up to s) or "
        "colliding (ones aimed at meetings); each construction takes the kinds it defines",
        "--inputs-kind",
    ),
    "design": Word("", "a correction layer's design: denoiser, grouped or code", "--design"),
    "blocks": Word("c", "correction units per feature (code length)", "--blocks"),
    "groups_per_class": Word("g", "groups of one class of the grouped design", None),
    "network_kind": Word("", "what an exported network is: uand, superposed, circuit, …", None),
    "target_error": Word("ε", "the error a width search must reach", "--target-error"),
    "max_abs_error": Word(
        "", "worst absolute error of an output over every output and input", None
    ),
    "mean_abs_error": Word("", "mean absolute error over every output of every input", None),
    "interval": Word("", "(low, high) of a bootstrap confidence interval, at `level`", None),
    "seed": Word("", "the only source of randomness of a function", "--seed"),
    "backend": Word("", "the array namespace that computed a result: numpy, cupy, …", None),
}
"""Every word, its symbol in the paper, its meaning and its command-line flag."""

RETIRED: dict[str, str] = {
    "width": "neurons (an MLP layer) or embed_dim (a residual stream); 'minimal width d*' "
    "remains the name of the fewest neurons that pass",
    "n_inputs": "n_samples (inputs drawn) or n_features (a circuit's input values)",
    "kind": "embedding_kind (an embedding) or network_kind (an exported network)",
    "n_neurons": "neurons",
    "ci_low": "interval[0]",
    "ci_high": "interval[1]",
}
"""Names of 0.1 and what replaced them (the command line keeps the old flags one release)."""
