"""Where the data key comes from: MWALLET_SECRET_KEY, else a key file in MWALLET_HOME.

MWALLET_SECRET_KEY holds one or more comma-separated base64 keys of 32 bytes: the first seals,
all open (to rotate: put a new key first, run `mwallet admin keys rotate-data-key`, then drop
the old ones). Without it, `MWALLET_HOME/data.key` is used, created on first need with mode 0600;
`rotate-data-key` then does all three steps itself. The key never goes into the database, so a
copy of the database alone reveals no secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mwallet.core.crypto import KEY_BYTES, Keyring, LazyKeyring, new_data_key
from mwallet.core.errors import SecretKeyError

ENV = "MWALLET_SECRET_KEY"


def from_environment(environ: Mapping[str, str] | None = None) -> Keyring | None:
    """The keyring MWALLET_SECRET_KEY gives, or None if it is not set."""
    text = (environ if environ is not None else os.environ).get(ENV, "").strip()
    if not text:
        return None
    return Keyring([_decode(part.strip(), ENV) for part in text.split(",") if part.strip()])


def load(path: Path, environ: Mapping[str, str] | None = None) -> Keyring:
    """MWALLET_SECRET_KEY's keyring, else the key file's (created if missing)."""
    ring = from_environment(environ)
    if ring is not None:
        return ring
    return Keyring(_read_or_create(path))


def uses_environment(environ: Mapping[str, str] | None = None) -> bool:
    return bool((environ if environ is not None else os.environ).get(ENV, "").strip())


def add_new_key(path: Path) -> Keyring:
    """Put a fresh key first in the key file (the old ones still open what they sealed)."""
    keys = [new_data_key(), *_read_or_create(path)]
    _write(path, keys)
    return Keyring(keys)


def keep_only_current(path: Path) -> None:
    """Drop every key but the first, once nothing is sealed with them any more."""
    keys = _read_or_create(path)
    _write(path, keys[:1])


def _read_or_create(path: Path) -> list[bytes]:
    try:
        raw = path.read_text(encoding="ascii")
    except FileNotFoundError:
        _create(path)
        raw = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretKeyError(f"the data key file {path} cannot be read: {exc}") from exc
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretKeyError(
            f"the data key file {path} is readable by others (mode {mode:o}): chmod 600 it"
        )
    try:
        document = json.loads(raw)
        keys = [_decode(str(text), str(path)) for text in document["keys"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise SecretKeyError(f"the data key file {path} is damaged: {exc}") from exc
    if not keys:
        raise SecretKeyError(f"the data key file {path} holds no key")
    return keys


def _create(path: Path) -> None:
    """Write a new key file in one step: two processes starting at once end with one key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_copy(path, [new_data_key()])
    try:
        os.link(temporary, path)  # fails if another process made it first: theirs is kept
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)


def _write(path: Path, keys: list[bytes]) -> None:
    temporary = _temporary_copy(path, keys)
    os.replace(temporary, path)


def _temporary_copy(path: Path, keys: list[bytes]) -> Path:
    fd, name = tempfile.mkstemp(prefix=".data.key.", dir=path.parent)  # mode 0600
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        json.dump({"keys": [base64.b64encode(key).decode() for key in keys]}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(name)


def _decode(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SecretKeyError(f"{where}: a data key must be base64") from None
    if len(key) != KEY_BYTES:
        raise SecretKeyError(f"{where}: a data key must be {KEY_BYTES} bytes, not {len(key)}")
    return key


class KeyFileStore:
    """Rotation with the key file: a new key is added first, the old ones dropped at the end."""

    def __init__(self, path: Path, keyring: LazyKeyring) -> None:
        self.path = path
        self._keyring = keyring

    def begin_rotation(self) -> None:
        add_new_key(self.path)
        self._keyring.reload()

    def finish_rotation(self) -> None:
        keep_only_current(self.path)
        self._keyring.reload()


class EnvironmentKeyStore:
    """Rotation with MWALLET_SECRET_KEY: the person puts the new key first and removes the old
    ones afterwards; there is nothing for the program to write."""

    def begin_rotation(self) -> None:
        pass

    def finish_rotation(self) -> None:
        pass
