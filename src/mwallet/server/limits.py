"""Guards of this process: Idempotency-Keys whose request is still running, and rate limits.

Both are in memory, per process. Across processes the database is the defence: a second request
with a key another process is still using waits on the idempotency claim and then replays the
first one's result (or is refused with 422); failed logins, codes and PINs are counted in the
database and lock the account, the terminal or the withdrawal whichever process they came to.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mwallet.server.problems import Problem


class InFlight:
    """The (caller, Idempotency-Key) pairs of requests this process is running now.

    A second request with a pair still running is refused with 409 at once (IETF httpapi
    idempotency-key draft, §2.6), instead of waiting for the first. Across processes the database's
    idempotency claim already makes the second request wait for the first and then replay it.
    """

    def __init__(self) -> None:
        self._running: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @contextmanager
    def claim(self, caller: str, key: str) -> Iterator[None]:
        pair = (caller, key)
        with self._lock:
            if pair in self._running:
                raise Problem(409, "idempotency_key_in_flight",
                              "a request with this Idempotency-Key is still being processed: "
                              "retry in a moment to get its answer", retry_after=1)  # fmt: skip
            self._running.add(pair)
        try:
            yield
        finally:
            with self._lock:
                self._running.discard(pair)

    def running(self, caller: str, key: str) -> bool:
        with self._lock:
            return (caller, key) in self._running


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`burst` requests at once, refilled at `burst` per `per_seconds` (a token bucket)."""

    burst: int
    per_seconds: float

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """`10/60`: ten requests per minute."""
        count, slash, seconds = text.partition("/")
        try:
            limit = cls(int(count), float(seconds))
        except ValueError:
            raise ValueError(f"a rate limit is COUNT/SECONDS, like 10/60, not {text!r}") from None
        if not slash or limit.burst < 1 or not 0 < limit.per_seconds < math.inf:
            raise ValueError(f"a rate limit is COUNT/SECONDS, like 10/60, not {text!r}")
        return limit


DEFAULT_RATE = RateLimit(burst=10, per_seconds=60.0)
MAX_BUCKETS = 100_000  # past this many clients, the fullest (idle) buckets are forgotten


class RateLimiter:
    """A token bucket per (client address, route). In memory and per process: N processes let N
    times the rate through; the core's lockouts (failed logins, unknown codes, wrong PINs, kept in
    the database) are the defence across processes."""

    def __init__(self, limit: RateLimit, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # tokens, at
        self._lock = threading.Lock()

    def take(self, client: str, route: str) -> None:
        """Spend one token, or raise a 429 Problem saying when the next one comes."""
        rate = self.limit.burst / self.limit.per_seconds
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get((client, route), (float(self.limit.burst), now))
            tokens = min(float(self.limit.burst), tokens + (now - at) * rate)
            if tokens < 1:
                self._buckets[(client, route)] = (tokens, now)
                wait = math.ceil((1 - tokens) / rate)
                raise Problem(429, "rate_limited",
                              f"too many requests to {route}: retry in {wait} s",
                              retry_after=wait)  # fmt: skip
            self._buckets[(client, route)] = (tokens - 1, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._forget_full(now, rate)

    def _forget_full(self, now: float, rate: float) -> None:
        """Drop buckets that have refilled: forgetting them changes nothing."""
        for pair, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * rate >= self.limit.burst:
                del self._buckets[pair]
