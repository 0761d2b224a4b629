"""Data audit: the data-optimism checks that need no model.

Class imbalance, representation of protected groups, label base-rate disparity (historical
bias), missing values, duplicate rows, and train/test overlap when a reference set is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from failwell.findings import Finding, Metric, Severity
from failwell.scanner.context import ScanContext
from failwell.scanner.detectors._common import group_codes, mitigation_for, pct, severity_by
from failwell.stats import two_proportion_pvalue, wilson_interval


@dataclass
class DataAuditDetector:
    name: ClassVar[str] = "data-audit"
    failure_modes: ClassVar[tuple[str, ...]] = (
        "class-imbalance", "underrepresentation", "historical-bias", "data-quality", "leakage",
    )
    description: ClassVar[str] = (
        "Class imbalance, protected-group representation, label base-rate disparity across "
        "groups, missing values, duplicates, and train/test overlap."
    )
    min_class_share: float = 0.1
    min_group_share: float = 0.05
    base_rate_ratio_min: float = 0.8
    max_missing_share: float = 0.05
    max_duplicate_share: float = 0.01

    def run(self, ctx: ScanContext) -> list[Finding]:
        checks = (self._imbalance, self._representation, self._base_rates, self._missing,
                  self._duplicates, self._overlap)
        return [f for check in checks for f in check(ctx)]

    def _imbalance(self, ctx: ScanContext) -> list[Finding]:
        share = float(ctx.dataset.y.mean())
        minority = min(share, 1 - share)
        ctx.log_metric("data.minority_class_share", minority)
        if minority >= self.min_class_share:
            return []
        return [Finding(
            "class-imbalance",
            Severity.HIGH if minority < self.min_class_share / 5 else Severity.MEDIUM,
            f"Rare outcome: the minority class is {pct(minority)} of rows",
            f"{ctx.dataset.target!r} is positive in {pct(share)} of {ctx.dataset.n_rows} rows; "
            "accuracy will look good while the rare class is missed.",
            self.name,
            [Metric("minority_class_share", minority, self.min_class_share, higher_is_worse=False)],
            {"positive_share": share, "n_rows": ctx.dataset.n_rows},
            mitigation_for("class-imbalance"),
        )]

    def _representation(self, ctx: ScanContext) -> list[Finding]:
        findings = []
        n = ctx.dataset.n_rows
        for attr in ctx.dataset.protected:
            counts = ctx.dataset.frame[attr].value_counts(dropna=False)
            small = {str(k): int(v) for k, v in counts.items() if v / n < self.min_group_share}
            if not small:
                continue
            smallest = min(small.values()) / n
            findings.append(Finding(
                "underrepresentation",
                Severity.MEDIUM if smallest < self.min_group_share / 5 else Severity.LOW,
                f"Under-represented {attr} groups: {', '.join(small)}",
                f"{len(small)} group(s) of {attr!r} hold under {pct(self.min_group_share)} of "
                "rows each; metrics for them are uncertain and the model sees few examples.",
                self.name,
                [Metric("smallest_group_share", smallest, self.min_group_share,
                        higher_is_worse=False)],
                {"attribute": attr, "small_groups": small,
                 "all_groups": {str(k): int(v) for k, v in counts.items()}},
                mitigation_for("underrepresentation"),
            ))
        return findings

    def _base_rates(self, ctx: ScanContext) -> list[Finding]:
        findings = []
        y = ctx.dataset.y
        for attr in ctx.dataset.protected:
            codes, labels = group_codes(ctx.dataset.frame, [attr])
            n = np.bincount(codes, minlength=len(labels))
            pos = np.bincount(codes, weights=y, minlength=len(labels))
            rows = []
            for i, lab in enumerate(labels):
                ci = wilson_interval(pos[i], n[i])
                rows.append({"group": lab, "n": int(n[i]), "positives": int(pos[i]),
                             "base_rate": pos[i] / n[i], "ci": list(ci),
                             "uncertain": ctx.config.uncertain(n[i], ci)})
            ok = [r for r in rows if not r["uncertain"]]
            if len(ok) < 2:
                continue
            lo = min(ok, key=lambda r: r["base_rate"])
            hi = max(ok, key=lambda r: r["base_rate"])
            ratio = lo["base_rate"] / hi["base_rate"] if hi["base_rate"] else 1.0
            p = two_proportion_pvalue(lo["positives"], lo["n"], hi["positives"], hi["n"])
            ctx.log_metric(f"data.{attr}.base_rate_ratio", ratio)
            if ratio >= self.base_rate_ratio_min or p >= ctx.config.alpha:
                continue
            findings.append(Finding(
                "historical-bias",
                severity_by(1 - ratio, 0.0, 0.4),
                f"Label base rate differs across {attr}",
                f"{ctx.dataset.target!r} is positive for {pct(hi['base_rate'])} of {hi['group']} "
                f"but {pct(lo['base_rate'])} of {lo['group']} (ratio {ratio:.2f}). If the labels "
                "record past decisions, a model will learn that history.",
                self.name,
                [Metric("base_rate_ratio", ratio, self.base_rate_ratio_min,
                        higher_is_worse=False)],
                {"attribute": attr, "groups": rows, "p_value": p},
                mitigation_for(
                    "historical-bias",
                    "weights from failwell.mitigate.reweighing(groups, labels) make group and "
                    "label independent; failwell.mitigate.resample_balanced re-samples instead",
                ),
            ))
        return findings

    def _missing(self, ctx: ScanContext) -> list[Finding]:
        ds = ctx.dataset
        used = dict.fromkeys([ds.target, *ds.features, *ds.protected, *ds.metadata, *ds.text])
        shares = ds.frame[list(used)].isna().mean()
        bad = shares[shares > self.max_missing_share].sort_values(ascending=False)
        ctx.log_metric("data.max_missing_share", float(shares.max()) if len(shares) else 0.0)
        if bad.empty:
            return []
        return [Finding(
            "data-quality",
            severity_by(float(bad.iloc[0]), 0.0, 0.3),
            f"Missing values in {len(bad)} column(s)",
            ", ".join(f"{c} {pct(v)}" for c, v in bad.head(8).items())
            + (" ..." if len(bad) > 8 else ""),
            self.name,
            [Metric("max_missing_share", float(bad.iloc[0]), self.max_missing_share)],
            {"missing_share": {str(c): float(v) for c, v in bad.items()}},
            mitigation_for("data-quality"),
        )]

    def _duplicates(self, ctx: ScanContext) -> list[Finding]:
        dup = pd.Series(ctx.dataset.row_hashes).duplicated().to_numpy()
        share = float(dup.mean())
        ctx.log_metric("data.duplicate_share", share)
        if share <= self.max_duplicate_share:
            return []
        return [Finding(
            "data-quality", severity_by(share, 0.0, 0.1),
            f"{int(dup.sum())} duplicate rows ({pct(share)})",
            "Exact duplicate rows inflate evaluation and can leak between splits.",
            self.name,
            [Metric("duplicate_share", share, self.max_duplicate_share)],
            {"example_rows": np.flatnonzero(dup)[:10].tolist()},
            mitigation_for("data-quality"),
        )]

    def _overlap(self, ctx: ScanContext) -> list[Finding]:
        """Test rows found in the training data, beyond what chance explains.

        Every shared column is compared by exact row hash (ids included, when present).
        Distinct people can share a few coarse values, so chance is estimated from the *test*
        set: a row whose values recur among the other test rows with frequency p would meet
        one of n training rows by chance with probability 1 - (1 - p)^n. Training's own
        duplicates never enter the estimate, so a duplicate-heavy training set cannot hide
        rows copied into the test set; copies that are duplicated inside the test set itself
        raise the chance level and are reported by the duplicates check instead.
        """
        ref = ctx.config.reference
        if ref is None:
            return []
        cols = [c for c in ctx.dataset.frame.columns if c in ref.columns]
        if not cols:
            return []
        test_h = pd.util.hash_pandas_object(ctx.dataset.frame[cols], index=False).to_numpy()
        ref_h = pd.util.hash_pandas_object(ref[cols], index=False).to_numpy()
        shared = np.isin(test_h, ref_h)
        n_test, n_ref = len(test_h), len(ref_h)
        _, inverse, counts = np.unique(test_h, return_inverse=True, return_counts=True)
        p_value = (counts[inverse] - 1) / max(n_test - 1, 1)
        chance_each = -np.expm1(n_ref * np.log1p(-np.minimum(p_value, 1 - 1e-12)))
        chance = float(chance_each.mean())
        share = float(shared.mean())
        excess = share - chance
        pval = float(stats.poisson.sf(int(shared.sum()) - 1, max(chance_each.sum(), 1e-9)))
        ctx.log_metric("data.train_test_overlap", share)
        ctx.log_metric("data.train_test_overlap_chance", chance)
        if excess <= self.max_duplicate_share or pval >= ctx.config.alpha:
            return []
        return [Finding(
            "leakage", severity_by(excess, 0.0, 0.05, 0.25),
            f"{int(shared.sum())} test rows also appear in the training data ({pct(share)})",
            f"Rows shared between training and evaluation make scores optimistic. Judging by "
            f"how often rows repeat within the test set, {pct(chance)} would match by chance.",
            self.name,
            [Metric("train_test_overlap", share, chance + self.max_duplicate_share),
             Metric("chance_overlap", chance)],
            {"example_rows": np.flatnonzero(shared)[:10].tolist(), "columns_compared": cols,
             "expected_by_chance": float(chance_each.sum()), "p_value": pval,
             "training_rows": n_ref},
            mitigation_for("leakage"),
        )]
