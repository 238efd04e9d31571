"""The HTTP services on Starlette: the same `WalletService` the CLI and the terminal app call.

`create_app(service, services=…)` mounts all services, or only the named ones (auth, wallet,
payments, atm, notifications, reports; health is always there), so one process can serve
everything or several processes can each serve a part against one database. Handlers are thin:
read the request strictly (`server.body`), call one service method in a worker thread
(`server.base`), render JSON (amounts as decimal strings, the documents of `mwallet.render`);
every error is problem+json (`server.problems`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from mwallet.core.domain.device_grants import INTERVAL_SECONDS
from mwallet.core.domain.transfers import Transfer
from mwallet.core.errors import WalletError
from mwallet.core.services.wallet_service import WalletService
from mwallet.render.users import user_json
from mwallet.render.values import when as _when
from mwallet.server import openapi
from mwallet.server.accounts import AccountHandlers
from mwallet.server.admin import AdminHandlers
from mwallet.server.atm import AtmHandlers
from mwallet.server.base import Handlers, idempotency_key, strict_query, tokens_json
from mwallet.server.body import json_object
from mwallet.server.device import DeviceHandlers
from mwallet.server.limits import DEFAULT_RATE, InFlight, RateLimit, RateLimiter
from mwallet.server.metrics import CONTENT_TYPE as METRICS_TYPE
from mwallet.server.metrics import Metrics
from mwallet.server.people import PeopleHandlers, payment_json, payment_status
from mwallet.server.problems import Problem, from_error, problem
from mwallet.server.reports import ReportHandlers

__all__ = ["RATE_LIMITED", "SERVICES", "RateLimit", "create_app"]
SERVICES = ("auth", "wallet", "payments", "atm", "notifications", "reports")
Handler = Callable[[Request], Awaitable[Response]]
# The routes that guess secrets: each client address may call each this often (per process).
RATE_LIMITED = frozenset(
    {
        "/auth/login",
        "/auth/password",
        "/oauth/token",
        "/oauth/device_authorization",
        "/device",
        "/atm/validate-token",
    }
)


class UlidConvertor(Convertor[str]):
    """A path segment that is one of the wallet's ids (a ULID): `/payments/{payment_id:ulid}`
    does not take `/payments/bill`, whose GET is then the 405 it should be."""

    regex = "[0-9A-HJKMNP-TV-Z]{26}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("ulid", UlidConvertor())


class PhoneConvertor(Convertor[str]):
    """A phone number as typed, never empty: `/admin/users/by-phone/{phone:phone}` takes an
    escaped `/` (`84%2F1234567`, a malformed number: 400) where the default segment would miss
    the route, yet no number at all (`/admin/users/by-phone/`) is no endpoint (404), and no
    trailing-slash redirect leads to one (`path`'s `.*` would do both)."""

    regex = ".+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("phone", PhoneConvertor())


def create_app(
    service: WalletService,
    *,
    services: Iterable[str] = SERVICES,
    callback_secrets: Mapping[str, str] | None = None,
    relay_inbox: bool = False,
    rate_limit: RateLimit | None = DEFAULT_RATE,
    monotonic: Callable[[], float] = time.monotonic,
    device_interval: int = INTERVAL_SECONDS,
) -> Starlette:
    """`callback_secrets`: each HTTP payment provider's shared secret, by provider name.
    `relay_inbox`: the embedded mode (no broker): reading the inbox relays waiting events first,
    as `mwallet inbox` does. `rate_limit`: of each client address on each of RATE_LIMITED (None:
    no limit), in this process (`server.limits`); `monotonic`: the limiter's clock.
    `device_interval`: seconds a device waits between polls for its tokens (RFC 8628)."""
    chosen = set(services)
    unknown = chosen - set(SERVICES)
    if unknown:
        raise ValueError(f"unknown service(s): {', '.join(sorted(unknown))}")
    api = Api(service, dict(callback_secrets or {}), relay_inbox=relay_inbox)
    api.device_interval = device_interval
    api.description = openapi.document(sorted(chosen))
    routes = [
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/readyz", api.readyz, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        Route("/metrics", api.metrics, methods=["GET"]),
    ]
    if "auth" in chosen:
        routes += [
            Route("/auth/register", api.register, methods=["POST"]),
            Route("/auth/login", api.login, methods=["POST"]),
            Route("/auth/refresh", api.refresh, methods=["POST"]),
            Route("/auth/me", api.me, methods=["GET"]),
            Route("/admin/users/by-phone/{phone:phone}", api.user_by_phone, methods=["GET"]),
            Route("/admin/users/role", api.set_role, methods=["POST"]),
            Route("/admin/users/tier", api.set_tier, methods=["POST"]),
            Route("/auth/password", api.change_password, methods=["POST"]),
            Route("/auth/logout", api.logout, methods=["POST"]),
            Route("/.well-known/jwks.json", api.jwks, methods=["GET"]),
            Route("/oauth/token", api.oauth_token, methods=["POST"]),
            Route("/oauth/device_authorization", api.device_authorization, methods=["POST"]),
            Route("/device", api.device_page, methods=["GET"], name="device_page"),
            Route("/device", api.device_decide, methods=["POST"]),
            Route("/auth/2fa", api.two_factor_status, methods=["GET"]),
            Route("/auth/2fa", api.two_factor_begin, methods=["POST"]),
            Route("/auth/2fa/confirm", api.two_factor_confirm, methods=["POST"]),
            Route("/auth/2fa/disable", api.two_factor_disable, methods=["POST"]),
        ]
    if "wallet" in chosen:
        routes += [
            Route("/wallet/{user_id}/balance", api.balance, methods=["GET"]),
            Route("/wallet/{user_id}/transfer", api.transfer, methods=["POST"]),
            Route("/wallet/{user_id}/topup", api.topup, methods=["POST"]),
            Route("/wallet/{user_id}/quote", api.quote, methods=["GET"]),
            Route("/wallet/{user_id}/limits", api.limits, methods=["GET"]),
            Route("/wallet/{user_id}/tariffs", api.tariffs, methods=["GET"]),
            Route("/admin/wallets/status", api.set_wallet_status, methods=["POST"]),
        ]
    if "payments" in chosen:
        routes += [
            Route("/payments/bill", api.pay_bill, methods=["POST"]),
            Route("/payments/topup", api.airtime, methods=["POST"]),
            Route("/payments/callback/{provider}", api.callback, methods=["POST"]),
            Route("/payments/card-topup", api.card_topup, methods=["POST"]),
            Route("/payments/billers", api.billers, methods=["GET"]),
            Route("/payments", api.payments, methods=["GET"]),
            Route("/payments/{payment_id:ulid}", api.payment, methods=["GET"]),
        ]
    if "atm" in chosen:
        routes += [
            Route("/atm/withdrawal-request", api.request_withdrawal, methods=["POST"]),
            Route("/atm/validate-token", api.validate_token, methods=["POST"]),
            Route("/atm/withdrawals", api.withdrawals, methods=["GET"]),
            Route("/atm/withdrawals/{withdrawal_id}/dispense", api.dispense_withdrawal,
                  methods=["POST"]),
            Route("/atm/withdrawals/{withdrawal_id}/confirm", api.confirm_withdrawal,
                  methods=["POST"]),
            Route("/atm/withdrawals/{withdrawal_id}/reverse", api.reverse_withdrawal,
                  methods=["POST"]),
            Route("/atm/withdrawals/{withdrawal_id}/cancel", api.cancel_withdrawal,
                  methods=["POST"]),
        ]  # fmt: skip
    if "notifications" in chosen:
        routes += [
            Route("/notifications", api.inbox, methods=["GET"]),
            Route("/notifications/preferences", api.preferences, methods=["GET"]),
            Route("/notifications/preferences", api.set_preferences, methods=["PUT"]),
            Route("/notifications/{notification_id}/read", api.mark_read, methods=["POST"]),
        ]
    if "reports" in chosen:
        routes += [
            Route("/reports/transactions/{user_id}", api.transactions, methods=["GET"]),
            Route("/reports/statement/{user_id}", api.statement, methods=["GET"]),
            Route("/reports/stats/{user_id}", api.usage_stats, methods=["GET"]),
            Route("/reports/trends/{user_id}", api.usage_trends, methods=["GET"]),
            Route("/admin/reports/volumes", api.volumes_report, methods=["GET"]),
            Route("/admin/reports/active", api.active_report, methods=["GET"]),
            Route("/admin/reports/fees", api.fees_report, methods=["GET"]),
            Route("/admin/reports/cash", api.cash_report, methods=["GET"]),
            Route("/admin/reports/holds", api.holds_report, methods=["GET"]),
            Route("/admin/reports/trial-balance", api.trial_balance_report, methods=["GET"]),
        ]
    limiter = RateLimiter(rate_limit, clock=monotonic) if rate_limit is not None else None
    app = Starlette(
        routes=[_guarded(route, limiter if route.path in RATE_LIMITED else None, api.counts)
                for route in routes],
        exception_handlers={404: _not_found, 405: _not_allowed},
    )  # fmt: skip
    app.state.in_flight = api.in_flight
    return app


def _guarded(route: Route, limiter: RateLimiter | None, counts: Metrics) -> Route:
    """Every handler's domain and HTTP errors as problem+json; the rate limit of the routes that
    guess secrets (passwords, client secrets, withdrawal codes and PINs); the metrics."""
    endpoint = route.endpoint

    async def guarded(request: Request) -> Response:
        started = time.perf_counter()
        status = 500  # unless an answer comes back
        try:
            answer = await _answer(request)
            status = answer.status_code
            return answer
        finally:
            counts.observe(request.method, route.path, status, time.perf_counter() - started)

    async def _answer(request: Request) -> Response:
        try:
            if limiter is not None:
                limiter.take(request.client.host if request.client else "?", route.path)
            return await endpoint(request)  # type: ignore[no-any-return]
        except Problem as refusal:
            return refusal.response()
        except WalletError as error:
            return from_error(error)

    return Route(route.path, guarded, methods=list(route.methods or []), name=route.name)


async def _not_found(request: Request, exc: Exception) -> Response:
    return problem(404, "not_found", f"no endpoint {request.url.path}")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    """405 with the `Allow` header RFC 9110 requires: every method of every route of the path
    (Starlette's own names only the first route's, and a path may have one route per method)."""
    allowed = {
        method
        for route in request.app.router.routes
        if isinstance(route, Route) and route.matches(request.scope)[0] is not Match.NONE
        for method in route.methods or ()
    }
    refusal = problem(405, "method_not_allowed", f"{request.method} is not allowed here")
    refusal.headers["Allow"] = ", ".join(sorted(allowed))
    return refusal


class Api(
    DeviceHandlers,
    PeopleHandlers,
    AccountHandlers,
    AdminHandlers,
    AtmHandlers,
    ReportHandlers,
    Handlers,
):
    def __init__(
        self, service: WalletService, callback_secrets: dict[str, str], *, relay_inbox: bool
    ) -> None:
        self.service = service
        self.callback_secrets = callback_secrets
        self.relay_inbox = relay_inbox
        self.in_flight = InFlight()
        self.description: dict[str, Any] = {}
        self.counts = Metrics()

    # --- health --------------------------------------------------------------------------
    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        settings = await run_in_threadpool(self.service.ready)
        return JSONResponse(
            {"status": "ready", "currency": settings.currency, "region": settings.region}
        )

    async def metrics(self, request: Request) -> Response:
        return Response(self.counts.render(), media_type=METRICS_TYPE)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(self.description, headers={"Cache-Control": "public, max-age=300"})

    # --- auth --------------------------------------------------------------------------
    async def register(self, request: Request) -> Response:
        body = await json_object(
            request,
            required={"phone": str, "name": str, "password": str},
            optional={"email": str},
        )
        digits = "".join(ch for ch in body["phone"] if ch.isalnum())[:40]
        # No header: the number is the key. An empty one is the caller's, for the service to refuse.
        key = request.headers.get("Idempotency-Key", f"register-{digits}")
        user = await run_in_threadpool(
            lambda: self.service.register(
                phone=body["phone"], display_name=body["name"], email=body.get("email"),
                password=body["password"], idempotency_key=key,
            )
        )  # fmt: skip
        return JSONResponse(user_json(user), status_code=201)

    async def login(self, request: Request) -> Response:
        body = await json_object(
            request, required={"phone": str, "password": str},
            optional={"code": str, "device_id": str},
        )  # fmt: skip
        result = await run_in_threadpool(
            lambda: self.service.login(
                phone=body["phone"], password=body["password"], code=body.get("code"),
                device=body.get("device_id"),
            )
        )  # fmt: skip
        return JSONResponse({"user_id": result.principal.user_id, **tokens_json(result.tokens)})

    async def refresh(self, request: Request) -> Response:
        body = await json_object(request, required={"refresh_token": str})
        pair = await run_in_threadpool(
            lambda: self.service.refresh(refresh_token=body["refresh_token"])
        )
        return JSONResponse(tokens_json(pair))

    async def logout(self, request: Request) -> Response:
        body = await json_object(request, required={"refresh_token": str})
        await run_in_threadpool(lambda: self.service.logout(refresh_token=body["refresh_token"]))
        return Response(status_code=204)

    async def jwks(self, request: Request) -> Response:
        document = await run_in_threadpool(self.service.jwks)
        return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})

    # --- wallet --------------------------------------------------------------------------
    async def balance(self, request: Request) -> Response:
        caller = await self._own(request)
        strict_query(request, frozenset())
        found = await run_in_threadpool(lambda: self.service.balance(caller))
        return JSONResponse(
            {
                "user_id": found.user_id,
                "currency": found.balance.currency,
                "balance": found.balance.to_decimal_string(),
                "available": found.available.to_decimal_string(),
            }
        )

    async def transfer(self, request: Request) -> Response:
        caller = await self._own(request)
        key = idempotency_key(request)
        body = await json_object(
            request,
            required={"to": str, "amount": str},
            optional={"note": str, "code": str},
        )
        done = await self._moving(
            caller, key,
            lambda: self.service.transfer(
                caller, to_phone=body["to"], amount=self._money(body["amount"]),
                note=body.get("note"), idempotency_key=key, code=body.get("code"),
            )
        )  # fmt: skip
        return JSONResponse(_transfer(done), status_code=201)

    # --- payments --------------------------------------------------------------------------
    async def pay_bill(self, request: Request) -> Response:
        caller = await self._caller(request)
        key = idempotency_key(request)
        body = await json_object(
            request,
            required={"biller": str, "reference": str, "amount": str},
            optional={"code": str},
        )
        paid = await self._moving(
            caller, key,
            lambda: self.service.pay_bill(
                caller, biller_id=body["biller"], reference=body["reference"],
                amount=self._money(body["amount"]), idempotency_key=key, code=body.get("code"),
            )
        )  # fmt: skip
        return JSONResponse(payment_json(paid), status_code=payment_status(paid))

    async def airtime(self, request: Request) -> Response:
        caller = await self._caller(request)
        key = idempotency_key(request)
        body = await json_object(
            request, required={"amount": str}, optional={"phone": str, "code": str}
        )
        paid = await self._moving(
            caller, key,
            lambda: self.service.pay_airtime(
                caller, phone=body.get("phone"), amount=self._money(body["amount"]),
                idempotency_key=key, code=body.get("code"),
            )
        )  # fmt: skip
        return JSONResponse(payment_json(paid), status_code=payment_status(paid))

    async def callback(self, request: Request) -> Response:
        """A payment provider's signed result for one payment; settles it once."""
        from mwallet.providers.http import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_callback

        provider = request.path_params["provider"]
        secret = self.callback_secrets.get(provider)
        if secret is None:
            raise Problem(404, "unknown_provider", f"no provider {provider!r} sends callbacks here")
        raw = await request.body()
        if len(raw) > 64 * 1024:
            raise Problem(413, "body_too_large", "a callback is at most 64 KiB")
        found = verify_callback(
            secret, raw, timestamp=request.headers.get(TIMESTAMP_HEADER),
            signature=request.headers.get(SIGNATURE_HEADER),
        )  # fmt: skip
        settled = await run_in_threadpool(
            lambda: self.service.settle_payment(payment_id=found.payment_id, answer=found.answer)
        )
        return JSONResponse({"payment_id": found.payment_id, "settled": settled is not None})


def _transfer(done: Transfer) -> dict[str, Any]:
    return {
        "transfer_id": done.id,
        "from": done.sender_phone,
        "to": done.recipient_phone,
        "amount": done.amount.to_decimal_string(),
        "fee": done.fee.to_decimal_string(),
        "currency": done.amount.currency,
        "note": done.note,
        "created_at": _when(done.created_at),
    }
