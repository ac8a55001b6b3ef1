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

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from qsetfit.engines.density import GateProgram
from qsetfit.engines.evolve import apply_block, inverse, permute, probabilities
from qsetfit.engines.torch_sv import TorchStatevectorEngine, _apply
from qsetfit.engines.gates import IGNORED
from qsetfit.engines.trajectories import ErrorSample
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


def fused_plan(circuit, inputs, weights, num_gates: int, fusion_qubits: int | None = None,
               support: set[int] | None = None) -> FusedPlan:
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
    for g in kept:
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
    return FusedPlan(tuple(tuple(int(index[g]) for g in b.gates) for b in sv.blocks),
                     tuple(tuple(b.qubits) for b in sv.blocks), tuple(sv.plan.steps), list(sv.to_canonical),
                     block_of, local, bits)


def table_support(table: torch.Tensor, n: int) -> set[int]:
    """The qubits a (2^n, k) table of per-basis-state values (Qiskit order) depends on."""
    t = table.detach().cpu().reshape(*([2] * n), -1)
    return {q for q in range(n) if not torch.equal(t.select(n - 1 - q, 0), t.select(n - 1 - q, 1))}


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


def _error_operators(plan: FusedPlan, prefix: torch.Tensor, gates: np.ndarray, inputs: np.ndarray,
                     codes: np.ndarray) -> torch.Tensor:
    """(E, d, d) operators E_j = (Pre_j P^T) Pre_j^H of errors after ``gates`` (all in one block).

    P = X^x Z^z on the gate's qubits (Y as XZ: a global phase no expectation value sees, as ``apply_paulis``),
    so ``v P^T`` is ``v[a ^ x] (-1)^popcount((a ^ x) & z)``: one gather for all errors of the block.
    """
    d, device = prefix.shape[-1], prefix.device
    pre = prefix[torch.as_tensor(plan.local[gates], device=device),
                 torch.as_tensor(inputs if prefix.shape[1] > 1 else np.zeros_like(inputs), device=device)]
    xmask, zmask = np.zeros(len(gates), dtype=np.int64), np.zeros(len(gates), dtype=np.int64)
    for t in range(2):
        digit, bit = (codes >> (2 * t)) & 3, plan.bits[gates, t]
        has = bit >= 0
        xmask[has] |= ((digit[has] == 1) | (digit[has] == 2)).astype(np.int64) << bit[has]
        zmask[has] |= (digit[has] >= 2).astype(np.int64) << bit[has]
    source = np.arange(d)[None, :] ^ xmask[:, None]  # (E, d)
    parity = np.array([bin(v).count("1") & 1 for v in range(d)])[source & zmask[:, None]]
    sign = torch.as_tensor(1.0 - 2.0 * parity, dtype=pre.real.dtype if pre.is_complex() else pre.dtype, device=device)
    index = torch.as_tensor(source, device=device)[:, None, :].expand(-1, d, -1)
    flipped = torch.gather(pre, 2, index) * sign[:, None, :].to(pre.dtype)
    return flipped @ pre.conj().transpose(-1, -2)


