"""Proxy objective (Goodhart's law): the proxy improved while a guardrail got worse.

``compare(old, new, proxy=..., guardrails=[...])`` reads two scan results (or plain JSON
objects of metrics) and raises a ``proxy-objective`` finding when the declared proxy metric
improves by more than the tolerance while any guardrail degrades by more than it.
"""

from __future__ import annotations

import json
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
    if isinstance(data.get("metrics"), dict):  # a scan result, or {"metrics": {...}}
        data = data["metrics"]
    metrics = {k: float(v) for k, v in data.items() if isinstance(v, int | float)}
    if not metrics:
        raise InputError(f"{source}: found no numeric metrics to compare.")
    return metrics


def compare(old: Any, new: Any, *, proxy: str, guardrails: list[str],
            tolerance: float = 0.01) -> ScanResult:
    """Flag the proxy improving while a guardrail degrades (both beyond ``tolerance``)."""
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
    proxy_spec, guard_specs = specs[0], specs[1:]
    rows = [{"metric": s.name, "old": before[s.name], "new": after[s.name],
             "improvement": changes[s.name], "role": "proxy" if s is proxy_spec else "guardrail",
             "higher_is_better": s.higher_is_better} for s in specs]
    findings = []
    degraded = [s for s in guard_specs if changes[s.name] < -tolerance]
    if changes[proxy_spec.name] > tolerance and degraded:
        worst = min(degraded, key=lambda s: changes[s.name])
        drop = -changes[worst.name]
        findings.append(Finding(
            "proxy-objective",
            Severity.HIGH if drop > 5 * tolerance else Severity.MEDIUM,
            f"{proxy_spec.name} improved while {', '.join(s.name for s in degraded)} got worse",
            f"{proxy_spec.name}: {before[proxy_spec.name]:.4g} -> {after[proxy_spec.name]:.4g}; "
            + "; ".join(f"{s.name}: {before[s.name]:.4g} -> {after[s.name]:.4g}" for s in degraded)
            + ". Optimizing the proxy is trading away what it stands for.",
            "compare",
            [Metric("proxy_improvement", changes[proxy_spec.name], tolerance,
                    higher_is_worse=True),
             Metric("worst_guardrail_degradation", drop, tolerance)],
            {"metrics": rows, "tolerance": tolerance},
            mitigation_for("proxy-objective"),
        ))
    return ScanResult(
        findings=findings,
        metrics={f"{r['metric']}.improvement": r["improvement"] for r in rows},
        config={"proxy": proxy, "guardrails": guardrails, "tolerance": tolerance,
                "comparison": rows},
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _improvement(spec: MetricSpec, before: dict, after: dict) -> float:
    delta = after[spec.name] - before[spec.name]
    return delta if spec.higher_is_better else -delta
