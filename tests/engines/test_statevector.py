"""The torch engine against qiskit.quantum_info.Statevector, parameter shift and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from qiskit.circuit import Parameter, ParameterVector, QuantumCircuit
from qiskit.circuit.library import CCXGate
from qiskit.quantum_info import SparsePauliOp, Statevector

from qsetfit import HeadConfig, build_head_circuit
from qsetfit.engines.torch.gates import SUPPORTED_GATES
from qsetfit.engines.torch.statevector import TorchStatevectorEngine
from qsetfit.errors import QSetFitError
from tests.conftest import random_circuit, random_observables, statevector_expectations
from tests.helpers import seeded

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
SHIFT_GATES = ["rx", "ry", "rz", "p", "rxx", "ryy", "rzz", "u", "h", "cx", "cz", "swap", "s", "y"]


def _engine(qc, x, w, obs, **kw):
    return TorchStatevectorEngine(qc, x, w, obs, **kw)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fusion", [1, 3, 5])
def test_random_circuits_match_statevector(seed, fusion):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 6))
    qc, x, w = random_circuit(n, 40, rng)
    obs = random_observables(n, rng)
    eng = _engine(qc, x, w, obs, fusion_qubits=fusion)
    xs = rng.uniform(-2, 2, size=(3, len(x)))
    ws = rng.uniform(-2, 2, size=len(w))
    got = eng(torch.tensor(xs), torch.tensor(ws)).numpy()
    for b in range(3):
        ref = statevector_expectations(qc, x + w, list(xs[b]) + list(ws), obs)
        assert np.abs(got[b] - ref).max() <= 1e-10


def test_random_circuits_cover_the_whole_gate_set():
    rng = np.random.default_rng(0)
    seen = set()
    for seed in range(6):
        r = np.random.default_rng(seed)
        qc, _, _ = random_circuit(int(r.integers(2, 6)), 40, r)
        seen |= {inst.operation.name for inst in qc.data}
    required = {"rx", "ry", "rz", "h", "x", "y", "z", "s", "sdg", "cx", "cz", "swap"}
    assert required <= seen, required - seen
    assert seen <= set(SUPPORTED_GATES)


def _shift_gradient(qc, params, values, obs, index):
    """d<O>/d(param index) by the two-term parameter-shift rule; the parameter occurs in one gate, angle a*p+b."""
    p = params[index]
    (inst,) = [i for i in qc.data if any(p in getattr(a, "parameters", ()) for a in i.operation.params)]
    expr = next(a for a in inst.operation.params if p in getattr(a, "parameters", ()))
    coeff = float(expr.gradient(p))
    grads = 0
    for sign in (+1, -1):
        shifted = list(values)
        shifted[index] += sign * (math.pi / 2) / coeff
        grads = grads + sign * statevector_expectations(qc, params, shifted, obs)
    return coeff * grads / 2


@pytest.mark.parametrize("gradient", ["adjoint", "autograd"])
@pytest.mark.parametrize("seed", range(3))
def test_gradients_match_parameter_shift(seed, gradient):
    rng = np.random.default_rng(100 + seed)
    n = 4
    qc, x, w = random_circuit(n, 30, rng, gate_names=SHIFT_GATES, n_in=2)
    # Each input occurs in at most a few gates; keep the shift rule valid by differentiating weights (one gate each)
    # and inputs through a circuit where every input occurs once.
    obs = random_observables(n, rng, diagonal=gradient == "adjoint")
    eng = _engine(qc, x, w, obs, gradient=gradient)
    xs = torch.tensor(rng.uniform(-2, 2, size=(1, len(x))), requires_grad=True)
    ws = torch.tensor(rng.uniform(-2, 2, size=len(w)), requires_grad=True)
    out = eng(xs, ws)[0]
    values = list(xs[0].detach().numpy()) + list(ws.detach().numpy())
    for o in range(len(obs)):
        (gw,) = torch.autograd.grad(out[o], ws, retain_graph=True)
        for i in range(len(w)):
            ref = _shift_gradient(qc, x + w, values, [obs[o]], len(x) + i)[0]
            assert abs(gw[i].item() - ref) <= 1e-8


def test_head_input_and_weight_gradients_match_parameter_shift():
    """Inputs enter the head as RY(pi * x_k) once per re-upload: sum the shift rule over occurrences."""
    cfg = HeadConfig(qubits=3, connectivity=1, reuploads=2, layers=1, measured=3, encoders=0)
    hc = build_head_circuit(cfg)
    eng = TorchStatevectorEngine(hc.circuit, hc.inputs, hc.weights, hc.observables)
    rng = np.random.default_rng(7)
    xs = torch.tensor(rng.uniform(-1, 1, size=(1, 3)), requires_grad=True)
    ws = torch.tensor(rng.uniform(-2, 2, size=len(hc.weights)), requires_grad=True)
    out = eng(xs, ws)[0]
    gx = torch.autograd.grad(out.sum(), xs, retain_graph=True)[0][0].numpy()
    gw = torch.autograd.grad(out.sum(), ws)[0].numpy()
    # Reference: give every RY occurrence of x_k its own parameter, shift each, and sum.
    qc = QuantumCircuit(3)
    occ = []
    for inst in hc.circuit.data:
        op = inst.operation
        if op.params and any(p in hc.inputs for p in op.params[0].parameters):
            t = Parameter(f"t{len(occ)}")
            occ.append((hc.inputs.index(next(iter(op.params[0].parameters))), t))
            qc.ry(t, inst.qubits)
        else:
            qc.append(op, inst.qubits)
    vals = {t: math.pi * xs[0, k].item() for k, t in occ}
    params = [t for _, t in occ] + list(hc.weights)
    values = [vals[t] for _, t in occ] + list(ws.detach().numpy())
    ref_x = np.zeros(3)
    for j, (k, _) in enumerate(occ):
        ref_x[k] += math.pi * _shift_gradient(qc, params, values, hc.observables, j).sum()
    assert np.abs(gx - ref_x).max() <= 1e-8
    ref_w = [_shift_gradient(qc, params, values, hc.observables, len(occ) + i).sum() for i in range(len(ws))]
    assert np.abs(gw - np.array(ref_w)).max() <= 1e-8


def test_controlled_rotations_gradcheck():
    """Controlled rotations need a four-term shift rule: check them with float64 finite differences instead."""
    rng = np.random.default_rng(3)
    qc, x, w = random_circuit(3, 25, rng, gate_names=["crx", "cry", "crz", "cp", "h", "ry", "cx"], n_in=2)
    obs = random_observables(3, rng, diagonal=True)
    eng = _engine(qc, x, w, obs)
    xs = torch.tensor(rng.uniform(-1, 1, size=(2, 2)), requires_grad=True)
    ws = torch.tensor(rng.uniform(-1, 1, size=len(w)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: eng(a, b), (xs, ws), eps=1e-6, atol=1e-7)


def test_single_qubit_closed_form():
    """<Z> after RY(x) is cos x, and its derivative -sin x."""
    x = ParameterVector("x", 1)
    qc = QuantumCircuit(1)
    qc.ry(x[0], 0)
    eng = TorchStatevectorEngine(qc, list(x), [], [SparsePauliOp("Z")])
    xs = torch.linspace(-3, 3, 13, dtype=torch.float64)[:, None].requires_grad_()
    out = eng(xs, torch.zeros(0, dtype=torch.float64))
    assert torch.allclose(out[:, 0], torch.cos(xs[:, 0]), atol=1e-14)
    (g,) = torch.autograd.grad(out.sum(), xs)
    assert torch.allclose(g[:, 0], -torch.sin(xs[:, 0].detach()), atol=1e-14)


def _head(q=6, measured=6, **kw):
    cfg = HeadConfig(qubits=q, connectivity=2, reuploads=2, layers=2, measured=measured, encoders=0, **kw)
    return build_head_circuit(cfg)


def test_real_path_equals_complex_path():
    hc = _head()
    real = TorchStatevectorEngine(hc.circuit, hc.inputs, hc.weights, hc.observables)
    cplx = TorchStatevectorEngine(hc.circuit, hc.inputs, hc.weights, hc.observables, real_path=False)
    assert real.real and not cplx.real and cplx.dtype == torch.complex128
    rng = np.random.default_rng(0)
    xs = torch.tensor(rng.uniform(-1, 1, (4, 6)), requires_grad=True)
    ws = torch.tensor(rng.uniform(-2, 2, len(hc.weights)), requires_grad=True)
    a, b = real(xs, ws), cplx(xs, ws)
    assert (a - b).abs().max() <= 1e-12
    ga = torch.autograd.grad(a.sum(), (xs, ws))
    gb = torch.autograd.grad(b.sum(), (xs, ws))
    for u, v in zip(ga, gb):
        assert (u - v).abs().max() <= 1e-12


def test_complex_gate_disables_the_real_path():
    x = ParameterVector("x", 1)
    qc = QuantumCircuit(1)
    qc.rx(x[0], 0)
    eng = TorchStatevectorEngine(qc, list(x), [], [SparsePauliOp("Z")])
    assert not eng.real


@pytest.mark.parametrize("gradient", ["adjoint", "autograd"])
def test_amplitude_encoded_initial_state(gradient):
    rng = np.random.default_rng(5)
    qc, x, w = random_circuit(4, 30, rng, gate_names=["ry", "cx", "cz", "h", "rz", "rx"], n_in=1)
    obs = random_observables(4, rng, diagonal=True)
    eng = _engine(qc, x, w, obs, gradient=gradient)
    init = rng.normal(size=(3, 16))
    init /= np.linalg.norm(init, axis=1, keepdims=True)
    xs = rng.uniform(-1, 1, size=(3, 1))
    ws = rng.uniform(-1, 1, size=len(w))
    init_t = torch.tensor(init, requires_grad=True)
    got = eng(torch.tensor(xs), torch.tensor(ws), init_t)
    for b in range(3):
        ref = statevector_expectations(qc, x + w, list(xs[b]) + list(ws), obs, initial=Statevector(init[b]))
        assert np.abs(got[b].detach().numpy() - ref).max() <= 1e-10
    # d<O>/d(initial amplitudes) against central differences
    (g,) = torch.autograd.grad(got[0, 0], init_t)
    eps = 1e-6
    for i in range(16):
        plus, minus = init[0].copy(), init[0].copy()
        plus[i] += eps
        minus[i] -= eps
        fd = (
            statevector_expectations(qc, x + w, list(xs[0]) + list(ws), obs[:1], initial=Statevector(plus, dims=(2,) * 4))
            - statevector_expectations(qc, x + w, list(xs[0]) + list(ws), obs[:1], initial=Statevector(minus, dims=(2,) * 4))
        )[0] / (2 * eps)
        assert abs(g[0, i].item() - fd) <= 1e-7


def test_adjoint_equals_autograd_and_chunking_changes_nothing():
    hc = _head(q=7, measured=3)
    rng = np.random.default_rng(2)
    xs = torch.tensor(rng.uniform(-1, 1, (9, 7)), requires_grad=True)
    ws = torch.tensor(rng.uniform(-2, 2, len(hc.weights)), requires_grad=True)
    results = []
    for kw in [dict(gradient="autograd"), dict(gradient="adjoint"), dict(gradient="adjoint", cache_bytes=1),
               dict(gradient="autograd", max_memory_bytes=1)]:
        eng = TorchStatevectorEngine(hc.circuit, hc.inputs, hc.weights, hc.observables, **kw)
        out = eng(xs, ws)
        results.append((out.detach(), *torch.autograd.grad((out * torch.arange(1, 4)).sum(), (xs, ws))))
    for other in results[1:]:
        for u, v in zip(results[0], other):
            assert (u - v).abs().max() <= 1e-12


def test_float32_on_request():
    hc = _head()
    f64 = TorchStatevectorEngine(hc.circuit, hc.inputs, hc.weights, hc.observables)
    f32 = TorchStatevectorEngine(hc.circuit, hc.inputs, hc.weights, hc.observables, dtype=torch.float32)
    gen = seeded()
    xs = torch.rand(5, 6, dtype=torch.float64, generator=gen)
    ws = torch.rand(len(hc.weights), dtype=torch.float64, generator=gen)
    a, b = f64(xs, ws), f32(xs, ws)
    assert b.dtype == torch.float32 and a.dtype == torch.float64
    assert (a - b.double()).abs().max() <= 1e-5


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_the_module_device(device):
    hc = _head(q=5, measured=2)
    eng = TorchStatevectorEngine(hc.circuit, hc.inputs, hc.weights, hc.observables).to(device)
    ref = TorchStatevectorEngine(hc.circuit, hc.inputs, hc.weights, hc.observables)
    gen = seeded()
    xs = torch.rand(4, 5, dtype=torch.float64, generator=gen)
    ws = torch.rand(len(hc.weights), dtype=torch.float64, generator=gen)
    out = eng(xs.to(device), ws.to(device))
    assert out.device.type == device
    assert (out.cpu() - ref(xs, ws)).abs().max() <= 1e-12


def test_unsupported_gate_names_it_and_suggests_transpile():
    qc = QuantumCircuit(3)
    qc.append(CCXGate(), [0, 1, 2])
    with pytest.raises(QSetFitError, match=r"'ccx'.*transpile\(.*basis_gates"):
        TorchStatevectorEngine(qc, [], [], [SparsePauliOp("ZII")])
    qc = QuantumCircuit(1, 1)
    qc.measure(0, 0)
    with pytest.raises(QSetFitError, match="'measure'"):
        TorchStatevectorEngine(qc, [], [], [SparsePauliOp("Z")])


def test_bad_inputs_are_rejected():
    hc = _head(q=3, measured=1)
    eng = TorchStatevectorEngine(hc.circuit, hc.inputs, hc.weights, hc.observables)
    w = torch.zeros(len(hc.weights), dtype=torch.float64)
    with pytest.raises(QSetFitError, match=r"shape \(batch, 3\)"):
        eng(torch.zeros(2, 4, dtype=torch.float64), w)
    with pytest.raises(QSetFitError, match="NaN"):
        eng(torch.tensor([[0.0, float("nan"), 0.0]], dtype=torch.float64), w)
    with pytest.raises(QSetFitError, match="weight vector"):
        eng(torch.zeros(2, 3, dtype=torch.float64), w[:-1])


def test_fusion_keeps_blocks_contiguous_on_the_head():
    """The head's ring layers fuse into contiguous blocks: few transposes (the speed of the engine)."""
    hc = _head(q=14, measured=1)
    eng = TorchStatevectorEngine(hc.circuit, hc.inputs, hc.weights, hc.observables, fusion_qubits=5)
    transposes = sum(step[0] is not None for step in eng.steps)
    assert len(eng.blocks) < len(hc.circuit.data) / 5
    assert transposes <= len(eng.blocks) // 3


