"""Where an installation keeps its files: MWALLET_HOME, else the platform's user data folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DB_FILE = "mwallet.db"


@dataclass(frozen=True, slots=True)
class Paths:
    home: Path

    @property
    def database(self) -> Path:
        return self.home / DB_FILE

    @property
    def session(self) -> Path:
        return self.home / "session.json"

    @property
    def data_key(self) -> Path:
        return self.home / "data.key"

    @property
    def device(self) -> Path:
        return self.home / "device.id"


def default_home() -> Path:
    if home := os.environ.get("MWALLET_HOME"):
        return Path(home).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("mwallet", appauthor=False))


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def database_url(paths: Paths, explicit: str | None = None) -> str:
    """`--db`, else MWALLET_DB, else the embedded SQLite file in the home folder."""
    return explicit or os.environ.get("MWALLET_DB") or sqlite_url(paths.database)
