"""Statements and history pages as CSV or JSON, written line by line as they are read.

A statement of any length is exported in constant memory: the service reads the ledger in keyset
batches inside one snapshot, and each line is written as it arrives. On a terminal, writing to a
file shows a progress bar (never on a pipe).

CSV: a header, an `opening_balance` row, one row per movement, then `total_in`, `total_out` and
`closing_balance` rows (the totals in `amount`, the balances in `balance_after`).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from mwallet.core.domain.movements import Movement
    from mwallet.core.domain.users import Principal
    from mwallet.core.services.history import Statement
    from mwallet.core.services.wallet_service import WalletService

CSV_HEADER = (
    "created_at", "type", "counterparty", "note", "amount", "currency", "balance_after", "state",
    "id",
)  # fmt: skip
# A progress bar is worth showing from this many postings on.
PROGRESS_FROM = 5000


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def decimal(minor: int, exponent: int) -> str:
    """Minor units as a plain decimal string ("-12.50"), as `Money.to_decimal_string` writes
    them, without building a Money for each of a statement's lines."""
    if exponent == 0:
        return str(minor)
    # At least one digit before the point; %-formatting is the cheapest way to pad.
    digits = "%0*d" % (exponent + 1, -minor if minor < 0 else minor)  # noqa: UP031
    return ("-" if minor < 0 else "") + digits[:-exponent] + "." + digits[-exponent:]


def _row(line: Movement, exponent: int) -> tuple[str, ...]:
    return _rows((line,), exponent)[0]


def _rows(lines: Iterable[Movement], exponent: int) -> list[tuple[str, ...]]:
    """CSV rows of lines, built in one loop: a statement writes millions. The movement type is
    a StrEnum, which the CSV writer writes as its value; amounts are written as `decimal` would
    write them, inline (a call per amount costs more than the formatting)."""
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


def _batched(lines: Iterable[Movement], size: int = 1000) -> Iterator[list[Movement]]:
    source = iter(lines)
    while batch := list(islice(source, size)):
        yield batch


def _exponent(currency: str) -> int:
    from mwallet.core.domain.money import currency_exponent

    return currency_exponent(currency)


def write_movements_csv(lines: Iterable[Movement], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(_row(line, _exponent(line.currency)) for line in lines)


def export_statement(
    service: WalletService,
    principal: Principal,
    *,
    phone: str | None,
    start: datetime | None,
    end: datetime | None,
    kind: str,
    path: Path | None,
) -> None:
    """Write a statement to `path` (or stdout) as `kind` (csv, json); with a file, print a
    summary on stdout."""
    show_progress = path is not None and sys.stderr.isatty()
    with service.statement(
        principal, phone=phone, start=start, end=end, count=show_progress
    ) as statement:
        out = sys.stdout if path is None else path.open("w", encoding="utf-8", newline="")
        try:
            lines = statement.lines
            if show_progress and (statement.postings or 0) >= PROGRESS_FROM:
                lines = _with_progress(lines, statement.postings or 0)
            if kind == "json":
                write_statement_json(statement, lines, out)
            else:
                write_statement_csv(statement, lines, out)
        finally:
            if out is not sys.stdout:
                out.close()
    if path is not None:
        totals = statement.totals
        print(
            f"{totals.count} movements to {path}: opening {statement.opening.format()}, "
            f"in {_money(totals.money_in, statement)}, out {_money(totals.money_out, statement)}, "
            f"closing {statement.closing.format()}"
        )


def _money(minor: int, statement: Statement) -> str:
    from mwallet.core.domain.money import Money

    return Money(minor, statement.currency).format()


def _plain(minor: int, statement: Statement) -> str:
    from mwallet.core.domain.money import Money

    return Money(minor, statement.currency).to_decimal_string()


def write_statement_csv(statement: Statement, lines: Iterable[Movement], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    currency = statement.currency
    opening = statement.opening.to_decimal_string()
    writer.writerow((_when(statement.start), "opening_balance", "", "", "", currency, opening,
                     "", ""))  # fmt: skip
    exponent = _exponent(currency)
    for batch in _batched(lines):
        writer.writerows(_rows(batch, exponent))
    totals = statement.totals
    end = _when(statement.end)
    closing = statement.closing.to_decimal_string()
    writer.writerows(
        (
            (end, "total_in", "", "", _plain(totals.money_in, statement), currency, "", "", ""),
            (end, "total_out", "", "", _plain(totals.money_out, statement), currency, "", "", ""),
            (end, "closing_balance", "", "", "", currency, closing, "", ""),
        )
    )


def write_statement_json(statement: Statement, lines: Iterable[Movement], out: TextIO) -> None:
    """One JSON document, its `movements` array written element by element."""
    head: dict[str, Any] = {
        "user": statement.owner.phone,
        "currency": statement.currency,
        "from": _when(statement.start) or None,
        "to": _when(statement.end) or None,
        "opening_balance": statement.opening.to_decimal_string(),
    }
    out.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "movements": [')
    separator = "\n"
    exponent = _exponent(statement.currency)
    for line in lines:
        out.write(separator)
        out.write(json.dumps(_line_json(line, exponent), ensure_ascii=False))
        separator = ",\n"
    totals = statement.totals
    tail = {
        "count": totals.count,
        "total_in": _plain(totals.money_in, statement),
        "total_out": _plain(totals.money_out, statement),
        "total_fees": _plain(totals.fees, statement),
        "closing_balance": statement.closing.to_decimal_string(),
    }
    out.write("\n], " + json.dumps(tail, ensure_ascii=False)[1:] + "\n")


def _line_json(line: Movement, exponent: int) -> dict[str, Any]:
    return {
        "id": line.entry_id,
        "type": line.type.value,
        "created_at": _when(line.created_at),
        "amount": decimal(line.amount_minor, exponent),
        "balance_after": decimal(line.balance_minor, exponent),
        "counterparty": line.counterparty,
        "note": line.note,
        "state": line.state,
    }


def _with_progress(lines: Iterator[Movement], total: int) -> Iterator[Movement]:
    """The lines, advancing a progress bar on stderr by postings read."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("Statement", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("statement", total=total)
        last = None
        done = 0
        for line in lines:
            if line.cursor.posting_id != last:
                last = line.cursor.posting_id
                done += 1
                if done % 1000 == 0:
                    progress.update(task, completed=done)
            yield line
        progress.update(task, completed=done)
