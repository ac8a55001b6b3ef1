"""Paired comparisons of two classifiers: McNemar's exact test on one test set, a paired t-test across seeds.

Both tests are paired because both classifiers see the same examples (McNemar) or the same seeds, hence the
same splits (t-test): pairing removes the variation the two share, which an unpaired comparison of two
mean ± std would leave in and which dominates here (the split moves every head's accuracy together).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any
from collections.abc import Sequence

import numpy as np

from qsetfit.errors import QSetFitError


@dataclass(frozen=True)
class McNemarResult:
    """McNemar's exact test on the discordant pairs of two classifiers.

    Attributes:
        n: examples compared.
        a_only: examples only classifier A gets right (b in the usual 2x2 table).
        b_only: examples only classifier B gets right (c).
        p_value: two-sided exact binomial p-value of ``a_only`` successes in ``a_only + b_only`` trials at 1/2
            (1.0 when there are no discordant pairs).
        accuracy_a: accuracy of A on the ``n`` examples.
        accuracy_b: accuracy of B on the ``n`` examples.
    """

    n: int
    a_only: int
    b_only: int
    p_value: float
    accuracy_a: float
    accuracy_b: float

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class PairedTTestResult:
    """Student's paired t-test of two classifiers' scores over the same seeds.

    Attributes:
        n: paired observations (seeds).
        mean_difference: mean of ``a - b``.
        std_difference: sample standard deviation (ddof=1) of ``a - b``.
        t_statistic: mean / (std / sqrt(n)); +-inf when every difference is the same non-zero number.
        p_value: two-sided p-value with n - 1 degrees of freedom (1.0 when every difference is 0).
        df: degrees of freedom, n - 1.
    """

    n: int
    mean_difference: float
    std_difference: float
    t_statistic: float
    p_value: float
    df: int

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (infinite t as a string, since JSON has no infinity)."""
        out = asdict(self)
        if math.isinf(self.t_statistic):
            out["t_statistic"] = "inf" if self.t_statistic > 0 else "-inf"
        return out


def _correct(name: str, values: Sequence[bool] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise QSetFitError(f"{name} must be a 1-d sequence of per-example correctness, got shape {arr.shape}")
    if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
        raise QSetFitError(f"{name} must hold booleans (or 0/1): True where the classifier is right")
    return arr.astype(bool)


def mcnemar_exact(correct_a: Sequence[bool] | np.ndarray, correct_b: Sequence[bool] | np.ndarray) -> McNemarResult:
    """McNemar's exact test: are A and B equally accurate on these examples?

    Only discordant examples carry information: under the null each is equally likely to favour A or B,
    so ``a_only ~ Binomial(a_only + b_only, 1/2)`` (``scipy.stats.binomtest``, two-sided).

    Args:
        correct_a: (N,) bool, True where classifier A is right.
        correct_b: (N,) bool, True where classifier B is right, on the same examples in the same order.
    """
    from scipy.stats import binomtest

    a, b = _correct("correct_a", correct_a), _correct("correct_b", correct_b)
    if len(a) != len(b) or not len(a):
        raise QSetFitError(
            f"McNemar's test pairs the same examples: got {len(a)} and {len(b)} results; "
            "pass both classifiers' correctness on one non-empty test set"
        )
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    p = 1.0 if a_only + b_only == 0 else float(binomtest(a_only, a_only + b_only, 0.5).pvalue)
    return McNemarResult(len(a), a_only, b_only, min(p, 1.0), float(a.mean()), float(b.mean()))


def paired_t_test(scores_a: Sequence[float], scores_b: Sequence[float]) -> PairedTTestResult:
    """Paired t-test of per-seed scores (``scipy.stats.ttest_rel``, two-sided).

    Args:
        scores_a: one score per seed for classifier A.
        scores_b: the same seeds' scores for classifier B, in the same order.
    """
    from scipy.stats import ttest_rel

    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise QSetFitError(f"the paired t-test needs two equally long 1-d score lists, got {a.shape} and {b.shape}")
    if len(a) < 2:
        raise QSetFitError(f"the paired t-test needs at least 2 seeds, got {len(a)}; run more seeds")
    diff = a - b
    mean, std = float(diff.mean()), float(diff.std(ddof=1))
    if np.allclose(diff, diff[0], rtol=0.0, atol=1e-15):  # scipy returns nan here; the limits are clear
        t = 0.0 if diff[0] == 0 else math.copysign(math.inf, diff[0])
        return PairedTTestResult(len(a), mean, 0.0, t, 1.0 if diff[0] == 0 else 0.0, len(a) - 1)
    res = ttest_rel(a, b)
    return PairedTTestResult(len(a), mean, std, float(res.statistic), float(res.pvalue), len(a) - 1)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation with ddof=1; 0.0 for a single value)."""
    if not len(values):
        raise QSetFitError("mean_std needs at least one value")
    vals = [float(v) for v in values]
    return statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0


def accuracy_ci(accuracy: float, n: int) -> float:
    """Half-width of the 95% normal-approximation interval of an accuracy on n examples."""
    return 1.96 * math.sqrt(max(accuracy * (1 - accuracy), 0.0) / max(n, 1))


def summary_rows(runs: Sequence[dict[str, Any]], *, keep: Sequence[str] = ("kind",)) -> list[dict[str, Any]]:
    """One row per ``name`` over seeds: the ``keep`` fields of its first run, parameters (mean, rounded: only an
    SVC's vary), accuracy mean ± std, and the per-seed accuracies and seeds."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_name.setdefault(r["name"], []).append(r)
    rows = []
    for name, rs in by_name.items():
        mean, std = mean_std([r["accuracy"] for r in rs])
        rows.append(
            {"name": name}
            | {k: rs[0].get(k) for k in keep}
            | {
                "parameters": round(float(np.mean([r["parameters"] for r in rs]))),
                "accuracy": mean,
                "accuracy_std": std,
                "accuracies": [r["accuracy"] for r in rs],
                "seeds": [r["seed"] for r in rs],
            }
        )
    return rows
