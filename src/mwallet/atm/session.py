"""A terminal at work: one customer at a time, from the code to the receipt; an agent's cash-in
and float; an ATM supervisor's cassettes and day.

The session asks `who` for the terminal's principal before each step — an ATM's client token,
renewed when it expires, or an agent's login — so a disabled client or an ended login stops the
terminal at once; it calls the core services every door shares, and screens only show what it
returns. An ATM pays out through its `Dispenser` (the hardware; simulated here): the withdrawal
is completed only after the notes were presented, and reversed when they could not be.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mwallet.atm.reader import Entry, ScannedQr
from mwallet.core.domain.money import Money
from mwallet.core.domain.terminals import Terminal, parse_notes
from mwallet.core.domain.transfers import Transfer
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Channel, Withdrawal
from mwallet.core.errors import CashNotDispensed, PermissionDenied
from mwallet.core.services.terminals import TerminalDay
from mwallet.core.services.wallet_service import WalletService
from mwallet.core.services.withdrawals import Redemption
from mwallet.core.withdrawal_qr import QrClaims


@dataclass(frozen=True, slots=True)
class Receipt:
    text: str


class DispenseFault(Exception):
    """The dispenser could not present the notes (jammed, a cassette misfed, the shutter...)."""


class Dispenser(Protocol):
    def present(self, notes: Mapping[int, int]) -> None:
        """Count out and present the notes (denomination in minor units -> count), or raise
        DispenseFault having presented none."""
        ...


class SimulatedDispenser:
    """A dispenser that always works: the notes are taken from the cassettes by the ledger's side
    (`complete`), so there is nothing else to count."""

    def present(self, notes: Mapping[int, int]) -> None:
        return None


class TerminalSession:
    def __init__(
        self,
        service: WalletService,
        who: Callable[[], Principal],
        *,
        name: str,
        dispenser: Dispenser | None = None,
    ) -> None:
        self.service = service
        self._who = who
        self.name = name
        self.dispenser = dispenser or SimulatedDispenser()
        self._station: Terminal | None = None
        self._supervisor_refresh: str | None = None

    @property
    def terminal(self) -> Principal:
        return self._who()

    @property
    def station(self) -> Terminal:
        """The terminal this session stands for (read once, at `open`)."""
        if self._station is None:
            self._station = self.service.terminal_day(self.terminal).terminal
        return self._station

    @property
    def is_atm(self) -> bool:
        return self.station.kind is Channel.ATM

    def open(self) -> Sequence[Withdrawal]:
        """Start of day (or after a crash): learn which terminal this is, give back the money of
        withdrawals it authorized and never began paying out, and complete those whose notes
        it began dispensing. Returns those it reversed."""
        _ = self.station
        return self.service.reverse_leftover_withdrawals(self.terminal)

    def preview(self, entry: Entry) -> QrClaims | None:
        """For a scanned QR: its amount, checked offline (signature, expiry). None for a code."""
        if isinstance(entry, ScannedQr):
            return self.service.check_withdrawal_qr(entry.payload)
        return None

    def redeem(self, entry: Entry, pin: str) -> Redemption:
        if isinstance(entry, ScannedQr):
            return self.service.redeem_withdrawal(self.terminal, qr_payload=entry.payload, pin=pin)
        return self.service.redeem_withdrawal(self.terminal, code=entry.code, pin=pin)

    def complete(self, redemption: Redemption) -> Withdrawal:
        return self.service.complete_withdrawal(
            self.terminal, withdrawal_id=redemption.withdrawal.id
        )

    def pay_out(self, redemption: Redemption) -> Withdrawal:
        """Mark the withdrawal dispensing, then (an ATM) present the notes, then complete. A
        dispenser fault (no note presented) reverses the withdrawal (the customer's money goes
        back) and raises CashNotDispensed (a frozen wallet cannot take it yet: the withdrawal
        stays authorized, held, its notes back, and WalletFrozen is raised; a later start
        reverses it). Once dispensing, nothing else reverses it: a terminal that stops or
        fails before completing completes it as it starts again. An agent has already handed
        the cash over when this is called."""
        withdrawal_id = redemption.withdrawal.id
        self.service.dispense_withdrawal(self.terminal, withdrawal_id=withdrawal_id)
        if redemption.notes is not None:
            try:
                self.dispenser.present(redemption.notes)
            except DispenseFault:
                self.service.reverse_withdrawal(
                    self.terminal, withdrawal_id=withdrawal_id, none_presented=True
                )
                raise CashNotDispensed(
                    "the cash could not be dispensed: nothing was paid out and the money is "
                    "back in the wallet"
                ) from None
        return self.complete(redemption)

    # --- an agent's counter ------------------------------------------------------------------
    def cash_in(
        self, *, phone: str, amount: str, idempotency_key: str, code: str | None = None
    ) -> Transfer:
        """A customer handed over cash: send them that much e-money from the agent's float."""
        return self.service.cash_in(
            self.terminal,
            to_phone=phone,
            amount=self.service.parse_money(amount),
            idempotency_key=idempotency_key,
            code=code or None,
        )

    def day(self) -> TerminalDay:
        """The terminal's float or cash and its day so far."""
        return self.service.terminal_day(self.terminal)

    # --- an ATM's supervisor ----------------------------------------------------------------
    def supervisor(self, *, phone: str, password: str, code: str | None = None) -> Principal:
        """Log a supervisor in at the ATM (an admin: they may load and see any terminal)."""
        from mwallet.core.domain.roles import Permission, allows

        login = self.service.login(phone=phone, password=password, code=code or None)
        refresh = login.tokens.refresh_token
        if not allows(login.principal.role, Permission.MANAGE_TERMINALS):
            if refresh is not None:
                self.service.logout(refresh_token=refresh)
            raise PermissionDenied("only a supervisor may open this screen")
        self._supervisor_refresh = refresh
        return login.principal

    def leave_supervisor(self) -> None:
        """End the supervisor's login (their tokens stop working at once)."""
        refresh, self._supervisor_refresh = self._supervisor_refresh, None
        if refresh is not None:
            self.service.logout(refresh_token=refresh)

    def supervisor_day(self, supervisor: Principal) -> TerminalDay:
        return self.service.terminal_day(supervisor, terminal_id=self.station.id)

    def load(self, supervisor: Principal, typed: str) -> dict[int, int]:
        """Notes put into the cassettes, typed as `50x100 20x200`; the cassettes afterwards."""
        notes = parse_notes([typed], self.service.settings.currency)
        return self.service.load_cassettes(
            actor=supervisor, terminal_id=self.station.id, notes=notes
        )

    def reverse(self, redemption: Redemption) -> Withdrawal:
        return self.service.reverse_withdrawal(
            self.terminal, withdrawal_id=redemption.withdrawal.id
        )

    def receipt(self, paid: Withdrawal, redemption: Redemption) -> Receipt:
        return Receipt(receipt_text(self.name, paid, redemption, self.service.clock.now()))


