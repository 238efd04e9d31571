"""How fast history pages and statements are for a person with a very long history.

Builds, with bulk SQL inserts into the real tables, 10,000 users (each topped up once) and one
user, Ana, with `--movements` movements (transfers in and out with the other users, and top-ups):
journal entries, postings with their running balances, transfer and top-up rows, and the stored
balances, so the ledger verifies. Then prints, through the service as the CLI calls it (and with
the cyclic collector's threshold every `mwallet` command sets, `cli.main.collect_rarely`):

- the latency of Ana's first history page (20 lines) against a user with ten movements;
- the latency of Ana's page 1,000, reached by its cursor;
- a full CSV statement export in rows per second (and per second of this process's CPU), and its
  peak memory (tracemalloc) for the newest 10% of the history and for all of it: the two peaks
  should be about the same;
- the time of `report stats` and `report trends --period week` over the whole history (which
  spreads over a year), and of the ledger's `verify`.

SQLite (WAL, synchronous=FULL) and, with --pg, a fresh PostgreSQL database. It prints; it asserts
nothing about time. Run `python bench/reports.py --help`.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Connection, select, text, update

from mwallet.bootstrap import Wallet, build_wallet
from mwallet.cli.main import collect_rarely
from mwallet.cli.statement_export import write_statement_csv
from mwallet.core.clock import FixedClock
from mwallet.core.crypto import Keyring
from mwallet.core.db.tables import accounts, users
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.roles import Role
from mwallet.core.domain.statistics import Period
from mwallet.core.domain.users import Principal
from mwallet.core.security import Argon2idHasher

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/"
SECRETS = Keyring([b"\x42" * 32])
CHEAP_HASHER = Argon2idHasher(time_cost=1, memory_kib=8, parallelism=1)
START = datetime(2024, 1, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OPENING_MINOR = 100_000  # each user's first top-up: 1,000.00
YEAR_MICROS = 365 * 24 * 3600 * 1_000_000
NOW = START + timedelta(days=400)  # the clock: a month after the history's year
STATS_MONTHS = 14  # back to the history's start
CHUNK = 20_000
PAGE_TARGET_MS = 20.0
EXPORT_TARGET = 100_000  # rows per second


def phone(number: int) -> str:
    return f"+2588{number:08d}"


COLUMNS = {
    "journal_entries": ("id", "kind", "created_at", "memo", "ref_id"),
    "postings": ("entry_id", "leg", "account_id", "amount", "currency", "balance_after",
                 "created_at"),
    "transfers": ("id", "sender_user_id", "recipient_user_id", "amount", "currency", "note",
                  "created_at"),
    "topups": ("id", "user_id", "source", "amount", "currency", "created_at"),
}  # fmt: skip


def micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


class Builder:
    """Rows for the real tables, with every balance worked out here as the ledger would, written
    with the driver's own bulk path (COPY on PostgreSQL, executemany on SQLite)."""

    def __init__(self, conn: Connection, currency: str) -> None:
        self.driver: Any = conn.connection.driver_connection
        self.postgres = conn.dialect.name == "postgresql"
        self.currency = currency
        self.balances: dict[int, int] = {}
        self.posted_at: dict[int, int] = {}  # each account's last posting's time, as it keeps it
        self.rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in COLUMNS}

    def entry(self, kind: str, at: int, moves: list[tuple[int, int]]) -> str:
        entry_id = new_id(EPOCH + timedelta(microseconds=at))
        self.rows["journal_entries"].append((entry_id, kind, at, None, None))
        # Numbered in the order of their accounts, as the ledger's `post` numbers them.
        for leg, (account, amount) in enumerate(sorted(moves, key=lambda move: move[0])):
            self.balances[account] = after = self.balances.get(account, 0) + amount
            self.posted_at[account] = at  # `at` only grows: each posting later than the last
            self.rows["postings"].append((entry_id, leg, account, amount, self.currency, after, at))
        return entry_id

    def flush(self, *, force: bool = False) -> None:
        if not force and len(self.rows["postings"]) < CHUNK:
            return
        for name, columns in COLUMNS.items():
            rows, self.rows[name] = self.rows[name], []
            if not rows:
                continue
            if self.postgres:
                with (
                    self.driver.cursor() as cursor,
                    cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy,
                ):
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join("?" for _ in columns)
                self.driver.executemany(
                    f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})", rows
                )


