"""Dry-run costs of the ibm engine (engines/ibm/cost.py) against a hand-built device: closed forms."""

from __future__ import annotations

import math

import pytest
from qiskit.circuit import Measure, Parameter, QuantumCircuit
from qiskit.circuit.library import CXGate, RYGate
from qiskit.providers import BackendV2, Options
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import InstructionProperties, Target

from qsetfit import HeadCircuit, QSetFitError
from qsetfit.engines.ibm.cost import dry_run_report, format_dry_run, target_property, two_qubit_count
from qsetfit.profiles import load_backend_profile

RY_S, RY_ERR, CX_S, CX_ERR, MEAS_S, MEAS_ERR, REP_DELAY = 50e-9, 1e-3, 300e-9, 2e-2, 1e-6, 3e-2, 200e-6


def _target() -> Target:
    """Two qubits: ry on both, cx on (0, 1), measure on both, with known errors and durations."""
    target = Target(num_qubits=2)
    target.add_instruction(RYGate(Parameter("theta")), {(q,): InstructionProperties(RY_S, RY_ERR) for q in (0, 1)})
    target.add_instruction(CXGate(), {(0, 1): InstructionProperties(CX_S, CX_ERR)})
    target.add_instruction(Measure(), {(q,): InstructionProperties(MEAS_S, MEAS_ERR) for q in (0, 1)})
    return target


class _Device(BackendV2):
    """A backend that only describes itself: a dry run must never call ``run``."""

    default_rep_delay = REP_DELAY

    def __init__(self) -> None:
        super().__init__(name="ibm_hand")
        self._target = _target()

    @property
    def target(self) -> Target:
        return self._target

    @property
    def max_circuits(self) -> None:
        return None

    @classmethod
    def _default_options(cls) -> Options:
        return Options()

    def run(self, *args, **kwargs):
        raise AssertionError("a dry run submits nothing")


class _Service:
    def backend(self, name):
        assert name == "ibm_hand"
        return _Device()


def _head() -> HeadCircuit:
    """ry(x) on qubit 0, cx, ry(w) on qubit 1; <Z> of qubit 1 only (qubit 0 is not read out)."""
    x, w = Parameter("x"), Parameter("w")
    qc = QuantumCircuit(2)
    qc.ry(x, 0)
    qc.cx(0, 1)
    qc.ry(w, 1)
    return HeadCircuit(qc, [x], [w], [SparsePauliOp("ZI")])


def test_two_qubit_count_leaves_out_barriers_and_one_qubit_gates():
    qc = QuantumCircuit(3)
    qc.h(0)
    qc.cx(0, 1)
    qc.barrier(0, 1)
    qc.cz(1, 2)
    qc.barrier()
    assert two_qubit_count(qc) == 2


def test_target_property_reads_the_target_and_is_zero_where_unknown():
    target = _target()
    assert target_property(target, "cx", (0, 1), "error") == CX_ERR
    assert target_property(target, "ry", (1,), "duration") == RY_S
    assert target_property(target, "cx", (1, 0), "error") == 0.0  # no such direction
    assert target_property(target, "rz", (0,), "duration") == 0.0  # no such gate


@pytest.mark.parametrize("n_inputs, max_pub_rows", [(1, 1000), (25, 10)])
def test_dry_run_report_equals_the_closed_form_of_a_hand_built_device(n_inputs, max_pub_rows):
    profile = load_backend_profile("ibm-torino").replace(backend="ibm_hand", shots=1000, optimization_level=0,
                                                         max_pub_rows=max_pub_rows)
    report = dry_run_report(_head(), profile, n_inputs=n_inputs, service=_Service())
    assert report["physical_qubits"] == [0, 1] and report["two_qubit_gates"] == 1 and report["isa_depth"] == 3
    # every gate once, and the read-out of the one measured qubit (qubit 1)
    assert report["success_probability"] == pytest.approx((1 - RY_ERR) ** 2 * (1 - CX_ERR) * (1 - MEAS_ERR))
    # ASAP: ry on 0, then cx, then ry on 1, then the read-out
    duration = RY_S + CX_S + RY_S + MEAS_S
    assert report["circuit_duration_s"] == pytest.approx(duration)
    assert report["total_shots"] == 1000 * n_inputs and report["pubs"] == math.ceil(n_inputs / max_pub_rows)
    assert report["qpu_seconds"] == pytest.approx(1000 * n_inputs * (duration + REP_DELAY))
    assert not report["local_testing"] and report["rep_delay_s"] == REP_DELAY


def test_format_dry_run_says_the_numbers_in_the_units_it_names():
    profile = load_backend_profile("ibm-torino").replace(backend="ibm_hand", shots=1000, optimization_level=0)
    text = format_dry_run(dry_run_report(_head(), profile, n_inputs=3, service=_Service()))
    assert "nothing submitted" in text and "head qubits 2 -> physical qubits [0, 1]" in text
    assert f"circuit duration {(2 * RY_S + CX_S + MEAS_S) * 1e6:.1f} us" in text  # 1.4 us
    assert "3 input(s) x 1000 shots = 3000 shots in 1 PUB(s)" in text


def test_a_profile_of_another_engine_is_refused():
    with pytest.raises(QSetFitError, match="needs an ibm backend profile"):
        dry_run_report(_head(), load_backend_profile("aer-exact"))
