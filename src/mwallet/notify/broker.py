"""The broker between the outbox relay and the notification workers: RabbitMQ through kombu.

Topology (names start with a prefix, `mwallet` unless MWALLET_BROKER_PREFIX says otherwise, so
several installations can share one broker): a durable topic exchange `<prefix>.events`; a
durable queue `<prefix>.notifications` bound to every event (`#`), whose rejected messages go to
the durable `<prefix>.notifications.dead` (through the `<prefix>.dead` exchange). Messages are
persistent JSON, their AMQP message id the event's id.

The publisher runs with publisher confirms: `publish` returns only once RabbitMQ has taken every
message, and raises otherwise, so the relay's transaction (which deletes the events from the
outbox) rolls back and the events go out again later. The consumer acknowledges a message only
after the event's deliveries are committed; a worker that dies before that gets the message
redelivered, and `accept` finds the deliveries it already made.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from mwallet.core.domain.events import DomainEvent
from mwallet.core.errors import ConfigurationError
from mwallet.core.services.unit_of_work import UnitOfWork

PREFIX = "mwallet"


class BrokerUnavailable(ConfigurationError):
    """The broker could not be reached, or did not confirm a message."""

    code = "broker_unavailable"


def _topology(prefix: str) -> tuple[Any, Any, Any]:
    from kombu.entity import Exchange, Queue

    exchange = Exchange(f"{prefix}.events", type="topic", durable=True)
    dead_exchange = Exchange(f"{prefix}.dead", type="fanout", durable=True)
    queue = Queue(
        f"{prefix}.notifications",
        exchange=exchange,
        routing_key="#",
        durable=True,
        queue_arguments={"x-dead-letter-exchange": f"{prefix}.dead"},
    )
    dead = Queue(
        f"{prefix}.notifications.dead", exchange=dead_exchange, routing_key="#", durable=True
    )
    return exchange, queue, dead


def _connection(url: str) -> Any:
    from kombu.connection import Connection

    return Connection(
        url, connect_timeout=5, transport_options={"confirm_publish": True}, heartbeat=0
    )


def event_body(event: DomainEvent) -> str:
    return json.dumps(
        {
            "event_id": event.event_id,
            "event_type": event.event_type,
            "aggregate_id": event.aggregate_id,
            "payload": event.payload,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def event_from(body: str | bytes) -> DomainEvent:
    document = json.loads(body)
    return DomainEvent(
        str(document["event_id"]),
        str(document["event_type"]),
        str(document["aggregate_id"]),
        dict(document["payload"]),
    )


class AmqpPublisher:
    """The relay's sink when a broker is configured; keeps one connection, made on first use."""

    def __init__(self, url: str, *, prefix: str = PREFIX) -> None:
        self.url = url
        self.prefix = prefix
        self._connection: Any = None
        self._producer: Any = None

    def _ready(self) -> Any:
        if self._producer is None:
            from kombu.messaging import Producer

            exchange, queue, dead = _topology(self.prefix)
            connection = _connection(self.url)
            connection.connect()
            channel = connection.channel()
            for entity in (exchange, queue, dead):
                entity.bind(channel).declare()
            self._connection = connection
            self._producer = Producer(channel, exchange=exchange)
        return self._producer

    def publish(self, events: Sequence[DomainEvent]) -> None:
        """Hand events to the broker; returns once it confirmed each (raises otherwise)."""
        try:
            producer = self._ready()
            for event in events:
                producer.publish(
                    event_body(event),
                    routing_key=event.event_type,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,  # persistent
                    message_id=event.event_id,
                    mandatory=True,
                    retry=False,
                )
        except Exception as exc:  # connection refused, closed, nacked: all mean "not published"
            self.close()
            raise BrokerUnavailable(f"the broker did not take the events: {exc}") from exc

    def sink(self, uow: UnitOfWork, now: datetime, events: Sequence[DomainEvent]) -> None:
        self.publish(events)

    def close(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):  # closing a broken connection: nothing to do
                connection.release()


class AmqpConsumer:
    """A worker's side: takes events from the queue in batches, hands each batch to `handle`
    (which commits their deliveries in one transaction), and only then acknowledges them."""

    def __init__(
        self, url: str, *, prefix: str = PREFIX, prefetch: int = 100, batch: int = 50
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.prefetch = prefetch
        self.batch = min(batch, prefetch)

    def drain(self, handle: Callable[[Sequence[DomainEvent]], object], *, seconds: float) -> int:
        """Take events for up to `seconds` (stopping early once the queue is quiet); how many
        were handled. A message that is not an event is dead-lettered. When `handle` raises, the
        batch is put back for another try and the error raised."""
        from kombu.messaging import Consumer

        _, queue, dead = _topology(self.prefix)
        handled = 0
        pending: list[tuple[DomainEvent, Any]] = []
        failure: list[BaseException] = []

        def flush() -> None:
            nonlocal handled
            if not pending:
                return
            taken = list(pending)
            pending.clear()
            try:
                handle([event for event, _ in taken])
            except BaseException as exc:
                for _, message in taken:
                    message.requeue()
                failure.append(exc)
                raise
            for _, message in taken:
                message.ack()
            handled += len(taken)

        def on_message(message: Any) -> None:
            if failure:
                return  # a batch failed: this one stays unacknowledged and comes back
            try:
                if message.content_type != "application/json":
                    raise ValueError(message.content_type)
                event = event_from(message.body)
            except (ValueError, KeyError, TypeError, AttributeError):
                message.reject(requeue=False)  # poison: to the dead-letter queue
                return
            pending.append((event, message))
            if len(pending) >= self.batch:
                flush()

        try:
            with _connection(self.url) as connection:
                connection.connect()
                channel = connection.channel()
                for entity in (queue, dead):
                    entity.bind(channel).declare()
                # on_message: kombu hands over the raw message, decoding (and so unpickling)
                # nothing; the body is read here as JSON or dead-lettered.
                consumer = Consumer(
                    channel,
                    queues=[queue],
                    on_message=on_message,
                    accept={"application/json"},
                    prefetch_count=self.prefetch,
                )
                with consumer:
                    _drain_until_quiet(connection, seconds, flush)
                    flush()
        except OSError as exc:
            if failure:
                raise failure[0] from None
            raise BrokerUnavailable(f"the broker cannot be reached: {exc}") from exc
        except Exception as exc:
            if failure:
                raise failure[0] from None
            raise BrokerUnavailable(f"the broker failed: {exc}") from exc
        return handled


def _drain_until_quiet(connection: Any, seconds: float, flush: Callable[[], None]) -> None:
    import time

    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            connection.drain_events(timeout=min(left, 0.05))
        except TimeoutError:
            flush()  # a lull: what came so far is handled now
            try:
                connection.drain_events(timeout=min(max(deadline - time.monotonic(), 0), 0.2))
            except TimeoutError:
                return  # nothing more waiting


def remove_topology(url: str, prefix: str) -> None:
    """Delete a prefix's queues and exchanges (a test's, or an installation taken down)."""
    exchange, queue, dead = _topology(prefix)
    with _connection(url) as connection:
        channel = connection.channel()
        for entity in (queue, dead):
            with contextlib.suppress(Exception):
                entity.bind(channel).delete()
        for entity in (exchange, dead.exchange):
            with contextlib.suppress(Exception):
                entity.bind(channel).delete()
