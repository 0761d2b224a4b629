"""``failwell serve``, ``failwell user`` and ``failwell token``: the web app and its accounts."""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer

from failwell.cli.common import DatabaseUrl, boundary, err, open_kb
from failwell.errors import InputError

user_app = typer.Typer(help="Local accounts for the web app.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for CI (e.g. scan uploads).", no_args_is_help=True)


def _accounts(db: str | None):
    from failwell.web.accounts import Accounts

    return Accounts(open_kb(db))


@boundary
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8080,
    workers: Annotated[int, typer.Option(
        min=1, help="Processes serving requests (for a team on PostgreSQL with cores to "
                    "spare; each keeps its own copy of the search vectors).")] = 1,
    public_docs: Annotated[bool, typer.Option(
        "--public-docs", help="Let anyone read the API schema (/docs, /redoc, "
                              "/openapi.json); by default it needs a login or a token.")
                           ] = False,
    db: DatabaseUrl = None,
) -> None:
    """Serve the web app (incidents, search, the JSON API at /api, its schema at /docs)."""
    from failwell.errors import require

    uvicorn = require("uvicorn", extra="web", purpose="The web app")
    from failwell.web.app import create_app

    # migrates the database once, and fails here on a bad --db
    app = create_app(db, public_docs=public_docs)
    if not app.state.accounts.users():
        err.print("No accounts yet: add one with 'failwell user add NAME --role admin'.")
    err.print(f"failwell on http://{host}:{port}"
              + (f" ({workers} worker processes)" if workers > 1 else ""))
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return
    app.state.kb.close()
    if db:
        os.environ["FAILWELL_DB"] = db  # read by failwell.web.asgi in each worker
    os.environ["FAILWELL_PUBLIC_DOCS"] = "1" if public_docs else "0"  # likewise
    uvicorn.run("failwell.web.asgi:app", host=host, port=port, workers=workers,
                log_level="warning")


@user_app.command("add")
@boundary
def user_add(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[str, typer.Option(help="viewer, contributor, reviewer or admin.")
                    ] = "viewer",
    db: DatabaseUrl = None,
) -> None:
    """Add an account; the password comes from FAILWELL_PASSWORD or a prompt."""
    password = os.environ.get("FAILWELL_PASSWORD") or getpass.getpass("Password: ")
    user = _accounts(db).add_user(username, password, role)
    err.print(f"added {user.username} ({user.role})")


@user_app.command("list")
@boundary
def user_list(db: DatabaseUrl = None) -> None:
    """The accounts and their roles."""
    for user in _accounts(db).users():
        typer.echo(f"{user.username}\t{user.role}")


@token_app.command("issue")
@boundary
def token_issue(
    username: Annotated[str, typer.Argument(help="Whose rights the token carries.")],
    name: Annotated[str, typer.Option(help="A name to revoke it by, e.g. ci-main.")],
    scope: Annotated[list[str], typer.Option(
        help="read, write, scans or review (repeatable).")] = ["read"],  # noqa: B006
    db: DatabaseUrl = None,
) -> None:
    """Issue an API token (printed once; only its hash is stored)."""
    if not name.strip():
        raise InputError("give the token a --name.")
    typer.echo(_accounts(db).issue_token(username, name, scope))


@token_app.command("list")
@boundary
def token_list(
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    db: DatabaseUrl = None,
) -> None:
    """API tokens by id (never their secrets): id, user, name, scopes, issued, revoked."""
    for t in _accounts(db).token_rows(user):
        revoked = t["revoked_at"].isoformat(timespec="seconds") if t["revoked_at"] else "active"
        typer.echo(f"{t['id']}\t{t['username']}\t{t['name']}\t{','.join(t['scopes'])}\t"
                   f"{t['created_at'].isoformat(timespec='seconds')}\t{revoked}")


@token_app.command("revoke")
@boundary
def token_revoke(
    token_id: Annotated[str | None, typer.Argument(
        metavar="[ID]", help="The token's id, from 'failwell token list'.")] = None,
    user: Annotated[str | None, typer.Option(help="With --name: the token's owner.")] = None,
    name: Annotated[str | None, typer.Option(help="With --user: the token's name.")] = None,
    db: DatabaseUrl = None,
) -> None:
    """Revoke one API token: by its id, or by its owner and name (--user alice --name ci)."""
    if token_id is not None and (user is not None or name is not None):
        raise InputError("give a token id, or --user and --name, not both.")
    if token_id is None and (user is None or name is None):
        raise InputError("give a token id (see 'failwell token list'), or --user and --name.")
    if token_id is not None and not token_id.isdigit():
        raise InputError(f"{token_id!r} is not a token id: give the number from 'failwell "
                         "token list', or revoke by --user and --name.")
    done = _accounts(db).revoke_token(
        token_id=int(token_id) if token_id is not None else None, username=user, name=name)
    err.print(f"revoked token {done['id']} ({done['username']}'s {done['name']!r})")
