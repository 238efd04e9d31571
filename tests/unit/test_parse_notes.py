"""Notes to load into an ATM, as typed (`50x100 20x200`): `parse_notes` gives
{denomination in minor units: count}, and InvalidInput with a message naming the bad item for
anything else."""

from __future__ import annotations

import pytest

from mwallet.core.domain.terminals import parse_notes
from mwallet.core.errors import InvalidInput, quoted

FORMAT_HINT = "write notes as DENOMINATIONxCOUNT, e.g. 50x100"


# --- good ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("items", "currency", "expected"),
    [
        (["50x100 20x200"], "USD", {5000: 100, 2000: 200}),
        (["50x100", "20x200"], "USD", {5000: 100, 2000: 200}),  # one argument per item
        (["50x100 20x200", "10x5", "100x1"], "USD", {5000: 100, 2000: 200, 1000: 5, 10000: 1}),
        (["  50x1\t20x2\n", " 10x3 "], "USD", {5000: 1, 2000: 2, 1000: 3}),  # any whitespace
        (["50x3 20x1 50x2"], "USD", {5000: 5, 2000: 1}),  # a repeated denomination sums
        (["50x3", "50x4", "50x5"], "USD", {5000: 12}),
        (["50X100"], "USD", {5000: 100}),  # an upper-case X
        (["50X1 50x2"], "USD", {5000: 3}),
        (["0.5x10"], "USD", {50: 10}),  # decimals within the currency's exponent
        (["0.25x4 1.50x2"], "USD", {25: 4, 150: 2}),
        (["1000x5 500x2"], "JPY", {1000: 5, 500: 2}),  # no minor unit: minor = major
        (["0.5x1"], "BHD", {500: 1}),  # three decimals
        (["50x007"], "USD", {5000: 7}),  # leading zeros in a count
        (["50x10000"], "USD", {5000: 10_000}),
        (["1000000000x1"], "USD", {100_000_000_000: 1}),  # the largest amount there is
    ],
)
def test_notes_as_typed(items: list[str], currency: str, expected: dict[int, int]) -> None:
    assert parse_notes(items, currency) == expected


def test_the_result_is_a_fresh_dict_of_ints() -> None:
    parsed = parse_notes(["20x5"], "MZN")
    assert parsed == {2000: 5}
    assert all(type(k) is int and type(v) is int for k, v in parsed.items())
    parsed[2000] = 0
    assert parse_notes(["20x5"], "MZN") == {2000: 5}


def test_any_iterable_of_texts_is_read() -> None:
    assert parse_notes(iter(["50x1", "20x2"]), "USD") == {5000: 1, 2000: 2}
    assert parse_notes(("50x1 20x2",), "USD") == {5000: 1, 2000: 2}


# --- bad -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "item",
    [
        "50",  # no count
        "50x",  # an empty count
        "x",
        "50x-1",  # a sign in the count
        "50x+1",
        "50x1.5",  # half a note
        "50x1e3",
        "50x1_000",  # int() would read it
        "50x\u0661\u0662",  # Arabic-Indic digits (١٢): str.isdigit() says yes
        "50x²",  # a superscript two: isdigit() too
        "50x\uff11",  # a full-width one
        "50x100x2",
        "50*100",
        "50\u00d7100",  # the multiplication sign, not an x
    ],
)
def test_an_item_that_is_not_denomination_x_count_is_refused(item: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_notes([item], "USD")
    assert caught.value.message == f"{item!r}: {FORMAT_HINT}"


@pytest.mark.parametrize(
    ("item", "currency", "says"),
    [
        ("x10", "USD", "is not an amount"),  # no denomination
        ("abcx1", "USD", "is not an amount"),
        ("-50x1", "USD", "is not an amount"),  # a negative denomination
        ("+50x1", "USD", "is not an amount"),
        ("1e2x1", "USD", "is not an amount"),
        ("1,000x1", "USD", "is not an amount"),
        ("1_000x1", "USD", "is not an amount"),
        ("\uff15\uff10x1", "USD", "is not an amount"),  # full-width digits in the denomination
        ("nanx1", "USD", "is not an amount"),
        ("0x5", "USD", "greater than zero"),
        ("0.00x5", "USD", "greater than zero"),
        ("0.5x10", "JPY", "no minor unit"),
        ("0.005x1", "USD", "more decimals than USD allows"),
        ("1000000001x1", "USD", "above the maximum"),
        ("9" * 40 + "x1", "USD", "above the maximum"),
    ],
)
def test_a_denomination_that_is_no_amount_is_refused(item: str, currency: str, says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_notes([item], currency)
    # Exactly InvalidInput (not the money error it wraps), naming the item and the reason.
    assert type(caught.value) is InvalidInput
    assert caught.value.message.startswith(f"{quoted(item)}: ")  # a long item quoted short
    assert says in caught.value.message


def test_an_unknown_currency_is_named() -> None:
    with pytest.raises(InvalidInput, match="unknown currency 'XXX'"):
        parse_notes(["50x1"], "XXX")


@pytest.mark.parametrize("items", [[], [""], ["   "], ["", " \t\n"]])
def test_no_notes_at_all_is_refused(items: list[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_notes(items, "USD")
    assert caught.value.message == "say which notes to load, e.g. 50x100"


def test_one_bad_item_among_good_ones_refuses_the_whole_load() -> None:
    with pytest.raises(InvalidInput, match=r"^'20x': "):
        parse_notes(["50x100 20x 10x5"], "USD")
    with pytest.raises(InvalidInput, match=r"^'abcx1': "):
        parse_notes(["50x100", "abcx1"], "USD")


def test_an_absurdly_long_count_is_refused_as_input() -> None:
    with pytest.raises(InvalidInput):
        parse_notes(["50x" + "9" * 5000], "USD")
