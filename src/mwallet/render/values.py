"""The two ways a value is written in every document: a time (RFC 3339, UTC, seconds, `Z`) and
an amount (a decimal string in its currency's minor units, never a float)."""

from __future__ import annotations

from datetime import datetime

_SCALE = {exponent: 10**exponent for exponent in range(1, 5)}


def when(moment: datetime) -> str:
    return str(moment.isoformat(timespec="seconds").replace("+00:00", "Z"))


def when_or_none(moment: datetime | None) -> str | None:
    return when(moment) if moment is not None else None


def money(minor: int, currency: str) -> str:
    from mwallet.core.domain.money import Money

    return Money(minor, currency).to_decimal_string()


def decimal(minor: int, exponent: int) -> str:
    """Minor units as a plain decimal string ("-12.50"), as `Money.to_decimal_string` writes
    them, without building a Money for each of a statement's lines."""
    if exponent == 0:
        return str(minor)
    whole, fraction = divmod(-minor if minor < 0 else minor, _SCALE[exponent])
    return f"{'-' if minor < 0 else ''}{whole}.{fraction:0{exponent}d}"
