"""What a person's client needs around the seed's endpoints (the remote CLI among them): who the
token belongs to (and, for admins and auditors, who a phone number belongs to), a password
change, a fee quote, the fee table and what is left of their limits, their notification
preferences, the billers, their payments, and a top-up from a card or bank provider."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mwallet.core.domain.payments import Payment
from mwallet.core.domain.tariffs import Movement
from mwallet.render.notifications import preferences_json
from mwallet.render.payments import biller_json
from mwallet.render.tariffs import allowance_json, quote_json, tariffs_json
from mwallet.render.users import user_json
from mwallet.render.values import when
from mwallet.server.base import Handlers, idempotency_key, query_limit, strict_query
from mwallet.server.body import json_object
from mwallet.server.problems import Problem


class PeopleHandlers(Handlers):
    # --- auth -----------------------------------------------------------------------------------
    async def me(self, request: Request) -> Response:
        caller = await self._caller(request)
        strict_query(request, frozenset())
        return JSONResponse({
            "user_id": caller.user_id, "phone": caller.phone, "display_name": caller.display_name,
            "role": caller.role.value, "scopes": sorted(caller.scopes),
        })  # fmt: skip

    async def user_by_phone(self, request: Request) -> Response:
        """An admin's or an auditor's look-up of a person by phone (as `mwallet admin users
        show`): how the remote CLI's `--user PHONE` finds the user id the reports' paths take.
        Anyone else is refused before the person is looked up, so a 403 says nothing about
        whether the number is registered."""
        caller = await self._caller(request)
        strict_query(request, frozenset())
        phone = request.path_params["phone"]
        user = await self._call(lambda: self.service.show_user(actor=caller, phone=phone))
        return JSONResponse(user_json(user))

    async def change_password(self, request: Request) -> Response:
        caller = await self._caller(request)
        body = await json_object(request, required={"current": str, "new": str})
        await self._call(
            lambda: self.service.change_password(caller, current=body["current"], new=body["new"])
        )
        return Response(status_code=204)

    # --- fees and limits ------------------------------------------------------------------------
    async def quote(self, request: Request) -> Response:
        caller = await self._own(request)
        query = strict_query(request, frozenset({"movement", "amount"}))
        if set(query) != {"movement", "amount"}:
            raise Problem(400, "invalid_input", "send ?movement=…&amount=… (and nothing else)")
        movement = Movement.parse(query["movement"])
        amount = self._money(query["amount"])
        found = await self._call(lambda: self.service.quote(caller, movement, amount))
        return JSONResponse(quote_json(found))

    async def limits(self, request: Request) -> Response:
        caller = await self._own(request)
        strict_query(request, frozenset())
        tier, families = await self._call(lambda: self.service.my_limits(caller))
        return JSONResponse({
            "tier": tier.value, "currency": self.service.settings.currency,
            "limits": {family.value: [allowance_json(one) for one in allowances]
                       for family, allowances in families.items()},
        })  # fmt: skip

    async def tariffs(self, request: Request) -> Response:
        caller = await self._own(request)
        strict_query(request, frozenset())
        found = await self._call(lambda: self.service.tariffs(caller))
        currency = self.service.settings.currency
        return JSONResponse({"currency": currency, "tariffs": tariffs_json(found, currency)})

    # --- notification preferences ---------------------------------------------------------------
    async def preferences(self, request: Request) -> Response:
        caller = await self._caller(request)
        strict_query(request, frozenset())
        found = await self._call(lambda: self.service.notification_preferences(caller))
        return JSONResponse(preferences_json(found))

    async def set_preferences(self, request: Request) -> Response:
        """Change the fields given (all optional; the ones left out stay as they are)."""
        caller = await self._caller(request)
        body = await json_object(
            request, required={},
            optional={"language": str, "email": bool, "sms": bool, "push": bool},
        )  # fmt: skip
        found = await self._call(
            lambda: self.service.set_notification_preferences(
                caller, language=body.get("language"), email=body.get("email"),
                sms=body.get("sms"), push=body.get("push"),
            )
        )  # fmt: skip
        return JSONResponse(preferences_json(found))

    # --- payments -------------------------------------------------------------------------------
    async def billers(self, request: Request) -> Response:
        caller = await self._caller(request)
        strict_query(request, frozenset())
        found = await self._call(lambda: self.service.billers(caller))
        return JSONResponse({"billers": [biller_json(one) for one in found]})

    async def payments(self, request: Request) -> Response:
        caller = await self._caller(request)
        strict_query(request, frozenset({"limit"}))
        limit = query_limit(request)
        found = await self._call(lambda: self.service.list_payments(caller, limit=limit))
        return JSONResponse({"payments": [payment_json(one) for one in found]})

    async def payment(self, request: Request) -> Response:
        caller = await self._caller(request)
        strict_query(request, frozenset())
        found, biller = await self._call(
            lambda: self.service.payment(caller, payment_id=request.path_params["payment_id"])
        )
        return JSONResponse({"payment": payment_json(found), "biller": biller_json(biller)})

    async def card_topup(self, request: Request) -> Response:
        caller = await self._caller(request)
        key = idempotency_key(request)
        body = await json_object(
            request, required={"source": str, "amount": str}, optional={"reference": str}
        )
        paid = await self._moving(
            caller, key,
            lambda: self.service.top_up_from(
                caller, source=body["source"], reference=body.get("reference", ""),
                amount=self._money(body["amount"]), idempotency_key=key,
            ),
        )  # fmt: skip
        return JSONResponse(payment_json(paid), status_code=payment_status(paid))


def payment_json(found: Payment) -> dict[str, Any]:
    return {
        "payment_id": found.id,
        "product": found.product.value,
        "biller": found.biller_id,
        "reference": found.reference,
        "amount": found.amount.to_decimal_string(),
        "fee": found.fee.to_decimal_string(),
        "currency": found.amount.currency,
        "state": found.state.value,
        "provider_ref": found.provider_ref,
        "reason": found.reason,
        "created_at": when(found.created_at),
        "updated_at": when(found.updated_at),
    }


def payment_status(found: Payment) -> int:
    """201 paid; 202 accepted but not known yet (unknown); 422 declined."""
    return {"succeeded": 201, "unknown": 202, "pending": 202}.get(found.state.value, 422)
