"""A login's tokens: what is kept of them and how long each lives.

A login opens a *family*: one short-lived access token (a signed JWT, checked without asking
anyone but the public key) and one opaque refresh token at a time. Each refresh spends the
refresh token and hands out a new pair in the same family; a spent refresh token presented again
means two holders, so the whole family ends (RFC 9700 §4.14.2: refresh token rotation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

ISSUER = "mwallet"
AUDIENCE = "mwallet"
ACCESS_TOKEN_LIFETIME = timedelta(minutes=15)
REFRESH_TOKEN_LIFETIME = timedelta(days=7)  # unused this long, a login ends
FAMILY_LIFETIME = timedelta(days=30)  # however it is refreshed, a login ends after this


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    access_expires_at: datetime
    refresh_token: str | None  # clients (client-credentials grant) get none
    refresh_expires_at: datetime | None
    family_id: str | None


@dataclass(frozen=True, slots=True)
class TokenFamily:
    id: str
    user_id: str
    expires_at: datetime
    revoked_at: datetime | None

    def live_at(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class RefreshTokenRecord:
    family_id: str
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key_sealed: str
    public_key: bytes
    created_at: datetime
    retired_at: datetime | None

    def verifies_at(self, now: datetime) -> bool:
        """A retired key still verifies the tokens it signed until the last has expired."""
        return self.retired_at is None or now < self.retired_at + ACCESS_TOKEN_LIFETIME


@dataclass(frozen=True, slots=True)
class TwoFactorRecord:
    secret_sealed: str
    confirmed: bool
    last_step: int | None
