"""qsetfit.Trainer: setfit's shape (model=, args=, train_dataset=, eval_dataset=) over datasets.Dataset or ours."""

from __future__ import annotations

import pytest

import qsetfit
from qsetfit import HeadConfig, QSetFitError, QSetFitModel, Trainer, TrainingArguments
from qsetfit.data.datasets import Dataset
from qsetfit.training.trainer import as_dataset

datasets = pytest.importorskip("datasets")


def test_datasets_dataset_becomes_ours_with_its_label_names():
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    hf = datasets.Dataset.from_dict({"text": ["good", "bad"], "label": [1, 0]}, features=features)
    assert as_dataset(hf) == Dataset(["good", "bad"], [1, 0], ["negative", "positive"])
    strings = datasets.Dataset.from_dict({"text": ["good", "bad"], "label": ["pos", "neg"]})
    assert as_dataset(strings).label_names == ["neg", "pos"] and as_dataset(strings).labels == [1, 0]
    with pytest.raises(QSetFitError, match="'text' and 'label' columns"):
        as_dataset(datasets.Dataset.from_dict({"sentence": ["x"], "label": [0]}))


def test_trainer_trains_and_evaluates_a_model(tmp_path):
    hf = datasets.Dataset.from_dict({"text": ["a good film", "a great movie", "an awful film", "a dull movie"],
                                     "label": [1, 1, 0, 0]})
    model = QSetFitModel(HeadConfig.preset("tiny", classes=2), cache_dir=tmp_path)
    trainer = Trainer(model=model, args=TrainingArguments(epochs=2, batch_size=2), train_dataset=hf, eval_dataset=hf)
    result = trainer.train(progress=False)
    assert len(result.history) == 2 and trainer.evaluate()["n"] == 4
    assert qsetfit.HeadTrainer is qsetfit.training.head_trainer.Trainer  # the embedding-level loop, under its own name
