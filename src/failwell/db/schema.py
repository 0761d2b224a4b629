"""Every table failwell stores (SQLAlchemy Core), in one place: the knowledge base's
incidents and scans, governance's projects and reviews, the web app's accounts. The stores
in ``kb``, ``governance`` and ``web`` use these through their own functions; the migrations
in ``db/migrations`` create them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
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

# -- governance ----------------------------------------------------------------------
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

# -- web app -------------------------------------------------------------------------
users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(300), nullable=False),
    Column("role", String(20), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("scopes", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
)

web_sessions = Table(
    "web_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)

login_failures = Table(  # migration 0008: failed logins, for throttling password guessing
    "login_failures", metadata,
    Column("id", Integer, primary_key=True),
    # what is throttled: "user:NAME" or "addr:IP", one row each per failure (web/accounts.py)
    Column("username", String(100), nullable=False, index=True),
    Column("at", DateTime, nullable=False),
)
