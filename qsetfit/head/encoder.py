"""Module 1: E amplitude-encoded encoders simulated exactly on the torch engine (DESIGN §1)."""

from __future__ import annotations

import torch
from torch import nn

from qsetfit.head.circuits import HeadConfig, build_encoder_circuit
from qsetfit.errors import QSetFitError
from qsetfit.head.layer import QuantumLayer


def amplitude_states(embeddings: torch.Tensor, config: HeadConfig) -> torch.Tensor:
    """(B, D) embeddings -> (E, B, 2^Qc) L2-normalised amplitude vectors, one per encoder.

    Encoder i reads entries [i*W, (i+1)*W) ("split") or the first W ("shared"), W = 2^Qc (minus one when
    ``amplitude_bias`` b > 0); entries past the end of the embedding are zero (zero-padding). With b > 0 the
    slice is normalised, b is appended as the register's last amplitude and the state renormalised:
    [e/|e|, b] / sqrt(1 + b^2). An all-zero slice stays zero without a bias (its read-outs are 0).
    """
    batch, dim = embeddings.shape
    assert config.encoders is not None and config.amplitude_bias is not None  # set by HeadConfig.__post_init__
    size, bias = config.encoder_dim, float(config.amplitude_bias)
    width = size - 1 if bias else size  # embedding entries per register
    split = config.encoder_input == "split"
    if split and (config.encoders - 1) * width >= dim:
        raise QSetFitError(
            f"with encoder_input='split', encoder {config.encoders} would start at entry "
            f"{(config.encoders - 1) * width} of a {dim}-dim embedding; use fewer encoders, fewer encoder_qubits, "
            "encoder_input='shared' or reduction='pca'"
        )
    padded = torch.zeros(
        batch, config.encoders * width if split else width, dtype=torch.float64, device=embeddings.device
    )
    take = min(dim, padded.shape[1])
    padded[:, :take] = embeddings[:, :take].to(torch.float64)
    states = padded.reshape(batch, -1, width).transpose(0, 1) if split else padded[None].expand(config.encoders, -1, -1)
    states = states / states.norm(dim=-1, keepdim=True).clamp_min(1e-12)  # (E, B, W)
    if bias:
        states = torch.cat([states, states.new_full((*states.shape[:2], 1), bias)], dim=-1)
        states = states / states.norm(dim=-1, keepdim=True)
    return states  # (E, B, 2^Qc)


class AmplitudeEncoders(nn.Module):
    """E parallel encoders; each reads <Z_k> on all Qc qubits of its evolved amplitude state.

    Forward: (B, D) embeddings -> (B, E*Qc) features in [-1, 1].
    """

    def __init__(self, config: HeadConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        assert config.encoders is not None and config.encoder_qubits is not None  # set by HeadConfig.__post_init__
        assert config.encoder_connectivity is not None
        self.layers = nn.ModuleList(
            QuantumLayer(
                build_encoder_circuit(
                    config.encoder_qubits, config.encoder_layers, config.encoder_connectivity, name=f"enc{i}"
                ),
                "torch",
                generator=generator,
            )
            for i in range(config.encoders)
        )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        states = amplitude_states(embeddings, self.config)  # (E, B, 2^Qc)
        empty = embeddings.new_zeros(embeddings.shape[0], 0, dtype=torch.float64)  # encoders take no angles
        return torch.cat([layer(empty, states[i]) for i, layer in enumerate(self.layers)], dim=1)  # (B, E*Qc)
