"""balance, topup, send, history, statement."""

from pathlib import Path
from typing import Annotated

import typer

from mwallet.cli import output
from mwallet.cli.commands.tariffs import confirm_cost
from mwallet.cli.context import Code, IdempotencyKey, JsonFlag, idempotency_key_or_new, state
from mwallet.cli.exit_codes import fail, retry_hint

Amount = Annotated[str, typer.Argument(help="Amount in the wallet's currency, e.g. 12.50.")]


def balance(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show your balance."""
    cli = state(ctx)
    result = cli.user_service().balance(cli.principal())
    if as_json:
        output.emit_json(output.balance_json(result))
        return
    output.print_balance(result)


def topup(
    ctx: typer.Context,
    amount: Amount,
    source: Annotated[
        str, typer.Option("--source", help="sandbox (instant), or a card or bank provider.")
    ] = "sandbox",
    card: Annotated[
        str | None, typer.Option("--card", help="The card number, for a card provider.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm a fee.")] = False,
    idempotency_key: IdempotencyKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Add money to your wallet. From a card, it is credited once the provider approves: a
    declined or timed-out charge credits nothing, and a late approval credits it once."""
    cli = state(ctx)
    service = cli.user_service()
    key = idempotency_key_or_new(idempotency_key)
    if source != "sandbox":
        from mwallet.cli.commands.payments import run_payment
        from mwallet.core.domain.tariffs import Movement

        money = service.parse_money(amount)
        confirm_cost(cli, Movement.TOPUP, money, f"Top up {money.format()} from {source}",
                     skip=yes or as_json)  # fmt: skip
        run_payment(
            lambda key: service.top_up_from(
                cli.principal(), source=source, reference=card or "", amount=money,
                idempotency_key=key,
            ),
            key, as_json=as_json,
        )  # fmt: skip
        return
    with retry_hint(key):
        result = service.topup(
            cli.principal(), amount=service.parse_money(amount), source=source, idempotency_key=key
        )
    if as_json:
        output.emit_json({**output.topup_json(result), "idempotency_key": key})
        return
    output.print_topup(result)


def send(
    ctx: typer.Context,
    amount: Amount,
    to: Annotated[str, typer.Option("--to", help="The recipient's phone number.")],
    note: Annotated[
        str | None, typer.Option("--note", help="A short note for the recipient.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm a fee.")] = False,
    idempotency_key: IdempotencyKey = None,
    code: Code = None,
    as_json: JsonFlag = False,
) -> None:
    """Send money to another wallet by phone number (large amounts need --code with 2FA on)."""
    from mwallet.core.domain.tariffs import Movement

    cli = state(ctx)
    service = cli.user_service()
    key = idempotency_key_or_new(idempotency_key)
    money = service.parse_money(amount)
    confirm_cost(cli, Movement.TRANSFER, money, f"Send {money.format()} to {to}",
                 skip=yes or as_json)  # fmt: skip
    with retry_hint(key):
        result = service.transfer(
            cli.principal(),
            to_phone=to,
            amount=money,
            note=note,
            idempotency_key=key,
            code=code,
        )
    if as_json:
        output.emit_json({**output.transfer_json(result), "idempotency_key": key})
        return
    output.print_transfer(result)


def history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="How many movements, newest first.")] = 20,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Go on below the page that printed it.")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="From this day (YYYY-MM-DD, UTC) on.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Up to this day (YYYY-MM-DD, UTC), included.")
    ] = None,
    types: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            help="Only these: transfer_in, transfer_out, topup, bill, airtime, withdrawal, "
            "cash_in, cash_out, fee, reversal (repeat or separate with commas).",
        ),
    ] = None,
    counterparty: Annotated[
        str | None,
        typer.Option("--counterparty", help="Only with this phone number, biller or source."),
    ] = None,
    smallest: Annotated[
        str | None, typer.Option("--min", help="Only movements of at least this amount.")
    ] = None,
    largest: Annotated[
        str | None, typer.Option("--max", help="Only movements of at most this amount.")
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Another person's wallet, by phone (admins and auditors)."),
    ] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Your movements, newest first, with the balance after each; filters and pages."""
    from mwallet.core.domain.movements import MovementFilter, parse_types, period

    cli = state(ctx)
    service = cli.user_service()
    first, after_last = period(start, end)
    where = MovementFilter(
        first, after_last, parse_types(types or ()), counterparty,
        service.parse_money(smallest).minor if smallest is not None else None,
        service.parse_money(largest).minor if largest is not None else None,
    )  # fmt: skip
    page = service.movements(cli.principal(), phone=user, where=where, cursor=cursor, limit=limit)
    if as_json:
        from mwallet.render.movements import movement_page_json

        output.emit_json(movement_page_json(page))
    elif as_csv:
        import sys

        from mwallet.cli.statement_export import write_movements_csv

        write_movements_csv(page.movements, sys.stdout)
        if page.next_cursor is not None:
            print(f"next cursor: {page.next_cursor}", file=sys.stderr)
    else:
        output.print_movements(page)


def statement(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD, UTC).")],
    end: Annotated[str, typer.Option("--to", help="Last day (YYYY-MM-DD, UTC), included.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    path: Annotated[
        Path | None, typer.Option("--output", help="Write to this file instead of stdout.")
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", help="Another person's wallet, by phone (admins and auditors)."),
    ] = None,
) -> None:
    """A statement of a period: opening balance, every movement, totals, closing balance.

    Written as it is read (any length, little memory); with --output on a terminal, a progress bar.
    """
    from mwallet.cli.statement_export import export_statement

    kind = fmt.strip().lower()
    if kind not in ("csv", "json"):
        raise fail(f"unknown format {fmt!r}: csv or json")
    from mwallet.core.domain.movements import period

    first, after_last = period(start, end)
    cli = state(ctx)
    export_statement(
        cli.user_service(), cli.principal(), phone=user, start=first, end=after_last,
        kind=kind, path=path,
    )  # fmt: skip
