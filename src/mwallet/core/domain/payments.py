"""Bill payments: billers, the references their customers type, and a payment's states.

A payment is a two-phase ledger movement like a withdrawal: `request` holds the amount (and any
fee) in the holds account; the provider's answer settles it.

    pending ──approved──▶ succeeded     holds ──▶ payable:<biller> (amount), fees (fee)
       ├──declined──▶ failed            holds ──▶ wallet (all of it)
       └──no answer (timeout, 5xx, lost)──▶ unknown ──reconcile or callback──▶ succeeded | failed

`unknown` keeps the money held: it is never released on a guess, and never charged twice (the
provider gets the payment's id as its idempotency key, and a status query asks about that id).
Each transition is one conditional UPDATE from the state it leaves, so it happens at most once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from mwallet.core.domain.money import Money
from mwallet.core.errors import InvalidInput, PaymentNotFound, quoted

REFERENCE_MAX = 34
PATTERN_MAX = 200


class PaymentState(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"


HOLDING = frozenset({PaymentState.PENDING, PaymentState.UNKNOWN})


class CheckDigit(StrEnum):
    NONE = "none"
    LUHN = "luhn"  # the last digit checks the others (ISO/IEC 7812)
    MOD97 = "mod97"  # the whole reference, as ISO 7064 MOD 97-10 (IBAN-style), leaves 1


class Category(StrEnum):
    WATER = "water"
    ELECTRICITY = "electricity"
    INTERNET = "internet"
    TV = "tv"
    AIRTIME = "airtime"  # a mobile operator: the reference is the phone number to top up
    FUNDING = "funding"  # a card or bank provider money comes in from (a top-up)
    OTHER = "other"


class Product(StrEnum):
    BILL = "bill"
    AIRTIME = "airtime"
    TOPUP = "topup"  # money in from a card or bank: nothing is held, the wallet is credited


@dataclass(frozen=True, slots=True)
class Biller:
    id: str  # short and typed by people: "aguas-maputo"
    name: str
    category: Category
    currency: str
    min_minor: int
    max_minor: int
    provider: str  # which provider adapter serves it: "sandbox", "http"
    pattern: str  # the customer reference, as a regular expression it must match whole
    check: CheckDigit
    active: bool = True

    def reference(self, text: str) -> str:
        """The customer reference as typed, checked: spaces and dashes ignored, then the
        pattern and the check digit. InvalidInput names what is wrong."""
        cleaned = "".join(text.split()).replace("-", "").upper()
        if not cleaned:
            raise InvalidInput(f"give your {self.name} reference")
        if (
            len(cleaned) > REFERENCE_MAX
            or not cleaned.isascii()
            or not re.fullmatch(self.pattern, cleaned, re.ASCII)
        ):
            raise InvalidInput(f"{quoted(text.strip())} is not a {self.name} reference")
        if not passes_check(cleaned, self.check):
            raise InvalidInput(f"{quoted(text.strip())}: the check digit does not match (a typo?)")
        return cleaned

    def check_amount(self, amount: Money) -> None:
        if amount.currency != self.currency:
            raise InvalidInput(f"{self.name} is paid in {self.currency}")
        if not self.min_minor <= amount.minor <= self.max_minor:
            low, high = Money(self.min_minor, self.currency), Money(self.max_minor, self.currency)
            raise InvalidInput(f"{self.name} takes {low.format()} to {high.format()}")


def check_biller_id(text: str) -> str:
    cleaned = text.strip().lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,31}", cleaned):
        raise InvalidInput("a biller id is 2-32 lower-case letters, digits and dashes")
    return cleaned


def check_pattern(text: str) -> str:
    if not 1 <= len(text) <= PATTERN_MAX:
        raise InvalidInput(f"a reference pattern is 1 to {PATTERN_MAX} characters")
    try:
        re.compile(text)
    except re.error as exc:
        raise InvalidInput(f"not a regular expression: {exc}") from None
    return text


def passes_check(reference: str, check: CheckDigit) -> bool:
    if check is CheckDigit.LUHN:
        return reference.isascii() and reference.isdigit() and luhn_valid(reference)
    if check is CheckDigit.MOD97:
        return mod97_valid(reference)
    return True


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return len(digits) > 1 and total % 10 == 0


def luhn_digit(body: str) -> str:
    """The check digit that makes `body` + it pass Luhn."""
    for candidate in "0123456789":
        if luhn_valid(body + candidate):
            return candidate
    raise AssertionError("unreachable: one digit always fits")  # pragma: no cover


def mod97_valid(reference: str) -> bool:
    """ISO 7064 MOD 97-10 over the reference, letters as 10..35 (as IBANs are checked)."""
    if not reference.isascii() or not reference.isalnum() or len(reference) < 3:
        return False
    number = "".join(str(int(char, 36)) for char in reference)
    return int(number) % 97 == 1


def mod97_digits(body: str) -> str:
    """The two check digits that make `body` + them pass MOD 97-10."""
    number = int("".join(str(int(char, 36)) for char in body + "00"))
    return f"{98 - number % 97:02d}"


@dataclass(frozen=True, slots=True)
class Payment:
    id: str
    user_id: str
    biller_id: str
    reference: str
    amount: Money
    fee: Money
    state: PaymentState
    created_at: datetime
    updated_at: datetime
    provider_ref: str | None = None
    reason: str | None = None  # why it failed, as the provider said
    product: Product = Product.BILL

    @property
    def held(self) -> Money:
        return self.amount + self.fee

    @property
    def provider_amount(self) -> Money:
        """What the provider moves: the biller or operator gets the amount (the fee is the
        wallet's); a card is charged the amount and the fee of a top-up."""
        return self.held if self.product is Product.TOPUP else self.amount


class ProviderOutcome(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    UNKNOWN = "unknown"  # no answer we can trust: a timeout, a 5xx after retries, a lost reply


@dataclass(frozen=True, slots=True)
class ProviderAnswer:
    outcome: ProviderOutcome
    provider_ref: str | None = None
    reason: str | None = None


def sandbox_billers(currency: str, exponent: int) -> list[Biller]:
    """What a new instance ships with, served by the `sandbox` provider, so bills can be paid
    (and every outcome tried) out of the box. Admins disable them for real use."""
    unit = 10**exponent
    return [
        Biller("aguas-maputo", "Águas da Região de Maputo", Category.WATER, currency, unit,
               5_000 * unit, "sandbox", r"[0-9]{8}", CheckDigit.LUHN),
        Biller("edm-credelec", "EDM Credelec", Category.ELECTRICITY, currency, 10 * unit,
               10_000 * unit, "sandbox", r"[0-9]{11}", CheckDigit.LUHN),
        Biller("tvcabo", "TVCabo", Category.TV, currency, unit, 2_000 * unit, "sandbox",
               r"[0-9]{4,10}", CheckDigit.NONE),
        Biller("net-fibra", "Fibra Net", Category.INTERNET, currency, unit, 3_000 * unit,
               "sandbox", r"MZ[0-9A-Z]{8,22}", CheckDigit.MOD97),
    ]  # fmt: skip


def sandbox_operators(currency: str, exponent: int) -> list[Biller]:
    """Mozambique's mobile operators, as the carrier data names them, for airtime (sandbox)."""
    unit = 10**exponent
    return [
        Biller(f"airtime-{key}", name, Category.AIRTIME, currency, 10 * unit, 5_000 * unit,
               "sandbox", r"\+[0-9]{8,15}", CheckDigit.NONE)
        for key, name in (("vodacom", "Vodacom"), ("mcel", "mcel"), ("movitel", "Movitel"))
    ]  # fmt: skip


def sandbox_funding(currency: str, exponent: int) -> list[Biller]:
    """A card provider to top up from (sandbox): card numbers with a Luhn check digit."""
    unit = 10**exponent
    return [
        Biller("card", "Card (sandbox)", Category.FUNDING, currency, unit, 10_000 * unit,
               "sandbox", r"[0-9]{12,19}", CheckDigit.LUHN),
    ]  # fmt: skip


def carrier_of(e164: str) -> str | None:
    """The mobile operator a number belongs to, from phonenumbers' carrier data (None if it
    has none, or the number is not a mobile one)."""
    import phonenumbers
    from phonenumbers import carrier

    number = phonenumbers.parse(e164, None)
    name = carrier.name_for_number(number, "en")
    return str(name) or None


def payable_account_code(biller_id: str) -> str:
    return f"payable:{biller_id}"


def no_payment(typed: str) -> PaymentNotFound:
    """The refusal of a payment id that names none of the person's payments (the service's, and
    the remote client's for a typed id that cannot be one, which it does not put in a URL)."""
    return PaymentNotFound(f"you have no payment {quoted(typed.strip())}")
