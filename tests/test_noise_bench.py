"""The noise benchmark: files and plots, resuming, sampling, noise that does not help (the pruning rule:
test_noise_bounds)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from qsetfit.head.circuits import HeadConfig
from qsetfit.errors import QSetFitError
from qsetfit.bench.noise import bench_noise, evaluate_cell, sampling_ci95
from qsetfit.bench.noise_grid import noise_grid, write_profiles


@pytest.fixture(scope="module")
def toy_run(small_splits, tmp_path_factory):
    """A tiny head trained briefly on the demo slice, saved as a run directory."""
    from qsetfit.modeling import QSetFitModel
    from qsetfit.training.arguments import TrainingArguments

    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("noise") / "run"
    model = QSetFitModel(HeadConfig.preset("tiny"), label_names=small_splits.label_names)
    model.fit(small_splits.train, small_splits.validation, args=TrainingArguments(epochs=4, learning_rate=0.05),
              run_dir=run, progress=False)
    with torch.no_grad():  # lean on module 2, so its noise reaches the predictions
        model.head.linear.weight[:, -1] *= 20.0
    model.save(run)
    return run, small_splits.test


def test_bench_writes_files_and_noise_does_not_help(toy_run, tmp_path):
    run, test = toy_run
    data = tmp_path / "test.csv"
    rows = "".join(f'"{t}",{test.label_names[y]}\n' for t, y in zip(test.texts, test.labels))
    data.write_text("text,label\n" + rows)
    out = tmp_path / "bench"
    result = bench_noise(run, out, data=str(data), p2_grid=(0.0, 1e-2), shots_grid=(64, "exact"), fake_backends=(),
                         seeds=2, progress=False)
    for name in ("noise.csv", "noise.json", "noise_p2.png", "noise_shots.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "noise_p2.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "noise.json").read_text())["cells"] == json.loads(json.dumps(result["cells"]))
    cells = {c["cell"]: c for c in result["cells"]}
    n, exact = result["n"], result["exact_accuracy"]
    assert n == len(test)
    # the ideal cells reproduce the exact predictions; p2 = 0 is proven unchanged without simulating anything
    for name in ("p2-0", "shots-exact"):
        assert cells[name]["agreement"] == 1.0 and cells[name]["accuracy"] == exact and cells[name]["seeds"] == 1
    assert cells["p2-0"]["simulated"] == 0 and cells["p2-0.01"]["simulated"] > 0
    # 4 qubits: an exact density matrix, so one deterministic run; noise may not beat exact beyond one example
    noisy = cells["p2-0.01"]
    assert noisy["method"].startswith("density matrix") and noisy["seeds"] == 1
    assert noisy["accuracy"] <= exact + 1.0 / n + 1e-12
    shots = cells["shots-64"]
    assert shots["seeds"] == 2 and shots["method"] == "statevector, 64 shots"
    header = (out / "noise.csv").read_text().splitlines()[0]
    assert header.startswith("cell,axis,value,p1,p2")


def test_exact_pass_in_threads_equals_one_thread_and_grid_selects_axes(toy_run, tmp_path, monkeypatch):
    """The exact pass runs chunks in Python threads (``_exact``); ``grid`` keeps only the chosen axes."""
    import qsetfit.bench.noise as nb
    from qsetfit.modeling import QSetFitModel

    run, test = toy_run
    model = QSetFitModel.load(run)
    texts = list(test.texts) * 3  # several chunks
    monkeypatch.setattr(nb, "CHUNK", 16)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = nb._exact(model, texts, False)
        torch.set_num_threads(2)
        two = nb._exact(model, texts, False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one[0], two[0]) and torch.equal(one[1], two[1]) and (one[2] == two[2]).all()
    assert len(one[0]) == len(texts)
    data = tmp_path / "test.csv"
    data.write_text("text,label\n" + "".join(f'"{t}",{test.label_names[y]}\n' for t, y in zip(test.texts, test.labels)))
    result = bench_noise(run, tmp_path / "b", data=str(data), p2_grid=(0.0, 1e-2), shots_grid=(64,), fake_backends=(),
                         seeds=1, progress=False, grid=["p2"])
    assert [c["cell"] for c in result["cells"]] == ["p2-0", "p2-0.01"] and result["settings"]["grid"] == ["p2"]


def test_interrupted_bench_resumes_finished_cells(toy_run, tmp_path, monkeypatch):
    import qsetfit.bench.noise as nb

    run, _ = toy_run
    out = tmp_path / "bench"
    options = dict(data="demo", p2_grid=(0.0, 1e-2), shots_grid=(), fake_backends=(), seeds=1, test_limit=12,
                   progress=False)
    real, calls = nb.evaluate_cell, []

    def dies_on_second_cell(*args, **kwargs):
        calls.append(args[1].stem)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(nb, "evaluate_cell", dies_on_second_cell)
    with pytest.raises(KeyboardInterrupt):
        bench_noise(run, out, **options)
    saved = json.loads((out / "noise.json").read_text())
    assert saved["partial"] is True and [c["cell"] for c in saved["cells"]] == ["p2-0"]
    calls.clear()
    monkeypatch.setattr(nb, "evaluate_cell", lambda *a, **k: (calls.append(a[1].stem), real(*a, **k))[1])
    result = bench_noise(run, out, resume=True, **options)
    assert calls == ["p2-0.01"]  # only the unfinished cell ran again
    assert [c["cell"] for c in result["cells"]] == ["p2-0", "p2-0.01"] and result["partial"] is False
    assert result["cells"][0] == saved["cells"][0]
    with pytest.raises(QSetFitError, match="another head, data or grid"):
        bench_noise(run, out, resume=True, **(options | {"seeds": 2}))


def test_sampling_interval_closed_form():
    # 100 sampled of 1,000 undecided out of 2,000; changes +1 x 5, -1 x 5, 0 x 90: sd = sqrt(10/99)
    d = np.array([1.0] * 5 + [-1.0] * 5 + [0.0] * 90)
    expected = 1.96 * 0.5 * (10 / 99) ** 0.5 / 10 * (900 / 999) ** 0.5
    assert sampling_ci95(d, 1000, 2000) == pytest.approx(expected)
    assert sampling_ci95(np.zeros(100), 1000, 2000) == 0.0  # noise flipped nothing in the sample
    assert sampling_ci95(d, 100, 2000) == 0.0  # everything simulated: no sampling error


def test_budget_samples_undecided_examples_of_trajectory_cells(toy_run, tmp_path):
    from qsetfit.modeling import QSetFitModel

    run, test = toy_run
    model = QSetFitModel.load(run)
    head = model.head
    (cell,) = noise_grid(p2_grid=(5e-2,), shots_grid=(), fake_backends=(), trajectories=3)
    path = write_profiles([cell], tmp_path)[cell.name]
    path.write_text(path.read_text().replace('"density_matrix"', '"statevector"'))  # force trajectories
    with torch.no_grad():
        features = head.features(model.embed(test.texts, show_progress=False))
        z = head.quantum(features)
        exact = head.linear(torch.cat([features, z], 1)).argmax(1).numpy()
    labels = np.asarray(test.labels)
    simulate = np.ones(len(labels), dtype=bool)
    full = evaluate_cell(head, path, features, labels, exact, simulate, seeds=1)
    assert full["method"].startswith("statevector trajectories (3/input")
    assert full["simulated"] == full["undecided"] == len(labels) and full["sampling_ci95"] == 0.0
    sampled = evaluate_cell(head, path, features, labels, exact, simulate, seeds=2, budget=12)  # 12 // 3 = 4 inputs
    assert sampled["simulated"] == 4 and f"4 of {len(labels)} undecided" in sampled["method"]
    assert sampled["seeds"] == 2 and sampled["sampling_ci95"] >= 0.0
    # every example undecided: each seed's estimate is the exact accuracy plus a mean of 4 changes in {-1, 0, 1}
    exact_accuracy = float((exact == labels).mean())
    assert all(abs((a - exact_accuracy) * 4 - round((a - exact_accuracy) * 4)) < 1e-9 for a in sampled["accuracies"])
    # everything simulated: the difference estimator is the plain accuracy of the noisy predictions
    assert 0.0 <= full["accuracy"] <= 1.0 and full["accuracy"] * len(labels) == pytest.approx(
        round(full["accuracy"] * len(labels)))


@pytest.mark.slow
def test_bench_device_noise_cell(toy_run, tmp_path):
    run, _ = toy_run
    result = bench_noise(run, tmp_path / "b", data="demo", p2_grid=(), shots_grid=(), fake_backends=("fake_torino",),
                         seeds=1, test_limit=20, progress=False)
    (cell,) = result["cells"]
    assert "device qubits" in cell["method"] and 0 <= cell["accuracy"] <= 1
    assert (tmp_path / "b" / "noise_devices.png").is_file()


def test_cli_bench_noise(monkeypatch, tmp_path):
    import qsetfit.bench.noise as nb
    from qsetfit.cli.common import friendly as _friendly
    from qsetfit.cli.bench import register

    seen = {}
    cell = {"cell": "p2-0.01", "method": "density matrix, exact <Z>", "accuracy": 0.8, "accuracy_std": 0.0,
            "agreement": 0.9, "seeds": 1, "seconds": 1.0, "simulated": 3, "undecided": 3, "sampling_ci95": 0.0}

    def fake(run, out, **kwargs):
        seen.update(kwargs, run=run, out=out)
        return {"cells": [cell], "n": 10, "exact_accuracy": 0.8, "files": ["noise.csv"]}

    monkeypatch.setattr(nb, "bench_noise", fake)
    app = typer.Typer()
    register(app, _friendly)
    result = CliRunner().invoke(app, ["bench", "noise", "RUN", "--out", str(tmp_path), "--p2", "0.01", "--shots",
                                      "exact", "--fake-backend", "none", "--quick", "--grid", "p2"])
    assert result.exit_code == 0, result.output
    assert seen["p2_grid"] == [0.01] and seen["shots_grid"] == ["exact"] and seen["fake_backends"] == ["none"]
    assert seen["quick"] is True and seen["grid"] == ["p2"] and "p2-0.01" in result.output
    monkeypatch.undo()
    bad = CliRunner().invoke(app, ["bench", "noise", "/nonexistent/run", "--out", str(tmp_path / "x"), "--quick"])
    assert bad.exit_code == 1 and "does not exist" in bad.output and "Traceback" not in bad.output
