"""The SQL unit of work: one connection, one transaction, the repositories bound to it.

Database errors that mean "a concurrent writer got there first" (a deadlock, a serialization
failure, a unique key another transaction just took, SQLite's lock timeout) come out as
`ConcurrencyConflict`, which the service facade retries as a whole unit of work.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from mwallet.core.db.engine import BEGIN_OPTION, is_sqlite
from mwallet.core.db.ledger_repository import SqlLedgerRepository
from mwallet.core.db.repositories import (
    SqlIdempotencyRepository,
    SqlInstanceRepository,
    SqlOutbox,
    SqlSessionRepository,
    SqlTransferRepository,
    SqlUserRepository,
)
from mwallet.core.errors import ConcurrencyConflict, LedgerInvariantBroken

# PostgreSQL SQLSTATEs that a retry of the whole transaction can cure.
_PG_RETRYABLE = {"40001", "40P01", "23505", "55P03"}


def translate(exc: DBAPIError) -> Exception:
    """The wallet's own error for a database error, or the error itself when it is a bug."""
    original = exc.orig
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate in _PG_RETRYABLE:
        return ConcurrencyConflict(f"a concurrent change got there first ({sqlstate})")
    if sqlstate == "23514":
        return LedgerInvariantBroken(f"a database check refused the change: {original}")
    message = str(original).lower()
    if "database is locked" in message or "database is busy" in message:
        return ConcurrencyConflict("the database stayed locked by another writer")
    if "unique constraint failed" in message:
        return ConcurrencyConflict(f"a concurrent change got there first ({original})")
    if "check constraint failed" in message:
        return LedgerInvariantBroken(f"a database check refused the change: {original}")
    return exc


class SqlUnitOfWork:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = is_sqlite(engine)
        self._write = True
        self._conn: Connection | None = None

    def read_only(self) -> Self:
        self._write = False
        return self

    def __enter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError("this unit of work is already open")
        try:
            conn = self._engine.connect()
            if self._sqlite:
                conn.execution_options(**{BEGIN_OPTION: "IMMEDIATE" if self._write else "DEFERRED"})
            conn.begin()
        except DBAPIError as exc:
            self._write = True
            raise translate(exc) from exc
        self._conn = conn
        self.instance = SqlInstanceRepository(conn)
        self.users = SqlUserRepository(conn)
        self.ledger = SqlLedgerRepository(conn)
        self.transfers = SqlTransferRepository(conn)
        self.idempotency = SqlIdempotencyRepository(conn)
        self.outbox = SqlOutbox(conn)
        self.sessions = SqlSessionRepository(conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn, self._write = self._conn, None, True
        if conn is None:
            return
        try:
            if conn.in_transaction():
                conn.rollback()
        finally:
            conn.close()
        if isinstance(exc, DBAPIError):
            translated = translate(exc)
            if translated is not exc:
                raise translated from exc

    def commit(self) -> None:
        if self._conn is None:
            raise RuntimeError("commit outside a unit of work")
        if not self._write:
            raise RuntimeError("a read-only unit of work cannot commit")
        try:
            self._conn.commit()
        except DBAPIError as exc:
            raise translate(exc) from exc

    def rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction():
            self._conn.rollback()
