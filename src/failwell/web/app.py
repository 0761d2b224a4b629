"""The web app: thin FastAPI routes over the KnowledgeBase and Governance APIs, pages
rendered with Jinja. ``site.py`` holds what every route needs (who is asking, the role a
route needs, pages and errors); ``routes/`` has one module per area."""

from failwell.errors import FailwellError, NotFoundError, PublishBlockedError, require
from failwell.web.accounts import AuthError


def create_app(db_url: str | None = None):
    fastapi = require("fastapi", extra="web", purpose="The web app")
    from fastapi import Request
    from fastapi.exception_handlers import request_validation_exception_handler
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, RedirectResponse

    from failwell.web.routes import account, home, incidents, lessons, projects, scans
    from failwell.web.site import Forbidden, Site, Unauthenticated

    site = Site(db_url)
    app = fastapi.FastAPI(title="failwell", version="1",
                          description="Blameless incident knowledge base and review board.")
    app.state.site, app.state.kb, app.state.accounts = site, site.kb, site.accounts

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(request: Request, exc: Exception):
        if not request.url.path.startswith("/api/"):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return JSONResponse({"detail": "log in or send an API token."}, status_code=401)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        """The API keeps FastAPI's 422 body; a page says what was wrong in words."""
        if request.url.path.startswith("/api/"):
            return await request_validation_exception_handler(request, exc)
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}"
                             for e in exc.errors())
        return site.error(request, 422, f"the request was not valid ({problems}).")

    for kind, status in ((Forbidden, 403), (AuthError, 401), (NotFoundError, 404),
                         (PublishBlockedError, 409), (FailwellError, 400)):
        app.add_exception_handler(
            kind, lambda request, exc, status=status: site.error(request, status, str(exc)))

    for area in (home, incidents, lessons, scans, projects, account):
        area.add_routes(app, site)
    return app
