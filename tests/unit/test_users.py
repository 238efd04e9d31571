"""Users: phone numbers to E.164, names, e-mail addresses, the password policy and name masking."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mwallet.core.domain.users import (
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    check_display_name,
    check_email,
    check_password,
    check_region,
    mask_name,
    normalize_phone,
)
from mwallet.core.errors import (
    Category,
    InvalidEmail,
    InvalidName,
    InvalidPhoneNumber,
    InvalidRegion,
    WeakPassword,
)

E164 = re.compile(r"\+[1-9][0-9]{1,14}", re.ASCII)
MZ_PHONE = "+258841234567"


# --- normalize_phone -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "region", "e164"),
    [
        ("+258841234567", None, MZ_PHONE),
        ("+258 84 123 4567", None, MZ_PHONE),
        ("+258-84-123-4567", None, MZ_PHONE),
        ("  +258 (84) 123 4567 ", None, MZ_PHONE),
        # A number in international form ignores the instance's region.
        ("+258841234567", "US", MZ_PHONE),
        ("+1 650 253 0000", "MZ", "+16502530000"),
        # National form needs the region.
        ("841234567", "MZ", MZ_PHONE),
        ("84 123 4567", "MZ", MZ_PHONE),
        ("(650) 253-0000", "US", "+16502530000"),
        ("07911 123456", "GB", "+447911123456"),  # the trunk prefix 0 is dropped
        ("+44 (0)7911 123456", None, "+447911123456"),
        # Digits of other scripts are read as the same number.
        (
            "\uff0b\uff12\uff15\uff18\uff18\uff14\uff11\uff12\uff13\uff14\uff15\uff16\uff17",
            "MZ",
            MZ_PHONE,
        ),
    ],
)
def test_phone_numbers_are_normalized_to_e164(text: str, region: str | None, e164: str) -> None:
    assert normalize_phone(text, region) == e164


def test_normalizing_twice_changes_nothing() -> None:
    once = normalize_phone("84 123 4567", "MZ")
    assert normalize_phone(once, None) == once
    assert normalize_phone(once, "US") == once


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("841234567", None),  # national form without a region
        ("(650) 253-0000", None),
        ("841234567", "US"),  # a Mozambican national number is not a US number
        ("(650) 253-0000", "MZ"),
        ("+2588412", None),  # too short
        ("+25884123456789", None),  # too long
        ("+258 21 000", None),
        ("+999 123 456 789", None),  # no such country code
        ("+1 000 000 0000", None),
        ("+258841234567abc", None),
        ("hello", "MZ"),
        ("hello", None),
        ("+", None),
        ("", "MZ"),
        ("   ", "MZ"),
        ("\x00", "MZ"),
        ("1" * 300, "MZ"),
        ("841234567", "ZZ"),  # an unknown region
    ],
)
def test_invalid_phone_numbers_are_refused(text: str, region: str | None) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalize_phone(text, region)
    assert caught.value.category is Category.INVALID_INPUT


@given(st.text(max_size=30), st.sampled_from([None, "MZ", "US", "GB", "KE"]))
def test_normalize_phone_returns_e164_or_refuses(text: str, region: str | None) -> None:
    try:
        e164 = normalize_phone(text, region)
    except InvalidPhoneNumber:
        return
    assert E164.fullmatch(e164)
    assert normalize_phone(e164, None) == e164


@given(st.integers(min_value=0, max_value=9_999_999))
def test_every_mozambican_mobile_number_round_trips(n: int) -> None:
    national = f"84{n:07d}"
    assert normalize_phone(national, "MZ") == f"+258{national}"
    assert normalize_phone(f"+258 {national}", None) == f"+258{national}"


# --- check_region --------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "region"), [("MZ", "MZ"), ("mz", "MZ"), (" us ", "US")])
def test_known_regions_are_normalized(text: str, region: str) -> None:
    assert check_region(text) == region


@pytest.mark.parametrize("text", ["", "ZZ", "XX", "Mozambique", "258", "M Z", "001"])
def test_unknown_regions_are_refused(text: str) -> None:
    with pytest.raises(InvalidRegion):
        check_region(text)


# --- check_display_name --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "cleaned"),
    [
        ("Maria Santos", "Maria Santos"),
        ("  Maria   Santos  ", "Maria Santos"),
        ("Maria\tSantos\n", "Maria Santos"),
        ("Zé Mário Tembe", "Zé Mário Tembe"),
        ("O'Brien-Nkosi", "O'Brien-Nkosi"),
        ("x", "x"),
        ("a" * MAX_NAME_LENGTH, "a" * MAX_NAME_LENGTH),
        # Spaces collapse before the length is counted.
        ("a" + " " * 200 + "b", "a b"),
    ],
)
def test_display_names_are_tidied(name: str, cleaned: str) -> None:
    assert check_display_name(name) == cleaned


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "\n\t",
        "a" * (MAX_NAME_LENGTH + 1),
        "Maria\x00Santos",
        "Maria\x07",
        "\x1b[31mMaria",  # a terminal escape sequence
        "Maria\u202eSantos",  # right-to-left override
        "Maria\u200b",  # zero-width space
    ],
)
def test_bad_display_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidName):
        check_display_name(name)


@given(st.text(max_size=120))
def test_an_accepted_display_name_is_tidy(name: str) -> None:
    try:
        cleaned = check_display_name(name)
    except InvalidName:
        return
    assert 0 < len(cleaned) <= MAX_NAME_LENGTH
    assert cleaned == " ".join(cleaned.split())
    assert cleaned.isprintable()
    assert check_display_name(cleaned) == cleaned


# --- check_email ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("email", "cleaned"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("maria@example.com", "maria@example.com"),
        ("  maria@example.co.mz ", "maria@example.co.mz"),
        ("maria+wallet@example.com", "maria+wallet@example.com"),
    ],
)
def test_email_addresses_are_tidied_or_left_out(email: str | None, cleaned: str | None) -> None:
    assert check_email(email) == cleaned


@pytest.mark.parametrize(
    "email",
    [
        "maria",
        "maria@",
        "@example.com",
        "maria@example",
        "maria@@example.com",
        "ma ria@example.com",
        "maria@exa mple.com",
        "maria@example.com\nBcc: x@y.z",
        "a@b." + "c" * 260,
    ],
)
def test_bad_email_addresses_are_refused(email: str) -> None:
    with pytest.raises(InvalidEmail):
        check_email(email)


# --- check_password ------------------------------------------------------------------------------
def test_password_length_bounds() -> None:
    check_password("k" * MIN_PASSWORD_LENGTH, phone=MZ_PHONE)  # "aaaaaaaa" is a common one
    check_password("a" * MAX_PASSWORD_LENGTH, phone=MZ_PHONE)
    for bad in ("", "a" * (MIN_PASSWORD_LENGTH - 1), "a" * (MAX_PASSWORD_LENGTH + 1)):
        with pytest.raises(WeakPassword) as caught:
            check_password(bad, phone=MZ_PHONE)
        assert caught.value.code == "weak_password"


@pytest.mark.parametrize(
    "password", ["+258841234567", "258841234567", "841234567", " 258841234567 ", "+841234567"]
)
def test_the_phone_number_is_not_a_password(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password(password, phone=MZ_PHONE)


@pytest.mark.parametrize(
    ("password", "phone"),
    [
        ("6502530000", "+16502530000"),  # how a US customer writes their own number
        ("07911123456", "+447911123456"),  # how a UK customer writes theirs
    ],
)
def test_the_phone_number_in_national_form_is_not_a_password(password: str, phone: str) -> None:
    with pytest.raises(WeakPassword):
        check_password(password, phone=phone)


def test_another_number_is_an_acceptable_password() -> None:
    check_password("258841234568", phone=MZ_PHONE)
    check_password("correct-horse-battery", phone=MZ_PHONE)


# --- mask_name -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("Maria Santos", "Maria S."),
        ("Maria", "Maria"),
        ("Ana Maria dos Santos", "Ana S."),
        ("Élodie Ängström", "Élodie Ä."),
    ],
)
def test_mask_name_shows_the_first_name_and_an_initial(name: str, masked: str) -> None:
    assert mask_name(name) == masked


# --- the bundled list of breached passwords ------------------------------------------------------
@pytest.mark.parametrize(
    "common", ["password123", "Password123", "SENHA123", "qwertyuiop", "Moçambique"]
)
def test_common_breached_passwords_are_refused_whatever_their_case(common: str) -> None:
    with pytest.raises(WeakPassword, match="most common breached"):
        check_password(common, phone="+258841234567")


def test_a_long_passphrase_is_welcome() -> None:
    check_password("tres tristes tigres comem trigo", phone="+258841234567")
    check_password("x" * 128, phone="+258841234567")
