"""Plots write PNGs without touching pyplot's global backend (a notebook keeps its inline plots)."""

from __future__ import annotations

import matplotlib

from qsetfit.bench.plots import bar_chart, learning_curve


def test_plots_write_png_and_leave_the_backend_alone(tmp_path):
    old = matplotlib.get_backend()
    matplotlib.use("svg")  # stands in for a notebook's inline backend
    try:
        _plot_and_check(tmp_path)
    finally:
        matplotlib.use(old)


def _plot_and_check(tmp_path):
    history = [{"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 0.5 + e / 10, "val_loss": 1.2 / e,
                "val_accuracy": 0.5 + e / 12} for e in (1, 2, 3)]
    learning_curve(history, tmp_path / "curve.png")
    bar_chart(["torch", "aer"], [0.8, 0.7], tmp_path / "bars.png", title="t", ylabel="accuracy", errors=[0.0, 0.1])
    assert matplotlib.get_backend() == "svg"
    for name in ("curve.png", "bars.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
