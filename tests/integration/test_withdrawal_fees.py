"""Withdrawal fees (the `withdrawal-atm` and `withdrawal-agent` tariffs) and the withdrawal policy
(`admin limits withdrawals`) through the services, on SQLite and PostgreSQL.

A fee is held with the amount when a withdrawal is requested, kept (in `fees:<currency>`) only
when the cash is paid out, and returned with the amount on every other end. The tariffs, the daily
withdrawal limit and the policy (bounds, code lifetime) are read from the database at each
request, so a change made by another process applies at once; a withdrawal keeps the fee and
lifetime it was requested with.

Every balance below is computed by hand. After every test the ledger verifies, the holds account
holds exactly amount + fee of the withdrawals still pending or authorized, the fees account
exactly the fees of the completed ones, and each ATM's cash account exactly the amounts it paid.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.domain.ledger import cash_account_code, fees_account_code, holds_account_code
from mwallet.core.domain.money import Money
from mwallet.core.domain.roles import Role
from mwallet.core.domain.tariffs import LimitFamily, Movement, Tariff, Tier, flat
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Channel, WithdrawalPolicy, WithdrawalState
from mwallet.core.errors import (
    CurrencyMismatch,
    InsufficientFunds,
    InvalidAmount,
    InvalidInput,
    PermissionDenied,
    WithdrawalLimitReached,
    WrongPin,
)
from mwallet.core.services.wallet_service import WalletService
from mwallet.core.services.withdrawals import IssuedWithdrawal
from tests.integration.cash_books import check_cash_books
from tests.support import OPERATOR, PASSWORD, make_admin, open_wallet, register

PIN = "4729"
WRONG_PIN = "8531"
NOTES = {5000: 10, 2000: 10}  # ten 50s and ten 20s, in cents
LIFETIME = timedelta(minutes=30)
DEFAULT = WithdrawalPolicy(min_minor=100, max_minor=100_000, lifetime=LIFETIME)
# 1.50 at an ATM, 0.75 at an agent.
FEES = {Movement.WITHDRAWAL_ATM: flat(150), Movement.WITHDRAWAL_AGENT: flat(75)}
HOLDS = holds_account_code("USD")
FEES_ACCOUNT = fees_account_code("USD")


# --- helpers -------------------------------------------------------------------------------------
def key() -> str:
    return f"k-{uuid.uuid4().hex}"


def usd(amount: str) -> Money:
    return Money.parse(amount, "USD", allow_zero=True)


@dataclass(frozen=True)
class Station:
    terminal_id: str
    principal: Principal


def new_atm(service: WalletService, admin: Principal) -> Station:
    added = service.add_atm(actor=admin, name=f"ATM {uuid.uuid4().hex[:6]}")
    assert added.client is not None
    assert added.client_secret is not None
    service.load_cassettes(actor=admin, terminal_id=added.terminal.id, notes=NOTES)
    token = service.client_token(client_id=added.client.id, client_secret=added.client_secret)
    return Station(added.terminal.id, service.authenticate(access_token=token.access_token))


def new_agent(service: WalletService, admin: Principal) -> Station:
    person = register(service, name="Agent Orange")
    added = service.add_agent(actor=admin, phone=person.phone)
    principal = service.login(phone=person.phone, password=PASSWORD).principal
    assert principal.role is Role.AGENT
    return Station(added.terminal.id, principal)


def customer(service: WalletService, funds: str = "500") -> Principal:
    person = register(service, name="Ana Maria Silva")
    service.topup(person, amount=usd(funds), source="sandbox", idempotency_key=key())
    return person


def withdraw(
    service: WalletService,
    person: Principal,
    amount: str = "60",
    *,
    channel: Channel = Channel.ATM,
    idempotency_key: str | None = None,
) -> IssuedWithdrawal:
    return service.request_withdrawal(
        person,
        amount=usd(amount),
        channel=channel,
        pin=PIN,
        idempotency_key=idempotency_key or key(),
    )


def pay_out(service: WalletService, station: Station, issued: IssuedWithdrawal) -> None:
    assert issued.code is not None
    service.redeem_withdrawal(station.principal, code=issued.code, pin=PIN)
    service.complete_withdrawal(station.principal, withdrawal_id=issued.withdrawal.id)


def shown(service: WalletService, person: Principal) -> tuple[str, str]:
    """(balance, available) as decimal strings: the balance counts what is held, available not."""
    found = service.balance(person)
    return found.balance.to_decimal_string(), found.available.to_decimal_string()


def cents(wallet: Wallet, code: str) -> int:
    with wallet.engine.connect() as conn:
        found = conn.execute(
            text("SELECT balance FROM accounts WHERE code = :code"), {"code": code}
        ).scalar_one_or_none()
    assert found is not None, f"no account {code}"
    return int(found)


def wallet_cents(wallet: Wallet, person: Principal) -> int:
    return cents(wallet, f"wallet:{person.user_id}")


def stored(wallet: Wallet, withdrawal_id: str) -> dict[str, Any]:
    with wallet.engine.connect() as conn:
        row = conn.execute(
            text("SELECT * FROM withdrawals WHERE id = :id"), {"id": withdrawal_id}
        ).one()
    return dict(row._mapping)


def stored_count(wallet: Wallet) -> int:
    with wallet.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM withdrawals")).scalar_one())


def postings_of(wallet: Wallet, withdrawal_id: str, kind: str) -> dict[str, int]:
    """The postings (account code -> amount) of the withdrawal's one journal entry of `kind`."""
    with wallet.engine.connect() as conn:
        entries = conn.execute(
            text("SELECT id FROM journal_entries WHERE kind = :kind AND memo LIKE :memo"),
            {"kind": kind, "memo": f"withdrawal {withdrawal_id}%"},
        ).all()
        assert len(entries) == 1, entries
        rows = conn.execute(
            text(
                "SELECT a.code, p.amount FROM postings p JOIN accounts a ON a.id = p.account_id "
                "WHERE p.entry_id = :entry"
            ),
            {"entry": entries[0][0]},
        ).all()
    found = {str(code): int(amount) for code, amount in rows}
    assert len(found) == len(rows), rows  # one posting per account
    return found


