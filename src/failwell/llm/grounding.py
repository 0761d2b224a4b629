"""Grounding: is each claim of an answer backed by the retrieved contexts?

An answer is split into claims (sentences, and clauses joined by semicolons). Each claim is
matched to its closest context sentence with the offline all-MiniLM-L6-v2 embeddings
(``failwell[embeddings]``), then judged:

* **contradicted**: it is about what a context sentence says (similarity at least
  ``related``) but carries a number or a name the contexts do not have where that sentence
  has its own, or it negates what the sentence affirms (or the other way round);
* **supported**: similarity at least ``supported`` and no such mismatch;
* **unsupported**: nothing in the contexts says it.

Contradictions by meaning alone (an antonym, a reversed relation) are what embeddings and
surface checks cannot see. Given an NLI model (``nli=NLIJudge(path)``, any Hugging Face
sequence classifier whose labels name entailment, neutral and contradiction), its verdict
on (closest passage, claim) decides every claim the surface checks did not already
contradict.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from failwell.errors import InconclusiveError, InputError
from failwell.findings import Finding, Metric, ScanResult, Severity
from failwell.llm.jsonl import read_jsonl
from failwell.scanner.detectors._common import mitigation_for

LABELS = ("supported", "contradicted", "unsupported")
SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
NAME = re.compile(r"\b[A-Z][a-z]+(?:[- ][A-Z][a-z]+)*\b")
NEGATION = re.compile(r"\b(?:not|no|never|cannot|without|none)\b|n't\b", re.I)
MAX_CONTEXT_CHARS = 20_000


@dataclass
class Thresholds:
    related: float = 0.5  # similarity from which a mismatch counts as a contradiction
    supported: float = 0.65  # similarity from which a claim counts as supported
    coverage: float = 0.75  # or: related, and this share of its content words in the passage


@dataclass
class Judgement:
    claim: str
    label: str
    similarity: float
    passage: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    question: str
    contexts: list[str]
    answer: str
    claims: list[str] = field(default_factory=list)


def split_claims(text: str) -> list[str]:
    parts = [p.strip() for s in SENTENCE.split(text.strip()) for p in s.split(";")]
    return [p for p in parts if len(re.findall(r"\w+", p)) >= 3]


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "").rstrip(".") for n in NUMBER.findall(text)}


def _names(text: str) -> set[str]:
    """Capitalised words, except a sentence's first word (which is capitalised anyway)."""
    found = set()
    for sentence in SENTENCE.split(text):
        for match in NAME.finditer(sentence):
            if match.start() > 0:
                found.update(match.group().replace("-", " ").split())
    return found


STOPWORDS = frozenset("""a an the is are was were be been of in on at to for from by with and
or as it its it's this that these those he she they his her their has have had do does did
so than then into over about up""".split())


def _covered(claim: str, passage: str) -> float:
    """Share of the claim's content words (numbers included) that the passage contains."""
    have = set(re.findall(r"\w+", passage.lower().replace(",", "")))
    want = [w for w in re.findall(r"\w+", claim.lower().replace(",", ""))
            if w not in STOPWORDS]
    return sum(w in have for w in want) / max(len(want), 1)


def _negated(text: str) -> bool:
    return bool(NEGATION.search(text))


class NLIJudge:
    """A local natural-language-inference model: (premise, hypothesis) -> label."""

    def __init__(self, path: str | Path, *, batch_size: int = 16):
        from failwell.llm.clients import hf_folder

        path, self.torch, transformers = hf_folder(path, purpose="NLI models")
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        self.model = transformers.AutoModelForSequenceClassification.from_pretrained(
            path).eval()
        names = {i: str(n).lower() for i, n in self.model.config.id2label.items()}
        self.labels = {}
        for i, name in names.items():
            for key, label in (("entail", "supported"), ("contradict", "contradicted"),
                               ("neutral", "unsupported")):
                if key in name:
                    self.labels[int(i)] = label
        if set(self.labels.values()) != set(LABELS):
            raise InputError(f"{path.name}: the model's labels ({', '.join(names.values())}) "
                             "must name entailment, neutral and contradiction.")
        self.batch_size = batch_size

    def __call__(self, pairs: list[tuple[str, str]]) -> list[str]:
        out = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start:start + self.batch_size]
            enc = self.tokenizer([p for p, _ in chunk], [h for _, h in chunk],
                                 return_tensors="pt", padding=True, truncation=True)
            with self.torch.no_grad():
                logits = self.model(**enc).logits
            out += [self.labels[int(i)] for i in logits.argmax(dim=-1)]
        return out


