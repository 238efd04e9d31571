"""Bad input at the command line, on the database and over `--server`: one clear stderr line and
exit 2, nothing moved, and the same meaning whichever door the command went through."""

from __future__ import annotations

import pytest

from mwallet.cli.exit_codes import ExitCode
from tests.cli.harness import Cli, seed_user
from tests.support import new_phone

USAGE = int(ExitCode.USAGE)


@pytest.mark.remote
@pytest.mark.parametrize(
    "command",
    [
        ("send", "5", "--to", "{bruno}", "--yes"),
        ("topup", "5", "--yes"),
        ("withdraw", "5", "--yes"),
        ("pay", "airtime", "10", "--yes"),
    ],
    ids=lambda command: "-".join(command[:2]),
)
@pytest.mark.parametrize("key", ["", " ", "a b", "\x00", "é"])
def test_a_malformed_idempotency_key_is_refused_not_replaced(
    cli: Cli, db_url: str, command: tuple[str, ...], key: str
) -> None:
    # `--idempotency-key "$KEY"` with KEY unset must not quietly become a new key on every run:
    # the retry it was meant for would move the money again. Over --server a key that is no
    # header value was once "cannot reach the server" (8), with a hint to retry with it.
    ana = seed_user(db_url, funds="100.00")
    bruno = seed_user(db_url)
    cli.login(ana.phone)
    args = [word.format(bruno=bruno.phone) for word in command]
    line = cli.fails(USAGE, *args, "--idempotency-key", key)
    assert line == "error: an idempotency key is 1 to 128 letters, digits or . _ : - characters"
    assert cli.balance() == "100.00"


@pytest.mark.remote
@pytest.mark.parametrize(
    "bad",
    [
        ("5.001", "{bruno}", "ok"),
        ("5", "+258 84x", "ok"),
        ("5", "{bruno}", "\x07"),
        ("0", "{bruno}", "ok"),
    ],
    ids=["amount", "phone", "note", "zero"],
)
def test_bad_input_does_not_use_up_its_idempotency_key(
    cli: Cli, db_url: str, bad: tuple[str, str, str]
) -> None:
    # The retry with good input and the same key is a first request, not "key already used".
    ana = seed_user(db_url, funds="100.00")
    bruno = seed_user(db_url).phone
    cli.login(ana.phone)
    amount, to, note = (part.format(bruno=bruno) for part in bad)
    key = ("--idempotency-key", "retry-1")
    cli.fails(USAGE, "send", amount, "--to", to, "--note", note, "--yes", *key)
    assert cli.balance() == "100.00"
    cli.ok("send", "5", "--to", bruno, "--note", "ok", "--yes", *key)
    assert cli.balance() == "95.00"


@pytest.mark.remote
def test_an_empty_idempotency_key_is_refused_at_registration(cli: Cli, db_url: str) -> None:
    phone = new_phone()
    register = ("register", "--phone", phone, "--name", "Ana", "--password-stdin")
    line = cli.fails(USAGE, *register, "--idempotency-key", "", stdin="correct-horse-battery\n")
    assert "idempotency key" in line
    cli.register(phone)  # nothing was made: the number is still free


@pytest.mark.remote
@pytest.mark.parametrize("before", ["garbage", "0" * 27, "I" * 26])
def test_a_garbled_inbox_cursor_is_refused(cli: Cli, db_url: str, before: str) -> None:
    cli.login(seed_user(db_url).phone)
    assert "not a notification id" in cli.fails(USAGE, "inbox", "--before", before)


@pytest.mark.parametrize("after", ["garbage", "+258 84x", "\x00"])
def test_a_garbled_users_cursor_is_refused(cli: Cli, after: str) -> None:
    admin = cli.as_admin()
    admin.fails(USAGE, "admin", "users", "list", "--after", after)


@pytest.mark.remote
@pytest.mark.parametrize(
    "command",
    [
        ("send", "5", "--to", "1" * 5000, "--yes"),
        ("pay", "airtime", "10", "--phone", "+" + "2" * 5000, "--yes"),
        ("pay", "bill", "10", "--biller", "b" * 5000, "--reference", "1", "--yes"),
        ("payments", "show", "p" * 5000),
        ("inbox", "read", "n" * 5000),
        ("withdraw", "cancel", "w" * 5000),
    ],
    ids=lambda command: "-".join(command[:2]),
)
def test_an_error_quotes_a_long_input_short(
    cli: Cli, db_url: str, command: tuple[str, ...]
) -> None:
    # One readable line: the error names the input, it does not echo 5,000 characters back.
    cli.login(seed_user(db_url, funds="100.00").phone)
    outcome = cli.run(*command)
    assert outcome.code in (USAGE, int(ExitCode.NOT_FOUND)), outcome.stderr
    assert len(outcome.error_line()) < 200, outcome.stderr[:300]
    assert cli.balance() == "100.00"


@pytest.mark.remote
@pytest.mark.parametrize("typed", ["\x00", "", "a/b c", "line\nbreak"])
@pytest.mark.parametrize(
    ("command", "refusal"),
    [
        (("payments", "show"), "you have no payment {}"),
        (("inbox", "read"), "no notification {} in your inbox"),
        (("withdraw", "cancel"), "you have no withdrawal {}"),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, tuple) else "",
)
def test_an_id_that_cannot_be_one_is_not_found_alike_at_both_doors(
    cli: Cli, db_url: str, command: tuple[str, ...], refusal: str, typed: str
) -> None:
    # Over --server, such an id once went into the URL as typed: an internal error (exit 1).
    cli.login(seed_user(db_url).phone)
    line = cli.fails(int(ExitCode.NOT_FOUND), *command, typed)
    assert line == "error: " + refusal.format(repr(typed.strip()))


@pytest.mark.remote
@pytest.mark.parametrize(
    ("command", "what"),
    [
        (("history",), "history"),
        (("statement", "--from", "2026-01-01", "--to", "2026-01-31"), "statement"),
        (("report", "stats"), "statistics"),
        (("report", "trends"), "statistics"),
    ],
    ids=lambda value: "-".join(value[:2]) if isinstance(value, tuple) else "",
)
@pytest.mark.parametrize("registered", [True, False], ids=["registered", "stranger"])
def test_a_customer_asking_for_another_persons_report_is_refused_alike(
    cli: Cli, db_url: str, command: tuple[str, ...], what: str, registered: bool
) -> None:
    # Over --server the phone was first looked up, and the refusal was of that look-up.
    cli.login(seed_user(db_url).phone)
    other = seed_user(db_url).phone if registered else new_phone()
    line = cli.fails(int(ExitCode.FORBIDDEN), *command, "--user", other)
    assert line == f"error: a customer may not read another person's {what}"


def test_a_new_phone_is_not_made_by_a_failed_registration(cli: Cli) -> None:
    phone = new_phone()
    register = ("register", "--phone", phone, "--password-stdin", "--name")
    cli.fails(USAGE, *register, "\x00", stdin="correct-horse-battery\n")
    cli.register(phone)  # the number was not taken by the refused attempt
