"""Lessons surfaced where they are needed: for a project description, or after a scan.

A description is matched against the knowledge base with the combined search; a scan result
by the failure modes of its findings (incidents tagged with the same mode) and the findings'
titles. Only incidents that recorded lessons contribute.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import and_, exists, select

from failwell.db.schema import incidents, lessons
from failwell.kb.search import search
from failwell.kb.store import Filters, KnowledgeBase


@dataclass
class LessonHit:
    incident: str
    title: str
    score: float
    lessons: list[dict[str, Any]]
    failure_modes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lessons_for_text(kb: KnowledgeBase, text: str, *, limit: int = 5,
                     filters: Filters | None = None) -> list[LessonHit]:
    hits = search(kb, text, filters, limit=max(limit * 4, 20))
    recorded = kb.lessons_of([h.id for h in hits])
    out = [LessonHit(h.id, h.title, h.score, recorded[h.id]) for h in hits if recorded[h.id]]
    return out[:limit]


def latest_lessons(kb: KnowledgeBase, *, limit: int = 20,
                   filters: Filters | None = None) -> list[LessonHit]:
    """The lessons of the most recent incidents that recorded any (newest first)."""
    has_lessons = exists().where(lessons.c.incident_id == incidents.c.id)
    where = and_(has_lessons, *(filters or Filters()).clauses())
    with kb.engine.connect() as conn:
        rows = conn.execute(select(incidents.c.slug, incidents.c.title).where(where).order_by(
            incidents.c.occurred.desc().nulls_last(), incidents.c.id.desc()).limit(limit)).all()
    recorded = kb.lessons_of([slug for slug, _ in rows])
    return [LessonHit(slug, title, 0.0, recorded[slug]) for slug, title in rows]


def lessons_for_scan(kb: KnowledgeBase, result, *, limit: int = 5) -> list[LessonHit]:
    """Lessons of incidents that share a failure mode with the scan's findings."""
    modes = list(dict.fromkeys(f.failure_mode for f in result.findings))
    merged: dict[str, LessonHit] = {}
    for mode in modes:
        titles = " ".join(f.title for f in result.findings if f.failure_mode == mode)
        from failwell.taxonomy import load_catalog

        entry = load_catalog().failure_mode(mode)
        for hit in lessons_for_text(kb, f"{entry.name}. {titles}", limit=limit,
                                    filters=Filters(failure_modes=[mode])):
            if hit.incident in merged:
                merged[hit.incident].score += hit.score
                merged[hit.incident].failure_modes.append(mode)
            else:
                hit.failure_modes = [mode]
                merged[hit.incident] = hit
    return sorted(merged.values(), key=lambda h: -h.score)[:limit]
