"""Cash withdrawals' rules: dispense plans, codes and PINs, their keyed digests, terminal lockout,
expiry, and the signed QR payload."""

from __future__ import annotations

import base64
import itertools
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mwallet.core import tokens, withdrawal_qr
from mwallet.core.domain.money import Money
from mwallet.core.domain.terminals import Terminal
from mwallet.core.domain.withdrawals import (
    DEFAULT_LIFETIME,
    TERMINAL_LOCK,
    TERMINAL_MAX_UNKNOWN_CODES,
    TERMINAL_WINDOW,
    Channel,
    Withdrawal,
    WithdrawalState,
    check_chosen_pin,
    code_digest,
    dispense_plan,
    format_code,
    new_code,
    new_pin,
    nonce_digest,
    parse_code,
    parse_pin,
    pin_digest,
)
from mwallet.core.errors import InvalidInput
from mwallet.core.withdrawal_qr import InvalidQr, QrClaims

NOW = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)


# --- dispense plans ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("amount", "cassettes", "plan"),
    [
        (60, {50: 10, 20: 10}, {20: 3}),  # greedy (50 first) would fail
        (110, {50: 10, 20: 10}, {50: 1, 20: 3}),
        (100, {50: 10, 20: 10}, {50: 2}),
        (80, {50: 10, 20: 10, 10: 10}, {50: 1, 20: 1, 10: 1}),
        (40, {50: 10, 20: 10}, {20: 2}),
        (50, {50: 1}, {50: 1}),
        (130, {50: 1, 20: 10}, {50: 1, 20: 4}),  # only one 50 loaded
        (6000, {5000: 10, 2000: 10}, {2000: 3}),  # minor units, as the service calls it
    ],
)
def test_dispense_plan_finds_the_fewest_notes(
    amount: int, cassettes: dict[int, int], plan: dict[int, int]
) -> None:
    assert dispense_plan(amount, cassettes) == plan


def test_dispense_plan_lists_denominations_largest_first() -> None:
    assert list(dispense_plan(110, {20: 10, 50: 10}) or {}) == [50, 20]


@pytest.mark.parametrize(
    ("amount", "cassettes"),
    [
        (60, {50: 10, 20: 2}),  # 3 x 20 needed, only 2 loaded
        (100, {50: 1, 20: 2}),  # 50 + 2 x 20 = 90; 5 x 20 not loaded
        (30, {50: 10, 20: 10}),  # not reachable
        (10, {50: 10, 20: 10}),  # below the smallest note
        (25, {50: 10, 20: 10}),  # not a multiple of the gcd (10)
        (1001, {500: 100, 200: 100, 100: 100}),  # not a multiple of the gcd (100)
        (500, {50: 9}),  # 10 x 50 needed
    ],
)
def test_dispense_plan_is_none_when_no_notes_make_the_amount(
    amount: int, cassettes: dict[int, int]
) -> None:
    assert dispense_plan(amount, cassettes) is None


@pytest.mark.parametrize("amount", [0, -20, -60])
def test_dispense_plan_refuses_zero_and_negative_amounts(amount: int) -> None:
    assert dispense_plan(amount, {50: 10, 20: 10}) is None


@pytest.mark.parametrize(
    "cassettes",
    [{}, {50: 0, 20: 0}, {0: 10}, {-20: 10}, {20: -3}],
)
def test_dispense_plan_is_none_without_usable_notes(cassettes: dict[int, int]) -> None:
    assert dispense_plan(60, cassettes) is None


def test_dispense_plan_ignores_empty_and_nonsense_cassettes() -> None:
    assert dispense_plan(60, {50: 0, 20: 3, 0: 5, -10: 5}) == {20: 3}


def test_dispense_plan_handles_a_full_atm_and_the_largest_withdrawal() -> None:
    full = {10_000: 5_000, 5_000: 5_000, 2_000: 5_000, 1_000: 5_000, 100: 5_000}
    assert dispense_plan(99_900, full) == {10_000: 9, 5_000: 1, 2_000: 2, 100: 9}
    assert dispense_plan(100_000, full) == {10_000: 10}


