"""Fused gate blocks of a ``GateProgram`` with Pauli errors folded in: the plan, prefix products, error matrices.

Gates are fused into the blocks of the noiseless torch engine (``compile.fuse``: consecutive qubits, up to
``fusion_qubits`` wide, one matmul each). In the row convention of ``evolve.py`` (new = old @ X), with
``Pre_j`` the product of a block's gates up to gate j, the block with a Pauli P after gate j is

    X_err = E_j X,   E_j = (Pre_j P^T) Pre_j^H,

and several errors in one block multiply their E's in gate order (blocks are unitary, so Pre^H = Pre^-1).
Fusion may move a gate into an earlier block, past gates on other qubits only, so inserting P right after
its gate inside that block is exact. ``fused_trajectories.py`` runs trajectories on these blocks.
"""

from __future__ import annotations

from typing import Any

from dataclasses import dataclass

import numpy as np
import torch

from qsetfit.engines.torch.density import GateProgram
from qsetfit.engines.torch.evolve import inverse, permute
from qsetfit.engines.torch.gates import IGNORED
from qsetfit.engines.torch.statevector import TorchStatevectorEngine, _apply
from qsetfit.errors import QSetFitError


@dataclass(frozen=True)
class FusedPlan:
    """Blocks of a ``GateProgram``: gate lists, local qubit orders, steps and the final axis order.

    Attributes:
        gates: per block, the program's gate indices in application order.
        qubits: per block, its qubits in local big-endian order (as the state's axes meet it).
        steps: per block, (permutation or None, L, R) as in ``evolve.Plan``.
        to_canonical: axis permutation taking the final state back to Qiskit order.
        block_of, local: per program gate, its block and its position in that block's gate list.
        bits: per program gate, (2,) the bit of each of its qubits in its block's local index (-1: none).
    """

    gates: tuple[tuple[int, ...], ...]
    qubits: tuple[tuple[int, ...], ...]
    steps: tuple
    to_canonical: list[int]
    block_of: np.ndarray
    local: np.ndarray
    bits: np.ndarray

    def canonical(self, probs: torch.Tensor) -> torch.Tensor:
        """(R, 2^n) values in the final axis order -> Qiskit order."""
        return permute(probs, self.to_canonical, len(self.to_canonical))

    def final_order(self, table: torch.Tensor) -> torch.Tensor:
        """(2^n, k) table in Qiskit order -> rows in the final axis order (so final probs @ table is exact)."""
        return permute(table.T, inverse(self.to_canonical), len(self.to_canonical)).T.contiguous()


def fused_plan(
    circuit: Any,
    inputs: list[Any],
    weights: list[Any],
    num_gates: int,
    fusion_qubits: int | None = None,
    support: set[int] | None = None,
) -> FusedPlan:
    """The noiseless torch engine's fusion and schedule of ``circuit`` (the circuit of a ``GateProgram``).

    With ``support`` (the qubits the observables read) gates outside its backward light cone are left out:
    they, and Pauli errors after them, act on qubits that no later kept gate or observable touches, so they
    commute past the rest and leave every expectation value (and the marginal the shots sample) unchanged.
    Such gates get block -1; ``num_gates`` (one past the last gate) stands for the identity of an empty plan.
    """
    ops = [inst for inst in circuit.data if inst.operation.name not in IGNORED]
    if len(ops) != num_gates:
        raise QSetFitError(f"the plan's circuit has {len(ops)} gates, its program {num_gates}")
    live = np.ones(num_gates, dtype=bool)
    if support is not None:
        reached = set(support)
        for g in range(num_gates - 1, -1, -1):
            qubits = {circuit.find_bit(q).index for q in ops[g].qubits}
            live[g] = bool(qubits & reached)
            reached |= qubits if live[g] else set()
    kept = np.flatnonzero(live)
    pruned = circuit.copy_empty_like()
    for g in kept.tolist():
        pruned.append(ops[g])
    sv = TorchStatevectorEngine(pruned, inputs, weights, [], fusion_qubits=fusion_qubits)
    index = np.append(kept, num_gates)  # sv gate j is program gate index[j]; an empty plan's identity: num_gates
    block_of, local = np.full(num_gates + 1, -1, dtype=np.int64), np.zeros(num_gates + 1, dtype=np.int64)
    bits = np.full((num_gates + 1, 2), -1, dtype=np.int64)
    for b, block in enumerate(sv.blocks):
        for j, g in enumerate(block.gates):
            block_of[index[g]], local[index[g]] = b, j
            for t, q in enumerate(sv.gates[g].qubits[:2]):  # noise follows one- and two-qubit gates only
                bits[index[g], t] = len(block.qubits) - 1 - block.qubits.index(q)
    return FusedPlan(
        tuple(tuple(int(index[g]) for g in b.gates) for b in sv.blocks),
        tuple(tuple(b.qubits) for b in sv.blocks),
        tuple(sv.plan.steps),
        list(sv.to_canonical),
        block_of,
        local,
        bits,
    )


