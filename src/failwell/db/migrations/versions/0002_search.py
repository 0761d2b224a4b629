"""Search: full text (SQLite FTS5 with triggers, or a PostgreSQL tsvector column with a GIN
index) and one sentence embedding per incident.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

_SQLITE = [
    "CREATE VIRTUAL TABLE incident_fts USING fts5(title, search_text, content='incidents', "
    "content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER incidents_fts_ai AFTER INSERT ON incidents BEGIN "
    "INSERT INTO incident_fts(rowid, title, search_text) "
    "VALUES (new.id, new.title, new.search_text); END",
    "CREATE TRIGGER incidents_fts_ad AFTER DELETE ON incidents BEGIN "
    "INSERT INTO incident_fts(incident_fts, rowid, title, search_text) "
    "VALUES ('delete', old.id, old.title, old.search_text); END",
    "CREATE TRIGGER incidents_fts_au AFTER UPDATE OF title, search_text ON incidents BEGIN "
    "INSERT INTO incident_fts(incident_fts, rowid, title, search_text) "
    "VALUES ('delete', old.id, old.title, old.search_text); "
    "INSERT INTO incident_fts(rowid, title, search_text) "
    "VALUES (new.id, new.title, new.search_text); END",
    "INSERT INTO incident_fts(incident_fts) VALUES ('rebuild')",
]

_POSTGRES = [
    "ALTER TABLE incidents ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(search_text, '')), 'B')) STORED",
    "CREATE INDEX ix_incidents_search_vector ON incidents USING gin (search_vector)",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _SQLITE if dialect == "sqlite" else _POSTGRES:
        op.execute(statement)
    op.create_table(
        "embeddings",
        sa.Column("incident_id", sa.Integer,
                  sa.ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
