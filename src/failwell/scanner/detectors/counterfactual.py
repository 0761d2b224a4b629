"""Counterfactual fairness: would the decision change if only the protected attribute changed?

Three checks, each predicting one batch per variant through the shared cache:
1. swap each protected attribute that the model reads to every other value;
2. find proxies (features associated with a protected attribute, Cramér's V) and repeat the
   swap with the proxies moved to the other group's distribution (quantile mapping), since a
   model that never reads race can still act on it through its proxies;
3. swap gendered words in text columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from failwell.findings import Finding, Metric
from failwell.scanner.context import ScanContext
from failwell.scanner.detectors._common import group_codes, mitigation_for, pct, severity_by
from failwell.scanner.detectors.textswap import swap_gender_terms


def cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Bias-corrected Cramér's V between two integer-coded variables (Bergsma 2013)."""
    ka, kb = a.max() + 1, b.max() + 1
    table = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb).astype(float)
    table = table[table.sum(1) > 0][:, table.sum(0) > 0]
    n = table.sum()
    r, k = table.shape
    if n == 0 or min(r, k) < 2:
        return 0.0
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    phi2 = ((table - expected) ** 2 / expected).sum() / n
    phi2c = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    rc, kc = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    denom = min(rc - 1, kc - 1)
    return float(np.sqrt(phi2c / denom)) if denom > 0 else 0.0


def binned_codes(col: pd.Series, bins: int = 10) -> np.ndarray:
    """Codes for association tests: quantile bins for numbers, categories otherwise."""
    if pd.api.types.is_numeric_dtype(col) and col.nunique() > bins:
        codes = pd.qcut(col.rank(method="first"), bins, labels=False).to_numpy()
        return np.where(np.isnan(codes), bins, codes).astype(np.int64)
    return group_codes(col.to_frame(), [col.name])[0]


@dataclass
class CounterfactualDetector:
    name: ClassVar[str] = "counterfactual"
    failure_modes: ClassVar[tuple[str, ...]] = ("counterfactual-unfairness", "proxy-feature")
    description: ClassVar[str] = (
        "Decision flip rate when a protected attribute (or gendered words in text) is swapped, "
        "proxy features for protected attributes, and the swap repeated through the proxies."
    )
    max_flip_rate: float = 0.05  # a model with noise-level weights flips ~1-2 % at the margin
    proxy_min_cramers_v: float = 0.3
    max_values: int = 10

    def run(self, ctx: ScanContext) -> list[Finding]:
        ctx.require_model()
        frame = ctx.sample_frame()
        base = ctx.base_on_sample().decisions
        findings: list[Finding] = []
        for attr in ctx.dataset.protected:
            proxies = self._proxies(ctx, frame, attr)
            if proxies:
                findings.append(self._proxy_finding(ctx, attr, proxies))
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
        for value in values:
            variant = frame.copy(deep=False)
            variant[attr] = pd.Series([value] * len(frame), index=frame.index,
                                      dtype=frame[attr].dtype)
            for p in proxy_cols:
                variant[p] = _transport(frame[p], original, value, ctx.config.seed)
            key = ("counterfactual", attr, str(value), tuple(proxy_cols))
            pred = ctx.predict(key, variant).decisions
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
            [Metric("flip_rate", rate, self.max_flip_rate)],
            {"attribute": attr, "through_proxies": proxy_cols, "attribute_is_input": reads_attr,
             "pairs": pairs, "rows_tested": len(frame)},
            mitigation_for("counterfactual-unfairness"),
        )

    # -- proxies ---------------------------------------------------------------------------
    def _proxies(self, ctx: ScanContext, frame: pd.DataFrame, attr: str) -> dict[str, float]:
        target = group_codes(frame, [attr])[0]
        skip = {attr, *ctx.dataset.protected, *ctx.dataset.text}
        scores = {}
        for col in ctx.dataset.features:
            if col in skip:
                continue
            v = cramers_v(binned_codes(frame[col]), target)
            ctx.log_metric(f"proxy.{attr}.{col}.cramers_v", v)
            if v >= self.proxy_min_cramers_v:
                scores[col] = v
        return dict(sorted(scores.items(), key=lambda kv: -kv[1]))

    def _proxy_finding(self, ctx, attr: str, proxies: dict[str, float]) -> Finding:
        top, v = next(iter(proxies.items()))
        used = [p for p in proxies if p in ctx.model_columns]
        return Finding(
            "proxy-feature",
            severity_by(v, 0.0, 0.5),
            f"{len(proxies)} feature(s) act as proxies for {attr}",
            f"{top!r} is associated with {attr!r} (Cramér's V {v:.2f}); "
            f"{len(used)} of the proxies are model inputs, so dropping {attr!r} does not "
            "remove its influence.",
            self.name,
            [Metric("max_cramers_v", v, self.proxy_min_cramers_v)],
            {"attribute": attr, "proxies": proxies, "model_inputs": used},
            mitigation_for("proxy-feature"),
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
