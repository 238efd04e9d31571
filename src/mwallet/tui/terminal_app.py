"""The ATM / agent terminal: a kiosk app on `mwallet.atm.TerminalSession`.

Welcome (type the code or scan the QR) → PIN → confirm (amount, masked name, notes) →
dispense → receipt; every refusal has its own screen and leads back to the welcome screen.
An agent also has a cash-in screen (F2) and a float view (F3); an ATM a supervisor screen
(F9, an admin's login) to load cassettes and see the day. The screens only show what the
session (and so the core services) answers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Static

from mwallet.atm.reader import Entry, read_entry
from mwallet.atm.session import TerminalSession, new_key, notes_lines
from mwallet.core.domain.money import Money
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Withdrawal
from mwallet.core.errors import CashNotDispensed, SecondFactorRequired, WalletError
from mwallet.core.services.terminals import TerminalDay
from mwallet.core.services.withdrawals import Redemption
from mwallet.core.withdrawal_qr import QrClaims

CSS = """
Screen { align: center middle; }
#panel { width: 60; height: auto; border: round $accent; padding: 1 2; }
.title { text-style: bold; width: 100%; content-align: center middle; }
.amount { text-style: bold; color: $success; width: 100%; content-align: center middle; }
.error { text-style: bold; color: $error; width: 100%; content-align: center middle; }
.hint { color: $text-muted; width: 100%; content-align: center middle; }
#buttons { height: auto; align: center middle; margin-top: 1; }
Button { margin: 0 1; }
Input { margin-top: 1; }
#receipt { border: dashed $accent; padding: 0 1; margin-top: 1; }
.figures { border: dashed $accent; padding: 0 1; margin-top: 1; }
.hidden { display: none; }
"""


class TerminalScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "restart", "Start over"),
    ]

    @property
    def session(self) -> TerminalSession:
        app = self.app
        assert isinstance(app, TerminalApp)
        return app.session

    def action_restart(self) -> None:
        self.app.switch_screen(WelcomeScreen())

    def refuse(self, error: WalletError) -> None:
        self.app.switch_screen(MessageScreen("Sorry", error.message, error.code))


class WelcomeScreen(TerminalScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "cash_in", "Cash in"),
        Binding("f3", "float", "Float & today"),
        Binding("f9", "supervisor", "Supervisor"),
    ]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        with Vertical(id="panel"):
            yield Label(self.session.name, classes="title")
            yield Label("Cash withdrawal", classes="title")
            yield Static("Type the 10-digit code, or scan the QR code.", classes="hint")
            yield Input(placeholder="code or QR", id="entry")
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """An agent's counter takes cash in and has a float; an ATM has a supervisor."""
        if action in ("cash_in", "float"):
            return not self.session.is_atm
        if action == "supervisor":
            return self.session.is_atm
        return True

    def action_cash_in(self) -> None:
        self.app.switch_screen(CashInScreen())

    def action_float(self) -> None:
        try:
            today = self.session.day()
        except WalletError as error:
            self.refuse(error)
            return
        self.app.switch_screen(DayScreen(today))

    def action_supervisor(self) -> None:
        self.app.switch_screen(SupervisorLoginScreen())

    def on_mount(self) -> None:
        self.query_one("#entry", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            entry = read_entry(event.value)
            preview = self.session.preview(entry)
        except WalletError as error:
            self.refuse(error)
            return
        self.app.switch_screen(PinScreen(entry, preview))


class PinScreen(TerminalScreen):
    def __init__(self, entry: Entry, preview: QrClaims | None) -> None:
        super().__init__()
        self.entry = entry
        self.preview = preview

    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        with Vertical(id="panel"):
            if self.preview is not None:
                yield Label(f"Withdrawal of {self.preview.amount.format()}", classes="amount")
                yield Static("QR code checked: issued by this wallet.", classes="hint")
            yield Label("Enter the 4-digit PIN", classes="title")
            yield Input(
                placeholder="PIN", password=True, max_length=4, restrict=r"[0-9]*", id="pin"
            )
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#pin", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            redemption = self.session.redeem(self.entry, event.value)
        except WalletError as error:
            self.refuse(error)
            return
        self.app.switch_screen(ConfirmScreen(redemption))


class ConfirmScreen(TerminalScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "dispense", "Dispense"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, redemption: Redemption) -> None:
        super().__init__()
        self.redemption = redemption

    def on_mount(self) -> None:
        app = self.app
        assert isinstance(app, TerminalApp)
        app.open_redemption = self.redemption  # reversed if the app closes before it is settled

    def compose(self) -> ComposeResult:
        found = self.redemption.withdrawal
        yield Header(show_clock=True)
        with Vertical(id="panel"):
            if self.redemption.notes is None:  # an agent hands over their own cash
                yield Label(f"Hand over {found.amount.format()} in cash", classes="amount")
            else:
                yield Label(f"Pay out {found.amount.format()}", classes="amount")
            yield Static(f"to {self.redemption.customer_name}", classes="hint")
            for line in notes_lines(self.redemption.notes, found.amount.currency):
                yield Static(line, classes="hint")
            with Horizontal(id="buttons"):
                done = "Dispense" if self.redemption.notes is not None else "Cash handed over"
                yield Button(done, variant="success", id="dispense")
                yield Button("Cancel", variant="error", id="cancel")
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "dispense":
            self.action_dispense()
        else:
            self.action_cancel()

    def _settled(self) -> None:
        app = self.app
        assert isinstance(app, TerminalApp)
        app.open_redemption = None

    def action_dispense(self) -> None:
        try:
            paid = self.session.pay_out(self.redemption)
        except CashNotDispensed as error:
            self._settled()  # reversed: the money is back with the customer
            self.refuse(error)
            return
        except WalletError as error:
            self.refuse(error)
            return
        self._settled()
        heading = "Please take your cash" if self.redemption.notes else "Paid out: give the receipt"
        self.app.switch_screen(
            ReceiptScreen(self.session.receipt(paid, self.redemption).text, heading)
        )

    def action_cancel(self) -> None:
        try:
            self.session.reverse(self.redemption)
        except WalletError as error:
            self.refuse(error)
            return
        self._settled()
        self.app.switch_screen(
            MessageScreen(
                "Cancelled", "Nothing was paid out: the money is back in the customer's wallet."
            )
        )


class ReceiptScreen(TerminalScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "restart", "Done")]

    def __init__(self, receipt: str, heading: str = "Please take your cash") -> None:
        super().__init__()
        self.receipt = receipt
        self.heading = heading

    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        with Vertical(id="panel"):
            yield Label(self.heading, classes="amount")
            yield Static(self.receipt, id="receipt")
            with Center():
                yield Button("Done", id="done")
        yield Footer()

    def on_button_pressed(self, _: Button.Pressed) -> None:
        self.action_restart()


