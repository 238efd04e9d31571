"""Idempotency keys and request fingerprints, transfer notes, and time-ordered ids."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mwallet.core.domain.ids import _count_up, new_id
from mwallet.core.domain.transfers import (
    MAX_NOTE_LENGTH,
    IdempotencyRecord,
    Refusal,
    check_idempotency_key,
    check_note,
    request_fingerprint,
)
from mwallet.core.errors import (
    Category,
    IdempotencyKeyReused,
    InsufficientFunds,
    InvalidAmount,
    InvalidIdempotencyKey,
    InvalidInput,
    InvalidSecondFactor,
    LimitReached,
    PermissionDenied,
    Refused,
    SecondFactorRequired,
    StorageUnavailable,
    UnknownRecipient,
    WalletError,
    WithdrawalLimitReached,
    error_named,
)

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WHEN = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)


# --- idempotency keys ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key",
    [
        "a",
        "0",
        "send-2026-01-15T09:30",
        "abc.DEF_123:xyz-9",
        "k" * 128,
        uuid.UUID(int=0x0123456789ABCDEF).hex,
        str(uuid.UUID(int=0x0123456789ABCDEF)),
    ],
)
def test_valid_idempotency_keys_are_kept_as_they_are(key: str) -> None:
    assert check_idempotency_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "k" * 129,
        "has space",
        " leading",
        "trailing\n",
        "tab\tinside",
        "slash/inside",
        "quote'",
        "semi;colon",
        "clé",  # non-ASCII letters
        "\u0661\u0662",  # non-ASCII digits
        "\x00",
    ],
)
def test_invalid_idempotency_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidIdempotencyKey) as caught:
        check_idempotency_key(key)
    assert caught.value.code == "invalid_idempotency_key"
    assert caught.value.category is Category.INVALID_INPUT


# --- request fingerprints ------------------------------------------------------------------------
def test_a_fingerprint_is_a_sha256_of_canonical_json() -> None:
    # Fingerprints are stored: the canonical form must not change between runs or releases.
    canonical = '{"amount":1250,"currency":"USD","note":null,"op":"transfer","to":"+258841234567"}'
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert (
        request_fingerprint("transfer", to="+258841234567", amount=1250, currency="USD", note=None)
        == expected
    )


def test_a_fingerprint_does_not_depend_on_the_order_of_fields() -> None:
    a = request_fingerprint("topup", source="sandbox", amount=100, currency="USD")
    b = request_fingerprint("topup", currency="USD", amount=100, source="sandbox")
    assert a == b
    assert len(a) == 64
    assert set(a) <= set("0123456789abcdef")


BASE_FIELDS: dict[str, str | int | None] = {
    "to": "+258841234567",
    "amount": 1250,
    "currency": "USD",
    "note": None,
}


@pytest.mark.parametrize(
    ("operation", "changes"),
    [
        ("topup", {}),
        ("transfer", {"to": "+258841234568"}),
        ("transfer", {"amount": 1251}),
        ("transfer", {"amount": "1250"}),  # a number and its text are different requests
        ("transfer", {"currency": "EUR"}),
        ("transfer", {"note": "lunch"}),
        ("transfer", {"note": ""}),
        ("transfer", {"extra": None}),
    ],
)
def test_a_fingerprint_changes_with_every_part_of_the_request(
    operation: str, changes: dict[str, str | int | None]
) -> None:
    base = request_fingerprint("transfer", **BASE_FIELDS)
    assert request_fingerprint(operation, **{**BASE_FIELDS, **changes}) != base


def test_a_missing_field_differs_from_a_null_one() -> None:
    assert request_fingerprint("transfer", note=None) != request_fingerprint("transfer")


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda k: k != "op"),
        st.one_of(st.none(), st.integers(), st.text(max_size=10)),
        max_size=5,
    ),
    st.text(max_size=12),
)
def test_fingerprints_are_deterministic(
    fields: dict[str, str | int | None], operation: str
) -> None:
    assert request_fingerprint(operation, **fields) == request_fingerprint(
        operation, **dict(reversed(list(fields.items())))
    )


# --- replays -------------------------------------------------------------------------------------
def test_a_replay_of_the_same_request_returns_the_first_result() -> None:
    fingerprint = request_fingerprint("transfer", **BASE_FIELDS)
    record = IdempotencyRecord("transfer", fingerprint, "01KF0000000000000000000000")
    assert record.check_replay("transfer", fingerprint) == "01KF0000000000000000000000"


@pytest.mark.parametrize(
    ("operation", "fields"),
    [
        ("topup", BASE_FIELDS),
        ("transfer", {**BASE_FIELDS, "amount": 1}),
        ("transfer", {**BASE_FIELDS, "to": "+258841234568"}),
    ],
)
def test_a_key_reused_for_another_request_is_refused(
    operation: str, fields: dict[str, str | int | None]
) -> None:
    record = IdempotencyRecord(
        "transfer", request_fingerprint("transfer", **BASE_FIELDS), "01KF0000000000000000000000"
    )
    with pytest.raises(IdempotencyKeyReused) as caught:
        record.check_replay(operation, request_fingerprint(operation, **fields))
    assert caught.value.category is Category.REFUSED


def test_a_replay_of_a_refused_request_raises_the_same_refusal() -> None:
    fingerprint = request_fingerprint("transfer", **BASE_FIELDS)
    refusal = Refusal("insufficient_funds", "insufficient funds: your wallet has 1.00 USD")
    record = IdempotencyRecord("transfer", fingerprint, "01KF0000000000000000000000", refusal)
    with pytest.raises(InsufficientFunds, match=r"^insufficient funds: your wallet has 1\.00 USD$"):
        record.check_replay("transfer", fingerprint)
    # Another request under the key is still told so, not given the refusal.
    with pytest.raises(IdempotencyKeyReused):
        record.check_replay("topup", fingerprint)


@pytest.mark.parametrize(
    "error",
    [
        InsufficientFunds("short"),
        UnknownRecipient("who"),
        LimitReached("daily"),
        WithdrawalLimitReached("monthly"),
    ],
    ids=lambda error: error.code,
)
def test_refusals_of_the_books_are_kept_and_come_back_the_same(error: WalletError) -> None:
    kept = Refusal.kept_from(error)
    assert kept == Refusal(error.code, error.message)
    again = error_named(kept.code, kept.message)
    assert (type(again), again.message, again.category) == (
        type(error), error.message, error.category,
    )  # fmt: skip


@pytest.mark.parametrize(
    "error",
    [
        IdempotencyKeyReused("another request"),
        InvalidAmount("zero"),
        InvalidInput("bad"),
        SecondFactorRequired("code?"),
        InvalidSecondFactor("wrong code"),
        PermissionDenied("not yours"),
        StorageUnavailable("down"),
    ],
    ids=lambda error: error.code,
)
def test_what_the_caller_can_put_right_or_the_systems_fault_is_not_kept(
    error: WalletError,
) -> None:
    assert Refusal.kept_from(error) is None


def test_a_long_refusal_message_is_kept_cut_short() -> None:
    kept = Refusal.kept_from(InsufficientFunds("x" * 1000))
    assert kept is not None
    assert len(kept.message) == 400


def test_every_error_code_names_its_own_class() -> None:
    def every(kind: type[WalletError]) -> list[type[WalletError]]:
        return [kind] + [one for sub in kind.__subclasses__() for one in every(sub)]

    own = [kind for kind in every(WalletError) if "code" in vars(kind)]  # not inherited
    assert len({kind.code for kind in own}) == len(own)
    for kind in own:
        assert type(error_named(kind.code, "m")) is kind, kind
    unknown = error_named("refused_by_a_rule_since_removed", "no")
    assert isinstance(unknown, Refused)
    assert (unknown.code, unknown.message) == ("refused_by_a_rule_since_removed", "no")


# --- notes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("note", "cleaned"),
    [
        (None, None),
        ("", None),
        ("  \t\n ", None),
        ("lunch", "lunch"),
        ("  rent   for\tMarch \n", "rent for March"),
        ("almoço 🍲", "almoço 🍲"),
        ("n" * MAX_NOTE_LENGTH, "n" * MAX_NOTE_LENGTH),
        ("a" + " " * 300 + "b", "a b"),
    ],
)
def test_notes_are_tidied_or_left_out(note: str | None, cleaned: str | None) -> None:
    assert check_note(note) == cleaned


@pytest.mark.parametrize(
    "note",
    [
        "n" * (MAX_NOTE_LENGTH + 1),
        "rent\x00",
        "\x1b[2Jcleared your screen",  # a terminal escape sequence
        "pay\u202etneR",  # right-to-left override
        "\u200b",
    ],
)
def test_bad_notes_are_refused(note: str) -> None:
    with pytest.raises(InvalidInput):
        check_note(note)


# --- ids -----------------------------------------------------------------------------------------
def _millis_in(identifier: str) -> int:
    value = 0
    for char in identifier[:10]:
        value = value * 32 + CROCKFORD.index(char)
    return value


def _value_of(identifier: str) -> int:
    value = 0
    for char in identifier:
        value = value * 32 + CROCKFORD.index(char)
    return value


def _time_digits(millis: int) -> str:
    return "".join(CROCKFORD[(millis >> shift) & 31] for shift in range(45, -1, -5))


def test_an_id_is_26_crockford_characters() -> None:
    identifier = new_id(WHEN)
    assert len(identifier) == 26
    assert set(identifier) <= set(CROCKFORD)
    # 128 bits in 130: the first character carries the top 3 bits only.
    assert identifier[0] in "01234567"


def test_ids_made_at_the_same_instant_differ() -> None:
    assert len({new_id(WHEN) for _ in range(1000)}) == 1000


def test_ids_made_at_the_same_instant_sort_in_the_order_they_were_made() -> None:
    # The clock stands still (a fixed clock, or one fast transfer): each id counts up from the last.
    ids = [new_id(WHEN) for _ in range(2000)]
    assert ids == sorted(ids)
    assert {_millis_in(identifier) for identifier in ids} == {_millis_in(new_id(WHEN))}


@pytest.mark.parametrize(
    ("random", "after"),
    [
        ("0000000000000000", "0000000000000001"),
        ("000000000000000Z", "0000000000000010"),
        ("7H9ZZZZZZZZZZZZZ", "7HA0000000000000"),
        ("ZZZZZZZZZZZZZZZZ", None),  # the largest random part: the millisecond carries
    ],
)
def test_counting_up_adds_one_to_the_whole_id(random: str, after: str | None) -> None:
    millis, counted = _count_up(1234, random)
    assert (millis, counted) == ((1234, after) if after else (1235, "0" * 16))
    assert _value_of(_time_digits(millis) + counted) == (_value_of(_time_digits(1234) + random) + 1)


def test_crockford_characters_sort_like_their_values() -> None:
    assert sorted(CROCKFORD) == list(CROCKFORD)


# The years a wallet runs in; far beyond them a float timestamp loses the millisecond.
utc_datetimes = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@given(utc_datetimes)
def test_an_id_carries_its_millisecond(when: datetime) -> None:
    identifier = new_id(when)
    assert len(identifier) == 26
    assert _millis_in(identifier) == (when - EPOCH) // timedelta(milliseconds=1)


@given(
    utc_datetimes,
    st.timedeltas(min_value=timedelta(milliseconds=1), max_value=timedelta(days=3650)),
)
def test_later_ids_sort_after_earlier_ones(when: datetime, later_by: timedelta) -> None:
    # At least a millisecond apart: the later id sorts after the earlier one, whatever its random
    # part.
    assert new_id(when) < new_id(when + later_by)


def test_ids_of_consecutive_milliseconds_sort_in_time_order() -> None:
    instants = [WHEN + timedelta(milliseconds=n) for n in range(2000)]
    ids = [new_id(instant) for instant in instants]
    assert ids == sorted(ids)
