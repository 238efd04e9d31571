"""Login throttling: after five failed logins in a row a phone number is locked for 30 minutes.

Counted per phone number, registered or not, so a lockout reveals nothing about who has a wallet.
PCI DSS 8.3.4 asks for a lock after at most 10 attempts, for at least 30 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_FAILURES = 5
LOCK_DURATION = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class LoginThrottle:
    failures: int = 0
    locked_until: datetime | None = None

    def locked_at(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def after_failure(self, now: datetime) -> LoginThrottle:
        # A lock that has run out starts a fresh count.
        previous = (
            0 if self.locked_until is not None and now >= self.locked_until else self.failures
        )
        failures = previous + 1
        if failures >= MAX_FAILURES:
            return LoginThrottle(failures, now + LOCK_DURATION)
        return LoginThrottle(failures, None)
