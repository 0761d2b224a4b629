"""The login and the app's answers under hostile input (OWASP ASVS level 2), over real HTTP
on loopback: logins take the same time whoever is named, the login form has a CSRF token,
guessing is slowed per username and per address with growing delays (never a lock), every
answer carries the security headers, the API schema needs a login, and the CLI revokes one
token at a time."""

import base64
import datetime as dt
import gc
import hashlib
import re
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("multipart")

from conftest import LoopbackServer  # noqa: E402
from failwell.web import accounts as accounts_module  # noqa: E402
from failwell.web.accounts import Accounts  # noqa: E402
from failwell.web.app import create_app  # noqa: E402

PASSWORD = "correct horse battery"
TEMPLATES = Path(accounts_module.__file__).parent / "templates"


class Clock:
    """The login throttle's clock, turned by hand instead of sleeping."""

    def __init__(self):
        self.now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def site(kb_url, monkeypatch):
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)  # loopback is the trusted proxy
    app = create_app(kb_url)
    accounts: Accounts = app.state.accounts
    clock = Clock()
    accounts.now = clock
    for role in ("viewer", "admin"):
        accounts.add_user(role, PASSWORD, role)
    server = LoopbackServer(app)
    clients: list[httpx.Client] = []

    def client(address: str | None = None) -> httpx.Client:
        """A browser at ``address`` (sent as X-Forwarded-For, which uvicorn trusts from
        loopback, as from a reverse proxy)."""
        made = httpx.Client(base_url=server.url, timeout=60, follow_redirects=False,
                            headers={"X-Forwarded-For": address} if address else {})
        clients.append(made)
        return made

    yield SimpleNamespace(url=server.url, accounts=accounts, clock=clock, client=client)
    for made in clients:
        made.close()
    server.stop()
    app.state.kb.close()


def form_token(client: httpx.Client) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    return page.text.split('name="csrf" value="')[1].split('"')[0]


def attempt(client: httpx.Client, username: str, password: str, token: str | None = None):
    data = {"username": username, "password": password}
    if token is not None:
        data["csrf"] = token
    return client.post("/login", data=data)


# -- 1. the same work for every name ------------------------------------------------------

def test_login_takes_as_long_for_unknown_disabled_and_real_accounts(site):
    """Medians of 15 attempts each, interleaved round-robin (so a busy CI machine slows the
    three alike), after a warm-up: within 20 % of each other. A pass that misses is measured
    again (up to three): a burst of load can skew one pass, while a real difference (3.7 ms
    for an unknown name against 61 ms for a wrong password, before) fails every pass."""
    accounts, clock, client = site.accounts, site.clock, site.client
    accounts.add_user("gone", PASSWORD, "viewer")
    accounts.change_user("gone", disabled=True)
    kinds = {"unknown": "ghost", "disabled": "gone", "real": "viewer"}
    browser = client()
    token = form_token(browser)

    def medians(warm_up: int) -> dict[str, float]:
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        gc.collect()
        for n in range(warm_up + 15):
            order = list(kinds)[n % 3:] + list(kinds)[:n % 3]  # who goes first rotates
            for kind in order:
                clock.advance(2 * 3600)  # earlier failures forgotten: none is throttled
                password = PASSWORD if kind == "disabled" else "wrong password"
                started = time.perf_counter()
                answer = attempt(browser, kinds[kind], password, token)
                elapsed = time.perf_counter() - started
                assert answer.status_code == 401 and "wrong username or password" in answer.text
                if n >= warm_up:
                    times[kind].append(elapsed)
        return {kind: statistics.median(t) for kind, t in times.items()}

    passes = []
    for warm_up in (3, 1, 1):
        passes.append(medians(warm_up))
        print("login medians (ms):", {k: round(v * 1000, 1) for k, v in passes[-1].items()})
        if max(passes[-1].values()) <= 1.2 * min(passes[-1].values()):
            break
    else:
        pytest.fail(f"login times differ by account kind in every pass: {passes}")


