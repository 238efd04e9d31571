"""balance, topup, send, history."""

from typing import Annotated

import typer

from mwallet.cli import output
from mwallet.cli.commands.tariffs import confirm_cost
from mwallet.cli.context import Code, IdempotencyKey, JsonFlag, new_idempotency_key, state
from mwallet.cli.exit_codes import retry_hint

Amount = Annotated[str, typer.Argument(help="Amount in the wallet's currency, e.g. 12.50.")]


def balance(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show your balance."""
    cli = state(ctx)
    result = cli.service().balance(cli.principal())
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
    service = cli.service()
    key = idempotency_key or new_idempotency_key()
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
    service = cli.service()
    key = idempotency_key or new_idempotency_key()
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
    as_json: JsonFlag = False,
) -> None:
    """Your latest movements with the balance after each."""
    cli = state(ctx)
    lines = cli.service().history(cli.principal(), limit=limit)
    if as_json:
        output.emit_json(output.history_json(lines))
        return
    output.print_history(lines)
