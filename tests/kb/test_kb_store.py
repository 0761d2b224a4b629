"""Storage on SQLite and PostgreSQL: round trips, filters, publishing, transactions."""

import datetime as dt
import json

import pytest

from conftest import postmortem_text
from failwell.errors import InputError, NotFoundError, PublishBlockedError
from failwell.kb.library import load_library_files
from failwell.kb.postmortem import from_markdown
from failwell.kb.store import Filters
from failwell.kb.transfer import export, import_path


def test_fresh_database_holds_the_starter_library(kb):
    assert kb.count() == len(load_library_files()) == 10
    assert kb.seed_library() == 0  # seeding twice adds nothing
    assert kb.count() == 10


def test_markdown_round_trips_exactly_through_the_store(kb, tmp_path):
    for pm, text in load_library_files():
        assert kb.get(pm.id).markdown == text
    # a non-canonical but valid file (extra blank lines, quoted values) comes back unchanged
    odd = postmortem_text("odd", title="Odd layout", summary="Kept as written.")
    odd = odd.replace("title: Odd layout", "title: 'Odd layout'") + "\n\n"
    kb.add(from_markdown(odd), markdown=odd)
    assert export(kb, tmp_path / "out", "md") == 11
    assert (tmp_path / "out" / "odd.md").read_text() == odd
    for pm, text in load_library_files():
        assert (tmp_path / "out" / f"{pm.id}.md").read_text() == text


def test_json_and_csv_export_import_again(kb, tmp_path, kb_url):
    from failwell.kb.store import KnowledgeBase

    export(kb, tmp_path / "all.json", "json")
    export(kb, tmp_path / "all.csv", "csv")
    records = json.loads((tmp_path / "all.json").read_text())
    assert {r["id"] for r in records} == {pm.id for pm, _ in load_library_files()}
    other = KnowledgeBase.open(f"sqlite:///{tmp_path / 'other.sqlite'}", seed=False)
    report = import_path(other, tmp_path / "all.json")
    assert (report.added, report.skipped) == (10, 0)
    for pm, _ in load_library_files():
        assert other.get(pm.id).postmortem == pm  # every field, nested ones included
    again = import_path(other, tmp_path / "all.csv")
    assert (again.added, again.skipped) == (0, 10)  # idempotent across formats


def test_duplicate_id_writes_nothing(kb):
    text = postmortem_text("dup", title="First", summary="One.")
    kb.add(from_markdown(text), markdown=text)
    batch = [(from_markdown(postmortem_text("fresh", title="New", summary="x")), None),
             (from_markdown(text), None)]
    with pytest.raises(InputError, match="dup"):
        kb.add_many(batch)
    assert kb.count() == 11
    with pytest.raises(NotFoundError):
        kb.get("fresh")


def test_filters(kb):
    text = postmortem_text("ward-model", title="Ward model", summary="Ward.", project="icu",
                           modes=("spurious-correlation",), patterns=("data-optimism",),
                           occurred="2030-05-01", severity="low")
    kb.add(from_markdown(text), markdown=text)
    ids = lambda f: {s.id for s in kb.list(f, limit=None)}  # noqa: E731
    assert ids(Filters(failure_modes=["spurious-correlation"])) == {
        "ward-model", "pneumonia-portable-marker", "maze-robot-simulator-shadows"}
    assert ids(Filters(failure_modes=["spurious-correlation"], severities=["low"])) == {
        "ward-model"}
    assert ids(Filters(projects=["icu"])) == {"ward-model"}
    assert ids(Filters(since=dt.date(2030, 1, 1))) == {"ward-model"}
    assert "ward-model" not in ids(Filters(until=dt.date(2029, 12, 31)))
    assert ids(Filters(patterns=["data-optimism"], sources=["user"])) == {"ward-model"}
    assert kb.count(Filters(failure_modes=["reversal-curse"])) == 1


