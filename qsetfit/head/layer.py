"""``QuantumLayer``: a head circuit plus its weight vector, executed by an engine chosen by name."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from qsetfit.head.circuits import HeadCircuit
from qsetfit.engines.registry import make_engine


class QuantumLayer(nn.Module):
    """Maps (B, len(inputs)) input angles to (B, len(observables)) expectation values.

    The layer owns the weights (``.weight``, in ``head_circuit.weights`` order); the engine only executes,
    so ``set_engine`` moves trained weights to another simulator or to hardware unchanged.

    Args:
        head_circuit: from ``build_head_circuit`` or ``build_encoder_circuit``.
        engine: engine or backend-profile name (``"torch"``, ``"torch-float32"``, ``"aer-exact"``...).
        init_scale: initial weights are uniform in [-init_scale*pi, init_scale*pi].
        generator: optional torch.Generator for the initial weights.
        **engine_options: passed to the engine factory (e.g. ``fusion_qubits`` for torch).
    """

    def __init__(
        self,
        head_circuit: HeadCircuit,
        engine: str = "torch",
        *,
        init_scale: float = 0.25,
        generator: torch.Generator | None = None,
        **engine_options: Any,
    ) -> None:
        super().__init__()
        self.head_circuit = head_circuit
        n_w = len(head_circuit.weights)
        init = (torch.rand(n_w, generator=generator, dtype=torch.float64) * 2 - 1) * init_scale * math.pi
        self.weight = nn.Parameter(init)
        self.engine_name, self.engine_options = engine, dict(engine_options)
        self.engine = make_engine(head_circuit, engine, **engine_options)

    def set_engine(self, engine: str, **engine_options: Any) -> None:
        """Execute the same circuit and weights on another engine from now on.

        The engine it replaces is closed if it can be (an IBM Batch or Session stops taking jobs; its queued
        jobs still finish), so switching backends leaves nothing open on the provider's side.
        """
        new = make_engine(self.head_circuit, engine, **engine_options).to(self.weight.device)
        old, self.engine, self.engine_name, self.engine_options = self.engine, new, engine, dict(engine_options)
        if old is not new:
            old.close()

    def forward(self, x: torch.Tensor, initial_state: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n_in) angles [and optional (B, 2^n) initial states] -> (B, n_obs) expectation values."""
        return self.engine(x, self.weight, initial_state)

    def extra_repr(self) -> str:
        hc = self.head_circuit
        return (
            f"qubits={hc.num_qubits}, inputs={len(hc.inputs)}, weights={len(hc.weights)}, engine={self.engine_name!r}"
        )
