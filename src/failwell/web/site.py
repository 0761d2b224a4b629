"""What every route needs: the stores, who is asking, and how to answer (page or JSON).

Every route states the role (and, for API tokens, the scope) it needs through
``site.needs``; writes from a browser session must carry the session's CSRF token (form
field ``csrf`` or header ``X-CSRF-Token``). API tokens come as ``Authorization: Bearer
...`` and need no CSRF token, since no browser sends them on its own.
"""

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.templating import Jinja2Templates

from failwell.governance.store import Governance
from failwell.kb.store import KnowledgeBase
from failwell.web.accounts import Accounts, AuthError, User

SESSION_COOKIE = "fw_session"
TEMPLATES = Path(__file__).parent / "templates"


class Unauthenticated(Exception):
    """No session and no token: pages redirect to the login form, the API answers 401."""


class Forbidden(Exception):
    """Logged in, but without the role, scope or CSRF token the route needs (403)."""


def local_path(target: str) -> str:
    """Where to go after logging in: a path on this site only (no open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


class Site:
    def __init__(self, db_url: str | None = None):
        self.kb = KnowledgeBase.open(db_url)
        self.accounts = Accounts(self.kb)
        self.governance = Governance(self.kb)
        self.templates = Jinja2Templates(directory=str(TEMPLATES))
        self.Viewer = Annotated[User, Depends(self.needs("viewer", "read"))]
        self.Contributor = Annotated[User, Depends(self.needs("contributor", "write"))]
        self.ScanUploader = Annotated[User, Depends(self.needs("contributor", "scans"))]
        self.Reviewer = Annotated[User, Depends(self.needs("reviewer", "review"))]
        # account settings: people in a browser only, so a token cannot mint a wider token
        self.Member = Annotated[User, Depends(self.needs("viewer", "read", session_only=True))]
        self.Admin = Annotated[User, Depends(self.needs("admin", "read", session_only=True))]

    def identify(self, request: Request) -> tuple[User | None, str | None]:
        """(user, CSRF token of the session, or None for an API token)."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            user = self.accounts.token_user(header[7:].strip())
            if user is None:
                raise AuthError("the API token is unknown or revoked.")
            return user, None
        sid = request.cookies.get(SESSION_COOKIE)
        found = self.accounts.session(sid) if sid else None
        return (found[0], found[1]) if found else (None, None)

    def needs(self, role: str, scope: str, *, session_only: bool = False):
        async def check(request: Request) -> User:
            user, csrf = self.identify(request)
            if user is None:
                raise Unauthenticated()
            if not user.can(role, scope):
                raise Forbidden(f"this needs the {role} role and the {scope!r} scope.")
            if session_only and csrf is None:
                raise Forbidden("accounts and tokens are managed from a logged-in browser "
                                "session (or the CLI), not with an API token.")
            request.state.csrf = csrf  # for the page's forms
            if request.method not in ("GET", "HEAD") and csrf is not None:
                sent = request.headers.get("x-csrf-token")
                if sent is None and "form" in request.headers.get("content-type", ""):
                    sent = (await request.form()).get("csrf")
                if sent != csrf:
                    raise Forbidden("the form's CSRF token is missing or stale; reload it.")
            return user
        return check

    def audit(self, user: User, action: str, details: dict[str, Any], *,
              project: str | None = None):
        """The audit entry for a write by ``user``, to pass as the write's ``audit=`` hook
        (it commits in the write's transaction)."""
        return self.governance.entry(user.username, action, details, project=project)

    @staticmethod
    def json_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows for a JSON answer, their date-times to the second."""
        return [{k: v.isoformat(timespec="seconds") if isinstance(v, dt.datetime) else v
                 for k, v in row.items()} for row in rows]

    def page(self, request: Request, name: str, user: User | None, status_code: int = 200,
             **context: Any):
        csrf = getattr(request.state, "csrf", None)
        return self.templates.TemplateResponse(
            request, name, {"user": user, "csrf": csrf, **context}, status_code=status_code)

    def error(self, request: Request, status: int, message: str):
        """An error page for a browser, ``{"detail"}`` for the API."""
        if not request.url.path.startswith("/api/"):
            return self.templates.TemplateResponse(request, "error.html", {
                "status": status, "message": message, "user": None}, status_code=status)
        return JSONResponse({"detail": message}, status_code=status)
