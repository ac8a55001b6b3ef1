"""qsetfit.bench.energy_qpu: the QPU curve from declared timing or a fake backend's target, and its constants."""

from __future__ import annotations

import math

import pytest

from qsetfit import HeadConfig, QSetFitError
from qsetfit.bench import energy_qpu
from qsetfit.bench.energy_measure import family_circuit
from qsetfit.bench.energy_model import DEFAULT_QPU_POWER_W, QPU_POWER_SOURCE
from qsetfit.bench.energy_qpu import qpu_points
from qsetfit.profiles import BackendProfile, load_backend_profile

TINY = HeadConfig.preset("tiny")


def test_qpu_model_from_a_declared_duration():
    profile = BackendProfile(name="declared", shots=1000, qpu_circuit_duration_s=1e-4, qpu_power_w=10.0)
    points, constants = qpu_points(TINY, profile, [4, 5])
    assert points[0].method == "declared" and points[1].method == "scaled"
    assert points[0].joules_per_1000 == pytest.approx(1000 * 10.0 * 1000 * (1e-4 + 250e-6))
    depth = [family_circuit(TINY, q).circuit.depth() for q in (4, 5)]
    assert points[1].circuit_duration_s == pytest.approx(1e-4 * depth[1] / depth[0])
    by_name = {c.name: c for c in constants}
    assert by_name["qpu_power_w"].value == 10.0 and "qpu_power_w" in by_name["qpu_power_w"].source
    assert by_name["rep_delay_s"].value == pytest.approx(250e-6)


def test_qpu_model_from_the_fake_backend_target():
    points, constants = qpu_points(TINY, BackendProfile(name="t", engine="ibm", backend="fake_torino"), [4])
    p = points[0]
    assert p.method == "transpiled" and p.circuit_duration_s > 0 and p.shots == 4096
    assert p.joules_per_1000 == pytest.approx(1000 * DEFAULT_QPU_POWER_W * 4096 * (p.circuit_duration_s
                                                                                   + p.rep_delay_s))
    assert "fake_torino" in {c.name: c for c in constants}["circuit_duration_s"].source


def test_profile_keys_set_the_qpu_constants(tmp_path):
    path = tmp_path / "my-qpu.toml"
    path.write_text('engine = "aer"\nshots = 100\nqpu_circuit_duration_s = 1e-4\nqpu_rep_delay_s = 1e-4\n'
                    'qpu_power_w = 1000\nqpu_overhead_s = 0.01\n')
    points, constants = qpu_points(TINY, load_backend_profile(str(path)), [4])
    assert points[0].joules_per_1000 == pytest.approx(1000 * 1000 * (100 * 2e-4 + 0.01))
    sources = {c.name: c.source for c in constants}
    assert "qpu_rep_delay_s" in sources["rep_delay_s"] and "qpu_overhead_s" in sources["qpu_overhead_s"]
    with pytest.raises(QSetFitError, match="qpu_power_w must be >= 0"):
        BackendProfile(qpu_power_w=-1.0)


def test_widths_beyond_the_device_are_extrapolated_by_depth():
    points, _ = qpu_points(TINY, BackendProfile(name="t", engine="ibm", backend="fake_athens"), [4, 5, 6])
    assert [p.method for p in points] == ["transpiled", "transpiled", "extrapolated"]  # Athens has 5 qubits
    depth = [family_circuit(TINY, q).circuit.depth() for q in (5, 6)]
    assert points[2].circuit_duration_s == pytest.approx(points[1].circuit_duration_s * depth[1] / depth[0])
    assert points[2].isa_depth is None and points[2].rep_delay_s == points[1].rep_delay_s


def test_a_profile_without_timing_gets_a_clear_message():
    with pytest.raises(QSetFitError, match=r"no timing data.*qpu_circuit_duration_s"):
        qpu_points(TINY, BackendProfile(name="aer-exact"), [4])


def test_ibm_profile_without_credentials_uses_the_fake_snapshot(monkeypatch):
    def no_account(**_):
        raise QSetFitError("no IBM Quantum credentials found. Either save an account")

    monkeypatch.setattr("qsetfit.engines.ibm.credentials.runtime_service", no_account)
    torino = BackendProfile(name="ibm", engine="ibm", backend="ibm_torino")
    profile, service, where = energy_qpu._timing_backend(torino)
    assert profile.backend == "fake_torino" and service is None and "no IBM Quantum credentials" in where
    with pytest.raises(QSetFitError, match=r"no timing data.*ibm_nowhere.*fake_nowhere"):
        energy_qpu._timing_backend(BackendProfile(name="ibm", engine="ibm", backend="ibm_nowhere"))


def test_shots_come_from_precision_and_power_from_the_default():
    # precision 0.03: ceil(1 / 0.03^2) = 1112 shots; no qpu_power_w: the documented 25 kW default
    profile = BackendProfile(name="p", precision=0.03, qpu_circuit_duration_s=2e-4, qpu_overhead_s=0.5)
    (point,), constants = qpu_points(TINY, profile, [4])
    assert point.shots == math.ceil(1 / 0.03**2) == 1112
    assert point.seconds_per_inference == pytest.approx(1112 * (2e-4 + 250e-6) + 0.5)
    assert point.joules_per_1000 == pytest.approx(1000 * 25_000.0 * point.seconds_per_inference)
    by_name = {c.name: c for c in constants}
    assert by_name["qpu_power_w"].source == QPU_POWER_SOURCE and "1/precision^2" in by_name["shots"].source
    assert by_name["qpu_overhead_s"].value == 0.5
    (default,), constants = qpu_points(TINY, BackendProfile(name="d", qpu_circuit_duration_s=2e-4), [4])
    assert default.shots == 4096 and "Runtime default 4096" in {c.name: c for c in constants}["shots"].source
