"""qsetfit: quantum classification heads for frozen sentence transformers, on Qiskit simulators and IBM QPUs."""

from qsetfit.circuits import PRESETS, HeadCircuit, HeadConfig, build_encoder_circuit, build_head_circuit
from qsetfit.encoder import AmplitudeEncoders
from qsetfit.engines.registry import available_engines, make_engine, register_engine, register_resolver
from qsetfit.engines.torch_noise import NoisyResult, TorchNoiseEngine
from qsetfit.errors import QSetFitError
from qsetfit.head import HybridHead
from qsetfit.layer import QuantumLayer
from qsetfit.modeling import QSetFitModel
from qsetfit.setfit_head import SetFitQuantumHead
from qsetfit.body_tuning import BodyTuningArguments
from qsetfit.model_trainer import Trainer
from qsetfit.trainer import HeadTrainer
from qsetfit.training_args import TrainingArguments
from qsetfit.profiles import BackendProfile, NoiseProfile, list_profiles, load_backend_profile, load_noise_profile

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "AmplitudeEncoders",
    "HeadCircuit",
    "HeadConfig",
    "HybridHead",
    "QSetFitModel",
    "QSetFitError",
    "QuantumLayer",
    "NoisyResult",
    "TorchNoiseEngine",
    "SetFitQuantumHead",
    "BodyTuningArguments",
    "HeadTrainer",
    "Trainer",
    "TrainingArguments",
    "available_engines",
    "build_encoder_circuit",
    "build_head_circuit",
    "make_engine",
    "register_engine",
    "register_resolver",
    "BackendProfile",
    "NoiseProfile",
    "list_profiles",
    "load_backend_profile",
    "load_noise_profile",
]
