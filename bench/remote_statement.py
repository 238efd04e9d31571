"""How fast a statement streams through `mwallet --server`, and whether it stays in constant memory.

Builds the history of `reports.py` (one user, Ana, with `--movements` movements among `--users`
others, by bulk inserts), serves it with `mwallet serve`'s app on uvicorn in a thread of this
process, and exports Ana's CSV statement through `HttpWalletService` (as `mwallet --server …
statement` reads it, line by line) to /dev/null: rows per second against the same export through
the service directly, and the peak memory (tracemalloc) of client and server together for the
newest tenth (from a day's start) and for all of it: the two peaks should be about the same.

SQLite (WAL, synchronous=FULL). It prints; it asserts nothing about time. Run
`python bench/remote_statement.py --help`.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

PASSWORD = "bench-password-2026"  # reports.py's users'


def export(service: Any, who: Any, start: datetime | None) -> tuple[int, float]:
    """(lines, seconds) of a CSV statement from `start` on (`service`: a `UserService`)."""
    from bench.reports import Sink
    from mwallet.cli.statement_export import write_statement_csv

    started = time.perf_counter()
    with service.statement(who, start=start) as statement, Sink() as out:
        write_statement_csv(statement, statement.lines, out)
    return statement.totals.count, time.perf_counter() - started


def peak_kib(service: Any, who: Any, start: datetime | None) -> float:
    tracemalloc.start()
    try:
        export(service, who, start)
        return tracemalloc.get_traced_memory()[1] / 1024
    finally:
        tracemalloc.stop()


def tenth_day(service: Any, who: Any) -> datetime:
    """The first day of the newest tenth of the statement (whole days over HTTP)."""
    with service.statement(who) as statement:
        times = [line.created_at for line in statement.lines]
    at = times[len(times) * 9 // 10]
    return datetime.combine(at.date(), datetime.min.time(), at.tzinfo)


@contextmanager
def served(app: Any) -> Iterator[str]:
    import uvicorn

    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", ws="none",
                                           http="h11", access_log=False))  # fmt: skip
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listening.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movements", type=int, default=100_000, help="Ana's movements")
    parser.add_argument("--users", type=int, default=1_000, help="the other users")
    args = parser.parse_args()
    # Run as a script, this file's folder comes first on sys.path, and bench/http.py would hide
    # the standard library's `http` package from what imports it (httpx, uvicorn): not any more.
    here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]
    from bench.reports import CHEAP_HASHER, SECRETS, START, build
    from mwallet.bootstrap import build_wallet
    from mwallet.core.clock import FixedClock
    from mwallet.remote import HttpWalletService
    from mwallet.server.app import create_app

    with tempfile.TemporaryDirectory() as folder:
        wallet = build_wallet(f"sqlite:///{Path(folder) / 'bench.db'}",
                              clock=FixedClock(START + timedelta(days=400)), hasher=CHEAP_HASHER,
                              secrets=SECRETS)  # fmt: skip
        try:
            ana, _ = build(wallet, args.movements, args.users)
            lines, seconds = export(wallet.service, ana, None)
            print(f"== {args.movements:,} movements, SQLite")
            print(f"local CSV statement, {lines:,} lines: {lines / seconds:,.0f} rows/s")
            with served(create_app(wallet.service, rate_limit=None)) as url:
                remote = HttpWalletService(url, timeout=600)
                try:
                    who = remote.login(phone=ana.phone, password=PASSWORD).principal
                    lines, seconds = export(remote, who, None)
                    print(f"remote CSV statement, {lines:,} lines: {lines / seconds:,.0f} rows/s")
                    last = tenth_day(wallet.service, ana)
                    part, _ = export(remote, who, last)
                    small, full = peak_kib(remote, who, last), peak_kib(remote, who, None)
                    print(f"remote peak memory (client and server): {part:,} lines "
                          f"{small:,.0f} KiB, {lines:,} lines {full:,.0f} KiB "
                          f"(ratio {full / small:.2f})")  # fmt: skip
                finally:
                    remote.close()
        finally:
            wallet.close()


if __name__ == "__main__":
    main()
