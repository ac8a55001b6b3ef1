"""Plots people would rather look at than read: learning curves, engine comparisons, energy by width (PNG).

Figures are built with ``matplotlib.figure.Figure``, not pyplot: no global backend is switched (a notebook keeps
its inline plots) and nothing needs closing.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from qsetfit.io.persistence import atomic_write_bytes


def new_figure(*, figsize: tuple[float, float], ncols: int = 1) -> tuple[Any, Any]:
    """A pyplot-free ``Figure`` and its axes (one, or a tuple of ``ncols``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(1, ncols)


def learning_curve(history: list[dict[str, Any]], path: Path) -> None:
    """Loss and accuracy per epoch (train and validation) side by side."""
    if not history:
        return
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = new_figure(figsize=(9, 3.5), ncols=2)
    for key, label in (("train", "train"), ("val", "validation")):
        if f"{key}_loss" in history[0]:
            ax_loss.plot(epochs, [row[f"{key}_loss"] for row in history], marker=".", label=label)
            ax_acc.plot(epochs, [row[f"{key}_accuracy"] for row in history], marker=".", label=label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    save_png(fig, path)


def bar_chart(
    labels: list[str], values: list[float], path: Path, *, title: str, ylabel: str, errors: list[float] | None = None
) -> None:
    """One bar per engine/backend, with optional error bars."""
    fig, ax = new_figure(figsize=(max(4, 1.2 * len(labels)), 3.5))
    ax.bar(labels, values, yerr=errors, capsize=4, color="#4c72b0")
    ax.set(title=title, ylabel=ylabel, ylim=(0, 1.02))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_png(fig, path)


def save_png(fig: Any, path: Path) -> None:
    """Write ``fig`` as a PNG, atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    atomic_write_bytes(Path(path), buf.getvalue())


def energy_plot(result: dict[str, Any], path: Path) -> None:
    """Log-scale J per 1,000 inferences by width: filled markers measured/transpiled, hollow extrapolated."""
    fig, ax = new_figure(figsize=(7.5, 4.5))
    colours = {"cpu": "#4c72b0", "cuda": "#55a868", "qpu": "#c44e52"}
    names = {"cpu": "CPU statevector", "cuda": "GPU statevector", "qpu": f"QPU model ({result['backend']})"}
    for curve in result["curves"]:
        pts = [row[curve] for row in result["rows"]]
        ax.plot([p["qubits"] for p in pts], [p["joules_per_1000"] for p in pts], color=colours[curve], lw=1)
        for firm in (True, False):
            part = [p for p in pts if (p["method"] in ("measured", "transpiled", "declared")) == firm]
            if part:
                ax.plot(
                    [p["qubits"] for p in part],
                    [p["joules_per_1000"] for p in part],
                    "o",
                    ms=4,
                    color=colours[curve],
                    mfc=colours[curve] if firm else "none",
                    label=f"{names[curve]}, {'/'.join(sorted({p['method'] for p in part}))}",
                )
    for device, q in result["break_even_qubits"].items():
        if q is not None:
            ax.axvline(q, ls=":", color=colours[device])
            ax.annotate(
                f"break-even ({device}) {q:.1f} qubits",
                (q, 0.5),
                xycoords=("data", "axes fraction"),
                rotation=90,
                ha="right",
                va="center",
                fontsize=8,
            )
    ax.set_yscale("log")
    ax.set(
        xlabel="qubits (module 2 width)",
        ylabel="J per 1,000 inferences",
        title="module 2 inference energy: classical statevector vs QPU",
    )
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
