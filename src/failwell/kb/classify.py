"""Suggest systemic patterns and failure modes for a postmortem; the author confirms.

Two signals, each pointing at the sentence that triggered it:

* **embedding similarity** between every sentence of the postmortem and each catalog entry's
  description and warning signs (the offline MiniLM model);
* **rules**: phrases that name a failure mode outright ("bit flip", "simulator",
  "engagement"), for when the wording is too short for an embedding to be sure.

A rule hit adds :data:`RULE_BONUS` to the entry's best similarity. Patterns are abstract, so
their similarities run lower than failure modes'; each kind has its own floor and a cap on
how many are suggested. Tuned on the starter library (precision 0.69, recall 0.63 over its
43 confirmed tags); on 20 held-out incidents written before tuning
(``tests/data/suggestion_heldout.jsonl``) precision 0.55, recall 0.47. Suggestions for an
author to confirm, not labels.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from failwell.kb.postmortem import Postmortem
from failwell.taxonomy import load_catalog

FLOORS = {"failure_mode": 0.40, "pattern": 0.32}
LIMITS = {"failure_mode": 2, "pattern": 2}
RULE_BONUS = 0.15

RULES: dict[str, str] = {
    # failure modes
    "proxy-objective": r"\b(engagement|click[- ]?through|watch[- ]time|proxy (metric|objective)"
                       r"|goodhart|optimi[sz]ed for (clicks|time|engagement|approval))",
    "historical-bias": r"\b(historical (hiring|decisions|data|labels)|past (hiring )?decisions"
                       r"|inherited bias)",
    "spurious-correlation": r"\b(shortcut|clever hans|spurious|watermark|scanner marker"
                            r"|portable marker)",
    "adversarial-fragility": r"\b(adversarial|perturbations? (invisible|imperceptible)"
                             r"|sticker|patch attack)",
    "domain-shift": r"\b(simulator|sim-to-real|domain shift|distribution shift"
                    r"|different (hospital|site|sensor))",
    "hallucination": r"\b(hallucinat\w*|fabricated|invented (citations?|cases|sources)"
                     r"|not supported by the (retrieved )?(context|sources|evidence))",
    "sycophancy": r"\b(sycophan\w*|agreed? with the user|are you sure)",
    "reversal-curse": r"\b(reversal curse|reverse direction|other direction)",
    "silent-data-corruption": r"\b(bit[- ]?flips?|silent (data )?corruption|faulty (gpu|cpu|"
                              r"device|hardware|core))",
    "latency-budget": r"\b(latency|too slow|p95|p99|response time budget)",
    "privacy-leak": r"\b(leak(ed|s)? (confidential|personal|private)|personal data|pii\b)",
    "prompt-injection": r"\b(prompt injection|jailbreak\w*|injected instructions)",
    "group-unfairness": r"\b(false positive rates? (differ|twice)|disparate impact"
                        r"|four-fifths)",
    # systemic patterns
    "problem-misidentification": r"\b(success (was )?(defined|measured) (as|by)"
                                 r"|wrong (objective|question))",
    "data-optimism": r"\b(assumed (the|that the) (data|labels)|representative of"
                     r"|labels? (were|was) (noisy|wrong))",
    "organizational-disconnect": r"\b((end )?users (were )?(never|not) (involved|consulted)"
                                 r"|never saw the (system|model)|did not reach)",
    "governance-lag": r"\b(no (stage[- ]gate|review|sign-off|owner)|without (a )?review"
                      r"|after launch)",
}
_COMPILED = {key: re.compile(rx, re.I) for key, rx in RULES.items()}


@dataclass
class Suggestion:
    kind: str  # "pattern" or "failure_mode"
    id: str
    name: str
    score: float
    sentence: str
    via: str  # "embedding", "rule" or "embedding+rule"
    already_tagged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [p.strip() for p in parts if len(p.strip().split()) >= 3]


def _entries() -> list[tuple[str, str, str, list[str]]]:
    """(kind, id, name, probe texts) for every catalog entry."""
    catalog = load_catalog()
    out = []
    for kind, table in (("pattern", catalog.patterns), ("failure_mode", catalog.failure_modes)):
        for entry in table.values():
            probes = [f"{entry.name}. {entry.description}", *entry.warning_signs]
            out.append((kind, entry.id, entry.name, probes))
    return out


_PROBE_CACHE: dict[str, Any] = {}


def _probe_vectors(entries) -> tuple[np.ndarray, np.ndarray]:
    from failwell.kb import embeddings as emb

    if "vectors" not in _PROBE_CACHE:
        texts, owner = [], []
        for i, (_, _, _, probes) in enumerate(entries):
            texts += probes
            owner += [i] * len(probes)
        _PROBE_CACHE["vectors"] = (emb.encode(texts), np.array(owner))
    return _PROBE_CACHE["vectors"]


def suggest(subject: Postmortem | str, *, floors: dict[str, float] | None = None,
            limits: dict[str, int] | None = None,
            use_embeddings: bool | None = None) -> list[Suggestion]:
    """Patterns and failure modes the text points to, best first within each kind.
    ``floors``/``limits`` override :data:`FLOORS` and :data:`LIMITS` per kind."""
    floors = {**FLOORS, **(floors or {})}
    limits = {**LIMITS, **(limits or {})}
    from failwell.kb import embeddings as emb

    text = subject.text() if isinstance(subject, Postmortem) else subject
    tagged = (subject.patterns | subject.failure_modes) if isinstance(subject, Postmortem) \
        else set()
    found = sentences(text)
    if not found:
        return []
    entries = _entries()
    best = np.full(len(entries), -1.0)
    best_sentence = [""] * len(entries)
    use_embeddings = emb.available() if use_embeddings is None else use_embeddings
    if use_embeddings:
        probes, owner = _probe_vectors(entries)
        sims = emb.encode(found) @ probes.T  # sentences x probes
        for i in range(len(entries)):
            block = sims[:, owner == i]
            s_idx, _ = np.unravel_index(np.argmax(block), block.shape)
            best[i], best_sentence[i] = float(block.max()), found[s_idx]
    out = []
    for i, (kind, entry_id, name, _) in enumerate(entries):
        rule_sentence = next((s for s in found if _COMPILED.get(entry_id)
                              and _COMPILED[entry_id].search(s)), None)
        score = max(best[i], 0.0) + (RULE_BONUS if rule_sentence else 0.0)
        if rule_sentence and not use_embeddings:
            score = max(score, floors[kind])  # rules alone still suggest
        if score < floors[kind]:
            continue
        via = "embedding+rule" if rule_sentence and best[i] >= floors[kind] - RULE_BONUS else (
            "rule" if rule_sentence else "embedding")
        out.append(Suggestion(kind=kind, id=entry_id, name=name, score=round(min(score, 1.0), 3),
                              sentence=rule_sentence or best_sentence[i], via=via,
                              already_tagged=entry_id in tagged))
    ranked = sorted(out, key=lambda s: -s.score)
    return [s for kind in ("failure_mode", "pattern")
            for s in [x for x in ranked if x.kind == kind][:limits[kind]]]
