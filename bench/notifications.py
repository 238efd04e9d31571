"""How fast notifications flow: events per second from the outbox to the inbox, and the delay from
a transfer's commit to its inbox rows.

Rows, each on a fresh SQLite database (WAL, synchronous=FULL) and, with --pg, a fresh PostgreSQL
one:
- **embedded**: `relay_notifications()` with no broker: the relay's own transaction turns the
  events into deliveries (inbox, e-mail, SMS) and deletes them from the outbox.
- **RabbitMQ**: `relay_notifications(AmqpPublisher.sink)` (publisher confirms), then
  `AmqpConsumer.drain(accept_notifications)` (a batch per commit, acked after it).
- **baseline** (RabbitMQ only): the same number of messages of the same size through bare kombu,
  publish with confirms then consume and ack, no database: what the broker round trips cost alone.
  The ratio RabbitMQ path / baseline is printed.
- **delay**: a relay-and-worker loop runs in a thread while transfers are made one at a time at a
  steady pace; for each transfer, the time from its commit (its row's `created_at`, its event's
  too) to its recipient's inbox row (`created_at`): median and p99, embedded and through RabbitMQ.
  The relay deletes the events it hands on, so the loop's sink notes which transfer each was of.

Each transfer is one event with two notices (sender and recipient) and, by default preferences,
three deliveries each (inbox, e-mail to those with an address, SMS). It prints; it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import text

from mwallet.bootstrap import Wallet, build_wallet
from mwallet.core.crypto import Keyring
from mwallet.core.domain.events import DomainEvent
from mwallet.core.domain.users import Principal
from mwallet.core.security import Argon2idHasher
from mwallet.core.services.notifications import Sink, accept_all
from mwallet.core.services.unit_of_work import UnitOfWork

PASSWORD = "bench-password-2026"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/"
AMQP = "amqp://guest:guest@127.0.0.1:5672//"
CHEAP_HASHER = Argon2idHasher(time_cost=1, memory_kib=8, parallelism=1)
SECRETS = Keyring([b"\x42" * 32])


def people(wallet: Wallet, count: int = 10) -> list[Principal]:
    service = wallet.service
    service.init(currency="USD")
    found = []
    for number in range(count):
        phone = f"+25884{number:07d}"
        service.register(
            phone=phone, display_name=f"User {number}", email=f"u{number}@example.org",
            password=PASSWORD, idempotency_key=f"r{number}",
        )  # fmt: skip
        person = service.login(phone=phone, password=PASSWORD).principal
        service.topup(
            person, amount=service.parse_money("1000000"), source="sandbox",
            idempotency_key=f"t{number}",
        )  # fmt: skip
        found.append(person)
    service.relay_notifications()  # the set-up's own events out of the way
    return found


def transfers(wallet: Wallet, who: list[Principal], count: int, *, pace: float = 0.0) -> None:
    service = wallet.service
    for n in range(count):
        sender, recipient = who[n % len(who)], who[(n + 1) % len(who)]
        service.transfer(
            sender, to_phone=recipient.phone, amount=service.parse_money("1"), note=None,
            idempotency_key=f"x{uuid.uuid4().hex}",
        )  # fmt: skip
        if pace:
            time.sleep(pace)


def throughput(wallet: Wallet, who: list[Principal], events: int, prefix: str | None) -> float:
    """Events per second from the outbox to committed deliveries."""
    transfers(wallet, who, events)
    service = wallet.service
    started = time.perf_counter()
    if prefix is None:
        moved = service.relay_notifications()
    else:
        from mwallet.notify.broker import AmqpConsumer, AmqpPublisher

        publisher = AmqpPublisher(AMQP, prefix=prefix)
        moved = service.relay_notifications(publisher.sink)
        publisher.close()
        consumer = AmqpConsumer(AMQP, prefix=prefix)
        taken = 0
        while taken < moved:
            taken += consumer.drain(service.accept_notifications, seconds=1.0)
    elapsed = time.perf_counter() - started
    assert moved == events, (moved, events)
    return events / elapsed


def baseline(events: int, prefix: str) -> float:
    """Bare kombu: publish `events` messages with confirms, then consume and ack them."""
    from kombu.connection import Connection
    from kombu.entity import Exchange, Queue
    from kombu.messaging import Consumer, Producer

    exchange = Exchange(f"{prefix}.base", type="topic", durable=True)
    queue = Queue(f"{prefix}.base", exchange=exchange, routing_key="#", durable=True)
    body = '{"event_id":"01M8K5CBX6780S851Q276BZKVH","event_type":"TransferCompleted",' + (
        '"payload":{"amount_minor":100,"currency":"USD","kind":"transfer"}}'
    )
    taken = 0
    with Connection(AMQP, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        queue.bind(channel).declare()
        started = time.perf_counter()
        producer = Producer(channel, exchange=exchange)
        for n in range(events):
            producer.publish(body, routing_key="TransferCompleted", delivery_mode=2,
                             message_id=str(n), content_type="application/json")  # fmt: skip

        def on_message(_: object, message: object) -> None:
            nonlocal taken
            message.ack()  # type: ignore[attr-defined]
            taken += 1

        with Consumer(channel, queues=[queue], callbacks=[on_message], prefetch_count=50):
            while taken < events:
                connection.drain_events(timeout=5)
        elapsed = time.perf_counter() - started
        queue.bind(channel).delete()
        exchange.bind(channel).delete()
    return events / elapsed


def delays(wallet: Wallet, who: list[Principal], count: int, prefix: str | None) -> list[float]:
    """Seconds from each transfer's commit to its recipient's inbox row, with a worker running."""
    service = wallet.service
    stop = threading.Event()
    transfer_of: dict[str, str] = {}  # event id -> transfer id, as the relay hands them on

    def noting(sink: Sink) -> Sink:
        def noted(uow: UnitOfWork, now: datetime, events: Sequence[DomainEvent]) -> None:
            sink(uow, now, events)
            transfer_of.update(
                (event.event_id, event.aggregate_id)
                for event in events
                if event.event_type == "TransferCompleted"
            )

        return noted

    def work() -> None:
        if prefix is None:
            embedded = noting(accept_all)
            while not stop.is_set():
                if not service.relay_notifications(embedded):
                    time.sleep(0.002)
            return
        from mwallet.notify.broker import AmqpConsumer, AmqpPublisher

        publisher = AmqpPublisher(AMQP, prefix=prefix)
        consumer = AmqpConsumer(AMQP, prefix=prefix)
        published = noting(publisher.sink)
        while not stop.is_set():
            service.relay_notifications(published)
            consumer.drain(service.accept_notifications, seconds=0.05)
        publisher.close()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    transfers(wallet, who, count, pace=0.01)
    time.sleep(1.5)
    stop.set()
    worker.join()
    with wallet.engine.connect() as conn:
        received = conn.execute(
            text(
                "SELECT event_id, created_at FROM notifications "
                "WHERE channel = 'inbox' AND kind = 'transfer_received'"
            )
        ).all()
        committed: dict[str, int] = {
            str(transfer_id): int(at)
            for transfer_id, at in conn.execute(text("SELECT id, created_at FROM transfers"))
        }
    found = sorted(  # the newest `count` transfers: those made at a steady pace
        (
            (transfer_of[event_id], int(at) - committed[transfer_of[event_id]])
            for event_id, at in received
            if event_id in transfer_of
        ),
        reverse=True,
    )[:count]
    return sorted(micros / 1e6 for _, micros in found)


def fresh(backend: str, folder: Path) -> tuple[Wallet, str | None]:
    if backend == "sqlite":
        return build_wallet(
            f"sqlite:///{folder}/{uuid.uuid4().hex}.db", hasher=CHEAP_HASHER, secrets=SECRETS
        ), None
    import psycopg

    name = f"mwallet_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_SERVER + "postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    return build_wallet(url, hasher=CHEAP_HASHER, secrets=SECRETS), name


def drop(name: str | None) -> None:
    if name is None:
        return
    import psycopg

    with psycopg.connect(PG_SERVER + "postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500, help="events per throughput row")
    parser.add_argument("--delays", type=int, default=200, help="transfers for the delay rows")
    parser.add_argument("--pg", action="store_true", help="also on a fresh PostgreSQL database")
    parser.add_argument("--no-broker", action="store_true", help="skip the RabbitMQ rows")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.pg else ["sqlite"]
    print(f"{'row':<34}{'events/s':>10}{'baseline/s':>12}{'ratio':>8}")
    delay_rows = []
    with tempfile.TemporaryDirectory() as folder:
        for backend in backends:
            for mode in ["embedded"] if args.no_broker else ["embedded", "rabbitmq"]:
                prefix = None if mode == "embedded" else f"bench{uuid.uuid4().hex[:8]}"
                wallet, name = fresh(backend, Path(folder))
                try:
                    who = people(wallet)
                    rate = throughput(wallet, who, args.events, prefix)
                    base = baseline(args.events, f"{prefix}b") if prefix else None
                    shown = f"{base:>12,.0f}{rate / base:>7.2f}x" if base else f"{'-':>12}{'':>8}"
                    print(f"{backend + ', ' + mode:<34}{rate:>10,.0f}{shown}")
                    seconds = delays(wallet, who, args.delays, prefix)
                    delay_rows.append((f"{backend}, {mode}", seconds))
                finally:
                    if prefix is not None:
                        from mwallet.notify.broker import remove_topology

                        remove_topology(AMQP, prefix)
                    wallet.close()
                    drop(name)
    print("\nCommit to inbox (recipient's row), transfers every 10 ms with a worker running:")
    print(f"{'row':<34}{'median ms':>10}{'p99 ms':>10}{'n':>6}")
    for label, seconds in delay_rows:
        print(f"{label:<34}{statistics.median(seconds) * 1e3:>10.1f}"
              f"{percentile(seconds, 0.99) * 1e3:>10.1f}{len(seconds):>6}")  # fmt: skip


if __name__ == "__main__":
    main()
