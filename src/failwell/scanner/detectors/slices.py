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
from failwell.scanner.detectors._common import MISSING, mitigation_for, pct, severity_by
from failwell.scanner.partials import Batch, add_tables, run_in_memory

PROFILE_CAP = 10_000  # distinct values counted per column before falling back to the sample
QUANTILES = 4
TOP = 20


@dataclass
class ValueCounts:
    """A column's value counts (missing values counted apart); ``None`` counts once more
    than PROFILE_CAP distinct values were seen. Mergeable."""

    counts: pd.Series | None
    missing: int

    @classmethod
    def of(cls, col: pd.Series) -> ValueCounts:
        missing = int(col.isna().sum())
        head = col.iloc[: 4 * PROFILE_CAP]  # past the cap already: no need to count it all
        if len(col) > len(head) and head.nunique(dropna=True) > PROFILE_CAP:
            return cls(None, missing)
        counts = col.value_counts(dropna=True, sort=False)
        return cls(counts if len(counts) <= PROFILE_CAP else None, missing)

    def merge(self, other: ValueCounts) -> ValueCounts:
        counts = None if self.counts is None or other.counts is None else \
            add_tables(self.counts, other.counts)
        if counts is not None and len(counts) > PROFILE_CAP:
            counts = None
        return ValueCounts(counts, self.missing + other.missing)


@dataclass
class SlicePlan:
    """How one column's rows map to slices: quantile bins, or the top categories."""

    labels: list[str]
    inner: np.ndarray | None = None  # bin edges (numbers)
    kept: pd.Index | None = None  # the categories kept (categories)
    kept_codes: np.ndarray | None = None  # and their codes
    missing_code: int = -1
    other_code: int = -1
    exact: bool = True  # False: bins or top categories estimated from the sample

    def codes(self, col: pd.Series) -> np.ndarray:
        if self.inner is not None:
            x = col.to_numpy(dtype=float)
            codes = np.searchsorted(self.inner, x, side="right")
            return np.where(np.isnan(x), self.missing_code, codes)
        found = positions_in(self.kept, col) if len(self.kept) else np.full(len(col), -1)
        codes = np.where(found < 0, self.other_code, self.kept_codes[np.maximum(found, 0)]
                         if len(self.kept) else self.other_code)
        return np.where(col.isna().to_numpy(), self.missing_code, codes)


def positions_in(index: pd.Index, col: pd.Series) -> np.ndarray:
    """Where each value of ``col`` sits in ``index`` (-1: absent or missing), as
    ``index.get_indexer(col)``; Arrow-backed strings (pandas' default ``str``) are looked up
    in Arrow, ~6x faster than through Python objects."""
    arrow = getattr(col.array, "_pa_array", None)
    if arrow is not None and index.inferred_type == "string":
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            values = pa.array(list(index), type=arrow.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return index.get_indexer(col)
        found = pc.index_in(arrow, value_set=values).fill_null(-1)
        return np.asarray(found.to_numpy(), dtype=np.intp)
    return index.get_indexer(col)


def plan_slices(col: pd.Series, profile: ValueCounts | None = None,
                bins: int = QUANTILES, top: int = TOP) -> SlicePlan:
    """Quantile bins for numbers, the top categories (plus 'other') otherwise.

    ``col`` is the whole column, or a uniform sample of it with ``profile`` holding the
    whole column's value counts; without exact counts (over PROFILE_CAP distinct values)
    the bins and the top categories come from the sample.
    """
    name = str(col.name)
    profile = profile or ValueCounts.of(col)
    exact = profile.counts is not None
    counts = profile.counts if exact else col.value_counts(dropna=True, sort=False)
    distinct = len(counts) if exact else PROFILE_CAP + 1
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) \
            and distinct > 2 * bins:
        qs = np.linspace(0, 1, bins + 1)
        if exact:
            values = counts.index.to_numpy(dtype=float)
            order = np.argsort(values)
            quantiles = quantiles_from_counts(values[order], counts.to_numpy()[order], qs)
        else:
            quantiles = np.nanquantile(col.to_numpy(dtype=float), qs)
        inner = np.unique(quantiles)[1:-1]
        labels = [f"{name} < {inner[0]:g}"] if len(inner) else [f"{name} (all)"]
        labels += [f"{lo:g} <= {name} < {hi:g}" for lo, hi in pairwise(inner)]
        if len(inner):
            labels.append(f"{name} >= {inner[-1]:g}")
        missing_code = -1
        if profile.missing:
            missing_code = len(labels)
            labels.append(f"{name} is missing")
        return SlicePlan(labels, inner=inner, missing_code=missing_code, exact=exact)
    # categories in group_codes' order: sorted values, missing last
    codes, uniques = pd.factorize(counts.index, sort=True)
    values = pd.Index(uniques)
    n = np.zeros(len(values), dtype=np.int64)
    np.add.at(n, codes, counts.to_numpy().astype(np.int64))
    names = [str(v) for v in values]
    if profile.missing:
        names.append(MISSING)
        n = np.append(n, profile.missing)
    keep = np.argsort(-n)[:top] if len(names) > top else np.arange(len(names))
    other = len(keep) if len(names) > top else -1
    labels = [f"{name} = {names[k]}" for k in keep] + ([f"{name} = other"] if other >= 0
                                                        else [])
    is_value = keep < len(values)
    position = np.flatnonzero(~is_value)
    return SlicePlan(labels, kept=values[keep[is_value]],
                     kept_codes=np.flatnonzero(is_value),
                     missing_code=int(position[0]) if len(position) else other,
                     other_code=other, exact=exact)


