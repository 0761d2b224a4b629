"""Migrations from the first schema forward; a newer schema is refused without damage;
concurrent writers both succeed or get a clear retryable error."""

import multiprocessing as mp

import pytest
from sqlalchemy import text

from conftest import postmortem_text
from failwell.db import engine as db
from failwell.errors import StoreBusyError, StoreError
from failwell.kb.postmortem import from_markdown
from failwell.kb.search import fulltext
from failwell.kb.store import KnowledgeBase


def test_upgrade_from_the_first_schema_keeps_and_indexes_old_rows(kb_url):
    engine = db.make_engine(kb_url)
    db.upgrade(engine, "0001")
    assert db.current_revision(engine) == "0001"
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        conn.execute(text(
            "INSERT INTO incidents (slug, title, severity, status, project, summary, "
            "search_text, document, markdown, source, created_at, updated_at) VALUES "
            "('old', 'Legacy loan model drifted', 'high', 'draft', '', '', "
            "'Legacy loan model drifted after the rate change', '{}', '', 'user', "
            "'2024-01-01', '2024-01-01')"))
        conn.execute(text("INSERT INTO scans (id, created_at, result) VALUES "
                          "(1, '2024-01-01', '{}')"))
        conn.execute(text("INSERT INTO scan_findings (scan_id, detector, failure_mode, "
                          "severity, title) VALUES (1, 'd', 'leakage', 'high', 't')"))
    engine.dispose()
    kb = KnowledgeBase.open(kb_url, seed=False)
    assert db.current_revision(kb.engine) == db.head_revision() == "0008"
    hits = fulltext(kb, "loan drift")
    assert [kb_id for kb_id, _ in hits] and kb.list()[0].id == "old"
    with kb.engine.connect() as conn:  # 0003 adds scans.project without rebuilding scans
        assert conn.execute(text("SELECT count(*) FROM scan_findings")).scalar() == 1
        assert conn.execute(text("SELECT project FROM scans")).scalar() is None
    kb.close()


def test_library_items_lose_the_seeding_date_they_were_closed_on(kb_url):
    engine = db.make_engine(kb_url)
    db.upgrade(engine, "0006")
    with engine.connect().execution_options(write=True) as conn, conn.begin():
        for n, source in ((1, "library"), (2, "user")):
            conn.execute(text(
                "INSERT INTO incidents (id, slug, title, severity, status, project, summary, "
                "search_text, document, markdown, source, created_at, updated_at) VALUES "
                f"({n}, 'i{n}', 't', 'high', 'draft', '', '', 't', '{{}}', '', '{source}', "
                "'2024-01-01', '2024-01-01')"))
            conn.execute(text(
                "INSERT INTO action_items (incident_id, position, description, owner, status, "
                f"closed_at) VALUES ({n}, 0, 'a', 'team', 'done', '2024-05-01')"))
    engine.dispose()
    kb = KnowledgeBase.open(kb_url, seed=False)
    with kb.engine.connect() as conn:
        dates = dict(conn.execute(text(
            "SELECT incident_id, closed_at FROM action_items ORDER BY incident_id")).all())
    kb.close()
    assert dates[1] is None and str(dates[2]).startswith("2024-05-01")


def test_a_database_from_a_newer_failwell_is_refused_untouched(kb_url):
    kb = KnowledgeBase.open(kb_url)
    with kb.engine.connect().execution_options(write=True) as conn, conn.begin():
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    kb.close()
    with pytest.raises(StoreError, match="newer than this failwell"):
        KnowledgeBase.open(kb_url)
    engine = db.make_engine(kb_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incidents")).scalar() == 10
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0099"
    engine.dispose()


def _writer(url: str, prefix: str, n: int, queue) -> None:
    kb = KnowledgeBase.open(url)
    for i in range(n):
        text_ = postmortem_text(f"{prefix}-{i}", title=f"{prefix} incident {i}", summary="x")
        kb.add(from_markdown(text_), markdown=text_)
    queue.put(prefix)


def test_two_processes_writing_at_once_both_succeed(kb_url):
    KnowledgeBase.open(kb_url).close()  # migrate once, as a deployment would
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(kb_url, p, 40, queue)) for p in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert sorted(queue.get(timeout=5) for _ in procs) == ["a", "b"]
    kb = KnowledgeBase.open(kb_url)
    assert kb.count() == 10 + 80
    kb.close()


def test_a_writer_that_waits_too_long_gets_a_retryable_error(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    KnowledgeBase.open(url).close()
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 0.2)
    holder = db.make_engine(url)
    kb = KnowledgeBase(db.make_engine(url))
    with holder.connect().execution_options(write=True) as conn, conn.begin():
        conn.execute(text("UPDATE kb_meta SET value = value"))  # holds the write lock
        pm = from_markdown(postmortem_text("late", title="Late", summary="x"))
        with pytest.raises(StoreBusyError, match="try again"):
            kb.add(pm)
    kb.add(pm)  # once the lock is gone, the same write succeeds
    assert kb.get("late").postmortem.title == "Late"


def test_the_fast_path_knows_the_newest_migration():
    """An up-to-date database opens without Alembic only if HEAD_REVISION is the real head."""
    from failwell.db import engine

    assert engine.head_revision() == engine.HEAD_REVISION