def judge(claims: list[str], contexts: list[str], *, thresholds: Thresholds | None = None,
          nli: NLIJudge | None = None) -> list[Judgement]:
    """One judgement per claim against the contexts."""
    from failwell.kb.embeddings import encode

    t = thresholds or Thresholds()
    if sum(map(len, contexts)) > MAX_CONTEXT_CHARS:
        raise InputError(f"the contexts hold {sum(map(len, contexts)):,} characters; the "
                         f"limit is {MAX_CONTEXT_CHARS:,} per answer (split them).")
    passages = [s for c in contexts for s in SENTENCE.split(c.strip()) if s.strip()]
    if not claims:
        return []
    if not passages:
        return [Judgement(c, "unsupported", 0.0, "", "no context was retrieved")
                for c in claims]
    vectors = encode(claims + passages)
    sims = vectors[:len(claims)] @ vectors[len(claims):].T
    context_text = " ".join(contexts)
    context_numbers, context_words = _numbers(context_text), set(re.findall(r"\w+",
                                                                            context_text))
    out = []
    for i, claim in enumerate(claims):
        best = int(np.argmax(sims[i]))
        s, passage = float(sims[i, best]), passages[best]
        new_numbers = _numbers(claim) - context_numbers
        new_names = {n for n in _names(claim) if n not in context_words}
        if s >= t.related and new_numbers and _numbers(passage):
            label, reason = "contradicted", (f"the number(s) {', '.join(sorted(new_numbers))} "
                                             "appear nowhere in the contexts")
        elif s >= t.related and new_names and _names(passage):
            label, reason = "contradicted", (f"the name(s) {', '.join(sorted(new_names))} "
                                             "appear nowhere in the contexts")
        elif s >= t.related and _negated(claim) != _negated(passage):
            label, reason = "contradicted", "one of the claim and the passage is negated"
        elif s >= t.supported:
            label, reason = "supported", "a context sentence says it"
        elif s >= t.related and _covered(claim, passage) >= t.coverage:
            label, reason = "supported", "the closest sentence holds the claim's words"
        else:
            label, reason = "unsupported", "no context sentence is close enough"
        out.append(Judgement(claim, label, s, passage, reason))
    if nli is not None:
        open_ = [j for j in out if j.label != "contradicted"]
        for j, verdict in zip(open_, nli([(j.passage, j.claim) for j in open_]),
                              strict=True):
            j.label, j.reason = verdict, f"the NLI model judged it {verdict}"
    return out


def load_answers(path: Path) -> list[Answer]:
    answers = []
    for number, row in enumerate(read_jsonl(path), 1):
        contexts = row.get("contexts")
        if isinstance(contexts, str):  # one passage or many run together? Do not guess.
            raise InputError(f"{Path(path).name}, line {number}: 'contexts' is a string; give "
                             'the retrieved passages as a list, e.g. ["passage one", ...].')
        if not isinstance(row.get("answer"), str) or not isinstance(contexts, list) \
                or not all(isinstance(c, str) for c in contexts):
            raise InputError(f"{Path(path).name}, line {number}: needs 'answer' (text) and "
                             "'contexts' (a list of passages).")
        answers.append(Answer(str(row.get("question", "")), contexts, row["answer"]))
    if not answers:
        raise InputError(f"{Path(path).name} holds no answers.")
    return answers


