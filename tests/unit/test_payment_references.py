"""Bill payments' references and bounds: Luhn and ISO 7064 MOD 97-10 check digits, each sandbox
biller's reference rules (spaces and dashes ignored, lower case upper-cased; wrong length, wrong
check digit, letters where digits belong, nothing at all refused), a biller's amount bounds and
currency, and the checks on a new biller's id and pattern."""

from __future__ import annotations

import pytest

from mwallet.core.domain.money import Money
from mwallet.core.domain.payments import (
    REFERENCE_MAX,
    Biller,
    Category,
    CheckDigit,
    check_biller_id,
    check_pattern,
    luhn_digit,
    luhn_valid,
    mod97_digits,
    mod97_valid,
    passes_check,
    payable_account_code,
    sandbox_billers,
)
from mwallet.core.errors import InvalidInput

BILLERS = {one.id: one for one in sandbox_billers("USD", 2)}
AGUAS, EDM, TVCABO, FIBRA = (
    BILLERS["aguas-maputo"],
    BILLERS["edm-credelec"],
    BILLERS["tvcabo"],
    BILLERS["net-fibra"],
)


def with_luhn(body: str) -> str:
    return body + luhn_digit(body)


def with_mod97(body: str) -> str:
    return body + mod97_digits(body)


def other_digit(digit: str) -> str:
    return str((int(digit) + 1) % 10)


def custom(pattern: str, check: CheckDigit) -> Biller:
    return Biller("custom", "Custom", Category.OTHER, "USD", 100, 10_000, "sandbox", pattern, check)


