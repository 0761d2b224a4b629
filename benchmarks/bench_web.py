"""Web pages under load at 100,000 incidents: dashboard and search p95 on PostgreSQL.

    FAILWELL_TEST_PG=$(bash scripts/test-postgres.sh) python benchmarks/bench_web.py

The knowledge base is the genai-incidents corpus plus synthetic incidents, built as in
bench_kb.py (and cached there). `failwell serve` runs in its own process on loopback; a
load generator (httpx, async, in this process) keeps 1, 2 and 4 requests in flight
(BENCH_CONCURRENCY) for BENCH_SECONDS per page and reports p50/p95 of the full HTTP round
trip. Target: p95 under 150 ms. On a 2-core machine the server, PostgreSQL and the load
generator share the cores, so past 2 in flight requests queue for a core.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import bindparam, create_engine, func, insert, select, text, update

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kb import QUERIES, TARGET_ROWS, corpus_db, grow_to

from failwell.db.schema import action_items, incident_tags, incidents
from failwell.kb.store import KnowledgeBase
from failwell.web.accounts import Accounts

LEVELS = [int(n) for n in os.environ.get("BENCH_CONCURRENCY", "1,2,4").split(",")]
SECONDS, PASSWORD = int(os.environ.get("BENCH_SECONDS", "10")), "benchmark-password"


def database() -> str:
    admin = os.environ.get("FAILWELL_TEST_PG")
    if not admin:
        sys.exit("set FAILWELL_TEST_PG (bash scripts/test-postgres.sh prints it)")
    url = admin.rsplit("/", 1)[0] + "/fw_web_bench"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = "
                                   "'fw_web_bench'")).first()
        if not exists:
            conn.execute(text("CREATE DATABASE fw_web_bench"))
    engine.dispose()
    kb = KnowledgeBase.open(url)
    if kb.count() < TARGET_ROWS:
        grow_to(kb, KnowledgeBase.open(corpus_db()), TARGET_ROWS)
        with kb.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("SELECT setval('incidents_id_seq', "
                              "(SELECT max(id) FROM incidents))"))
            conn.execute(text("VACUUM ANALYZE"))
    own_incidents(kb)
    accounts = Accounts(kb)
    if not any(u.username == "bench" for u in accounts.users()):
        accounts.add_user("bench", PASSWORD, "viewer")
    print(f"{kb.count()} incidents in {url.rsplit('@', 1)[-1]}")
    kb.close()
    return url


def own_incidents(kb: KnowledgeBase) -> None:
    """Make the synthetic incidents look like an organization's own (once): the failure
    modes and patterns of the corpus incident each was built from, a publication date, and
    two action items, one closed, so the dashboard aggregates over all 100,000."""
    with kb.engine.begin() as conn:
        if conn.execute(select(func.count()).select_from(action_items)).scalar_one():
            return
        print("  tagging synthetic incidents, adding action items ...", flush=True)
        tagged = conn.execute(select(incident_tags.c.incident_id, incident_tags.c.kind,
                                     incident_tags.c.tag)).all()
        by_incident: dict[int, list] = {}
        for incident_id, kind, tag in tagged:
            by_incident.setdefault(incident_id, []).append((kind, tag))
        donors = list(by_incident.values())
        rows = conn.execute(select(incidents.c.id, incidents.c.occurred).where(
            incidents.c.source == "synthetic")).all()
        rng = np.random.default_rng(0)
        tags, actions, published = [], [], []
        for k, (incident_id, occurred) in enumerate(rows):
            tags += [{"incident_id": incident_id, "kind": kind, "tag": tag}
                     for kind, tag in donors[k % len(donors)]]
            for position, closed in enumerate((True, False)):
                days = int(rng.integers(5, 200))
                actions.append({
                    "incident_id": incident_id, "position": position, "owner": "ml-platform",
                    "description": "Add a check to the release gate",
                    "status": "done" if closed else "open",
                    "closed_at": occurred + dt.timedelta(days=days) if closed else None,
                    "due": occurred + dt.timedelta(days=days + 30)})
            published.append({"pid": incident_id, "at": dt.datetime.combine(
                occurred + dt.timedelta(days=int(rng.integers(3, 120))), dt.time())})
        for table, values in ((incident_tags, tags), (action_items, actions)):
            for start in range(0, len(values), 20_000):
                conn.execute(insert(table), values[start:start + 20_000])
        conn.execute(update(incidents).where(incidents.c.id == bindparam("pid")).values(
            status="published", published_at=bindparam("at")), published)
    with kb.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


async def load(base: str, cookie: str, paths: list[str], in_flight: int) -> list[float]:
    times: list[float] = []
    stop = time.monotonic() + SECONDS
    async with httpx.AsyncClient(base_url=base, cookies={"fw_session": cookie},
                                 timeout=60) as http:
        async def worker(k: int) -> None:
            i = k
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                response = await http.get(paths[i % len(paths)])
                times.append(1000 * (time.perf_counter() - t0))
                assert response.status_code == 200, response.status_code
                i += in_flight

        await asyncio.gather(*(worker(k) for k in range(in_flight)))
    return times


def main() -> None:
    url = database()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    failwell = str(Path(sys.executable).parent / "failwell")
    server = subprocess.Popen([failwell, "serve", "--db", url, "--port", str(port)],
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{base}/login", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        login = httpx.post(f"{base}/login", data={"username": "bench", "password": PASSWORD})
        cookie = login.cookies["fw_session"]
        queries = [q for q, _, _ in QUERIES]
        httpx.get(f"{base}/incidents", params={"q": queries[0]}, cookies=login.cookies,
                  timeout=120)  # the first search loads the model and the vectors
        pages = {"dashboard": ["/dashboard"],
                 "search": [f"/incidents?q={q}" for q in queries],
                 "incident list": ["/incidents"]}
        worst: dict[int, float] = {}
        for in_flight in LEVELS:
            for name, paths in pages.items():
                times = asyncio.run(load(base, cookie, paths, in_flight))
                p95 = float(np.percentile(times, 95))
                if name != "incident list":
                    worst[in_flight] = max(worst.get(in_flight, 0.0), p95)
                print(f"{name:14s} {len(times):5d} requests, {in_flight} in flight: "
                      f"p50 {statistics.median(times):6.1f} ms  p95 {p95:6.1f} ms", flush=True)
    finally:
        server.terminate()
        server.wait(10)
    for in_flight, p95 in worst.items():
        print(f"target: dashboard and search p95 < 150 ms with {in_flight} in flight -> "
              f"{'met' if p95 < 150 else 'MISSED'} ({p95:.0f} ms)")


if __name__ == "__main__":
    main()
