"""Terminals: the ATMs and agents where withdrawals are paid out in cash.

An ATM is an OAuth client (`core.domain.clients`) with cassettes of notes; an agent is a user with
the agent role who pays out of their own cash and is paid back in e-money (their float). A
terminal that tries too many unknown codes is locked for a while (brute-force protection).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from mwallet.core.domain.money import Money
from mwallet.core.domain.withdrawals import (
    TERMINAL_LOCK,
    TERMINAL_MAX_UNKNOWN_CODES,
    TERMINAL_WINDOW,
    Channel,
)
from mwallet.core.errors import InvalidInput, WalletError, quoted


@dataclass(frozen=True, slots=True)
class Terminal:
    id: str
    kind: Channel
    name: str
    client_id: str | None
    agent_user_id: str | None
    created_at: datetime
    unknown_codes: int = 0
    window_started_at: datetime | None = None
    locked_until: datetime | None = None

    def locked_at(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def after_unknown_code(self, now: datetime) -> Terminal:
        """One more unknown code: counted in a 10-minute window; the fifth locks for 15."""
        fresh = self.window_started_at is None or now - self.window_started_at >= TERMINAL_WINDOW
        count = 1 if fresh else self.unknown_codes + 1
        started = now if fresh else self.window_started_at
        if count >= TERMINAL_MAX_UNKNOWN_CODES:
            return replace(
                self, unknown_codes=0, window_started_at=None, locked_until=now + TERMINAL_LOCK
            )
        return replace(self, unknown_codes=count, window_started_at=started)


MAX_NOTES_PER_LOAD = 10_000  # notes of one denomination in one load


def parse_notes(items: Iterable[str], currency: str) -> dict[int, int]:
    """Notes to load, as typed: `50x100 20x200` (denomination x count, in units of cash) ->
    {denomination in minor units: count}. InvalidInput for anything else."""
    parsed: dict[int, int] = {}
    for item in (part for text in items for part in text.split()):
        denomination, x, count = item.lower().partition("x")
        if not x or not count.isdigit() or not count.isascii():
            raise InvalidInput(f"{quoted(item)}: write notes as DENOMINATIONxCOUNT, e.g. 50x100")
        if len(count) > 6 or not 0 < int(count) <= MAX_NOTES_PER_LOAD:  # len: before int()
            raise InvalidInput(f"{quoted(item)}: load 1 to {MAX_NOTES_PER_LOAD:,} notes of a kind")
        try:
            minor = Money.parse(denomination, currency).minor
        except WalletError as exc:
            raise InvalidInput(f"{quoted(item)}: {exc.message}") from None
        parsed[minor] = parsed.get(minor, 0) + int(count)
    if not parsed:
        raise InvalidInput("say which notes to load, e.g. 50x100")
    return parsed
