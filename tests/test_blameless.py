"""Blameless-language check: precision and recall on labelled sentences, negation, the CLI.

``blameless_sentences.csv`` (154) was written first and the rules were developed against it;
``blameless_heldout.csv`` (50) was written after the rules were frozen and never tuned on.
"""

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from failwell.cli import app
from failwell.kb.blameless import check_sentence, lint, split_sentences

DATA = Path(__file__).parent / "data"


def precision_recall(name: str) -> tuple[float, float, int]:
    with (DATA / name).open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    flagged = [(bool(check_sentence(r["sentence"])), r["label"] == "blame") for r in rows]
    tp = sum(f and b for f, b in flagged)
    fp = sum(f and not b for f, b in flagged)
    fn = sum(b and not f for f, b in flagged)
    return tp / (tp + fp), tp / (tp + fn), len(rows)


def test_labelled_set_precision_and_recall():
    precision, recall, n = precision_recall("blameless_sentences.csv")
    assert n >= 150
    assert precision >= 0.9 and recall >= 0.9


def test_heldout_set_precision_and_recall():
    precision, recall, n = precision_recall("blameless_heldout.csv")
    assert n >= 50
    # measured when frozen: precision 1.00, recall 0.88 (misses: sentence-initial first
    # names not in the list, e.g. "Ingrid forgot to ...")
    assert precision >= 0.9 and recall >= 0.85


@pytest.mark.parametrize("sentence", [
    "This was not a human error.",
    "No human error was involved.",
    "Calling this human error would hide the missing check.",
    "Rather than human error, the cause was an unclear format.",
    "The developer was not negligent.",
    "Nobody was at fault.",
    "The alert failed to fire.",
    "The pipeline should have rejected the file.",
])
def test_negations_and_system_subjects_are_not_flagged(sentence):
    assert check_sentence(sentence) == []


@pytest.mark.parametrize("sentence,rule", [
    ("This was human error.", "error-label"),
    ("The engineer failed to run the migration.", "person-failed"),
    ("Sarah should have reviewed the card.", "person-failed"),
    ("The analyst was careless.", "character"),
    ("It was the operator's fault.", "fault"),
])
def test_blame_is_flagged_with_a_suggestion(sentence, rule):
    (flag,) = check_sentence(sentence)
    assert flag.rule == rule and flag.suggestion and flag.trigger.lower() in sentence.lower()


def test_markdown_front_matter_and_headings_are_skipped():
    doc = "---\ntitle: human error\n---\n# Human error?\n\n- The alert failed to fire.\n"
    assert split_sentences(doc) == ["The alert failed to fire."]
    assert lint(doc) == []


def test_cli_exit_codes_and_json(tmp_path):
    runner = CliRunner()
    blame = tmp_path / "pm.md"
    blame.write_text("# Postmortem\n\nThe engineer failed to check the dashboard. "
                     "The alert failed to fire.\n")
    res = runner.invoke(app, ["incident", "lint", str(blame)])
    assert res.exit_code == 1 and "suggest" in res.output
    res = runner.invoke(app, ["incident", "lint", str(blame), "--format", "json"])
    (hit,) = json.loads(res.stdout)
    assert hit["sentence"] == "The engineer failed to check the dashboard."
    clean = tmp_path / "ok.md"
    clean.write_text("The deploy tool allowed the migration to be skipped.\n")
    assert runner.invoke(app, ["incident", "lint", str(clean)]).exit_code == 0
    res = runner.invoke(app, ["incident", "lint", str(tmp_path / "missing.md")])
    assert res.exit_code == 2 and "No such file" in res.output
