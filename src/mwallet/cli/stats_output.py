"""Rendering of statistics and operators' reports for people (Rich tables) and CSV on stdout; the
JSON documents and CSV rows themselves are `mwallet.render.reports`, shared with the HTTP server.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from mwallet.render.reports import HOLD_COLUMNS, TRIAL_COLUMNS, VOLUME_COLUMNS, hold_rows
from mwallet.render.values import when

if TYPE_CHECKING:
    from rich.console import Console

    from mwallet.core.domain.admin_reports import (
        ActiveUsers,
        FeesReport,
        HoldsReport,
        TerminalCash,
        TrialBalance,
        VolumeReport,
    )
    from mwallet.core.domain.statistics import UsageStats


def _shown(minor: int, currency: str) -> str:
    from mwallet.core.domain.money import Money

    return Money(minor, currency).format()


def emit_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


def _console(out: Console | None) -> Console:
    from mwallet.cli.output import console

    return out or console()


def _span(stats: UsageStats) -> str:
    from datetime import timedelta

    return f"{stats.start:%Y-%m-%d} to {stats.end - timedelta(days=1):%Y-%m-%d} (UTC)"


# --- a person's statistics -----------------------------------------------------------------------


def print_stats(stats: UsageStats, out: Console | None = None) -> None:
    from rich.table import Table

    from mwallet.core.domain.statistics import Flow

    out = _console(out)
    cur = stats.currency
    out.print(
        f"[bold]{stats.name}[/bold] ({stats.phone}) — {_span(stats)}, "
        f"balance {stats.balance.format()}"
    )
    table = Table(title="Money in and out", title_justify="left")
    for column, justify in (
        ("", "left"),
        ("category", "left"),
        ("count", "right"),
        ("amount", "right"),
        ("fees", "right"),
        ("average", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for flow, label in ((Flow.IN, "in"), (Flow.OUT, "out")):
        for category, tally in stats.totals(flow).items():
            table.add_row(
                label,
                category,
                str(tally.count),
                _shown(tally.amount, cur),
                _shown(tally.fees, cur),
                _shown(tally.average, cur),
            )
    for label, tally in (("in", stats.total_in), ("out", stats.total_out)):
        table.add_row(
            f"[bold]{label}[/bold]",
            "[bold]total[/bold]",
            str(tally.count),
            _shown(tally.amount, cur),
            _shown(tally.fees, cur),
            _shown(tally.average, cur),
        )
    held = stats.held
    if held.count:
        table.add_row(
            "held",
            "not settled yet",
            str(held.count),
            _shown(held.amount, cur),
            _shown(held.fees, cur),
            "",
        )
    out.print(table)
    if stats.counterparties:
        people = Table(title="Top counterparties", title_justify="left")
        for column in ("phone", "name", "transfers", "sent", "received"):
            people.add_column(column, justify="left" if column in ("phone", "name") else "right")
        for one in stats.counterparties:
            people.add_row(
                one.phone,
                one.name,
                str(one.count),
                _shown(one.sent, cur),
                _shown(one.received, cur),
            )
        out.print(people)
    if stats.billers:
        paid = Table(title="Top billers", title_justify="left")
        for column in ("biller", "category", "payments", "amount"):
            paid.add_column(column, justify="left" if column in ("biller", "category") else "right")
        for biller in stats.billers:
            paid.add_row(
                biller.name, biller.category, str(biller.count), _shown(biller.amount, cur)
            )
        out.print(paid)


def print_short_stats(stats: UsageStats, out: Console | None = None) -> None:
    """A few lines: money in, out (by category) and held over the window."""
    from mwallet.core.domain.statistics import Flow

    out = _console(out)
    cur = stats.currency
    out.print(f"  {stats.name}, {_span(stats)}:")
    for label, flow, tally in (("in", Flow.IN, stats.total_in), ("out", Flow.OUT, stats.total_out)):
        parts = ", ".join(
            f"{category} {_shown(one.gross, cur)} ({one.count})"
            for category, one in stats.totals(flow).items()
        )
        out.print(f"  {label:>4}: {_shown(tally.gross, cur)} in {tally.count} — {parts or 'none'}")
    if stats.held.count:
        out.print(f"  held: {_shown(stats.held.gross, cur)} in {stats.held.count} (not settled)")


def print_trends(stats: UsageStats, out: Console | None = None) -> None:
    from mwallet.cli.charts import terminal_chart

    out = _console(out)
    out.print(
        f"[bold]{stats.name}[/bold] ({stats.phone}) — money out per {stats.period.value} "
        f"(fees included), {_span(stats)}"
    )
    out.print(terminal_chart(stats))


# --- operators' reports --------------------------------------------------------------------------


def print_volumes(report: VolumeReport, title: str = "Volumes per product and day") -> None:
    from rich.table import Table

    table = Table(
        title=f"{title}, {report.days[0].label} to {report.days[-1].label} (UTC)",
        title_justify="left",
    )
    for column in VOLUME_COLUMNS:
        table.add_column(
            column, justify="right" if column in ("count", "volume", "fees") else "left"
        )
    for row in report.rows:
        table.add_row(
            row.day,
            row.product,
            row.currency,
            str(row.count),
            _shown(row.volume, row.currency),
            _shown(row.fees, row.currency),
        )
    for (product, cur), (count, volume, fees) in sorted(report.totals().items()):
        table.add_row(
            "[bold]total[/bold]", product, cur, str(count), _shown(volume, cur), _shown(fees, cur)
        )
    _console(None).print(table)


def print_active(report: ActiveUsers) -> None:
    from rich.table import Table

    table = Table(title="Active users per day (UTC)", title_justify="left")
    table.add_column("day")
    table.add_column("active users", justify="right")
    for one in report.days:
        table.add_row(one.day, str(one.users))
    out = _console(None)
    out.print(table)
    out.print(
        f"{report.window} of {report.registered} wallets moved money between "
        f"{report.days[0].day} and {report.days[-1].day}."
    )


def print_fees(report: FeesReport) -> None:
    print_volumes(report.volumes, "Fees earned per product and day")
    for cur, total in sorted(report.balances.items()):
        _console(None).print(f"fees:{cur} holds {_shown(total, cur)} (all time)")


def print_cash(found: Sequence[TerminalCash], first: str, last: str) -> None:
    from rich.table import Table

    table = Table(title=f"Cash at terminals, {first} to {last} (UTC)", title_justify="left")
    for column in ("terminal", "kind", "paid out", "cash in", "float / owed", "in cassettes"):
        table.add_column(column, justify="left" if column in ("terminal", "kind") else "right")
    for one in found:
        cur = one.currency
        name = one.name + (f" ({one.agent_phone})" if one.agent_phone else "")
        table.add_row(
            f"{name}\n[dim]{one.terminal_id}[/dim]",
            one.kind,
            f"{one.paid_out_count} x, {_shown(one.paid_out, cur)}",
            f"{one.cash_in_count} x, {_shown(one.cash_in, cur)}" if one.kind == "agent" else "",
            _shown(one.account_balance, cur),
            "" if one.cassette_cash is None else _shown(one.cassette_cash, cur),
        )
    out = _console(None)
    out.print(table)
    out.print(
        "[dim]float: an agent's wallet; owed: e-money an ATM paid out, due to its operator[/dim]"
    )


def print_holds(report: HoldsReport) -> None:
    from rich.table import Table

    table = Table(title=f"Outstanding holds: {report.count}", title_justify="left")
    for column in HOLD_COLUMNS:
        table.add_column(column, justify="right" if column == "held" else "left")
    for row in hold_rows(report):
        table.add_row(*(str(value) for value in row))
    out = _console(None)
    out.print(table)
    if report.count > len(report.holds):
        out.print(f"[dim](the oldest {len(report.holds)} shown)[/dim]")
    for cur in sorted(set(report.held) | set(report.holds_accounts)):
        out.print(
            f"{cur}: held {_shown(report.held.get(cur, 0), cur)}; holds:{cur} "
            f"{_shown(report.holds_accounts.get(cur, 0), cur)}"
        )
    out.print(
        "[green]the holds accounts match[/green]"
        if report.matches
        else "[red]the holds accounts do NOT match the outstanding holds[/red]"
    )


def print_trial(report: TrialBalance, *, by_kind: bool, out: Console | None = None) -> None:
    from rich.table import Table

    out = _console(out)
    table = Table(title=f"Trial balance at {when(report.at)}", title_justify="left")
    if by_kind:
        for column in ("currency", "kind", "accounts", "balance"):
            table.add_column(
                column, justify="right" if column in ("accounts", "balance") else "left"
            )
        for (cur, kind), (count, total) in report.by_kind().items():
            table.add_row(cur, kind, str(count), _shown(total, cur))
    else:
        for column in TRIAL_COLUMNS:
            table.add_column(column, justify="right" if column == "balance" else "left")
        for line in report.accounts:
            table.add_row(
                line.code,
                line.kind,
                line.currency,
                line.status,
                _shown(line.balance, line.currency),
            )
    out.print(table)
    print_trial_summary(report, out)


def print_trial_summary(report: TrialBalance, out: Console | None = None) -> None:
    out = _console(out)
    for cur, total in report.totals().items():
        mark = "[green]zero[/green]" if total == 0 else "[red]NOT zero[/red]"
        count = sum(1 for line in report.accounts if line.currency == cur)
        out.print(f"{cur}: the balances of {count} accounts sum to {_shown(total, cur)} ({mark})")
    if report.matches:
        out.print("[green]every balance matches its postings; the books verify[/green]")
    else:
        out.print("[red]the balances do not match the postings:[/red]")
        for problem in report.verification.problems:
            out.print(f"  {problem}")
    for warning in report.verification.warnings:
        out.print(f"[yellow]! {warning}[/yellow]")
