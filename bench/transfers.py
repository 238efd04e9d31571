"""How fast mwallet moves money and starts, next to what the bare drivers do on the same machine.

Throughput is durable transfers per second, one transfer per commit, through `WalletService`, set
against a baseline that runs only the minimal SQL of a transfer through the plain driver (stdlib
`sqlite3`, plain `psycopg`) on a schema of the same shape. Both sides run the same seeded list of
random transfers on a fresh database of their own, in alternating blocks of the same run, so the
ratio is what the service layer costs and a noisy moment on the machine slows both alike.

Concurrent PostgreSQL clients are measured in two modes, and both rows are printed:

- `PostgreSQL, N processes` (the row with the target): the service's N clients are N processes of
  their own (multiprocessing `spawn`), each with its own `Wallet` on the same database URL, its own
  logins and its own pool, as mwallet's servers scale (several stateless processes against one
  PostgreSQL). They are started, log in and are warmed before anything is timed, and stay alive
  between blocks; for each block every process is handed its share of the moves, they start
  together at a barrier and report their wall clock and CPU time (the block lasts from the first
  start to the last finish; the CPU is the sum of theirs). The baseline's N clients stay threads
  of this process, one psycopg connection each (`--baseline-processes` makes them processes too).
  They are not GIL-free: at these rates they keep ~0.3-0.8 of one core busy. But raced directly,
  baseline threads beat baseline processes (by 3-18% on a 2-CPU machine, where the processes spent
  ~30-50% more CPU per transfer), so threads are the stronger baseline, not a handicap.
- `PostgreSQL, N threads (one process)` (informational, no verdict): the service's N clients are
  threads sharing one `Wallet` (one engine, one pool) in this process, the baseline's are threads
  too. With 2-3x the baseline's Python CPU per transfer, the service's threads contend for one
  GIL: this row shows what one Python process can do, not what the service costs per transfer.

Either way the ratio also includes the PostgreSQL server's own CPU, which the service raises (it
writes idempotency records, journal entries and outbox events the baseline does not): on a machine
with few cores the server and the clients share them, and the concurrent rows can be bounded by
the machine's CPU rather than by the GIL. The CPU columns count the clients only (this process's
CPU, or the sum of the client processes'); the report also prints how many cores the clients kept
busy.

Start-up is the median wall time of fresh processes.

This script only prints; it asserts nothing about time. Run `python bench/transfers.py --help`.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import multiprocessing
import os
import pstats
import queue
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql

import mwallet
from mwallet.bootstrap import build_wallet
from mwallet.core.crypto import Keyring
from mwallet.core.domain.money import Money
from mwallet.core.domain.roles import Role
from mwallet.core.domain.users import Principal
from mwallet.core.domain.users import Principal as _Principal
from mwallet.core.security import Argon2idHasher
from mwallet.core.services.wallet_service import WalletService

# The benchmark checks the books as an admin would.
OPERATOR = _Principal("bench-operator", "+258840000000", "Bench Operator", Role.ADMIN)

# Still argon2id, at the smallest cost it allows: registration is set-up, not what is measured.
CHEAP_HASHER = Argon2idHasher(time_cost=1, memory_kib=8, parallelism=1)
# A throwaway database's data key: the same in every client process, so all open one signing key.
BENCH_SECRETS = Keyring([b"\x42" * 32])
PASSWORD = "bench-horse-battery-staple"  # throwaway users of a temporary database
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
TOPUP_MINOR = 100_000_000  # 1,000,000.00 each: no transfer of the run can be refused for funds
MAX_TRANSFER_MINOR = 10_000
SQLITE_TARGET = 0.5
PG_TARGET = 0.75
HELP_TARGET = 1.3
BALANCE_TARGET = 1.5

Move = tuple[int, int, int]  # sender index, recipient index, amount in minor units


# --- the plan both sides run, and the race between them -----------------------------------------


def make_moves(count: int, users: int, rng: random.Random) -> list[Move]:
    moves = []
    for _ in range(count):
        sender, recipient = rng.sample(range(users), 2)
        moves.append((sender, recipient, rng.randint(1, MAX_TRANSFER_MINOR)))
    return moves


def timed_in_threads(work: Sequence[Callable[[], None]]) -> float:
    """Run each callable in its own thread, started together; the wall time until all finish."""
    if len(work) == 1:
        started = time.perf_counter()
        work[0]()
        return time.perf_counter() - started
    gate = threading.Barrier(len(work) + 1)
    failures: list[BaseException] = []

    def runner(job: Callable[[], None]) -> None:
        gate.wait()
        try:
            job()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=runner, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise failures[0]
    return elapsed


Numbered = Sequence[tuple[int, Move]]  # a move and its number, which makes its idempotency key


@dataclass(frozen=True)
class Score:
    per_second: float  # transfers per second of wall time
    cpu_us: float  # the clients' CPU time per transfer (a database server's own is not in it)


class Contender(Protocol):
    """One side of the race: sends numbered moves, dealt round-robin over its clients."""

    sent: int

    def run(self, moves: Numbered) -> tuple[float, float]:
        """Wall and CPU seconds of sending `moves`."""
        ...


class Side:
    """A contender whose concurrent clients are threads of this process."""

    def __init__(self, send: Callable[[int, Numbered], None], clients: int) -> None:
        self._send = send  # send(client number, moves)
        self.clients = clients
        self.sent = 0

    def run(self, moves: Numbered) -> tuple[float, float]:
        """Wall and CPU seconds of sending `moves`."""
        parts = [moves[client :: self.clients] for client in range(self.clients)]
        jobs = [partial(self._send, client, part) for client, part in enumerate(parts) if part]
        cpu = time.process_time()
        elapsed = timed_in_threads(jobs)
        cpu = time.process_time() - cpu
        self.sent += len(moves)
        return elapsed, cpu


def race(contenders: Sequence[Contender], moves: Numbered, blocks: int) -> list[Score]:
    """Each contender's score, run in blocks of the same moves whose starting side rotates, so
    that all meet the same noise."""
    size = max(1, -(-len(moves) // blocks))
    wall, cpu = [0.0] * len(contenders), [0.0] * len(contenders)
    for number, start in enumerate(range(0, len(moves), size)):
        block = moves[start : start + size]
        for turn in range(len(contenders)):
            which = (number + turn) % len(contenders)
            spent = contenders[which].run(block)
            wall[which] += spent[0]
            cpu[which] += spent[1]
    return [
        Score(len(moves) / wall[which], cpu[which] / len(moves) * 1e6)
        for which in range(len(contenders))
    ]


# --- databases --------------------------------------------------------------------------------


def pg_admin() -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        user=PG_USER,
        dbname="postgres",
        autocommit=True,
        connect_timeout=3,
    )


def pg_reachable() -> bool:
    try:
        with pg_admin():
            return True
    except psycopg.OperationalError:
        return False


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    name = f"mwallet_bench_{uuid.uuid4().hex[:12]}"
    with pg_admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with pg_admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def pg_service_url(name: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def pg_connect(name: str) -> psycopg.Connection[Any]:
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=name)


# --- the service layer ------------------------------------------------------------------------


def user_phone(number: int) -> str:
    return f"+2588410{number:05d}"


def service_users(service: WalletService, users: int) -> list[Principal]:
    currency = service.settings.currency
    principals = []
    for number in range(users):
        phone = user_phone(number)
        service.register(
            phone=phone,
            display_name=f"Bench {number}",
            email=None,
            password=PASSWORD,
            idempotency_key=f"reg-{number}",
        )
        principal = service.login(phone=phone, password=PASSWORD).principal
        service.topup(
            principal,
            amount=Money(TOPUP_MINOR, currency),
            source="sandbox",
            idempotency_key=f"top-{number}",
        )
        principals.append(principal)
    return principals


def send_transfers(
    service: WalletService, principals: Sequence[Principal], moves: Numbered
) -> None:
    currency = service.settings.currency
    for number, (sender, recipient, minor) in moves:
        service.transfer(
            principals[sender],
            to_phone=principals[recipient].phone,
            amount=Money(minor, currency),
            note=None,
            idempotency_key=f"bench-{number}",
        )


# What a client process reports for one part: monotonic start and end, CPU seconds; or a traceback.
Report = tuple[float, float, float] | str
BARRIER_TIMEOUT_S = 120.0  # a client process stuck this long at the barrier gives up
CLIENT_TIMEOUT_S = 600.0  # the parent waits this long for any one report


@dataclass(frozen=True)
class Client:
    """Who one client process is: which side, on which database, how many users, its number."""

    side: str  # "service": a `Wallet` on the URL `where`; "baseline": psycopg on database `where`
    where: str
    users: int
    number: int


def open_sender(me: Client, stack: ExitStack) -> Callable[[Numbered], None]:
    """What the client process `me` sends moves with; the service's logs in as every user."""
    if me.side == "baseline":
        return partial(pg_send, stack.enter_context(pg_connect(me.where)))
    wallet = stack.enter_context(
        build_wallet(me.where, hasher=CHEAP_HASHER, secrets=BENCH_SECRETS, pool_size=1)
    )
    principals = [
        wallet.service.login(phone=user_phone(number), password=PASSWORD).principal
        for number in range(me.users)
    ]
    return partial(send_transfers, wallet.service, principals)