def fee_postings(wallet: Wallet) -> int:
    with wallet.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM postings p JOIN accounts a ON a.id = p.account_id "
                    "WHERE a.code = :code"
                ),
                {"code": FEES_ACCOUNT},
            ).scalar_one()
        )


def audit_rows(service: WalletService, action: str) -> list[Any]:
    return [one for one in service.audit_log(actor=OPERATOR, limit=1000) if one.action == action]


@pytest.fixture(autouse=True)
def books_stay_sound(wallet: Wallet) -> Iterator[None]:
    yield
    check_cash_books(wallet)


@pytest.fixture
def admin(wallet: Wallet) -> Principal:
    return make_admin(wallet.service)


def set_fee(service: WalletService, admin: Principal, movement: Movement, fee: str) -> None:
    service.set_tariff(actor=admin, movement=movement, tariff=flat(usd(fee).minor))


def set_daily(service: WalletService, admin: Principal, daily: Money) -> None:
    """The daily withdrawal limit of everyone (every user here is of the basic tier)."""
    service.set_limit(actor=admin, family=LimitFamily.WITHDRAWAL, tier=Tier.BASIC, daily=daily)


@pytest.fixture
def fees(wallet: Wallet, admin: Principal) -> dict[Movement, Tariff]:
    """Fees of 1.50 at an ATM and 0.75 at an agent; the policy as by default."""
    set_fee(wallet.service, admin, Movement.WITHDRAWAL_ATM, "1.50")
    set_fee(wallet.service, admin, Movement.WITHDRAWAL_AGENT, "0.75")
    set_to = wallet.service.tariffs(admin)
    assert set_to == FEES
    assert wallet.service.withdrawal_policy() == DEFAULT
    return set_to


