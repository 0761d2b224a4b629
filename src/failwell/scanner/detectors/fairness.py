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
import pandas as pd

from failwell.findings import Finding, Metric, Severity
from failwell.scanner.context import ScanContext
from failwell.scanner.detectors._common import mitigation_for, ordered_labels, pct
from failwell.scanner.partials import Batch, Extremes, run_in_memory
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


COUNTS = ("n", "positives", "negatives", "selected", "tp", "fp", "fn")


def group_counts(frame: pd.DataFrame, attrs: list[str], y: np.ndarray, d: np.ndarray,
                 scores: np.ndarray | None = None) -> pd.DataFrame:
    """Counts (and the score sum) per group, indexed by the groups' own values; tables from
    two partitions add up key by key (:func:`table_from_counts` turns them into rates)."""
    columns = {"n": np.ones(len(y)), "positives": y == 1, "negatives": y == 0,
               "selected": d == 1, "tp": (d == 1) & (y == 1), "fp": (d == 1) & (y == 0),
               "fn": (d == 0) & (y == 1),
               "score_sum": np.zeros(len(y)) if scores is None else scores}
    data = pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in columns.items()})
    keys = [frame[a].reset_index(drop=True) for a in attrs]
    return data.groupby(keys, dropna=False, observed=True, sort=False).sum()


def table_from_counts(counts: pd.DataFrame, with_scores: bool) -> list[dict]:
    """The per-group table from merged :func:`group_counts`, groups ordered and labelled as
    :func:`~failwell.scanner.detectors._common.group_codes` does."""
    order, labels = ordered_labels(counts.index)
    counts = counts.iloc[order]
    return _rows({c: counts[c].to_numpy() for c in COUNTS}, labels,
                 counts["score_sum"].to_numpy() if with_scores else None)


