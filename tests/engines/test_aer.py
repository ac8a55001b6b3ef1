"""The aer engines against the torch engine, the library's gradient, closed forms and shot statistics."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from qiskit.circuit import Parameter, ParameterVector, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit_aer.primitives import EstimatorV2

from qsetfit import HeadCircuit, HeadConfig, HybridHead, QSetFitError, build_head_circuit, make_engine
from qsetfit.engines.aer.engine import AerEngine
from qsetfit.engines.aer.gradient import BatchedEstimatorQNN, BatchedParamShiftGradient, make_shift_plan
from qsetfit.engines.aer.noise import device_isa_circuit, readout_dressed
from qsetfit.profiles import BackendProfile, load_backend_profile, profile_names

SMALL = HeadConfig(qubits=4, encoders=0, measured=2, connectivity=1, reuploads=2, layers=1)


@pytest.fixture(scope="module")
def small():
    hc = build_head_circuit(SMALL)
    rng = np.random.default_rng(11)
    return hc, rng.uniform(-1, 1, (3, 4)), rng.uniform(-np.pi, np.pi, len(hc.weights))


def _step(engine, x, w, *, inputs=True):
    """Outputs and the gradients of a random linear read-out of them (covers every observable)."""
    xs = torch.tensor(x, requires_grad=inputs)
    ws = torch.tensor(w, requires_grad=True)
    out = engine(xs, ws)  # (B, O)
    probe = torch.tensor(np.random.default_rng(0).uniform(-1, 1, out.shape[1]))
    grads = torch.autograd.grad((out * probe).sum(), (xs, ws) if inputs else (ws,))
    return out.detach().numpy(), [g.numpy() for g in grads]


def _ry_head(n_rows=1):
    """<Z> after RY(x) RY(w) on one qubit: cos(x + w)."""
    x, w = Parameter("x"), Parameter("w")
    qc = QuantumCircuit(1)
    qc.ry(x, 0)
    qc.ry(w, 0)
    return HeadCircuit(qc, [x], [w], [SparsePauliOp("Z")])


def _noise_file(tmp_path, text, name="noise"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return str(path)


def test_aer_exact_equals_the_torch_engine(small):
    hc, x, w = small
    out_t, (gx_t, gw_t) = _step(make_engine(hc, "torch"), x, w)
    out_a, (gx_a, gw_a) = _step(make_engine(hc, "aer-exact"), x, w)
    assert np.abs(out_a - out_t).max() <= 1e-8
    assert np.abs(gw_a - gw_t).max() <= 1e-6
    assert np.abs(gx_a - gx_t).max() <= 1e-6
    assert np.abs(gx_t).max() > 1e-3  # inputs re-upload in two blocks: both occurrences count


def test_one_pub_per_forward_and_one_call_per_backward(small):
    hc, x, w = small
    engine = make_engine(hc, "aer-exact", max_pub_rows=50)
    xs, ws = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    out = engine(xs, ws)
    assert (engine.calls, engine.pubs_submitted) == (1, 1)  # both observables from one PUB
    out.sum().backward()
    angles = len(hc.weights) + 2 * len(hc.inputs)  # every input occurs in both re-upload blocks
    rows = len(x) * 2 * angles
    assert (engine.calls, engine.pubs_submitted) == (2, 1 + math.ceil(rows / 50))
    engine.reset_counters()
    _, (gw,) = _step(engine, x, w, inputs=False)  # inputs need no gradient: only weight angles shift
    assert (engine.calls, engine.pubs_submitted) == (2, 1 + math.ceil(len(x) * 2 * len(hc.weights) / 50))
    _, (_, gw_ref) = _step(make_engine(hc, "torch"), x, w)
    assert np.abs(gw - gw_ref).max() <= 1e-6


def test_batched_gradient_equals_the_library_default(small):
    hc, x, w = small
    ours = make_engine(hc, "aer-exact")
    library = make_engine(hc, "aer-exact", gradient="param_shift")
    gx, gw = ours.qnn.backward(x, w)
    lx, lw = library.qnn.backward(x, w)
    assert gx.shape == (3, 2, 4) and gw.shape == (3, 2, len(hc.weights))
    assert np.abs(gx - lx).max() <= 1e-10 and np.abs(gw - lw).max() <= 1e-10
    angles = len(hc.weights) + 2 * len(hc.inputs)
    assert library.pubs_submitted == len(x) * 2 * 2 * angles  # one PUB per sample, observable and shift
    assert ours.calls == 1 and ours.pubs_submitted == 1


def test_shot_noise_has_binomial_variance_and_fresh_seeds():
    hc = _ry_head()
    shots, rows, angle = 256, 400, math.acos(0.3)
    engine = make_engine(hc, "aer-shots", shots=shots, seed=5)
    x = torch.full((rows, 1), angle, dtype=torch.float64)
    w = torch.zeros(1, dtype=torch.float64)
    z = engine(x, w)[:, 0].numpy()
    expected_var = (1 - 0.3**2) / shots
    assert abs(z.mean() - 0.3) <= 4 * math.sqrt(expected_var / rows)
    assert abs(z.var(ddof=1) / expected_var - 1) <= 0.25  # relative sd of a sample variance: sqrt(2/399) = 7%
    assert not np.array_equal(z, engine(x, w)[:, 0].numpy())  # a fresh seed per call
    again = make_engine(hc, "aer-shots", shots=shots, seed=5)
    assert np.array_equal(z, again(x, w)[:, 0].numpy())  # reproducible from the profile seed


def test_shot_gradient_is_unbiased():
    hc = _ry_head()
    shots = 20000
    engine = make_engine(hc, "aer-shots", shots=shots, seed=1)
    x = torch.tensor([[0.4]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    engine(x, w).sum().backward()
    sd = math.sqrt(2 * (1 - math.cos(0.9 + math.pi / 2) ** 2) / shots) / 2
    assert abs(x.grad.item() + math.sin(0.9)) <= 5 * sd
    assert abs(w.grad.item() + math.sin(0.9)) <= 5 * sd


def test_single_qubit_depolarizing_matches_the_closed_form(tmp_path):
    """depolarizing_error(p, 1) maps the Bloch vector r -> (1 - p) r after each RY; readout flips scale by 1 - 2q."""
    p, q = 0.1, 0.05
    noise = _noise_file(tmp_path, f'p1 = {p}\nreadout = {q}\ngates_1q = ["ry"]\n')
    hc = _ry_head()
    engine = AerEngine(hc, BackendProfile(name="dm", method="density_matrix", noise_model=noise))
    assert engine.method == "density_matrix" and engine.trajectories == 0
    xs = torch.tensor([[-1.0], [0.3], [2.0]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([0.4], dtype=torch.float64, requires_grad=True)
    out = engine(xs, w)[:, 0]
    scale = (1 - p) ** 2 * (1 - 2 * q)
    angle = xs.detach()[:, 0] + 0.4
    assert torch.allclose(out.detach(), scale * torch.cos(angle), atol=1e-10)
    (gx,) = torch.autograd.grad(out.sum(), xs)
    assert torch.allclose(gx[:, 0], -scale * torch.sin(angle), atol=1e-10)


def test_trajectories_above_the_density_matrix_limit_are_reported_and_unbiased(tmp_path, caplog):
    p = 0.2
    noise = _noise_file(tmp_path, f'p1 = {p}\ngates_1q = ["ry"]\n')
    profile = BackendProfile(name="big", method="density_matrix", noise_model=noise,
                             density_matrix_max_qubits=0, trajectories=4000, seed=3)
    with caplog.at_level(logging.INFO, logger="qsetfit.engines.aer.engine"):
        engine = AerEngine(_ry_head(), profile)
    assert engine.method == "statevector_trajectories" and engine.trajectories == 4000
    assert "density_matrix_max_qubits=0" in caplog.text and "4000 trajectories per input" in caplog.text
    z = engine(torch.tensor([[0.3]], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)).item()
    assert abs(z - (1 - p) ** 2 * math.cos(0.3)) <= 4 / math.sqrt(4000)


def test_the_paper_scale_runs_trajectories_not_a_density_matrix():
    hc = build_head_circuit(HeadConfig(qubits=14, connectivity=2, reuploads=2, layers=2, encoders=0))
    engine = make_engine(hc, "aer-depolarizing")
    assert engine.method == "statevector_trajectories" and engine.trajectories == 200


def test_readout_error_changes_z_as_derived(tmp_path):
    """<Z>_read = (1 - p01 - p10) <Z> + (p10 - p01): exact (dressed observable) and sampled agree."""
    p01, p10 = 0.1, 0.3
    noise = _noise_file(tmp_path, f"readout_p01 = {p01}\nreadout_p10 = {p10}\n")
    hc = _ry_head()
    x = torch.tensor([[-2.0], [0.0], [0.7], [2.5]], dtype=torch.float64)
    w = torch.tensor([0.0], dtype=torch.float64)
    exact = AerEngine(hc, BackendProfile(name="ro", noise_model=noise))
    expected = (1 - p01 - p10) * torch.cos(x[:, 0]) + (p10 - p01)
    assert torch.allclose(exact(x, w)[:, 0], expected, atol=1e-12)
    shots, reps = 1000, 100
    sampled = AerEngine(hc, BackendProfile(name="ro-shots", noise_model=noise, shots=shots, seed=2))
    z = sampled(x.repeat(reps, 1), w)[:, 0].reshape(reps, 4).mean(0)
    assert (z - expected).abs().max() <= 4 / math.sqrt(shots * reps)


def test_readout_dressing_equals_the_confusion_matrix_on_two_qubits():
    rng = np.random.default_rng(4)
    state = Statevector(rng.normal(size=4) + 1j * rng.normal(size=4)).evolve(np.eye(4))
    state = Statevector(state.data / np.linalg.norm(state.data))
    flips = np.array([[0.02, 0.1], [0.2, 0.05]])  # (p01, p10) of qubits 0 and 1
    confusion = [np.array([[1 - a, b], [a, 1 - b]]) for a, b in flips]  # column: true bit, row: read bit
    probs = np.kron(confusion[1], confusion[0]) @ state.probabilities()  # index bit q = qubit q
    z = np.array([1, -1])
    for label, signs in [("ZZ", np.kron(z, z)), ("IZ", np.kron([1, 1], z)), ("ZI", np.kron(z, [1, 1]))]:
        obs = SparsePauliOp(label, 0.7)
        dressed = readout_dressed(obs, flips)
        assert abs(state.expectation_value(dressed).real - 0.7 * probs @ signs) <= 1e-12


@pytest.mark.parametrize("name", sorted(n for n in profile_names("noise") if n.startswith("depolarizing")))
def test_every_depolarizing_profile_bites(name, small):
    hc, x, w = small
    ideal = make_engine(hc, "aer-exact")(torch.tensor(x), torch.tensor(w))
    noisy = make_engine(hc, "aer-depolarizing", noise_model=name)(torch.tensor(x), torch.tensor(w))
    assert (noisy - ideal).abs().max() > 1e-5


def test_device_isa_circuit_keeps_the_ideal_values(small):
    hc, x, w = small
    isa, observables, physical = device_isa_circuit(hc.circuit, hc.observables, "fake_manila",
                                                    optimization_level=3, seed_transpiler=1)
    assert isa.num_qubits == len(physical) <= 5
    assert set(isa.count_ops()) <= {"rz", "sx", "x", "cx"}
    values = dict(zip(hc.inputs + hc.weights, [*x[0], *w]))
    logical = Statevector(hc.circuit.assign_parameters(values))
    compact = Statevector(isa.assign_parameters(values))
    for obs, laid_out in zip(hc.observables, observables):
        assert abs(logical.expectation_value(obs) - compact.expectation_value(laid_out)) <= 1e-8
    # The shift rule through ISA angles such as rz(pi + pi*x) gives the logical circuit's gradients.
    from qiskit_aer.primitives import EstimatorV2

    estimator = EstimatorV2()
    qnn = BatchedEstimatorQNN(circuit=isa, observables=observables, input_params=hc.inputs,
                              weight_params=hc.weights, estimator=estimator, input_gradients=True,
                              gradient=BatchedParamShiftGradient(estimator), default_precision=0.0)
    gx, gw = qnn.backward(x[:1], w)
    engine = make_engine(hc, "torch")
    jx, jw = torch.autograd.functional.jacobian(engine, (torch.tensor(x[:1]), torch.tensor(w)))
    assert np.abs(gx - jx[:, :, 0].numpy()).max() <= 1e-6 and np.abs(gw - jw.numpy()).max() <= 1e-6


def test_device_noise_measurably_changes_results(small, tmp_path):
    """Guards the silent zero-noise trap: device noise only hits ISA gates, so the engine must transpile."""
    hc, x, w = small
    noise = _noise_file(tmp_path, 'kind = "device"\nbackend = "fake_manila"\n')
    engine = AerEngine(hc, BackendProfile(name="manila", method="density_matrix", noise_model=noise))
    assert engine.method == "density_matrix" and len(engine.physical_qubits) <= 5
    ideal, (gx_i, gw_i) = _step(make_engine(hc, "torch"), x, w)
    noisy, (gx_n, gw_n) = _step(engine, x, w)
    assert 1e-3 < np.abs(noisy - ideal).max() < 0.5
    assert np.abs(gw_n - gw_i).max() < 0.5 * np.abs(gw_i).max()  # noisy, yet the same landscape


def test_shipped_device_profile_bites(small):
    hc, x, w = small
    engine = make_engine(hc, "aer-device")
    assert engine.physical_qubits is not None and engine.circuit.count_ops().get("cz", 0) > 0
    ideal = make_engine(hc, "torch")(torch.tensor(x[:1]), torch.tensor(w))
    assert (engine(torch.tensor(x[:1]), torch.tensor(w)) - ideal).abs().max() > 1e-3


def test_hybrid_head_switches_to_aer_with_the_same_logits():
    head = HybridHead(HeadConfig.preset("tiny"), seed=3)
    emb = torch.tensor(np.random.default_rng(0).normal(size=(3, 16)))
    labels = torch.tensor([0, 1, 1])
    logits_t, loss_t = head(emb, labels)
    grads_t = torch.autograd.grad(loss_t, list(head.parameters()))
    head.set_engine("aer-exact")
    logits_a, loss_a = head(emb, labels)
    assert (logits_a - logits_t).abs().max() <= 1e-8
    grads_a = torch.autograd.grad(loss_a, list(head.parameters()))
    for a, b in zip(grads_a, grads_t):
        assert torch.isfinite(a).all() and (a - b).abs().max() <= 1e-6
    assert all(a.abs().max() > 0 for a in grads_a)  # every trainable parameter learns through Aer


def test_errors_name_the_problem(small):
    hc, x, w = small
    engine = make_engine(hc, "aer-exact")
    with pytest.raises(QSetFitError, match="initial_state"):
        engine(torch.tensor(x), torch.tensor(w), torch.ones(3, 16, dtype=torch.complex128))
    with pytest.raises(QSetFitError, match=r"unknown option 'shot' for profile 'aer-exact'; did you mean 'shots'"):
        make_engine(hc, "aer-exact", shot=10)
    with pytest.raises(QSetFitError, match="gradient must be one of batched, param_shift"):
        make_engine(hc, "aer-exact", gradient="spsa")
    assert load_backend_profile("aer-exact").engine == "aer"


def test_shift_plan_rejects_non_affine_angles_it_must_differentiate():
    p = ParameterVector("p", 1)
    qc = QuantumCircuit(1)
    qc.ry(p[0] * p[0], 0)
    assert make_shift_plan(qc).not_affine  # refused only when a gradient is asked for p
    grad = BatchedParamShiftGradient(EstimatorV2(), precision=0.0)
    with pytest.raises(Exception, match="not affine"):
        grad.run([qc], [SparsePauliOp("Z")], [[0.3]]).result()


def test_non_affine_input_angles_leave_the_weight_gradients_exact():
    """A zz_feature_map's angles (pi - x0)(pi - x1) are not affine: weight gradients must still work."""
    from qiskit.circuit.library import real_amplitudes, zz_feature_map

    fm, ansatz = zz_feature_map(2), real_amplitudes(2, reps=1)
    hc = HeadCircuit(fm.compose(ansatz), list(fm.parameters), list(ansatz.parameters),
                     [SparsePauliOp("ZI"), SparsePauliOp("IZ")])
    engine = make_engine(hc, "aer-exact")
    x = torch.tensor([[0.3, -0.2], [1.1, 0.4]], dtype=torch.float64)
    w = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64, requires_grad=True)
    probe = torch.tensor([0.7, -1.3], dtype=torch.float64)
    (engine(x, w) * probe).sum().backward()
    eps = 1e-5
    f = lambda v: float((engine(x, torch.tensor(v)) * probe).sum())  # noqa: E731
    fd = [(f(w.detach().numpy() + d) - f(w.detach().numpy() - d)) / (2 * eps) for d in np.eye(4) * eps]
    assert np.abs(w.grad.numpy() - fd).max() <= 1e-8
    with pytest.raises(QSetFitError, match=r"angle .* is not affine in inputs\[0\]"):
        engine(x.clone().requires_grad_(True), w).sum().backward()


