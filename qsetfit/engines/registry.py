"""Engines by name, so the head never imports a simulator: ``make_engine(head_circuit, "torch")``.

Names are registered here (``torch``, ``torch-float32``); later modules add resolvers (Aer and IBM
profiles) with ``register_resolver`` without touching the head.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from qsetfit.head.circuits import HeadCircuit
from qsetfit.engines.base import Engine
from qsetfit.errors import QSetFitError

EngineFactory = Callable[..., Engine]
_FACTORIES: dict[str, EngineFactory] = {}
# A resolver maps a name it recognises to a factory (or returns None); it also lists what it knows.
_RESOLVERS: list[tuple[Callable[[str], EngineFactory | None], Callable[[], list[str]]]] = []


def register_engine(name: str, factory: EngineFactory) -> None:
    """Make ``name`` resolve to ``factory(head_circuit, **options) -> Engine``."""
    _FACTORIES[name] = factory


def register_resolver(resolve: Callable[[str], EngineFactory | None], names: Callable[[], list[str]]) -> None:
    """Add a lookup for names that are not registered one by one (e.g. backend profiles by name or path)."""
    _RESOLVERS.append((resolve, names))


def available_engines() -> list[str]:
    """Every engine name that ``make_engine`` accepts (profile paths aside)."""
    _load_builtin()
    names = list(_FACTORIES)
    for _, listed in _RESOLVERS:
        names.extend(listed())
    return sorted(set(names))


def make_engine(head_circuit: HeadCircuit, name: str, **options: Any) -> Engine:
    """Build the engine called ``name`` for ``head_circuit``.

    Simulators are checked against the memory available before they allocate: a head too wide for this
    machine is one clear error naming the limit, not a numpy ``MemoryError`` (hardware engines check the
    backend's qubit count themselves).
    """
    _load_builtin()
    if name in _FACTORIES:
        check_statevector_memory(head_circuit.num_qubits, engine=name)
        return _FACTORIES[name](head_circuit, **options)
    for resolve, _ in _RESOLVERS:
        factory = resolve(name)
        if factory is not None:
            engine = factory(head_circuit, **options)
            method = str(getattr(engine, "method", ""))  # Aer: "statevector", "density_matrix", ...
            if method:
                qubits = head_circuit.num_qubits * (2 if method == "density_matrix" else 1)
                check_statevector_memory(qubits, engine=name, method=method)
            return engine
    _refuse_noise_profile(name)
    raise QSetFitError(f"unknown engine or backend {name!r}; available: {', '.join(available_engines())}")


def _refuse_noise_profile(name: str) -> None:
    """A noise profile passed where a backend belongs: say so, and name the backends that use it."""
    from qsetfit import profiles

    if name not in profiles.profile_names("noise"):
        return
    users = [b for b in profiles.backend_profile_names() if profiles.load_backend_profile(b).noise_model == name]
    example = f"; e.g. --backend {users[0]}" if users else ""
    raise QSetFitError(f"{name!r} is a noise profile, not a backend: pass a backend profile that uses it "
                       f"({', '.join(users) or 'none ships; write one with noise_model = ' + repr(name)}){example}")


def check_statevector_memory(qubits: int, *, engine: str, batch: int = 1, copies: int = 1,
                             itemsize: int = 16, method: str = "statevector") -> None:
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
        raise QSetFitError(f"a batch of {batch} inputs needs {need / 2**30:.3g} GiB of {method} memory on "
                           f"{engine!r} but {available / 2**30:.3g} GiB is available; use a smaller batch "
                           f"(at most {available // per_state})")
    raise QSetFitError(f"a {qubits}-qubit {method} needs {need / 2**30:.3g} GiB on {engine!r} but "
                       f"{available / 2**30:.3g} GiB of memory is available: at most {fit} qubits fit here; "
                       "use a narrower head (HeadConfig qubits / --qubits) or a hardware backend profile")


def _torch_factory(dtype: torch.dtype) -> EngineFactory:
    def build(hc: HeadCircuit, **options: Any) -> Engine:
        from qsetfit.engines.torch.statevector import TorchStatevectorEngine

        return TorchStatevectorEngine(hc.circuit, hc.inputs, hc.weights, hc.observables, dtype=dtype, **options)

    return build


def _load_builtin() -> None:
    if "torch" not in _FACTORIES:
        register_engine("torch", _torch_factory(torch.float64))
        register_engine("torch-float32", _torch_factory(torch.float32))
        _load_plugins()


def _load_plugins() -> None:
    """Import the optional engine modules that register resolvers (absent ones are simply skipped)."""
    import importlib

    for module in ("qsetfit.engines.aer.engine", "qsetfit.engines.ibm.runtime"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