def brute_force_fewest(amount: int, cassettes: dict[int, int]) -> int | None:
    """The fewest notes that make `amount` exactly, by trying every combination."""
    denominations = sorted(cassettes)
    best: int | None = None
    for counts in itertools.product(*(range(cassettes[d] + 1) for d in denominations)):
        if sum(d * n for d, n in zip(denominations, counts, strict=True)) == amount:
            notes = sum(counts)
            best = notes if best is None else min(best, notes)
    return best


@settings(max_examples=300, deadline=None)
@given(
    cassettes=st.dictionaries(
        st.sampled_from([5, 10, 20, 25, 50, 100, 200]), st.integers(0, 5), min_size=1, max_size=4
    ),
    amount=st.integers(-10, 1200),
)
def test_dispense_plan_agrees_with_brute_force(cassettes: dict[int, int], amount: int) -> None:
    plan = dispense_plan(amount, cassettes)
    fewest = brute_force_fewest(amount, cassettes) if amount > 0 else None
    if fewest is None:
        assert plan is None
        return
    assert plan is not None
    assert sum(d * n for d, n in plan.items()) == amount
    assert all(n > 0 and n <= cassettes.get(d, 0) for d, n in plan.items())
    assert sum(plan.values()) == fewest


# --- codes and PINs ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("0123456789", "0123456789"),
        ("  0123456789 ", "0123456789"),
        ("0123 456 789", "0123456789"),
        ("0123-456-789", "0123456789"),
        ("01 23-45 67-89", "0123456789"),
    ],
)
def test_parse_code_ignores_spaces_and_dashes(text: str, code: str) -> None:
    assert parse_code(text) == code


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "012345678",  # 9 digits
        "01234567890",  # 11 digits
        "012345678a",
        "0123.456.789",
        "0123\t456789",
        "+123456789",
        "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669",  # Arabic-Indic digits
        "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19",  # full-width digits
        "01234567\u00b2\u00b3",  # superscripts are digits to str.isdigit
    ],
)
def test_parse_code_wants_exactly_ten_ascii_digits(text: str) -> None:
    with pytest.raises(InvalidInput, match="10 digits"):
        parse_code(text)


def test_format_code_groups_the_digits_and_parses_back() -> None:
    assert format_code("0123456789") == "0123 456 789"
    assert parse_code(format_code("0123456789")) == "0123456789"


@pytest.mark.parametrize(("text", "pin"), [("4729", "4729"), (" 0007 ", "0007")])
def test_parse_pin(text: str, pin: str) -> None:
    assert parse_pin(text) == pin


@pytest.mark.parametrize(
    "text", ["", "472", "47290", "47 29", "47a9", "4-29", "\u0664\u0667\u0662\u0669", "\uff14729"]
)
def test_parse_pin_wants_exactly_four_ascii_digits(text: str) -> None:
    with pytest.raises(InvalidInput, match="4 digits"):
        parse_pin(text)


@pytest.mark.parametrize(
    "pin",
    [*(digit * 4 for digit in "0123456789"), "1234", "4321", "0123", "9876", "1212", "2580"],
)
def test_check_chosen_pin_refuses_pins_guessed_first(pin: str) -> None:
    with pytest.raises(InvalidInput, match="too easy"):
        check_chosen_pin(pin)


@pytest.mark.parametrize("pin", ["4729", "0907", "8531"])
def test_check_chosen_pin_accepts_others(pin: str) -> None:
    assert check_chosen_pin(f" {pin} ") == pin


def test_check_chosen_pin_is_a_pin_first() -> None:
    with pytest.raises(InvalidInput, match="4 digits"):
        check_chosen_pin("47291")


def test_new_codes_are_ten_random_digits() -> None:
    codes = [new_code() for _ in range(300)]
    assert all(re.fullmatch(r"[0-9]{10}", code) for code in codes)
    assert len(set(codes)) == len(codes)
    assert all(parse_code(code) == code for code in codes)


def test_new_pins_are_four_random_digits() -> None:
    pins = [new_pin() for _ in range(300)]
    assert all(re.fullmatch(r"[0-9]{4}", pin) for pin in pins)
    assert len(set(pins)) > 200  # 10,000 possible: nearly all 300 differ
    # The leading digit varies too (zeros are kept, not dropped).
    assert len({pin[0] for pin in pins}) == 10


# --- keyed digests -------------------------------------------------------------------------------
PEPPER = b"p" * 32
OTHER_PEPPER = b"q" * 32


