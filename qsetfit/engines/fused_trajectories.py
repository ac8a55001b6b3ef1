"""Pauli-error trajectories on fused gate blocks: the same estimator as ``trajectories.py``, at block speed.

``evolve_trajectories`` applies the circuit gate by gate, so every trajectory reads and writes its state
~300 times at 14 qubits. Here the gates are fused into the blocks of the noiseless torch engine
(``torch_sv._fuse``: consecutive qubits, up to ``fusion_qubits`` wide, one matmul each), and an error is folded
into the matrix of the block holding its gate. In the row convention of ``evolve.py`` (new = old @ X), with
``Pre_j`` the product of the block's gates up to gate j, the block with a Pauli P after gate j is

    X_err = E_j X,   E_j = (Pre_j P^T) Pre_j^H,

and several errors in one block multiply their E's in gate order (blocks are unitary, so Pre^H = Pre^-1).
A trajectory joins, as a copy of its input's clean state, at the block of its first error, so it costs the
blocks from there on; rows without an error in a block share the block's matrix. The error sample
(``trajectories.sample_errors``) and hence the estimator are unchanged: both evolutions agree to rounding.

Fusion may move a gate into an earlier block, past gates on other qubits only, so inserting P right after
its gate inside that block is exact. Differentiable by autograd (everything is out of place).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from qsetfit.engines.density import GateProgram, apply_paulis
from qsetfit.engines.evolve import apply_block, inverse, permute, probabilities
from qsetfit.engines.torch_sv import TorchStatevectorEngine, _apply
from qsetfit.engines.trajectories import ErrorSample


@dataclass(frozen=True)
class FusedPlan:
    """Blocks of a ``GateProgram``: gate lists, local qubit orders, steps and the final axis order.

    Attributes:
        gates: per block, the program's gate indices in application order.
        qubits: per block, its qubits in local big-endian order (as the state's axes meet it).
        steps: per block, (permutation or None, L, R) as in ``evolve.Plan``.
        to_canonical: axis permutation taking the final state back to Qiskit order.
        block_of, local: per program gate, its block and its position in that block's gate list.
    """

    gates: tuple[tuple[int, ...], ...]
    qubits: tuple[tuple[int, ...], ...]
    steps: tuple
    to_canonical: list[int]
    block_of: np.ndarray
    local: np.ndarray

    def canonical(self, probs: torch.Tensor) -> torch.Tensor:
        """(R, 2^n) values in the final axis order -> Qiskit order."""
        return permute(probs, self.to_canonical, len(self.to_canonical))

    def final_order(self, table: torch.Tensor) -> torch.Tensor:
        """(2^n, k) table in Qiskit order -> rows in the final axis order (so final probs @ table is exact)."""
        return permute(table.T, inverse(self.to_canonical), len(self.to_canonical)).T.contiguous()


def fused_plan(circuit, inputs, weights, num_gates: int, fusion_qubits: int | None = None) -> FusedPlan:
    """The noiseless torch engine's fusion and schedule of ``circuit`` (the circuit of a ``GateProgram``)."""
    sv = TorchStatevectorEngine(circuit, inputs, weights, [], fusion_qubits=fusion_qubits)
    size = max(num_gates, len(sv.gates))  # an empty circuit gets one identity gate there
    block_of, local = np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int64)
    for b, block in enumerate(sv.blocks):
        for j, g in enumerate(block.gates):
            block_of[g], local[g] = b, j
    return FusedPlan(tuple(tuple(b.gates) for b in sv.blocks), tuple(tuple(b.qubits) for b in sv.blocks),
                     tuple(sv.plan.steps), list(sv.to_canonical), block_of, local)


