"""The interval helpers: closed forms, scipy's chi-square, and simulated coverage."""

import numpy as np
import pytest
from scipy import stats as sps

from failwell.stats import (
    auc,
    diff_interval,
    ratio_interval,
    two_proportion_pvalue,
    wilson_interval,
)


def test_wilson_matches_closed_form():
    lo, hi = wilson_interval(15, 50)
    # Wilson (1927) for 15/50 at 95 %: 0.1910 .. 0.4375
    assert (lo, hi) == pytest.approx((0.1910, 0.4375), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_two_proportion_pvalue_matches_chi_square():
    table = np.array([[30, 70], [50, 50]])
    chi2 = sps.chi2_contingency(table, correction=False)[1]
    assert two_proportion_pvalue(30, 100, 50, 100) == pytest.approx(chi2)


@pytest.mark.parametrize("interval,truth", [
    (lambda k1, n1, k2, n2: diff_interval(k1, n1, k2, n2), 0.3 - 0.5),
    (lambda k1, n1, k2, n2: ratio_interval(k1, n1, k2, n2), 0.3 / 0.5),
])
def test_intervals_cover_the_truth_about_95_percent(interval, truth):
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(2000):
        k1, k2 = rng.binomial(400, 0.3), rng.binomial(300, 0.5)
        lo, hi = interval(k1, 400, k2, 300)
        covered += lo <= truth <= hi
    assert 0.93 < covered / 2000 < 0.97


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_sklearn_with_ties(seed):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 3000)
    scores = np.round(rng.normal(y * 0.5, 1.0), 1)  # rounded: many ties
    assert auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
