"""Imports: the genai-incidents corpus (idempotent, resumable, attributed) and files."""

import json

import pytest

from conftest import postmortem_text
from failwell.errors import InputError
from failwell.kb.transfer import GENAI, corpus_postmortem, import_genai_incidents, import_path

genai_incidents = pytest.importorskip("genai_incidents")


def test_corpus_import_is_idempotent_resumable_and_attributed(kb):
    first = import_genai_incidents(kb, limit=150)  # an "interrupted" import
    assert (first.added, first.skipped) == (150, 0)
    resumed = import_genai_incidents(kb, limit=400)
    assert (resumed.added, resumed.skipped) == (250, 150)
    again = import_genai_incidents(kb, limit=400)
    assert again.added == 0 and kb.count() == 10 + 400
    record = genai_incidents.load_incidents()[3]
    stored = kb.get(f"genai-{record['id'].lower()}")
    assert stored.source == GENAI and stored.source_id == record["id"]
    assert "CC-BY-4.0" in stored.attribution
    assert stored.postmortem.title == record["title"]
    assert "prompt-injection" in stored.postmortem.failure_modes  # mapped from the vector
    assert f"attack-vector:{record['attack_vector']}" in stored.external_tags


def test_retracted_records_are_left_out(kb):
    records = genai_incidents.load_incidents()
    first_retracted = next(i for i, r in enumerate(records) if r.get("status") == "retracted")
    report = import_genai_incidents(kb, limit=first_retracted + 1)
    assert report.excluded == 1 and report.added == first_retracted


def test_corpus_mapping_keeps_unmapped_vectors_untagged():
    pm = corpus_postmortem({"id": "INC-1", "title": "t", "date": "2024-03",
                            "severity": "Critical", "attack_vector": "other", "tags": []})
    assert pm.failure_modes == set() and str(pm.severity) == "critical"
    assert pm.occurred.isoformat() == "2024-03-01"
    bias = corpus_postmortem({"id": "INC-2", "title": "t", "date": "2021",
                              "attack_vector": "algorithmic-bias", "tags": ["shadow-ai"]})
    assert bias.failure_modes == {"group-unfairness", "privacy-leak"}
    assert bias.patterns == {"governance-lag"}


def test_a_bad_file_in_a_folder_writes_nothing(kb, tmp_path):
    folder = tmp_path / "pms"
    folder.mkdir()
    (folder / "a.md").write_text(postmortem_text("a", title="A", summary="x"))
    (folder / "b.md").write_text(postmortem_text("b", title="B", summary="x").replace(
        "failure_modes", "x").replace("occurred: 2024-01-10", "occurred: 2024-13-45"))
    with pytest.raises(InputError, match=r"b\.md: occurred .2024-13-45. is not a date"):
        import_path(kb, folder)
    assert kb.count() == 10


@pytest.mark.parametrize(("name", "content", "message"), [
    ("x.json", "{not json", "not valid JSON"),
    ("x.json", json.dumps([{"id": "q", "title": "Q", "severity": "high",
                            "contributing_factors": [{"description": "d",
                                                      "failure_modes": ["spurious-corelation"]}]}]),
     "Did you mean 'spurious-correlation'"),
    ("x.csv", "id,title,severity\nq,Q,urgent\n", "severity 'urgent' is not one of"),
    ("x.txt", "hello", "cannot import .txt"),
])
def test_bad_imports_say_what_is_wrong(kb, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        import_path(kb, path)
    assert kb.count() == 10
