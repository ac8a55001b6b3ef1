"""qsetfit.bench.energy: the command end to end (the model's arithmetic: test_energy_model, the QPU curve:
test_energy_qpu)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from qsetfit import HeadConfig
from qsetfit.bench import energy as en
from qsetfit.bench import energy_qpu
from qsetfit.cli import app
from qsetfit.modeling import QSetFitModel

runner = CliRunner()
TINY = HeadConfig.preset("tiny")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """An untrained tiny head saved as a run directory (energy does not depend on the weights' values)."""
    return QSetFitModel(TINY).save(tmp_path_factory.mktemp("energy") / "run")


def test_the_models_names_stay_importable_from_energy():
    from qsetfit.bench import energy_model

    assert en.joules_per_1000 is energy_model.joules_per_1000 and en.qpu_points is energy_qpu.qpu_points
    assert set(en.__all__) >= {"Point", "Constant", "break_even", "classical_points", "DEFAULT_QPU_POWER_W"}


# ---- the command ---------------------------------------------------------------------------------------
def test_energy_command_writes_table_json_and_plot(run_dir, tmp_path):
    out = tmp_path / "energy"
    result = runner.invoke(app, ["energy", str(run_dir), "--max-qubits", "6", "--max-measured-qubits", "5",
                                 "--samples", "4", "--time-budget", "0.5", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "J per 1,000 inferences" in result.output and "qpu_power_w" in result.output
    assert "break-even" in result.output
    for name in ("energy.csv", "energy.json", "energy.png"):
        assert (out / name).is_file(), name
    report = json.loads((out / "energy.json").read_text())
    assert [r["qubits"] for r in report["rows"]] == [4, 5, 6]
    assert [r["cpu"]["method"] for r in report["rows"]] == ["measured", "measured", "extrapolated"]
    assert all(r["qpu"]["method"] == "transpiled" for r in report["rows"])
    assert all({"name", "value", "unit", "source"} <= set(c) for c in report["constants"])
    assert len((out / "energy.csv").read_text().splitlines()) == 1 + 2 * 3


@pytest.mark.parametrize("argv,message", [
    (["energy", "/nonexistent/run"], "does not exist"),
    (["energy", "RUN", "--samples", "0"], "--samples must be >= 1"),
    (["energy", "RUN", "--backend", "nope-profile"], "unknown backend profile 'nope-profile'"),
    (["energy", "RUN", "--backend", "aer-exact"], "no timing data"),
])
def test_energy_errors_are_one_line(run_dir, argv, message):
    result = runner.invoke(app, [str(run_dir) if a == "RUN" else a for a in argv])
    assert result.exit_code == 1 and message in result.output
    assert "Traceback" not in result.output
