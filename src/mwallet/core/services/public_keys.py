"""The port through which access tokens are verified: the public keys that verify now, by `kid`.

`tokens.authenticate` asks a `PublicKeys` for the key a token names and keeps every JWT check in
one place (`core.tokens`). Where the keys come from is the adapter's business: `StoredPublicKeys`
reads the signing keys table (a process that serves auth, or shares its database), and
`mwallet.jwks.JwksPublicKeys` fetches the auth service's `/.well-known/jwks.json` over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from mwallet.core.services.unit_of_work import UnitOfWork


class PublicKeys(Protocol):
    def verifying_key(self, kid: str, now: datetime) -> bytes | None:
        """The raw Ed25519 public key `kid` names, if it verifies tokens at `now`; else None.

        May raise KeysUnavailable when the keys cannot be read at all.
        """
        ...


class StoredPublicKeys:
    """The signing keys the database holds: what the auth service publishes, read at the source."""

    def __init__(self, uow_factory: Callable[[], UnitOfWork]) -> None:
        self._uow = uow_factory

    def verifying_key(self, kid: str, now: datetime) -> bytes | None:
        with (uow := self._uow()).read_only():
            key = uow.signing_keys.by_kid(kid)
        return key.public_key if key is not None and key.verifies_at(now) else None
