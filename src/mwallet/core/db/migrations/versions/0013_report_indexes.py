"""Reports: entries by time (postings by entry came with 0012).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_journal_entries_created_at", "journal_entries", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_journal_entries_created_at", table_name="journal_entries")
