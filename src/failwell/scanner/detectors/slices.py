"""The worst data slices, found automatically.

Candidates are each category (top values) and quantile bin of every column, and pairs of the
most suspicious columns. A slice is reported when its error rate is clearly above the rest
of the data: a minimum gap, and a two-proportion test Bonferroni-corrected over every slice
tried, so a model whose errors are spread evenly yields nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations, pairwise
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from failwell.findings import Finding, Metric
from failwell.scanner.context import ScanContext
from failwell.scanner.detectors._common import group_codes, mitigation_for, pct, severity_by


def slice_codes(col: pd.Series, bins: int = 4, top: int = 20) -> tuple[np.ndarray, list[str]]:
    """Quantile bins for numbers, the top categories (plus 'other') otherwise."""
    name = str(col.name)
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) \
            and col.nunique() > 2 * bins:
        x = col.to_numpy(dtype=float)
        edges = np.unique(np.nanquantile(x, np.linspace(0, 1, bins + 1)))
        inner = edges[1:-1]
        codes = np.searchsorted(inner, x, side="right")
        labels = [f"{name} < {inner[0]:g}"] if len(inner) else [f"{name} (all)"]
        labels += [f"{lo:g} <= {name} < {hi:g}" for lo, hi in pairwise(inner)]
        if len(inner):
            labels.append(f"{name} >= {inner[-1]:g}")
        missing = np.isnan(x)
        if missing.any():
            codes = np.where(missing, len(labels), codes)
            labels.append(f"{name} is missing")
        return codes, labels
    codes, labels = group_codes(col.to_frame(), [name])
    if len(labels) > top:
        counts = np.bincount(codes)
        keep = np.argsort(-counts)[:top]
        remap = np.full(len(labels), top)
        remap[keep] = np.arange(top)
        codes = remap[codes]
        labels = [labels[i] for i in keep] + ["other"]
    return codes, [f"{name} = {lab}" for lab in labels]


def expected_errors(scores: np.ndarray, decisions: np.ndarray, y: np.ndarray,
                    seed: int = 0) -> np.ndarray:
    """Each row's chance of being wrong given its score and the decision actually taken.

    The score is mapped to P(positive) by isotonic regression, cross-fitted on two folds (a
    decile score, a credit score or an uncalibrated probability all work), and the decision
    rule is whatever produced ``decisions``: a 0.3 threshold or a hard cut at 640 make the
    rows near *their* boundary the expected errors. A slice is then judged on errors beyond
    what the score itself explains, so the boundary band is not a finding by itself.
    """
    from sklearn.isotonic import IsotonicRegression

    s = np.where(np.isfinite(scores), scores, np.nanmedian(scores))
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, 2, len(y))
    p = np.full(len(y), float(y.mean()))
    for f in (0, 1):
        train = fold != f
        if train.sum() > 200_000:  # a monotone map needs no more rows to be precise
            train &= rng.random(len(y)) < 200_000 / train.sum()
        if train.sum() and y[train].min() != y[train].max():
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
            p[fold == f] = iso.fit(s[train], y[train]).predict(s[fold == f])
    return np.where(decisions == 1, 1 - p, p)


@dataclass
class PerformanceSlicesDetector:
    name: ClassVar[str] = "performance-slices"
    failure_modes: ClassVar[tuple[str, ...]] = ("underperforming-slice",)
    description: ClassVar[str] = (
        "Worst slices (categories, quantile bins and pairs of them) by error rate, tested "
        "against the rest of the data with a Bonferroni correction; with scores, errors are "
        "counted beyond what the score implies under the actual decision rule."
    )
    min_gap: float = 0.05
    min_slice_size: int = 30
    pair_columns: int = 6
    max_reported: int = 5

    def run(self, ctx: ScanContext) -> list[Finding]:
        ds = ctx.dataset
        base = ctx.base()
        raw = (base.decisions != ds.y).astype(float)
        scored = base.scores is not None
        expected = np.zeros_like(raw) if not scored else expected_errors(
            base.scores, base.decisions, ds.y, ctx.config.seed)
        errors = raw - expected
        overall = float(raw.mean())
        ctx.log_metric("slices.overall_error", overall)
        columns = [c for c in dict.fromkeys(ds.features + ds.protected + ds.metadata)
                   if c not in ds.text]
        coded = {c: slice_codes(ds.frame[c]) for c in columns}
        candidates = []
        for c, (codes, labels) in coded.items():
            candidates += self._score(codes, labels, errors, raw, [c])
        best = sorted(columns, key=lambda c: -max(
            (s["z"] for s in candidates if s["columns"] == [c]), default=0))
        for a, b in combinations(best[: self.pair_columns], 2):
            (ca, la), (cb, lb) = coded[a], coded[b]
            codes = ca * len(lb) + cb
            labels = [f"{x} and {y}" for x in la for y in lb]
            candidates += self._score(codes, labels, errors, raw, [a, b])
        tested = max(len(candidates), 1)
        ctx.diagnostics["slices"] = sorted(candidates, key=lambda s: -s["excess"])[:10]
        alpha = ctx.config.alpha / tested
        significant = [s for s in candidates
                       if s["excess"] >= self.min_gap and s["p_value"] < alpha]
        significant = self._drop_redundant(significant)
        ctx.log_metric("slices.significant", len(significant))
        if not significant:
            return []
        worst = sorted(significant, key=lambda s: -s["excess"])
        top = worst[: self.max_reported]
        head = top[0]
        gap = head["excess"]
        return [Finding(
            "underperforming-slice",
            severity_by(gap, 0.0, 0.15),
            f"Errors concentrate in {len(significant)} slice(s); worst: {head['slice']}",
            f"Error rate is {pct(head['error_rate'])} in '{head['slice']}' "
            f"({head['n']} rows) vs {pct(overall)} overall"
            + (f"; its scores implied {pct(head['expected_error_rate'])} there."
               if scored else "."),
            self.name,
            [Metric("worst_slice_excess_error", gap, self.min_gap),
             Metric("worst_slice_error_rate", head["error_rate"]),
             Metric("overall_error_rate", overall)],
            {"slices": top, "slices_tested": tested, "overall_error_rate": overall,
             "bonferroni_alpha": alpha},
            mitigation_for("underperforming-slice"),
        )]

    def _score(self, codes, labels, residual, raw, cols) -> list[dict]:
        """Welch z-test of each slice's mean residual error against the rest's."""
        k = len(labels)
        n = np.bincount(codes, minlength=k).astype(float)
        s1 = np.bincount(codes, weights=residual, minlength=k)
        s2 = np.bincount(codes, weights=residual**2, minlength=k)
        r = np.bincount(codes, weights=raw, minlength=k)
        n_all, s1_all, s2_all, r_all = len(raw), residual.sum(), (residual**2).sum(), raw.sum()
        out = []
        for i in np.flatnonzero(n >= self.min_slice_size):
            n_rest = n_all - n[i]
            if n_rest < self.min_slice_size:
                continue
            m1, m2 = s1[i] / n[i], (s1_all - s1[i]) / n_rest
            v1 = max(s2[i] / n[i] - m1**2, 0.0)
            v2 = max((s2_all - s2[i]) / n_rest - m2**2, 0.0)
            se = np.sqrt(v1 / n[i] + v2 / n_rest)
            z = (m1 - m2) / se if se > 0 else 0.0
            error_rate = r[i] / n[i]
            out.append({"slice": labels[i], "columns": cols, "n": int(n[i]),
                        "error_rate": float(error_rate),
                        "rest_error_rate": float((r_all - r[i]) / n_rest),
                        "expected_error_rate": float(error_rate - m1),
                        "excess": float(m1 - m2), "z": float(z),
                        "p_value": float(stats.norm.sf(z))})
        return out

    @staticmethod
    def _drop_redundant(slices: list[dict]) -> list[dict]:
        """A pair slice must be worse than each of its single-column parents to be kept."""
        singles = {s["slice"]: s["excess"] for s in slices if len(s["columns"]) == 1}
        kept = []
        for s in slices:
            if len(s["columns"]) == 2:
                parents = s["slice"].split(" and ")
                if any(singles.get(p, 0) >= s["excess"] - 0.02 for p in parents):
                    continue
            kept.append(s)
        return kept
