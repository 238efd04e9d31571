"""The unit-of-work port: the repositories a use case needs, inside one database transaction.

`with uow:` opens a writing transaction that rolls back unless `uow.commit()` is called;
`with uow.read_only():` opens one that only reads. The SQL adapter lives in `core.db`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Self

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
    from datetime import datetime
    from types import TracebackType

    from mwallet.core.domain.admin_reports import AccountLine, OutstandingHold, TerminalCash
    from mwallet.core.domain.audit import AuditAnchor, AuditEvent, AuditRecord, UnreadableRecord
    from mwallet.core.domain.clients import OAuthClient
    from mwallet.core.domain.device_grants import DeviceGrant, GrantState
    from mwallet.core.domain.events import DomainEvent
    from mwallet.core.domain.ledger import (
        Account,
        AccountKind,
        AccountStatus,
        EntryKind,
        JournalEntry,
        LedgerReport,
    )
    from mwallet.core.domain.lockout import LoginThrottle
    from mwallet.core.domain.movements import StatementBatch, WalletPosting
    from mwallet.core.domain.notifications import Channel, Delivery, DeliveryState, Preferences
    from mwallet.core.domain.payments import Biller, Payment, PaymentState
    from mwallet.core.domain.roles import Role
    from mwallet.core.domain.sessions import (
        RefreshTokenRecord,
        SigningKey,
        TokenFamily,
        TwoFactorRecord,
    )
    from mwallet.core.domain.statistics import (
        Bucket,
        Counterparty,
        MovementGroup,
    )
    from mwallet.core.domain.tariffs import Limit, LimitFamily, Movement, Tariff, Tier
    from mwallet.core.domain.terminals import Terminal
    from mwallet.core.domain.transfers import IdempotencyRecord, Refusal, TopUp, Transfer
    from mwallet.core.domain.users import User
    from mwallet.core.domain.withdrawals import Withdrawal, WithdrawalPolicy, WithdrawalState


@dataclass(frozen=True, slots=True)
class InstanceSettings:
    currency: str
    region: str | None
    # Money movements of at least this many minor units need a fresh 2FA code (when 2FA is on);
    # None: the default, STEP_UP_DEFAULT_MAJOR units of the currency.
    step_up_minor: int | None = None
    # What `admin limits withdrawals` set; None: WithdrawalPolicy.default_for the currency.
    withdrawal_policy: WithdrawalPolicy | None = None


class InstanceRepository(Protocol):
    def get(self) -> InstanceSettings | None: ...

    def put(self, settings: InstanceSettings) -> None: ...

    def set_region(self, region: str) -> None: ...

    def set_step_up(self, minor: int) -> None: ...

    def set_withdrawal_policy(self, policy: WithdrawalPolicy) -> None: ...


class UserRepository(Protocol):
    def add(self, user: User, password_hash: str) -> None: ...

    def by_id(self, user_id: str) -> User | None: ...

    def by_phone(self, phone: str) -> User | None: ...

    def password_hash(self, user_id: str) -> str: ...

    def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    def lock_roles(self) -> None:
        """Role changes take turns until the unit of work ends."""
        ...

    def set_role(self, user_id: str, role: Role) -> None: ...

    def set_tier(self, user_id: str, tier: Tier) -> None: ...

    def count_with_role(self, role: Role) -> int: ...

    def page(self, *, limit: int, after_phone: str | None) -> list[User]: ...


class LedgerRepository(Protocol):
    def open_account(
        self,
        *,
        code: str,
        kind: AccountKind,
        currency: str,
        owner_user_id: str | None,
        created_at: datetime,
    ) -> int: ...

    def account_id(self, code: str) -> int | None:
        """The id of the account with `code` (ids never change, so this may be remembered)."""
        ...

    def lock(self, account_id: int) -> None:
        """Hold the account's row until the unit of work ends: movements of it take turns."""
        ...

    def by_code(self, code: str) -> Account | None: ...

    def wallet_by_phone(self, phone: str) -> Account | None:
        """The wallet of the user registered to `phone` (its `owner_user_id`: theirs)."""
        ...

    def set_status(self, account_id: int, status: AccountStatus) -> bool:
        """Change an account's status unless it is closed, or (to close it) not empty."""
        ...

    def post(self, entry: JournalEntry, *, names: Mapping[int, str] | None = None) -> None:
        """Apply the entry's postings to the balances and record it, atomically.

        A wallet that would go negative raises InsufficientFunds; an account that is not active
        raises WalletFrozen or WalletClosed; the error calls an account by its name in `names`
        ("your wallet"). The unit of work must then be rolled back.
        """
        ...

    def paid_out(self, account_id: int, kind: EntryKind, since: datetime) -> tuple[int, int]:
        """(count, minor units) of what an account paid out in entries of one kind since `since`
        (its outgoing postings only)."""
        ...

    def verify(self, now: datetime) -> LedgerReport:
        """Prove the books; and warn of accounts whose last posting is ahead of `now` by more
        than `POSTED_AHEAD_TOLERANCE` (a clock that ran ahead)."""
        ...


