"""A person's movements: what each posting on their wallet was, in their own words.

The ledger records journal entries of a few kinds (`EntryKind`); a person reads *movements*: a
transfer in or out, a top-up, a bill, airtime, a withdrawal, a cash-in, a fee, a reversal. One
posting on a wallet is one movement, except a debit that carries a fee, which reads as two: the
movement itself and its fee (the fee last: it is what the balance after the posting shows).

A debit's fee is, generically, what the same journal entry credits to the account of kind FEES
of its currency (a transfer's fee); a withdrawal or a bill holds its fee with its amount
(`held_fee`: the fee of the withdrawal or payment the entry belongs to), and gets it back whole
when reversed.

History pages newest first by a cursor: (posting time, part), part 1 being a fee line; statements
read the same lines oldest first. Everything here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from mwallet.core.domain.instants import utc_moment
from mwallet.core.domain.ledger import EntryKind
from mwallet.core.domain.money import Money
from mwallet.core.errors import InvalidInput, LedgerInvariantBroken, quoted


class MovementType(StrEnum):
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"
    TOPUP = "topup"
    BILL = "bill"
    AIRTIME = "airtime"
    WITHDRAWAL = "withdrawal"  # the amount held for a withdrawal, paid out in cash or not yet
    CASH_IN = "cash_in"  # a customer's cash taken by an agent (either side of it)
    CASH_OUT = "cash_out"  # an agent paid a withdrawal out in cash: its e-money comes to them
    FEE = "fee"
    REVERSAL = "reversal"  # a withdrawal or payment that did not happen: its hold came back


# The movements a credit or a debit can be; which entry kinds each comes from.
_KINDS: dict[MovementType, frozenset[EntryKind]] = {
    MovementType.TRANSFER_IN: frozenset({EntryKind.TRANSFER}),
    MovementType.TRANSFER_OUT: frozenset({EntryKind.TRANSFER}),
    MovementType.TOPUP: frozenset({EntryKind.TOPUP}),
    MovementType.BILL: frozenset({EntryKind.PAYMENT_HOLD, EntryKind.PAYMENT}),
    MovementType.AIRTIME: frozenset({EntryKind.PAYMENT_HOLD, EntryKind.PAYMENT}),
    MovementType.WITHDRAWAL: frozenset({EntryKind.HOLD}),
    MovementType.CASH_IN: frozenset({EntryKind.CASH_IN}),
    MovementType.CASH_OUT: frozenset({EntryKind.CAPTURE}),
    MovementType.REVERSAL: frozenset({EntryKind.RELEASE, EntryKind.PAYMENT_RELEASE}),
}
# +1: only credits; -1: only debits; 0: either.
_SIGN: dict[MovementType, int] = {
    MovementType.TRANSFER_IN: 1,
    MovementType.TRANSFER_OUT: -1,
    MovementType.TOPUP: 1,
    MovementType.BILL: -1,
    MovementType.AIRTIME: -1,
    MovementType.WITHDRAWAL: -1,
    MovementType.CASH_IN: 0,
    MovementType.CASH_OUT: 1,
    MovementType.FEE: -1,
    MovementType.REVERSAL: 1,
}


# What a posting on a wallet is, by its entry's kind, for the kinds whose direction says nothing.
_BY_KIND: dict[EntryKind, MovementType] = {
    EntryKind.TOPUP: MovementType.TOPUP,
    EntryKind.HOLD: MovementType.WITHDRAWAL,
    EntryKind.CAPTURE: MovementType.CASH_OUT,
    EntryKind.RELEASE: MovementType.REVERSAL,
    EntryKind.PAYMENT_RELEASE: MovementType.REVERSAL,
    EntryKind.CASH_IN: MovementType.CASH_IN,
}


def classify(kind: EntryKind, amount_minor: int, product: str | None = None) -> MovementType:
    """What a posting of `amount_minor` on a wallet, in an entry of `kind`, is to its owner.

    `product` is the payment's product (bill, airtime) for the payment kinds.
    """
    if kind is EntryKind.TRANSFER:
        return MovementType.TRANSFER_OUT if amount_minor < 0 else MovementType.TRANSFER_IN
    if kind in (EntryKind.PAYMENT_HOLD, EntryKind.PAYMENT):
        return MovementType.AIRTIME if product == "airtime" else MovementType.BILL
    return _BY_KIND[kind]


def parse_types(texts: Iterable[str]) -> frozenset[MovementType]:
    """Movement types named by a person ("transfer_out", "transfer-out", "top-up" ...)."""
    found: set[MovementType] = set()
    for text in texts:
        for name in text.split(","):
            key = name.strip().lower().replace("-", "_")
            key = {"top_up": "topup", "cashin": "cash_in", "cashout": "cash_out"}.get(key, key)
            try:
                found.add(MovementType(key))
            except ValueError:
                known = ", ".join(member.value for member in MovementType)
                message = f"unknown movement type {quoted(name.strip())}; types: {known}"
                raise InvalidInput(message) from None
    return frozenset(found)


class Cursor(NamedTuple):
    """Where a page ended: the last line shown. The next page starts just below it; cursors
    order as the lines do (newest last)."""

    # The time of the line's posting, microseconds since the epoch: one account's postings each
    # have a time of their own, strictly increasing in the order its balance followed them.
    posted_micros: int
    part: int  # 0: the movement itself; 1: its fee

    def encode(self) -> str:
        return f"{self.posted_micros}.{self.part}"

    @staticmethod
    def parse(text: str) -> Cursor:
        found = re.fullmatch(r"([1-9][0-9]{0,17})\.([01])", text.strip())
        if found is None:
            raise InvalidInput(f"not a history cursor: {quoted(text)}")
        return Cursor(int(found[1]), int(found[2]))

    @staticmethod
    def to_continue(text: str) -> Cursor:
        """A cursor a client sent back to go on below its page: one a history page gave.

        Before migration 0018 a cursor named its line's posting id; it names its time since. Read
        as a time, an id is a moment in 1970, below all of a wallet's postings: a client paging
        across the upgrade would get an empty page and no next cursor, its history seemingly at
        an end. Such a cursor is refused instead (no posting is older than `_FIRST_CURSOR_MICROS`,
        nor any posting id that large)."""
        cursor = Cursor.parse(text)
        if cursor.posted_micros < _FIRST_CURSOR_MICROS:
            raise InvalidInput(
                f"the history cursor {quoted(text)} is from before this version of the server "
                f"(it names a posting's number, not its time): start again from the first page"
            )
        return cursor


# 2001-09-09T01:46:40Z: every cursor a history page gives is later (it is a posting's time), and
# no posting id a cursor named before migration 0018 comes near it.
_FIRST_CURSOR_MICROS = 10**15


# Named tuples, not dataclasses: a statement makes millions of these, and a tuple is built in a
# fraction of the time. Amounts are integer minor units of `currency`; `Money` on demand. Times
# are integer microseconds since the epoch, as the ledger stores them (`created_at` on demand): a
# statement writes them as text without making a datetime of each.
class WalletPosting(NamedTuple):
    """One posting on a wallet, with what its entry and its withdrawal or payment say about it:
    a row as the ledger's query returns it. Its time is its key in the wallet (`Cursor`)."""

    entry_id: str
    kind: str  # the entry's kind: an EntryKind's value
    created_micros: int
    amount_minor: int  # signed: what the posting added to the wallet
    balance_minor: int  # the balance right after it
    currency: str
    fee_credit: int  # minor units the same entry credited to the fees account
    held_fee: int  # the fee of the withdrawal or payment the entry belongs to (0 if none)
    product: str | None  # a payment's product: bill, airtime
    counterparty: str | None
    note: str | None
    state: str


