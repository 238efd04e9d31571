"""A wallet service that verifies access tokens with the keys the auth service publishes
(`mwallet.jwks.JwksPublicKeys`), on both databases: the auth app and the wallet app are two
Starlette apps on one database, the wallet's only way to the keys is the auth app's
`/.well-known/jwks.json` over HTTP (Starlette's TestClient). The key set's cache runs on a clock
the test turns, so refreshes happen exactly when a test says."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from mwallet.bootstrap import Wallet
from mwallet.core import tokens
from mwallet.core.clock import FixedClock
from mwallet.core.domain.sessions import ACCESS_TOKEN_LIFETIME
from mwallet.jwks import MAX_AGE_SECONDS, JwksPublicKeys
from mwallet.server.app import create_app
from tests.integration.http_support import is_problem, person
from tests.support import OPERATOR, PASSWORD, TEST_KEYRING, open_wallet

MIN_REFRESH = 10.0


class Ticks:
    """The monotonic clock of the key set's cache."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Split:
    auth: TestClient  # the auth service, on the test's database
    wallet: TestClient  # the wallet service, verifying tokens with the auth service's JWKS
    keys: JwksPublicKeys
    ticks: Ticks


@pytest.fixture
def split(wallet: Wallet, db_url: str, clock: FixedClock) -> Iterator[Split]:
    ticks = Ticks()
    with TestClient(create_app(wallet.service, services=["auth"], rate_limit=None)) as auth:
        keys = JwksPublicKeys(
            "http://auth.internal", http=auth, min_refresh=MIN_REFRESH, monotonic=ticks
        )
        remote = open_wallet(db_url, clock)
        remote.service.public_keys = keys
        with TestClient(create_app(remote.service, services=["wallet"])) as wallet_client:
            yield Split(auth, wallet_client, keys, ticks)
        remote.close()


def balance_of(split: Split, who: dict[str, Any], token: str | None = None) -> Any:
    bearer = {"Authorization": f"Bearer {token or who['tokens']['access_token']}"}
    return split.wallet.get(f"/wallet/{who['user_id']}/balance", headers=bearer)


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def stored_private_key(wallet: Wallet, kid: str) -> bytes:
    with wallet.engine.connect() as conn:
        sealed = conn.execute(
            text("SELECT private_key FROM signing_keys WHERE kid = :kid"), {"kid": kid}
        ).scalar_one()
    return TEST_KEYRING.open(sealed, context=f"signing-key:{kid}")


def test_tokens_from_auth_verify_at_the_wallet_with_one_fetch_of_the_key_set(split: Split) -> None:
    ana = person(split.auth)
    for _ in range(3):
        found = balance_of(split, ana)
        assert (found.status_code, found.json()["balance"]) == (200, "0.00")
    assert split.keys.fetches == 1  # cached: not one request to auth per token
    # The wallet process does not serve auth: only the auth process publishes keys.
    assert split.wallet.get("/.well-known/jwks.json").status_code == 404


def test_made_up_key_ids_cost_the_auth_service_one_fetch_per_refresh_interval(
    split: Split,
) -> None:
    ana = person(split.auth)
    assert balance_of(split, ana).status_code == 200
    real = ana["tokens"]["access_token"]
    foreign, _ = tokens.new_signing_key()
    for number in range(30):
        forged = tokens.sign(claims_of(real), kid=f"k-made-up-{number}", private_key=foreign)
        is_problem(balance_of(split, ana, forged), 401, "invalid_token")
    assert split.keys.fetches == 1  # fetched once for the real token, within the interval
    split.ticks.now += MIN_REFRESH
    for number in range(30, 60):
        forged = tokens.sign(claims_of(real), kid=f"k-made-up-{number}", private_key=foreign)
        is_problem(balance_of(split, ana, forged), 401, "invalid_token")
    assert split.keys.fetches == 2
    assert balance_of(split, ana).status_code == 200


def test_tampered_and_foreign_tokens_are_refused(split: Split) -> None:
    ana, bruno = person(split.auth), person(split.auth, "Bruno Tembe")
    real = ana["tokens"]["access_token"]
    header, _, signature = real.split(".")
    as_bruno = {**claims_of(real), "sub": bruno["user_id"]}
    body = base64.urlsafe_b64encode(json.dumps(as_bruno).encode()).decode().rstrip("=")
    is_problem(balance_of(split, bruno, f"{header}.{body}.{signature}"), 401, "invalid_token")
    # Signed by a key the auth service never published, under the kid of one it does.
    foreign, _ = tokens.new_signing_key()
    kid = tokens.key_id_of(real)
    forged = tokens.sign({**claims_of(real), "roles": ["admin"]}, kid=kid, private_key=foreign)
    is_problem(balance_of(split, ana, forged), 401, "invalid_token")
    assert balance_of(split, ana).status_code == 200