# ---- issue 18: silent wrong answers and raw crashes -----------------------------------------------------


@pytest.mark.parametrize("gradient", ["adjoint", "autograd"])
def test_complex_initial_state_on_real_gates_keeps_its_imaginary_part(gradient):
    """RY(w) then <Z> on (|0> + i|1>)/sqrt2 is 0 for every w; the real path used to drop the i (0.5 at w = 0)."""
    w = Parameter("w")
    qc = QuantumCircuit(1)
    qc.ry(w, 0)
    eng = TorchStatevectorEngine(qc, [], [w], [SparsePauliOp("Z")], gradient=gradient)
    assert eng.real
    init = torch.tensor([[1, 1j]], dtype=torch.complex128) / math.sqrt(2)
    assert eng(torch.zeros(1, 0), torch.zeros(1, dtype=torch.float64), init).item() == pytest.approx(0.0, abs=1e-15)
    # a random complex state on a real 2-qubit circuit: values and gradients against Statevector
    rng = np.random.default_rng(7)
    x, ws = [Parameter("x")], list(ParameterVector("w", 2))
    qc = QuantumCircuit(2)
    qc.ry(x[0], 0)
    qc.cx(0, 1)
    qc.ry(ws[0], 1)
    qc.h(0)
    qc.cz(0, 1)
    qc.ry(2 * ws[1] + 0.3, 0)
    obs = [SparsePauliOp(["ZI", "ZZ"], [1.0, 0.5])] if gradient == "adjoint" else [SparsePauliOp(["XI", "ZX"], [1.0, 0.5])]
    eng = TorchStatevectorEngine(qc, x, ws, obs, gradient=gradient)
    assert eng.real
    amps = rng.normal(size=4) + 1j * rng.normal(size=4)
    amps /= np.linalg.norm(amps)
    values = rng.uniform(-2, 2, size=1 + len(ws))
    wt = torch.tensor(values[1:], requires_grad=True)
    got = eng(torch.tensor(values[:1])[None], wt, torch.tensor(amps)[None])[0]
    ref = statevector_expectations(qc, x + ws, values, obs, initial=Statevector(amps))
    assert np.abs(got.detach().numpy() - ref).max() <= 1e-12
    (grad,) = torch.autograd.grad(got[0], wt)
    eps = 1e-6
    for i in range(len(ws)):
        plus, minus = values.copy(), values.copy()
        plus[1 + i] += eps
        minus[1 + i] -= eps
        fd = (statevector_expectations(qc, x + ws, plus, obs[:1], initial=Statevector(amps))
              - statevector_expectations(qc, x + ws, minus, obs[:1], initial=Statevector(amps)))[0] / (2 * eps)
        assert abs(grad[i].item() - fd) <= 1e-7


