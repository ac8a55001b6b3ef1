"""Plots people would rather look at than read: learning curves and engine comparisons (PNG).

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


def bar_chart(labels: list[str], values: list[float], path: Path, *, title: str, ylabel: str,
              errors: list[float] | None = None) -> None:
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
