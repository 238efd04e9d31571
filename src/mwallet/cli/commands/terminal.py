"""mwallet terminal: the ATM / agent kiosk app."""

import os
import sys
from typing import Annotated

import typer

from mwallet.cli.context import state
from mwallet.cli.exit_codes import fail

SECRET_ENV = "MWALLET_TERMINAL_SECRET"  # noqa: S105 - the name of a variable, not a secret


def terminal(
    ctx: typer.Context,
    client_id: Annotated[
        str | None,
        typer.Option(
            "--client-id",
            help=f"An ATM: its OAuth client id (secret from {SECRET_ENV} or stdin). "
            "Without it: the logged-in agent.",
        ),
    ] = None,
    client_secret_stdin: Annotated[
        bool, typer.Option("--client-secret-stdin", help="Read the ATM's secret from stdin.")
    ] = False,
) -> None:
    """Open the terminal app that pays out withdrawals (an ATM, or an agent's counter)."""
    from mwallet.atm.session import TerminalSession, client_authority

    cli = state(ctx)
    service = cli.service()
    if client_id is not None:
        secret = (
            sys.stdin.readline().strip() if client_secret_stdin else os.environ.get(SECRET_ENV, "")
        )
        if not secret:
            raise fail(f"the ATM's secret: set {SECRET_ENV} or use --client-secret-stdin")
        who = client_authority(service, client_id, secret)
    else:
        who = cli.principal
        who()  # must be logged in now
    name = who().display_name
    from mwallet.tui.terminal_app import TerminalApp

    TerminalApp(TerminalSession(service, who, name=name)).run()
