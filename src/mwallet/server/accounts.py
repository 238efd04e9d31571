"""The auth service's OAuth 2.0 token endpoint and two-factor enrolment, the wallet's top-up, and
the notifications service (the in-app inbox).

`POST /oauth/token` (RFC 6749 §4.4 client credentials, §6 refresh) takes a form
(`application/x-www-form-urlencoded`, as RFC 6749 sends it) or the same fields as JSON; a client
may also authenticate with HTTP Basic (`client_secret_basic`). Its errors are problem+json like
every other endpoint's, with RFC 6749's status (400; 401 for `invalid_client`) and RFC 6749's
`error` member besides `type`, so a plain OAuth client library reads them too.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mwallet.core.domain.notifications import Delivery
from mwallet.core.domain.sessions import TokenPair
from mwallet.core.errors import WalletError
from mwallet.render.values import when, when_or_none
from mwallet.server.base import (
    Handlers,
    idempotency_key,
    query_flag,
    query_limit,
    strict_query,
    tokens_json,
)
from mwallet.server.body import form_or_json, json_object
from mwallet.server.device import DEVICE_GRANT
from mwallet.server.problems import Problem, status_of

# Our error codes that RFC 6749 (§5.2) names otherwise; any other 4xx is `invalid_request`.
OAUTH_ERRORS = {
    "invalid_client": "invalid_client",
    "invalid_scope": "invalid_scope",
    "unsupported_grant_type": "unsupported_grant_type",
    "invalid_token": "invalid_grant",
    "token_expired": "invalid_grant",
    "session_expired": "invalid_grant",
    "refresh_token_reused": "invalid_grant",
    "not_authenticated": "invalid_grant",
    # RFC 8628 §3.5, by the same names
    "authorization_pending": "authorization_pending",
    "slow_down": "slow_down",
    "access_denied": "access_denied",
    "expired_token": "expired_token",
}
GRANT_FIELDS = {
    "client_credentials": ({"client_id", "client_secret"}, {"scope"}),
    "refresh_token": ({"refresh_token"}, {"scope"}),
    DEVICE_GRANT: ({"device_code"}, {"client_id", "device_id"}),
}


class AccountHandlers(Handlers):
    relay_inbox: bool

    # --- OAuth 2.0 token endpoint -------------------------------------------------------------
    async def oauth_token(self, request: Request) -> Response:
        try:
            pair = await self._grant(request)
        except WalletError as error:
            raise _oauth(status_of(error), error.code, error.message) from None
        except Problem as refusal:
            raise _oauth(refusal.status, refusal.code, refusal.detail) from None
        expires_in = (pair.access_expires_at - self.service.clock.now()).total_seconds()
        return JSONResponse(
            {**tokens_json(pair), "expires_in": max(0, int(expires_in))},
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    async def _grant(self, request: Request) -> TokenPair:
        fields = await form_or_json(
            request,
            required={"grant_type"},
            optional={
                "client_id",
                "client_secret",
                "scope",
                "refresh_token",
                "device_code",
                "device_id",
            },
        )
        grant = fields.pop("grant_type")
        if grant not in GRANT_FIELDS:
            raise Problem(400, "unsupported_grant_type",
                          f"grant_type is one of: {', '.join(GRANT_FIELDS)}")  # fmt: skip
        fields.update(_basic_client(request, fields))
        needed, optional = GRANT_FIELDS[grant]
        missing = sorted(needed - set(fields))
        extra = sorted(set(fields) - needed - optional)
        if missing or extra:
            named = f"missing: {', '.join(missing)}" if missing else f"unknown: {', '.join(extra)}"
            raise Problem(400, "invalid_request", f"for grant_type {grant}, {named}")
        if grant == DEVICE_GRANT:
            return await self._call(
                lambda: self.service.device_token(
                    device_code=fields["device_code"], device=fields.get("device_id")
                )
            )
        if grant == "refresh_token":
            return await self._call(
                lambda: self.service.refresh(refresh_token=fields["refresh_token"])
            )
        return await self._call(
            lambda: self.service.client_token(
                client_id=fields["client_id"], client_secret=fields["client_secret"],
                scope=fields.get("scope") or None,
            )
        )  # fmt: skip

    # --- two-factor enrolment ----------------------------------------------------------------
    async def two_factor_begin(self, request: Request) -> Response:
        caller = await self._caller(request)
        await json_object(request, required={}, allow_empty=True)
        enrolment = await self._call(lambda: self.service.begin_two_factor(caller))
        return JSONResponse({"otpauth_uri": enrolment.uri, "secret": enrolment.secret},
                            status_code=201, headers={"Cache-Control": "no-store"})  # fmt: skip

    async def two_factor_confirm(self, request: Request) -> Response:
        caller = await self._caller(request)
        body = await json_object(request, required={"code": str})
        codes = await self._call(lambda: self.service.confirm_two_factor(caller, code=body["code"]))
        return JSONResponse({"enabled": True, "recovery_codes": codes},
                            headers={"Cache-Control": "no-store"})  # fmt: skip

    async def two_factor_disable(self, request: Request) -> Response:
        caller = await self._caller(request)
        body = await json_object(request, required={"code": str})
        await self._call(lambda: self.service.disable_two_factor(caller, code=body["code"]))
        return Response(status_code=204)

    async def two_factor_status(self, request: Request) -> Response:
        caller = await self._caller(request)
        strict_query(request, frozenset())
        found = await self._call(lambda: self.service.two_factor_status(caller))
        return JSONResponse({"enabled": found.enabled, "pending": found.pending,
                             "recovery_codes_left": found.recovery_codes_left,
                             "step_up_amount": self.service.step_up_amount()
                             .to_decimal_string()})  # fmt: skip

    # --- the wallet's top-up -----------------------------------------------------------------
    async def topup(self, request: Request) -> Response:
        caller = await self._own(request)
        key = idempotency_key(request)
        body = await json_object(request, required={"amount": str}, optional={"source": str})
        done = await self._moving(
            caller, key,
            lambda: self.service.topup(
                caller, amount=self._money(body["amount"]),
                source=body.get("source") or "sandbox", idempotency_key=key,
            ),
        )  # fmt: skip
        return JSONResponse(
            {"topup_id": done.id, "source": done.source,
             "amount": done.amount.to_decimal_string(), "currency": done.amount.currency,
             "created_at": when(done.created_at)},
            status_code=201,
        )  # fmt: skip

    # --- notifications -----------------------------------------------------------------------
    async def inbox(self, request: Request) -> Response:
        caller = await self._caller(request)
        strict_query(request, frozenset({"unread", "limit", "before"}))
        unread, limit = query_flag(request, "unread"), query_limit(request)
        before = request.query_params.get("before")
        if self.relay_inbox:  # embedded mode (no broker): waiting events become deliveries now
            await self._call(self.service.relay_notifications)
        found = await self._call(
            lambda: self.service.inbox(caller, unread_only=unread, limit=limit, before=before)
        )
        return JSONResponse({"notifications": [notification_json(one) for one in found]})

    async def mark_read(self, request: Request) -> Response:
        caller = await self._caller(request)
        await json_object(request, required={}, allow_empty=True)
        found = await self._call(
            lambda: self.service.mark_read(
                caller, notification_id=request.path_params["notification_id"]
            )
        )
        return JSONResponse(notification_json(found))


def notification_json(found: Delivery) -> dict[str, Any]:
    return {
        "notification_id": found.id,
        "event_id": found.event_id,
        "channel": found.channel.value,
        "kind": found.kind,
        "to": found.address,
        "title": found.title,
        "body": found.body,
        "state": found.state.value,
        "attempts": found.attempts,
        "created_at": when(found.created_at),
        "sent_at": when_or_none(found.sent_at),
        "read_at": when_or_none(found.read_at),
        "last_error": found.last_error,
    }


def _oauth(status: int, code: str, detail: str) -> Problem:
    """A refusal of the token endpoint: RFC 6749's status and `error` member."""
    error = OAUTH_ERRORS.get(code, "invalid_request" if status < 500 else "server_error")
    if status in (400, 401, 403, 404, 409, 422):  # a body too large (413) or 429 stays so
        status = 401 if error == "invalid_client" else 400
    return Problem(status, code, detail, error=error)


def _basic_client(request: Request, fields: dict[str, str]) -> dict[str, str]:
    """The client's id and secret from `Authorization: Basic` (RFC 6749 §2.3.1), if sent."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return {}
    if "client_id" in fields or "client_secret" in fields:
        raise Problem(400, "invalid_request", "authenticate the client one way, not two")
    try:
        client_id, colon, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Problem(401, "invalid_client", "the Basic credentials are not valid") from None
    if not colon:
        raise Problem(401, "invalid_client", "the Basic credentials are not valid")
    return {"client_id": unquote(client_id), "client_secret": unquote(secret)}
