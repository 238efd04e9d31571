"""The OAuth 2.0 token endpoint, two-factor enrolment, the wallet's top-up, the notifications
inbox and the admins' look-up of a person by phone over HTTP, on both databases."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from mwallet.bootstrap import Wallet
from mwallet.core import otp
from mwallet.core.clock import FixedClock
from mwallet.core.domain.roles import Role
from mwallet.core.domain.users import Principal
from tests.integration.http_support import (
    balance,
    client_fixture,  # noqa: F401 (the `client` fixture)
    fund,
    is_problem,
    person,
)
from tests.support import PASSWORD, make_admin

STEP = timedelta(seconds=otp.STEP_SECONDS)


@pytest.fixture
def admin(wallet: Wallet) -> Principal:
    return make_admin(wallet.service)


def atm_client(wallet: Wallet, admin: Principal) -> tuple[str, str]:
    added = wallet.service.add_atm(actor=admin, name="ATM Sommerschield")
    assert added.client is not None
    assert added.client_secret is not None
    return added.client.id, added.client_secret


def oauth_problem(answer: Any, status: int, error: str) -> None:
    """A token endpoint refusal: problem+json carrying RFC 6749's `error`."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["error"] == error, answer.json()


def test_client_credentials_as_a_form_as_json_and_with_basic_auth(
    client: TestClient, wallet: Wallet, admin: Principal
) -> None:
    client_id, secret = atm_client(wallet, admin)
    granted = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert granted.status_code == 200, granted.text
    token = granted.json()
    assert (token["token_type"], token["refresh_token"]) == ("Bearer", None)
    assert 0 < token["expires_in"] <= 3600
    assert granted.headers["cache-control"] == "no-store"
    # The token acts as the ATM: it may check codes (this one is unknown), not use a wallet.
    terminal = {"Authorization": f"Bearer {token['access_token']}"}
    is_problem(client.post("/atm/validate-token", json={"code": "1234567890", "pin": "4729"},
                           headers=terminal), 404, "unknown_withdrawal_code")  # fmt: skip
    is_problem(client.get("/atm/withdrawals", headers=terminal), 403, "permission_denied")

    as_json = client.post(
        "/oauth/token",
        json={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert as_json.status_code == 200, as_json.text
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    with_basic = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                             headers={"Authorization": f"Basic {basic}"})  # fmt: skip
    assert with_basic.status_code == 200, with_basic.text


def test_token_endpoint_refusals(client: TestClient, wallet: Wallet, admin: Principal) -> None:
    client_id, secret = atm_client(wallet, admin)
    grant = {"grant_type": "client_credentials", "client_id": client_id}
    oauth_problem(client.post("/oauth/token", data={**grant, "client_secret": "guess"}), 401,
                  "invalid_client")  # fmt: skip
    oauth_problem(client.post("/oauth/token", data={**grant, "grant_type": "password",
                                                    "client_secret": secret}),
                  400, "unsupported_grant_type")  # fmt: skip
    oauth_problem(client.post("/oauth/token", data=grant), 400, "invalid_request")
    oauth_problem(client.post("/oauth/token", data={**grant, "client_secret": secret,
                                                    "scope": "wallet:admin"}),
                  400, "invalid_scope")  # fmt: skip
    oauth_problem(client.post("/oauth/token", data={**grant, "client_secret": secret,
                                                    "refresh_token": "x"}),
                  400, "invalid_request")  # fmt: skip
    twice = f"grant_type=client_credentials&client_id={client_id}&client_id=x&client_secret=s"
    oauth_problem(client.post("/oauth/token", content=twice.encode(),
                              headers={"Content-Type": "application/x-www-form-urlencoded"}),
                  400, "invalid_request")  # fmt: skip
    oauth_problem(client.post("/oauth/token", content=b"{oops",
                              headers={"Content-Type": "application/json"}),
                  400, "invalid_request")  # fmt: skip
    oauth_problem(client.post("/oauth/token", data={"grant_type": "client_credentials"},
                              headers={"Authorization": "Basic !!!"}),
                  401, "invalid_client")  # fmt: skip
    # A JSON null is an absent field (schemathesis found these were a 500).
    for nulled in ({"grant_type": "refresh_token", "refresh_token": None},
                   {**grant, "client_id": None, "client_secret": secret}):  # fmt: skip
        oauth_problem(client.post("/oauth/token", json=nulled), 400, "invalid_request")


def test_refresh_grant_rotates_and_a_reuse_is_invalid_grant(client: TestClient) -> None:
    ana = person(client)
    old = ana["tokens"]["refresh_token"]
    rotated = client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                "refresh_token": old})  # fmt: skip
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["refresh_token"] not in (None, old)
    oauth_problem(client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                    "refresh_token": old}),
                  400, "invalid_grant")  # fmt: skip


