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
the text, and a hostile megabyte takes well under a second: clauses are cut at
:data:`MAX_CLAUSE` characters, every look-back is a bounded window, a rule that has fired is
not looked for again, each big regex is tried only where one of its words occurs
(:class:`_Trigger`), what the triggers of a clause would each ask again is asked once
(:class:`_Clause`), and a repeated sentence is checked and embedded once (at most
:data:`MAX_MODEL_SENTENCES` go to the classifier). Figures on a frozen test set written by
someone who never saw these rules are in ``tests/data/frozen`` and README.md.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Callable, Iterator
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
# Verbs a person undergoes rather than does ("users received incorrect notices").
_UNDERGOES = re.compile(r"\b(?:received|receive|got|saw|see|experienced|encountered|faced|"
                        r"were shown|were given|was shown|was given|lost|suffered|hit|"
                        r"affected|impacted|notified|contacted|charged|billed|denied|sent)\b",
                        re.I)
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
    return _negating(" ".join(window.split()[-4:]))


@functools.lru_cache(maxsize=4096)
def _negating(words: str) -> bool:
    """Do the (last four) words before a trigger negate it? Cached: a text that repeats a
    negated trigger asks about the same few words again and again."""
    return _NEGATION.search(words) is not None


_OPENING_SINGLE = re.compile(r"(?:^|(?<=[\s(]))['‘]")
_CLOSING_SINGLE = re.compile(r"['’](?=[\s,.;:)!?]|$)")


def _quoted(clause: str, start: int, end: int) -> bool:
    """Is the span inside quotation marks (a phrase mentioned, not used)?"""
    before = clause[max(0, start - WINDOW):start]
    doubles = before.count('"') + before.count("“") - before.count("”")
    singles = 0
    if "'" in before or "‘" in before:  # (most windows hold no single quote at all)
        singles += len(_OPENING_SINGLE.findall(before))
    if "'" in before or "’" in before:
        singles -= len(_CLOSING_SINGLE.findall(before))
    return doubles % 2 == 1 or singles > 0


_SYSTEM_BETWEEN = re.compile(r"\b(?:the|a|an|its|this|that) (?:\w+ )?(?:" + "|".join(
    sorted(w for w in NOT_PERSON if len(w) > 3)) + r")s?\b(?! by)")
_FINDER_BETWEEN = re.compile(
    r"\b(?:who|which|that) (?:noticed|found|caught|reported|flagged|fixed)\b")


