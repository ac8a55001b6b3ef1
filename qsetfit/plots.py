"""Plots people would rather look at than read: learning curves and engine comparisons (PNG, Agg)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from qsetfit.persistence import atomic_write_bytes


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def learning_curve(history: list[dict[str, Any]], path: Path) -> None:
    """Loss and accuracy per epoch (train and validation) side by side."""
    if not history:
        return
    plt = _figure()
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
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
    _save(fig, path, plt)


def bar_chart(labels: list[str], values: list[float], path: Path, *, title: str, ylabel: str,
              errors: list[float] | None = None) -> None:
    """One bar per engine/backend, with optional error bars."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(labels)), 3.5))
    ax.bar(labels, values, yerr=errors, capsize=4, color="#4c72b0")
    ax.set(title=title, ylabel=ylabel, ylim=(0, 1.02))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _save(fig, path, plt)


def _save(fig: Any, path: Path, plt: Any) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
