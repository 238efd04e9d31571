"""SQL repositories of bill payments: billers and payments. A payment's state changes are
conditional UPDATEs from the state it leaves (`... WHERE state = :from RETURNING`), so a
reconciliation and a late callback racing on one payment cannot both settle it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update

from mwallet.core.db.prepared import Prepared, dialect_insert, insert_into
from mwallet.core.db.tables import billers, payments
from mwallet.core.db.transaction import SqlTransaction
from mwallet.core.domain.money import Money
from mwallet.core.domain.payments import (
    Biller,
    Category,
    CheckDigit,
    Payment,
    PaymentState,
    Product,
)

_BILLER_COLUMNS = (
    billers.c.id, billers.c.name, billers.c.category, billers.c.currency, billers.c.min_amount,
    billers.c.max_amount, billers.c.provider, billers.c.pattern, billers.c.check_digit,
    billers.c.active,
)  # fmt: skip


def _biller(row: Sequence[Any]) -> Biller:
    return Biller(
        id=str(row[0]),
        name=str(row[1]),
        category=Category(row[2]),
        currency=str(row[3]),
        min_minor=int(row[4]),
        max_minor=int(row[5]),
        provider=str(row[6]),
        pattern=str(row[7]),
        check=CheckDigit(row[8]),
        active=bool(row[9]),
    )


def _insert_biller(dialect: str) -> Any:
    names = ("id", "name", "category", "currency", "min_amount", "max_amount", "provider",
             "pattern", "check_digit", "active", "created_at")  # fmt: skip
    return (
        dialect_insert(dialect)(billers)
        .values({name: bindparam(name) for name in names})
        .on_conflict_do_nothing(index_elements=["id"])
    )


_add_biller = Prepared(
    {"sqlite": lambda: _insert_biller("sqlite"), "postgresql": lambda: _insert_biller("postgresql")}
)
_biller_by_id = Prepared(lambda: select(*_BILLER_COLUMNS).where(billers.c.id == bindparam("id")))
_all_billers = Prepared(lambda: select(*_BILLER_COLUMNS).order_by(billers.c.category, billers.c.id))
_set_active = Prepared(
    lambda: (
        update(billers)
        .where(billers.c.id == bindparam("id"))
        .values(active=bindparam("active"))
        .returning(billers.c.id)
    )
)

_COLUMNS = (
    payments.c.id, payments.c.user_id, payments.c.biller_id, payments.c.reference,
    payments.c.amount, payments.c.fee, payments.c.currency, payments.c.state,
    payments.c.created_at, payments.c.updated_at, payments.c.provider_ref, payments.c.reason,
    payments.c.product,
)  # fmt: skip


def _payment(row: Sequence[Any]) -> Payment:
    currency = str(row[6])
    return Payment(
        id=str(row[0]),
        user_id=str(row[1]),
        biller_id=str(row[2]),
        reference=str(row[3]),
        amount=Money(int(row[4]), currency),
        fee=Money(int(row[5]), currency),
        state=PaymentState(row[7]),
        created_at=row[8],
        updated_at=row[9],
        provider_ref=row[10],
        reason=row[11],
        product=Product(row[12]),
    )


_add = Prepared(
    lambda: insert_into(
        payments,
        "id",
        "user_id",
        "biller_id",
        "reference",
        "amount",
        "fee",
        "currency",
        "state",
        "provider_ref",
        "reason",
        "created_at",
        "updated_at",
        "product",
    )
)
_get = Prepared(lambda: select(*_COLUMNS).where(payments.c.id == bindparam("id")))
_move = Prepared(
    lambda: (
        update(payments)
        .where(payments.c.id == bindparam("id"), payments.c.state == bindparam("from_state"))
        .values(
            state=bindparam("to_state"),
            updated_at=bindparam("at"),
            provider_ref=bindparam("provider_ref"),
            reason=bindparam("reason"),
        )
        .returning(*_COLUMNS)
    )
)
_of_user = Prepared(
    lambda: (
        select(*_COLUMNS)
        .where(payments.c.user_id == bindparam("user_id"))
        .order_by(payments.c.created_at.desc(), payments.c.id.desc())
        .limit(bindparam("lim"))
    )
)
_unsettled = Prepared(
    lambda: (
        select(*_COLUMNS)
        .where(
            or_(
                payments.c.state == PaymentState.UNKNOWN.value,
                and_(
                    payments.c.state == PaymentState.PENDING.value,
                    payments.c.updated_at <= bindparam("stale"),
                ),
            )
        )
        .order_by(payments.c.updated_at, payments.c.id)
        .limit(bindparam("lim"))
    )
)


_held = Prepared(
    lambda: select(func.coalesce(func.sum(payments.c.amount + payments.c.fee), 0)).where(
        payments.c.user_id == bindparam("user_id"),
        payments.c.product != Product.TOPUP.value,  # money coming in holds nothing
        or_(
            payments.c.state == PaymentState.PENDING.value,
            payments.c.state == PaymentState.UNKNOWN.value,
        ),
    )
)

_topups_unsettled = Prepared(
    lambda: select(func.count()).where(
        payments.c.user_id == bindparam("user_id"),
        payments.c.product == Product.TOPUP.value,
        or_(
            payments.c.state == PaymentState.PENDING.value,
            payments.c.state == PaymentState.UNKNOWN.value,
        ),
    )
)


class SqlPaymentRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def add_biller(self, biller: Biller, at: datetime) -> bool:
        params = {
            "id": biller.id, "name": biller.name, "category": biller.category.value,
            "currency": biller.currency, "min_amount": biller.min_minor,
            "max_amount": biller.max_minor, "provider": biller.provider,
            "pattern": biller.pattern, "check_digit": biller.check.value,
            "active": biller.active, "created_at": at,
        }  # fmt: skip
        return self._sql.count(_add_biller, params) == 1

    def biller(self, biller_id: str) -> Biller | None:
        row = self._sql.one(_biller_by_id, {"id": biller_id})
        return None if row is None else _biller(row)

    def billers(self) -> list[Biller]:
        return [_biller(row) for row in self._sql.all(_all_billers, {})]

    def set_biller_active(self, biller_id: str, active: bool) -> bool:
        return self._sql.one(_set_active, {"id": biller_id, "active": active}) is not None

    def add(self, payment: Payment) -> None:
        self._sql.write(
            _add,
            {
                "id": payment.id, "user_id": payment.user_id, "biller_id": payment.biller_id,
                "reference": payment.reference, "amount": payment.amount.minor,
                "fee": payment.fee.minor, "currency": payment.amount.currency,
                "state": payment.state.value, "provider_ref": payment.provider_ref,
                "reason": payment.reason, "created_at": payment.created_at,
                "updated_at": payment.updated_at, "product": payment.product.value,
            },
        )  # fmt: skip

    def get(self, payment_id: str) -> Payment | None:
        row = self._sql.one(_get, {"id": payment_id})
        return None if row is None else _payment(row)

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
        row = self._sql.one(
            _move,
            {
                "id": payment_id, "from_state": from_state.value, "to_state": to_state.value,
                "at": at, "provider_ref": provider_ref[:64] if provider_ref else None,
                "reason": reason[:200] if reason else None,
            },
        )  # fmt: skip
        return None if row is None else _payment(row)

    def held_for(self, user_id: str) -> int:
        row = self._sql.one(_held, {"user_id": user_id})
        return 0 if row is None else int(row[0])

    def topups_unsettled(self, user_id: str) -> int:
        row = self._sql.one(_topups_unsettled, {"user_id": user_id})
        return 0 if row is None else int(row[0])

    def of_user(self, user_id: str, *, limit: int) -> list[Payment]:
        return [
            _payment(row) for row in self._sql.all(_of_user, {"user_id": user_id, "lim": limit})
        ]

    def unsettled(self, *, stale_before: datetime, limit: int) -> list[Payment]:
        rows = self._sql.all(_unsettled, {"stale": stale_before, "lim": limit})
        return [_payment(row) for row in rows]