def _person_before(c: _Clause, start: int) -> str | None:
    """The person who is the agent of the act at ``start``: the nearest person mention
    before it in the clause, with no system noun or new subject in between."""
    nearest = c.person_ending_before(start, WINDOW // 2)
    if nearest is None:
        return None
    clause = c.text
    s, e, who = nearest
    before = clause[max(0, s - 40):s].lower().split()
    before = [w for w in before if w not in {"the", "a", "an", "our", "their", "his", "her"}]
    if before and (before[-1].endswith("ing") or before[-1] in _OBJECT_OF):
        return None  # "blaming the operator", "for the engineer": not the agent
    if before and before[-1] in {"that", "which", "whom"}:
        return None  # "the service that Anders's team operates returned ...": the service
    between = clause[e:start].lower()
    if _SYSTEM_BETWEEN.search(between):
        return None  # "the analyst's dashboard failed to load": the dashboard did
    if _FINDER_BETWEEN.search(between):
        return None
    return who


_OBJECT_OF = frozenset("""
to for with from about of at into onto toward towards blame blamed blaming ask asked tell told
page paged thank thanked help helped by than like
""".split())
_FAULT_OF_WHOM = (r"['’]s (?:own )?(?:mistake|error|blunder|oversight|negligence|"
                  r"carelessness|screw-?up|fault|bad call|lapse)s?\b")
_POSSESSIVE_FAULT = re.compile(r"\b(?P<who>[^\W\d_][\w-]*)" + _FAULT_OF_WHOM, re.I)
_POSSESSIVE_TAIL = re.compile(_FAULT_OF_WHOM, re.I)
_RUN = re.compile(r"(?<![\w-])[\w-]++")  # a whole run of word characters and hyphens


def _possessive_faults(text: str) -> Iterator[re.Match]:
    """The matches of ``_POSSESSIVE_FAULT.finditer(text)``, in linear time. The regex tries
    each word start inside a hyphenated run ("a-b-c-...") and reads the rest of the run from
    each: quadratic. A match ends its run with "'s mistake" (the tail), and every start in a
    run reaches the same tail, so the first start that is a word's (the run's own, or one
    after a hyphen) is the match: tried from each tail back at its run, in order."""
    tails = [m.start() for m in _POSSESSIVE_TAIL.finditer(text)]
    if not tails:
        return
    run_start = {m.end(): m.start() for m in _RUN.finditer(text)}
    end = 0  # where the last match ended: finditer goes on from there
    for tail in tails:
        x = max(run_start.get(tail, tail), end)
        while x < tail:
            if m := _POSSESSIVE_FAULT.match(text, x):
                yield m
                end = m.end()
                break
            x = text.find("-", x, tail) + 1 or tail


class _Trigger:
    """A regex and words that every match of it holds, once case-folded (:func:`_fold`).

    A text with none of the words skips the regex; where every match starts with one of
    them (``at_start``), the regex is tried only where one occurs. A big alternation tried at
    every word boundary is what made 1 MB take seconds: 0.1-0.4 ms for one 600-character
    clause, against ~10 us to look for the words."""

    def __init__(self, pattern: re.Pattern, *words: str, at_start: bool = False,
                 scan: Callable[[str], Iterator[re.Match]] | None = None) -> None:
        self.pattern, self.words, self.at_start = pattern, words, at_start
        self.any_word = re.compile("|".join(map(re.escape, words)))
        self.scan = scan or pattern.finditer  # (not at_start) the same matches, maybe quicker

    def finditer(self, text: str, folded: str | None = None) -> Iterator[re.Match]:
        """The matches of ``pattern.finditer(text)``; ``folded`` is ``_fold(text)``."""
        folded = _fold(text) if folded is None else folded
        if len(folded) < 200:  # one regex is quicker on a short text, substrings on a long one
            if not self.any_word.search(folded):
                return iter(())
        elif not self.at_start and not any(w in folded for w in self.words):
            return iter(())
        return self._at_words(text, folded) if self.at_start else self.scan(text)

    def search(self, text: str) -> re.Match | None:
        return next(self.finditer(text), None)

    def starts(self, folded: str) -> list[int]:
        """Where one of the words occurs in the folded text, in order (where a match can
        start, if ``at_start``)."""
        starts = set()
        for word in self.words:
            i = folded.find(word)
            while i >= 0:
                starts.add(i)
                i = folded.find(word, i + 1)
        return sorted(starts)

    def _at_words(self, text: str, folded: str) -> Iterator[re.Match]:
        """As finditer goes, left to right: the first match at or after the last one's end,
        but tried only where a word occurs, as every match starts there."""
        end = 0
        for i in self.starts(folded):
            if i >= end and (m := self.pattern.match(text, i)):
                yield m
                end = m.end()


_NEGATION = _Trigger(
    NEGATORS, "no", "never", "neither", "without", "rather than", "instead of", "call", "blam",
    "label", "dismissing", "avoid", "beyond", "than", "phrase", "term", "word", "stop at",
    "isn't", "wasn't", "aren't", "weren't", "n't", "attribut", "ascrib", "chalk", '"', "“", "‘",
    "'", at_start=True)
_SYSTEM_BEFORE = _Trigger(re.compile(r"\b(?:" + "|".join(sorted(NOT_PERSON)) + r")s?\b", re.I),
                          *sorted(NOT_PERSON), at_start=True)
# by id: hashing a compiled pattern hashes all its code (5 us for _FAILURE, on every lookup)
_TRIGGERS = {id(t.pattern): t for t in (
    _Trigger(_ERROR_LABEL, "human", "operator", "user", "pilot", "clerical", "manual",
             "engineer", "analyst", "people", "person", "staff", "admin", "clerk", "driver",
             "nurse", "developer", "technician", "annotator", "label", "reviewer", "dispatcher",
             "controller", "individual", "employee", "worker", at_start=True),
    _Trigger(_CHARACTER, "careless", "negligen", "slopp", "laz", "incompeten", "reckless",
             "irresponsib", "stupid", "clueless", "inattenti", "complacen", "amateurish",
             "idiot", "foolish", "lapse in", "poor judg", "lack", at_start=True),
    _Trigger(_FAULT, "fault", "'s", "at fault", "to blame", "blame", "held", "responsible",
             "it's on", "its on", "is ", "was ", "are ", "were ", "onus", "caused by",
             at_start=True),
    _Trigger(_POSSESSIVE_FAULT, "mistake", "error", "blunder", "oversight", "negligence",
             "carelessness", "screw", "fault", "bad call", "lapse", scan=_possessive_faults),
    _Trigger(_IDIOM, "drop", "asleep", "fell", "cut", "did", "never", "rubber", "waved", "took",
             "looked", "turned", "threw", "phoned", "let", "passed", "swept", "winged", "half",
             "jumped", "not", "was", "were", "had", "can", "his", "her", "their", "your",
             at_start=True),
    _Trigger(_FAILURE, "fail", "neglect", "forg", "ignore", "skipped", "mis", "overlooked",
             "disregarded", "botched", "bungled", "messed", "screwed", "fouled", "broke",
             "rushed", "hastily", "blindly", "carelessly", "sloppily", "recklessly", "did",
             "could", "made", "should", "ought", "was supposed", "were supposed", "refused",
             "chose", "opted", "never", "would", "signed off", "approved", "merged", "shipped",
             "deployed", "pushed", "released", "launched", "published", "without",
             at_start=True),
    _Trigger(_FAULTY, "unreviewed", "untested", "unvalidated", "unapproved", "unvetted",
             "wrong", "incorrect", "broken", "buggy", "faulty", "bad", "stale", "outdated",
             "half-baked", "corrupt", "invalid", "mislabel", "biased", at_start=True),
    _Trigger(_COUNTERFACTUALS[0], "if "),
    _Trigger(_COUNTERFACTUALS[1], "had "),
    _Trigger(_PASSIVE, "by"),
    _Trigger(REMEDIAL, "fix", "roll", "revert", "caught", "notic", "found", "spott", "flagg",
             "report", "rais", "escalat", "pag", "detect", "discover", "replac", "remov",
             "correct", "patch", "diagnos", "identifi", "trac", "investigat", "restor",
             "mitigat", "warn", "quarantin", "block", "stopp", "halt", "disabl", "pull", "drain",
             "reschedul", "isolat", "evict", "cordon", "throttl", "re-ran", "reran", "rotat",
             "revok", "purg", "rebuil", "retract", "question", "asked", "documented",
             "wrote up", "filed", at_start=True),
    _Trigger(_UNDERGOES, "receive", "got", "saw", "see", "experienced", "encountered", "faced",
             "were shown", "were given", "was shown", "was given", "lost", "suffered", "hit",
             "affected", "impacted", "notified", "contacted", "charged", "billed", "denied",
             "sent", at_start=True),
)}
# The only characters that re.IGNORECASE matches to an ASCII letter and str.lower() does not
# turn into it (found by trying every code point; tests/kb/test_blameless.py checks it).
_IGNORECASE_ASCII = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s",
                                   "\u212a": "k"})


