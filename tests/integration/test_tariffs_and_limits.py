"""Tariffs and limits through the services, on SQLite and PostgreSQL.

A tariff's fee is charged on top of the amount of every kind of movement and lands in
`fees:<currency>`: a transfer splits the sender's debit between the recipient and the fees; a bill
or airtime fee is held with the amount and kept only when the provider approves; a card top-up
charges the card amount + fee and credits the wallet the amount; a withdrawal holds its fee and
keeps it when the cash is out. Limits count amounts (never fees) per family, per UTC day and
calendar month, per KYC tier; what is refused changes nothing.

Every figure below is computed by hand; after every test the ledger verifies and sums to zero,
the holds account holds exactly what pending payments and withdrawals hold, and the fees account
exactly the fees of the completed withdrawals, succeeded payments and transfers.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.db.engine import make_engine
from mwallet.core.db.migrate import HEAD, MIGRATIONS, ensure_schema
from mwallet.core.domain.ledger import fees_account_code, holds_account_code
from mwallet.core.domain.money import Money
from mwallet.core.domain.payments import (
    Payment,
    PaymentState,
    Product,
    luhn_digit,
    payable_account_code,
)
from mwallet.core.domain.roles import Role
from mwallet.core.domain.tariffs import (
    Allowance,
    Band,
    Limit,
    LimitFamily,
    Movement,
    Period,
    Tariff,
    Tier,
    flat,
)
from mwallet.core.domain.transfers import Transfer
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Channel, WithdrawalState
from mwallet.core.errors import (
    ConcurrencyConflict,
    CurrencyMismatch,
    DatabaseBusy,
    InsufficientFunds,
    InvalidInput,
    LimitReached,
    PermissionDenied,
    UserNotFound,
    WalletError,
    WithdrawalLimitReached,
)
from mwallet.core.services.wallet_service import WalletService
from tests.conftest import empty_database
from tests.integration.cash_books import account_balance
from tests.integration.withdrawal_support import (
    PIN,
    code_of,
    new_agent,
    new_atm,
)
from tests.support import (
    OPERATOR,
    PASSWORD,
    make_admin,
    open_wallet,
    register,
)

FEES = fees_account_code("USD")
HOLDS = holds_account_code("USD")
CARD_SOURCE = "funding:card:USD"
WAIT = 60.0  # seconds: an upper bound for a thread, never a pause
THREADS = 8


# --- helpers -------------------------------------------------------------------------------------
def key() -> str:
    return f"k-{uuid.uuid4().hex}"


def usd(amount: str) -> Money:
    return Money.parse(amount, "USD", allow_zero=True)


def water(prefix: str = "1234", n: int = 567) -> str:
    """An Águas da Região de Maputo reference; its first four digits choose the sandbox's answer."""
    body = f"{prefix}{n:03d}"
    return body + luhn_digit(body)


def card(prefix: str = "4111") -> str:
    body = f"{prefix}11111111111"
    return body + luhn_digit(body)


def customer(service: WalletService, funds: str = "500", name: str = "Ana Machava") -> Principal:
    person = register(service, name=name)
    if funds != "0":
        service.topup(person, amount=usd(funds), source="sandbox", idempotency_key=key())
    return person


def send(
    service: WalletService,
    sender: Principal,
    to: Principal,
    amount: str,
    *,
    idempotency_key: str | None = None,
) -> Transfer:
    return service.transfer(
        sender, to_phone=to.phone, amount=usd(amount), note=None,
        idempotency_key=idempotency_key or key(),
    )  # fmt: skip


def pay(
    service: WalletService,
    person: Principal,
    amount: str,
    reference: str | None = None,
    *,
    idempotency_key: str | None = None,
) -> Payment:
    return service.pay_bill(
        person, biller_id="aguas-maputo", reference=reference or water(), amount=usd(amount),
        idempotency_key=idempotency_key or key(),
    )  # fmt: skip


def top_up(
    service: WalletService,
    person: Principal,
    amount: str,
    number: str | None = None,
    *,
    idempotency_key: str | None = None,
) -> Payment:
    return service.top_up_from(
        person, source="card", reference=number or card(), amount=usd(amount),
        idempotency_key=idempotency_key or key(),
    )  # fmt: skip


def withdraw(
    service: WalletService,
    person: Principal,
    amount: str,
    *,
    channel: Channel = Channel.ATM,
    idempotency_key: str | None = None,
) -> Any:
    return service.request_withdrawal(
        person, amount=usd(amount), channel=channel, pin=PIN,
        idempotency_key=idempotency_key or key(),
    )  # fmt: skip


def shown(service: WalletService, person: Principal) -> tuple[str, str]:
    """(balance, available): the balance counts what is held, available not."""
    found = service.balance(person)
    return found.balance.to_decimal_string(), found.available.to_decimal_string()


def cents(wallet: Wallet, code: str) -> int:
    return account_balance(wallet, code)


def wallet_cents(wallet: Wallet, person: Principal) -> int:
    return cents(wallet, f"wallet:{person.user_id}")


def postings_of(wallet: Wallet, entry_id: str) -> dict[str, int]:
    with wallet.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT a.code, p.amount FROM postings p JOIN accounts a ON a.id = p.account_id "
                "WHERE p.entry_id = :entry"
            ),
            {"entry": entry_id},
        ).all()
    return {str(code): int(amount) for code, amount in rows}


def top_up_entry(wallet: Wallet, payment_id: str) -> str:
    """A card top-up's entry: made when the provider approved, with an id of that time; its memo
    names the payment."""
    with wallet.engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT id FROM journal_entries WHERE memo = :memo"),
                {"memo": f"top-up {payment_id}"},
            ).scalar_one()
        )


FOOTPRINT_TABLES = (
    "journal_entries",
    "postings",
    "transfers",
    "payments",
    "withdrawals",
    "outbox",
    # Keys that stand for something done (a refusal may keep its answer under its key).
    "idempotency_keys WHERE refusal_code IS NULL",
)


def footprint(wallet: Wallet) -> dict[str, Any]:
    """What a refused movement must leave as it was: rows of every money table, every balance."""
    with wallet.engine.connect() as conn:
        counts = {
            table: int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in FOOTPRINT_TABLES
        }
        balances = {
            str(code): int(balance)
            for code, balance in conn.execute(text("SELECT code, balance FROM accounts")).all()
        }
    return {"counts": counts, "balances": balances}


def audit_rows(service: WalletService, action: str) -> list[Any]:
    return [one for one in service.audit_log(actor=OPERATOR, limit=1000) if one.action == action]


