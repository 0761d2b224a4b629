"""The lessons a stage gate shows fit the gate and the project.

Three example projects (tests/data/gate_projects: the loan project of docs/governance.md, a
head CT triage model, an LLM support assistant with retrieval) are checked gate by gate
against reviewer judgments frozen in expectations.json before the rule was written: the top
three are RELEVANT, never IRRELEVANT. Checked before any evidence (what the board sees at
the first gates) and with the datasheet and scans recorded.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from failwell.findings import ScanResult
from failwell.governance.gate_lessons import LIMIT, project_facts
from failwell.governance.gates import load_gates
from failwell.governance.store import Governance
from failwell.kb.library import load_library
from failwell.kb.postmortem import ContributingFactor, Lesson, Postmortem
from failwell.kb.store import KnowledgeBase

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "gate_projects"
EXPECTED = json.loads((DATA / "expectations.json").read_text())["projects"]
PROJECTS = list(EXPECTED)
LLM_ONLY = {"sycophancy-approval-feedback", "llm-hallucination-grounding",
            "reversal-curse-facts"}


def register(gov: Governance, pid: str) -> None:
    gov.add_project((REPO / EXPECTED[pid]["project_file"]).read_text(), by="test")


def record_evidence(gov: Governance, pid: str) -> None:
    """The datasheet its team wrote and the scans recorded against it."""
    folder = DATA / pid
    gov.save_card(pid, "data", yaml.safe_load((folder / "datasheet.yaml").read_text()),
                  by="test")
    for scan in json.loads((folder / "scans.json").read_text()):
        gov.kb.record_scan(ScanResult.from_dict(scan), project=pid)


def shown(gov: Governance, pid: str) -> dict[str, list]:
    project, _ = gov.project(pid)
    return {gate.id: gov.gate_lessons(project, gate) for gate in gov.gates}


@pytest.fixture
def gov(kb):
    g = Governance(kb)
    for pid in PROJECTS:
        register(g, pid)
    return g


def test_the_expectations_are_well_formed():
    library = {pm.id for pm in load_library()}
    gates = [g.id for g in load_gates()]
    for pid, spec in EXPECTED.items():
        assert (REPO / spec["project_file"]).is_file()
        assert list(spec["gates"]) == gates, pid
        for gate, judged in spec["gates"].items():
            relevant, irrelevant = set(judged["relevant"]), set(judged["irrelevant"])
            assert relevant and relevant <= library and irrelevant <= library, (pid, gate)
            assert not relevant & irrelevant, (pid, gate)


@pytest.mark.parametrize("evidence", [False, True], ids=["before-evidence", "with-evidence"])
def test_every_gate_shows_lessons_a_reviewer_calls_relevant(gov, evidence):
    if evidence:
        for pid in PROJECTS:
            record_evidence(gov, pid)
    problems = []
    for pid in PROJECTS:
        for gate, hits in shown(gov, pid).items():
            judged = EXPECTED[pid]["gates"][gate]
            ids = [h.incident for h in hits]
            assert len(ids) <= LIMIT and len(set(ids)) == len(ids)
            wrong = [i for i in ids if i not in judged["relevant"]]
            if wrong or not ids:
                problems.append(f"{pid} / {gate}: shows {ids}, not relevant: {wrong}")
            assert all(h.reason and h.lessons for h in hits)
    assert not problems, "\n".join(problems)


def test_the_loan_data_gate_shows_the_label_lesson_not_the_llm_cases(gov):
    """The review's finding: the loan data gate listed the LLM sycophancy case."""
    data_gate = shown(gov, "loan-approvals")["data-readiness"]
    assert [h.incident for h in data_gate] == ["resume-screener-gender-bias"]
    reason = data_gate[0].reason
    assert "Were the labels produced by past human decisions" in reason
    assert "protected groups (gender)" in reason
    for pid in ("loan-approvals", "ich-triage"):
        record_evidence(gov, pid)
        for hits in shown(gov, pid).values():
            assert not {h.incident for h in hits} & LLM_ONLY, pid


