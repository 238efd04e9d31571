"""`mwallet withdraw|withdrawals|agent cash-in|atm load|admin terminals|admin withdrawals` through
the real entry point, on SQLite and on PostgreSQL.

The terminal's side of a withdrawal (redeem, complete, reverse) has no command yet: an ATM (through
its OAuth client) or an agent drives it in-process on the same database, with a clock at the real
time, to prove that what the CLI printed is what a terminal accepts.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from mwallet.bootstrap import Wallet
from mwallet.cli.exit_codes import ExitCode
from mwallet.core.clock import FixedClock
from mwallet.core.domain.roles import Role
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Channel
from mwallet.core.errors import (
    TerminalLocked,
    UnknownWithdrawalCode,
    WithdrawalNotPending,
    WrongPin,
)
from tests.cli.harness import Cli, balance_of, count_rows, seed_user
from tests.support import OPERATOR, PASSWORD, make_admin, open_wallet

USAGE = ExitCode.USAGE
NOT_AUTHENTICATED = ExitCode.NOT_AUTHENTICATED
REFUSED = ExitCode.REFUSED
NOT_FOUND = ExitCode.NOT_FOUND
FORBIDDEN = ExitCode.FORBIDDEN

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QR_BLOCKS = set("█▀▄")
# `withdraw` in text: "  code 1234 567 890   PIN 4826" then "  valid until …  id 01…".
SHOWN = re.compile(r"code (\d{4} \d{3} \d{3})\s+PIN (\d{4})\s+valid until (\S+)\s+id (\w+)")
WITHDRAWAL_KEYS = {
    "id",
    "amount",
    "fee",
    "currency",
    "channel",
    "state",
    "created_at",
    "expires_at",
    "terminal_id",
}


@contextmanager
def _wallet_at(url: str, *, minutes_ago: int = 0) -> Iterator[Wallet]:
    """The service in-process with a clock at the real time (the CLI's), or that long ago."""
    moment = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    with open_wallet(url, FixedClock(moment)) as wallet:
        yield wallet


def _utc(stamp: str) -> datetime:
    assert stamp.endswith("Z"), stamp
    return datetime.fromisoformat(stamp)


def _atm(wallet: Wallet, client_id: str, client_secret: str) -> Principal:
    """An ATM as it acts: a client-credentials token, then the principal behind it."""
    service = wallet.service
    token = service.client_token(client_id=client_id, client_secret=client_secret)
    return service.authenticate(access_token=token.access_token)


def _seed_atm(url: str, notes: dict[int, int] | None = None) -> tuple[str, str, str]:
    """An ATM registered (and loaded) in-process: (terminal id, client id, client secret)."""
    with _wallet_at(url) as wallet:
        service = wallet.service
        admin = make_admin(service)
        made = service.add_atm(actor=admin, name=f"ATM {uuid.uuid4().hex[:6]}")
        if notes:
            service.load_cassettes(actor=admin, terminal_id=made.terminal.id, notes=notes)
        assert made.client is not None
        assert made.client_secret is not None
        return made.terminal.id, made.client.id, made.client_secret


def _seed_agent(url: str, phone: str) -> str:
    """Make a registered user an agent in-process; their terminal's id."""
    with _wallet_at(url) as wallet:
        service = wallet.service
        made = service.add_agent(actor=make_admin(service), phone=phone)
        return made.terminal.id


def _states(listed: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(one["id"], one["amount"], one["state"]) for one in listed]


# --- withdraw: the code, the PIN, the QR ---------------------------------------------------------
@pytest.mark.remote
def test_withdraw_holds_the_money_and_shows_a_code_a_pin_and_a_qr(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="200")
    cli.login(ana.phone)

    before = datetime.now(UTC).replace(microsecond=0)
    issued = cli.ok_json("withdraw", "60")
    after = datetime.now(UTC)
    assert set(issued) == WITHDRAWAL_KEYS | {"code", "pin", "qr_payload", "idempotency_key"}
    assert (
        issued["amount"],
        issued["currency"],
        issued["channel"],
        issued["state"],
        issued["terminal_id"],
    ) == ("60.00", "USD", "atm", "pending", None)
    assert re.fullmatch(r"[0-9]{10}", issued["code"]), issued["code"]
    assert re.fullmatch(r"[0-9]{4}", issued["pin"]), issued["pin"]
    assert issued["qr_payload"].startswith("MW1:")
    assert issued["idempotency_key"]  # generated, so a script can retry safely
    created, expires = _utc(issued["created_at"]), _utc(issued["expires_at"])
    assert before <= created <= after
    assert expires - created == timedelta(minutes=30)
    # The QR payload is signed by this wallet and names this withdrawal and amount.
    with _wallet_at(db_url) as wallet:
        claims = wallet.service.check_withdrawal_qr(issued["qr_payload"])
    assert claims.withdrawal_id == issued["id"]
    assert claims.amount.to_decimal_string() == "60.00"

    # Held, not spent: still Ana's, no longer available.
    assert cli.ok_json("balance") == {
        "user_id": ana.user_id,
        "phone": ana.phone,
        "currency": "USD",
        "balance": "200.00",
        "available": "140.00",
    }

    shown = cli.ok("withdraw", "10").stdout
    assert "take 10.00 USD in cash at an ATM" in shown
    found = SHOWN.search(shown)
    assert found is not None, shown
    code_shown, _, until, text_id = found.groups()
    assert code_shown.replace(" ", "").isdigit()
    assert _utc(until) > after + timedelta(minutes=29)
    qr_lines = [line for line in shown.splitlines() if line and set(line) <= QR_BLOCKS | {" "}]
    assert len(qr_lines) >= 10, shown  # a QR code drawn with half-block characters
    assert any("█" in line for line in qr_lines)

    png = cli.cwd / "withdrawal-qr.png"
    saved = cli.ok("withdraw", "5", "--qr-png", str(png)).stdout
    image = png.read_bytes()
    assert image.startswith(PNG_SIGNATURE)
    assert image[12:16] == b"IHDR"
    width, height = int.from_bytes(image[16:20], "big"), int.from_bytes(image[20:24], "big")
    assert width == height >= 8 * (21 + 8)  # a square QR, 8 pixels a module, a 4-module border
    saved_found = SHOWN.search(saved)
    assert saved_found is not None, saved
    assert not set(saved) & QR_BLOCKS  # the QR went to the file, not the terminal

    listed = cli.ok_json("withdrawals")
    assert [set(one) for one in listed] == [WITHDRAWAL_KEYS] * 3
    assert _states(listed) == [
        (saved_found.group(4), "5.00", "pending"),
        (text_id, "10.00", "pending"),
        (issued["id"], "60.00", "pending"),
    ]
    table = cli.ok("withdrawals").stdout
    for one in (issued["id"], text_id, "60.00 USD", "pending", "atm"):
        assert one in table


@pytest.mark.remote
def test_a_chosen_pin_and_the_agent_channel(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="300")
    bruno = seed_user(db_url, name="Bruno Tembe")
    cli.login(ana.phone)

    chosen = cli.ok_json("withdraw", "40", "--pin-stdin", stdin="4826\n")
    assert chosen["pin"] == "4826"
    for guessable in ("1234", "0000"):
        assert "guess" in cli.fails(USAGE, "withdraw", "40", "--pin-stdin", stdin=guessable + "\n")
    assert "4 digits" in cli.fails(USAGE, "withdraw", "40", "--pin-stdin", stdin="12a4\n")

    at_agent = cli.ok_json("withdraw", "25", "--at", "agent")
    assert (at_agent["channel"], at_agent["state"]) == ("agent", "pending")
    assert "atm or agent" in cli.fails(USAGE, "withdraw", "25", "--at", "bank")

    atm_id, client_id, secret = _seed_atm(db_url, {2000: 10})
    agent_id = _seed_agent(db_url, bruno.phone)
    with _wallet_at(db_url) as wallet:
        service = wallet.service
        atm = _atm(wallet, client_id, secret)
        with pytest.raises(WrongPin):
            service.redeem_withdrawal(atm, code=chosen["code"], pin="4827")
        paid = service.redeem_withdrawal(atm, code=chosen["code"], pin="4826")
        assert paid.withdrawal.id == chosen["id"]
        assert paid.notes == {2000: 2}
        # A withdrawal for an agent is not paid out by an ATM, but by the agent.
        with pytest.raises(WithdrawalNotPending):
            service.redeem_withdrawal(atm, code=at_agent["code"], pin=at_agent["pin"])
        agent = service.login(phone=bruno.phone, password=PASSWORD).principal
        handed = service.redeem_withdrawal(agent, code=at_agent["code"], pin=at_agent["pin"])
        assert (handed.withdrawal.id, handed.notes) == (at_agent["id"], None)

    listed = cli.ok_json("withdrawals")
    assert [(one["id"], one["state"], one["terminal_id"]) for one in listed] == [
        (at_agent["id"], "authorized", agent_id),
        (chosen["id"], "authorized", atm_id),
    ]


@pytest.mark.remote
def test_withdraw_refuses_bad_amounts_and_is_idempotent(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, funds="1500")
    cli.login(ana.phone)

    for typed in ("abc", "-5", "10.999"):
        assert repr(typed) in cli.fails(USAGE, "withdraw", "--", typed)
    assert "greater than zero" in cli.fails(USAGE, "withdraw", "0")
    for outside in ("0.99", "1000.01"):
        line = cli.fails(USAGE, "withdraw", outside)
        assert "between 1.00 USD and 1,000.00 USD" in line, line
    assert count_rows(db_url, "withdrawals") == 0
    assert cli.ok_json("withdraw", "1000")["amount"] == "1000.00"  # the limit itself

    # The same key twice is one withdrawal; its secrets were shown once and are hashes now.
    request = ("withdraw", "20", "--idempotency-key", "cash-1")
    first = cli.ok_json(*request)
    assert first["code"] is not None
    again = cli.ok_json(*request)
    assert again == {**first, "code": None, "pin": None, "qr_payload": None}
    said = cli.ok(*request).stdout
    assert "already made" in said
    assert first["id"] in said
    assert not set(said) & QR_BLOCKS
    reused = cli.fails_json(REFUSED, "withdraw", "21", "--idempotency-key", "cash-1")
    assert reused["error"] == "idempotency_key_reused"

    poor = cli.fails_json(REFUSED, "withdraw", "480.01")
    assert poor["error"] == "insufficient_funds"
    assert count_rows(db_url, "withdrawals") == 2
    balance = cli.ok_json("balance")
    assert (balance["balance"], balance["available"]) == ("1500.00", "480.00")


# --- withdraw cancel -----------------------------------------------------------------------------
@pytest.mark.remote
def test_withdraw_cancel(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, funds="100")
    bruno = seed_user(db_url, funds="50")
    with _wallet_at(db_url) as wallet:
        service = wallet.service
        bruno_now = service.login(phone=bruno.phone, password=PASSWORD).principal
        theirs = service.request_withdrawal(
            bruno_now,
            amount=service.parse_money("10"),
            channel=Channel.ATM,
            pin=None,
            idempotency_key="bruno-w1",
        ).withdrawal.id
    cli.login(ana.phone)

    first = cli.ok_json("withdraw", "30")
    second = cli.ok_json("withdraw", "15")
    cancelled = cli.ok_json("withdraw", "cancel", first["id"])
    assert set(cancelled) == WITHDRAWAL_KEYS
    assert cancelled == {
        **{key: first[key] for key in WITHDRAWAL_KEYS},
        "state": "cancelled",
    }
    balance = cli.ok_json("balance")
    assert (balance["balance"], balance["available"]) == ("100.00", "85.00")

    again = cli.fails_json(REFUSED, "withdraw", "cancel", first["id"])
    assert again["error"] == "withdrawal_not_pending"
    assert "cancelled" in again["message"]
    unknown = "01NOSUCHWITHDRAWAL0000000"
    assert unknown in cli.fails(NOT_FOUND, "withdraw", "cancel", unknown)
    # Bruno's withdrawal is, to Ana, one that does not exist.
    assert cli.fails_json(NOT_FOUND, "withdraw", "cancel", theirs)["error"] == (
        "withdrawal_not_found"
    )
    assert "withdraw cancel ID" in cli.fails(USAGE, "withdraw", "cancel")

    said = cli.ok("withdraw", "cancel", second["id"]).stdout
    assert "cancelled" in said
    assert "15.00 USD is back" in said
    listed = cli.ok_json("withdrawals")
    assert _states(listed) == [
        (second["id"], "15.00", "cancelled"),
        (first["id"], "30.00", "cancelled"),
    ]

    with _wallet_at(db_url) as wallet:
        (still,) = wallet.service.list_withdrawals(bruno_now)
    assert (still.id, still.state.value) == (theirs, "pending")
    assert balance_of(db_url, bruno) == "50.00"

    nobody = Cli(home=cli.home.parent / "nobody", db=cli.db, cwd=cli.cwd)
    assert "mwallet login" in nobody.fails(NOT_AUTHENTICATED, "withdraw", "5")


# --- admin terminals, atm load -------------------------------------------------------------------
def test_admin_terminals_add_and_list(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    ana = seed_user(db_url, name="Ana Machava")
    bruno = seed_user(db_url, name="Bruno Tembe")
    add = ("admin", "terminals", "add", "--kind")
    cli.login(ana.phone)
    denied = cli.fails_json(FORBIDDEN, *add, "atm", "--name", "Mine")
    assert denied["error"] == "permission_denied"

    atm = admin.ok_json("admin", "terminals", "add", "--kind", "atm", "--name", "ATM 1")
    assert set(atm) == {
        "terminal_id",
        "kind",
        "name",
        "client_id",
        "agent_user_id",
        "locked_until",
        "cassettes",
        "client_secret",
    }
    assert (atm["kind"], atm["name"], atm["agent_user_id"], atm["cassettes"]) == (
        "atm",
        "ATM 1",
        None,
        [],
    )
    assert atm["client_id"]
    assert len(atm["client_secret"]) >= 32
    with _wallet_at(db_url) as wallet:  # the secret gets the ATM a token with its scope
        terminal = _atm(wallet, atm["client_id"], atm["client_secret"])
    assert terminal.client
    assert terminal.role is Role.ATM
    assert "atm:withdrawals" in terminal.scopes

    said = admin.ok("admin", "terminals", "add", "--kind", "ATM", "--name", "ATM 2").stdout
    assert "ATM 2" in said
    assert "Secret (shown once" in said

    agent = admin.ok_json("admin", "terminals", "add", "--kind", "agent", "--phone", bruno.phone)
    assert agent == {
        "terminal_id": agent["terminal_id"],
        "kind": "agent",
        "name": "Bruno Tembe",
        "client_id": None,
        "agent_user_id": bruno.user_id,
        "locked_until": None,
        "cassettes": [],
    }
    cli.login(bruno.phone)
    assert cli.ok_json("whoami")["role"] == "agent"
    assert "agent already" in admin.fails(REFUSED, *add, "agent", "--phone", bruno.phone)
    assert "--phone" in admin.fails(USAGE, *add, "agent")
    assert "--name" in admin.fails(USAGE, *add, "atm")
    assert "atm or agent" in admin.fails(USAGE, *add, "bank", "--name", "Bank 1")

    listed = admin.ok_json("admin", "terminals", "list")
    assert {one["terminal_id"]: (one["kind"], one["name"]) for one in listed} == {
        atm["terminal_id"]: ("atm", "ATM 1"),
        agent["terminal_id"]: ("agent", "Bruno Tembe"),
        next(one["terminal_id"] for one in listed if one["name"] == "ATM 2"): ("atm", "ATM 2"),
    }
    assert all("client_secret" not in one for one in listed)
    assert count_rows(db_url, "terminals") == 3


def test_atm_load(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    atm_id, _, _ = _seed_atm(db_url)
    ana = seed_user(db_url)
    agent_id = _seed_agent(db_url, ana.phone)
    load = ("atm", "load", "--terminal", atm_id)

    assert admin.ok_json(*load, "50x10", "20x10") == {
        "terminal_id": atm_id,
        "cassettes": [
            {"denomination": "50.00", "notes": 10},
            {"denomination": "20.00", "notes": 10},
        ],
    }
    said = admin.ok(*load, "50x5", "20X1").stdout
    assert "Cassettes: 15 x 50.00 USD, 11 x 20.00 USD" in said

    said_for = {bad: admin.fails(USAGE, *load, bad) for bad in ("50x", "x10", "abcx10", "50.5x10")}
    assert "DENOMINATIONxCOUNT" in said_for["50x"]
    assert "'abc' is not an amount" in said_for["abcx10"]
    assert "whole number" in said_for["50.5x10"]
    assert "1 to 10,000 notes" in admin.fails(USAGE, *load, "50x0")
    unknown = "01NOSUCHTERMINAL000000000"
    missing = admin.fails_json(NOT_FOUND, "atm", "load", "--terminal", unknown, "50x1")
    assert missing["error"] == "terminal_not_found"
    assert "agent" in admin.fails(REFUSED, "atm", "load", "--terminal", agent_id, "50x1")

    listed = {one["terminal_id"]: one for one in admin.ok_json("admin", "terminals", "list")}
    assert listed[atm_id]["cassettes"] == [
        {"denomination": "50.00", "notes": 15},
        {"denomination": "20.00", "notes": 11},
    ]
    assert listed[agent_id]["cassettes"] == []
    table = admin.ok("admin", "terminals", "list").stdout
    row = next(line for line in table.splitlines() if atm_id in line)
    assert "15 x 50.00 USD, 11 x 20.00 USD" in row
    assert "ready" in row


def _lock(url: str, client_id: str, secret: str, *, minutes_ago: int) -> None:
    """Five unknown codes that long ago: the ATM was locked for 15 minutes from then."""
    with _wallet_at(url, minutes_ago=minutes_ago) as wallet:
        terminal = _atm(wallet, client_id, secret)
        for _ in range(4):
            with pytest.raises(UnknownWithdrawalCode):
                wallet.service.redeem_withdrawal(terminal, code="0000000000", pin="4826")
        with pytest.raises(TerminalLocked):
            wallet.service.redeem_withdrawal(terminal, code="0000000000", pin="4826")


def test_terminals_list_shows_a_lock_until_it_lapses(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    locked_id, locked_client, locked_secret = _seed_atm(db_url)
    lapsed_id, lapsed_client, lapsed_secret = _seed_atm(db_url)
    _lock(db_url, locked_client, locked_secret, minutes_ago=5)
    _lock(db_url, lapsed_client, lapsed_secret, minutes_ago=20)
    with _wallet_at(db_url) as wallet:
        # One still refuses; the other counts an unknown code again instead of refusing.
        with pytest.raises(TerminalLocked):
            wallet.service.redeem_withdrawal(
                _atm(wallet, locked_client, locked_secret), code="0000000000", pin="4826"
            )
        with pytest.raises(UnknownWithdrawalCode):
            wallet.service.redeem_withdrawal(
                _atm(wallet, lapsed_client, lapsed_secret), code="0000000000", pin="4826"
            )

    listed = {one["terminal_id"]: one for one in admin.ok_json("admin", "terminals", "list")}
    until = listed[locked_id]["locked_until"]
    assert until is not None
    assert timedelta(minutes=5) < _utc(until) - datetime.now(UTC) <= timedelta(minutes=10)
    assert listed[lapsed_id]["locked_until"] is None
    table = admin.ok("admin", "terminals", "list").stdout
    rows = {
        terminal_id: next(line for line in table.splitlines() if terminal_id in line)
        for terminal_id in (locked_id, lapsed_id)
    }
    assert f"locked until {until}" in rows[locked_id]
    assert "locked" not in rows[lapsed_id]
    assert "ready" in rows[lapsed_id]


# --- agent cash-in -------------------------------------------------------------------------------
def test_agent_cash_in(cli: Cli, db_url: str) -> None:
    bruno = seed_user(db_url, name="Bruno Tembe", funds="100")
    carla = seed_user(db_url, name="Carla Nhantumbo")
    ana = seed_user(db_url, funds="10")
    _seed_agent(db_url, bruno.phone)

    cli.login(bruno.phone)
    done = cli.ok_json("agent", "cash-in", "25", "--phone", carla.phone)
    assert (done["from"], done["to"], done["amount"], done["currency"], done["note"]) == (
        bruno.phone,
        carla.phone,
        "25.00",
        "USD",
        "cash in",
    )
    assert done["idempotency_key"]
    said = cli.ok("agent", "cash-in", "5", "--phone", carla.phone).stdout
    assert "Cash in" in said
    assert "5.00 USD" in said
    assert carla.phone in said
    poor = cli.fails_json(REFUSED, "agent", "cash-in", "70.01", "--phone", carla.phone)
    assert poor["error"] == "insufficient_funds"

    cli.login(ana.phone)
    denied = cli.fails_json(FORBIDDEN, "agent", "cash-in", "5", "--phone", carla.phone)
    assert denied["error"] == "permission_denied"

    assert balance_of(db_url, carla) == "30.00"
    assert balance_of(db_url, bruno) == "70.00"
    assert balance_of(db_url, ana) == "10.00"


# --- admin withdrawals expire --------------------------------------------------------------------
def _request_long_ago(url: str, phone: str, amounts: list[str]) -> list[str]:
    """Withdrawals requested 31 minutes ago: past their 30 minutes now."""
    with _wallet_at(url, minutes_ago=31) as wallet:
        service = wallet.service
        principal = service.login(phone=phone, password=PASSWORD).principal
        return [
            service.request_withdrawal(
                principal,
                amount=service.parse_money(amount),
                channel=Channel.ATM,
                pin=None,
                idempotency_key=f"old-{uuid.uuid4().hex}",
            ).withdrawal.id
            for amount in amounts
        ]


def _stored(url: str, withdrawal_ids: list[str], user_id: str) -> tuple[list[str], int]:
    """The withdrawals' states and the wallet's available minor units as the database holds
    them, read without the service (whose reads would expire what is due on the way)."""
    with open_wallet(url) as wallet, wallet.engine.connect() as conn:
        states = [
            str(
                conn.execute(
                    text("SELECT state FROM withdrawals WHERE id = :id"), {"id": one}
                ).scalar_one()
            )
            for one in withdrawal_ids
        ]
        available = conn.execute(
            text("SELECT balance FROM accounts WHERE code = :code"), {"code": f"wallet:{user_id}"}
        ).scalar_one()
        return states, int(available)


def test_admin_withdrawals_expire(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, funds="100")
    bruno = seed_user(db_url, funds="100")
    cancelled_late, old_ana = _request_long_ago(db_url, ana.phone, ["10", "20"])
    (old_bruno,) = _request_long_ago(db_url, bruno.phone, ["30"])
    assert _stored(db_url, [old_bruno], bruno.user_id) == (["pending"], 7000)
    cli.login(ana.phone)

    # Cancelling one past its time finds it expired: its money is back either way.
    assert cli.ok_json("withdraw", "cancel", cancelled_late)["state"] == "expired"

    admin = cli.as_admin()
    assert admin.ok_json("admin", "withdrawals", "expire") == {"expired": 2}
    assert _stored(db_url, [cancelled_late, old_ana], ana.user_id) == (["expired"] * 2, 10000)
    assert _stored(db_url, [old_bruno], bruno.user_id) == (["expired"], 10000)

    # One more past its time: listing them expires it on the way, so none is left for the admin.
    fresh = cli.ok_json("withdraw", "5")
    (listed_late,) = _request_long_ago(db_url, ana.phone, ["40"])
    listed = cli.ok_json("withdrawals")
    assert {one["id"]: one["state"] for one in listed} == {
        fresh["id"]: "pending",
        cancelled_late: "expired",
        old_ana: "expired",
        listed_late: "expired",
    }
    assert "0 withdrawal(s) expired" in admin.ok("admin", "withdrawals", "expire").stdout
    balance = cli.ok_json("balance")
    assert (balance["balance"], balance["available"]) == ("100.00", "95.00")


# --- end to end ----------------------------------------------------------------------------------
def test_withdraw_by_cli_and_take_the_cash_at_an_atm_loaded_by_cli(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    ana = seed_user(db_url, name="Ana Machava", funds="100")
    atm = admin.ok_json("admin", "terminals", "add", "--kind", "atm", "--name", "ATM Baixa")
    atm_id = atm["terminal_id"]
    admin.ok_json("atm", "load", "--terminal", atm_id, "50x10", "20x10")
    cli.login(ana.phone)

    shown = cli.ok("withdraw", "60").stdout
    found = SHOWN.search(shown)
    assert found is not None, shown
    code, pin, _, withdrawal_id = found.groups()
    by_qr = cli.ok_json("withdraw", "20")

    with _wallet_at(db_url) as wallet:
        service = wallet.service
        terminal = _atm(wallet, atm["client_id"], atm["client_secret"])
        paid = service.redeem_withdrawal(terminal, code=code, pin=pin)  # as typed, with spaces
        assert (paid.withdrawal.id, paid.customer_name) == (withdrawal_id, "Ana M.")
        assert paid.notes == {2000: 3}  # 60 is three 20s: no 50 fits
        done = service.complete_withdrawal(terminal, withdrawal_id=withdrawal_id)
        assert done.state.value == "completed"
        # The second by its QR code; the ATM jams, so the money goes back.
        scanned = service.redeem_withdrawal(
            terminal, qr_payload=by_qr["qr_payload"], pin=by_qr["pin"]
        )
        assert scanned.notes == {2000: 1}
        service.reverse_withdrawal(terminal, withdrawal_id=by_qr["id"])

    listed = cli.ok_json("withdrawals")
    assert [(one["id"], one["state"], one["terminal_id"]) for one in listed] == [
        (by_qr["id"], "reversed", atm_id),
        (withdrawal_id, "completed", atm_id),
    ]
    balance = cli.ok_json("balance")
    assert (balance["balance"], balance["available"]) == ("40.00", "40.00")
    paid_out = cli.fails_json(REFUSED, "withdraw", "cancel", withdrawal_id)
    assert paid_out["error"] == "withdrawal_not_pending"
    assert "completed" in paid_out["message"]

    # Three 20s left the cassettes: three more fill them up again.
    refilled = admin.ok_json("atm", "load", "--terminal", atm_id, "20x3")
    assert refilled["cassettes"] == [
        {"denomination": "50.00", "notes": 10},
        {"denomination": "20.00", "notes": 10},
    ]
    assert "The ledger is sound" in admin.ok("admin", "ledger", "verify").stdout


# --- mwallet terminal: what it checks before the app opens (the app itself: tests/tui) --------
def test_terminal_opens_only_for_a_terminal_that_proves_it_is_one(cli: Cli, db_url: str) -> None:
    atm_id, client_id, _ = _seed_atm(db_url)
    assert "no terminal 'NOPE'" in cli.fails(NOT_FOUND, "terminal", "--id", "NOPE")
    assert "MWALLET_TERMINAL_SECRET" in cli.fails(USAGE, "terminal", "--id", atm_id)
    wrong = cli.fails(
        NOT_AUTHENTICATED, "terminal", "--id", atm_id, "--client-secret-stdin", stdin="wrong\n"
    )
    assert "client" in wrong
    assert "not both" in cli.fails(USAGE, "terminal", "--id", atm_id, "--client-id", client_id)

    # An agent's counter opens for that agent, logged in, and for nobody else.
    ana = seed_user(db_url, name="Ana Agente")
    counter = _seed_agent(db_url, ana.phone)
    assert "mwallet login" in cli.fails(NOT_AUTHENTICATED, "terminal", "--id", counter)
    bruno = seed_user(db_url, name="Bruno Tembe")
    cli.login(bruno.phone)
    assert "a customer may not run a terminal" in cli.fails(FORBIDDEN, "terminal", "--id", counter)
    assert "a customer may not run a terminal" in cli.fails(FORBIDDEN, "terminal")
    carla = seed_user(db_url, name="Carla Agente")
    _seed_agent(db_url, carla.phone)
    cli.login(carla.phone)
    said = cli.fails(FORBIDDEN, "terminal", "--id", counter)
    assert f"you are not terminal {counter}" in said


# --- admin limits withdrawals: bounds and code lifetime (fees: tariffs, tests/cli/test_tariffs.py)
POLICY_DEFAULTS = {
    "currency": "USD",
    "min": "1.00",
    "max": "1000.00",
    "expiry_minutes": 30,
}
LIMITS = ("admin", "limits", "withdrawals")
POLICY_TEXT_FEES = (
    "Fees: mwallet admin tariffs; daily and monthly limits: mwallet admin limits list"
)


# How a refused --expiry may be worded: by the policy's check, or by the option's own range.
EXPIRY_RANGE = ("between 1 minute and 24 hours", "1<=x<=1440")


def _policy_rows(url: str) -> list[dict[str, Any]]:
    """The details of the `limits.withdrawals_set` audit rows, newest first."""
    with open_wallet(url) as wallet:
        return [
            one.details
            for one in wallet.service.audit_log(actor=OPERATOR, limit=1000)
            if one.action == "limits.withdrawals_set"
        ]


def test_admin_limits_withdrawals_shows_the_defaults(cli: Cli, db_url: str) -> None:
    admin = cli.as_admin()
    assert admin.ok_json(*LIMITS) == POLICY_DEFAULTS
    assert admin.ok(*LIMITS).stdout.splitlines() == [
        "Withdrawals: 1.00 to 1000.00 USD each",
        "Codes are valid 30 minutes",
        POLICY_TEXT_FEES,
    ]
    # Anyone logged in may read what they would be charged.
    cli.login(seed_user(db_url).phone)
    assert cli.ok_json(*LIMITS) == POLICY_DEFAULTS
    assert _policy_rows(db_url) == []


def test_admin_limits_withdrawals_sets_what_is_given_and_keeps_the_rest(
    cli: Cli, db_url: str
) -> None:
    admin = cli.as_admin()
    changed = admin.ok_json(*LIMITS, "--expiry", "45")
    assert changed == {**POLICY_DEFAULTS, "expiry_minutes": 45}
    changed = admin.ok_json(*LIMITS, "--max", "500")
    assert changed == {**POLICY_DEFAULTS, "expiry_minutes": 45, "max": "500.00"}
    said = admin.ok(*LIMITS, "--min", "2").stdout.splitlines()
    assert said == [
        "Withdrawals: 2.00 to 500.00 USD each",
        "Codes are valid 45 minutes",
        POLICY_TEXT_FEES,
    ]
    now = {**changed, "min": "2.00"}
    assert admin.ok_json(*LIMITS) == now
    rows = _policy_rows(db_url)
    assert len(rows) == 3
    assert rows[0] == {"min": 200, "max": 50_000, "lifetime_s": 45 * 60}

    # A customer may not change it.
    ana = seed_user(db_url, name="Ana Machava", funds="200")
    cli.login(ana.phone)
    cli.fails(FORBIDDEN, *LIMITS, "--expiry", "10")
    assert cli.fails_json(FORBIDDEN, *LIMITS, "--min", "1")["error"] == "permission_denied"
    assert admin.ok_json(*LIMITS) == now
    assert len(_policy_rows(db_url)) == 3

    # The bounds and lifetime set here are what the next withdrawal gets.
    assert "between 2.00 USD and 500.00 USD" in cli.fails(USAGE, "withdraw", "500.01")
    issued = cli.ok_json("withdraw", "60")
    assert (issued["amount"], issued["fee"]) == ("60.00", "0.00")
    expires = _utc(issued["expires_at"]) - _utc(issued["created_at"])
    assert expires == timedelta(minutes=45)
    balance = cli.ok_json("balance")
    assert (balance["balance"], balance["available"]) == ("200.00", "140.00")


def test_admin_limits_withdrawals_refuses_bad_values_and_changes_nothing(
    cli: Cli, db_url: str
) -> None:
    admin = cli.as_admin()
    cases: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
        (("--min", "0"), ("greater than zero",)),
        (("--min", "1000.01"), ("at most the maximum",)),
        (("--max", "abc"), ("'abc' is not an amount",)),
        (("--expiry", "0"), EXPIRY_RANGE),
        (("--expiry", "1441"), EXPIRY_RANGE),
        # The fee and daily options went to `admin tariffs set` and `admin limits set`.
        (("--fee-atm", "1"), ("No such option: --fee-atm",)),
        (("--fee-agent", "1"), ("No such option: --fee-agent",)),
        (("--daily", "800"), ("No such option: --daily",)),
        # Valid parts are not stored when another part is refused.
        (("--max", "500", "--min", "600"), ("at most the maximum",)),
        (("--max", "500", "--expiry", "0"), EXPIRY_RANGE),
    ]
    for args, wanted in cases:
        line = admin.fails(USAGE, *LIMITS, *args)
        assert any(one in line for one in wanted), (args, line)
    refused = admin.fails_json(USAGE, *LIMITS, "--min", "1000.01")
    assert refused["error"] == "invalid_input"
    assert admin.ok_json(*LIMITS) == POLICY_DEFAULTS
    assert _policy_rows(db_url) == []
    assert admin.ok_json("admin", "tariffs") == {
        movement: None
        for movement in (
            "transfer",
            "withdrawal-atm",
            "withdrawal-agent",
            "bill",
            "airtime",
            "topup",
        )
    }


def test_admin_limits_withdrawals_refuses_an_absurd_expiry_as_bad_input(cli: Cli) -> None:
    admin = cli.as_admin()
    admin.fails(USAGE, *LIMITS, "--expiry", "99999999999999")
    assert admin.ok_json(*LIMITS) == POLICY_DEFAULTS


def test_withdrawal_fees_through_the_cli(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="200")
    cli.as_admin().ok("admin", "tariffs", "set", "withdrawal-atm", "--flat", "1.50")
    cli.login(ana.phone)
    assert cli.ok_json("fees")["withdrawal-atm"]["text"] == "1.50"

    issued = cli.ok_json("withdraw", "60")
    assert (issued["amount"], issued["fee"], issued["state"]) == ("60.00", "1.50", "pending")
    balance = cli.ok_json("balance")
    assert (balance["balance"], balance["available"]) == ("200.00", "138.50")  # 200 - 61.50

    # Without a terminal to ask on, a withdrawal with a fee needs --yes; without a fee it does not.
    line = cli.fails(USAGE, "withdraw", "10")
    assert "fee 1.50 USD, total 11.50 USD: confirm with --yes" in line, line
    assert count_rows(db_url, "withdrawals") == 1
    said = cli.ok("withdraw", "10", "--yes").stdout
    assert "take 10.00 USD in cash at an ATM (fee 1.50 USD, held with it)." in said
    no_fee = cli.ok("withdraw", "5", "--at", "agent").stdout
    assert "take 5.00 USD in cash at an agent." in no_fee
    assert "fee" not in no_fee.lower()
    balance = cli.ok_json("balance")
    assert (balance["balance"], balance["available"]) == ("200.00", "122.00")  # - 11.50 - 5

    listed = cli.ok_json("withdrawals")
    assert [(one["amount"], one["fee"], one["channel"]) for one in listed] == [
        ("5.00", "0.00", "agent"),
        ("10.00", "1.50", "atm"),
        ("60.00", "1.50", "atm"),
    ]
    table = cli.ok("withdrawals").stdout
    assert "Fee" in table
    assert "1.50 USD" in table
    cancelled = cli.ok_json("withdraw", "cancel", issued["id"])
    assert (cancelled["state"], cancelled["fee"]) == ("cancelled", "1.50")
    balance = cli.ok_json("balance")
    assert (balance["balance"], balance["available"]) == ("200.00", "183.50")  # 61.50 back
