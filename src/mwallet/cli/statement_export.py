"""Statements and history pages as CSV or JSON files, written line by line as they are read.

A statement of any length is exported in constant memory: the service reads the ledger in keyset
batches inside one snapshot, and each line is written as it arrives. On a terminal, writing to a
file shows a progress bar (never on a pipe). The documents themselves (columns, JSON shape) are
`mwallet.render.movements`, shared with the HTTP server.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from mwallet.render.movements import movements_csv_text, statement_csv_text, statement_json_text

if TYPE_CHECKING:
    from mwallet.core.domain.movements import Movement
    from mwallet.core.domain.users import Principal
    from mwallet.core.services.history import Statement
    from mwallet.core.services.user_service import UserService

# A progress bar is worth showing from this many postings on.
PROGRESS_FROM = 5000


def write_movements_csv(lines: Iterable[Movement], out: TextIO) -> None:
    out.write(movements_csv_text(lines))


def export_statement(
    service: UserService,
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


def write_statement_csv(statement: Statement, lines: Iterable[Movement], out: TextIO) -> None:
    out.writelines(statement_csv_text(statement, lines))


def write_statement_json(statement: Statement, lines: Iterable[Movement], out: TextIO) -> None:
    """One JSON document, its `movements` array written element by element."""
    out.writelines(statement_json_text(statement, lines))


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
            if line.cursor.posted_micros != last:
                last = line.cursor.posted_micros
                done += 1
                if done % 1000 == 0:
                    progress.update(task, completed=done)
            yield line
        progress.update(task, completed=done)
