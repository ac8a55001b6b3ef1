"""What a screening study writes: trials.csv / trials.json, the main-effects table (markdown) and plot (PNG).

A factor's main effect at a level is the mean validation accuracy of the trials at that level minus the mean
of all trials, with a 95% t-interval of that level's mean. Validation picks the winner; test accuracy is
reported beside it and never used to choose.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np

from qsetfit.io.persistence import atomic_write_bytes, write_json

COLUMNS = (
    "id",
    "point_index",
    "seed",
    "status",
    "reason",
    "parameters",
    "validation_accuracy",
    "test_accuracy",
    "best_epoch",
    "seconds",
)


def _ok(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == "ok"]


def main_effects(study: Any, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (factor, level): trials, mean validation accuracy, change vs the grand mean, 95% interval."""
    from scipy import stats as sps

    ok = _ok(rows)
    if not ok:
        return []
    grand = float(np.mean([r["validation_accuracy"] for r in ok]))
    effects = []
    for factor, levels in study.factors.items():
        for level in levels:
            vals = [r["validation_accuracy"] for r in ok if r["point"][factor] == level]
            n = len(vals)
            mean = float(np.mean(vals)) if n else math.nan
            half = float(sps.t.ppf(0.975, n - 1) * np.std(vals, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
            effects.append(
                {
                    "factor": factor,
                    "level": level,
                    "trials": n,
                    "validation_accuracy": mean,
                    "effect": mean - grand,
                    "ci95": half,
                }
            )
    return effects


def best_point(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The design point with the highest mean validation accuracy over its seeds (ties: fewer parameters)."""
    points: dict[int, list[dict[str, Any]]] = {}
    for r in _ok(rows):
        points.setdefault(r["point_index"], []).append(r)
    if not points:
        return None

    def score(rs: list[dict[str, Any]]) -> tuple[float, int]:
        return float(np.mean([r["validation_accuracy"] for r in rs])), -rs[0]["parameters"]

    rs = max(points.values(), key=score)
    return {
        "point_index": rs[0]["point_index"],
        "point": rs[0]["point"],
        "head": rs[0]["head"],
        "training": rs[0]["training"],
        "parameters": rs[0]["parameters"],
        "seeds": [r["seed"] for r in rs],
        "validation_accuracy": score(rs)[0],
        "test_accuracy": float(np.mean([r["test_accuracy"] for r in rs])),
    }


def trials_table(study: Any, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flat rows for trials.csv: the bookkeeping columns, then every knob of the head and training."""
    flat = []
    for r in rows:
        knobs = {**(r.get("head") or {}), **(r.get("training") or {}), **r["point"]}
        knobs.pop("seed", None)
        flat.append(
            {c: r.get(c, "") for c in COLUMNS}
            | {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in knobs.items()}
        )
    return flat


def _csv(rows: list[dict[str, Any]]) -> bytes:
    names: list[str] = []
    for r in rows:
        names += [k for k in r if k not in names]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def markdown(
    study: Any, rows: Sequence[dict[str, Any]], effects: list[dict[str, Any]], best: dict[str, Any] | None
) -> str:
    """The main-effects table and the winner, as markdown."""
    ok = _ok(rows)
    secs = [r["seconds"] for r in ok]
    lines = [
        f"## Screening study on `{study.data}`",
        "",
        f"Body `{study.body}`, protocol `{study.protocol}`, design `{study.design}` "
        f"({len({r['point_index'] for r in rows})} points x {len(study.seeds)} seed(s) = {len(rows)} trials: "
        f"{len(ok)} ok, {sum(r['status'] == 'failed' for r in rows)} failed, "
        f"{sum(r['status'] == 'skipped' for r in rows)} skipped as impossible); "
        + (f"{np.mean(secs):.1f} s per trial on one thread (median {np.median(secs):.1f} s). " if secs else "")
        + "Selection on validation accuracy only.",
        "",
        "| factor | level | trials | mean validation accuracy % | main effect (points) | 95% CI of the mean |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for e in effects:
        ci = f"± {100 * e['ci95']:.2f}" if not math.isnan(e["ci95"]) else "n/a"
        lines.append(
            f"| {e['factor']} | {json.dumps(e['level'])} | {e['trials']} | "
            f"{100 * e['validation_accuracy']:.2f} | {100 * e['effect']:+.2f} | {ci} |"
        )
    if best is not None:
        lines += [
            "",
            f"**Best point** (#{best['point_index']}, mean validation "
            f"{100 * best['validation_accuracy']:.2f}%"
            f" over seeds {best['seeds']}, test {100 * best['test_accuracy']:.2f}% recorded, not used; "
            f"{best['parameters']} parameters): `{json.dumps(best['point'], sort_keys=True)}`",
        ]
    return "\n".join(lines) + "\n"


def plot(study: Any, effects: list[dict[str, Any]], path: Path) -> None:
    """One panel per factor: mean validation accuracy per level with 95% intervals, the grand mean dashed."""
    from matplotlib.figure import Figure

    from qsetfit.bench.plots import save_png

    factors = list(study.factors)
    if not effects:
        return
    ncols = min(4, len(factors))
    nrows = math.ceil(len(factors) / ncols)
    fig = Figure(figsize=(3.2 * ncols, 2.8 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    grand = effects[0]["validation_accuracy"] - effects[0]["effect"]
    for ax, factor in zip(axes, factors, strict=False):  # the grid may hold spare axes
        es = [e for e in effects if e["factor"] == factor]
        x = np.arange(len(es))
        y = [100 * e["validation_accuracy"] for e in es]
        err = [0 if math.isnan(e["ci95"]) else 100 * e["ci95"] for e in es]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3)
        ax.axhline(100 * grand, ls="--", color="grey", lw=1)
        ax.set_xticks(x, [str(e["level"]) for e in es], fontsize=8)
        ax.set_title(factor, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[len(factors) :]:
        ax.set_visible(False)
    axes[0].set_ylabel("validation accuracy %")
    fig.suptitle("main effects (mean ± 95% CI; dashed: all trials)", fontsize=10)
    fig.tight_layout()
    save_png(fig, path)


def write_reports(out: Path, study: Any, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """trials.csv, trials.json, main_effects.md, main_effects.png; returns trials, effects, best, markdown."""
    effects = main_effects(study, rows)
    best = best_point(rows)
    text = markdown(study, rows, effects, best)
    atomic_write_bytes(out / "trials.csv", _csv(trials_table(study, rows)))
    write_json(out / "trials.json", list(rows))
    atomic_write_bytes(out / "main_effects.md", text.encode())
    plot(study, effects, out / "main_effects.png")
    return {"trials": list(rows), "main_effects": effects, "best": best, "markdown": text}
