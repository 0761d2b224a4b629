"""Property-based fuzzing of the JSON API with Schemathesis: requests generated from the
OpenAPI schema for every route, sent over real HTTP on loopback as each role (and with no
credentials). The suite fails on any 5xx, and on a documented answer whose body does not
match the schema. ``FAILWELL_FUZZ_EXAMPLES`` raises the examples per route and role."""

import os

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("multipart")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    response_schema_conformance,
)

from conftest import LoopbackServer  # noqa: E402
from failwell.web.app import create_app  # noqa: E402

EXAMPLES = int(os.environ.get("FAILWELL_FUZZ_EXAMPLES", "12"))
ROLES = ("anonymous", "viewer", "contributor", "reviewer", "admin")
SCOPES = {"viewer": ["read"], "contributor": ["read", "write", "scans"],
          "reviewer": ["read", "write", "scans", "review"],
          "admin": ["read", "write", "scans", "review"]}
CASES = {"count": 0, "by_status": {}}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    app = create_app(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'kb.sqlite'}")
    accounts = app.state.accounts
    tokens = {}
    for role in ROLES[1:]:
        accounts.add_user(role, "correct horse battery", role)
        tokens[role] = accounts.issue_token(role, "fuzz", SCOPES[role])
    server = LoopbackServer(app)
    yield server.url, tokens, app.openapi()
    server.stop()
    app.state.kb.close()
    print(f"\nfuzzed {CASES['count']} requests; answers by status: "
          f"{dict(sorted(CASES['by_status'].items()))}")


def _operations(spec):
    return [(method.upper(), path) for path, ops in spec["paths"].items() for method in ops]


def _spec():
    # the schema the app publishes, built without serving it (the routes do not change
    # between runs, so collecting it at import time is cheap and deterministic)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(f"sqlite:///{tmp}/kb.sqlite")
        try:
            return app.openapi()
        finally:
            app.state.kb.close()


SPEC = _spec()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path"), _operations(SPEC))
def test_no_route_answers_5xx_or_breaks_its_schema(served, role, method, path):
    base, tokens, spec = served
    schema = schemathesis.openapi.from_dict(spec)
    operation = schema[path][method]
    headers = {"Authorization": f"Bearer {tokens[role]}"} if role in tokens else {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case):
        response = case.call(base_url=base, headers=headers, timeout=30)
        CASES["count"] += 1
        CASES["by_status"][response.status_code] = CASES["by_status"].get(
            response.status_code, 0) + 1
        assert response.status_code < 500, (
            f"{case.as_curl_command(headers)} -> {response.status_code}: {response.text[:500]}")
        if str(response.status_code) in operation.definition.raw.get("responses", {}):
            case.validate_response(response, checks=[response_schema_conformance])

    check()
