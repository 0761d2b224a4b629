"""Lessons: what past incidents taught, newest first or the ones that fit a description
(a new project, a design review), filtered by failure mode or systemic pattern."""

from typing import Annotated

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse

from failwell.kb.lessons import LessonHit, latest_lessons, lessons_for_text
from failwell.kb.store import Filters, KnowledgeBase
from failwell.limits import MAX_QUERY_CHARS
from failwell.web.filters import Many, choices, filters_from
from failwell.web.site import Site

Q = Annotated[str, Query(max_length=MAX_QUERY_CHARS)]


def find_lessons(kb: KnowledgeBase, q: str, filters: Filters, limit: int) -> list[LessonHit]:
    if q.strip():
        return lessons_for_text(kb, q, limit=limit, filters=filters)
    return latest_lessons(kb, limit=limit, filters=filters)


def add_routes(r: FastAPI, site: Site) -> None:
    """Register this area's routes on the app."""
    kb, Viewer = site.kb, site.Viewer

    @r.get("/lessons", response_class=HTMLResponse, include_in_schema=False)
    def lesson_page(request: Request, user: Viewer, q: Q = "",
                    pattern: Many = [], failure_mode: Many = []):  # noqa: B006
        filters = filters_from(pattern=pattern, failure_mode=failure_mode)
        chosen = filters.patterns + filters.failure_modes
        return site.page(request, "lessons.html", user, q=q, narrowed=", ".join(chosen),
                         chosen=set(chosen), choices=choices(),
                         hits=find_lessons(kb, q, filters, limit=5 if q.strip() else 30))

    @r.get("/api/lessons")
    def api_lessons(user: Viewer, q: Q = "", limit: Annotated[int, Query(ge=1, le=100)] = 20,
                    pattern: Many = [], failure_mode: Many = []):  # noqa: B006
        """Lessons of past incidents: those that fit ``q`` (a project or design described in
        a few sentences), else the newest; filters by pattern and failure mode."""
        filters = filters_from(pattern=pattern, failure_mode=failure_mode)
        return {"lessons": [h.to_dict() for h in find_lessons(kb, q, filters, limit)]}
