"""Instants as the ledger stores them: integer microseconds since the epoch, UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_last_micros: tuple[datetime | None, int] = (None, 0)


def utc_micros(moment: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch (exact for any date).

    The last answer is kept: a use case writes its one `now` into most of its rows and makes its
    ids from it (a transfer: eight times). One tuple, read and replaced whole, so threads sharing
    it see a matching pair; it holds the datetime, so an identical object is the same instant."""
    global _last_micros  # noqa: PLW0603 - a cache, replaced whole (one tuple), so thread-safe
    last, micros = _last_micros
    if moment is not last:
        micros = (moment - _EPOCH) // _MICROSECOND
        _last_micros = (moment, micros)
    return micros


def utc_moment(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)
