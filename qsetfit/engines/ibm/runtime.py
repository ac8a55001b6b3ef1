"""The ``ibm`` engine: module 2 through qiskit-ibm-runtime's ``EstimatorV2`` (inference only).

``make_engine(head_circuit, "fake-torino")`` resolves a backend profile with ``engine = "ibm"`` and builds an
``IBMRuntimeEngine``. What runs:

- backend: a fake backend name (``fake_torino``...) is Runtime's *local testing mode*: the Runtime
  ``EstimatorV2`` code path with an Aer backend as the ``mode``. By default (``local="compact"``) that backend
  is an ``AerSimulator`` carrying the fake device's noise restricted to the physical qubits the ISA circuit
  uses (the same noise source as the ``aer-device`` profile); a full 133-qubit fake backend costs ~10-30 s per
  job on Aer, so ``local="device"`` passes the fake backend instance itself. Any other name is a real device
  reached through ``QiskitRuntimeService`` (``qsetfit.engines.ibm.credentials``).
- ISA: the head is transpiled once per engine with ``generate_preset_pass_manager`` (the profile's
  optimization level, 3 by default: level 3 scores layouts by the target's error rates, VF2PostLayout) and
  cached; observables are laid out with ``apply_layout``; the chosen device qubits are in ``physical_qubits``
  and the log (QISKIT-PITFALLS 10).
- PUBs: one PUB per call (split only above ``max_pub_rows`` rows), parameter values shaped (B, 1, P) against
  observables shaped (1, O), so every read-out shares the same shots (QISKIT-PITFALLS 12).
- mode: "batch" (default; the Open Plan has no sessions), "session" or "job" from the profile
  (QISKIT-PITFALLS 11). Shots (``profile.shots``; 0 = Runtime's default precision) or ``precision``,
  resilience level, twirling and dynamical decoupling are passed through on real devices; local testing
  mode ignores resilience/twirling/DD (QISKIT-PITFALLS 9), so they are left out there and logged.
- torch: forward only, float64, through the engine base's adapter; ``capabilities.gradients`` is False, so a
  backward pass refuses (train on ``torch`` or ``aer``, then run here).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any
from collections.abc import Callable, Iterator

import numpy as np

from qsetfit import profiles
from qsetfit.head.circuits import HeadCircuit
from qsetfit.engines.ibm.ledger import Ledger, results_to_array
from qsetfit.engines.ibm.cost import two_qubit_count
from qsetfit.engines.ibm.settings import LOCAL_KINDS, RuntimeSettings, is_fake
from qsetfit.engines.aer.methods import simulation_method
from qsetfit.engines.base import Capabilities, Engine, EngineInfo
from qsetfit.errors import QSetFitError

logger = logging.getLogger(__name__)


def _checked_options(profile: profiles.BackendProfile, local: str | None, extra: dict[str, Any]) -> str:
    """The local testing kind to use, after one clear error for an option the engine cannot take."""
    if profile.engine != "ibm":
        raise QSetFitError(f"profile {profile.name!r} has engine = {profile.engine!r}, not 'ibm'")
    local = profile.local if local is None else local
    if local not in LOCAL_KINDS:
        raise QSetFitError(f"local must be one of {', '.join(LOCAL_KINDS)}, got {local!r}")
    if local != "compact" and not is_fake(profile.backend):
        raise QSetFitError(
            f"local = {local!r} is for local testing mode on a fake backend (e.g. 'fake_torino'); "
            f"{profile.backend!r} is a real device: remove it"
        )
    unknown = set(extra) - set(RuntimeSettings.__dataclass_fields__)
    if unknown:
        raise QSetFitError(
            f"unknown ibm engine option(s) {', '.join(sorted(unknown))}; valid: local, noise, "
            f"service, ledger, retries, {', '.join(RuntimeSettings.__dataclass_fields__)}"
        )
    return local


class IBMRuntimeEngine(Engine):
    """Module 2 on IBM Runtime (a QPU, or local testing mode on a fake backend), from a backend profile.

    Args:
        head_circuit: the circuit, its input/weight order and observables.
        profile: a backend profile with ``engine = "ibm"``.
        local: local testing mode only (default: the profile's ``local``, "compact" unless set): "compact"
            (Aer with the device noise on the used qubits), "narrow"
            (compact, routed within as many device qubits as the head has: much cheaper to simulate when the
            device transpile borrows extra qubits, but with more SWAPs than the device would run;
            ``noise.device_isa_circuit(narrow=True)``) or "device" (the fake backend instance itself; slow on
            100+ qubit devices).
        noise: local testing mode only: False simulates the same ISA circuit without noise.
        service: a ``QiskitRuntimeService`` (real devices); default: from ``qsetfit.engines.ibm.credentials``.
        ledger: optional ``qsetfit.engines.ibm.ledger.Ledger`` or run directory: every job is recorded, results stored,
            and a job already run for the same inputs and weights is reused.
        retries: resubmissions of a failed job before giving up (bounded).
        **extra: ``RuntimeSettings`` fields the profile does not carry (precision, twirling, ...).

    Attributes:
        backend: the Runtime backend (real or fake) the circuit was transpiled for.
        isa_circuit: the cached ISA circuit (compacted to ``physical_qubits`` in "compact" local mode).
        isa_observables: the observables laid out on ``isa_circuit``.
        physical_qubits: the device qubit of each logical head qubit (the layout), in head-qubit order.
        calls, pubs_submitted, jobs: Runtime jobs and PUBs so far; ``jobs`` keeps the job ids.
    """

    capabilities = Capabilities(initial_state=False, gradients=False, noise=True)

    def __init__(
        self,
        head_circuit: HeadCircuit,
        profile: profiles.BackendProfile,
        *,
        local: str | None = None,
        noise: bool = True,
        service: Any = None,
        ledger: Any = None,
        retries: int = 2,
        **extra: Any,
    ) -> None:
        super().__init__(
            num_inputs=len(head_circuit.inputs),
            num_weights=len(head_circuit.weights),
            num_outputs=len(head_circuit.observables),
        )
        local = _checked_options(profile, local, extra)
        self.profile = profile
        self.settings = RuntimeSettings.from_profile(profile, extra)
        self.local = is_fake(profile.backend)
        self.local_kind = local if self.local else ""
        if isinstance(ledger, (str, os.PathLike)):
            ledger = Ledger(ledger)
        self.ledger = ledger
        self.retries = retries
        self.service: Any = None
        self.head_circuit = head_circuit
        self.jobs: list[str] = []
        self._rng = np.random.default_rng(profile.seed)
        self._mode_context: Any = None

        self.backend = self._resolve_backend(service)
        width = int(self.backend.num_qubits)
        if head_circuit.num_qubits > width:
            raise QSetFitError(
                f"the head needs {head_circuit.num_qubits} qubits but backend {profile.backend!r} has only {width}; "
                "use a narrower head (HeadConfig qubits) or a larger backend"
            )
        self._transpile(noise)
        logger.info(
            "ibm engine %r: backend %s (%s), mode %s, head qubits -> device qubits %s, ISA depth %d, "
            "%d two-qubit gates",
            profile.name,
            profile.backend,
            f"local testing mode, {self.local_kind}" if self.local else "QPU",
            profile.mode,
            self.physical_qubits,
            self.isa_circuit.depth(),
            two_qubit_count(self.isa_circuit),
        )

    # ---- set-up ---------------------------------------------------------------------------------------
    def _resolve_backend(self, service: Any) -> Any:
        if self.local:
            from qsetfit.engines.aer.noise import fake_backend

            self.service = service
            return fake_backend(self.profile.backend)
        from qsetfit.engines.ibm.credentials import connection_error, runtime_service

        if service is None:
            service = runtime_service(instance=self.settings.instance or None, channel=self.settings.channel or None)
        self.service = service
        try:
            return service.backend(self.profile.backend)
        except Exception as exc:  # QiskitBackendNotFoundError, or the network / a refused key, said as such
            known = connection_error(exc, source="account")
            raise QSetFitError(
                known or f"IBM backend {self.profile.backend!r} is not available to this account: {exc}"
            ) from None

    def _transpile(self, noise: bool) -> None:
        from qiskit.transpiler import generate_preset_pass_manager

        hc, level, seed = self.head_circuit, self.profile.optimization_level, self.profile.seed_transpiler
        if self.local and (self.local_kind != "device" or not noise):  # noiseless: compact, never 133 qubits
            from qiskit_aer import AerSimulator

            from qsetfit.engines.aer import noise as noise_mod

            _stage(self._transpiling_message(level))
            isa, observables, used = noise_mod.device_isa_circuit(
                hc.circuit,
                hc.observables,
                self.profile.backend,
                optimization_level=level,
                seed_transpiler=seed,
                narrow=self.local_kind == "narrow",
            )
            self.used_qubits = used
            self.physical_qubits = list(isa.metadata["device_layout"])  # the same transpile's layout: no second one
            model = None
            if noise:
                _stage(f"building {self.profile.backend}'s noise model for device qubits {used}")
                device = profiles.NoiseProfile(name=self.profile.backend, kind="device", backend=self.profile.backend)
                model = noise_mod.build_noise_model(device, used)
            method = simulation_method(isa.num_qubits, self.settings.shots_per_row, noisy=model is not None)
            self.mode_backend = AerSimulator(method=method, noise_model=model)
        else:
            _stage(self._transpiling_message(level))
            pm = generate_preset_pass_manager(optimization_level=level, backend=self.backend, seed_transpiler=seed)
            isa = pm.run(hc.circuit)
            observables = [o.apply_layout(isa.layout) for o in hc.observables]
            self.physical_qubits = list(isa.layout.final_index_layout())
            self.used_qubits = sorted({isa.find_bit(q).index for inst in isa.data for q in inst.qubits})
            self.mode_backend = self.backend
        self.isa_circuit, self.isa_observables = isa, observables
        position = {p: i for i, p in enumerate([*hc.inputs, *hc.weights])}
        self._columns = np.array([position[p] for p in isa.parameters], dtype=np.int64)

    def _mode(self) -> Any:
        """The Runtime ``mode``: the backend (job mode) or an open Batch/Session, created once."""
        if self.profile.mode == "job":
            return self.mode_backend
        if self._mode_context is None:
            from qiskit_ibm_runtime import Batch, Session

            cls = Batch if self.profile.mode == "batch" else Session
            self._mode_context = cls(backend=self.mode_backend)
        return self._mode_context

    def close(self) -> None:
        """Close the Batch or Session (lets queued jobs finish; no new ones are accepted)."""
        if self._mode_context is not None:
            try:
                self._mode_context.close()
            finally:
                self._mode_context = None

    def estimator(self) -> Any:
        """A Runtime ``EstimatorV2`` on the engine's mode with the profile's options."""
        import warnings

        from qiskit_ibm_runtime import EstimatorV2

        with warnings.catch_warnings():  # deprecated in 0.50 (QISKIT-PITFALLS 9); still the working local path
            warnings.simplefilter("ignore", DeprecationWarning)
            est = EstimatorV2(mode=self._mode(), options=self.settings.options(local=self.local))
        if self.local:
            est.options.simulator.seed_simulator = int(self._rng.integers(1, 2**31 - 1))
        return est

    # ---- running --------------------------------------------------------------------------------------
    def pubs(self, x: np.ndarray, w: np.ndarray) -> list[tuple[Any, list[Any], np.ndarray]]:
        """The PUBs for inputs (B, n_in) and weights (n_w,): (ISA circuit, [observables] (1, O), values (R, 1, P))."""
        rows = np.concatenate([x, np.broadcast_to(w, (x.shape[0], w.shape[0]))], axis=1)[:, self._columns]
        step = self.profile.max_pub_rows
        return [
            (self.isa_circuit, [list(self.isa_observables)], rows[i : i + step, None, :])
            for i in range(0, rows.shape[0], step)
        ]

    def submit(self, x: np.ndarray, w: np.ndarray) -> Any:
        """Submit one job for a batch of inputs; returns the Runtime job (also recorded in ``jobs``/ledger)."""
        pubs = self.pubs(x, w)
        job = self.estimator().run(pubs)
        self.counters.count_job(len(pubs))
        self.jobs.append(job.job_id())
        if self.ledger is not None:
            self.ledger.record(
                job_id=job.job_id(),
                backend=self.profile.backend,
                mode=self.profile.mode,
                local=self.local,
                pub_shapes=[list(p[2].shape) for p in pubs],
                observables=len(self.isa_observables),
                inputs=x,
                weights=w,
                **self._ledger_key(),
            )
        return job

    def _expectation_values(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """(B, O) float64 expectation values from one Runtime job.

        With a ledger, a job already submitted for the same backend, inputs and weights is reused (its stored
        result, or ``service.job(id)`` for a QPU job) instead of resubmitted; a failed job is resubmitted at
        most ``retries`` times, and every failure is recorded.
        """
        if self.ledger is not None:
            prior = self.ledger.lookup(self.profile.backend, x, w, **self._ledger_key())
            if prior is not None:
                stored = self.ledger.result(prior["job_id"])
                if stored is not None:
                    logger.info("reusing the stored result of job %s", prior["job_id"])
                    return stored
                if not prior.get("local") and self.service is not None:
                    try:
                        return self.ledger.fetch(prior["job_id"], self.service)
                    except QSetFitError as exc:
                        logger.warning("%s; resubmitting", exc)
        failures: list[str] = []
        while True:
            _stage(self._running_message(x.shape[0]))
            job = self.submit(x, w)
            try:
                values = results_to_array(job.result())
            except Exception as exc:  # a failed or cancelled job
                failures.append(f"{job.job_id()}: {type(exc).__name__}: {exc}")
                if self.ledger is not None:
                    self.ledger.mark(job.job_id(), "failed", error=failures[-1][:500])
                if len(failures) > self.retries:
                    raise QSetFitError(
                        f"{len(failures)} Runtime job(s) failed on {self.profile.backend}; last: " + failures[-1]
                    ) from None
                logger.warning("job %s failed (%s); retry %d of %d", job.job_id(), exc, len(failures), self.retries)
                continue
            if self.ledger is not None:
                self.ledger.store_result(job.job_id(), values)
            return values

    def _ledger_key(self) -> dict[str, str]:
        """Ledger fields a reused job must share beyond backend and inputs: local modes run different circuits."""
        return {"local_kind": self.local_kind} if self.local else {}

    def _transpiling_message(self, level: int) -> str:
        return f"transpiling the {self.head_circuit.num_qubits}-qubit head for {self.profile.backend} (level {level})"

    def _running_message(self, rows: int) -> str:
        """What a job is about to do, for the progress line."""
        where = (
            f"Runtime local testing mode, Aer {self.mode_backend.options.method} on {self.isa_circuit.num_qubits} "
            "qubits"
            if self.local_kind in ("compact", "narrow")
            else f"{self.profile.backend}"
        )
        return (
            f"running {rows} input(s) x {self.settings.shots_per_row} shots, {two_qubit_count(self.isa_circuit)} "
            f"two-qubit gates ({where})"
        )

    def describe(self) -> EngineInfo:
        """A QPU (or its local testing mode): shots per input, the layout's physical qubits."""
        physical = tuple(self.physical_qubits) if self.physical_qubits else None
        return EngineInfo("ibm", "qpu", 0, self.settings.shots_per_row, physical)

    def extra_repr(self) -> str:
        return (
            f"profile={self.profile.name!r}, backend={self.profile.backend!r}, mode={self.profile.mode!r}, "
            f"physical_qubits={self.physical_qubits}"
        )


_listeners: list[Callable[[str], None]] = []


@contextlib.contextmanager
def progress(callback: Callable[[str], None]) -> Iterator[None]:
    """Send the ibm engine's stages (transpiling, noise model, each job) to ``callback`` while inside.

    The CLI passes a rich status line's ``update`` (stderr, not with ``--json``); every stage is also logged.
    """
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)


def _stage(message: str) -> None:
    logger.info("%s", message)
    for callback in list(_listeners):
        callback(message)


def engine_from_profile(
    head_circuit: HeadCircuit, profile: profiles.BackendProfile, **options: Any
) -> IBMRuntimeEngine:
    """Builder for ``engine = "ibm"`` profiles: engine options (local, noise, service, ledger, retries, precision,
    twirling, dynamical_decoupling, instance, channel) go to the engine, other options override profile fields."""
    engine_keys = {"local", "noise", "service", "ledger", "retries", *RuntimeSettings.__dataclass_fields__}
    profile_fields = profile.keys()  # the profile's field names (a classmethod: a profile is no dict)
    engine_opts = {k: options.pop(k) for k in list(options) if k in engine_keys and k not in profile_fields}
    if options:
        profile = profile.replace(**options)
    return IBMRuntimeEngine(head_circuit, profile, **engine_opts)
