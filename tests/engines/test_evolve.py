"""Block evolution against qiskit.quantum_info.Statevector; the adjoint backward pass against finite differences.

Plans are built by hand here (not by the torch engine's compiler), so the schedule semantics are checked on
their own: a step permutes the qubit axes, then multiplies a contiguous block of k qubits by X (new = old @ X,
so X = U^T for a Qiskit gate matrix U on those qubits, lowest qubit first).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit.circuit import QuantumCircuit
from qiskit.quantum_info import Statevector, random_statevector

from qsetfit.engines.torch.evolve import (
    AdjointEvolve,
    Plan,
    apply_block,
    apply_block_into,
    evolve,
    inverse,
    permute,
    probabilities,
    zero_state,
)
from qsetfit.engines.torch.gates import STANDARD_CLASSES, SUPPORTED_GATES, angle_matrix, fixed_matrix, gate_spec

ANGLED = {1: ["ry", "rx", "rz", "p"], 2: ["rzz", "cry", "crx", "ryy"]}  # differentiable one-angle gates
EVERY = {k: [g for g in SUPPORTED_GATES if STANDARD_CLASSES[g](*[0.1] * gate_spec(g, 0).num_angles).num_qubits == k]
         for k in (1, 2)}  # the whole gate set, fixed and three-angle gates included


def _num_angles(name: str) -> int:
    return gate_spec(name, 0).num_angles


def _random_schedule(n: int, steps: int, batch: int, rng: np.random.Generator, real: bool = False,
                     gates: dict[int, list[str]] = ANGLED):
    """Random steps with gate names and angles (shared by the batch or per sample; None for fixed gates).

    Returns (plan, names, angles, qubits, order): ``qubits[s]`` are the logical qubits of step s's block (lowest
    first) and ``order[a]`` the logical qubit on reshape axis a (axis 0 most significant) of the evolved state.
    """
    order = [n - 1 - a for a in range(n)]
    plan_steps, names, angles, qubits = [], [], [], []
    choices = {1: ["ry"], 2: ["cry"]} if real else gates
    for _ in range(steps):
        perm = rng.permutation(n).tolist() if rng.random() < 0.5 else None
        if perm is not None:
            order = [order[p] for p in perm]
        k = int(rng.integers(1, 3)) if n > 1 else 1
        q = int(rng.integers(0, n - k + 1))
        names.append(choices[k][int(rng.integers(len(choices[k])))])
        rows, n_angles = batch if rng.random() < 0.5 else 1, _num_angles(names[-1])
        angles.append(torch.tensor(rng.uniform(-3, 3, size=(rows, n_angles)), requires_grad=True) if n_angles else None)
        plan_steps.append((perm, 2 ** (n - q - k), 2**q))
        qubits.append([order[n - 1 - q - j] for j in range(k)])
    return Plan(n, tuple(plan_steps)), names, angles, qubits, order


def _mats(names, angles, dtype) -> list[torch.Tensor]:
    """Block matrices X = U^T (row convention) of the gates, differentiable in their angles."""
    return [(fixed_matrix(name, dtype)[None] if theta is None else angle_matrix(name, theta, dtype)).transpose(-1, -2)
            for name, theta in zip(names, angles)]


def _circuits(names, angles, qubits, n: int, batch: int) -> list[QuantumCircuit]:
    """The circuit each sample runs, made of Qiskit's own gates, for Statevector."""
    circuits = []
    for b in range(batch):
        qc = QuantumCircuit(n)
        for name, theta, qs in zip(names, angles, qubits):
            values = [] if theta is None else theta[b if theta.shape[0] > 1 else 0].tolist()
            qc.append(STANDARD_CLASSES[name](*values), qs)
        circuits.append(qc)
    return circuits


def _to_qiskit_order(state: torch.Tensor, order: list[int], n: int) -> torch.Tensor:
    """Permute the axes of an evolved state back so that axis a holds qubit n-1-a (Qiskit's order)."""
    back = [order.index(n - 1 - i) for i in range(n)]
    return permute(state, back, n)


def test_permute_moves_qubit_axes_and_inverse_undoes_it():
    rng = np.random.default_rng(0)
    state = torch.tensor(rng.normal(size=(3, 16)))
    perm = [2, 0, 3, 1]
    got = permute(state, perm, 4).numpy()
    ref = state.numpy().reshape(3, 2, 2, 2, 2).transpose(0, 3, 1, 4, 2).reshape(3, 16)
    assert np.array_equal(got, ref)
    assert torch.equal(permute(permute(state, perm, 4), inverse(perm), 4), state)
    assert inverse(inverse(perm)) == perm


@pytest.mark.parametrize("seed", range(6))
def test_random_plans_equal_statevector(seed):
    rng = np.random.default_rng(seed)
    n, batch = int(rng.integers(1, 5)), 3
    plan, names, angles, qubits, order = _random_schedule(n, 16, batch, rng, gates=EVERY)
    mats = _mats(names, angles, torch.complex128)
    circuits = _circuits(names, angles, qubits, n, batch)
    init = torch.stack([torch.tensor(random_statevector(2**n, seed=seed * 10 + b).data) for b in range(batch)])
    with torch.no_grad():
        out = _to_qiskit_order(evolve(init.clone(), mats, plan, slice(0, batch)), order, n)
    for b, qc in enumerate(circuits):
        ref = Statevector(init[b].numpy()).evolve(qc).data
        assert np.abs(out[b].numpy() - ref).max() <= 1e-12


