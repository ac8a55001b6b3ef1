"""What a screening study writes (bench/screening_report.py): main effects against scipy, the winner, tables."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from qsetfit.bench.screening_report import _csv, best_point, main_effects, markdown, trials_table
from qsetfit.bench.study import Study


def test_main_effects_and_the_winner_follow_validation_only():
    study = Study(data="demo", factors={"a": [0, 1]} if False else {"qubits": [2, 3]}, seeds=[0, 1])
    rows = [{"status": "ok", "point_index": i, "point": {"qubits": q}, "seed": s, "validation_accuracy": v,
             "test_accuracy": t, "parameters": 10, "head": {}, "training": {}}
            for i, q, s, v, t in [(0, 2, 0, 0.6, 0.9), (0, 2, 1, 0.7, 0.9), (1, 3, 0, 0.8, 0.1), (1, 3, 1, 0.9, 0.1)]]
    effects = {e["level"]: e for e in main_effects(study, rows)}
    assert effects[2]["effect"] == pytest.approx(-0.1) and effects[3]["effect"] == pytest.approx(0.1)
    # 95% t-interval of two values 0.8, 0.9: t(0.975, 1) * std / sqrt(2)
    assert effects[3]["ci95"] == pytest.approx(12.7062 * np.std([0.8, 0.9], ddof=1) / math.sqrt(2), rel=1e-4)
    assert best_point(rows)["point"] == {"qubits": 3}  # despite its worse test accuracy


def _rows():
    """Two points x two seeds, one failed trial; validation accuracies chosen by hand."""
    rows = [{"id": f"t{i}", "status": "ok", "reason": "", "point_index": p, "point": {"qubits": q}, "seed": s,
             "validation_accuracy": v, "test_accuracy": t, "parameters": n, "best_epoch": 1, "seconds": sec,
             "head": {"qubits": q, "layers": 1}, "training": {"epochs": 2, "seed": 99}}
            for i, (p, q, s, v, t, n, sec) in enumerate([(0, 2, 0, 0.70, 0.6, 20, 1.0), (0, 2, 1, 0.80, 0.6, 20, 3.0),
                                                        (1, 3, 0, 0.75, 0.9, 30, 2.0), (1, 3, 1, 0.75, 0.9, 30, 2.0)])]
    rows.append({"id": "t4", "status": "failed", "reason": "boom", "point_index": 1, "point": {"qubits": 3},
                 "seed": 2, "head": None, "training": None})
    return rows


def test_main_effects_equal_scipy_t_intervals_and_ignore_failed_trials():
    from scipy import stats as sps

    study = Study(data="demo", factors={"qubits": [2, 3]}, seeds=[0, 1, 2])
    effects = {e["level"]: e for e in main_effects(study, _rows())}
    low = sps.t.interval(0.95, 1, loc=0.75, scale=sps.sem([0.70, 0.80]))  # scipy's own t-interval of the mean
    assert effects[2]["ci95"] == pytest.approx((low[1] - low[0]) / 2)
    assert effects[2]["trials"] == effects[3]["trials"] == 2 and effects[3]["ci95"] == 0.0
    assert effects[2]["effect"] == pytest.approx(0.0) == effects[3]["effect"]  # both means equal the grand mean
    assert best_point(_rows())["point"] == {"qubits": 2}  # a tie on validation: fewer parameters win
    assert best_point([r | {"status": "failed"} for r in _rows()]) is None and main_effects(study, []) == []


def test_trials_csv_holds_every_trial_with_its_knobs_and_no_seed_knob():
    study = Study(data="demo", factors={"qubits": [2, 3]})
    table = list(csv.DictReader(io.StringIO(_csv(trials_table(study, _rows())).decode())))
    assert [r["id"] for r in table] == ["t0", "t1", "t2", "t3", "t4"]
    assert table[2]["qubits"] == "3" and table[2]["epochs"] == "2" and table[4]["reason"] == "boom"
    assert table[4]["epochs"] == "" and [r["seed"] for r in table] == ["0", "1", "0", "1", "2"]  # not the knob 99


def test_markdown_counts_trials_and_names_the_winner():
    study = Study(data="demo", factors={"qubits": [2, 3]}, seeds=[0, 1, 2])
    rows = _rows()
    text = markdown(study, rows, main_effects(study, rows), best_point(rows))
    assert "(2 points x 3 seed(s) = 5 trials: 4 ok, 1 failed, 0 skipped as impossible)" in text
    assert "2.0 s per trial on one thread (median 2.0 s)" in text
    assert "| qubits | 2 | 2 | 75.00 | +0.00 | ± " in text and "| qubits | 3 | 2 | 75.00 | +0.00 | ± 0.00 |" in text
    assert '**Best point** (#0, mean validation 75.00% over seeds [0, 1], test 60.00%' in text
