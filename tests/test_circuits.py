"""Circuit builders: structure, parameter counts, presets and configuration errors."""

from __future__ import annotations

import pytest
from qiskit.quantum_info import SparsePauliOp

from qsetfit import HeadConfig, QSetFitError, build_encoder_circuit, build_head_circuit
from qsetfit.head.circuits import PRESETS, ansatz_layer_size


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


def test_presets_and_the_paper_parameter_count():
    assert HeadConfig.preset("paper-14q-multi").num_parameters == 886
    single = HeadConfig.preset("paper-10q-single")
    assert single.encoders == 1 and single.encoder_qubits == 10 and single.qubits == 10
    assert set(PRESETS) >= {"paper-10q-single", "paper-14q-multi"}
    assert HeadConfig.preset("paper-10q-single", classes=5).classes == 5
    with pytest.raises(QSetFitError, match="unknown preset 'paper'.*paper-14q-multi"):
        HeadConfig.preset("paper")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(qubits=0, encoders=0), "qubits must be >= 1"),
        (dict(qubits=4, connectivity=4, encoders=0), "connectivity must be in"),
        (dict(qubits=4, measured=5, encoders=0), "measured must be in"),
        (dict(qubits=21, encoders=1, encoder_qubits=21), "encoder_qubits must be in"),
        (dict(classes=1), "classes must be >= 2"),
        (dict(qubits=12, encoders=2, encoder_qubits=5), "qubits .12. must equal encoders x encoder_qubits"),
        (dict(encoder_input="both"), "encoder_input"),
    ],
)
def test_bad_configurations_are_rejected(kwargs, match):
    with pytest.raises(QSetFitError, match=match):
        HeadConfig(**kwargs)


def test_from_dict_round_trip_and_unknown_keys():
    cfg = HeadConfig.preset("paper-14q-multi")
    assert HeadConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(QSetFitError, match="unknown HeadConfig key.*qbits.*valid keys"):
        HeadConfig.from_dict({"qbits": 3})
