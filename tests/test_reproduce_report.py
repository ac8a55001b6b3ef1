"""What ``qsetfit reproduce`` reports (bench/reproduce_report.py): summary rows, module 2's share, the paired
comparison against scipy, the verdict's wording and the markdown table."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from qsetfit.bench.reproduce_report import (
    PAPER_REPORTED, _is_sst2, compare_best, module2_shares, render_table, summary_rows, verdict,
)


def test_module2_share_is_the_paired_difference_to_the_ablation():
    rows = [{"name": "h", "kind": "quantum", "accuracies": [0.80, 0.90], "seeds": [0, 1]},
            {"name": "h/no-module2", "kind": "ablation", "accuracies": [0.75, 0.80], "seeds": [0, 1]}]
    (share,) = module2_shares(rows)
    assert share["delta_points"] == pytest.approx(7.5) and share["seeds"] == 2
    assert share["delta_std_points"] == pytest.approx(np.std([5.0, 10.0], ddof=1))


def _runs(q_accs, c_accs, *, q_correct=None, c_correct=None):
    runs = []
    for seed, (qa, ca) in enumerate(zip(q_accs, c_accs, strict=True)):
        runs.append({"name": "paper-14q-multi", "kind": "quantum", "parameters": 886, "accuracy": qa, "seed": seed,
                     "correct": np.asarray(q_correct if q_correct is not None else [True])})
        runs.append({"name": "svc-rbf", "kind": "classical", "parameters": 5000, "accuracy": ca, "seed": seed,
                     "correct": np.asarray(c_correct if c_correct is not None else [True])})
    return runs


def _comparison(runs):
    return compare_best(runs, summary_rows(runs))


def test_verdict_when_the_classical_head_wins():
    comp = _comparison(_runs([0.88, 0.89, 0.87], [0.90, 0.91, 0.895]))
    assert comp["difference"] < 0 and comp["t_test"]["p_value"] < 0.05
    text = " ".join(verdict(comp))
    assert "does not win" in text and "beats the best quantum head" in text
    assert "92.70" in text and "+3.14" in text  # the paper's claimed gap next to ours


def test_verdict_when_the_quantum_head_wins():
    comp = _comparison(_runs([0.93, 0.925, 0.935], [0.89, 0.895, 0.90]))
    assert "**The quantum head wins**" in verdict(comp)[0]


def test_verdict_when_nothing_is_significant():
    comp = _comparison(_runs([0.90, 0.88, 0.91], [0.89, 0.90, 0.895]))
    first = verdict(comp)[0]
    assert "does not win" in first and "not significant" in first


def test_mcnemar_on_every_seed_decides_with_two_seeds():
    # 2 seeds: the t-test has 1 degree of freedom; 10 discordant pairs all for the classical head on each seed.
    q = [True] * 10 + [False] * 10
    c = [True] * 20
    comp = _comparison(_runs([0.5, 0.5001], [1.0, 1.0], q_correct=q, c_correct=c))
    assert [m["b_only"] for m in comp["mcnemar"]] == [10, 10]
    assert "McNemar p < 0.05 on every seed" in verdict(comp)[0]
    assert "does not win" in verdict(comp)[0]


def test_summary_rows_carry_the_paper_numbers():
    rows = {r["name"]: r for r in summary_rows(_runs([0.9, 0.8], [0.85, 0.85]))}
    assert rows["paper-14q-multi"]["paper"] == PAPER_REPORTED["paper-14q-multi"] == 92.70
    assert rows["svc-rbf"]["paper"] == 89.56
    assert rows["paper-14q-multi"]["accuracy"] == pytest.approx(0.85)
    assert rows["paper-14q-multi"]["accuracy_std"] == pytest.approx(np.std([0.9, 0.8], ddof=1))


def test_paper_numbers_only_beside_sst2():
    assert _is_sst2("../shared/data/sst2") and _is_sst2("SetFit/sst2") and _is_sst2("/x/SST-2")
    assert not _is_sst2("../shared/data/sst5") and not _is_sst2("demo")


def test_compare_best_pairs_the_best_heads_by_seed_and_agrees_with_scipy():
    q_correct = [True] * 7 + [False] * 3  # against all-correct: 0 vs 3 discordant per seed
    runs = _runs([0.91, 0.89, 0.90], [0.88, 0.87, 0.90], q_correct=q_correct, c_correct=[True] * 10)
    runs.append({"name": "weak", "kind": "quantum", "parameters": 10, "accuracy": 0.5, "seed": 0,
                 "correct": np.ones(10, bool)})  # lower mean: never the best quantum head
    comp = compare_best(runs, summary_rows(runs))
    assert (comp["quantum"], comp["classical"]) == ("paper-14q-multi", "svc-rbf")
    assert comp["difference"] == pytest.approx(0.90 - 0.8833333333)
    want = scipy_stats.ttest_rel([0.91, 0.89, 0.90], [0.88, 0.87, 0.90])
    assert comp["t_test"]["p_value"] == pytest.approx(want.pvalue) and comp["t_test"]["n"] == 3
    binom = scipy_stats.binomtest(0, 3, 0.5).pvalue  # McNemar's exact test: 0 of 3 discordant pairs, p = 0.25
    assert [(m["seed"], m["a_only"], m["b_only"]) for m in comp["mcnemar"]] == [(0, 0, 3), (1, 0, 3), (2, 0, 3)]
    assert all(m["p_value"] == pytest.approx(binom) == 0.25 for m in comp["mcnemar"])
    assert compare_best(runs[:1], summary_rows(runs[:1])) is None  # no classical head: nothing to compare


def _result(data: str, **settings) -> dict:
    runs = _runs([0.9, 0.8], [0.85, 0.85])
    rows = summary_rows(runs)
    return {"rows": rows, "comparison": compare_best(runs, rows),
            "settings": {"data": data, "body": "b", "seeds": [0, 1], "training": {"epochs": 3, "batch_size": 8,
                                                                                  "learning_rate": 0.1}} | settings}


def test_render_table_rows_read_mean_plus_minus_sample_std_in_percent():
    table = render_table(_result("data/sst2", split={"train": 10, "validation": 5, "test": 20}))
    std = 100 * np.std([0.9, 0.8], ddof=1)  # 7.07
    assert f"| paper-14q-multi | quantum | 886 | 85.00 ± {std:.2f} | 92.70 |" in table
    assert "| svc-rbf | classical | 5000 ¹ | 85.00 ± 0.00 | 89.56 |" in table
    assert "10 train / 5 validation / 20 test sentences" in table and "3 epochs (batch 8, lr 0.1)" in table
    assert "not significant" in table and "Partial" not in table and "Quick run" not in table


def test_render_table_leaves_the_paper_column_empty_off_sst2_and_flags_partial_and_quick_runs():
    result = _result("data/sst5", quick=True, test_limit=50) | {"partial": True}
    table = render_table(result)
    assert "| svc-rbf | classical | 5000 ¹ | 85.00 ± 0.00 |  |" in table  # no paper number beside SST-5
    assert table.index("**Partial**") < table.index("**Quick run** (2 seeds, 3 epochs, test subsample 50)")
