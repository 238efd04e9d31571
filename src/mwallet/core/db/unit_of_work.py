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
from mwallet.core.db.prepared import SqlSession
from mwallet.core.db.repositories import (
    SqlIdempotencyRepository,
    SqlInstanceRepository,
    SqlOutbox,
    SqlSessionRepository,
    SqlTransferRepository,
    SqlUserRepository,
)
from mwallet.core.errors import ConcurrencyConflict, LedgerInvariantBroken
from mwallet.core.services.unit_of_work import (
    IdempotencyRepository,
    InstanceRepository,
    LedgerRepository,
    Outbox,
    SessionRepository,
    TransferRepository,
    UserRepository,
)

# PostgreSQL SQLSTATEs that a retry of the whole transaction can cure.
_PG_RETRYABLE = {"40001", "40P01", "23505", "55P03"}


def translate(exc: Exception) -> Exception:
    """The wallet's own error for a database error, or the error itself when it is a bug.

    `exc` is SQLAlchemy's wrapper or, from prepared statements, the driver's own error.
    """
    original = getattr(exc, "orig", None) or exc
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
    instance: InstanceRepository
    users: UserRepository
    ledger: LedgerRepository
    transfers: TransferRepository
    idempotency: IdempotencyRepository
    outbox: Outbox
    sessions: SessionRepository

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = is_sqlite(engine)
        self._write = True
        self._conn: Connection | None = None
        self._sql: SqlSession | None = None
        # The driver's own base error: prepared statements raise it unwrapped.
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error

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
            if not self._write and not self._sqlite:
                # One consistent snapshot for every query of a read (verify's sums must agree
                # with each other while transfers commit); never a serialization failure.
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            sql = SqlSession(conn)
        except (DBAPIError, self._driver_error) as exc:
            self._write = True
            raise translate(exc) from exc
        self._conn, self._sql = conn, sql
        self.instance = SqlInstanceRepository(sql)
        self.users = SqlUserRepository(sql)
        self.ledger = SqlLedgerRepository(sql)
        self.transfers = SqlTransferRepository(sql)
        self.idempotency = SqlIdempotencyRepository(sql)
        self.outbox = SqlOutbox(sql)
        self.sessions = SqlSessionRepository(sql)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, sql = self._conn, self._sql
        self._conn, self._sql, self._write = None, None, True
        if conn is None or sql is None:
            return
        try:
            sql.discard()
            if conn.in_transaction():
                conn.rollback()
        finally:
            conn.close()
        if isinstance(exc, (DBAPIError, self._driver_error)):
            translated = translate(exc)
            if translated is not exc:
                raise translated from exc

    def commit(self) -> None:
        if self._conn is None or self._sql is None:
            raise RuntimeError("commit outside a unit of work")
        if not self._write:
            raise RuntimeError("a read-only unit of work cannot commit")
        try:
            self._sql.flush(commit=True)
            self._conn.commit()
        except (DBAPIError, self._driver_error) as exc:
            raise translate(exc) from exc

    def rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction():
            self._conn.rollback()