class CashInScreen(TerminalScreen):
    """An agent's counter: a customer hands over cash and gets that much e-money at once."""

    def __init__(self) -> None:
        super().__init__()
        self.key = new_key()  # one cash-in: pressing Enter twice sends once

    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        with Vertical(id="panel"):
            yield Label("Cash in", classes="title")
            yield Static("The customer's phone number and the cash they hand over.", classes="hint")
            yield Input(placeholder="customer's phone", id="phone")
            yield Input(placeholder="amount", restrict=r"[0-9.]*", id="amount")
            yield Input(
                placeholder="your 2FA code", restrict=r"[0-9]*", max_length=8, id="code",
                classes="hidden",
            )  # fmt: skip
            yield Static("", classes="hint", id="asked")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#phone", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "phone":
            self.query_one("#amount", Input).focus()
            return
        code = self.query_one("#code", Input)
        try:
            sent = self.session.cash_in(
                phone=self.query_one("#phone", Input).value,
                amount=self.query_one("#amount", Input).value,
                idempotency_key=self.key,
                code=code.value or None,
            )
        except SecondFactorRequired as error:
            code.remove_class("hidden")
            code.value = ""
            code.focus()
            self.query_one("#asked", Static).update(error.message)
            return
        except WalletError as error:
            self.refuse(error)
            return
        self.app.switch_screen(
            MessageScreen(
                "Cash in done",
                f"{sent.amount.format()} sent to {sent.recipient_phone}. "
                f"Keep the {sent.amount.format()} in cash.",
            )
        )


