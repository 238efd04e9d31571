"""Login throttling: after five failed logins in a row a phone number is locked for 30 minutes.

Counted per phone number, registered or not, so a lockout reveals nothing about who has a wallet.
PCI DSS 8.3.4 asks for a lock after at most 10 attempts, for at least 30 minutes.

An attempt is counted *before* its password is checked (`reserve`), under the number's row lock:
however many guesses arrive at once, at most five are ever checked. A check that fails confirms
the count (`confirm_failure`, which locks at five); one that succeeds clears it, unless the number
was locked meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

MAX_FAILURES = 5
LOCK_DURATION = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class LoginThrottle:
    failures: int = 0  # attempts counted since the last success or lock, checked or in flight
    locked_until: datetime | None = None
    refusals: int = 0  # attempts refused during the current lock

    def locked_at(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def reserve(self, now: datetime) -> LoginThrottle | None:
        """Count one more attempt, or None when the number may not try now."""
        if self.locked_at(now):
            return None
        expired = self.locked_until is not None  # and not locked: the lock has run out
        failures = 0 if expired else self.failures
        if failures >= MAX_FAILURES:  # five checks already in flight
            return None
        return LoginThrottle(failures + 1, None, 0)

    def confirm_failure(self, now: datetime) -> LoginThrottle:
        """The checked password was wrong: at five failures in a row the number locks."""
        if self.failures >= MAX_FAILURES and not self.locked_at(now):
            return LoginThrottle(self.failures, now + LOCK_DURATION, 0)
        return self

    def release(self) -> LoginThrottle:
        """Give back one reserved attempt that turned out not to be a guess (its secret was never
        checked, or was right but what it guarded failed). A lock stays as it is."""
        if self.locked_until is not None or self.failures == 0:
            return self
        return replace(self, failures=self.failures - 1)

    def refused(self, now: datetime) -> LoginThrottle:
        """The state after refusing an attempt. Five attempts counted but none confirmed (still
        in flight, or lost to a crash before their result was recorded) become a real lock that
        runs out, so a number can never be left refused for good."""
        if self.locked_at(now):
            return replace(self, refusals=self.refusals + 1)
        return LoginThrottle(self.failures, now + LOCK_DURATION, self.refusals + 1)
