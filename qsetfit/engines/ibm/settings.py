"""The ``ibm`` engine's settings: which backends are local fakes, and the Runtime options a profile sets."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from qsetfit import profiles
from qsetfit.errors import QSetFitError

LOCAL_KINDS = profiles.LOCAL_MODES
DEFAULT_SHOTS = 4096


def is_fake(name: str) -> bool:
    """True for local testing mode names (``fake_torino``)."""
    return name.startswith("fake_")


@dataclass(frozen=True)
class RuntimeSettings:
    """The Runtime options the engine sends; extras the profile does not (yet) carry come as engine options.

    Attributes:
        shots: default_shots (0: leave Runtime's default precision, 4096 shots).
        precision: default_precision (0: unset); give shots or precision.
        resilience_level: Runtime error-mitigation level (real devices).
        twirling: gate and measurement twirling (real devices).
        dynamical_decoupling: "" (off) or a sequence type, e.g. "XY4" (real devices).
        instance: IBM Quantum instance (CRN or name); "" = ``QISKIT_IBM_INSTANCE`` or the account default.
        channel: "ibm_quantum_platform" by default.
    """

    shots: int = 0
    precision: float = 0.0
    resilience_level: int = 1
    twirling: bool = False
    dynamical_decoupling: str = ""
    instance: str = ""
    channel: str = ""

    @classmethod
    def from_profile(cls, profile: profiles.BackendProfile, extra: dict[str, Any]) -> RuntimeSettings:
        """Profile fields first (``getattr``: fields added to ``BackendProfile`` later are honoured), then extras."""
        values = {k: getattr(profile, k) for k in cls.__dataclass_fields__ if hasattr(profile, k)}
        values.update(extra)
        dd = values.get("dynamical_decoupling", "")
        if dd is True:
            values["dynamical_decoupling"] = "XY4"
        elif dd is False or dd is None:
            values["dynamical_decoupling"] = ""
        settings = cls(**values)
        if settings.shots and settings.precision:
            raise QSetFitError("give shots or precision for the ibm engine, not both")
        if settings.precision < 0 or settings.shots < 0:
            raise QSetFitError("shots and precision must be >= 0")
        return settings

    def options(self, *, local: bool) -> dict[str, Any]:
        """The ``EstimatorV2(options=...)`` dict (without ``simulator`` seeds, added per call)."""
        out: dict[str, Any] = {}
        if self.shots:
            out["default_shots"] = self.shots
        if self.precision:
            out["default_precision"] = self.precision
        if local:  # ignored by local testing mode, with a warning per job (QISKIT-PITFALLS 9)
            return out
        out["resilience_level"] = self.resilience_level
        if self.twirling:
            out["twirling"] = {"enable_gates": True, "enable_measure": True}
        if self.dynamical_decoupling:
            out["dynamical_decoupling"] = {"enable": True, "sequence_type": self.dynamical_decoupling}
        return out

    @property
    def shots_per_row(self) -> int:
        """Shots each parameter row costs."""
        if self.shots:
            return self.shots
        if self.precision:
            return math.ceil(1 / self.precision**2)
        return DEFAULT_SHOTS
