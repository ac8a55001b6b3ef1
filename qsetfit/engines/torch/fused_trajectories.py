"""Pauli-error trajectories on fused gate blocks: the same estimator as ``trajectories.py``, at block speed.

``evolve_trajectories`` applies the circuit gate by gate, so every trajectory reads and writes its state
~300 times at 14 qubits. Here each block of ``fused_blocks.py`` is one matmul, an error is folded into the
matrix of the block holding its gate, and a trajectory joins at the first block with an error: its first row
is that block's error matrix applied to its input's error-free state before the block, so it costs the blocks
from there on; rows without an error in a block share the block's matrix. The error-free rows of a group of
inputs run once and keep their state before every block (the snapshots the group's trajectories start from).
The error sample (``trajectories.sample_errors``) and hence the estimator are unchanged: both evolutions agree
to rounding. Differentiable by autograd; without it, rows run in preallocated buffers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from qsetfit.engines.torch.buffer_pool import BufferPool
from qsetfit.engines.torch.density import GateProgram
from qsetfit.engines.torch.evolve import (
    apply_block,
    apply_block_into,
    other_buffer,
    permute,
    permute_into,
    probabilities,
)
from qsetfit.engines.torch.fused_blocks import (
    FusedPlan,
    block_prefixes,
    fused_plan,
    special_matrices,
    table_support,
)
from qsetfit.engines.torch.threads import map_in_threads, one_thread
from qsetfit.engines.torch.trajectories import ErrorSample

__all__ = ["FusedPlan", "evolve_clean", "evolve_fused", "fused_plan", "table_support"]

SNAPSHOT_BYTES = 1 << 26  # per group on CPU: the error-free states before every block
_POOL = BufferPool()  # the CPU buffers of the last calls, for the next
# Devices where a chunk's joiners run as one stacked product per input (``_stacked_into``). On a GPU a chunk holds
# every input, and one per-row product for all joiners of a block avoids a loop over inputs (not measured there:
# no GPU was lent).
STACKED_JOINERS = ("cpu",)


@dataclass
class _Chunk:
    """Trajectory rows run together, in join order."""

    first: int  # global row of the chunk's first row
    inputs: np.ndarray  # (m,) input of each row
    join: np.ndarray  # (m,) ascending: the block where each row joins


@dataclass
class _Group:
    """Consecutive inputs whose error-free rows run together once, and the chunks of their trajectories."""

    inputs: np.ndarray
    chunks: list[_Chunk]


@dataclass
class _Layout:
    """Trajectory rows of every chunk, concatenated, and each block's rows with errors."""

    row_input: np.ndarray  # (R,) input of each row
    value_of: np.ndarray  # (n_traj,) where trajectory t's values are: input b (error-free) or B + its row
    specials: dict  # block -> (sorted rows with an error there, their (r, d, d) block matrices)
    before: np.ndarray  # (blocks, R + 1): how many of a block's rows with an error come before each row
    groups: list[_Group]


