"""A terminal's day, its leftover withdrawals and an empty ATM, through the services, on SQLite and
PostgreSQL.

- `terminal_day`: an ATM's cassettes and cash, an agent's float, what each paid out, reversed and
  took in since midnight UTC, figures worked out by hand; who may read whose day.
- `reverse_leftover_withdrawals`: a terminal starting again gives back the money of withdrawals it
  authorized and never paid out — only its own, only those authorized, once — also when it races
  with a `complete` of the same withdrawal.
- `OutOfCash`: an ATM whose cassettes are empty (never loaded, or emptied by withdrawals) refuses
  before authorizing anything.

After every test the ledger verifies, the holds account holds exactly the money of the
withdrawals still pending or authorized, and each ATM's cash account exactly what it paid out.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import text

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.db import ledger_repository
from mwallet.core.domain.clients import ClientKind
from mwallet.core.domain.ledger import AccountStatus
from mwallet.core.domain.roles import Role
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Channel, Withdrawal, WithdrawalState
from mwallet.core.errors import (
    CannotDispense,
    ConcurrencyConflict,
    DatabaseBusy,
    InsufficientFunds,
    OutOfCash,
    PermissionDenied,
    TerminalNotFound,
    WalletClosed,
    WalletError,
    WalletFrozen,
    WalletNotEmpty,
    WithdrawalNotPending,
)
from mwallet.core.services.terminals import TerminalDay
from mwallet.core.services.wallet_service import WalletService
from mwallet.core.services.withdrawals import IssuedWithdrawal
from tests.integration.cash_books import check_cash_books
from tests.integration.withdrawal_support import (
    NOTES,
    PIN,
    Station,
    cash_of,
    customer,
    fund,
    key,
    new_agent,
    new_atm,
    redeem,
    usd,
    withdraw,
)
from tests.support import OPERATOR, PASSWORD, START, make_admin, open_wallet, register

MIDNIGHT = START.replace(hour=0, minute=0, second=0, microsecond=0)
NEXT_MIDNIGHT = MIDNIGHT + timedelta(days=1)
WAIT = 60.0  # seconds: an upper bound for a thread, never a pause
AuditRow = tuple[str | None, str | None, dict[str, object]]  # (actor, subject, details)


# --- helpers ------------------------------------------------------------------------------------
def paid(
    service: WalletService, station: Station, person: Principal, amount: str, channel: Channel
) -> Withdrawal:
    """A withdrawal requested, redeemed and completed at `station`."""
    issued = withdraw(service, person, amount, channel=channel)
    redeem(service, station, issued)
    return service.complete_withdrawal(station.principal, withdrawal_id=issued.withdrawal.id)


def reversed_at(
    service: WalletService, station: Station, person: Principal, amount: str, channel: Channel
) -> Withdrawal:
    """A withdrawal requested, redeemed and reversed at `station`."""
    issued = withdraw(service, person, amount, channel=channel)
    redeem(service, station, issued)
    return service.reverse_withdrawal(station.principal, withdrawal_id=issued.withdrawal.id)


def authorized(
    service: WalletService, station: Station, person: Principal, amount: str, channel: Channel
) -> IssuedWithdrawal:
    """A withdrawal redeemed at `station` and left there, authorized (the terminal stopped)."""
    issued = withdraw(service, person, amount, channel=channel)
    redeem(service, station, issued)
    return issued


def cash_in(service: WalletService, agent: Station, to: Principal, amount: str) -> None:
    service.cash_in(
        agent.principal, to_phone=to.phone, amount=usd(service, amount), idempotency_key=key()
    )


def figures(day: TerminalDay) -> dict[str, object]:
    """A day's figures, as strings and counts, to compare with hand-worked ones."""
    return {
        "cassettes": day.cassettes,
        "cash": day.cash.to_decimal_string(),
        "paid_out": day.paid_out.to_decimal_string(),
        "paid_out_count": day.paid_out_count,
        "reversed_count": day.reversed_count,
        "cash_in": day.cash_in.to_decimal_string(),
        "cash_in_count": day.cash_in_count,
    }


def quiet_day(cassettes: dict[int, int], cash: str) -> dict[str, object]:
    return {
        "cassettes": cassettes, "cash": cash, "paid_out": "0.00", "paid_out_count": 0,
        "reversed_count": 0, "cash_in": "0.00", "cash_in_count": 0,
    }  # fmt: skip


def balances(service: WalletService, person: Principal) -> tuple[str, str]:
    """(balance, available): the balance counts money held for withdrawals, available does not."""
    shown = service.balance(person)
    return shown.balance.to_decimal_string(), shown.available.to_decimal_string()


def state_of(wallet: Wallet, withdrawal_id: str) -> WithdrawalState:
    with wallet.engine.connect() as conn:
        found = conn.execute(
            text("SELECT state FROM withdrawals WHERE id = :id"), {"id": withdrawal_id}
        ).scalar_one()
    return WithdrawalState(found)


def terminal_of(wallet: Wallet, withdrawal_id: str) -> str | None:
    with wallet.engine.connect() as conn:
        found = conn.execute(
            text("SELECT terminal_id FROM withdrawals WHERE id = :id"), {"id": withdrawal_id}
        ).scalar_one()
    return None if found is None else str(found)


def audit_rows(
    service: WalletService, action: str
) -> list[tuple[str | None, str | None, dict[str, object]]]:
    """(actor, subject, details) of each audit record of one action, oldest first."""
    return [
        (record.actor, record.subject, record.details)
        for record in reversed(service.audit_log(actor=OPERATOR, limit=1000))
        if record.action == action
    ]


