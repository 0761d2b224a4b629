"""The knowledge base: postmortems in SQLite or PostgreSQL, one transaction per write.

Everything the CLI (and later the web app) does with stored incidents goes through
:class:`KnowledgeBase`. A postmortem is stored as the Markdown it was written in (so export
gives back exactly what was imported) plus the columns and child rows that queries need.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import (
    Engine,
    Integer,
    String,
    and_,
    cast,
    delete,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from failwell.db import engine as db
from failwell.db.schema import (
    action_items,
    embeddings,
    incident_tags,
    incidents,
    kb_meta,
    lessons,
    scan_findings,
    scans,
)
from failwell.errors import (
    FailwellError,
    InputError,
    NotFoundError,
    PublishBlockedError,
    did_you_mean,
)
from failwell.kb.postmortem import Postmortem, from_dict, from_markdown, to_markdown

CLOSED_ACTIONS = ("done", "wont-do")
WRITTEN_HERE = ("user", "web")  # written here: published only through publish()
# called with the write's connection inside its transaction (and what the write produced)
AuditHook = Callable[..., None]
INLINE_EMBED = 500  # postmortems embedded as part of one write; more wait for `kb embed`


@dataclass
class Filters:
    """Narrow a list or a search. Empty fields do not filter."""

    patterns: list[str] = field(default_factory=list)
    failure_modes: list[str] = field(default_factory=list)
    severities: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    exclude_sources: list[str] = field(default_factory=list)
    since: dt.date | None = None
    until: dt.date | None = None

    def __bool__(self) -> bool:
        return any(v not in (None, []) for v in asdict(self).values())

    def clauses(self) -> list:
        """SQLAlchemy conditions on ``incidents`` (bound parameters only)."""
        out = []
        for kind, tags in (("pattern", self.patterns), ("failure_mode", self.failure_modes)):
            for tag in tags:  # every tag asked for must be present
                out.append(incidents.c.id.in_(select(incident_tags.c.incident_id).where(
                    incident_tags.c.kind == kind, incident_tags.c.tag == tag)))
        if "retired" not in self.statuses:  # kept for the record, never surfaced unasked
            out.append(incidents.c.status != "retired")
        for column, values in ((incidents.c.severity, self.severities),
                               (incidents.c.project, self.projects),
                               (incidents.c.status, self.statuses),
                               (incidents.c.source, self.sources)):
            if values:
                out.append(column.in_(values))
        if self.exclude_sources:
            out.append(incidents.c.source.not_in(self.exclude_sources))
        if self.since:
            out.append(incidents.c.occurred >= self.since)
        if self.until:
            out.append(incidents.c.occurred <= self.until)
        return out


@dataclass
class IncidentSummary:
    """One row of a listing: enough to show and to link, without parsing the document."""

    id: str
    title: str
    severity: str
    status: str
    project: str
    occurred: dt.date | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["occurred"] = self.occurred.isoformat() if self.occurred else None
        return d


@dataclass
class StoredIncident:
    postmortem: Postmortem
    markdown: str
    source: str
    source_id: str | None
    attribution: str | None
    external_tags: list[str]
    publish_override: dict[str, Any] | None
    created_at: dt.datetime
    updated_at: dt.datetime
    published_at: dt.datetime | None

    @property
    def actions_closed(self) -> tuple[int, int]:
        items = self.postmortem.action_items
        return sum(a.status in CLOSED_ACTIONS for a in items), len(items)

    def to_dict(self) -> dict[str, Any]:
        doc = _document(self.postmortem)
        closed, total = self.actions_closed
        doc.update(source=self.source, source_id=self.source_id, attribution=self.attribution,
                   external_tags=self.external_tags, publish_override=self.publish_override,
                   created_at=self.created_at.isoformat(timespec="seconds"),
                   updated_at=self.updated_at.isoformat(timespec="seconds"),
                   published_at=(self.published_at.isoformat(timespec="seconds")
                                 if self.published_at else None),
                   actions_closed=closed, actions_total=total)
        return doc


def _document(pm: Postmortem) -> dict[str, Any]:
    """The postmortem as JSON-ready data (dates as ISO text)."""
    return json.loads(json.dumps(asdict(pm), default=str))


def _parsed(row) -> Postmortem:
    """The stored postmortem. The Markdown is the record; ``document`` is derived from it on
    write (like the tag, lesson and action rows) so a read needs no YAML and Markdown parse
    (0.02 ms instead of 2.7 ms); an older row without one is parsed from the Markdown."""
    if row.document:
        try:
            return from_dict(row.document, source=row.slug)
        except (InputError, KeyError, TypeError, ValueError):
            pass
    return from_markdown(row.markdown, source=row.slug)



class KnowledgeBase:
    """Open with :meth:`open`; it migrates the schema and seeds the starter library."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.vector_cache = None  # search.VectorIndex, loaded on first semantic search
        self._remembered: tuple[str | None, dict[tuple, Any]] = (None, {})

    @classmethod
    def open(cls, url: str | None = None, *, seed: bool = True) -> KnowledgeBase:
        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
            kb = cls(engine)
            if seed:
                kb.seed_library()
        except BaseException:
            engine.dispose()
            raise
        return kb

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -- writing -------------------------------------------------------------------------

    def add(self, pm: Postmortem, *, markdown: str | None = None, source: str = "user",
            source_id: str | None = None, attribution: str | None = None,
            external_tags: Sequence[str] = (), audit: AuditHook | None = None) -> str:
        """Store a new postmortem; its id must be new. Returns the id."""
        self.add_many([(pm, markdown)], source=source, source_ids=[source_id],
                      attribution=attribution, external_tags=[list(external_tags)],
                      audit=audit)
        return pm.id

    def add_many(self, items: Sequence[tuple[Postmortem, str | None]], *, source: str = "user",
                 source_ids: Sequence[str | None] | None = None,
                 attribution: str | None = None,
                 external_tags: Sequence[Sequence[str]] | None = None,
                 audit: AuditHook | None = None, embed: bool | None = None) -> int:
        """Store several postmortems in one transaction (all or none). Returns the count.
        ``audit(conn)`` runs in that transaction: the write and its audit entry commit
        together or not at all.

        Their search vectors are computed right after the write (never by a later read),
        when the embeddings extra is installed; ``embed=None`` does so for up to
        ``INLINE_EMBED`` postmortems and leaves a bulk import to ``failwell kb embed``."""
        if not items:
            return 0
        if source in WRITTEN_HERE and (early := [pm.id for pm, _ in items
                                                  if pm.status == "published"]):
            raise InputError(f"{early[0]}: a new postmortem is stored as a draft or in-review; "
                             f"publish it with `failwell incident publish {early[0]}` or the "
                             "Publish button (the blameless-language check runs first).")
        now = db.utc_now()
        source_ids = source_ids or [None] * len(items)
        external_tags = external_tags or [[]] * len(items)
        rows = [self._incident_row(pm, md, now) | {
            "source": source, "source_id": sid, "attribution": attribution,
            "external_tags": list(tags) or None, "created_at": now,
            "published_at": None}
            for (pm, md), sid, tags in zip(items, source_ids, external_tags, strict=True)]
        try:
            with db.write_transaction(self.engine) as conn:
                conn.execute(insert(incidents), rows)
                slugs = [pm.id for pm, _ in items]
                ids = dict(conn.execute(select(incidents.c.slug, incidents.c.id).where(
                    incidents.c.slug.in_(slugs))).all())
                self._write_children(conn, [(ids[pm.id], pm) for pm, _ in items], now,
                                     date_closures=source in WRITTEN_HERE)
                bump_generation(conn, INCIDENTS_GENERATION)
                if audit:
                    audit(conn)
        except IntegrityError as exc:
            taken = self.existing_ids([pm.id for pm, _ in items])
            which = f"id(s) {', '.join(sorted(taken))}" if taken else "a source id"
            raise InputError(f"{which} already in the knowledge base; nothing was written "
                             "(use `failwell incident edit` to change an incident).") from exc
        if embed or (embed is None and len(items) <= INLINE_EMBED):
            self.embed_written(ids.values())
        return len(items)

    def update(self, pm: Postmortem, *, markdown: str | None = None,
               audit: AuditHook | None = None) -> None:
        """Replace a stored postmortem with a new version of itself (same id). A published
        one stays blameless: an edit may not add blame framing that publishing did not
        already accept with a reason."""
        now = db.utc_now()
        with db.write_transaction(self.engine) as conn:
            row = conn.execute(select(incidents.c.id, incidents.c.status, incidents.c.source,
                                      incidents.c.published_at, incidents.c.publish_override,
                                      incidents.c.markdown).where(incidents.c.slug == pm.id)
                               ).first()
            if row is None:
                raise self._not_found(pm.id)
            values = self._incident_row(pm, markdown, now)
            if pm.status == "published" and row.status != "published":
                raise InputError(f"{pm.id}: use `failwell incident publish {pm.id}` to publish "
                                 "(it runs the blameless-language check first).")
            if pm.status == "published":
                _check_published_edit(pm, row.publish_override, row.markdown)
            conn.execute(update(incidents).where(incidents.c.id == row.id).values(values))
            for table in (incident_tags, lessons, action_items, embeddings):
                conn.execute(delete(table).where(table.c.incident_id == row.id))
            self._write_children(conn, [(row.id, pm)], now,
                                 date_closures=row.source in WRITTEN_HERE)
            bump_generation(conn, VECTORS_GENERATION, INCIDENTS_GENERATION)
            if audit:
                audit(conn)
        self.embed_written([row.id])

    def delete_draft(self, slug: str, *, audit: AuditHook | None = None) -> None:
        """Remove a draft or in-review postmortem (a mistake, an unfilled template). A
        published one is part of the organization's memory and is refused."""
        self.delete(slug, audit=audit, keep_published=True)

    def retire(self, slug: str, *, audit: AuditHook | None = None) -> None:
        """Take a published postmortem out of search, lessons and statistics (superseded,
        or wrong in a way a correction cannot fix) while keeping it, and its audit trail,
        on record; drafts are deleted instead."""
        pm = self.get(slug).postmortem
        if pm.status != "published":
            raise InputError(f"{slug} is {pm.status}: only published postmortems are retired; "
                             f"`failwell incident delete {slug}` removes a draft.")
        pm.status = "retired"
        with db.write_transaction(self.engine) as conn:
            conn.execute(update(incidents).where(incidents.c.slug == slug).values(
                status="retired", markdown=to_markdown(pm), document=_document(pm),
                updated_at=db.utc_now()))
            bump_generation(conn, VECTORS_GENERATION, INCIDENTS_GENERATION)
            if audit:
                audit(conn)

    def publish(self, slug: str, *, override_reason: str | None = None,
                audit: AuditHook | None = None) -> list:
        """Publish after the blameless-language check. Open flags block publishing unless
        an override reason is given; the reason and the flags it overrode are stored."""
        from failwell.kb.blameless import lint

        stored = self.get(slug)
        flags = lint(stored.postmortem.text())
        if flags and not (override_reason and override_reason.strip()):
            first = flags[0]
            raise PublishBlockedError(
                f"{slug}: {len(flags)} blame-framing flag(s) are open, e.g. {first.sentence!r} "
                f"({first.why}; try: {first.suggestion}). Reword them (`failwell incident lint`)"
                " or publish with an override reason (--override-reason; it is kept).")
        pm = stored.postmortem
        pm.status = "published"
        override = ({"reason": override_reason.strip(), "flags": [f.to_dict() for f in flags]}
                    if flags else None)
        now = db.utc_now()
        with db.write_transaction(self.engine) as conn:
            conn.execute(update(incidents).where(incidents.c.slug == slug).values(
                status="published", markdown=to_markdown(pm), document=_document(pm),
                publish_override=json.dumps(override) if override else None,
                published_at=now, updated_at=now))
            bump_generation(conn, INCIDENTS_GENERATION)
            if audit:
                audit(conn)
        return flags

    def delete(self, slug: str, *, audit: AuditHook | None = None,
               keep_published: bool = False) -> None:
        """Remove a stored incident; its tags, lessons, actions and vector go with it (ON
        DELETE CASCADE). People use ``failwell incident delete`` (:meth:`delete_draft`),
        which keeps published postmortems; this is for maintenance and tests."""
        with db.write_transaction(self.engine) as conn:
            row = conn.execute(select(incidents.c.id, incidents.c.status)
                               .where(incidents.c.slug == slug)).first()
            if row is None:
                raise self._not_found(slug)
            if keep_published and row.status == "published":
                raise InputError(f"{slug} is published: published postmortems are kept (edit "
                                 "it to add a correction instead of deleting it).")
            conn.execute(delete(incidents).where(incidents.c.id == row.id))
            bump_generation(conn, VECTORS_GENERATION, INCIDENTS_GENERATION)
            if audit:
                audit(conn)

    def seed_library(self) -> int:
        """Add the starter library's postmortems that are not stored yet."""
        from failwell.kb.library import library_names, load_library_files

        present = self.source_ids("library")
        if library_names() <= present:  # every file's id is stored: nothing to parse
            return 0
        missing = [(pm, md) for pm, md in load_library_files() if pm.id not in present]
        if missing:
            try:
                self.add_many(missing, source="library", source_ids=[pm.id for pm, _ in missing],
                              attribution="failwell starter library (Apache-2.0)", embed=False)
            except InputError:
                return 0  # another process seeded at the same moment
            self._library_vectors([pm.id for pm, _ in missing])
        return len(missing)

    def _library_vectors(self, slugs: list[str]) -> None:
        """The starter library's vectors ship with failwell (``library/vectors.npz``, made
        by ``scripts/build_library_vectors.py``): a fresh database needs no model to search
        it. A postmortem whose text changed since is embedded like any other write."""
        import hashlib
        from importlib import resources

        import numpy as np

        from failwell.kb import embeddings as emb

        with db.write_transaction(self.engine) as conn:
            rows = conn.execute(select(incidents.c.id, incidents.c.slug,
                                       incidents.c.search_text, incidents.c.title)
                                .where(incidents.c.slug.in_(slugs))).all()
            shipped = resources.files("failwell.kb").joinpath("library/vectors.npz")
            vectors = {}
            if shipped.is_file():
                with shipped.open("rb") as fh, np.load(fh) as data:
                    vectors = {(str(s), str(h)): v for s, h, v in
                               zip(data["ids"], data["sha256"], data["vectors"], strict=True)}
            found = []
            for r in rows:
                digest = hashlib.sha256((r.search_text or r.title).encode()).hexdigest()
                if (r.slug, digest) in vectors:
                    found.append({"incident_id": r.id, "model": emb.MODEL_NAME,
                                  "vector": emb.to_bytes(vectors[(r.slug, digest)])})
            if found:
                conn.execute(insert(embeddings), found)
                bump_generation(conn, VECTORS_GENERATION)
        self.embed_written(r.id for r in rows)

    def _incident_row(self, pm: Postmortem, markdown: str | None, now) -> dict[str, Any]:
        text = markdown if markdown is not None else to_markdown(pm)
        document = _document(pm)
        from_dict(document, source=pm.id)  # nothing is stored that a read could not parse
        return {"slug": pm.id, "title": pm.title, "severity": str(pm.severity),
                "status": pm.status, "project": pm.project, "occurred": pm.occurred,
                "detected": pm.detected, "resolved": pm.resolved, "summary": pm.summary,
                "search_text": pm.text(), "document": document, "markdown": text,
                "updated_at": now}

    @staticmethod
    def _write_children(conn, pairs: Iterable[tuple[int, Postmortem]], now, *,
                        date_closures: bool = True) -> None:
        """Tags, lessons and action items. An item closed without a date is dated today
        when written here (it is being closed now); an imported or library record keeps no
        date, so that its import day does not count as time to close."""
        tags, lesson_rows, action_rows = [], [], []
        for incident_id, pm in pairs:
            tags += [{"incident_id": incident_id, "kind": "pattern", "tag": t}
                     for t in sorted(pm.patterns)]
            tags += [{"incident_id": incident_id, "kind": "failure_mode", "tag": t}
                     for t in sorted(pm.failure_modes)]
            lesson_rows += [{"incident_id": incident_id, "position": i, "text": lesson.text,
                             "applies_to": list(lesson.applies_to)}
                            for i, lesson in enumerate(pm.lessons)]
            action_rows += [{"incident_id": incident_id, "position": i,
                             "description": a.description, "owner": a.owner, "due": a.due,
                             "status": a.status,
                             "closed_at": a.closed or (now.date() if date_closures and
                                                       a.status in CLOSED_ACTIONS else None)}
                            for i, a in enumerate(pm.action_items)]
        for table, rows in ((incident_tags, tags), (lessons, lesson_rows),
                            (action_items, action_rows)):
            if rows:
                conn.execute(insert(table), rows)

    # -- reading -------------------------------------------------------------------------

    def get(self, slug: str) -> StoredIncident:
        with self.engine.connect() as conn:
            row = conn.execute(select(incidents).where(incidents.c.slug == slug)).first()
        if row is None:
            raise self._not_found(slug)
        return StoredIncident(
            postmortem=_parsed(row), markdown=row.markdown,
            source=row.source, source_id=row.source_id, attribution=row.attribution,
            external_tags=row.external_tags or [],
            publish_override=json.loads(row.publish_override) if row.publish_override else None,
            created_at=row.created_at, updated_at=row.updated_at,
            published_at=row.published_at)

    def list(self, filters: Filters | None = None, *, limit: int | None = 50,
             offset: int = 0) -> list[IncidentSummary]:
        query = (select(incidents.c.slug, incidents.c.title, incidents.c.severity,
                        incidents.c.status, incidents.c.project, incidents.c.occurred,
                        incidents.c.source)
                 .where(and_(True, *(filters or Filters()).clauses()))
                 .order_by(incidents.c.occurred.desc().nulls_last(), incidents.c.id.desc())
                 .offset(offset))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [IncidentSummary(*row) for row in conn.execute(query)]

    def memo(self, conn=None) -> dict[tuple, Any]:
        """Values kept until the next incident write from any process (the write counter
        is in the database: one primary-key read), for figures that cost a pass over many
        incidents: the dashboard's, the incident count, search's term frequencies."""
        generation = self.meta(INCIDENTS_GENERATION, conn)
        kept_for, values = self._remembered
        if kept_for != generation:
            values = {}
            self._remembered = (generation, values)
        return values

    def remembered(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """``compute()``, or its value kept in :meth:`memo`."""
        values = self.memo()
        if key not in values:
            values[key] = compute()
        return values[key]

    def count(self, filters: Filters | None = None) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(incidents).where(
                and_(True, *(filters or Filters()).clauses()))).scalar_one()

    def summaries(self, slugs: Sequence[str]) -> dict[str, IncidentSummary]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(incidents.c.slug, incidents.c.title,
                                       incidents.c.severity, incidents.c.status,
                                       incidents.c.project, incidents.c.occurred,
                                       incidents.c.source).where(
                incidents.c.slug.in_(list(slugs))))
            return {r.slug: IncidentSummary(*r) for r in rows}

    def source_ids(self, source: str) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(select(incidents.c.source_id).where(
                incidents.c.source == source)).scalars())

    def action_closure(self, slugs: Sequence[str]) -> dict[str, tuple[int, int]]:
        """(closed, total) action items for each incident."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(incidents.c.slug, action_items.c.status).join(
                action_items, action_items.c.incident_id == incidents.c.id).where(
                incidents.c.slug.in_(list(slugs))))
            out = {s: (0, 0) for s in slugs}
            for slug, status in rows:
                done, total = out[slug]
                out[slug] = (done + (status in CLOSED_ACTIONS), total + 1)
        return out

    def lessons_of(self, slugs: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(incidents.c.slug, lessons.c.text, lessons.c.applies_to)
                                .join(lessons, lessons.c.incident_id == incidents.c.id)
                                .where(incidents.c.slug.in_(list(slugs)))
                                .order_by(lessons.c.position))
            out: dict[str, list[dict[str, Any]]] = {s: [] for s in slugs}
            for slug, text, applies in rows:
                out[slug].append({"text": text, "applies_to": applies or []})
        return out

    def existing_ids(self, slugs: Sequence[str]) -> set[str]:
        """Which of these incident ids are already stored."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(incidents.c.slug).where(
                incidents.c.slug.in_(list(slugs)))).scalars())

    def _not_found(self, slug: str) -> NotFoundError:
        with self.engine.connect() as conn:
            near = conn.execute(select(incidents.c.slug).where(
                incidents.c.slug.like(f"{slug[:3]}%")).limit(5000)).scalars().all()
        starting = [n for n in near if n.startswith(slug)][:3]
        hint = (f" Did you mean {', '.join(map(repr, starting))}?" if starting
                else did_you_mean(slug, near))
        return NotFoundError(f"No incident {slug!r} in the knowledge base.{hint}")

    def documents(self, slugs: Iterable[str]) -> list[tuple[str, str, dict[str, Any]]]:
        """(id, title, parsed document) of the given incidents, without re-parsing Markdown."""
        wanted = list(dict.fromkeys(slugs))
        if not wanted:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(select(incidents.c.slug, incidents.c.title,
                                       incidents.c.document)
                                .where(incidents.c.slug.in_(wanted))).all()
        return [(r.slug, r.title, r.document or {}) for r in rows]

    def with_lessons_tagged(self, modes: Iterable[str], *, per_mode: int = 100) -> list[str]:
        """Ids of incidents that have lessons and one of the failure ``modes``, newest first,
        at most ``per_mode`` for each mode."""
        out: list[str] = []
        has_lessons = exists().where(lessons.c.incident_id == incidents.c.id)
        with self.engine.connect() as conn:
            for mode in sorted(set(modes)):
                tagged = incidents.c.id.in_(select(incident_tags.c.incident_id).where(
                    incident_tags.c.kind == "failure_mode", incident_tags.c.tag == mode))
                out += conn.execute(select(incidents.c.slug).where(and_(has_lessons, tagged))
                                    .order_by(incidents.c.occurred.desc().nulls_last(),
                                              incidents.c.id.desc())
                                    .limit(per_mode)).scalars().all()
        return out

    # -- scans ---------------------------------------------------------------------------

    def record_scan(self, result, *, project: str | None = None,
                    audit: AuditHook | None = None) -> int:
        """Store a :class:`~failwell.findings.ScanResult` and its findings (optionally as a
        scan of a governance project); returns its id. ``audit(conn, scan=id)`` runs in the
        same transaction."""
        from failwell.findings import check_scan_dict

        data = result.to_dict()
        check_scan_dict(data)  # nothing is stored that a read could not load (failwell.limits)
        with db.write_transaction(self.engine) as conn:
            scan_id = conn.execute(insert(scans).values(
                created_at=db.utc_now(), result=data, project=project,
                data_fingerprint=str(data.get("data_fingerprint") or "")[:64] or None,
                model_fingerprint=str(data.get("model_fingerprint") or "")[:64] or None)
            ).inserted_primary_key[0]
            rows = [{"scan_id": scan_id, "detector": f.detector, "failure_mode": f.failure_mode,
                     "severity": str(f.severity), "title": f.title} for f in result.findings]
            if rows:
                conn.execute(insert(scan_findings), rows)
            if audit:
                audit(conn, scan=scan_id)
        return scan_id

    def scan_list(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """Recorded scans, newest first, with their finding counts (no full results)."""
        counts = (select(scan_findings.c.scan_id, func.count().label("n"))
                  .group_by(scan_findings.c.scan_id).subquery())
        query = (select(scans.c.id, scans.c.created_at, scans.c.project,
                        func.coalesce(counts.c.n, 0).label("findings"))
                 .outerjoin(counts, counts.c.scan_id == scans.c.id)
                 .order_by(scans.c.id.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def project_scans(self, project: str, *, newest_first: bool = False,
                      limit: int | None = None) -> list[dict[str, Any]]:
        """Scans recorded for a governance project: ``{"id", "result"}`` (result as JSON)."""
        order = scans.c.id.desc() if newest_first else scans.c.id
        query = select(scans.c.id, scans.c.result).where(scans.c.project == project)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(order).limit(limit)).all()
        return [{"id": r.id, "result": r.result} for r in rows]

    def scan(self, scan_id: int):
        """The stored :class:`~failwell.findings.ScanResult` of one scan."""
        from failwell.findings import ScanResult

        with self.engine.connect() as conn:
            row = conn.execute(select(scans.c.result).where(scans.c.id == scan_id)).first()
        if row is None:
            raise NotFoundError(f"No scan {scan_id} in the knowledge base.")
        return ScanResult.from_dict(row.result)

    # -- embeddings ----------------------------------------------------------------------

    def missing_embeddings(self, limit: int | None = None,
                           ids: Sequence[int] | None = None) -> list[tuple[int, str]]:
        """(row id, text) of incidents without a vector (of ``ids`` only, when given),
        oldest first."""
        query = (select(incidents.c.id, incidents.c.title, incidents.c.search_text)
                 .outerjoin(embeddings, embeddings.c.incident_id == incidents.c.id)
                 .where(embeddings.c.incident_id.is_(None)).order_by(incidents.c.id))
        if ids is not None:  # a write's own rows: never read a backlog it did not make
            query = query.where(incidents.c.id.in_(list(ids)))
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [(r.id, r.search_text or r.title) for r in conn.execute(query)]

    def embed_written(self, row_ids: Iterable[int]) -> int:
        """Vectors for rows just written, when the embeddings extra is installed: the write
        pays for them, so a search never has to (a read never writes)."""
        from failwell.kb import embeddings as emb

        if not emb.available():
            return 0
        return self.embed_missing(ids=list(row_ids))

    def embed_missing(self, *, batch_size: int = 256, ids: list[int] | None = None,
                      progress: Callable[[int, int], None] | None = None) -> int:
        """Embed every incident (or those of ``ids``) that has no vector yet, committing
        batch by batch, so an interrupted run resumes where it stopped (losing at most one
        uncommitted batch). ``progress(done, total)``, also within a batch as the model gets
        through it."""
        from failwell.kb import embeddings as emb

        todo = self.missing_embeddings(ids=ids)
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, len(todo))

        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            done = start
            vectors = emb.encode([t for _, t in chunk], progress=step)
            with db.write_transaction(self.engine) as conn:
                present = set(conn.execute(select(embeddings.c.incident_id).where(
                    embeddings.c.incident_id.in_([i for i, _ in chunk]))).scalars())
                rows = [{"incident_id": i, "model": emb.MODEL_NAME, "vector": emb.to_bytes(v)}
                        for (i, _), v in zip(chunk, vectors, strict=True) if i not in present]
                if rows:
                    conn.execute(insert(embeddings), rows)
                    bump_generation(conn, VECTORS_GENERATION)
            done = start + len(chunk)
            if progress:
                progress(done, len(todo))
        return len(todo)

    def refresh_statistics(self) -> None:
        """After a bulk import: PostgreSQL's planner statistics feed the search's estimate
        of how common each word is (SQLite counts exactly and needs nothing)."""
        if self.dialect == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("ANALYZE incidents"))

    # -- settings ------------------------------------------------------------------------

    def meta(self, key: str, conn=None) -> str | None:
        """A setting, read on ``conn`` when given (saves a connection checkout)."""
        if conn is None:
            with self.engine.connect() as conn:
                return self.meta(key, conn)
        return conn.execute(select(kb_meta.c.value).where(kb_meta.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        with db.write_transaction(self.engine) as conn:
            conn.execute(_upsert_meta(conn, key, value, value))


def _check_published_edit(pm: Postmortem, stored_override: str | None,
                          stored_markdown: str) -> None:
    """Only sentences the edit adds are checked: wording that was published stays, even
    when a newer version of the check would flag it."""
    from failwell.kb.blameless import check_sentences, split_sentences

    accepted = {f["sentence"] for f in (json.loads(stored_override)["flags"]
                                        if stored_override else [])}
    with contextlib.suppress(FailwellError):
        accepted |= set(split_sentences(from_markdown(stored_markdown).text()))
    new = [s for s in split_sentences(pm.text()) if s not in accepted]
    added = [f for found in check_sentences(new) for f in found]
    if added:
        raise PublishBlockedError(
            f"{pm.id} is published, and this edit adds blame framing: {added[0].sentence!r} "
            f"({added[0].why}; try: {added[0].suggestion}). Reword it; nothing was saved.")


VECTORS_GENERATION = "vectors_generation"
INCIDENTS_GENERATION = "incidents_generation"


def bump_generation(conn, *keys: str) -> None:
    """Count every change to the stored vectors (or incidents), so each process's in-memory
    copy (the vectors in :mod:`failwell.kb.search`, the dashboard figures in
    :mod:`failwell.kb.stats`) knows when to refresh with one primary-key read."""
    for key in keys:
        conn.execute(_upsert_meta(conn, key, "1",
                                  cast(cast(kb_meta.c.value, Integer) + 1, String)))


def _upsert_meta(conn, key: str, value: str, on_conflict):
    """INSERT ... ON CONFLICT (key) DO UPDATE: one statement, so two writers adding the
    first row at once cannot collide (an UPDATE-then-INSERT did, on PostgreSQL, under the
    web app's load test)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(kb_meta).values(key=key, value=value).on_conflict_do_update(
        index_elements=[kb_meta.c.key], set_={"value": on_conflict})
