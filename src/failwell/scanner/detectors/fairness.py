"""Group fairness: selection and error rates per protected group and intersection.

Counts come from one ``bincount`` per quantity (fast on millions of rows); the tests check
every rate against fairlearn's ``MetricFrame``. A gap is a finding only when it is large
*and* statistically clear: small groups are listed as uncertain, never as findings.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import ClassVar

import numpy as np

from failwell.findings import Finding, Metric, Severity
from failwell.scanner.context import ScanContext
from failwell.scanner.detectors._common import group_codes, mitigation_for, pct
from failwell.stats import diff_interval, ratio_interval, two_proportion_pvalue, wilson_interval

# metric -> (numerator count, denominator count) in the per-group table
RATES = {
    "selection_rate": ("selected", "n"),
    "false_positive_rate": ("fp", "negatives"),
    "false_negative_rate": ("fn", "positives"),
    "true_positive_rate": ("tp", "positives"),
    "precision": ("tp", "selected"),
}
GAP_METRICS = ("false_positive_rate", "false_negative_rate", "precision")


def group_table(y: np.ndarray, d: np.ndarray, codes: np.ndarray, labels: list[str],
                scores: np.ndarray | None = None) -> list[dict]:
    """Per-group counts, rates and Wilson intervals; with probabilities, the mean predicted
    probability against the observed base rate (calibration in the large)."""
    k = len(labels)

    def count(mask: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(codes, weights=mask, minlength=k) if mask is not None else \
            np.bincount(codes, minlength=k).astype(float)

    counts = {
        "n": count(),
        "positives": count(y == 1),
        "negatives": count(y == 0),
        "selected": count(d == 1),
        "tp": count((d == 1) & (y == 1)),
        "fp": count((d == 1) & (y == 0)),
        "fn": count((d == 0) & (y == 1)),
    }
    mean_score = count(scores) / np.maximum(counts["n"], 1) if scores is not None else None
    rows = []
    for g, label in enumerate(labels):
        row: dict = {"group": label, **{c: int(v[g]) for c, v in counts.items()}}
        row["base_rate"] = row["positives"] / row["n"] if row["n"] else float("nan")
        for metric, (num, den) in RATES.items():
            row[metric] = row[num] / row[den] if row[den] else float("nan")
            row[f"{metric}_ci"] = list(wilson_interval(row[num], row[den]))
        if mean_score is not None:
            row["mean_score"] = float(mean_score[g])
            row["calibration_gap"] = row["mean_score"] - row["base_rate"]
        rows.append(row)
    return rows


@dataclass
class GroupFairnessDetector:
    name: ClassVar[str] = "group-fairness"
    failure_modes: ClassVar[tuple[str, ...]] = ("group-unfairness",)
    description: ClassVar[str] = (
        "Selection rate, FPR, FNR, TPR, precision and calibration per protected group and "
        "intersection; disparate-impact ratio (four-fifths rule) and equalized-odds difference."
    )
    disparate_impact_min: float = 0.8
    max_rate_gap: float = 0.1
    intersections: bool = True

    def run(self, ctx: ScanContext) -> list[Finding]:
        protected = ctx.require_protected()
        base = ctx.base()
        y, d = ctx.dataset.y, base.decisions
        sets = [[p] for p in protected]
        if self.intersections:
            sets += [list(c) for c in combinations(protected, 2)]
        findings = []
        for attrs in sets:
            codes, labels = group_codes(ctx.dataset.frame, attrs)
            table = group_table(y, d, codes, labels, base.probabilities)
            finding = self._judge(ctx, attrs, table)
            if len(attrs) == 1:
                ctx.diagnostics.setdefault("groups", {})[attrs[0]] = table
            if finding:
                findings.append(finding)
        return findings

    def _judge(self, ctx: ScanContext, attrs: list[str], table: list[dict]) -> Finding | None:
        min_n, alpha = ctx.config.min_group_size, ctx.config.alpha / (len(GAP_METRICS) + 1)
        width = ctx.config.max_ci_width
        key = " x ".join(attrs)
        for row in table:
            row["uncertain"] = ctx.config.uncertain(row["n"], row["selection_rate_ci"])
        metrics, comparisons, breached = [], {}, []

        sel = self._extremes(table, "selection_rate", min_n, width)
        if sel:
            lo, hi = sel
            ratio = lo["selection_rate"] / hi["selection_rate"] if hi["selection_rate"] else 1.0
            p = two_proportion_pvalue(lo["selected"], lo["n"], hi["selected"], hi["n"])
            ctx.log_metric(f"fairness.{key}.disparate_impact", ratio)
            comparisons["selection_rate"] = _pair(lo, hi, "selection_rate", p)
            if ratio < self.disparate_impact_min and p < alpha:
                ci = ratio_interval(lo["selected"], lo["n"], hi["selected"], hi["n"])
                metrics.append(Metric("disparate_impact_ratio", ratio,
                                      self.disparate_impact_min, higher_is_worse=False, ci=ci))
                breached.append("selection_rate")
        gaps = {}
        for metric in (*GAP_METRICS, "true_positive_rate"):
            num, den = RATES[metric]
            ext = self._extremes(table, metric, min_n, width)
            if not ext:
                continue
            lo, hi = ext
            gap = hi[metric] - lo[metric]
            gaps[metric] = gap
            p = two_proportion_pvalue(hi[num], hi[den], lo[num], lo[den])
            ctx.log_metric(f"fairness.{key}.{metric}_gap", gap)
            comparisons[metric] = _pair(lo, hi, metric, p)
            if metric in GAP_METRICS and gap > self.max_rate_gap and p < alpha:
                ci = diff_interval(hi[num], hi[den], lo[num], lo[den])
                metrics.append(Metric(f"{metric}_gap", gap, self.max_rate_gap, ci=ci))
                breached.append(metric)
        if "false_positive_rate" in gaps and "true_positive_rate" in gaps:
            eod = max(gaps["false_positive_rate"], gaps["true_positive_rate"])
            ctx.log_metric(f"fairness.{key}.equalized_odds_difference", eod)
        if not metrics:
            return None
        worst_gap = max((m.value for m in metrics if m.name.endswith("_gap")), default=0.0)
        worst_ratio = min((m.value for m in metrics if m.name == "disparate_impact_ratio"),
                          default=1.0)
        severity = Severity.HIGH if worst_gap > 2 * self.max_rate_gap or worst_ratio < 0.6 \
            else Severity.MEDIUM
        lines = [_describe(name, comparisons[name]) for name in breached]
        return Finding(
            failure_mode="group-unfairness",
            severity=severity,
            title=f"Unequal outcomes across {key}",
            summary="; ".join(lines) + ".",
            detector=self.name,
            metrics=metrics,
            evidence={"attributes": attrs, "groups": table, "comparisons": comparisons,
                      "min_group_size": min_n, "max_ci_width": width},
            mitigation=mitigation_for("group-unfairness",
                                      "re-weight training rows with failwell.mitigate.reweighing"),
        )

    @staticmethod
    def _extremes(table: list[dict], metric: str, min_n: int,
                  max_width: float) -> tuple[dict, dict] | None:
        """Lowest and highest groups among those measured precisely enough to compare."""
        den = RATES[metric][1]
        rows = [r for r in table if r[den] >= min_n and not np.isnan(r[metric])
                and r[f"{metric}_ci"][1] - r[f"{metric}_ci"][0] <= max_width]
        if len(rows) < 2:
            return None
        return min(rows, key=lambda r: r[metric]), max(rows, key=lambda r: r[metric])


def _pair(lo: dict, hi: dict, metric: str, p: float) -> dict:
    return {"lowest": lo["group"], "lowest_value": lo[metric], "highest": hi["group"],
            "highest_value": hi[metric], "p_value": p}


def _describe(metric: str, c: dict) -> str:
    label = metric.replace("_", " ")
    return f"{label} {pct(c['highest_value'])} for {c['highest']} vs {pct(c['lowest_value'])} " \
           f"for {c['lowest']}"
