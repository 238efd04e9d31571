"""SQL repositories of everything but the ledger: settings, users, transfers, keys, outbox, sessions.

Statements are built once at import; SQLAlchemy caches their compiled form per dialect, so the hot
path pays for neither building nor compiling SQL.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, Row, bindparam, insert, select, update
from sqlalchemy.orm import aliased

from mwallet.core.db.tables import (
    idempotency_keys,
    instance_settings,
    outbox,
    sessions,
    topups,
    transfers,
    users,
)
from mwallet.core.domain.events import DomainEvent
from mwallet.core.domain.money import Money
from mwallet.core.domain.transfers import IdempotencyRecord, TopUp, Transfer
from mwallet.core.domain.users import User
from mwallet.core.services.unit_of_work import InstanceSettings, StoredSession


class SqlInstanceRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self) -> InstanceSettings | None:
        rows = {
            str(key): str(value)
            for key, value in self._conn.execute(
                select(instance_settings.c.key, instance_settings.c.value)
            )
        }
        if "currency" not in rows:
            return None
        return InstanceSettings(currency=rows["currency"], region=rows.get("region") or None)

    def put(self, settings: InstanceSettings) -> None:
        self._conn.execute(
            insert(instance_settings),
            [
                {"key": "currency", "value": settings.currency},
                {"key": "region", "value": settings.region or ""},
            ],
        )


_user_columns = (users.c.id, users.c.phone, users.c.display_name, users.c.email, users.c.created_at)
_user_by_id = select(*_user_columns).where(users.c.id == bindparam("user_id"))
_user_by_phone = select(*_user_columns).where(users.c.phone == bindparam("phone"))
_insert_user = insert(users)
_password_hash = select(users.c.password_hash).where(users.c.id == bindparam("user_id"))
_set_password_hash = (
    update(users).where(users.c.id == bindparam("user_id")).values(password_hash=bindparam("ph"))
)


def user_from_row(row: Row[tuple[str, str, str, str | None, datetime]]) -> User:
    return User(row[0], row[1], row[2], row[3], row[4])


class SqlUserRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, user: User, password_hash: str) -> None:
        self._conn.execute(
            _insert_user,
            {
                "id": user.id,
                "phone": user.phone,
                "display_name": user.display_name,
                "email": user.email,
                "password_hash": password_hash,
                "created_at": user.created_at,
            },
        )

    def by_id(self, user_id: str) -> User | None:
        row = self._conn.execute(_user_by_id, {"user_id": user_id}).first()
        return user_from_row(row) if row is not None else None

    def by_phone(self, phone: str) -> User | None:
        row = self._conn.execute(_user_by_phone, {"phone": phone}).first()
        return user_from_row(row) if row is not None else None

    def password_hash(self, user_id: str) -> str:
        return str(self._conn.execute(_password_hash, {"user_id": user_id}).scalar_one())

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self._conn.execute(_set_password_hash, {"user_id": user_id, "ph": password_hash})


_sender = aliased(users)
_recipient = aliased(users)
_transfer_by_id = (
    select(
        transfers.c.id,
        transfers.c.sender_user_id,
        _sender.c.phone,
        transfers.c.recipient_user_id,
        _recipient.c.phone,
        transfers.c.amount,
        transfers.c.currency,
        transfers.c.note,
        transfers.c.created_at,
    )
    .join(_sender, _sender.c.id == transfers.c.sender_user_id)
    .join(_recipient, _recipient.c.id == transfers.c.recipient_user_id)
    .where(transfers.c.id == bindparam("transfer_id"))
)
_insert_transfer = insert(transfers)
_topup_by_id = select(
    topups.c.id,
    topups.c.user_id,
    topups.c.source,
    topups.c.amount,
    topups.c.currency,
    topups.c.created_at,
).where(topups.c.id == bindparam("topup_id"))
_insert_topup = insert(topups)


class SqlTransferRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add_transfer(self, transfer: Transfer) -> None:
        self._conn.execute(
            _insert_transfer,
            {
                "id": transfer.id,
                "sender_user_id": transfer.sender_user_id,
                "recipient_user_id": transfer.recipient_user_id,
                "amount": transfer.amount.minor,
                "currency": transfer.amount.currency,
                "note": transfer.note,
                "created_at": transfer.created_at,
            },
        )

    def transfer(self, transfer_id: str) -> Transfer | None:
        row = self._conn.execute(_transfer_by_id, {"transfer_id": transfer_id}).first()
        if row is None:
            return None
        return Transfer(
            row[0], row[1], row[2], row[3], row[4], Money(row[5], row[6]), row[7], row[8]
        )

    def add_topup(self, topup: TopUp) -> None:
        self._conn.execute(
            _insert_topup,
            {
                "id": topup.id,
                "user_id": topup.user_id,
                "source": topup.source,
                "amount": topup.amount.minor,
                "currency": topup.amount.currency,
                "created_at": topup.created_at,
            },
        )

    def topup(self, topup_id: str) -> TopUp | None:
        row = self._conn.execute(_topup_by_id, {"topup_id": topup_id}).first()
        if row is None:
            return None
        return TopUp(row[0], row[1], row[2], Money(row[3], row[4]), row[5])


_key_lookup = select(
    idempotency_keys.c.operation, idempotency_keys.c.fingerprint, idempotency_keys.c.result_id
).where(idempotency_keys.c.scope == bindparam("s"), idempotency_keys.c.key == bindparam("k"))
_insert_key = insert(idempotency_keys)


class SqlIdempotencyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        row = self._conn.execute(_key_lookup, {"s": scope, "k": key}).first()
        return IdempotencyRecord(row[0], row[1], row[2]) if row is not None else None

    def add(self, scope: str, key: str, record: IdempotencyRecord, created_at: datetime) -> None:
        self._conn.execute(
            _insert_key,
            {
                "scope": scope,
                "key": key,
                "operation": record.operation,
                "fingerprint": record.fingerprint,
                "result_id": record.result_id,
                "created_at": created_at,
            },
        )


_insert_event = insert(outbox)


class SqlOutbox:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, event: DomainEvent, created_at: datetime) -> None:
        self._conn.execute(
            _insert_event,
            {
                "event_id": event.event_id,
                "event_type": event.event_type,
                "aggregate_id": event.aggregate_id,
                "payload": json.dumps(event.payload, sort_keys=True, separators=(",", ":")),
                "created_at": created_at,
                "published_at": None,
            },
        )


_session_lookup = select(sessions.c.user_id, sessions.c.expires_at, sessions.c.revoked_at).where(
    sessions.c.token_digest == bindparam("d")
)
_revoke_session = (
    update(sessions)
    .where(sessions.c.token_digest == bindparam("d"), sessions.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("at"))
)


class SqlSessionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(
        self, token_digest: str, user_id: str, created_at: datetime, expires_at: datetime
    ) -> None:
        self._conn.execute(
            insert(sessions),
            {
                "token_digest": token_digest,
                "user_id": user_id,
                "created_at": created_at,
                "expires_at": expires_at,
                "revoked_at": None,
            },
        )

    def get(self, token_digest: str) -> StoredSession | None:
        row = self._conn.execute(_session_lookup, {"d": token_digest}).first()
        if row is None:
            return None
        return StoredSession(user_id=row[0], expires_at=row[1], revoked=row[2] is not None)

    def revoke(self, token_digest: str, revoked_at: datetime) -> None:
        self._conn.execute(_revoke_session, {"d": token_digest, "at": revoked_at})
