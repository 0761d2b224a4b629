"""An AI project as a review board sees it, written as a YAML file.

Success criteria are where problem misidentification hides, so each one must be measurable:
a metric, a numeric target, which direction is better, how it is measured and when. A
criterion without a number or without a measurement plan is refused with the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from failwell.errors import InputError, close_matches
from failwell.limits import MAX_ID_CHARS, id_problem

RISKS = ("low", "medium", "high")
READINESS = ("not-started", "partial", "ready")


@dataclass
class SuccessCriterion:
    metric: str
    target: float
    direction: str  # "up" (higher is better) or "down"
    measurement: str  # how it is measured, from which data
    when: str  # when (or how often) it is measured
    baseline: float | None = None

    def met_by(self, value: float) -> bool:
        return value >= self.target if self.direction == "up" else value <= self.target


@dataclass
class EndUserGroup:
    group: str
    involvement: str = ""  # how they took part; empty means they have not


@dataclass
class DataSource:
    name: str
    owner: str = ""
    readiness: str = "not-started"


@dataclass
class ProxyGuard:
    proxy: str  # NAME[:up|down], as in `failwell compare`
    guardrails: list[str] = field(default_factory=list)
    tolerance: str = "2%"  # "2%" relative to the old value, or a number in the metric's units


@dataclass
class Project:
    id: str
    name: str
    problem: str
    decision: str
    risk: str
    owner: str = ""
    success_criteria: list[SuccessCriterion] = field(default_factory=list)
    end_users: list[EndUserGroup] = field(default_factory=list)
    data_sources: list[DataSource] = field(default_factory=list)
    constraints: dict[str, Any] = field(default_factory=dict)
    out_of_scope: str = ""
    proxy_guard: ProxyGuard | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        """What related incidents are looked up by."""
        return " ".join([self.name, self.problem, self.decision,
                         *(c.metric for c in self.success_criteria)])


_FIELDS = {f for f in Project.__dataclass_fields__}


def from_yaml(text: str, *, source: str = "project") -> Project:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise InputError(f"{source}: a project file is a mapping of field: value.")
    return from_dict(data, source=source)


def from_dict(data: dict[str, Any], *, source: str = "project") -> Project:
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        hints = [u + (f" (did you mean {c[0]!r}?)" if (c := close_matches(u, _FIELDS, n=1))
                      else "") for u in unknown]
        raise InputError(f"{source}: unknown field(s) {', '.join(hints)}.")
    for key in ("id", "name", "problem", "decision", "risk"):
        if not str(data.get(key) or "").strip():
            raise InputError(f"{source}: {key!r} is required"
                             + (" (the decision the system is meant to support)."
                                if key == "decision" else "."))
    if id_problem(str(data["id"])):  # the rule incident ids follow too (failwell.limits)
        raise InputError(f"{source}: id {str(data['id'])[:MAX_ID_CHARS + 1]!r} must be "
                         f"kebab-case (a-z, 0-9, -), at most {MAX_ID_CHARS} characters.")
    if data["risk"] not in RISKS:
        raise InputError(f"{source}: risk {data['risk']!r} is not one of {', '.join(RISKS)}.")
    criteria = [_criterion(c, i, source) for i, c in enumerate(_list(data, "success_criteria",
                                                                      source))]
    if not criteria:
        raise InputError(f"{source}: at least one success criterion is required: how will "
                         "anyone know whether this worked?")
    users = [_make(EndUserGroup, u, "end_users", source) for u in _list(data, "end_users",
                                                                        source)]
    sources = [_make(DataSource, d, "data_sources", source)
               for d in _list(data, "data_sources", source)]
    for d in sources:
        if d.readiness not in READINESS:
            raise InputError(f"{source}: data source {d.name!r} readiness {d.readiness!r} is "
                             f"not one of {', '.join(READINESS)}.")
    guard = data.get("proxy_guard")
    proxy_guard = _make(ProxyGuard, guard, "proxy_guard", source) if guard else None
    if proxy_guard:
        from failwell.scanner.compare import MetricSpec, Tolerance

        for spec in [proxy_guard.proxy, *proxy_guard.guardrails]:
            MetricSpec.parse(spec)
        proxy_guard.tolerance = str(Tolerance.parse(proxy_guard.tolerance))
    constraints = data.get("constraints") or {}
    if not isinstance(constraints, dict):
        raise InputError(f"{source}: 'constraints' is a mapping, e.g. latency_ms: 200.")
    return Project(
        id=str(data["id"]), name=str(data["name"]), problem=str(data["problem"]).strip(),
        decision=str(data["decision"]).strip(), risk=data["risk"],
        owner=str(data.get("owner") or ""), success_criteria=criteria, end_users=users,
        data_sources=sources, constraints=constraints,
        out_of_scope=str(data.get("out_of_scope") or "").strip(), proxy_guard=proxy_guard)


def _list(data: dict, key: str, source: str) -> list:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise InputError(f"{source}: {key!r} must be a list.")
    return value


def _make(cls, item: Any, key: str, source: str):
    if not isinstance(item, dict):
        raise InputError(f"{source}: each entry of {key!r} is a mapping of field: value.")
    try:
        return cls(**item)
    except TypeError as exc:
        raise InputError(f"{source}: an entry of {key!r} is malformed: {exc}.") from None


def _criterion(item: Any, index: int, source: str) -> SuccessCriterion:
    if not isinstance(item, dict):
        raise InputError(f"{source}: success criterion {index + 1} must be a mapping.")
    name = str(item.get("metric") or "").strip()
    where = f"{source}: success criterion {name or index + 1!r}"
    if not name:
        raise InputError(f"{where} names no metric.")
    unknown = set(item) - set(SuccessCriterion.__dataclass_fields__)
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}.")
    target = item.get("target")
    if isinstance(target, bool) or not isinstance(target, int | float):
        raise InputError(
            f"{where} has no numeric target ({target!r}). A goal without a number cannot be "
            "missed, which is how a project ends up solving a different problem than the "
            "decision needs (problem misidentification). Give e.g. target: 0.03.")
    baseline = item.get("baseline")
    if baseline is not None and (isinstance(baseline, bool)
                                 or not isinstance(baseline, int | float)):
        raise InputError(f"{where}: baseline {baseline!r} must be a number.")
    for key, what in (("measurement", "how it is measured and from which data"),
                      ("when", "when or how often it is measured")):
        if not str(item.get(key) or "").strip():
            raise InputError(
                f"{where} has no measurement plan: add {key!r} ({what}). A criterion nobody "
                "measures is never checked.")
    direction = item.get("direction")
    if direction is None and baseline is not None and baseline != target:
        direction = "up" if target > baseline else "down"
    if direction not in ("up", "down"):
        raise InputError(f"{where}: direction must be 'up' (higher is better) or 'down' "
                         "(or give a baseline different from the target).")
    return SuccessCriterion(metric=name, target=float(target), direction=direction,
                            measurement=str(item["measurement"]).strip(),
                            when=str(item["when"]).strip(),
                            baseline=None if baseline is None else float(baseline))


TEMPLATE = """\
id: new-project
name: One line naming what the system does
owner: the team that answers for it
problem: >-
  The decision people make today, and what goes wrong with it.
decision: The decision the system will support, and who takes it.
risk: medium  # low, medium or high
success_criteria:
  - metric: a_measured_quantity
    target: 0.9
    direction: up  # up or down
    measurement: where the number comes from
    when: when it is measured
end_users:
  - group: who uses or is affected by the decisions
    involvement: how they were involved
data_sources:
  - name: the training data
    owner: who keeps it
    readiness: ready  # ready, partial or missing
"""
