"""How long statistics and operators' reports take over a large-ish history: one person with
`--movements` transfers (out and in, spread over twelve months), a bill every 40 movements and a
withdrawal every 100 (half paid out, half cancelled), among `--people` others, then `report stats`
(months and weeks), and `admin report volumes` and `trial-balance` over the year.

SQLite (WAL, synchronous=FULL) and, with --pg, a fresh PostgreSQL database. It prints; it asserts
nothing about time. Run `python bench/reports_stats.py --help`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mwallet.bootstrap import Wallet, build_wallet
from mwallet.core.clock import FixedClock
from mwallet.core.crypto import Keyring
from mwallet.core.domain.payments import luhn_digit
from mwallet.core.domain.roles import Role
from mwallet.core.domain.statistics import Period
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Channel
from mwallet.core.security import Argon2idHasher

PASSWORD = "bench-password-2026"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/"
CHEAP_HASHER = Argon2idHasher(time_cost=1, memory_kib=8, parallelism=1)
SECRETS = Keyring([b"\x42" * 32])
ADMIN = Principal("bench-admin", "+258849999999", "Bench admin", Role.ADMIN)
START = datetime(2025, 12, 1, 8, 0, tzinfo=UTC)


def history(wallet: Wallet, clock: FixedClock, movements: int, people: int) -> Principal:
    service = wallet.service
    service.init(currency="USD")
    found: list[Principal] = []
    for number in range(people + 1):
        phone = f"+25884{number:07d}"
        service.register(phone=phone, display_name=f"User {number}", email=None,
                         password=PASSWORD, idempotency_key=f"r{number}")  # fmt: skip
        person = service.login(phone=phone, password=PASSWORD).principal
        service.topup(person, amount=service.parse_money("900000"), source="sandbox",
                      idempotency_key=f"t{number}")  # fmt: skip
        found.append(person)
    ana, others = found[0], found[1:]
    step = timedelta(days=365) / movements
    body = "1234567"
    reference = body + luhn_digit(body)
    for number in range(movements):
        clock.advance(step)
        other = others[number % len(others)]
        amount = service.parse_money(f"{1 + number % 50}.25")
        key = f"m{number}"
        if number % 100 == 99:
            issued = service.request_withdrawal(ana, amount=service.parse_money("20"),
                                                channel=Channel.ATM, pin="4729",
                                                idempotency_key=key)  # fmt: skip
            if number % 200 == 199:
                service.cancel_withdrawal(ana, withdrawal_id=issued.withdrawal.id)
        elif number % 40 == 39:
            service.pay_bill(ana, biller_id="aguas-maputo", reference=reference,
                             amount=amount, idempotency_key=key)  # fmt: skip
        elif number % 3 == 0:
            service.transfer(other, to_phone=ana.phone, amount=amount, note=None,
                             idempotency_key=key)  # fmt: skip
        else:
            service.transfer(ana, to_phone=other.phone, amount=amount, note=None,
                             idempotency_key=key)  # fmt: skip
    return ana


def timed(action: Callable[[], Any], repeat: int = 5) -> float:
    """The best of `repeat` runs, in milliseconds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def run(label: str, url: str, movements: int, people: int) -> None:
    clock = FixedClock(START)
    with build_wallet(url, hasher=CHEAP_HASHER, clock=clock, secrets=SECRETS) as wallet:
        started = time.perf_counter()
        ana = history(wallet, clock, movements, people)
        built = time.perf_counter() - started
        service = wallet.service
        postings = len(service.movements(ana, limit=1000).movements)  # a sanity check that it ran
        figures = {
            "stats 12 months": timed(lambda: service.usage_statistics(ana, months=12)),
            "stats 52 weeks": timed(
                lambda: service.usage_statistics(ana, months=12, period=Period.WEEK)
            ),
            "stats 1 month": timed(lambda: service.usage_statistics(ana, months=1)),
            "volumes 366 days": timed(lambda: service.volume_report(actor=ADMIN, days=366)),
            "trial balance": timed(lambda: service.trial_balance(actor=ADMIN)),
        }
        stats = service.usage_statistics(ana, months=12)
        print(f"{label}: {movements:,} movements of one person built in {built:.0f} s "
              f"({stats.total_out.count + stats.total_in.count:,} counted; "
              f"history page {postings})")  # fmt: skip
        for name, ms in figures.items():
            print(f"  {name:<18}{ms:>9.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movements", type=int, default=20_000, help="of the one person")
    parser.add_argument("--people", type=int, default=20, help="others they deal with")
    parser.add_argument("--pg", action="store_true", help="also on a fresh PostgreSQL database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run("sqlite", f"sqlite:///{Path(folder) / 'bench.db'}", args.movements, args.people)
    if args.pg:
        import psycopg

        name = f"mwallet_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_SERVER + "postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            run("postgresql", f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
                args.movements, args.people)  # fmt: skip
        finally:
            with psycopg.connect(PG_SERVER + "postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
