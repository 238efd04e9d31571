"""The outbox becomes a queue of the events not yet relayed: the relay deletes what it has handed
on instead of marking it `published_at`, so the partial index of unpublished events and the column
go, and a movement's event is written into one B-tree (the table's key) instead of two.

Events already published are deleted here (nothing read them once relayed); those still waiting
stay, and the relay hands them on as before. The delete takes time in proportion to the events
kept so far; SQLite keeps the freed pages for new rows (the file shrinks only with VACUUM), and
PostgreSQL's autovacuum reclaims the dead rows. Going down brings the column and the index back,
every remaining event unpublished; the deleted ones do not come back.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_UNPUBLISHED = sa.text("published_at IS NULL")


def upgrade() -> None:
    # Before the column goes: SQLite rewrites the table to drop it, the backlog only by then.
    op.execute("DELETE FROM outbox WHERE published_at IS NOT NULL")
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    # SQLite drops a column in place since 3.35, which RETURNING needs already (a batch's copy of
    # the table would have to be told WITHOUT ROWID again).
    op.drop_column("outbox", "published_at")


def downgrade() -> None:
    op.add_column("outbox", sa.Column("published_at", sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["event_id"],
        unique=False,
        sqlite_where=_UNPUBLISHED,
        postgresql_where=_UNPUBLISHED,
    )
