"""Proxy features: columns that stand in for a protected attribute, with or without a model.

Proxies are a property of the data and of the decisions, so this needs no model: an auditor
holding a vendor's decisions (``--prediction`` / ``--score``) needs it most. Two questions:

1. **Association**: is the column tied to the attribute? Bias-corrected Cramér's V on
   quantile-binned numbers and on categories (>= ``min_cramers_v``).
2. **Do the decisions follow it?** A surrogate of the decisions (gradient boosting, cross-
   fitted) is trained on every feature plus the protected attributes, then again without the
   proxy. If dropping the proxy makes the decisions clearly harder to predict, they depend on
   it *beyond the group and beyond every other column*. A raw association between decisions
   and proxy would be fooled when the decisions follow another column that the proxy
   correlates with; the drop-column surrogate is not. Near-duplicate proxies are also dropped
   together, since each one alone can stand in for the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from failwell.findings import Finding, Metric, Severity
from failwell.scanner.context import ScanContext, SkipDetector
from failwell.scanner.detectors._common import (
    cross_fit_proba,
    group_codes,
    mitigation_for,
    surrogate_matrix,
)
from failwell.stats import cramers_v


def binned_codes(col: pd.Series, bins: int = 10) -> np.ndarray:
    """Codes for association tests: quantile bins for numbers, categories otherwise."""
    if pd.api.types.is_numeric_dtype(col) and col.nunique() > bins:
        codes = pd.qcut(col.rank(method="first"), bins, labels=False).to_numpy()
        return np.where(np.isnan(codes), bins, codes).astype(np.int64)
    return group_codes(col.to_frame(), [col.name])[0]


def find_proxies(frame: pd.DataFrame, attr: str, candidates: list[str],
                 min_v: float) -> tuple[dict[str, float], dict[str, float]]:
    """(proxies above ``min_v`` strongest first, every candidate's Cramér's V)."""
    target = group_codes(frame, [attr])[0]
    scores = {col: cramers_v(binned_codes(frame[col]), target) for col in candidates
              if col != attr}
    proxies = {c: v for c, v in sorted(scores.items(), key=lambda kv: -kv[1]) if v >= min_v}
    return proxies, scores


def oof_log_loss(x: np.ndarray, categorical: np.ndarray, d: np.ndarray, folds: np.ndarray,
                 seed: int) -> np.ndarray:
    """Per-row out-of-fold log-loss of a surrogate predicting the decisions ``d``."""
    p = np.clip(cross_fit_proba(x, categorical, d, folds, seed), 1e-6, 1 - 1e-6)
    return -(d * np.log(p) + (1 - d) * np.log(1 - p))


@dataclass
class ProxyFeatureDetector:
    name: ClassVar[str] = "proxy-features"
    failure_modes: ClassVar[tuple[str, ...]] = ("proxy-feature",)
    description: ClassVar[str] = (
        "Features associated with each protected attribute (Cramér's V), and whether the "
        "decisions follow them beyond the group and the other columns (a drop-column "
        "surrogate of the decisions); works on a decision column without a model."
    )
    min_cramers_v: float = 0.3
    min_follow_nats: float = 0.005  # mean log-loss increase when the proxy is dropped
    max_rows: int = 10_000

    def run(self, ctx: ScanContext) -> list[Finding]:
        protected = ctx.require_protected()
        ds = ctx.dataset
        rng = np.random.default_rng(ctx.config.seed)
        idx = np.arange(ds.n_rows) if ds.n_rows <= self.max_rows else np.sort(
            rng.choice(ds.n_rows, self.max_rows, replace=False))
        frame = ds.frame.iloc[idx].reset_index(drop=True)
        try:
            decisions = ctx.base().decisions[idx].astype(int)
        except SkipDetector:
            decisions = None  # data only: association, not use
        candidates = [c for c in dict.fromkeys(ds.features + ds.metadata)
                      if c not in ds.protected and c not in ds.text]
        findings = []
        losses: dict[frozenset, np.ndarray] = {}  # by dropped columns, shared by attributes
        for attr in protected:
            proxies, scores = find_proxies(frame, attr, candidates, self.min_cramers_v)
            for col, v in scores.items():
                ctx.log_metric(f"proxy.{attr}.{col}.cramers_v", v)
            if not proxies:
                continue
            follow = None
            if decisions is not None and decisions.min() != decisions.max():
                follow = self._follow(ctx, frame, decisions, candidates, list(proxies),
                                      losses)
                for col, row in follow.items():
                    if col != "(together)":
                        ctx.log_metric(f"proxy.{attr}.{col}.follow_nats", row["nats"])
            findings.append(self._finding(ctx, attr, proxies, follow, len(frame)))
        return findings

    def _follow(self, ctx, frame, d, candidates, proxies, losses) -> dict[str, dict]:
        """For each proxy (and all of them together): the surrogate's loss when dropped.
        ``losses`` keeps each surrogate's per-row loss by the columns it dropped, so the
        attributes of one scan share the full surrogate and any common proxy."""
        columns = [*candidates, *ctx.dataset.protected]
        folds = np.random.default_rng(ctx.config.seed + 1).integers(0, 2, len(d))
        matrix: list = []

        def loss(dropped: frozenset) -> np.ndarray:
            if dropped not in losses:
                if not matrix:
                    matrix.extend(surrogate_matrix(frame, columns))
                x, categorical = matrix
                keep = [i for i, c in enumerate(columns) if c not in dropped]
                losses[dropped] = oof_log_loss(x[:, keep], categorical[keep], d, folds,
                                               ctx.config.seed)
            return losses[dropped]

        full = loss(frozenset())
        drops = {p: [p] for p in proxies}
        if len(proxies) > 1:
            drops["(together)"] = proxies
        alpha = ctx.config.alpha / len(drops)
        out = {}
        for label, cols in drops.items():
            delta = loss(frozenset(cols)) - full
            se = delta.std(ddof=1) / np.sqrt(len(delta)) if len(delta) > 1 else 0.0
            mean = float(delta.mean())
            p = float(stats.norm.sf(mean / se)) if se > 0 else (0.0 if mean > 0 else 1.0)
            out[label] = {"nats": mean, "p_value": p,
                          "followed": bool(mean >= self.min_follow_nats and p < alpha)}
        return out

    def _finding(self, ctx, attr, proxies, follow, n_rows) -> Finding:
        top, v = next(iter(proxies.items()))
        inputs = [p for p in proxies if ctx.model is not None and p in ctx.model_columns]
        followed = [p for p in proxies if follow and follow[p]["followed"]]
        jointly = bool(follow and not followed and follow.get("(together)", {}).get("followed"))
        if follow is None:
            use = ("no decisions were given, so whether they follow the proxies was not "
                   "tested" if ctx.model is None and ctx.dataset.given_predictions() is None
                   else "the decisions are constant")
        elif followed:
            use = (f"at equal {attr} and with every other column known, the decisions still "
                   f"follow {', '.join(map(repr, followed))}")
        elif jointly:
            use = (f"the decisions follow these proxies together (each can stand in for the "
                   f"other), at equal {attr}")
        else:
            use = (f"the decisions do not follow them beyond {attr} and the other columns, "
                   "but a model trained on this data could")
        severity = (Severity.HIGH if v >= 0.5 else Severity.MEDIUM) if (followed or jointly) \
            else Severity.LOW if follow is not None else Severity.MEDIUM
        evidence = {"attribute": attr, "proxies": proxies, "model_inputs": inputs,
                    "followed": followed, "followed_jointly": jointly, "rows_tested": n_rows,
                    "surrogate": follow}
        metrics = [Metric("max_cramers_v", v, self.min_cramers_v)]
        if follow:
            strongest = max(follow.values(), key=lambda r: r["nats"])
            metrics.append(Metric("decision_follow_nats", strongest["nats"],
                                  self.min_follow_nats))
        more = f", and {len(proxies) - 1} more" if len(proxies) > 1 else ""
        summary = f"{top!r} is associated with {attr!r} (Cramér's V {v:.2f}{more}); {use}."
        if ctx.model is not None:
            summary += (f" {len(inputs)} of the {len(proxies)} proxies are model inputs, so "
                        f"leaving {attr!r} out of the model does not remove its influence.")
        title = f"{len(proxies)} feature(s) act as proxies for {attr}"
        if followed or jointly:
            title += f"; decisions follow {', '.join(followed or proxies)}"
        return Finding("proxy-feature", severity, title, summary, self.name, metrics, evidence,
                       mitigation_for("proxy-feature"))
