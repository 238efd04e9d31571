"""mwallet report stats|trends (a person's usage statistics) and mwallet admin report … (the
operators' reports: volumes, active users, fees, cash at terminals, holds, trial balance)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mwallet.cli import stats_output
from mwallet.cli.context import JsonFlag, state
from mwallet.cli.exit_codes import fail
from mwallet.cli.output import emit_json
from mwallet.render import reports

if TYPE_CHECKING:
    from mwallet.core.domain.statistics import UsageStats

report_app = typer.Typer(
    help="Your usage statistics and trends (an admin or auditor: anyone's).", no_args_is_help=True
)
admin_report_app = typer.Typer(
    help="Operators' reports: volumes, active users, fees, cash, holds, trial balance.",
    no_args_is_help=True,
)

PeriodOption = Annotated[
    str, typer.Option("--period", help="Sum per month or per week (UTC).", metavar="month|week")
]
MonthsOption = Annotated[
    int, typer.Option("--months", help="How many calendar months back, this one included (1-36).")
]
UserOption = Annotated[
    str | None,
    typer.Option("--user", help="Another person's phone (admins and auditors).", metavar="PHONE"),
]
DaysOption = Annotated[int, typer.Option("--days", help="How many days back, today included.")]
CsvFlag = Annotated[bool, typer.Option("--csv", help="Print CSV on stdout instead of tables.")]


def _usage(ctx: typer.Context, period: str, months: int, user: str | None) -> UsageStats:
    from mwallet.core.domain.statistics import check_months, parse_period

    parsed = parse_period(period)
    check_months(months)
    cli = state(ctx)
    return cli.user_service().usage_statistics(
        cli.principal(), period=parsed, months=months, phone=user
    )


@report_app.command("stats")
def stats(
    ctx: typer.Context,
    period: PeriodOption = "month",
    months: MonthsOption = 6,
    user: UserOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Totals and counts per category, average ticket, top counterparties and billers."""
    found = _usage(ctx, period, months, user)
    if as_json:
        emit_json(reports.stats_json(found))
    else:
        stats_output.print_stats(found)


@report_app.command("trends")
def trends(
    ctx: typer.Context,
    period: PeriodOption = "month",
    months: MonthsOption = 6,
    user: UserOption = None,
    png: Annotated[
        Path | None, typer.Option("--png", help="Also draw the chart into this PNG file.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Money out per period and category, with the change against the period before, as a chart."""
    if png is not None and not png.parent.is_dir():
        raise fail(f"cannot write {png}: no folder {png.parent}")
    found = _usage(ctx, period, months, user)
    if png is not None:
        from mwallet.cli.charts import png_chart

        try:
            png_chart(found, png)
        except OSError as exc:
            raise fail(f"cannot write {png}: {exc.strerror or exc}") from None
    if as_json:
        emit_json({**reports.trends_json(found), "png": str(png) if png else None})
        return
    stats_output.print_trends(found)
    if png is not None:
        stats_output._console(None).print(f"[dim]chart written to {png}[/dim]")


def _one_format(as_json: bool, as_csv: bool) -> None:
    if as_json and as_csv:
        raise fail("choose --json or --csv, not both")


@admin_report_app.command("volumes")
def volumes(
    ctx: typer.Context, days: DaysOption = 7, as_json: JsonFlag = False, as_csv: CsvFlag = False
) -> None:
    """Movements settled per product (transfer, topup, bill, airtime, withdrawal, cash_in) and day:
    how many, the money moved, the fees."""
    _one_format(as_json, as_csv)
    cli = state(ctx)
    report = cli.user_service().volume_report(actor=cli.principal(), days=days)
    if as_json:
        emit_json(reports.volumes_json(report))
    elif as_csv:
        stats_output.emit_csv(reports.VOLUME_COLUMNS, reports.volume_rows(report))
    else:
        stats_output.print_volumes(report)


@admin_report_app.command("active")
def active(
    ctx: typer.Context, days: DaysOption = 7, as_json: JsonFlag = False, as_csv: CsvFlag = False
) -> None:
    """Wallets that moved money, per day and over the window."""
    _one_format(as_json, as_csv)
    cli = state(ctx)
    report = cli.user_service().active_users_report(actor=cli.principal(), days=days)
    if as_json:
        emit_json(reports.active_json(report))
    elif as_csv:
        stats_output.emit_csv(("day", "active_users"), ((d.day, d.users) for d in report.days))
    else:
        stats_output.print_active(report)


@admin_report_app.command("fees")
def fees(
    ctx: typer.Context, days: DaysOption = 30, as_json: JsonFlag = False, as_csv: CsvFlag = False
) -> None:
    """Fees earned per product and day, and what the fees accounts hold."""
    _one_format(as_json, as_csv)
    cli = state(ctx)
    report = cli.user_service().fees_report(actor=cli.principal(), days=days)
    if as_json:
        emit_json(reports.fees_json(report))
    elif as_csv:
        stats_output.emit_csv(
            ("day", "product", "currency", "count", "fees"),
            (
                (
                    row.day,
                    row.product,
                    row.currency,
                    row.count,
                    reports.money(row.fees, row.currency),
                )
                for row in report.volumes.rows
            ),
        )
    else:
        stats_output.print_fees(report)


@admin_report_app.command("cash")
def cash(
    ctx: typer.Context, days: DaysOption = 1, as_json: JsonFlag = False, as_csv: CsvFlag = False
) -> None:
    """Per ATM and agent: cash paid out, cash taken in, an agent's float, an ATM's cassettes."""
    _one_format(as_json, as_csv)
    cli = state(ctx)
    found, first, last = cli.user_service().cash_report(actor=cli.principal(), days=days)
    if as_json:
        emit_json(reports.cash_json(found, first, last))
    elif as_csv:
        stats_output.emit_csv(reports.CASH_COLUMNS, map(reports.cash_row, found))
    else:
        stats_output.print_cash(found, first, last)


@admin_report_app.command("holds")
def holds(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option("--limit", help="List at most this many (oldest first).")
    ] = 100,
    as_json: JsonFlag = False,
    as_csv: CsvFlag = False,
) -> None:
    """Money held now: pending withdrawals, pending or unknown payments; checked against the holds
    accounts."""
    _one_format(as_json, as_csv)
    cli = state(ctx)
    report = cli.user_service().holds_report(actor=cli.principal(), limit=limit)
    if as_json:
        emit_json(reports.holds_json(report))
    elif as_csv:
        stats_output.emit_csv(reports.HOLD_COLUMNS, reports.hold_rows(report))
    else:
        stats_output.print_holds(report)


@admin_report_app.command("trial-balance")
def trial_balance(
    ctx: typer.Context,
    by_kind: Annotated[
        bool, typer.Option("--by-kind", help="One line per kind of account, not per account.")
    ] = False,
    as_json: JsonFlag = False,
    as_csv: CsvFlag = False,
) -> None:
    """Every account's balance, the sum per currency (zero), and whether the postings prove them;
    exit 7 if they do not."""
    from mwallet.cli.exit_codes import Exit, ExitCode

    _one_format(as_json, as_csv)
    cli = state(ctx)
    report = cli.user_service().trial_balance(actor=cli.principal())
    if as_json:
        emit_json(reports.trial_json(report))
    elif as_csv:
        stats_output.emit_csv(reports.TRIAL_COLUMNS, reports.trial_rows(report))
    else:
        stats_output.print_trial(report, by_kind=by_kind)
    if not (report.balanced and report.matches):
        raise Exit(ExitCode.LEDGER_UNSOUND, "the trial balance does not hold", "ledger_unsound")
