"""Idempotency-Key semantics on every money-moving POST, over HTTP on both databases (IETF httpapi
idempotency-key draft): the same key and body answer with the original status and body and move
nothing again; the same key with another body is 422; no key is 400; keys belong to their caller;
a request whose twin (same caller, same key) is still running is 409 at once."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from mwallet.bootstrap import Wallet
from mwallet.core.domain.ledger import wallet_account_code
from mwallet.core.domain.payments import luhn_digit
from tests.integration.http_support import (
    balance,
    client_fixture,  # noqa: F401 (the `client` fixture)
    fund,
    is_problem,
    person,
)
from tests.integration.withdrawal_support import PIN

WAIT = 30.0  # seconds: an upper bound for a condition to come true, never a pause


@dataclass(frozen=True)
class Moving:
    name: str
    url: Callable[[dict[str, Any]], str]
    body: dict[str, Any]
    other: dict[str, Any]
    left: str  # the caller's available balance after it, once, from 100.00
    secrets: tuple[str, ...] = ()  # shown the first time only


def bill(prefix: str) -> str:
    return f"{prefix}123" + luhn_digit(f"{prefix}123")


MOVING = [
    Moving("transfer", lambda who: f"/wallet/{who['user_id']}/transfer",
           {"to": "+258861110002", "amount": "12.50"}, {"to": "+258861110002", "amount": "13"},
           "87.50"),
    Moving("topup", lambda who: f"/wallet/{who['user_id']}/topup", {"amount": "5"},
           {"amount": "6"}, "105.00"),
    Moving("bill", lambda who: "/payments/bill",
           {"biller": "aguas-maputo", "reference": bill("1234"), "amount": "10"},
           {"biller": "aguas-maputo", "reference": bill("1235"), "amount": "10"}, "90.00"),
    Moving("airtime", lambda who: "/payments/topup", {"amount": "20", "phone": "+258861110001"},
           {"amount": "21", "phone": "+258861110001"}, "80.00"),
    Moving("withdrawal", lambda who: "/atm/withdrawal-request", {"amount": "60", "pin": PIN},
           {"amount": "60", "pin": PIN, "channel": "agent"}, "40.00",
           ("code", "pin", "qr_payload")),
]  # fmt: skip


@pytest.fixture
def recipient(client: TestClient) -> dict[str, Any]:
    made = client.post("/auth/register", json={"phone": "+258861110002", "name": "Bruno Tembe",
                                               "password": "correct-horse-battery"})  # fmt: skip
    assert made.status_code == 201, made.text
    return dict(made.json())


@pytest.mark.parametrize("moving", MOVING, ids=[one.name for one in MOVING])
def test_the_same_key_replays_another_body_is_refused(
    client: TestClient, wallet: Wallet, recipient: dict[str, Any], moving: Moving
) -> None:
    ana, carla = person(client), person(client, "Carla Mendes")
    for who in (ana, carla):
        fund(wallet, who, "100")
    url = moving.url(ana)
    keyed = {**ana["auth"], "Idempotency-Key": "same-key"}
    first = client.post(url, json=moving.body, headers=keyed)
    assert first.status_code in (201, 202), first.text
    again = client.post(url, json=moving.body, headers=keyed)
    assert again.status_code == first.status_code
    shown = {name: value for name, value in first.json().items() if name not in moving.secrets}
    assert {name: value for name, value in again.json().items()
            if name not in moving.secrets} == shown  # fmt: skip
    assert all(again.json()[name] is None for name in moving.secrets)
    is_problem(client.post(url, json=moving.other, headers=keyed), 422, "idempotency_key_reused")
    is_problem(client.post(url, json=moving.body, headers=ana["auth"]), 400,
               "idempotency_key_missing")  # fmt: skip
    assert balance(client, ana)[1] == moving.left  # moved once
    # The key is Ana's: Carla's "same-key" is her own and moves her money.
    theirs = client.post(moving.url(carla), json=moving.body,
                         headers={**carla["auth"], "Idempotency-Key": "same-key"})  # fmt: skip
    assert theirs.status_code == first.status_code, theirs.text
    assert balance(client, carla)[1] == moving.left


@pytest.mark.parametrize(
    "moving", [one for one in MOVING if one.name != "topup"], ids=lambda one: one.name
)
def test_a_refused_request_keeps_its_answer_under_its_key(
    client: TestClient, wallet: Wallet, recipient: dict[str, Any], moving: Moving
) -> None:
    ana = person(client)
    fund(wallet, ana, "5")
    url, keyed = moving.url(ana), {**ana["auth"], "Idempotency-Key": "refused-key"}
    first = client.post(url, json=moving.body, headers=keyed)
    is_problem(first, 422, "insufficient_funds")
    service = wallet.service
    service.topup(service.authenticate(access_token=ana["tokens"]["access_token"]),
                  amount=service.parse_money("100"), source="sandbox",
                  idempotency_key="more")  # fmt: skip

    # Now it would go through, but the key answers as it did: the same status and body.
    again = client.post(url, json=moving.body, headers=keyed)
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["content-type"] == first.headers["content-type"]
    is_problem(client.post(url, json=moving.other, headers=keyed), 422, "idempotency_key_reused")
    assert balance(client, ana) == ("105.00", "105.00")
    fresh = client.post(url, json=moving.body, headers={**ana["auth"], "Idempotency-Key": "new"})
    assert fresh.status_code in (201, 202), fresh.text


def test_a_key_used_for_one_operation_is_refused_for_another(
    client: TestClient, wallet: Wallet, recipient: dict[str, Any]
) -> None:
    ana = person(client)
    fund(wallet, ana, "100")
    keyed = {**ana["auth"], "Idempotency-Key": "one-key"}
    assert client.post(f"/wallet/{ana['user_id']}/topup", json={"amount": "5"},
                       headers=keyed).status_code == 201  # fmt: skip
    is_problem(client.post(f"/wallet/{ana['user_id']}/transfer",
                           json={"to": recipient["phone"], "amount": "5"}, headers=keyed),
               422, "idempotency_key_reused")  # fmt: skip
    assert balance(client, ana) == ("105.00", "105.00")


@contextmanager
def writes_held(wallet: Wallet, backend: str, db_url: str, user_id: str) -> Iterator[None]:
    """Hold the database so a transfer from `user_id` waits inside its unit of work: SQLite's
    write lock, or the row lock of the sender's wallet on PostgreSQL."""
    if backend == "sqlite":
        holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    with wallet.engine.connect() as conn:
        conn.execute(text("SELECT id FROM accounts WHERE code = :code FOR UPDATE"),
                     {"code": wallet_account_code(user_id)})  # fmt: skip
        yield
        conn.rollback()


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true"
        time.sleep(0.01)


