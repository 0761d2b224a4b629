"""An index matching the incident list's order (newest first), so the first page of a
100k-incident list reads 50 index entries instead of sorting every row.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    # SQLite sorts NULLs first, so its DESC already puts them last (and refuses the clause)
    nulls = "" if op.get_bind().dialect.name == "sqlite" else " NULLS LAST"
    op.create_index("ix_incidents_newest_first", "incidents",
                    [sa.text(f"occurred DESC{nulls}"), sa.text("id DESC")])


def downgrade() -> None:
    op.drop_index("ix_incidents_newest_first", "incidents")
