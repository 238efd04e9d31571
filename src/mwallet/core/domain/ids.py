"""Identifiers: time-ordered and random (ULID layout), so ids sort by creation and never collide."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(now: datetime) -> str:
    """A 26-character ULID: 48 bits of milliseconds, then 80 random bits."""
    millis = (now - _EPOCH) // _MILLISECOND  # integer arithmetic: exact for any date
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_CROCKFORD[index])
    return "".join(reversed(chars))