class MovementRepository(Protocol):
    """One wallet's postings, read by keyset on their time: integer microseconds since the epoch,
    strictly increasing along one account's postings in the order its balance followed them (so
    a posting's time is also its key in its account)."""

    def balance_before(self, account_id: int, at: int) -> int:
        """The account's balance just before time `at` (0 before its first posting)."""
        ...

    def count(self, account_id: int, low: int, high: int) -> int:
        """How many of the account's postings were made in [low, high)."""
        ...

    def postings(
        self,
        account_id: int,
        *,
        low: int,
        high: int,
        kinds: frozenset[EntryKind] | None,
        sign: int,
        min_minor: int,
        newest_first: bool,
        limit: int,
    ) -> list[WalletPosting]:
        """Up to `limit` postings made in [low, high), of entries of `kinds` (None: any),
        credits only (sign 1) or debits only (-1) or both (0), at least `min_minor` in size."""
        ...

    def batches(
        self, account_id: int, *, low: int, high: int, size: int
    ) -> Generator[StatementBatch, None, None]:
        """All the postings made in [low, high), oldest first, `size` at a time: one
        query a batch, each starting after the last, in the caller's transaction. Plain rows,
        as the driver returns them (a statement reads millions), with the phones of the other
        parties their transfers name by user id."""
        ...


class TransferRepository(Protocol):
    def add_transfer(self, transfer: Transfer) -> None: ...

    def transfer(self, transfer_id: str) -> Transfer | None: ...

    def add_topup(self, topup: TopUp) -> None: ...

    def topup(self, topup_id: str) -> TopUp | None: ...


class TariffRepository(Protocol):
    """What movements cost and how much users may move (core/domain/tariffs.py)."""

    def tariffs(self) -> dict[Movement, Tariff]: ...

    def set_tariff(self, movement: Movement, tariff: Tariff | None, now: datetime) -> None: ...

    def limit(self, family: LimitFamily, tier: Tier) -> Limit | None: ...

    def terms(self, user_id: str, movement: Movement) -> tuple[Tariff | None, Tier, Limit | None]:
        """In one query: the movement's tariff (None: free), the user's tier, and the limit an
        admin stored for that tier and the movement's family (None: the default applies)."""
        ...

    def terms_later(
        self, user_id: str, movement: Movement
    ) -> Callable[[], tuple[Tariff | None, Tier, Limit | None]]:
        """`terms`, asked for later: the adapter may send the query together with the unit of
        work's next read (one round trip fewer) and wait for it only then."""
        ...

    def limits(self) -> list[Limit]: ...

    def set_limit(self, limit: Limit) -> None: ...

    def moved_since(self, user_id: str, family: LimitFamily, since: datetime) -> int:
        """The amounts of `family` the user moved since `since`, in minor units (no fees)."""
        ...


class IdempotencyRepository(Protocol):
    def claim(
        self, scope: str, key: str, record: IdempotencyRecord, created_at: datetime
    ) -> IdempotencyRecord | None:
        """Take `key` for `record`, or return the record that already holds it.

        The claim is part of the unit of work: if it is rolled back, the key is free again.
        """
        ...

    def claim_later(
        self, scope: str, key: str, record: IdempotencyRecord, created_at: datetime
    ) -> Callable[[], IdempotencyRecord | None]:
        """`claim`, whose outcome is asked for later: the adapter may send the claim together
        with the unit of work's next read (one round trip fewer) and wait for it only then."""
        ...

    def find(self, scope: str, key: str) -> IdempotencyRecord | None:
        """The record holding `key`, if any (without claiming it)."""
        ...

    def keep_refusal(self, scope: str, key: str, refusal: Refusal) -> None:
        """Record that the request holding `key` (claimed in this unit of work) was refused."""
        ...


