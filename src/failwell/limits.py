"""What failwell accepts, in one place: the size of a request, of a text field, of a list,
and the shape of an id. Every write path (the web app and its API, ``failwell incident
new``, imports, a scan recorded or uploaded, a scan result read from a file) refuses what is
over a limit with a message that names the field and the limit, so no single request can
store megabytes or make every later search slow.

==================================  ============  =========================================
what                                limit         refused with
==================================  ============  =========================================
a request body (JSON, form, any)    1 MiB         413: a Content-Length over it before
                                                  anything is read, a streamed body the
                                                  moment it passes it
                                                  (``create_app(max_body_bytes=...)``)
an id (incident, project, failure   100 chars,    400 in the API for a postmortem or
mode)                               kebab-case    project file, 422 for a JSON field;
                                                  exit 2 in the CLI
a name (project, owner, reviewer,   200 chars     same
detector, metric, timeline date,
version, fingerprint)
a title                             1,000 chars   same
one text field (summary, impact,    20,000 chars  same
a lesson, an assumption, a
rationale, a finding's summary)
all the prose of one postmortem     200,000       same (YAML aliases cannot multiply text
                                    chars         past it)
items in one list of a postmortem   500           same
(references, lessons, action
items...) or of a review
a whole document sent as text       500,000       422 (``markdown``, ``yaml``, ``text``)
(postmortem, project file, lint)    chars
findings in one scan result         2,000         422 (API) / exit 2 (CLI)
detector outcomes in one scan       200           same
entries in one metrics map          1,000         same
a search query (``q``)              5,000 chars   422
an integer id in a path             1..2^63-1     422 (404 for an id in range that does
                                                  not exist)
==================================  ============  =========================================

Text anywhere must be valid Unicode: an unpaired surrogate (``"\\ud800"`` in JSON) is
refused, since it cannot be stored or shown.
"""

from __future__ import annotations

import re

MAX_BODY_BYTES = 1024 * 1024
MAX_ID_CHARS = 100
MAX_NAME_CHARS = 200
MAX_TITLE_CHARS = 1_000
MAX_TEXT_CHARS = 20_000
MAX_PROSE_CHARS = 200_000
MAX_LIST_ITEMS = 500
MAX_DOCUMENT_CHARS = 500_000
MAX_FINDINGS = 2_000
MAX_DETECTORS = 200
MAX_METRICS = 1_000
MAX_QUERY_CHARS = 5_000
MAX_DB_ID = 2**63 - 1  # the largest integer a database id column holds

ID_PATTERN = r"[a-z0-9][a-z0-9-]*"  # kebab-case: incident and project ids
_ID = re.compile(ID_PATTERN)
_SURROGATE = re.compile("[\ud800-\udfff]")


def id_problem(value: object) -> str | None:
    """Why ``value`` is not a valid incident or project id, or None when it is."""
    if not isinstance(value, str):
        return f"must be text, not {kind_of(value)}"
    if len(value) > MAX_ID_CHARS:
        return f"is {len(value)} characters long; at most {MAX_ID_CHARS}"
    if not _ID.fullmatch(value):
        return f"{value!r} must be kebab-case (a-z, 0-9, -; starting with a letter or digit)"
    return None


def surrogate_problem(text: str) -> str | None:
    """Where ``text`` holds an unpaired surrogate (invalid Unicode), or None."""
    found = _SURROGATE.search(text)
    if found is None:
        return None
    line = text.count("\n", 0, found.start()) + 1
    where = f" on line {line}" if "\n" in text else ""
    return (f"holds an unpaired surrogate (\\u{ord(found.group()):04x}){where}, which is not "
            "valid Unicode; send UTF-8 text")


def kind_of(value: object) -> str:
    """A JSON or YAML value's kind, in words, for messages."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def shown(value: object) -> str:
    """A value for a message, cut short (a refused value may be megabytes long)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"... ({len(text):,} characters)"


class FieldCheck:
    """Type and size checks of one document, field by field; each refusal is one
    :class:`~failwell.errors.InputError` naming the source, the field (``lessons[1].text``)
    and what it must be."""

    def __init__(self, source: str, *, null_is_empty: bool = True):
        self.source = source
        self.null_is_empty = null_is_empty  # YAML's empty value; JSON's null is refused

    def _null(self, value: object, where: str, what: str) -> None:
        if value is None and not self.null_is_empty:
            self.fail(where, f"must be {what}, not empty (null)")

    def fail(self, where: str, problem: str):
        from failwell.errors import InputError

        raise InputError(f"{self.source}: field {where!r} {problem}.")

    def text(self, value: object, where: str, limit: int = MAX_TEXT_CHARS, *,
             required: bool = False) -> str:
        """Text of at most ``limit`` characters ("" when absent, unless ``required``)."""
        if required and (value is None or value == ""):
            self.fail(where, "is required")
        self._null(value, where, "text")
        if value is None or value == "":
            return ""
        if not isinstance(value, str):
            hint = " (put it in quotes)" if isinstance(value, int | float) else ""
            self.fail(where, f"must be text, not {kind_of(value)}{hint}")
        if required and not value.strip():
            self.fail(where, "is required")
        if len(value) > limit:
            self.fail(where, f"is {len(value):,} characters long; at most {limit:,}")
        if problem := surrogate_problem(value):
            self.fail(where, problem)
        return value

    def items(self, value: object, where: str, limit: int = MAX_LIST_ITEMS, *,
              required: bool = False) -> list:
        """A list (empty when absent, unless ``required``) of at most ``limit`` items."""
        if value is None and required:
            self.fail(where, "is required (a list)")
        self._null(value, where, "a list")
        if value is None or value == "":
            return []
        if not isinstance(value, list):
            self.fail(where, f"must be a list, not {kind_of(value)}")
        if len(value) > limit:
            self.fail(where, f"has {len(value):,} items; at most {limit:,}")
        return value

    def texts(self, value: object, where: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
        """A list of text, each item at most ``limit`` characters."""
        items = self.items(value, where)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                self.fail(f"{where}[{i}]", f"must be text, not {kind_of(item)} ({where!r} is "
                                           "a list of text)")
            self.text(item, f"{where}[{i}]", limit)
        return list(items)

    def mapping(self, value: object, where: str, limit: int | None = None) -> dict:
        """A mapping (empty when absent) with text keys; at most ``limit`` entries."""
        self._null(value, where, "a mapping (an object)")
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(where, f"must be a mapping (an object), not {kind_of(value)}")
        if limit is not None and len(value) > limit:
            self.fail(where, f"has {len(value):,} entries; at most {limit:,}")
        return value

    def json_text(self, value: object, where: str) -> None:
        """Every key and text anywhere inside a JSON value is valid Unicode (walked without
        recursion, so no nesting depth breaks it)."""
        stack = [(value, where)]
        while stack:
            item, at = stack.pop()
            if isinstance(item, str):
                if problem := surrogate_problem(item):
                    self.fail(at, problem)
            elif isinstance(item, dict):
                for key, inner in item.items():
                    if not isinstance(key, str):
                        self.fail(at, f"has a key that is {kind_of(key)}; keys are text")
                    if problem := surrogate_problem(key):
                        self.fail(f"{at}.{key!r}".lstrip("."), f"key {problem}")
                    stack.append((inner, f"{at}.{key}".lstrip(".")))
            elif isinstance(item, list | tuple):
                stack += [(inner, f"{at}[{i}]") for i, inner in enumerate(item)]
