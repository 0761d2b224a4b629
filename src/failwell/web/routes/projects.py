"""Projects and their stage gates: registering a project, status, evidence, lessons,
conditions, and the board's decisions (reviewers only)."""

from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from failwell.errors import FailwellError, NotFoundError
from failwell.governance.evidence import KINDS
from failwell.governance.project import TEMPLATE
from failwell.limits import MAX_DOCUMENT_CHARS, MAX_ID_CHARS, MAX_TEXT_CHARS
from failwell.web.accounts import User
from failwell.web.bodies import ConditionBody, DbId, EvidenceBody, ProjectBody, ReviewBody
from failwell.web.site import Site

RECORDABLE = [kind for kind, spec in KINDS.items() if spec.recorded]
Short = Annotated[str, Form(max_length=MAX_ID_CHARS)]
Long = Annotated[str, Form(max_length=MAX_TEXT_CHARS)]


def _lines(value: Any) -> list[str]:
    """Reviewers or conditions: one per line in a form, a list in JSON."""
    items = value.splitlines() if isinstance(value, str) else list(value or [])
    return [str(v).strip() for v in items if str(v).strip()]


def add_routes(r: FastAPI, site: Site) -> None:
    """Register this area's routes on the app."""
    gov, Viewer, Contributor, Reviewer = (site.governance, site.Viewer, site.Contributor,
                                          site.Reviewer)

    # the writes, shared by the forms and the JSON API

    def review(slug: str, user: User, gate: str, decision: str, rationale: str,
               reviewers: Any, conditions: Any, override: str | None):
        return gov.review(slug, gate, decision, rationale, reviewers=_lines(reviewers),
                          conditions_=_lines(conditions), override_reason=override or None,
                          by=user.username)

    def evidence(slug: str, user: User, kind: str, note: str) -> None:
        if not note.strip():
            raise FailwellError("say what the evidence is: what was done, by whom, where it "
                                "is kept.")
        gov.record_evidence(slug, kind, {"passed": True, "detail": note.strip()},
                            by=user.username)

    def project_page(request: Request, slug: str, user: User, **context: Any):
        project, row = gov.project(slug)
        return site.page(request, "project.html", user, project=project, row=row,
                         status=gov.status(slug).to_dict(), recordable=RECORDABLE,
                         audit=gov.audit(slug)[-20:][::-1], **context)

    def on_project_page(request: Request, slug: str, user: User, write):
        """Run a form's write; the page again with the reason when it is refused."""
        try:
            write()
        except NotFoundError:
            raise
        except FailwellError as exc:
            return project_page(request, slug, user, error=str(exc), status_code=400)
        return RedirectResponse(f"/projects/{slug}", status_code=303)

    # -- pages -----------------------------------------------------------------------------

    @r.get("/projects", response_class=HTMLResponse, include_in_schema=False)
    def project_list(request: Request, user: Viewer):
        return site.page(request, "projects.html", user, projects=gov.projects())

    @r.get("/projects/new", response_class=HTMLResponse, include_in_schema=False)
    def new_project_form(request: Request, user: Contributor):
        return site.page(request, "project_new.html", user, text=TEMPLATE)

    @r.post("/projects/new", include_in_schema=False)
    def new_project(request: Request, user: Contributor,
                    text: Annotated[str, Form(max_length=MAX_DOCUMENT_CHARS)]):
        text = text.replace("\r\n", "\n")
        try:
            project = gov.add_project(text, source="the form", by=user.username)
        except FailwellError as exc:  # the form again, with the text kept
            return site.page(request, "project_new.html", user, text=text, error=str(exc),
                             status_code=400)
        return RedirectResponse(f"/projects/{project.id}", status_code=303)

    @r.get("/projects/{slug}", response_class=HTMLResponse, include_in_schema=False)
    def project(request: Request, slug: str, user: Viewer):
        return project_page(request, slug, user)

    @r.post("/projects/{slug}/review", include_in_schema=False)
    def review_form(request: Request, slug: str, user: Reviewer,
                    gate: Short, decision: Short, rationale: Long = "",
                    reviewers: Long = "", conditions: Long = "", override_reason: Long = ""):
        return on_project_page(request, slug, user, lambda: review(
            slug, user, gate, decision, rationale, reviewers, conditions, override_reason))

    @r.post("/projects/{slug}/evidence", include_in_schema=False)
    def evidence_form(request: Request, slug: str, user: Contributor,
                      kind: Short, note: Long = ""):
        return on_project_page(request, slug, user, lambda: evidence(slug, user, kind, note))

    @r.post("/projects/{slug}/conditions/{condition_id}", include_in_schema=False)
    def condition_form(request: Request, slug: str, condition_id: DbId, user: Reviewer,
                       status: Short = "done"):
        return on_project_page(request, slug, user, lambda: gov.close_condition(
            slug, condition_id, status, by=user.username))

    # -- JSON API --------------------------------------------------------------------------

    @r.get("/api/projects")
    def api_projects(user: Viewer):
        """Registered projects with the gate each is at."""
        return {"projects": site.json_rows(gov.projects())}

    @r.post("/api/projects", status_code=201)
    def api_add_project(body: ProjectBody, user: Contributor):
        """Register a project given as ``{"yaml": ...}`` (the file of ``failwell project
        new --from``); vague success criteria are refused with the reason."""
        project = gov.add_project(body.yaml, source="the request", by=user.username)
        return {"id": project.id, "created_by": user.username}

    @r.get("/api/projects/{slug}")
    def api_project(slug: str, user: Viewer):
        """The project's current gate: questions, evidence met or missing, open
        conditions, decision history and related lessons."""
        return gov.status(slug).to_dict()

    @r.post("/api/projects/{slug}/reviews", status_code=201)
    def api_review(slug: str, body: ReviewBody, user: Reviewer):
        """Record a gate decision: ``{"gate", "decision", "rationale", "reviewers": [...],
        "conditions": [...], "override_reason"}``."""
        return review(slug, user, body.gate, body.decision, body.rationale, body.reviewers,
                      body.conditions, body.override_reason).to_dict()

    @r.post("/api/projects/{slug}/evidence", status_code=201)
    def api_evidence(slug: str, body: EvidenceBody, user: Contributor):
        """Record evidence only people can give (the end users' sign-off):
        ``{"kind": "end-user-signoff", "note": "what was done, by whom, where it is kept"}``."""
        evidence(slug, user, body.kind, body.note)
        return gov.status(slug, with_lessons=False).to_dict()

    @r.post("/api/projects/{slug}/conditions/{condition_id}")
    def api_condition(slug: str, condition_id: DbId, body: ConditionBody, user: Reviewer):
        """Close (or reopen) a condition of a go-with-conditions decision:
        ``{"status": "done" | "wont-do" | "open"}``."""
        gov.close_condition(slug, condition_id, body.status, by=user.username)
        return gov.status(slug, with_lessons=False).to_dict()

    @r.get("/api/projects/{slug}/audit")
    def api_audit(slug: str, user: Viewer):
        """Every write to the project, who made it and when."""
        gov.project(slug)  # 404 for an unknown project
        return {"audit": site.json_rows(gov.audit(slug))}
