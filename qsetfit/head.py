"""The hybrid head: embeddings -> module 1 encoders -> module 2 circuit -> linear layer -> logits."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from qsetfit.circuits import HeadConfig, build_head_circuit
from qsetfit.encoder import AmplitudeEncoders
from qsetfit.errors import QSetFitError
from qsetfit.layer import QuantumLayer


class HybridHead(nn.Module):
    """Classification head over frozen sentence embeddings (DESIGN §1).

    Args:
        config: the head's shape.
        engine: engine or backend profile executing module 2 (module 1 always runs on the torch engine).
        seed: seeds the initial weights.
        **engine_options: passed to module 2's engine.
    """

    def __init__(self, config: HeadConfig, engine: str = "torch", *, seed: int = 0, **engine_options: Any) -> None:
        super().__init__()
        self.config = config
        gen = torch.Generator().manual_seed(seed)
        self.encoders = AmplitudeEncoders(config, generator=gen) if config.encoders > 0 else None
        self.quantum = QuantumLayer(build_head_circuit(config), engine, generator=gen, **engine_options)
        self.linear = nn.Linear(config.feature_dim + config.measured, config.classes, dtype=torch.float64)
        with torch.no_grad():  # seeded like the rest, independent of torch's global RNG
            bound = 1 / (config.feature_dim + config.measured) ** 0.5
            self.linear.weight.uniform_(-bound, bound, generator=gen)
            self.linear.bias.uniform_(-bound, bound, generator=gen)

    def set_engine(self, engine: str, **engine_options: Any) -> None:
        """Run module 2 on another engine or backend profile, with the same weights."""
        self.quantum.set_engine(engine, **engine_options)

    def features(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, D) embeddings -> (B, Q) classical features f (module 1 read-outs, or the input itself)."""
        if embeddings.dim() != 2:
            raise QSetFitError(f"expected embeddings of shape (batch, dim), got {tuple(embeddings.shape)}")
        if not torch.isfinite(embeddings).all():
            raise QSetFitError("embeddings contain NaN or infinite values; check the body's output")
        if self.encoders is None:
            if embeddings.shape[1] != self.config.qubits:
                raise QSetFitError(
                    f"with encoders=0 the inputs feed module 2 directly and need {self.config.qubits} columns, "
                    f"got {embeddings.shape[1]}"
                )
            return embeddings.to(torch.float64)
        return self.encoders(embeddings)

    def forward(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        shots: int = 0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, D) embeddings [, (B,) labels] -> ((B, K) logits, cross-entropy loss or None).

        ``shots`` > 0 adds differentiable shot noise to module 2's read-outs (see ``shot_noise``).
        """
        f = self.features(embeddings)  # (B, Q)
        z = self.quantum(f)  # (B, Qm) module-2 read-outs
        if shots > 0:
            z = shot_noise(z, shots, generator)
        logits = self.linear(torch.cat([f, z.to(f.dtype)], dim=1))  # (B, K)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return logits, loss


def shot_noise(z: torch.Tensor, shots: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """<Z> estimated from ``shots`` samples, reparameterised: z + sqrt((1 - z^2)/shots) * eps, eps ~ N(0, 1).

    The Gaussian has the exact mean and variance of the shot estimate; gradients flow through z (and the
    noise scale), as in the paper's differentiable shot-sampling.
    """
    eps = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)
    var = (1 - z * z).clamp_min(0) / shots
    return z + (var + 1e-30).sqrt() * eps
