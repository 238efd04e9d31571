"""What every handler shares: who is calling (a Bearer token), the caller's Idempotency-Key, an
amount typed as a decimal string, the one service call in a worker thread, and times as text.

Handler groups (`server.app.Api` and the mixins in `server.atm`, `server.accounts`) inherit
`Handlers`, so each handler is: read the request strictly, call one service method, render.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from mwallet.core.domain.money import Money
from mwallet.core.domain.sessions import TokenPair
from mwallet.core.domain.users import Principal
from mwallet.core.errors import quoted
from mwallet.core.services.wallet_service import WalletService
from mwallet.render.values import when, when_or_none
from mwallet.server.limits import InFlight
from mwallet.server.problems import Problem

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)


class Handlers:
    service: WalletService
    in_flight: InFlight

    async def _caller(self, request: Request) -> Principal:
        """The person or terminal behind the request's Bearer access token."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem(401, "not_authenticated", "send Authorization: Bearer <access token>")
        return await run_in_threadpool(
            lambda: self.service.authenticate(access_token=token.strip())
        )

    async def _own(self, request: Request) -> Principal:
        """The caller, who must be the owner of the `{user_id}` in the path."""
        caller = await self._caller(request)
        if request.path_params["user_id"] != caller.user_id:
            raise Problem(403, "permission_denied", "this is another person's wallet")
        return caller

    def _money(self, text: str) -> Money:
        return self.service.parse_money(text)

    async def _call(self, call: Callable[[], T]) -> T:
        """One service call, off the event loop (the services block on the database)."""
        return await run_in_threadpool(call)

    async def _moving(self, caller: Principal, key: str, call: Callable[[], T]) -> T:
        """A money-moving service call under the caller's Idempotency-Key: one at a time per
        (caller, key) in this process (409 while one runs); across processes the database's
        idempotency claim makes the second wait for the first and then replay its result."""
        with self.in_flight.claim(caller.user_id, key):
            return await self._call(call)


def idempotency_key(request: Request) -> str:
    """The Idempotency-Key of a request that moves money (required), scoped to the caller by
    the services (keys are kept per person)."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        raise Problem(400, "idempotency_key_missing", "send an Idempotency-Key header")
    return key


def choice(kind: type[E], name: str, value: str | None, default: E) -> E:
    """A field that takes one of an enumeration's values."""
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise Problem(400, "invalid_input", f"{name} is one of: {allowed}") from None


def strict_query(
    request: Request, allowed: frozenset[str], *, repeatable: frozenset[str] = frozenset()
) -> dict[str, str]:
    """The query's parameters: only those `allowed`, each once (but the `repeatable` ones, read
    with `getlist`); a typo is an error, not a filter silently ignored."""
    names = [name for name, _ in request.query_params.multi_items()]
    unknown = sorted(set(names) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise Problem(400, "invalid_input", f"unknown query parameter {quoted(unknown[0])} "
                      f"(this endpoint takes: {known})")  # fmt: skip
    repeated = sorted({name for name in names if names.count(name) > 1} - repeatable)
    if repeated:
        raise Problem(400, "invalid_input", f"{repeated[0]} is given more than once")
    return dict(request.query_params)


# Query numbers are counts and days: any of more digits than this is out of every range, and is
# read as this (its sign kept), for the services to refuse in their own words.
_LONGEST_NUMBER = 9
_OUT_OF_RANGE = 1_000_000_000


def query_number(request: Request, name: str, default: int) -> int:
    """`?name=N`, a whole number: the services check its range and say what it is, as they do
    for the CLI's options (`-1` and `10^9` are out of range, not "not a number")."""
    text = request.query_params.get(name)
    if text is None:
        return default
    digits = text.removeprefix("-")
    if not digits.isascii() or not digits.isdigit():
        raise Problem(400, "invalid_input", f"{name} is a whole number")
    if len(digits) > _LONGEST_NUMBER:  # beyond every range: not worth reading whole
        return -_OUT_OF_RANGE if text.startswith("-") else _OUT_OF_RANGE
    return int(text)


def query_limit(request: Request, default: int = 20) -> int:
    """`?limit=N` (the services check its range)."""
    return query_number(request, "limit", default)


def query_flag(request: Request, name: str) -> bool:
    text = request.query_params.get(name, "false").lower()
    if text not in ("true", "false"):
        raise Problem(400, "invalid_input", f"{name} is true or false")
    return text == "true"


def tokens_json(pair: TokenPair) -> dict[str, Any]:
    return {
        "token_type": "Bearer",
        "access_token": pair.access_token,
        "access_expires_at": when(pair.access_expires_at),
        "refresh_token": pair.refresh_token,
        "refresh_expires_at": when_or_none(pair.refresh_expires_at),
    }