def test_a_rotated_key_is_picked_up_at_the_next_refresh(split: Split, wallet: Wallet) -> None:
    ana = person(split.auth)
    assert balance_of(split, ana).status_code == 200
    rotated = wallet.service.rotate_signing_key(actor=OPERATOR)
    again = person_login(split, ana)
    assert tokens.key_id_of(again) == rotated.kid
    # Inside the refresh interval the new kid is not fetched yet: refused, and no request.
    is_problem(balance_of(split, ana, again), 401, "invalid_token")
    assert split.keys.fetches == 1
    split.ticks.now += MIN_REFRESH
    assert balance_of(split, ana, again).status_code == 200
    assert balance_of(split, ana).status_code == 200  # the old key is still published
    assert split.keys.fetches == 2


def test_a_key_no_longer_published_stops_verifying_after_the_refresh(
    split: Split, wallet: Wallet, clock: FixedClock
) -> None:
    ana = person(split.auth)
    old = ana["tokens"]["access_token"]
    old_kid = tokens.key_id_of(old)
    # A token of the old key that would otherwise live long: only the key's age ends it.
    long_lived = tokens.sign(
        {**claims_of(old), "exp": 2**40},
        kid=old_kid,
        private_key=stored_private_key(wallet, old_kid),
    )
    assert balance_of(split, ana, long_lived).status_code == 200
    wallet.service.rotate_signing_key(actor=OPERATOR)
    clock.advance(ACCESS_TOKEN_LIFETIME)
    assert old_kid not in {
        key["kid"] for key in split.auth.get("/.well-known/jwks.json").json()["keys"]
    }
    # The cached key set still holds it until it is fetched again, at most MAX_AGE later.
    assert balance_of(split, ana, long_lived).status_code == 200
    split.ticks.now += MAX_AGE_SECONDS
    is_problem(balance_of(split, ana, long_lived), 401, "invalid_token")
    assert split.keys.fetches == 2
    assert balance_of(split, ana, person_login(split, ana)).status_code == 200


def test_without_the_auth_service_tokens_are_refused_with_503(
    wallet: Wallet, db_url: str, clock: FixedClock
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with TestClient(create_app(wallet.service, services=["auth"], rate_limit=None)) as auth:
        ana = person(auth)
    remote = open_wallet(db_url, clock)
    remote.service.public_keys = JwksPublicKeys(f"http://127.0.0.1:{port}")
    try:
        with TestClient(create_app(remote.service, services=["wallet"])) as wallet_client:
            answer = wallet_client.get(f"/wallet/{ana['user_id']}/balance", headers=ana["auth"])
            is_problem(answer, 503, "keys_unavailable")
            assert answer.headers["Retry-After"]
    finally:
        remote.close()


class Outage:
    """The wallet's way to the auth app, cut until `restore()`: a connection refused, as when
    the auth service is not up yet."""

    def __init__(self, auth: TestClient) -> None:
        self.auth = auth
        self.down = True

    def get(self, url: str) -> Any:
        if self.down:
            raise httpx.ConnectError("connection refused")
        return self.auth.get(url)

    def restore(self) -> None:
        self.down = False

    def close(self) -> None:
        pass


def test_not_ready_until_the_key_set_is_fetched_and_probes_fetch_at_the_refresh_pace(
    wallet: Wallet, db_url: str, clock: FixedClock
) -> None:
    ticks = Ticks()
    remote = open_wallet(db_url, clock)
    try:
        with TestClient(create_app(wallet.service, services=["auth"], rate_limit=None)) as auth:
            ana = person(auth)
            outage = Outage(auth)
            keys = JwksPublicKeys("http://auth.internal", http=outage, min_refresh=MIN_REFRESH,
                                  monotonic=ticks)  # fmt: skip
            remote.service.public_keys = keys
            with TestClient(create_app(remote.service, services=["wallet"])) as wallet_client:
                for _ in range(5):  # a probe a second: one fetch per refresh interval
                    is_problem(wallet_client.get("/readyz"), 503, "keys_unavailable")
                assert keys.fetches == 1
                outage.restore()
                # Still inside the interval: not asked again, still not ready.
                is_problem(wallet_client.get("/readyz"), 503, "keys_unavailable")
                assert keys.fetches == 1
                ticks.now += MIN_REFRESH
                ready = wallet_client.get("/readyz")
                assert (ready.status_code, ready.json()) == (
                    200, {"status": "ready", "currency": "USD", "region": None},
                )  # fmt: skip
                assert keys.fetches == 2
                # Ready from the cache: probes ask nothing more, tokens verify with no fetch.
                for _ in range(5):
                    assert wallet_client.get("/readyz").status_code == 200
                found = wallet_client.get(f"/wallet/{ana['user_id']}/balance", headers=ana["auth"])
                assert found.status_code == 200
                assert keys.fetches == 2
                # The auth service down again: the keys held keep the process ready and verifying.
                outage.down = True
                ticks.now += MAX_AGE_SECONDS
                found = wallet_client.get(f"/wallet/{ana['user_id']}/balance", headers=ana["auth"])
                assert found.status_code == 200
                assert wallet_client.get("/readyz").status_code == 200
                assert keys.fetches == 3
    finally:
        remote.close()


def person_login(split: Split, who: dict[str, Any]) -> str:
    answer = split.auth.post("/auth/login", json={"phone": who["phone"], "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])