class Outbox(Protocol):
    def add(self, event: DomainEvent, created_at: datetime) -> None: ...

    def unpublished(self, *, limit: int) -> list[DomainEvent]:
        """The oldest events not yet handed on, oldest first (locked against other relays where
        the database can: PostgreSQL skips rows another relay holds)."""
        ...

    def remove_relayed(self, event_ids: Sequence[str]) -> None:
        """Delete events handed on in this unit of work: the outbox keeps only those still to
        relay. Nothing is gone unless the unit of work commits."""
        ...

    def backlog(self) -> tuple[int, datetime | None]:
        """How many events wait to be relayed, and when the oldest was recorded."""
        ...


class NotificationRepository(Protocol):
    def add(self, delivery: Delivery) -> bool:
        """Store a delivery; False if (event, person, channel) has one already."""
        ...

    def claim(
        self, channel: Channel, now: datetime, *, lease_until: datetime, limit: int
    ) -> list[Delivery]:
        """Take up to `limit` due deliveries of a channel, leased until `lease_until`."""
        ...

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
        """Record a send's outcome, if the lease is still the one it was claimed with."""
        ...

    def inbox(
        self, user_id: str, *, unread_only: bool, limit: int, before: str | None = None
    ) -> list[Delivery]: ...

    def mark_read(self, user_id: str, delivery_id: str, at: datetime) -> Delivery | None: ...

    def dead(self, *, limit: int) -> list[Delivery]: ...

    def revive(self, delivery_id: str, at: datetime) -> Delivery | None:
        """A dead delivery queued again, due at `at`, its attempts counted from zero."""
        ...

    def stats(self) -> list[tuple[Channel, DeliveryState, int, datetime]]:
        """(channel, state, count, oldest created) of deliveries other than the inbox."""
        ...

    def prefs(self, user_id: str) -> Preferences | None: ...

    def save_prefs(self, prefs: Preferences, at: datetime) -> None: ...


class PaymentRepository(Protocol):
    def add_biller(self, biller: Biller, at: datetime) -> bool:
        """Store a biller; False if its id is taken."""
        ...

    def biller(self, biller_id: str) -> Biller | None: ...

    def billers(self) -> list[Biller]: ...

    def set_biller_active(self, biller_id: str, active: bool) -> bool: ...

    def add(self, payment: Payment) -> None: ...

    def get(self, payment_id: str) -> Payment | None: ...

    def move(
        self,
        payment_id: str,
        *,
        from_state: PaymentState,
        to_state: PaymentState,
        at: datetime,
        provider_ref: str | None,
        reason: str | None,
    ) -> Payment | None:
        """Change the state if it is still `from_state`: the payment after, or None."""
        ...

    def of_user(self, user_id: str, *, limit: int) -> list[Payment]: ...

    def held_for(self, user_id: str) -> int:
        """Minor units held by the user's pending and unknown payments (with their fees)."""
        ...

    def topups_unsettled(self, user_id: str) -> int:
        """How many of the user's top-ups are still pending or unknown (a credit may come)."""
        ...

    def unsettled(self, *, stale_before: datetime, limit: int) -> list[Payment]:
        """Payments left unknown, and pending ones not touched since `stale_before` (their
        process stopped before the provider's answer was recorded), oldest first."""
        ...


class DeviceRepository(Protocol):
    def remember(self, user_id: str, digest: str, at: datetime) -> tuple[bool, int]:
        """Note a login from a device; (whether it is new, how many devices were known before)."""
        ...


class DeviceGrantRepository(Protocol):
    """Device authorization grants (RFC 8628), found by their device code's digest or by the
    user code the person types."""

    def add(self, grant: DeviceGrant, device_digest: str) -> None: ...

    def by_device_digest(self, digest: str) -> DeviceGrant | None: ...

    def live_by_user_code(self, user_code: str, now: datetime) -> DeviceGrant | None:
        """The pending grant with this user code that has not expired, if any."""
        ...

    def save(self, grant: DeviceGrant, *, was: GrantState) -> bool:
        """Keep the grant's new state, interval, poll time and user, if it is still in state
        `was`; False if another request changed it first."""
        ...


class TokenRepository(Protocol):
    """Token families (one per login) and the refresh tokens they rotate through."""

    def add_family(
        self, family_id: str, user_id: str, created_at: datetime, expires_at: datetime
    ) -> None: ...

    def family(self, family_id: str) -> TokenFamily | None: ...

    def add_refresh_token(
        self, digest: str, family_id: str, created_at: datetime, expires_at: datetime
    ) -> None: ...

    def refresh_token(self, digest: str) -> RefreshTokenRecord | None: ...

    def spend_refresh_token(self, digest: str, at: datetime) -> bool:
        """Mark an unspent refresh token spent; False if it was spent already (or unknown)."""
        ...

    def revoke_family(self, family_id: str, at: datetime, reason: str) -> str | None:
        """End a family; its user's id if this call ended it, None if it had ended."""
        ...

    def revoke_families_of(self, user_id: str, at: datetime, reason: str) -> None: ...


