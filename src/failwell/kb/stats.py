"""Is the organization learning? Counts by pattern and failure mode over time, recurrence,
action-item closure and time to lesson.

Definitions (also in the README):

* **recurrence rate**: the share of incidents that have an earlier incident (by date
  occurred) with a failure mode in common;
* **action-item closure rate**: done or won't-do over all action items; **time to close**:
  days from the incident's detection (else occurrence) to the item's closing date;
* **time to lesson**: days from occurrence to the postmortem's publication in failwell.

By default the imported public corpus is left out: its records are reports, not the
organization's own postmortems. Everything is aggregated in the database (GROUP BY, a
window function, a median by OFFSET), so the dashboard stays fast at 100,000 incidents.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import Date, Integer, and_, case, cast, extract, func, select
from sqlalchemy.sql import ColumnElement, Select

from failwell.db.schema import action_items, incident_tags, incidents
from failwell.kb.store import CLOSED_ACTIONS, Filters, KnowledgeBase

PERIODS = ("year", "quarter", "month")
PUBLIC_CORPUS = "genai-incidents"  # transfer.GENAI; the one source that is not our own


def period_of(day: dt.date | None, period: str) -> str:
    if day is None:
        return "undated"
    if period == "year":
        return str(day.year)
    if period == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year}-{day.month:02d}"


def default_filters() -> Filters:
    """Everything but the imported public corpus."""
    return Filters(exclude_sources=[PUBLIC_CORPUS])


def _days(later: ColumnElement, earlier: ColumnElement, dialect: str) -> ColumnElement:
    """Whole days between two dates, in the database's own date arithmetic."""
    if dialect == "postgresql":
        return cast(later, Date) - earlier
    return cast(func.julianday(func.date(later)) - func.julianday(earlier), Integer)


def _median(conn, days: Select) -> float | None:
    """The median of a one-column query: count it, then read the middle one or two rows."""
    inner = days.subquery()
    n = conn.execute(select(func.count()).select_from(inner)).scalar_one()
    if not n:
        return None
    column = inner.c[0]
    middle = conn.execute(select(column).order_by(column).offset((n - 1) // 2)
                          .limit(2 - n % 2)).scalars().all()
    return float(sum(middle)) / len(middle)


def _tag_counts(conn, where, period: str) -> dict[str, dict[str, dict[str, int]]]:
    """{kind: {tag: {period: incidents}}}, grouped by year and month in the database."""
    year, month = extract("year", incidents.c.occurred), extract("month", incidents.c.occurred)
    rows = conn.execute(
        select(incident_tags.c.kind, incident_tags.c.tag, year, month, func.count())
        .join(incidents, incidents.c.id == incident_tags.c.incident_id).where(where)
        .group_by(incident_tags.c.kind, incident_tags.c.tag, year, month))
    out: dict[str, dict[str, dict[str, int]]] = {"pattern": {}, "failure_mode": {}}
    for kind, tag, y, m, n in rows:
        day = dt.date(int(y), int(m), 1) if y is not None else None
        counts = out.setdefault(kind, {}).setdefault(tag, defaultdict(int))
        counts[period_of(day, period)] += n
    return {kind: {tag: dict(sorted(c.items())) for tag, c in sorted(tags.items())}
            for kind, tags in out.items()}


def _recurrences(conn, where) -> int:
    """Incidents with a failure mode that an earlier incident (by date, undated last) had:
    number each mode's incidents in date order; count those that are not first for a mode."""
    rank = func.row_number().over(partition_by=incident_tags.c.tag, order_by=(
        incidents.c.occurred.is_(None), incidents.c.occurred, incidents.c.id))
    ranked = (select(incident_tags.c.incident_id, rank.label("rn"))
              .join(incidents, incidents.c.id == incident_tags.c.incident_id)
              .where(where, incident_tags.c.kind == "failure_mode").subquery())
    return conn.execute(select(func.count(func.distinct(ranked.c.incident_id)))
                        .where(ranked.c.rn > 1)).scalar_one()


def learning_stats(kb: KnowledgeBase, filters: Filters | None = None, *,
                   period: str = "year") -> dict[str, Any]:
    filters = filters if filters is not None else default_filters()
    where = and_(True, *filters.clauses())
    dialect = kb.engine.dialect.name
    closed = action_items.c.status.in_(CLOSED_ACTIONS)
    overdue = and_(~closed, action_items.c.due < dt.date.today())
    started = func.coalesce(incidents.c.detected, incidents.c.occurred)

    def total(condition) -> ColumnElement:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    with kb.engine.connect() as conn:
        n, published = conn.execute(select(
            func.count(), total(incidents.c.status == "published")).where(where)).one()
        counts = _tag_counts(conn, where, period)
        recurrences = _recurrences(conn, where) if n else 0
        actions, n_closed, n_overdue = conn.execute(
            select(func.count(), total(closed), total(overdue))
            .join(incidents, incidents.c.id == action_items.c.incident_id).where(where)).one()
        days_to_close = _median(conn, select(_days(action_items.c.closed_at, started, dialect))
                                .join(incidents, incidents.c.id == action_items.c.incident_id)
                                .where(where, closed, action_items.c.closed_at.is_not(None),
                                       started.is_not(None)))
        days_to_lesson = _median(conn, select(
            _days(incidents.c.published_at, incidents.c.occurred, dialect)).where(
            where, incidents.c.published_at.is_not(None), incidents.c.occurred.is_not(None)))
    return {
        "incidents": n,
        "period": period,
        "by_pattern": counts["pattern"],
        "by_failure_mode": counts["failure_mode"],
        "recurrence_rate": round(recurrences / n, 4) if n else None,
        "recurrences": recurrences,
        "action_items": actions,
        "action_items_closed": n_closed,
        "action_closure_rate": round(n_closed / actions, 4) if actions else None,
        "action_items_open": actions - n_closed,
        "action_items_overdue": n_overdue,
        "median_days_to_close": days_to_close,
        "published": published,
        "median_days_to_lesson": days_to_lesson,
    }


def dashboard_stats(kb: KnowledgeBase, *, period: str = "year") -> dict[str, Any]:
    """``learning_stats`` with the default filters, remembered until the next incident write
    (``KnowledgeBase.remembered``) or the next day (overdue items). Computing them takes a
    few hundred ms at 100,000 incidents on PostgreSQL."""
    return kb.remembered(("learning_stats", period, dt.date.today()),
                         lambda: learning_stats(kb, period=period))
