"""The OpenAPI 3.1 document (`GET /openapi.json`) against the real services, on both databases: a
tour calls every operation it describes and each answer validates against it (the `client`
fixture checks every answer of every HTTP test the same way)."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

from jsonschema import Draft202012Validator
from starlette.testclient import TestClient

from mwallet.bootstrap import Wallet
from mwallet.core import otp
from mwallet.core.clock import FixedClock
from mwallet.providers.http import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from mwallet.server.app import SERVICES, create_app
from mwallet.server.openapi import document
from tests.integration.http_support import (
    CALLBACK_SECRET,
    client_fixture,  # noqa: F401 (the `client` fixture)
    conformance,
    person,
)
from tests.integration.test_http_api import bill_reference
from tests.integration.withdrawal_support import PIN
from tests.support import PASSWORD, make_admin


def operations(described: dict[str, object]) -> set[tuple[str, str]]:
    paths = described["paths"]
    assert isinstance(paths, dict)
    return {(method, path) for path, ops in paths.items() for method in ops}


def test_the_document_is_openapi_31_with_valid_schemas(client: TestClient) -> None:
    served = client.get("/openapi.json").json()
    assert served == document(SERVICES)
    assert served["openapi"] == "3.1.0"
    for schema in served["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # raises for an invalid one
    assert served["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    every = operations(served)
    served_routes = {  # a path's typed parameters (`{payment_id:ulid}`) as the document names them
        (method.lower(), re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in client.app.routes  # type: ignore[attr-defined]
        for method in route.methods
        if method != "HEAD"
    }
    assert every == served_routes  # every route described, nothing described that is not served
    for method, path in every:
        operation = served["paths"][path][method]
        assert "default" in operation["responses"], (method, path)
        assert any(status.startswith("2") for status in operation["responses"]), (method, path)


def test_a_process_describes_only_the_services_it_serves(wallet: Wallet) -> None:
    with TestClient(create_app(wallet.service, services=["atm"])) as atm_only:
        paths = atm_only.get("/openapi.json").json()["paths"]
    assert "/atm/validate-token" in paths
    assert "/healthz" in paths
    assert not any(path.startswith(("/wallet", "/auth", "/payments")) for path in paths)


def test_every_operation_answers_as_described(
    client: TestClient, wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    for path in ("/healthz", "/readyz", "/openapi.json", "/.well-known/jwks.json", "/metrics"):
        assert client.get(path).status_code == 200
    ana, bruno = person(client), person(client, "Bruno Tembe")
    me, url = ana["auth"], f"/wallet/{ana['user_id']}"

    # Sessions and two-factor enrolment.
    second = client.post(
        "/auth/login", json={"phone": bruno["phone"], "password": "correct-horse-battery"}
    ).json()
    rotated = client.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert (
        client.post(
            "/auth/logout", json={"refresh_token": rotated.json()["refresh_token"]}
        ).status_code
        == 204
    )
    assert client.get("/auth/2fa", headers=me).status_code == 200
    secret = client.post("/auth/2fa", headers=me).json()["secret"]
    code = otp.code_at_step(secret, otp.time_step(clock.now()))
    assert client.post("/auth/2fa/confirm", json={"code": code}, headers=me).status_code == 200
    clock.advance(timedelta(seconds=otp.STEP_SECONDS))
    code = otp.code_at_step(secret, otp.time_step(clock.now()))
    assert client.post("/auth/2fa/disable", json={"code": code}, headers=me).status_code == 204

    # An ATM's token from the token endpoint.
    admin = make_admin(service)
    atm = service.add_atm(actor=admin, name="ATM Tour")
    assert atm.client is not None
    service.load_cassettes(actor=admin, terminal_id=atm.terminal.id, notes={2000: 20})
    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": atm.client.id,
            "client_secret": atm.client_secret,
        },
    ).json()
    terminal = {"Authorization": f"Bearer {token['access_token']}"}

    # Money.
    def keyed(key: str) -> dict[str, str]:
        return {**me, "Idempotency-Key": key}

    assert (
        client.post(f"{url}/topup", json={"amount": "500"}, headers=keyed("t1")).status_code == 201
    )
    assert client.get(f"{url}/balance", headers=me).status_code == 200
    assert (
        client.post(
            f"{url}/transfer", json={"to": bruno["phone"], "amount": "10"}, headers=keyed("t2")
        ).status_code
        == 201
    )
    unknown = client.post(
        "/payments/bill",
        json={"biller": "aguas-maputo", "amount": "10", "reference": bill_reference("9994")},
        headers=keyed("t3"),
    )
    assert unknown.status_code == 202, unknown.text
    assert (
        client.post("/payments/topup", json={"amount": "20"}, headers=keyed("t4")).status_code
        == 201
    )
    raw = json.dumps(
        {"payment_id": unknown.json()["payment_id"], "status": "approved", "provider_ref": "CB-9"}
    ).encode()
    stamp = str(int(time.time()))
    settled = client.post(
        "/payments/callback/sandbox",
        content=raw,
        headers={TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(CALLBACK_SECRET, stamp, raw)},
    )
    assert settled.json()["settled"] is True

    # Withdrawals: one paid out, one reversed, one cancelled.
    issued = [
        client.post(
            "/atm/withdrawal-request", json={"amount": "40", "pin": PIN}, headers=keyed(f"w{n}")
        ).json()
        for n in range(3)
    ]
    paid, reversed_, cancelled = issued
    checked = client.post(
        "/atm/validate-token", json={"code": paid["code"], "pin": PIN}, headers=terminal
    )
    assert checked.status_code == 200, checked.text
    base = "/atm/withdrawals"
    for step in ("dispense", "confirm"):  # the notes marked out, then presented and taken
        answer = client.post(f"{base}/{paid['withdrawal_id']}/{step}", headers=terminal)
        assert answer.status_code == 200, answer.text
    assert (
        client.post(
            "/atm/validate-token",
            json={"qr": reversed_["qr_payload"], "pin": PIN},
            headers=terminal,
        ).status_code
        == 200
    )
    assert (
        client.post(f"{base}/{reversed_['withdrawal_id']}/reverse", headers=terminal).status_code
        == 200
    )
    assert client.post(f"{base}/{cancelled['withdrawal_id']}/cancel", headers=me).status_code == 200
    assert len(client.get(base, headers=me).json()["withdrawals"]) == 3

    # The inbox.
    inbox = client.get("/notifications?unread=true", headers=me).json()["notifications"]
    assert inbox
    assert (
        client.post(f"/notifications/{inbox[0]['notification_id']}/read", headers=me).status_code
        == 200
    )

    # Reports: Ana's own, and the operators' (an admin's login).
    for report in ("transactions", "statement", "stats", "trends"):
        assert client.get(f"/reports/{report}/{ana['user_id']}", headers=me).status_code == 200
    books = service.login(phone=admin.phone, password=PASSWORD).tokens.access_token
    operator = {"Authorization": f"Bearer {books}"}
    for report in ("volumes", "active", "fees", "cash", "holds", "trial-balance"):
        answer = client.get(f"/admin/reports/{report}", headers=operator)
        assert answer.status_code == 200, answer.text
    found = client.get(f"/admin/users/by-phone/{ana['phone']}", headers=operator)
    assert found.json()["user_id"] == ana["user_id"]
    # An admin's changes to a person (the remote `admin users set-role|tier|freeze|unfreeze`).
    for path, change in (("/admin/users/tier", {"tier": "verified"}),
                         ("/admin/users/role", {"role": "customer"}),
                         ("/admin/wallets/status", {"status": "active"})):  # fmt: skip
        answer = client.post(path, json={"phone": bruno["phone"], **change}, headers=operator)
        assert answer.status_code == 200, answer.text

    # What a person's client (the remote CLI) asks besides.
    assert client.get("/auth/me", headers=me).json()["user_id"] == ana["user_id"]
    quote = client.get(f"{url}/quote?movement=transfer&amount=10", headers=me)
    assert quote.status_code == 200, quote.text
    assert client.get(f"{url}/limits", headers=me).status_code == 200
    assert client.get(f"{url}/tariffs", headers=me).status_code == 200
    preferences = "/notifications/preferences"
    assert client.put(preferences, json={"push": True}, headers=me).json()["push"] is True
    assert client.get(preferences, headers=me).status_code == 200
    assert client.get("/payments/billers", headers=me).json()["billers"]
    paid = client.get("/payments", headers=me).json()["payments"]
    assert len(paid) == 2
    shown = client.get(f"/payments/{paid[0]['payment_id']}", headers=me)
    assert shown.status_code == 200, shown.text
    number = "4111111111111111"
    card = client.post(
        "/payments/card-topup",
        json={"source": "card", "reference": number, "amount": "15"},
        headers=keyed("c1"),
    )
    assert card.status_code in (201, 202), card.text

    # A device logs in (RFC 8628): it asks, the person approves on the page, it polls.
    asked = client.post("/oauth/device_authorization", data={"client_id": "mwallet-cli"}).json()
    page = client.get("/device", params={"user_code": asked["user_code"]})
    assert asked["user_code"] in page.text
    approved = client.post(
        "/device",
        data={"user_code": asked["user_code"], "phone": ana["phone"], "password": PASSWORD},
    )
    assert approved.status_code == 200, approved.text
    device = client.post("/oauth/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": asked["device_code"], "client_id": "mwallet-cli",
    })  # fmt: skip
    assert device.status_code == 200, device.text

    changed = client.post("/auth/password", json={"current": "correct-horse-battery",
                                                   "new": "another-horse-battery"},
                          headers=bruno["auth"])  # fmt: skip
    assert changed.status_code == 204, changed.text

    assert conformance(client).seen == operations(document(SERVICES))


def test_the_strict_reading_of_bodies_and_queries_is_described() -> None:
    # `server/body.py` refuses a body over 64 KiB (413) or labelled as neither JSON nor, where
    # one is taken, a form (415: what `curl -d '{...}'` sends); every GET behind a token refuses
    # a query parameter it does not take (400, `strict_query`). A client reading the document
    # must find those answers listed where they can come.
    described = document(SERVICES)
    for path, operations in described["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            if "requestBody" in operation:
                assert "413" in statuses, (method, path)
                if path != "/payments/callback/{provider}":  # read as signed bytes, any label
                    assert "415" in statuses, (method, path)
            if method == "get" and operation["security"]:
                assert "400" in statuses, (method, path)
