"""What a run on an IBM backend would cost, before submitting anything: layout, depth, success probability from
the target's error rates, circuit duration from its gate durations, shots and QPU seconds (``predict --dry-run``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from qsetfit import profiles
from qsetfit.engines.ibm.settings import RuntimeSettings, is_fake
from qsetfit.errors import QSetFitError
from qsetfit.head.circuits import HeadCircuit, HeadConfig, build_head_circuit
from qsetfit.io.persistence import CONFIG, read_json

DEFAULT_REP_DELAY_S = 250e-6


def two_qubit_count(circuit: Any) -> int:
    """Two-qubit gates in a circuit (barriers excluded)."""
    return sum(1 for inst in circuit.data if inst.operation.num_qubits == 2 and inst.operation.name != "barrier")


def target_property(target: Any, name: str, qargs: tuple[int, ...], field: str) -> float:
    """``error`` or ``duration`` of instruction ``name`` on ``qargs`` in the backend target; 0 where unknown."""
    try:
        props = target[name][qargs]
    except KeyError:
        return 0.0
    return float(getattr(props, field) or 0.0) if props is not None else 0.0


def dry_run_report(
    head_circuit: HeadCircuit, profile: profiles.BackendProfile, *, n_inputs: int = 1, service: Any = None, **extra: Any
) -> dict[str, Any]:
    """What running ``n_inputs`` inputs on ``profile`` would cost; transpiles, submits nothing.

    Returns a dict: backend, mode, qubits (head), physical_qubits (layout), isa_depth, two_qubit_gates,
    success_probability (product of (1 - error) over every ISA gate and the read-out of each measured qubit,
    from the backend target), circuit_duration_s (ASAP schedule with the target's durations), shots_per_input,
    total_shots, pubs, rep_delay_s (the backend's default_rep_delay), qpu_seconds (total_shots x (circuit
    duration + repetition delay)).
    """
    from qiskit.transpiler import generate_preset_pass_manager

    if profile.engine != "ibm":
        raise QSetFitError(f"a dry run needs an ibm backend profile; {profile.name!r} has engine = {profile.engine!r}")
    settings = RuntimeSettings.from_profile(profile, extra)
    if is_fake(profile.backend):
        from qsetfit.engines.aer.noise import fake_backend

        backend = fake_backend(profile.backend)
    else:
        if service is None:
            from qsetfit.engines.ibm.credentials import runtime_service

            service = runtime_service(instance=settings.instance or None, channel=settings.channel or None)
        backend = service.backend(profile.backend)
    if head_circuit.num_qubits > backend.num_qubits:
        raise QSetFitError(
            f"the head needs {head_circuit.num_qubits} qubits but backend {profile.backend!r} "
            f"has only {backend.num_qubits}; use a narrower head or a larger backend"
        )
    pm = generate_preset_pass_manager(
        optimization_level=profile.optimization_level, backend=backend, seed_transpiler=profile.seed_transpiler
    )
    isa = pm.run(head_circuit.circuit)
    observables = [o.apply_layout(isa.layout) for o in head_circuit.observables]
    measured = sorted({q for o in observables for p in o.paulis for q in np.flatnonzero(p.z | p.x).tolist()})
    log_success, duration = _schedule(isa, backend.target, measured)
    shots = settings.shots_per_row
    rep_delay = float(getattr(backend, "default_rep_delay", None) or DEFAULT_REP_DELAY_S)
    total = n_inputs * shots
    return {
        "backend": profile.backend,
        "mode": profile.mode,
        "local_testing": is_fake(profile.backend),
        "qubits": head_circuit.num_qubits,
        "physical_qubits": list(isa.layout.final_index_layout()),
        "isa_depth": isa.depth(),
        "two_qubit_gates": two_qubit_count(isa),
        "success_probability": math.exp(log_success),
        "circuit_duration_s": duration,
        "shots_per_input": shots,
        "inputs": n_inputs,
        "total_shots": total,
        "pubs": math.ceil(n_inputs / profile.max_pub_rows),
        "rep_delay_s": rep_delay,
        "qpu_seconds": total * (duration + rep_delay),
    }


def _schedule(isa: Any, target: Any, measured: list[int]) -> tuple[float, float]:
    """(log success probability, duration in s) of an ISA circuit: ASAP schedule with the target's durations,
    every gate's and each measured qubit's read-out error."""
    log_success, clock = 0.0, [0.0] * isa.num_qubits
    for inst in isa.data:
        name = inst.operation.name
        if name in ("barrier", "delay"):
            continue
        qargs = tuple(isa.find_bit(q).index for q in inst.qubits)
        log_success += math.log1p(-min(target_property(target, name, qargs, "error"), 1.0 - 1e-12))
        start = max(clock[q] for q in qargs)
        for q in qargs:
            clock[q] = start + target_property(target, name, qargs, "duration")
    readout = 0.0
    for q in measured:
        log_success += math.log1p(-min(target_property(target, "measure", (q,), "error"), 1.0 - 1e-12))
        readout = max(readout, target_property(target, "measure", (q,), "duration"))
    return log_success, max(clock) + readout


def format_dry_run(report: dict[str, Any]) -> str:
    """The dry-run report as the lines ``predict --dry-run`` prints."""
    return "\n".join(
        [
            f"dry run on {report['backend']} ({report['mode']} mode"
            f"{', local testing' if report['local_testing'] else ''}): nothing submitted",
            f"  head qubits {report['qubits']} -> physical qubits {report['physical_qubits']}",
            f"  ISA depth {report['isa_depth']}, two-qubit gates {report['two_qubit_gates']}, "
            f"circuit duration {report['circuit_duration_s'] * 1e6:.1f} us",
            f"  estimated success probability {report['success_probability']:.3f} (target gate and read-out errors)",
            f"  {report['inputs']} input(s) x {report['shots_per_input']} shots = {report['total_shots']} shots "
            f"in {report['pubs']} PUB(s); estimated QPU time {report['qpu_seconds']:.1f} s",
        ]
    )


def dry_run(run_dir: Any, backend: str, *, n_inputs: int = 1, service: Any = None) -> dict[str, Any]:
    """``dry_run_report`` for the module-2 circuit of a saved run (``config.json``) on a backend profile."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise QSetFitError(f"{run_dir} is not a run directory (no {CONFIG})")
    config = HeadConfig.from_dict(read_json(path)["head"])
    return dry_run_report(
        build_head_circuit(config), profiles.load_backend_profile(backend), n_inputs=n_inputs, service=service
    )
