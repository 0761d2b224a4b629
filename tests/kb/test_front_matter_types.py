"""Postmortem front matter is checked field by field: text is text, a list is a list of text
(or of the mappings of lessons, action items and contributing factors), dates are dates, the
id is kebab-case and bounded, text is valid Unicode and every field has a size limit. Each
refusal is one InputError naming the field (exit 2 in the CLI), never a TypeError later."""

import json

import pytest
from typer.testing import CliRunner

from failwell.cli import app
from failwell.errors import InputError
from failwell.kb.library import load_library_files
from failwell.kb.postmortem import TEMPLATE, from_dict, from_markdown, to_markdown
from failwell.limits import (
    MAX_ID_CHARS,
    MAX_LIST_ITEMS,
    MAX_PROSE_CHARS,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
)

HEAD = "---\nid: {id}\ntitle: {title}\nseverity: medium\n{extra}\n---\n\n## Summary\n\n{summary}\n"


def doc(extra: str = "", *, id: str = "typed-incident", title: str = "Typed",
        summary: str = "Rows leaked.") -> str:
    return HEAD.format(id=id, title=title, extra=extra, summary=summary)


FACTOR = "contributing_factors:\n- description: A missing check.\n  "
WRONG_TYPES = [  # (front matter, the field the message must name, what it must say)
    (doc(title="[a, b]"), "'title'", "must be text, not a list"),
    (doc(title="{a: 1}"), "'title'", "must be text, not a mapping"),
    (doc(title="5"), "'title'", "put it in quotes"),
    (doc(title="yes"), "'title'", "must be text, not true/false"),
    (doc(id="12345"), "'id'", "must be text, not a number (put it in quotes)"),
    (doc(id="[a]"), "'id'", "must be text, not a list"),
    (doc(FACTOR + "patterns: 5"), "'contributing_factors[0].patterns'", "must be a list"),
    (doc(FACTOR + "patterns: [[1]]"), "'contributing_factors[0].patterns[0]'", "must be text"),
    (doc(FACTOR + "failure_modes: leakage"), "'contributing_factors[0].failure_modes'",
     "must be a list, not text"),
    (doc("contributing_factors: [5]"), "'contributing_factors[0]'", "not a number"),
    (doc("contributing_factors:\n- description: [x]"),
     "'contributing_factors[0].description'", "must be text"),
    (doc("lessons: [[1, 2]]"), "'lessons[0]'", "text or a mapping"),
    (doc("lessons: [5]"), "'lessons[0]'", "not a number"),
    (doc("lessons:\n- text: [a]"), "'lessons[0].text'", "must be text, not a list"),
    (doc("lessons:\n- txt: a"), "'lessons[0]'", "did you mean 'text'"),
    (doc("lessons:\n- text: a\n  applies_to: 5"), "'lessons[0].applies_to'", "must be a list"),
    (doc("lessons:\n- applies_to: [x]"), "'lessons[0].text'", "is required"),
    (doc("action_items: [1]"), "'action_items[0]'", "must be a mapping"),
    (doc("action_items: [do it]"), "'action_items[0]'", "must be a mapping"),
    (doc("action_items:\n- description: d\n  owner: [a]"), "'action_items[0].owner'",
     "must be text"),
    (doc("action_items:\n- description: d"), "'action_items[0].owner'", "is required"),
    (doc("action_items:\n- description: d\n  owner: o\n  status: [a]"),
     "action_items[0].status", "is not one of"),
    (doc("action_items:\n- description: d\n  owner: o\n  due: [a]"), "action_items[0].due",
     "is not a date"),
    (doc("references: 5"), "'references'", "must be a list, not a number"),
    (doc("references: [[1]]"), "'references[0]'", "must be text, not a list"),
    (doc("references: [{a: 1}]"), "'references[0]'", "must be text, not a mapping"),
    (doc("scan_links: 5"), "'scan_links'", "must be a list"),
    (doc("failed_assumptions: abc"), "'failed_assumptions'", "must be a list, not text"),
    (doc("ignored_signals: [{a: 1}]"), "'ignored_signals[0]'", "must be text"),
    (doc("underestimated_constraints: [1]"), "'underestimated_constraints[0]'",
     "must be text, not a number"),
    (doc("impact: [a]"), "'impact'", "must be text, not a list"),
    (doc("project: [a]"), "'project'", "must be text, not a list"),
    (doc("decision_supported: {a: 1}"), "'decision_supported'", "must be text"),
    (doc("status: [a]"), "status", "is not one of"),
    (doc("occurred: [a]"), "occurred", "is not a date"),
    (doc("occurred: 5"), "occurred", "is not a date"),
    (doc("resolved: 2024-02-30"), "resolved", "is not a date"),
]


@pytest.mark.parametrize("text,field,says", WRONG_TYPES,
                         ids=[f"{f}:{s}"[:60] for _, f, s in WRONG_TYPES])
def test_a_wrong_type_is_refused_naming_the_field(text, field, says):
    with pytest.raises(InputError) as refused:
        from_markdown(text, source="pm.md")
    message = str(refused.value)
    assert message.startswith("pm.md: ") and field in message and says in message, message


def test_severity_of_the_wrong_type():
    with pytest.raises(InputError, match=r"severity \['a'\] is not one of"):
        from_markdown(doc().replace("severity: medium", "severity: [a]"))


