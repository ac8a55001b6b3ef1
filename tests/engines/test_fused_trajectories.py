"""Fused-block trajectories (``fused_trajectories.py``) against the gate-by-gate evolution on the same error sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qsetfit.engines.torch.density import GateProgram
from qsetfit.engines.torch.evolve import apply_block, permute, permute_into
from qsetfit.engines.torch.fused_trajectories import (
    _stacked_into,
    evolve_clean,
    evolve_fused,
    fused_plan,
    table_support,
)
from qsetfit.engines.torch.gates import REAL_GATES
from qsetfit.engines.torch.trajectories import evolve_trajectories, sample_errors
from tests.conftest import random_circuit

T = 6


def _case(seed: int, real: bool, fusion: int, rate: float = 0.08, source: list | None = None):
    """A random circuit, every gate depolarizing at ``rate`` (so rows carry several errors, some in one block).

    ``source`` (a list) receives the circuit, its inputs and weights.
    """
    rng = np.random.default_rng(seed)
    names = sorted(REAL_GATES - {"cry"}) + ["ry"] * 3 if real else None
    qc, x, w = random_circuit(5, 40, rng, gate_names=names)
    program = GateProgram(qc, x, w, [rate] * len([i for i in qc.data if i.operation.name != "barrier"]))
    plan = fused_plan(qc, x, w, len(program.gates), fusion)
    if source is not None:
        source += [qc, x, w]
    xs = torch.tensor(rng.uniform(-1, 1, (3, len(x))))
    ws = torch.tensor(rng.uniform(-np.pi, np.pi, len(w)))
    sample = sample_errors(program, 3 * T, torch.Generator().manual_seed(seed))
    return program, plan, xs, ws, sample


def _hard_cases(plan, sample) -> tuple[int, int]:
    """(later errors whose gate fusion moved to a block before the first error's, rows with 2+ errors in a block)."""
    first, later = plan.block_of[sample.first], plan.block_of[sample.gate]
    keys = np.concatenate([np.arange(len(first)), sample.traj]) * 10**6 + np.concatenate([first, later])
    return int((later < first[sample.traj]).sum()), int((np.unique(keys, return_counts=True)[1] > 1).sum())


# (seed, real gates, fusion width, cache bytes). A row is 256 bytes (real) or 512 (complex): chunks of 2 rows
# (one trajectory), 3 rows, one input (T + 1 = 7 rows), all inputs (1 << 30: per-row matrices).
@pytest.mark.parametrize("seed, real, fusion, cache", [(1, True, 2, 1), (2, False, 3, 512 * 3), (4, True, 3, 256 * 7),
                                                       (0, True, 3, 1 << 30), (3, False, 4, 1 << 30)])
@pytest.mark.parametrize("grad", [False, True])
def test_fused_trajectories_equal_gate_by_gate_on_the_same_errors(seed, real, fusion, cache, grad):
    program, plan, x, w, sample = _case(seed, real, fusion)
    moved, multiple = _hard_cases(plan, sample)
    assert multiple > 0 and (moved > 0 or seed in (0, 3))  # the draws reach the cases that need care
    ref_clean, ref_traj = evolve_trajectories(program, program.matrices(x, w), 3, T, sample)
    table = torch.eye(2**5, dtype=torch.float64)
    with torch.set_grad_enabled(grad):
        xs = x.clone().requires_grad_(grad)
        clean, traj, mix = evolve_fused(program, plan, program.matrices(xs, w), 3, T, sample, table, mixture=True,
                                        cache_bytes=cache)
    # the identity table: values are the final-order probabilities
    assert torch.allclose(plan.canonical(clean), ref_clean, atol=1e-12, rtol=0)
    assert torch.allclose(plan.canonical(traj.reshape(3 * T, -1)).reshape(3, T, -1), ref_traj, atol=1e-12, rtol=0)
    assert torch.allclose(mix, sample.p0 * ref_clean + (1 - sample.p0) * ref_traj.mean(1), atol=1e-12, rtol=0)
    assert torch.allclose(evolve_clean(program, plan, program.matrices(x, w), 3), ref_clean, atol=1e-12, rtol=0)


def test_gradients_through_fused_trajectories_equal_gate_by_gate():
    program, plan, x, w, sample = _case(4, True, 3)
    table = plan.final_order(torch.tensor(np.random.default_rng(0).normal(size=(2**5, 2))))
    weight = torch.tensor([1.0, -0.4])

    def loss(fused: bool) -> tuple[torch.Tensor, ...]:
        xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
        mats = program.matrices(xs, ws)
        if fused:
            clean, traj, _ = evolve_fused(program, plan, mats, 3, T, sample, table, cache_bytes=64 * 16 * 3)
            total = clean.sum(0) + traj.sum((0, 1))
        else:
            clean, traj = evolve_trajectories(program, mats, 3, T, sample)
            canon = plan.canonical(table.T).T  # the same table in Qiskit order
            total = (clean @ canon).sum(0) + (traj @ canon).sum((0, 1))
        return torch.autograd.grad((total * weight).sum(), (xs, ws))

    for got, want in zip(loss(True), loss(False)):
        assert torch.allclose(got, want, atol=1e-10, rtol=0)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.complex128])
def test_merged_permutation_copy_equals_permute(seed, dtype):
    """Exactly: rotations (two runs; real states as a product with an identity) and general permutations."""
    rng = np.random.default_rng(seed)
    n = 7
    perm = rng.permutation(n).tolist() if seed > 1 else [[3, 4, 5, 6, 0, 1, 2], [6, 0, 1, 2, 3, 4, 5]][seed]
    state = torch.tensor(rng.normal(size=(3, 2**n))).to(dtype)
    buf = torch.empty(5, 2**n, dtype=dtype)
    assert torch.equal(permute_into(state, perm, n, buf), permute(state, perm, n))


