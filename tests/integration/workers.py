"""Child processes for the concurrency and crash tests, and what their parents read back.

`spawn` starts a fresh interpreter that imports its target by module name, so every child body lives
here at module level. Each child builds its own wallet on the shared database and reports through a
JSON file; an unexpected exception is written there too and the child exits non-zero, so the parent
can say what went wrong instead of only that something did.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.context import SpawnContext
from multiprocessing.synchronize import Barrier, Semaphore
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from mwallet.core.db.tables import accounts, journal_entries, postings, transfers
from mwallet.core.domain.money import Money
from mwallet.core.domain.users import Principal
from mwallet.core.errors import InsufficientFunds
from mwallet.core.services.wallet_service import WalletService
from tests.support import OPERATOR, open_wallet, register

CURRENCY = "USD"
# How long a parent waits for its children before calling them hung.
CHILD_DEADLINE_SECONDS = 120.0

# A person as it crosses the process boundary: (user_id, phone, display_name).
Person = tuple[str, str, str]
# An acknowledged transfer: (id, sender's index in the people, recipient's index, minor units).
Ack = tuple[str, int, int, int]


def principal(person: Sequence[str]) -> Principal:
    user_id, phone, display_name = person
    return Principal(user_id, phone, display_name)


@contextmanager
def _reporting(result_path: str) -> Iterator[dict[str, Any]]:
    """Collect a child's result; on any exception record the traceback, then re-raise it."""
    result: dict[str, Any] = {}
    try:
        yield result
    except BaseException:
        Path(result_path).write_text(json.dumps({"error": traceback.format_exc()}))
        raise
    Path(result_path).write_text(json.dumps(result))


# --- child bodies --------------------------------------------------------------------------------


def random_transfers(
    url: str,
    people: Sequence[Person],
    *,
    senders: Sequence[int],
    count: int,
    seed: int,
    key_prefix: str,
    start: Barrier,
    result_path: str,
) -> None:
    """Send `count` transfers from random `senders` to random other people, some beyond a balance.

    All siblings wait at `start` with their wallets open, so their transfers overlap. Reports
    every acknowledged transfer as [id, sender index, recipient index, amount] and the number of
    InsufficientFunds refusals. Any other error is unexpected and fails the child.
    """
    with _reporting(result_path) as result, open_wallet(url) as wallet:
        rng = random.Random(seed)
        acked: list[list[object]] = []
        refused = 0
        start.wait(timeout=60)
        for n in range(count):
            sender = rng.choice(senders)
            recipient = rng.choice([i for i in range(len(people)) if i != sender])
            # Mostly small amounts; one in five larger than any starting balance.
            minor = rng.randint(10_000, 40_000) if rng.random() < 0.2 else rng.randint(1, 2_500)
            try:
                done = wallet.service.transfer(
                    principal(people[sender]),
                    to_phone=people[recipient][1],
                    amount=Money(minor, CURRENCY),
                    note=f"{key_prefix} #{n}",
                    idempotency_key=f"{key_prefix}-{n}",
                )
            except InsufficientFunds:
                refused += 1
                continue
            acked.append([done.id, sender, recipient, minor])
        result["acked"] = acked
        result["refused"] = refused


def same_key_transfers(
    url: str,
    sender: Person,
    recipient_phone: str,
    *,
    keys: Sequence[str],
    minor: int,
    start: Barrier,
    result_path: str,
) -> None:
    """For each key, wait until every sibling is ready, then all send the same request at once."""
    with _reporting(result_path) as result, open_wallet(url) as wallet:
        ids: dict[str, str] = {}
        for key in keys:
            start.wait(timeout=60)
            ids[key] = wallet.service.transfer(
                principal(sender),
                to_phone=recipient_phone,
                amount=Money(minor, CURRENCY),
                note=None,
                idempotency_key=key,
            ).id
        result["ids"] = ids


def transfer_until_killed(
    url: str,
    people: Sequence[Person],
    *,
    log_path: str,
    seed: int,
    acked: Semaphore,
    die_unacknowledged_at: int | None = None,
    limit: int = 2_000,
) -> None:
    """Send transfers in a loop until the parent kills the process (or `limit` runs out).

    First finish whatever the previous, killed incarnation left unanswered in the log. Each outcome
    is made durable in the log before the parent is told about it through `acked`. With
    `die_unacknowledged_at`, the child kills itself right after that transfer returns and before
    logging it: the one window a kill from outside rarely hits.
    """
    with open_wallet(url) as wallet:
        log = TransferLog(Path(log_path))
        log.finish_pending(wallet.service, people)
        rng = random.Random(seed)
        for n in range(limit):
            sender, recipient = rng.sample(range(len(people)), 2)
            minor = rng.randint(5_000, 20_000) if rng.random() < 0.1 else rng.randint(1, 2_000)
            intent = {
                "key": f"life{seed}-{n}",
                "sender": sender,
                "recipient": recipient,
                "minor": 1 if n == die_unacknowledged_at else minor,
            }
            log.append({"intent": intent})
            outcome = send_intent(wallet.service, people, intent)
            if n == die_unacknowledged_at:
                os.kill(os.getpid(), signal.SIGKILL)
            log.append(outcome)
            acked.release()


