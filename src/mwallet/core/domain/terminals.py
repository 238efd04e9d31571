"""Terminals: the ATMs and agents where withdrawals are paid out in cash.

An ATM is an OAuth client (`core.domain.clients`) with cassettes of notes; an agent is a user with
the agent role who pays out of their own cash and is paid back in e-money (their float). A
terminal that tries too many unknown codes is locked for a while (brute-force protection).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from mwallet.core.domain.withdrawals import (
    TERMINAL_LOCK,
    TERMINAL_MAX_UNKNOWN_CODES,
    TERMINAL_WINDOW,
    Channel,
)


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
