"""The audit log's rules: append-only records, each carrying the hash of the one before it.

Changing, removing or reordering any record breaks the chain from that record on. Removing the
newest records leaves a shorter chain that is still whole; that is caught by comparing the chain
with an anchor kept outside the database (the last sequence number and hash seen).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Something a security reviewer wants on record: who did what to whom."""

    action: str
    actor: str | None  # a user id, or None for someone unknown (a login with a wrong phone)
    subject: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: datetime
    action: str
    actor: str | None
    subject: str | None
    details: Mapping[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditAnchor:
    """The newest record someone saw, kept outside the database."""

    seq: int
    hash: str


def record_hash(
    prev_hash: str,
    seq: int,
    at: datetime,
    event: AuditEvent,
) -> str:
    canonical = json.dumps(
        {
            "prev": prev_hash,
            "seq": seq,
            "at": at.isoformat(),
            "action": event.action,
            "actor": event.actor,
            "subject": event.subject,
            "details": dict(event.details),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    records: int
    head: AuditAnchor | None
    problem: str | None  # the first thing wrong, naming the record

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_chain(records: Iterable[AuditRecord], anchor: AuditAnchor | None) -> ChainReport:
    """Walk the chain oldest first; the first broken link is the problem."""
    expected_prev, expected_seq, count = GENESIS_HASH, 1, 0
    anchored = anchor is None
    last: AuditRecord | None = None
    for record in records:
        count += 1
        if record.seq != expected_seq:
            return ChainReport(
                count, None, f"record {expected_seq} is missing (found {record.seq})"
            )
        if record.prev_hash != expected_prev:
            return ChainReport(
                count, None, f"record {record.seq} does not follow record {record.seq - 1}"
            )
        event = AuditEvent(record.action, record.actor, record.subject, record.details)
        if record_hash(record.prev_hash, record.seq, record.at, event) != record.hash:
            return ChainReport(count, None, f"record {record.seq} was altered")
        if anchor is not None and record.seq == anchor.seq:
            if record.hash != anchor.hash:
                return ChainReport(count, None, f"record {record.seq} differs from the anchor")
            anchored = True
        expected_prev, expected_seq, last = record.hash, record.seq + 1, record
    head = AuditAnchor(last.seq, last.hash) if last is not None else None
    if not anchored and anchor is not None:
        return ChainReport(
            count, head, f"records up to {anchor.seq} were seen before; the log ends at {count}"
        )
    return ChainReport(count, head, None)
