"""What the terminal app's tests share: a wallet with a customer and an ATM (`Kiosk`), and how
to drive the app headless with Textual's Pilot and hold a screen still for a snapshot."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import text
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input, Static
from textual.widgets._header import HeaderClock

from mwallet.atm.session import Dispenser, TerminalSession, client_authority
from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.domain.ledger import cash_account_code
from mwallet.core.domain.money import Money
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Channel, WithdrawalState
from mwallet.core.services.terminals import NewTerminal
from mwallet.core.services.wallet_service import WalletService
from mwallet.core.services.withdrawals import IssuedWithdrawal
from mwallet.tui.terminal_app import (
    MessageScreen,
    TerminalApp,
    WelcomeScreen,
)
from tests.support import OPERATOR

ATM_NAME = "ATM Baixa 01"
PIN = "4826"
WRONG_PIN = "8531"
NOTES = {5000: 10, 2000: 10}  # ten 50s and ten 20s, in cents
SIZE = (80, 24)

Scenario = Callable[[Pilot[None], TerminalApp], Awaitable[None]]


# --- set-up --------------------------------------------------------------------------------------
@dataclass
class Kiosk:
    """A wallet with a customer (500 USD) and an ATM with loaded cassettes."""

    wallet: Wallet
    clock: FixedClock
    admin: Principal
    customer: Principal
    atm: NewTerminal

    @property
    def service(self) -> WalletService:
        return self.wallet.service

    def app(self, dispenser: Dispenser | None = None) -> TerminalApp:
        """The ATM's app, opened as `mwallet terminal` opens it."""
        assert self.atm.client is not None
        assert self.atm.client_secret is not None
        who = client_authority(self.service, self.atm.client.id, self.atm.client_secret)
        return opened(TerminalSession(self.service, who, name=ATM_NAME, dispenser=dispenser))

    def atm_principal(self) -> Principal:
        """The ATM as the services see it: its client-credentials token, authenticated."""
        assert self.atm.client is not None
        assert self.atm.client_secret is not None
        token = self.service.client_token(
            client_id=self.atm.client.id, client_secret=self.atm.client_secret
        )
        return self.service.authenticate(access_token=token.access_token)

    def withdraw(self, amount: str = "60", pin: str = PIN) -> IssuedWithdrawal:
        return self.service.request_withdrawal(
            self.customer,
            amount=self.service.parse_money(amount),
            channel=Channel.ATM,
            pin=pin,
            idempotency_key=f"w-{uuid.uuid4().hex}",
        )

    def available(self) -> Money:
        return self.service.balance(self.customer).available

    def balance(self) -> Money:
        return self.service.balance(self.customer).balance

    def state(self, issued: IssuedWithdrawal) -> WithdrawalState:
        for one in self.service.list_withdrawals(self.customer, limit=100):
            if one.id == issued.withdrawal.id:
                return one.state
        raise AssertionError(f"no withdrawal {issued.withdrawal.id}")

    def cash_paid_out(self) -> int:
        with self.wallet.engine.connect() as conn:
            found = conn.execute(
                text("SELECT balance FROM accounts WHERE code = :code"),
                {"code": cash_account_code(self.atm.terminal.id)},
            ).scalar_one_or_none()
        return 0 if found is None else int(found)

    def fees_earned(self) -> int:
        with self.wallet.engine.connect() as conn:
            found = conn.execute(
                text("SELECT balance FROM accounts WHERE code = 'fees:USD'")
            ).scalar_one()
        return int(found)

    def cassettes(self) -> dict[int, int]:
        for terminal, notes in self.service.list_terminals(actor=OPERATOR):
            if terminal.id == self.atm.terminal.id:
                return dict(notes)
        raise AssertionError("the ATM is gone")


def opened(session: TerminalSession) -> TerminalApp:
    return TerminalApp(session, reversed_at_start=session.open())


def usd(amount: str) -> Money:
    return Money.parse(amount, "USD")


# --- driving the app -----------------------------------------------------------------------------
def play(app: TerminalApp, scenario: Scenario) -> None:
    """Run `scenario` against the app in a headless 80x24 terminal (no pytest-asyncio here)."""

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await scenario(pilot, app)

    asyncio.run(main())


async def submit(pilot: Pilot[None], typed: str) -> None:
    """Type into the focused field and press Enter, as a person or a keyboard-wedge scanner."""
    await pilot.press(*typed, "enter")
    await pilot.pause()


async def scan(pilot: Pilot[None], payload: str) -> None:
    """A scanned payload, put into the entry field at once (typing 300 characters key by key
    takes seconds: one test does it), then Enter."""
    pilot.app.screen.query_one("#entry", Input).insert_text_at_cursor(payload)
    await pilot.press("enter")
    await pilot.pause()


async def press(pilot: Pilot[None], *keys: str) -> None:
    await pilot.press(*keys)
    await pilot.pause()


def shown(app: TerminalApp) -> str:
    """The text of every label and static on the current screen."""
    return "\n".join(str(widget.content) for widget in app.screen.query(Static))


def message_of(app: TerminalApp) -> MessageScreen:
    screen = app.screen
    assert isinstance(screen, MessageScreen), type(screen).__name__
    return screen


def at_welcome(app: TerminalApp) -> None:
    assert isinstance(app.screen, WelcomeScreen), type(app.screen).__name__
    entry = app.screen.query_one("#entry", Input)
    assert entry.value == ""
    assert entry.has_focus


async def refused(pilot: Pilot[None], app: TerminalApp, *, code: str, says: str) -> str:
    """Check the refusal screen, press OK, and be back at a fresh welcome screen."""
    screen = message_of(app)
    assert screen.code == code, screen.message
    assert says in screen.message
    assert says in shown(app)
    assert screen.title_text == "Sorry"
    await press(pilot, "enter")
    at_welcome(app)
    return screen.message


# --- holding a screen still for snapshots ------------------------------------------------------
async def steady(pilot: Pilot[None]) -> None:
    """What would make a snapshot differ from run to run, held still: the header clock shows the
    wall-clock time (datetime.now, not the wallet's clock), and an input's cursor blinks."""
    await pilot.pause()
    for clock in pilot.app.screen.query(HeaderClock):
        clock.time_format = "09:30:00"
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def steps(
    *keys: str,
    expect: type[Screen[None]],
    then: Callable[[TerminalApp], None] | None = None,
) -> Callable[[Pilot[None]], Awaitable[None]]:
    """A `run_before` that presses `keys`, checks the screen reached, optionally adjusts it, and
    holds it still for the snapshot."""

    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.press(*keys)
        await pilot.pause()
        app = pilot.app
        assert isinstance(app, TerminalApp)
        assert isinstance(app.screen, expect), type(app.screen).__name__
        if then is not None:
            then(app)
        await steady(pilot)

    return run_before
