"""QSetFitModel and run directories: round trips, bad data, no pickles, atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qsetfit import HeadConfig, QSetFitError
from qsetfit.data.datasets import Dataset
from qsetfit.modeling import QSetFitModel
from qsetfit.io.persistence import atomic_write_bytes
from qsetfit.training.arguments import TrainingArguments

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(epochs=2, batch_size=16, learning_rate=0.05)


@pytest.fixture(scope="module")
def trained(small_splits, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    model = QSetFitModel(HeadConfig.preset("tiny"))
    model.fit(small_splits.train, small_splits.validation, args=TrainingArguments(**TINY), run_dir=run,
              progress=False)
    return model, run


def test_run_directory_layout(trained):
    _, run = trained
    for name in ("config.json", "head.safetensors", "circuit.qpy", "metrics.json", "history.csv",
                 "learning_curve.png", "checkpoint/checkpoint.safetensors"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["label_names"] == ["negative", "positive"] and config["head"]["qubits"] == 4


def test_save_load_predict_identical(trained, small_splits):
    model, run = trained
    texts = small_splits.test.texts
    loaded = QSetFitModel.load(run)
    assert np.array_equal(model.predict_proba(texts), loaded.predict_proba(texts))
    assert loaded.predict(texts[:3]) == model.predict(texts[:3])
    assert set(loaded.predict(texts)) <= {"negative", "positive"}


def test_saved_circuit_is_the_head_circuit(trained):
    from qiskit import qpy

    model, run = trained
    with open(run / "circuit.qpy", "rb") as fh:
        circuit = qpy.load(fh)[0]
    assert circuit == model.head.quantum.head_circuit.circuit


def test_evaluate_and_unseen_labels(trained, small_splits):
    model, _ = trained
    metrics = model.evaluate(small_splits.test)
    assert 0 <= metrics["accuracy"] <= 1 and metrics["n"] == len(small_splits.test)
    alien = Dataset(["fine", "meh"], [0, 1], ["positive", "neutral"])
    with pytest.raises(QSetFitError, match=r"\['neutral'\] were never seen in training"):
        model.evaluate(alien)


def test_bad_training_data(small_splits):
    model = QSetFitModel(HeadConfig.preset("tiny"))
    one_class = Dataset(["good", "great"], [1, 1], ["negative", "positive"])
    with pytest.raises(QSetFitError, match="single class"):
        model.fit(one_class, args=TrainingArguments(epochs=1), progress=False)
    three = Dataset(["a", "b", "c"], [0, 1, 2], ["x", "y", "z"])
    with pytest.raises(QSetFitError, match="3 classes.*classes=2"):
        model.fit(three, args=TrainingArguments(epochs=1), progress=False)
    with pytest.raises(QSetFitError, match="non-empty"):
        Dataset(["ok", " "], [0, 1], ["a", "b"])


def test_load_errors(tmp_path):
    with pytest.raises(QSetFitError, match="does not exist"):
        QSetFitModel.load(tmp_path / "nope")
    with pytest.raises(QSetFitError, match="this run did not finish"):
        QSetFitModel.load(tmp_path)
    (tmp_path / "complete.json").write_text("{}")
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(QSetFitError, match="not valid JSON"):
        QSetFitModel.load(tmp_path)


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    atomic_write_bytes(target, b"old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_no_pickle_anywhere_in_the_package():
    source = "\n".join(p.read_text() for p in (ROOT / "qsetfit").rglob("*.py"))
    for banned in ("import pickle", "torch.load(", "joblib", "allow_pickle=True"):
        assert banned not in source, banned


def test_import_has_no_side_effects():
    code = ("import logging, os; before = (list(logging.root.handlers), dict(os.environ)); import qsetfit; "
            "assert (list(logging.root.handlers), dict(os.environ)) == before; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "table.md", b"| a |")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "table.md").stat().st_mode) == 0o644  # not mkstemp's 0600


def _copy_run(run: Path, dest: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run, dest, ignore=shutil.ignore_patterns("checkpoint")))


def test_edited_config_json_is_refused_clearly(trained, tmp_path):
    from qsetfit.modeling import CONFIG_KEYS

    _, run = trained
    config = json.loads((run / "config.json").read_text())
    assert set(config) <= set(CONFIG_KEYS)  # save() and load() agree on the keys
    unknown = _copy_run(run, tmp_path / "unknown")
    (unknown / "config.json").write_text(json.dumps(config | {"lables": ["a", "b"]}))
    with pytest.raises(QSetFitError, match=r"unknown key in .*config.json: 'lables'; did you mean 'label_names'"):
        QSetFitModel.load(unknown)
    reshaped = _copy_run(run, tmp_path / "reshaped")
    head = config["head"] | {"layers": config["head"]["layers"] + 1}
    (reshaped / "config.json").write_text(json.dumps(config | {"head": head}))
    with pytest.raises(QSetFitError, match=r"head.safetensors does not match .*config.json: .* has shape"):
        QSetFitModel.load(reshaped)


def test_predict_refuses_empty_texts_and_fit_an_empty_dataset(trained):
    model, _ = trained
    with pytest.raises(QSetFitError, match=r"text 1 is empty \(' '\); predict needs a non-empty string"):
        model.predict(["fine", " "])
    with pytest.raises(QSetFitError, match="the training Dataset is empty"):
        QSetFitModel(HeadConfig.preset("tiny")).fit(Dataset([], [], ["a", "b"]))


def test_a_run_whose_saved_circuit_differs_from_the_rebuilt_one_is_refused(tmp_path):
    from qiskit import QuantumCircuit

    from qsetfit.io import persistence

    data = Dataset(["a good film", "a great movie", "an awful film", "a terrible movie"], [1, 1, 0, 0],
                   ["negative", "positive"])
    model = QSetFitModel(HeadConfig.preset("tiny", classes=2), cache_dir=tmp_path / "cache")
    model.fit(data, data, args=TrainingArguments(epochs=1, batch_size=4), run_dir=tmp_path / "run", progress=False)
    QSetFitModel.load(tmp_path / "run")  # the saved circuit is the rebuilt one
    other = QuantumCircuit(model.config.qubits)
    other.h(0)
    persistence.write_circuit(tmp_path / "run" / persistence.CIRCUIT, other)
    with pytest.raises(QSetFitError, match="differs from the circuit this qsetfit builds"):
        QSetFitModel.load(tmp_path / "run")