def grounding_probe(answers: list[Answer], *, thresholds: Thresholds | None = None,
                    max_contradicted: float = 0.1, max_unfaithful: float = 0.5,
                    nli: NLIJudge | None = None, progress=None) -> ScanResult:
    """A ``hallucination`` finding when more than ``max_contradicted`` of the claims
    contradict the contexts, or more than ``max_unfaithful`` of the answers hold a claim
    the contexts do not support.

    The defaults allow for the judge's own errors, measured on the held-out half of the
    labelled claims: about one supported claim in six is flagged, mostly as unsupported,
    while a "contradicted" label is right four times in five. Answers of two supported
    claims then come out about a third "unfaithful", with 3 % of claims contradicted."""
    rows = []
    for k, answer in enumerate(answers):
        judged = judge(split_claims(answer.answer), answer.contexts, thresholds=thresholds,
                       nli=nli)
        rows.append({"question": answer.question, "claims": [j.to_dict() for j in judged],
                     "faithful": all(j.label == "supported" for j in judged)})
        if progress:
            progress(k + 1, len(answers))
    claims = [c for r in rows for c in r["claims"]]
    if not claims:
        raise InconclusiveError(f"none of the {len(rows)} answers holds a claim to check "
                                "(are the answers empty?); nothing can be said about them.")
    counts = {label: sum(c["label"] == label for c in claims) for label in LABELS}
    unfaithful = [r for r in rows if not r["faithful"]]
    share = len(unfaithful) / len(rows)
    contradicted = counts["contradicted"] / max(len(claims), 1)
    findings = []
    if contradicted > max_contradicted or share > max_unfaithful:
        bad = [c | {"question": r["question"]} for r in unfaithful for c in r["claims"]
               if c["label"] != "supported"]
        findings.append(Finding(
            "hallucination",
            Severity.HIGH if contradicted > max_contradicted else Severity.MEDIUM,
            f"{share:.0%} of answers make claims the retrieved contexts do not support",
            f"Of {len(claims)} claims in {len(rows)} answers, {counts['contradicted']} "
            f"contradict the contexts and {counts['unsupported']} are not in them.",
            "grounding",
            [Metric("contradicted_claim_rate", contradicted, max_contradicted),
             Metric("unfaithful_answer_rate", share, max_unfaithful)],
            {"claims": bad[:20]}, mitigation_for("hallucination")))
    result = ScanResult(findings=findings)
    result.metrics = {"faithfulness_rate": 1 - share, "claims": float(len(claims)),
                      "contradicted_claim_rate": contradicted,
                      **{f"{k}_claims": float(v) for k, v in counts.items()}}
    result.diagnostics = {"grounding": rows}
    result.config = {"kind": "llm-grounding", "n_rows": len(rows), "nli": nli is not None,
                     "thresholds": asdict(thresholds or Thresholds())}
    return result


def evaluate(path: Path, *, split: str | None = None, thresholds: Thresholds | None = None,
             nli: NLIJudge | None = None) -> dict[str, Any]:
    """Precision and recall of the flagged labels (unsupported or contradicted) on a file
    of labelled claims: ``{"contexts", "claims": [{"text", "label"}], "split"}``."""
    gold, pred = [], []
    for number, row in enumerate(read_jsonl(path), 1):
        if split and row.get("split") != split:
            continue
        claims, contexts = row.get("claims"), row.get("contexts")
        if not isinstance(contexts, list) or not isinstance(claims, list) or not all(
                isinstance(c, dict) and isinstance(c.get("text"), str)
                and c.get("label") in LABELS for c in claims):
            raise InputError(f"{Path(path).name}, line {number}: needs 'contexts' (a list of "
                             f"passages) and 'claims' (a list of {{text, label}}, label one "
                             f"of {', '.join(LABELS)}).")
        texts = [c["text"] for c in row["claims"]]
        gold += [c["label"] for c in row["claims"]]
        pred += [j.label for j in judge(texts, row["contexts"], thresholds=thresholds,
                                        nli=nli)]
    if not gold:
        raise InputError(f"{Path(path).name} holds no labelled claims"
                         + (f" in split {split!r}." if split else "."))
    flagged_gold = np.array([g != "supported" for g in gold])
    flagged_pred = np.array([p != "supported" for p in pred])
    tp = int((flagged_gold & flagged_pred).sum())
    out = {"claims": len(gold), "precision": tp / max(int(flagged_pred.sum()), 1),
           "recall": tp / max(int(flagged_gold.sum()), 1),
           "accuracy_3way": float(np.mean([g == p for g, p in zip(gold, pred, strict=True)]))}
    for label in ("contradicted", "unsupported"):
        g = np.array([x == label for x in gold])
        p = np.array([x == label for x in pred])
        out[f"{label}_precision"] = int((g & p).sum()) / max(int(p.sum()), 1)
        out[f"{label}_recall"] = int((g & p).sum()) / max(int(g.sum()), 1)
    return out
