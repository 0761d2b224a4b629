"""The catch -> record -> feed back loop as use cases, one copy for every way in.

The command line and the web app both call these, so a postmortem written in the browser
gets the same blame check, tag suggestions, related incidents and recurrence warning as one
recorded with ``failwell incident new``, and a scan uploaded by CI runs the same proxy guard
as ``failwell scan --kb --project``. Each function returns data (with ``to_dict`` for JSON);
printing and HTML are the callers' business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from failwell.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from failwell.findings import ScanResult
    from failwell.governance.store import Governance
    from failwell.kb.blameless import Flag
    from failwell.kb.classify import Suggestion
    from failwell.kb.lessons import LessonHit
    from failwell.kb.postmortem import Postmortem
    from failwell.kb.recurrence import Related
    from failwell.kb.store import AuditHook, KnowledgeBase

Accept = Callable[["Suggestion"], bool]


@dataclass
class IncidentRecorded:
    """What recording a postmortem found: blame framing, tags, similar past incidents."""

    postmortem: Postmortem
    flags: list[Flag] = field(default_factory=list)
    suggestions: list[Suggestion] = field(default_factory=list)
    accepted: list[Suggestion] = field(default_factory=list)
    related: list[Related] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        project = self.postmortem.project
        return {"id": self.postmortem.id, "status": self.postmortem.status,
                "blame_flags": [f.to_dict() for f in self.flags],
                "suggestions": [s.to_dict() for s in self.suggestions],
                "accepted": [s.id for s in self.accepted],
                "related": [r.to_dict() | {"warning": r.warning(project)}
                            for r in self.related]}


def add_incident(kb: KnowledgeBase, pm: Postmortem, markdown: str | None = None, *,
                 accept: bool | Accept = False, source: str = "user",
                 audit: AuditHook | None = None) -> IncidentRecorded:
    """Store a new postmortem with the suggested tags that ``accept`` approves, then check
    its wording and find the incidents it resembles (the recurrence warning is on each)."""
    from failwell.kb.classify import suggest
    from failwell.kb.postmortem import ContributingFactor, to_markdown, unfilled

    left = unfilled(pm)
    if "summary" in left:
        raise InputError("nothing filled in: the summary is still the template's example "
                         "text; write what happened before recording it.")
    if left:
        raise InputError(f"still the template's example text in: {', '.join(left)}; fill "
                         "these in or remove them before recording.")
    if kb.existing_ids([pm.id]):
        raise InputError(f"an incident with id {pm.id!r} already exists; choose another id or "
                         f"`failwell incident edit {pm.id}`.")
    suggestions = [s for s in suggest(pm, kb=kb) if not s.already_tagged]
    approve = (lambda s: accept) if isinstance(accept, bool) else accept
    accepted = [s for s in suggestions if approve(s)]
    if accepted:
        pm.contributing_factors.append(ContributingFactor(
            description="Tags suggested by failwell and confirmed by the author.",
            patterns=[s.id for s in accepted if s.kind == "pattern"],
            failure_modes=[s.id for s in accepted if s.kind == "failure_mode"]))
        markdown = to_markdown(pm)
    kb.add(pm, markdown=markdown, source=source, audit=audit)
    return _reviewed(kb, pm, suggestions, accepted)


def edit_incident(kb: KnowledgeBase, pm: Postmortem, markdown: str | None = None, *,
                  audit: AuditHook | None = None) -> IncidentRecorded:
    """Replace a postmortem with a new version of itself, and review it as a new one."""
    from failwell.kb.classify import suggest

    kb.update(pm, markdown=markdown, audit=audit)
    suggestions = [s for s in suggest(pm, kb=kb) if not s.already_tagged]
    return _reviewed(kb, pm, suggestions, [])


def review_incident(kb: KnowledgeBase, slug: str) -> IncidentRecorded:
    """The same review for a stored incident (the web page after it was written)."""
    from failwell.kb.classify import suggest

    pm = kb.get(slug).postmortem
    suggestions = [s for s in suggest(pm, kb=kb) if not s.already_tagged]
    return _reviewed(kb, pm, suggestions, [])


def _reviewed(kb, pm, suggestions, accepted) -> IncidentRecorded:
    from failwell.kb.blameless import lint
    from failwell.kb.recurrence import related_incidents

    return IncidentRecorded(pm, lint(pm.text()), suggestions, accepted,
                            related_incidents(kb, pm))


@dataclass
class ScanRecorded:
    """A stored scan, the lessons of incidents with the same failure modes, and the
    project's proxy-guard verdict when the scan belongs to a project."""

    scan_id: int
    project: str | None
    lessons: list[LessonHit]
    proxy_guard: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.scan_id, "project": self.project, "proxy_guard": self.proxy_guard,
                "related": [h.to_dict() for h in self.lessons]}


def record_scan(gov: Governance, result: ScanResult, *, project: str | None = None,
                by: str | None = None, audit: AuditHook | None = None) -> ScanRecorded:
    """Store a scan (as gate evidence for ``project``), check the project's proxy guard
    against its previous scan, and find the lessons that apply."""
    from failwell.governance.proxy_guard import check_after_scan
    from failwell.kb.lessons import lessons_for_scan

    if project:
        gov.project(project)  # an unknown project is an error before anything is written
    scan_id = gov.kb.record_scan(result, project=project, audit=audit)
    verdict = check_after_scan(gov, project, by=by) if project else None
    return ScanRecorded(scan_id, project, lessons_for_scan(gov.kb, result), verdict)


def record_mitigation(gov: Governance, comparison: Any, *, project: str,
                      chosen: str | None = None, by: str | None = None) -> ScanRecorded:
    """Store a mitigation comparison: the chosen model's scan (the baseline's when none was
    chosen) as the project's latest scan, and the choice with its price as the
    ``mitigation`` gate evidence, which the model card's draft then cites."""
    recorded = record_scan(gov, comparison.to_result(chosen), project=project, by=by)
    compared = [r.method for r in comparison.runs if r.status == "ran"]
    if chosen:
        detail = (f"chose {chosen} from {', '.join(compared)} (scan {recorded.scan_id}): "
                  f"{comparison.price(chosen)}")
    else:
        detail = (f"compared {', '.join(compared)} (scan {recorded.scan_id}); none chosen "
                  "yet: rerun with --choose METHOD")
    gov.record_evidence(project, "mitigation", {"passed": chosen is not None,
                                                "detail": detail, "chosen": chosen,
                                                "scan_id": recorded.scan_id},
                        by=by, system=True)
    return recorded
