"""Body tuning's mixed precision: bfloat16 forward under a scoped wrapper, float32 outside it."""

from __future__ import annotations

import pytest
import torch

from qsetfit import QSetFitError
from qsetfit.training import mixed_precision as mp


class Body(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(64, 8)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"sentence_embedding": self.linear(features["x"]), "ids": features["ids"]}


def _body_and_input() -> tuple[Body, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    return Body(), {"x": torch.randn(16, 64), "ids": torch.arange(16)}


def test_the_forward_runs_in_bfloat16_inside_the_block_and_float32_after():
    body, features = _body_and_input()
    exact = body(features)["sentence_embedding"]
    with mp.autocast_forward(body, "bfloat16"):
        mixed = body(features)
        mixed["sentence_embedding"].sum().backward()
    emb = mixed["sentence_embedding"]
    assert emb.dtype == torch.float32 and mixed["ids"].dtype == torch.int64  # outputs back in float32
    # bfloat16 keeps 8 bits of mantissa: visibly rounded, yet within 2^-7 of the output scale
    assert 0 < (emb - exact).abs().max() <= exact.abs().max() * 2**-7
    assert body.linear.weight.grad is not None and body.linear.weight.grad.dtype == torch.float32
    assert "forward" not in vars(body)  # the wrapper is gone
    assert torch.equal(body(features)["sentence_embedding"], exact)


def test_float32_leaves_the_forward_alone():
    body, features = _body_and_input()
    exact = body(features)["sentence_embedding"]
    with mp.autocast_forward(body, "float32"):
        assert "forward" not in vars(body)
        assert torch.equal(body(features)["sentence_embedding"], exact)


def test_the_wrapper_is_removed_when_training_fails():
    body, features = _body_and_input()
    with pytest.raises(RuntimeError, match="boom"), mp.autocast_forward(body, "bfloat16"):
        raise RuntimeError("boom")
    assert "forward" not in vars(body)


@pytest.mark.parametrize("native", [True, False])
def test_auto_picks_bfloat16_only_where_the_cpu_has_it(monkeypatch, native):
    monkeypatch.setattr(mp, "native_bfloat16", lambda: native)
    assert mp.resolve_precision("auto") == ("bfloat16" if native else "float32")
    assert mp.resolve_precision("float32") == "float32"


def test_an_unknown_precision_is_one_clear_error():
    with pytest.raises(QSetFitError, match="must be one of"):
        mp.resolve_precision("fp16")
