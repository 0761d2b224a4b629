"""Local accounts for the web app: users with scrypt-hashed passwords and a role, server-side
sessions with a CSRF token each, and API tokens with scopes for CI.

Roles are ordered: a viewer reads; a contributor also writes incidents and uploads scans; a
reviewer also records gate decisions; an admin also manages accounts. Secrets (session ids,
API tokens) are stored only as SHA-256 hashes, so a copy of the database does not log
anyone in.

Logging in does the same work whoever asks: an unknown or disabled account is checked
against a password hash like any other (a dummy one for unknown names), so the time taken
does not tell which accounts exist. Password guessing is slowed, not locked out: see
:meth:`Accounts.authenticate`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, insert, or_, select, text, update

from failwell.db import engine as db
from failwell.db.schema import api_tokens, login_failures, users, web_sessions
from failwell.errors import InputError, NotFoundError
from failwell.kb.store import AuditHook, KnowledgeBase

ROLES = ("viewer", "contributor", "reviewer", "admin")
SCOPES = ("read", "write", "scans", "review")
SESSION_HOURS = 12
# Throttling failed logins (exponential backoff, never a lock): failures let through before
# slowing down, per username and per client address; the longest wait; how long a failure
# is remembered.
FREE_FAILURES = {"user": 5, "addr": 20}
BACKOFF_CAP = dt.timedelta(minutes=5)
FAILURE_MEMORY = dt.timedelta(hours=1)
LOGIN_FORM_TTL_S = 2 * 3600  # how long a login form's CSRF token is good for
LOGIN_SECRET = "web_login_secret"  # the kb setting holding the key that signs those tokens
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
    """Too many recent failed logins for this username or from this address: the next try
    has to wait ``retry_after`` seconds (429 with Retry-After)."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


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


@functools.cache
def _dummy_hash() -> str:
    """What an unknown username's password is checked against, so that answer costs one
    scrypt too."""
    return hash_password(secrets.token_urlsafe(16))


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _throttle_key(kind: str, value: str) -> str:
    """The row key in ``login_failures``: ``user:NAME`` or ``addr:IP`` (a hash when too long
    for the column, so any name typed at the form fits)."""
    key = f"{kind}:{value}"
    return key if len(key) <= 100 else f"{kind}#{_sha(value)}"