class SigningKeyRepository(Protocol):
    def current(self) -> SigningKey | None:
        """The newest key that is not retired."""
        ...

    def by_kid(self, kid: str) -> SigningKey | None: ...

    def all(self) -> list[SigningKey]: ...

    def add(self, key: SigningKey) -> None: ...

    def retire_others(self, kid: str, at: datetime) -> None: ...

    def reseal(self, kid: str, private_key_sealed: str) -> None: ...


class TwoFactorRepository(Protocol):
    def get(self, user_id: str) -> TwoFactorRecord | None: ...

    def start(self, user_id: str, secret_sealed: str, at: datetime) -> None:
        """Begin (or begin again) an enrolment that is not confirmed yet."""
        ...

    def confirm(self, user_id: str, at: datetime) -> bool:
        """Turn on a pending enrolment; False if it is not pending."""
        ...

    def accept_step(self, user_id: str, step: int) -> bool:
        """Record `step` as the last accepted one, unless it is not later than that (a replay)."""
        ...

    def remove(self, user_id: str) -> None:
        """Turn 2FA off: the secret and every recovery code go."""
        ...

    def add_recovery_codes(self, user_id: str, digests: Sequence[str]) -> None: ...

    def spend_recovery_code(self, user_id: str, digest: str, at: datetime) -> bool:
        """Use an unused recovery code up; False if there is none such."""
        ...

    def unused_recovery_codes(self, user_id: str) -> int: ...

    def sealed_secrets(self) -> list[tuple[str, str]]:
        """(user id, sealed secret) of every enrolment, for re-sealing under a new data key."""
        ...

    def reseal(self, user_id: str, secret_sealed: str) -> None: ...


class ClientRepository(Protocol):
    def add(self, client: OAuthClient, secret_digest: str) -> None: ...

    def by_id(self, client_id: str) -> tuple[OAuthClient, str] | None:
        """The client and the digest of its secret."""
        ...

    def page(self, *, limit: int) -> list[OAuthClient]: ...

    def disable(self, client_id: str, at: datetime) -> bool: ...


class InstanceSecrets(Protocol):
    def get(self, name: str) -> str | None:
        """A sealed instance secret, or None before it is first made."""
        ...

    def add(self, name: str, sealed: str, at: datetime) -> bool:
        """Store it unless another request made it first (then False: read theirs)."""
        ...

    def all(self) -> list[tuple[str, str]]: ...

    def reseal(self, name: str, sealed: str) -> None: ...


class WithdrawalRepository(Protocol):
    def add(
        self, withdrawal: Withdrawal, *, code_digest: str, pin_digest: str, nonce_digest: str
    ) -> bool:
        """Store a new withdrawal; False if its code digest is taken (draw another code)."""
        ...

    def get(self, withdrawal_id: str) -> Withdrawal | None: ...

    def by_code(self, code_digest: str) -> Withdrawal | None: ...

    def secrets_of(self, withdrawal_id: str) -> tuple[str, str]:
        """The (PIN digest, nonce digest) of a withdrawal."""
        ...

    def move(
        self,
        withdrawal_id: str,
        *,
        from_state: WithdrawalState,
        to_state: WithdrawalState,
        at: datetime,
        terminal_id: str | None = None,
        notes: dict[int, int] | None = None,
    ) -> bool:
        """Change the state if it is still `from_state`; False if another request moved it.
        An ATM's authorization records the notes it was told to dispense."""
        ...

    def notes_of(self, withdrawal_id: str) -> dict[int, int] | None: ...

    def count_wrong_pin(self, withdrawal_id: str, at: datetime) -> int:
        """One more wrong PIN on a pending withdrawal; the attempts so far."""
        ...

    def of_user(self, user_id: str, *, limit: int) -> list[Withdrawal]: ...

    def held_for(self, user_id: str) -> int:
        """Minor units held by the user's withdrawals not yet settled (with their fees)."""
        ...

    def due_to_expire(
        self, now: datetime, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Withdrawal]:
        """Pending withdrawals past their time, in (expires_at, id) order after `after`."""
        ...

    def due_of_user(self, user_id: str, now: datetime) -> list[Withdrawal]: ...

    def settled_at(
        self, terminal_id: str, since: datetime
    ) -> dict[WithdrawalState, tuple[int, int]]:
        """(count, minor units) of what a terminal completed or reversed since `since`."""
        ...

    def left_open_at(self, terminal_id: str) -> list[Withdrawal]:
        """Withdrawals a terminal authorized (or began dispensing) and has not settled."""
        ...


