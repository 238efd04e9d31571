"""mwallet fees, mwallet limits; mwallet admin tariffs, admin limits list|set, admin users tier."""

from typing import TYPE_CHECKING, Annotated, Any

import typer

from mwallet.cli import output
from mwallet.cli.commands.security import limits_app
from mwallet.cli.context import CliState, JsonFlag, state
from mwallet.cli.exit_codes import ExitCode, fail
from mwallet.render.users import user_json

if TYPE_CHECKING:
    from mwallet.core.domain.money import Money
    from mwallet.core.domain.tariffs import Limit, Movement, Tariff

tariffs_admin_app = typer.Typer(
    help="What each kind of movement costs (fee rules).", invoke_without_command=True
)

MovementArg = Annotated[
    str,
    typer.Argument(
        help="transfer, withdrawal-atm, withdrawal-agent, bill, airtime or topup.",
        show_default=False,
    ),
]


# --- for everyone ---------------------------------------------------------------------------------


def fees(
    ctx: typer.Context,
    movement: Annotated[
        str | None, typer.Argument(help="Quote one: transfer, bill, airtime, ...")
    ] = None,
    amount: Annotated[str | None, typer.Argument(help="The amount to quote.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The fees of every kind of movement, or what one would cost: `mwallet fees transfer 100`."""
    from mwallet.core.domain.tariffs import Movement

    cli = state(ctx)
    if movement is None:
        people = cli.user_service()
        _show_tariffs(people.tariffs(cli.principal()), people.currency, as_json)
        return
    if amount is None:
        raise fail("give the amount to quote, e.g. mwallet fees transfer 100")
    people = cli.user_service()
    quote = people.quote(cli.principal(), Movement.parse(movement), people.parse_money(amount))
    if as_json:
        from mwallet.render.tariffs import quote_json

        output.emit_json(quote_json(quote))
        return
    out = output.console()
    out.print(
        f"{quote.movement.value} of {quote.amount.format()}: fee {quote.fee.format()}, "
        f"total {quote.total.format()}"
    )
    for allowance in quote.allowances:
        if allowance.left is not None:
            out.print(f"  {allowance.period.value} limit: {allowance.left.format()} left")
    if not quote.within_limits:
        out.print("  [bold]This would pass your limit.[/bold]")


def my_limits(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Your KYC tier, and per kind of movement what you may still move today and this month."""
    from rich.table import Table

    cli = state(ctx)
    tier, families = cli.user_service().my_limits(cli.principal())
    if as_json:
        from mwallet.render.tariffs import allowance_json

        output.emit_json(
            {
                "tier": tier.value,
                "limits": {
                    family.value: [allowance_json(a) for a in allowances]
                    for family, allowances in families.items()
                },
            }
        )
        return
    table = Table(title=f"Your limits ({tier.value} tier)", title_justify="left")
    for name in ("Movement", "Period", "Limit", "Used", "Left"):
        table.add_column(name, justify="left" if name in {"Movement", "Period"} else "right")
    for family, allowances in families.items():
        for allowance in allowances:
            table.add_row(
                family.noun, allowance.period.value,
                "no limit" if allowance.limit is None else allowance.limit.format(),
                allowance.used.format(),
                "" if allowance.left is None else allowance.left.format(),
            )  # fmt: skip
    output.console().print(table)


def confirm_cost(
    cli: CliState,
    movement: "Movement",
    amount: "Money",
    what: str,
    *,
    skip: bool,
    always: bool = False,
) -> None:
    """Before money moves: show what it costs and ask. With `always` off (a command that did not
    ask before fees existed), only a movement with a fee asks; `skip` (--yes, --json) never."""
    if skip:
        return
    import sys

    quote = cli.user_service().quote(cli.principal(), movement, amount)
    if not always and not quote.fee.minor:
        return
    cost = (
        f"fee {quote.fee.format()}, total {quote.total.format()}" if quote.fee.minor else "no fee"
    )
    if not sys.stdin.isatty():
        raise fail(f"{what} costs {cost}: confirm with --yes (no terminal to ask on)")
    if not typer.confirm(f"{what}: {cost}?"):
        raise fail("nothing was moved", ExitCode.REFUSED, "cancelled")


# --- admins -----------------------------------------------------------------------------------


@tariffs_admin_app.callback()
def tariffs_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every movement's fee rule; `set` and `clear` change one."""
    if ctx.invoked_subcommand is not None:
        return
    cli = state(ctx)
    service = cli.service()
    _show_tariffs(service.tariffs(cli.principal()), service.settings.currency, as_json)


@tariffs_admin_app.command("set")
def tariffs_set(
    ctx: typer.Context,
    movement: MovementArg,
    flat: Annotated[str | None, typer.Option("--flat", help="A flat fee, e.g. 0.50.")] = None,
    percent: Annotated[
        str | None, typer.Option("--percent", help="A percentage of the amount, e.g. 1.5.")
    ] = None,
    band: Annotated[
        list[str] | None,
        typer.Option(
            "--band",
            help="UP_TO:FLAT[:PERCENT], repeated, by amount; the last UP_TO is `*` (any amount).",
        ),
    ] = None,
    min_fee: Annotated[str | None, typer.Option("--min", help="The smallest fee.")] = None,
    max_fee: Annotated[str | None, typer.Option("--max", help="The largest fee.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Set a movement's fee rule (replacing the one before): a flat fee and/or a percentage, or
    bands by amount; optionally a minimum and a maximum fee."""
    from mwallet.core.domain.tariffs import Band, Movement, Tariff, parse_percent

    cli = state(ctx)
    service = cli.service()

    def minor(text: str) -> int:
        return service.parse_money(text, allow_zero=True).minor

    if band and (flat is not None or percent is not None):
        raise fail("give --band, or --flat/--percent, not both")
    if not band and flat is None and percent is None and min_fee is None:
        raise fail("give --flat, --percent, --band or --min (to make it free: admin tariffs clear)")
    if band:
        bands = tuple(_band(text, minor) for text in band)
    else:
        bands = (
            Band(
                None,
                0 if flat is None else minor(flat),
                0 if percent is None else parse_percent(percent),
            ),
        )
    tariff = Tariff(
        bands,
        min_minor=0 if min_fee is None else minor(min_fee),
        max_minor=None if max_fee is None else minor(max_fee),
    )
    chosen = Movement.parse(movement)
    stored = service.set_tariff(actor=cli.principal(), movement=chosen, tariff=tariff)
    currency = service.settings.currency
    if as_json:
        output.emit_json({chosen.value: tariff_json(stored, currency)})
        return
    text = "free" if stored is None else stored.describe(currency)
    output.console().print(f"{chosen.value}: {text}")


@tariffs_admin_app.command("clear")
def tariffs_clear(ctx: typer.Context, movement: MovementArg, as_json: JsonFlag = False) -> None:
    """Remove a movement's fee rule: it becomes free."""
    from mwallet.core.domain.tariffs import Movement

    cli = state(ctx)
    chosen = Movement.parse(movement)
    cli.service().set_tariff(actor=cli.principal(), movement=chosen, tariff=None)
    if as_json:
        output.emit_json({chosen.value: None})
        return
    output.console().print(f"{chosen.value}: free")


def _band(text: str, minor: Any) -> Any:
    from mwallet.core.domain.tariffs import Band, parse_percent

    parts = text.split(":")
    if len(parts) not in {2, 3}:
        raise fail(f"--band {text!r}: write UP_TO:FLAT or UP_TO:FLAT:PERCENT, e.g. 100:0.50:1")
    up_to = None if parts[0].strip() == "*" else minor(parts[0])
    return Band(up_to, minor(parts[1]), parse_percent(parts[2]) if len(parts) == 3 else 0)


@limits_app.command("list")
def limits_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every limit in force, per kind of movement and KYC tier."""
    from rich.table import Table

    cli = state(ctx)
    found = cli.service().limits(cli.principal())
    if as_json:
        output.emit_json([limit_json(limit, cli.service().settings.currency) for limit in found])
        return
    table = Table(title="Limits per user", title_justify="left")
    for name in ("Movement", "Tier", "Daily", "Monthly"):
        table.add_column(name, justify="left" if name in {"Movement", "Tier"} else "right")
    currency = cli.service().settings.currency
    for limit in found:
        shown = limit_json(limit, currency)
        table.add_row(
            limit.family.value, limit.tier.value,
            shown["daily"] or "no limit", shown["monthly"] or "no limit",
        )  # fmt: skip
    output.console().print(table)


@limits_app.command("set")
def limits_set(
    ctx: typer.Context,
    family: Annotated[
        str,
        typer.Argument(help="transfer, withdrawal, bill, airtime or topup.", show_default=False),
    ],
    tier: Annotated[str, typer.Option("--tier", help="basic or verified.")],
    daily: Annotated[
        str | None, typer.Option("--daily", help="The most per UTC day, or `none`.")
    ] = None,
    monthly: Annotated[
        str | None, typer.Option("--monthly", help="The most per calendar month, or `none`.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Set how much a user of a tier may move per day and per month (what is not given stays)."""
    from mwallet.core.domain.tariffs import LimitFamily, Period, Tier

    if daily is None and monthly is None:
        raise fail("give --daily and/or --monthly (an amount, or none)")
    cli = state(ctx)
    service = cli.service()
    unlimited = frozenset(
        period
        for period, text in ((Period.DAY, daily), (Period.MONTH, monthly))
        if text is not None and text.strip().lower() == "none"
    )

    def amount(period: "Period", text: str | None) -> "Money | None":
        return None if text is None or period in unlimited else service.parse_money(text)

    changed = service.set_limit(
        actor=cli.principal(), family=LimitFamily.parse(family), tier=Tier.parse(tier),
        daily=amount(Period.DAY, daily), monthly=amount(Period.MONTH, monthly),
        unlimited=unlimited,
    )  # fmt: skip
    shown = limit_json(changed, service.settings.currency)
    if as_json:
        output.emit_json(shown)
        return
    output.console().print(
        f"{changed.family.noun}, {changed.tier.value} tier: "
        f"{shown['daily'] or 'no limit'} a day, {shown['monthly'] or 'no limit'} a month"
    )


def users_tier(
    ctx: typer.Context,
    phone: Annotated[str, typer.Argument(help="The user's phone number.")],
    tier: Annotated[str, typer.Argument(help="basic or verified.")],
    as_json: JsonFlag = False,
) -> None:
    """Put a user in a KYC tier (`verified` once their identity is checked): it sets limits."""
    from mwallet.core.domain.tariffs import Tier

    cli = state(ctx)
    user = cli.user_service().set_tier(actor=cli.principal(), phone=phone, tier=Tier.parse(tier))
    if as_json:
        output.emit_json(user_json(user))
        return
    output.console().print(f"{user.display_name} ({user.phone}) is now {user.tier.value}.")


# --- shapes -------------------------------------------------------------------------------------


def _show_tariffs(found: "dict[Movement, Tariff]", currency: str, as_json: bool) -> None:
    from rich.table import Table

    from mwallet.core.domain.tariffs import Movement

    if as_json:
        from mwallet.render.tariffs import tariffs_json

        output.emit_json(tariffs_json(found, currency))
        return
    table = Table(title=f"Fees ({currency})", title_justify="left")
    table.add_column("Movement", no_wrap=True)
    table.add_column("Fee")
    for movement in Movement:
        tariff = found.get(movement)
        table.add_row(movement.value, "free" if tariff is None else tariff.describe(currency))
    output.console().print(table)


def tariff_json(tariff: "Tariff | None", currency: str) -> dict[str, Any] | None:
    from mwallet.render.tariffs import tariff_json as shown

    return shown(tariff, currency)


def limit_json(limit: "Limit", currency: str) -> dict[str, Any]:
    from mwallet.core.domain.money import Money

    def money(minor: int | None) -> str | None:
        return None if minor is None else Money(minor, currency).to_decimal_string()

    return {
        "family": limit.family.value,
        "tier": limit.tier.value,
        "daily": money(limit.daily_minor),
        "monthly": money(limit.monthly_minor),
    }
