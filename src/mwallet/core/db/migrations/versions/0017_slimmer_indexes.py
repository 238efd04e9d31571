"""Fewer index pages written per movement: the entries lose their index on time, and the outbox's
index keeps only the unpublished events.

An entry's id is now made in the millisecond of its time, so the operators' reports find a window
of days as a range of the entries' key; the index on `created_at` (one more page written at every
movement) goes. Before this, a card top-up's entry took its payment's id, made when the top-up
was asked for: such an entry (any entry whose id is not of its time's millisecond) gets a new id of
its time here, in its postings and its top-up's or transfer's row too. Idempotency records are
left alone: a card top-up's record names its payment, whose id does not change.

The relay reads the unpublished events oldest first: a partial index of their ids, as small as the
backlog, replaces the index on (published_at, event_id), which held every event ever written.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from mwallet.core.domain.ids import millisecond_of, new_id

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNPUBLISHED = sa.text("published_at IS NULL")


def upgrade() -> None:
    _give_entries_ids_of_their_time()
    op.drop_index("ix_journal_entries_created_at", table_name="journal_entries")
    op.drop_index("ix_outbox_published_at_event_id", table_name="outbox")
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["event_id"],
        unique=False,
        sqlite_where=_UNPUBLISHED,
        postgresql_where=_UNPUBLISHED,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.create_index(
        "ix_outbox_published_at_event_id", "outbox", ["published_at", "event_id"], unique=False
    )
    op.create_index(
        "ix_journal_entries_created_at", "journal_entries", ["created_at"], unique=False
    )


def _of_its_time(entry_id: str, created_at: int) -> bool:
    try:
        return millisecond_of(entry_id) == created_at // 1000  # micros since the epoch
    except ValueError:  # not a ULID at all
        return False


def _give_entries_ids_of_their_time() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT id, created_at FROM journal_entries").execution_options(yield_per=10_000)
    )
    astray = [(str(old), int(at)) for old, at in rows if not _of_its_time(str(old), int(at))]
    for old, at in astray:
        ids = {"old": old, "new": new_id(_EPOCH + timedelta(microseconds=at))}
        # The new row first, the old one last: every foreign key holds at every step.
        conn.execute(
            sa.text(
                "INSERT INTO journal_entries (id, kind, created_at, memo, ref_id) "
                "SELECT :new, kind, created_at, memo, ref_id FROM journal_entries WHERE id = :old"
            ),
            ids,
        )
        for table, column in (("postings", "entry_id"), ("transfers", "id"), ("topups", "id")):
            conn.execute(sa.text(f"UPDATE {table} SET {column} = :new WHERE {column} = :old"), ids)  # noqa: S608 - names from the line above
        conn.execute(sa.text("DELETE FROM journal_entries WHERE id = :old"), ids)
