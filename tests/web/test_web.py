"""The web app over real HTTP on loopback (uvicorn in a thread, httpx as the client), on
SQLite and PostgreSQL: logins, roles, CSRF, API tokens, escaping."""

import json
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("multipart")

from conftest import LoopbackServer, another_database_like  # noqa: E402
from failwell.web.accounts import Accounts  # noqa: E402
from failwell.web.app import create_app  # noqa: E402

PASSWORD = "correct horse battery"
LOAN = Path(__file__).resolve().parents[2] / "examples" / "governance" / "loan-approvals.yaml"
EVIL = "<script>alert(1)</script>"


@pytest.fixture
def site(kb_url):
    app = create_app(kb_url)
    accounts: Accounts = app.state.accounts
    for role in ("viewer", "contributor", "reviewer", "admin"):
        accounts.add_user(role, PASSWORD, role)
    server = LoopbackServer(app)
    yield server.url, accounts, kb_url
    server.stop()
    app.state.kb.close()


OPEN: list = []


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    while OPEN:
        OPEN.pop().close()


def client_for(base: str, **options) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60, **options)  # the first search loads a model
    OPEN.append(client)
    return client


def login_form(client, **fields) -> dict:
    """The login form's fields as a browser sends them: its CSRF token (the form is fetched
    first, which sets the cookie the token is bound to) and ``fields``."""
    page = client.get("/login").text
    return {"csrf": page.split('name="csrf" value="')[1].split('"')[0], **fields}


def login(base: str, username: str, password: str = PASSWORD) -> httpx.Client:
    client = client_for(base, follow_redirects=False)
    response = client.post("/login", data=login_form(client, username=username,
                                                      password=password))
    assert response.status_code == 303, response.text
    return client


def csrf_of(client: httpx.Client) -> str:
    page = client.get("/incidents").text
    return page.split('name="csrf" value="')[1].split('"')[0]


POSTMORTEM = """---
id: web-upload-{n}
title: "Upload {n}: {title}"
severity: medium
status: draft
project: web
---

## Summary

The model's inputs drifted after a vendor change.
"""


def test_pages_need_a_login_and_the_api_a_token(site):
    base, *_ = site
    anonymous = client_for(base)
    assert anonymous.get("/incidents").status_code == 303  # to the login form
    assert anonymous.get("/api/incidents").status_code == 401
    wrong = anonymous.post("/login", data=login_form(anonymous, username="viewer",
                                                     password="nope"))
    assert wrong.status_code == 401 and "wrong username or password" in wrong.text
    viewer = login(base, "viewer")
    page = viewer.get("/incidents")
    assert page.status_code == 200 and "Pneumonia" in page.text  # the starter library
    found = viewer.get("/api/incidents", params={"q": "hospital marker x-ray"}).json()
    assert found["incidents"][0]["id"] == "pneumonia-portable-marker"
    assert viewer.get("/incidents/pneumonia-portable-marker").status_code == 200
    assert viewer.get("/incidents/no-such-thing").status_code == 404


def test_roles_and_csrf_guard_writes(site):
    base, *_ = site
    viewer, contributor = login(base, "viewer"), login(base, "contributor")
    body = {"markdown": POSTMORTEM.format(n=1, title="drift")}
    assert viewer.post("/api/incidents", json=body,
                       headers={"X-CSRF-Token": csrf_of(viewer)}).status_code == 403
    no_token = contributor.post("/api/incidents", json=body)
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    made = contributor.post("/api/incidents", json=body,
                            headers={"X-CSRF-Token": csrf_of(contributor)})
    assert made.status_code == 201 and made.json()["created_by"] == "contributor"
    from failwell.governance.store import Governance
    from failwell.kb.store import KnowledgeBase

    kb = KnowledgeBase.open(site[2])
    entry = Governance(kb).audit()[-1]
    kb.close()
    assert (entry["actor"], entry["action"]) == ("contributor", "incident.add")
    bad = contributor.post("/api/incidents", json={"markdown": "no front matter"},
                           headers={"X-CSRF-Token": csrf_of(contributor)})
    assert bad.status_code == 400 and "detail" in bad.json()


def test_api_tokens_carry_their_scopes(site):
    base, accounts, _ = site
    read = accounts.issue_token("admin", "ci-read", ["read"])
    write = accounts.issue_token("contributor", "ci-write", ["read", "write"])
    body = {"markdown": POSTMORTEM.format(n=2, title="token")}
    client = client_for(base)
    auth = {"Authorization": f"Bearer {read}"}
    assert client.get("/api/incidents", headers=auth).status_code == 200
    assert client.post("/api/incidents", json=body, headers=auth).status_code == 403
    auth = {"Authorization": f"Bearer {write}"}
    assert client.post("/api/incidents", json=body, headers=auth).status_code == 201
    accounts.revoke_token(username="contributor", name="ci-write")
    assert client.get("/api/incidents", headers=auth).status_code == 401