def client_process(
    me: Client,
    barrier: Any,  # multiprocessing.synchronize.Barrier
    orders: multiprocessing.Queue[Numbered | None],
    reports: multiprocessing.Queue[tuple[int, Report]],
) -> None:
    """The body of one client process: open its connection or `Wallet`, then send what it gets."""
    client = me.number
    try:
        with ExitStack() as stack:
            send = open_sender(me, stack)
            reports.put((client, (0.0, 0.0, 0.0)))  # ready
            while (moves := orders.get()) is not None:
                barrier.wait(BARRIER_TIMEOUT_S)
                # CLOCK_MONOTONIC is one clock for every process of the machine.
                started, cpu = time.monotonic(), time.process_time()
                send(moves)
                finished, cpu = time.monotonic(), time.process_time() - cpu
                reports.put((client, (started, finished, cpu)))
    except BaseException:
        reports.put((client, traceback.format_exc()))


class ProcessSide:
    """A contender whose clients are processes of their own (spawned), one per `Client`.

    The processes are started, connect (the service's build a `Wallet` each and log in) and are
    warmed before anything is timed, and live until `close`. For each part the parent hands every
    process its share; they start together at a barrier, and the part's wall time runs from the
    first start to the last finish, its CPU time is the sum of theirs. The parent only waits, so
    its own CPU is not counted.
    """

    def __init__(self, specs: Sequence[Client]) -> None:
        context = multiprocessing.get_context("spawn")
        self.clients = clients = len(specs)
        self.sent = 0
        self._barrier = context.Barrier(clients)
        self._reports: multiprocessing.Queue[tuple[int, Report]] = context.Queue()
        self._orders: list[multiprocessing.Queue[Numbered | None]] = [
            context.Queue() for _ in range(clients)
        ]
        self._workers = [
            context.Process(
                target=client_process,
                args=(spec, self._barrier, orders, self._reports),
                name=f"bench-{spec.side}-client-{spec.number}",
                daemon=True,
            )
            for spec, orders in zip(specs, self._orders, strict=True)
        ]
        try:
            for worker in self._workers:
                worker.start()
            self._collect()  # every process is connected (and logged in)
        except BaseException:
            self.close()
            raise

    def run(self, moves: Numbered) -> tuple[float, float]:
        """Wall and CPU seconds of sending `moves`."""
        for client, orders in enumerate(self._orders):
            orders.put(list(moves[client :: self.clients]))  # possibly empty: all meet the barrier
        reports = self._collect()
        started = min(report[0] for report in reports)
        finished = max(report[1] for report in reports)
        self.sent += len(moves)
        return finished - started, sum(report[2] for report in reports)

    def _collect(self) -> list[tuple[float, float, float]]:
        """One report from every client process; a failure in any of them is raised here."""
        reports: list[tuple[float, float, float]] = []
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while len(reports) < self.clients:
            try:
                client, report = self._reports.get(timeout=0.5)
            except queue.Empty:
                gone = [worker for worker in self._workers if worker.exitcode is not None]
                if gone and self._reports.empty():
                    name, code = gone[0].name, gone[0].exitcode
                    raise RuntimeError(f"{name} exited with code {code}") from None
                if time.monotonic() > deadline:
                    raise TimeoutError("a client process stopped answering") from None
                continue
            if isinstance(report, str):
                raise RuntimeError(f"client process {client} failed:\n{report}")
            reports.append(report)
        return reports

    def close(self) -> None:
        self._barrier.abort()  # frees any process still waiting for a partner that failed
        for orders in self._orders:
            orders.put(None)
        for worker in self._workers:
            if worker.pid is None:
                continue  # never started
            worker.join(timeout=30)
            if worker.is_alive():
                worker.terminate()
                worker.join()
        for orders in self._orders:
            orders.cancel_join_thread()  # nothing left to read them if a process failed
            orders.close()
        self._reports.close()


