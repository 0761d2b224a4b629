"""Incidents: list and search, pages, writing, editing and publishing postmortems, the
JSON API and the live blameless-language check."""

from typing import Annotated

from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from failwell.errors import FailwellError, PublishBlockedError
from failwell.kb.blameless import lint
from failwell.kb.postmortem import TEMPLATE, Postmortem, from_markdown
from failwell.kb.store import Filters, KnowledgeBase
from failwell.limits import MAX_DOCUMENT_CHARS, MAX_QUERY_CHARS
from failwell.web.bodies import LintBody, PostmortemBody, PublishBody
from failwell.web.bounded import ClientGone, run_cpu
from failwell.web.filters import Many, choices, filters_from
from failwell.web.site import Site
from failwell.workflows import add_incident, review_incident

Markdown = Annotated[str, Form(max_length=MAX_DOCUMENT_CHARS)]
Q = Annotated[str, Query(max_length=MAX_QUERY_CHARS)]


def add_routes(r: FastAPI, site: Site) -> None:
    """Register this area's routes on the app."""
    kb, Viewer, Contributor, audit = site.kb, site.Viewer, site.Contributor, site.audit

    def parse(markdown: str, *, source: str = "form", keep_id: str | None = None
              ) -> Postmortem:
        pm = from_markdown(markdown, source=source)
        if keep_id is not None and pm.id != keep_id:
            raise FailwellError(f"the id is {pm.id!r}; an edit keeps the id {keep_id!r}.")
        return pm

    def publish(slug: str, user, override_reason: str | None) -> list:
        flags = kb.publish(slug, override_reason=override_reason or None, audit=audit(
            user, "incident.publish", {"id": slug, "override_reason": override_reason or None}))
        return [f.to_dict() for f in flags]

    # -- pages -----------------------------------------------------------------------------

    @r.get("/incidents", response_class=HTMLResponse, include_in_schema=False)
    def incident_list(request: Request, user: Viewer, q: Q = "", severity: Many = [],  # noqa: B006
                      pattern: Many = [], failure_mode: Many = [],  # noqa: B006
                      status: Many = []):  # noqa: B006
        filters = filters_from(severity=severity, pattern=pattern, failure_mode=failure_mode,
                               status=status)
        chosen = filters.severities + filters.statuses + filters.patterns + filters.failure_modes
        return site.page(request, "incidents.html", user, rows=find(kb, q, filters), q=q,
                         total=kb.remembered(("count",), kb.count), narrowed=", ".join(chosen),
                         chosen=set(chosen), choices=choices())

    @r.get("/incidents/new", response_class=HTMLResponse, include_in_schema=False)
    def new_form(request: Request, user: Contributor):
        return site.page(request, "edit.html", user, action="/incidents/new",
                         markdown=TEMPLATE.format(id="new-incident",
                                                  title="One line saying what failed"))

    @r.post("/incidents/new", include_in_schema=False)
    def new_incident(request: Request, user: Contributor, markdown: Markdown):
        markdown = markdown.replace("\r\n", "\n")  # forms send CRLF; files here use LF
        try:
            pm = parse(markdown)
            kb.add(pm, markdown=markdown, source="web", audit=audit(
                user, "incident.add", {"id": pm.id, "title": pm.title}))
        except FailwellError as exc:  # show the form again, with the text kept
            return site.page(request, "edit.html", user, markdown=markdown, error=str(exc),
                             action="/incidents/new", status_code=400)
        # the page after a write shows what `failwell incident new` prints (review=1)
        return RedirectResponse(f"/incidents/{pm.id}?review=1", status_code=303)

    @r.get("/incidents/{slug}/edit", response_class=HTMLResponse, include_in_schema=False)
    def edit_form(request: Request, slug: str, user: Contributor):
        return site.page(request, "edit.html", user, markdown=kb.get(slug).markdown,
                         action=f"/incidents/{slug}/edit")

    @r.post("/incidents/{slug}/edit", include_in_schema=False)
    def edit_incident(request: Request, slug: str, user: Contributor, markdown: Markdown):
        markdown = markdown.replace("\r\n", "\n")
        kb.get(slug)  # 404 before anything else
        try:
            kb.update(parse(markdown, keep_id=slug), markdown=markdown,
                      audit=audit(user, "incident.edit", {"id": slug}))
        except FailwellError as exc:
            return site.page(request, "edit.html", user, markdown=markdown, error=str(exc),
                             action=f"/incidents/{slug}/edit", status_code=400)
        return RedirectResponse(f"/incidents/{slug}", status_code=303)

    @r.post("/incidents/{slug}/publish", include_in_schema=False)
    def publish_incident(request: Request, slug: str, user: Contributor,
                         override_reason: Annotated[str, Form()] = ""):
        try:
            publish(slug, user, override_reason)
        except PublishBlockedError as exc:  # the page again, with the flags to reword
            stored = kb.get(slug)
            return site.page(request, "incident.html", user, incident=stored.to_dict(),
                             error=str(exc), flags=lint(stored.postmortem.text()),
                             status_code=409)
        return RedirectResponse(f"/incidents/{slug}", status_code=303)

    @r.get("/incidents/{slug}", response_class=HTMLResponse, include_in_schema=False)
    def incident_page(request: Request, slug: str, user: Viewer, review: bool = False):
        stored = kb.get(slug).to_dict()
        return site.page(request, "incident.html", user, incident=stored,
                         review=review_incident(kb, slug).to_dict() if review else None)

    # -- JSON API --------------------------------------------------------------------------

    @r.get("/api/incidents")
    def api_incidents(user: Viewer, q: Q = "", limit: Annotated[int, Query(ge=1, le=200)] = 20,
                      severity: Many = [], pattern: Many = [],  # noqa: B006
                      failure_mode: Many = [], status: Many = []):  # noqa: B006
        """Incidents, newest first, or the best matches for ``q``; filters by severity,
        systemic pattern, failure mode and status (several values of one: any of them)."""
        filters = filters_from(severity=severity, pattern=pattern, failure_mode=failure_mode,
                               status=status)
        return {"incidents": find(kb, q, filters, limit=limit)}

    @r.get("/api/incidents/{slug}")
    def api_incident(slug: str, user: Viewer):
        """One postmortem: every section, its tags, lessons, action items and status."""
        return kb.get(slug).to_dict()

    @r.post("/api/incidents", status_code=201)
    def api_add_incident(body: PostmortemBody, user: Contributor):
        """Store a postmortem given as ``{"markdown": ...}`` (the file format of
        ``failwell incident template``); answers as ``failwell incident new --format json``
        does: blame flags, suggested tags, related incidents with the recurrence warning."""
        markdown = body.markdown
        pm = parse(markdown, source="upload")
        recorded = add_incident(kb, pm, markdown, source="web", audit=audit(
            user, "incident.add", {"id": pm.id, "title": pm.title}))
        return recorded.to_dict() | {"created_by": user.username}

    @r.put("/api/incidents/{slug}")
    def api_update_incident(slug: str, body: PostmortemBody, user: Contributor):
        """Replace a postmortem with a new version of itself (same id)."""
        markdown = body.markdown
        kb.update(parse(markdown, source="upload", keep_id=slug), markdown=markdown,
                  audit=audit(user, "incident.edit", {"id": slug}))
        return {"id": slug, "updated_by": user.username}

    @r.post("/api/incidents/{slug}/publish")
    def api_publish_incident(slug: str, user: Contributor,
                             body: PublishBody | None = None):
        """Publish after the blameless-language check (409 with the flags while any are
        open), or over them with ``{"override_reason": "..."}``, which is kept."""
        reason = body.override_reason if body else None
        return {"id": slug, "published_by": user.username,
                "overridden_flags": publish(slug, user, reason)}

    @r.post("/api/lint")
    async def api_lint(request: Request, body: LintBody, user: Viewer):
        """Blame-framing flags for a draft, for the live check while typing (the check
        stops when the client disconnects)."""
        try:
            flags = await run_cpu(request, lint, body.text)
        except ClientGone:
            return Response(status_code=499)  # nobody is listening; nginx's "client closed"
        return {"flags": [f.to_dict() for f in flags]}



def find(kb: KnowledgeBase, q: str, filters: Filters, limit: int = 50) -> list[dict]:
    """The best matches for ``q``, or the newest incidents when there is no query."""
    if q.strip():
        from failwell.kb.search import search

        return [h.to_dict() for h in search(kb, q, filters, limit=limit)]
    return [s.to_dict() for s in kb.list(filters, limit=limit)]
