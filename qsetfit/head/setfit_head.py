"""``SetFitQuantumHead``: our hybrid quantum head behind setfit's differentiable-head contract.

setfit calls ``forward`` on the body's output dict during training (reading ``logits``), ``predict`` /
``predict_proba`` on encoded tensors at inference, ``get_loss_fn`` for the criterion, ``parameters`` for the
optimizer and ``.to(device)``. setfit's own ``SetFitModel.save_pretrained`` writes the head as a
pickle; ``save_pretrained`` / ``from_pretrained`` here write safetensors + JSON instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qsetfit.io import persistence
from qsetfit.head.circuits import HeadConfig
from qsetfit.errors import QSetFitError
from qsetfit.head.hybrid import HybridHead

HEAD_CONFIG = "quantum_head_config.json"
HEAD_WEIGHTS = "quantum_head.safetensors"


class SetFitQuantumHead(nn.Module):
    """A ``HybridHead`` usable as ``setfit.SetFitModel(model_head=...)``.

    Args:
        config: the head's shape (e.g. ``HeadConfig.preset("paper-10q-single")``); ignored when ``head`` is given.
        seed: seeds the initial weights.
        head: wrap an existing ``HybridHead`` (weights shared, not copied).
        input_dim: the embedding width, for heads sized by it (PCA reduction or a linear module 1).
        temperature: logits are divided by it, as in setfit's ``SetFitHead``.

    Example:
        >>> model = setfit.SetFitModel(model_body=body, model_head=SetFitQuantumHead(cfg))  # doctest: +SKIP
    """

    def __init__(
        self,
        config: HeadConfig | None = None,
        *,
        seed: int = 0,
        head: HybridHead | None = None,
        input_dim: int | None = None,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if head is None and config is None:
            raise QSetFitError("SetFitQuantumHead needs a HeadConfig (e.g. HeadConfig.preset('tiny')) or head=")
        if not temperature > 0:
            raise QSetFitError(f"temperature must be > 0, got {temperature}")
        if head is None:
            assert config is not None  # checked above
            head = HybridHead(config, seed=seed, input_dim=input_dim)
        self.head = head
        self.config = self.head.config
        self.temperature = temperature

    def _logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        # The head computes in float64; the body hands float32 (gradients flow through the cast).
        logits, _ = self.head(embeddings.to(torch.float64))
        return logits / self.temperature

    def forward(
        self, features: dict[str, torch.Tensor] | torch.Tensor
    ) -> dict[str, torch.Tensor] | tuple[torch.Tensor, torch.Tensor]:
        """A sentence-transformers output dict (adds ``logits`` and ``probs``) or an (N, D) tensor
        (returns ``(logits, probs)``), like setfit's ``SetFitHead``."""
        if isinstance(features, dict):
            if "sentence_embedding" not in features:
                raise QSetFitError("SetFitQuantumHead expects the body's output dict with 'sentence_embedding'")
            logits = self._logits(features["sentence_embedding"])
            features.update({"logits": logits, "probs": torch.softmax(logits, dim=-1)})
            return features
        logits = self._logits(torch.as_tensor(features))
        return logits, torch.softmax(logits, dim=-1)

    def predict_proba(self, x_test: torch.Tensor) -> torch.Tensor:
        """(N, K) class probabilities of (N, D) embeddings."""
        self.eval()
        with torch.no_grad():
            return self(x_test)[1]

    def predict(self, x_test: torch.Tensor) -> torch.Tensor:
        """(N,) predicted class ids."""
        return torch.argmax(self.predict_proba(x_test), dim=-1)

    def get_loss_fn(self) -> nn.Module:
        """The criterion setfit applies to ``logits``: cross-entropy over the classes."""
        return nn.CrossEntropyLoss()

    @property
    def device(self) -> torch.device:
        """Where the head's weights live."""
        return next(self.parameters()).device

    def get_config_dict(self) -> dict[str, Any]:
        """The head's configuration as plain JSON (setfit and model cards read this)."""
        return {
            "head": self.config.to_dict(),
            "temperature": self.temperature,
            "input_dim": getattr(self.head, "input_dim", None),
        }

    # ---- safe persistence (setfit's own save is a pickle) ----------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``quantum_head_config.json`` + ``quantum_head.safetensors`` to ``directory``."""
        out = Path(directory)
        persistence.write_json(out / HEAD_CONFIG, self.get_config_dict())
        persistence.write_tensors(out / HEAD_WEIGHTS, self.head.state_dict())
        return out

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> SetFitQuantumHead:
        """Rebuild a head written by ``save_pretrained`` (nothing is unpickled)."""
        path = Path(directory)
        cfg = persistence.read_json(path / HEAD_CONFIG)
        head = cls(
            HeadConfig.from_dict(cfg["head"]), temperature=cfg.get("temperature", 1.0), input_dim=cfg.get("input_dim")
        )
        state = persistence.read_tensors(path / HEAD_WEIGHTS)
        if set(state) != set(head.head.state_dict()):
            raise QSetFitError(f"{path / HEAD_WEIGHTS} does not match {HEAD_CONFIG}; save both with save_pretrained")
        head.head.load_state_dict(state)
        return head

    def __repr__(self) -> str:
        return f"SetFitQuantumHead({json.dumps(self.get_config_dict()['head'], sort_keys=True)})"
