"""The database schema as typed SQLAlchemy rows. Alembic's migrations must produce exactly this.

Timestamps are stored as integer microseconds since the Unix epoch (UTC): the same on SQLite and
PostgreSQL, compact, and ordered. Money is integer minor units in BIGINT columns.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# A 64-bit autoincrementing key; SQLite only autoincrements an INTEGER PRIMARY KEY (its rowid).
BigIntKey = BigInteger().with_variant(Integer(), "sqlite")


class UtcMicros(TypeDecorator[datetime]):
    """An aware UTC datetime stored as integer microseconds since the epoch."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds

    def process_result_value(self, value: int | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return _EPOCH + timedelta(microseconds=value)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# Tables keyed by text ids are clustered on that key in SQLite (one B-tree instead of a rowid
# table plus a key index): fewer pages written and fsynced per commit. PostgreSQL ignores it.
CLUSTERED = {"sqlite_with_rowid": False}


class InstanceSettingRow(Base):
    __tablename__ = "instance_settings"
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(64))


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = CLUSTERED
    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcMicros)


class AccountRow(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        # The last line of defence: even a buggy update cannot leave a wallet negative.
        CheckConstraint("kind <> 'wallet' OR balance >= 0", name="wallet_not_negative"),
        CheckConstraint("status IN ('active', 'frozen', 'closed')", name="status_known"),
        Index(None, "owner_user_id"),
    )
    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(8), default="active")
    owner_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcMicros)


class JournalEntryRow(Base):
    __tablename__ = "journal_entries"
    __table_args__ = CLUSTERED
    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcMicros)
    memo: Mapped[str | None] = mapped_column(String(140))


class PostingRow(Base):
    __tablename__ = "postings"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        # History reads one account's postings newest first.
        Index(None, "account_id", "id"),
    )
    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("journal_entries.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # The account's balance right after this posting: a running balance for history, and a
    # chain `verify` can check posting by posting.
    balance_after: Mapped[int] = mapped_column(BigInteger)


class TransferRow(Base):
    __tablename__ = "transfers"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"), CLUSTERED)
    id: Mapped[str] = mapped_column(ForeignKey("journal_entries.id"), primary_key=True)
    sender_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    recipient_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    note: Mapped[str | None] = mapped_column(String(140))
    created_at: Mapped[datetime] = mapped_column(UtcMicros)


class TopUpRow(Base):
    __tablename__ = "topups"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"), CLUSTERED)
    id: Mapped[str] = mapped_column(ForeignKey("journal_entries.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UtcMicros)


class IdempotencyKeyRow(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = CLUSTERED
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    operation: Mapped[str] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(64))
    result_id: Mapped[str] = mapped_column(String(26))
    created_at: Mapped[datetime] = mapped_column(UtcMicros)


class OutboxRow(Base):
    """Domain events waiting to be relayed; written in the same transaction as the change."""

    __tablename__ = "outbox"
    # The relay scans for unpublished events oldest first.
    __table_args__ = (Index(None, "published_at", "event_id"), CLUSTERED)
    event_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    aggregate_id: Mapped[str] = mapped_column(String(26))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcMicros)
    published_at: Mapped[datetime | None] = mapped_column(UtcMicros)


class SessionRow(Base):
    __tablename__ = "sessions"
    __table_args__ = (Index(None, "user_id"), CLUSTERED)
    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UtcMicros)
    expires_at: Mapped[datetime] = mapped_column(UtcMicros)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcMicros)


def _table(row: type[Base]) -> Table:
    table = row.__table__
    if not isinstance(table, Table):  # pragma: no cover - every row class maps one table
        raise TypeError(f"{row.__name__} is not mapped to a table")
    return table


users = _table(UserRow)
accounts = _table(AccountRow)
journal_entries = _table(JournalEntryRow)
postings = _table(PostingRow)
transfers = _table(TransferRow)
topups = _table(TopUpRow)
idempotency_keys = _table(IdempotencyKeyRow)
outbox = _table(OutboxRow)
sessions = _table(SessionRow)
instance_settings = _table(InstanceSettingRow)
