"""Findings and scan results: data first, serialized as versioned JSON that loads back."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from failwell.errors import InputError, close_matches
from failwell.limits import (
    MAX_DETECTORS,
    MAX_FINDINGS,
    MAX_ID_CHARS,
    MAX_METRICS,
    MAX_NAME_CHARS,
    MAX_TITLE_CHARS,
    FieldCheck,
    kind_of,
    shown,
)

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
    def from_dict(cls, d: dict[str, Any], *, source: str = "scan result") -> ScanResult:
        """The result of ``to_dict`` (or its JSON), checked field by field against the
        scan-result schema (docs/scan-result.schema.json): types, sizes (failwell.limits)
        and failure modes from the catalog. Each refusal is an InputError naming the field."""
        check_scan_dict(d, source=source)
        version = d["schema_version"]
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
        except RecursionError:
            raise InputError("Scan result JSON is nested too deeply.") from None
        if not isinstance(data, dict) or "findings" not in data:
            raise InputError("Scan result JSON must be an object with 'findings'.")
        return cls.from_dict(data)


OUTCOME_STATUSES = ("ran", "skipped", "inconclusive", "error")


def check_scan_dict(d: Any, *, source: str = "scan result") -> None:
    """Refuse a scan result (the JSON form of :meth:`ScanResult.to_dict`) whose fields are not
    of the schema's types and sizes, with an InputError naming the field
    (``findings[3].failure_mode``). The same rules as the JSON Schema of the web API
    (``docs/scan-result.schema.json``); tests hold the two to agree."""
    from failwell.taxonomy import load_catalog

    check = FieldCheck(source, null_is_empty=False)  # a key left out is empty; null is not
    if not isinstance(d, dict):
        raise InputError(f"{source} must be a JSON object, not {kind_of(d)}.")
    version = d.get("schema_version")
    if not isinstance(version, str) or version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
        raise InputError(
            f"Scan result has schema_version {shown(version if version is not None else '')}"
            f"; this failwell reads {SCHEMA_VERSION.split('.')[0]}.x. Re-run the scan with "
            "this version."
        )
    catalog = load_catalog()
    for i, f in enumerate(check.items(d.get("findings"), "findings", MAX_FINDINGS,
                                      required=True)):
        at = f"findings[{i}]"
        if not isinstance(f, dict):
            check.fail(at, f"must be a mapping (a finding), not {kind_of(f)}")
        mode = check.text(f.get("failure_mode"), f"{at}.failure_mode", MAX_ID_CHARS,
                          required=True)
        if mode not in catalog.failure_modes:
            close = close_matches(mode, catalog.failure_modes, n=3)
            check.fail(f"{at}.failure_mode", f"is {shown(mode)}, not a failure mode of the "
                       "catalog (" + (f"did you mean {', '.join(map(repr, close))}?" if close
                                      else "'failwell catalog' lists them") + ")")
        severity = f.get("severity")
        if severity not in [s.value for s in Severity]:
            check.fail(f"{at}.severity", f"is {shown(severity)}; it must be one of "
                       + ", ".join(s.value for s in Severity))
        check.text(f.get("title"), f"{at}.title", MAX_TITLE_CHARS, required=True)
        for key in ("summary", "mitigation"):
            check.text(f.get(key, ""), f"{at}.{key}")
        check.text(f.get("detector", ""), f"{at}.detector", MAX_NAME_CHARS)
        _numbers(check, f.get("metrics", {}), f"{at}.metrics")
        details = check.mapping(f.get("metric_details", {}), f"{at}.metric_details",
                                MAX_METRICS)
        for name, value in details.items():
            where = f"{at}.metric_details.{name}"
            detail = check.mapping(value, where)
            _number(check, detail.get("threshold"), f"{where}.threshold")
            if not isinstance(detail.get("higher_is_worse", True), bool):
                check.fail(f"{where}.higher_is_worse", "must be true or false")
            ci = detail.get("ci")
            if ci is not None:
                if not isinstance(ci, list) or len(ci) != 2:
                    check.fail(f"{where}.ci", "must be a list of two numbers (or null)")
                for j, v in enumerate(ci):
                    _number(check, v, f"{where}.ci[{j}]")
        for key in ("evidence", "reproduce"):
            check.json_text(check.mapping(f.get(key, {}), f"{at}.{key}"), f"{at}.{key}")
    for i, o in enumerate(check.items(d.get("detectors", []), "detectors", MAX_DETECTORS)):
        at = f"detectors[{i}]"
        if not isinstance(o, dict):
            check.fail(at, f"must be a mapping (a detector outcome), not {kind_of(o)}")
        unknown = sorted(set(o) - {f.name for f in fields(DetectorOutcome)}, key=str)
        if unknown:
            check.fail(at, f"has the unknown field {shown(unknown[0])}")
        check.text(o.get("detector"), f"{at}.detector", MAX_NAME_CHARS, required=True)
        if o.get("status") not in OUTCOME_STATUSES:
            check.fail(f"{at}.status", f"is {shown(o.get('status'))}; it must be one of "
                       + ", ".join(OUTCOME_STATUSES))
        if not _is_number(o.get("seconds", 0.0)):
            check.fail(f"{at}.seconds", "must be a number")
        check.text(o.get("message", ""), f"{at}.message")
        n = o.get("n_findings", 0)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            check.fail(f"{at}.n_findings", "must be a whole number >= 0")
    for key in ("metrics", "timings"):
        _numbers(check, d.get(key, {}), key)
    for key in ("diagnostics", "config"):
        check.json_text(check.mapping(d.get(key, {}), key), key)
    for name, value in check.mapping(d.get("versions", {}), "versions", MAX_METRICS).items():
        check.text(name, "versions (a name)", MAX_NAME_CHARS)
        check.text(value, f"versions.{name}", MAX_NAME_CHARS)
    for key in ("data_fingerprint", "model_fingerprint", "created_at"):
        check.text(d.get(key, ""), key, MAX_NAME_CHARS)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(check: FieldCheck, value: Any, where: str) -> None:
    """A metric value as ``to_dict`` writes it: a number, null (NaN) or "inf"/"-inf"."""
    if not (value is None or _is_number(value) or value in ("inf", "-inf")):
        check.fail(where, f"must be a number (or null, \"inf\", \"-inf\"), not "
                          f"{kind_of(value)}")


def _numbers(check: FieldCheck, value: Any, where: str) -> None:
    for name, v in check.mapping(value, where, MAX_METRICS).items():
        check.text(name, f"{where} (a name)", MAX_NAME_CHARS)
        _number(check, v, f"{where}.{name}")


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