def slice_codes(col: pd.Series, bins: int = QUANTILES, top: int = TOP
                ) -> tuple[np.ndarray, list[str]]:
    """Slice code per row and the slices' labels (the whole column in memory)."""
    plan = plan_slices(col, bins=bins, top=top)
    return plan.codes(col), plan.labels


def quantiles_from_counts(values: np.ndarray, counts: np.ndarray, qs: np.ndarray
                          ) -> np.ndarray:
    """``np.nanquantile`` (linear method) of the column that these sorted distinct values
    and counts describe, without expanding it: the same arithmetic, in numpy's order."""
    n = counts.sum()
    cum = np.cumsum(counts)
    virtual = n * qs + (1 + qs * -1) - 1
    previous = np.clip(np.floor(virtual), 0, n - 1)
    following = np.clip(previous + 1, 0, n - 1)
    gamma = virtual - np.floor(virtual)
    a = values[np.searchsorted(cum, previous, side="right")]
    b = values[np.searchsorted(cum, following, side="right")]
    diff = b - a
    out = a + diff * gamma
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), out)


def _cross_fit(scores: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, list]:
    """Out-of-fold P(positive | score) for each row, and the two fold maps."""
    from sklearn.isotonic import IsotonicRegression

    s = np.where(np.isfinite(scores), scores, np.nanmedian(scores))
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, 2, len(y))
    p = np.full(len(y), float(y.mean()))
    maps: list = [None, None]
    for f in (0, 1):
        train = fold != f
        if train.sum() > 200_000:  # a monotone map needs no more rows to be precise
            train &= rng.random(len(y)) < 200_000 / train.sum()
        if train.sum() and y[train].min() != y[train].max():
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
            maps[f] = iso.fit(s[train], y[train])
            p[fold == f] = maps[f].predict(s[fold == f])
    return p, maps


