"""Cash withdrawals: a hold on the wallet, redeemed at an ATM or an agent with a code and a PIN.

A withdrawal is a two-phase ledger movement. `request` moves the amount and its fee from the
wallet into the holds account (it stays the user's, but is not available); a terminal that checks
the code and the PIN `authorize`s it, and `complete` pays the amount out to the terminal's cash
account (an ATM) or to the agent's own wallet (the agent handed over cash) and the fee to the
fees account; every other end returns the whole hold.

    pending ──authorize──▶ authorized ──complete──▶ completed
       │                       ├──dispense (notes, cash out)──▶ dispensing ──complete──▶ completed
       │                       │                       └──reverse (ATM: none shown)──▶ authorized
       │                       └──reverse (cash not dispensed)──▶ reversed   (hold returned)
       ├──cancel (the user)──▶ cancelled                                     (hold returned)
       ├──expire (its time ran out)──▶ expired                               (hold returned)
       └──block (3 wrong PINs)──▶ blocked                                    (hold returned)

`dispensing` is an ATM's word that its notes are about to leave the machine (an agent's, that
the cash was handed over): from then on nothing may give the hold back but the dispenser itself
saying it presented none (the notes go back to the cassettes and the withdrawal to `authorized`,
then it is reversed). An ATM that stops with a withdrawal `dispensing` completes it when it
starts again (the cash was most likely taken; a count of the cassettes shows the notes if it was
not), where one left `authorized` is reversed (the notes were never asked for).

Each transition is one conditional UPDATE from the state it leaves, so it happens at most once
even when two terminals race on one code. Codes (10 digits) and PINs (4 digits) are kept only as
keyed hashes (HMAC-SHA256 under an instance secret that never leaves the sealed store).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mwallet.core.domain.money import Money
from mwallet.core.domain.tariffs import Movement
from mwallet.core.errors import InvalidInput, WithdrawalNotFound, quoted

CODE_DIGITS = 10
PIN_DIGITS = 4
MAX_PIN_ATTEMPTS = 3
DEFAULT_LIFETIME = timedelta(minutes=30)
# A terminal that tries this many unknown codes within the window is locked for a while.
TERMINAL_MAX_UNKNOWN_CODES = 5
TERMINAL_WINDOW = timedelta(minutes=10)
TERMINAL_LOCK = timedelta(minutes=15)


class WithdrawalState(StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    DISPENSING = "dispensing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    BLOCKED = "blocked"
    REVERSED = "reversed"


# The states whose money is still held.
HOLDING = frozenset(
    {WithdrawalState.PENDING, WithdrawalState.AUTHORIZED, WithdrawalState.DISPENSING}
)
# The states a terminal has taken a withdrawal to and must still settle.
AT_TERMINAL = frozenset({WithdrawalState.AUTHORIZED, WithdrawalState.DISPENSING})
# The states that count toward the daily limit: money on its way out, or out.
COUNTED = frozenset({*HOLDING, WithdrawalState.COMPLETED})


class Channel(StrEnum):
    ATM = "atm"
    AGENT = "agent"


@dataclass(frozen=True, slots=True)
class Withdrawal:
    id: str
    user_id: str
    amount: Money
    channel: Channel
    state: WithdrawalState
    created_at: datetime
    expires_at: datetime
    pin_attempts: int
    terminal_id: str | None
    updated_at: datetime
    fee: Money  # charged on completion; held with the amount until then

    @property
    def held(self) -> Money:
        """What the withdrawal holds while pending or authorized: the amount and its fee."""
        return self.amount + self.fee

    def expired_at(self, now: datetime) -> bool:
        return self.state is WithdrawalState.PENDING and now >= self.expires_at


MAX_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class WithdrawalPolicy:
    """What an admin sets (`mwallet admin limits withdrawals`), in minor units: the bounds of one
    withdrawal and how long a code lives. Fees and daily/monthly limits are tariffs and limits
    like every movement's (core/domain/tariffs.py: `withdrawal-atm`, `withdrawal-agent`)."""

    min_minor: int
    max_minor: int
    lifetime: timedelta = DEFAULT_LIFETIME

    @classmethod
    def default_for(cls, exponent: int) -> WithdrawalPolicy:
        unit = 10**exponent
        return cls(min_minor=1 * unit, max_minor=1_000 * unit)

    def checked(self) -> WithdrawalPolicy:
        """This policy, if it makes sense; InvalidInput saying what does not."""
        if not 0 < self.min_minor <= self.max_minor:
            raise InvalidInput("the minimum must be positive and at most the maximum")
        if not timedelta(minutes=1) <= self.lifetime <= MAX_LIFETIME:
            raise InvalidInput("a code lives between 1 minute and 24 hours")
        return self


