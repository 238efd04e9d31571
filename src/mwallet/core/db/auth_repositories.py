"""SQL repositories of authentication: token families and refresh tokens, signing keys,
two-factor enrolments and recovery codes, OAuth clients.

Every "use it once" rule is a conditional UPDATE (`… WHERE used_at IS NULL RETURNING`), so two
requests racing with the same refresh token, TOTP step or recovery code cannot both win.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, update

from mwallet.core.db.prepared import Prepared, insert_into
from mwallet.core.db.tables import (
    known_devices,
    oauth_clients,
    recovery_codes,
    refresh_tokens,
    signing_keys,
    token_families,
    two_factor,
)
from mwallet.core.db.transaction import SqlTransaction
from mwallet.core.domain.clients import ClientKind, OAuthClient
from mwallet.core.domain.sessions import (
    RefreshTokenRecord,
    SigningKey,
    TokenFamily,
    TwoFactorRecord,
)

# --- token families and refresh tokens -----------------------------------------------------------
_add_family = Prepared(
    lambda: insert_into(
        token_families, "id", "user_id", "created_at", "expires_at", "revoked_at", "revoked_reason"
    )
)
_family = Prepared(
    lambda: select(
        token_families.c.id,
        token_families.c.user_id,
        token_families.c.expires_at,
        token_families.c.revoked_at,
    ).where(token_families.c.id == bindparam("id"))
)
_revoke_family = Prepared(
    lambda: (
        update(token_families)
        .where(token_families.c.id == bindparam("id"), token_families.c.revoked_at.is_(None))
        .values(revoked_at=bindparam("at"), revoked_reason=bindparam("reason"))
        .returning(token_families.c.user_id)
    )
)
_revoke_families_of = Prepared(
    lambda: (
        update(token_families)
        .where(
            token_families.c.user_id == bindparam("user_id"),
            token_families.c.revoked_at.is_(None),
        )
        .values(revoked_at=bindparam("at"), revoked_reason=bindparam("reason"))
    )
)
_add_refresh = Prepared(
    lambda: insert_into(
        refresh_tokens, "digest", "family_id", "created_at", "expires_at", "used_at"
    )
)
_refresh = Prepared(
    lambda: select(
        refresh_tokens.c.family_id, refresh_tokens.c.expires_at, refresh_tokens.c.used_at
    ).where(refresh_tokens.c.digest == bindparam("digest"))
)
_spend_refresh = Prepared(
    lambda: (
        update(refresh_tokens)
        .where(refresh_tokens.c.digest == bindparam("digest"), refresh_tokens.c.used_at.is_(None))
        .values(used_at=bindparam("at"))
        .returning(refresh_tokens.c.family_id)
    )
)


class SqlTokenRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def add_family(
        self, family_id: str, user_id: str, created_at: datetime, expires_at: datetime
    ) -> None:
        self._sql.write(
            _add_family,
            {
                "id": family_id,
                "user_id": user_id,
                "created_at": created_at,
                "expires_at": expires_at,
                "revoked_at": None,
                "revoked_reason": None,
            },
        )

    def family(self, family_id: str) -> TokenFamily | None:
        row = self._sql.one(_family, {"id": family_id})
        return None if row is None else TokenFamily(row[0], row[1], row[2], row[3])

    def add_refresh_token(
        self, digest: str, family_id: str, created_at: datetime, expires_at: datetime
    ) -> None:
        self._sql.write(
            _add_refresh,
            {
                "digest": digest,
                "family_id": family_id,
                "created_at": created_at,
                "expires_at": expires_at,
                "used_at": None,
            },
        )

    def refresh_token(self, digest: str) -> RefreshTokenRecord | None:
        row = self._sql.one(_refresh, {"digest": digest})
        return None if row is None else RefreshTokenRecord(row[0], row[1], row[2])

    def spend_refresh_token(self, digest: str, at: datetime) -> bool:
        return self._sql.one(_spend_refresh, {"digest": digest, "at": at}) is not None

    def revoke_family(self, family_id: str, at: datetime, reason: str) -> str | None:
        row = self._sql.one(_revoke_family, {"id": family_id, "at": at, "reason": reason})
        return None if row is None else str(row[0])

    def revoke_families_of(self, user_id: str, at: datetime, reason: str) -> None:
        self._sql.write(_revoke_families_of, {"user_id": user_id, "at": at, "reason": reason})


# --- signing keys --------------------------------------------------------------------------------
_KEY_COLUMNS = (
    signing_keys.c.kid,
    signing_keys.c.private_key,
    signing_keys.c.public_key,
    signing_keys.c.created_at,
    signing_keys.c.retired_at,
)
_current_key = Prepared(
    lambda: (
        select(*_KEY_COLUMNS)
        .where(signing_keys.c.retired_at.is_(None))
        .order_by(signing_keys.c.created_at.desc(), signing_keys.c.kid.desc())
        .limit(1)
    )
)
_key_by_kid = Prepared(lambda: select(*_KEY_COLUMNS).where(signing_keys.c.kid == bindparam("kid")))
_all_keys = Prepared(lambda: select(*_KEY_COLUMNS).order_by(signing_keys.c.created_at))
_add_key = Prepared(
    lambda: insert_into(
        signing_keys, "kid", "private_key", "public_key", "created_at", "retired_at"
    )
)
_retire_others = Prepared(
    lambda: (
        update(signing_keys)
        .where(signing_keys.c.kid != bindparam("kid"), signing_keys.c.retired_at.is_(None))
        .values(retired_at=bindparam("at"))
    )
)
_reseal_key = Prepared(
    lambda: (
        update(signing_keys)
        .where(signing_keys.c.kid == bindparam("kid"))
        .values(private_key=bindparam("sealed"))
    )
)


def _signing_key(row: Sequence[Any]) -> SigningKey:
    text = str(row[2])
    public = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return SigningKey(row[0], row[1], public, row[3], row[4])


class SqlSigningKeyRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def current(self) -> SigningKey | None:
        row = self._sql.one(_current_key, {})
        return None if row is None else _signing_key(row)

    def by_kid(self, kid: str) -> SigningKey | None:
        row = self._sql.one(_key_by_kid, {"kid": kid})
        return None if row is None else _signing_key(row)

    def all(self) -> list[SigningKey]:
        return [_signing_key(row) for row in self._sql.all(_all_keys, {})]

    def add(self, key: SigningKey) -> None:
        self._sql.write(
            _add_key,
            {
                "kid": key.kid,
                "private_key": key.private_key_sealed,
                "public_key": base64.urlsafe_b64encode(key.public_key).decode().rstrip("="),
                "created_at": key.created_at,
                "retired_at": key.retired_at,
            },
        )

    def retire_others(self, kid: str, at: datetime) -> None:
        self._sql.write(_retire_others, {"kid": kid, "at": at})

    def reseal(self, kid: str, private_key_sealed: str) -> None:
        self._sql.write(_reseal_key, {"kid": kid, "sealed": private_key_sealed})


# --- two-factor enrolments and recovery codes ----------------------------------------------------
_two_factor = Prepared(
    lambda: select(two_factor.c.secret, two_factor.c.confirmed_at, two_factor.c.last_step).where(
        two_factor.c.user_id == bindparam("user_id")
    )
)
_remove_two_factor = Prepared(
    lambda: delete(two_factor).where(two_factor.c.user_id == bindparam("user_id"))
)
_remove_recovery_codes = Prepared(
    lambda: delete(recovery_codes).where(recovery_codes.c.user_id == bindparam("user_id"))
)
_start_two_factor = Prepared(
    lambda: insert_into(two_factor, "user_id", "secret", "created_at", "confirmed_at", "last_step")
)
_confirm_two_factor = Prepared(
    lambda: (
        update(two_factor)
        .where(two_factor.c.user_id == bindparam("user_id"), two_factor.c.confirmed_at.is_(None))
        .values(confirmed_at=bindparam("at"))
        .returning(two_factor.c.user_id)
    )
)
_accept_step = Prepared(
    lambda: (
        update(two_factor)
        .where(
            two_factor.c.user_id == bindparam("user_id"),
            or_(two_factor.c.last_step.is_(None), two_factor.c.last_step < bindparam("step")),
        )
        .values(last_step=bindparam("step"))
        .returning(two_factor.c.user_id)
    )
)
_add_recovery_code = Prepared(lambda: insert_into(recovery_codes, "user_id", "digest", "used_at"))
_spend_recovery_code = Prepared(
    lambda: (
        update(recovery_codes)
        .where(
            recovery_codes.c.user_id == bindparam("user_id"),
            recovery_codes.c.digest == bindparam("digest"),
            recovery_codes.c.used_at.is_(None),
        )
        .values(used_at=bindparam("at"))
        .returning(recovery_codes.c.user_id)
    )
)
_unused_recovery_codes = Prepared(
    lambda: (
        select(func.count())
        .select_from(recovery_codes)
        .where(recovery_codes.c.user_id == bindparam("user_id"), recovery_codes.c.used_at.is_(None))
    )
)
_sealed_secrets = Prepared(
    lambda: select(two_factor.c.user_id, two_factor.c.secret).order_by(two_factor.c.user_id)
)
_reseal_secret = Prepared(
    lambda: (
        update(two_factor)
        .where(two_factor.c.user_id == bindparam("user_id"))
        .values(secret=bindparam("sealed"))
    )
)


class SqlTwoFactorRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def get(self, user_id: str) -> TwoFactorRecord | None:
        row = self._sql.one(_two_factor, {"user_id": user_id})
        if row is None:
            return None
        return TwoFactorRecord(
            str(row[0]), row[1] is not None, None if row[2] is None else int(row[2])
        )

    def start(self, user_id: str, secret_sealed: str, at: datetime) -> None:
        self.remove(user_id)
        self._sql.write(
            _start_two_factor,
            {
                "user_id": user_id,
                "secret": secret_sealed,
                "created_at": at,
                "confirmed_at": None,
                "last_step": None,
            },
        )

    def confirm(self, user_id: str, at: datetime) -> bool:
        return self._sql.one(_confirm_two_factor, {"user_id": user_id, "at": at}) is not None

    def accept_step(self, user_id: str, step: int) -> bool:
        return self._sql.one(_accept_step, {"user_id": user_id, "step": step}) is not None

    def remove(self, user_id: str) -> None:
        self._sql.write(_remove_recovery_codes, {"user_id": user_id})
        self._sql.write(_remove_two_factor, {"user_id": user_id})

    def add_recovery_codes(self, user_id: str, digests: Sequence[str]) -> None:
        for digest in digests:
            self._sql.write(
                _add_recovery_code, {"user_id": user_id, "digest": digest, "used_at": None}
            )

    def spend_recovery_code(self, user_id: str, digest: str, at: datetime) -> bool:
        row = self._sql.one(_spend_recovery_code, {"user_id": user_id, "digest": digest, "at": at})
        return row is not None

    def unused_recovery_codes(self, user_id: str) -> int:
        row = self._sql.one(_unused_recovery_codes, {"user_id": user_id})
        return 0 if row is None else int(row[0])

    def sealed_secrets(self) -> list[tuple[str, str]]:
        return [(str(user), str(sealed)) for user, sealed in self._sql.all(_sealed_secrets, {})]

    def reseal(self, user_id: str, secret_sealed: str) -> None:
        self._sql.write(_reseal_secret, {"user_id": user_id, "sealed": secret_sealed})


# --- OAuth clients -------------------------------------------------------------------------------
_CLIENT_COLUMNS = (
    oauth_clients.c.id,
    oauth_clients.c.name,
    oauth_clients.c.kind,
    oauth_clients.c.scopes,
    oauth_clients.c.created_at,
    oauth_clients.c.disabled_at,
    oauth_clients.c.secret_digest,
)
_add_client = Prepared(
    lambda: insert_into(
        oauth_clients, "id", "name", "kind", "scopes", "secret_digest", "created_at", "disabled_at"
    )
)
_client = Prepared(lambda: select(*_CLIENT_COLUMNS).where(oauth_clients.c.id == bindparam("id")))
_clients = Prepared(
    lambda: select(*_CLIENT_COLUMNS).order_by(oauth_clients.c.id).limit(bindparam("lim"))
)
_disable_client = Prepared(
    lambda: (
        update(oauth_clients)
        .where(oauth_clients.c.id == bindparam("id"), oauth_clients.c.disabled_at.is_(None))
        .values(disabled_at=bindparam("at"))
        .returning(oauth_clients.c.id)
    )
)


def _client_of(row: Sequence[Any]) -> OAuthClient:
    return OAuthClient(
        id=str(row[0]),
        name=str(row[1]),
        kind=ClientKind(row[2]),
        scopes=frozenset(str(row[3]).split()),
        created_at=row[4],
        disabled_at=row[5],
    )


class SqlClientRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def add(self, client: OAuthClient, secret_digest: str) -> None:
        self._sql.write(
            _add_client,
            {
                "id": client.id,
                "name": client.name,
                "kind": client.kind.value,
                "scopes": " ".join(sorted(client.scopes)),
                "secret_digest": secret_digest,
                "created_at": client.created_at,
                "disabled_at": client.disabled_at,
            },
        )

    def by_id(self, client_id: str) -> tuple[OAuthClient, str] | None:
        row = self._sql.one(_client, {"id": client_id})
        return None if row is None else (_client_of(row), str(row[6]))

    def page(self, *, limit: int) -> list[OAuthClient]:
        return [_client_of(row) for row in self._sql.all(_clients, {"lim": limit})]

    def disable(self, client_id: str, at: datetime) -> bool:
        return self._sql.one(_disable_client, {"id": client_id, "at": at}) is not None


# --- known devices -------------------------------------------------------------------------------
_device = Prepared(
    lambda: select(known_devices.c.first_seen_at).where(
        known_devices.c.user_id == bindparam("user_id"),
        known_devices.c.device_digest == bindparam("digest"),
    )
)
_device_count = Prepared(
    lambda: select(func.count()).where(known_devices.c.user_id == bindparam("user_id"))
)
_touch_device = Prepared(
    lambda: (
        update(known_devices)
        .where(
            known_devices.c.user_id == bindparam("user_id"),
            known_devices.c.device_digest == bindparam("digest"),
        )
        .values(last_seen_at=bindparam("at"))
    )
)
_add_device = Prepared(
    lambda: insert_into(known_devices, "user_id", "device_digest", "first_seen_at", "last_seen_at")
)


class SqlDeviceRepository:
    def __init__(self, sql: SqlTransaction) -> None:
        self._sql = sql

    def remember(self, user_id: str, digest: str, at: datetime) -> tuple[bool, int]:
        params = {"user_id": user_id, "digest": digest, "at": at}
        if self._sql.one(_device, params) is not None:
            self._sql.write(_touch_device, params)
            return False, 0
        row = self._sql.one(_device_count, {"user_id": user_id})
        known = int(row[0]) if row is not None else 0
        self._sql.write(
            _add_device,
            {"user_id": user_id, "device_digest": digest, "first_seen_at": at, "last_seen_at": at},
        )
        return True, known
