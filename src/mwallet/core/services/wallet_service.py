"""The one service interface every door calls: use cases bound to their dependencies.

Doors (CLI, TUI, server) hold a `WalletService` and never build units of work themselves. Writes
that clash with a concurrent writer are retried here, as whole units of work, a bounded number of
times with a short random back-off.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any, TypeVar

from mwallet.core.domain.money import Money
from mwallet.core.errors import ConcurrencyConflict
from mwallet.core.services import tokens, wallets
from mwallet.core.services.public_keys import StoredPublicKeys
from mwallet.core.services.sandbox_provider import SandboxProvider

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from contextlib import AbstractContextManager
    from datetime import datetime, timedelta

    from mwallet.core.clock import Clock
    from mwallet.core.crypto import DataKeyStore, SecretBox
    from mwallet.core.domain.admin_reports import (
        ActiveUsers,
        FeesReport,
        HoldsReport,
        TerminalCash,
        TrialBalance,
        VolumeReport,
    )
    from mwallet.core.domain.audit import AuditAnchor, AuditRecord, ChainReport
    from mwallet.core.domain.clients import ClientKind, OAuthClient
    from mwallet.core.domain.device_grants import DeviceGrant
    from mwallet.core.domain.events import DomainEvent
    from mwallet.core.domain.ledger import AccountStatus, LedgerReport
    from mwallet.core.domain.movements import MovementFilter
    from mwallet.core.domain.notifications import Channel as NotifyChannel
    from mwallet.core.domain.notifications import Delivery, Preferences
    from mwallet.core.domain.payments import Biller, Payment, ProviderAnswer
    from mwallet.core.domain.roles import Role
    from mwallet.core.domain.sessions import TokenPair
    from mwallet.core.domain.statistics import Period, UsageStats
    from mwallet.core.domain.tariffs import (
        Allowance,
        Limit,
        LimitFamily,
        LimitPeriod,
        Movement,
        Quote,
        Tariff,
        Tier,
    )
    from mwallet.core.domain.terminals import Terminal
    from mwallet.core.domain.transfers import TopUp, Transfer
    from mwallet.core.domain.users import Principal, User
    from mwallet.core.domain.withdrawals import Channel, Withdrawal, WithdrawalPolicy
    from mwallet.core.security import PasswordHasher
    from mwallet.core.services import (
        clients,
        device_grants,
        keys,
        notifications,
        payments,
        terminals,
        two_factor,
        withdrawals,
    )
    from mwallet.core.services.accounts import LoginResult
    from mwallet.core.services.history import MovementPage, Statement
    from mwallet.core.services.public_keys import PublicKeys
    from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork
    from mwallet.core.services.wallets import Balance
    from mwallet.core.withdrawal_qr import QrClaims

T = TypeVar("T")
SETTINGS_TTL = 5.0  # seconds a process trusts the settings it read

MAX_ATTEMPTS = 8
_BACKOFF_SECONDS = 0.002


def retrying(attempt: Callable[[], T], *, attempts: int = MAX_ATTEMPTS) -> T:
    """Run a unit of work again while it loses races to concurrent writers."""
    for number in range(1, attempts + 1):
        try:
            return attempt()
        except ConcurrencyConflict:
            if number == attempts:
                raise
            # Jittered exponential back-off keeps colliding writers from colliding again.
            time.sleep(random.uniform(0, _BACKOFF_SECONDS * 2**number))  # noqa: S311
    raise AssertionError("unreachable")  # pragma: no cover


class WalletService:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        clock: Clock,
        hasher: PasswordHasher,
        box: SecretBox,
        providers: Mapping[str, payments.Provider] | None = None,
        *,
        public_keys: PublicKeys | None = None,
    ) -> None:
        """`providers`: payment providers by name; the built-in `sandbox` is always there.
        `public_keys`: where access tokens' keys are read (default: this database's signing keys;
        a process without the auth service passes the auth service's JWKS, `mwallet.jwks`)."""
        self._uow = uow_factory
        self.public_keys: PublicKeys = public_keys or StoredPublicKeys(uow_factory)
        self._settings: tuple[InstanceSettings, float] | None = None
        self.clock = clock
        self._hasher = hasher
        self._box = box
        self.providers: dict[str, payments.Provider] = {"sandbox": SandboxProvider()}
        self.providers.update(providers or {})

    def init(
        self, *, currency: str | None = None, region: str | None = None
    ) -> tuple[InstanceSettings, bool]:
        from mwallet.core.services import accounts

        result = retrying(
            lambda: accounts.init_instance(
                self._uow(), self.clock, currency=currency, region=region
            )
        )
        self._forget_settings()
        return result

    def ready(self) -> InstanceSettings:
        """Read the database now, and check that access tokens can be verified (a readiness
        probe): the instance's settings (a remote client reads its currency and phone region
        there). A process verifying tokens with the auth service's published keys is not ready
        until it holds them (KeysUnavailable)."""
        from mwallet.core.services import accounts

        found = accounts.find_settings(self._uow())
        if found is None:
            from mwallet.core.errors import ConfigurationError

            raise ConfigurationError("the database is not initialised: run mwallet init")
        self.public_keys.check_ready()
        return found

    @property
    def settings(self) -> InstanceSettings:
        """The instance's settings; a database used before `init` gets the defaults (USD).

        Read again after SETTINGS_TTL, so a change another process made (the step-up amount, a
        region) reaches a long-running server within seconds; this process's own changes at once.
        """
        loaded = self._settings
        now = time.monotonic()
        if loaded is None or now - loaded[1] > SETTINGS_TTL:
            from mwallet.core.services import accounts  # only when read: asked on every transfer

            found = accounts.find_settings(self._uow())
            if found is None:
                found, _ = self.init()
            self._settings = loaded = (found, now)
        return loaded[0]

    def _forget_settings(self) -> None:
        self._settings = None

    @property
    def currency(self) -> str:
        """The instance's currency (ISO 4217), as its settings say."""
        return self.settings.currency

    def parse_money(self, text: str, *, allow_zero: bool = False) -> Money:
        """An amount typed by a person, in the instance's currency."""
        return Money.parse(text, self.settings.currency, allow_zero=allow_zero)

    def register(
        self,
        *,
        phone: str,
        display_name: str,
        email: str | None,
        password: str,
        idempotency_key: str,
    ) -> User:
        from mwallet.core.services import accounts

        return retrying(
            lambda: accounts.register(
                self._uow(),
                self.clock,
                self._hasher,
                settings=self.settings,
                phone=phone,
                display_name=display_name,
                email=email,
                password=password,
                idempotency_key=idempotency_key,
            )
        )

    def login(
        self, *, phone: str, password: str, code: str | None = None, device: str | None = None
    ) -> LoginResult:
        # Not retried as a whole: a retry would count the attempt against the lock twice.
        from mwallet.core.services import accounts

        return accounts.login(
            self._uow(),
            self.clock,
            self._hasher,
            self._box,
            settings=self.settings,
            phone=phone,
            password=password,
            code=code,
            device=device,
        )

    def change_password(self, principal: Principal, *, current: str, new: str) -> None:
        # Not retried as a whole: a retry would count the attempt against the lock twice.
        from mwallet.core.services import accounts

        accounts.change_password(
            self._uow(), self.clock, self._hasher, principal=principal, current=current, new=new
        )

    def refresh(self, *, refresh_token: str) -> TokenPair:
        # Not retried: a retry after a commit that was lost in transit would look like reuse.
        return tokens.refresh(self._uow(), self.clock, self._box, refresh_token=refresh_token)

    def logout(self, *, refresh_token: str) -> bool:
        return retrying(lambda: tokens.logout(self._uow(), self.clock, refresh_token=refresh_token))

    def authenticate(self, *, access_token: str) -> Principal:
        return tokens.authenticate(
            self._uow(), self.clock, self.public_keys, access_token=access_token
        )

    # --- the device authorization grant (RFC 8628) -----------------------------------------------
    def device_authorization(
        self, *, interval: int | None = None
    ) -> device_grants.DeviceAuthorization:
        """`interval`: seconds between polls (device_grants.INTERVAL_SECONDS unless told)."""
        from mwallet.core.domain.device_grants import INTERVAL_SECONDS
        from mwallet.core.services import device_grants

        interval = INTERVAL_SECONDS if interval is None else interval
        return retrying(lambda: device_grants.start(self._uow(), self.clock, interval=interval))

    def device_token(self, *, device_code: str, device: str | None = None) -> TokenPair:
        """`device`: the client's device id, as `login` takes it."""
        from mwallet.core.services import device_grants

        return retrying(
            lambda: device_grants.poll(
                self._uow(), self.clock, self._box, device_code=device_code, device=device
            )
        )

    def decide_device(
        self, *, user_code: str, phone: str, password: str, code: str | None, approve: bool
    ) -> DeviceGrant:
        # Not retried as a whole: a retry would count the attempt against the lock twice.
        from mwallet.core.services import device_grants

        return device_grants.decide(
            self._uow(), self.clock, self._hasher, self._box, settings=self.settings,
            user_code=user_code, phone=phone, password=password, code=code, approve=approve,
        )  # fmt: skip

    def client_token(
        self, *, client_id: str, client_secret: str, scope: str | None = None
    ) -> TokenPair:
        from mwallet.core.services import clients

        return retrying(
            lambda: clients.client_credentials(
                self._uow(),
                self.clock,
                self._box,
                client_id=client_id,
                client_secret=client_secret,
                scope=scope,
            )
        )

    def jwks(self) -> dict[str, Any]:
        from mwallet.core.services import keys

        return keys.jwks(self._uow(), self.clock)

    # --- two-factor authentication ---------------------------------------------------------------
    def begin_two_factor(self, principal: Principal) -> two_factor.Enrollment:
        from mwallet.core.services import two_factor

        return two_factor.begin(self._uow(), self.clock, self._box, principal=principal)

    def confirm_two_factor(self, principal: Principal, *, code: str) -> list[str]:
        from mwallet.core.services import two_factor

        return two_factor.confirm(
            self._uow(), self.clock, self._box, principal=principal, code=code
        )

    def disable_two_factor(self, principal: Principal, *, code: str) -> None:
        from mwallet.core.services import two_factor

        two_factor.disable(self._uow(), self.clock, self._box, principal=principal, code=code)

    def two_factor_status(self, principal: Principal) -> two_factor.TwoFactorStatus:
        from mwallet.core.services import two_factor

        return two_factor.status(self._uow(), principal=principal)

    def step_up_amount(self) -> Money:
        from mwallet.core.services import step_up

        return step_up.threshold(self.settings)

    def balance(self, principal: Principal) -> Balance:
        return wallets.balance(self._uow(), self.clock, principal=principal)

    def topup(
        self, principal: Principal, *, amount: Money, source: str, idempotency_key: str
    ) -> TopUp:
        return retrying(
            lambda: wallets.topup(
                self._uow(),
                self.clock,
                principal=principal,
                amount=amount,
                source=source,
                idempotency_key=idempotency_key,
            )
        )

    def transfer(
        self,
        principal: Principal,
        *,
        to_phone: str,
        amount: Money,
        note: str | None,
        idempotency_key: str,
        code: str | None = None,
    ) -> Transfer:
        return retrying(
            lambda: wallets.transfer(
                self._uow(),
                self.clock,
                self._box,
                code=code,
                settings=self.settings,
                sender=principal,
                to_phone=to_phone,
                amount=amount,
                note=note,
                idempotency_key=idempotency_key,
            )
        )

    def movements(
        self,
        principal: Principal,
        *,
        phone: str | None = None,
        user_id: str | None = None,
        where: MovementFilter | None = None,
        cursor: str | None = None,
        limit: int = 20,
    ) -> MovementPage:
        """A page of a wallet's movements, newest first (`phone` or `user_id`: another person's,
        for admins and auditors)."""
        from mwallet.core.domain.movements import MovementFilter
        from mwallet.core.services import history

        return history.history(
            self._uow(), self.clock, principal=principal, settings=self.settings, phone=phone,
            user_id=user_id, where=where or MovementFilter(), cursor=cursor, limit=limit,
        )  # fmt: skip

    def statement(
        self,
        principal: Principal,
        *,
        phone: str | None = None,
        user_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        count: bool = False,
    ) -> AbstractContextManager[Statement]:
        """`with service.statement(...) as st:` — balances at once, lines streamed from one
        snapshot while the block reads `st.lines`."""
        from mwallet.core.services import history

        return history.statement(
            self._uow(), self.clock, principal=principal, settings=self.settings, phone=phone,
            user_id=user_id, start=start, end=end, count=count,
        )  # fmt: skip

    def verify_ledger(self, *, actor: Principal) -> LedgerReport:
        from mwallet.core.services import ledger

        return ledger.verify(self._uow(), self.clock, actor=actor)

    def set_wallet_status(
        self, *, actor: Principal, phone: str, status: AccountStatus
    ) -> AccountStatus:
        from mwallet.core.services import ledger

        return retrying(
            lambda: ledger.set_wallet_status(
                self._uow(),
                self.clock,
                actor=actor,
                settings=self.settings,
                phone=phone,
                status=status,
            )
        )

    def audit_log(
        self, *, actor: Principal, limit: int, since: datetime | None = None
    ) -> Sequence[AuditRecord]:
        from mwallet.core.services import audit

        return audit.newest(self._uow(), self.clock, actor=actor, limit=limit, since=since)

    def verify_audit_log(self, *, actor: Principal, anchor: AuditAnchor | None) -> ChainReport:
        from mwallet.core.services import audit

        return audit.verify(self._uow(), self.clock, actor=actor, anchor=anchor)

    def list_users(
        self, *, actor: Principal, limit: int, after_phone: str | None = None
    ) -> Sequence[User]:
        from mwallet.core.services import users

        return users.list_users(
            self._uow(), self.clock, actor=actor, settings=self.settings, limit=limit,
            after_phone=after_phone,
        )  # fmt: skip

    def show_user(self, *, actor: Principal, phone: str) -> User:
        from mwallet.core.services import users

        return users.show_user(
            self._uow(), self.clock, actor=actor, settings=self.settings, phone=phone
        )

    def set_role(self, *, actor: Principal, phone: str, role: Role) -> User:
        from mwallet.core.services import users

        return retrying(
            lambda: users.set_role(
                self._uow(),
                self.clock,
                actor=actor,
                settings=self.settings,
                phone=phone,
                role=role,
            )
        )

    def bootstrap_admin(self, *, phone: str) -> User:
        """The first admin; refused once there is one (see `mwallet init --admin-phone`)."""
        from mwallet.core.services import users

        return retrying(
            lambda: users.bootstrap_admin(
                self._uow(), self.clock, settings=self.settings, phone=phone
            )
        )

    # --- keys, clients and limits (admins) -------------------------------------------------------
    def rotate_signing_key(self, *, actor: Principal) -> keys.SigningKeyInfo:
        from mwallet.core.services import keys

        return retrying(
            lambda: keys.rotate_signing_key(self._uow(), self.clock, self._box, actor=actor)
        )

    def signing_keys(self, *, actor: Principal) -> list[keys.SigningKeyInfo]:
        from mwallet.core.services import keys

        return keys.signing_keys(self._uow(), self.clock, actor=actor)

    def rotate_data_key(self, *, actor: Principal, store: DataKeyStore) -> int:
        from mwallet.core.services import keys

        return keys.rotate_data_key(self._uow(), self.clock, self._box, actor=actor, store=store)

    def set_step_up(self, *, actor: Principal, amount: Money) -> Money:
        from mwallet.core.services import keys

        result = retrying(
            lambda: keys.set_step_up(
                self._uow(), self.clock, actor=actor, settings=self.settings, amount=amount
            )
        )
        self._forget_settings()
        return result

    def add_client(
        self, *, actor: Principal, kind: ClientKind, name: str, scopes: str | None = None
    ) -> clients.NewClient:
        from mwallet.core.services import clients

        return retrying(
            lambda: clients.add_client(
                self._uow(), self.clock, actor=actor, kind=kind, name=name, scopes=scopes
            )
        )

    def list_clients(self, *, actor: Principal, limit: int) -> Sequence[OAuthClient]:
        from mwallet.core.services import clients

        return clients.list_clients(self._uow(), self.clock, actor=actor, limit=limit)

    def disable_client(self, *, actor: Principal, client_id: str) -> None:
        from mwallet.core.services import clients

        retrying(
            lambda: clients.disable_client(
                self._uow(), self.clock, actor=actor, client_id=client_id
            )
        )

    # --- cash: withdrawals, terminals, cash-in ---------------------------------------------------
    # --- notifications ---------------------------------------------------------------------
    def relay_notifications(
        self, sink: notifications.Sink | None = None, *, batch: int | None = None
    ) -> int:
        """Move every waiting outbox event on: to `sink` (a broker), or by default straight into
        deliveries here (the embedded mode), `batch` at a time (notifications.RELAY_BATCH unless
        told). How many events moved."""
        from mwallet.core.services import notifications

        return notifications.relay_all(
            self._uow(),
            self.clock,
            sink or notifications.accept_all,
            batch=notifications.RELAY_BATCH if batch is None else batch,
        )

    def accept_notification(self, event: DomainEvent) -> int:
        return self.accept_notifications([event])

    def accept_notifications(self, events: Sequence[DomainEvent]) -> int:
        """Events taken from the broker become deliveries (a worker's side)."""
        from mwallet.core.services import notifications

        return retrying(lambda: notifications.accept_events(self._uow(), self.clock, events))

    def dispatch_notifications(
        self, senders: Mapping[NotifyChannel, notifications.Sender], *, batch: int = 100
    ) -> notifications.DispatchReport:
        from mwallet.core.services import notifications

        return notifications.dispatch(self._uow(), self.clock, senders, batch=batch)

    def inbox(
        self,
        principal: Principal,
        *,
        unread_only: bool = False,
        limit: int = 20,
        before: str | None = None,
    ) -> Sequence[Delivery]:
        from mwallet.core.services import notifications

        return notifications.inbox(
            self._uow(), self.clock, principal=principal, unread_only=unread_only, limit=limit,
            before=before,
        )  # fmt: skip

    def mark_read(self, principal: Principal, *, notification_id: str) -> Delivery:
        from mwallet.core.services import notifications

        return retrying(
            lambda: notifications.mark_read(
                self._uow(), self.clock, principal=principal, notification_id=notification_id
            )
        )

    def notification_preferences(self, principal: Principal) -> Preferences:
        from mwallet.core.services import notifications

        return notifications.preferences(self._uow(), self.clock, principal=principal)

    def set_notification_preferences(
        self,
        principal: Principal,
        *,
        language: str | None = None,
        email: bool | None = None,
        sms: bool | None = None,
        push: bool | None = None,
    ) -> Preferences:
        from mwallet.core.services import notifications

        return retrying(
            lambda: notifications.set_preferences(
                self._uow(), self.clock, principal=principal, language=language, email=email,
                sms=sms, push=push,
            )
        )  # fmt: skip

    def notification_stats(self, *, actor: Principal) -> notifications.NotifyStats:
        from mwallet.core.services import notifications

        return notifications.stats(self._uow(), self.clock, actor=actor)

    def dead_notifications(self, *, actor: Principal, limit: int = 100) -> Sequence[Delivery]:
        from mwallet.core.services import notifications

        return notifications.dead_letters(self._uow(), self.clock, actor=actor, limit=limit)

    def retry_notification(self, *, actor: Principal, notification_id: str) -> Delivery:
        from mwallet.core.services import notifications

        return retrying(
            lambda: notifications.retry_dead(
                self._uow(), self.clock, actor=actor, notification_id=notification_id
            )
        )

    # --- bill payments ---------------------------------------------------------------------
    def add_biller(
        self,
        *,
        actor: Principal,
        biller_id: str,
        name: str,
        category: str,
        min_amount: Money,
        max_amount: Money,
        provider: str = "sandbox",
        pattern: str = r"[0-9]{6,20}",
        check: str = "none",
    ) -> Biller:
        from mwallet.core.services import payments

        return retrying(
            lambda: payments.add_biller(
                self._uow(), self.clock, actor=actor, settings=self.settings,
                providers=self.providers, biller_id=biller_id, name=name, category=category,
                min_amount=min_amount, max_amount=max_amount, provider=provider,
                pattern=pattern, check=check,
            )
        )  # fmt: skip

    def set_biller_active(self, *, actor: Principal, biller_id: str, active: bool) -> None:
        from mwallet.core.services import payments

        retrying(
            lambda: payments.set_biller_active(
                self._uow(), self.clock, actor=actor, biller_id=biller_id, active=active
            )
        )

    def billers(self, principal: Principal) -> Sequence[Biller]:
        from mwallet.core.services import payments

        return payments.billers(self._uow(), self.clock, principal=principal)

    def pay_bill(
        self,
        principal: Principal,
        *,
        biller_id: str,
        reference: str,
        amount: Money,
        idempotency_key: str,
        code: str | None = None,
    ) -> Payment:
        # Not retried as a whole: the provider call sits between two units of work.
        from mwallet.core.services import payments

        return payments.pay_bill(
            self._uow(), self.clock, self._box, self.providers, settings=self.settings,
            principal=principal, biller_id=biller_id, reference=reference, amount=amount,
            idempotency_key=idempotency_key, code=code,
        )  # fmt: skip

    def pay_airtime(
        self,
        principal: Principal,
        *,
        phone: str | None,
        amount: Money,
        idempotency_key: str,
        code: str | None = None,
    ) -> Payment:
        from mwallet.core.services import payments

        return payments.pay_airtime(
            self._uow(), self.clock, self._box, self.providers, settings=self.settings,
            principal=principal, phone=phone, amount=amount, idempotency_key=idempotency_key,
            code=code,
        )  # fmt: skip

    def top_up_from(
        self,
        principal: Principal,
        *,
        source: str,
        reference: str,
        amount: Money,
        idempotency_key: str,
    ) -> Payment:
        """A top-up from a card or bank provider (the `sandbox` source is `topup`)."""
        from mwallet.core.services import payments

        return payments.top_up(
            self._uow(), self.clock, self._box, self.providers, settings=self.settings,
            principal=principal, source=source, reference=reference, amount=amount,
            idempotency_key=idempotency_key,
        )  # fmt: skip

    def list_payments(self, principal: Principal, *, limit: int = 20) -> Sequence[Payment]:
        from mwallet.core.services import payments

        return payments.of_user(self._uow(), self.clock, principal=principal, limit=limit)

    def payment(self, principal: Principal, *, payment_id: str) -> tuple[Payment, Biller]:
        from mwallet.core.services import payments

        return payments.show(self._uow(), self.clock, principal=principal, payment_id=payment_id)

    def reconcile_payments(self, *, actor: Principal) -> payments.Reconciliation:
        from mwallet.core.services import payments

        return payments.reconcile(self._uow(), self.clock, self.providers, actor=actor)

    def settle_payment(self, *, payment_id: str, answer: ProviderAnswer) -> Payment | None:
        """A provider's callback: record its answer for one payment (once)."""
        from mwallet.core.services import payments

        return retrying(
            lambda: payments.settle(self._uow(), self.clock, payment_id=payment_id, answer=answer)
        )

    def withdrawal_policy(self) -> WithdrawalPolicy:
        """The policy as stored now (not as this process first read the settings)."""
        from mwallet.core.services import withdrawals

        uow = self._uow()
        with uow.read_only():
            return withdrawals.current_policy(uow)

    def set_withdrawal_policy(
        self,
        *,
        actor: Principal,
        min_amount: Money | None = None,
        max_amount: Money | None = None,
        lifetime: timedelta | None = None,
    ) -> WithdrawalPolicy:
        from mwallet.core.services import withdrawals

        result = retrying(
            lambda: withdrawals.set_policy(
                self._uow(), self.clock, actor=actor, min_amount=min_amount,
                max_amount=max_amount, lifetime=lifetime,
            )
        )  # fmt: skip
        self._forget_settings()
        return result

    # --- tariffs and limits ---------------------------------------------------------------------

    def quote(self, principal: Principal, movement: Movement, amount: Money) -> Quote:
        """The fee of a movement and what is left of the user's limits (shown before confirming)."""
        from mwallet.core.services import tariffs

        return tariffs.quote(
            self._uow(), self.clock, principal=principal, movement=movement, amount=amount
        )

    def my_limits(
        self, principal: Principal
    ) -> tuple[Tier, dict[LimitFamily, tuple[Allowance, ...]]]:
        from mwallet.core.services import tariffs

        return tariffs.allowances(
            self._uow(), self.clock, principal=principal, currency=self.settings.currency
        )

    def tariffs(self, principal: Principal) -> dict[Movement, Tariff]:
        from mwallet.core.services import tariffs

        return tariffs.tariffs(self._uow(), self.clock, principal=principal)

    def limits(self, principal: Principal) -> Sequence[Limit]:
        from mwallet.core.services import tariffs

        return tariffs.limits(
            self._uow(), self.clock, principal=principal, currency=self.settings.currency
        )

    def set_tariff(
        self, *, actor: Principal, movement: Movement, tariff: Tariff | None
    ) -> Tariff | None:
        from mwallet.core.services import tariffs

        return retrying(
            lambda: tariffs.set_tariff(
                self._uow(), self.clock, actor=actor, movement=movement, tariff=tariff
            )
        )

    def set_limit(
        self,
        *,
        actor: Principal,
        family: LimitFamily,
        tier: Tier,
        daily: Money | None = None,
        monthly: Money | None = None,
        unlimited: frozenset[LimitPeriod] = frozenset(),
    ) -> Limit:
        from mwallet.core.services import tariffs

        return retrying(
            lambda: tariffs.set_limit(
                self._uow(), self.clock, actor=actor, family=family, tier=tier, daily=daily,
                monthly=monthly, unlimited=unlimited,
            )
        )  # fmt: skip

    def set_tier(self, *, actor: Principal, phone: str, tier: Tier) -> User:
        from mwallet.core.services import users

        return retrying(
            lambda: users.set_tier(
                self._uow(), self.clock, actor=actor, settings=self.settings, phone=phone, tier=tier
            )
        )

    def request_withdrawal(
        self,
        principal: Principal,
        *,
        amount: Money,
        channel: Channel,
        pin: str | None,
        idempotency_key: str,
        code: str | None = None,
    ) -> withdrawals.IssuedWithdrawal:
        from mwallet.core.services import withdrawals

        return retrying(
            lambda: withdrawals.request(
                self._uow(),
                self.clock,
                self._box,
                settings=self.settings,
                principal=principal,
                amount=amount,
                channel=channel,
                pin=pin,
                idempotency_key=idempotency_key,
                code=code,
            )
        )

    def cancel_withdrawal(self, principal: Principal, *, withdrawal_id: str) -> Withdrawal:
        from mwallet.core.services import withdrawals

        return retrying(
            lambda: withdrawals.cancel(
                self._uow(), self.clock, principal=principal, withdrawal_id=withdrawal_id
            )
        )

    def list_withdrawals(self, principal: Principal, *, limit: int = 20) -> Sequence[Withdrawal]:
        from mwallet.core.services import withdrawals

        return withdrawals.of_user(self._uow(), self.clock, principal=principal, limit=limit)

    def expire_withdrawals(self, *, actor: Principal) -> int:
        from mwallet.core.services import withdrawals

        return retrying(lambda: withdrawals.expire_all(self._uow(), self.clock, actor=actor))

    def redeem_withdrawal(
        self,
        terminal: Principal,
        *,
        pin: str,
        code: str | None = None,
        qr_payload: str | None = None,
    ) -> withdrawals.Redemption:
        # Not retried as a whole: a retry would count a wrong PIN or unknown code twice.
        from mwallet.core.services import withdrawals

        return withdrawals.redeem(
            self._uow(),
            self.clock,
            self._box,
            terminal=terminal,
            code=code,
            qr_payload=qr_payload,
            pin=pin,
        )

    def complete_withdrawal(self, terminal: Principal, *, withdrawal_id: str) -> Withdrawal:
        from mwallet.core.services import withdrawals

        return retrying(
            lambda: withdrawals.complete(
                self._uow(), self.clock, terminal=terminal, withdrawal_id=withdrawal_id
            )
        )

    def dispense_withdrawal(self, terminal: Principal, *, withdrawal_id: str) -> Withdrawal:
        from mwallet.core.services import withdrawals

        return retrying(
            lambda: withdrawals.dispense(
                self._uow(), self.clock, terminal=terminal, withdrawal_id=withdrawal_id
            )
        )

    def reverse_withdrawal(
        self, terminal: Principal, *, withdrawal_id: str, none_presented: bool = False
    ) -> Withdrawal:
        from mwallet.core.services import withdrawals

        return retrying(
            lambda: withdrawals.reverse(
                self._uow(),
                self.clock,
                terminal=terminal,
                withdrawal_id=withdrawal_id,
                none_presented=none_presented,
            )
        )

    def check_withdrawal_qr(self, payload: str) -> QrClaims:
        from mwallet.core.services import withdrawals

        return withdrawals.check_qr(self._uow(), self.clock, self._box, payload=payload)

    def add_atm(self, *, actor: Principal, name: str) -> terminals.NewTerminal:
        from mwallet.core.services import terminals

        return retrying(
            lambda: terminals.add_atm(
                self._uow(), self.clock, actor=actor, settings=self.settings, name=name
            )
        )

    def add_agent(
        self, *, actor: Principal, phone: str, name: str | None = None
    ) -> terminals.NewTerminal:
        from mwallet.core.services import terminals

        return retrying(
            lambda: terminals.add_agent(
                self._uow(),
                self.clock,
                actor=actor,
                settings=self.settings,
                phone=phone,
                name=name,
            )
        )

    def terminal(self, terminal_id: str) -> Terminal:
        from mwallet.core.services import terminals

        return terminals.find(self._uow(), terminal_id)

    def terminal_day(
        self, actor: Principal, *, terminal_id: str | None = None
    ) -> terminals.TerminalDay:
        from mwallet.core.services import terminals

        return terminals.day(
            self._uow(), self.clock, actor=actor, settings=self.settings, terminal_id=terminal_id
        )

    def reverse_leftover_withdrawals(self, terminal: Principal) -> Sequence[Withdrawal]:
        from mwallet.core.services import withdrawals

        return retrying(
            lambda: withdrawals.reverse_leftovers(self._uow(), self.clock, terminal=terminal)
        )

    def list_terminals(
        self, *, actor: Principal, limit: int = 100
    ) -> Sequence[tuple[Terminal, dict[int, int]]]:
        from mwallet.core.services import terminals

        return terminals.list_terminals(self._uow(), self.clock, actor=actor, limit=limit)

    def load_cassettes(
        self, *, actor: Principal, terminal_id: str, notes: Mapping[int, int]
    ) -> dict[int, int]:
        from mwallet.core.services import terminals

        return retrying(
            lambda: terminals.load_cassettes(
                self._uow(),
                self.clock,
                actor=actor,
                settings=self.settings,
                terminal_id=terminal_id,
                notes=notes,
            )
        )

    def cash_in(
        self,
        agent: Principal,
        *,
        to_phone: str,
        amount: Money,
        idempotency_key: str,
        code: str | None = None,
    ) -> Transfer:
        return retrying(
            lambda: wallets.cash_in(
                self._uow(),
                self.clock,
                self._box,
                settings=self.settings,
                agent=agent,
                to_phone=to_phone,
                amount=amount,
                idempotency_key=idempotency_key,
                code=code,
            )
        )

    # --- statistics and operators' reports (read-only) -------------------------------------------
    def usage_statistics(
        self,
        principal: Principal,
        *,
        period: Period | None = None,
        months: int | None = None,
        phone: str | None = None,
        user_id: str | None = None,
    ) -> UsageStats:
        """`period`: a month unless told; `months`: statistics.DEFAULT_MONTHS unless told."""
        from mwallet.core.domain.statistics import DEFAULT_MONTHS, Period
        from mwallet.core.services import statistics

        period = Period.MONTH if period is None else period
        months = DEFAULT_MONTHS if months is None else months

        return statistics.usage(
            self._uow(), self.clock, actor=principal, settings=self.settings, period=period,
            months=months, phone=phone, user_id=user_id,
        )  # fmt: skip

    def volume_report(self, *, actor: Principal, days: int) -> VolumeReport:
        from mwallet.core.services import statistics

        return statistics.volumes(self._uow(), self.clock, actor=actor, days_back=days)

    def active_users_report(self, *, actor: Principal, days: int) -> ActiveUsers:
        from mwallet.core.services import statistics

        return statistics.active_users(self._uow(), self.clock, actor=actor, days_back=days)

    def fees_report(self, *, actor: Principal, days: int) -> FeesReport:
        from mwallet.core.services import statistics

        return statistics.fees(self._uow(), self.clock, actor=actor, days_back=days)

    def cash_report(
        self, *, actor: Principal, days: int
    ) -> tuple[tuple[TerminalCash, ...], str, str]:
        from mwallet.core.services import statistics

        return statistics.cash_flows(
            self._uow(), self.clock, actor=actor, settings=self.settings, days_back=days
        )

    def holds_report(self, *, actor: Principal, limit: int = 100) -> HoldsReport:
        from mwallet.core.services import statistics

        return statistics.holds(self._uow(), self.clock, actor=actor, limit=limit)

    def trial_balance(self, *, actor: Principal) -> TrialBalance:
        from mwallet.core.services import statistics

        return statistics.trial_balance(self._uow(), self.clock, actor=actor)
