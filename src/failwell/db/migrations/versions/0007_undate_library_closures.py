"""The starter library's action items are closed but carry no closing date. Before this
revision the store dated them the day the library was seeded, which made "median days to
close" count years from each case study to the install. Clear those dates (the library
files have none to lose).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.execute("UPDATE action_items SET closed_at = NULL WHERE incident_id IN "
               "(SELECT id FROM incidents WHERE source = 'library')")


def downgrade() -> None:
    pass  # the seeding date was never information
