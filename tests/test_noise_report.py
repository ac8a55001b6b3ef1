"""qsetfit.bench.noise_report: noise.csv, noise.json and the plots, read back against the cells written."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from qsetfit.bench import plots
from qsetfit.bench.noise_report import CSV_COLUMNS, write_outputs


def _cell(name, axis, value, accuracy, std, **extra):
    return {"cell": name, "axis": axis, "value": value, "accuracy": accuracy, "accuracy_std": std,
            "seeds": 2, "method": "m", "accuracies": [accuracy - std, accuracy + std], **extra}


RESULT = {
    "n": 50, "exact_accuracy": 0.8, "settings": {"qubits": 4, "readout": 0.0},
    "cells": [
        _cell("p2-0.001", "p2", 1e-3, 0.78, 0.01, p2=1e-3, sampling_ci95=0.02),
        _cell("p2-0.01", "p2", 1e-2, 0.70, 0.03, p2=1e-2),
        _cell("shots-exact", "shots", 0, 0.80, 0.0, shots=0),
        _cell("shots-64", "shots", 64, 0.74, 0.04, shots=64, sampling_ci95=0.01),
        _cell("device-fake_x", "device", "fake_x", 0.6, 0.05, device="fake_x"),
    ],
}


@pytest.fixture()
def figures(monkeypatch):
    """Every figure saved, by file name (the files are still written)."""
    saved, real = {}, plots.save_png

    def keep(fig, path):
        saved[path.name] = fig
        real(fig, path)

    monkeypatch.setattr(plots, "save_png", keep)
    return saved


def test_csv_json_and_plots_hold_the_cells(tmp_path, figures):
    files = write_outputs(tmp_path, RESULT)
    assert files == ["noise.csv", "noise.json", "noise_p2.png", "noise_shots.png", "noise_devices.png"]
    with open(tmp_path / "noise.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS  # the columns, in order; "accuracies" (a list) is left out
    assert [r["cell"] for r in rows] == [c["cell"] for c in RESULT["cells"]]
    assert rows[3]["shots"] == "64" and rows[3]["accuracy"] == "0.74" and rows[0]["shots"] == ""
    assert json.loads((tmp_path / "noise.json").read_text()) == json.loads(json.dumps(RESULT | {"files": files}))
    for name in files[2:]:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    # the p2 plot: accuracy against p2 with seed std and the sampling interval added in quadrature
    ax = figures["noise_p2.png"].axes[0]
    line = ax.containers[0].lines[0]
    np.testing.assert_allclose(line.get_xdata().astype(float), [1e-3, 1e-2])
    np.testing.assert_allclose(line.get_ydata().astype(float), [0.78, 0.70])
    bars = ax.containers[0].lines[2][0].get_segments()
    np.testing.assert_allclose([s[1, 1] - s[0, 1] for s in bars], [2 * np.hypot(0.01, 0.02), 2 * 0.03])
    assert ax.get_xscale() == "symlog" and ax.lines[-1].get_ydata()[0] == 0.8  # the exact accuracy, dashed
    shots = figures["noise_shots.png"].axes[0].containers[0].lines[0]
    np.testing.assert_allclose(shots.get_xdata().astype(float), [64])  # the exact cell (0 shots): not on a log axis
    heights = [p.get_height() for p in figures["noise_devices.png"].axes[0].patches]
    assert heights == pytest.approx([0.8, 0.6])  # "exact" beside each device


def test_only_the_axes_present_get_a_plot(tmp_path):
    result = RESULT | {"cells": [RESULT["cells"][2]]}  # the exact shots cell alone
    assert write_outputs(tmp_path, result) == ["noise.csv", "noise.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise.csv", "noise.json"]
    assert len((tmp_path / "noise.csv").read_text().splitlines()) == 2
