"""QuantumLayer: weights it owns, gradients to every one of them, the same numbers on every exact engine."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qsetfit import HeadConfig, QSetFitError, QuantumLayer, build_head_circuit, make_engine
from qsetfit.engines import registry
from tests.conftest import statevector_expectations
from tests.helpers import seeded

SMALL = HeadConfig(qubits=3, measured=3, encoders=0, connectivity=1, reuploads=2, layers=1)


@pytest.fixture(scope="module")
def hc():
    return build_head_circuit(SMALL)


def _inputs(hc, batch=4, seed=1):
    return (torch.rand(batch, len(hc.inputs), dtype=torch.float64, generator=seeded(seed)) * 2 - 1) * math.pi


def test_initial_weights_are_seeded_float64_and_within_the_scale(hc):
    a = QuantumLayer(hc, generator=seeded(7))
    b = QuantumLayer(hc, generator=seeded(7), init_scale=0.5)
    assert a.weight.dtype == torch.float64 and a.weight.shape == (len(hc.weights),)
    assert a.weight.abs().max() <= 0.25 * math.pi
    assert torch.allclose(b.weight, 2 * a.weight, atol=1e-15)  # same draw, twice the scale
    assert not torch.equal(a.weight, QuantumLayer(hc, generator=seeded(8)).weight)
    assert list(a.state_dict()) == ["weight"]  # the engine holds no state: weights move between engines


def test_forward_is_the_statevector_expectation_per_sample(hc):
    layer = QuantumLayer(hc, generator=seeded(2))
    x = _inputs(hc)
    out = layer(x)
    assert out.shape == (4, len(hc.observables)) and out.dtype == torch.float64
    w = list(layer.weight.detach().numpy())
    for b in range(4):
        ref = statevector_expectations(hc.circuit, hc.inputs + hc.weights, list(x[b].numpy()) + w, hc.observables)
        assert np.abs(out[b].detach().numpy() - ref).max() <= 1e-12
    assert layer(x[0]).shape == (len(hc.observables),)  # one unbatched sample


def test_gradients_reach_every_weight_and_input_and_equal_finite_differences(hc):
    layer = QuantumLayer(hc, generator=seeded(3))
    x = _inputs(hc, batch=2).requires_grad_(True)
    probe = torch.tensor([0.7, -1.1, 0.4], dtype=torch.float64)
    (layer(x) * probe).sum().backward()
    assert (layer.weight.grad.abs() > 1e-6).all() and (x.grad.abs() > 1e-6).all()

    def through_layer(xs, ws):
        return torch.func.functional_call(layer, {"weight": ws}, (xs,))

    assert torch.autograd.gradcheck(through_layer, (x.detach().requires_grad_(True),
                                                    layer.weight.detach().requires_grad_(True)))


def test_set_engine_keeps_the_weights_and_aer_exact_gives_the_same_values_and_gradients(hc):
    layer = QuantumLayer(hc, generator=seeded(4))
    weight = layer.weight
    x = _inputs(hc, batch=3)
    probe = torch.tensor([0.3, 1.2, -0.8], dtype=torch.float64)
    out_t = layer(x)
    (g_t,) = torch.autograd.grad((out_t * probe).sum(), layer.weight)
    layer.set_engine("aer-exact")
    assert layer.weight is weight and layer.engine_name == "aer-exact" and "aer-exact" in repr(layer)
    out_a = layer(x)
    (g_a,) = torch.autograd.grad((out_a * probe).sum(), layer.weight)
    assert (out_a - out_t).abs().max() <= 1e-10 and (g_a - g_t).abs().max() <= 1e-8


def test_an_optimiser_step_changes_the_output_on_the_new_engine(hc):
    layer = QuantumLayer(hc, generator=seeded(5))
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer.set_engine("torch-float32")  # the optimiser still holds the layer's weight
    x = _inputs(hc, batch=2)
    before = layer(x).detach()
    layer(x).sum().backward()
    opt.step()
    assert (layer(x).detach() - before).abs().max() > 1e-4


def test_switching_closes_the_old_engine_once_and_tolerates_engines_without_close(hc, monkeypatch):
    closed = []

    def closable(head_circuit, **options):
        engine = registry.make_engine(head_circuit, "torch")
        engine.close = lambda: closed.append(engine)
        return engine

    monkeypatch.setattr(registry, "_FACTORIES", {**registry._FACTORIES, "closable-layer-test": closable})
    layer = QuantumLayer(hc)  # torch: no close()
    layer.set_engine("closable-layer-test")
    assert closed == []
    first = layer.engine
    layer.set_engine("torch")
    assert closed == [first]


def test_engine_options_reach_the_engine_without_changing_values(hc):
    x = _inputs(hc)
    a = QuantumLayer(hc, generator=seeded(6), fusion_qubits=1)
    b = QuantumLayer(hc, generator=seeded(6), fusion_qubits=3)
    assert (a(x) - b(x)).abs().max() <= 1e-12


def test_wrong_input_width_is_one_clear_error(hc):
    layer = QuantumLayer(hc)
    with pytest.raises(QSetFitError, match=rf"expected inputs of shape \(batch, {len(hc.inputs)}\), got \(2, 5\)"):
        layer(torch.zeros(2, 5, dtype=torch.float64))


def test_an_unknown_torch_engine_option_is_a_clear_error(hc):
    with pytest.raises(QSetFitError, match="fusion"):
        QuantumLayer(hc, "torch", fusion=2)


def test_quantum_layer_contract():
    hc = build_head_circuit(HeadConfig(qubits=4, measured=2, encoders=0, connectivity=1))
    layer = QuantumLayer(hc, engine="torch")
    assert layer.weight.shape == (len(hc.weights),)
    x = torch.rand(3, 4, dtype=torch.float64, generator=seeded())
    out = layer(x)
    assert out.shape == (3, 2)
    ref = statevector_expectations(hc.circuit, hc.inputs + hc.weights,
                                   list(x[1].numpy()) + list(layer.weight.detach().numpy()), hc.observables)
    assert np.abs(out[1].detach().numpy() - ref).max() <= 1e-10
    layer.set_engine("torch-float32")
    assert (layer(x).double() - out).abs().max() <= 1e-5


def test_switching_engines_closes_the_old_one():
    from qsetfit.engines import registry

    closed = []

    def closable(head_circuit, **options):
        engine = make_engine(head_circuit, "torch")
        engine.close = lambda: closed.append(engine)  # stands in for an IBM Batch/Session
        return engine

    registry.register_engine("closable-test", closable)
    try:
        layer = QuantumLayer(build_head_circuit(HeadConfig.preset("tiny", encoders=0)), engine="closable-test")
        first = layer.engine
        layer.set_engine("closable-test")
        assert closed == [first]
        layer.set_engine("torch")
        assert len(closed) == 2 and closed[1] is not first
    finally:
        registry._FACTORIES.pop("closable-test", None)
