"""A wallet's movements as documents: a history page (`mwallet history --json`,
`GET /reports/transactions/{user_id}`), CSV of movements, and a statement as JSON text or CSV
text produced batch by batch as the service reads it (constant memory for any period).

A statement in CSV: a header, an `opening_balance` row, one row per movement, then `total_in`,
`total_out` and `closing_balance` rows (the totals in `amount`, the balances in `balance_after`).
The CSV is what the `csv` module writes (the excel dialect, `\n` line ends); a statement's
movement rows are written here instead, a batch in one loop (`csv_lines`), to the same bytes: a
statement writes millions, and a row through the csv writer costs more than formatting it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, timedelta
from functools import lru_cache
from itertools import islice
from typing import TYPE_CHECKING, Any

from mwallet.render.values import decimal, money, when

if TYPE_CHECKING:
    from mwallet.core.domain.movements import Movement
    from mwallet.core.services.history import MovementPage, Statement

CSV_HEADER = (
    "created_at", "type", "counterparty", "note", "amount", "currency", "balance_after", "state",
    "id",
)  # fmt: skip
# The HTTP header in which a statement asked for with `?count=true` says how many postings it
# holds, before its first line (a client's progress bar).
POSTINGS_HEADER = "X-Statement-Postings"
# Lines a statement's CSV text piece holds: big enough to be cheap, small enough to stream.
CSV_CHUNK_ROWS = 1000
_DAY_ZERO = date(1970, 1, 1)
_DAY_MICROS = 86_400_000_000


def exponent_of(currency: str) -> int:
    from mwallet.core.domain.money import currency_exponent

    return currency_exponent(currency)


def movement_json(line: Movement) -> dict[str, Any]:
    return {
        "id": line.entry_id,
        "type": line.type.value,
        "created_at": when(line.created_at),
        "amount": line.amount.to_decimal_string(),
        "currency": line.amount.currency,
        "balance_after": line.balance_after.to_decimal_string(),
        "counterparty": line.counterparty,
        "note": line.note,
        "state": line.state,
        "cursor": line.cursor.encode(),
    }


def movement_page_json(page: MovementPage) -> dict[str, Any]:
    return {
        "user": page.owner.phone,
        "movements": [movement_json(line) for line in page.movements],
        "next_cursor": page.next_cursor,
    }


def csv_row(row: Sequence[str]) -> str:
    """One row of CSV text, as the csv module writes it."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    return buffer.getvalue()


def _csv_field(text: str) -> str:
    """A field as the csv module writes it inside a row: quoted only when it must be."""
    return csv_row((text, ""))[:-2]  # the row "field,\n" (a lone empty field would be quoted)


# "00" to "59": the hours, minutes and seconds of a line's time, by index.
_TWO_DIGITS = tuple(f"{number:02d}" for number in range(60))


@lru_cache(maxsize=8)
def _decimals(exponent: int) -> tuple[str, ...]:
    """The text after the whole units of an amount, by its minor units: ".00" to ".99" for two
    decimals, nothing for none (a currency with three has a thousand of these)."""
    return tuple(f".{minor:0{exponent}d}" for minor in range(10**exponent)) if exponent else ("",)


def csv_lines(lines: Iterable[Movement], exponent: int) -> str:
    """CSV rows of movements of one currency (`exponent` decimals), as one text, built in one
    loop: the same bytes as the csv module writes (`csv_row`), at a fraction of its cost.

    Times are written from the lines' microseconds (`values.when`'s text: RFC 3339, UTC, whole
    seconds, `Z`), the date worked out once per day; amounts as `values.decimal` writes them.
    Digits come from tables (`_TWO_DIGITS`, `_decimals`) and integer division, not from format
    specifications and `divmod`: a statement writes millions of lines.
    """
    out: list[str] = []
    add = out.append
    scale = 10**exponent
    decimals = _decimals(exponent)
    two = _TWO_DIGITS
    names: dict[str, str] = {}  # a MovementType's value, without StrEnum's slower formatting
    last_day = None
    day = ""
    for _, entry_id, kind, at, amount, balance, currency, party, note, state in lines:
        day_number = at // _DAY_MICROS
        if day_number != last_day:
            last_day = day_number
            day = (_DAY_ZERO + timedelta(days=day_number)).isoformat()
        seconds = at // 1_000_000 % 86_400  # of the day (floored, like the day, before 1970)
        name = names.get(kind)
        if name is None:
            name = names[kind] = kind.value
        if not party:  # _text(party), inlined
            shown = ""
        elif "," in party or '"' in party or "\n" in party or "\r" in party:
            shown = _csv_field(party)
        else:
            shown = party
        if amount >= 0:
            written = f"{amount // scale}{decimals[amount % scale]}"
        else:
            written = f"-{-amount // scale}{decimals[-amount % scale]}"
        if balance >= 0:
            after = f"{balance // scale}{decimals[balance % scale]}"
        else:
            after = f"-{-balance // scale}{decimals[-balance % scale]}"
        add(
            f"{day}T{two[seconds // 3600]}:{two[seconds // 60 % 60]}:{two[seconds % 60]}Z,"
            f"{name},{shown},{_text(note_for_csv(note)) if note else ''},{written},{currency},"
            f"{after},{state},{entry_id}\n"
        )
    return "".join(out)


