"""How fast mwallet moves money over HTTP, next to PostgreSQL's own pgbench on the same machine.

Transfers per second through `POST /wallet/{userId}/transfer` of real `mwallet serve` processes
(uvicorn, one worker each, every service, tokens checked against the database's keys) at 1, 4 and
16 concurrent clients, with 1 and 2 server processes, on a fresh PostgreSQL database
(`mwallet_bench_<random>`, dropped afterwards). The clients are threads of this process, each with
its own keep-alive `httpx.Client`, dealt round-robin over the server processes; every transfer
has its own Idempotency-Key and moves a small random amount between two of the topped-up users.
After the transfers, p50/p99 latency of `GET /wallet/{userId}/balance` at the same concurrency.

Next to each row, when `pgbench` is on the PATH: TPC-B (pgbench's built-in script) at the same
client count on a scratch database (`pgbench -i -s SCALE`, dropped afterwards), and the ratio of
HTTP transfers to TPC-B transactions per second. A TPC-B transaction is five statements in one
commit (three balance updates, a select, an insert); an HTTP transfer is one commit too, plus HTTP
parsing, JSON, authentication and the service's idempotency, journal and outbox rows.

Users, top-ups and logins are set-up, not measured. This script only prints; it asserts nothing
about time. Run `python bench/http.py --help` (or `python -m bench.http`).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and this module's name would hide
# the standard library's `http` package from everything that imports it (httpx, uvicorn).
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).parent]

import argparse
import base64
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import httpx

import mwallet
from mwallet.bootstrap import build_wallet
from mwallet.core.crypto import Keyring
from mwallet.core.domain.money import Money
from mwallet.core.domain.roles import Role
from mwallet.core.domain.users import Principal
from mwallet.core.security import Argon2idHasher

OPERATOR = Principal("bench-operator", "+258840000000", "Bench Operator", Role.ADMIN)
CHEAP_HASHER = Argon2idHasher(time_cost=1, memory_kib=8, parallelism=1)
DATA_KEY = b"\x42" * 32  # a throwaway database's data key, shared by every server process
PASSWORD = "bench-horse-battery-staple"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
TOPUP_MINOR = 100_000_000
START_TIMEOUT_S = 60.0


# --- databases ----------------------------------------------------------------------------


def psql(statement: str) -> None:
    import psycopg

    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
    ) as admin:
        admin.execute(statement.encode())


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    name = f"mwallet_bench_{uuid.uuid4().hex[:12]}"
    psql(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url(name: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


# --- the servers ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def servers(count: int, url: str, folder: Path) -> Iterator[list[str]]:
    """`count` processes of `mwallet serve` (every service) on the database `url`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MWALLET_")}
    env.update(MWALLET_HOME=str(folder / "home"), MWALLET_DB=url,
               MWALLET_SECRET_KEY=base64.b64encode(DATA_KEY).decode())  # fmt: skip
    started: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for number in range(count):
            port, log = free_port(), folder / f"server-{number}.log"
            with log.open("w") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "mwallet", "serve", "--port", str(port),
                     "--rate-limit", "off"],
                    env=env, stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            started.append((process, f"http://127.0.0.1:{port}", log))
        for process, base, log in started:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"mwallet serve stopped:\n{log.read_text()}")
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"mwallet serve did not start:\n{log.read_text()}")
                time.sleep(0.1)
        yield [base for _, base, _ in started]
    finally:
        for process, _, _ in started:
            process.terminate()
        for process, _, _ in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@dataclass(frozen=True)
class Person:
    user_id: str
    phone: str
    bearer: dict[str, str]


def set_up_people(url: str, base: str, users: int) -> list[Person]:
    """Users registered and topped up in this process (set-up), logged in over HTTP."""
    people = []
    with build_wallet(url, hasher=CHEAP_HASHER, secrets=Keyring([DATA_KEY])) as wallet:
        service = wallet.service
        service.init(currency="USD")
        for number in range(users):
            phone = f"+2588420{number:05d}"
            service.register(phone=phone, display_name=f"Bench {number}", email=None,
                             password=PASSWORD, idempotency_key=f"reg-{number}")  # fmt: skip
            principal = service.login(phone=phone, password=PASSWORD).principal
            service.topup(principal, amount=Money(TOPUP_MINOR, "USD"), source="sandbox",
                          idempotency_key=f"top-{number}")  # fmt: skip
    with httpx.Client(timeout=30) as http:
        for number in range(users):
            phone = f"+2588420{number:05d}"
            login = http.post(f"{base}/auth/login", json={"phone": phone, "password": PASSWORD})
            login.raise_for_status()
            found = login.json()
            bearer = {"Authorization": f"Bearer {found['access_token']}"}
            people.append(Person(found["user_id"], phone, bearer))
    return people


# --- the clients --------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    per_second: float
    p50_ms: float
    p99_ms: float
    statuses: Counter[int]


