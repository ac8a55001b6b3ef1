"""Backend and noise profiles: small TOML files looked up by name or path (DESIGN §3).

A backend profile (``backends/*.toml``) says how module 2 executes: engine kind, simulation method, shots,
noise model. A noise profile (``noise_models/*.toml``) says which noise: depolarizing rates and readout
error, or a snapshot of an IBM device by fake-backend name. Each is one dataclass with a documented default
for every field; ``from_toml`` rejects unknown keys with a "did you mean".

Look-up order for a name: a path to a ``.toml`` file; the ``backends/`` or ``noise_models/`` subfolder of each
folder in ``$QSETFIT_PROFILES`` (separated by ``os.pathsep``, laid out like the repository); the repository's
top-level ``backends/`` and ``noise_models/`` folders; the copies shipped inside the package
(``qsetfit/profiles_data/``). The first match wins, so users override shipped profiles by name.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar

from qsetfit.errors import QSetFitError, check_keys, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ENV_VAR = "QSETFIT_PROFILES"
ProfileKind = Literal["backend", "noise"]
_FOLDERS = {"backend": "backends", "noise": "noise_models"}
ENGINE_KINDS = ("aer", "ibm", "torch")
METHODS = ("statevector", "density_matrix")
NOISE_KINDS = ("none", "depolarizing", "device")
MODES = ("job", "batch", "session")
LOCAL_MODES = ("compact", "narrow", "device")
P = TypeVar("P", bound="_Profile")


class _Profile:
    """TOML loading shared by the profile dataclasses (fields ``name`` and ``source`` are not TOML keys)."""

    _KIND: ProfileKind

    @classmethod
    def keys(cls) -> list[str]:
        """The keys a TOML file of this kind may set."""
        return [f.name for f in fields(cls) if f.name not in ("name", "source")]  # type: ignore[arg-type]

    @classmethod
    def _check_keys(cls, values: dict[str, Any], what: str) -> None:
        """Raise on the first unknown key, naming the nearest valid one; ``what`` formats the key."""
        check_keys(values, cls.keys(), what)

    @classmethod
    def from_dict(cls: type[P], values: dict[str, Any], *, name: str = "", source: str = "") -> P:
        """Build from TOML values, rejecting unknown keys (with the nearest valid one) and wrong types."""
        where = f" in {source}" if source else ""
        cls._check_keys(values, f"key {{!r}}{where}")
        types = {f.name: f.type for f in fields(cls)}  # type: ignore[arg-type]
        for key, value in values.items():
            _check_type(key, value, str(types[key]), where)
        try:
            return cls(name=name, source=source, **values)  # type: ignore[call-arg]
        except QSetFitError as exc:
            raise QSetFitError(f"{exc}{where}") from None

    @classmethod
    def from_toml(cls: type[P], path: str | Path) -> P:
        """Load a TOML file; the profile is named after the file (``aer-shots.toml`` -> ``aer-shots``)."""
        path = Path(path)
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise QSetFitError(f"profile file {str(path)!r} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise QSetFitError(f"{path} is not valid TOML: {exc}") from None
        return cls.from_dict(values, name=path.stem, source=str(path))

    def replace(self: P, **overrides: Any) -> P:
        """A copy with some fields changed, checked like a TOML file (e.g. ``shots=4096``)."""
        type(self)._check_keys(overrides, f"option {{!r}} for profile {self.name!r}")  # type: ignore[attr-defined]
        values = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("name", "source")}  # type: ignore[call-overload]
        values.update(overrides)
        return type(self).from_dict(values, name=self.name, source=self.source)  # type: ignore[attr-defined]


def _check_type(key: str, value: Any, annotation: str, where: str) -> None:
    ok = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "int | None": value is None or (isinstance(value, int) and not isinstance(value, bool)),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "list[str]": isinstance(value, list) and all(isinstance(v, str) for v in value),
    }.get(annotation, True)
    if not ok:
        raise QSetFitError(f"key {key!r}{where} must be of type {annotation}, got {value!r}")


@dataclass(frozen=True)
class BackendProfile(_Profile):
    """How module 2 executes (``backends/<name>.toml``).

    Attributes:
        name: the profile name (the file stem; not a TOML key).
        source: the file it came from (not a TOML key).
        description: one line shown by ``list_profiles`` / ``qsetfit backends``.
        engine: "aer" (local Aer simulation), "ibm" (qiskit-ibm-runtime, QPUs or fake backends) or "torch" (the
            noisy torch engine, ``engines/torch/noisy.py``: density matrices or Pauli-error trajectories).
        method: Aer simulation method, "statevector" or "density_matrix"; never Aer's "automatic", which
            silently switches to 1,024-shot trajectories above ~10 qubits (QISKIT-PITFALLS 7).
        shots: 0 = exact expectation values; > 0 = finite-shot sampling: every call measures in the
            computational basis and Aer samples ``shots`` outcomes per input, with a fresh seed per call.
        noise_model: a noise profile name or path (``noise_models/``), or "none".
        density_matrix_max_qubits: a noisy "density_matrix" run on more qubits than this falls back to
            statevector trajectories, and the engine reports it. A density matrix costs like a statevector
            of twice the qubits: 8 qubits ~0.3-3 s per input on 2 shared cores (as much as ~200 trajectories),
            14 qubits 4 GiB per input.
        trajectories: noisy statevector runs without shots average <O> over this many noise trajectories per
            input (unbiased; the standard error shrinks as 1/sqrt(trajectories)).
        threads: Aer's ``max_parallel_threads`` (0 = all cores). 1 is often faster on a busy machine, where
            OpenMP threads of a density matrix wait on each other.
        seed: seeds the sequence of per-call simulator seeds (reproducible yet fresh per call);
            omitted = nondeterministic.
        max_pub_rows: most parameter rows per PUB in the batched gradient (QISKIT-PITFALLS 8).
        backend: engine "ibm": the IBM backend or fake backend name (e.g. "fake_torino", "ibm_torino").
        mode: engine "ibm": "job", "batch" or "session".
        local: engine "ibm" on a fake backend (local testing mode): "compact" (Aer with the device noise on the
            qubits the device transpile uses), "narrow" (compact, but the head is routed within exactly as many
            connected device qubits as it has: far cheaper to simulate when the device transpile borrows more,
            e.g. a 10-qubit head on fake_torino gets a 12-qubit ring, ~14 s instead of ~70-105 s for one input
            on a loaded core; but ~1.8x the two-qubit gates the device itself would run, so its accuracy is
            not a faithful device estimate) or "device" (the fake backend instance itself; slow on 100+ qubit
            devices).
            Real devices refuse anything but "compact".
        optimization_level: transpiler level for ISA circuits (device noise on Aer, and engine "ibm");
            level 1 picks poor layouts on heavy-hex devices (QISKIT-PITFALLS 10).
        resilience_level: engine "ibm": Runtime error-mitigation level.
        seed_transpiler: fixes the layout and routing, so one ISA circuit serves every call and run.
        precision: engine "ibm": target precision when ``shots`` is 0 (0: the service default).
        twirling: engine "ibm": Pauli twirling of gates and measurements (real devices).
        dynamical_decoupling: engine "ibm": a DD sequence such as "XY4" ("" = off; real devices).
        channel: engine "ibm": "ibm_quantum_platform" (default when empty).
        instance: engine "ibm": the instance CRN (or set QISKIT_IBM_INSTANCE); never a token.
        qpu_power_w: ``qsetfit energy``: the QPU system's electrical power in W (refrigerator, control
            electronics); 0 = the documented default (``qsetfit.bench.energy.DEFAULT_QPU_POWER_W``, 25 kW).
        qpu_circuit_duration_s: ``qsetfit energy``: one circuit's duration in s at the head's width, for a
            backend without timing data (0 = the ISA circuit scheduled with the backend target's durations).
        qpu_rep_delay_s: ``qsetfit energy``: delay between shots in s (0 = the backend's default_rep_delay).
        qpu_overhead_s: ``qsetfit energy``: QPU seconds per circuit beyond its shots (0 = none counted).
    """

    _KIND = "backend"
    name: str = ""
    source: str = ""
    description: str = ""
    engine: str = "aer"
    method: str = "statevector"
    shots: int = 0
    noise_model: str = "none"
    density_matrix_max_qubits: int = 8
    trajectories: int = 200
    threads: int = 0
    seed: int | None = None
    max_pub_rows: int = 1024
    backend: str = ""
    mode: str = "batch"
    local: str = "compact"
    optimization_level: int = 3
    resilience_level: int = 1
    seed_transpiler: int = 1234
    precision: float = 0.0
    twirling: bool = False
    dynamical_decoupling: str = ""
    channel: str = ""
    instance: str = ""
    qpu_power_w: float = 0.0
    qpu_circuit_duration_s: float = 0.0
    qpu_rep_delay_s: float = 0.0
    qpu_overhead_s: float = 0.0

    def __post_init__(self) -> None:
        _one_of("engine", self.engine, ENGINE_KINDS)
        _one_of("method", self.method, METHODS, hint="pin 'statevector' or 'density_matrix' (never 'automatic')")
        _one_of("mode", self.mode, MODES)
        _one_of("local", self.local, LOCAL_MODES, hint="(local testing mode on a fake backend, engine = 'ibm')")
        if self.local != "compact" and self.engine != "ibm":
            raise QSetFitError(f"local = {self.local!r} is for engine = 'ibm' on a fake backend; remove the key")
        for key in (
            "shots",
            "density_matrix_max_qubits",
            "threads",
            "qpu_power_w",
            "qpu_circuit_duration_s",
            "qpu_rep_delay_s",
            "qpu_overhead_s",
        ):
            if getattr(self, key) < 0:
                raise QSetFitError(f"{key} must be >= 0, got {getattr(self, key)}")
        for key in ("trajectories", "max_pub_rows"):
            if getattr(self, key) < 1:
                raise QSetFitError(f"{key} must be >= 1, got {getattr(self, key)}")
        if not 0 <= self.optimization_level <= 3:
            raise QSetFitError(f"optimization_level must be in 0..3, got {self.optimization_level}")
        if self.engine == "aer" and self.backend:
            raise QSetFitError(
                f"backend = {self.backend!r} is for engine = 'ibm'; for device noise on Aer set "
                f"noise_model to a device noise profile (e.g. noise_model = '{self.backend}')"
            )
        if self.engine == "ibm" and not self.backend:
            raise QSetFitError("engine = 'ibm' needs backend = '<name>' (e.g. 'fake_torino' or 'ibm_torino')")


@dataclass(frozen=True)
class NoiseProfile(_Profile):
    """Which noise a simulation applies (``noise_models/<name>.toml``).

    Attributes:
        name: the profile name (the file stem; not a TOML key).
        source: the file it came from (not a TOML key).
        description: one line shown by ``list_profiles``.
        kind: "none", "depolarizing" (``p1``, ``p2``, readout) or "device" (``NoiseModel.from_backend`` of the
            fake backend ``backend``; circuits are transpiled to that device's ISA first, because its noise
            only hits ISA gates, QISKIT-PITFALLS 6).
        p1: one-qubit depolarizing parameter (``qiskit_aer.noise.depolarizing_error(p1, 1)``) after each
            gate in ``gates_1q``: rho -> (1 - p1) rho + p1 I/2.
        p2: two-qubit depolarizing parameter after each gate in ``gates_2q``.
        readout: symmetric readout error: a measured bit flips with this probability.
        readout_p01: asymmetric readout, P(read 1 | qubit in 0); give these two or ``readout``, not both.
        readout_p10: asymmetric readout, P(read 0 | qubit in 1).
        gates_1q: gate names the one-qubit error follows; they must be the circuit's gates (qsetfit's head
            is ry/cx; ISA circuits are rz/sx/x and cz or ecr) or the noise silently does nothing.
        gates_2q: gate names the two-qubit error follows.
        backend: kind "device": fake backend name, e.g. "fake_torino" (``qiskit_ibm_runtime.fake_provider``).
    """

    _KIND = "noise"
    name: str = ""
    source: str = ""
    description: str = ""
    kind: str = "depolarizing"
    p1: float = 0.0
    p2: float = 0.0
    readout: float = 0.0
    readout_p01: float = 0.0
    readout_p10: float = 0.0
    gates_1q: list[str] = field(default_factory=lambda: ["rx", "ry", "rz", "h", "x", "sx"])
    gates_2q: list[str] = field(default_factory=lambda: ["cx", "cz", "ecr"])
    backend: str = ""

    def __post_init__(self) -> None:
        _one_of("kind", self.kind, NOISE_KINDS)
        for key in ("p1", "p2", "readout", "readout_p01", "readout_p10"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise QSetFitError(f"{key} must be a probability in [0, 1], got {getattr(self, key)}")
        if self.readout and (self.readout_p01 or self.readout_p10):
            raise QSetFitError("give either readout (symmetric) or readout_p01/readout_p10 (asymmetric), not both")
        if self.kind == "device" and not self.backend:
            raise QSetFitError("kind = 'device' needs backend = '<fake backend name>', e.g. 'fake_torino'")
        if self.kind != "device" and self.backend:
            raise QSetFitError(f"backend = {self.backend!r} is only used with kind = 'device'")
        if self.kind == "device" and (self.p1 or self.p2 or self.readout or self.readout_p01 or self.readout_p10):
            raise QSetFitError("kind = 'device' takes its rates from the backend; remove p1/p2/readout*")

    @property
    def readout_flips(self) -> tuple[float, float]:
        """(p01, p10): P(read 1 | 0) and P(read 0 | 1) for every qubit."""
        if self.readout:
            return self.readout, self.readout
        return self.readout_p01, self.readout_p10

    @property
    def is_ideal(self) -> bool:
        """True when the profile adds no noise at all."""
        return self.kind == "none" or (
            self.kind == "depolarizing" and not (self.p1 or self.p2 or any(self.readout_flips))
        )


def _one_of(key: str, value: str, allowed: tuple[str, ...], *, hint: str = "") -> None:
    if value not in allowed:
        near = did_you_mean(value, allowed)
        extra = f"; did you mean {near[0]!r}?" if near else ""
        tail = f" {hint}" if hint else ""
        raise QSetFitError(f"{key} must be one of {', '.join(allowed)}, got {value!r}{extra}{tail}")


# ---- look-up ------------------------------------------------------------------------------------------
def profile_dirs(kind: ProfileKind) -> list[Path]:
    """Folders searched for profiles of ``kind``, first match wins (see the module docstring)."""
    sub = _FOLDERS[kind]
    dirs: list[Path] = []
    for entry in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if entry:
            dirs.append(Path(entry) / sub)
    package = Path(__file__).resolve().parent
    dirs += [package.parent / sub, package / "profiles_data" / sub]
    return [d for d in dirs if d.is_dir()]


def is_profile_path(text: str) -> bool:
    """Whether ``text`` names a profile file (a ``.toml`` or a path) rather than a profile name."""
    return text.endswith(".toml") or os.sep in text or bool(os.altsep and os.altsep in text)


def _find(kind: ProfileKind, name_or_path: str | Path) -> Path | None:
    text = str(name_or_path)
    if is_profile_path(text):
        path = Path(text).expanduser()
        if not path.is_file():
            raise QSetFitError(f"{kind} profile file {text!r} not found")
        return path
    for folder in profile_dirs(kind):
        path = folder / f"{text}.toml"
        if path.is_file():
            return path
    return None


def profile_names(kind: ProfileKind) -> list[str]:
    """Names of every profile of ``kind`` found in the search folders."""
    return sorted({p.stem for d in profile_dirs(kind) for p in d.glob("*.toml")})


def _load(cls: type[P], kind: ProfileKind, name_or_path: str | Path) -> P:
    path = _find(kind, name_or_path)
    if path is None:
        names = profile_names(kind)
        near = did_you_mean(str(name_or_path), names)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise QSetFitError(
            f"unknown {kind} profile {str(name_or_path)!r}; {hint}available: {', '.join(names) or '(none)'} "
            f"(or give a path to a .toml file, or add a folder to ${ENV_VAR})"
        )
    return cls.from_toml(path)


def load_backend_profile(name_or_path: str | Path) -> BackendProfile:
    """A backend profile by name (``"aer-shots"``) or path (``"my/profile.toml"``)."""
    return _load(BackendProfile, "backend", name_or_path)


def load_noise_profile(name_or_path: str | Path) -> NoiseProfile:
    """A noise profile by name (``"depolarizing-1e-3"``) or path; ``"none"`` is the ideal profile."""
    if str(name_or_path) == "none":
        return NoiseProfile(name="none", kind="none", description="no noise")
    return _load(NoiseProfile, "noise", name_or_path)


class ProfileInfo(NamedTuple):
    """One row of ``list_profiles``."""

    kind: ProfileKind
    name: str
    description: str
    path: str


def list_profiles(kind: ProfileKind | None = None) -> list[ProfileInfo]:
    """Every available profile (backend profiles first), with its one-line description and file."""
    rows = []
    for k in ("backend", "noise") if kind is None else (kind,):
        for name in profile_names(k):
            path = _find(k, name)
            try:
                profile = (BackendProfile if k == "backend" else NoiseProfile).from_toml(path)  # type: ignore[arg-type]
                description = profile.description
            except QSetFitError as exc:
                description = f"(invalid: {exc})"
            rows.append(ProfileInfo(k, name, description, str(path)))
    return rows
