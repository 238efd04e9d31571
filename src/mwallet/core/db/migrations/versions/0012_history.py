"""History and statements: each posting keeps its entry's time (a period of one account is found by
an index), the postings of an entry are found by an index (a fee beside a debit), and a journal
entry names the withdrawal or payment it belongs to (`ref_id`), filled in for existing entries
from their memos ("withdrawal <id> ...", "payment <id>") once, here.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ref_id", sa.String(length=26), nullable=True))
    op.execute(
        "UPDATE journal_entries SET ref_id = substr(memo, 12, 26) "
        "WHERE kind IN ('hold', 'capture', 'release') AND memo LIKE 'withdrawal %'"
    )
    op.execute(
        "UPDATE journal_entries SET ref_id = substr(memo, 9, 26) "
        "WHERE kind IN ('payment_hold', 'payment', 'payment_release') AND memo LIKE 'payment %'"
    )
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_at", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE postings SET created_at = "
        "(SELECT created_at FROM journal_entries WHERE journal_entries.id = postings.entry_id)"
    )
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.alter_column("created_at", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_index(
            batch_op.f("ix_postings_account_id_created_at_id"),
            ["account_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_postings_entry_id"), ["entry_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_postings_entry_id"))
        batch_op.drop_index(batch_op.f("ix_postings_account_id_created_at_id"))
        batch_op.drop_column("created_at")
    with op.batch_alter_table("journal_entries", schema=None) as batch_op:
        batch_op.drop_column("ref_id")
