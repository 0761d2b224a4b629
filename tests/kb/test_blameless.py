"""Blameless-language check: who does what, negations and mentions, the classifier, the CLI.

Precision and recall are measured on the frozen set in ``tests/test_frozen_sets.py``; the
labelled sets in ``tests/data`` and ``tests/data/tuning`` only train and tune.
"""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import failwell.kb.blameless
from failwell.cli import app
from failwell.kb.blameless import check_sentence, lint, split_sentences

DATA = Path(__file__).parents[1] / "data"


def test_tuning_sets_train_the_shipped_classifier():
    """The weights file names the tuning files it was trained on; none is a frozen set."""
    import hashlib
    import json

    weights = json.loads((Path(failwell.kb.blameless.__file__).with_name("data")
                          / "blame_model.json").read_text())
    root = Path(__file__).parents[2]
    for line in weights["trained_on"]:
        digest, name = line.split()
        assert "frozen" not in name
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("sentence", [
    "This was not a human error.",
    "No human error was involved.",
    "Calling this human error would hide the missing check.",
    "Rather than human error, the cause was an unclear format.",
    "The developer was not negligent.",
    "Nobody was at fault.",
    "The alert failed to fire.",
    "The pipeline should have rejected the file.",
    "On-call engineers should have read-only access to the model registry.",
    "We avoid the phrase 'human error' because it ends the inquiry.",
    "Amara noticed the drift and rolled back the release within ten minutes.",
    "The user error rate rose from 0.3% to 2.1% after the form change.",
    "The release manager did not skip any step that the process required.",
])
def test_negations_mentions_and_system_subjects_are_not_flagged(sentence):
    assert check_sentence(sentence, model=False) == []


@pytest.mark.parametrize("sentence,rule", [
    ("This was human error.", "error-label"),
    ("The engineer failed to run the migration.", "person-failed"),
    ("Sarah should have reviewed the card.", "person-failed"),
    ("The analyst was careless.", "character"),
    ("It was the operator's fault.", "fault"),
    ("Oluwaseun forgot to re-run the evaluation after the refresh.", "person-failed"),
    ("Thandiwe merged the unreviewed threshold change.", "person-failed"),
    ("You never checked the split.", "person-failed"),
    ("If Priya had read the alert, none of this would have happened.",
     "counterfactual-person"),
    ("The wrong labels were applied by the night shift.", "passive-blame"),
    ("The reviewer rubber-stamped the pull request.", "person-failed"),
    ("The data loss was the result of an administrator error.", "error-label"),
])
def test_blame_is_flagged_with_a_suggestion(sentence, rule):
    (flag,) = check_sentence(sentence, model=False)
    assert flag.rule == rule and flag.suggestion and flag.trigger.lower() in sentence.lower()


def test_the_classifier_reads_blame_without_a_keyword_and_names_who():
    pytest.importorskip("sentence_transformers")
    sentence = "Kwame pushed the retrained model straight to prod on Friday night."
    assert check_sentence(sentence, model=False) == []
    (flag,) = check_sentence(sentence, model=True)
    assert flag.rule == "reads-as-blame" and flag.person == "Kwame" and "p = " in flag.why
    assert check_sentence("Kwame rolled back the release within ten minutes.",
                          model=True) == []


def test_work_is_linear_in_hostile_input():
    import time

    text = "the engineer failed to check while Marta merged the wrong change " * 20_000
    start = time.perf_counter()
    lint(text, model=False)
    assert time.perf_counter() - start < 10  # 1.3 MB without a sentence break


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
