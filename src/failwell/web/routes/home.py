"""Login, logout and the dashboard of learning figures."""

from typing import Annotated

from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from failwell.kb.stats import dashboard_stats
from failwell.web.accounts import AuthError, TooManyAttempts
from failwell.web.charts import stacked_bars
from failwell.web.site import LOGIN_COOKIE, SESSION_COOKIE, Site, local_path

Period = Annotated[str, Query(pattern="^(year|quarter|month)$")]


def add_routes(r: FastAPI, site: Site) -> None:
    """Register this area's routes on the app."""
    Viewer = site.Viewer

    @r.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/"):
        return site.login_page(request, next=local_path(next))

    @r.post("/login", include_in_schema=False)
    def login(request: Request, username: Annotated[str, Form()],
              password: Annotated[str, Form()], next: Annotated[str, Form()] = "/",
              csrf: Annotated[str, Form()] = ""):
        if not site.login_form_ok(request, csrf):  # login CSRF: refused before any check
            return site.login_page(request, 403, next=local_path(next), username=username,
                                   error="this login form expired or did not come from this "
                                         "site; log in again.")
        try:
            user = site.accounts.authenticate(username, password,
                                              address=site.client_address(request))
        except AuthError as exc:  # the form again, with the reason
            slow = isinstance(exc, TooManyAttempts)
            response = site.login_page(request, 429 if slow else 401, next=local_path(next),
                                       username=username, error=str(exc))
            if slow:
                response.headers["Retry-After"] = str(exc.retry_after)
            return response
        sid, _ = site.accounts.open_session(user)
        response = RedirectResponse(local_path(next), status_code=303)
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        response.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="lax",
                            secure=request.url.scheme == "https")
        return response

    @r.post("/logout", include_in_schema=False)
    def logout(request: Request, user: Viewer):
        site.accounts.close_session(request.cookies.get(SESSION_COOKIE, ""))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @r.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, user: Viewer):
        return RedirectResponse("/dashboard", status_code=303)

    @r.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    def dashboard(request: Request, user: Viewer, period: Period = "quarter"):
        stats = dashboard_stats(site.kb, period=period)
        return site.page(request, "dashboard.html", user, stats=stats, charts={
            key: stacked_bars(stats[key]) for key in ("by_pattern", "by_failure_mode")})

    @r.get("/api/stats")
    def api_stats(user: Viewer, period: Period = "year"):
        """Whether the organization is learning: incidents by pattern and failure mode per
        period, recurrence, action-item closure, time to lesson."""
        return dashboard_stats(site.kb, period=period)

