"""The audit log's anchor: the newest record `admin audit verify` saw, kept outside the database.

Someone who can rewrite the database can also delete its newest audit records and leave a chain
that is still whole; the anchor remembers how far the chain reached, per database, so that is
caught. The file lives in MWALLET_HOME, readable by its owner only.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mwallet.core.domain.audit import AuditAnchor

ANCHOR_FILE = "audit-anchor.json"


def _load_all(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise AnchorUnreadable(f"the audit anchor file {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise AnchorUnreadable(f"the audit anchor file {path} is not an anchor file")
    return data


class AnchorUnreadable(Exception):
    """The anchor file exists but says nothing usable: verify cannot vouch for the log."""


def load(home: Path, database: str) -> AuditAnchor | None:
    from mwallet.core.domain.audit import AuditAnchor

    path = home / ANCHOR_FILE
    entry = _load_all(path).get(database)
    if entry is None:
        return None
    try:
        return AuditAnchor(seq=int(str(entry["seq"])), hash=str(entry["hash"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise AnchorUnreadable(f"the audit anchor for {database} in {path} is damaged") from exc


def save(home: Path, database: str, anchor: AuditAnchor) -> None:
    with _locked(home):
        anchors = _load_all(home / ANCHOR_FILE)
        anchors[database] = {"seq": anchor.seq, "hash": anchor.hash}
        _write(home, anchors)


def forget(home: Path, database: str) -> bool:
    """Drop the anchor of a database that was recreated on purpose (a damaged file goes)."""
    with _locked(home):
        try:
            anchors = _load_all(home / ANCHOR_FILE)
        except AnchorUnreadable:
            (home / ANCHOR_FILE).unlink()
            return True
        if anchors.pop(database, None) is None:
            return False
        _write(home, anchors)
        return True


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    """One writer at a time: two verifies sharing a home must not drop each other's anchors."""
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(home / f".{ANCHOR_FILE}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(home: Path, anchors: dict[str, dict[str, object]]) -> None:
    """Replace the file atomically: a crash leaves the old one or the new one, never half."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / ANCHOR_FILE
    temporary = path.with_name(f".{ANCHOR_FILE}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(anchors, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
