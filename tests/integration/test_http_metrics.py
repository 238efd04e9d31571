"""`GET /metrics` over HTTP on both databases: request counts and latency histograms by route
and status, and the money-moving answers by operation, in the Prometheus text format."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from mwallet.bootstrap import Wallet
from tests.integration.http_support import (
    client_fixture,  # noqa: F401 (the `client` fixture)
    fund,
    person,
)

SAMPLE = re.compile(r'^[a-z_]+\{([a-z_]+="[^"]*",?)*\} [0-9.e+-]+$')


def samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert line.startswith(("# HELP ", "# TYPE ")), line
            continue
        assert SAMPLE.match(line), line
        name, value = line.rsplit(" ", 1)
        found[name] = float(value)
    return found


def test_metrics_count_requests_latency_and_money(client: TestClient, wallet: Wallet) -> None:
    ana, bruno = person(client), person(client, "Bruno Tembe")
    fund(wallet, ana, "50")
    url = f"/wallet/{ana['user_id']}/transfer"
    for key, amount in (("m-1", "5"), ("m-1", "5"), ("m-2", "500")):
        client.post(url, json={"to": bruno["phone"], "amount": amount},
                    headers={**ana["auth"], "Idempotency-Key": key})  # fmt: skip
    client.get("/nowhere")
    answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(answer.text)
    route = 'route="/wallet/{user_id}/transfer",method="POST"'
    assert found[f'mwallet_http_requests_total{{{route},status="201"}}'] == 2
    assert found[f'mwallet_http_requests_total{{{route},status="422"}}'] == 1  # no funds
    assert found[f"mwallet_http_request_duration_seconds_count{{{route}}}"] == 3
    assert found[f'mwallet_http_request_duration_seconds_bucket{{{route},le="+Inf"}}'] == 3
    assert found[f"mwallet_http_request_duration_seconds_sum{{{route}}}"] > 0
    assert found['mwallet_money_requests_total{operation="transfer",status="201"}'] == 2
    assert found['mwallet_money_requests_total{operation="transfer",status="422"}'] == 1
    logins = 'mwallet_http_requests_total{route="/auth/login",method="POST",status="200"}'
    assert found[logins] == 2
    # Buckets are cumulative.
    buckets = [
        value
        for name, value in found.items()
        if name.startswith("mwallet_http_request_duration_seconds_bucket{" + route)
    ]
    assert buckets == sorted(buckets)