def test_digests_are_sha256_hex_and_repeatable() -> None:
    for digest in (
        code_digest(PEPPER, "0123456789"),
        pin_digest(PEPPER, "W1", "4729"),
        nonce_digest(PEPPER, "n0nce"),
    ):
        assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert code_digest(PEPPER, "0123456789") == code_digest(PEPPER, "0123456789")
    assert pin_digest(PEPPER, "W1", "4729") == pin_digest(PEPPER, "W1", "4729")


def test_digests_differ_by_pepper() -> None:
    assert code_digest(PEPPER, "0123456789") != code_digest(OTHER_PEPPER, "0123456789")
    assert pin_digest(PEPPER, "W1", "4729") != pin_digest(OTHER_PEPPER, "W1", "4729")
    assert nonce_digest(PEPPER, "n0nce") != nonce_digest(OTHER_PEPPER, "n0nce")


def test_a_pin_digest_depends_on_the_withdrawal() -> None:
    # The same PIN on two withdrawals hashes differently: one row's digest says nothing of another.
    assert pin_digest(PEPPER, "W1", "4729") != pin_digest(PEPPER, "W2", "4729")


def test_digests_of_the_same_text_differ_by_purpose() -> None:
    text = "0123456789"
    assert len({code_digest(PEPPER, text), nonce_digest(PEPPER, text)}) == 2
    assert code_digest(PEPPER, "0123456789") != code_digest(PEPPER, "0123456788")
    assert pin_digest(PEPPER, "W1", "4729") != pin_digest(PEPPER, "W1", "4728")


# --- terminals: unknown codes lock them a while --------------------------------------------------
def atm() -> Terminal:
    return Terminal("T1", Channel.ATM, "ATM 1", "C1", None, NOW)


def after(terminal: Terminal, *moments: datetime) -> Terminal:
    for moment in moments:
        terminal = terminal.after_unknown_code(moment)
    return terminal


def test_a_fresh_terminal_is_not_locked() -> None:
    assert not atm().locked_at(NOW)


def test_four_unknown_codes_count_but_do_not_lock() -> None:
    counted = after(atm(), *(NOW + n * MINUTE for n in range(TERMINAL_MAX_UNKNOWN_CODES - 1)))
    assert counted.unknown_codes == 4
    assert counted.window_started_at == NOW
    assert not counted.locked_at(NOW + 3 * MINUTE)


def test_five_unknown_codes_in_ten_minutes_lock_for_fifteen() -> None:
    fifth = NOW + TERMINAL_WINDOW - SECOND
    locked = after(atm(), NOW, NOW + MINUTE, NOW + 2 * MINUTE, NOW + 3 * MINUTE, fifth)
    assert locked.locked_until == fifth + TERMINAL_LOCK
    assert locked.locked_at(fifth)
    assert locked.locked_at(fifth + TERMINAL_LOCK - SECOND)
    assert not locked.locked_at(fifth + TERMINAL_LOCK)
    # The count starts again once the lock is over.
    assert locked.unknown_codes == 0
    assert locked.window_started_at is None
    again = locked.after_unknown_code(fifth + TERMINAL_LOCK)
    assert (again.unknown_codes, again.locked_at(fifth + TERMINAL_LOCK)) == (1, False)


def test_the_lock_is_fifteen_minutes_and_the_window_ten() -> None:
    assert TERMINAL_MAX_UNKNOWN_CODES == 5
    assert timedelta(minutes=10) == TERMINAL_WINDOW
    assert timedelta(minutes=15) == TERMINAL_LOCK


@pytest.mark.parametrize("gap", [TERMINAL_WINDOW, TERMINAL_WINDOW + MINUTE, timedelta(days=1)])
def test_a_window_ten_minutes_old_starts_the_count_again(gap: timedelta) -> None:
    four = after(atm(), *(NOW + n * SECOND for n in range(4)))
    later = NOW + gap
    fifth = four.after_unknown_code(later)
    assert fifth.unknown_codes == 1
    assert fifth.window_started_at == later
    assert not fifth.locked_at(later)


def test_counting_does_not_change_the_terminal_otherwise() -> None:
    counted = atm().after_unknown_code(NOW)
    assert (counted.id, counted.kind, counted.name, counted.client_id) == (
        "T1",
        Channel.ATM,
        "ATM 1",
        "C1",
    )
    assert atm().unknown_codes == 0  # frozen: a new terminal is returned


