"""The root command: help, version, where the wallet lives, and failures before any command runs."""

from __future__ import annotations

import stat
from pathlib import Path

import mwallet
from mwallet.cli import main
from mwallet.cli.exit_codes import ExitCode
from tests.cli.harness import Cli
from tests.support import PASSWORD, new_phone

COMMANDS = [
    "init",
    "register",
    "login",
    "logout",
    "whoami",
    "balance",
    "topup",
    "send",
    "history",
    "demo",
    "admin",
]
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/x"


def test_help_lists_every_command_and_version_prints_it(embedded_cli: Cli) -> None:
    cli = embedded_cli
    root = cli.ok("--help").stdout
    assert "Usage: mwallet" in root
    for command in COMMANDS:
        assert f" {command} " in root, command
    # The root's help builds each group as its name and help text only: the same words.
    for name, group in main.GROUPS.items():
        summary = " ".join(group.help.split()[:4])
        assert f" {name} " in root, name
        assert summary in " ".join(root.split()), (name, summary)
    admin = cli.ok("admin", "--help").stdout
    assert "ledger" in admin
    assert "wallets" in admin
    wallets = cli.ok("admin", "wallets", "--help").stdout
    for command in ("freeze", "unfreeze", "close"):
        assert command in wallets
    send = cli.ok("send", "--help").stdout
    for option in ("--to", "--note", "--idempotency-key", "--json"):
        assert option in send
    assert cli.ok("--version").stdout == f"mwallet {mwallet.__version__}\n"
    # Asking for help or the version touches nothing.
    assert not cli.home.exists()


def test_the_root_help_shows_each_group_with_its_own_help_text() -> None:
    # The root's help does not import the groups: it repeats their help, which must not drift.
    for name, group in main.GROUPS.items():
        assert group.help == group.load().info.help, name


def test_help_shows_the_defaults_written_in_brackets(embedded_cli: Cli) -> None:
    # The help strings say "[embedded SQLite]" and "[USD]"; Rich must not eat them as markup.
    assert "embedded SQLite" in embedded_cli.ok("--help").stdout
    assert "USD" in embedded_cli.ok("init", "--help").stdout


def test_usage_errors_are_one_line_too(embedded_cli: Cli) -> None:
    cli = embedded_cli
    # A negative amount reaches Click as an unknown option: still one line, still exit 2.
    assert "-5" in cli.fails(ExitCode.USAGE, "topup", "-5")
    assert cli.fails_json(ExitCode.USAGE, "topup", "-5")["message"]
    assert "--to" in cli.fails(ExitCode.USAGE, "send", "5")
    assert "frobnicate" in cli.fails(ExitCode.USAGE, "frobnicate")
    assert not cli.home.exists()


def test_the_embedded_database_and_the_session_live_in_mwallet_home(
    embedded_cli: Cli, tmp_path: Path
) -> None:
    cli = embedded_cli
    assert cli.ok_json("init")["home"] == str(cli.home)
    phone = new_phone()
    cli.register(phone)
    cli.login(phone)
    assert cli.balance() == "0.00"
    assert sorted(p.name for p in cli.home.iterdir() if not p.name.startswith("mwallet.db-")) == [
        "data.key",
        "device.id",
        "mwallet.db",
        "session.json",
    ]
    assert stat.S_IMODE((cli.home / "data.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((cli.home / "device.id").stat().st_mode) == 0o600

    # --home beats MWALLET_HOME; --db beats the embedded file (and MWALLET_DB).
    other = tmp_path / "other home"
    assert cli.ok_json("--home", str(other), "init")["home"] == str(other)
    assert (other / "mwallet.db").is_file()
    explicit = tmp_path / "elsewhere" / "books.db"
    third = tmp_path / "third"
    cli.ok("--home", str(third), "--db", f"sqlite:///{explicit}", "init")
    assert explicit.is_file()
    assert not (third / "mwallet.db").exists()
    # The other home holds another wallet: nobody is logged in there, the phone is unknown.
    login = ("--home", str(other), "login", "--phone", phone, "--password-stdin")
    cli.fails(ExitCode.NOT_AUTHENTICATED, *login, stdin=PASSWORD + "\n")


def test_a_database_that_cannot_be_reached_is_a_configuration_error(tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "home", db=UNREACHABLE, cwd=tmp_path)
    line = cli.fails(ExitCode.CONFIGURATION, "balance")
    assert "database" in line
    assert "127.0.0.1" in line
    assert cli.fails_json(ExitCode.CONFIGURATION, "init")["error"] == "storage_unavailable"
    cli.fails(ExitCode.CONFIGURATION, "admin", "ledger", "verify")

    unsupported = Cli(home=tmp_path / "home", db="mysql://root@localhost/wallet", cwd=tmp_path)
    assert "mysql" in unsupported.fails(ExitCode.CONFIGURATION, "init")
    garbage = Cli(home=tmp_path / "home", db="not a url", cwd=tmp_path)
    assert "not a url" in garbage.fails(ExitCode.CONFIGURATION, "init")
    assert not (tmp_path / "home").exists()


def test_a_home_that_is_a_file_is_a_configuration_error_that_names_it(tmp_path: Path) -> None:
    home = tmp_path / "not-a-folder"
    home.write_text("")
    cli = Cli(home=home, db=None, cwd=tmp_path)
    line = cli.fails(ExitCode.CONFIGURATION, "init")
    assert cli.fails_json(ExitCode.CONFIGURATION, "init")["message"]
    assert str(home) in line


def test_serve_refuses_an_auth_url_it_cannot_use(embedded_cli: Cli) -> None:
    """`--auth-url` is for processes without the auth service, and must be an HTTP URL; both are
    refused before anything listens."""
    line = embedded_cli.fails(ExitCode.USAGE, "serve", "--auth-url", "http://127.0.0.1:9")
    assert "--auth-url" in line
    wallet_only = ("serve", "--service", "wallet", "--auth-url", "auth.internal:8001")
    assert "http://" in embedded_cli.fails(ExitCode.USAGE, *wallet_only)
