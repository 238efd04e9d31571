"""Usage statistics: what a movement of a wallet counts as, the periods they are summed over, and
the summary a person reads (totals per category and period, average ticket, change per period).

`classify` is the one place that says what a posting on a wallet means for statistics. The
database groups a wallet's postings by period and by what `classify` looks at (the entry's kind,
the posting's direction, the payment's product and biller category, the withdrawal's or payment's
state), and `classify` names each group. So every movement counts once, the same way everywhere:

- a withdrawal is money out when its hold was captured (cash paid), not when released;
- a bill or airtime is money out when the provider approved it; a declined one is not;
- a hold not yet settled (a pending withdrawal, a pending or unknown payment) is *held*;
- a returned hold (release) is nothing: its hold was not counted either.

Over all time, in - out - held = the wallet's balance.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import pairwise

from mwallet.core.domain.ledger import EntryKind
from mwallet.core.domain.money import Money
from mwallet.core.domain.payments import HOLDING as PAYMENT_HOLDING
from mwallet.core.domain.withdrawals import HOLDING as WITHDRAWAL_HOLDING
from mwallet.core.errors import InvalidInput, quoted

MAX_MONTHS = 36
DEFAULT_MONTHS = 6
TOP = 5  # counterparties and billers listed
MAX_DAYS = 366  # admin reports' window


class Flow(StrEnum):
    IN = "in"
    OUT = "out"
    HELD = "held"  # on its way out, not settled yet


class Period(StrEnum):
    MONTH = "month"
    WEEK = "week"


# What a person reads in a chart's legend: each out category, in a stable order.
OUT_CATEGORIES = (
    "transfer",
    "withdrawal",
    "airtime",
    "water",
    "electricity",
    "internet",
    "tv",
    "other_bills",
    "cash_in_given",
    "other",
)
IN_CATEGORIES = ("topup", "received", "cash_in", "agent_payout", "other_in")

_SETTLED = frozenset({"completed", "succeeded"})
# A hold's states, as the statement reads them (a withdrawal's or a payment's, by name).
_HOLDING = frozenset(state.value for state in (*WITHDRAWAL_HOLDING, *PAYMENT_HOLDING))


_PRODUCTS: dict[str, str] = {
    EntryKind.TRANSFER: "transfer",
    EntryKind.TOPUP: "topup",
    EntryKind.CASH_IN: "cash_in",
    EntryKind.HOLD: "withdrawal",
    EntryKind.CAPTURE: "withdrawal",
}
_OUTGOING: dict[str, str] = {EntryKind.TRANSFER: "transfer", EntryKind.CASH_IN: "cash_in_given"}
_INCOMING: dict[str, str] = {
    EntryKind.TOPUP: "topup",
    EntryKind.TRANSFER: "received",
    EntryKind.CASH_IN: "cash_in",
    EntryKind.CAPTURE: "agent_payout",  # an agent paid cash out and is paid back in e-money
}
_HOLDS = frozenset({EntryKind.HOLD, EntryKind.PAYMENT_HOLD})
_RETURNS = frozenset({EntryKind.RELEASE, EntryKind.PAYMENT_RELEASE})
_BILL_CATEGORIES = frozenset({"water", "electricity", "internet", "tv"})


def product_of(kind: str, payment_product: str | None) -> str | None:
    """The product an entry is one of (operators' reports), or None for a hold's return."""
    if kind in (EntryKind.PAYMENT, EntryKind.PAYMENT_HOLD):
        return "airtime" if payment_product == "airtime" else "bill"
    return _PRODUCTS.get(kind)


def classify(
    kind: str,
    *,
    outgoing: bool,
    payment_product: str | None = None,
    biller_category: str | None = None,
    state: str | None = None,
) -> tuple[Flow, str] | None:
    """What one posting on a wallet counts as: (flow, category), or None (not counted).

    `state` is the withdrawal's or payment's state, for a hold; `payment_product` and
    `biller_category` say what a payment's hold paid for."""
    if kind in _RETURNS:
        return None  # a hold coming back: the hold was not counted either
    if kind in _HOLDS:
        return _hold(kind, payment_product, biller_category, state)
    if outgoing:
        return Flow.OUT, _OUTGOING.get(kind, "other")
    return Flow.IN, _INCOMING.get(kind, "other_in")


def _hold(
    kind: str, payment_product: str | None, biller_category: str | None, state: str | None
) -> tuple[Flow, str] | None:
    if state in _HOLDING:
        return Flow.HELD, "held"
    if state not in _SETTLED:
        return None  # released (cancelled, expired, declined, ...): the money never left
    if kind == EntryKind.HOLD:
        return Flow.OUT, "withdrawal"
    if payment_product == "airtime":
        return Flow.OUT, "airtime"
    return Flow.OUT, biller_category if biller_category in _BILL_CATEGORIES else "other_bills"


# --- periods -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Bucket:
    label: str  # "2026-03", or a week's Monday "2026-03-02"
    start: datetime
    end: datetime


def parse_period(text: str) -> Period:
    try:
        return Period(text.strip().lower())
    except ValueError:
        raise InvalidInput(f"{quoted(text)} is not a period: use month or week") from None


def check_months(months: int) -> int:
    if not 1 <= months <= MAX_MONTHS:
        raise InvalidInput(f"months must be between 1 and {MAX_MONTHS}")
    return months


def check_days(days: int) -> int:
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}")
    return days


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def add_months(start: datetime, months: int) -> datetime:
    index = start.year * 12 + start.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def day_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def buckets(now: datetime, period: Period, months: int) -> tuple[Bucket, ...]:
    """The periods of the last `months` calendar months (UTC), the current one last: months, or
    the weeks (Monday to Monday) from the one holding the first month's first day."""
    check_months(months)
    first = add_months(month_start(now), -(months - 1))
    if period is Period.MONTH:
        return tuple(
            Bucket(f"{start:%Y-%m}", start, add_months(start, 1))
            for start in (add_months(first, number) for number in range(months))
        )
    week = first - timedelta(days=first.weekday())
    found = []
    while week <= now:
        found.append(Bucket(f"{week:%Y-%m-%d}", week, week + timedelta(days=7)))
        week += timedelta(days=7)
    return tuple(found)


