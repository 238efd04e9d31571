"""The SQL unit of work: one pooled driver connection, one transaction, the repositories on it.

Driver errors leave it translated (`core.db.errors`): races as `ConcurrencyConflict`, which the
service facade retries as a whole unit of work; outages as `StorageUnavailable`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from mwallet.core.db.auth_repositories import (
    SqlClientRepository,
    SqlDeviceRepository,
    SqlSigningKeyRepository,
    SqlTokenRepository,
    SqlTwoFactorRepository,
)
from mwallet.core.db.cash_repositories import (
    SqlInstanceSecrets,
    SqlTerminalRepository,
    SqlWithdrawalRepository,
)
from mwallet.core.db.device_grant_repository import SqlDeviceGrantRepository
from mwallet.core.db.errors import translate
from mwallet.core.db.ledger_repository import AccountIds, SqlLedgerRepository
from mwallet.core.db.movement_repository import SqlMovementRepository
from mwallet.core.db.notification_repositories import SqlNotificationRepository
from mwallet.core.db.payment_repositories import SqlPaymentRepository
from mwallet.core.db.repositories import (
    SqlIdempotencyRepository,
    SqlInstanceRepository,
    SqlOutbox,
    SqlTransferRepository,
    SqlUserRepository,
)
from mwallet.core.db.security_repositories import SqlAuditLog, SqlLoginThrottles
from mwallet.core.db.stats_repository import SqlStatsRepository
from mwallet.core.db.tariff_repositories import SqlTariffRepository
from mwallet.core.db.transaction import SqlTransaction
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


class SqlUnitOfWork:
    instance: InstanceRepository
    users: UserRepository
    ledger: LedgerRepository
    transfers: TransferRepository
    idempotency: IdempotencyRepository
    outbox: Outbox
    notifications: NotificationRepository
    devices: DeviceRepository
    device_grants: DeviceGrantRepository
    payments: PaymentRepository
    tariffs: TariffRepository
    tokens: TokenRepository
    signing_keys: SigningKeyRepository
    two_factor: TwoFactorRepository
    clients: ClientRepository
    instance_secrets: InstanceSecrets
    withdrawals: WithdrawalRepository
    terminals: TerminalRepository
    audit: AuditLog
    logins: LoginThrottles
    movements: MovementRepository
    stats: StatsRepository

    def __init__(self, engine: Engine, account_ids: AccountIds | None = None) -> None:
        self._engine = engine
        self._account_ids = account_ids if account_ids is not None else AccountIds()
        self._write = True
        self._sql: SqlTransaction | None = None
        self._pooled: PoolProxiedConnection | None = None
        self._writing = False
        self._committed = False
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
        self.instance = SqlInstanceRepository(sql)
        self.users = SqlUserRepository(sql)
        self.ledger = SqlLedgerRepository(sql, self._account_ids)
        self.transfers = SqlTransferRepository(sql)
        self.idempotency = SqlIdempotencyRepository(sql)
        self.outbox = SqlOutbox(sql)
        self.notifications = SqlNotificationRepository(sql)
        self.devices = SqlDeviceRepository(sql)
        self.device_grants = SqlDeviceGrantRepository(sql)
        self.payments = SqlPaymentRepository(sql)
        self.tariffs = SqlTariffRepository(sql)
        self.tokens = SqlTokenRepository(sql)
        self.signing_keys = SqlSigningKeyRepository(sql)
        self.two_factor = SqlTwoFactorRepository(sql)
        self.clients = SqlClientRepository(sql)
        self.instance_secrets = SqlInstanceSecrets(sql)
        self.withdrawals = SqlWithdrawalRepository(sql)
        self.terminals = SqlTerminalRepository(sql)
        self.audit = SqlAuditLog(sql)
        self.logins = SqlLoginThrottles(sql)
        self.movements = SqlMovementRepository(sql)
        self.stats = SqlStatsRepository(sql)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        sql, self._sql = self._sql, None
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
