"""A real `mwallet serve` process on a free port, exercised over HTTP with httpx: the services
as an installation runs them, on the embedded SQLite default of its MWALLET_HOME."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

PASSWORD = "serve-secret-password"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_mwallet_serve_answers_over_http(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MWALLET_")}
    env["MWALLET_HOME"] = str(tmp_path / "home")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mwallet", "serve", "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "mwallet serve did not start"
            time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=10) as http:
            for phone, name in (("+258841000101", "Ana Machava"), ("+258861000102", "Bruno")):
                person = {"phone": phone, "name": name, "password": PASSWORD}
                made = http.post("/auth/register", json=person)
                assert made.status_code == 201, made.text
            login = http.post("/auth/login", json={"phone": "+258841000101", "password": PASSWORD})
            ana = login.json()
            auth = {"Authorization": f"Bearer {ana['access_token']}"}
            balance = http.get(f"/wallet/{ana['user_id']}/balance", headers=auth)
            assert balance.json()["balance"] == "0.00"
            refused = http.post(
                f"/wallet/{ana['user_id']}/transfer",
                json={"to": "+258861000102", "amount": "5"},
                headers={**auth, "Idempotency-Key": "first"},
            )
            assert refused.status_code == 422  # nothing to send yet
            assert refused.json()["type"].endswith("/insufficient_funds")
            assert http.get("/.well-known/jwks.json").json()["keys"]
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()
