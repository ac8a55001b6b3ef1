"""The hybrid head: embeddings -> module 1 encoders -> module 2 circuit -> linear layer -> logits."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from qsetfit.head.circuits import HeadConfig, build_head_circuit
from qsetfit.head.encoder import AmplitudeEncoders
from qsetfit.errors import QSetFitError
from qsetfit.head.layer import QuantumLayer
from qsetfit.head.reduction import PCAReduction


class HybridHead(nn.Module):
    """Classification head over frozen sentence embeddings (DESIGN §1).

    embedding -> [PCA reduction] -> module 1 (amplitude encoders or a linear projection) -> features f (B, Q)
    -> module 2 (the circuit, <Z> on Qm qubits) -> linear layer over [f (if ``skip``), <Z>] -> logits.

    Args:
        config: the head's shape.
        engine: engine or backend profile executing module 2 (module 1 always runs on the torch engine).
        seed: seeds the initial weights.
        input_dim: the embedding width D; required by ``reduction="pca"`` and ``module1="linear"``.
        module2: False builds the "module 2 removed" ablation: the linear layer reads the Q features only.
        **engine_options: passed to module 2's engine.
    """

    def __init__(
        self,
        config: HeadConfig,
        engine: str = "torch",
        *,
        seed: int = 0,
        input_dim: int | None = None,
        module2: bool = True,
        **engine_options: Any,
    ) -> None:
        super().__init__()
        self.config, self.input_dim = config, input_dim
        if needs_input_dim(config) and input_dim is None:
            raise QSetFitError(
                f"reduction={config.reduction!r} / module1={config.module1!r} size their weights by "
                "the embedding width: pass input_dim (QSetFitModel.fit does this for you)"
            )
        gen = torch.Generator().manual_seed(seed)
        self.reduction = (
            PCAReduction(input_dim, config.reduced_dim(input_dim))
            if config.reduction == "pca" and input_dim is not None
            else None
        )
        self.encoders = (
            AmplitudeEncoders(config, generator=gen) if config.module1 == "amplitude" and config.encoders else None
        )
        self.projection = None
        if config.module1 == "linear" and input_dim is not None:
            self.projection = _seeded_linear(config.reduced_dim(input_dim), config.feature_dim, gen)
        self.quantum = (
            QuantumLayer(build_head_circuit(config), engine, generator=gen, **engine_options) if module2 else None
        )
        self.linear = _seeded_linear(config.linear_inputs if module2 else config.feature_dim, config.classes, gen)

    def set_engine(self, engine: str, **engine_options: Any) -> None:
        """Run module 2 on another engine or backend profile, with the same weights."""
        if self.quantum is not None:
            self.quantum.set_engine(engine, **engine_options)

    @property
    def engine_spec(self) -> tuple[str, dict[str, Any]] | None:
        """(engine name, options) module 2 runs on now; None without module 2."""
        if self.quantum is None:
            return None
        return self.quantum.engine_name, dict(self.quantum.engine_options)

    def prepare(self, train_embeddings: torch.Tensor) -> None:
        """Fit what is fitted rather than trained (the PCA) on the training embeddings; the Trainer calls it."""
        if self.reduction is not None:
            self.reduction.fit(self._checked(train_embeddings))

    def _checked(self, embeddings: torch.Tensor) -> torch.Tensor:
        if embeddings.dim() != 2:
            raise QSetFitError(f"expected embeddings of shape (batch, dim), got {tuple(embeddings.shape)}")
        if self.input_dim is not None and embeddings.shape[1] != self.input_dim:
            raise QSetFitError(
                f"this head was built for {self.input_dim}-dim embeddings, got {embeddings.shape[1]}; "
                "use the body it was trained with"
            )
        if not torch.isfinite(embeddings).all():
            raise QSetFitError("embeddings contain NaN or infinite values; check the body's output")
        return embeddings

    def features(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, D) embeddings -> (B, Q) classical features f (module 1's output, or the input itself)."""
        x = self._checked(embeddings).to(torch.float64)
        if self.reduction is not None:
            x = self.reduction(x)  # (B, k)
        if self.projection is not None:
            return self.projection(x)  # (B, Q)
        if self.encoders is not None:
            return self.encoders(x)  # (B, E*Qc) = (B, Q)
        if x.shape[1] != self.config.qubits:
            raise QSetFitError(
                f"with encoders=0 the inputs feed module 2 directly and need {self.config.qubits} columns, "
                f"got {x.shape[1]}"
            )
        return x

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
        if self.quantum is None:  # the "module 2 removed" ablation
            logits = self.linear(f)
        else:
            z = self.quantum(f)  # (B, Qm) module-2 read-outs
            if shots > 0:
                z = shot_noise(z, shots, generator)
            logits = self.readout(f, z)  # (B, K)
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return logits, loss

    @torch.no_grad()
    def logits(self, embeddings: torch.Tensor, *, batch_size: int = 1 << 20) -> torch.Tensor:
        """(N, K) logits for inference (eval mode, no gradients), ``batch_size`` rows per forward pass: the one
        prediction loop (hardware engines split a pass into jobs themselves, so the default is one pass)."""
        self.eval()
        x = torch.as_tensor(embeddings, dtype=torch.float64)
        parts = [self(x[i : i + batch_size])[0] for i in range(0, len(x), batch_size)]
        return torch.cat(parts) if parts else torch.zeros(0, self.config.classes, dtype=torch.float64)

    def readout(self, features: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The final layer: (B, Q) features and (B, Qm) module-2 read-outs -> (B, K) logits (honours ``skip``)."""
        z = z.to(features.dtype)
        return self.linear(torch.cat([features, z], dim=1) if self.config.skip else z)

    def readout_weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The final layer as logits = A f + B z + c: (A (K, Q), B (K, Qm), c (K,)); A is zero without ``skip``."""
        weight, bias = self.linear.weight.detach(), self.linear.bias.detach()
        q = self.config.feature_dim
        if not self.config.skip:
            return weight.new_zeros(weight.shape[0], q), weight, bias
        return weight[:, :q], weight[:, q:], bias


def needs_input_dim(config: HeadConfig) -> bool:
    """Whether the head's weights are sized by the embedding width (PCA reduction or a linear module 1)."""
    return config.reduction == "pca" or config.module1 == "linear"


def _seeded_linear(n_in: int, n_out: int, gen: torch.Generator) -> nn.Linear:
    """A float64 ``nn.Linear`` initialised like torch's default, from ``gen`` (independent of the global RNG)."""
    layer = nn.Linear(n_in, n_out, dtype=torch.float64)
    with torch.no_grad():
        bound = 1 / max(n_in, 1) ** 0.5
        layer.weight.uniform_(-bound, bound, generator=gen)
        layer.bias.uniform_(-bound, bound, generator=gen)
    return layer


def shot_noise(z: torch.Tensor, shots: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """<Z> estimated from ``shots`` samples, reparameterised: z + sqrt((1 - z^2)/shots) * eps, eps ~ N(0, 1).

    The Gaussian has the exact mean and variance of the shot estimate; gradients flow through z (and the
    noise scale), as in the paper's differentiable shot-sampling.
    """
    eps = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)
    var = (1 - z * z).clamp_min(0) / shots
    return z + (var + 1e-30).sqrt() * eps
