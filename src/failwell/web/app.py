"""The web app: thin FastAPI routes over the KnowledgeBase API, pages rendered with Jinja.

Every route states the role (and, for API tokens, the scope) it needs; writes from a browser
session must carry the session's CSRF token (form field ``csrf`` or header
``X-CSRF-Token``). API tokens are sent as ``Authorization: Bearer ...`` and need no CSRF
token, since no browser sends them on its own.

Groundwork for issue 8: login, the incident list with search, incident pages, and the JSON
API for incidents and the blameless-language check. Dashboards, gates and scan uploads are
still to come.
"""

from pathlib import Path
from typing import Annotated, Any

from failwell.errors import FailwellError, NotFoundError, require
from failwell.kb.store import Filters, KnowledgeBase
from failwell.web.accounts import Accounts, AuthError, User

SESSION_COOKIE = "fw_session"


class _Unauthenticated(Exception):
    """No session and no token: pages redirect to the login form, the API answers 401."""


class _Forbidden(Exception):
    """Logged in, but without the role, scope or CSRF token the route needs (403)."""
TEMPLATES = Path(__file__).parent / "templates"


def create_app(db_url: str | None = None):
    fastapi = require("fastapi", extra="web", purpose="The web app")
    from fastapi import Depends, Form, Query, Request
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
    from fastapi.templating import Jinja2Templates

    from failwell.governance.store import Governance

    kb = KnowledgeBase.open(db_url)
    accounts, governance = Accounts(kb), Governance(kb)
    templates = Jinja2Templates(directory=str(TEMPLATES))
    app = fastapi.FastAPI(title="failwell", version="1",
                          description="Blameless incident knowledge base and review board.")
    app.state.kb, app.state.accounts = kb, accounts

    # -- who is asking -------------------------------------------------------------------

    def identify(request: Request) -> tuple[User | None, str | None]:
        """(user, CSRF token of the session, or None for an API token)."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            user = accounts.token_user(header[7:].strip())
            if user is None:
                raise AuthError("the API token is unknown or revoked.")
            return user, None
        sid = request.cookies.get(SESSION_COOKIE)
        found = accounts.session(sid) if sid else None
        return (found[0], found[1]) if found else (None, None)

    def needs(role: str, scope: str):
        async def check(request: Request) -> User:
            user, csrf = identify(request)
            if user is None:
                raise _Unauthenticated()
            if not user.can(role, scope):
                raise _Forbidden(f"this needs the {role} role"
                                 + (f" and the {scope!r} scope" if scope else "") + ".")
            request.state.csrf = csrf  # for the page's forms
            if request.method not in ("GET", "HEAD") and csrf is not None:
                sent = request.headers.get("x-csrf-token")
                if sent is None and "form" in request.headers.get("content-type", ""):
                    sent = (await request.form()).get("csrf")
                if sent != csrf:
                    raise _Forbidden("the form's CSRF token is missing or stale; reload it.")
            return user
        return check

    Viewer = Annotated[User, Depends(needs("viewer", "read"))]
    Contributor = Annotated[User, Depends(needs("contributor", "write"))]
    ScanUploader = Annotated[User, Depends(needs("contributor", "scans"))]
    Reviewer = Annotated[User, Depends(needs("reviewer", "review"))]

    def wants_html(request: Request) -> bool:
        return not request.url.path.startswith("/api/")

    @app.exception_handler(_Unauthenticated)
    async def unauthenticated(request: Request, exc: Exception):
        if wants_html(request):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return JSONResponse({"detail": "log in or send an API token."}, status_code=401)

    @app.exception_handler(_Forbidden)
    async def forbidden(request: Request, exc: Exception):
        return _error(request, 403, str(exc))

    @app.exception_handler(AuthError)
    async def auth_error(request: Request, exc: Exception):
        return _error(request, 401, str(exc))

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: Exception):
        return _error(request, 404, str(exc))

    @app.exception_handler(FailwellError)
    async def bad_input(request: Request, exc: Exception):
        return _error(request, 400, str(exc))

    def _error(request: Request, status: int, message: str):
        if wants_html(request):
            return templates.TemplateResponse(request, "error.html", {
                "status": status, "message": message, "user": None}, status_code=status)
        return JSONResponse({"detail": message}, status_code=status)

    def page(request: Request, name: str, user: User | None, status_code: int = 200,
             **context: Any):
        csrf = getattr(request.state, "csrf", None)
        return templates.TemplateResponse(request, name, {"user": user, "csrf": csrf,
                                                          **context}, status_code=status_code)

    # -- pages -----------------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/"):
        return page(request, "login.html", None, next=next if next.startswith("/") else "/")

    @app.post("/login", include_in_schema=False)
    def login(request: Request, username: Annotated[str, Form()],
              password: Annotated[str, Form()], next: Annotated[str, Form()] = "/"):
        user = accounts.authenticate(username, password)
        sid, _ = accounts.open_session(user)
        response = RedirectResponse(next if next.startswith("/") else "/", status_code=303)
        response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, user: Viewer):
        accounts.close_session(request.cookies.get(SESSION_COOKIE, ""))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, user: Viewer):
        return RedirectResponse("/dashboard", status_code=303)

    @app.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    def dashboard(request: Request, user: Viewer):
        from failwell.kb.stats import learning_stats

        stats = learning_stats(kb)
        return page(request, "dashboard.html", user, stats=stats,
                    periods=_periods(stats), charts=_charts(stats))

    @app.get("/incidents", response_class=HTMLResponse, include_in_schema=False)
    def incident_list(request: Request, user: Viewer, q: str = "",
                      severity: Annotated[list[str], Query()] = [],  # noqa: B006
                      pattern: Annotated[list[str], Query()] = [],  # noqa: B006
                      failure_mode: Annotated[list[str], Query()] = []):  # noqa: B006
        filters = Filters(severities=severity, patterns=pattern, failure_modes=failure_mode)
        rows = _find(kb, q, filters)
        return page(request, "incidents.html", user, rows=rows, q=q, total=kb.count(),
                    narrowed=", ".join(pattern + failure_mode + severity))

    @app.get("/incidents/new", response_class=HTMLResponse, include_in_schema=False)
    def new_form(request: Request, user: Contributor):
        from failwell.kb.postmortem import TEMPLATE

        return page(request, "edit.html", user, markdown=TEMPLATE.format(
            id="new-incident", title="One line saying what failed"), action="/incidents/new")

    @app.post("/incidents/new", include_in_schema=False)
    def new_incident(request: Request, user: Contributor,
                     markdown: Annotated[str, Form()]):
        from failwell.kb.postmortem import from_markdown

        markdown = markdown.replace("\r\n", "\n")  # forms send CRLF; files here use LF
        try:
            pm = from_markdown(markdown, source="form")
            kb.add(pm, markdown=markdown, source="web")
        except FailwellError as exc:  # show the form again, with the text kept
            return page(request, "edit.html", user, markdown=markdown, error=str(exc),
                        action="/incidents/new", status_code=400)
        governance.record(user.username, "incident.add", {"id": pm.id, "title": pm.title})
        return RedirectResponse(f"/incidents/{pm.id}", status_code=303)

    @app.get("/incidents/{slug}/edit", response_class=HTMLResponse, include_in_schema=False)
    def edit_form(request: Request, slug: str, user: Contributor):
        return page(request, "edit.html", user, markdown=kb.get(slug).markdown,
                    action=f"/incidents/{slug}/edit")

    @app.post("/incidents/{slug}/edit", include_in_schema=False)
    def edit_incident(request: Request, slug: str, user: Contributor,
                      markdown: Annotated[str, Form()]):
        from failwell.kb.postmortem import from_markdown

        markdown = markdown.replace("\r\n", "\n")
        kb.get(slug)  # 404 before anything else
        try:
            pm = from_markdown(markdown, source="form")
            if pm.id != slug:
                raise FailwellError(f"the id is {pm.id!r}; an edit keeps the id {slug!r}.")
            kb.update(pm, markdown=markdown)
        except FailwellError as exc:
            return page(request, "edit.html", user, markdown=markdown, error=str(exc),
                        action=f"/incidents/{slug}/edit", status_code=400)
        governance.record(user.username, "incident.edit", {"id": slug})
        return RedirectResponse(f"/incidents/{slug}", status_code=303)

    @app.post("/incidents/{slug}/publish", include_in_schema=False)
    def publish_incident(request: Request, slug: str, user: Contributor):
        from failwell.errors import PublishBlockedError
        from failwell.kb.blameless import lint

        try:
            kb.publish(slug)
        except PublishBlockedError as exc:
            stored = kb.get(slug)
            return page(request, "incident.html", user, incident=stored.to_dict(),
                        error=str(exc), flags=lint(stored.postmortem.text()),
                        status_code=409)
        governance.record(user.username, "incident.publish", {"id": slug})
        return RedirectResponse(f"/incidents/{slug}", status_code=303)

    @app.get("/incidents/{slug}", response_class=HTMLResponse, include_in_schema=False)
    def incident_page(request: Request, slug: str, user: Viewer):
        stored = kb.get(slug)
        return page(request, "incident.html", user, incident=stored.to_dict())

    # -- JSON API --------------------------------------------------------------------------

    @app.get("/api/incidents")
    def api_incidents(user: Viewer, q: str = "", limit: Annotated[int, Query(ge=1, le=200)] = 20,
                      severity: Annotated[list[str], Query()] = [],  # noqa: B006
                      pattern: Annotated[list[str], Query()] = [],  # noqa: B006
                      failure_mode: Annotated[list[str], Query()] = []):  # noqa: B006
        """Incidents, newest first, or the best matches for ``q``; filters by severity,
        systemic pattern and failure mode."""
        filters = Filters(severities=severity, patterns=pattern, failure_modes=failure_mode)
        return {"incidents": _find(kb, q, filters, limit=limit)}

    @app.get("/api/stats")
    def api_stats(user: Viewer, period: Annotated[str, Query(pattern="^(year|quarter|month)$")
                                                  ] = "year"):
        """Whether the organization is learning: incidents by pattern and failure mode per
        period, recurrence, action-item closure, time to lesson."""
        from failwell.kb.stats import learning_stats

        return learning_stats(kb, period=period)

    @app.get("/api/incidents/{slug}")
    def api_incident(slug: str, user: Viewer):
        return kb.get(slug).to_dict()

    @app.post("/api/incidents", status_code=201)
    def api_add_incident(body: dict[str, Any], user: Contributor):
        """Store a postmortem given as ``{"markdown": ...}`` (the file format of
        ``failwell incident template``)."""
        from failwell.kb.postmortem import from_markdown

        markdown = body.get("markdown")
        if not isinstance(markdown, str) or not markdown.strip():
            raise FailwellError('send {"markdown": "<the postmortem>"}.')
        pm = from_markdown(markdown, source="upload")
        kb.add(pm, markdown=markdown, source="web")
        governance.record(user.username, "incident.add", {"id": pm.id, "title": pm.title})
        return {"id": pm.id, "created_by": user.username}

    @app.post("/api/scans", status_code=201)
    def api_upload_scan(body: dict[str, Any], user: ScanUploader,
                        project: str | None = None):
        """Store a scan result (the JSON of ``failwell scan --format json``), as CI does
        with ``failwell scan --upload URL``; returns its id and page."""
        from failwell.findings import ScanResult

        try:
            result = ScanResult.from_dict(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise FailwellError(f"not a failwell scan result: {exc}") from None
        if project:
            governance.project(project)  # 404 for an unknown project
        scan_id = kb.record_scan(result, project=project)
        governance.record(user.username, "scan.upload", {"scan": scan_id}, project=project)
        return {"id": scan_id, "url": f"/scans/{scan_id}",
                "findings": len(result.findings)}

    @app.get("/api/scans")
    def api_scans(user: Viewer, limit: Annotated[int, Query(ge=1, le=500)] = 50):
        return {"scans": [r | {"created_at": r["created_at"].isoformat(timespec="seconds")}
                          for r in kb.scan_list(limit=limit)]}

    @app.get("/scans", response_class=HTMLResponse, include_in_schema=False)
    def scan_list(request: Request, user: Viewer):
        return page(request, "scans.html", user, scans=kb.scan_list())

    @app.get("/scans/{scan_id}", response_class=HTMLResponse, include_in_schema=False)
    def scan_page(request: Request, scan_id: int, user: Viewer):
        from failwell.kb.lessons import lessons_for_scan

        result = kb.scan(scan_id)
        return page(request, "scan.html", user, scan_id=scan_id, result=result,
                    related=lessons_for_scan(kb, result))

    @app.get("/scans/{scan_id}/report", response_class=HTMLResponse, include_in_schema=False)
    def scan_report(scan_id: int, user: Viewer):
        from failwell.report import render

        return HTMLResponse(render(kb.scan(scan_id), "html", title=f"scan {scan_id}"))

    # -- projects and gates ----------------------------------------------------------------

    @app.get("/projects", response_class=HTMLResponse, include_in_schema=False)
    def project_list(request: Request, user: Viewer):
        return page(request, "projects.html", user, projects=governance.projects())

    @app.get("/projects/{slug}", response_class=HTMLResponse, include_in_schema=False)
    def project_page(request: Request, slug: str, user: Viewer):
        project, _ = governance.project(slug)
        return page(request, "project.html", user, project=project,
                    status=governance.status(slug).to_dict())

    @app.post("/projects/{slug}/review", include_in_schema=False)
    def review_form(request: Request, slug: str, user: Reviewer,
                    gate: Annotated[str, Form()], decision: Annotated[str, Form()],
                    rationale: Annotated[str, Form()] = "",
                    reviewers: Annotated[str, Form()] = "",
                    conditions: Annotated[str, Form()] = "",
                    override_reason: Annotated[str, Form()] = ""):
        try:
            _review(slug, gate, decision, rationale, reviewers, conditions, override_reason,
                    user)
        except NotFoundError:
            raise
        except FailwellError as exc:
            project, _ = governance.project(slug)
            return page(request, "project.html", user, project=project,
                        status=governance.status(slug).to_dict(), error=str(exc),
                        status_code=400)
        return RedirectResponse(f"/projects/{slug}", status_code=303)

    @app.get("/api/projects/{slug}")
    def api_project(slug: str, user: Viewer):
        """The project's current gate: questions, evidence met or missing, open
        conditions, decision history and related lessons."""
        return governance.status(slug).to_dict()

    @app.post("/api/projects/{slug}/reviews", status_code=201)
    def api_review(slug: str, body: dict[str, Any], user: Reviewer):
        """Record a gate decision: ``{"gate", "decision", "rationale", "reviewers": [...],
        "conditions": [...], "override_reason"}``."""
        status = _review(slug, str(body.get("gate", "")), str(body.get("decision", "")),
                         str(body.get("rationale", "")), body.get("reviewers") or [],
                         body.get("conditions") or [], body.get("override_reason"), user)
        return status.to_dict()

    def _review(slug, gate, decision, rationale, reviewers, conditions, override, user):
        def lines(value) -> list[str]:
            items = value.splitlines() if isinstance(value, str) else list(value)
            return [str(v).strip() for v in items if str(v).strip()]

        return governance.review(slug, gate, decision, rationale, reviewers=lines(reviewers),
                                 conditions_=lines(conditions),
                                 override_reason=override or None, by=user.username)

    @app.put("/api/incidents/{slug}")
    def api_update_incident(slug: str, body: dict[str, Any], user: Contributor):
        """Replace a postmortem with a new version of itself (same id)."""
        from failwell.kb.postmortem import from_markdown

        markdown = body.get("markdown")
        if not isinstance(markdown, str) or not markdown.strip():
            raise FailwellError('send {"markdown": "<the postmortem>"}.')
        pm = from_markdown(markdown, source="upload")
        if pm.id != slug:
            raise FailwellError(f"the id is {pm.id!r}; an edit keeps the id {slug!r}.")
        kb.update(pm, markdown=markdown)
        governance.record(user.username, "incident.edit", {"id": slug})
        return {"id": slug, "updated_by": user.username}

    @app.post("/api/lint")
    def api_lint(body: dict[str, Any], user: Viewer):
        """Blame-framing flags for a draft, for the live check while typing."""
        from failwell.kb.blameless import lint

        text = body.get("text")
        if not isinstance(text, str):
            raise FailwellError('send {"text": "<the draft>"}.')
        return {"flags": [f.to_dict() for f in lint(text)]}

    return app


def _find(kb: KnowledgeBase, q: str, filters: Filters, limit: int = 50) -> list[dict]:
    if q.strip():
        from failwell.kb.search import search

        return [h.to_dict() for h in search(kb, q, filters, limit=limit)]
    return [s.to_dict() for s in kb.list(filters, limit=limit)]


def _periods(stats: dict) -> list[str]:
    found = {p for rows in (stats["by_pattern"], stats["by_failure_mode"])
             for counts in rows.values() for p in counts}
    return sorted(found)[-8:]  # the latest eight periods fit a row


def _charts(stats: dict) -> dict[str, list[dict]]:
    """Bar lengths (share of the largest count) for the two tables of counts."""
    out = {}
    for key in ("by_pattern", "by_failure_mode"):
        totals = {tag: sum(counts.values()) for tag, counts in stats[key].items()}
        top = max(totals.values(), default=1)
        out[key] = [{"tag": tag, "total": n, "width": round(100 * n / top)}
                    for tag, n in sorted(totals.items(), key=lambda kv: -kv[1])]
    return out
