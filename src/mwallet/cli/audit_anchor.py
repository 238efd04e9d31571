"""The audit log's anchor: the newest record `admin audit verify` saw, kept outside the database.

Someone who can rewrite the database can also delete its newest audit records and leave a chain
that is still whole; the anchor remembers how far the chain reached, per database, so that is
caught. The file lives in MWALLET_HOME, readable by its owner only.
"""

from __future__ import annotations

import json
import os
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
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not an audit anchor file")
    return data


def load(home: Path, database: str) -> AuditAnchor | None:
    from mwallet.core.domain.audit import AuditAnchor

    entry = _load_all(home / ANCHOR_FILE).get(database)
    if entry is None:
        return None
    return AuditAnchor(seq=int(str(entry["seq"])), hash=str(entry["hash"]))


def save(home: Path, database: str, anchor: AuditAnchor) -> None:
    path = home / ANCHOR_FILE
    anchors = _load_all(path)
    anchors[database] = {"seq": anchor.seq, "hash": anchor.hash}
    home.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        json.dump(anchors, handle, indent=2)
