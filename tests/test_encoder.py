"""Amplitude encoders: each reads its own slice as a Statevector would, differentiably, invariant to scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit.quantum_info import Statevector

from qsetfit import AmplitudeEncoders, HeadConfig, QSetFitError
from qsetfit.head.circuits import PAPER_MODULE1
from qsetfit.head.encoder import amplitude_states
from tests.conftest import statevector_expectations
from tests.helpers import seeded

TWO = HeadConfig(qubits=6, encoders=2, encoder_qubits=3, encoder_layers=2, connectivity=1, **PAPER_MODULE1)


def _features_by_statevector(enc: AmplitudeEncoders, states: torch.Tensor) -> np.ndarray:
    """(B, E*Qc) read-outs: each encoder's circuit run by Statevector from its own amplitude state."""
    cols = []
    for i, layer in enumerate(enc.layers):
        hc, w = layer.head_circuit, list(layer.weight.detach().numpy())
        cols.append(np.stack([statevector_expectations(hc.circuit, hc.weights, w, hc.observables,
                                                       initial=Statevector(s.numpy())) for s in states[i]]))
    return np.concatenate(cols, axis=1)


@pytest.mark.parametrize("encoder_input", ["split", "shared"])
def test_each_encoder_reads_its_slice_like_statevector(encoder_input):
    cfg = HeadConfig(**{**TWO.to_dict(), "encoder_input": encoder_input})
    enc = AmplitudeEncoders(cfg, generator=seeded(1))
    emb = torch.randn(3, 13, dtype=torch.float64, generator=seeded(2))  # split: encoder 1 reads 8..12 + 3 zeros
    feats = enc(emb)
    assert feats.shape == (3, cfg.encoders * cfg.encoder_qubits) and feats.abs().max() <= 1
    states = amplitude_states(emb, cfg)
    assert np.abs(feats.detach().numpy() - _features_by_statevector(enc, states)).max() <= 1e-12
    second = emb[:, 8:16] if encoder_input == "split" else emb[:, :8]
    second = torch.cat([second, second.new_zeros(3, 8 - second.shape[1])], dim=1)
    assert torch.allclose(states[1], second / second.norm(dim=1, keepdim=True), atol=1e-15)


def test_encoders_have_their_own_seeded_weights():
    a, b = AmplitudeEncoders(TWO, generator=seeded(5)), AmplitudeEncoders(TWO, generator=seeded(5))
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    w0, w1 = (layer.weight for layer in a.layers)
    assert not torch.equal(w0, w1)
    emb = torch.randn(2, 8, dtype=torch.float64, generator=seeded(6))
    shared = AmplitudeEncoders(HeadConfig(**{**TWO.to_dict(), "encoder_input": "shared"}), generator=seeded(5))
    f = shared(emb)
    assert not torch.allclose(f[:, :3], f[:, 3:])  # the same state, different weights


def test_features_are_invariant_to_the_embeddings_scale_without_bias():
    enc = AmplitudeEncoders(TWO, generator=seeded(3))
    emb = torch.randn(4, 16, dtype=torch.float64, generator=seeded(4))
    assert torch.allclose(enc(emb), enc(7.5 * emb), atol=1e-12)
    assert torch.allclose(enc(emb.float()), enc(emb), atol=1e-6)  # float32 embeddings are read as float64


def test_with_a_bias_the_slice_is_normalised_before_the_bias_joins():
    cfg = HeadConfig(**{**TWO.to_dict(), "amplitude_bias": 0.5})
    states = amplitude_states(torch.ones(1, 14, dtype=torch.float64), cfg)
    scaled = amplitude_states(torch.full((1, 14), 3.0, dtype=torch.float64), cfg)
    assert torch.allclose(states, scaled)  # so the scale of the embedding still does not matter
    assert torch.allclose(states[:, 0, -1], torch.full((2,), 0.5 / np.sqrt(1.25), dtype=torch.float64))


def test_an_all_zero_slice_reads_zero():
    """A zero slice stays the zero vector (not NaN): every <Z> of it is 0 and its gradient is finite."""
    enc = AmplitudeEncoders(TWO, generator=seeded(7))
    emb = torch.zeros(2, 16, dtype=torch.float64)
    emb[:, :8] = torch.randn(2, 8, dtype=torch.float64, generator=seeded(8))
    emb.requires_grad_(True)
    feats = enc(emb)
    assert torch.equal(feats[:, 3:], torch.zeros(2, 3, dtype=torch.float64))
    assert (feats[:, :3].abs() > 0).all()
    feats.sum().backward()
    assert torch.isfinite(emb.grad).all()


def test_gradients_reach_every_encoder_weight_and_the_embeddings():
    enc = AmplitudeEncoders(TWO, generator=seeded(9))
    emb = torch.randn(2, 16, dtype=torch.float64, generator=seeded(10), requires_grad=True)
    probe = torch.randn(6, dtype=torch.float64, generator=seeded(11))
    (enc(emb) * probe).sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and (p.grad.abs() > 1e-8).any(), name
    assert torch.autograd.gradcheck(lambda e: enc(e), (emb.detach().requires_grad_(True),))


def test_split_encoders_past_the_embedding_are_refused():
    cfg = HeadConfig(qubits=9, encoders=3, encoder_qubits=3, connectivity=1, **PAPER_MODULE1)
    with pytest.raises(QSetFitError, match=r"encoder 3 would start at entry 16 of a 16-dim embedding"):
        AmplitudeEncoders(cfg)(torch.randn(1, 16, generator=seeded()))


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
