"""How fast cash goes out: withdrawal cycles per second and redeem latency, next to transfers.

A cycle is what a customer and an ATM do: `request_withdrawal` (hold, code, PIN, signed QR),
`redeem_withdrawal` at the ATM (code and PIN checked, dispense plan, authorized) and
`complete_withdrawal` (notes taken, hold paid out). The baseline, measured in the same run on the
same database, is one `transfer` through the service: a cycle is three units of work against the
transfer's one, so about 0.33x is the cost of its three commits alone. Redeem latency is printed
as median and p99. SQLite (WAL, synchronous=FULL) and, with --pg, a fresh PostgreSQL database.

It prints; it asserts nothing about time. Run `python bench/withdrawals.py --help`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from mwallet.bootstrap import Wallet, build_wallet
from mwallet.core.crypto import Keyring
from mwallet.core.domain.roles import Role
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Channel
from mwallet.core.security import Argon2idHasher

PASSWORD = "bench-password-2026"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/"
CHEAP_HASHER = Argon2idHasher(time_cost=1, memory_kib=8, parallelism=1)
SECRETS = Keyring([b"\x42" * 32])
ADMIN = Principal("bench-admin", "+258849999999", "Bench admin", Role.ADMIN)


def bench(wallet: Wallet, *, cycles: int) -> None:
    service = wallet.service
    service.init(currency="USD")
    people = []
    # The daily limit (2,000.00) allows 33 withdrawals of 60.00 per person: spread the cycles.
    for number in range(max(2, cycles // 30 + 1)):
        phone = f"+25884{number:07d}"
        service.register(
            phone=phone, display_name=f"User {number}", email=None, password=PASSWORD,
            idempotency_key=f"r{number}",
        )  # fmt: skip
        person = service.login(phone=phone, password=PASSWORD).principal
        service.topup(
            person, amount=service.parse_money("1000000"), source="sandbox",
            idempotency_key=f"t{number}",
        )  # fmt: skip
        people.append(person)
    atm = service.add_atm(actor=ADMIN, name="Bench ATM")
    service.load_cassettes(
        actor=ADMIN, terminal_id=atm.terminal.id, notes={2000: 10_000, 5000: 10_000}
    )
    assert atm.client is not None
    token = service.client_token(client_id=atm.client.id, client_secret=atm.client_secret or "")
    terminal = service.authenticate(access_token=token.access_token)
    ana, bruno = people[0], people[1]
    amount = service.parse_money("60")

    def transfer(number: int) -> None:
        service.transfer(
            ana, to_phone=bruno.phone, amount=amount, note=None, idempotency_key=f"s{number}"
        )

    redeem_seconds: list[float] = []

    def cycle(number: int) -> None:
        issued = service.request_withdrawal(
            people[number % len(people)], amount=amount, channel=Channel.ATM, pin="4826",
            idempotency_key=f"w{number}",
        )  # fmt: skip
        started = time.perf_counter()
        redeemed = service.redeem_withdrawal(terminal, code=issued.code, pin="4826")
        redeem_seconds.append(time.perf_counter() - started)
        service.complete_withdrawal(terminal, withdrawal_id=redeemed.withdrawal.id)

    for warm in range(5):
        transfer(-1 - warm)
    transfers_rate = _rate(transfer, cycles)
    cycles_rate = _rate(cycle, cycles)
    redeem_seconds.sort()
    median = statistics.median(redeem_seconds) * 1000
    p99 = redeem_seconds[int(len(redeem_seconds) * 0.99) - 1] * 1000
    print(
        f"  withdrawal cycles {cycles_rate:8.1f}/s   transfers {transfers_rate:8.1f}/s   "
        f"ratio {cycles_rate / transfers_rate:4.2f}x   redeem median {median:5.2f} ms, "
        f"p99 {p99:5.2f} ms"
    )
    report = service.verify_ledger(actor=ADMIN)
    print(f"  ledger after the run: {'sound' if report.ok else report.problems}")


def _rate(action: object, count: int) -> float:
    assert callable(action)
    started = time.perf_counter()
    for number in range(count):
        action(number)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=30, help="cycles (and transfers) per run")
    parser.add_argument("--pg", action="store_true", help="also on PostgreSQL (127.0.0.1:5432)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print("SQLite (WAL, synchronous=FULL):")
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        with build_wallet(url, hasher=CHEAP_HASHER, secrets=SECRETS) as wallet:
            bench(wallet, cycles=args.cycles)
    if args.pg:
        import psycopg

        name = f"mwallet_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_SERVER + "postgres", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            print("PostgreSQL:")
            url = PG_SERVER.replace("postgresql:", "postgresql+psycopg:") + name
            with build_wallet(url, hasher=CHEAP_HASHER, secrets=SECRETS) as wallet:
                bench(wallet, cycles=args.cycles)
        finally:
            with psycopg.connect(PG_SERVER + "postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
