"""What the HTTP tests share: the app on the test's database through Starlette's TestClient, a
person registered and logged in over HTTP, money put in their wallet, a problem+json check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from mwallet.bootstrap import Wallet
from mwallet.server.app import create_app
from tests.support import OPERATOR, PASSWORD, new_phone

CALLBACK_SECRET = "acme-callback-secret"


@pytest.fixture(name="client")
def client_fixture(wallet: Wallet) -> Iterator[TestClient]:
    app = create_app(
        wallet.service, callback_secrets={"sandbox": CALLBACK_SECRET}, relay_inbox=True
    )
    with TestClient(app) as test_client:
        yield test_client
    assert wallet.service.verify_ledger(actor=OPERATOR).ok


def person(client: TestClient, name: str = "Ana Machava") -> dict[str, Any]:
    phone = new_phone()
    made = client.post("/auth/register", json={"phone": phone, "name": name, "password": PASSWORD})
    assert made.status_code == 201, made.text
    tokens = client.post("/auth/login", json={"phone": phone, "password": PASSWORD}).json()
    return {**made.json(), "auth": {"Authorization": f"Bearer {tokens['access_token']}"},
            "tokens": tokens}  # fmt: skip


def fund(wallet: Wallet, who: dict[str, Any], amount: str) -> None:
    service = wallet.service
    principal = service.authenticate(access_token=who["tokens"]["access_token"])
    service.topup(principal, amount=service.parse_money(amount), source="sandbox",
                  idempotency_key=f"fund-{who['user_id']}")  # fmt: skip


def balance(client: TestClient, who: dict[str, Any]) -> tuple[str, str]:
    found = client.get(f"/wallet/{who['user_id']}/balance", headers=who["auth"])
    assert found.status_code == 200, found.text
    return found.json()["balance"], found.json()["available"]


def is_problem(answer: Any, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = answer.json()
    assert body["type"].endswith("/" + code), body
    assert body["status"] == status
    assert body["detail"]
