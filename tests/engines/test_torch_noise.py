"""The noisy torch engine against Aer's density-matrix method, closed forms, and its own trajectories and shots."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from qiskit.circuit import Parameter, ParameterVector, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qsetfit import HeadCircuit, HeadConfig, QSetFitError, build_head_circuit, make_engine
from qsetfit.engines.aer.engine import AerEngine
from qsetfit.engines.torch.density import GateProgram
from qsetfit.engines.torch.noisy import TorchNoiseEngine
from qsetfit.engines.torch.trajectories import sample_errors
from qsetfit.profiles import BackendProfile

# "u" is in the torch gate set, but Aer's runtime parameter binding rejects a parameterised u ("instruction
# param position out of range"), so the Aer comparison leaves it out; rx, rz and sx cover the complex path.
ONE_QUBIT = ["ry", "rx", "rz", "h", "sx", "x"]
# crx, swap: no noise by the profiles' gate lists. Aer's density-matrix method lacks crx and decomposes it into
# cx and rotations, whose cx then draws p2 (the torch engine follows the circuit's gate names), so it is left out.
TWO_QUBIT = ["cx", "cz", "ecr", "swap"]
# Tolerance for estimates against the exact value: Z = 5 standard errors, a false-failure rate below 6e-7 per
# comparison for a Gaussian estimate; every random draw below is seeded, so the tests never flake.
Z = 5.0


def _noise(tmp_path, text, name="noise"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return str(path)


def _profiles(noise, **torch_fields):
    aer = BackendProfile(name="aer-ref", engine="aer", method="density_matrix", noise_model=noise,
                         density_matrix_max_qubits=16)
    ours = BackendProfile(name="torch-ref", engine="torch", noise_model=noise,
                          **({"method": "density_matrix"} | torch_fields))
    return aer, ours


def _random_head(n, n_gates, seed, gates_1q=ONE_QUBIT, gates_2q=TWO_QUBIT):
    """A random circuit of the given gates, angles affine in 3 inputs and 4 weights, <Z> and <ZZ> read-outs."""
    rng = np.random.default_rng(seed)
    x, w = ParameterVector("x", 3), ParameterVector("w", 4)

    def angle():
        return rng.uniform(-2, 2) * x[rng.integers(3)] + rng.uniform(-2, 2) * w[rng.integers(4)] + rng.uniform(-1, 1)

    qc = QuantumCircuit(n)
    for i, p in enumerate([*x, *w]):  # every parameter occurs at least once
        qc.ry(p, i % n)
    for _ in range(n_gates):
        if n > 1 and rng.random() < 0.4:
            name = gates_2q[rng.integers(len(gates_2q))]
            a, b = rng.choice(n, 2, replace=False)
            {"cx": qc.cx, "cz": qc.cz, "ecr": qc.ecr, "swap": qc.swap}.get(name, lambda a, b: qc.crx(angle(), a, b))(a, b)
        else:
            name, q = gates_1q[rng.integers(len(gates_1q))], int(rng.integers(n))
            if name == "u":
                qc.u(angle(), angle(), angle(), q)
            elif name in ("rx", "ry", "rz"):
                getattr(qc, name)(angle(), q)
            else:
                getattr(qc, name)(q)
    obs = [SparsePauliOp.from_sparse_list([("Z", [0], 1.0)], n),
           SparsePauliOp.from_sparse_list([("ZZ", [0, n - 1], 0.7), ("Z", [1 % n], -0.3)], n)]
    return HeadCircuit(qc, list(x), list(w), obs), rng.uniform(-1, 1, (4, 3)), rng.uniform(-np.pi, np.pi, 4)


def _step(engine, x, w):
    xs, ws = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    out = engine(xs, ws)
    gx, gw = torch.autograd.grad((out * torch.tensor([1.0, -0.6])).sum(), (xs, ws))
    return out.detach().numpy(), gx.numpy(), gw.numpy()


@pytest.mark.parametrize("seed,n,noise", [
    (0, 3, "p1 = 1e-2\np2 = 5e-2\nreadout_p01 = 0.02\nreadout_p10 = 0.05\n"),
    (1, 4, "p1 = 3e-3\np2 = 2e-2\nreadout = 0.03\n"),
    (2, 2, "p1 = 0.2\np2 = 0.9\n"),
])
def test_density_matrix_equals_aer_density_matrix(tmp_path, seed, n, noise):
    head, x, w = _random_head(n, 24, seed)
    aer_profile, torch_profile = _profiles(_noise(tmp_path, 'kind = "depolarizing"\n' + noise))
    ours = TorchNoiseEngine(head, torch_profile)
    assert ours.method == "density_matrix"
    out_t, gx_t, gw_t = _step(ours, x, w)
    out_a, gx_a, gw_a = _step(AerEngine(head, aer_profile), x, w)
    assert np.abs(out_t - out_a).max() <= 1e-10
    assert np.abs(gw_t - gw_a).max() <= 1e-9 and np.abs(gx_t - gx_a).max() <= 1e-9
    ideal, _, _ = _step(make_engine(head, "torch"), x, w)
    assert np.abs(out_t - ideal).max() > 1e-3  # the noise bites


def test_closed_forms_one_and_two_qubits(tmp_path):
    theta, phi = Parameter("t"), Parameter("p")
    qc = QuantumCircuit(2)
    qc.ry(theta, 0)
    qc.cx(0, 1)
    qc.ry(phi, 1)
    head = HeadCircuit(qc, [theta], [phi], [SparsePauliOp("IZ"), SparsePauliOp("ZI"), SparsePauliOp("ZZ")])
    p1, p2, p01, p10 = 0.03, 0.08, 0.02, 0.05
    noise = _noise(tmp_path, f'p1 = {p1}\np2 = {p2}\nreadout_p01 = {p01}\nreadout_p10 = {p10}\n')
    engine = TorchNoiseEngine(head, _profiles(noise)[1])
    t, p = 0.7, -0.4
    out = engine(torch.tensor([[t]], dtype=torch.float64), torch.tensor([p], dtype=torch.float64))[0].numpy()
    a, b = p10 - p01, 1 - p01 - p10  # readout: <Z> -> a + b <Z> on each qubit
    z0 = (1 - p1) * (1 - p2) * math.cos(t)  # RY -> D1 ; CX -> D2 ; Z0 commutes with RY(phi) on qubit 1
    z1 = (1 - p1) * (1 - p2) * (1 - p1) * math.cos(t) * math.cos(p)  # <Z1> after CX = <Z0> before; then RY(phi)
    z0z1 = (1 - p2) * (1 - p1) * math.cos(p)  # <Z0 Z1> after CX = <Z1> before = 1; then RY(phi)
    expected = [a + b * z0, a + b * z1, a * a + a * b * (z0 + z1) + b * b * z0z1]
    assert np.abs(out - expected).max() <= 1e-12


def test_one_qubit_closed_form_and_readout_only_profile_is_exact_statevector(tmp_path):
    x, w = Parameter("x"), Parameter("w")
    qc = QuantumCircuit(1)
    qc.ry(x, 0)
    qc.ry(w, 0)
    head = HeadCircuit(qc, [x], [w], [SparsePauliOp("Z")])
    engine = TorchNoiseEngine(head, _profiles(_noise(tmp_path, "p1 = 0.1\nreadout = 0.04\n"))[1])
    assert float(engine(torch.tensor([[0.3]], dtype=torch.float64), torch.tensor([0.2], dtype=torch.float64))) == pytest.approx(0.92 * 0.81 * math.cos(0.5), abs=1e-13)
    readout_only = TorchNoiseEngine(head, _profiles(_noise(tmp_path, "readout = 0.04\n", "ro"))[1])
    assert (readout_only.method, readout_only.trajectories) == ("statevector", 0)
    assert float(readout_only(torch.tensor([[0.3]], dtype=torch.float64), torch.tensor([0.2], dtype=torch.float64))) == pytest.approx(0.92 * math.cos(0.5), abs=1e-13)


def test_error_sampler_matches_its_distribution():
    qc = QuantumCircuit(1)
    qc.x(0)
    qc.x(0)
    lam = [0.4, 2 / 3]  # non-identity Pauli probabilities q = 3/4 lam = 0.3, 0.5
    sample = sample_errors(GateProgram(qc, [], [], lam), 40_000, torch.Generator().manual_seed(3))
    assert sample.p0 == pytest.approx(0.7 * 0.5)
    expected_first0 = 0.3 / 0.65
    se = math.sqrt(expected_first0 * (1 - expected_first0) / 40_000)
    assert abs((sample.first == 0).mean() - expected_first0) <= Z * se
    second = np.isin(np.flatnonzero(sample.first == 0), sample.traj[sample.gate == 1]).mean()  # P(error at 1)
    assert abs(second - 0.5) <= Z * math.sqrt(0.25 / (sample.first == 0).sum())
    assert set(np.unique(sample.first_code)) == {1, 2, 3}


def test_trajectories_agree_with_the_density_matrix_within_their_standard_error(tmp_path):
    head, x, w = _random_head(4, 30, 5, gates_1q=["ry", "h", "rz"], gates_2q=["cx", "cz"])
    noise = _noise(tmp_path, "p1 = 5e-3\np2 = 4e-2\nreadout = 0.02\n")
    exact = TorchNoiseEngine(head, _profiles(noise)[1])
    traj = TorchNoiseEngine(head, _profiles(noise, trajectories=400, seed=7, density_matrix_max_qubits=2)[1])
    assert (traj.method, traj.trajectories) == ("trajectories", 400)
    ref, _, gw_ref = _step(exact, x, w)
    out, _, _ = _step(traj, x, w)
    result = traj.last_result
    assert (result.method, result.trajectories, result.shots) == ("trajectories", 400, 0)
    se = result.stderr.numpy()
    assert (se > 0).all() and se.max() < 0.02
    assert (np.abs(out - ref) <= Z * se).all()
    # the gradient of each draw is unbiased too: 8 independent draws, their mean within Z standard errors
    grads = np.stack([_step(traj, x, w)[2] for _ in range(8)])
    spread = grads.std(axis=0, ddof=1) / math.sqrt(len(grads))
    assert (np.abs(grads.mean(axis=0) - gw_ref) <= Z * spread + 1e-12).all()


def test_gradients_flow_through_each_trajectory(tmp_path):
    head, x, w = _random_head(3, 16, 9, gates_1q=["ry", "rx"], gates_2q=["cx"])
    engine = TorchNoiseEngine(head, _profiles(_noise(tmp_path, "p1 = 0.05\np2 = 0.2\n"), method="statevector",
                                              trajectories=3, seed=1)[1], dtype=torch.float64)  # gradcheck: float64

    def fixed_draw(xs, ws):
        engine.generator.manual_seed(11)  # the same trajectories each call: a deterministic function
        return engine(xs, ws)

    assert torch.autograd.gradcheck(fixed_draw, (torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)))


def test_trajectories_default_to_float32_and_exact_methods_to_float64(tmp_path):
    head, x, w = _random_head(3, 16, 9, gates_1q=["ry"], gates_2q=["cx"])
    noise = _noise(tmp_path, "p1 = 0.01\np2 = 0.05\n")
    traj = TorchNoiseEngine(head, _profiles(noise, method="statevector", trajectories=200, seed=1)[1])
    exact = TorchNoiseEngine(head, _profiles(noise)[1])
    assert traj.program.a_w.dtype == torch.float32 and exact.program.a_w.dtype == torch.float64
    assert traj.describe().in_words().endswith(", exact <Z>, float32") and "float32" not in exact.describe().in_words()
    single = traj(torch.tensor(x), torch.tensor(w))
    double = TorchNoiseEngine(head, _profiles(noise, method="statevector", trajectories=200, seed=1)[1],
                              dtype=torch.float64)(torch.tensor(x), torch.tensor(w))
    assert single.dtype == torch.float64  # the inputs' dtype
    # the same error draw in both precisions: they differ by float32 rounding only
    assert torch.allclose(single, double, atol=1e-5, rtol=0) and not torch.equal(single, double)


def test_shots_sample_the_read_out_distribution_and_keep_the_exact_gradient(tmp_path):
    head, x, w = _random_head(3, 20, 4, gates_1q=["ry"], gates_2q=["cx"])
    noise = _noise(tmp_path, "p1 = 1e-2\np2 = 3e-2\nreadout = 0.05\n")
    exact = TorchNoiseEngine(head, _profiles(noise)[1])
    shots = TorchNoiseEngine(head, _profiles(noise, shots=4000, seed=2)[1])
    ref, _, gw_ref = _step(exact, x, w)
    out, _, gw = _step(shots, x, w)
    se = shots.last_result.stderr.numpy()
    assert shots.last_result.shots == 4000 and (se > 0).all()
    assert (np.abs(out - ref) <= Z * se).all() and np.abs(out - ref).max() > 0  # sampled, not exact
    assert np.abs(gw - gw_ref).max() <= 1e-12  # straight-through: the gradient of the mean


def test_shipped_profiles_pick_their_method():
    small = build_head_circuit(HeadConfig(qubits=4, encoders=0, connectivity=1, reuploads=1, layers=1))
    wide = build_head_circuit(HeadConfig(qubits=9, encoders=0, connectivity=1, reuploads=1, layers=1))
    assert make_engine(small, "torch-depolarizing").method == "density_matrix"
    engine = make_engine(wide, "torch-depolarizing")
    assert (engine.method, engine.trajectories) == ("trajectories", 200)
    assert make_engine(small, "torch-trajectories").method == "trajectories"
    ideal = make_engine(small, "torch-depolarizing", noise_model="none")
    x, w = torch.rand(2, 4, dtype=torch.float64), torch.rand(len(small.weights), dtype=torch.float64)
    assert ideal.method == "statevector"
    assert torch.allclose(ideal(x, w), make_engine(small, "torch")(x, w), atol=1e-12)


def test_bad_inputs_get_one_clear_error(tmp_path):
    qc = QuantumCircuit(1)
    qc.h(0)
    head = HeadCircuit(qc, [], [], [SparsePauliOp("X")])
    with pytest.raises(QSetFitError, match=r"reads Z-type observables .* rotate the measured qubits to Z"):
        TorchNoiseEngine(head, _profiles("depolarizing-1e-3")[1])
    engine = make_engine(build_head_circuit(HeadConfig(qubits=2, encoders=0, connectivity=1)), "torch-depolarizing")
    with pytest.raises(QSetFitError, match="does not take an initial_state"):
        engine(torch.zeros(1, 2), torch.zeros(engine.num_weights), torch.zeros(1, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("profile", ["torch-depolarizing", "torch-trajectories"])
def test_cuda_equals_cpu(profile):
    head = build_head_circuit(HeadConfig(qubits=6, encoders=0, measured=2, connectivity=2, reuploads=2, layers=1))
    x = torch.rand(5, 6, dtype=torch.float64)
    w = torch.rand(len(head.weights), dtype=torch.float64)
    cpu = make_engine(head, profile, seed=3)
    gpu = make_engine(head, profile, seed=3).to("cuda")
    out_cpu, out_gpu = cpu(x, w), gpu(x.cuda(), w.cuda())
    assert out_gpu.device.type == "cuda"
    assert torch.allclose(out_gpu.cpu(), out_cpu, atol=1e-10)


def _train(**noise_args):
    from qsetfit import HybridHead
    from qsetfit.training.head_trainer import Trainer
    from qsetfit.training.arguments import TrainingArguments

    gen = torch.Generator().manual_seed(0)
    emb = torch.rand(24, 3, generator=gen, dtype=torch.float64) * 2 - 1
    labels = (emb.sum(dim=1) > 0).long()
    head = HybridHead(HeadConfig(qubits=3, encoders=0, connectivity=1, reuploads=1, layers=1), seed=0)
    args = TrainingArguments(epochs=2, batch_size=8, seed=0, **noise_args)
    seen = []
    original = head.set_engine
    head.set_engine = lambda name, **options: (seen.append((name, options)), original(name, **options))[1]
    history = Trainer(head, args, (emb, labels), progress=False).train().history
    return head, history, seen


def test_train_noise_trains_through_noisy_trajectories_and_restores_the_engine():
    head, history, seen = _train(train_noise="depolarizing-1e-2", train_trajectories=4)
    name, options = seen[0]
    assert name == "torch-trajectories" and options["noise_model"] == "depolarizing-1e-2"
    assert options["trajectories"] == 4 and seen[-1] == ("torch", {})  # back to the noiseless engine
    clean_head, clean_history, _ = _train()
    assert history[-1]["train_loss"] != clean_history[-1]["train_loss"]  # the noise was in the forward pass
    assert not torch.equal(head.quantum.weight, clean_head.quantum.weight)


def test_train_noise_needs_the_torch_engine_and_a_known_profile():
    from qsetfit.training.arguments import TrainingArguments

    with pytest.raises(QSetFitError, match="train_noise runs module 2 on the noisy torch engine"):
        TrainingArguments(engine="aer-exact", train_noise="depolarizing-1e-3")
    with pytest.raises(QSetFitError, match="did you mean 'depolarizing-1e-3'"):
        _train(train_noise="depolarizing-1e3")


def test_device_noise_is_each_isa_gates_target_error_as_depolarizing():
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error

    from qsetfit.engines.aer.noise import fake_backend

    head = build_head_circuit(HeadConfig(qubits=3, encoders=0, measured=2, connectivity=1, reuploads=1, layers=1))
    engine = make_engine(head, "torch-fake-torino")
    assert engine.method == "density_matrix" and engine.physical_qubits
    target = fake_backend("fake_torino").target
    model, added = NoiseModel(), set()
    circuit = engine.program.gates
    for gate in circuit:
        qargs = tuple(engine.physical_qubits[q] for q in gate.qubits)
        error = target[gate.name][qargs].error or 0.0
        d = 2 ** len(qargs)
        assert gate.depolarizing == pytest.approx(error * d / (d - 1), rel=1e-12)
        if error and (gate.name, gate.qubits) not in added:  # Aer composes an error added twice
            added.add((gate.name, gate.qubits))
            model.add_quantum_error(depolarizing_error(gate.depolarizing, len(qargs)), gate.name, list(gate.qubits),
                                    warnings=False)
    assert any(g.name == "cz" and g.depolarizing > 0 for g in circuit)
    confusion = engine.confusion.numpy()  # the same per-qubit read-out flips as Aer's device model
    for q in range(engine.num_qubits):
        model.add_readout_error(ReadoutError(confusion[q].T), [q], warnings=False)
    # Aer's density matrix with exactly these channels on the compact ISA circuit gives the same numbers
    from qiskit_aer.primitives import EstimatorV2

    from qsetfit.engines.aer.noise import readout_dressed, readout_flips

    x, w = np.linspace(-1, 1, 3), np.linspace(0.3, -0.5, len(head.weights))
    ours = engine(torch.tensor(x), torch.tensor(w)).numpy()
    isa, observables, _ = engine.isa_circuit
    flips = readout_flips(model, engine.num_qubits)
    estimator = EstimatorV2(options={"backend_options": {"method": "density_matrix", "noise_model": model}})
    values = dict(zip(head.inputs + head.weights, [*x, *w]))
    bound = isa.assign_parameters({p: values[p] for p in isa.parameters})
    evs = estimator.run([(bound, [readout_dressed(o, flips) for o in observables])], precision=0.0).result()[0].data.evs
    assert np.abs(ours - evs).max() <= 1e-10
