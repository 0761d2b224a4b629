"""Accounts in the browser: your API tokens (issued once, revoked any time) and, for
admins, the users and their roles. Sessions only: an API token cannot manage tokens."""

from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse

from failwell.errors import FailwellError
from failwell.limits import MAX_NAME_CHARS
from failwell.web.accounts import ROLES, SCOPES, User
from failwell.web.bodies import DbId, TokenBody, UserBody, UserChangeBody
from failwell.web.site import Site


def add_routes(r: FastAPI, site: Site) -> None:
    """Register this area's routes on the app."""
    accounts, Member, Admin, audit = site.accounts, site.Member, site.Admin, site.audit

    def issue(user: User, name: str, scopes: list[str]) -> str:
        return accounts.issue_token(user.username, name.strip(), scopes, audit=audit(
            user, "token.issue", {"name": name.strip(), "scopes": sorted(scopes)}))

    def revoke(user: User, token_id: int) -> None:
        accounts.revoke_own_token(user.username, token_id,
                                  audit=audit(user, "token.revoke", {"id": token_id}))

    def add_user(admin: User, username: str, password: str, role: str) -> None:
        accounts.add_user(username, password, role, audit=audit(
            admin, "user.add", {"username": username, "role": role}))

    def change_user(admin: User, username: str, role: str | None, disabled: bool | None):
        if username == admin.username and (disabled or (role and role != "admin")):
            raise FailwellError("you cannot demote or disable your own account; ask another "
                                "admin.")
        accounts.change_user(username, role=role, disabled=disabled, audit=audit(
            admin, "user.change", {"username": username, "role": role, "disabled": disabled}))

    # -- pages -----------------------------------------------------------------------------

    def account_page(request: Request, user: User, status_code: int = 200, **context: Any):
        return site.page(request, "account.html", user, tokens=accounts.tokens(user.username),
                         scopes=SCOPES, status_code=status_code, **context)

    @r.get("/account", response_class=HTMLResponse, include_in_schema=False)
    def account(request: Request, user: Member):
        return account_page(request, user)

    @r.post("/account/tokens", response_class=HTMLResponse, include_in_schema=False)
    async def issue_form(request: Request, user: Member):
        form = await request.form()
        try:
            token = issue(user, str(form.get("name", "")), [str(s) for s in
                                                             form.getlist("scope")])
        except FailwellError as exc:
            return account_page(request, user, 400, error=str(exc))
        return account_page(request, user, new_token=token)  # shown this once

    @r.post("/account/tokens/{token_id}/revoke", include_in_schema=False)
    def revoke_form(request: Request, token_id: DbId, user: Member):
        revoke(user, token_id)
        return RedirectResponse("/account", status_code=303)

    def users_page(request: Request, user: User, status_code: int = 200, **context: Any):
        return site.page(request, "users.html", user, users=accounts.user_rows(), roles=ROLES,
                         status_code=status_code, **context)

    @r.get("/admin/users", response_class=HTMLResponse, include_in_schema=False)
    def user_list(request: Request, user: Admin):
        return users_page(request, user)

    @r.post("/admin/users", response_class=HTMLResponse, include_in_schema=False)
    def add_user_form(request: Request, user: Admin, username: Annotated[str, Form()],
                      password: Annotated[str, Form()], role: Annotated[str, Form()]):
        try:
            add_user(user, username.strip(), password, role)
        except FailwellError as exc:
            return users_page(request, user, 400, error=str(exc))
        return RedirectResponse("/admin/users", status_code=303)

    @r.post("/admin/users/{username}", response_class=HTMLResponse, include_in_schema=False)
    def change_user_form(request: Request, username: str, user: Admin,
                         role: Annotated[str, Form()] = "",
                         disabled: Annotated[str, Form()] = ""):
        try:
            change_user(user, username, role or None,
                        {"yes": True, "no": False}.get(disabled))
        except FailwellError as exc:
            return users_page(request, user, 400, error=str(exc))
        return RedirectResponse("/admin/users", status_code=303)

    # -- JSON API (a session with its CSRF header, not a token) --------------------------

    @r.get("/api/account/tokens")
    def api_tokens(user: Member):
        """Your API tokens: name, scopes, when issued and revoked (never the secret)."""
        return {"tokens": site.json_rows(accounts.tokens(user.username))}

    @r.post("/api/account/tokens", status_code=201)
    def api_issue(body: TokenBody, user: Member):
        """Issue a token for yourself: ``{"name": "ci-main", "scopes": ["scans"]}``. The
        secret is in this answer only."""
        return {"name": body.name.strip(), "token": issue(user, body.name, body.scopes)}

    @r.post("/api/account/tokens/{token_id}/revoke")
    def api_revoke(token_id: DbId, user: Member):
        """Revoke one of your tokens; it stops working at once."""
        revoke(user, token_id)
        return {"revoked": token_id}

    @r.get("/api/users")
    def api_users(user: Admin):
        """Every account, its role and whether it is disabled (admins)."""
        return {"users": site.json_rows(accounts.user_rows())}

    @r.post("/api/users", status_code=201)
    def api_add_user(body: UserBody, user: Admin):
        """Add an account (admins): ``{"username", "password", "role"}``."""
        add_user(user, body.username.strip(), body.password, body.role)
        return {"username": body.username.strip()}

    @r.post("/api/users/{username}")
    def api_change_user(username: Annotated[str, PathParam(max_length=MAX_NAME_CHARS)],
                        body: UserChangeBody, user: Admin):
        """Change an account's role or disable it (admins): ``{"role"}``, ``{"disabled"}``."""
        change_user(user, username, body.role, body.disabled)
        return {"username": username}
