"""The CLI's login session: a bearer token in MWALLET_HOME/session.json, owner-readable only."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class SavedSession:
    token: str
    user_id: str
    phone: str
    expires_at: str


def save(path: Path, session: SavedSession) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start: the token is never readable by others, not even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        json.dump(asdict(session), handle)


def load(path: Path) -> SavedSession | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return SavedSession(
            token=str(data["token"]),
            user_id=str(data["user_id"]),
            phone=str(data["phone"]),
            expires_at=str(data["expires_at"]),
        )
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def forget(path: Path) -> None:
    path.unlink(missing_ok=True)
