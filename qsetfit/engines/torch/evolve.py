"""Applying compiled blocks to a batch of statevectors, forwards and (adjoint) backwards.

A compiled circuit is a list of steps ``(perm, L, R)``: optionally permute the state's qubit axes, then
multiply the block's d = 2^k amplitudes, seen as the middle axis of a (B, L, d, R) view, by the block
matrix X (row convention: new = old @ X). Matrices are (1, d, d) when shared by the batch and (B, d, d)
when they depend on the inputs.

``AdjointEvolve`` differentiates the whole evolution without storing intermediate states: the backward
pass un-computes each state with X^H (blocks are unitary) while it carries the adjoint state back, so
memory is one state per sample, and the work runs in batch chunks small enough to stay in the CPU cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

Step = tuple[list[int] | None, int, int]


@dataclass(frozen=True)
class Plan:
    """The static schedule of a compiled circuit."""

    num_qubits: int
    steps: tuple[Step, ...]


def _rows(mat: torch.Tensor, rows: slice) -> torch.Tensor:
    return mat if mat.shape[0] == 1 else mat[rows]


def permute(state: torch.Tensor, perm: list[int], n: int) -> torch.Tensor:
    """Reorder the qubit axes of a (B, 2^n) state (axis i of the result is axis perm[i] of the input)."""
    batch = state.shape[0]
    return state.reshape(batch, *([2] * n)).permute(0, *(p + 1 for p in perm)).reshape(batch, -1)


def inverse(perm: list[int]) -> list[int]:
    """The permutation undoing ``perm``."""
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def apply_block(state: torch.Tensor, mat: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """new = old @ X on the block axes of the (B, L, d, R) view; returns (B, 2^n)."""
    batch, d = state.shape[0], mat.shape[-1]
    if right == 1:  # block axes trail: one GEMM (shared matrix) or one bmm (per-sample matrices)
        if mat.shape[0] == 1:
            return (state.reshape(batch * left, d) @ mat[0]).reshape(batch, -1)
        return (state.reshape(batch, left, d) @ mat).reshape(batch, -1)
    view = state.reshape(batch, left, d, right)
    if mat.shape[0] == 1:
        return (mat[0].transpose(0, 1) @ view).reshape(batch, -1)
    return (mat.transpose(1, 2)[:, None] @ view).reshape(batch, -1)


# In ``apply_block_into``, per-row matrices on a block with fewer trailing amplitudes than this run as an
# einsum: one product per row over all L x R columns, between two copies. The broadcast matmul copies each
# row's matrix L times and multiplies d x R slices: measured 3-5x slower per row at R = 8, 1.5x at R = 32,
# faster from R = 128 (float32, 14 qubits, 3 and 16 rows, 1 thread). ``apply_block`` (autograd, the
# noiseless engine) keeps the matmul: there the einsum was not measured faster.
PER_ROW_EINSUM_BELOW = 64


def other_buffer(bufs: list[torch.Tensor], state: torch.Tensor) -> torch.Tensor:
    """The buffer that ``state`` does not live in."""
    return bufs[1] if state.data_ptr() == bufs[0].data_ptr() else bufs[0]


def permute_into(state: torch.Tensor, perm: list[int], n: int, buf: torch.Tensor) -> torch.Tensor:
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
    if len(runs) == 2 and not state.is_complex():  # a rotation: one (a, b) -> (b, a) transpose per row
        _transpose_into(state.view(rows, *sizes), out.view(rows, sizes[1], sizes[0]))
    else:
        out.view(rows, *(sizes[o - 1] for o in order)).copy_(state.view(rows, *sizes).permute(0, *order))
    return out


_EYES: dict[tuple[int, torch.dtype, torch.device], torch.Tensor] = {}


def _transpose_into(src: torch.Tensor, out: torch.Tensor) -> None:
    """``out = src.transpose(1, 2)`` for (rows, a, b) -> (rows, b, a), exact, as a product with an identity.

    Why not ``copy_``: torch's strided copy moves a (4, 4096) float32 transpose at ~3 GB/s; BLAS packs a
    transposed operand 1.3-2.4x faster (measured on 64 rows of 14 qubits, float32 and float64, 1 thread;
    complex128 was slower than the copy, so complex states keep it).
    Multiplying by 1 and adding zeros is exact for finite values. The identity is the smaller side.
    """
    a, b = src.shape[1], src.shape[2]
    key = (min(a, b), src.dtype, src.device)
    eye = _EYES.get(key)
    if eye is None:
        eye = _EYES[key] = torch.eye(key[0], dtype=src.dtype, device=src.device)
    if a <= b:
        torch.matmul(src.transpose(1, 2), eye, out=out)
    else:
        torch.matmul(eye, src.transpose(1, 2), out=out)


def apply_block_into(state: torch.Tensor, mat: torch.Tensor, left: int, right: int, out: torch.Tensor) -> torch.Tensor:
    """``evolve.apply_block`` written into ``out`` (same rows as ``state``)."""
    batch, d = state.shape[0], mat.shape[-1]
    if right == 1 and mat.shape[0] == 1:
        torch.matmul(state.view(batch * left, d), mat[0], out=out.view(batch * left, d))
    elif right == 1:
        torch.matmul(state.view(batch, left, d), mat, out=out.view(batch, left, d))
    elif mat.shape[0] == 1:
        torch.matmul(mat[0].transpose(0, 1), state.view(batch, left, d, right), out=out.view(batch, left, d, right))
    elif right < PER_ROW_EINSUM_BELOW:
        out.view(batch, left, d, right).copy_(torch.einsum("bij,blir->bljr", mat, state.view(batch, left, d, right)))
    else:
        shaped = state.view(batch, left, d, right)
        torch.matmul(mat.transpose(1, 2)[:, None], shaped, out=out.view(batch, left, d, right))
    return out


def block_grad(old: torch.Tensor, lam: torch.Tensor, d: int, left: int, right: int, shared: bool) -> torch.Tensor:
    """dL/dX (PyTorch's conjugate convention) = sum over rows of old^H (x) lam; (1, d, d) or (B, d, d)."""
    batch = old.shape[0]
    o = old.reshape(batch, left, d, right).conj()
    l_ = lam.reshape(batch, left, d, right)
    if shared:
        return torch.einsum("blir,bljr->ij", o, l_)[None]
    return torch.einsum("blir,bljr->bij", o, l_)


def evolve(state: torch.Tensor, mats: list[torch.Tensor], plan: Plan, rows: slice) -> torch.Tensor:
    """Run every step on ``state`` (the batch rows ``rows``); differentiable by plain autograd."""
    for (perm, left, right), mat in zip(plan.steps, mats, strict=True):
        if perm is not None:
            state = permute(state, perm, plan.num_qubits)
        state = apply_block(state, _rows(mat, rows), left, right)
    return state


def zero_state(batch: int, n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """|0...0> for a batch: (B, 2^n)."""
    state = torch.zeros(batch, 2**n, dtype=dtype, device=device)
    state[:, 0] = 1.0
    return state


def probabilities(state: torch.Tensor) -> torch.Tensor:
    """|psi|^2, real, same shape."""
    return state.real**2 + state.imag**2 if state.is_complex() else state * state


class AdjointEvolve(torch.autograd.Function):
    """Diagonal-observable expectation values of the evolved batch, with an adjoint backward pass.

    Inputs: plan, chunk (rows per cache-sized chunk), diag (2^n, n_obs) in the final axis order,
    initial state (B, 2^n) in Qiskit order or None for |0...0>, batch size, then the block matrices.
    """

    @staticmethod
    def forward(
        ctx: Any,
        plan: Plan,
        chunk: int,
        diag: torch.Tensor,
        init: torch.Tensor | None,
        batch: int,
        *mats: torch.Tensor,
    ) -> torch.Tensor:
        dtype, device = mats[0].dtype, mats[0].device
        finals = []
        for start in range(0, batch, chunk):
            rows = slice(start, min(start + chunk, batch))
            n_rows = rows.stop - rows.start
            state = zero_state(n_rows, plan.num_qubits, dtype, device) if init is None else init[rows].to(dtype)
            finals.append(evolve(state, list(mats), plan, rows))
        final = torch.cat(finals)  # (B, 2^n), final axis order
        ctx.plan, ctx.chunk, ctx.batch, ctx.has_init = plan, chunk, batch, init is not None
        ctx.init_complex = init is not None and init.is_complex()
        ctx.save_for_backward(final, diag, *mats)
        return probabilities(final) @ diag  # (B, n_obs)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        final, diag, *mats = ctx.saved_tensors
        plan, n = ctx.plan, ctx.plan.num_qubits
        grads = [torch.zeros_like(m) for m in mats]
        grad_init = torch.empty_like(final) if ctx.has_init and ctx.needs_input_grad[3] else None
        weight = grad_out.to(diag.dtype) @ diag.T  # (B, 2^n): dL/d|psi_i|^2
        for start in range(0, ctx.batch, ctx.chunk):
            rows = slice(start, min(start + ctx.chunk, ctx.batch))
            psi = final[rows]
            lam = 2 * psi * weight[rows]  # dL/dpsi of sum_o g_o <psi|D_o|psi>
            for i in range(len(mats) - 1, -1, -1):
                perm, left, right = plan.steps[i]
                mat = _rows(mats[i], rows)
                undo = mat.conj().transpose(-1, -2)  # X^H = X^-1: blocks are unitary
                psi = apply_block(psi, undo, left, right)
                g = block_grad(psi, lam, mat.shape[-1], left, right, shared=mats[i].shape[0] == 1)
                if mats[i].shape[0] == 1:
                    grads[i] += g
                else:
                    grads[i][rows] = g
                lam = apply_block(lam, undo, left, right)
                if perm is not None:
                    back = inverse(perm)
                    psi, lam = permute(psi, back, n), permute(lam, back, n)
            if grad_init is not None:
                grad_init[rows] = lam
        if grad_init is not None and not ctx.init_complex and grad_init.is_complex():
            grad_init = grad_init.real  # a real input's gradient is the real part
        return (None, None, None, grad_init, None, *grads)
