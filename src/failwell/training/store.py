"""The run record: metrics and alerts in a local SQLite file (standard library only), written
in batches so that recording costs little per step."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
                                 started_at TEXT NOT NULL, config TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (run_id INTEGER NOT NULL, step INTEGER NOT NULL,
                                    name TEXT NOT NULL, value REAL);
CREATE TABLE IF NOT EXISTS alerts (run_id INTEGER NOT NULL, step INTEGER NOT NULL,
                                   kind TEXT NOT NULL, series TEXT NOT NULL, value REAL,
                                   detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ix_metrics_run ON metrics (run_id, name, step);
"""


class RunStore:
    """Buffered writes, flushed every ``flush_every * 8`` rows, every ``flush_seconds``, at
    ``close()`` and at interpreter exit, so a run that forgets ``close()`` or crashes loses at
    most the last few seconds of metrics."""

    def __init__(self, path: str | Path, *, run_name: str, config: dict[str, Any],
                 flush_every: int = 200, flush_seconds: float = 5.0):
        import atexit
        import datetime as dt
        import time

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path)
        self.conn.executescript(SCHEMA)
        with self.conn:
            self.run_id = self.conn.execute(
                "INSERT INTO runs (name, started_at, config) VALUES (?, ?, ?)",
                (run_name, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                 json.dumps(config, default=str))).lastrowid
        self.pending: list[tuple] = []
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._clock = time.monotonic
        self._flushed_at = self._clock()
        self.closed = False
        atexit.register(self.close)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.pending += [(self.run_id, step, k, v) for k, v in values.items()]
        if len(self.pending) >= self.flush_every * 8 or \
                self._clock() - self._flushed_at >= self.flush_seconds:
            self.flush()

    def alert(self, step: int, kind: str, series: str, value: float, detail: str) -> None:
        self.flush()
        with self.conn:
            self.conn.execute("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?)",
                              (self.run_id, step, kind, series, value, detail))

    def flush(self) -> None:
        self._flushed_at = self._clock()
        if self.pending and not self.closed:
            with self.conn:
                self.conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)", self.pending)
            self.pending = []

    def close(self) -> None:
        """Write what is buffered and close (safe to call twice; also runs at exit)."""
        import atexit

        if self.closed:
            return
        self.flush()
        self.conn.close()
        self.closed = True
        atexit.unregister(self.close)


def read_run(path: str | Path, run_id: int | None = None) -> dict[str, Any]:
    """One run's metrics (name -> [(step, value)]) and alerts, the latest run by default."""
    conn = sqlite3.connect(Path(path))
    try:
        if run_id is None:
            run_id = conn.execute("SELECT max(id) FROM runs").fetchone()[0]
        name = conn.execute("SELECT name FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
        series: dict[str, list[tuple[int, float]]] = {}
        for step, metric, value in conn.execute(
                "SELECT step, name, value FROM metrics WHERE run_id = ? ORDER BY step",
                (run_id,)):
            series.setdefault(metric, []).append((step, value))
        alerts = [dict(zip(("step", "kind", "series", "value", "detail"), row, strict=True))
                  for row in conn.execute("SELECT step, kind, series, value, detail FROM "
                                          "alerts WHERE run_id = ? ORDER BY step", (run_id,))]
    finally:
        conn.close()
    return {"run_id": run_id, "name": name, "series": series, "alerts": alerts}
