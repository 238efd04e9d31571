"""Rate limits of the routes that guess secrets (login, the token endpoint, a terminal's code and
PIN check), per client address and route, over HTTP on both databases; and unknown routes and
methods as problem+json."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from mwallet.bootstrap import Wallet
from mwallet.server.app import RATE_LIMITED, RateLimit, create_app
from tests.integration.http_support import Conformance, is_problem
from tests.support import PASSWORD, register


class Clock:
    """The limiter's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticking() -> Clock:
    return Clock()


@pytest.fixture
def limited(wallet: Wallet, ticking: Clock) -> Iterator[TestClient]:
    app = create_app(wallet.service, rate_limit=RateLimit(2, 60), monotonic=ticking)
    with TestClient(app) as test_client:
        test_client.event_hooks = {"response": [Conformance().check]}
        yield test_client


def test_login_is_limited_per_client_address_and_refills(
    limited: TestClient, wallet: Wallet, ticking: Clock
) -> None:
    ana = register(wallet.service)
    login = {"phone": ana.phone, "password": PASSWORD}
    assert [limited.post("/auth/login", json=login).status_code for _ in range(2)] == [200, 200]
    refused = limited.post("/auth/login", json=login)
    is_problem(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "30"  # one request per 30 s comes back
    # Other routes and other addresses have buckets of their own.
    assert limited.post("/oauth/token", data={"grant_type": "password"}).status_code == 400
    with TestClient(limited.app, client=("198.51.100.7", 4000)) as elsewhere:
        assert elsewhere.post("/auth/login", json=login).status_code == 200
    ticking.now += 29
    is_problem(limited.post("/auth/login", json=login), 429, "rate_limited")
    ticking.now += 2  # 31 s since the refusal: one token, not two
    assert limited.post("/auth/login", json=login).status_code == 200
    is_problem(limited.post("/auth/login", json=login), 429, "rate_limited")


@pytest.mark.parametrize("path", sorted(RATE_LIMITED))
def test_every_secret_guessing_route_is_limited(limited: TestClient, path: str) -> None:
    statuses = [limited.post(path, json={}).status_code for _ in range(3)]
    assert statuses[:2] != [429, 429]
    assert statuses[2] == 429
    # Other routes are not limited.
    assert all(limited.get("/healthz").status_code == 200 for _ in range(5))


def test_no_limit_when_none_is_set(wallet: Wallet) -> None:
    with TestClient(create_app(wallet.service, rate_limit=None)) as free:
        assert {free.post("/auth/login", json={}).status_code for _ in range(15)} == {400}


def test_unknown_routes_and_methods_are_problems(limited: TestClient) -> None:
    is_problem(limited.get("/nowhere"), 404, "not_found")
    is_problem(limited.delete("/auth/login"), 405, "method_not_allowed")


@pytest.mark.parametrize("text", ["10", "0/60", "10/0", "x/60", "10/inf", "10/-5", ""])
def test_a_rate_limit_is_count_per_seconds(text: str) -> None:
    with pytest.raises(ValueError, match="COUNT/SECONDS"):
        RateLimit.parse(text)
    assert RateLimit.parse("10/60") == RateLimit(10, 60.0)
