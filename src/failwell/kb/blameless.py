"""Blameless-language check: flag blame framing in a postmortem and suggest a systemic rewording.

Blame framing makes a *person* the cause of a failure. The check therefore decides by who
does what, clause by clause, not by keywords alone:

1. **Who** (:mod:`failwell.kb.people`): people by name (~21,000 first names from many
   cultures, honorifics, capitalised words that act mid-sentence), by role or group ("the
   data owner", "the night shift", "QA", "legal", "the vendor's team", "whoever"), and by
   pronoun ("you", "he", "she").
2. **What**: a person as the agent of a faulty act ("Marta merged the unreviewed change",
   "you never checked the split", "waved it through"), a counterfactual about a person ("if
   Priya had read the alert"), a passive faulty act with a person as its agent ("the wrong
   labels were applied by the night shift"), and, with or without a person, a judgment of
   character ("careless"), an error label ("human error") or an assignment of fault.
3. **Not blame**: a system as the agent ("the alert failed to fire"), a person doing the
   normal or the remedial thing ("Amara noticed the drift and rolled back"), a future action
   ("on-call staff should have access to the runbook"), and a term named to reject it ("we
   avoid 'human error' because it ends the inquiry", "nobody was at fault").

Rules come first and explain themselves. A sentence that names someone but that no rule
flags goes to a small classifier (a logistic regression over the MiniLM sentence embedding,
``data/blame_model.json``, trained by ``scripts/train_blame_model.py`` on the tuning sets
only) for the blame that has no keyword: "Kwame pushed the retrained model straight to prod
on Friday", sarcasm, reported blame. Without the embeddings extra the rules run alone.

Each flag names the span that triggered it, the person it is about and why. Work is linear in
the text: clauses are cut at :data:`MAX_CLAUSE` characters and every look-back is a bounded
window. Figures on a frozen test set written by someone who never saw these rules are in
``tests/data/frozen`` and README.md.
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from failwell.kb.people import (
    NOT_PERSON,
    ROLES,
    first_names,
    headline,
    people,
)

WINDOW = 160  # characters looked back from a trigger (bounded work on hostile input)

FAILURE_VERBS = (
    r"failed to|fail to|neglected|neglect to|forgot|forgotten|forget to|ignored|ignores|"
    r"skipped|missed|overlooked|disregarded|botched|bungled|mishandled|misconfigured|"
    r"misread|misjudged|misjudg(?:ed|ing)|mislabell?ed|messed up|screwed up|fouled up|broke|"
    r"rushed|hastily|blindly|carelessly|sloppily|recklessly|didn't bother|did not bother|"
    r"couldn't be bothered|could not be bothered|made an? (?:\w+ )?(?:mistake|error|blunder)|"
    r"(?:should|shouldn't|should not|ought to|should've) (?:have )?"
    r"(?:been (?:more )?)?(?:[\w-]+ed|\w+en|\w+wn|done|run|seen|caught|made|known|put|set|read|"
    r"sent|built|kept|found|thought|told|asked|stopped|careful)|"
    r"(?:could|could've) (?:have )?(?:easily )?(?:caught|prevented|avoided|stopped|noticed|"
    r"spotted|flagged|checked)|"
    r"was supposed to|were supposed to|(?:refused to|chose not to|opted not to) \w+|"
    r"(?:did not|didn't|never|wouldn't|would not) (?:even |once |bother to )?(?:check|test|"
    r"verify|review|read|look|notice|follow|tell|inform|escalate|update|validate|monitor|ask|"
    r"consult|document|flag|communicate|respond|wait|listen|heed|double-check|confirm|"
    r"report|mention|run|care|think|bother)\w*|"
    r"(?:signed off|approved|merged|shipped|deployed|pushed|released|launched|published)"
    r"(?: \w+){0,4} without|without (?:any )?(?:review|reviewing|testing|checking|asking|"
    r"telling|reading|looking|validating|approval)"
)
IDIOMS = (
    r"dropped the ball|drop the ball|asleep at the wheel|fell asleep|cut(?:ting)? corners|"
    r"(?:did ?n[o']t|never) do (?:his|her|their|your|my|its) homework|rubber[- ]?stamp\w*|"
    r"waved (?:\w+ ){0,3}through|took (?:\w+ ){1,4}at (?:their|its|his|her|face) (?:word|value)|"
    r"looked the other way|turned a blind eye|threw (?:\w+ ){0,3}over the wall|phoned it in|"
    r"let (?:\w+ ){0,3}slip|passed the buck|swept (?:\w+ ){0,3}under the (?:rug|carpet)|"
    r"winged it|half[- ]assed|took shortcuts|jumped the gun|not paying attention|"
    r"wasn't paying attention|weren't paying attention|was distracted|were distracted|"
    r"had one job|can't be trusted|cannot be trusted|(?:his|her|their|your) watch|"
    r"(?:his|her|their|your) (?:mistake|error|blunder|screw-?up|oversight|negligence)"
)
FAULTY_OBJECT = (
    r"unreviewed|untested|unvalidated|unapproved|unvetted|wrong|incorrect|broken|buggy|"
    r"faulty|bad|stale|outdated|half-baked|corrupt(?:ed)?|invalid|mislabell?ed|biased"
)
REMEDIAL = re.compile(
    r"\b(?:fix(?:ed)?|rolled back|roll back|revert(?:ed)?|caught|notic(?:ed|e)|found|spott(?:ed)?|"
    r"flagg(?:ed)?|report(?:ed)?|rais(?:ed)?|escalat(?:ed)?|pag(?:ed)?|detect(?:ed)?|"
    r"discover(?:ed)?|replac(?:ed)?|remov(?:ed)?|correct(?:ed)?|patch(?:ed)?|diagnos(?:ed)?|"
    r"identifi(?:ed)?|trac(?:ed)?|investigat(?:ed)?|restor(?:ed)?|mitigat(?:ed)?|warn(?:ed)?|"
    r"quarantin(?:ed)?|block(?:ed)?|stopp(?:ed)?|halt(?:ed)?|disabl(?:ed)?|pull(?:ed)?|"
    r"drain(?:ed)?|reschedul(?:ed)?|isolat(?:ed)?|evict(?:ed)?|cordon(?:ed)?|throttl(?:ed)?|"
    r"re-?ran|rotat(?:ed)?|revok(?:ed)?|purg(?:ed)?|rebuil[dt]|"
    r"retract(?:ed)?|question(?:ed)?|asked|documented|wrote up|filed)\b", re.I)
NEGATORS = re.compile(
    r"\b(?:not|no|never|nobody|none|neither|without|rather than|instead of|calling|call|"
    r"called|blaming|blame|labell?ing|dismissing|avoid|avoids|avoided|avoiding|beyond|"
    r"than|phrase|term|word|words|label|stop at|isn't|wasn't|aren't|weren't)\b|n't\b|"
    r"\bno one\b|\battribut\w*|\bascrib\w*|\bchalk\w*|[\"“‘']\s*$", re.I)


@dataclass(frozen=True)
class Rule:
    id: str
    why: str
    suggestion: str


RULES = {r.id: r for r in (
    Rule("error-label", "labels the cause as a person's error",
         "Name the conditions instead: what about the tool, signal or process made this error "
         "likely, and what would catch it next time?"),
    Rule("person-failed", "makes a person's act or omission the cause",
         "Describe what happened and what allowed it, not who: which check, signal, ownership "
         "or time pressure made this easy to miss?"),
    Rule("counterfactual-person", "judges a person with hindsight",
         "Describe what the person knew and saw at the time, and which safeguard was missing."),
    Rule("passive-blame", "hides the blame in the passive but still names who",
         "Say which step let the defect through (review, validation, tooling), not which "
         "person or group applied it."),
    Rule("character", "judges a person's character or attention",
         "Describe the action and its context instead of judging the person: what made the "
         "careful path hard or the risky path easy?"),
    Rule("reads-as-blame",
         "reads as making the person named here the cause (sentence classifier)",
         "Rewrite around the system: what the person saw and could do at the time, and which "
         "check, tool or process let the failure through."),
    Rule("fault", "assigns fault",
         "Blameless reviews look for contributing factors, not fault: describe the conditions "
         "that allowed the failure."),
)}


@dataclass(frozen=True)
class Flag:
    sentence: str
    rule: str
    trigger: str
    why: str
    suggestion: str
    person: str = ""  # who the sentence blames, where one is named

    def to_dict(self) -> dict:
        return asdict(self)


# -- what --------------------------------------------------------------------------------

_FAILURE = re.compile(rf"\b(?:{FAILURE_VERBS})\b", re.I)
_IDIOM = re.compile(rf"\b(?:{IDIOMS})\b", re.I)
_FAULTY = re.compile(rf"\b(?:{FAULTY_OBJECT})\b", re.I)
_ERROR_LABEL = re.compile(
    r"\b(?:human|operator|user|pilot|clerical|manual|engineer|analyst|people|person|"
    r"personnel|staff|administrator|admin|clerk|driver|nurse|developer|technician|"
    r"annotator|labell?er|reviewer|dispatcher|controller|individual|employee|worker)"
    r"(?:'s|s')? (?:error|mistake|slip|oversight|failure)s?\b"
    r"(?! (?:rate|rates|budget|count|counts|code|codes|page|pages|message|messages|handling|"
    r"class|classes|enum|type|types|metric|metrics|ratio))", re.I)
_CHARACTER = re.compile(
    r"\b(?:careless(?:ly|ness)?|negligen(?:t|ce|tly)|sloppy|sloppiness|lazy|laziness|"
    r"incompeten(?:t|ce)|reckless(?:ly|ness)?|irresponsib(?:le|ly|ility)|stupid(?:ity)?|"
    r"clueless|inattenti(?:ve|on)|complacen(?:t|cy)|amateurish|idiot(?:ic|s)?|foolish|"
    r"lapse in (?:judgment|judgement|attention)|poor judg(?:e)?ment|"
    r"(?:lack|lacked|lacking) (?:of )?(?:diligence|care|attention|rigou?r|competence))\b",
    re.I)
_FAULT = re.compile(
    r"(?:\bfault of\b|'s fault\b|\bat fault\b|\bto blame\b|\bblame (?:lies|falls|goes|rests)\b|"
    r"\bfault lies\b|\bheld (?:accountable|responsible)\b|\bresponsible for (?:the |this |that )?"
    rf"(?:(?:{FAULTY_OBJECT}|failed|botched|failing) \w+|failure|outage|incident|mistake|"
    r"error|bug|leak|breach|loss|problem|mess|regression)\b|"
    r"\bit'?s on (?:the|them|him|her|you)\b|\b(?:is|was|'s|are|were) (?:all |entirely |"
    r"squarely |totally |100% )?on (?:the |our |their )?(?:product|legal|security|platform|"
    r"research|infra|support|ops|marketing|sales|leadership|management|engineering|"
    r"him|her|them|you|qa)\b|\bonus (?:is|was) on\b|\bcaused by (?:the )?"
    r"(?=\S))", re.I)
_COUNTERFACTUALS = (  # "if Priya had read the alert", "had QA tested the fallback"
    re.compile(r"\bif (?:only )?(?P<who>[^,;]{1,40}?)(?:\s+had|'d)\s+(?:just |only |actually |"
               r"bothered to |taken the time to |not |n't )?[\w-]+", re.I),
    re.compile(r"^\s*(?:but |and )?had (?P<who>[^,;]{1,40}?)\s+(?:just |only |actually )?"
               r"(?:[\w-]+ed|done|read|seen|run|caught|looked|paid|kept|thought|known|been)\b",
               re.I),
)
_PASSIVE = re.compile(r"\b(?:was|were|been|being|got|is|are)\s+(?:\w+ly\s+)?(?P<verb>\w+(?:ed|en|"
                      r"wn|ght|ung|ut|et))\s+(?:\w+\s+){0,3}?by\s+(?P<agent>[^,;.]{1,60})", re.I)


def _negated(clause: str, start: int) -> bool:
    window = clause[max(0, start - WINDOW):start]
    window = " ".join(window.split()[-4:])
    return bool(NEGATORS.search(window))


def _quoted(clause: str, start: int, end: int) -> bool:
    """Is the span inside quotation marks (a phrase mentioned, not used)?"""
    before = clause[max(0, start - WINDOW):start]
    doubles = before.count('"') + before.count("“") - before.count("”")
    singles = len(re.findall(r"(?:^|(?<=[\s(]))['‘]", before)) - len(
        re.findall(r"['’](?=[\s,.;:)!?]|$)", before))
    return doubles % 2 == 1 or singles > 0


def _person_before(clause: str, start: int, found: list[tuple[int, int, str]]
                   ) -> str | None:
    """The person who is the agent of the act at ``start``: the nearest person mention
    before it in the clause, with no system noun or new subject in between."""
    candidates = [p for p in found if p[1] <= start and start - p[1] <= WINDOW // 2]
    if not candidates:
        return None
    s, e, who = candidates[-1]
    before = clause[max(0, s - 40):s].lower().split()
    before = [w for w in before if w not in {"the", "a", "an", "our", "their", "his", "her"}]
    if before and (before[-1].endswith("ing") or before[-1] in _OBJECT_OF):
        return None  # "blaming the operator", "for the engineer": not the agent
    if before and before[-1] in {"that", "which", "whom"}:
        return None  # "the service that Anders's team operates returned ...": the service
    between = clause[e:start].lower()
    if re.search(r"\b(?:the|a|an|its|this|that) (?:\w+ )?(?:" + "|".join(
            sorted(w for w in NOT_PERSON if len(w) > 3)) + r")s?\b(?! by)", between):
        return None  # "the analyst's dashboard failed to load": the dashboard did
    if re.search(r"\b(?:who|which|that) (?:noticed|found|caught|reported|flagged|fixed)\b",
                 between):
        return None
    return who


_OBJECT_OF = frozenset("""
to for with from about of at into onto toward towards blame blamed blaming ask asked tell told
page paged thank thanked help helped by than like
""".split())
_POSSESSIVE_FAULT = re.compile(
    r"\b(?P<who>[^\W\d_][\w-]*)['’]s (?:own )?(?:mistake|error|blunder|oversight|negligence|"
    r"carelessness|screw-?up|fault|bad call|lapse)s?\b", re.I)


MAX_CLAUSE = 600  # characters; longer runs (no punctuation) are cut, so work stays linear


def _clauses(sentence: str) -> list[str]:
    parts = re.split(r"[;:]|,\s+but\s+|\s+but\s+|\s+—\s+|\s+-\s+", sentence)
    return [p[i:i + MAX_CLAUSE] for p in parts if p for i in range(0, len(p), MAX_CLAUSE)]


def check_sentence(sentence: str, *, model: bool | None = None) -> list[Flag]:
    """Every rule that fires on any clause of ``sentence`` (at most one flag per rule); where
    none fires but a person is named, the sentence classifier decides (``model=None``: when
    the embeddings extra is installed)."""
    return check_sentences([sentence], model=model)[0]


def check_sentences(sentences: list[str], *, model: bool | None = None) -> list[list[Flag]]:
    """:func:`check_sentence` for each sentence; the classifier sees, in one batch, only the
    sentences that name someone and that no rule flagged."""
    flags = [rule_flags(s) for s in sentences]
    if _use_model(model):
        ask = [i for i, (s, f) in enumerate(zip(sentences, flags, strict=True))
               if not f and names_someone(s)][:MAX_MODEL_SENTENCES]
        for i, found in zip(ask, _model_flags([sentences[i] for i in ask]), strict=True):
            flags[i] = found
    return flags


def rule_flags(sentence: str) -> list[Flag]:
    """The rules alone."""
    flags: dict[str, Flag] = {}

    def flag(rule: str, trigger: str, person: str = "") -> None:
        if rule not in flags:
            r = RULES[rule]
            flags[rule] = Flag(sentence, rule, trigger.strip(), r.why, r.suggestion, person)

    for clause in _clauses(sentence):
        found = people(clause)
        for m in _ERROR_LABEL.finditer(clause):
            if not _negated(clause, m.start()) and not _quoted(clause, m.start(), m.end()):
                flag("error-label", m.group(0))
        for m in _CHARACTER.finditer(clause):
            if not _negated(clause, m.start()) and not _quoted(clause, m.start(), m.end()) \
                    and not re.search(r"\b(?:no|nobody|no one|none)\b", clause[:m.start()], re.I):
                flag("character", m.group(0))
        for m in _FAULT.finditer(clause):
            if m.group(0).lower().startswith("caused by"):
                after = [p for p in found if 0 <= p[0] - m.end() <= 12]
                if not after:
                    continue
            if not _negated(clause, m.start()):
                flag("fault", m.group(0))
        for m in _POSSESSIVE_FAULT.finditer(clause):
            who = m.group("who")
            if (who.lower() in ROLES or who.lower() in first_names() or any(
                    p[0] == m.start() for p in found)) and not _negated(clause, m.start()):
                flag("fault", m.group(0), who)
        for m in _IDIOM.finditer(clause):
            if not _negated(clause, m.start()) and not _quoted(clause, m.start(), m.end()):
                who = _person_before(clause, m.start(), found) or ""
                system = re.search(r"\b(?:" + "|".join(NOT_PERSON) + r")s?\b",
                                   clause[max(0, m.start() - WINDOW):m.start()], re.I)
                if who or not (system or re.match(r"(?:let|waved|took|threw)", m.group(0),
                                                  re.I)):
                    flag("character" if not who else "person-failed", m.group(0), who)
        if found and not headline(clause):
            _agent_rules(clause, found, flag)
    return list(flags.values())


def _agent_rules(clause: str, found, flag) -> None:
    for m in _FAILURE.finditer(clause):
        text = m.group(0).lower()
        if text.startswith(("should", "could", "ought")) and (re.search(
                r"have (?:access|a|an|the|visibility|permission|time|more|some)\b", text)
                or re.match(r"-|\s+(?:access|permission|rights)\b", clause[m.end():])):
            continue  # possession, not a counterfactual: "should have (read-only) access"
        if _quoted(clause, m.start(), m.end()):
            continue
        last = text.split()[-1]
        if text.startswith(("did not", "didn't", "never", "would")) and (
                REMEDIAL.match(last) or _FAILURE.fullmatch(last)):
            continue  # "did not skip any step", "never stopped investigating"
        who = _person_before(clause, m.start(), found)
        if who and not _negated_subject(clause, who):
            flag("person-failed", m.group(0), who)
            break
    for m in _FAULTY.finditer(clause):
        who = _person_before(clause, m.start(), found)
        if not who or _negated_subject(clause, who):
            continue
        act = clause[clause.find(who) + len(who):m.start()]
        if REMEDIAL.search(act) or _UNDERGOES.search(act) or not re.search(
                r"\w+(?:ed|t|k|ew|an|ove|ote|ent|ut)\b", act):
            continue
        flag("person-failed", f"{act.strip()} {m.group(0)}", who)
        break
    for m in (m for rx in _COUNTERFACTUALS for m in rx.finditer(clause)):
        who = [p for p in found if m.start("who") <= p[0] < m.end("who")]
        if who and not _negated(clause, m.start()):
            flag("counterfactual-person", m.group(0), who[0][2])
            break
    for m in _PASSIVE.finditer(clause):
        agent = [p for p in found if m.start("agent") <= p[0] < m.start("agent") + 40]
        if not agent:
            continue
        faulty = _FAILURE.search(m.group("verb")) or _FAULTY.search(clause[:m.start("agent")]) \
            or re.match(r"(?:ignored|missed|overlooked|skipped|botched|bungled|mishandled|"
                        r"approved|rubber-stamped|waved|rushed|mangled|leaked|misreported|"
                        r"buried|delayed|committed|set)$", m.group("verb"), re.I)
        if faulty and not REMEDIAL.match(m.group("verb")):
            flag("passive-blame", m.group(0), agent[0][2])
            break


def _negated_subject(clause: str, who: str) -> bool:
    return bool(re.search(r"\b(?:no|not|nobody|no one|neither)\b[^;]{0,40}" + re.escape(who),
                          clause, re.I))


# Verbs a person undergoes rather than does ("users received incorrect notices").
_UNDERGOES = re.compile(r"\b(?:received|receive|got|saw|see|experienced|encountered|faced|"
                        r"were shown|were given|was shown|was given|lost|suffered|hit|"
                        r"affected|impacted|notified|contacted|charged|billed|denied|sent)\b",
                        re.I)


# -- documents -----------------------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(“‘])")


def split_sentences(text: str) -> list[str]:
    """Sentences of a document; Markdown front matter, headings and list marks are dropped."""
    text = strip_front_matter(text)
    lines = [re.sub(r"^\s*(?:[-*+]|\d+\.)\s+", "", ln) for ln in text.splitlines()
             if ln.strip() and not ln.lstrip().startswith(("#", "|", "```"))]
    out = []
    for paragraph in " ".join(lines).split("  "):
        out += [s.strip() for s in _SENTENCE.split(paragraph) if s.strip()]
    return out


def strip_front_matter(text: str) -> str:
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4 :]
    return text


def lint(text: str, *, model: bool | None = None) -> list[Flag]:
    """All flags in a document (a Markdown postmortem or plain text)."""
    return [flag for found in check_sentences(split_sentences(text), model=model)
            for flag in found]


# -- the sentence classifier ---------------------------------------------------------------

MAX_MODEL_SENTENCES = 5000  # per document: bounded work; past it the rules still run

_OBJECT_VERB = re.compile(r"(?:[\w-]+ed|told|sent|left|kept|let|made|gave|took|hit|put|"
                          r"asked|paged|telling|asking|paging|ignoring|ignores|ignore)$")
_ACCUSING = re.compile(r"(?:blamed|faulted|accused|critici[sz]ed|singled|scapegoated|"
                       r"reprimanded|disciplined|fired|sacked)$")


def names_someone(sentence: str) -> bool:
    """Does the sentence name a person, a role or a group as someone who acts, or address
    "you"? Not when the person is only the object ("the model ignored night shifts") or the
    one who fixed or found the problem ("Kwame rolled back the release")."""
    for clause in _clauses(sentence):
        for start, end, _ in people(clause):
            before = clause[max(0, start - 40):start].lower().split()[-2:]
            if any(_OBJECT_VERB.match(w) and not _ACCUSING.match(w)
                   for w in before if w not in {"the", "a", "an", "our", "their"}):
                continue
            if not REMEDIAL.match(clause[end:].lstrip(" ,'’s").removeprefix("quickly ")):
                return True
    return False


def model_input(sentence: str) -> str:
    """What the classifier embeds (the same in training and use)."""
    return sentence.strip()


@functools.cache
def _weights() -> dict | None:
    import json

    path = Path(__file__).with_name("data") / "blame_model.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _use_model(model: bool | None) -> bool:
    if model is False or _weights() is None:
        return False
    from failwell.kb import embeddings

    return True if model else embeddings.available()


def probabilities(sentences: list[str]):
    """The classifier's probability that each sentence frames a person as the cause."""
    import numpy as np

    from failwell.kb import embeddings

    weights = _weights()
    if not sentences:
        return np.zeros(0)
    vectors = embeddings.encode([model_input(s) for s in sentences])
    logits = vectors @ np.asarray(weights["coef"], dtype=np.float32) + weights["intercept"]
    return 1.0 / (1.0 + np.exp(-logits))


def _model_flags(sentences: list[str]) -> list[list[Flag]]:
    threshold = _weights()["threshold"]
    rule = RULES["reads-as-blame"]
    out = []
    for sentence, p in zip(sentences, probabilities(sentences), strict=True):
        if p < threshold:
            out.append([])
            continue
        who = next((found[0][2] for c in _clauses(sentence) if (found := people(c))), "")
        out.append([Flag(sentence, rule.id, who, f"{rule.why}, p = {p:.2f}", rule.suggestion,
                         who)])
    return out
