"""The audit log's hash chain: any altered, removed or reordered record is found and named."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from mwallet.core.domain.audit import (
    GENESIS_HASH,
    AuditAnchor,
    AuditEvent,
    AuditRecord,
    UnreadableRecord,
    check_chain,
    record_hash,
)
from mwallet.core.domain.lockout import LOCK_DURATION, MAX_FAILURES, LoginThrottle

START = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)


def sealed(record: AuditRecord) -> AuditRecord:
    """The record with its hash recomputed, as a forger who knows the scheme would do."""
    digest = record_hash(
        record.prev_hash,
        record.seq,
        at=record.at,
        action=record.action,
        actor=record.actor,
        subject=record.subject,
        details_json=record.details_json,
    )
    return replace(record, hash=digest)


def chain(count: int) -> list[AuditRecord]:
    records, prev = [], GENESIS_HASH
    for seq in range(1, count + 1):
        event = AuditEvent("login.failed", f"user{seq}", "+258841234567", {"failures": seq})
        record = sealed(
            AuditRecord(
                seq,
                START + timedelta(seconds=seq),
                event.action,
                event.actor,
                event.subject,
                event.details_json,
                prev,
                "",
            )
        )
        records.append(record)
        prev = record.hash
    return records


def test_an_untouched_chain_is_intact_and_reports_its_head() -> None:
    records = chain(5)
    report = check_chain(records, None, AuditAnchor(5, records[-1].hash))
    assert report.ok
    assert report.records == 5
    assert report.head == AuditAnchor(5, records[-1].hash)


def test_an_empty_log_is_intact() -> None:
    assert check_chain([], None, AuditAnchor(0, GENESIS_HASH)).ok


def test_an_altered_record_is_named() -> None:
    records = chain(5)
    records[2] = replace(records[2], details_json='{"failures":1}')
    assert check_chain(records, None).problem == "record 3 was altered"


def test_an_altered_actor_or_time_is_caught_too() -> None:
    for change in ({"actor": "someone-else"}, {"at": START}, {"action": "login.succeeded"}):
        records = chain(3)
        records[1] = replace(records[1], **change)
        assert check_chain(records, None).problem == "record 2 was altered"


def test_stored_details_must_be_the_canonical_text_that_was_hashed() -> None:
    # Texts that read back as the same (or a similar) dict, but are not what was written.
    for stored in ('{"failures": 2}', '{"failures":9,"failures":2}', '[["failures",2]]', "null"):
        records = chain(3)
        records[1] = sealed(replace(records[1], details_json=stored))
        records[2] = sealed(replace(records[2], prev_hash=records[1].hash))
        assert check_chain(records, None).problem == "record 2 was altered", stored


def test_a_time_in_another_zone_hashes_as_the_same_instant() -> None:
    records = chain(2)
    shifted = records[1].at.astimezone(timezone(timedelta(hours=2)))
    records[1] = replace(records[1], at=shifted)
    assert check_chain(records, None).ok


def test_an_unreadable_record_is_named() -> None:
    records: list[AuditRecord | UnreadableRecord] = [*chain(2), UnreadableRecord(3, "bad time")]
    assert check_chain(records, None).problem == "record 3 is unreadable: bad time"


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
    records[1] = sealed(replace(records[1], details_json='{"failures":99}'))
    assert check_chain(records, None).problem == "record 3 does not follow record 2"


def test_removing_the_newest_records_is_caught_against_the_anchor() -> None:
    records = chain(6)
    anchor = check_chain(records, None).head
    assert check_chain(records[:4], anchor).problem == (
        "records up to 6 were seen before; the log ends at 4"
    )
    assert check_chain(records, anchor).ok
    assert check_chain(chain(7), anchor).ok  # growing past the anchor is fine


def test_a_chain_that_stops_short_of_its_head_row_is_caught() -> None:
    records = chain(4)
    head = AuditAnchor(4, records[-1].hash)
    assert check_chain(records[:3], None, head).problem == (
        "the log's head names record 4; the log ends at 3"
    )


def test_a_rewritten_chain_does_not_match_the_anchor() -> None:
    anchor = AuditAnchor(3, "f" * 64)
    assert check_chain(chain(5), anchor).problem == "record 3 differs from the anchor"


# --- the login throttle ---------------------------------------------------------------------------
def fail(throttle: LoginThrottle, now: datetime) -> LoginThrottle:
    reserved = throttle.reserve(now)
    assert reserved is not None
    return reserved.confirm_failure(now)


def test_the_fifth_failure_in_a_row_locks_for_thirty_minutes() -> None:
    throttle = LoginThrottle()
    for _ in range(MAX_FAILURES - 1):
        throttle = fail(throttle, START)
        assert not throttle.locked_at(START)
    throttle = fail(throttle, START)
    assert throttle.locked_at(START)
    assert throttle.reserve(START) is None
    assert throttle.locked_at(START + LOCK_DURATION - timedelta(seconds=1))
    assert not throttle.locked_at(START + LOCK_DURATION)


def test_at_most_five_checks_are_ever_in_flight() -> None:
    throttle: LoginThrottle | None = LoginThrottle()
    admitted = 0
    for _ in range(20):  # twenty guesses arrive before any is checked
        assert throttle is not None
        reserved = throttle.reserve(START)
        if reserved is None:
            continue
        admitted, throttle = admitted + 1, reserved
    assert admitted == MAX_FAILURES


def test_a_right_fifth_attempt_is_not_locked_out_by_its_own_reservation() -> None:
    throttle = LoginThrottle()
    for _ in range(MAX_FAILURES - 1):
        throttle = fail(throttle, START)
    reserved = throttle.reserve(START)
    assert reserved is not None
    assert not reserved.locked_at(START)  # the check may still succeed and clear the count


def test_a_lock_that_ran_out_starts_a_new_count() -> None:
    locked = LoginThrottle(MAX_FAILURES, START + LOCK_DURATION, refusals=3)
    assert locked.reserve(START + LOCK_DURATION) == LoginThrottle(1, None, 0)


def test_five_attempts_lost_in_flight_become_a_lock_that_runs_out() -> None:
    # Five attempts were counted, and their checks never reported back (a crash, say).
    leaked = LoginThrottle(MAX_FAILURES, None, 0)
    assert leaked.reserve(START) is None
    refused = leaked.refused(START)
    assert refused.locked_until == START + LOCK_DURATION
    assert refused.reserve(START + LOCK_DURATION) == LoginThrottle(1, None, 0)
