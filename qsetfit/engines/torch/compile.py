"""The torch engine's compiler front end: a circuit's gates and affine angle rows, and gate fusion into blocks.

Shared by the fused statevector engine (``statevector.py``) and the gate-by-gate noisy engine (``density.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qiskit.circuit import Parameter, ParameterExpression, QuantumCircuit

from qsetfit.engines.torch.gates import (
    IGNORED,
    expand_custom_gates,
    gate_spec,
    is_standard_gate,
    unsupported_gate_error,
)
from qsetfit.errors import QSetFitError
from qsetfit.head.angles import affine_terms, constant_term


@dataclass
class ParsedGate:
    name: str
    qubits: tuple[int, ...]
    slots: list[int]  # rows of the angle tables; empty for fixed gates
    input_dependent: bool


@dataclass
class Block:
    qubits: list[int] = field(default_factory=list)  # local big-endian order once compiled
    gates: list[int] = field(default_factory=list)
    input_dependent: bool = False


def linear_terms(expr: ParameterExpression | float, index: dict[Parameter, tuple[str, int]]) -> tuple[dict, float]:
    """Split a gate angle into {(kind, column): coefficient} + constant; only affine angles are allowed."""
    if not isinstance(expr, ParameterExpression):
        return {}, float(expr)
    for p in expr.parameters:
        if p not in index:
            raise QSetFitError(f"circuit parameter {p} is neither an input nor a weight of the engine")
    terms = affine_terms(expr, index)
    if terms is None:
        bad = next(p for p in expr.parameters if getattr(expr.gradient(p), "parameters", None))
        raise QSetFitError(f"gate angle {expr} is not affine in {bad}; the torch engine needs a*p + b")
    return terms, constant_term(expr)


def parse_circuit(circuit: QuantumCircuit, index: dict[Parameter, tuple[str, int]]) -> tuple[list[ParsedGate], list]:
    """The circuit's gates (standard gates of the set only; custom look-alikes expanded) and angle rows.

    Args:
        circuit: the circuit.
        index: each parameter's ("x" or "w", column).

    Returns:
        (gates, rows): rows[slot] = ({(kind, column): coefficient}, constant) for every angle slot.
    """
    circuit = expand_custom_gates(circuit)
    gates: list[ParsedGate] = []
    rows: list = []
    for inst in circuit.data:
        op = inst.operation
        if op.name in IGNORED:
            continue
        if op.name in ("measure", "reset") or not hasattr(op, "params") or not is_standard_gate(op):
            raise unsupported_gate_error(op.name)
        spec = gate_spec(op.name, op.num_qubits)
        qubits = tuple(circuit.find_bit(q).index for q in inst.qubits)
        slots, dep = [], False
        for angle in op.params[: spec.num_angles]:
            terms, c = linear_terms(angle, index)
            dep |= any(kind == "x" for kind, _ in terms)
            slots.append(len(rows))
            rows.append((terms, c))
        gates.append(ParsedGate(op.name, qubits, slots, dep))
    return gates, rows


def ring_span(qubits: set[int], n: int) -> int:
    """Width of the smallest window of consecutive qubits, on the ring 0..n-1, that holds ``qubits``."""
    order = sorted(qubits)
    gaps = [(order[(i + 1) % len(order)] - q) % n or n for i, q in enumerate(order)]
    return n - max(gaps) + 1


def fuse(gates: list[ParsedGate], num_qubits: int, max_width: int) -> list[Block]:
    """Greedy fusion into blocks spanning <= max_width consecutive qubits (cyclically).

    A gate joins the newest block that stays within that span, provided no block after that one touches
    the gate's qubits (so moving the gate there is exact). Requiring consecutive qubits, rather than any
    k qubits, keeps blocks contiguous in the state's memory layout, so they apply without transposes.
    """
    blocks: list[Block] = []
    last = [-1] * num_qubits
    for gi, g in enumerate(gates):
        earliest = max(0, *(last[q] for q in g.qubits))
        b = next(
            (
                j
                for j in range(len(blocks) - 1, earliest - 1, -1)
                if ring_span(set(blocks[j].qubits) | set(g.qubits), num_qubits) <= max_width
            ),
            -1,
        )
        if b < 0:
            blocks.append(Block())
            b = len(blocks) - 1
        block = blocks[b]
        block.qubits.extend(q for q in g.qubits if q not in block.qubits)
        block.gates.append(gi)
        block.input_dependent |= g.input_dependent
        for q in g.qubits:
            last[q] = b
    for block in blocks:  # pad each block to its whole window (identity on the gaps): always contiguous
        block.qubits = ring_window(set(block.qubits), num_qubits)
    return blocks


def ring_window(qubits: set[int], n: int) -> list[int]:
    """The consecutive qubits (cyclically) of the smallest window holding ``qubits``."""
    order = sorted(qubits)
    if len(order) == n:
        return order
    gaps = [((order[(i + 1) % len(order)] - q) % n or n, i) for i, q in enumerate(order)]
    _, i = max(gaps)
    start = order[(i + 1) % len(order)]
    return [(start + j) % n for j in range(ring_span(qubits, n))]
