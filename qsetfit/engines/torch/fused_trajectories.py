"""Pauli-error trajectories on fused gate blocks: the same estimator as ``trajectories.py``, at block speed.

``evolve_trajectories`` applies the circuit gate by gate, so every trajectory reads and writes its state
~300 times at 14 qubits. Here each block of ``fused_blocks.py`` is one matmul, an error is folded into the
matrix of the block holding its gate, and a trajectory joins, as a copy of its input's error-free row, at the
first block with an error, so it costs the blocks from there on; rows without an error in a block share the
block's matrix. The error sample (``trajectories.sample_errors``) and hence the estimator are unchanged: both
evolutions agree to rounding. Differentiable by autograd; without it, rows run in preallocated buffers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

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
from qsetfit.engines.torch.trajectories import ErrorSample

__all__ = ["FusedPlan", "evolve_clean", "evolve_fused", "fused_plan", "table_support"]


@dataclass
class _Chunk:
    """Consecutive rows run together: the error-free rows of ``inputs``, then trajectories in join order."""

    first: int  # global row of the chunk's first row
    inputs: np.ndarray  # (g,) consecutive inputs; their error-free rows come first
    join: np.ndarray  # (m,) ascending: the block where each trajectory row joins


@dataclass
class _Layout:
    """Rows of every chunk, concatenated, and each block's rows with errors."""

    row_input: np.ndarray  # (R,) input of each row
    row_of: np.ndarray  # (n_traj,) row of trajectory t
    clean_row: np.ndarray  # (B,) row of each input's error-free state
    specials: dict  # block -> (sorted rows with an error there, their (R, d, d) block matrices)
    chunks: list[_Chunk]


