"""The web app in a real browser: Playwright driving Debian's Chromium (headless), against
the app served on loopback. Write a postmortem, see the blame flag appear while typing,
reword it, save, publish, find it by search.

``make test`` finds or installs Chromium (scripts/test-browser.sh) and passes its path in
FAILWELL_CHROMIUM. Set FAILWELL_SCREENSHOTS=docs/screenshots to refresh the README's
pictures.
"""

import os
from pathlib import Path

import pytest

playwright = pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")

from conftest import LoopbackServer  # noqa: E402
from failwell.web.app import create_app  # noqa: E402

CHROMIUM = os.environ.get("FAILWELL_CHROMIUM", "")
PASSWORD = "correct horse battery"
BLAME = "The engineer forgot to check the vendor's release notes."
REWORDED = "No step in the release process compared vendor versions."
DRAFT = f"""---
id: vendor-drift
title: Scoring inputs drifted after a vendor update
severity: high
status: draft
project: credit-scoring
---

## Summary

{BLAME}
"""


@pytest.fixture
def browser():
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("FAILWELL_CHROMIUM is not set: `make test` finds or installs Chromium")
        pytest.skip("no Chromium (FAILWELL_CHROMIUM)")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def base(tmp_path):
    app = create_app(f"sqlite:///{tmp_path / 'kb.sqlite'}")
    app.state.accounts.add_user("ana", PASSWORD, "contributor")
    app.state.accounts.add_user("rui", PASSWORD, "reviewer")
    from failwell.governance.store import Governance

    loan = Path(__file__).resolve().parents[2] / "examples/governance/loan-approvals.yaml"
    Governance(app.state.kb).add_project(loan.read_text())
    server = LoopbackServer(app)
    yield server.url
    server.stop()
    app.state.kb.close()


def test_write_flag_reword_publish_and_find(browser, base, tmp_path):
    shots = Path(os.environ.get("FAILWELL_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.set_default_timeout(30_000)  # the first search loads the embedding model
    page.goto(f"{base}/incidents")
    assert "/login" in page.url  # pages need a login
    page.fill("input[name=username]", "ana")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/incidents")
    page.goto(f"{base}/dashboard")
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)

    page.click("text=Incidents")
    page.click("text=New postmortem")
    page.fill("#markdown", DRAFT)
    flag = page.locator("#flags li.flag").first
    flag.wait_for()
    assert "forgot" in flag.inner_text()
    page.screenshot(path=str(shots / "postmortem-blame-flag.png"), full_page=True)
    page.fill("#markdown", DRAFT.replace(BLAME, REWORDED))
    page.locator("#flags li.clean").wait_for()  # the flag is gone while typing
    page.click("text=Save draft")
    page.wait_for_url(f"{base}/incidents/vendor-drift?review=1")
    review = page.inner_text("section.review")  # what `failwell incident new` prints
    assert "No blame framing found" in review and "Similar past incidents" in review
    page.screenshot(path=str(shots / "postmortem-review.png"), full_page=True)
    page.click("button:has-text('Publish')")
    page.wait_for_url(f"{base}/incidents/vendor-drift")
    assert "published" in page.inner_text("main")

    page.goto(f"{base}/incidents")
    page.fill("input[name=q]", "release process vendor versions")
    page.click("button:has-text('Search')")
    link = page.locator("a", has_text="Scoring inputs drifted after a vendor update")
    link.wait_for()
    page.screenshot(path=str(shots / "search.png"), full_page=True)
    link.click()
    assert page.url.endswith("/incidents/vendor-drift")

    page.click("header >> text=Lessons")
    page.fill("input[name=q]", "We will screen job applicants with a model trained on our "
                               "past hiring decisions.")
    page.click("button:has-text('Find lessons')")
    page.locator("a", has_text="screen").first.wait_for()
    page.screenshot(path=str(shots / "lessons.png"), full_page=True)


def test_a_reviewer_takes_a_project_through_a_gate(browser, base, tmp_path):
    shots = Path(os.environ.get("FAILWELL_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.set_default_timeout(30_000)
    page.goto(f"{base}/login?next=/projects")
    page.fill("input[name=username]", "rui")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.click("text=Small-business loan approvals")
    assert "Gate:" in page.inner_text("main")
    page.select_option("select[name=decision]", "no-go")
    page.click("text=Record decision")  # no rationale: refused, with the reason
    assert "rationale" in page.inner_text("div.error")
    page.select_option("select[name=decision]", "go")
    page.fill("textarea[name=rationale]", "Criteria are measurable; users were consulted.")
    page.fill("textarea[name=reviewers]", "risk officer\nproduct owner")
    page.click("text=Record decision")
    page.wait_for_url(f"{base}/projects/loan-approvals")
    history = page.inner_text("main")
    assert "problem-framing\tgo\tCriteria are measurable" in history
    assert "Gate: Data readiness" in history  # the project moved on to the next gate
    page.screenshot(path=str(shots / "project-gate.png"), full_page=True)

    # data readiness: go on with the datasheet missing, on a condition, then close it
    page.select_option("select[name=decision]", "go-with-conditions")
    page.fill("textarea[name=rationale]", "Ledger is ready; the datasheet is being written.")
    page.fill("textarea[name=reviewers]", "risk officer")
    page.fill("textarea[name=conditions]", "Publish the loan ledger datasheet.")
    page.fill("input[name=override_reason]", "The datasheet is due before the build review.")
    page.click("text=Record decision")
    page.wait_for_url(f"{base}/projects/loan-approvals")
    assert "Publish the loan ledger datasheet." in page.inner_text("main")
    page.click("button:has-text('Close')")
    page.wait_for_url(f"{base}/projects/loan-approvals")
    main = page.inner_text("main")
    assert "Open conditions" not in main and "condition.update" in main  # in the audit trail
