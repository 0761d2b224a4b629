"""Suggest systemic patterns and failure modes for a postmortem; the author confirms.

Only the sentences that explain the failure are read: the summary, the impact, how success
was defined, failed assumptions, underestimated constraints, ignored signals, contributing
factors and lessons. Timeline entries ("model retrained on new data", "pager fired") describe
what happened when, not why, and are left out.

For every catalog entry a small logistic regression (``data/suggest_model.json``) turns the
evidence into a probability that a reviewer would confirm the tag:

* how close the closest sentences come to the entry's description and warning signs
  (all-MiniLM-L6-v2 embeddings), and the entry's rank among the others;
* how much the most similar *confirmed* postmortems carry the tag: the tuning set shipped
  with failwell (``data/suggest_examples.npz``) plus, with ``kb=``, every incident in the
  knowledge base whose tags a person confirmed, so suggestions learn from a team's own tags;
* phrase rules that name a failure mode outright ("bit flip", "click-through");
* how often the tag is confirmed at all.

The scorer, its thresholds and the example set are built by ``scripts/train_suggest_model.py``
from the tuning sets only; figures on a frozen test set nobody here wrote are in README.md.
Without the embeddings extra only the phrase rules run.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from failwell.kb.postmortem import Postmortem
from failwell.taxonomy import load_catalog

DATA = Path(__file__).with_name("data")
NEIGHBOURS = 7  # confirmed postmortems that vote

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
    "proxy-feature": r"\b(proxy for (race|gender|sex|age|ethnicity)|stood in for (race|gender"
                     r"|sex|age|ethnicity))",
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
FEATURES = ("probe_max", "probe_top2", "probe_rank", "neighbour_vote", "example_max", "rule",
            "log_prior", "is_pattern", "is_pattern_x_probe_max", "is_pattern_x_vote")


@dataclass
class Suggestion:
    kind: str  # "pattern" or "failure_mode"
    id: str
    name: str
    score: float  # the probability that a reviewer confirms it
    sentence: str
    via: str  # the strongest evidence: "catalog", "similar incidents", "rule" (or joined)
    already_tagged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- evidence -------------------------------------------------------------------------------

def sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [p.strip() for p in parts if len(p.strip().split()) >= 3]


_TIMELINE = re.compile(r"^\s*(?:[-*+]\s*)?(?:\d{4}-\d{2}(?:-\d{2})?|\d{1,2}:\d{2}|"
                       r"T[+-]\d|day \d+|week \d+)\b", re.I)


def evidence(subject: Postmortem | str) -> list[str]:
    """The sentences that explain a failure: no timeline entries, no action items."""
    if isinstance(subject, Postmortem):
        parts = [subject.title, subject.summary, subject.impact, subject.success_definition,
                 *subject.failed_assumptions, *subject.underestimated_constraints,
                 *subject.ignored_signals, *(f.description for f in subject.contributing_factors),
                 *(lesson.text for lesson in subject.lessons)]
        return [s for p in parts if p and p.strip() for s in sentences(p)]
    lines = [ln for ln in subject.splitlines() if not _TIMELINE.match(ln)]
    return sentences("\n".join(lines))


# -- the catalog, the examples and the scorer -------------------------------------------------

@functools.cache
def tags() -> tuple[tuple[str, str, str], ...]:
    """(kind, id, name) of every catalog entry, in a fixed order."""
    catalog = load_catalog()
    return tuple([("pattern", e.id, e.name) for e in catalog.patterns.values()]
                 + [("failure_mode", e.id, e.name) for e in catalog.failure_modes.values()])


@functools.cache
def _probes() -> tuple[np.ndarray, np.ndarray]:
    from failwell.kb import embeddings as emb

    catalog = load_catalog()
    texts, owner = [], []
    for i, (kind, tag, _) in enumerate(tags()):
        entry = catalog.pattern(tag) if kind == "pattern" else catalog.failure_mode(tag)
        probes = [f"{entry.name}. {entry.description}", *entry.warning_signs]
        texts += probes
        owner += [i] * len(probes)
    return emb.encode(texts), np.array(owner)


@dataclass
class Examples:
    """Confirmed postmortems: one mean vector each, their sentence vectors and their tags."""
    means: np.ndarray  # docs x dim
    vectors: np.ndarray  # sentences x dim
    owner: np.ndarray  # sentence -> doc
    labels: np.ndarray  # docs x tags (bool)

    def extend(self, means: np.ndarray, labels: np.ndarray) -> Examples:
        """Add postmortems known by one vector each (the knowledge base's incidents)."""
        start = len(self.means)
        return Examples(np.vstack([self.means, means]), np.vstack([self.vectors, means]),
                        np.concatenate([self.owner, np.arange(start, start + len(means))]),
                        np.vstack([self.labels, labels]))


@functools.cache
def shipped_examples() -> Examples:
    with np.load(DATA / "suggest_examples.npz") as data:
        vectors = data["vectors"].astype(np.float32)
        owner, shipped = data["owner"], data["labels"].astype(bool)
        column = {str(tag): i for i, tag in enumerate(data["tags"])}
    # by id, not position: a catalog entry added since the examples were labelled is a
    # column of False (no example has it yet), and reordering the catalog changes nothing
    labels = np.zeros((len(shipped), len(tags())), dtype=bool)
    for t, (_, tag, _) in enumerate(tags()):
        if tag in column:
            labels[:, t] = shipped[:, column[tag]]
    means = np.vstack([_unit(vectors[owner == d].mean(0)) for d in range(len(labels))])
    return Examples(means, vectors, owner, labels)


@functools.cache
def scorer() -> dict[str, Any]:
    return json.loads((DATA / "suggest_model.json").read_text(encoding="utf-8"))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def features(vectors: np.ndarray, text: str, examples: Examples,
             exclude: int | None = None) -> np.ndarray:
    """tags x :data:`FEATURES` for one postmortem's sentence vectors. ``exclude`` drops one
    example postmortem (itself, when scoring the training set)."""
    probes, owner = _probes()
    n_tags = len(tags())
    is_pattern = np.array([kind == "pattern" for kind, _, _ in tags()], dtype=float)
    sims = vectors @ probes.T
    per_tag = np.column_stack([sims[:, owner == t].max(1) for t in range(n_tags)])
    probe_max = per_tag.max(0)
    probe_top2 = np.sort(per_tag, 0)[::-1][:2].mean(0)
    rank = np.zeros(n_tags)
    for mask in (is_pattern == 1, is_pattern == 0):
        order = np.argsort(-probe_max[mask])
        ranks = np.empty(mask.sum())
        ranks[order] = np.arange(1, mask.sum() + 1)
        rank[mask] = ranks
    keep = np.ones(len(examples.means), bool)
    if exclude is not None:
        keep[exclude] = False
    pool = np.flatnonzero(keep)
    doc_sims = examples.means[pool] @ _unit(vectors.mean(0))
    top = np.argsort(-doc_sims)[:NEIGHBOURS]
    weight = np.maximum(doc_sims[top], 0) ** 3
    vote = (examples.labels[pool][top] * weight[:, None]).sum(0) / max(weight.sum(), 1e-9)
    sentence_keep = keep[examples.owner]
    best = (vectors @ examples.vectors[sentence_keep].T).max(0) if len(vectors) else None
    example_max = np.zeros(n_tags)
    for t in range(n_tags):
        mask = examples.labels[examples.owner[sentence_keep], t]
        example_max[t] = best[mask].max() if best is not None and mask.any() else 0.0
    rule = np.array([bool(_COMPILED.get(tag) and _COMPILED[tag].search(text))
                     for _, tag, _ in tags()], dtype=float)
    prior = np.log((examples.labels[pool].sum(0) + 1) / (len(pool) + 2))
    return np.column_stack([probe_max, probe_top2, 1 / rank, vote, example_max, rule, prior,
                            is_pattern, is_pattern * probe_max, is_pattern * vote])


def probabilities(matrix: np.ndarray, model: dict[str, Any]) -> np.ndarray:
    logits = matrix @ np.asarray(model["coef"]) + model["intercept"]
    return 1 / (1 + np.exp(-logits))


# -- suggestions ----------------------------------------------------------------------------

def suggest(subject: Postmortem | str, *, kb=None, limits: dict[str, int] | None = None,
            floors: dict[str, float] | None = None,
            use_embeddings: bool | None = None) -> list[Suggestion]:
    """Patterns and failure modes the postmortem points to, best first within each kind.
    ``kb`` adds the knowledge base's confirmed incidents to the examples; ``floors`` and
    ``limits`` override the trained probability thresholds and the cap per kind."""
    from failwell.kb import embeddings as emb

    model = scorer()
    floors = {**model["thresholds"], **(floors or {})}
    limits = {**model["limits"], **(limits or {})}
    tagged = (subject.patterns | subject.failure_modes) if isinstance(subject, Postmortem) \
        else set()
    found = evidence(subject)
    if not found:
        return []
    text = " ".join(found)
    use_embeddings = emb.available() if use_embeddings is None else use_embeddings
    if not use_embeddings:
        return _rules_only(found, tagged, limits)
    vectors = emb.encode(found)
    examples = shipped_examples()
    if kb is not None:
        examples = _with_knowledge_base(examples, kb)
    matrix = features(vectors, text, examples)
    probability = probabilities(matrix, model)
    probes, owner = _probes()
    sims = vectors @ probes.T
    out = []
    for i, (kind, tag, name) in enumerate(tags()):
        if probability[i] < floors[kind]:
            continue
        rule_sentence = next((s for s in found if _COMPILED.get(tag)
                              and _COMPILED[tag].search(s)), None)
        via = [label for label, on in (("catalog", matrix[i, 2] == 1.0),
                                       ("similar incidents", matrix[i, 3] >= 0.5),
                                       ("rule", rule_sentence is not None)) if on]
        sentence = rule_sentence or found[int(np.argmax(sims[:, owner == i].max(1)))]
        out.append(Suggestion(kind=kind, id=tag, name=name, score=round(float(probability[i]), 3),
                              sentence=sentence, via="+".join(via) or "catalog",
                              already_tagged=tag in tagged))
    ranked = sorted(out, key=lambda s: -s.score)
    return [s for kind in ("failure_mode", "pattern")
            for s in [x for x in ranked if x.kind == kind][:limits[kind]]]


def _rules_only(found: list[str], tagged: set[str], limits: dict[str, int]) -> list[Suggestion]:
    out = []
    for kind, tag, name in tags():
        hit = next((s for s in found if _COMPILED.get(tag) and _COMPILED[tag].search(s)), None)
        if hit:
            out.append(Suggestion(kind, tag, name, 0.5, hit, "rule", tag in tagged))
    return [s for kind in ("failure_mode", "pattern")
            for s in [x for x in out if x.kind == kind][:limits[kind]]]


def _with_knowledge_base(examples: Examples, kb) -> Examples:
    """The incidents people tagged: their vectors and tags (not the imported corpus, whose
    tags are mapped, nor the starter library, which the shipped examples hold)."""
    from sqlalchemy import select

    from failwell.db.schema import embeddings, incident_tags, incidents
    from failwell.kb.transfer import GENAI

    index = {tag: i for i, (_, tag, _) in enumerate(tags())}
    with kb.engine.connect() as conn:
        rows = conn.execute(
            select(incidents.c.id, embeddings.c.vector, incident_tags.c.tag)
            .join(embeddings, embeddings.c.incident_id == incidents.c.id)
            .join(incident_tags, incident_tags.c.incident_id == incidents.c.id)
            .where(incidents.c.source.notin_([GENAI, "library"]))).all()
    vectors: dict[int, bytes] = {}
    labels: dict[int, np.ndarray] = {}
    for incident_id, vector, tag in rows:
        vectors[incident_id] = vector
        labels.setdefault(incident_id, np.zeros(len(index), bool))
        if tag in index:
            labels[incident_id][index[tag]] = True
    if not vectors:
        return examples
    ids = sorted(vectors)
    means = np.vstack([np.frombuffer(vectors[i], dtype=np.float32) for i in ids])
    return examples.extend(means, np.vstack([labels[i] for i in ids]))
