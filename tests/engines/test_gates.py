"""The torch gate set against Qiskit's own gate matrices, unitarity, closed forms and exact derivatives."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from qiskit.circuit import Gate, QuantumCircuit
from qiskit.circuit import library as lib

from qsetfit import QSetFitError
from qsetfit.engines.torch.gates import (
    FIXED_GATES,
    ONE_ANGLE_GATES,
    REAL_GATES,
    SUPPORTED_GATES,
    THREE_ANGLE_GATES,
    angle_matrix,
    expand_custom_gates,
    fixed_matrix,
    gate_spec,
    is_standard_gate,
    unsupported_gate_error,
)
from tests.helpers import seeded

ANGLES = torch.tensor([-2.9, -0.7, 0.0, 0.4, 1.3, math.pi, 5.0], dtype=torch.float64)


def _unitary(m: np.ndarray) -> bool:
    return np.allclose(m.conj().T @ m, np.eye(m.shape[0]), atol=1e-12)


@pytest.mark.parametrize("name", sorted(FIXED_GATES))
def test_fixed_matrices_are_qiskits_and_unitary(name):
    m = fixed_matrix(name, torch.complex128).numpy()
    assert np.array_equal(m, FIXED_GATES[name]().to_matrix())
    assert _unitary(m)
    assert gate_spec(name, FIXED_GATES[name]().num_qubits).num_angles == 0


@pytest.mark.parametrize("name", sorted(ONE_ANGLE_GATES))
def test_one_angle_matrices_equal_qiskits_at_every_angle(name):
    cls = ONE_ANGLE_GATES[name][0]
    mats = angle_matrix(name, ANGLES[:, None], torch.complex128).numpy()
    assert mats.shape[0] == len(ANGLES)
    for theta, m in zip(ANGLES.tolist(), mats):
        assert np.abs(m - cls(theta).to_matrix()).max() <= 1e-14
        assert _unitary(m)
    assert gate_spec(name, cls(0.0).num_qubits).num_angles == 1


@pytest.mark.parametrize("name", sorted(THREE_ANGLE_GATES))
def test_three_angle_matrices_equal_qiskits(name):
    theta = (torch.rand(6, 3, dtype=torch.float64, generator=seeded(3)) * 2 - 1) * 2 * math.pi
    mats = angle_matrix(name, theta, torch.complex128).numpy()
    for angles, m in zip(theta.tolist(), mats):
        assert np.abs(m - THREE_ANGLE_GATES[name](*angles).to_matrix()).max() <= 1e-14
        assert _unitary(m)
    assert gate_spec(name, 1).num_angles == 3


def test_ry_on_zero_gives_cos_and_sin_amplitudes():
    theta = torch.tensor([[0.3], [1.9]], dtype=torch.float64)
    ry = angle_matrix("ry", theta, torch.float64)  # real path
    zero = torch.tensor([1.0, 0.0], dtype=torch.float64)
    out = ry @ zero  # column convention: |psi> = RY |0>
    expected = torch.stack([torch.cos(theta[:, 0] / 2), torch.sin(theta[:, 0] / 2)], dim=-1)
    assert torch.allclose(out, expected, atol=1e-15)


def test_cnot_is_qiskits_little_endian_permutation():
    # Qiskit's CX(control=q0, target=q1) on basis |q1 q0>: flips q1 when q0 = 1, i.e. swaps |01> and |11>.
    m = fixed_matrix("cx", torch.float64)
    assert torch.equal(m, torch.eye(4, dtype=torch.float64)[[0, 3, 2, 1]])


@pytest.mark.parametrize("name", sorted(REAL_GATES))
def test_the_real_gate_set_is_real(name):
    dtype = torch.float64
    if name in FIXED_GATES:
        m = fixed_matrix(name, dtype)
        assert torch.equal(m, torch.tensor(FIXED_GATES[name]().to_matrix().real))
    else:
        m = angle_matrix(name, ANGLES[:, None], dtype)
        ref = np.stack([ONE_ANGLE_GATES[name][0](t).to_matrix() for t in ANGLES.tolist()])
        assert np.abs(ref.imag).max() == 0 and np.abs(m.numpy() - ref.real).max() <= 1e-14


@pytest.mark.parametrize("name", sorted(ONE_ANGLE_GATES))
def test_angle_derivative_is_the_matrix_derivative(name):
    """Autograd through angle_matrix equals a central difference of Qiskit's matrices (exact up to h^2)."""
    cls = ONE_ANGLE_GATES[name][0]
    theta = torch.tensor([[0.37]], dtype=torch.float64, requires_grad=True)
    m = angle_matrix(name, theta, torch.complex128)[0]
    h = 1e-5
    fd = (cls(0.37 + h).to_matrix() - cls(0.37 - h).to_matrix()) / (2 * h)
    for part, ref in ((torch.real, fd.real), (torch.imag, fd.imag)):
        for i, j in np.ndindex(*m.shape):
            (g,) = torch.autograd.grad(part(m[i, j]), theta, retain_graph=True)
            assert abs(g.item() - ref[i, j]) <= 1e-8, (name, i, j)


def test_three_angle_gradients_pass_gradcheck():
    theta = torch.tensor([[0.3, -1.1, 2.2], [1.7, 0.4, -0.5]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: torch.view_as_real(angle_matrix("u", t, torch.complex128)), (theta,))


def test_unknown_gates_are_refused_with_the_transpile_fix():
    with pytest.raises(QSetFitError, match=r"gate 'ccx' is not in the torch engine's gate set .*qiskit\.transpile"):
        gate_spec("ccx", 3)
    assert "rzx" in str(unsupported_gate_error("rzx")) and "basis_gates" in str(unsupported_gate_error("rzx"))
    assert SUPPORTED_GATES == sorted(SUPPORTED_GATES) and len(set(SUPPORTED_GATES)) == len(SUPPORTED_GATES)


def test_standard_gates_are_told_from_lookalikes_and_open_controls():
    assert is_standard_gate(lib.HGate()) and is_standard_gate(lib.CRYGate(0.2))
    assert not is_standard_gate(Gate("h", 1, []))  # a custom gate reusing the name
    assert not is_standard_gate(lib.CXGate(ctrl_state=0))  # controlled on |0>: not the engines' cx
    assert not is_standard_gate(lib.CCXGate())  # not in the set at all


def test_expand_custom_gates_runs_definitions_recursively_and_leaves_standard_circuits_alone():
    plain = QuantumCircuit(2)
    plain.h(0)
    plain.cx(0, 1)
    assert expand_custom_gates(plain) is plain

    inner = QuantumCircuit(1)
    inner.x(0)
    fake_h = inner.to_gate()
    fake_h.name = "h"  # an X that calls itself H
    outer_def = QuantumCircuit(2)
    outer_def.append(fake_h, [1])
    fake_cx = outer_def.to_gate()
    fake_cx.name = "cx"
    qc = QuantumCircuit(2)
    qc.append(fake_cx, [0, 1])
    out = expand_custom_gates(qc)
    assert [inst.operation.name for inst in out.data] == ["x"]
    assert out.find_bit(out.data[0].qubits[0]).index == 1


def test_a_lookalike_without_definition_is_refused_naming_it():
    qc = QuantumCircuit(1)
    qc.append(Gate("ry", 1, [0.1]), [0])
    with pytest.raises(QSetFitError, match="gate 'ry' is a custom Gate that reuses the name .* has no definition"):
        expand_custom_gates(qc)