# --- request and the ends of a withdrawal, with a fee --------------------------------------------
@pytest.mark.usefixtures("fees")
def test_a_request_holds_the_amount_and_the_fee_of_its_channel(wallet: Wallet) -> None:
    service = wallet.service
    ana = customer(service, "500")

    at_atm = withdraw(service, ana, "60").withdrawal
    assert (at_atm.amount, at_atm.fee, at_atm.held) == (usd("60"), usd("1.50"), usd("61.50"))
    # Still Ana's (balance), no longer available: 500 - 60 - 1.50.
    assert shown(service, ana) == ("500.00", "438.50")
    assert (wallet_cents(wallet, ana), cents(wallet, HOLDS)) == (43850, 6150)
    assert postings_of(wallet, at_atm.id, "hold") == {f"wallet:{ana.user_id}": -6150, HOLDS: 6150}

    at_agent = withdraw(service, ana, "40", channel=Channel.AGENT).withdrawal
    assert (at_agent.fee, at_agent.held) == (usd("0.75"), usd("40.75"))
    assert shown(service, ana) == ("500.00", "397.75")  # 438.50 - 40 - 0.75
    assert (wallet_cents(wallet, ana), cents(wallet, HOLDS)) == (39775, 10225)
    assert cents(wallet, FEES_ACCOUNT) == 0  # nothing is earned before the cash is out

    assert (stored(wallet, at_atm.id)["fee"], stored(wallet, at_agent.id)["fee"]) == (150, 75)
    assert [(one.id, one.fee) for one in service.list_withdrawals(ana)] == [
        (at_agent.id, usd("0.75")),
        (at_atm.id, usd("1.50")),
    ]


