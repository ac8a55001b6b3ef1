"""The batched parameter-shift gradient and EstimatorQNN forward, on qiskit's exact StatevectorEstimator.

The engine-level comparisons (against the torch engine and the library's ParamShiftEstimatorGradient on the
head) live in test_aer.py; here the module's own contracts are checked on random circuits of the whole gate
set: shift plans reproduce every angle, gradients equal finite differences and the two-term shift rule,
chunking into PUBs changes no number, and repeated rows are simulated once.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit.circuit import Parameter, ParameterVector, QuantumCircuit
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import Operator, SparsePauliOp
from qiskit_machine_learning.neural_networks import EstimatorQNN

from qsetfit import QSetFitError
from qsetfit.engines.aer.gradient import (
    PLAN_CACHE_SIZE,
    BatchedEstimatorQNN,
    BatchedParamShiftGradient,
    make_shift_plan,
)
from tests.conftest import random_circuit, random_observables, statevector_expectations


class CountingEstimator(StatevectorEstimator):
    """Qiskit's reference estimator (exact at precision 0), counting calls, PUBs and parameter rows."""

    def __init__(self) -> None:
        super().__init__()
        self.calls, self.pubs, self.rows = 0, 0, 0

    def run(self, pubs, *, precision=None):
        pubs = list(pubs)
        self.calls += 1
        self.pubs += len(pubs)
        self.rows += sum(int(np.prod(np.shape(p[2])[:-1])) if len(p) > 2 else 1 for p in pubs)
        return super().run(pubs, precision=precision)


def _finite_difference(qc, params, values, observables, eps=1e-6):
    """(O, P) central differences of Statevector expectation values."""
    cols = []
    for j in range(len(params)):
        step = np.zeros(len(params))
        step[j] = eps
        hi = statevector_expectations(qc, params, values + step, observables)
        lo = statevector_expectations(qc, params, values - step, observables)
        cols.append((hi - lo) / (2 * eps))
    return np.stack(cols, axis=1)


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 4))
    qc, _, _ = random_circuit(n, 14, rng, n_in=2, fixed=0.2, reuse=0.3)
    return qc, list(qc.parameters), random_observables(n, rng, count=2), rng


@pytest.mark.parametrize("seed", range(5))
def test_shift_plan_angles_reproduce_the_circuit(seed):
    """Binding theta = const + values @ coeffs.T into the plan's circuit gives the original unitary."""
    qc, params, _, rng = _random_case(seed)
    plan = make_shift_plan(qc)
    values = rng.uniform(-2, 2, size=len(params))
    theta = plan.const + plan.coeffs @ values
    row = np.concatenate([theta, values])[plan.order]
    bound = plan.circuit.assign_parameters(dict(zip(plan.circuit.parameters, row)))
    original = qc.assign_parameters(dict(zip(params, values)))
    assert Operator(bound).equiv(Operator(original))  # equal up to the dropped global phase
    assert not plan.not_affine


@pytest.mark.parametrize("seed", range(5))
def test_gradients_equal_finite_differences_on_random_circuits(seed):
    """Every gate of the set, repeated parameters, fixed angles, inputs re-used: the chain rule sums them."""
    qc, params, obs, rng = _random_case(seed)
    values = rng.uniform(-2, 2, size=(2, len(params)))
    grad = BatchedParamShiftGradient(StatevectorEstimator(), max_rows=17)
    result = grad.run([qc] * 4, obs * 2, [values[0]] * 2 + [values[1]] * 2).result()
    for i, (v, o) in enumerate([(values[0], 0), (values[0], 1), (values[1], 0), (values[1], 1)]):
        fd = _finite_difference(qc, params, v, [obs[o]])[0]
        assert np.abs(result.gradients[i] - fd).max() <= 1e-6, i


def test_the_two_term_shift_rule_is_exact_for_a_rotation():
    """<Z> of RX(a)|0> is cos a: the gradient is exactly -sin a; of <Y>, -cos a."""
    a = Parameter("a")
    qc = QuantumCircuit(1)
    qc.rx(a, 0)
    grad = BatchedParamShiftGradient(StatevectorEstimator())
    values = [[0.5], [-1.2]]
    got = grad.run([qc] * 4, [SparsePauliOp("Z"), SparsePauliOp("Y")] * 2, [values[0], values[0], values[1], values[1]])
    g = got.result().gradients
    for k, v in enumerate([0.5, -1.2]):
        assert g[2 * k][0] == pytest.approx(-math.sin(v), abs=1e-14)
        assert g[2 * k + 1][0] == pytest.approx(-math.cos(v), abs=1e-14)


