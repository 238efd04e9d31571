"""The CLI's login session: its access and refresh tokens in MWALLET_HOME/session.json, readable
by its owner only. Refreshing takes a lock on the file, so two commands run at once refresh once
(a refresh token used twice would end the session: see `core.domain.sessions`)."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SavedSession:
    access_token: str
    refresh_token: str
    user_id: str
    phone: str
    expires_at: str  # of the refresh token: when the session ends unless used
    server: str | None = None  # the wallet server it was opened on; None: the local database


def save(path: Path, session: SavedSession) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: a reader never sees half a file. Created 0600 from the start.
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        json.dump(asdict(session), handle)
    os.replace(temporary, path)


def load(path: Path) -> SavedSession | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SavedSession(
            access_token=str(data["access_token"]),
            refresh_token=str(data["refresh_token"]),
            user_id=str(data["user_id"]),
            phone=str(data["phone"]),
            expires_at=str(data["expires_at"]),
            server=None if data.get("server") is None else str(data["server"]),
        )
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None  # no session, or one written by an older version: log in again


def forget(path: Path) -> None:
    path.unlink(missing_ok=True)


@contextmanager
def refreshing(path: Path) -> Iterator[None]:
    """Hold the session's lock while its tokens are refreshed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(f"{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