class TerminalRepository(Protocol):
    def add(self, terminal: Terminal) -> None: ...

    def get(self, terminal_id: str) -> Terminal | None: ...

    def by_client(self, client_id: str) -> Terminal | None: ...

    def by_agent(self, user_id: str) -> Terminal | None: ...

    def lock_for_update(self, terminal_id: str) -> Terminal | None: ...

    def save_attempts(self, terminal: Terminal) -> None: ...

    def page(self, *, limit: int) -> list[Terminal]: ...

    def cassettes(self, terminal_id: str) -> dict[int, int]: ...

    def load(self, terminal_id: str, denomination: int, notes: int) -> None:
        """Add notes to (or start) a cassette."""
        ...

    def take(self, terminal_id: str, denomination: int, notes: int) -> bool:
        """Remove notes dispensed; False if the cassette holds fewer."""
        ...


class AuditLog(Protocol):
    def append(self, event: AuditEvent, at: datetime) -> AuditRecord:
        """Add a record chained to the newest one; appenders take turns."""
        ...

    def head(self) -> AuditAnchor:
        """The database's own record of the newest entry."""
        ...

    def newest(self, *, limit: int, since: datetime | None = None) -> list[AuditRecord]: ...

    def oldest_first(self) -> Iterator[AuditRecord | UnreadableRecord]: ...


class LoginThrottles(Protocol):
    def get(self, phone: str) -> LoginThrottle: ...

    def get_for_update(self, phone: str) -> LoginThrottle:
        """The count, locked against concurrent failures until the unit of work ends."""
        ...

    def save(self, phone: str, throttle: LoginThrottle) -> None: ...

    def clear(self, phone: str) -> None: ...


class StatsRepository(Protocol):
    """Aggregates over the ledger for statistics and reports (`core.db.stats_repository`)."""

    def usage(
        self, account_id: int, spans: Sequence[Bucket], limit: int
    ) -> tuple[list[MovementGroup], list[Counterparty]]: ...

    def volumes(
        self, start: datetime, end: datetime
    ) -> list[tuple[int, str, str | None, str, int, int, int]]: ...

    def active_users(self, start: datetime, end: datetime) -> tuple[dict[int, int], int]: ...

    def wallets(self) -> int: ...

    def cash_flows(self, start: datetime, end: datetime) -> list[TerminalCash]: ...

    def outstanding_holds(
        self, limit: int
    ) -> tuple[list[OutstandingHold], int, dict[str, int]]: ...

    def balances_of_kind(self, kind: AccountKind) -> dict[str, int]: ...

    def accounts(self) -> list[AccountLine]: ...


class UnitOfWork(Protocol):
    # The repositories, read-only: the adapter may make each on first use.
    @property
    def instance(self) -> InstanceRepository: ...

    @property
    def users(self) -> UserRepository: ...

    @property
    def ledger(self) -> LedgerRepository: ...

    @property
    def transfers(self) -> TransferRepository: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def notifications(self) -> NotificationRepository: ...

    @property
    def devices(self) -> DeviceRepository: ...

    @property
    def device_grants(self) -> DeviceGrantRepository: ...

    @property
    def payments(self) -> PaymentRepository: ...

    @property
    def tariffs(self) -> TariffRepository: ...

    @property
    def tokens(self) -> TokenRepository: ...

    @property
    def signing_keys(self) -> SigningKeyRepository: ...

    @property
    def two_factor(self) -> TwoFactorRepository: ...

    @property
    def clients(self) -> ClientRepository: ...

    @property
    def instance_secrets(self) -> InstanceSecrets: ...

    @property
    def withdrawals(self) -> WithdrawalRepository: ...

    @property
    def terminals(self) -> TerminalRepository: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def logins(self) -> LoginThrottles: ...

    @property
    def movements(self) -> MovementRepository: ...

    @property
    def stats(self) -> StatsRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def read_only(self) -> Self:
        """Make the next `with` block a reading transaction (no write lock taken)."""
        ...

    def savepoint(self) -> None:
        """Mark this point of the transaction (one mark per transaction)."""
        ...

    def rollback_to_savepoint(self) -> None:
        """Undo everything since the mark, keeping what came before it; the repositories are
        made afresh (nothing they remember from the undone part is kept)."""
        ...

    def commit(self) -> None: ...
