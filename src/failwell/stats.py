"""Small statistics used by several detectors: intervals and tests on proportions."""

from __future__ import annotations

import numpy as np
from scipy import stats


def wilson_interval(k: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = k / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def two_proportion_pvalue(k1: float, n1: float, k2: float, n2: float) -> float:
    """Two-sided p-value that k1/n1 and k2/n2 differ (pooled z-test)."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0 if k1 / n1 == k2 / n2 else 0.0
    z = (k1 / n1 - k2 / n2) / se
    return float(2 * stats.norm.sf(abs(z)))


def diff_interval(
    k1: float, n1: float, k2: float, n2: float, confidence: float = 0.95
) -> tuple[float, float]:
    """Normal-approximation interval for p1 - p2 (unpooled)."""
    if n1 <= 0 or n2 <= 0:
        return -1.0, 1.0
    p1, p2 = k1 / n1, k2 / n2
    z = stats.norm.ppf(0.5 + confidence / 2)
    se = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return float(p1 - p2 - z * se), float(p1 - p2 + z * se)


def ratio_interval(
    k1: float, n1: float, k2: float, n2: float, confidence: float = 0.95
) -> tuple[float, float]:
    """Katz log interval for the ratio of proportions (k1/n1) / (k2/n2)."""
    if min(k1, k2) <= 0 or n1 <= 0 or n2 <= 0:
        return 0.0, float("inf")
    z = stats.norm.ppf(0.5 + confidence / 2)
    log_ratio = np.log((k1 / n1) / (k2 / n2))
    se = np.sqrt(1 / k1 - 1 / n1 + 1 / k2 - 1 / n2)
    return float(np.exp(log_ratio - z * se)), float(np.exp(log_ratio + z * se))


def auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney U statistic over average ranks (ties count one half).

    The same number as ``sklearn.metrics.roc_auc_score`` for a binary target, without its
    per-call validation overhead, which dominates when a detector computes dozens of AUCs.
    """
    y = np.asarray(y).astype(bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(scores)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Bias-corrected Cramér's V between two integer-coded variables (Bergsma 2013).

    chi-squared from the occupied cells only (sum of O^2/E, minus n), so two columns with
    thousands of values each (names, case numbers) cost the rows, not a dense table of
    their product.
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    n = len(a)
    if n < 2:
        return 0.0
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    r, k = int(a.max()) + 1, int(b.max()) + 1
    if min(r, k) < 2:
        return 0.0
    cells, observed = np.unique(a * k + b, return_counts=True)
    rows, cols = np.bincount(a, minlength=r), np.bincount(b, minlength=k)
    phi2 = float((observed.astype(float) ** 2 / (rows[cells // k] * cols[cells % k])).sum()
                 - 1.0)
    phi2c = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    rc, kc = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    denom = min(rc - 1, kc - 1)
    return float(np.sqrt(phi2c / denom)) if denom > 0 else 0.0
