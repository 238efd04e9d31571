"""Notifications over their real transports: RabbitMQ (the relay's publisher with confirms, the
worker's consumer), an SMTP server (aiosmtpd) and an HTTP gateway (a stdlib HTTP server), each
running for real on 127.0.0.1; the deliveries are checked in the real database.

Every broker test works under its own prefix (its own exchanges and queues), removed afterwards,
so tests in parallel and an installation on the same broker never see each other's messages.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import os
import pickle
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.domain.events import DomainEvent
from mwallet.core.domain.money import Money
from mwallet.core.domain.notifications import Channel
from mwallet.core.domain.users import Principal
from mwallet.core.errors import ConfigurationError
from mwallet.core.services.notifications import Sender
from mwallet.core.services.unit_of_work import UnitOfWork
from mwallet.core.services.wallet_service import WalletService
from mwallet.notify.broker import (
    AmqpConsumer,
    AmqpPublisher,
    BrokerUnavailable,
    event_body,
)
from mwallet.notify.config import senders, smtp_settings
from mwallet.notify.gateway import GatewaySettings, HttpGatewaySender
from mwallet.notify.spool import SpoolSender
from tests.support import OPERATOR, PASSWORD, new_phone

DEAD_BROKER = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens on port 1
MAIL_FROM = "mwallet <no-reply@mwallet.test>"

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


# --- the broker --------------------------------------------------------------------------------
def _kombu() -> Any:
    """kombu, whose classes are not annotated."""
    import kombu

    return kombu


def _channel_call(url: str, call: Callable[[Any], Any]) -> Any:
    with _kombu().Connection(url, connect_timeout=5) as connection:
        return call(connection.default_channel)


def ready_messages(url: str, queue: str) -> int:
    """Messages waiting in a queue (not those delivered and unacknowledged)."""
    declared = _channel_call(url, lambda channel: channel.queue_declare(queue, passive=True))
    return int(declared.message_count)


def take_all(url: str, queue: str) -> list[bytes]:
    """Every message's body in a queue, removing them."""

    def take(channel: Any) -> list[bytes]:
        bodies = []
        while (message := channel.basic_get(queue=queue, no_ack=True)) is not None:
            body = message.body
            bodies.append(body if isinstance(body, bytes) else body.encode())
        return bodies

    return list(_channel_call(url, take))


def publish_raw(url: str, prefix: str, body: bytes, **properties: Any) -> None:
    """Put any bytes on the events exchange, as a foreign or broken publisher would."""
    kombu = _kombu()
    with kombu.Connection(url, connect_timeout=5) as connection:
        exchange = kombu.Exchange(f"{prefix}.events", type="topic", durable=True)
        producer = connection.Producer(connection.default_channel, auto_declare=False)
        producer.publish(body, exchange=exchange, routing_key="Garbage", retry=False, **properties)


class CuttingProxy:
    """A TCP proxy in front of the broker that cuts every connection through it once `budget`
    bytes went upstream: a broker lost in the middle of a publish."""

    def __init__(self, url: str, budget: int) -> None:
        parts = urlsplit(url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5672)
        self.budget = budget
        self.sent = 0
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.sockets: list[socket.socket] = []
        self.threads: list[threading.Thread] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self._start(self._accept)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.listener.getsockname()[1]}//"

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            self._start(self._pump, client, upstream, True)
            self._start(self._pump, upstream, client, False)

    def _pump(self, source: socket.socket, target: socket.socket, counted: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if counted:
                    with self.lock:
                        self.sent += len(data)
                        over = self.sent > self.budget
                    if over:
                        self.cut()
                        return
                target.sendall(data)
        for one in (source, target):
            with contextlib.suppress(OSError):
                one.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self.lock:
            self.cuts += 1
            for one in self.sockets:
                with contextlib.suppress(OSError):
                    one.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.stopping.set()
        self.cut()
        for thread in self.threads:
            thread.join(timeout=5)
        self.listener.close()
        for one in self.sockets:
            one.close()


def drain_all(consumer: AmqpConsumer, handle: Callable[[Sequence[DomainEvent]], object]) -> int:
    """Drain until a pass finds nothing; how many events were handled."""
    total = 0
    for _ in range(30):
        handled = consumer.drain(handle, seconds=10)
        total += handled
        if handled == 0:
            return total
    raise AssertionError("the queue never ran dry")


# --- people, money and what the database holds -------------------------------------------------
def person(
    service: WalletService, name: str, *, email: str | None = None, language: str | None = None
) -> Principal:
    phone = new_phone()
    service.register(
        phone=phone,
        display_name=name,
        email=email,
        password=PASSWORD,
        idempotency_key=f"reg-{uuid4().hex}",
    )
    principal = service.login(phone=phone, password=PASSWORD).principal
    if language is not None:
        service.set_notification_preferences(principal, language=language)
    return principal


def usd(minor: int) -> Money:
    return Money(minor, "USD")


def fund(service: WalletService, who: Principal, minor: int) -> None:
    service.topup(who, amount=usd(minor), source="sandbox", idempotency_key=f"t-{uuid4().hex}")


def send(service: WalletService, sender: Principal, to: Principal, minor: int) -> None:
    service.transfer(
        sender, to_phone=to.phone, amount=usd(minor), note=None, idempotency_key=uuid4().hex
    )


@dataclass(frozen=True)
class Row:
    id: str
    event_id: str
    user_id: str
    channel: str
    kind: str
    address: str
    title: str
    body: str
    state: str
    attempts: int
    last_error: str | None


def rows(wallet: Wallet) -> list[Row]:
    with wallet.engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT id, event_id, user_id, channel, kind, address, title, body, state,"
                " attempts, last_error FROM notifications ORDER BY id"
            )
        ).all()
    return [Row(*row) for row in found]