@dataclass
class ErrorModel:
    """Each row's chance of being wrong given its score and the decision actually taken,
    fitted once on the whole table or on a uniform sample.

    The score is mapped to P(positive) by isotonic regression, cross-fitted on two folds (a
    decile score, a credit score or an uncalibrated probability all work), and the decision
    rule is whatever produced the decisions: a 0.3 threshold or a hard cut at 640 make the
    rows near *their* boundary the expected errors. A slice is then judged on errors beyond
    what the score itself explains, so the boundary band is not a finding by itself.

    On the whole table (or a sample that holds every row) each row keeps its out-of-fold
    value. Past the sample, a row outside it is mapped through both folds' maps, averaged:
    it trained neither.
    """

    positions: np.ndarray  # sorted row numbers of the rows fitted on
    out_of_fold: np.ndarray  # their P(positive)
    maps: list
    median: float
    prior: float

    @classmethod
    def fit(cls, scores: np.ndarray, y: np.ndarray, positions: np.ndarray,
            seed: int) -> ErrorModel:
        p, maps = _cross_fit(scores, y, seed)
        return cls(positions, p, maps, float(np.nanmedian(scores)), float(y.mean()))

    def expected(self, scores: np.ndarray, decisions: np.ndarray,
                 positions: np.ndarray) -> np.ndarray:
        at = np.searchsorted(self.positions, positions)
        at = np.minimum(at, len(self.positions) - 1)
        known = self.positions[at] == positions
        p = np.empty(len(scores))
        p[known] = self.out_of_fold[at[known]]
        if not known.all():
            s = scores[~known]
            s = np.where(np.isfinite(s), s, self.median)
            fitted = [m.predict(s) for m in self.maps if m is not None]
            p[~known] = np.mean(fitted, axis=0) if fitted else self.prior
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
        return run_in_memory(self, ctx)

    # Three passes: value counts per column, then each single slice's error sums, then the
    # pairs of the most suspicious columns.
    def start(self, ctx: ScanContext) -> dict:
        ctx.base()
        ds = ctx.dataset
        columns = [c for c in dict.fromkeys(ds.features + ds.protected + ds.metadata)
                   if c not in ds.text]
        return {"pass": 1, "columns": columns}

    def columns(self, ctx: ScanContext, stage: dict) -> list[str]:
        if stage["pass"] == 3:
            return list(dict.fromkeys(c for pair in stage["pairs"] for c in pair))
        return stage["columns"]

    def partial(self, batch: Batch, stage: dict) -> dict:
        frame = batch.frame
        if stage["pass"] == 1:
            return {c: ValueCounts.of(frame[c]) for c in stage["columns"]}
        raw = (batch.decisions != batch.y).astype(float)
        errors = raw
        if stage["errors"] is not None:
            errors = raw - stage["errors"].expected(batch.scores, batch.decisions,
                                                    batch.positions)
        plans = stage["plans"]
        totals = np.array([len(raw), errors.sum(), (errors**2).sum(), raw.sum()])
        if stage["pass"] == 2:
            sums = {c: _sums(plans[c].codes(frame[c]), len(plans[c].labels), errors, raw)
                    for c in stage["columns"]}
        else:
            codes = {c: plans[c].codes(frame[c]) for c in self.columns(None, stage)}
            sums = {f"{a}\x1f{b}": _sums(codes[a] * len(plans[b].labels) + codes[b],
                                          len(plans[a].labels) * len(plans[b].labels),
                                          errors, raw)
                    for a, b in stage["pairs"]}
        return {"totals": totals, "sums": sums}

    def finish(self, ctx: ScanContext, stage: dict, merged: dict) -> list[Finding] | dict:
        if stage["pass"] == 1:
            return self._plan(ctx, stage, merged)
        totals = merged["totals"]
        plans = stage["plans"]
        if stage["pass"] == 2:
            candidates = []
            for c in stage["columns"]:
                candidates += self._score(merged["sums"][c], totals, plans[c].labels, [c])
            best = sorted(stage["columns"], key=lambda c: -max(
                (s["z"] for s in candidates if s["columns"] == [c]), default=0))
            pairs = list(combinations(best[: self.pair_columns], 2))
            stage = {**stage, "pass": 3, "pairs": pairs, "singles": candidates}
            if pairs:
                return stage
            merged = {"totals": totals, "sums": {}}
        candidates = list(stage["singles"])
        for a, b in stage["pairs"]:
            labels = [f"{x} and {y}" for x in plans[a].labels for y in plans[b].labels]
            candidates += self._score(merged["sums"][f"{a}\x1f{b}"], totals, labels, [a, b])
        return self._judge(ctx, candidates, totals, stage["errors"] is not None)

    def _plan(self, ctx: ScanContext, stage: dict, profiles: dict) -> dict:
        """Fix every column's slices and the expected-error map for the next passes."""
        ds = ctx.dataset
        plans = {c: plan_slices(ds.frame[c], profiles[c]) for c in stage["columns"]}
        base = ctx.base()
        errors = None
        if base.scores is not None:
            errors = ErrorModel.fit(base.scores, ds.y, ctx.row_positions(), ctx.config.seed)
        approximate = [c for c, p in plans.items() if not p.exact]
        if approximate:
            ctx.diagnostics["slices_from_sample"] = approximate
        return {**stage, "pass": 2, "plans": plans, "errors": errors}

    def _judge(self, ctx: ScanContext, candidates: list[dict], totals: np.ndarray,
               scored: bool) -> list[Finding]:
        overall = float(totals[3] / totals[0])
        ctx.log_metric("slices.overall_error", overall)
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

    def _score(self, sums: np.ndarray, totals: np.ndarray, labels: list[str],
               cols: list[str]) -> list[dict]:
        """Welch z-test of each slice's mean residual error against the rest's."""
        n, s1, s2, r = sums
        n_all, s1_all, s2_all, r_all = totals
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
            out.append({"slice": labels[int(i)], "columns": cols, "n": int(n[i]),
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


def _sums(codes: np.ndarray, k: int, residual: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Per slice: rows, residual sum, squared residual sum, raw errors (adds up by slice)."""
    return np.vstack([np.bincount(codes, minlength=k).astype(float),
                      np.bincount(codes, weights=residual, minlength=k),
                      np.bincount(codes, weights=residual**2, minlength=k),
                      np.bincount(codes, weights=raw, minlength=k)])
