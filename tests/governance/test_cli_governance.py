"""Governance commands: bad input is one message, exit 2, and changes nothing."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from failwell.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "governance" / "loan-approvals.yaml"
runner = CliRunner()


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("FAILWELL_DB", str(tmp_path / "kb.sqlite"))
    assert runner.invoke(app, ["project", "new", "--from", str(EXAMPLE)]).exit_code == 0


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def history():
    return json.loads(run("gate", "status", "loan-approvals", "--format", "json").stdout)[
        "history"]


@pytest.mark.parametrize(("args", "message"), [
    (("gate", "review", "loan-approvals", "--gate", "build-validate", "--decision", "go",
      "--rationale", "x", "--reviewer", "cro"), "is at the 'problem-framing' gate"),
    (("gate", "review", "loan-approvals", "--gate", "problem-framing", "--decision", "go",
      "--reviewer", "cro"), "needs a rationale"),
    (("gate", "review", "loan-approvals", "--gate", "problem-framing", "--decision", "maybe",
      "--rationale", "x", "--reviewer", "cro"), "decision 'maybe'"),
    (("gate", "review", "loan-approvals", "--gate", "problem-framing", "--decision",
      "go-with-conditions", "--rationale", "x", "--reviewer", "cro"), "--condition"),
    (("gate", "evidence", "loan-approvals", "--kind", "scan", "--note", "trust me"),
     "computed from the project"),
    (("project", "show", "loan-aproval"), "Did you mean 'loan-approvals'"),
    (("pir", "loan-approvals", "--outcome", "default_rate=high"), "METRIC=NUMBER"),
    (("card", "model", "loan-approvals", "--set", "purpose=x"), "not a model card section"),
    (("project", "new", "--from", EXAMPLE), "already exists"),
])
def test_bad_input_changes_nothing(db, args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert history() == []


def test_a_bad_gate_file_is_refused_before_anything_runs(db, tmp_path):
    gates = tmp_path / "gates.yaml"
    gates.write_text(yaml.safe_dump({"gates": [
        {"id": "a", "after": ["b"]}, {"id": "b", "after": ["a"], "evidence": [{"kind": "scan"}]}
    ]}))
    result = run("gate", "review", "loan-approvals", "--gate", "problem-framing", "--decision",
                 "go", "--rationale", "x", "--reviewer", "cro", "--gates", gates)
    assert result.exit_code == 2 and "cycle" in result.output
    gates.write_text(yaml.safe_dump({"gates": [{"id": "a", "evidence": [{"kind": "sign-off"}]}]}))
    result = run("gate", "status", "loan-approvals", "--gates", gates)
    assert result.exit_code == 2 and "unknown evidence kind 'sign-off'" in result.output
    assert history() == []


def test_scan_project_needs_kb_and_a_known_project(db, tmp_path):
    (tmp_path / "d.csv").write_text("y,p\n1,1\n0,0\n")
    result = run("scan", tmp_path / "d.csv", "--target", "y", "--prediction", "p",
                 "--project", "loan-approvals")
    assert result.exit_code == 2 and "add --kb" in result.output
    result = run("scan", tmp_path / "d.csv", "--target", "y", "--prediction", "p", "--kb",
                 "--project", "loans")
    assert result.exit_code == 2 and "No project 'loans'" in result.output
