"""Run directories: one training at a time, a completion marker, and resumes that cannot mix runs."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from typer.testing import CliRunner

from qsetfit import HeadConfig, HybridHead, QSetFitError
from qsetfit.io import rundir
from qsetfit.cli import app
from qsetfit.modeling import QSetFitModel
from qsetfit.training.head_trainer import CHECKPOINT_FILE, Trainer
from qsetfit.training.arguments import TrainingArguments

runner = CliRunner()
TINY = HeadConfig.preset("tiny")
ARGS = TrainingArguments(epochs=1, batch_size=16)


@pytest.fixture(scope="module")
def finished(small_splits, tmp_path_factory):
    """A tiny run trained for one epoch through QSetFitModel.fit (checkpoint kept, marker written)."""
    out = tmp_path_factory.mktemp("rundir") / "run"
    QSetFitModel(TINY, label_names=small_splits.label_names).fit(
        small_splits.train, small_splits.validation, args=ARGS, run_dir=out, progress=False)
    return out


def test_a_finished_run_has_the_marker_and_no_lock(finished):
    assert (finished / rundir.COMPLETE).is_file()
    assert not (finished / rundir.LOCK).exists() and not (finished / rundir.LOCK_INFO).exists()


def test_resume_with_other_data_is_refused(finished, small_splits):
    other = small_splits.train.subset(range(1, len(small_splits.train)))
    with pytest.raises(QSetFitError, match=r"trained with another training data \(hash of texts and labels\);"):
        QSetFitModel(TINY, label_names=small_splits.label_names).fit(
            other, small_splits.validation, args=ARGS, run_dir=finished, resume=True, progress=False)
    assert json.loads((finished / "metrics.json").read_text())["best_epoch"] == 1  # left untouched


def test_resume_with_another_preset_is_refused_not_a_state_dict_error(finished, small_splits):
    wider = HeadConfig.preset("tiny", qubits=5, encoder_qubits=5)
    with pytest.raises(QSetFitError, match=r"another head config \(.*encoder_qubits 4 -> 5, qubits 4 -> 5"):
        QSetFitModel(wider, label_names=small_splits.label_names).fit(
            small_splits.train, small_splits.validation, args=ARGS, run_dir=finished, resume=True, progress=False)


def test_identity_mismatch_names_what_differs():
    saved = {"data": "a", "validation": None, "body": "m1", "head": {"qubits": 10, "layers": 2}}
    assert rundir.identity_mismatch(saved, dict(saved)) is None
    found = rundir.identity_mismatch(saved, saved | {"body": "m2", "head": {"qubits": 4, "layers": 2, "skip": True}})
    assert found == "body ('m1' -> 'm2'); head config (qubits 10 -> 4, skip None -> True)"


def _toy(n=24, seed=0):
    x = torch.randn(n, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return x, (x[:, 0] > 0).long()


def test_a_checkpoint_without_identity_of_another_width_is_one_clear_error(tmp_path):
    Trainer(HybridHead(TINY), ARGS, _toy(), checkpoint_dir=tmp_path, progress=False).train()
    wide = HybridHead(HeadConfig.preset("tiny", qubits=5, encoder_qubits=5))
    with pytest.raises(QSetFitError, match="holds a head of another shape"):
        Trainer(wide, ARGS, _toy(), checkpoint_dir=tmp_path, progress=False).train(resume=True)


def test_a_damaged_checkpoint_names_the_path_and_the_fix(tmp_path):
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"\x00garbage")
    with pytest.raises(QSetFitError, match=r"checkpoint .*checkpoint.safetensors is damaged .*new --out"):
        Trainer(HybridHead(TINY), ARGS, _toy(), checkpoint_dir=tmp_path, progress=False).train(resume=True)


def test_a_second_training_into_a_held_folder_fails_at_once(tmp_path, monkeypatch):
    out = tmp_path / "run"
    with rundir.run_lock(out):
        monkeypatch.setattr(rundir, "_HELD", {})  # as if another process held it: only the OS lock remains
        result = runner.invoke(app, ["train", "--data", "demo", "--preset", "tiny", "--epochs", "1", "--out", str(out)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "is in use by another training (pid " in result.output and "choose another --out" in result.output
    assert not out.exists()  # released, and the empty folder it created is gone


def test_a_stale_lock_is_reported_and_taken_over(tmp_path, caplog):
    (tmp_path / rundir.LOCK_INFO).write_text(json.dumps({"pid": 2**22 + 7, "host": "elsewhere", "since": 0}))
    with caplog.at_level(logging.WARNING, logger="qsetfit.io.rundir"), rundir.run_lock(tmp_path):
        assert json.loads((tmp_path / rundir.LOCK_INFO).read_text())["pid"] > 0
    assert "stale lock of pid 4194311" in caplog.text
    assert not (tmp_path / rundir.LOCK_INFO).exists()


def test_a_run_killed_during_its_final_save_says_it_did_not_finish(small_splits, tmp_path, monkeypatch):
    from qsetfit.io import persistence

    out = tmp_path / "run"
    original = persistence.write_json

    def die_on_metrics(path, value):
        if path.name == persistence.METRICS:
            raise KeyboardInterrupt
        original(path, value)

    monkeypatch.setattr(persistence, "write_json", die_on_metrics)
    with pytest.raises(KeyboardInterrupt):
        QSetFitModel(TINY, label_names=small_splits.label_names).fit(
            small_splits.train, small_splits.validation, args=ARGS, run_dir=out, progress=False)
    monkeypatch.setattr(persistence, "write_json", original)
    for argv in (["evaluate", str(out)], ["predict", str(out), "Fine."]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "this run did not finish" in result.output and "--resume" in result.output