# --- Luhn ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "number",
    [
        "79927398713",  # the textbook example
        "4539578763621486",  # a Visa-shaped test number
        "4111111111111111",
        "378282246310005",  # an Amex-shaped test number (odd length)
        "00",
        "18",
        "059",
    ],
)
def test_luhn_accepts_known_valid_numbers(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize(
    "number",
    ["79927398710", "79927398711", "79927398712", "79927398714", "79927398719",
     "4111111111111112", "19", "0", "5", ""],
)  # fmt: skip
def test_luhn_refuses_known_invalid_numbers_and_single_digits(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize("body", ["7992739871", "1234567", "0000000", "9991000", "1", "99"])
def test_luhn_digit_is_the_one_digit_that_makes_the_body_valid(body: str) -> None:
    fitting = [digit for digit in "0123456789" if luhn_valid(body + digit)]
    assert fitting == [luhn_digit(body)]


def test_luhn_digit_of_the_textbook_body() -> None:
    assert luhn_digit("7992739871") == "3"


def test_luhn_catches_every_single_digit_typo() -> None:
    number = "79927398713"
    for position, digit in enumerate(number):
        for replacement in "0123456789":
            if replacement != digit:
                typo = number[:position] + replacement + number[position + 1 :]
                assert not luhn_valid(typo), typo


def test_luhn_catches_adjacent_swaps_except_09_and_90() -> None:
    number = with_luhn("1234567")
    for position in range(len(number) - 1):
        pair = number[position : position + 2]
        if pair[0] == pair[1] or pair in ("09", "90"):
            continue
        swapped = number[:position] + pair[::-1] + number[position + 2 :]
        assert not luhn_valid(swapped), swapped


# --- MOD 97-10 -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "iban",
    ["GB82WEST12345698765432", "DE89370400440532013000", "FR1420041010050500013M02606"],
)
def test_mod97_accepts_ibans_rearranged_with_the_check_digits_at_the_end(iban: str) -> None:
    rearranged = iban[4:] + iban[:4]
    assert mod97_valid(rearranged)
    assert mod97_valid(rearranged.lower())  # letters count as 10..35 whatever their case
    # Our form has the check digits at the end: the IBAN as printed is not valid as given.
    assert not mod97_valid(iban)


def test_mod97_digits_give_an_ibans_check_digits() -> None:
    assert mod97_digits("WEST12345698765432GB") == "82"
    assert mod97_digits("370400440532013000DE") == "89"


@pytest.mark.parametrize("body", ["MZ12345678", "MZ99910001", "0", "ABC", "MZ" + "9" * 20, "1"])
def test_mod97_digits_make_the_body_valid_and_are_two_digits_02_to_98(body: str) -> None:
    digits = mod97_digits(body)
    assert len(digits) == 2
    assert 2 <= int(digits) <= 98
    assert mod97_valid(body + digits)
    fitting = [f"{n:02d}" for n in range(2, 99) if mod97_valid(body + f"{n:02d}")]
    assert fitting == [digits]


def test_mod97_catches_every_same_kind_typo_and_adjacent_swap() -> None:
    """A digit for a digit or a letter for a letter, and two neighbours of a kind swapped, always
    change the remainder (97 is prime); a letter for a digit changes the length of the number
    that is checked, so it is caught only most of the time."""
    reference = with_mod97("MZ4RT7890123")
    for position, char in enumerate(reference):
        kind = "0123456789" if char.isdigit() else "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        for replacement in kind:
            if replacement != char:
                typo = reference[:position] + replacement + reference[position + 1 :]
                assert not mod97_valid(typo), typo
    for position in range(len(reference) - 1):
        pair = reference[position : position + 2]
        if pair[0] != pair[1] and pair[0].isdigit() == pair[1].isdigit():
            swapped = reference[:position] + pair[::-1] + reference[position + 2 :]
            assert not mod97_valid(swapped), swapped


def test_mod97_digits_are_the_only_pair_from_02_to_98() -> None:
    # ISO 7064 check digits run 02..98; 00, 01 and 99 are never produced, though the remainder
    # test alone also accepts 01 (and 00, 99) where 98 (97, 98) would be the pair.
    assert mod97_valid("0" + "01")
    assert mod97_digits("0") == "98"


@pytest.mark.parametrize("reference", ["", "01", "MZ-1234567890", "MZ 1234", "MZ12.3456"])
def test_mod97_refuses_short_or_non_alphanumeric_text(reference: str) -> None:
    assert not mod97_valid(reference)


def test_mod97_says_false_for_non_ascii_letters() -> None:
    assert not mod97_valid("MZ1234567É")
    assert not mod97_valid("MZ1234567²")


def test_passes_check_by_kind() -> None:
    assert passes_check("79927398713", CheckDigit.LUHN)
    assert not passes_check("79927398714", CheckDigit.LUHN)
    assert not passes_check("7992739871A", CheckDigit.LUHN)  # Luhn is for digits only
    assert passes_check(with_mod97("MZ12345678"), CheckDigit.MOD97)
    right = mod97_digits("MZ12345678")
    assert not passes_check(f"MZ12345678{(int(right) + 1) % 100:02d}", CheckDigit.MOD97)
    assert passes_check("anything", CheckDigit.NONE)


# --- the sandbox billers' references -------------------------------------------------------------
def test_the_sandbox_billers_and_their_rules() -> None:
    assert [
        (one.id, one.category, one.min_minor, one.max_minor, one.pattern, one.check, one.provider)
        for one in sandbox_billers("USD", 2)
    ] == [
        ("aguas-maputo", Category.WATER, 100, 500_000, "[0-9]{8}", CheckDigit.LUHN, "sandbox"),
        ("edm-credelec", Category.ELECTRICITY, 1_000, 1_000_000, "[0-9]{11}", CheckDigit.LUHN,
         "sandbox"),
        ("tvcabo", Category.TV, 100, 200_000, "[0-9]{4,10}", CheckDigit.NONE, "sandbox"),
        ("net-fibra", Category.INTERNET, 100, 300_000, "MZ[0-9A-Z]{8,22}", CheckDigit.MOD97,
         "sandbox"),
    ]  # fmt: skip
    assert all(one.active and one.currency == "USD" for one in BILLERS.values())
    # Bounds follow the currency's exponent: whole units for a currency without cents.
    yen = {one.id: one for one in sandbox_billers("JPY", 0)}
    assert (yen["aguas-maputo"].min_minor, yen["aguas-maputo"].max_minor) == (1, 5_000)
    assert payable_account_code("tvcabo") == "payable:tvcabo"


@pytest.mark.parametrize(
    ("biller", "typed", "cleaned"),
    [
        (AGUAS, "12345674", "12345674"),
        (AGUAS, "1234 5674", "12345674"),
        (AGUAS, " 1234-5674 ", "12345674"),
        (AGUAS, "1-2 3-4\t5 6\n7 4", "12345674"),
        (EDM, with_luhn("9991000000"), with_luhn("9991000000")),
        (EDM, "0123-4567-89" + luhn_digit("0123456789"), "0123456789" + luhn_digit("0123456789")),
        (TVCABO, "1234", "1234"),
        (TVCABO, "12 34 56 78 90", "1234567890"),
        (FIBRA, with_mod97("MZ12345678"), with_mod97("MZ12345678")),
        (FIBRA, with_mod97("MZ12345678").lower(), with_mod97("MZ12345678")),
        (FIBRA, "mz4r-t789 0123" + mod97_digits("MZ4RT7890123"), with_mod97("MZ4RT7890123")),
        (FIBRA, with_mod97("MZ" + "A" * 20), with_mod97("MZ" + "A" * 20)),  # 22 after MZ
    ],
)
def test_a_reference_is_cleaned_of_spaces_and_dashes_and_upper_cased(
    biller: Biller, typed: str, cleaned: str
) -> None:
    assert biller.reference(typed) == cleaned


@pytest.mark.parametrize(
    ("biller", "typed"),
    [
        (AGUAS, with_luhn("123456")),  # 7 digits
        (AGUAS, with_luhn("12345678")),  # 9 digits
        (EDM, with_luhn("123456789")),  # 10
        (EDM, with_luhn("12345678901")),  # 12
        (TVCABO, "123"),
        (TVCABO, "12345678901"),
        (FIBRA, with_mod97("MZ12345")),  # 7 after MZ
        (FIBRA, with_mod97("MZ" + "1" * 21)),  # 23 after MZ
    ],
)
def test_a_reference_of_the_wrong_length_is_refused(biller: Biller, typed: str) -> None:
    with pytest.raises(InvalidInput, match="is not a"):
        biller.reference(typed)


@pytest.mark.parametrize(
    ("biller", "typed"),
    [
        (AGUAS, "1234567A"),
        (AGUAS, "I2345674"),  # I for 1
        (EDM, "0123456789O"),  # O for 0
        (TVCABO, "12a4"),
        (TVCABO, "\uff11\uff12\uff13\uff14"),  # full-width digits are not [0-9]
        (FIBRA, "XZ12345678" + mod97_digits("XZ12345678")),  # must start MZ
        (FIBRA, with_mod97("12345678")),
        (FIBRA, "MZ1234567_" + mod97_digits("MZ1234567A")),
        (FIBRA, "MZ123456.8" + mod97_digits("MZ12345678")),
    ],
)
def test_letters_or_signs_where_digits_belong_are_refused(biller: Biller, typed: str) -> None:
    with pytest.raises(InvalidInput, match="is not a"):
        biller.reference(typed)


@pytest.mark.parametrize(
    ("biller", "body"),
    [(AGUAS, "1234567"), (AGUAS, "9991000"), (EDM, "0123456789"), (EDM, "9994000000")],
)
def test_a_wrong_luhn_digit_is_refused_as_a_typo(biller: Biller, body: str) -> None:
    right = luhn_digit(body)
    assert biller.reference(body + right) == body + right
    for digit in "0123456789":
        if digit != right:
            with pytest.raises(InvalidInput, match="check digit does not match"):
                biller.reference(body + digit)


def test_a_wrong_mod97_pair_is_refused_as_a_typo() -> None:
    body = "MZ99920001"
    right = mod97_digits(body)
    assert FIBRA.reference(body + right) == body + right
    wrong = f"{(int(right) + 1) % 100:02d}"
    with pytest.raises(InvalidInput, match="check digit does not match"):
        FIBRA.reference(body + wrong)
    # A typo in the body is caught by the same digits.
    with pytest.raises(InvalidInput, match="check digit does not match"):
        FIBRA.reference("MZ99920002" + right)


def test_tvcabo_takes_any_digits_without_a_check() -> None:
    for typed in ("0000", "9991", "1234567890", "99940001"):
        assert TVCABO.reference(typed) == typed


@pytest.mark.parametrize("biller", list(BILLERS.values()), ids=list(BILLERS))
@pytest.mark.parametrize("typed", ["", "   ", " - - ", "\t\n"])
def test_no_reference_at_all_is_asked_for(biller: Biller, typed: str) -> None:
    with pytest.raises(InvalidInput, match=f"give your {biller.name} reference"):
        biller.reference(typed)


def test_a_reference_longer_than_the_maximum_is_refused_whatever_the_pattern() -> None:
    loose = custom(r"[0-9]+", CheckDigit.NONE)
    assert loose.reference("1" * REFERENCE_MAX) == "1" * REFERENCE_MAX
    with pytest.raises(InvalidInput, match="is not a"):
        loose.reference("1" * (REFERENCE_MAX + 1))


def test_the_error_names_what_was_typed() -> None:
    with pytest.raises(InvalidInput) as wrong:
        AGUAS.reference(" 1234 5675 ")
    assert "'1234 5675'" in wrong.value.message


def test_non_ascii_digits_are_refused_or_made_ascii() -> None:
    word = custom(r"\w{8}", CheckDigit.LUHN)
    with pytest.raises(InvalidInput):
        word.reference("1234567²")
    digits = custom(r"\d{8}", CheckDigit.LUHN)
    try:
        cleaned = digits.reference("١٢٣٤٥٦٧٤")  # 12345674 in Arabic-Indic digits
    except InvalidInput:
        return
    assert cleaned.isascii(), cleaned


# --- amounts -------------------------------------------------------------------------------------
@pytest.mark.parametrize("biller", list(BILLERS.values()), ids=list(BILLERS))
def test_amount_bounds_are_inclusive(biller: Biller) -> None:
    biller.check_amount(Money(biller.min_minor, "USD"))
    biller.check_amount(Money(biller.max_minor, "USD"))
    for outside in (biller.min_minor - 1, biller.max_minor + 1):
        with pytest.raises(InvalidInput, match=f"{biller.name} takes"):
            biller.check_amount(Money(outside, "USD"))


def test_the_amount_error_names_the_bounds() -> None:
    with pytest.raises(InvalidInput) as low:
        EDM.check_amount(Money(999, "USD"))
    assert low.value.message == "EDM Credelec takes 10.00 USD to 10,000.00 USD"


def test_an_amount_in_another_currency_is_refused() -> None:
    with pytest.raises(InvalidInput, match="TVCabo is paid in USD"):
        TVCABO.check_amount(Money(500, "EUR"))
    with pytest.raises(InvalidInput, match="paid in USD"):
        AGUAS.check_amount(Money(500, "JPY"))


# --- a new biller's id and pattern ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "cleaned"),
    [
        ("aguas-beira", "aguas-beira"),
        ("  EDM-2 ", "edm-2"),
        ("ab", "ab"),
        ("0x", "0x"),
        ("a" * 32, "a" * 32),
        ("Net-Fibra", "net-fibra"),
    ],
)
def test_a_biller_id_is_lower_cased_and_stripped(typed: str, cleaned: str) -> None:
    assert check_biller_id(typed) == cleaned


@pytest.mark.parametrize(
    "typed",
    ["", "a", "a" * 33, "-ab", "ab_c", "ab c", "águas", "ab.c", "ab/c", "   ", "ab\nc"],
)
def test_a_bad_biller_id_is_refused(typed: str) -> None:
    with pytest.raises(InvalidInput, match="2-32 lower-case letters, digits and dashes"):
        check_biller_id(typed)


@pytest.mark.parametrize("pattern", [r"[0-9]{6,20}", r"MZ[0-9A-Z]{8,22}", r"(A|B)\d+", "."])
def test_a_pattern_that_compiles_is_kept_as_given(pattern: str) -> None:
    assert check_pattern(pattern) == pattern


@pytest.mark.parametrize("pattern", ["[0-9", "(ab", "a{2,1}", "*a", "(?P<x>a)(?P<x>b)"])
def test_a_pattern_that_does_not_compile_is_refused(pattern: str) -> None:
    with pytest.raises(InvalidInput, match="not a regular expression"):
        check_pattern(pattern)