def _impostor(name, definition, num_qubits=1):
    from qiskit.circuit import Gate

    gate = Gate(name, num_qubits, [])
    gate.definition = definition
    return gate


def test_a_custom_gate_named_like_a_standard_one_runs_its_definition():
    """Gate("h") defined as an X used to run as an H (<Z> = 0 instead of -1)."""
    x_def = QuantumCircuit(1)
    x_def.x(0)
    qc = QuantumCircuit(2)
    qc.append(_impostor("h", x_def), [1])
    qc.h(0)
    eng = TorchStatevectorEngine(qc, [], [], [SparsePauliOp("ZI"), SparsePauliOp("IX")])
    assert eng(torch.zeros(1, 0), torch.zeros(0, dtype=torch.float64))[0].tolist() == pytest.approx([-1.0, 1.0])
    bare = QuantumCircuit(1)
    from qiskit.circuit import Gate

    bare.append(Gate("cx", 1, []), [0])
    with pytest.raises(QSetFitError, match=r"'cx' is a custom Gate that reuses the name .* has no definition"):
        TorchStatevectorEngine(bare, [], [], [SparsePauliOp("Z")])


def _empty_head(n=2):
    from qsetfit import HeadCircuit

    return HeadCircuit(QuantumCircuit(n), [], [], [SparsePauliOp("Z" + "I" * (n - 1)), SparsePauliOp("I" * (n - 1) + "X")])


