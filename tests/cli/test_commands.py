"""Every `mwallet` command through the real entry point, on SQLite and on PostgreSQL.

Each test is one scenario of a command group: the happy path, its `--json` document, and every
refusal with its exit code, its single stderr line, and the proof that nothing changed.
"""

from __future__ import annotations

import stat
from datetime import datetime
from decimal import Decimal

import pytest

from mwallet.cli.exit_codes import ExitCode
from tests.cli.harness import (
    Cli,
    balance_of,
    count_rows,
    seed_transfer,
    seed_user,
    tamper,
)
from tests.conftest import BACKENDS
from tests.support import PASSWORD, new_phone


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The everyday commands run end to end on both databases (see tests/cli/conftest.py)."""
    return str(request.param)


USAGE = ExitCode.USAGE
NOT_AUTHENTICATED = ExitCode.NOT_AUTHENTICATED
REFUSED = ExitCode.REFUSED
NOT_FOUND = ExitCode.NOT_FOUND
LEDGER_UNSOUND = ExitCode.LEDGER_UNSOUND
CONFIGURATION = ExitCode.CONFIGURATION

PASSWORD_LINE = PASSWORD + "\n"


def _is_utc_timestamp(text: str) -> bool:
    return text.endswith("Z") and datetime.fromisoformat(text).utcoffset() is not None


# --- init ----------------------------------------------------------------------------------------
def test_init_twice_is_safe_and_the_currency_cannot_change(cli: Cli) -> None:
    assert cli.ok_json("init") == {
        "created": False,
        "currency": "USD",
        "region": None,
        "home": str(cli.home),
        "admin": None,
    }
    assert "USD" in cli.ok("init").stdout
    assert cli.ok_json("init", "--currency", "usd")["currency"] == "USD"

    line = cli.fails(CONFIGURATION, "init", "--currency", "EUR")
    assert "USD" in line
    assert "EUR" in line
    assert cli.fails_json(CONFIGURATION, "init", "--currency", "EUR")["error"] == (
        "already_initialized"
    )
    assert "XYZ" in cli.fails(USAGE, "init", "--currency", "XYZ")
    assert "ZZ" in cli.fails(USAGE, "init", "--region", "ZZ")

    assert cli.ok_json("init")["currency"] == "USD"


def test_init_on_a_fresh_home_sets_the_currency_and_the_phone_region(embedded_cli: Cli) -> None:
    cli = embedded_cli
    first = cli.ok_json("init", "--currency", "EUR", "--region", "MZ")
    assert first == {
        "created": True,
        "currency": "EUR",
        "region": "MZ",
        "home": str(cli.home),
        "admin": None,
    }
    assert (cli.home / "mwallet.db").is_file()
    again = cli.ok_json("init", "--currency", "eur", "--region", "mz")
    assert again == {**first, "created": False}
    assert "EUR" in cli.fails(CONFIGURATION, "init", "--currency", "USD")

    # With a region, a number typed the local way is the same person.
    phone = new_phone()
    local = phone.removeprefix("+258")  # "84 123 4567" as people in Mozambique write it
    user = cli.register(local, "Ana Machava")
    assert user["phone"] == phone
    cli.login(local)
    assert cli.ok_json("topup", "12.5")["currency"] == "EUR"
    assert cli.ok_json("balance")["currency"] == "EUR"


# --- register ------------------------------------------------------------------------------------
@pytest.mark.remote
def test_register(cli: Cli, db_url: str) -> None:
    phone = new_phone()
    typed = f"{phone[:4]} {phone[4:6]} {phone[6:9]} {phone[9:]}"  # "+258 84 123 4567"
    args = ["register", "--phone", typed, "--name", "  Ana   Machava ", "--password-stdin"]
    args += ["--email", "ana@example.org", "--idempotency-key", "register-ana"]
    user = cli.ok_json(*args, stdin=PASSWORD_LINE)
    assert set(user) == {"user_id", "phone", "display_name", "email", "created_at", "role", "tier"}
    assert user["role"] == "customer"
    assert user["phone"] == phone
    assert user["display_name"] == "Ana Machava"
    assert user["email"] == "ana@example.org"
    assert _is_utc_timestamp(user["created_at"])
    # The same request with the same key (a retry) is the same registration.
    assert cli.ok_json(*args, stdin=PASSWORD_LINE) == user
    assert count_rows(db_url, "users") == 1

    def register(phone: str, *extra: str) -> tuple[str, ...]:
        return ("register", "--phone", phone, "--name", "Someone", "--password-stdin", *extra)

    duplicate = cli.fails(REFUSED, *register(phone), stdin=PASSWORD_LINE)
    assert phone in duplicate
    refused = cli.fails_json(REFUSED, *register(phone), stdin=PASSWORD_LINE)
    assert refused["error"] == "phone_already_registered"

    other = new_phone()
    for bad_phone in ("12345", "+25884", "not-a-phone", "841234567"):
        assert bad_phone in cli.fails(USAGE, *register(bad_phone), stdin=PASSWORD_LINE)
    invalid = cli.fails_json(USAGE, *register("12345"), stdin=PASSWORD_LINE)
    assert invalid["error"] == "invalid_phone_number"
    assert "8 characters" in cli.fails(USAGE, *register(other), stdin="short\n")
    weak = cli.fails_json(USAGE, *register(other), stdin=other.removeprefix("+") + "\n")
    assert weak["error"] == "weak_password"
    assert "e-mail" in cli.fails(USAGE, *register(other), "--email", "ana@", stdin=PASSWORD_LINE)
    assert "name" in cli.fails(
        USAGE,
        "register",
        "--phone",
        other,
        "--name",
        "   ",
        "--password-stdin",
        stdin=PASSWORD_LINE,
    )
    # No terminal to prompt on and no --password-stdin; or an empty line on stdin.
    assert "--password-stdin" in cli.fails(USAGE, "register", "--phone", other, "--name", "X")
    cli.fails(USAGE, *register(other), stdin="")

    assert count_rows(db_url, "users") == 1
    assert (
        count_rows(db_url, "accounts") == 12
    )  # two funding sources, the holds and fees accounts, 7 billers', and Ana's wallet

    said = cli.ok(*register(other), stdin=PASSWORD_LINE).stdout
    assert "Registered" in said
    assert other in said
    assert count_rows(db_url, "users") == 2


# --- login, whoami, logout -----------------------------------------------------------------------
@pytest.mark.remote
def test_login_whoami_and_logout(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava")
    login = ("login", "--phone", ana.phone, "--password-stdin")

    wrong = cli.fails(NOT_AUTHENTICATED, *login, stdin="not-the-password\n")
    stranger = ("login", "--phone", new_phone(), "--password-stdin")
    assert cli.fails(NOT_AUTHENTICATED, *stranger, stdin=PASSWORD_LINE) == wrong  # no enumeration
    assert cli.fails_json(NOT_AUTHENTICATED, *login, stdin="nope-nope\n")["error"] == (
        "invalid_credentials"
    )
    assert not cli.session_file.exists()
    assert "mwallet login" in cli.fails(NOT_AUTHENTICATED, "whoami")

    # A stale, world-readable, corrupt session file is replaced by one only the owner can read.
    cli.home.mkdir()
    cli.session_file.write_text("{not json")
    cli.session_file.chmod(0o644)
    cli.fails(NOT_AUTHENTICATED, "balance")
    session = cli.login(ana.phone)
    assert set(session) == {"user_id", "phone", "access_expires_at", "expires_at"}
    assert session["user_id"] == ana.user_id
    assert session["phone"] == ana.phone
    assert _is_utc_timestamp(session["expires_at"])
    assert stat.S_IMODE(cli.session_file.stat().st_mode) == 0o600
    saved = cli.session_file.read_text()
    assert PASSWORD not in saved

    assert "Ana Machava" in cli.ok("whoami").stdout
    assert cli.ok_json("whoami") == {
        "user_id": ana.user_id,
        "phone": ana.phone,
        "display_name": "Ana Machava",
        "role": "customer",
    }

    assert "Logged out" in cli.ok("logout").stdout
    assert not cli.session_file.exists()
    assert "mwallet login" in cli.fails(NOT_AUTHENTICATED, "balance")
    assert cli.fails_json(NOT_AUTHENTICATED, "whoami")["error"] == "not_authenticated"
    assert cli.ok_json("logout") == {"logged_out": False}
    # Logging out revoked the token itself: a copy of the old session file is worthless.
    cli.session_file.write_text(saved)
    cli.fails(NOT_AUTHENTICATED, "balance")

    said = cli.ok(*login, stdin=PASSWORD_LINE).stdout
    assert "Logged in as Ana Machava" in said
    assert cli.ok_json("whoami")["user_id"] == ana.user_id
    live = "UPDATE token_families SET expires_at = 0 WHERE revoked_at IS NULL"
    assert tamper(db_url, live) == 2  # the seeding login's and this one
    assert "log in again" in cli.fails(NOT_AUTHENTICATED, "whoami")


# --- balance and topup ---------------------------------------------------------------------------
@pytest.mark.remote
def test_balance_and_topup(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava")
    cli.login(ana.phone)
    assert cli.ok_json("balance") == {
        "user_id": ana.user_id,
        "phone": ana.phone,
        "currency": "USD",
        "balance": "0.00",
        "available": "0.00",
    }

    topup = cli.ok_json("topup", "12.5", "--idempotency-key", "topup-1")
    assert set(topup) == {"id", "source", "amount", "currency", "created_at", "idempotency_key"}
    assert topup["idempotency_key"] == "topup-1"
    assert (topup["source"], topup["amount"], topup["currency"]) == ("sandbox", "12.50", "USD")
    assert _is_utc_timestamp(topup["created_at"])
    assert cli.ok_json("topup", "12.5", "--idempotency-key", "topup-1") == topup  # a safe retry
    said = cli.ok("topup", "1000.00").stdout
    assert "Topped up" in said
    assert "1,000.00 USD" in said

    assert cli.ok_json("balance") == {
        "user_id": ana.user_id,
        "phone": ana.phone,
        "currency": "USD",
        "balance": "1012.50",
        "available": "1012.50",
    }
    shown = cli.ok("balance").stdout
    assert "1,012.50 USD" in shown
    assert ana.phone in shown

    entries = count_rows(db_url, "journal_entries")
    for typed in ("1e3", "12.345", "abc", "1,000", "-5"):
        assert repr(typed) in cli.fails(USAGE, "topup", "--", typed)
    for zero in ("0", "0.00"):
        assert "greater than zero" in cli.fails(USAGE, "topup", zero)
    assert cli.fails_json(USAGE, "topup", "1e3")["error"] == "invalid_amount"
    assert cli.fails_json(USAGE, "topup", "12.345")["error"] == "invalid_amount"

    assert "bank" in cli.fails(USAGE, "topup", "5", "--source", "bank")
    unknown = cli.fails_json(USAGE, "topup", "5", "--source", "bank")
    assert unknown["error"] == "unknown_funding_source"
    assert cli.fails_json(USAGE, "topup", "1000000001")["error"] == "amount_too_large"
    reused = cli.fails_json(REFUSED, "topup", "13", "--idempotency-key", "topup-1")
    assert reused["error"] == "idempotency_key_reused"
    assert "idempotency key" in cli.fails(USAGE, "topup", "5", "--idempotency-key", "no spaces")

    assert cli.balance() == "1012.50"
    assert count_rows(db_url, "journal_entries") == entries


# --- send ----------------------------------------------------------------------------------------
@pytest.mark.remote
def test_send(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="100")
    bruno = seed_user(db_url, name="Bruno Tembe")
    cli.login(ana.phone)

    send = ("send", "--to", bruno.phone, "30", "--note", "rent", "--idempotency-key", "send-1")
    sent = cli.ok_json(*send)
    assert set(sent) == {
        "id",
        "from",
        "to",
        "amount",
        "fee",
        "currency",
        "note",
        "created_at",
        "idempotency_key",
    }
    assert sent["id"]
    assert (sent["from"], sent["to"]) == (ana.phone, bruno.phone)
    assert (sent["amount"], sent["currency"], sent["note"]) == ("30.00", "USD", "rent")
    assert cli.ok_json(*send) == sent  # the retry is the same transfer, not a second one
    assert cli.balance() == "70.00"
    assert balance_of(db_url, bruno) == "30.00"

    other_amount = ("send", "--to", bruno.phone, "31", "--note", "rent")
    reused = cli.fails_json(REFUSED, *other_amount, "--idempotency-key", "send-1")
    assert reused["error"] == "idempotency_key_reused"
    assert "idempotency key" in cli.fails(REFUSED, *other_amount, "--idempotency-key", "send-1")

    said = cli.ok("send", "--to", bruno.phone, "0.5").stdout
    assert "Sent" in said
    assert "0.50 USD" in said
    assert bruno.phone in said

    assert "insufficient funds" in cli.fails(REFUSED, "send", "--to", bruno.phone, "1000")
    poor = cli.fails_json(REFUSED, "send", "--to", bruno.phone, "69.51")
    assert poor["error"] == "insufficient_funds"
    assert "yourself" in cli.fails(REFUSED, "send", "--to", ana.phone, "1")
    assert cli.fails_json(REFUSED, "send", "--to", ana.phone, "1")["error"] == "self_transfer"
    nobody = new_phone()
    assert nobody in cli.fails(REFUSED, "send", "--to", nobody, "1")
    assert cli.fails_json(REFUSED, "send", "--to", nobody, "1")["error"] == "unknown_recipient"
    assert "12345" in cli.fails(USAGE, "send", "--to", "12345", "1")
    assert "amount" in cli.fails(USAGE, "send", "--to", bruno.phone, "1e3")
    assert "note" in cli.fails(USAGE, "send", "--to", bruno.phone, "1", "--note", "x" * 141)

    assert cli.balance() == "69.50"
    assert balance_of(db_url, bruno) == "30.50"
    assert count_rows(db_url, "transfers") == 2


# --- history -------------------------------------------------------------------------------------
def test_history(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="50")
    bruno = seed_user(db_url, name="Bruno Tembe")
    lunch = seed_transfer(db_url, ana, bruno, "12.25", "lunch")
    cli.login(ana.phone)

    page = cli.ok_json("history")
    assert (page["user"], page["next_cursor"]) == (ana.phone, None)
    lines = page["movements"]
    assert len(lines) == 2
    assert lines[0] == {
        "id": lunch,
        "type": "transfer_out",
        "created_at": "2026-01-15T09:30:00Z",  # the seeding service's fixed clock
        "amount": "-12.25",
        "currency": "USD",
        "balance_after": "37.75",
        "counterparty": bruno.phone,
        "note": "lunch",
        "state": "completed",
        "cursor": lines[0]["cursor"],
    }
    assert {k: lines[1][k] for k in ("type", "amount", "balance_after", "counterparty")} == {
        "type": "topup",
        "amount": "50.00",
        "balance_after": "50.00",
        "counterparty": "sandbox",
    }
    first = cli.ok_json("history", "--limit", "1")
    assert first["movements"] == lines[:1]
    assert first["next_cursor"] == lines[0]["cursor"]
    assert cli.ok_json("history", "--cursor", first["next_cursor"])["movements"] == lines[1:]
    table = cli.ok("history").stdout
    for shown in (bruno.phone, "sandbox", "lunch", "-12.25 USD", "37.75 USD", "50.00 USD"):
        assert shown in table
    assert "between 1 and" in cli.fails(USAGE, "history", "--limit", "0")
    assert cli.fails_json(USAGE, "history", "--limit", "1001")["error"] == "invalid_input"

    cli.login(bruno.phone)
    (received,) = cli.ok_json("history")["movements"]
    assert (received["id"], received["type"], received["amount"], received["counterparty"]) == (
        lunch,
        "transfer_in",
        "12.25",
        ana.phone,
    )
    assert ana.phone in cli.ok("history").stdout

    carla = seed_user(db_url, name="Carla Nhantumbo")
    cli.login(carla.phone)
    assert cli.ok_json("history")["movements"] == []
    assert "No movements yet" in cli.ok("history").stdout


# --- admin ---------------------------------------------------------------------------------------
def test_admin_ledger_verify_finds_a_tampered_balance(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, funds="100")
    bruno = seed_user(db_url)
    seed_transfer(db_url, ana, bruno, "40", None)

    assert "The ledger is sound" in cli.as_admin().ok("admin", "ledger", "verify").stdout
    report = cli.as_admin().ok_json("admin", "ledger", "verify")
    assert set(report) == {
        "ok",
        "accounts",
        "entries",
        "postings",
        "totals_by_currency",
        "problems",
        "warnings",
    }
    assert report["ok"] is True
    # Ana's, Bruno's and the admin's wallets, the sandbox source and the holds.
    assert (report["accounts"], report["entries"], report["postings"]) == (14, 2, 4)
    assert report["problems"] == report["warnings"] == []
    assert list(report["totals_by_currency"]) == ["USD"]
    assert Decimal(report["totals_by_currency"]["USD"]) == 0

    # Someone edits Bruno's stored balance behind the ledger's back.
    bruno_wallet = f"wallet:{bruno.user_id}"
    changed = tamper(
        db_url, f"UPDATE accounts SET balance = balance + 500 WHERE code = '{bruno_wallet}'"
    )
    assert changed == 1

    unsound = cli.as_admin().run("admin", "ledger", "verify")
    assert unsound.code == LEDGER_UNSOUND
    assert "problem" in unsound.error_line()
    assert bruno_wallet in unsound.stdout
    assert "sound:" not in unsound.stdout

    as_json = cli.as_admin().run("admin", "ledger", "verify", "--json")
    assert as_json.code == LEDGER_UNSOUND
    assert as_json.error_json()["error"] == "ledger_unsound"
    found = as_json.json()
    assert found["ok"] is False
    assert any(bruno_wallet in problem for problem in found["problems"])


@pytest.mark.remote
def test_admin_wallets_freeze_unfreeze_and_close(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, funds="20")
    bruno = seed_user(db_url)
    carla = seed_user(db_url)
    cli.login(ana.phone)
    admin = cli.as_admin(same_door=True)  # with --server too: `POST /admin/wallets/status`

    assert "frozen" in admin.ok("admin", "wallets", "freeze", ana.phone).stdout
    assert "frozen" in cli.fails(REFUSED, "send", "--to", bruno.phone, "5").lower()
    assert cli.fails_json(REFUSED, "topup", "5")["error"] == "wallet_frozen"
    assert cli.balance() == "20.00"  # a frozen wallet can still be looked at
    unfrozen = admin.ok_json("admin", "wallets", "unfreeze", ana.phone)
    assert unfrozen == {"phone": ana.phone, "status": "active"}

    # Money cannot reach a frozen wallet either.
    assert admin.ok_json("admin", "wallets", "freeze", bruno.phone)["status"] == "frozen"
    assert "recipient" in cli.fails(REFUSED, "send", "--to", bruno.phone, "5")
    assert "now active" in admin.ok("admin", "wallets", "unfreeze", bruno.phone).stdout
    assert cli.ok_json("send", "--to", bruno.phone, "5")["amount"] == "5.00"

    assert "15.00" in admin.fails(REFUSED, "admin", "wallets", "close", ana.phone)
    refused = admin.fails_json(REFUSED, "admin", "wallets", "close", ana.phone)
    assert refused["error"] == "wallet_not_empty"
    closed = admin.ok_json("admin", "wallets", "close", carla.phone)
    assert closed == {"phone": carla.phone, "status": "closed"}
    assert "closed" in admin.fails(REFUSED, "admin", "wallets", "unfreeze", carla.phone)
    assert "closed" in cli.fails(REFUSED, "send", "--to", carla.phone, "1").lower()

    stranger = new_phone()
    assert stranger in admin.fails(NOT_FOUND, "admin", "wallets", "freeze", stranger)
    missing = admin.fails_json(NOT_FOUND, "admin", "wallets", "close", stranger)
    assert missing["error"] == "user_not_found"
    assert "12345" in admin.fails(USAGE, "admin", "wallets", "freeze", "12345")

    assert cli.balance() == "15.00"
    assert balance_of(db_url, bruno) == "5.00"
    assert balance_of(db_url, carla) == "0.00"
    assert cli.as_admin().ok_json("admin", "ledger", "verify")["ok"] is True
