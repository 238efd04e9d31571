"""Use cases of notifications: relay the outbox, turn events into deliveries, send them, and the
inbox, preferences and operations around them. `core.domain.notifications` draws the states.

    outbox ──relay──▶ sink ──▶ accept: deliveries (inbox: at once) ──dispatch──▶ Sender
             (deletes the events from the outbox in the same transaction the sink ran in)

The sink is where the broker sits: embedded, `accept` itself, in the relay's own transaction, so
an event becomes its deliveries exactly once; with RabbitMQ, a publish that waits for the broker's
confirm (the worker's `accept` then runs on the other side, and a redelivered event finds its
deliveries already there). A money movement never waits for any of this: it only writes its event.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from mwallet.core.clock import Clock
from mwallet.core.domain.audit import AuditEvent
from mwallet.core.domain.events import DomainEvent
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.notifications import (
    LANGUAGES,
    LEASE,
    MAX_ATTEMPTS,
    Channel,
    Delivery,
    DeliveryState,
    Preferences,
    backoff,
    no_notification,
    notices_for,
    render,
)
from mwallet.core.domain.paging import check_limit, check_page_after
from mwallet.core.domain.roles import Permission
from mwallet.core.domain.users import Principal, User
from mwallet.core.errors import NotificationNotFound, quoted
from mwallet.core.services.authorization import authorize
from mwallet.core.services.unit_of_work import UnitOfWork

RELAY_BATCH = 200
_LEASE_MARGIN = timedelta(
    seconds=10
)  # stop sending a claimed batch this long before its lease ends
Sink = Callable[[UnitOfWork, datetime, Sequence[DomainEvent]], None]


class DeliveryFailed(Exception):
    """A sender could not deliver. `permanent`: trying again cannot help (a refused address)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Sender(Protocol):
    def send(self, delivery: Delivery) -> None:
        """Deliver, or raise DeliveryFailed. The delivery's id is its idempotency key: a sender
        hands it to its gateway (a header, the e-mail's Message-ID) so a retry after a lost answer
        is recognised there as the same message."""
        ...


# --- from the outbox to deliveries ---------------------------------------------------------------
class _People:
    """The people of a batch of events, each read once (a relay's batch names the same people
    again and again: every transfer names two)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._found: dict[str, tuple[User, Preferences] | None] = {}

    def get(self, user_id: str) -> tuple[User, Preferences] | None:
        if user_id not in self._found:
            person = self._uow.users.by_id(user_id)
            self._found[user_id] = (
                None
                if person is None
                else (person, self._uow.notifications.prefs(person.id) or Preferences(person.id))
            )
        return self._found[user_id]


def accept(
    uow: UnitOfWork, now: datetime, event: DomainEvent, people: _People | None = None
) -> int:
    """Turn one event into its deliveries, inside the caller's unit of work; how many are new
    (an event accepted before makes none)."""
    people = people or _People(uow)
    made: list[Delivery] = []  # all of them first: an unreadable event inserts nothing
    for notice in notices_for(event):
        found = people.get(notice.user_id)
        if found is None:
            continue
        person, prefs = found
        counterparty = None
        if notice.counterparty_user_id is not None:
            other = people.get(notice.counterparty_user_id)
            counterparty = other[0].display_name if other is not None else None
        addresses = {
            Channel.INBOX: person.id,
            Channel.EMAIL: person.email,
            Channel.SMS: person.phone,
            Channel.PUSH: person.phone,
        }
        for channel, address in addresses.items():
            if not address or not (notice.security or prefs.wants(channel)):
                continue
            message = render(notice, channel, prefs.language, counterparty=counterparty)
            inbox = channel is Channel.INBOX
            made.append(
                Delivery(
                    id=new_id(now),
                    event_id=notice.event_id,
                    user_id=person.id,
                    channel=channel,
                    kind=notice.kind,
                    address=address,
                    title=message.title,
                    body=message.body,
                    state=DeliveryState.SENT if inbox else DeliveryState.QUEUED,
                    attempts=0,
                    created_at=now,
                    next_attempt_at=now,
                    sent_at=now if inbox else None,
                )
            )
    return sum(uow.notifications.add(delivery) for delivery in made)


def _accept_or_skip(uow: UnitOfWork, now: datetime, event: DomainEvent, people: _People) -> int:
    """Accept an event; one the texts cannot read (a malformed or unforeseen payload) is set
    aside in the audit log instead of holding up every event after it."""
    try:
        return accept(uow, now, event, people)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        uow.audit.append(
            AuditEvent(
                "notification.unreadable_event", None, event.event_id,
                {"type": event.event_type, "error": f"{type(exc).__name__}: {exc}"[:200]},
            ),
            now,
        )  # fmt: skip
        return 0


def accept_all(uow: UnitOfWork, now: datetime, events: Sequence[DomainEvent]) -> None:
    """The embedded sink: the relay's events become deliveries in the relay's transaction."""
    people = _People(uow)
    for event in events:
        _accept_or_skip(uow, now, event, people)


def accept_events(uow: UnitOfWork, clock: Clock, events: Sequence[DomainEvent]) -> int:
    """A worker's side: events received from the broker become their deliveries, in one
    transaction (an event accepted before makes none). How many deliveries are new."""
    with uow:
        now = clock.now()
        people = _People(uow)
        made = sum(_accept_or_skip(uow, now, event, people) for event in events)
        uow.commit()
    return made


def relay(uow: UnitOfWork, clock: Clock, sink: Sink, *, batch: int = RELAY_BATCH) -> int:
    """Hand the oldest events of the outbox to `sink` and delete them from it, in one
    transaction: if the sink fails (the broker is down), the transaction rolls back, the events
    stay and the next relay tries again. At least once: a commit lost after a broker's confirm
    hands them on again, and the worker's side makes no delivery twice. How many events went."""
    with uow:
        now = clock.now()
        events = uow.outbox.unpublished(limit=batch)
        if not events:
            return 0
        sink(uow, now, events)
        uow.outbox.remove_relayed([event.event_id for event in events])
        uow.commit()
    return len(events)