def test_user_text_renders_inert(site):
    base, accounts, _ = site
    token = accounts.issue_token("contributor", "t", ["read", "write"])
    client = client_for(base, headers={"Authorization": f"Bearer {token}"})
    made = client.post("/api/incidents",
                       json={"markdown": POSTMORTEM.format(n=3, title=EVIL)})
    assert made.status_code == 201
    viewer = login(base, "viewer")
    for path in ("/incidents", "/incidents/web-upload-3", f"/incidents?q={EVIL}"):
        html = viewer.get(path).text
        assert EVIL not in html and "&lt;script&gt;" in html, path


def test_the_live_blame_check(site):
    base, *_ = site
    viewer = login(base, "viewer")
    flags = viewer.post("/api/lint", json={"text": "The engineer forgot to check the data."},
                        headers={"X-CSRF-Token": csrf_of(viewer)}).json()["flags"]
    assert flags and flags[0]["suggestion"]
    clean = viewer.post("/api/lint", json={"text": "The data check was not in the pipeline."},
                        headers={"X-CSRF-Token": csrf_of(viewer)}).json()["flags"]
    assert clean == []


# every route, as each role: the table must name every route the app has
REQUIRED = {
    ("GET", "/login"): None, ("POST", "/login"): None, ("POST", "/logout"): "viewer",
    ("GET", "/"): "viewer", ("GET", "/dashboard"): "viewer", ("GET", "/api/stats"): "viewer",
    ("GET", "/incidents"): "viewer",
    ("GET", "/incidents/{slug}"): "viewer", ("GET", "/api/incidents"): "viewer",
    ("GET", "/incidents/new"): "contributor", ("POST", "/incidents/new"): "contributor",
    ("GET", "/incidents/{slug}/edit"): "contributor",
    ("POST", "/incidents/{slug}/edit"): "contributor",
    ("POST", "/incidents/{slug}/publish"): "contributor",
    ("POST", "/api/scans"): "contributor", ("GET", "/api/scans"): "viewer",
    ("GET", "/scans"): "viewer", ("GET", "/scans/{scan_id}"): "viewer",
    ("GET", "/scans/{scan_id}/report"): "viewer",
    ("GET", "/projects"): "viewer", ("GET", "/projects/{slug}"): "viewer",
    ("POST", "/projects/{slug}/review"): "reviewer", ("GET", "/api/projects/{slug}"): "viewer",
    ("POST", "/api/projects/{slug}/reviews"): "reviewer",
    ("GET", "/api/incidents/{slug}"): "viewer", ("POST", "/api/incidents"): "contributor",
    ("PUT", "/api/incidents/{slug}"): "contributor",
    ("POST", "/api/lint"): "viewer", ("POST", "/api/incidents/{slug}/publish"): "contributor",
    ("GET", "/lessons"): "viewer", ("GET", "/api/lessons"): "viewer",
    ("GET", "/projects/new"): "contributor", ("POST", "/projects/new"): "contributor",
    ("POST", "/projects/{slug}/evidence"): "contributor",
    ("POST", "/projects/{slug}/conditions/{condition_id}"): "reviewer",
    ("GET", "/api/projects"): "viewer", ("POST", "/api/projects"): "contributor",
    ("POST", "/api/projects/{slug}/evidence"): "contributor",
    ("POST", "/api/projects/{slug}/conditions/{condition_id}"): "reviewer",
    ("GET", "/api/projects/{slug}/audit"): "viewer", ("GET", "/api/scans/{scan_id}"): "viewer",
    ("GET", "/account"): "viewer", ("POST", "/account/tokens"): "viewer",
    ("POST", "/account/tokens/{token_id}/revoke"): "viewer",
    ("GET", "/api/account/tokens"): "viewer", ("POST", "/api/account/tokens"): "viewer",
    ("POST", "/api/account/tokens/{token_id}/revoke"): "viewer",
    ("GET", "/admin/users"): "admin", ("POST", "/admin/users"): "admin",
    ("POST", "/admin/users/{username}"): "admin", ("GET", "/api/users"): "admin",
    ("POST", "/api/users"): "admin", ("POST", "/api/users/{username}"): "admin",
}
PUBLIC = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
ROLES = ("viewer", "contributor", "reviewer", "admin")


