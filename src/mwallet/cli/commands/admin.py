"""mwallet admin …: operator commands; those of a person's record (roles, tiers, a wallet's
status), `users show` and the reports also go to a server (`--server`)."""

from datetime import UTC, datetime
from typing import Annotated

import typer

from mwallet.cli import output
from mwallet.cli.commands import tariffs
from mwallet.cli.commands.cash import terminals_app, withdrawals_admin_app
from mwallet.cli.commands.notify import notify_admin_app
from mwallet.cli.commands.payments import billers_admin_app, payments_admin_app
from mwallet.cli.commands.security import clients_app, keys_app, limits_app
from mwallet.cli.commands.stats import admin_report_app
from mwallet.cli.context import JsonFlag, state
from mwallet.cli.exit_codes import Exit, ExitCode
from mwallet.render.users import user_json

admin_app = typer.Typer(
    help="Operator commands: log in as an admin (or an auditor, to read).", no_args_is_help=True
)
users_app = typer.Typer(help="List and show users, give roles, freeze.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
wallets_app = typer.Typer(help="Freeze, unfreeze or close a wallet.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
admin_app.add_typer(ledger_app, name="ledger")
admin_app.add_typer(wallets_app, name="wallets")
admin_app.add_typer(audit_app, name="audit")
admin_app.add_typer(users_app, name="users")
admin_app.add_typer(keys_app, name="keys")
admin_app.add_typer(clients_app, name="clients")
admin_app.add_typer(limits_app, name="limits")
admin_app.add_typer(tariffs.tariffs_admin_app, name="tariffs")
admin_app.add_typer(terminals_app, name="terminals")
admin_app.add_typer(withdrawals_admin_app, name="withdrawals")
admin_app.add_typer(notify_admin_app, name="notify")
admin_app.add_typer(billers_admin_app, name="billers")
admin_app.add_typer(payments_admin_app, name="payments")
admin_app.add_typer(admin_report_app, name="report")

Phone = Annotated[str, typer.Argument(help="The wallet owner's phone number.")]


@ledger_app.command("verify")
def verify(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Recompute every balance from the postings; exit 7 if anything does not add up."""
    cli = state(ctx)
    report = cli.service().verify_ledger(actor=cli.principal())
    if as_json:
        output.emit_json(output.report_json(report))
    else:
        output.print_report(report)
    if not report.ok:
        raise Exit(
            ExitCode.LEDGER_UNSOUND,
            f"the ledger has {len(report.problems)} problem(s)",
            "ledger_unsound",
        )


def _set_status(ctx: typer.Context, phone: str, status_name: str, as_json: bool) -> None:
    from mwallet.core.domain.ledger import AccountStatus

    cli = state(ctx)
    status = cli.user_service().set_wallet_status(
        actor=cli.principal(), phone=phone, status=AccountStatus(status_name)
    )
    if as_json:
        output.emit_json({"phone": phone, "status": status.value})
        return
    output.console().print(f"The wallet of {phone} is now {status.value}.")


@wallets_app.command("freeze")
def freeze(ctx: typer.Context, phone: Phone, as_json: JsonFlag = False) -> None:
    """Stop all money in and out of a wallet."""
    _set_status(ctx, phone, "frozen", as_json)


@wallets_app.command("unfreeze")
def unfreeze(ctx: typer.Context, phone: Phone, as_json: JsonFlag = False) -> None:
    """Let a frozen wallet move money again."""
    _set_status(ctx, phone, "active", as_json)


@wallets_app.command("close")
def close(ctx: typer.Context, phone: Phone, as_json: JsonFlag = False) -> None:
    """Close an empty wallet for good."""
    _set_status(ctx, phone, "closed", as_json)


@audit_app.command("show")
def audit_show(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="How many records, newest first.")] = 50,
    since: Annotated[
        str | None, typer.Option("--since", help="Only records from this UTC date or time on.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the newest audit records."""
    cli = state(ctx)
    records = cli.service().audit_log(actor=cli.principal(), limit=limit, since=_moment(since))
    if as_json:
        output.emit_json(output.audit_json(records))
        return
    output.print_audit(records)


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    forget_anchor: Annotated[
        bool,
        typer.Option(
            "--forget-anchor",
            help="Drop this database's anchor first (after recreating the database on purpose).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Check every record's hash chain; exit 7 and name the first bad record if one was altered,
    removed or reordered (removing the newest ones is caught against MWALLET_HOME's anchor)."""
    from mwallet.cli import audit_anchor

    cli = state(ctx)
    service = cli.service()
    where = cli.database_label()
    try:
        if forget_anchor:
            audit_anchor.forget(cli.home, where)
        anchor = audit_anchor.load(cli.home, where)
    except audit_anchor.AnchorUnreadable as exc:
        raise Exit(ExitCode.LEDGER_UNSOUND, str(exc), "audit_anchor_unreadable") from exc
    report = service.verify_audit_log(actor=cli.principal(), anchor=anchor)
    if report.ok and report.head is not None:
        audit_anchor.save(cli.home, where, report.head)
    if as_json:
        output.emit_json(
            {
                "ok": report.ok,
                "records": report.records,
                "problem": report.problem,
                "anchored_at": anchor.seq if anchor is not None else None,
            }
        )
    else:
        output.print_audit_report(report, anchored_at=anchor.seq if anchor else None)
    if not report.ok:
        raise Exit(
            ExitCode.LEDGER_UNSOUND,
            f"the audit log is broken: {report.problem}",
            "audit_log_broken",
        )


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Exit(
            ExitCode.USAGE,
            f"--since {text!r}: write a date like 2026-11-29 or 2026-11-29T14:30",
            "invalid_input",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@users_app.command("list")
def users_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="How many, in phone order.")] = 50,
    after: Annotated[
        str | None, typer.Option("--after", help="Start after this phone number (paging).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List users with their roles."""
    cli = state(ctx)
    found = cli.service().list_users(actor=cli.principal(), limit=limit, after_phone=after)
    if as_json:
        output.emit_json([user_json(user) for user in found])
        return
    output.print_users(found)


@users_app.command("show")
def users_show(ctx: typer.Context, phone: Phone, as_json: JsonFlag = False) -> None:
    """Show one user."""
    cli = state(ctx)
    user = cli.user_service().show_user(actor=cli.principal(), phone=phone)
    if as_json:
        output.emit_json(user_json(user))
        return
    output.print_users([user])


@users_app.command("set-role")
def users_set_role(
    ctx: typer.Context,
    phone: Phone,
    role: Annotated[str, typer.Argument(help="customer, agent, atm, admin or auditor.")],
    as_json: JsonFlag = False,
) -> None:
    """Give a user a role (admins only; the last admin cannot be demoted)."""
    from mwallet.core.domain.roles import parse_role

    cli = state(ctx)
    user = cli.user_service().set_role(actor=cli.principal(), phone=phone, role=parse_role(role))
    if as_json:
        output.emit_json(user_json(user))
        return
    output.console().print(f"{user.display_name} ({user.phone}) is now {user.role.value}.")


# `admin users freeze|unfreeze` are the wallet commands under the name issue 3 gives them.
users_app.command("freeze")(freeze)
users_app.command("unfreeze")(unfreeze)
users_app.command("tier")(tariffs.users_tier)
