"""mwallet 2fa …: turn two-factor authentication on and off."""

import sys
from typing import Annotated

import typer

from mwallet.cli import output
from mwallet.cli.context import JsonFlag, state

two_factor_app = typer.Typer(
    help="Two-factor authentication with an authenticator app (TOTP).", no_args_is_help=True
)

CodeArgument = Annotated[
    str, typer.Argument(help="The code your authenticator shows now (or a recovery code).")
]


@two_factor_app.command("enable")
def enable(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show a QR code for your authenticator app, then confirm with its first code."""
    cli = state(ctx)
    principal = cli.principal()
    enrollment = cli.user_service().begin_two_factor(principal)
    if as_json:
        output.emit_json(
            {
                "secret": enrollment.secret,
                "uri": enrollment.uri,
                "next": "mwallet 2fa confirm CODE",
            }
        )
        return
    import segno

    out = output.console()
    out.print("Scan this with your authenticator app (or type the secret by hand):")
    segno.make(enrollment.uri, error="m").terminal(out=sys.stdout, compact=True)
    out.print(f"Secret: [bold]{enrollment.secret}[/bold]")
    if not sys.stdin.isatty():
        out.print("Then run `mwallet 2fa confirm CODE` with the code it shows.")
        return
    code = str(typer.prompt("Code from the app"))
    _print_recovery_codes(cli.user_service().confirm_two_factor(principal, code=code))


@two_factor_app.command("confirm")
def confirm(ctx: typer.Context, code: CodeArgument, as_json: JsonFlag = False) -> None:
    """Turn two-factor authentication on with the first code from the app."""
    cli = state(ctx)
    codes = cli.user_service().confirm_two_factor(cli.principal(), code=code)
    if as_json:
        output.emit_json({"enabled": True, "recovery_codes": codes})
        return
    _print_recovery_codes(codes)


@two_factor_app.command("disable")
def disable(ctx: typer.Context, code: CodeArgument, as_json: JsonFlag = False) -> None:
    """Turn two-factor authentication off (it takes a current code or a recovery code)."""
    cli = state(ctx)
    cli.user_service().disable_two_factor(cli.principal(), code=code)
    if as_json:
        output.emit_json({"enabled": False})
        return
    output.console().print("Two-factor authentication is off.")


@two_factor_app.command("status")
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Whether two-factor authentication is on, and how many recovery codes are left."""
    cli = state(ctx)
    service = cli.user_service()
    found = service.two_factor_status(cli.principal())
    step_up = service.step_up_amount()
    if as_json:
        output.emit_json(
            {
                "enabled": found.enabled,
                "pending": found.pending,
                "recovery_codes_left": found.recovery_codes_left,
                "step_up_amount": output.amount(step_up),
            }
        )
        return
    if found.enabled:
        output.console().print(
            f"Two-factor authentication is on; {found.recovery_codes_left} recovery codes left. "
            f"Sending {step_up.format()} or more asks for a code."
        )
    elif found.pending:
        output.console().print("Enrolment started: finish it with `mwallet 2fa confirm CODE`.")
    else:
        output.console().print("Two-factor authentication is off: `mwallet 2fa enable`.")


def _print_recovery_codes(codes: list[str]) -> None:
    out = output.console()
    out.print("[green]Two-factor authentication is on.[/green]")
    out.print(
        "Recovery codes, each good once (store them somewhere safe; they are not shown again):"
    )
    for code in codes:
        out.print(f"  {code}")
