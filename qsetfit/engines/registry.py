"""Engines by name, so the head never imports a simulator: ``make_engine(head_circuit, "torch")``.

Names are registered here (``torch``, ``torch-float32``); later modules add resolvers (Aer and IBM
profiles) with ``register_resolver`` without touching the head.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from qsetfit.circuits import HeadCircuit
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
    """Build the engine called ``name`` for ``head_circuit``."""
    _load_builtin()
    if name in _FACTORIES:
        return _FACTORIES[name](head_circuit, **options)
    for resolve, _ in _RESOLVERS:
        factory = resolve(name)
        if factory is not None:
            return factory(head_circuit, **options)
    raise QSetFitError(f"unknown engine or backend {name!r}; available: {', '.join(available_engines())}")


def _torch_factory(dtype: torch.dtype) -> EngineFactory:
    def build(hc: HeadCircuit, **options: Any) -> Engine:
        from qsetfit.engines.torch_sv import TorchStatevectorEngine

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

    for module in ("qsetfit.engines.aer", "qsetfit.engines.runtime"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
