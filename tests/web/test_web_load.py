"""A bounded load test on loopback: 20 clients create and edit incidents at once for a few
seconds, and the server is restarted half-way. No write that was acknowledged may be lost,
nothing may answer 5xx, and every stored write has its audit entry.

``make test-load`` runs it for 30 s (FAILWELL_LOAD_SECONDS) on SQLite and PostgreSQL."""

import os
import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from conftest import LoopbackServer  # noqa: E402
from failwell.governance.store import Governance  # noqa: E402
from failwell.kb.store import KnowledgeBase  # noqa: E402
from failwell.web.app import create_app  # noqa: E402

CLIENTS, SECONDS = 20, float(os.environ.get("FAILWELL_LOAD_SECONDS", "8"))
DOC = """---
id: {id}
title: "{title}"
severity: low
status: draft
project: load
---

## Summary

Written by client {client}.
"""


class Server(LoopbackServer):
    """The app and its server together, so a restart can close the old knowledge base."""

    def __init__(self, url: str, port: int | None = None):
        self.app = create_app(url)
        super().__init__(self.app, port)

    def stop(self) -> None:
        super().stop()
        self.app.state.kb.close()


def test_concurrent_writers_and_a_restart_lose_nothing(kb_url):
    server = Server(kb_url)
    port = server.port
    server.app.state.accounts.add_user("load", "correct horse battery", "contributor")
    token = server.app.state.accounts.issue_token("load", "load", ["read", "write"])
    base = server.url
    acknowledged: dict[str, str] = {}  # id -> title the server confirmed last
    statuses: list[int] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + SECONDS

    def client(k: int) -> None:
        with httpx.Client(base_url=base, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            n = 0
            while time.monotonic() < stop_at:
                slug = f"load-{k}-{n}"
                try:
                    made = http.post("/api/incidents", json={"markdown": DOC.format(
                        id=slug, title=f"first {slug}", client=k)})
                    with lock:
                        statuses.append(made.status_code)
                        if made.status_code == 201:
                            acknowledged[slug] = f"first {slug}"
                    if made.status_code == 201:
                        edited = http.put(f"/api/incidents/{slug}", json={
                            "markdown": DOC.format(id=slug, title=f"second {slug}",
                                                   client=k)})
                        with lock:
                            statuses.append(edited.status_code)
                            if edited.status_code == 200:
                                acknowledged[slug] = f"second {slug}"
                except httpx.TransportError:
                    time.sleep(0.05)  # the server is restarting; try the next one
                n += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(SECONDS / 2)
    server.stop()  # a restart mid-load
    server = Server(kb_url, port)
    for t in threads:
        t.join()
    server.stop()

    assert statuses and not [s for s in statuses if s >= 500]
    assert set(statuses) <= {200, 201}, sorted(set(statuses))
    kb = KnowledgeBase.open(kb_url)
    stored = {s.id: s.title for s in kb.list(limit=None) if s.id.startswith("load-")}
    trail = [e for e in Governance(kb).audit() if e["action"].startswith("incident.")]
    kb.close()
    edits = sum(title.startswith("second") for title in stored.values())
    print(f"\n{kb.dialect}: {len(statuses)} writes answered in {SECONDS:.0f} s by {CLIENTS} "
          f"clients, {len(stored)} incidents stored, {edits} edited")
    # the audit entry commits with its write: one entry per stored incident and edit
    assert {e["details"]["id"] for e in trail if e["action"] == "incident.add"} == set(stored)
    assert {e["actor"] for e in trail} == {"load"}
    missing = [slug for slug in acknowledged if slug not in stored]
    assert not missing, missing[:5]
    stale = [slug for slug, title in acknowledged.items() if stored[slug] != title]
    assert not stale, stale[:5]
    assert len(acknowledged) >= 2 * CLIENTS  # the load was real
