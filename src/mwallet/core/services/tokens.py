"""Use cases of tokens: issue a login's tokens, refresh them, end them, and authenticate one.

Access tokens are EdDSA JWTs (`core.tokens`) signed with the newest signing key; the key's
private half is kept sealed with the data key (`core.crypto`). Refresh tokens are opaque and kept
only as SHA-256 digests (`core.domain.sessions` tells their rules).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from mwallet.core import tokens
from mwallet.core.clock import Clock
from mwallet.core.crypto import SecretBox
from mwallet.core.domain.audit import AuditEvent
from mwallet.core.domain.clients import OAuthClient
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.roles import ROLE_PERMISSIONS
from mwallet.core.domain.sessions import (
    ACCESS_TOKEN_LIFETIME,
    AUDIENCE,
    FAMILY_LIFETIME,
    ISSUER,
    REFRESH_TOKEN_LIFETIME,
    SigningKey,
    TokenPair,
)
from mwallet.core.domain.users import Principal, User
from mwallet.core.errors import InvalidToken, RefreshTokenReused, SessionExpired
from mwallet.core.security import new_session_token, token_digest
from mwallet.core.services.public_keys import PublicKeys
from mwallet.core.services.unit_of_work import UnitOfWork


def issue_login_tokens(uow: UnitOfWork, now: datetime, box: SecretBox, user: User) -> TokenPair:
    """A new family with its first pair; inside the caller's writing unit of work."""
    family_id = new_id(now)
    family_expires = now + FAMILY_LIFETIME
    uow.tokens.add_family(family_id, user.id, now, family_expires)
    return _pair(uow, now, box, user, family_id=family_id, family_expires=family_expires)


def refresh(uow: UnitOfWork, clock: Clock, box: SecretBox, *, refresh_token: str) -> TokenPair:
    """Spend a refresh token for a new pair. A spent one presented again ends its whole family."""
    digest = token_digest(refresh_token)
    now = clock.now()
    with uow:
        record = uow.tokens.refresh_token(digest)
        family = uow.tokens.family(record.family_id) if record is not None else None
        if record is None or family is None:
            raise InvalidToken("that refresh token is not one this wallet issued")
        if not family.live_at(now):
            raise SessionExpired("your session has ended: log in again")
        if not uow.tokens.spend_refresh_token(digest, now):
            # Spent before: someone else holds a copy. End the login for both.
            uow.tokens.revoke_family(family.id, now, "refresh_reused")
            uow.audit.append(
                AuditEvent("token.reuse_detected", family.user_id, None, {"family": family.id}),
                now,
            )
            uow.commit()
            raise RefreshTokenReused(
                "this refresh token was already used, so the session has been ended: log in again"
            )
        if record.expires_at <= now:
            raise SessionExpired("your session has expired: log in again")
        user = uow.users.by_id(family.user_id)
        if user is None:  # pragma: no cover - users are never deleted
            raise SessionExpired("your session has ended: log in again")
        pair = _pair(uow, now, box, user, family_id=family.id, family_expires=family.expires_at)
        uow.commit()
        return pair


def logout(uow: UnitOfWork, clock: Clock, *, refresh_token: str) -> bool:
    """End the login a refresh token belongs to; True if this call ended it."""
    now = clock.now()
    with uow:
        record = uow.tokens.refresh_token(token_digest(refresh_token))
        if record is None:
            return False
        # Only the call that actually ends the family records it: two logouts racing, one record.
        user_id = uow.tokens.revoke_family(record.family_id, now, "logout")
        if user_id is not None:
            uow.audit.append(AuditEvent("logout", user_id, None, {"family": record.family_id}), now)
        uow.commit()
        return user_id is not None


