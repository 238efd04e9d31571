"""SQL repositories of the security records: the audit log and per-phone login throttling."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import BigInteger, ClauseElement, Select, bindparam, select, type_coerce, update

from mwallet.core.db.prepared import Prepared, dialect_insert, insert_into
from mwallet.core.db.tables import audit_head, audit_log, login_throttle
from mwallet.core.db.transaction import SqlTransaction
from mwallet.core.domain.audit import (
    AuditAnchor,
    AuditEvent,
    AuditRecord,
    UnreadableRecord,
    record_hash,
)
from mwallet.core.domain.lockout import LoginThrottle
from mwallet.core.errors import DataIntegrityError

# Locking the head row makes concurrent appenders take turns (PostgreSQL; SQLite's writers
# already do), so two records never claim the same predecessor.
_head_for_update = Prepared(
    lambda: (
        select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
    )
)
_move_head = Prepared(
    lambda: (
        update(audit_head)
        .where(audit_head.c.id == 1)
        .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
    )
)
_AUDIT_FIELDS = ("seq", "at", "action", "actor", "subject", "details", "prev_hash", "hash")
_insert_record = Prepared(lambda: insert_into(audit_log, *_AUDIT_FIELDS))
# `at` is read as the stored integer and converted here, so a broken value names its record.
_COLUMNS = (
    audit_log.c.seq,
    type_coerce(audit_log.c.at, BigInteger),
    audit_log.c.action,
    audit_log.c.actor,
    audit_log.c.subject,
    audit_log.c.details,
    audit_log.c.prev_hash,
    audit_log.c.hash,
)
_head = Prepared(lambda: select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1))
_newest = Prepared(
    lambda: select(*_COLUMNS).order_by(audit_log.c.seq.desc()).limit(bindparam("lim"))
)
_since = Prepared(
    lambda: (
        select(*_COLUMNS)
        .where(audit_log.c.at >= bindparam("since"))
        .order_by(audit_log.c.seq.desc())
        .limit(bindparam("lim"))
    )
)
_page = Prepared(
    lambda: (
        select(*_COLUMNS)
        .where(audit_log.c.seq > bindparam("after"))
        .order_by(audit_log.c.seq)
        .limit(bindparam("lim"))
    )
)
_PAGE = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _record(row: Sequence[Any]) -> AuditRecord | UnreadableRecord:
    seq, micros, action, actor, subject, details, prev_hash, hash_ = row
    try:
        at = _EPOCH + timedelta(microseconds=int(micros))
    except (OverflowError, TypeError, ValueError) as exc:
        return UnreadableRecord(int(seq), f"its time {micros!r} is not a time ({exc})")
    if not isinstance(details, str):
        return UnreadableRecord(int(seq), "its details are not text")
    return AuditRecord(int(seq), at, action, actor, subject, details, prev_hash, hash_)


class SqlAuditLog:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def append(self, event: AuditEvent, at: datetime) -> AuditRecord:
        head = self._sql.one(_head_for_update, {})
        if head is None:
            raise DataIntegrityError("the audit log has no head row")
        seq, prev_hash = int(head[0]) + 1, str(head[1])
        details = event.details_json
        digest = record_hash(
            prev_hash,
            seq,
            at=at,
            action=event.action,
            actor=event.actor,
            subject=event.subject,
            details_json=details,
        )
        self._sql.write(
            _insert_record,
            {
                "seq": seq,
                "at": at,
                "action": event.action,
                "actor": event.actor,
                "subject": event.subject,
                "details": details,
                "prev_hash": prev_hash,
                "hash": digest,
            },
        )
        self._sql.write(_move_head, {"new_seq": seq, "new_hash": digest})
        return AuditRecord(
            seq, at, event.action, event.actor, event.subject, details, prev_hash, digest
        )

    def head(self) -> AuditAnchor:
        row = self._sql.one(_head, {})
        if row is None:
            raise DataIntegrityError("the audit log has no head row")
        return AuditAnchor(int(row[0]), str(row[1]))

    def newest(self, *, limit: int, since: datetime | None = None) -> list[AuditRecord]:
        if since is None:
            rows = self._sql.all(_newest, {"lim": limit})
        else:
            rows = self._sql.all(_since, {"since": since, "lim": limit})
        return [record for row in rows if isinstance(record := _record(row), AuditRecord)]

    def oldest_first(self) -> Iterator[AuditRecord | UnreadableRecord]:
        """Every record, oldest first, read a page at a time (memory stays flat)."""
        after = 0
        while rows := self._sql.all(_page, {"after": after, "lim": _PAGE}):
            for row in rows:
                yield _record(row)
            after = int(rows[-1][0])


def _throttle_query() -> Select[Any]:
    return select(
        login_throttle.c.failures, login_throttle.c.locked_until, login_throttle.c.refusals
    ).where(login_throttle.c.phone == bindparam("phone"))


_throttle = Prepared(_throttle_query)
_THROTTLE_FIELDS = ("phone", "failures", "locked_until", "refusals")


def _throttle_upsert(dialect: str, *, update_existing: bool) -> ClauseElement:
    statement = dialect_insert(dialect)(login_throttle).values(
        {name: bindparam(name) for name in _THROTTLE_FIELDS}
    )
    if not update_existing:
        ensure: ClauseElement = statement.on_conflict_do_nothing(index_elements=["phone"])
        return ensure
    upsert: ClauseElement = statement.on_conflict_do_update(
        index_elements=["phone"],
        set_={
            "failures": statement.excluded.failures,
            "locked_until": statement.excluded.locked_until,
            "refusals": statement.excluded.refusals,
        },
    )
    return upsert


_DIALECTS = ("sqlite", "postgresql")
_save_throttle = Prepared(
    {name: partial(_throttle_upsert, name, update_existing=True) for name in _DIALECTS}
)
_ensure_throttle = Prepared(
    {name: partial(_throttle_upsert, name, update_existing=False) for name in _DIALECTS}
)
_clear_throttle = Prepared(
    lambda: (
        update(login_throttle)
        .where(login_throttle.c.phone == bindparam("phone"))
        .values(failures=0, locked_until=None, refusals=0)
    )
)
_lock_throttle_row = Prepared(lambda: _throttle_query().with_for_update())


def _throttle_from(row: Sequence[Any] | None) -> LoginThrottle:
    return LoginThrottle() if row is None else LoginThrottle(int(row[0]), row[1], int(row[2]))


class SqlLoginThrottles:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def get(self, phone: str) -> LoginThrottle:
        return _throttle_from(self._sql.one(_throttle, {"phone": phone}))

    def get_for_update(self, phone: str) -> LoginThrottle:
        """The phone's count, its row locked until the end of the unit of work (created if new,
        so two failures at once cannot both start from zero)."""
        self._sql.write(
            _ensure_throttle, {"phone": phone, "failures": 0, "locked_until": None, "refusals": 0}
        )
        return _throttle_from(self._sql.one(_lock_throttle_row, {"phone": phone}))

    def save(self, phone: str, throttle: LoginThrottle) -> None:
        self._sql.write(
            _save_throttle,
            {
                "phone": phone,
                "failures": throttle.failures,
                "locked_until": throttle.locked_until,
                "refusals": throttle.refusals,
            },
        )

    def clear(self, phone: str) -> None:
        self._sql.write(_clear_throttle, {"phone": phone})