def test_rows_select_the_batch_rows_of_per_sample_matrices():
    rng = np.random.default_rng(5)
    plan, names, angles, qubits, order = _random_schedule(3, 8, 4, rng)
    mats = _mats(names, angles, torch.complex128)
    circuits = _circuits(names, angles, qubits, 3, 4)
    init = zero_state(2, 3, torch.complex128, torch.device("cpu"))
    with torch.no_grad():
        out = _to_qiskit_order(evolve(init, mats, plan, slice(2, 4)), order, 3)
    for row, b in enumerate((2, 3)):
        assert np.abs(out[row].numpy() - Statevector.from_int(0, 8).evolve(circuits[b]).data).max() <= 1e-12


def test_zero_state_and_probabilities():
    z = zero_state(2, 3, torch.float64, torch.device("cpu"))
    assert z.shape == (2, 8) and torch.equal(z.sum(dim=1), torch.ones(2, dtype=torch.float64)) and z[0, 0] == 1
    psi = torch.tensor([[0.6, 0.8j]], dtype=torch.complex128)
    assert torch.allclose(probabilities(psi), torch.tensor([[0.36, 0.64]], dtype=torch.float64))
    assert torch.equal(probabilities(torch.tensor([[-0.5]])), torch.tensor([[0.25]]))


def test_a_cnot_step_permutes_basis_states():
    # Block on qubits (0, 1) of 3: L = 2, R = 1; X = CX^T. |q2 q1 q0> = |0 0 1> -> |0 1 1>.
    plan = Plan(3, ((None, 2, 1),))
    state = torch.zeros(1, 8, dtype=torch.float64)
    state[0, 1] = 1.0
    out = evolve(state, [fixed_matrix("cx", torch.float64).T[None]], plan, slice(0, 1))
    assert out[0].nonzero().flatten().tolist() == [3]


def _adjoint_setup(seed: int, real: bool, batch: int):
    rng = np.random.default_rng(seed)
    plan, names, angles, _, _ = _random_schedule(3, 7, batch, rng, real=real)
    diag = torch.tensor(rng.choice([-1.0, 1.0], size=(8, 2)))  # two Z-string-like diagonal observables
    return plan, names, angles, diag


@pytest.mark.parametrize("real", [False, True])
@pytest.mark.parametrize("chunk", [1, 2, 5])
def test_adjoint_forward_and_backward_equal_plain_autograd(real, chunk):
    batch, dtype = 5, torch.float64 if real else torch.complex128
    plan, names, angles, diag = _adjoint_setup(11, real, batch)
    mats = _mats(names, angles, dtype)
    out = AdjointEvolve.apply(plan, chunk, diag, None, batch, *mats)
    ref = probabilities(evolve(zero_state(batch, 3, dtype, torch.device("cpu")), mats, plan, slice(0, batch))) @ diag
    assert torch.allclose(out, ref, atol=1e-12)
    g_out = torch.tensor(np.random.default_rng(1).normal(size=out.shape))
    got = torch.autograd.grad(out, angles, g_out, retain_graph=True)
    want = torch.autograd.grad(ref, angles, g_out)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, atol=1e-10)


@pytest.mark.parametrize("complex_init", [False, True])
def test_adjoint_gradients_pass_gradcheck_including_the_initial_state(complex_init):
    """Finite differences of the angles (matrices stay unitary) and of the initial amplitudes, chunk < batch."""
    plan, names, angles, diag = _adjoint_setup(21, False, 3)
    states = np.stack([random_statevector(8, seed=s).data for s in range(3)])
    init = torch.tensor(states if complex_init else states.real, requires_grad=True)

    def f(init, *angles_):
        return AdjointEvolve.apply(plan, 2, diag, init, 3, *_mats(names, angles_, torch.complex128))

    assert torch.autograd.gradcheck(f, (init, *angles), atol=1e-7)


@pytest.mark.parametrize("left, right", [(16, 1), (4, 4), (2, 8), (1, 16), (8, 2), (2, 64)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex128])
@pytest.mark.parametrize("shared", [True, False])
def test_apply_block_into_equals_apply_block(left, right, dtype, shared):
    """Every branch of the buffer-writing block product (shared, per-row matmul, per-row einsum) on 3 rows."""
    gen = torch.Generator().manual_seed(left * 100 + right)
    d = 4
    state = torch.randn(3, d * left * right, dtype=dtype, generator=gen)
    mat = torch.randn(1 if shared else 3, d, d, dtype=dtype, generator=gen)
    out = torch.empty_like(state)
    got = apply_block_into(state, mat, left, right, out)
    assert got.data_ptr() == out.data_ptr()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert torch.allclose(got, apply_block(state, mat, left, right), atol=tol, rtol=0)
