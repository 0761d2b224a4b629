"""What the web app accepts: every JSON body of the API as a typed model (FastAPI refuses
anything else with 422 and the field's path), integer ids in paths bounded to what the
database holds, and the cap on a request's size (:class:`BodySizeLimit`). The limits
themselves are in :mod:`failwell.limits`.

:class:`ScanResultBody` is the scan result (``failwell scan --format json``) as the API
takes it; ``docs/scan-result.schema.json`` is its JSON Schema (``python -m
failwell.web.bodies > docs/scan-result.schema.json`` writes it), and
:func:`failwell.findings.check_scan_dict`, which the command line uses, applies the same
rules (tests hold the two to agree).
"""

import json
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

from failwell.errors import InputError
from failwell.findings import OUTCOME_STATUSES, SCHEMA_VERSION, Severity
from failwell.limits import (
    MAX_BODY_BYTES,
    MAX_DB_ID,
    MAX_DETECTORS,
    MAX_DOCUMENT_CHARS,
    MAX_FINDINGS,
    MAX_ID_CHARS,
    MAX_LIST_ITEMS,
    MAX_METRICS,
    MAX_NAME_CHARS,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    FieldCheck,
    surrogate_problem,
)
from failwell.taxonomy import load_catalog

FORBID: Literal["forbid"] = "forbid"  # pydantic's setting: a field not declared is refused

# An integer id in a path (a scan, a condition, a token): 1..2^63-1, else 422.
DbId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]


def _unicode(value: str) -> str:
    if problem := surrogate_problem(value):
        raise ValueError(f"the text {problem}")
    return value


def _unicode_json(value: Any) -> Any:
    try:
        FieldCheck("the value").json_text(value, "")
    except InputError as exc:
        raise ValueError(str(exc).removeprefix("the value: ").rstrip(".")) from None
    return value


def text(limit: int = MAX_TEXT_CHARS, *, required: bool = False) -> Any:
    """Text of at most ``limit`` characters, valid Unicode (``required``: not blank)."""
    return Annotated[str, Strict(), Field(max_length=limit, pattern=r"\S" if required else None),
                     AfterValidator(_unicode)]


Text = text()
Name = text(MAX_NAME_CHARS)
Id = text(MAX_ID_CHARS, required=True)
Title = text(MAX_TITLE_CHARS, required=True)
Draft = text(MAX_DOCUMENT_CHARS)
Document = text(MAX_DOCUMENT_CHARS, required=True)
JsonObject = Annotated[dict[str, Any], AfterValidator(_unicode_json)]
Number = Annotated[int, Strict()] | Annotated[float, Strict()]
Metric = Number | Literal["inf", "-inf"] | None  # as ScanResult.to_dict writes it (NaN: null)


class Body(BaseModel):
    """A request body: its fields only (a misspelt field is refused, not ignored)."""

    model_config = ConfigDict(extra=FORBID)


class PostmortemBody(Body):
    markdown: Document = Field(description="The postmortem: Markdown with YAML front matter, "
                                           "as `failwell incident template` writes it.")


class PublishBody(Body):
    override_reason: Text | None = None


class LintBody(Body):
    text: Draft


class ProjectBody(Body):
    yaml: Document = Field(description="The project file, as `failwell project new --from`.")


class ReviewBody(Body):
    gate: Id
    decision: Id
    rationale: Text = ""
    reviewers: list[Name] = Field([], max_length=MAX_LIST_ITEMS)
    conditions: list[Text] = Field([], max_length=MAX_LIST_ITEMS)
    override_reason: Text | None = None


class EvidenceBody(Body):
    kind: Id
    note: text(required=True)


class ConditionBody(Body):
    status: Id = "done"


class TokenBody(Body):
    name: text(MAX_NAME_CHARS, required=True)
    scopes: list[Name] = Field(min_length=1, max_length=10)


class UserBody(Body):
    username: text(MAX_NAME_CHARS, required=True)
    password: text(MAX_NAME_CHARS, required=True)
    role: Name = "viewer"


class UserChangeBody(Body):
    role: Name | None = None
    disabled: Annotated[bool, Strict()] | None = None


# -- the scan result ---------------------------------------------------------------------

FailureModeId = Literal[tuple(load_catalog().failure_modes)]  # the catalog's, nothing else


