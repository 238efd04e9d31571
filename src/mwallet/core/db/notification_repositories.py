"""SQL repositories of notifications: deliveries (the inbox among them) and preferences.

A worker claims due deliveries of one channel with a lease (`state = 'sending'`, `lease_until`):
on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so several workers share the work without waiting on
each other; a claim whose lease ran out (its worker died) is due again. Settling a delivery is a
conditional UPDATE on the lease it was claimed with, so a worker that lost its lease cannot
overwrite what another worker did since.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update

from mwallet.core.db.prepared import Prepared, dialect_insert
from mwallet.core.db.tables import notification_prefs, notifications
from mwallet.core.db.transaction import SqlTransaction
from mwallet.core.domain.notifications import Channel, Delivery, DeliveryState, Preferences

_COLUMNS = (
    notifications.c.id,
    notifications.c.event_id,
    notifications.c.user_id,
    notifications.c.channel,
    notifications.c.kind,
    notifications.c.address,
    notifications.c.title,
    notifications.c.body,
    notifications.c.state,
    notifications.c.attempts,
    notifications.c.created_at,
    notifications.c.next_attempt_at,
    notifications.c.sent_at,
    notifications.c.read_at,
    notifications.c.last_error,
)
_FIELDS = (
    "id", "event_id", "user_id", "channel", "kind", "address", "title", "body", "state",
    "attempts", "created_at", "next_attempt_at", "lease_until", "sent_at", "read_at", "last_error",
)  # fmt: skip


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(
        id=str(row[0]),
        event_id=str(row[1]),
        user_id=str(row[2]),
        channel=Channel(row[3]),
        kind=str(row[4]),
        address=str(row[5]),
        title=str(row[6]),
        body=str(row[7]),
        state=DeliveryState(row[8]),
        attempts=int(row[9]),
        created_at=row[10],
        next_attempt_at=row[11],
        sent_at=row[12],
        read_at=row[13],
        last_error=row[14],
    )


def _insert_delivery(dialect: str) -> Any:
    return (
        dialect_insert(dialect)(notifications)
        .values({name: bindparam(name) for name in _FIELDS})
        .on_conflict_do_nothing(index_elements=["event_id", "user_id", "channel"])
    )


_add = Prepared(
    {
        "sqlite": lambda: _insert_delivery("sqlite"),
        "postgresql": lambda: _insert_delivery("postgresql"),
    }
)


def _due_ids(dialect: str) -> Any:
    """The ids of one channel's due deliveries, oldest due first (locked, skipping locked ones,
    on PostgreSQL)."""
    query = (
        select(notifications.c.id)
        .where(
            notifications.c.channel == bindparam("channel"),
            or_(
                and_(
                    or_(
                        notifications.c.state == DeliveryState.QUEUED.value,
                        notifications.c.state == DeliveryState.RETRYING.value,
                    ),
                    notifications.c.next_attempt_at <= bindparam("now"),
                ),
                and_(
                    notifications.c.state == DeliveryState.SENDING.value,
                    notifications.c.lease_until <= bindparam("now"),
                ),
            ),
        )
        .order_by(notifications.c.next_attempt_at, notifications.c.id)
        .limit(bindparam("lim"))
    )
    if dialect == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return query.scalar_subquery()


def _claim(dialect: str) -> Any:
    return (
        update(notifications)
        .where(notifications.c.id.in_(_due_ids(dialect)))
        .values(state=DeliveryState.SENDING.value, lease_until=bindparam("lease"))
        .returning(*_COLUMNS)
    )


_claim_due = Prepared(
    {"sqlite": lambda: _claim("sqlite"), "postgresql": lambda: _claim("postgresql")}
)
_settle = Prepared(
    lambda: (
        update(notifications)
        .where(
            notifications.c.id == bindparam("id"),
            notifications.c.state == DeliveryState.SENDING.value,
            notifications.c.lease_until == bindparam("lease"),
        )
        .values(
            state=bindparam("state"),
            attempts=bindparam("attempts"),
            next_attempt_at=bindparam("next_at"),
            sent_at=bindparam("sent_at"),
            last_error=bindparam("error"),
            lease_until=None,
        )
        .returning(notifications.c.id)
    )
)


def _inbox_query(*, unread: bool, paged: bool) -> Any:
    """A person's inbox, newest first; `paged`: only older than the id `before`."""
    conditions = [
        notifications.c.user_id == bindparam("user_id"),
        notifications.c.channel == Channel.INBOX.value,
    ]
    if unread:
        conditions.append(notifications.c.read_at.is_(None))
    if paged:
        conditions.append(notifications.c.id < bindparam("before"))
    return (
        select(*_COLUMNS)
        .where(*conditions)
        .order_by(notifications.c.id.desc())
        .limit(bindparam("lim"))
    )


def _inbox_prepared(*, unread: bool, paged: bool) -> Prepared:
    return Prepared(lambda: _inbox_query(unread=unread, paged=paged))