def totp(secret: str, clock: FixedClock) -> str:
    return otp.code_at_step(secret, otp.time_step(clock.now()))


def test_two_factor_enrolment(client: TestClient, clock: FixedClock) -> None:
    ana = person(client)
    assert client.get("/auth/2fa", headers=ana["auth"]).json() == {
        "enabled": False, "pending": False, "recovery_codes_left": 0, "step_up_amount": "1000.00",
    }  # fmt: skip
    begun = client.post("/auth/2fa", headers=ana["auth"])
    assert begun.status_code == 201, begun.text
    assert begun.json()["otpauth_uri"].startswith("otpauth://totp/")
    secret = begun.json()["secret"]
    assert client.get("/auth/2fa", headers=ana["auth"]).json()["pending"] is True
    is_problem(client.post("/auth/2fa/confirm", json={"code": "12"}, headers=ana["auth"]), 401,
               "invalid_second_factor")  # fmt: skip
    confirmed = client.post("/auth/2fa/confirm", json={"code": totp(secret, clock)},
                            headers=ana["auth"])  # fmt: skip
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) >= 8
    status = client.get("/auth/2fa", headers=ana["auth"]).json()
    assert (status["enabled"], status["recovery_codes_left"]) == (True, len(codes))
    clock.advance(STEP)
    login = {"phone": ana["phone"], "password": PASSWORD}
    is_problem(client.post("/auth/login", json=login), 401, "second_factor_required")
    second = client.post("/auth/login", json={**login, "code": totp(secret, clock)})
    assert second.status_code == 200, second.text
    clock.advance(STEP)
    is_problem(client.post("/auth/2fa/disable", json={}, headers=ana["auth"]), 400,
               "missing_fields")  # fmt: skip
    off = client.post("/auth/2fa/disable", json={"code": totp(secret, clock)}, headers=ana["auth"])
    assert off.status_code == 204, off.text
    assert client.get("/auth/2fa", headers=ana["auth"]).json()["enabled"] is False
    is_problem(client.get("/auth/2fa"), 401, "not_authenticated")


def test_topup_with_idempotency_key(client: TestClient) -> None:
    ana, bruno = person(client), person(client, "Bruno Tembe")
    url = f"/wallet/{ana['user_id']}/topup"
    headers = {**ana["auth"], "Idempotency-Key": "top-1"}
    first = client.post(url, json={"amount": "150"}, headers=headers)
    assert first.status_code == 201, first.text
    assert (first.json()["amount"], first.json()["source"]) == ("150.00", "sandbox")
    again = client.post(url, json={"amount": "150"}, headers=headers)
    assert (again.status_code, again.json()) == (201, first.json())
    is_problem(client.post(url, json={"amount": "15"}, headers=headers), 422,
               "idempotency_key_reused")  # fmt: skip
    is_problem(client.post(url, json={"amount": "15"}, headers=ana["auth"]), 400,
               "idempotency_key_missing")  # fmt: skip
    is_problem(client.post(url, json={"amount": "15", "source": "bank"},
                           headers={**ana["auth"], "Idempotency-Key": "top-2"}),
               400, "unknown_funding_source")  # fmt: skip
    is_problem(client.post(url, json={"amount": "15"},
                           headers={**bruno["auth"], "Idempotency-Key": "top-3"}),
               403, "permission_denied")  # fmt: skip
    assert balance(client, ana) == ("150.00", "150.00")


