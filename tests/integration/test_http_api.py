"""The HTTP services through Starlette's TestClient, on both databases: auth, the wallet's balance
and transfer with Idempotency-Key semantics, bill payments and the provider's signed callback, and
the request hygiene every endpoint shares (problem+json, strict JSON, no floats)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from mwallet.bootstrap import Wallet
from mwallet.core.domain.payments import luhn_digit
from mwallet.providers.http import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from mwallet.server.app import create_app
from tests.integration.http_support import (
    CALLBACK_SECRET,
    balance,
    client_fixture,  # noqa: F401 (the `client` fixture)
    fund,
    is_problem,
    person,
)


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")


def test_register_login_refresh_logout_and_jwks(client: TestClient) -> None:
    ana = person(client)
    assert ana["tokens"]["token_type"] == "Bearer"
    refreshed = client.post("/auth/refresh", json={"refresh_token": ana["tokens"]["refresh_token"]})
    assert refreshed.status_code == 200
    # The old refresh token was rotated: using it again ends the whole family.
    is_problem(
        client.post("/auth/refresh", json={"refresh_token": ana["tokens"]["refresh_token"]}),
        401, "refresh_token_reused",
    )  # fmt: skip
    assert (
        client.post(
            "/auth/logout", json={"refresh_token": refreshed.json()["refresh_token"]}
        ).status_code
        == 204
    )
    keys = client.get("/.well-known/jwks.json").json()["keys"]
    assert keys
    assert all(key["kty"] == "OKP" for key in keys)
    is_problem(
        client.post("/auth/login", json={"phone": ana["phone"], "password": "wrong-password-9"}),
        401, "invalid_credentials",
    )  # fmt: skip


def test_a_transfer_with_idempotency_key_semantics(client: TestClient, wallet: Wallet) -> None:
    ana, bruno = person(client), person(client, "Bruno Tembe")
    fund(wallet, ana, "100")
    url = f"/wallet/{ana['user_id']}/transfer"
    body = {"to": bruno["phone"], "amount": "12.50", "note": "lunch"}
    headers = {**ana["auth"], "Idempotency-Key": "t-1"}
    first = client.post(url, json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["amount"] == "12.50"
    again = client.post(url, json=body, headers=headers)
    assert (again.status_code, again.json()) == (201, first.json())  # the original answer
    is_problem(client.post(url, json={**body, "amount": "13"}, headers=headers), 422,
               "idempotency_key_reused")  # fmt: skip
    is_problem(client.post(url, json=body, headers=ana["auth"]), 400, "idempotency_key_missing")
    assert balance(client, ana) == ("87.50", "87.50")  # moved once
    assert balance(client, bruno) == ("12.50", "12.50")
    # Keys are per caller: Bruno's "t-1" is his own.
    back = client.post(
        f"/wallet/{bruno['user_id']}/transfer", json={"to": ana["phone"], "amount": "2.50"},
        headers={**bruno["auth"], "Idempotency-Key": "t-1"},
    )  # fmt: skip
    assert back.status_code == 201


def test_a_wallet_is_its_owners_only(client: TestClient) -> None:
    ana, bruno = person(client), person(client, "Bruno Tembe")
    is_problem(client.get(f"/wallet/{bruno['user_id']}/balance", headers=ana["auth"]), 403,
               "permission_denied")  # fmt: skip
    is_problem(client.get(f"/wallet/{ana['user_id']}/balance"), 401, "not_authenticated")
    forged = {"Authorization": "Bearer " + ana["tokens"]["access_token"][:-4] + "AAAA"}
    assert client.get(f"/wallet/{ana['user_id']}/balance", headers=forged).status_code == 401


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        ('{"to": "+258841234567", "amount": 12.5}', 422, "float_amount"),
        ('{"to": "+258841234567", "amount": "1", "extra": 1}', 400, "unknown_fields"),
        ('{"to": "+258841234567"}', 400, "missing_fields"),
        ('{"to": "+258841234567", "amount": 12}', 400, "wrong_type"),
        ('{"to": "+258841234567", "amount": true}', 400, "wrong_type"),
        ("{not json", 400, "bad_json"),
        ("[1, 2]", 400, "bad_json"),
        ('{"to": "+258841234567", "amount": NaN}', 422, "float_amount"),
        ('{"to": "x", "amount": "1", "note": ' + "[" * 50 + "]" * 50 + "}", 400, "too_deep"),
        (
            '{"to": "+258841234567", "amount": "1", "note": "' + "x" * 70_000 + '"}',
            413,
            "body_too_large",
        ),
        ('{"to": "+258841234567", "amount": "1e3"}', 422, "invalid_amount"),
        ('{"to": "+258841234567", "amount": "-5"}', 422, "invalid_amount"),
    ],
)
def test_bad_requests_are_4xx_problems_and_change_nothing(
    client: TestClient, wallet: Wallet, raw: str, status: int, code: str
) -> None:
    ana = person(client)
    fund(wallet, ana, "100")
    answer = client.post(
        f"/wallet/{ana['user_id']}/transfer", content=raw.encode(),
        headers={**ana["auth"], "Idempotency-Key": "bad-1", "Content-Type": "application/json"},
    )  # fmt: skip
    is_problem(answer, status, code)
    assert balance(client, ana) == ("100.00", "100.00")


def bill_reference(prefix: str) -> str:
    body = f"{prefix}123"
    return body + luhn_digit(body)


def test_bills_paid_declined_and_settled_by_a_signed_callback(
    client: TestClient, wallet: Wallet
) -> None:
    ana = person(client)
    fund(wallet, ana, "100")

    def pay(reference: str, key: str) -> Any:
        return client.post(
            "/payments/bill", json={"biller": "aguas-maputo", "reference": reference,
                                    "amount": "10"},
            headers={**ana["auth"], "Idempotency-Key": key},
        )  # fmt: skip

    paid = pay(bill_reference("1234"), "b-1")
    assert (paid.status_code, paid.json()["state"]) == (201, "succeeded")
    declined = pay(bill_reference("9991"), "b-2")
    assert (declined.status_code, declined.json()["state"]) == (422, "failed")
    unknown = pay(bill_reference("9994"), "b-3")
    assert (unknown.status_code, unknown.json()["state"]) == (202, "unknown")
    assert balance(client, ana) == ("90.00", "80.00")

    payment_id = unknown.json()["payment_id"]
    raw = json.dumps({"payment_id": payment_id, "status": "approved",
                      "provider_ref": "CB-1"}).encode()  # fmt: skip
    stamp = str(int(time.time()))
    signed = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(CALLBACK_SECRET, stamp, raw)}
    first = client.post("/payments/callback/sandbox", content=raw, headers=signed)
    assert first.json() == {"payment_id": payment_id, "settled": True}
    again = client.post("/payments/callback/sandbox", content=raw, headers=signed)
    assert again.json() == {"payment_id": payment_id, "settled": False}  # a duplicate
    forged = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign("guess", stamp, raw)}
    is_problem(client.post("/payments/callback/sandbox", content=raw, headers=forged), 400,
               "invalid_input")  # fmt: skip
    is_problem(client.post("/payments/callback/nobody", content=raw, headers=signed), 404,
               "unknown_provider")  # fmt: skip
    assert balance(client, ana) == ("80.00", "80.00")


def test_airtime_over_http(client: TestClient, wallet: Wallet) -> None:
    ana = person(client)
    fund(wallet, ana, "100")
    bought = client.post("/payments/topup", json={"amount": "20", "phone": "+258861110001"},
                         headers={**ana["auth"], "Idempotency-Key": "a-1"})  # fmt: skip
    assert (bought.status_code, bought.json()["biller"]) == (201, "airtime-movitel")


def test_one_process_can_serve_only_some_services(wallet: Wallet) -> None:
    with TestClient(create_app(wallet.service, services=["auth"])) as auth_only:
        assert auth_only.get("/.well-known/jwks.json").status_code == 200
        assert auth_only.get("/wallet/x/balance").status_code == 404
        assert auth_only.get("/healthz").status_code == 200
    with pytest.raises(ValueError, match="unknown service"):
        create_app(wallet.service, services=["reports-v9"])


def test_the_fee_table_over_http(client: TestClient, wallet: Wallet) -> None:
    from mwallet.core.domain.tariffs import Band, Movement, Tariff
    from tests.support import make_admin

    admin = make_admin(wallet.service)
    wallet.service.set_tariff(actor=admin, movement=Movement.TRANSFER, tariff=Tariff(
        (Band(10_000, 50), Band(None, 0, 150)), min_minor=10, max_minor=500,
    ))  # fmt: skip
    ana, bruno = person(client), person(client, "Bruno Tembe")
    url = f"/wallet/{ana['user_id']}/tariffs"
    found = client.get(url, headers=ana["auth"])
    assert found.status_code == 200, found.text
    table = found.json()
    assert table["currency"] == wallet.service.settings.currency
    assert list(table["tariffs"]) == [movement.value for movement in Movement]
    assert table["tariffs"]["transfer"]["bands"] == [
        {"up_to": "100.00", "flat": "0.50", "percent": "0"},
        {"up_to": None, "flat": "0.00", "percent": "1.5"},
    ]
    assert (table["tariffs"]["transfer"]["min"], table["tariffs"]["transfer"]["max"]) == (
        "0.10", "5.00",
    )  # fmt: skip
    assert table["tariffs"]["bill"] is None  # free

    is_problem(client.get(f"/wallet/{bruno['user_id']}/tariffs", headers=ana["auth"]), 403,
               "permission_denied")  # fmt: skip
    is_problem(client.get(url), 401, "not_authenticated")
    is_problem(client.get(f"{url}?movement=transfer", headers=ana["auth"]), 400, "invalid_input")
