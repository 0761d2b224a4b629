"""Where the knowledge base lives and how to reach it: engine, pragmas, migrations.

``FAILWELL_DB`` names the database: a file path (SQLite) or a SQLAlchemy URL such as
``postgresql+psycopg://user@host/failwell``. The default is
``$XDG_DATA_HOME/failwell/kb.sqlite`` (``~/.local/share/failwell/kb.sqlite``). SQLite runs in
WAL mode with a busy timeout, and write transactions start with ``BEGIN IMMEDIATE`` so two
writers queue instead of deadlocking; a writer that waits too long gets
:class:`~failwell.errors.StoreBusyError`, which is safe to retry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import InterfaceError, OperationalError

from failwell.errors import StoreBusyError, StoreError

BUSY_TIMEOUT_S = 15.0
# The newest migration: a database already there opens without importing Alembic (a quarter
# of a second of every command). tests/kb/test_kb_migrations.py keeps it equal to the head.
HEAD_REVISION = "0008"


def utc_now() -> dt.datetime:
    """Timestamps for stored rows: UTC, naive (portable across SQLite and PostgreSQL), to
    the second."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def resolve_url(value: str | None = None) -> str:
    """A SQLAlchemy URL from a path or URL, else ``FAILWELL_DB``, else the per-user file."""
    value = (value or os.environ.get("FAILWELL_DB", "")).strip()
    if not value:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
        value = str(base / "failwell" / "kb.sqlite")
    if "://" not in value:
        scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]+):", value)
        if scheme:  # "sqlite:/x.sqlite", "postgresql:host/db": a URL with a typo, not a file
            raise StoreError(f"the database {value!r} looks like a URL but does not parse; "
                             f"write {scheme.group(1)}:///path/to/file.sqlite or "
                             "postgresql+psycopg://user@host/db, or give a plain file path.")
        return f"sqlite:///{Path(value).expanduser().absolute()}"
    if value.startswith("postgresql://"):
        return "postgresql+psycopg://" + value.removeprefix("postgresql://")
    return value


def make_engine(url: str | None = None) -> Engine:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    url = resolve_url(url)
    try:
        return _make_engine(url)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreError(f"cannot use the database {url!r}: {exc}. Give a file path or a URL "
                         "such as postgresql+psycopg://user@host/failwell.") from None


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
        _sqlite_pragmas(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get("write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator:
    """One transaction for one logical write; lock waits become a retryable error."""
    try:
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            yield conn
    except OperationalError as exc:
        if "locked" in str(exc.orig).lower() or "busy" in str(exc.orig).lower():
            raise StoreBusyError(
                f"the knowledge base is busy (another process held the write lock for over "
                f"{BUSY_TIMEOUT_S:.0f} s); nothing was written, try again") from None
        raise


def _alembic_config(conn):
    from alembic.config import Config

    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("failwell.db").joinpath("migrations")))
    config.attributes["connection"] = conn
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; refuse a database written by a newer failwell."""
    try:
        found = current_revision(engine)
    except (OperationalError, InterfaceError) as exc:
        raise StoreError(f"cannot open the knowledge base at {engine.url!r}: "
                         f"{exc.orig}") from None
    if revision == "head" and found == HEAD_REVISION:
        return
    from alembic import command
    from alembic.script import ScriptDirectory

    known = {s.revision for s in ScriptDirectory.from_config(
        _alembic_config(None)).walk_revisions()}
    if found is not None and found not in known:
        raise StoreError(
            f"the knowledge base at {engine.url!r} has schema version {found!r}, newer than "
            f"this failwell knows (up to {head_revision()!r}); upgrade failwell to use it. "
            "Nothing was changed.")
    if found == revision or (revision == "head" and found == head_revision()):
        return
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        command.upgrade(_alembic_config(conn), revision)
