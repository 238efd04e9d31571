"""Identifiers: time-ordered and random (ULID layout), so ids sort by creation and never collide.

Within one process, ids made in the same millisecond count up from each other (ULID's monotonic
variant), so they keep their creation order even when the clock stands still, as a test's fixed
clock does. Across processes ids only roughly follow time, and transactions commit in any order:
nothing may use an id as a high-water mark ("everything after this id").

A transfer makes two ids, so making one is kept cheap (~0.8 us of CPU, not ~5): the random parts
are written straight from random bytes (one `bytes.translate`, no 128-bit integer arithmetic),
256 ids' worth at a time (one `os.urandom` call, not one each; a forked child draws its own), the
time part is encoded once per millisecond, and counting up works on the characters themselves
(Crockford's digits sort like their values, so comparing the text compares the numbers).

An id does say which millisecond it was made in (`millisecond_of`), and every id made in a
millisecond sorts at or after `first_id_of` it: a journal entry's id is made from its own
`created_at` (the domain checks it), so the entries of a window of time are a range of their key.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from itertools import pairwise

from mwallet.core.domain.instants import utc_micros

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every pair of Crockford digits, indexed by the 10 bits they encode: 5 look-ups make a time part.
_PAIRS = tuple(high + low for high in _CROCKFORD for low in _CROCKFORD)
# A random byte -> the Crockford digit of its low 5 bits: 16 bytes make the 80-bit random part.
_DIGIT_OF_BYTE = bytes.maketrans(
    bytes(range(256)), bytes(ord(_CROCKFORD[byte & 31]) for byte in range(256))
)
_RANDOM_DIGITS = 16
_TOP_DIGIT = _CROCKFORD[-1]
_NEXT_DIGIT = dict(pairwise(_CROCKFORD))
_DIGITS = {digit: value for value, digit in enumerate(_CROCKFORD)}
_LENGTH = 26
_TIME_DIGITS = 10  # 50 bits: the 48 of the milliseconds and the 2 unused ones above them

_POOLED_IDS = 256  # random parts drawn from the system at once

_lock = threading.Lock()
# The one piece of state that makes ids monotonic: the last id's millisecond and random part.
_last_millis = -1
_last_random = ""
_time_part: tuple[int, str] = (-1, "")  # the last millisecond encoded, and its 10 digits
# Random digits not used yet (under `_lock`), and where the next id's begin.
_random_pool = ""
_random_next = 0


def _after_fork() -> None:
    """A forked child must not make the ids its parent makes: not from the same pool of random
    digits, nor by counting up from the same last id (the parent's next ids in that millisecond
    would be the same). Its ids then follow its own, as ids of different processes do. Nor may
    it wait on a lock held, at the fork, by a thread of its parent's that it does not have."""
    global _lock, _random_pool, _random_next, _last_millis, _last_random  # noqa: PLW0603
    _lock = threading.Lock()
    _random_pool, _random_next = "", 0
    _last_millis, _last_random = -1, ""


os.register_at_fork(after_in_child=_after_fork)


def new_id(now: datetime) -> str:
    """A 26-character ULID: 48 bits of milliseconds (10 digits), then 80 random bits (16)."""
    global _last_millis, _last_random, _random_pool, _random_next  # noqa: PLW0603 - the state above
    millis = _millisecond(now)
    with _lock:
        start = _random_next
        if start == len(_random_pool):
            pooled = os.urandom(_RANDOM_DIGITS * _POOLED_IDS).translate(_DIGIT_OF_BYTE)
            _random_pool, start = pooled.decode("ascii"), 0
        _random_next = start + _RANDOM_DIGITS
        random = _random_pool[start : start + _RANDOM_DIGITS]
        if millis == _last_millis and random <= _last_random:
            millis, random = _count_up(millis, _last_random)  # same millisecond: last id + 1
        _last_millis, _last_random = millis, random
        return _time_digits_of(millis) + random


def _millisecond(moment: datetime) -> int:
    """The milliseconds since the epoch of `moment` (integer arithmetic: exact for any date; a
    use case's one `now` converted once, by `utc_micros`)."""
    return utc_micros(moment) // 1000


def _time_digits_of(millis: int) -> str:
    """The 10 digits of `millis`, encoded once per millisecond: the last one is kept, and an
    entry's check (`made_at`) asks for the millisecond its id was just made in."""
    global _time_part  # noqa: PLW0603 - a cache, replaced whole (one tuple), so thread-safe
    encoded_millis, time_digits = _time_part
    if encoded_millis != millis:
        time_digits = _time_digits(millis)
        _time_part = (millis, time_digits)
    return time_digits


def _count_up(millis: int, random: str) -> tuple[int, str]:
    """The id after (`millis`, `random`): the random part plus one, carrying into the millisecond
    when it is all top digits (as adding one to the whole 128-bit number would)."""
    kept = random.rstrip(_TOP_DIGIT)
    if not kept:
        return millis + 1, "0" * _RANDOM_DIGITS
    return millis, kept[:-1] + _NEXT_DIGIT[kept[-1]] + "0" * (_RANDOM_DIGITS - len(kept))


def first_id_of(moment: datetime) -> str:
    """The lowest id of `moment`'s millisecond: no id made in it or later sorts before this one,
    every id made earlier sorts before it."""
    return _time_digits(_millisecond(moment)) + "0" * _RANDOM_DIGITS


def is_id(text: str) -> bool:
    """Whether `text` is shaped like an id this wallet makes (26 of Crockford's digits): what a
    page cursor or a path's id must be before it is looked up."""
    return len(text) == _LENGTH and all(digit in _DIGITS for digit in text)


def millisecond_of(made: str) -> int:
    """The millisecond since the epoch that the id `made` was made in (ValueError if it is no
    ULID)."""
    if len(made) != _LENGTH:
        raise ValueError(f"{made!r} is not a 26-character ULID")
    millis = 0
    for digit in made[:_TIME_DIGITS]:
        if (value := _DIGITS.get(digit)) is None:
            raise ValueError(f"{made!r} is not a ULID")
        millis = (millis << 5) | value
    return millis


def made_at(made: str, moment: datetime) -> bool:
    """Whether the id `made` is a ULID made in `moment`'s millisecond: its time digits are the
    millisecond's (a text comparison; every entry is checked, right after its id was made)."""
    return len(made) == _LENGTH and made.startswith(_time_digits_of(_millisecond(moment)))


def _time_digits(millis: int) -> str:
    return "".join([_PAIRS[(millis >> shift) & 0x3FF] for shift in (40, 30, 20, 10, 0)])
