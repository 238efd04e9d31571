"""Bad requests over HTTP, as a careless script or a hostile one sends them: each is a 4xx
problem with a clear detail, and none moves money or changes a row."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from mwallet.bootstrap import Wallet
from mwallet.core.errors import quoted
from tests.integration.http_support import (
    balance,
    client_fixture,  # noqa: F401 (the `client` fixture)
    fund,
    is_problem,
    person,
)


def test_an_optional_field_sent_as_null_is_left_out(client: TestClient, wallet: Wallet) -> None:
    # `"reference": null` once reached the card top-up as None: a 500 instead of the refusal
    # of a top-up that names no reference.
    ana = person(client)
    answer = client.post(
        "/payments/card-topup", json={"source": "card", "amount": "5", "reference": None},
        headers={**ana["auth"], "Idempotency-Key": "null-1"},
    )  # fmt: skip
    is_problem(answer, 400, "invalid_input")
    assert "reference" in answer.json()["detail"]


def test_a_field_sent_twice_is_refused_not_the_last_one_taken(
    client: TestClient, wallet: Wallet
) -> None:
    ana, bruno = person(client), person(client, "Bruno Tembe")
    fund(wallet, ana, "100")
    raw = f'{{"to": "{bruno["phone"]}", "amount": "1", "amount": "90"}}'
    answer = client.post(
        f"/wallet/{ana['user_id']}/transfer", content=raw.encode(),
        headers={**ana["auth"], "Idempotency-Key": "twice-1", "Content-Type": "application/json"},
    )  # fmt: skip
    is_problem(answer, 400, "duplicate_fields")
    assert "amount" in answer.json()["detail"]
    assert balance(client, ana) == ("100.00", "100.00")


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded", "image/png"])
def test_a_json_body_must_say_it_is_json(client: TestClient, wallet: Wallet, kind: str) -> None:
    ana, bruno = person(client), person(client, "Bruno Tembe")
    fund(wallet, ana, "100")
    raw = f'{{"to": "{bruno["phone"]}", "amount": "1"}}'
    answer = client.post(
        f"/wallet/{ana['user_id']}/transfer", content=raw.encode(),
        headers={**ana["auth"], "Idempotency-Key": "kind-1", "Content-Type": kind},
    )  # fmt: skip
    is_problem(answer, 415, "unsupported_media_type")
    assert balance(client, ana) == ("100.00", "100.00")
    # The key was not used up: the same request as JSON goes through.
    again = client.post(
        f"/wallet/{ana['user_id']}/transfer", content=raw.encode(),
        headers={**ana["auth"], "Idempotency-Key": "kind-1",
                 "Content-Type": "application/json; charset=utf-8"},
    )  # fmt: skip
    assert again.status_code == 201, again.text


@pytest.mark.parametrize(
    "path",
    [
        "/wallet/{me}/balance",
        "/wallet/{me}/limits",
        "/payments",
        "/payments/billers",
        "/auth/me",
        "/auth/2fa",
    ],
)
def test_an_unknown_query_parameter_is_refused_everywhere(client: TestClient, path: str) -> None:
    ana = person(client)
    answer = client.get(path.format(me=ana["user_id"]) + "?limt=5", headers=ana["auth"])
    is_problem(answer, 400, "invalid_input")
    assert "limt" in answer.json()["detail"]


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "1000000000", "99999999999999999999"])
def test_a_limit_out_of_range_says_its_range(client: TestClient, limit: str) -> None:
    # The CLI says the same for `--limit` (the services check the range).
    ana = person(client)
    answer = client.get(f"/notifications?limit={limit}", headers=ana["auth"])
    is_problem(answer, 400, "invalid_input")
    assert answer.json()["detail"] == "the limit must be between 1 and 1000"


@pytest.mark.parametrize("before", ["garbage", "", "0" * 27, "I" * 26])
def test_a_tampered_inbox_cursor_is_refused(client: TestClient, before: str) -> None:
    ana = person(client)
    answer = client.get("/notifications", params={"before": before}, headers=ana["auth"])
    is_problem(answer, 400, "invalid_input")
    assert "notification id" in answer.json()["detail"]


def test_an_oauth_body_is_a_form_or_json(client: TestClient) -> None:
    answer = client.post(
        "/oauth/token", content=b"grant_type=client_credentials",
        headers={"Content-Type": "text/plain"},
    )  # fmt: skip
    is_problem(answer, 415, "unsupported_media_type")
    assert "form" in answer.json()["detail"]


def test_a_refused_name_is_quoted_short_as_the_services_quote_input(client: TestClient) -> None:
    # As `core.errors.quoted` quotes what was typed: escaped, cut short, one line.
    ana = person(client)
    name = "x\x07" * 40
    answer = client.get("/payments", params={name: "1"}, headers=ana["auth"])
    is_problem(answer, 400, "invalid_input")
    assert answer.json()["detail"].startswith(f"unknown query parameter {quoted(name)} ")
    raw = f'{{"amount": "1", "{name}": 1, "{name}": 2}}'.replace("\x07", "\\u0007")
    answer = client.post(
        f"/wallet/{ana['user_id']}/topup", content=raw.encode(),
        headers={**ana["auth"], "Idempotency-Key": "quoted-1", "Content-Type": "application/json"},
    )  # fmt: skip
    is_problem(answer, 400, "duplicate_fields")
    assert answer.json()["detail"] == f"{quoted(name)} is sent more than once"
    answer = client.post(
        f"/wallet/{ana['user_id']}/topup", content=b'{"amount": "1"}',
        headers={**ana["auth"], "Idempotency-Key": "quoted-2", "Content-Type": "text/" + "x" * 90},
    )  # fmt: skip
    is_problem(answer, 415, "unsupported_media_type")
    assert answer.json()["detail"].endswith(f", not {quoted('text/' + 'x' * 90)}")
