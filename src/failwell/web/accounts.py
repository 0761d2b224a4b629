"""Local accounts for the web app: users with scrypt-hashed passwords and a role, server-side
sessions with a CSRF token each, and API tokens with scopes for CI.

Roles are ordered: a viewer reads; a contributor also writes incidents and uploads scans; a
reviewer also records gate decisions; an admin also manages accounts. Secrets (session ids,
API tokens) are stored only as SHA-256 hashes, so a copy of the database does not log
anyone in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update

from failwell.db import engine as db
from failwell.db.schema import api_tokens, login_failures, users, web_sessions
from failwell.errors import InputError, NotFoundError
from failwell.kb.store import AuditHook, KnowledgeBase

ROLES = ("viewer", "contributor", "reviewer", "admin")
SCOPES = ("read", "write", "scans", "review")
SESSION_HOURS = 12
MAX_FAILURES, FAILURE_WINDOW = 5, dt.timedelta(minutes=15)  # then wait out the window
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    scopes: tuple[str, ...] = SCOPES  # a session has every right its role has

    def can(self, role: str, scope: str | None = None) -> bool:
        return (ROLES.index(self.role) >= ROLES.index(role)
                and (scope is None or scope in self.scopes))


class AuthError(InputError):
    """Wrong credentials, or a right the user lacks (the web layer maps it to 401/403)."""


class TooManyAttempts(AuthError):
    """Too many failed logins for one username in the window (429)."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        _, salt, digest = stored.split("$")
    except ValueError:
        return False
    fresh = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), dklen=32, **_SCRYPT)
    return hmac.compare_digest(fresh.hex(), digest)


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Accounts:
    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self.engine = kb.engine

    def add_user(self, username: str, password: str, role: str = "viewer", *,
                 audit: AuditHook | None = None) -> User:
        if role not in ROLES:
            raise InputError(f"role {role!r}: use one of {', '.join(ROLES)}.")
        if not re.fullmatch(r"[\w.@-]{1,100}", username):
            raise InputError("a username is 1 to 100 letters, digits, or . _ - @.")
        if len(password) < 8:
            raise InputError("a password needs at least 8 characters.")
        with db.write_transaction(self.engine) as conn:
            if conn.execute(select(users.c.id).where(users.c.username == username)).first():
                raise InputError(f"the user {username!r} exists already.")
            uid = conn.execute(insert(users).values(
                username=username, password_hash=hash_password(password), role=role,
                disabled=False, created_at=db.utc_now())).inserted_primary_key[0]
            if audit:
                audit(conn)
        return User(uid, username, role)

    def users(self) -> list[User]:
        with self.engine.connect() as conn:
            return [User(r.id, r.username, r.role)
                    for r in conn.execute(select(users).order_by(users.c.username))]

    def user_rows(self) -> list[dict]:
        """Every account with its role and whether it is disabled (no password hashes)."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(users.c.username, users.c.role, users.c.disabled, users.c.created_at)
                .order_by(users.c.username))]

    def change_user(self, username: str, *, role: str | None = None,
                    disabled: bool | None = None, audit: AuditHook | None = None) -> None:
        """A new role, or (dis)abling: a disabled user's sessions and tokens stop working at
        once, since both are checked against the account on every request."""
        if role is not None and role not in ROLES:
            raise InputError(f"role {role!r}: use one of {', '.join(ROLES)}.")
        values = {k: v for k, v in (("role", role), ("disabled", disabled)) if v is not None}
        if not values:
            raise InputError("give a role, or whether the account is disabled.")
        with db.write_transaction(self.engine) as conn:
            done = conn.execute(update(users).where(users.c.username == username)
                                .values(**values))
            if not done.rowcount:
                raise NotFoundError(f"no user {username!r}.")
            if audit:
                audit(conn)

    def authenticate(self, username: str, password: str) -> User:
        """The user, or AuthError. After MAX_FAILURES failed attempts on one username within
        FAILURE_WINDOW, every attempt on it is refused (right password or not) until the
        window has passed: password guessing gets 5 tries per 15 minutes. Unknown usernames
        are counted the same way, so the answer does not tell which names exist."""
        now = db.utc_now()
        since = now - FAILURE_WINDOW
        with self.engine.connect() as conn:
            failures = conn.execute(select(login_failures.c.at).where(
                login_failures.c.username == username, login_failures.c.at > since)
                .order_by(login_failures.c.at)).scalars().all()
            row = conn.execute(select(users).where(users.c.username == username)).first()
        if len(failures) >= MAX_FAILURES:
            wait = failures[-MAX_FAILURES] + FAILURE_WINDOW - now
            raise TooManyAttempts(f"too many failed logins for {username!r}; try again in "
                                  f"{max(1, round(wait.total_seconds() / 60))} min.")
        if row is None or row.disabled or not check_password(password, row.password_hash):
            with db.write_transaction(self.engine) as conn:
                conn.execute(delete(login_failures).where(login_failures.c.at <= since))
                conn.execute(insert(login_failures).values(username=username[:100], at=now))
            raise AuthError("wrong username or password.")
        if failures:
            with db.write_transaction(self.engine) as conn:
                conn.execute(delete(login_failures).where(
                    login_failures.c.username == username))
        return User(row.id, row.username, row.role)

    # -- sessions --------------------------------------------------------------------------

    def open_session(self, user: User) -> tuple[str, str]:
        """(session id for the cookie, CSRF token for the forms)."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = db.utc_now()
        with db.write_transaction(self.engine) as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
            conn.execute(insert(web_sessions).values(
                id_hash=_sha(sid), user_id=user.id, csrf=csrf, created_at=now,
                expires_at=now + dt.timedelta(hours=SESSION_HOURS)))
        return sid, csrf

    def session(self, sid: str) -> tuple[User, str] | None:
        query = (select(users, web_sessions.c.csrf, web_sessions.c.expires_at)
                 .join(web_sessions, web_sessions.c.user_id == users.c.id)
                 .where(web_sessions.c.id_hash == _sha(sid)))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None or row.disabled or row.expires_at < db.utc_now():
            return None
        return User(row.id, row.username, row.role), row.csrf

    def close_session(self, sid: str) -> None:
        with db.write_transaction(self.engine) as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == _sha(sid)))

    # -- API tokens ------------------------------------------------------------------------

    def issue_token(self, username: str, name: str, scopes: list[str], *,
                    audit: AuditHook | None = None) -> str:
        """A new token, shown once; only its hash is kept."""
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            raise InputError(f"scopes must be some of {', '.join(SCOPES)}.")
        if not name.strip() or len(name) > 100:
            raise InputError("name the token (1 to 100 characters), e.g. 'ci-main'.")
        token = "fw_" + secrets.token_urlsafe(32)
        with db.write_transaction(self.engine) as conn:
            row = conn.execute(select(users.c.id).where(users.c.username == username)).first()
            if row is None:
                raise InputError(f"no user {username!r}.")
            conn.execute(insert(api_tokens).values(
                user_id=row.id, name=name, token_hash=_sha(token), scopes=sorted(scopes),
                created_at=db.utc_now()))
            if audit:
                audit(conn)
        return token

    def tokens(self, username: str) -> list[dict]:
        """A user's tokens, newest first: name, scopes and dates (never the secret)."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.scopes,
                       api_tokens.c.created_at, api_tokens.c.revoked_at)
                .join(users, users.c.id == api_tokens.c.user_id)
                .where(users.c.username == username).order_by(api_tokens.c.id.desc()))]

    def revoke_own_token(self, username: str, token_id: int, *,
                         audit: AuditHook | None = None) -> None:
        with db.write_transaction(self.engine) as conn:
            owner = select(users.c.id).where(users.c.username == username).scalar_subquery()
            done = conn.execute(update(api_tokens).where(
                api_tokens.c.id == token_id, api_tokens.c.user_id == owner,
                api_tokens.c.revoked_at.is_(None)).values(revoked_at=db.utc_now()))
            if not done.rowcount:
                raise NotFoundError(f"no active API token {token_id} of {username!r}.")
            if audit:
                audit(conn)

    def token_user(self, token: str) -> User | None:
        query = (select(users, api_tokens.c.scopes, api_tokens.c.revoked_at)
                 .join(api_tokens, api_tokens.c.user_id == users.c.id)
                 .where(api_tokens.c.token_hash == _sha(token)))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None or row.disabled or row.revoked_at is not None:
            return None
        return User(row.id, row.username, row.role, tuple(row.scopes))

    def revoke_token(self, name: str) -> None:
        with db.write_transaction(self.engine) as conn:
            done = conn.execute(update(api_tokens).where(api_tokens.c.name == name)
                                .values(revoked_at=db.utc_now()))
        if not done.rowcount:
            raise InputError(f"no API token named {name!r}.")
