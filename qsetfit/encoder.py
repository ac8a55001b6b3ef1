"""Module 1: E amplitude-encoded encoders simulated exactly on the torch engine (DESIGN §1)."""

from __future__ import annotations

import torch
from torch import nn

from qsetfit.circuits import HeadConfig, build_encoder_circuit
from qsetfit.errors import QSetFitError
from qsetfit.layer import QuantumLayer


def amplitude_states(embeddings: torch.Tensor, config: HeadConfig) -> torch.Tensor:
    """(B, D) embeddings -> (E, B, 2^Qc) L2-normalised amplitude vectors, one per encoder.

    Encoder i reads entries [i*2^Qc, (i+1)*2^Qc) ("split") or the first 2^Qc ("shared"); entries past
    the end of the embedding are zero (zero-padding). An all-zero slice stays zero (its read-outs are 0).
    """
    batch, dim = embeddings.shape
    size = config.encoder_dim
    split = config.encoder_input == "split"
    if split and (config.encoders - 1) * size >= dim:
        raise QSetFitError(
            f"with encoder_input='split', encoder {config.encoders} would start at entry "
            f"{(config.encoders - 1) * size} of a {dim}-dim embedding; use fewer encoders, fewer encoder_qubits "
            f"or encoder_input='shared'"
        )
    padded = torch.zeros(batch, config.encoders * size if split else size, dtype=torch.float64,
                         device=embeddings.device)
    take = min(dim, padded.shape[1])
    padded[:, :take] = embeddings[:, :take].to(torch.float64)
    states = padded.reshape(batch, -1, size).transpose(0, 1) if split else padded[None].expand(config.encoders, -1, -1)
    norms = states.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return states / norms  # (E, B, 2^Qc)


class AmplitudeEncoders(nn.Module):
    """E parallel encoders; each reads <Z_k> on all Qc qubits of its evolved amplitude state.

    Forward: (B, D) embeddings -> (B, E*Qc) features in [-1, 1].
    """

    def __init__(self, config: HeadConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleList(
            QuantumLayer(
                build_encoder_circuit(config.encoder_qubits, config.encoder_layers, config.encoder_connectivity,
                                      name=f"enc{i}"),
                "torch",
                generator=generator,
            )
            for i in range(config.encoders)
        )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        states = amplitude_states(embeddings, self.config)  # (E, B, 2^Qc)
        empty = embeddings.new_zeros(embeddings.shape[0], 0, dtype=torch.float64)  # encoders take no angles
        return torch.cat([layer(empty, states[i]) for i, layer in enumerate(self.layers)], dim=1)  # (B, E*Qc)
