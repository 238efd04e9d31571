"""Cash withdrawals through the services, on SQLite and PostgreSQL: a hold on the wallet, redeemed
at an ATM (an OAuth client with cassettes) or an agent (a user paid back in e-money) with a code
and a PIN or the signed QR payload; cancel, expiry, reversal, wrong PINs, terminal lockout,
limits, step-up, permissions, races between terminals, and the agent's cash-in.

After every test the ledger verifies, the holds account holds exactly the money of the
withdrawals still pending or authorized, and each ATM's cash account exactly what it paid out.
"""

from __future__ import annotations

import dataclasses
import hmac
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from mwallet.bootstrap import Wallet
from mwallet.core import otp
from mwallet.core.clock import FixedClock
from mwallet.core.domain.clients import ClientKind
from mwallet.core.domain.ledger import AccountStatus
from mwallet.core.domain.money import Money
from mwallet.core.domain.roles import Role
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import (
    Channel,
    WithdrawalState,
    code_digest,
    nonce_digest,
    pin_digest,
)
from mwallet.core.errors import (
    CannotDispense,
    ConcurrencyConflict,
    CurrencyMismatch,
    DatabaseBusy,
    IdempotencyKeyReused,
    InsufficientFunds,
    InvalidAmount,
    InvalidInput,
    InvalidSecondFactor,
    NotAuthenticated,
    PermissionDenied,
    Refused,
    SecondFactorRequired,
    TerminalLocked,
    TerminalNotFound,
    UnknownRecipient,
    UnknownWithdrawalCode,
    UserNotFound,
    WalletError,
    WithdrawalExpired,
    WithdrawalLimitReached,
    WithdrawalNotFound,
    WithdrawalNotPending,
    WrongPin,
)
from mwallet.core.services.instance_secrets import PEPPER
from mwallet.core.services.wallet_service import WalletService
from mwallet.core.services.withdrawals import IssuedWithdrawal, Redemption
from mwallet.core.withdrawal_qr import InvalidQr
from tests.integration.cash_books import check_cash_books
from tests.integration.withdrawal_support import (
    NOTES,
    PIN,
    Station,
    cash_of,
    code_of,
    customer,
    key,
    new_agent,
    new_atm,
    redeem,
    usd,
    withdraw,
)
from tests.support import (
    OPERATOR,
    PASSWORD,
    TEST_KEYRING,
    make_admin,
    open_wallet,
    register,
)

WRONG_PIN = "8531"
MINUTE = timedelta(minutes=1)
LIFETIME = timedelta(minutes=30)
WAIT = 60.0  # seconds: an upper bound for a thread, never a pause


# --- helpers -------------------------------------------------------------------------------------
def balances(service: WalletService, person: Principal) -> tuple[Money, Money]:
    """(balance, available): the balance counts money held for withdrawals, available does not."""
    shown = service.balance(person)
    return shown.balance, shown.available


def cassettes_of(service: WalletService, station: Station) -> dict[int, int]:
    found = {terminal.id: notes for terminal, notes in service.list_terminals(actor=OPERATOR)}
    return found[station.id]


def stored(wallet: Wallet, withdrawal_id: str) -> dict[str, Any]:
    """A withdrawal's row, as the database holds it."""
    with wallet.engine.connect() as conn:
        row = conn.execute(
            text("SELECT * FROM withdrawals WHERE id = :id"), {"id": withdrawal_id}
        ).one()
    return dict(row._mapping)


def state_of(wallet: Wallet, withdrawal_id: str) -> WithdrawalState:
    return WithdrawalState(stored(wallet, withdrawal_id)["state"])


def stored_count(wallet: Wallet) -> int:
    with wallet.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM withdrawals")).scalar_one())


def actions(service: WalletService) -> list[str]:
    return [record.action for record in reversed(service.audit_log(actor=OPERATOR, limit=1000))]


@pytest.fixture(autouse=True)
def books_stay_sound(wallet: Wallet) -> Iterator[None]:
    yield
    check_cash_books(wallet)


@pytest.fixture
def admin(wallet: Wallet) -> Principal:
    return make_admin(wallet.service)


# --- the whole way at an ATM ---------------------------------------------------------------------
def test_a_withdrawal_at_an_atm_holds_the_money_then_pays_out_notes(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "500", name="Ana Maria Silva")

    issued = withdraw(service, ana, "60")
    assert issued.withdrawal.state is WithdrawalState.PENDING
    assert issued.withdrawal.amount == usd(service, "60")
    assert issued.withdrawal.channel is Channel.ATM
    assert issued.withdrawal.expires_at == issued.withdrawal.created_at + LIFETIME
    assert issued.pin == PIN
    assert len(code_of(issued)) == 10
    assert code_of(issued).isdigit()
    # The money is held: still Ana's, no longer available to spend.
    assert balances(service, ana) == (usd(service, "500"), usd(service, "440"))
    with pytest.raises(InsufficientFunds):
        service.transfer(
            ana, to_phone=register(service).phone, amount=usd(service, "441"), note=None,
            idempotency_key=key(),
        )  # fmt: skip

    redemption = redeem(service, atm, issued)
    assert redemption.notes == {2000: 3}  # 3 x 20, not 50 + something
    assert redemption.customer_name == "Ana S."
    assert redemption.withdrawal.state is WithdrawalState.AUTHORIZED
    assert redemption.withdrawal.terminal_id == atm.id
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.AUTHORIZED
    assert balances(service, ana) == (usd(service, "500"), usd(service, "440"))
    assert cassettes_of(service, atm) == NOTES  # nothing taken before the cash is out

    done = service.complete_withdrawal(atm.principal, withdrawal_id=issued.withdrawal.id)
    assert done.state is WithdrawalState.COMPLETED
    assert cassettes_of(service, atm) == {5000: 10, 2000: 7}
    assert cash_of(wallet, atm) == 6000
    assert balances(service, ana) == (usd(service, "440"), usd(service, "440"))
    assert [one.state for one in service.list_withdrawals(ana)] == [WithdrawalState.COMPLETED]
    assert {"withdrawal.authorized", "terminal.added", "terminal.loaded"} <= set(actions(service))


def test_a_withdrawal_redeemed_by_its_qr_payload(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "110")
    assert issued.qr_payload is not None

    claims = service.check_withdrawal_qr(issued.qr_payload)
    assert claims.withdrawal_id == issued.withdrawal.id
    assert claims.amount == usd(service, "110")
    assert claims.expires_at == issued.withdrawal.expires_at.replace(microsecond=0)

    redemption = service.redeem_withdrawal(atm.principal, qr_payload=issued.qr_payload, pin=PIN)
    assert redemption.notes == {5000: 1, 2000: 3}
    service.complete_withdrawal(atm.principal, withdrawal_id=issued.withdrawal.id)
    assert cassettes_of(service, atm) == {5000: 9, 2000: 7}
    assert cash_of(wallet, atm) == 11000
    assert balances(service, ana) == (usd(service, "390"), usd(service, "390"))


