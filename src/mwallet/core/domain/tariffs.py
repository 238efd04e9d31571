"""Tariffs (what a movement costs) and limits (how much a user may move), as admins set them.

A **tariff** belongs to a kind of movement (`Movement`): transfers, withdrawals at an ATM or at an
agent, bills, airtime, card top-ups. It is a list of bands by amount; the band an amount falls in
gives a flat part and a percentage (in basis points: 150 = 1.5 %), and the tariff as a whole may
have a minimum and a maximum fee:

    fee = clamp(flat + round_half_up(amount * bp / 10 000), min, max)

A movement with no tariff is free. The fee is charged on top of the amount and posted to the
`fees:<currency>` account in the same journal entry as the movement.

A **limit** belongs to a family of movements (`LimitFamily`: both withdrawal channels share one)
and a KYC tier (`Tier`): the most a user of that tier may move per UTC day and per UTC calendar
month, counted on the amounts (fees are not counted). A limit is checked in the same unit of work
as the movement, after the wallet's row is locked, so concurrent movements cannot pass it together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from mwallet.core.domain.money import Money, currency_exponent, max_minor
from mwallet.core.errors import InvalidInput, quoted

BASIS_POINTS = 10_000  # 100 %
MAX_BANDS = 10


class Movement(StrEnum):
    """What a tariff is for."""

    TRANSFER = "transfer"
    WITHDRAWAL_ATM = "withdrawal-atm"
    WITHDRAWAL_AGENT = "withdrawal-agent"
    BILL = "bill"
    AIRTIME = "airtime"
    TOPUP = "topup"  # money in from a card: the card is charged the amount and the fee

    @property
    def family(self) -> LimitFamily:
        return _FAMILIES[self]  # on every movement's path: a lookup, not an enum call

    @classmethod
    def parse(cls, text: str) -> Movement:
        try:
            return cls(text.strip().lower())
        except ValueError:
            known = ", ".join(m.value for m in cls)
            raise InvalidInput(f"unknown movement {quoted(text)}; one of: {known}") from None


class LimitFamily(StrEnum):
    """What a limit counts: both withdrawal channels count towards one withdrawal limit."""

    TRANSFER = "transfer"
    WITHDRAWAL = "withdrawal"
    BILL = "bill"
    AIRTIME = "airtime"
    TOPUP = "topup"

    @property
    def noun(self) -> str:
        return {LimitFamily.TOPUP: "top-up", LimitFamily.BILL: "bill payment"}.get(self, self.value)

    @classmethod
    def parse(cls, text: str) -> LimitFamily:
        try:
            return cls(text.strip().lower())
        except ValueError:
            known = ", ".join(f.value for f in cls)
            raise InvalidInput(f"unknown limit {quoted(text)}; one of: {known}") from None


_FAMILIES = {
    movement: (
        LimitFamily.WITHDRAWAL
        if movement in (Movement.WITHDRAWAL_ATM, Movement.WITHDRAWAL_AGENT)
        else LimitFamily(movement.value)
    )
    for movement in Movement
}


class Tier(StrEnum):
    """How well the wallet knows its customer (KYC): a verified user may move more."""

    BASIC = "basic"
    VERIFIED = "verified"

    @classmethod
    def parse(cls, text: str) -> Tier:
        try:
            return cls(text.strip().lower())
        except ValueError:
            known = ", ".join(t.value for t in cls)
            raise InvalidInput(f"unknown tier {quoted(text)}; one of: {known}") from None


class Period(StrEnum):
    DAY = "daily"
    MONTH = "monthly"


LimitPeriod = Period  # the name to import beside statistics' own periods (month, week, day)


@dataclass(frozen=True, slots=True)
class Band:
    """Amounts up to `up_to_minor` (inclusive; None: any amount) pay flat + percent."""

    up_to_minor: int | None
    flat_minor: int = 0
    percent_bp: int = 0


@dataclass(frozen=True, slots=True)
class Tariff:
    bands: tuple[Band, ...]
    min_minor: int = 0
    max_minor: int | None = None

    def fee(self, amount: Money) -> Money:
        """The fee of moving `amount` (same currency), rounded half up to the minor unit."""
        band = next(b for b in self.bands if b.up_to_minor is None or amount.minor <= b.up_to_minor)
        fee = band.flat_minor + (amount.minor * band.percent_bp + BASIS_POINTS // 2) // BASIS_POINTS
        fee = max(fee, self.min_minor)
        if self.max_minor is not None:
            fee = min(fee, self.max_minor)
        return Money(fee, amount.currency)

    def checked(self, currency: str) -> Tariff:
        """This tariff, if it makes sense in `currency`; InvalidInput saying what does not."""
        ceiling = max_minor(currency)
        if not 1 <= len(self.bands) <= MAX_BANDS:
            raise InvalidInput(f"a tariff has between 1 and {MAX_BANDS} bands")
        if self.bands[-1].up_to_minor is not None:
            raise InvalidInput("the last band must cover any amount (no upper bound)")
        bounds = [b.up_to_minor for b in self.bands[:-1]]
        if any(bound is None for bound in bounds):
            raise InvalidInput("only the last band may have no upper bound")
        known = [bound for bound in bounds if bound is not None]
        if any(b <= 0 for b in known) or known != sorted(set(known)):
            raise InvalidInput("band bounds must be positive and strictly increasing")
        for band in self.bands:
            if not 0 <= band.flat_minor <= ceiling:
                raise InvalidInput("a flat fee is between zero and the largest amount")
            if not 0 <= band.percent_bp <= BASIS_POINTS:
                raise InvalidInput("a percentage is between 0 and 100")
        if not 0 <= self.min_minor <= ceiling:
            raise InvalidInput("the minimum fee is between zero and the largest amount")
        if self.max_minor is not None and not self.min_minor <= self.max_minor <= ceiling:
            raise InvalidInput("the maximum fee is at least the minimum")
        return self

    @property
    def is_free(self) -> bool:
        """Whether every amount pays nothing (a tariff with no bands is not free: it is invalid)."""
        return (
            bool(self.bands)
            and self.min_minor == 0
            and all(b.flat_minor == 0 and b.percent_bp == 0 for b in self.bands)
        )

    def describe(self, currency: str) -> str:
        """One line a person reads: "1.5% + 0.50 (min 1.00, max 50.00)"; bands joined by "; "."""

        def money(minor: int) -> str:
            return Money(minor, currency).to_decimal_string()

        def part(band: Band) -> str:
            pieces = []
            if band.percent_bp:
                pieces.append(f"{format_percent(band.percent_bp)}%")
            if band.flat_minor or not pieces:
                pieces.append(money(band.flat_minor))
            return " + ".join(pieces)

        if self.is_free:
            return "free"
        if len(self.bands) == 1:
            text = part(self.bands[0])
        else:
            text = "; ".join(
                f"up to {money(b.up_to_minor)}: {part(b)}"
                if b.up_to_minor is not None
                else f"above: {part(b)}"
                for b in self.bands
            )
        bounds = []
        if self.min_minor:
            bounds.append(f"min {money(self.min_minor)}")
        if self.max_minor is not None:
            bounds.append(f"max {money(self.max_minor)}")
        return f"{text} ({', '.join(bounds)})" if bounds else text

    def to_json(self) -> str:
        return json.dumps(
            {
                "bands": [[b.up_to_minor, b.flat_minor, b.percent_bp] for b in self.bands],
                "min": self.min_minor,
                "max": self.max_minor,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Tariff:
        data: dict[str, Any] = json.loads(text)
        return cls(
            bands=tuple(Band(up, flat, bp) for up, flat, bp in data["bands"]),
            min_minor=int(data["min"]),
            max_minor=None if data["max"] is None else int(data["max"]),
        )


FREE = Tariff((Band(None),))


def flat(fee_minor: int) -> Tariff:
    return Tariff((Band(None, fee_minor, 0),))


def parse_percent(text: str) -> int:
    """ "1.5" (or "1.5%") → 150 basis points; at most two decimals, 0 to 100."""
    cleaned = text.strip().removesuffix("%").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise InvalidInput(f"not a percentage: {quoted(text)}") from None
    if not value.is_finite() or value < 0 or value > 100:
        raise InvalidInput("a percentage is between 0 and 100")
    bp = value * 100
    if bp != bp.to_integral_value():
        raise InvalidInput("a percentage has at most two decimals")
    return int(bp)


def format_percent(bp: int) -> str:
    whole, part = divmod(bp, 100)
    return f"{whole}" if part == 0 else f"{whole}.{part:02d}".rstrip("0")


@dataclass(frozen=True, slots=True)
class Limit:
    """The most a user of `tier` may move in `family` per day and per month (None: no limit)."""

    family: LimitFamily
    tier: Tier
    daily_minor: int | None
    monthly_minor: int | None

    def checked(self, currency: str) -> Limit:
        ceiling = max_minor(currency) * 31
        for value in (self.daily_minor, self.monthly_minor):
            if value is not None and not 0 < value <= ceiling:
                raise InvalidInput("a limit is a positive amount")
        if (
            self.daily_minor is not None
            and self.monthly_minor is not None
            and self.daily_minor > self.monthly_minor
        ):
            raise InvalidInput("the daily limit cannot be above the monthly one")
        return self


def default_limit(family: LimitFamily, tier: Tier, currency: str) -> Limit:
    """The limit before an admin sets one: withdrawals 2,000 units a day (as before limits were
    configurable); everything else unlimited."""
    if family is LimitFamily.WITHDRAWAL:
        return Limit(family, tier, 2_000 * 10 ** currency_exponent(currency), None)
    return Limit(family, tier, None, None)


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)


@dataclass(frozen=True, slots=True)
class Terms:
    """What applies to one user's movement: its tariff, and the user's tier and limit."""

    movement: Movement
    tariff: Tariff | None
    tier: Tier
    limit: Limit

    def fee(self, amount: Money) -> Money:
        return Money(0, amount.currency) if self.tariff is None else self.tariff.fee(amount)


@dataclass(frozen=True, slots=True)
class Allowance:
    """What is left of a limit: `left` is None when there is no limit."""

    period: Period
    limit: Money | None
    used: Money

    @property
    def left(self) -> Money | None:
        if self.limit is None:
            return None
        return Money(max(self.limit.minor - self.used.minor, 0), self.used.currency)


@dataclass(frozen=True, slots=True)
class Quote:
    """What a movement would cost, shown before the user confirms it."""

    movement: Movement
    amount: Money
    fee: Money
    tier: Tier
    allowances: tuple[Allowance, ...]

    @property
    def total(self) -> Money:
        return self.amount + self.fee

    @property
    def within_limits(self) -> bool:
        return all(a.left is None or self.amount.minor <= a.left.minor for a in self.allowances)
