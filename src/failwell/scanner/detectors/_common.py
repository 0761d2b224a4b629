"""Helpers shared by detectors: group codes, catalog mitigations, severity scales."""

from __future__ import annotations

import numpy as np
import pandas as pd

from failwell.findings import Severity
from failwell.taxonomy import load_catalog

MISSING = "(missing)"


def group_codes(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, list[str]]:
    """Integer code per row for the combination of ``columns`` and a label per code.

    Vectorized (factorize + mixed radix), so intersections of attributes cost no row loop.
    """
    codes = np.zeros(len(frame), dtype=np.int64)
    labels: list[str] = [""]
    for col in columns:
        c, uniques = pd.factorize(frame[col], sort=True)
        names = [str(u) for u in uniques] + [MISSING]
        c = np.where(c < 0, len(uniques), c)
        codes = codes * len(names) + c
        labels = [f"{a} | {b}" if a else b for a in labels for b in names]
    used, compact = np.unique(codes, return_inverse=True)
    return compact, [labels[i] for i in used]


def ordered_labels(index: pd.Index) -> tuple[np.ndarray, list[str]]:
    """For an index of group keys (one level per column): the order and labels that
    :func:`group_codes` gives the same groups (sorted values per column, missing last)."""
    keys = index.to_frame(index=False)
    codes, names = [], []
    for col in keys.columns:
        c, uniques = pd.factorize(keys[col], sort=True)
        codes.append(np.where(c < 0, len(uniques), c))
        names.append([str(u) for u in uniques] + [MISSING])
    order = np.lexsort(codes[::-1]) if codes else np.arange(len(keys))
    labels = [" | ".join(names[j][codes[j][i]] for j in range(len(codes))) for i in order]
    return order, labels


def mitigation_for(mode_id: str, extra: str = "") -> str:
    """The catalog's mitigations for a failure mode, with a detector-specific line first."""
    lines = list(load_catalog().failure_mode(mode_id).mitigations)
    if extra:
        lines.insert(0, extra)
    return "; ".join(lines)


def severity_by(
    value: float, medium: float, high: float, critical: float | None = None
) -> Severity:
    """Grade ``value`` (larger is worse) against increasing cut-offs."""
    if critical is not None and value >= critical:
        return Severity.CRITICAL
    if value >= high:
        return Severity.HIGH
    if value >= medium:
        return Severity.MEDIUM
    return Severity.LOW


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def surrogate_matrix(frame: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A numeric matrix for a gradient-boosted surrogate, and its categorical-column mask."""
    out, categorical = [], []
    for col in columns:
        s = frame[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            out.append(s.to_numpy(dtype=float))
            categorical.append(False)
        else:
            codes, uniques = pd.factorize(s)
            x = codes.astype(float)
            x[codes < 0] = np.nan
            out.append(x)
            categorical.append(len(uniques) <= 250)  # HistGradientBoosting's category limit
    return np.column_stack(out) if out else np.zeros((len(frame), 0)), np.array(categorical)


def cross_fit_proba(x: np.ndarray, categorical: np.ndarray, y: np.ndarray, folds: np.ndarray,
                    seed: int) -> np.ndarray:
    """Out-of-fold P(y=1) from a small gradient-boosted surrogate (the prior without data)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    p = np.full(len(y), float(y.mean()))
    for f in np.unique(folds):
        train = folds != f
        # a column with no value in this fold carries nothing (and scikit-learn 1.9's
        # binning fails on it)
        seen = ~np.isnan(x[train]).all(axis=0)
        if y[train].min() == y[train].max() or not seen.any():
            continue
        model = HistGradientBoostingClassifier(
            max_iter=100, max_leaf_nodes=15, early_stopping=False, random_state=seed,
            categorical_features=categorical[seen] if categorical[seen].any() else None)
        p[~train] = model.fit(x[train][:, seen], y[train]).predict_proba(
            x[~train][:, seen])[:, 1]
    return p
