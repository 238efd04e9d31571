"""The outbox in SQL: domain events written in the same transaction as the change they report
(`SqlOutbox.add`), and the relay's side, which hands the oldest unpublished ones on and marks them
(`SqlOutboxReader`; on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so relays never wait on each
other)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update

from mwallet.core.db.prepared import Prepared, insert_into
from mwallet.core.db.tables import outbox
from mwallet.core.db.transaction import SqlTransaction
from mwallet.core.domain.events import DomainEvent


def _unpublished(dialect: str) -> Any:
    query = (
        select(outbox.c.event_id, outbox.c.event_type, outbox.c.aggregate_id, outbox.c.payload)
        .where(outbox.c.published_at.is_(None))
        .order_by(outbox.c.event_id)
        .limit(bindparam("lim"))
    )
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return query


_pending_events = Prepared(
    {"sqlite": lambda: _unpublished("sqlite"), "postgresql": lambda: _unpublished("postgresql")}
)
_published = Prepared(
    lambda: (
        update(outbox)
        .where(outbox.c.event_id == bindparam("event_id"), outbox.c.published_at.is_(None))
        .values(published_at=bindparam("at"))
    )
)
_unpublished_count = Prepared(
    lambda: select(func.count(), func.min(outbox.c.created_at)).where(
        outbox.c.published_at.is_(None)
    )
)


class SqlOutboxReader:
    """The relay's side of the outbox: the oldest unpublished events, marked once handed on."""

    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def unpublished(self, *, limit: int) -> list[DomainEvent]:
        return [
            DomainEvent(str(event_id), str(event_type), str(aggregate_id), json.loads(payload))
            for event_id, event_type, aggregate_id, payload in self._sql.all(
                _pending_events, {"lim": limit}
            )
        ]

    def mark_published(self, event_ids: Sequence[str], at: datetime) -> None:
        for event_id in event_ids:
            self._sql.write(_published, {"event_id": event_id, "at": at})

    def backlog(self) -> tuple[int, datetime | None]:
        row = self._sql.one(_unpublished_count, {})
        return (0, None) if row is None else (int(row[0]), row[1])


# Made once: `json.dumps` with options builds an encoder on every call (an event per movement).
# No cycle check (~1.4 us of ~3.4): flat values built fresh for each call cannot hold a cycle.
_PAYLOAD_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), check_circular=False)
# `published_at` is left out: NULL (unpublished) by the column's own default. A None bound to
# it costs the SQLite driver an adaptation attempt (~3k instructions an event).
_insert_event = Prepared(
    lambda: insert_into(outbox, "event_id", "event_type", "aggregate_id", "payload", "created_at")
)


class SqlOutbox(SqlOutboxReader):
    def add(self, event: DomainEvent, created_at: datetime) -> None:
        self._sql.write(
            _insert_event,
            {
                "event_id": event.event_id,
                "event_type": event.event_type,
                "aggregate_id": event.aggregate_id,
                "payload": _PAYLOAD_JSON.encode(event.payload),
                "created_at": created_at,
            },
        )
