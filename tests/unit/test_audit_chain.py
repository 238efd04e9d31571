"""The audit log's hash chain: any altered, removed or reordered record is found and named."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from mwallet.core.domain.audit import (
    GENESIS_HASH,
    AuditAnchor,
    AuditEvent,
    AuditRecord,
    check_chain,
    record_hash,
)
from mwallet.core.domain.lockout import LOCK_DURATION, MAX_FAILURES, LoginThrottle

START = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)


def chain(count: int) -> list[AuditRecord]:
    records, prev = [], GENESIS_HASH
    for seq in range(1, count + 1):
        event = AuditEvent("login.failed", f"user{seq}", "+258841234567", {"failures": seq})
        at = START + timedelta(seconds=seq)
        digest = record_hash(prev, seq, at, event)
        records.append(
            AuditRecord(
                seq, at, event.action, event.actor, event.subject, event.details, prev, digest
            )
        )
        prev = digest
    return records


def test_an_untouched_chain_is_intact_and_reports_its_head() -> None:
    records = chain(5)
    report = check_chain(records, None)
    assert report.ok
    assert report.records == 5
    assert report.head == AuditAnchor(5, records[-1].hash)


def test_an_empty_log_is_intact() -> None:
    assert check_chain([], None).ok


def test_an_altered_record_is_named() -> None:
    records = chain(5)
    records[2] = replace(records[2], details={"failures": 1})
    report = check_chain(records, None)
    assert report.problem == "record 3 was altered"


def test_an_altered_actor_or_time_is_caught_too() -> None:
    for change in ({"actor": "someone-else"}, {"at": START}, {"action": "login.succeeded"}):
        records = chain(3)
        records[1] = replace(records[1], **change)
        assert check_chain(records, None).problem == "record 2 was altered"


def test_a_removed_record_is_named() -> None:
    records = chain(5)
    del records[1]
    assert check_chain(records, None).problem == "record 2 is missing (found 3)"


def test_reordered_records_are_caught() -> None:
    records = chain(5)
    records[1], records[2] = records[2], records[1]
    assert not check_chain(records, None).ok


def test_a_record_rehashed_after_editing_still_breaks_the_next_link() -> None:
    records = chain(4)
    edited = replace(records[1], details={"failures": 99})
    event = AuditEvent(edited.action, edited.actor, edited.subject, edited.details)
    records[1] = replace(edited, hash=record_hash(edited.prev_hash, 2, edited.at, event))
    assert check_chain(records, None).problem == "record 3 does not follow record 2"


def test_removing_the_newest_records_is_caught_against_the_anchor() -> None:
    records = chain(6)
    anchor = check_chain(records, None).head
    assert check_chain(records[:4], anchor).problem == (
        "records up to 6 were seen before; the log ends at 4"
    )
    assert check_chain(records, anchor).ok
    assert check_chain([*records, *chain(7)[6:]], anchor).ok  # growing past the anchor is fine


def test_a_rewritten_chain_does_not_match_the_anchor() -> None:
    anchor = AuditAnchor(3, "f" * 64)
    assert check_chain(chain(5), anchor).problem == "record 3 differs from the anchor"


# --- the login throttle ---------------------------------------------------------------------------
def test_the_fifth_failure_in_a_row_locks_for_thirty_minutes() -> None:
    throttle = LoginThrottle()
    for _ in range(MAX_FAILURES - 1):
        throttle = throttle.after_failure(START)
        assert not throttle.locked_at(START)
    throttle = throttle.after_failure(START)
    assert throttle.locked_at(START)
    assert throttle.locked_at(START + LOCK_DURATION - timedelta(seconds=1))
    assert not throttle.locked_at(START + LOCK_DURATION)


def test_a_failure_after_the_lock_ran_out_starts_a_new_count() -> None:
    locked = LoginThrottle(MAX_FAILURES, START + LOCK_DURATION)
    later = locked.after_failure(START + LOCK_DURATION)
    assert later == LoginThrottle(1, None)
