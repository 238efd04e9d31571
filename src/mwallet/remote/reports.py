"""The reports service's documents back into domain objects, for `HttpWalletService`: a history
page (`GET /reports/transactions/{user_id}`), a statement read as its CSV streams in
(`GET /reports/statement/{user_id}?format=csv`), and usage statistics (`GET /reports/stats/…`
and `/reports/trends/…`).

Exact, as the rest of the client: amounts are read from their decimal strings into integer minor
units (no float, no rounding, no ceiling: a balance or a sum may pass a single movement's maximum),
times from RFC 3339, cursors kept as the server wrote them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from mwallet.core.domain.instants import utc_micros
from mwallet.core.domain.money import Money, currency_exponent
from mwallet.core.domain.movements import (
    Cursor,
    Movement,
    MovementType,
    StatementTotals,
)
from mwallet.core.domain.statistics import (
    BillerTotal,
    Bucket,
    Counterparty,
    Flow,
    Period,
    PeriodStats,
    Tally,
    UsageStats,
    add_months,
    day_start,
)
from mwallet.core.errors import ConfigurationError, InvalidInput, LedgerInvariantBroken
from mwallet.core.services.history import MovementPage, Owner, Statement
from mwallet.render.movements import CSV_HEADER, note_from_csv

_DECIMAL = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?", re.ASCII)


class BadAnswer(ConfigurationError):
    """The server sent a document this client cannot read (another version, or a broken one)."""

    code = "bad_server_answer"


def minor(text: str, currency: str) -> int:
    """A decimal string as the server writes amounts ("-12.50"), in minor units, exactly."""
    found = _DECIMAL.fullmatch(text)
    exponent = currency_exponent(currency)
    if found is None or len(found[3] or "") != (exponent if found[3] is not None else 0):
        raise BadAnswer(f"the server sent an amount this client cannot read: {text[:40]!r}")
    units: int = int(found[2]) * 10**exponent + int(found[3] or 0)
    return -units if found[1] else units


def time_from(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise BadAnswer(f"the server sent a time this client cannot read: {text[:40]!r}") from None


def postings_of(header: str | None) -> int | None:
    """The statement's postings as the server counted them (`?count=true`), if it said."""
    if header is None:
        return None
    if not header.isascii() or not header.isdigit():
        raise BadAnswer(f"the server sent a count this client cannot read: {header[:40]!r}")
    return int(header)


def day_params(start: datetime | None, end: datetime | None) -> list[tuple[str, str]]:
    """A period of [start, end) as the API's `from` and `to` days (UTC, both included)."""
    found = []
    for name, given, back in (("from", start, 0), ("to", end, 1)):
        if given is None:
            continue
        moment = given.astimezone(UTC)
        if moment != day_start(moment):
            raise InvalidInput("over HTTP, a period is whole UTC days")
        found.append((name, (moment - timedelta(days=back)).date().isoformat()))
    return found


# --- a history page ------------------------------------------------------------------------------
def movement_page_from(found: Mapping[str, Any], owner: Owner) -> MovementPage:
    """`{user, movements, next_cursor}` (`render.movements.movement_page_json`)."""
    return MovementPage(
        owner=Owner(owner.user_id, str(found["user"]), owner.display_name),
        movements=[movement_from(one) for one in found["movements"]],
        next_cursor=found["next_cursor"],
    )


def movement_from(found: Mapping[str, Any]) -> Movement:
    currency = str(found["currency"])
    return Movement(
        cursor=Cursor.parse(found["cursor"]), entry_id=found["id"],
        type=MovementType(found["type"]), created_micros=utc_micros(time_from(found["created_at"])),
        amount_minor=minor(found["amount"], currency),
        balance_minor=minor(found["balance_after"], currency), currency=currency,
        counterparty=found["counterparty"], note=found["note"], state=found["state"],
    )  # fmt: skip