# A note is another person's free text. One that a spreadsheet opening the CSV would run as a
# formula ("CSV injection": it starts with =, @, a tab or a carriage return, or with + or - and is
# more than a number, as a phone number topped up with airtime is) is written after a ', which
# spreadsheets show as text; a note that starts with ' gets one more, so whoever reads the CSV
# back takes exactly one off (`note_from_csv`). JSON carries notes as they are.
_FORMULA_STARTS = ("=", "@", "\t", "\r", "'")
_SIGNS = ("+", "-")


def note_for_csv(note: str) -> str:
    """A note as a CSV field holds it (before quoting): never something a spreadsheet would run."""
    if note.startswith(_FORMULA_STARTS) or (
        note.startswith(_SIGNS) and not note[1:].replace(" ", "").isdigit()
    ):
        return "'" + note
    return note


def note_from_csv(field: str) -> str:
    """The note a CSV field written by `note_for_csv` holds."""
    return field[1:] if field.startswith("'") else field


def _text(value: str | None) -> str:
    """A text field (a counterparty, a note) as the csv module writes it. Only a comma, a quote
    or a line end may make it quote a field (which of them do depends on the Python version:
    `_csv_field` asks it); a field with none of them is written as it is."""
    if not value:
        return ""
    if "," in value or '"' in value or "\n" in value or "\r" in value:
        return _csv_field(value)
    return value


def batched(lines: Iterable[Movement], size: int = CSV_CHUNK_ROWS) -> Iterator[list[Movement]]:
    source = iter(lines)
    while batch := list(islice(source, size)):
        yield batch


def movements_csv_text(lines: Iterable[Movement]) -> str:
    """A history page's movements as CSV text, its header first."""
    return csv_row(CSV_HEADER) + "".join(
        csv_lines((line,), exponent_of(line.currency)) for line in lines
    )


def _opt_when(statement_time: Any) -> str:
    return when(statement_time) if statement_time is not None else ""


def statement_csv_text(
    statement: Statement, lines: Iterable[Movement], per_piece: int = CSV_CHUNK_ROWS
) -> Iterator[str]:
    """The statement's CSV text in pieces: the header and the opening balance, then `per_piece`
    movements at a time, then the totals, which come once `lines` has been read to its end."""
    currency = statement.currency
    yield csv_row(CSV_HEADER) + csv_row(
        (_opt_when(statement.start), "opening_balance", "", "", "", currency,
         statement.opening.to_decimal_string(), "", "")
    )  # fmt: skip
    exponent = exponent_of(currency)
    for batch in batched(lines, per_piece):
        yield csv_lines(batch, exponent)
    totals = statement.totals
    end = _opt_when(statement.end)
    yield "".join(
        csv_row(row)
        for row in (
            (end, "total_in", "", "", money(totals.money_in, currency), currency, "", "", ""),
            (end, "total_out", "", "", money(totals.money_out, currency), currency, "", "", ""),
            (end, "closing_balance", "", "", "", currency,
             statement.closing.to_decimal_string(), "", ""),
        )
    )  # fmt: skip


def statement_json_text(statement: Statement, lines: Iterable[Movement]) -> Iterator[str]:
    """One JSON document in pieces, its `movements` array an element at a time; the totals come
    once `lines` has been read to its end."""
    head: dict[str, Any] = {
        "user": statement.owner.phone,
        "currency": statement.currency,
        "from": _opt_when(statement.start) or None,
        "to": _opt_when(statement.end) or None,
        "opening_balance": statement.opening.to_decimal_string(),
    }
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "movements": ['
    separator = "\n"
    exponent = exponent_of(statement.currency)
    for line in lines:
        yield separator + json.dumps(statement_line_json(line, exponent), ensure_ascii=False)
        separator = ",\n"
    totals = statement.totals
    currency = statement.currency
    tail = {
        "count": totals.count,
        "total_in": money(totals.money_in, currency),
        "total_out": money(totals.money_out, currency),
        "total_fees": money(totals.fees, currency),
        "closing_balance": statement.closing.to_decimal_string(),
    }
    yield "\n], " + json.dumps(tail, ensure_ascii=False)[1:] + "\n"


def statement_line_json(line: Movement, exponent: int) -> dict[str, Any]:
    return {
        "id": line.entry_id,
        "type": line.type.value,
        "created_at": when(line.created_at),
        "amount": decimal(line.amount_minor, exponent),
        "balance_after": decimal(line.balance_minor, exponent),
        "counterparty": line.counterparty,
        "note": line.note,
        "state": line.state,
    }