@pytest.mark.parametrize("bad_id,says", [
    ("../../../etc/passwd", "kebab-case"), ("Upper-Case", "kebab-case"),
    ("-leading-dash", "kebab-case"), ("has space", "kebab-case"), ("a/b", "kebab-case"),
    ("x" * (MAX_ID_CHARS + 1), f"at most {MAX_ID_CHARS}"),
])
def test_incident_ids_are_kebab_case_and_bounded(bad_id, says):
    with pytest.raises(InputError, match=r"field 'id'") as refused:
        from_markdown(doc(id=json.dumps(bad_id)))
    assert says in str(refused.value)
    assert len(str(refused.value)) < 400  # a long refused value is not echoed whole


def test_the_same_id_rule_as_projects():
    from failwell.governance.project import from_dict as project_from_dict

    base = {"name": "n", "problem": "p", "decision": "d", "risk": "low",
            "success_criteria": [{"metric": "m", "target": 1}]}
    for bad_id in ("../x", "x" * (MAX_ID_CHARS + 1)):
        with pytest.raises(InputError, match="kebab-case"):
            project_from_dict({"id": bad_id, **base})
    assert from_markdown(doc(id="a" * MAX_ID_CHARS)).id == "a" * MAX_ID_CHARS


@pytest.mark.parametrize("where,text", [
    ("title (a YAML escape)", doc(title='"a\\ud800b"')),
    ("a list item (a YAML escape)", doc('references: ["\\udfff"]')),
    ("summary (the character itself)", doc(summary="x\ud800y")),
    ("front matter (the character itself)", doc(title="a\udc80")),
])
def test_lone_surrogates_are_refused_with_a_clear_message(where, text):
    with pytest.raises(InputError, match="unpaired surrogate") as refused:
        from_markdown(text)
    assert "valid Unicode" in str(refused.value)


@pytest.mark.parametrize("text,field,limit", [
    (doc(summary="x" * (MAX_TEXT_CHARS + 1)), "'summary'", MAX_TEXT_CHARS),
    (doc(title="x" * (MAX_TITLE_CHARS + 1)), "'title'", MAX_TITLE_CHARS),
    (doc("impact: " + "x" * (MAX_TEXT_CHARS + 1)), "'impact'", MAX_TEXT_CHARS),
    (doc("references: [" + ", ".join(["a"] * (MAX_LIST_ITEMS + 1)) + "]"), "'references'",
     MAX_LIST_ITEMS),
    (doc("lessons:\n- text: " + "x" * (MAX_TEXT_CHARS + 1)), "'lessons[0].text'",
     MAX_TEXT_CHARS),
])
def test_each_field_has_a_size_limit(text, field, limit):
    with pytest.raises(InputError, match=f"at most {limit:,}") as refused:
        from_markdown(text)
    assert field in str(refused.value)


def test_yaml_aliases_cannot_multiply_text_past_the_limit():
    """Each field within its limit, but one 19,000-character anchor repeated 400 times."""
    bomb = doc("impact: &a " + "y" * 19_000 + "\nfailed_assumptions: ["
               + ", ".join(["*a"] * 400) + "]")
    with pytest.raises(InputError, match=f"at most {MAX_PROSE_CHARS:,}"):
        from_markdown(bomb)


def test_deep_nesting_is_a_clear_error_not_a_crash():
    with pytest.raises(InputError, match="nested too deeply"):
        from_markdown(doc("references: " + "[" * 50_000))


def test_the_json_form_has_the_same_checks():
    good = json.loads(json.dumps({"id": "json-form", "title": "T", "severity": "low",
                                  "summary": "S", "timeline": [["2024-01-02", "seen"]]}))
    assert from_dict(good).timeline[0].what == "seen"
    for change, field in [({"title": ["a"]}, "'title'"), ({"summary": 5}, "'summary'"),
                          ({"references": 5}, "'references'"), ({"id": 12345}, "'id'"),
                          ({"timeline": "x"}, "'timeline'"),
                          ({"timeline": [{"when": 5, "what": "w"}]}, "'timeline[0].when'"),
                          ({"timeline": [{"when": "2024", "what": ["w"]}]},
                           "'timeline[0].what'"),
                          ({"timeline": [{"at": "2024"}]}, "'timeline[0]'"),
                          ({"lessons": [{"text": "\ud800"}]}, "'lessons[0].text'")]:
        with pytest.raises(InputError) as refused:
            from_dict({**good, **change}, source="record 1")
        assert field in str(refused.value), str(refused.value)


def test_everything_failwell_ships_still_passes():
    for pm, text in load_library_files():
        assert to_markdown(from_markdown(text)) == text, pm.id
    assert from_markdown(TEMPLATE.format(id="new-incident", title="One line")).id


def test_the_command_line_refuses_with_exit_2_naming_the_field(tmp_path, monkeypatch):
    monkeypatch.setenv("FAILWELL_DB", str(tmp_path / "kb.sqlite"))
    runner = CliRunner()
    for extra, field in [("references: 5", "references"), ("lessons: [[1, 2]]", "lessons[0]"),
                         (FACTOR + "patterns: 5", "contributing_factors[0].patterns")]:
        md = tmp_path / "pm.md"
        md.write_text(doc(extra), encoding="utf-8")
        result = runner.invoke(app, ["incident", "new", "--from", str(md)])
        assert result.exit_code == 2, result.output
        assert field in " ".join(result.output.split()) and "Traceback" not in result.output