# --- withdrawals expire --------------------------------------------------------------------------
def withdrawal(state: WithdrawalState = WithdrawalState.PENDING) -> Withdrawal:
    return Withdrawal(
        id="W1",
        user_id="U1",
        amount=Money(6000, "USD"),
        channel=Channel.ATM,
        state=state,
        created_at=NOW,
        expires_at=NOW + DEFAULT_LIFETIME,
        pin_attempts=0,
        terminal_id=None,
        updated_at=NOW,
        fee=Money(50, "USD"),
    )


def test_a_pending_withdrawal_expires_at_its_time() -> None:
    pending = withdrawal()
    assert timedelta(minutes=30) == DEFAULT_LIFETIME
    assert not pending.expired_at(NOW)
    assert not pending.expired_at(pending.expires_at - timedelta(microseconds=1))
    assert pending.expired_at(pending.expires_at)
    assert pending.expired_at(pending.expires_at + timedelta(days=1))


@pytest.mark.parametrize(
    "state", [state for state in WithdrawalState if state is not WithdrawalState.PENDING]
)
def test_only_a_pending_withdrawal_expires(state: WithdrawalState) -> None:
    assert not withdrawal(state).expired_at(NOW + timedelta(days=1))


# --- the QR payload ------------------------------------------------------------------------------
QR_ALPHANUMERIC = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
PRIVATE, PUBLIC = tokens.new_signing_key()
OTHER_PRIVATE, OTHER_PUBLIC = tokens.new_signing_key()
CLAIMS = QrClaims(
    withdrawal_id="01KF0FV2E0YBD1V5CDK3V520DW",
    amount=Money(6000, "USD"),
    expires_at=NOW + DEFAULT_LIFETIME,
    nonce="Zr4-k_9QaB1xYw2c",
    key_id="qabc123",
)


def signed(claims: QrClaims = CLAIMS) -> str:
    return withdrawal_qr.sign(claims, private_key=PRIVATE)


def b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=")


def unb32(text: str) -> bytes:
    return base64.b32decode(text + "=" * (-len(text) % 8))


def split(payload: str) -> tuple[bytes, bytes]:
    body, signature = payload.removeprefix(withdrawal_qr.PREFIX).split(".")
    return unb32(body), unb32(signature)


def test_a_signed_payload_verifies_to_its_claims() -> None:
    payload = signed()
    assert payload.startswith("MW1:")
    assert withdrawal_qr.verify(payload, public_key=PUBLIC) == CLAIMS
    assert withdrawal_qr.verify(payload, public_key=PUBLIC, now=NOW) == CLAIMS
    assert withdrawal_qr.key_id_of(payload) == "qabc123"
    assert withdrawal_qr.looks_like_payload(f"  {payload.lower()} ")


def test_the_payload_uses_only_qr_alphanumeric_characters() -> None:
    for nonce in ("Zr4-k_9QaB1xYw2c", "a_b-c/d+e", "x" * 16):
        payload = signed(QrClaims("W" * 26, Money(100_000, "USD"), NOW, nonce, "qk"))
        assert set(payload) <= QR_ALPHANUMERIC, set(payload) - QR_ALPHANUMERIC
        assert len(payload) <= withdrawal_qr.MAX_LENGTH


def test_surrounding_whitespace_is_ignored() -> None:
    assert withdrawal_qr.verify(f"  {signed()}\n", public_key=PUBLIC) == CLAIMS


def test_altered_claims_are_refused() -> None:
    body, signature = split(signed())
    data = json.loads(body)
    data["a"] = 600_000  # a larger amount, under the original signature
    forged = f"MW1:{b32(json.dumps(data, separators=(',', ':')).encode())}.{b32(signature)}"
    with pytest.raises(InvalidQr):
        withdrawal_qr.verify(forged, public_key=PUBLIC)


def test_an_altered_signature_is_refused() -> None:
    body, signature = split(signed())
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    with pytest.raises(InvalidQr):
        withdrawal_qr.verify(f"MW1:{b32(body)}.{b32(flipped)}", public_key=PUBLIC)


