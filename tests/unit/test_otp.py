"""Two-factor codes: RFC 6238 TOTP, ±1 step of drift, no replay; single-use recovery codes."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from mwallet.core import otp

# RFC 6238 appendix B: the SHA-1 seed is the ASCII string "12345678901234567890".
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]
NOW = datetime(2026, 1, 15, 9, 30, 10, tzinfo=UTC)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
STEP = otp.time_step(NOW)
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


def code(step_offset: int = 0) -> str:
    return otp.code_at_step(SECRET, STEP + step_offset)


# --- RFC 6238 ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("unix_time", "rfc_code"), RFC_VECTORS)
def test_rfc_6238_sha1_vectors(unix_time: int, rfc_code: str) -> None:
    at = datetime.fromtimestamp(unix_time, UTC)
    step = otp.time_step(at)
    assert step == unix_time // 30
    assert otp.code_at_step(RFC_SECRET, step) == rfc_code[-6:]
    assert otp.matching_step(RFC_SECRET, rfc_code[-6:], now=at, after_step=None) == step


def test_codes_are_six_digits_and_change_with_the_step() -> None:
    codes = [otp.code_at_step(SECRET, step) for step in range(STEP, STEP + 20)]
    assert all(re.fullmatch(r"[0-9]{6}", value) for value in codes)
    assert len(set(codes)) > 15


def test_a_step_is_thirty_seconds() -> None:
    start = datetime.fromtimestamp(STEP * 30, UTC)
    assert otp.time_step(start) == STEP
    assert otp.time_step(start + timedelta(seconds=29, microseconds=999_999)) == STEP
    assert otp.time_step(start + timedelta(seconds=30)) == STEP + 1


# --- secrets -------------------------------------------------------------------------------------
def test_a_new_secret_has_at_least_160_bits_and_differs_each_time() -> None:
    secrets = [otp.new_secret() for _ in range(20)]
    assert len(set(secrets)) == 20
    for secret in secrets:
        assert re.fullmatch(r"[A-Z2-7]+=*", secret)
        assert len(base64.b32decode(secret)) >= 20
    assert otp.SECRET_BITS >= 160


def test_a_new_secret_makes_codes() -> None:
    secret = otp.new_secret()
    assert re.fullmatch(r"[0-9]{6}", otp.code_at_step(secret, STEP))


# --- matching a typed code -----------------------------------------------------------------------
@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_the_current_step_and_one_either_side_are_accepted(offset: int) -> None:
    assert otp.matching_step(SECRET, code(offset), now=NOW, after_step=None) == STEP + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_steps_further_away_are_refused(offset: int) -> None:
    assert code(offset) not in {code(-1), code(0), code(1)}  # the test means what it says
    assert otp.matching_step(SECRET, code(offset), now=NOW, after_step=None) is None


def test_a_code_for_a_step_already_used_is_refused() -> None:
    assert otp.matching_step(SECRET, code(0), now=NOW, after_step=STEP) is None
    assert otp.matching_step(SECRET, code(-1), now=NOW, after_step=STEP) is None
    assert otp.matching_step(SECRET, code(0), now=NOW, after_step=STEP + 1) is None
    assert otp.matching_step(SECRET, code(1), now=NOW, after_step=STEP + 1) is None


def test_a_later_step_than_the_last_used_is_accepted() -> None:
    assert otp.matching_step(SECRET, code(0), now=NOW, after_step=STEP - 1) == STEP
    assert otp.matching_step(SECRET, code(1), now=NOW, after_step=STEP) == STEP + 1


def test_a_code_cannot_be_replayed_once_accepted() -> None:
    used = otp.matching_step(SECRET, code(0), now=NOW, after_step=None)
    assert used == STEP
    later = NOW + timedelta(seconds=20)  # still within the drift window of that step
    assert otp.matching_step(SECRET, code(0), now=later, after_step=used) is None


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param(lambda c: f" {c} ", id="padded"),
        pytest.param(lambda c: f"{c[:3]} {c[3:]}", id="grouped"),
        pytest.param(lambda c: f"{c[:2]} {c[2:4]} {c[4:]}", id="pairs"),
    ],
)
def test_spaces_around_and_inside_a_code_are_ignored(typed: Callable[[str], str]) -> None:
    assert otp.matching_step(SECRET, typed(code()), now=NOW, after_step=None) == STEP


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param(lambda c: "", id="empty"),
        pytest.param(lambda c: "      ", id="blank"),
        pytest.param(lambda c: c[:-1], id="too-short"),
        pytest.param(lambda c: c + "0", id="too-long"),
        pytest.param(lambda c: "0" + c, id="leading-zero"),
        pytest.param(lambda c: c[:-1] + "a", id="letter"),
        pytest.param(lambda c: c[:3] + "-" + c[3:], id="dash"),
        pytest.param(lambda c: "+" + c[1:], id="sign"),
        pytest.param(lambda c: c.translate(ARABIC_INDIC), id="arabic-indic"),
        pytest.param(lambda c: c.translate(FULLWIDTH), id="fullwidth"),
        pytest.param(lambda c: c[:-1] + c[-1].translate(ARABIC_INDIC), id="one-unicode-digit"),
        pytest.param(lambda c: "\u0661\u0662\u0663\u0664\u0665\u0666", id="arabic-literal"),
        pytest.param(lambda c: c[:3] + "\u200b" + c[3:], id="zero-width-space"),
    ],
)
def test_anything_but_six_ascii_digits_is_refused(typed: Callable[[str], str]) -> None:
    assert otp.matching_step(SECRET, typed(code()), now=NOW, after_step=None) is None


def test_another_secrets_code_is_refused() -> None:
    other = otp.code_at_step(RFC_SECRET, STEP)
    assert other not in {code(-1), code(0), code(1)}
    assert otp.matching_step(SECRET, other, now=NOW, after_step=None) is None


# --- provisioning --------------------------------------------------------------------------------
@pytest.mark.parametrize("account", ["+258841234567", "alice@example.com", "Ana Maria"])
def test_the_provisioning_uri_is_an_otpauth_totp_uri(account: str) -> None:
    uri = otp.provisioning_uri(SECRET, account=account)
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth"
    assert parts.netloc == "totp"
    assert unquote(parts.path) == f"/mwallet:{account}"
    query = parse_qs(parts.query)
    assert query["secret"] == [SECRET]
    assert query["issuer"] == ["mwallet"]
    assert query.get("digits", ["6"]) == ["6"]
    assert query.get("period", ["30"]) == ["30"]
    assert query.get("algorithm", ["SHA1"]) == ["SHA1"]


# --- recovery codes ------------------------------------------------------------------------------
RECOVERY_FORMAT = re.compile(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}")


def test_ten_unique_recovery_codes_in_groups_of_four() -> None:
    codes = otp.new_recovery_codes()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    for value in codes:
        assert RECOVERY_FORMAT.fullmatch(value), value
        assert not set(value) & set("01oil"), value  # no symbols easy to misread


def test_recovery_codes_differ_between_calls() -> None:
    assert set(otp.new_recovery_codes()).isdisjoint(otp.new_recovery_codes())


@pytest.mark.parametrize(
    "typed",
    ["k7qm-x2ta-9hfw", "K7QM-X2TA-9HFW", "k7qmx2ta9hfw", " k7qm x2ta 9hfw ", "K7qm-X2ta 9hfW"],
)
def test_the_recovery_digest_ignores_case_dashes_and_spaces(typed: str) -> None:
    assert otp.recovery_digest(typed) == otp.recovery_digest("k7qm-x2ta-9hfw")


def test_different_recovery_codes_have_different_digests() -> None:
    codes = otp.new_recovery_codes()
    digests = {otp.recovery_digest(value) for value in codes}
    assert len(digests) == 10
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in digests)
    assert otp.recovery_digest("k7qm-x2ta-9hfw") != otp.recovery_digest("k7qm-x2ta-9hfx")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("k7qm-x2ta-9hfw", True),
        ("K7QM X2TA 9HFW", True),
        ("k7qmx2ta9hfw", True),
        ("123456", False),
        ("123 456", False),
        ("", False),
        ("k7qm-x2ta-9hf", False),
        ("k7qm-x2ta-9hfwz", False),
    ],
)
def test_looks_like_recovery_code(text: str, expected: bool) -> None:
    assert otp.looks_like_recovery_code(text) is expected


def test_every_new_recovery_code_looks_like_one() -> None:
    assert all(otp.looks_like_recovery_code(value) for value in otp.new_recovery_codes())