def table_support(table: torch.Tensor, n: int) -> set[int]:
    """The qubits a (2^n, k) table of per-basis-state values (Qiskit order) depends on."""
    t = table.detach().cpu().reshape(*([2] * n), -1)
    return {q for q in range(n) if not torch.equal(t.select(n - 1 - q, 0), t.select(n - 1 - q, 1))}


def block_prefixes(
    program: GateProgram, plan: FusedPlan, mats: list[torch.Tensor], needed: dict[int, set[int]] | None = None
) -> list[tuple[torch.Tensor, dict]]:
    """Per block: its (1 or B, d, d) row-convention matrix, and {position j: the product up to gate j} for the
    positions in ``needed[block]`` (where errors follow).

    Runs of gates shared by the batch are multiplied as d x d matrices first and meet the (B, d, d) product
    once (measured: applying every gate to B copies cost more than the trajectories at 64 inputs).
    """
    out = []
    for b, (gates, qubits) in enumerate(zip(plan.gates, plan.qubits, strict=False)):
        k, want = len(qubits), (needed or {}).get(b, set())
        d, pos = 2**k, {q: i for i, q in enumerate(qubits)}
        eye = torch.eye(d, dtype=program.dtype, device=program.a_w.device).reshape(1, 1, d, *([2] * k))
        m, run, saved = eye.reshape(1, d, d), None, {}
        for j, g in enumerate(gates):
            if g < len(program.gates):  # else the identity the torch engine puts in an empty circuit
                axes = [3 + pos[q] for q in reversed(program.gates[g].qubits)]
                if mats[g].shape[0] == 1:  # shared: join the run
                    step = _apply(eye, mats[g][None], axes).reshape(d, d)
                    run = step if run is None else run @ step
                else:
                    m, run = _apply_per_input(m if run is None else m @ run, mats[g], axes, k), None
            if j in want:
                m, run = (m if run is None else m @ run), None
                saved[j] = m
        out.append((m if run is None else m @ run, saved))
    return out


def _apply_per_input(m: torch.Tensor, mat: torch.Tensor, axes: list[int], k: int) -> torch.Tensor:
    """(1 or B, d, d) product times a (B, g, g) per-input gate on local ``axes`` (offset 3, as ``_apply``).

    One-qubit gates run as two fused multiply-adds on strided views (measured ~10x faster than ``_apply``'s
    transposing copies of B x d x d products, which dominated at 64 inputs).
    """
    d = 2**k
    if len(axes) > 1:
        return _apply(m.reshape(1, -1, d, *([2] * k)), mat[None], axes).reshape(-1, d, d)
    t = axes[0] - 3  # the gate's axis among the block's k axes
    v = m.expand(mat.shape[0], d, d).reshape(mat.shape[0], d * 2**t, 2, 2 ** (k - 1 - t))
    u = mat[:, None, :, :, None]  # (B, 1, 2, 2, 1)
    a0, a1 = v[:, :, 0:1], v[:, :, 1:2]
    return (u[:, :, :, 0] * a0 + u[:, :, :, 1] * a1).reshape(-1, d, d)