def test_every_route_as_each_role(tmp_path):
    from fastapi.testclient import TestClient

    app = create_app(f"sqlite:///{tmp_path / 'kb.sqlite'}")
    routes = {(m, r.path) for r in app.routes for m in getattr(r, "methods", ())
              if r.path not in PUBLIC and m != "HEAD"}
    assert routes == set(REQUIRED), routes ^ set(REQUIRED)
    for role in ROLES:
        app.state.accounts.add_user(role, PASSWORD, role)
    from failwell.findings import ScanResult

    app.state.kb.record_scan(ScanResult(findings=[]))  # scan 1, for the scan pages
    from failwell.governance.store import Governance

    Governance(app.state.kb).add_project(LOAN.read_text())
    bodies = {"/api/incidents": {"markdown": "x"}, "/api/lint": {"text": "x"}}
    forms = {"/incidents/new": {"markdown": "x"}, "/incidents/{slug}/edit": {"markdown": "x"},
             "/projects/{slug}/review": {"gate": "nope", "decision": "no-go"},
             "/projects/new": {"text": "x"}, "/projects/{slug}/evidence": {"kind": "x"},
             "/projects/{slug}/conditions/{condition_id}": {"status": "done"},
             "/account/tokens": {"name": "x"}, "/admin/users/{username}": {"role": "viewer"},
             "/admin/users": {"username": "x", "password": "short", "role": "viewer"}}
    bodies["/api/account/tokens"] = {"name": "x", "scopes": []}
    bodies["/api/users"] = {"username": "x", "password": "short"}
    bodies["/api/users/{username}"] = {"role": "viewer"}
    bodies["/api/projects/{slug}/reviews"] = {"gate": "nope"}
    bodies["/api/incidents/{slug}"] = {"markdown": "x"}
    for role in (None, *ROLES):
        with TestClient(app, follow_redirects=False) as client:
            csrf = {}
            if role:
                client.post("/login", data=login_form(client, username=role,
                                                      password=PASSWORD))
                page = client.get("/incidents").text
                csrf = {"X-CSRF-Token": page.split('name="csrf" value="')[1].split('"')[0]}
            for (method, path), needed in REQUIRED.items():
                if path in ("/login", "/logout"):
                    continue
                url = path.replace("/projects/{slug}", "/projects/loan-approvals").replace(
                    "{slug}", "pneumonia-portable-marker").replace("{scan_id}", "1").replace(
                    "{condition_id}", "1").replace("{token_id}", "1").replace(
                    "{username}", "viewer")
                if path in forms:
                    response = client.request(method, url, headers=csrf,
                                              data=forms[path] if method == "POST" else None)
                else:
                    response = client.request(method, url, headers=csrf,
                                              json=bodies.get(path))
                allowed = needed is None or (role is not None and
                                             ROLES.index(role) >= ROLES.index(needed))
                if allowed:
                    assert response.status_code not in (401, 403), (role, method, path)
                elif role is None:
                    assert response.status_code in (303, 401), (method, path)
                else:
                    assert response.status_code == 403, (role, method, path)
    app.state.kb.close()


def test_dashboard_shows_the_learning_figures(site):
    base, *_ = site
    viewer = login(base, "viewer")
    assert viewer.get("/").headers["location"] == "/dashboard"
    page = viewer.get("/dashboard")
    assert page.status_code == 200 and "recurrence rate" in page.text
    stats = viewer.get("/api/stats", params={"period": "quarter"}).json()
    assert stats["incidents"] == 10 and stats["period"] == "quarter"
    assert "data-optimism" in page.text  # a pattern of the starter library
    narrowed = viewer.get("/api/incidents", params={"failure_mode": "reversal-curse"}).json()
    assert [r["id"] for r in narrowed["incidents"]] == ["reversal-curse-facts"]
    assert "only spurious-correlation" in viewer.get(
        "/incidents", params={"failure_mode": "spurious-correlation"}).text
    # a form's "any" sends an empty value: no filter; an unknown value is refused clearly
    anything = viewer.get("/incidents", params={"failure_mode": "", "severity": ""})
    assert anything.status_code == 200 and "pneumonia-portable-marker" in anything.text
    typo = viewer.get("/api/incidents", params={"failure_mode": "spurious-corelation"})
    assert typo.status_code == 400 and "spurious-correlation" in typo.json()["detail"]
    drafts = viewer.get("/api/incidents", params={"status": "draft"}).json()["incidents"]
    published = viewer.get("/api/incidents", params={"status": "published"}).json()
    assert len(drafts) + len(published["incidents"]) == 10
    assert viewer.get("/api/stats", params={"period": "week"}).status_code == 422


