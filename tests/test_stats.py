"""Paired tests on inputs whose answers follow by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qsetfit.errors import QSetFitError
from qsetfit.bench.stats import mcnemar_exact, mean_std, paired_t_test


def test_mcnemar_counts_only_discordant_pairs():
    # 10 examples: both right on 4, both wrong on 1, only A right on 4, only B right on 1.
    a = [1, 1, 1, 1, 0, 1, 1, 1, 1, 0]
    b = [1, 1, 1, 1, 0, 0, 0, 0, 0, 1]
    r = mcnemar_exact(a, b)
    assert (r.n, r.a_only, r.b_only) == (10, 4, 1)
    assert r.accuracy_a == pytest.approx(0.8) and r.accuracy_b == pytest.approx(0.5)
    # Binomial(5, 1/2), two-sided: P(X <= 1) + P(X >= 4) = (1 + 5 + 5 + 1) / 32.
    assert r.p_value == pytest.approx(12 / 32)


def test_mcnemar_one_sided_extreme():
    # 6 discordant pairs all favouring A: two-sided p = 2 / 2**6.
    a = np.array([True] * 6 + [True] * 3)
    b = np.array([False] * 6 + [True] * 3)
    assert mcnemar_exact(a, b).p_value == pytest.approx(2 / 64)


def test_mcnemar_no_discordant_pairs_is_p_one():
    same = [True, False, True]
    r = mcnemar_exact(same, same)
    assert (r.a_only, r.b_only, r.p_value) == (0, 0, 1.0)


def test_mcnemar_is_symmetric():
    rng = np.random.default_rng(0)
    a, b = rng.random(50) < 0.7, rng.random(50) < 0.6
    assert mcnemar_exact(a, b).p_value == pytest.approx(mcnemar_exact(b, a).p_value)


@pytest.mark.parametrize("a,b", [([1, 0], [1]), ([], []), ([1, 2], [1, 0])])
def test_mcnemar_rejects_bad_input(a, b):
    with pytest.raises(QSetFitError):
        mcnemar_exact(a, b)


def test_paired_t_by_hand():
    # differences 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt 3) = 2 sqrt 3, df 2.
    r = paired_t_test([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert r.mean_difference == pytest.approx(2.0)
    assert r.std_difference == pytest.approx(1.0)
    assert r.t_statistic == pytest.approx(2 * math.sqrt(3))
    assert r.df == 2
    # Student t with 2 df has the closed-form tail P(|T| > t) = 1 - t / sqrt(t^2 + 2).
    t = 2 * math.sqrt(3)
    assert r.p_value == pytest.approx(1 - t / math.sqrt(t * t + 2))


def test_paired_t_two_seeds_closed_form():
    # df 1 is Cauchy: P(|T| > t) = 1 - 2 atan(t) / pi; differences 1 and 3: mean 2, sd sqrt 2, t = 2.
    r = paired_t_test([1.0, 3.0], [0.0, 0.0])
    assert r.t_statistic == pytest.approx(2.0)
    assert r.p_value == pytest.approx(1 - 2 * math.atan(2.0) / math.pi)


def test_paired_t_constant_differences():
    assert paired_t_test([0.5, 0.6], [0.5, 0.6]).p_value == 1.0
    r = paired_t_test([0.6, 0.7, 0.8], [0.5, 0.6, 0.7])
    assert r.p_value == 0.0 and r.t_statistic == math.inf
    assert r.to_dict()["t_statistic"] == "inf"


def test_paired_t_needs_two_paired_seeds():
    with pytest.raises(QSetFitError, match="at least 2 seeds"):
        paired_t_test([0.9], [0.8])
    with pytest.raises(QSetFitError, match="equally long"):
        paired_t_test([0.9, 0.8], [0.8])


def test_mean_std():
    assert mean_std([1.0, 2.0, 3.0]) == (pytest.approx(2.0), pytest.approx(1.0))
    assert mean_std([0.7]) == (0.7, 0.0)
