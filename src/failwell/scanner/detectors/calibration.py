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
from failwell.scanner.partials import Batch, run_in_memory


def reliability_sums(p: np.ndarray, y: np.ndarray, bins: int = 10) -> np.ndarray:
    """Per confidence bin: rows, summed confidence, summed correctness (a ``3 x bins`` array
    that adds up across partitions)."""
    conf = np.maximum(p, 1 - p)
    correct = ((p >= 0.5).astype(int) == y).astype(float)
    idx = np.clip(((conf - 0.5) * 2 * bins).astype(int), 0, bins - 1)
    return np.vstack([np.bincount(idx, minlength=bins).astype(float),
                      np.bincount(idx, weights=conf, minlength=bins),
                      np.bincount(idx, weights=correct, minlength=bins)])


def reliability_table(sums: np.ndarray) -> list[dict]:
    """Top-label reliability table: mean confidence, accuracy and count per confidence bin."""
    n, c, a = sums
    bins = len(n)
    return [{"low": 0.5 + i / (2 * bins), "high": 0.5 + (i + 1) / (2 * bins), "n": int(n[i]),
             "confidence": c[i] / n[i] if n[i] else None,
             "accuracy": a[i] / n[i] if n[i] else None} for i in range(bins)]


def reliability_bins(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict]:
    return reliability_table(reliability_sums(p, y, bins))


def ece_of(table: list[dict]) -> float:
    total = sum(b["n"] for b in table)
    return float(sum(b["n"] * abs(b["confidence"] - b["accuracy"])
                     for b in table if b["n"]) / total)


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    return ece_of(reliability_bins(p, y, bins))


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
        return run_in_memory(self, ctx)

    def start(self, ctx: ScanContext) -> None:
        ctx.require_probabilities()

    def columns(self, ctx: ScanContext, stage: None) -> list[str]:
        return []

    def partial(self, batch: Batch, stage: None) -> dict:
        p, y = batch.scores, batch.y
        conf = np.maximum(p, 1 - p)
        correct = (p >= 0.5).astype(int) == y
        high = conf >= self.confident
        return {"bins": reliability_sums(p, y),
                "sums": np.array([len(p), conf.sum(), correct.sum(), high.sum(),
                                  (~correct[high]).sum(), conf[high].sum()], dtype=float)}

    def finish(self, ctx: ScanContext, stage: None, merged: dict) -> list[Finding]:
        table = reliability_table(merged["bins"])
        n, conf_sum, correct_sum, n_high, wrong_high, conf_high = merged["sums"]
        ece = ece_of(table)
        ctx.diagnostics["reliability"] = table
        mean_conf, accuracy = conf_sum / n, correct_sum / n
        gap = float(mean_conf - accuracy)
        ctx.log_metric("calibration.ece", ece)
        ctx.log_metric("calibration.confidence_minus_accuracy", gap)
        # the null draws labels from the model's own probabilities: the in-memory table's,
        # or a partitioned scan's sample of it
        pvalue = self._null_pvalue(ctx, ctx.require_probabilities(), ece, int(n))
        confident_error = float(wrong_high / n_high) if n_high else 0.0
        expected_error = float(1 - conf_high / n_high) if n_high else 0.0
        if ece <= self.max_ece or pvalue >= ctx.config.alpha:
            return []
        direction = "overconfident" if gap > 0 else "underconfident"
        return [Finding(
            "overconfidence",
            Severity.HIGH if ece > 3 * self.max_ece and gap > 0 else Severity.MEDIUM,
            f"Probabilities are miscalibrated ({direction}, ECE {ece:.3f})",
            f"Mean confidence {pct(mean_conf)} vs accuracy {pct(accuracy)}. "
            f"Of the {int(n_high)} predictions made with >= {pct(self.confident)} "
            f"confidence, {pct(confident_error)} are wrong (calibrated: {pct(expected_error)}).",
            self.name,
            [Metric("expected_calibration_error", ece, self.max_ece),
             Metric("confidence_minus_accuracy", gap),
             Metric("confident_error_rate", confident_error)],
            {"reliability": table, "p_value": pvalue,
             "confident_threshold": self.confident, "direction": direction},
            mitigation_for("overconfidence"),
        )]

    def _null_pvalue(self, ctx: ScanContext, p: np.ndarray, ece: float, n: int) -> float:
        """``p``: the probabilities (or a uniform sample of them) of the ``n`` rows scanned."""
        rng = np.random.default_rng(ctx.config.seed)
        sub = p if len(p) <= self.null_rows else rng.choice(p, self.null_rows, replace=False)
        scale = np.sqrt(len(sub) / n)  # ECE noise shrinks like 1/sqrt(n)
        null = np.array([expected_calibration_error(sub, (rng.random(len(sub)) < sub)
                                                    .astype(int)) for _ in range(self.resamples)])
        return float((1 + np.sum(null * scale >= ece)) / (1 + self.resamples))