def build(  # noqa: PLR0915 - one story, told in order
    wallet: Wallet, movements: int, others: int, seed: int = 7
) -> tuple[Principal, Principal]:
    """Ana with `movements` movements, Bea with ten, among `others` users; (Ana, Bea)."""
    rng = random.Random(seed)
    service = wallet.service
    service.init(currency="USD")
    digest = CHEAP_HASHER.hash("bench-password-2026")
    with wallet.engine.begin() as conn:
        funding = conn.execute(
            select(accounts.c.id).where(accounts.c.code == "funding:sandbox:USD")
        ).scalar_one()
        people = others + 2
        ids = [new_id(START) for _ in range(people)]
        conn.execute(users.insert(), [
            {"id": ids[n], "phone": phone(n), "display_name": f"User {n}", "email": None,
             "password_hash": digest, "created_at": START, "role": "customer"}
            for n in range(people)
        ])  # fmt: skip
        conn.execute(accounts.insert(), [
            {"code": f"wallet:{ids[n]}", "kind": "wallet", "currency": "USD", "balance": 0,
             "status": "active", "owner_user_id": ids[n], "created_at": START}
            for n in range(people)
        ])  # fmt: skip
        wallet_of = dict(
            conn.execute(
                select(accounts.c.owner_user_id, accounts.c.id).where(accounts.c.kind == "wallet")
            ).all()
        )
        books = Builder(conn, "USD")
        books.balances[funding] = int(
            conn.execute(select(accounts.c.balance).where(accounts.c.id == funding)).scalar_one()
        )
        accts = [wallet_of[ids[n]] for n in range(people)]
        at = micros(START)
        # The history spreads over a year (one movement a second at most), as statistics see it.
        step = max(1_000_000, YEAR_MICROS // (movements + people + 9))

        def topup(n: int, amount: int) -> None:
            nonlocal at
            at += step
            entry_id = books.entry("topup", at, [(funding, -amount), (accts[n], amount)])
            books.rows["topups"].append((entry_id, ids[n], "sandbox", amount, "USD", at))

        def transfer(a: int, b: int, amount: int) -> None:
            nonlocal at
            at += step
            entry_id = books.entry("transfer", at, [(accts[a], -amount), (accts[b], amount)])
            books.rows["transfers"].append((entry_id, ids[a], ids[b], amount, "USD", None, at))

        for n in range(people):
            topup(n, OPENING_MINOR)
            books.flush()
        ana, bea = 0, 1
        topup(ana, 10 * OPENING_MINOR)
        for number in range(movements - 1):
            other = rng.randrange(2, people)
            amount = rng.randint(1, 1000)
            roll = rng.random()
            if roll < 0.05:
                topup(ana, amount)
            elif roll < 0.5 or books.balances[accts[ana]] < 1000:
                transfer(other, ana, amount)
            else:
                transfer(ana, other, amount)
            if number % CHUNK == 0:
                books.flush()
        for number in range(9):
            transfer(rng.randrange(2, people), bea, 100 + number)
        books.flush(force=True)
        balances = books.balances
        for account, balance in balances.items():
            conn.execute(
                update(accounts)
                .where(accounts.c.id == account)
                .values(balance=balance, posted_at=books.posted_at.get(account, 0))
            )
    if wallet.engine.dialect.name == "postgresql":
        with wallet.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    else:
        with wallet.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    who = [Principal(ids[n], phone(n), f"User {n}", Role.CUSTOMER) for n in (ana, bea)]
    return who[0], who[1]


def mark(ms: float) -> str:
    return "ok" if ms < PAGE_TARGET_MS else "MISSED"


def median_ms(run: Callable[[], object], times: int = 30) -> float:
    run()  # warm: statements compiled, connection pooled
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        spent.append((time.perf_counter() - started) * 1000)
    return statistics.median(spent)


class Sink:
    """Somewhere to write that keeps nothing (a file on /dev/null)."""

    def __enter__(self) -> Any:
        self.file = open(os.devnull, "w", encoding="utf-8", newline="")
        return self.file

    def __exit__(self, *exc: object) -> None:
        self.file.close()


def export(wallet: Wallet, who: Principal, start: datetime | None) -> tuple[int, float, float]:
    """(lines, seconds, this process's CPU seconds) of a CSV statement from `start` on."""
    started, cpu = time.perf_counter(), time.process_time()
    with wallet.service.statement(who, start=start) as statement, Sink() as out:
        write_statement_csv(statement, statement.lines, out)
    return statement.totals.count, time.perf_counter() - started, time.process_time() - cpu


def peak_kib(wallet: Wallet, who: Principal, start: datetime | None) -> float:
    tracemalloc.start()
    try:
        export(wallet, who, start)
        return tracemalloc.get_traced_memory()[1] / 1024
    finally:
        tracemalloc.stop()


def run(label: str, url: str, movements: int, others: int) -> None:
    wallet = build_wallet(url, clock=FixedClock(NOW), hasher=CHEAP_HASHER, secrets=SECRETS)
    try:
        started = time.perf_counter()
        ana, bea = build(wallet, movements, others)
        built = time.perf_counter() - started
        postings_made = 2 * (movements + others + 2 + 9)
        print(f"\n== {label}: {movements:,} movements for one user among {others:,} users")
        print(f"build: {built:.1f} s ({postings_made / built:,.0f} postings/s)")
        service = wallet.service
        first = median_ms(lambda: service.movements(ana, limit=20))
        small = median_ms(lambda: service.movements(bea, limit=20))
        cursor = None
        for _ in range(999):
            cursor = service.movements(ana, cursor=cursor, limit=20).next_cursor
        page_1000 = median_ms(lambda: service.movements(ana, cursor=cursor, limit=20))
        filtered = median_ms(lambda: service.movements(ana, limit=20, where=_outgoing()), times=10)
        print(f"first page, {movements:,} movements: {first:7.2f} ms  [{mark(first)}]")
        print(f"first page, 10 movements:       {small:7.2f} ms  (ratio {first / small:.2f})")
        print(f"page 1,000 by its cursor:       {page_1000:7.2f} ms  [{mark(page_1000)}]")
        print(f"first page, --type transfer_out: {filtered:6.2f} ms")
        step = max(1_000_000, YEAR_MICROS // (movements + others + 11))
        tenth_start = START + timedelta(microseconds=step * (others + 2 + (movements * 9) // 10))
        for _ in range(2):  # the first run also warms the caches
            lines, seconds, cpu = export(wallet, ana, None)
        rate = lines / seconds
        verdict = "ok" if rate >= EXPORT_TARGET else "MISSED"
        print(
            f"CSV statement, all {lines:,} lines: {seconds:.2f} s = {rate:,.0f} rows/s "
            f"[{verdict}] (this process's CPU: {cpu:.2f} s, {lines / cpu:,.0f} rows/s)"
        )
        part_lines, part_seconds, _ = export(wallet, ana, tenth_start)
        print(
            f"CSV statement, newest {part_lines:,} lines: {part_lines / part_seconds:,.0f} rows/s"
        )
        small_peak = peak_kib(wallet, ana, tenth_start)
        full_peak = peak_kib(wallet, ana, None)
        ratio = full_peak / small_peak
        print(f"peak memory (tracemalloc): {part_lines:,} lines {small_peak:,.0f} KiB, "
              f"{lines:,} lines {full_peak:,.0f} KiB (ratio {ratio:.2f})")  # fmt: skip
        for report, period in (("stats", Period.MONTH), ("trends by week", Period.WEEK)):
            started = time.perf_counter()
            found = service.usage_statistics(ana, period=period, months=STATS_MONTHS)
            spent = time.perf_counter() - started
            counted = found.total_out.count + found.total_in.count
            print(f"{report}, {STATS_MONTHS} months: {spent * 1000:,.0f} ms ({counted:,} counted)")
        started = time.perf_counter()
        ok = service.verify_ledger(
            actor=Principal("bench", "+258849999999", "Bench", Role.AUDITOR)
        ).ok
        print(f"ledger verifies: {ok} ({time.perf_counter() - started:.1f} s)")
    finally:
        wallet.close()


def _outgoing() -> Any:
    from mwallet.core.domain.movements import MovementFilter, MovementType

    return MovementFilter(types=frozenset({MovementType.TRANSFER_OUT}))


@contextmanager
def fresh_pg() -> Iterator[str]:
    name = f"mwallet_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> None:
    collect_rarely()  # the cyclic collector as every `mwallet` command runs (servers too)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movements", type=int, default=1_000_000, help="Ana's movements")
    parser.add_argument("--users", type=int, default=10_000, help="the other users")
    parser.add_argument("--pg", action="store_true", help="also on a fresh PostgreSQL database")
    parser.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL")
    args = parser.parse_args()
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            run("SQLite", f"sqlite:///{Path(folder) / 'bench.db'}", args.movements, args.users)
    if args.pg:
        with fresh_pg() as url:
            run("PostgreSQL", url, args.movements, args.users)


if __name__ == "__main__":
    main()
