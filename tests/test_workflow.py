"""What the CLI commands do (workflow.py): a training run is saved once, with every metric, marker last."""

from __future__ import annotations

import json

from qsetfit import workflow
from qsetfit.io import persistence
from qsetfit.io.rundir import COMPLETE
from qsetfit.training.arguments import TrainingArguments
from tests.helpers import write_splits


def test_train_writes_metrics_once_with_validation_and_test_metrics(small_splits, tmp_path, monkeypatch):
    """metrics.json was written by the save inside fit and again with the data and test metrics: a crash
    between the two left validation-only metrics in a folder a second write then had to complete."""
    data = write_splits(small_splits, tmp_path / "data")
    writes: list[tuple[str, bytes]] = []
    original = persistence.atomic_write_bytes

    def record(path, payload):
        writes.append((path.name, payload))
        original(path, payload)

    monkeypatch.setattr(persistence, "atomic_write_bytes", record)
    outcome = workflow.train(str(data), tmp_path / "run", preset="tiny", progress=False,
                             args=TrainingArguments(epochs=1, batch_size=16, learning_rate=0.05))
    names = [name for name, _ in writes]
    assert names.count(persistence.METRICS) == 1 and names.count(COMPLETE) == 1
    assert names.index(COMPLETE) > names.index(persistence.METRICS)  # the marker follows the metrics
    written = json.loads(dict(writes)[persistence.METRICS])
    assert {"best_epoch", "best_validation", "parameters", "data", "test"} <= set(written)
    assert written["data"]["test"] == written["test"]["n"] == len(small_splits.test)
    assert written == json.loads((tmp_path / "run" / persistence.METRICS).read_text())
    assert outcome.metrics["test"]["accuracy"] == written["test"]["accuracy"]
