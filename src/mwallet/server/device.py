"""The device authorization grant's doors (RFC 8628): `POST /oauth/device_authorization` for the
device, and the verification page at `/device` where the person approves it with their phone,
password and (with 2FA on) a code. The token endpoint hands out the tokens
(`grant_type=urn:ietf:params:oauth:grant-type:device_code`, in `server.accounts`).

The page is plain HTML with no script: a form, and a page saying what happened. Every value shown
is escaped; the page may not be framed (clickjacking) nor cached.
"""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from mwallet.core.errors import WalletError
from mwallet.server.base import Handlers
from mwallet.server.body import FORM, form_or_json, media_type
from mwallet.server.problems import Problem

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
_FIELDS = {"user_code", "phone", "password", "code", "action"}


class DeviceHandlers(Handlers):
    device_interval: int

    async def device_authorization(self, request: Request) -> Response:
        # RFC 8628 §3.1: a public client (no secret, like the CLI) names itself.
        await form_or_json(request, required={"client_id"}, optional={"scope"})
        started = await self._call(
            lambda: self.service.device_authorization(interval=self.device_interval)
        )
        page = started.verification_uri or str(request.url_for("device_page"))
        left = (started.expires_at - self.service.clock.now()).total_seconds()
        return JSONResponse(
            {"device_code": started.device_code, "user_code": started.user_code,
             "verification_uri": page,
             "verification_uri_complete": f"{page}?user_code={started.user_code}",
             "expires_in": max(0, int(left)), "interval": started.interval},
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )  # fmt: skip

    async def device_page(self, request: Request) -> Response:
        return _page(_form(request.query_params.get("user_code", "")))

    async def device_decide(self, request: Request) -> Response:
        if media_type(request) != FORM:  # the page's own form only
            raise Problem(415, "unsupported_media_type", "send the page's form")
        fields = await form_or_json(
            request, required={"user_code", "phone", "password"}, optional={"code", "action"}
        )
        action = fields.get("action", "approve")
        if action not in ("approve", "deny"):
            raise Problem(400, "invalid_input", "action is approve or deny")
        try:
            await self._call(
                lambda: self.service.decide_device(
                    user_code=fields["user_code"], phone=fields["phone"],
                    password=fields["password"], code=fields.get("code") or None,
                    approve=action == "approve",
                )
            )  # fmt: skip
        except WalletError as error:
            from mwallet.server.problems import status_of

            shown = _form(fields["user_code"], error=error.message, phone=fields["phone"],
                          ask_code=error.code == "second_factor_required")  # fmt: skip
            return _page(shown, status=status_of(error))
        said = ("Done: the device is logged in as you. You can close this page."
                if action == "approve" else "Done: the device was refused.")  # fmt: skip
        return _page(f"<p>{escape(said)}</p>")


def _form(user_code: str, *, error: str | None = None, phone: str = "",
          ask_code: bool = False) -> str:  # fmt: skip
    alert = f'<p role="alert"><strong>{escape(error)}</strong></p>' if error else ""
    code = ('<label>Two-factor code <input name="code" autocomplete="one-time-code" '
            f'inputmode="numeric"{" autofocus" if ask_code else ""}></label>')  # fmt: skip
    return (
        "<p>A device asks to log in to your wallet. Check that the code below is the one it "
        "shows, then log in to approve it.</p>" + alert
        + '<form method="post" action="device">'
        f'<label>Code shown by the device <input name="user_code" required value="'
        f'{escape(user_code)}" autocapitalize="characters"></label>'
        f'<label>Phone <input name="phone" required autocomplete="tel" value="{escape(phone)}">'
        "</label>"
        '<label>Password <input name="password" type="password" required '
        'autocomplete="current-password"></label>' + code
        + '<button name="action" value="approve">Approve</button> '
        '<button name="action" value="deny">Refuse</button></form>'
    )  # fmt: skip


def _page(body: str, *, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>mwallet: log in a device</title><style>body{font-family:sans-serif;"
        "max-width:30em;margin:2em auto;padding:0 1em}label{display:block;margin:.6em 0}"
        "input{display:block;width:100%}</style></head><body><h1>Log in a device</h1>"
        f"{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