def _rows(counts: dict[str, np.ndarray], labels: list[str],
          score_sum: np.ndarray | None) -> list[dict]:
    mean_score = score_sum / np.maximum(counts["n"], 1) if score_sum is not None else None
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
        return run_in_memory(self, ctx)

    def start(self, ctx: ScanContext) -> None:
        ctx.require_protected()
        ctx.base()

    def columns(self, ctx: ScanContext, stage: None) -> list[str]:
        return list(ctx.dataset.protected)

    def _sets(self, protected: list[str]) -> list[list[str]]:
        sets = [[p] for p in protected]
        if self.intersections:
            sets += [list(c) for c in combinations(protected, 2)]
        return sets

    def partial(self, batch: Batch, stage: None) -> dict:
        y, d = batch.y, batch.decisions
        return {"groups": {" x ".join(attrs): group_counts(batch.frame, attrs, y, d, batch.scores)
                           for attrs in self._sets(batch.dataset.protected)},
                "scores": Extremes.of(batch.scores)}

    def finish(self, ctx: ScanContext, stage: None, merged: dict) -> list[Finding]:
        scores = merged["scores"]
        probabilities = not scores.empty and scores.low >= 0 and scores.high <= 1
        findings = []
        for attrs in self._sets(ctx.dataset.protected):
            table = table_from_counts(merged["groups"][" x ".join(attrs)], probabilities)
            finding = self._judge(ctx, attrs, table)
            if len(attrs) == 1:
                ctx.diagnostics.setdefault("groups", {})[attrs[0]] = table
            if finding:
                findings.append(finding)
        return findings

    def _judge(self, ctx: ScanContext, attrs: list[str], table: list[dict]) -> Finding | None:
        min_n, width = ctx.config.min_group_size, ctx.config.max_ci_width
        key = " x ".join(attrs)
        for row in table:
            row["uncertain"] = ctx.config.uncertain(row["n"], row["selection_rate_ci"])
        reference = _reference_label(ctx.dataset.reference_groups, attrs)
        pairs = {metric: self._pairs(table, metric, min_n, width, reference)
                 for metric in ("selection_rate", *GAP_METRICS, "true_positive_rate")}
        tests = sum(len(pairs[m]) for m in ("selection_rate", *GAP_METRICS)) or 1
        alpha = ctx.config.alpha / tests  # Bonferroni over every comparison made
        metrics, comparisons, breached = [], {}, []
        for lo, hi in pairs["selection_rate"]:
            ratio = lo["selection_rate"] / hi["selection_rate"] if hi["selection_rate"] else 1.0
            p = two_proportion_pvalue(lo["selected"], lo["n"], hi["selected"], hi["n"])
            pair = _pair(lo, hi, "selection_rate", p, ratio=ratio)
            comparisons.setdefault("selection_rate", []).append(pair)
            if ratio < self.disparate_impact_min and p < alpha:
                ci = ratio_interval(lo["selected"], lo["n"], hi["selected"], hi["n"])
                metrics.append(Metric("disparate_impact_ratio", ratio,
                                      self.disparate_impact_min, higher_is_worse=False, ci=ci))
                breached.append(pair)
        if comparisons.get("selection_rate"):
            worst = min(comparisons["selection_rate"], key=lambda c: c["ratio"])
            ctx.log_metric(f"fairness.{key}.disparate_impact", worst["ratio"])
        gaps = {}
        for metric in (*GAP_METRICS, "true_positive_rate"):
            num, den = RATES[metric]
            for lo, hi in pairs[metric]:
                gap = hi[metric] - lo[metric]
                gaps[metric] = max(gaps.get(metric, 0.0), gap)
                p = two_proportion_pvalue(hi[num], hi[den], lo[num], lo[den])
                pair = _pair(lo, hi, metric, p, gap=gap)
                comparisons.setdefault(metric, []).append(pair)
                if metric in GAP_METRICS and gap > self.max_rate_gap and p < alpha:
                    ci = diff_interval(hi[num], hi[den], lo[num], lo[den])
                    metrics.append(Metric(f"{metric}_gap", gap, self.max_rate_gap, ci=ci))
                    breached.append(pair)
            if metric in gaps:
                ctx.log_metric(f"fairness.{key}.{metric}_gap", gaps[metric])
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
        how = (f"each group compared with the reference group {reference}" if reference
               else "the lowest and highest groups compared")
        return Finding(
            failure_mode="group-unfairness",
            severity=severity,
            title=f"Unequal outcomes across {key}",
            summary="; ".join(_describe(c, reference) for c in breached[:6])
            + (f"; and {len(breached) - 6} more" if len(breached) > 6 else "") + f" ({how}).",
            detector=self.name,
            metrics=metrics,
            evidence={"attributes": attrs, "groups": table, "comparisons": comparisons,
                      "comparison": "reference" if reference else "extremes",
                      "reference_group": reference, "min_group_size": min_n,
                      "max_ci_width": width, "bonferroni_alpha": alpha},
            mitigation=mitigation_for("group-unfairness",
                                      "re-weight training rows with failwell.mitigate.reweighing"),
        )

    @staticmethod
    def _pairs(table: list[dict], metric: str, min_n: int, max_width: float,
               reference: str | None) -> list[tuple[dict, dict]]:
        """(lower, higher) pairs to compare among groups measured precisely enough: every
        group against the reference group when one is set, else the two extreme groups."""
        den = RATES[metric][1]
        rows = [r for r in table if r[den] >= min_n and not np.isnan(r[metric])
                and r[f"{metric}_ci"][1] - r[f"{metric}_ci"][0] <= max_width]
        if reference is not None:
            ref = next((r for r in rows if r["group"] == reference), None)
            if ref is None:
                return []
            return [tuple(sorted((r, ref), key=lambda x: x[metric]))  # type: ignore[misc]
                    for r in rows if r is not ref]
        if len(rows) < 2:
            return []
        return [(min(rows, key=lambda r: r[metric]), max(rows, key=lambda r: r[metric]))]


def _reference_label(references: dict[str, str], attrs: list[str]) -> str | None:
    """The reference group's label for this attribute set (all attributes need one)."""
    if not references or not all(a in references for a in attrs):
        return None
    return " | ".join(str(references[a]) for a in attrs)


def _pair(lo: dict, hi: dict, metric: str, p: float, **extra: float) -> dict:
    return {"metric": metric, "lowest": lo["group"], "lowest_value": lo[metric],
            "highest": hi["group"], "highest_value": hi[metric], "p_value": p, **extra}


def _describe(c: dict, reference: str | None = None) -> str:
    """'METRIC A% for GROUP vs B% for OTHER', the reference group (if any) named second."""
    label = c["metric"].replace("_", " ")
    first, second = ("highest", "lowest")
    if c["highest"] == reference:
        first, second = second, first
    return f"{label} {pct(c[first + '_value'])} for {c[first]} vs " \
           f"{pct(c[second + '_value'])} for {c[second]}"
