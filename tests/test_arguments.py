"""Training knobs (training/arguments.py): validation, presets and the JSON round trip."""

from __future__ import annotations

import json

import pytest

from qsetfit import QSetFitError
from qsetfit.training.arguments import TrainingArguments


@pytest.mark.parametrize("values, message", [
    ({"epochs": 0}, "epochs must be >= 1"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"learning_rate": 0.0}, "learning_rate"),
    ({"learning_rate": float("nan")}, "learning_rate"),
    ({"weight_decay": -1e-3}, "weight_decay"),
    ({"weight_decay": float("inf")}, "weight_decay"),
    ({"max_grad_norm": 0.0}, "max_grad_norm"),
    ({"schedule": "step"}, "schedule must be one of"),
    ({"warmup_steps": -1}, "warmup_steps and train_shots"),
    ({"train_shots": -5}, "warmup_steps and train_shots"),
    ({"train_trajectories": 0}, "train_trajectories"),
    ({"patience": 0}, "patience"),
    ({"train_noise": "depolarizing-1e-3", "engine": "aer-exact"}, "train_noise runs module 2 on the noisy torch"),
])
def test_each_bad_knob_is_refused_by_name(values, message):
    with pytest.raises(QSetFitError, match=message):
        TrainingArguments(**values)


def test_the_boundaries_are_accepted():
    args = TrainingArguments(epochs=1, batch_size=1, weight_decay=0.0, warmup_steps=0, patience=1,
                             train_trajectories=1, train_noise="x", engine="torch-float32", max_grad_norm=1e-9)
    assert args.epochs == 1 and args.max_grad_norm == 1e-9


def test_presets_ship_their_knobs_under_the_overrides():
    args = TrainingArguments.preset("screened-sst2", epochs=3)
    assert (args.learning_rate, args.batch_size, args.epochs) == (0.05, 32, 3)
    assert TrainingArguments.preset("tiny") == TrainingArguments()  # a preset without knobs: the defaults
    with pytest.raises(QSetFitError, match="unknown preset 'nope'; available presets:"):
        TrainingArguments.preset("nope")


def test_to_dict_is_plain_json_and_from_dict_rebuilds_it():
    args = TrainingArguments(epochs=4, patience=2, max_grad_norm=1.5, schedule="linear")
    assert TrainingArguments.from_dict(json.loads(json.dumps(args.to_dict()))) == args
    with pytest.raises(QSetFitError, match="unknown training argument 'epoch'; did you mean 'epochs'"):
        TrainingArguments.from_dict({"epoch": 3})


def test_training_arguments_errors():
    with pytest.raises(QSetFitError, match="did you mean 'learning_rate'"):
        TrainingArguments.from_dict({"learning_rat": 0.1})
    with pytest.raises(QSetFitError, match="schedule"):
        TrainingArguments(schedule="exp")
