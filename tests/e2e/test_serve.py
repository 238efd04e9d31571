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


def test_services_as_separate_processes_share_one_database(tmp_path: Path) -> None:
    """`--service auth` and `--service wallet --service atm` in two processes on one database:
    a token from the first works at the second; each describes only what it serves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MWALLET_")}
    env["MWALLET_HOME"] = str(tmp_path / "home")
    init = subprocess.run([sys.executable, "-m", "mwallet", "init", "--currency", "USD"],
                          env=env, cwd=tmp_path, capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert init.returncode == 0, init.stderr
    servers, bases = [], []
    try:
        for chosen in (["auth"], ["wallet", "atm"]):
            port = free_port()
            flags = [flag for name in chosen for flag in ("--service", name)]
            servers.append(subprocess.Popen(
                [sys.executable, "-m", "mwallet", "serve", "--port", str(port), *flags],
                env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            ))  # fmt: skip
            bases.append(f"http://127.0.0.1:{port}")
        for server, base in zip(servers, bases, strict=True):
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, "mwallet serve stopped"
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "mwallet serve did not start"
                time.sleep(0.2)
        auth, wallet = bases
        person = {"phone": "+258841000201", "name": "Ana Machava", "password": PASSWORD}
        assert httpx.post(f"{auth}/auth/register", json=person).status_code == 201
        login = httpx.post(
            f"{auth}/auth/login", json={"phone": person["phone"], "password": PASSWORD}
        ).json()
        bearer = {"Authorization": f"Bearer {login['access_token']}"}
        found = httpx.get(f"{wallet}/wallet/{login['user_id']}/balance", headers=bearer)
        assert (found.status_code, found.json()["balance"]) == (200, "0.00")
        assert httpx.get(f"{wallet}/atm/withdrawals", headers=bearer).json() == {"withdrawals": []}
        assert httpx.post(f"{wallet}/auth/login", json={}).status_code == 404
        described = httpx.get(f"{wallet}/openapi.json").json()["paths"]
        assert "/atm/validate-token" in described
        assert "/auth/login" not in described
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
