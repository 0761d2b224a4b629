"""Proxy objective (Goodhart's law): the proxy improved while a guardrail got worse.

``compare(old, new, proxy=..., guardrails=[...])`` reads two scan results (or plain JSON
objects of metrics) and raises a ``proxy-objective`` finding when the declared proxy metric
improves by more than the tolerance while any guardrail degrades by more than it.

The tolerance is relative by default ("2%": a change counts when it exceeds 2 % of the old
value), because metrics live on different scales: +0.005 is noise for an accuracy of 0.9 and
+16 % for a click-through rate of 0.031. A plain number ("0.01") is absolute, in the metric's
own units.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from failwell.errors import InputError, did_you_mean
from failwell.findings import Finding, Metric, ScanResult, Severity
from failwell.scanner.detectors._common import mitigation_for

# Metrics whose lower values are better; anything else defaults to higher-is-better.
LOWER_IS_BETTER_HINTS = ("gap", "error", "ece", "flip_rate", "latency", "loss", "overlap",
                         "difference", "duplicate", "missing")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool

    @classmethod
    def parse(cls, text: str) -> MetricSpec:
        """``name``, ``name:up`` or ``name:down`` (direction guessed from the name if omitted)."""
        name, _, direction = text.partition(":")
        if direction not in ("", "up", "down"):
            raise InputError(f"Metric {text!r}: direction must be 'up' or 'down', e.g. ctr:up.")
        if not direction:
            lower = any(h in name.lower() for h in LOWER_IS_BETTER_HINTS)
            return cls(name, not lower)
        return cls(name, direction == "up")


def load_metrics(source: str | Path | dict | ScanResult) -> dict[str, float]:
    """Metrics from a ScanResult, its JSON file, or a JSON object of name -> number."""
    if isinstance(source, ScanResult):
        return source.metrics
    if isinstance(source, dict):
        data = source
    else:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"No such file: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}).") from None
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object (a scan result, or metric names "
                         "to numbers), not a list or a single value.")
    if isinstance(data.get("metrics"), dict):  # a scan result, or {"metrics": {...}}
        data = data["metrics"]
    metrics = {k: float(v) for k, v in data.items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    if not metrics:
        raise InputError(f"{source}: found no numeric metrics to compare.")
    return metrics


@dataclass(frozen=True)
class Tolerance:
    """How large a change must be to count: ``value`` of the old value (relative) or in the
    metric's units (absolute)."""

    value: float
    relative: bool = True

    @classmethod
    def parse(cls, text: str | float | Tolerance) -> Tolerance:
        """``"5%"`` is relative, ``"0.01"`` (or a float) absolute."""
        if isinstance(text, Tolerance):
            return text
        raw = str(text).strip()
        relative = raw.endswith("%")
        try:
            value = float(raw.rstrip("%"))
        except ValueError:
            raise InputError(f"Tolerance {raw!r} is not a number: use e.g. 5% (relative to "
                             "the old value) or 0.01 (absolute).") from None
        if not math.isfinite(value) or value < 0:
            raise InputError(f"Tolerance {raw!r} must be a finite number >= 0.")
        return cls(value / 100 if relative else value, relative)

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"

    def size(self, improvement: float, old: float) -> float:
        """The change in the tolerance's units (a share of ``old`` when relative)."""
        if not self.relative:
            return improvement
        if old:
            return improvement / abs(old)
        return math.copysign(math.inf, improvement) if improvement else 0.0

    def describe(self) -> str:
        if self.relative:
            return f"{self} of the old value"
        return f"{self} (absolute, in the metric's own units)"


DEFAULT_TOLERANCE = "2%"


def compare(old: Any, new: Any, *, proxy: str, guardrails: list[str],
            tolerance: str | float | Tolerance = DEFAULT_TOLERANCE) -> ScanResult:
    """Flag the proxy improving while a guardrail degrades (both beyond ``tolerance``)."""
    tol = Tolerance.parse(tolerance)
    if not guardrails:
        raise InputError("Declare at least one --guardrail metric to weigh the proxy against.")
    before, after = load_metrics(old), load_metrics(new)
    specs = [MetricSpec.parse(proxy), *(MetricSpec.parse(g) for g in guardrails)]
    for spec in specs:
        for label, table in (("old", before), ("new", after)):
            if spec.name not in table:
                hint = did_you_mean(spec.name, table)
                raise InputError(f"Metric {spec.name!r} is not in the {label} result.{hint}")
    changes = {s.name: _improvement(s, before, after) for s in specs}
    sizes = {s.name: tol.size(changes[s.name], before[s.name]) for s in specs}
    proxy_spec, guard_specs = specs[0], specs[1:]
    rows = [{"metric": s.name, "old": before[s.name], "new": after[s.name],
             "improvement": changes[s.name], "relative": _relative(changes[s.name],
                                                                   before[s.name]),
             "counts": abs(sizes[s.name]) > tol.value,
             "role": "proxy" if s is proxy_spec else "guardrail",
             "higher_is_better": s.higher_is_better} for s in specs]
    findings = []
    degraded = [s for s in guard_specs if sizes[s.name] < -tol.value]
    if sizes[proxy_spec.name] > tol.value and degraded:
        worst = min(degraded, key=lambda s: sizes[s.name])
        drop = -sizes[worst.name]
        findings.append(Finding(
            "proxy-objective",
            Severity.HIGH if drop > 5 * tol.value else Severity.MEDIUM,
            f"{proxy_spec.name} improved while {', '.join(s.name for s in degraded)} got worse",
            "; ".join(_move(s, before, after) for s in [proxy_spec, *degraded])
            + f" (tolerance {tol.describe()}). Optimizing the proxy is trading away what it "
              "stands for.",
            "compare",
            [Metric("proxy_improvement", sizes[proxy_spec.name], tol.value,
                    higher_is_worse=True),
             Metric("worst_guardrail_degradation", drop, tol.value)],
            {"metrics": rows, "tolerance": str(tol), "relative": tol.relative},
            mitigation_for("proxy-objective"),
        ))
    return ScanResult(
        findings=findings,
        metrics={f"{r['metric']}.improvement": r["improvement"] for r in rows},
        config={"proxy": proxy, "guardrails": guardrails, "tolerance": str(tol),
                "tolerance_rule": tol.describe(), "comparison": rows},
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _relative(improvement: float, old: float) -> float | None:
    return improvement / abs(old) if old else None


def _move(spec: MetricSpec, before: dict, after: dict) -> str:
    old, new = before[spec.name], after[spec.name]
    rel = f" ({(new - old) / abs(old):+.1%})" if old else ""
    return f"{spec.name}: {old:.4g} -> {new:.4g}{rel}"


def _improvement(spec: MetricSpec, before: dict, after: dict) -> float:
    delta = after[spec.name] - before[spec.name]
    return delta if spec.higher_is_better else -delta
