"""Exposure concentration of a log: how unevenly impressions fall on the catalog.

All figures are over the *catalog* (every item seen in the log or its reference), so an
item never shown counts as zero exposure. The Gini coefficient of a finite sample is
inflated by sampling noise (10,000 uniform impressions over 80 items give 0.06, 2,000 over
5,000 items give 0.7), so comparisons are made at equal sample sizes: :func:`gini_draws`
resamples item counts (a multinomial draw from the observed shares, which is the bootstrap of
impressions when only counts matter).
"""

from __future__ import annotations

import numpy as np

TOP_SHARE = 0.10  # "the top items": the top 10 % of the catalog (at least one item)


def gini(counts: np.ndarray) -> np.ndarray | float:
    """Gini coefficient of exposure over the last axis (0: even, towards 1: one item)."""
    x = np.sort(np.asarray(counts, dtype=float), axis=-1)
    k = x.shape[-1]
    total = x.sum(axis=-1)
    ranks = np.arange(1, k + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = (2 * (x * ranks).sum(axis=-1) / (k * total)) - (k + 1) / k
    return np.where(total > 0, g, 0.0) if np.ndim(g) else float(g if total > 0 else 0.0)


def figures(counts: np.ndarray) -> dict[str, float]:
    """Gini, normalised entropy, coverage and the top items' share of one count vector."""
    counts = np.asarray(counts, dtype=float)
    k, total = len(counts), counts.sum()
    p = counts[counts > 0] / total
    top = max(1, round(TOP_SHARE * k))
    return {
        "impressions": int(total),
        "gini": float(gini(counts)),
        "entropy": float(-(p * np.log(p)).sum() / np.log(k)) if k > 1 else 0.0,
        "coverage": float((counts > 0).mean()),
        "top_share": float(np.sort(counts)[::-1][:top].sum() / total),
        "top_items": top,
    }


def gini_draws(counts: np.ndarray, size: int, draws: int, rng: np.random.Generator,
               ) -> np.ndarray:
    """Gini of ``draws`` resamples of ``size`` impressions from the observed shares."""
    p = np.asarray(counts, dtype=float)
    p = p / p.sum()
    return gini(rng.multinomial(size, p, size=draws))


def uniform_gini(n_items: int, size: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """What even exposure looks like at this sample size: the Gini of uniform draws."""
    return gini_draws(np.ones(n_items), size, draws, rng)
