"""The device authorization grant's rules (RFC 8628), on the domain object alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mwallet.core.domain.device_grants import (
    INTERVAL_SECONDS,
    LIFETIME,
    USER_CODE_ALPHABET,
    DeviceGrant,
    GrantState,
    Verdict,
    format_user_code,
    new_device_code,
    new_user_code,
    parse_user_code,
)
from mwallet.core.errors import InvalidInput

START = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
WAIT = timedelta(seconds=INTERVAL_SECONDS)


def grant(state: GrantState = GrantState.PENDING) -> DeviceGrant:
    return DeviceGrant("g1", "BCDFGHJK", state, START, START + LIFETIME, INTERVAL_SECONDS)


def test_a_pending_grant_says_pending_and_remembers_the_poll() -> None:
    kept, verdict = grant().polled(START + WAIT)
    assert verdict is Verdict.AUTHORIZATION_PENDING
    assert kept.last_polled_at == START + WAIT
    assert kept.state is GrantState.PENDING


def test_polling_sooner_than_the_interval_slows_the_device_down_for_good() -> None:
    first, _ = grant().polled(START + WAIT)
    hasty, verdict = first.polled(START + WAIT + timedelta(seconds=1))
    assert verdict is Verdict.SLOW_DOWN
    assert hasty.interval == INTERVAL_SECONDS + 5
    # The new interval counts from the hasty poll: the old one is no longer enough.
    again, verdict = hasty.polled(START + WAIT * 2 + timedelta(seconds=1))
    assert verdict is Verdict.SLOW_DOWN
    assert again.interval == INTERVAL_SECONDS + 10
    last = again.last_polled_at
    assert last is not None
    _, verdict = again.polled(last + timedelta(seconds=again.interval))
    assert verdict is Verdict.AUTHORIZATION_PENDING


def test_an_approved_grant_issues_once_then_is_spent() -> None:
    approved = grant().decided(START + WAIT, user_id="u1", approve=True)
    assert (approved.state, approved.user_id) == (GrantState.APPROVED, "u1")
    consumed, verdict = approved.polled(START + WAIT)
    assert verdict is Verdict.ISSUE
    assert consumed.state is GrantState.CONSUMED
    assert consumed.polled(START + WAIT * 3)[1] is Verdict.USED
    assert consumed.polled(START + LIFETIME * 2)[1] is Verdict.USED


def test_a_denied_grant_says_access_denied() -> None:
    denied = grant().decided(START, user_id="u1", approve=False)
    assert denied.state is GrantState.DENIED
    assert denied.polled(START + WAIT)[1] is Verdict.ACCESS_DENIED


def test_an_expired_grant_says_expired_and_takes_no_answer() -> None:
    old = grant()
    assert old.polled(START + LIFETIME)[1] is Verdict.EXPIRED_TOKEN
    approved_late = grant(GrantState.APPROVED)
    assert approved_late.polled(START + LIFETIME)[1] is Verdict.EXPIRED_TOKEN
    with pytest.raises(InvalidInput, match="expired"):
        old.decided(START + LIFETIME, user_id="u1", approve=True)


@pytest.mark.parametrize("state", [GrantState.APPROVED, GrantState.DENIED, GrantState.CONSUMED])
def test_only_a_pending_grant_takes_an_answer(state: GrantState) -> None:
    with pytest.raises(InvalidInput):
        grant(state).decided(START, user_id="u2", approve=True)


def test_user_codes_are_short_unambiguous_and_typed_loosely() -> None:
    codes = {new_user_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert len(code) == 8
        assert set(code) <= set(USER_CODE_ALPHABET)
        assert not set(code) & set("AEIOUY01")  # no vowels (no words), no look-alike digits
        shown = format_user_code(code)
        assert shown == f"{code[:4]}-{code[4:]}"
        assert parse_user_code(shown.lower()) == code
        assert parse_user_code(f" {code[:4]} {code[4:]} ") == code
    for bad in ("", "BCDF-GHJ", "BCDF-GHJKL", "BCDF-GHJA", "BCDF-GHJ0"):
        with pytest.raises(InvalidInput, match="8 letters"):
            parse_user_code(bad)


def test_device_codes_are_long_secrets() -> None:
    codes = {new_device_code() for _ in range(50)}
    assert len(codes) == 50
    assert all(len(code) >= 43 for code in codes)  # 32 random bytes
