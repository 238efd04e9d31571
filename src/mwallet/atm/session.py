"""A terminal at work: one customer at a time, from the code to the receipt.

The session asks `who` for the terminal's principal before each step — an ATM's client token,
renewed when it expires, or an agent's login — so a disabled client or an ended login stops the
terminal at once; it calls the core services every door shares, and screens only show what it
returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from mwallet.atm.reader import Entry, ScannedQr
from mwallet.core.domain.money import Money
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Withdrawal
from mwallet.core.services.wallet_service import WalletService
from mwallet.core.services.withdrawals import Redemption
from mwallet.core.withdrawal_qr import QrClaims


@dataclass(frozen=True, slots=True)
class Receipt:
    text: str


class TerminalSession:
    def __init__(self, service: WalletService, who: Callable[[], Principal], *, name: str) -> None:
        self.service = service
        self._who = who
        self.name = name

    @property
    def terminal(self) -> Principal:
        return self._who()

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

    def reverse(self, redemption: Redemption) -> Withdrawal:
        return self.service.reverse_withdrawal(
            self.terminal, withdrawal_id=redemption.withdrawal.id
        )

    def receipt(self, paid: Withdrawal, redemption: Redemption) -> Receipt:
        return Receipt(receipt_text(self.name, paid, redemption, self.service.clock.now()))


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
