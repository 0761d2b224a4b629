"""The web app: thin FastAPI routes over the KnowledgeBase and Governance APIs, pages
rendered with Jinja. ``site.py`` holds what every route needs (who is asking, the role a
route needs, pages and errors); ``routes/`` has one module per area."""

from failwell.errors import FailwellError, NotFoundError, PublishBlockedError, require
from failwell.limits import MAX_BODY_BYTES
from failwell.web.accounts import AuthError


def create_app(db_url: str | None = None, *, public_docs: bool = False,
               max_body_bytes: int = MAX_BODY_BYTES):
    """The app on the database at ``db_url``. The API schema and its viewers (/openapi.json,
    /docs, /redoc) need a login or an API token unless ``public_docs``. A request body over
    ``max_body_bytes`` gets 413 (the other limits: :mod:`failwell.limits`)."""
    fastapi = require("fastapi", extra="web", purpose="The web app")
    from fastapi import Request
    from fastapi.exception_handlers import request_validation_exception_handler
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, RedirectResponse

    from failwell.web.routes import account, home, incidents, lessons, projects, scans
    from failwell.web.site import (
        Forbidden,
        SecurityHeaders,
        Site,
        Unauthenticated,
        add_docs_routes,
    )

    site = Site(db_url)
    app = fastapi.FastAPI(title="failwell", version="1",
                          description="Blameless incident knowledge base and review board.",
                          docs_url=None, redoc_url=None, openapi_url=None)  # see below
    app.state.site, app.state.kb, app.state.accounts = site, site.kb, site.accounts

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(request: Request, exc: Exception):
        if not request.url.path.startswith("/api/") and request.url.path != "/openapi.json":
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return JSONResponse({"detail": "log in or send an API token."}, status_code=401)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        """The API keeps FastAPI's 422 body, less the refused input (it may be megabytes, or
        not valid Unicode); a page says what was wrong in words."""
        if request.url.path.startswith("/api/"):
            return await request_validation_exception_handler(request, RequestValidationError(
                [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]))
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}"
                             for e in exc.errors())
        return site.error(request, 422, f"the request was not valid ({problems}).")

    for kind, status in ((Forbidden, 403), (AuthError, 401), (NotFoundError, 404),
                         (PublishBlockedError, 409), (FailwellError, 400)):
        app.add_exception_handler(
            kind, lambda request, exc, status=status: site.error(request, status, str(exc)))

    for area in (home, incidents, lessons, scans, projects, account):
        area.add_routes(app, site)
    add_docs_routes(app, site, public=public_docs)
    from failwell.web.bodies import BodySizeLimit

    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)  # 413 before any body is read
    app.add_middleware(SecurityHeaders)  # last, so outermost: its headers go on every answer
    return app