# --- the crash test's durable log ----------------------------------------------------------------


def send_intent(
    service: WalletService, people: Sequence[Person], intent: Mapping[str, Any]
) -> dict[str, str]:
    """Send one logged transfer; the outcome to log next to it."""
    try:
        done = service.transfer(
            principal(people[intent["sender"]]),
            to_phone=people[intent["recipient"]][1],
            amount=Money(intent["minor"], CURRENCY),
            note=None,
            idempotency_key=intent["key"],
        )
    except InsufficientFunds:
        return {"refused": intent["key"]}
    return {"ack": intent["key"], "id": done.id}


class TransferLog:
    """An append-only JSON-lines file: an intent before each transfer, its outcome after it.

    Every line is written with one `write` and fsynced before anything else happens, so a line that
    is in the file was there before the next step began. A kill can leave only the last line cut.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.exists():
            text = path.read_bytes()
            if text and not text.endswith(b"\n"):  # a line cut by the kill: it never happened
                with path.open("r+b") as file:
                    file.truncate(text.rfind(b"\n") + 1)

    def append(self, record: Mapping[str, Any]) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(record) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = self.path.read_text().split("\n")
        return [json.loads(line) for line in lines[:-1]]  # the last piece is "" or a cut line

    def pending(self) -> list[dict[str, Any]]:
        """Intents that have no outcome yet."""
        answered = {record.get("ack") or record.get("refused") for record in self.records()}
        return [
            record["intent"]
            for record in self.records()
            if "intent" in record and record["intent"]["key"] not in answered
        ]

    def finish_pending(self, service: WalletService, people: Sequence[Person]) -> None:
        """Send unanswered intents again under their own keys, as a client retrying would."""
        for intent in self.pending():
            self.append(send_intent(service, people, intent))

    def acks(self) -> dict[str, str]:
        """Idempotency key -> transfer id of every acknowledged transfer."""
        return {record["ack"]: record["id"] for record in self.records() if "ack" in record}


# --- the parent's side ---------------------------------------------------------------------------


def fund(service: WalletService, how_many: int, minor: int) -> list[Person]:
    """Register `how_many` people and top each up with `minor`."""
    people = []
    for n in range(how_many):
        person = register(service, name=f"Person {n}")
        service.topup(
            person, amount=Money(minor, CURRENCY), source="sandbox", idempotency_key=f"topup-{n}"
        )
        people.append((person.user_id, person.phone, person.display_name))
    return people


def spawn_context() -> SpawnContext:
    return multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class Child:
    target: Callable[..., None]
    kwargs: dict[str, Any]
    result_path: Path


def run_children(children: Sequence[Child]) -> list[dict[str, Any]]:
    """Start every child with `spawn`, wait for all within the deadline, return their results.

    A child still running at the deadline is killed and reported as hung; one that exits non-zero
    is reported with the traceback it recorded.
    """
    processes = [
        spawn_context().Process(
            target=child.target, kwargs=child.kwargs, name=f"child-{n}", daemon=True
        )
        for n, child in enumerate(children)
    ]
    for process in processes:
        process.start()
    deadline = time.monotonic() + CHILD_DEADLINE_SECONDS
    for process in processes:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
    hung = [process.name for process in processes if process.is_alive()]
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
    assert not hung, (
        f"{hung} still running after {CHILD_DEADLINE_SECONDS:.0f} s: hung or deadlocked"
    )
    results = []
    for process, child in zip(processes, children, strict=True):
        recorded = json.loads(child.result_path.read_text()) if child.result_path.exists() else None
        assert process.exitcode == 0, (
            f"{process.name} exited with {process.exitcode}: "
            f"{recorded.get('error') if recorded else 'no result recorded'}"
        )
        assert recorded is not None
        assert "error" not in recorded, recorded["error"]
        results.append(recorded)
    return results


@dataclass(frozen=True)
class Books:
    """What the database holds after the children are done, read straight from the tables."""

    transfers: dict[str, tuple[str, str, int]]  # id -> (sender user id, recipient user id, minor)
    transfer_id_counts: Counter[str]
    entries: dict[str, tuple[str, int, int]]  # id -> (kind, number of postings, their sum)
    wallet_balances: dict[str, int]  # owner user id -> balance
    total_of_all_balances: int


def read_books(engine: Engine) -> Books:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                transfers.c.id,
                transfers.c.sender_user_id,
                transfers.c.recipient_user_id,
                transfers.c.amount,
            )
        ).all()
        entries = conn.execute(
            select(
                journal_entries.c.id,
                journal_entries.c.kind,
                func.count(postings.c.leg),
                func.coalesce(func.sum(postings.c.amount), 0),
            )
            .outerjoin(postings, postings.c.entry_id == journal_entries.c.id)
            .group_by(journal_entries.c.id, journal_entries.c.kind)
        ).all()
        wallets = conn.execute(
            select(accounts.c.owner_user_id, accounts.c.balance).where(accounts.c.kind == "wallet")
        ).all()
        total = conn.execute(select(func.coalesce(func.sum(accounts.c.balance), 0))).scalar_one()
    return Books(
        transfers={row[0]: (row[1], row[2], int(row[3])) for row in rows},
        transfer_id_counts=Counter(row[0] for row in rows),
        entries={row[0]: (row[1], int(row[2]), int(row[3])) for row in entries},
        wallet_balances={str(owner): int(balance) for owner, balance in wallets},
        total_of_all_balances=int(total),
    )


def check_books(
    db_url: str, people: Sequence[Person], acked: Sequence[Ack], starting_minor: int
) -> None:
    """The tables hold exactly the acknowledged transfers, and every balance follows from them.

    Pytest does not rewrite asserts outside test modules, so each one says what it found.
    """
    with open_wallet(db_url) as wallet:
        books = read_books(wallet.engine)
        report = wallet.service.verify_ledger(actor=OPERATOR)

    ids = [ack[0] for ack in acked]
    assert len(set(ids)) == len(ids), "two acknowledgements carry the same transfer id"
    not_once = {i: books.transfer_id_counts[i] for i in ids if books.transfer_id_counts[i] != 1}
    assert not not_once, f"acknowledged transfers not stored exactly once: {not_once}"
    assert len(books.transfers) == len(acked), (
        f"{len(books.transfers)} transfers stored but {len(acked)} acknowledged"
    )
    half = {entry: shape for entry, shape in books.entries.items() if shape[1:] != (2, 0)}
    assert not half, f"entries without two postings summing to zero: {half}"
    moved = {entry for entry, (kind, _, _) in books.entries.items() if kind == "transfer"}
    assert moved == set(books.transfers), "transfer entries and transfer rows differ"
    expected = {user_id: starting_minor for user_id, _, _ in people}
    for transfer_id, sender, recipient, minor in acked:
        stored = books.transfers[transfer_id]
        told = (people[sender][0], people[recipient][0], minor)
        assert stored == told, f"{transfer_id}: stored {stored}, acknowledged {told}"
        assert books.entries[transfer_id][0] == "transfer", books.entries[transfer_id]
        expected[people[sender][0]] -= minor
        expected[people[recipient][0]] += minor

    drift = {
        user: (books.wallet_balances.get(user), balance)
        for user, balance in expected.items()
        if books.wallet_balances.get(user) != balance
    }
    assert not drift, f"wallets (stored, from the acks) disagree: {drift}"
    held = sum(books.wallet_balances.values())
    assert held == starting_minor * len(people), (
        f"wallets hold {held}, topped up {starting_minor * len(people)}"
    )
    assert books.total_of_all_balances == 0, f"all balances sum to {books.total_of_all_balances}"
    assert min(books.wallet_balances.values()) >= 0, books.wallet_balances
    assert report.ok, report.problems


def notification_worker(*, url: str, broker: str, prefix: str, batch: int, pause: float) -> None:
    """A notification worker that takes events from the broker in small batches, pausing after
    each commit (so its parent can SIGKILL it between a commit and the batch's acknowledgement,
    or in the middle of a batch) until it is killed."""
    from mwallet.notify.broker import AmqpConsumer

    with open_wallet(url) as wallet:
        service = wallet.service

        def handle(events: Sequence[Any]) -> None:
            service.accept_notifications(events)
            time.sleep(pause)  # committed, not yet acknowledged

        consumer = AmqpConsumer(broker, prefix=prefix, prefetch=batch, batch=batch)
        while True:
            consumer.drain(handle, seconds=1.0)
