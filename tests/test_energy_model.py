"""qsetfit.bench.energy_model: the energy model's arithmetic on closed forms, the classical curve and constants."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from qsetfit import HeadConfig, QSetFitError
from qsetfit.bench import energy_model as en
from qsetfit.bench.energy_measure import Reading, family_circuit

TINY = HeadConfig.preset("tiny")


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


def test_growth_per_qubit_is_the_least_squares_slope_of_log2():
    qubits = [4, 5, 6, 7, 9]
    values = [1e-3, 2.5e-3, 3.1e-3, 9e-3, 2e-2]  # not an exact power law: the fit must be least squares
    slope = np.polyfit(qubits, np.log2(values), 1)[0]
    assert en.growth_per_qubit(qubits, values) == pytest.approx(2.0**slope, rel=1e-12)


def test_break_even_interpolates_log_linearly_between_widths():
    # ln(c/q) is -ln 2 at width 4 and +ln 2 at width 6 (c: 1 -> 4, q: 2 -> 2): zero halfway, at 5
    assert en.break_even([4, 6], [1.0, 4.0], [2.0, 2.0]) == pytest.approx(5.0)
    # -ln 4 at 4, +ln 2 at 5: zero at ln 4 / (ln 4 + ln 2) = 2/3 of the way
    assert en.break_even([4, 5], [1.0, 8.0], [4.0, 4.0]) == pytest.approx(4 + 2 / 3)
    assert en.break_even([], [], []) is None


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


def test_cuda_points_cost_wall_time_and_no_reading_is_an_error():
    reading = Reading(qubits=4, device="cuda", samples=10, inferences=1000, wall_s=2.0, cpu_s=1.0, joules=None,
                      counter="none", gates=10, state_bytes=8 * 16)
    (point,) = en.classical_points(TINY, [reading], [4], power_w=700.0)
    assert point.curve == "cuda" and point.joules_per_1000 == pytest.approx(1000 * 700.0 * 2e-3)  # wall, not CPU
    assert point.statevector_bytes == 8 * 16 and point.cpu_seconds_per_inference == pytest.approx(1e-3)
    extrapolated = en.classical_points(TINY, [_reading(4)], [4, 7], power_w=10.0)[1]
    assert extrapolated.statevector_bytes == 2**7 * 8  # float64 amplitudes (the engine's real path)
    with pytest.raises(QSetFitError, match=r"no width could be measured.*--time-budget"):
        en.classical_points(TINY, [], [4], power_w=10.0)


def test_classical_constants_without_a_counter_state_power_and_the_fitted_growth():
    readings = [_reading(4), _reading(5)]
    readings[1] = replace(readings[1], wall_s=6.0)  # 2 ms -> 6 ms per inference: x3 per qubit
    by_name = {c.name: c for c in en.classical_constants("cpu", readings, 5.0, "assumed: test")}
    assert by_name["cpu_energy"].value == "process CPU time x power"
    assert by_name["cpu_power_w"].value == 5.0 and by_name["cpu_power_w"].source == "assumed: test"
    assert by_name["cpu_growth_per_qubit"].value == pytest.approx(3.0)
    assert by_name["cpu_extrapolation"].value == en.CLASSICAL_LAW
    cuda = {c.name: c for c in en.classical_constants("cuda", readings[:1], 700.0, "x")}
    assert cuda["cuda_energy"].value == "wall time x power" and cuda["cuda_power_w"].unit == "W"
    assert "cuda_growth_per_qubit" not in cuda  # one width: no fit