@pytest.mark.parametrize("engine", ["torch", "torch-float32"])
def test_a_circuit_without_gates_is_the_identity(engine):
    from qsetfit import QuantumLayer

    layer = QuantumLayer(_empty_head(), engine)
    assert layer(torch.zeros(3, 0)).tolist() == [[1.0, 0.0]] * 3
    plus = torch.tensor([[0.5, 0.5, 0.5, 0.5]], dtype=torch.float64, requires_grad=True)  # |++>
    out = layer(torch.zeros(1, 0), plus)
    assert out.detach().tolist()[0] == pytest.approx([0.0, 1.0], abs=1e-7)
    (g,) = torch.autograd.grad(out[0, 0], plus)  # d<Z_1>/d psi = 2 psi * diag(Z_1)
    assert g[0].tolist() == pytest.approx([1.0, 1.0, -1.0, -1.0], abs=1e-6)
    with pytest.raises(QSetFitError, match="the circuit has no qubits"):
        TorchStatevectorEngine(QuantumCircuit(0), [], [], [])


@pytest.mark.parametrize("config", [dict(qubits=4, encoder_layers=0, reduction="none"),
                                    dict(qubits=4, encoders=0, reuploads=0, layers=0)])
def test_hybrid_head_with_gate_less_circuits_trains(config):
    from qsetfit import HybridHead

    cfg = HeadConfig(**config)
    head = HybridHead(cfg, seed=0)
    emb = torch.tensor(np.random.default_rng(0).normal(size=(3, 16 if cfg.encoders else 4)))
    logits, loss = head(emb, torch.tensor([0, 1, 1]))
    loss.backward()
    assert logits.shape == (3, 2) and torch.isfinite(loss)
    assert head.linear.weight.grad.abs().max() > 0


