"""The ATM terminal app driven with Textual's Pilot, on a real wallet (SQLite; the services behind
it run on both databases in tests/integration): the code or the scanned QR payload, the PIN, the
confirm screen, the receipt, and every refusal, each of which leads back to the welcome screen.
Then one SVG snapshot per screen (tests/tui/__snapshots__).

After every test the ledger verifies and the holds account holds exactly the withdrawals still
pending or authorized.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from mwallet.bootstrap import Wallet
from mwallet.core import withdrawal_qr
from mwallet.core.domain.withdrawals import Channel, WithdrawalState
from mwallet.core.tokens import new_signing_key
from mwallet.tui.terminal_app import (
    ConfirmScreen,
    MessageScreen,
    PinScreen,
    ReceiptScreen,
    TerminalApp,
    WelcomeScreen,
)
from tests.tui.harness import (
    ATM_NAME,
    NOTES,
    PIN,
    SIZE,
    WRONG_PIN,
    Kiosk,
    at_welcome,
    message_of,
    play,
    press,
    refused,
    scan,
    shown,
    steady,
    steps,
    submit,
    usd,
)

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


# --- the happy paths -----------------------------------------------------------------------------
def test_welcome_screen_asks_for_the_code(kiosk: Kiosk) -> None:
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        at_welcome(app)
        assert ATM_NAME in shown(app)
        assert "10-digit code" in shown(app)
        assert app.sub_title == ATM_NAME

    play(app, scenario)


def test_a_typed_code_is_paid_out_with_a_receipt(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("60")
    assert issued.code is not None
    assert issued.pin == PIN
    assert kiosk.available() == usd("440")
    app = kiosk.app()
    seen: dict[str, str] = {}

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        code = issued.code
        assert code is not None
        await submit(pilot, f"{code[:3]} {code[3:6]}-{code[6:]}")  # as printed: spaced
        screen = app.screen
        assert isinstance(screen, PinScreen)
        assert screen.preview is None  # a typed code shows no amount before the PIN
        assert "Withdrawal of" not in shown(app)
        pin = screen.query_one("#pin", Input)
        assert pin.has_focus
        assert pin.password
        await submit(pilot, PIN)

        confirm = app.screen
        assert isinstance(confirm, ConfirmScreen)
        seen["confirm"] = shown(app)
        assert kiosk.state(issued) is WithdrawalState.AUTHORIZED
        await pilot.click("#dispense")
        await pilot.pause()

        receipt = app.screen
        assert isinstance(receipt, ReceiptScreen)
        seen["receipt"] = receipt.receipt
        assert receipt.receipt in shown(app)
        assert "Please take your cash" in shown(app)
        await press(pilot, "enter")  # Done
        at_welcome(app)

    play(app, scenario)
    assert "Pay out 60.00 USD" in seen["confirm"]
    assert "to Ana M." in seen["confirm"]
    assert "3 x 20.00 USD" in seen["confirm"]
    assert "Machava" not in seen["confirm"]

    receipt = seen["receipt"]
    assert "60.00 USD" in receipt
    assert "3 x 20.00 USD" in receipt
    assert "Ana M." in receipt
    assert ATM_NAME in receipt
    assert "2026-01-15 09:30 UTC" in receipt
    assert "COMPLETED" in receipt
    assert issued.withdrawal.id[-10:] in receipt
    # Nothing a stranger could use: not the code, not the PIN, not the full name or phone.
    assert issued.code not in receipt
    assert PIN not in receipt
    assert "Machava" not in receipt
    assert kiosk.customer.phone not in receipt

    assert kiosk.state(issued) is WithdrawalState.COMPLETED
    assert kiosk.balance() == usd("440")
    assert kiosk.available() == usd("440")
    assert kiosk.cash_paid_out() == 6000
    assert kiosk.cassettes() == {5000: 10, 2000: 7}


def test_enter_on_the_confirm_screen_dispenses(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("100")
    assert issued.code is not None
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        assert isinstance(app.screen, ConfirmScreen)
        assert "2 x 50.00 USD" in shown(app)
        await press(pilot, "enter")
        assert isinstance(app.screen, ReceiptScreen)

    play(app, scenario)
    assert kiosk.state(issued) is WithdrawalState.COMPLETED
    assert kiosk.cash_paid_out() == 10000
    assert kiosk.cassettes() == {5000: 8, 2000: 10}


def test_a_scanned_qr_payload_shows_the_amount_before_the_pin(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("90")
    assert issued.qr_payload is not None
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        payload = issued.qr_payload
        assert payload is not None
        await submit(pilot, payload)  # a keyboard-wedge scanner types it, then Enter
        screen = app.screen
        assert isinstance(screen, PinScreen)
        assert screen.preview is not None
        assert screen.preview.withdrawal_id == issued.withdrawal.id
        assert screen.preview.amount == usd("90")
        assert "Withdrawal of 90.00 USD" in shown(app)
        assert "QR code checked" in shown(app)
        # Checked offline: nothing was authorized yet.
        assert kiosk.state(issued) is WithdrawalState.PENDING
        await submit(pilot, PIN)
        assert isinstance(app.screen, ConfirmScreen)
        assert "Pay out 90.00 USD" in shown(app)
        assert "1 x 50.00 USD" in shown(app)
        assert "2 x 20.00 USD" in shown(app)
        await pilot.click("#dispense")
        await pilot.pause()
        assert isinstance(app.screen, ReceiptScreen)
        assert "90.00 USD" in app.screen.receipt
        assert payload not in app.screen.receipt

    play(app, scenario)
    assert kiosk.state(issued) is WithdrawalState.COMPLETED
    assert kiosk.available() == usd("410")
    assert kiosk.cash_paid_out() == 9000


def test_a_payload_scanned_in_lower_case_is_paid_out(kiosk: Kiosk) -> None:
    """A scanner left in lower-case mode: the prefix and base32 read the same either way."""
    issued = kiosk.withdraw("40")
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await scan(pilot, f"  {(issued.qr_payload or '').lower()}  ")
        assert isinstance(app.screen, PinScreen)
        assert "Withdrawal of 40.00 USD" in shown(app)
        await submit(pilot, PIN)
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "enter")
        assert isinstance(app.screen, ReceiptScreen)

    play(app, scenario)
    assert kiosk.state(issued) is WithdrawalState.COMPLETED
    assert kiosk.cassettes() == {5000: 10, 2000: 8}


def test_escape_on_the_pin_screen_starts_over_and_leaves_the_withdrawal_pending(
    kiosk: Kiosk,
) -> None:
    issued = kiosk.withdraw("60")
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        assert isinstance(app.screen, PinScreen)
        await press(pilot, "4", "8")
        await press(pilot, "escape")
        at_welcome(app)
        # And the same code goes through afterwards.
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "enter")
        assert isinstance(app.screen, ReceiptScreen)

    play(app, scenario)
    assert kiosk.state(issued) is WithdrawalState.COMPLETED


# --- cancel ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["click", "escape"])
def test_cancel_on_the_confirm_screen_reverses_and_returns_the_money(
    kiosk: Kiosk, how: str
) -> None:
    issued = kiosk.withdraw("60")
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        assert isinstance(app.screen, ConfirmScreen)
        assert kiosk.state(issued) is WithdrawalState.AUTHORIZED
        if how == "click":
            await pilot.click("#cancel")
            await pilot.pause()
        else:
            await press(pilot, "escape")
        screen = message_of(app)
        assert screen.title_text == "Cancelled"
        assert screen.code is None
        assert "Nothing was paid out" in shown(app)
        await press(pilot, "enter")
        at_welcome(app)

    play(app, scenario)
    assert kiosk.state(issued) is WithdrawalState.REVERSED
    assert kiosk.available() == usd("500")
    assert kiosk.balance() == usd("500")
    assert kiosk.cash_paid_out() == 0
    assert kiosk.cassettes() == NOTES


def test_quitting_on_the_confirm_screen_returns_the_money(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("60")
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("ctrl+q")
        await pilot.pause()

    play(app, scenario)
    assert app.return_code is not None  # the app did quit
    # Not even a day later, after an expiry sweep, is the money back.
    kiosk.clock.advance(timedelta(days=1))
    kiosk.service.expire_withdrawals(actor=kiosk.admin)
    assert kiosk.state(issued) is WithdrawalState.REVERSED
    assert kiosk.available() == usd("500")


# --- refusals -------------------------------------------------------------------------------------
def test_a_wrong_pin_says_how_many_attempts_are_left(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("60")
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        await submit(pilot, WRONG_PIN)
        await refused(pilot, app, code="wrong_pin", says="wrong PIN: 2 attempts left")
        await submit(pilot, issued.code or "")
        await submit(pilot, WRONG_PIN)
        message_of(app)
        await press(pilot, "escape")  # escape works as OK does
        at_welcome(app)
        # The right PIN still works after two wrong ones.
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "enter")
        assert isinstance(app.screen, ReceiptScreen)

    play(app, scenario)
    assert kiosk.state(issued) is WithdrawalState.COMPLETED


def test_three_wrong_pins_block_the_withdrawal_and_return_the_money(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("60")
    app = kiosk.app()
    told: list[str] = []

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        for _ in range(3):
            await submit(pilot, issued.code or "")
            await submit(pilot, WRONG_PIN)
            told.append(await refused(pilot, app, code="wrong_pin", says="wrong PIN"))
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        await refused(pilot, app, code="withdrawal_not_pending", says="blocked after wrong PINs")

    play(app, scenario)
    assert told[0] == "wrong PIN: 2 attempts left"
    assert told[1] == "wrong PIN: 1 attempt left"
    assert "blocked" in told[2]
    assert kiosk.state(issued) is WithdrawalState.BLOCKED
    assert kiosk.available() == usd("500")


def test_an_expired_code_is_refused_and_the_money_is_back(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("60")
    kiosk.clock.advance(timedelta(minutes=31))
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        assert isinstance(app.screen, PinScreen)
        await submit(pilot, PIN)
        await refused(pilot, app, code="withdrawal_expired", says="has expired")

    play(app, scenario)
    assert kiosk.state(issued) is WithdrawalState.EXPIRED
    assert kiosk.available() == usd("500")


def test_an_expired_qr_is_refused_before_the_pin(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("60")
    kiosk.clock.advance(timedelta(minutes=30))
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await scan(pilot, issued.qr_payload or "")
        await refused(pilot, app, code="invalid_qr", says="this QR code has expired")

    play(app, scenario)
    assert kiosk.state(issued) is WithdrawalState.EXPIRED  # listing expires it on the way
    assert kiosk.available() == usd("500")


def test_a_forged_qr_is_refused_before_the_pin(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("60")
    assert issued.qr_payload is not None
    genuine = withdrawal_qr.key_id_of(issued.qr_payload)
    private, _ = new_signing_key()
    forged = withdrawal_qr.sign(
        withdrawal_qr.QrClaims(
            issued.withdrawal.id,
            usd("60"),
            issued.withdrawal.expires_at,
            "nonce",
            genuine,  # claims the wallet's key id, signed with another key
        ),
        private_key=private,
    )
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await scan(pilot, forged)
        await refused(pilot, app, code="invalid_qr", says="not issued by this wallet")

    play(app, scenario)
    assert kiosk.state(issued) is WithdrawalState.PENDING


def test_an_unknown_code_is_refused(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("60")
    assert issued.code is not None
    unknown = "0000000000" if issued.code != "0000000000" else "1111111111"
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, unknown)
        assert isinstance(app.screen, PinScreen)  # codes are looked up with the PIN
        await submit(pilot, PIN)
        await refused(
            pilot, app, code="unknown_withdrawal_code", says="no withdrawal has that code"
        )

    play(app, scenario)
    assert kiosk.state(issued) is WithdrawalState.PENDING


@pytest.mark.parametrize(
    ("typed", "code", "says"),
    [
        ("hello", "invalid_input", "10 digits"),
        ("12345", "invalid_input", "10 digits"),
        ("   ", "invalid_input", "type the withdrawal code or scan its QR code"),
        ("MW1:NOT-A-PAYLOAD", "invalid_qr", "not a withdrawal QR code"),
    ],
)
def test_garbage_in_the_entry_is_refused_at_once(
    kiosk: Kiosk, typed: str, code: str, says: str
) -> None:
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, typed)
        await refused(pilot, app, code=code, says=says)

    play(app, scenario)


def test_an_empty_enter_is_refused(kiosk: Kiosk) -> None:
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await press(pilot, "enter")
        await refused(pilot, app, code="invalid_input", says="type the withdrawal code")

    play(app, scenario)


def test_a_short_pin_is_refused(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("60")
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        await submit(pilot, "48")
        await refused(pilot, app, code="invalid_input", says="a PIN is 4 digits")

    play(app, scenario)
    assert kiosk.state(issued) is WithdrawalState.PENDING


def test_the_pin_field_takes_four_digits_only(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("60")
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        await press(pilot, "4", "x", "8", "-", "2", "6", "9", "9")
        assert app.screen.query_one("#pin", Input).value == PIN
        await press(pilot, "enter")
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "enter")

    play(app, scenario)
    assert kiosk.state(issued) is WithdrawalState.COMPLETED


def test_an_atm_that_cannot_make_the_amount_refuses(wallet: Wallet, kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("30")  # 50s and 20s cannot make 30
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        await refused(pilot, app, code="cannot_dispense", says="cannot pay 30.00 USD")

    play(app, scenario)
    assert kiosk.state(issued) is WithdrawalState.PENDING  # nothing was authorized
    assert kiosk.available() == usd("470")
    assert kiosk.cassettes() == NOTES


def test_an_empty_atm_says_it_is_out_of_cash(wallet: Wallet, kiosk: Kiosk) -> None:
    empty = wallet.service.add_atm(actor=kiosk.admin, name="ATM Vazio")
    kiosk.atm = empty
    issued = kiosk.withdraw("60")
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        await refused(pilot, app, code="out_of_cash", says="out of cash")

    play(app, scenario)
    assert kiosk.state(issued) is WithdrawalState.PENDING


def test_five_unknown_codes_lock_the_terminal(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("60")
    assert issued.code is not None
    unknown = [f"{n:010d}" for n in range(1, 7) if f"{n:010d}" != issued.code][:5]
    app = kiosk.app()
    told: list[str] = []

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        for code in unknown:
            await submit(pilot, code)
            await submit(pilot, PIN)
            screen = message_of(app)
            told.append(screen.code or "")
            await press(pilot, "enter")
            at_welcome(app)
        # Locked: even the right code and PIN are refused now.
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        await refused(pilot, app, code="terminal_locked", says="locked after too many")
        # Fifteen minutes later the terminal works again.
        kiosk.clock.advance(timedelta(minutes=15))
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "enter")
        assert isinstance(app.screen, ReceiptScreen)

    play(app, scenario)
    assert told == ["unknown_withdrawal_code"] * 4 + ["terminal_locked"]
    assert kiosk.state(issued) is WithdrawalState.COMPLETED


def test_the_fifth_unknown_code_says_the_terminal_is_locked(kiosk: Kiosk) -> None:
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        for n in range(1, 5):
            await submit(pilot, f"{n:010d}")
            await submit(pilot, PIN)
            await refused(pilot, app, code="unknown_withdrawal_code", says="no withdrawal")
        await submit(pilot, "0000000005")
        await submit(pilot, PIN)
        await refused(pilot, app, code="terminal_locked", says="locked for 15 minutes")

    play(app, scenario)


def test_a_withdrawal_for_an_agent_is_refused_at_the_atm(kiosk: Kiosk) -> None:
    issued = kiosk.service.request_withdrawal(
        kiosk.customer,
        amount=usd("60"),
        channel=Channel.AGENT,
        pin=PIN,
        idempotency_key="agent-1",
    )
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        await refused(pilot, app, code="withdrawal_not_pending", says="paid out by an agent")

    play(app, scenario)
    assert kiosk.state(issued) is WithdrawalState.PENDING


def test_a_code_already_paid_out_is_refused(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("60")
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        await press(pilot, "enter")
        assert isinstance(app.screen, ReceiptScreen)
        await press(pilot, "enter")
        at_welcome(app)
        await submit(pilot, issued.code or "")
        await submit(pilot, PIN)
        await refused(pilot, app, code="withdrawal_not_pending", says="already paid out")

    play(app, scenario)
    assert kiosk.cash_paid_out() == 6000


def test_a_withdrawal_cancelled_by_the_customer_is_refused(kiosk: Kiosk) -> None:
    issued = kiosk.withdraw("60")
    kiosk.service.cancel_withdrawal(kiosk.customer, withdrawal_id=issued.withdrawal.id)
    app = kiosk.app()

    async def scenario(pilot: Pilot[None], app: TerminalApp) -> None:
        await scan(pilot, issued.qr_payload or "")
        assert isinstance(app.screen, PinScreen)  # the QR itself is still genuine
        await submit(pilot, PIN)
        await refused(pilot, app, code="withdrawal_not_pending", says="was cancelled")

    play(app, scenario)


# --- snapshots------------------------------------------------------------------------------------
def test_snapshot_welcome(kiosk: Kiosk, snap_compare: Any) -> None:
    assert snap_compare(kiosk.app(), terminal_size=SIZE, run_before=steps(expect=WelcomeScreen))


def test_snapshot_pin_with_the_qr_preview(kiosk: Kiosk, snap_compare: Any) -> None:
    issued = kiosk.withdraw("60")

    async def run_before(pilot: Pilot[None]) -> None:
        await scan(pilot, issued.qr_payload or "")
        await pilot.press("4", "8")
        assert isinstance(pilot.app.screen, PinScreen)
        await steady(pilot)

    assert snap_compare(kiosk.app(), terminal_size=SIZE, run_before=run_before)


def test_snapshot_confirm(kiosk: Kiosk, snap_compare: Any) -> None:
    issued = kiosk.withdraw("90")
    keys = (*(issued.code or ""), "enter", *PIN, "enter")
    assert snap_compare(
        kiosk.app(), terminal_size=SIZE, run_before=steps(*keys, expect=ConfirmScreen)
    )
    # The snapshot closed the app on the confirm screen: that gave the money back.
    assert kiosk.state(issued) is WithdrawalState.REVERSED


def test_snapshot_receipt(kiosk: Kiosk, snap_compare: Any) -> None:
    issued = kiosk.withdraw("170")

    def fixed_reference(app: TerminalApp) -> None:
        """The receipt's reference is the tail of a ULID, random by design: show a fixed one."""
        screen = app.screen
        assert isinstance(screen, ReceiptScreen)
        reference = issued.withdrawal.id[-10:]
        assert reference in screen.receipt
        screen.query_one("#receipt", Static).update(screen.receipt.replace(reference, "0" * 10))

    keys = (*(issued.code or ""), "enter", *PIN, "enter", "enter")
    run_before = steps(*keys, expect=ReceiptScreen, then=fixed_reference)
    assert snap_compare(kiosk.app(), terminal_size=SIZE, run_before=run_before)
    assert kiosk.state(issued) is WithdrawalState.COMPLETED


def test_snapshot_refusal(kiosk: Kiosk, snap_compare: Any) -> None:
    issued = kiosk.withdraw("60")
    keys = (*(issued.code or ""), "enter", *WRONG_PIN, "enter")
    assert snap_compare(
        kiosk.app(), terminal_size=SIZE, run_before=steps(*keys, expect=MessageScreen)
    )


def test_snapshot_cancelled(kiosk: Kiosk, snap_compare: Any) -> None:
    issued = kiosk.withdraw("60")
    keys = (*(issued.code or ""), "enter", *PIN, "enter", "escape")
    assert snap_compare(
        kiosk.app(), terminal_size=SIZE, run_before=steps(*keys, expect=MessageScreen)
    )
    assert kiosk.state(issued) is WithdrawalState.REVERSED
