"""Classical baselines: parameter counts read off fitted sklearn objects, matching widths, the CLI contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC
from typer.testing import CliRunner

from qsetfit.bench.baselines import (
    HIDDEN_GRID,
    BaselineSpec,
    EmbeddedSplits,
    baseline_specs,
    fit_baseline,
    fit_baselines,
    matched_hidden_units,
    mlp_parameters,
    parameter_count,
    run_baselines,
    summarize,
)
from qsetfit.head.circuits import HeadConfig
from qsetfit.errors import QSetFitError
from tests.helpers import write_splits


def blobs(n: int, dim: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Separable Gaussian blobs: class k centred at 2 e_k."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, dim)) * 0.5
    x[np.arange(n), y] += 2.0
    return x, y


@pytest.mark.parametrize("classes", [2, 3])
def test_logreg_count_matches_sklearn_shapes(classes):
    x, y = blobs(60, 7, classes)
    lr = LogisticRegression(max_iter=500).fit(x, y)
    rows = 1 if classes == 2 else classes  # sklearn keeps ONE weight row for two classes
    assert lr.coef_.shape == (rows, 7)
    assert parameter_count(lr) == rows * 7 + rows == mlp_parameters(7, 0, classes)


@pytest.mark.parametrize("classes,hidden", [(2, 5), (3, 4)])
def test_mlp_count_matches_sklearn_arrays(classes, hidden):
    x, y = blobs(60, 6, classes)
    mlp = MLPClassifier(hidden_layer_sizes=(hidden,), solver="lbfgs", max_iter=50, random_state=0).fit(x, y)
    out = 1 if classes == 2 else classes
    assert [c.shape for c in mlp.coefs_] == [(6, hidden), (hidden, out)]
    expected = 6 * hidden + hidden + hidden * out + out
    assert parameter_count(mlp) == expected == mlp_parameters(6, hidden, classes)


@pytest.mark.parametrize("classes", [2, 3])
def test_svc_counts_support_vectors_dual_coefs_and_intercepts(classes):
    x, y = blobs(40, 5, classes)
    svc = SVC().fit(x, y)
    n_sv = svc.support_vectors_.shape[0]
    pairs = classes * (classes - 1) // 2
    assert parameter_count(svc) == n_sv * 5 + (classes - 1) * n_sv + pairs


def test_parameter_count_rejects_other_estimators():
    with pytest.raises(QSetFitError, match="parameter_count knows"):
        parameter_count(object())


@pytest.mark.parametrize("budget,dim,classes", [(886, 384, 2), (886, 768, 2), (1500, 384, 3), (5, 384, 2)])
def test_matched_width_is_nearest(budget, dim, classes):
    h = matched_hidden_units(budget, dim, classes)
    best = min(range(1, 200), key=lambda k: (abs(mlp_parameters(dim, k, classes) - budget), k))
    assert h == best


def test_specs_cover_the_grid_and_the_quantum_sizes():
    config = HeadConfig.preset("paper-14q-multi")
    specs = baseline_specs(384, 2, configs={"paper-14q-multi": config})
    names = [s.name for s in specs]
    assert names[:2] == ["logreg", "svc-rbf"]
    assert [s.hidden for s in specs if s.kind == "mlp" and "matched" not in s.name] == [h for h in HIDDEN_GRID if h]
    (matched,) = [s for s in specs if "matched" in s.name]
    assert matched.hidden == matched_hidden_units(886, 384, 2) == 2
    with pytest.raises(QSetFitError):
        BaselineSpec("bad", "mlp", 0)


def test_fit_baseline_selects_on_validation_and_predicts():
    x, y = blobs(90, 8, 2)
    train, val, test = (x[:50], y[:50]), (x[50:70], y[50:70]), (x[70:], y[70:])
    for spec in baseline_specs(8, 2, configs={}, hidden_grid=(0, 4)):
        r = fit_baseline(spec, train, val, test, seed=0)
        assert r.accuracy > 0.9, spec
        assert r.predictions.shape == (20,)
        assert r.validation_accuracy is not None
        assert set(r.to_row()) >= {"name", "parameters", "accuracy"}


def test_fit_baselines_and_summary_over_seeds():
    rows = []
    for seed in (0, 1):
        x, y = blobs(80, 6, 3, seed=seed)
        split = EmbeddedSplits(x[:40], y[:40], x[40:60], y[40:60], x[60:], y[60:], ["a", "b", "c"], seed)
        rows += fit_baselines(split, [BaselineSpec("logreg", "logreg"), BaselineSpec("mlp-3", "mlp", 3)])
    summary = {r["name"]: r for r in summarize(rows)}
    assert summary["logreg"]["parameters"] == 3 * 6 + 3
    assert summary["mlp-3"]["parameters"] == 6 * 3 + 3 + 3 * 3 + 3
    assert summary["logreg"]["seeds"] == [0, 1] and len(summary["logreg"]["accuracies"]) == 2


def test_run_baselines_on_given_splits(small_splits, tmp_path):
    folder = write_splits(small_splits, tmp_path / "data")
    out = run_baselines(str(folder), protocol="given", seeds=(0,), presets=("tiny",), hidden_grid=(0, 8))
    names = [r["name"] for r in out["rows"]]
    matched = matched_hidden_units(HeadConfig.preset("tiny").num_parameters, 384, 2)
    assert names == ["logreg", "svc-rbf", "mlp-8", f"mlp-{matched}-matched-tiny"]
    lr = out["rows"][0]
    assert lr["parameters"] == 385 and lr["accuracy"] >= 0.75
    assert out["settings"]["split"] == {"train": 48, "validation": 16, "test": 16, "dim": 384}
    json.dumps(out)  # plain JSON


def _app():
    from qsetfit.cli.common import friendly as _friendly
    from qsetfit.cli.bench import register

    app = typer.Typer()
    register(app, _friendly)
    return app


def test_cli_baselines_json(monkeypatch):
    import qsetfit.bench.baselines as baselines

    seen = {}

    def fake(data, **kwargs):
        seen.update(kwargs, data=data)
        return {"rows": [{"name": "logreg", "parameters": 385, "accuracy": 0.9, "accuracy_std": 0.0}],
                "runs": [], "settings": {}}

    monkeypatch.setattr(baselines, "run_baselines", fake)
    result = CliRunner().invoke(_app(), ["baselines", "--data", "d", "--body", "b", "--seeds", "3", "--hidden", "0",
                                         "--hidden", "48", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"][0]["parameters"] == 385
    assert seen["data"] == "d" and seen["body"] == "b" and list(seen["seeds"]) == [0, 1, 2]
    assert list(seen["hidden_grid"]) == [0, 48]


def test_cli_baselines_error_is_one_line():
    result = CliRunner().invoke(_app(), ["baselines", "--data", "/nonexistent/folder.csv"])
    assert result.exit_code == 1
    assert "nonexistent" in result.output and "Traceback" not in result.output
