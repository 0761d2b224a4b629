"""The knowledge base's tables (SQLAlchemy Core), shared by the store and the migrations.

A postmortem lives in ``incidents`` (one row, the whole document as JSON plus the Markdown it
was written in) with the parts that are queried on their own split out: taxonomy tags,
lessons and action items. Search structures (FTS5 / tsvector, embeddings) are added by
migration 0002 and are not part of this metadata because they differ per database.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

incidents = Table(
    "incidents", metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(200), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False, default="draft"),
    Column("project", String(200), nullable=False, default=""),
    Column("occurred", Date),
    Column("detected", Date),
    Column("resolved", Date),
    Column("summary", Text, nullable=False, default=""),
    Column("search_text", Text, nullable=False, default=""),
    Column("document", JSON, nullable=False),
    Column("markdown", Text, nullable=False),
    Column("source", String(64), nullable=False, default="user"),
    Column("source_id", String(200)),
    Column("attribution", Text),
    Column("external_tags", JSON),
    Column("publish_override", Text),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("published_at", DateTime),
    UniqueConstraint("source", "source_id", name="uq_incidents_source"),
)
Index("ix_incidents_occurred", incidents.c.occurred)
Index("ix_incidents_project", incidents.c.project)

incident_tags = Table(
    "incident_tags", metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"),
           primary_key=True),
    Column("kind", String(16), primary_key=True),  # "pattern" or "failure_mode"
    Column("tag", String(64), primary_key=True),
)
Index("ix_incident_tags_tag", incident_tags.c.kind, incident_tags.c.tag)

lessons = Table(
    "lessons", metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("applies_to", JSON, nullable=False),
)

action_items = Table(
    "action_items", metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("description", Text, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("due", Date),
    Column("status", String(16), nullable=False),
    Column("closed_at", Date),
)

scans = Table(
    "scans", metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Column("data_fingerprint", String(64)),
    Column("model_fingerprint", String(64)),
    Column("result", JSON, nullable=False),
    Column("project", String(200)),  # migration 0003
)

scan_findings = Table(
    "scan_findings", metadata,
    Column("id", Integer, primary_key=True),
    Column("scan_id", Integer, ForeignKey("scans.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("detector", String(64), nullable=False),
    Column("failure_mode", String(64), nullable=False, index=True),
    Column("severity", String(16), nullable=False),
    Column("title", Text, nullable=False),
)

kb_meta = Table(
    "kb_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Added by migration 0002 (with the full-text structures).
embeddings = Table(
    "embeddings", metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"),
           primary_key=True),
    Column("model", String(100), nullable=False),
    Column("vector", LargeBinary, nullable=False),
)
