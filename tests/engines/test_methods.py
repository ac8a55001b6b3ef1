"""qsetfit.engines.aer.methods: circuits rewritten for an Aer method (checked with Statevector and Aer itself)
and the cheaper local-mode method."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.circuit import Gate, Parameter, QuantumCircuit
from qiskit.circuit.library import CHGate, iSwapGate
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit_aer import AerSimulator
from qiskit_aer.primitives import EstimatorV2

from qsetfit.engines.aer.gradient import ParamShiftEstimatorGradient
from qsetfit.engines.aer.methods import aer_circuit, simulation_method
from qsetfit.errors import QSetFitError


def test_simulation_method_is_the_cheaper_one():
    assert simulation_method(12, 4096, noisy=True) == "density_matrix"  # one 4^12 evolution beats 4096 trajectories
    assert simulation_method(13, 4096, noisy=True) == "statevector"
    assert simulation_method(3, 4096, noisy=False) == "statevector"


def _awkward_circuit():
    """Parameterised cp/crx (Aer 0.18 drops them through a PUB), ch/iswap (unknown to Aer), a parameter phase."""
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(2, global_phase=a)
    qc.h(0)
    qc.ry(b, 1)
    qc.cp(a, 0, 1)
    qc.crx(2 * b, 1, 0)
    qc.append(CHGate(), [0, 1])
    qc.append(iSwapGate(), [0, 1])
    return qc, {a: 0.7, b: -1.3}


@pytest.mark.parametrize("method", ["statevector", "density_matrix"])
def test_aer_circuit_keeps_the_expectation_values_and_aer_runs_it(method):
    qc, values = _awkward_circuit()
    out = aer_circuit(qc, method)
    assert {i.operation.name for i in out.data} <= set(AerSimulator(method=method).configuration().basis_gates)
    shiftable = set(ParamShiftEstimatorGradient.SUPPORTED_GATES)
    assert {i.operation.name for i in out.data if i.operation.is_parameterized()} <= shiftable
    assert out.global_phase == 0 and qc.global_phase.parameters  # the input keeps its phase
    obs = [SparsePauliOp(label) for label in ("ZI", "IZ", "XX", "YZ")]
    ref = np.array([Statevector(qc.assign_parameters(values)).expectation_value(o).real for o in obs])
    got = np.array([Statevector(out.assign_parameters(values)).expectation_value(o).real for o in obs])
    np.testing.assert_allclose(got, ref, atol=1e-12)
    estimator = EstimatorV2(options={"backend_options": {"method": method}})
    row = [values[p] for p in out.parameters]
    aer = estimator.run([(out, obs, row)]).result()[0].data.evs
    np.testing.assert_allclose(aer, ref, atol=1e-10)  # Aer itself agrees (precision 0: exact expectation values)


def test_a_gate_without_definition_is_one_clear_error():
    qc = QuantumCircuit(1)
    qc.append(Gate("mystery", 1, []), [0])
    with pytest.raises(QSetFitError, match=r"cannot run the gate\(s\) mystery; transpile the circuit first"):
        aer_circuit(qc, "statevector")