@contextmanager
def service_side(
    url: str, *, users: int, warmup: Numbered, clients: int, processes: bool = False
) -> Iterator[Contender]:
    """`WalletService.transfer` on a fresh database at `url`.

    Its clients are threads sharing this process's `Wallet` (one engine, one pool), or, with
    `processes`, processes of their own, each with its own `Wallet` on the same database. Either
    way this process registers and tops up the users first and checks the ledger at the end.
    """
    with build_wallet(
        url, hasher=CHEAP_HASHER, secrets=BENCH_SECRETS, pool_size=max(5, clients)
    ) as wallet:
        service = wallet.service
        principals = service_users(service, users)
        with ExitStack() as stack:
            side: Side | ProcessSide
            if processes:
                side = ProcessSide(
                    [Client("service", url, users, number) for number in range(clients)]
                )
                stack.callback(side.close)
            else:
                side = Side(
                    lambda _client, moves: send_transfers(service, principals, moves), clients
                )
            side.run(warmup)
            yield side
        report = service.verify_ledger(actor=OPERATOR)
        if report.problems or report.entries != users + side.sent:
            raise RuntimeError(f"the benchmark left a broken ledger: {report}")


# --- the baselines: the minimal SQL of one transfer -------------------------------------------

SQLITE_SCHEMA = """
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    balance INTEGER NOT NULL CHECK (balance >= 0)
);
CREATE TABLE transfers (
    id TEXT PRIMARY KEY,
    sender_id INTEGER NOT NULL REFERENCES accounts (id),
    recipient_id INTEGER NOT NULL REFERENCES accounts (id),
    amount INTEGER NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE postings (
    id INTEGER PRIMARY KEY,
    transfer_id TEXT NOT NULL REFERENCES transfers (id),
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    amount INTEGER NOT NULL,
    balance_after INTEGER NOT NULL
);
CREATE INDEX ix_postings_account ON postings (account_id, id);
"""

PG_SCHEMA = """
CREATE TABLE accounts (
    id BIGSERIAL PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    balance BIGINT NOT NULL CHECK (balance >= 0)
);
CREATE TABLE transfers (
    id VARCHAR(26) PRIMARY KEY,
    sender_id BIGINT NOT NULL REFERENCES accounts (id),
    recipient_id BIGINT NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency VARCHAR(3) NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE postings (
    id BIGSERIAL PRIMARY KEY,
    transfer_id VARCHAR(26) NOT NULL REFERENCES transfers (id),
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    amount BIGINT NOT NULL,
    balance_after BIGINT NOT NULL
);
CREATE INDEX ix_postings_account ON postings (account_id, id);
"""

