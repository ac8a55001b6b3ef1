"""qsetfit.bench.energy: the model's arithmetic on closed forms, the QPU model, the command end to end."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from qsetfit import HeadConfig, QSetFitError
from qsetfit.bench import energy as en
from qsetfit.bench import energy_qpu
from qsetfit.cli import app
from qsetfit.bench.energy_measure import Reading, family_circuit
from qsetfit.modeling import QSetFitModel
from qsetfit.profiles import BackendProfile, load_backend_profile

runner = CliRunner()
TINY = HeadConfig.preset("tiny")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """An untrained tiny head saved as a run directory (energy does not depend on the weights' values)."""
    return QSetFitModel(TINY).save(tmp_path_factory.mktemp("energy") / "run")


# ---- arithmetic ----------------------------------------------------------------------------------------
def test_joules_per_1000_is_power_times_time():
    assert en.joules_per_1000(10.0, 2e-3) == pytest.approx(20.0)  # 10 W x 2 ms x 1000 = 20 J
    assert en.joules_per_1000(25_000.0, 1.0) == pytest.approx(25e6)


def test_qpu_seconds_are_shots_times_circuit_plus_delay_plus_overhead():
    assert en.qpu_seconds_per_inference(4096, 50e-6, 250e-6) == pytest.approx(4096 * 300e-6)
    assert en.qpu_seconds_per_inference(1000, 1e-4, 2.5e-4, 0.5) == pytest.approx(0.85)


def test_statevector_extrapolation_follows_two_to_the_q_times_gates():
    assert en.scale_statevector(3.0, 10, 13, 100, 100) == pytest.approx(24.0)
    assert en.scale_statevector(1.0, 10, 11, 100, 150) == pytest.approx(3.0)
    qubits = list(range(8, 14))
    assert en.growth_per_qubit(qubits, [0.5 * 2.0**q for q in qubits]) == pytest.approx(2.0)
    assert en.growth_per_qubit([8], [1.0]) is None


def test_break_even_on_crafted_curves():
    qubits = list(range(4, 21))
    classical = [1e-3 * 2.0**q for q in qubits]  # crosses a flat 1 J where 2^q = 1000
    assert en.break_even(qubits, classical, [1.0] * len(qubits)) == pytest.approx(math.log2(1000))
    assert en.break_even(qubits, classical, [1e9] * len(qubits)) is None
    assert en.break_even(qubits, classical, [1e-9] * len(qubits)) == 4.0


# ---- the classical curve -------------------------------------------------------------------------------
def _reading(q, *, joules=None, counter="no energy counter: test"):
    return Reading(qubits=q, device="cpu", samples=10, inferences=1000, wall_s=2.0, cpu_s=1.0, joules=joules,
                   counter=counter, gates=family_circuit(TINY, q).circuit.size(), state_bytes=8 * 2**q)


def test_classical_points_use_cpu_time_times_power_then_extrapolate():
    points = en.classical_points(TINY, [_reading(4)], [4, 5, 6], power_w=10.0)
    assert [(p.qubits, p.method) for p in points] == [(4, "measured"), (5, "extrapolated"), (6, "extrapolated")]
    assert points[0].joules_per_1000 == pytest.approx(10.0)  # 1 ms CPU per inference x 10 W x 1000
    assert points[0].seconds_per_inference == pytest.approx(2e-3) and "10 W" in points[0].source
    gates = [family_circuit(TINY, q).circuit.size() for q in (4, 6)]
    assert points[2].joules_per_1000 == pytest.approx(10.0 * 4 * gates[1] / gates[0])
    assert points[2].source.startswith("from 4 qubits")


def test_classical_points_prefer_counter_joules():
    points = en.classical_points(TINY, [_reading(4, joules=3.0, counter="codecarbon RAPL")], [4], power_w=10.0)
    assert points[0].joules_per_1000 == pytest.approx(3.0) and points[0].source == "codecarbon RAPL"
    constants = en.classical_constants("cpu", [_reading(4, joules=3.0, counter="codecarbon RAPL")], 10.0, "x")
    assert constants[0].value == "codecarbon RAPL" and not any(c.name == "cpu_power_w" for c in constants)


# ---- the QPU curve -------------------------------------------------------------------------------------
def test_qpu_model_from_a_declared_duration():
    profile = BackendProfile(name="declared", shots=1000, qpu_circuit_duration_s=1e-4, qpu_power_w=10.0)
    points, constants = en.qpu_points(TINY, profile, [4, 5])
    assert points[0].method == "declared" and points[1].method == "scaled"
    assert points[0].joules_per_1000 == pytest.approx(1000 * 10.0 * 1000 * (1e-4 + 250e-6))
    depth = [family_circuit(TINY, q).circuit.depth() for q in (4, 5)]
    assert points[1].circuit_duration_s == pytest.approx(1e-4 * depth[1] / depth[0])
    by_name = {c.name: c for c in constants}
    assert by_name["qpu_power_w"].value == 10.0 and "qpu_power_w" in by_name["qpu_power_w"].source
    assert by_name["rep_delay_s"].value == pytest.approx(250e-6)


def test_qpu_model_from_the_fake_backend_target():
    points, constants = en.qpu_points(TINY, BackendProfile(name="t", engine="ibm", backend="fake_torino"), [4])
    p = points[0]
    assert p.method == "transpiled" and p.circuit_duration_s > 0 and p.shots == 4096
    assert p.joules_per_1000 == pytest.approx(1000 * en.DEFAULT_QPU_POWER_W * 4096 * (p.circuit_duration_s
                                                                                      + p.rep_delay_s))
    assert "fake_torino" in {c.name: c for c in constants}["circuit_duration_s"].source


def test_profile_keys_set_the_qpu_constants(tmp_path):
    path = tmp_path / "my-qpu.toml"
    path.write_text('engine = "aer"\nshots = 100\nqpu_circuit_duration_s = 1e-4\nqpu_rep_delay_s = 1e-4\n'
                    'qpu_power_w = 1000\nqpu_overhead_s = 0.01\n')
    points, constants = en.qpu_points(TINY, load_backend_profile(str(path)), [4])
    assert points[0].joules_per_1000 == pytest.approx(1000 * 1000 * (100 * 2e-4 + 0.01))
    sources = {c.name: c.source for c in constants}
    assert "qpu_rep_delay_s" in sources["rep_delay_s"] and "qpu_overhead_s" in sources["qpu_overhead_s"]
    with pytest.raises(QSetFitError, match="qpu_power_w must be >= 0"):
        BackendProfile(qpu_power_w=-1.0)


def test_widths_beyond_the_device_are_extrapolated_by_depth():
    points, _ = en.qpu_points(TINY, BackendProfile(name="t", engine="ibm", backend="fake_athens"), [4, 5, 6])
    assert [p.method for p in points] == ["transpiled", "transpiled", "extrapolated"]  # Athens has 5 qubits
    depth = [family_circuit(TINY, q).circuit.depth() for q in (5, 6)]
    assert points[2].circuit_duration_s == pytest.approx(points[1].circuit_duration_s * depth[1] / depth[0])
    assert points[2].isa_depth is None and points[2].rep_delay_s == points[1].rep_delay_s


def test_a_profile_without_timing_gets_a_clear_message():
    with pytest.raises(QSetFitError, match="no timing data.*qpu_circuit_duration_s"):
        en.qpu_points(TINY, BackendProfile(name="aer-exact"), [4])


def test_ibm_profile_without_credentials_uses_the_fake_snapshot(monkeypatch):
    def no_account(**_):
        raise QSetFitError("no IBM Quantum credentials found. Either save an account")

    monkeypatch.setattr("qsetfit.engines.ibm.credentials.runtime_service", no_account)
    torino = BackendProfile(name="ibm", engine="ibm", backend="ibm_torino")
    profile, service, where = energy_qpu._timing_backend(torino)
    assert profile.backend == "fake_torino" and service is None and "no IBM Quantum credentials" in where
    with pytest.raises(QSetFitError, match="no timing data.*ibm_nowhere.*fake_nowhere"):
        energy_qpu._timing_backend(BackendProfile(name="ibm", engine="ibm", backend="ibm_nowhere"))


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
