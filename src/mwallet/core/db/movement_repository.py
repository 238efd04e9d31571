"""A wallet's postings as history and statements read them: keyset pages on the account's index.

An account's postings each have a time of their own, strictly increasing in the order its balance
followed them (`ledger_repository.post`), so every read walks `postings(account_id, created_at)`
from a bound in time, newest or oldest first, and stops after `limit` rows: a page costs the same
for an account with ten postings or a million, and a period of dates is a range of that index
itself. A debit's fee is found through `postings(entry_id)`; the entry's withdrawal or payment by
its `ref_id`. Each lookup runs only for the entry kinds it serves, and a statement's batches are
read ahead on PostgreSQL (`SqlMovementRepository.batches`).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    type_coerce,
)

from mwallet.core.db.ledger_queries import NO_JIT, other_party
from mwallet.core.db.prepared import Prepared
from mwallet.core.db.tables import (
    accounts,
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
from mwallet.core.domain.ledger import EntryKind, fees_account_code
from mwallet.core.domain.movements import PostingRow, StatementBatch, WalletPosting

# Written into the SQL: no parameter type to guess.
_ZERO = literal_column("0", BigInteger)
_COMPLETED = literal_column("'completed'", String)


def _posted() -> ColumnElement[int]:
    """The postings' time as the integer microseconds it is stored as: compared with bounds in
    microseconds, and read back with no conversion (a function: the table is built on first use)."""
    return type_coerce(postings.c.created_at, BigInteger)


_balance_before = Prepared(
    lambda: (
        select(postings.c.balance_after)
        .where(
            postings.c.account_id == bindparam("acct"),
            _posted() < bindparam("at", type_=BigInteger),
        )
        .order_by(_posted().desc())
        .limit(1)
    )
)
_count = Prepared(
    lambda: select(func.count()).where(
        postings.c.account_id == bindparam("acct"),
        _posted() >= bindparam("low", type_=BigInteger),
        _posted() < bindparam("high", type_=BigInteger),
    )
)


_TRANSFER_KINDS = (EntryKind.TRANSFER.value, EntryKind.CASH_IN.value)
_WITHDRAWAL_KINDS = (EntryKind.HOLD.value, EntryKind.CAPTURE.value, EntryKind.RELEASE.value)
# The kinds whose wallet debit holds its fee in the withdrawal's or payment's row (`held_fee`):
# what their entry credits to FEES is not read.
_HELD_FEE_KINDS = (EntryKind.HOLD.value, EntryKind.PAYMENT_HOLD.value)


def _one_of(kind: ColumnElement[Any], values: tuple[str, ...]) -> ColumnElement[bool]:
    # Not IN (...): an expanding parameter cannot be prepared once.
    return or_(*(kind == value for value in values))


def _lookups(party_ids: bool) -> tuple[ColumnElement[Any], ...]:
    """What the posting's entry, and its transfer, top-up, withdrawal or payment, say about it:
    (fee_credit, held_fee, product, counterparty, note, state).

    Each lookup is made only for the entry kinds it serves (a scalar subquery in a CASE runs only
    when its branch is taken): a transfer reads its transfer and the other party, not a top-up,
    a biller or a withdrawer; a credit reads no fee. With `party_ids`, a transfer's counterparty
    is the other party's user id, not their phone (a statement finds the phones itself).
    """
    kind = journal_entries.c.kind
    amount = postings.c.amount
    is_transfer = _one_of(kind, _TRANSFER_KINDS)
    is_withdrawal = _one_of(kind, _WITHDRAWAL_KINDS)
    is_topup = kind == EntryKind.TOPUP.value
    fee_credit = case(
        (amount >= 0, _ZERO),
        # A transfer's row holds its fee (what its entry credited to FEES, written with it): no
        # probe of the entry's postings for most of a wallet's debits.
        (is_transfer, transfers.c.fee),
        (~_one_of(kind, _HELD_FEE_KINDS), _fees_credited(postings.c.entry_id)),
        else_=_ZERO,
    )
    held_fee = case(
        (is_withdrawal, func.coalesce(withdrawals.c.fee, _ZERO)),
        (or_(is_transfer, is_topup), _ZERO),
        else_=func.coalesce(payments.c.fee, _ZERO),
    )
    phone_of = users.alias("party")
    counterparty = case(
        (
            is_transfer,
            other_party(amount)
            if party_ids
            else select(phone_of.c.phone)
            .where(phone_of.c.id == other_party(amount))
            .scalar_subquery(),
        ),
        (
            is_topup,
            select(topups.c.source).where(topups.c.id == postings.c.entry_id).scalar_subquery(),
        ),
        # The customer sees the channel; the agent who paid it out sees the customer.
        (
            kind == EntryKind.CAPTURE.value,
            select(phone_of.c.phone)
            .where(phone_of.c.id == withdrawals.c.user_id)
            .scalar_subquery(),
        ),
        (is_withdrawal, withdrawals.c.channel),
        else_=select(billers.c.name).where(billers.c.id == payments.c.biller_id).scalar_subquery(),
    )
    note = case(
        (is_transfer, transfers.c.note),
        (or_(is_topup, is_withdrawal), null()),
        else_=payments.c.reference,
    )
    state = case(
        (is_withdrawal, func.coalesce(withdrawals.c.state, _COMPLETED)),
        (or_(is_transfer, is_topup), _COMPLETED),
        else_=func.coalesce(payments.c.state, _COMPLETED),
    )
    return fee_credit, held_fee, payments.c.product, counterparty, note, state


def _fees_credited(entry_id: ColumnElement[Any]) -> ColumnElement[Any]:
    """What the entry `entry_id` credited to the fees account of the wallet's currency (a
    transfer's fee): its postings on that one account, found by the entry's index.

    There is one account of kind FEES per currency (`fees:<currency>`, `ledger.house_account`);
    it is looked up once per query by its code, not once per posting by each posting's account
    (which made the statement's query twice as slow on PostgreSQL). A whole number (a sum is
    NUMERIC on PostgreSQL), so rows come back as ints."""
    fee_posting = postings.alias("fee_posting")
    wallet = accounts.alias("wallet")
    fees_account = accounts.alias("fees_account")
    currency = select(wallet.c.currency).where(wallet.c.id == bindparam("acct")).scalar_subquery()
    fees_id = (
        select(fees_account.c.id)
        .where(fees_account.c.code == literal(fees_account_code(""), String) + currency)
        .scalar_subquery()
    )
    return cast(
        select(func.coalesce(func.sum(fee_posting.c.amount), _ZERO))
        .where(fee_posting.c.entry_id == entry_id, fee_posting.c.account_id == fees_id)
        .scalar_subquery(),
        BigInteger,
    )


@lru_cache(maxsize=64)
def _page(
    kinds: tuple[str, ...] | None, sign: int, newest_first: bool, party_ids: bool = False
) -> Prepared:
    """Postings of one account made in [low, high) (microseconds since the epoch), at least
    `min` in size, `lim` of them (with `party_ids`, a transfer's counterparty as a user id:
    `_lookups`)."""

    def build() -> Any:
        where = [
            postings.c.account_id == bindparam("acct"),
            _posted() >= bindparam("low", type_=BigInteger),
            _posted() < bindparam("high", type_=BigInteger),
        ]
        if kinds is not None:
            where.append(or_(*(journal_entries.c.kind == kind for kind in kinds)))
        if sign:
            where.append(postings.c.amount > 0 if sign > 0 else postings.c.amount < 0)
        return (
            select(
                postings.c.entry_id,
                journal_entries.c.kind,
                # Raw microseconds: no result processor, so rows come back as the driver made them.
                _posted(),
                postings.c.amount,
                postings.c.balance_after,
                postings.c.currency,
                *_lookups(party_ids),
            )
            .join(journal_entries, journal_entries.c.id == postings.c.entry_id)
            .outerjoin(transfers, transfers.c.id == postings.c.entry_id)
            .outerjoin(withdrawals, withdrawals.c.id == journal_entries.c.ref_id)
            .outerjoin(payments, payments.c.id == journal_entries.c.ref_id)
            .where(and_(*where), func.abs(postings.c.amount) >= bindparam("min"))
            .order_by(_posted().desc() if newest_first else _posted())
            .limit(bindparam("lim"))
        )

    return Prepared(build)


# A statement's batches plan as nested loops over a few hundred index lookups each; PostgreSQL's
# cost estimate for the open-ended range would otherwise compile them to machine code each time
# (~20 ms a batch, longer than the batch itself takes to run): `NO_JIT`.
# Nor does it cache the journal entries it looks up by id (Memoize): a wallet's postings are each
# in an entry of its own, so the cache never hits, and keeping it costs ~10% of the query's time.
_NO_MEMOIZE = Prepared(lambda: text("SET LOCAL enable_memoize = off"))
# Nor does it start parallel workers for a batch: it planned them for the first batches of a
# million-movement history (custom plans, before the prepared statement's generic one), each
# batch then waiting ~6-10 ms for its workers to start, on a query that takes ~15 ms alone.
_NO_PARALLEL = Prepared(lambda: text("SET LOCAL max_parallel_workers_per_gather = 0"))


# The other party of a statement's transfers: their phones, read this many users at a time (a
# fixed list of parameters, so the query is prepared once; the last id fills the unused ones).
_PHONES_AT_ONCE = 100
_phones = Prepared(
    lambda: select(users.c.id, users.c.phone).where(
        users.c.id.in_([bindparam(f"u{n}") for n in range(_PHONES_AT_ONCE)])
    )
)
# Phones a statement keeps (~200 bytes each): it forgets them all when it meets more people than
# this, so its memory stays bounded whatever the history's length and however many people in it.
PHONES_KEPT = 20_000


def _postings_from(rows: Sequence[Sequence[Any]]) -> list[WalletPosting]:
    """WalletPostings of rows of `_page`, whose columns are WalletPosting's, in its order."""
    return list(map(WalletPosting._make, rows))


class SqlMovementRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def balance_before(self, account_id: int, at: int) -> int:
        row = self._sql.one(_balance_before, {"acct": account_id, "at": at})
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
        return _postings_from(self._sql.all(query, params))

    def _phones_of(
        self, rows: list[PostingRow], phones: dict[str | None, str | None]
    ) -> dict[str | None, str | None]:
        """The phones of the other parties that `rows` (of `_page(..., party_ids=True)`) name
        by user id: `phones` (a statement's) with those it did not know yet, read a hundred at a
        time; or, once it would hold more than `PHONES_KEPT`, a new dict of this batch's alone
        (not `phones` emptied: the batch before may still be read with it).

        A person's history names the same people again and again, and each one looked up in
        the query costs an index probe of `users` (measured on a million-movement history: ~30%
        of PostgreSQL's time for the statement's query, ~25% of SQLite's)."""
        kinds = _TRANSFER_KINDS
        parties = {row[9] for row in rows if row[1] in kinds}
        unknown = parties.difference(phones)
        if unknown:
            if len(phones) + len(unknown) > PHONES_KEPT:
                phones, unknown = {}, parties
            wanted = sorted(unknown)  # type: ignore[type-var] # user ids: never None
            for start in range(0, len(wanted), _PHONES_AT_ONCE):
                some = wanted[start : start + _PHONES_AT_ONCE]
                some += some[-1:] * (_PHONES_AT_ONCE - len(some))
                phones.update(dict.fromkeys(some))  # None if not found, as the query's would be
                phones.update(self._sql.all(_phones, {f"u{n}": id_ for n, id_ in enumerate(some)}))
        return phones

    def batches(
        self, account_id: int, *, low: int, high: int, size: int
    ) -> Generator[StatementBatch, None, None]:
        """On PostgreSQL, each batch is read while the caller works through the one before: the
        server runs the query while the driver waits without the GIL, so a statement costs about
        the slower of the two, not their sum. One thread reads at a time, on this transaction's
        connection, so every batch sees the same snapshot; leaving early waits for the batch
        being read. SQLite runs in this process (each row it steps through takes the GIL back),
        so there the batches are read in turn. Transfers name their other party by user id,
        with the phones beside (`_phones_of`)."""
        if low >= high:
            return
        query = _page(None, 0, False, party_ids=True)
        known: dict[str | None, str | None] = {}

        def read(after: int) -> StatementBatch:
            nonlocal known
            params = {"acct": account_id, "low": after, "high": high, "min": 0, "lim": size}
            rows = self._sql.all(query, params)
            known = self._phones_of(rows, known)
            return StatementBatch(rows, known)

        if self._sql.dialect_name != "postgresql":
            while True:
                batch = read(low)
                yield batch
                if len(batch.rows) < size:
                    return
                low = batch.rows[-1][2] + 1  # a microsecond after its time
        self._sql.write(NO_JIT, {})
        self._sql.write(_NO_MEMOIZE, {})
        self._sql.write(_NO_PARALLEL, {})
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="statement") as reader:
            pending = reader.submit(read, low)
            while True:
                batch = pending.result()
                if len(batch.rows) < size:
                    yield batch
                    return
                pending = reader.submit(read, batch.rows[-1][2] + 1)
                yield batch
