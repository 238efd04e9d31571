"""Real `mwallet serve` processes for the end-to-end tests: free ports, start-up, shutdown, and the
multi-process layout the README describes (an auth process, two wallet processes that verify
tokens with its JWKS) on one fresh PostgreSQL database."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support import (
    PASSWORD,
    TEST_KEY,
    create_pg_database,
    drop_pg_database,
    pg_url,
)

START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MWALLET_")}
    env["MWALLET_HOME"] = str(home)
    return env


@contextmanager
def serving(args: Sequence[str], env: dict[str, str], log: Path, port: int) -> Iterator[str]:
    """`mwallet serve ARGS --port PORT` until the block ends; its base URL, once started (the
    caller waits for it to be ready, so several can start at once)."""
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "mwallet", "serve", "--port", str(port), *args],
            env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
        assert server.poll() is None, f"mwallet serve stopped:\n{log.read_text()}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_ready(base: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"mwallet serve did not start:\n{log.read_text()}"
        time.sleep(0.1)


@dataclass(frozen=True)
class Cluster:
    """The README's layout on one PostgreSQL database: `auth` issues tokens and publishes its
    keys; `wallets` are two processes (`--service wallet --service payments` and `--service
    wallet --service atm`) started with `--auth-url`, which verify tokens with the auth
    process's JWKS and hold no data key of their own."""

    database: str
    url: str
    auth: str
    wallets: tuple[str, str]
    logs: Path


@contextmanager
def cluster(folder: Path, template: str) -> Iterator[Cluster]:
    """On a fresh copy of `template`, a migrated PostgreSQL database initialised in USD."""
    database = create_pg_database(template)
    url = pg_url(database)
    try:
        with ExitStack() as stack:
            auth_env = base_env(folder / "auth-home")
            auth_env["MWALLET_DB"] = url
            auth_env["MWALLET_SECRET_KEY"] = base64.b64encode(TEST_KEY).decode()
            auth_args = ["--service", "auth", "--rate-limit", "off"]
            auth_log = folder / "auth.log"
            auth = stack.enter_context(serving(auth_args, auth_env, auth_log, free_port()))
            logs, wallets = [auth_log], []
            for number, extra in enumerate(("payments", "atm"), start=1):
                env = base_env(folder / f"wallet-{number}-home")  # no data key of its own
                env["MWALLET_DB"] = url
                env["MWALLET_AUTH_URL"] = auth
                env["MWALLET_JWKS_MIN_REFRESH"] = "0"  # the tests rotate keys without waiting
                args = ["--service", "wallet", "--service", extra]
                logs.append(log := folder / f"wallet-{number}.log")
                wallets.append(stack.enter_context(serving(args, env, log, free_port())))
            for base, log in zip([auth, *wallets], logs, strict=True):
                wait_ready(base, log)
            yield Cluster(database, url, auth, (wallets[0], wallets[1]), folder)
    finally:
        drop_pg_database(database)


def sign_up(http: httpx.Client, auth: str, phone: str, name: str) -> dict[str, Any]:
    """Register at the auth process and log in there: the user's id, phone and Bearer header."""
    made = http.post(f"{auth}/auth/register", json={"phone": phone, "name": name,
                                                     "password": PASSWORD})  # fmt: skip
    assert made.status_code == 201, made.text
    login = http.post(f"{auth}/auth/login", json={"phone": phone, "password": PASSWORD})
    assert login.status_code == 200, login.text
    tokens = login.json()
    return {"user_id": tokens["user_id"], "phone": phone, "token": tokens["access_token"],
            "auth": {"Authorization": f"Bearer {tokens['access_token']}"}}  # fmt: skip
