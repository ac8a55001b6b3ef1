"""The screening study: trials on Ray equal to a sequential run, resume (its design: test_study.py; its
reports: test_screening_report.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qsetfit import QSetFitError
from qsetfit.bench import screening
from qsetfit.bench.screening import Study, screen

TOY = {"data": "demo", "protocol": "given", "seeds": [0], "final_seeds": 0,
       "factors": {"qubits": [2, 3], "learning_rate": [0.02, 0.05]},
       "fixed": {"epochs": 1, "reuploads": 1, "layers": 1, "batch_size": 64}}


def _toml(path: Path, study: dict) -> Path:
    lines = [f"{k} = {json.dumps(v)}" for k, v in study.items() if not isinstance(v, dict)]
    for table in ("factors", "fixed"):
        lines += [f"[{table}]"] + [f"{k} = {json.dumps(v)}" for k, v in study.get(table, {}).items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_unknown_study_key_names_the_nearest(tmp_path):
    with pytest.raises(QSetFitError, match="did you mean 'design'"):
        Study.from_toml(_toml(tmp_path / "s.toml", {"data": "demo", "desing": "full", "factors": {"qubits": [2]}}))


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
