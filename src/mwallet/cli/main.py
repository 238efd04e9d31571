"""`mwallet`: the root command, its global options, and the one place errors become exit codes.

Only Typer is imported up front; each command imports the core when it runs, so `mwallet --help`
starts as fast as a bare Typer app.
"""

import gc
import os
import sys
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any

import typer

from mwallet import __version__
from mwallet.cli.context import CliState
from mwallet.cli.exit_codes import Exit, ExitCode, errors_to_exit_codes, report
from mwallet.locations import default_home


def _version(value: bool) -> None:
    if value:
        print(f"mwallet {__version__}")
        raise typer.Exit()


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


# Every command and group, by the name typed, as "module:attribute" in mwallet.cli.commands: a run
# imports the one module it names (`mwallet balance` loads no admin, cash or demo code), and Typer
# turns only that into a click command (reading its signature); `--help` builds them all.
COMMANDS: dict[str, str] = {
    "init": "users:init",
    "register": "users:register",
    "login": "users:login",
    "logout": "users:logout",
    "whoami": "users:whoami",
    "passwd": "users:passwd",
    "balance": "money:balance",
    "topup": "money:topup",
    "send": "money:send",
    "history": "money:history",
    "statement": "money:statement",
    "billers": "payments:billers",
    "fees": "tariffs:fees",
    "limits": "tariffs:my_limits",
    "withdraw": "cash:withdraw",
    "withdrawals": "cash:withdrawals",
    "terminal": "terminal:terminal",
    "serve": "serve:serve",
    "token": "security:token",
    "demo": "demo:demo",
}


class Group:
    """A command group: where its Typer app lives, and its help text, which the root's help shows
    without importing the group (a test keeps the text the same as the app's own)."""

    def __init__(self, app: str, help_text: str) -> None:
        self.app = app
        self.help = help_text

    def load(self) -> typer.Typer:
        app: typer.Typer = _attribute(self.app)
        return app


GROUPS: dict[str, Group] = {
    "2fa": Group(
        "two_factor:two_factor_app", "Two-factor authentication with an authenticator app (TOTP)."
    ),
    "agent": Group("cash:agent_app", "Agents: take a customer's cash in."),
    "atm": Group("cash:atm_app", "ATM terminals: load cassettes."),
    "pay": Group("payments:pay_app", "Pay bills and buy airtime."),
    "payments": Group("payments:payments_app", "Your payments, newest first; payments show ID."),
    "inbox": Group("notify:inbox_app", "Your notifications, newest first."),
    "notify": Group("notify:notify_app", "Notification preferences, the relay and the worker."),
    "admin": Group(
        "admin:admin_app", "Operator commands: log in as an admin (or an auditor, to read)."
    ),
    "report": Group(
        "stats:report_app", "Your usage statistics and trends (an admin or auditor: anyone's)."
    ),
}


def _attribute(where: str) -> Any:
    module, name = where.split(":")
    return getattr(import_module(f"mwallet.cli.commands.{module}"), name)


_ROOT_OPTIONS_WITH_VALUES = frozenset({"--db", "--home"})


def build(only: str | None = None) -> typer.Typer:
    """The root app with only the command or group named `only`, or (None: for the root's help
    or the parser's error) every command and each group as its name and help text only."""
    app = typer.Typer(
        name="mwallet",
        help="A terminal-first mobile wallet: send money, top up, and prove the books.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(root)
    for name, command in COMMANDS.items():
        if only is None or name == only:
            app.command(name)(_attribute(command))
    for name, group in GROUPS.items():
        if name == only:
            app.add_typer(group.load(), name=name)
        elif only is None:  # the root's help lists a group by its help text: build only that
            app.add_typer(typer.Typer(help=group.help), name=name)
    return app


def command_named(args: list[str]) -> str | None:
    """The command or group the arguments name, if they name one (else None: build them all,
    for the help or for the parser's own error about an unknown command)."""
    words = iter(args)
    for word in words:
        if word in _ROOT_OPTIONS_WITH_VALUES:
            next(words, None)
        elif not word.startswith("-"):
            return word if word in COMMANDS or word in GROUPS else None
    return None


def run(argv: list[str] | None = None) -> None:
    """The console script: run a command and leave with its exit code, never a traceback."""
    collect_rarely()
    code = _exit_code(sys.argv[1:] if argv is None else argv)
    gc.freeze()  # what is left lives until the process exits: no collection of it on the way out
    sys.exit(code)


def collect_rarely() -> None:
    """Set the cyclic collector's threshold every run of `mwallet` uses (servers and workers too).

    A command's start-up makes a few hundred thousand objects (modules, classes, functions) that
    live until the process ends. With CPython's default threshold the collector walks them again
    and again while they are made, and once more at exit, which frees nothing a finishing process
    needs freed: ~110M of `mwallet balance`'s ~1,500M instructions. A statement export's batches
    of rows set it off too (a quarter of the export's CPU at the default threshold). A higher
    threshold still collects cycles in long-running commands (serve, the workers, the ATM).
    """
    gc.set_threshold(50_000, 10, 10)


def _exit_code(args: list[str]) -> int:  # noqa: PLR0911 - one return per way a run ends
    """Run the command `args` name; its exit code, with every error reported on the way."""
    as_json = "--json" in args
    try:
        with errors_to_exit_codes():
            result = build(command_named(args))(
                args=args, prog_name="mwallet", standalone_mode=False
            )
    except Exit as exc:
        return report(exc, as_json=as_json)
    except typer.Abort:
        return report(Exit(ExitCode.INTERNAL, "aborted", "aborted"), as_json=as_json)
    except typer.TyperException as exc:  # the parser's own: unknown option, missing argument
        message = str(getattr(exc, "format_message", lambda: "")())
        if not message:  # `mwallet` alone: the help has been shown
            return int(ExitCode.USAGE)
        return report(Exit(ExitCode.USAGE, message, "usage_error"), as_json=as_json)
    except KeyboardInterrupt:
        return report(Exit(ExitCode.INTERRUPTED, "interrupted", "interrupted"), as_json=as_json)
    except Exception as exc:
        if os.environ.get("MWALLET_DEBUG"):
            raise
        message = f"internal error ({type(exc).__name__}: {exc}); set MWALLET_DEBUG=1 for details"
        return report(Exit(ExitCode.INTERNAL, message, "internal_error"), as_json=as_json)
    return result if isinstance(result, int) else 0