def relay_all(uow: UnitOfWork, clock: Clock, sink: Sink, *, batch: int = RELAY_BATCH) -> int:
    total = 0
    while moved := relay(uow, clock, sink, batch=batch):
        total += moved
    return total


# --- sending -------------------------------------------------------------------------------------
@dataclass
class DispatchReport:
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    lost_lease: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.sent + self.retrying + self.dead + self.lost_lease


def dispatch(
    uow: UnitOfWork,
    clock: Clock,
    senders: Mapping[Channel, Sender],
    *,
    batch: int = 100,
    jitter: Callable[[], float] = random.random,
) -> DispatchReport:
    """Send the due deliveries of each channel that has a sender: claim a batch under a lease,
    send each outside any transaction, then record each outcome (sent; retrying after a backoff;
    dead after MAX_ATTEMPTS or a permanent failure)."""
    report = DispatchReport()
    for channel, sender in senders.items():
        if channel is Channel.INBOX:
            continue
        with uow:
            now = clock.now()
            lease = now + LEASE
            claimed = uow.notifications.claim(channel, now, lease_until=lease, limit=batch)
            uow.commit()
        for delivery in claimed:
            if clock.now() >= lease - _LEASE_MARGIN:
                # Too slow: the rest of the batch may be another worker's by now. Leave it.
                report.lost_lease += 1
                continue
            _send_one(uow, clock, sender, delivery, lease=lease, report=report, jitter=jitter)
    return report


def _send_one(
    uow: UnitOfWork,
    clock: Clock,
    sender: Sender,
    delivery: Delivery,
    *,
    lease: datetime,
    report: DispatchReport,
    jitter: Callable[[], float],
) -> None:
    attempts = delivery.attempts + 1
    try:
        sender.send(delivery)
    except Exception as exc:  # noqa: BLE001 - a sender's own bug counts as a failed attempt
        failure = (
            exc
            if isinstance(exc, DeliveryFailed)
            else DeliveryFailed(f"{type(exc).__name__}: {exc}")
        )
        now = clock.now()
        dead = failure.permanent or attempts >= MAX_ATTEMPTS
        state = DeliveryState.DEAD if dead else DeliveryState.RETRYING
        next_at = now if dead else now + backoff(attempts, jitter())
        error: str | None = failure.reason
        sent_at = None
        report.errors.append(f"{delivery.channel.value} {delivery.id}: {failure.reason}")
    else:
        now = clock.now()
        state, next_at, error, sent_at = DeliveryState.SENT, now, None, now
    with uow:
        settled = uow.notifications.settle(
            delivery.id, lease_until=lease, state=state, attempts=attempts,
            next_attempt_at=next_at, sent_at=sent_at, error=error,
        )  # fmt: skip
        uow.commit()
    if not settled:
        report.lost_lease += 1  # the lease ran out and another worker took the delivery over
    elif state is DeliveryState.SENT:
        report.sent += 1
    elif state is DeliveryState.DEAD:
        report.dead += 1
    else:
        report.retrying += 1


