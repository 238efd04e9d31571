"""mwallet terminal: the ATM / agent kiosk app."""

import os
import sys
from typing import Annotated

import typer

from mwallet.cli.context import state
from mwallet.cli.exit_codes import ExitCode, fail

SECRET_ENV = "MWALLET_TERMINAL_SECRET"  # noqa: S105 - the name of a variable, not a secret


def terminal(
    ctx: typer.Context,
    terminal_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            help=f"The terminal to open. An ATM proves it is one with its client secret (from "
            f"{SECRET_ENV} or stdin); an agent's counter opens for that agent, logged in.",
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option("--client-id", help="An ATM by its OAuth client id instead of --id."),
    ] = None,
    client_secret_stdin: Annotated[
        bool, typer.Option("--client-secret-stdin", help="Read the ATM's secret from stdin.")
    ] = False,
) -> None:
    """Open the terminal app that pays out withdrawals (an ATM, or an agent's counter)."""
    from mwallet.atm.session import TerminalSession, client_authority
    from mwallet.core.domain.withdrawals import Channel

    cli = state(ctx)
    service = cli.service()
    if terminal_id is not None and client_id is not None:
        raise fail("give --id or --client-id, not both")
    chosen = service.terminal(terminal_id) if terminal_id is not None else None
    if chosen is not None and chosen.kind is Channel.ATM:
        client_id = chosen.client_id
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
    session = TerminalSession(service, who, name=who().display_name)
    if chosen is not None and session.station.id != chosen.id:
        raise fail(
            f"you are not terminal {chosen.id}: log in as its agent",
            ExitCode.FORBIDDEN,
            "permission_denied",
        )
    reversed_at_start = session.open()
    from mwallet.tui.terminal_app import TerminalApp

    TerminalApp(session, reversed_at_start=reversed_at_start).run()
