"""The QPU curve of ``qsetfit energy``: energy per 1,000 inferences of module 2 on a QPU, by width.

Power x (shots x (circuit duration + repetition delay) + per-circuit overhead), the duration either declared in
the profile (``qpu_circuit_duration_s``) or from the ISA circuit scheduled with the backend target's gate
durations (``engines.ibm.cost.dry_run_report``); widths that are not transpiled are scaled by logical depth.
"""

from __future__ import annotations

import logging
from typing import Any
from collections.abc import Sequence

from qsetfit import profiles
from qsetfit.bench import energy_measure as measure
from qsetfit.bench.energy_model import (
    DEFAULT_QPU_POWER_W,
    QPU_LAW,
    QPU_POWER_SOURCE,
    Constant,
    Point,
    joules_per_1000,
    qpu_seconds_per_inference,
)
from qsetfit.head.circuits import HeadConfig
from qsetfit.errors import QSetFitError

logger = logging.getLogger(__name__)

NO_TIMING = (
    "backend profile {name!r} has no timing data ({why}); use a profile with an IBM or fake backend "
    "(e.g. --backend fake-torino), or set qpu_circuit_duration_s (seconds per circuit at the head's "
    "width) in the profile"
)


def _timing_backend(profile: profiles.BackendProfile) -> tuple[profiles.BackendProfile, Any, str]:
    """(profile to transpile with, Runtime service or None, description): a real device's live target with
    credentials, else the matching fake backend's snapshot; one clear error when neither is there."""
    from qsetfit.engines.ibm.settings import is_fake

    if is_fake(profile.backend):
        return profile, None, f"{profile.backend} (fake backend snapshot of the device target)"
    try:
        from qsetfit.engines.ibm.credentials import runtime_service

        service = runtime_service(instance=profile.instance or None, channel=profile.channel or None)
        service.backend(profile.backend)
        return profile, service, f"{profile.backend} (live target via IBM Runtime)"
    except Exception as exc:  # noqa: BLE001 - no credentials, offline, unknown device: try the snapshot
        why = str(exc).split("\n")[0].split(". ")[0][:120]
    fake = "fake_" + profile.backend.removeprefix("ibm_")
    try:
        from qsetfit.engines.aer.noise import fake_backend

        fake_backend(fake)
    except QSetFitError:
        raise QSetFitError(
            NO_TIMING.format(
                name=profile.name,
                why=f"{profile.backend} unreachable: {why}; no snapshot {fake!r} in qiskit-ibm-runtime",
            )
        ) from None
    logger.warning("%s unreachable (%s); timing from the %s snapshot", profile.backend, why, fake)
    return profile.replace(backend=fake), None, f"{fake} snapshot, offline stand-in for {profile.backend} ({why})"


def _transpiled_timings(
    config: HeadConfig, profile: profiles.BackendProfile, widths: Sequence[int]
) -> tuple[list[dict[str, Any]], str]:
    """Per width: ISA duration, shots, repetition delay from ``dry_run_report``, while the circuit fits."""
    from qsetfit.engines.ibm.cost import dry_run_report

    timing_profile, service, where = _timing_backend(profile)
    rows: list[dict[str, Any]] = []
    for q in widths:
        try:
            report = dry_run_report(measure.family_circuit(config, q), timing_profile, service=service)
        except QSetFitError:
            if q == config.qubits:
                raise
            break  # wider than the device: the remaining widths are extrapolated
        if report["circuit_duration_s"] <= 0:
            raise QSetFitError(
                NO_TIMING.format(name=profile.name, why=f"{timing_profile.backend}'s target has no gate durations")
            )
        rows.append(
            {
                "qubits": q,
                "method": "transpiled",
                "circuit_duration_s": report["circuit_duration_s"],
                "shots": report["shots_per_input"],
                "isa_depth": report["isa_depth"],
                "two_qubit_gates": report["two_qubit_gates"],
                "success_probability": report["success_probability"],
                "rep_delay_s": report["rep_delay_s"],
            }
        )
    return rows, where


def _depth_scaled(
    config: HeadConfig, rows: list[dict[str, Any]], widths: Sequence[int], method: str
) -> list[dict[str, Any]]:
    """``rows`` plus the missing widths, their duration scaled from the widest row by logical circuit depth."""
    anchor = rows[-1]
    depth0 = measure.family_circuit(config, anchor["qubits"]).circuit.depth()
    done = {r["qubits"] for r in rows}
    for q in widths:
        if q not in done:
            ratio = measure.family_circuit(config, q).circuit.depth() / depth0
            rows.append(
                {
                    **anchor,
                    "qubits": q,
                    "method": method,
                    "isa_depth": None,
                    "two_qubit_gates": None,
                    "success_probability": None,
                    "circuit_duration_s": anchor["circuit_duration_s"] * ratio,
                }
            )
    return sorted(rows, key=lambda r: r["qubits"])


