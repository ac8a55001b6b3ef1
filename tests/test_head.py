"""The hybrid head, the quantum layer and the encoders: shapes, counts, gradients, engine switching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit.quantum_info import Statevector

from qsetfit.head.circuits import PAPER_MODULE1  # the paper's module 1 (no PCA, no bias): these tests check it
from qsetfit import HeadConfig, HybridHead, QSetFitError, QuantumLayer, build_head_circuit
from qsetfit.head.encoder import AmplitudeEncoders, amplitude_states
from qsetfit.engines.registry import available_engines, make_engine
from tests.conftest import statevector_expectations
from tests.helpers import seeded


@pytest.mark.parametrize("preset", ["paper-10q-single", "paper-14q-multi", "tiny"])
def test_head_shapes_counts_and_gradients(preset):
    cfg = HeadConfig.preset(preset)
    head = HybridHead(cfg)
    assert sum(p.numel() for p in head.parameters()) == cfg.num_parameters
    emb = torch.randn(6, 384, generator=seeded())
    logits, loss = head(emb, torch.tensor([0, 1, 0, 1, 1, 0]))
    assert logits.shape == (6, 2) and loss.ndim == 0
    loss.backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_multiclass_and_measured_qubits():
    cfg = HeadConfig(qubits=6, encoders=2, encoder_qubits=3, measured=3, classes=5, connectivity=1, **PAPER_MODULE1)
    head = HybridHead(cfg)
    logits, loss = head(torch.randn(4, 16, generator=seeded()))
    assert logits.shape == (4, 5) and loss is None
    assert head.linear.in_features == 6 + 3


def test_same_seed_same_weights():
    a, b = HybridHead(HeadConfig.preset("tiny"), seed=3), HybridHead(HeadConfig.preset("tiny"), seed=3)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_quantum_layer_contract():
    hc = build_head_circuit(HeadConfig(qubits=4, measured=2, encoders=0, connectivity=1))
    layer = QuantumLayer(hc, engine="torch")
    assert layer.weight.shape == (len(hc.weights),)
    x = torch.rand(3, 4, dtype=torch.float64, generator=seeded())
    out = layer(x)
    assert out.shape == (3, 2)
    ref = statevector_expectations(hc.circuit, hc.inputs + hc.weights,
                                   list(x[1].numpy()) + list(layer.weight.detach().numpy()), hc.observables)
    assert np.abs(out[1].detach().numpy() - ref).max() <= 1e-10
    layer.set_engine("torch-float32")
    assert (layer(x).double() - out).abs().max() <= 1e-5


def test_unknown_engine_lists_the_valid_ones():
    hc = build_head_circuit(HeadConfig(qubits=2, encoders=0, connectivity=1))
    with pytest.raises(QSetFitError, match="unknown engine or backend 'torchh'.*torch"):
        make_engine(hc, "torchh")
    assert "torch" in available_engines()


def test_amplitude_states_split_pad_and_normalise():
    cfg = HeadConfig(qubits=6, encoders=2, encoder_qubits=3, connectivity=1, **PAPER_MODULE1)
    emb = torch.arange(1, 13, dtype=torch.float64)[None]  # 12 entries: encoder 1 reads 8..11 + 4 zeros
    states = amplitude_states(emb, cfg)
    assert states.shape == (2, 1, 8)
    assert torch.allclose(states.norm(dim=-1), torch.ones(2, 1, dtype=torch.float64))
    assert torch.allclose(states[1, 0, 4:], torch.zeros(4, dtype=torch.float64))
    assert torch.allclose(states[0, 0], emb[0, :8] / emb[0, :8].norm())
    shared = amplitude_states(emb, HeadConfig(qubits=6, encoders=2, encoder_qubits=3, connectivity=1, **PAPER_MODULE1,
                                              encoder_input="shared"))
    assert torch.equal(shared[0], shared[1])
    with pytest.raises(QSetFitError, match="encoder_input='shared'"):
        amplitude_states(torch.randn(1, 8, generator=seeded()), cfg)


def test_encoder_readouts_match_statevector():
    cfg = HeadConfig(qubits=4, encoders=1, encoder_qubits=4, encoder_layers=2, encoder_connectivity=2, **PAPER_MODULE1)
    enc = AmplitudeEncoders(cfg)
    emb = torch.randn(3, 20, dtype=torch.float64, generator=seeded())
    feats = enc(emb)
    layer = enc.layers[0]
    hc = layer.head_circuit
    amps = emb[:, :16] / emb[:, :16].norm(dim=1, keepdim=True)
    for b in range(3):
        ref = statevector_expectations(hc.circuit, hc.weights, list(layer.weight.detach().numpy()),
                                       hc.observables, initial=Statevector(amps[b].numpy()))
        assert np.abs(feats[b].detach().numpy() - ref).max() <= 1e-10


def test_head_rejects_bad_embeddings():
    head = HybridHead(HeadConfig.preset("tiny"))
    with pytest.raises(QSetFitError, match="NaN"):
        head(torch.full((2, 16), float("nan")))
    with pytest.raises(QSetFitError, match=r"shape \(batch, dim\)"):
        head(torch.randn(16, generator=seeded()))


def test_switching_engines_closes_the_old_one():
    from qsetfit.engines import registry

    closed = []

    def closable(head_circuit, **options):
        engine = make_engine(head_circuit, "torch")
        engine.close = lambda: closed.append(engine)  # stands in for an IBM Batch/Session
        return engine

    registry.register_engine("closable-test", closable)
    try:
        layer = QuantumLayer(build_head_circuit(HeadConfig.preset("tiny", encoders=0)), engine="closable-test")
        first = layer.engine
        layer.set_engine("closable-test")
        assert closed == [first]
        layer.set_engine("torch")
        assert len(closed) == 2 and closed[1] is not first
    finally:
        registry._FACTORIES.pop("closable-test", None)
