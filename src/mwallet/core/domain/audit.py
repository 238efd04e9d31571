"""The audit log's rules: append-only records, each carrying the hash of the one before it.

Changing, removing or reordering any record breaks the chain from that record on. Removing the
newest records leaves a shorter chain that is still whole; that is caught by comparing the chain
with an anchor kept outside the database (the last sequence number and hash seen), and with the
database's own head row.

What is hashed is exactly what is stored: the details as their canonical JSON text, the time as
UTC with microseconds. A record whose stored text is not canonical counts as altered.

Limit (until the authentication issue brings a secret key to make these HMACs): someone who can
write the database can rebuild every hash after the newest anchor. `verify` on a schedule keeps
that window short.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Something a security reviewer wants on record: who did what to whom."""

    action: str
    actor: str | None  # a user id, or None for someone unknown (a login with a wrong phone)
    subject: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def details_json(self) -> str:
        return canonical_json(self.details)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: datetime
    action: str
    actor: str | None
    subject: str | None
    details_json: str  # exactly as stored
    prev_hash: str
    hash: str

    @property
    def details(self) -> dict[str, Any]:
        """The details as a dict; stored text that is not a JSON object (tampered) is shown as
        it is, under `unreadable`, for `verify` to name."""
        try:
            parsed = json.loads(self.details_json)
        except ValueError:
            parsed = None
        return parsed if isinstance(parsed, dict) else {"unreadable": self.details_json}


@dataclass(frozen=True, slots=True)
class UnreadableRecord:
    """A stored row that cannot even be read back (a broken value in some column)."""

    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class AuditAnchor:
    """The newest record someone saw, kept outside the database."""

    seq: int
    hash: str


def canonical_json(details: Mapping[str, Any]) -> str:
    return json.dumps(dict(details), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(
    prev_hash: str,
    seq: int,
    *,
    at: datetime,
    action: str,
    actor: str | None,
    subject: str | None,
    details_json: str,
) -> str:
    canonical = json.dumps(
        [prev_hash, seq, at.astimezone(UTC).isoformat(timespec="microseconds"), action, actor,
         subject, details_json],
        separators=(",", ":"),
        ensure_ascii=False,
    )  # fmt: skip
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    records: int
    head: AuditAnchor | None
    problem: str | None  # the first thing wrong, naming the record

    @property
    def ok(self) -> bool:
        return self.problem is None


def _is_canonical(details_json: str) -> bool:
    try:
        parsed = json.loads(details_json)
    except ValueError:
        return False
    return isinstance(parsed, dict) and canonical_json(parsed) == details_json


def _broken_link(record: AuditRecord, expected_seq: int, expected_prev: str) -> str | None:
    if record.seq != expected_seq:
        return f"record {expected_seq} is missing (found {record.seq})"
    if record.prev_hash != expected_prev:
        return f"record {record.seq} does not follow record {record.seq - 1}"
    recomputed = record_hash(
        record.prev_hash,
        record.seq,
        at=record.at,
        action=record.action,
        actor=record.actor,
        subject=record.subject,
        details_json=record.details_json,
    )
    if recomputed != record.hash or not _is_canonical(record.details_json):
        return f"record {record.seq} was altered"
    return None


def check_chain(
    records: Iterable[AuditRecord | UnreadableRecord],
    anchor: AuditAnchor | None,
    stored_head: AuditAnchor | None = None,
) -> ChainReport:
    """Walk the chain oldest first; the first broken link is the problem.

    `stored_head` is the database's own idea of the newest record (its head row), which must be
    where the chain ends; `anchor` is one kept outside, which the chain must still pass through.
    """
    expected_prev, expected_seq, count = GENESIS_HASH, 1, 0
    anchored = anchor is None
    last: AuditRecord | None = None
    for record in records:
        count += 1
        if isinstance(record, UnreadableRecord):
            return ChainReport(count, None, f"record {record.seq} is unreadable: {record.reason}")
        if (problem := _broken_link(record, expected_seq, expected_prev)) is not None:
            return ChainReport(count, None, problem)
        if anchor is not None and record.seq == anchor.seq:
            if record.hash != anchor.hash:
                return ChainReport(count, None, f"record {record.seq} differs from the anchor")
            anchored = True
        expected_prev, expected_seq, last = record.hash, record.seq + 1, record
    head = AuditAnchor(last.seq, last.hash) if last is not None else None
    problem = None
    if not anchored and anchor is not None:
        problem = f"records up to {anchor.seq} were seen before; the log ends at {count}"
    elif stored_head is not None:
        problem = _head_problem(stored_head, head, count)
    return ChainReport(count, head, problem)


def _head_problem(stored_head: AuditAnchor, head: AuditAnchor | None, count: int) -> str | None:
    if stored_head == (head or AuditAnchor(0, GENESIS_HASH)):
        return None
    if stored_head.seq == count:
        return f"the log's head does not match record {count}"
    return f"the log's head names record {stored_head.seq}; the log ends at {count}"
