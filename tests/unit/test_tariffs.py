"""Fee arithmetic of tariffs (core/domain/tariffs.py): bands, percentages, rounding, min and max,
and the rules a tariff or a limit must follow. Every expected fee is worked out by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mwallet.core.domain.money import Money
from mwallet.core.domain.tariffs import (
    FREE,
    Allowance,
    Band,
    Limit,
    LimitFamily,
    Movement,
    Period,
    Tariff,
    Tier,
    default_limit,
    flat,
    format_percent,
    month_start,
    parse_percent,
)
from mwallet.core.errors import InvalidInput


def usd(minor: int) -> Money:
    return Money(minor, "USD")


# 1.5 % + 0.25, at least 1.00, at most 20.00
PERCENT = Tariff((Band(None, 25, 150),), min_minor=100, max_minor=2_000)
# up to 100.00: flat 0.50; up to 1,000.00: 1 %; above: 0.5 % + 2.00
TIERED = Tariff((Band(10_000, 50, 0), Band(100_000, 0, 100), Band(None, 200, 50)))


@pytest.mark.parametrize(
    ("tariff", "amount", "fee"),
    [
        (FREE, 123_456, 0),
        (flat(150), 1, 150),
        (flat(150), 100_000_000, 150),
        # 1.5 % of 10.00 = 0.15, + 0.25 = 0.40 -> the minimum, 1.00
        (PERCENT, 1_000, 100),
        # 1.5 % of 50.00 = 0.75, + 0.25 = 1.00: exactly the minimum
        (PERCENT, 5_000, 100),
        # 1.5 % of 50.01 = 0.75015 -> 0.75, + 0.25 = 1.00
        (PERCENT, 5_001, 100),
        # 1.5 % of 100.00 = 1.50, + 0.25 = 1.75
        (PERCENT, 10_000, 175),
        # 1.5 % of 1,316.67 = 19.75005 -> 19.75, + 0.25 = 20.00: exactly the maximum
        (PERCENT, 131_667, 2_000),
        # 1.5 % of 5,000.00 = 75.00 + 0.25 -> the maximum, 20.00
        (PERCENT, 500_000, 2_000),
        # band bounds are inclusive
        (TIERED, 10_000, 50),
        (TIERED, 10_001, 100),  # 1 % of 100.01 = 1.0001 -> 1.00
        (TIERED, 100_000, 1_000),
        (TIERED, 100_001, 700),  # 0.5 % of 1,000.01 = 5.00005 -> 5.00, + 2.00
    ],
)
def test_fees_worked_out_by_hand(tariff: Tariff, amount: int, fee: int) -> None:
    assert tariff.fee(usd(amount)) == usd(fee)


@pytest.mark.parametrize(
    ("amount", "fee"),
    [
        (50, 1),  # 2 % of 0.50 = 0.01
        (25, 1),  # 2 % of 0.25 = 0.005: half rounds up
        (24, 0),  # 2 % of 0.24 = 0.0048 rounds down
        (75, 2),  # 0.015 -> 0.02
    ],
)
def test_a_percentage_rounds_half_up_to_the_minor_unit(amount: int, fee: int) -> None:
    assert Tariff((Band(None, 0, 200),)).fee(usd(amount)) == usd(fee)


def test_a_fee_keeps_the_currency_of_the_amount() -> None:
    assert flat(3).fee(Money(1_000, "JPY")) == Money(3, "JPY")


@given(
    amount=st.integers(min_value=1, max_value=100_000_000_000),
    bp=st.integers(min_value=0, max_value=10_000),
    flat_minor=st.integers(min_value=0, max_value=10_000),
    low=st.integers(min_value=0, max_value=5_000),
    spread=st.integers(min_value=0, max_value=5_000),
)
def test_a_fee_always_lies_between_the_minimum_and_the_maximum(
    amount: int, bp: int, flat_minor: int, low: int, spread: int
) -> None:
    tariff = Tariff((Band(None, flat_minor, bp),), min_minor=low, max_minor=low + spread)
    fee = tariff.fee(usd(amount)).minor
    assert low <= fee <= low + spread
    unbounded = Tariff((Band(None, flat_minor, bp),)).fee(usd(amount)).minor
    assert fee == min(max(unbounded, low), low + spread)


@given(
    a=st.integers(min_value=1, max_value=10**12),
    b=st.integers(min_value=1, max_value=10**12),
    bp=st.integers(min_value=0, max_value=10_000),
)
def test_within_one_band_a_larger_amount_never_pays_less(a: int, b: int, bp: int) -> None:
    tariff = Tariff((Band(None, 10, bp),), min_minor=5)
    low, high = sorted((a, b))
    assert tariff.fee(usd(low)).minor <= tariff.fee(usd(high)).minor


@pytest.mark.parametrize(
    ("tariff", "message"),
    [
        (Tariff(()), "between 1 and 10 bands"),
        (Tariff((Band(None),) * 11), "between 1 and 10 bands"),
        (Tariff((Band(100),)), "last band must cover any amount"),
        (Tariff((Band(None), Band(None))), "only the last band"),
        (Tariff((Band(100), Band(100), Band(None))), "strictly increasing"),
        (Tariff((Band(200), Band(100), Band(None))), "strictly increasing"),
        (Tariff((Band(0), Band(None))), "positive"),
        (Tariff((Band(None, -1),)), "flat fee"),
        (Tariff((Band(None, 0, 10_001),)), "between 0 and 100"),
        (Tariff((Band(None, 0, -1),)), "between 0 and 100"),
        (Tariff((Band(None),), min_minor=-1), "minimum fee"),
        (Tariff((Band(None),), min_minor=500, max_minor=499), "at least the minimum"),
        (Tariff((Band(None, 100_000_000_001),)), "flat fee"),
    ],
)
def test_a_tariff_that_makes_no_sense_is_refused(tariff: Tariff, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        tariff.checked("USD")


def test_a_sound_tariff_passes_its_checks_unchanged() -> None:
    assert TIERED.checked("USD") is TIERED
    assert PERCENT.checked("USD") is PERCENT


def test_a_tariff_survives_its_json_form() -> None:
    for tariff in (FREE, flat(7), PERCENT, TIERED):
        assert Tariff.from_json(tariff.to_json()) == tariff


@pytest.mark.parametrize(
    ("tariff", "text"),
    [
        (FREE, "free"),
        (Tariff((Band(None),), min_minor=0), "free"),
        (flat(50), "0.50"),
        (PERCENT, "1.5% + 0.25 (min 1.00, max 20.00)"),
        (
            TIERED,
            "up to 100.00: 0.50; up to 1000.00: 1%; above: 0.5% + 2.00",
        ),
    ],
)
def test_a_tariff_reads_as_one_line(tariff: Tariff, text: str) -> None:
    assert tariff.describe("USD") == text


@pytest.mark.parametrize(
    ("text", "bp"),
    [("1.5", 150), ("1.5%", 150), (" 0 ", 0), ("100", 10_000), ("0.01", 1), ("12.50", 1_250)],
)
def test_percentages_are_read_without_floats(text: str, bp: int) -> None:
    assert parse_percent(text) == bp


@pytest.mark.parametrize("text", ["", "abc", "-1", "100.01", "0.001", "nan", "inf", "1e2x"])
def test_a_bad_percentage_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_percent(text)


@pytest.mark.parametrize(("bp", "text"), [(0, "0"), (150, "1.5"), (1, "0.01"), (10_000, "100")])
def test_percentages_print_as_people_write_them(bp: int, text: str) -> None:
    assert format_percent(bp) == text


def test_withdrawal_channels_share_one_limit_family() -> None:
    assert Movement.WITHDRAWAL_ATM.family is LimitFamily.WITHDRAWAL
    assert Movement.WITHDRAWAL_AGENT.family is LimitFamily.WITHDRAWAL
    assert Movement.TRANSFER.family is LimitFamily.TRANSFER
    assert Movement.TOPUP.family is LimitFamily.TOPUP


@pytest.mark.parametrize(
    ("parse", "text"),
    [(Movement.parse, "wire"), (LimitFamily.parse, "withdrawal-atm"), (Tier.parse, "gold")],
)
def test_unknown_names_are_refused_with_the_choices(parse: object, text: str) -> None:
    with pytest.raises(InvalidInput, match="one of:"):
        parse(text)  # type: ignore[operator]


def test_names_are_read_case_and_space_insensitively() -> None:
    assert Movement.parse(" Withdrawal-ATM ") is Movement.WITHDRAWAL_ATM
    assert Tier.parse("VERIFIED") is Tier.VERIFIED


@pytest.mark.parametrize(
    ("daily", "monthly", "message"),
    [(0, None, "positive"), (None, -5, "positive"), (2_000, 1_000, "daily limit cannot be above")],
)
def test_a_limit_that_makes_no_sense_is_refused(
    daily: int | None, monthly: int | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        Limit(LimitFamily.BILL, Tier.BASIC, daily, monthly).checked("USD")


def test_only_withdrawals_are_limited_before_an_admin_says_otherwise() -> None:
    assert default_limit(LimitFamily.WITHDRAWAL, Tier.BASIC, "USD").daily_minor == 200_000
    assert default_limit(LimitFamily.WITHDRAWAL, Tier.BASIC, "JPY").daily_minor == 2_000
    for family in (LimitFamily.TRANSFER, LimitFamily.BILL, LimitFamily.AIRTIME):
        limit = default_limit(family, Tier.VERIFIED, "USD")
        assert (limit.daily_minor, limit.monthly_minor) == (None, None)


def test_what_is_left_of_a_limit_never_goes_below_zero() -> None:
    assert Allowance(Period.DAY, usd(1_000), usd(400)).left == usd(600)
    assert Allowance(Period.DAY, usd(1_000), usd(1_200)).left == usd(0)
    assert Allowance(Period.MONTH, None, usd(1_200)).left is None


def test_a_month_starts_on_its_first_day_at_midnight_utc() -> None:
    from datetime import UTC, datetime

    assert month_start(datetime(2026, 11, 29, 17, 5, 3, 9, tzinfo=UTC)) == datetime(
        2026, 11, 1, tzinfo=UTC
    )
