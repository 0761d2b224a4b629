"""Import and export: Markdown (a file or a folder), JSON, CSV, and the public
``genai-incidents`` corpus.

Imports are idempotent: a record whose id (or, for the corpus, source id) is already stored
is skipped, so importing twice duplicates nothing and an interrupted import resumes where it
stopped (each batch is its own transaction). Markdown export writes each postmortem exactly
as it was imported.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from failwell.errors import InputError, require
from failwell.findings import Severity
from failwell.kb.postmortem import ContributingFactor, Postmortem, from_dict, from_markdown
from failwell.kb.store import Filters, KnowledgeBase
from failwell.progress import Count

GENAI = "genai-incidents"
BATCH = 1000
FORMATS = ("md", "json", "csv")
CSV_FIELDS = ("id", "title", "severity", "status", "project", "occurred", "detected",
              "resolved", "impact", "summary", "patterns", "failure_modes", "lessons",
              "references")



@dataclass
class ImportReport:
    source: str
    read: int = 0
    added: int = 0
    skipped: int = 0  # already present
    excluded: int = 0  # e.g. retracted records

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


# -- generic files ---------------------------------------------------------------------

def read_postmortems(path: Path) -> Iterator[tuple[Postmortem, str | None]]:
    """Postmortems from a .md file, a folder of them, a .json list or a .csv table; every
    problem names the file (and record) it is in."""
    if path.is_dir():
        files = sorted(path.glob("*.md"))
        if not files:
            raise InputError(f"{path}: no .md postmortems in this folder.")
        for f in files:
            yield from read_postmortems(f)
        return
    if not path.is_file():
        raise InputError(f"No such file or folder: {path}")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text.") from None
    if suffix in (".md", ".markdown"):
        yield from_markdown(text, source=str(path)), text
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}).") from None
        records = data if isinstance(data, list) else [data]
        for i, record in enumerate(records):
            yield from_dict(_strip_stored(record), source=f"{path} record {i + 1}"), None
    elif suffix == ".csv":
        for i, row in enumerate(csv.DictReader(text.splitlines())):
            yield _from_csv_row(row, f"{path} row {i + 2}"), None
    else:
        raise InputError(f"{path}: cannot import {suffix or 'files without a suffix'}; "
                         "use .md, .json or .csv (or a folder of .md files).")


def _strip_stored(record: Any) -> Any:
    """Drop what export adds (source, timestamps, counts) so an export imports again."""
    if not isinstance(record, dict):
        return record
    stored = {"source", "source_id", "attribution", "external_tags", "publish_override",
              "created_at", "updated_at", "published_at", "actions_closed", "actions_total"}
    return {k: v for k, v in record.items() if k not in stored}


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(";") if v.strip()]


def _from_csv_row(row: dict[str, str], source: str) -> Postmortem:
    data: dict[str, Any] = {k: v for k, v in row.items()
                            if k in CSV_FIELDS and v not in (None, "")}
    patterns, modes = _split(data.pop("patterns", "")), _split(data.pop("failure_modes", ""))
    if patterns or modes:
        data["contributing_factors"] = [{"description": "Tagged in the CSV import.",
                                         "patterns": patterns, "failure_modes": modes}]
    if "lessons" in data:
        data["lessons"] = [{"text": t} for t in _split(data["lessons"])]
    if "references" in data:
        data["references"] = _split(data["references"])
    return from_dict(data, source=source)


def import_path(kb: KnowledgeBase, path: Path, *, progress: Count | None = None
                ) -> ImportReport:
    items = list(read_postmortems(path))  # parse everything first: a bad file writes nothing
    if not items:
        raise InputError(f"{path} holds no postmortems (an empty file?).")
    report = ImportReport(source=str(path), read=len(items))
    seen: set[str] = set()
    for pm, _ in items:
        if pm.id in seen:
            raise InputError(f"{path}: the id {pm.id!r} appears twice; nothing was written.")
        seen.add(pm.id)
    present = kb.existing_ids([pm.id for pm, _ in items])
    fresh = [(pm, md) for pm, md in items if pm.id not in present]
    report.skipped = len(items) - len(fresh)
    for start in range(0, len(fresh), BATCH):
        batch = fresh[start:start + BATCH]
        report.added += kb.add_many(batch, source="import",
                                    source_ids=[pm.id for pm, _ in batch])
        if progress:
            progress(start + len(batch), len(fresh))
    if report.added:
        kb.refresh_statistics()
    return report


# -- export ----------------------------------------------------------------------------

def export(kb: KnowledgeBase, destination: Path, fmt: str, filters: Filters | None = None,
           *, force: bool = False) -> int:
    """Write the (filtered) postmortems; Markdown goes to a folder, one file per incident.
    Nothing that exists is replaced unless ``force``."""
    if fmt not in FORMATS:
        raise InputError(f"export format {fmt!r} is not one of {', '.join(FORMATS)}.")
    slugs = [s.id for s in kb.list(filters, limit=None)]
    if fmt == "md":
        if destination.exists() and not destination.is_dir():
            raise InputError(f"{destination} exists and is not a folder.")
        taken = [f"{_safe_name(s)}.md" for s in slugs
                 if (destination / f"{_safe_name(s)}.md").exists()]
        if taken and not force:
            raise InputError(f"{len(taken)} file(s) in {destination} would be replaced (e.g. "
                             f"{taken[0]}); pass --force to replace them.")
        destination.mkdir(parents=True, exist_ok=True)
        for slug in slugs:
            (destination / f"{_safe_name(slug)}.md").write_text(kb.get(slug).markdown,
                                                                 encoding="utf-8")
        return len(slugs)
    if destination.is_dir():
        raise InputError(f"{destination} is a folder; give a file name for {fmt}.")
    if destination.exists() and not force:
        raise InputError(f"{destination} exists; pass --force to replace it.")
    destination.parent.mkdir(parents=True, exist_ok=True)
    records = [kb.get(slug).to_dict() for slug in slugs]
    if fmt == "json":
        destination.write_text(json.dumps(records, indent=2, ensure_ascii=False) + "\n",
                               encoding="utf-8")
    else:
        with destination.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
            writer.writeheader()
            for r in records:
                factors = r["contributing_factors"]
                writer.writerow({
                    **{k: r.get(k) or "" for k in CSV_FIELDS[:10]},
                    "patterns": ";".join(sorted({p for f in factors for p in f["patterns"]})),
                    "failure_modes": ";".join(sorted(
                        {m for f in factors for m in f["failure_modes"]})),
                    "lessons": ";".join(lesson["text"] for lesson in r["lessons"]),
                    "references": ";".join(r["references"])})
    return len(records)


def _safe_name(slug: str) -> str:
    return re.sub(r"[^\w.-]+", "-", slug).strip("-") or "incident"


# -- the genai-incidents corpus ----------------------------------------------------------

# The corpus's attack vectors and tags, onto our failure modes (unlisted ones stay as
# external tags: searchable, not claimed as a failure mode).
VECTOR_MODES = {
    "prompt-injection": ["prompt-injection"], "jailbreak": ["prompt-injection"],
    "tool-abuse": ["prompt-injection"],
    "data-exfiltration": ["privacy-leak"], "info-disclosure": ["privacy-leak"],
    "privacy-violation": ["privacy-leak"],
    **{v: ["vulnerable-ai-software"] for v in (
        "rce", "xss", "auth-bypass", "dos", "path-traversal", "ssrf", "command-injection",
        "deserialization", "sql-injection", "supply-chain", "malware", "sandbox-escape")},
    "deepfake": ["harmful-misuse"], "phishing": ["harmful-misuse"],
    "misinformation": ["harmful-misuse"],
    "adversarial-input": ["adversarial-fragility"],
    "algorithmic-bias": ["group-unfairness"],
}
TAG_MODES = {
    "hallucination": ["hallucination"], "sycophancy": ["sycophancy"],
    "data-leak": ["privacy-leak"], "shadow-ai": ["privacy-leak"],
    "bias": ["group-unfairness"], "discrimination": ["group-unfairness"],
    "mit-risk-domain:1-discrimination-and-toxicity": ["group-unfairness"],
    "mit-risk-domain:2-privacy-security": ["privacy-leak"],
    "mit-risk-domain:3-misinformation": ["harmful-misuse"],
    "adversarial": ["adversarial-fragility"], "model-poisoning": ["vulnerable-ai-software"],
}
TAG_PATTERNS = {"shadow-ai": ["governance-lag"]}
SEVERITIES = {"low": Severity.LOW, "medium": Severity.MEDIUM, "high": Severity.HIGH,
              "critical": Severity.CRITICAL}


def _corpus_date(value: str | None) -> dt.date | None:
    if not value:
        return None
    parts = [int(p) for p in str(value).split("-")[:3] if p.isdigit()]
    try:
        return dt.date(*(parts + [1, 1][len(parts) - 1:])) if parts else None
    except (TypeError, ValueError):
        return None


def corpus_postmortem(record: dict[str, Any]) -> Postmortem:
    """One corpus record as a (published, external) postmortem."""
    vector = record.get("attack_vector") or "other"
    tags = [str(t) for t in record.get("tags") or []]
    modes = list(dict.fromkeys(VECTOR_MODES.get(vector, []) +
                               [m for t in tags for m in TAG_MODES.get(t, [])]))
    patterns = list(dict.fromkeys(p for t in tags for p in TAG_PATTERNS.get(t, [])))
    affected = str(record.get("affected") or "")
    references = [record["primary_reference"]] if record.get("primary_reference") else []
    references += [f"https://nvd.nist.gov/vuln/detail/{c}" for c in record.get("cve_ids") or []
                   if f"https://nvd.nist.gov/vuln/detail/{c}" not in references]
    return Postmortem(
        id=f"genai-{record['id'].lower()}", title=str(record.get("title") or record["id"]),
        severity=SEVERITIES.get(str(record.get("severity", "")).lower(), Severity.MEDIUM),
        status="published", project=affected[:200], occurred=_corpus_date(record.get("date")),
        impact=affected, summary=str(record.get("description") or ""),
        contributing_factors=[ContributingFactor(
            description=f"Recorded attack vector: {vector}.", patterns=patterns,
            failure_modes=modes)],
        references=references)


def import_genai_incidents(kb: KnowledgeBase, *, progress: Count | None = None,
                           limit: int | None = None) -> ImportReport:
    corpus = require("genai_incidents", extra="corpus",
                     purpose="Importing the genai-incidents corpus")
    from importlib.metadata import version

    release = version("genai-incidents")
    records = corpus.load_incidents()[:limit]
    report = ImportReport(source=f"{GENAI} {release}", read=len(records))
    present = kb.source_ids(GENAI)
    todo = []
    for record in records:
        if record.get("status") == "retracted":
            report.excluded += 1
        elif record["id"] in present:
            report.skipped += 1
        else:
            todo.append(record)
    attribution = (f"genai-incidents {release} (GenAI & Agentic AI Security Incidents), "
                   "CC-BY-4.0")
    for start in range(0, len(todo), BATCH):
        batch = todo[start:start + BATCH]
        items = [(corpus_postmortem(r), None) for r in batch]
        extra = [list(r.get("tags") or []) + [f"attack-vector:{r.get('attack_vector')}"]
                 + ([f"status:{r['status']}"] if r.get("status") else [])
                 + [f"{k}:{v}" for k in ("owasp_llm", "mitre_atlas") for v in r.get(k) or []]
                 for r in batch]
        report.added += kb.add_many(items, source=GENAI, source_ids=[r["id"] for r in batch],
                                    attribution=attribution, external_tags=extra)
        if progress:
            progress(start + len(batch), len(todo))
    if report.added:
        kb.refresh_statistics()
    return report


def is_corpus_name(source: str) -> bool:
    return source.strip().lower() in (GENAI, "genai_incidents")


__all__ = ["ImportReport", "corpus_postmortem", "export", "import_genai_incidents",
           "import_path", "read_postmortems"]
