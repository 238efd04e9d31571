"""Ids: a ULID says the millisecond it was made in, and a millisecond's ids form a range of ids."""

from __future__ import annotations

import os
import signal
import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mwallet.core.domain import ids
from mwallet.core.domain.ids import first_id_of, made_at, millisecond_of, new_id

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
)


@given(moments)
def test_an_id_is_within_its_milliseconds_range(moment: datetime) -> None:
    made = new_id(moment)
    assert first_id_of(moment) <= made < first_id_of(moment + MILLISECOND)
    assert millisecond_of(made) == (moment - EPOCH) // MILLISECOND
    assert made_at(made, moment)
    assert not made_at(made, moment + MILLISECOND)


@given(moments, moments)
def test_ids_of_earlier_milliseconds_sort_before_a_later_first_id(
    earlier: datetime, later: datetime
) -> None:
    earlier, later = sorted((earlier, later))
    if (later - EPOCH) // MILLISECOND > (earlier - EPOCH) // MILLISECOND:
        assert new_id(earlier) < first_id_of(later)


def test_moments_asked_in_turn_each_get_their_own_millisecond() -> None:
    # The last moment's milliseconds are kept (a transfer asks three times of its one `now`):
    # asked of another moment and then of the first again, neither answers with the other's.
    first = datetime(2026, 3, 1, 12, 0, 0, 1_000, tzinfo=UTC)
    second = first + MILLISECOND
    for _ in range(2):
        assert millisecond_of(first_id_of(first)) == (first - EPOCH) // MILLISECOND
        assert millisecond_of(first_id_of(second)) == (second - EPOCH) // MILLISECOND
        made = new_id(first)
        assert made_at(made, first)
        assert not made_at(made, second)
        assert millisecond_of(new_id(second)) == (second - EPOCH) // MILLISECOND


def test_the_first_id_of_a_millisecond_is_its_lowest() -> None:
    moment = datetime(2026, 3, 1, 12, 0, 0, 123_456, tzinfo=UTC)
    first = first_id_of(moment)
    assert first == first_id_of(moment.replace(microsecond=123_000))
    assert first.endswith("0" * 16)  # the 80 random bits all zero
    assert millisecond_of(first) == (moment - EPOCH) // MILLISECOND


@pytest.mark.parametrize(
    "text", ["", "01KF", "01KF00000000000000000000001", "01KF0000U0" + "0" * 16]
)
def test_millisecond_of_refuses_what_is_no_ulid(text: str) -> None:
    with pytest.raises(ValueError, match="ULID"):
        millisecond_of(text)
    assert not made_at(text, datetime(2026, 1, 1, tzinfo=UTC))


def test_a_forked_child_draws_random_parts_of_its_own() -> None:
    # Random parts are drawn 256 ids at a time: a child forked with part of a pool left must
    # not make the ids its parent goes on to make from it (same millisecond, same digits).
    moment = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    new_id(moment)  # the pool is drawn, and most of it is left
    # The last id of moment's millisecond so high that every next one counts up from it: a
    # child counting up from the same last id would make the parent's next ids.
    ids._last_random = "Z" * 12 + "0000"
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's side, reported through the pipe
        try:
            os.write(write, ",".join(new_id(moment)[10:] for _ in range(8)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        childs = set(pipe.read().split(","))
    os.waitpid(child, 0)
    parents = {new_id(moment)[10:] for _ in range(8)}
    assert len(childs) == 8
    assert not childs & parents


def test_ids_stay_distinct_and_ordered_across_many_pools() -> None:
    moments = [
        datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC) + MILLISECOND * (n // 300) for n in range(1500)
    ]
    made = [new_id(moment) for moment in moments]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(made_at(id_, moment) for id_, moment in zip(made, moments, strict=True))


def test_a_child_forked_while_another_thread_makes_an_id_can_make_ids() -> None:
    # The thread holding the ids' lock does not exist in the child: the lock it holds there must
    # not stay held for good (the child's first id would wait forever).
    holding, done = threading.Event(), threading.Event()

    def making() -> None:
        with ids._lock:  # as `new_id` holds it, for a moment
            holding.set()
            done.wait(10)

    maker = threading.Thread(target=making)
    maker.start()
    try:
        assert holding.wait(10)
        child = os.fork()
        if child == 0:  # pragma: no cover - the child's side, reported by its exit status
            try:
                signal.alarm(5)  # waiting for the lock ends the child (SIGALRM), not the tests
                made = new_id(datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC))
                os._exit(0 if len(made) == 26 else 1)
            finally:
                os._exit(2)
    finally:
        done.set()
        maker.join()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
