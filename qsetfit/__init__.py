"""qsetfit: quantum classification heads for frozen sentence transformers, on Qiskit simulators and IBM QPUs."""

from qsetfit.head.circuits import PRESETS, HeadCircuit, HeadConfig, build_encoder_circuit, build_head_circuit
from qsetfit.head.encoder import AmplitudeEncoders
from qsetfit.engines.registry import available_engines, make_engine, register_engine, register_resolver
from qsetfit.engines.torch.noisy import NoisyResult, TorchNoiseEngine
from qsetfit.errors import QSetFitError
from qsetfit.head.hybrid import HybridHead
from qsetfit.head.layer import QuantumLayer
from qsetfit.modeling import QSetFitModel
from qsetfit.head.setfit_head import SetFitQuantumHead
from qsetfit.training.body_tuning import BodyTuningArguments
from qsetfit.training.trainer import Trainer
from qsetfit.training.head_trainer import HeadTrainer
from qsetfit.training.arguments import TrainingArguments
from qsetfit.profiles import BackendProfile, NoiseProfile, list_profiles, load_backend_profile, load_noise_profile

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "AmplitudeEncoders",
    "BackendProfile",
    "BodyTuningArguments",
    "HeadCircuit",
    "HeadConfig",
    "HeadTrainer",
    "HybridHead",
    "NoiseProfile",
    "NoisyResult",
    "QSetFitError",
    "QSetFitModel",
    "QuantumLayer",
    "SetFitQuantumHead",
    "TorchNoiseEngine",
    "Trainer",
    "TrainingArguments",
    "available_engines",
    "build_encoder_circuit",
    "build_head_circuit",
    "list_profiles",
    "load_backend_profile",
    "load_noise_profile",
    "make_engine",
    "register_engine",
    "register_resolver",
]
