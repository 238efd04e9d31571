"""Secrets at rest: AES-256-GCM under a data key that never enters the database.

A `Keyring` holds one or more 256-bit data keys; the first seals, any of them opens. A sealed
value is text: `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`, where the key id is the first
8 bytes of the key's SHA-256 (so a keyring finds the key that opens a value, and names a missing
one). Every value is sealed for a *context* (`totp:<user id>`, `signing-key:<kid>`) given as the
associated data: a sealed value copied onto another row does not open there.

Where the keys come from (an environment variable or a 0600 file in MWALLET_HOME) is the
composition root's business (`mwallet.secret_keys`); the services see only this port.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from mwallet.core.errors import SecretKeyError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_VERSION = "v1"


class SecretBox(Protocol):
    def seal(self, plaintext: bytes, *, context: str) -> str: ...

    def open(self, sealed: str, *, context: str) -> bytes: ...

    def sealed_with_current_key(self, sealed: str) -> bool: ...

    @property
    def current_key_id(self) -> str: ...


class DataKeyStore(Protocol):
    """Where the data keys live, for rotating them (a key file, or a variable set by hand)."""

    def begin_rotation(self) -> None:
        """Make a new key the one that seals; the others still open what they sealed."""
        ...

    def finish_rotation(self) -> None:
        """Drop the keys nothing is sealed with any more (where the store can)."""
        ...


def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


class Keyring:
    """AES-GCM with the first of `keys`; each key is 32 bytes."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise SecretKeyError("no data key: set MWALLET_SECRET_KEY or keep the key file")
        for key in keys:
            if len(key) != KEY_BYTES:
                raise SecretKeyError(f"a data key must be {KEY_BYTES} bytes, not {len(key)}")
        self._keys = {key_id(key): key for key in keys}
        self._current = key_id(keys[0])

    @property
    def current_key_id(self) -> str:
        return self._current

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def _cipher(self, kid: str) -> AESGCM:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM(self._keys[kid])

    def seal(self, plaintext: bytes, *, context: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)  # random 96-bit nonces: fine far below 2^32
        body = self._cipher(self._current).encrypt(nonce, plaintext, context.encode())
        text = base64.urlsafe_b64encode(nonce + body).decode().rstrip("=")
        return f"{_VERSION}.{self._current}.{text}"

    def open(self, sealed: str, *, context: str) -> bytes:
        from cryptography.exceptions import InvalidTag

        version, kid, text = _split(sealed)
        if version != _VERSION:
            raise SecretKeyError(f"a stored secret has an unknown format {version!r}")
        if kid not in self._keys:
            raise SecretKeyError(
                f"a stored secret is sealed with data key {kid}, which is not configured "
                "(MWALLET_SECRET_KEY or the key file in MWALLET_HOME)"
            )
        raw = _decode(text)
        if raw is None or len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise SecretKeyError(f"a stored secret ({context}) is not in the sealed format")
        try:
            return self._cipher(kid).decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode()
            )
        except InvalidTag:
            raise SecretKeyError(
                f"a stored secret ({context}) fails its integrity check: it was altered or moved"
            ) from None

    def sealed_with_current_key(self, sealed: str) -> bool:
        return _split(sealed)[1] == self._current


class LazyKeyring:
    """A keyring loaded on first use: commands that touch no secret never read the key."""

    def __init__(self, load: Callable[[], Keyring]) -> None:
        self._load = load

    @cached_property
    def _ring(self) -> Keyring:
        return self._load()

    @property
    def current_key_id(self) -> str:
        return self._ring.current_key_id

    def seal(self, plaintext: bytes, *, context: str) -> str:
        return self._ring.seal(plaintext, context=context)

    def open(self, sealed: str, *, context: str) -> bytes:
        return self._ring.open(sealed, context=context)

    def sealed_with_current_key(self, sealed: str) -> bool:
        return self._ring.sealed_with_current_key(sealed)

    def reload(self) -> None:
        self.__dict__.pop("_ring", None)


def _decode(text: str) -> bytes | None:
    """Strict base64url (no stray characters; padding optional), or None."""
    if not text.isascii() or len(text) % 4 == 1:
        return None
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except ValueError:  # binascii.Error is a ValueError
        return None


def _split(sealed: str) -> tuple[str, str, str]:
    parts = sealed.split(".")
    if len(parts) != 3:
        raise SecretKeyError("a stored secret is not in the sealed format")
    return parts[0], parts[1], parts[2]
