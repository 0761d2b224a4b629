"""Spurious correlation ("Clever Hans"), undeclared shortcuts and leakage.

- A **declared** metadata column (``--metadata``: site, scanner, marker) that carries the
  model's importance is a Clever Hans cue, confirmed by the remove-the-marker test: the drop
  in AUC when that column is shuffled.
- An **undeclared** shortcut is found without being told: a column that (a) predicts the
  target far beyond what every other column reaches together (its single-column AUC minus a
  cross-fitted surrogate's AUC on all the others >= ``beyond_margin``) and (b) carries the
  model (>= ``carry_share`` of the permutation importance, or shuffling it costs half the
  model's skill). Both hold for a shortcut and for a strong feature that nothing else
  duplicates, so what decides severity is the *prior*: a column whose name and values look
  like capture provenance (``provenance.py``) is a high finding; an ordinary-looking one is
  medium when it takes a few discrete values and is statistically isolated from every other
  column within each class (as a marker attached by the capture process is), low when the
  model is essentially that one column (AUC >= 0.9), and not a finding otherwise. A strong
  real feature is usually entangled with others (tumour radius with perimeter), so it
  rarely passes (a); a continuous one that does is a measurement more often than a marker.
- A single column that alone ranks the outcome almost perfectly is leakage or a marker; it
  is high only when it is also beyond the other columns or looks like provenance, since
  real measurements (breast-cancer "worst perimeter", AUC 0.975) get there too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from failwell.findings import Finding, Metric, Severity
from failwell.scanner.context import ScanContext, SkipDetector
from failwell.scanner.detectors._common import (
    cross_fit_proba,
    group_codes,
    mitigation_for,
    pct,
    surrogate_matrix,
)
from failwell.scanner.provenance import provenance_reasons, value_shape
from failwell.stats import auc as roc_auc
from failwell.stats import cramers_v


def single_feature_auc(col: pd.Series, y: np.ndarray, seed: int = 0) -> float:
    """How well one column alone ranks the target (0.5 = not at all, 1 = perfectly).

    Numbers are used as they are (and, when they take few values, also as categories: a
    device code need not be monotone in the label); categories are target-encoded with
    2-fold cross-fitting so that a high-cardinality id does not look predictive by
    memorizing rows.
    """
    if y.min() == y.max():
        return 0.5
    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    best = 0.5
    if numeric:
        x = col.to_numpy(dtype=float)
        x = np.where(np.isnan(x), np.nanmedian(x) if np.isfinite(x).any() else 0.0, x)
        value = roc_auc(y, x)
        best = max(value, 1 - value)
        if col.nunique() > 64:
            return float(best)
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
    return float(max(best, value, 1 - value))


def others_auc(frame: pd.DataFrame, y: np.ndarray, columns: list[str], seed: int) -> float:
    """What every other column reaches together: a cross-fitted gradient-boosted surrogate."""
    x, categorical = surrogate_matrix(frame, columns)
    folds = np.random.default_rng(seed + 2).integers(0, 2, len(y))
    value = roc_auc(y, cross_fit_proba(x, categorical, y, folds, seed))
    return float(max(value, 1 - value))


def within_class_association(frame: pd.DataFrame, y: np.ndarray, col: str,
                             others: list[str], memo: dict | None = None
                             ) -> tuple[float, str | None]:
    """Strongest association of ``col`` with any other column *within* a class.

    A marker attached by the capture process depends on the label and little else, so it is
    isolated once the class is fixed; a real measurement moves with its neighbours.
    ``memo`` keeps each column's codes across the candidates of one scan.
    """
    from failwell.scanner.detectors.proxies import binned_codes

    memo = {} if memo is None else memo
    for c in (col, *others):
        if c not in memo:
            memo[c] = binned_codes(frame[c])
    best, which = 0.0, None
    a_all = memo[col]
    coded = {c: memo[c] for c in others}
    for cls in (0, 1):
        rows = y == cls
        if rows.sum() < 50:
            continue
        a = np.unique(a_all[rows], return_inverse=True)[1]
        for c, codes in coded.items():
            b = np.unique(codes[rows], return_inverse=True)[1]
            v = cramers_v(a, b)
            if v > best:
                best, which = v, c
    return best, which


@dataclass
class SpuriousCorrelationDetector:
    name: ClassVar[str] = "spurious-correlation"
    failure_modes: ClassVar[tuple[str, ...]] = ("spurious-correlation", "leakage")
    description: ClassVar[str] = (
        "Undeclared shortcuts (a column far beyond all others that carries the model, louder "
        "when it looks like provenance), declared metadata carrying the model (the "
        "remove-the-marker test), and single columns that predict the target almost perfectly."
    )
    leakage_auc: float = 0.97
    metadata_min_drop: float = 0.02
    carry_share: float = 0.5
    beyond_margin: float = 0.1
    min_single_auc: float = 0.7
    leaning_share: float = 0.3
    isolated_v: float = 0.1
    max_candidates: int = 5

    def run(self, ctx: ScanContext) -> list[Finding]:
        ds = ctx.dataset
        frame = ctx.sample_frame()
        y = ds.y[ctx.sample_index()]
        if y.min() == y.max():
            raise SkipDetector("the target has one value in the sample")
        columns = [c for c in ds.features if c not in ds.protected and c not in ds.text]
        single = {c: single_feature_auc(frame[c], y, ctx.config.seed) for c in columns}
        for c, v in single.items():
            ctx.log_metric(f"single_auc.{c}", v)
        drops, metric, base_value = ({}, "", 0.0)
        if ctx.model is not None:
            drops, metric, base_value = self._permutation_drops(ctx, frame, y)
        total = sum(max(v, 0.0) for v in drops.values())
        share = {c: max(v, 0.0) / total if total > 0 else 0.0 for c, v in drops.items()}
        findings = [self._marker(c, drops, total, metric, base_value, single)
                    for c in ds.metadata
                    if c in drops and drops[c] >= self.metadata_min_drop]
        declared = set(ds.metadata)
        undeclared = [c for c in columns if c not in declared]
        ranked = sorted(undeclared, key=lambda c: -single[c])
        candidates = [c for c in ranked if single[c] >= self.min_single_auc]
        candidates = candidates[: self.max_candidates]
        if share:
            top = max((c for c in undeclared if c in share), key=share.get, default=None)
            if top and share[top] >= self.carry_share and top not in candidates:
                candidates.append(top)
        reported = set(declared)
        codes: dict[str, np.ndarray] = {}  # binned columns, shared by the candidates
        for col in candidates:
            judged = self._judge(ctx, frame, y, col, columns, single, drops, share, metric,
                                 base_value, codes)
            if judged:
                findings.append(judged)
                reported.add(col)
        if ctx.model is not None:
            for col in undeclared:  # provenance-looking columns the model leans on
                if col in reported or share.get(col, 0) < self.leaning_share \
                        or drops.get(col, 0) < self.metadata_min_drop:
                    continue
                reasons = provenance_reasons(frame[col])
                if reasons:
                    findings.append(self._leaning(col, reasons, drops, share, metric,
                                                  base_value, single))
                    reported.add(col)
        return findings

    def _judge(self, ctx, frame, y, col, columns, single, drops, share, metric,
               base_value, codes) -> Finding | None:
        """One candidate column: an undeclared shortcut, leakage, or nothing."""
        if single[col] < self.min_single_auc:
            return None  # cannot be beyond the others: skip the surrogate
        rest = [c for c in columns if c != col]
        others = others_auc(frame, y, rest, ctx.config.seed) if rest else 0.5
        beyond = single[col] - others >= self.beyond_margin and \
            single[col] >= self.min_single_auc
        reasons = provenance_reasons(frame[col])
        skill = base_value - 0.5 if metric == "auc" else 0.0
        carries = bool(drops) and (share.get(col, 0.0) >= self.carry_share
                                   or (skill > 0 and drops.get(col, 0.0) >= 0.5 * skill))
        isolation, neighbour = within_class_association(frame, y, col, rest, codes)
        facts = {"single_feature_auc": single[col], "others_auc": others,
                 "beyond_others": single[col] - others, "provenance": reasons,
                 "within_class_association": isolation, "closest_column": neighbour}
        ctx.diagnostics.setdefault("shortcut_candidates", {})[col] = {
            **facts, "importance_share": share.get(col), "carries_model": carries}
        if carries and beyond:
            discrete = value_shape(frame[col]) != "continuous"
            if reasons:
                severity = Severity.HIGH
            elif discrete and isolation <= self.isolated_v:
                severity = Severity.MEDIUM
            elif single[col] >= 0.9:
                severity = Severity.LOW  # the model is essentially one strong feature
            else:
                severity = None  # an ordinary strong feature: not a finding
            if severity is not None:
                return self._shortcut(col, severity, facts, drops, share, metric, base_value)
        if single[col] >= self.leakage_auc:
            if single[col] >= 0.995 and beyond:
                severity = Severity.CRITICAL
            elif beyond or reasons:
                severity = Severity.HIGH
            else:
                severity = Severity.MEDIUM
            return self._leak(col, severity, facts)
        if ctx.model is None and reasons and beyond and single[col] >= 0.8:
            return self._shortcut(col, Severity.MEDIUM, facts, {}, {}, "", 0.0)
        return None

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

    def _shortcut(self, col, severity, facts, drops, share, metric, base_value) -> Finding:
        why = ("it looks like capture provenance: " + "; ".join(facts["provenance"])
               if facts["provenance"] else
               "it takes a few discrete values and is isolated from every other column "
               "within each class, as a marker attached by the capture process would be"
               if severity == Severity.MEDIUM else
               "it predicts far beyond the other columns, though it moves with "
               f"{facts['closest_column']!r} like a real measurement")
        lines = [f"{col!r} alone reaches AUC {facts['single_feature_auc']:.3f}; every other "
                 f"column together reaches {facts['others_auc']:.3f}."]
        metrics = [Metric("single_feature_auc", facts["single_feature_auc"]),
                   Metric("beyond_others", facts["beyond_others"], self.beyond_margin)]
        if drops:
            drop = drops[col]
            lines.append(f"Shuffling it (remove-the-marker test) drops {metric} from "
                         f"{base_value:.3f} to {base_value - drop:.3f}; it carries "
                         f"{pct(share[col])} of the model's importance.")
            metrics += [Metric(f"{metric}_drop_when_shuffled", drop),
                        Metric("importance_share", share[col], self.carry_share)]
        else:
            lines.append("A model trained on this data would learn it.")
        lines.append(f"Suspected because {why}. Confirm that {col!r} is a cause of the "
                     "outcome and not a record of where or how the row was captured.")
        return Finding(
            "spurious-correlation", severity,
            f"Possible shortcut: {'model leans on ' if drops else ''}{col!r}"
            + (" (looks like provenance)" if facts["provenance"] else ""),
            " ".join(lines), self.name, metrics,
            {"feature": col, "declared_metadata": False, "metric": metric or None,
             "before": base_value if drops else None,
             "after_shuffle": base_value - drops[col] if drops else None,
             "importance": dict(sorted(drops.items(), key=lambda kv: -kv[1])[:10]), **facts},
            mitigation_for("spurious-correlation"),
        )

    def _leaning(self, col, reasons, drops, share, metric, base_value, single) -> Finding:
        return Finding(
            "spurious-correlation", Severity.MEDIUM,
            f"Model leans on {col!r}, which looks like provenance",
            f"Shuffling {col!r} drops {metric} from {base_value:.3f} to "
            f"{base_value - drops[col]:.3f} ({pct(share[col])} of the model's importance). "
            f"Suspected because {'; '.join(reasons)}. If it records where or how a row was "
            "captured, the model will not transfer to other sites or devices.",
            self.name,
            [Metric(f"{metric}_drop_when_shuffled", drops[col], self.metadata_min_drop),
             Metric("importance_share", share[col], self.leaning_share)],
            {"feature": col, "declared_metadata": False, "provenance": reasons,
             "single_feature_auc": single.get(col), "metric": metric, "before": base_value,
             "after_shuffle": base_value - drops[col],
             "importance": dict(sorted(drops.items(), key=lambda kv: -kv[1])[:10])},
            mitigation_for("spurious-correlation"),
        )

    def _leak(self, col: str, severity: Severity, facts: dict) -> Finding:
        auc = facts["single_feature_auc"]
        context = (f" Every other column together reaches only {facts['others_auc']:.3f}."
                   if facts["beyond_others"] >= self.beyond_margin else
                   f" The other columns together reach {facts['others_auc']:.3f} too, which "
                   "fits a strong genuine signal.")
        return Finding(
            "leakage", severity,
            f"{col!r} alone predicts the target (AUC {auc:.3f})",
            f"A single column ranks the outcome almost perfectly.{context} Check whether "
            f"{col!r} is recorded after the outcome, or is a marker of it.",
            self.name,
            [Metric("single_feature_auc", auc, self.leakage_auc)],
            {"feature": col, **facts},
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

def _score(y, preds, use_auc: bool) -> float:
    if use_auc:
        return roc_auc(y, preds.scores)
    return float(np.mean(preds.decisions == y))

