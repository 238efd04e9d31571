"""A wallet's postings as history and statements read them: keyset pages on the account's index.

Every read walks `postings(account_id, id)` from a bound, newest or oldest first, and stops after
`limit` rows, so a page costs the same for an account with ten postings or a million. A period of
dates becomes a range of posting ids through `postings(account_id, created_at, id)`; a debit's fee
is found through `postings(entry_id)`; the entry's withdrawal or payment by its `ref_id`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    type_coerce,
)

from mwallet.core.db.ledger_queries import entry_fees, other_party
from mwallet.core.db.prepared import Prepared
from mwallet.core.db.tables import (
    billers,
    journal_entries,
    payments,
    postings,
    topups,
    transfers,
    users,
    withdrawals,
)
from mwallet.core.db.transaction import SqlTransaction
from mwallet.core.domain.ledger import EntryKind
from mwallet.core.domain.movements import WalletPosting

_withdrawer = users.alias("withdrawer")
_other_party = users.alias("other_party")

_first_at = Prepared(
    lambda: (
        select(postings.c.id)
        .where(postings.c.account_id == bindparam("acct"), postings.c.created_at >= bindparam("at"))
        .order_by(postings.c.created_at, postings.c.id)
        .limit(1)
    )
)
_balance_before = Prepared(
    lambda: (
        select(postings.c.balance_after)
        .where(postings.c.account_id == bindparam("acct"), postings.c.id < bindparam("pid"))
        .order_by(postings.c.id.desc())
        .limit(1)
    )
)
_count = Prepared(
    lambda: select(func.count()).where(
        postings.c.account_id == bindparam("acct"),
        postings.c.id >= bindparam("low"),
        postings.c.id < bindparam("high"),
    )
)


def _fee_credit() -> ColumnElement[Any]:
    """What the posting's entry credited to FEES accounts, for a debit (a credit pays no fee)."""
    return case((postings.c.amount < 0, entry_fees(postings.c.entry_id)), else_=0)


@lru_cache(maxsize=64)
def _page(kinds: tuple[str, ...] | None, sign: int, newest_first: bool) -> Prepared:
    """Postings of one account in [low, high), at least `min` in size, `lim` of them."""

    def build() -> Any:
        where = [
            postings.c.account_id == bindparam("acct"),
            postings.c.id >= bindparam("low"),
            postings.c.id < bindparam("high"),
            func.abs(postings.c.amount) >= bindparam("min"),
        ]
        if kinds is not None:
            where.append(or_(*(journal_entries.c.kind == kind for kind in kinds)))
        if sign:
            where.append(postings.c.amount > 0 if sign > 0 else postings.c.amount < 0)
        return (
            select(
                postings.c.id,
                postings.c.entry_id,
                journal_entries.c.kind,
                # Raw microseconds: no result processor, so rows come back as the driver made them.
                type_coerce(postings.c.created_at, BigInteger),
                postings.c.amount,
                postings.c.currency,
                postings.c.balance_after,
                _fee_credit(),
                _other_party.c.phone,
                transfers.c.note,
                topups.c.source,
                withdrawals.c.state,
                withdrawals.c.fee,
                withdrawals.c.channel,
                _withdrawer.c.phone,
                payments.c.state,
                payments.c.fee,
                payments.c.product,
                payments.c.reference,
                billers.c.name,
            )
            .join(journal_entries, journal_entries.c.id == postings.c.entry_id)
            .outerjoin(transfers, transfers.c.id == postings.c.entry_id)
            # Only the other party of a transfer: one lookup, not two.
            .outerjoin(
                _other_party,
                _other_party.c.id == other_party(postings.c.amount),
            )
            .outerjoin(topups, topups.c.id == postings.c.entry_id)
            .outerjoin(withdrawals, withdrawals.c.id == journal_entries.c.ref_id)
            .outerjoin(_withdrawer, _withdrawer.c.id == withdrawals.c.user_id)
            .outerjoin(payments, payments.c.id == journal_entries.c.ref_id)
            .outerjoin(billers, billers.c.id == payments.c.biller_id)
            .where(and_(*where))
            .order_by(postings.c.id.desc() if newest_first else postings.c.id)
            .limit(bindparam("lim"))
        )

    return Prepared(build)


_KINDS = {kind.value: kind for kind in EntryKind}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WITHDRAWAL_KINDS = frozenset({EntryKind.HOLD, EntryKind.CAPTURE, EntryKind.RELEASE})
_PAYMENT_KINDS = frozenset({EntryKind.PAYMENT_HOLD, EntryKind.PAYMENT, EntryKind.PAYMENT_RELEASE})


def _posting_from(row: Sequence[Any]) -> WalletPosting:
    (pid, entry_id, kind_text, micros, amount, currency, after, fee_credit, other_party,
     transfer_note, source, w_state, w_fee, channel, withdrawer, p_state, p_fee, product,
     reference, biller) = row  # fmt: skip
    kind = _KINDS[kind_text]
    note: str | None = None
    state = "completed"
    held_fee = 0
    if kind is EntryKind.TRANSFER or kind is EntryKind.CASH_IN:
        counterparty, note = other_party, transfer_note
    elif kind is EntryKind.TOPUP:
        counterparty = source
    elif kind in _WITHDRAWAL_KINDS:
        # The customer sees the channel; the agent who paid it out sees the customer.
        counterparty = withdrawer if kind is EntryKind.CAPTURE else channel
        state, held_fee = w_state or state, int(w_fee or 0)
    else:
        counterparty, note = biller, reference
        state, held_fee = p_state or state, int(p_fee or 0)
    return WalletPosting(
        pid, entry_id, kind, _EPOCH + timedelta(microseconds=micros), amount, after, currency,
        int(fee_credit or 0), held_fee, product, counterparty, note, state,
    )  # fmt: skip


class SqlMovementRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def first_at(self, account_id: int, at: datetime) -> int | None:
        row = self._sql.one(_first_at, {"acct": account_id, "at": at})
        return None if row is None else int(row[0])

    def balance_before(self, account_id: int, posting_id: int) -> int:
        row = self._sql.one(_balance_before, {"acct": account_id, "pid": posting_id})
        return 0 if row is None else int(row[0])

    def count(self, account_id: int, low: int, high: int) -> int:
        row = self._sql.one(_count, {"acct": account_id, "low": low, "high": high})
        return 0 if row is None else int(row[0])

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
        query = _page(
            None if kinds is None else tuple(sorted(kind.value for kind in kinds)),
            sign,
            newest_first,
        )
        params = {
            "acct": account_id,
            "low": low,
            "high": high,
            "min": min_minor,
            "lim": limit,
        }
        return [_posting_from(row) for row in self._sql.all(query, params)]
