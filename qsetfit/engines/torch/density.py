"""A circuit as a gate-by-gate program with a depolarizing rate per gate, and exact density-matrix evolution.

The noisy torch engine (``noisy.py``) needs the state between every two gates, because a noise channel
follows each gate; the fused blocks of ``statevector.py`` skip those states. So the circuit is compiled here into
a flat list of gates (matrices built with ``gates.py``, angles affine in inputs and weights as in
``statevector.py``), each with the parameter of the depolarizing channel that follows it.

Density matrices: ``rho`` (B, 2^n, 2^n) is stored flat as a state of 2n qubits, (B, 4^n): column bits are
qubits 0..n-1 and row bits qubits n..2n-1, so ``U rho U^dagger`` is U on the row qubits and conj(U) on the
column qubits, each one ``apply_matrix``. Aer's ``depolarizing_error(lam, k)`` on qubits S is
``rho -> (1 - lam) rho + lam Tr_S(rho) (x) I/2^k`` (every one of the 4^k Paulis with probability lam/4^k),
applied here as that partial trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from torch import nn

from qsetfit.engines.torch.gates import REAL_GATES, angle_matrix, fixed_matrix
from qsetfit.engines.torch.compile import parse_circuit
from qsetfit.errors import QSetFitError


@dataclass(frozen=True)
class Gate:
    """One gate of a program: name, qubits (Qiskit order), its rows of the angle tables, its noise parameter."""

    name: str
    qubits: tuple[int, ...]
    slots: tuple[int, ...]
    input_dependent: bool
    depolarizing: float


class GateProgram(nn.Module):
    """A parameterised circuit as gates, angle tables ``angles = const + A_w w + A_x x`` and per-gate noise.

    Args:
        circuit: gates from ``gates.SUPPORTED_GATES``, angles affine in the parameters.
        inputs: input parameters (columns of x).
        weights: weight parameters (entries of w).
        depolarizing: the depolarizing parameter after each gate of ``circuit.data`` that is not ignored
            (``noisy.depolarizing_rates`` gives it; custom gates must be expanded first with
            ``gates.expand_custom_gates``), or None for no gate noise.
        dtype: torch.float64 or torch.float32 (complex gate sets use the matching complex type).
    """

    a_x: torch.Tensor
    a_w: torch.Tensor
    const: torch.Tensor
    dtype: torch.dtype

    def __init__(
        self,
        circuit: QuantumCircuit,
        inputs: list[Parameter],
        weights: list[Parameter],
        depolarizing: list[float] | None = None,
        *,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__()
        self.num_qubits = circuit.num_qubits
        index = {p: ("x", i) for i, p in enumerate(inputs)} | {p: ("w", i) for i, p in enumerate(weights)}
        parsed, rows = parse_circuit(circuit, index)  # the torch engine's gate set and angle rule
        if depolarizing is not None and len(depolarizing) != len(parsed):
            raise QSetFitError(f"{len(depolarizing)} noise rates for {len(parsed)} gates")
        gates = [
            Gate(
                g.name,
                g.qubits,
                tuple(g.slots),
                g.input_dependent,
                0.0 if depolarizing is None else float(depolarizing[i]),
            )
            for i, g in enumerate(parsed)
        ]
        self.gates = gates
        real = dtype if dtype in (torch.float64, torch.float32) else None
        if real is None:
            raise QSetFitError(f"dtype must be torch.float64 or torch.float32, got {dtype}")
        self.real = all(g.name in REAL_GATES for g in gates)
        self.dtype = real if self.real else (torch.complex128 if real == torch.float64 else torch.complex64)
        a_x, a_w, const = np.zeros((len(rows), len(inputs))), np.zeros((len(rows), len(weights))), np.zeros(len(rows))
        for r, (terms, c) in enumerate(rows):
            const[r] = c
            for (kind, col), coeff in terms.items():
                (a_x if kind == "x" else a_w)[r, col] += coeff
        self.register_buffer("a_x", torch.tensor(a_x, dtype=real), persistent=False)
        self.register_buffer("a_w", torch.tensor(a_w, dtype=real), persistent=False)
        self.register_buffer("const", torch.tensor(const, dtype=real), persistent=False)
        for name in {g.name for g in gates if not g.slots}:
            self.register_buffer(f"fixed_{name}", fixed_matrix(name, self.dtype), persistent=False)

    def matrices(self, x: torch.Tensor, w: torch.Tensor) -> list[torch.Tensor]:
        """Each gate's matrix, (1, d, d) when shared by the batch, (B, d, d) when it depends on the inputs."""
        real = self.a_w.dtype
        x, w = x.to(real), w.to(real)
        base = self.const + self.a_w @ w  # (n_slots,)
        xin = x @ self.a_x.T  # (B, n_slots)
        mats = []
        for g in self.gates:
            if not g.slots:
                mats.append(getattr(self, f"fixed_{g.name}")[None])
                continue
            idx = list(g.slots)
            theta = base[idx][None] + xin[:, idx] if g.input_dependent else base[idx][None]  # (1 or B, n)
            mats.append(angle_matrix(g.name, theta, self.dtype))
        return mats