# --- a person's inbox and preferences ------------------------------------------------------------
def inbox(
    uow: UnitOfWork,
    clock: Clock,
    *,
    principal: Principal,
    unread_only: bool = False,
    limit: int = 20,
    before: str | None = None,
) -> Sequence[Delivery]:
    """The person's inbox, newest first (`before`: the page after that id)."""
    authorize(uow, clock, principal, Permission.USE_OWN_WALLET, "read an inbox")
    check_limit(limit)
    check_page_after(before, "notification")
    with uow.read_only():
        return uow.notifications.inbox(
            principal.user_id, unread_only=unread_only, limit=limit, before=before
        )


def mark_read(
    uow: UnitOfWork, clock: Clock, *, principal: Principal, notification_id: str
) -> Delivery:
    authorize(uow, clock, principal, Permission.USE_OWN_WALLET, "read an inbox")
    with uow:
        found = uow.notifications.mark_read(principal.user_id, notification_id.strip(), clock.now())
        if found is None:
            raise no_notification(notification_id)
        uow.commit()
    return found


def preferences(uow: UnitOfWork, clock: Clock, *, principal: Principal) -> Preferences:
    authorize(uow, clock, principal, Permission.USE_OWN_WALLET, "read notification preferences")
    with uow.read_only():
        return uow.notifications.prefs(principal.user_id) or Preferences(principal.user_id)


def set_preferences(
    uow: UnitOfWork,
    clock: Clock,
    *,
    principal: Principal,
    language: str | None = None,
    email: bool | None = None,
    sms: bool | None = None,
    push: bool | None = None,
) -> Preferences:
    """Change some preferences (what is not given stays). Security notices ignore them."""
    authorize(uow, clock, principal, Permission.USE_OWN_WALLET, "set notification preferences")
    if language is not None and language not in LANGUAGES:
        from mwallet.core.domain.notifications import parse_language

        language = parse_language(language)
    with uow:
        current = uow.notifications.prefs(principal.user_id) or Preferences(principal.user_id)
        changed = replace(
            current,
            language=current.language if language is None else language,
            email=current.email if email is None else email,
            sms=current.sms if sms is None else sms,
            push=current.push if push is None else push,
        )
        uow.notifications.save_prefs(changed, clock.now())
        uow.commit()
    return changed


# --- operations ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ChannelStats:
    channel: Channel
    counts: dict[DeliveryState, int]
    oldest_pending_age: timedelta | None


@dataclass(frozen=True, slots=True)
class NotifyStats:
    channels: list[ChannelStats]
    outbox_backlog: int
    outbox_oldest_age: timedelta | None


def stats(uow: UnitOfWork, clock: Clock, *, actor: Principal) -> NotifyStats:
    """Per channel: deliveries per state and the age of the oldest still to send; the outbox's
    backlog (events not yet relayed)."""
    authorize(uow, clock, actor, Permission.READ_BOOKS, "read notification statistics")
    now = clock.now()
    with uow.read_only():
        rows = uow.notifications.stats()
        backlog, oldest_event = uow.outbox.backlog()
    channels = []
    for channel in (Channel.EMAIL, Channel.SMS, Channel.PUSH):
        counts = {state: 0 for state in DeliveryState}
        oldest: datetime | None = None
        for row_channel, state, count, created in rows:
            if row_channel is not channel:
                continue
            counts[state] = count
            if state not in (DeliveryState.SENT, DeliveryState.DEAD):
                oldest = created if oldest is None else min(oldest, created)
        channels.append(ChannelStats(channel, counts, None if oldest is None else now - oldest))
    return NotifyStats(channels, backlog, None if oldest_event is None else now - oldest_event)


def dead_letters(
    uow: UnitOfWork, clock: Clock, *, actor: Principal, limit: int = 100
) -> Sequence[Delivery]:
    authorize(uow, clock, actor, Permission.READ_BOOKS, "read dead-lettered notifications")
    check_limit(limit)
    with uow.read_only():
        return uow.notifications.dead(limit=limit)


def retry_dead(
    uow: UnitOfWork, clock: Clock, *, actor: Principal, notification_id: str
) -> Delivery:
    """Queue a dead-lettered delivery again (after its cause was fixed)."""
    authorize(uow, clock, actor, Permission.MANAGE_SECURITY, "retry notifications")
    with uow:
        found = uow.notifications.revive(notification_id.strip(), clock.now())
        if found is None:
            raise NotificationNotFound(f"no dead-lettered notification {quoted(notification_id)}")
        uow.commit()
    return found