def test_shift_plans_follow_a_circuit_edited_in_place():
    """The plan cache was keyed by id(circuit): an edited circuit got its old gradient (or an IndexError)."""
    grad = BatchedParamShiftGradient(EstimatorV2(), precision=0.0)
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(1)
    qc.rx(a, 0)
    z = SparsePauliOp("Z")
    assert grad.run([qc], [z], [[0.5]]).result().gradients[0] == pytest.approx([-math.sin(0.5)], abs=1e-12)
    qc.rx(a, 0)
    assert grad.run([qc], [z], [[0.5]]).result().gradients[0] == pytest.approx([-2 * math.sin(1.0)], abs=1e-12)
    qc.ry(b, 0)  # <Z> = cos(2a) cos(b)
    got = grad.run([qc], [z], [[0.5, 0.1]]).result().gradients[0]
    assert got == pytest.approx([-2 * math.sin(1.0) * math.cos(0.1), -math.cos(1.0) * math.sin(0.1)], abs=1e-12)
    assert all(not isinstance(key[0], int) for key in grad._plans)  # content keys hold no circuit alive


def _controlled_rotation_head():
    """h(0); ry(x, 0); crx(w, 0, 1); <ZI> (issue 12 item 11)."""
    x, w = Parameter("x"), Parameter("w")
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.ry(x, 0)
    qc.crx(w, 0, 1)
    return HeadCircuit(qc, [x], [w], [SparsePauliOp("ZI")])


