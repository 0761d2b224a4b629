"""Is the organization learning? Counts by pattern and failure mode over time, recurrence,
action-item closure and time to lesson.

Definitions (also in the README):

* **recurrence rate**: the share of incidents that have an earlier incident (by date
  occurred) with a failure mode in common;
* **action-item closure rate**: done or won't-do over all action items; **time to close**:
  days from the incident's detection (else occurrence) to the item's closing date;
* **time to lesson**: days from occurrence to the postmortem's publication in failwell.

By default the imported public corpus is left out: its records are reports, not the
organization's own postmortems.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import and_, select

from failwell.kb.schema import action_items, incident_tags, incidents
from failwell.kb.store import CLOSED_ACTIONS, Filters, KnowledgeBase

PERIODS = ("year", "quarter", "month")


def period_of(day: dt.date | None, period: str) -> str:
    if day is None:
        return "undated"
    if period == "year":
        return str(day.year)
    if period == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year}-{day.month:02d}"


def default_filters() -> Filters:
    return Filters(sources=["user", "import", "library"])


def learning_stats(kb: KnowledgeBase, filters: Filters | None = None, *,
                   period: str = "year") -> dict[str, Any]:
    filters = filters if filters is not None else default_filters()
    where = and_(True, *filters.clauses())
    with kb.engine.connect() as conn:
        rows = conn.execute(select(incidents.c.id, incidents.c.occurred, incidents.c.detected,
                                   incidents.c.created_at, incidents.c.published_at,
                                   incidents.c.status).where(where)).all()
        tags = conn.execute(select(incident_tags.c.incident_id, incident_tags.c.kind,
                                   incident_tags.c.tag).join(
            incidents, incidents.c.id == incident_tags.c.incident_id).where(where)).all()
        actions = conn.execute(select(action_items.c.incident_id, action_items.c.status,
                                      action_items.c.closed_at, action_items.c.due).join(
            incidents, incidents.c.id == action_items.c.incident_id).where(where)).all()
    info = {r.id: r for r in rows}
    by: dict[str, dict[str, Counter]] = {"pattern": defaultdict(Counter),
                                         "failure_mode": defaultdict(Counter)}
    modes_of: dict[int, set[str]] = defaultdict(set)
    for incident_id, kind, tag in tags:
        by[kind][tag][period_of(info[incident_id].occurred, period)] += 1
        if kind == "failure_mode":
            modes_of[incident_id].add(tag)

    # recurrence: walk incidents in date order, remembering every failure mode seen
    ordered = sorted(rows, key=lambda r: (r.occurred or dt.date.max, r.id))
    seen: set[str] = set()
    recurrences = 0
    for r in ordered:
        if modes_of[r.id] & seen:
            recurrences += 1
        seen |= modes_of[r.id]

    closed = [a for a in actions if a.status in CLOSED_ACTIONS]
    still_open = [a for a in actions if a.status not in CLOSED_ACTIONS]
    today = dt.date.today()
    days_to_close = [
        (a.closed_at - start).days for a in closed if a.closed_at
        and (start := info[a.incident_id].detected or info[a.incident_id].occurred)]
    days_to_lesson = [(r.published_at.date() - r.occurred).days for r in rows
                      if r.published_at and r.occurred]

    def median(values: list[int]) -> float | None:
        return float(statistics.median(values)) if values else None

    return {
        "incidents": len(rows),
        "period": period,
        "by_pattern": {k: dict(sorted(v.items())) for k, v in sorted(by["pattern"].items())},
        "by_failure_mode": {k: dict(sorted(v.items()))
                            for k, v in sorted(by["failure_mode"].items())},
        "recurrence_rate": round(recurrences / len(rows), 4) if rows else None,
        "recurrences": recurrences,
        "action_items": len(actions),
        "action_items_closed": len(closed),
        "action_closure_rate": round(len(closed) / len(actions), 4) if actions else None,
        "action_items_open": len(still_open),
        "action_items_overdue": sum(a.due is not None and a.due < today for a in still_open),
        "median_days_to_close": median(days_to_close),
        "published": sum(r.status == "published" for r in rows),
        "median_days_to_lesson": median(days_to_lesson),
    }
