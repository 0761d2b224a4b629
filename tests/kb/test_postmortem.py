"""Postmortems as Markdown: exact round trip, validation messages, and the starter library."""

import datetime as dt
from importlib import resources

import pytest
from typer.testing import CliRunner

from failwell.cli import app
from failwell.errors import InputError, UnknownIdError
from failwell.kb.blameless import lint
from failwell.kb.library import load_library
from failwell.kb.people import first_names
from failwell.kb.postmortem import from_markdown, to_markdown

LIBRARY = resources.files("failwell").joinpath("kb", "library")


def _files():
    return sorted((f for f in LIBRARY.iterdir() if f.name.endswith(".md")), key=lambda f: f.name)


@pytest.mark.parametrize("path", _files(), ids=lambda f: f.name)
def test_library_file_round_trips_unchanged_and_is_blameless(path):
    text = path.read_text("utf-8")
    pm = from_markdown(text, source=path.name)
    assert to_markdown(pm) == text
    assert lint(pm.text()) == []
    assert pm.patterns and pm.failure_modes and pm.lessons and pm.action_items
    assert pm.status == "published" and pm.summary and pm.references
    for item in pm.action_items:  # owners are roles or teams, never a named person
        assert not any(w[0].isupper() and w.lower() in first_names()
                       for w in item.owner.split())


def test_library_covers_the_classic_cases():
    modes = set().union(*(pm.failure_modes for pm in load_library()))
    assert {"proxy-objective", "historical-bias", "adversarial-fragility", "domain-shift",
            "hallucination", "reversal-curse", "sycophancy", "silent-data-corruption",
            "latency-budget", "spurious-correlation"} <= modes
    assert len(load_library()) >= 10


GOOD = """---
id: demo
title: Demo incident
severity: medium
occurred: 2024-01-02
contributing_factors:
- description: The check compared ids only.
  patterns:
  - data-optimism
  failure_modes:
  - leakage
---

## Summary

Rows leaked.
"""


def test_minimal_postmortem_parses():
    pm = from_markdown(GOOD)
    assert pm.occurred == dt.date(2024, 1, 2) and pm.status == "draft"
    assert pm.failure_modes == {"leakage"}


@pytest.mark.parametrize("broken,message", [
    ("no front matter here", "no front matter"),
    (GOOD.replace("severity: medium", "severity: [medium"), "malformed front matter"),
    (GOOD.replace("2024-01-02", "2024-13-45"), "is not a date"),
    (GOOD.replace("severity: medium", "severity: urgent"), "not one of"),
    (GOOD.replace("title: Demo incident\n", ""), "'title' is required"),
    (GOOD.replace("occurred:", "ocurred:"), "did you mean 'occurred'"),
])
def test_bad_postmortems_get_one_clear_message(broken, message):
    with pytest.raises(InputError, match=message):
        from_markdown(broken)


def test_unknown_taxonomy_id_suggests_close_ones():
    with pytest.raises(UnknownIdError, match="leakage"):
        from_markdown(GOOD.replace("  - leakage", "  - leakge"))
    with pytest.raises(UnknownIdError, match="data-optimism"):
        from_markdown(GOOD.replace("  - data-optimism", "  - data-optimist"))


def test_library_files_lint_clean_through_the_cli(tmp_path):
    path = tmp_path / "pm.md"
    path.write_text(_files()[0].read_text("utf-8"))
    assert CliRunner().invoke(app, ["incident", "lint", str(path)]).exit_code == 0


def test_windows_line_endings_parse_like_plain_ones():
    from failwell.kb.postmortem import TEMPLATE, from_markdown

    text = TEMPLATE.format(id="crlf", title="Line endings")
    assert from_markdown(text.replace("\n", "\r\n")) == from_markdown(text)
