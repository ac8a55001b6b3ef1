"""Batched execution for ``EstimatorQNN``: one PUB per forward pass, one PUB per ~1k rows of gradient.

qiskit-machine-learning's defaults send one PUB per observable in the forward pass and one PUB per sample,
observable and shifted binding in ``ParamShiftEstimatorGradient`` (B*O*2P PUBs, ~40 s a step on Aer; see
QISKIT-PITFALLS 1 and 12). The two classes here keep the library's contracts (``gradient=`` and the
``EstimatorQNN`` API) and send the same numbers in a handful of PUBs:

- ``BatchedParamShiftGradient``: the parameter-shift rule of ``ParamShiftEstimatorGradient`` (every
  parameterised gate angle gets its own +-pi/2 shift, then the chain rule through the affine angle
  ``a*p + b`` sums the occurrences of a parameter, e.g. an input re-uploaded in every block). All shifted
  bindings of the whole batch go out as rows of one PUB whose observables array has shape (O, 1), so every
  observable is read from each simulated state; rows are chunked into PUBs of at most ``max_rows``.
- ``BatchedEstimatorQNN``: ``EstimatorQNN`` whose forward pass reads all observables from one PUB.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, cast
from collections.abc import Callable, Sequence

import numpy as np
from qiskit.circuit import Parameter, ParameterExpression, ParameterVector, QuantumCircuit
from qiskit.providers import Options
from qiskit.quantum_info.operators.base_operator import BaseOperator
from qiskit.transpiler.passes import TranslateParameterizedGates
from qiskit_machine_learning.gradients import (
    BaseEstimatorGradient,
    EstimatorGradientResult,
    ParamShiftEstimatorGradient,
)
from qiskit_machine_learning.neural_networks import EstimatorQNN
from qiskit_machine_learning.utils import circuit_cache_key

from qsetfit.errors import QSetFitError
from qsetfit.head.angles import affine_terms

SHIFT = np.pi / 2
PLAN_CACHE_SIZE = 32


@dataclass
class ShiftPlan:
    """A circuit whose parameterised gate angles are free parameters, and how they depend on the original ones.

    Attributes:
        circuit: the original circuit with each parameter-dependent angle g replaced by ``theta[g]``.
        coeffs: (G, P) float64, d theta_g / d p for the original circuit's parameters (in ``circuit.parameters``
            order of the original circuit).
        const: (G,) float64, so that ``theta = const + values @ coeffs.T``.
        order: index of each of ``circuit.parameters`` in [theta, original parameters]: angles that are not
            affine keep their expression in the original parameters, which the PUB then binds too.
        not_affine: original parameter column -> why it cannot be differentiated (its angle is not affine).
    """

    circuit: QuantumCircuit
    coeffs: np.ndarray
    const: np.ndarray
    order: np.ndarray
    not_affine: dict[int, str]


def shift_basis(circuit: QuantumCircuit) -> QuantumCircuit:
    """``circuit`` with its parameterised gates translated to gates with a two-term shift rule."""
    return TranslateParameterizedGates(ParamShiftEstimatorGradient.SUPPORTED_GATES)(circuit)


def make_shift_plan(circuit: QuantumCircuit) -> ShiftPlan:
    """Unroll to gates with a two-term shift rule and give every parameterised angle its own parameter.

    An angle that is not affine in the circuit's parameters (e.g. a ``zz_feature_map``'s (pi - x0)(pi - x1))
    keeps its expression: it is bound with the parameters and never shifted, so only its parameters cannot be
    differentiated (the shift rule plus chain rule would need the angle's value-dependent derivative).
    """
    translated = shift_basis(circuit)
    params = list(circuit.parameters)
    column = {p: i for i, p in enumerate(params)}
    rows: list[tuple[dict[int, float], float]] = []
    slots: list[tuple[int, int]] = []  # (instruction index, angle index) of each free angle
    not_affine: dict[int, str] = {}
    for k, inst in enumerate(translated.data):
        for a, angle in enumerate(inst.operation.params):
            if not isinstance(angle, ParameterExpression) or not angle.parameters:
                continue
            terms = affine_terms(angle, column)
            if terms is None:
                for p in angle.parameters:
                    not_affine.setdefault(
                        column[p],
                        f"gate {inst.operation.name} has angle {angle}, which is not "
                        f"affine in {p}; the batched parameter-shift gradient needs angles a*p + b",
                    )
                continue
            offset = complex(angle.bind({p: 0.0 for p in angle.parameters})).real
            rows.append((terms, float(offset)))
            slots.append((k, a))
    theta = ParameterVector("θ", len(rows))
    free = translated.copy_empty_like()
    free.global_phase = 0.0  # a global phase changes no expectation value
    by_inst: dict[int, list[tuple[int, int]]] = {}
    for g, (k, a) in enumerate(slots):
        by_inst.setdefault(k, []).append((a, g))
    for k, inst in enumerate(translated.data):
        op = inst.operation
        if k in by_inst:
            op = op.copy()
            op.params = list(op.params)
            for a, g in by_inst[k]:
                op.params[a] = theta[g]
        free.append(op, inst.qubits, inst.clbits)
    coeffs = np.zeros((len(rows), len(params)))
    const = np.zeros(len(rows))
    for g, (terms, c) in enumerate(rows):
        const[g] = c
        for col, value in terms.items():
            coeffs[g, col] += value
    position = {p: g for g, p in enumerate(theta)} | {p: len(rows) + i for i, p in enumerate(params)}
    order = np.array([position[p] for p in free.parameters], dtype=int)  # the PUB binds columns in this order
    return ShiftPlan(free, coeffs, const, order, not_affine)


class BatchedParamShiftGradient(BaseEstimatorGradient):
    """``ParamShiftEstimatorGradient``'s numbers in ``ceil(rows / max_rows)`` PUBs and one estimator call.

    Rows are (unique parameter rows of the request) x (2 shifts) x (angles that depend on a requested
    parameter); every observable is read from each row. Parameter rows that repeat across observables (as
    ``EstimatorQNN`` sends them) are simulated once.

    Args:
        estimator: any ``BaseEstimatorV2`` (Aer's ``EstimatorV2`` with ``runtime_parameter_bind_enable``).
        max_rows: most parameter rows in one PUB (Aer scales superlinearly beyond ~1k rows without
            runtime parameter binding, QISKIT-PITFALLS 8).
        precision: passed to ``estimator.run`` (None: the estimator's default; 0.0 for exact Aer values).
    """

    def __init__(self, estimator: Any, *, max_rows: int = 1024, precision: float | None = None) -> None:
        super().__init__(estimator)
        if max_rows < 1:
            raise QSetFitError(f"max_rows must be >= 1, got {max_rows}")
        self.max_rows = max_rows
        self.precision = precision
        self._plans: OrderedDict[tuple, ShiftPlan] = OrderedDict()

    def plan(self, circuit: QuantumCircuit) -> ShiftPlan:
        """The shift plan of ``circuit``, cached on its content (a circuit edited in place gets a new plan).

        The key is the circuit's structure and its parameter objects (two parameters may share a name); the
        cache keeps the ``PLAN_CACHE_SIZE`` most recently used plans and no reference to the circuits.
        """
        key = (circuit_cache_key(circuit), tuple(circuit.parameters))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = make_shift_plan(circuit)
            if len(self._plans) > PLAN_CACHE_SIZE:
                self._plans.popitem(last=False)
        self._plans.move_to_end(key)
        return plan

    def _run(
        self,
        circuits: Sequence[QuantumCircuit],
        observables: Sequence[BaseOperator],
        parameter_values: Sequence[Sequence[float]] | np.ndarray,
        parameters: Sequence[Sequence[Parameter]],
        **options: Any,
    ) -> EstimatorGradientResult:
        groups: dict[int, list[int]] = {}
        for i, circuit in enumerate(circuits):
            groups.setdefault(id(circuit), []).append(i)
        pubs: list[tuple] = []
        finish = []
        for members in groups.values():
            finish.append(self._prepare(circuits[members[0]], members, observables, parameter_values, parameters, pubs))
        if pubs:
            kwargs = {} if self.precision is None else {"precision": self.precision}
            results = self._estimator.run(pubs, **kwargs).result()
            evs = [np.asarray(r.data.evs, dtype=float) for r in results]
        else:
            evs = []
        gradients: list[np.ndarray | None] = [None] * len(circuits)
        for done in finish:
            done(evs, gradients)
        metadata = [{"parameters": list(p)} for p in parameters]
        filled = cast("list[np.ndarray]", gradients)  # every group's finish filled its members' rows
        return EstimatorGradientResult(gradients=filled, metadata=metadata, options=Options())

    def _prepare(
        self,
        circuit: QuantumCircuit,
        members: list[int],
        observables: Sequence[BaseOperator],
        parameter_values: Sequence[Sequence[float]] | np.ndarray,
        parameters: Sequence[Sequence[Parameter]],
        pubs: list[tuple],
    ) -> Callable[[list[np.ndarray], list], None]:
        """Append the PUBs of the requests ``members`` (all on ``circuit``); return what fills their gradients."""
        plan = self.plan(circuit)
        column = {p: i for i, p in enumerate(circuit.parameters)}
        values = np.asarray([parameter_values[i] for i in members], dtype=float).reshape(len(members), -1)
        rows, row_of = np.unique(values, axis=0, return_inverse=True)  # (U, P), (n,)
        row_of = row_of.reshape(-1)
        obs_ids: dict[int, int] = {}
        obs_list: list[BaseOperator] = []
        obs_of = []
        for i in members:
            key = id(observables[i])
            if key not in obs_ids:
                obs_ids[key] = len(obs_list)
                obs_list.append(observables[i])
            obs_of.append(obs_ids[key])
        wanted = sorted({column[p] for i in members for p in parameters[i]})
        for col in wanted:
            if col in plan.not_affine:
                raise QSetFitError(plan.not_affine[col])
        needed = np.flatnonzero(np.abs(plan.coeffs[:, wanted]).sum(axis=1) > 0)  # angles to shift
        theta = np.concatenate([plan.const + rows @ plan.coeffs.T, rows], axis=1)  # (U, G + P)
        n_rows = len(rows) * 2 * len(needed)
        first = len(pubs)
        obs_array = [[o] for o in obs_list]  # (O, 1) against (rows,): every observable from each state
        for start in range(0, n_rows, self.max_rows):
            idx = np.arange(start, min(start + self.max_rows, n_rows))
            sample, rem = np.divmod(idx, 2 * len(needed))
            sign = np.where(rem < len(needed), SHIFT, -SHIFT)
            chunk = theta[sample].copy()
            chunk[np.arange(len(idx)), needed[rem % len(needed)]] += sign
            pubs.append((plan.circuit, obs_array, chunk[:, plan.order]))
        last = len(pubs)

        def done(evs: list[np.ndarray], gradients: list) -> None:
            if n_rows:
                ev = np.concatenate([e.reshape(len(obs_list), -1) for e in evs[first:last]], axis=1)
                ev = ev.reshape(len(obs_list), len(rows), 2, len(needed))
                d_theta = (ev[:, :, 0] - ev[:, :, 1]) / 2  # (O, U, G_needed)
                d_param = d_theta @ plan.coeffs[needed]  # (O, U, P): chain rule over every occurrence
            else:
                d_param = np.zeros((len(obs_list), len(rows), len(column)))
            for j, i in enumerate(members):
                cols = [column[p] for p in parameters[i]]
                gradients[i] = d_param[obs_of[j], row_of[j], cols]

        return done


class BatchedEstimatorQNN(EstimatorQNN):
    """``EstimatorQNN`` whose forward pass reads every observable from one PUB (QISKIT-PITFALLS 12).

    The library's ``_forward`` sends one PUB per observable, which simulates (or, on hardware, samples) the
    same states O times. Here the observables array has shape (O, 1) against B parameter rows.
    """

    def _forward(self, input_data: np.ndarray | None, weights: np.ndarray | None) -> np.ndarray | None:
        values, num_samples = self._preprocess_forward(input_data, weights)
        assert values is not None and num_samples is not None  # never None: the library's annotation is loose
        observables = [[o] for o in self._observables]
        if not self._circuit.num_parameters:  # Aer runs a parameter-free circuit once, however many rows
            values = values[:1]
        job = self.estimator.run([(self._circuit, observables, values)], precision=self._default_precision)
        evs = np.asarray(job.result()[0].data.evs, dtype=float).reshape(len(self._observables), -1)  # (O, B or 1)
        return np.broadcast_to(evs, (len(self._observables), num_samples)).T.copy()  # (B, O)
