"""An admin's changes to a person over HTTP, for `mwallet --server`: a role (`admin users
set-role`), a KYC tier (`admin users tier`) and a wallet's status (`admin users|wallets freeze`,
`unfreeze`, `admin wallets close`).

The same use cases as on a database (`WalletService.set_role|set_tier|set_wallet_status`): they
refuse anyone but an admin (403) before the person is looked up, and read the phone number (in
the body, so any text reaches them as typed) in the instance's region. The role, tier or status
is parsed as the CLI parses it, so a bad one is the same 400 and message on either door.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mwallet.core.domain.ledger import AccountStatus
from mwallet.core.domain.roles import parse_role
from mwallet.core.domain.tariffs import Tier
from mwallet.render.users import user_json
from mwallet.server.base import Handlers, choice
from mwallet.server.body import json_object


class AdminHandlers(Handlers):
    async def set_role(self, request: Request) -> Response:
        caller = await self._caller(request)
        body = await json_object(request, required={"phone": str, "role": str})
        role = parse_role(body["role"])
        user = await self._call(
            lambda: self.service.set_role(actor=caller, phone=body["phone"], role=role)
        )
        return JSONResponse(user_json(user))

    async def set_tier(self, request: Request) -> Response:
        caller = await self._caller(request)
        body = await json_object(request, required={"phone": str, "tier": str})
        tier = Tier.parse(body["tier"])
        user = await self._call(
            lambda: self.service.set_tier(actor=caller, phone=body["phone"], tier=tier)
        )
        return JSONResponse(user_json(user))

    async def set_wallet_status(self, request: Request) -> Response:
        caller = await self._caller(request)
        body = await json_object(request, required={"phone": str, "status": str})
        # `status` is required above, so `choice`'s default is never taken: leaving it out is a
        # 400, never an unfreeze.
        wanted = choice(AccountStatus, "status", body["status"], AccountStatus.ACTIVE)
        status = await self._call(
            lambda: self.service.set_wallet_status(actor=caller, phone=body["phone"], status=wanted)
        )
        return JSONResponse({"status": status.value})
