"""Pauli-error trajectories of the noisy torch engine: the error sampler's distribution, agreement with the
density matrix within the standard error, gradients through each trajectory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from qiskit.circuit import QuantumCircuit

from qsetfit.engines.torch.density import GateProgram
from qsetfit.engines.torch.noisy import TorchNoiseEngine
from qsetfit.engines.torch.trajectories import sample_errors
from tests.engines.noisy_circuits import Z, noise_file, profile_pair, random_head, step


def test_error_sampler_matches_its_distribution():
    qc = QuantumCircuit(1)
    qc.x(0)
    qc.x(0)
    lam = [0.4, 2 / 3]  # non-identity Pauli probabilities q = 3/4 lam = 0.3, 0.5
    sample = sample_errors(GateProgram(qc, [], [], lam), 40_000, torch.Generator().manual_seed(3))
    assert sample.p0 == pytest.approx(0.7 * 0.5)
    expected_first0 = 0.3 / 0.65
    se = math.sqrt(expected_first0 * (1 - expected_first0) / 40_000)
    assert abs((sample.first == 0).mean() - expected_first0) <= Z * se
    second = np.isin(np.flatnonzero(sample.first == 0), sample.traj[sample.gate == 1]).mean()  # P(error at 1)
    assert abs(second - 0.5) <= Z * math.sqrt(0.25 / (sample.first == 0).sum())
    assert set(np.unique(sample.first_code)) == {1, 2, 3}


def test_trajectories_agree_with_the_density_matrix_within_their_standard_error(tmp_path):
    head, x, w = random_head(4, 30, 5, gates_1q=["ry", "h", "rz"], gates_2q=["cx", "cz"])
    noise = noise_file(tmp_path, "p1 = 5e-3\np2 = 4e-2\nreadout = 0.02\n")
    exact = TorchNoiseEngine(head, profile_pair(noise)[1])
    traj = TorchNoiseEngine(head, profile_pair(noise, trajectories=400, seed=7, density_matrix_max_qubits=2)[1])
    assert (traj.method, traj.trajectories) == ("trajectories", 400)
    ref, _, gw_ref = step(exact, x, w)
    out, _, _ = step(traj, x, w)
    result = traj.last_result
    assert (result.method, result.trajectories, result.shots) == ("trajectories", 400, 0)
    se = result.stderr.numpy()
    assert (se > 0).all() and se.max() < 0.02
    assert (np.abs(out - ref) <= Z * se).all()
    # the gradient of each draw is unbiased too: 8 independent draws, their mean within Z standard errors
    grads = np.stack([step(traj, x, w)[2] for _ in range(8)])
    spread = grads.std(axis=0, ddof=1) / math.sqrt(len(grads))
    assert (np.abs(grads.mean(axis=0) - gw_ref) <= Z * spread + 1e-12).all()


def test_gradients_flow_through_each_trajectory(tmp_path):
    head, x, w = random_head(3, 16, 9, gates_1q=["ry", "rx"], gates_2q=["cx"])
    engine = TorchNoiseEngine(head, profile_pair(noise_file(tmp_path, "p1 = 0.05\np2 = 0.2\n"), method="statevector",
                                              trajectories=3, seed=1)[1], dtype=torch.float64)  # gradcheck

    def fixed_draw(xs, ws):
        engine.generator.manual_seed(11)  # the same trajectories each call: a deterministic function
        return engine(xs, ws)

    inputs = (torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True))
    assert torch.autograd.gradcheck(fixed_draw, inputs)
