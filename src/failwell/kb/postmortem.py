"""A blameless postmortem as data, and as Markdown with YAML front matter.

Teams keep postmortems in git: ``to_markdown(from_markdown(text)) == text`` for any file in
the canonical form that ``to_markdown`` writes. Front matter holds the structured fields; the
body holds the summary and the timeline. Every taxonomy id is checked against the catalog
(close ids suggested) and every date must be ISO ``YYYY-MM-DD``. Every field is checked
for its type and size (:mod:`failwell.limits`): text is text, a list is a list of text (or of
the mappings of lessons, action items and contributing factors), the id is kebab-case; each
refusal names the field, e.g. ``lessons[0].text``.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import yaml

from failwell.errors import InputError, close_matches
from failwell.findings import Severity
from failwell.limits import (
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_PROSE_CHARS,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    FieldCheck,
    id_problem,
    kind_of,
    shown,
    surrogate_problem,
)
from failwell.taxonomy import load_catalog

STATUSES = ("draft", "in-review", "published", "retired")  # retired: kept, not surfaced
ACTION_STATUSES = ("open", "in-progress", "done", "wont-do")


@dataclass
class ContributingFactor:
    description: str
    patterns: list[str] = field(default_factory=list)
    failure_modes: list[str] = field(default_factory=list)


@dataclass
class Lesson:
    text: str
    applies_to: list[str] = field(default_factory=list)


@dataclass
class ActionItem:
    description: str
    owner: str  # a role or a team, never a person named as the cause
    due: dt.date | None = None
    status: str = "open"
    closed: dt.date | None = None  # when it became done or wont-do (for closure analytics)


@dataclass
class TimelineEntry:
    when: str  # ISO date or date-time, kept as written
    what: str


@dataclass
class Postmortem:
    id: str
    title: str
    severity: Severity
    status: str = "draft"
    project: str = ""
    occurred: dt.date | None = None
    detected: dt.date | None = None
    resolved: dt.date | None = None
    impact: str = ""
    decision_supported: str = ""
    success_definition: str = ""
    failed_assumptions: list[str] = field(default_factory=list)
    underestimated_constraints: list[str] = field(default_factory=list)
    ignored_signals: list[str] = field(default_factory=list)
    contributing_factors: list[ContributingFactor] = field(default_factory=list)
    lessons: list[Lesson] = field(default_factory=list)
    action_items: list[ActionItem] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    scan_links: list[str] = field(default_factory=list)
    summary: str = ""
    timeline: list[TimelineEntry] = field(default_factory=list)

    @property
    def patterns(self) -> set[str]:
        return {p for f in self.contributing_factors for p in f.patterns}

    @property
    def failure_modes(self) -> set[str]:
        return {m for f in self.contributing_factors for m in f.failure_modes}

    def text(self) -> str:
        """All prose, for linting and search."""
        parts = [self.title, self.summary, self.impact, self.decision_supported,
                 self.success_definition, *self.failed_assumptions,
                 *self.underestimated_constraints, *self.ignored_signals,
                 *(f.description for f in self.contributing_factors),
                 *(lesson.text for lesson in self.lessons), *(t.what for t in self.timeline)]
        return "\n\n".join(p.strip().rstrip(".") + "." for p in parts if p.strip())


class _Loader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: dates stay text and our own check, with its
    clear message, parses them (YAML's resolver raises a bare ValueError on 2024-13-45)."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_NESTED = {"contributing_factors": ContributingFactor, "lessons": Lesson,
           "action_items": ActionItem}
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)


def from_markdown(text: str, *, source: str = "postmortem") -> Postmortem:
    """Parse Markdown with YAML front matter; every problem is one clear InputError.
    Windows line endings (and a browser's form text, which always has them) are read as
    plain newlines."""
    text = text.replace("\r\n", "\n")
    if problem := surrogate_problem(text):
        raise InputError(f"{source}: the text {problem}.")
    match = _FRONT_MATTER.match(text)
    if not match:
        raise InputError(f"{source}: no front matter; the file must start with a '---' line, "
                         "YAML fields, and a closing '---' line.")
    try:
        meta = yaml.load(match.group(1), Loader=_Loader) or {}  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark else ""
        raise InputError(f"{source}: malformed front matter{where}: "
                         f"{getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise InputError(f"{source}: malformed front matter: lists or mappings nested too "
                         "deeply.") from None
    if not isinstance(meta, dict):
        raise InputError(f"{source}: front matter must be a mapping of field: value.")
    summary, timeline = _parse_body(text[match.end():])
    return _build(meta, summary, timeline, source)


def from_dict(data: dict[str, Any], *, source: str = "postmortem") -> Postmortem:
    """Build from the JSON form (the fields of :class:`Postmortem`), with the same checks."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: each postmortem must be an object of field: value.")
    meta = {k: v for k, v in data.items() if k not in ("summary", "timeline")}
    check = _Checker(source)
    timeline = check.items(data.get("timeline"), "timeline")
    entries = [check.timeline_entry(t, f"timeline[{i}]") for i, t in enumerate(timeline)]
    return _build(meta, check.text(data.get("summary"), "summary"), entries, source)


