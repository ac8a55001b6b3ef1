"""Trainer: schedule, model selection, atomic checkpoints and exact resume."""

from __future__ import annotations

import math

import pytest
import torch

from qsetfit import HeadConfig, HybridHead, QSetFitError
from qsetfit.training.head_trainer import Trainer, lr_at
from qsetfit.training.arguments import TrainingArguments


def _toy(n=40, dim=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g, dtype=torch.float64)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y


def test_lr_schedules():
    args = TrainingArguments(learning_rate=0.1, schedule="cosine", warmup_steps=2)
    assert lr_at(0, 12, args) == pytest.approx(0.05)
    assert lr_at(2, 12, args) == pytest.approx(0.1)
    assert lr_at(12, 12, args) == pytest.approx(0.0, abs=1e-12)
    assert lr_at(7, 12, args) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_at(5, 10, TrainingArguments(learning_rate=0.1, schedule="linear")) == pytest.approx(0.05)
    assert lr_at(9, 10, TrainingArguments(learning_rate=0.1, schedule="constant")) == 0.1


def test_training_reduces_the_loss_and_selects_on_validation():
    x, y = _toy()
    head = HybridHead(HeadConfig.preset("tiny"), seed=1)
    args = TrainingArguments(epochs=8, batch_size=8, learning_rate=0.05)
    result = Trainer(head, args, (x[:30], y[:30]), (x[30:], y[30:]), progress=False).train()
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0]
    best = max(result.history, key=lambda r: (r["val_accuracy"], -r["val_loss"]))
    assert result.best_epoch == best["epoch"]


def test_mismatched_lengths_are_rejected():
    x, y = _toy()
    with pytest.raises(QSetFitError, match="40 training embeddings but 39 labels"):
        Trainer(HybridHead(HeadConfig.preset("tiny")), TrainingArguments(), (x, y[:-1]))


class _Killed(Exception):
    pass


@pytest.mark.parametrize("shots", [0, 50])
def test_resume_reaches_the_uninterrupted_weights(tmp_path, monkeypatch, shots):
    x, y = _toy()
    args = TrainingArguments(epochs=5, batch_size=8, learning_rate=0.05, train_shots=shots)
    train, val = (x[:30], y[:30]), (x[30:], y[30:])

    full = HybridHead(HeadConfig.preset("tiny"), seed=2)
    Trainer(full, args, train, val, checkpoint_dir=tmp_path / "a", progress=False).train()

    killed = HybridHead(HeadConfig.preset("tiny"), seed=2)
    trainer = Trainer(killed, args, train, val, checkpoint_dir=tmp_path / "b", progress=False)
    original = Trainer._save_checkpoint

    def save_then_die(self, epoch, *rest):
        original(self, epoch, *rest)
        if epoch == 2:
            raise _Killed

    monkeypatch.setattr(Trainer, "_save_checkpoint", save_then_die)
    with pytest.raises(_Killed):
        trainer.train()
    monkeypatch.setattr(Trainer, "_save_checkpoint", original)

    resumed = HybridHead(HeadConfig.preset("tiny"), seed=99)  # a fresh process: different initial weights
    result = Trainer(resumed, args, train, val, checkpoint_dir=tmp_path / "b", progress=False).train(resume=True)
    assert len(result.history) == 5
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-12, rtol=0), name


def test_resume_without_checkpoint_or_with_other_arguments(tmp_path):
    x, y = _toy()
    head = HybridHead(HeadConfig.preset("tiny"))
    with pytest.raises(QSetFitError, match="nothing to resume"):
        Trainer(head, TrainingArguments(epochs=1), (x, y), checkpoint_dir=tmp_path, progress=False).train(resume=True)
    Trainer(head, TrainingArguments(epochs=1), (x, y), checkpoint_dir=tmp_path, progress=False).train()
    with pytest.raises(QSetFitError, match="arguments differ.*epochs"):
        Trainer(head, TrainingArguments(epochs=2), (x, y), checkpoint_dir=tmp_path, progress=False).train(resume=True)


def test_training_switches_module_2s_engine_and_restores_it_even_on_failure(monkeypatch):
    x, y = _toy()
    head = HybridHead(HeadConfig.preset("tiny"), seed=1)
    seen = []
    real_forward = HybridHead.forward

    def spy(self, *a, **k):
        seen.append(self.engine_spec[0])
        return real_forward(self, *a, **k)

    monkeypatch.setattr(HybridHead, "forward", spy)
    Trainer(head, TrainingArguments(epochs=1, batch_size=20, engine="torch-float32"), (x, y), progress=False).train()
    assert set(seen) == {"torch-float32"} and head.engine_spec == ("torch", {})

    def broken(self, resume):
        raise RuntimeError("killed mid-training")

    monkeypatch.setattr(Trainer, "_epochs", broken)
    with pytest.raises(RuntimeError, match="killed"):
        Trainer(head, TrainingArguments(epochs=1, engine="torch-float32"), (x, y), progress=False).train()
    assert head.engine_spec == ("torch", {})
