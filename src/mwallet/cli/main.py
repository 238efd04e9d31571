"""`mwallet`: the root command, its global options, and the one place errors become exit codes.

Only Typer is imported up front; each command imports the core when it runs, so `mwallet --help`
starts as fast as a bare Typer app.
"""

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from mwallet import __version__
from mwallet.cli.commands import (
    cash,
    demo,
    money,
    notify,
    payments,
    security,
    serve,
    tariffs,
    terminal,
    users,
)
from mwallet.cli.commands.admin import admin_app
from mwallet.cli.commands.stats import report_app
from mwallet.cli.commands.two_factor import two_factor_app
from mwallet.cli.context import CliState
from mwallet.cli.exit_codes import Exit, ExitCode, errors_to_exit_codes, report
from mwallet.locations import default_home

app = typer.Typer(
    name="mwallet",
    help="A terminal-first mobile wallet: send money, top up, and prove the books.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"mwallet {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="MWALLET_DB",
            help="Database URL (default: the embedded SQLite file).",
            show_envvar=True,
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            envvar="MWALLET_HOME",
            help="Folder for the database and session.",
            show_envvar=True,
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="MWALLET_SERVER",
            help="A wallet server's URL: your commands go to its HTTP API, not a database.",
            show_envvar=True,
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    where = home.expanduser() if home else default_home()
    cli = CliState(home=where, db=db, server=server.rstrip("/") if server else None)
    ctx.obj = cli
    ctx.call_on_close(cli.close)


app.command()(users.init)
app.command()(users.register)
app.command()(users.login)
app.command()(users.logout)
app.command()(users.whoami)
app.command()(users.passwd)
app.command()(money.balance)
app.command()(money.topup)
app.command()(money.send)
app.command()(money.history)
app.command()(money.statement)
app.command()(payments.billers)
app.command()(tariffs.fees)
app.command("limits")(tariffs.my_limits)
app.command()(cash.withdraw)
app.command()(cash.withdrawals)
app.command()(terminal.terminal)
app.command()(serve.serve)
app.command()(security.token)
app.command()(demo.demo)
app.add_typer(two_factor_app, name="2fa")
app.add_typer(cash.agent_app, name="agent")
app.add_typer(cash.atm_app, name="atm")
app.add_typer(payments.pay_app, name="pay")
app.add_typer(payments.payments_app, name="payments")
app.add_typer(notify.inbox_app, name="inbox")
app.add_typer(notify.notify_app, name="notify")
app.add_typer(admin_app, name="admin")
app.add_typer(report_app, name="report")


def run(argv: list[str] | None = None) -> None:
    """The console script: run a command and leave with its exit code, never a traceback."""
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    try:
        with errors_to_exit_codes():
            result = app(args=args, prog_name="mwallet", standalone_mode=False)
    except Exit as exc:
        sys.exit(report(exc, as_json=as_json))
    except typer.Abort:
        sys.exit(report(Exit(ExitCode.INTERNAL, "aborted", "aborted"), as_json=as_json))
    except typer.TyperException as exc:  # the parser's own: unknown option, missing argument
        message = str(getattr(exc, "format_message", lambda: "")())
        if not message:  # `mwallet` alone: the help has been shown
            sys.exit(int(ExitCode.USAGE))
        sys.exit(report(Exit(ExitCode.USAGE, message, "usage_error"), as_json=as_json))
    except KeyboardInterrupt:
        sys.exit(report(Exit(ExitCode.INTERRUPTED, "interrupted", "interrupted"), as_json=as_json))
    except Exception as exc:
        if os.environ.get("MWALLET_DEBUG"):
            raise
        message = f"internal error ({type(exc).__name__}: {exc}); set MWALLET_DEBUG=1 for details"
        sys.exit(report(Exit(ExitCode.INTERNAL, message, "internal_error"), as_json=as_json))
    sys.exit(result if isinstance(result, int) else 0)