def _fold(text: str) -> str:
    """``text`` lower-cased so that a keyword occurs in it wherever an re.IGNORECASE regex
    could match that keyword's letters."""
    if text.isascii() or not any(c in text for c in "\u0130\u0131\u017f\u212a"):
        return text.lower()
    return text.translate(_IGNORECASE_ASCII).lower()  # (a dict lookup per character: slow)


MAX_CLAUSE = 600  # characters; longer runs (no punctuation) are cut, so work stays linear
# Was "[;:]|,\s+but\s+|\s+but\s+|\s+—\s+|\s+-\s+". The look-behind starts a match only at
# the first of a run of spaces, and the run is read once (possessive): from inside a long run
# (tabs, no-break spaces) each start re-read the rest of it, which was quadratic. The splits
# are the same: a match inside a run is also one from the run's first space.
_CLAUSE_BREAK = re.compile(r"[;:]|,\s+but\s+|\s(?<!\s\s)\s*+(?:but|—|-)\s+")
_BREAK_CHARS = (";", ":", "but", "—", "-")  # every match of _CLAUSE_BREAK holds one


def _clauses(sentence: str) -> list[str]:
    if len(sentence) <= MAX_CLAUSE and not any(c in sentence for c in _BREAK_CHARS):
        return [sentence] if sentence else []  # (most sentences: skips the split)
    parts = _CLAUSE_BREAK.split(sentence)
    return [p[i:i + MAX_CLAUSE] for p in parts if p for i in range(0, len(p), MAX_CLAUSE)]


