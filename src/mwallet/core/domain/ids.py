"""Identifiers: time-ordered and random (ULID layout), so ids sort by creation and never collide.

Within one process, ids made in the same millisecond count up from each other (ULID's monotonic
variant), so they keep their creation order even when the clock stands still, as a test's fixed
clock does. Across processes ids only roughly follow time, and transactions commit in any order:
nothing may use an id as a high-water mark ("everything after this id").
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every pair of Crockford digits, indexed by the 10 bits they encode: 13 look-ups make an id.
_PAIRS = tuple(high + low for high in _CROCKFORD for low in _CROCKFORD)
_SHIFTS = tuple(range(120, -1, -10))


_lock = threading.Lock()
_last = 0


def new_id(now: datetime) -> str:
    """A 26-character ULID: 48 bits of milliseconds, then 80 random bits."""
    global _last  # noqa: PLW0603 - the one piece of state that makes ids monotonic
    millis = (now - _EPOCH) // _MILLISECOND  # integer arithmetic: exact for any date
    candidate = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    with _lock:
        if candidate >> 80 == _last >> 80 and candidate <= _last:
            candidate = _last + 1  # same millisecond: count up from the last id
        _last = candidate
    return "".join([_PAIRS[(candidate >> shift) & 0x3FF] for shift in _SHIFTS])