def test_every_attempt_checks_one_password_hash(site, monkeypatch):
    """The same code path: unknown and disabled accounts cost one scrypt check too."""
    accounts = site.accounts
    accounts.add_user("gone", PASSWORD, "viewer")
    accounts.change_user("gone", disabled=True)
    checked = []
    real = accounts_module.check_password
    monkeypatch.setattr(accounts_module, "check_password",
                        lambda password, stored: checked.append(stored) or real(password,
                                                                                 stored))
    for name in ("ghost", "gone", "viewer"):
        with pytest.raises(accounts_module.AuthError, match="wrong username or password"):
            accounts.authenticate(name, "wrong" if name == "viewer" else PASSWORD)
    assert len(checked) == 3 and checked[0] == accounts_module._dummy_hash()


# -- 2. the login form's CSRF token --------------------------------------------------------

def test_a_login_without_the_forms_token_is_refused(site):
    accounts, client = site.accounts, site.client
    browser = client()
    no_token = attempt(browser, "viewer", PASSWORD)  # no form fetched: no cookie, no token
    assert no_token.status_code == 403 and "fw_session" not in browser.cookies
    token = form_token(browser)
    forged = token[:-1] + ("1" if token[-1] == "0" else "0")
    for bad in ("", "123.abc", forged, token + "0"):
        refused = attempt(browser, "viewer", PASSWORD, bad)
        assert refused.status_code == 403 and "fw_session" not in refused.headers.get(
            "set-cookie", ""), bad
        assert 'name="csrf" value="' in refused.text  # the form again, with a fresh token
    other = client()  # another browser's token does not go with this browser's cookie
    assert attempt(other, "viewer", PASSWORD, form_token(client())).status_code == 403
    nonce = browser.cookies.get("fw_login", path="/login")
    stale = accounts.login_form_token(
        nonce, int(time.time()) - accounts_module.LOGIN_FORM_TTL_S - 5)
    assert attempt(browser, "viewer", PASSWORD, stale).status_code == 403
    assert browser.get("/dashboard").status_code == 303  # never logged in
    done = attempt(browser, "viewer", PASSWORD, token)
    assert done.status_code == 303 and browser.get("/dashboard").status_code == 200


# -- 3. throttling: growing delays per address and per username, never a lock -------------

def test_guessing_from_one_address_is_slowed_and_others_are_not(site):
    clock, client = site.clock, site.client
    attacker = client("203.0.113.7")
    token = form_token(attacker)
    answers = [attempt(attacker, f"name-{n}", "guess-guess", token) for n in range(40)]
    statuses = [a.status_code for a in answers]
    free = accounts_module.FREE_FAILURES["addr"]
    assert statuses[:free + 1] == [401] * (free + 1)  # free failures, then a 1 s delay
    assert set(statuses[free + 1:]) == {429}  # every name: it is the address that waits
    slowed = answers[-1]
    assert int(slowed.headers["Retry-After"]) >= 1 and "try again in" in slowed.text
    admin = client("198.51.100.9")  # the real admin, elsewhere, meanwhile
    assert attempt(admin, "admin", PASSWORD, form_token(admin)).status_code == 303
    # from the slowed address, even the right password waits; after the delay it works
    assert attempt(attacker, "admin", PASSWORD, token).status_code == 429
    clock.advance(int(slowed.headers["Retry-After"]))
    assert attempt(attacker, "admin", PASSWORD, token).status_code == 303


