"""Shared fixtures: synthetic data with planted failures, and COMPAS from ../shared/data."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

REPO = Path(__file__).resolve().parents[1]


def people(n: int = 4000, *, seed: int = 0, label_bias: float = 0.0,
           zip_proxy: bool = False) -> pd.DataFrame:
    """Applicants with two real signals (skill, experience), a gender and a group.

    ``label_bias`` adds that much to the positive-label log-odds of gender 'M' (historical
    bias); ``zip_proxy`` adds a zip code that encodes ``group`` 90 % of the time.
    """
    rng = np.random.default_rng(seed)
    skill = rng.normal(0, 1, n)
    experience = rng.integers(0, 20, n)
    gender = rng.choice(["F", "M"], n)
    group = rng.choice(["a", "b"], n)
    logit = 1.5 * skill + 0.1 * (experience - 10) + label_bias * (gender == "M")
    hired = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame = pd.DataFrame({"skill": skill, "experience": experience, "gender": gender,
                          "group": group, "hired": hired})
    if zip_proxy:
        same = rng.random(n) < 0.9
        frame["zip"] = np.where(same, np.where(group == "a", "10001", "20002"),
                                np.where(group == "a", "20002", "10001"))
    return frame


def fit_logistic(frame: pd.DataFrame, features: list[str], target: str = "hired"):
    cats = [c for c in features if frame[c].dtype == object or str(frame[c].dtype) == "str"
            or pd.api.types.is_string_dtype(frame[c])]
    nums = [c for c in features if c not in cats]
    pre = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), cats),
                             ("num", StandardScaler(), nums)])
    return make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(frame[features],
                                                                       frame[target])


@pytest.fixture(scope="session")
def compas_path() -> Path:
    path = REPO.parent / "shared" / "data" / "compas" / "compas-scores-two-years.csv"
    if not path.exists():
        pytest.fail(f"COMPAS data missing at {path}: ../shared must sit beside the repo")
    return path


@pytest.fixture(scope="session")
def compas(compas_path) -> pd.DataFrame:
    from failwell.demo import load_compas

    return load_compas(compas_path)


# -- knowledge base: every storage test runs on SQLite and on a real PostgreSQL server ------

def _pg_admin_url() -> str | None:
    import os

    return os.environ.get("FAILWELL_TEST_PG") or None


@pytest.fixture(params=["sqlite", "postgresql"])
def kb_url(request, tmp_path) -> str:
    """A fresh, empty database URL. PostgreSQL comes from FAILWELL_TEST_PG (set by
    `make test`, which starts a server); without it the PostgreSQL run is skipped locally
    and fails in CI."""
    import os

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'kb.sqlite'}"
        return
    admin = _pg_admin_url()
    if admin is None:
        if os.environ.get("CI"):
            pytest.fail("FAILWELL_TEST_PG is not set: `make test` starts PostgreSQL for CI")
        pytest.skip("no PostgreSQL test server (FAILWELL_TEST_PG)")

    with fresh_postgres(admin) as url:
        yield url


@contextlib.contextmanager
def fresh_postgres(admin: str):
    """A new, empty PostgreSQL database on the test server, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text

    name = f"fw_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@contextlib.contextmanager
def another_database_like(url: str, tmp_path: Path):
    """A second fresh database of the same kind as ``url`` (same dialect, same ranking)."""
    if url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'another.sqlite'}"
        return
    with fresh_postgres(_pg_admin_url()) as other:
        yield other


@pytest.fixture
def kb(kb_url):
    from failwell.kb.store import KnowledgeBase

    store = KnowledgeBase.open(kb_url)
    yield store
    store.close()


def postmortem_text(id: str, *, title: str, summary: str, project: str = "",
                    modes: tuple[str, ...] = (), patterns: tuple[str, ...] = (),
                    occurred: str = "2024-01-10", actions: tuple[tuple[str, str], ...] = (),
                    lessons: tuple[str, ...] = (), severity: str = "high") -> str:
    """A postmortem in canonical Markdown, built through the real serializer."""
    import datetime as dt

    from failwell.kb.postmortem import (
        ActionItem,
        ContributingFactor,
        Lesson,
        Postmortem,
        to_markdown,
    )

    pm = Postmortem(
        id=id, title=title, severity=severity, project=project,
        occurred=dt.date.fromisoformat(occurred), summary=summary,
        contributing_factors=[ContributingFactor("What made it likely.", list(patterns),
                                                 list(modes))] if modes or patterns else [],
        lessons=[Lesson(t) for t in lessons],
        action_items=[ActionItem(d, "ml-platform team", status=s) for d, s in actions])
    return to_markdown(pm)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackServer:
    """An ASGI app served by uvicorn on loopback in a thread: real HTTP for the tests."""

    def __init__(self, app, port: int | None = None):
        import threading
        import time

        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
