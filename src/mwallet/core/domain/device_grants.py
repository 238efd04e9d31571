"""The OAuth 2.0 device authorization grant (RFC 8628): how a device with no browser (the CLI on
a server's API) gets a person's tokens without ever seeing their password.

The device asks for a grant and shows its short `user_code`; the person types that code, with
their phone and password, into the verification page; the device meanwhile polls with its secret
`device_code` (kept only as a SHA-256 digest) and gets the tokens once, after approval.

States: pending -> approved | denied (by the person) -> consumed (the tokens were handed out, once).
A grant expires `LIFETIME` after it was asked for. A device polling faster than `interval` is told
to `slow_down`, and its interval grows by 5 seconds (RFC 8628 §3.5).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from mwallet.core.errors import InvalidInput

LIFETIME = timedelta(minutes=10)
INTERVAL_SECONDS = 5
SLOW_DOWN_SECONDS = 5  # RFC 8628 §3.5: added to the interval each time
# RFC 8628 §6.1: consonants only (no vowels: no words; no look-alikes), 8 of them: 20^8 ~ 2^34.5,
# and the verification page is rate limited like the login.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8


class GrantState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    CONSUMED = "consumed"


class Verdict(StrEnum):
    """What a poll gets: the tokens (`issue`) or one of RFC 8628 §3.5's errors."""

    ISSUE = "issue"
    AUTHORIZATION_PENDING = "authorization_pending"
    SLOW_DOWN = "slow_down"
    ACCESS_DENIED = "access_denied"
    EXPIRED_TOKEN = "expired_token"  # noqa: S105 - RFC 8628's error name, not a secret
    USED = "used"  # consumed before: the device code is spent


@dataclass(frozen=True, slots=True)
class DeviceGrant:
    id: str
    user_code: str  # normalized: USER_CODE_LENGTH letters of the alphabet, no dash
    state: GrantState
    created_at: datetime
    expires_at: datetime
    interval: int  # seconds the device must wait between polls
    last_polled_at: datetime | None = None
    user_id: str | None = None  # who approved (or denied) it

    def expired_at(self, now: datetime) -> bool:
        return now >= self.expires_at

    def polled(self, now: datetime) -> tuple[DeviceGrant, Verdict]:
        """A poll at `now`: the grant as it is to be kept, and the answer."""
        if self.state is GrantState.CONSUMED:
            return self, Verdict.USED
        if self.expired_at(now):
            return self, Verdict.EXPIRED_TOKEN
        too_soon = self.last_polled_at is not None and now - self.last_polled_at < timedelta(
            seconds=self.interval
        )
        kept = replace(self, last_polled_at=now)
        if too_soon:
            return replace(kept, interval=self.interval + SLOW_DOWN_SECONDS), Verdict.SLOW_DOWN
        if self.state is GrantState.DENIED:
            return kept, Verdict.ACCESS_DENIED
        if self.state is GrantState.APPROVED:
            return replace(kept, state=GrantState.CONSUMED), Verdict.ISSUE
        return kept, Verdict.AUTHORIZATION_PENDING

    def decided(self, now: datetime, *, user_id: str, approve: bool) -> DeviceGrant:
        """The person's answer on the verification page; only a pending, live grant takes one."""
        if self.state is not GrantState.PENDING or self.expired_at(now):
            raise InvalidInput("that code has expired or was used: ask the device for a new one")
        return replace(
            self, state=GrantState.APPROVED if approve else GrantState.DENIED, user_id=user_id
        )


def new_user_code() -> str:
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def new_device_code() -> str:
    return secrets.token_urlsafe(32)


def format_user_code(code: str) -> str:
    """As people read it: BCDF-GHJK."""
    half = USER_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def parse_user_code(text: str) -> str:
    """A user code as typed: any case, dashes and spaces ignored."""
    cleaned = "".join(ch for ch in text.upper() if ch not in " -")
    if len(cleaned) != USER_CODE_LENGTH or any(ch not in USER_CODE_ALPHABET for ch in cleaned):
        raise InvalidInput("that is not a device code: 8 letters, like BCDF-GHJK")
    return cleaned
