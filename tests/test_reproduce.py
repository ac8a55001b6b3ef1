"""The reproduction: ablation heads and tiny end-to-end runs (its report: test_reproduce_report.py)."""

from __future__ import annotations

import json

import pytest
import torch
import typer
from typer.testing import CliRunner

from qsetfit.head.circuits import HeadConfig
from qsetfit.errors import QSetFitError
from qsetfit.head.hybrid import HybridHead
from tests.helpers import seeded, write_splits
from qsetfit.bench.reproduce import linear_module1, num_parameters, reproduce, torch_methods

TINY = HeadConfig.preset("tiny")


def test_parameter_counts_of_heads_and_ablations():
    q, k, qm, d = TINY.qubits, TINY.classes, TINY.measured, 384
    counts = TINY.parameter_counts()
    assert num_parameters(HybridHead(TINY)) == TINY.num_parameters
    assert num_parameters(HybridHead(TINY, module2=False)) == counts["encoders"] + q * k + k
    linear = linear_module1(TINY)
    assert num_parameters(HybridHead(linear, input_dim=d)) == d * q + q + counts["module2"] + (q + qm) * k + k
    assert linear.parameter_counts(d)["total"] == d * q + q + counts["module2"] + (q + qm) * k + k


@pytest.mark.parametrize("build", [lambda: HybridHead(TINY, seed=1, module2=False),
                                   lambda: HybridHead(linear_module1(TINY), seed=1, input_dim=20)])
def test_ablations_train_every_parameter(build):
    head = build()
    x = torch.randn(6, 20, dtype=torch.float64, generator=seeded())
    logits, loss = head(x, torch.tensor([0, 1, 0, 1, 1, 0]))
    assert logits.shape == (6, 2)
    loss.backward()
    for name, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_ablations_are_seeded():
    x = torch.randn(3, 20, dtype=torch.float64, generator=seeded())
    a, b = (HybridHead(linear_module1(TINY), seed=4, input_dim=20) for _ in range(2))
    assert torch.equal(a(x)[0], b(x)[0])


def test_methods_list_presets_and_ablations():
    names = [m.name for m in torch_methods(["tiny"], 2)]
    assert names == ["tiny", "tiny/no-module2", "tiny/linear-module1"]
    assert [m.name for m in torch_methods(["tiny"], 2, ablations=False)] == ["tiny"]


def test_reproduce_end_to_end_writes_results_and_table(small_splits, tmp_path):
    data = write_splits(small_splits, tmp_path / "data")
    out = tmp_path / "out"
    result = reproduce(str(data), out, presets=("tiny",), seeds=2, epochs=1, hidden_grid=(0, 4), protocol="given",
                       progress=False)
    saved = json.loads((out / "results.json").read_text())
    table = (out / "table.md").read_text()
    assert saved["rows"] == json.loads(json.dumps(result["rows"]))
    names = [r["name"] for r in saved["rows"]]
    assert names[:3] == ["tiny", "tiny/no-module2", "tiny/linear-module1"]
    assert {"logreg", "svc-rbf", "mlp-4"} <= set(names)
    assert all(len(r["accuracies"]) == 2 for r in saved["rows"])
    assert saved["comparison"]["quantum"] == "tiny" and len(saved["comparison"]["mcnemar"]) == 2
    assert not saved["partial"]
    assert "| tiny | quantum | 36 |" in table and "The quantum head" in table
    assert "89.56" not in table  # the paper's numbers are SST-2's: not beside another data set


def test_reproduce_resume_keeps_finished_seeds_and_refuses_other_settings(small_splits, tmp_path):
    data = str(write_splits(small_splits, tmp_path / "data"))
    out = tmp_path / "out"
    options = dict(presets=("tiny",), epochs=1, hidden_grid=(0,), protocol="given")
    first = reproduce(data, out, seeds=1, progress=False, **options)
    assert first["partial"] is False
    resumed = reproduce(data, out, seeds=2, resume=True, progress=False, **options)
    seed0 = [r for r in resumed["runs"] if r["seed"] == 0]
    assert [(r["name"], r["accuracy"], r["correct"]) for r in seed0] == \
        [(r["name"], r["accuracy"], r["correct"]) for r in first["runs"]]
    assert {r["seed"] for r in resumed["runs"]} == {0, 1}
    assert len(resumed["comparison"]["mcnemar"]) == 2  # the per-sentence results of seed 0 came back
    assert all(len(r["correct"]) == len(small_splits.test.texts) for r in resumed["runs"])
    with pytest.raises(QSetFitError, match="training"):
        reproduce(data, out, seeds=2, resume=True, progress=False, **(options | {"epochs": 2}))


def test_cli_reproduce_passes_quick(monkeypatch, tmp_path):
    import qsetfit.bench.reproduce as rep
    from qsetfit.cli.common import friendly as _friendly
    from qsetfit.cli.bench import register

    seen = {}

    def fake(data, out, **kwargs):
        seen.update(kwargs, data=data, out=out)
        return {"table": "| t |", "rows": []}

    monkeypatch.setattr(rep, "reproduce", fake)
    app = typer.Typer()
    register(app, _friendly)
    result = CliRunner().invoke(app, ["reproduce", "--data", "d", "--out", str(tmp_path), "--quick"])
    assert result.exit_code == 0, result.output
    assert seen["quick"] is True and seen["seeds"] is None and seen["epochs"] is None
    assert "| t |" in result.output