def _special_matrices(plan: FusedPlan, prefix: torch.Tensor, rows: np.ndarray, gates: np.ndarray,
                      inputs: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
    """(distinct rows, their (R, d, d) block matrices) for errors (row, gate, input, code) in one block."""
    order = np.lexsort((plan.local[gates], rows))  # by row, then gate order within the block
    rows, gates, inputs, codes = rows[order], gates[order], inputs[order], codes[order]
    ops = _error_operators(plan, prefix, gates, inputs, codes)
    uniq, start, count = np.unique(rows, return_index=True, return_counts=True)
    acc = ops[torch.as_tensor(start, device=ops.device)]
    for extra in range(1, int(count.max())):  # a second (third...) error of the same row in this block
        has = np.flatnonzero(count > extra)
        idx = torch.as_tensor(has, device=ops.device)
        acc = acc.index_put((idx,), acc[idx] @ ops[torch.as_tensor(start[has] + extra, device=ops.device)])
    full = prefix[-1]  # (1 or B, d, d): the whole block
    uniq_inputs = torch.as_tensor(inputs[start] if full.shape[0] > 1 else np.zeros(len(start), dtype=np.int64),
                                  device=full.device)
    return uniq, acc @ full[uniq_inputs]


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


def _layout(program: GateProgram, plan: FusedPlan, prefixes: list[torch.Tensor], batch: int, per_input: int,
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
    row_input = np.concatenate(row_input)
    err_block = plan.block_of[gate]
    specials = {}
    for b in np.unique(err_block):
        hits = np.flatnonzero(err_block == b)
        rows = row_of[traj[hits]]
        specials[int(b)] = _special_matrices(plan, prefixes[b], rows, gate[hits], row_input[rows], code[hits])
    return _Layout(row_input, row_of, clean_row, specials, chunks)


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
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # measured: torch's intra-op threads stall on these small ops on shared cores
    try:
        return _evolve_fused(program, plan, mats, batch, per_input, sample, table, mixture, cache_bytes, threads)
    finally:
        torch.set_num_threads(threads)


def _evolve_fused(program: GateProgram, plan: FusedPlan, mats: list[torch.Tensor], batch: int, per_input: int,
                  sample: ErrorSample, table: torch.Tensor, mixture: bool, cache_bytes: int,
                  threads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    device = program.a_w.device
    prefixes = block_prefixes(program, plan, mats)
    per_row = 2**program.num_qubits * prefixes[0].element_size()
    cap = max(2, cache_bytes // per_row) if device.type == "cpu" else batch * (per_input + 1)
    lay = _layout(program, plan, prefixes, batch, per_input, sample, cap)
    fast = not (torch.is_grad_enabled() and any(m.requires_grad for m in mats))
    size = max(len(c.inputs) + len(c.join) for c in lay.chunks)

    def run(chunk: _Chunk, bufs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        final = _run_chunk(program, plan, prefixes, lay, chunk, bufs)
        probs = probabilities(final) if not bufs or final.is_complex() else torch.mul(final, final, out=final)
        return probs @ table, probs

    def buffers() -> list[torch.Tensor]:
        return _buffers(fast, size, 2**program.num_qubits, prefixes[0])

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


def _serial_chunks(run, lay: _Layout, batch: int, per_input: int, sample: ErrorSample, table: torch.Tensor,
                   bufs: list[torch.Tensor], mixture: bool) -> tuple[list[torch.Tensor], torch.Tensor | None]:
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


def _parallel_chunks(run, chunks: list[_Chunk], threads: int, make_buffers) -> list[torch.Tensor]:
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
    n = program.num_qubits
    state = torch.zeros(batch, 2**n, dtype=program.dtype, device=program.a_w.device)
    state[:, 0] = 1.0
    for (perm, left, right), prefix in zip(plan.steps, block_prefixes(program, plan, mats)):
        state = apply_block(state if perm is None else permute(state, perm, n), prefix[-1], left, right)
    return plan.canonical(probabilities(state))


def _run_chunk(program: GateProgram, plan: FusedPlan, prefixes: list[torch.Tensor], lay: _Layout, chunk: _Chunk,
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
            state = permute(state, perm, n) if not fast else _permute_into(state, perm, n, _other(bufs, state))
        full = prefixes[b][-1]  # (1 or B, d, d): the whole block
        mat = full if full.shape[0] == 1 else full[int(inputs[0])][None] if g == 1 else full[
            torch.as_tensor(inputs[:active], device=device)]
        new = apply_block(state, mat, left, right) if not fast else _apply_into(
            state, mat, left, right, _other(bufs, state)[:active])
        special = lay.specials.get(b)
        lo, hi = (0, 0) if special is None else np.searchsorted(special[0], [first, first + joins[-1]])
        if hi > lo:  # rows with an error here: their own matrices (joiners start from their input's row)
            local = special[0][lo:hi] - first
            src = np.where(local < active, local, inputs[local] - chunk.inputs[0])
            out = apply_block(state[torch.as_tensor(src, device=device)], special[1][lo:hi], left, right)
            if joins[b + 1] > active:
                new = _other(bufs, state)[: joins[b + 1]] if fast else torch.cat(
                    [new, out.new_empty(joins[b + 1] - active, 2**n)])
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