# A WalletPosting's fields as a plain tuple, as the driver returns the ledger's rows: a statement's
# batches come as these, not wrapped one by one (a statement reads millions).
PostingRow = tuple[str, str, int, int, int, str, int, int, str | None, str | None, str | None, str]


class StatementBatch(NamedTuple):
    """A statement's rows, a batch of them, as its ledger reads them: a transfer's counterparty
    is the other party's user id, whose phone `parties` gives (`lines_of_all`)."""

    rows: list[PostingRow]
    parties: Mapping[str | None, str | None]


class Movement(NamedTuple):
    cursor: Cursor
    entry_id: str
    type: MovementType
    created_micros: int  # microseconds since the epoch: `created_at` is the datetime
    amount_minor: int  # signed: + into the wallet, - out of it
    balance_minor: int  # the balance right after it
    currency: str
    counterparty: str | None
    note: str | None
    state: str

    @property
    def created_at(self) -> datetime:
        return utc_moment(self.created_micros)

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)

    @property
    def balance_after(self) -> Money:
        return Money(self.balance_minor, self.currency)


def fee_of(posting: WalletPosting) -> int:
    """The part of a debit that is a fee (0 for a credit)."""
    amount = posting.amount_minor
    if amount >= 0:
        return 0
    fee = posting.held_fee if posting.kind in _HELD_FEE_KINDS else posting.fee_credit
    return 0 if fee <= 0 else min(fee, -amount)