def authenticate(
    uow: UnitOfWork, clock: Clock, keys: PublicKeys, *, access_token: str
) -> Principal:
    """The principal an access token stands for, or NotAuthenticated (InvalidToken for a forged
    or foreign token, TokenExpired for an old one, SessionExpired for an ended login).

    The signature is checked with the key `keys` holds for the token's `kid` (the database's, or
    the auth service's published JWKS); the session and the role are read from the database.
    """
    kid = tokens.key_id_of(access_token)
    now = clock.now()
    public_key = keys.verifying_key(kid, now)
    if public_key is None:
        raise InvalidToken("the token is signed with a key this wallet does not know")
    claims = tokens.verify(
        access_token, public_key=public_key, issuer=ISSUER, audience=AUDIENCE, now=now
    )
    with uow.read_only():
        if claims.get("kind") == "client":
            return _client_principal(uow, claims)
        family_id = claims.get("sid")
        family = uow.tokens.family(family_id) if isinstance(family_id, str) else None
        if family is None or family.user_id != claims["sub"]:
            raise InvalidToken("the token belongs to no session")
        if not family.live_at(now):
            raise SessionExpired("your session has ended: log in again")
        user = uow.users.by_id(family.user_id)
    if user is None:  # pragma: no cover - users are never deleted
        raise InvalidToken("the token's user does not exist")
    # The role is read now, not from the token: a demotion takes effect at once.
    return Principal(user.id, user.phone, user.display_name, user.role)


def issue_client_token(
    uow: UnitOfWork, now: datetime, box: SecretBox, client: OAuthClient, scopes: frozenset[str]
) -> TokenPair:
    """An access token for a client (no refresh token: it asks again with its secret)."""
    expires = now + ACCESS_TOKEN_LIFETIME
    claims = _claims(now, client.id, expires, [client.role.value], scopes)
    claims["kind"] = "client"
    key = current_signing_key(uow, now, box)
    token = tokens.sign(claims, kid=key.kid, private_key=_private_key(box, key))
    return TokenPair(token, expires, None, None, None)


def current_signing_key(uow: UnitOfWork, now: datetime, box: SecretBox) -> SigningKey:
    """The key that signs now; the first is made on first use."""
    key = uow.signing_keys.current()
    if key is None:
        key = new_signing_key(uow, now, box)
    return key


def new_signing_key(uow: UnitOfWork, now: datetime, box: SecretBox) -> SigningKey:
    private, public = tokens.new_signing_key()
    kid = f"k{new_id(now).lower()}"
    key = SigningKey(
        kid,
        box.seal(private, context=f"signing-key:{kid}"),
        public,
        created_at=now,
        retired_at=None,
    )
    uow.signing_keys.add(key)
    uow.audit.append(AuditEvent("signing_key.created", None, kid), now)
    return key


def jwks(keys: list[SigningKey], now: datetime) -> dict[str, Any]:
    """The JSON Web Key Set (RFC 7517, OKP keys of RFC 8037) of the keys that verify now."""
    return {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": tokens.ALGORITHM,
                "use": "sig",
                "kid": key.kid,
                "x": base64.urlsafe_b64encode(key.public_key).decode().rstrip("="),
            }
            for key in keys
            if key.verifies_at(now)
        ]
    }


def _pair(
    uow: UnitOfWork,
    now: datetime,
    box: SecretBox,
    user: User,
    *,
    family_id: str,
    family_expires: datetime,
) -> TokenPair:
    refresh_token = new_session_token()
    refresh_expires = min(now + REFRESH_TOKEN_LIFETIME, family_expires)
    uow.tokens.add_refresh_token(token_digest(refresh_token), family_id, now, refresh_expires)
    expires = now + ACCESS_TOKEN_LIFETIME
    scopes = frozenset(permission.value for permission in ROLE_PERMISSIONS[user.role])
    claims = _claims(now, user.id, expires, [user.role.value], scopes)
    claims["sid"] = family_id
    key = current_signing_key(uow, now, box)
    access = tokens.sign(claims, kid=key.kid, private_key=_private_key(box, key))
    return TokenPair(access, expires, refresh_token, refresh_expires, family_id)


def _claims(
    now: datetime, subject: str, expires: datetime, roles: list[str], scopes: frozenset[str]
) -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": new_id(now),
        "roles": roles,
        "scope": " ".join(sorted(scopes)),
    }


def _private_key(box: SecretBox, key: SigningKey) -> bytes:
    return box.open(key.private_key_sealed, context=f"signing-key:{key.kid}")


def _client_principal(uow: UnitOfWork, claims: dict[str, Any]) -> Principal:
    found = uow.clients.by_id(claims["sub"])
    if found is None:
        raise InvalidToken("the token's client is not registered")
    client, _ = found
    if client.disabled_at is not None:
        raise SessionExpired("this client has been disabled")
    scope = claims.get("scope")
    if not isinstance(scope, str):
        raise InvalidToken("the token's scope is not text")
    # A token never carries more than the client holds now.
    scopes = frozenset(scope.split()) & client.scopes
    return Principal(client.id, "", client.name, client.role, scopes=scopes, client=True)
