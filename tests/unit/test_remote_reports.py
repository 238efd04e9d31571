"""The remote CLI reads the reports service's documents back exactly: what `mwallet.render` wrote
from domain objects is read into equal domain objects (amounts to the minor unit, times, cursors),
a statement's CSV line by line whatever its chunks (a note written as text for spreadsheets is read
back as it was), and a broken document is refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mwallet.core.domain.instants import utc_micros
from mwallet.core.domain.money import Money
from mwallet.core.domain.movements import (
    Cursor,
    Movement,
    MovementType,
    StatementTotals,
    period,
)
from mwallet.core.domain.statistics import (
    BillerTotal,
    Counterparty,
    Period,
    PeriodStats,
    Tally,
    UsageStats,
    buckets,
)
from mwallet.core.errors import InvalidInput, LedgerInvariantBroken
from mwallet.core.services.history import MovementPage, Owner, Statement
from mwallet.remote.reports import (
    BadAnswer,
    StatementReader,
    day_params,
    minor,
    movement_page_from,
    postings_of,
    usage_from,
)
from mwallet.render import reports
from mwallet.render.movements import movement_page_json, statement_csv_text

AT = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
OWNER = Owner("u-1", "+258840000001", "Ana Machava")


def line(number: int, kind: MovementType, amount: int, after: int, *, note: str | None = None,
         part: int = 0) -> Movement:  # fmt: skip
    return Movement(Cursor(number, part), f"e-{number}", kind,
                    utc_micros(AT + timedelta(minutes=number)), amount, after, "USD",
                    "+258840000002", note, "settled")  # fmt: skip


LINES = [
    line(1, MovementType.TOPUP, 1_500_000_000_00, 1_500_000_000_00, note="=beyond one's max"),
    line(2, MovementType.TRANSFER_OUT, -12_25, 1_499_999_987_75, note='lunch, "the usual"\nthanks'),
    line(2, MovementType.FEE, -50, 1_499_999_987_25, part=1),
    line(3, MovementType.FEE, -1_00, 1_499_999_986_25, part=1),
]


def test_amounts_are_read_exactly() -> None:
    assert minor("-12.50", "USD") == -1250
    assert minor("0.00", "USD") == 0
    assert minor("15000000000.00", "USD") == 1_500_000_000_000  # past a movement's maximum
    assert minor("1200", "JPY") == 1200
    for bad in ("12.5", "1e3", "12.500", "+1.00", " 1.00", "01.00", "-"):
        with pytest.raises(BadAnswer):
            minor(bad, "USD")


def test_a_period_goes_back_as_the_days_it_came_from() -> None:
    assert day_params(*period("2026-01-15", "2026-01-31")) == [
        ("from", "2026-01-15"), ("to", "2026-01-31"),
    ]  # fmt: skip
    assert day_params(None, None) == []
    with pytest.raises(InvalidInput):
        day_params(AT, None)


def test_a_history_page_round_trips() -> None:
    page = MovementPage(OWNER, LINES[:3], "2.1")
    found = movement_page_from(movement_page_json(page), OWNER)
    assert found == page


def chunks(text: Iterator[str], size: int) -> Iterator[str]:
    """The text cut anywhere, as a network cuts it."""
    whole = "".join(text)
    for start in range(0, len(whole), size):
        yield whole[start : start + size]


def statement_text(lines: list[Movement]) -> Iterator[str]:
    opening = Money(0, "USD")
    totals = StatementTotals(opening)
    for one in lines:
        totals.add(one)
    start, end = period("2026-01-15", "2026-01-15")
    sent = Statement(OWNER, "USD", start, end, opening, totals.closing, None, iter(lines), totals)
    return statement_csv_text(sent, lines, per_piece=2)


@pytest.mark.parametrize("size", [1, 7, 10_000])
def test_a_statement_streams_back_line_by_line(size: int) -> None:
    start, end = period("2026-01-15", "2026-01-15")
    statement = StatementReader(chunks(statement_text(LINES), size), OWNER, start, end).statement
    assert (statement.opening, statement.currency, statement.postings) == (
        Money(0, "USD"), "USD", None,
    )  # fmt: skip
    read = list(statement.lines)
    assert [one[1:] for one in read] == [one[1:] for one in LINES]  # all but the ledger cursor
    assert [one.cursor for one in read] == [Cursor(1, 0), Cursor(2, 0), Cursor(2, 1), Cursor(3, 1)]
    assert statement.closing == Money(1_499_999_986_25, "USD")
    assert (statement.totals.count, statement.totals.fees) == (4, 1_50)


def test_a_statement_that_does_not_add_up_or_ends_early_is_refused() -> None:
    text = "".join(statement_text(LINES))
    lied = text.replace("total_out,,,13.75,", "total_out,,,13.70,")  # 12.25 + 0.50 + 1.00
    assert lied != text
    reading = StatementReader([lied], OWNER, None, None).statement
    with pytest.raises(LedgerInvariantBroken):
        list(reading.lines)
    cut = text[: text.index("total_in")]
    with pytest.raises(BadAnswer):
        list(StatementReader([cut], OWNER, None, None).statement.lines)
    with pytest.raises(BadAnswer):
        StatementReader(["not,a,statement\n"], OWNER, None, None)


def test_the_servers_count_of_postings_is_read_exactly() -> None:
    assert (postings_of(None), postings_of("0"), postings_of("123456789")) == (None, 0, 123456789)
    for lied in ("-1", "1.5", "", "٣", "12 "):  # not a count this client can trust
        with pytest.raises(BadAnswer):
            postings_of(lied)
    counted = StatementReader(statement_text(LINES), OWNER, None, None, postings=3).statement
    assert counted.postings == 3


def test_usage_statistics_round_trip() -> None:
    spans = buckets(AT, Period.MONTH, 2)
    stats = UsageStats(
        user_id="u-1", phone=OWNER.phone, name=OWNER.display_name, currency="USD",
        period=Period.MONTH,
        periods=(
            PeriodStats(spans[0], {"topup": Tally(1, 500_00, 0)},
                        {"transfer": Tally(2, 30_00, 50)}),
            PeriodStats(spans[1], {}, {"withdrawal": Tally(1, 60_00, 50), "water": Tally(1, 7, 0)},
                        Tally(1, 52_00, 0)),
        ),
        counterparties=(Counterparty("+258840000002", "Bruno Tembe", 2, 30_00, 0),),
        billers=(BillerTotal("aguas-maputo", "Águas", "water", 1, 7, 0),),
        balance=Money(317_00, "USD"), generated_at=AT.replace(second=0),
    )  # fmt: skip
    found = usage_from(reports.stats_json(stats), reports.trends_json(stats), "u-1")
    assert found == stats
    # Two answers of different movements (one came in between) are not read as one.
    later = replace(stats, periods=(stats.periods[0], PeriodStats(spans[1], {"t": Tally(1, 1, 0)})))
    assert usage_from(reports.stats_json(stats), reports.trends_json(later), "u-1") is None
