"""The SQL unit of work: one pooled driver connection, one transaction, the repositories on it.

Driver errors leave it translated (`core.db.errors`): races as `ConcurrencyConflict`, which the
service facade retries as a whole unit of work; outages as `StorageUnavailable`.
"""

from __future__ import annotations

import importlib
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, overload

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection, QueuePool

from mwallet.core.db.errors import translate
from mwallet.core.db.ledger_repository import AccountIds
from mwallet.core.db.transaction import SqlTransaction, for_the_pool

if TYPE_CHECKING:
    from mwallet.core.services.unit_of_work import (
        AuditLog,
        ClientRepository,
        DeviceGrantRepository,
        DeviceRepository,
        IdempotencyRepository,
        InstanceRepository,
        InstanceSecrets,
        LedgerRepository,
        LoginThrottles,
        MovementRepository,
        NotificationRepository,
        Outbox,
        PaymentRepository,
        SigningKeyRepository,
        StatsRepository,
        TariffRepository,
        TerminalRepository,
        TokenRepository,
        TransferRepository,
        TwoFactorRepository,
        UserRepository,
        WithdrawalRepository,
    )


class SqlUnitOfWorkFactory:
    """Makes units of work on one engine, sharing what never changes between them, and the
    connections they give back (`IdleConnections`). `close` it before disposing of the engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.account_ids = AccountIds()
        self.connections = IdleConnections(engine)

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.account_ids, self.connections)

    def close(self) -> None:
        self.connections.close()


class IdleConnections:
    """The pooled connections a factory's units of work have given back, still checked out of
    the engine's pool, for its next unit of work to take (the last given back first).

    Checking a connection out of SQLAlchemy's pool and in again costs ~50k instructions of
    Python (its queue, condition and locks, a connection fairy and its weak reference): ~4% of a
    SQLite transfer, which opens one unit of work. Taken from here it is a list's pop under a lock.

    A connection is kept only while the pool has opened none beyond its size. Once it has (it is
    in overflow), a thread may be waiting on it: connections go back to the pool as before, which
    wakes that thread or closes an overflow connection, until the pool is within its size again.
    No thread waits on a pool within its size as long as it may overflow, which `make_engine`'s
    pools always may; only a `QueuePool`'s are kept. And only healthy ones: the unit of work
    invalidates a connection that failed to roll back and hands it to the pool. Like the pool's,
    a kept connection is not pinged before it is used again.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._idle: list[PoolProxiedConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    def take(self) -> PoolProxiedConnection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._engine.raw_connection()

    def give_back(self, pooled: PoolProxiedConnection) -> None:
        pool = self._engine.pool  # read each time: `dispose` replaces it
        if isinstance(pool, QueuePool) and pool.overflow() <= 0:
            with self._lock:
                if not self._closed:
                    self._idle.append(pooled)
                    return
        to_the_pool(self._engine, pooled)

    def close(self) -> None:
        """Give every kept connection back to the pool (so disposing of it closes them); from
        now on none is kept."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for pooled in idle:
            to_the_pool(self._engine, pooled)

    def __del__(self) -> None:
        # A factory dropped without `close`: its kept connections would otherwise go back to the
        # pool as the garbage collector finds them, still in autocommit mode (`for_the_pool`),
        # and SQLAlchemy's next user of one would commit each statement on its own.
        if getattr(self, "_idle", None):
            self.close()


def to_the_pool(engine: Engine, pooled: PoolProxiedConnection) -> None:
    """Give a connection back to the engine's pool as its other users expect it (`for_the_pool`);
    one that cannot be made so is dropped."""
    try:
        for_the_pool(pooled.driver_connection, engine.dialect)
    except engine.dialect.loaded_dbapi.Error:
        pooled.invalidate()
    pooled.close()


R = TypeVar("R")


class _Repository(Generic[R]):
    """One repository of a `SqlUnitOfWork`, on its open transaction.

    Its first use in a transaction makes it (importing its module on the first use in the
    process); it is then kept in the unit of work's own `__dict__`, where every later use in that
    transaction finds it as a plain attribute, with no call at all (a transfer uses its
    repositories eight times), until the transaction ends and the unit of work forgets it.
    """

    def __init__(self, module: str, name: str, *, shares_account_ids: bool = False) -> None:
        self._module = module
        self._name = name
        self._shares_account_ids = shares_account_ids  # the ledger: ids known to the factory
        self._made_by: Any = None  # the class, once imported
        self._attribute = ""

    def __set_name__(self, owner: type, attribute: str) -> None:
        self._attribute = attribute

    @overload
    def __get__(self, uow: None, owner: type) -> Self: ...

    @overload
    def __get__(self, uow: SqlUnitOfWork, owner: type | None = None) -> R: ...

    def __get__(self, uow: SqlUnitOfWork | None, owner: type | None = None) -> R | Self:
        if uow is None:  # asked of the class (documentation, introspection): the descriptor
            return self
        sql = uow._sql
        if sql is None:
            raise RuntimeError(f"the {self._attribute} repository is used outside its unit of work")
        if self._made_by is None:
            self._made_by = getattr(importlib.import_module(self._module), self._name)
        made: R = (
            self._made_by(sql, uow._account_ids) if self._shares_account_ids else self._made_by(sql)
        )
        uow.__dict__[self._attribute] = made  # found there, not here, until `_forget_repositories`
        uow._made.append(self._attribute)
        return made


class SqlUnitOfWork:
    """Repositories are made on first use in each transaction, and their modules imported on
    first use in the process: a command that only reads a balance never loads the code (and the
    domain types) of payments, statistics or notifications."""

    def __init__(
        self,
        engine: Engine,
        account_ids: AccountIds | None = None,
        connections: IdleConnections | None = None,
    ) -> None:
        self._engine = engine
        self._connections = connections
        self._account_ids = account_ids if account_ids is not None else AccountIds()
        self._write = True
        self._sql: SqlTransaction | None = None
        self._pooled: PoolProxiedConnection | None = None
        self._writing = False
        self._committed = False
        self._made: list[str] = []  # the repositories made in this transaction (`_Repository`)
        # The driver's own base error: statements raise it unwrapped.
        self._driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error

    def read_only(self) -> Self:
        self._write = False
        return self

    def __enter__(self) -> Self:
        if self._sql is not None:
            raise RuntimeError("this unit of work is already open")
        write, self._write = self._write, True
        pooled = None
        try:
            pooled = (
                self._engine.raw_connection()
                if self._connections is None
                else self._connections.take()
            )
            sql = SqlTransaction(
                pooled.driver_connection, self._engine.dialect, write=write, kept=pooled.info
            )
        except (DBAPIError, self._driver_error) as exc:
            if pooled is not None:
                to_the_pool(self._engine, pooled)
            raise translate(exc) from exc
        self._sql, self._pooled, self._writing = sql, pooled, write
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        sql, self._sql = self._sql, None
        self._forget_repositories()
        pooled, self._pooled = self._pooled, None
        if sql is None or pooled is None:
            return
        committed, self._committed = self._committed, False
        healthy = False
        try:
            sql.rollback()  # a no-op after commit
            sql.close()
            if self._connections is None:
                for_the_pool(pooled.driver_connection, self._engine.dialect)
            healthy = True
        except self._driver_error:
            # After a commit the money has moved: a failed clean-up must not be reported as a
            # failed request (the caller might send it again). Otherwise the first error wins.
            if exc is None and not committed:
                raise
        finally:
            if not healthy:
                pooled.invalidate()  # a connection that cannot roll back is not reused
                pooled.close()
            elif self._connections is None:
                pooled.close()  # back to the pool
            else:
                self._connections.give_back(pooled)
        if isinstance(exc, (DBAPIError, self._driver_error)):
            translated = translate(exc)
            if translated is not exc:
                raise translated from exc

    # The repositories: each made on first use in a transaction (see `_Repository`).
    instance: _Repository[InstanceRepository] = _Repository(
        "mwallet.core.db.repositories", "SqlInstanceRepository"
    )
    users: _Repository[UserRepository] = _Repository(
        "mwallet.core.db.repositories", "SqlUserRepository"
    )
    ledger: _Repository[LedgerRepository] = _Repository(
        "mwallet.core.db.ledger_repository", "SqlLedgerRepository", shares_account_ids=True
    )
    transfers: _Repository[TransferRepository] = _Repository(
        "mwallet.core.db.repositories", "SqlTransferRepository"
    )
    idempotency: _Repository[IdempotencyRepository] = _Repository(
        "mwallet.core.db.repositories", "SqlIdempotencyRepository"
    )
    outbox: _Repository[Outbox] = _Repository("mwallet.core.db.outbox_repository", "SqlOutbox")
    notifications: _Repository[NotificationRepository] = _Repository(
        "mwallet.core.db.notification_repositories", "SqlNotificationRepository"
    )
    device_grants: _Repository[DeviceGrantRepository] = _Repository(
        "mwallet.core.db.device_grant_repository", "SqlDeviceGrantRepository"
    )
    devices: _Repository[DeviceRepository] = _Repository(
        "mwallet.core.db.auth_repositories", "SqlDeviceRepository"
    )
    payments: _Repository[PaymentRepository] = _Repository(
        "mwallet.core.db.payment_repositories", "SqlPaymentRepository"
    )
    tariffs: _Repository[TariffRepository] = _Repository(
        "mwallet.core.db.tariff_repositories", "SqlTariffRepository"
    )
    tokens: _Repository[TokenRepository] = _Repository(
        "mwallet.core.db.auth_repositories", "SqlTokenRepository"
    )
    signing_keys: _Repository[SigningKeyRepository] = _Repository(
        "mwallet.core.db.auth_repositories", "SqlSigningKeyRepository"
    )
    two_factor: _Repository[TwoFactorRepository] = _Repository(
        "mwallet.core.db.auth_repositories", "SqlTwoFactorRepository"
    )
    clients: _Repository[ClientRepository] = _Repository(
        "mwallet.core.db.auth_repositories", "SqlClientRepository"
    )
    instance_secrets: _Repository[InstanceSecrets] = _Repository(
        "mwallet.core.db.cash_repositories", "SqlInstanceSecrets"
    )
    withdrawals: _Repository[WithdrawalRepository] = _Repository(
        "mwallet.core.db.cash_repositories", "SqlWithdrawalRepository"
    )
    terminals: _Repository[TerminalRepository] = _Repository(
        "mwallet.core.db.cash_repositories", "SqlTerminalRepository"
    )
    audit: _Repository[AuditLog] = _Repository(
        "mwallet.core.db.security_repositories", "SqlAuditLog"
    )
    logins: _Repository[LoginThrottles] = _Repository(
        "mwallet.core.db.security_repositories", "SqlLoginThrottles"
    )
    movements: _Repository[MovementRepository] = _Repository(
        "mwallet.core.db.movement_repository", "SqlMovementRepository"
    )
    stats: _Repository[StatsRepository] = _Repository(
        "mwallet.core.db.stats_repository", "SqlStatsRepository"
    )

    def _forget_repositories(self) -> None:
        """The transaction ended: its repositories must not be found any more."""
        for attribute in self._made:
            self.__dict__.pop(attribute, None)
        self._made.clear()

    def savepoint(self) -> None:
        self._open_sql("savepoint").savepoint()

    def rollback_to_savepoint(self) -> None:
        try:
            self._open_sql("rollback").rollback_to_savepoint()
        except self._driver_error as exc:
            raise translate(exc) from exc
        self._forget_repositories()  # nothing they remember of the undone part may be used

    def _open_sql(self, what: str) -> SqlTransaction:
        if self._sql is None:
            raise RuntimeError(f"{what} outside a unit of work")
        return self._sql

    def commit(self) -> None:
        sql = self._open_sql("commit")
        if not self._writing:
            raise RuntimeError("a read-only unit of work cannot commit")
        try:
            sql.commit()
        except self._driver_error as exc:
            raise translate(exc) from exc
        self._committed = True
