"""Randomized differential test: the torch and aer-exact engines against qiskit.quantum_info.Statevector.

Each case is drawn from its seed alone (``np.random.default_rng(seed)``), so a failure replays with
``pytest tests/engines/test_differential.py -k 'case[SEED]'``. A case: 1-5 qubits, 0-24 gates drawn from the
README's whole gate set, affine angles in inputs and weights, fixed and repeated angles, custom gates that
reuse a standard name, 1-3 Pauli-sum observables (diagonal or with X/Y factors); for torch also a random
fusion width, gradient mode, chunk size, real or complex path and (sometimes) a complex initial state.
Values are compared with Statevector, gradients with central finite differences of Statevector values.

The default suite runs ``FAST`` cases (a few seconds); the slow-marked cases run ``SLOW`` more.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from qiskit.quantum_info import Statevector

from qsetfit import HeadCircuit, make_engine
from qsetfit.engines.torch.gates import SUPPORTED_GATES
from qsetfit.engines.torch.statevector import TorchStatevectorEngine
from tests.conftest import random_circuit, random_observables, statevector_expectations

FAST = range(16)
SLOW = range(1000, 1300)
EPS = 1e-5  # central differences: truncation ~ EPS^2 * (sum of angle coefficients)^3 / 6 < 1e-8 here
TOL_VALUE, TOL_GRAD = 1e-10, 1e-6


@dataclass
class Case:
    seed: int
    head: HeadCircuit
    x: np.ndarray  # (B, n_in)
    w: np.ndarray  # (n_w,)
    probe: np.ndarray  # (n_obs,): the gradients are those of sum_b probe . out[b]
    initial: np.ndarray | None  # (B, 2^n) complex, torch only
    torch_options: dict


def draw_case(seed: int) -> Case:
    """Everything about one case, from its seed."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 6))
    qc, x, w = random_circuit(n, int(rng.integers(0, 25)), rng, n_in=int(rng.integers(0, 3)),
                              fixed=0.2, reuse=0.3, custom=0.1)
    obs = random_observables(n, rng, count=int(rng.integers(1, 4)), diagonal=bool(rng.random() < 0.5))
    batch = int(rng.integers(1, 4))
    initial = None
    if rng.random() < 0.3:
        initial = rng.normal(size=(batch, 2**n)) + 1j * rng.normal(size=(batch, 2**n))
        initial /= np.linalg.norm(initial, axis=1, keepdims=True)
    options = {
        "fusion_qubits": [None, 1, 2, 3, 4, 5][int(rng.integers(6))],
        "gradient": ["adjoint", "autograd"][int(rng.integers(2))],
        "cache_bytes": int(2 ** rng.integers(4, 21)),  # small values force many batch chunks
        "max_memory_bytes": int(2 ** rng.integers(8, 31)),  # small values force checkpointed chunks
    }
    if rng.random() < 0.3:
        options["real_path"] = False
    return Case(seed, HeadCircuit(qc, x, w, obs), rng.uniform(-2, 2, (batch, len(x))),
                rng.uniform(-2, 2, len(w)), rng.uniform(-1, 1, len(obs)), initial, options)


def reference(case: Case, initial: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Statevector values (B, O) and finite-difference gradients of the probed sum for x (B, n_in) and w."""
    hc = case.head
    params = hc.inputs + hc.weights

    def value(b: int, xb: np.ndarray, w: np.ndarray) -> np.ndarray:
        init = Statevector(case.initial[b]) if initial else None
        return statevector_expectations(hc.circuit, params, list(xb) + list(w), hc.observables, initial=init)

    values = np.array([value(b, case.x[b], case.w) for b in range(len(case.x))])
    dx = np.zeros_like(case.x)
    dw = np.zeros_like(case.w)
    for b in range(len(case.x)):
        for j, step in enumerate(np.eye(case.x.shape[1]) * EPS):
            diff = value(b, case.x[b] + step, case.w) - value(b, case.x[b] - step, case.w)
            dx[b, j] = case.probe @ diff / (2 * EPS)
        for j, step in enumerate(np.eye(len(case.w)) * EPS):
            diff = value(b, case.x[b], case.w + step) - value(b, case.x[b], case.w - step)
            dw[j] += case.probe @ diff / (2 * EPS)
    return values, dx, dw


def engine_run(engine, case: Case, initial: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The engine's values and autograd gradients of the probed sum."""
    xs = torch.tensor(case.x, requires_grad=True)
    ws = torch.tensor(case.w, requires_grad=True)
    init = torch.tensor(case.initial) if initial else None
    out = engine(xs, ws, init)
    loss = (out * torch.tensor(case.probe)).sum()
    if loss.requires_grad:  # not when no gate depends on a parameter
        loss.backward()
    grad = lambda t: np.zeros(t.shape) if t.grad is None else t.grad.numpy()  # noqa: E731 - unused parameters
    return out.detach().numpy(), grad(xs), grad(ws)


def check(case: Case, engine_name: str, got, ref) -> None:
    label = f"seed {case.seed}, {engine_name}, options {case.torch_options}, circuit:\n{case.head.circuit}"
    for what, a, b, tol in zip(("values", "d/dx", "d/dw"), got, ref, (TOL_VALUE, TOL_GRAD, TOL_GRAD)):
        assert a.shape == b.shape, f"{what} shape {a.shape} != {b.shape}; {label}"
        assert np.abs(a - b).max(initial=0.0) <= tol, f"{what} off by {np.abs(a - b).max():.3g}; {label}"


def run_case(seed: int) -> None:
    case = draw_case(seed)
    torch_engine = TorchStatevectorEngine(case.head.circuit, case.head.inputs, case.head.weights,
                                          case.head.observables, **case.torch_options)
    check(case, "torch", engine_run(torch_engine, case, False), reference(case, False))
    if case.initial is not None:
        check(case, "torch, initial state", engine_run(torch_engine, case, True), reference(case, True))
    check(case, "aer-exact", engine_run(make_engine(case.head, "aer-exact"), case, False), reference(case, False))


@pytest.mark.parametrize("seed", FAST)
def test_case(seed):
    run_case(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW)
def test_case_slow(seed):
    run_case(seed)


def test_the_fast_cases_cover_the_readme_gate_set():
    """The gate set the README lists is the engines' set, and the default cases draw every gate of it."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    listed = re.search(r"Gate set: `([^`]+)`", readme)
    assert listed and sorted(listed.group(1).split()) == SUPPORTED_GATES
    drawn, custom = set(), 0
    for seed in FAST:
        for inst in draw_case(seed).head.circuit.data:
            if inst.operation.definition is not None and inst.operation.base_class.__name__ == "Gate":
                custom += 1
                inst = inst.operation.definition.data[0]
            drawn.add(inst.operation.name)
    assert drawn == set(SUPPORTED_GATES) and custom > 0
