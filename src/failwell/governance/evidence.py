"""Evidence kinds a gate can require, and how each is judged from what is stored.

Most are computed (the project's own fields, its latest scan, its latest model card or
datasheet); ``end-user-signoff`` is recorded by a person, ``proxy-guard`` by
``failwell compare --project`` and ``pir-outcomes`` by ``failwell pir``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from failwell.errors import InputError
from failwell.findings import Severity
from failwell.governance.project import Project


@dataclass
class EvidenceStatus:
    kind: str
    satisfied: bool
    detail: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Context(Protocol):
    """What judging evidence may read (implemented by governance.store.Governance)."""

    def latest_evidence(self, project: Project, kind: str) -> dict[str, Any] | None: ...
    def latest_scan(self, project: Project) -> dict[str, Any] | None: ...
    def latest_card(self, project: Project, kind: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Kind:
    description: str
    judge: Callable[[Project, Context, dict[str, Any]], tuple[bool, str]]
    params: tuple[str, ...] = ()
    recorded: bool = False  # recorded with `failwell gate evidence`

    def check_params(self, params: dict[str, Any], where: str) -> None:
        unknown = set(params) - set(self.params)
        if unknown:
            allowed = ", ".join(self.params) or "none"
            raise InputError(f"{where}: unknown parameter(s) {', '.join(sorted(unknown))} "
                             f"(allowed: {allowed}).")
        if "fail_at" in params:
            try:
                Severity(str(params["fail_at"]))
            except ValueError:
                raise InputError(f"{where}: fail_at {params['fail_at']!r} is not a severity "
                                 "(low, medium, high, critical).") from None


def _criteria(project: Project, ctx: Context, params) -> tuple[bool, str]:
    return bool(project.success_criteria), (
        f"{len(project.success_criteria)} measurable criteria: "
        + "; ".join(f"{c.metric} {'>=' if c.direction == 'up' else '<='} {c.target:g}"
                    for c in project.success_criteria))


def _end_users(project: Project, ctx: Context, params) -> tuple[bool, str]:
    if not project.end_users:
        return False, "no end-user group named"
    silent = [u.group for u in project.end_users if not u.involvement.strip()]
    if silent:
        return False, f"not yet involved: {', '.join(silent)}"
    return True, "; ".join(f"{u.group}: {u.involvement}" for u in project.end_users)


def _data_readiness(project: Project, ctx: Context, params) -> tuple[bool, str]:
    if not project.data_sources:
        return False, "no data source listed"
    gaps = [f"{d.name} ({d.readiness}{', no owner' if not d.owner else ''})"
            for d in project.data_sources if d.readiness != "ready" or not d.owner]
    if gaps:
        return False, f"not ready: {', '.join(gaps)}"
    return True, ", ".join(f"{d.name} (owner {d.owner})" for d in project.data_sources)


def _card(kind: str):
    def judge(project: Project, ctx: Context, params) -> tuple[bool, str]:
        card = ctx.latest_card(project, kind)
        label = "model card" if kind == "model" else "datasheet"
        if card is None:
            return False, f"no {label} yet: failwell card {kind} {project.id}"
        missing = [s for s, v in card["sections"].items() if not v.get("text")]
        if missing:
            return False, f"{label} v{card['version']} is missing: {', '.join(missing)}"
        return True, f"{label} v{card['version']} complete"
    return judge


def _scan(project: Project, ctx: Context, params) -> tuple[bool, str]:
    fail_at = Severity(str(params.get("fail_at", "high")))
    scan = ctx.latest_scan(project)
    if scan is None:
        return False, f"no scan recorded: failwell scan ... --kb --project {project.id}"
    blocking = [f for f in scan["findings"] if Severity(f["severity"]) >= fail_at]
    if blocking:
        titles = "; ".join(f"{f['severity']}: {f['title']}" for f in blocking[:3])
        return False, f"scan {scan['id']}: {len(blocking)} finding(s) at {fail_at}+ ({titles})"
    return True, f"scan {scan['id']}: no finding at {fail_at} or above"


def _recorded(kind: str, missing: str):
    def judge(project: Project, ctx: Context, params) -> tuple[bool, str]:
        record = ctx.latest_evidence(project, kind)
        if record is None:
            return False, missing.format(project=project.id)
        return bool(record.get("passed", True)), record.get("detail", "")
    return judge


def _proxy_guard(project: Project, ctx: Context, params) -> tuple[bool, str]:
    if project.proxy_guard is None:
        return True, "no proxy metric declared"
    return _recorded("proxy-guard", "no comparison yet: failwell compare OLD NEW --project "
                                    "{project}")(project, ctx, params)


FAIRNESS_MODES = ("group-unfairness", "counterfactual-unfairness", "historical-bias",
                  "proxy-feature", "underrepresentation")


def _mitigation(project: Project, ctx: Context, params) -> tuple[bool, str]:
    """A recorded choice among measured mitigations; nothing to decide when the latest scan
    has no fairness finding at medium or above."""
    record = ctx.latest_evidence(project, "mitigation")
    if record is not None:
        return bool(record.get("passed", True)), record.get("detail", "")
    scan = ctx.latest_scan(project)
    open_ = [f for f in (scan or {}).get("findings", [])
             if f["failure_mode"] in FAIRNESS_MODES
             and Severity(f["severity"]) >= Severity.MEDIUM]
    if scan is not None and not open_:
        return True, f"scan {scan['id']}: no fairness finding at medium or above to mitigate"
    return False, ("no mitigation chosen: failwell mitigate DATA ... --kb --project "
                   f"{project.id} --choose METHOD (or --choose baseline, to accept the "
                   "findings as they are)")


KINDS: dict[str, Kind] = {
    "success-criteria": Kind("every success criterion has a number and a measurement plan",
                             _criteria),
    "end-users": Kind("end-user groups are named and were involved", _end_users),
    "data-readiness": Kind("every data source has an owner and is ready", _data_readiness),
    "datasheet": Kind("the latest datasheet has every section", _card("data")),
    "model-card": Kind("the latest model card has every section", _card("model")),
    "scan": Kind("the latest scan of the project has no finding at fail_at or above",
                 _scan, params=("fail_at",)),
    "end-user-signoff": Kind("end users signed off (recorded by a person)",
                             _recorded("end-user-signoff", "no sign-off recorded: failwell "
                                       "gate evidence {project} --kind end-user-signoff ..."),
                             recorded=True),
    "proxy-guard": Kind("the proxy metric did not improve at a guardrail's expense",
                        _proxy_guard),
    "mitigation": Kind("a mitigation was chosen from a measured comparison, with its price "
                       "(or nothing needed one)", _mitigation),
    "pir-outcomes": Kind("measured outcomes recorded for every success criterion",
                         _recorded("pir-outcomes", "no outcomes recorded: failwell pir "
                                   "{project} --outcome METRIC=VALUE ...")),
}


def judge(kind: str, project: Project, ctx: Context, params: dict[str, Any]) -> EvidenceStatus:
    satisfied, detail = KINDS[kind].judge(project, ctx, params)
    return EvidenceStatus(kind, satisfied, detail, dict(params))