# The floor (informational, no target): the baseline's SQL, and also the three records the issue
# asks of every transfer, in tables of mwallet's shape (text keys; SQLite's without rowid): the
# idempotency key with the request's fingerprint and the result's id, claimed first; the journal
# entry the postings belong to; the outbox event, in the same commit. Still the baseline's single
# posting index and no service layer: what a bare driver reaches when it keeps the books.
# Between the baseline and the floor is what the records cost; between the floor and the service,
# everything else (Python, the history's indexes, the checks).
RECORDS_SCHEMA = """
CREATE TABLE journal_entries (
    id VARCHAR(26) PRIMARY KEY,
    kind VARCHAR(16) NOT NULL,
    created_at BIGINT NOT NULL,
    memo VARCHAR(140)
){rowid};
CREATE TABLE idempotency_keys (
    scope VARCHAR(64) NOT NULL,
    key VARCHAR(128) NOT NULL,
    operation VARCHAR(32) NOT NULL,
    fingerprint VARCHAR(64) NOT NULL,
    result_id VARCHAR(26) NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
){rowid};
CREATE TABLE outbox (
    event_id VARCHAR(26) PRIMARY KEY,
    event_type VARCHAR(64) NOT NULL,
    aggregate_id VARCHAR(26) NOT NULL,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
){rowid};
"""
SQLITE_RECORDS_SCHEMA = RECORDS_SCHEMA.format(rowid=" WITHOUT ROWID")
PG_RECORDS_SCHEMA = RECORDS_SCHEMA.format(rowid="")


def ordered_id(number: int) -> str:
    """A 26-character id that sorts by creation, like the service's ULIDs."""
    return f"{time.time_ns() // 1000:017d}{number:09d}"


@dataclass(frozen=True)
class Records:
    """The floor's three records of one transfer, as parameter tuples (see RECORDS_SCHEMA)."""

    claim: tuple[Any, ...]  # idempotency_keys
    entry: tuple[Any, ...]  # journal_entries
    event: tuple[Any, ...]  # outbox

    @classmethod
    def of(cls, number: int, move: Move, transfer_id: str, now: int) -> Records:
        sender, recipient, minor = move
        scope, to = f"user-{sender:021d}", f"user-{recipient:021d}"
        request = json.dumps(["transfer", to, minor, "USD", None], separators=(",", ":"))
        payload = json.dumps(
            {
                "transfer_id": transfer_id,
                "sender_user_id": scope,
                "recipient_user_id": to,
                "amount_minor": minor,
                "currency": "USD",
                "kind": "transfer",
            },
            separators=(",", ":"),
        )
        fingerprint = hashlib.sha256(request.encode()).hexdigest()
        return cls(
            (scope, f"bench-{number}", "transfer", fingerprint, transfer_id, now),
            (transfer_id, "transfer", now),
            (f"e{transfer_id[1:]}", "TransferCompleted", transfer_id, payload, now),
        )


SQLITE_CLAIM = "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
SQLITE_ENTRY = "INSERT INTO journal_entries (id, kind, created_at) VALUES (?, ?, ?)"
SQLITE_EVENT = "INSERT INTO outbox VALUES (?, ?, ?, ?, ?)"
PG_CLAIM = "INSERT INTO idempotency_keys VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
PG_ENTRY = "INSERT INTO journal_entries (id, kind, created_at) VALUES (%s, %s, %s)"
PG_EVENT = "INSERT INTO outbox VALUES (%s, %s, %s, %s, %s)"