class _Clause:
    """A clause and what the rules ask of it, each worked out once per clause: the people in
    it (shared by the rules, :func:`names_someone` and the classifier), its case-folded text
    for the trigger words, and searches that every trigger in it would otherwise repeat.
    Slots and a memo made on first use: a 1 MB text can be 100,000 clauses."""

    __slots__ = ("_folded", "_longest", "_memo", "found", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.found = people(text)  # sorted by start
        self._folded: str | None = None
        self._longest = -1  # the longest person mention, once asked
        self._memo: dict | None = None

    @property
    def folded(self) -> str:
        if self._folded is None:
            self._folded = _fold(self.text)
        return self._folded

    def finditer(self, pattern: re.Pattern) -> Iterator[re.Match]:
        """``pattern.finditer`` over the clause, sped up by its :class:`_Trigger`."""
        return _TRIGGERS[id(pattern)].finditer(self.text, self.folded)

    def person_ending_before(self, start: int, window: int) -> tuple[int, int, str] | None:
        """The last person (in :func:`people` order) who ends before ``start``, at most
        ``window`` characters before it; walks back from ``start`` only as far as a person
        could still end in the window."""
        found = self.found
        if self._longest < 0:
            self._longest = max((e - s for s, e, _ in found), default=0)
        for i in range(bisect.bisect_left(found, (start,)) - 1, -1, -1):
            s, e, _ = found[i]
            if s + self._longest < start - window:
                break  # this one and every one before it end too far back
            if e <= start and start - e <= window:
                return found[i]
        return None

    def person_starting_in(self, lo: int, hi: int) -> tuple[int, int, str] | None:
        """The first person who starts in ``[lo, hi)``."""
        i = bisect.bisect_left(self.found, (lo,))
        return self.found[i] if i < len(self.found) and self.found[i][0] < hi else None

    def no_before(self, start: int) -> bool:
        """Is there a "no", "nobody", "no one" or "none" in ``text[:start]``, for a
        ``start`` where a word begins after a non-word character? The first one in the whole
        clause answers for every ``start``: these words cannot overlap, and one that ends
        before such a ``start`` reads the same in the cut text."""
        memo = self._memo_dict()
        if "no" not in memo:
            memo["no"] = _NO_WORD.search(self.text)
        return memo["no"] is not None and memo["no"].end() <= start

    def negated_subject(self, who: str) -> bool:
        memo = self._memo_dict()
        if ("negated", who) not in memo:
            memo["negated", who] = _negated_subject(self.text, who)
        return memo["negated", who]

    def matches_between(self, pattern: re.Pattern, a: int, end: int) -> bool:
        """Does ``pattern`` match in ``text[a:end]``? Asked again and again with the same
        ``a`` and a growing ``end`` (each trigger after a person); see :class:`_GrowingPrefix`."""
        memo = self._memo_dict()
        key = (a, id(pattern))
        prefix = memo.get(key)
        if prefix is None and end - a <= 32:  # a short text, likely asked about once: directly
            return pattern.search(self.text[a:end]) is not None
        if prefix is None:
            trigger = _TRIGGERS.get(id(pattern))
            starts = None
            if trigger is not None and trigger.at_start:  # where in the clause a match can start
                if id(trigger) not in memo:
                    memo[id(trigger)] = trigger.starts(self.folded)
                starts = memo[id(trigger)]
            prefix = memo[key] = _GrowingPrefix(self.text[a:], pattern, starts, a)
        return prefix(end - a)

    def _memo_dict(self) -> dict:
        if self._memo is None:
            self._memo = {}
        return self._memo


_NO_WORD = re.compile(r"\b(?:no|nobody|no one|none)\b", re.I)


class _GrowingPrefix:
    """Does ``pattern`` match in ``text[:end]``, for ends that mostly grow? Each answer scans
    only what was added since the last one, plus the widest match (:data:`_WIDEST`) for one
    that reaches past the old end, so all of a clause's questions together cost linear time
    (re-reading the prefix for every trigger made 1 MB of "Priya wrong " take ~20 s).

    Exact for patterns whose matches depend on nothing after them but one character (a
    closing ``\\b``): a match that ends before an old end is found (and kept) within the old
    prefix already."""

    __slots__ = ("end", "hit", "offset", "overlap", "pattern", "starts", "text")

    def __init__(self, text: str, pattern: re.Pattern, starts: list[int] | None = None,
                 offset: int = 0) -> None:
        self.text, self.pattern, self.overlap = text, pattern, _WIDEST[id(pattern)]
        self.end = 0  # no match in text[:self.end], unless self.hit
        self.hit = False  # a match ends before self.end, so in every longer prefix too
        # where matches can start (its _Trigger's words), ``offset`` before the text's start
        self.starts, self.offset = starts, offset

    def __call__(self, end: int) -> bool:
        if end < self.end:  # a shorter prefix: answered afresh
            return self._search(0, end) is not None
        if self.hit:
            return True
        m = self._search(max(0, self.end - self.overlap), end)
        if m is None:
            self.end = end
            return False
        if m.end() < end:  # not touching the cut: a match in every longer prefix too
            self.end, self.hit = end, True
        return True

    def _search(self, pos: int, end: int) -> re.Match | None:
        """``pattern.search(text, pos, end)``."""
        if self.starts is None:
            return self.pattern.search(self.text, pos, end)
        lo = bisect.bisect_left(self.starts, pos + self.offset)
        hi = bisect.bisect_left(self.starts, end + self.offset)
        for i in self.starts[lo:hi]:
            if m := self.pattern.match(self.text, i - self.offset, end):
                return m
        return None


def check_sentence(sentence: str, *, model: bool | None = None) -> list[Flag]:
    """Every rule that fires on any clause of ``sentence`` (at most one flag per rule); where
    none fires but a person is named, the sentence classifier decides (``model=None``: when
    the embeddings extra is installed)."""
    return check_sentences([sentence], model=model)[0]


class Abandoned(Exception):
    """The caller's ``stop()`` said to give up (the web client went away)."""


def check_sentences(sentences: list[str], *, model: bool | None = None,
                    stop: Callable[[], bool] | None = None) -> list[list[Flag]]:
    """:func:`check_sentence` for each sentence; the classifier sees, in one batch, only the
    sentences that name someone and that no rule flagged. A sentence that occurs again is
    checked once (a hostile text can repeat one sentence a hundred thousand times).
    ``stop()`` is asked every few hundred sentences; when it says so, :class:`Abandoned`."""
    use_model = _use_model(model)
    rules: dict[str, list[Flag]] = {}
    parsed: dict[str, list[_Clause]] = {}  # kept for the classifier: sentences no rule flags
    for n, s in enumerate(dict.fromkeys(sentences)):
        if stop and n % 256 == 0 and stop():
            raise Abandoned
        clauses = _parse(s)
        rules[s] = _rule_flags(s, clauses)
        if use_model and not rules[s]:
            parsed[s] = clauses
    flags = [list(rules[s]) for s in sentences]
    if use_model:
        if stop and stop():
            raise Abandoned
        ask = list(itertools.islice(
            (i for i, (s, f) in enumerate(zip(sentences, flags, strict=True))
             if not f and _names_someone(parsed[s])), MAX_MODEL_SENTENCES))
        for i, found in zip(ask, _model_flags([sentences[i] for i in ask], parsed),
                            strict=True):
            flags[i] = found
    return flags


def rule_flags(sentence: str) -> list[Flag]:
    """The rules alone."""
    return _rule_flags(sentence, _parse(sentence))


def _parse(sentence: str) -> list[_Clause]:
    return [_Clause(c) for c in _clauses(sentence)]


def _rule_flags(sentence: str, clauses: list[_Clause]) -> list[Flag]:
    """The rules on the clauses of ``sentence``, in order. Only the first flag of a rule is
    kept, so once a rule has fired it is not looked for again: on a hostile text that
    repeats a trigger, checking every repeat for negation and quotes was most of the work."""
    flags: dict[str, Flag] = {}

    def flag(rule: str, trigger: str, person: str = "") -> None:
        if rule not in flags:
            r = RULES[rule]
            flags[rule] = Flag(sentence, rule, trigger.strip(), r.why, r.suggestion, person)

    for c in clauses:
        clause = c.text
        if "error-label" not in flags:
            for m in c.finditer(_ERROR_LABEL):
                if not _negated(clause, m.start()) and not _quoted(clause, m.start(), m.end()):
                    flag("error-label", m.group(0))
                    break
        if "character" not in flags:
            for m in c.finditer(_CHARACTER):
                if not _negated(clause, m.start()) and not _quoted(clause, m.start(), m.end()) \
                        and not c.no_before(m.start()):
                    flag("character", m.group(0))
                    break
        if "fault" not in flags:
            _fault_rules(c, flag)
        if "character" not in flags or "person-failed" not in flags:
            _idiom_rule(c, flags, flag)
        if c.found and not headline(clause):
            _agent_rules(c, flags, flag)
    return list(flags.values())


def _fault_rules(c: _Clause, flag) -> None:
    clause = c.text
    for m in c.finditer(_FAULT):
        if m.group(0).lower().startswith("caused by") and not c.person_starting_in(
                m.end(), m.end() + 13):
            continue
        if not _negated(clause, m.start()):
            flag("fault", m.group(0))
            return
    for m in c.finditer(_POSSESSIVE_FAULT):
        who = m.group("who")
        if (who.lower() in ROLES or who.lower() in first_names() or c.person_starting_in(
                m.start(), m.start() + 1)) and not _negated(clause, m.start()):
            flag("fault", m.group(0), who)
            return


_SHIFTING = re.compile(r"(?:let|waved|took|threw)", re.I)  # idioms that a system can do


def _idiom_rule(c: _Clause, flags: dict, flag) -> None:
    clause = c.text
    for m in c.finditer(_IDIOM):
        if not _negated(clause, m.start()) and not _quoted(clause, m.start(), m.end()):
            who = _person_before(c, m.start()) or ""
            if who:
                flag("person-failed", m.group(0), who)
            elif not (_SYSTEM_BEFORE.search(clause[max(0, m.start() - WINDOW):m.start()])
                      or _SHIFTING.match(m.group(0))):
                flag("character", m.group(0))
            if "character" in flags and "person-failed" in flags:
                return


_POSSESSION = re.compile(r"have (?:access|a|an|the|visibility|permission|time|more|some)\b")
_ACCESS_AFTER = re.compile(r"-|\s+(?:access|permission|rights)\b")
# Where the act before a faulty object has a verb; one word character stands for \w+, which
# finds the same acts without trying every start inside a long word.
_ACT_VERB = re.compile(r"\w(?:ed|t|k|ew|an|ove|ote|ent|ut)\b")
_PASSIVE_FAULTY_VERB = re.compile(
    r"(?:ignored|missed|overlooked|skipped|botched|bungled|mishandled|approved|rubber-stamped|"
    r"waved|rushed|mangled|leaked|misreported|buried|delayed|committed|set)$", re.I)


def _agent_rules(c: _Clause, flags: dict, flag) -> None:
    if "person-failed" not in flags:
        _person_failed_rules(c, flag)
    clause = c.text
    if "counterfactual-person" not in flags:
        for m in itertools.chain.from_iterable(c.finditer(rx) for rx in _COUNTERFACTUALS):
            who = c.person_starting_in(m.start("who"), m.end("who"))
            if who and not _negated(clause, m.start()):
                flag("counterfactual-person", m.group(0), who[2])
                break
    if "passive-blame" not in flags:
        for m in c.finditer(_PASSIVE):
            agent = c.person_starting_in(m.start("agent"), m.start("agent") + 40)
            if not agent:
                continue
            faulty = _FAILURE.search(m.group("verb")) \
                or c.matches_between(_FAULTY, 0, m.start("agent")) \
                or _PASSIVE_FAULTY_VERB.match(m.group("verb"))
            if faulty and not REMEDIAL.match(m.group("verb")):
                flag("passive-blame", m.group(0), agent[2])
                break


def _person_failed_rules(c: _Clause, flag) -> None:
    clause = c.text
    for m in c.finditer(_FAILURE):
        text = m.group(0).lower()
        if text.startswith(("should", "could", "ought")) and (
                _POSSESSION.search(text) or _ACCESS_AFTER.match(clause, m.end())):
            continue  # possession, not a counterfactual: "should have (read-only) access"
        if _quoted(clause, m.start(), m.end()):
            continue
        last = text.split()[-1]
        if text.startswith(("did not", "didn't", "never", "would")) and (
                REMEDIAL.match(last) or _FAILURE.fullmatch(last)):
            continue  # "did not skip any step", "never stopped investigating"
        who = _person_before(c, m.start())
        if who and not c.negated_subject(who):
            flag("person-failed", m.group(0), who)
            return
    if not _ACT_VERB.search(clause):
        return  # no act in the clause has a verb, so no faulty object below can flag
    for m in c.finditer(_FAULTY):
        # the act, from the first mention of the person nearest before on, is looked at
        # first: on a text that repeats the trigger it rules most out cheaply
        nearest = c.person_ending_before(m.start(), WINDOW // 2)
        if nearest is None:
            continue
        a = clause.find(nearest[2]) + len(nearest[2])
        if not c.matches_between(_ACT_VERB, a, m.start()) or c.matches_between(
                REMEDIAL, a, m.start()) or c.matches_between(_UNDERGOES, a, m.start()):
            continue  # no verb, or the person fixed or underwent something
        who = _person_before(c, m.start())  # the nearest person, if the agent
        if not who or c.negated_subject(who):
            continue
        flag("person-failed", f"{clause[a:m.start()].strip()} {m.group(0)}", who)
        return


def _negated_subject(clause: str, who: str) -> bool:
    return bool(re.search(r"\b(?:no|not|nobody|no one|neither)\b[^;]{0,40}" + re.escape(who),
                          clause, re.I))


# The longest match of each pattern given to _GrowingPrefix, in characters (checked by a test).
_WIDEST = {id(REMEDIAL): 12, id(_UNDERGOES): 11, id(_ACT_VERB): 4, id(_FAULTY): 11}


# -- documents -----------------------------------------------------------------------------

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(“‘])")


_LIST_MARK = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+")


def split_sentences(text: str) -> list[str]:
    """Sentences of a document; Markdown front matter, headings and list marks are dropped."""
    text = strip_front_matter(text)
    lines = [_LIST_MARK.sub("", ln) for ln in text.splitlines()
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


def lint(text: str, *, model: bool | None = None,
         stop: Callable[[], bool] | None = None) -> list[Flag]:
    """All flags in a document (a Markdown postmortem or plain text)."""
    return [flag for found in check_sentences(split_sentences(text), model=model, stop=stop)
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
    return _names_someone(_parse(sentence))


def _names_someone(clauses: list[_Clause]) -> bool:
    for c in clauses:
        clause = c.text
        for start, end, _ in c.found:
            before = clause[max(0, start - 40):start].lower().split()[-2:]
            if any(_OBJECT_VERB.match(w) and not _ACCUSING.match(w)
                   for w in before if w not in {"the", "a", "an", "our", "their"}):
                continue
            if not REMEDIAL.match(clause[end:].lstrip(" ,'’s").removeprefix("quickly ")):
                return True
    return False


MODEL_HEAD_WORDS = 1024  # far more than the 128 tokens the embedding model reads
# Spaces that the model's tokenizer splits words at: ASCII ones and Unicode's Zs (not the
# controls that Python's \s also counts, which the tokenizer drops, joining their words).
_SPACES = "\t\n\r \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
_ASCII_WORD = re.compile(rf"[A-Za-z0-9][^{_SPACES}]*")  # from its first ASCII letter or digit


def model_input(sentence: str) -> str:
    """What the classifier embeds (the same in training and use): the sentence, cut at the
    space after the first :data:`MODEL_HEAD_WORDS` space-separated words that hold an ASCII
    letter or digit. Each such word is at least one token and no token spans a space, so the
    model, which reads only the first 128 tokens, sees the same text; a 1 MB sentence is
    just not tokenized whole (0.7 s)."""
    text = sentence.strip()
    if len(text) < 2 * MODEL_HEAD_WORDS:  # too short to hold that many words
        return text
    for n, m in enumerate(_ASCII_WORD.finditer(text), 1):
        if n == MODEL_HEAD_WORDS:
            return text[:m.end()]
    return text


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


def _model_flags(sentences: list[str], parsed: dict[str, list[_Clause]]
                 ) -> list[list[Flag]]:
    """The classifier's flags; a sentence that occurs more than once is embedded once."""
    threshold = _weights()["threshold"]
    rule = RULES["reads-as-blame"]
    unique = list(dict.fromkeys(sentences))
    probability = dict(zip(unique, probabilities(unique), strict=True))
    out = []
    for sentence in sentences:
        p = probability[sentence]
        if p < threshold:
            out.append([])
            continue
        who = next((c.found[0][2] for c in parsed[sentence] if c.found), "")
        out.append([Flag(sentence, rule.id, who, f"{rule.why}, p = {p:.2f}", rule.suggestion,
                         who)])
    return out