@pytest.fixture(autouse=True)
def books_stay_sound(wallet: Wallet) -> Iterator[None]:
    yield
    check_cash_books(wallet)


@pytest.fixture
def admin(wallet: Wallet) -> Principal:
    return make_admin(wallet.service)


# --- an ATM's day ---------------------------------------------------------------------------------
def test_an_atms_day_shows_its_cassettes_cash_and_what_it_paid_out(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    day = service.terminal_day(atm.principal)
    assert day.terminal.id == atm.id
    assert day.terminal.kind is Channel.ATM
    assert day.since == MIDNIGHT
    # 10 x 50 + 10 x 20 = 700.00 in the cassettes, nothing done yet.
    assert figures(day) == quiet_day(NOTES, "700.00")

    ana, bruno = customer(service, "500"), customer(service, "500")
    paid(service, atm, ana, "60", Channel.ATM)  # 3 x 20
    paid(service, atm, bruno, "110", Channel.ATM)  # 1 x 50 + 3 x 20
    reversed_at(service, atm, ana, "50", Channel.ATM)  # planned 1 x 50, nothing taken
    authorized(service, atm, bruno, "20", Channel.ATM)  # authorized, not paid out: not counted
    withdraw(service, ana, "40")  # pending: not this ATM's at all

    day = service.terminal_day(atm.principal)
    # Cassettes: 50s 10 - 1 = 9, 20s 10 - 3 - 3 = 4; cash 9 x 50 + 4 x 20 = 530.00.
    assert figures(day) == {
        "cassettes": {5000: 9, 2000: 4}, "cash": "530.00", "paid_out": "170.00",
        "paid_out_count": 2, "reversed_count": 1, "cash_in": "0.00", "cash_in_count": 0,
    }  # fmt: skip
    assert cash_of(wallet, atm) == 17000  # the ledger agrees on what went out
    assert day.cash.currency == day.paid_out.currency == day.cash_in.currency == "USD"


def test_loading_notes_shows_in_the_day_at_once(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin, notes={})
    assert figures(service.terminal_day(atm.principal)) == quiet_day({}, "0.00")
    service.load_cassettes(actor=admin, terminal_id=atm.id, notes={10000: 2, 2000: 5})
    assert figures(service.terminal_day(atm.principal)) == quiet_day({10000: 2, 2000: 5}, "300.00")


# --- an agent's day -------------------------------------------------------------------------------
def test_an_agents_day_shows_the_float_what_was_paid_out_and_taken_in(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    agent = new_agent(service, admin, float_="300")
    day = service.terminal_day(agent.principal)
    assert (day.terminal.id, day.terminal.kind, day.since) == (agent.id, Channel.AGENT, MIDNIGHT)
    assert figures(day) == quiet_day({}, "300.00")

    ana, bruno, dora = customer(service, "500"), customer(service, "500"), register(service)
    paid(service, agent, ana, "75.50", Channel.AGENT)  # float 300 + 75.50 = 375.50
    paid(service, agent, bruno, "100", Channel.AGENT)  # 475.50
    cash_in(service, agent, dora, "120")  # 355.50
    cash_in(service, agent, ana, "30.25")  # 325.25
    reversed_at(service, agent, bruno, "40", Channel.AGENT)  # the float does not move
    authorized(service, agent, ana, "10", Channel.AGENT)  # not paid out yet: not counted

    day = service.terminal_day(agent.principal)
    assert figures(day) == {
        "cassettes": {}, "cash": "325.25", "paid_out": "175.50", "paid_out_count": 2,
        "reversed_count": 1, "cash_in": "150.25", "cash_in_count": 2,
    }  # fmt: skip
    # The float is the agent's wallet; the cash drawer moved by cash_in - paid_out = -25.25.
    assert balances(service, agent.principal) == ("325.25", "325.25")
    assert balances(service, dora) == ("120.00", "120.00")


def test_a_refused_cash_in_and_a_replayed_one_count_once(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    agent = new_agent(service, admin, float_="100")
    dora = register(service)
    same = key()
    for _ in range(2):
        service.cash_in(
            agent.principal, to_phone=dora.phone, amount=usd(service, "40"), idempotency_key=same
        )
    with pytest.raises(InsufficientFunds):  # more than the float: refused, nothing posted
        cash_in(service, agent, dora, "60.01")
    day = service.terminal_day(agent.principal)
    assert (day.cash_in.to_decimal_string(), day.cash_in_count) == ("40.00", 1)
    assert day.cash.to_decimal_string() == "60.00"


def test_an_agents_own_spending_is_not_cash_in(wallet: Wallet, admin: Principal) -> None:
    """Only cash-in entries count: an agent's own transfers and top-ups change the float only."""
    service = wallet.service
    agent = new_agent(service, admin, float_="100")
    friend = register(service)
    service.transfer(
        agent.principal, to_phone=friend.phone, amount=usd(service, "15"), note=None,
        idempotency_key=key(),
    )  # fmt: skip
    fund(service, agent.principal, "5")
    assert figures(service.terminal_day(agent.principal)) == quiet_day({}, "90.00")


def test_a_cash_in_an_agent_receives_is_not_one_they_took(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    first = new_agent(service, admin, float_="100", name="Agent One")
    second = new_agent(service, admin, float_="100", name="Agent Two")
    service.cash_in(
        first.principal, to_phone=second.principal.phone, amount=usd(service, "30"),
        idempotency_key=key(),
    )  # fmt: skip
    assert figures(service.terminal_day(first.principal))["cash_in"] == "30.00"
    day = service.terminal_day(second.principal)
    assert day.cash.to_decimal_string() == "130.00"
    # The second agent took no cash in today (today: cash_in -30.00, cash_in_count 1).
    assert (day.cash_in.to_decimal_string(), day.cash_in_count) == ("0.00", 0)


# --- only today, only this terminal ---------------------------------------------------------------
def test_only_what_happened_since_midnight_utc_counts(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    agent = new_agent(service, admin, float_="200")
    ana, dora = customer(service, "1000"), register(service)
    paid(service, atm, ana, "60", Channel.ATM)
    reversed_at(service, atm, ana, "20", Channel.ATM)
    paid(service, agent, ana, "25", Channel.AGENT)
    reversed_at(service, agent, ana, "5", Channel.AGENT)
    cash_in(service, agent, dora, "50")

    # The last microsecond of the day still counts all of it.
    clock.advance(NEXT_MIDNIGHT - timedelta(microseconds=1) - START)
    atm_day, agent_day = service.terminal_day(atm.principal), service.terminal_day(agent.principal)
    assert atm_day.since == agent_day.since == MIDNIGHT
    assert (atm_day.paid_out_count, atm_day.reversed_count) == (1, 1)
    assert (agent_day.paid_out_count, agent_day.reversed_count, agent_day.cash_in_count) == (
        1,
        1,
        1,
    )

    # A withdrawal authorized before midnight and paid out after it belongs to the new day.
    clock.advance(-timedelta(minutes=10))
    late = authorized(service, atm, ana, "40", Channel.ATM)
    clock.advance(timedelta(minutes=10, microseconds=1))  # midnight exactly
    service.complete_withdrawal(atm.principal, withdrawal_id=late.withdrawal.id)

    atm_day = service.terminal_day(atm.principal)
    assert atm_day.since == NEXT_MIDNIGHT
    # Yesterday's figures are gone; the cassettes and the float are what they are.
    # Cassettes: 20s 10 - 3 - 2 = 5, 50s 10; cash 500 + 100 = 600.00.
    assert figures(atm_day) == {
        "cassettes": {5000: 10, 2000: 5}, "cash": "600.00", "paid_out": "40.00",
        "paid_out_count": 1, "reversed_count": 0, "cash_in": "0.00", "cash_in_count": 0,
    }  # fmt: skip
    # The float: 200 + 25 - 50 = 175.00.
    assert figures(service.terminal_day(agent.principal)) == quiet_day({}, "175.00")

    clock.advance(timedelta(hours=8))
    paid(service, agent, ana, "12.34", Channel.AGENT)
    cash_in(service, agent, dora, "7")
    assert figures(service.terminal_day(agent.principal)) == {
        "cassettes": {}, "cash": "180.34", "paid_out": "12.34", "paid_out_count": 1,
        "reversed_count": 0, "cash_in": "7.00", "cash_in_count": 1,
    }  # fmt: skip


def test_another_terminals_work_does_not_count(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    mine, theirs = new_atm(service, admin, name="ATM 1"), new_atm(service, admin, name="ATM 2")
    agent, other_agent = (
        new_agent(service, admin, float_="100", name="Agent One"),
        new_agent(service, admin, float_="100", name="Agent Two"),
    )
    ana, dora = customer(service, "1000"), register(service)
    paid(service, theirs, ana, "60", Channel.ATM)
    reversed_at(service, theirs, ana, "20", Channel.ATM)
    paid(service, other_agent, ana, "30", Channel.AGENT)
    reversed_at(service, other_agent, ana, "10", Channel.AGENT)
    cash_in(service, other_agent, dora, "25")

    assert figures(service.terminal_day(mine.principal)) == quiet_day(NOTES, "700.00")
    assert figures(service.terminal_day(agent.principal)) == quiet_day({}, "100.00")
    assert figures(service.terminal_day(theirs.principal)) == {
        "cassettes": {5000: 10, 2000: 7}, "cash": "640.00", "paid_out": "60.00",
        "paid_out_count": 1, "reversed_count": 1, "cash_in": "0.00", "cash_in_count": 0,
    }  # fmt: skip
    assert figures(service.terminal_day(other_agent.principal)) == {
        "cassettes": {}, "cash": "105.00", "paid_out": "30.00", "paid_out_count": 1,
        "reversed_count": 1, "cash_in": "25.00", "cash_in_count": 1,
    }  # fmt: skip


# --- who may read whose day -----------------------------------------------------------------------
def test_an_admin_reads_any_terminals_day_by_id(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    agent = new_agent(service, admin, float_="80")
    ana, dora = customer(service, "500"), register(service)
    paid(service, atm, ana, "60", Channel.ATM)
    paid(service, agent, ana, "20", Channel.AGENT)
    cash_in(service, agent, dora, "10")
    for station in (atm, agent):
        seen = service.terminal_day(admin, terminal_id=station.id)
        own = service.terminal_day(station.principal)
        assert seen.terminal.id == station.id
        assert figures(seen) == figures(own)
    assert figures(service.terminal_day(admin, terminal_id=agent.id))["cash"] == "90.00"


def test_nobody_else_reads_a_terminals_day(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm, other_atm = new_atm(service, admin), new_atm(service, admin, name="ATM 2")
    agent = new_agent(service, admin)
    ana = customer(service, "500")
    auditor = register(service)
    service.set_role(actor=admin, phone=auditor.phone, role=Role.AUDITOR)
    auditor = service.login(phone=auditor.phone, password=PASSWORD).principal

    refused: list[Callable[[], object]] = [
        # A customer has no terminal, and may not read one by id.
        lambda: service.terminal_day(ana),
        lambda: service.terminal_day(ana, terminal_id=atm.id),
        lambda: service.terminal_day(ana, terminal_id="no-such-terminal"),  # no hint it's unknown
        # An ATM's client token reads its own day, not another terminal's (nor its own by id).
        lambda: service.terminal_day(atm.principal, terminal_id=other_atm.id),
        lambda: service.terminal_day(atm.principal, terminal_id=agent.id),
        lambda: service.terminal_day(atm.principal, terminal_id=atm.id),
        # An agent neither.
        lambda: service.terminal_day(agent.principal, terminal_id=atm.id),
        # An admin or an auditor is no terminal; an auditor does not manage terminals.
        lambda: service.terminal_day(admin),
        lambda: service.terminal_day(auditor, terminal_id=atm.id),
    ]
    for attempt in refused:
        with pytest.raises(PermissionDenied):
            attempt()
    denied = audit_rows(service, "permission.denied")
    assert len(denied) == len(refused)

    with pytest.raises(TerminalNotFound):
        service.terminal_day(admin, terminal_id="01NOSUCHTERMINAL0000000000")
    assert service.terminal_day(atm.principal).terminal.id == atm.id


def test_a_token_that_is_no_registered_terminal_has_no_day(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    loose = service.add_client(actor=admin, kind=ClientKind.ATM, name="Not a terminal")
    token = service.client_token(client_id=loose.client.id, client_secret=loose.secret)
    stray = service.authenticate(access_token=token.access_token)
    with pytest.raises(PermissionDenied, match="not a registered terminal"):
        service.terminal_day(stray)
    # The agent role alone, without a terminal an admin registered, is not enough either.
    plain = register(service)
    service.set_role(actor=admin, phone=plain.phone, role=Role.AGENT)
    unregistered = service.login(phone=plain.phone, password=PASSWORD).principal
    with pytest.raises(PermissionDenied, match="not a registered terminal"):
        service.terminal_day(unregistered)
    with pytest.raises(PermissionDenied, match="not a registered terminal"):
        service.reverse_leftover_withdrawals(unregistered)


# --- leftovers: withdrawals a stopped terminal authorized and never paid out ----------------------
def test_a_terminal_starting_again_reverses_only_its_own_authorized_withdrawals(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    atm, other_atm = new_atm(service, admin), new_atm(service, admin, name="ATM 2")
    agent = new_agent(service, admin, float_="50")
    ana, bruno = customer(service, "500"), customer(service, "500")

    done = paid(service, atm, ana, "20", Channel.ATM)
    first = authorized(service, atm, ana, "60", Channel.ATM)
    clock.advance(timedelta(seconds=1))
    second = authorized(service, atm, bruno, "110", Channel.ATM)
    pending = withdraw(service, ana, "40")  # redeemable here, but never authorized
    elsewhere = authorized(service, other_atm, bruno, "70", Channel.ATM)
    at_agent = authorized(service, agent, ana, "30", Channel.AGENT)
    assert balances(service, ana) == ("480.00", "350.00")  # 60 + 40 + 30 held
    assert balances(service, bruno) == ("500.00", "320.00")  # 110 + 70 held

    clock.advance(timedelta(minutes=5))
    back = service.reverse_leftover_withdrawals(atm.principal)
    assert [one.id for one in back] == [first.withdrawal.id, second.withdrawal.id]
    assert all(one.state is WithdrawalState.REVERSED for one in back)
    assert all(one.terminal_id == atm.id for one in back)
    assert all(one.updated_at == clock.now() for one in back)
    assert state_of(wallet, first.withdrawal.id) is WithdrawalState.REVERSED
    assert state_of(wallet, second.withdrawal.id) is WithdrawalState.REVERSED
    assert state_of(wallet, done.id) is WithdrawalState.COMPLETED
    assert state_of(wallet, pending.withdrawal.id) is WithdrawalState.PENDING
    assert terminal_of(wallet, pending.withdrawal.id) is None
    assert state_of(wallet, elsewhere.withdrawal.id) is WithdrawalState.AUTHORIZED
    assert state_of(wallet, at_agent.withdrawal.id) is WithdrawalState.AUTHORIZED
    # The money is available again; nothing left the cassettes.
    assert balances(service, ana) == ("480.00", "410.00")
    assert balances(service, bruno) == ("500.00", "430.00")
    assert cash_of(wallet, atm) == 2000
    assert service.terminal_day(atm.principal).cassettes == {5000: 10, 2000: 9}
    assert service.verify_ledger(actor=OPERATOR).ok

    rows = audit_rows(service, "withdrawal.reversed")
    assert rows == [
        (atm.principal.user_id, first.withdrawal.id, {"left_over": True}),
        (atm.principal.user_id, second.withdrawal.id, {"left_over": True}),
    ]
    day = service.terminal_day(atm.principal)
    assert (day.paid_out_count, day.reversed_count) == (1, 2)

    # Once only: a second start finds nothing, moves nothing, records nothing.
    assert service.reverse_leftover_withdrawals(atm.principal) == []
    assert balances(service, ana) == ("480.00", "410.00")
    assert len(audit_rows(service, "withdrawal.reversed")) == 2
    with pytest.raises(WithdrawalNotPending):
        service.complete_withdrawal(atm.principal, withdrawal_id=first.withdrawal.id)

    # Each of the other terminals gives back its own.
    assert [one.id for one in service.reverse_leftover_withdrawals(agent.principal)] == [
        at_agent.withdrawal.id
    ]
    assert [one.id for one in service.reverse_leftover_withdrawals(other_atm.principal)] == [
        elsewhere.withdrawal.id
    ]
    assert balances(service, ana) == ("480.00", "440.00")
    assert balances(service, bruno) == ("500.00", "500.00")
    assert balances(service, agent.principal) == ("50.00", "50.00")  # paid nothing, got nothing


def test_a_withdrawal_an_atm_began_dispensing_is_completed_at_start_never_reversed(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    """Its notes may be in the customer's hand: reversing it would pay them twice. Only the
    dispenser's own word that it presented none (`none_presented`) gives the hold back."""
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "500")
    taken = authorized(service, atm, ana, "60", Channel.ATM)
    jammed = authorized(service, atm, ana, "40", Channel.ATM)
    never_asked = authorized(service, atm, ana, "20", Channel.ATM)
    for one in (taken, jammed):
        dispensing = service.dispense_withdrawal(atm.principal, withdrawal_id=one.withdrawal.id)
        assert dispensing.state is WithdrawalState.DISPENSING
    with pytest.raises(WithdrawalNotPending):  # once
        service.dispense_withdrawal(atm.principal, withdrawal_id=taken.withdrawal.id)
    # A cancel key or a closing screen knows nothing of the dispenser: refused.
    with pytest.raises(WithdrawalNotPending, match="may have been dispensed"):
        service.reverse_withdrawal(atm.principal, withdrawal_id=taken.withdrawal.id)
    assert balances(service, ana) == ("500.00", "380.00")
    # Still held, and the operators' report of holds counts it.
    report = service.holds_report(actor=admin)
    assert (report.count, report.matches) == (3, True)
    back = service.reverse_withdrawal(
        atm.principal, withdrawal_id=jammed.withdrawal.id, none_presented=True
    )
    assert back.state is WithdrawalState.REVERSED

    clock.advance(timedelta(minutes=5))
    reversed_ = service.reverse_leftover_withdrawals(atm.principal)
    assert [one.id for one in reversed_] == [never_asked.withdrawal.id]
    assert state_of(wallet, taken.withdrawal.id) is WithdrawalState.COMPLETED
    assert balances(service, ana) == ("440.00", "440.00")
    assert cash_of(wallet, atm) == 6000
    assert service.terminal_day(atm.principal).cassettes == {5000: 10, 2000: 7}  # 3 x 20 out
    rows = audit_rows(service, "withdrawal.completed")
    assert rows == [(atm.principal.user_id, taken.withdrawal.id, {"in_doubt": True})]
    assert service.reverse_leftover_withdrawals(atm.principal) == []  # once
    assert len(audit_rows(service, "withdrawal.completed")) == 1
    check_cash_books(wallet)


def test_the_notes_leave_the_cassettes_when_dispensing_begins(
    wallet: Wallet, admin: Principal
) -> None:
    """Taken before they are presented, so notes another payout took are a refusal while nothing
    is out; returned when the dispenser presented none."""
    service = wallet.service
    atm = new_atm(service, admin, notes={2000: 3})
    ana = customer(service, "500")
    first = authorized(service, atm, ana, "60", Channel.ATM)
    second = authorized(service, atm, ana, "60", Channel.ATM)  # planned on the same 3 x 20
    service.dispense_withdrawal(atm.principal, withdrawal_id=first.withdrawal.id)
    assert service.terminal_day(atm.principal).cassettes == {2000: 0}
    with pytest.raises(CannotDispense):
        service.dispense_withdrawal(atm.principal, withdrawal_id=second.withdrawal.id)
    assert state_of(wallet, second.withdrawal.id) is WithdrawalState.AUTHORIZED
    service.reverse_withdrawal(atm.principal, withdrawal_id=second.withdrawal.id)
    service.reverse_withdrawal(
        atm.principal, withdrawal_id=first.withdrawal.id, none_presented=True
    )
    assert service.terminal_day(atm.principal).cassettes == {2000: 3}
    assert balances(service, ana) == ("500.00", "500.00")
    assert cash_of(wallet, atm) == 0


def test_a_jam_whose_reversal_a_frozen_wallet_refuses_leaves_the_withdrawal_authorized(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    """The dispenser presented nothing, but the customer's wallet was frozen meanwhile and cannot
    take the hold back yet. Left dispensing, the next start would complete it: the customer
    charged for notes still in the machine. It goes back to authorized with its notes in the
    cassettes, and a start reverses it once the wallet can take the money."""
    from mwallet.atm.reader import TypedCode
    from mwallet.atm.session import DispenseFault, TerminalSession

    class Jammed:
        def present(self, notes: object) -> None:
            raise DispenseFault("notes jammed in the transport")

    service = wallet.service
    atm = new_atm(service, admin, notes={2000: 5})
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60", channel=Channel.ATM)
    session = TerminalSession(service, lambda: atm.principal, name="ATM", dispenser=Jammed())
    redemption = session.redeem(TypedCode(issued.code or ""), PIN)
    service.set_wallet_status(actor=admin, phone=ana.phone, status=AccountStatus.FROZEN)
    with pytest.raises(WalletFrozen):
        session.pay_out(redemption)
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.AUTHORIZED
    assert service.terminal_day(atm.principal).cassettes == {2000: 5}  # all still in
    clock.advance(timedelta(minutes=5))
    assert session.open() == []  # still frozen: held
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.AUTHORIZED
    service.set_wallet_status(actor=admin, phone=ana.phone, status=AccountStatus.ACTIVE)
    assert [one.id for one in session.open()] == [issued.withdrawal.id]
    assert balances(service, ana) == ("500.00", "500.00")
    assert service.terminal_day(atm.principal).cassettes == {2000: 5}
    assert cash_of(wallet, atm) == 0
    check_cash_books(wallet)


def test_an_agent_whose_payout_failed_after_the_cash_went_does_not_reverse_it(
    wallet: Wallet, admin: Principal
) -> None:
    """The agent pressed "cash handed over" and the completion was refused (their wallet was
    frozen meanwhile): neither closing the counter nor its next start may give the customer the
    money back as well; it completes once the agent's wallet can be paid."""
    from mwallet.atm.reader import TypedCode
    from mwallet.atm.session import TerminalSession

    service = wallet.service
    agent = new_agent(service, admin, float_="50")
    ana = customer(service, "500")
    issued = withdraw(service, ana, "30", channel=Channel.AGENT)
    session = TerminalSession(service, lambda: agent.principal, name="Loja")
    redemption = session.redeem(TypedCode(issued.code or ""), PIN)
    service.set_wallet_status(actor=admin, phone=agent.principal.phone, status=AccountStatus.FROZEN)
    with pytest.raises(WalletFrozen):
        session.pay_out(redemption)  # the cash is in the customer's hand
    with pytest.raises(WithdrawalNotPending):  # the counter closing: refused
        service.reverse_withdrawal(agent.principal, withdrawal_id=issued.withdrawal.id)
    with pytest.raises(WithdrawalNotPending):  # an agent has no dispenser to say so
        service.reverse_withdrawal(
            agent.principal, withdrawal_id=issued.withdrawal.id, none_presented=True
        )
    assert session.open() == []  # still frozen: it waits, held
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.DISPENSING
    assert balances(service, ana) == ("500.00", "470.00")
    service.set_wallet_status(actor=admin, phone=agent.principal.phone, status=AccountStatus.ACTIVE)
    assert session.open() == []
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.COMPLETED
    assert balances(service, ana) == ("470.00", "470.00")
    assert balances(service, agent.principal) == ("80.00", "80.00")


def test_an_agents_wallet_cannot_close_while_a_withdrawal_is_open_at_their_counter(
    wallet: Wallet, admin: Principal
) -> None:
    """Its completion pays the agent's wallet, and a closed wallet takes nothing, ever: closing
    it with a withdrawal authorized (or its cash handed over) at the counter would leave the
    customer's hold never captured, and the agent never paid for the cash they gave."""
    from mwallet.atm.reader import TypedCode
    from mwallet.atm.session import TerminalSession

    service = wallet.service
    agent = new_agent(service, admin)  # no float: the wallet could close
    ana = customer(service, "500")
    issued = withdraw(service, ana, "30", channel=Channel.AGENT)
    session = TerminalSession(service, lambda: agent.principal, name="Loja")
    redemption = session.redeem(TypedCode(issued.code or ""), PIN)
    close = partial(
        service.set_wallet_status, actor=admin, phone=agent.principal.phone,
        status=AccountStatus.CLOSED,
    )  # fmt: skip
    with pytest.raises(WalletNotEmpty, match="being paid out at their counter"):
        close()
    service.set_wallet_status(actor=admin, phone=agent.principal.phone, status=AccountStatus.FROZEN)
    with pytest.raises(WalletFrozen):
        session.pay_out(redemption)  # the cash is in the customer's hand: dispensing
    with pytest.raises(WalletNotEmpty, match="being paid out at their counter"):
        close()
    service.set_wallet_status(actor=admin, phone=agent.principal.phone, status=AccountStatus.ACTIVE)
    assert session.open() == []
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.COMPLETED
    assert balances(service, ana) == ("470.00", "470.00")
    assert balances(service, agent.principal) == ("30.00", "30.00")
    check_cash_books(wallet)


def test_a_terminal_with_no_leftovers_reverses_nothing(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    assert service.reverse_leftover_withdrawals(atm.principal) == []
    withdraw(service, customer(service), "60")
    assert service.reverse_leftover_withdrawals(atm.principal) == []
    assert audit_rows(service, "withdrawal.reversed") == []


def test_only_a_terminal_reverses_its_leftovers(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "500")
    left = authorized(service, atm, ana, "60", Channel.ATM)
    for someone in (ana, admin):
        with pytest.raises(PermissionDenied):
            service.reverse_leftover_withdrawals(someone)
    assert state_of(wallet, left.withdrawal.id) is WithdrawalState.AUTHORIZED
    assert balances(service, ana) == ("500.00", "440.00")


def test_a_frozen_customers_leftover_does_not_stop_the_terminal_starting(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana, bruno = customer(service, "500"), customer(service, "500")
    hers = authorized(service, atm, ana, "60", Channel.ATM)
    his = authorized(service, atm, bruno, "110", Channel.ATM)
    service.set_wallet_status(actor=admin, phone=ana.phone, status=AccountStatus.FROZEN)
    back = service.reverse_leftover_withdrawals(atm.principal)  # today: raises WalletFrozen
    # Like the expiry sweep: the frozen wallet's hold waits, the others come back.
    assert [one.id for one in back] == [his.withdrawal.id]
    assert state_of(wallet, hers.withdrawal.id) is WithdrawalState.AUTHORIZED
    assert balances(service, bruno) == ("500.00", "500.00")


# --- a leftover reversal racing a complete --------------------------------------------------------
def race(**calls: Callable[[], object]) -> dict[str, object]:
    """Each call at the same moment, in its own thread: what each returned or raised."""
    start = threading.Barrier(len(calls))
    outcomes: dict[str, object] = {}

    def run(name: str, call: Callable[[], object]) -> None:
        start.wait(WAIT)
        try:
            outcomes[name] = call()
        except WalletError as exc:
            outcomes[name] = exc

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert set(outcomes) == set(calls)
    return outcomes


def test_a_leftover_reversal_and_a_complete_at_once_settle_the_withdrawal_once(
    wallet: Wallet, db_url: str, admin: Principal
) -> None:
    """The terminal's app starts again (reversing leftovers) while its old instance, still
    running, completes the same withdrawal: one of them settles it, the money moves once."""
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "1000")
    expected_paid, completed, reversed_ = 0, 0, 0
    with open_wallet(db_url) as other:  # another engine, like another process
        for _ in range(4):
            wid = authorized(service, atm, ana, "20", Channel.ATM).withdrawal.id
            outcomes = race(
                leftovers=partial(service.reverse_leftover_withdrawals, atm.principal),
                complete=partial(
                    other.service.complete_withdrawal, atm.principal, withdrawal_id=wid
                ),
            )
            by_leftovers, by_complete = outcomes["leftovers"], outcomes["complete"]
            leftovers_won = isinstance(by_leftovers, list) and len(by_leftovers) == 1
            complete_won = isinstance(by_complete, Withdrawal)
            assert leftovers_won != complete_won, outcomes
            losses = (WithdrawalNotPending, ConcurrencyConflict, DatabaseBusy)
            if leftovers_won:
                assert isinstance(by_complete, losses), outcomes
                assert state_of(wallet, wid) is WithdrawalState.REVERSED
                reversed_ += 1
            else:
                assert by_leftovers == [] or isinstance(by_leftovers, losses), outcomes
                assert state_of(wallet, wid) is WithdrawalState.COMPLETED
                expected_paid += 2000
                completed += 1
            assert service.reverse_leftover_withdrawals(atm.principal) == []

    assert completed + reversed_ == 4
    assert cash_of(wallet, atm) == expected_paid
    assert service.terminal_day(atm.principal).cassettes == {
        5000: 10,
        2000: 10 - expected_paid // 2000,
    }
    left_money = f"{1000 - expected_paid // 100}.00"
    assert balances(service, ana) == (left_money, left_money)
    assert len(audit_rows(service, "withdrawal.reversed")) == reversed_


def _waiting_on_locks(wallet: Wallet) -> int:
    with wallet.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_a_redeem_at_an_agent_waits_for_the_closing_of_their_wallet(
    wallet: Wallet, admin: Principal, backend: str
) -> None:
    """Made deterministic on PostgreSQL: a closing's UPDATE of the agent's wallet is held open
    from outside; a redeem at that agent's counter must wait for it and then see the wallet
    closed, not authorize a withdrawal the closing did not see (it could never complete)."""
    if backend != "postgresql":
        pytest.skip("SQLite serialises whole write transactions: the window cannot occur")
    service = wallet.service
    agent = new_agent(service, admin, float_="0")
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60", channel=Channel.AGENT)
    outcomes: dict[str, object] = {}

    def run() -> None:
        try:
            outcomes["redeem"] = redeem(service, agent, issued)
        except WalletError as exc:
            outcomes["redeem"] = exc

    with wallet.engine.connect() as closing:
        closing.execute(
            text("UPDATE accounts SET status = 'closed' WHERE code = :code"),
            {"code": f"wallet:{agent.principal.user_id}"},
        )
        redeeming = threading.Thread(target=run)
        redeeming.start()
        _until(lambda: _waiting_on_locks(wallet) == 1)
        closing.commit()
        redeeming.join(WAIT)
    assert isinstance(outcomes["redeem"], WalletClosed)
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.PENDING


def test_a_leftover_completed_meanwhile_does_not_undo_the_other_reversals(
    wallet: Wallet, db_url: str, admin: Principal, backend: str, clock: FixedClock
) -> None:
    """Made deterministic on PostgreSQL: a row lock held from outside makes the complete and the
    leftover reversal queue on the same withdrawal, the complete first."""
    if backend != "postgresql":
        pytest.skip("SQLite serialises whole write transactions: the window cannot occur")
    service = wallet.service
    agent = new_agent(service, admin, float_="0")
    ana, bruno = customer(service, "500"), customer(service, "500")
    raced = authorized(service, agent, ana, "60", Channel.AGENT)  # listed first
    clock.advance(timedelta(seconds=1))
    other = authorized(service, agent, bruno, "70", Channel.AGENT)
    outcomes: dict[str, object] = {}

    def run(name: str, call: Callable[[], object]) -> None:
        try:
            outcomes[name] = call()
        except WalletError as exc:
            outcomes[name] = exc

    with open_wallet(db_url, clock) as elsewhere, wallet.engine.connect() as holder:
        holder.execute(
            text("SELECT id FROM withdrawals WHERE id = :id FOR UPDATE"),
            {"id": raced.withdrawal.id},
        )
        completing = threading.Thread(
            target=run,
            args=(
                "complete",
                lambda: elsewhere.service.complete_withdrawal(
                    agent.principal, withdrawal_id=raced.withdrawal.id
                ),
            ),
        )
        completing.start()
        _until(lambda: _waiting_on_locks(wallet) == 1)
        reversing = threading.Thread(
            target=run,
            args=("leftovers", lambda: service.reverse_leftover_withdrawals(agent.principal)),
        )
        reversing.start()
        _until(lambda: _waiting_on_locks(wallet) == 2)
        holder.rollback()  # the complete goes first, then the reversal finds it settled
        completing.join(WAIT)
        reversing.join(WAIT)

    assert isinstance(outcomes["complete"], Withdrawal), outcomes
    assert state_of(wallet, raced.withdrawal.id) is WithdrawalState.COMPLETED
    assert balances(service, agent.principal) == ("60.00", "60.00")
    # The one nobody else settled comes back (today: WithdrawalNotPending, it stays authorized).
    leftovers = outcomes["leftovers"]
    assert isinstance(leftovers, list), outcomes
    assert [one.id for one in leftovers] == [other.withdrawal.id]
    assert state_of(wallet, other.withdrawal.id) is WithdrawalState.REVERSED


# --- an ATM out of cash ---------------------------------------------------------------------------
def test_an_atm_never_loaded_is_out_of_cash_and_authorizes_nothing(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    atm = new_atm(service, admin, notes={})
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    with pytest.raises(OutOfCash, match="out of cash") as caught:
        redeem(service, atm, issued)
    assert caught.value.code == "out_of_cash"
    assert isinstance(caught.value, CannotDispense)  # doors that know only CannotDispense still do
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.PENDING
    assert terminal_of(wallet, issued.withdrawal.id) is None
    assert audit_rows(service, "withdrawal.authorized") == []
    assert balances(service, ana) == ("500.00", "440.00")  # still held for another ATM
    assert service.reverse_leftover_withdrawals(atm.principal) == []
    # Loaded, the same code and PIN pay out.
    service.load_cassettes(actor=admin, terminal_id=atm.id, notes={2000: 5})
    assert redeem(service, atm, issued).notes == {2000: 3}


def test_an_atm_emptied_by_withdrawals_is_out_of_cash(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin, notes={2000: 3, 5000: 1})
    ana = customer(service, "500")
    paid(service, atm, ana, "60", Channel.ATM)  # the three 20s
    # One 50 left: 20 cannot be made from it, but the ATM is not out of cash.
    short = withdraw(service, ana, "20")
    with pytest.raises(CannotDispense) as caught:
        redeem(service, atm, short)
    assert not isinstance(caught.value, OutOfCash)
    assert caught.value.code == "cannot_dispense"
    paid(service, atm, ana, "50", Channel.ATM)  # the last note

    day = service.terminal_day(atm.principal)
    assert figures(day) == {
        "cassettes": {2000: 0, 5000: 0}, "cash": "0.00", "paid_out": "110.00",
        "paid_out_count": 2, "reversed_count": 0, "cash_in": "0.00", "cash_in_count": 0,
    }  # fmt: skip
    for pending in (short, withdraw(service, ana, "100")):
        with pytest.raises(OutOfCash):
            redeem(service, atm, pending)
        assert state_of(wallet, pending.withdrawal.id) is WithdrawalState.PENDING
        assert terminal_of(wallet, pending.withdrawal.id) is None
    assert len(audit_rows(service, "withdrawal.authorized")) == 2
    assert balances(service, ana) == ("390.00", "270.00")
    assert cash_of(wallet, atm) == 11000
    # Another ATM with notes pays the same withdrawal.
    assert redeem(service, new_atm(service, admin, name="ATM 2"), short).notes == {2000: 1}


def test_an_out_of_cash_atm_still_checks_the_pin_first(wallet: Wallet, admin: Principal) -> None:
    """Out of cash is refused after the code and PIN are checked: a wrong PIN counts as always,
    and an empty ATM is no way to test PINs without their being counted."""
    from mwallet.core.errors import WrongPin

    service = wallet.service
    atm = new_atm(service, admin, notes={})
    issued = withdraw(service, customer(service, "500"), "60")
    assert issued.code is not None
    with pytest.raises(WrongPin):
        service.redeem_withdrawal(atm.principal, code=issued.code, pin="8531")
    with pytest.raises(OutOfCash):
        redeem(service, atm, issued)
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.PENDING


def test_an_agents_cash_in_since_midnight_is_read_by_the_time_of_their_postings(
    wallet: Wallet,
) -> None:
    """The agent's day reads only the agent's postings since `since`, by the index on
    (account, time): migration 0017 dropped the entries' index on time, and filtered on the
    entries' time alone the query read every entry in the journal (PostgreSQL: a sequential scan
    of `journal_entries`, ~18 ms at 300k entries against ~2 ms before)."""
    compiled = ledger_repository._paid_out.compiled(wallet.engine.dialect)
    params = compiled.parameters(
        {"acct": 1, "kind": "cash_in", "since": datetime(2026, 1, 1, tzinfo=UTC)}
    )
    with wallet.engine.connect() as conn:
        if wallet.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")  # the tables are tiny here
            plan = " ".join(
                str(row[0]) for row in conn.exec_driver_sql("EXPLAIN " + compiled.sql, params)
            )
            bounded = re.search(r"Index Cond: \(\(account_id = \S+\) AND \(created_at >= ", plan)
        else:
            plan = " ".join(
                str(row[-1])
                for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.sql, tuple(params))
            )
            bounded = re.search(r"\(account_id=\? AND created_at>\?\)", plan)
    assert bounded, plan
