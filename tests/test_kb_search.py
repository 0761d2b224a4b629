"""Search, suggestions, recurrence, lessons and learning analytics over a real store."""

import datetime as dt

import pytest

from conftest import postmortem_text
from failwell.errors import InputError
from failwell.kb.classify import suggest
from failwell.kb.lessons import lessons_for_scan, lessons_for_text
from failwell.kb.library import load_library
from failwell.kb.postmortem import from_markdown
from failwell.kb.recurrence import related_incidents
from failwell.kb.search import search
from failwell.kb.stats import learning_stats
from failwell.kb.store import Filters

pytest.importorskip("sentence_transformers")


@pytest.mark.parametrize("mode", ["combined", "fulltext", "semantic"])
def test_the_pneumonia_case_is_found_by_every_mode(kb, mode):
    hits = search(kb, "model learned a hospital marker", mode=mode)
    assert hits[0].id == "pneumonia-portable-marker"


def test_semantic_search_finds_a_paraphrase_with_no_shared_words(kb):
    query = "weights got garbled by broken chips"
    assert search(kb, query, mode="fulltext")[0].id != "silent-data-corruption-cluster"
    assert search(kb, query, mode="semantic")[0].id == "silent-data-corruption-cluster"
    assert "silent-data-corruption-cluster" in [h.id for h in search(kb, query, limit=3)]


def test_filters_apply_to_every_mode(kb):
    for mode in ("combined", "fulltext", "semantic"):
        hits = search(kb, "model learned a hospital marker", Filters(severities=["medium"]),
                      mode=mode)
        assert hits and "pneumonia-portable-marker" not in {h.id for h in hits}
        assert {h.severity for h in hits} == {"medium"}


def test_bad_queries(kb):
    with pytest.raises(InputError, match="empty"):
        search(kb, "   ")
    with pytest.raises(InputError, match="mode"):
        search(kb, "x", mode="fuzzy")
    assert search(kb, "zzqx wvvk", mode="fulltext") == []


def _precision_recall(cases):
    tp = fp = total = 0
    for text, truth in cases:
        got = {s.id for s in suggest(text)}
        tp, fp, total = tp + len(got & truth), fp + len(got - truth), total + len(truth)
    return tp / (tp + fp), tp / total


def test_suggestions_on_the_library_held_out_cases_and_clean_controls():
    import json
    from pathlib import Path

    library = [(pm, pm.patterns | pm.failure_modes) for pm in load_library()]
    precision, recall = _precision_recall(library)
    assert precision >= 0.65 and recall >= 0.6  # tuned here: 0.69 / 0.63
    rows = (Path(__file__).parent / "data" / "suggestion_heldout.jsonl").read_text()
    held = [(r["text"], set(r["tags"])) for r in map(json.loads, rows.splitlines())]
    precision, recall = _precision_recall(held)
    assert precision >= 0.5 and recall >= 0.45  # never tuned on: 0.55 / 0.47
    for text in ("We baked sourdough bread for the team picnic. The oven was preheated to "
                 "250 degrees. Everyone enjoyed the crust and the sunny weather.",
                 "The office moved to the third floor over the weekend. Desks were labelled "
                 "and the movers finished by Sunday evening."):
        assert [s for s in suggest(text) if s.kind == "failure_mode"] == []


def test_suggestions_point_at_the_sentence_and_rules_work_without_embeddings():
    text = ("The ranking model was tuned for click-through rate. Long-term satisfaction "
            "fell. A bit flip in one accelerator corrupted the weights.")
    found = {s.id: s for s in suggest(text, use_embeddings=False)}
    assert found["proxy-objective"].sentence.startswith("The ranking model")
    assert "bit flip" in found["silent-data-corruption"].sentence
    assert found["proxy-objective"].via == "rule"


def test_recurrence_warns_about_the_same_mistake_in_another_project(kb):
    text = postmortem_text(
        "derm-ruler", title="Skin lesion classifier keyed on the ruler in the photo",
        summary="A dermatology model learned that photos with a ruler were malignant: a "
                "marker of the clinic's workflow, not of the lesion. In a new hospital it "
                "failed.", project="derm-triage", modes=("spurious-correlation",))
    pm = from_markdown(text)
    kb.add(pm, markdown=text)
    related = related_incidents(kb, pm)
    top = next(r for r in related if r.recurrence)
    assert top.id == "pneumonia-portable-marker"
    assert "different project name" in top.warning(pm.project)
    assert "2 of 2 action items were closed" in top.warning(pm.project)
    control = from_markdown(postmortem_text(
        "cafeteria", title="Cafeteria menu forecast", summary="Menu forecast was late.",
        modes=("latency-budget",)))
    kb.add(control)
    assert [r.id for r in related_incidents(kb, control) if r.recurrence] == [
        "latency-budget-ensemble"]


def test_lessons_for_a_project_and_for_a_scan(kb):
    hits = lessons_for_text(kb, "We are building a CV screening model trained on ten years "
                                "of our past hiring decisions.")
    assert hits[0].incident == "resume-screener-gender-bias" and hits[0].lessons

    class Finding:  # the two attributes lessons_for_scan reads from each finding
        def __init__(self, mode, title):
            self.failure_mode, self.title = mode, title

    class Result:
        def __init__(self, findings):
            self.findings = findings

    scan_hits = lessons_for_scan(kb, Result(
        [Finding("spurious-correlation", "Metadata column 'site' drives decisions")]))
    assert {h.incident for h in scan_hits} == {"pneumonia-portable-marker",
                                               "maze-robot-simulator-shadows"}
    assert all(h.failure_modes == ["spurious-correlation"] for h in scan_hits)


def test_learning_stats_match_a_hand_count(kb):
    def add(id, occurred, modes, actions, closed=(), due=()):
        text = postmortem_text(id, title=id, summary="x", occurred=occurred, modes=modes,
                               actions=actions)
        pm = from_markdown(text)
        for item, day in zip(pm.action_items, closed, strict=False):
            item.closed = dt.date.fromisoformat(day) if day else None
        for item, day in zip(pm.action_items, due, strict=False):
            item.due = dt.date.fromisoformat(day) if day else None
        kb.add(pm)

    add("s1", "2024-01-10", ("leakage",), (("a", "done"), ("b", "done")),
        closed=("2024-01-20", "2024-02-09"))  # 10 and 30 days
    add("s2", "2024-06-01", ("leakage",), (("c", "open"), ("d", "wont-do")),
        closed=(None, "2024-08-30"), due=("2024-07-01",))  # 90 days; c is overdue
    add("s3", "2025-02-01", ("data-quality",), ())
    stats = learning_stats(kb, Filters(sources=["user"]))
    assert stats["incidents"] == 3
    assert stats["recurrence_rate"] == pytest.approx(1 / 3, abs=1e-4)  # s2 repeats s1
    assert stats["by_failure_mode"] == {"data-quality": {"2025": 1}, "leakage": {"2024": 2}}
    assert stats["action_closure_rate"] == 0.75
    assert (stats["action_items_open"], stats["action_items_overdue"]) == (1, 1)
    assert stats["median_days_to_close"] == 30.0  # of 10, 30 and 90
    assert stats["median_days_to_lesson"] is None  # nothing published yet
    kb.publish("s3")
    days = (dt.date.today() - dt.date(2025, 2, 1)).days
    assert learning_stats(kb, Filters(sources=["user"]))["median_days_to_lesson"] == days
