"""Device authorization grants (RFC 8628) in SQL: `core.domain.device_grants` tells their rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update

from mwallet.core.db.prepared import Prepared, insert_into
from mwallet.core.db.tables import device_grants
from mwallet.core.db.transaction import SqlTransaction
from mwallet.core.domain.device_grants import DeviceGrant, GrantState

_COLUMNS = (
    device_grants.c.id, device_grants.c.user_code, device_grants.c.state,
    device_grants.c.created_at, device_grants.c.expires_at, device_grants.c.interval_seconds,
    device_grants.c.last_polled_at, device_grants.c.user_id,
)  # fmt: skip
_add = Prepared(
    lambda: insert_into(
        device_grants, "id", "device_digest", "user_code", "state", "created_at", "expires_at",
        "interval_seconds",
    )
)  # fmt: skip
_by_digest = Prepared(
    lambda: select(*_COLUMNS).where(device_grants.c.device_digest == bindparam("digest"))
)
_live_by_user_code = Prepared(
    lambda: (
        select(*_COLUMNS)
        .where(
            device_grants.c.user_code == bindparam("user_code"),
            device_grants.c.state == GrantState.PENDING.value,
            device_grants.c.expires_at > bindparam("now"),
        )
        .order_by(device_grants.c.created_at.desc())
        .limit(1)
    )
)
_save = Prepared(
    lambda: (
        update(device_grants)
        .where(
            device_grants.c.id == bindparam("grant_id"),
            device_grants.c.state == bindparam("was"),
        )
        .values(
            state=bindparam("state"), interval_seconds=bindparam("interval_seconds"),
            last_polled_at=bindparam("last_polled_at"), user_id=bindparam("user_id"),
        )
        .returning(device_grants.c.id)
    )
)  # fmt: skip


class SqlDeviceGrantRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def add(self, grant: DeviceGrant, device_digest: str) -> None:
        self._sql.write(_add, {
            "id": grant.id, "device_digest": device_digest, "user_code": grant.user_code,
            "state": grant.state.value, "created_at": grant.created_at,
            "expires_at": grant.expires_at, "interval_seconds": grant.interval,
        })  # fmt: skip

    def by_device_digest(self, digest: str) -> DeviceGrant | None:
        row = self._sql.one(_by_digest, {"digest": digest})
        return None if row is None else _grant_of(row)

    def live_by_user_code(self, user_code: str, now: datetime) -> DeviceGrant | None:
        row = self._sql.one(_live_by_user_code, {"user_code": user_code, "now": now})
        return None if row is None else _grant_of(row)

    def save(self, grant: DeviceGrant, *, was: GrantState) -> bool:
        return self._sql.one(_save, {
            "grant_id": grant.id, "was": was.value, "state": grant.state.value,
            "interval_seconds": grant.interval, "last_polled_at": grant.last_polled_at,
            "user_id": grant.user_id,
        }) is not None  # fmt: skip


def _grant_of(row: Sequence[Any]) -> DeviceGrant:
    return DeviceGrant(
        id=str(row[0]), user_code=str(row[1]), state=GrantState(row[2]), created_at=row[3],
        expires_at=row[4], interval=int(row[5]), last_polled_at=row[6],
        user_id=None if row[7] is None else str(row[7]),
    )  # fmt: skip
