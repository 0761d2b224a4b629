"""The knowledge-base commands through the CLI runner, on a SQLite file per test."""

import json

import pytest
from typer.testing import CliRunner

from conftest import postmortem_text
from failwell.cli import app

runner = CliRunner()


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "kb.sqlite"
    monkeypatch.setenv("FAILWELL_DB", str(path))
    return path


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_search_json_contract_on_a_fresh_database(db):
    result = run("kb", "search", "model learned a hospital marker", "--format", "json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert hits[0]["id"] == "pneumonia-portable-marker"
    assert {"id", "title", "score"} <= set(hits[0])


def test_incident_lifecycle(db, tmp_path):
    md = tmp_path / "pm.md"
    text = postmortem_text("ward-alerts", title="Ward alert model ignored night shifts",
                           summary="The on-call engineer failed to check the dashboard.",
                           project="ward-alerts", modes=("underperforming-slice",))
    md.write_text(text)
    new = run("incident", "new", "--from", md, "--format", "json")
    assert new.exit_code == 0, new.output
    report = json.loads(new.stdout)
    assert report["blame_flags"] and report["status"] == "draft"
    assert run("incident", "show", "ward-alerts").stdout == text
    assert run("incident", "new", "--from", md).exit_code == 2  # same id twice
    blocked = run("incident", "publish", "ward-alerts")
    assert blocked.exit_code == 2 and "blame-framing" in blocked.output
    reworded = text.replace("The on-call engineer failed to check the dashboard.",
                            "No alert paged anyone when the night-shift recall dropped.")
    md.write_text(reworded)
    assert run("incident", "lint", md).exit_code == 0
    assert run("incident", "edit", "ward-alerts", "--from", md).exit_code == 0
    assert run("incident", "publish", "ward-alerts").exit_code == 0
    listed = json.loads(run("incident", "list", "--status", "published", "--source", "user",
                            "--format", "json").stdout)
    assert [r["id"] for r in listed] == ["ward-alerts"]
    found = json.loads(run("kb", "search", "night shift alerts", "--format", "json").stdout)
    assert found[0]["id"] == "ward-alerts"


def test_invalid_edit_keeps_the_stored_version(db, tmp_path):
    before = run("incident", "show", "pneumonia-portable-marker").stdout
    bad = tmp_path / "bad.md"
    bad.write_text(before.replace("severity: high", "severity: urgent"))
    result = run("incident", "edit", "pneumonia-portable-marker", "--from", bad)
    assert result.exit_code == 2 and "severity 'urgent'" in result.output
    assert "Traceback" not in result.output
    assert run("incident", "show", "pneumonia-portable-marker").stdout == before


@pytest.mark.parametrize(("args", "message"), [
    (("incident", "show", "pneumonia"), "Did you mean"),
    (("kb", "search", "x", "--failure-mode", "spurious"), "Unknown failure mode"),
    (("kb", "search", "x", "--since", "2024-13-01"), "not a date"),
    (("kb", "stats", "--period", "week"), "--period 'week'"),
    (("kb", "import", "missing.json"), "No such file"),
    (("kb", "export", "out", "--format", "xml"), "export format 'xml'"),
])
def test_bad_input_is_one_message_and_exit_2(db, args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_newer_schema_is_refused(db):
    import sqlite3

    run("kb", "info")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    result = run("kb", "search", "marker")
    assert result.exit_code == 2 and "newer than this failwell" in result.output


def test_export_import_stats_and_lessons(db, tmp_path):
    assert run("kb", "export", tmp_path / "md").exit_code == 0
    assert len(list((tmp_path / "md").glob("*.md"))) == 10
    other = tmp_path / "other.sqlite"
    imported = run("kb", "import", tmp_path / "md", "--db", other, "--no-embed",
                   "--format", "json")
    assert json.loads(imported.stdout)["skipped"] == 10  # the library is already there
    stats = json.loads(run("kb", "stats", "--format", "json").stdout)
    assert stats["incidents"] == 10 and 0 < stats["action_closure_rate"] <= 1
    lessons = json.loads(run("lessons", "for", "A chatbot that answers from our policy "
                             "documents", "--format", "json").stdout)
    assert lessons[0]["incident"] == "llm-hallucination-grounding"


def test_scan_with_kb_records_findings_and_prints_lessons(db, tmp_path):
    from conftest import people

    frame = people(3000, seed=1, label_bias=1.5)  # labels favour one gender: historical bias
    frame["decision"] = frame["hired"]
    frame.to_csv(tmp_path / "d.csv", index=False)
    result = run("scan", tmp_path / "d.csv", "--target", "hired", "--prediction", "decision",
                 "--protected", "gender", "--kb", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["findings"]  # the JSON report on stdout stays clean
    assert "Recorded as scan 1" in result.stderr
    assert "Lessons from Résumé screener" in result.stderr
    (tmp_path / "scan.json").write_text(result.stdout)
    lessons = json.loads(run("lessons", "for", tmp_path / "scan.json", "--format", "json").stdout)
    assert lessons[0]["incident"] == "resume-screener-gender-bias"
    assert "historical-bias" in lessons[0]["failure_modes"]


def test_info_and_embed(db):
    info = run("kb", "info")
    from failwell.db.engine import head_revision

    head = head_revision()
    assert info.exit_code == 0 and f"schema: {head} (head {head})" in info.output
    assert "incidents: 10" in info.output
    assert run("kb", "embed").exit_code == 0


def test_incident_new_interactively(db):
    answers = "\n".join([
        "Loan model approved fewer applicants from one district",  # title
        "",  # id: accept the default slug
        "credit-scoring",  # project
        "high",  # severity
        "2025-03-02",  # occurred
        "Applicants in one district were declined twice as often.",  # impact
        "Approve or decline small loans.",  # decision
        "Default rate below 3 %.",  # success definition
        "The model was trained on ten years of past lending decisions, which encoded "
        "historical bias against the district.",  # summary
    ]) + "\n" + "y\n" * 10
    result = runner.invoke(app, ["incident", "new"], input=answers)
    assert result.exit_code == 0, result.output
    slug = "loan-model-approved-fewer-applicants-from-one-district"
    assert f"Recorded {slug} as draft" in result.output
    stored = json.loads(run("incident", "show", slug, "--format", "json").stdout)
    assert stored["project"] == "credit-scoring" and stored["occurred"] == "2025-03-02"
    tags = {m for f in stored["contributing_factors"] for m in f["failure_modes"]}
    assert "historical-bias" in tags  # suggested, then confirmed with "y"


def test_incident_edit_in_the_editor(db, tmp_path, monkeypatch):
    script = tmp_path / "editor.sh"
    script.write_text("#!/bin/sh\nsed -i 's/^severity: high/severity: critical/' \"$1\"\n")
    script.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(script))
    monkeypatch.setenv("VISUAL", str(script))
    result = run("incident", "edit", "pneumonia-portable-marker")
    assert result.exit_code == 0, result.output
    shown = run("incident", "show", "pneumonia-portable-marker").stdout
    assert "severity: critical" in shown
    script.write_text("#!/bin/sh\nsed -i 's/^severity: critical/severity: dire/' \"$1\"\n")
    broken = run("incident", "edit", "pneumonia-portable-marker")
    assert broken.exit_code == 2 and "kept in" in broken.output
    assert run("incident", "show", "pneumonia-portable-marker").stdout == shown


def test_export_never_replaces_files_without_force(tmp_path):
    from typer.testing import CliRunner

    db = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    target = tmp_path / "all.json"
    target.write_text("my own notes\n")
    refused = CliRunner().invoke(app, ["kb", "export", str(target), "--format", "json",
                                       "--db", db])
    assert refused.exit_code == 2 and "--force" in refused.output
    assert target.read_text() == "my own notes\n"  # untouched
    done = CliRunner().invoke(app, ["kb", "export", str(target), "--format", "json",
                                    "--db", db, "--force"])
    assert done.exit_code == 0 and target.read_text().startswith("[")
    folder = tmp_path / "md"
    assert CliRunner().invoke(app, ["kb", "export", str(folder), "--db", db]).exit_code == 0
    again = CliRunner().invoke(app, ["kb", "export", str(folder), "--db", db])
    assert again.exit_code == 2 and "would be replaced" in again.output


def test_an_unfilled_template_is_refused_and_a_draft_can_be_deleted(tmp_path):
    from typer.testing import CliRunner

    db = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    template = CliRunner().invoke(app, ["incident", "template", "--id", "blank"]).stdout
    blank = tmp_path / "blank.md"
    blank.write_text(template)
    refused = CliRunner().invoke(app, ["incident", "new", "--from", str(blank), "--db", db])
    assert refused.exit_code == 2 and "nothing filled in" in refused.output
    filled = tmp_path / "filled.md"
    filled.write_text(postmortem_text("typo-draft", title="A draft made by mistake",
                                      summary="Recorded twice by mistake."))
    assert CliRunner().invoke(app, ["incident", "new", "--from", str(filled), "--db",
                                    db]).exit_code == 0
    gone = CliRunner().invoke(app, ["incident", "delete", "typo-draft", "--yes", "--db", db])
    assert gone.exit_code == 0, gone.output
    shown = CliRunner().invoke(app, ["incident", "show", "typo-draft", "--db", db])
    assert shown.exit_code == 2
    kept = CliRunner().invoke(app, ["incident", "delete", "pneumonia-portable-marker",
                                    "--yes", "--db", db])
    assert kept.exit_code == 2 and "published" in kept.output
    audit = CliRunner().invoke(app, ["gate", "audit", "--db", db, "--format", "json"])
    assert "incident.delete" in audit.stdout


def test_a_published_postmortem_is_retired_not_deleted(db):
    query = ["kb", "search", "pneumonia model read the portable marker", "--format", "json"]
    assert json.loads(run(*query).stdout)[0]["id"] == "pneumonia-portable-marker"
    lessons = ["lessons", "for", "a triage model trained on one hospital's images", "--format",
               "json"]
    assert "pneumonia-portable-marker" in run(*lessons).stdout
    before = json.loads(run("kb", "stats", "--format", "json").stdout)["incidents"]
    assert run("incident", "retire", "pneumonia-portable-marker").exit_code == 2  # no reason
    done = run("incident", "retire", "pneumonia-portable-marker", "--reason",
               "superseded by the multi-site study")
    assert done.exit_code == 0, done.output
    assert "pneumonia-portable-marker" not in run(*query).stdout
    assert "pneumonia-portable-marker" not in run(*lessons).stdout
    assert json.loads(run("kb", "stats", "--format", "json").stdout)["incidents"] == before - 1
    listed = json.loads(run("incident", "list", "--format", "json").stdout)
    assert "pneumonia-portable-marker" not in [r["id"] for r in listed]
    retired = json.loads(run("incident", "list", "--status", "retired", "--format",
                             "json").stdout)
    assert [r["id"] for r in retired] == ["pneumonia-portable-marker"]
    assert "status: retired" in run("incident", "show", "pneumonia-portable-marker").stdout
    found = json.loads(run(*query, "--status", "retired").stdout)
    assert [h["id"] for h in found] == ["pneumonia-portable-marker"]
    audit = run("gate", "audit", "--format", "json").stdout
    assert "incident.retire" in audit and "superseded by the multi-site study" in audit
    again = run("incident", "retire", "pneumonia-portable-marker", "--reason", "twice")
    assert again.exit_code == 2 and "only published" in again.output
