"""The engine contract (engines/base.py): capabilities, describe(), counters and close() on every local engine."""

from __future__ import annotations

import pytest
import torch

from qsetfit import HeadConfig, QSetFitError, build_head_circuit, make_engine
from qsetfit.engines.base import EngineInfo

HC = build_head_circuit(HeadConfig.preset("tiny"))


@pytest.mark.parametrize("name, engine, method, stochastic", [
    ("torch", "torch", "statevector", False),
    ("aer-exact", "aer", "statevector", False),
    ("aer-shots", "aer", "statevector", True),
    ("torch-depolarizing", "torch-noise", "density_matrix", False),
])
def test_describe_says_how_each_engine_runs(name, engine, method, stochastic):
    info = make_engine(HC, name).describe()
    assert (info.engine, info.method, info.stochastic) == (engine, method, stochastic)
    assert isinstance(info.in_words(), str) and info.in_words()


def test_in_words_names_trajectories_shots_and_device_qubits():
    assert EngineInfo("aer", "statevector_trajectories", 20).in_words().startswith("statevector trajectories (20")
    assert "1024 shots" in EngineInfo("aer", "statevector", shots=1024).in_words()
    assert "ISA on 3 device qubits" in EngineInfo("ibm", "qpu", shots=10, physical_qubits=(4, 5, 6)).in_words()


def test_an_initial_state_is_refused_by_engines_that_cannot_take_one():
    x, w = torch.zeros(2, len(HC.inputs), dtype=torch.float64), torch.zeros(len(HC.weights), dtype=torch.float64)
    state = torch.zeros(2, 2**HC.num_qubits, dtype=torch.complex128)
    state[:, 0] = 1
    torch_engine = make_engine(HC, "torch")
    assert torch_engine.capabilities.initial_state
    assert torch.allclose(torch_engine(x, w, state), torch_engine(x, w))  # |0...0> is the default start
    aer = make_engine(HC, "aer-exact")
    assert not aer.capabilities.initial_state
    with pytest.raises(QSetFitError, match="'aer' engine does not take an initial_state"):
        aer(x, w, state)


def test_counters_count_forwards_and_estimator_jobs():
    x, w = torch.zeros(3, len(HC.inputs), dtype=torch.float64), torch.zeros(len(HC.weights), dtype=torch.float64)
    aer = make_engine(HC, "aer-exact")
    aer(x, w)
    aer(x, w)
    assert (aer.counters.forwards, aer.calls, aer.pubs_submitted) == (2, 2, 2)
    aer.reset_counters()
    assert (aer.counters.forwards, aer.calls) == (0, 0)
    torch_engine = make_engine(HC, "torch")
    torch_engine(x, w)
    assert (torch_engine.counters.forwards, torch_engine.calls) == (1, 0)  # no estimator behind it
    torch_engine.close()  # a simulator holds nothing: close is a no-op, not an AttributeError