# --- a statement, as its CSV streams in ----------------------------------------------------------
class StatementReader:
    """Reads a statement's CSV (`render.movements.statement_csv_text`) from text chunks: the
    header and the opening balance at once (`statement`), then each movement as `lines` is read,
    in constant memory. The closing balance comes last in the document: `statement.closing`
    holds the opening balance until `lines` has been read to its end, then the server's closing
    balance, checked against the lines (as the local statement checks them against the ledger).

    The document carries no ledger cursors: each line's `cursor` is its place in the statement
    (a posting's number from 1, part 1 for its fee), enough to count postings. `postings`: how
    many the server said there are (`?count=true`), else None.
    """

    def __init__(self, chunks: Iterable[str], owner: Owner, start: datetime | None,
                 end: datetime | None, *, postings: int | None = None) -> None:  # fmt: skip
        self._rows = csv.reader(_lines(chunks))
        header = tuple(next(self._rows, ()))
        if header != CSV_HEADER:
            raise BadAnswer("the server's statement does not start with its CSV header")
        opening_row = self._row()
        if opening_row[1] != "opening_balance":
            raise BadAnswer("the server's statement has no opening balance")
        currency = opening_row[5]
        opening = Money(minor(opening_row[6], currency), currency)
        self.statement = Statement(
            owner=owner, currency=currency, start=start, end=end, opening=opening,
            closing=opening, postings=postings, lines=self._lines(currency),
            totals=StatementTotals(opening),
        )  # fmt: skip

    def _row(self) -> list[str]:
        row = next(self._rows, None)
        if row is None or len(row) != len(CSV_HEADER):
            raise BadAnswer("the server's statement ended before its closing balance")
        return row

    def _lines(self, currency: str) -> Iterator[Movement]:
        statement = self.statement
        totals = statement.totals
        posting = 0
        last_entry = None
        while True:
            at, kind, party, note, amount, _, after, state, entry_id = self._row()
            if kind == "total_in":
                break
            if not (kind == MovementType.FEE and entry_id == last_entry):
                posting += 1
            line = Movement(
                Cursor(posting, 1 if kind == MovementType.FEE else 0), entry_id,
                MovementType(kind), utc_micros(time_from(at)), minor(amount, currency),
                minor(after, currency), currency, party or None,
                note_from_csv(note) if note else None, state,
            )  # fmt: skip
            last_entry = entry_id
            totals.add(line)
            yield line
        money_in = minor(amount, currency)
        out_row = self._row()
        closing_row = self._row()
        if (out_row[1], closing_row[1]) != ("total_out", "closing_balance"):
            raise BadAnswer("the server's statement does not end with its totals")
        closing = Money(minor(closing_row[6], currency), currency)
        totals.check(closing)
        if (totals.money_in, totals.money_out) != (money_in, minor(out_row[4], currency)):
            raise LedgerInvariantBroken(
                f"the statement's lines add up to {totals.closing}, the server's totals differ"
            )
        statement.closing = closing


def _lines(chunks: Iterable[str]) -> Iterator[str]:
    """Text chunks as lines, each with its line end (so a quoted field may hold one)."""
    rest = ""
    for chunk in chunks:
        rest += chunk
        *whole, rest = rest.split("\n")
        for line in whole:
            yield line + "\n"
    if rest:
        yield rest


# --- usage statistics ----------------------------------------------------------------------------
def usage_from(
    stats: Mapping[str, Any], trends: Mapping[str, Any], user_id: str
) -> UsageStats | None:
    """`GET /reports/stats` (balance, counterparties, billers) and `/reports/trends` (each
    period's tallies) as one `UsageStats`; None if the two answers are not of the same
    movements (one came in between)."""
    currency = str(stats["currency"])
    period = Period(stats["period"])
    periods = tuple(_period_from(one, period, currency) for one in trends["periods"])
    if not periods:
        raise BadAnswer("the server's trends have no periods")
    found = UsageStats(
        user_id=user_id, phone=stats["user"]["phone"], name=stats["user"]["name"],
        currency=currency, period=period, periods=periods,
        counterparties=tuple(
            Counterparty(phone=one["phone"], name=one["name"], count=one["count"],
                         sent=minor(one["sent"], currency),
                         received=minor(one["received"], currency))
            for one in stats["counterparties"]
        ),
        billers=tuple(
            BillerTotal(biller_id=one["biller_id"], name=one["name"], category=one["category"],
                        count=one["count"], amount=minor(one["amount"], currency),
                        fees=minor(one["fees"], currency))
            for one in stats["billers"]
        ),
        balance=Money(minor(stats["balance"], currency), currency),
        generated_at=time_from(stats["generated_at"]),
    )  # fmt: skip
    same = (
        (stats["from"], stats["until"]) == (trends["from"], trends["until"])
        and _tally(stats["in"]["total"], currency) == found.total_in
        and _tally(stats["out"]["total"], currency) == found.total_out
        and _tally(stats["held"], currency) == found.held
        and _tallies(stats["in"]["categories"], currency) == found.totals(Flow.IN)
        and _tallies(stats["out"]["categories"], currency) == found.totals(Flow.OUT)
    )
    return found if same else None


def _period_from(found: Mapping[str, Any], period: Period, currency: str) -> PeriodStats:
    label = str(found["period"])
    try:
        start = datetime.strptime(
            label if period is Period.WEEK else f"{label}-01", "%Y-%m-%d"
        ).replace(tzinfo=UTC)
    except ValueError:
        raise BadAnswer(f"the server sent a period this client cannot read: {label!r}") from None
    end = start + timedelta(days=7) if period is Period.WEEK else add_months(start, 1)
    return PeriodStats(
        bucket=Bucket(label, start, end),
        money_in=_tallies(found["in_categories"], currency),
        money_out=_tallies(found["out_categories"], currency),
        held=_tally(found["held"], currency),
    )


def _tally(found: Mapping[str, Any], currency: str) -> Tally:
    return Tally(int(found["count"]), minor(found["amount"], currency),
                 minor(found["fees"], currency))  # fmt: skip


def _tallies(found: Mapping[str, Any], currency: str) -> dict[str, Tally]:
    return {str(name): _tally(one, currency) for name, one in found.items()}


def period_params(period: Period | None, months: int | None) -> list[tuple[str, str]]:
    found = []
    if period is not None:
        found.append(("period", period.value))
    if months is not None:
        found.append(("months", str(months)))
    return found