def allowance(
    service: WalletService, person: Principal, family: LimitFamily
) -> tuple[tuple[str | None, str, str | None], ...]:
    """(limit, used, left) per period (day, month) as decimal strings, None: no limit."""
    _, families = service.my_limits(person)

    def text_of(money: Money | None) -> str | None:
        return None if money is None else money.to_decimal_string()

    return tuple(
        (text_of(one.limit), one.used.to_decimal_string(), text_of(one.left))
        for one in families[family]
    )


def check_books(wallet: Wallet) -> None:
    report = wallet.service.verify_ledger(actor=OPERATOR)
    assert report.ok, report.problems
    assert all(total == 0 for total in report.totals_by_currency.values())
    with wallet.engine.connect() as conn:
        held = conn.execute(
            text(
                "SELECT (SELECT coalesce(sum(amount + fee), 0) FROM payments"
                " WHERE state IN ('pending', 'unknown') AND product <> 'topup')"
                " + (SELECT coalesce(sum(amount + fee), 0) FROM withdrawals"
                " WHERE state IN ('pending', 'authorized', 'dispensing'))"
            )
        ).scalar_one()
        earned = conn.execute(
            text(
                "SELECT (SELECT coalesce(sum(fee), 0) FROM withdrawals WHERE state = 'completed')"
                " + (SELECT coalesce(sum(fee), 0) FROM payments WHERE state = 'succeeded')"
                " + (SELECT coalesce(sum(fee), 0) FROM transfers)"
            )
        ).scalar_one()
        charged = conn.execute(
            text(
                "SELECT coalesce(sum(amount + fee), 0) FROM payments"
                " WHERE product = 'topup' AND biller_id = 'card' AND state = 'succeeded'"
            )
        ).scalar_one()
    assert cents(wallet, HOLDS) == int(held)
    assert cents(wallet, FEES) == int(earned)
    assert -cents(wallet, CARD_SOURCE) == int(charged)  # the card paid amount + fee, once


@pytest.fixture(autouse=True)
def books_stay_sound(request: pytest.FixtureRequest) -> Iterator[None]:
    if "wallet" not in request.fixturenames:  # the migration's tests open no wallet
        yield
        return
    wallet = request.getfixturevalue("wallet")
    yield
    check_books(wallet)


@pytest.fixture
def admin(wallet: Wallet) -> Principal:
    return make_admin(wallet.service)


def set_tariff(
    service: WalletService, admin: Principal, movement: Movement, tariff: Tariff | None
) -> None:
    service.set_tariff(actor=admin, movement=movement, tariff=tariff)


def set_limit(
    service: WalletService,
    admin: Principal,
    family: LimitFamily,
    *,
    tier: Tier = Tier.BASIC,
    daily: str | None = None,
    monthly: str | None = None,
) -> Limit:
    return service.set_limit(
        actor=admin, family=family, tier=tier,
        daily=None if daily is None else usd(daily),
        monthly=None if monthly is None else usd(monthly),
    )  # fmt: skip


def at(clock: FixedClock, when: datetime) -> None:
    """Move the fixed clock forward to `when` (UTC)."""
    assert when >= clock.now()
    clock.advance(when - clock.now())


# --- fees ----------------------------------------------------------------------------------------
# Up to 100.00: 0.50 flat; above: 1 %, at most 5.00.
TRANSFER_TARIFF = Tariff((Band(10_000, 50, 0), Band(None, 0, 100)), max_minor=500)


def test_a_transfer_fee_is_paid_by_the_sender_and_the_recipient_gets_the_amount(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    set_tariff(service, admin, Movement.TRANSFER, TRANSFER_TARIFF)
    ana, bruno = customer(service, "1000"), customer(service, "0", "Bruno Tembe")

    first = send(service, ana, bruno, "100")  # the top of the first band
    assert (first.amount, first.fee) == (usd("100"), usd("0.50"))
    assert postings_of(wallet, first.id) == {
        f"wallet:{ana.user_id}": -10_050,
        f"wallet:{bruno.user_id}": 10_000,
        FEES: 50,
    }
    second = send(service, ana, bruno, "250.50")  # 1 % of 250.50 = 2.505, rounded half up
    assert second.fee == usd("2.51")
    third = send(service, ana, bruno, "600")  # 1 % is 6.00: at most 5.00
    assert third.fee == usd("5.00")
    # 1000 - 100.50 - 253.01 - 605.00
    assert shown(service, ana) == ("41.49", "41.49")
    assert shown(service, bruno) == ("950.50", "950.50")
    assert cents(wallet, FEES) == 50 + 251 + 500
    assert service.verify_ledger(actor=OPERATOR).ok

    # Enough for the amount but not the fee: refused, nothing moves.
    before = footprint(wallet)
    with pytest.raises(InsufficientFunds):
        send(service, ana, bruno, "41.49")
    assert footprint(wallet) == before
    last = send(service, ana, bruno, "40.99")  # 40.99 + 0.50: all she has
    assert last.fee == usd("0.50")
    assert shown(service, ana) == ("0.00", "0.00")
    assert shown(service, bruno) == ("991.49", "991.49")
    assert cents(wallet, FEES) == 851
    with wallet.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT fee FROM transfers WHERE id = :id"), {"id": third.id}
        ).scalar_one()
    assert int(stored) == 500


def test_a_tariff_change_applies_to_the_next_transfer_not_to_a_replay(
    wallet: Wallet, admin: Principal, db_url: str, clock: FixedClock
) -> None:
    service = wallet.service
    ana, bruno = customer(service, "100"), customer(service, "0", "Bruno Tembe")
    same = key()
    free = send(service, ana, bruno, "10", idempotency_key=same)
    assert free.fee == usd("0")
    assert cents(wallet, FEES) == 0

    with open_wallet(db_url, clock) as other:  # another process changes the tariff
        set_tariff(other.service, admin, Movement.TRANSFER, flat(75))
    charged = send(service, ana, bruno, "10")
    assert charged.fee == usd("0.75")
    again = send(service, ana, bruno, "10", idempotency_key=same)  # the first one, as it was
    assert again == free
    assert shown(service, ana) == ("79.25", "79.25")  # 100 - 10 - 10.75

    set_tariff(service, admin, Movement.TRANSFER, None)  # free again
    assert service.tariffs(ana) == {}
    assert send(service, ana, bruno, "10").fee == usd("0")
    assert shown(service, ana) == ("69.25", "69.25")
    assert shown(service, bruno) == ("30.00", "30.00")
    assert cents(wallet, FEES) == 75