def _layout(
    plan: FusedPlan,
    prefixes: list,
    batch: int,
    per_input: int,
    sample: ErrorSample,
    cap: int,
    per_group: int,
    per_chunk: int,
) -> _Layout:
    """Groups of ``per_group`` inputs; in each, the trajectories of every ``per_chunk`` inputs sorted by join
    block, in chunks of at most ``cap`` rows; and the error matrices of every block. A trajectory whose errors
    all fall outside the light cone has no row: its values are its input's error-free ones."""
    n_traj, n_blocks = len(sample.first), len(plan.steps)
    traj = np.concatenate([np.arange(n_traj), sample.traj])  # every error: trajectory, gate, Pauli code
    gate = np.concatenate([sample.first, sample.gate])
    code = np.concatenate([sample.first_code, sample.code])
    keep = plan.block_of[gate] >= 0  # errors outside the light cone change nothing (``fused_plan``)
    traj, gate, code = traj[keep], gate[keep], code[keep]
    join = np.full(n_traj, n_blocks)  # the first block with an error; fusion may move a later error earlier
    np.minimum.at(join, traj, plan.block_of[gate])
    value_of = np.arange(n_traj) // per_input
    row_input, groups, row = [np.zeros(0, dtype=np.int64)], [], 0
    for start in range(0, batch, per_group):
        inputs = np.arange(start, min(start + per_group, batch))
        chunks = []
        for first in range(int(inputs[0]), int(inputs[-1]) + 1, per_chunk):
            trajs = np.arange(first * per_input, min(first + per_chunk, inputs[-1] + 1) * per_input)
            trajs = trajs[np.argsort(join[trajs], kind="stable")]
            trajs = trajs[join[trajs] < n_blocks]
            for piece in np.array_split(trajs, -(-len(trajs) // cap)) if len(trajs) else []:
                value_of[piece] = batch + row + np.arange(len(piece))
                chunks.append(_Chunk(row, piece // per_input, join[piece]))
                row_input.append(piece // per_input)
                row += len(piece)
        groups.append(_Group(inputs, chunks))
    rows_of_input = np.concatenate(row_input)
    err_block, err_row = plan.block_of[gate], value_of[traj] - batch
    specials = {}
    before = np.zeros((n_blocks, row + 1), dtype=np.int64)
    for b in np.unique(err_block):
        hits = np.flatnonzero(err_block == b)
        rows = err_row[hits]
        specials[int(b)] = special_matrices(plan, prefixes[b], rows, gate[hits], rows_of_input[rows], code[hits])
        before[b] = np.searchsorted(specials[int(b)][0], np.arange(row + 1))
    return _Layout(rows_of_input, value_of, specials, before, groups)


def evolve_fused(
    program: GateProgram,
    plan: FusedPlan,
    mats: list[torch.Tensor],
    batch: int,
    per_input: int,
    sample: ErrorSample,
    table: torch.Tensor,
    *,
    mixture: bool = False,
    cache_bytes: int = 1 << 22,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Final probabilities times ``table`` of the error-free states and of every trajectory.

    Args:
        program, plan, mats: the circuit, its fused plan, and ``program.matrices(x, w)``.
        batch, per_input: B inputs, T >= 1 trajectories each (trajectory t belongs to input t // T).
        sample: the trajectories' errors (``trajectories.sample_errors``, B T of them).
        table: (2^n, k) values per basis state, rows in the plan's final axis order (``plan.final_order``).
        mixture: also return the mixed distribution P0 clean + (1 - P0) mean of the trajectories (for shots).
        cache_bytes: on CPU trajectory rows run in chunks of about this many bytes through all their blocks
            (measured: a block's matmul is ~2.7x faster on a cache-resident chunk than on the whole batch).

    Returns:
        (B, k) error-free values, (B, T, k) trajectory values, and with ``mixture`` the (B, 2^n) mixed
        distribution in Qiskit order. The probabilities (identity table, after ``plan.canonical``) equal
        ``trajectories.evolve_trajectories``'s, to rounding.
    """
    with one_thread() as threads:  # rows run in Python threads instead (``threads.py``)
        return _evolve_fused(program, plan, mats, batch, per_input, sample, table, mixture, cache_bytes, threads)


def _evolve_fused(
    program: GateProgram,
    plan: FusedPlan,
    mats: list[torch.Tensor],
    batch: int,
    per_input: int,
    sample: ErrorSample,
    table: torch.Tensor,
    mixture: bool,
    cache_bytes: int,
    threads: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    device, n_blocks = program.a_w.device, len(plan.steps)
    gates = np.concatenate([sample.first, sample.gate])
    needed: dict[int, set[int]] = {}
    for g in np.unique(gates[plan.block_of[gates] >= 0]):
        needed.setdefault(int(plan.block_of[g]), set()).add(int(plan.local[g]))
    prefixes = block_prefixes(program, plan, mats, needed)
    like = prefixes[0][0]
    per_row = 2**program.num_qubits * like.element_size()
    cap, per_group, per_chunk = _sizes(device, per_row, batch, per_input, n_blocks, cache_bytes, threads)
    lay = _layout(plan, prefixes, batch, per_input, sample, cap, per_group, per_chunk)
    fast = not (torch.is_grad_enabled() and any(m.requires_grad for m in mats))
    rows = max((len(c.join) for g in lay.groups for c in g.chunks), default=0)
    mix = _Mixture(lay, batch, per_input, sample.p0, table) if mixture else None

    def run(group: _Group, bufs: list[torch.Tensor]) -> list[torch.Tensor]:
        """The group's error-free values, then each chunk's (their probabilities go into ``mix``)."""
        out = []
        for chunk, final in _group_finals(program, plan, prefixes, lay, group, bufs):
            probs = torch.mul(final, final, out=final) if bufs and not final.is_complex() else probabilities(final)
            out.append(probs @ table)
            if mix is not None:
                mix.add(group, chunk, probs)
        return out

    # Buffers the rows run in without autograd, one set per thread (fresh pages per chunk cost as much as a
    # block): two for chunks, one for a permutation, the snapshots, joiners.
    dim = 2**program.num_qubits
    shapes = ((rows, dim), (rows, dim), (per_group, dim), (n_blocks + 1, per_group, dim), (rows, dim))
    key, taken = (shapes, like.dtype, like.device), []

    def buffers() -> list[torch.Tensor]:
        if not fast:
            return []
        if device.type != "cpu":  # torch's CUDA allocator already keeps freed memory for the next call
            return [like.new_empty(*s) for s in shapes]
        taken.append(_POOL.take(key, lambda: [like.new_empty(*s) for s in shapes]))
        return taken[-1]

    parallel = fast and mix is None and device.type == "cpu"  # groups over threads, each with its buffers
    results = map_in_threads(run, lay.groups, threads if parallel else 1, buffers)
    _POOL.give(key, taken)
    clean = torch.cat([r[0] for r in results])
    values = torch.cat([clean] + [v for r in results for v in r[1:]])
    traj = values[torch.as_tensor(lay.value_of, device=device)].reshape(batch, per_input, -1)
    return clean, traj, None if mix is None else plan.canonical(mix.total)


def _sizes(
    device: torch.device, per_row: int, batch: int, per_input: int, n_blocks: int, cache_bytes: int, threads: int
) -> tuple[int, int, int]:
    """(rows per chunk, inputs per group, inputs per chunk)."""
    if device.type != "cpu":  # one chunk: the GPU wants big matmuls
        return batch * per_input, batch, batch
    cap = max(1, cache_bytes // per_row)
    per_chunk = max(1, cap // per_input)  # inputs whose trajectories share chunks
    # a group's error-free rows run together (one row at a time cost ~3x per row), in >= 2 groups per thread
    per_group = min(-(-batch // (2 * threads)), SNAPSHOT_BYTES // ((n_blocks + 1) * per_row))
    return cap, max(per_chunk, per_group // per_chunk * per_chunk), per_chunk


class _Mixture:
    """The mixed distribution P0 clean + (1 - P0) mean of the trajectories, summed group by group."""

    def __init__(self, lay: _Layout, batch: int, per_input: int, p0: float, table: torch.Tensor) -> None:
        copies = np.bincount(np.flatnonzero(lay.value_of < batch) // per_input, minlength=batch)
        # a trajectory without an error in the light cone is its input's error-free state
        self.clean_weight = torch.tensor(p0 + (1 - p0) * copies / per_input, dtype=table.dtype, device=table.device)
        self.alpha = (1 - p0) / per_input
        self.total = torch.zeros(batch, table.shape[0], dtype=table.dtype, device=table.device)

    def add(self, group: _Group, chunk: _Chunk | None, probs: torch.Tensor) -> None:
        """Adds a group's error-free rows (``chunk`` None) or a chunk's rows."""
        device = self.total.device
        if chunk is None:
            idx = torch.as_tensor(group.inputs, device=device)
            self.total = self.total.index_add(0, idx, probs * self.clean_weight[idx][:, None])
        else:
            self.total = self.total.index_add(0, torch.as_tensor(chunk.inputs, device=device), probs, alpha=self.alpha)


def evolve_clean(program: GateProgram, plan: FusedPlan, mats: list[torch.Tensor], batch: int) -> torch.Tensor:
    """(B, 2^n) probabilities of the noiseless circuit, in Qiskit order."""
    with one_thread():
        return _evolve_clean(program, plan, mats, batch)


def _evolve_clean(program: GateProgram, plan: FusedPlan, mats: list[torch.Tensor], batch: int) -> torch.Tensor:
    n = program.num_qubits
    state = torch.zeros(batch, 2**n, dtype=program.dtype, device=program.a_w.device)
    state[:, 0] = 1.0
    for (perm, left, right), prefix in zip(plan.steps, block_prefixes(program, plan, mats), strict=False):
        state = apply_block(state if perm is None else permute(state, perm, n), prefix[0], left, right)
    return plan.canonical(probabilities(state))


def _block_rows(full: torch.Tensor, inputs: np.ndarray) -> torch.Tensor:
    """A block's (1, d, d) matrix, or its per-input (B, d, d) matrices at ``inputs`` (one, if all are equal)."""
    if full.shape[0] == 1:
        return full
    if inputs[0] == inputs[-1] and (len(inputs) < 3 or (inputs == inputs[0]).all()):
        return full[int(inputs[0])][None]
    return full[torch.as_tensor(inputs, device=full.device)]


def _group_finals(
    program: GateProgram, plan: FusedPlan, prefixes: list, lay: _Layout, group: _Group, bufs: list[torch.Tensor]
) -> Iterator[tuple[_Chunk | None, torch.Tensor]]:
    """(None, the group's final error-free states), then (chunk, its final states) for each of its chunks."""
    snaps = _clean_snapshots(program, plan, prefixes, group.inputs, bufs)
    yield None, snaps[-1]
    for chunk in group.chunks:
        yield chunk, _run_chunk(program, plan, prefixes, lay, chunk, snaps, int(group.inputs[0]), bufs)


def _clean_snapshots(
    program: GateProgram, plan: FusedPlan, prefixes: list, inputs: np.ndarray, bufs: list[torch.Tensor]
) -> list[torch.Tensor]:
    """The error-free rows of ``inputs`` before every block (after its permutation), and after the last.

    Kept for the group's trajectories, which start from them: each input's error-free row runs once, not
    once per chunk (before: ~9% of the work at 14 qubits, T = 64).
    """
    n, g, fast, steps = program.num_qubits, len(inputs), bool(bufs), plan.steps
    state = bufs[3][0, :g] if fast else torch.empty(g, 2**n, dtype=program.dtype, device=program.a_w.device)
    state.zero_()
    state[:, 0] = 1.0  # |0...0> in every axis order
    snaps = [state]
    for b, (_, left, right) in enumerate(steps):
        full = prefixes[b][0]
        mat = full if full.shape[0] == 1 else full[int(inputs[0]) : int(inputs[-1]) + 1]  # consecutive inputs
        perm = steps[b + 1][0] if b + 1 < len(steps) else None
        if not fast:
            state = apply_block(state, mat, left, right)
            state = state if perm is None else permute(state, perm, n)
        else:
            target = bufs[3][b + 1, :g]
            state = apply_block_into(state, mat, left, right, target if perm is None else bufs[2][:g])
            state = state if perm is None else permute_into(state, perm, n, target)
        snaps.append(state)
    return snaps


def _run_chunk(
    program: GateProgram,
    plan: FusedPlan,
    prefixes: list,
    lay: _Layout,
    chunk: _Chunk,
    snaps: list[torch.Tensor],
    base: int,
    bufs: list[torch.Tensor],
) -> torch.Tensor:
    """Final states of a chunk's rows. A row joins at its first error's block as that block's error matrix
    applied to its input's error-free state (``snaps``, of the inputs from ``base`` on)."""
    n, device, first, fast, n_blocks = program.num_qubits, program.a_w.device, chunk.first, bool(bufs), len(plan.steps)
    joins = np.searchsorted(chunk.join, np.arange(n_blocks + 1), side="left")  # rows joined before block b
    # the bookkeeping of every block at once (per-block numpy calls cost ~10% at 14 qubits)
    blocks = np.arange(n_blocks)
    lows = lay.before[blocks, first].tolist()
    mids = lay.before[blocks, first + joins[:-1]].tolist()
    highs = lay.before[blocks, first + joins[1:]].tolist()
    one = int(chunk.inputs[0]) if (chunk.inputs == chunk.inputs[0]).all() else -1  # the chunk's only input
    state = bufs[0][:0] if fast else torch.empty(0, device=device)  # no row runs before the first join
    for b in range(int(chunk.join[0]), n_blocks):
        perm, left, right = plan.steps[b]
        active, nxt, lo, mid, hi = int(joins[b]), int(joins[b + 1]), lows[b], mids[b], highs[b]
        if active and perm is not None:
            state = permute(state, perm, n) if not fast else permute_into(state, perm, n, other_buffer(bufs, state))
        out: Any = other_buffer(bufs, state)[:nxt] if fast else None  # the fast path's output rows
        parts = []
        if active:
            full = prefixes[b][0]
            mat = full[one][None] if one >= 0 and full.shape[0] > 1 else _block_rows(full, chunk.inputs[:active])
            parts.append(
                apply_block_into(state, mat, left, right, out[:active])
                if fast
                else apply_block(state, mat, left, right)
            )
        rows, mats = lay.specials.get(b, (None, None))
        if fast and nxt > active and device.type in STACKED_JOINERS:  # each input's joiners: one product
            ins = chunk.inputs[active:nxt]
            cuts = (
                [0, *(np.flatnonzero(ins[1:] != ins[:-1]) + 1).tolist(), nxt - active] if one < 0 else [0, nxt - active]
            )
            for a, z in itertools.pairwise(cuts):
                row = snaps[b][int(ins[a]) - base]
                _stacked_into(row, mats[mid + a : mid + z], left, right, out[active + a : active + z], bufs[4])
        elif nxt > active:  # joiners: their error matrices on their inputs' error-free states
            joiners = chunk.inputs[active:nxt]
            src = snaps[b].index_select(0, torch.as_tensor(joiners - base, device=device))
            parts.append(
                apply_block_into(src, mats[mid:hi], left, right, out[active:nxt])
                if fast
                else apply_block(src, mats[mid:hi], left, right)
            )
        new = out if fast else parts[0] if len(parts) == 1 else torch.cat(parts)
        if mid > lo:  # rows already running that err again here: their own matrices
            local = torch.as_tensor(rows[lo:mid] - first, device=device)
            new.index_put_((local,), apply_block(state[local], mats[lo:mid], left, right))  # a fresh output
        state = new
    return state


def _stacked_into(
    row: torch.Tensor, mats: torch.Tensor, left: int, right: int, out: torch.Tensor, tmp: torch.Tensor
) -> None:
    """``out[i] = apply_block(row, mats[i])`` for k error matrices on one error-free row, as one GEMM.

    The k matrices side by side make one product with the shared row (k small per-row products with R > 1
    ran ~4x slower per row, and copying the row k times cost as much again); a copy with contiguous inner
    runs then puts the k results in row order.
    """
    k, d = mats.shape[0], mats.shape[-1]
    scratch = tmp[:k]
    if right == 1:  # row (L, d) @ [X_1 | ... | X_k] -> (L, k, d)
        torch.matmul(row.view(left, d), mats.permute(1, 0, 2).reshape(d, k * d), out=scratch.view(left, k * d))
    else:  # [X_1^T; ...; X_k^T] @ row (L, d, R) -> (L, k d, R)
        stacked = mats.transpose(1, 2).reshape(k * d, d)
        torch.matmul(stacked, row.view(left, d, right), out=scratch.view(left, k * d, right))
    out.view(k, left, d * right).copy_(scratch.view(left, k, d * right).transpose(0, 1))
