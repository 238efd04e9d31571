"""The SQL unit of work: one pooled driver connection, one transaction, the repositories on it.

Driver errors leave it translated (`core.db.errors`): races as `ConcurrencyConflict`, which the
service facade retries as a whole unit of work; outages as `StorageUnavailable`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from mwallet.core.db.errors import translate
from mwallet.core.db.ledger_repository import AccountIds
from mwallet.core.db.transaction import SqlTransaction

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
    """Makes units of work on one engine, sharing what never changes between them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.account_ids = AccountIds()

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.account_ids)


R = TypeVar("R")


class SqlUnitOfWork:
    """Repositories are made on first use in each transaction, and their modules imported on
    first use in the process: a command that only reads a balance never loads the code (and the
    domain types) of payments, statistics or notifications."""

    def __init__(self, engine: Engine, account_ids: AccountIds | None = None) -> None:
        self._engine = engine
        self._account_ids = account_ids if account_ids is not None else AccountIds()
        self._write = True
        self._sql: SqlTransaction | None = None
        self._pooled: PoolProxiedConnection | None = None
        self._writing = False
        self._committed = False
        self._made: dict[str, Any] = {}
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
            pooled = self._engine.raw_connection()
            sql = SqlTransaction(pooled.driver_connection, self._engine.dialect, write=write)
        except (DBAPIError, self._driver_error) as exc:
            if pooled is not None:
                pooled.close()
            raise translate(exc) from exc
        self._sql, self._pooled, self._writing = sql, pooled, write
        self._made = {}
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        sql, self._sql = self._sql, None
        self._made = {}
        pooled, self._pooled = self._pooled, None
        if sql is None or pooled is None:
            return
        committed, self._committed = self._committed, False
        healthy = False
        try:
            sql.rollback()  # a no-op after commit
            sql.close()
            healthy = True
        except self._driver_error:
            # After a commit the money has moved: a failed clean-up must not be reported as a
            # failed request (the caller might send it again). Otherwise the first error wins.
            if exc is None and not committed:
                raise
        finally:
            if not healthy:
                pooled.invalidate()  # a connection that cannot roll back is not reused
            pooled.close()  # back to the pool
        if isinstance(exc, (DBAPIError, self._driver_error)):
            translated = translate(exc)
            if translated is not exc:
                raise translated from exc

    # The repositories: each made on first use in a transaction (see `_made`).
    @property
    def instance(self) -> InstanceRepository:
        from mwallet.core.db.repositories import SqlInstanceRepository

        return self._repository("instance", SqlInstanceRepository)

    @property
    def users(self) -> UserRepository:
        from mwallet.core.db.repositories import SqlUserRepository

        return self._repository("users", SqlUserRepository)

    @property
    def ledger(self) -> LedgerRepository:
        from mwallet.core.db.ledger_repository import SqlLedgerRepository

        return self._repository("ledger", lambda sql: SqlLedgerRepository(sql, self._account_ids))

    @property
    def transfers(self) -> TransferRepository:
        from mwallet.core.db.repositories import SqlTransferRepository

        return self._repository("transfers", SqlTransferRepository)

    @property
    def idempotency(self) -> IdempotencyRepository:
        from mwallet.core.db.repositories import SqlIdempotencyRepository

        return self._repository("idempotency", SqlIdempotencyRepository)

    @property
    def outbox(self) -> Outbox:
        from mwallet.core.db.outbox_repository import SqlOutbox

        return self._repository("outbox", SqlOutbox)

    @property
    def notifications(self) -> NotificationRepository:
        from mwallet.core.db.notification_repositories import SqlNotificationRepository

        return self._repository("notifications", SqlNotificationRepository)

    @property
    def device_grants(self) -> DeviceGrantRepository:
        from mwallet.core.db.device_grant_repository import SqlDeviceGrantRepository

        return self._repository("device_grants", SqlDeviceGrantRepository)

    @property
    def devices(self) -> DeviceRepository:
        from mwallet.core.db.auth_repositories import SqlDeviceRepository

        return self._repository("devices", SqlDeviceRepository)

    @property
    def payments(self) -> PaymentRepository:
        from mwallet.core.db.payment_repositories import SqlPaymentRepository

        return self._repository("payments", SqlPaymentRepository)

    @property
    def tariffs(self) -> TariffRepository:
        from mwallet.core.db.tariff_repositories import SqlTariffRepository

        return self._repository("tariffs", SqlTariffRepository)

    @property
    def tokens(self) -> TokenRepository:
        from mwallet.core.db.auth_repositories import SqlTokenRepository

        return self._repository("tokens", SqlTokenRepository)

    @property
    def signing_keys(self) -> SigningKeyRepository:
        from mwallet.core.db.auth_repositories import SqlSigningKeyRepository

        return self._repository("signing_keys", SqlSigningKeyRepository)

    @property
    def two_factor(self) -> TwoFactorRepository:
        from mwallet.core.db.auth_repositories import SqlTwoFactorRepository

        return self._repository("two_factor", SqlTwoFactorRepository)

    @property
    def clients(self) -> ClientRepository:
        from mwallet.core.db.auth_repositories import SqlClientRepository

        return self._repository("clients", SqlClientRepository)

    @property
    def instance_secrets(self) -> InstanceSecrets:
        from mwallet.core.db.cash_repositories import SqlInstanceSecrets

        return self._repository("instance_secrets", SqlInstanceSecrets)

    @property
    def withdrawals(self) -> WithdrawalRepository:
        from mwallet.core.db.cash_repositories import SqlWithdrawalRepository

        return self._repository("withdrawals", SqlWithdrawalRepository)

    @property
    def terminals(self) -> TerminalRepository:
        from mwallet.core.db.cash_repositories import SqlTerminalRepository

        return self._repository("terminals", SqlTerminalRepository)

    @property
    def audit(self) -> AuditLog:
        from mwallet.core.db.security_repositories import SqlAuditLog

        return self._repository("audit", SqlAuditLog)

    @property
    def logins(self) -> LoginThrottles:
        from mwallet.core.db.security_repositories import SqlLoginThrottles

        return self._repository("logins", SqlLoginThrottles)

    @property
    def movements(self) -> MovementRepository:
        from mwallet.core.db.movement_repository import SqlMovementRepository

        return self._repository("movements", SqlMovementRepository)

    @property
    def stats(self) -> StatsRepository:
        from mwallet.core.db.stats_repository import SqlStatsRepository

        return self._repository("stats", SqlStatsRepository)

    def _repository(self, name: str, make: Callable[[SqlTransaction], R]) -> R:
        """This transaction's repository `name`, made now if it is the first use."""
        found = self._made.get(name)
        if found is None:
            if self._sql is None:
                raise RuntimeError(f"the {name} repository is used outside its unit of work")
            found = self._made[name] = make(self._sql)
        return cast(R, found)

    def savepoint(self) -> None:
        self._open_sql("savepoint").savepoint()

    def rollback_to_savepoint(self) -> None:
        try:
            self._open_sql("rollback").rollback_to_savepoint()
        except self._driver_error as exc:
            raise translate(exc) from exc
        self._made = {}

    def _open_sql(self, what: str) -> SqlTransaction:
        if self._sql is None:
            raise RuntimeError(f"{what} outside a unit of work")
        return self._sql

    def commit(self) -> None:
        if self._sql is None:
            raise RuntimeError("commit outside a unit of work")
        if not self._writing:
            raise RuntimeError("a read-only unit of work cannot commit")
        try:
            self._sql.commit()
        except self._driver_error as exc:
            raise translate(exc) from exc
        self._committed = True
