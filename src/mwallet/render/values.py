"""The two ways a value is written in every document: a time (RFC 3339, UTC, seconds, `Z`) and
an amount (a decimal string in its currency's minor units, never a float)."""

from __future__ import annotations

from datetime import datetime

from mwallet.core.domain.money import decimal_string as decimal

__all__ = ["decimal", "money", "when", "when_or_none"]


def when(moment: datetime) -> str:
    return str(moment.isoformat(timespec="seconds").replace("+00:00", "Z"))


def when_or_none(moment: datetime | None) -> str | None:
    return when(moment) if moment is not None else None


def money(minor: int, currency: str) -> str:
    from mwallet.core.domain.money import Money

    return Money(minor, currency).to_decimal_string()