_TEXTS = {"title": MAX_TITLE_CHARS, "project": MAX_NAME_CHARS, "impact": MAX_TEXT_CHARS,
          "decision_supported": MAX_TEXT_CHARS, "success_definition": MAX_TEXT_CHARS}
_TEXT_LISTS = ("failed_assumptions", "underestimated_constraints", "ignored_signals",
               "references", "scan_links")
_DATES = ("occurred", "detected", "resolved")


class _Checker(FieldCheck):
    """The checks of one postmortem: the generic ones (text, lists) and its own nested
    entries, dates and choices."""

    def choice(self, value: Any, where: str, allowed: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise InputError(f"{self.source}: {where} {shown(value)} is not one of "
                             f"{', '.join(allowed)}.")
        return value

    def date(self, value: Any, where: str) -> dt.date | None:
        if value is None or value == "":
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            if not isinstance(value, str) or len(value) > MAX_NAME_CHARS:
                raise ValueError
            return dt.date.fromisoformat(value)
        except ValueError:
            raise InputError(f"{self.source}: {where} {shown(value)} is not a date (use "
                             "YYYY-MM-DD).") from None

    def entry(self, value: Any, where: str, cls: type, shorthand: str | None) -> dict:
        """An entry of a nested list: a mapping of ``cls``'s fields (or, where there is a
        ``shorthand`` field, plain text for it)."""
        if shorthand and isinstance(value, str):
            return {shorthand: value}
        if not isinstance(value, dict):
            what = f"a mapping with the fields {', '.join(f.name for f in fields(cls))}"
            what = f"text or {what}" if shorthand else what
            self.fail(where, f"must be {what}, not {kind_of(value)}")
        known = [f.name for f in fields(cls)]
        unknown = [k for k in value if k not in known]
        if unknown:
            close = close_matches(str(unknown[0]), known, n=1)
            self.fail(where, f"has the unknown field {shown(unknown[0])}"
                             + (f" (did you mean {close[0]!r}?)" if close else "")
                             + f"; its fields are {', '.join(known)}")
        return value

    # In an entry, a field left out that has no default is refused; one given empty is kept.

    def factor(self, value: Any, where: str) -> ContributingFactor:
        item = self.entry(value, where, ContributingFactor, "description")
        return ContributingFactor(
            description=self.text(item.get("description"), f"{where}.description",
                                  required="description" not in item),
            patterns=self.texts(item.get("patterns"), f"{where}.patterns", MAX_ID_CHARS),
            failure_modes=self.texts(item.get("failure_modes"), f"{where}.failure_modes",
                                     MAX_ID_CHARS))

    def lesson(self, value: Any, where: str) -> Lesson:
        item = self.entry(value, where, Lesson, "text")
        return Lesson(text=self.text(item.get("text"), f"{where}.text",
                                     required="text" not in item),
                      applies_to=self.texts(item.get("applies_to"), f"{where}.applies_to",
                                            MAX_NAME_CHARS))

    def action(self, value: Any, where: str) -> ActionItem:
        item = self.entry(value, where, ActionItem, None)
        return ActionItem(
            description=self.text(item.get("description"), f"{where}.description",
                                  required="description" not in item),
            owner=self.text(item.get("owner"), f"{where}.owner", MAX_NAME_CHARS,
                            required="owner" not in item),
            due=self.date(item.get("due"), f"{where}.due"),
            status=self.choice(item.get("status", "open"), f"{where}.status",
                               ACTION_STATUSES),
            closed=self.date(item.get("closed"), f"{where}.closed"))

    def timeline_entry(self, value: Any, where: str) -> TimelineEntry:
        if isinstance(value, list) and len(value) == 2:
            value = {"when": value[0], "what": value[1]}
        item = self.entry(value, where, TimelineEntry, None)
        when = item.get("when")
        if isinstance(when, dt.date):  # YAML or a caller's date: kept as ISO text
            when = when.isoformat()
        return TimelineEntry(when=self.text(when, f"{where}.when", MAX_NAME_CHARS,
                                            required=True),
                             what=self.text(item.get("what"), f"{where}.what"))


def _build(meta: dict, summary: str, timeline: list[TimelineEntry], source: str) -> Postmortem:
    known = {f.name for f in fields(Postmortem)} - {"summary", "timeline"}
    unknown = set(meta) - known
    if unknown:
        hints = [shown(u) + (f" (did you mean {c[0]!r}?)"
                              if (c := close_matches(str(u), known, n=1)) else "")
                 for u in sorted(unknown, key=str)]
        raise InputError(f"{source}: unknown field(s) {', '.join(hints)}.")
    check = _Checker(source)
    for required in ("id", "title", "severity"):
        if meta.get(required) is None or meta.get(required) == "":
            raise InputError(f"{source}: field {required!r} is required.")
    if problem := id_problem(meta["id"]):
        check.fail("id", problem + (" (put it in quotes)" if isinstance(meta["id"], int)
                                    else ""))
    data: dict[str, Any] = {"id": meta["id"]}
    data["severity"] = Severity(check.choice(meta["severity"], "severity",
                                             tuple(s.value for s in Severity)))
    data["status"] = check.choice(meta.get("status", "draft"), "status", STATUSES)
    for key, limit in _TEXTS.items():
        data[key] = check.text(meta.get(key), key, limit, required=key == "title")
    for key in _DATES:
        data[key] = check.date(meta.get(key), key)
    for key in _TEXT_LISTS:
        data[key] = check.texts(meta.get(key), key)
    for key, make in (("contributing_factors", check.factor), ("lessons", check.lesson),
                      ("action_items", check.action)):
        data[key] = [make(item, f"{key}[{i}]")
                     for i, item in enumerate(check.items(meta.get(key), key))]
    summary = check.text(summary, "summary")
    for i, entry in enumerate(check.items(timeline, "timeline")):
        check.text(entry.when, f"timeline[{i}].when", MAX_NAME_CHARS)
        check.text(entry.what, f"timeline[{i}].what")
    pm = Postmortem(**data, summary=summary, timeline=timeline)
    prose = len(pm.text())
    if prose > MAX_PROSE_CHARS:
        raise InputError(f"{source}: all its text together is {prose:,} characters long; at "
                         f"most {MAX_PROSE_CHARS:,} (move long material to a reference).")
    validate_taxonomy(pm, source)
    return pm


def validate_taxonomy(pm: Postmortem, source: str = "postmortem") -> None:
    """Every pattern and failure-mode id must be in the catalog (close ids suggested)."""
    catalog = load_catalog()
    for factor in pm.contributing_factors:
        try:
            for pid in factor.patterns:
                catalog.pattern(pid)
            for mid in factor.failure_modes:
                catalog.failure_mode(mid)
        except InputError as exc:
            raise type(exc)(f"{source}: {exc}") from None


def _parse_body(body: str) -> tuple[str, list[TimelineEntry]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in body.splitlines():
        heading = re.match(r"^##\s+(.+?)\s*$", line)
        if heading:
            current = heading.group(1).lower()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    summary = "\n".join(sections.get("summary", [])).strip()
    timeline = []
    for line in sections.get("timeline", []):
        entry = re.match(r"^\s*-\s+(\S+?):\s+(.*)$", line)
        if entry:
            timeline.append(TimelineEntry(entry.group(1), entry.group(2).strip()))
    return summary, timeline


def to_markdown(pm: Postmortem) -> str:
    """The canonical Markdown form (stable key order, so diffs in git stay small)."""
    meta: dict[str, Any] = {}
    for f in fields(Postmortem):
        if f.name in ("summary", "timeline"):
            continue
        value = getattr(pm, f.name)
        if value in (None, "", []):
            continue
        if f.name == "severity":
            value = str(value)
        elif f.name in _NESTED:
            value = [{k: v for k, v in asdict(item).items() if v not in (None, "", [])}
                     for item in value]
        meta[f.name] = value
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    body = f"## Summary\n\n{pm.summary.strip()}\n"
    if pm.timeline:
        body += "\n## Timeline\n\n" + "".join(f"- {t.when}: {t.what}\n" for t in pm.timeline)
    return f"---\n{front}---\n\n{body}"


# A blank postmortem to fill in (`failwell incident template`, the web form).
TEMPLATE = """---
id: {id}
title: {title}
severity: medium
status: draft
project: ''
occurred: ''
detected: ''
resolved: ''
impact: Who and what was harmed, and how much.
decision_supported: The decision the system was meant to support.
success_definition: How success was defined, and how it was measured.
failed_assumptions:
- An assumption that turned out false.
underestimated_constraints:
- A constraint (latency, cost, regulation, data) that was underestimated.
ignored_signals:
- A signal that was visible before the failure, and why it did not lead to action.
contributing_factors:
- description: What made the failure likely (a process, an incentive, a missing check).
  patterns: [data-optimism]
  failure_modes: []
lessons:
- text: A reusable lesson for the next project.
  applies_to: []
action_items:
- description: A change to a process, a check or a system.
  owner: a role or a team
  due: ''
  status: open
references: []
---

## Summary

What happened, in a few sentences, without blame.

## Timeline

- YYYY-MM-DD: first signal
"""


@functools.cache
def _template_example() -> Postmortem:
    return from_markdown(TEMPLATE.format(id="x", title="x"), source="template")


def unfilled(pm: Postmortem) -> list[str]:
    """The sections of ``pm`` that still hold the template's example text."""
    example = _template_example()
    out = []
    for name in ("summary", "impact", "decision_supported", "success_definition"):
        if getattr(pm, name) and getattr(pm, name) == getattr(example, name):
            out.append(name)
    for name in ("failed_assumptions", "underestimated_constraints", "ignored_signals"):
        if set(getattr(pm, name)) & set(getattr(example, name)):
            out.append(name)
    pairs = (("contributing_factors", "description"), ("lessons", "text"),
             ("action_items", "description"))
    for name, attr in pairs:
        mine = {getattr(x, attr) for x in getattr(pm, name)}
        if mine & {getattr(x, attr) for x in getattr(example, name)}:
            out.append(name)
    return out
