"""Login, logout and the dashboard of learning figures."""

from typing import Annotated

from fastapi import FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from failwell.kb.stats import dashboard_stats
from failwell.web.site import SESSION_COOKIE, Site, local_path


def add_routes(r: FastAPI, site: Site) -> None:
    """Register this area's routes on the app."""
    Viewer = site.Viewer

    @r.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/"):
        return site.page(request, "login.html", None, next=local_path(next))

    @r.post("/login", include_in_schema=False)
    def login(request: Request, username: Annotated[str, Form()],
              password: Annotated[str, Form()], next: Annotated[str, Form()] = "/"):
        user = site.accounts.authenticate(username, password)
        sid, _ = site.accounts.open_session(user)
        response = RedirectResponse(local_path(next), status_code=303)
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
    def dashboard(request: Request, user: Viewer):
        stats = dashboard_stats(site.kb)
        return site.page(request, "dashboard.html", user, stats=stats,
                         periods=_periods(stats), charts=_charts(stats))

    @r.get("/api/stats")
    def api_stats(user: Viewer, period: Annotated[str, Query(
            pattern="^(year|quarter|month)$")] = "year"):
        """Whether the organization is learning: incidents by pattern and failure mode per
        period, recurrence, action-item closure, time to lesson."""
        return dashboard_stats(site.kb, period=period)



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
