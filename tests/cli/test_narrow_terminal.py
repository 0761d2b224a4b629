"""Readable at 80 columns: ids and tags are printed whole (so they can be copied into the next
command), nothing is cut off with an ellipsis, and help shows bracketed extras."""

import json

import pytest
from typer.testing import CliRunner

from failwell.cli import app


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("FAILWELL_DB", str(tmp_path / "kb.sqlite"))
    monkeypatch.setenv("COLUMNS", "80")


def run(*args):
    res = CliRunner().invoke(app, list(args), terminal_width=80)
    assert res.exit_code == 0, res.output
    return res.output


def fits(output):
    assert max(len(line) for line in output.splitlines()) <= 80
    assert "…" not in output
    return output


def test_incident_ids_are_whole(db):
    ids = [r["id"] for r in json.loads(run("incident", "list", "--format", "json"))]
    assert max(map(len, ids)) > 20
    out = fits(run("incident", "list"))
    assert all(i in out for i in ids), [i for i in ids if i not in out]
    hits = json.loads(run("kb", "search", "hospital marker", "--format", "json"))
    out = fits(run("kb", "search", "hospital marker"))
    assert all(h["id"] in out for h in hits)


def test_stats_labels_are_whole(db):
    stats = json.loads(run("kb", "stats", "--period", "quarter", "--format", "json"))
    out = fits(run("kb", "stats", "--period", "quarter"))
    for tag in [*stats["by_pattern"], *stats["by_failure_mode"]]:
        assert tag in out


def test_catalog_and_detectors_names_are_whole(db):
    catalog = json.loads(run("catalog", "--format", "json"))
    out = fits(run("catalog"))
    assert all(m["id"] in out for m in catalog["failure_modes"])
    names = [d["name"] for d in json.loads(run("detectors", "--format", "json"))]
    out = fits(run("detectors"))
    assert all(n in out for n in names)


@pytest.mark.parametrize("command", [["demo", "--help"], ["llm", "grounding", "--help"]])
def test_help_shows_bracketed_extras(db, command):
    """Rich reads "[torch]" as a style tag and drops it unless the help escapes it."""
    import re
    from importlib.metadata import metadata

    out = " ".join(run(*command).split())
    mentioned = set(re.findall(r"failwell\[([\w,]+)\]", out))
    assert mentioned, out
    extras = set(metadata("failwell").get_all("Provides-Extra"))
    assert {e for m in mentioned for e in m.split(",")} <= extras