def test_parameterised_controlled_rotations_run_right_on_aer():
    """Aer 0.18 drops parameterised crx/cry/crz/cp bound through a PUB: the forward pass said +1.000000."""
    engine = make_engine(_controlled_rotation_head(), "aer-exact")
    x = torch.tensor([[0.3]], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([1.2], dtype=torch.float64, requires_grad=True)
    out = engine(x, w)
    assert out.item() == pytest.approx(0.586961, abs=5e-7)
    out.sum().backward()
    # <ZI> = 1 - (1 + sin x)(1 - cos w) / 2
    assert x.grad.item() == pytest.approx(-math.cos(0.3) * (1 - math.cos(1.2)) / 2, abs=1e-12)
    assert w.grad.item() == pytest.approx(-(1 + math.sin(0.3)) * math.sin(1.2) / 2, abs=1e-12)
    for gate in ("crx", "cry", "crz", "cp"):  # only controlled rotations parameterised, batch > 1
        w = Parameter("w")
        qc = QuantumCircuit(2)
        qc.h([0, 1])
        qc.rx(0.4, 1)
        getattr(qc, gate)(w, 0, 1)
        obs = [SparsePauliOp("ZI"), SparsePauliOp("XI"), SparsePauliOp("YI")]
        engine = make_engine(HeadCircuit(qc, [], [w], obs), "aer-exact")
        values = [0.3, -1.1, 2.5]
        got = torch.cat([engine(torch.zeros(1, 0), torch.tensor([v], dtype=torch.float64)) for v in values])
        ref = [[Statevector(qc.assign_parameters([v])).expectation_value(o).real for o in obs] for v in values]
        assert np.abs(got.numpy() - ref).max() <= 1e-12, gate
        batch = engine(torch.zeros(3, 0), torch.tensor([1.0], dtype=torch.float64))
        assert batch.shape == (3, 3)


def test_every_gate_of_the_set_runs_on_every_exact_aer_method():
    """ch and iswap were "AerError: unknown instruction"; crx on a density matrix too."""
    from qiskit.circuit.library import CHGate, CRXGate, iSwapGate

    qc = QuantumCircuit(2)
    qc.h(0)
    qc.ry(0.4, 1)
    for gate in (CHGate(), iSwapGate(), CRXGate(0.7)):
        qc.append(gate, [0, 1])
    obs = [SparsePauliOp("XZ"), SparsePauliOp("ZI")]
    ref = [Statevector(qc).expectation_value(o).real for o in obs]
    for method in ("statevector", "density_matrix"):
        engine = AerEngine(HeadCircuit(qc, [], [], obs), BackendProfile(name="t", method=method))
        assert np.abs(engine(torch.zeros(1, 0), torch.zeros(0, dtype=torch.float64)).numpy() - ref).max() <= 1e-12


def test_a_custom_gate_named_like_a_standard_one_runs_its_definition_on_aer():
    from qiskit.circuit import Gate

    gate = Gate("h", 1, [])
    gate.definition = QuantumCircuit(1)
    gate.definition.x(0)
    qc = QuantumCircuit(1)
    qc.append(gate, [0])
    engine = make_engine(HeadCircuit(qc, [], [], [SparsePauliOp("Z")]), "aer-exact")
    assert engine(torch.zeros(1, 0), torch.zeros(0, dtype=torch.float64)).item() == pytest.approx(-1.0)


def test_backward_without_weights_or_without_inputs():
    """A frozen circuit (no weights) or a fixed feature map (no inputs) crashed in np.einsum."""
    x, w = Parameter("x"), Parameter("w")
    no_weights = QuantumCircuit(1)
    no_weights.ry(x, 0)
    engine = make_engine(HeadCircuit(no_weights, [x], [], [SparsePauliOp("Z")]), "aer-exact")
    xs = torch.tensor([[0.5], [1.0]], dtype=torch.float64, requires_grad=True)
    ws = torch.zeros(0, dtype=torch.float64, requires_grad=True)
    engine(xs, ws).sum().backward()
    assert xs.grad[:, 0].tolist() == pytest.approx([-math.sin(0.5), -math.sin(1.0)], abs=1e-12)
    assert ws.grad.shape == (0,)
    no_inputs = QuantumCircuit(1)
    no_inputs.ry(w, 0)
    engine = make_engine(HeadCircuit(no_inputs, [], [w], [SparsePauliOp("Z")]), "aer-exact")
    xs = torch.zeros(2, 0, dtype=torch.float64, requires_grad=True)
    ws = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    engine(xs, ws).sum().backward()
    assert ws.grad.tolist() == pytest.approx([-2 * math.sin(0.5)], abs=1e-12)
    assert xs.grad.shape == (2, 0)


def test_parameters_the_circuit_does_not_use_get_zero_gradients():
    """EstimatorQNN refused them with a raw ValueError ("Number of circuit parameters (1) does not match")."""
    x, y, w = Parameter("x"), Parameter("y"), Parameter("w")
    qc = QuantumCircuit(1)
    qc.ry(w, 0)
    qc.rx(y, 0)  # <Z> = cos(w) cos(y); x is unused
    engine = make_engine(HeadCircuit(qc, [x, y], [w], [SparsePauliOp("Z")]), "aer-exact")
    xs = torch.tensor([[0.1, 0.2], [0.3, 0.4]], dtype=torch.float64, requires_grad=True)
    ws = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    out = engine(xs, ws)
    assert out[:, 0].tolist() == pytest.approx([math.cos(1.0) * math.cos(0.2), math.cos(1.0) * math.cos(0.4)])
    out.sum().backward()
    assert xs.grad[:, 0].tolist() == [0.0, 0.0]
    assert xs.grad[:, 1].tolist() == pytest.approx([-math.cos(1.0) * math.sin(0.2), -math.cos(1.0) * math.sin(0.4)])
    gate_less = make_engine(HeadCircuit(QuantumCircuit(2), [x], [w], [SparsePauliOp("ZI")]), "aer-exact")
    assert gate_less(torch.zeros(1, 1, dtype=torch.float64), ws).item() == pytest.approx(1.0)


def test_a_u_gate_and_a_parameter_free_circuit_run_on_batches():
    """u(w, ...) translates with a parameterised global phase, and Aer runs a circuit without parameters once:
    both lose Aer's results ('Result for experiment "0" could not be found') unless handled."""
    w = Parameter("w")
    qc = QuantumCircuit(1)
    qc.u(w, 0.4, -0.3, 0)
    engine = make_engine(HeadCircuit(qc, [], [w], [SparsePauliOp("Z"), SparsePauliOp("X")]), "aer-exact")
    out = engine(torch.zeros(3, 0), torch.tensor([0.7], dtype=torch.float64))
    assert np.abs(out.numpy() - [math.cos(0.7), math.sin(0.7) * math.cos(0.4)]).max() <= 1e-12
    fixed = QuantumCircuit(2)
    fixed.ecr(0, 1)
    engine = make_engine(HeadCircuit(fixed, [], [], [SparsePauliOp("ZI")]), "aer-exact")
    ref = Statevector(fixed).expectation_value(SparsePauliOp("ZI")).real
    assert engine(torch.zeros(3, 0), torch.zeros(0, dtype=torch.float64))[:, 0].tolist() == pytest.approx([ref] * 3)
