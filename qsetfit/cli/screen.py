"""CLI command ``screen``: parse, call ``qsetfit.bench.screening.screen``, print the main effects. No logic here.

``register(app, wrap)`` adds it to the main typer app; ``wrap`` is the CLI's error handler.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from collections.abc import Callable

import typer
from rich.table import Table

from qsetfit.cli.common import console, print_json


StudyFile = Annotated[
    Path, typer.Argument(help="Study file (TOML): data, body, protocol, seeds, design, [factors], [fixed].")
]
FinalSeeds = Annotated[
    int | None,
    typer.Option(
        "--final-seeds",
        help="Fresh seeds for the winner's final stage beside the classical heads (default: the study's; 0: skip).",
    ),
]


def screen_cli(
    study: StudyFile,
    *,
    out: Annotated[Path, typer.Option("--out", help="Folder for trials.csv/json, main_effects.md/png and final/.")],
    workers: Annotated[
        int, typer.Option("--workers", help="Local Ray workers, one torch thread each (0: no Ray).")
    ] = 2,
    address: Annotated[
        str | None, typer.Option("--address", help="Run on an existing Ray cluster (HOST:PORT).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Keep finished trials in --out; run only the missing ones.")
    ] = False,
    final_seeds: FinalSeeds = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Screening study of main effects over head and training knobs (the paper's method), trials on Ray."""
    from qsetfit.bench.screening import screen

    result = screen(
        study, out, workers=workers, address=address, resume=resume, progress=not as_json, final_seeds=final_seeds
    )
    if as_json:
        print_json(
            {k: v for k, v in result.items() if k not in ("trials", "final")}
            | {"final_table": result["final"]["table"] if result["final"] else None}
        )
        return
    table = Table(title=f"main effects on validation accuracy ({out})")
    for col in ("factor", "level", "trials", "val acc %", "effect (pts)", "95% CI"):
        table.add_column(col, justify="left" if col in ("factor", "level") else "right")
    for e in result["main_effects"]:
        ci = "n/a" if e["ci95"] != e["ci95"] else f"± {100 * e['ci95']:.2f}"
        table.add_row(
            e["factor"],
            json.dumps(e["level"]),
            str(e["trials"]),
            f"{100 * e['validation_accuracy']:.2f}",
            f"{100 * e['effect']:+.2f}",
            ci,
        )
    console.print(table)
    best = result["best"]
    if best:
        console.print(
            f"best point: {json.dumps(best['point'], sort_keys=True)}; validation "
            f"{100 * best['validation_accuracy']:.2f}%, {best['parameters']} parameters"
        )
    if result["final"]:
        console.print(result["final"]["table"], markup=False, highlight=False)
    console.print(f"wrote {out / 'trials.csv'}, {out / 'main_effects.md'}, {out / 'main_effects.png'}")


def register(app: typer.Typer, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Add ``screen`` to ``app``."""
    app.command("screen")(wrap(screen_cli))