def test_reasons_name_the_question_and_the_project_link(gov):
    for pid in PROJECTS:
        record_evidence(gov, pid)
    loan = shown(gov, "loan-approvals")
    proxy = loan["pre-deployment"][0]
    assert proxy.incident == "engagement-feedback-loop"
    assert "answers 'Did the proxy metric improve at a guardrail's expense?'" in proxy.reason
    assert "proxy guard" in proxy.reason and "selection_rate" in proxy.reason
    latency = next(h for h in loan["build-validate"] if h.incident == "latency-budget-ensemble")
    assert "latency_ms: 500" in latency.reason
    triage = shown(gov, "ich-triage")["build-validate"][0]
    assert triage.incident == "pneumonia-portable-marker"
    assert "spurious-correlation (scan" in triage.reason and "same domain (medicine)" in \
        triage.reason
    support = shown(gov, "support-assistant")["build-validate"]
    assert any("the gate reviews the project's scans" in h.reason for h in support)
    # the reason travels with the status (JSON and web)
    status = gov.status("loan-approvals").to_dict()
    assert status["lessons"] and all(h["reason"] for h in status["lessons"])


def test_project_facts_come_from_description_datasheet_and_scans(gov):
    facts = {}
    for pid in PROJECTS:
        record_evidence(gov, pid)
        project, _ = gov.project(pid)
        facts[pid] = project_facts(project, gov.project_scans(project),
                                   gov.latest_card(project, "data"))
    assert facts["loan-approvals"].modalities == set()
    assert facts["loan-approvals"].domains == {"lending"}
    assert facts["loan-approvals"].protected == ["gender"]
    assert set(facts["loan-approvals"].scan_modes) == {"group-unfairness",
                                                       "underperforming-slice"}
    assert facts["ich-triage"].modalities == {"vision"}
    assert facts["ich-triage"].domains == {"medicine"}
    assert facts["ich-triage"].latency == ["latency_s: 120"]
    assert facts["support-assistant"].modalities == {"llm"}
    assert facts["support-assistant"].domains == {"customer support"}
    assert facts["support-assistant"].proxy.startswith("deflection_rate:up")


MINIMAL = {"id": "bare", "name": "Bare", "problem": "?", "decision": "?", "risk": "low",
           "success_criteria": [{"metric": "m", "target": 1, "direction": "up",
                                 "measurement": "?", "when": "?"}]}


def test_a_project_without_a_description_gets_nothing_or_general_lessons(kb):
    gov = Governance(kb)
    gov.add_project(yaml.safe_dump(MINIMAL), by="test")
    project, _ = gov.project("bare")
    assert all(gov.gate_lessons(project, g) == [] for g in gov.gates)
    # with a scan, only modality-free incidents about what it found
    scan = json.loads((DATA / "loan-approvals" / "scans.json").read_text())[0]
    scan["findings"] = [f for f in scan["findings"] if f["failure_mode"] == "group-unfairness"]
    kb.record_scan(ScanResult.from_dict(scan), project="bare")
    for gate in gov.gates:
        for hit in gov.gate_lessons(project, gate):
            assert hit.incident not in LLM_ONLY | {"adversarial-panda-stop-sign",
                                                   "pneumonia-portable-marker"}
    assert gov.status("bare").lessons is not None


def test_an_empty_knowledge_base_shows_nothing(kb_url):
    kb = KnowledgeBase.open(kb_url, seed=False)
    try:
        gov = Governance(kb)
        register(gov, "loan-approvals")
        project, _ = gov.project("loan-approvals")
        assert all(gov.gate_lessons(project, g) == [] for g in gov.gates)
    finally:
        kb.close()


def incident(id: str, title: str, *, decision: str, summary: str, modes: list[str],
             patterns: list[str], lesson: str, applies_to: list[str] = ()) -> Postmortem:
    return Postmortem(
        id=id, title=title, severity="medium", occurred=dt.date(2024, 3, 1),
        decision_supported=decision, summary=summary,
        contributing_factors=[ContributingFactor("What made it likely.", patterns, modes)],
        lessons=[Lesson(lesson, list(applies_to))])