def new_key() -> str:
    """An idempotency key for one screen's money movement: a second press replays it."""
    return f"terminal-{uuid.uuid4().hex}"


def notes_lines(notes: dict[int, int] | None, currency: str) -> list[str]:
    if not notes:
        return []
    return [
        f"{count} x {Money(denomination, currency).format()}"
        for denomination, count in sorted(notes.items(), reverse=True)
    ]


def receipt_text(name: str, paid: Withdrawal, redemption: Redemption, now: datetime) -> str:
    """A plain-text receipt: fixed width, nothing a stranger could use (no code, no PIN)."""
    width = 32
    lines = [
        name.center(width),
        "CASH WITHDRAWAL".center(width),
        "-" * width,
        f"{'Date':<8}{now.strftime('%Y-%m-%d %H:%M UTC'):>{width - 8}}",
        f"{'Customer':<10}{redemption.customer_name:>{width - 10}}",
        f"{'Ref':<6}{paid.id[-10:]:>{width - 6}}",
        f"{'Amount':<8}{paid.amount.format():>{width - 8}}",
    ]
    if paid.fee.minor:
        lines.append(f"{'Fee':<8}{paid.fee.format():>{width - 8}}")
    for line in notes_lines(redemption.notes, paid.amount.currency):
        lines.append(f"{'':<8}{line:>{width - 8}}")
    lines += ["-" * width, f"{'Status':<8}{paid.state.value.upper():>{width - 8}}"]
    return "\n".join(lines)


def client_authority(
    service: WalletService, client_id: str, secret: str
) -> Callable[[], Principal]:
    """An ATM's principal, from a client-credentials token kept and renewed as it expires."""
    from mwallet.core.errors import TokenExpired

    token = service.client_token(client_id=client_id, client_secret=secret)

    def who() -> Principal:
        nonlocal token
        try:
            return service.authenticate(access_token=token.access_token)
        except TokenExpired:
            token = service.client_token(client_id=client_id, client_secret=secret)
            return service.authenticate(access_token=token.access_token)

    who()  # fail now, not at the first customer, if the client is not allowed in
    return who
