"""``qsetfit energy``: energy per 1,000 inferences of module 2, classical statevector against a QPU, by width.

Module 1 (the encoders) and the final linear layer run classically in both set-ups, so only module 2 is
compared. Every number comes with its source:

- classical: measured (``qsetfit.bench.energy_measure``) from the head's width up to the widths that fit the
  memory and time budgets; energy from a hardware counter where one exists, else power x time with the power
  stated; beyond, extrapolated from the last measured width as E(Q0) x 2^(Q-Q0) x gates(Q)/gates(Q0);
- QPU: power x (shots x (circuit duration + repetition delay) + per-circuit overhead), the duration from the
  ISA circuit scheduled with the backend target's gate durations (``engines.ibm.cost.dry_run_report``), wider
  circuits transpiled while they fit the device, else scaled by logical depth and marked;
- the break-even width: where the two curves cross (log-linear between widths), if they do.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

import torch

from qsetfit.bench import energy_measure as measure
from qsetfit.bench.plots import energy_plot
from qsetfit import profiles
from qsetfit.io import persistence
from qsetfit.head.circuits import HeadConfig
from qsetfit.errors import QSetFitError

logger = logging.getLogger(__name__)

# ~25 kW: the dilution refrigerator's compressor and the control electronics (the chip: microwatts). D-Wave 2X
# "slightly less than 25 kilowatts" (IEEE Spectrum 2015); Google Sycamore ~26 kW (Villalonga et al., Quantum Sci.
# Technol. 5, 034003, 2020). No IBM per-system figure could be checked offline: set qpu_power_w in the profile.
DEFAULT_QPU_POWER_W = 25_000.0
QPU_POWER_SOURCE = ("default: superconducting QPU system incl. dilution refrigerator and control electronics, "
                    "~25 kW (D-Wave 2X <25 kW, IEEE Spectrum 2015; Google Sycamore ~26 kW, Villalonga et al. "
                    "2020); set qpu_power_w in the profile")
DEFAULT_CPU_CORE_POWER_W = 5.0
CPU_POWER_SOURCE = ("assumed: server CPU TDP / cores (AMD EPYC 7763 280 W / 64 = 4.4 W; Intel Xeon Platinum "
                    "8380 270 W / 40 = 6.8 W); --cpu-core-power-w")
DEFAULT_GPU_POWER_W = 700.0
GPU_POWER_SOURCE = "assumed: NVIDIA H100 SXM board power limit, 700 W (datasheet); an upper bound; --gpu-power-w"
CLASSICAL_LAW = "E(Q) = E(Q0) x 2^(Q-Q0) x gates(Q) / gates(Q0), Q0 = widest measured width"
QPU_LAW = "E per 1,000 = 1000 x P x (shots x (T_circuit + T_rep_delay) + T_overhead)"
NO_TIMING = ("backend profile {name!r} has no timing data ({why}); use a profile with an IBM or fake backend "
             "(e.g. --backend fake-torino), or set qpu_circuit_duration_s (seconds per circuit at the head's "
             "width) in the profile")


@dataclass(frozen=True)
class Constant:
    """A number the model uses: its value, unit, and where it comes from."""

    name: str
    value: Any
    unit: str
    source: str


@dataclass(frozen=True)
class Point:
    """Energy per 1,000 inferences of one curve ("cpu", "cuda" or "qpu") at one width, and how it was had.

    ``method`` is "measured", "transpiled" (ISA duration from the target), "scaled" (a declared duration scaled
    by depth) or "extrapolated"; ``source`` names the energy source. Optional fields apply to one side only.
    """

    curve: str
    qubits: int
    joules_per_1000: float
    seconds_per_inference: float
    method: str
    source: str
    samples: int | None = None
    cpu_seconds_per_inference: float | None = None
    statevector_bytes: int | None = None
    shots: int | None = None
    circuit_duration_s: float | None = None
    rep_delay_s: float | None = None
    isa_depth: int | None = None
    two_qubit_gates: int | None = None
    success_probability: float | None = None


# ---- arithmetic ----------------------------------------------------------------------------------------
def joules_per_1000(power_w: float, seconds_per_inference: float) -> float:
    """Energy of 1,000 inferences at ``power_w`` watts for ``seconds_per_inference`` each."""
    return 1000.0 * power_w * seconds_per_inference


def qpu_seconds_per_inference(shots: int, circuit_duration_s: float, rep_delay_s: float,
                              overhead_s: float = 0.0) -> float:
    """QPU seconds one input holds the device: shots x (circuit + repetition delay) + per-circuit overhead."""
    return shots * (circuit_duration_s + rep_delay_s) + overhead_s


def scale_statevector(value: float, q0: int, q: int, gates0: int, gates: int) -> float:
    """A statevector cost measured at ``q0`` carried to ``q``: x 2^(q-q0) amplitudes x gates/gates0 gates."""
    return value * 2.0 ** (q - q0) * gates / gates0


def growth_per_qubit(qubits: Sequence[int], values: Sequence[float]) -> float | None:
    """Factor per added qubit of a least-squares fit of log2(values) against qubits (None under 2 points)."""
    if len(qubits) < 2:
        return None
    mq = sum(qubits) / len(qubits)
    logs = [math.log2(v) for v in values]
    ml = sum(logs) / len(logs)
    slope = sum((q - mq) * (v - ml) for q, v in zip(qubits, logs, strict=False)) / sum((q - mq) ** 2 for q in qubits)
    return 2.0**slope


def break_even(qubits: Sequence[int], classical: Sequence[float], quantum: Sequence[float]) -> float | None:
    """First width where the classical energy reaches the quantum one (log-linear between widths); None if never."""
    gaps = [math.log(c) - math.log(q) for c, q in zip(classical, quantum, strict=False)]
    if gaps and gaps[0] >= 0:
        return float(qubits[0])
    for i in range(1, len(gaps)):
        if gaps[i - 1] < 0 <= gaps[i]:
            return qubits[i - 1] + (qubits[i] - qubits[i - 1]) * -gaps[i - 1] / (gaps[i] - gaps[i - 1])
    return None


# ---- the classical curve -------------------------------------------------------------------------------
def classical_points(config: HeadConfig, readings: Sequence[measure.Reading], widths: Sequence[int], *,
                     power_w: float) -> list[Point]:
    """Measured points from ``readings``, then the other ``widths`` extrapolated from the widest reading.

    A reading without counter joules costs ``power_w`` x process CPU time on "cpu" and x wall time on "cuda".
    """
    if not readings:
        raise QSetFitError(f"no width could be measured (the head's {config.qubits} qubits exceed the memory or "
                           "time budget); raise --time-budget or lower --samples")
    points = []
    for r in readings:
        wall, cpu = r.wall_s / r.inferences, r.cpu_s / r.inferences
        if r.joules is not None:
            energy, source = 1000.0 * r.joules / r.inferences, r.counter
        else:
            energy = joules_per_1000(power_w, cpu if r.device == "cpu" else wall)
            source = f"{'process CPU' if r.device == 'cpu' else 'wall'} time x {power_w:g} W"
        points.append(Point(r.device, r.qubits, energy, wall, "measured", source, samples=r.samples,
                            cpu_seconds_per_inference=cpu, statevector_bytes=r.state_bytes))
    anchor, last = readings[-1], points[-1]
    for q in sorted(set(widths) - {r.qubits for r in readings}):
        gates = measure.family_circuit(config, q).circuit.size()
        scale = scale_statevector(1.0, anchor.qubits, q, anchor.gates, gates)
        points.append(Point(anchor.device, q, last.joules_per_1000 * scale, last.seconds_per_inference * scale,
                            "extrapolated", f"from {anchor.qubits} qubits ({last.source})",
                            statevector_bytes=2**q * measure.BYTES_PER_AMPLITUDE))
    return sorted(points, key=lambda p: p.qubits)


def classical_constants(device: str, readings: Sequence[measure.Reading], power_w: float, power_source: str
                        ) -> list[Constant]:
    """The classical side's constants: energy source, power (without a counter), growth, extrapolation law."""
    first = readings[0]
    if first.joules is None:
        clock = "process CPU time" if device == "cpu" else "wall time"
        out = [Constant(f"{device}_energy", f"{clock} x power", "", first.counter),
               Constant(f"{device}_power_w", power_w, "W per busy core" if device == "cpu" else "W", power_source)]
    else:
        out = [Constant(f"{device}_energy", first.counter, "", "codecarbon; counts the whole CPU package or GPU")]
    growth = growth_per_qubit([r.qubits for r in readings], [r.wall_s / r.inferences for r in readings])
    if growth is not None:
        out.append(Constant(f"{device}_growth_per_qubit", round(growth, 3), "x time per added qubit",
                            f"least-squares fit over measured widths {first.qubits}-{readings[-1].qubits} "
                            "(the extrapolation assumes 2 x gate ratio)"))
    out.append(Constant(f"{device}_extrapolation", CLASSICAL_LAW, "", "statevector memory and work grow as 2^Q"))
    return out