def test_guessing_one_name_grows_its_delay_but_the_owner_gets_in_after_it(site):
    clock, client = site.clock, site.client
    free = accounts_module.FREE_FAILURES["user"]
    waits = []
    for n in range(free + 10):  # each from a new address: the name is what is throttled
        guesser = client(f"192.0.2.{n + 1}")
        answer = attempt(guesser, "admin", "guess-guess", form_token(guesser))
        if answer.status_code == 429:
            waits.append(int(answer.headers["Retry-After"]))
            clock.advance(waits[-1])
            answer = attempt(guesser, "admin", "guess-guess", form_token(guesser))
        assert answer.status_code == 401, n
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256]  # doubling after 5 free failures
    owner = client("198.51.100.9")
    token = form_token(owner)
    held = attempt(owner, "admin", PASSWORD, token)
    retry = int(held.headers["Retry-After"])
    assert held.status_code == 429 and retry == 300  # capped: 5 minutes at most
    clock.advance(retry - 1)
    assert attempt(owner, "admin", PASSWORD, token).status_code == 429  # not yet
    clock.advance(1)
    assert attempt(owner, "admin", PASSWORD, token).status_code == 303  # the wait is over
    # the success cleared the name's failures: a typo now is just a typo
    typo = client("198.51.100.10")
    assert attempt(typo, "admin", "typo-typo", form_token(typo)).status_code == 401
    other = client("198.51.100.11")
    assert attempt(other, "viewer", PASSWORD, form_token(other)).status_code == 303


def test_failures_are_forgotten_after_an_hour(site):
    clock, client = site.clock, site.client
    guesser = client("192.0.2.50")
    token = form_token(guesser)
    for _ in range(accounts_module.FREE_FAILURES["user"] + 1):
        assert attempt(guesser, "viewer", "guess-guess", token).status_code == 401
    assert attempt(guesser, "viewer", "guess-guess", token).status_code == 429
    clock.advance(accounts_module.FAILURE_MEMORY.total_seconds() + 1)
    assert attempt(guesser, "viewer", "guess-guess", token).status_code == 401


def test_parallel_guesses_cannot_slip_through_together(site):
    """An attempt counts as a failure from the moment it starts, so twelve guesses sent at
    once get the five free ones and one more, not twelve."""
    from concurrent.futures import ThreadPoolExecutor

    accounts = site.accounts

    def guess(_):
        try:
            accounts.authenticate("viewer", "guess-guess", address="192.0.2.99")
        except accounts_module.TooManyAttempts:
            return "slowed"
        except accounts_module.AuthError:
            return "wrong"

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(guess, range(12)))
    assert answers.count("wrong") == accounts_module.FREE_FAILURES["user"] + 1, answers