BLAMING = POSTMORTEM.format(n=9, title="Drifted inputs").replace(
    "The model's inputs drifted after a vendor change.",
    "The engineer forgot to check the vendor's release notes.")


def test_write_a_postmortem_see_the_blame_flag_reword_and_publish(site):
    base, *_ = site
    author = login(base, "contributor")
    form = author.get("/incidents/new")
    assert form.status_code == 200 and "Blameless-language check" in form.text
    token = form.text.split('name="csrf" value="')[1].split('"')[0]
    refused = author.post("/incidents/new", data={"markdown": "no front matter",
                                                  "csrf": token})
    assert refused.status_code == 400 and "no front matter" in refused.text  # text kept
    made = author.post("/incidents/new", data={"markdown": BLAMING, "csrf": token})
    assert made.status_code == 303
    assert made.headers["location"] == "/incidents/web-upload-9?review=1"
    review = author.get(made.headers["location"]).text  # what `incident new` would print
    assert "Blame framing" in review and "forgot" in review
    blocked = author.post("/incidents/web-upload-9/publish", data={"csrf": token})
    assert blocked.status_code == 409 and "forgot" in blocked.text
    reworded = BLAMING.replace("The engineer forgot to check the vendor's release notes.",
                               "No step in the release process compared vendor versions.")
    assert author.post("/incidents/web-upload-9/edit",
                       data={"markdown": reworded, "csrf": token}).status_code == 303
    assert author.post("/incidents/web-upload-9/publish",
                       data={"csrf": token}).status_code == 303
    page = author.get("/incidents/web-upload-9").text
    assert "published" in page and "Publish</button>" not in page
    other_id = reworded.replace("id: web-upload-9", "id: other")
    assert author.post("/incidents/web-upload-9/edit",
                       data={"markdown": other_id, "csrf": token}).status_code == 400


def test_ci_uploads_a_scan_and_the_team_sees_it_with_related_lessons(site, tmp_path,
                                                                     monkeypatch):
    from typer.testing import CliRunner

    from conftest import people
    from failwell.cli import app as cli

    base, accounts, _ = site
    frame = people(1500, seed=3, label_bias=1.5)  # historical bias, as in the library
    frame["decision"] = ((frame["skill"] > 0) & (frame["gender"] == "M")).astype(int)
    data = tmp_path / "biased.csv"
    frame.to_csv(data, index=False)
    args = ["scan", str(data), "--target", "hired", "--prediction", "decision",
            "--protected", "gender", "--format", "json", "--upload", base]
    monkeypatch.setenv("FAILWELL_TOKEN", accounts.issue_token("contributor", "r", ["read"]))
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 2 and "refused the upload (HTTP 403)" in refused.output
    monkeypatch.setenv("FAILWELL_TOKEN", accounts.issue_token("contributor", "ci", ["scans"]))
    sent = CliRunner().invoke(cli, args)
    assert sent.exit_code == 1, sent.output  # high findings, and uploaded all the same
    assert f"uploaded: {base}/scans/1" in " ".join(sent.output.split())
    viewer = login(base, "viewer")
    page = viewer.get("/scans/1").text
    assert "group-unfairness" in page and "historical-bias" in page
    assert "Lessons from related incidents" in page and 'href="/incidents/' in page
    assert viewer.get("/scans/1/report").text.startswith("<!doctype html>")
    assert viewer.get("/api/scans").json()["scans"][0]["findings"] >= 1
    stored = viewer.get("/api/scans/1").json()
    assert {f["failure_mode"] for f in stored["result"]["findings"]} >= {"historical-bias"}
    assert stored["related"] and stored["related"][0]["lessons"]
    assert viewer.get("/scans/99").status_code == 404


def test_only_reviewers_record_gate_decisions(site):
    from failwell.governance.store import Governance
    from failwell.kb.store import KnowledgeBase

    base, _, url = site
    kb = KnowledgeBase.open(url)
    Governance(kb).add_project(LOAN.read_text())
    kb.close()
    decision = {"gate": "problem-framing", "decision": "no-go",
                "rationale": "No end-user sign-off yet.", "reviewers": ["risk officer"]}
    contributor = login(base, "contributor")
    assert contributor.post("/api/projects/loan-approvals/reviews", json=decision,
                            headers={"X-CSRF-Token": csrf_of(contributor)}).status_code == 403
    reviewer = login(base, "reviewer")
    page = reviewer.get("/projects/loan-approvals").text
    assert "Record the board" in page and "evidence" in page.lower()
    token = csrf_of(reviewer)
    done = reviewer.post("/api/projects/loan-approvals/reviews", json=decision,
                         headers={"X-CSRF-Token": token})
    assert done.status_code == 201, done.text
    assert done.json()["history"][-1]["decision"] == "no-go"
    bad = reviewer.post("/projects/loan-approvals/review", data={
        "gate": "problem-framing", "decision": "go", "rationale": "", "csrf": token})
    assert bad.status_code == 400 and "rationale" in bad.text
    kb = KnowledgeBase.open(url)
    entry = Governance(kb).audit("loan-approvals")[-1]
    kb.close()
    assert (entry["actor"], entry["action"]) == ("reviewer", "gate.review")


