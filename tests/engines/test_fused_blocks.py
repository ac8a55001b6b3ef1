"""Fused gate blocks with Pauli errors (engines/torch/fused_blocks.py): light cones, supports, error operators."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit.circuit import ParameterVector, QuantumCircuit

from qsetfit import QSetFitError
from qsetfit.engines.torch.density import GateProgram
from qsetfit.engines.torch.fused_blocks import block_prefixes, error_operators, fused_plan, table_support

X_, Z_ = np.array([[0, 1], [1, 0]]), np.diag([1, -1])


def _two_qubit_block():
    """ry(w0) on 0, ry(w1) on 1, cx(0, 1), ry(x0) on 1: one block of width 2."""
    x, w = ParameterVector("x", 1), ParameterVector("w", 2)
    qc = QuantumCircuit(2)
    qc.ry(w[0], 0)
    qc.ry(w[1], 1)
    qc.cx(0, 1)
    qc.ry(x[0], 1)
    program = GateProgram(qc, list(x), list(w))
    plan = fused_plan(qc, list(x), list(w), len(program.gates), fusion_qubits=2)
    mats = program.matrices(torch.tensor([[0.3], [-1.1]], dtype=torch.float64),
                            torch.tensor([0.7, -0.4], dtype=torch.float64))
    return program, plan, mats


def test_table_support_is_the_qubits_a_table_depends_on():
    n = 3
    bits = np.array([[(a >> q) & 1 for q in range(n)] for a in range(2**n)])  # Qiskit order: bit q of index a
    table = torch.tensor(np.stack([bits[:, 0] * 2.0 - bits[:, 2], np.ones(2**n)], axis=1))
    assert table_support(table, n) == {0, 2}
    assert table_support(torch.ones(2**n, 1), n) == set()


def test_fused_plan_leaves_out_the_gates_outside_the_backward_light_cone():
    w = ParameterVector("w", 3)
    qc = QuantumCircuit(3)
    qc.ry(w[0], 2)
    qc.cx(2, 1)
    qc.ry(w[1], 0)  # qubit 0 never reaches qubit 1 afterwards: outside the light cone of <Z_1>
    qc.ry(w[2], 1)
    plan = fused_plan(qc, [], list(w), 4, fusion_qubits=2, support={1})
    assert [int(b) >= 0 for b in plan.block_of[:4]] == [True, True, False, True]
    everything = fused_plan(qc, [], list(w), 4, fusion_qubits=2)
    assert (everything.block_of[:4] >= 0).all()
    with pytest.raises(QSetFitError, match="has 4 gates, its program 5"):
        fused_plan(qc, [], list(w), 5)


def test_the_plan_records_each_gate_s_block_position_and_local_bits():
    _, plan, _ = _two_qubit_block()
    assert plan.gates == ((0, 1, 2, 3),) and plan.qubits[0] in ((0, 1), (1, 0))
    big_endian = {q: len(plan.qubits[0]) - 1 - plan.qubits[0].index(q) for q in (0, 1)}
    assert list(plan.local[:4]) == [0, 1, 2, 3]
    assert plan.bits[2].tolist() == [big_endian[0], big_endian[1]]  # cx: control, then target
    assert plan.bits[0].tolist() == [big_endian[0], -1] and plan.bits[3].tolist() == [big_endian[1], -1]


@pytest.mark.parametrize("gate, code, pauli_on", [(3, 1, "X"), (3, 3, "Z"), (2, 1 | (3 << 2), "XZ"),
                                                  (0, 3, "Z")])
def test_an_error_operator_inserts_the_pauli_after_its_gate(gate, code, pauli_on):
    """E_j X = Pre_j P^T Rest_j: the block's matrix with the Pauli right after gate j (row convention)."""
    program, plan, mats = _two_qubit_block()
    prefix = block_prefixes(program, plan, mats, {0: {int(plan.local[gate])}})[0]
    ops = error_operators(plan, prefix, np.array([gate, gate]), np.array([0, 1]), np.array([code, code]))
    qubits = program.gates[gate].qubits
    on_bit = {int(plan.bits[gate, t]): letter for t, letter in enumerate(pauli_on)}  # local bit -> X or Z
    one = {"X": X_, "Z": Z_, None: np.eye(2)}
    p = torch.tensor(np.kron(one[on_bit.get(1)], one[on_bit.get(0)]), dtype=torch.float64)  # bit 1: high
    assert len(on_bit) == len(pauli_on) and len(qubits) >= len(pauli_on)
    full = prefix[0]  # (B, 4, 4): the inputs differ in ry(x0)
    for b in range(2):
        pre = prefix[1][int(plan.local[gate])]
        pre_b = pre[b] if pre.shape[0] > 1 else pre[0]
        rest = pre_b.T @ full[b]  # Pre^-1 = Pre^H: real orthogonal here
        assert torch.allclose(ops[b] @ full[b], pre_b @ p.T @ rest, atol=1e-12)
        assert torch.allclose(ops[b] @ ops[b].T, torch.eye(4, dtype=torch.float64), atol=1e-12)  # unitary
        assert abs(torch.trace(ops[b]).item()) < 1e-12  # a Pauli's trace, 0, survives conjugation
