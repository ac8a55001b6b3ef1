"""The paper's circuits as Qiskit ``QuantumCircuit``s: the single definition every engine executes.

Module 2 (the quantum head) and module 1 (the amplitude-encoded encoders) share one ansatz family
(DESIGN §1): a layer with connectivity C applies, for c in 1..C and every qubit j, CNOT(j -> (j+c) mod Q)
followed by RY(theta) on the target, then one column of RY(theta) on all qubits: Q*C + Q angles a layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence

from qiskit.circuit import Parameter, ParameterVector, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qsetfit.head.config import (
    MAX_ENCODER_QUBITS,
    MODULE1_KINDS,
    PAPER_MODULE1,
    PRESETS,
    REDUCTIONS,
    HeadConfig,
    ansatz_layer_size,
)

# The configuration's names stay importable from here, where they were before ``head/config.py``.
__all__ = [
    "MAX_ENCODER_QUBITS",
    "MODULE1_KINDS",
    "PAPER_MODULE1",
    "PRESETS",
    "REDUCTIONS",
    "HeadCircuit",
    "HeadConfig",
    "ansatz_layer_size",
    "append_ansatz_layer",
    "build_encoder_circuit",
    "build_head_circuit",
    "z_observables",
]


def append_ansatz_layer(circuit: QuantumCircuit, weights: Sequence[Parameter], connectivity: int) -> None:
    """Append one CNOT+RY layer (DESIGN §1) using ``len(weights) == ansatz_layer_size`` angles, in order."""
    q = circuit.num_qubits
    it = iter(weights)
    for c in range(1, connectivity + 1):
        for j in range(q):
            target = (j + c) % q
            circuit.cx(j, target)
            circuit.ry(next(it), target)
    for j in range(q):
        circuit.ry(next(it), j)


def z_observables(num_qubits: int, measured: Sequence[int]) -> list[SparsePauliOp]:
    """``<Z_k>`` on each listed qubit (Qiskit order: qubit 0 is the rightmost label character)."""
    return [SparsePauliOp.from_sparse_list([("Z", [k], 1.0)], num_qubits=num_qubits) for k in measured]


@dataclass
class HeadCircuit:
    """A parameterised circuit plus the parameter order every engine uses.

    Attributes:
        circuit: the ``QuantumCircuit``.
        inputs: input parameters, in the column order of the engines' input tensor (B, len(inputs)).
        weights: trainable parameters, in the order of an engine's weight vector.
        observables: one ``SparsePauliOp`` per output column.
    """

    circuit: QuantumCircuit
    inputs: list[Parameter]
    weights: list[Parameter]
    observables: list[SparsePauliOp]

    @property
    def num_qubits(self) -> int:
        return self.circuit.num_qubits


def build_head_circuit(config: HeadConfig) -> HeadCircuit:
    """Module 2: N blocks of [RY(scale * x_k) on every qubit k, one ansatz layer], then R layers.

    Read out ``<Z>`` on qubits 0..Qm-1. With ``share_reupload_weights`` every block reuses one layer's
    weights, so the weight vector holds (1 + R) layers instead of (N + R).
    """
    q, c = config.qubits, config.connectivity
    assert c is not None  # set by HeadConfig.__post_init__
    size = ansatz_layer_size(q, c)
    x = ParameterVector("x", q)
    n_blocks = min(config.reuploads, 1) if config.share_reupload_weights else config.reuploads
    w = ParameterVector("w", (n_blocks + config.layers) * size)
    qc = QuantumCircuit(q, name="qsetfit_head")
    for block in range(config.reuploads):
        for k in range(q):
            qc.ry(config.input_scale * x[k], k)
        offset = 0 if config.share_reupload_weights else block * size
        append_ansatz_layer(qc, w[offset : offset + size], c)
    for layer in range(config.layers):
        offset = (n_blocks + layer) * size
        append_ansatz_layer(qc, w[offset : offset + size], c)
    return HeadCircuit(qc, list(x), list(w), z_observables(q, range(config.measured)))


def build_encoder_circuit(qubits: int, layers: int, connectivity: int, *, name: str = "enc") -> HeadCircuit:
    """Module 1 encoder: ``layers`` ansatz layers on an amplitude-encoded state; ``<Z_k>`` on every qubit.

    There are no input parameters: the input is the initial state (2**qubits amplitudes).
    """
    w = ParameterVector(f"{name}_w", layers * ansatz_layer_size(qubits, connectivity))
    qc = QuantumCircuit(qubits, name=name)
    size = ansatz_layer_size(qubits, connectivity)
    for layer in range(layers):
        append_ansatz_layer(qc, w[layer * size : (layer + 1) * size], connectivity)
    return HeadCircuit(qc, [], list(w), z_observables(qubits, range(qubits)))