def test_initial_state_of_the_wrong_length_is_refused():
    hc = _head(q=3, measured=1)
    eng = TorchStatevectorEngine(hc.circuit, hc.inputs, hc.weights, hc.observables)
    x, w = torch.zeros(2, 3, dtype=torch.float64), torch.zeros(len(hc.weights), dtype=torch.float64)
    with pytest.raises(QSetFitError, match=r"initial_state must have shape \(batch, 8\): 2\*\*3 amplitudes for the circuit.s 3 qubits, got \(2, 4\)"):
        eng(x, w, torch.ones(2, 4, dtype=torch.float64))


def test_double_and_float_convert_the_layer():
    """.double() on a torch-float32 layer and .float() on a torch layer used to fail with a dtype mismatch."""
    from qsetfit import QuantumLayer

    from qsetfit import HeadCircuit

    real_head = _head(q=3, measured=2)
    qc = QuantumCircuit(2)  # complex gates: the fixed S matrix is a complex buffer, which .double() skips
    x, w = Parameter("x"), Parameter("w")
    qc.h([0, 1])
    qc.s(0)
    qc.rx(x, 1)
    qc.crz(w, 1, 0)
    complex_head = HeadCircuit(qc, [x], [w], [SparsePauliOp("IY"), SparsePauliOp("XZ")])
    for hc in (real_head, complex_head):
        xs = torch.tensor(np.random.default_rng(1).uniform(-1, 1, (2, len(hc.inputs))))
        ref = QuantumLayer(hc, "torch")
        for engine, convert, dtype in [("torch-float32", "double", torch.float64), ("torch", "float", torch.float32)]:
            layer = QuantumLayer(hc, engine)
            layer.load_state_dict(ref.state_dict())
            layer = getattr(layer, convert)()
            out = layer(xs.to(dtype))
            assert out.dtype == dtype and (out.double() - ref(xs)).abs().max() <= 1e-5
            out.sum().backward()
            assert layer.weight.grad.dtype == dtype
    with pytest.raises(QSetFitError, match=r"float64 or float32, not torch.float16; call .double\(\) or .float\(\)"):
        QuantumLayer(real_head, "torch").half()(torch.zeros(1, 3, dtype=torch.float16))
