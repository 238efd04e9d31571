"""One index on an account's postings, not two: their time becomes their key in the account.

Each account keeps the time of its last posting (`accounts.posted_at`, microseconds), and every
new posting takes a time later than it: its entry's, or a microsecond after the account's last.
An account's postings are then strictly increasing in time in the order its balance followed
them (their ids), so `(account_id, created_at)` serves history pages, periods of dates and the
running balance alike. It is unique: the database itself refuses two postings of one account at
the same time. The index on `(account_id, id)` (one more index page written for every posting)
goes, and `(account_id, created_at, id)` loses its id.

Postings written before this may not follow that order (two entries in the same microsecond,
a clock stepped back, or on PostgreSQL an entry that waited for an account's lock): each is moved
to the earliest time that is later than the account's posting before it (never earlier than its
own; most move by nothing, the rest by a few microseconds, but after a clock stepped back the
postings that followed move by up to the step, until the clock passed the time it stepped back
from: an entry's time and its postings' may then fall on either side of midnight).

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# Along each account's postings in id order, with n their number from 1: the earliest strictly
# increasing times not before their own are max(created_at - n, over the postings so far) + n.
_FOLLOWING_TIMES = sa.text(
    """
    WITH numbered AS (
        SELECT id, account_id, created_at,
               row_number() OVER (PARTITION BY account_id ORDER BY id) AS n
        FROM postings
    ), moved AS (
        SELECT id, created_at,
               max(created_at - n) OVER (
                   PARTITION BY account_id ORDER BY id ROWS UNBOUNDED PRECEDING
               ) + n AS posted
        FROM numbered
    )
    UPDATE postings SET created_at = moved.posted
    FROM moved
    WHERE moved.id = postings.id AND moved.posted <> moved.created_at
    """
)
_LAST_POSTED = sa.text(
    "UPDATE accounts SET posted_at = coalesce("
    "(SELECT max(created_at) FROM postings WHERE postings.account_id = accounts.id), 0)"
)


def upgrade() -> None:
    op.add_column(
        "accounts",
        sa.Column("posted_at", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.execute(_FOLLOWING_TIMES)
    op.execute(_LAST_POSTED)
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_postings_account_id_id"))
        batch_op.drop_index(batch_op.f("ix_postings_account_id_created_at_id"))
        batch_op.create_index(
            batch_op.f("ix_postings_account_id_created_at"),
            ["account_id", "created_at"],
            unique=True,
        )


def downgrade() -> None:
    # The postings keep the times they were moved to: still their entries' times, or just after.
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_postings_account_id_created_at"))
        batch_op.create_index(
            batch_op.f("ix_postings_account_id_created_at_id"),
            ["account_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_postings_account_id_id"), ["account_id", "id"], unique=False
        )
    # Not a batch (SQLite would copy the table, which other tables' keys refer to): both
    # databases drop a column that no index or constraint names in place.
    op.execute("ALTER TABLE accounts DROP COLUMN posted_at")
