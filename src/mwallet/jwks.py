"""The auth service's published keys, fetched over HTTP: the `PublicKeys` adapter of a process
that serves wallet, payments or ATM without the auth service (`mwallet serve --auth-url URL`).

The key set (`GET {auth}/.well-known/jwks.json`) is cached and fetched again:

- when it is older than `max_age` (so a key the auth service stops publishing stops verifying
  here at most `max_age` later), and
- when a token names a `kid` the cache does not hold (a rotation), but never more often than
  once per `min_refresh` seconds: a flood of tokens with made-up kids costs the auth service one
  request per `min_refresh`, not one per token.

The process is ready (`check_ready`, behind `GET /readyz`) once it holds a key set; until then
each probe may try one fetch, under the same `min_refresh`.

Each fetch replaces the whole cache, so a key that is no longer published stops verifying at
once. When a fetch fails the keys fetched before keep verifying (the auth service being down
should not log everyone out); with no key set ever fetched, tokens are refused with
KeysUnavailable (503). The HTTP client is injectable (`httpx.Client`, or Starlette's TestClient
of an auth app in tests).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import httpx

from mwallet.core import tokens
from mwallet.core.errors import InvalidToken, KeysUnavailable

JWKS_PATH = "/.well-known/jwks.json"
MAX_AGE_SECONDS = 300.0  # the auth service's Cache-Control max-age
MIN_REFRESH_SECONDS = 10.0
FETCH_TIMEOUT_SECONDS = 5.0
log = logging.getLogger(__name__)


class Answer(Protocol):
    @property
    def status_code(self) -> int: ...

    def json(self) -> Any: ...


class HttpGet(Protocol):
    """What fetches the key set: an `httpx.Client`, or a Starlette TestClient of an auth app."""

    def get(self, url: str) -> Answer: ...

    def close(self) -> None: ...


class JwksPublicKeys:
    def __init__(
        self,
        auth_url: str,
        *,
        http: HttpGet | None = None,
        max_age: float = MAX_AGE_SECONDS,
        min_refresh: float = MIN_REFRESH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`auth_url`: the auth service's base URL (`http://host:port`)."""
        self.url = auth_url.rstrip("/") + JWKS_PATH
        self._http: HttpGet = http or httpx.Client(timeout=FETCH_TIMEOUT_SECONDS)
        self._max_age = max_age
        self._min_refresh = min_refresh
        self._monotonic = monotonic
        self._keys: dict[str, bytes] | None = None  # replaced whole, never changed in place
        self._fetched_at = 0.0
        self._tried_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0  # how many times the key set was asked for (success or not)

    def verifying_key(self, kid: str, now: datetime) -> bytes | None:
        keys = self._keys
        if keys is not None and kid in keys and not self._stale():
            return keys[kid]  # the common case: no lock, no request
        with self._lock:  # one fetch at a time; the others then read what it got
            keys = self._keys
            if keys is None or kid not in keys or self._stale():
                keys = self._refresh_if_allowed()
        if keys is None:
            raise KeysUnavailable(f"the auth service's keys could not be fetched from {self.url}")
        return keys.get(kid)

    def check_ready(self) -> None:
        """Ready once a key set is held (even an old one: it keeps verifying while the auth
        service is down, as above). With none yet, one fetch is tried, within `min_refresh`: a
        probe every second costs the auth service one request per `min_refresh` at most."""
        if self._keys is not None:
            return
        with self._lock:
            keys = self._keys if self._keys is not None else self._refresh_if_allowed()
        if keys is None:
            raise KeysUnavailable(f"the auth service's keys could not be fetched from {self.url}")

    def _stale(self) -> bool:
        return self._monotonic() - self._fetched_at >= self._max_age

    def _refresh_if_allowed(self) -> dict[str, bytes] | None:
        now = self._monotonic()
        if self._tried_at is not None and now - self._tried_at < self._min_refresh:
            return self._keys
        self._tried_at = now
        self.fetches += 1
        try:
            answer = self._http.get(self.url)
            if answer.status_code != 200:
                raise InvalidToken(f"the auth service answered {answer.status_code}")
            keys = tokens.public_keys_of(answer.json())
        except (httpx.TransportError, ValueError, InvalidToken) as exc:
            # Keep what was fetched before: the auth service down must not refuse every token.
            log.warning("could not fetch the auth service's keys from %s: %s", self.url, exc)
            return self._keys
        self._keys, self._fetched_at = keys, now
        return keys

    def close(self) -> None:
        self._http.close()
