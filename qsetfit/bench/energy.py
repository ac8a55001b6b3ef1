"""``qsetfit energy``: energy per 1,000 inferences of module 2, classical statevector against a QPU, by width.

Module 1 (the encoders) and the final linear layer run classically in both set-ups, so only module 2 is
compared. Every number comes with its source:

- classical: measured (``qsetfit.bench.energy_measure``) from the head's width up to the widths that fit the
  memory and time budgets; energy from a hardware counter where one exists, else power x time with the power
  stated; beyond, extrapolated from the last measured width as E(Q0) x 2^(Q-Q0) x gates(Q)/gates(Q0)
  (``qsetfit.bench.energy_model``);
- QPU: power x (shots x (circuit duration + repetition delay) + per-circuit overhead), the duration from the
  ISA circuit scheduled with the backend target's gate durations (``engines.ibm.cost.dry_run_report``), wider
  circuits transpiled while they fit the device, else scaled by logical depth and marked
  (``qsetfit.bench.energy_qpu``);
- the break-even width: where the two curves cross (log-linear between widths), if they do.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

import torch

from qsetfit.bench import energy_measure as measure
from qsetfit.bench.energy_model import (
    CLASSICAL_LAW,
    CPU_POWER_SOURCE,
    DEFAULT_CPU_CORE_POWER_W,
    DEFAULT_GPU_POWER_W,
    DEFAULT_QPU_POWER_W,
    GPU_POWER_SOURCE,
    QPU_LAW,
    Constant,
    Point,
    break_even,
    classical_constants,
    classical_points,
    growth_per_qubit,
    joules_per_1000,
    qpu_seconds_per_inference,
    scale_statevector,
)
from qsetfit.bench.energy_qpu import qpu_points
from qsetfit.bench.plots import energy_plot
from qsetfit import profiles
from qsetfit.io import persistence
from qsetfit.head.circuits import HeadConfig
from qsetfit.errors import QSetFitError

# The model's names, importable from here as before the split into energy_model / energy_qpu.
__all__ = [
    "CLASSICAL_LAW",
    "DEFAULT_CPU_CORE_POWER_W",
    "DEFAULT_GPU_POWER_W",
    "DEFAULT_QPU_POWER_W",
    "QPU_LAW",
    "Constant",
    "Point",
    "break_even",
    "classical_constants",
    "classical_points",
    "energy_report",
    "growth_per_qubit",
    "joules_per_1000",
    "qpu_points",
    "qpu_seconds_per_inference",
    "scale_statevector",
    "write_outputs",
]


def _checked_devices(
    samples: int, time_budget_s: float, cpu_core_power_w: float, gpu_power_w: float, devices: Sequence[str] | None
) -> list[str]:
    """The devices to time (default: cpu, and cuda when available), after one clear error for a bad option."""
    if samples < 1:
        raise QSetFitError(f"--samples must be >= 1, got {samples}")
    for flag, value in (
        ("--time-budget", time_budget_s),
        ("--cpu-core-power-w", cpu_core_power_w),
        ("--gpu-power-w", gpu_power_w),
    ):
        if not value > 0:
            raise QSetFitError(f"{flag} must be > 0, got {value}")
    chosen = list(devices) if devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if "cuda" in chosen and not torch.cuda.is_available():
        raise QSetFitError("--device cuda: torch sees no CUDA device here; leave it out")
    return chosen


def _classical_curves(
    config: HeadConfig,
    weights: torch.Tensor,
    widths: Sequence[int],
    devices: Sequence[str],
    *,
    cpu_core_power_w: float,
    gpu_power_w: float,
    samples: int,
    max_measured_qubits: int,
    time_budget_s: float,
    on_width: Callable[[str, int], None] | None,
) -> tuple[list[Point], list[Constant]]:
    """Module 2 timed on each device up to the budgets, extrapolated beyond, with the curves' constants."""
    points: list[Point] = []
    constants: list[Constant] = []
    for device in devices:
        power, source = (cpu_core_power_w, CPU_POWER_SOURCE) if device == "cpu" else (gpu_power_w, GPU_POWER_SOURCE)
        if power != (DEFAULT_CPU_CORE_POWER_W if device == "cpu" else DEFAULT_GPU_POWER_W):
            source = "given on the command line"
        readings = measure.measure_widths(
            config,
            widths,
            device=device,
            samples=samples,
            max_qubits=max_measured_qubits,
            time_budget_s=time_budget_s,
            memory_budget_bytes=measure.available_memory_bytes(device) // 2,
            weights=weights,
            on_width=on_width,
        )
        points += classical_points(config, readings, widths, power_w=power)
        constants += classical_constants(device, readings, power, source)
    constants.append(
        Constant(
            "measurement",
            f"{samples} inputs per width at most, {time_budget_s:g} s budget, "
            f"{torch.get_num_threads()} torch thread(s), statevectors within half the free "
            "memory",
            "",
            "command options",
        )
    )
    return points, constants