def test_only_requested_parameters_are_shifted_and_returned_in_their_order():
    qc, params, obs, rng = _random_case(3)
    assert len(params) >= 3
    values = rng.uniform(-2, 2, size=len(params))
    wanted = [params[2], params[0]]
    full_est, part_est = CountingEstimator(), CountingEstimator()
    full = BatchedParamShiftGradient(full_est).run([qc], [obs[0]], [values]).result().gradients[0]
    part = BatchedParamShiftGradient(part_est).run([qc], [obs[0]], [values], [wanted]).result().gradients[0]
    assert np.allclose(part, full[[2, 0]], atol=1e-12)
    assert part_est.rows < full_est.rows  # angles of unrequested parameters are not shifted


@pytest.mark.parametrize("max_rows", [1, 5, 1024])
def test_rows_are_chunked_into_pubs_without_changing_a_number(max_rows):
    qc, params, obs, rng = _random_case(1)
    values = rng.uniform(-2, 2, size=(3, len(params)))
    plan = make_shift_plan(qc)
    est = CountingEstimator()
    grad = BatchedParamShiftGradient(est, max_rows=max_rows)
    # Three rows per observable, each sent once per observable (as EstimatorQNN does): simulated once.
    circuits, observables, rows = [qc] * 6, [obs[0]] * 3 + [obs[1]] * 3, list(values) * 2
    got = grad.run(circuits, observables, rows).result().gradients
    n_rows = 3 * 2 * len(plan.const)
    assert est.calls == 1 and est.pubs == math.ceil(n_rows / max_rows) and est.rows == n_rows
    ref = BatchedParamShiftGradient(StatevectorEstimator()).run(circuits, observables, rows).result().gradients
    assert all(np.array_equal(a, b) if max_rows == 1024 else np.allclose(a, b, atol=1e-12) for a, b in zip(got, ref))


def test_max_rows_below_one_is_refused():
    with pytest.raises(QSetFitError, match="max_rows must be >= 1, got 0"):
        BatchedParamShiftGradient(StatevectorEstimator(), max_rows=0)


def test_the_plan_cache_is_bounded():
    grad = BatchedParamShiftGradient(StatevectorEstimator())
    p = Parameter("p")
    for k in range(PLAN_CACHE_SIZE + 5):
        qc = QuantumCircuit(1)
        qc.ry(p * (k + 1), 0)
        grad.plan(qc)
    assert len(grad._plans) == PLAN_CACHE_SIZE


def test_batched_qnn_forward_equals_the_library_in_one_pub():
    rng = np.random.default_rng(4)
    qc, x, w = random_circuit(3, 12, rng, n_in=2)
    obs = random_observables(3, rng, count=3)
    xs, ws = rng.uniform(-1, 1, size=(4, len(x))), rng.uniform(-1, 1, size=len(w))
    est = CountingEstimator()
    ours = BatchedEstimatorQNN(circuit=qc, observables=obs, input_params=x, weight_params=w, estimator=est,
                               default_precision=0.0)
    library = EstimatorQNN(circuit=qc, observables=obs, input_params=x, weight_params=w,
                           estimator=StatevectorEstimator(), default_precision=0.0)
    got = ours.forward(xs, ws)
    assert got.shape == (4, 3) and np.allclose(got, library.forward(xs, ws), atol=1e-12)
    assert (est.calls, est.pubs) == (1, 1)
    for b in range(4):
        ref = statevector_expectations(qc, x + w, list(xs[b]) + list(ws), obs)
        assert np.abs(got[b] - ref).max() <= 1e-12


def test_a_parameter_free_circuit_runs_once_for_the_whole_batch():
    qc = QuantumCircuit(1)
    qc.h(0)
    est = CountingEstimator()
    x = ParameterVector("x", 0)
    qnn = BatchedEstimatorQNN(circuit=qc, observables=[SparsePauliOp("X"), SparsePauliOp("Z")],
                              input_params=list(x), weight_params=[], estimator=est, default_precision=0.0)
    out = qnn.forward(np.zeros((5, 0)), np.zeros(0))
    assert out.shape == (5, 2) and np.allclose(out, [[1.0, 0.0]] * 5, atol=1e-12)
    assert est.rows == 1
