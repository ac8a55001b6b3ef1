"""The ``screen`` command (cli/screen.py): it passes its options to ``screening.screen`` and prints the result."""

from __future__ import annotations

import json
import math

import typer
from typer.testing import CliRunner

from qsetfit.bench import screening
from qsetfit.cli.common import friendly
from qsetfit.cli.screen import register

RESULT = {
    "main_effects": [{"factor": "qubits", "level": 2, "trials": 2, "validation_accuracy": 0.7512, "effect": -0.0125,
                      "ci95": 0.031},
                     {"factor": "qubits", "level": 3, "trials": 1, "validation_accuracy": 0.7762, "effect": 0.0125,
                      "ci95": math.nan}],
    "best": {"point": {"qubits": 3}, "validation_accuracy": 0.7762, "parameters": 36},
    "final": {"table": "| final | table |"}, "trials": ["left out of --json"], "study": {"data": "d"},
}


def _run(monkeypatch, argv):
    seen = {}

    def fake(study, out, **kwargs):
        seen.update(kwargs, study=study, out=out)
        return RESULT

    monkeypatch.setattr(screening, "screen", fake)
    app = typer.Typer()
    register(app, friendly)
    app.command("noop")(lambda: None)  # a second command, so that typer keeps "screen" as a subcommand
    return CliRunner().invoke(app, argv), seen


def test_screen_passes_every_option_through(monkeypatch, tmp_path):
    result, seen = _run(monkeypatch, ["screen", "s.toml", "--out", str(tmp_path), "--workers", "0", "--resume",
                                      "--final-seeds", "3", "--address", "h:1"])
    assert result.exit_code == 0, result.output
    assert (str(seen["study"]), seen["out"], seen["workers"], seen["resume"], seen["final_seeds"],
            seen["address"], seen["progress"]) == ("s.toml", tmp_path, 0, True, 3, "h:1", True)


def test_screen_prints_effects_in_points_and_the_best_point(monkeypatch, tmp_path):
    result, seen = _run(monkeypatch, ["screen", "s.toml", "--out", str(tmp_path)])
    assert seen["workers"] == 2 and seen["resume"] is False and seen["final_seeds"] is None
    text = result.output
    assert "75.12" in text and "-1.25" in text and "± 3.10" in text and "n/a" in text  # NaN interval: n/a
    assert 'best point: {"qubits": 3}; validation 77.62%, 36 parameters' in text and "| final | table |" in text


def test_screen_json_is_the_summary_without_the_trials(monkeypatch, tmp_path):
    result, seen = _run(monkeypatch, ["screen", "s.toml", "--out", str(tmp_path), "--json"])
    summary = json.loads(result.stdout)
    assert seen["progress"] is False and "trials" not in summary and "final" not in summary
    assert summary["final_table"] == "| final | table |" and summary["best"]["parameters"] == 36