UNRELATED = [
    incident("payroll-duplicates", "Payroll export duplicated rows",
             decision="Which salary payments to send.", summary="A retried job wrote twice.",
             modes=["data-quality"], patterns=["governance-lag"],
             lesson="Deduplicate exports and reconcile totals before sending payments."),
    incident("chargeback-leak", "Fraud model read the chargeback flag",
             decision="Which card payments to block as fraud.",
             summary="A field filled in after the chargeback predicted it perfectly.",
             modes=["leakage"], patterns=["data-optimism"],
             lesson="Drop fields recorded after the prediction time."),
    incident("readme-injection", "Code assistant followed instructions hidden in a README",
             decision="Which shell commands the LLM agent runs.",
             summary="The agent ran a command planted in a repository's README.",
             modes=["prompt-injection"], patterns=["governance-lag"],
             lesson="Treat tool output as untrusted; confirm risky commands.",
             applies_to=["llm", "agents"]),
    incident("robot-arm-glossy-boxes", "Warehouse robot arm dropped glossy boxes",
             decision="Where the robot grips each box.",
             summary="The simulator had no glossy packaging.",
             modes=["domain-shift"], patterns=["data-optimism"],
             lesson="Add the real packaging mix to simulation before trials.",
             applies_to=["robotics", "simulation"]),
    incident("proctoring-camera-bias", "Exam proctoring camera flagged darker-skinned students",
             decision="Which exam sessions a proctor reviews.",
             summary="Face detection failed more often for darker skin in the webcam images.",
             modes=["group-unfairness"], patterns=["data-optimism", "governance-lag"],
             lesson="Measure face-detection rates by skin tone before using camera flags.",
             applies_to=["computer-vision", "fairness"]),
    incident("forecast-holiday", "Demand forecast ignored a rare holiday",
             decision="How much stock each store orders.",
             summary="Rare holiday weeks had too few rows to learn.",
             modes=["class-imbalance"], patterns=["data-optimism"],
             lesson="Evaluate rare periods separately from the average week."),
]


def test_unrelated_incidents_change_nothing(gov):
    for pid in PROJECTS:
        record_evidence(gov, pid)
    before = {pid: {g: [h.incident for h in hits] for g, hits in shown(gov, pid).items()}
              for pid in PROJECTS}
    for pm in UNRELATED:
        gov.kb.add(pm)
    after = {pid: {g: [h.incident for h in hits] for g, hits in shown(gov, pid).items()}
             for pid in PROJECTS}
    assert after == before


def test_a_related_new_incident_is_shown_with_its_reason(gov):
    gov.kb.add(incident(
        "mortgage-zip-proxy", "Mortgage model priced applicants by zip code",
        decision="Which mortgage applications are approved, and at what rate.",
        summary="Zip code stood in for race after race was removed from the inputs.",
        modes=["proxy-feature"], patterns=["data-optimism"],
        lesson="Test decisions with each proxy moved to the other group's distribution."))
    loan = shown(gov, "loan-approvals")["data-readiness"]
    hit = next(h for h in loan if h.incident == "mortgage-zip-proxy")
    assert "same domain (lending)" in hit.reason and "protected groups" in hit.reason
    for pid in ("ich-triage", "support-assistant"):
        assert all(h.incident != "mortgage-zip-proxy"
                   for hits in shown(gov, pid).values() for h in hits)


def documented() -> dict[str, list[str]]:
    """The table of docs/governance.md's lessons section: gate -> incidents shown."""
    guide = (REPO / "docs" / "governance.md").read_text()
    section = guide.split("## Which lessons a gate shows", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| Gate")]
    return {gate.strip(): [i.strip() for i in ids.split(",")] for gate, ids in rows}


def test_the_documented_loan_lessons_are_what_the_gates_show(gov):
    table = documented()
    assert list(table) == [g.id for g in gov.gates]
    for evidence in (False, True):
        if evidence:
            record_evidence(gov, "loan-approvals")
        got = {g: [h.incident for h in hits] for g, hits in shown(gov, "loan-approvals").items()}
        assert got == table