def test_ipv6_clients_are_throttled_by_their_64_network():
    group = accounts_module.address_group
    assert group("2001:db8:1:2::10") == group("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert group("2001:db8:1:3::10") != group("2001:db8:1:2::10")
    assert group("::ffff:203.0.113.7") == group("203.0.113.7") == "203.0.113.7"
    assert group("203.0.113.8") != group("203.0.113.7")


# -- 4. security headers on every answer --------------------------------------------------

def script_hashes() -> set[str]:
    found = set()
    for template in TEMPLATES.glob("*.html"):
        for body in re.findall(r"<script>(.*?)</script>", template.read_text(), re.S):
            found.add("'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest())
                      .decode() + "'")
    return found


def check_headers(response: httpx.Response, what: str) -> None:
    headers = response.headers
    assert headers.get("x-frame-options") == "DENY", what
    assert headers.get("x-content-type-options") == "nosniff", what
    assert headers.get("referrer-policy") in ("same-origin", "no-referrer"), what
    policy = dict(part.strip().split(" ", 1) for part in
                  headers.get("content-security-policy", "").split(";"))
    assert policy.get("frame-ancestors") == "'none'", what
    scripts = policy["script-src"].split()
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, what
    assert set(scripts) - {"'self'"} == script_hashes(), what  # inline scripts by hash only
    assert policy.get("object-src") == "'none'" and policy.get("base-uri") == "'none'", what


def test_every_answer_carries_the_security_headers(site):
    client = site.client
    anonymous = client()
    check_headers(anonymous.get("/login"), "login page")
    check_headers(anonymous.get("/no-such-page"), "404")
    check_headers(anonymous.get("/api/stats"), "API 401")
    check_headers(anonymous.get("/incidents"), "redirect to the login")
    viewer = client()
    assert attempt(viewer, "viewer", PASSWORD, form_token(viewer)).status_code == 303
    check_headers(viewer.get("/dashboard"), "page")
    check_headers(viewer.get("/api/stats"), "API route")
    check_headers(viewer.get("/admin/users"), "error page (403)")
    missing = viewer.get("/incidents/no-such-incident")
    assert missing.status_code == 404 and "<html" in missing.text
    check_headers(missing, "error page (404)")
    check_headers(viewer.get("/api/incidents/no-such-incident"), "API 404")
    check_headers(viewer.get("/dashboard", params={"period": "week"}), "422 page")


def test_an_unhandled_error_still_carries_the_headers(tmp_path):
    from fastapi.testclient import TestClient

    app = create_app(f"sqlite:///{tmp_path / 'kb.sqlite'}")

    @app.get("/boom")
    def boom():
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as test:
        answer = test.get("/boom")
    app.state.kb.close()
    assert answer.status_code == 500 and "a bug" not in answer.text
    check_headers(answer, "500")


def test_templates_have_no_inline_handlers_and_scripts_run_by_hash():
    for template in TEMPLATES.glob("*.html"):
        html = template.read_text()
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", html, re.I), template.name
        assert "javascript:" not in html.lower(), template.name
        for tag in re.findall(r"<script[^>]*>", html):
            assert tag == "<script>" or 'src="/' in tag, (template.name, tag)


# -- 5. the API schema needs a login (or an option) ---------------------------------------

def test_the_api_docs_need_a_login_or_a_token(site):
    accounts, client = site.accounts, site.client
    anonymous = client()
    for path in ("/docs", "/redoc"):
        answer = anonymous.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}"
    assert anonymous.get("/openapi.json").status_code == 401
    bogus = client()
    assert bogus.get("/openapi.json", headers={"Authorization": "Bearer fw_nope"}
                     ).status_code == 401
    viewer = client()
    assert attempt(viewer, "viewer", PASSWORD, form_token(viewer)).status_code == 303
    assert "/api/incidents" in viewer.get("/openapi.json").json()["paths"]
    docs = viewer.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert viewer.get("/redoc").status_code == 200
    policy = docs.headers["content-security-policy"]  # its own: the viewer's CDN and script
    inline = re.findall(r"<script>(.*?)</script>", docs.text, re.S)[0]
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy and "frame-ancestors 'none'" in policy
    assert docs.headers["x-frame-options"] == "DENY"
    token = accounts.issue_token("viewer", "ci", ["scans"])  # any scope reads the schema
    ci = client()
    assert ci.get("/openapi.json", headers={"Authorization": f"Bearer {token}"}
                  ).status_code == 200


def test_public_docs_opens_them(tmp_path):
    from fastapi.testclient import TestClient

    app = create_app(f"sqlite:///{tmp_path / 'kb.sqlite'}", public_docs=True)
    with TestClient(app, follow_redirects=False) as anonymous:
        assert anonymous.get("/openapi.json").status_code == 200
        assert anonymous.get("/docs").status_code == 200
        assert anonymous.get("/redoc").status_code == 200
        assert anonymous.get("/api/stats").status_code == 401  # the API itself still needs one
    app.state.kb.close()


