"""SQL repositories of all but the ledger: settings, users, transfers, idempotency keys,
outbox.

Every statement is a module-level `Prepared`: built and compiled once, run on the driver's cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import BigInteger, bindparam, delete, func, select, update
from sqlalchemy.sql import ClauseElement

from mwallet.core.db.prepared import Prepared, dialect_insert, insert_into
from mwallet.core.db.tables import (
    idempotency_keys,
    instance_settings,
    recipients,
    senders,
    topups,
    transfers,
    users,
)
from mwallet.core.db.transaction import SqlTransaction
from mwallet.core.domain.instants import utc_micros
from mwallet.core.domain.money import Money
from mwallet.core.domain.roles import Role
from mwallet.core.domain.tariffs import Tier
from mwallet.core.domain.transfers import IdempotencyRecord, Refusal, TopUp, Transfer
from mwallet.core.domain.users import User
from mwallet.core.domain.withdrawals import WithdrawalPolicy
from mwallet.core.errors import ConcurrencyConflict
from mwallet.core.services.unit_of_work import InstanceSettings

_settings = Prepared(lambda: select(instance_settings.c.key, instance_settings.c.value))
_put_setting = Prepared(lambda: insert_into(instance_settings, "key", "value"))
_delete_setting = Prepared(
    lambda: delete(instance_settings).where(instance_settings.c.key == bindparam("k"))
)
_set_setting = Prepared(
    lambda: (
        update(instance_settings)
        .where(instance_settings.c.key == bindparam("k"))
        .values(value=bindparam("v"))
    )
)


class SqlInstanceRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def get(self) -> InstanceSettings | None:
        rows = {str(key): str(value) for key, value in self._sql.all(_settings, {})}
        if "currency" not in rows:
            return None
        step_up = rows.get("step_up_minor")
        return InstanceSettings(
            currency=rows["currency"],
            region=rows.get("region") or None,
            step_up_minor=int(step_up) if step_up else None,
            withdrawal_policy=_policy(rows),
        )

    def put(self, settings: InstanceSettings) -> None:
        self._sql.write(_put_setting, {"key": "currency", "value": settings.currency})
        self._sql.write(_put_setting, {"key": "region", "value": settings.region or ""})

    def set_region(self, region: str) -> None:
        self._sql.write(_set_setting, {"k": "region", "v": region})

    def set_step_up(self, minor: int) -> None:
        self._sql.write(_delete_setting, {"k": "step_up_minor"})
        self._sql.write(_put_setting, {"key": "step_up_minor", "value": str(minor)})

    def set_withdrawal_policy(self, policy: WithdrawalPolicy) -> None:
        values = {
            "withdrawal_min_minor": policy.min_minor,
            "withdrawal_max_minor": policy.max_minor,
            "withdrawal_lifetime_s": int(policy.lifetime.total_seconds()),
        }
        for key, value in values.items():
            self._sql.write(_delete_setting, {"k": key})
            self._sql.write(_put_setting, {"key": key, "value": str(value)})


def _policy(rows: dict[str, str]) -> WithdrawalPolicy | None:
    """The withdrawal policy an admin set, all its keys or none."""
    if "withdrawal_min_minor" not in rows:
        return None
    return WithdrawalPolicy(
        min_minor=int(rows["withdrawal_min_minor"]),
        max_minor=int(rows["withdrawal_max_minor"]),
        lifetime=timedelta(seconds=int(rows["withdrawal_lifetime_s"])),
    )


USER_COLUMNS = (
    users.c.id,
    users.c.phone,
    users.c.display_name,
    users.c.email,
    users.c.created_at,
    users.c.role,
    users.c.tier,
)
_user_by_id = Prepared(lambda: select(*USER_COLUMNS).where(users.c.id == bindparam("user_id")))
_user_by_phone = Prepared(lambda: select(*USER_COLUMNS).where(users.c.phone == bindparam("phone")))
_insert_user = Prepared(
    lambda: insert_into(
        users, "id", "phone", "display_name", "email", "password_hash", "created_at"
    )
)
_password_hash = Prepared(
    lambda: select(users.c.password_hash).where(users.c.id == bindparam("user_id"))
)
_set_password_hash = Prepared(
    lambda: (
        update(users)
        .where(users.c.id == bindparam("user_id"))
        .values(password_hash=bindparam("ph"))
    )
)


# Any fixed number: the PostgreSQL advisory lock role changes take.
_ROLES_LOCK = 0x726F6C6573  # "roles"
_lock_roles = Prepared(
    lambda: select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger)))
)
_set_role = Prepared(
    lambda: update(users).where(users.c.id == bindparam("user_id")).values(role=bindparam("role"))
)
_set_tier = Prepared(
    lambda: update(users).where(users.c.id == bindparam("user_id")).values(tier=bindparam("tier"))
)
_count_with_role = Prepared(
    lambda: select(func.count()).select_from(users).where(users.c.role == bindparam("role"))
)
_users_page = Prepared(
    lambda: (
        select(*USER_COLUMNS)
        .where(users.c.phone > bindparam("after"))
        .order_by(users.c.phone)
        .limit(bindparam("lim"))
    )
)


# A stored role or tier to its member by a dict look-up (see `ledger_repository._KIND_OF`).
_ROLE_OF = {role.value: role for role in Role}
_TIER_OF = {tier.value: tier for tier in Tier}


def user_from_row(row: Sequence[Any]) -> User:
    role = _ROLE_OF.get(row[5]) or Role(row[5])
    tier = _TIER_OF.get(row[6]) or Tier(row[6])
    return User(row[0], row[1], row[2], row[3], row[4], role, tier)


class SqlUserRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def add(self, user: User, password_hash: str) -> None:
        self._sql.write(
            _insert_user,
            {
                "id": user.id,
                "phone": user.phone,
                "display_name": user.display_name,
                "email": user.email,
                "password_hash": password_hash,
                "created_at": user.created_at,
                "role": user.role.value,
            },
        )

    def by_id(self, user_id: str) -> User | None:
        row = self._sql.one(_user_by_id, {"user_id": user_id})
        return user_from_row(row) if row is not None else None

    def by_phone(self, phone: str) -> User | None:
        row = self._sql.one(_user_by_phone, {"phone": phone})
        return user_from_row(row) if row is not None else None

    def password_hash(self, user_id: str) -> str:
        row = self._sql.one(_password_hash, {"user_id": user_id})
        if row is None:
            raise LookupError(f"no user {user_id}")
        return str(row[0])

    def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self._sql.write(_set_password_hash, {"user_id": user_id, "ph": password_hash})

    def lock_roles(self) -> None:
        """Make role changes take turns until the transaction ends (SQLite's writers already do):
        two first admins at once, or two admins demoting each other, cannot both succeed."""
        if self._sql.dialect_name == "postgresql":
            self._sql.one(_lock_roles, {"key": _ROLES_LOCK})

    def set_role(self, user_id: str, role: Role) -> None:
        self._sql.write(_set_role, {"user_id": user_id, "role": role.value})

    def set_tier(self, user_id: str, tier: Tier) -> None:
        self._sql.write(_set_tier, {"user_id": user_id, "tier": tier.value})

    def count_with_role(self, role: Role) -> int:
        row = self._sql.one(_count_with_role, {"role": role.value})
        return int(row[0]) if row is not None else 0

    def page(self, *, limit: int, after_phone: str | None) -> list[User]:
        """Users in phone order, `limit` at a time, after `after_phone`."""
        rows = self._sql.all(_users_page, {"after": after_phone or "", "lim": limit})
        return [user_from_row(row) for row in rows]


_transfer_by_id = Prepared(
    lambda: (
        select(
            transfers.c.id,
            transfers.c.sender_user_id,
            senders.c.phone,
            transfers.c.recipient_user_id,
            recipients.c.phone,
            transfers.c.amount,
            transfers.c.currency,
            transfers.c.note,
            transfers.c.created_at,
            transfers.c.fee,
        )
        .join(senders, senders.c.id == transfers.c.sender_user_id)
        .join(recipients, recipients.c.id == transfers.c.recipient_user_id)
        .where(transfers.c.id == bindparam("transfer_id"))
    )
)
_insert_transfer = Prepared(
    lambda: insert_into(
        transfers,
        "id",
        "sender_user_id",
        "recipient_user_id",
        "amount",
        "currency",
        "note",
        "created_at",
        "fee",
        micros=("created_at",),
    )
)
_topup_by_id = Prepared(
    lambda: select(
        topups.c.id,
        topups.c.user_id,
        topups.c.source,
        topups.c.amount,
        topups.c.currency,
        topups.c.created_at,
    ).where(topups.c.id == bindparam("topup_id"))
)
_insert_topup = Prepared(
    lambda: insert_into(topups, "id", "user_id", "source", "amount", "currency", "created_at")
)


class SqlTransferRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def add_transfer(self, transfer: Transfer) -> None:
        self._sql.write(
            _insert_transfer,
            {
                "id": transfer.id,
                "sender_user_id": transfer.sender_user_id,
                "recipient_user_id": transfer.recipient_user_id,
                "amount": transfer.amount.minor,
                "currency": transfer.amount.currency,
                "note": transfer.note,
                "created_at": utc_micros(transfer.created_at),
                "fee": transfer.fee_minor,
            },
        )

    def transfer(self, transfer_id: str) -> Transfer | None:
        row = self._sql.one(_transfer_by_id, {"transfer_id": transfer_id})
        if row is None:
            return None
        return Transfer(
            row[0], row[1], row[2], row[3], row[4], Money(row[5], row[6]), row[7], row[8],
            int(row[9]),
        )  # fmt: skip

    def add_topup(self, topup: TopUp) -> None:
        self._sql.write(
            _insert_topup,
            {
                "id": topup.id,
                "user_id": topup.user_id,
                "source": topup.source,
                "amount": topup.amount.minor,
                "currency": topup.amount.currency,
                "created_at": topup.created_at,
            },
        )

    def topup(self, topup_id: str) -> TopUp | None:
        row = self._sql.one(_topup_by_id, {"topup_id": topup_id})
        if row is None:
            return None
        return TopUp(row[0], row[1], row[2], Money(row[3], row[4]), row[5])


_key_lookup = Prepared(
    lambda: select(
        idempotency_keys.c.operation,
        idempotency_keys.c.fingerprint,
        idempotency_keys.c.result_id,
        idempotency_keys.c.refusal_code,
        idempotency_keys.c.refusal_message,
    ).where(
        idempotency_keys.c.scope == bindparam("scope"), idempotency_keys.c.key == bindparam("key")
    )
)
_keep_refusal = Prepared(
    lambda: (
        update(idempotency_keys)
        .where(
            idempotency_keys.c.scope == bindparam("scope"),
            idempotency_keys.c.key == bindparam("key"),
        )
        .values(refusal_code=bindparam("code"), refusal_message=bindparam("message"))
    )
)
_KEY_FIELDS = ("scope", "key", "operation", "fingerprint", "result_id", "created_at")
_KEY_TYPES = {"created_at": BigInteger()}


# Taking a key is one statement: it inserts, or finds the key taken and does nothing. On
# PostgreSQL a concurrent first use of the same key waits here until the other one commits.
def _claim_statement(dialect: str) -> ClauseElement:
    statement: ClauseElement = (
        dialect_insert(dialect)(idempotency_keys)
        .values(  # the time bound as microseconds (see `prepared.insert_into`)
            {name: bindparam(name, type_=_KEY_TYPES.get(name)) for name in _KEY_FIELDS}
        )
        .on_conflict_do_nothing(index_elements=["scope", "key"])
    )
    return statement


_claim_key = Prepared({name: partial(_claim_statement, name) for name in ("sqlite", "postgresql")})


class SqlIdempotencyRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def find(self, scope: str, key: str) -> IdempotencyRecord | None:
        row = self._sql.one(_key_lookup, {"scope": scope, "key": key})
        return None if row is None else _record(row)

    def keep_refusal(self, scope: str, key: str, refusal: Refusal) -> None:
        self._sql.write(
            _keep_refusal,
            {"scope": scope, "key": key, "code": refusal.code, "message": refusal.message},
        )

    def claim(
        self, scope: str, key: str, record: IdempotencyRecord, created_at: datetime
    ) -> IdempotencyRecord | None:
        return self.claim_later(scope, key, record, created_at)()

    def claim_later(
        self, scope: str, key: str, record: IdempotencyRecord, created_at: datetime
    ) -> Callable[[], IdempotencyRecord | None]:
        taken = self._sql.count_later(
            _claim_key,
            {
                "scope": scope,
                "key": key,
                "operation": record.operation,
                "fingerprint": record.fingerprint,
                "result_id": record.result_id,
                "created_at": utc_micros(created_at),
            },
        )

        def outcome() -> IdempotencyRecord | None:
            if taken() == 1:
                return None
            row = self._sql.one(_key_lookup, {"scope": scope, "key": key})
            if row is None:  # pragma: no cover - the conflicting row is committed, never deleted
                raise ConcurrencyConflict("an idempotency key vanished while it was being claimed")
            return _record(row)

        return outcome


def _record(row: tuple[Any, ...]) -> IdempotencyRecord:
    operation, fingerprint, result_id, refusal_code, refusal_message = row
    refusal = None if refusal_code is None else Refusal(refusal_code, refusal_message or "")
    return IdempotencyRecord(operation, fingerprint, result_id, refusal)