def _state(wallet: Wallet, delivery: str) -> tuple[str, int]:
    (now,) = [one for one in rows(wallet) if one.id == delivery]
    return now.state, now.attempts


def scalar(wallet: Wallet, query: str) -> int:
    with wallet.engine.connect() as connection:
        return int(connection.execute(text(query)).scalar_one())


def unpublished(wallet: Wallet) -> int:
    """Events still to relay: the outbox deletes each one once relayed."""
    return scalar(wallet, "SELECT count(*) FROM outbox")


def event_ids(wallet: Wallet, event_type: str | None = None) -> list[str]:
    """The events waiting in the outbox (a relay deletes those it hands on), oldest first."""
    query = "SELECT event_id FROM outbox"
    if event_type is not None:
        query += f" WHERE event_type = '{event_type}'"
    with wallet.engine.connect() as connection:
        return [
            str(one) for one in connection.execute(text(query + " ORDER BY event_id")).scalars()
        ]


def assert_once_each(found: Sequence[Row]) -> None:
    """At most one delivery per (event, person, channel)."""
    counts = Counter((row.event_id, row.user_id, row.channel) for row in found)
    assert counts, "no deliveries at all"
    assert set(counts.values()) == {1}


class Capture:
    """A relay sink that publishes (through `inner`) and remembers what it handed on."""

    def __init__(self, inner: Callable[[UnitOfWork, Any, Sequence[DomainEvent]], None]) -> None:
        self.inner = inner
        self.events: list[DomainEvent] = []

    def __call__(self, uow: UnitOfWork, now: Any, events: Sequence[DomainEvent]) -> None:
        self.inner(uow, now, events)
        self.events.extend(events)


# --- an SMTP server ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Envelope:
    mail_from: str
    rcpt_tos: list[str]
    message: email.message.EmailMessage


