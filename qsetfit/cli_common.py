"""What every ``qsetfit`` command module shares: the consoles, the error boundary and JSON output.

Errors are one readable line on stderr and exit code 1; ``--debug`` (``STATE["debug"]``) shows the traceback.
"""

from __future__ import annotations

import json
import sys
from functools import wraps
from typing import Any, Callable

import typer
from rich.console import Console

from qsetfit.errors import QSetFitError

console = Console()
err_console = Console(stderr=True)
STATE = {"debug": False}


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn any failure into one line and exit 1 (a traceback only with --debug)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            err_console.print("interrupted; a training run continues with --resume")
            raise typer.Exit(130)
        except Exception as exc:  # noqa: BLE001 - the CLI boundary
            if STATE["debug"]:
                raise
            kind = "" if isinstance(exc, QSetFitError) else f"{type(exc).__name__}: "
            hint = "" if isinstance(exc, QSetFitError) else " (run with --debug for the traceback)"
            err_console.print(f"[red]error:[/red] {kind}{exc}{hint}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(1)

    return wrapper


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout (nothing else goes there with --json)."""
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
