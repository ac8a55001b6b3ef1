"""The demo: train a quantum head on the packaged sentiment set, then compare simulators on the test split.

``bash scripts/demo.sh`` runs it: MiniLM body (packaged), torch engine for training, then the trained
head evaluated with module 2 on the exact torch engine and on Aer (exact, 1024 shots, depolarizing).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from qsetfit.errors import QSetFitError
from qsetfit.bench.stats import accuracy_ci
from qsetfit.training.arguments import TrainingArguments
from qsetfit import workflow

DEMO_BACKENDS = ("torch", "aer-exact", "aer-shots", "aer-depolarizing")


def main(argv: list[str] | None = None) -> None:
    """Train, evaluate on every demo backend, print one comparison table and where the run was saved."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: a new temporary one)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest for small heads, and on a busy machine)"
    )
    opts = parser.parse_args(argv)
    torch.set_num_threads(opts.threads)
    console = Console()
    out = opts.out or Path(tempfile.mkdtemp(prefix="qsetfit-demo-")) / "run"
    args = TrainingArguments(epochs=opts.epochs, batch_size=16, learning_rate=0.05, seed=0)
    console.print(
        f"[bold]1/2 training[/bold] the paper's 10-qubit head on the packaged sentiment set "
        f"(MiniLM body, torch engine, {args.epochs} epochs)"
    )
    start = time.perf_counter()
    outcome = workflow.train("demo", out, preset="paper-10q-single", args=args)
    took = time.perf_counter() - start
    m = outcome.metrics
    console.print(
        f"trained in {took:.0f} s: {m['parameters']['total']} parameters, best epoch {m['best_epoch']}, "
        f"validation accuracy {m['best_validation']['accuracy']:.3f}; run saved to {out}"
    )

    console.print("[bold]2/2 evaluating[/bold] the same weights with module 2 on each backend (test split)")
    table = Table(title="test accuracy by backend (same trained weights)")
    for col in ("backend", "accuracy", "± 95% CI", "loss", "seconds"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for backend in DEMO_BACKENDS:
        t0 = time.perf_counter()
        try:
            (r,) = workflow.evaluate(out, backends=[backend])
        except QSetFitError as exc:
            table.add_row(backend, "-", "-", "-", f"unavailable: {exc}")
            continue
        table.add_row(
            backend,
            f"{r['accuracy']:.4f}",
            f"{accuracy_ci(r['accuracy'], r['n']):.4f}",
            f"{r['loss']:.4f}",
            f"{time.perf_counter() - t0:.1f}",
        )
    console.print(table)
    console.print(f'try: qsetfit predict {out} "What a wonderful little film." --backend aer-shots')


if __name__ == "__main__":
    main()
