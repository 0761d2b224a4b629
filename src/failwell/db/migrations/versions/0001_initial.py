"""Postmortems, their tags, lessons and action items; scans and findings.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("slug", sa.String(200), nullable=False, unique=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("occurred", sa.Date),
        sa.Column("detected", sa.Date),
        sa.Column("resolved", sa.Date),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("search_text", sa.Text, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("markdown", sa.Text, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("source_id", sa.String(200)),
        sa.Column("attribution", sa.Text),
        sa.Column("external_tags", sa.JSON),
        sa.Column("publish_override", sa.Text),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("published_at", sa.DateTime),
        sa.UniqueConstraint("source", "source_id", name="uq_incidents_source"),
    )
    op.create_index("ix_incidents_occurred", "incidents", ["occurred"])
    op.create_index("ix_incidents_project", "incidents", ["project"])
    op.create_table(
        "incident_tags",
        sa.Column("incident_id", sa.Integer,
                  sa.ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("tag", sa.String(64), primary_key=True),
    )
    op.create_index("ix_incident_tags_tag", "incident_tags", ["kind", "tag"])
    op.create_table(
        "lessons",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("incident_id", sa.Integer,
                  sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("applies_to", sa.JSON, nullable=False),
    )
    op.create_index("ix_lessons_incident_id", "lessons", ["incident_id"])
    op.create_table(
        "action_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("incident_id", sa.Integer,
                  sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("due", sa.Date),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("closed_at", sa.Date),
    )
    op.create_index("ix_action_items_incident_id", "action_items", ["incident_id"])
    op.create_table(
        "scans",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("data_fingerprint", sa.String(64)),
        sa.Column("model_fingerprint", sa.String(64)),
        sa.Column("result", sa.JSON, nullable=False),
    )
    op.create_table(
        "scan_findings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scan_id", sa.Integer, sa.ForeignKey("scans.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("detector", sa.String(64), nullable=False),
        sa.Column("failure_mode", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
    )
    op.create_index("ix_scan_findings_scan_id", "scan_findings", ["scan_id"])
    op.create_index("ix_scan_findings_failure_mode", "scan_findings", ["failure_mode"])
    op.create_table(
        "kb_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
