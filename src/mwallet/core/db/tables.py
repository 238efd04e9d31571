"""The database schema as SQLAlchemy Core tables. Alembic's migrations must produce exactly this.

Core, not ORM-mapped classes: repositories map rows to domain objects themselves, and importing
`sqlalchemy.orm` and building declarative classes would cost ~45 ms on every CLI start.

Timestamps are stored as integer microseconds since the Unix epoch (UTC): the same on SQLite and
PostgreSQL, compact, and ordered. Money is integer minor units in BIGINT columns.

Each table is built the first time it is used (see `_Later`): a command touches a few of them.
`metadata()` builds them all: the whole schema, for Alembic and the tests that compare with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, ClassVar, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Dialect,
    ForeignKey,
    FromClause,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)

T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# A 64-bit autoincrementing key; SQLite only autoincrements an INTEGER PRIMARY KEY (its rowid).
BigIntKey = BigInteger().with_variant(Integer(), "sqlite")


class UtcMicros(TypeDecorator[datetime]):
    """An aware UTC datetime stored as integer microseconds since the epoch."""

    impl = BigInteger
    cache_ok = True

    # The last instant converted, and its microseconds: a use case binds its one `now` to most of
    # the rows it writes (a transfer: seven times), so it is converted once. One tuple, read and
    # replaced whole, so threads sharing it see a matching pair; it holds the datetime, so an
    # identical object is the same instant.
    _last: ClassVar[tuple[datetime | None, int]] = (None, 0)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        last = UtcMicros._last
        if value is last[0]:
            return last[1]
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        delta = value - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        UtcMicros._last = (value, micros)
        return micros

    def process_result_value(self, value: int | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return _EPOCH + timedelta(microseconds=value)

    # The conversions themselves, not TypeDecorator's wrappers around them (one call fewer for
    # each time bound or read, ~6 a transfer), as long as the integer needs none of its own.
    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if self.impl_instance.bind_processor(dialect) is not None:  # pragma: no cover
            return super().bind_processor(dialect)
        return partial(self.process_bind_param, dialect=dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if self.impl_instance.result_processor(dialect, coltype) is not None:  # pragma: no cover
            return super().result_processor(dialect, coltype)
        return partial(self.process_result_value, dialect=dialect)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_metadata = MetaData(naming_convention=NAMING)
_TABLES: list[_Later] = []
_BUILDING = threading.RLock()  # a table's build may use another table: the same thread re-enters


class _Later:
    """A table (or an alias of one) built the first time it is used.

    Building all ~30 tables costs ~70M instructions (~20 ms) and a command touches a few, mostly
    inside `Prepared` builders that run on first use. SQLAlchemy takes this stand-in wherever it
    takes the table itself (`select(users)`, `insert(users)`, joins) through
    `__clause_element__`, and every other attribute (`users.c.phone`) is the built table's.
    """

    __slots__ = ("_build", "_built")
    # Not the built table's True (which `__getattr__` would give): tells SQLAlchemy to ask for it.
    is_clause_element = False

    def __init__(self, build: Callable[[], FromClause]) -> None:
        self._build = build
        self._built: FromClause | None = None

    def __clause_element__(self) -> FromClause:
        built = self._built
        if built is None:
            # Threads (the server's pool) may meet an unbuilt table at once: one builds it (a
            # second `Table(...)` of the same name would be refused by the metadata).
            with _BUILDING:
                built = self._built
                if built is None:
                    built = self._built = self._build()
        return built

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__clause_element__(), name)

    def __repr__(self) -> str:
        return repr(self.__clause_element__())


def _later(build: Callable[[], T]) -> T:
    """`build()`'s table or alias, built when first used (typed as what it stands for)."""
    return cast(T, _Later(cast(Callable[[], FromClause], build)))


def _table(build: Callable[[], Table]) -> Table:
    """A schema table, defined by the function that builds it; see `_Later`."""
    later = _Later(build)
    _TABLES.append(later)
    return cast(Table, later)


