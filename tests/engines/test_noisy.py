"""The noisy torch engine: shots, the method each profile picks, errors, CUDA, training through noise, device noise
(its density matrix: test_density; its trajectories: test_trajectories)."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from qiskit.circuit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qsetfit import HeadCircuit, HeadConfig, QSetFitError, build_head_circuit, make_engine
from qsetfit.engines.torch.noisy import TorchNoiseEngine
from tests.engines.noisy_circuits import Z, noise_file, profile_pair, random_head, step


def test_shots_sample_the_read_out_distribution_and_keep_the_exact_gradient(tmp_path):
    head, x, w = random_head(3, 20, 4, gates_1q=["ry"], gates_2q=["cx"])
    noise = noise_file(tmp_path, "p1 = 1e-2\np2 = 3e-2\nreadout = 0.05\n")
    exact = TorchNoiseEngine(head, profile_pair(noise)[1])
    shots = TorchNoiseEngine(head, profile_pair(noise, shots=4000, seed=2)[1])
    ref, _, gw_ref = step(exact, x, w)
    out, _, gw = step(shots, x, w)
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
        TorchNoiseEngine(head, profile_pair("depolarizing-1e-3")[1])
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


def test_trajectories_default_to_float32_and_exact_methods_to_float64(tmp_path):
    head, x, w = random_head(3, 16, 9, gates_1q=["ry"], gates_2q=["cx"])
    noise = noise_file(tmp_path, "p1 = 0.01\np2 = 0.05\n")
    traj = TorchNoiseEngine(head, profile_pair(noise, method="statevector", trajectories=200, seed=1)[1])
    exact = TorchNoiseEngine(head, profile_pair(noise)[1])
    assert traj.program.a_w.dtype == torch.float32 and exact.program.a_w.dtype == torch.float64
    assert traj.describe().in_words().endswith(", exact <Z>, float32") and "float32" not in exact.describe().in_words()
    single = traj(torch.tensor(x), torch.tensor(w))
    double = TorchNoiseEngine(head, profile_pair(noise, method="statevector", trajectories=200, seed=1)[1],
                              dtype=torch.float64)(torch.tensor(x), torch.tensor(w))
    assert single.dtype == torch.float64  # the inputs' dtype
    # the same error draw in both precisions: they differ by float32 rounding only
    assert torch.allclose(single, double, atol=1e-5, rtol=0) and not torch.equal(single, double)
