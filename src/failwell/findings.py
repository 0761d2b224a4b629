"""Findings and scan results: data first, serialized as versioned JSON that loads back."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from failwell.errors import InputError

SCHEMA_VERSION = "1.0"


class Severity(StrEnum):
    """How much a finding matters; ordered low < medium < high < critical."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)

    def __ge__(self, other: object) -> bool:  # type: ignore[override]
        return self.rank >= Severity(other).rank

    def __gt__(self, other: object) -> bool:  # type: ignore[override]
        return self.rank > Severity(other).rank

    def __le__(self, other: object) -> bool:  # type: ignore[override]
        return self.rank <= Severity(other).rank

    def __lt__(self, other: object) -> bool:  # type: ignore[override]
        return self.rank < Severity(other).rank


@dataclass(frozen=True)
class Metric:
    """One measured number, with the threshold it was judged against and its uncertainty."""

    name: str
    value: float
    threshold: float | None = None
    higher_is_worse: bool = True
    ci: tuple[float, float] | None = None

    def breaches(self) -> bool:
        if self.threshold is None:
            return False
        return self.value > self.threshold if self.higher_is_worse else self.value < self.threshold


@dataclass
class Finding:
    """One detected problem, with the evidence and config needed to see it again."""

    failure_mode: str
    severity: Severity
    title: str
    summary: str
    detector: str
    metrics: list[Metric] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    mitigation: str = ""
    reproduce: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "failure_mode": self.failure_mode,
            "severity": str(self.severity),
            "title": self.title,
            "summary": self.summary,
            "detector": self.detector,
            "metrics": {m.name: _clean(m.value) for m in self.metrics},
            "metric_details": {
                m.name: {
                    "threshold": _clean(m.threshold),
                    "higher_is_worse": m.higher_is_worse,
                    "ci": None if m.ci is None else [_clean(v) for v in m.ci],
                }
                for m in self.metrics
            },
            "evidence": _clean(self.evidence),
            "mitigation": self.mitigation,
            "reproduce": _clean(self.reproduce),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Finding:
        details = d.get("metric_details", {})
        metrics = []
        for name, value in d.get("metrics", {}).items():
            det = details.get(name, {})
            ci = det.get("ci")
            metrics.append(
                Metric(
                    name=name,
                    value=_unclean(value),
                    threshold=_unclean(det.get("threshold")),
                    higher_is_worse=det.get("higher_is_worse", True),
                    ci=None if ci is None else (_unclean(ci[0]), _unclean(ci[1])),
                )
            )
        return cls(
            failure_mode=d["failure_mode"],
            severity=Severity(d["severity"]),
            title=d["title"],
            summary=d.get("summary", ""),
            detector=d.get("detector", ""),
            metrics=metrics,
            evidence=d.get("evidence", {}),
            mitigation=d.get("mitigation", ""),
            reproduce=d.get("reproduce", {}),
        )


@dataclass
class DetectorOutcome:
    """What happened to one detector: ran (with timing), skipped (why), inconclusive (ran but
    could not tell) or crashed (error)."""

    detector: str
    status: str  # "ran" | "skipped" | "inconclusive" | "error"
    seconds: float = 0.0
    message: str = ""
    n_findings: int = 0


@dataclass
class ScanResult:
    """All findings of one scan plus what is needed to trust and reproduce it."""

    findings: list[Finding]
    outcomes: list[DetectorOutcome] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str = ""
    model_fingerprint: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    schema_version: str = SCHEMA_VERSION

    @property
    def errors(self) -> list[DetectorOutcome]:
        return [o for o in self.outcomes if o.status == "error"]

    @property
    def skipped(self) -> list[DetectorOutcome]:
        return [o for o in self.outcomes if o.status == "skipped"]

    def worst_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: -f.severity.rank)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "created_at": self.created_at,
            "findings": [f.to_dict() for f in self.sorted_findings()],
            "detectors": [asdict(o) for o in self.outcomes],
            "metrics": _clean(self.metrics),
            "diagnostics": _clean(self.diagnostics),
            "data_fingerprint": self.data_fingerprint,
            "model_fingerprint": self.model_fingerprint,
            "config": _clean(self.config),
            "timings": _clean(self.timings),
            "versions": self.versions,
        }

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScanResult:
        version = str(d.get("schema_version", ""))
        if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise InputError(
                f"Scan result has schema_version {version!r}; this failwell reads "
                f"{SCHEMA_VERSION.split('.')[0]}.x. Re-run the scan with this version."
            )
        return cls(
            findings=[Finding.from_dict(f) for f in d.get("findings", [])],
            outcomes=[DetectorOutcome(**o) for o in d.get("detectors", [])],
            metrics={k: _unclean(v) for k, v in d.get("metrics", {}).items()},
            diagnostics=d.get("diagnostics", {}),
            data_fingerprint=d.get("data_fingerprint", ""),
            model_fingerprint=d.get("model_fingerprint", ""),
            config=d.get("config", {}),
            timings=d.get("timings", {}),
            versions=d.get("versions", {}),
            created_at=d.get("created_at", ""),
            schema_version=version,
        )

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> ScanResult:
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            path = Path(text_or_path)
            if not path.is_file():
                raise InputError(
                    f"No scan result at {path}: give a JSON file from 'failwell scan'."
                )
            text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"Scan result is not valid JSON ({exc.msg}, line {exc.lineno})."
            ) from None
        if not isinstance(data, dict) or "findings" not in data:
            raise InputError("Scan result JSON must be an object with 'findings'.")
        return cls.from_dict(data)


def _clean(value: Any) -> Any:
    """Make numpy scalars, tuples and non-finite floats JSON-safe (NaN -> None, inf -> 'inf')."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    return value


def _unclean(value: Any) -> Any:
    if value in ("inf", "-inf"):
        return float(value)
    if value is None:
        return None
    return float(value) if isinstance(value, int | float) else value