class DayScreen(TerminalScreen):
    """An agent's float and cash, and their day so far."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "restart", "Back")]

    def __init__(self, today: TerminalDay) -> None:
        super().__init__()
        self.today = today

    def compose(self) -> ComposeResult:
        today = self.today
        drawer = Money(today.cash_in.minor - today.paid_out.minor, today.cash.currency)
        yield Header(show_clock=True)
        with Vertical(id="panel"):
            yield Label("Float and today", classes="title")
            yield Label(f"Float {today.cash.format()}", classes="amount")
            yield Static(
                "\n".join(
                    [
                        f"{'Paid out':<12}{today.paid_out.format():>18}  ({today.paid_out_count})",
                        f"{'Cash in':<12}{today.cash_in.format():>18}  ({today.cash_in_count})",
                        f"{'Reversed':<12}{today.reversed_count:>18}",
                        f"{'Cash drawer':<12}{drawer.format():>18}",
                    ]
                ),
                classes="figures",
                id="figures",
            )
            yield Static("The float pays for cash-ins; withdrawals you pay out refill it.",
                         classes="hint")  # fmt: skip
        yield Footer()


class SupervisorLoginScreen(TerminalScreen):
    """An ATM's supervisor mode opens only to an admin's login (and 2FA code, if they use it)."""

    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        with Vertical(id="panel"):
            yield Label("Supervisor", classes="title")
            yield Input(placeholder="phone", id="phone")
            yield Input(placeholder="password", password=True, id="password")
            yield Input(placeholder="2FA code, if you use one", restrict=r"[0-9]*", id="code")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#phone", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "phone":
            self.query_one("#password", Input).focus()
            return
        try:
            supervisor = self.session.supervisor(
                phone=self.query_one("#phone", Input).value,
                password=self.query_one("#password", Input).value,
                code=self.query_one("#code", Input).value or None,
            )
            today = self.session.supervisor_day(supervisor)
        except SecondFactorRequired:
            self.query_one("#code", Input).focus()
            return
        except WalletError as error:
            self.refuse(error)
            return
        self.app.switch_screen(SupervisorScreen(supervisor, today))


class SupervisorScreen(TerminalScreen):
    """The ATM's cassettes and day; notes loaded are typed as `50x100 20x200`."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "leave", "Leave")]

    def __init__(self, supervisor: Principal, today: TerminalDay) -> None:
        super().__init__()
        self.supervisor = supervisor
        self.today = today

    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        with Vertical(id="panel"):
            yield Label(f"Supervisor: {self.supervisor.display_name}", classes="title")
            yield Static(self._figures(), classes="figures", id="figures")
            yield Input(placeholder="load notes, e.g. 50x100 20x200", id="load")
            yield Static("", classes="hint", id="loaded")
        yield Footer()

    def _figures(self) -> str:
        today = self.today
        currency = today.cash.currency
        lines = [f"{'Cassettes':<12}{today.cash.format():>20}"]
        lines += [f"  {line}" for line in notes_lines(today.cassettes, currency)] or ["  empty"]
        lines += [
            f"{'Paid today':<12}{today.paid_out.format():>20}  ({today.paid_out_count})",
            f"{'Reversed':<12}{today.reversed_count:>20}",
        ]
        return "\n".join(lines)

    def on_mount(self) -> None:
        self.query_one("#load", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            self.session.load(self.supervisor, event.value)
            self.today = self.session.supervisor_day(self.supervisor)
        except WalletError as error:
            self.query_one("#loaded", Static).update(f"Not loaded: {error.message}")
            return
        event.input.value = ""
        self.query_one("#figures", Static).update(self._figures())
        self.query_one("#loaded", Static).update("Loaded.")

    def action_leave(self) -> None:
        with contextlib.suppress(WalletError):
            self.session.leave_supervisor()
        self.action_restart()


class MessageScreen(TerminalScreen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "restart", "OK")]

    def __init__(self, title: str, message: str, code: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.code = code

    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        with Vertical(id="panel"):
            yield Label(self.title_text, classes="error" if self.code else "title")
            yield Static(self.message, classes="hint", id="message")
            with Center():
                yield Button("OK", id="ok")
        yield Footer()

    def on_button_pressed(self, _: Button.Pressed) -> None:
        self.action_restart()


class TerminalApp(App[None]):
    CSS = CSS
    TITLE = "mwallet terminal"

    def __init__(
        self, session: TerminalSession, *, reversed_at_start: Sequence[Withdrawal] = ()
    ) -> None:
        """`reversed_at_start`: what `session.open()` gave back before the app started."""
        super().__init__()
        self.session = session
        self.sub_title = session.name
        self.reversed_at_start = reversed_at_start
        # An authorized withdrawal whose cash has not been handed over yet.
        self.open_redemption: Redemption | None = None

    def on_mount(self) -> None:
        if not self.reversed_at_start:
            self.push_screen(WelcomeScreen())
            return
        count = len(self.reversed_at_start)
        self.push_screen(
            MessageScreen(
                "Reversed",
                f"{count} withdrawal{'s' if count > 1 else ''} left open when this terminal "
                "stopped: nothing was paid out, so the money is back with the customer.",
            )
        )

    async def action_quit(self) -> None:
        """Closing with a withdrawal authorized but not paid out gives the money back first."""
        self.reverse_open()
        self.exit()

    def on_unmount(self) -> None:
        self.reverse_open()

    def reverse_open(self) -> None:
        open_one, self.open_redemption = self.open_redemption, None
        if open_one is not None:
            with contextlib.suppress(WalletError):  # already settled elsewhere: nothing to give
                self.session.reverse(open_one)
