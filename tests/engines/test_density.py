"""Exact density-matrix evolution of the noisy torch engine: equal to Aer's density-matrix method and to closed
forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from qiskit.circuit import Parameter, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qsetfit import HeadCircuit, make_engine
from qsetfit.engines.aer.engine import AerEngine
from qsetfit.engines.torch.noisy import TorchNoiseEngine
from tests.engines.noisy_circuits import noise_file, profile_pair, random_head, step


@pytest.mark.parametrize("seed,n,noise", [
    (0, 3, "p1 = 1e-2\np2 = 5e-2\nreadout_p01 = 0.02\nreadout_p10 = 0.05\n"),
    (1, 4, "p1 = 3e-3\np2 = 2e-2\nreadout = 0.03\n"),
    (2, 2, "p1 = 0.2\np2 = 0.9\n"),
])
def test_density_matrix_equals_aer_density_matrix(tmp_path, seed, n, noise):
    head, x, w = random_head(n, 24, seed)
    aer_profile, torch_profile = profile_pair(noise_file(tmp_path, 'kind = "depolarizing"\n' + noise))
    ours = TorchNoiseEngine(head, torch_profile)
    assert ours.method == "density_matrix"
    out_t, gx_t, gw_t = step(ours, x, w)
    out_a, gx_a, gw_a = step(AerEngine(head, aer_profile), x, w)
    assert np.abs(out_t - out_a).max() <= 1e-10
    assert np.abs(gw_t - gw_a).max() <= 1e-9 and np.abs(gx_t - gx_a).max() <= 1e-9
    ideal, _, _ = step(make_engine(head, "torch"), x, w)
    assert np.abs(out_t - ideal).max() > 1e-3  # the noise bites


def test_closed_forms_one_and_two_qubits(tmp_path):
    theta, phi = Parameter("t"), Parameter("p")
    qc = QuantumCircuit(2)
    qc.ry(theta, 0)
    qc.cx(0, 1)
    qc.ry(phi, 1)
    head = HeadCircuit(qc, [theta], [phi], [SparsePauliOp("IZ"), SparsePauliOp("ZI"), SparsePauliOp("ZZ")])
    p1, p2, p01, p10 = 0.03, 0.08, 0.02, 0.05
    noise = noise_file(tmp_path, f'p1 = {p1}\np2 = {p2}\nreadout_p01 = {p01}\nreadout_p10 = {p10}\n')
    engine = TorchNoiseEngine(head, profile_pair(noise)[1])
    t, p = 0.7, -0.4
    out = engine(torch.tensor([[t]], dtype=torch.float64), torch.tensor([p], dtype=torch.float64))[0].numpy()
    a, b = p10 - p01, 1 - p01 - p10  # readout: <Z> -> a + b <Z> on each qubit
    z0 = (1 - p1) * (1 - p2) * math.cos(t)  # RY -> D1 ; CX -> D2 ; Z0 commutes with RY(phi) on qubit 1
    z1 = (1 - p1) * (1 - p2) * (1 - p1) * math.cos(t) * math.cos(p)  # <Z1> after CX = <Z0> before; then RY(phi)
    z0z1 = (1 - p2) * (1 - p1) * math.cos(p)  # <Z0 Z1> after CX = <Z1> before = 1; then RY(phi)
    expected = [a + b * z0, a + b * z1, a * a + a * b * (z0 + z1) + b * b * z0z1]
    assert np.abs(out - expected).max() <= 1e-12


def test_one_qubit_closed_form_and_readout_only_profile_is_exact_statevector(tmp_path):
    x, w = Parameter("x"), Parameter("w")
    qc = QuantumCircuit(1)
    qc.ry(x, 0)
    qc.ry(w, 0)
    head = HeadCircuit(qc, [x], [w], [SparsePauliOp("Z")])
    engine = TorchNoiseEngine(head, profile_pair(noise_file(tmp_path, "p1 = 0.1\nreadout = 0.04\n"))[1])
    x0, w0 = torch.tensor([[0.3]], dtype=torch.float64), torch.tensor([0.2], dtype=torch.float64)
    assert float(engine(x0, w0)) == pytest.approx(0.92 * 0.81 * math.cos(0.5), abs=1e-13)
    readout_only = TorchNoiseEngine(head, profile_pair(noise_file(tmp_path, "readout = 0.04\n", "ro"))[1])
    assert (readout_only.method, readout_only.trajectories) == ("statevector", 0)
    assert float(readout_only(x0, w0)) == pytest.approx(0.92 * math.cos(0.5), abs=1e-13)
