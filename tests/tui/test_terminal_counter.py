"""The terminal app beyond the ATM's happy path: an agent's counter (paying out in their own cash,
cash-in, the float), an ATM's supervisor (cassettes and the day), a dispenser that fails, and a
terminal that stopped between the PIN and the cash. Driven with Pilot on a real wallet (SQLite);
then one snapshot per screen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from mwallet.atm.reader import TypedCode
from mwallet.atm.session import DispenseFault, TerminalSession
from mwallet.core import otp
from mwallet.core.domain.tariffs import Movement, flat
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Channel, WithdrawalState
from mwallet.core.errors import NotAuthenticated, PermissionDenied, WalletError
from mwallet.core.services.withdrawals import IssuedWithdrawal
from mwallet.tui.terminal_app import (
    CashInScreen,
    ConfirmScreen,
    DayScreen,
    ReceiptScreen,
    SupervisorLoginScreen,
    SupervisorScreen,
    TerminalApp,
    WelcomeScreen,
)
from tests.support import PASSWORD, register
from tests.tui.harness import (
    NOTES,
    PIN,
    SIZE,
    Kiosk,
    at_welcome,
    message_of,
    opened,
    play,
    press,
    refused,
    shown,
    steady,
    steps,
    submit,
    usd,
)

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)

AGENT_NAME = "Loja do Zé"


# --- an agent's counter --------------------------------------------------------------------------
@dataclass
class Counter:
    kiosk: Kiosk
    agent: Principal

    def app(self) -> TerminalApp:
        service = self.kiosk.service
        agent = self.agent
        return opened(TerminalSession(service, lambda: agent, name=AGENT_NAME))

    def float_(self) -> str:
        return self.kiosk.service.balance(self.agent).balance.format()

    def withdraw(self, amount: str) -> IssuedWithdrawal:
        return self.kiosk.service.request_withdrawal(
            self.kiosk.customer,
            amount=usd(amount),
            channel=Channel.AGENT,
            pin=PIN,
            idempotency_key=f"agent-{amount}",
        )


@pytest.fixture
def counter(kiosk: Kiosk) -> Counter:
    service = kiosk.service
    agent = register(service, name="José Agente")
    service.add_agent(actor=kiosk.admin, phone=agent.phone, name=AGENT_NAME)
    service.topup(agent, amount=usd("300"), source="sandbox", idempotency_key="float-1")
    agent = service.login(phone=agent.phone, password=PASSWORD).principal  # now with the role
    return Counter(kiosk, agent)


def test_an_agent_pays_out_from_their_own_cash_and_is_credited_the_float(counter: Counter) -> None:
    kiosk = counter.kiosk
    issued = counter.withdraw("70")
    app = counter.app()
    seen: dict[str, str] = {}

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        assert counter.app().session.is_atm is False
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        assert isinstance(app.screen, ConfirmScreen)
        seen["confirm"] = shown(app)
        await pilot.click("#dispense")
        await pilot.pause()
        assert isinstance(app.screen, ReceiptScreen)
        seen["receipt"] = app.screen.receipt
        seen["heading"] = shown(app)

    play(app, scenario)
    assert "Hand over 70.00 USD in cash" in seen["confirm"]
    assert "to Ana M." in seen["confirm"]
    assert " x " not in seen["confirm"]  # an agent has no cassettes
    assert "Paid out: give the receipt" in seen["heading"]
    assert AGENT_NAME in seen["receipt"]
    assert kiosk.state(issued) is WithdrawalState.COMPLETED
    assert counter.float_() == "370.00 USD"
    assert kiosk.balance() == usd("430")
    assert kiosk.cassettes() == NOTES  # the ATM was not touched


def test_an_agent_who_cannot_pay_cancels_and_the_money_goes_back(counter: Counter) -> None:
    kiosk = counter.kiosk
    issued = counter.withdraw("70")

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        await pilot.click("#cancel")
        await pilot.pause()
        assert message_of(app).title_text == "Cancelled"

    play(counter.app(), scenario)
    assert kiosk.state(issued) is WithdrawalState.REVERSED
    assert kiosk.available() == usd("500")
    assert counter.float_() == "300.00 USD"


def test_cash_in_at_the_counter_moves_float_to_the_customer(counter: Counter) -> None:
    kiosk = counter.kiosk
    told: dict[str, str] = {}

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await press(pilot, "f2")
        assert isinstance(app.screen, CashInScreen)
        assert app.screen.query_one("#phone", Input).has_focus
        await submit(pilot, kiosk.customer.phone)
        assert app.screen.query_one("#amount", Input).has_focus
        await submit(pilot, "125.50")
        screen = message_of(app)
        told["title"], told["message"] = screen.title_text, screen.message
        await press(pilot, "enter")
        at_welcome(app)

    play(counter.app(), scenario)
    assert told["title"] == "Cash in done"
    assert f"125.50 USD sent to {kiosk.customer.phone}" in told["message"]
    assert kiosk.balance() == usd("625.50")
    assert counter.float_() == "174.50 USD"


@pytest.mark.parametrize(
    ("phone", "amount", "code", "says"),
    [
        ("+258849999999", "10", "unknown_recipient", "+258849999999"),
        (None, "0", "invalid_amount", "greater than zero"),
        (None, "10.555", "invalid_amount", "decimal"),
        (None, "301", "insufficient_funds", "funds"),
        ("not a phone", "10", "invalid_phone_number", "phone"),
    ],
)
def test_a_refused_cash_in_moves_nothing(
    counter: Counter, phone: str | None, amount: str, code: str, says: str
) -> None:
    kiosk = counter.kiosk

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await press(pilot, "f2")
        await submit(pilot, phone or kiosk.customer.phone)
        await submit(pilot, amount)
        await refused(pilot, app, code=code, says=says)

    play(counter.app(), scenario)
    assert kiosk.balance() == usd("500")
    assert counter.float_() == "300.00 USD"


def test_a_large_cash_in_asks_for_the_agents_second_factor(counter: Counter) -> None:
    kiosk = counter.kiosk
    service = kiosk.service
    service.topup(counter.agent, amount=usd("2000"), source="sandbox", idempotency_key="float-2")
    secret = service.begin_two_factor(counter.agent).secret
    service.confirm_two_factor(
        counter.agent, code=otp.code_at_step(secret, step := otp.time_step(kiosk.clock.now()))
    )
    kiosk.clock.advance(timedelta(seconds=otp.STEP_SECONDS))
    code_now = otp.code_at_step(secret, step + 1)

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await press(pilot, "f2")
        await submit(pilot, kiosk.customer.phone)
        await submit(pilot, "1500")
        assert isinstance(app.screen, CashInScreen)  # not sent: a code is needed
        code = app.screen.query_one("#code", Input)
        assert code.display
        assert code.has_focus
        assert "code" in str(app.screen.query_one("#asked", Static).content)
        assert kiosk.balance() == usd("500")
        await submit(pilot, code_now)
        assert message_of(app).title_text == "Cash in done"

    play(counter.app(), scenario)
    assert kiosk.balance() == usd("2000")
    assert counter.float_() == "800.00 USD"


def test_the_float_view_shows_the_agents_day(counter: Counter) -> None:
    kiosk = counter.kiosk
    issued = counter.withdraw("70")
    seen: dict[str, str] = {}

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        await press(pilot, "enter")  # cash handed over
        await press(pilot, "enter")  # receipt done
        await press(pilot, "f2")
        await submit(pilot, kiosk.customer.phone)
        await submit(pilot, "20")
        await press(pilot, "enter")
        await press(pilot, "f3")
        assert isinstance(app.screen, DayScreen)
        seen["day"] = shown(app)
        await press(pilot, "enter")
        at_welcome(app)

    play(counter.app(), scenario)
    day = seen["day"]
    assert "Float 350.00 USD" in day  # 300 + 70 paid out - 20 cash in
    assert f"{'Paid out':<12}{'70.00 USD':>18}  (1)" in day
    assert f"{'Cash in':<12}{'20.00 USD':>18}  (1)" in day
    assert f"{'Cash drawer':<12}{'-50.00 USD':>18}" in day  # 70 handed out, 20 taken in


def test_the_float_view_counts_only_today(counter: Counter) -> None:
    issued = counter.withdraw("70")
    service = counter.kiosk.service
    redeemed = service.redeem_withdrawal(counter.agent, code=issued.code, pin=PIN)
    service.complete_withdrawal(counter.agent, withdrawal_id=redeemed.withdrawal.id)
    counter.kiosk.clock.advance(timedelta(days=1))
    day = service.terminal_day(counter.agent)
    assert (day.paid_out.minor, day.paid_out_count) == (0, 0)
    assert day.cash == usd("370")


def test_an_agent_has_no_supervisor_and_an_atm_no_cash_in(counter: Counter) -> None:
    async def at_the_counter(pilot: Pilot[None], app: TerminalApp) -> None:
        await press(pilot, "f9")
        at_welcome(app)
        assert "Supervisor" not in footer_of(app)
        assert "Cash in" in footer_of(app)

    async def at_the_atm(pilot: Pilot[None], app: TerminalApp) -> None:
        for key in ("f2", "f3"):
            await press(pilot, key)
            at_welcome(app)
        assert "Cash in" not in footer_of(app)
        assert "Supervisor" in footer_of(app)

    play(counter.app(), at_the_counter)
    play(counter.kiosk.app(), at_the_atm)


def footer_of(app: TerminalApp) -> str:
    return " ".join(
        binding.description for (_, binding, enabled, _) in app.active_bindings.values() if enabled
    )


# --- the ATM's supervisor ------------------------------------------------------------------------
async def log_in(pilot: Pilot[None], phone: str, password: str = PASSWORD) -> None:
    await press(pilot, "f9")
    assert isinstance(pilot.app.screen, SupervisorLoginScreen)
    await submit(pilot, phone)
    await submit(pilot, password)


def test_a_supervisor_loads_cassettes_and_sees_the_day(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("90")
    service = kiosk.service
    atm = kiosk.atm_principal()
    service.complete_withdrawal(
        atm, withdrawal_id=service.redeem_withdrawal(atm, code=issued.code, pin=PIN).withdrawal.id
    )
    seen: dict[str, str] = {}

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await log_in(pilot, kiosk.admin.phone)
        assert isinstance(app.screen, SupervisorScreen)
        seen["before"] = shown(app)
        await submit(pilot, "100x5 20x2")
        seen["after"] = shown(app)
        assert app.screen.query_one("#load", Input).value == ""
        await submit(pilot, "20x")
        seen["bad"] = shown(app)
        await press(pilot, "escape")
        at_welcome(app)

    play(kiosk.app(), scenario)
    assert "Supervisor: Admin User" in seen["before"]
    assert f"{'Cassettes':<12}{'610.00 USD':>20}" in seen["before"]  # 9 x 50 + 8 x 20 left
    assert "9 x 50.00 USD" in seen["before"]
    assert f"{'Paid today':<12}{'90.00 USD':>20}  (1)" in seen["before"]
    assert "1,150.00 USD" in seen["after"]
    assert "5 x 100.00 USD" in seen["after"]
    assert "10 x 20.00 USD" in seen["after"]
    assert "Loaded." in seen["after"]
    assert "Not loaded:" in seen["bad"]
    assert "DENOMINATIONxCOUNT" in seen["bad"]
    assert kiosk.cassettes() == {10000: 5, 5000: 9, 2000: 10}


def test_leaving_supervisor_mode_ends_the_supervisors_login(kiosk: Kiosk) -> None:
    session: list[TerminalSession] = []

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        session.append(app.session)
        await log_in(pilot, kiosk.admin.phone)
        assert isinstance(app.screen, SupervisorScreen)
        refresh = app.session._supervisor_refresh
        assert refresh is not None
        await press(pilot, "escape")
        with pytest.raises(NotAuthenticated):
            kiosk.service.refresh(refresh_token=refresh)

    play(kiosk.app(), scenario)
    assert session[0]._supervisor_refresh is None


@pytest.mark.parametrize("who", ["customer", "wrong password"])
def test_supervisor_mode_is_refused_to_anyone_else(kiosk: Kiosk, who: str) -> None:
    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        if who == "customer":
            await log_in(pilot, kiosk.customer.phone)
            await refused(pilot, app, code="permission_denied", says="only a supervisor")
        else:
            await log_in(pilot, kiosk.admin.phone, "not-the-password")
            await refused(pilot, app, code="invalid_credentials", says="")

    play(kiosk.app(), scenario)
    assert kiosk.cassettes() == NOTES


def test_the_session_refuses_a_customer_as_supervisor(kiosk: Kiosk) -> None:
    session = kiosk.app().session
    with pytest.raises(PermissionDenied):
        session.supervisor(phone=kiosk.customer.phone, password=PASSWORD)
    with pytest.raises(WalletError):  # not even an admin can load an agent's "cassettes"
        session.load(kiosk.customer, "20x1")


# --- a dispenser that fails ----------------------------------------------------------------------
class JammedDispenser:
    def __init__(self) -> None:
        self.asked: list[Mapping[int, int]] = []

    def present(self, notes: Mapping[int, int]) -> None:
        self.asked.append(dict(notes))
        raise DispenseFault("notes jammed in the transport")


def test_a_dispenser_fault_reverses_and_the_money_goes_back(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("60")
    jammed = JammedDispenser()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        await press(pilot, "enter")
        await refused(pilot, app, code="cash_not_dispensed", says="nothing was paid out")
        assert app.open_redemption is None

    play(kiosk.app(jammed), scenario)
    assert jammed.asked == [{2000: 3}]
    assert kiosk.state(issued) is WithdrawalState.REVERSED
    assert kiosk.available() == usd("500")
    assert kiosk.balance() == usd("500")
    assert kiosk.cassettes() == NOTES
    assert kiosk.cash_paid_out() == 0


# --- a terminal that stopped between the PIN and the cash ----------------------------------------
def test_a_terminal_reverses_what_it_left_authorized_when_it_starts(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("60")
    elsewhere = kiosk.service.request_withdrawal(
        kiosk.customer, amount=usd("40"), channel=Channel.ATM, pin=PIN, idempotency_key="w-2"
    )
    # The ATM authorized it and then died (no quit, no unmount): the withdrawal stays authorized.
    crashed = kiosk.app().session
    crashed.redeem(TypedCode(issued.code or ""), PIN)
    other = kiosk.service.add_atm(actor=kiosk.admin, name="ATM 2")
    kiosk.service.load_cassettes(actor=kiosk.admin, terminal_id=other.terminal.id, notes=NOTES)
    second = Kiosk(kiosk.wallet, kiosk.clock, kiosk.admin, kiosk.customer, other)
    second.app().session.redeem(TypedCode(elsewhere.code or ""), PIN)
    assert kiosk.state(issued) is WithdrawalState.AUTHORIZED
    told: list[str] = []

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        screen = message_of(app)
        told.append(screen.message)
        assert screen.title_text == "Reversed"
        await press(pilot, "enter")
        at_welcome(app)

    play(kiosk.app(), scenario)
    assert told == [
        "1 withdrawal left open when this terminal stopped: nothing was paid out, so the "
        "money is back with the customer."
    ]
    assert kiosk.state(issued) is WithdrawalState.REVERSED
    assert kiosk.state(elsewhere) is WithdrawalState.AUTHORIZED  # another ATM's: not touched
    assert kiosk.available() == usd("460")
    # Starting again finds nothing more to reverse.
    assert list(kiosk.app().session.open()) == []
    assert kiosk.app().reversed_at_start == []


# --- snapshots -----------------------------------------------------------------------------------
def test_snapshot_agent_confirm(counter: Counter, snap_compare: Any) -> None:
    issued = counter.withdraw("70")
    keys = (*(issued.code or ""), "enter", *PIN, "enter")
    assert snap_compare(
        counter.app(), terminal_size=SIZE, run_before=steps(*keys, expect=ConfirmScreen)
    )


def test_snapshot_cash_in(counter: Counter, snap_compare: Any) -> None:
    keys = ("f2", *"+258 84 123 4567", "enter", *"125.50")  # not sent: the phone can be any
    assert snap_compare(
        counter.app(), terminal_size=SIZE, run_before=steps(*keys, expect=CashInScreen)
    )


def test_snapshot_float_view(counter: Counter, snap_compare: Any) -> None:
    keys = ("f2", *counter.kiosk.customer.phone, "enter", *"20", "enter", "enter", "f3")
    assert snap_compare(
        counter.app(), terminal_size=SIZE, run_before=steps(*keys, expect=DayScreen)
    )


def test_snapshot_supervisor_login(kiosk: Kiosk, snap_compare: Any) -> None:
    assert snap_compare(
        kiosk.app(), terminal_size=SIZE, run_before=steps("f9", expect=SupervisorLoginScreen)
    )


def test_snapshot_supervisor(kiosk: Kiosk, snap_compare: Any) -> None:
    keys = ("f9", *kiosk.admin.phone, "enter", *PASSWORD, "enter")
    assert snap_compare(
        kiosk.app(), terminal_size=SIZE, run_before=steps(*keys, expect=SupervisorScreen)
    )


def test_snapshot_left_over_reversed(kiosk: Kiosk, snap_compare: Any) -> None:
    issued = kiosk.withdraw("60")
    kiosk.app().session.redeem(TypedCode(issued.code or ""), PIN)

    async def run_before(pilot: Pilot[None]) -> None:
        assert message_of(pilot.app).title_text == "Reversed"  # type: ignore[arg-type]
        await steady(pilot)

    assert snap_compare(kiosk.app(), terminal_size=SIZE, run_before=run_before)


def test_snapshot_welcome_at_the_counter(counter: Counter, snap_compare: Any) -> None:
    assert snap_compare(counter.app(), terminal_size=SIZE, run_before=steps(expect=WelcomeScreen))


# --- a fee ---------------------------------------------------------------------------------------
def test_a_withdrawal_fee_is_on_the_receipt_and_kept_by_the_wallet(kiosk: Kiosk) -> None:
    kiosk.service.set_tariff(
        actor=kiosk.admin, movement=Movement.WITHDRAWAL_ATM, tariff=flat(usd("1.25").minor)
    )
    issued = kiosk.withdraw("60")
    assert issued.withdrawal.fee == usd("1.25")
    assert kiosk.available() == usd("438.75")
    receipt: list[str] = []

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        assert "Pay out 60.00 USD" in shown(app)
        await press(pilot, "enter")
        assert isinstance(app.screen, ReceiptScreen)
        receipt.append(app.screen.receipt)

    play(kiosk.app(), scenario)
    assert f"{'Fee':<8}{'1.25 USD':>24}" in receipt[0].splitlines()
    assert kiosk.balance() == usd("438.75")
    assert kiosk.cash_paid_out() == 6000  # the ATM's operator is owed the cash, not the fee
    assert kiosk.fees_earned() == 125
