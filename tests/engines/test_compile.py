"""The torch engine's compiler front end (engines/torch/compile.py): angle rows, ring windows, gate fusion."""

from __future__ import annotations

from itertools import combinations, pairwise

import pytest
from qiskit.circuit import Parameter, QuantumCircuit

from qsetfit import QSetFitError
from qsetfit.engines.torch.compile import ParsedGate, fuse, linear_terms, parse_circuit, ring_span, ring_window

X, W = Parameter("x"), Parameter("w")
INDEX = {X: ("x", 0), W: ("w", 0)}


def test_linear_terms_split_an_affine_angle_into_coefficients_and_a_constant():
    terms, const = linear_terms(2 * X - 0.5 * W + 1.25, INDEX)
    assert terms == {("x", 0): pytest.approx(2.0), ("w", 0): pytest.approx(-0.5)} and const == pytest.approx(1.25)
    assert linear_terms(0.75, INDEX) == ({}, 0.75)  # a plain number is all constant


def test_linear_terms_refuse_non_affine_angles_and_unknown_parameters():
    with pytest.raises(QSetFitError, match="not affine in x"):
        linear_terms(X * X + W, INDEX)
    with pytest.raises(QSetFitError, match="neither an input nor a weight"):
        linear_terms(X + Parameter("stray"), INDEX)


def test_parse_circuit_numbers_every_angle_slot_in_order_and_marks_input_gates():
    qc = QuantumCircuit(3)
    qc.ry(X, 0)
    qc.cx(0, 1)
    qc.barrier()  # ignored: no gate
    qc.u(W, 0.3, X + W, 2)
    gates, rows = parse_circuit(qc, INDEX)
    assert [(g.name, g.qubits, g.slots, g.input_dependent) for g in gates] == [
        ("ry", (0,), [0], True), ("cx", (0, 1), [], False), ("u", (2,), [1, 2, 3], True)]
    assert rows[1] == ({("w", 0): 1.0}, 0.0) and rows[2] == ({}, pytest.approx(0.3))
    assert rows[3][0] == {("x", 0): 1.0, ("w", 0): 1.0}


def test_parse_circuit_refuses_measurements():
    qc = QuantumCircuit(1, 1)
    qc.measure(0, 0)
    with pytest.raises(QSetFitError, match="measure"):
        parse_circuit(qc, INDEX)


def _span_by_brute_force(qubits: set[int], n: int) -> int:
    """Smallest k such that some window {s, s+1, ..., s+k-1} (mod n) holds ``qubits``."""
    return min(k for k in range(1, n + 1) for s in range(n) if qubits <= {(s + j) % n for j in range(k)})


@pytest.mark.parametrize("n", [1, 2, 5, 7])
def test_ring_span_and_window_equal_a_brute_force_search_on_every_subset(n):
    for size in range(1, n + 1):
        for subset in combinations(range(n), size):
            qubits = set(subset)
            window = ring_window(qubits, n)
            assert ring_span(qubits, n) == len(window) == _span_by_brute_force(qubits, n), subset
            assert qubits <= set(window) and len(set(window)) == len(window)
            assert all((b - a) % n == 1 for a, b in pairwise(window))  # consecutive around the ring


def _gate(*qubits: int, dep: bool = False) -> ParsedGate:
    return ParsedGate("cx" if len(qubits) == 2 else "ry", tuple(qubits), [], dep)


def test_fuse_groups_gates_into_windows_and_never_moves_a_gate_past_one_on_its_qubits():
    gates = [_gate(0, 1), _gate(2, 3, dep=True), _gate(0), _gate(1, 2), _gate(3)]
    blocks = fuse(gates, num_qubits=4, max_width=2)
    # by hand: (0) joins (0, 1); (1, 2) fits no width-2 block; (3) joins (2, 3), moving past (1, 2) (disjoint)
    assert [(b.qubits, b.gates, b.input_dependent) for b in blocks] == [
        ([0, 1], [0, 2], False), ([2, 3], [1, 4], True), ([1, 2], [3], False)]
    position = {g: i for i, b in enumerate(blocks) for g in b.gates}
    for i, j in combinations(range(len(gates)), 2):  # gates sharing a qubit keep their order
        if set(gates[i].qubits) & set(gates[j].qubits):
            assert position[i] <= position[j]
    assert [b.gates for b in fuse(gates, num_qubits=4, max_width=4)] == [[0, 1, 2, 3, 4]]


def test_fuse_wraps_around_the_ring_and_pads_blocks_to_their_window():
    blocks = fuse([_gate(3, 0), _gate(0), _gate(2)], num_qubits=4, max_width=3)
    assert blocks[0].qubits == [2, 3, 0] and blocks[0].gates == [0, 1, 2]  # the window 2, 3, 0 wraps
    padded = fuse([_gate(0), _gate(2)], num_qubits=4, max_width=3)
    assert [b.qubits for b in padded] == [[0, 1, 2]]  # qubit 1 is padded with the identity
