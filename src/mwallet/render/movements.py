"""A wallet's movements as documents: a history page (`mwallet history --json`,
`GET /reports/transactions/{user_id}`), CSV rows of movements, and a statement as JSON text or CSV
rows produced line by line as the service reads them (constant memory for any period).

A statement in CSV: a header, an `opening_balance` row, one row per movement, then `total_in`,
`total_out` and `closing_balance` rows (the totals in `amount`, the balances in `balance_after`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
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
# Rows a CSV text chunk holds (`csv_text`): big enough to be cheap, small enough to stream.
CSV_CHUNK_ROWS = 500


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


def movement_row(line: Movement, exponent: int) -> tuple[str, ...]:
    return movement_rows((line,), exponent)[0]


def movement_rows(lines: Iterable[Movement], exponent: int) -> list[tuple[str, ...]]:
    """CSV rows of lines, built in one loop: a statement writes millions. The movement type is
    a StrEnum, which the CSV writer writes as its value; amounts are written as
    `values.decimal` would write them, inline (a call per amount costs more than the
    formatting)."""
    if exponent == 0:
        return [
            (at.isoformat(timespec="seconds").replace("+00:00", "Z"), kind, party or "",
             note or "", str(amount), currency, str(balance), state, entry_id)
            for _, entry_id, kind, at, amount, balance, currency, party, note, state in lines
        ]  # fmt: skip
    scale = 10**exponent
    plain = f"%d.%0{exponent}d"  # whole units, then the minor ones zero-padded
    return [
        (
            at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            kind,
            party or "",
            note or "",
            plain % divmod(amount, scale) if amount >= 0 else "-" + plain % divmod(-amount, scale),
            currency,
            plain % divmod(balance, scale)
            if balance >= 0
            else "-" + plain % divmod(-balance, scale),
            state,
            entry_id,
        )
        for _, entry_id, kind, at, amount, balance, currency, party, note, state in lines
    ]


def batched(lines: Iterable[Movement], size: int = 1000) -> Iterator[list[Movement]]:
    source = iter(lines)
    while batch := list(islice(source, size)):
        yield batch


def movements_csv_rows(lines: Iterable[Movement]) -> Iterator[Sequence[str]]:
    yield CSV_HEADER
    for line in lines:
        yield movement_row(line, exponent_of(line.currency))


def _opt_when(statement_time: Any) -> str:
    return when(statement_time) if statement_time is not None else ""


def statement_csv_rows(statement: Statement, lines: Iterable[Movement]) -> Iterator[Sequence[str]]:
    """The statement's CSV rows; the totals rows come once `lines` has been read to its end."""
    currency = statement.currency
    yield CSV_HEADER
    yield (_opt_when(statement.start), "opening_balance", "", "", "", currency,
           statement.opening.to_decimal_string(), "", "")  # fmt: skip
    exponent = exponent_of(currency)
    for batch in batched(lines):
        yield from movement_rows(batch, exponent)
    totals = statement.totals
    end = _opt_when(statement.end)
    yield (end, "total_in", "", "", money(totals.money_in, currency), currency, "", "", "")
    yield (end, "total_out", "", "", money(totals.money_out, currency), currency, "", "", "")
    yield (end, "closing_balance", "", "", "", currency, statement.closing.to_decimal_string(),
           "", "")  # fmt: skip


def csv_text(rows: Iterable[Sequence[str]], per_chunk: int = CSV_CHUNK_ROWS) -> Iterator[str]:
    """CSV rows as text, a chunk of rows at a time (for a stream that is not a file)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    waiting = 0
    for row in rows:
        writer.writerow(row)
        waiting += 1
        if waiting == per_chunk:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            waiting = 0
    if waiting:
        yield buffer.getvalue()


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
