"""Separate `mwallet serve` processes on one PostgreSQL (tests/e2e/serving.py: an auth process and
two wallet processes started with `--auth-url`): tokens issued by auth work at both wallet
processes, which check them with auth's published keys; forged tokens are refused there; a
rotated key is picked up; a wallet process that cannot reach auth is not ready."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from mwallet.bootstrap import build_wallet
from mwallet.core import tokens
from tests.e2e.serving import START_TIMEOUT_S, Cluster, base_env, free_port, serving, sign_up
from tests.support import FAST_HASHER, OPERATOR, PASSWORD, TEST_KEYRING

pytestmark = pytest.mark.xdist_group("services")


def phone() -> str:
    return f"+25886{uuid.uuid4().int % 10**7:07d}"  # the bank test's people are +25884…


def claims_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def refused(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("/" + code)


def test_tokens_from_the_auth_process_work_at_each_wallet_process(services: Cluster) -> None:
    first, second = services.wallets
    with httpx.Client(timeout=10) as http:
        ana = sign_up(http, services.auth, phone(), "Ana Machava")
        bruno = sign_up(http, services.auth, phone(), "Bruno Tembe")
        topup = http.post(f"{first}/wallet/{ana['user_id']}/topup", json={"amount": "50.00"},
                          headers={**ana["auth"], "Idempotency-Key": "top-1"})  # fmt: skip
        assert topup.status_code == 201, topup.text
        sent = http.post(f"{second}/wallet/{ana['user_id']}/transfer",
                         json={"to": bruno["phone"], "amount": "12.50"},
                         headers={**ana["auth"], "Idempotency-Key": "pay-1"})  # fmt: skip
        assert sent.status_code == 201, sent.text
        for base in services.wallets:
            found = http.get(f"{base}/wallet/{bruno['user_id']}/balance", headers=bruno["auth"])
            assert (found.status_code, found.json()["balance"]) == (200, "12.50")
        # Each process serves what it was started with, and only that.
        listed = http.get(f"{second}/atm/withdrawals", headers=ana["auth"])
        assert listed.json() == {"withdrawals": []}
        assert http.get(f"{first}/atm/withdrawals", headers=ana["auth"]).status_code == 404
        assert http.post(f"{first}/auth/login", json={}).status_code == 404
        assert http.get(f"{first}/.well-known/jwks.json").status_code == 404
        assert http.get(f"{services.auth}/wallet/{ana['user_id']}/balance").status_code == 404
    # The wallet processes were given no data key: they hold no signing key, only auth's JWKS.
    for number in (1, 2):
        assert not (services.logs / f"wallet-{number}-home" / "data.key").exists()


def test_forged_tokens_are_refused_by_a_wallet_process(services: Cluster) -> None:
    wallet = services.wallets[0]
    with httpx.Client(timeout=10) as http:
        ana = sign_up(http, services.auth, phone(), "Ana Machava")
        bruno = sign_up(http, services.auth, phone(), "Bruno Tembe")
        real = ana["token"]
        header, _, signature = real.split(".")
        foreign, _ = tokens.new_signing_key()
        kid = tokens.key_id_of(real)
        forged = {
            # Claims changed under the real signature: now "Bruno".
            "tampered": f"{header}.{b64({**claims_of(real), 'sub': bruno['user_id']})}.{signature}",
            # A kid the auth service never published (fetched again: still unknown).
            "unknown kid": tokens.sign(claims_of(real), kid="k-unknown", private_key=foreign),
            # A key not in the JWKS, under the kid of one that is.
            "foreign key": tokens.sign(
                {**claims_of(real), "roles": ["admin"]}, kid=kid, private_key=foreign
            ),
            "alg none": f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64(claims_of(real))}.",
        }
        for name, token in forged.items():
            for owner in (ana, bruno):
                answer = http.get(f"{wallet}/wallet/{owner['user_id']}/balance",
                                  headers={"Authorization": f"Bearer {token}"})  # fmt: skip
                assert answer.status_code == 401, (name, answer.text)
                refused(answer, 401, "invalid_token")
        assert http.get(f"{wallet}/wallet/{ana['user_id']}/balance",
                        headers=ana["auth"]).status_code == 200  # fmt: skip


def test_a_rotated_signing_key_is_picked_up_by_the_wallet_processes(services: Cluster) -> None:
    with httpx.Client(timeout=10) as http:
        ana = sign_up(http, services.auth, phone(), "Ana Machava")
        before = tokens.key_id_of(ana["token"])
        for base in services.wallets:  # both have fetched the key set by now
            assert http.get(f"{base}/wallet/{ana['user_id']}/balance",
                            headers=ana["auth"]).status_code == 200  # fmt: skip
        # As `mwallet admin keys rotate` does, on the machine's clock like the servers.
        with build_wallet(services.url, hasher=FAST_HASHER, secrets=TEST_KEYRING) as admin_side:
            rotated = admin_side.service.rotate_signing_key(actor=OPERATOR)
        login = http.post(f"{services.auth}/auth/login",
                          json={"phone": ana["phone"], "password": PASSWORD})  # fmt: skip
        fresh = login.json()["access_token"]
        assert tokens.key_id_of(fresh) == rotated.kid != before
        for base in services.wallets:
            for token in (fresh, ana["token"]):  # the old key verifies until its tokens expire
                found = http.get(f"{base}/wallet/{ana['user_id']}/balance",
                                 headers={"Authorization": f"Bearer {token}"})  # fmt: skip
                assert found.status_code == 200, found.text


def test_a_wallet_process_whose_auth_cannot_be_reached_is_alive_but_not_ready(
    services: Cluster, tmp_path: Path
) -> None:
    """`--auth-url` to an address nobody answers: /healthz 200, /readyz a 503 problem
    (`keys_unavailable`), so an orchestrator sends it no traffic until auth is up."""
    env = base_env(tmp_path / "home")
    env["MWALLET_DB"] = services.url
    env["MWALLET_AUTH_URL"] = f"http://127.0.0.1:{free_port()}"
    log = tmp_path / "lonely.log"
    with serving(["--service", "wallet"], env, log, free_port()) as base:
        deadline = time.monotonic() + START_TIMEOUT_S  # a safety net, not a timing assertion
        while True:
            try:
                alive = httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, (
                    f"mwallet serve did not start:\n{log.read_text()}"
                )
                time.sleep(0.1)
        assert alive.status_code == 200
        refused(httpx.get(f"{base}/readyz", timeout=10), 503, "keys_unavailable")
