"""How fast bills are paid: payments per second through the sandbox provider (in-process) and
through the HTTP provider adapter against a local provider (a Starlette app under uvicorn on
127.0.0.1, answering at once), next to transfers through the service on the same database in the
same run (the baseline: a transfer is one unit of work, a payment two plus the provider's answer).

SQLite (WAL, synchronous=FULL) and, with --pg, a fresh PostgreSQL database. It prints; it asserts
nothing about time. Run `python bench/payments.py --help`.
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mwallet.bootstrap import Wallet, build_wallet
from mwallet.core.crypto import Keyring
from mwallet.core.domain.payments import luhn_digit
from mwallet.core.domain.roles import Role
from mwallet.core.domain.users import Principal
from mwallet.core.security import Argon2idHasher
from mwallet.providers.http import HttpProvider, HttpProviderSettings

PASSWORD = "bench-password-2026"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/"
CHEAP_HASHER = Argon2idHasher(time_cost=1, memory_kib=8, parallelism=1)
SECRETS = Keyring([b"\x42" * 32])
ADMIN = Principal("bench-admin", "+258849999999", "Bench admin", Role.ADMIN)
SECRET = "bench-provider-secret"


def local_provider() -> tuple[str, Callable[[], None]]:
    async def pay(request: Request) -> JSONResponse:
        document = json.loads(await request.body())
        return JSONResponse({"status": "approved", "provider_ref": document["payment_id"][-8:]})

    app = Starlette(routes=[Route("/payments", pay, methods=["POST"])])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop


def rates(wallet: Wallet, count: int, url: str) -> tuple[float, float, float]:
    service = wallet.service
    service.init(currency="USD")
    payer: list[Principal] = []
    payee: list[Principal] = []
    for number in range(2):
        phone = f"+25884{number:07d}"
        service.register(phone=phone, display_name=f"User {number}", email=None,
                         password=PASSWORD, idempotency_key=f"r{number}")  # fmt: skip
        person = service.login(phone=phone, password=PASSWORD).principal
        service.topup(person, amount=service.parse_money("1000000"), source="sandbox",
                      idempotency_key=f"t{number}")  # fmt: skip
        (payer if number == 0 else payee).append(person)
    provider = HttpProvider(HttpProviderSettings(url, SECRET))
    service.providers["local"] = provider
    service.add_biller(
        actor=ADMIN, biller_id="bench-http", name="Bench HTTP", category="other",
        min_amount=service.parse_money("1"), max_amount=service.parse_money("1000"),
        provider="local", pattern="[0-9]{8}", check="luhn",
    )  # fmt: skip
    ana, bruno = payer[0], payee[0]
    one = service.parse_money("1")

    def timed(step: Callable[[int], object]) -> float:
        started = time.perf_counter()
        for n in range(count):
            step(n)
        return count / (time.perf_counter() - started)

    def reference(n: int) -> str:
        body = f"{n % 10**7:07d}"
        return body + luhn_digit(body)

    transfers = timed(lambda n: service.transfer(
        ana, to_phone=bruno.phone, amount=one, note=None, idempotency_key=f"x{n}"))  # fmt: skip
    sandbox = timed(lambda n: service.pay_bill(
        ana, biller_id="tvcabo", reference=f"{1000 + n}", amount=one,
        idempotency_key=f"s{n}"))  # fmt: skip
    http = timed(lambda n: service.pay_bill(
        ana, biller_id="bench-http", reference=reference(n), amount=one,
        idempotency_key=f"h{n}"))  # fmt: skip
    provider.close()
    assert service.verify_ledger(actor=ADMIN).ok
    return transfers, sandbox, http


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=300, help="payments per row")
    parser.add_argument("--pg", action="store_true", help="also on a fresh PostgreSQL database")
    args = parser.parse_args()
    url, stop = local_provider()
    print(
        f"{'database':<12}{'transfers/s':>12}{'sandbox/s':>11}{'ratio':>7}{'http/s':>9}{'ratio':>7}"
    )
    try:
        with tempfile.TemporaryDirectory() as folder:
            targets: list[tuple[str, str, str | None]] = [
                ("sqlite", f"sqlite:///{Path(folder) / 'bench.db'}", None)
            ]
            if args.pg:
                import psycopg

                name = f"mwallet_bench_{uuid.uuid4().hex[:10]}"
                with psycopg.connect(PG_SERVER + "postgres", autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                targets.append(
                    ("postgresql", f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", name)
                )
            for label, db, pg_name in targets:
                try:
                    with build_wallet(db, hasher=CHEAP_HASHER, secrets=SECRETS,
                                      providers={}) as wallet:  # fmt: skip
                        transfers, sandbox, http = rates(wallet, args.payments, url)
                    ratios = (sandbox / transfers, http / transfers)
                    print(f"{label:<12}{transfers:>12,.0f}{sandbox:>11,.0f}{ratios[0]:>6.2f}x"
                          f"{http:>9,.0f}{ratios[1]:>6.2f}x")  # fmt: skip
                finally:
                    if pg_name is not None:
                        import psycopg

                        with psycopg.connect(PG_SERVER + "postgres", autocommit=True) as conn:
                            conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    finally:
        stop()


if __name__ == "__main__":
    main()