def test_the_inbox_and_marking_read(client: TestClient, wallet: Wallet) -> None:
    ana, bruno = person(client), person(client, "Bruno Tembe")
    fund(wallet, ana, "40")
    listed = client.get("/notifications", headers=ana["auth"])
    assert listed.status_code == 200, listed.text
    mine = listed.json()["notifications"]
    assert mine
    assert all(one["read_at"] is None for one in mine)
    first = mine[0]["notification_id"]
    read = client.post(f"/notifications/{first}/read", headers=ana["auth"])
    assert (read.status_code, read.json()["notification_id"]) == (200, first)
    assert read.json()["read_at"] is not None
    unread = client.get("/notifications?unread=true", headers=ana["auth"]).json()
    assert first not in [one["notification_id"] for one in unread["notifications"]]
    is_problem(client.post(f"/notifications/{first}/read", headers=bruno["auth"]), 404,
               "notification_not_found")  # fmt: skip
    is_problem(client.get("/notifications?unread=maybe", headers=ana["auth"]), 400,
               "invalid_input")  # fmt: skip
    is_problem(client.get("/notifications?limit=5000", headers=ana["auth"]), 400, "invalid_input")


def test_notification_preferences_read_and_changed(client: TestClient) -> None:
    ana, bruno = person(client), person(client, "Bruno Tembe")
    url = "/notifications/preferences"
    shown = client.get(url, headers=ana["auth"])
    assert shown.status_code == 200, shown.text
    assert shown.json() == {"language": "en", "email": True, "sms": True, "push": False}
    changed = client.put(url, json={"language": "pt-mz", "push": True, "sms": None},
                         headers=ana["auth"])  # fmt: skip
    assert changed.status_code == 200, changed.text
    now = {"language": "pt-MZ", "email": True, "sms": True, "push": True}
    assert changed.json() == now
    assert client.put(url, json={"sms": False}, headers=ana["auth"]).json() == {**now, "sms": False}
    assert client.get(url, headers=bruno["auth"]).json()["language"] == "en"  # only Ana's

    # Bad input: a problem, and nothing changes.
    for body, code in (
        ({"language": "fr"}, "invalid_input"),
        ({"email": "on"}, "wrong_type"),
        ({"push": 1}, "wrong_type"),
        ({"colour": "red"}, "unknown_fields"),
    ):
        is_problem(client.put(url, json=body, headers=ana["auth"]), 400, code)
    is_problem(
        client.put(url, content=b"{", headers={**ana["auth"], "Content-Type": "application/json"}),
        400,
        "bad_json",
    )
    is_problem(client.get(f"{url}?push=true", headers=ana["auth"]), 400, "invalid_input")
    is_problem(client.get(url), 401, "not_authenticated")
    assert client.get(url, headers=ana["auth"]).json() == {**now, "sms": False}


def test_admins_and_auditors_look_people_up_by_phone(
    client: TestClient, wallet: Wallet, admin: Principal
) -> None:
    ana = person(client)
    audrey = person(client, "Audrey Auditor")
    wallet.service.set_role(actor=admin, phone=audrey["phone"], role=Role.AUDITOR)
    operator = {"Authorization": "Bearer " + wallet.service.login(
        phone=admin.phone, password=PASSWORD).tokens.access_token}  # fmt: skip
    record = {key: ana[key] for key in ("user_id", "phone", "display_name", "email", "role",
                                        "tier", "created_at")}  # fmt: skip
    path = f"/admin/users/by-phone/{ana['phone']}"
    for who in (operator, audrey["auth"]):  # an auditor's role is read from the database
        found = client.get(path, headers=who)
        assert (found.status_code, found.json()) == (200, record)
    # `+` escaped in the path is the same number.
    assert client.get(path.replace("+", "%2B"), headers=operator).json() == record
    unknown = "/admin/users/by-phone/+258849999999"
    is_problem(client.get(unknown, headers=operator), 404, "user_not_found")
    is_problem(client.get("/admin/users/by-phone/+1", headers=operator), 400,
               "invalid_phone_number")  # fmt: skip
    # An escaped `/` in the number is a malformed number too, not a path to another endpoint.
    slashed = "/admin/users/by-phone/84%2F1234567"
    is_problem(client.get(slashed, headers=operator), 400, "invalid_phone_number")
    # No number at all is no endpoint (as before numbers could hold a `/`), not a redirect to one.
    for bare in ("/admin/users/by-phone/", "/admin/users/by-phone"):
        is_problem(client.get(bare, headers=operator, follow_redirects=False), 404, "not_found")
    is_problem(client.get(f"{path}?limit=1", headers=operator), 400, "invalid_input")
    # Anyone else: refused before the number is looked up (registered or not, the same 403).
    bruno = person(client, "Bruno Tembe")
    for asked in (path, unknown, slashed):
        is_problem(client.get(asked, headers=bruno["auth"]), 403, "permission_denied")
    is_problem(client.get(path), 401, "not_authenticated")