def tariff_of(channel: Channel) -> Movement:
    """Which tariff a withdrawal through `channel` pays."""
    return Movement.WITHDRAWAL_ATM if channel is Channel.ATM else Movement.WITHDRAWAL_AGENT


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def new_pin() -> str:
    return f"{secrets.randbelow(10**PIN_DIGITS):0{PIN_DIGITS}d}"


def parse_code(text: str) -> str:
    """A code as typed or read: spaces and dashes ignored, exactly 10 ASCII digits."""
    digits = "".join(ch for ch in text.strip() if ch not in " -")
    if len(digits) != CODE_DIGITS or not digits.isascii() or not digits.isdigit():
        raise InvalidInput(f"a withdrawal code is {CODE_DIGITS} digits")
    return digits


def parse_pin(text: str) -> str:
    pin = text.strip()
    if len(pin) != PIN_DIGITS or not pin.isascii() or not pin.isdigit():
        raise InvalidInput(f"a PIN is {PIN_DIGITS} digits")
    return pin


def check_chosen_pin(text: str) -> str:
    """A PIN the user chose: 4 digits, and not one anyone would guess first."""
    pin = parse_pin(text)
    if len(set(pin)) == 1 or pin in {"1234", "4321", "0123", "9876", "1212", "2580"}:
        raise InvalidInput("that PIN is too easy to guess: choose another")
    return pin


def format_code(code: str) -> str:
    """`1234 567 890`: easier to read out and type."""
    return f"{code[:4]} {code[4:7]} {code[7:]}"


def code_digest(pepper: bytes, code: str) -> str:
    return hmac.new(pepper, f"code:{code}".encode(), hashlib.sha256).hexdigest()


def pin_digest(pepper: bytes, withdrawal_id: str, pin: str) -> str:
    return hmac.new(pepper, f"pin:{withdrawal_id}:{pin}".encode(), hashlib.sha256).hexdigest()


def nonce_digest(pepper: bytes, nonce: str) -> str:
    return hmac.new(pepper, f"qr:{nonce}".encode(), hashlib.sha256).hexdigest()


def dispense_plan(amount_minor: int, cassettes: dict[int, int]) -> dict[int, int] | None:
    """The fewest notes that make `amount_minor` exactly from `cassettes` (denomination -> notes
    loaded), or None. Exact bounded change-making, not greedy: 60 from {50, 20} is 3 x 20.

    Dynamic programming over amounts in units of the denominations' greatest common divisor,
    so an ATM's few denominations and a few thousand notes stay cheap.
    """
    if amount_minor <= 0:
        return None
    usable = {d: n for d, n in cassettes.items() if d > 0 and n > 0}
    if not usable:
        return None
    from math import gcd

    step = 0
    for denomination in usable:
        step = gcd(step, denomination)
    if amount_minor % step:
        return None
    target = amount_minor // step
    # best[v] = fewest notes for v; via[v] = (denomination, count of it) used last to reach v.
    infinity = target + 1
    best = [0] + [infinity] * target
    choices: list[dict[int, int]] = [{} for _ in range(target + 1)]
    for denomination, count in sorted(usable.items()):
        unit = denomination // step
        previous = best[:]
        previous_choices = choices[:]
        for value in range(unit, target + 1):
            for used in range(1, min(count, value // unit) + 1):
                before = value - used * unit
                if previous[before] + used < best[value]:
                    best[value] = previous[before] + used
                    choices[value] = {**previous_choices[before], denomination: used}
    if best[target] >= infinity:
        return None
    return dict(sorted(choices[target].items(), reverse=True))


def no_withdrawal(typed: str) -> WithdrawalNotFound:
    """The refusal of a withdrawal id that names none of the person's withdrawals (the service's,
    and the remote client's for a typed id that cannot be one, which it does not put in a URL)."""
    return WithdrawalNotFound(f"you have no withdrawal {quoted(typed.strip())}")
