"""qsetfit.bench.energy_measure: the circuit family, the timed readings, the counter choice."""

from __future__ import annotations

import sys

import pytest

from qsetfit import HeadConfig
from qsetfit.bench import energy_measure as m

TINY = HeadConfig.preset("tiny")
PAPER = HeadConfig.preset("paper-14q-multi")


def test_family_keeps_the_heads_shape_at_other_widths():
    base, wide = m.family_circuit(PAPER, 14), m.family_circuit(PAPER, 20)
    assert (base.num_qubits, wide.num_qubits) == (14, 20)
    assert len(base.weights) == PAPER.parameter_counts()["module2"]  # the same module 2 as the trained head
    assert len(wide.weights) == len(base.weights) * 20 // 14 and len(wide.observables) == PAPER.measured
    assert wide.circuit.count_ops().keys() == base.circuit.count_ops().keys()


def test_readings_stop_at_the_widest_measured_width():
    # a generous time budget: these tests are about the width limits, not the clock of a shared machine
    readings = m.measure_widths(TINY, [4, 5, 6, 7], device="cpu", samples=3, max_qubits=5, time_budget_s=30.0,
                                memory_budget_bytes=1 << 30)
    assert [r.qubits for r in readings] == [4, 5]
    for r in readings:
        assert r.samples <= 3 and r.inferences >= r.samples and r.wall_s > 0 and r.cpu_s >= 0
        assert r.state_bytes == 8 * 2**r.qubits and r.gates == m.family_circuit(TINY, r.qubits).circuit.size()


def test_readings_stop_where_memory_ends():
    budget = 2**5 * m.BYTES_PER_AMPLITUDE * m.MEMORY_FACTOR
    readings = m.measure_widths(TINY, [4, 5, 6], device="cpu", samples=2, max_qubits=40, time_budget_s=30.0,
                                memory_budget_bytes=budget)
    assert [r.qubits for r in readings] == [4, 5]


def test_a_counter_supplies_joules(monkeypatch):
    class FakeMeter:
        source = "fake counter"

        def start(self):
            pass

        def stop(self):
            return 2.5

    monkeypatch.setattr(m, "counter_meter", lambda device: (FakeMeter(), ""))
    [reading] = m.measure_widths(TINY, [4], device="cpu", samples=2, max_qubits=4, time_budget_s=0.1,
                                 memory_budget_bytes=1 << 30)
    assert reading.joules == 2.5 and reading.counter == "fake counter"


def test_without_codecarbon_the_reading_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "codecarbon", None)
    monkeypatch.setitem(sys.modules, "codecarbon.core", None)
    monkeypatch.setitem(sys.modules, "codecarbon.core.cpu", None)
    meter, why = m.counter_meter("cpu")
    assert meter is None and "codecarbon is not installed" in why and "qsetfit[energy]" in why


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_time_forward_counts_every_pass(device):
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    hc = m.family_circuit(TINY, 4)
    calls = []

    def engine(x, w):
        calls.append(x.shape[0])

    x = torch.zeros(5, 4, device=device)
    wall, cpu, joules = m.time_forward(engine, x, torch.zeros(len(hc.weights), device=device), rows_per_call=2,
                                       repeats=3)
    assert calls == [2, 2, 1] * 3 and wall >= 0 and joules is None
