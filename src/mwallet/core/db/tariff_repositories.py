"""SQL repository of tariffs and limits, and of what a user has moved since a moment (the amounts
their limits count: transfers sent, withdrawals not cancelled or expired, payments not failed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select

from mwallet.core.db.prepared import Prepared, insert_into
from mwallet.core.db.tables import (
    accounts,
    journal_entries,
    limits,
    payments,
    postings,
    tariffs,
    transfers,
    users,
    withdrawals,
)
from mwallet.core.db.transaction import SqlTransaction
from mwallet.core.domain.ledger import EntryKind, wallet_account_code
from mwallet.core.domain.payments import PaymentState
from mwallet.core.domain.tariffs import Limit, LimitFamily, Movement, Tariff, Tier
from mwallet.core.domain.withdrawals import COUNTED

_all_tariffs = Prepared(
    lambda: select(tariffs.c.movement, tariffs.c.rule).order_by(tariffs.c.movement)
)
_delete_tariff = Prepared(
    lambda: delete(tariffs).where(tariffs.c.movement == bindparam("movement"))
)
_insert_tariff = Prepared(lambda: insert_into(tariffs, "movement", "rule", "updated_at"))

_limit = Prepared(
    lambda: select(limits.c.daily, limits.c.monthly).where(
        limits.c.family == bindparam("family"), limits.c.tier == bindparam("tier")
    )
)
# A movement's terms in one round trip: the user's tier, their tier's stored limit of the
# movement's family (if any), and the movement's tariff (if any).
_terms = Prepared(
    lambda: (
        select(
            users.c.tier,
            limits.c.family,
            limits.c.daily,
            limits.c.monthly,
            select(tariffs.c.rule)
            .where(tariffs.c.movement == bindparam("movement"))
            .scalar_subquery(),
        )
        .select_from(
            users.outerjoin(
                limits, and_(limits.c.tier == users.c.tier, limits.c.family == bindparam("family"))
            )
        )
        .where(users.c.id == bindparam("user_id"))
    )
)
_all_limits = Prepared(
    lambda: select(limits.c.family, limits.c.tier, limits.c.daily, limits.c.monthly).order_by(
        limits.c.family, limits.c.tier
    )
)
_delete_limit = Prepared(
    lambda: delete(limits).where(
        limits.c.family == bindparam("family"), limits.c.tier == bindparam("tier")
    )
)
_insert_limit = Prepared(lambda: insert_into(limits, "family", "tier", "daily", "monthly"))

# Transfers the user sent (not cash-in from an agent's float: that is the agent's trade), found
# through their wallet's postings of the period (the postings(account_id, created_at) index
# history uses): no index of its own to keep up on every transfer.
_sent = Prepared(
    lambda: (
        select(func.coalesce(func.sum(transfers.c.amount), 0))
        .select_from(
            accounts.join(postings, postings.c.account_id == accounts.c.id)
            .join(journal_entries, journal_entries.c.id == postings.c.entry_id)
            .join(transfers, transfers.c.id == postings.c.entry_id)
        )
        .where(
            accounts.c.code == bindparam("wallet"),
            postings.c.created_at >= bindparam("since"),
            postings.c.amount < 0,
            journal_entries.c.kind == EntryKind.TRANSFER.value,
        )
    )
)
_withdrawn = Prepared(
    lambda: select(func.coalesce(func.sum(withdrawals.c.amount), 0)).where(
        withdrawals.c.user_id == bindparam("user_id"),
        withdrawals.c.created_at >= bindparam("since"),
        or_(*(withdrawals.c.state == state.value for state in sorted(COUNTED))),
    )
)
_paid = Prepared(
    lambda: select(func.coalesce(func.sum(payments.c.amount), 0)).where(
        payments.c.user_id == bindparam("user_id"),
        payments.c.created_at >= bindparam("since"),
        payments.c.product == bindparam("product"),
        payments.c.state != PaymentState.FAILED.value,
    )
)

# A stored tier to its member by a dict look-up (see `ledger_repository._KIND_OF`): every
# movement reads the sender's.
_TIER_OF = {tier.value: tier for tier in Tier}


class SqlTariffRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def tariffs(self) -> dict[Movement, Tariff]:
        return {
            Movement(row[0]): Tariff.from_json(str(row[1]))
            for row in self._sql.all(_all_tariffs, {})
        }

    def set_tariff(self, movement: Movement, tariff: Tariff | None, now: datetime) -> None:
        self._sql.write(_delete_tariff, {"movement": movement.value})
        if tariff is not None:
            self._sql.write(
                _insert_tariff,
                {"movement": movement.value, "rule": tariff.to_json(), "updated_at": now},
            )

    def limit(self, family: LimitFamily, tier: Tier) -> Limit | None:
        row = self._sql.one(_limit, {"family": family.value, "tier": tier.value})
        return None if row is None else Limit(family, tier, _int(row[0]), _int(row[1]))

    def terms(self, user_id: str, movement: Movement) -> tuple[Tariff | None, Tier, Limit | None]:
        return self.terms_later(user_id, movement)()

    def terms_later(
        self, user_id: str, movement: Movement
    ) -> Callable[[], tuple[Tariff | None, Tier, Limit | None]]:
        family = movement.family
        read = self._sql.one_later(
            _terms, {"user_id": user_id, "family": family.value, "movement": movement.value}
        )

        def terms() -> tuple[Tariff | None, Tier, Limit | None]:
            row = read()
            if row is None:
                raise LookupError(f"no user {user_id}")
            return _terms_of(family, row)

        return terms

    def limits(self) -> list[Limit]:
        return [
            Limit(LimitFamily(row[0]), Tier(row[1]), _int(row[2]), _int(row[3]))
            for row in self._sql.all(_all_limits, {})
        ]

    def set_limit(self, limit: Limit) -> None:
        keys = {"family": limit.family.value, "tier": limit.tier.value}
        self._sql.write(_delete_limit, keys)
        self._sql.write(
            _insert_limit, {**keys, "daily": limit.daily_minor, "monthly": limit.monthly_minor}
        )

    def moved_since(self, user_id: str, family: LimitFamily, since: datetime) -> int:
        """The amounts of `family` the user has moved since `since` (fees not counted)."""
        params = {"user_id": user_id, "since": since}
        if family is LimitFamily.TRANSFER:
            row = self._sql.one(_sent, {"wallet": wallet_account_code(user_id), "since": since})
        elif family is LimitFamily.WITHDRAWAL:
            row = self._sql.one(_withdrawn, params)
        else:  # bill, airtime, top-up: the payment's product has the family's name
            row = self._sql.one(_paid, {**params, "product": family.value})
        return 0 if row is None else int(row[0])


@lru_cache(maxsize=256)
def _terms_of(
    family: LimitFamily, row: tuple[Any, ...]
) -> tuple[Tariff | None, Tier, Limit | None]:
    """A stored tier, limit and tariff (`_terms`' row) as the domain's, made once per distinct row:
    every movement reads them, and they are immutable values that change only when an admin
    changes them (then the row differs, and is made anew)."""
    tier = _TIER_OF.get(row[0]) or Tier(row[0])
    limit = None if row[1] is None else Limit(family, tier, _int(row[2]), _int(row[3]))
    return (None if row[4] is None else Tariff.from_json(str(row[4]))), tier, limit


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))