def run_clients(
    clients: int, bases: Sequence[str], requests: int, one: Callable[[httpx.Client, int], int]
) -> Run:
    """`requests` calls of `one(http, number)` spread over `clients` threads, started together;
    client i talks to server i mod len(bases)."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    gate = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        mine: list[float] = []
        seen: Counter[int] = Counter()
        with httpx.Client(base_url=bases[index % len(bases)], timeout=60) as http:
            one(http, -1 - index)  # a warm connection before the clock starts
            gate.wait()
            for number in range(index, requests, clients):
                started = time.perf_counter()
                seen[one(http, number)] += 1
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
            statuses.update(seen)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return Run(requests / elapsed, cuts[49] * 1000, cuts[98] * 1000, statuses)


def transfer_call(
    people: Sequence[Person], seed: int, tag: str
) -> Callable[[httpx.Client, int], int]:
    def one(http: httpx.Client, number: int) -> int:
        rng = random.Random(seed * 1_000_003 + number)
        sender, recipient = rng.sample(people, 2)
        answer = http.post(
            f"/wallet/{sender.user_id}/transfer",
            json={"to": recipient.phone, "amount": f"{rng.randint(1, 10_000) / 100:.2f}"},
            headers={**sender.bearer, "Idempotency-Key": f"{tag}-{number}"},
        )
        return answer.status_code

    return one


def balance_call(people: Sequence[Person]) -> Callable[[httpx.Client, int], int]:
    def one(http: httpx.Client, number: int) -> int:
        who = people[number % len(people)]
        return http.get(f"/wallet/{who.user_id}/balance", headers=who.bearer).status_code

    return one


# --- pgbench ---------------------------------------------------------------------------------


def pgbench_tps(clients: Sequence[int], seconds: int, scale: int) -> dict[int, float]:
    """TPC-B transactions per second at each client count, on a scratch database."""
    with fresh_pg_database() as name:
        common = ["-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER]
        subprocess.run(["pgbench", "-i", "-q", "-s", str(scale), *common, name],
                       check=True, capture_output=True)  # fmt: skip
        found = {}
        for count in clients:
            done = subprocess.run(
                ["pgbench", "-n", "-c", str(count), "-j", str(min(count, os.cpu_count() or 1)),
                 "-T", str(seconds), *common, name],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
            if match is None:
                raise SystemExit(f"pgbench said nothing about tps:\n{done.stdout}")
            found[count] = float(match.group(1))
    return found


# --- report -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--transfers", type=int, help="per row [2000; --quick 200]")
    parser.add_argument("--balances", type=int, help="balance reads per row [2000; --quick 200]")
    parser.add_argument("--users", type=int, default=20, help="wallets to move money between")
    parser.add_argument("--clients", default="1,4,16", help="concurrent clients per row")
    parser.add_argument("--processes", default="1,2", help="server processes per row")
    parser.add_argument("--pgbench-seconds", type=int, help="per client count [10; --quick 3]")
    parser.add_argument("--pgbench-scale", type=int, default=16, help="pgbench -i -s SCALE")
    parser.add_argument("--no-pgbench", action="store_true", help="skip pgbench")
    parser.add_argument("--seed", type=int, default=20260115)
    parser.add_argument("--quick", action="store_true", help="a fast smoke run with small N")
    args = parser.parse_args(argv)
    small = args.quick
    args.transfers = args.transfers or (200 if small else 2000)
    args.balances = args.balances or (200 if small else 2000)
    args.pgbench_seconds = args.pgbench_seconds or (3 if small else 10)
    args.clients = [int(part) for part in args.clients.split(",")]
    args.processes = [int(part) for part in args.processes.split(",")]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"mwallet from {Path(mwallet.__file__).parent}; Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    rows: list[tuple[int, int, Run, Run]] = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mwallet-http-")))
        name = stack.enter_context(fresh_pg_database())
        url = pg_url(name)
        bases = stack.enter_context(servers(max(args.processes), url, folder))
        people = set_up_people(url, bases[0], args.users)
        for processes in args.processes:
            for clients in args.clients:
                print(f"{processes} process(es), {clients} client(s): {args.transfers} "
                      f"transfers, {args.balances} balance reads ...", flush=True)  # fmt: skip
                tag = f"p{processes}c{clients}"
                moved = run_clients(clients, bases[:processes], args.transfers,
                                    transfer_call(people, args.seed, tag))  # fmt: skip
                read = run_clients(clients, bases[:processes], args.balances,
                                   balance_call(people))  # fmt: skip
                rows.append((processes, clients, moved, read))
        with build_wallet(url, hasher=CHEAP_HASHER, secrets=Keyring([DATA_KEY])) as wallet:
            ledger_ok = wallet.service.verify_ledger(actor=OPERATOR).ok
    tps: dict[int, float] = {}
    if args.no_pgbench or shutil.which("pgbench") is None:
        why = "--no-pgbench" if args.no_pgbench else "pgbench is not on the PATH"
        print(f"pgbench skipped: {why}")
    else:
        print(f"pgbench TPC-B, scale {args.pgbench_scale}, {args.pgbench_seconds} s per client "
              f"count ...", flush=True)  # fmt: skip
        tps = pgbench_tps(args.clients, args.pgbench_seconds, args.pgbench_scale)
    print(f"(load average after the run {os.getloadavg()[0]:.2f}; ledger verified: {ledger_ok})")
    print()
    header = (
        f"{'servers':>7}{'clients':>8}{'transfers/s':>13}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'pgbench tps':>13}{'ratio':>8}{'balance p50':>13}{'p99 ms':>8}  other statuses"
    )
    print(header)
    print("-" * len(header))
    for processes, clients, moved, read in rows:
        base = tps.get(clients)
        versus = f"{base:>13.0f}{moved.per_second / base:>7.2f}x" if base else f"{'-':>13}{'-':>8}"
        others = {code: n for code, n in (moved.statuses + read.statuses).items()
                  if code not in (200, 201)}  # fmt: skip
        print(f"{processes:>7}{clients:>8}{moved.per_second:>13.1f}{moved.p50_ms:>8.1f}"
              f"{moved.p99_ms:>8.1f}{versus}{read.p50_ms:>13.1f}{read.p99_ms:>8.1f}  "
              f"{others or '-'}")  # fmt: skip


if __name__ == "__main__":
    main()
