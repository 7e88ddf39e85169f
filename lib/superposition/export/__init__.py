r"""Ground-truth networks on disk: safetensors weights plus a JSON sidecar that says what they compute.

:func:`export_network` writes any supported network as two files,

``NAME.safetensors``
    Every weight as a named tensor (safetensors: a JSON header and raw little-endian
    buffers; loading it never executes code, unlike pickle).
``NAME.json``
    The ground truth: the kind of network, its sizes and seed, how it was built, the forward
    pass as a formula, the feature embedding :math:`\Phi` (or ``identity`` for basis-aligned
    inputs), the readout of every named output (a tensor, or for very many outputs the rule
    that computes each row from the weights), the circuit it emulates, the list of tensors
    with their shapes and dtypes, and the SHA-256 of the weights file.

:func:`load_network` reads both back as plain NumPy arrays; it checks the format, the checksum
and every tensor against the sidecar, and raises a ``ValueError`` that names the file and the
problem when anything is off. It returns the loaded network of the file's kind, whose forward
pass is the construction's own step on the stored arrays; :func:`to_torch` rebuilds it as
``torch.nn`` layers when PyTorch is installed (it is optional and imported only there).

The package has one module for the format and one adapter per network kind; each adapter says
how its kind is written and gives the class it loads as:

``core``
    The two files, the checks, :data:`NETWORK_KINDS` and :class:`LoadedNetwork` (what every
    loaded network has: ``network_kind``, ``tensors``, ``meta``, ``sizes``, ``forward``).
``uand``: kinds ``"uand"``, ``"trained_uand"`` → :class:`LoadedUAnd`
    :class:`~superposition.UAnd` (Bernoulli, Rademacher, Gaussian) with its analytic readout,
    :class:`~superposition.TrainedUAnd` with its learned one.
``superposed``: kind ``"superposed"`` → :class:`LoadedSuperposed`
    :class:`~superposition.superposed.SuperposedUAnd` (a U-AND layer reading :math:`\Phi x`),
    with :class:`WithOutputEmbedding` also the embedding :math:`\Psi` of its outputs.
``circuit``: kind ``"circuit"`` → :class:`LoadedCircuit`
    :class:`~superposition.CompiledCircuit`: every layer's ``W_in, b, W_out, W_skip``, every
    embedding :math:`\Phi_\ell`, and the circuit's wiring and gate truth tables.
``deep``: kind ``"deep"`` → :class:`LoadedDeep`
    :class:`~superposition.deep.DeepNetwork`: gate layers (their sparse factors) alternating
    with correction layers, the embeddings or the code, the circuit, and small networks' plain
    layers. The forward pass is :func:`~superposition.deep.run_deep`'s step, bit for bit.
``embeddings``
    Random embeddings (:math:`\Phi`, :math:`\Psi`) as tensors or as the rule that draws them,
    for the superposed and deep kinds.

Further kinds register with :func:`register_network_kind`.
"""

# the adapters register their kinds as they are imported, in this order (not sorted)
from .core import (  # noqa: I001
    FORMAT,
    FORMAT_VERSION,
    NAMED_OUTPUTS,
    NETWORK_KINDS,
    READOUT_MODES,
    TORCH_INSTALL,
    LoadedNetwork,
    NetworkKind,
    as_loaded,
    export_network,
    load_network,
    network_arrays,
    network_kind_of,
    register_network_kind,
    sidecar_path,
    to_torch,
)
from .embeddings import EXPLICIT_EMBEDDING_ENTRIES, StoredEmbedding
from .uand import EXPLICIT_READOUT_ENTRIES, LoadedUAnd
from .superposed import LoadedSuperposed, WithOutputEmbedding
from .circuit import LoadedCircuit
from .deep import PLAIN_LAYER_ENTRIES, LoadedDeep

__all__ = [
    "EXPLICIT_EMBEDDING_ENTRIES",
    "EXPLICIT_READOUT_ENTRIES",
    "FORMAT",
    "FORMAT_VERSION",
    "NAMED_OUTPUTS",
    "NETWORK_KINDS",
    "PLAIN_LAYER_ENTRIES",
    "READOUT_MODES",
    "TORCH_INSTALL",
    "LoadedCircuit",
    "LoadedDeep",
    "LoadedNetwork",
    "LoadedSuperposed",
    "LoadedUAnd",
    "NetworkKind",
    "StoredEmbedding",
    "WithOutputEmbedding",
    "as_loaded",
    "export_network",
    "load_network",
    "network_arrays",
    "network_kind_of",
    "register_network_kind",
    "sidecar_path",
    "to_torch",
]