def _layout(program: GateProgram, plan: FusedPlan, prefixes: list, batch: int, per_input: int,
            sample: ErrorSample, cap: int) -> _Layout:
    """Chunks of at most ``cap`` rows (whole inputs, or one input's error-free row and part of its trajectories:
    then the chunk shares that input's block matrices), and the error matrices of every block."""
    n_traj, n_blocks = len(sample.first), len(plan.steps)
    traj = np.concatenate([np.arange(n_traj), sample.traj])  # every error: trajectory, gate, Pauli code
    gate = np.concatenate([sample.first, sample.gate])
    code = np.concatenate([sample.first_code, sample.code])
    keep = plan.block_of[gate] >= 0  # errors outside the light cone change nothing (``fused_plan``)
    traj, gate, code = traj[keep], gate[keep], code[keep]
    join = np.full(n_traj, n_blocks)  # the first block with an error; fusion may move a later error earlier
    np.minimum.at(join, traj, plan.block_of[gate])
    per_group = max(1, cap // (per_input + 1))
    row_of, clean_row = np.empty(n_traj, dtype=np.int64), np.empty(batch, dtype=np.int64)
    row_input, chunks, row = [], [], 0
    for start in range(0, batch, per_group):
        inputs = np.arange(start, min(start + per_group, batch))
        trajs = np.arange(inputs[0] * per_input, (inputs[-1] + 1) * per_input)
        trajs = trajs[np.argsort(join[trajs], kind="stable")]
        clean_row[inputs] = row + np.arange(len(inputs))
        row_of[trajs] = clean_row[trajs // per_input]  # without an error that matters: the error-free state
        trajs = trajs[join[trajs] < n_blocks]
        for piece in np.array_split(trajs, max(1, -(-len(trajs) // max(1, cap - len(inputs))))):
            row_of[piece] = row + len(inputs) + np.arange(len(piece))
            row_input += [inputs, piece // per_input]
            chunks.append(_Chunk(row, inputs, join[piece]))
            row += len(inputs) + len(piece)
    rows_of_input = np.concatenate(row_input)
    err_block = plan.block_of[gate]
    specials = {}
    for b in np.unique(err_block):
        hits = np.flatnonzero(err_block == b)
        rows = row_of[traj[hits]]
        specials[int(b)] = special_matrices(plan, prefixes[b], rows, gate[hits], rows_of_input[rows], code[hits])
    return _Layout(rows_of_input, row_of, clean_row, specials, chunks)


def evolve_fused(program: GateProgram, plan: FusedPlan, mats: list[torch.Tensor], batch: int, per_input: int,
                 sample: ErrorSample, table: torch.Tensor, *, mixture: bool = False,
                 cache_bytes: int = 1 << 22) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Final probabilities times ``table`` of the error-free states and of every trajectory.

    Args:
        program, plan, mats: the circuit, its fused plan, and ``program.matrices(x, w)``.
        batch, per_input: B inputs, T >= 1 trajectories each (trajectory t belongs to input t // T).
        sample: the trajectories' errors (``trajectories.sample_errors``, B T of them).
        table: (2^n, k) values per basis state, rows in the plan's final axis order (``plan.final_order``).
        mixture: also return the mixed distribution P0 clean + (1 - P0) mean of the trajectories (for shots).
        cache_bytes: on CPU rows run in chunks of about this many bytes through all blocks (measured: a
            block's matmul is ~2.7x faster on a cache-resident chunk than on the whole batch); each chunk
            carries its inputs' error-free rows, which the trajectories copy when they join.

    Returns:
        (B, k) error-free values, (B, T, k) trajectory values, and with ``mixture`` the (B, 2^n) mixed
        distribution in Qiskit order. The probabilities (identity table, after ``plan.canonical``) equal
        ``trajectories.evolve_trajectories``'s, to rounding.
    """
    with _one_thread() as threads:
        return _evolve_fused(program, plan, mats, batch, per_input, sample, table, mixture, cache_bytes, threads)


@contextmanager
def _one_thread() -> Iterator[int]:
    """Single-threaded torch ops inside; yields the caller's thread count (restored on exit).

    Measured on 2 shared cores: torch's intra-op threads stall 5-50x on these small ops when the other core
    is busy (a 64 x 32 x 32 one-qubit update took 46 ms); chunks run in parallel Python threads instead.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)


def _evolve_fused(program: GateProgram, plan: FusedPlan, mats: list[torch.Tensor], batch: int, per_input: int,
                  sample: ErrorSample, table: torch.Tensor, mixture: bool, cache_bytes: int,
                  threads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    device = program.a_w.device
    gates = np.concatenate([sample.first, sample.gate])
    needed: dict[int, set[int]] = {}
    for g in np.unique(gates[plan.block_of[gates] >= 0]):
        needed.setdefault(int(plan.block_of[g]), set()).add(int(plan.local[g]))
    prefixes = block_prefixes(program, plan, mats, needed)
    like = prefixes[0][0]
    per_row = 2**program.num_qubits * like.element_size()
    cap = max(2, cache_bytes // per_row) if device.type == "cpu" else batch * (per_input + 1)
    lay = _layout(program, plan, prefixes, batch, per_input, sample, cap)
    fast = not (torch.is_grad_enabled() and any(m.requires_grad for m in mats))
    size = max(len(c.inputs) + len(c.join) for c in lay.chunks)

    def run(chunk: _Chunk, bufs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        final = _run_chunk(program, plan, prefixes, lay, chunk, bufs)
        probs = probabilities(final) if not bufs or final.is_complex() else torch.mul(final, final, out=final)
        return probs @ table, probs

    def buffers() -> list[torch.Tensor]:
        return _buffers(fast, size, 2**program.num_qubits, like)

    if fast and not mixture and device.type == "cpu" and threads > 1 and len(lay.chunks) > 1:
        values, mix = _parallel_chunks(run, lay.chunks, threads, buffers), None
    else:
        values, mix = _serial_chunks(run, lay, batch, per_input, sample, table, buffers(), mixture)
    out = torch.cat(values)
    traj = out[torch.as_tensor(lay.row_of, device=device)].reshape(batch, per_input, -1)
    return out[torch.as_tensor(lay.clean_row, device=device)], traj, None if mix is None else plan.canonical(mix)


def _buffers(fast: bool, size: int, dim: int, like: torch.Tensor) -> list[torch.Tensor]:
    """Two (size, dim) buffers the chunks run in without autograd, allocated once per call and thread
    (fresh pages per chunk cost as much as a block); none with autograd."""
    return [like.new_empty(size, dim) for _ in range(2)] if fast else []


def _serial_chunks(run: Callable[..., Any], lay: _Layout, batch: int, per_input: int, sample: ErrorSample,
                   table: torch.Tensor, bufs: list[torch.Tensor], mixture: bool
                   ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Every chunk's values in turn, and with ``mixture`` the mixed distribution (final axis order)."""
    device, values, mix = table.device, [], None
    if mixture:
        copies = np.bincount(np.flatnonzero(lay.row_of == lay.clean_row[np.arange(len(lay.row_of)) // per_input])
                             // per_input, minlength=batch)  # trajectories that are their input's error-free state
        clean_weight = torch.tensor(sample.p0 + (1 - sample.p0) * copies / per_input, dtype=table.dtype,
                                    device=device)
        mix = torch.zeros(batch, table.shape[0], dtype=table.dtype, device=device)
    for chunk in lay.chunks:
        vals, probs = run(chunk, bufs)
        values.append(vals)
        if mix is not None:
            g, idx = len(chunk.inputs), torch.as_tensor(lay.row_input[chunk.first : chunk.first + len(probs)])
            if lay.clean_row[chunk.inputs[0]] == chunk.first:  # the first chunk of these inputs
                mix = mix.index_add(0, idx[:g].to(device), probs[:g] * clean_weight[chunk.inputs][:, None])
            mix = mix.index_add(0, idx[g:].to(device), probs[g:], alpha=(1 - sample.p0) / per_input)
    return values, mix


def _parallel_chunks(run: Callable[..., Any], chunks: list[_Chunk], threads: int,
                     make_buffers: Callable[[], list[torch.Tensor]]) -> list[torch.Tensor]:
    """Chunks spread over ``threads`` Python threads (torch releases the GIL), each torch op single-threaded.

    Measured on 2 shared cores: torch's intra-op threads on these small, chunk-sized ops lose more to
    synchronisation than they gain (5x slower than one thread under load); whole chunks do not synchronise.
    """
    local = threading.local()

    def work(chunk: _Chunk) -> torch.Tensor:
        if not hasattr(local, "bufs"):
            torch.set_num_threads(1)  # OpenMP's thread count is per thread: set it in each worker too
            local.bufs = make_buffers()
        return run(chunk, local.bufs)[0]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(work, chunks))


def evolve_clean(program: GateProgram, plan: FusedPlan, mats: list[torch.Tensor], batch: int) -> torch.Tensor:
    """(B, 2^n) probabilities of the noiseless circuit, in Qiskit order."""
    with _one_thread():
        return _evolve_clean(program, plan, mats, batch)


def _evolve_clean(program: GateProgram, plan: FusedPlan, mats: list[torch.Tensor], batch: int) -> torch.Tensor:
    n = program.num_qubits
    state = torch.zeros(batch, 2**n, dtype=program.dtype, device=program.a_w.device)
    state[:, 0] = 1.0
    for (perm, left, right), prefix in zip(plan.steps, block_prefixes(program, plan, mats), strict=False):
        state = apply_block(state if perm is None else permute(state, perm, n), prefix[0], left, right)
    return plan.canonical(probabilities(state))


def _run_chunk(program: GateProgram, plan: FusedPlan, prefixes: list, lay: _Layout, chunk: _Chunk,
               bufs: list[torch.Tensor]) -> torch.Tensor:
    """Final states of a chunk's rows; a trajectory starts as a copy of its input's row at its join block."""
    n, device, first, g = program.num_qubits, program.a_w.device, chunk.first, len(chunk.inputs)
    joins = g + np.searchsorted(chunk.join, np.arange(len(plan.steps) + 1), side="left")  # active rows per block
    inputs = lay.row_input[first : first + joins[-1]]
    fast = bool(bufs)
    state = bufs[0][:g] if fast else torch.empty(g, 2**n, dtype=program.dtype, device=device)
    state.zero_()
    state[:, 0] = 1.0
    for b, (perm, left, right) in enumerate(plan.steps):
        active = joins[b]
        if perm is not None:
            state = permute(state, perm, n) if not fast else permute_into(state, perm, n, other_buffer(bufs, state))
        full = prefixes[b][0]  # (1 or B, d, d): the whole block
        mat = full if full.shape[0] == 1 else full[int(inputs[0])][None] if g == 1 else full[
            torch.as_tensor(inputs[:active], device=device)]
        new = apply_block(state, mat, left, right) if not fast else apply_block_into(
            state, mat, left, right, other_buffer(bufs, state)[:active])
        special = lay.specials.get(b)
        lo, hi = (0, 0) if special is None else np.searchsorted(special[0], [first, first + joins[-1]])
        # rows with an error here: their own matrices (joiners start from their input's row)
        if special is not None and hi > lo:
            local = special[0][lo:hi] - first
            src = np.where(local < active, local, inputs[local] - chunk.inputs[0])
            out = apply_block(state[torch.as_tensor(src, device=device)], special[1][lo:hi], left, right)
            if joins[b + 1] > active:
                new = other_buffer(bufs, state)[: joins[b + 1]] if fast else torch.cat(
                    [new, out.new_empty(joins[b + 1] - active, 2**n)])
            new.index_put_((torch.as_tensor(local, device=device),), out)  # a matmul's output: safe in place
        state = new
    return state
