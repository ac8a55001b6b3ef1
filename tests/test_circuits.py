"""Circuit builders: structure and parameter order (HeadConfig's presets, counts and errors: test_config)."""

from __future__ import annotations

import pytest
from qiskit.quantum_info import SparsePauliOp

from qsetfit import HeadConfig, build_encoder_circuit, build_head_circuit
from qsetfit.head.circuits import ansatz_layer_size


@pytest.mark.parametrize("q,c,n,r,shared", [(4, 1, 2, 1, False), (6, 3, 3, 2, False), (5, 2, 3, 1, True), (1, 0, 1, 1, False)])
def test_head_circuit_structure(q, c, n, r, shared):
    cfg = HeadConfig(qubits=q, connectivity=c, reuploads=n, layers=r, measured=1, encoders=0,
                     share_reupload_weights=shared)
    hc = build_head_circuit(cfg)
    ops = hc.circuit.count_ops()
    assert ops.get("cx", 0) == (n + r) * q * c
    assert ops["ry"] == n * q + (n + r) * (q * c + q)  # encodings + ansatz angles
    blocks = 1 if shared else n
    assert len(hc.weights) == (blocks + r) * ansatz_layer_size(q, c) == cfg.parameter_counts()["module2"]
    assert len(hc.inputs) == q
    assert set(hc.circuit.parameters) == set(hc.inputs) | set(hc.weights)
    assert hc.observables == [SparsePauliOp("I" * (q - 1) + "Z")]


def test_ansatz_layer_follows_design():
    """For c in 1..C, every j: CNOT(j -> (j+c) mod Q), RY on the target; then an RY column."""
    cfg = HeadConfig(qubits=4, connectivity=2, reuploads=0, layers=1, measured=4, encoders=0)
    hc = build_head_circuit(cfg)
    seq = [(i.operation.name, tuple(hc.circuit.find_bit(q).index for q in i.qubits)) for i in hc.circuit.data]
    expected = []
    for c in (1, 2):
        for j in range(4):
            expected += [("cx", (j, (j + c) % 4)), ("ry", ((j + c) % 4,))]
    expected += [("ry", (j,)) for j in range(4)]
    assert seq == expected
    assert [str(o.paulis[0]) for o in hc.observables] == ["IIIZ", "IIZI", "IZII", "ZIII"]


def test_encoder_circuit_has_no_inputs():
    hc = build_encoder_circuit(5, 3, 2)
    assert hc.inputs == [] and len(hc.weights) == 3 * ansatz_layer_size(5, 2)
    assert len(hc.observables) == 5