@contextmanager
def sqlite_baseline_side(
    path: Path, *, users: int, warmup: Numbered, records: bool = False
) -> Iterator[Side]:
    """Stdlib sqlite3 on a fresh file; with `records`, the floor (see RECORDS_SCHEMA)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
    try:
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            conn.execute(f"PRAGMA {pragma}")
        conn.executescript(SQLITE_SCHEMA + (SQLITE_RECORDS_SCHEMA if records else ""))
        conn.executemany(
            "INSERT INTO accounts (id, code, balance) VALUES (?, ?, ?)",
            [(n + 1, f"wallet:{n}", TOPUP_MINOR) for n in range(users)],
        )

        def send(_client: int, moves: Numbered) -> None:
            for number, move in moves:
                sender, recipient, minor = move
                sender_id, recipient_id = sender + 1, recipient + 1
                transfer_id = ordered_id(number)
                now = time.time_ns() // 1000
                kept = Records.of(number, move, transfer_id, now) if records else None
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if kept is not None and conn.execute(SQLITE_CLAIM, kept.claim).rowcount != 1:
                        raise RuntimeError("the floor found its idempotency key taken")
                    (balance,) = conn.execute(
                        "SELECT balance FROM accounts WHERE id = ?", (sender_id,)
                    ).fetchone()
                    if balance < minor:
                        raise RuntimeError("the baseline ran out of money")
                    after = {}
                    for account, delta in sorted(((sender_id, -minor), (recipient_id, minor))):
                        (after[account],) = conn.execute(
                            "UPDATE accounts SET balance = balance + ? WHERE id = ?"
                            " RETURNING balance",
                            (delta, account),
                        ).fetchone()
                    if kept is not None:
                        conn.execute(SQLITE_ENTRY, kept.entry)
                    conn.execute(
                        "INSERT INTO transfers (id, sender_id, recipient_id, amount, currency,"
                        " created_at) VALUES (?, ?, ?, ?, 'USD', ?)",
                        (transfer_id, sender_id, recipient_id, minor, now),
                    )
                    conn.executemany(
                        "INSERT INTO postings (transfer_id, account_id, amount, balance_after)"
                        " VALUES (?, ?, ?, ?)",
                        [
                            (transfer_id, sender_id, -minor, after[sender_id]),
                            (transfer_id, recipient_id, minor, after[recipient_id]),
                        ],
                    )
                    if kept is not None:
                        conn.execute(SQLITE_EVENT, kept.event)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

        side = Side(send, 1)
        side.run(warmup)
        yield side
        (total,) = conn.execute("SELECT sum(balance) FROM accounts").fetchone()
        (count,) = conn.execute("SELECT count(*) FROM transfers").fetchone()
        if total != users * TOPUP_MINOR or count != side.sent:
            raise RuntimeError("the SQLite baseline lost money or transfers")
    finally:
        conn.close()


def pg_send(conn: psycopg.Connection[Any], moves: Numbered, *, records: bool = False) -> None:
    """The baseline's transfers on `conn`; with `records`, the floor's (see RECORDS_SCHEMA)."""
    for number, move in moves:
        sender, recipient, minor = move
        sender_id, recipient_id = sender + 1, recipient + 1
        transfer_id = ordered_id(number)
        now = time.time_ns() // 1000
        kept = Records.of(number, move, transfer_id, now) if records else None
        try:
            if kept is not None and conn.execute(PG_CLAIM, kept.claim).rowcount != 1:
                raise RuntimeError("the floor found its idempotency key taken")
            # The first statement opens the transaction; both rows are locked in id order.
            locked = dict(
                conn.execute(
                    "SELECT id, balance FROM accounts WHERE id IN (%s, %s) ORDER BY id FOR UPDATE",
                    (sender_id, recipient_id),
                ).fetchall()
            )
            if locked[sender_id] < minor:
                raise RuntimeError("the baseline ran out of money")
            after = {}
            for account, delta in sorted(((sender_id, -minor), (recipient_id, minor))):
                row = conn.execute(
                    "UPDATE accounts SET balance = balance + %s WHERE id = %s RETURNING balance",
                    (delta, account),
                ).fetchone()
                if row is None:
                    raise RuntimeError(f"the baseline lost account {account}")
                after[account] = row[0]
            if kept is not None:
                conn.execute(PG_ENTRY, kept.entry)
            conn.execute(
                "INSERT INTO transfers (id, sender_id, recipient_id, amount, currency,"
                " created_at) VALUES (%s, %s, %s, %s, 'USD', %s)",
                (transfer_id, sender_id, recipient_id, minor, now),
            )
            conn.execute(
                "INSERT INTO postings (transfer_id, account_id, amount, balance_after)"
                " VALUES (%s, %s, %s, %s), (%s, %s, %s, %s)",
                (
                    *(transfer_id, sender_id, -minor, after[sender_id]),
                    *(transfer_id, recipient_id, minor, after[recipient_id]),
                ),
            )
            if kept is not None:
                conn.execute(PG_EVENT, kept.event)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise


@contextmanager
def pg_baseline_side(
    name: str,
    *,
    users: int,
    warmup: Numbered,
    clients: int,
    processes: bool = False,
    records: bool = False,
) -> Iterator[Contender]:
    """Plain psycopg on the fresh database `name`, one connection per client thread or process;
    with `records`, the floor (see RECORDS_SCHEMA: threads only)."""
    if records and processes:
        raise ValueError("the floor runs its clients as threads")
    with pg_connect(name) as setup:
        setup.execute(PG_SCHEMA + (PG_RECORDS_SCHEMA if records else ""))
        with setup.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO accounts (id, code, balance) VALUES (%s, %s, %s)",
                [(n + 1, f"wallet:{n}", TOPUP_MINOR) for n in range(users)],
            )
        setup.commit()
    with ExitStack() as stack:
        side: Side | ProcessSide
        if processes:
            side = ProcessSide([Client("baseline", name, users, n) for n in range(clients)])
            stack.callback(side.close)
        else:
            connections = [stack.enter_context(pg_connect(name)) for _ in range(clients)]
            side = Side(
                lambda client, moves: pg_send(connections[client], moves, records=records),
                clients,
            )
        side.run(warmup)
        yield side
    with pg_connect(name) as check:
        row = check.execute(
            "SELECT (SELECT sum(balance) FROM accounts), (SELECT count(*) FROM transfers)"
        ).fetchone()
    if row != (users * TOPUP_MINOR, side.sent):
        raise RuntimeError(f"the PostgreSQL baseline lost money or transfers: {row}")


# --- throughput scenarios ---------------------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    label: str
    clients: int
    service_processes: bool  # the service's clients are processes, not threads of this process
    baseline_processes: bool  # likewise the baseline's
    transfers: int
    service: Score
    baseline: Score
    target: float | None  # None: informational, no verdict
    floor: Score | None = None  # the bare driver keeping the records (RECORDS_SCHEMA)

    @property
    def ratio(self) -> float:
        return self.service.per_second / self.baseline.per_second


@dataclass(frozen=True)
class Plan:
    users: int
    warmup: Numbered
    moves: Numbered
    blocks: int


def sqlite_round(folder: Path, plan: Plan) -> list[Score]:
    """One race on SQLite: the service, the baseline and the floor."""
    tag = uuid.uuid4().hex[:8]
    url = f"sqlite:///{folder / f'service-{tag}.db'}"
    with (
        service_side(url, users=plan.users, warmup=plan.warmup, clients=1) as service,
        sqlite_baseline_side(
            folder / f"baseline-{tag}.db", users=plan.users, warmup=plan.warmup
        ) as baseline,
        sqlite_baseline_side(
            folder / f"floor-{tag}.db", users=plan.users, warmup=plan.warmup, records=True
        ) as floor,
    ):
        return race([service, baseline, floor], plan.moves, plan.blocks)


def pg_round(
    plan: Plan, clients: int, service_processes: bool, baseline_processes: bool, floor: bool
) -> list[Score]:
    """One race on PostgreSQL, each side's clients processes or threads of this one: the
    service and the baseline, and with `floor` the floor too (its clients threads)."""
    with (
        fresh_pg_database() as service_db,
        fresh_pg_database() as baseline_db,
        service_side(
            pg_service_url(service_db),
            users=plan.users,
            warmup=plan.warmup,
            clients=clients,
            processes=service_processes,
        ) as service,
        pg_baseline_side(
            baseline_db,
            users=plan.users,
            warmup=plan.warmup,
            clients=clients,
            processes=baseline_processes,
        ) as base,
        ExitStack() as stack,
    ):
        sides = [service, base]
        if floor:
            floor_db = stack.enter_context(fresh_pg_database())
            sides.append(
                stack.enter_context(
                    pg_baseline_side(
                        floor_db,
                        users=plan.users,
                        warmup=plan.warmup,
                        clients=clients,
                        records=True,
                    )
                )
            )
        return race(sides, plan.moves, plan.blocks)


def median_of_rounds(rounds: int, run: Callable[[], list[Score]]) -> list[Score]:
    """Each contender's median score over `rounds` runs of `run`."""
    results = [run() for _ in range(rounds)]

    def median(scores: Sequence[Score]) -> Score:
        return Score(
            statistics.median(score.per_second for score in scores),
            statistics.median(score.cpu_us for score in scores),
        )

    return [median(scores) for scores in zip(*results, strict=True)]


