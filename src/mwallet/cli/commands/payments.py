"""mwallet billers, mwallet pay bill|airtime, mwallet payments, mwallet admin billers|payments."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from mwallet.cli import output
from mwallet.cli.commands.tariffs import confirm_cost
from mwallet.cli.context import Code, IdempotencyKey, JsonFlag, idempotency_key_or_new, state
from mwallet.cli.exit_codes import ExitCode, fail, retry_hint

if TYPE_CHECKING:
    from mwallet.core.domain.payments import Payment

pay_app = typer.Typer(help="Pay bills and buy airtime.", no_args_is_help=True)
payments_app = typer.Typer(help="Your payments, newest first; payments show ID.")
billers_admin_app = typer.Typer(help="The billers people can pay.", no_args_is_help=True)
payments_admin_app = typer.Typer(help="Payments the provider left unknown.", no_args_is_help=True)


def billers(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The billers you can pay: their ids, what they take, and their references' form."""
    cli = state(ctx)
    found = cli.user_service().billers(cli.principal())
    if as_json:
        from mwallet.render.payments import biller_json

        output.emit_json([biller_json(one) for one in found])
        return
    output.print_billers(found)


@pay_app.command("bill")
def pay_bill(
    ctx: typer.Context,
    amount: Annotated[str, typer.Argument(help="Amount, e.g. 45.80.")],
    biller: Annotated[str, typer.Option("--biller", help="The biller's id (mwallet billers).")],
    reference: Annotated[
        str, typer.Option("--reference", help="Your customer reference with that biller.")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")] = False,
    idempotency_key: IdempotencyKey = None,
    code: Code = None,
    as_json: JsonFlag = False,
) -> None:
    """Pay a bill. The money is held while the biller's provider answers; if it cannot answer,
    the payment stays unknown (money held, never charged twice) until it is reconciled."""
    cli = state(ctx)
    service = cli.user_service()
    money = service.parse_money(amount)
    from mwallet.core.domain.tariffs import Movement

    confirm_cost(
        cli, Movement.BILL, money, f"Pay {money.format()} to {biller} (reference {reference})",
        skip=yes or as_json, always=True,
    )  # fmt: skip
    run_payment(
        lambda key: service.pay_bill(
            cli.principal(), biller_id=biller, reference=reference, amount=money,
            idempotency_key=key, code=code,
        ),
        idempotency_key, as_json=as_json,
    )  # fmt: skip


@pay_app.command("airtime")
def pay_airtime(
    ctx: typer.Context,
    amount: Annotated[str, typer.Argument(help="Amount, e.g. 50.")],
    phone: Annotated[
        str | None, typer.Option("--phone", help="The number to top up (default: yours).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")] = False,
    idempotency_key: IdempotencyKey = None,
    code: Code = None,
    as_json: JsonFlag = False,
) -> None:
    """Buy airtime for your number or another's; the operator comes from the number."""
    cli = state(ctx)
    service = cli.user_service()
    money = service.parse_money(amount)
    from mwallet.core.domain.tariffs import Movement

    confirm_cost(
        cli, Movement.AIRTIME, money,
        f"Buy {money.format()} of airtime for {phone or 'your number'}",
        skip=yes or as_json, always=True,
    )  # fmt: skip
    run_payment(
        lambda key: service.pay_airtime(
            cli.principal(), phone=phone, amount=money, idempotency_key=key, code=code
        ),
        idempotency_key, as_json=as_json,
    )  # fmt: skip


def run_payment(
    make: "Callable[[str], Payment]", idempotency_key: str | None, *, as_json: bool
) -> None:
    """Make a payment (or a card top-up) under an idempotency key, show it, and exit 4 when it
    was declined."""
    key = idempotency_key_or_new(idempotency_key)
    with retry_hint(key):
        paid = make(key)
    if as_json:
        output.emit_json({**output.payment_json(paid), "idempotency_key": key})
    else:
        output.print_payment(paid)
    if paid.state.value == "failed":
        raise fail(f"declined: {paid.reason or 'the provider refused it'}", ExitCode.REFUSED,
                   "payment_declined")  # fmt: skip


@payments_app.callback(invoke_without_command=True)
def payments(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="How many (1-1000).")] = 20,
    as_json: JsonFlag = False,
) -> None:
    """Your payments, newest first (mwallet payments show ID for one, with a receipt)."""
    if ctx.invoked_subcommand is not None:
        return
    cli = state(ctx)
    found = cli.user_service().list_payments(cli.principal(), limit=limit)
    if as_json:
        output.emit_json([output.payment_json(one) for one in found])
        return
    output.print_payments(found)