_INBOX = {
    (unread, paged): _inbox_prepared(unread=unread, paged=paged)
    for unread in (False, True)
    for paged in (False, True)
}
_read = Prepared(
    lambda: (
        update(notifications)
        .where(
            notifications.c.id == bindparam("id"),
            notifications.c.user_id == bindparam("user_id"),
            notifications.c.channel == Channel.INBOX.value,
        )
        .values(
            read_at=func.coalesce(
                notifications.c.read_at, bindparam("at", type_=notifications.c.read_at.type)
            )
        )
        .returning(*_COLUMNS)
    )
)
_dead = Prepared(
    lambda: (
        select(*_COLUMNS)
        .where(notifications.c.state == DeliveryState.DEAD.value)
        .order_by(notifications.c.id)
        .limit(bindparam("lim"))
    )
)
_revive = Prepared(
    lambda: (
        update(notifications)
        .where(
            notifications.c.id == bindparam("id"),
            notifications.c.state == DeliveryState.DEAD.value,
        )
        .values(
            state=DeliveryState.QUEUED.value,
            attempts=0,
            next_attempt_at=bindparam("at"),
            last_error=None,
        )
        .returning(*_COLUMNS)
    )
)
_stats = Prepared(
    lambda: (
        select(
            notifications.c.channel,
            notifications.c.state,
            func.count(),
            func.min(notifications.c.created_at),
        )
        .where(notifications.c.channel != Channel.INBOX.value)
        .group_by(notifications.c.channel, notifications.c.state)
    )
)
_prefs = Prepared(
    lambda: select(
        notification_prefs.c.language,
        notification_prefs.c.email,
        notification_prefs.c.sms,
        notification_prefs.c.push,
    ).where(notification_prefs.c.user_id == bindparam("user_id"))
)


def _upsert_prefs(dialect: str) -> Any:
    statement = dialect_insert(dialect)(notification_prefs).values(
        {
            name: bindparam(name)
            for name in ("user_id", "language", "email", "sms", "push", "updated_at")
        }
    )
    return statement.on_conflict_do_update(
        index_elements=["user_id"],
        set_={
            name: statement.excluded[name]
            for name in ("language", "email", "sms", "push", "updated_at")
        },
    )


_save_prefs = Prepared(
    {"sqlite": lambda: _upsert_prefs("sqlite"), "postgresql": lambda: _upsert_prefs("postgresql")}
)


class SqlNotificationRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def add(self, delivery: Delivery) -> bool:
        params = {
            "id": delivery.id,
            "event_id": delivery.event_id,
            "user_id": delivery.user_id,
            "channel": delivery.channel.value,
            "kind": delivery.kind,
            "address": delivery.address,
            "title": delivery.title,
            "body": delivery.body,
            "state": delivery.state.value,
            "attempts": delivery.attempts,
            "created_at": delivery.created_at,
            "next_attempt_at": delivery.next_attempt_at,
            "lease_until": None,
            "sent_at": delivery.sent_at,
            "read_at": delivery.read_at,
            "last_error": delivery.last_error,
        }
        return self._sql.count(_add, params) == 1

    def claim(
        self, channel: Channel, now: datetime, *, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        rows = self._sql.all(
            _claim_due, {"channel": channel.value, "now": now, "lease": lease_until, "lim": limit}
        )
        return sorted((_delivery(row) for row in rows), key=lambda d: (d.next_attempt_at, d.id))

    def settle(
        self,
        delivery_id: str,
        *,
        lease_until: datetime,
        state: DeliveryState,
        attempts: int,
        next_attempt_at: datetime,
        sent_at: datetime | None,
        error: str | None,
    ) -> bool:
        row = self._sql.one(
            _settle,
            {
                "id": delivery_id,
                "lease": lease_until,
                "state": state.value,
                "attempts": attempts,
                "next_at": next_attempt_at,
                "sent_at": sent_at,
                "error": error[:500] if error else None,
            },
        )
        return row is not None

    def inbox(
        self, user_id: str, *, unread_only: bool, limit: int, before: str | None = None
    ) -> list[Delivery]:
        params: dict[str, Any] = {"user_id": user_id, "lim": limit}
        if before is not None:
            params["before"] = before
        query = _INBOX[(unread_only, before is not None)]
        return [_delivery(row) for row in self._sql.all(query, params)]

    def mark_read(self, user_id: str, delivery_id: str, at: datetime) -> Delivery | None:
        row = self._sql.one(_read, {"id": delivery_id, "user_id": user_id, "at": at})
        return None if row is None else _delivery(row)

    def dead(self, *, limit: int) -> list[Delivery]:
        return [_delivery(row) for row in self._sql.all(_dead, {"lim": limit})]

    def revive(self, delivery_id: str, at: datetime) -> Delivery | None:
        row = self._sql.one(_revive, {"id": delivery_id, "at": at})
        return None if row is None else _delivery(row)

    def stats(self) -> list[tuple[Channel, DeliveryState, int, datetime]]:
        return [
            (Channel(channel), DeliveryState(state), int(count), oldest)
            for channel, state, count, oldest in self._sql.all(_stats, {})
        ]

    def prefs(self, user_id: str) -> Preferences | None:
        row = self._sql.one(_prefs, {"user_id": user_id})
        if row is None:
            return None
        return Preferences(user_id, str(row[0]), bool(row[1]), bool(row[2]), bool(row[3]))

    def save_prefs(self, prefs: Preferences, at: datetime) -> None:
        self._sql.write(
            _save_prefs,
            {
                "user_id": prefs.user_id,
                "language": prefs.language,
                "email": prefs.email,
                "sms": prefs.sms,
                "push": prefs.push,
                "updated_at": at,
            },
        )