def error_operators(
    plan: FusedPlan, prefix: torch.Tensor, gates: np.ndarray, inputs: np.ndarray, codes: np.ndarray
) -> torch.Tensor:
    """(E, d, d) operators E_j = (Pre_j P^T) Pre_j^H of errors after ``gates`` (all in one block).

    P = X^x Z^z on the gate's qubits (Y as XZ: a global phase no expectation value sees, as ``apply_paulis``),
    so ``v P^T`` is ``v[a ^ x] (-1)^popcount((a ^ x) & z)``: one gather for all errors of the block.
    """
    saved = prefix[1]
    d, device = prefix[0].shape[-1], prefix[0].device
    local = plan.local[gates]
    order = np.argsort(local, kind="stable")
    parts = []
    for j in np.unique(local):  # errors after the same gate share its prefix (per input, or shared)
        sel = order[np.searchsorted(local[order], j) : np.searchsorted(local[order], j, side="right")]
        pre_j = saved[int(j)]
        parts.append(
            pre_j[torch.as_tensor(inputs[sel], device=device)] if pre_j.shape[0] > 1 else pre_j.expand(len(sel), d, d)
        )
    pre = torch.cat(parts)[torch.as_tensor(np.argsort(order), device=device)]
    xmask, zmask = np.zeros(len(gates), dtype=np.int64), np.zeros(len(gates), dtype=np.int64)
    for t in range(2):
        digit, bit = (codes >> (2 * t)) & 3, plan.bits[gates, t]
        has = bit >= 0
        xmask[has] |= ((digit[has] == 1) | (digit[has] == 2)).astype(np.int64) << bit[has]
        zmask[has] |= (digit[has] >= 2).astype(np.int64) << bit[has]
    source = np.arange(d)[None, :] ^ xmask[:, None]  # (E, d)
    parity = np.array([v.bit_count() & 1 for v in range(d)])[source & zmask[:, None]]
    sign = torch.as_tensor(1.0 - 2.0 * parity, dtype=pre.real.dtype if pre.is_complex() else pre.dtype, device=device)
    index = torch.as_tensor(source, device=device)[:, None, :].expand(-1, d, -1)
    flipped = torch.gather(pre, 2, index) * sign[:, None, :].to(pre.dtype)
    return flipped @ pre.conj().transpose(-1, -2)


def special_matrices(
    plan: FusedPlan, prefix: torch.Tensor, rows: np.ndarray, gates: np.ndarray, inputs: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, torch.Tensor]:
    """(distinct rows, their (R, d, d) block matrices) for errors (row, gate, input, code) in one block."""
    order = np.lexsort((plan.local[gates], rows))  # by row, then gate order within the block
    rows, gates, inputs, codes = rows[order], gates[order], inputs[order], codes[order]
    ops = error_operators(plan, prefix, gates, inputs, codes)
    uniq, start, count = np.unique(rows, return_index=True, return_counts=True)
    acc = ops[torch.as_tensor(start, device=ops.device)]
    for extra in range(1, int(count.max())):  # a second (third...) error of the same row in this block
        has = np.flatnonzero(count > extra)
        idx = torch.as_tensor(has, device=ops.device)
        acc = acc.index_put((idx,), acc[idx] @ ops[torch.as_tensor(start[has] + extra, device=ops.device)])
    full = prefix[0]  # (1 or B, d, d): the whole block
    uniq_inputs = torch.as_tensor(
        inputs[start] if full.shape[0] > 1 else np.zeros(len(start), dtype=np.int64), device=full.device
    )
    return uniq, acc @ full[uniq_inputs]
