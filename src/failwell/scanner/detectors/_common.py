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