# --- start-up ---------------------------------------------------------------------------------

TRIVIAL_TYPER_APP = '''\
import typer

app = typer.Typer(add_completion=False)


@app.command()
def hello(name: str = "world") -> None:
    """Say hello."""
    print(f"hello {name}")


if __name__ == "__main__":
    app()
'''


@dataclass(frozen=True)
class Startup:
    help_ms: float
    trivial_help_ms: float
    balance_ms: float
    imports_ms: float


def run_checked(argv: Sequence[str], env: dict[str, str], stdin: str | None = None) -> None:
    done = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")


def measure_startup(folder: Path, runs: int) -> Startup:
    python = sys.executable
    mwallet = str(Path(python).parent / "mwallet")
    home = folder / "home"
    # PYTHONDONTWRITEBYTECODE (set in some sandboxes) would make every run compile mwallet's
    # modules from source, while the libraries it is compared with were compiled at install:
    # measure what an installation does, with its bytecode caches written by the warm-up.
    dropped = {"MWALLET_DB", "MWALLET_DEBUG", "PYTHONDONTWRITEBYTECODE"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["MWALLET_HOME"] = str(home)
    phone = "+258841234567"
    run_checked(
        [mwallet, "register", "--phone", phone, "--name", "Bench", "--password-stdin"],
        env,
        stdin=PASSWORD + "\n",
    )
    run_checked(
        [mwallet, "login", "--phone", phone, "--password-stdin"], env, stdin=PASSWORD + "\n"
    )
    trivial = folder / "trivial_typer.py"
    trivial.write_text(TRIVIAL_TYPER_APP)
    commands = {
        "help": [mwallet, "--help"],
        "trivial": [python, str(trivial), "--help"],
        "balance": [mwallet, "balance"],
        "imports": [python, "-c", "import typer, sqlalchemy"],
    }
    for argv in commands.values():  # warm the page cache and the bytecode caches
        run_checked(argv, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):  # interleaved, so a noisy moment hurts every command alike
        for name, argv in commands.items():
            started = time.perf_counter()
            run_checked(argv, env)
            times[name].append((time.perf_counter() - started) * 1000)
    median = {name: statistics.median(values) for name, values in times.items()}
    return Startup(median["help"], median["trivial"], median["balance"], median["imports"])


# --- report -----------------------------------------------------------------------------------


def flush_us(folder: Path, runs: int = 200) -> float:
    """The median time of a 4 KiB write and fdatasync of a file in `folder`: roughly what a
    SQLite commit (WAL, synchronous=FULL) waits for the disk, on top of its CPU."""
    path = folder / "flush-probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        page = b"\0" * 4096
        os.pwrite(fd, page, 0)
        os.fsync(fd)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            os.pwrite(fd, page, 0)
            os.fdatasync(fd)
            times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(times) * 1e6


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def clients_are(clients: int, processes: bool) -> str:
    if processes:
        return f"{clients} process{'es' if clients != 1 else ''}"
    return f"{clients} thread{'s' if clients != 1 else ''} in one process"


def print_report(
    throughput: Sequence[Throughput],
    skipped: Sequence[str],
    startup: Startup | None,
    args: argparse.Namespace,
) -> None:
    print()
    print(
        "Durable transfers per second, one transfer per commit; per row, service and baseline run"
        f" the same moves in {args.blocks} alternating blocks, median of {args.rounds} round(s)"
    )
    print(
        "(CPU: the clients' CPU time per transfer in us, summed over client processes;"
        " not the PostgreSQL server's)"
    )
    header = (
        f"{'scenario':<37}{'N':>6}{'service/s':>11}{'baseline/s':>12}{'ratio':>8}"
        f"{'target':>10}  verdict{'CPU svc':>9}{'CPU base':>10}"
    )
    print(header)
    print("-" * len(header))
    for row in throughput:
        if row.target is None:
            target, judged = "-", "info"
        else:
            target = f"{'>= ' + format(row.target, '.2f')}x"
            judged = verdict(row.ratio >= row.target)
        print(
            f"{row.label:<37}{row.transfers:>6}{row.service.per_second:>11.1f}"
            f"{row.baseline.per_second:>12.1f}{row.ratio:>7.2f}x{target:>10}  {judged:<7}"
            f"{row.service.cpu_us:>9.0f}{row.baseline.cpu_us:>10.0f}"
        )
    for line in skipped:
        print(line)
    for row in throughput:
        if row.floor is None:
            continue
        print(
            f"  {row.label}: floor (the bare driver also writing the issue's records: idempotency"
            f" key, journal entry, outbox event) {row.floor.per_second:.1f}/s ="
            f" {row.floor.per_second / row.baseline.per_second:.2f}x the baseline, CPU"
            f" {row.floor.cpu_us:.0f} us; the service is"
            f" {row.service.per_second / row.floor.per_second:.2f}x the floor"
        )
    for row in throughput:
        # SQLite's rows alone: on PostgreSQL the wait is mostly the server's work, not alike.
        if row.target is None or not row.label.startswith("SQLite"):
            continue
        # Each side's time per transfer is its CPU plus a wait, mostly the commit's flush to
        # disk: with the same wait w, ratio = (base CPU + w) / (service CPU + w), which meets
        # the target once w >= (service CPU - target x base CPU) / (1 - target). (The service's
        # wait is a little longer: its commit writes more pages.)
        service_wait = 1e6 / row.service.per_second - row.service.cpu_us
        baseline_wait = 1e6 / row.baseline.per_second - row.baseline.cpu_us
        needed = (row.service.cpu_us - row.target * row.baseline.cpu_us) / (1 - row.target)
        print(
            f"  {row.label}: wall minus CPU per transfer, service {service_wait:.0f} us, baseline"
            f" {baseline_wait:.0f} us; with these CPU times, {row.target:.2f}x needs a wait of"
            f" {needed:.0f} us"
        )
    for row in throughput:
        if row.clients < 2:
            continue
        # CPU seconds per second of wall time: how many cores the clients kept busy.
        service_cores = row.service.cpu_us * row.service.per_second / 1e6
        baseline_cores = row.baseline.cpu_us * row.baseline.per_second / 1e6
        print(
            f"  {row.label}: client CPU in use, service {service_cores:.2f} cores"
            f" ({clients_are(row.clients, row.service_processes)}), baseline"
            f" {baseline_cores:.2f} cores ({clients_are(row.clients, row.baseline_processes)})"
        )
    if startup is None:
        return
    print()
    print(f"Start-up (median wall time of {args.startup_runs} runs)")
    rows = [
        ("mwallet --help", startup.help_ms),
        ("trivial Typer app --help", startup.trivial_help_ms),
        ("mwallet balance", startup.balance_ms),
        ('python -c "import typer, sqlalchemy"', startup.imports_ms),
    ]
    for label, ms in rows:
        print(f"{label:<44}{ms:>9.1f} ms")
    help_ratio = startup.help_ms / startup.trivial_help_ms
    balance_ratio = startup.balance_ms / startup.imports_ms
    print(
        f"{'mwallet --help / trivial Typer':<44}{help_ratio:>8.2f}x   target <= {HELP_TARGET}x  "
        f"{verdict(help_ratio <= HELP_TARGET)}"
    )
    print(
        f"{'mwallet balance / import typer+sqlalchemy':<44}{balance_ratio:>8.2f}x   "
        f"target <= {BALANCE_TARGET}x  {verdict(balance_ratio <= BALANCE_TARGET)}"
    )


def profile_service(folder: Path, plan: Plan, backend: str) -> None:
    """Profile only the service's timed transfers, one connection, and print the hot spots."""
    profile = cProfile.Profile()
    with ExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite:///{folder / 'profiled.db'}"
        else:
            url = pg_service_url(stack.enter_context(fresh_pg_database()))
        service = stack.enter_context(
            service_side(url, users=plan.users, warmup=plan.warmup, clients=1)
        )
        profile.enable()
        elapsed, _ = service.run(plan.moves)
        profile.disable()
    print(f"service on {backend} under cProfile: {len(plan.moves) / elapsed:.1f} transfers/s")
    stats = pstats.Stats(profile).strip_dirs()
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(45)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--transfers", type=int, help="N per scenario [SQLite 3000, PG 2000]")
    parser.add_argument("--users", type=int, default=50, help="wallets to move money between")
    parser.add_argument("--clients", type=int, default=4, help="concurrent PostgreSQL clients")
    parser.add_argument(
        "--baseline-processes",
        action="store_true",
        help="in the 'N processes' row run the baseline's clients as processes too"
        " [threads, one psycopg connection each]",
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat on fresh databases; median")
    parser.add_argument(
        "--blocks", type=int, default=10, help="alternate service and baseline this many times"
    )
    parser.add_argument("--startup-runs", type=int, default=15, help="processes per command")
    parser.add_argument("--seed", type=int, default=20260115)
    parser.add_argument("--quick", action="store_true", help="a fast smoke run with small N")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL rows")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up timings")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="sqlite",
        choices=["sqlite", "postgresql"],
        help="only profile the service on one backend [sqlite] with cProfile",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.startup_runs = min(args.startup_runs, 5)
    return args


def make_plan(args: argparse.Namespace, count: int, rng: random.Random) -> Plan:
    warmup = make_moves(20 if args.quick else 50, args.users, rng)
    moves = make_moves(count, args.users, rng)
    return Plan(
        users=args.users,
        warmup=list(enumerate(warmup)),
        moves=list(enumerate(moves, start=len(warmup))),
        blocks=args.blocks,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    small = 200 if args.quick else None
    sqlite_plan = make_plan(args, args.transfers or small or 3000, rng)
    pg_plan = make_plan(args, args.transfers or small or 2000, rng)
    print(
        f"mwallet from {Path(mwallet.__file__).parent}; Python {sys.version.split()[0]}, ", end=""
    )
    print(f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, ", end="")
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mwallet-bench-") as tmp:
        folder = Path(tmp)
        print(
            "the disk under the SQLite files: a 4 KiB write and fdatasync take"
            f" {flush_us(folder):.0f} us (median)",
            flush=True,
        )
        if args.profile:
            plan = sqlite_plan if args.profile == "sqlite" else pg_plan
            profile_service(folder, plan, args.profile)
            return
        throughput: list[Throughput] = []
        skipped: list[str] = []
        n_sqlite, n_pg = len(sqlite_plan.moves), len(pg_plan.moves)
        print(f"SQLite: {n_sqlite} transfers, {args.rounds} round(s) ...", flush=True)
        service, base, floor = median_of_rounds(
            args.rounds, partial(sqlite_round, folder, sqlite_plan)
        )
        throughput.append(
            Throughput(
                "SQLite, 1 connection",
                1,
                False,
                False,
                n_sqlite,
                service,
                base,
                SQLITE_TARGET,
                floor,
            )
        )
        n, base_processes = args.clients, args.baseline_processes
        # (label, clients, service's are processes, baseline's are processes, target or None)
        pg_scenarios: list[tuple[str, int, bool, bool, float | None]] = [
            ("PostgreSQL, 1 connection", 1, False, False, PG_TARGET),
            (
                f"PostgreSQL, {n} process{'es' if n != 1 else ''}",
                n,
                True,
                base_processes,
                PG_TARGET,
            ),
            (f"PostgreSQL, {n} thread{'s' if n != 1 else ''} (one process)", n, False, False, None),
        ]
        if args.no_postgres or not pg_reachable():
            why = "--no-postgres" if args.no_postgres else "PostgreSQL is not reachable"
            skipped += [f"{scenario[0]}  skipped: {why}" for scenario in pg_scenarios]
        else:
            for label, clients, service_procs, baseline_procs, target in pg_scenarios:
                print(
                    f"{label}: {n_pg} transfers, {args.rounds} round(s); clients: service"
                    f" {clients_are(clients, service_procs)}, baseline"
                    f" {clients_are(clients, baseline_procs)} ...",
                    flush=True,
                )
                with_floor = clients == 1
                race_round = partial(
                    pg_round, pg_plan, clients, service_procs, baseline_procs, with_floor
                )
                service, base, *floor_score = median_of_rounds(args.rounds, race_round)
                throughput.append(
                    Throughput(
                        label,
                        clients,
                        service_procs,
                        baseline_procs,
                        n_pg,
                        service,
                        base,
                        target,
                        floor_score[0] if floor_score else None,
                    )
                )
        startup = None
        if not args.no_startup:
            print(f"Start-up: {args.startup_runs} runs of each command ...", flush=True)
            startup = measure_startup(folder, args.startup_runs)
    print(f"(load average after the run {os.getloadavg()[0]:.2f})")
    print_report(throughput, skipped, startup, args)


if __name__ == "__main__":
    main()
