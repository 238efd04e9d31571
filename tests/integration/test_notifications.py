"""Notifications through the services, on SQLite and PostgreSQL: the relay from the outbox into
deliveries (embedded mode), the inbox, preferences, the leased dispatcher with its backoff and
dead letters, and the operators' view.

Senders here are test doubles of the `Sender` port (a gateway that fails on cue); everything else
is the real database.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from mwallet.bootstrap import Wallet
from mwallet.core import otp
from mwallet.core.clock import FixedClock
from mwallet.core.db.tables import notifications, outbox
from mwallet.core.domain.events import DomainEvent
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.ledger import AccountStatus
from mwallet.core.domain.notifications import (
    LEASE,
    MAX_ATTEMPTS,
    MAX_BACKOFF,
    Channel,
    Delivery,
    DeliveryState,
    Preferences,
)
from mwallet.core.domain.roles import Role
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Channel as CashChannel
from mwallet.core.errors import (
    AccountLocked,
    InsufficientFunds,
    InvalidCredentials,
    InvalidInput,
    NotificationNotFound,
    PermissionDenied,
    WalletFrozen,
)
from mwallet.core.services.notifications import DeliveryFailed, accept_all
from mwallet.core.services.unit_of_work import UnitOfWork
from mwallet.core.services.wallet_service import WalletService
from tests.support import PASSWORD, make_admin, new_phone, open_wallet, pg_admin, pg_url

NBSP = "\u00a0"
MICRO = timedelta(microseconds=1)
ALL_CHANNELS = {"inbox", "email", "sms", "push"}


# --- people, money and what the database holds -------------------------------------------------
def key() -> str:
    return f"k-{uuid.uuid4().hex}"


def person(
    service: WalletService, name: str, *, email: str | None = None, phone: str | None = None
) -> Principal:
    """Register someone (with an e-mail address if given) and log them in."""
    phone = phone or new_phone()
    service.register(
        phone=phone, display_name=name, email=email, password=PASSWORD, idempotency_key=key()
    )
    return service.login(phone=phone, password=PASSWORD).principal


def fund(service: WalletService, who: Principal, amount: str) -> None:
    service.topup(who, amount=service.parse_money(amount), source="sandbox", idempotency_key=key())


def send(service: WalletService, sender: Principal, to: Principal, amount: str) -> None:
    service.transfer(
        sender, to_phone=to.phone, amount=service.parse_money(amount), note=None,
        idempotency_key=key(),
    )  # fmt: skip


def rows(wallet: Wallet) -> list[dict[str, Any]]:
    """Every notification row, oldest id first."""
    with wallet.engine.connect() as conn:
        found = conn.execute(select(notifications).order_by(notifications.c.id)).mappings().all()
    return [dict(row) for row in found]


def rows_of(wallet: Wallet, who: Principal, kind: str | None = None) -> list[dict[str, Any]]:
    return [
        row
        for row in rows(wallet)
        if row["user_id"] == who.user_id and (kind is None or row["kind"] == kind)
    ]


def channels_of(wallet: Wallet, who: Principal, kind: str) -> set[str]:
    return {row["channel"] for row in rows_of(wallet, who, kind)}


def one_row(wallet: Wallet, delivery_id: str) -> dict[str, Any]:
    (found,) = [row for row in rows(wallet) if row["id"] == delivery_id]
    return found


def outbox_rows(wallet: Wallet) -> list[dict[str, Any]]:
    with wallet.engine.connect() as conn:
        found = conn.execute(select(outbox).order_by(outbox.c.event_id)).mappings().all()
    return [dict(row) for row in found]


def read_back(row: dict[str, Any]) -> DomainEvent:
    """An event as a broker would hand it back: from its stored JSON."""
    payload = row["payload"]
    return DomainEvent(
        row["event_id"],
        row["event_type"],
        row["aggregate_id"],
        json.loads(payload) if isinstance(payload, str) else payload,
    )


def inbox_texts(service: WalletService, who: Principal) -> list[tuple[str, str, str]]:
    return [(one.kind, one.title, one.body) for one in service.inbox(who, limit=100)]


def move_to(clock: FixedClock, moment: datetime) -> None:
    assert moment >= clock.now()
    clock.advance(moment - clock.now())


class Gateway:
    """A `Sender` whose next sends fail as scripted (a `DeliveryFailed`, or any exception for a
    worker that crashes), then succeed; it remembers what it was asked and what went out."""

    def __init__(self, *failures: BaseException, always: BaseException | None = None) -> None:
        self.failures = list(failures)
        self.always = always
        self.asked: list[Delivery] = []
        self.delivered: list[Delivery] = []

    def send(self, delivery: Delivery) -> None:
        self.asked.append(delivery)
        if self.always is not None:
            raise self.always
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(delivery)


class BrokerDown(Exception):
    """What a publish raises when the broker does not confirm."""


@pytest.fixture
def admin(wallet: Wallet) -> Principal:
    return make_admin(wallet.service)


# --- the relay: events become deliveries -------------------------------------------------------
def test_a_transfer_reaches_both_inboxes_each_in_its_own_language(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = person(service, "Ana Machava", email="ana@example.org")
    bruno = person(service, "Bruno Sitoe")
    service.set_notification_preferences(bruno, language="pt-MZ")
    fund(service, ana, "1500")
    clock.advance(timedelta(minutes=1))
    send(service, ana, bruno, "1234.50")
    clock.advance(timedelta(minutes=1))

    assert service.inbox(ana) == []  # nothing is relayed yet
    assert service.relay_notifications() == 4  # two registrations, the top-up, the transfer

    assert inbox_texts(service, ana) == [
        ("transfer_sent", "Money sent", "You sent $1,234.50 to Bruno Sitoe."),
        ("topup", "Top-up received", "$1,500.00 was added to your wallet from sandbox."),
        (
            "welcome",
            "Welcome to mwallet",
            "Your wallet is open. Top up, send money and withdraw cash.",
        ),
    ]
    assert inbox_texts(service, bruno) == [
        (
            "transfer_received",
            "Dinheiro recebido",
            f"Recebeu 1{NBSP}234,50{NBSP}US$ de Ana Machava.",
        ),
        (
            "welcome",
            "Bem-vindo à mwallet",
            "A sua carteira está aberta. Carregue, envie dinheiro e levante.",
        ),
    ]
    received = service.inbox(bruno)[0]
    assert (received.channel, received.state, received.address) == (
        Channel.INBOX,
        DeliveryState.SENT,
        bruno.user_id,
    )
    assert received.created_at == received.sent_at == clock.now()  # made when relayed
    assert received.read_at is None


def test_email_only_with_an_address_sms_by_default_and_push_only_when_turned_on(
    wallet: Wallet,
) -> None:
    service = wallet.service
    ana = person(service, "Ana Machava", email="ana@example.org")
    bruno = person(service, "Bruno Sitoe")
    fund(service, ana, "100")
    send(service, ana, bruno, "10")
    service.relay_notifications()

    assert channels_of(wallet, ana, "transfer_sent") == {"inbox", "email", "sms"}
    assert channels_of(wallet, bruno, "transfer_received") == {"inbox", "sms"}  # no e-mail
    by_channel = {row["channel"]: row for row in rows_of(wallet, ana, "transfer_sent")}
    assert by_channel["email"]["address"] == "ana@example.org"
    assert by_channel["sms"]["address"] == ana.phone
    assert by_channel["sms"]["body"] == "mwallet: you sent $10.00 to Bruno Sitoe."
    assert by_channel["email"]["body"] == "You sent $10.00 to Bruno Sitoe."
    for channel in ("email", "sms"):
        assert (by_channel[channel]["state"], by_channel[channel]["attempts"]) == ("queued", 0)
        assert by_channel[channel]["sent_at"] is None

    service.set_notification_preferences(bruno, push=True)
    send(service, ana, bruno, "5")
    service.relay_notifications()
    (push,) = [
        row
        for row in rows_of(wallet, bruno, "transfer_received")
        if row["channel"] == "push" and "5.00" in row["body"]
    ]
    assert (push["address"], push["title"], push["state"]) == (
        bruno.phone,
        "Money received",
        "queued",
    )
    assert "push" not in channels_of(wallet, ana, "transfer_sent")


def test_preferences_are_honoured_but_security_notices_go_out_on_every_channel(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = person(service, "Ana Machava", email="ana@example.org")
    bruno = person(service, "Bruno Sitoe")  # no e-mail address
    for someone in (ana, bruno):
        service.set_notification_preferences(someone, email=False, sms=False, push=False)
    fund(service, ana, "100")
    send(service, ana, bruno, "10")
    service.relay_notifications()
    assert channels_of(wallet, ana, "topup") == {"inbox"}
    assert channels_of(wallet, ana, "transfer_sent") == {"inbox"}
    assert channels_of(wallet, bruno, "transfer_received") == {"inbox"}

    # A password change, 2FA on and off, a lockout: on every channel with an address.
    service.change_password(ana, current=PASSWORD, new="another-horse-battery-9")
    ana = service.login(phone=ana.phone, password="another-horse-battery-9").principal
    secret = service.begin_two_factor(bruno).secret
    service.confirm_two_factor(bruno, code=otp.code_at_step(secret, otp.time_step(clock.now())))
    clock.advance(timedelta(seconds=otp.STEP_SECONDS))
    service.disable_two_factor(bruno, code=otp.code_at_step(secret, otp.time_step(clock.now())))
    for _ in range(5):
        with pytest.raises((InvalidCredentials, AccountLocked)):
            service.login(phone=bruno.phone, password="not-the-password")
    service.relay_notifications()

    assert channels_of(wallet, ana, "password_changed") == ALL_CHANNELS
    by_channel = {row["channel"]: row for row in rows_of(wallet, ana, "password_changed")}
    assert by_channel["email"]["address"] == "ana@example.org"
    assert by_channel["sms"]["body"] == (
        "mwallet: your password was changed. Not you? Contact support now."
    )
    on, off = sorted(
        (row for row in rows_of(wallet, bruno, "two_factor_changed") if row["channel"] == "inbox"),
        key=lambda row: row["id"],
    )
    assert (on["title"], off["title"]) == (
        "Two-factor authentication on",
        "Two-factor authentication off",
    )
    assert Counter(row["channel"] for row in rows_of(wallet, bruno, "two_factor_changed")) == {
        "inbox": 2,
        "sms": 2,
        "push": 2,
    }
    assert channels_of(wallet, bruno, "login_locked") == {"inbox", "sms", "push"}
    (locked,) = [row for row in rows_of(wallet, bruno, "login_locked") if row["channel"] == "sms"]
    until = (clock.now() + timedelta(minutes=30)).strftime("%H:%M UTC")
    assert locked["body"] == f"mwallet: too many failed logins, locked until {until}."
    # Preferences still hold for everything else.
    assert service.notification_preferences(ana) == Preferences(
        ana.user_id, "en", email=False, sms=False, push=False
    )


def test_a_frozen_wallet_is_told_on_every_channel_in_its_language(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    ana = person(service, "Ana Machava", email="ana@example.org")
    service.set_notification_preferences(ana, language="pt-BR", email=False, sms=False)
    service.set_wallet_status(actor=admin, phone=ana.phone, status=AccountStatus.FROZEN)
    service.relay_notifications()
    texts = {row["channel"]: (row["title"], row["body"]) for row in rows_of(wallet, ana)
             if row["kind"] == "wallet_status_changed"}  # fmt: skip
    assert set(texts) == ALL_CHANNELS
    assert texts["inbox"] == ("Carteira congelada", "A sua carteira está agora congelada.")
    assert texts["sms"] == ("Carteira congelada", "mwallet: a sua carteira está agora congelada.")


def test_a_withdrawal_and_a_cash_in_are_told_in_their_own_words(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    carla = person(service, "Carla Mendes")
    fund(service, carla, "200")
    issued = service.request_withdrawal(
        carla, amount=service.parse_money("60"), channel=CashChannel.ATM, pin=None,
        idempotency_key=key(),
    )  # fmt: skip
    service.cancel_withdrawal(carla, withdrawal_id=issued.withdrawal.id)
    agent = person(service, "Agente Dinis")
    fund(service, agent, "100")
    service.add_agent(actor=admin, phone=agent.phone)
    agent = service.login(phone=agent.phone, password=PASSWORD).principal
    assert agent.role is Role.AGENT
    service.cash_in(
        agent, to_phone=carla.phone, amount=service.parse_money("25"), idempotency_key=key()
    )
    service.relay_notifications()

    until = issued.withdrawal.expires_at.strftime("%H:%M UTC")
    assert inbox_texts(service, carla)[:3] == [
        (
            "cash_in_received",
            "Cash in received",
            "$25.00 is in your wallet: the cash you gave Agente Dinis.",
        ),
        (
            "withdrawal_cancelled",
            "Withdrawal cancelled",
            "Your withdrawal of $60.00 was cancelled; the money is back.",
        ),
        (
            "withdrawal_pending",
            "Withdrawal ready",
            "Your withdrawal of $60.00 is ready. Use the code and PIN you were shown before "
            f"{until}.",
        ),
    ]
    assert inbox_texts(service, agent)[0] == (
        "cash_in_given",
        "Cash in done",
        "You sent $25.00 to Carla Mendes for the cash they handed you.",
    )
    # Neither the code nor the PIN ever leaves in a notification.
    assert issued.code is not None
    assert issued.pin is not None
    for row in rows_of(wallet, carla):
        assert issued.code not in row["body"]
        assert issued.pin not in row["body"]  # no text here has four digits in a row


# --- exactly once --------------------------------------------------------------------------------
def test_relaying_again_or_accepting_an_event_again_makes_no_duplicate(wallet: Wallet) -> None:
    service = wallet.service
    ana = person(service, "Ana Machava", email="ana@example.org")
    bruno = person(service, "Bruno Sitoe")
    service.set_notification_preferences(bruno, push=True)
    fund(service, ana, "100")
    send(service, ana, bruno, "10")
    recorded = [read_back(row) for row in outbox_rows(wallet)]  # relayed, the outbox keeps none
    assert service.relay_notifications() == 4
    assert outbox_rows(wallet) == []
    made = rows(wallet)
    assert service.relay_notifications() == 0
    for event in recorded:  # a broker handing every event over a second time
        assert service.accept_notification(event) == 0
    assert rows(wallet) == made
    keys = Counter((row["event_id"], row["user_id"], row["channel"]) for row in made)
    assert set(keys.values()) == {1}
    assert len(made) == 3 + 3 + 3 + 3 + 3  # welcomes, Ana's top-up, the transfer: 3 each a person

    # An event accepted first (as a worker on the broker's side), then relayed: once as well.
    send(service, bruno, ana, "1")
    (pending,) = outbox_rows(wallet)
    event = read_back(pending)
    assert service.accept_notification(event) == 3 + 3  # Bruno (+ push), Ana (+ e-mail)
    assert service.accept_notification(event) == 0
    assert service.relay_notifications() == 1
    again = Counter((row["event_id"], row["user_id"], row["channel"]) for row in rows(wallet))
    assert set(again.values()) == {1}
    assert sum(1 for row in rows(wallet) if row["event_id"] == event.event_id) == 6


def test_the_relay_deletes_events_oldest_first_in_the_transaction_that_made_their_deliveries(
    wallet: Wallet, clock: FixedClock, admin: Principal
) -> None:
    service = wallet.service
    ana = person(service, "Ana Machava")
    clock.advance(timedelta(seconds=1))
    fund(service, ana, "100")
    clock.advance(timedelta(seconds=30))
    waiting = [row["event_id"] for row in outbox_rows(wallet)]
    assert len(waiting) == 3  # the admin's and Ana's registrations, the top-up
    stats = service.notification_stats(actor=admin)
    assert stats.outbox_backlog == 3
    assert stats.outbox_oldest_age == timedelta(seconds=31)

    batches: list[list[str]] = []
    left: list[list[str]] = []  # the outbox as each batch's transaction sees it, sink run

    def watched(uow: UnitOfWork, now: datetime, batch: Sequence[DomainEvent]) -> None:
        batches.append([event.event_id for event in batch])
        accept_all(uow, now, batch)
        left.append([event.event_id for event in uow.outbox.unpublished(limit=10)])

    assert service.relay_notifications(watched, batch=2) == 3  # in batches, until none is left
    assert batches == [waiting[:2], waiting[2:]]  # oldest first
    assert left == [waiting, waiting[2:]]  # deleted only after the sink, in its transaction
    assert outbox_rows(wallet) == []
    assert {row["event_id"] for row in rows(wallet)} == set(waiting)
    stats = service.notification_stats(actor=admin)
    assert (stats.outbox_backlog, stats.outbox_oldest_age) == (0, None)


def test_a_broker_that_is_down_leaves_the_events_waiting_and_makes_nothing(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = person(service, "Ana Machava", email="ana@example.org")
    fund(service, ana, "100")
    handed: list[str] = []

    def down(uow: UnitOfWork, now: datetime, batch: Sequence[DomainEvent]) -> None:
        accept_all(uow, now, batch)  # deliveries made in the relay's transaction…
        handed.extend(event.event_id for event in batch)
        raise BrokerDown("no confirm from the broker")  # …and undone with it

    with pytest.raises(BrokerDown):
        service.relay_notifications(down)
    assert len(handed) == 2
    assert rows(wallet) == []
    assert [row["event_id"] for row in outbox_rows(wallet)] == handed  # all still there

    clock.advance(timedelta(minutes=5))  # the broker is back
    assert service.relay_notifications() == 2
    assert outbox_rows(wallet) == []
    assert {row["kind"] for row in rows(wallet)} == {"welcome", "topup"}
    assert [one.kind for one in service.inbox(ana)] == ["topup", "welcome"]


def test_a_sink_that_fails_in_a_later_batch_keeps_that_batch_and_those_after_it(
    wallet: Wallet,
) -> None:
    service = wallet.service
    ana = person(service, "Ana Machava")
    fund(service, ana, "100")
    fund(service, ana, "50")
    waiting = [row["event_id"] for row in outbox_rows(wallet)]
    assert len(waiting) == 3  # Ana's registration, two top-ups
    calls = 0

    def second_fails(uow: UnitOfWork, now: datetime, batch: Sequence[DomainEvent]) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise BrokerDown("the broker went away")
        accept_all(uow, now, batch)

    with pytest.raises(BrokerDown):
        service.relay_notifications(second_fails, batch=1)
    assert [row["event_id"] for row in outbox_rows(wallet)] == waiting[1:]  # its commit held
    assert {row["event_id"] for row in rows(wallet)} == {waiting[0]}
    assert service.relay_notifications() == 2
    assert outbox_rows(wallet) == []


def test_a_refused_money_movement_notifies_nobody(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    ana = person(service, "Ana Machava", email="ana@example.org")
    bruno = person(service, "Bruno Sitoe")
    fund(service, ana, "10")
    with pytest.raises(InsufficientFunds):
        send(service, ana, bruno, "10.01")
    with pytest.raises(InsufficientFunds):
        service.request_withdrawal(
            ana, amount=service.parse_money("20"), channel=CashChannel.ATM, pin=None,
            idempotency_key=key(),
        )  # fmt: skip
    service.set_wallet_status(actor=admin, phone=bruno.phone, status=AccountStatus.FROZEN)
    with pytest.raises(WalletFrozen):
        send(service, ana, bruno, "1")
    with pytest.raises(WalletFrozen):
        fund(service, bruno, "5")
    service.relay_notifications()

    assert {row["kind"] for row in rows_of(wallet, ana)} == {"welcome", "topup"}
    assert {row["kind"] for row in rows_of(wallet, bruno)} == {"welcome", "wallet_status_changed"}
    assert [one.kind for one in service.inbox(ana)] == ["topup", "welcome"]


def test_an_event_the_texts_cannot_handle_does_not_block_every_later_one(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = person(service, "Ana Machava")
    now = clock.now()
    uow = service._uow()
    with uow:  # as the previous release recorded a withdrawal request: no expires_at
        uow.outbox.add(
            DomainEvent(
                new_id(now),
                "WithdrawalPending",
                new_id(now),
                {
                    "withdrawal_id": "01W",
                    "user_id": ana.user_id,
                    "amount_minor": 6000,
                    "fee_minor": 0,
                    "currency": "USD",
                    "channel": "atm",
                    "state": "pending",
                },
            ),
            now,
        )
        uow.commit()
    fund(service, ana, "100")
    service.relay_notifications()
    assert "topup" in [one.kind for one in service.inbox(ana)]


# --- sending: retries, dead letters, leases ------------------------------------------------------
def _one_sms(wallet: Wallet) -> Principal:
    """Ana registered (no e-mail) and relayed: exactly one delivery to send, her welcome SMS."""
    ana = person(wallet.service, "Ana Machava")
    wallet.service.relay_notifications()
    assert [
        (row["channel"], row["state"]) for row in rows(wallet) if row["channel"] != "inbox"
    ] == [("sms", "queued")]
    return ana


def _sms_row(wallet: Wallet) -> dict[str, Any]:
    (found,) = [row for row in rows(wallet) if row["channel"] == "sms"]
    return found


def test_a_failed_send_is_retried_only_after_its_backoff_and_delivered_once(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = _one_sms(wallet)
    gateway = Gateway(DeliveryFailed("gateway said 503"), DeliveryFailed("timed out"))
    senders = {Channel.SMS: gateway}

    report = service.dispatch_notifications(senders)
    assert (report.sent, report.retrying, report.dead) == (0, 1, 0)
    first = _sms_row(wallet)
    assert (first["state"], first["attempts"], first["last_error"]) == (
        "retrying",
        1,
        "gateway said 503",
    )
    wait = first["next_attempt_at"] - clock.now()
    assert timedelta(seconds=0.5) <= wait <= timedelta(seconds=1)  # 1 s, jittered down to half

    for attempts, (low, high) in ((1, (0.5, 1)), (2, (1, 2))):
        due = _sms_row(wallet)["next_attempt_at"]
        assert timedelta(seconds=low) <= due - clock.now() <= timedelta(seconds=high)
        assert service.dispatch_notifications(senders).attempted == 0  # not yet
        move_to(clock, due - MICRO)
        assert service.dispatch_notifications(senders).attempted == 0  # still not
        assert len(gateway.asked) == attempts
        move_to(clock, due)
        report = service.dispatch_notifications(senders)
        assert len(gateway.asked) == attempts + 1
    assert (report.sent, report.retrying, report.dead) == (1, 0, 0)

    done = _sms_row(wallet)
    assert (done["state"], done["attempts"], done["sent_at"], done["last_error"]) == (
        "sent",
        3,
        clock.now(),
        None,
    )
    assert [one.id for one in gateway.asked] == [done["id"]] * 3  # one id: the gateway's key
    assert len(gateway.delivered) == 1
    assert gateway.delivered[0].body == "Welcome to mwallet: your wallet is open."
    assert gateway.delivered[0].address == ana.phone
    clock.advance(MAX_BACKOFF * 2)
    assert service.dispatch_notifications(senders).attempted == 0
    assert len(gateway.delivered) == 1


def test_a_permanent_failure_is_dead_lettered_at_once(
    wallet: Wallet, clock: FixedClock, admin: Principal
) -> None:
    service = wallet.service
    ana = person(service, "Ana Machava")
    service.relay_notifications()  # the admin's welcome and Ana's
    gateway = Gateway(always=DeliveryFailed("number not in service", permanent=True))
    report = service.dispatch_notifications({Channel.SMS: gateway})
    assert (report.sent, report.retrying, report.dead) == (0, 0, 2)
    assert len(report.errors) == 2
    dead = service.dead_notifications(actor=admin)
    assert {one.user_id for one in dead} == {admin.user_id, ana.user_id}
    assert {(one.state, one.attempts, one.last_error) for one in dead} == {
        (DeliveryState.DEAD, 1, "number not in service")
    }
    clock.advance(MAX_BACKOFF * 2)
    working = Gateway()
    assert service.dispatch_notifications({Channel.SMS: working}).attempted == 0
    assert working.asked == []


def test_after_max_attempts_a_delivery_is_dead_until_an_admin_retries_it(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    _one_sms(wallet)
    broken = Gateway(always=DeliveryFailed("gateway said 500"))
    outcomes = []
    for _ in range(MAX_ATTEMPTS + 3):
        report = service.dispatch_notifications({Channel.SMS: broken})
        outcomes.append((report.retrying, report.dead))
        clock.advance(MAX_BACKOFF)
    assert outcomes == [(1, 0)] * (MAX_ATTEMPTS - 1) + [(0, 1)] + [(0, 0)] * 3
    assert len(broken.asked) == MAX_ATTEMPTS
    row = _sms_row(wallet)
    assert (row["state"], row["attempts"], row["last_error"]) == (
        "dead",
        MAX_ATTEMPTS,
        "gateway said 500",
    )

    admin = make_admin(service)  # registered after the relay: no delivery of its own
    (dead,) = service.dead_notifications(actor=admin)
    assert (dead.id, dead.channel, dead.state, dead.attempts) == (
        row["id"],
        Channel.SMS,
        DeliveryState.DEAD,
        MAX_ATTEMPTS,
    )
    revived = service.retry_notification(actor=admin, notification_id=f" {dead.id} ")
    assert (revived.state, revived.attempts, revived.last_error) == (
        DeliveryState.QUEUED,
        0,
        None,
    )
    assert revived.next_attempt_at == clock.now()
    assert service.dead_notifications(actor=admin) == []
    with pytest.raises(NotificationNotFound):  # only a dead delivery can be retried
        service.retry_notification(actor=admin, notification_id=dead.id)

    fixed = Gateway()
    report = service.dispatch_notifications({Channel.SMS: fixed})
    assert (report.sent, report.dead) == (1, 0)
    assert [one.id for one in fixed.delivered] == [dead.id]
    assert (_sms_row(wallet)["state"], _sms_row(wallet)["attempts"]) == ("sent", 1)
    with pytest.raises(NotificationNotFound):
        service.retry_notification(actor=admin, notification_id=dead.id)
    with pytest.raises(NotificationNotFound):
        service.retry_notification(actor=admin, notification_id="01NOSUCHNOTIFICATION00000")


def test_a_claim_whose_worker_died_is_taken_again_after_the_lease(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    _one_sms(wallet)
    first_lease = clock.now() + LEASE
    uow = service._uow()
    with uow:  # a worker claims, then dies before it settles
        (claimed,) = uow.notifications.claim(
            Channel.SMS, clock.now(), lease_until=first_lease, limit=10
        )
        uow.commit()
    assert _sms_row(wallet)["state"] == "sending"

    gateway = Gateway()
    assert service.dispatch_notifications({Channel.SMS: gateway}).attempted == 0
    clock.advance(LEASE - MICRO)
    assert service.dispatch_notifications({Channel.SMS: gateway}).attempted == 0
    assert gateway.asked == []
    clock.advance(MICRO)
    report = service.dispatch_notifications({Channel.SMS: gateway})
    assert report.sent == 1
    assert [one.id for one in gateway.delivered] == [claimed.id]
    assert (_sms_row(wallet)["state"], _sms_row(wallet)["attempts"]) == ("sent", 1)

    # The first worker wakes up after all: its lease is gone, so its outcome is not recorded.
    with uow:
        late = uow.notifications.settle(
            claimed.id, lease_until=first_lease, state=DeliveryState.RETRYING, attempts=1,
            next_attempt_at=clock.now(), sent_at=None, error="late",
        )  # fmt: skip
        uow.commit()
    assert late is False
    assert _sms_row(wallet)["state"] == "sent"
    clock.advance(LEASE * 3)
    assert service.dispatch_notifications({Channel.SMS: gateway}).attempted == 0
    assert len(gateway.delivered) == 1


def test_a_sender_that_crashes_counts_as_a_failed_attempt_and_is_retried(
    wallet: Wallet, clock: FixedClock
) -> None:
    """A sender's own exception (not a DeliveryFailed) is a failed attempt like any other: the
    rest of the batch goes on, and a sender that always crashes ends dead-lettered."""
    service = wallet.service
    _one_sms(wallet)
    hung_up = ConnectionResetError("the gateway hung up")  # not a DeliveryFailed
    report = service.dispatch_notifications({Channel.SMS: Gateway(always=hung_up)})
    assert (report.retrying, report.sent) == (1, 0)
    row = _sms_row(wallet)
    assert (row["state"], row["attempts"]) == ("retrying", 1)
    assert "ConnectionResetError" in row["last_error"]

    gateway = Gateway()
    clock.advance(LEASE)  # well past the backoff
    assert service.dispatch_notifications({Channel.SMS: gateway}).sent == 1
    assert [one.id for one in gateway.delivered] == [row["id"]]
    assert _sms_row(wallet)["state"] == "sent"


def test_a_worker_that_died_mid_send_leaves_the_delivery_to_the_next_after_the_lease(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    _one_sms(wallet)

    class Dies(Gateway):
        def send(self, delivery: Delivery) -> None:
            raise KeyboardInterrupt  # the process is going away: nothing is recorded

    with pytest.raises(KeyboardInterrupt):
        service.dispatch_notifications({Channel.SMS: Dies()})
    row = _sms_row(wallet)
    assert (row["state"], row["attempts"]) == ("sending", 0)

    gateway = Gateway()
    clock.advance(LEASE - MICRO)
    assert service.dispatch_notifications({Channel.SMS: gateway}).attempted == 0
    clock.advance(MICRO)
    assert service.dispatch_notifications({Channel.SMS: gateway}).sent == 1
    assert [one.id for one in gateway.delivered] == [row["id"]]
    assert _sms_row(wallet)["state"] == "sent"


def test_a_worker_past_its_lease_does_not_send_what_another_worker_took_over(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    person(service, "Ana Machava")
    person(service, "Bruno Sitoe")
    service.relay_notifications()
    other = Gateway()

    class Slow(Gateway):
        def send(self, delivery: Delivery) -> None:
            super().send(delivery)
            if len(self.asked) == 1:  # the first send hangs for the whole lease…
                clock.advance(LEASE)
                service.dispatch_notifications({Channel.SMS: other})  # …and a second worker runs

    slow = Slow()
    report = service.dispatch_notifications({Channel.SMS: slow})
    assert len(other.delivered) == 2  # the second worker took both over
    assert report.lost_lease == 2
    sent = Counter(one.id for one in slow.delivered + other.delivered)
    first, second = (one.id for one in other.delivered)
    assert sent[first] == 2  # unavoidable: it was being sent when the lease ran out
    assert sent[second] == 1  # but the slow worker should not have started this one


def test_two_relays_or_two_workers_at_once_never_take_the_same_work(
    wallet: Wallet, backend: str, clock: FixedClock
) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite's writers take turns: a second relay waits for the first")
    service = wallet.service
    ana = person(service, "Ana Machava")
    for amount in ("10", "20", "30"):
        fund(service, ana, amount)
    waiting = [row["event_id"] for row in outbox_rows(wallet)]
    assert len(waiting) == 4  # Ana's registration, three top-ups
    handed: list[list[str]] = []
    meanwhile: list[int] = []

    def quick(uow: UnitOfWork, now: datetime, batch: Sequence[DomainEvent]) -> None:
        handed.append([event.event_id for event in batch])
        accept_all(uow, now, batch)

    def slow(uow: UnitOfWork, now: datetime, batch: Sequence[DomainEvent]) -> None:
        handed.append([event.event_id for event in batch])
        if len(handed) == 1:  # a second relay, while this one holds its batch
            meanwhile.append(service.relay_notifications(quick))
        accept_all(uow, now, batch)

    assert service.relay_notifications(slow, batch=2) == 2
    assert meanwhile == [2]  # it took the others at once, skipping those the first had locked
    assert handed == [waiting[:2], waiting[2:]]  # oldest first, and each event once
    assert outbox_rows(wallet) == []

    first, second = service._uow(), service._uow()
    lease = clock.now() + LEASE
    with first:
        mine = first.notifications.claim(Channel.SMS, clock.now(), lease_until=lease, limit=10)
        with second:  # another worker claims before the first one commits
            theirs = second.notifications.claim(
                Channel.SMS, clock.now(), lease_until=lease, limit=10
            )
            second.commit()
        first.commit()
    assert [one.channel for one in mine] == [Channel.SMS] * 4  # one an event
    assert theirs == []


def test_a_sender_only_sees_its_own_channel_and_the_inbox_is_never_dispatched(
    wallet: Wallet,
) -> None:
    service = wallet.service
    person(service, "Ana Machava", email="ana@example.org")
    service.relay_notifications()
    inbox, email = Gateway(), Gateway()
    report = service.dispatch_notifications({Channel.INBOX: inbox, Channel.EMAIL: email})
    assert report.sent == 1
    assert inbox.asked == []
    assert [(one.channel, one.address) for one in email.delivered] == [
        (Channel.EMAIL, "ana@example.org")
    ]
    assert _sms_row(wallet)["state"] == "queued"  # no SMS sender was given


# --- the inbox -----------------------------------------------------------------------------------
def test_the_inbox_pages_newest_first_without_skipping_or_repeating(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = person(service, "Ana Machava", email="ana@example.org")
    for amount in range(1, 8):
        fund(service, ana, str(amount))
        clock.advance(timedelta(seconds=1))
    service.relay_notifications()
    everything = [one.id for one in service.inbox(ana, limit=100)]
    assert len(everything) == 8  # the welcome and seven top-ups, the inbox channel only
    assert everything == sorted(everything, reverse=True)

    pages: list[list[str]] = []
    before = None
    while page := [one.id for one in service.inbox(ana, limit=3, before=before)]:
        pages.append(page)
        before = page[-1]
        if len(pages) == 1:  # something new arrives while Ana reads: it is above, not in between
            fund(service, ana, "100")
            service.relay_notifications()
    assert [len(page) for page in pages] == [3, 3, 2]
    assert [one for page in pages for one in page] == everything
    newest = service.inbox(ana, limit=1)[0]
    assert (newest.kind, newest.body) == ("topup", "$100.00 was added to your wallet from sandbox.")
    assert service.inbox(ana, before=everything[-1]) == []
    with pytest.raises(InvalidInput):
        service.inbox(ana, limit=0)
    with pytest.raises(InvalidInput):
        service.inbox(ana, limit=1001)


def _three_in_ana_s_inbox(wallet: Wallet) -> tuple[Principal, Principal, list[Delivery]]:
    service = wallet.service
    ana = person(service, "Ana Machava", email="ana@example.org")
    bruno = person(service, "Bruno Sitoe")
    fund(service, ana, "100")
    send(service, ana, bruno, "10")
    service.relay_notifications()
    found = list(service.inbox(ana))
    assert [one.kind for one in found] == ["transfer_sent", "topup", "welcome"]
    return ana, bruno, found


def test_the_unread_filter_leaves_out_what_was_read(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana, _, (sent, topup, welcome) = _three_in_ana_s_inbox(wallet)
    assert list(service.inbox(ana, unread_only=True)) == [sent, topup, welcome]
    with wallet.engine.begin() as conn:  # read elsewhere (the `mark_read` test has its own)
        conn.execute(
            update(notifications).where(notifications.c.id == topup.id).values(read_at=clock.now())
        )
    assert [one.id for one in service.inbox(ana, unread_only=True)] == [sent.id, welcome.id]
    assert [one.id for one in service.inbox(ana, unread_only=True, limit=1)] == [sent.id]
    assert [one.id for one in service.inbox(ana, unread_only=True, before=sent.id)] == [welcome.id]
    assert [one.id for one in service.inbox(ana)] == [sent.id, topup.id, welcome.id]
    assert service.inbox(ana)[1].read_at == clock.now()


def test_mark_read_marks_once_and_the_unread_filter_then_leaves_it_out(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana, _, (sent, topup, welcome) = _three_in_ana_s_inbox(wallet)
    clock.advance(timedelta(minutes=1))
    read = service.mark_read(ana, notification_id=topup.id)
    assert (read.id, read.read_at, read.body) == (topup.id, clock.now(), topup.body)
    first_read = clock.now()
    clock.advance(timedelta(minutes=1))
    assert service.mark_read(ana, notification_id=f"  {topup.id}\n").read_at == first_read
    assert [one.id for one in service.inbox(ana, unread_only=True)] == [sent.id, welcome.id]
    assert [one.id for one in service.inbox(ana)] == [sent.id, topup.id, welcome.id]
    assert one_row(wallet, topup.id)["read_at"] == first_read


def test_mark_read_of_someone_else_s_or_an_unknown_id_is_not_found(
    wallet: Wallet, backend: str, request: pytest.FixtureRequest
) -> None:
    service = wallet.service
    ana, bruno, _ = _three_in_ana_s_inbox(wallet)
    bruno_first = service.inbox(bruno)[0]
    ana_email = next(row["id"] for row in rows_of(wallet, ana) if row["channel"] == "email")
    for foreign in (bruno_first.id, ana_email, "01NOSUCHNOTIFICATION00000", ""):
        with pytest.raises(NotificationNotFound):
            service.mark_read(ana, notification_id=foreign)
    assert service.inbox(bruno)[0].read_at is None
    assert one_row(wallet, ana_email)["read_at"] is None


def test_the_inbox_works_on_a_postgresql_database_with_a_linguistic_collation(
    backend: str, clock: FixedClock
) -> None:
    if backend != "postgresql":
        pytest.skip("a PostgreSQL collation")
    from psycopg import sql

    name = f"mwallet_test_icu_{uuid.uuid4().hex[:12]}"
    with pg_admin() as conn:
        conn.execute(
            sql.SQL(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu "
                "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            ).format(sql.Identifier(name))
        )
    try:
        with open_wallet(pg_url(name), clock) as built:
            service = built.service
            service.init(currency="USD")
            ana = person(service, "Ana Machava")
            assert service.relay_notifications() == 1
            assert [one.kind for one in service.inbox(ana)] == ["welcome"]
    finally:
        with pg_admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# --- preferences ---------------------------------------------------------------------------------
def test_preferences_change_only_what_is_given_and_refuse_unknown_languages(
    wallet: Wallet,
) -> None:
    service = wallet.service
    ana = person(service, "Ana Machava")
    assert service.notification_preferences(ana) == Preferences(ana.user_id)
    assert service.set_notification_preferences(ana, language="pt_mz") == Preferences(
        ana.user_id, "pt-MZ"
    )
    assert service.set_notification_preferences(ana, sms=False, push=True) == Preferences(
        ana.user_id, "pt-MZ", email=True, sms=False, push=True
    )
    with pytest.raises(InvalidInput, match="en, pt-MZ, pt-BR"):
        service.set_notification_preferences(ana, language="fr", email=False)
    assert service.notification_preferences(ana) == Preferences(
        ana.user_id, "pt-MZ", email=True, sms=False, push=True
    )
    assert service.set_notification_preferences(ana, language=" EN ").language == "en"


# --- operations ----------------------------------------------------------------------------------
def test_stats_count_each_channel_by_state_with_the_oldest_waiting(
    wallet: Wallet, clock: FixedClock, admin: Principal
) -> None:
    service = wallet.service
    person(service, "Ana Machava", email="ana@example.org")  # with the admin: 2 people
    service.relay_notifications()
    made = clock.now()
    clock.advance(timedelta(minutes=2))
    stats = service.notification_stats(actor=admin)
    counts = {one.channel: one.counts for one in stats.channels}
    assert list(counts) == [Channel.EMAIL, Channel.SMS, Channel.PUSH]  # no inbox
    assert counts[Channel.EMAIL][DeliveryState.QUEUED] == 1
    assert counts[Channel.SMS][DeliveryState.QUEUED] == 2
    assert set(counts[Channel.PUSH].values()) == {0}
    ages = {one.channel: one.oldest_pending_age for one in stats.channels}
    assert ages == {Channel.EMAIL: clock.now() - made, Channel.SMS: clock.now() - made,
                    Channel.PUSH: None}  # fmt: skip

    sms = Gateway(DeliveryFailed("refused", permanent=True), DeliveryFailed("busy"))
    service.dispatch_notifications({Channel.EMAIL: Gateway(), Channel.SMS: sms})
    stats = service.notification_stats(actor=admin)
    counts = {one.channel: one.counts for one in stats.channels}
    assert counts[Channel.EMAIL] == {state: 0 for state in DeliveryState} | {DeliveryState.SENT: 1}
    assert counts[Channel.SMS] == {state: 0 for state in DeliveryState} | {
        DeliveryState.DEAD: 1,
        DeliveryState.RETRYING: 1,
    }
    ages = {one.channel: one.oldest_pending_age for one in stats.channels}
    assert ages == {Channel.EMAIL: None, Channel.SMS: clock.now() - made, Channel.PUSH: None}
    assert stats.outbox_backlog == 0


def test_a_customer_may_not_read_stats_or_dead_letters_nor_retry(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    ana = person(service, "Ana Machava")
    auditor = person(service, "Audrey Auditor")
    service.set_role(actor=admin, phone=auditor.phone, role=Role.AUDITOR)
    auditor = service.login(phone=auditor.phone, password=PASSWORD).principal
    service.relay_notifications()
    service.dispatch_notifications(
        {Channel.SMS: Gateway(always=DeliveryFailed("no", permanent=True))}
    )
    (dead, *_) = service.dead_notifications(actor=admin)

    with pytest.raises(PermissionDenied, match="a customer may not read notification statistics"):
        service.notification_stats(actor=ana)
    with pytest.raises(PermissionDenied):
        service.dead_notifications(actor=ana)
    with pytest.raises(PermissionDenied):
        service.retry_notification(actor=ana, notification_id=dead.id)
    # An auditor reads the books, but does not act on them.
    assert service.notification_stats(actor=auditor).outbox_backlog == 0
    assert dead.id in [one.id for one in service.dead_notifications(actor=auditor)]
    with pytest.raises(PermissionDenied):
        service.retry_notification(actor=auditor, notification_id=dead.id)
    assert dead.id in [one.id for one in service.dead_notifications(actor=admin)]
    denied = [
        record.details["action"]
        for record in service.audit_log(actor=admin, limit=100)
        if record.action == "permission.denied"
    ]
    assert sorted(denied) == sorted([
        "read notification statistics", "read dead-lettered notifications",
        "retry notifications", "retry notifications",
    ])  # fmt: skip
