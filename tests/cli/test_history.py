"""`mwallet history` (filters, cursor, --json, --csv, --user) and `mwallet statement`, end to end.

The numbers themselves are checked on both databases in tests/integration/test_history.py; here
the door: options, formats, files, errors and exit codes. Each scenario runs on the database and
through the server (`remote`): the same pages, cursors, statements and error lines, another
person's wallet by phone (`--user`) included.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from mwallet.cli import statement_export
from mwallet.cli.statement_export import export_statement
from mwallet.core.services.user_service import UserService
from mwallet.remote import HttpWalletService
from tests.cli.harness import Cli, balance_of, seed_transfer, seed_user
from tests.support import PASSWORD, open_wallet

USAGE = 2
NOT_FOUND = 5
FORBIDDEN = 9


def refused_another_persons(cli: Cli, what: str, *args: str) -> None:
    """A customer asking for someone else's wallet is refused (9, permission_denied) whether or
    not the number is registered, in the same words at both doors: through the server, the
    report's endpoint refuses them before any look-up of the phone, as the core does."""
    says = f"may not read another person's {what}"
    for phone in (args[-1], "+258849999999"):  # registered, and not
        assert says in cli.fails(FORBIDDEN, *args[:-1], phone)


@pytest.mark.remote
def test_history_filters_pages_and_formats(cli: Cli, db_url: str, door: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="100")
    bruno = seed_user(db_url, name="Bruno Tembe", funds="20")
    carla = seed_user(db_url, name="Carla Mendes")
    seed_transfer(db_url, ana, bruno, "12.25", "lunch")
    seed_transfer(db_url, ana, carla, "30", None)
    seed_transfer(db_url, bruno, ana, "5", "change")
    cli.login(ana.phone)

    everything = cli.ok_json("history")["movements"]
    assert [(m["type"], m["amount"], m["balance_after"]) for m in everything] == [
        ("transfer_in", "5.00", "62.75"),
        ("transfer_out", "-30.00", "57.75"),
        ("transfer_out", "-12.25", "87.75"),
        ("topup", "100.00", "100.00"),
    ]
    sent = cli.ok_json("history", "--type", "transfer-out")["movements"]
    assert [m["amount"] for m in sent] == ["-30.00", "-12.25"]
    assert cli.ok_json("history", "--type", "topup,transfer_in")["movements"] == [
        everything[0], everything[3],
    ]  # fmt: skip
    assert cli.ok_json("history", "--counterparty", bruno.phone)["movements"] == everything[:3:2]
    assert cli.ok_json("history", "--min", "10", "--max", "50")["movements"] == everything[1:3]
    day = ("--from", "2026-01-15", "--to", "2026-01-15")
    assert cli.ok_json("history", *day)["movements"] == everything
    assert cli.ok_json("history", "--from", "2026-01-16")["movements"] == []

    first = cli.ok_json("history", "--limit", "3")
    assert first["movements"] == everything[:3]
    rest = cli.ok_json("history", "--limit", "3", "--cursor", first["next_cursor"])
    assert (rest["movements"], rest["next_cursor"]) == (everything[3:], None)
    table = cli.ok("history", "--limit", "3").stdout
    assert f"--cursor {first['next_cursor']}" in table

    exported = cli.run("history", "--csv", "--limit", "2")
    assert exported.code == 0
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [(row["type"], row["amount"], row["counterparty"]) for row in rows] == [
        ("transfer_in", "5.00", bruno.phone),
        ("transfer_out", "-30.00", carla.phone),
    ]
    assert f"next cursor: {everything[1]['cursor']}" in exported.stderr

    # Another person's history: refused to a customer, shown to an admin.
    refused_another_persons(cli, "history", "history", "--user", bruno.phone)
    assert cli.fails_json(FORBIDDEN, "history", "--user", bruno.phone)["error"] == (
        "permission_denied"
    )
    assert cli.ok_json("history", "--user", ana.phone)["movements"] == everything  # her own
    admin = cli.as_admin(same_door=True)
    theirs = admin.ok_json("history", "--user", ana.phone)
    assert (theirs["user"], theirs["movements"]) == (ana.phone, everything)
    assert admin.ok("history", "--user", ana.phone).stdout == cli.ok("history").stdout
    # An unknown number: not found (5) on both doors; a malformed one: bad input (2).
    unknown = admin.fails_json(NOT_FOUND, "history", "--user", "+258849999999")
    assert unknown == {"error": "user_not_found",
                       "message": "no user is registered to +258849999999"}  # fmt: skip
    assert admin.fails_json(USAGE, "history", "--user", "+1")["error"] == "invalid_phone_number"