def test_login_never_redirects_off_site(site):
    base, *_ = site
    client = client_for(base, follow_redirects=False)
    for target in ("//evil.example", "https://evil.example", "javascript:alert(1)"):
        response = client.post("/login", data=login_form(
            client, username="viewer", password=PASSWORD, next=target))
        assert response.status_code == 303 and response.headers["location"] == "/"


def test_lessons_page_and_api(site):
    base, *_ = site
    viewer = login(base, "viewer")
    found = viewer.get("/api/lessons", params={
        "q": "A CV screening model trained on ten years of our past hiring decisions."}).json()
    assert found["lessons"][0]["incident"] == "resume-screener-gender-bias"
    assert found["lessons"][0]["lessons"][0]["text"]
    latest = viewer.get("/api/lessons", params={"failure_mode": "reversal-curse"}).json()
    assert [h["incident"] for h in latest["lessons"]] == ["reversal-curse-facts"]
    page = viewer.get("/lessons", params={"q": "hospital scanner marker"}).text
    assert 'href="/incidents/pneumonia-portable-marker"' in page
    assert viewer.get("/api/lessons", params={"limit": 0}).status_code == 422


def test_publish_over_flags_keeps_the_reason_and_the_audit_names_the_author(site):
    from failwell.governance.store import Governance
    from failwell.kb.store import KnowledgeBase

    base, accounts, url = site
    token = accounts.issue_token("contributor", "ci", ["read", "write"])
    api = client_for(base, headers={"Authorization": f"Bearer {token}"})
    early = api.post("/api/incidents", json={"markdown": BLAMING.replace(
        "status: draft", "status: published")})  # publishing skips no check
    assert early.status_code == 400 and "Publish button" in early.json()["detail"]
    assert api.post("/api/incidents", json={"markdown": BLAMING}).status_code == 201
    blocked = api.post("/api/incidents/web-upload-9/publish")
    assert blocked.status_code == 409 and "forgot" in blocked.json()["detail"]
    assert api.post("/api/incidents/web-upload-9/publish",
                    json={"override_reason": 3}).status_code == 422  # a typed body
    done = api.post("/api/incidents/web-upload-9/publish", json={
        "override_reason": "Quoted from the vendor's own report."})
    assert done.status_code == 200 and done.json()["overridden_flags"]
    stored = api.get("/api/incidents/web-upload-9").json()
    assert stored["status"] == "published"
    assert stored["publish_override"]["reason"] == "Quoted from the vendor's own report."
    assert "Published over 1 blame-framing flag" in login(base, "viewer").get(
        "/incidents/web-upload-9").text
    kb = KnowledgeBase.open(url)
    trail = [(e["actor"], e["action"]) for e in Governance(kb).audit()]
    kb.close()
    assert trail[-2:] == [("contributor", "incident.add"), ("contributor", "incident.publish")]