def test_publish_requires_clean_language_or_a_stored_reason(kb):
    text = postmortem_text("blamed", title="Bad deploy",
                           summary="The outage was caused by human error: Dave was careless.")
    kb.add(from_markdown(text), markdown=text)
    with pytest.raises(PublishBlockedError, match="blame-framing"):
        kb.publish("blamed")
    assert kb.get("blamed").postmortem.status == "draft"
    flags = kb.publish("blamed", override_reason="Quoted from the customer's complaint.")
    stored = kb.get("blamed")
    assert flags and stored.postmortem.status == "published"
    assert stored.publish_override["reason"] == "Quoted from the customer's complaint."
    assert stored.publish_override["flags"]
    clean = postmortem_text("clean", title="Clean", summary="No alert covered the drift.")
    kb.add(from_markdown(clean), markdown=clean)
    assert kb.publish("clean") == []
    assert kb.get("clean").publish_override is None
    assert kb.get("clean").published_at is not None

    # a published postmortem stays blameless when edited; accepted wording may stay
    pm = kb.get("clean").postmortem
    pm.summary = "The engineer forgot to check the dashboard."
    with pytest.raises(PublishBlockedError, match="adds blame framing"):
        kb.update(pm)
    assert kb.get("clean").postmortem.summary == "No alert covered the drift."
    pm.summary = "No alert covered the drift for nine days."
    kb.update(pm)
    overridden = kb.get("blamed").postmortem
    overridden.title = "A new title, same accepted wording"
    kb.update(overridden)
    assert kb.get("blamed").postmortem.title == "A new title, same accepted wording"


def test_update_replaces_children_and_refuses_silent_publishing(kb):
    text = postmortem_text("upd", title="Before", summary="x", modes=("leakage",),
                           actions=(("Add a check.", "open"),))
    kb.add(from_markdown(text), markdown=text)
    new = text.replace("leakage", "data-quality").replace("status: open", "status: done")
    kb.update(from_markdown(new), markdown=new)
    assert kb.get("upd").markdown == new
    assert kb.count(Filters(failure_modes=["leakage"])) == 0
    assert kb.action_closure(["upd"]) == {"upd": (1, 1)}
    with pytest.raises(InputError, match="incident publish"):
        kb.update(from_markdown(new.replace("status: draft", "status: published")))
    early = text.replace("id: upd", "id: early").replace("status: draft", "status: published")
    with pytest.raises(InputError, match="incident publish early"):  # nor on the way in
        kb.add(from_markdown(early))
    assert not kb.existing_ids(["early"])
    with pytest.raises(NotFoundError, match=r"Did you mean .upd.\?"):
        kb.get("updd")


def test_delete_cascades(kb):
    kb.delete("pneumonia-portable-marker")
    assert kb.count(Filters(failure_modes=["spurious-correlation"])) == 1
    assert kb.lessons_of(["pneumonia-portable-marker"]) == {"pneumonia-portable-marker": []}


def test_a_read_gives_back_exactly_what_the_markdown_says(tmp_path):
    """Reads build the postmortem from the document derived on write, not by parsing the
    Markdown again; both must agree for every section."""
    from conftest import postmortem_text
    from failwell.kb.postmortem import from_markdown
    from failwell.kb.store import KnowledgeBase

    text = postmortem_text("full-record", title="Every section", summary="A summary.",
                           project="p", modes=("leakage",), patterns=("data-optimism",),
                           actions=(("Add a split check", "done"), ("Audit ids", "open")),
                           lessons=("Split by patient, not by image.",))
    kb = KnowledgeBase.open(f"sqlite:///{tmp_path / 'kb.sqlite'}")
    try:
        kb.add(from_markdown(text), markdown=text)
        for slug in ["full-record", *[i.id for i in kb.list(limit=None)]]:
            stored = kb.get(slug)
            assert stored.postmortem == from_markdown(stored.markdown, source=slug), slug
    finally:
        kb.close()


def test_library_file_names_are_their_ids():
    """Opening a seeded knowledge base skips parsing the library by its file names, which
    holds only while every file is named after its id."""
    from failwell.kb.library import library_names, load_library

    assert library_names() == {pm.id for pm in load_library()}
