"""What every engine is: (inputs (B, n_in), weights (n_w,)) -> expectation values (B, n_obs), differentiable.

The contract callers rely on (and never discover with ``getattr`` or by catching exceptions):
- ``forward(x, w[, initial_state])`` validates shapes and values, counts the call, and runs ``_forward``;
- ``capabilities`` says what an engine can do (start from prepared states, differentiate, run noise);
- ``describe()`` says how it runs: method, trajectories, shots, physical qubits;
- ``counters`` says what it has executed: forward calls, circuits (PUBs or batches) and shots;
- ``close()`` releases what it holds (an IBM Batch or Session); a no-op for simulators.

How an engine differentiates is one of two kinds, and never both:
- torch engines override ``_forward`` with torch operations and keep torch's own autograd (including the
  adjoint method's ``AdjointEvolve``); they never reach the adapter below;
- engines that compute outside torch (Aer, IBM Runtime) implement ``_expectation_values`` on float64 arrays
  and, when ``capabilities.gradients``, ``_vjp``; the base's ``_forward`` wraps them in ``_NumpyAdapter``, the
  one autograd adapter. A backward pass through an engine without gradients raises one ``QSetFitError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from qsetfit.errors import QSetFitError


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do.

    Attributes:
        initial_state: starts from prepared statevectors (module 1's amplitude encoders); only simulators
            that hold the state in torch can.
        gradients: backward passes give gradients for inputs and weights.
        noise: simulates gate or readout noise.
    """

    initial_state: bool = False
    gradients: bool = True
    noise: bool = False


@dataclass(frozen=True)
class EngineInfo:
    """How an engine runs, for reports and budgets.

    Attributes:
        engine: the engine kind ("torch", "torch-noise", "aer", "ibm").
        method: "statevector", "density_matrix", "statevector_trajectories" or "qpu".
        trajectories: noise trajectories per input (0: none).
        shots: shots per expectation value (0: exact expectation values).
        physical_qubits: device qubits the circuit was laid out on (None: not transpiled to a device).
        precision: "float32" where the engine computes in single precision ("": double).
    """

    engine: str
    method: str = "statevector"
    trajectories: int = 0
    shots: int = 0
    physical_qubits: tuple[int, ...] | None = None
    precision: str = ""

    @property
    def stochastic(self) -> bool:
        """Whether two runs of the same inputs can differ (shots or sampled trajectories)."""
        return bool(self.shots or self.trajectories)

    def in_words(self) -> str:
        """One phrase, e.g. "statevector trajectories (20/input, mean <Z>), ISA on 14 device qubits"."""
        if self.method == "statevector_trajectories":
            text = (
                f"statevector trajectories ({self.trajectories}/input, mean <Z>)"
                if not self.shots
                else f"statevector trajectories (1/shot), {self.shots} shots"
            )
        else:
            trajectories = f"trajectories ({self.trajectories}/input, error-free branch exact)"  # torch's
            text = {"statevector": "statevector", "density_matrix": "density matrix", "trajectories": trajectories}.get(
                self.method, self.method
            )
            text += f", {self.shots} shots" if self.shots else ", exact <Z>"
        text += f", {self.precision}" if self.precision else ""
        physical = self.physical_qubits
        return text + (f", ISA on {len(physical)} device qubits" if physical else "")


@dataclass
class Counters:
    """What an engine has executed since it was built (or last reset).

    Attributes:
        forwards: forward passes through the engine.
        jobs: estimator calls (a Runtime job, or one Aer ``EstimatorV2.run``); 0 for the torch engines.
        pubs: PUBs those calls carried.
    """

    forwards: int = 0
    jobs: int = 0
    pubs: int = 0

    def reset(self) -> None:
        """Start counting from zero."""
        self.forwards = self.jobs = self.pubs = 0

    def count_job(self, pubs: int) -> None:
        """One estimator call carrying ``pubs`` PUBs."""
        self.jobs += 1
        self.pubs += pubs