def days(now: datetime, count: int) -> tuple[Bucket, ...]:
    """The last `count` UTC days, today last."""
    check_days(count)
    today = day_start(now)
    return tuple(
        Bucket(f"{start:%Y-%m-%d}", start, start + timedelta(days=1))
        for start in (today - timedelta(days=back) for back in range(count - 1, -1, -1))
    )


# --- what the database hands back, and the summary ----------------------------------------------
@dataclass(frozen=True, slots=True)
class MovementGroup:
    """Postings of one wallet that share a period and what `classify` looks at."""

    bucket: int  # index into the report's buckets
    kind: str
    outgoing: bool
    payment_product: str | None
    biller_category: str | None
    state: str | None
    count: int
    total: int  # the postings' sum: negative for money out, fees included
    fees: int  # of which fees (positive)
    biller_id: str | None = None  # what a payment's hold paid
    biller_name: str | None = None


@dataclass(frozen=True, slots=True)
class Tally:
    """Movements of one category: how many, their amounts (fees apart) and their fees."""

    count: int = 0
    amount: int = 0
    fees: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.count + other.count, self.amount + other.amount, self.fees + other.fees)

    @property
    def gross(self) -> int:
        return self.amount + self.fees

    @property
    def average(self) -> int:
        """The average ticket (amount per movement, fees apart), rounded down."""
        return self.amount // self.count if self.count else 0


@dataclass(frozen=True, slots=True)
class PeriodStats:
    bucket: Bucket
    money_in: dict[str, Tally] = field(default_factory=dict)
    money_out: dict[str, Tally] = field(default_factory=dict)
    held: Tally = Tally()

    @property
    def total_in(self) -> Tally:
        return sum(self.money_in.values(), Tally())

    @property
    def total_out(self) -> Tally:
        return sum(self.money_out.values(), Tally())


