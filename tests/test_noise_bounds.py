"""qsetfit.bench.noise_bounds: the read-out box of a noise cell and the examples decided on all of it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from qiskit.circuit import QuantumCircuit

from qsetfit.bench.noise_bounds import decided_mask, no_error_probability, noise_box
from qsetfit.bench.noise_grid import Cell, noise_grid, write_profiles
from qsetfit.head.circuits import HeadConfig
from qsetfit.head.hybrid import HybridHead
from tests.helpers import seeded


def test_decided_means_every_corner_of_the_readout_box_agrees():
    config = HeadConfig(qubits=3, connectivity=1, reuploads=1, layers=0, measured=2, encoders=0, classes=3)
    head = HybridHead(config, seed=3)
    with torch.no_grad():
        head.linear.weight[:, :3] *= 8.0  # features dominate for some examples, module 2 for others
    f = torch.rand(400, 3, dtype=torch.float64, generator=seeded()) * 2 - 1
    with torch.no_grad():
        z = head.quantum(f)
        predictions = head.linear(torch.cat([f, z], 1)).argmax(1)
        corners = torch.stack([head.linear(torch.cat([f, torch.tensor(c, dtype=torch.float64).expand(len(f), 2)], 1))
                               .argmax(1) for c in itertools.product((-1.0, 1.0), repeat=2)])  # (4, N)
    ones = torch.ones(len(f), 2, dtype=torch.float64)
    decided = decided_mask(head, f, predictions, -ones, ones)
    # logits are linear in z, so class k wins on the whole box iff it wins at every corner
    expected = (corners == predictions).all(0).numpy()
    np.testing.assert_array_equal(decided, expected)
    assert 0 < decided.sum() < len(f)  # both kinds occur, so the test means something
    # a box shrunk to the point z decides everything; a box around z decides a superset of the full box
    assert decided_mask(head, f, predictions, z, z).all()
    narrow = decided_mask(head, f, predictions, (z - 0.1).clamp(-1, 1), (z + 0.1).clamp(-1, 1))
    assert (narrow >= decided).all() and narrow.sum() > decided.sum()


def test_noise_box_bounds_aer_depolarizing_readouts(tmp_path):
    config = HeadConfig.preset("tiny", encoders=0, qubits=4)
    head = HybridHead(config, seed=2)
    (cell,) = noise_grid(p2_grid=(3e-2,), readout=0.02, shots_grid=(), fake_backends=())
    paths = write_profiles([cell], tmp_path)
    circuit = head.quantum.head_circuit.circuit
    counts = [len(i.qubits) for i in circuit.data]
    assert no_error_probability(circuit, cell) == pytest.approx(
        (1 - 3e-3 * 3 / 4) ** counts.count(1) * (1 - 3e-2 * 15 / 16) ** counts.count(2))
    f = torch.rand(6, 4, dtype=torch.float64, generator=seeded()) * 2 - 1
    with torch.no_grad():
        exact = head.quantum(f)
        head.set_engine(str(paths[cell.name]))
        assert head.quantum.engine.method == "density_matrix"
        noisy = head.quantum(f)
    low, high = noise_box(circuit, cell, exact)
    assert (noisy - exact).abs().max().item() > 0.01  # the noise bites...
    assert bool(((low - 1e-12 <= noisy) & (noisy <= high + 1e-12)).all())  # ...and stays inside the box
    assert (high - low).max().item() < 2.0


def test_box_closed_form_on_a_hand_built_circuit():
    qc = QuantumCircuit(3)
    qc.ry(0.3, 0)
    qc.rx(0.2, 1)
    qc.cx(0, 1)
    qc.ccx(0, 1, 2)  # three qubits: no rate in the cell, so no factor
    (cell,) = noise_grid(p2_grid=(0.04,), readout=0.1, shots_grid=(), fake_backends=())
    p0 = (1 - 0.004 * 3 / 4) ** 2 * (1 - 0.04 * 15 / 16)
    assert no_error_probability(qc, cell) == pytest.approx(p0, rel=1e-14)
    z = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    low, high = noise_box(qc, cell, z)
    scale = 1 - 2 * 0.1
    assert low[0].tolist() == pytest.approx([scale * (p0 * 0.5 - (1 - p0)), scale * (-p0 - (1 - p0))], rel=1e-14)
    assert high[0].tolist() == pytest.approx([scale * (p0 * 0.5 + (1 - p0)), scale * (-p0 + (1 - p0))], rel=1e-14)


def test_ideal_cells_box_the_point_and_shot_or_device_cells_the_whole_range():
    qc = QuantumCircuit(2)
    qc.cx(0, 1)
    z = torch.tensor([[0.25, -0.75]], dtype=torch.float64)
    ideal, shots = noise_grid(p2_grid=(0.0,), shots_grid=(64,), fake_backends=())
    assert no_error_probability(qc, ideal) == 1.0
    low, high = noise_box(qc, ideal, z)
    assert torch.equal(low, z) and torch.equal(high, z)
    device = Cell("device", "fake_x", {}, {"kind": "device", "backend": "fake_x"})
    for cell in (shots, device):
        assert no_error_probability(qc, cell) is None
        low, high = noise_box(qc, cell, z)
        assert torch.equal(low, -torch.ones_like(z)) and torch.equal(high, torch.ones_like(z))
