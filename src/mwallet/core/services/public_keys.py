"""The port through which access tokens are verified: the public keys that verify now, by `kid`.

`tokens.authenticate` asks a `PublicKeys` for the key a token names and keeps every JWT check in
one place (`core.tokens`). Where the keys come from is the adapter's business: `StoredPublicKeys`
reads the signing keys table (a process that serves auth, or shares its database), and
`mwallet.jwks.JwksPublicKeys` fetches the auth service's `/.well-known/jwks.json` over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from mwallet.core.domain.sessions import SigningKey
from mwallet.core.services.unit_of_work import UnitOfWork


class PublicKeys(Protocol):
    def verifying_key(self, kid: str, now: datetime) -> bytes | None:
        """The raw Ed25519 public key `kid` names, if it verifies tokens at `now`; else None.

        May raise KeysUnavailable when the keys cannot be read at all.
        """
        ...

    def check_ready(self) -> None:
        """Raise KeysUnavailable if no token could be verified now (a readiness probe's
        question): cheap, within the adapter's own refresh rules."""
        ...


class StoredPublicKeys:
    """The signing keys the database holds: what the auth service publishes, read at the source.

    A key read is kept for KEPT_FOR (by the service's clock), sparing every request a
    transaction. That can never stretch a retired key's life: a key retired after it was read
    still verifies for ACCESS_TOKEN_LIFETIME after its retirement anyway, far longer than
    KEPT_FOR, and whether a key verifies is decided at each call, from its retirement time.
    An unknown kid is always looked up.
    """

    KEPT_FOR = timedelta(seconds=5)

    def __init__(self, uow_factory: Callable[[], UnitOfWork]) -> None:
        self._uow = uow_factory
        self._kept: dict[str, tuple[SigningKey, datetime]] = {}

    def check_ready(self) -> None:
        """Nothing to fetch: the keys are in the database the probe reads anyway."""

    def verifying_key(self, kid: str, now: datetime) -> bytes | None:
        kept = self._kept.get(kid)
        if kept is not None and now - kept[1] < self.KEPT_FOR and now >= kept[1]:
            key: SigningKey | None = kept[0]
        else:
            with (uow := self._uow()).read_only():
                key = uow.signing_keys.by_kid(kid)
            if key is not None:
                self._kept[kid] = (key, now)
        return key.public_key if key is not None and key.verifies_at(now) else None
