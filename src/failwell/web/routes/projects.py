"""Projects and their stage gates: status, evidence, lessons, and the board's decisions
(reviewers only)."""

from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from failwell.errors import FailwellError, NotFoundError
from failwell.web.accounts import User
from failwell.web.site import Site


def _lines(value: Any) -> list[str]:
    """Reviewers or conditions: one per line in a form, a list in JSON."""
    items = value.splitlines() if isinstance(value, str) else list(value or [])
    return [str(v).strip() for v in items if str(v).strip()]


def add_routes(r: FastAPI, site: Site) -> None:
    """Register this area's routes on the app."""
    gov, Viewer, Reviewer = site.governance, site.Viewer, site.Reviewer

    def review(slug: str, user: User, gate: str, decision: str, rationale: str,
               reviewers: Any, conditions: Any, override: str | None):
        return gov.review(slug, gate, decision, rationale, reviewers=_lines(reviewers),
                          conditions_=_lines(conditions), override_reason=override or None,
                          by=user.username)

    def project_page(request: Request, slug: str, user: User, **context: Any):
        project, _ = gov.project(slug)
        return site.page(request, "project.html", user, project=project,
                         status=gov.status(slug).to_dict(), **context)

    @r.get("/projects", response_class=HTMLResponse, include_in_schema=False)
    def project_list(request: Request, user: Viewer):
        return site.page(request, "projects.html", user, projects=gov.projects())

    @r.get("/projects/{slug}", response_class=HTMLResponse, include_in_schema=False)
    def project(request: Request, slug: str, user: Viewer):
        return project_page(request, slug, user)

    @r.post("/projects/{slug}/review", include_in_schema=False)
    def review_form(request: Request, slug: str, user: Reviewer,
                    gate: Annotated[str, Form()], decision: Annotated[str, Form()],
                    rationale: Annotated[str, Form()] = "",
                    reviewers: Annotated[str, Form()] = "",
                    conditions: Annotated[str, Form()] = "",
                    override_reason: Annotated[str, Form()] = ""):
        try:
            review(slug, user, gate, decision, rationale, reviewers, conditions,
                   override_reason)
        except NotFoundError:
            raise
        except FailwellError as exc:  # the page again, with the reason
            return project_page(request, slug, user, error=str(exc), status_code=400)
        return RedirectResponse(f"/projects/{slug}", status_code=303)

    @r.get("/api/projects/{slug}")
    def api_project(slug: str, user: Viewer):
        """The project's current gate: questions, evidence met or missing, open
        conditions, decision history and related lessons."""
        return gov.status(slug).to_dict()

    @r.post("/api/projects/{slug}/reviews", status_code=201)
    def api_review(slug: str, body: dict[str, Any], user: Reviewer):
        """Record a gate decision: ``{"gate", "decision", "rationale", "reviewers": [...],
        "conditions": [...], "override_reason"}``."""
        return review(slug, user, str(body.get("gate", "")), str(body.get("decision", "")),
                      str(body.get("rationale", "")), body.get("reviewers"),
                      body.get("conditions"), body.get("override_reason")).to_dict()

