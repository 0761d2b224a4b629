"""Projects, gate reviews, evidence, cards and the audit log, in the knowledge base's database.

:class:`Governance` wraps a :class:`~failwell.kb.store.KnowledgeBase` (same engine, same
transactions). Every write appends to ``audit_log`` in the same transaction; the log itself
refuses updates and deletes (database triggers, migration 0003).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import insert, select, update

from failwell.db import engine as db
from failwell.db.schema import audit_log, cards, conditions, evidence, projects, reviews
from failwell.errors import InputError, NotFoundError, did_you_mean
from failwell.governance import cards as card_docs
from failwell.governance.evidence import KINDS, EvidenceStatus, judge
from failwell.governance.gates import Gate, load_gates, next_gate
from failwell.governance.project import Project, from_dict, from_yaml
from failwell.kb.store import KnowledgeBase

DECISIONS = ("go", "go-with-conditions", "no-go")
DONE = "done"  # the stage of a project that passed every gate


def actor(name: str | None = None) -> str:
    if name and name.strip():
        return name.strip()
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return "unknown"



@dataclass
class GateStatus:
    project: str
    stage: str
    gate: Gate | None
    evidence: list[EvidenceStatus]
    lessons: list[Any]
    open_conditions: list[dict[str, Any]]
    history: list[dict[str, Any]]

    @property
    def ready(self) -> bool:
        return all(e.satisfied for e in self.evidence)

    def to_dict(self) -> dict[str, Any]:
        gate = None if self.gate is None else {
            "id": self.gate.id, "name": self.gate.name,
            "questions": [asdict(q) for q in self.gate.questions]}
        return {"project": self.project, "stage": self.stage, "gate": gate,
                "ready": self.ready, "evidence": [e.to_dict() for e in self.evidence],
                "lessons": [h.to_dict() for h in self.lessons],
                "open_conditions": self.open_conditions, "history": self.history}


class Governance:
    def __init__(self, kb: KnowledgeBase, gates: list[Gate] | None = None):
        self.kb = kb
        self.engine = kb.engine
        self.gates = gates if gates is not None else load_gates()

    # -- projects --------------------------------------------------------------------------

    def add_project(self, text: str, *, source: str = "project", by: str | None = None
                    ) -> Project:
        project = from_yaml(text, source=source)
        with db.write_transaction(self.engine) as conn:
            if conn.execute(select(projects.c.id).where(projects.c.slug == project.id)).first():
                raise InputError(f"{source}: a project with id {project.id!r} already exists.")
            now = db.utc_now()
            conn.execute(insert(projects).values(
                slug=project.id, name=project.name, stage=self.gates[0].id, risk=project.risk,
                document=project.to_dict(), yaml=text, created_at=now, updated_at=now))
            self._audit(conn, by, "project.create", project.id, {"stage": self.gates[0].id})
        return project

    def project(self, slug: str) -> tuple[Project, dict[str, Any]]:
        with self.engine.connect() as conn:
            row = conn.execute(select(projects).where(projects.c.slug == slug)).first()
            if row is None:
                known = conn.execute(select(projects.c.slug)).scalars().all()
                raise NotFoundError(f"No project {slug!r}.{did_you_mean(slug, known)}")
        return from_dict(row.document, source=slug), dict(row._mapping)

    def projects(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(projects.c.slug, projects.c.name, projects.c.stage, projects.c.risk,
                       projects.c.updated_at).order_by(projects.c.slug))]

    # -- evidence ------------------------------------------------------------------------

    def record_evidence(self, slug: str, kind: str, payload: dict[str, Any], *,
                        by: str | None = None, system: bool = False) -> None:
        if kind not in KINDS:
            raise InputError(f"unknown evidence kind {kind!r}.{did_you_mean(kind, KINDS)}")
        if not system and not KINDS[kind].recorded:
            recordable = [k for k, v in KINDS.items() if v.recorded]
            raise InputError(f"{kind!r} is computed from the project, its scans and cards, not "
                             f"recorded by hand (recordable: {', '.join(recordable)}).")
        _, row = self.project(slug)
        with db.write_transaction(self.engine) as conn:
            conn.execute(insert(evidence).values(
                project_id=row["id"], kind=kind, payload=payload, recorded_by=actor(by),
                recorded_at=db.utc_now()))
            self._audit(conn, by, "evidence.record", slug, {"kind": kind, **payload})

    def latest_evidence(self, project: Project, kind: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(evidence.c.payload).join(
                projects, projects.c.id == evidence.c.project_id).where(
                projects.c.slug == project.id, evidence.c.kind == kind).order_by(
                evidence.c.id.desc()).limit(1)).first()
        return None if row is None else row.payload

    def latest_scan(self, project: Project) -> dict[str, Any] | None:
        rows = self.kb.project_scans(project.id, newest_first=True, limit=1)
        if not rows:
            return None
        return rows[0] | {"findings": rows[0]["result"].get("findings", [])}

    def latest_card(self, project: Project, kind: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(cards).join(projects, projects.c.id == cards.c.project_id)
                               .where(projects.c.slug == project.id, cards.c.kind == kind)
                               .order_by(cards.c.version.desc()).limit(1)).first()
        if row is None:
            return None
        card = dict(row._mapping)
        card["created_at"] = card["created_at"].isoformat(timespec="seconds")
        return card

    # -- gates ---------------------------------------------------------------------------

    def passed_gates(self, slug: str) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(reviews.c.gate).join(
                projects, projects.c.id == reviews.c.project_id).where(
                projects.c.slug == slug, reviews.c.decision != "no-go")).scalars())

    def status(self, slug: str, *, with_lessons: bool = True) -> GateStatus:
        project, row = self.project(slug)
        gate = next((g for g in self.gates if g.id == row["stage"]), None)
        statuses = [judge(r.kind, project, self, r.params) for r in gate.evidence] if gate else []
        lessons = self.gate_lessons(project, gate) if with_lessons and gate else []
        return GateStatus(slug, row["stage"], gate, statuses, lessons,
                          self.open_conditions(slug), self.history(slug))

    def project_scans(self, project: Project) -> list[dict[str, Any]]:
        """Every scan recorded against the project, oldest first: ``{"id", "result"}``."""
        return self.kb.project_scans(project.id)

    def gate_lessons(self, project: Project, gate: Gate, limit: int = 3) -> list[Any]:
        """Lessons of past incidents that fit this gate and this project, best first, each
        with its reason (:class:`~failwell.governance.gate_lessons.GateLesson`).

        The rule (details in :mod:`failwell.governance.gate_lessons`): an incident is shown
        when its modality can apply to the project (an LLM-only or image-only incident is
        never shown to a tabular project), when it fits the gate (a contributing factor
        carries the pattern of one of the gate's questions, or the gate reviews scans and the
        incident is mainly about a failure mode the project's scans found), and when it fits
        the project: it is mainly about a failure mode the project has (found by its scans;
        fairness when the project names protected groups; a declared proxy guard or latency
        constraint where a gate question asks about it) or comes from the project's domain.
        Ranked by those links, the gate questions it answers and the words it shares with
        them; at most ``limit``, fewer when fewer fit.
        """
        from failwell.governance.gate_lessons import select_lessons

        return select_lessons(self.kb, project, gate, scans=self.project_scans(project),
                              datasheet=self.latest_card(project, "data"), limit=limit)

    def review(self, slug: str, gate_id: str, decision: str, rationale: str, *,
               reviewers: list[str], conditions_: list[str] = (),
               override_reason: str | None = None, by: str | None = None) -> GateStatus:
        """Record a board decision at the project's current gate. ``go`` and
        ``go-with-conditions`` advance the project; missing evidence blocks them unless an
        override reason is given (and stored)."""
        if decision not in DECISIONS:
            raise InputError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}.")
        if not rationale or not rationale.strip():
            raise InputError("a decision needs a rationale: what evidence decided it.")
        if not reviewers:
            raise InputError("name the reviewers by role, e.g. 'risk officer' (--reviewer).")
        if decision == "go-with-conditions" and not conditions_:
            raise InputError("go-with-conditions needs at least one condition (--condition).")
        status = self.status(slug, with_lessons=False)
        if status.gate is None:
            raise InputError(f"project {slug!r} has passed every gate.")
        if gate_id != status.gate.id:
            known = [g.id for g in self.gates]
            if gate_id not in known:
                raise InputError(f"unknown gate {gate_id!r}.{did_you_mean(gate_id, known)}")
            raise InputError(f"project {slug!r} is at the {status.gate.id!r} gate, not "
                             f"{gate_id!r}; nothing was recorded.")
        missing = [e for e in status.evidence if not e.satisfied]
        override = (override_reason or "").strip() or None
        if decision != "no-go" and missing and not override:
            raise InputError(
                f"cannot pass {gate_id!r}: evidence missing — "
                + "; ".join(f"{e.kind}: {e.detail}" for e in missing)
                + ". Provide it, decide no-go, or give an override reason (--override-reason; it "
                "is recorded).")
        _, row = self.project(slug)
        passed = self.passed_gates(slug) | ({gate_id} if decision != "no-go" else set())
        following = next_gate(self.gates, passed)
        stage = gate_id if decision == "no-go" else (following.id if following else DONE)
        now = db.utc_now()
        with db.write_transaction(self.engine) as conn:
            review_id = conn.execute(insert(reviews).values(
                project_id=row["id"], gate=gate_id, decision=decision,
                rationale=rationale.strip(), reviewers=list(reviewers),
                evidence=[e.to_dict() for e in status.evidence],
                override_reason=override if missing and decision != "no-go" else None,
                decided_at=now)).inserted_primary_key[0]
            if conditions_:
                conn.execute(insert(conditions), [
                    {"review_id": review_id, "description": c, "owner": row["document"].get(
                        "owner") or "project team", "status": "open", "updated_at": now}
                    for c in conditions_])
            conn.execute(update(projects).where(projects.c.id == row["id"]).values(
                stage=stage, updated_at=now))
            self._audit(conn, by, "gate.review", slug, {
                "gate": gate_id, "decision": decision, "rationale": rationale.strip(),
                "reviewers": list(reviewers), "conditions": list(conditions_),
                "override_reason": override, "missing_evidence": [e.kind for e in missing],
                "stage": stage})
        return self.status(slug, with_lessons=False)

    def open_conditions(self, slug: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(conditions.c.id, conditions.c.description,
                                       conditions.c.owner, conditions.c.status, reviews.c.gate)
                                .join(reviews, reviews.c.id == conditions.c.review_id)
                                .join(projects, projects.c.id == reviews.c.project_id)
                                .where(projects.c.slug == slug, conditions.c.status == "open"))
            return [dict(r._mapping) for r in rows]

    def close_condition(self, slug: str, condition_id: int, status: str = "done", *,
                        by: str | None = None) -> None:
        if status not in ("done", "wont-do", "open"):
            raise InputError(f"status {status!r} is not one of done, wont-do, open.")
        ids = {c["id"] for c in self.open_conditions(slug)}
        if condition_id not in ids:
            raise NotFoundError(f"no open condition {condition_id} on project {slug!r}"
                                f" (open: {', '.join(map(str, sorted(ids))) or 'none'}).")
        with db.write_transaction(self.engine) as conn:
            conn.execute(update(conditions).where(conditions.c.id == condition_id).values(
                status=status, updated_at=db.utc_now()))
            self._audit(conn, by, "condition.update", slug, {"id": condition_id,
                                                             "status": status})

    def history(self, slug: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(reviews).join(
                projects, projects.c.id == reviews.c.project_id).where(
                projects.c.slug == slug).order_by(reviews.c.id))
            out = []
            for r in rows:
                item = dict(r._mapping)
                item["decided_at"] = item["decided_at"].isoformat(timespec="seconds")
                out.append(item)
            return out

    # -- cards ---------------------------------------------------------------------------

    def save_card(self, slug: str, kind: str, edits: dict[str, str] | None = None, *,
                  by: str | None = None) -> dict[str, Any]:
        """A new version: the previous version (or a fresh draft) with people's edits, and
        any section still empty refreshed from the project and its latest scan."""
        names = card_docs.SECTIONS.get(kind)
        if names is None:
            raise InputError(f"card kind {kind!r} is not 'model' or 'data'.")
        for key in edits or {}:
            if key not in names:
                raise InputError(f"{key!r} is not a {card_docs.TITLES[kind].lower()} section."
                                 f"{did_you_mean(key, names)} Sections: {', '.join(names)}.")
        project, row = self.project(slug)
        draft = card_docs.generate(kind, project, self.latest_scan(project))
        previous = self.latest_card(project, kind)
        sections = {}
        for key in names:
            kept = (previous or {}).get("sections", {}).get(key, {})
            if kept.get("source") == "person":
                sections[key] = kept
            else:
                sections[key] = draft[key]
        for key, text in (edits or {}).items():
            sections[key] = {"text": text.strip(), "source": "person" if text.strip() else ""}
        version = (previous or {}).get("version", 0) + 1
        with db.write_transaction(self.engine) as conn:
            conn.execute(insert(cards).values(project_id=row["id"], kind=kind, version=version,
                                              sections=sections, created_by=actor(by),
                                              created_at=db.utc_now()))
            self._audit(conn, by, "card.save", slug, {
                "kind": kind, "version": version, "edited": sorted(edits or {}),
                "missing": card_docs.missing(sections)})
        return self.latest_card(project, kind)

    # -- audit ---------------------------------------------------------------------------

    def _audit(self, conn, by: str | None, action: str, project: str | None,
               details: dict[str, Any]) -> None:
        conn.execute(insert(audit_log).values(at=db.utc_now(), actor=actor(by), action=action,
                                              project=project, details=details))

    def entry(self, by: str, action: str, details: dict[str, Any], *,
              project: str | None = None) -> Callable[[Any], None]:
        """An audit entry for a write made elsewhere (the web app's incident and scan
        writes), to pass as that write's ``audit=`` hook: both commit in one transaction.
        What the write produced (a new scan's id) is added to the details."""
        return lambda conn, **produced: self._audit(conn, by, action, project,
                                                    details | produced)

    def audit(self, slug: str | None = None) -> list[dict[str, Any]]:
        query = select(audit_log).order_by(audit_log.c.id)
        if slug:
            query = query.where(audit_log.c.project == slug)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