@pytest.mark.parametrize(
    ("prefix", "state", "balance", "available", "payable"),
    [
        ("1234", PaymentState.SUCCEEDED, "69.45", "69.45", 3000),
        ("9991", PaymentState.FAILED, "100.00", "100.00", 0),
    ],
    ids=["approved", "declined"],
)
def test_a_bill_fee_is_held_with_the_amount_and_kept_only_when_paid(
    wallet: Wallet,
    admin: Principal,
    *,
    prefix: str,
    state: PaymentState,
    balance: str,
    available: str,
    payable: int,
) -> None:
    service = wallet.service
    # 0.25 + 1 %: 30.00 costs 0.55.
    set_tariff(service, admin, Movement.BILL, Tariff((Band(None, 25, 100),)))
    ana = customer(service, "100")
    done = pay(service, ana, "30", water(prefix))
    assert (done.state, done.amount, done.fee, done.held) == (
        state,
        usd("30"),
        usd("0.55"),
        usd("30.55"),
    )
    assert shown(service, ana) == (balance, available)
    assert cents(wallet, payable_account_code("aguas-maputo")) == payable
    assert cents(wallet, FEES) == (55 if state is PaymentState.SUCCEEDED else 0)
    assert cents(wallet, HOLDS) == 0
    assert service.verify_ledger(actor=OPERATOR).ok


@pytest.mark.parametrize(
    ("prefix", "final", "after", "fees"),
    [("9992", PaymentState.SUCCEEDED, "69.45", 55), ("9993", PaymentState.FAILED, "100.00", 0)],
    ids=["late-approved", "late-declined"],
)
def test_an_unknown_bill_holds_its_fee_until_reconciled(
    wallet: Wallet,
    admin: Principal,
    clock: FixedClock,
    *,
    prefix: str,
    final: PaymentState,
    after: str,
    fees: int,
) -> None:
    service = wallet.service
    set_tariff(service, admin, Movement.BILL, Tariff((Band(None, 25, 100),)))
    ana = customer(service, "100")
    unknown = pay(service, ana, "30", water(prefix))
    assert (unknown.state, unknown.fee) == (PaymentState.UNKNOWN, usd("0.55"))
    assert shown(service, ana) == ("100.00", "69.45")
    assert (cents(wallet, HOLDS), cents(wallet, FEES)) == (3055, 0)
    set_tariff(service, admin, Movement.BILL, flat(999))  # a later tariff changes nothing held

    clock.advance(timedelta(seconds=1))
    service.reconcile_payments(actor=admin)
    settled, _ = service.payment(ana, payment_id=unknown.id)
    assert (settled.state, settled.fee) == (final, usd("0.55"))
    assert shown(service, ana) == (after, after)
    assert (cents(wallet, HOLDS), cents(wallet, FEES)) == (0, fees)
    assert service.verify_ledger(actor=OPERATOR).ok


