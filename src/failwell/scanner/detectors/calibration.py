"""Overconfidence: predicted probabilities more extreme than what actually happens.

Expected calibration error (top-label, equal-width bins, after Guo et al. 2017) is biased
upwards on finite data, so the threshold is paired with a consistency-resampling test
(Bröcker & Smith 2007): labels drawn from the model's own probabilities show how large the
ECE of a perfectly calibrated model would be on this many rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from failwell.findings import Finding, Metric, Severity
from failwell.scanner.context import ScanContext
from failwell.scanner.detectors._common import mitigation_for, pct


def reliability_bins(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict]:
    """Top-label reliability table: mean confidence, accuracy and count per confidence bin."""
    conf = np.maximum(p, 1 - p)
    correct = ((p >= 0.5).astype(int) == y).astype(float)
    idx = np.clip(((conf - 0.5) * 2 * bins).astype(int), 0, bins - 1)
    n = np.bincount(idx, minlength=bins)
    c = np.bincount(idx, weights=conf, minlength=bins)
    a = np.bincount(idx, weights=correct, minlength=bins)
    return [{"low": 0.5 + i / (2 * bins), "high": 0.5 + (i + 1) / (2 * bins), "n": int(n[i]),
             "confidence": c[i] / n[i] if n[i] else None,
             "accuracy": a[i] / n[i] if n[i] else None} for i in range(bins)]


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    table = reliability_bins(p, y, bins)
    total = sum(b["n"] for b in table)
    return float(sum(b["n"] * abs(b["confidence"] - b["accuracy"])
                     for b in table if b["n"]) / total)


@dataclass
class OverconfidenceDetector:
    name: ClassVar[str] = "overconfidence"
    failure_modes: ClassVar[tuple[str, ...]] = ("overconfidence",)
    description: ClassVar[str] = (
        "Expected calibration error with a resampling test, and errors made with high "
        "confidence."
    )
    max_ece: float = 0.05
    confident: float = 0.9
    resamples: int = 200
    null_rows: int = 50_000  # rows drawn for each resample (no model calls)

    def run(self, ctx: ScanContext) -> list[Finding]:
        p = ctx.require_probabilities()
        y = ctx.dataset.y
        ece = expected_calibration_error(p, y)
        ctx.diagnostics["reliability"] = reliability_bins(p, y)
        conf = np.maximum(p, 1 - p)
        correct = (p >= 0.5).astype(int) == y
        gap = float(conf.mean() - correct.mean())
        ctx.log_metric("calibration.ece", ece)
        ctx.log_metric("calibration.confidence_minus_accuracy", gap)
        pvalue = self._null_pvalue(ctx, p, ece)
        high = conf >= self.confident
        confident_error = float((~correct[high]).mean()) if high.any() else 0.0
        expected_error = float(1 - conf[high].mean()) if high.any() else 0.0
        if ece <= self.max_ece or pvalue >= ctx.config.alpha:
            return []
        direction = "overconfident" if gap > 0 else "underconfident"
        return [Finding(
            "overconfidence",
            Severity.HIGH if ece > 3 * self.max_ece and gap > 0 else Severity.MEDIUM,
            f"Probabilities are miscalibrated ({direction}, ECE {ece:.3f})",
            f"Mean confidence {pct(conf.mean())} vs accuracy {pct(correct.mean())}. "
            f"Of the {int(high.sum())} predictions made with >= {pct(self.confident)} "
            f"confidence, {pct(confident_error)} are wrong (calibrated: {pct(expected_error)}).",
            self.name,
            [Metric("expected_calibration_error", ece, self.max_ece),
             Metric("confidence_minus_accuracy", gap),
             Metric("confident_error_rate", confident_error)],
            {"reliability": reliability_bins(p, y), "p_value": pvalue,
             "confident_threshold": self.confident, "direction": direction},
            mitigation_for("overconfidence"),
        )]

    def _null_pvalue(self, ctx: ScanContext, p: np.ndarray, ece: float) -> float:
        rng = np.random.default_rng(ctx.config.seed)
        sub = p if len(p) <= self.null_rows else rng.choice(p, self.null_rows, replace=False)
        scale = np.sqrt(len(sub) / len(p))  # ECE noise shrinks like 1/sqrt(n)
        null = np.array([expected_calibration_error(sub, (rng.random(len(sub)) < sub)
                                                    .astype(int)) for _ in range(self.resamples)])
        return float((1 + np.sum(null * scale >= ece)) / (1 + self.resamples))
