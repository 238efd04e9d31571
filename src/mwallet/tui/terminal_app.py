"""The ATM / agent terminal: a kiosk app on `mwallet.atm.TerminalSession`.

Welcome (type the code or scan the QR) → PIN → confirm (amount, masked name, notes) →
dispense → receipt; every refusal has its own screen and leads back to the welcome screen.
The screens only show what the session (and so the core services) answers.
"""

from __future__ import annotations

import contextlib
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Center, Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Static

from mwallet.atm.reader import Entry, read_entry
from mwallet.atm.session import TerminalSession, notes_lines
from mwallet.core.errors import WalletError
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
    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        with Vertical(id="panel"):
            yield Label(self.session.name, classes="title")
            yield Label("Cash withdrawal", classes="title")
            yield Static("Type the 10-digit code, or scan the QR code.", classes="hint")
            yield Input(placeholder="code or QR", id="entry")
        yield Footer()

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
            yield Label(f"Pay out {found.amount.format()}", classes="amount")
            yield Static(f"to {self.redemption.customer_name}", classes="hint")
            for line in notes_lines(self.redemption.notes, found.amount.currency):
                yield Static(line, classes="hint")
            with Horizontal(id="buttons"):
                yield Button("Dispense", variant="success", id="dispense")
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
            paid = self.session.complete(self.redemption)
        except WalletError as error:
            self.refuse(error)
            return
        self._settled()
        self.app.switch_screen(ReceiptScreen(self.session.receipt(paid, self.redemption).text))

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

    def __init__(self, receipt: str) -> None:
        super().__init__()
        self.receipt = receipt

    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        with Vertical(id="panel"):
            yield Label("Please take your cash", classes="amount")
            yield Static(self.receipt, id="receipt")
            with Center():
                yield Button("Done", id="done")
        yield Footer()

    def on_button_pressed(self, _: Button.Pressed) -> None:
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

    def __init__(self, session: TerminalSession) -> None:
        super().__init__()
        self.session = session
        self.sub_title = session.name
        # An authorized withdrawal whose cash has not been handed over yet.
        self.open_redemption: Redemption | None = None

    def on_mount(self) -> None:
        self.push_screen(WelcomeScreen())

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