def _timings(
    config: HeadConfig, profile: profiles.BackendProfile, widths: Sequence[int], shots: int, where: str
) -> tuple[list[dict[str, Any]], str, str]:
    """(a timing row per width, source of the circuit duration, source of the repetition delay)."""
    from qsetfit.engines.ibm.cost import DEFAULT_REP_DELAY_S

    if profile.qpu_circuit_duration_s > 0:
        first = {
            "qubits": config.qubits,
            "method": "declared",
            "circuit_duration_s": profile.qpu_circuit_duration_s,
            "shots": shots,
            "rep_delay_s": DEFAULT_REP_DELAY_S,
            "isa_depth": None,
            "two_qubit_gates": None,
            "success_probability": None,
        }
        rows, duration_source = _depth_scaled(config, [first], widths, "scaled"), f"{where}: qpu_circuit_duration_s"
        rep_source = "qsetfit.engines.ibm.cost.DEFAULT_REP_DELAY_S (IBM's usual default_rep_delay)"
    elif profile.engine == "ibm":
        rows, backend_where = _transpiled_timings(config, profile, widths)
        rows = _depth_scaled(config, rows, widths, "extrapolated")
        duration_source = (
            f"ASAP schedule of the ISA circuit (optimization level {profile.optimization_level}, "
            f"seed {profile.seed_transpiler}) with the gate and measure durations of "
            f"{backend_where} (engines.ibm.cost.dry_run_report)"
        )
        rep_source = f"default_rep_delay of {backend_where} (250 us when it reports none)"
    else:
        raise QSetFitError(NO_TIMING.format(name=profile.name, why=f"engine = {profile.engine!r} simulates"))
    if profile.qpu_rep_delay_s > 0:
        rows = [{**r, "rep_delay_s": profile.qpu_rep_delay_s} for r in rows]
        rep_source = f"{where}: qpu_rep_delay_s"
    return rows, duration_source, rep_source


def _point(row: dict[str, Any], power: float, overhead: float) -> Point:
    """The QPU point of one timing row at ``power`` watts with ``overhead`` seconds per circuit."""
    seconds = qpu_seconds_per_inference(row["shots"], row["circuit_duration_s"], row["rep_delay_s"], overhead)
    return Point(
        "qpu",
        row["qubits"],
        joules_per_1000(power, seconds),
        seconds,
        row["method"],
        f"{power / 1000:g} kW x QPU time",
        shots=row["shots"],
        circuit_duration_s=row["circuit_duration_s"],
        rep_delay_s=row["rep_delay_s"],
        isa_depth=row["isa_depth"],
        two_qubit_gates=row["two_qubit_gates"],
        success_probability=row["success_probability"],
    )


def qpu_points(
    config: HeadConfig, profile: profiles.BackendProfile, widths: Sequence[int]
) -> tuple[list[Point], list[Constant]]:
    """The QPU curve over ``widths`` and its constants, from the profile's backend (or declared timing)."""
    from qsetfit.engines.ibm.settings import RuntimeSettings

    shots = RuntimeSettings.from_profile(profile, {}).shots_per_row
    where = f"profile {profile.name} ({profile.source or 'built in'})"
    rows, duration_source, rep_source = _timings(config, profile, widths, shots, where)
    power, power_source = (
        (profile.qpu_power_w, f"{where}: qpu_power_w")
        if profile.qpu_power_w > 0
        else (DEFAULT_QPU_POWER_W, QPU_POWER_SOURCE)
    )
    overhead = profile.qpu_overhead_s
    head = rows[0]
    constants = [
        Constant("qpu_power_w", power, "W", power_source),
        Constant(
            "shots",
            shots,
            "shots per inference",
            f"{where}: shots"
            if profile.shots
            else f"{where}: 1/precision^2"
            if profile.precision
            else "Runtime default 4096 (profile shots = 0)",
        ),
        Constant("rep_delay_s", head["rep_delay_s"], "s between shots", rep_source),
        Constant(
            "qpu_overhead_s",
            overhead,
            "s per circuit",
            f"{where}: qpu_overhead_s"
            if overhead
            else "none assumed (job queueing, compilation and loading are not counted)",
        ),
        Constant("circuit_duration_s", head["circuit_duration_s"], f"s at {head['qubits']} qubits", duration_source),
        Constant(
            "qpu_model",
            QPU_LAW,
            "",
            "widths not transpiled (wider than the device, or a declared "
            "duration): duration x logical depth ratio, marked",
        ),
    ]
    return [_point(r, power, overhead) for r in rows], constants
