"""A notification worker SIGKILLed while it works (between committing a batch's deliveries and
acknowledging its messages, or in the middle of a batch) loses nothing and duplicates nothing: the
unacknowledged messages come back to the next worker, whose `accept` finds the deliveries made
before and adds none. On the real RabbitMQ, with a real child process."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

from sqlalchemy import text

from mwallet.notify.broker import AmqpConsumer, AmqpPublisher
from tests.integration import workers
from tests.support import open_wallet, register

TRANSFERS = 60
BATCH = 5


def inbox_rows(db_url: str) -> list[tuple[str, str]]:
    with open_wallet(db_url) as wallet, wallet.engine.connect() as conn:
        return [
            (str(event_id), str(user_id))
            for event_id, user_id in conn.execute(
                text("SELECT event_id, user_id FROM notifications WHERE channel = 'inbox'")
            ).all()
        ]


def test_a_worker_killed_mid_stream_loses_and_repeats_nothing(
    db_url: str, rabbitmq_url: str, prefix: str
) -> None:
    with open_wallet(db_url) as wallet:
        service = wallet.service
        ana = register(service, name="Ana Machava")
        bruno = register(service, name="Bruno Tembe")
        service.topup(ana, amount=service.parse_money("1000"), source="sandbox",
                      idempotency_key="t")  # fmt: skip
        for n in range(TRANSFERS):
            service.transfer(ana, to_phone=bruno.phone, amount=service.parse_money("1"),
                             note=None, idempotency_key=f"x{n}")  # fmt: skip
        publisher = AmqpPublisher(rabbitmq_url, prefix=prefix)
        relayed = service.relay_notifications(publisher.sink)
        publisher.close()
    assert relayed == TRANSFERS + 3  # two registrations and the top-up too

    context = workers.spawn_context()
    for life in range(3):  # killed three times, each time after some batches went through
        before = len(inbox_rows(db_url))
        child = context.Process(
            target=workers.notification_worker,
            kwargs={"url": db_url, "broker": rabbitmq_url, "prefix": prefix, "batch": BATCH,
                    "pause": 0.15},
            name=f"worker-{life}",
            daemon=True,
        )  # fmt: skip
        child.start()
        deadline = time.monotonic() + 60
        while len(inbox_rows(db_url)) < before + 2 * BATCH:  # at least a batch's rows made
            assert child.is_alive(), f"the worker ended by itself ({child.exitcode})"
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.05)
        time.sleep(0.07 * life)  # another point in its cycle each time
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
        assert child.exitcode == -signal.SIGKILL

    with open_wallet(db_url) as wallet:
        consumer = AmqpConsumer(rabbitmq_url, prefix=prefix)
        while consumer.drain(wallet.service.accept_notifications, seconds=1.0):
            pass
    rows = inbox_rows(db_url)
    counts = Counter(rows)
    assert max(counts.values()) == 1, "a notice was made twice"
    # Every transfer told both people, each registration its person, the top-up Ana: nothing lost.
    assert len(rows) == 2 * TRANSFERS + 2 + 1
    assert len({event_id for event_id, _ in rows}) == relayed
