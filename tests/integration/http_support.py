"""What the HTTP tests share: the app on the test's database through Starlette's TestClient, a
person registered and logged in over HTTP, money put in their wallet, a problem+json check."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from starlette.testclient import TestClient

from mwallet.bootstrap import Wallet
from mwallet.server.app import SERVICES, create_app
from mwallet.server.openapi import document
from tests.support import OPERATOR, PASSWORD, new_phone

CALLBACK_SECRET = "acme-callback-secret"


@pytest.fixture(name="client")
def client_fixture(wallet: Wallet) -> Iterator[TestClient]:
    """The app with every service; each answer is checked against its OpenAPI description
    (`conformance(client)` tells which operations answered)."""
    with conformant_client(wallet) as test_client:
        yield test_client


@contextmanager
def conformant_client(wallet: Wallet, **options: Any) -> Iterator[TestClient]:
    """A TestClient of the app with every service (`options`: more of `create_app`'s), each
    answer checked against the document; the ledger verifies afterwards."""
    app = create_app(
        wallet.service, callback_secrets={"sandbox": CALLBACK_SECRET}, relay_inbox=True,
        **options,
    )  # fmt: skip
    app.state.conformance = conformance = Conformance()
    with TestClient(app) as test_client:
        test_client.event_hooks = {"response": [conformance.check]}
        yield test_client
    assert wallet.service.verify_ledger(actor=OPERATOR).ok


def conformance(client: TestClient) -> Conformance:
    found = client.app.state.conformance  # type: ignore[attr-defined]
    assert isinstance(found, Conformance)
    return found


class Conformance:
    """Checks each answer against the OpenAPI document (`server.openapi`): its status is described
    for its operation (or falls under `default`), its content type is one described there, and
    its body validates against the schema; remembers which operations answered."""

    def __init__(self) -> None:
        self.document = document(SERVICES)
        self.seen: set[tuple[str, str]] = set()
        self._templates = [
            (re.compile("^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(path)) + "$"), path)
            for path in self.document["paths"]
        ]

    def template(self, path: str) -> str | None:
        found = [template for pattern, template in self._templates if pattern.match(path)]
        return found[0] if found else None

    def check(self, response: httpx.Response) -> None:
        response.read()
        method = response.request.method.lower()
        # The path as sent: a path parameter's escaped `/` (%2F) stays inside its segment.
        sent = response.request.url.raw_path.decode("ascii").split("?", 1)[0]
        template = self.template(sent)
        operation = self.document["paths"].get(template, {}).get(method)
        if operation is None:  # not described: must be a 404 or 405 problem
            assert response.status_code in (404, 405), response.request.url
            self._validate(response, {"$ref": "#/components/schemas/Problem"})
            return
        assert template is not None
        self.seen.add((method, template))
        described = operation["responses"]
        spec = described.get(str(response.status_code), described["default"])
        if "content" not in spec:
            assert not response.content, (template, response.status_code, response.text)
            return
        kind = response.headers.get("content-type", "").split(";")[0]
        assert kind in spec["content"], (template, response.status_code, kind)
        self._validate(response, spec["content"][kind]["schema"])

    def _validate(self, response: httpx.Response, schema: dict[str, Any]) -> None:
        whole = {**schema, "components": self.document["components"]}
        kind = response.headers.get("content-type", "")
        body = response.json() if "json" in kind else response.text
        errors = list(Draft202012Validator(whole).iter_errors(body))
        assert not errors, (
            response.request.method,
            response.request.url.path,
            response.status_code,
            [error.message for error in errors],
        )


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