def block_prefixes(program: GateProgram, plan: FusedPlan, mats: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per block, (n_gates, 1 or B, d, d): the row-convention product of its gates up to each one."""
    out = []
    for gates, qubits in zip(plan.gates, plan.qubits):
        k = len(qubits)
        d = 2**k
        pos = {q: i for i, q in enumerate(qubits)}
        m = torch.eye(d, dtype=program.dtype, device=program.a_w.device).reshape(1, 1, d, *([2] * k))
        steps = []
        for g in gates:
            if g >= len(program.gates):  # the identity the torch engine puts in an empty circuit
                steps.append(m.reshape(m.shape[1], d, d))
                continue
            axes = [3 + pos[q] for q in reversed(program.gates[g].qubits)]
            m = _apply(m, mats[g][None], axes)
            steps.append(m.reshape(m.shape[1], d, d))
        width = max(s.shape[0] for s in steps)
        out.append(torch.stack([s.expand(width, d, d) for s in steps]))
    return out


def _error_operators(program: GateProgram, plan: FusedPlan, prefix: torch.Tensor, block: int,
                     gates: np.ndarray, inputs: np.ndarray, codes: np.ndarray) -> torch.Tensor:
    """(E, d, d) operators E_j = (Pre_j P^T) Pre_j^H of errors after ``gates`` (all in ``block``)."""
    qubits = plan.qubits[block]
    k, d = len(qubits), 2 ** len(qubits)
    device = prefix.device
    pre = prefix[torch.as_tensor(plan.local[gates], device=device),
                 torch.as_tensor(inputs if prefix.shape[1] > 1 else np.zeros_like(inputs), device=device)]
    flipped = torch.empty_like(pre)
    for g in np.unique(gates):  # the Pauli acts on the gate's qubits, as local Qiskit-order indices
        sel = np.flatnonzero(gates == g)
        local_q = tuple(k - 1 - qubits.index(q) for q in program.gates[g].qubits)
        code = torch.as_tensor(codes[sel], device=device).repeat_interleave(d)
        rows = apply_paulis(pre[sel].reshape(-1, d), code, local_q, k).reshape(len(sel), d, d)
        flipped = flipped.index_put((torch.as_tensor(sel, device=device),), rows)
    return flipped @ pre.conj().transpose(-1, -2)


def _special_matrices(program: GateProgram, plan: FusedPlan, prefix: torch.Tensor, full: torch.Tensor,
                      block: int, rows: np.ndarray, gates: np.ndarray, inputs: np.ndarray,
                      codes: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    """(distinct rows, their (R, d, d) block matrices) for errors (row, gate, input, code) in one block."""
    order = np.lexsort((plan.local[gates], rows))  # by row, then gate order within the block
    rows, gates, inputs, codes = rows[order], gates[order], inputs[order], codes[order]
    ops = _error_operators(program, plan, prefix, block, gates, inputs, codes)
    uniq, start, count = np.unique(rows, return_index=True, return_counts=True)
    acc = ops[torch.as_tensor(start, device=ops.device)]
    for extra in range(1, int(count.max())):  # a second (third...) error of the same row in this block
        has = np.flatnonzero(count > extra)
        idx = torch.as_tensor(has, device=ops.device)
        acc = acc.index_put((idx,), acc[idx] @ ops[torch.as_tensor(start[has] + extra, device=ops.device)])
    uniq_inputs = torch.as_tensor(inputs[start] if full.shape[0] > 1 else np.zeros(len(start), dtype=np.int64),
                                  device=full.device)
    return uniq, acc @ full[uniq_inputs]


@dataclass
class _Layout:
    """Where each trajectory lives: rows B.. in order of the block where it joins, and its errors per block."""

    join: np.ndarray  # (n_traj,) join block of row B + r, ascending within each chunk
    row_input: np.ndarray  # (B + n_traj,) input of each row
    row_of: np.ndarray  # (n_traj,) row of trajectory t
    specials: dict  # block -> (sorted rows with an error there, their (R, d, d) block matrices)
    chunks: list  # consecutive trajectory rows (0-based after the B clean rows) run together


def _layout(program: GateProgram, plan: FusedPlan, prefixes: list[torch.Tensor], batch: int, per_input: int,
            sample: ErrorSample, cap: int) -> _Layout:
    """Rows grouped by input (a chunk of at most ``cap`` rows holds one input, or whole inputs), each chunk
    sorted by join block, so that a chunk of one input shares its block matrices."""
    n_traj = len(sample.first)
    traj = np.concatenate([np.arange(n_traj), sample.traj])  # every error: trajectory, gate, Pauli code
    gate = np.concatenate([sample.first, sample.gate])
    code = np.concatenate([sample.first_code, sample.code])
    err_block = plan.block_of[gate]
    join = plan.block_of[sample.first].copy()  # fusion may move a later error's gate to an earlier block
    np.minimum.at(join, sample.traj, plan.block_of[sample.gate])
    group = np.arange(n_traj) // per_input // max(1, cap // per_input)
    order = np.lexsort((join, group))  # row B + r holds trajectory order[r]
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    chunks = [c for piece in np.split(np.arange(n_traj), bounds) for c in np.array_split(piece, -(-len(piece) // cap))]
    row_of = np.empty(n_traj, dtype=np.int64)
    row_of[order] = batch + np.arange(n_traj)
    row_input = np.concatenate([np.arange(batch), order // per_input])
    specials = {}
    for b in np.unique(err_block):
        hits = np.flatnonzero(err_block == b)
        rows = row_of[traj[hits]]
        specials[int(b)] = _special_matrices(program, plan, prefixes[b], prefixes[b][-1], int(b), rows, gate[hits],
                                             row_input[rows], code[hits])
    return _Layout(join[order], row_input, row_of, specials, chunks)


def evolve_fused(program: GateProgram, plan: FusedPlan, mats: list[torch.Tensor], batch: int, per_input: int,
                 sample: ErrorSample, table: torch.Tensor, *, mixture: bool = False,
                 cache_bytes: int = 1 << 21) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Each row's final probabilities times ``table``, without keeping the final states.

    Args:
        program, plan, mats: the circuit, its fused plan, and ``program.matrices(x, w)``.
        batch, per_input: B inputs, T trajectories each (trajectory t belongs to input t // T).
        sample: the trajectories' errors (``trajectories.sample_errors``, B T of them).
        table: (2^n, k) values per basis state, rows in the plan's final axis order (``plan.final_order``).
        mixture: also return the mixed distribution P0 clean + (1 - P0) mean of the trajectories (for shots).
        cache_bytes: on CPU the trajectories run in chunks of about this many bytes through all their blocks
            (measured: a block's matmul is ~2.7x faster on a cache-resident chunk than on the whole batch).

    Returns:
        (B + B T, k) values: rows 0..B-1 error-free, trajectory t in row ``rows[t]``; ``rows``; and with
        ``mixture`` that (B, 2^n) distribution in Qiskit order.
        After ``plan.canonical`` the probabilities equal ``trajectories.evolve_trajectories``'s, to rounding.
    """
    device = program.a_w.device
    prefixes = block_prefixes(program, plan, mats)
    per_row = 2**program.num_qubits * prefixes[0].element_size()
    cap = max(1, cache_bytes // per_row) if device.type == "cpu" else max(1, len(sample.first))
    lay = _layout(program, plan, prefixes, batch, per_input, sample, cap)
    fast = not (torch.is_grad_enabled() and any(m.requires_grad for m in mats))
    saved, clean = _clean_pass(program, plan, prefixes, batch)
    # Without autograd, chunks live in buffers allocated once (fresh pages per chunk cost as much as a block).
    bufs = [clean.new_empty(max(map(len, lay.chunks), default=0), clean.shape[1]) for _ in range(2)] if fast else []
    values = [probabilities(clean) @ table]
    mix = sample.p0 * probabilities(clean) if mixture else None
    weight = (1 - sample.p0) / per_input
    for rows in lay.chunks:
        final = _run_chunk(program, plan, prefixes, lay, saved, batch, rows, bufs)
        probs = probabilities(final) if not fast or final.is_complex() else torch.mul(final, final, out=final)
        values.append(probs @ table)
        if mix is not None:
            mix = mix.index_add(0, torch.as_tensor(lay.row_input[batch + rows], device=device), probs, alpha=weight)
    rows = torch.as_tensor(lay.row_of, device=device)
    return torch.cat(values), rows, None if mix is None else plan.canonical(mix)


def evolve_clean(program: GateProgram, plan: FusedPlan, mats: list[torch.Tensor], batch: int) -> torch.Tensor:
    """(B, 2^n) probabilities of the noiseless circuit, in Qiskit order."""
    return plan.canonical(probabilities(_clean_pass(program, plan, block_prefixes(program, plan, mats), batch)[1]))


def _clean_pass(program: GateProgram, plan: FusedPlan, prefixes: list[torch.Tensor],
                batch: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The error-free states before each block (after its permutation) and the final one."""
    n = program.num_qubits
    state = torch.zeros(batch, 2**n, dtype=program.dtype, device=program.a_w.device)
    state[:, 0] = 1.0
    saved = []
    for (perm, left, right), prefix in zip(plan.steps, prefixes):
        if perm is not None:
            state = permute(state, perm, n)
        saved.append(state)
        state = apply_block(state, prefix[-1], left, right)
    return saved, state


def _run_chunk(program: GateProgram, plan: FusedPlan, prefixes: list[torch.Tensor], lay: _Layout,
               saved: list[torch.Tensor], batch: int, rows: np.ndarray, bufs: list[torch.Tensor]) -> torch.Tensor:
    """Final states of the trajectory rows ``batch + rows`` (consecutive), each from the block where it joins."""
    n, device, first = program.num_qubits, program.a_w.device, batch + rows[0]
    joins = np.searchsorted(lay.join[rows], np.arange(len(plan.steps) + 1), side="left")
    inputs = lay.row_input[batch + rows]
    shape, fast = (len(rows), 2**n), bool(bufs)
    state = bufs[0][:0] if fast else torch.empty(0, 2**n, dtype=program.dtype, device=device)
    one = inputs.min() == inputs.max()  # one input: its block matrices are shared by the chunk
    for b in range(int(lay.join[rows].min()), len(plan.steps)):
        perm, left, right = plan.steps[b]
        active = state.shape[0]
        if perm is not None and active:
            state = permute(state, perm, n) if not fast else _permute_into(state, perm, n, _other(bufs, state))
        full = prefixes[b][-1]  # (1 or B, d, d): the whole block
        mat = full if full.shape[0] == 1 else full[int(inputs[0])][None] if one else full[torch.as_tensor(inputs[:active], device=device)]
        new = state if not active else apply_block(state, mat, left, right) if not fast else _apply_into(
            state, mat, left, right, _other(bufs, state)[:active])
        special = lay.specials.get(b)
        lo, hi = (0, 0) if special is None else np.searchsorted(special[0], [first, first + len(rows)])
        if hi > lo:  # rows with an error here: their own matrices (joiners start from their clean state)
            local = special[0][lo:hi] - first
            old = local[local < active]
            src = torch.cat([state[torch.as_tensor(old, device=device)],
                             saved[b][torch.as_tensor(inputs[local[len(old):]], device=device)]])
            out = apply_block(src, special[1][lo:hi], left, right)
            grow = joins[b + 1] - joins[b]
            if grow:
                new = _other(bufs, state)[: active + grow] if fast else torch.cat([new, out.new_empty(grow, shape[1])])
            new.index_put_((torch.as_tensor(local, device=device),), out)  # a matmul's output: safe in place
        state = new
    return state


def _other(bufs: list[torch.Tensor], state: torch.Tensor) -> torch.Tensor:
    """The buffer that ``state`` does not live in."""
    return bufs[1] if state.data_ptr() == bufs[0].data_ptr() else bufs[0]


def _permute_into(state: torch.Tensor, perm: list[int], n: int, buf: torch.Tensor) -> torch.Tensor:
    """``evolve.permute`` written into ``buf``'s first rows, with runs of axes that stay together merged.

    Merging matters: a rotation of 14 axes is a 2-axis transpose; copied as 15 axes it is ~3x slower.
    """
    rows = state.shape[0]
    runs: list[list[int]] = []  # runs of consecutive input axes that stay consecutive in the output
    for p in perm:
        if runs and runs[-1][-1] + 1 == p:
            runs[-1].append(p)
        else:
            runs.append([p])
    by_start = sorted(runs)  # input order of the runs
    sizes = [2 ** len(r) for r in by_start]
    order = [by_start.index(r) + 1 for r in runs]
    out = buf[:rows]
    out.view(rows, *(sizes[o - 1] for o in order)).copy_(state.view(rows, *sizes).permute(0, *order))
    return out


def _apply_into(state: torch.Tensor, mat: torch.Tensor, left: int, right: int, out: torch.Tensor) -> torch.Tensor:
    """``evolve.apply_block`` written into ``out`` (same rows as ``state``)."""
    batch, d = state.shape[0], mat.shape[-1]
    if right == 1 and mat.shape[0] == 1:
        torch.matmul(state.view(batch * left, d), mat[0], out=out.view(batch * left, d))
    elif right == 1:
        torch.matmul(state.view(batch, left, d), mat, out=out.view(batch, left, d))
    elif mat.shape[0] == 1:
        torch.matmul(mat[0].transpose(0, 1), state.view(batch, left, d, right), out=out.view(batch, left, d, right))
    else:
        torch.matmul(mat.transpose(1, 2)[:, None], state.view(batch, left, d, right), out=out.view(batch, left, d, right))
    return out
