"""The demo script (demo.py): trains once, evaluates the same run on every demo backend, prints one table."""

from __future__ import annotations

from types import SimpleNamespace

from qsetfit import QSetFitError, demo, workflow
from qsetfit.bench.stats import accuracy_ci


def test_the_demo_evaluates_every_backend_and_reports_an_unavailable_one(monkeypatch, tmp_path, capsys):
    calls = {}

    def train(data, out, *, preset, args):
        calls["train"] = (data, out, preset, args.epochs, args.batch_size)
        return SimpleNamespace(metrics={"parameters": {"total": 123}, "best_epoch": 2,
                                        "best_validation": {"accuracy": 0.8}})

    def evaluate(run, *, backends):
        calls.setdefault("evaluate", []).extend(backends)
        if backends == ["aer-shots"]:
            raise QSetFitError("no shots today")
        return [{"accuracy": 0.75, "n": 400, "loss": 0.5}]

    monkeypatch.setattr(workflow, "train", train)
    monkeypatch.setattr(workflow, "evaluate", evaluate)
    monkeypatch.setenv("COLUMNS", "240")  # rich wraps table cells to the terminal width
    demo.main(["--out", str(tmp_path / "run"), "--epochs", "2"])
    out = capsys.readouterr().out
    assert calls["train"] == ("demo", tmp_path / "run", "paper-10q-single", 2, 16)
    assert calls["evaluate"] == list(demo.DEMO_BACKENDS)
    assert "123 parameters, best epoch 2" in out and "unavailable: no shots today" in out
    assert out.count("0.7500") == len(demo.DEMO_BACKENDS) - 1
    assert f"{accuracy_ci(0.75, 400):.4f}" in out  # the 95% interval of 75% on 400 sentences
