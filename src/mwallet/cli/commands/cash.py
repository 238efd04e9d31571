"""withdraw, withdrawals, agent cash-in, admin terminals …, atm load."""

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mwallet.cli import output
from mwallet.cli.commands.tariffs import confirm_cost
from mwallet.cli.context import Code, IdempotencyKey, JsonFlag, idempotency_key_or_new, state
from mwallet.cli.exit_codes import fail, retry_hint

agent_app = typer.Typer(help="Agents: take a customer's cash in.", no_args_is_help=True)
atm_app = typer.Typer(help="ATM terminals: load cassettes.", no_args_is_help=True)
terminals_app = typer.Typer(help="Register ATMs and agents, see their cash.", no_args_is_help=True)
withdrawals_admin_app = typer.Typer(help="Withdrawals across all users.", no_args_is_help=True)


def withdraw(
    ctx: typer.Context,
    amount: Annotated[
        str, typer.Argument(help="Amount to take out in cash, e.g. 60 (or `cancel`).")
    ],
    withdrawal_id: Annotated[
        str | None, typer.Argument(help="With `cancel`: the withdrawal to cancel.")
    ] = None,
    at: Annotated[str, typer.Option("--at", help="atm or agent.")] = "atm",
    pin_stdin: Annotated[
        bool, typer.Option("--pin-stdin", help="Choose the 4-digit PIN: read it from stdin.")
    ] = False,
    qr_png: Annotated[
        Path | None, typer.Option("--qr-png", help="Also save the QR code as a PNG file.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm a fee.")] = False,
    idempotency_key: IdempotencyKey = None,
    code: Code = None,
    as_json: JsonFlag = False,
) -> None:
    """Hold cash for pick-up: prints a code, a PIN and a QR code, valid 30 minutes.

    `mwallet withdraw cancel ID` takes a pending withdrawal back.
    """
    cli = state(ctx)
    service = cli.user_service()
    if amount.strip().lower() == "cancel":
        if withdrawal_id is None:
            raise fail("say which withdrawal to cancel: mwallet withdraw cancel ID")
        cancelled = service.cancel_withdrawal(cli.principal(), withdrawal_id=withdrawal_id)
        if as_json:
            output.emit_json(output.withdrawal_json(cancelled))
            return
        output.console().print(
            f"Withdrawal {cancelled.id} is {cancelled.state.value}; "
            f"{cancelled.amount.format()} is back in your wallet."
        )
        return
    if withdrawal_id is not None:
        raise fail(f"unexpected argument {withdrawal_id!r}")
    from mwallet.core.domain.withdrawals import Channel, tariff_of

    try:
        channel = Channel(at.strip().lower())
    except ValueError:
        raise fail("--at is atm or agent") from None
    money = service.parse_money(amount)
    confirm_cost(cli, tariff_of(channel), money, f"Withdraw {money.format()} at an {channel.value}",
                 skip=yes or as_json)  # fmt: skip
    pin = sys.stdin.readline().strip() if pin_stdin else None
    key = idempotency_key_or_new(idempotency_key)
    with retry_hint(key):
        issued = service.request_withdrawal(
            cli.principal(),
            amount=money,
            channel=channel,
            pin=pin,
            idempotency_key=key,
            code=code,
        )
    if issued.qr_payload is not None and qr_png is not None:
        import segno

        segno.make(issued.qr_payload, error="m").save(str(qr_png), scale=8, border=4)
    if as_json:
        output.emit_json(
            {
                **output.withdrawal_json(issued.withdrawal),
                "code": issued.code,
                "pin": issued.pin,
                "qr_payload": issued.qr_payload,
                "idempotency_key": key,
            }
        )
        return
    output.print_issued_withdrawal(issued, show_qr=qr_png is None)


