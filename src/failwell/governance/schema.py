"""Governance tables, in the knowledge base's database (migration 0003)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Integer, String, Table, Text

from failwell.kb.schema import metadata

projects = Table(
    "projects", metadata,
    Column("id", Integer, primary_key=True),
    Column("slug", String(200), nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("stage", String(64), nullable=False),
    Column("risk", String(16), nullable=False),
    Column("document", JSON, nullable=False),
    Column("yaml", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

evidence = Table(
    "evidence", metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("kind", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("recorded_by", String(200), nullable=False),
    Column("recorded_at", DateTime, nullable=False),
)

reviews = Table(
    "reviews", metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("gate", String(64), nullable=False),
    Column("decision", String(32), nullable=False),
    Column("rationale", Text, nullable=False),
    Column("reviewers", JSON, nullable=False),
    Column("evidence", JSON, nullable=False),  # the evidence status seen at the decision
    Column("override_reason", Text),
    Column("decided_at", DateTime, nullable=False),
)

conditions = Table(
    "conditions", metadata,
    Column("id", Integer, primary_key=True),
    Column("review_id", Integer, ForeignKey("reviews.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("description", Text, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

cards = Table(
    "cards", metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("kind", String(16), nullable=False),  # "model" or "data"
    Column("version", Integer, nullable=False),
    Column("sections", JSON, nullable=False),  # section -> {"text", "source"}
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("project", String(200)),
    Column("details", JSON, nullable=False),
)