class ScanMetricDetail(BaseModel):
    threshold: Metric = None
    higher_is_worse: Annotated[bool, Strict()] = True
    ci: tuple[Metric, Metric] | None = None


class ScanFinding(BaseModel):
    failure_mode: FailureModeId
    severity: Literal[tuple(s.value for s in Severity)]
    title: Title
    summary: Text = ""
    detector: Name = ""
    metrics: dict[Name, Metric] = Field({}, max_length=MAX_METRICS)
    metric_details: dict[Name, ScanMetricDetail] = Field({}, max_length=MAX_METRICS)
    evidence: JsonObject = {}
    mitigation: Text = ""
    reproduce: JsonObject = {}


class ScanDetectorOutcome(BaseModel):
    model_config = ConfigDict(extra=FORBID)

    detector: text(MAX_NAME_CHARS, required=True)
    status: Literal[OUTCOME_STATUSES]
    seconds: Number = 0.0
    message: Text = ""
    n_findings: Annotated[int, Strict(), Field(ge=0)] = 0


class ScanResultBody(BaseModel):
    """A failwell scan result (``failwell scan --format json``). Fields this version does
    not know are ignored (a newer 1.x writer may add some)."""

    model_config = ConfigDict(title="failwell scan result")

    schema_version: Annotated[str, Strict(), Field(
        pattern=r"^" + SCHEMA_VERSION.split(".")[0] + r"(\..*)?$", max_length=MAX_NAME_CHARS,
        description=f"{SCHEMA_VERSION.split('.')[0]}.x: the major version this failwell "
                    "reads.")]
    created_at: Name = ""
    findings: list[ScanFinding] = Field(max_length=MAX_FINDINGS)
    detectors: list[ScanDetectorOutcome] = Field([], max_length=MAX_DETECTORS)
    metrics: dict[Name, Metric] = Field({}, max_length=MAX_METRICS)
    diagnostics: JsonObject = {}
    data_fingerprint: Name = ""
    model_fingerprint: Name = ""
    config: JsonObject = {}
    timings: dict[Name, Metric] = Field({}, max_length=MAX_METRICS)
    versions: dict[Name, Name] = Field({}, max_length=MAX_METRICS)


def scan_result_schema() -> dict[str, Any]:
    """The JSON Schema of a scan result, as kept in docs/scan-result.schema.json."""
    schema = ScanResultBody.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def scan_result_schema_text() -> str:
    return json.dumps(scan_result_schema(), indent=2, ensure_ascii=False) + "\n"


# -- the size of a request -----------------------------------------------------------------

class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets 413 (``{"detail"}`` under
    /api/, a short page elsewhere). A Content-Length over the cap is refused before anything
    is read; a body without one (chunked) is counted as it streams in and refused the moment
    it passes the cap, so no request holds more than ``max_bytes`` of body in memory."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.strip().isdigit() and int(declared) > self.max_bytes:
            await self.refuse(scope, send)
            return
        received, refused, started = 0, False, False

        async def counted():
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    raise _TooLarge()
            return message

        async def unless_refused(message):
            nonlocal started
            if refused:  # the app's own answer to the broken read is replaced by the 413
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, unless_refused)
        except Exception:
            if not refused:
                raise
        if refused and not started:
            await self.refuse(scope, send)

    async def refuse(self, scope, send) -> None:
        limit = f"{self.max_bytes:,} bytes" + (
            f" ({self.max_bytes / 1024 / 1024:g} MiB)" if self.max_bytes >= 1024 * 1024 else "")
        message = (f"the request body is larger than the {limit} this server takes; send "
                   "less (long material belongs in a reference, not in the record).")
        if scope.get("path", "").startswith("/api/"):
            body, kind = json.dumps({"detail": message}).encode(), b"application/json"
        else:
            body = (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                    f"<title>Request too large · failwell</title></head><body>"
                    f"<h1>Request too large</h1><p>{message}</p>"
                    f"<p><a href=\"/\">failwell</a></p></body></html>\n"
                    ).encode()
            kind = b"text/html; charset=utf-8"
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", kind),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":  # python -m failwell.web.bodies > docs/scan-result.schema.json
    import sys

    sys.stdout.write(scan_result_schema_text())
