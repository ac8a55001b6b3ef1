"""The one engine registry, so the head never imports a simulator: ``make_engine(head_circuit, "torch")``.

A name resolves, in order, to: a named engine (``torch``, ``torch-float32``, or one added with
``register_engine``); a backend profile (by name or ``.toml`` path), built by the engine kind its ``engine``
field names (``aer``, ``ibm``, ``torch``: the tables below, imported when first used, never registered as an
import side effect; more with ``register_engine_kind``); a user resolver (``register_resolver``).
"""

from __future__ import annotations

import math
import importlib
import importlib.util
from typing import Any
from collections.abc import Callable

from qsetfit import profiles
from qsetfit.engines.base import Engine
from qsetfit.errors import QSetFitError, did_you_mean
from qsetfit.head.circuits import HeadCircuit

EngineFactory = Callable[..., Engine]
EngineBuilder = Callable[..., Engine]  # builder(head_circuit, profile, **options) for a backend profile
# module:function of each built-in engine, imported on first use (Aer and IBM stay unimported for "torch").
_BUILTIN: dict[str, str] = {
    "torch": "qsetfit.engines.torch.statevector:torch_float64",
    "torch-float32": "qsetfit.engines.torch.statevector:torch_float32",
}
_PROFILE_KINDS: dict[str, str] = {
    "aer": "qsetfit.engines.aer.engine:engine_from_profile",
    "ibm": "qsetfit.engines.ibm.runtime:engine_from_profile",
    "torch": "qsetfit.engines.torch.noisy:engine_from_profile",
}
_FACTORIES: dict[str, EngineFactory] = {}
_KINDS: dict[str, EngineBuilder] = {}
# A resolver maps a name it recognises to a factory (or returns None); it also lists what it knows.
_RESOLVERS: list[tuple[Callable[[str], EngineFactory | None], Callable[[], list[str]]]] = []


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make ``name`` resolve to ``factory(head_circuit, **options) -> Engine``."""
    _FACTORIES[name] = factory


def register_engine_kind(kind: str, builder: EngineBuilder) -> None:
    """Make backend profiles with ``engine = kind`` run on ``builder(head_circuit, profile, **options)``."""
    _KINDS[kind] = builder


def register_resolver(resolve: Callable[[str], EngineFactory | None], names: Callable[[], list[str]]) -> None:
    """Add a lookup for names that are not registered one by one (e.g. backend profiles by name or path)."""
    _RESOLVERS.append((resolve, names))


def available_engines() -> list[str]:
    """Every engine name that ``make_engine`` accepts (profile paths aside)."""
    names = [*_BUILTIN, *_FACTORIES, *profiles.profile_names("backend")]
    for _, listed in _RESOLVERS:
        names.extend(listed())
    return sorted(set(names))


def make_engine(head_circuit: HeadCircuit, name: str, **options: Any) -> Engine:
    """Build the engine called ``name`` for ``head_circuit``.

    Simulators are checked against the memory available before they allocate: a head too wide for this
    machine is one clear error naming the limit, not a numpy ``MemoryError`` (hardware engines check the
    backend's qubit count themselves).
    """
    named = _FACTORIES.get(name) or (_imported(_BUILTIN[name]) if name in _BUILTIN else None)
    if named is not None:
        check_statevector_memory(head_circuit.num_qubits, engine=name)
        return named(head_circuit, **options)
    factory = _profile_factory(name) or _user_factory(name)
    if factory is not None:
        engine = factory(head_circuit, **options)
        method = engine.describe().method
        if method in ("statevector", "density_matrix", "statevector_trajectories", "trajectories"):
            qubits = head_circuit.num_qubits * (2 if method == "density_matrix" else 1)
            check_statevector_memory(qubits, engine=name, method=method)
        return engine
    _refuse_noise_profile(name)
    known = available_engines()
    guess = did_you_mean(name, known)
    hint = f"; did you mean {guess[0]!r}" if guess else ""
    raise QSetFitError(f"unknown engine or backend {name!r}{hint}; available: {', '.join(known)}")


def engine_kind(name: str) -> str | None:
    """The kind of engine ``name`` runs on: "torch" for named engines, a backend profile's ``engine`` field
    ("aer", "ibm", "torch"), or None for a name no built-in lookup knows (a user resolver's)."""
    if name in _FACTORIES:  # looked up first by make_engine: a user's engine, of no known kind
        return None
    if name in _BUILTIN:
        return "torch"
    return profiles.load_backend_profile(name).engine if _is_backend_profile(name) else None


def build_engine(head_circuit: Any, profile: profiles.BackendProfile, **options: Any) -> Engine:
    """The engine a backend profile describes, for ``head_circuit``."""
    builder = _KINDS.get(profile.engine)
    if builder is None and profile.engine in _PROFILE_KINDS:
        builder = _imported(_PROFILE_KINDS[profile.engine], optional=True)
    if builder is None:
        known = sorted(set(_KINDS) | {k for k, target in _PROFILE_KINDS.items() if _importable(target)})
        raise QSetFitError(
            f"backend profile {profile.name!r} uses engine = {profile.engine!r}, which this installation does "
            f"not provide ({_PROFILE_KINDS.get(profile.engine, '?').split(':')[0]} is missing); engines "
            f"available: {', '.join(known) or '(none)'}"
        )
    return builder(head_circuit, profile, **options)


def _is_backend_profile(name: str) -> bool:
    return profiles.is_profile_path(name) or name in profiles.profile_names("backend")


def _profile_factory(name: str) -> EngineFactory | None:
    if not _is_backend_profile(name):
        return None
    profile = profiles.load_backend_profile(name)
    return lambda head_circuit, **options: build_engine(head_circuit, profile, **options)


def _user_factory(name: str) -> EngineFactory | None:
    """The first user resolver (``register_resolver``) that knows ``name``."""
    for resolve, _ in _RESOLVERS:
        factory = resolve(name)
        if factory is not None:
            return factory
    return None


def _imported(target: str, *, optional: bool = False) -> Any:
    """``module:attribute`` imported now (engines load on first use); None if ``optional`` and absent."""
    module, _, attribute = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except ModuleNotFoundError as exc:
        if optional and exc.name == module:
            return None
        raise


def _importable(target: str) -> bool:
    return importlib.util.find_spec(target.partition(":")[0]) is not None


def _refuse_noise_profile(name: str) -> None:
    """A noise profile passed where a backend belongs: say so, and name the backends that use it."""
    if name not in profiles.profile_names("noise"):
        return
    users = [b for b in profiles.profile_names("backend") if profiles.load_backend_profile(b).noise_model == name]
    example = f"; e.g. --backend {users[0]}" if users else ""
    raise QSetFitError(
        f"{name!r} is a noise profile, not a backend: pass a backend profile that uses it "
        f"({', '.join(users) or 'none ships; write one with noise_model = ' + repr(name)}){example}"
    )


def check_statevector_memory(
    qubits: int, *, engine: str, batch: int = 1, copies: int = 1, itemsize: int = 16, method: str = "statevector"
) -> None:
    """Refuse a simulation whose ``batch`` states of 2**qubits amplitudes (``copies`` each) exceed free memory.

    The torch engine and Aer cut large batches into memory-bounded chunks, so ``make_engine`` checks one
    state; ``batch`` is for callers that hold a whole batch at once.

    Args:
        qubits: the qubits of one simulated state (2 x the head's for a density matrix).
        engine: the engine name, for the message.
        batch: states held at once.
        copies: working copies per state.
        itemsize: bytes per amplitude (complex128: 16).
        method: the simulation method, for the message.
    """
    import psutil

    available = psutil.virtual_memory().available
    need = batch * copies * itemsize * 2.0**qubits
    if need <= available:
        return
    per_state = copies * itemsize * 2**qubits
    fit = max(0, int(math.log2(max(available, 1) / (batch * copies * itemsize))))
    if per_state <= available:
        raise QSetFitError(
            f"a batch of {batch} inputs needs {need / 2**30:.3g} GiB of {method} memory on "
            f"{engine!r} but {available / 2**30:.3g} GiB is available; use a smaller batch "
            f"(at most {available // per_state})"
        )
    raise QSetFitError(
        f"a {qubits}-qubit {method} needs {need / 2**30:.3g} GiB on {engine!r} but "
        f"{available / 2**30:.3g} GiB of memory is available: at most {fit} qubits fit here; "
        "use a narrower head (HeadConfig qubits / --qubits) or a hardware backend profile"
    )
