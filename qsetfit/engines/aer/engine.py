"""The ``aer`` engines: module 2 as an ``EstimatorQNN`` over Aer, ideal, with shots, or with noise.

``make_engine(head_circuit, "aer-exact")`` resolves the name through ``qsetfit.profiles`` (registered below)
and builds an ``AerEngine`` from the backend profile. What runs:

- estimator: ``qiskit_aer.primitives.EstimatorV2`` for exact expectation values (statevector, density
  matrix, or an average over statevector noise trajectories); ``AerShotEstimator`` when the profile asks for
  shots (Aer's ``precision`` option adds Gaussian noise, one draw per PUB under a fixed seed, which is not
  shot noise: QISKIT-PITFALLS 4);
- network: ``BatchedEstimatorQNN`` (every observable from one PUB) with ``BatchedParamShiftGradient`` (one
  estimator call per backward pass, ceil(rows / max_pub_rows) PUBs), ``input_gradients=True``,
  ``default_precision=0.0`` (QISKIT-PITFALLS 1-3, 12);
- torch: the engine base's autograd adapter calls ``_expectation_values`` / ``_vjp``, which run
  ``qnn.forward`` / ``qnn.backward`` in float64 (``TorchConnector`` casts to float32, which would break the
  1e-8 agreement with the torch engine).

Scale (the paper's 14 qubits over thousands of inputs): a noisy density-matrix profile simulates density
matrices only up to ``density_matrix_max_qubits`` (8 by default: an 8-qubit density matrix already costs
about as much as 200 statevector trajectories); above, it runs statevector noise trajectories and says so in
``engine.method`` and the log.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from qiskit.circuit import QuantumCircuit
from qiskit.primitives import BaseEstimatorV2, PrimitiveResult, PubResult
from qiskit.primitives.containers import DataBin
from qiskit.primitives.containers.estimator_pub import EstimatorPub
from qiskit.primitives.primitive_job import PrimitiveJob
from qiskit.quantum_info import SparsePauliOp

from qsetfit import profiles
from qsetfit.head.circuits import HeadCircuit
from qsetfit.engines.base import Capabilities, Counters, Engine, EngineInfo
from qsetfit.engines.aer.methods import aer_circuit
from qsetfit.errors import QSetFitError

logger = logging.getLogger(__name__)
GRADIENTS = ("batched", "param_shift")


class TrackedEstimator(BaseEstimatorV2):
    """Counts the calls and PUBs sent to an estimator; optionally gives Aer a fresh seed per call.

    Args:
        inner: the estimator that runs the PUBs.
        rng: when set, each call draws ``seed_simulator`` for an Aer ``EstimatorV2`` (noise trajectories
            must differ between calls; a fixed seed repeats the same trajectories).
    """

    def __init__(self, inner: BaseEstimatorV2, counters: Counters, *, rng: np.random.Generator | None = None) -> None:
        self.inner = inner
        self.rng = rng
        self.counters = counters

    def run(self, pubs: Any, *, precision: float | None = None) -> Any:  # noqa: D102 - BaseEstimatorV2.run
        pubs = list(pubs)
        self.counters.count_job(len(pubs))
        if self.rng is not None:
            self.inner.options.run_options["seed_simulator"] = int(self.rng.integers(2**31 - 1))
        return self.inner.run(pubs, precision=precision)


class AerShotEstimator(BaseEstimatorV2):
    """Finite-shot <O> from Aer measurement samples: real shot statistics, with a fresh seed per call.

    Each PUB's circuit is measured once in the single basis all its Pauli terms share (any set of Z strings
    does), with every parameter row bound at run time, and all observables are estimated from the same
    shots (QISKIT-PITFALLS 12). Noise, including readout error, comes from the Aer noise model: a noisy
    statevector run is one noise trajectory per shot.

    Args:
        shots: samples per parameter row (a PUB's ``precision`` p > 0 asks for ceil(1/p^2) instead).
        backend_options: ``AerSimulator`` options (method, noise_model...).
        seed: seeds the per-call seed sequence (None: nondeterministic).
    """

    def __init__(self, *, shots: int, backend_options: dict[str, Any], seed: int | None = None) -> None:
        from qiskit_aer import AerSimulator

        self.shots = shots
        self.simulator = AerSimulator(**backend_options)
        self.rng = np.random.default_rng(seed)
        self.last_seed: int | None = None
        self._measured: dict[tuple, Any] = {}  # keyed on content: a circuit edited in place is measured anew

    def run(self, pubs: Any, *, precision: float | None = None) -> PrimitiveJob:  # noqa: D102
        coerced = [EstimatorPub.coerce(pub, precision) for pub in pubs]
        job = PrimitiveJob(lambda: PrimitiveResult([self._run_pub(p) for p in coerced], metadata={"version": 2}))
        job._submit()
        return job

    def _measured_circuit(self, circuit: Any, labels: list[str]) -> tuple[Any, np.ndarray]:
        """The circuit with basis changes and ``measure_all``, and each label's qubit mask (bit q = qubit q)."""
        basis = ["I"] * circuit.num_qubits
        for label in labels:
            for q in range(circuit.num_qubits):
                letter = label[-1 - q]
                if letter != "I":
                    if basis[q] not in ("I", letter):
                        raise QSetFitError(
                            "shot sampling measures once per input: every Pauli term must share one basis per "
                            f"qubit, but qubit {q} needs both {basis[q]} and {letter}"
                        )
                    basis[q] = letter
        from qiskit_machine_learning.utils import circuit_cache_key

        key = (circuit_cache_key(circuit), tuple(circuit.parameters), tuple(basis))
        if key not in self._measured:
            measured = circuit.copy()
            for q, letter in enumerate(basis):
                if letter == "Y":
                    measured.sdg(q)
                if letter in ("X", "Y"):
                    measured.h(q)
            measured.measure_all()
            self._measured[key] = measured
        masks = np.array([sum(1 << q for q in range(len(lb)) if lb[-1 - q] != "I") for lb in labels], dtype=np.int64)
        return self._measured[key], masks

    def _run_pub(self, pub: EstimatorPub) -> PubResult:
        shots = math.ceil(1 / pub.precision**2) if pub.precision else self.shots
        circuit, obs = pub.circuit, pub.observables
        if circuit.num_qubits > 62:
            raise QSetFitError(f"shot sampling supports up to 62 qubits, got {circuit.num_qubits}")
        labels = sorted({label for terms in obs.ravel() for label in terms})
        measured, masks = self._measured_circuit(circuit, labels)
        params = list(circuit.parameters)
        values = pub.parameter_values.as_array(params).reshape(-1, len(params))  # (R, P)
        n_rows = values.shape[0] if params else 1
        self.last_seed = int(self.rng.integers(2**31 - 1))
        binds = {"parameter_binds": [{p: values[:, i] for i, p in enumerate(params)}]} if params else {}
        result = self.simulator.run(measured, shots=shots, seed_simulator=self.last_seed, **binds).result()
        means = np.empty((n_rows, len(labels)))  # (R, L) sample mean of each Pauli's +-1 outcome
        for r in range(n_rows):
            counts = result.results[r].data.counts
            outcomes = np.fromiter((int(k, 16) for k in counts), dtype=np.int64, count=len(counts))
            freqs = np.fromiter(counts.values(), dtype=float, count=len(counts))
            parity = _parity(outcomes[:, None] & masks[None, :]).astype(float)  # (K, L)
            means[r] = freqs @ (1 - 2 * parity) / shots
        flat = obs.ravel().tolist()
        column = {label: i for i, label in enumerate(labels)}
        coeffs = np.zeros((len(flat), len(labels)))
        for o, terms in enumerate(flat):
            for label, c in terms.items():
                coeffs[o, column[label]] += np.real(c)
        ev = means @ coeffs.T  # (R, n_obs)
        var = (1 - means**2) @ (coeffs**2).T / shots  # independent-term approximation of the variance
        shape = np.broadcast_shapes(pub.parameter_values.shape, obs.shape)
        rows = np.broadcast_to(np.arange(n_rows).reshape(pub.parameter_values.shape), shape)
        cols = np.broadcast_to(np.arange(len(flat)).reshape(obs.shape), shape)
        evs, stds = ev[rows, cols], np.sqrt(var[rows, cols])
        return PubResult(DataBin(evs=evs, stds=stds, shape=shape), metadata={"shots": shots, "seed": self.last_seed})


def _parity(bits: np.ndarray) -> np.ndarray:
    """Parity (0 or 1) of the set bits of non-negative int64s below 2**63 (numpy < 2 has no bitwise_count)."""
    bits = bits.copy()
    for shift in (32, 16, 8, 4, 2, 1):
        bits ^= bits >> shift
    return bits & 1


class AerEngine(Engine):
    """Module 2 on Aer through ``EstimatorQNN``, configured by a backend profile.

    Args:
        head_circuit: the circuit, its input/weight order (kept, so weights move between engines) and
            observables.
        profile: the backend profile (default: exact statevector).
        gradient: "batched" (``BatchedParamShiftGradient``) or "param_shift" (the library's
            ``ParamShiftEstimatorGradient``: same numbers, one PUB per sample, observable and shift; for
            comparisons only).

    Attributes:
        method: what Aer runs: "statevector", "density_matrix" or "statevector_trajectories".
        trajectories: noise trajectories averaged per input in exact mode (0: exact).
        physical_qubits: device qubits of the compacted ISA circuit (device noise), else None.
        calls, pubs_submitted: estimator calls and PUBs sent so far (one PUB per forward pass).
    """

    capabilities = Capabilities(initial_state=False, gradients=True, noise=True)

    def __init__(
        self, head_circuit: HeadCircuit, profile: profiles.BackendProfile | None = None, *, gradient: str = "batched"
    ) -> None:
        super().__init__(
            num_inputs=len(head_circuit.inputs),
            num_weights=len(head_circuit.weights),
            num_outputs=len(head_circuit.observables),
        )
        from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient

        from qsetfit.engines.aer import noise
        from qsetfit.engines.aer.gradient import BatchedEstimatorQNN, BatchedParamShiftGradient

        if gradient not in GRADIENTS:
            raise QSetFitError(f"gradient must be one of {', '.join(GRADIENTS)}, got {gradient!r}")
        self.profile = profile = profile or profiles.BackendProfile(name="aer-exact")
        self.noise = noise_profile = profiles.load_noise_profile(profile.noise_model)
        circuit, observables, self.physical_qubits = head_circuit.circuit, list(head_circuit.observables), None
        if noise_profile.kind == "device":
            circuit, observables, self.physical_qubits = noise.device_isa_circuit(
                circuit,
                observables,
                noise_profile.backend,
                optimization_level=profile.optimization_level,
                seed_transpiler=profile.seed_transpiler,
            )
        model = noise.build_noise_model(noise_profile, self.physical_qubits)
        self.method, self.trajectories = choose_method(profile, noise_profile, circuit.num_qubits)
        self.circuit = circuit = aer_circuit(circuit, self.method.replace("_trajectories", ""))
        observables = self._configure_estimator(model, circuit.num_qubits, observables)
        grad = (
            BatchedParamShiftGradient(self.estimator, max_rows=profile.max_pub_rows)
            if gradient == "batched"
            else ParamShiftEstimatorGradient(self.estimator)
        )
        self._x_cols, self._w_cols = _used_columns(circuit, head_circuit)
        self.qnn = BatchedEstimatorQNN(
            circuit=circuit,
            observables=observables,
            input_params=[head_circuit.inputs[i] for i in self._x_cols],
            weight_params=[head_circuit.weights[i] for i in self._w_cols],
            estimator=self.estimator,
            gradient=grad,
            input_gradients=True,
            default_precision=0.0,
        )
        logger.info(
            "aer engine %r: %d qubits, method %s%s%s, noise %r",
            profile.name,
            circuit.num_qubits,
            self.method,
            f", {self.trajectories} trajectories per input" if self.trajectories else "",
            f", {profile.shots} shots" if profile.shots else ", exact expectation values",
            noise_profile.name,
        )

    def _configure_estimator(
        self, model: Any, num_qubits: int, observables: list[SparsePauliOp]
    ) -> list[SparsePauliOp]:
        """Set ``self.estimator`` (counted) for the profile; return the observables it estimates.

        With shots: Aer's sampler-based estimator. Exact <O>: Aer ignores readout error there, so the error is
        folded into the observables; noise trajectories draw their seeds from the profile's seed.
        """
        from qiskit_aer.primitives import EstimatorV2

        from qsetfit.engines.aer import noise

        profile = self.profile
        options: dict[str, Any] = {
            "method": self.method.replace("_trajectories", ""),
            "runtime_parameter_bind_enable": True,
            "max_parallel_threads": profile.threads,
        }
        if model is not None:
            options["noise_model"] = model
        rng = np.random.default_rng(profile.seed)
        if profile.shots:
            inner: BaseEstimatorV2 = AerShotEstimator(
                shots=profile.shots, backend_options=options, seed=int(rng.integers(2**31 - 1))
            )
            self.estimator = TrackedEstimator(inner, self.counters)
            return observables
        inner = EstimatorV2(options={"backend_options": options, "run_options": {"shots": self.trajectories or 1}})
        self.estimator = TrackedEstimator(inner, self.counters, rng=rng if self.trajectories else None)
        return [noise.readout_dressed(o, noise.readout_flips(model, num_qubits)) for o in observables]

    def describe(self) -> EngineInfo:
        """Aer's method, trajectories per input, shots and device layout."""
        physical = tuple(self.physical_qubits) if self.physical_qubits else None
        return EngineInfo("aer", self.method, self.trajectories, self.profile.shots or 0, physical)

    def _expectation_values(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return self.qnn.forward(x[:, self._x_cols], w[self._w_cols])

    def _vjp(
        self, x: np.ndarray, w: np.ndarray, grad_out: np.ndarray, *, need_x: bool, need_w: bool
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        self.qnn.input_gradients = need_x  # weights only: shift only weight-dependent angles
        try:
            gx, gw = self.qnn.backward(x[:, self._x_cols], w[self._w_cols])
        except Exception as exc:  # the library wraps our errors in "Estimator job failed": show ours
            if isinstance(exc.__cause__, QSetFitError):
                raise exc.__cause__ from None
            raise
        # Parameters the circuit does not use get zero gradients; so does everything when the QNN returns
        # None or an empty Jacobian (no inputs, or no weights).
        dx, dw = np.zeros(x.shape), np.zeros(w.shape)
        if need_x and gx is not None and np.size(gx):
            dx[:, self._x_cols] = np.einsum("bo,boi->bi", grad_out, gx)
        if need_w and gw is not None and np.size(gw):
            dw[self._w_cols] = np.einsum("bo,bow->w", grad_out, gw)
        return dx if need_x else None, dw if need_w else None

    def extra_repr(self) -> str:
        return f"profile={self.profile.name!r}, method={self.method!r}, shots={self.profile.shots}"


def _used_columns(circuit: QuantumCircuit, head_circuit: HeadCircuit) -> tuple[list[int], list[int]]:
    """Columns of the inputs and weights that ``circuit`` uses (``EstimatorQNN`` refuses unused parameters)."""
    known = set(head_circuit.inputs) | set(head_circuit.weights)
    stray = [p for p in circuit.parameters if p not in known]
    if stray:
        raise QSetFitError(f"circuit parameter {stray[0]} is neither an input nor a weight of the engine")
    used = set(circuit.parameters)
    return (
        [i for i, p in enumerate(head_circuit.inputs) if p in used],
        [i for i, p in enumerate(head_circuit.weights) if p in used],
    )


def choose_method(
    profile: profiles.BackendProfile, noise_profile: profiles.NoiseProfile, num_qubits: int
) -> tuple[str, int]:
    """(method, trajectories per input) for a profile on ``num_qubits`` qubits; never Aer's "automatic".

    Gate noise on statevector needs trajectories (exact mode averages ``profile.trajectories`` of them per
    input; shot mode runs one per shot). A noisy density matrix falls back to trajectories above
    ``density_matrix_max_qubits``. Readout-only noise needs neither (it is applied exactly or when sampling).
    """
    gate_noise = noise_profile.kind == "device" or (
        noise_profile.kind == "depolarizing" and (noise_profile.p1 > 0 or noise_profile.p2 > 0)
    )
    if not gate_noise:
        return profile.method, 0
    if profile.method == "density_matrix" and num_qubits <= profile.density_matrix_max_qubits:
        return "density_matrix", 0
    if profile.method == "density_matrix":
        logger.info(
            "a %d-qubit density matrix exceeds density_matrix_max_qubits=%d: using statevector trajectories instead",
            num_qubits,
            profile.density_matrix_max_qubits,
        )
    return "statevector_trajectories", 0 if profile.shots else profile.trajectories


def engine_from_profile(head_circuit: HeadCircuit, profile: profiles.BackendProfile, **options: Any) -> AerEngine:
    """Builder for ``engine = "aer"`` profiles: ``gradient`` goes to the engine, other options override fields."""
    gradient = options.pop("gradient", "batched")
    if options:
        profile = profile.replace(**options)
    return AerEngine(head_circuit, profile, gradient=gradient)
