"""Money: integer minor units with an ISO-4217 currency. A float never gets in.

Parsing from text is strict on purpose: a wallet that guesses what "1,000" or "1e3" meant moves the
wrong amount. Amounts above `MAX_AMOUNT_MAJOR` units of any currency are refused, which keeps every
sum of amounts far inside a 64-bit integer column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Final

from mwallet.core.errors import (
    AmountTooLarge,
    CurrencyMismatch,
    InvalidAmount,
    UnknownCurrency,
    quoted,
)

# ISO 4217 minor-unit exponents of the currencies the wallet knows.
MINOR_UNIT_EXPONENTS: Final[dict[str, int]] = {
    "AOA": 2,  # Angolan kwanza
    "BHD": 3,  # Bahraini dinar
    "BRL": 2,  # Brazilian real
    "BWP": 2,  # Botswana pula
    "CVE": 2,  # Cape Verde escudo
    "EUR": 2,
    "GBP": 2,
    "GHS": 2,  # Ghanaian cedi
    "JPY": 0,
    "KES": 2,  # Kenyan shilling
    "KWD": 3,  # Kuwaiti dinar
    "MWK": 2,  # Malawian kwacha
    "MZN": 2,  # Mozambican metical
    "NGN": 2,  # Nigerian naira
    "RWF": 0,  # Rwandan franc
    "STN": 2,  # São Tomé dobra
    "TZS": 2,  # Tanzanian shilling
    "UGX": 0,  # Ugandan shilling
    "USD": 2,
    "XOF": 0,  # West African CFA franc
    "ZAR": 2,  # South African rand
    "ZMW": 2,  # Zambian kwacha
}

# The largest amount one movement may carry, in major units of its currency.
MAX_AMOUNT_MAJOR: Final = 1_000_000_000

_AMOUNT_TEXT = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?", re.ASCII)


def currency_exponent(currency: str) -> int:
    try:
        return MINOR_UNIT_EXPONENTS[currency]
    except KeyError:
        known = ", ".join(sorted(MINOR_UNIT_EXPONENTS))
        raise UnknownCurrency(f"unknown currency {quoted(currency)}; known: {known}") from None


def normalize_currency(text: str) -> str:
    code = text.strip().upper()
    currency_exponent(code)
    return code


def max_minor(currency: str) -> int:
    return int(MAX_AMOUNT_MAJOR * 10 ** currency_exponent(currency))


def decimal_string(minor: int, exponent: int) -> str:
    """Minor units as a plain decimal string with `exponent` decimals: "12.50", "-3.05", "1200"
    (`Money.to_decimal_string`; documents that write many amounts call it without a Money)."""
    sign = "-" if minor < 0 else ""
    magnitude = abs(minor)
    if exponent == 0:
        return f"{sign}{magnitude}"
    whole, fraction = divmod(magnitude, 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}"


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An amount of one currency in its minor units (cents for USD, whole yen for JPY)."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.minor) is not int:  # bool and float are refused alike
            raise InvalidAmount(f"money needs whole minor units, got {type(self.minor).__name__}")
        # A look-up, not a call (a transfer makes four amounts); an unknown one is then refused.
        if self.currency not in MINOR_UNIT_EXPONENTS:
            currency_exponent(self.currency)  # raises UnknownCurrency

    @classmethod
    def zero(cls, currency: str) -> Money:
        return _zero(currency) if cls is Money else cls(0, currency)

    @classmethod
    def parse(cls, text: str, currency: str, *, allow_zero: bool = False) -> Money:
        """Parse a positive amount typed by a person, e.g. "12.5" or "12.50" for USD (or zero,
        where zero makes sense: a fee)."""
        exponent = currency_exponent(currency)
        cleaned = text.strip()
        match = _AMOUNT_TEXT.fullmatch(cleaned)
        shown = quoted(text)
        if match is None:
            raise InvalidAmount(
                f"{shown} is not an amount: write digits with an optional decimal point, "
                f"like 12.50 (no signs, exponents or thousands separators)"
            )
        whole, fraction = match.group(1), match.group(2) or ""
        if len(whole) > len(str(MAX_AMOUNT_MAJOR)):  # before int(): huge texts cost time to read
            raise AmountTooLarge(
                f"the amount is above the maximum of {MAX_AMOUNT_MAJOR:,} {currency} per movement"
            )
        if len(fraction) > exponent:
            raise InvalidAmount(
                f"{shown} has more decimals than {currency} allows ({exponent})"
                if exponent
                else f"{shown}: {currency} has no minor unit, write a whole number"
            )
        minor = int(whole) * 10**exponent + (int(fraction.ljust(exponent, "0")) if exponent else 0)
        if minor == 0 and not allow_zero:
            raise InvalidAmount("the amount must be greater than zero")
        if minor > max_minor(currency):
            raise AmountTooLarge(
                f"{shown} is above the maximum of {MAX_AMOUNT_MAJOR:,} {currency} per movement"
            )
        return cls(minor, currency)

    def to_decimal_string(self) -> str:
        """The amount as a plain decimal string: "12.50", "-3.05", "1200" for JPY."""
        return decimal_string(self.minor, currency_exponent(self.currency))

    def format(self) -> str:
        """For people: "1,234.50 USD"."""
        exponent = currency_exponent(self.currency)
        sign = "-" if self.minor < 0 else ""
        whole, fraction = divmod(abs(self.minor), 10**exponent)
        tail = f".{fraction:0{exponent}d}" if exponent else ""
        return f"{sign}{whole:,}{tail} {self.currency}"

    def __str__(self) -> str:
        return self.format()

    def _same_currency(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same_currency(other)
        return self.minor <= other.minor

    @property
    def is_positive(self) -> bool:
        return self.minor > 0


def check_movable(amount: Money) -> Money:
    """Refuse an amount no single movement may carry: zero, negative, or above the maximum.

    `Money.parse` already refuses these in text; this guards every other way in (an API body, a
    script), and keeps sums of amounts far inside a 64-bit column.
    """
    if amount.minor <= 0:
        raise InvalidAmount("the amount must be greater than zero")
    if amount.minor > max_minor(amount.currency):
        raise AmountTooLarge(
            f"{amount} is above the maximum of {MAX_AMOUNT_MAJOR:,} {amount.currency} per movement"
        )
    return amount


@cache
def _zero(currency: str) -> Money:
    """Nothing of `currency`, made once (an amount is immutable; every fee-free movement asks)."""
    return Money(0, currency)
