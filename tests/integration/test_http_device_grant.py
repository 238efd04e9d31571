"""The device authorization grant (RFC 8628) over HTTP, on both databases: a device asks, the
person approves or refuses on the /device page, the device polls the token endpoint and gets
RFC 8628's answers, and its tokens once; with its device id, a new device is a security notice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text
from starlette.testclient import TestClient

from mwallet.bootstrap import Wallet
from mwallet.core import otp
from mwallet.core.clock import FixedClock
from mwallet.core.domain.device_grants import INTERVAL_SECONDS, LIFETIME
from tests.cli.harness import count_rows
from tests.integration.http_support import (
    client_fixture,  # noqa: F401 (the `client` fixture)
    is_problem,
    person,
)
from tests.support import PASSWORD

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
WAIT = timedelta(seconds=INTERVAL_SECONDS)


def ask(client: TestClient) -> dict[str, Any]:
    asked = client.post("/oauth/device_authorization", data={"client_id": "mwallet-cli"})
    assert asked.status_code == 200, asked.text
    assert asked.headers["cache-control"] == "no-store"
    return dict(asked.json())


def poll(client: TestClient, device_code: str) -> Any:
    return client.post("/oauth/token", data={"grant_type": DEVICE_GRANT,
                                             "device_code": device_code})  # fmt: skip


def refused(answer: Any, error: str, code: str | None = None) -> None:
    """RFC 8628 §3.5: a 400 whose `error` names what to do; a problem's `type` ends with the
    same name, or with our own `code` for RFC 6749's catch-all `invalid_grant`."""
    is_problem(answer, 400, code or error)
    assert answer.json()["error"] == error


def decide(client: TestClient, user_code: str, phone: str, **extra: str) -> Any:
    return client.post("/device", data={"user_code": user_code, "phone": phone,
                                        "password": PASSWORD, **extra})  # fmt: skip


def test_a_device_gets_tokens_once_the_person_approves(
    client: TestClient, clock: FixedClock, db_url: str
) -> None:
    ana = person(client)
    asked = ask(client)
    assert asked["verification_uri"] == "http://testserver/device"
    assert asked["verification_uri_complete"].endswith(f"?user_code={asked['user_code']}")
    assert (asked["interval"], asked["expires_in"]) == (INTERVAL_SECONDS, LIFETIME.seconds)

    refused(poll(client, asked["device_code"]), "authorization_pending")
    page = client.get("/device", params={"user_code": asked["user_code"]})
    assert page.headers["content-type"].startswith("text/html")
    assert asked["user_code"] in page.text
    assert page.headers["x-frame-options"] == "DENY"
    families = count_rows(db_url, "token_families")
    approved = decide(client, asked["user_code"].lower().replace("-", " "), ana["phone"])
    assert approved.status_code == 200, approved.text
    assert "logged in as you" in approved.text
    # Checking the password on the page opened no session of its own.
    live = "SELECT count(*) FROM token_families WHERE revoked_at IS NULL"
    assert count_rows(db_url, "token_families") == families + 1
    assert _scalar(db_url, live) == families

    # Polling again at once is too fast: slow down, and the interval grows.
    refused(poll(client, asked["device_code"]), "slow_down")
    clock.advance(WAIT)
    refused(poll(client, asked["device_code"]), "slow_down")  # 10 s now; 15 after this one
    clock.advance(WAIT * 3)
    tokens = poll(client, asked["device_code"])
    assert tokens.status_code == 200, tokens.text
    me = client.get(
        "/auth/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
    )
    assert me.json()["user_id"] == ana["user_id"]
    refreshed = client.post("/auth/refresh", json={"refresh_token": tokens.json()["refresh_token"]})
    assert refreshed.status_code == 200

    # Spent: the same device code gets nothing more, and the user code takes no second answer.
    clock.advance(WAIT * 3)
    refused(poll(client, asked["device_code"]), "invalid_grant", "invalid_token")
    again = decide(client, asked["user_code"], ana["phone"])
    assert again.status_code == 400
    assert "unknown or has expired" in again.text


def test_refused_expired_and_unknown_device_codes(client: TestClient, clock: FixedClock) -> None:
    ana = person(client)
    denied = ask(client)
    assert "refused" in decide(client, denied["user_code"], ana["phone"], action="deny").text
    refused(poll(client, denied["device_code"]), "access_denied")

    late = ask(client)
    clock.advance(LIFETIME)
    refused(poll(client, late["device_code"]), "expired_token")
    assert decide(client, late["user_code"], ana["phone"]).status_code == 400
    refused(poll(client, "not-a-device-code"), "invalid_grant", "invalid_token")

    nameless = client.post("/oauth/device_authorization", data={"scope": "wallet"})
    assert nameless.status_code == 400
    assert "client_id" in nameless.json()["detail"]
    missing = client.post("/oauth/token", data={"grant_type": DEVICE_GRANT})
    refused(missing, "invalid_request")
    extra = client.post("/oauth/token", data={"grant_type": DEVICE_GRANT, "device_code": "x",
                                              "refresh_token": "y"})  # fmt: skip
    refused(extra, "invalid_request")