@payments_app.command("show")
def payments_show(
    ctx: typer.Context,
    payment_id: Annotated[str, typer.Argument(help="The payment's id.")],
    as_json: JsonFlag = False,
) -> None:
    """One payment, with its receipt once it succeeded."""
    cli = state(ctx)
    found, biller = cli.user_service().payment(cli.principal(), payment_id=payment_id)
    if as_json:
        output.emit_json({**output.payment_json(found), "biller_name": biller.name})
        return
    output.print_payment(found, biller)


@billers_admin_app.command("add")
def billers_add(
    ctx: typer.Context,
    biller_id: Annotated[str, typer.Argument(help="A short id, e.g. aguas-beira.")],
    name: Annotated[str, typer.Option("--name", help="Its name, as people know it.")],
    category: Annotated[
        str, typer.Option("--category", help="water, electricity, internet, tv, other.")
    ],
    min_amount: Annotated[str, typer.Option("--min", help="The smallest payment.")] = "1",
    max_amount: Annotated[str, typer.Option("--max", help="The largest payment.")] = "5000",
    provider: Annotated[
        str, typer.Option("--provider", help="The provider serving it.")
    ] = "sandbox",
    pattern: Annotated[
        str, typer.Option("--pattern", help="The reference as a regular expression.")
    ] = "[0-9]{6,20}",
    check: Annotated[str, typer.Option("--check", help="none, luhn or mod97.")] = "none",
    as_json: JsonFlag = False,
) -> None:
    """Add a biller (admins)."""
    cli = state(ctx)
    service = cli.service()
    added = service.add_biller(
        actor=cli.principal(), biller_id=biller_id, name=name, category=category,
        min_amount=service.parse_money(min_amount), max_amount=service.parse_money(max_amount),
        provider=provider, pattern=pattern, check=check,
    )  # fmt: skip
    if as_json:
        from mwallet.render.payments import biller_json

        output.emit_json(biller_json(added))
        return
    output.console().print(f"Biller {added.id} ({added.name}) added.")


def _set_active(ctx: typer.Context, biller_id: str, active: bool, as_json: bool) -> None:
    cli = state(ctx)
    cli.service().set_biller_active(actor=cli.principal(), biller_id=biller_id, active=active)
    if as_json:
        output.emit_json({"biller_id": biller_id, "active": active})
        return
    output.console().print(f"Biller {biller_id} is {'enabled' if active else 'disabled'}.")


@billers_admin_app.command("disable")
def billers_disable(
    ctx: typer.Context,
    biller_id: Annotated[str, typer.Argument(help="The biller's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Stop taking payments for a biller (the sandbox ones, say, on a real installation)."""
    _set_active(ctx, biller_id, False, as_json)


@billers_admin_app.command("enable")
def billers_enable(
    ctx: typer.Context,
    biller_id: Annotated[str, typer.Argument(help="The biller's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Take payments for a biller again."""
    _set_active(ctx, biller_id, True, as_json)


@payments_admin_app.command("reconcile")
def reconcile(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Ask the providers about payments left unknown (or pending by a stopped process), and
    settle each by their answer."""
    cli = state(ctx)
    done = cli.service().reconcile_payments(actor=cli.principal())
    document = {"succeeded": done.succeeded, "failed": done.failed,
                "still_unknown": done.still_unknown}  # fmt: skip
    if as_json:
        output.emit_json(document)
        return
    output.console().print(
        f"Settled {done.succeeded + done.failed}: {done.succeeded} succeeded, "
        f"{done.failed} failed; {done.still_unknown} still unknown."
    )
