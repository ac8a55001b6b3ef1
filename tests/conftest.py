"""Shared fixtures: random circuits over the engines' whole gate set, and Statevector references."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.circuit import ParameterVector, QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

from qsetfit.engines.torch.gates import FIXED_GATES, ONE_ANGLE_GATES, THREE_ANGLE_GATES


def random_circuit(n: int, depth: int, rng: np.random.Generator, *, gate_names=None, n_in: int = 3,
                   fixed: float = 0.0, reuse: float = 0.0, custom: float = 0.0):
    """A circuit of random gates whose angles are affine in input (x) and weight (w) parameters.

    With the defaults every angle has its own weight. ``fixed``: probability that an angle is a plain number;
    ``reuse``: that it reuses an earlier weight (repeated parameters); ``custom``: that the gate is wrapped in
    a custom ``Gate`` named like a random standard gate (engines must run its definition, not its name).
    """
    names = gate_names or sorted([*FIXED_GATES, *ONE_ANGLE_GATES, *THREE_ANGLE_GATES])
    x = ParameterVector("x", n_in)
    weights = []
    qc = QuantumCircuit(n)
    for _ in range(depth):
        name = names[rng.integers(len(names))]
        if name in FIXED_GATES:
            gate = FIXED_GATES[name]()
        else:
            n_angles = 3 if name in THREE_ANGLE_GATES else 1
            cls = THREE_ANGLE_GATES.get(name) or ONE_ANGLE_GATES[name][0]
            gate = cls(*(_random_angle(rng, x, weights, fixed, reuse) for _ in range(n_angles)))
        qubits = rng.choice(n, size=gate.num_qubits, replace=False).tolist() if gate.num_qubits <= n else None
        if qubits is None:
            continue
        if custom and rng.random() < custom:
            gate = _custom_lookalike(gate, names[rng.integers(len(names))])
        qc.append(gate, qubits)
    return qc, list(x), weights


def _random_angle(rng, x, weights, fixed: float, reuse: float):
    if fixed and rng.random() < fixed:
        return float(rng.uniform(-np.pi, np.pi))
    if reuse and weights and rng.random() < reuse:
        w = weights[int(rng.integers(len(weights)))]
    else:
        w = ParameterVector(f"w{len(weights)}", 1)[0]
        weights.append(w)
    angle = float(rng.uniform(0.5, 2.0)) * w + float(rng.uniform(-1, 1))
    if len(x) and rng.random() < 0.5:
        angle = angle + float(rng.uniform(0.5, 2.0)) * x[int(rng.integers(len(x)))]
    return angle


def _custom_lookalike(gate, name: str):
    """``gate`` as a custom Gate called ``name`` (a standard name): only its definition says what it does."""
    sub = QuantumCircuit(gate.num_qubits)
    sub.append(gate, range(gate.num_qubits))
    custom = sub.to_gate()
    custom.name = name
    return custom


def random_observables(n: int, rng: np.random.Generator, count: int = 3, *, diagonal: bool = False):
    """Random Pauli sums (with X/Y factors unless ``diagonal``)."""
    letters = "IZ" if diagonal else "IXYZ"
    obs = []
    for _ in range(count):
        labels = ["".join(rng.choice(list(letters), size=n)) for _ in range(2)]
        obs.append(SparsePauliOp(labels, coeffs=rng.uniform(-1, 1, size=2)))
    return obs


def statevector_expectations(circuit, params, values, observables, initial=None):
    """<O> per observable from qiskit.quantum_info.Statevector, the reference simulator."""
    present = set(circuit.parameters)
    bound = circuit.assign_parameters({p: v for p, v in zip(params, values) if p in present})
    state = Statevector(initial) if initial is not None else Statevector.from_int(0, 2**circuit.num_qubits)
    state = state.evolve(bound)
    return np.array([state.expectation_value(o).real for o in observables])


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session", autouse=True)
def _embedding_cache(tmp_path_factory):
    """One embedding cache for the whole session, outside the user's home."""
    import os

    old = os.environ.get("QSETFIT_CACHE")
    os.environ["QSETFIT_CACHE"] = str(tmp_path_factory.mktemp("qsetfit-cache"))
    yield
    if old is None:
        os.environ.pop("QSETFIT_CACHE", None)
    else:
        os.environ["QSETFIT_CACHE"] = old


@pytest.fixture(scope="session")
def small_splits():
    """A small, balanced slice of the packaged demo set (fast to embed and train)."""
    from qsetfit.data.datasets import DatasetSplits, demo_dataset

    d = demo_dataset()
    pick = lambda ds, n: ds.subset([i for i in range(len(ds)) if i < n])  # noqa: E731
    return DatasetSplits(pick(d.train, 48), pick(d.validation, 16), pick(d.test, 16), d.label_names)
