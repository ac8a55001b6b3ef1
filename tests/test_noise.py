"""Aer noise models from noise profiles against closed-form channels; readout dressing against sampled bits.

(Engine-level effects of these models, device ISA circuits and device noise on used qubits are covered in
tests/engines/test_aer.py and test_runtime.py.)
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from qiskit.circuit import QuantumCircuit
from qiskit.quantum_info import Kraus, Pauli, SparsePauliOp, Statevector, SuperOp, random_statevector
from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error

from qsetfit import QSetFitError
from qsetfit.engines.aer.noise import _connected_subset, build_noise_model, fake_backend, readout_dressed, readout_flips
from qsetfit.profiles import NoiseProfile, load_noise_profile, profile_names

DEPOLARIZING = sorted(n for n in profile_names("noise") if load_noise_profile(n).kind == "depolarizing")


def _depolarizing_superop(p: float, n: int) -> SuperOp:
    """rho -> (1 - p) rho + p Tr(rho) I / 2^n, written as a Pauli-Kraus channel (independent of Aer)."""
    d2 = 4**n
    labels = ["".join(t) for t in itertools.product("IXYZ", repeat=n)]
    weights = [1 - p + p / d2 if set(label) == {"I"} else p / d2 for label in labels]
    return SuperOp(Kraus([np.sqrt(w) * Pauli(label).to_matrix() for label, w in zip(labels, weights)]))


def test_there_are_shipped_depolarizing_profiles():
    assert len(DEPOLARIZING) >= 3


@pytest.mark.parametrize("name", DEPOLARIZING)
def test_shipped_depolarizing_profiles_are_exactly_their_channels(name):
    profile = load_noise_profile(name)
    model = build_noise_model(profile)
    errors = model._default_quantum_errors
    expected = ({*profile.gates_1q} if profile.p1 else set()) | ({*profile.gates_2q} if profile.p2 else set())
    assert set(errors) == expected
    for gates, p, n in ((profile.gates_1q, profile.p1, 1), (profile.gates_2q, profile.p2, 2)):
        for gate in gates if p else []:
            channel = SuperOp(errors[gate])
            assert np.abs(channel.data - _depolarizing_superop(p, n).data).max() <= 1e-15, gate
            assert np.abs(channel.data - SuperOp(depolarizing_error(p, n)).data).max() <= 1e-15, gate
    p01, p10 = profile.readout_flips
    assert np.allclose(model._default_readout_error.probabilities, [[1 - p01, p01], [p10, 1 - p10]], rtol=0, atol=1e-15)


def test_asymmetric_readout_only_profile_has_no_gate_error():
    model = build_noise_model(NoiseProfile(name="ro", readout_p01=0.02, readout_p10=0.07))
    assert model._default_quantum_errors == {}
    assert np.allclose(model._default_readout_error.probabilities, [[0.98, 0.02], [0.07, 0.93]], rtol=0, atol=1e-15)
    assert np.array_equal(readout_flips(model, 3), [[0.02, 0.07]] * 3)


def test_ideal_profiles_build_no_model_and_device_noise_needs_its_qubits():
    assert build_noise_model(NoiseProfile(name="ideal", kind="none")) is None
    assert build_noise_model(NoiseProfile(name="zero")) is None  # depolarizing with every rate 0
    with pytest.raises(QSetFitError, match="device noise needs the physical qubits of the transpiled circuit"):
        build_noise_model(NoiseProfile(name="dev", kind="device", backend="fake_manila"))


def test_readout_flips_reads_per_qubit_errors_and_defaults():
    assert np.array_equal(readout_flips(None, 2), np.zeros((2, 2)))
    model = NoiseModel()
    model.add_all_qubit_readout_error(ReadoutError([[0.9, 0.1], [0.2, 0.8]]))
    model.add_readout_error(ReadoutError([[0.99, 0.01], [0.03, 0.97]]), [1], warnings=False)
    assert np.allclose(readout_flips(model, 3), [[0.1, 0.2], [0.01, 0.03], [0.1, 0.2]], rtol=0, atol=1e-15)


def _measured_mean(state: Statevector, label: str, flips: np.ndarray) -> float:
    """Mean of the measured +-1 product of a Pauli string: rotate to its basis, sample bits through confusion."""
    n = state.num_qubits
    qc = QuantumCircuit(n)
    for q in range(n):
        letter = label[-1 - q]
        if letter == "X":
            qc.h(q)
        elif letter == "Y":
            qc.sdg(q)
            qc.h(q)
    probs = state.evolve(qc).probabilities()  # index bit q = qubit q
    confusion = np.array([[1.0]])
    for q in reversed(range(n)):  # kron order: qubit n-1 first
        p01, p10 = flips[q]
        confusion = np.kron(confusion, np.array([[1 - p01, p10], [p01, 1 - p10]]))  # column: true, row: read
    read = confusion @ probs
    signs = np.array([np.prod([(-1) ** ((i >> q) & 1) for q in range(n) if label[-1 - q] != "I"]) for i in range(2**n)])
    return float(read @ signs)


@pytest.mark.parametrize("seed", range(3))
def test_readout_dressing_equals_measured_bits_for_any_pauli_sum(seed):
    """X/Y/Z factors on three qubits with distinct asymmetric flips: <dressed> = mean of the read-out product."""
    rng = np.random.default_rng(seed)
    flips = rng.uniform(0, 0.2, size=(3, 2))
    state = random_statevector(8, seed=seed)
    labels = ["".join(rng.choice(list("IXYZ"), size=3)) for _ in range(4)]
    coeffs = rng.uniform(-1, 1, size=4)
    observable = SparsePauliOp(labels, coeffs)
    dressed = readout_dressed(observable, flips)
    expected = sum(c * _measured_mean(state, label, flips) for label, c in zip(labels, coeffs))
    assert abs(state.expectation_value(dressed).real - expected) <= 1e-12


def test_readout_dressing_without_flips_is_the_same_operator_and_z_is_affine():
    obs = SparsePauliOp(["ZI", "XX"], [0.5, -1.0])
    assert readout_dressed(obs, np.zeros((2, 2))) is obs
    z = readout_dressed(SparsePauliOp("Z"), np.array([[0.1, 0.3]]))
    assert z == SparsePauliOp(["I", "Z"], [0.3 - 0.1, 1 - 0.1 - 0.3])


def test_fake_backends_by_name_and_clear_errors():
    assert fake_backend("fake_manila") is fake_backend("fake_manila")  # cached: built once per process
    assert fake_backend("fake_manila").num_qubits == 5
    with pytest.raises(QSetFitError, match="needs a fake backend name such as 'fake_torino', got 'ibm_torino'"):
        fake_backend("ibm_torino")
    with pytest.raises(QSetFitError, match=r"no fake backend 'fake_nowhere' \(FakeNowhere\) .*known: .*FakeTorino"):
        fake_backend("fake_nowhere")


def test_connected_subset_keeps_a_connected_set_dropping_the_worst_readout_first():
    import rustworkx as rx

    backend = fake_backend("fake_manila")  # a line 0-1-2-3-4
    graph = backend.coupling_map.graph.to_undirected()
    readout = {q: backend.target["measure"][(q,)].error for q in range(5)}
    for size in (1, 2, 3, 4):
        keep = _connected_subset(backend, range(5), size)
        assert len(keep) == size and rx.is_connected(graph.subgraph(keep))
    # From the whole line, only the two ends can go first: the worse-read end goes.
    worse_end = max((0, 4), key=lambda q: readout[q])
    assert worse_end not in _connected_subset(backend, range(5), 4)