@dataclass
class MailHandler:
    """Records each message it accepts; answers from its scripts first (e.g. "451 try later")."""

    data_answers: list[str] = field(default_factory=list)
    rcpt_answers: list[str] = field(default_factory=list)
    accepted: list[Envelope] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_answers:
            answer = self.rcpt_answers.pop(0)
            self.refused.append(answer)
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_answers:
            answer = self.data_answers.pop(0)
            self.refused.append(answer)
            return answer
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        self.accepted.append(Envelope(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def lines(content: str) -> str:
    """A text as sent, with the wire's CRLF line ends back to LF."""
    return content.replace("\r\n", "\n")


@dataclass
class MailServer:
    handler: MailHandler
    port: int
    home: Path

    def senders(self) -> dict[Channel, Sender]:
        """The senders a worker configured with this server as MWALLET_SMTP_URL has."""
        return senders(
            self.home,
            {
                "MWALLET_SMTP_URL": f"smtp+plain://127.0.0.1:{self.port}",
                "MWALLET_MAIL_FROM": MAIL_FROM,
            },
        )

    def email_only(self) -> dict[Channel, Sender]:
        return {Channel.EMAIL: self.senders()[Channel.EMAIL]}


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[MailServer]:
    handler = MailHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield MailServer(handler, port, tmp_path)
    controller.stop()


# --- an HTTP gateway ---------------------------------------------------------------------------
@dataclass
class GatewayRequest:
    path: str
    headers: dict[str, str]
    document: dict[str, Any]


class Gateway(ThreadingHTTPServer):
    """An SMS/push gateway: records each request; answers from `script` (a status, or "hang":
    wait longer than the client's timeout), then 200."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), GatewayHandler)
        self.script: list[int | str] = []
        self.requests: list[GatewayRequest] = []
        self.answered: list[int] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_answer(self) -> int | str:
        with self.lock:
            return self.script.pop(0) if self.script else 200


class GatewayHandler(BaseHTTPRequestHandler):
    server: Gateway

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        document = json.loads(self.rfile.read(length))
        gateway = self.server
        with gateway.lock:
            gateway.requests.append(
                GatewayRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, document)
            )
        answer = gateway.next_answer()
        if answer == "hang":
            time.sleep(1.0)  # the client (timeout 0.5 s) has given up by now
            answer = 200
        status = int(answer)
        with gateway.lock:
            gateway.answered.append(status)
        with contextlib.suppress(OSError):  # the client may have gone
            payload = json.dumps({"status": status}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    server = Gateway()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()  # waits for the request threads still running
    thread.join()


@dataclass
class SmsGateway:
    server: Gateway
    sender: HttpGatewaySender

    @property
    def senders(self) -> dict[Channel, Sender]:
        return {Channel.SMS: self.sender}


@pytest.fixture
def sms(gateway: Gateway) -> Iterator[SmsGateway]:
    """The gateway as the SMS channel's, with a 0.5 s timeout."""
    sender = HttpGatewaySender(GatewaySettings(f"{gateway.url}/sms", "sms-token", timeout=0.5))
    yield SmsGateway(gateway, sender)
    sender.close()


def close_senders(chosen: dict[Channel, Sender]) -> None:
    for sender in chosen.values():
        if isinstance(sender, HttpGatewaySender):
            sender.close()


# --- 1. the whole path over RabbitMQ -----------------------------------------------------------
def test_rabbitmq_carries_events_to_inboxes_and_the_real_transports(
    wallet: Wallet, rabbitmq_url: str, prefix: str, smtp_server: MailServer, gateway: Gateway
) -> None:
    service = wallet.service
    ana = person(service, "Ana Muçanga", email="ana@example.org")
    bento = person(service, "Bento Cossa", email="bento@example.org", language="pt-MZ")
    service.set_notification_preferences(bento, push=True)
    fund(service, ana, 10_000)
    send(service, ana, bento, 1250)
    send(service, ana, bento, 300)
    transfers = event_ids(wallet, "TransferCompleted")
    assert len(transfers) == 2
    assert rows(wallet) == []  # nothing is relayed yet: a money movement only writes its event
    assert unpublished(wallet) == 5  # 2 welcomes, a top-up, 2 transfers

    publisher = AmqpPublisher(rabbitmq_url, prefix=prefix)
    try:
        relayed = service.relay_notifications(publisher.sink)
    finally:
        publisher.close()
    assert relayed == 5
    assert unpublished(wallet) == 0
    assert rows(wallet) == []  # published: the worker's side makes the deliveries
    assert ready_messages(rabbitmq_url, f"{prefix}.notifications") == 5

    assert drain_all(AmqpConsumer(rabbitmq_url, prefix=prefix), service.accept_notifications) == 5
    assert ready_messages(rabbitmq_url, f"{prefix}.notifications") == 0
    made = rows(wallet)
    assert_once_each(made)
    for event_id in transfers:
        mine = {(row.user_id, row.channel): row for row in made if row.event_id == event_id}
        assert set(mine) == {
            (ana.user_id, "inbox"),
            (ana.user_id, "email"),
            (ana.user_id, "sms"),
            (bento.user_id, "inbox"),
            (bento.user_id, "email"),
            (bento.user_id, "sms"),
            (bento.user_id, "push"),
        }
        assert mine[ana.user_id, "inbox"].state == "sent"
        assert mine[ana.user_id, "email"].state == "queued"
        assert mine[ana.user_id, "email"].address == "ana@example.org"
        assert mine[bento.user_id, "sms"].address == bento.phone
        assert mine[bento.user_id, "inbox"].title == "Dinheiro recebido"
        assert "Ana Muçanga" in mine[bento.user_id, "email"].body
    assert [one.title for one in service.inbox(bento, limit=10)].count("Dinheiro recebido") == 2

    handler = smtp_server.handler
    chosen = smtp_server.senders()
    chosen[Channel.SMS] = HttpGatewaySender(GatewaySettings(f"{gateway.url}/sms", "sms-token"))
    chosen[Channel.PUSH] = HttpGatewaySender(GatewaySettings(f"{gateway.url}/push", "push-token"))
    try:
        report = service.dispatch_notifications(chosen)
        again = service.dispatch_notifications(chosen)
    finally:
        close_senders(chosen)
    queued = [row for row in made if row.channel != "inbox"]
    assert (report.sent, report.retrying, report.dead, report.errors) == (len(queued), 0, 0, [])
    assert again.attempted == 0
    assert {row.state for row in rows(wallet)} == {"sent"}

    emails = {row.id: row for row in made if row.channel == "email"}
    got = Counter(str(one.message["Message-ID"]) for one in handler.accepted)
    assert got == Counter(f"<{delivery}@mwallet>" for delivery in emails)  # each exactly once
    for envelope in handler.accepted:
        row = emails[str(envelope.message["Message-ID"])[1:-9]]
        assert envelope.rcpt_tos == [row.address] == [str(envelope.message["To"])]
        assert str(envelope.message["Subject"]) == row.title
        content = envelope.message.get_content()
        assert content.startswith(row.body)
    texts = {row.id: row for row in made if row.channel in ("sms", "push")}
    keys = Counter(request.headers["idempotency-key"] for request in gateway.requests)
    assert keys == Counter(list(texts))  # each SMS and push exactly once
    for request in gateway.requests:
        row = texts[request.headers["idempotency-key"]]
        assert request.path == f"/{row.channel}"
        assert request.headers["authorization"] == f"Bearer {row.channel}-token"
        assert request.document == {
            "id": row.id,
            "channel": row.channel,
            "to": row.address,
            "title": row.title,
            "body": row.body,
        }


# --- 2. the broker down while money moves ------------------------------------------------------
def test_a_broker_down_keeps_events_waiting_and_then_delivers_each_exactly_once(
    wallet: Wallet, rabbitmq_url: str, prefix: str
) -> None:
    service = wallet.service
    ana = person(service, "Ana")
    bento = person(service, "Bento")
    fund(service, ana, 100_000)
    down = AmqpPublisher(DEAD_BROKER, prefix=prefix)
    for number in range(200):
        send(service, ana, bento, 1 + number % 7)
        if number in (99, 199):
            with pytest.raises(BrokerUnavailable):
                service.relay_notifications(down.sink)
    events = event_ids(wallet)
    assert len(events) == 203  # 2 registrations, a top-up, 200 transfers
    assert unpublished(wallet) == 203  # nothing deleted: the relay's transaction rolled back
    assert rows(wallet) == []
    assert scalar(wallet, "SELECT count(*) FROM transfers") == 200
    sent_minor = sum(1 + number % 7 for number in range(200))
    assert service.balance(bento).balance == usd(sent_minor)
    assert service.balance(ana).balance == usd(100_000 - sent_minor)

    publisher = AmqpPublisher(rabbitmq_url, prefix=prefix)
    try:
        assert service.relay_notifications(publisher.sink) == 203
        assert service.relay_notifications(publisher.sink) == 0  # nothing twice
    finally:
        publisher.close()
    assert unpublished(wallet) == 0
    consumer = AmqpConsumer(rabbitmq_url, prefix=prefix)
    assert drain_all(consumer, service.accept_notifications) == 203

    made = rows(wallet)
    assert_once_each(made)
    inbox = Counter(row.kind for row in made if row.channel == "inbox")
    assert inbox == {"transfer_sent": 200, "transfer_received": 200, "welcome": 2, "topup": 1}
    sms = Counter(row.kind for row in made if row.channel == "sms")
    assert sms == inbox  # no e-mail addresses, push off: inbox and SMS
    assert {row.event_id for row in made} == set(events)


def test_a_dead_broker_fails_the_worker_too_without_touching_anything(
    wallet: Wallet, prefix: str
) -> None:
    service = wallet.service
    person(service, "Ana")
    with pytest.raises(BrokerUnavailable):
        AmqpConsumer(DEAD_BROKER, prefix=prefix).drain(service.accept_notifications, seconds=1)
    assert rows(wallet) == []
    assert unpublished(wallet) == 1


@sqlite_only
def test_a_broker_lost_in_the_middle_of_a_publish_delivers_each_once_after_all(
    wallet: Wallet, rabbitmq_url: str, prefix: str
) -> None:
    """Some events reached the queue before the connection broke: the relay rolled back and
    publishes them all again; the worker meets those twice and makes their deliveries once."""
    service = wallet.service
    ana, bento = person(service, "Ana"), person(service, "Bento")
    fund(service, ana, 10_000)
    for _ in range(100):
        send(service, ana, bento, 3)
    proxy = CuttingProxy(rabbitmq_url, budget=25_000)
    flaky = AmqpPublisher(proxy.url, prefix=prefix)
    try:
        with pytest.raises(BrokerUnavailable):
            service.relay_notifications(flaky.sink)
    finally:
        flaky.close()
        proxy.close()
    assert proxy.cuts >= 1
    assert unpublished(wallet) == 103  # every one of them, though some went out
    events = event_ids(wallet)
    early = ready_messages(rabbitmq_url, f"{prefix}.notifications")
    assert 0 < early < 103

    publisher = AmqpPublisher(rabbitmq_url, prefix=prefix)
    try:
        assert service.relay_notifications(publisher.sink) == 103
    finally:
        publisher.close()
    made: list[int] = []

    def accept(events: Sequence[DomainEvent]) -> None:
        made.append(service.accept_notifications(events))

    assert drain_all(AmqpConsumer(rabbitmq_url, prefix=prefix), accept) == early + 103
    found = rows(wallet)
    assert_once_each(found)
    assert sum(made) == len(found) == 2 * (2 * 100 + 2 + 1)  # inbox and SMS of each notice
    assert {row.event_id for row in found} == set(events)


@sqlite_only
def test_a_queue_deleted_under_a_running_publisher_is_not_a_silent_loss(
    wallet: Wallet, rabbitmq_url: str, prefix: str
) -> None:
    """mandatory=True: a message no queue takes comes back, and the relay publishes nothing."""
    service = wallet.service
    person(service, "Ana")
    publisher = AmqpPublisher(rabbitmq_url, prefix=prefix)
    try:
        assert service.relay_notifications(publisher.sink) == 1
        _channel_call(rabbitmq_url, lambda c: c.queue_delete(f"{prefix}.notifications"))
        person(service, "Bento")
        with pytest.raises(BrokerUnavailable, match="NO_ROUTE"):
            service.relay_notifications(publisher.sink)
        assert unpublished(wallet) == 1
        # The next connection declares the queue again, and the event goes out.
        assert service.relay_notifications(publisher.sink) == 1
    finally:
        publisher.close()
    assert unpublished(wallet) == 0
    assert ready_messages(rabbitmq_url, f"{prefix}.notifications") == 1


# --- 3. a worker that dies mid-batch -----------------------------------------------------------
class WorkerDied(Exception):
    pass


@sqlite_only
def test_a_worker_dying_mid_batch_loses_nothing_and_duplicates_nothing(
    wallet: Wallet, rabbitmq_url: str, prefix: str
) -> None:
    service = wallet.service
    ana, bento = person(service, "Ana"), person(service, "Bento")
    fund(service, ana, 10_000)
    for _ in range(30):
        send(service, ana, bento, 5)
    publisher = AmqpPublisher(rabbitmq_url, prefix=prefix)
    capture = Capture(publisher.sink)
    try:
        assert service.relay_notifications(capture) == 33
    finally:
        publisher.close()
    order = [event.event_id for event in capture.events]

    died_after = 15  # events whose deliveries were committed when the worker died
    batches: list[list[str]] = []
    dead: list[bool] = []

    def dying(events: Sequence[DomainEvent]) -> None:
        if dead:
            raise WorkerDied  # a dead worker does nothing more (see the test below)
        done = sum(len(batch) for batch in batches)
        batches.append([event.event_id for event in events])
        if done + len(events) > died_after:
            service.accept_notifications(events[: died_after - done])  # committed, never acked
            dead.append(True)
            raise WorkerDied
        service.accept_notifications(events)

    consumer = AmqpConsumer(rabbitmq_url, prefix=prefix, prefetch=20, batch=10)
    with pytest.raises(WorkerDied):
        consumer.drain(dying, seconds=10)
    assert [len(batch) for batch in batches] == [10, 10]
    first = rows(wallet)
    assert {row.event_id for row in first} == set(order[:died_after])
    # The first batch was acknowledged; the one being handled and the prefetched rest came back.
    assert ready_messages(rabbitmq_url, f"{prefix}.notifications") == 33 - 10

    assert drain_all(consumer, service.accept_notifications) == 23
    made = rows(wallet)
    assert_once_each(made)
    assert {row.event_id for row in made} == set(order)
    kept = {row.id for row in first}
    assert kept <= {row.id for row in made}  # the committed ones stayed as they were
    per_event = Counter(row.event_id for row in made)
    transfers = {one.event_id for one in capture.events if one.event_type == "TransferCompleted"}
    assert len(transfers) == 30
    assert all(per_event[event] == 4 for event in transfers)  # 2 people x (inbox + SMS)
    assert len(made) == 4 * 30 + 2 * 2 + 2  # + welcomes (inbox, SMS) + top-up (inbox, SMS)


def test_a_handle_that_raised_is_not_called_again_in_the_same_drain(
    rabbitmq_url: str, prefix: str
) -> None:
    publisher = AmqpPublisher(rabbitmq_url, prefix=prefix)
    try:
        publisher.publish([DomainEvent(f"E{n:025d}", "Nothing", "a", {}) for n in range(30)])
    finally:
        publisher.close()
    calls: list[list[str]] = []

    def failing(events: Sequence[DomainEvent]) -> None:
        calls.append([event.event_id for event in events])
        raise WorkerDied

    with pytest.raises(WorkerDied):
        AmqpConsumer(rabbitmq_url, prefix=prefix, prefetch=20, batch=10).drain(failing, seconds=5)
    assert ready_messages(rabbitmq_url, f"{prefix}.notifications") == 30  # nothing lost
    assert len(calls) == 1


@sqlite_only
def test_a_message_redelivered_after_its_deliveries_were_committed_adds_none(
    wallet: Wallet, rabbitmq_url: str, prefix: str
) -> None:
    service = wallet.service
    ana, bento = person(service, "Ana"), person(service, "Bento")
    fund(service, ana, 1_000)
    send(service, ana, bento, 100)
    publisher = AmqpPublisher(rabbitmq_url, prefix=prefix)
    capture = Capture(publisher.sink)
    try:
        service.relay_notifications(capture)
    finally:
        publisher.close()
    (transfer,) = [event for event in capture.events if event.event_type == "TransferCompleted"]
    assert service.accept_notification(transfer) == 4  # a worker committed, then died unacked
    before = {row.id for row in rows(wallet) if row.event_id == transfer.event_id}

    made: list[int] = []

    def counting(events: Sequence[DomainEvent]) -> None:
        made.append(service.accept_notifications(events))

    assert drain_all(AmqpConsumer(rabbitmq_url, prefix=prefix), counting) == 4
    assert sum(made) == 2 * 2 + 2  # welcomes, top-up (inbox, SMS): the transfer's 4 were there
    after = rows(wallet)
    assert_once_each(after)
    assert {row.id for row in after if row.event_id == transfer.event_id} == before
    # And the same message published twice (a relay whose commit was lost) is one delivery too.
    publish_raw(
        rabbitmq_url,
        prefix,
        event_body(transfer).encode(),
        content_type="application/json",
        content_encoding="utf-8",
    )
    assert drain_all(AmqpConsumer(rabbitmq_url, prefix=prefix), counting) == 1
    assert made[-1] == 0
    assert rows(wallet) == after


# --- 4. poison messages ------------------------------------------------------------------------
def _pickled_mkdir(target: Path) -> bytes:
    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.mkdir, (str(target),))

    return pickle.dumps(Exploit())


POISON_UNDECLARED = [
    pytest.param(b"\x00\xffnot an event at all", {}, id="raw-bytes"),
    pytest.param(b'{"hello": "world"}', {}, id="json-not-an-event"),
    pytest.param(b"[1, 2, 3]", {}, id="json-list"),
    pytest.param(
        b'{"event_id": "x", "event_type": "T", "aggregate_id": "a", "payload": null}',
        {},
        id="event-without-payload",
    ),
    pytest.param(
        b"not json",
        {"content_type": "text/plain", "content_encoding": "utf-8"},
        id="text-plain",
    ),
    pytest.param(
        b"{not json",
        {"content_type": "application/json", "content_encoding": "utf-8"},
        id="declared-json-but-not-json",
    ),
    pytest.param(
        b"- a\n- b\n",
        {"content_type": "application/x-yaml", "content_encoding": "utf-8"},
        id="disallowed-content-type",
    ),
]


def _handled_event_ids(wallet: Wallet) -> set[str]:
    return {row.event_id for row in rows(wallet)}


@sqlite_only
@pytest.mark.parametrize(("poison", "properties"), POISON_UNDECLARED)
def test_a_poison_message_goes_to_the_dead_letter_queue_and_the_worker_keeps_going(
    wallet: Wallet, rabbitmq_url: str, prefix: str, poison: bytes, properties: dict[str, str]
) -> None:
    service = wallet.service
    publisher = AmqpPublisher(rabbitmq_url, prefix=prefix)
    relayed = Capture(publisher.sink)
    try:
        person(service, "Ana")
        service.relay_notifications(relayed)  # an event before the poison
        publish_raw(rabbitmq_url, prefix, poison, **properties)
        person(service, "Bento")
        service.relay_notifications(relayed)  # and one after it
    finally:
        publisher.close()

    consumer = AmqpConsumer(rabbitmq_url, prefix=prefix)
    assert consumer.drain(service.accept_notifications, seconds=10) == 2
    assert consumer.drain(service.accept_notifications, seconds=2) == 0
    assert _handled_event_ids(wallet) == {event.event_id for event in relayed.events}
    assert ready_messages(rabbitmq_url, f"{prefix}.notifications") == 0
    assert take_all(rabbitmq_url, f"{prefix}.notifications.dead") == [poison]


@sqlite_only
def test_a_pickle_message_is_never_unpickled_and_is_dead_lettered(
    wallet: Wallet, rabbitmq_url: str, prefix: str, tmp_path: Path
) -> None:
    service = wallet.service
    target = tmp_path / "unpickled"
    poison = _pickled_mkdir(target)
    publisher = AmqpPublisher(rabbitmq_url, prefix=prefix)
    try:
        person(service, "Ana")
        service.relay_notifications(publisher.sink)  # (declares the exchange and queues)
        publish_raw(
            rabbitmq_url,
            prefix,
            poison,
            content_type="application/x-python-serialize",
            content_encoding="binary",
        )
        person(service, "Bento")
        service.relay_notifications(publisher.sink)
    finally:
        publisher.close()
    try:
        handled = AmqpConsumer(rabbitmq_url, prefix=prefix).drain(
            service.accept_notifications, seconds=10
        )
    finally:
        assert not target.exists()
    assert handled == 2
    assert take_all(rabbitmq_url, f"{prefix}.notifications.dead") == [poison]


@sqlite_only
def test_an_event_that_can_never_be_accepted_does_not_block_the_queue(
    wallet: Wallet, rabbitmq_url: str, prefix: str
) -> None:
    service = wallet.service
    broken = DomainEvent("01BROKENEVENT0000000000000", "TransferCompleted", "x", {})
    publisher = AmqpPublisher(rabbitmq_url, prefix=prefix)
    relayed = Capture(publisher.sink)
    try:
        person(service, "Ana")
        service.relay_notifications(relayed)
        publisher.publish([broken])
        person(service, "Bento")
        service.relay_notifications(relayed)
    finally:
        publisher.close()
    consumer = AmqpConsumer(rabbitmq_url, prefix=prefix)
    for _ in range(3):  # a few passes, as a worker would make
        with contextlib.suppress(KeyError):
            consumer.drain(service.accept_notifications, seconds=5)
    assert _handled_event_ids(wallet) == {event.event_id for event in relayed.events}
    # Set aside in the audit log (not the dead-letter queue: it was a well-formed message).
    assert take_all(rabbitmq_url, f"{prefix}.notifications.dead") == []
    set_aside = [
        record
        for record in service.audit_log(actor=OPERATOR, limit=100)
        if record.action == "notification.unreadable_event"
    ]
    assert [record.subject for record in set_aside] == [broken.event_id]
    consumer.drain(service.accept_notifications, seconds=2)  # and the worker keeps going


# --- 5. SMTP ------------------------------------------------------------------------------------
def _welcome_email(wallet: Wallet, *, name: str, address: str, language: str | None) -> Row:
    """Register someone with an e-mail address and relay (embedded); their welcome e-mail."""
    person(wallet.service, name, email=address, language=language)
    wallet.service.relay_notifications()
    (found,) = [row for row in rows(wallet) if row.channel == "email" and row.address == address]
    assert found.state == "queued"
    return found


@sqlite_only
def test_smtp_delivers_each_email_once_with_its_headers_and_portuguese_text(
    wallet: Wallet, smtp_server: MailServer, tmp_path: Path
) -> None:
    handler = smtp_server.handler
    service = wallet.service
    ana = person(service, "Ana Muçanga", email="ana@example.org")
    joao = person(service, "João Conceição", email="joao@example.org", language="pt-MZ")
    fund(service, ana, 5_000)
    send(service, ana, joao, 1250)
    service.relay_notifications()
    emails = {row.id: row for row in rows(wallet) if row.channel == "email"}
    assert len(emails) == 5  # 2 welcomes, the top-up, the transfer's two sides

    report = service.dispatch_notifications(smtp_server.email_only())
    assert (report.sent, report.errors) == (5, [])
    assert service.dispatch_notifications(smtp_server.email_only()).attempted == 0
    assert len(handler.accepted) == 5
    by_id = {str(one.message["Message-ID"]): one for one in handler.accepted}
    assert set(by_id) == {f"<{delivery}@mwallet>" for delivery in emails}
    for delivery, row in emails.items():
        envelope = by_id[f"<{delivery}@mwallet>"]
        message = envelope.message
        assert envelope.mail_from == "no-reply@mwallet.test"
        assert envelope.rcpt_tos == [row.address]
        assert str(message["To"]) == row.address
        assert str(message["From"]) == MAIL_FROM
        assert str(message["Subject"]) == row.title
        assert message["Date"] is not None
        assert lines(message.get_content()) == f"{row.body}\n\n-- \nmwallet\n"
    (received,) = [
        one
        for one in handler.accepted
        if one.rcpt_tos == ["joao@example.org"] and "Recebeu" in one.message.get_content()
    ]
    assert str(received.message["Subject"]) == "Dinheiro recebido"
    assert "Ana Muçanga" in received.message.get_content()
    assert "12,50" in received.message.get_content()
    (welcome,) = [
        one
        for one in handler.accepted
        if one.rcpt_tos == ["joao@example.org"] and "Bem-vindo" in str(one.message["Subject"])
    ]
    assert str(welcome.message["Subject"]) == "Bem-vindo à mwallet"
    assert "está aberta" in welcome.message.get_content()


@sqlite_only
def test_smtp_451_is_retried_after_the_backoff_and_then_sent_once(
    wallet: Wallet, clock: FixedClock, smtp_server: MailServer, tmp_path: Path
) -> None:
    handler = smtp_server.handler
    row = _welcome_email(wallet, name="Ana", address="ana@example.org", language=None)
    handler.data_answers = ["451 4.3.0 try later", "451 4.3.0 try later"]
    chosen = smtp_server.email_only()

    for attempt in (1, 2):
        report = wallet.service.dispatch_notifications(chosen)
        assert (report.retrying, report.sent) == (1, 0)
        (now,) = [one for one in rows(wallet) if one.id == row.id]
        assert (now.state, now.attempts) == ("retrying", attempt)
        assert now.last_error is not None
        assert "451" in now.last_error
        assert wallet.service.dispatch_notifications(chosen).attempted == 0  # not due yet
        clock.advance(timedelta(seconds=2**attempt))
    report = wallet.service.dispatch_notifications(chosen)
    assert (report.sent, report.retrying) == (1, 0)
    (now,) = [one for one in rows(wallet) if one.id == row.id]
    assert (now.state, now.attempts, now.last_error) == ("sent", 3, None)
    assert handler.refused == ["451 4.3.0 try later"] * 2
    assert [str(one.message["Message-ID"]) for one in handler.accepted] == [f"<{row.id}@mwallet>"]


@sqlite_only
@pytest.mark.parametrize(
    ("where", "answer"),
    [
        ("rcpt", "550 5.1.1 no such mailbox"),
        ("data", "550 5.7.1 rejected"),
        ("data", "552 5.3.4 message too big"),
    ],
)
def test_smtp_5xx_is_dead_at_once(
    wallet: Wallet,
    clock: FixedClock,
    smtp_server: MailServer,
    where: str,
    answer: str,
) -> None:
    handler = smtp_server.handler
    row = _welcome_email(wallet, name="Ana", address="nobody@example.org", language=None)
    if where == "rcpt":
        handler.rcpt_answers = [answer]
    else:
        handler.data_answers = [answer]
    chosen = smtp_server.email_only()
    report = wallet.service.dispatch_notifications(chosen)
    assert (report.dead, report.retrying, report.sent) == (1, 0, 0)
    (now,) = [one for one in rows(wallet) if one.id == row.id]
    assert (now.state, now.attempts) == ("dead", 1)
    assert now.last_error is not None
    assert answer[:3] in now.last_error
    clock.advance(timedelta(hours=1))
    assert wallet.service.dispatch_notifications(chosen).attempted == 0
    assert handler.accepted == []


@sqlite_only
def test_smtp_554_is_dead_at_once(wallet: Wallet, smtp_server: MailServer) -> None:
    row = _welcome_email(wallet, name="Ana", address="ana@example.org", language=None)
    smtp_server.handler.data_answers = ["554 5.7.1 message refused"]
    report = wallet.service.dispatch_notifications(smtp_server.email_only())
    assert report.dead == 1
    assert _state(wallet, row.id) == ("dead", 1)


@sqlite_only
def test_an_internationalised_address_reaches_a_server_offering_smtputf8(
    wallet: Wallet, tmp_path: Path
) -> None:
    handler = MailHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()
    try:
        row = _welcome_email(wallet, name="João", address="joão@exemplo.mz", language="pt-MZ")
        report = wallet.service.dispatch_notifications(
            MailServer(handler, port, tmp_path).email_only()
        )
    finally:
        controller.stop()
    assert (report.sent, report.errors) == (1, [])
    (envelope,) = handler.accepted
    assert envelope.rcpt_tos == ["joão@exemplo.mz"] == [str(envelope.message["To"])]
    assert str(envelope.message["Subject"]) == row.title == "Bem-vindo à mwallet"


@sqlite_only
def test_smtp_server_down_is_retried(wallet: Wallet, tmp_path: Path) -> None:
    row = _welcome_email(wallet, name="Ana", address="ana@example.org", language=None)
    chosen = MailServer(MailHandler(), free_port(), tmp_path).email_only()
    report = wallet.service.dispatch_notifications(chosen)
    assert report.retrying == 1
    (now,) = [one for one in rows(wallet) if one.id == row.id]
    assert (now.state, now.attempts) == ("retrying", 1)


# --- 6. an HTTP gateway -------------------------------------------------------------------------
def _welcome_sms(wallet: Wallet) -> Row:
    person(wallet.service, "Ana Muçanga")
    wallet.service.relay_notifications()
    (found,) = [row for row in rows(wallet) if row.channel == "sms"]
    return found


@sqlite_only
def test_gateway_500_then_200_is_retried_and_delivered_once(
    wallet: Wallet, clock: FixedClock, sms: SmsGateway
) -> None:
    row = _welcome_sms(wallet)
    gateway = sms.server
    gateway.script = [500]
    chosen = sms.senders
    report = wallet.service.dispatch_notifications(chosen)
    assert report.retrying == 1
    assert report.errors == [f"sms {row.id}: gateway answered 500"]
    assert _state(wallet, row.id) == ("retrying", 1)
    assert wallet.service.dispatch_notifications(chosen).attempted == 0  # backoff: not yet due
    clock.advance(timedelta(seconds=2))
    assert wallet.service.dispatch_notifications(chosen).sent == 1
    assert _state(wallet, row.id) == ("sent", 2)
    clock.advance(timedelta(hours=1))
    assert wallet.service.dispatch_notifications(chosen).attempted == 0

    assert gateway.answered == [500, 200]
    first, second = gateway.requests
    assert (
        first.document
        == second.document
        == {
            "id": row.id,
            "channel": "sms",
            "to": row.address,
            "title": row.title,
            "body": row.body,
        }
    )
    for request in (first, second):
        assert request.path == "/sms"
        assert request.headers["idempotency-key"] == row.id
        assert request.headers["authorization"] == "Bearer sms-token"
        assert request.headers["content-type"] == "application/json"


@sqlite_only
@pytest.mark.parametrize(
    ("answer", "state"),
    [
        (400, "dead"),
        (404, "dead"),
        (422, "dead"),
        (408, "retrying"),
        (429, "retrying"),
        (502, "retrying"),
        (503, "retrying"),
        ("hang", "retrying"),
    ],
)
def test_gateway_answers_decide_between_retry_and_dead(
    wallet: Wallet, clock: FixedClock, sms: SmsGateway, answer: int | str, state: str
) -> None:
    row = _welcome_sms(wallet)
    gateway = sms.server
    gateway.script = [answer]
    chosen = sms.senders
    started = time.monotonic()
    report = wallet.service.dispatch_notifications(chosen)
    assert time.monotonic() - started < 0.9  # a hanging gateway is given up after its timeout
    assert _state(wallet, row.id) == (state, 1)
    assert len(report.errors) == 1
    if answer == "hang":
        assert "Timeout" in report.errors[0]
    clock.advance(timedelta(seconds=2))
    later = wallet.service.dispatch_notifications(chosen)
    if state == "dead":
        assert later.attempted == 0
        assert len(gateway.requests) == 1
    else:  # the gateway answers 200 now: sent, with the same idempotency key
        assert later.sent == 1
        assert _state(wallet, row.id) == ("sent", 2)
        assert [one.headers["idempotency-key"] for one in gateway.requests] == [row.id] * 2


@sqlite_only
def test_gateway_refusing_connections_is_retried_until_dead(
    wallet: Wallet, clock: FixedClock
) -> None:
    row = _welcome_sms(wallet)
    sender = HttpGatewaySender(GatewaySettings(f"http://127.0.0.1:{free_port()}/sms", "t", 0.5))
    try:
        for attempt in range(1, 7):
            report = wallet.service.dispatch_notifications({Channel.SMS: sender})
            assert report.attempted == 1
            assert "ConnectError" in report.errors[0]
            assert _state(wallet, row.id) == ("retrying" if attempt < 6 else "dead", attempt)
            clock.advance(timedelta(minutes=1))
    finally:
        sender.close()


@sqlite_only
def test_push_goes_to_its_own_gateway_from_the_environment(
    wallet: Wallet, gateway: Gateway, tmp_path: Path
) -> None:
    ana = person(wallet.service, "Ana")
    wallet.service.set_notification_preferences(ana, push=True)
    fund(wallet.service, ana, 700)
    wallet.service.relay_notifications()
    made = rows(wallet)
    push = {row.id: row.kind for row in made if row.channel == "push"}
    sms = {row.id: row.kind for row in made if row.channel == "sms"}
    assert sorted(push.values()) == sorted(sms.values()) == ["topup", "welcome"]
    chosen = senders(
        tmp_path,
        {
            "MWALLET_SMS_URL": f"{gateway.url}/sms",
            "MWALLET_PUSH_URL": f"{gateway.url}/push",
            "MWALLET_PUSH_TOKEN": "push-secret",
        },
    )
    try:
        report = wallet.service.dispatch_notifications(chosen)
    finally:
        close_senders(chosen)
    assert (report.sent, report.errors) == (4, [])
    by_key = {request.headers["idempotency-key"]: request for request in gateway.requests}
    assert set(by_key) == set(push) | set(sms)
    for delivery in push:
        assert by_key[delivery].path == "/push"
        assert by_key[delivery].document["channel"] == "push"
        assert by_key[delivery].headers["authorization"] == "Bearer push-secret"
    for delivery in sms:
        assert by_key[delivery].path == "/sms"
        assert "authorization" not in by_key[delivery].headers  # no MWALLET_SMS_TOKEN


# --- 7. configuration ---------------------------------------------------------------------------
def test_senders_default_to_the_spool(tmp_path: Path) -> None:
    chosen = senders(tmp_path, {})
    assert set(chosen) == {Channel.EMAIL, Channel.SMS, Channel.PUSH}
    for channel, sender in chosen.items():
        assert isinstance(sender, SpoolSender)
        assert sender.folder == tmp_path / "spool" / channel.value


def test_senders_take_what_the_environment_configures(tmp_path: Path) -> None:
    chosen = senders(
        tmp_path,
        {
            "MWALLET_SMTP_URL": "smtps://mailer%40x:p%3Ass@mail.example.org",
            "MWALLET_MAIL_FROM": MAIL_FROM,
            "MWALLET_SMS_URL": "https://sms.example/send",
            "MWALLET_SMS_TOKEN": "tok",
        },
    )
    try:
        from mwallet.notify.mail import SmtpSender

        mail = chosen[Channel.EMAIL]
        assert isinstance(mail, SmtpSender)
        assert (mail.settings.host, mail.settings.port, mail.settings.security) == (
            "mail.example.org",
            465,
            "ssl",
        )
        assert (mail.settings.username, mail.settings.password) == ("mailer@x", "p:ss")
        assert mail.settings.sender == MAIL_FROM
        sms = chosen[Channel.SMS]
        assert isinstance(sms, HttpGatewaySender)
        assert sms.settings == GatewaySettings("https://sms.example/send", "tok")
        assert isinstance(chosen[Channel.PUSH], SpoolSender)
    finally:
        close_senders(chosen)


@pytest.mark.parametrize(
    ("url", "port", "security"),
    [
        ("smtp://mail.example.org", 587, "starttls"),
        ("smtp://mail.example.org:2525", 2525, "starttls"),
        ("smtps://mail.example.org", 465, "ssl"),
        ("smtp+plain://127.0.0.1", 25, "none"),
    ],
)
def test_smtp_urls_and_their_default_ports(url: str, port: int, security: str) -> None:
    settings = smtp_settings(url)
    assert (settings.port, settings.security, settings.username) == (port, security, None)
    assert settings.sender == "mwallet <no-reply@mwallet.invalid>"


@pytest.mark.parametrize(
    "url", ["http://mail.example.org", "smtp+tls://mail.example.org", "smtp://", "mail.example.org"]
)
def test_a_bad_smtp_url_is_a_configuration_error(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="MWALLET_SMTP_URL"):
        senders(tmp_path, {"MWALLET_SMTP_URL": url})
