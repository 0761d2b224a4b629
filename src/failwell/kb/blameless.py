"""Blameless-language check: flag blame framing in a postmortem and suggest a systemic rewording.

Blame framing names a person as the cause ("the engineer failed to...", "human error",
"careless"), judges hindsight ("should have"), or assigns fault. Each rule looks at one clause
and needs the *agent* to be a person where that matters ("the alert failed to fire" is about a
system and is fine); a negation or a meta-statement just before the trigger ("this was not a
human error", "calling this human error would hide...") turns the rule off. Precision and
recall are measured on the labelled sentences in ``tests/data``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

ROLES = frozenset(
    "engineer engineers developer developers operator operators analyst analysts scientist "
    "scientists researcher researchers reviewer reviewers manager lead intern interns "
    "labeller labellers labeler labelers annotator annotators contractor contractors "
    "modeller modeler sre pm trainer person member technician admin administrator he she".split()
)
FIRST_NAMES = frozenset(
    "aaron ahmed aisha alex alice amir ana andrea anna ben bob carlos chen chris claire dan "
    "daniel david diego elena emma eric fatima george grace hannah hans ivan jack james "
    "jane jason jen jennifer john jose juan julia kate kevin kim laura lee leo lisa liam "
    "lucas luis maria mark mary max mei mike mohammed nina noah olga omar paul peter priya "
    "raj ravi robert rosa sam sara sarah sofia steve tom tim wei yuki zoe".split()
)
NEGATORS = re.compile(
    r"\b(not|no|never|nobody|none|without|rather than|instead of|calling|call|called|"
    r"blaming|labell?ing|dismissing)\b|n't\b|\bno one\b"
)
FAILURE_VERBS = (
    r"failed to|neglected|forgot|ignored|skipped|did not bother|didn't bother|messed up|broke|"
    r"made an? (?:\w+ )?mistake|mislabell?ed|should have|should not have|shouldn't have|"
    r"deployed the wrong|did not follow|didn't follow|'s (?:mistake|error)"
)


@dataclass(frozen=True)
class Rule:
    id: str
    pattern: re.Pattern
    person_before: bool  # one of the three words before the trigger must name a person
    negatable: bool  # a negation or meta-statement just before the trigger turns it off
    why: str
    suggestion: str


RULES = (
    Rule("error-label",
         re.compile(r"\b(?:human|operator|user|pilot)(?:'s)? (?:error|mistake)s?\b", re.I),
         False, True, "labels the cause as a person's error",
         "Name the conditions instead: what about the tool, signal or process made this error "
         "likely, and what would catch it next time?"),
    Rule("person-failed", re.compile(rf"(?:{FAILURE_VERBS})\b", re.I),
         True, False, "makes a person's omission the cause",
         "Describe what happened and what allowed it, not who: which check, signal, ownership "
         "or time pressure made this easy to miss?"),
    Rule("counterfactual-person",
         re.compile(r"\b(?:more careful|done (?:his|her|their) job)\b", re.I),
         True, False, "judges a person with hindsight",
         "Describe what the person knew and saw at the time, and which safeguard was missing."),
    Rule("character",
         re.compile(r"\b(?:careless(?:ly|ness)?|negligen(?:t|ce)|sloppy|lazy|incompetent|"
                    r"reckless(?:ly)?|irresponsible|stupid)\b", re.I),
         False, True, "judges a person's character",
         "Describe the action and its context instead of judging the person: what made the "
         "careful path hard or the risky path easy?"),
    Rule("fault",
         re.compile(r"(?:\bfault of\b|'s fault\b|\bat fault\b|\bto blame\b|\bblame lies\b|"
                    r"\bfault lies\b|\bheld accountable\b|\b(?:is|are) responsible for the\b)",
                    re.I),
         False, True, "assigns fault",
         "Blameless reviews look for contributing factors, not fault: describe the conditions "
         "that allowed the failure."),
)


@dataclass(frozen=True)
class Flag:
    sentence: str
    rule: str
    trigger: str
    why: str
    suggestion: str

    def to_dict(self) -> dict:
        return asdict(self)


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_CLAUSE = re.compile(r"[;:]|,\s+but\s+|\s+but\s+")
_NON_NAMES = {"it", "this", "that", "the", "there", "we", "our", "they", "nothing", "no",
              "nobody", "because", "if", "had", "due", "root", "a", "an", "alerts"}


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


def _person_before(clause: str, start: int) -> bool:
    """Is one of the (up to three) words before the trigger a role or a person's name?"""
    words = re.findall(r"[A-Za-z][\w-]*", clause[:start])
    words = [w for w in words if w.lower() not in {"who", "the", "a", "an", "our", "their"}]
    for i, word in enumerate(words[-3:]):
        lowered = word.lower().split("-")[-1]
        if lowered in ROLES or lowered in FIRST_NAMES:
            return True
        position = len(words) - len(words[-3:]) + i
        # an unknown capitalized word counts as a name only mid-sentence ("It was Kevin who")
        if word[0].isupper() and position > 0 and lowered not in _NON_NAMES \
                and not word.isupper():
            return True
    return False


def _negated(clause: str, start: int) -> bool:
    window = " ".join(clause[:start].split()[-4:])
    return bool(NEGATORS.search(window.lower()))


def check_sentence(sentence: str) -> list[Flag]:
    """Every rule that fires on any clause of ``sentence`` (at most one flag per rule)."""
    flags: dict[str, Flag] = {}
    for clause in _CLAUSE.split(sentence):
        for rule in RULES:
            if rule.id in flags:
                continue
            for match in rule.pattern.finditer(clause):
                if rule.person_before and not _person_before(clause, match.start()):
                    continue
                if rule.negatable and _negated(clause, match.start()):
                    continue
                flags[rule.id] = Flag(sentence, rule.id, match.group(0), rule.why,
                                      rule.suggestion)
                break
    return list(flags.values())


def lint(text: str) -> list[Flag]:
    """All flags in a document (a Markdown postmortem or plain text)."""
    return [flag for sentence in split_sentences(text) for flag in check_sentence(sentence)]
