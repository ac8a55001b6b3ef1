"""The hybrid head: shapes, counts, gradients, seeding, bad embeddings, shot noise on its read-outs."""

from __future__ import annotations

import pytest
import torch

from qsetfit.head.circuits import PAPER_MODULE1  # the paper's module 1 (no PCA, no bias): these tests check it
from qsetfit import HeadConfig, HybridHead, QSetFitError
from qsetfit.head.hybrid import shot_noise
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


def test_head_rejects_bad_embeddings():
    head = HybridHead(HeadConfig.preset("tiny"))
    with pytest.raises(QSetFitError, match="NaN"):
        head(torch.full((2, 16), float("nan")))
    with pytest.raises(QSetFitError, match=r"shape \(batch, dim\)"):
        head(torch.randn(16, generator=seeded()))


def test_shot_noise_has_the_shot_variance_and_passes_gradients():
    z = torch.full((200_000, 1), 0.6, dtype=torch.float64, requires_grad=True)
    noisy = shot_noise(z, 100, torch.Generator().manual_seed(0))
    assert noisy.mean().item() == pytest.approx(0.6, abs=3e-3)
    assert noisy.var().item() == pytest.approx((1 - 0.36) / 100, rel=0.02)
    noisy.sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