@pytest.mark.remote
def test_statement_to_stdout_and_to_a_file(
    cli: Cli, db_url: str, tmp_path: Path, door: str
) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="100")
    bruno = seed_user(db_url, name="Bruno Tembe", funds="20")
    seed_transfer(db_url, ana, bruno, "12.25", "lunch")
    seed_transfer(db_url, bruno, ana, "5", None)
    cli.login(ana.phone)
    day = ("--from", "2026-01-15", "--to", "2026-01-15")

    printed = cli.ok("statement", *day)
    rows = list(csv.DictReader(io.StringIO(printed.stdout)))
    assert [(row["type"], row["amount"], row["balance_after"]) for row in rows] == [
        ("opening_balance", "", "0.00"),
        ("topup", "100.00", "100.00"),
        ("transfer_out", "-12.25", "87.75"),
        ("transfer_in", "5.00", "92.75"),
        ("total_in", "105.00", ""),
        ("total_out", "12.25", ""),
        ("closing_balance", "", "92.75"),
    ]
    assert printed.stderr == ""  # no progress bar on a pipe

    target = tmp_path / "january.json"
    written = cli.ok("statement", *day, "--format", "json", "--output", str(target))
    assert str(target) in written.stdout
    assert "closing 92.75 USD" in written.stdout
    document = json.loads(target.read_text("utf-8"))
    assert (document["opening_balance"], document["closing_balance"]) == ("0.00", "92.75")
    assert (document["total_in"], document["total_out"], document["count"]) == (
        "105.00",
        "12.25",
        3,
    )
    assert document["closing_balance"] == balance_of(db_url, ana)
    assert [m["amount"] for m in document["movements"]] == ["100.00", "-12.25", "5.00"]

    earlier = cli.ok(
        "statement", "--from", "2025-12-01", "--to", "2025-12-31", "--format", "json"
    ).json()
    assert (earlier["movements"], earlier["closing_balance"]) == ([], "0.00")

    refused_another_persons(cli, "statement", "statement", *day, "--user", bruno.phone)
    admin = cli.as_admin(same_door=True)
    theirs = admin.ok("statement", *day, "--user", bruno.phone).stdout
    assert theirs.splitlines()[-1].split(",")[6] == balance_of(db_url, bruno)
    assert admin.ok("statement", *day, "--user", ana.phone).stdout == printed.stdout


@pytest.mark.remote
def test_bad_input_is_one_line_and_exit_2(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="10")
    cli.login(ana.phone)
    day = ("--from", "2026-01-15", "--to", "2026-01-15")
    for args, says in [
        (("history", "--from", "15/01/2026"), "--from must be a date"),
        (("history", "--from", "2026-02-01", "--to", "2026-01-01"), "is after --to"),
        (("history", "--type", "gift"), "unknown movement type 'gift'"),
        (("history", "--cursor", "nope"), "not a history cursor"),
        (("history", "--min", "ten"), "amount"),
        (("history", "--min", "20", "--max", "10"), "smallest amount"),
        (("statement", "--from", "2026-13-01", "--to", "2026-01-15"), "--from must be a date"),
        (("statement", "--from", "2026-01-16", "--to", "2026-01-15"), "is after --to"),
        (("statement", *day, "--format", "xml"), "unknown format"),
    ]:
        message = cli.fails(USAGE, *args)
        assert says in message, (args, message)
        assert "\n" not in message.strip()
    assert cli.fails_json(USAGE, "history", "--type", "gift")["error"] == "invalid_input"


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, as a person's is."""

    def isatty(self) -> bool:
        return True


