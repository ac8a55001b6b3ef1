"""``qsetfit.Trainer``: the setfit-shaped trainer, ``Trainer(model=, args=, train_dataset=, eval_dataset=)``.

It trains a ``QSetFitModel`` on a ``datasets.Dataset`` (``text`` and ``label`` columns) or on our ``Dataset``;
the embedding-level loop of ``qsetfit.training.head_trainer`` stays available as ``HeadTrainer``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qsetfit.data.datasets import Dataset
from qsetfit.errors import QSetFitError
from qsetfit.modeling import QSetFitModel
from qsetfit.training.head_trainer import TrainResult
from qsetfit.training.arguments import TrainingArguments


def as_dataset(data: Any, label_names: list[str] | None = None) -> Dataset:
    """Our ``Dataset`` from itself or from a ``datasets.Dataset`` with ``text`` and ``label`` columns.

    Integer labels keep their ids (names from a ``ClassLabel`` feature, else ``label_names``, else "0".."K-1");
    string labels become ids in sorted order (or in ``label_names`` order when given).
    """
    if isinstance(data, Dataset):
        return data
    columns = getattr(data, "column_names", None)
    if columns is None or "text" not in columns or "label" not in columns:
        raise QSetFitError(
            f"expected a datasets.Dataset with 'text' and 'label' columns, got columns {columns}; "
            "rename them with dataset.rename_column(...)"
        )
    texts, labels = list(data["text"]), list(data["label"])
    if labels and all(isinstance(y, str) for y in labels):
        names = label_names or sorted(set(labels))
        return Dataset(texts, [names.index(y) for y in labels], names)
    feature = getattr(data, "features", {}).get("label")
    names = list(getattr(feature, "names", None) or label_names or [str(i) for i in range(max(labels) + 1)])
    return Dataset(texts, [int(y) for y in labels], names)


class Trainer:
    """Trains a ``QSetFitModel`` the setfit way: optional body tuning (phase 1), then the quantum head.

    Args:
        model: the model to train.
        args: the head's training arguments (default ``TrainingArguments()``).
        train_dataset: a ``datasets.Dataset`` (text/label) or a ``qsetfit.data.datasets.Dataset``.
        eval_dataset: the model-selection set (same forms), optional.
        body_tuning: "contrastive" or ``BodyTuningArguments`` to tune the body first (None: frozen body).
        run_dir: where the run is saved (checkpoints, tuned body); None keeps it in memory.
    """

    def __init__(
        self,
        model: QSetFitModel,
        args: TrainingArguments | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        *,
        body_tuning: Any = None,
        run_dir: str | Path | None = None,
    ) -> None:
        if not isinstance(model, QSetFitModel):
            raise QSetFitError(f"model must be a QSetFitModel, got {type(model).__name__}")
        if train_dataset is None:
            raise QSetFitError("Trainer needs train_dataset (a datasets.Dataset with text/label columns)")
        self.model, self.args = model, args or TrainingArguments()
        self.train_dataset = as_dataset(train_dataset)
        names = self.train_dataset.label_names
        self.eval_dataset = as_dataset(eval_dataset, names) if eval_dataset is not None else None
        self.body_tuning, self.run_dir = body_tuning, run_dir

    def train(self, *, resume: bool = False, progress: bool = True) -> TrainResult:
        """Fit the model (selecting the epoch on ``eval_dataset``)."""
        return self.model.fit(
            self.train_dataset,
            self.eval_dataset,
            args=self.args,
            run_dir=self.run_dir,
            resume=resume,
            progress=progress,
            body_tuning=self.body_tuning,
        )

    def evaluate(self, dataset: Any = None) -> dict[str, Any]:
        """Accuracy and loss on ``dataset`` (default ``eval_dataset``)."""
        data = as_dataset(dataset, self.model.label_names) if dataset is not None else self.eval_dataset
        if data is None:
            raise QSetFitError("nothing to evaluate: pass a dataset or give the Trainer an eval_dataset")
        return self.model.evaluate(data)
