"""Statistics and operators' reports in SQL: aggregates over the ledger, grouped in the database.

Everything is read from journal entries and postings; the withdrawals and payments tables only say
what a hold became (captured or returned, approved or declined), which product and biller a
payment was and the hold's fee, and a transfer's row its other person and fee. A hold's or a
payment's entry names its withdrawal or payment in `ref_id` (written by `services.withdrawals` and
`services.payments`), which is how an entry finds its row here.

Periods: timestamps are integer microseconds (UTC). A person's periods (months or weeks) are a
little table of bound (start, end) pairs joined to the postings' index; the operators' days are
integer division. Grouping happens over a subquery's columns, so PostgreSQL never has to match an
expression with bound parameters in GROUP BY against the same one in SELECT.
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
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.sql import ClauseElement

from mwallet.core.db.ledger_queries import NO_JIT, entry_fees, other_party
from mwallet.core.db.prepared import Prepared
from mwallet.core.db.tables import (
    accounts,
    billers,
    cassettes,
    journal_entries,
    payments,
    postings,
    terminals,
    transfers,
    users,
    withdrawals,
)
from mwallet.core.db.transaction import SqlTransaction
from mwallet.core.domain.admin_reports import AccountLine, OutstandingHold, TerminalCash
from mwallet.core.domain.ids import first_id_of
from mwallet.core.domain.ledger import AccountKind, EntryKind
from mwallet.core.domain.payments import HOLDING as PAYMENT_HOLDING
from mwallet.core.domain.statistics import (
    Bucket,
    Counterparty,
    MovementGroup,
)
from mwallet.core.domain.withdrawals import HOLDING as WITHDRAWAL_HOLDING

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
DAY_MICROS = 86_400_000_000

je = journal_entries


def _micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _number(value: int) -> ColumnElement[Any]:
    """An integer written into the SQL: no parameter whose type PostgreSQL must guess."""
    return literal_column(str(int(value)), BigInteger)


def _is(column: ColumnElement[Any], *values: str) -> ColumnElement[bool]:
    return or_(*(column == value for value in values))


def _entry_time() -> ColumnElement[int]:
    return type_coerce(je.c.created_at, BigInteger)


def _day_bucket() -> ColumnElement[Any]:
    """Which day since `origin` (micros) an entry falls in."""
    return (_entry_time() - bindparam("origin", type_=BigInteger)) // _number(DAY_MICROS)


def _in_window() -> ColumnElement[bool]:
    """The entries of [start, end): a range of their key (an entry's id is made in the millisecond
    of its time), then the exact times. No index on the entries' time to write at every movement.

    The exact times only trim the range's two edge milliseconds, but PostgreSQL, seeing two ranges
    it takes for independent, would multiply their selectivities and expect a few rows where a
    day holds thousands (a day's report then took 2-3x as long, by nested loops). Inside a CASE
    the times are a condition it cannot see into, counted as half the range's rows: it plans as it
    did with the index on time. SQLite plans the key range either way."""
    exact_times = and_(je.c.created_at >= bindparam("start"), je.c.created_at < bindparam("end"))
    return and_(
        je.c.id >= bindparam("first_id"),
        je.c.id < bindparam("past_id"),
        case((exact_times, true()), else_=false()).is_(True),
    )


def _window(start: datetime, end: datetime) -> dict[str, Any]:
    """The parameters of `_in_window`: every entry of [start, end) has an id from the first id of
    start's millisecond up to, not including, the first id of the millisecond after end's."""
    return {
        "start": start,
        "end": end,
        "first_id": first_id_of(start),
        "past_id": first_id_of(end + _MILLISECOND),
    }


# --- a person's statistics -----------------------------------------------------------------------
# One pass over the wallet's postings of the periods, each period a range of the index on
# (account_id, created_at) (a posting's time: its entry's, or just after its account's last);
# each posting's entry is read by key for its kind, and a transfer's or a hold's row by key for
# the other person and the fee. Nothing runs per posting but reads by key, so the cost grows
# with the postings read, once.


def _spans(count: int) -> Any:
    """The report's periods as a little table (index, first instant, end) of `count` rows, bound
    as s0, e0 … (micros): each period's postings are one range of the account's index, and no
    expression per posting says which period it is in."""
    rows = [
        select(
            _number(index).label("idx"),
            bindparam(f"s{index}", type_=BigInteger).label("lo"),
            bindparam(f"e{index}", type_=BigInteger).label("hi"),
        )
        for index in range(count)
    ]
    return (union_all(*rows) if count > 1 else rows[0]).subquery("spans")


def _usage_query(count: int) -> ClauseElement:
    """One pass over the wallet's postings of the `count` periods, kept (MATERIALIZED) and
    summed twice: per period and what `classify` looks at (part "m"), and per other person of its
    transfers, the top ones named (part "c"). Each posting's entry is read once, by key."""
    spans = _spans(count)
    amount = postings.c.amount
    outgoing = amount < 0
    is_hold = je.c.kind == EntryKind.HOLD.value
    is_payment_hold = je.c.kind == EntryKind.PAYMENT_HOLD.value
    is_transfer = je.c.kind == EntryKind.TRANSFER.value
    # A transfer's (or a cash-in's) row names the other person and says what its entry credited
    # to the fees account.
    has_transfer = _is(je.c.kind, EntryKind.TRANSFER, EntryKind.CASH_IN)
    mine = (
        select(
            spans.c.idx.label("bucket"),
            je.c.kind.label("kind"),
            outgoing.label("outgoing"),  # a boolean: PostgreSQL counts two values
            payments.c.product.label("product"),
            billers.c.category.label("category"),
            func.coalesce(withdrawals.c.state, payments.c.state).label("state"),
            billers.c.id.label("biller_id"),
            billers.c.name.label("biller_name"),
            amount.label("amount"),
            case(
                (is_hold, withdrawals.c.fee),
                (is_payment_hold, payments.c.fee),
                (and_(outgoing, has_transfer), transfers.c.fee),
                # Any other debit of a wallet: what its entry credited to the fees accounts.
                (outgoing, entry_fees(postings.c.entry_id)),
                else_=_number(0),
            ).label("fee"),
            case((is_transfer, other_party(amount))).label("other"),
            case((and_(is_transfer, outgoing), transfers.c.amount), else_=_number(0)).label("sent"),
            case((and_(is_transfer, ~outgoing), transfers.c.amount), else_=_number(0)).label(
                "received"
            ),
        )
        .select_from(spans)
        .join(
            postings,
            and_(
                postings.c.account_id == bindparam("acct"),
                type_coerce(postings.c.created_at, BigInteger) >= spans.c.lo,
                type_coerce(postings.c.created_at, BigInteger) < spans.c.hi,
            ),
        )
        .join(je, je.c.id == postings.c.entry_id)
        .outerjoin(transfers, and_(has_transfer, transfers.c.id == postings.c.entry_id))
        .outerjoin(withdrawals, and_(is_hold, withdrawals.c.id == je.c.ref_id))
        .outerjoin(payments, and_(is_payment_hold, payments.c.id == je.c.ref_id))
        .outerjoin(billers, billers.c.id == payments.c.biller_id)
        .cte("mine")
        .prefix_with("MATERIALIZED")
    )
    keys = (
        mine.c.bucket,
        mine.c.kind,
        mine.c.outgoing,
        mine.c.product,
        mine.c.category,
        mine.c.state,
        mine.c.biller_id,
        mine.c.biller_name,
    )
    groups = select(
        literal("m").label("part"),
        *keys,
        func.count().label("count"),
        func.sum(mine.c.amount).label("total"),
        func.sum(mine.c.fee).label("fees"),
    ).group_by(*keys)
    per_person = (
        select(
            mine.c.other,
            func.count().label("count"),
            func.sum(mine.c.sent).label("sent"),
            func.sum(mine.c.received).label("received"),
        )
        .where(mine.c.other.is_not(None))
        .group_by(mine.c.other)
        .subquery()
    )
    top = (
        select(
            users.c.phone,
            users.c.display_name,
            per_person.c.count,
            per_person.c.sent,
            per_person.c.received,
        )
        .join(users, users.c.id == per_person.c.other)
        .order_by((per_person.c.sent + per_person.c.received).desc(), users.c.phone)
        .limit(bindparam("lim"))
        .subquery()
    )
    # The top people in the columns of a group: phone, name (kind, product); count; sent,
    # received (total, fees). The rows come in no order: each says what it is.
    people = select(
        literal("c"),
        null(),
        top.c.phone,
        null(),
        top.c.display_name,
        null(),
        null(),
        null(),
        null(),
        top.c.count,
        top.c.sent,
        top.c.received,
    )
    return union_all(groups, people)


@lru_cache(maxsize=64)
def _usage(count: int) -> Prepared:
    return Prepared(lambda: _usage_query(count))


# --- operators' reports --------------------------------------------------------------------------
def _volumes_query() -> ClauseElement:
    is_fee = accounts.c.kind == AccountKind.FEES.value
    rows = (
        select(
            _day_bucket().label("day"),
            je.c.id.label("entry_id"),
            je.c.kind.label("kind"),
            payments.c.product.label("product"),
            postings.c.currency.label("currency"),
            case((and_(~is_fee, postings.c.amount > 0), postings.c.amount), else_=_number(0)).label(
                "volume"
            ),
            case((is_fee, postings.c.amount), else_=_number(0)).label("fee"),
        )
        .select_from(je)
        .join(postings, postings.c.entry_id == je.c.id)
        .join(accounts, accounts.c.id == postings.c.account_id)
        .outerjoin(
            payments,
            and_(
                je.c.kind == EntryKind.PAYMENT.value,
                payments.c.id == je.c.ref_id,
            ),
        )
        .where(
            _in_window(),
            _is(
                je.c.kind,
                EntryKind.TRANSFER,
                EntryKind.TOPUP,
                EntryKind.CASH_IN,
                EntryKind.CAPTURE,
                EntryKind.PAYMENT,
            ),
        )
        .subquery()
    )
    keys = (rows.c.day, rows.c.kind, rows.c.product, rows.c.currency)
    return select(
        *keys,
        func.count(rows.c.entry_id.distinct()),
        func.sum(rows.c.volume),
        func.sum(rows.c.fee),
    ).group_by(*keys)


_volumes = Prepared(_volumes_query)


def _wallet_postings() -> Any:
    """Postings on wallets in the window, other than holds coming back."""
    return (
        select(
            _day_bucket().label("day"),
            postings.c.account_id.label("account_id"),
        )
        .select_from(je)
        .join(postings, postings.c.entry_id == je.c.id)
        .join(accounts, accounts.c.id == postings.c.account_id)
        .where(
            _in_window(),
            accounts.c.kind == AccountKind.WALLET.value,
            je.c.kind != EntryKind.RELEASE.value,
            je.c.kind != EntryKind.PAYMENT_RELEASE.value,
        )
        .subquery()
    )


def _active_per_day() -> ClauseElement:
    rows = _wallet_postings()
    return select(rows.c.day, func.count(rows.c.account_id.distinct())).group_by(rows.c.day)


def _active_in_window() -> ClauseElement:
    rows = _wallet_postings()
    return select(func.count(rows.c.account_id.distinct()))


_active_days = Prepared(_active_per_day)
_active_window = Prepared(_active_in_window)
_wallets = Prepared(lambda: select(func.count()).where(accounts.c.kind == AccountKind.WALLET.value))

_cash_flows = Prepared(
    lambda: (
        select(postings.c.account_id, je.c.kind, func.count(), func.sum(postings.c.amount))
        .select_from(je)
        .join(postings, postings.c.entry_id == je.c.id)
        .join(accounts, accounts.c.id == postings.c.account_id)
        .where(
            _in_window(),
            or_(
                and_(
                    je.c.kind == EntryKind.CAPTURE.value,
                    postings.c.amount > 0,
                    accounts.c.kind != AccountKind.FEES.value,
                ),
                and_(je.c.kind == EntryKind.CASH_IN.value, postings.c.amount < 0),
            ),
        )
        .group_by(postings.c.account_id, je.c.kind)
    )
)
_terminal_accounts = Prepared(
    lambda: (
        select(
            terminals.c.id,
            terminals.c.kind,
            terminals.c.name,
            users.c.phone,
            accounts.c.id,
            accounts.c.currency,
            accounts.c.balance,
        )
        .outerjoin(users, users.c.id == terminals.c.agent_user_id)
        .outerjoin(
            accounts,
            accounts.c.code
            == case(
                (terminals.c.kind == "atm", literal("cash:") + terminals.c.id),
                else_=literal("wallet:") + terminals.c.agent_user_id,
            ),
        )
        .order_by(terminals.c.name, terminals.c.id)
    )
)
_cassette_cash = Prepared(
    lambda: select(
        cassettes.c.terminal_id, func.sum(cassettes.c.denomination * cassettes.c.notes)
    ).group_by(cassettes.c.terminal_id)
)

_HELD_WITHDRAWAL = _is(withdrawals.c.state, *sorted(state.value for state in WITHDRAWAL_HOLDING))
_HELD_PAYMENT = and_(
    _is(payments.c.state, *sorted(state.value for state in PAYMENT_HOLDING)),
    payments.c.product != "topup",
)
_held_withdrawals = Prepared(
    lambda: (
        select(
            literal("withdrawal"),
            withdrawals.c.id,
            users.c.phone,
            withdrawals.c.amount + withdrawals.c.fee,
            withdrawals.c.currency,
            withdrawals.c.state,
            withdrawals.c.created_at,
        )
        .join(users, users.c.id == withdrawals.c.user_id)
        .where(_HELD_WITHDRAWAL)
        .order_by(withdrawals.c.created_at, withdrawals.c.id)
        .limit(bindparam("lim"))
    )
)
_held_payments = Prepared(
    lambda: (
        select(
            payments.c.product,
            payments.c.id,
            users.c.phone,
            payments.c.amount + payments.c.fee,
            payments.c.currency,
            payments.c.state,
            payments.c.created_at,
        )
        .join(users, users.c.id == payments.c.user_id)
        .where(_HELD_PAYMENT)
        .order_by(payments.c.created_at, payments.c.id)
        .limit(bindparam("lim"))
    )
)
_held_withdrawal_totals = Prepared(
    lambda: (
        select(
            withdrawals.c.currency,
            func.count(),
            func.sum(withdrawals.c.amount + withdrawals.c.fee),
        )
        .where(_HELD_WITHDRAWAL)
        .group_by(withdrawals.c.currency)
    )
)
_held_payment_totals = Prepared(
    lambda: (
        select(payments.c.currency, func.count(), func.sum(payments.c.amount + payments.c.fee))
        .where(_HELD_PAYMENT)
        .group_by(payments.c.currency)
    )
)
_balances_of_kind = Prepared(
    lambda: (
        select(accounts.c.currency, func.sum(accounts.c.balance))
        .where(accounts.c.kind == bindparam("kind"))
        .group_by(accounts.c.currency)
    )
)
_accounts = Prepared(
    lambda: select(
        accounts.c.code,
        accounts.c.kind,
        accounts.c.currency,
        accounts.c.balance,
        accounts.c.status,
    ).order_by(accounts.c.currency, accounts.c.kind, accounts.c.code)
)


class SqlStatsRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def usage(
        self, account_id: int, spans: Sequence[Bucket], limit: int
    ) -> tuple[list[MovementGroup], list[Counterparty]]:
        """The wallet's postings over `spans` in groups (see `MovementGroup`), and the `limit`
        people it moved most money with by transfer, in one pass over the postings."""
        params: dict[str, Any] = {"acct": account_id, "lim": limit}
        for index, span in enumerate(spans):
            params[f"s{index}"] = _micros(span.start)
            params[f"e{index}"] = _micros(span.end)
        if self._sql.dialect_name == "postgresql":
            self._sql.write(NO_JIT, {})  # for the rest of this read-only transaction
        groups: list[MovementGroup] = []
        people: list[Counterparty] = []
        for (part, bucket, kind, outgoing, product, category, state, biller_id, biller_name,
             count, total, fees) in self._sql.all(_usage(len(spans)), params):  # fmt: skip
            if part == "c":  # kind, product: the phone and the name; total, fees: sent, received
                people.append(Counterparty(str(kind), str(product), int(count), int(total),
                                           int(fees)))  # fmt: skip
                continue
            groups.append(
                MovementGroup(
                    bucket=int(bucket),
                    kind=str(kind),
                    outgoing=bool(outgoing),
                    payment_product=product,
                    biller_category=category,
                    state=state,
                    count=int(count),
                    total=int(total),
                    fees=int(fees or 0),
                    biller_id=biller_id,
                    biller_name=biller_name,
                )
            )
        people.sort(key=lambda one: (-(one.sent + one.received), one.phone))
        return groups, people

    def volumes(
        self, start: datetime, end: datetime
    ) -> list[tuple[int, str, str | None, str, int, int, int]]:
        """(day since start, entry kind, payment product, currency, entries, volume, fees)."""
        rows = self._sql.all(_volumes, {**_window(start, end), "origin": _micros(start)})
        return [
            (int(day), str(kind), product, str(cur), int(count), int(volume), int(fees))
            for day, kind, product, cur, count, volume, fees in rows
        ]

    def active_users(self, start: datetime, end: datetime) -> tuple[dict[int, int], int]:
        """Wallets that moved money per day since `start`, and over the whole window."""
        params = {**_window(start, end), "origin": _micros(start)}
        per_day = {int(day): int(n) for day, n in self._sql.all(_active_days, params)}
        row = self._sql.one(_active_window, params)
        return per_day, int(row[0]) if row is not None else 0

    def wallets(self) -> int:
        row = self._sql.one(_wallets, {})
        return int(row[0]) if row is not None else 0

    def cash_flows(self, start: datetime, end: datetime) -> list[TerminalCash]:
        flows: dict[tuple[int, str], tuple[int, int]] = {
            (int(account), str(kind)): (int(count), abs(int(total)))
            for account, kind, count, total in self._sql.all(_cash_flows, _window(start, end))
        }
        in_cassettes = {
            str(terminal): int(cash) for terminal, cash in self._sql.all(_cassette_cash, {})
        }
        found = []
        for terminal_id, kind, name, phone, account, currency, balance in self._sql.all(
            _terminal_accounts, {}
        ):
            paid = flows.get((account, EntryKind.CAPTURE.value), (0, 0))
            taken = flows.get((account, EntryKind.CASH_IN.value), (0, 0))
            found.append(
                TerminalCash(
                    terminal_id=str(terminal_id),
                    kind=str(kind),
                    name=str(name),
                    agent_phone=phone,
                    currency=str(currency) if currency else "",
                    paid_out_count=paid[0],
                    paid_out=paid[1],
                    cash_in_count=taken[0],
                    cash_in=taken[1],
                    account_balance=int(balance or 0),
                    cassette_cash=in_cassettes.get(str(terminal_id), 0) if kind == "atm" else None,
                )
            )
        return found

    def outstanding_holds(self, limit: int) -> tuple[list[OutstandingHold], int, dict[str, int]]:
        """The oldest outstanding holds (at most `limit`), how many there are, and their sum per
        currency."""
        rows = [
            *self._sql.all(_held_withdrawals, {"lim": limit}),
            *self._sql.all(_held_payments, {"lim": limit}),
        ]
        rows.sort(key=lambda row: (row[6], row[1]))
        holds = [
            OutstandingHold(str(kind), str(ident), str(phone), int(held), str(cur), str(state), at)
            for kind, ident, phone, held, cur, state, at in rows[:limit]
        ]
        count = 0
        held: dict[str, int] = {}
        for query in (_held_withdrawal_totals, _held_payment_totals):
            for cur, n, total in self._sql.all(query, {}):
                count += int(n)
                held[str(cur)] = held.get(str(cur), 0) + int(total)
        return holds, count, held

    def balances_of_kind(self, kind: AccountKind) -> dict[str, int]:
        rows = self._sql.all(_balances_of_kind, {"kind": kind.value})
        return {str(cur): int(total) for cur, total in rows}

    def accounts(self) -> list[AccountLine]:
        return [
            AccountLine(str(code), str(kind), str(cur), int(balance), str(status))
            for code, kind, cur, balance, status in self._sql.all(_accounts, {})
        ]
