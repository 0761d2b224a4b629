"""Governance on SQLite and PostgreSQL: projects, gates, reviews, cards, PIR, audit log."""

import pytest
import yaml
from sqlalchemy import text

from failwell.db import engine as db
from failwell.errors import InputError, NotFoundError, UnknownIdError
from failwell.governance import cards
from failwell.governance.gates import load_gates
from failwell.governance.post_review import review_outcomes
from failwell.governance.project import from_dict
from failwell.governance.proxy_guard import check
from failwell.governance.store import Governance

PROJECT = {
    "id": "triage", "name": "ED triage", "problem": "Waiting rooms overflow.",
    "decision": "Which patients a nurse sees first.", "risk": "high", "owner": "ED team",
    "success_criteria": [{"metric": "missed_urgent_rate", "target": 0.01, "baseline": 0.03,
                          "measurement": "chart review of 500 visits", "when": "quarterly"}],
    "end_users": [{"group": "triage nurses", "involvement": "co-designed the screen"}],
    "data_sources": [{"name": "ED visits", "owner": "health records", "readiness": "ready"}],
    "proxy_guard": {"proxy": "selection_rate:up", "guardrails": ["recall:up"]},
}


def project_yaml(**changes) -> str:
    return yaml.safe_dump({**PROJECT, **changes}, sort_keys=False)


@pytest.fixture
def gov(kb):
    g = Governance(kb)
    g.add_project(project_yaml(), by="lead")
    return g


@pytest.mark.parametrize(("change", "message"), [
    ({"success_criteria": [{"metric": "x", "target": "better", "measurement": "m",
                            "when": "w"}]}, "no numeric target"),
    ({"success_criteria": [{"metric": "x", "target": 0.5, "direction": "up"}]},
     "no measurement plan"),
    ({"success_criteria": []}, "at least one success criterion"),
    ({"success_criteria": [{"metric": "x", "target": 1, "measurement": "m", "when": "w"}]},
     "direction must be"),
    ({"risk": "extreme"}, "risk 'extreme'"),
    ({"decison": "typo"}, "did you mean 'decision'"),
    ({"data_sources": [{"name": "d", "readiness": "soon"}]}, "readiness 'soon'"),
])
def test_projects_are_refused_with_the_reason(change, message):
    with pytest.raises(InputError, match=message):
        from_dict({**PROJECT, **change})


def test_direction_is_inferred_from_the_baseline():
    criterion = from_dict(PROJECT).success_criteria[0]
    assert criterion.direction == "down" and criterion.met_by(0.009)
    assert not criterion.met_by(0.02)


@pytest.mark.parametrize(("gates", "error", "message"), [
    ({"gates": [{"id": "a", "evidence": [{"kind": "scann"}]}]}, InputError,
     "unknown evidence kind 'scann'. Did you mean 'scan'"),
    ({"gates": [{"id": "a", "after": ["b"]}, {"id": "b", "after": ["a"]}]}, InputError,
     "cycle"),
    ({"gates": [{"id": "a", "after": ["z"]}]}, InputError, "unknown gate 'z'"),
    ({"gates": [{"id": "a", "questions": [{"pattern": "data-optimist", "text": "?"}]}]},
     UnknownIdError, "data-optimism"),
    ({"gates": [{"id": "a", "evidence": [{"kind": "scan", "fail_at": "severe"}]}]},
     InputError, "fail_at 'severe'"),
    ({"gates": [{"id": "a", "evidence": [{"kind": "scan", "below": "high"}]}]}, InputError,
     "unknown parameter"),
])
def test_bad_gate_files(tmp_path, gates, error, message):
    path = tmp_path / "gates.yaml"
    path.write_text(yaml.safe_dump(gates))
    with pytest.raises(error, match=message):
        load_gates(path)


def test_default_gates_in_order():
    assert [g.id for g in load_gates()] == [
        "problem-framing", "data-readiness", "build-validate", "pre-deployment",
        "post-implementation-review"]


