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
from failwell.scanner.detectors._common import mitigation_for, ordered_labels, pct, severity_by
from failwell.scanner.detectors.fairness import group_counts
from failwell.scanner.duplicates import RowHashes
from failwell.scanner.partials import Batch, run_in_memory
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
        return run_in_memory(self, ctx)

    def start(self, ctx: ScanContext) -> dict:
        """The columns the overlap check hashes (those the training data shares)."""
        ref = ctx.config.reference
        shared = [] if ref is None else [c for c in ctx.dataset.frame.columns
                                         if c in ref.columns]
        return {"overlap_columns": shared}

    def columns(self, ctx: ScanContext, stage: dict) -> list[str]:
        return list(ctx.dataset.frame.columns)  # a duplicate is judged on every column

    def partial(self, batch: Batch, stage: dict) -> dict:
        ds = batch.dataset
        y = batch.y
        groups = {attr: group_counts(batch.frame, [attr], y, y)[["n", "positives"]]
                  for attr in ds.protected}
        out = {"n": len(y), "positives": int(y.sum()), "groups": groups,
               "missing": batch.frame[_used(ds)].isna().sum().to_numpy(),
               "rows": RowHashes.of(ds.row_hashes, batch.positions)}
        shared = stage["overlap_columns"]
        if shared:
            same = shared == list(batch.frame.columns)
            out["overlap"] = out["rows"] if same else RowHashes.of(
                pd.util.hash_pandas_object(batch.frame[shared], index=False).to_numpy(),
                batch.positions)
        return out

    def finish(self, ctx: ScanContext, stage: dict, merged: dict) -> list[Finding]:
        return [f for check in (self._imbalance, self._representation, self._base_rates,
                                self._missing, self._duplicates, self._overlap)
                for f in check(ctx, stage, merged)]

    def _imbalance(self, ctx: ScanContext, stage: dict, merged: dict) -> list[Finding]:
        n = merged["n"]
        share = merged["positives"] / n
        minority = min(share, 1 - share)
        ctx.log_metric("data.minority_class_share", minority)
        if minority >= self.min_class_share:
            return []
        return [Finding(
            "class-imbalance",
            Severity.HIGH if minority < self.min_class_share / 5 else Severity.MEDIUM,
            f"Rare outcome: the minority class is {pct(minority)} of rows",
            f"{ctx.dataset.target!r} is positive in {pct(share)} of {n} rows; "
            "accuracy will look good while the rare class is missed.",
            self.name,
            [Metric("minority_class_share", minority, self.min_class_share, higher_is_worse=False)],
            {"positive_share": share, "n_rows": n},
            mitigation_for("class-imbalance"),
        )]

    def _representation(self, ctx: ScanContext, stage: dict, merged: dict) -> list[Finding]:
        findings = []
        n = merged["n"]
        for attr in ctx.dataset.protected:
            table = merged["groups"][attr]["n"]
            counts = table.sort_values(ascending=False, kind="stable").astype(int)
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

    def _base_rates(self, ctx: ScanContext, stage: dict, merged: dict) -> list[Finding]:
        findings = []
        for attr in ctx.dataset.protected:
            table = merged["groups"][attr]
            order, labels = ordered_labels(table.index)
            n = table["n"].to_numpy()[order].astype(int)
            pos = table["positives"].to_numpy()[order]
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

    def _missing(self, ctx: ScanContext, stage: dict, merged: dict) -> list[Finding]:
        shares = pd.Series(merged["missing"] / merged["n"], index=_used(ctx.dataset))
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

    def _duplicates(self, ctx: ScanContext, stage: dict, merged: dict) -> list[Finding]:
        count, examples = merged["rows"].duplicate_summary()
        share = count / merged["n"]
        ctx.log_metric("data.duplicate_share", share)
        if share <= self.max_duplicate_share:
            return []
        return [Finding(
            "data-quality", severity_by(share, 0.0, 0.1),
            f"{count} duplicate rows ({pct(share)})",
            "Exact duplicate rows inflate evaluation and can leak between splits.",
            self.name,
            [Metric("duplicate_share", share, self.max_duplicate_share)],
            {"example_rows": examples},
            mitigation_for("data-quality"),
        )]

    def _overlap(self, ctx: ScanContext, stage: dict, merged: dict) -> list[Finding]:
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
        cols = stage["overlap_columns"]
        if ref is None or not cols:
            return []
        ref_h = pd.util.hash_pandas_object(ref[cols], index=False).to_numpy()
        n_test, n_ref = merged["n"], len(ref_h)
        found = merged["overlap"].summarize(overlap_counts, ref_h, n_test, n_ref)
        shared_rows = sum(f[0] for f in found)
        chance_sum = sum(f[1] for f in found)
        firsts = [f[2] for f in found]
        chance = chance_sum / n_test
        share = shared_rows / n_test
        excess = share - chance
        pval = float(stats.poisson.sf(shared_rows - 1, max(chance_sum, 1e-9)))
        ctx.log_metric("data.train_test_overlap", share)
        ctx.log_metric("data.train_test_overlap_chance", chance)
        if excess <= self.max_duplicate_share or pval >= ctx.config.alpha:
            return []
        return [Finding(
            "leakage", severity_by(excess, 0.0, 0.05, 0.25),
            f"{shared_rows} test rows also appear in the training data ({pct(share)})",
            f"Rows shared between training and evaluation make scores optimistic. Judging by "
            f"how often rows repeat within the test set, {pct(chance)} would match by chance.",
            self.name,
            [Metric("train_test_overlap", share, chance + self.max_duplicate_share),
             Metric("chance_overlap", chance)],
            {"example_rows": np.sort(np.concatenate(firsts))[:10].tolist(),
             "columns_compared": cols, "expected_by_chance": chance_sum, "p_value": pval,
             "training_rows": n_ref},
            mitigation_for("leakage"),
        )]


def _used(ds) -> list[str]:
    """The columns whose missing values matter: every role the scan reads."""
    return list(dict.fromkeys([ds.target, *ds.features, *ds.protected, *ds.metadata, *ds.text]))


def overlap_counts(part, ref_h: np.ndarray, n_test: int, n_ref: int
                   ) -> tuple[int, float, np.ndarray]:
    """For some distinct test rows (hashes with counts): rows also in training, the rows
    expected there by chance, and the first row of each shared one."""
    hit = np.isin(part.hashes, ref_h)
    p_value = (part.counts - 1) / max(n_test - 1, 1)
    chance_one = -np.expm1(n_ref * np.log1p(-np.minimum(p_value, 1 - 1e-12)))
    return (int(part.counts[hit].sum()), float((part.counts * chance_one).sum()),
            np.sort(part.first[hit])[:10])