def test_a_qr_payload_needs_the_right_pin_too(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service)
    issued = withdraw(service, ana)
    assert issued.qr_payload is not None
    with pytest.raises(WrongPin):
        service.redeem_withdrawal(atm.principal, qr_payload=issued.qr_payload, pin=WRONG_PIN)
    assert stored(wallet, issued.withdrawal.id)["pin_attempts"] == 1
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.PENDING


def test_a_qr_payload_expires_with_its_withdrawal(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service)
    issued = withdraw(service, ana)
    assert issued.qr_payload is not None
    clock.advance(LIFETIME)
    with pytest.raises(InvalidQr, match="expired"):
        service.check_withdrawal_qr(issued.qr_payload)
    with pytest.raises(WithdrawalExpired):
        service.redeem_withdrawal(atm.principal, qr_payload=issued.qr_payload, pin=PIN)
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.EXPIRED
    assert balances(service, ana) == (usd(service, "500"), usd(service, "500"))


def test_a_qr_payload_from_another_wallet_is_refused(
    wallet: Wallet, admin: Principal, tmp_path: Path
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    # Another instance (its own QR key) issues a payload for a withdrawal of its own.
    with open_wallet(f"sqlite:///{tmp_path}/other.db") as other:
        other.service.init(currency="USD")
        bruno = customer(other.service)
        theirs = withdraw(other.service, bruno)
    assert theirs.qr_payload is not None
    with pytest.raises(InvalidQr):
        service.check_withdrawal_qr(theirs.qr_payload)
    with pytest.raises(InvalidQr):
        service.redeem_withdrawal(atm.principal, qr_payload=theirs.qr_payload, pin=PIN)


def test_a_qr_payload_altered_in_transit_is_refused(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    issued = withdraw(service, customer(service))
    assert issued.qr_payload is not None
    body, signature = issued.qr_payload.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(InvalidQr):
        service.redeem_withdrawal(atm.principal, qr_payload=f"{body}.{flipped}", pin=PIN)
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.PENDING


def test_a_signed_payload_with_a_wrong_nonce_counts_as_an_unknown_code(
    wallet: Wallet, admin: Principal
) -> None:
    """Signed with the instance's own key (as a leaked signing key would allow) but with a nonce
    the wallet never issued: it names a real withdrawal, yet is no way to redeem it."""
    from mwallet.core import withdrawal_qr
    from mwallet.core.services import instance_secrets

    service = wallet.service
    atm = new_atm(service, admin)
    issued = withdraw(service, customer(service))
    uow = service._uow()  # the service's own unit of work, to reach the instance's QR key
    with uow:
        kid, private, _ = instance_secrets.qr_key(uow, service.clock.now(), TEST_KEYRING)
    forged = withdrawal_qr.sign(
        withdrawal_qr.QrClaims(
            issued.withdrawal.id, issued.withdrawal.amount, issued.withdrawal.expires_at,
            "not-the-nonce", kid,
        ),
        private_key=private,
    )  # fmt: skip
    assert service.check_withdrawal_qr(forged).withdrawal_id == issued.withdrawal.id
    with pytest.raises(UnknownWithdrawalCode):
        service.redeem_withdrawal(atm.principal, qr_payload=forged, pin=PIN)
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.PENDING
    assert "terminal.unknown_code" in actions(service)


# --- at an agent ---------------------------------------------------------------------------------
def test_a_withdrawal_at_an_agent_pays_the_agent_in_e_money(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    agent = new_agent(service, admin, float_="100")
    ana = customer(service, "500", name="Ana Silva")
    issued = withdraw(service, ana, "75.50", channel=Channel.AGENT)
    assert balances(service, ana) == (usd(service, "500"), usd(service, "424.50"))

    redemption = redeem(service, agent, issued)
    assert redemption.notes is None  # an agent counts out their own cash
    assert redemption.customer_name == "Ana S."
    done = service.complete_withdrawal(agent.principal, withdrawal_id=issued.withdrawal.id)
    assert done.state is WithdrawalState.COMPLETED
    assert done.terminal_id == agent.id
    assert balances(service, agent.principal) == (usd(service, "175.50"), usd(service, "175.50"))
    assert balances(service, ana) == (usd(service, "424.50"), usd(service, "424.50"))


def test_an_agent_can_reverse_a_payout_that_did_not_happen(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    agent = new_agent(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "100", channel=Channel.AGENT)
    redeem(service, agent, issued)
    reversed_ = service.reverse_withdrawal(agent.principal, withdrawal_id=issued.withdrawal.id)
    assert reversed_.state is WithdrawalState.REVERSED
    assert balances(service, ana) == (usd(service, "500"), usd(service, "500"))
    assert balances(service, agent.principal)[0].minor == 0


def test_cash_in_at_an_agent_sends_the_customer_e_money_from_the_float(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    agent = new_agent(service, admin, float_="300")
    ana = register(service)
    done = service.cash_in(
        agent.principal, to_phone=ana.phone, amount=usd(service, "120"), idempotency_key=key()
    )
    assert done.amount == usd(service, "120")
    assert balances(service, ana) == (usd(service, "120"), usd(service, "120"))
    assert balances(service, agent.principal)[0] == usd(service, "180")
    with pytest.raises(InsufficientFunds):
        service.cash_in(
            agent.principal, to_phone=ana.phone, amount=usd(service, "180.01"),
            idempotency_key=key(),
        )  # fmt: skip
    with pytest.raises(UnknownRecipient):
        service.cash_in(
            agent.principal, to_phone="+258849999999", amount=usd(service, "1"),
            idempotency_key=key(),
        )  # fmt: skip
    assert balances(service, agent.principal)[0] == usd(service, "180")


def test_a_replayed_cash_in_moves_the_money_once(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    agent = new_agent(service, admin, float_="300")
    ana = register(service)
    same = key()
    first = service.cash_in(
        agent.principal, to_phone=ana.phone, amount=usd(service, "50"), idempotency_key=same
    )
    again = service.cash_in(
        agent.principal, to_phone=ana.phone, amount=usd(service, "50"), idempotency_key=same
    )
    assert again == first
    assert balances(service, ana)[0] == usd(service, "50")


def test_only_a_registered_agent_takes_cash_in(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    ana = register(service)
    plain = customer(service, "300")
    with pytest.raises(PermissionDenied):
        service.cash_in(plain, to_phone=ana.phone, amount=usd(service, "10"), idempotency_key=key())
    # The agent role alone, without a terminal an admin registered, is not enough.
    service.set_role(actor=admin, phone=plain.phone, role=Role.AGENT)
    unregistered = service.login(phone=plain.phone, password=PASSWORD).principal
    assert unregistered.role is Role.AGENT
    with pytest.raises(PermissionDenied, match="not a registered agent"):
        service.cash_in(
            unregistered, to_phone=ana.phone, amount=usd(service, "10"), idempotency_key=key()
        )
    issued = withdraw(service, customer(service), channel=Channel.AGENT)
    with pytest.raises(PermissionDenied, match="not a registered terminal"):
        service.redeem_withdrawal(unregistered, code=code_of(issued), pin=PIN)
    assert balances(service, ana)[0].minor == 0
    assert balances(service, unregistered)[0] == usd(service, "300")


def test_adding_an_agent_needs_a_registered_plain_user_once(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    with pytest.raises(UserNotFound):
        service.add_agent(actor=admin, phone="+258849999999")
    with pytest.raises(Refused, match="plain user"):
        service.add_agent(actor=admin, phone=admin.phone)
    agent = new_agent(service, admin)
    with pytest.raises(Refused, match="already"):
        service.add_agent(actor=admin, phone=agent.principal.phone)
    kinds = sorted(terminal.kind.value for terminal, _ in service.list_terminals(actor=admin))
    assert kinds == ["agent"]


# --- two terminals, one code ---------------------------------------------------------------------
def race_redeems(
    attempts: list[tuple[WalletService, Principal]], code: str
) -> list[Redemption | WalletError]:
    """Each (service, terminal) redeems `code` at the same moment, in its own thread."""
    start = threading.Barrier(len(attempts))
    outcomes: list[Redemption | WalletError] = []

    def run(service: WalletService, terminal: Principal) -> None:
        start.wait(WAIT)
        try:
            outcomes.append(service.redeem_withdrawal(terminal, code=code, pin=PIN))
        except WalletError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=attempt) for attempt in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert len(outcomes) == len(attempts)
    return outcomes


@pytest.mark.parametrize("terminals", ["two ATMs", "one ATM twice"])
def test_one_code_redeemed_at_once_from_two_places_pays_out_once(
    wallet: Wallet, db_url: str, admin: Principal, terminals: str
) -> None:
    service = wallet.service
    first = new_atm(service, admin, name="ATM 1")
    second = new_atm(service, admin, name="ATM 2") if terminals == "two ATMs" else first
    ana = customer(service, "1000")
    with open_wallet(db_url) as other:  # another engine, like another process
        for _ in range(3):
            issued = withdraw(service, ana, "100")
            outcomes = race_redeems(
                [(service, first.principal), (other.service, second.principal)], code_of(issued)
            )
            won = [outcome for outcome in outcomes if isinstance(outcome, Redemption)]
            lost = [outcome for outcome in outcomes if not isinstance(outcome, Redemption)]
            assert len(won) == 1, outcomes
            assert all(
                isinstance(error, WithdrawalNotPending | ConcurrencyConflict | DatabaseBusy)
                for error in lost
            ), lost
            winner = first if won[0].withdrawal.terminal_id == first.id else second
            assert stored(wallet, issued.withdrawal.id)["terminal_id"] == winner.id
            service.complete_withdrawal(winner.principal, withdrawal_id=issued.withdrawal.id)
            with pytest.raises(WithdrawalNotPending):
                service.complete_withdrawal(winner.principal, withdrawal_id=issued.withdrawal.id)
    assert balances(service, ana) == (usd(service, "700"), usd(service, "700"))
    assert cash_of(wallet, first) + (cash_of(wallet, second) if second != first else 0) == 30000


def test_two_requests_at_once_cannot_pass_the_daily_limit_together(
    wallet: Wallet, db_url: str
) -> None:
    service = wallet.service
    ana = customer(service, "5000")
    withdraw(service, ana, "1000")  # 1000 of the day's 2000 left
    start = threading.Barrier(2)
    outcomes: list[IssuedWithdrawal | WalletError] = []

    def run(on: WalletService) -> None:
        start.wait(WAIT)
        try:
            outcomes.append(withdraw(on, ana, "1000"))
        except WalletError as exc:
            outcomes.append(exc)

    with open_wallet(db_url) as other:
        threads = [threading.Thread(target=run, args=(on,)) for on in (service, other.service)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
    assert len(outcomes) == 2
    assert sum(isinstance(outcome, IssuedWithdrawal) for outcome in outcomes) == 1, outcomes
    assert any(isinstance(outcome, WithdrawalLimitReached) for outcome in outcomes), outcomes
    assert balances(service, ana) == (usd(service, "5000"), usd(service, "3000"))
    assert stored_count(wallet) == 2


# --- the user's side: cancel, expiry -------------------------------------------------------------
def test_cancelling_returns_the_hold(wallet: Wallet) -> None:
    service = wallet.service
    ana = customer(service, "500")
    issued = withdraw(service, ana, "200")
    assert balances(service, ana) == (usd(service, "500"), usd(service, "300"))
    cancelled = service.cancel_withdrawal(ana, withdrawal_id=issued.withdrawal.id)
    assert cancelled.state is WithdrawalState.CANCELLED
    assert balances(service, ana) == (usd(service, "500"), usd(service, "500"))
    assert [one.state for one in service.list_withdrawals(ana)] == [WithdrawalState.CANCELLED]


def test_a_withdrawal_is_cancelled_once(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "200")
    service.cancel_withdrawal(ana, withdrawal_id=issued.withdrawal.id)
    with pytest.raises(WithdrawalNotPending, match="cancelled"):
        service.cancel_withdrawal(ana, withdrawal_id=issued.withdrawal.id)
    with pytest.raises(WithdrawalNotPending):
        redeem(service, atm, issued)
    assert balances(service, ana) == (usd(service, "500"), usd(service, "500"))


def test_an_authorized_withdrawal_cannot_be_cancelled(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    redeem(service, atm, issued)
    with pytest.raises(WithdrawalNotPending, match="authorized"):
        service.cancel_withdrawal(ana, withdrawal_id=issued.withdrawal.id)
    service.complete_withdrawal(atm.principal, withdrawal_id=issued.withdrawal.id)
    assert balances(service, ana) == (usd(service, "440"), usd(service, "440"))


def test_nobody_cancels_someone_elses_withdrawal(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = customer(service), customer(service)
    issued = withdraw(service, ana, "100")
    with pytest.raises(WithdrawalNotFound):
        service.cancel_withdrawal(bruno, withdrawal_id=issued.withdrawal.id)
    with pytest.raises(WithdrawalNotFound):
        service.cancel_withdrawal(bruno, withdrawal_id="01NOSUCHWITHDRAWAL00000000")
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.PENDING
    assert service.list_withdrawals(bruno) == []
    assert balances(service, ana) == (usd(service, "500"), usd(service, "400"))


def test_a_withdrawal_expires_after_30_minutes_and_its_hold_returns(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = customer(service, "500")
    issued = withdraw(service, ana, "100")
    clock.advance(LIFETIME - timedelta(seconds=1))
    assert [one.state for one in service.list_withdrawals(ana)] == [WithdrawalState.PENDING]
    assert balances(service, ana) == (usd(service, "500"), usd(service, "400"))
    clock.advance(timedelta(seconds=1))
    assert [one.state for one in service.list_withdrawals(ana)] == [WithdrawalState.EXPIRED]
    assert balances(service, ana) == (usd(service, "500"), usd(service, "500"))
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.EXPIRED


def test_a_transfer_spends_money_held_by_a_withdrawal_past_its_time(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana, bruno = customer(service, "500"), register(service)
    withdraw(service, ana, "400")
    clock.advance(LIFETIME)  # due, not yet expired by anyone

    def send(amount: str, idempotency_key: str) -> Any:
        return service.transfer(ana, to_phone=bruno.phone, amount=usd(service, amount),
                                note=None, idempotency_key=idempotency_key)  # fmt: skip

    # Refused on the first try (only 100.00 available), the hold expired, tried again: it goes
    # through, and the first try's refusal was not kept under the key.
    done = send("450", "first")
    assert balances(service, ana) == (usd(service, "50"), usd(service, "50"))
    assert send("450", "first") == done

    # Still short with the held money back: the second try's refusal is kept, and replayed.
    withdraw(service, ana, "40")
    clock.advance(LIFETIME)
    with pytest.raises(InsufficientFunds) as first:
        send("60", "second")
    assert balances(service, ana) == (usd(service, "50"), usd(service, "50"))
    assert [one.state for one in service.list_withdrawals(ana)] == [WithdrawalState.EXPIRED] * 2
    service.topup(ana, amount=usd(service, "100"), source="sandbox", idempotency_key=key())
    with pytest.raises(InsufficientFunds) as again:
        send("60", "second")
    assert str(again.value) == str(first.value)
    assert balances(service, ana) == (usd(service, "150"), usd(service, "150"))


def test_cancelling_an_expired_withdrawal_expires_it(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = customer(service, "500")
    issued = withdraw(service, ana, "100")
    clock.advance(LIFETIME)
    ended = service.cancel_withdrawal(ana, withdrawal_id=issued.withdrawal.id)
    assert ended.state is WithdrawalState.EXPIRED
    assert balances(service, ana) == (usd(service, "500"), usd(service, "500"))
    with pytest.raises(WithdrawalNotPending):
        service.cancel_withdrawal(ana, withdrawal_id=issued.withdrawal.id)


def test_the_admin_sweep_expires_every_due_withdrawal(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    people = [customer(service, "500") for _ in range(3)]
    due = [withdraw(service, person, "100") for person in people]
    due.append(withdraw(service, people[0], "50"))
    clock.advance(10 * MINUTE)
    later = withdraw(service, people[1], "20")  # not due yet
    clock.advance(LIFETIME - 10 * MINUTE)

    with pytest.raises(PermissionDenied):
        service.expire_withdrawals(actor=people[0])
    assert service.expire_withdrawals(actor=admin) == 4
    assert all(state_of(wallet, one.withdrawal.id) is WithdrawalState.EXPIRED for one in due)
    assert state_of(wallet, later.withdrawal.id) is WithdrawalState.PENDING
    assert balances(service, people[0]) == (usd(service, "500"), usd(service, "500"))
    assert balances(service, people[1]) == (usd(service, "500"), usd(service, "480"))
    assert service.expire_withdrawals(actor=admin) == 0  # once only
    clock.advance(10 * MINUTE)
    assert service.expire_withdrawals(actor=admin) == 1


def test_the_admin_sweep_expires_more_than_a_hundred_at_once(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    ana = customer(service, "500")
    for _ in range(105):  # more than a listing expires at a time
        withdraw(service, ana, "1")
    clock.advance(LIFETIME)
    assert service.expire_withdrawals(actor=admin) == 105
    assert balances(service, ana) == (usd(service, "500"), usd(service, "500"))


def test_a_frozen_wallets_hold_waits_without_holding_up_the_sweep(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    ana, bruno = customer(service, "100"), customer(service, "100")
    hers = withdraw(service, ana, "50")
    clock.advance(timedelta(seconds=1))
    his = withdraw(service, bruno, "50")
    service.set_wallet_status(actor=admin, phone=ana.phone, status=AccountStatus.FROZEN)
    clock.advance(LIFETIME)

    assert service.expire_withdrawals(actor=admin) == 1
    assert state_of(wallet, his.withdrawal.id) is WithdrawalState.EXPIRED
    assert state_of(wallet, hers.withdrawal.id) is WithdrawalState.PENDING  # no money in or out
    assert balances(service, bruno) == (usd(service, "100"), usd(service, "100"))

    service.set_wallet_status(actor=admin, phone=ana.phone, status=AccountStatus.ACTIVE)
    assert service.expire_withdrawals(actor=admin) == 1
    assert state_of(wallet, hers.withdrawal.id) is WithdrawalState.EXPIRED
    assert balances(service, ana) == (usd(service, "100"), usd(service, "100"))


def test_a_frozen_wallets_many_holds_do_not_stop_the_sweep(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    ana, bruno = customer(service, "1000"), customer(service, "100")
    for _ in range(1000):
        withdraw(service, ana, "1")
    clock.advance(timedelta(seconds=1))
    his = withdraw(service, bruno, "50")
    service.set_wallet_status(actor=admin, phone=ana.phone, status=AccountStatus.FROZEN)
    clock.advance(LIFETIME)
    service.expire_withdrawals(actor=admin)
    service.expire_withdrawals(actor=admin)
    assert state_of(wallet, his.withdrawal.id) is WithdrawalState.EXPIRED


def test_redeeming_an_expired_withdrawal_is_refused_and_returns_its_hold(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    clock.advance(LIFETIME + MINUTE)
    with pytest.raises(WithdrawalExpired):
        redeem(service, atm, issued)
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.EXPIRED
    assert balances(service, ana) == (usd(service, "500"), usd(service, "500"))
    with pytest.raises(WithdrawalNotPending):
        redeem(service, atm, issued)
    assert cassettes_of(service, atm) == NOTES


def test_listing_expires_ones_own_withdrawals_however_many_others_are_due(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    bruno = customer(service, "500")
    for _ in range(100):
        withdraw(service, bruno, "1")
    clock.advance(timedelta(seconds=1))
    ana = customer(service, "50")
    withdraw(service, ana, "50")
    clock.advance(LIFETIME)
    assert [one.state for one in service.list_withdrawals(ana)] == [WithdrawalState.EXPIRED]
    assert balances(service, ana) == (usd(service, "50"), usd(service, "50"))


def test_withdrawals_past_their_time_do_not_hold_back_a_new_request(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = customer(service, "2000")
    withdraw(service, ana, "1000")
    withdraw(service, ana, "1000")
    clock.advance(LIFETIME + MINUTE)
    assert withdraw(service, ana, "100").withdrawal.state is WithdrawalState.PENDING
    assert balances(service, ana) == (usd(service, "2000"), usd(service, "1900"))


# --- the terminal's side: reverse, wrong PINs, unknown codes -------------------------------------
def test_reversing_after_authorizing_returns_the_money(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    redeem(service, atm, issued)
    reversed_ = service.reverse_withdrawal(atm.principal, withdrawal_id=issued.withdrawal.id)
    assert reversed_.state is WithdrawalState.REVERSED
    assert balances(service, ana) == (usd(service, "500"), usd(service, "500"))
    assert cassettes_of(service, atm) == NOTES
    assert cash_of(wallet, atm) == 0
    with pytest.raises(WithdrawalNotPending):
        service.complete_withdrawal(atm.principal, withdrawal_id=issued.withdrawal.id)
    with pytest.raises(WithdrawalNotPending):
        service.reverse_withdrawal(atm.principal, withdrawal_id=issued.withdrawal.id)
    assert "withdrawal.reversed" in actions(service)


def test_only_the_authorizing_terminal_completes_or_reverses(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    atm, elsewhere = new_atm(service, admin), new_atm(service, admin, name="ATM 2")
    ana = customer(service, "500")
    pending = withdraw(service, ana, "60")
    with pytest.raises(WithdrawalNotPending):  # not authorized yet
        service.complete_withdrawal(atm.principal, withdrawal_id=pending.withdrawal.id)
    with pytest.raises(WithdrawalNotFound):
        service.complete_withdrawal(atm.principal, withdrawal_id="01NOSUCHWITHDRAWAL00000000")

    redeem(service, atm, pending)
    with pytest.raises(WithdrawalNotFound):
        service.complete_withdrawal(elsewhere.principal, withdrawal_id=pending.withdrawal.id)
    with pytest.raises(WithdrawalNotFound):
        service.reverse_withdrawal(elsewhere.principal, withdrawal_id=pending.withdrawal.id)
    service.complete_withdrawal(atm.principal, withdrawal_id=pending.withdrawal.id)
    assert (cash_of(wallet, atm), cash_of(wallet, elsewhere)) == (6000, 0)
    assert cassettes_of(service, elsewhere) == NOTES


def test_two_wrong_pins_then_the_right_one_pays_out(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    with pytest.raises(WrongPin, match="2 attempts left"):
        redeem(service, atm, issued, pin=WRONG_PIN)
    with pytest.raises(WrongPin, match="1 attempt left"):
        redeem(service, atm, issued, pin="0000")
    assert stored(wallet, issued.withdrawal.id)["pin_attempts"] == 2
    assert redeem(service, atm, issued).notes == {2000: 3}
    service.complete_withdrawal(atm.principal, withdrawal_id=issued.withdrawal.id)
    assert balances(service, ana) == (usd(service, "440"), usd(service, "440"))


def test_three_wrong_pins_block_the_withdrawal_and_return_its_hold(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    atm, other = new_atm(service, admin), new_atm(service, admin, name="ATM 2")
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    for station in (atm, other):  # the count is the withdrawal's, wherever the PIN is typed
        with pytest.raises(WrongPin):
            redeem(service, station, issued, pin=WRONG_PIN)
    with pytest.raises(WrongPin, match="blocked"):
        redeem(service, atm, issued, pin=WRONG_PIN)
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.BLOCKED
    assert balances(service, ana) == (usd(service, "500"), usd(service, "500"))
    with pytest.raises(WithdrawalNotPending, match="blocked"):
        redeem(service, atm, issued)
    with pytest.raises(WithdrawalNotPending):
        service.cancel_withdrawal(ana, withdrawal_id=issued.withdrawal.id)
    assert [one.state for one in service.list_withdrawals(ana)] == [WithdrawalState.BLOCKED]
    assert {"withdrawal.wrong_pin", "withdrawal.blocked"} <= set(actions(service))


def test_wrong_pins_do_not_lock_the_terminal(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    people = [customer(service, "500") for _ in range(3)]
    for person in people:
        issued = withdraw(service, person, "20")
        for _ in range(2):
            with pytest.raises(WrongPin):
                redeem(service, atm, issued, pin=WRONG_PIN)
    last = withdraw(service, people[0], "20")
    assert redeem(service, atm, last).withdrawal.state is WithdrawalState.AUTHORIZED


def test_five_unknown_codes_lock_the_terminal_for_15_minutes(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    atm, other = new_atm(service, admin), new_atm(service, admin, name="ATM 2")
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    guesses = [guess for guess in (f"{n:010d}" for n in range(6)) if guess != issued.code][:5]
    errors = []
    for guess in guesses:
        with pytest.raises((UnknownWithdrawalCode, TerminalLocked)) as caught:
            service.redeem_withdrawal(atm.principal, code=guess, pin=PIN)
        errors.append(type(caught.value))
    assert errors == [UnknownWithdrawalCode] * 4 + [TerminalLocked]
    assert "terminal.locked" in actions(service)

    # Locked: even the right code and PIN are refused, and nothing changes.
    with pytest.raises(TerminalLocked):
        redeem(service, atm, issued)
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.PENDING
    clock.advance(15 * MINUTE - timedelta(seconds=1))
    with pytest.raises(TerminalLocked):
        redeem(service, atm, issued)
    clock.advance(timedelta(seconds=1))
    assert redeem(service, atm, issued).withdrawal.state is WithdrawalState.AUTHORIZED
    service.complete_withdrawal(atm.principal, withdrawal_id=issued.withdrawal.id)
    assert cash_of(wallet, atm) == 6000
    # The other ATM was never locked.
    with pytest.raises(UnknownWithdrawalCode):
        service.redeem_withdrawal(other.principal, code="9999999999", pin=PIN)


def test_unknown_codes_spread_over_more_than_ten_minutes_do_not_lock(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    issued = withdraw(service, customer(service), "60")
    guesses = [guess for guess in (f"{n:010d}" for n in range(9)) if guess != issued.code]
    for n, guess in enumerate(guesses[:8]):
        if n == 4:
            clock.advance(10 * MINUTE)  # a new window
        with pytest.raises(UnknownWithdrawalCode):
            service.redeem_withdrawal(atm.principal, code=guess, pin=PIN)
    assert redeem(service, atm, issued).withdrawal.state is WithdrawalState.AUTHORIZED


def test_a_malformed_code_or_pin_is_refused_without_counting(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    issued = withdraw(service, customer(service), "60")
    for _ in range(6):
        with pytest.raises(InvalidInput):
            service.redeem_withdrawal(atm.principal, code="12345", pin=PIN)
        with pytest.raises(InvalidInput):
            service.redeem_withdrawal(atm.principal, code=code_of(issued), pin="12")
    assert stored(wallet, issued.withdrawal.id)["pin_attempts"] == 0
    spaced = f"{code_of(issued)[:4]} {code_of(issued)[4:7]}-{code_of(issued)[7:]}"
    assert service.redeem_withdrawal(atm.principal, code=spaced, pin=f" {PIN} ").notes == {2000: 3}


@pytest.mark.parametrize(
    "notes",
    [{5000: 10}, {2000: 2}, {}],
    ids=["only 50s", "two 20s", "empty"],
)
def test_an_atm_that_cannot_make_the_amount_refuses_before_authorizing(
    wallet: Wallet, admin: Principal, notes: dict[int, int]
) -> None:
    service = wallet.service
    atm = new_atm(service, admin, notes=notes)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    with pytest.raises(CannotDispense):
        redeem(service, atm, issued)
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.PENDING
    assert stored(wallet, issued.withdrawal.id)["terminal_id"] is None
    assert balances(service, ana) == (usd(service, "500"), usd(service, "440"))
    assert cash_of(wallet, atm) == 0
    assert cassettes_of(service, atm) == notes
    # Another ATM that holds the notes pays it out.
    elsewhere = new_atm(service, admin, name="ATM 2")
    assert redeem(service, elsewhere, issued).notes == {2000: 3}


def test_loading_cassettes_adds_notes(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin, notes={2000: 2})
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    with pytest.raises(CannotDispense):
        redeem(service, atm, issued)
    loaded = service.load_cassettes(actor=admin, terminal_id=atm.id, notes={2000: 1, 10000: 5})
    assert loaded == {10000: 5, 2000: 3}
    assert redeem(service, atm, issued).notes == {2000: 3}


@pytest.mark.parametrize(
    "notes",
    [{}, {2050: 1}, {0: 1}, {-2000: 1}, {2000: 0}, {2000: -1}, {2000: 10_001}, {2000: 1, 2050: 1}],
)
def test_loading_cassettes_refuses_nonsense(
    wallet: Wallet, admin: Principal, notes: dict[int, int]
) -> None:
    service = wallet.service
    atm = new_atm(service, admin, notes={})
    with pytest.raises(InvalidInput):
        service.load_cassettes(actor=admin, terminal_id=atm.id, notes=notes)
    assert cassettes_of(service, atm) == {}


def test_only_an_atm_has_cassettes(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    agent = new_agent(service, admin)
    with pytest.raises(Refused, match="only an ATM"):
        service.load_cassettes(actor=admin, terminal_id=agent.id, notes={2000: 1})
    with pytest.raises(TerminalNotFound):
        service.load_cassettes(actor=admin, terminal_id="nope", notes={2000: 1})


@pytest.mark.parametrize("wanted", [Channel.ATM, Channel.AGENT])
def test_a_withdrawal_is_paid_out_only_on_its_channel(
    wallet: Wallet, admin: Principal, wanted: Channel
) -> None:
    service = wallet.service
    atm, agent = new_atm(service, admin), new_agent(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60", channel=wanted)
    wrong, right = (agent, atm) if wanted is Channel.ATM else (atm, agent)
    with pytest.raises(WithdrawalNotPending, match=f"by an {wanted.value}"):
        redeem(service, wrong, issued)
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.PENDING
    assert redeem(service, right, issued).withdrawal.state is WithdrawalState.AUTHORIZED
    with pytest.raises(WithdrawalNotFound):
        service.complete_withdrawal(wrong.principal, withdrawal_id=issued.withdrawal.id)
    service.complete_withdrawal(right.principal, withdrawal_id=issued.withdrawal.id)
    assert balances(service, ana) == (usd(service, "440"), usd(service, "440"))


# --- limits, funds, replays, step-up -------------------------------------------------------------
@pytest.mark.parametrize("amount", ["0.99", "0.01", "1000.01", "5000"])
def test_a_withdrawal_outside_the_bounds_is_refused(wallet: Wallet, amount: str) -> None:
    service = wallet.service
    ana = customer(service, "6000")
    with pytest.raises(InvalidAmount, match="between"):
        withdraw(service, ana, amount)
    assert stored_count(wallet) == 0
    assert balances(service, ana) == (usd(service, "6000"), usd(service, "6000"))


@pytest.mark.parametrize("amount", ["1", "1000"])
def test_the_bounds_themselves_are_allowed(wallet: Wallet, amount: str) -> None:
    service = wallet.service
    ana = customer(service, "6000")
    assert withdraw(service, ana, amount).withdrawal.amount == usd(service, amount)


def test_a_withdrawal_in_another_currency_is_refused(wallet: Wallet) -> None:
    service = wallet.service
    ana = customer(service, "500")
    with pytest.raises(CurrencyMismatch):
        service.request_withdrawal(
            ana, amount=Money.parse("60", "EUR"), channel=Channel.ATM, pin=PIN,
            idempotency_key=key(),
        )  # fmt: skip
    assert stored_count(wallet) == 0


def test_the_daily_limit_counts_what_is_held_or_paid_out(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    atm = new_atm(service, admin, notes={5000: 100})
    ana = customer(service, "5000")
    paid = withdraw(service, ana, "1000")
    redeem(service, atm, paid)
    service.complete_withdrawal(atm.principal, withdrawal_id=paid.withdrawal.id)
    withdraw(service, ana, "1000")  # held: 2000 today, the limit

    with pytest.raises(WithdrawalLimitReached):
        withdraw(service, ana, "1")
    assert balances(service, ana) == (usd(service, "4000"), usd(service, "3000"))
    assert stored_count(wallet) == 2

    # A cancelled withdrawal does not count.
    held = [one for one in service.list_withdrawals(ana) if one.state is WithdrawalState.PENDING]
    service.cancel_withdrawal(ana, withdrawal_id=held[0].id)
    withdraw(service, ana, "1000")
    with pytest.raises(WithdrawalLimitReached):
        withdraw(service, ana, "1")

    # A new day, a new limit (yesterday's pending one has expired by then).
    clock.advance(timedelta(days=1))
    service.list_withdrawals(ana)
    withdraw(service, ana, "1000")
    assert balances(service, ana) == (usd(service, "4000"), usd(service, "3000"))


def test_insufficient_funds_store_nothing(wallet: Wallet) -> None:
    service = wallet.service
    ana = customer(service, "50")
    with pytest.raises(InsufficientFunds):
        withdraw(service, ana, "60")
    assert stored_count(wallet) == 0
    assert service.list_withdrawals(ana) == []
    assert balances(service, ana) == (usd(service, "50"), usd(service, "50"))
    withdraw(service, ana, "50")  # all of it is fine
    assert balances(service, ana) == (usd(service, "50"), Money.zero("USD"))


def test_a_replayed_request_returns_the_same_withdrawal_without_its_secrets(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "500")
    same = key()
    first = withdraw(service, ana, "60", idempotency_key=same)
    again = withdraw(service, ana, "60", idempotency_key=same)
    assert again.withdrawal == first.withdrawal
    assert (again.code, again.pin, again.qr_payload) == (None, None, None)
    assert balances(service, ana) == (usd(service, "500"), usd(service, "440"))
    assert stored_count(wallet) == 1
    with pytest.raises(IdempotencyKeyReused):
        withdraw(service, ana, "70", idempotency_key=same)
    with pytest.raises(IdempotencyKeyReused):
        withdraw(service, ana, "60", channel=Channel.AGENT, idempotency_key=same)
    # The first answer's code still works.
    assert redeem(service, atm, first).withdrawal.id == first.withdrawal.id


@pytest.mark.parametrize("pin", ["0000", "1234", "2580", "12", "abcd"])
def test_a_guessable_or_malformed_chosen_pin_is_refused(wallet: Wallet, pin: str) -> None:
    service = wallet.service
    ana = customer(service, "500")
    with pytest.raises(InvalidInput):
        withdraw(service, ana, "60", pin=pin)
    assert stored_count(wallet) == 0


def test_without_a_chosen_pin_one_is_made_and_works(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    issued = withdraw(service, customer(service), "60", pin=None)
    assert issued.pin is not None
    assert len(issued.pin) == 4
    assert issued.pin.isdigit()
    assert redeem(service, atm, issued, pin=issued.pin).notes == {2000: 3}


def totp(secret: str, clock: FixedClock) -> str:
    return otp.code_at_step(secret, otp.time_step(clock.now()))


def test_a_large_withdrawal_needs_a_fresh_code_with_2fa_on(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    service.set_step_up(actor=admin, amount=usd(service, "100"))
    ana = customer(service, "500")
    secret = service.begin_two_factor(ana).secret
    service.confirm_two_factor(ana, code=totp(secret, clock))
    clock.advance(timedelta(seconds=otp.STEP_SECONDS))  # the confirming code is spent

    withdraw(service, ana, "99.99")  # below the step-up amount: no code
    with pytest.raises(SecondFactorRequired):
        withdraw(service, ana, "100")
    wrong = next(c for c in ("123456", "654321", "111111") if c != totp(secret, clock))
    with pytest.raises(InvalidSecondFactor):
        withdraw(service, ana, "100", code=wrong)
    assert stored_count(wallet) == 1
    assert balances(service, ana) == (usd(service, "500"), usd(service, "400.01"))
    done = withdraw(service, ana, "100", code=totp(secret, clock))
    assert done.code is not None
    assert balances(service, ana) == (usd(service, "500"), usd(service, "300.01"))


def test_without_2fa_a_large_withdrawal_needs_no_code(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    service.set_step_up(actor=admin, amount=usd(service, "100"))
    assert withdraw(service, customer(service, "500"), "500").code is not None


# --- who may do what -----------------------------------------------------------------------------
def test_a_customer_cannot_act_as_a_terminal_or_an_admin(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    refused: list[Callable[[], object]] = [
        lambda: service.redeem_withdrawal(ana, code=code_of(issued), pin=PIN),
        lambda: service.complete_withdrawal(ana, withdrawal_id=issued.withdrawal.id),
        lambda: service.reverse_withdrawal(ana, withdrawal_id=issued.withdrawal.id),
        lambda: service.add_atm(actor=ana, name="Mine"),
        lambda: service.add_agent(actor=ana, phone=ana.phone),
        lambda: service.list_terminals(actor=ana),
        lambda: service.load_cassettes(actor=ana, terminal_id=atm.id, notes={5000: 1}),
        lambda: service.expire_withdrawals(actor=ana),
    ]
    for attempt in refused:
        with pytest.raises(PermissionDenied):
            attempt()
    assert state_of(wallet, issued.withdrawal.id) is WithdrawalState.PENDING
    assert cassettes_of(service, atm) == NOTES
    assert len(service.list_terminals(actor=admin)) == 1
    assert actions(service).count("permission.denied") == len(refused)


def test_an_atm_cannot_move_money_of_its_own(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    assert atm.principal.role is Role.ATM
    assert atm.principal.client
    ana = customer(service, "500")
    with pytest.raises(PermissionDenied):
        withdraw(service, atm.principal, "60")
    issued = withdraw(service, ana, "60")
    with pytest.raises(PermissionDenied):
        service.cancel_withdrawal(atm.principal, withdrawal_id=issued.withdrawal.id)
    with pytest.raises(PermissionDenied):
        service.list_withdrawals(atm.principal)
    with pytest.raises(PermissionDenied):
        service.cash_in(
            atm.principal, to_phone=ana.phone, amount=usd(service, "1"), idempotency_key=key()
        )
    with pytest.raises(PermissionDenied):
        service.load_cassettes(actor=atm.principal, terminal_id=atm.id, notes={5000: 1})


def test_a_client_without_the_atm_scope_cannot_redeem(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    issued = withdraw(service, customer(service, "500"), "60")
    # Client scopes are fixed by kind: an agent-kind client holds agent:cash only.
    device = service.add_client(actor=admin, kind=ClientKind.AGENT, name="Agent device")
    token = service.client_token(client_id=device.client.id, client_secret=device.secret)
    agent_client = service.authenticate(access_token=token.access_token)
    assert ("atm:withdrawals" in agent_client.scopes, agent_client.role) == (False, Role.AGENT)
    with pytest.raises(PermissionDenied, match="atm:withdrawals"):
        service.redeem_withdrawal(agent_client, code=code_of(issued), pin=PIN)
    # The ATM's own principal, as a door would hand it over for a token without the scope.
    unscoped = dataclasses.replace(atm.principal, scopes=frozenset())
    with pytest.raises(PermissionDenied, match="atm:withdrawals"):
        service.redeem_withdrawal(unscoped, code=code_of(issued), pin=PIN)
    assert stored(wallet, issued.withdrawal.id)["pin_attempts"] == 0
    assert redeem(service, atm, issued).withdrawal.state is WithdrawalState.AUTHORIZED
    with pytest.raises(PermissionDenied):
        service.complete_withdrawal(unscoped, withdrawal_id=issued.withdrawal.id)


def test_an_atm_client_that_is_no_registered_terminal_cannot_redeem(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    issued = withdraw(service, customer(service, "500"), "60")
    loose = service.add_client(actor=admin, kind=ClientKind.ATM, name="Not a terminal")
    token = service.client_token(client_id=loose.client.id, client_secret=loose.secret)
    stray = service.authenticate(access_token=token.access_token)
    with pytest.raises(PermissionDenied, match="not a registered terminal"):
        service.redeem_withdrawal(stray, code=code_of(issued), pin=PIN)


def test_a_disabled_atm_client_cannot_act(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    added = service.add_atm(actor=admin, name="ATM 1")
    assert added.client is not None
    assert added.client_secret is not None
    token = service.client_token(client_id=added.client.id, client_secret=added.client_secret)
    service.disable_client(actor=admin, client_id=added.client.id)
    with pytest.raises(NotAuthenticated):
        service.authenticate(access_token=token.access_token)


def test_an_agent_client_cannot_request_a_withdrawal(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    device = service.add_client(actor=admin, kind=ClientKind.AGENT, name="Agent device")
    token = service.client_token(client_id=device.client.id, client_secret=device.secret)
    agent_client = service.authenticate(access_token=token.access_token)
    with pytest.raises(PermissionDenied):
        withdraw(service, agent_client, "60")


# --- secrets at rest -----------------------------------------------------------------------------
def every_value(wallet: Wallet) -> str:
    """Every value of every table, as text."""
    with wallet.engine.connect() as conn:
        names = inspect(conn).get_table_names()
        return "\n".join(
            str(value)
            for name in names
            for row in conn.execute(text(f'SELECT * FROM "{name}"'))
            for value in row
        )


def test_codes_pins_and_qr_nonces_are_stored_only_as_keyed_hashes(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    atm = new_atm(service, admin)
    issued = withdraw(service, customer(service, "500"), "60", pin="5917")
    assert issued.qr_payload is not None
    code, nonce = code_of(issued), service.check_withdrawal_qr(issued.qr_payload).nonce
    redeem(service, atm, issued, pin="5917")

    row = stored(wallet, issued.withdrawal.id)
    assert all(value != "5917" for value in row.values())
    everything = every_value(wallet)
    for secret in (code, nonce, f"{code[:4]} {code[4:7]} {code[7:]}"):
        assert secret not in everything
    with wallet.engine.connect() as conn:
        sealed = conn.execute(
            text("SELECT sealed FROM instance_secrets WHERE name = :name"), {"name": PEPPER}
        ).scalar_one()
    pepper = TEST_KEYRING.open(sealed, context=f"instance:{PEPPER}")
    assert pepper.hex() not in everything
    assert hmac.compare_digest(row["code_digest"], code_digest(pepper, code))
    assert hmac.compare_digest(row["pin_digest"], pin_digest(pepper, issued.withdrawal.id, "5917"))
    assert hmac.compare_digest(row["nonce_digest"], nonce_digest(pepper, nonce))


# --- known bugs ----------------------------------------------------------------------------------
def test_a_wallet_with_money_held_for_a_withdrawal_cannot_be_closed(wallet: Wallet) -> None:
    from mwallet.core.errors import WalletNotEmpty

    service = wallet.service
    ana = customer(service, "100")
    withdraw(service, ana, "100")
    assert balances(service, ana) == (usd(service, "100"), Money.zero("USD"))
    with pytest.raises(WalletNotEmpty):
        service.set_wallet_status(actor=OPERATOR, phone=ana.phone, status=AccountStatus.CLOSED)


def test_a_frozen_wallets_withdrawal_is_not_paid_out(wallet: Wallet, admin: Principal) -> None:
    from mwallet.core.errors import WalletFrozen

    service = wallet.service
    atm = new_atm(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60")
    service.set_wallet_status(actor=admin, phone=ana.phone, status=AccountStatus.FROZEN)
    with pytest.raises(WalletFrozen):
        redeem(service, atm, issued)


@pytest.mark.parametrize("status", [AccountStatus.FROZEN, AccountStatus.CLOSED])
def test_an_agent_whose_wallet_cannot_be_paid_authorizes_nothing(
    wallet: Wallet, admin: Principal, status: AccountStatus
) -> None:
    """The agent hands the cash over before completing: a completion their wallet then refuses
    would leave them out of pocket, and the withdrawal open to be reversed (the customer paid
    twice). So the refusal comes at the PIN, before any cash changes hands."""
    from mwallet.core.errors import WalletClosed, WalletFrozen

    service = wallet.service
    agent = new_agent(service, admin)
    ana = customer(service, "500")
    issued = withdraw(service, ana, "60", channel=Channel.AGENT)
    service.set_wallet_status(actor=admin, phone=agent.principal.phone, status=status)
    with pytest.raises(WalletFrozen if status is AccountStatus.FROZEN else WalletClosed):
        redeem(service, agent, issued)
    (found,) = service.list_withdrawals(ana, limit=10)
    assert found.state is WithdrawalState.PENDING
    service.cancel_withdrawal(ana, withdrawal_id=issued.withdrawal.id)
    assert balances(service, ana) == (usd(service, "500"), usd(service, "500"))


def test_complete_takes_the_notes_the_atm_was_told_to_dispense(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    atm = new_atm(service, admin, notes={2000: 3})
    issued = withdraw(service, customer(service, "500"), "60")
    assert redeem(service, atm, issued).notes == {2000: 3}  # the ATM counts out 3 x 20
    service.load_cassettes(actor=admin, terminal_id=atm.id, notes={5000: 1, 1000: 1})
    service.complete_withdrawal(atm.principal, withdrawal_id=issued.withdrawal.id)
    assert cassettes_of(service, atm) == {5000: 1, 2000: 0, 1000: 1}