@pytest.mark.remote
def test_a_long_statement_to_a_file_on_a_terminal_shows_a_progress_bar(
    cli: Cli, db_url: str, door: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process (the harness's commands write to files, never a terminal): the export of
    `mwallet statement --output`, on the database's service and on the server's
    (`HttpWalletService`, whose server counts the postings first: `?count=true`)."""
    ana = seed_user(db_url, name="Ana Machava", funds="100")
    bruno = seed_user(db_url, name="Bruno Tembe")
    for _ in range(3):
        seed_transfer(db_url, ana, bruno, "1", None)
    with ExitStack() as stack:
        if door == "local":
            service: UserService = stack.enter_context(open_wallet(db_url)).service
        else:
            service = HttpWalletService(cli.extra_env["MWALLET_SERVER"])
            stack.callback(service.close)
        principal = service.login(phone=ana.phone, password=PASSWORD).principal

        def export(path: Path, stderr: io.StringIO) -> str:
            monkeypatch.setattr(sys, "stderr", stderr)
            export_statement(service, principal, phone=None, start=None, end=None, kind="csv",
                             path=path)  # fmt: skip
            return stderr.getvalue()

        monkeypatch.setattr(statement_export, "PROGRESS_FROM", 4)  # a top-up and 3 transfers
        shown = export(tmp_path / "bar.csv", Terminal())
        assert "Statement" in shown
        assert "4/4" in shown  # postings read of those counted
        assert export(tmp_path / "pipe.csv", io.StringIO()) == ""
        assert (tmp_path / "bar.csv").read_text() == (tmp_path / "pipe.csv").read_text()
        monkeypatch.setattr(statement_export, "PROGRESS_FROM", 5)  # too short for a bar
        assert export(tmp_path / "short.csv", Terminal()) == ""


@pytest.mark.remote
def test_ones_own_number_in_the_national_form_names_ones_own_wallet(cli: Cli, db_url: str) -> None:
    """With a phone region set, a customer may type their own number as they know it (without
    +country): their own history, statement and statistics, on both doors."""
    with open_wallet(db_url) as wallet:
        wallet.service.init(region="MZ")
    ana = seed_user(db_url, name="Ana Machava", funds="10")
    national = ana.phone.removeprefix("+258")
    cli.login(ana.phone)
    day = ("--from", "2026-01-15", "--to", "2026-01-15")

    assert cli.ok_json("history", "--user", national) == cli.ok_json("history", "--user", ana.phone)
    assert cli.ok("statement", *day, "--user", national).stdout == cli.ok("statement", *day).stdout
    stats = cli.ok_json("report", "stats", "--user", f"{national[:2]} {national[2:]}")
    assert stats["user"] == {"phone": ana.phone, "name": "Ana Machava"}


@pytest.mark.remote
def test_a_number_with_a_slash_is_bad_input_on_both_doors(cli: Cli, db_url: str) -> None:
    """`--user a/b` is a malformed phone number (2, the same line on both doors), for a
    customer and for an admin alike; the server never sees it as a path of its own."""
    ana = seed_user(db_url, name="Ana Machava", funds="10")
    cli.login(ana.phone)
    admin = cli.as_admin(same_door=True)
    says = "error: 'a/b': write the number in international form, e.g. +258841234567"
    for who in (cli, admin):
        for args in (
            ("history", "--user", "a/b"),
            ("statement", "--from", "2026-01-15", "--to", "2026-01-15", "--user", "a/b"),
            ("report", "stats", "--user", "a/b"),
            ("report", "trends", "--user", "+258/84"),
        ):
            line = who.fails(USAGE, *args)
            assert line == says or "+258/84" in line, (args, line)
        assert who.fails_json(USAGE, "history", "--user", "a/b")["error"] == "invalid_phone_number"
