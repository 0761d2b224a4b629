"""Mitigations that findings point to: re-weighting and re-sampling for biased data, and
``compare`` / ``compare_deep``, which apply mitigations, re-scan and show the price.

Plain functions over arrays, like fairlearn's: pass the protected groups and the labels, get
weights or row indices back to feed any estimator's ``fit(..., sample_weight=...)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["resample_balanced", "reweighing"]


def _cells(groups, labels) -> tuple[np.ndarray, np.ndarray]:
    g = pd.factorize(pd.Series(np.asarray(groups, dtype=object)))[0]
    y = pd.factorize(pd.Series(np.asarray(labels, dtype=object)))[0]
    return g, y


def reweighing(groups, labels) -> np.ndarray:
    """Kamiran & Calders weights w(g, y) = P(g) P(y) / P(g, y).

    With these weights, group and label are independent in the weighted data, so a model no
    longer learns the historical link between them. The weights average to 1.
    """
    g, y = _cells(groups, labels)
    n = len(g)
    if n == 0:
        return np.zeros(0)
    pg = np.bincount(g) / n
    py = np.bincount(y) / n
    cell = g * (y.max() + 1) + y
    pgy = np.bincount(cell, minlength=(g.max() + 1) * (y.max() + 1)) / n
    return pg[g] * py[y] / pgy[cell]


def resample_balanced(groups, labels, *, seed: int = 0) -> np.ndarray:
    """Row indices, drawn with replacement, whose (group, label) cells match P(g) P(y).

    The re-sampling twin of :func:`reweighing` for learners that take no sample weights.
    """
    g, y = _cells(groups, labels)
    n = len(g)
    rng = np.random.default_rng(seed)
    weights = reweighing(groups, labels)
    cell = g * (y.max() + 1) + y
    out = []
    for c in np.unique(cell):
        rows = np.flatnonzero(cell == c)
        target = round(float(weights[rows[0]]) * len(rows))
        out.append(rng.choice(rows, size=target, replace=True))
    idx = np.concatenate(out) if out else np.zeros(0, dtype=int)
    return np.sort(idx[:n] if len(idx) > n else idx)


def __getattr__(name: str):
    """The heavier parts on first use: ``compare`` (scikit-learn, fairlearn), and
    ``compare_deep`` and ``adversarial_training`` (torch)."""
    if name == "compare":
        from failwell.mitigate.comparison import compare

        return compare
    if name == "compare_deep":
        from failwell.mitigate.deep import compare_deep

        return compare_deep
    if name == "adversarial_training":
        from failwell.mitigate.adversarial import adversarial_training

        return adversarial_training
    raise AttributeError(name)
