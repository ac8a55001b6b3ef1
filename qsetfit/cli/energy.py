"""CLI command ``energy``: parse, call ``qsetfit.bench.energy.energy_report``, print. No logic here.

``register(app, wrap)`` adds it to the main typer app; ``wrap`` is the CLI's error handler (one line and exit 1),
passed in so this module does not import ``qsetfit.cli.main``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from collections.abc import Callable

import typer
from rich.markup import escape
from rich.table import Table

from qsetfit.bench.energy_model import DEFAULT_CPU_CORE_POWER_W, DEFAULT_GPU_POWER_W
from qsetfit.cli.common import AsJson, RunDir, console, print_json

NAMES = {"cpu": "CPU", "cuda": "GPU", "qpu": "QPU"}


# ---- the options of `energy` -----------------------------------------------------------------------------
QpuBackend = Annotated[
    str,
    typer.Option(
        "--backend",
        help="Backend profile of the QPU side (an ibm or fake backend, or any profile with qpu_circuit_duration_s).",
    ),
]
Samples = Annotated[int, typer.Option("--samples", help="Inputs timed per width (fewer where the time budget ends).")]
MaxQubits = Annotated[int, typer.Option("--max-qubits", help="Widest module 2 in the table.")]
MaxMeasured = Annotated[
    int, typer.Option("--max-measured-qubits", help="Widest width measured; wider ones are extrapolated.")
]
TimeBudget = Annotated[float, typer.Option("--time-budget", help="Seconds of timing per width at most.")]
CpuPower = Annotated[
    float, typer.Option("--cpu-core-power-w", help="Watts per busy core where no energy counter exists.")
]
GpuPower = Annotated[float, typer.Option("--gpu-power-w", help="GPU watts where no energy counter exists.")]
Devices = Annotated[
    list[str] | None, typer.Option("--device", help="cpu and/or cuda (repeat; default: cpu, and cuda when available).")
]
EnergyOut = Annotated[Path | None, typer.Option("--out", help="Folder for energy.csv/json/png (default RUN/energy).")]


def energy_cli(
    run: RunDir,
    backend: QpuBackend = "fake-torino",
    samples: Samples = 32,
    max_qubits: MaxQubits = 40,
    max_measured_qubits: MaxMeasured = 20,
    time_budget: TimeBudget = 10.0,
    cpu_core_power_w: CpuPower = DEFAULT_CPU_CORE_POWER_W,
    gpu_power_w: GpuPower = DEFAULT_GPU_POWER_W,
    device: Devices = None,
    out: EnergyOut = None,
    as_json: AsJson = False,
) -> None:
    """Energy per 1,000 inferences of module 2: classical statevector (measured, then extrapolated) vs a QPU model."""
    from qsetfit.bench import energy

    def _progress(dev: str, qubits: int) -> None:
        if not as_json:
            console.print(f"timing module 2 on {dev} at {qubits} qubits", style="dim", highlight=False)

    result = energy.energy_report(
        run,
        backend=backend,
        samples=samples,
        max_qubits=max_qubits,
        max_measured_qubits=max_measured_qubits,
        time_budget_s=time_budget,
        cpu_core_power_w=cpu_core_power_w,
        gpu_power_w=gpu_power_w,
        devices=device,
        out=out,
        on_width=_progress,
    )
    if as_json:
        print_json(result)
        return
    console.print(_energy_table(run, result))
    console.print(_constants_table(result["constants"]))
    for dev, q in result["break_even_qubits"].items():
        console.print(
            f"break-even {NAMES[dev]} vs QPU: "
            + (
                f"{q:.1f} qubits"
                if q is not None
                else f"none in {result['rows'][0]['qubits']}-{result['rows'][-1]['qubits']} qubits"
            ),
            highlight=False,
        )
    console.print(f"wrote {', '.join(result['files'])} to {result['out']}", highlight=False)


def _energy_table(run: Path, result: dict[str, Any]) -> Table:
    """A row per width: J per 1,000 inferences and how it was had, per curve, and the QPU success estimate."""
    table = Table(title=f"J per 1,000 inferences of module 2 ({run}, QPU: {result['backend']})")
    table.add_column("qubits", justify="right")
    for curve in result["curves"]:
        table.add_column(f"{NAMES[curve]} J/1k", justify="right")
        table.add_column(f"{NAMES[curve]} how")
    table.add_column("QPU success est.", justify="right")
    for row in result["rows"]:
        cells = [
            c for curve in result["curves"] for c in (f"{row[curve]['joules_per_1000']:.3g}", row[curve]["method"])
        ]
        success = row["qpu"]["success_probability"]
        table.add_row(str(row["qubits"]), *cells, "" if success is None else f"{success:.3g}")
    return table


def _constants_table(constants: list[dict[str, Any]]) -> Table:
    """Every constant of the model with its unit and source."""
    table = Table(title="constants")
    for col in ("name", "value", "unit", "source"):
        table.add_column(col)
    for c in constants:
        value = f"{c['value']:.4g}" if isinstance(c["value"], float) else str(c["value"])
        table.add_row(c["name"], escape(value), c["unit"], escape(c["source"]))
    return table


def register(app: typer.Typer, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Add ``energy`` to ``app``; ``wrap`` handles errors."""
    app.command("energy")(wrap(energy_cli))
