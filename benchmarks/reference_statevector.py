"""The speed baseline of issue 2: a plain gate-by-gate float64 torch statevector with stored-activation autograd.

Deliberately simple and independent of ``qsetfit.engines``: the state is a (B, 2, ..., 2) tensor (axis 1 is
Qiskit qubit n-1, the last axis is qubit 0), and every gate of the circuit is applied in turn with standard
torch ops: RY as its 2x2 matrix, multiplied into the gate's axis (``movedim`` + ``matmul``; a (B, 2, 2) batch
of matrices when the angle is an input), CX by flipping the target axis of the control=1 half
(``select`` + ``flip`` + ``stack``). ``loss.backward()`` differentiates through all of it, so autograd keeps
about one state per rotation for the backward pass (~11 GiB at Q=14, batch 435). Only what the
module-2 circuits need is supported: RY with angles affine in the parameters, CX, and diagonal <Z>
read-outs given as ``SparsePauliOp``s of Z/I factors.
"""

from __future__ import annotations

from typing import Sequence

import torch
from qiskit.circuit import Parameter, ParameterExpression, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp


def _affine(expr: object, index: dict[Parameter, tuple[str, int]]) -> tuple[list[tuple[str, int, float]], float]:
    """Angle = const + sum coeff * parameter; returns ([(kind, column, coeff)], const)."""
    if not isinstance(expr, ParameterExpression):
        return [], float(expr)
    terms = []
    for p in expr.parameters:
        coeff = expr.gradient(p)
        if isinstance(coeff, ParameterExpression):
            if coeff.parameters:
                raise ValueError(f"angle {expr} is not affine in {p}")
            coeff = complex(coeff).real
        kind, col = index[p]
        terms.append((kind, col, float(coeff)))
    const = float(complex(expr.bind({p: 0.0 for p in expr.parameters})).real)
    return terms, const


class ReferenceStatevector:
    """``forward(x (B, n_in), w (n_w,)) -> (B, n_obs)``, gate by gate, differentiable by plain autograd."""

    def __init__(
        self,
        circuit: QuantumCircuit,
        inputs: Sequence[Parameter],
        weights: Sequence[Parameter],
        observables: Sequence[SparsePauliOp],
        *,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.n = circuit.num_qubits
        self.dtype = dtype
        index = {p: ("x", i) for i, p in enumerate(inputs)} | {p: ("w", i) for i, p in enumerate(weights)}
        self.ops: list[tuple] = []
        for inst in circuit.data:
            name = inst.operation.name
            qubits = [circuit.find_bit(q).index for q in inst.qubits]
            if name == "ry":
                self.ops.append(("ry", qubits[0], *_affine(inst.operation.params[0], index)))
            elif name == "cx":
                self.ops.append(("cx", qubits[0], qubits[1]))
            elif name == "barrier":
                continue
            else:
                raise ValueError(f"the reference statevector supports ry and cx only, got {name!r}")
        self.z_signs = []  # one (2,)*n sign tensor per observable: sum_k coeff_k prod_{q in Z_k} (-1)^bit_q
        for obs in observables:
            total = torch.zeros([2] * self.n, dtype=dtype)
            for pauli, coeff in zip(obs.paulis, obs.coeffs):
                if pauli.x.any():
                    raise ValueError("the reference statevector reads diagonal (Z/I) observables only")
                sign = torch.ones([2] * self.n, dtype=dtype)
                for q in range(self.n):
                    if pauli.z[q]:
                        shape = [1] * self.n
                        shape[self.n - 1 - q] = 2
                        sign = sign * torch.tensor([1.0, -1.0], dtype=dtype).reshape(shape)
                total = total + float(complex(coeff).real) * sign
            self.z_signs.append(total)

    def _axis(self, qubit: int) -> int:
        return 1 + (self.n - 1 - qubit)  # axis 0 is the batch

    def _angle(self, terms: list[tuple[str, int, float]], const: float, x: torch.Tensor, w: torch.Tensor):
        angle = torch.full((), const, dtype=self.dtype)
        for kind, col, coeff in terms:
            angle = angle + coeff * (x[:, col] if kind == "x" else w[col])
        return angle  # () or (B,)

    def __call__(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        state = torch.zeros(batch, *([2] * self.n), dtype=self.dtype)
        state[(slice(None),) + (0,) * self.n] = 1.0
        for op in self.ops:
            if op[0] == "ry":
                _, q, terms, const = op
                half = self._angle(terms, const, x, w) / 2
                c, s = torch.cos(half), torch.sin(half)
                m = torch.stack([torch.stack([c, s], -1), torch.stack([-s, c], -1)], -2)  # RY^T: (2, 2) or (B, 2, 2)
                ax = self._axis(q)
                moved = state.movedim(ax, -1)  # (B, ..., 2), the gate's axis last
                if m.dim() == 2:  # shared angle: one GEMM
                    moved = (moved.reshape(-1, 2) @ m).reshape(moved.shape)
                else:  # per-sample angle: one bmm
                    moved = (moved.reshape(batch, -1, 2) @ m).reshape(moved.shape)
                state = moved.movedim(-1, ax)
            else:  # cx: flip the target where the control is 1
                _, ctrl, tgt = op
                ac, at = self._axis(ctrl), self._axis(tgt)
                a0, a1 = state.select(ac, 0), state.select(ac, 1)
                at_sub = at if at < ac else at - 1  # the target's axis once the control axis is selected away
                state = torch.stack([a0, a1.flip(at_sub)], dim=ac)
        prob = state * state  # (B, 2, ..., 2), real amplitudes
        return torch.stack([(prob * sign).reshape(batch, -1).sum(dim=1) for sign in self.z_signs], dim=1)
