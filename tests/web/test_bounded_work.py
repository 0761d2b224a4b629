"""CPU work for a request stops when its client goes away: a blameless check over a long
document is abandoned a moment after the client disconnects, and finishes when it stays."""

import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from conftest import LoopbackServer  # noqa: E402
from failwell.kb import blameless  # noqa: E402
from failwell.web.app import create_app  # noqa: E402

SENTENCES = 3000


@pytest.fixture
def served(tmp_path, monkeypatch):
    calls = []
    parse = blameless._parse

    def slow_parse(sentence):  # 3 ms a sentence: the whole check takes about 9 s
        calls.append(sentence)
        time.sleep(0.003)
        return parse(sentence)

    monkeypatch.setattr(blameless, "_parse", slow_parse)
    app = create_app(f"sqlite:///{tmp_path / 'kb.sqlite'}")
    app.state.accounts.add_user("reader", "correct horse battery", "viewer")
    token = app.state.accounts.issue_token("reader", "t", ["read"])
    server = LoopbackServer(app)
    yield server.url, {"Authorization": f"Bearer {token}"}, calls
    server.stop()
    app.state.kb.close()


def document(n: int) -> str:
    return " ".join(f"Step {i} of the rollout changed table {i * 7}." for i in range(n))


def test_the_check_stops_when_the_client_disconnects(served):
    url, headers, calls = served
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{url}/api/lint", json={"text": document(SENTENCES)}, headers=headers,
                   timeout=1.0)
    time.sleep(1.5)  # the server notices within its poll interval and the next checkpoint
    stopped_at = len(calls)
    time.sleep(1.0)
    assert len(calls) == stopped_at  # no more work after the client left
    assert stopped_at < SENTENCES / 2


def test_the_check_finishes_for_a_client_that_waits(served):
    url, headers, calls = served
    answer = httpx.post(f"{url}/api/lint", json={"text": document(300)}, headers=headers,
                        timeout=60)
    assert answer.status_code == 200 and answer.json() == {"flags": []}
    assert len(calls) == 300