def lines_of(posting: WalletPosting) -> list[Movement]:
    """The movements a posting reads as, oldest first: the movement, then its fee if any."""
    return lines_of_all((posting,))


_new = tuple.__new__  # a named tuple without its __new__'s keyword handling: a statement's hot path
_HELD_FEE_KINDS = (EntryKind.HOLD.value, EntryKind.PAYMENT_HOLD.value)
_FEE = MovementType.FEE
_TRANSFER = EntryKind.TRANSFER.value
_TRANSFER_KINDS = (EntryKind.TRANSFER.value, EntryKind.CASH_IN.value)  # a transfers row each
_ENTRY_KINDS = {kind.value: kind for kind in EntryKind}
_BY_KIND_VALUE = {kind.value: movement for kind, movement in _BY_KIND.items()}


def lines_of_all(
    postings: Iterable[PostingRow], parties: Mapping[str | None, str | None] | None = None
) -> list[Movement]:
    """The movements postings read as, in their order, each posting's movement before its fee:
    `lines_of` for a batch at once (a statement reads millions).

    With `parties`, a transfer's (or cash-in's) counterparty in the rows is the other party's
    user id, and `parties` gives their phone (a statement looks each person up once, not once
    a line)."""
    lines: list[Movement] = []
    add = lines.append
    by_kind = _BY_KIND_VALUE.get
    transfer_out, transfer_in = MovementType.TRANSFER_OUT, MovementType.TRANSFER_IN
    named = _TRANSFER_KINDS if parties is not None else ()
    for posting in postings:
        entry_id, kind, at, amount, after, currency, fee_credit, held_fee, product, party, \
            note, state = posting  # fmt: skip
        if kind in named:
            party = parties[party]  # type: ignore[index] # named is empty without parties
        fee = 0  # fee_of(posting), inlined
        if amount < 0:
            fee = held_fee if kind in _HELD_FEE_KINDS else fee_credit
            fee = 0 if fee <= 0 else min(fee, -amount)
        principal = amount + fee  # a debit's amount without its fee
        if principal == 0:  # the whole posting is a fee
            add(_new(Movement, (_new(Cursor, (at, 1)), entry_id, _FEE, at, amount, after, currency,
                                party, note, state)))  # fmt: skip
            continue
        if kind == _TRANSFER:  # most of any wallet's lines: classify(), inlined
            kind_of = transfer_out if amount < 0 else transfer_in
        else:
            kind_of = by_kind(kind) or classify(_ENTRY_KINDS[kind], amount, product)
        add(_new(Movement, (_new(Cursor, (at, 0)), entry_id, kind_of, at, principal, after + fee,
                            currency, party, note, state)))  # fmt: skip
        if fee:
            add(_new(Movement, (_new(Cursor, (at, 1)), entry_id, _FEE, at, -fee, after, currency,
                                party, note, state)))  # fmt: skip
    return lines