@pytest.mark.parametrize("left, right", [(8, 1), (2, 4), (1, 8), (4, 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex128])
def test_stacked_joiners_equal_one_block_per_row(left, right, dtype):
    """k error matrices on one error-free row, as one product, equal k separate block applications."""
    gen = torch.Generator().manual_seed(left * 10 + right)
    d, dim = 4, 4 * left * right
    row = torch.randn(dim, dtype=dtype, generator=gen)
    for k in (1, 3):
        mats = torch.randn(k, d, d, dtype=dtype, generator=gen)
        out, tmp = torch.full((k + 2, dim), torch.nan, dtype=dtype), torch.empty(k + 2, dim, dtype=dtype)
        _stacked_into(row, mats, left, right, out[:k], tmp)
        want = apply_block(row.expand(k, dim), mats, left, right)
        assert torch.allclose(out[:k], want, atol=1e-5 if dtype == torch.float32 else 1e-12, rtol=0)
        assert out[k:].isnan().all()  # rows past k untouched


def test_light_cone_pruning_and_parallel_chunks_change_no_value():
    """Gates (and their errors) outside the observables' backward light cone are left out; chunks run on 2 threads."""
    source: list = []
    program, plan, x, w, sample = _case(5, True, 3, rate=0.05, source=source)
    n = 5
    table = torch.tensor(np.random.default_rng(1).normal(size=(2**n, 2)))
    table = table.reshape(*([2] * n), 2).sum(dim=(0, 1, 2), keepdim=True).expand(*([2] * n), 2).reshape(2**n, 2)
    support = table_support(table, n)  # Qiskit qubits 0 and 1 (the last two axes)
    assert support == {0, 1}
    pruned = fused_plan(*source, len(program.gates), 3, support=support)
    assert (pruned.block_of[:-1] < 0).sum() > 0
    mats = program.matrices(x, w)
    want = evolve_fused(program, plan, mats, 3, T, sample, plan.final_order(table))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        got = evolve_fused(program, pruned, mats, 3, T, sample, pruned.final_order(table), cache_bytes=256 * 3)
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads
    for a, b in zip(got[:2], want[:2]):
        assert torch.allclose(a, b, atol=1e-12, rtol=0)


def test_groups_bounded_by_the_snapshot_memory_give_the_same_values(monkeypatch):
    """Error-free snapshots are kept per group of inputs: one input per group (a tiny snapshot budget) and all
    inputs in one group (whole-batch chunks mixing inputs) both equal the gate-by-gate evolution."""
    import qsetfit.engines.torch.fused_trajectories as fused

    program, plan, x, w, sample = _case(6, True, 3)
    ref_clean, ref_traj = evolve_trajectories(program, program.matrices(x, w), 3, T, sample)
    table = torch.eye(2**5, dtype=torch.float64)
    for budget in (1, 1 << 30):
        monkeypatch.setattr(fused, "SNAPSHOT_BYTES", budget)
        clean, traj, _ = evolve_fused(program, plan, program.matrices(x, w), 3, T, sample, table, cache_bytes=1 << 30)
        assert torch.allclose(plan.canonical(clean), ref_clean, atol=1e-12, rtol=0)
        assert torch.allclose(plan.canonical(traj.reshape(3 * T, -1)).reshape(3, T, -1), ref_traj, atol=1e-12, rtol=0)


def test_joiners_as_per_row_products_as_on_a_gpu(monkeypatch):
    """The joiners' per-row products (the path a GPU takes, where a chunk holds every input) run here on the CPU
    and equal the gate-by-gate evolution."""
    from qsetfit.engines.torch import fused_trajectories as fused

    monkeypatch.setattr(fused, "STACKED_JOINERS", ())
    program, plan, x, w, sample = _case(8, True, 3)
    ref_clean, ref_traj = evolve_trajectories(program, program.matrices(x, w), 3, T, sample)
    table = torch.eye(2**5, dtype=torch.float64)
    for cache in (256 * 3, 1 << 30):  # small chunks, and one chunk of every input
        with torch.no_grad():
            clean, traj, _ = evolve_fused(program, plan, program.matrices(x, w), 3, T, sample, table, cache_bytes=cache)
        assert torch.allclose(plan.canonical(clean), ref_clean, atol=1e-12, rtol=0)
        assert torch.allclose(plan.canonical(traj.reshape(3 * T, -1)).reshape(3, T, -1), ref_traj, atol=1e-12, rtol=0)


def test_buffers_kept_between_calls_leave_earlier_results_alone():
    """The second call of the same shapes runs in the first call's buffers: equal values, and the first
    call's results are not overwritten."""
    from qsetfit.engines.torch import fused_trajectories as fused

    program, plan, x, w, sample = _case(7, True, 3)
    table = torch.eye(2**5, dtype=torch.float64)
    with torch.no_grad():
        first = evolve_fused(program, plan, program.matrices(x, w), 3, T, sample, table, cache_bytes=256 * 3)
        kept = [t.clone() for t in first[:2]]
        assert fused._POOL._free  # the call's buffers were kept
        pooled = [b.data_ptr() for bufs in fused._POOL._free for b in bufs]
        second = evolve_fused(program, plan, program.matrices(x, w), 3, T, sample, table, cache_bytes=256 * 3)
    assert sorted(b.data_ptr() for bufs in fused._POOL._free for b in bufs) == sorted(pooled)  # reused, not new
    for a, b, c in zip(first[:2], kept, second[:2], strict=True):
        assert torch.equal(a, b) and torch.equal(a, c)