def metadata() -> MetaData:
    """The whole schema, every table built: what Alembic's migrations must produce."""
    for table in _TABLES:
        table.__clause_element__()
    return _metadata


# `sqlite_with_rowid=False`: tables keyed by text ids are clustered on that key in SQLite (one
# B-tree instead of a rowid table plus a key index), so fewer pages are written and fsynced per
# commit. PostgreSQL ignores it.


def _id(name: str = "id") -> Column[str]:
    """A ULID text key (see `mwallet.core.domain.ids`)."""
    return Column(name, String(26), primary_key=True)


@_table
def instance_settings() -> Table:
    return Table(
        "instance_settings",
        _metadata,
        Column("key", String(32), primary_key=True),
        Column("value", String(64), nullable=False),
    )


@_table
def users() -> Table:
    return Table(
        "users",
        _metadata,
        _id(),
        Column("phone", String(20), nullable=False, unique=True),  # E.164
        Column("display_name", String(80), nullable=False),
        Column("email", String(254)),
        Column("password_hash", String(255), nullable=False),  # argon2id, PHC string
        Column("created_at", UtcMicros, nullable=False),
        Column("role", String(16), nullable=False, server_default="customer"),
        Column("tier", String(16), nullable=False, server_default="basic"),  # KYC: basic, verified
        sqlite_with_rowid=False,
    )


@_table
def accounts() -> Table:
    return Table(
        "accounts",
        _metadata,
        Column("id", BigIntKey, primary_key=True, autoincrement=True),
        Column(
            "code", String(64), nullable=False, unique=True
        ),  # wallet:<user>, funding:<src>:<cur>
        Column("kind", String(16), nullable=False),
        Column("currency", String(3), nullable=False),
        Column("balance", BigInteger, nullable=False, default=0),
        Column("status", String(8), nullable=False, default="active"),
        Column("owner_user_id", ForeignKey("users.id")),
        Column("created_at", UtcMicros, nullable=False),
        # The time of the account's last posting, in microseconds since the epoch (0: none yet).
        # Each posting takes a time later than this one (`ledger_repository.post`), so an
        # account's postings are in the same order by time as the balances followed.
        Column("posted_at", BigInteger, nullable=False, server_default=text("0")),
        # The last line of defence: even a buggy update cannot leave a wallet negative.
        CheckConstraint("kind <> 'wallet' OR balance >= 0", name="wallet_not_negative"),
        CheckConstraint("status IN ('active', 'frozen', 'closed')", name="status_known"),
        Index(None, "owner_user_id"),
    )


@_table
def journal_entries() -> Table:
    return Table(
        "journal_entries",
        _metadata,
        _id(),
        Column("kind", String(16), nullable=False),
        Column("created_at", UtcMicros, nullable=False),
        Column("memo", String(140)),
        # The withdrawal or payment the entry belongs to (holds, captures, releases, payments): its
        # state and fee are what a history shows for the entry.
        Column("ref_id", String(26)),
        # No index on the time: an entry's id is made in the millisecond of its time, so the
        # operators' reports find a window of days as a range of the key (`stats_repository`).
        sqlite_with_rowid=False,
    )


@_table
def postings() -> Table:
    return Table(
        "postings",
        _metadata,
        # A posting is its entry's `leg`th (0, 1, ...: in the order of their accounts' ids, the
        # order they were applied in): one B-tree in SQLite, ordered by entry, where an entry's
        # few postings sit side by side; no surrogate key, no second index on the entry (0020).
        Column("entry_id", ForeignKey("journal_entries.id"), primary_key=True),
        Column("leg", SmallInteger, primary_key=True, autoincrement=False),
        Column("account_id", ForeignKey("accounts.id"), nullable=False),
        Column("amount", BigInteger, nullable=False),
        Column("currency", String(3), nullable=False),
        # The account's balance right after this posting: a running balance for history, and a
        # chain `verify` can check posting by posting.
        Column("balance_after", BigInteger, nullable=False),
        # When the posting took effect: its entry's time, or, if the account's last posting is
        # not older than that (a clock stepped back, a wait for the account's lock), a microsecond
        # after it. Strictly increasing along one account's postings, in the order its balance
        # followed, so the one index below serves history pages, periods of dates and the
        # running balance alike, and refuses a second posting of an account at the same time.
        Column("created_at", UtcMicros, nullable=False),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        Index(None, "account_id", "created_at", unique=True),
        sqlite_with_rowid=False,
    )