# ---- the QPU curve -------------------------------------------------------------------------------------
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
        raise QSetFitError(NO_TIMING.format(name=profile.name, why=f"{profile.backend} unreachable: {why}; "
                                            f"no snapshot {fake!r} in qiskit-ibm-runtime")) from None
    logger.warning("%s unreachable (%s); timing from the %s snapshot", profile.backend, why, fake)
    return profile.replace(backend=fake), None, f"{fake} snapshot, offline stand-in for {profile.backend} ({why})"


def _transpiled_timings(config: HeadConfig, profile: profiles.BackendProfile, widths: Sequence[int]
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
            raise QSetFitError(NO_TIMING.format(name=profile.name, why=f"{timing_profile.backend}'s target "
                                                "has no gate durations"))
        rows.append({"qubits": q, "method": "transpiled", "circuit_duration_s": report["circuit_duration_s"],
                     "shots": report["shots_per_input"], "isa_depth": report["isa_depth"],
                     "two_qubit_gates": report["two_qubit_gates"],
                     "success_probability": report["success_probability"],
                     "rep_delay_s": report["rep_delay_s"]})
    return rows, where


def _depth_scaled(config: HeadConfig, rows: list[dict[str, Any]], widths: Sequence[int], method: str
                  ) -> list[dict[str, Any]]:
    """``rows`` plus the missing widths, their duration scaled from the widest row by logical circuit depth."""
    anchor = rows[-1]
    depth0 = measure.family_circuit(config, anchor["qubits"]).circuit.depth()
    done = {r["qubits"] for r in rows}
    for q in widths:
        if q not in done:
            ratio = measure.family_circuit(config, q).circuit.depth() / depth0
            rows.append({**anchor, "qubits": q, "method": method, "isa_depth": None, "two_qubit_gates": None,
                         "success_probability": None, "circuit_duration_s": anchor["circuit_duration_s"] * ratio})
    return sorted(rows, key=lambda r: r["qubits"])


def qpu_points(config: HeadConfig, profile: profiles.BackendProfile, widths: Sequence[int]
               ) -> tuple[list[Point], list[Constant]]:
    """The QPU curve over ``widths`` and its constants, from the profile's backend (or declared timing)."""
    from qsetfit.engines.ibm.cost import DEFAULT_REP_DELAY_S
    from qsetfit.engines.ibm.settings import RuntimeSettings

    shots = RuntimeSettings.from_profile(profile, {}).shots_per_row
    where = f"profile {profile.name} ({profile.source or 'built in'})"
    if profile.qpu_circuit_duration_s > 0:
        first = {"qubits": config.qubits, "method": "declared", "circuit_duration_s": profile.qpu_circuit_duration_s,
                 "shots": shots, "rep_delay_s": DEFAULT_REP_DELAY_S, "isa_depth": None, "two_qubit_gates": None,
                 "success_probability": None}
        rows, duration_source = _depth_scaled(config, [first], widths, "scaled"), f"{where}: qpu_circuit_duration_s"
        rep_source = "qsetfit.engines.ibm.cost.DEFAULT_REP_DELAY_S (IBM's usual default_rep_delay)"
    elif profile.engine == "ibm":
        rows, backend_where = _transpiled_timings(config, profile, widths)
        rows = _depth_scaled(config, rows, widths, "extrapolated")
        duration_source = (f"ASAP schedule of the ISA circuit (optimization level {profile.optimization_level}, "
                           f"seed {profile.seed_transpiler}) with the gate and measure durations of "
                           f"{backend_where} (engines.ibm.cost.dry_run_report)")
        rep_source = f"default_rep_delay of {backend_where} (250 us when it reports none)"
    else:
        raise QSetFitError(NO_TIMING.format(name=profile.name, why=f"engine = {profile.engine!r} simulates"))
    if profile.qpu_rep_delay_s > 0:
        rows = [{**r, "rep_delay_s": profile.qpu_rep_delay_s} for r in rows]
        rep_source = f"{where}: qpu_rep_delay_s"
    power, power_source = ((profile.qpu_power_w, f"{where}: qpu_power_w") if profile.qpu_power_w > 0
                           else (DEFAULT_QPU_POWER_W, QPU_POWER_SOURCE))
    overhead = profile.qpu_overhead_s
    points = []
    for r in rows:
        seconds = qpu_seconds_per_inference(r["shots"], r["circuit_duration_s"], r["rep_delay_s"], overhead)
        points.append(Point("qpu", r["qubits"], joules_per_1000(power, seconds), seconds, r["method"],
                            f"{power / 1000:g} kW x QPU time", shots=r["shots"],
                            circuit_duration_s=r["circuit_duration_s"], rep_delay_s=r["rep_delay_s"],
                            isa_depth=r["isa_depth"], two_qubit_gates=r["two_qubit_gates"],
                            success_probability=r["success_probability"]))
    head = rows[0]
    constants = [
        Constant("qpu_power_w", power, "W", power_source),
        Constant("shots", shots, "shots per inference", f"{where}: shots" if profile.shots else
                 f"{where}: 1/precision^2" if profile.precision else "Runtime default 4096 (profile shots = 0)"),
        Constant("rep_delay_s", head["rep_delay_s"], "s between shots", rep_source),
        Constant("qpu_overhead_s", overhead, "s per circuit", f"{where}: qpu_overhead_s" if overhead else
                 "none assumed (job queueing, compilation and loading are not counted)"),
        Constant("circuit_duration_s", head["circuit_duration_s"], f"s at {head['qubits']} qubits", duration_source),
        Constant("qpu_model", QPU_LAW, "", "widths not transpiled (wider than the device, or a declared "
                 "duration): duration x logical depth ratio, marked"),
    ]
    return points, constants


# ---- the report ----------------------------------------------------------------------------------------
def energy_report(run_dir: str | Path, *, backend: str = "fake-torino", samples: int = 32, max_qubits: int = 40,
                  max_measured_qubits: int = 20, time_budget_s: float = 10.0,
                  cpu_core_power_w: float = DEFAULT_CPU_CORE_POWER_W, gpu_power_w: float = DEFAULT_GPU_POWER_W,
                  devices: Sequence[str] | None = None, out: str | Path | None = None,
                  on_width: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Energy per 1,000 inferences of a saved head's module 2, classical against QPU, by width; writes
    energy.csv, energy.json and energy.png into ``out`` (default RUN/energy) and returns the JSON content."""
    from qsetfit.modeling import QSetFitModel

    if samples < 1:
        raise QSetFitError(f"--samples must be >= 1, got {samples}")
    for flag, value in (("--time-budget", time_budget_s), ("--cpu-core-power-w", cpu_core_power_w),
                        ("--gpu-power-w", gpu_power_w)):
        if not value > 0:
            raise QSetFitError(f"{flag} must be > 0, got {value}")
    devices = list(devices) if devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if "cuda" in devices and not torch.cuda.is_available():
        raise QSetFitError("--device cuda: torch sees no CUDA device here; leave it out")
    model = QSetFitModel.load(run_dir)
    config, module2 = model.config, model.trained_head.quantum
    assert module2 is not None  # a QSetFitModel's head always has module 2
    profile = profiles.load_backend_profile(backend)
    for flag, value in (("--max-qubits", max_qubits), ("--max-measured-qubits", max_measured_qubits)):
        if value < config.qubits:
            raise QSetFitError(f"{flag} {value} is below the head's width ({config.qubits} qubits)")
    widths = list(range(config.qubits, max_qubits + 1))
    points, constants = qpu_points(config, profile, widths)  # first: a profile without timing fails fast
    constants = [Constant("module2", f"Q={config.qubits}, C={config.connectivity}, N={config.reuploads}, "
                          f"R={config.layers}, Qm={config.measured}", "", f"{run_dir}/config.json; module 1 and the "
                          "linear layer run classically in both set-ups and are not counted"), *constants]
    for device in devices:
        power, source = (cpu_core_power_w, CPU_POWER_SOURCE) if device == "cpu" else (gpu_power_w, GPU_POWER_SOURCE)
        if power != (DEFAULT_CPU_CORE_POWER_W if device == "cpu" else DEFAULT_GPU_POWER_W):
            source = "given on the command line"
        readings = measure.measure_widths(
            config, widths, device=device, samples=samples, max_qubits=max_measured_qubits,
            time_budget_s=time_budget_s, memory_budget_bytes=measure.available_memory_bytes(device) // 2,
            weights=module2.weight, on_width=on_width)
        points += classical_points(config, readings, widths, power_w=power)
        constants += classical_constants(device, readings, power, source)
    constants.append(Constant("measurement", f"{samples} inputs per width at most, {time_budget_s:g} s budget, "
                              f"{torch.get_num_threads()} torch thread(s), statevectors within half the free "
                              "memory", "", "command options"))
    result = _assemble(run_dir, profile.name, points, constants, devices)
    return write_outputs(result, Path(out) if out is not None else Path(run_dir) / "energy")


def _assemble(run_dir: str | Path, backend: str, points: list[Point], constants: list[Constant],
              devices: Sequence[str]) -> dict[str, Any]:
    """The JSON document: points, a row per width, constants and the break-even width of each classical curve."""
    by_curve: dict[str, dict[int, Point]] = {}
    for p in points:
        by_curve.setdefault(p.curve, {})[p.qubits] = p
    widths = sorted(by_curve["qpu"])
    crossing = {}
    for device in devices:
        q = break_even(widths, [by_curve[device][w].joules_per_1000 for w in widths],
                       [by_curve["qpu"][w].joules_per_1000 for w in widths])
        crossing[device] = None if q is None else round(q, 2)
    return {
        "run": str(run_dir), "backend": backend, "curves": [*devices, "qpu"],
        "rows": [{"qubits": w, **{c: asdict(by_curve[c][w]) for c in (*devices, "qpu")}} for w in widths],
        "constants": [asdict(c) for c in constants], "break_even_qubits": crossing,
        "models": {"classical": CLASSICAL_LAW, "qpu": QPU_LAW},
    }


def write_outputs(result: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write energy.csv (a row per curve and width), energy.json and energy.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    flat = [row[c] for row in result["rows"] for c in result["curves"]]
    persistence.write_history(out / "energy.csv", flat)
    energy_plot(result, out / "energy.png")
    result = {**result, "out": str(out), "files": ["energy.csv", "energy.json", "energy.png"]}
    persistence.write_json(out / "energy.json", result)
    return result
