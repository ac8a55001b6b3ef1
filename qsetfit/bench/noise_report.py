"""The files of ``qsetfit bench noise``: noise.csv (a row per cell), noise.json and the PNG plots."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from qsetfit.io.persistence import atomic_write_bytes, write_json

CSV_COLUMNS = (
    "cell",
    "axis",
    "value",
    "p1",
    "p2",
    "readout",
    "shots",
    "device",
    "simulator",
    "method",
    "trajectories",
    "stderr",
    "near_boundary",
    "seeds",
    "undecided",
    "simulated",
    "accuracy",
    "accuracy_std",
    "sampling_ci95",
    "agreement",
    "seconds",
    "profile",
)


def write_outputs(out: Path, result: dict[str, Any]) -> list[str]:
    """noise.csv, noise.json and the PNG plots; returns the file names written."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(result["cells"])
    atomic_write_bytes(out / "noise.csv", buf.getvalue().encode())
    files = ["noise.csv", "noise.json"]
    cells, exact, s = result["cells"], result["exact_accuracy"], result["settings"]
    subtitle = f"{result['n']} test examples, {s['qubits']}-qubit module 2"
    p2 = [c for c in cells if c["axis"] == "p2"]
    if p2:
        _line_plot(
            out / "noise_p2.png",
            p2,
            "p2",
            exact,
            xlabel=f"two-qubit depolarizing p2 (p1 = p2/10, readout {s['readout']:g})",
            title=f"accuracy vs gate noise\n{subtitle}",
            xscale="symlog",
        )
        files.append("noise_p2.png")
    shots = [c for c in cells if c["axis"] == "shots" and c["shots"] > 0]
    if shots:
        _line_plot(
            out / "noise_shots.png",
            shots,
            "shots",
            exact,
            xlabel="shots per input",
            title=f"accuracy vs shots\n{subtitle}",
            xscale="log",
        )
        files.append("noise_shots.png")
    devices = [c for c in cells if c["axis"] == "device"]
    if devices:
        from qsetfit.bench.plots import bar_chart

        bar_chart(
            ["exact"] + [c["device"] for c in devices],
            [exact] + [c["accuracy"] for c in devices],
            out / "noise_devices.png",
            title=f"accuracy with fake-device noise\n{subtitle}",
            ylabel="accuracy",
            errors=[0.0] + [c["accuracy_std"] for c in devices],
        )
        files.append("noise_devices.png")
    write_json(out / "noise.json", result | {"files": files})
    return files


def _line_plot(
    path: Path, cells: list[dict[str, Any]], key: str, exact: float, *, xlabel: str, title: str, xscale: str
) -> None:
    """Accuracy (mean ± std over seeds) against one grid axis, the exact accuracy as a dashed line."""
    from qsetfit.bench.plots import new_figure, save_png

    x = [c[key] for c in cells]
    fig, ax = new_figure(figsize=(6, 3.8))
    errors = [float(np.hypot(c["accuracy_std"], c.get("sampling_ci95", 0.0))) for c in cells]
    ax.errorbar(
        x,
        [c["accuracy"] for c in cells],
        yerr=errors,
        marker="o",
        capsize=4,
        label="accuracy (± seed std, sampling 95% added in quadrature)",
    )
    ax.axhline(exact, color="gray", linestyle="--", label=f"exact module 2 ({exact:.4f})")
    positive = [v for v in x if v > 0]
    if xscale == "symlog":
        ax.set_xscale("symlog", linthresh=min(positive) if positive else 1e-4)
    else:
        ax.set_xscale(xscale)
    ax.set(xlabel=xlabel, ylabel="test accuracy", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
