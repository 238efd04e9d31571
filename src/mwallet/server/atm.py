"""The ATM service: a customer asks for a cash withdrawal (a hold, a code, a PIN and a signed QR
payload) and may cancel it; a terminal (an ATM's client-credentials token or an agent's own login)
checks a code or QR and the PIN, then confirms the cash was paid out or reverses it.

The same `WalletService` calls the terminal app makes (`mwallet.atm.session`): redeem, dispense
just before the notes are presented (an agent: once the cash was handed over), then complete; or
reverse when they could not be. After `dispense` only the dispenser's word that it presented no
note (`none_presented`) reverses it: a terminal that stopped in between cannot pay twice.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mwallet.core.domain.money import Money
from mwallet.core.domain.withdrawals import Channel, Withdrawal
from mwallet.core.services.withdrawals import IssuedWithdrawal, Redemption
from mwallet.render.values import when
from mwallet.server.base import Handlers, choice, idempotency_key, query_limit, strict_query
from mwallet.server.body import json_object
from mwallet.server.problems import Problem


class AtmHandlers(Handlers):
    async def request_withdrawal(self, request: Request) -> Response:
        caller = await self._caller(request)
        key = idempotency_key(request)
        body = await json_object(
            request,
            required={"amount": str},
            optional={"channel": str, "pin": str, "code": str},
        )
        channel = choice(Channel, "channel", body.get("channel"), Channel.ATM)
        issued = await self._moving(
            caller, key,
            lambda: self.service.request_withdrawal(
                caller, amount=self._money(body["amount"]), channel=channel,
                pin=body.get("pin"), idempotency_key=key, code=body.get("code"),
            ),
        )  # fmt: skip
        return JSONResponse(issued_json(issued), status_code=201)

    async def validate_token(self, request: Request) -> Response:
        terminal = await self._caller(request)
        body = await json_object(request, required={"pin": str}, optional={"code": str, "qr": str})
        if (body.get("code") is None) == (body.get("qr") is None):
            raise Problem(400, "invalid_input", "send either the withdrawal's code or its qr")
        redeemed = await self._call(
            lambda: self.service.redeem_withdrawal(
                terminal, pin=body["pin"], code=body.get("code"), qr_payload=body.get("qr")
            )
        )
        return JSONResponse(redemption_json(redeemed))

    async def confirm_withdrawal(self, request: Request) -> Response:
        terminal = await self._caller(request)
        await json_object(request, required={}, allow_empty=True)
        done = await self._call(
            lambda: self.service.complete_withdrawal(terminal, withdrawal_id=_id(request))
        )
        return JSONResponse(withdrawal_json(done))

    async def dispense_withdrawal(self, request: Request) -> Response:
        terminal = await self._caller(request)
        await json_object(request, required={}, allow_empty=True)
        done = await self._call(
            lambda: self.service.dispense_withdrawal(terminal, withdrawal_id=_id(request))
        )
        return JSONResponse(withdrawal_json(done))

    async def reverse_withdrawal(self, request: Request) -> Response:
        terminal = await self._caller(request)
        body = await json_object(
            request, required={}, optional={"none_presented": bool}, allow_empty=True
        )
        none_presented = bool(body.get("none_presented", False))
        done = await self._call(
            lambda: self.service.reverse_withdrawal(
                terminal, withdrawal_id=_id(request), none_presented=none_presented
            )
        )
        return JSONResponse(withdrawal_json(done))

    async def cancel_withdrawal(self, request: Request) -> Response:
        caller = await self._caller(request)
        await json_object(request, required={}, allow_empty=True)
        done = await self._call(
            lambda: self.service.cancel_withdrawal(caller, withdrawal_id=_id(request))
        )
        return JSONResponse(withdrawal_json(done))

    async def withdrawals(self, request: Request) -> Response:
        caller = await self._caller(request)
        strict_query(request, frozenset({"limit"}))
        limit = query_limit(request)
        found = await self._call(lambda: self.service.list_withdrawals(caller, limit=limit))
        return JSONResponse({"withdrawals": [withdrawal_json(one) for one in found]})


def _id(request: Request) -> str:
    return str(request.path_params["withdrawal_id"])


def withdrawal_json(found: Withdrawal) -> dict[str, Any]:
    return {
        "withdrawal_id": found.id,
        "amount": found.amount.to_decimal_string(),
        "fee": found.fee.to_decimal_string(),
        "currency": found.amount.currency,
        "channel": found.channel.value,
        "state": found.state.value,
        "created_at": when(found.created_at),
        "expires_at": when(found.expires_at),
        "terminal_id": found.terminal_id,
    }


def issued_json(issued: IssuedWithdrawal) -> dict[str, Any]:
    """The secrets are shown once: a replay of the request (same Idempotency-Key and body) gets
    the same withdrawal with `code`, `pin` and `qr_payload` null, as they are kept only as
    hashes. Lost them? Cancel the withdrawal and ask again."""
    return {
        **withdrawal_json(issued.withdrawal),
        "code": issued.code,
        "pin": issued.pin,
        "qr_payload": issued.qr_payload,
    }


def redemption_json(redeemed: Redemption) -> dict[str, Any]:
    found = redeemed.withdrawal
    notes = None
    if redeemed.notes is not None:
        notes = [
            {"denomination": Money(value, found.amount.currency).to_decimal_string(),
             "count": count}
            for value, count in sorted(redeemed.notes.items(), reverse=True)
        ]  # fmt: skip
    return {**withdrawal_json(found), "customer_name": redeemed.customer_name, "notes": notes}
