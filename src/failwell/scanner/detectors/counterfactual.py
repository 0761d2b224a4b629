"""Counterfactual fairness: would the decision change if only the protected attribute changed?

Three checks, each predicting one batch per variant through the shared cache:
1. swap each protected attribute that the model reads to every other value;
2. repeat the swap with the attribute's proxies (found as in ``proxies.py``, which reports
   them) moved to the other group's distribution (quantile mapping), since a model that
   never reads race can still act on it through its proxies;
3. swap gendered words in text columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from failwell.findings import Finding, Metric
from failwell.scanner.context import ScanContext
from failwell.scanner.detectors._common import mitigation_for, pct, severity_by
from failwell.scanner.detectors.proxies import find_proxies
from failwell.scanner.detectors.textswap import swap_gender_terms
from failwell.stats import wilson_interval


@dataclass
class CounterfactualDetector:
    name: ClassVar[str] = "counterfactual"
    failure_modes: ClassVar[tuple[str, ...]] = ("counterfactual-unfairness",)
    description: ClassVar[str] = (
        "Decision flip rate when a protected attribute (or gendered words in text) is swapped, "
        "and the swap repeated with the attribute's proxies moved to the other group."
    )
    max_flip_rate: float = 0.05  # a model with noise-level weights flips ~1-2 % at the margin
    proxy_min_cramers_v: float = 0.3
    max_values: int = 10

    def run(self, ctx: ScanContext) -> list[Finding]:
        ctx.require_model()
        frame = ctx.sample_frame()
        base = ctx.base_on_sample().decisions
        findings: list[Finding] = []
        candidates = [c for c in ctx.dataset.features
                      if c not in ctx.dataset.protected and c not in ctx.dataset.text]
        for attr in ctx.dataset.protected:
            proxies, _ = find_proxies(frame, attr, candidates, self.proxy_min_cramers_v)
            f = self._swap(ctx, frame, base, attr, proxies)
            if f:
                findings.append(f)
        for col in ctx.dataset.text:
            f = self._text_swap(ctx, frame, base, col)
            if f:
                findings.append(f)
        return findings

    # -- attribute swaps -------------------------------------------------------------------
    def _values(self, ctx: ScanContext, frame: pd.DataFrame, attr: str) -> list:
        counts = frame[attr].value_counts()
        keep = counts[counts >= ctx.config.min_group_size].head(self.max_values)
        return keep.index.tolist()

    def _swap(self, ctx, frame, base, attr, proxies: dict[str, float]) -> Finding | None:
        reads_attr = attr in ctx.model_columns
        proxy_cols = [p for p in proxies if p in ctx.model_columns]
        if not reads_attr and not proxy_cols:
            ctx.log_metric(f"counterfactual.{attr}.flip_rate", 0.0)
            return None
        values = self._values(ctx, frame, attr)
        original = frame[attr].to_numpy()
        pairs, flips_total, changed_total = [], 0, 0
        variants = {}
        for value in values:
            variant = frame.copy(deep=False)
            variant[attr] = pd.Series([value] * len(frame), index=frame.index,
                                      dtype=frame[attr].dtype)
            for p in proxy_cols:
                variant[p] = _transport(frame[p], original, value, ctx.config.seed)
            variants[("counterfactual", attr, str(value), tuple(proxy_cols))] = variant
        preds = ctx.predict_many(variants)
        for value in values:
            pred = preds[("counterfactual", attr, str(value), tuple(proxy_cols))].decisions
            for src in values:
                if src == value:
                    continue
                rows = original == src
                n = int(rows.sum())
                flips = int((pred[rows] != base[rows]).sum())
                up = int(((pred[rows] == 1) & (base[rows] == 0)).sum())
                pairs.append({"from": str(src), "to": str(value), "n": n,
                              "flip_rate": flips / n if n else 0.0,
                              "to_positive": up, "to_negative": flips - up})
                flips_total += flips
                changed_total += n
        rate = flips_total / changed_total if changed_total else 0.0
        ctx.log_metric(f"counterfactual.{attr}.flip_rate", rate)
        if rate <= self.max_flip_rate:
            return None
        worst = max(pairs, key=lambda p: p["flip_rate"])
        how = f"only {attr!r} changed" if not proxy_cols else (
            f"{attr!r} changed with its proxies {proxy_cols} moved to the other group's "
            "distribution" if reads_attr else
            f"the model does not read {attr!r}, but its proxies {proxy_cols} moved to the "
            "other group's distribution"
        )
        return Finding(
            "counterfactual-unfairness",
            severity_by(rate, 0.0, 0.1),
            f"Decisions change when {attr} changes ({pct(rate)} flip)",
            f"With {how}, {pct(rate)} of decisions flip; worst: {worst['from']} -> "
            f"{worst['to']} flips {pct(worst['flip_rate'])} of {worst['n']} rows.",
            self.name,
            [Metric("flip_rate", rate, self.max_flip_rate,
                    ci=wilson_interval(flips_total, changed_total))],
            {"attribute": attr, "through_proxies": proxy_cols, "attribute_is_input": reads_attr,
             "pairs": pairs, "rows_tested": len(frame)},
            mitigation_for("counterfactual-unfairness"),
        )

    # -- text ------------------------------------------------------------------------------
    def _text_swap(self, ctx, frame, base, col: str) -> Finding | None:
        text = frame[col].fillna("").astype(str)
        swapped = text.map(swap_gender_terms)
        changed = (swapped != text).to_numpy()
        n = int(changed.sum())
        if n == 0:
            return None
        variant = frame.copy(deep=False)
        variant[col] = swapped.to_numpy()
        pred = ctx.predict(("text-swap", col), variant).decisions
        flipped = changed & (pred != base)
        rate = float(flipped.sum()) / n
        ctx.log_metric(f"counterfactual.text.{col}.flip_rate", rate)
        if rate <= self.max_flip_rate:
            return None
        examples = [{"row": int(i), "original": text.iloc[i][:200],
                     "swapped": swapped.iloc[i][:200], "decision": int(base[i]),
                     "counterfactual_decision": int(pred[i])}
                    for i in np.flatnonzero(flipped)[:5]]
        return Finding(
            "counterfactual-unfairness",
            severity_by(rate, 0.0, 0.1),
            f"Decisions change when gendered words in {col!r} are swapped ({pct(rate)} flip)",
            f"Swapping gendered terms (e.g. \"women's\" <-> \"men's\") flips {pct(rate)} of "
            f"{n} affected decisions.",
            self.name,
            [Metric("flip_rate", rate, self.max_flip_rate)],
            {"text_column": col, "rows_changed": n, "examples": examples},
            mitigation_for("counterfactual-unfairness"),
        )


def _transport(col: pd.Series, groups: np.ndarray, to_value, seed: int) -> np.ndarray:
    """Move each row's value to the same quantile of the ``to_value`` group's distribution."""
    target_vals = col[groups == to_value].dropna().to_numpy()
    values = col.to_numpy()
    if len(target_vals) == 0:
        return values
    if pd.api.types.is_numeric_dtype(col):
        out = values.astype(float).copy()
        for g in pd.unique(groups):
            rows = groups == g
            ranks = col[rows].rank(pct=True).to_numpy()
            out[rows] = np.quantile(target_vals, np.nan_to_num(ranks, nan=0.5),
                                    method="inverted_cdf")
        return out.astype(values.dtype) if np.issubdtype(values.dtype, np.integer) else out
    rng = np.random.default_rng(seed)
    return rng.choice(target_vals, size=len(values))
