"""The engine contract (engines/base.py): capabilities, describe(), counters and close() on every local engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qsetfit import HeadConfig, QSetFitError, build_head_circuit, make_engine
from qsetfit.engines.base import Capabilities, Engine, EngineInfo

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


class _Cosine(Engine):
    """<Z> after RY(x + w) on one qubit, cos(x + w), computed outside torch: the adapter's closed-form case."""

    capabilities = Capabilities(gradients=True)

    def __init__(self) -> None:
        super().__init__(num_inputs=1, num_weights=1, num_outputs=1)

    def describe(self) -> EngineInfo:
        return EngineInfo("cosine")

    def _expectation_values(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.cos(x + w)

    def _vjp(self, x, w, grad_out, *, need_x, need_w):
        d = -np.sin(x + w) * grad_out  # (B, 1)
        return (d if need_x else None), (d.sum(0) if need_w else None)


class _ForwardOnlyCosine(_Cosine):
    capabilities = Capabilities(gradients=False)


def test_the_adapter_differentiates_an_engine_outside_torch():
    engine = _Cosine()
    x = torch.tensor([[0.3], [-1.2], [2.0]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(engine, (x, w))  # the adapter's vjp against finite differences
    out = engine(x, w)
    assert out.dtype == torch.float64 and torch.allclose(out, torch.cos(x + w), atol=1e-15)
    (gw,) = torch.autograd.grad(out.sum(), w)  # weights only: the engine is asked for no input gradient
    assert gw.item() == pytest.approx(-np.sin(x.detach().numpy() + 0.7).sum(), abs=1e-12)


def test_a_forward_only_engine_refuses_a_backward_pass_in_one_clear_error():
    engine = _ForwardOnlyCosine()
    w = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    out = engine(torch.tensor([[0.3]], dtype=torch.float64), w)
    assert out.item() == pytest.approx(np.cos(1.0), abs=1e-15)  # forward still runs
    with pytest.raises(QSetFitError, match=r"'cosine' engine is for inference only .* train on 'torch'"):
        out.sum().backward()


def test_the_adapter_gives_aer_the_gradients_of_finite_differences_and_the_torch_engine():
    rng = np.random.default_rng(5)
    x = torch.tensor(rng.uniform(-1, 1, (2, len(HC.inputs))), requires_grad=True)
    w = torch.tensor(rng.uniform(-np.pi, np.pi, len(HC.weights)), requires_grad=True)
    aer, torch_engine = make_engine(HC, "aer-exact"), make_engine(HC, "torch")
    assert torch.autograd.gradcheck(aer, (x, w), atol=1e-6)  # parameter shift against finite differences
    got = torch.autograd.grad(aer(x, w).sum(), (x, w))
    want = torch.autograd.grad(torch_engine(x, w).sum(), (x, w))
    assert all((a - b).abs().max() <= 1e-8 for a, b in zip(got, want, strict=True))


def test_each_engine_differentiates_one_way_torch_natively_or_through_the_adapter():
    """Torch engines override _forward (native autograd); the others implement _expectation_values and, if
    they declare gradients, _vjp, and leave _forward (the adapter) to the base."""
    from qsetfit.engines.aer.engine import AerEngine
    from qsetfit.engines.ibm.runtime import IBMRuntimeEngine
    from qsetfit.engines.torch.noisy import TorchNoiseEngine
    from qsetfit.engines.torch.statevector import TorchStatevectorEngine

    def own(cls, name):
        return getattr(cls, name) is not getattr(Engine, name)

    for cls in (TorchStatevectorEngine, TorchNoiseEngine):
        assert own(cls, "_forward") and not own(cls, "_expectation_values") and not own(cls, "_vjp")
    for cls in (AerEngine, IBMRuntimeEngine):
        assert not own(cls, "_forward") and own(cls, "_expectation_values")
        assert own(cls, "_vjp") == cls.capabilities.gradients
