"""``bench noise`` on the noisy torch engine: the same cells as Aer within the stated tolerance, and the switch."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
import typer
from typer.testing import CliRunner

from qsetfit.bench import noise_cells
from qsetfit.head.circuits import HeadConfig
from qsetfit.errors import QSetFitError
from qsetfit.head.hybrid import HybridHead
from qsetfit.bench.noise import _readouts, bench_noise
from qsetfit.bench.noise_grid import noise_grid, write_profiles
from qsetfit.profiles import load_backend_profile
from tests.helpers import seeded
from tests.test_noise_bench import toy_run  # noqa: F401  (the module-scoped trained run)

# Estimates against the exact value: 5 standard errors, a false-failure rate below 6e-7 per comparison for a
# Gaussian estimate; every draw is seeded, so the tests never flake.
Z = 5.0


def test_default_moves_depolarizing_and_shot_cells_to_torch_and_aer_keeps_all():
    cells = noise_grid(p2_grid=(0.0, 1e-3), shots_grid=(64,), fake_backends=("fake_torino",), trajectories=7)
    moved = {c.name: c.backend for c in noise_cells.on_simulator(cells, "torch")}
    assert [moved[n]["engine"] for n in ("p2-0", "p2-0.001", "shots-64")] == ["torch"] * 3
    assert moved["device-fake_torino"]["engine"] == "aer"  # from_backend's thermal relaxation: not on torch
    assert moved["p2-0.001"]["trajectories"] == 7 and moved["shots-64"]["shots"] == 64
    assert [c.backend["engine"] for c in noise_cells.on_simulator(cells, "aer")] == ["aer"] * 4
    with pytest.raises(QSetFitError, match="simulator must be one of torch, aer"):
        noise_cells.on_simulator(cells, "qpu")


def test_chunks_stay_under_the_state_budget():
    class Engine:  # 30 blocks of 10 gates on 5 qubits: 10 x 4^5 prefix values per block and input
        num_qubits, trajectories, method = 14, 100, "trajectories"
        plan = SimpleNamespace(gates=[tuple(range(10))] * 30, qubits=[tuple(range(5))] * 30)

    size = noise_cells.chunk_size(Engine)
    assert 1 <= size and size * 30 * 10 * 4**5 * 16 <= noise_cells.TRAJECTORY_BYTES < (size + 1) * 30 * 10 * 4**5 * 16
    Engine.method, Engine.num_qubits = "density_matrix", 4
    assert noise_cells.chunk_size(Engine) == 256
    Engine.method, Engine.num_qubits = "statevector", 14
    assert noise_cells.chunk_size(Engine) * 2 * 2**14 * 16 <= noise_cells.STATE_BYTES


def _head_and_cell(tmp_path, qubits, p2, *, trajectories=0, readout=0.02, seed=2):
    head = HybridHead(HeadConfig.preset("tiny", encoders=0, qubits=qubits, measured=2), seed=seed)
    cells = noise_grid(p2_grid=(p2,), readout=readout, shots_grid=(), fake_backends=(),
                       trajectories=max(trajectories, 1))
    paths = {}
    for simulator in noise_cells.SIMULATORS:
        (cell,) = noise_cells.on_simulator(cells, simulator)
        path = write_profiles([cell], tmp_path / simulator)[cell.name]
        if trajectories:  # force trajectories on both sides
            path.write_text(path.read_text().replace('"density_matrix"', '"statevector"'))
        paths[simulator] = path
    features = torch.rand(12, qubits, dtype=torch.float64, generator=seeded()) * 2 - 1
    return head, paths, features


def _on(head, path, features, seed=0):
    head.set_engine(str(path), seed=seed)
    if load_backend_profile(str(path)).engine == "torch":
        z, se = noise_cells.readouts(head, features)
    else:
        z, se = _readouts(head, features), None
    method = head.quantum.engine.method
    head.set_engine("torch")
    return z, se, method


def test_torch_density_matrix_cell_equals_aer(tmp_path):
    head, paths, features = _head_and_cell(tmp_path, 4, 2e-2)
    z_t, se_t, method_t = _on(head, paths["torch"], features)
    z_a, _, method_a = _on(head, paths["aer"], features)
    assert method_t == method_a == "density_matrix"
    assert (z_t - z_a).abs().max().item() <= 1e-10 and se_t.abs().max().item() == 0.0
    assert (z_t - head.quantum(features)).abs().max().item() > 1e-3  # the noise bites


def test_torch_and_aer_trajectory_cells_agree_within_tolerance(tmp_path):
    trajectories = 400
    head, paths, features = _head_and_cell(tmp_path, 5, 5e-2, trajectories=trajectories)
    # the exact noisy value: the torch density matrix (equal to Aer's to 1e-10, test above)
    dm = paths["torch"].parent / "dm.toml"
    dm.write_text(paths["torch"].read_text().replace('"statevector"', '"density_matrix"'))
    exact, _, _ = _on(head, dm, features)
    z_t, se_t, method_t = _on(head, paths["torch"], features, seed=3)
    z_a, _, method_a = _on(head, paths["aer"], features, seed=3)
    assert (method_t, method_a) == ("trajectories", "statevector_trajectories")
    assert bool((se_t > 0).all())
    assert bool(((z_t - exact).abs() <= Z * se_t + 1e-12).all())
    # each Aer trajectory's <Z> lies in [-1, 1], so its standard deviation is at most 1
    assert bool(((z_a - exact).abs() <= Z / math.sqrt(trajectories)).all())
    assert bool(((z_t - z_a).abs() <= Z * torch.sqrt(se_t**2 + 1.0 / trajectories)).all())


def test_near_boundary_counts_predictions_the_error_could_flip():
    head = HybridHead(HeadConfig.preset("tiny", encoders=0, measured=2), seed=1)
    f = torch.rand(50, 4, dtype=torch.float64, generator=seeded()) * 2 - 1
    with torch.no_grad():
        z = head.quantum(f)
    assert not noise_cells.near_boundary(head, f, z, torch.zeros_like(z)).any()
    assert noise_cells.near_boundary(head, f, z, torch.full_like(z, 1e6)).all()


def test_bench_default_torch_and_simulator_aer(toy_run, tmp_path):  # noqa: F811
    run, _ = toy_run
    options = dict(data="demo", p2_grid=(1e-2,), shots_grid=(64,), fake_backends=(), seeds=2, test_limit=30,
                   progress=False)
    ours = bench_noise(run, tmp_path / "t", **options)
    aer = bench_noise(run, tmp_path / "a", simulator="aer", **options)
    by = {c["cell"]: c for c in ours["cells"]}
    assert [c["simulator"] for c in ours["cells"]] == ["torch", "torch"]
    assert [c["simulator"] for c in aer["cells"]] == ["aer", "aer"]
    assert 'engine = "aer"' in (tmp_path / "a" / "profiles" / "backends" / "p2-0.01.toml").read_text()
    # a 4-qubit density matrix on both sides: the same predictions, hence the same accuracy
    dm, dm_aer = by["p2-0.01"], aer["cells"][0]
    assert dm["method"] == dm_aer["method"] == "density matrix, exact <Z>"
    assert dm["accuracy"] == dm_aer["accuracy"] and dm["simulated"] == dm_aer["simulated"] == dm["undecided"]
    assert dm["stderr"] == 0.0 and dm["seeds"] == 1
    shots = by["shots-64"]
    assert shots["method"] == "statevector, 64 shots" and shots["seeds"] == 2 and shots["stderr"] > 0
    header = (tmp_path / "t" / "noise.csv").read_text().splitlines()[0].split(",")
    assert {"simulator", "method", "trajectories", "stderr", "near_boundary"} <= set(header)
    assert json.loads((tmp_path / "t" / "noise.json").read_text())["settings"]["simulator"] == "torch"
    with pytest.raises(QSetFitError, match="another head, data or grid"):  # resume keeps the simulator
        bench_noise(run, tmp_path / "t", simulator="aer", resume=True, **options)


def test_cli_simulator_option(monkeypatch, tmp_path):
    import qsetfit.bench.noise as nb
    from qsetfit.cli.bench import register
    from qsetfit.cli.common import friendly

    seen = {}
    cell = {"cell": "p2-0.01", "simulator": "torch", "method": "trajectories (20/input, error-free branch exact)",
            "stderr": 0.0123, "near_boundary": 2.0, "accuracy": 0.8, "accuracy_std": 0.0, "agreement": 0.9,
            "seeds": 1, "seconds": 1.0, "simulated": 3, "undecided": 3, "sampling_ci95": 0.0}
    monkeypatch.setattr(nb, "bench_noise", lambda run, out, **kw: (seen.update(kw), {
        "cells": [cell], "n": 10, "exact_accuracy": 0.8, "files": ["noise.csv"]})[1])
    app = typer.Typer()
    register(app, friendly)
    result = CliRunner().invoke(app, ["bench", "noise", "RUN", "--out", str(tmp_path), "--quick"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert seen["simulator"] == "torch" and "torch: trajectories (20/input" in result.output
    assert "0.012 (2)" in result.output
    CliRunner().invoke(app, ["bench", "noise", "RUN", "--out", str(tmp_path), "--simulator", "aer"])
    assert seen["simulator"] == "aer"
    monkeypatch.undo()
    bad = CliRunner().invoke(app, ["bench", "noise", "RUN", "--out", str(tmp_path), "--simulator", "qpu"])
    assert bad.exit_code == 1 and "simulator must be one of torch, aer" in bad.output
    assert "Traceback" not in bad.output
