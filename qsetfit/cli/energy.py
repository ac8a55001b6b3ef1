"""CLI command ``energy``: parse, call ``qsetfit.bench.energy.energy_report``, print. No logic here.

``register(app, wrap)`` adds it to the main typer app; ``wrap`` is the CLI's error handler (one line and exit 1),
passed in so this module does not import ``qsetfit.cli.main``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from collections.abc import Callable

import typer
from rich.markup import escape
from rich.table import Table

from qsetfit.bench.energy_model import DEFAULT_CPU_CORE_POWER_W, DEFAULT_GPU_POWER_W
from qsetfit.cli.common import console, print_json

NAMES = {"cpu": "CPU", "cuda": "GPU", "qpu": "QPU"}


def energy_cli(
    run: Path = typer.Argument(..., help="Run directory from `qsetfit train`."),
    backend: str = typer.Option("fake-torino", "--backend", help="Backend profile of the QPU side (an ibm or fake "
                                "backend, or any profile with qpu_circuit_duration_s)."),
    samples: int = typer.Option(32, "--samples", help="Inputs timed per width (fewer where the time budget ends)."),
    max_qubits: int = typer.Option(40, "--max-qubits", help="Widest module 2 in the table."),
    max_measured_qubits: int = typer.Option(20, "--max-measured-qubits", help="Widest width measured; wider ones "
                                            "are extrapolated."),
    time_budget: float = typer.Option(10.0, "--time-budget", help="Seconds of timing per width at most."),
    cpu_core_power_w: float = typer.Option(DEFAULT_CPU_CORE_POWER_W, "--cpu-core-power-w",
                                           help="Watts per busy core where no energy counter exists."),
    gpu_power_w: float = typer.Option(DEFAULT_GPU_POWER_W, "--gpu-power-w",
                                      help="GPU watts where no energy counter exists."),
    device: list[str] | None = typer.Option(None, "--device", help="cpu and/or cuda (repeat; default: cpu, "
                                               "and cuda when available)."),
    out: Path | None = typer.Option(None, "--out", help="Folder for energy.csv/json/png (default RUN/energy)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Energy per 1,000 inferences of module 2: classical statevector (measured, then extrapolated) vs a QPU model."""
    from qsetfit.bench import energy

    def _progress(dev: str, qubits: int) -> None:
        if not as_json:
            console.print(f"timing module 2 on {dev} at {qubits} qubits", style="dim", highlight=False)

    result = energy.energy_report(run, backend=backend, samples=samples, max_qubits=max_qubits,
                                  max_measured_qubits=max_measured_qubits, time_budget_s=time_budget,
                                  cpu_core_power_w=cpu_core_power_w, gpu_power_w=gpu_power_w, devices=device,
                                  out=out, on_width=_progress)
    if as_json:
        print_json(result)
        return
    table = Table(title=f"J per 1,000 inferences of module 2 ({run}, QPU: {result['backend']})")
    table.add_column("qubits", justify="right")
    for curve in result["curves"]:
        table.add_column(f"{NAMES[curve]} J/1k", justify="right")
        table.add_column(f"{NAMES[curve]} how")
    table.add_column("QPU success est.", justify="right")
    for row in result["rows"]:
        cells = [c for curve in result["curves"]
                 for c in (f"{row[curve]['joules_per_1000']:.3g}", row[curve]["method"])]
        success = row["qpu"]["success_probability"]
        table.add_row(str(row["qubits"]), *cells, "" if success is None else f"{success:.3g}")
    console.print(table)
    constants = Table(title="constants")
    for col in ("name", "value", "unit", "source"):
        constants.add_column(col)
    for c in result["constants"]:
        value = f"{c['value']:.4g}" if isinstance(c["value"], float) else str(c["value"])
        constants.add_row(c["name"], escape(value), c["unit"], escape(c["source"]))
    console.print(constants)
    for dev, q in result["break_even_qubits"].items():
        console.print(f"break-even {NAMES[dev]} vs QPU: " + (f"{q:.1f} qubits" if q is not None else
                      f"none in {result['rows'][0]['qubits']}-{result['rows'][-1]['qubits']} qubits"), highlight=False)
    console.print(f"wrote {', '.join(result['files'])} to {result['out']}", highlight=False)


def register(app: typer.Typer, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Add ``energy`` to ``app``; ``wrap`` handles errors."""
    app.command("energy")(wrap(energy_cli))
