"""What Aer runs: a circuit rewritten for an Aer simulation method, and the cheaper method for a local-mode circuit.

Shared by the ``aer`` engine (``aer_circuit``) and the ibm engine's local testing mode (``simulation_method``).
"""

from __future__ import annotations

from qiskit.circuit import QuantumCircuit

from qsetfit.engines.torch.gates import expand_custom_gates
from qsetfit.errors import QSetFitError


def aer_circuit(circuit: QuantumCircuit, method: str) -> QuantumCircuit:
    """``circuit`` rewritten so that Aer's ``method`` runs it right, with the same expectation values.

    - custom gates named like standard ones run their definitions (Aer dispatches on names);
    - parameterised gates go to the parameter-shift basis, which the gradient sends too: Aer 0.18's
      ``EstimatorV2`` silently drops parameterised ``cp``/``crx``/``cry``/``crz`` bound through a PUB (upstream
      qiskit-aer issues 2323, 2391, 2403), so the forward pass must not send them either;
    - the global phase is dropped (Aer loses the result of a circuit whose global phase has a parameter);
    - gates the method does not know (``ch``, ``iswap``; ``crx`` on density matrices) are decomposed.

    Raises:
        QSetFitError: a gate that neither Aer nor its definition can run.
    """
    from qiskit_aer import AerSimulator

    from qsetfit.engines.aer.gradient import shift_basis

    original, circuit = circuit, shift_basis(expand_custom_gates(circuit))
    known = set(AerSimulator(method=method).configuration().basis_gates) | {"barrier"}
    for _ in range(8):  # each round unrolls one level of definitions
        missing = sorted({inst.operation.name for inst in circuit.data} - known)
        if not missing:
            if circuit.global_phase != 0:  # no expectation value depends on it; Aer fails on a parameterised one
                circuit = circuit.copy() if circuit is original else circuit
                circuit.global_phase = 0.0
            return circuit
        unrolled = circuit.decompose(gates_to_decompose=missing)
        if unrolled == circuit:
            break
        circuit = unrolled
    raise QSetFitError(
        f"Aer ({method}) cannot run the gate(s) {', '.join(missing)}; transpile the circuit first, e.g. "
        "qiskit.transpile(circuit, basis_gates=['ry', 'rz', 'rx', 'cx'], optimization_level=0)"
    )


def simulation_method(num_qubits: int, shots: int, *, noisy: bool) -> str:
    """Aer method for a compact local-mode circuit: the cheaper of a density matrix and noisy trajectories.

    With noise, the statevector method runs one trajectory per shot (cost ~ shots x 2^n per gate) while a
    density matrix is evolved once and sampled (~ 4^n per gate): the density matrix wins while 2^n <= shots.
    A 12-qubit fake_torino head at 4096 shots took ~350-600 s as trajectories and ~240 s as a density matrix
    on one loaded core. Without noise one statevector run is sampled for all shots.
    """
    return "density_matrix" if noisy and 2**num_qubits <= max(shots, 1) else "statevector"