def test_the_page_checks_the_password_and_the_second_factor(
    client: TestClient, clock: FixedClock
) -> None:
    ana = person(client)
    asked = ask(client)
    wrong = client.post("/device", data={"user_code": asked["user_code"], "phone": ana["phone"],
                                         "password": "not-the-password"})  # fmt: skip
    assert wrong.status_code == 401
    assert "<form" in wrong.text
    assert "not-the-password" not in wrong.text
    malformed = decide(client, "AEIOU", ana["phone"])
    assert malformed.status_code == 400
    assert "8 letters" in malformed.text
    # Hostile text is shown escaped.
    hostile = decide(client, "BCDF-GHJK", '"><script>alert(1)</script>')
    assert "<script>" not in hostile.text
    json_body = client.post("/device", json={"user_code": asked["user_code"]})
    is_problem(json_body, 415, "unsupported_media_type")
    refused(poll(client, asked["device_code"]), "authorization_pending")

    # With two-factor authentication on, the page asks for the code too.
    secret = client.post("/auth/2fa", headers=ana["auth"]).json()["secret"]
    client.post("/auth/2fa/confirm", json={"code": _totp(secret, clock)}, headers=ana["auth"])
    clock.advance(timedelta(seconds=otp.STEP_SECONDS))
    asks = decide(client, asked["user_code"], ana["phone"])
    assert asks.status_code == 401
    assert "autofocus" in asks.text
    done = decide(client, asked["user_code"], ana["phone"], code=_totp(secret, clock))
    assert done.status_code == 200, done.text
    clock.advance(WAIT)
    assert poll(client, asked["device_code"]).status_code == 200


def test_the_page_and_the_device_endpoint_are_rate_limited(client: TestClient) -> None:
    ana = person(client)
    answers = [decide(client, "BCDF-GHJK", ana["phone"]).status_code for _ in range(11)]
    assert answers[:10] == [400] * 10  # no such code: nothing learned, nothing locked
    assert answers[10] == 429
    asked = [
        client.post("/oauth/device_authorization", data={"client_id": "cli"}).status_code
        for _ in range(11)
    ]
    assert asked == [200] * 10 + [429]


def _totp(secret: str, clock: FixedClock) -> str:
    return otp.code_at_step(secret, otp.time_step(clock.now()))


def _scalar(url: str, query: str) -> int:
    from sqlalchemy import text

    from tests.support import open_wallet

    with open_wallet(url) as wallet, wallet.engine.connect() as conn:
        return int(conn.execute(text(query)).scalar_one())


def new_device_notices(wallet: Wallet, user_id: str) -> int:
    wallet.service.relay_notifications()
    return count_rows_where(
        wallet, "SELECT count(*) FROM notifications WHERE user_id = :u "
        "AND kind = 'login_new_device' AND channel = 'inbox'", {"u": user_id},
    )  # fmt: skip


def count_rows_where(wallet: Wallet, query: str, params: dict[str, str]) -> int:
    with wallet.engine.connect() as conn:
        return int(conn.execute(text(query), params).scalar_one())


def device_login(client: TestClient, clock: FixedClock, phone: str, **extra: str) -> Any:
    asked = ask(client)
    assert decide(client, asked["user_code"], phone).status_code == 200
    clock.advance(WAIT)
    form = {"grant_type": DEVICE_GRANT, "device_code": asked["device_code"], **extra}
    return client.post("/oauth/token", data=form)


def test_the_device_id_makes_a_new_device_a_notice_whichever_way_in(
    client: TestClient, clock: FixedClock, wallet: Wallet
) -> None:
    """The same device id by password (`/auth/login`) and by the device grant (with the poll
    that gets the tokens) is one device; a new one is one notice, as on a database."""
    ana = person(client)  # logged in with no device id: no device counted
    login = {"phone": ana["phone"], "password": PASSWORD}
    assert client.post("/auth/login", json={**login, "device_id": "laptop-1"}).status_code == 200
    assert device_login(client, clock, ana["phone"], device_id="laptop-1").status_code == 200
    assert new_device_notices(wallet, ana["user_id"]) == 0  # her first device, then the same

    tokens = device_login(client, clock, ana["phone"], device_id="desktop-2")
    assert tokens.status_code == 200, tokens.text
    assert new_device_notices(wallet, ana["user_id"]) == 1
    assert client.post("/auth/login", json={**login, "device_id": "desktop-2"}).status_code == 200
    assert new_device_notices(wallet, ana["user_id"]) == 1  # known now, whichever way in
    assert client.post("/auth/login", json={**login, "device_id": "tablet-3"}).status_code == 200
    assert new_device_notices(wallet, ana["user_id"]) == 2
    # No device id: nothing remembered, no notice (as a password login without one).
    assert device_login(client, clock, ana["phone"]).status_code == 200
    assert new_device_notices(wallet, ana["user_id"]) == 2
    assert count_rows_where(wallet, "SELECT count(*) FROM known_devices WHERE user_id = :u",
                            {"u": ana["user_id"]}) == 3  # fmt: skip
    # The device id belongs to the device grant's poll only.
    refused_extra = client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens.json()["refresh_token"],
        "device_id": "laptop-1",
    })  # fmt: skip
    is_problem(refused_extra, 400, "invalid_request")