@_table
def transfers() -> Table:
    return Table(
        "transfers",
        _metadata,
        Column("id", ForeignKey("journal_entries.id"), primary_key=True),
        Column("sender_user_id", ForeignKey("users.id"), nullable=False),
        Column("recipient_user_id", ForeignKey("users.id"), nullable=False),
        Column("amount", BigInteger, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("note", String(140)),
        Column("created_at", UtcMicros, nullable=False),
        Column("fee", BigInteger, nullable=False, server_default=text("0")),  # paid by the sender
        CheckConstraint("amount > 0", name="amount_positive"),
        sqlite_with_rowid=False,
    )


@_table
def topups() -> Table:
    return Table(
        "topups",
        _metadata,
        Column("id", ForeignKey("journal_entries.id"), primary_key=True),
        Column("user_id", ForeignKey("users.id"), nullable=False),
        Column("source", String(32), nullable=False),
        Column("amount", BigInteger, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("created_at", UtcMicros, nullable=False),
        CheckConstraint("amount > 0", name="amount_positive"),
        sqlite_with_rowid=False,
    )


@_table
def idempotency_keys() -> Table:
    return Table(
        "idempotency_keys",
        _metadata,
        Column("scope", String(64), primary_key=True),  # the user, or register:<phone>
        Column("key", String(128), primary_key=True),
        Column("operation", String(32), nullable=False),
        Column("fingerprint", String(64), nullable=False),  # SHA-256 of the canonical request
        Column("result_id", String(26), nullable=False),
        Column("created_at", UtcMicros, nullable=False),
        # A refused request keeps its answer under the key: the error's code and message.
        Column("refusal_code", String(64), nullable=True),
        Column("refusal_message", String(400), nullable=True),
        sqlite_with_rowid=False,
    )


# Domain events waiting to be relayed, written in the same transaction as the change. A queue: the
# relay deletes the events it has handed on, in the transaction it handed them on in, so the table
# holds only the backlog and the relay reads it oldest first by its key (a ULID, ordered by time).
# No index besides the key: an event is written into one B-tree, not two (0019).
@_table
def outbox() -> Table:
    return Table(
        "outbox",
        _metadata,
        _id("event_id"),
        Column("event_type", String(64), nullable=False),
        Column("aggregate_id", String(26), nullable=False),
        Column("payload", Text, nullable=False),  # JSON
        Column("created_at", UtcMicros, nullable=False),
        sqlite_with_rowid=False,
    )


# A login's lasting session: the family of refresh tokens it rotates through. Revoking the
# family (logout, password change, a refresh token reused) ends every token of that login.
@_table
def token_families() -> Table:
    return Table(
        "token_families",
        _metadata,
        _id(),
        Column("user_id", ForeignKey("users.id"), nullable=False),
        Column("created_at", UtcMicros, nullable=False),
        Column("expires_at", UtcMicros, nullable=False),  # no refresh beyond this, however used
        Column("revoked_at", UtcMicros),
        Column("revoked_reason", String(32)),
        Index(None, "user_id"),
        sqlite_with_rowid=False,
    )


@_table
def refresh_tokens() -> Table:
    return Table(
        "refresh_tokens",
        _metadata,
        Column("digest", String(64), primary_key=True),  # SHA-256 of the opaque token
        Column("family_id", ForeignKey("token_families.id"), nullable=False),
        Column("created_at", UtcMicros, nullable=False),
        Column("expires_at", UtcMicros, nullable=False),
        Column("used_at", UtcMicros),  # set when rotated; a second use revokes the family
        Index(None, "family_id"),
        sqlite_with_rowid=False,
    )


# Ed25519 keys that sign access tokens. The newest unretired one signs; a retired key still
# verifies until the last token it signed has expired.
@_table
def signing_keys() -> Table:
    return Table(
        "signing_keys",
        _metadata,
        Column("kid", String(32), primary_key=True),
        Column("private_key", Text, nullable=False),  # sealed with the data key (`core.crypto`)
        Column("public_key", String(64), nullable=False),  # raw, base64url
        Column("created_at", UtcMicros, nullable=False),
        Column("retired_at", UtcMicros),
        sqlite_with_rowid=False,
    )


@_table
def two_factor() -> Table:
    return Table(
        "two_factor",
        _metadata,
        Column("user_id", ForeignKey("users.id"), primary_key=True),
        Column("secret", Text, nullable=False),  # the TOTP secret, sealed with the data key
        Column("created_at", UtcMicros, nullable=False),
        Column("confirmed_at", UtcMicros),  # null while enrolment awaits its first code
        Column("last_step", BigInteger),  # the last accepted time-step: older codes are replays
        sqlite_with_rowid=False,
    )


@_table
def recovery_codes() -> Table:
    return Table(
        "recovery_codes",
        _metadata,
        Column("user_id", ForeignKey("users.id"), primary_key=True),
        Column("digest", String(64), primary_key=True),  # SHA-256 of the code
        Column("used_at", UtcMicros),
        sqlite_with_rowid=False,
    )


@_table
def oauth_clients() -> Table:
    return Table(
        "oauth_clients",
        _metadata,
        Column("id", String(40), primary_key=True),
        Column("name", String(80), nullable=False),
        Column("kind", String(16), nullable=False),  # atm, agent, partner
        Column("scopes", String(255), nullable=False),  # space-separated, as OAuth writes them
        Column("secret_digest", String(64), nullable=False),  # SHA-256 of a 256-bit random secret
        Column("created_at", UtcMicros, nullable=False),
        Column("disabled_at", UtcMicros),
        sqlite_with_rowid=False,
    )


# Append-only; each record carries the hash of the one before it (`core.domain.audit`).
@_table
def audit_log() -> Table:
    return Table(
        "audit_log",
        _metadata,
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        Column("at", UtcMicros, nullable=False),
        Column("action", String(64), nullable=False),
        Column("actor", String(26)),
        Column("subject", String(64)),
        Column("details", Text, nullable=False),  # JSON
        Column("prev_hash", String(64), nullable=False),
        Column("hash", String(64), nullable=False),
    )


# One row: the newest audit record. Appending locks it, so the chain never forks.
@_table
def audit_head() -> Table:
    return Table(
        "audit_head",
        _metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("seq", BigInteger, nullable=False),
        Column("hash", String(64), nullable=False),
    )


# Failed logins in a row, per phone number (registered or not).
@_table
def login_throttle() -> Table:
    return Table(
        "login_throttle",
        _metadata,
        Column("phone", String(20), primary_key=True),
        Column("failures", Integer, nullable=False),
        Column("locked_until", UtcMicros),
        Column("refusals", Integer, nullable=False),
        sqlite_with_rowid=False,
    )


# Secrets of the instance itself (the withdrawal-code pepper, the QR signing key), sealed with
# the data key; made on first use.
@_table
def instance_secrets() -> Table:
    return Table(
        "instance_secrets",
        _metadata,
        Column("name", String(32), primary_key=True),
        Column("sealed", Text, nullable=False),
        Column("created_at", UtcMicros, nullable=False),
        sqlite_with_rowid=False,
    )


# Where cash is paid out: an ATM (an OAuth client) or an agent (a user paying from their float).
@_table
def terminals() -> Table:
    return Table(
        "terminals",
        _metadata,
        _id(),
        Column("kind", String(8), nullable=False),  # atm, agent
        Column("name", String(80), nullable=False),
        Column("client_id", String(40), unique=True),  # an ATM's OAuth client
        Column("agent_user_id", ForeignKey("users.id"), unique=True),  # an agent
        Column("created_at", UtcMicros, nullable=False),
        # Unknown codes tried in the current window; at the limit the terminal is locked a while.
        Column("unknown_codes", Integer, nullable=False, server_default="0"),
        Column("window_started_at", UtcMicros),
        Column("locked_until", UtcMicros),
        sqlite_with_rowid=False,
    )


@_table
def cassettes() -> Table:
    return Table(
        "cassettes",
        _metadata,
        Column("terminal_id", ForeignKey("terminals.id"), primary_key=True),
        Column("denomination", BigInteger, primary_key=True),  # minor units
        Column("notes", Integer, nullable=False),
        CheckConstraint("notes >= 0", name="notes_not_negative"),
        CheckConstraint("denomination > 0", name="denomination_positive"),
        sqlite_with_rowid=False,
    )


@_table
def withdrawals() -> Table:
    return Table(
        "withdrawals",
        _metadata,
        _id(),
        Column("user_id", ForeignKey("users.id"), nullable=False),
        Column("amount", BigInteger, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("channel", String(8), nullable=False),  # atm, agent
        Column("state", String(12), nullable=False),
        Column("created_at", UtcMicros, nullable=False),
        Column("expires_at", UtcMicros, nullable=False),
        Column("updated_at", UtcMicros, nullable=False),
        Column("pin_attempts", Integer, nullable=False),
        Column("terminal_id", ForeignKey("terminals.id")),  # the one that authorized it
        Column("notes", String(255)),  # an ATM's dispense plan at authorization: "5000:1,2000:3"
        # Keyed hashes (HMAC-SHA256 under the instance's pepper): the code, the PIN, the QR's nonce.
        Column("code_digest", String(64), nullable=False, unique=True),
        Column("pin_digest", String(64), nullable=False),
        Column("nonce_digest", String(64), nullable=False),
        Column("fee", BigInteger, nullable=False, server_default=text("0")),  # held with the amount
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("fee >= 0", name="fee_not_negative"),
        Index(None, "user_id", "created_at"),
        # Expiry sweeps look for pending withdrawals past their time.
        Index(None, "state", "expires_at"),
        # A terminal's day: what it paid out or reversed since midnight, and what it left open.
        Index(None, "terminal_id", "updated_at"),
        sqlite_with_rowid=False,
    )


# Notifications: one row per (event, person, channel). The inbox is the rows of channel `inbox`;
# the others are deliveries a worker sends (`state`, `attempts`, `next_attempt_at`, a lease while
# it sends).
@_table
def notifications() -> Table:
    return Table(
        "notifications",
        _metadata,
        _id(),
        Column("event_id", String(26), nullable=False),
        Column("user_id", ForeignKey("users.id"), nullable=False),
        Column("channel", String(8), nullable=False),
        Column("kind", String(32), nullable=False),
        Column("address", String(254), nullable=False),
        Column("title", String(200), nullable=False),
        Column("body", Text, nullable=False),
        Column("state", String(10), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("created_at", UtcMicros, nullable=False),
        Column("next_attempt_at", UtcMicros, nullable=False),
        Column("lease_until", UtcMicros),
        Column("sent_at", UtcMicros),
        Column("read_at", UtcMicros),
        Column("last_error", String(500)),
        UniqueConstraint("event_id", "user_id", "channel"),
        # A worker looks for what is due per channel; a person reads their inbox newest first.
        Index(None, "channel", "state", "next_attempt_at"),
        Index(None, "user_id", "channel", "id"),
        sqlite_with_rowid=False,
    )


# The devices a person has logged in from (a device id the client keeps, stored as its SHA-256):
# a login from one not seen before tells the person.
@_table
def known_devices() -> Table:
    return Table(
        "known_devices",
        _metadata,
        Column("user_id", ForeignKey("users.id"), primary_key=True),
        Column("device_digest", String(64), primary_key=True),
        Column("first_seen_at", UtcMicros, nullable=False),
        Column("last_seen_at", UtcMicros, nullable=False),
        sqlite_with_rowid=False,
    )


# Device authorization grants (RFC 8628): the device's secret code only as its SHA-256.
@_table
def device_grants() -> Table:
    return Table(
        "device_grants",
        _metadata,
        _id(),
        Column("device_digest", String(64), nullable=False, unique=True),
        Column("user_code", String(8), nullable=False),
        Column("state", String(16), nullable=False),
        Column("user_id", ForeignKey("users.id")),
        Column("created_at", UtcMicros, nullable=False),
        Column("expires_at", UtcMicros, nullable=False),
        Column("interval_seconds", Integer, nullable=False),
        Column("last_polled_at", UtcMicros),
        Index(None, "user_code"),
        sqlite_with_rowid=False,
    )


@_table
def notification_prefs() -> Table:
    return Table(
        "notification_prefs",
        _metadata,
        Column("user_id", ForeignKey("users.id"), primary_key=True),
        Column("language", String(8), nullable=False),
        Column("email", Boolean, nullable=False),
        Column("sms", Boolean, nullable=False),
        Column("push", Boolean, nullable=False),
        Column("updated_at", UtcMicros, nullable=False),
        sqlite_with_rowid=False,
    )


@_table
def billers() -> Table:
    return Table(
        "billers",
        _metadata,
        Column("id", String(32), primary_key=True),
        Column("name", String(80), nullable=False),
        Column("category", String(16), nullable=False),
        Column("currency", String(3), nullable=False),
        Column("min_amount", BigInteger, nullable=False),
        Column("max_amount", BigInteger, nullable=False),
        Column("provider", String(16), nullable=False),
        Column("pattern", String(200), nullable=False),
        Column("check_digit", String(8), nullable=False),
        Column("active", Boolean, nullable=False),
        Column("created_at", UtcMicros, nullable=False),
        CheckConstraint("0 < min_amount AND min_amount <= max_amount", name="amount_range"),
        sqlite_with_rowid=False,
    )


@_table
def payments() -> Table:
    return Table(
        "payments",
        _metadata,
        _id(),
        Column("user_id", ForeignKey("users.id"), nullable=False),
        Column("biller_id", ForeignKey("billers.id"), nullable=False),
        Column("reference", String(34), nullable=False),
        Column("amount", BigInteger, nullable=False),
        Column("fee", BigInteger, nullable=False),
        Column("currency", String(3), nullable=False),
        Column("state", String(10), nullable=False),
        Column("provider_ref", String(64)),
        Column("reason", String(200)),
        Column("created_at", UtcMicros, nullable=False),
        Column("updated_at", UtcMicros, nullable=False),
        Column("product", String(8), nullable=False, server_default="bill"),  # bill, airtime
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("fee >= 0", name="fee_not_negative"),
        Index(None, "user_id", "created_at"),
        # Reconciliation looks for payments left unknown, or pending too long.
        Index(None, "state", "updated_at"),
        sqlite_with_rowid=False,
    )


# The two people of a transfer, when one query reads both.
senders = _later(lambda: users.alias("sender"))
recipients = _later(lambda: users.alias("recipient"))


# What each kind of movement costs (core/domain/tariffs.py): the rule as JSON; none: free.
@_table
def tariffs() -> Table:
    return Table(
        "tariffs",
        _metadata,
        Column("movement", String(20), primary_key=True),
        Column("rule", String(1000), nullable=False),
        Column("updated_at", UtcMicros, nullable=False),
        sqlite_with_rowid=False,
    )


# The most a user of a tier may move per day and per month, per family of movements (NULL: none).
@_table
def limits() -> Table:
    return Table(
        "limits",
        _metadata,
        Column("family", String(16), primary_key=True),
        Column("tier", String(16), primary_key=True),
        Column("daily", BigInteger),
        Column("monthly", BigInteger),
        sqlite_with_rowid=False,
    )
