"""The reversal curse (Berglund et al., 2023): a model that learned "A is B" cannot answer
"B is ?". Ask each fact in the direction it was learned and in reverse; report both
accuracies and their gap.

Questions come as (prompt, expected completion) pairs, either two files (``--forward`` and
``--reverse``, one ``{"prompt", "completion"}`` object per line, as in the paper's data) or
one facts file whose lines name both sides and a template per direction::

    {"a": "Tom Cruise", "b": "Mary Lee Pfeiffer",
     "forward": "Who is {a}'s mother?", "reverse": "Who is {b}'s son?"}

An answer is right when the expected completion's words (case and punctuation aside) start
the model's answer. A model that gets fewer than :data:`MIN_KNOWN` facts right even in the
stated direction cannot show a reversal gap, and the probe says so (exit 2) instead of
passing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from failwell.errors import InconclusiveError, InputError
from failwell.findings import Finding, Metric, ScanResult, Severity
from failwell.llm.clients import BaseClient, EndpointError
from failwell.llm.jsonl import read_jsonl
from failwell.progress import Count
from failwell.scanner.detectors._common import mitigation_for
from failwell.stats import wilson_interval

WORD = re.compile(r"\w+")
MIN_KNOWN = 5  # right forward answers below which the gap means nothing


@dataclass
class Question:
    prompt: str
    expected: str


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def is_right(answer: str, expected: str) -> bool:
    want = words(expected)
    return bool(want) and words(answer)[:len(want)] == want


def load_pairs(path: Path) -> list[Question]:
    rows = read_jsonl(path)
    out = []
    for number, row in enumerate(rows, 1):
        if not isinstance(row.get("prompt"), str) or not isinstance(row.get("completion"), str):
            raise InputError(f"{Path(path).name}, question {number}: needs string fields "
                             "'prompt' and 'completion'.")
        out.append(Question(row["prompt"], row["completion"]))
    if not out:
        raise InputError(f"{Path(path).name} holds no questions.")
    return out


def load_facts(path: Path) -> tuple[list[Question], list[Question]]:
    forward, reverse = [], []
    for number, row in enumerate(read_jsonl(path), 1):
        missing = [k for k in ("a", "b", "forward", "reverse") if not isinstance(row.get(k), str)]
        if missing:
            raise InputError(f"{Path(path).name}, fact {number}: missing {', '.join(missing)} "
                             "(each fact needs a, b, forward and reverse).")
        if "{a}" not in row["forward"] or "{b}" not in row["reverse"]:
            raise InputError(f"{Path(path).name}, fact {number}: the forward template must "
                             "contain {a} and the reverse template {b}.")
        forward.append(Question(row["forward"].replace("{a}", row["a"]), row["b"]))
        reverse.append(Question(row["reverse"].replace("{b}", row["b"]), row["a"]))
    if not forward:
        raise InputError(f"{Path(path).name} holds no facts.")
    return forward, reverse


def ask(client: BaseClient, questions: list[Question], *, max_tokens: int | None,
        progress: Count | None = None) -> list[dict[str, Any]]:
    longest = max(len(words(q.expected)) for q in questions)
    answers = client.complete([q.prompt for q in questions],
                              max_tokens=max_tokens or min(2 * longest + 4, 96),
                              progress=progress)
    return [{"prompt": q.prompt, "expected": q.expected, "answer": a.text,
             "right": is_right(a.text, q.expected), "tokens": a.completion_tokens,
             "latency_s": a.latency_s, "cached": a.cached}
            for q, a in zip(questions, answers, strict=True)]


def reversal_probe(client: BaseClient, forward: list[Question], reverse: list[Question], *,
                   max_tokens: int | None = None, min_gap: float = 0.3,
                   progress: Count | None = None) -> ScanResult:
    """A ``reversal-curse`` finding when the reverse direction is answered at least
    ``min_gap`` worse than the direction the facts were stated in."""
    rows = {"forward": ask(client, forward, max_tokens=max_tokens, progress=progress),
            "reverse": ask(client, reverse, max_tokens=max_tokens, progress=progress)}
    every = rows["forward"] + rows["reverse"]
    empty = sum(not r["answer"].strip() for r in every)
    if empty == len(every):
        raise EndpointError("the model returned empty text for every question.")
    known = sum(r["right"] for r in rows["forward"])
    if known < min(MIN_KNOWN, len(forward)):
        raise InconclusiveError(
            f"the model answered {known} of {len(forward)} questions right in the direction "
            f"the facts were stated; the reversal curse is measured against that direction, "
            f"so at least {min(MIN_KNOWN, len(forward))} are needed. Check the endpoint and "
            f"prompt format. First answer: {rows['forward'][0]['answer'][:120]!r}")
    stats = {}
    for direction, answered in rows.items():
        right = sum(r["right"] for r in answered)
        stats[direction] = {"accuracy": right / len(answered), "n": len(answered),
                            "ci": list(wilson_interval(right, len(answered)))}
    gap = stats["forward"]["accuracy"] - stats["reverse"]["accuracy"]
    findings = []
    if gap >= min_gap:
        fwd, rev = stats["forward"], stats["reverse"]
        wrong = [r for r in rows["reverse"] if not r["right"]][:5]
        findings.append(Finding(
            "reversal-curse", Severity.HIGH if rev["accuracy"] < 0.1 else Severity.MEDIUM,
            f"Facts are answered {fwd['accuracy']:.0%} in the stated direction but "
            f"{rev['accuracy']:.0%} in reverse",
            f"Over {fwd['n']} questions asked the way the facts were stated and {rev['n']} "
            f"asked in reverse, accuracy falls from {fwd['accuracy']:.1%} (95% CI "
            f"{fwd['ci'][0]:.1%}-{fwd['ci'][1]:.1%}) to {rev['accuracy']:.1%} "
            f"({rev['ci'][0]:.1%}-{rev['ci'][1]:.1%}).",
            "reversal",
            [Metric("reversal_gap", gap, min_gap),
             Metric("forward_accuracy", fwd["accuracy"], None, False, tuple(fwd["ci"])),
             Metric("reverse_accuracy", rev["accuracy"], None, False, tuple(rev["ci"]))],
            {"examples": wrong}, mitigation_for("reversal-curse")))
    result = ScanResult(findings=findings)
    result.metrics = {"forward_accuracy": stats["forward"]["accuracy"],
                      "reverse_accuracy": stats["reverse"]["accuracy"],
                      "reversal_gap": gap, "empty_answers": float(empty),
                      "completion_tokens": float(sum(r["tokens"] for r in every)),
                      "cached_answers": float(sum(r["cached"] for r in every))}
    result.diagnostics = {"reversal": {"directions": stats,
                                       "examples": {d: r[:10] for d, r in rows.items()}}}
    result.config = {"kind": "llm-reversal", "client": client.name,
                     "n_rows": len(every)}
    return result