def test_serve_passes_public_docs_to_every_worker(tmp_path, monkeypatch):
    """`failwell serve --public-docs --workers 2` hands the option to the worker processes
    through the environment that failwell.web.asgi reads (uvicorn is not started here)."""
    import importlib
    import sys

    import uvicorn
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from failwell.cli import app as cli

    def worker_app():
        """What each worker process builds: failwell.web.asgi imported afresh."""
        sys.modules.pop("failwell.web.asgi", None)
        try:
            return importlib.import_module("failwell.web.asgi").app
        finally:
            sys.modules.pop("failwell.web.asgi", None)

    db = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    monkeypatch.setenv("FAILWELL_DB", "")  # restored afterwards: serve sets both
    monkeypatch.setenv("FAILWELL_PUBLIC_DOCS", "")
    started = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **options: started.append(target))
    ran = CliRunner().invoke(cli, ["serve", "--workers", "2", "--public-docs", "--db", db])
    assert ran.exit_code == 0, ran.output
    assert started == ["failwell.web.asgi:app"]
    worker = worker_app()
    with TestClient(worker) as anonymous:
        assert anonymous.get("/openapi.json").status_code == 200
    worker.state.kb.close()
    monkeypatch.setenv("FAILWELL_PUBLIC_DOCS", "0")
    closed = worker_app()
    with TestClient(closed) as anonymous:
        assert anonymous.get("/openapi.json").status_code == 401
    closed.state.kb.close()


# -- 6. the CLI revokes one token, by id or by owner and name -----------------------------

def test_cli_token_revoke_by_id_or_by_user_and_name(tmp_path):
    from typer.testing import CliRunner

    from failwell.cli import app as cli
    from failwell.kb.store import KnowledgeBase

    db = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    kb = KnowledgeBase.open(db)
    accounts = Accounts(kb)
    for name in ("alice", "bob"):
        accounts.add_user(name, PASSWORD, "contributor")
    alice_ci = accounts.issue_token("alice", "ci", ["read"])
    bob_ci = accounts.issue_token("bob", "ci", ["read"])
    bob_deploy = accounts.issue_token("bob", "deploy", ["read"])

    def run(*args: str):
        return CliRunner().invoke(cli, ["token", *args, "--db", db])

    listed = run("list")
    assert listed.exit_code == 0, listed.output
    rows = [line.split("\t") for line in listed.output.splitlines()]
    assert [(r[0], r[1], r[2], r[-1]) for r in rows] == [
        ("1", "alice", "ci", "active"), ("2", "bob", "ci", "active"),
        ("3", "bob", "deploy", "active")]
    assert alice_ci not in listed.output and bob_ci not in listed.output  # never secrets
    assert [r[0] for r in (line.split("\t") for line in run(
        "list", "--user", "bob").output.splitlines())] == ["2", "3"]

    done = run("revoke", "--user", "alice", "--name", "ci")
    assert done.exit_code == 0 and "revoked token 1" in done.output, done.output
    assert accounts.token_user(alice_ci) is None
    assert accounts.token_user(bob_ci) is not None  # bob's token of the same name is kept
    assert run("revoke", "3").exit_code == 0
    assert accounts.token_user(bob_deploy) is None and accounts.token_user(bob_ci)
    assert run("list").output.splitlines()[0].split("\t")[-1] != "active"

    accounts.issue_token("bob", "ci", ["read"])  # two active tokens named ci: say which
    for args, says in ((["revoke", "--user", "bob", "--name", "ci"], "revoke one by its id"),
                       (["revoke", "ci"], "not a token id"),
                       (["revoke"], "give a token id"),
                       (["revoke", "--user", "bob"], "give a token id"),
                       (["revoke", "2", "--user", "bob", "--name", "ci"], "not both"),
                       (["revoke", "1"], "no active API token 1"),  # already revoked
                       (["revoke", "99"], "no active API token 99"),
                       (["revoke", "--user", "carol", "--name", "ci"], "no active API token"),
                       (["list", "--user", "carol"], "no user 'carol'")):
        refused = run(*args)
        assert refused.exit_code == 2, (args, refused.output)
        assert refused.output.count("Error:") == 1 and says in " ".join(
            refused.output.split()), (args, refused.output)
        assert "Traceback" not in refused.output
    assert accounts.token_user(bob_ci) is not None
    kb.close()