def test_register_a_project_record_evidence_and_close_a_condition(site):
    base, *_ = site
    author = login(base, "contributor")
    form = author.get("/projects/new")
    assert form.status_code == 200 and "success_criteria" in form.text
    token = csrf_of(author)
    vague = LOAN.read_text().replace("target: 0.03", "target: low")
    refused = author.post("/projects/new", data={"text": vague, "csrf": token})
    assert refused.status_code == 400 and "target: low" in refused.text  # the text is kept
    made = author.post("/projects/new", data={"text": LOAN.read_text(), "csrf": token})
    assert made.status_code == 303 and made.headers["location"] == "/projects/loan-approvals"
    again = author.post("/api/projects", json={"yaml": LOAN.read_text()},
                        headers={"X-CSRF-Token": token})
    assert again.status_code == 400 and "already exists" in again.json()["detail"]
    assert author.post("/projects/loan-approvals/evidence", data={
        "kind": "end-user-signoff", "note": "", "csrf": token}).status_code == 400
    assert author.post("/projects/loan-approvals/evidence", data={
        "kind": "end-user-signoff", "note": "Loan officers signed the referral design.",
        "csrf": token}).status_code == 303

    reviewer = login(base, "reviewer")
    rtoken = csrf_of(reviewer)
    status = reviewer.post("/api/projects/loan-approvals/reviews", headers={
        "X-CSRF-Token": rtoken}, json={
        "gate": "problem-framing", "decision": "go-with-conditions", "rationale": "Framed.",
        "reviewers": ["risk officer"], "conditions": ["Add a branch-level baseline."]}).json()
    (condition,) = status["open_conditions"]
    page = reviewer.get("/projects/loan-approvals").text
    assert "Add a branch-level baseline." in page and "Close</button>" in page
    assert reviewer.post(f"/projects/loan-approvals/conditions/{condition['id']}", data={
        "status": "maybe", "csrf": rtoken}).status_code == 400
    assert reviewer.post("/projects/loan-approvals/conditions/999", data={
        "status": "done", "csrf": rtoken}).status_code == 404
    assert reviewer.post(f"/projects/loan-approvals/conditions/{condition['id']}", data={
        "status": "done", "csrf": rtoken}).status_code == 303
    assert reviewer.get("/api/projects/loan-approvals").json()["open_conditions"] == []
    trail = reviewer.get("/api/projects/loan-approvals/audit").json()["audit"]
    assert [(e["actor"], e["action"]) for e in trail] == [
        ("contributor", "project.create"), ("contributor", "evidence.record"),
        ("reviewer", "gate.review"), ("reviewer", "condition.update")]
    assert trail[1]["details"]["detail"] == "Loan officers signed the referral design."
    assert [p["slug"] for p in reviewer.get("/api/projects").json()["projects"]] == [
        "loan-approvals"]


def test_dashboard_chart_stacks_the_counts_per_period():
    from failwell.web.charts import stacked_bars

    counts = {f"mode-{k}": {"2024-Q1": k + 1, "2024-Q2": 1} for k in range(8)}
    counts["mode-0"]["undated"] = 50  # not on a chart over time
    chart = stacked_bars(counts, top=6, last=2)
    assert [item["tag"] for item in chart["legend"]] == [
        "mode-7", "mode-6", "mode-5", "mode-4", "mode-3", "mode-2", "other"]
    assert [label["text"] for label in chart["labels"]] == ["2024-Q1", "2024-Q2"]
    q1 = [b for b in chart["bars"] if b["title"].startswith("2024-Q1")]
    assert q1[-1]["title"] == "2024-Q1 · other: 3"  # mode-1 (2) and mode-0 (1)
    assert sum(b["h"] for b in q1) == pytest.approx(chart["base"] - chart["top"], abs=0.5)
    q2 = sum(b["h"] for b in chart["bars"] if b["title"].startswith("2024-Q2"))
    assert q2 == pytest.approx((chart["base"] - chart["top"]) * 8 / 36, abs=0.5)  # rounded
    assert stacked_bars({})["bars"] == []
    gaps = stacked_bars({"a": {"2023-11": 2, "2024-02": 1}}, last=5)
    assert [label["text"] for label in gaps["labels"]] == [
        "2023-10", "2023-11", "2023-12", "2024-01", "2024-02"]  # quiet months included
    assert len(gaps["bars"]) == 2
    quarters = stacked_bars({"a": {"2024-Q1": 1}}, last=3)
    assert [label["text"] for label in quarters["labels"]] == ["2023-Q3", "2023-Q4", "2024-Q1"]
    assert [x["text"] for x in stacked_bars({"a": {"2024": 1}}, last=2)["labels"]] == [
        "2023", "2024"]


def test_dashboard_draws_the_stored_counts(site):
    base, *_ = site
    viewer = login(base, "viewer")
    stats = viewer.get("/api/stats", params={"period": "year"}).json()
    page = viewer.get("/dashboard", params={"period": "year"}).text
    for tag, counts in stats["by_pattern"].items():
        for period, n in counts.items():
            if int(period) > 2025 - 12:  # the chart shows the latest twelve years
                assert f"<title>{period} · {tag}: {n}</title>" in page
    bad = viewer.get("/dashboard", params={"period": "week"})
    assert bad.status_code == 422 and "period" in bad.text and "<html" in bad.text
    assert viewer.get("/api/stats", params={"period": "week"}).json()["detail"][0]["loc"] == [
        "query", "period"]