class Engine(nn.Module):
    """Base of all engines. The public ``forward`` validates and reshapes; subclasses implement ``_forward``.

    Engines hold no trainable parameters: the weight vector belongs to the ``QuantumLayer`` that calls
    them, so one set of weights runs unchanged on every engine.
    """

    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, *, num_inputs: int, num_weights: int, num_outputs: int) -> None:
        super().__init__()
        self.num_inputs = num_inputs
        self.num_weights = num_weights
        self.num_outputs = num_outputs
        self.counters = Counters()

    @property
    def calls(self) -> int:
        """Estimator calls (Runtime jobs) so far."""
        return self.counters.jobs

    @property
    def pubs_submitted(self) -> int:
        """PUBs sent so far."""
        return self.counters.pubs

    def reset_counters(self) -> None:
        """Set every counter back to zero."""
        self.counters.reset()

    def describe(self) -> EngineInfo:
        """How this engine runs (subclasses with noise, shots or a device layout override it)."""
        return EngineInfo(engine="torch")

    def close(self) -> None:
        """Release what the engine holds (nothing, for a simulator)."""

    def forward(  # noqa: D102 - documented on the class
        self, x: torch.Tensor, w: torch.Tensor, initial_state: torch.Tensor | None = None
    ) -> torch.Tensor:
        squeeze = x.dim() == 1
        if squeeze:
            x = x[None]
        self._check(x, w, initial_state)
        self.counters.forwards += 1
        out = self._forward(x, w, initial_state)  # None unless capabilities.initial_state (checked above)
        return out[0] if squeeze else out

    def _check(self, x: torch.Tensor, w: torch.Tensor, initial_state: torch.Tensor | None) -> None:
        if x.dim() != 2 or x.shape[1] != self.num_inputs:
            raise QSetFitError(f"expected inputs of shape (batch, {self.num_inputs}), got {tuple(x.shape)}")
        if w.shape != (self.num_weights,):
            raise QSetFitError(f"expected a weight vector of shape ({self.num_weights},), got {tuple(w.shape)}")
        if not torch.isfinite(x).all():
            raise QSetFitError("inputs contain NaN or infinite values; clean the features before the head")
        if initial_state is None:
            return
        if not self.capabilities.initial_state:
            raise QSetFitError(
                f"the {self.describe().engine!r} engine does not take an initial_state (prepared "
                "states of amplitude encoders); run module 1 on the torch engine and pass its "
                "read-outs as inputs"
            )
        if initial_state.shape[0] != x.shape[0]:
            raise QSetFitError(f"initial_state has {initial_state.shape[0]} rows but inputs have {x.shape[0]}")

    def _forward(self, x: torch.Tensor, w: torch.Tensor, initial_state: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n_in), (n_w,) -> (B, n_obs): the adapter over ``_expectation_values``; torch engines override it."""
        return _NumpyAdapter.apply(x, w, self)

    def _expectation_values(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """(B, n_in), (n_w,) float64 -> (B, n_obs) float64, for engines that compute outside torch."""
        raise NotImplementedError(f"{type(self).__name__} overrides neither _forward nor _expectation_values")

    def _vjp(
        self, x: np.ndarray, w: np.ndarray, grad_out: np.ndarray, *, need_x: bool, need_w: bool
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``grad_out`` (B, n_obs) times the Jacobians: (dL/dx (B, n_in) or None, dL/dw (n_w,) or None).

        Only engines with ``capabilities.gradients`` and no ``_forward`` of their own implement it; an entry is
        None when it was not asked for (``need_x``, ``need_w``).
        """
        raise NotImplementedError(f"{type(self).__name__} declares gradients but implements no _vjp")


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


class _NumpyAdapter(torch.autograd.Function):
    """Autograd through an engine's ``_expectation_values`` / ``_vjp``, in float64 (qiskit-machine-learning's
    ``TorchConnector`` casts to float32, which would break the 1e-8 agreement with the torch engine)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, engine: Engine) -> torch.Tensor:  # noqa: D102
        ctx.engine = engine
        ctx.save_for_backward(x, w)
        out = engine._expectation_values(_numpy(x), _numpy(w))  # (B, O)
        return torch.as_tensor(np.asarray(out, dtype=np.float64), device=x.device)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple:  # noqa: D102
        engine: Engine = ctx.engine
        if not engine.capabilities.gradients:
            raise QSetFitError(
                f"the {engine.describe().engine!r} engine is for inference only (it gives no "
                "gradients); train on 'torch' (or an aer profile), then switch engines with the "
                "same weights"
            )
        x, w = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad[:2]
        dx, dw = engine._vjp(_numpy(x), _numpy(w), _numpy(grad_out), need_x=bool(need_x), need_w=bool(need_w))
        return (
            None if dx is None else torch.as_tensor(dx, device=x.device),
            None if dw is None else torch.as_tensor(dw, device=w.device),
            None,
        )


__all__ = ["Capabilities", "Counters", "Engine", "EngineInfo"]