def _module2_constant(config: HeadConfig, run_dir: str | Path) -> Constant:
    """What is compared: module 2's shape, read from the run's config."""
    return Constant(
        "module2",
        f"Q={config.qubits}, C={config.connectivity}, N={config.reuploads}, R={config.layers}, Qm={config.measured}",
        "",
        f"{run_dir}/config.json; module 1 and the linear layer run classically in both set-ups and are not counted",
    )


def energy_report(
    run_dir: str | Path,
    *,
    backend: str = "fake-torino",
    samples: int = 32,
    max_qubits: int = 40,
    max_measured_qubits: int = 20,
    time_budget_s: float = 10.0,
    cpu_core_power_w: float = DEFAULT_CPU_CORE_POWER_W,
    gpu_power_w: float = DEFAULT_GPU_POWER_W,
    devices: Sequence[str] | None = None,
    out: str | Path | None = None,
    on_width: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Energy per 1,000 inferences of a saved head's module 2, classical against QPU, by width; writes
    energy.csv, energy.json and energy.png into ``out`` (default RUN/energy) and returns the JSON content."""
    from qsetfit.modeling import QSetFitModel

    devices = _checked_devices(samples, time_budget_s, cpu_core_power_w, gpu_power_w, devices)
    model = QSetFitModel.load(run_dir)
    config, module2 = model.config, model.trained_head.quantum
    assert module2 is not None  # a QSetFitModel's head always has module 2
    profile = profiles.load_backend_profile(backend)
    for flag, value in (("--max-qubits", max_qubits), ("--max-measured-qubits", max_measured_qubits)):
        if value < config.qubits:
            raise QSetFitError(f"{flag} {value} is below the head's width ({config.qubits} qubits)")
    widths = list(range(config.qubits, max_qubits + 1))
    qpu, qpu_constants = qpu_points(config, profile, widths)  # first: a profile without timing fails fast
    classical, classical_notes = _classical_curves(
        config,
        module2.weight,
        widths,
        devices,
        cpu_core_power_w=cpu_core_power_w,
        gpu_power_w=gpu_power_w,
        samples=samples,
        max_measured_qubits=max_measured_qubits,
        time_budget_s=time_budget_s,
        on_width=on_width,
    )
    constants = [_module2_constant(config, run_dir), *qpu_constants, *classical_notes]
    result = _assemble(run_dir, profile.name, qpu + classical, constants, devices)
    return write_outputs(result, Path(out) if out is not None else Path(run_dir) / "energy")


def _assemble(
    run_dir: str | Path, backend: str, points: list[Point], constants: list[Constant], devices: Sequence[str]
) -> dict[str, Any]:
    """The JSON document: points, a row per width, constants and the break-even width of each classical curve."""
    by_curve: dict[str, dict[int, Point]] = {}
    for p in points:
        by_curve.setdefault(p.curve, {})[p.qubits] = p
    widths = sorted(by_curve["qpu"])
    crossing = {}
    for device in devices:
        q = break_even(
            widths,
            [by_curve[device][w].joules_per_1000 for w in widths],
            [by_curve["qpu"][w].joules_per_1000 for w in widths],
        )
        crossing[device] = None if q is None else round(q, 2)
    return {
        "run": str(run_dir),
        "backend": backend,
        "curves": [*devices, "qpu"],
        "rows": [{"qubits": w, **{c: asdict(by_curve[c][w]) for c in (*devices, "qpu")}} for w in widths],
        "constants": [asdict(c) for c in constants],
        "break_even_qubits": crossing,
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
