"""What every engine is: (inputs (B, n_in), weights (n_w,)) -> expectation values (B, n_obs), differentiable."""

from __future__ import annotations

import torch
from torch import nn

from qsetfit.errors import QSetFitError


class Engine(nn.Module):
    """Base of all engines. The public ``forward`` validates and reshapes; subclasses implement ``_forward``.

    Engines hold no trainable parameters: the weight vector belongs to the ``QuantumLayer`` that calls
    them, so one set of weights runs unchanged on every engine.
    """

    def __init__(self, *, num_inputs: int, num_weights: int, num_outputs: int) -> None:
        super().__init__()
        self.num_inputs = num_inputs
        self.num_weights = num_weights
        self.num_outputs = num_outputs

    def forward(  # noqa: D102 - documented on the class
        self, x: torch.Tensor, w: torch.Tensor, initial_state: torch.Tensor | None = None
    ) -> torch.Tensor:
        squeeze = x.dim() == 1
        if squeeze:
            x = x[None]
        if x.dim() != 2 or x.shape[1] != self.num_inputs:
            raise QSetFitError(
                f"expected inputs of shape (batch, {self.num_inputs}), got {tuple(x.shape)}"
            )
        if w.shape != (self.num_weights,):
            raise QSetFitError(f"expected a weight vector of shape ({self.num_weights},), got {tuple(w.shape)}")
        if not torch.isfinite(x).all():
            raise QSetFitError("inputs contain NaN or infinite values; clean the features before the head")
        if initial_state is not None and initial_state.shape[0] != x.shape[0]:
            raise QSetFitError(
                f"initial_state has {initial_state.shape[0]} rows but inputs have {x.shape[0]}"
            )
        out = self._forward(x, w, initial_state)
        return out[0] if squeeze else out

    def _forward(self, x: torch.Tensor, w: torch.Tensor, initial_state: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError
