"""What every route needs: the stores, who is asking, and how to answer (page or JSON).

Every route states the role (and, for API tokens, the scope) it needs through
``site.needs``; writes from a browser session must carry the session's CSRF token (form
field ``csrf`` or header ``X-CSRF-Token``). API tokens come as ``Authorization: Bearer
...`` and need no CSRF token, since no browser sends them on its own. The login form,
before there is a session, carries a signed double-submit token instead: a random nonce in
the ``fw_login`` cookie and, in the form, a MAC of it made with a key kept in the database.

Every response carries the security headers of :class:`SecurityHeaders` (a
Content-Security-Policy without inline script, no framing, no sniffing, same-origin
referrers).
"""

import base64
import datetime as dt
import hashlib
import re
import secrets
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates

from failwell.governance.store import Governance
from failwell.kb.store import KnowledgeBase
from failwell.web import accounts as _accounts
from failwell.web.accounts import Accounts, AuthError, User

SESSION_COOKIE = "fw_session"
LOGIN_COOKIE = "fw_login"  # the login form's CSRF nonce (before there is a session)
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
        _accounts._dummy_hash()  # made now, so the first unknown name costs no more
        self.accounts._secret()  # made now: `serve --workers N` makes it before the workers
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

    def needs(self, role: str, scope: str | None, *, session_only: bool = False):
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

    # -- the login form ----------------------------------------------------------------------

    def login_page(self, request: Request, status_code: int = 200, **context: Any):
        """The login form with its CSRF token, and the cookie the token is bound to (the
        browser's nonce is kept, so two open login tabs both work)."""
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if not re.fullmatch(r"[\w-]{32,64}", nonce):
            nonce = secrets.token_urlsafe(32)
        request.state.csrf = self.accounts.login_form_token(nonce)
        response = self.page(request, "login.html", None, status_code=status_code, **context)
        response.set_cookie(LOGIN_COOKIE, nonce, max_age=_accounts.LOGIN_FORM_TTL_S,
                            path="/login", httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")
        return response

    def login_form_ok(self, request: Request, sent: str | None) -> bool:
        """Whether a POST /login carries the token of a login form this site gave this
        browser (no token, another browser's, or an expired one: refused)."""
        return self.accounts.check_login_form_token(request.cookies.get(LOGIN_COOKIE), sent)

    @staticmethod
    def client_address(request: Request) -> str | None:
        """Who is asking, for throttling logins: the peer address, or the address a trusted
        reverse proxy forwarded (uvicorn's --forwarded-allow-ips, loopback by default)."""
        return request.client.host if request.client else None

    def error(self, request: Request, status: int, message: str):
        """An error page for a browser, ``{"detail"}`` for the API."""
        if not request.url.path.startswith("/api/"):
            return self.templates.TemplateResponse(request, "error.html", {
                "status": status, "message": message, "user": None}, status_code=status)
        return JSONResponse({"detail": message}, status_code=status)


# -- security headers ------------------------------------------------------------------------

def inline_script_hashes(folder: Path = TEMPLATES) -> list[str]:
    """CSP hashes of the templates' inline ``<script>`` blocks (the postmortem form's live
    check), so the policy allows exactly those and no other inline script. A block with
    template syntax in it would change per page and is refused here."""
    hashes = []
    for template in sorted(folder.glob("*.html")):
        for body in re.findall(r"<script>(.*?)</script>", template.read_text("utf-8"), re.S):
            if "{{" in body or "{%" in body:
                raise ValueError(f"{template.name}: an inline script with template syntax "
                                 "cannot be allowed by hash; move it to a file.")
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            hashes.append(f"'sha256-{digest}'")
    return hashes


def content_security_policy(scripts: list[str] = (), styles: list[str] = (),
                            images: list[str] = (), fonts: list[str] = ()) -> str:
    """The app's policy: everything from this site, no plugins, no framing, forms posting
    here only; inline scripts only by hash. Inline styles are allowed (the templates use
    style attributes, and the scan report inline CSS), which cannot run code."""
    def sources(*extra: str) -> str:
        return " ".join(("'self'", *extra))

    return "; ".join((
        "default-src 'self'", f"script-src {sources(*scripts)}",
        "style-src " + sources("'unsafe-inline'", *styles),
        f"img-src {sources('data:', *images)}", f"font-src {sources(*fonts)}",
        "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'",
        "frame-ancestors 'none'"))


class SecurityHeaders:
    """ASGI middleware: the security headers on every HTTP response (pages, API, errors,
    404s, and a plain 500 of its own for an unhandled error), unless the response set its
    own (the API docs set a wider Content-Security-Policy)."""

    def __init__(self, app, csp: str | None = None):
        self.app = app
        self.headers = [
            (b"content-security-policy",
             (csp or content_security_policy(inline_script_hashes())).encode()),
            (b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin")]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in self.headers if h[0] not in present]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if not started:  # the server's own 500 would go out without the headers
                await send_with_headers({"type": "http.response.start", "status": 500,
                                         "headers": [(b"content-type",
                                                      b"text/plain; charset=utf-8")]})
                await send_with_headers({"type": "http.response.body",
                                         "body": b"Internal Server Error"})
            raise


def add_docs_routes(app, site: Site, *, public: bool = False) -> None:
    """The OpenAPI schema and its two viewers (/openapi.json, /docs, /redoc): for anyone
    logged in (any role) or holding an API token (any scope), or for everyone with
    ``public``. The viewers' pages load Swagger UI and ReDoc from their CDN, so theirs is a
    wider Content-Security-Policy."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html

    Anyone = Annotated[User, Depends(site.needs("viewer", None))]
    if public:
        Anyone = Annotated[None, Depends(lambda: None)]
    cdn = "https://cdn.jsdelivr.net"

    def viewer_page(page: HTMLResponse) -> HTMLResponse:
        body = page.body.decode()
        scripts = [cdn, *(
            "'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'"
            for b in re.findall(r"<script>(.*?)</script>", body, re.S))]
        page.headers["content-security-policy"] = content_security_policy(
            scripts=scripts, styles=[cdn, "https://fonts.googleapis.com"],
            images=["https://fastapi.tiangolo.com", "https://cdn.redoc.ly"],
            fonts=["https://fonts.gstatic.com"]) + "; worker-src 'self' blob:"
        return page

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_: Anyone):
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def swagger(_: Anyone):
        return viewer_page(get_swagger_ui_html(openapi_url="/openapi.json",
                                               title=f"{app.title} API",
                                               oauth2_redirect_url=None))

    @app.get("/redoc", include_in_schema=False)
    def redoc(_: Anyone):
        return viewer_page(get_redoc_html(openapi_url="/openapi.json",
                                          title=f"{app.title} API"))
