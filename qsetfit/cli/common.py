"""What every ``qsetfit`` command module shares: the consoles, the error boundary and JSON output.

Errors are one readable line on stderr and exit code 1; ``--debug`` (``STATE["debug"]``) shows the traceback.
"""

from __future__ import annotations

import contextlib
import json
import sys
from functools import wraps
from pathlib import Path
from typing import Annotated, Any
from collections.abc import Callable, Iterator

import typer
from rich.console import Console
from typer.core import TyperGroup

from qsetfit.errors import QSetFitError

console = Console()
err_console = Console(stderr=True)
STATE = {"debug": False}

# Options several commands share, declared once (typer copies the declaration for each parameter using it).
RunDir = Annotated[Path, typer.Argument(help="Run directory from `qsetfit train`.")]
AsJson = Annotated[bool, typer.Option("--json")]
Body = Annotated[str, typer.Option("--body", help="sentence-transformers name or local path.")]
EvalData = Annotated[str | None, typer.Option("--data", help="Labelled data (default: the run's test split).")]
TestLimit = Annotated[int | None, typer.Option("--test-limit", help="Score a seeded subsample of the test set.")]


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
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the CLI boundary
            if STATE["debug"]:
                raise
            kind = "" if isinstance(exc, QSetFitError) else f"{type(exc).__name__}: "
            hint = "" if isinstance(exc, QSetFitError) else " (run with --debug for the traceback)"
            err_console.print(f"[red]error:[/red] {kind}{exc}{hint}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from exc

    return wrapper


GLOBAL_FLAGS = ("--debug", "--verbose", "-v")  # the app's own options, accepted after the subcommand too
GLOBAL_VALUED = ("--threads",)


def hoist_global_options(args: list[str]) -> list[str]:
    """Move the app's own options (``--threads N``, ``--debug``, ``--verbose``) in front of the subcommand.

    Click reads a group's options only before the subcommand name; users write them anywhere. Arguments after
    ``--`` stay where they are.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg in GLOBAL_FLAGS or (arg.split("=", 1)[0] in GLOBAL_VALUED and "=" in arg):
            front.append(arg)
        elif arg in GLOBAL_VALUED and i + 1 < len(args):
            front += args[i : i + 2]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


class GlobalOptionsAnywhere(TyperGroup):
    """The top-level group: its options may follow the subcommand (``qsetfit train ... --threads 2``)."""

    # ctx: Any, as its class depends on typer: click's Context, or (recent typer) its vendored copy of click's.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # noqa: D102
        return super().parse_args(ctx, hoist_global_options(list(args)))


def quiet_progress() -> None:
    """No progress bars from transformers/huggingface_hub (``--json``: stderr stays for errors only)."""
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    disable_progress_bars()
    hf_logging.disable_progress_bar()


@contextlib.contextmanager
def engine_progress(enabled: bool) -> Iterator[None]:
    """Show the ibm engine's stages (transpile, noise model, each job) on stderr while inside; off for ``--json``.

    A terminal gets one rich status line that updates in place; a pipe or log gets one line per stage.
    """
    if not enabled:
        yield
        return
    from qsetfit.engines.ibm.runtime import progress

    if not err_console.is_terminal:
        with progress(lambda message: err_console.print(f"qsetfit: {message}", highlight=False, soft_wrap=True)):
            yield
        return
    with err_console.status("working") as status, progress(status.update):
        yield


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout (nothing else goes there with --json)."""
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
