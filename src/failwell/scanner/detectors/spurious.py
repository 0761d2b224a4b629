"""Spurious correlation ("Clever Hans") and leakage.

- a single feature that predicts the target almost perfectly is leakage or a marker;
- a metadata column (site, scanner, marker: things that must not decide) that carries the
  model's importance is a Clever Hans cue, confirmed by the "remove the marker" test: the
  performance drop when that column is shuffled;
- a model whose importance sits almost wholly on one feature that alone does as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from failwell.findings import Finding, Metric, Severity
from failwell.scanner.context import ScanContext, SkipDetector
from failwell.scanner.detectors._common import group_codes, mitigation_for, pct
from failwell.stats import auc as roc_auc


def single_feature_auc(col: pd.Series, y: np.ndarray, seed: int = 0) -> float:
    """How well one column alone ranks the target (0.5 = not at all, 1 = perfectly).

    Numbers are used as they are; categories are target-encoded with 2-fold cross-fitting so
    that a high-cardinality id does not look predictive by memorizing rows.
    """
    if y.min() == y.max():
        return 0.5
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        x = col.to_numpy(dtype=float)
        x = np.where(np.isnan(x), np.nanmedian(x) if np.isfinite(x).any() else 0.0, x)
    else:
        codes = group_codes(col.to_frame(), [col.name])[0]
        fold = np.random.default_rng(seed).integers(0, 2, len(y))
        x = np.empty(len(y))
        prior = y.mean()
        for f in (0, 1):
            train = fold != f
            k = codes.max() + 1
            sums = np.bincount(codes[train], weights=y[train], minlength=k)
            counts = np.bincount(codes[train], minlength=k)
            means = (sums + prior) / (counts + 1)  # smoothed towards the prior
            x[fold == f] = means[codes[fold == f]]
    value = roc_auc(y, x)
    return float(max(value, 1 - value))


@dataclass
class SpuriousCorrelationDetector:
    name: ClassVar[str] = "spurious-correlation"
    failure_modes: ClassVar[tuple[str, ...]] = ("spurious-correlation", "leakage")
    description: ClassVar[str] = (
        "Single features that predict the target almost perfectly (leakage or a marker), "
        "metadata columns carrying the model's importance, and the remove-the-marker test."
    )
    leakage_auc: float = 0.97
    metadata_min_drop: float = 0.02
    dominant_share: float = 0.8

    def run(self, ctx: ScanContext) -> list[Finding]:
        frame = ctx.sample_frame()
        y = ctx.dataset.y[ctx.sample_index()]
        if y.min() == y.max():
            raise SkipDetector("the target has one value in the sample")
        single = {c: single_feature_auc(frame[c], y, ctx.config.seed)
                  for c in ctx.dataset.features if c not in ctx.dataset.protected}
        findings = [self._leak(c, auc) for c, auc in single.items() if auc >= self.leakage_auc]
        if ctx.model is None:
            return findings
        drops, metric, base_value = self._permutation_drops(ctx, frame, y)
        total = sum(max(v, 0.0) for v in drops.values())
        for col in ctx.dataset.metadata:
            if col in drops and drops[col] >= self.metadata_min_drop:
                findings.append(self._marker(col, drops, total, metric, base_value, single))
        if total > 0 and not any(f.failure_mode == "spurious-correlation" for f in findings):
            top = max(drops, key=drops.get)
            share = drops[top] / total
            model_auc = base_value  # the model's AUC (accuracy without scores) on the sample
            # only a near-perfect model that one feature matches is suspicious; a strong
            # legitimate signal in an ordinary model is not
            if (share >= self.dominant_share and top in single and model_auc >= 0.9
                    and single[top] >= model_auc - 0.01 and single[top] < self.leakage_auc):
                findings.append(self._dominant(top, share, single[top], model_auc, drops))
        return findings

    def _permutation_drops(self, ctx, frame, y) -> tuple[dict[str, float], str, float]:
        base = ctx.base_on_sample()
        use_auc = base.scores is not None
        metric = "auc" if use_auc else "accuracy"
        base_value = _score(y, base, use_auc)
        rng = np.random.default_rng(ctx.config.seed)
        order = rng.permutation(len(frame))
        columns = [c for c in ctx.model_columns if c not in ctx.dataset.text]
        variants = {}
        for col in columns:
            variant = frame.copy(deep=False)
            variant[col] = frame[col].to_numpy()[order]
            variants[("permute", col)] = variant
        preds = ctx.predict_many(variants)  # every permutation in as few calls as possible
        drops = {}
        for col in columns:
            drops[col] = base_value - _score(y, preds[("permute", col)], use_auc)
            ctx.log_metric(f"importance.{col}", drops[col])
        return drops, metric, base_value

    def _leak(self, col: str, auc: float) -> Finding:
        return Finding(
            "leakage", Severity.CRITICAL if auc >= 0.995 else Severity.HIGH,
            f"{col!r} alone predicts the target (AUC {auc:.3f})",
            f"A single column ranks the outcome almost perfectly. Check whether {col!r} is "
            "recorded after the outcome, or is a marker of it.",
            self.name,
            [Metric("single_feature_auc", auc, self.leakage_auc)],
            {"feature": col},
            mitigation_for("leakage"),
        )

    def _marker(self, col, drops, total, metric, base_value, single) -> Finding:
        drop = drops[col]
        share = drop / total if total > 0 else 1.0
        ranking = sorted(drops.items(), key=lambda kv: -kv[1])
        return Finding(
            "spurious-correlation",
            Severity.HIGH if drop >= 5 * self.metadata_min_drop else Severity.MEDIUM,
            f"Model relies on metadata column {col!r} (Clever Hans)",
            f"Shuffling {col!r} drops {metric} from {base_value:.3f} to "
            f"{base_value - drop:.3f}; it carries {pct(share)} of the model's importance "
            f"(rank {[c for c, _ in ranking].index(col) + 1} of {len(ranking)}).",
            self.name,
            [Metric(f"{metric}_drop_when_shuffled", drop, self.metadata_min_drop),
             Metric("importance_share", share)],
            {"feature": col, "metric": metric, "before": base_value,
             "after_shuffle": base_value - drop, "importance": dict(ranking[:10]),
             "single_feature_auc": single.get(col)},
            mitigation_for("spurious-correlation"),
        )

    def _dominant(self, col, share, auc, model_auc, drops) -> Finding:
        return Finding(
            "spurious-correlation", Severity.LOW,
            f"Model is essentially one feature: {col!r}",
            f"{col!r} carries {pct(share)} of the importance and alone reaches AUC {auc:.3f} "
            f"against the model's {model_auc:.3f}. Confirm it is a cause, not a marker.",
            self.name,
            [Metric("importance_share", share, self.dominant_share),
             Metric("single_feature_auc", auc)],
            {"feature": col, "model_auc": model_auc,
             "importance": dict(sorted(drops.items(), key=lambda kv: -kv[1])[:10])},
            mitigation_for("spurious-correlation"),
        )


def _score(y, preds, use_auc: bool) -> float:
    if use_auc:
        return roc_auc(y, preds.scores)
    return float(np.mean(preds.decisions == y))