def apply_matrix(state: torch.Tensor, mat: torch.Tensor, qubits: tuple[int, ...], m: int) -> torch.Tensor:
    """(R, 2^m) ``state`` with the (1 or R, d, d) gate ``mat`` applied to ``qubits`` (Qiskit order)."""
    rows, k = state.shape[0], len(qubits)
    axes = [m - q for q in reversed(qubits)]  # tensor axis of each qubit, big-endian within the gate
    tail = list(range(m + 1 - k, m + 1))
    moved = state.reshape(rows, *([2] * m)).movedim(axes, tail)
    shape = moved.shape
    flat = moved.reshape(rows, -1, 2**k) @ mat.transpose(-1, -2)  # new_i = sum_j U_ij old_j
    return flat.reshape(shape).movedim(tail, axes).reshape(rows, -1)


def apply_paulis(state: torch.Tensor, codes: torch.Tensor, qubits: tuple[int, ...], m: int) -> torch.Tensor:
    """Apply, row by row, the Pauli string ``codes[r]`` (2 bits per gate qubit: 1 X, 2 Y, 3 Z) on ``qubits``.

    Y is applied as XZ: it differs from Y by the global phase i, which no expectation value sees.
    """
    rows = state.shape[0]
    t = state.reshape(rows, *([2] * m))
    for j, q in enumerate(qubits):
        digit = (codes >> (2 * j)) & 3  # (R,)
        ax = m - q
        view = [rows] + [1] * m
        view[ax] = 2
        sign = torch.ones(rows, 2, dtype=t.real.dtype if t.is_complex() else t.dtype, device=t.device)
        sign[:, 1] = torch.where(digit >= 2, -1.0, 1.0)
        t = t * sign.reshape(view)
        flip = ((digit == 1) | (digit == 2)).reshape([rows] + [1] * m)
        t = torch.where(flip, t.flip(ax), t)
    return t.reshape(rows, -1)


def depolarize(rho: torch.Tensor, lam: float, qubits: tuple[int, ...], n: int) -> torch.Tensor:
    """``(1 - lam) rho + lam Tr_S(rho) (x) I/2^k`` on a flat (R, 4^n) density matrix (module docstring)."""
    rows, k, m = rho.shape[0], len(qubits), 2 * n
    d = 2**k
    axes = [m - (q + n) for q in reversed(qubits)] + [m - q for q in reversed(qubits)]  # row bits, column bits
    tail = list(range(m + 1 - 2 * k, m + 1))
    moved = rho.reshape(rows, *([2] * m)).movedim(axes, tail)
    shape = moved.shape
    blocks = moved.reshape(rows, -1, d, d)
    trace = blocks.diagonal(dim1=-2, dim2=-1).sum(-1)  # (R, M)
    eye = torch.eye(d, dtype=rho.dtype, device=rho.device)
    mixed = (1 - lam) * blocks + (lam / d) * trace[..., None, None] * eye
    return mixed.reshape(shape).movedim(tail, axes).reshape(rows, -1)


def evolve_density(program: GateProgram, mats: list[torch.Tensor], batch: int) -> torch.Tensor:
    """(B, 2^n) diagonal of the final density matrix from |0...0><0...0| (exact, differentiable)."""
    n = program.num_qubits
    rho = torch.zeros(batch, 4**n, dtype=program.dtype, device=program.a_w.device)
    rho[:, 0] = 1.0
    for gate, mat in zip(program.gates, mats, strict=False):
        rho = apply_matrix(rho, mat, tuple(q + n for q in gate.qubits), 2 * n)
        rho = apply_matrix(rho, mat.conj(), gate.qubits, 2 * n)
        if gate.depolarizing > 0:
            rho = depolarize(rho, gate.depolarizing, gate.qubits, n)
    diag = rho.reshape(batch, 2**n, 2**n).diagonal(dim1=1, dim2=2)
    return diag.real if diag.is_complex() else diag


def diagonal_observables(observables: list[SparsePauliOp], n: int) -> np.ndarray:
    """(2^n, n_obs) values of Z-type observables on each basis state; others raise (they need a basis change)."""
    out = np.zeros((2**n, len(observables)))
    idx = np.arange(2**n)
    for o, obs in enumerate(observables):
        if obs.num_qubits != n:
            raise QSetFitError(f"observable {o} acts on {obs.num_qubits} qubits, the circuit has {n}")
        for pauli, coeff in zip(obs.paulis, obs.coeffs, strict=False):
            if pauli.x.any():
                raise QSetFitError(
                    f"observable {o} has the term {pauli.to_label()}: the noisy torch engine reads Z-type "
                    "observables (I/Z strings) only; rotate the measured qubits to Z in the circuit instead"
                )
            zmask = int(sum(1 << q for q in np.flatnonzero(pauli.z)))
            parity = np.array([bin(i & zmask).count("1") & 1 for i in idx])
            out[:, o] += (coeff * (1 - 2 * parity)).real
    return out