def test_review_rules_and_the_audit_log(gov, kb_url):
    with pytest.raises(InputError, match="is at the 'problem-framing' gate"):
        gov.review("triage", "data-readiness", "go", "x", reviewers=["cmo"])
    with pytest.raises(InputError, match="rationale"):
        gov.review("triage", "problem-framing", "go", "  ", reviewers=["cmo"])
    with pytest.raises(InputError, match="reviewers"):
        gov.review("triage", "problem-framing", "go", "fine", reviewers=[])
    with pytest.raises(NotFoundError, match="Did you mean 'triage'"):
        gov.status("triag")
    assert gov.history("triage") == []
    gov.review("triage", "problem-framing", "go", "criteria agreed", reviewers=["cmo"])
    # data readiness: the datasheet is missing, so go is refused...
    with pytest.raises(InputError, match="datasheet"):
        gov.review("triage", "data-readiness", "go", "fine", reviewers=["dpo"])
    assert gov.status("triage", with_lessons=False).stage == "data-readiness"
    # ...a no-go keeps the stage; an override passes and is stored with what was missing
    gov.review("triage", "data-readiness", "no-go", "no datasheet", reviewers=["dpo"])
    status = gov.review("triage", "data-readiness", "go-with-conditions", "urgent pilot",
                        reviewers=["dpo"], conditions_=["write the datasheet in 30 days"],
                        override_reason="pilot limited to one hospital")
    assert status.stage == "build-validate"
    assert [c["description"] for c in status.open_conditions] == [
        "write the datasheet in 30 days"]
    history = gov.history("triage")
    assert [h["decision"] for h in history] == ["go", "no-go", "go-with-conditions"]
    assert history[-1]["override_reason"] == "pilot limited to one hospital"
    assert any(not e["satisfied"] for e in history[-1]["evidence"])
    actions = [(a["action"], a["actor"]) for a in gov.audit("triage")]
    assert actions[0] == ("project.create", "lead") and len(actions) == 4
    engine = db.make_engine(kb_url)
    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    engine.dispose()
    assert len(gov.audit("triage")) == 4


def test_cards_list_missing_sections_and_keep_peoples_text(gov):
    card = gov.save_card("triage", "model")
    gaps = cards.missing(card["sections"])
    assert {"out_of_scope_use", "factors", "evaluation_data", "ethical_considerations"} <= set(
        gaps)  # nothing to fill them from yet: listed, not invented
    assert card["sections"]["intended_use"]["source"] == "project"
    card = gov.save_card("triage", "model", {"out_of_scope_use": "Paediatric <script>"},
                         by="ed lead")
    assert card["version"] == 2
    card = gov.save_card("triage", "model")
    assert card["version"] == 3
    assert card["sections"]["out_of_scope_use"] == {"text": "Paediatric <script>",
                                                    "source": "person"}
    project, _ = gov.project("triage")
    html = cards.to_html("model", project, card)
    assert "Paediatric &lt;script&gt;" in html and "Missing sections" in html
    assert "## Out-of-scope use" in cards.to_markdown("model", project, card)
    with pytest.raises(InputError, match="not a model card section"):
        gov.save_card("triage", "model", {"intended_uses": "x"})


def test_proxy_guard_records_evidence(gov):
    result = check(gov, "triage", {"selection_rate": 0.5, "recall": 0.9},
                   {"selection_rate": 0.6, "recall": 0.8})
    assert result.findings and result.findings[0].failure_mode == "proxy-objective"
    project, _ = gov.project("triage")
    assert gov.latest_evidence(project, "proxy-guard")["passed"] is False
    check(gov, "triage", {"selection_rate": 0.5, "recall": 0.9},
          {"selection_rate": 0.6, "recall": 0.91})
    assert gov.latest_evidence(project, "proxy-guard")["passed"] is True


def test_post_implementation_review(gov):
    with pytest.raises(InputError, match="comes after deployment"):
        review_outcomes(gov, "triage", {"missed_urgent_rate": 0.005})
    gov.review("triage", "problem-framing", "go", "criteria agreed", reviewers=["cmo"])
    for gate in ("data-readiness", "build-validate", "pre-deployment"):
        gov.review("triage", gate, "go", "test shortcut", reviewers=["cmo"],
                   override_reason="unit test: evidence not under test here")
    with pytest.raises(InputError, match="not a success criterion"):
        review_outcomes(gov, "triage", {"missed_urgent": 0.02})
    with pytest.raises(InputError, match="no outcome for missed_urgent_rate"):
        review_outcomes(gov, "triage", {})
    outcomes, postmortem = review_outcomes(gov, "triage", {"missed_urgent_rate": 0.005})
    assert outcomes[0].met and postmortem is None
    outcomes, postmortem = review_outcomes(gov, "triage", {"missed_urgent_rate": 0.02})
    assert not outcomes[0].met
    pm = gov.kb.get(postmortem).postmortem
    assert pm.status == "draft" and pm.project == "triage"
    assert pm.decision_supported == PROJECT["decision"]
    assert "missed_urgent_rate <= 0.01" in pm.success_definition
    assert pm.failed_assumptions == ["missed_urgent_rate would reach 0.01; measured 0.02."]
    assert "problem-framing: go (criteria agreed)" in pm.timeline[0].what
    assert "success-criteria ok" in pm.timeline[0].what