def test_complete_at_an_atm_pays_the_amount_to_its_cash_and_keeps_the_fee(
    wallet: Wallet, admin: Principal, fees: dict[Movement, Tariff]
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    assert issued.code is not None

    redemption = service.redeem_withdrawal(atm.principal, code=issued.code, pin=PIN)
    assert redemption.notes == {2000: 3}  # the notes make the amount, not amount + fee
    assert redemption.withdrawal.fee == usd("1.50")
    assert shown(service, ana) == ("500.00", "438.50")  # authorized: still held
    assert cents(wallet, HOLDS) == 6150

    done = service.complete_withdrawal(atm.principal, withdrawal_id=issued.withdrawal.id)
    assert (done.state, done.fee) == (WithdrawalState.COMPLETED, usd("1.50"))
    assert cents(wallet, cash_account_code(atm.terminal_id)) == 6000
    assert cents(wallet, FEES_ACCOUNT) == 150
    assert cents(wallet, HOLDS) == 0
    assert shown(service, ana) == ("438.50", "438.50")
    # One capture entry: the whole hold out, shared between the ATM's cash and the fees.
    assert postings_of(wallet, issued.withdrawal.id, "capture") == {
        HOLDS: -6150,
        cash_account_code(atm.terminal_id): 6000,
        FEES_ACCOUNT: 150,
    }


def test_complete_at_an_agent_pays_the_agent_the_amount_only(
    wallet: Wallet, admin: Principal, fees: dict[Movement, Tariff]
) -> None:
    service = wallet.service
    agent = new_agent(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "40", channel=Channel.AGENT)
    assert shown(service, ana) == ("500.00", "459.25")

    pay_out(service, agent, issued)
    assert shown(service, agent.principal) == ("40.00", "40.00")  # the cash they handed over
    assert cents(wallet, FEES_ACCOUNT) == 75
    assert cents(wallet, HOLDS) == 0
    assert shown(service, ana) == ("459.25", "459.25")
    assert postings_of(wallet, issued.withdrawal.id, "capture") == {
        HOLDS: -4075,
        f"wallet:{agent.principal.user_id}": 4000,
        FEES_ACCOUNT: 75,
    }


@pytest.mark.usefixtures("fees")
def test_a_cancelled_withdrawal_returns_the_amount_and_the_fee(wallet: Wallet) -> None:
    service = wallet.service
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    assert shown(service, ana) == ("500.00", "438.50")

    cancelled = service.cancel_withdrawal(ana, withdrawal_id=issued.withdrawal.id)
    assert (cancelled.state, cancelled.fee) == (WithdrawalState.CANCELLED, usd("1.50"))
    assert shown(service, ana) == ("500.00", "500.00")
    assert (wallet_cents(wallet, ana), cents(wallet, HOLDS)) == (50000, 0)
    assert cents(wallet, FEES_ACCOUNT) == 0
    assert postings_of(wallet, issued.withdrawal.id, "release") == {
        HOLDS: -6150,
        f"wallet:{ana.user_id}": 6150,
    }


def test_an_expired_withdrawal_returns_the_amount_and_the_fee(
    wallet: Wallet, admin: Principal, clock: FixedClock, fees: dict[Movement, Tariff]
) -> None:
    service = wallet.service
    ana = customer(service, "500")
    at_atm = withdraw(service, ana, "60").withdrawal
    at_agent = withdraw(service, ana, "40", channel=Channel.AGENT).withdrawal
    assert (wallet_cents(wallet, ana), cents(wallet, HOLDS)) == (39775, 10225)

    clock.advance(LIFETIME - timedelta(seconds=1))
    assert service.expire_withdrawals(actor=admin) == 0
    clock.advance(timedelta(seconds=1))
    assert service.expire_withdrawals(actor=admin) == 2
    assert {stored(wallet, one.id)["state"] for one in (at_atm, at_agent)} == {"expired"}
    assert (wallet_cents(wallet, ana), cents(wallet, HOLDS)) == (50000, 0)
    assert shown(service, ana) == ("500.00", "500.00")
    assert cents(wallet, FEES_ACCOUNT) == 0


def test_a_withdrawal_blocked_by_wrong_pins_returns_the_amount_and_the_fee(
    wallet: Wallet, admin: Principal, fees: dict[Movement, Tariff]
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    assert issued.code is not None
    for left in ("2 attempts left", "1 attempt left", "blocked"):
        with pytest.raises(WrongPin, match=left):
            service.redeem_withdrawal(atm.principal, code=issued.code, pin=WRONG_PIN)
    assert stored(wallet, issued.withdrawal.id)["state"] == WithdrawalState.BLOCKED.value
    assert shown(service, ana) == ("500.00", "500.00")
    assert (wallet_cents(wallet, ana), cents(wallet, HOLDS), cents(wallet, FEES_ACCOUNT)) == (
        50000,
        0,
        0,
    )


def test_a_reversed_withdrawal_returns_the_amount_and_the_fee(
    wallet: Wallet, admin: Principal, fees: dict[Movement, Tariff]
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    assert issued.code is not None
    service.redeem_withdrawal(atm.principal, code=issued.code, pin=PIN)
    assert cents(wallet, HOLDS) == 6150

    reversed_ = service.reverse_withdrawal(atm.principal, withdrawal_id=issued.withdrawal.id)
    assert (reversed_.state, reversed_.fee) == (WithdrawalState.REVERSED, usd("1.50"))
    assert shown(service, ana) == ("500.00", "500.00")
    assert (wallet_cents(wallet, ana), cents(wallet, HOLDS)) == (50000, 0)
    assert cents(wallet, cash_account_code(atm.terminal_id)) == 0
    assert cents(wallet, FEES_ACCOUNT) == 0
    assert postings_of(wallet, issued.withdrawal.id, "release") == {
        HOLDS: -6150,
        f"wallet:{ana.user_id}": 6150,
    }


@pytest.mark.usefixtures("fees")
def test_funds_for_the_amount_but_not_the_fee_are_insufficient(wallet: Wallet) -> None:
    service = wallet.service
    ana = customer(service, "60.74")
    with pytest.raises(InsufficientFunds):
        withdraw(service, ana, "60")  # 61.50 needed
    with pytest.raises(InsufficientFunds):
        withdraw(service, ana, "60", channel=Channel.AGENT)  # 60.75 needed
    assert stored_count(wallet) == 0
    assert shown(service, ana) == ("60.74", "60.74")
    assert (wallet_cents(wallet, ana), cents(wallet, HOLDS)) == (6074, 0)

    service.topup(ana, amount=usd("0.01"), source="sandbox", idempotency_key=key())
    withdraw(service, ana, "60", channel=Channel.AGENT)  # exactly amount + fee: all of it
    assert shown(service, ana) == ("60.75", "0.00")
    assert cents(wallet, HOLDS) == 6075


def test_the_daily_limit_counts_amounts_not_fees(
    wallet: Wallet, admin: Principal, fees: dict[Movement, Tariff]
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    service.load_cassettes(actor=admin, terminal_id=atm.terminal_id, notes={5000: 20})
    ana = customer(service, "5000")
    paid = withdraw(service, ana, "1000")
    pay_out(service, atm, paid)
    withdraw(service, ana, "1000")  # 2000.00 of amounts today: the limit, though 2003.00 left

    with pytest.raises(WithdrawalLimitReached, match=re.escape("2,000.00")):
        withdraw(service, ana, "1")
    assert stored_count(wallet) == 2
    # 5000 - 1001.50 paid out; 1001.50 held.
    assert shown(service, ana) == ("3998.50", "2997.00")
    assert cents(wallet, FEES_ACCOUNT) == 150
    assert cents(wallet, HOLDS) == 100150


def test_a_policy_change_in_another_process_applies_to_the_next_request(
    wallet: Wallet, admin: Principal, db_url: str, clock: FixedClock
) -> None:
    service = wallet.service
    ana = customer(service, "500")
    before = withdraw(service, ana, "60").withdrawal  # the defaults: no fee, 30 minutes
    assert (before.fee, before.expires_at - before.created_at) == (usd("0"), LIFETIME)
    assert service.settings.withdrawal_policy is None  # this process read its settings already

    with open_wallet(db_url, clock) as other:
        set_fee(other.service, admin, Movement.WITHDRAWAL_ATM, "2.25")
        changed = other.service.set_withdrawal_policy(actor=admin, lifetime=timedelta(minutes=10))
    assert changed == replace(DEFAULT, lifetime=timedelta(minutes=10))
    assert service.withdrawal_policy() == changed
    assert service.tariffs(ana) == {Movement.WITHDRAWAL_ATM: flat(225)}

    after = withdraw(service, ana, "60").withdrawal
    assert (after.fee, after.expires_at - after.created_at) == (
        usd("2.25"),
        timedelta(minutes=10),
    )
    at_agent = withdraw(service, ana, "10", channel=Channel.AGENT).withdrawal
    assert at_agent.fee == usd("0")
    assert shown(service, ana) == ("500.00", "367.75")  # 500 - 60 - 62.25 - 10
    (first,) = [one for one in service.list_withdrawals(ana) if one.id == before.id]
    assert (first.fee, first.expires_at) == (usd("0"), before.expires_at)  # kept as requested

    # Ten minutes on, only the withdrawals requested under the new lifetime have expired.
    clock.advance(timedelta(minutes=10))
    assert service.expire_withdrawals(actor=admin) == 2
    assert [stored(wallet, one.id)["state"] for one in (before, after, at_agent)] == [
        "pending",
        "expired",
        "expired",
    ]
    assert shown(service, ana) == ("500.00", "440.00")
    service.cancel_withdrawal(ana, withdrawal_id=before.id)
    assert shown(service, ana) == ("500.00", "500.00")


def test_a_replayed_request_keeps_its_fee_after_the_policy_changed(
    wallet: Wallet, admin: Principal, fees: dict[Movement, Tariff]
) -> None:
    service = wallet.service
    ana = customer(service, "500")
    same = key()
    first = withdraw(service, ana, "60", idempotency_key=same)
    assert first.withdrawal.fee == usd("1.50")
    service.set_withdrawal_policy(actor=admin, max_amount=usd("50"), lifetime=timedelta(minutes=5))
    set_fee(service, admin, Movement.WITHDRAWAL_ATM, "3")

    again = withdraw(service, ana, "60", idempotency_key=same)  # above the new maximum, too
    assert again.withdrawal == first.withdrawal
    assert (again.code, again.pin, again.qr_payload) == (None, None, None)
    assert stored_count(wallet) == 1
    assert shown(service, ana) == ("500.00", "438.50")

    with pytest.raises(InvalidAmount, match=re.escape("between 1.00 USD and 50.00 USD")):
        withdraw(service, ana, "60")
    assert withdraw(service, ana, "50").withdrawal.fee == usd("3.00")
    assert shown(service, ana) == ("500.00", "385.50")


def test_a_zero_fee_posts_nothing_to_the_fees_account(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    set_fee(service, admin, Movement.WITHDRAWAL_ATM, "0")
    set_fee(service, admin, Movement.WITHDRAWAL_AGENT, "0.75")
    assert service.tariffs(admin) == {Movement.WITHDRAWAL_AGENT: flat(75)}  # a zero fee: free
    atm = new_atm(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    assert issued.withdrawal.fee == usd("0")
    assert shown(service, ana) == ("500.00", "440.00")
    pay_out(service, atm, issued)

    assert postings_of(wallet, issued.withdrawal.id, "capture") == {
        HOLDS: -6000,
        cash_account_code(atm.terminal_id): 6000,
    }
    assert fee_postings(wallet) == 0
    assert cents(wallet, FEES_ACCOUNT) == 0
    assert shown(service, ana) == ("440.00", "440.00")


# --- the policy itself ---------------------------------------------------------------------------
def test_the_policy_starts_at_the_defaults_and_keeps_what_is_not_given(
    wallet: Wallet, admin: Principal, db_url: str
) -> None:
    service = wallet.service
    assert service.withdrawal_policy() == DEFAULT
    assert service.tariffs(admin) == {}
    set_fee(service, admin, Movement.WITHDRAWAL_AGENT, "0.75")
    assert service.withdrawal_policy() == DEFAULT  # a fee is a tariff, not the policy
    assert service.set_withdrawal_policy(
        actor=admin, min_amount=usd("5"), max_amount=usd("500")
    ) == WithdrawalPolicy(500, 50_000, LIFETIME)
    set_daily(service, admin, usd("800"))
    expected = WithdrawalPolicy(500, 50_000, timedelta(hours=2))
    assert service.set_withdrawal_policy(actor=admin, lifetime=timedelta(hours=2)) == expected
    set_fee(service, admin, Movement.WITHDRAWAL_ATM, "1.25")
    with open_wallet(db_url) as fresh:
        assert fresh.service.withdrawal_policy() == expected
        assert fresh.service.tariffs(admin) == {
            Movement.WITHDRAWAL_ATM: flat(125),
            Movement.WITHDRAWAL_AGENT: flat(75),
        }

    ana = customer(service, "1000")
    with pytest.raises(InvalidAmount, match=re.escape("between 5.00 USD and 500.00 USD")):
        withdraw(service, ana, "4.99")
    withdraw(service, ana, "500")
    with pytest.raises(WithdrawalLimitReached, match=re.escape("800.00")):
        withdraw(service, ana, "300.01")
    assert shown(service, ana) == ("1000.00", "498.75")


def test_a_maximum_above_the_daily_limit_is_allowed_and_the_limit_still_holds(
    wallet: Wallet, admin: Principal
) -> None:
    # The daily limit is a limit of its own now (per tier): the policy no longer compares them.
    service = wallet.service
    changed = service.set_withdrawal_policy(actor=admin, max_amount=usd("3000"))
    assert changed == replace(DEFAULT, max_minor=300_000)
    ana = customer(service, "5000")
    with pytest.raises(WithdrawalLimitReached, match=re.escape("2,000.00")):
        withdraw(service, ana, "2000.01")
    assert (stored_count(wallet), shown(service, ana)) == (0, ("5000.00", "5000.00"))
    withdraw(service, ana, "2000")
    assert shown(service, ana) == ("5000.00", "3000.00")


@pytest.mark.parametrize(
    ("change", "error", "said"),
    [
        ({"min_amount": Money(0, "USD")}, InvalidInput, "minimum must be positive"),
        ({"min_amount": usd("600"), "max_amount": usd("500")}, InvalidInput, "at most the max"),
        ({"min_amount": usd("1000.01")}, InvalidInput, "at most the maximum"),
        ({"lifetime": timedelta(seconds=59)}, InvalidInput, "between 1 minute and 24 hours"),
        ({"lifetime": timedelta(0)}, InvalidInput, "between 1 minute and 24 hours"),
        ({"lifetime": timedelta(hours=24, seconds=1)}, InvalidInput, "1 minute and 24 hours"),
        # Valid parts are not stored when another part is refused.
        (
            {"max_amount": usd("10"), "lifetime": timedelta(seconds=30)},
            InvalidInput,
            "between 1 minute and 24 hours",
        ),
        ({"min_amount": Money.parse("1", "EUR")}, CurrencyMismatch, "USD"),
        ({"max_amount": Money.parse("5000", "EUR")}, CurrencyMismatch, "USD"),
    ],
)
def test_a_policy_that_makes_no_sense_is_refused_and_nothing_is_stored(
    wallet: Wallet,
    admin: Principal,
    fees: dict[Movement, Tariff],
    *,
    change: dict[str, Any],
    error: type[Exception],
    said: str,
) -> None:
    service = wallet.service
    recorded = len(audit_rows(service, "limits.withdrawals_set"))
    with pytest.raises(error, match=re.escape(said)):
        service.set_withdrawal_policy(actor=admin, **change)
    assert service.withdrawal_policy() == DEFAULT
    assert service.tariffs(admin) == fees
    assert len(audit_rows(service, "limits.withdrawals_set")) == recorded
    ana = customer(service, "100")
    assert withdraw(service, ana, "60").withdrawal.fee == usd("1.50")


@pytest.mark.parametrize(
    ("fee", "daily", "said"),
    [
        (flat(-1), None, "a flat fee is between zero and the largest amount"),
        (flat(100_000_000_001), None, "a flat fee is between zero and the largest amount"),
        (None, Money(0, "USD"), "a limit is a positive amount"),
        (None, Money(-100, "USD"), "a limit is a positive amount"),
        (None, Money.parse("5000", "EUR"), "USD"),
    ],
)
def test_a_withdrawal_fee_or_limit_that_makes_no_sense_is_refused(
    wallet: Wallet,
    admin: Principal,
    fees: dict[Movement, Tariff],
    *,
    fee: Tariff | None,
    daily: Money | None,
    said: str,
) -> None:
    service = wallet.service

    def attempt() -> None:
        if fee is not None:
            service.set_tariff(actor=admin, movement=Movement.WITHDRAWAL_ATM, tariff=fee)
        else:
            assert daily is not None
            set_daily(service, admin, daily)

    with pytest.raises((InvalidInput, CurrencyMismatch), match=re.escape(said)):
        attempt()
    assert service.tariffs(admin) == fees
    assert audit_rows(service, "limit.set") == []
    ana = customer(service, "3000")
    assert withdraw(service, ana, "1000").withdrawal.fee == usd("1.50")
    assert withdraw(service, ana, "1000").withdrawal.fee == usd("1.50")
    with pytest.raises(WithdrawalLimitReached, match=re.escape("2,000.00")):
        withdraw(service, ana, "1")  # the default daily limit stays


def test_the_edges_of_a_sensible_policy_are_allowed(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    edges = service.set_withdrawal_policy(
        actor=admin,
        min_amount=usd("20"),
        max_amount=usd("20"),
        lifetime=timedelta(minutes=1),
    )
    set_daily(service, admin, usd("20"))
    set_fee(service, admin, Movement.WITHDRAWAL_ATM, "20")
    set_fee(service, admin, Movement.WITHDRAWAL_AGENT, "0")
    assert edges == WithdrawalPolicy(2000, 2000, timedelta(minutes=1))
    longest = service.set_withdrawal_policy(actor=admin, lifetime=timedelta(hours=24))
    assert longest == replace(edges, lifetime=timedelta(hours=24))
    assert service.withdrawal_policy() == longest

    ana = customer(service, "100")
    issued = withdraw(service, ana, "20").withdrawal
    assert (issued.held, issued.expires_at - issued.created_at) == (
        usd("40"),
        timedelta(hours=24),
    )
    assert shown(service, ana) == ("100.00", "60.00")


def test_only_an_admin_may_set_the_policy(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    ana = customer(service, "100")
    auditor = register(service, name="Ida Auditor")
    service.set_role(actor=admin, phone=auditor.phone, role=Role.AUDITOR)
    auditor = service.login(phone=auditor.phone, password=PASSWORD).principal
    assert auditor.role is Role.AUDITOR
    agent = new_agent(service, admin).principal
    denied = len(audit_rows(service, "permission.denied"))

    for someone in (ana, auditor, agent):
        with pytest.raises(PermissionDenied):
            service.set_withdrawal_policy(actor=someone, min_amount=usd("5"))
        with pytest.raises(PermissionDenied):
            service.set_tariff(actor=someone, movement=Movement.WITHDRAWAL_ATM, tariff=flat(500))
        with pytest.raises(PermissionDenied):
            service.set_limit(
                actor=someone, family=LimitFamily.WITHDRAWAL, tier=Tier.BASIC, daily=usd("1")
            )
    assert service.withdrawal_policy() == DEFAULT
    assert service.tariffs(admin) == {}
    assert audit_rows(service, "limits.withdrawals_set") == []
    assert audit_rows(service, "tariff.set") == []
    assert audit_rows(service, "limit.set") == []
    assert len(audit_rows(service, "permission.denied")) == denied + 9
    assert withdraw(service, ana, "60").withdrawal.fee == usd("0")


def test_setting_the_policy_is_audited(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    service.set_withdrawal_policy(actor=admin, min_amount=usd("2"))
    service.set_withdrawal_policy(actor=admin, lifetime=timedelta(minutes=45))

    newest, older = audit_rows(service, "limits.withdrawals_set")
    assert (older.actor, older.details) == (
        admin.user_id,
        {"min": 200, "max": 100_000, "lifetime_s": 1800},
    )
    assert (newest.actor, newest.details) == (
        admin.user_id,
        {"min": 200, "max": 100_000, "lifetime_s": 2700},
    )
    assert service.verify_audit_log(actor=OPERATOR, anchor=None).ok


def test_the_policy_returned_is_the_policy_stored(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    with pytest.raises(InvalidInput, match="whole number of seconds"):
        service.set_withdrawal_policy(actor=admin, lifetime=timedelta(seconds=90, milliseconds=500))
    returned = service.set_withdrawal_policy(actor=admin, lifetime=timedelta(seconds=90))
    assert returned == service.withdrawal_policy()
    assert returned.lifetime == timedelta(seconds=90)
