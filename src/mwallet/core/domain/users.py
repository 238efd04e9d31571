"""Users: who they are, how their phone number, name and e-mail are checked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from mwallet.core.domain.roles import Role
from mwallet.core.domain.tariffs import Tier
from mwallet.core.errors import (
    InvalidEmail,
    InvalidName,
    InvalidPhoneNumber,
    InvalidRegion,
    WeakPassword,
    quoted,
)

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
MAX_NAME_LENGTH = 80
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True, slots=True)
class User:
    id: str
    phone: str  # E.164, e.g. +258841234567
    display_name: str
    email: str | None
    created_at: datetime
    role: Role = Role.CUSTOMER
    tier: Tier = Tier.BASIC  # KYC: what limits apply (core/domain/tariffs.py)


@lru_cache(maxsize=4096)
def normalize_phone(text: str, default_region: str | None) -> str:
    """E.164 form of a phone number; a number without +country needs a default region.

    Cached: parsing costs more than the rest of a transfer's Python, and the answer for a given
    text never changes.
    """
    import phonenumbers  # ~20 ms to import: only commands that read a phone number pay it

    raw = text.strip()
    if not raw:
        raise InvalidPhoneNumber("a phone number is required")
    if not raw.startswith("+") and default_region is None:
        raise InvalidPhoneNumber(
            f"{quoted(text)}: write the number in international form, e.g. +258841234567"
        )
    try:
        number = phonenumbers.parse(raw, None if raw.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"{quoted(text)} is not a phone number: {exc._msg}") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(f"{quoted(text)} is not a valid phone number")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def check_region(region: str) -> str:
    import phonenumbers

    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidRegion(f"unknown phone region {quoted(region)}; use a code like MZ or US")
    return code


def check_display_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidName("a display name is required")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidName(f"the display name is longer than {MAX_NAME_LENGTH} characters")
    if any(not ch.isprintable() for ch in cleaned):
        raise InvalidName("the display name has control characters")
    return cleaned


def check_email(email: str | None) -> str | None:
    if email is None:
        return None
    cleaned = email.strip()
    if not cleaned:
        return None
    if (
        len(cleaned) > 254
        or _EMAIL.fullmatch(cleaned) is None
        or not all(ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF for ch in cleaned)
    ):
        raise InvalidEmail(f"{quoted(email)} is not an e-mail address")
    return cleaned


def check_password(password: str, *, phone: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"the password may have at most {MAX_PASSWORD_LENGTH} characters")
    if _digits(password) in _phone_spellings(phone):
        raise WeakPassword("the password must not be the phone number")
    if password.casefold() in _common_passwords():
        raise WeakPassword("that password is one of the most common breached ones: choose another")


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    """The bundled list of common breached passwords, read once, on first use."""
    from importlib.resources import files

    text = files("mwallet.core.domain").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().casefold() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isascii() and ch.isdigit())


def _phone_spellings(phone: str) -> set[str]:
    """The digits of every usual way to write `phone`: international, national, with trunk 0."""
    import phonenumbers

    number = phonenumbers.parse(phone, None)
    national = str(phonenumbers.national_significant_number(number))
    spellings = {
        _digits(phone),
        national,
        _digits(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)),
    }
    return {spelling for spelling in spellings if spelling}


def mask_name(name: str) -> str:
    """ "Maria Santos" -> "Maria S." — what a counterparty sees of a person."""
    parts = name.split()
    if len(parts) <= 1:
        return name.strip()
    return f"{parts[0]} {parts[-1][0]}."


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a service call runs as, as the door authenticated them."""

    user_id: str  # a person's user id, or an OAuth client's id
    phone: str  # empty for a client
    display_name: str
    role: Role = Role.CUSTOMER
    # A client acts only within its token's scopes; a person's scopes come from their role.
    scopes: frozenset[str] = frozenset()
    client: bool = False
