"""Several processes moving money on one database at once: nothing is lost, doubled or deadlocked.

Each child is a separate interpreter with its own engine (see `workers.py`), as separate CLI runs or
server workers would be; the parent then reads the tables directly and checks them against what
the children were told.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.integration import workers
from tests.integration.workers import (
    Ack,
    Child,
    Person,
    check_books,
    fund,
    run_children,
    spawn_context,
)
from tests.support import open_wallet

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("multiprocess")]

STARTING_MINOR = 10_000  # each person's top-up: 100.00
PROCESSES = 4
TRANSFERS_EACH = 200


def run_random_transfers(
    db_url: str, tmp_path: Path, people: list[Person], senders_of: Sequence[Sequence[int]]
) -> tuple[list[Ack], int]:
    """One child per entry of `senders_of`, each sending from those people; acks and refusals."""
    start = spawn_context().Barrier(len(senders_of))
    children = [
        Child(
            workers.random_transfers,
            {
                "url": db_url,
                "people": people,
                "senders": list(senders),
                "count": TRANSFERS_EACH,
                "seed": 1000 + n,
                "key_prefix": f"child{n}",
                "start": start,
                "result_path": str(tmp_path / f"child-{n}.json"),
            },
            tmp_path / f"child-{n}.json",
        )
        for n, senders in enumerate(senders_of)
    ]
    results = run_children(children)
    acked: list[Ack] = [
        (str(i), int(s), int(r), int(m)) for result in results for i, s, r, m in result["acked"]
    ]
    return acked, sum(int(result["refused"]) for result in results)


def test_random_transfers_from_four_processes_lose_and_double_nothing(
    db_url: str, tmp_path: Path
) -> None:
    with open_wallet(db_url) as wallet:
        people = fund(wallet.service, 20, STARTING_MINOR)
    everyone = range(len(people))

    acked, refused = run_random_transfers(db_url, tmp_path, people, [everyone] * PROCESSES)

    # The run must have exercised both outcomes, or the checks below prove little.
    assert len(acked) >= TRANSFERS_EACH
    assert refused > 0
    check_books(db_url, people, acked, STARTING_MINOR)


def test_one_pair_sending_both_ways_from_four_processes_does_not_deadlock(
    db_url: str, tmp_path: Path
) -> None:
    with open_wallet(db_url) as wallet:
        people = fund(wallet.service, 2, STARTING_MINOR)

    # Two processes send A -> B while two send B -> A: both rows are locked by every transfer.
    acked, refused = run_random_transfers(
        db_url, tmp_path, people, [[n % 2] for n in range(PROCESSES)]
    )

    directions = Counter((sender, recipient) for _, sender, recipient, _ in acked)
    assert directions[0, 1] > 0
    assert directions[1, 0] > 0
    assert refused > 0
    check_books(db_url, people, acked, STARTING_MINOR)


def test_the_same_idempotency_key_sent_at_once_moves_money_once(
    db_url: str, tmp_path: Path
) -> None:
    with open_wallet(db_url) as wallet:
        sender, recipient = fund(wallet.service, 2, STARTING_MINOR)
    keys = [f"same-key-{n}" for n in range(15)]
    minor = 100
    start = spawn_context().Barrier(PROCESSES)
    children = [
        Child(
            workers.same_key_transfers,
            {
                "url": db_url,
                "sender": sender,
                "recipient_phone": recipient[1],
                "keys": keys,
                "minor": minor,
                "start": start,
                "result_path": str(tmp_path / f"child-{n}.json"),
            },
            tmp_path / f"child-{n}.json",
        )
        for n in range(PROCESSES)
    ]

    results = run_children(children)

    for key in keys:
        answers = {result["ids"][key] for result in results}
        assert len(answers) == 1, f"{key}: the callers were told different transfers {answers}"
    acked = [(result["ids"][key], 0, 1, minor) for key in keys for result in results[:1]]
    assert len({ack[0] for ack in acked}) == len(keys)
    check_books(db_url, [sender, recipient], acked, STARTING_MINOR)
