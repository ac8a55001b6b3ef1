"""The torch engine's gate set: Qiskit's own matrices, made differentiable in the gate angle.

Every one-angle gate here is exactly ``C0 + cos(f*theta) C1 + sin(f*theta) C2`` (f = 1/2 for rotations,
1 for phase gates). The three constant matrices are read off Qiskit's ``to_matrix`` at three angles, so
conventions (qubit order, phases) are Qiskit's by construction rather than re-typed by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from qiskit.circuit import Instruction, QuantumCircuit
from qiskit.circuit import library as lib

from qsetfit.errors import QSetFitError

FIXED_GATES = {
    "id": lib.IGate,
    "x": lib.XGate,
    "y": lib.YGate,
    "z": lib.ZGate,
    "h": lib.HGate,
    "s": lib.SGate,
    "sdg": lib.SdgGate,
    "t": lib.TGate,
    "tdg": lib.TdgGate,
    "sx": lib.SXGate,
    "sxdg": lib.SXdgGate,
    "cx": lib.CXGate,
    "cy": lib.CYGate,
    "cz": lib.CZGate,
    "ch": lib.CHGate,
    "swap": lib.SwapGate,
    "iswap": lib.iSwapGate,
    "ecr": lib.ECRGate,
}
# name -> (gate class, angle frequency f)
ONE_ANGLE_GATES = {
    "rx": (lib.RXGate, 0.5),
    "ry": (lib.RYGate, 0.5),
    "rz": (lib.RZGate, 0.5),
    "p": (lib.PhaseGate, 1.0),
    "rxx": (lib.RXXGate, 0.5),
    "ryy": (lib.RYYGate, 0.5),
    "rzz": (lib.RZZGate, 0.5),
    "crx": (lib.CRXGate, 0.5),
    "cry": (lib.CRYGate, 0.5),
    "crz": (lib.CRZGate, 0.5),
    "cp": (lib.CPhaseGate, 1.0),
}
THREE_ANGLE_GATES = {"u": lib.UGate, "u3": lib.U3Gate}
SUPPORTED_GATES = sorted([*FIXED_GATES, *ONE_ANGLE_GATES, *THREE_ANGLE_GATES])
# Gates whose matrices are real: a circuit made only of these keeps a real state (the real path).
REAL_GATES = frozenset({"id", "x", "z", "h", "cx", "cz", "ch", "swap", "ry", "cry"})
IGNORED = frozenset({"barrier"})
STANDARD_CLASSES = {
    **FIXED_GATES,
    **{name: cls for name, (cls, _) in ONE_ANGLE_GATES.items()},
    **THREE_ANGLE_GATES,
}


def is_standard_gate(op: Instruction) -> bool:
    """True when ``op`` is Qiskit's own gate of its name (not a custom gate that merely reuses the name).

    Engines dispatch on names; a ``Gate("h", 1, [])`` whose definition is an X must not run as an H.
    """
    cls = STANDARD_CLASSES.get(op.name)
    if cls is None or op.base_class is not cls:
        return False
    ctrl_state = getattr(op, "ctrl_state", None)
    return ctrl_state is None or ctrl_state == (1 << op.num_ctrl_qubits) - 1


def expand_custom_gates(circuit: QuantumCircuit) -> QuantumCircuit:
    """``circuit`` with every custom gate named like a standard one replaced by its definition (recursively).

    Returns ``circuit`` itself when there is none. Other names are left alone (the engines refuse or
    translate them).

    Raises:
        QSetFitError: a custom gate that reuses a standard name has no definition.
    """
    if not any(_is_impostor(inst.operation) for inst in circuit.data):
        return circuit
    out = circuit.copy_empty_like()
    for inst in circuit.data:
        op = inst.operation
        if not _is_impostor(op):
            out.append(inst)
            continue
        if op.definition is None:
            raise QSetFitError(
                f"gate {op.name!r} is a custom {type(op).__name__} that reuses the name of Qiskit's standard "
                f"{op.name!r} gate but has no definition; give it a definition or another name"
            )
        definition = expand_custom_gates(op.definition)
        out.compose(definition, qubits=inst.qubits, clbits=inst.clbits, inplace=True, copy=False)
    return out


def _is_impostor(op: Instruction) -> bool:
    return op.name in STANDARD_CLASSES and not is_standard_gate(op)


def unsupported_gate_error(name: str) -> QSetFitError:
    """The error for a gate outside the torch engine's set, with the transpile fix."""
    return QSetFitError(
        f"gate {name!r} is not in the torch engine's gate set {SUPPORTED_GATES}; transpile the circuit "
        f"first, e.g. qiskit.transpile(circuit, basis_gates=['ry', 'rz', 'rx', 'cx'], optimization_level=0)"
    )


@cache
def _coefficients(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    cls, f = ONE_ANGLE_GATES[name]
    g0, g_quarter, g_half = (cls(t).to_matrix() for t in (0.0, math.pi / (2 * f), math.pi / f))
    c0 = (g0 + g_half) / 2
    c1 = (g0 - g_half) / 2
    c2 = g_quarter - c0
    return c0, c1, c2, f


@dataclass(frozen=True)
class GateSpec:
    """How to build one gate's matrix: fixed, or from its angle(s)."""

    name: str
    num_qubits: int
    num_angles: int


def gate_spec(name: str, num_qubits: int) -> GateSpec:
    """Validate a gate name and say how many angles it takes."""
    if name in FIXED_GATES:
        return GateSpec(name, num_qubits, 0)
    if name in ONE_ANGLE_GATES:
        return GateSpec(name, num_qubits, 1)
    if name in THREE_ANGLE_GATES:
        return GateSpec(name, num_qubits, 3)
    raise unsupported_gate_error(name)


def fixed_matrix(name: str, dtype: torch.dtype) -> torch.Tensor:
    """(g, g) matrix of a parameter-free gate, real when ``dtype`` is real (the gate must then be real)."""
    m = FIXED_GATES[name]().to_matrix()
    return _as_tensor(m, dtype)


def _as_tensor(m: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    if not dtype.is_complex:
        assert np.allclose(m.imag, 0), "complex matrix on the real path"
        return torch.tensor(m.real, dtype=dtype)
    return torch.tensor(m, dtype=dtype)


@cache
def _angle_coefficients(name: str, dtype: torch.dtype, device: str) -> tuple[torch.Tensor, ...]:
    c0, c1, c2, _ = _coefficients(name)
    return tuple(_as_tensor(c, dtype).to(device) for c in (c0, c1, c2))


def angle_matrix(name: str, theta: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(b, g, g) matrices of a parameterised gate for angles ``theta`` of shape (b, num_angles)."""
    device = theta.device
    if name in ONE_ANGLE_GATES:
        f = _coefficients(name)[3]
        t = theta[:, 0] * f  # (b,)
        mats = _angle_coefficients(name, dtype, str(device))
        cos, sin = torch.cos(t).to(dtype), torch.sin(t).to(dtype)
        return mats[0] + cos[:, None, None] * mats[1] + sin[:, None, None] * mats[2]
    th, ph, lam = theta[:, 0], theta[:, 1], theta[:, 2]
    c, s = torch.cos(th / 2), torch.sin(th / 2)
    e = lambda a: torch.polar(torch.ones_like(a), a).to(dtype)  # noqa: E731
    row0 = torch.stack([c.to(dtype), -e(lam) * s], dim=-1)
    row1 = torch.stack([e(ph) * s, e(ph + lam) * c], dim=-1)
    return torch.stack([row0, row1], dim=-2)
