"""``qsetfit jobs list|status|fetch RUN``: the Runtime jobs a run submitted (``RUN/ledger.jsonl``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from qsetfit.cli.common import AsJson, console, friendly, print_json
from qsetfit.errors import QSetFitError

JobsRun = Annotated[Path, typer.Argument(help="Run directory.")]
jobs_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Runtime jobs of a run: list them, ask their status, fetch their results.",
)


def _ledger(run: Path) -> Any:
    from qsetfit.engines.ibm.ledger import Ledger

    ledger = Ledger(run)
    if not ledger.path.is_file():
        raise QSetFitError(f"{run} has no job ledger ({ledger.path.name}); nothing was submitted to IBM Runtime")
    return ledger


def _service_if_needed(ledger: Any) -> Any:
    """A ``QiskitRuntimeService`` only when some QPU job is not fetched yet (credentials stay optional)."""
    if any(not j.get("local") and j["state"] != "fetched" for j in ledger.jobs()):
        from qsetfit.engines.ibm.credentials import runtime_service

        return runtime_service()
    return None


def _emit(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        print_json(rows)
        return
    table = Table()
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*(str(r.get(c, "")) for c in columns))
    console.print(table)


@jobs_app.command("list")
@friendly
def list_cli(run: JobsRun, as_json: AsJson = False) -> None:
    """Every job of the run, from the ledger (no network)."""
    rows = [
        {k: j[k] for k in ("job_id", "backend", "mode", "state", "pub_shapes", "local")} for j in _ledger(run).jobs()
    ]
    _emit(rows, as_json, ["job_id", "backend", "mode", "state", "pub_shapes", "local"])


@jobs_app.command("status")
@friendly
def status_cli(run: JobsRun, as_json: AsJson = False) -> None:
    """Each job's ledger state and, for QPU jobs not fetched yet, IBM's status."""
    ledger = _ledger(run)
    _emit(ledger.status(_service_if_needed(ledger)), as_json, ["job_id", "backend", "mode", "state", "status"])


@jobs_app.command("fetch")
@friendly
def fetch_cli(run: JobsRun, as_json: AsJson = False) -> None:
    """Retrieve the results of every job not fetched yet (no resubmission); rerunning predict then reuses them."""
    ledger = _ledger(run)
    outcome = ledger.fetch_all(_service_if_needed(ledger))
    rows = [{"job_id": k, "result": v} for k, v in outcome.items()]
    _emit(rows, as_json, ["job_id", "result"])
    if any(v != "fetched" and not v.startswith("local job") for v in outcome.values()):
        raise typer.Exit(1)