def test_the_openapi_schema_documents_every_api_route(tmp_path):
    """Everything the pages do has a JSON twin, and each is in the schema with a summary."""
    from fastapi.testclient import TestClient

    app = create_app(f"sqlite:///{tmp_path / 'kb.sqlite'}", public_docs=True)
    with TestClient(app) as client:
        schema = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 200
    app.state.kb.close()
    documented = {(m.upper(), path) for path, ops in schema["paths"].items() for m in ops}
    api = {key for key in REQUIRED if key[1].startswith("/api/")}
    assert documented == api
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert op.get("description"), (method, path)


def test_failwell_serve_with_two_workers(tmp_path):
    """The command a team runs: accounts from the CLI, two worker processes sharing one
    database, and a clear refusal of a database that cannot be reached."""
    import os
    import subprocess
    import sys
    import time

    from conftest import free_port

    failwell = str(Path(sys.executable).parent / "failwell")
    db = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    env = os.environ | {"FAILWELL_DB": db, "FAILWELL_PASSWORD": PASSWORD}
    added = subprocess.run([failwell, "user", "add", "ana", "--role", "contributor"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert added.returncode == 0, added.stderr
    port = free_port()
    server = subprocess.Popen([failwell, "serve", "--port", str(port), "--workers", "2"],
                              env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                httpx.get(f"{base}/login", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        author = login(base, "ana")
        token = csrf_of(author)
        for n in range(6):  # a new connection each: the workers take turns accepting
            # timeout: a new incident is reviewed like `incident new` (suggested tags,
            # related incidents), and each worker loads the embedding model on its first
            with httpx.Client(base_url=base, cookies=author.cookies, timeout=60) as fresh:
                made = fresh.post("/api/incidents", headers={"X-CSRF-Token": token},
                                  json={"markdown": POSTMORTEM.format(n=n, title="t")})
            assert made.status_code == 201, made.text
        listed = author.get("/api/incidents", params={"limit": 50}).json()["incidents"]
        assert {f"web-upload-{n}" for n in range(6)} <= {r["id"] for r in listed}
        assert author.get("/dashboard").status_code == 200
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert "2 worker processes" in stderr and "Traceback" not in stderr, stderr
    refused = subprocess.run(
        [failwell, "serve", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none"],
        capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr


def test_tokens_from_the_account_page_and_users_from_the_admin_page(site):
    from failwell.governance.store import Governance
    from failwell.kb.store import KnowledgeBase

    base, _, url = site
    me = login(base, "contributor")
    token = csrf_of(me)
    assert me.post("/account/tokens", data={"name": "ci", "csrf": token}).status_code == 400
    page = me.post("/account/tokens", data={"name": "ci-main", "scope": ["read", "scans"],
                                            "csrf": token})
    assert page.status_code == 200 and "shown this once" in page.text
    secret = page.text.split('<pre id="new-token">')[1].split("</pre>")[0]
    assert secret not in me.get("/account").text  # never shown again
    bearer = client_for(base, headers={"Authorization": f"Bearer {secret}"})
    assert bearer.get("/api/incidents").status_code == 200
    # a token cannot manage tokens, so a leaked read token cannot mint a write token
    minted = bearer.post("/api/account/tokens", json={"name": "x", "scopes": ["write"]})
    assert minted.status_code == 403 and "browser session" in minted.json()["detail"]
    (listed,) = me.get("/api/account/tokens").json()["tokens"]
    assert (listed["name"], listed["scopes"]) == ("ci-main", ["read", "scans"])
    other = login(base, "viewer")
    assert other.post(f"/api/account/tokens/{listed['id']}/revoke",
                      headers={"X-CSRF-Token": csrf_of(other)}).status_code == 404  # not theirs
    assert me.post(f"/account/tokens/{listed['id']}/revoke",
                   data={"csrf": token}).status_code == 303
    assert bearer.get("/api/incidents").status_code == 401

    admin = login(base, "admin")
    atoken = csrf_of(admin)
    assert me.get("/admin/users").status_code == 403
    weak = admin.post("/admin/users", data={"username": "eve", "password": "short",
                                            "role": "viewer", "csrf": atoken})
    assert weak.status_code == 400 and "8 characters" in weak.text
    assert admin.post("/admin/users", data={"username": "eve", "password": PASSWORD,
                                            "role": "viewer", "csrf": atoken}).status_code == 303
    eve = login(base, "eve")
    assert eve.get("/dashboard").status_code == 200
    assert admin.post("/admin/users/eve", data={"role": "reviewer", "csrf": atoken}
                      ).status_code == 303
    assert "(reviewer)" in eve.get("/dashboard").text  # the role applies at once
    assert admin.post("/admin/users/eve", data={"role": "reviewer", "disabled": "yes",
                                                "csrf": atoken}).status_code == 303
    assert eve.get("/dashboard").status_code == 303  # a disabled account is logged out
    assert admin.post("/admin/users/admin", data={"role": "viewer", "csrf": atoken}
                      ).status_code == 400  # nobody locks the last door behind them
    roles = {u["username"]: (u["role"], u["disabled"])
             for u in admin.get("/api/users").json()["users"]}
    assert roles["eve"] == ("reviewer", True) and roles["admin"] == ("admin", False)
    assert admin.post("/api/users", headers={"X-CSRF-Token": atoken}, json={
        "username": "a/b", "password": PASSWORD}).status_code == 400
    kb = KnowledgeBase.open(url)
    trail = [(e["actor"], e["action"]) for e in Governance(kb).audit()]
    kb.close()
    assert trail == [("contributor", "token.issue"), ("contributor", "token.revoke"),
                     ("admin", "user.add"), ("admin", "user.change"), ("admin", "user.change")]


PARITY_POSTMORTEM = """---
id: parity-triage
title: "Triage model leaned on the scanner model field"
severity: high
status: draft
project: ward-triage
---

## Summary

A chest X-ray triage model scored patients by the portable scanner marker in the image
header rather than by the lungs, and it went unnoticed for months because the engineer
failed to check which features drove the scores.

## Lessons

- Run the remove-the-marker test before every release.
"""


def test_the_web_and_the_command_line_record_the_same_way(site, tmp_path):
    """One postmortem and one project's scans, recorded through `failwell` and through the
    API: the same blame flags, suggested tags, related incidents, lessons and proxy guard."""
    base, accounts, url = site
    with another_database_like(url, tmp_path) as local:
        _same_way(base, accounts, url, local, tmp_path)


def _same_way(base, accounts, url, local, tmp_path):
    import subprocess
    import sys

    from conftest import people
    from failwell.governance.store import Governance
    from failwell.kb.store import KnowledgeBase

    def cli(*args: str) -> subprocess.CompletedProcess:  # a fresh process, as a user runs it
        return subprocess.run([sys.executable, "-c", "from failwell.cli import main; main()",
                               *args], capture_output=True, text=True, timeout=300)

    draft = tmp_path / "pm.md"
    draft.write_text(PARITY_POSTMORTEM, encoding="utf-8")
    by_cli = cli("incident", "new", "--from", str(draft), "--db", local, "--format", "json")
    assert by_cli.returncode == 0, by_cli.stderr
    token = accounts.issue_token("contributor", "ci", ["read", "write", "scans"])
    api = client_for(base, headers={"Authorization": f"Bearer {token}"})
    by_api = api.post("/api/incidents", json={"markdown": PARITY_POSTMORTEM})
    assert by_api.status_code == 201, by_api.text
    answer, printed = by_api.json(), json.loads(by_cli.stdout)
    assert answer.pop("created_by") == "contributor"
    assert answer == printed
    assert printed["blame_flags"] and printed["suggestions"] and printed["related"]
    page = login(base, "viewer").get("/incidents/parity-triage?review=1").text
    assert "Suggested tags" in page and "Similar past incidents" in page

    # the same two scans of a project with a proxy guard, by CLI and by upload
    for where in (local, url):
        kb = KnowledgeBase.open(where)
        Governance(kb).add_project(LOAN.read_text())
        kb.close()
    verdicts = []
    for i, bias in enumerate((0.0, 2.5)):
        frame = people(1500, seed=20 + i, label_bias=bias)
        frame["decision"] = ((frame["skill"] > 0) | ((frame["gender"] == "M") & (i == 1))
                             ).astype(int)
        data = tmp_path / f"scan{i}.csv"
        frame.to_csv(data, index=False)
        args = ["scan", str(data), "--target", "hired", "--prediction", "decision",
                "--protected", "gender", "--format", "json", "--fail-on", "critical"]
        ran = cli(*args, "--kb", "--db", local, "--project", "loan-approvals")
        assert ran.returncode == 0, ran.stderr
        result = cli(*args)
        up = api.post("/api/scans", params={"project": "loan-approvals"},
                      json=json.loads(result.stdout))
        assert up.status_code == 201, up.text
        verdicts.append(up.json()["proxy_guard"])
        assert verdicts[-1] in " ".join(ran.stderr.split())  # the CLI printed the same
        assert len(up.json()["related"]) == ran.stderr.count("Lessons from")
    assert up.json()["related"]  # the biased scan: lessons of past incidents
    assert verdicts[0].startswith("proxy guard: no earlier scan")
    assert verdicts[1].startswith("proxy guard:") and "passed" not in verdicts[1]