def test_an_admin_changes_a_persons_role_tier_and_wallet_status(
    client: TestClient, wallet: Wallet, admin: Principal
) -> None:
    """`POST /admin/users/role|tier` and `/admin/wallets/status` (the remote `mwallet admin users
    set-role|tier|freeze|unfreeze`): an admin's, with the core's refusals as problems; anyone
    else is refused (403) before the number is looked up, and nothing changes."""
    ana, bruno = person(client), person(client, "Bruno Tembe")
    operator = {"Authorization": "Bearer " + wallet.service.login(
        phone=admin.phone, password=PASSWORD).tokens.access_token}  # fmt: skip
    role = {"phone": bruno["phone"], "role": "auditor"}
    tier = {"phone": bruno["phone"], "tier": "verified"}
    frozen = {"phone": bruno["phone"], "status": "frozen"}
    changes = (("/admin/users/role", role), ("/admin/users/tier", tier),
               ("/admin/wallets/status", frozen))  # fmt: skip
    for path, body in changes:
        is_problem(client.post(path, json=body, headers=ana["auth"]), 403, "permission_denied")
        unknown = {**body, "phone": "+258849999999"}
        is_problem(client.post(path, json=unknown, headers=ana["auth"]), 403, "permission_denied")
        is_problem(client.post(path, json=body), 401, "not_authenticated")
    shown = client.get(f"/admin/users/by-phone/{bruno['phone']}", headers=operator).json()
    assert (shown["role"], shown["tier"]) == ("customer", "basic")

    made = client.post("/admin/users/role", json=role, headers=operator)
    assert (made.status_code, made.json()["user_id"], made.json()["role"]) == (
        200, bruno["user_id"], "auditor",
    )  # fmt: skip
    verified = client.post("/admin/users/tier", json=tier, headers=operator)
    assert (verified.status_code, verified.json()["tier"]) == (200, "verified")
    done = client.post("/admin/wallets/status", json=frozen, headers=operator)
    assert (done.status_code, done.json()) == (200, {"status": "frozen"})
    fund(wallet, ana, "5")
    keyed = {**ana["auth"], "Idempotency-Key": "to-frozen"}
    to_bruno = {"to": bruno["phone"], "amount": "1"}
    sent = client.post(f"/wallet/{ana['user_id']}/transfer", headers=keyed, json=to_bruno)
    is_problem(sent, 409, "wallet_frozen")
    thawed = {**frozen, "status": "active"}
    assert client.post("/admin/wallets/status", json=thawed, headers=operator).json() == {
        "status": "active"
    }
    # Bruno, an auditor now, changes no one.
    is_problem(client.post("/admin/users/tier", json={**tier, "phone": ana["phone"]},
                           headers=bruno["auth"]), 403, "permission_denied")  # fmt: skip

    # Bad bodies, no one, the last admin.
    for path, body, code in (
        ("/admin/users/role", {**role, "role": "king"}, "invalid_role"),
        ("/admin/users/tier", {**tier, "tier": "gold"}, "invalid_input"),
        ("/admin/wallets/status", {**frozen, "status": "melted"}, "invalid_input"),
        ("/admin/wallets/status", {"phone": bruno["phone"]}, "missing_fields"),
        ("/admin/users/role", {**role, "extra": 1}, "unknown_fields"),
    ):
        is_problem(client.post(path, json=body, headers=operator), 400, code)
    is_problem(client.post("/admin/users/tier", json={**tier, "phone": "a/b"}, headers=operator),
               400, "invalid_phone_number")  # fmt: skip
    is_problem(client.post("/admin/wallets/status", json={**frozen, "phone": "+258849999999"},
                           headers=operator), 404, "user_not_found")  # fmt: skip
    last = {"phone": admin.phone, "role": "customer"}
    refused = client.post("/admin/users/role", json=last, headers=operator)
    is_problem(refused, 409, "refused")
    assert "last admin" in refused.json()["detail"]
