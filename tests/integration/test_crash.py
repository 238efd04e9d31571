"""A process killed with SIGKILL mid-stream loses no acknowledged transfer and half-writes nothing.

A child sends transfers in a loop and logs each intent before it sends and each outcome after, both
made durable before the next step (see `workers.TransferLog`). The parent kills it after a random
number of acknowledgements, so the kill lands anywhere in the next transfer: before BEGIN, between
postings, during COMMIT. Every fourth child instead kills itself after a COMMIT but before the ack
is logged, a window too narrow to hit from outside. Twenty lives on one database, each new child
first retrying what its predecessor left unanswered under the same idempotency key, as a client
would.
"""

from __future__ import annotations

import os
import random
import signal
import time
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Semaphore
from pathlib import Path

import pytest

from tests.integration import workers
from tests.integration.workers import (
    Ack,
    Person,
    TransferLog,
    check_books,
    fund,
    read_books,
    spawn_context,
)
from tests.support import OPERATOR, open_wallet

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("multiprocess")]

KILLS = 20
STARTING_MINOR = 5_000  # 50.00 each
# A bound on how long a child may take to acknowledge; only a hung child ever reaches it.
HANG_SECONDS = 60.0


def wait_for_acks(child: SpawnProcess, acked: Semaphore, how_many: int) -> None:
    deadline = time.monotonic() + HANG_SECONDS
    for _ in range(how_many):
        while not acked.acquire(timeout=0.05):
            assert child.is_alive(), f"the child ended by itself with exit code {child.exitcode}"
            assert time.monotonic() < deadline, f"no acknowledgement for {HANG_SECONDS:.0f} s"


def kill_mid_stream(
    db_url: str, people: list[Person], log_path: Path, life: int, rng: random.Random
) -> None:
    """Start a child on the database, let it acknowledge some transfers, then SIGKILL it.

    Every fourth child kills itself instead, between a committed transfer and its ack.
    """
    context = spawn_context()
    acked = context.Semaphore(0)
    acks = rng.randint(1, 40)
    kills_itself = life % 4 == 3
    child = context.Process(
        target=workers.transfer_until_killed,
        kwargs={
            "url": db_url,
            "people": people,
            "log_path": str(log_path),
            "seed": life,
            "acked": acked,
            "die_unacknowledged_at": acks if kills_itself else None,
        },
        name=f"life-{life}",
        daemon=True,
    )
    child.start()
    try:
        if kills_itself:
            child.join(timeout=HANG_SECONDS)
            assert not child.is_alive(), f"{child.name} hung instead of killing itself"
        else:
            wait_for_acks(child, acked, acks)
            # Spread the kill over the next transfer rather than always hitting its first step.
            time.sleep(rng.uniform(0, 0.01))
    finally:
        if child.pid is not None and child.is_alive():
            os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=HANG_SECONDS)
    assert child.exitcode == -signal.SIGKILL, f"{child.name} ended with {child.exitcode}"


def acknowledged(log: TransferLog) -> list[Ack]:
    intents = {
        record["intent"]["key"]: record["intent"] for record in log.records() if "intent" in record
    }
    return [
        (transfer_id, intents[key]["sender"], intents[key]["recipient"], intents[key]["minor"])
        for key, transfer_id in log.acks().items()
    ]


def test_acknowledged_transfers_survive_sigkill_and_none_is_half_written(
    db_url: str, tmp_path: Path
) -> None:
    with open_wallet(db_url) as wallet:
        people = fund(wallet.service, 4, STARTING_MINOR)
    log_path = tmp_path / "transfers.jsonl"
    rng = random.Random(20260115)

    for life in range(KILLS):
        kill_mid_stream(db_url, people, log_path, life, rng)

    log = TransferLog(log_path)
    acked_before_recovery = log.acks()
    outcomes = [record for record in log.records() if "intent" not in record]
    keys = [record.get("ack") or record.get("refused") for record in outcomes]
    assert len(keys) == len(set(keys)), "a transfer was answered twice"
    with open_wallet(db_url) as wallet:
        books = read_books(wallet.engine)
        report = wallet.service.verify_ledger(actor=OPERATOR)
    missing = set(acked_before_recovery.values()) - set(books.transfers)
    assert not missing, f"acknowledged but not in the database: {missing}"
    # Only the transfer in flight at each kill may have committed without its ack being logged.
    assert len(set(books.transfers) - set(acked_before_recovery.values())) <= KILLS
    half = {entry: shape for entry, shape in books.entries.items() if shape[1:] != (2, 0)}
    assert not half, f"entries without two postings summing to zero: {half}"
    assert sum(books.wallet_balances.values()) == STARTING_MINOR * len(people)
    assert books.total_of_all_balances == 0
    assert report.ok, report.problems

    # Retrying the unanswered intents under their own keys leaves exactly the acknowledged ones.
    with open_wallet(db_url) as wallet:
        log.finish_pending(wallet.service, people)
    assert log.pending() == []
    assert acked_before_recovery.items() <= log.acks().items(), "a retry changed an answer"
    check_books(db_url, people, acknowledged(log), STARTING_MINOR)