def address_group(address: str) -> str:
    """The unit an address is throttled by: the address for IPv4, its /64 network for IPv6
    (one host commonly holds a whole /64, so rotating within it buys no guesses)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
        ip = ip.ipv4_mapped
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)


def backoff_wait(failures: list[dt.datetime], free: int, now: dt.datetime) -> float:
    """Seconds until the next attempt is allowed after these remembered failures: none for
    the first ``free``; then 1 s after the next failure, doubling with each further one, up
    to BACKOFF_CAP, counted from the latest failure."""
    extra = len(failures) - free
    if extra <= 0:
        return 0.0
    delay = min(2.0 ** min(extra - 1, 30), BACKOFF_CAP.total_seconds())
    return max(0.0, (max(failures) - now).total_seconds() + delay)


class Accounts:
    def __init__(self, kb: KnowledgeBase, *, now: Callable[[], dt.datetime] | None = None):
        self.kb = kb
        self.engine = kb.engine
        self.now = now or db.utc_now  # the clock of login throttling (tests turn it)

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

    def authenticate(self, username: str, password: str, address: str | None = None) -> User:
        """The user, or AuthError.

        Every attempt does the same work: one scrypt check (against a dummy hash for an
        unknown name) and the same reads and writes, so neither the answer nor its timing
        tells which accounts exist or are disabled.

        Guessing is slowed with exponential backoff, counted per username and per client
        ``address``: the first FREE_FAILURES failures (remembered for FAILURE_MEMORY) are
        free; after that each failure makes the next attempt wait 1, 2, 4 ... seconds, up to
        BACKOFF_CAP. An attempt during the wait is refused with TooManyAttempts (no password
        check); once the wait is over the right password works again. The trade-off: nobody
        can lock an account for the lockout's length any more, but an attacker who keeps
        guessing one name keeps its owner waiting up to BACKOFF_CAP per try (and racing the
        attacker's next guess when the wait ends), while a botnet gets about 12 guesses an
        hour per name. A success clears the name's failures (not the address's: logging in
        to one's own account buys no guesses). An attempt counts as a failure from the
        moment it starts, so parallel guesses cannot slip through together.
        """
        now = self.now()
        keys = {_throttle_key("user", username): FREE_FAILURES["user"]}
        if address:
            keys[_throttle_key("addr", address_group(address))] = FREE_FAILURES["addr"]
        with db.write_transaction(self.engine) as conn:
            if conn.dialect.name == "postgresql":  # one throttle check at a time, as SQLite
                conn.execute(text("SELECT pg_advisory_xact_lock(7466775401)"))
            conn.execute(delete(login_failures).where(login_failures.c.at <= now - FAILURE_MEMORY))
            seen = conn.execute(select(login_failures.c.username, login_failures.c.at).where(
                login_failures.c.username.in_(list(keys)))).all()
            wait = max(backoff_wait([at for k, at in seen if k == key], free, now)
                       for key, free in keys.items())
            if not wait:
                pending = [conn.execute(insert(login_failures).values(username=key, at=now))
                           .inserted_primary_key[0] for key in keys]
            row = conn.execute(select(users).where(users.c.username == username)).first()
        if wait:
            seconds = math.ceil(wait)
            raise TooManyAttempts(f"too many failed logins; try again in {seconds} s.",
                                  retry_after=seconds)
        matches = check_password(password, row.password_hash if row is not None
                                 else _dummy_hash())
        if not matches or row is None or row.disabled:
            raise AuthError("wrong username or password.")  # the pending failure stays
        with db.write_transaction(self.engine) as conn:
            conn.execute(delete(login_failures).where(or_(
                login_failures.c.id.in_(pending),
                login_failures.c.username == _throttle_key("user", username))))
        return User(row.id, row.username, row.role)

    # -- the login form's CSRF token (before there is a session) --------------------------

    def _secret(self) -> bytes:
        """A random key kept in the database, so every worker process shares it; made on
        first use. It signs the login form's CSRF token. Read on each use (a primary-key
        read): should two processes make it at once, the last write wins everywhere."""
        value = self.kb.meta(LOGIN_SECRET)
        if value is None:
            self.kb.set_meta(LOGIN_SECRET, secrets.token_hex(32))
            value = self.kb.meta(LOGIN_SECRET)
        return bytes.fromhex(value)

    def login_form_token(self, nonce: str, issued: int | None = None) -> str:
        """The login form's CSRF token for the browser holding ``nonce`` in its cookie (a
        signed double-submit token): when it was issued, and a MAC of both."""
        issued = int(time.time()) if issued is None else issued
        mac = hmac.new(self._secret(), f"login:{nonce}:{issued}".encode(),
                       "sha256").hexdigest()
        return f"{issued}.{mac}"

    def check_login_form_token(self, nonce: str | None, token: str | None) -> bool:
        """Whether ``token`` was issued for this cookie's ``nonce`` by this site within
        LOGIN_FORM_TTL_S."""
        issued, _, _ = (token or "").partition(".")
        if not nonce or not issued.isdigit():
            return False
        if not 0 <= time.time() - int(issued) <= LOGIN_FORM_TTL_S:
            return False
        return hmac.compare_digest(self.login_form_token(nonce, int(issued)), token or "")

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

    def token_rows(self, username: str | None = None) -> list[dict]:
        """Every API token (or one user's), by id: owner, name, scopes and dates, never the
        secret."""
        query = (select(api_tokens.c.id, users.c.username, api_tokens.c.name,
                        api_tokens.c.scopes, api_tokens.c.created_at, api_tokens.c.revoked_at)
                 .join(users, users.c.id == api_tokens.c.user_id).order_by(api_tokens.c.id))
        with self.engine.connect() as conn:
            if username is not None:
                if conn.execute(select(users.c.id).where(users.c.username == username)
                                ).first() is None:
                    raise InputError(f"no user {username!r}.")
                query = query.where(users.c.username == username)
            return [dict(r._mapping) for r in conn.execute(query)]

    def revoke_token(self, *, token_id: int | None = None, username: str | None = None,
                     name: str | None = None, audit: AuditHook | None = None) -> dict:
        """Revoke one active token: by its id, or by its owner and name (refused when that
        owner has several active tokens of that name). Never every user's tokens of a name.
        Returns the revoked token's id, owner and name."""
        by_name = username is not None or name is not None
        if (token_id is not None) == by_name or (by_name and (username is None or name is None)):
            raise InputError("give a token id, or a user and a token name (not both).")
        query = (select(api_tokens.c.id, users.c.username, api_tokens.c.name)
                 .join(users, users.c.id == api_tokens.c.user_id)
                 .where(api_tokens.c.revoked_at.is_(None)))
        if token_id is not None:
            query = query.where(api_tokens.c.id == token_id)
        else:
            query = query.where(users.c.username == username, api_tokens.c.name == name)
        with db.write_transaction(self.engine) as conn:
            found = [dict(r._mapping) for r in conn.execute(query)]
            if not found:
                what = (f"{token_id}" if token_id is not None
                        else f"named {name!r} of {username!r}")
                raise NotFoundError(f"no active API token {what} (see 'failwell token list').")
            if len(found) > 1:
                ids = ", ".join(str(t["id"]) for t in found)
                raise InputError(f"{username!r} has {len(found)} active tokens named {name!r} "
                                 f"(ids {ids}); revoke one by its id.")
            conn.execute(update(api_tokens).where(api_tokens.c.id == found[0]["id"])
                         .values(revoked_at=db.utc_now()))
            if audit:
                audit(conn)
        return found[0]