@dataclass(frozen=True, slots=True)
class MovementFilter:
    """Which movements a person asked for. Dates bound the period; the rest is per line."""

    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive
    types: frozenset[MovementType] = frozenset()
    counterparty: str | None = None
    min_minor: int | None = None  # bounds on the movement's size (its absolute amount)
    max_minor: int | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise InvalidInput("the period's start must be before its end")
        if (
            self.min_minor is not None
            and self.max_minor is not None
            and self.min_minor > self.max_minor
        ):
            raise InvalidInput("the smallest amount must not be above the largest")

    def matches(self, line: Movement) -> bool:
        if self.types and line.type not in self.types:
            return False
        size = abs(line.amount_minor)
        if self.min_minor is not None and size < self.min_minor:
            return False
        if self.max_minor is not None and size > self.max_minor:
            return False
        if self.counterparty is not None:
            return (line.counterparty or "").casefold() == self.counterparty.casefold()
        return True

    @property
    def per_line(self) -> bool:
        """Whether some lines of the postings read may be left out (so a page may read more)."""
        return bool(self.types or self.counterparty or self.min_minor or self.max_minor)

    def entry_kinds(self) -> frozenset[EntryKind] | None:
        """The entry kinds the wanted types come from; None: any (a fee comes from any kind)."""
        if not self.types or MovementType.FEE in self.types:
            return None
        return frozenset().union(*(_KINDS[kind] for kind in self.types))

    def sign(self) -> int:
        """+1 if only credits can match, -1 if only debits, 0 if either."""
        signs = {_SIGN[kind] for kind in self.types}
        return signs.pop() if len(signs) == 1 else 0


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def parse_day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{what} must be a date like 2026-01-31, not {quoted(text)}") from None


def period(
    start: str | None, end: str | None, names: tuple[str, str] = ("--from", "--to")
) -> tuple[datetime | None, datetime | None]:
    """The instants a person's FROM and TO days (UTC, both included) stand for: [start, end).
    `names`: what the person called them (options, query parameters), for the error message."""
    first = parse_day(start, names[0]) if start is not None else None
    last = parse_day(end, names[1]) if end is not None else None
    if first is not None and last is not None and first > last:
        raise InvalidInput(f"{names[0]} {first} is after {names[1]} {last}")
    if last is not None and last >= date.max:
        raise InvalidInput(f"{names[1]} must be before {date.max}")
    return (
        day_start(first) if first is not None else None,
        day_start(last) + timedelta(days=1) if last is not None else None,
    )


@dataclass(slots=True)
class StatementTotals:
    """What a statement adds up as its lines go by."""

    opening: Money
    money_in: int = 0
    money_out: int = 0
    count: int = 0
    fees: int = 0
    last_balance: int | None = field(default=None)

    def add(self, line: Movement) -> None:
        self.add_all((line,))

    def add_all(self, lines: Sequence[Movement]) -> None:
        money_in = money_out = fees = 0
        for line in lines:
            amount = line[4]  # amount_minor: by index, a statement's hot path
            if amount > 0:
                money_in += amount
            else:
                money_out -= amount
                if line[2] is _FEE:
                    fees -= amount
        if lines:
            self.money_in += money_in
            self.money_out += money_out
            self.fees += fees
            self.count += len(lines)
            self.last_balance = lines[-1].balance_minor

    @property
    def closing(self) -> Money:
        return Money(self.opening.minor + self.money_in - self.money_out, self.opening.currency)

    def check(self, ledger_closing: Money) -> None:
        """The lines must lead from the opening balance to the ledger's closing balance."""
        if self.closing != ledger_closing or (
            self.last_balance is not None and self.last_balance != ledger_closing.minor
        ):
            raise LedgerInvariantBroken(
                f"the statement adds up to {self.closing}, the ledger says {ledger_closing}"
            )
