"""Post-implementation review: measured outcomes against the success criteria.

A missed criterion opens a blameless postmortem draft in the knowledge base, pre-filled with
the original hypothesis (problem and decision), the criteria, what was measured, and the
evidence the board saw at each gate.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from failwell.errors import InputError, did_you_mean
from failwell.findings import Severity
from failwell.governance.store import Governance
from failwell.kb.postmortem import Postmortem, TimelineEntry


@dataclass
class Outcome:
    metric: str
    target: float
    direction: str
    measured: float
    met: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_outcomes(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"--outcome {item!r}: use METRIC=NUMBER, e.g. default_rate=0.041."
                             ) from None
        if not sep or not name.strip():
            raise InputError(f"--outcome {item!r}: use METRIC=NUMBER.")
    return out


def review_outcomes(gov: Governance, slug: str, measured: dict[str, float], *,
                    by: str | None = None) -> tuple[list[Outcome], str | None]:
    """Record the outcomes; returns them and the id of the postmortem draft opened when a
    criterion was missed (None when all were met)."""
    project, row = gov.project(slug)
    if row["stage"] not in ("post-implementation-review", "done"):
        raise InputError(f"project {slug!r} is at the {row['stage']!r} gate; a post-"
                         "implementation review comes after deployment. Nothing was recorded.")
    names = [c.metric for c in project.success_criteria]
    unknown = [m for m in measured if m not in names]
    if unknown:
        raise InputError(f"{', '.join(unknown)}: not a success criterion of {slug!r}."
                         f"{did_you_mean(unknown[0], names)} Criteria: {', '.join(names)}.")
    missing = [n for n in names if n not in measured]
    if missing:
        raise InputError(f"no outcome for {', '.join(missing)}: a review covers every "
                         "criterion (measure it, or record why it could not be).")
    outcomes = [Outcome(c.metric, c.target, c.direction, measured[c.metric],
                        c.met_by(measured[c.metric])) for c in project.success_criteria]
    missed = [o for o in outcomes if not o.met]
    detail = "; ".join(f"{o.metric} {o.measured:g} vs target {o.target:g} "
                       f"({'met' if o.met else 'missed'})" for o in outcomes)
    postmortem_id = _open_postmortem(gov, slug, outcomes) if missed else None
    gov.record_evidence(slug, "pir-outcomes", {
        "passed": True, "detail": detail, "outcomes": [o.to_dict() for o in outcomes],
        "postmortem": postmortem_id}, by=by, system=True)
    return outcomes, postmortem_id


def _open_postmortem(gov: Governance, slug: str, outcomes: list[Outcome]) -> str:
    project, _ = gov.project(slug)
    today = dt.date.today()
    pm_id = f"pir-{slug}-{today.isoformat()}"
    n = 2
    while gov.kb.existing_ids([pm_id]):
        pm_id, n = f"pir-{slug}-{today.isoformat()}-{n}", n + 1
    missed = [o for o in outcomes if not o.met]
    timeline = [TimelineEntry(r["decided_at"][:10],
                              f"{r['gate']}: {r['decision']} ({r['rationale']}); evidence seen: "
                              + "; ".join(f"{e['kind']} {'ok' if e['satisfied'] else 'MISSING'}"
                                          f" ({e['detail']})" for e in r["evidence"]))
                for r in gov.history(slug)]
    pm = Postmortem(
        id=pm_id, title=f"{project.name} missed {len(missed)} success criterion(s)",
        severity=Severity.HIGH if project.risk == "high" else Severity.MEDIUM,
        project=slug, detected=today,
        decision_supported=project.decision,
        success_definition="; ".join(
            f"{c.metric} {'>=' if c.direction == 'up' else '<='} {c.target:g} (baseline "
            f"{c.baseline if c.baseline is not None else 'n/a'}), measured by {c.measurement}, "
            f"{c.when}" for c in project.success_criteria),
        failed_assumptions=[f"{o.metric} would reach {o.target:g}; measured {o.measured:g}."
                            for o in missed],
        summary=(f"Post-implementation review of {project.name}. The hypothesis: {project.problem}"
                 f" Supporting the decision: {project.decision} Outcomes: "
                 + "; ".join(f"{o.metric} {o.measured:g} (target {o.target:g}, "
                             f"{'met' if o.met else 'missed'})" for o in outcomes)
                 + ". Draft opened by failwell; complete the contributing factors, lessons and "
                   "action items with the team."),
        timeline=timeline)
    gov.kb.add(pm)
    return pm_id