def withdrawals(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Your withdrawals and their states."""
    cli = state(ctx)
    found = cli.user_service().list_withdrawals(cli.principal(), limit=limit)
    if as_json:
        output.emit_json([output.withdrawal_json(one) for one in found])
        return
    output.print_withdrawals(found)


@agent_app.command("cash-in")
def cash_in(
    ctx: typer.Context,
    amount: Annotated[str, typer.Argument(help="The cash the customer handed over.")],
    phone: Annotated[str, typer.Option("--phone", help="The customer's phone number.")],
    idempotency_key: IdempotencyKey = None,
    code: Code = None,
    as_json: JsonFlag = False,
) -> None:
    """Send a customer e-money from your float for the cash they gave you."""
    cli = state(ctx)
    service = cli.service()
    key = idempotency_key_or_new(idempotency_key)
    with retry_hint(key):
        done = service.cash_in(
            cli.principal(),
            to_phone=phone,
            amount=service.parse_money(amount),
            idempotency_key=key,
            code=code,
        )
    if as_json:
        output.emit_json({**output.transfer_json(done), "idempotency_key": key})
        return
    output.console().print(
        f"[green]Cash in[/green]: {done.amount.format()} to {done.recipient_phone}"
        f"  [dim]id {done.id}[/dim]"
    )


@terminals_app.command("add")
def terminals_add(
    ctx: typer.Context,
    kind: Annotated[str, typer.Option("--kind", help="atm or agent.")],
    name: Annotated[str | None, typer.Option("--name", help="What people call it.")] = None,
    phone: Annotated[
        str | None, typer.Option("--phone", help="An agent: the registered user's phone.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register an ATM (shows its OAuth client secret once) or make a user an agent."""
    cli = state(ctx)
    service = cli.service()
    actor = cli.principal()
    chosen = kind.strip().lower()
    if chosen == "atm":
        if name is None:
            raise fail("an ATM needs --name")
        made = service.add_atm(actor=actor, name=name)
    elif chosen == "agent":
        if phone is None:
            raise fail("an agent needs --phone (a registered user)")
        made = service.add_agent(actor=actor, phone=phone, name=name)
    else:
        raise fail("--kind is atm or agent")
    document: dict[str, Any] = output.terminal_json(
        made.terminal, {}, service.settings.currency, service.clock.now()
    )
    if made.client is not None:
        document |= {"client_id": made.client.id, "client_secret": made.client_secret}
    if as_json:
        output.emit_json(document)
        return
    out = output.console()
    out.print(f"Terminal {made.terminal.id} ({made.terminal.kind.value}, {made.terminal.name})")
    if made.client is not None:
        out.print(f"OAuth client {made.client.id}")
        out.print(f"Secret (shown once, keep it safe): [bold]{made.client_secret}[/bold]")


@terminals_app.command("list")
def terminals_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Terminals, with what each ATM's cassettes hold."""
    cli = state(ctx)
    service = cli.service()
    found = service.list_terminals(actor=cli.principal())
    currency, now = service.settings.currency, service.clock.now()
    if as_json:
        output.emit_json(
            [output.terminal_json(terminal, notes, currency, now) for terminal, notes in found]
        )
        return
    output.print_terminals(found, currency, now)


@atm_app.command("load")
def atm_load(
    ctx: typer.Context,
    notes: Annotated[
        list[str], typer.Argument(help="DENOMINATIONxCOUNT, e.g. 50x100 20x200 (units of cash).")
    ],
    terminal: Annotated[str, typer.Option("--terminal", help="The ATM's terminal id.")],
    as_json: JsonFlag = False,
) -> None:
    """Load notes into an ATM's cassettes (admins)."""
    cli = state(ctx)
    service = cli.service()
    from mwallet.core.domain.terminals import parse_notes

    parsed = parse_notes(notes, service.settings.currency)
    loaded = service.load_cassettes(actor=cli.principal(), terminal_id=terminal, notes=parsed)
    currency = service.settings.currency
    if as_json:
        output.emit_json(
            {"terminal_id": terminal, "cassettes": output.cassettes_json(loaded, currency)}
        )
        return
    output.console().print(
        "Cassettes: " + ", ".join(output.cassette_line(loaded, currency)) if loaded else "empty"
    )


@withdrawals_admin_app.command("expire")
def withdrawals_expire(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Expire every pending withdrawal past its time and return its hold."""
    cli = state(ctx)
    count = cli.service().expire_withdrawals(actor=cli.principal())
    if as_json:
        output.emit_json({"expired": count})
        return
    output.console().print(f"{count} withdrawal(s) expired; their money is back in the wallets.")
