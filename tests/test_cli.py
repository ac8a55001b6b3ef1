"""The qsetfit CLI: exit codes, JSON contracts, one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from qsetfit.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    result = runner.invoke(app, ["train", "--data", "demo", "--preset", "tiny", "--epochs", "1", "--out", str(out),
                                 "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert 0 <= metrics["test"]["accuracy"] <= 1
    return out


def test_evaluate_json_holds_accuracy(run_dir):
    result = runner.invoke(app, ["evaluate", str(run_dir), "--backend", "torch", "--json"])
    assert result.exit_code == 0, result.output
    assert 0 <= json.loads(result.stdout)["accuracy"] <= 1


def test_predict_json_contract(run_dir):
    result = runner.invoke(app, ["predict", str(run_dir), "Lovely food.", "Awful service.", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["text"] for r in rows] == ["Lovely food.", "Awful service."]
    for r in rows:
        assert r["label"] in ("negative", "positive")
        assert sum(r["probabilities"].values()) == pytest.approx(1.0)


def test_backends_lists_torch():
    result = runner.invoke(app, ["backends", "--json"])
    assert result.exit_code == 0
    assert "torch" in [r["name"] for r in json.loads(result.stdout)]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["evaluate", "/nonexistent/run"], "does not exist"),
        (["train", "--data", "/nonexistent.csv", "--out", "OUT"], "nonexistent.csv"),
        (["train", "--data", "demo", "--preset", "nope", "--out", "OUT"], "unknown preset 'nope'"),
        (["train", "--data", "demo", "--connectivity", "20", "--out", "OUT"], "connectivity must be in"),
        (["train", "--data", "demo", "--backend", "aer-nope", "--epochs", "1", "--out", "OUT"], "aer-nope"),
        (["train", "--data", "demo", "--out", "OUT", "--resume"], "nothing to resume"),
    ],
)
def test_errors_are_one_line_and_exit_1(argv, message, tmp_path):
    argv = [str(tmp_path / "o") if a == "OUT" else a for a in argv]
    result = runner.invoke(app, argv)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_existing_run_is_not_overwritten(run_dir):
    result = runner.invoke(app, ["train", "--data", "demo", "--preset", "tiny", "--out", str(run_dir)])
    assert result.exit_code == 1 and "--resume" in result.output


def test_run_records_an_absolute_data_path(small_splits, tmp_path, monkeypatch):
    from tests.helpers import write_splits

    write_splits(small_splits, tmp_path / "work" / "data")
    monkeypatch.chdir(tmp_path / "work")
    result = runner.invoke(app, ["train", "--data", "data", "--preset", "tiny", "--epochs", "1", "--out", "run"])
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path)  # elsewhere: evaluate must still find the run's test split without --data
    result = runner.invoke(app, ["evaluate", "work/run", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n"] == len(small_splits.test)


@pytest.mark.parametrize("argv", [["--threads", "0", "backends"], ["backends", "--threads", "-1"]])
def test_threads_below_one_is_a_usage_error_not_a_traceback(argv):
    result = runner.invoke(app, argv)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "Invalid value for '--threads'" in result.output


def test_global_options_are_accepted_after_the_command(monkeypatch):
    import torch

    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)
    result = runner.invoke(app, ["backends", "--json", "--threads", "3", "--debug"])
    assert result.exit_code == 0, result.output
    assert seen == [3] and "torch" in [r["name"] for r in json.loads(result.stdout)]


@pytest.mark.parametrize("flag", ["--lr", "--weight-decay"])
@pytest.mark.parametrize("value", ["inf", "nan"])
def test_non_finite_training_numbers_are_refused_as_arguments(flag, value, tmp_path):
    result = runner.invoke(app, ["train", "--data", "demo", "--out", str(tmp_path / "o"), flag, value])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"({flag}) must be a finite number" in result.output


def test_json_output_turns_off_library_progress_bars(run_dir):
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
    from transformers.utils import logging as hf_logging

    try:
        result = runner.invoke(app, ["predict", str(run_dir), "Quiet, please.", "--json"])
        assert result.exit_code == 0, result.output
        assert not hf_logging.is_progress_bar_enabled() and are_progress_bars_disabled()
    finally:
        hf_logging.enable_progress_bar()
        enable_progress_bars()