def test_an_airtime_fee_is_kept_on_success_and_returned_on_a_decline(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    set_tariff(service, admin, Movement.AIRTIME, flat(10))
    ana = customer(service, "500")
    bought = service.pay_airtime(
        ana, phone="+258841110001", amount=usd("50"), idempotency_key=key()
    )
    assert (bought.state, bought.fee) == (PaymentState.SUCCEEDED, usd("0.10"))
    assert shown(service, ana) == ("449.90", "449.90")
    declined = service.pay_airtime(
        ana, phone="+258841119991", amount=usd("20"), idempotency_key=key()
    )
    assert (declined.state, declined.fee) == (PaymentState.FAILED, usd("0.10"))
    assert shown(service, ana) == ("449.90", "449.90")
    assert cents(wallet, FEES) == 10
    assert cents(wallet, payable_account_code(bought.biller_id)) == 5000


def test_a_card_top_up_charges_the_card_the_fee_and_credits_the_amount(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    # 2 %, at least 0.50.
    set_tariff(service, admin, Movement.TOPUP, Tariff((Band(None, 0, 200),), min_minor=50))
    ana = register(service, name="Ana Machava")

    done = top_up(service, ana, "40")
    assert (done.product, done.state) == (Product.TOPUP, PaymentState.SUCCEEDED)
    assert (done.amount, done.fee, done.provider_amount) == (usd("40"), usd("0.80"), usd("40.80"))
    assert postings_of(wallet, top_up_entry(wallet, done.id)) == {
        CARD_SOURCE: -4080,
        f"wallet:{ana.user_id}": 4000,
        FEES: 80,
    }
    small = top_up(service, ana, "10")  # 2 % is 0.20: at least 0.50
    assert (small.fee, small.provider_amount) == (usd("0.50"), usd("10.50"))
    assert shown(service, ana) == ("50.00", "50.00")
    assert (cents(wallet, CARD_SOURCE), cents(wallet, FEES)) == (-5130, 130)

    declined = top_up(service, ana, "40", card("9991"))
    assert declined.state is PaymentState.FAILED
    late = top_up(service, ana, "20", card("9992"))
    assert late.state is PaymentState.UNKNOWN
    assert shown(service, ana) == ("50.00", "50.00")  # nothing credited, nothing held
    assert (cents(wallet, CARD_SOURCE), cents(wallet, FEES)) == (-5130, 130)

    clock.advance(timedelta(seconds=1))
    service.reconcile_payments(actor=admin)
    assert service.payment(ana, payment_id=late.id)[0].state is PaymentState.SUCCEEDED
    assert shown(service, ana) == ("70.00", "70.00")
    assert (cents(wallet, CARD_SOURCE), cents(wallet, FEES)) == (-7180, 180)  # + 20.50, + 0.50


def test_a_withdrawal_fee_comes_from_its_channels_tariff_and_is_kept_as_issued(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    # At an ATM 1 %, at least 1.00; at an agent 0.75.
    set_tariff(service, admin, Movement.WITHDRAWAL_ATM, Tariff((Band(None, 0, 100),), 100))
    set_tariff(service, admin, Movement.WITHDRAWAL_AGENT, flat(75))
    ana = customer(service, "1000")

    small = withdraw(service, ana, "60")
    big = withdraw(service, ana, "500")
    at_agent = withdraw(service, ana, "40", channel=Channel.AGENT)
    assert [one.withdrawal.fee for one in (small, big, at_agent)] == [
        usd("1.00"),
        usd("5.00"),
        usd("0.75"),
    ]
    assert shown(service, ana) == ("1000.00", "393.25")  # 1000 - 61 - 505 - 40.75

    # A new tariff applies to the next withdrawal, not to those already issued.
    set_tariff(service, admin, Movement.WITHDRAWAL_ATM, flat(300))
    service.redeem_withdrawal(atm.principal, code=code_of(small), pin=PIN)
    done = service.complete_withdrawal(atm.principal, withdrawal_id=small.withdrawal.id)
    assert (done.state, done.fee) == (WithdrawalState.COMPLETED, usd("1.00"))
    assert cents(wallet, FEES) == 100
    assert withdraw(service, ana, "10").withdrawal.fee == usd("3.00")
    # 1000 - 61 paid out; held: 505 + 40.75 + 13
    assert shown(service, ana) == ("939.00", "380.25")
    service.cancel_withdrawal(ana, withdrawal_id=big.withdrawal.id)
    assert shown(service, ana) == ("939.00", "885.25")
    assert cents(wallet, FEES) == 100


# --- limits: the boundaries ----------------------------------------------------------------------
def test_the_daily_transfer_limit_passes_at_the_limit_and_refuses_one_cent_more(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    set_tariff(service, admin, Movement.TRANSFER, flat(100))  # fees never count
    set_limit(service, admin, LimitFamily.TRANSFER, daily="100")
    ana, bruno = customer(service, "500"), customer(service, "0", "Bruno Tembe")
    send(service, ana, bruno, "60")
    send(service, ana, bruno, "40")  # exactly 100.00 today, 102.00 with the fees
    assert allowance(service, ana, LimitFamily.TRANSFER) == (
        ("100.00", "100.00", "0.00"),
        (None, "100.00", None),
    )

    before = footprint(wallet)
    same = key()
    with pytest.raises(LimitReached, match=r"daily transfer limit of 100\.00 USD \(0\.00 USD left"):
        send(service, ana, bruno, "0.01", idempotency_key=same)
    assert footprint(wallet) == before
    assert shown(service, ana) == ("398.00", "398.00")

    # Still today at 23:59:59.999999; the next day starts at midnight UTC.
    at(clock, datetime(2026, 1, 15, 23, 59, 59, 999_999, tzinfo=UTC))
    with pytest.raises(LimitReached):
        send(service, ana, bruno, "0.01", idempotency_key=same)
    assert footprint(wallet) == before
    at(clock, datetime(2026, 1, 16, tzinfo=UTC))
    assert allowance(service, ana, LimitFamily.TRANSFER)[0] == ("100.00", "0.00", "100.00")
    # The key keeps its refusal, on the next day too; a new request goes through.
    with pytest.raises(LimitReached, match=r"\(0\.00 USD left"):
        send(service, ana, bruno, "0.01", idempotency_key=same)
    done = send(service, ana, bruno, "0.01")
    assert (done.amount, done.fee) == (usd("0.01"), usd("1.00"))
    assert shown(service, ana) == ("396.99", "396.99")
    assert shown(service, bruno) == ("100.01", "100.01")


def test_the_monthly_limit_spans_days_and_resets_on_the_first(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    set_limit(service, admin, LimitFamily.TRANSFER, daily="100", monthly="150")
    ana, bruno = customer(service, "1000"), customer(service, "0", "Bruno Tembe")
    send(service, ana, bruno, "100")
    at(clock, datetime(2026, 1, 16, 8, tzinfo=UTC))
    with pytest.raises(LimitReached, match=r"monthly transfer limit of 150\.00 USD \(50\.00"):
        send(service, ana, bruno, "50.01")
    send(service, ana, bruno, "50")  # 150.00 this month: the limit itself
    assert allowance(service, ana, LimitFamily.TRANSFER) == (
        ("100.00", "50.00", "50.00"),
        ("150.00", "150.00", "0.00"),
    )
    quote = service.quote(ana, Movement.TRANSFER, usd("0.01"))
    assert not quote.within_limits

    at(clock, datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC))
    before = footprint(wallet)
    with pytest.raises(LimitReached, match="monthly"):
        send(service, ana, bruno, "0.01")
    assert footprint(wallet) == before
    at(clock, datetime(2026, 2, 1, tzinfo=UTC))
    send(service, ana, bruno, "100")
    with pytest.raises(LimitReached, match="daily"):
        send(service, ana, bruno, "0.01")
    assert allowance(service, ana, LimitFamily.TRANSFER) == (
        ("100.00", "100.00", "0.00"),
        ("150.00", "100.00", "50.00"),
    )
    assert shown(service, ana) == ("750.00", "750.00")


def test_withdrawal_limits_count_what_is_held_or_out_not_what_came_back(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    atm = new_atm(service, admin, notes={5000: 40})
    set_limit(service, admin, LimitFamily.WITHDRAWAL, monthly="2500")  # daily: 2000 by default
    set_tariff(service, admin, Movement.WITHDRAWAL_ATM, flat(150))
    ana = customer(service, "5000")
    paid = withdraw(service, ana, "1000")
    service.redeem_withdrawal(atm.principal, code=code_of(paid), pin=PIN)
    service.complete_withdrawal(atm.principal, withdrawal_id=paid.withdrawal.id)
    cancelled = withdraw(service, ana, "500")
    service.cancel_withdrawal(ana, withdrawal_id=cancelled.withdrawal.id)
    withdraw(service, ana, "500")
    clock.advance(timedelta(minutes=30))
    assert service.expire_withdrawals(actor=admin) == 1
    assert [one.state for one in service.list_withdrawals(ana)] == [
        WithdrawalState.EXPIRED,
        WithdrawalState.CANCELLED,
        WithdrawalState.COMPLETED,
    ]
    # Late in the day, so that it is still held (30 minutes) when the next day starts.
    at(clock, datetime(2026, 1, 15, 23, 45, tzinfo=UTC))
    held = withdraw(service, ana, "1000")  # 2000.00 today: paid out + held
    with pytest.raises(WithdrawalLimitReached, match=r"daily withdrawal limit of 2,000\.00"):
        withdraw(service, ana, "1")
    assert allowance(service, ana, LimitFamily.WITHDRAWAL) == (
        ("2000.00", "2000.00", "0.00"),
        ("2500.00", "2000.00", "500.00"),
    )

    at(clock, datetime(2026, 1, 16, tzinfo=UTC))
    before = footprint(wallet)
    with pytest.raises(WithdrawalLimitReached, match=r"monthly withdrawal limit of 2,500\.00"):
        withdraw(service, ana, "500.01")
    assert footprint(wallet) == before
    withdraw(service, ana, "500")
    service.cancel_withdrawal(ana, withdrawal_id=held.withdrawal.id)  # 1000 back in the month
    withdraw(service, ana, "1000")
    # 5000 - 1001.50 paid out; held 501.50 + 1001.50
    assert shown(service, ana) == ("3998.50", "2495.50")
    assert issubclass(WithdrawalLimitReached, LimitReached)


def test_a_verified_user_has_the_verified_tiers_limits(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    set_limit(service, admin, LimitFamily.TRANSFER, daily="100")
    set_limit(service, admin, LimitFamily.TRANSFER, tier=Tier.VERIFIED, daily="1000")
    ana, bruno = customer(service, "2000"), customer(service, "0", "Bruno Tembe")
    with pytest.raises(LimitReached, match=r"100\.00"):
        send(service, ana, bruno, "100.01")
    assert service.quote(ana, Movement.TRANSFER, usd("1")).tier is Tier.BASIC

    changed = service.set_tier(actor=admin, phone=ana.phone, tier=Tier.VERIFIED)
    assert (changed.id, changed.tier) == (ana.user_id, Tier.VERIFIED)
    assert service.quote(ana, Movement.TRANSFER, usd("1")).tier is Tier.VERIFIED
    send(service, ana, bruno, "100.01")
    send(service, ana, bruno, "899.99")  # 1000.00 today
    with pytest.raises(LimitReached, match=r"1,000\.00"):
        send(service, ana, bruno, "0.01")
    assert service.my_limits(ana)[0] is Tier.VERIFIED

    service.set_tier(actor=admin, phone=ana.phone, tier=Tier.BASIC)  # back: over the basic limit
    assert allowance(service, ana, LimitFamily.TRANSFER)[0] == ("100.00", "1000.00", "0.00")
    with pytest.raises(LimitReached, match=r"100\.00 USD \(0\.00 USD left"):
        send(service, ana, bruno, "0.01")
    assert shown(service, ana) == ("1000.00", "1000.00")
    # Bruno is still basic, and his limits are his own.
    assert service.quote(bruno, Movement.TRANSFER, usd("1")).tier is Tier.BASIC
    send(service, bruno, ana, "100")


def test_failed_payments_do_not_count_and_each_product_has_its_own_limit(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    set_limit(service, admin, LimitFamily.BILL, daily="50")
    set_limit(service, admin, LimitFamily.AIRTIME, daily="20")
    set_limit(service, admin, LimitFamily.TOPUP, daily="100")
    ana = customer(service, "500")

    assert pay(service, ana, "40", water("9991")).state is PaymentState.FAILED
    unknown = pay(service, ana, "20", water("9993"))  # held: it counts until it fails
    assert unknown.state is PaymentState.UNKNOWN
    before = footprint(wallet)
    with pytest.raises(LimitReached, match=r"daily bill payment limit of 50\.00 USD \(30\.00"):
        pay(service, ana, "30.01")
    assert footprint(wallet) == before
    clock.advance(timedelta(seconds=1))
    service.reconcile_payments(actor=admin)  # declined after all: no longer counted
    assert pay(service, ana, "50").state is PaymentState.SUCCEEDED
    with pytest.raises(LimitReached, match="bill payment"):
        pay(service, ana, "1")
    assert allowance(service, ana, LimitFamily.BILL)[0] == ("50.00", "50.00", "0.00")

    # Airtime and top-ups are limits of their own.
    service.pay_airtime(ana, phone="+258841119991", amount=usd("20"), idempotency_key=key())
    assert (
        service.pay_airtime(
            ana, phone="+258841110001", amount=usd("20"), idempotency_key=key()
        ).state
        is PaymentState.SUCCEEDED
    )
    with pytest.raises(LimitReached, match="daily airtime limit"):
        service.pay_airtime(ana, phone="+258841110001", amount=usd("10"), idempotency_key=key())
    assert top_up(service, ana, "100", card("9991")).state is PaymentState.FAILED
    assert top_up(service, ana, "100").state is PaymentState.SUCCEEDED
    before = footprint(wallet)
    with pytest.raises(LimitReached, match=r"daily top-up limit of 100\.00"):
        top_up(service, ana, "1")
    assert footprint(wallet) == before
    # 500 - 50 - 20 + 100; the sandbox top-up (a test source) is no card top-up.
    assert shown(service, ana) == ("530.00", "530.00")
    assert allowance(service, ana, LimitFamily.TRANSFER) == ((None, "0.00", None),) * 2


def test_an_agents_cash_in_is_neither_charged_nor_counted_as_a_transfer(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    set_tariff(service, admin, Movement.TRANSFER, flat(100))
    set_limit(service, admin, LimitFamily.TRANSFER, daily="50")
    agent = new_agent(service, admin, float_="1000")
    ana = customer(service, "0")

    done = service.cash_in(
        agent.principal, to_phone=ana.phone, amount=usd("300"), idempotency_key=key()
    )
    assert done.fee == usd("0")
    assert shown(service, agent.principal) == ("700.00", "700.00")
    assert shown(service, ana) == ("300.00", "300.00")
    assert allowance(service, agent.principal, LimitFamily.TRANSFER)[0] == (
        "50.00",
        "0.00",
        "50.00",
    )
    # The agent's own transfer is a transfer: charged and counted.
    sent = send(service, agent.principal, ana, "50")
    assert sent.fee == usd("1.00")
    with pytest.raises(LimitReached):
        send(service, agent.principal, ana, "0.01")
    assert shown(service, agent.principal) == ("649.00", "649.00")
    assert cents(wallet, FEES) == 100


def test_an_idempotent_replay_is_not_counted_twice(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    set_limit(service, admin, LimitFamily.TRANSFER, daily="100")
    set_limit(service, admin, LimitFamily.BILL, daily="40")
    ana, bruno = customer(service, "3000"), customer(service, "0", "Bruno Tembe")

    transfer_key, bill_key, withdrawal_key = key(), key(), key()
    sent = send(service, ana, bruno, "100", idempotency_key=transfer_key)
    paid = pay(service, ana, "40", idempotency_key=bill_key)
    issued = withdraw(service, ana, "1000", idempotency_key=withdrawal_key)
    withdraw(service, ana, "1000")  # the default 2000.00 a day, reached
    before = footprint(wallet)

    assert send(service, ana, bruno, "100", idempotency_key=transfer_key) == sent
    assert pay(service, ana, "40", idempotency_key=bill_key) == paid
    again = withdraw(service, ana, "1000", idempotency_key=withdrawal_key)
    assert again.withdrawal == issued.withdrawal
    assert footprint(wallet) == before
    assert allowance(service, ana, LimitFamily.TRANSFER)[0] == ("100.00", "100.00", "0.00")
    assert allowance(service, ana, LimitFamily.BILL)[0] == ("40.00", "40.00", "0.00")
    assert allowance(service, ana, LimitFamily.WITHDRAWAL)[0] == ("2000.00", "2000.00", "0.00")
    assert shown(service, ana) == ("2860.00", "860.00")


# --- what a user reads ---------------------------------------------------------------------------
def test_quote_and_my_limits_show_the_fee_and_whats_left(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    set_tariff(service, admin, Movement.TRANSFER, TRANSFER_TARIFF)
    set_limit(service, admin, LimitFamily.TRANSFER, daily="300", monthly="1000")
    ana, bruno = customer(service, "1000"), customer(service, "0", "Bruno Tembe")
    send(service, ana, bruno, "200")

    quote = service.quote(ana, Movement.TRANSFER, usd("100"))
    assert (quote.movement, quote.amount, quote.fee, quote.total, quote.tier) == (
        Movement.TRANSFER,
        usd("100"),
        usd("0.50"),
        usd("100.50"),
        Tier.BASIC,
    )
    assert quote.allowances == (
        Allowance(Period.DAY, usd("300"), usd("200")),
        Allowance(Period.MONTH, usd("1000"), usd("200")),
    )
    assert [one.left for one in quote.allowances] == [usd("100"), usd("800")]
    assert quote.within_limits
    over = service.quote(ana, Movement.TRANSFER, usd("100.01"))
    assert (over.fee, over.within_limits) == (usd("1.00"), False)
    # A quote moves nothing.
    assert shown(service, ana) == ("798.00", "798.00")  # 1000 - 200 - 1 % of 200

    free = service.quote(ana, Movement.WITHDRAWAL_AGENT, usd("60"))
    assert (free.fee, free.total) == (usd("0"), usd("60"))
    assert free.allowances == (
        Allowance(Period.DAY, usd("2000"), usd("0")),
        Allowance(Period.MONTH, None, usd("0")),
    )
    assert free.allowances[1].left is None

    tier, families = service.my_limits(ana)
    assert tier is Tier.BASIC
    assert set(families) == set(LimitFamily)
    assert families[LimitFamily.TRANSFER] == quote.allowances
    assert families[LimitFamily.WITHDRAWAL] == free.allowances
    for family in (LimitFamily.BILL, LimitFamily.AIRTIME, LimitFamily.TOPUP):
        assert families[family] == (
            Allowance(Period.DAY, None, usd("0")),
            Allowance(Period.MONTH, None, usd("0")),
        )
    # Bruno received: nothing of his is used.
    assert allowance(service, bruno, LimitFamily.TRANSFER)[0] == ("300.00", "0.00", "300.00")

    assert service.tariffs(ana) == {Movement.TRANSFER: TRANSFER_TARIFF}
    assert {(one.family, one.tier): (one.daily_minor, one.monthly_minor) for one in
            service.limits(ana)} == {
        **{(family, tier): (None, None) for family in LimitFamily for tier in Tier},
        (LimitFamily.TRANSFER, Tier.BASIC): (30_000, 100_000),
        (LimitFamily.WITHDRAWAL, Tier.BASIC): (200_000, None),
        (LimitFamily.WITHDRAWAL, Tier.VERIFIED): (200_000, None),
    }  # fmt: skip


# --- what admins set -----------------------------------------------------------------------------
def test_a_limit_keeps_what_is_not_given_and_loses_what_is_unlimited(
    wallet: Wallet, admin: Principal, db_url: str
) -> None:
    service = wallet.service
    family = LimitFamily.BILL
    assert set_limit(service, admin, family, daily="100") == Limit(family, Tier.BASIC, 10_000, None)
    assert set_limit(service, admin, family, monthly="500") == Limit(
        family, Tier.BASIC, 10_000, 50_000
    )
    unlimited = service.set_limit(
        actor=admin, family=family, tier=Tier.BASIC, unlimited=frozenset({Period.DAY})
    )
    assert unlimited == Limit(family, Tier.BASIC, None, 50_000)
    # The default withdrawal limit is the one kept when only the month is set.
    assert set_limit(service, admin, LimitFamily.WITHDRAWAL, monthly="9000") == Limit(
        LimitFamily.WITHDRAWAL, Tier.BASIC, 200_000, 900_000
    )
    with open_wallet(db_url) as fresh:
        found = {(one.family, one.tier): one for one in fresh.service.limits(admin)}
    assert found[(family, Tier.BASIC)] == unlimited
    assert found[(family, Tier.VERIFIED)] == Limit(family, Tier.VERIFIED, None, None)


@pytest.mark.parametrize(
    ("attempt", "error", "said"),
    [
        (
            lambda s, a: s.set_limit(
                actor=a, family=LimitFamily.BILL, tier=Tier.BASIC, daily=usd("600")
            ),
            InvalidInput,
            "the daily limit cannot be above the monthly one",
        ),
        (
            lambda s, a: s.set_limit(
                actor=a, family=LimitFamily.BILL, tier=Tier.BASIC, monthly=usd("99.99")
            ),
            InvalidInput,
            "the daily limit cannot be above the monthly one",
        ),
        (
            lambda s, a: s.set_limit(
                actor=a, family=LimitFamily.BILL, tier=Tier.BASIC, daily=usd("0")
            ),
            InvalidInput,
            "a limit is a positive amount",
        ),
        (
            lambda s, a: s.set_limit(
                actor=a, family=LimitFamily.BILL, tier=Tier.BASIC, daily=Money(100, "EUR")
            ),
            CurrencyMismatch,
            "USD",
        ),
        (
            lambda s, a: s.set_tariff(
                actor=a, movement=Movement.BILL, tariff=Tariff((Band(None, 0, 10_001),))
            ),
            InvalidInput,
            "a percentage is between 0 and 100",
        ),
        (
            lambda s, a: s.set_tariff(
                actor=a, movement=Movement.BILL, tariff=Tariff((Band(None, 100),), 200, 100)
            ),
            InvalidInput,
            "the maximum fee is at least the minimum",
        ),
        (
            lambda s, a: s.set_tariff(
                actor=a, movement=Movement.BILL, tariff=Tariff((Band(5000, 10), Band(5000, 20)))
            ),
            InvalidInput,
            "the last band must cover any amount",
        ),
        (
            lambda s, a: s.set_tariff(
                actor=a,
                movement=Movement.BILL,
                tariff=Tariff((Band(5000, 10), Band(4000, 20), Band(None, 30))),
            ),
            InvalidInput,
            "strictly increasing",
        ),
        (
            lambda s, a: s.set_tier(actor=a, phone="+258849999999", tier=Tier.VERIFIED),
            UserNotFound,
            "+258849999999",
        ),
    ],
    ids=[
        "daily-above-monthly",
        "monthly-below-daily",
        "zero",
        "currency",
        "percent",
        "min-above-max",
        "no-last-band",
        "bands-out-of-order",
        "unknown-user",
    ],
)
def test_a_tariff_or_limit_that_makes_no_sense_is_refused_and_nothing_is_stored(
    wallet: Wallet,
    admin: Principal,
    *,
    attempt: Callable[[WalletService, Principal], object],
    error: type[Exception],
    said: str,
) -> None:
    service = wallet.service
    set_tariff(service, admin, Movement.BILL, flat(25))
    set_limit(service, admin, LimitFamily.BILL, daily="100", monthly="500")
    tariffs, limits = service.tariffs(admin), service.limits(admin)
    audited = len(service.audit_log(actor=OPERATOR, limit=1000))
    with pytest.raises(error, match=said.replace("+", r"\+")):
        attempt(service, admin)
    assert (service.tariffs(admin), service.limits(admin)) == (tariffs, limits)
    assert len(service.audit_log(actor=OPERATOR, limit=1000)) == audited


def test_a_tariff_without_bands_is_refused_not_taken_for_free(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    set_tariff(service, admin, Movement.BILL, flat(25))
    with pytest.raises(InvalidInput, match="between 1 and 10 bands"):
        service.set_tariff(actor=admin, movement=Movement.BILL, tariff=Tariff(()))
    assert service.tariffs(admin) == {Movement.BILL: flat(25)}


def test_only_an_admin_sets_tariffs_limits_and_tiers_and_each_change_is_audited(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    ana = customer(service, "100")
    auditor = register(service, name="Ida Auditor")
    service.set_role(actor=admin, phone=auditor.phone, role=Role.AUDITOR)
    auditor = service.login(phone=auditor.phone, password=PASSWORD).principal
    agent = new_agent(service, admin).principal
    denied = len(audit_rows(service, "permission.denied"))

    for someone in (ana, auditor, agent):
        with pytest.raises(PermissionDenied):
            service.set_tariff(actor=someone, movement=Movement.TRANSFER, tariff=flat(1))
        with pytest.raises(PermissionDenied):
            service.set_limit(
                actor=someone, family=LimitFamily.TRANSFER, tier=Tier.BASIC, daily=usd("1")
            )
        with pytest.raises(PermissionDenied):
            service.set_tier(actor=someone, phone=ana.phone, tier=Tier.VERIFIED)
        # Reading them is anyone's.
        assert service.tariffs(someone) == {}
        assert len(service.limits(someone)) == len(LimitFamily) * len(Tier)
    assert len(audit_rows(service, "permission.denied")) == denied + 9
    assert service.my_limits(ana)[0] is Tier.BASIC
    for action in ("tariff.set", "limit.set", "user.tier_changed"):
        assert audit_rows(service, action) == []

    tariff = Tariff((Band(10_000, 50), Band(None, 0, 150)), min_minor=10, max_minor=1000)
    set_tariff(service, admin, Movement.TRANSFER, tariff)
    set_tariff(service, admin, Movement.BILL, None)
    set_limit(service, admin, LimitFamily.TRANSFER, tier=Tier.VERIFIED, daily="250")
    service.set_tier(actor=admin, phone=ana.phone, tier=Tier.VERIFIED)

    cleared, priced = audit_rows(service, "tariff.set")
    assert (priced.actor, priced.details["movement"]) == (admin.user_id, "transfer")
    assert Tariff.from_json(priced.details["rule"]) == tariff
    assert json.loads(priced.details["rule"]) == {
        "bands": [[10_000, 50, 0], [None, 0, 150]],
        "min": 10,
        "max": 1000,
    }
    assert cleared.details == {"movement": "bill", "rule": None}
    (limit,) = audit_rows(service, "limit.set")
    assert (limit.actor, limit.details) == (
        admin.user_id,
        {"family": "transfer", "tier": "verified", "daily": 25_000, "monthly": None},
    )
    (tiered,) = audit_rows(service, "user.tier_changed")
    assert (tiered.actor, tiered.subject, tiered.details) == (
        admin.user_id,
        ana.user_id,
        {"from": "basic", "to": "verified"},
    )
    assert service.verify_audit_log(actor=OPERATOR, anchor=None).ok
    found = [one for one in service.list_users(actor=admin, limit=100) if one.id == ana.user_id]
    assert [one.tier for one in found] == [Tier.VERIFIED]


# --- at once -------------------------------------------------------------------------------------
def race(
    db_url: str, clock: FixedClock, move: Callable[[WalletService, int], object]
) -> tuple[list[object], list[WalletError]]:
    """THREADS threads, each with its own wallet (engine, connections), run `move` at once."""
    wallets = [open_wallet(db_url, clock) for _ in range(THREADS)]
    start = threading.Barrier(THREADS)
    won: list[object] = []
    lost: list[WalletError] = []

    def run(built: Wallet, n: int) -> None:
        start.wait(WAIT)
        try:
            won.append(move(built.service, n))
        except WalletError as exc:
            lost.append(exc)

    try:
        threads = [threading.Thread(target=run, args=(built, n)) for n, built in enumerate(wallets)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
    finally:
        for built in wallets:
            built.close()
    assert len(won) + len(lost) == THREADS
    return won, lost


def check_race(won: list[object], lost: list[WalletError], *, most: int, refusal: type) -> None:
    """At most `most` won; every loser was refused for the reason raced for, or the database was
    busy; and when none was merely busy, exactly `most` won."""
    assert 1 <= len(won) <= most, (won, lost)
    assert all(isinstance(one, refusal | ConcurrencyConflict | DatabaseBusy) for one in lost), lost
    if all(isinstance(one, refusal) for one in lost):
        assert len(won) == most, (won, lost)


def test_transfers_at_once_cannot_pass_the_daily_limit_together(
    wallet: Wallet, admin: Principal, db_url: str, clock: FixedClock
) -> None:
    service = wallet.service
    set_tariff(service, admin, Movement.TRANSFER, flat(100))
    set_limit(service, admin, LimitFamily.TRANSFER, daily="100")
    ana, bruno = customer(service, "1000"), customer(service, "0", "Bruno Tembe")
    won, lost = race(db_url, clock, lambda on, n: send(on, ana, bruno, "30"))
    check_race(won, lost, most=3, refusal=LimitReached)
    moved = len(won) * 3000
    assert wallet_cents(wallet, bruno) == moved
    assert wallet_cents(wallet, ana) == 100_000 - moved - len(won) * 100
    assert allowance(service, ana, LimitFamily.TRANSFER)[0][1] == f"{moved // 100}.00"


def test_transfers_at_once_cannot_spend_the_balance_twice(
    wallet: Wallet, admin: Principal, db_url: str, clock: FixedClock
) -> None:
    service = wallet.service
    set_tariff(service, admin, Movement.TRANSFER, flat(100))
    ana, bruno = customer(service, "100"), customer(service, "0", "Bruno Tembe")
    won, lost = race(db_url, clock, lambda on, n: send(on, ana, bruno, "30"))
    check_race(won, lost, most=3, refusal=InsufficientFunds)  # 3 x 31.00 of 100.00
    assert wallet_cents(wallet, bruno) == len(won) * 3000
    assert wallet_cents(wallet, ana) == 10_000 - len(won) * 3100 >= 0


def test_bills_at_once_cannot_pass_the_daily_limit_together(
    wallet: Wallet, admin: Principal, db_url: str, clock: FixedClock
) -> None:
    service = wallet.service
    set_tariff(service, admin, Movement.BILL, flat(50))
    set_limit(service, admin, LimitFamily.BILL, daily="100")
    ana = customer(service, "1000")
    won, lost = race(db_url, clock, lambda on, n: pay(on, ana, "30", water(n=n)))
    check_race(won, lost, most=3, refusal=LimitReached)
    assert all(isinstance(one, Payment) and one.state is PaymentState.SUCCEEDED for one in won)
    assert cents(wallet, payable_account_code("aguas-maputo")) == len(won) * 3000
    assert wallet_cents(wallet, ana) == 100_000 - len(won) * 3050


def test_card_top_ups_at_once_cannot_pass_the_daily_limit_together(
    wallet: Wallet, admin: Principal, db_url: str, clock: FixedClock
) -> None:
    # Nothing is held by a top-up: only the wallet's row, locked, makes them take turns.
    service = wallet.service
    set_tariff(service, admin, Movement.TOPUP, flat(50))
    set_limit(service, admin, LimitFamily.TOPUP, daily="100")
    ana = register(service, name="Ana Machava")
    won, lost = race(db_url, clock, lambda on, n: top_up(on, ana, "30"))
    check_race(won, lost, most=3, refusal=LimitReached)
    assert wallet_cents(wallet, ana) == len(won) * 3000
    assert cents(wallet, CARD_SOURCE) == -len(won) * 3050


# --- migration 0011 ------------------------------------------------------------------------------
@pytest.fixture
def engine_at_0010(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """A new database migrated up to 0010 only (before tariffs and limits)."""
    from alembic import command
    from alembic.config import Config

    with empty_database(backend, tmp_path, "old.db") as url:
        engine = make_engine(url)
        try:
            with engine.connect() as conn, conn.begin():
                config = Config()
                config.set_main_option("script_location", str(MIGRATIONS))
                config.attributes["connection"] = conn
                command.upgrade(config, "0010")
            yield engine
        finally:
            engine.dispose()


# The settings an admin left before 0011 (all of the policy, as `set_withdrawal_policy` wrote it).
OLD_POLICY = {
    "withdrawal_min_minor": "500",
    "withdrawal_max_minor": "50000",
    "withdrawal_lifetime_s": "2700",
}


@pytest.mark.parametrize(
    ("old", "tariffs", "limits"),
    [
        (
            {"withdrawal_daily_minor": "80000", "withdrawal_fee_atm_minor": "150",
             "withdrawal_fee_agent_minor": "0"},
            {"withdrawal-atm": flat(150)},
            {("withdrawal", "basic"): (80_000, None), ("withdrawal", "verified"): (80_000, None)},
        ),
        (
            {"withdrawal_daily_minor": "200000", "withdrawal_fee_atm_minor": "0",
             "withdrawal_fee_agent_minor": "75"},
            {"withdrawal-agent": flat(75)},
            {("withdrawal", "basic"): (200_000, None), ("withdrawal", "verified"): (200_000, None)},
        ),
        ({}, {}, {}),
    ],
    ids=["atm-fee", "agent-fee", "never-set"],
)  # fmt: skip
def test_migration_0011_moves_the_old_withdrawal_fees_and_daily_limit(
    engine_at_0010: Engine,
    *,
    old: dict[str, str],
    tariffs: dict[str, Tariff],
    limits: dict[tuple[str, str], tuple[int | None, int | None]],
) -> None:
    engine = engine_at_0010
    settings = {**OLD_POLICY, **old} if old else {}
    with engine.begin() as conn:
        for name, value in {**settings, "currency": "USD"}.items():
            conn.execute(
                text("INSERT INTO instance_settings (key, value) VALUES (:k, :v)"),
                {"k": name, "v": value},
            )
        conn.execute(
            text(
                "INSERT INTO users (id, phone, display_name, email, password_hash, created_at,"
                " role) VALUES ('u1', '+258840000001', 'Old User', NULL, 'x', 0, 'customer')"
            )
        )

    ensure_schema(engine)

    with engine.connect() as conn, conn.begin():
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        moved = {
            str(movement): Tariff.from_json(str(rule))
            for movement, rule in conn.execute(text("SELECT movement, rule FROM tariffs")).all()
        }
        rows = {
            (str(family), str(tier)): (daily, monthly)
            for family, tier, daily, monthly in conn.execute(
                text("SELECT family, tier, daily, monthly FROM limits")
            ).all()
        }
        left = dict(
            (str(k), str(v))
            for k, v in conn.execute(text("SELECT key, value FROM instance_settings")).all()
        )
        tier = conn.execute(text("SELECT tier FROM users WHERE id = 'u1'")).scalar_one()
    assert version == HEAD
    assert moved == tariffs
    assert rows == limits
    assert left == ({**OLD_POLICY, "currency": "USD"} if old else {"currency": "USD"})
    assert tier == "basic"