@dataclass(frozen=True, slots=True)
class Counterparty:
    phone: str
    name: str
    count: int
    sent: int
    received: int


@dataclass(frozen=True, slots=True)
class BillerTotal:
    biller_id: str
    name: str
    category: str
    count: int
    amount: int
    fees: int


@dataclass(frozen=True, slots=True)
class UsageStats:
    """A person's statistics over a window of periods."""

    user_id: str
    phone: str
    name: str
    currency: str
    period: Period
    periods: tuple[PeriodStats, ...]
    counterparties: tuple[Counterparty, ...]
    billers: tuple[BillerTotal, ...]
    balance: Money
    generated_at: datetime

    @property
    def start(self) -> datetime:
        return self.periods[0].bucket.start

    @property
    def end(self) -> datetime:
        return self.periods[-1].bucket.end

    def totals(self, flow: Flow) -> dict[str, Tally]:
        """Per category over the whole window."""
        found: dict[str, Tally] = {}
        for one in self.periods:
            source = one.money_in if flow is Flow.IN else one.money_out
            for category, tally in source.items():
                found[category] = found.get(category, Tally()) + tally
        return dict(sorted(found.items(), key=lambda item: (-item[1].gross, item[0])))

    @property
    def total_in(self) -> Tally:
        return sum((one.total_in for one in self.periods), Tally())

    @property
    def total_out(self) -> Tally:
        return sum((one.total_out for one in self.periods), Tally())

    @property
    def held(self) -> Tally:
        return sum((one.held for one in self.periods), Tally())

    def changes(self) -> list[float | None]:
        """Money out (fees included) of each period against the one before, in percent; None for
        the first period and after a period with nothing out."""
        outs = [one.total_out.gross for one in self.periods]
        return [None, *(change(before, after) for before, after in pairwise(outs))]


def change(before: int, after: int) -> float | None:
    """After against before, in percent (one decimal); None when before is zero."""
    if before == 0:
        return None
    return round((after - before) * 100 / before, 1)


def top_billers(groups: Iterable[MovementGroup], limit: int) -> tuple[BillerTotal, ...]:
    """The billers paid most (amount, fees apart) over the groups: the holds of payments the
    provider approved, summed per biller; ties by the biller's id."""
    found: dict[str, BillerTotal] = {}
    for group in groups:
        if (
            group.kind != EntryKind.PAYMENT_HOLD
            or group.state != "succeeded"
            or group.biller_id is None
        ):
            continue
        before = found.get(group.biller_id)
        count, amount = group.count, abs(group.total) - group.fees
        if before is not None:
            count, amount = count + before.count, amount + before.amount
        found[group.biller_id] = BillerTotal(
            group.biller_id,
            group.biller_name or "",
            group.biller_category or "",
            count,
            amount,
            group.fees + (before.fees if before is not None else 0),
        )
    ranked = sorted(found.values(), key=lambda one: (-one.amount, one.biller_id))
    return tuple(ranked[:limit])


def summarize(groups: Iterable[MovementGroup], spans: Sequence[Bucket]) -> tuple[PeriodStats, ...]:
    """Name each group with `classify` and sum them per period and category."""
    periods = [PeriodStats(bucket) for bucket in spans]
    held = [Tally() for _ in spans]
    for group in groups:
        named = classify(
            group.kind,
            outgoing=group.outgoing,
            payment_product=group.payment_product,
            biller_category=group.biller_category,
            state=group.state,
        )
        if named is None or not 0 <= group.bucket < len(periods):
            continue
        flow, category = named
        magnitude = abs(group.total)
        tally = Tally(group.count, magnitude - group.fees, group.fees)
        if flow is Flow.HELD:
            held[group.bucket] += tally
            continue
        target = (
            periods[group.bucket].money_in if flow is Flow.IN else periods[group.bucket].money_out
        )
        target[category] = target.get(category, Tally()) + tally
    return tuple(
        PeriodStats(one.bucket, one.money_in, one.money_out, tally)
        for one, tally in zip(periods, held, strict=True)
    )
