"""Apply mitigations, re-scan, and show the price (issue 21).

``compare`` trains the baseline and one model per mitigation on the same training split,
scans each on the same held-out split with the same detectors and seed, and tabulates what
each bought and what it cost: every fairness gap with its interval, accuracy, AUC,
calibration, counterfactual flip rates, and the findings that disappear or appear.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from failwell.errors import InputError
from failwell.findings import Finding, ScanResult
from failwell.mitigate.methods import METHODS, Training, baseline
from failwell.mitigate.recipes import NotApplicable
from failwell.progress import Progress
from failwell.stats import diff_interval

RATES = (("false_positive_rate", "fp", "negatives"), ("false_negative_rate", "fn", "positives"),
         ("selection_rate", "selected", "n"))


@dataclass
class MethodRun:
    """One trained and scanned model, or why the method was skipped."""

    method: str
    status: str  # "ran" | "skipped" | "error" (the scan could not call the model)
    reason: str = ""
    note: str = ""
    seconds: float = 0.0
    result: ScanResult | None = field(default=None, repr=False)
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Comparison:
    runs: list[MethodRun]
    target: str
    protected: list[str]
    features: list[str]
    recipe: str
    train_rows: int
    test_rows: int
    seed: int
    seconds: float = 0.0

    @property
    def baseline(self) -> MethodRun:
        return self.runs[0]

    def changes(self, run: MethodRun) -> dict[str, list[str]]:
        """Findings (by failure mode and subject) that disappear or appear vs the baseline."""
        if run.result is None or self.baseline.result is None:
            return {"gone": [], "new": []}
        before, after = _keys(self.baseline.result), _keys(run.result)
        return {"gone": sorted(set(before) - set(after)), "new": sorted(set(after) - set(before))}

    def table(self) -> pd.DataFrame:
        rows = []
        for run in self.runs:
            row = {"method": run.method, "status": run.status, **run.figures,
                   "note": run.reason or run.note, "seconds": round(run.seconds, 2)}
            if run.status == "ran":
                change = self.changes(run)
                row["findings_gone"] = "; ".join(change["gone"])
                row["findings_new"] = "; ".join(change["new"])
            rows.append(row)
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        table = self.table()
        return {"target": self.target, "protected": self.protected, "features": self.features,
                "recipe": self.recipe, "train_rows": self.train_rows,
                "test_rows": self.test_rows, "seed": self.seed,
                "seconds": round(self.seconds, 2),
                "methods": [{k: _plain(v) for k, v in row.items()}
                            for row in table.to_dict(orient="records")]}

    def run(self, method: str) -> MethodRun:
        """The run of ``method`` (``baseline`` included); an error when it was skipped."""
        for run in self.runs:
            if run.method == method:
                if run.status != "ran":
                    raise InputError(f"{method} was skipped ({run.reason}); choose one that "
                                     "ran.")
                return run
        raise InputError(f"{method!r} was not compared; choose from "
                         f"{', '.join(r.method for r in self.runs if r.status == 'ran')}.")

    def price(self, method: str) -> str:
        """What ``method`` bought and what it cost, against the baseline, in one line."""
        run, base = self.run(method), self.baseline
        if run is base:
            return "no mitigation: the baseline as trained"
        parts = []
        for key in [k for k in base.figures if k.endswith(("_gap", "flip_rate"))]:
            before, after = base.figures.get(key), run.figures.get(key)
            if before is not None and after is not None:
                parts.append(f"{key.replace('_', ' ')} {before:.3f} -> {after:.3f}")
        for key in ("accuracy", "auc"):
            before, after = base.figures.get(key), run.figures.get(key)
            if before is not None and after is not None:
                parts.append(f"{key} {before:.3f} -> {after:.3f} "
                             f"({100 * (after - before):+.1f} points)")
        change = self.changes(run)
        if change["gone"]:
            parts.append("findings gone: " + ", ".join(change["gone"]))
        if change["new"]:
            parts.append("new findings: " + ", ".join(change["new"]))
        return "; ".join(parts)

    def to_result(self, chosen: str | None = None) -> ScanResult:
        """The scan of the chosen model (the baseline's when none is), with the whole
        comparison and the price in its config: what the knowledge base, the gates and the
        model card read."""
        run = self.run(chosen) if chosen else self.baseline
        result = run.result
        assert result is not None
        config = {**result.config, "kind": "mitigation-comparison", "chosen": chosen,
                  "price": self.price(chosen) if chosen else "", "comparison": self.to_dict()}
        return ScanResult(findings=list(result.findings), outcomes=list(result.outcomes),
                          metrics=dict(result.metrics), diagnostics=result.diagnostics,
                          data_fingerprint=result.data_fingerprint,
                          model_fingerprint=result.model_fingerprint, config=config,
                          timings=dict(result.timings), versions=dict(result.versions),
                          created_at=datetime.now(UTC).isoformat(timespec="seconds"))


def _plain(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _keys(result: ScanResult) -> dict[str, Finding]:
    out = {}
    for f in result.findings:
        ev = f.evidence
        subject = ev.get("attribute") or "/".join(ev.get("attributes", []) or []) \
            or ev.get("column") or ""
        out[f"{f.failure_mode}" + (f" ({subject})" if subject else "")] = f
    return out


def compare(data: Any, *, target: str, protected: list[str], methods: list[str] | None = None,
            features: list[str] | None = None, model_recipe: Any = "gbm",
            positive_label: Any = None, where: str | None = None,
            reference_groups: dict[str, Any] | None = None, test_size: float = 0.4,
            seed: int = 0, detectors: list[str] | None = None,
            protected_at_prediction: bool = True, fairness_attribute: str | None = None,
            progress: Progress | None = None) -> Comparison:
    """Train the baseline and each mitigation the same way, scan each on the same held-out
    rows. ``features`` default: every column but the target and the protected attributes
    (a protected attribute listed in ``features`` is a model input, as sex is in COMPAS)."""
    from sklearn.model_selection import train_test_split

    from failwell.scanner import ScanConfig, make_dataset, scan

    started = time.perf_counter()
    chosen = list(methods or METHODS)
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise InputError(f"unknown mitigation(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(METHODS)}.")
    if not protected:
        raise InputError("give at least one --protected attribute: mitigations are about "
                         "the groups it defines.")
    if not 0.05 <= test_size <= 0.9:
        raise InputError(f"test_size must be between 0.05 and 0.9, not {test_size}.")
    whole = make_dataset(data, target=target, protected=protected, features=features,
                         positive_label=positive_label, where=where,
                         reference_groups=reference_groups)
    model_inputs = list(features) if features else [
        c for c in whole.features if c not in protected]
    if fairness_attribute and fairness_attribute not in protected:
        raise InputError(f"--fairness-attribute {fairness_attribute!r} must be one of the "
                         f"--protected attributes ({', '.join(protected)}).")
    frame = whole.frame
    y = (frame[target] == whole.positive_label).astype(int).to_numpy()
    try:
        train_rows, test_rows = train_test_split(np.arange(len(frame)), test_size=test_size,
                                                 random_state=seed, stratify=y)
    except ValueError as exc:
        raise InputError(f"cannot split {len(frame)} rows into training and test: {exc}") \
            from None
    train = Training(frame.iloc[train_rows].reset_index(drop=True), y[train_rows],
                     model_inputs, list(protected), model_recipe, seed,
                     protected_at_prediction, fairness_attribute or protected[0])
    test = frame.iloc[test_rows].reset_index(drop=True)
    scanned = make_dataset(test.assign(**{target: y[test_rows]}), target=target,
                           protected=protected, positive_label=1,
                           features=list(dict.fromkeys([*model_inputs, *protected])),
                           reference_groups=whole.reference_groups)
    runs = []
    steps = [("baseline", baseline), *((m, METHODS[m]) for m in chosen)]
    for i, (name, method) in enumerate(steps):
        if progress:
            progress(name, i, len(steps))
        runs.append(_run(name, method, train, scanned, detectors, seed, scan, ScanConfig))
    if progress:
        progress("done", len(steps), len(steps))
    recipe = model_recipe if isinstance(model_recipe, str) else type(model_recipe).__name__
    return Comparison(runs, target, list(protected), model_inputs, recipe, len(train_rows),
                      len(test_rows), seed, time.perf_counter() - started)


def _run(name, method, train, dataset, detectors, seed, scan, config_cls) -> MethodRun:
    started = time.perf_counter()
    try:
        model = method(train)
    except NotApplicable as exc:
        return MethodRun(name, "skipped", reason=str(exc),
                         seconds=time.perf_counter() - started)
    result = scan(dataset, model, detectors=detectors, config=config_cls(seed=seed))
    if result.errors:  # a model the scanner cannot call is not a measured mitigation
        first = result.errors[0]
        return MethodRun(name, "error", reason=f"{first.detector}: "
                         f"{first.message.splitlines()[0]}", seconds=time.perf_counter() - started,
                         result=result)
    return MethodRun(name, "ran", note=model.note, seconds=time.perf_counter() - started,
                     result=result, figures=figures(result, dataset.protected,
                                                    dataset.reference_groups))


def figures(result: ScanResult, protected: list[str],
            reference: dict[str, Any] | None = None) -> dict[str, Any]:
    """Accuracy, AUC, calibration, each attribute's largest error-rate gaps with their
    intervals, and counterfactual flip rates."""
    m = result.metrics
    out: dict[str, Any] = {"accuracy": m.get("accuracy"), "auc": m.get("auc"),
                           "ece": m.get("calibration.ece")}
    groups = result.diagnostics.get("groups", {})
    for attr in protected:
        for metric, hits, base in RATES[:2]:
            gap = largest_gap(groups.get(attr, []), hits, base, (reference or {}).get(attr))
            short = "fpr" if metric.startswith("false_pos") else "fnr"
            out[f"{attr}.{short}_gap"] = gap[0]
            out[f"{attr}.{short}_gap_ci"] = gap[1]
        out[f"{attr}.flip_rate"] = m.get(f"counterfactual.{attr}.flip_rate")
    out["findings"] = len(result.findings)
    out["high_findings"] = sum(str(f.severity) in ("high", "critical") for f in result.findings)
    return out


def largest_gap(rows: list[dict], hits: str, base: str, reference: Any = None
                ) -> tuple[float | None, list | None]:
    """The largest gap in a rate between groups with enough rows to say (the scanner's
    ``uncertain`` flag), against the reference group when one is named (as the scanner
    compares), and its 95 % interval."""
    usable = [r for r in rows if not r.get("uncertain") and r.get(base)]
    ref = next((r for r in usable if str(r["group"]) == str(reference)), None)
    pairs = ([(r, ref) for r in usable if r is not ref] if ref is not None
             else [(a, b) for a in usable for b in usable if a is not b])
    if not pairs:
        return None, None
    a, b = max(pairs, key=lambda p: abs(p[0][hits] / p[0][base] - p[1][hits] / p[1][base]))
    if a[hits] / a[base] < b[hits] / b[base]:
        a, b = b, a
    interval = diff_interval(a[hits], a[base], b[hits], b[base])
    return a[hits] / a[base] - b[hits] / b[base], [float(interval[0]), float(interval[1])]
