"""The composition root: builds a ready `WalletService` from plain settings.

Nothing connects at import time; tests and the demo build their own with a temporary database,
a fixed clock or a cheaper password hasher.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mwallet.core.clock import Clock, SystemClock
from mwallet.core.crypto import Keyring, LazyKeyring, SecretBox
from mwallet.core.db.engine import make_engine
from mwallet.core.db.migrate import ensure_schema
from mwallet.core.db.unit_of_work import SqlUnitOfWorkFactory
from mwallet.core.security import Argon2idHasher, PasswordHasher
from mwallet.core.services.wallet_service import WalletService

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy import Engine

    from mwallet.core.services.payments import Provider


class Wallet:
    """A built service and the engine it owns; close it to release the database."""

    def __init__(
        self, engine: Engine, service: WalletService, units: SqlUnitOfWorkFactory | None = None
    ) -> None:
        self.engine = engine
        self.service = service
        self._units = units  # its units of work keep connections between them: closed first

    def close(self) -> None:
        if self._units is not None:
            self._units.close()
        self.engine.dispose()

    def __enter__(self) -> Wallet:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def build_wallet(
    url: str,
    *,
    clock: Clock | None = None,
    hasher: PasswordHasher | None = None,
    secrets: SecretBox | None = None,
    pool_size: int = 5,
    providers: Mapping[str, Provider] | None = None,
) -> Wallet:
    """Open (creating and migrating on first use) the database at `url` and wire the services.

    `secrets` seals what must be kept recoverable (TOTP secrets, signing keys); by default the
    data key comes from MWALLET_SECRET_KEY, read when first needed. `providers`: payment
    providers by name, besides the built-in sandbox; by default those MWALLET_PROVIDERS names.
    """
    engine = make_engine(url, pool_size=pool_size)
    try:
        ensure_schema(engine)
        units = SqlUnitOfWorkFactory(engine)
        service = WalletService(
            units,
            clock or SystemClock(),
            hasher or Argon2idHasher(),
            secrets or LazyKeyring(_environment_keyring),
            providers if providers is not None else _environment_providers(),
        )
    except BaseException:
        engine.dispose()
        raise
    return Wallet(engine, service, units)


def _environment_providers() -> dict[str, Provider]:
    import os

    if not os.environ.get("MWALLET_PROVIDERS"):
        return {}
    from mwallet.providers.config import providers_from_environment

    return providers_from_environment()


def _environment_keyring() -> Keyring:
    from mwallet.core.errors import SecretKeyError
    from mwallet.secret_keys import ENV, from_environment

    ring = from_environment()
    if ring is None:
        raise SecretKeyError(f"no data key: set {ENV} (base64 of 32 random bytes)")
    return ring
