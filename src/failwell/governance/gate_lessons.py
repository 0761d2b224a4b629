"""Which lessons of past incidents a stage gate shows, and why each one is shown.

The rule
--------
A past incident that recorded lessons is shown at a gate when all three hold:

1. **Its modality can apply.** An incident bound to a modality (a language model, images,
   robots in simulation, large-scale training infrastructure: read from its lessons'
   ``applies_to`` tags, its failure modes and its wording) is shown only to a project that has
   the same modality in its description, datasheet or scans. A tabular credit model never
   sees the LLM sycophancy case; a project whose modality cannot be told sees only
   modality-free incidents.
2. **It fits the gate.** One of its contributing factors carries the systemic pattern of one
   of the gate's questions; or the gate reviews scans and the incident is mainly about a
   failure mode the project's scans found.
3. **It fits the project.** The incident is mainly about (its *primary* failure modes: those
   in the most contributing factors) a failure mode the project has: one its scans found;
   a fairness failure mode when the project names protected groups (a guardrail, a success
   criterion or a scan's protected columns); ``proxy-objective`` for a declared proxy guard
   and ``latency-budget`` for a declared latency or serving-cost constraint, each only at a
   gate with a question about it (metrics and proxies; constraints). Or it comes from the
   project's domain (lending, hiring, medicine, customer support, ...).

Candidates are ranked by the number of such links to the project, plus the share of the
gate's questions whose pattern they carry, plus the words they share with the best of those
questions; the top three are shown, fewer when fewer fit. Each carries its reason, e.g.
"answers 'Were the labels produced by past human decisions that may encode bias?' (labels,
past, human, decisions, encode, bias); counterfactual-unfairness is a fairness failure and
the project names protected groups (gender)".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from failwell.governance.gates import Gate, Question
from failwell.governance.project import Project
from failwell.kb.lessons import LessonHit
from failwell.kb.search import search
from failwell.kb.store import KnowledgeBase

LIMIT = 3
PER_MODE_CANDIDATES = 100  # incidents with lessons fetched per linked failure mode
DOMAIN_CANDIDATES = 100  # incidents fetched by a full-text search for the project's domain

# -- vocabularies ----------------------------------------------------------------------------
# Each is matched as whole words (a trailing * allows any ending) on lower-cased text with
# hyphens and underscores read as spaces.

MODALITIES: dict[str, dict[str, tuple[str, ...]]] = {
    "llm": {
        "words": ("llms?", "large language models?", "language models?", "chatbots?",
                  "chat bots?", "gpt*", "generative ai", "prompts?", "rlhf",
                  "retrieval augmented", "rag"),
        "tags": ("llm", "rag", "rlhf", "chatbot", "generative-ai"),
        "modes": ("hallucination", "sycophancy", "reversal-curse", "prompt-injection"),
    },
    "vision": {
        "words": ("images?", "imaging", "x rays?", "radiographs?", "ct", "mri", "cameras?",
                  "videos?", "photos?", "photographs?", "pixels?", "computer vision"),
        "tags": ("computer-vision", "medical-imaging", "autonomous-driving", "vision"),
        "modes": (),
    },
    "robotics": {
        "words": ("robot*", "simulators?", "simulated", "reinforcement learning", "drones?"),
        "tags": ("robotics", "simulation", "reinforcement-learning"),
        "modes": (),
    },
    "training-infrastructure": {
        "words": ("training clusters?", "pretraining", "pre training", "distributed training",
                  "accelerator fleets?", "fleet of accelerators"),
        "tags": ("infrastructure", "hardware"),
        "modes": ("silent-data-corruption", "training-instability"),
    },
}

DOMAINS: dict[str, tuple[str, ...]] = {
    "lending": ("loans?", "credit", "lending", "mortgages?", "underwrit*"),
    "hiring": ("hiring", "recruit*", "résumés?", "job applicants?", "cv screening"),
    "medicine": ("medical", "clinical", "hospitals?", "patients?", "radiolog*", "diagnos*",
                 "x rays?", "pneumonia", "haemorrhages?", "hemorrhages?"),
    "customer support": ("customer support", "customer service", "support assistants?",
                         "support chats?", "support agents?", "help cent(?:re|er)s?",
                         "contact cent(?:re|er)s?", "call cent(?:re|er)s?"),
    "recommendation": ("recommend*", "home feeds?", "news feeds?", "watch time",
                       "click through"),
    "driving": ("driving", "road signs?", "stop signs?", "vehicles?"),
    "criminal justice": ("recidivism", "bail", "parole", "sentencing", "policing"),
    "insurance": ("insurance",),
    "fraud": ("fraud*",),
    "education": ("students?", "exams?", "grading"),
    "content moderation": ("moderation", "toxic*"),
}

# Protected characteristics: a project that names one (in a guardrail, a success criterion or
# a scan's protected columns) is exposed to every fairness failure mode.
PROTECTED = ("gender", "sex", "race", "ethnicity", "ethnic", "age", "religion", "disability",
             "nationality", "marital")
FAIRNESS = frozenset({"group-unfairness", "counterfactual-unfairness", "historical-bias",
                      "proxy-feature", "underrepresentation"})

# Declared facts and the questions that bring them into play.
PROXY_WORDS = ("proxy", "proxies", "guardrail", "guardrails", "metric", "metrics")
CONSTRAINT_WORDS = ("constraint", "constraints")
LATENCY_KEYS = ("latency", "p95", "p99", "response time", "timeout", "throughput",
                "serving cost", "cost")

SCAN_KINDS = {"llm-": "llm", "deep": "vision"}
SCAN_DETECTORS = {"grounding": "llm", "sycophancy": "llm", "reversal": "llm",
                  "clever-hans": "vision", "corruptions": "vision", "adversarial": "vision"}

_STOPWORDS = frozenset(
    "a an and are as at be by did do does for from had has have how i in into is it its of on "
    "or that the their them then there these they this to was were what when where which who "
    "why will with would could may might should can each every one we us our been before "
    "after make makes made today next know not no any all only more most other than so too "
    "very used use seen see told tell well while whether about also both same own project "
    "system model models data s".split())


def _pattern(word: str) -> str:
    return word.replace("*", r"\w*").replace(" ", r"\s+")


def _compile(words: Iterable[str]) -> re.Pattern:
    return re.compile(r"\b(?:" + "|".join(_pattern(w) for w in words) + r")\b")


_MODALITY_RE = {name: _compile(v["words"]) for name, v in MODALITIES.items()}
_DOMAIN_RE = {name: _compile(words) for name, words in DOMAINS.items()}
_PROTECTED_RE = _compile(w + "s?" for w in PROTECTED)
_LATENCY_RE = _compile(LATENCY_KEYS)


def _normal(text: str) -> str:
    return re.sub(r"[-_]+", " ", text.lower())


def _found(patterns: dict[str, re.Pattern], text: str) -> set[str]:
    return {name for name, rx in patterns.items() if rx.search(text)}


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    for suffix in ("ing", "ed", "e"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[:-len(suffix)]
    return word


def _words(text: str) -> dict[str, str]:
    """Content words of ``text``: stem -> the word as written (first occurrence)."""
    out: dict[str, str] = {}
    for word in re.findall(r"\w+", text.lower()):
        if word not in _STOPWORDS and not word.isdigit():
            out.setdefault(_stem(word), word)
    return out


# -- the project -----------------------------------------------------------------------------

@dataclass
class ProjectFacts:
    """What the rule knows about a project: its modalities, domains and failure modes."""

    modalities: set[str]
    domains: set[str]
    scan_modes: dict[str, int]  # failure mode -> the latest scan that found it
    protected: list[str]
    proxy: str | None  # the declared proxy guard, as text
    latency: list[str]  # declared latency or serving-cost constraints, as text
    domain_words: list[str] = field(default_factory=list)  # the words that named a domain

    def to_dict(self) -> dict[str, Any]:
        return {"modalities": sorted(self.modalities), "domains": sorted(self.domains),
                "scan_failure_modes": dict(self.scan_modes), "protected": self.protected,
                "proxy_guard": self.proxy, "latency_constraints": self.latency}


def project_facts(project: Project, scans: Sequence[dict[str, Any]] = (),
                  datasheet: dict[str, Any] | None = None) -> ProjectFacts:
    """``scans``: the project's recorded scans, oldest first, each ``{"id", "result"}``;
    ``datasheet``: its latest datasheet (``{"sections": {name: {"text"}}}``)."""
    sheet = [s.get("text", "") for s in ((datasheet or {}).get("sections") or {}).values()]
    described = _normal(" ".join([
        project.name, project.problem, project.decision,
        *(u.group for u in project.end_users), *(d.name for d in project.data_sources),
        *(str(v) for v in project.constraints.values()), *sheet]))
    modalities = _found(_MODALITY_RE, described)
    scan_modes: dict[str, int] = {}
    protected: list[str] = []
    for scan in scans:
        result = scan.get("result") or {}
        config = result.get("config") or {}
        kind = str(config.get("kind") or "")
        modalities |= {m for prefix, m in SCAN_KINDS.items() if kind.startswith(prefix)
                       and (m != "vision" or len(config.get("inputs") or []) == 4)}
        for finding in result.get("findings") or []:
            scan_modes[finding["failure_mode"]] = scan.get("id", 0)
            if finding.get("detector") in SCAN_DETECTORS:
                modalities.add(SCAN_DETECTORS[finding["detector"]])
        protected += list((config.get("roles") or {}).get("protected") or [])
    named = [project.proxy_guard.proxy, *project.proxy_guard.guardrails] \
        if project.proxy_guard else []
    named += [f"{c.metric} {c.measurement}" for c in project.success_criteria]
    for text in named:
        protected += [m.group(0).rstrip("s") for m in _PROTECTED_RE.finditer(_normal(text))]
    proxy = None
    if project.proxy_guard:
        guard = project.proxy_guard
        proxy = guard.proxy + (f" against {', '.join(guard.guardrails)}"
                               if guard.guardrails else "")
    latency = [f"{k}: {v}" for k, v in project.constraints.items() if _LATENCY_RE.search(
        _normal(str(k)))]
    domain_words = [m.group(0) for rx in _DOMAIN_RE.values() for m in rx.finditer(described)]
    return ProjectFacts(modalities, _found(_DOMAIN_RE, described), scan_modes,
                        list(dict.fromkeys(protected)), proxy, latency,
                        list(dict.fromkeys(domain_words)))


# -- incidents -------------------------------------------------------------------------------

@dataclass
class Incident:
    slug: str
    title: str
    factors: list[dict[str, Any]]
    lessons: list[dict[str, Any]]
    modalities: set[str]
    domains: set[str]
    primary: list[str] = field(default_factory=list)

    @classmethod
    def from_document(cls, slug: str, title: str, doc: dict[str, Any]) -> Incident:
        factors = [f for f in doc.get("contributing_factors") or [] if isinstance(f, dict)]
        lessons_ = [{"text": x.get("text", ""), "applies_to": list(x.get("applies_to") or [])}
                    for x in doc.get("lessons") or [] if isinstance(x, dict)]
        tags = {t for x in lessons_ for t in x["applies_to"]}
        counts = Counter(m for f in factors for m in dict.fromkeys(f.get("failure_modes") or []))
        top = max(counts.values(), default=0)
        primary = [m for m, n in counts.items() if n == top]
        told = _normal(" ".join([title, str(doc.get("project") or ""),
                                 str(doc.get("decision_supported") or ""),
                                 *(x["text"] for x in lessons_), *tags]))
        modalities = {name for name, v in MODALITIES.items()
                      if tags & set(v["tags"]) or set(counts) & set(v["modes"])
                      or _MODALITY_RE[name].search(told)}
        domains = _found(_DOMAIN_RE, told + " " + _normal(str(doc.get("summary") or "")))
        return cls(slug, title, factors, lessons_, modalities, domains, primary)

    def patterns(self) -> set[str]:
        return {p for f in self.factors for p in f.get("patterns") or []}

    def text_for(self, pattern: str) -> str:
        """The lessons, and the contributing factors carrying ``pattern``."""
        return " ".join([*(x["text"] for x in self.lessons),
                         *(f.get("description", "") for f in self.factors
                           if pattern in (f.get("patterns") or []))])


def _incidents(kb: KnowledgeBase, slugs: Iterable[str]) -> list[Incident]:
    found = {slug: Incident.from_document(slug, title, document)
             for slug, title, document in kb.documents(slugs)}
    return [found[s] for s in dict.fromkeys(slugs) if s in found and found[s].lessons]


def _tagged(kb: KnowledgeBase, modes: Iterable[str]) -> list[str]:
    """Incidents with lessons tagged with any of ``modes`` (newest first, capped per mode)."""
    return kb.with_lessons_tagged(modes, per_mode=PER_MODE_CANDIDATES)


# -- the rule --------------------------------------------------------------------------------

@dataclass
class GateLesson(LessonHit):
    """A lesson hit at a gate, with the reason it is shown."""

    reason: str = ""


def _asks(questions: Sequence[Question], words: Iterable[str]) -> Question | None:
    wanted = {_stem(w) for w in words}
    return next((q for q in questions if wanted & set(_words(q.text))), None)


def _gate_fit(incident: Incident, gate: Gate, facts: ProjectFacts,
              asked: Question | None) -> tuple[float, str] | None:
    """How the incident fits the gate: a score and the reason, or None when it does not.
    ``asked``: the question that brought a declared fact of the project into play."""
    patterns = incident.patterns()
    answered = [q for q in gate.questions if q.pattern in patterns]
    if not answered:
        if any(m in facts.scan_modes for m in incident.primary) and any(
                r.kind == "scan" for r in gate.evidence):
            return 0.5, "the gate reviews the project's scans"
        return None
    leading = {p for f in incident.factors for p in f.get("patterns") or []
               if set(f.get("failure_modes") or []) & set(incident.primary)}
    told = {p: _words(incident.text_for(p)) for p in patterns}
    shared = {q: {s: w for s, w in _words(q.text).items() if s in told[q.pattern]}
              for q in answered}
    best = max(answered, key=lambda q: (len(shared[q]), q == asked, q.pattern in leading,
                                        -answered.index(q)))
    words = shared[best]
    score = len(answered) / len(gate.questions) + 0.25 * min(len(words), 4)
    if len(words) >= 2:
        return score, f"answers '{best.text}' ({', '.join(words.values())})"
    return score, f"its {best.pattern} factor fits '{best.text}'"


def _project_links(incident: Incident, gate: Gate, facts: ProjectFacts
                   ) -> tuple[list[str], Question | None]:
    """Why the incident fits the project, one line per link (none: it does not), and the
    gate question that brought a declared fact into play, if one did."""
    links, asked = [], None
    primary = incident.primary
    found = [m for m in primary if m in facts.scan_modes]
    if found:
        links.append("shares " + ", ".join(f"{m} (scan {facts.scan_modes[m]})"
                                           for m in found) + " with the project's scans")
    fair = [m for m in primary if m in FAIRNESS and m not in found]
    if fair and facts.protected:
        links.append(f"{fair[0]} is a fairness failure and the project names protected "
                     f"groups ({', '.join(facts.protected)})")
    if ("proxy-objective" in primary and "proxy-objective" not in found and facts.proxy
            and (q := _asks(gate.questions, PROXY_WORDS))):
        links.append(f"proxy-objective, which the project's proxy guard watches "
                     f"({facts.proxy})")
        asked = q
    if ("latency-budget" in primary and "latency-budget" not in found and facts.latency
            and (q := _asks(gate.questions, CONSTRAINT_WORDS + LATENCY_KEYS))):
        links.append(f"latency-budget, and the project declares {'; '.join(facts.latency)}")
        asked = asked or q
    shared = sorted(incident.domains & facts.domains)
    if shared:
        links.append(f"same domain ({', '.join(shared)})")
    return links, asked


def select_lessons(kb: KnowledgeBase, project: Project, gate: Gate, *,
                   scans: Sequence[dict[str, Any]] = (),
                   datasheet: dict[str, Any] | None = None,
                   limit: int = LIMIT) -> list[GateLesson]:
    """The lessons to show at ``gate`` for ``project``, best first (see the module's rule)."""
    facts = project_facts(project, scans, datasheet)
    modes = set(facts.scan_modes)
    modes |= ({"proxy-objective"} if facts.proxy else set()) | (
        {"latency-budget"} if facts.latency else set()) | (FAIRNESS if facts.protected else set())
    slugs = _tagged(kb, modes)
    if facts.domain_words:  # incidents that use the words that named the project's domain
        slugs += [h.id for h in search(kb, " ".join(facts.domain_words), mode="fulltext",
                                       limit=DOMAIN_CANDIDATES)]
    ranked: list[GateLesson] = []
    for incident in _incidents(kb, slugs):
        if incident.modalities and not incident.modalities & facts.modalities:
            continue
        links, asked = _project_links(incident, gate, facts)
        if not links:
            continue
        gate_fit = _gate_fit(incident, gate, facts, asked)
        if gate_fit is None:
            continue
        score, why_gate = gate_fit
        ranked.append(GateLesson(
            incident.slug, incident.title, round(len(links) + score, 4), incident.lessons,
            failure_modes=list(incident.primary), reason="; ".join([why_gate, *links])))
    ranked.sort(key=lambda h: (-h.score, h.incident))
    return ranked[:limit]