def test_a_twin_of_a_running_request_is_409_and_then_replays(
    client: TestClient, wallet: Wallet, recipient: dict[str, Any], backend: str, db_url: str
) -> None:
    ana = person(client)
    fund(wallet, ana, "100")
    url = f"/wallet/{ana['user_id']}/transfer"
    body = {"to": recipient["phone"], "amount": "30"}
    keyed = {**ana["auth"], "Idempotency-Key": "slow-1"}
    answers: dict[str, Any] = {}
    in_flight = client.app.state.in_flight  # type: ignore[attr-defined]
    with writes_held(wallet, backend, db_url, ana["user_id"]):
        first = threading.Thread(target=lambda: answers.update(first=client.post(
            url, json=body, headers=keyed)))  # fmt: skip
        first.start()
        until(lambda: in_flight.running(ana["user_id"], "slow-1"))
        twin = client.post(url, json=body, headers=keyed)
        is_problem(twin, 409, "idempotency_key_in_flight")
        assert twin.headers["retry-after"] == "1"
    first.join(WAIT)
    assert answers["first"].status_code == 201, answers["first"].text
    replay = client.post(url, json=body, headers=keyed)
    assert (replay.status_code, replay.json()) == (201, answers["first"].json())
    assert not in_flight.running(ana["user_id"], "slow-1")
    assert balance(client, ana) == ("70.00", "70.00")