def test_a_payload_signed_with_another_key_is_refused() -> None:
    with pytest.raises(InvalidQr):
        withdrawal_qr.verify(signed(), public_key=OTHER_PUBLIC)
    theirs = withdrawal_qr.sign(CLAIMS, private_key=OTHER_PRIVATE)
    with pytest.raises(InvalidQr):
        withdrawal_qr.verify(theirs, public_key=PUBLIC)


@pytest.mark.parametrize("prefix", ["MW2:", "MW1", "MW:", "XX1:", ""])
def test_a_wrong_prefix_is_refused(prefix: str) -> None:
    payload = prefix + signed().removeprefix("MW1:")
    with pytest.raises(InvalidQr):
        withdrawal_qr.verify(payload, public_key=PUBLIC)
    assert not withdrawal_qr.looks_like_payload(payload)


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "hello",
        "MW1:",
        "MW1:.",
        "MW1:ABC",
        "MW1:ABCDEFGH",
        "MW1:!!!!.????",
        "MW1:ÀÉÎ.ÕÜ",
        "MW1:01234567.89",  # 0, 1, 8 and 9 are not base32
        f"MW1:{b32(b'not json')}.{b32(b'x' * 64)}",
        f"MW1:{b32(b'[1,2]')}.{b32(b'x' * 64)}",
    ],
)
def test_garbage_is_refused(payload: str) -> None:
    with pytest.raises(InvalidQr):
        withdrawal_qr.verify(payload, public_key=PUBLIC)


def test_a_too_long_payload_is_refused_before_it_is_read() -> None:
    body, signature = split(signed())
    padded = f"MW1:{b32(body)}.{b32(signature)}" + "A" * withdrawal_qr.MAX_LENGTH
    with pytest.raises(InvalidQr, match="not a withdrawal QR"):
        withdrawal_qr.verify(padded, public_key=PUBLIC)
    with pytest.raises(InvalidQr):
        withdrawal_qr.key_id_of("MW1:" + "A" * withdrawal_qr.MAX_LENGTH)


def test_an_expired_payload_is_refused_when_now_is_given() -> None:
    payload = signed()
    assert withdrawal_qr.verify(payload, public_key=PUBLIC, now=CLAIMS.expires_at - SECOND)
    with pytest.raises(InvalidQr, match="expired"):
        withdrawal_qr.verify(payload, public_key=PUBLIC, now=CLAIMS.expires_at)
    with pytest.raises(InvalidQr, match="expired"):
        withdrawal_qr.verify(payload, public_key=PUBLIC, now=CLAIMS.expires_at + timedelta(days=1))
    # Without `now` the expiry is left to the wallet, which knows the withdrawal's state.
    assert withdrawal_qr.verify(payload, public_key=PUBLIC) == CLAIMS


@pytest.mark.parametrize(
    "data",
    [
        {"k": "qk"},  # signed, but not a withdrawal
        {"k": "qk", "w": "W1", "a": 1.5, "c": "USD", "e": 1, "n": "n"},
        {"k": "qk", "w": "W1", "a": 100, "c": "XXX", "e": 1, "n": "n"},
        {"k": "qk", "w": "W1", "a": 100, "c": "USD", "e": "soon", "n": "n"},
        {"k": "qk", "w": "W1", "a": 100, "c": "USD", "e": 10**20, "n": "n"},
        {"k": "qk", "w": "W1", "a": 100, "c": "USD", "e": 10**12, "n": "n"},
    ],
)
def test_signed_claims_that_are_not_a_withdrawal_are_refused(data: dict[str, object]) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    body = json.dumps(data).encode()
    signature = Ed25519PrivateKey.from_private_bytes(PRIVATE).sign(b"MW1:" + body)
    with pytest.raises(InvalidQr, match="not a withdrawal"):
        withdrawal_qr.verify(f"MW1:{b32(body)}.{b32(signature)}", public_key=PUBLIC)


def test_a_payload_without_a_key_id_is_refused() -> None:
    with pytest.raises(InvalidQr):
        withdrawal_qr.key_id_of(f"MW1:{b32(json.dumps({'w': 'W1'}).encode())}.{b32(b'x')}")


def test_invalid_qr_is_invalid_input() -> None:
    assert issubclass(InvalidQr, InvalidInput)
    assert InvalidQr.code == "invalid_qr"
