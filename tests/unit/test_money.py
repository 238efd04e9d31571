"""Money: strict parsing of typed amounts, formatting, and arithmetic within one currency."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mwallet.core.domain.money import (
    MAX_AMOUNT_MAJOR,
    MINOR_UNIT_EXPONENTS,
    Money,
    currency_exponent,
    max_minor,
    normalize_currency,
)
from mwallet.core.errors import (
    AmountTooLarge,
    Category,
    CurrencyMismatch,
    InvalidAmount,
    UnknownCurrency,
)

CURRENCIES = sorted(MINOR_UNIT_EXPONENTS)


# --- parsing -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("12.5", 1250),
        ("12.50", 1250),
        ("12", 1200),
        ("0.01", 1),
        ("0.5", 50),
        ("1000", 100_000),
        ("  12.50\n", 1250),  # surrounding whitespace is not part of the amount
    ],
)
def test_usd_amounts_people_type_are_read_exactly(text: str, minor: int) -> None:
    assert Money.parse(text, "USD") == Money(minor, "USD")


@pytest.mark.parametrize(
    "text",
    [
        "12.505",  # more decimals than USD has
        "0.001",
        "-1",  # negatives
        "-0.50",
        "\u22121",  # a typographic minus sign
        "0",  # zero moves nothing
        "0.00",
        "0.0",
        "NaN",
        "nan",
        "inf",
        "Infinity",
        "1e3",  # exponents
        "1E3",
        "1,000",  # thousands separators
        "1 000",
        "1_000",
        "1'000",
        "12,50",  # a decimal comma
        ".5",  # no whole part
        "12.",  # a decimal point with nothing after it
        "+5",  # signs
        "00",  # leading zeros
        "012",
        "0x10",
        "\u0661\u0662",  # Arabic-Indic digits: "١٢"
        "\uff11\uff12",  # full-width digits
        "\u0967\u0968",  # Devanagari digits
        "",
        "   ",
        "\t\n",
        "12.50 USD",
        "$12.50",
        "1.2.3",
        "1/2",
        "twelve",
    ],
)
def test_anything_but_plain_positive_digits_is_refused(text: str) -> None:
    with pytest.raises(InvalidAmount) as caught:
        Money.parse(text, "USD")
    assert caught.value.code == "invalid_amount"
    assert caught.value.category is Category.INVALID_INPUT


def test_the_maximum_is_allowed_and_one_minor_unit_more_is_refused() -> None:
    at_max = Money.parse(str(MAX_AMOUNT_MAJOR), "USD")
    assert at_max == Money(max_minor("USD"), "USD")
    assert max_minor("USD") == MAX_AMOUNT_MAJOR * 100
    with pytest.raises(AmountTooLarge) as caught:
        Money.parse(f"{MAX_AMOUNT_MAJOR}.01", "USD")
    assert caught.value.code == "amount_too_large"


@pytest.mark.parametrize(
    ("currency", "too_large"),
    [
        ("USD", f"{MAX_AMOUNT_MAJOR + 1}"),
        ("JPY", f"{MAX_AMOUNT_MAJOR + 1}"),
        ("BHD", f"{MAX_AMOUNT_MAJOR}.001"),
        ("USD", f"{MAX_AMOUNT_MAJOR * 10}"),
        ("USD", "9" * 30),
    ],
)
def test_amounts_above_the_maximum_are_refused(currency: str, too_large: str) -> None:
    with pytest.raises(AmountTooLarge):
        Money.parse(too_large, currency)


def test_an_absurdly_long_number_is_refused_as_too_large() -> None:
    # Python refuses to convert strings of more than 4300 digits to int with a bare ValueError,
    # which no door maps: the amount must be refused as a wallet error before that.
    with pytest.raises(AmountTooLarge):
        Money.parse("1" * 5000, "USD")


def test_jpy_has_no_decimals() -> None:
    assert currency_exponent("JPY") == 0
    assert Money.parse("1200", "JPY") == Money(1200, "JPY")
    assert Money.parse("1", "JPY") == Money(1, "JPY")
    for text in ("12.5", "12.0", "12.00", "0.5"):
        with pytest.raises(InvalidAmount):
            Money.parse(text, "JPY")


def test_bhd_has_three_decimals() -> None:
    assert currency_exponent("BHD") == 3
    assert Money.parse("1.234", "BHD") == Money(1234, "BHD")
    assert Money.parse("1.2", "BHD") == Money(1200, "BHD")
    assert Money.parse("0.001", "BHD") == Money(1, "BHD")
    with pytest.raises(InvalidAmount):
        Money.parse("1.2345", "BHD")


@pytest.mark.parametrize("currency", ["XXX", "usd", "US", "USDD", "", " USD", "BTC"])
def test_an_unknown_currency_is_refused(currency: str) -> None:
    with pytest.raises(UnknownCurrency):
        Money.parse("1", currency)
    with pytest.raises(UnknownCurrency):
        Money(1, currency)
    with pytest.raises(UnknownCurrency):
        max_minor(currency)


def test_currency_codes_people_type_are_normalized() -> None:
    assert normalize_currency(" usd ") == "USD"
    assert normalize_currency("Jpy") == "JPY"
    with pytest.raises(UnknownCurrency):
        normalize_currency("dollars")


# --- construction --------------------------------------------------------------------------------
@pytest.mark.parametrize("minor", [1.0, 12.5, True, False, Decimal(1), "100", None])
def test_money_accepts_only_whole_int_minor_units(minor: object) -> None:
    with pytest.raises(InvalidAmount):
        Money(cast(Any, minor), "USD")


def test_money_holds_negative_and_zero_amounts_for_balances() -> None:
    assert Money(-5, "USD").minor == -5
    assert Money.zero("EUR") == Money(0, "EUR")
    assert not Money.zero("EUR").is_positive
    assert not Money(-1, "EUR").is_positive
    assert Money(1, "EUR").is_positive


# --- formatting ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(1250, "USD"), "12.50"),
        (Money(5, "USD"), "0.05"),
        (Money(0, "USD"), "0.00"),
        (Money(-305, "USD"), "-3.05"),
        (Money(-5, "USD"), "-0.05"),
        (Money(100_000_000_000, "USD"), "1000000000.00"),
        (Money(1200, "JPY"), "1200"),
        (Money(-7, "JPY"), "-7"),
        (Money(1234, "BHD"), "1.234"),
        (Money(1, "BHD"), "0.001"),
        (Money(-1050, "KWD"), "-1.050"),
    ],
)
def test_to_decimal_string(money: Money, text: str) -> None:
    assert money.to_decimal_string() == text


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(123_450, "USD"), "1,234.50 USD"),
        (Money(-123_456_789, "USD"), "-1,234,567.89 USD"),
        (Money(-5, "USD"), "-0.05 USD"),
        (Money(0, "EUR"), "0.00 EUR"),
        (Money(99_999, "EUR"), "999.99 EUR"),
        (Money(1_234_567, "JPY"), "1,234,567 JPY"),
        (Money(-1_000, "XOF"), "-1,000 XOF"),
        (Money(1_234_567, "BHD"), "1,234.567 BHD"),
        (Money(100_000_000_000, "USD"), "1,000,000,000.00 USD"),
    ],
)
def test_format_for_people(money: Money, text: str) -> None:
    assert money.format() == text
    assert str(money) == text


# --- arithmetic ----------------------------------------------------------------------------------
def test_arithmetic_in_one_currency() -> None:
    a, b = Money(1000, "USD"), Money(250, "USD")
    assert a + b == Money(1250, "USD")
    assert a - b == Money(750, "USD")
    assert b - a == Money(-750, "USD")
    assert -a == Money(-1000, "USD")
    assert b < a
    assert b <= a
    assert a <= Money(1000, "USD")
    assert a > b
    assert a >= b
    assert not a < Money(1000, "USD")


def test_arithmetic_refuses_mixed_currencies() -> None:
    usd, eur = Money(100, "USD"), Money(100, "EUR")
    with pytest.raises(CurrencyMismatch):
        _ = usd + eur
    with pytest.raises(CurrencyMismatch):
        _ = usd - eur
    with pytest.raises(CurrencyMismatch):
        _ = usd < eur
    with pytest.raises(CurrencyMismatch):
        _ = usd <= eur
    with pytest.raises(CurrencyMismatch):
        _ = usd > eur
    with pytest.raises(CurrencyMismatch):
        _ = usd >= eur
    # Equal minor units of two currencies are not the same money.
    assert usd != eur


# --- properties ----------------------------------------------------------------------------------
@st.composite
def positive_money(draw: st.DrawFn) -> Money:
    currency = draw(st.sampled_from(CURRENCIES))
    minor = draw(
        st.one_of(
            st.integers(min_value=1, max_value=max_minor(currency)),
            st.sampled_from([1, max_minor(currency), max_minor(currency) - 1]),
        )
    )
    return Money(minor, currency)


@given(positive_money())
def test_parse_reads_back_every_decimal_string(money: Money) -> None:
    assert Money.parse(money.to_decimal_string(), money.currency) == money


@given(positive_money())
def test_format_and_decimal_string_agree(money: Money) -> None:
    assert money.format() == f"{_with_commas(money.to_decimal_string())} {money.currency}"


def _with_commas(decimal: str) -> str:
    whole, dot, fraction = decimal.partition(".")
    return f"{int(whole):,}{dot}{fraction}"


@given(positive_money())
def test_trailing_zeros_in_the_fraction_do_not_change_the_amount(money: Money) -> None:
    text = money.to_decimal_string()
    trimmed = text.rstrip("0").removesuffix(".") if "." in text else text
    assert Money.parse(trimmed, money.currency) == money


@given(st.text(max_size=40), st.sampled_from(CURRENCIES))
def test_parse_either_reads_an_amount_in_bounds_or_refuses_it(text: str, currency: str) -> None:
    try:
        money = Money.parse(text, currency)
    except (InvalidAmount, AmountTooLarge):
        return
    assert money.currency == currency
    assert 0 < money.minor <= max_minor(currency)
    assert text.strip().isascii()
